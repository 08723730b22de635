/* api_int.h: internals shared by the files of src/api and by its unit tests.
 *
 * The pure helpers (no MHD, no store) live here so tests can call them:
 * a growing text buffer, label parsing and canonicalisation, Prometheus
 * naming, value formatting and exposition, query-parameter and time-range
 * validation, the bearer-token check, JSON shapes of series and events.
 * The MHD-facing handlers are declared at the bottom. */
#ifndef IPPOC_API_INT_H
#define IPPOC_API_INT_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>

#include "api/api.h"

/* ---- limits ------------------------------------------------------------ */
#define API_MAX_URI 4096        /* raw request target, path + query */
#define API_MAX_PARAMS 32       /* query parameters in one request */
#define API_MAX_LABELS 32       /* labels in one series key */
#define API_LABEL_MAX 256       /* one label name or value, unescaped */
#define API_EVENTS_DEFAULT_LIMIT 100
#define API_EVENTS_MAX_LIMIT 10000
#ifndef API_SSE_KEEPALIVE_MS /* overridable for timing experiments */
#define API_SSE_KEEPALIVE_MS 15000
#endif
#define API_SSE_WAIT_SLICE_MS 1000 /* longest single mem_events_wait */
#define API_BODY_MAX 4096       /* request body of a POST */
#define API_LEARN_BODY_MAX (24 * 1024 * 1024) /* POST /v1/learn: a document's text (learn) */
#define API_EVOLVE_BODY_MAX (1024 * 1024)     /* POST /v1/evolve, /v1/tools, /v1/genome: a space file, a tool */
#define API_WHO_MAX 64          /* "who" of an approval, bytes */
#define API_ID_MAX_DIGITS 20    /* UINT64_MAX has 20 digits */
#define API_AUDIT_DEFAULT_LAST 100
#define API_AUDIT_MAX_LAST 10000
#define API_TIME_MAX_MS INT64_C(32503680000000) /* year 3000: beyond is absurd */

/* ---- the server ----------------------------------------------------------- */
/* ---- the gate in front of MHD (api_gate.c, api_head.c) ------------------ */
#define API_STR_(x) #x
#define API_STR(x) API_STR_(x)
#define API_HEAD_MAX 16384 /* header lines of a request, bytes */
#ifndef API_HEAD_TIMEOUT_MS /* the whole request (head and a small body), not per byte */
#define API_HEAD_TIMEOUT_MS 3000
#endif
#define API_PENDING_MAX 128 /* connections a gate holds while their request arrives */
#define API_CHUNKED_WIRE_MAX (2 * API_BODY_MAX + 1024) /* a chunked body as sent */

/* What api_head_check learned of a request head. */
typedef struct api_head {
    unsigned status;    /* API_HEAD_BAD: the HTTP status to answer */
    const char *code;   /* and the error code */
    char msg[160];      /* and the message */
    size_t head_len;    /* API_HEAD_OK: bytes of the head */
    size_t need;        /* head and body */
    long long content_length; /* -1: none */
    bool http11, chunked, expect_continue;
    unsigned hosts;
    bool big;           /* POST /v1/learn, /v1/evolve/..., /v1/tools/..., /v1/genome/...: read by MHD, capped by the route */
} api_head;
enum { API_HEAD_MORE = 0, API_HEAD_OK = 1, API_HEAD_BAD = -1 };
/* Checks the first len bytes of a request: API_HEAD_OK when the head is
 * complete and well-formed and its body (Content-Length or chunked, at most
 * API_BODY_MAX) has arrived whole and well-formed; API_HEAD_MORE when more
 * bytes are needed (head_len > 0 once the head is complete: a client that
 * sent Expect: 100-continue waits for a 100); API_HEAD_BAD with status,
 * code and message otherwise. */
int api_head_check(const char *buf, size_t len, api_head *h);

typedef struct api_gate api_gate;
/* A gate on the listening socket fd (taken: closed by api_gate_free), for
 * at most max_active connections in MHD, per_ip of them (0: any) from one
 * address. Start MHD with MHD_OPTION_NOTIFY_CONNECTION api_gate_notify and
 * the gate as its cls, then api_gate_run. */
int api_gate_new(api_gate **out, int fd, unsigned max_active, unsigned per_ip, char *err, size_t errlen);
int api_gate_run(api_gate *g, struct MHD_Daemon *mhd, char *err, size_t errlen);
void api_gate_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                     enum MHD_ConnectionNotificationCode code);
/* Stops the thread, closes what it holds and the listening socket. */
void api_gate_stop(api_gate *g);
/* Stops it if needed and frees it: only once its MHD daemon has stopped
 * (MHD calls api_gate_notify until then). */
void api_gate_free(api_gate *g);

/* One listening socket: the main one (token, every route), the Unix socket
 * in the state dir (file permissions instead of the token), the Prometheus
 * one (GET /metrics only, no token). */
enum api_listener_kind { API_L_MAIN, API_L_UNIX, API_L_PROM, API_L_COUNT };
typedef struct api_listener {
    struct api *a;
    int kind;
    api_gate *gate;
    struct MHD_Daemon *mhd;
    int port;       /* TCP: the port bound */
    char path[108]; /* Unix: the socket file, removed at stop */
} api_listener;

struct api {
    api_listener lis[API_L_COUNT];
    mem_t *mem;
    api_hooks hooks;
    char token[256];
    int64_t max_points;
    int64_t ram_window_ms, ret10s_ms, ret1m_ms;
    _Atomic int64_t prom_stale_ms; /* /metrics leaves out series not set for this long (api_prom_stale_ms);
                                      api_reconfigure sets it */
    int max_streams;
    atomic_int stopping;
    atomic_int streams;  /* open SSE streams */
    atomic_int in_wait;  /* stream threads inside mem_events_wait */
    char web_dir[1024];  /* IPPOC_WEB_DIR: the dashboard's files read from there ("": the built-in copies) */
};

/* ---- growing buffer ---------------------------------------------------- */
typedef struct api_buf {
    char *p;
    size_t len, cap;
    bool oom; /* an append failed; the content is cut */
} api_buf;

void api_buf_free(api_buf *b);
bool api_buf_reserve(api_buf *b, size_t extra);
void api_buf_add(api_buf *b, const char *s, size_t n);
void api_buf_puts(api_buf *b, const char *s);
void api_buf_printf(api_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- labels ---------------------------------------------------------------- */
typedef struct api_label {
    char name[API_LABEL_MAX];
    char value[API_LABEL_MAX];
} api_label;

/* Parses `a="x",b="y"` (values with \" \\ \n escapes; optional spaces around
 * tokens; trailing comma allowed; "" = no labels). Returns the count or
 * -EINVAL with a reason in err. */
int api_labels_parse(const char *s, api_label *out, int max, char *err, size_t errlen);
/* Writes labels sorted by name, escaped, as `a="x",b="y"`. Duplicate names
 * are an error (-EINVAL); -ENAMETOOLONG if out is too small. */
int api_labels_format(api_label *l, int n, char *out, size_t outlen);
/* Parse + sort + format. */
int api_labels_canon(const char *in, char *out, size_t outlen, char *err, size_t errlen);
/* Splits "name{labels}" into name and the text between the braces. A key
 * without braces gives labels "". -EINVAL if malformed. */
int api_split_key(const char *key, char *name, size_t nn, char *labels, size_t ln);
/* {"cpu":"total",...} from a canonical labels string ({} if unparsable). */
json_t *api_labels_json(const char *labels);
/* "name{labels}" or "name" when labels is empty; malloc'd. */
char *api_series_key(const char *name, const char *labels);

/* ---- Prometheus ------------------------------------------------------------- */
/* Label name made valid for Prometheus ([a-zA-Z_][a-zA-Z0-9_]*). */
void api_prom_label_name(const char *in, char *out, size_t n);
/* Prometheus float: shortest text that reads back the same, "NaN", "+Inf",
 * "-Inf". */
void api_prom_value(double v, char *buf, size_t n);
/* Appends s with the text format's escapes (core_prom_escape): a label value
 * when quote, HELP text otherwise. */
void api_prom_escape(api_buf *b, const char *s, bool quote);
/* The exported name of a sensed family (its type in *type), or NULL when it
 * is not exported: absent from prometheus.c's table, a rate (MEM_RATE) or a
 * percentage. */
const char *api_prom_export_name(const char *family, int kind, const char *unit, const char **type);
/* Appends the exported series (any order; see api_prom_export_name) set at
 * or after stale_before_ms (0: any), plus ippocd's self metrics when
 * st != NULL. Returns 0, or -ENOMEM (b->oom set). */
int api_prom_render(api_buf *b, const mem_series_info *s, size_t n, const mem_stats *st,
                    int64_t stale_before_ms);
/* How long a series may go unset before /metrics leaves it out (a watched
 * process gone keeps its last value in memory): 3 x the longest interval of
 * the enabled [sense] groups, at least 10 s. */
int64_t api_prom_stale_ms(const core_config *cfg);
/* Appends one family of one sample: HELP, TYPE, name+labels ("" or
 * "{k=\"v\"}", already escaped) and value. */
void api_prom_self(api_buf *b, const char *name, const char *type, const char *help, const char *labels,
                   double v);
/* Appends ippoc_service_restarts_total{service} (counter) and
 * ippoc_service_up{service} from a services_json answer; nothing when it is
 * NULL, unparsable or lists no service. 0 or -ENOMEM. */
int api_prom_render_services(api_buf *b, const char *services_json);
/* Appends ippoc_anomalous_series (how many entries are anomalous), then
 * ippoc_anomaly_score (HELP, TYPE, one gauge per anomalous entry, sorted by
 * family then labels): labels metric="NAME" then the series' own (one named
 * "metric" becomes "exported_metric"); no score family when none is
 * anomalous. 0 or -ENOMEM. */
int api_prom_render_anomaly(api_buf *b, const api_anomaly_score *s, size_t n);
/* prom_gpu.c: appends the gpu.* series as dcgm-exporter's DCGM_FI_DEV_*
 * families (nothing without GPU series). 0 or -ENOMEM. */
int api_prom_gpu(api_buf *b, const mem_series_info *s, size_t n);
/* A yes/no query value: 1/0, true/false, yes/no (any case). 0 or -EINVAL. */
int api_parse_flag(const char *v, bool *out);

/* ---- requests ----------------------------------------------------------------- */
/* Checks the raw request target: 0 ok, -E2BIG longer than API_MAX_URI,
 * -EINVAL bad percent-encoding or an encoded/raw NUL or control byte. */
int api_uri_check(const char *uri);
/* Constant-time bearer check; true when token is empty. */
bool api_token_ok(const char *authorization, const char *token);

/* Validates query parameters against the allowed list (NULL-terminated):
 * unknown, repeated or value-less parameters are errors. On success vals[i]
 * holds the value of allowed[i] or NULL. Returns 0 or -EINVAL (err names the
 * parameter). */
int api_params_check(const char *const *keys, const char *const *values, size_t n,
                     const char *const *allowed, const char **vals, char *err, size_t errlen);

enum { API_RANGE_OK = 0, API_RANGE_BAD = -1, API_STEP_BAD = -2 };
/* Parses from/to (NULL = now-15m / now) and step (NULL = 0, auto). */
int api_parse_range(const char *from, const char *to, const char *step, int64_t now_ms,
                    int64_t *from_ms, int64_t *to_ms, int64_t *step_ms, char *err, size_t errlen);
/* Number of buckets of step in [from, to]. */
int64_t api_points_for(int64_t from_ms, int64_t to_ms, int64_t step_ms);
/* The step the store really used: step_ms rounded up to the resolution of
 * the source it answered from (MEM_SRC_*). */
int64_t api_effective_step(int64_t step_ms, int src);
/* Step chosen when none is given: whole seconds, at least the resolution of
 * the tier that holds from_ms, giving at most max_points buckets. */
int64_t api_auto_step(const struct api *a, int64_t from_ms, int64_t to_ms, int64_t now_ms);

/* ---- routing (api_route.c) ------------------------------------------------ */
typedef enum api_route_id {
    R_NONE, R_STATUS, R_METRICS, R_METRIC, R_EVENTS, R_STREAM, R_PROM,
    R_SERVICES, R_INCIDENTS, R_INCIDENT, R_PENDING, R_APPROVE, R_REJECT, R_AUDIT, R_AUDIT_VERIFY,
    R_ANOMALIES,
    R_LOGS,
    R_DIAGNOSIS, R_BRAIN, R_DIAGNOSE, /* the brain (api_brain.c) */
    R_ASK, /* ask (api_ask.c) */
    R_LLM, /* the language-model client (api_llm.c) */
    R_DIGEST, R_DREAM, /* dreaming (api_dream.c) */
    R_LEARN, R_KNOWLEDGE, R_KNOWLEDGE_SEARCH, R_KNOWLEDGE_FEEDS, R_KNOWLEDGE_LINKS, /* learn (api_learn.c) */
    R_PREFS, R_PREF_FORGET, /* preferences (api_prefs.c) */
    R_EVOLVE, /* /v1/genome, /v1/evolve, /v1/tools and below, GET and POST (api_evolve.c) */
    R_ACTIONS, /* POST /v1/actions: a proposed typed action (api_actions.c) */
    R_WEB,     /* the dashboard's static files: "/", "/index.html", "/assets/..." (api_web.c); no token */
    R_MESH_STATUS, R_MESH_PEERS, R_MESH_WISDOM, /* the mesh (api_mesh.c) */
} api_route_id;

typedef struct api_route {
    api_route_id id;
    const char *arg; /* R_METRIC: the name (to the end); id routes: the {id} segment */
    size_t arglen;
} api_route;

/* Matches a decoded request path. Id segments are any non-empty text
 * without '/' (the handler answers 400 for a bad id). */
api_route api_route_match(const char *url);
/* True for the routes that take POST (and only POST). */
bool api_route_is_post(api_route_id id);
/* The Allow header of a route: "GET, HEAD", "POST" or "GET, HEAD, POST". */
const char *api_route_allow(api_route_id id);
/* Whether this request's body is read: a POST-only route, or a POST to a
 * route that takes both (R_EVOLVE). */
bool api_route_takes_body(api_route_id id, const char *method);

/* ---- the dashboard's files (api_web.c, api_web_parse.c, web_embed.c) ------- */
/* One file of web/ built into the binary by tools/embed_web.py (the
 * generated web_embed.c holds the table). */
typedef struct api_web_file {
    const char *name;  /* relative to web/: "index.html", "vendor/uPlot.min.css" */
    const char *ctype; /* Content-Type, with charset for text */
    const char *etag;  /* strong ETag of the identity bytes, quoted */
    const unsigned char *data;
    size_t len;
    const unsigned char *gz; /* a gzip'd copy; NULL when it would not be smaller */
    size_t gzlen;
} api_web_file;
/* The built-in file of that name, or NULL. */
const api_web_file *api_web_embedded(const char *name);
/* The file name a (decoded) web path names: "/" and "/index.html" ->
 * "index.html", "/assets/NAME" -> NAME when NAME is a plain relative path
 * (no empty, "." or ".." segment, no backslash); NULL otherwise. */
const char *api_web_name(const char *url);
/* Whether an Accept-Encoding value allows gzip: "gzip" or "x-gzip" with a
 * q above 0, or "*" above 0 when gzip is not named. NULL: false. */
bool api_web_accepts_gzip(const char *accept_encoding);
/* Whether an If-None-Match value ("*" or a list of entity tags, compared
 * weakly: a W/ prefix is ignored) matches etag (quoted) or its gzip'd
 * variant (the same with "-gz" before the closing quote). */
bool api_web_etag_match(const char *if_none_match, const char *etag);
/* Reads IPPOC_WEB_DIR into a->web_dir (api_start) and logs it. */
void api_web_init(struct api *a);

/* ---- healing (api_heal_parse.c) -------------------------------------------- */
/* A decimal id of n bytes: digits only, 1..UINT64_MAX. 0 or -EINVAL
 * (empty, sign, blank, other byte, zero, too many digits, overflow). */
int api_parse_id(const char *s, size_t n, uint64_t *out);
/* The body of approve / reject: empty (or only blanks), or a JSON object
 * whose only member may be "who": a string of 1..API_WHO_MAX printable ASCII
 * bytes. who gets it, or "api". 0 or -EINVAL with the reason in err. */
int api_parse_action_body(const char *body, size_t len, char *who, size_t wholen, char *err,
                          size_t errlen);
/* HTTP status and error code for a negative errno from approve / reject. */
typedef struct api_err_map {
    unsigned status;
    const char *code;
} api_err_map;
api_err_map api_heal_err_map(int rc);
/* "hash mismatch" -> "hash_mismatch" (blanks become '_') into out. */
void api_status_token(const char *name, char *out, size_t n);

/* ---- JSON shapes ------------------------------------------------------------- */
/* {"error":{"code":..,"message":..}} compact text, malloc'd. Bytes outside
 * printable ASCII in message become '?'. */
char *api_error_body(const char *code, const char *message);
json_t *api_real_or_null(double v);
json_t *api_event_json(const mem_event *e);
/* One SSE frame: "id: N\nevent: TYPE\ndata: {json}\n\n". */
void api_sse_frame(api_buf *b, const mem_event *e);

/* ---- responses (api_json.c) ------------------------------------------------ */
enum MHD_Result api_send_buf(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                             const char *ctype); /* takes body (malloc'd) */
enum MHD_Result api_send_json(struct MHD_Connection *c, unsigned status, json_t *obj); /* steals */
enum MHD_Result api_send_error(struct MHD_Connection *c, unsigned status, const char *code,
                               const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* 405 method_not_allowed with the Allow header ("GET, HEAD" or "POST"). */
enum MHD_Result api_send_not_allowed(struct MHD_Connection *c, const char *method, const char *allow);
/* Reads the query parameters through api_params_check; on failure sends the
 * 400 itself and returns false (*ret holds the MHD result). */
bool api_get_params(struct MHD_Connection *c, const char *const *allowed, const char **vals,
                    enum MHD_Result *ret);
/* api_get_params for a request that takes no query parameters. */
bool api_no_params(struct MHD_Connection *c, enum MHD_Result *ret);

/* ---- handlers --------------------------------------------------------------- */
enum MHD_Result api_h_metrics_list(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_h_metric(struct api *a, struct MHD_Connection *c, const char *name);
enum MHD_Result api_h_events(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_h_events_stream(struct api *a, struct MHD_Connection *c, bool head);
enum MHD_Result api_h_prometheus(struct api *a, struct MHD_Connection *c);
/* api_heal.c: which reader a GET of a whole list uses. */
enum api_heal_list { API_LIST_SERVICES, API_LIST_INCIDENTS, API_LIST_PENDING };
enum MHD_Result api_h_heal_list(struct api *a, struct MHD_Connection *c, enum api_heal_list which);
enum MHD_Result api_h_incident(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen);
/* POST /v1/pending/{id}/approve|reject with the body received. */
enum MHD_Result api_h_pending_act(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen,
                                  bool approve, const char *body, size_t len);
enum MHD_Result api_h_audit(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_h_audit_verify(struct api *a, struct MHD_Connection *c);
/* api_anomaly.c */
enum MHD_Result api_h_anomalies(struct api *a, struct MHD_Connection *c);
/* api_brain.c */
enum MHD_Result api_h_diagnosis(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen);
enum MHD_Result api_h_brain(struct api *a, struct MHD_Connection *c);
/* api_llm.c */
enum MHD_Result api_h_llm(struct api *a, struct MHD_Connection *c);
/* api_prefs.c */
enum MHD_Result api_h_prefs(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_h_pref_forget(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen);
/* api_evolve.c: url is the decoded path; body NULL for GET */
enum MHD_Result api_h_evolve(struct api *a, struct MHD_Connection *c, const char *url, const char *method,
                             const char *body, size_t len);
/* approve: with an "edit" member in the body, approve_edit; else api_h_pending_act */
enum MHD_Result api_h_approve(struct api *a, struct MHD_Connection *c, const char *id, size_t idlen,
                              const char *body, size_t len);
enum MHD_Result api_h_diagnose(struct api *a, struct MHD_Connection *c, const char *body, size_t len);
/* The service named by POST /v1/diagnose's body {"service":"S"}: 0 or
 * -EINVAL with the reason in err. */
int api_parse_diagnose_body(const char *body, size_t len, char *service, size_t n, char *err, size_t errlen);
/* Appends the anomalous series' scores to a /metrics answer (nothing
 * without the hook). */
void api_prom_anomaly(struct api *a, api_buf *b);
/* api_dream.c */
enum MHD_Result api_h_digest(struct api *a, struct MHD_Connection *c);
enum MHD_Result api_h_dream(struct api *a, struct MHD_Connection *c, const char *body, size_t len);
/* api_logs.c */
enum MHD_Result api_h_logs(struct api *a, struct MHD_Connection *c);
/* api_learn.c */
enum MHD_Result api_h_learn(struct api *a, struct MHD_Connection *c, const char *body, size_t len);
enum MHD_Result api_h_knowledge(struct api *a, struct MHD_Connection *c, api_route_id id);
/* ask (api_ask.c): POST /v1/ask. The body's question (malloc'd into
 * *question) and "at" (epoch ms, 0 = none): 0 or -EINVAL with err naming the field. */
enum MHD_Result api_h_ask(struct api *a, struct MHD_Connection *c, const char *body, size_t len);
/* POST /v1/actions (api_actions.c): {"service", "action", "reason", "who"?}. */
/* The body of POST /v1/actions (api_actions_parse.c, pure): exactly the
 * members "service" (1..API_PROPOSE_SERVICE_MAX printable ASCII, no blank),
 * "action" (1..API_PROPOSE_ACTION_MAX bytes, no control byte), "reason"
 * (1..API_PROPOSE_REASON_MAX bytes of text, not all blank, no control byte)
 * and optionally "who" (as approve's: 1..API_WHO_MAX printable ASCII,
 * default "api"). 0, or -EINVAL with err naming the member and the reason. */
#define API_PROPOSE_SERVICE_MAX 63
#define API_PROPOSE_ACTION_MAX 480
#define API_PROPOSE_REASON_MAX 1000
typedef struct api_proposal {
    char service[API_PROPOSE_SERVICE_MAX + 1];
    char action[API_PROPOSE_ACTION_MAX + 1];
    char reason[API_PROPOSE_REASON_MAX + 1];
    char who[API_WHO_MAX + 1];
} api_proposal;
int api_parse_propose_body(const char *body, size_t len, api_proposal *out, char *err, size_t errlen);
enum MHD_Result api_h_actions(struct api *a, struct MHD_Connection *c, const char *body, size_t len);
/* The dashboard's static files (api_web.c): GET/HEAD of url ("/",
 * "/index.html" or "/assets/NAME"); no token (they hold no data: every
 * request the page makes for data carries it). */
enum MHD_Result api_h_web(struct api *a, struct MHD_Connection *c, const char *url, bool head);
/* api_mesh.c: GET /v1/mesh/status|peers|wisdom */
enum MHD_Result api_h_mesh(struct api *a, struct MHD_Connection *c, api_route_id id);
int api_parse_ask_body(const char *body, size_t len, int64_t now_ms, char **question, int64_t *at_ms, char *err,
                       size_t errlen);

#endif
