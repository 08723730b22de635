/* brain.h: the brain module's public face: it deliberates about what goes
 * wrong (heal's reflexes already acted) and says why.
 *
 * Every signal (incident opened or failed, service exit, anomaly episode,
 * error-level log burst or new error template, config reload, changed file,
 * a user's question) enters one bounded, prioritised queue (the thalamus).
 * Signals about one component close in time merge into one deliberation.
 * Deliberations run on the libuv thread pool, [brain] workers at once: each
 * builds the incident's signature, recalls the nearest remembered cases and
 * runs the rule catalogue; the diagnosis is attached to heal's incident and
 * recorded as a brain.diagnosis event; with act = yes its proposed actions
 * (heal's typed actions only) go to heal's policy, and what healed is
 * remembered in memory's `cases` table for the next time.
 *
 *   [brain]
 *   enabled = yes|no        (default yes)
 *   workers = N             (deliberations at once, 1..4, default 1)
 *   window  = DURATION      (evidence gathered after a signal, default 5s;
 *                            skipped when a remembered case matches)
 *   act     = yes|no        (default yes)
 *   kmsg    = PATH          (default /dev/kmsg)
 *   dpkg_log = PATH         (default /var/log/dpkg.log)
 *   audit_log = PATH        (default: heal's audit log)
 *   queue   = N             (signals waiting at most, default 64)
 *   merge   = DURATION      (signals about one component this close make one
 *                            deliberation, default 30s)
 *   deadline = DURATION     (a deliberation's time limit, default 10s)
 *   min_confidence = X      (an anomaly or log signal of a service opens an
 *                            incident only when the diagnosis names a fault
 *                            with at least this confidence, default 0.6)
 *   wisdom_threshold = X    (a fleet wisdom candidate this heavy, 0..1, may
 *                            be proposed when no remembered case of this
 *                            cell's healed the incident, default 0.3)
 *
 * [dream] (consolidation while idle, the daily digest): see dream.c and
 * docs/brain.md "Dreaming".
 *
 * Threads: brain_new/reconfigure/tick/diagnose/free on the loop thread; the
 * *_json readers from any thread. */
#ifndef IPPOC_BRAIN_H
#define IPPOC_BRAIN_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"
#include "heal/heal.h"
#include "memory/memory.h"

typedef struct brain brain;
typedef struct logs_watch logs_watch; /* logs/logs.h (the log module's watch) */
typedef struct llm llm;               /* llm/llm.h (the language-model client) */

/* Checks [brain]: 0 or -EINVAL with "FILE:LINE: reason". Any thread. */
int brain_config_check(const core_config *cfg, char *err, size_t errlen);
/* heal and logs may be NULL (then nothing is acted on / no log evidence). */
int brain_new(uv_loop_t *loop, const core_config *cfg, mem_t *mem, heal_engine *heal, logs_watch *logs,
              brain **out, char *err, size_t errlen);
int brain_reconfigure(brain *b, const core_config *cfg, char *err, size_t errlen);
/* Once a second after heal's tick: new events -> signals -> deliberations. */
void brain_tick(brain *b, int64_t now_ms);
/* A user's question about service (POST /v1/diagnose): opens an incident
 * and queues a deliberation at once. 0 and *incident, or -errno with err.
 * Loop thread. */
int brain_diagnose_service(brain *b, const char *service, uint64_t *incident, char *err, size_t errlen);
/* Any thread: the diagnosis of an incident (malloc'd JSON), NULL when none (yet). */
char *brain_diagnosis_json(brain *b, uint64_t incident);
/* Any thread: {"enabled","workers","queue","running","done","dropped","merged","cases",...} */
char *brain_status_json(brain *b);
/* The brain's model and knowledge (either may be NULL: the brain then
 * thinks without them). Set once after brain_new, before the first tick;
 * both outlive the brain. Loop thread. */
void brain_set_thinking(brain *b, llm *l, mem_know *know);

/* Answers a question from memory (POST /v1/ask, `ippoc ask`): malloc'd JSON
 * {"question","kind","answer","records":[{"ref","type","id",...}],"model",...}
 * (see docs/ask.md), or NULL with *status (400 bad question, 503) and err.
 * Blocks while a model thinks: an HTTP thread or a worker, never the loop. */
char *brain_ask_json(brain *b, const char *question, int64_t now_ms, int *status, char *err, size_t errlen);
/* The same, about moment at_ms (epoch ms; 0 = none) when the question names
 * no time of its own (POST /v1/ask's "at"). (Added by the ask part.) */
char *brain_ask_at_json(brain *b, const char *question, int64_t at_ms, int64_t now_ms, int *status, char *err,
                        size_t errlen);

/* The daily digest of day ("YYYY-MM-DD", NULL = today): malloc'd JSON, or
 * NULL with err (no such day). Any thread. */
char *brain_digest_json(brain *b, const char *day, char *err, size_t errlen);
/* The same from memory alone (what brain_digest_json reads): for a caller
 * that must not hold the brain while the day's events are read. */
char *brain_digest_mem_json(mem_t *mem, const char *day, char *err, size_t errlen);

/* The preferences in force: configured and learned, with what each changed.
 * malloc'd JSON. Any thread. */
char *brain_prefs_json(brain *b);
/* Forgets one learned preference (DELETE /v1/prefs/ID, `ippoc prefs forget
 * ID`): 0, -ENOENT (no such), -EPERM (configured in [prefs]) with err. Any
 * thread. */
int brain_prefs_forget(brain *b, const char *id, char *err, size_t errlen);

/* Dreaming (docs/brain.md "Dreaming"): what refreshes the detectors'
 * baselines during a pass (the daemon points it at detect_registry_save):
 * called on the loop thread, 0 or -errno. Loop thread. */
typedef int (*brain_dream_hook)(void *ud, int64_t now_ms);
void brain_set_dream_hook(brain *b, brain_dream_hook fn, void *ud);
/* Fleet wisdom (issue 15; docs/brain.md "Fleet wisdom"): what other cells of
 * the mesh learned, one more source of evidence in a diagnosis. The daemon
 * points the hook at the mesh cell's wisdom store. fn answers the candidate
 * actions for an incident: features is the signature's feature strings (a
 * JSON array, as mesh_wisdom_candidates takes them), service_kind the
 * service's kind as the brain knows it (its name; "" for machine-wide); it
 * fills at most max into out, heaviest first, and returns how many or a
 * negative error. weight is 0..1 (the origins' trust already in it), k of n
 * the tries that healed, origins the distinct cells behind it. fn runs on a
 * worker thread (several at once with [brain] workers > 1); outcome runs on
 * the loop thread when an action proposed from fleet wisdom healed (worked)
 * or did not, once per action and attempt. Set once after brain_new, before
 * the first tick (or NULL, NULL to stop asking). Loop thread. */
typedef struct brain_wisdom_cand {
    char action[128];
    double weight;
    unsigned k, n;
    int origins;
} brain_wisdom_cand;
typedef int (*brain_wisdom_fn)(void *ud, const json_t *features, const char *service_kind, brain_wisdom_cand *out,
                               int max); /* how many, or a negative error */
typedef void (*brain_wisdom_outcome_fn)(void *ud, const char *action, const json_t *features, bool worked);
void brain_set_wisdom(brain *b, brain_wisdom_fn fn, brain_wisdom_outcome_fn outcome, void *ud);

/* Starts a dreaming pass now (POST /v1/dream, `ippoc dream`): 0 and *pass
 * (its number, in the brain.dream event it records), -EBUSY (a pass or a
 * deliberation is running) or -ENOTSUP (the brain is off), with err. Loop
 * thread. */
int brain_dream_start(brain *b, uint64_t *pass, char *err, size_t errlen);
/* ---- reading documents and following feeds (learn.c; docs/knowledge.md) ----
 * The learner puts documents into the knowledge store (mem_know) and follows
 * Atom/RSS feeds on its own thread (never the loop): due feeds are fetched
 * every feed_interval; a feed that cannot be reached is retried with backoff
 * (doubling from a minute up to feed_interval), quietly (debug log only).
 * Nothing is fetched unless configured or registered.
 *
 *   [knowledge]
 *   feed_interval = DURATION  (between fetches of a feed, default 6h, >= 1s)
 *   feed_pdf      = yes|no    (a paper's full text from its PDF when
 *                              pdftotext is installed, default no)
 *   feeds         = URL ...   (feeds followed from the configuration,
 *                              blank-separated, http/https only)
 *   fetch_timeout = DURATION  (one download at most, default 30s)
 *   fetch_max     = SIZE      (one download at most, default 20MB) */
typedef struct brain_learn brain_learn;

/* Checks the learner's [knowledge] keys (others are left to the store):
 * 0 or -EINVAL with "FILE:LINE: reason". Any thread. */
int brain_learn_config_check(const core_config *cfg, char *err, size_t errlen);
/* know may be NULL (every request then answers 503). Starts the feed
 * thread. Loop thread. */
int brain_learn_new(const core_config *cfg, mem_know *know, brain_learn **out, char *err, size_t errlen);
int brain_learn_reconfigure(brain_learn *l, const core_config *cfg, char *err, size_t errlen);
/* POST /v1/learn: body {"source","title","kind","text"[,"pin"]} (a document
 * the caller read), {"url":URL[,"kind","pin"]} (fetched here) or
 * {"feed":URL} (registered, then fetched once now). malloc'd JSON answer,
 * or NULL with *status (400, 413, 502, 503) and err. Blocks: an HTTP thread. */
char *brain_learn_json(brain_learn *l, const char *body, size_t len, int *status, char *err, size_t errlen);
/* GET /v1/knowledge: {"stats":{...},"docs":[newest],"feeds":[...]}. */
char *brain_knowledge_json(brain_learn *l, int limit);
/* GET /v1/knowledge/feeds: {"feeds":[{"url","last_fetch","last_success",
 * "failures","next_try","entries","error",...}]}. */
char *brain_learn_feeds_json(brain_learn *l);
/* GET /v1/knowledge/search: mode "hybrid"|"bm25"|"vector", limit 1..100:
 * {"query","mode","hits":[{"source","title","kind","score","snippet",...}]}
 * or NULL with *status and err. */
char *brain_knowledge_search_json(brain_learn *l, const char *query, const char *mode, int limit, int *status,
                                  char *err, size_t errlen);
/* GET /v1/knowledge/links: {"node","links":[...]} (mem_know_links_json). */
char *brain_knowledge_links_json(brain_learn *l, const char *node, int depth);
/* Cuts ongoing downloads short and stops following feeds, so the API's
 * threads end quickly (call before api_stop). Any thread; NULL ok. */
void brain_learn_stop(brain_learn *l);
/* Stops the feed thread (an ongoing download is cut short), frees. NULL ok. */
void brain_learn_free(brain_learn *l);

/* Waits for running deliberations (runs the loop), then frees. NULL is fine. */
void brain_free(brain *b);

#endif
