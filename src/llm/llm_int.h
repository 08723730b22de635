/* llm_int.h: the language-model client's internals shared by its files:
 * the parsed [llm] section (llm_config.c), HTTP transfers and the SSE parser
 * (llm_http.c), the OpenAI and Anthropic wire formats (llm_openai.c,
 * llm_anthropic.c), the small JSON-schema check (llm_schema.c) and the
 * redaction rules (redact.c). Not a public header: tests include it to
 * check the parts on their own. */
#ifndef IPPOC_LLM_INT_H
#define IPPOC_LLM_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"

/* ---- configuration (llm_config.c) ------------------------------------------ */
enum { LLM_CLOUD_NONE = 0, LLM_CLOUD_OPENAI, LLM_CLOUD_ANTHROPIC };

#define LLM_URL_MAX 1024
#define LLM_NAME_MAX 256

typedef struct llm_redactor llm_redactor; /* redact.c: compiled host rules */

typedef struct llm_cfg {
    char local[LLM_URL_MAX]; /* base URL without a trailing '/'; "" = none */
    char local_model[LLM_NAME_MAX];
    bool local_remote;       /* local is not on loopback: redact and record */
    int cloud;               /* LLM_CLOUD_* */
    char cloud_url[LLM_URL_MAX];
    char cloud_model[LLM_NAME_MAX];
    char key_file[CORE_PATH_MAX];
    int64_t timeout_ms;
    int64_t connect_timeout_ms; /* min(timeout, 5 s) */
    int64_t tokens_per_hour, tokens_per_incident;
    double unsure_below;
    char *redact_hosts; /* comma-separated as configured, or NULL */
    bool redact_emails, redact_ips;
    bool mesh; /* [llm] mesh: ask a reasoning peer (llm_set_remote) before the cloud */
    char embeddings[LLM_URL_MAX];
    char embeddings_model[LLM_NAME_MAX];
    bool embeddings_remote;
    int embeddings_dims; /* 0: learned from the first answer */
    llm_redactor *redactor;
} llm_cfg;

/* Parses [llm] of cfg into *out (defaults first). 0 or -EINVAL with
 * "FILE:LINE: reason" in err, -ENOMEM. */
int llm_cfg_parse(const core_config *cfg, llm_cfg *out, char *err, size_t errlen);
void llm_cfg_clear(llm_cfg *c);
/* True when url's host is a loopback name or address. */
bool llm_url_is_loopback(const char *url);
const char *llm_cloud_name(int cloud); /* "none", "openai", "anthropic" */

/* ---- redaction (redact.c) ---------------------------------------------------- */
/* Compiles the host-name rules of a comma-separated list (NULL or "": none).
 * 0 or -EINVAL with the reason. */
int llm_redactor_new(const char *hosts, bool emails, bool ips, llm_redactor **out, char *err, size_t errlen);
void llm_redactor_free(llm_redactor *r);
/* r NULL: the default rules (secrets, emails, IPs). malloc'd text; *count
 * (may be NULL) gets the number of replacements. NULL when out of memory. */
char *llm_redact_with(const llm_redactor *r, const char *text, int *count);

/* ---- HTTP (llm_http.c) -------------------------------------------------------- */
typedef struct llm_http_req {
    const char *url;
    const char *body;          /* JSON text, POSTed */
    const char *const *headers; /* NULL-terminated "Name: value" list, may be NULL */
    int64_t timeout_ms, connect_timeout_ms;
    /* When set and the status is 2xx, each piece of the body as it arrives. */
    void (*on_data)(void *ud, const char *buf, size_t n);
    void *ud;
    const atomic_bool *cancel; /* may be NULL: the transfer stops when set */
} llm_http_req;

enum { LLM_NET_OK = 0, LLM_NET_REFUSED, LLM_NET_TIMEOUT, LLM_NET_ERROR, LLM_NET_CANCELED };

typedef struct llm_http_res {
    long status;             /* 0 when no answer */
    int net;                 /* LLM_NET_* */
    char *body;              /* malloc'd, NUL-terminated (may be NULL) */
    size_t len;
    int64_t retry_after_ms;  /* -1: no Retry-After header */
    char err[256];           /* why, when net != OK */
} llm_http_res;

/* Blocking POST on the calling thread. 0 when an HTTP answer came (any
 * status), -EIO otherwise (res->net and res->err say why), -ENOENT when
 * libcurl cannot be loaded. res is always filled (llm_http_res_free). */
int llm_http_post(const llm_http_req *q, llm_http_res *res);
void llm_http_res_free(llm_http_res *res);

/* Incremental text/event-stream parser: feed it bytes as they come, in any
 * split; it calls on_event(ud, event, data) for each event with data
 * ("message" when no event: line), joins multi-line data with '\n', skips
 * comments (": keep-alive"), strips '\r', and sets done on "data: [DONE]"
 * (not passed on). */
typedef struct llm_sse {
    char *line;
    size_t llen, lcap;
    char *data;
    size_t dlen, dcap;
    bool has_data;
    char event[64];
    bool done;
    int error; /* -ENOMEM once out of memory */
    void (*on_event)(void *ud, const char *event, const char *data);
    void *ud;
} llm_sse;

void llm_sse_init(llm_sse *s, void (*on_event)(void *ud, const char *event, const char *data), void *ud);
void llm_sse_feed(llm_sse *s, const char *buf, size_t n);
void llm_sse_finish(llm_sse *s); /* a last event not followed by a blank line */
void llm_sse_free(llm_sse *s);

/* ---- one provider's answer (llm_openai.c, llm_anthropic.c) ---------------------- */
typedef struct llm_reply {
    char *content;  /* grows while streaming */
    size_t len, cap;
    char *refusal;  /* malloc'd or NULL */
    char model[LLM_NAME_MAX];
    char stop[32];  /* finish/stop reason */
    double prob_sum; /* sum of token probabilities */
    long prob_n;
    int prompt_tokens, completion_tokens; /* -1: not reported */
    char error[256]; /* an error event or body */
    void (*on_delta)(void *ud, const char *text, size_t len);
    void *ud;
    llm_sse sse;
} llm_reply;

void llm_reply_init(llm_reply *r, void (*on_delta)(void *ud, const char *text, size_t len), void *ud);
void llm_reply_free(llm_reply *r);
int llm_reply_append(llm_reply *r, const char *text, size_t len, bool delta);
double llm_reply_confidence(const llm_reply *r); /* NaN when no logprobs */

typedef struct llm_prompt {
    const char *model;
    const char *system, *user; /* after redaction when it leaves */
    const char *schema_name, *schema; /* schema NULL: prose */
    int max_tokens;
    bool stream;
} llm_prompt;

/* Request bodies (malloc'd JSON text, NULL when out of memory or when the
 * schema is not JSON). */
char *llm_openai_body(const llm_prompt *p);
char *llm_anthropic_body(const llm_prompt *p);
/* llm_openai.c, for both providers: a JSON string into dst (untouched when v
 * is not one); the token counts of a usage object under those keys. */
void llm_take_str(char *dst, size_t n, const json_t *v);
void llm_take_usage(llm_reply *r, const json_t *u, const char *in_key, const char *out_key);
/* llm_http.c: grows *buf (capacity *cap, doubling from first) to hold need
 * bytes; false when out of memory (*buf unchanged). */
bool llm_grow(char **buf, size_t *cap, size_t need, size_t first);
/* A whole answer's JSON object, or NULL with the reason in r->error
 * (llm_openai.c; serves both providers' parsers). */
json_t *llm_reply_json(const char *body, size_t len, llm_reply *r);
/* Whole answers: 0 or -EPROTO with the reason in r->error. */
int llm_openai_parse(const char *body, size_t len, llm_reply *r);
int llm_anthropic_parse(const char *body, size_t len, llm_reply *r);
/* Streamed answers: feed the SSE events (use with llm_sse as ud = reply). */
void llm_openai_event(void *reply, const char *event, const char *data);
void llm_anthropic_event(void *reply, const char *event, const char *data);
/* The API's error message of an error body, or "" (out: n bytes). */
void llm_error_message(const char *body, char *out, size_t n);

/* ---- JSON-schema check (llm_schema.c) ------------------------------------------- */
/* Checks v against schema: type (string, number, integer, boolean, object,
 * array, null, or a list of them), properties, required,
 * additionalProperties false, enum, items, minItems/maxItems,
 * minLength/maxLength, minimum/maximum. Other keywords are ignored. 0 or
 * -EINVAL with "PATH: reason" in why. */
int llm_schema_check(const json_t *schema, const json_t *v, char *why, size_t whylen);

#endif
