/* test_api_heal.c: the healing endpoints end to end, in process: api_start
 * on 127.0.0.1:0 with a bearer token and real HTTP over loopback (libcurl).
 * The list/approve hooks are small fakes with fixed JSON (this tests the API
 * layer, not the engine); the audit endpoints read a REAL audit log written
 * with heal_audit_open/heal_audit_append in a temporary directory, plus a
 * tampered copy and a missing file. Covers routing, methods and Allow
 * headers, ids, POST bodies and their limits, the errno -> HTTP mapping, the
 * token, a server without healing hooks (503), and finally the `ippoc` CLI
 * binary against the same server: tables, messages and exit codes. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "api/api.h"
#include "heal/audit.h"

#define TOKEN "heal-token-0123456789"
#define NRECORDS 8

static const char services_text[] =
    "{\"services\":[{\"name\":\"web\",\"type\":\"supervised\",\"state\":\"running\",\"pid\":4242,"
    "\"restarts\":2,\"uptime_ms\":65000,\"error\":\"\",\"flapping\":false,"
    "\"last_exit\":{\"status\":0,\"signal\":9,\"ts\":1700000000000}},"
    "{\"name\":\"db\",\"type\":\"external\",\"state\":\"stopped\",\"pid\":0,\"restarts\":0,"
    "\"uptime_ms\":0,\"error\":\"start failed: no such file\",\"flapping\":true}],"
    "\"pending\":1,\"mode\":\"suggest\",\"dry_run\":false,\"incidents_open\":1}";
static const char incident1_text[] =
    "{\"id\":1,\"service\":\"web\",\"state\":\"resolved\",\"what\":\"process exited: killed by SIGKILL\","
    "\"where\":\"supervisor\",\"failing_since_ms\":1700000000000,\"detected_ms\":1700000000000,"
    "\"evidence\":{\"service\":\"web\",\"rss_bytes\":1048576,\"probes\":[{\"probe\":\"http\",\"ok\":false,"
    "\"message\":\"connection refused\",\"seq\":3}],\"log\":\"listening on 8080\\nGET /health 200\"},"
    "\"actions\":[{\"action\":\"restart\",\"outcome\":\"ok\",\"message\":\"started pid 4242\","
    "\"ts\":1700000000040}],\"reason\":\"healthy again\",\"time_to_detect_ms\":0,"
    "\"closed_ms\":1700000000045,\"time_to_heal_ms\":45}";

typedef struct hook_state {
    pthread_mutex_t lock;
    _Atomic(const char *) audit_path; /* F.audit, F.tampered or F.missing */
    bool pending_gone; /* id 1 approved or rejected */
    char last_who[80];
    int calls;
} hook_state;

typedef struct fixture {
    char dir[64];
    char audit[128], tampered[128], missing[128];
    hook_state hs;
    api_t *api, *bare;
    int port, bare_port;
} fixture;

static fixture F;

/* ---- hooks ------------------------------------------------------------------- */
static char *h_services(void *ud)
{
    (void)ud;
    return strdup(services_text);
}

static char *h_incidents(void *ud)
{
    (void)ud;
    char *s = malloc(sizeof incident1_text + 32);
    sprintf(s, "{\"incidents\":[%s]}", incident1_text);
    return s;
}

static char *h_incident(void *ud, uint64_t id)
{
    (void)ud;
    return id == 1 ? strdup(incident1_text) : NULL;
}

static char *h_pending(void *ud)
{
    hook_state *hs = ud;
    pthread_mutex_lock(&hs->lock);
    bool gone = hs->pending_gone;
    pthread_mutex_unlock(&hs->lock);
    return strdup(gone ? "{\"pending\":[]}"
                       : "{\"pending\":[{\"id\":1,\"service\":\"web\",\"action\":\"restart\","
                         "\"why\":\"rule conf.d/web.conf:3: failed http for 2 checks\","
                         "\"expires_in_ms\":272000}]}");
}

static const char *h_audit_path(void *ud)
{
    return atomic_load(&((hook_state *)ud)->audit_path);
}

/* 1 ok (once), 2 expired, 3 rate limited, 4 forbidden, 5 loop busy, else unknown. */
static int decide(void *ud, uint64_t id, const char *who, char *err, size_t errlen)
{
    hook_state *hs = ud;
    pthread_mutex_lock(&hs->lock);
    hs->calls++;
    snprintf(hs->last_who, sizeof hs->last_who, "%s", who);
    int rc = 0;
    if (id == 1 && !hs->pending_gone)
        hs->pending_gone = true;
    else if (id == 2)
        rc = -ETIMEDOUT, snprintf(err, errlen, "pending action 2 expired");
    else if (id == 3)
        rc = -EAGAIN, snprintf(err, errlen, "rate limited until 12:00:05");
    else if (id == 4)
        rc = -EPERM, snprintf(err, errlen, "restart is not allowed for web");
    else if (id == 5)
        rc = -EBUSY, snprintf(err, errlen, "the loop did not answer");
    else
        rc = -ENOENT, snprintf(err, errlen, "no pending action %llu", (unsigned long long)id);
    pthread_mutex_unlock(&hs->lock);
    return rc;
}

/* ---- the audit log ------------------------------------------------------------- */
static heal_action act(heal_action_kind k, const char *svc)
{
    heal_action a;
    memset(&a, 0, sizeof a);
    a.kind = k;
    snprintf(a.service, sizeof a.service, "%s", svc);
    return a;
}

static void write_audit(const char *path)
{
    heal_audit *au;
    char err[256];
    uint64_t seq;
    heal_action web = act(HEAL_ACT_RESTART, "web"), db = act(HEAL_ACT_STOP, "db");
    if (heal_audit_open(path, &au, err, sizeof err))
        fail_msg("heal_audit_open: %s", err);
    heal_audit_rec r[NRECORDS] = {
        {.kind = HEAL_AUDIT_DECISION, .action = &web, .reason = "rule web.conf:3", .mode = "suggest",
         .verdict = "queue", .pending_id = 1},
        {.kind = HEAL_AUDIT_APPROVAL, .action = &web, .reason = "api", .mode = "suggest", .verdict = "execute",
         .detail = "cli:alice", .pending_id = 1},
        {.kind = HEAL_AUDIT_INTENT, .action = &web, .reason = "approved", .mode = "heal", .verdict = "execute"},
        {.kind = HEAL_AUDIT_RESULT, .action = &web, .intent_seq = 3, .outcome = HEAL_OUTCOME_OK,
         .message = "started pid 4242", .duration_ms = 12},
        {.kind = HEAL_AUDIT_DECISION, .action = &db, .reason = "rule db.conf:1", .mode = "heal",
         .verdict = "refuse", .detail = "rate limited"},
        {.kind = HEAL_AUDIT_INTENT, .action = &db, .reason = "rule db.conf:1", .mode = "heal", .verdict = "execute"},
        {.kind = HEAL_AUDIT_RESULT, .action = &db, .intent_seq = 6, .outcome = HEAL_OUTCOME_FAILED,
         .message = "stop command exited 1", .duration_ms = 30},
        {.kind = HEAL_AUDIT_REJECTION, .action = &web, .mode = "suggest", .detail = "api", .pending_id = 2},
    };
    for (int i = 0; i < NRECORDS; i++)
        if (heal_audit_append(au, &r[i], &seq, err, sizeof err) || seq != (uint64_t)i + 1)
            fail_msg("append %d: %s", i, err);
    heal_audit_close(au);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 1 << 16);
    *len = fread(buf, 1, (1 << 16) - 1, f);
    fclose(f);
    return buf;
}

/* A copy of the log with one byte of line 3 changed ("web" -> "wex"). */
static void write_tampered(const char *from, const char *to)
{
    size_t len;
    char *buf = slurp(from, &len);
    char *l3 = strchr(strchr(buf, '\n') + 1, '\n') + 1;
    char *w = strstr(l3, "\"web\"");
    assert_non_null(w);
    assert_true(w < strchr(l3, '\n'));
    w[3] = 'x';
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    free(buf);
}

/* ---- fixture -------------------------------------------------------------------- */
static api_t *start(const api_hooks *h, const char *token, int *port)
{
    core_config cfg;
    char err[256];
    api_t *a;
    core_config_defaults(&cfg);
    core_sncpy(cfg.state_dir, sizeof cfg.state_dir, F.dir);
    core_sncpy(cfg.api_listen, sizeof cfg.api_listen, "127.0.0.1:0");
    core_sncpy(cfg.api_token, sizeof cfg.api_token, token);
    cfg.api_max_connections = 16;
    if (api_start(&a, &cfg, NULL, h, err, sizeof err))
        fail_msg("api_start: %s", err);
    core_config_free(&cfg);
    *port = api_port(a);
    return a;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    strcpy(F.dir, "/tmp/ippoc-api-heal-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    snprintf(F.audit, sizeof F.audit, "%s/audit.log", F.dir);
    snprintf(F.tampered, sizeof F.tampered, "%s/tampered.log", F.dir);
    snprintf(F.missing, sizeof F.missing, "%s/missing.log", F.dir);
    write_audit(F.audit);
    write_tampered(F.audit, F.tampered);
    pthread_mutex_init(&F.hs.lock, NULL);
    atomic_store(&F.hs.audit_path, F.audit);
    api_hooks h = {.ud = &F.hs, .services_json = h_services, .incidents_json = h_incidents,
                   .incident_json = h_incident, .pending_json = h_pending, .audit_path = h_audit_path,
                   .approve = decide, .reject = decide};
    F.api = start(&h, TOKEN, &F.port);
    api_hooks bare = {.ud = NULL};
    F.bare = start(&bare, "", &F.bare_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    api_stop(F.api);
    api_stop(F.bare);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.dir);
    assert_int_equal(system(cmd), 0);
    pthread_mutex_destroy(&F.hs.lock);
    return 0;
}

static void set_audit_path(const char *p)
{
    atomic_store(&F.hs.audit_path, p);
}

/* What the hooks saw, read under their lock. */
static int hook_calls(void)
{
    pthread_mutex_lock(&F.hs.lock);
    int n = F.hs.calls;
    pthread_mutex_unlock(&F.hs.lock);
    return n;
}

static void expect_who(const char *who)
{
    pthread_mutex_lock(&F.hs.lock);
    char seen[80];
    memcpy(seen, F.hs.last_who, sizeof seen);
    pthread_mutex_unlock(&F.hs.lock);
    assert_string_equal(seen, who);
}

static void set_pending(bool gone)
{
    pthread_mutex_lock(&F.hs.lock);
    F.hs.pending_gone = gone;
    pthread_mutex_unlock(&F.hs.lock);
}

/* ---- HTTP client -------------------------------------------------------------------- */
typedef struct resp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    char *nb = realloc(r->body, r->len + sz * n + 1);
    assert_non_null(nb);
    r->body = nb;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = 0;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp *r = ud;
    if (r->hlen + sz * n < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, sz * n);
        r->hlen += sz * n;
        r->headers[r->hlen] = 0;
    }
    return sz * n;
}

typedef struct req {
    const char *method; /* NULL: GET */
    const char *path;
    const char *body;   /* POST body (NULL: empty) */
    bool chunked;
    bool no_token;
    int port;           /* 0: the main server */
} req;

static void do_req(const req *q, resp *r)
{
    char url[512], auth[128];
    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", q->port ? q->port : F.port, q->path);
    CURL *e = curl_easy_init();
    struct curl_slist *h = NULL;
    if (!q->no_token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", TOKEN);
        h = curl_slist_append(h, auth);
    }
    if (q->chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
    const char *m = q->method ? q->method : "GET";
    if (!strcmp(m, "POST"))
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, q->body ? q->body : "");
    else if (!strcmp(m, "HEAD"))
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (strcmp(m, "GET"))
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", m, q->path, curl_easy_strerror(rc));
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

/* Runs q, expects status, returns the JSON body (decref it). */
static json_t *call(const req *q, long status)
{
    resp r;
    json_error_t je;
    do_req(q, &r);
    if (r.status != status)
        fail_msg("%s %s: status %ld, expected %ld: %s", q->method ? q->method : "GET", q->path, r.status,
                 status, r.body ? r.body : "");
    if (q->method && !strcmp(q->method, "HEAD")) {
        free(r.body);
        return json_object();
    }
    assert_non_null(strcasestr(r.headers, "Content-Type: application/json"));
    json_t *o = json_loadb(r.body ? r.body : "", r.len, 0, &je);
    if (!o)
        fail_msg("%s: not JSON: %s", q->path, r.body ? r.body : "");
    free(r.body);
    return o;
}

static json_t *get(const char *path, long status)
{
    req q = {.path = path};
    return call(&q, status);
}

static void expect_err(const req *q, long status, const char *code, const char *msg_part)
{
    json_t *o = call(q, status);
    json_t *e = json_object_get(o, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!c || strcmp(c, code) || !m || (msg_part && !strstr(m, msg_part)))
        fail_msg("%s %s: error %s '%s', expected %s '%s'", q->method ? q->method : "GET", q->path,
                 c ? c : "-", m ? m : "-", code, msg_part ? msg_part : "");
    json_decref(o);
}

static void expect_get_err(const char *path, long status, const char *code, const char *part)
{
    req q = {.path = path};
    expect_err(&q, status, code, part);
}

static json_t *post(const char *path, const char *body, long status)
{
    req q = {.method = "POST", .path = path, .body = body};
    return call(&q, status);
}

/* ---- tests: lists --------------------------------------------------------------------- */
static void expect_same(json_t *got, const char *text)
{
    json_t *want = json_loads(text, 0, NULL);
    assert_non_null(want);
    assert_true(json_equal(got, want));
    json_decref(want);
    json_decref(got);
}

static void t_lists(void **state)
{
    (void)state;
    char *inc = h_incidents(NULL);
    expect_same(get("/v1/services", 200), services_text);
    expect_same(get("/v1/incidents", 200), inc);
    expect_same(get("/v1/incidents/1", 200), incident1_text);
    expect_same(get("/v1/incidents/%31", 200), incident1_text); /* percent-decoded */
    expect_same(get("/v1/incidents/0001", 200), incident1_text);
    free(inc);
    json_t *p = get("/v1/pending", 200);
    assert_int_equal(json_array_size(json_object_get(p, "pending")), 1);
    json_decref(p);
    expect_get_err("/v1/incidents/99", 404, "not_found", "no incident 99");
    expect_get_err("/v1/incidents/18446744073709551615", 404, "not_found", NULL);
    static const char *const bad[] = {"/v1/incidents/abc", "/v1/incidents/0", "/v1/incidents/-1",
                                      "/v1/incidents/18446744073709551616", "/v1/incidents/1.5",
                                      "/v1/incidents/%2B1", "/v1/incidents/1%20"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_get_err(bad[i], 400, "bad_request", "is not an id");
    expect_get_err("/v1/services?all=1", 400, "bad_request", "all");
    expect_get_err("/v1/incidents/1/", 404, "not_found", NULL);
    expect_get_err("/v1/pending/1", 404, "not_found", NULL);
}

static void expect_405(const char *method, const char *path, const char *allow)
{
    req q = {.method = method, .path = path};
    resp r;
    char line[64];
    do_req(&q, &r);
    if (r.status != 405)
        fail_msg("%s %s: %ld, expected 405", method, path, r.status);
    snprintf(line, sizeof line, "Allow: %s\r\n", allow);
    if (!strcasestr(r.headers, line))
        fail_msg("%s %s: no '%s' in %s", method, path, allow, r.headers);
    free(r.body);
}

static void t_methods(void **state)
{
    (void)state;
    static const char *const gets[] = {"/v1/services", "/v1/incidents", "/v1/incidents/1", "/v1/pending",
                                       "/v1/audit", "/v1/audit/verify"};
    for (size_t i = 0; i < sizeof gets / sizeof gets[0]; i++) {
        expect_405("POST", gets[i], "GET, HEAD");
        expect_405("DELETE", gets[i], "GET, HEAD");
        req h = {.method = "HEAD", .path = gets[i]};
        json_decref(call(&h, 200));
    }
    static const char *const posts[] = {"/v1/pending/1/approve", "/v1/pending/1/reject"};
    for (size_t i = 0; i < 2; i++) {
        expect_405("GET", posts[i], "POST");
        expect_405("HEAD", posts[i], "POST");
        expect_405("PUT", posts[i], "POST");
    }
    assert_int_equal(hook_calls(), 0);
}

/* ---- tests: approve / reject ----------------------------------------------------------------- */
static void expect_post_err(const char *path, const char *body, long status, const char *code,
                            const char *part)
{
    req q = {.method = "POST", .path = path, .body = body};
    expect_err(&q, status, code, part);
}

static void t_approve(void **state)
{
    (void)state;
    json_t *o = post("/v1/pending/1/approve", NULL, 200);
    expect_same(o, "{\"id\":1,\"result\":\"approved\",\"who\":\"api\",\"service\":\"web\",\"action\":\"restart\"}");
    expect_who("api");
    json_t *p = get("/v1/pending", 200); /* gone now */
    assert_int_equal(json_array_size(json_object_get(p, "pending")), 0);
    json_decref(p);
    /* a second approval of the same id: unknown now */
    expect_post_err("/v1/pending/1/approve", "", 404, "not_found", "approve 1: no pending action 1");
    expect_post_err("/v1/pending/2/approve", "{\"who\":\"cli:bob\"}", 409, "expired", "expired");
    expect_who("cli:bob");
    expect_post_err("/v1/pending/3/approve", NULL, 409, "conflict", "rate limited");
    expect_post_err("/v1/pending/4/approve", NULL, 403, "forbidden", "not allowed");
    expect_post_err("/v1/pending/5/approve", NULL, 503, "busy", "did not answer");
    o = post("/v1/pending/6/reject", NULL, 404);
    json_decref(o);
    set_pending(false);
    o = post("/v1/pending/1/reject", " {\"who\" : \"ops team\"} ", 200);
    expect_same(o, "{\"id\":1,\"result\":\"rejected\",\"who\":\"ops team\",\"service\":\"web\",\"action\":\"restart\"}");
}

static void t_bad_posts(void **state)
{
    (void)state;
    int calls = hook_calls();
    expect_post_err("/v1/pending/abc/approve", NULL, 400, "bad_request", "is not an id");
    expect_post_err("/v1/pending/0/reject", NULL, 400, "bad_request", "is not an id");
    expect_post_err("/v1/pending/99999999999999999999/approve", NULL, 400, "bad_request", NULL);
    expect_post_err("/v1/pending/1/approve", "{", 400, "bad_request", "not JSON");
    expect_post_err("/v1/pending/1/approve", "{\"who\":1}", 400, "bad_request", "string");
    expect_post_err("/v1/pending/1/approve", "{\"force\":true}", 400, "bad_request", "unknown member");
    expect_post_err("/v1/pending/1/approve?x=1", NULL, 400, "bad_request", "x");
    char *big = malloc(5000);
    memset(big, ' ', 4999);
    big[4999] = 0;
    expect_post_err("/v1/pending/1/approve", big, 413, "too_large", "4096");
    req q = {.method = "POST", .path = "/v1/pending/1/approve", .body = big, .chunked = true};
    expect_err(&q, 413, "too_large", "4096");
    big[4096] = 0; /* exactly the limit, blanks only: accepted as empty */
    set_pending(false);
    json_decref(post("/v1/pending/1/approve", big, 200));
    free(big);
    assert_int_equal(hook_calls(), calls + 1); /* only the good one reached the hook */
}

static void t_auth(void **state)
{
    (void)state;
    static const char *const paths[] = {"/v1/services", "/v1/incidents", "/v1/incidents/1", "/v1/pending",
                                        "/v1/audit", "/v1/audit/verify", "/v1/pending/1/approve",
                                        "/v1/incidents/abc", "/v1/nothing"};
    int calls = hook_calls();
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        req q = {.path = paths[i], .no_token = true};
        expect_err(&q, 401, "unauthorized", NULL);
        req p = {.method = "POST", .path = paths[i], .no_token = true, .body = "{}"};
        expect_err(&p, 401, "unauthorized", NULL);
    }
    assert_int_equal(hook_calls(), calls);
}

static void t_unavailable(void **state)
{
    (void)state;
    static const char *const paths[] = {"/v1/services", "/v1/incidents", "/v1/incidents/1", "/v1/pending",
                                        "/v1/audit", "/v1/audit/verify"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        req q = {.path = paths[i], .port = F.bare_port};
        expect_err(&q, 503, "unavailable", "healing is not configured");
    }
    req a = {.method = "POST", .path = "/v1/pending/1/approve", .port = F.bare_port};
    expect_err(&a, 503, "unavailable", "healing is not configured");
    req r = {.method = "POST", .path = "/v1/pending/1/reject", .port = F.bare_port};
    expect_err(&r, 503, "unavailable", "healing is not configured");
}

/* ---- tests: audit ------------------------------------------------------------------------------ */
/* The records of the answer, checked against the file's lines. */
static size_t check_records(json_t *ans, uint64_t first_seq, const char *service)
{
    size_t len, i;
    char *file = slurp(F.audit, &len), *save = NULL;
    json_t *lines = json_array(), *r;
    for (char *l = strtok_r(file, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        json_array_append_new(lines, json_loads(l, 0, NULL));
    json_t *recs = json_object_get(ans, "records");
    assert_int_equal(json_integer_value(json_object_get(ans, "count")), json_array_size(recs));
    uint64_t prev = 0;
    json_array_foreach(recs, i, r) {
        uint64_t seq = (uint64_t)json_integer_value(json_object_get(r, "seq"));
        assert_true(seq >= first_seq && seq > prev);
        assert_true(json_equal(r, json_array_get(lines, seq - 1))); /* embedded as parsed JSON */
        if (service)
            assert_string_equal(json_string_value(json_object_get(r, "service")), service);
        prev = seq;
    }
    json_decref(lines);
    free(file);
    return json_array_size(recs);
}

static size_t audit_count(const char *path, uint64_t first, const char *service)
{
    json_t *o = get(path, 200);
    size_t n = check_records(o, first, service);
    json_decref(o);
    return n;
}

static void t_audit(void **state)
{
    (void)state;
    assert_int_equal(audit_count("/v1/audit", 1, NULL), NRECORDS);
    assert_int_equal(audit_count("/v1/audit?last=2", NRECORDS - 1, NULL), 2);
    assert_int_equal(audit_count("/v1/audit?since=5", 6, NULL), NRECORDS - 5);
    assert_int_equal(audit_count("/v1/audit?since=0&last=10000", 1, NULL), NRECORDS);
    assert_int_equal(audit_count("/v1/audit?service=db", 5, "db"), 3);
    assert_int_equal(audit_count("/v1/audit?service=db&last=1", 7, "db"), 1);
    assert_int_equal(audit_count("/v1/audit?service=nobody", 1, NULL), 0);
    assert_int_equal(audit_count("/v1/audit?since=18446744073709551615", 1, NULL), 0);
    expect_get_err("/v1/audit?last=0", 400, "bad_request", "last");
    expect_get_err("/v1/audit?last=10001", 400, "bad_request", "last");
    expect_get_err("/v1/audit?last=x", 400, "bad_request", "last");
    expect_get_err("/v1/audit?since=-1", 400, "bad_request", "since");
    expect_get_err("/v1/audit?since=18446744073709551616", 400, "bad_request", "since");
    expect_get_err("/v1/audit?service=", 400, "bad_request", NULL);
    expect_get_err("/v1/audit?what=1", 400, "bad_request", "what");
    expect_get_err("/v1/audit/verify?x=1", 400, "bad_request", "x");
}

static void t_audit_verify(void **state)
{
    (void)state;
    json_t *o = get("/v1/audit/verify", 200);
    assert_true(json_is_true(json_object_get(o, "ok")));
    assert_int_equal(json_integer_value(json_object_get(o, "records")), NRECORDS);
    assert_int_equal(json_integer_value(json_object_get(o, "last_seq")), NRECORDS);
    assert_int_equal(strlen(json_string_value(json_object_get(o, "last_hash"))), 64);
    json_decref(o);

    set_audit_path(F.tampered);
    o = get("/v1/audit/verify", 200);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_string_equal(json_string_value(json_object_get(o, "status")), "hash_mismatch");
    assert_int_equal(json_integer_value(json_object_get(o, "line")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "seq")), 3);
    assert_int_equal(json_integer_value(json_object_get(o, "records")), 2);
    assert_true(strlen(json_string_value(json_object_get(o, "reason"))) > 0);
    json_decref(o);
    o = get("/v1/audit?last=10000", 200); /* still readable: a report, not a refusal */
    assert_int_equal(json_array_size(json_object_get(o, "records")), NRECORDS);
    json_decref(o);

    set_audit_path(F.missing);
    o = get("/v1/audit/verify", 200);
    assert_true(json_is_false(json_object_get(o, "ok")));
    assert_string_equal(json_string_value(json_object_get(o, "status")), "missing");
    json_decref(o);
    o = get("/v1/audit", 200);
    assert_int_equal(json_array_size(json_object_get(o, "records")), 0);
    json_decref(o);
    set_audit_path(F.audit);
}

/* ---- tests: the ippoc CLI against this server --------------------------------------------------- */
typedef struct run_out {
    int code;
    char out[16384];
    char err[4096];
} run_out;

static void read_file(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t k = f ? fread(buf, 1, n - 1, f) : 0;
    buf[k] = 0;
    if (f)
        fclose(f);
}

/* Runs `ippoc --url U [--token T] ARGS`; token NULL: none. */
static void ippoc(const char *token, const char *args, run_out *r)
{
    const char *bin = getenv("IPPOC");
    char cmd[2048], o[128], e[128];
    snprintf(o, sizeof o, "%s/cli.out", F.dir);
    snprintf(e, sizeof e, "%s/cli.err", F.dir);
    snprintf(cmd, sizeof cmd, "USER=alice '%s' --url http://127.0.0.1:%d %s%s %s >'%s' 2>'%s'", bin, F.port,
             token ? "--token " : "", token ? token : "", args, o, e);
    int st = system(cmd);
    r->code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    read_file(o, r->out, sizeof r->out);
    read_file(e, r->err, sizeof r->err);
}

static void expect_cli(const char *args, int code, const char *out_part, const char *err_part)
{
    run_out r;
    ippoc(TOKEN, args, &r);
    if (getenv("IPPOC_TEST_SHOW"))
        printf("$ ippoc %s  -> %d\n%s%s", args, r.code, r.out, r.err);
    if (r.code != code || (out_part && !strstr(r.out, out_part)) || (err_part && !strstr(r.err, err_part)))
        fail_msg("ippoc %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s\nwanted out '%s' err '%s'", args,
                 r.code, code, r.out, r.err, out_part ? out_part : "", err_part ? err_part : "");
}

static void t_cli(void **state)
{
    (void)state;
    if (!getenv("IPPOC")) {
        skip();
        return;
    }
    set_pending(false);
    expect_cli("services", 0, "NAME  TYPE        STATE                PID  RESTARTS  UPTIME  LAST-EXIT\n", NULL);
    expect_cli("services", 0, "mode suggest, 1 pending, 1 open incident\n", NULL);
    expect_cli("services", 0, "web   supervised  running             4242         2  1m5s    SIGKILL ", NULL);
    expect_cli("services", 0, "db    external    stopped (flapping)     -         0  -       -\n", NULL);
    expect_cli("services", 0, "db: start failed: no such file", NULL);
    expect_cli("services", 0, "stopped (flapping)", NULL);
    expect_cli("incidents", 0, "ID  OPENED", NULL);
    expect_cli("incidents", 0, "web      resolved  process exited: killed by SIGKILL          45ms", NULL);
    expect_cli("incident 1", 0, "incident 1: web, resolved\nwhat       process exited: killed by SIGKILL\n", NULL);
    expect_cli("incident 1", 0, "\nlog (last lines)\n  | listening on 8080\n  | GET /health 200\n", NULL);
    expect_cli("incident 1", 0, "    - probe=http ok=false message=\"connection refused\" seq=3\n", NULL);
    expect_cli("incident 1", 0, "(time to heal 45ms)", NULL);
    expect_cli("incident 1", 0, "restart  ok       started pid 4242", NULL);
    expect_cli("incident 9", 1, NULL, "ippoc: not_found: no incident 9");
    expect_cli("incident x", 2, NULL, "bad id 'x'");
    expect_cli("pending", 0, "ID  SERVICE  ACTION   WHY", NULL);
    expect_cli("pending", 0, " 1  web      restart  rule conf.d/web.conf:3: failed http for 2 checks  in 4m32s\n", NULL);
    expect_cli("approve 1", 0, "approved 1: restart web\n", NULL);
    expect_who("cli:alice");
    expect_cli("pending", 0, "nothing waiting for approval", NULL);
    expect_cli("approve 2", 1, NULL, "ippoc: expired: approve 2: pending action 2 expired");
    expect_cli("approve 4", 1, NULL, "ippoc: forbidden:"); /* the policy, not the token: exit 1 */
    expect_cli("reject 3", 1, NULL, "conflict");
    expect_cli("approve 0", 2, NULL, "bad id '0'");
    expect_cli("approve", 2, NULL, "missing ID");
    expect_cli("approve --json 2", 1, NULL, "expired");
    expect_cli("audit", 0, "SEQ  TIME", NULL);
    expect_cli("audit", 0, "SEQ  TIME                 KIND       SERVICE  ACTION   VERDICT/OUTCOME\n", NULL);
    expect_cli("audit", 0, "  decision   web      restart  queue (pending 1)\n", NULL);
    expect_cli("audit", 0, "  approval   web      restart  approved by cli:alice (pending 1)\n", NULL);
    expect_cli("audit", 0, "  rejection  web      restart  rejected by api (pending 2)\n", NULL);
    expect_cli("audit", 0, "  decision   db       stop     refuse: rate limited\n", NULL);
    expect_cli("audit", 0, "failed: stop command exited 1", NULL);
    expect_cli("audit --service db --last 1", 0, "failed: stop command exited 1", NULL);
    expect_cli("audit --last 0", 2, NULL, "--last");
    expect_cli("audit --verify", 0, "audit log intact: 8 records\n", NULL);
    expect_cli("audit --verify --json", 0, "\"ok\": true", NULL);
    set_audit_path(F.tampered);
    expect_cli("audit --verify", 1, "audit log TAMPERED at line 3 (seq 3): ", NULL);
    set_audit_path(F.audit);
    expect_cli("services --json", 0, "\"services\": [", NULL);
    run_out r;
    ippoc(NULL, "services", &r);
    assert_int_equal(r.code, 4);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_lists),     cmocka_unit_test(t_methods),     cmocka_unit_test(t_approve),
        cmocka_unit_test(t_bad_posts), cmocka_unit_test(t_auth),        cmocka_unit_test(t_unavailable),
        cmocka_unit_test(t_audit),     cmocka_unit_test(t_audit_verify), cmocka_unit_test(t_cli),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
