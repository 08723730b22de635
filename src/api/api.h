/* api.h: the cell's HTTP/JSON API (libmicrohttpd, its own threads).
 *
 *   GET /v1/status                 version, uptime, host, collectors, own CPU/RSS
 *   GET /v1/metrics                list of series
 *   GET /v1/metrics/{name}         series points (?from&to&step)
 *   GET /v1/events                 event query (?from&to&type&severity&after&limit)
 *   GET /v1/events/stream          server-sent events
 *   GET /metrics                   Prometheus text format 0.0.4
 *
 * Healing (api_heal.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/services               services_json as given
 *   GET  /v1/incidents              incidents_json as given
 *   GET  /v1/incidents/{id}         incident_json; NULL -> 404
 *   GET  /v1/pending                pending_json as given
 *   POST /v1/pending/{id}/approve   body: empty or {"who":"..."} (<= 4 KiB;
 *   POST /v1/pending/{id}/reject    who 1..64 printable ASCII, default "api")
 *                                   -> {"id","result":"approved"|"rejected",
 *                                       "who", "service", "action"}
 *   GET  /v1/audit                  ?since=SEQ&last=N(100, max 10000)&service=S
 *                                   -> {"records":[record objects],"count":N}
 *   GET  /v1/audit/verify           -> 200 {"ok":true,"records":N,...} or
 *                                      200 {"ok":false,"status":"hash_mismatch",
 *                                           "line":L,"seq":S,"reason":"...",...}
 * The brain (api_brain.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/incidents/{id}/diagnosis  diagnosis_json; NULL -> 404
 *   GET  /v1/brain                  brain_json as given (queue, running, done, ...)
 *   POST /v1/diagnose               body {"service":"S"} -> {"incident":N,"service":"S"}
 * Ask (api_ask.c; 503 "unavailable" when the hook is NULL):
 *   POST /v1/ask                    body {"question":"...", "at": TIME (optional:
 *                                   epoch seconds, "now-2h", or ISO 8601)} ->
 *                                   ask_json as given (see docs/ask.md); a bad
 *                                   body is 400 naming the field
 * Anomaly detection (api_anomaly.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/anomalies[?all=1]      anomalies_json as given: the metrics
 *                                   anomalous now, recent episodes, and with
 *                                   all=1 (1/0, true/false, yes/no) every
 *                                   watched series with its score
 *   /metrics also carries ippoc_anomalous_series (how many entries of
 *   anomaly_scores are anomalous) and ippoc_anomaly_score{metric="NAME",
 *   <its labels>} for each anomalous one. With services_json, /metrics
 *   also has ippoc_service_restarts_total and ippoc_service_up per service.
 * The language-model client (api_llm.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/llm                    llm_json as given: providers, budgets
 *                                   (tokens this hour), requests, failures,
 *                                   fallbacks and the recent ones
 * Logs (api_logs.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/logs[?source=S]        logs_json as given: each log source's
 *                                   templates with counts, rates, levels,
 *                                   first and last seen; an unknown source
 *                                   is 404 not_found
 * Dreaming (api_dream.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/digest[?day=YYYY-MM-DD] digest_json (default today): what
 *                                   happened, was healed, is drifting, and
 *                                   what it proposes; 400 for a malformed
 *                                   day, 404 for a day without events
 *   POST /v1/dream                  body empty or {}: starts a dreaming pass
 *                                   -> 202 {"pass":N,"state":"started"}; 409
 *                                   conflict while a pass or a deliberation
 *                                   runs (its brain.dream event tells the end)
 * Knowledge (api_learn.c; 503 "unavailable" when the hook is NULL):
 *   POST /v1/learn                  {"source","title","kind","text"[,"pin"]}
 *                                   (up to API_LEARN_BODY_MAX bytes), or
 *                                   {"url":URL} (the daemon fetches it), or
 *                                   {"feed":URL} (registered, fetched now)
 *                                   -> {"source","doc","chunks","status":
 *                                       "added"|"unchanged",...} / {"feed",
 *                                       "entries","added"[,"error"]}
 *   GET  /v1/knowledge[?limit=N]    stats, the newest N docs (20), feeds
 *   GET  /v1/knowledge/search       ?q=TEXT&mode=hybrid|bm25|vector&limit=N
 *                                   (10, max 100) -> {"hits":[{"source",
 *                                   "title","kind","score","snippet",...}]}
 *   GET  /v1/knowledge/feeds        each followed feed's state
 *   GET  /v1/knowledge/links        ?node=KIND:ID&depth=1..3 (1) -> {"node",
 *                                   "links":[{"from","rel","to","weight","ts"}]}
 * Evolution (api_evolve.c; 503 "unavailable" when the hook is NULL or
 * answers NULL): every GET and POST under /v1/genome, /v1/evolve and
 * /v1/tools goes to evolve_http (docs/evolve.md lists the routes): POST
 * bodies up to API_BODY_MAX, the token rules of other POSTs; the answer's
 * type is JSON when it starts with '{' or '[', text/x-diff for
 * /v1/genome/diff, else text/plain. E.g.
 *   GET  /v1/genome[?path=P&limit=N] the genome's history
 *   GET  /v1/genome/check           {"ok":bool,"error":...}
 *   GET  /v1/genome/diff?rev=REV    a unified diff
 *   GET  /v1/genome/show?rev=R&path=P the file's text at R
 *   POST /v1/genome/rollback        {"rev","reason"} -> {"commit","verdict",...}
 *   GET  /v1/evolve/watch           changes on probation and their outcome
 * Preferences (api_prefs.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/prefs                  prefs_json as given: configured and learned
 *                                   preferences, what each changed and when
 *   POST /v1/prefs/{id}/forget      forgets a learned one -> {"id","result":"forgotten"}
 *                                   (404 unknown, 403 a configured one)
 *   POST /v1/pending/{id}/approve   with {"who":"...","edit":"ACTION"}: the
 *                                   edited action runs instead (heal's policy
 *                                   decides it; errors as approve; 400 when
 *                                   the edit is no action)
 * The mesh (api_mesh.c; 503 "unavailable" when the hook is NULL):
 *   GET  /v1/mesh/status            the cell: enabled, joined, node id, keys,
 *                                   members by state, traffic, rejections
 *   GET  /v1/mesh/peers             every member with state, roles, caps, trust
 *   GET  /v1/mesh/wisdom[?limit=N]  recent wisdom records (N 1..1000, 50)
 *   /metrics also carries the ippoc_mesh_* families while the cell runs.
 * Ids are decimal 1..2^64-1; anything else is 400 bad_request. approve /
 * reject errors: -ENOENT 404 not_found, -ETIMEDOUT 409 expired, -EAGAIN 409
 * conflict (still queued), -EPERM 403 forbidden, -ECANCELED 503 unavailable
 * (the daemon is stopping), -EBUSY 503 busy (the loop did not answer in
 * time), anything else 500 internal; the message is the hook's err text.
 * GET routes answer 405 (Allow: GET, HEAD) to other methods, POST routes 405
 * (Allow: POST) to others.
 *
 * Every error is JSON: {"error":{"code":"...","message":"..."}} with a 4xx/5xx
 * status. A non-loopback listen address requires the configured bearer token.
 * A gate (api_gate.c) holds each new connection until its request has
 * arrived (API_HEAD_TIMEOUT_MS in all, else 408 "timeout"), answers a
 * malformed head itself, and refuses connections over the limits with 503
 * "busy", closing them at once; every answer carries Connection: close.
 *
 * Threads: the API reads memory through its thread-safe read functions and the
 * daemon's status through the status_json hook; every hook is called from an
 * HTTP connection thread and must be thread-safe (approve / reject post their
 * work to the loop and wait, see src/daemon/loopcall.h). The audit endpoints
 * read the file at audit_path with heal_audit_read / heal_audit_verify, so a
 * program linking api_dep also links heal_dep. */
#ifndef IPPOC_API_H
#define IPPOC_API_H

#include "core/core.h"
#include "memory/memory.h"

typedef struct api api_t;

/* One watched series' anomaly score (strings owned by the memory store). */
typedef struct api_anomaly_score {
    const char *name;   /* family, e.g. "memory.used_bytes" */
    const char *labels; /* canonical, "" if none */
    double score;       /* [0, 1] */
    bool anomalous;     /* anomalous now: its run began, keep_firing_for not over */
} api_anomaly_score;

typedef struct api_hooks {
    void *ud;
    /* Returns a malloc'd JSON object text for /v1/status. Thread-safe. */
    char *(*status_json)(void *ud);

    /* Healing; each may be NULL ("healing is not configured"). The readers
     * return malloc'd JSON text (the API frees it), NULL when not ready. */
    char *(*services_json)(void *ud);
    char *(*incidents_json)(void *ud);
    char *(*incident_json)(void *ud, uint64_t id); /* NULL: no such incident */
    char *(*pending_json)(void *ud);
    const char *(*audit_path)(void *ud);           /* fixed while the API runs */
    /* Approve / reject pending action id on behalf of who: 0 or -errno with
     * the reason in err (see the mapping above). May block (up to a few s). */
    int (*approve)(void *ud, uint64_t id, const char *who, char *err, size_t errlen);
    int (*reject)(void *ud, uint64_t id, const char *who, char *err, size_t errlen);

    /* The brain (api_brain.c); each may be NULL (503 "unavailable").
     * diagnosis_json: an incident's diagnosis, NULL when none (yet) -> 404;
     * brain_json: the brain's status; diagnose: a user's question about a
     * service (may block up to a few s): 0 and *incident, or -errno with err
     * (-ENOENT 404, -ENOTSUP 503, -EBUSY 503, others as approve). */
    char *(*diagnosis_json)(void *ud, uint64_t incident);
    char *(*brain_json)(void *ud);
    int (*diagnose)(void *ud, const char *service, uint64_t *incident, char *err, size_t errlen);

    /* Anomaly detection; each may be NULL. anomalies_json: the malloc'd
     * answer of GET /v1/anomalies (all: every watched series too), NULL when
     * out of memory. anomaly_scores: *out gets a malloc'd array (freed by the
     * API); returns its length or -errno. Thread-safe. */
    char *(*anomalies_json)(void *ud, bool all);
    int (*anomaly_scores)(void *ud, api_anomaly_score **out);

    /* The host's node_exporter-named families for /metrics (may be NULL):
     * calls emit once with the whole text; 0 or -errno. Thread-safe. */
    int (*node_metrics)(void *ud, void (*emit)(void *eud, const char *text, size_t len), void *eud);
    /* The log watch (may be NULL): the malloc'd answer of GET /v1/logs for
     * source (NULL: every source); NULL for an unknown source (or when out
     * of memory). Thread-safe. */
    char *(*logs_json)(void *ud, const char *source);
    /* Not a hook: where to put the Unix socket (NULL: none), e.g.
     * "<state_dir>/ippocd.sock". It answers every route without the token
     * (mode 0600: only this user may connect) with its own connection
     * budget, so the owner gets in whatever TCP clients do. */
    const char *socket_path;
    /* ask (api_ask.c; may be NULL: 503): the malloc'd answer of POST /v1/ask
     * to question about moment at_ms (0: none given), or NULL with *status
     * (400, 503) and err. Blocks while a model thinks (bounded by [llm] timeout). */
    char *(*ask_json)(void *ud, const char *question, int64_t at_ms, int *status, char *err, size_t errlen);
    /* llm: the language-model client's status for GET /v1/llm (malloc'd
     * JSON, llm_status_json); may be NULL (503). Thread-safe. */
    char *(*llm_json)(void *ud);
    /* Dreaming (api_dream.c); each may be NULL. digest_json: the malloc'd
     * digest of day ("YYYY-MM-DD"), NULL with err when the day has no
     * events; dream: starts a pass (loop thread, may block a few s): 0 and
     * *pass, or -errno with err (-EBUSY 409, -ENOTSUP 503, others 500). */
    char *(*digest_json)(void *ud, const char *day, char *err, size_t errlen);
    int (*dream)(void *ud, uint64_t *pass, char *err, size_t errlen);
    /* learn (api_learn.c): the knowledge store; each may be NULL (503).
     * learn: POST /v1/learn's body -> malloc'd JSON, or NULL with *status
     * (4xx/5xx) and err; blocks (a fetch). knowledge_json: GET
     * /v1/knowledge; knowledge_search: NULL with *status and err on a bad
     * query; feeds_json: GET /v1/knowledge/feeds. Thread-safe. */
    char *(*learn)(void *ud, const char *body, size_t len, int *status, char *err, size_t errlen);
    char *(*knowledge_json)(void *ud, int limit);
    char *(*knowledge_search)(void *ud, const char *q, const char *mode, int limit, int *status, char *err,
                              size_t errlen);
    char *(*feeds_json)(void *ud);
    char *(*links_json)(void *ud, const char *node, int depth); /* NULL: 503 */
    /* Preferences (api_prefs.c); each may be NULL (503). prefs_json: the
     * malloc'd answer of GET /v1/prefs; prefs_forget: 0, -ENOENT, -EPERM
     * with err; approve_edit: approve with edit text instead (as approve). */
    char *(*prefs_json)(void *ud);
    int (*prefs_forget)(void *ud, const char *id, char *err, size_t errlen);
    int (*approve_edit)(void *ud, uint64_t id, const char *who, const char *edit, char *err, size_t errlen);
    /* Evolution (api_evolve.c; NULL: 503): every GET/POST under /v1/genome,
     * /v1/evolve and /v1/tools. query: the query string re-encoded (NULL:
     * none); body: a POST's (NULL for GET). Returns a malloc'd body (JSON,
     * or text such as a diff) with *status; NULL: 503. Any thread. */
    char *(*evolve_http)(void *ud, const char *method, const char *path, const char *query, const char *body,
                         size_t len, int *status);
    /* propose (api_actions.c; NULL: 503): POST /v1/actions. One typed
     * action (rule-language text such as "restart" or "sysctl vm.swappiness
     * = 10", parsed for service) proposed by who (e.g. "mcp:claude") with
     * why: it opens an incident for service and goes through heal's whole
     * policy and the audit log; whatever the policy would run now is queued
     * for a person's approval instead (heal_engine_propose_ask): a proposal
     * never runs by itself. Returns malloc'd JSON {"incident": ID, "verdict":
     * "queue"|"refuse"|..., "pending": [IDS], "reason": TEXT} or NULL with
     * *status (400 bad action text, 403 refused by the policy, 404 unknown
     * service, 503) and err. Blocks up to a few s (the loop thread). */
    char *(*propose)(void *ud, const char *service, const char *action, const char *who, const char *why,
                     int *status, char *err, size_t errlen);
    /* The mesh (api_mesh.c; NULL: 503): GET /v1/mesh/status, /v1/mesh/peers
     * and /v1/mesh/wisdom?limit=N (what: API_MESH_*; limit 0: the default)
     * as malloc'd JSON text, NULL when it cannot answer (503); mesh_metrics:
     * the ippoc_mesh_* families for /metrics (malloc'd text; NULL: none).
     * Thread-safe. */
    char *(*mesh_json)(void *ud, int what, int limit);
    char *(*mesh_metrics)(void *ud);
} api_hooks;
enum { API_MESH_STATUS = 0, API_MESH_PEERS = 1, API_MESH_WISDOM = 2 };

/* Binds cfg->api_listen (port 0 = any free port), cfg->api_prometheus_listen
 * when set (GET /metrics only, no token) and hooks->socket_path when given,
 * and starts serving. */
int api_start(api_t **out, const core_config *cfg, mem_t *mem, const api_hooks *hooks,
              char *err, size_t errlen);
/* The port actually bound. */
int api_port(const api_t *a);
/* The port of the Prometheus listener, -1 when there is none. */
int api_prometheus_port(const api_t *a);
/* A reload that needs no restart of the API: takes from cfg what /metrics
 * derives from the sense intervals (how long a series may go unset before
 * it is left out). NULL a: nothing. */
void api_reconfigure(api_t *a, const core_config *cfg);
/* Stops accepting, ends open streams, joins the threads. */
void api_stop(api_t *a);

/* Exposed for unit tests: Prometheus name of a series family
 * ("cpu.usage_percent" -> "ippoc_cpu_usage_percent"). */
void api_prom_name(const char *family, char *out, size_t n);

#endif
