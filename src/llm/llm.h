/* llm.h: the cell's language-model client: local first, cloud when the local
 * model is unavailable or unsure, every outbound text redacted and recorded.
 *
 * Providers, tried in this order for each request:
 *  - local: any OpenAI-compatible server (llama.cpp's llama-server, vLLM,
 *    Ollama) at [llm] local = URL (its base, e.g. http://127.0.0.1:8080/v1);
 *  - mesh: a reasoning peer of the fleet (the Telepathy mesh, through the
 *    hook llm_set_remote; [llm] mesh = yes|no, default yes), asked with
 *    the redacted request the cloud would get, when the local answer was
 *    not enough and a peer is reachable: the text stays inside the fleet;
 *  - cloud: OpenAI chat completions or Anthropic messages, asked only when
 *    the local answer failed (unreachable, timeout, 429/5xx, refusal,
 *    invalid JSON, schema violation, the caller's validator said no) or was
 *    unsure (mean token probability under [llm] unsure_below, or the
 *    caller's validator said "unsure": disagreement with rules and cases).
 * A request stays within [llm] tokens_per_hour and, for an incident,
 * tokens_per_incident; a request over budget is refused with -EDQUOT before
 * anything is sent. Before anything leaves the machine (the cloud always;
 * the local server too when it is not on loopback) the text is redacted
 * (llm_redact) and the exact body sent is recorded (on_sent and
 * STATE/llm/sent.jsonl).
 *
 *   [llm]
 *   local = URL                 (OpenAI-compatible base URL; "" = none)
 *   local_model = NAME          (default "phi-4-mini-reasoning")
 *   cloud = none|openai|anthropic (default none)
 *   cloud_url = URL             (default the provider's public API)
 *   cloud_model = NAME
 *   key_file = PATH             (else OPENAI_API_KEY / ANTHROPIC_API_KEY)
 *   timeout = DURATION          (whole request, default 60s)
 *   tokens_per_hour = N         (default 200000)
 *   tokens_per_incident = N     (default 20000)
 *   unsure_below = X            (mean token probability, default 0.5)
 *   redact_hosts = NAME,...     (host names replaced by <host>)
 *   redact_emails / redact_ips = yes|no (default yes)
 *   mesh = yes|no               (ask a reasoning peer before the cloud, default yes)
 *   embeddings = URL            (OpenAI-compatible /v1/embeddings base; "" = built-in)
 *   embeddings_model = NAME
 *   embeddings_dims = N         (the endpoint's vector size; else learned from
 *                                its first answer)
 * (docs/llm.md has the details: the routing, what is redacted, the record.)
 *
 * Threads: llm_new/llm_reconfigure/llm_free on one thread (the loop);
 * llm_complete and llm_embed block and are called from worker threads (the
 * libuv pool or an HTTP connection thread); everything else from any thread. */
#ifndef IPPOC_LLM_H
#define IPPOC_LLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct llm llm;

/* Checks [llm]: 0 or -EINVAL with "FILE:LINE: reason". Any thread. */
int llm_config_check(const core_config *cfg, char *err, size_t errlen);

/* on_sent(ud, provider, body) is called (from the requesting thread) with each
 * redacted request body just before it is sent; may be NULL. state_dir
 * holds llm/sent.jsonl. Never fails for want of a model: llm_available()
 * says whether any provider is configured. */
int llm_new(const core_config *cfg, const char *state_dir,
            void (*on_sent)(void *ud, const char *provider, const char *body), void *ud, llm **out, char *err,
            size_t errlen);
int llm_reconfigure(llm *l, const core_config *cfg, char *err, size_t errlen);
void llm_free(llm *l);
bool llm_available(const llm *l); /* NULL -> false */

/* The caller's check of an answer's content: LLM_OK, LLM_UNSURE (keep it,
 * but ask the next provider and prefer its valid answer) or LLM_INVALID
 * (discard it), with the reason in why. */
enum { LLM_OK = 0, LLM_UNSURE = 1, LLM_INVALID = 2 };

typedef struct llm_request {
    const char *purpose;     /* "diagnose", "ask", "review", ...: recorded */
    const char *system;      /* system prompt */
    const char *user;        /* user message */
    const char *schema_name; /* with schema: JSON-schema constrained output */
    const char *schema;      /* JSON schema text, NULL for prose */
    uint64_t incident;       /* charged to this incident's budget; 0 = none */
    int max_tokens;          /* 0 = 1024 */
    int (*validate)(void *ud, const char *content, char *why, size_t whylen);
    void *ud;
    /* streaming: each piece of content as it arrives (may be NULL) */
    void (*on_delta)(void *ud, const char *text, size_t len);
} llm_request;

typedef struct llm_answer {
    char *content;      /* the answer's text (JSON text with a schema) */
    char *provider;     /* "local", "mesh", "openai", "anthropic" */
    char *model;
    double confidence;  /* mean token probability, NaN when not reported */
    bool unsure;        /* the best answer was still unsure */
    int prompt_tokens, completion_tokens;
    char *attempts;     /* JSON array: [{"provider","outcome","reason","ms"}] */
} llm_answer;

/* Blocking. 0 with *a filled (llm_answer_free), or -ENOENT (no provider
 * configured), -EDQUOT (over budget), -EIO (every provider failed; err says
 * why, a->attempts is still filled). */
int llm_complete(llm *l, const llm_request *r, llm_answer *a, char *err, size_t errlen);
void llm_answer_free(llm_answer *a);

/* The fleet's reasoning peers (set by the daemon: llm knows nothing of the
 * mesh). fn sends the REDACTED OpenAI chat-completions body (exactly what
 * the cloud would get, recorded as provider "mesh") to a peer and gives back
 * the peer's OpenAI chat-completions answer (malloc'd) within timeout_ms: 0,
 * or a negative errno (-ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, -EIO) with
 * the reason in err. available(ud) says cheaply whether a peer is reachable
 * now (llm_available counts it). Called from the requesting thread.
 * llm_set_remote waits for the calls in flight: once llm_set_remote(l, NULL,
 * NULL, NULL) returns, the hook's owner may be freed. */
typedef int (*llm_remote_fn)(void *ud, const char *body_json, int timeout_ms, char **answer_json, char *err,
                             size_t errlen);
typedef bool (*llm_remote_avail_fn)(void *ud);
void llm_set_remote(llm *l, llm_remote_fn fn, llm_remote_avail_fn available, void *ud);

/* For a reasoning peer serving the fleet: an OpenAI chat-completions body as
 * a peer sent it goes to the LOCAL model only (never the cloud, never the
 * mesh again), with "model" set to [llm] local_model, "stream" off and
 * max_tokens at most 4096; charged to the hourly budget. Blocking. 0 with
 * the model's answer body in *answer_json (malloc'd), or -ENOENT (no local
 * model), -EINVAL (not a chat body: err says why), -EDQUOT, -EIO (the
 * model failed: err says why). timeout_ms <= 0: [llm] timeout. */
int llm_complete_local_body(llm *l, const char *body_json, int timeout_ms, char **answer_json, char *err,
                            size_t errlen);

/* Embeddings from [llm] embeddings: n texts -> n*dims floats (L2-normalised).
 * 0, -ENOENT (none configured), -EIO. Blocking. */
int llm_embed(llm *l, const char *const *texts, size_t n, float *out, int dims, char *err, size_t errlen);
int llm_embed_dims(const llm *l); /* 0 when none configured */

/* Redacts secrets (keys, tokens, passwords, bearer headers, private keys)
 * and, by configuration, emails, IPs and host names. malloc'd; *count gets
 * how many replacements were made. l may be NULL (the default rules). */
char *llm_redact(const llm *l, const char *text, int *count);

/* {"available","local":{...},"cloud":{...},"tokens_hour","budget_hour",
 *  "requests","failures","fallbacks"} malloc'd JSON. */
char *llm_status_json(const llm *l);

#endif
