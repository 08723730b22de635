/* api.c: the HTTP server: listening, limits, routing, authentication, and
 * shutdown. Handlers live in api_metrics.c, api_events.c, prometheus.c,
 * api_heal.c and api_anomaly.c; the route table in api_route.c.
 *
 * Up to three listeners (the main TCP one, the owner's Unix socket in the
 * state dir, the optional Prometheus one), each a gate (api_gate.c: holds a
 * new connection until its request has arrived, answers malformed heads and
 * refusals itself) in front of its own libmicrohttpd daemon, which runs one
 * thread per connection, so a blocked event stream never stalls other
 * requests. Connections are capped per listener overall and per client
 * address. Every request is checked in this
 * order: raw request target (length, percent-encoding, control bytes),
 * bearer token, route, method, body (GET: none; POST: at most API_BODY_MAX
 * bytes, collected before the handler runs); only then is a handler called. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api/api_int.h"

#ifndef API_CONN_TIMEOUT_S /* idle requests are closed; streams send keepalives */
#define API_CONN_TIMEOUT_S 30u
#endif
#define API_CONN_MEMORY ((size_t)64 * 1024)
#define API_SIDE_CONNECTIONS 16u /* the Unix socket's and the Prometheus listener's own budgets */

/* Markers held in MHD's per-request pointer; never freed. */
static char uri_too_long, uri_bad, req_seen;

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    int rc = api_uri_check(uri ? uri : "");
    return rc == -E2BIG ? &uri_too_long : rc < 0 ? &uri_bad : NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t l = strlen(msg);
    while (l && (msg[l - 1] == '\n' || msg[l - 1] == '\r'))
        msg[--l] = 0;
    log_debug("api: mhd: %s", msg);
}

static enum MHD_Result h_status(struct api *a, struct MHD_Connection *c)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    char *s = a->hooks.status_json ? a->hooks.status_json(a->hooks.ud) : NULL;
    if (!s)
        return api_send_error(c, 500, "internal", "status is not available");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    return te || (cl && strspn(cl, "0") != strlen(cl));
}

/* The body of a POST, collected across MHD's calls (API_BODY_MAX at most;
 * more is counted and dropped, then answered 413). */
typedef struct post_body {
    size_t len, dropped;
    size_t max;   /* API_BODY_MAX, API_LEARN_BODY_MAX (POST /v1/learn) or API_EVOLVE_BODY_MAX */
    char *big;    /* that route's body, grown as it arrives (else data) */
    size_t bigcap;
    char data[API_BODY_MAX + 1];
} post_body;

static size_t body_max(api_route_id id)
{
    return id == R_LEARN ? API_LEARN_BODY_MAX : id == R_EVOLVE ? API_EVOLVE_BODY_MAX : API_BODY_MAX;
}

#define API_BODY_DROP_MAX ((size_t)64 * 1024) /* then the connection is closed */

static bool is_marker(const void *p)
{
    return p == NULL || p == &uri_too_long || p == &uri_bad || p == &req_seen;
}

static void request_done(void *cls, struct MHD_Connection *c, void **req, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (!is_marker(*req))
        free(((post_body *)*req)->big), free(*req);
    *req = NULL;
}

static bool body_too_long(struct MHD_Connection *c, size_t max)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    char *end;
    unsigned long long n = strtoull(cl, &end, 10);
    return *end != 0 || n > max;
}

/* First call: only the headers are known. Errors are answered now (MHD then
 * skips any body and closes); good requests wait for the end of the body. */
static enum MHD_Result first_call(api_listener *l, struct MHD_Connection *c, const char *url,
                                  const char *method, api_route r, void **req)
{
    struct api *a = l->a;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool get = head || strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    *req = &req_seen;
    if (atomic_load(&a->stopping))
        return api_send_error(c, 503, "busy", "shutting down");
    if (l->kind == API_L_PROM && r.id != R_PROM)
        return api_send_error(c, 404, "not_found", "this listener serves only GET /metrics");
    if (l->kind == API_L_MAIN && r.id != R_WEB &&
        !api_token_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                      a->token))
        return api_send_error(c, 401, "unauthorized", "missing or wrong bearer token");
    if (r.id == R_NONE)
        return api_send_error(c, 404, "not_found", "no such endpoint: %.200s", url ? url : "");
    bool post = api_route_takes_body(r.id, method);
    if (api_route_is_post(r.id) ? strcmp(method, MHD_HTTP_METHOD_POST) != 0 : !get && !post)
        return api_send_not_allowed(c, method, api_route_allow(r.id));
    if (!post)
        return has_body(c) ? api_send_error(c, 400, "bad_request", "a GET request has no body") : MHD_YES;
    if (body_too_long(c, body_max(r.id)))
        return api_send_error(c, 413, "too_large", "the body is longer than %zu bytes", body_max(r.id));
    post_body *pb = calloc(1, sizeof *pb);
    if (!pb)
        return api_send_error(c, 503, "busy", "out of memory");
    pb->max = body_max(r.id);
    *req = pb;
    return MHD_YES;
}

/* Takes a piece of a POST body. MHD_NO closes a connection that keeps
 * sending far more than allowed. */
static enum MHD_Result take_body(post_body *pb, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (pb->dropped || pb->len + n > pb->max) {
        pb->dropped += n;
        return pb->dropped > API_BODY_DROP_MAX ? MHD_NO : MHD_YES;
    }
    if (pb->max > API_BODY_MAX) { /* a document (learn): grown as it arrives */
        if (pb->len + n + 1 > pb->bigcap) {
            size_t cap = pb->bigcap ? pb->bigcap : 65536;
            while (cap < pb->len + n + 1)
                cap *= 2;
            char *b = realloc(pb->big, cap);
            if (!b)
                return MHD_NO;
            pb->big = b, pb->bigcap = cap;
        }
        memcpy(pb->big + pb->len, data, n);
        pb->len += n;
        pb->big[pb->len] = 0;
        return MHD_YES;
    }
    memcpy(pb->data + pb->len, data, n);
    pb->len += n;
    return MHD_YES;
}

static enum MHD_Result dispatch_post(struct api *a, struct MHD_Connection *c, api_route r, post_body *pb)
{
    if (!pb || is_marker(pb))
        return api_send_error(c, 500, "internal", "lost the request body");
    if (pb->dropped)
        return api_send_error(c, 413, "too_large", "the body is longer than %zu bytes", pb->max);
    if (r.id == R_LEARN)
        return api_h_learn(a, c, pb->big ? pb->big : pb->data, pb->len);
    if (r.id == R_DIAGNOSE)
        return api_h_diagnose(a, c, pb->data, pb->len);
    if (r.id == R_DREAM)
        return api_h_dream(a, c, pb->data, pb->len);
    if (r.id == R_ASK)
        return api_h_ask(a, c, pb->data, pb->len);
    if (r.id == R_PREF_FORGET)
        return api_h_pref_forget(a, c, r.arg, r.arglen);
    if (r.id == R_EVOLVE)
        return api_h_evolve(a, c, r.arg, "POST", pb->big ? pb->big : pb->data, pb->len);
    if (r.id == R_ACTIONS)
        return api_h_actions(a, c, pb->data, pb->len);
    if (r.id == R_APPROVE)
        return api_h_approve(a, c, r.arg, r.arglen, pb->data, pb->len);
    return api_h_pending_act(a, c, r.arg, r.arglen, r.id == R_APPROVE, pb->data, pb->len);
}

static enum MHD_Result dispatch(struct api *a, struct MHD_Connection *c, api_route r, bool head)
{
    switch (r.id) {
    case R_STATUS: return h_status(a, c);
    case R_METRICS: return api_h_metrics_list(a, c);
    case R_METRIC: return api_h_metric(a, c, r.arg);
    case R_EVENTS: return api_h_events(a, c);
    case R_STREAM: return api_h_events_stream(a, c, head);
    case R_PROM: return api_h_prometheus(a, c);
    case R_SERVICES: return api_h_heal_list(a, c, API_LIST_SERVICES);
    case R_INCIDENTS: return api_h_heal_list(a, c, API_LIST_INCIDENTS);
    case R_INCIDENT: return api_h_incident(a, c, r.arg, r.arglen);
    case R_PENDING: return api_h_heal_list(a, c, API_LIST_PENDING);
    case R_AUDIT: return api_h_audit(a, c);
    case R_AUDIT_VERIFY: return api_h_audit_verify(a, c);
    case R_ANOMALIES: return api_h_anomalies(a, c);
    case R_LOGS: return api_h_logs(a, c);
    case R_DIAGNOSIS: return api_h_diagnosis(a, c, r.arg, r.arglen);
    case R_BRAIN: return api_h_brain(a, c);
    case R_LLM: return api_h_llm(a, c);
    case R_DIGEST: return api_h_digest(a, c);
    case R_KNOWLEDGE:
    case R_KNOWLEDGE_SEARCH:
    case R_KNOWLEDGE_FEEDS:
    case R_KNOWLEDGE_LINKS: return api_h_knowledge(a, c, r.id);
    case R_PREFS: return api_h_prefs(a, c);
    case R_EVOLVE: return api_h_evolve(a, c, r.arg, "GET", NULL, 0);
    case R_WEB: return api_h_web(a, c, r.arg ? r.arg : "/", head);
    case R_MESH_STATUS:
    case R_MESH_PEERS:
    case R_MESH_WISDOM: return api_h_mesh(a, c, r.id);
    case R_ACTIONS: /* POST only */
    case R_DREAM: /* POST only: dispatch_post */
    case R_LEARN:
    case R_PREF_FORGET:
    case R_DIAGNOSE:
    case R_ASK:
    case R_APPROVE:
    case R_REJECT:
    case R_NONE: break;
    }
    return api_send_error(c, 404, "not_found", "no such endpoint");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req)
{
    api_listener *l = cls;
    struct api *a = l->a;
    (void)version;
    if (*req == &uri_too_long)
        return api_send_error(c, 414, "too_large", "request target longer than %d bytes", API_MAX_URI);
    if (*req == &uri_bad)
        return api_send_error(c, 400, "bad_request", "bad percent-encoding or control byte in the URL");

    api_route r = api_route_match(url ? url : "");
    if (*req == NULL)
        return first_call(l, c, url, method, r, req);
    if (*upload_data_size) {
        if (is_marker(*req)) { /* a body on a GET after all (should not happen): ignore it */
            *upload_data_size = 0;
            return MHD_YES;
        }
        return take_body(*req, upload_data, upload_data_size);
    }
    if (api_route_takes_body(r.id, method))
        return dispatch_post(a, c, r, *req);
    return dispatch(a, c, r, strcmp(method, MHD_HTTP_METHOD_HEAD) == 0);
}

/* ---- listening ------------------------------------------------------------- */
static int make_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (host[0] == 0 || strcmp(host, "*") == 0)
        host = "0.0.0.0";
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -EINVAL;
}

/* A listening TCP socket on "HOST:PORT"; *port gets the port bound.
 * Returns the descriptor or -errno with the reason in err. */
static int listen_tcp(const char *what, const char *hostport, int *port, char *err, size_t errlen)
{
    char host[256];
    struct sockaddr_storage ss;
    socklen_t slen = 0;
    int p = 0;
    if (core_split_hostport(hostport, host, sizeof host, &p) != 0 || p < 0 || p > 65535) {
        snprintf(err, errlen, "api: %s: cannot parse '%s' (host:port)", what, hostport);
        return -EINVAL;
    }
    if (make_addr(host, p, &ss, &slen) != 0) {
        snprintf(err, errlen, "api: %s: '%s' is not an IP address or localhost", what, host);
        return -EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1, rc = 0;
    if (fd < 0) {
        rc = -errno;
    } else {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (ss.ss_family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&ss, slen) != 0 || listen(fd, 128) != 0)
            rc = -errno;
    }
    if (rc) {
        snprintf(err, errlen, "api: cannot listen on %s: %s", hostport, strerror(-rc));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct sockaddr_storage b;
    socklen_t bl = sizeof b;
    *port = p;
    if (getsockname(fd, (struct sockaddr *)&b, &bl) == 0)
        *port = ntohs(b.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&b)->sin6_port
                                              : ((struct sockaddr_in *)&b)->sin_port);
    return fd;
}

/* A listening Unix socket at path, mode 0600 (set before it listens, so no
 * one else can ever connect). A stale socket file is replaced: the state
 * dir's lock says no other ippocd uses it. */
static int listen_unix(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un su = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof su.sun_path) {
        snprintf(err, errlen, "api: socket path %s is longer than %zu bytes", path, sizeof su.sun_path - 1);
        return -ENAMETOOLONG;
    }
    memcpy(su.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int rc = 0;
    if (fd < 0)
        rc = -errno;
    else if (bind(fd, (struct sockaddr *)&su, sizeof su) != 0)
        rc = -errno;
    else if (chmod(path, 0600) != 0 || listen(fd, 128) != 0)
        rc = -errno, unlink(path);
    if (rc) {
        snprintf(err, errlen, "api: cannot listen on %s: %s", path, strerror(-rc));
        if (fd >= 0)
            close(fd);
    }
    return rc ? rc : fd;
}

/* Starts the gate and MHD behind it on the listening socket fd (taken). */
static int start_listener(api_listener *l, int fd, unsigned max_active, unsigned per_ip, char *err,
                          size_t errlen)
{
    int rc = api_gate_new(&l->gate, fd, max_active, per_ip, err, errlen);
    if (rc) {
        close(fd);
        return rc;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                     MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
    l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, l,
                              MHD_OPTION_EXTERNAL_LOGGER, mhd_log, (void *)l,
                              MHD_OPTION_CONNECTION_LIMIT, max_active + 4,
                              MHD_OPTION_CONNECTION_TIMEOUT, API_CONN_TIMEOUT_S,
                              MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_CONN_MEMORY,
                              MHD_OPTION_URI_LOG_CALLBACK, uri_log, (void *)l,
                              MHD_OPTION_NOTIFY_COMPLETED, request_done, (void *)l,
                              MHD_OPTION_NOTIFY_CONNECTION, api_gate_notify, (void *)l->gate,
                              MHD_OPTION_END);
    if (!l->mhd) {
        snprintf(err, errlen, "api: the HTTP server failed to start (see the debug log)");
        api_gate_free(l->gate);
        l->gate = NULL;
        return -EIO;
    }
    return api_gate_run(l->gate, l->mhd, err, errlen);
}

static void stop_listener(api_listener *l)
{
    api_gate_stop(l->gate); /* first: no new connections */
    if (l->mhd)
        MHD_stop_daemon(l->mhd);
    l->mhd = NULL;
    api_gate_free(l->gate);
    l->gate = NULL;
    if (l->path[0])
        unlink(l->path);
    l->path[0] = 0;
}

/* The main listener on cfg->api_listen. One address may take three
 * quarters of the connections, so another client still gets in. */
static int start_main(struct api *a, const core_config *cfg, unsigned maxconn, char *err, size_t errlen)
{
    api_listener *l = &a->lis[API_L_MAIN];
    int fd = listen_tcp("listen", cfg->api_listen, &l->port, err, errlen);
    if (fd < 0)
        return fd;
    unsigned per_ip = maxconn >= 4 ? maxconn - maxconn / 4 : maxconn;
    return start_listener(l, fd, maxconn, per_ip, err, errlen);
}

static int start_prometheus(struct api *a, const char *hostport, char *err, size_t errlen)
{
    api_listener *l = &a->lis[API_L_PROM];
    int fd = listen_tcp("prometheus_listen", hostport, &l->port, err, errlen);
    if (fd < 0)
        return fd;
    int rc = start_listener(l, fd, API_SIDE_CONNECTIONS, API_SIDE_CONNECTIONS - API_SIDE_CONNECTIONS / 4,
                            err, errlen);
    if (!rc)
        log_info("api: Prometheus listener on %s (port %d): GET /metrics only, no token", hostport,
                 l->port);
    return rc;
}

/* The Unix socket is a convenience (the CLI falls back to TCP): a failure
 * is logged, not fatal. */
static void start_unix(struct api *a, const char *path)
{
    api_listener *l = &a->lis[API_L_UNIX];
    char err[512];
    int fd = listen_unix(path, err, sizeof err);
    if (fd >= 0) {
        core_sncpy(l->path, sizeof l->path, path);
        if (start_listener(l, fd, API_SIDE_CONNECTIONS, 0, err, sizeof err) == 0) {
            log_info("api: listening on %s (owner only, no token)", path);
            return;
        }
        stop_listener(l);
    }
    log_warn("%s; the CLI uses TCP", err);
}

int api_start(api_t **out, const core_config *cfg, mem_t *mem, const api_hooks *hooks,
              char *err, size_t errlen)
{
    *out = NULL;
    struct api *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "api: out of memory");
        return -ENOMEM;
    }
    a->mem = mem;
    if (hooks)
        a->hooks = *hooks;
    for (int k = 0; k < API_L_COUNT; k++)
        a->lis[k] = (api_listener){.a = a, .kind = k, .port = -1};
    core_sncpy(a->token, sizeof a->token, cfg->api_token);
    a->max_points = cfg->api_max_points > 1 ? cfg->api_max_points : 11000;
    a->ram_window_ms = cfg->mem_ram_window_ms > 0 ? cfg->mem_ram_window_ms : 15 * 60000;
    a->prom_stale_ms = api_prom_stale_ms(cfg);
    a->ret10s_ms = cfg->mem_retention_10s_ms > 0 ? cfg->mem_retention_10s_ms : INT64_C(2) * 86400000;
    a->ret1m_ms = cfg->mem_retention_1m_ms > 0 ? cfg->mem_retention_1m_ms : INT64_C(30) * 86400000;
    unsigned maxconn = cfg->api_max_connections > 0 ? (unsigned)cfg->api_max_connections : 64;
    /* streams may take half, so plain requests always have room */
    a->max_streams = maxconn >= 2 ? (int)(maxconn / 2) : 1;

    api_web_init(a); /* before any listener thread reads it */
    int rc = start_main(a, cfg, maxconn, err, errlen);
    if (!rc && cfg->api_prometheus_listen[0])
        rc = start_prometheus(a, cfg->api_prometheus_listen, err, errlen);
    if (rc) {
        for (int k = 0; k < API_L_COUNT; k++)
            stop_listener(&a->lis[k]);
        free(a);
        return rc;
    }
    if (hooks && hooks->socket_path && hooks->socket_path[0])
        start_unix(a, hooks->socket_path);
    log_info("api: listening on %s (port %d)%s", cfg->api_listen, a->lis[API_L_MAIN].port,
             a->token[0] ? ", bearer token required" : "");
    *out = a;
    return 0;
}

int api_port(const api_t *a)
{
    return a ? a->lis[API_L_MAIN].port : -1;
}

int api_prometheus_port(const api_t *a)
{
    return a && a->lis[API_L_PROM].mhd ? a->lis[API_L_PROM].port : -1;
}

void api_reconfigure(api_t *a, const core_config *cfg)
{
    if (a)
        atomic_store(&a->prom_stale_ms, api_prom_stale_ms(cfg));
}

void api_stop(api_t *a)
{
    if (!a)
        return;
    atomic_store(&a->stopping, 1);
    for (int k = 0; k < API_L_COUNT; k++) /* no new connections */
        api_gate_stop(a->lis[k].gate);
    /* Wake every stream blocked in mem_events_wait. A wake-up reaches only
     * the waiters present at that moment, so repeat while any is blocked; a
     * stream entering a wait afterwards sees the stopping flag first. */
    int64_t until = core_mono_ms() + 3000;
    while (atomic_load(&a->in_wait) > 0 && core_mono_ms() < until) {
        mem_wake_waiters(a->mem);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int k = 0; k < API_L_COUNT; k++)
        stop_listener(&a->lis[k]);
    explicit_bzero(a->token, sizeof a->token);
    free(a);
}
