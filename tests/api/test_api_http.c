/* test_api_http.c: the API end to end, in process: a real memory store in a
 * temporary directory, api_start on 127.0.0.1:0, and real HTTP over loopback
 * with libcurl. Covers every endpoint, the error codes, the bearer token,
 * server-sent events (live and replayed), shutdown with an open stream, bind
 * errors, and malformed requests sent on a raw socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "api/api.h"
#include "api_test_util.h"

#define TOKEN "s3cret-token-0123456789"

typedef struct fixture {
    char dir[64];
    core_config cfg;
    mem_t *mem;
    api_t *api;
    int port;
    int64_t now;
    int64_t ev[3];
} fixture;

static fixture F;

/* ---- HTTP client --------------------------------------------------------- */
typedef struct resp {
    long status;
    char *body;
    size_t len;
    char headers[8192];
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
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = 0;
    }
    return k;
}

static void resp_free(resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static bool has_header(const resp *r, const char *line)
{
    return strcasestr(r->headers, line) != NULL;
}

/* method NULL = GET; "HEAD" uses NOBODY. token NULL = no Authorization. */
static void http_port(int port, const char *method, const char *path, const char *token,
                      const char *extra_header, resp *r)
{
    memset(r, 0, sizeof *r);
    char url[8192];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    CURL *e = curl_easy_init();
    assert_non_null(e);
    struct curl_slist *h = NULL;
    char auth[300];
    if (token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (extra_header)
        h = curl_slist_append(h, extra_header);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
    if (method && strcmp(method, "HEAD") == 0)
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    else if (method && strcmp(method, "POST") == 0)
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "a=b");
    else if (method)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    CURLcode rc = curl_easy_perform(e);
    if (rc != CURLE_OK)
        fail_msg("%s %s: %s", method ? method : "GET", path, curl_easy_strerror(rc));
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
}

static void http(const char *method, const char *path, resp *r)
{
    http_port(F.port, method, path, NULL, NULL, r);
}

/* GET path, expect status, return the parsed JSON body (decref it). */
static json_t *get_json(const char *path, long status)
{
    resp r;
    http(NULL, path, &r);
    if (r.status != status)
        fail_msg("GET %s: status %ld, expected %ld: %s", path, r.status, status, r.body ? r.body : "");
    assert_true(has_header(&r, "Content-Type: application/json"));
    assert_true(has_header(&r, "Cache-Control: no-store"));
    json_error_t je;
    json_t *o = json_loadb(r.body ? r.body : "", r.len, 0, &je);
    if (!o)
        fail_msg("GET %s: not JSON (%s): %s", path, je.text, r.body ? r.body : "");
    resp_free(&r);
    return o;
}

static void expect_error(const char *path, long status, const char *code)
{
    json_t *o = get_json(path, status);
    const char *c = json_string_value(json_object_get(json_object_get(o, "error"), "code"));
    const char *m = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    if (!c || strcmp(c, code) != 0 || !m || !m[0])
        fail_msg("GET %s: error code %s, expected %s", path, c ? c : "(none)", code);
    json_decref(o);
}

static char *urlenc(const char *s)
{
    CURL *e = curl_easy_init();
    char *t = curl_easy_escape(e, s, 0);
    char *r = strdup(t);
    curl_free(t);
    curl_easy_cleanup(e);
    return r;
}

/* ---- fixture ------------------------------------------------------------------ */
static char *status_hook(void *ud)
{
    (void)ud;
    return strdup("{\"version\":\"test\",\"ok\":true}");
}

static const api_hooks hooks = {.ud = NULL, .status_json = status_hook};

static int setup(void **state)
{
    (void)state;
    char err[256];
    memset(&F, 0, sizeof F);
    strcpy(F.dir, "/tmp/ippoc-api-test-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    core_config_defaults(&F.cfg);
    core_sncpy(F.cfg.state_dir, sizeof F.cfg.state_dir, F.dir);
    core_sncpy(F.cfg.api_listen, sizeof F.cfg.api_listen, "127.0.0.1:0");
    F.cfg.api_max_points = 1000;
    F.cfg.api_max_connections = 16;
    if (mem_open(&F.mem, &F.cfg, err, sizeof err) != 0)
        fail_msg("mem_open: %s", err);

    int user = mem_series(F.mem, "cpu.usage_percent", "cpu=\"total\",state=\"user\"", "percent",
                          "CPU time share", MEM_GAUGE);
    int sys = mem_series(F.mem, "cpu.usage_percent", "cpu=\"total\",state=\"system\"", "percent",
                         "CPU time share", MEM_GAUGE);
    int used = mem_series(F.mem, "mem.used_bytes", "", "bytes", "Used memory", MEM_GAUGE);
    int rd = mem_series(F.mem, "disk.io:read", "dev=\"sda\"", "bytes/s", "Disk reads", MEM_RATE);
    int never = mem_series(F.mem, "never.set", "", "", "Never set", MEM_GAUGE);
    assert_true(user >= 0 && sys >= 0 && used >= 0 && rd >= 0 && never >= 0);
    F.now = core_now_ms() / 1000 * 1000;
    for (int i = 0; i < 10; i++) {
        mem_put(F.mem, user, 10 + i);
        mem_put(F.mem, sys, 5);
        mem_put(F.mem, used, 1e9);
        mem_put(F.mem, rd, 100.5);
        assert_int_equal(mem_tick(F.mem, F.now - (9 - i) * 1000), 0);
    }
    F.ev[0] = mem_event_add(F.mem, 0, "daemon.start", "info", "daemon", "{\"version\":\"test\"}");
    F.ev[1] = mem_event_add(F.mem, 0, "anomaly", "warning", "detect", "{\"metric\":\"cpu\",\"z\":4.5}");
    F.ev[2] = mem_event_add(F.mem, 0, "anomaly", "critical", "detect", NULL);
    assert_true(F.ev[0] > 0 && F.ev[1] > F.ev[0] && F.ev[2] > F.ev[1]);
    assert_int_equal(mem_flush(F.mem, 10000), 0);

    if (api_start(&F.api, &F.cfg, F.mem, &hooks, err, sizeof err) != 0)
        fail_msg("api_start: %s", err);
    F.port = api_port(F.api);
    assert_true(F.port > 0 && F.port < 65536);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    api_stop(F.api);
    mem_close(F.mem);
    core_config_free(&F.cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- tests ---------------------------------------------------------------------- */
static void t_status(void **state)
{
    (void)state;
    json_t *o = get_json("/v1/status", 200);
    assert_string_equal(json_string_value(json_object_get(o, "version")), "test");
    json_decref(o);
    resp r;
    http("HEAD", "/v1/status", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_free(&r);
    expect_error("/v1/status?x=1", 400, "bad_request");
}

static void t_routing(void **state)
{
    (void)state;
    expect_error("/nope", 404, "not_found");
    expect_error("/v1/nope", 404, "not_found");
    /* "/" is the dashboard's page (api_web.c; tests/integration/test_web.py in depth) */
    resp w;
    http("GET", "/", &w);
    assert_int_equal(w.status, 200);
    assert_true(has_header(&w, "Content-Type: text/html; charset=utf-8"));
    assert_true(has_header(&w, "Content-Security-Policy: default-src 'self'"));
    assert_non_null(strstr(w.body, "<html"));
    resp_free(&w);
    expect_error("/assets/../index.html", 404, "not_found");
    expect_error("/v1/status/", 404, "not_found");
    expect_error("/v1/metrics/", 404, "not_found");
    const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        resp r;
        http(methods[i], "/v1/status", &r);
        assert_int_equal(r.status, 405);
        assert_true(has_header(&r, "Allow: GET, HEAD"));
        assert_non_null(strstr(r.body, "\"method_not_allowed\""));
        resp_free(&r);
    }
    /* the server still answers after all that */
    json_decref(get_json("/v1/status", 200));
}

static void t_metrics_list(void **state)
{
    (void)state;
    json_t *o = get_json("/v1/metrics", 200);
    json_t *arr = json_object_get(o, "metrics");
    assert_int_equal(json_array_size(arr), 5);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 5);
    bool seen_user = false, seen_never = false;
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        const char *key = json_string_value(json_object_get(m, "key"));
        assert_non_null(key);
        assert_non_null(json_object_get(m, "help"));
        assert_true(json_is_object(json_object_get(m, "labels")));
        if (strcmp(key, "cpu.usage_percent{cpu=\"total\",state=\"user\"}") == 0) {
            seen_user = true;
            assert_string_equal(json_string_value(json_object_get(m, "unit")), "percent");
            assert_string_equal(json_string_value(json_object_get(m, "kind")), "gauge");
            assert_string_equal(json_string_value(json_object_get(json_object_get(m, "labels"), "state")), "user");
            assert_true(fabs(json_number_value(json_object_get(m, "last")) - 19) < 1e-9);
            assert_int_equal(json_integer_value(json_object_get(m, "last_ts")), F.now);
        }
        if (strcmp(key, "never.set") == 0) {
            seen_never = true;
            assert_true(json_is_null(json_object_get(m, "last")));
        }
        if (strcmp(key, "disk.io:read{dev=\"sda\"}") == 0)
            assert_string_equal(json_string_value(json_object_get(m, "kind")), "rate");
    }
    assert_true(seen_user && seen_never);
    json_decref(o);

    o = get_json("/v1/metrics?match=cpu.*", 200);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 2);
    json_decref(o);
    o = get_json("/v1/metrics?match=nothing*", 200);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 0);
    json_decref(o);
    expect_error("/v1/metrics?matches=cpu", 400, "bad_request");
    expect_error("/v1/metrics?match=a&match=b", 400, "bad_request");
}

static void check_points(json_t *series, double lo, double hi)
{
    json_t *pts = json_object_get(series, "points");
    assert_true(json_array_size(pts) > 0);
    size_t i;
    json_t *p;
    int64_t prev = 0;
    json_array_foreach(pts, i, p) {
        assert_int_equal(json_array_size(p), 5);
        int64_t ts = json_integer_value(json_array_get(p, 0));
        assert_true(ts > prev);
        prev = ts;
        double mean = json_number_value(json_array_get(p, 1));
        double mn = json_number_value(json_array_get(p, 2)), mx = json_number_value(json_array_get(p, 3));
        assert_true(mean >= lo - 1e-9 && mean <= hi + 1e-9);
        assert_true(mn <= mean + 1e-9 && mean <= mx + 1e-9);
        assert_true(json_integer_value(json_array_get(p, 4)) >= 1);
    }
}

static void t_metric_family(void **state)
{
    (void)state;
    /* the RAM window holds the 10 ticks put: from now-9s it answers */
    json_t *o = get_json("/v1/metrics/cpu.usage_percent?from=now-9s&to=now", 200);
    assert_string_equal(json_string_value(json_object_get(o, "name")), "cpu.usage_percent");
    assert_string_equal(json_string_value(json_object_get(o, "source")), "ram");
    assert_int_equal(json_integer_value(json_object_get(o, "step")), 1000);
    int64_t from = json_integer_value(json_object_get(o, "from"));
    int64_t to = json_integer_value(json_object_get(o, "to"));
    assert_int_equal(to - from, 9000);
    json_t *series = json_object_get(o, "series");
    assert_int_equal(json_array_size(series), 2);
    size_t i;
    json_t *s;
    json_array_foreach(series, i, s) {
        const char *state_label = json_string_value(json_object_get(json_object_get(s, "labels"), "state"));
        assert_non_null(state_label);
        assert_string_equal(json_string_value(json_object_get(s, "unit")), "percent");
        if (strcmp(state_label, "user") == 0)
            check_points(s, 10, 19);
        else
            check_points(s, 5, 5);
    }
    json_decref(o);

    /* from before the RAM window (15 min): the 10 s tier (with its open bucket) */
    o = get_json("/v1/metrics/cpu.usage_percent?from=now-20m", 200);
    assert_string_equal(json_string_value(json_object_get(o, "source")), "10s");
    assert_int_equal(json_integer_value(json_object_get(o, "step")) % 10000, 0);
    assert_int_equal(json_array_size(json_object_get(o, "series")), 2);
    json_decref(o);

    /* with a step: buckets are step apart */
    char path[256];
    snprintf(path, sizeof path, "/v1/metrics/mem.used_bytes?from=%lld&to=%lld&step=5s",
             (long long)(F.now - 8000) / 1000, (long long)F.now / 1000);
    o = get_json(path, 200);
    assert_int_equal(json_integer_value(json_object_get(o, "step")), 5000);
    json_t *pts = json_object_get(json_array_get(json_object_get(o, "series"), 0), "points");
    assert_true(json_array_size(pts) >= 1 && json_array_size(pts) <= 5);
    check_points(json_array_get(json_object_get(o, "series"), 0), 1e9, 1e9);
    json_decref(o);

    /* a long range picks a coarser automatic step and still answers */
    o = get_json("/v1/metrics/mem.used_bytes?from=now-30d", 200);
    int64_t step = json_integer_value(json_object_get(o, "step"));
    assert_true(step >= 60000 && step % 60000 == 0);
    assert_true(30 * 86400000LL / step + 1 <= 1000);
    json_decref(o);
}

static void t_metric_key(void **state)
{
    (void)state;
    /* labels in another order, URL-encoded: the same series */
    char *enc = urlenc("cpu.usage_percent{state=\"user\", cpu=\"total\"}");
    char path[512];
    snprintf(path, sizeof path, "/v1/metrics/%s?from=now-1m", enc);
    free(enc);
    json_t *o = get_json(path, 200);
    json_t *series = json_object_get(o, "series");
    assert_int_equal(json_array_size(series), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(series, 0), "key")),
                        "cpu.usage_percent{cpu=\"total\",state=\"user\"}");
    check_points(json_array_get(series, 0), 10, 19);
    json_decref(o);

    enc = urlenc("cpu.usage_percent{cpu=\"total\",state=\"steal\"}");
    snprintf(path, sizeof path, "/v1/metrics/%s", enc);
    free(enc);
    expect_error(path, 404, "unknown_metric");
    enc = urlenc("cpu.usage_percent{state=user}");
    snprintf(path, sizeof path, "/v1/metrics/%s", enc);
    free(enc);
    expect_error(path, 400, "bad_request");
    expect_error("/v1/metrics/no.such.metric", 404, "unknown_metric");
}

static void t_metric_errors(void **state)
{
    (void)state;
    expect_error("/v1/metrics/mem.used_bytes?from=now&to=now-1h", 400, "bad_range");
    expect_error("/v1/metrics/mem.used_bytes?from=yesterday", 400, "bad_range");
    expect_error("/v1/metrics/mem.used_bytes?to=1e40", 400, "bad_range");
    expect_error("/v1/metrics/mem.used_bytes?from=", 400, "bad_request");
    expect_error("/v1/metrics/mem.used_bytes?step=0", 400, "bad_step");
    expect_error("/v1/metrics/mem.used_bytes?step=-5s", 400, "bad_step");
    expect_error("/v1/metrics/mem.used_bytes?step=500ms", 400, "bad_step");
    expect_error("/v1/metrics/mem.used_bytes?step=quick", 400, "bad_step");
    expect_error("/v1/metrics/mem.used_bytes?from=now-1h&step=1s", 400, "too_large"); /* 3601 > 1000 */
    expect_error("/v1/metrics/mem.used_bytes?form=now-1h", 400, "bad_request");
    json_t *o = get_json("/v1/metrics/mem.used_bytes?from=now-1h&step=5s", 200); /* 721 points: fine */
    json_decref(o);
}

static void t_bad_requests(void **state)
{
    (void)state;
    expect_error("/v1/metrics?match=%zz", 400, "bad_request");
    expect_error("/v1/metrics/mem%00.used_bytes", 400, "bad_request");
    char *big = malloc(6000);
    strcpy(big, "/v1/metrics?match=");
    memset(big + strlen(big), 'a', 5000);
    big[5018] = 0;
    resp r;
    http(NULL, big, &r);
    assert_true(r.status == 414 || r.status == 400 || r.status == 431);
    resp_free(&r);
    free(big);
}

static void t_events(void **state)
{
    (void)state;
    json_t *o = get_json("/v1/events", 200);
    json_t *ev = json_object_get(o, "events");
    assert_int_equal(json_array_size(ev), 3);
    json_t *first = json_array_get(ev, 0); /* newest first */
    assert_int_equal(json_integer_value(json_object_get(first, "id")), F.ev[2]);
    assert_string_equal(json_string_value(json_object_get(first, "severity")), "critical");
    assert_true(json_is_object(json_object_get(first, "payload")));
    json_t *mid = json_array_get(ev, 1);
    assert_string_equal(json_string_value(json_object_get(mid, "source")), "detect");
    assert_string_equal(json_string_value(json_object_get(json_object_get(mid, "payload"), "metric")), "cpu");
    assert_true(json_integer_value(json_object_get(mid, "ts")) > F.now - 60000);
    json_decref(o);

    o = get_json("/v1/events?order=asc&limit=2", 200);
    ev = json_object_get(o, "events");
    assert_int_equal(json_array_size(ev), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 0), "id")), F.ev[0]);
    json_decref(o);
    o = get_json("/v1/events?type=anomaly", 200);
    assert_int_equal(json_array_size(json_object_get(o, "events")), 2);
    json_decref(o);
    o = get_json("/v1/events?type=anom*&severity=critical", 200);
    assert_int_equal(json_array_size(json_object_get(o, "events")), 1);
    json_decref(o);
    char path[128];
    snprintf(path, sizeof path, "/v1/events?after=%lld", (long long)F.ev[1]);
    o = get_json(path, 200);
    assert_int_equal(json_array_size(json_object_get(o, "events")), 1);
    json_decref(o);
    o = get_json("/v1/events?from=now-1h&to=now", 200);
    assert_int_equal(json_array_size(json_object_get(o, "events")), 3);
    json_decref(o);

    expect_error("/v1/events?limit=0", 400, "bad_request");
    expect_error("/v1/events?limit=10001", 400, "bad_request");
    expect_error("/v1/events?limit=ten", 400, "bad_request");
    expect_error("/v1/events?order=sideways", 400, "bad_request");
    expect_error("/v1/events?severity=loud", 400, "bad_request");
    expect_error("/v1/events?after=-1", 400, "bad_request");
    expect_error("/v1/events?from=soon", 400, "bad_range");
    expect_error("/v1/events?from=now&to=now-1h", 400, "bad_range");
    expect_error("/v1/events?colour=red", 400, "bad_request");
    o = get_json("/v1/events?limit=10000", 200);
    json_decref(o);
}

/* ---- /metrics ---------------------------------------------------------------- */
static void t_prometheus(void **state)
{
    (void)state;
    resp r;
    http(NULL, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_true(has_header(&r, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    /* host families, rates and percentages are not IPPOC's to export */
    assert_null(strstr(r.body, "cpu_usage_percent"));
    assert_null(strstr(r.body, "disk_io_read"));
    assert_null(strstr(r.body, "mem_used_bytes"));
    assert_null(strstr(r.body, "never_set"));
    assert_non_null(strstr(r.body, "ippoc_build_info{version="));
    assert_non_null(strstr(r.body, "\nippoc_memory_series 5\n"));
    assert_non_null(strstr(r.body, "# TYPE ippoc_self_cpu_seconds_total counter\nippoc_self_cpu_seconds_total "));
    /* no anomaly or heal hooks here: no such families */
    assert_null(strstr(r.body, "ippoc_anomal"));
    assert_null(strstr(r.body, "ippoc_service_"));
    if (api_test_prom_parse(r.body) == 1)
        fail_msg("prometheus_client rejected /metrics:\n%s", r.body);
    resp_free(&r);
    expect_error("/metrics?format=json", 400, "bad_request");
}

/* 1500 series through the whole path: snapshot, render, HTTP. */
static void t_prom_scale(void **state)
{
    (void)state;
    enum { N = 1500 };
    char dir[64] = "/tmp/ippoc-api-scale-XXXXXX", err[256];
    assert_non_null(mkdtemp(dir));
    core_config cfg = F.cfg;
    core_sncpy(cfg.state_dir, sizeof cfg.state_dir, dir);
    mem_t *m = NULL;
    if (mem_open(&m, &cfg, err, sizeof err) != 0)
        fail_msg("mem_open: %s", err);
    for (int i = 0; i < N; i++) {
        char name[64], labels[128];
        static const char *const fams[] = {"process.rss_bytes", "process.threads", "apps.threads",
                                           "apps.memory_rss_bytes", "cgroup.memory_current_bytes"};
        snprintf(name, sizeof name, "%s", fams[i % 5]);
        snprintf(labels, sizeof labels, "name=\"n%d\",pid=\"%d\",state=\"s%d\"", i, i % 3, i % 9);
        int id = mem_series(m, name, labels, "", "help text", MEM_GAUGE);
        assert_true(id >= 0);
        mem_put(m, id, i * 1.25);
    }
    assert_int_equal(mem_tick(m, core_now_ms()), 0);
    api_t *a = NULL;
    if (api_start(&a, &cfg, m, &hooks, err, sizeof err) != 0)
        fail_msg("api_start: %s", err);
    enum { ROUNDS = 10 };
    resp r;
    int64_t t0 = core_mono_ns();
    for (int i = 0; i < ROUNDS; i++) {
        http_port(api_port(a), NULL, "/metrics", NULL, NULL, &r);
        assert_int_equal(r.status, 200);
        if (i < ROUNDS - 1)
            resp_free(&r);
    }
    int64_t dt = (core_mono_ns() - t0) / ROUNDS;
    print_message("GET /metrics, %d series: %zu bytes in %.2f ms (with HTTP)\n", N, r.len, dt / 1e6);
    int lines = 0;
    for (const char *p = r.body; (p = strchr(p, '\n')); p++)
        lines++;
    assert_true(lines >= N + 2 * 5); /* samples plus HELP/TYPE of 5 families */
    if (api_test_prom_parse(r.body) == 1)
        fail_msg("prometheus_client rejected /metrics with %d series", N);
    resp_free(&r);
    api_stop(a);
    mem_close(m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- auth --------------------------------------------------------------------- */
static void t_auth(void **state)
{
    (void)state;
    core_config cfg = F.cfg;
    core_sncpy(cfg.api_token, sizeof cfg.api_token, TOKEN);
    api_t *a = NULL;
    char err[256];
    if (api_start(&a, &cfg, F.mem, &hooks, err, sizeof err) != 0)
        fail_msg("api_start: %s", err);
    int port = api_port(a);
    resp r;
    const char *paths[] = {"/v1/status", "/metrics", "/v1/nope", "/v1/events/stream"};
    for (size_t i = 0; i < 4; i++) {
        http_port(port, NULL, paths[i], NULL, NULL, &r);
        assert_int_equal(r.status, 401);
        assert_true(has_header(&r, "WWW-Authenticate: Bearer"));
        assert_non_null(strstr(r.body, "\"unauthorized\""));
        resp_free(&r);
        http_port(port, NULL, paths[i], "s3cret-token-0123456788", NULL, &r);
        assert_int_equal(r.status, 401);
        resp_free(&r);
    }
    http_port(port, NULL, "/v1/status", NULL, "Authorization: Basic czNjcmV0", &r);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    http_port(port, NULL, "/v1/status", TOKEN, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    http_port(port, NULL, "/metrics", TOKEN, NULL, &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    api_stop(a);
}

/* ---- listen ------------------------------------------------------------------- */
static void t_listen(void **state)
{
    (void)state;
    core_config cfg = F.cfg;
    api_t *a = NULL;
    char err[256], want[128];
    snprintf(cfg.api_listen, sizeof cfg.api_listen, "127.0.0.1:%d", F.port);
    assert_int_equal(api_start(&a, &cfg, F.mem, &hooks, err, sizeof err), -EADDRINUSE);
    assert_null(a);
    snprintf(want, sizeof want, "api: cannot listen on 127.0.0.1:%d: Address already in use", F.port);
    assert_string_equal(err, want);

    snprintf(cfg.api_listen, sizeof cfg.api_listen, "example.com:80");
    assert_int_equal(api_start(&a, &cfg, F.mem, &hooks, err, sizeof err), -EINVAL);
    snprintf(cfg.api_listen, sizeof cfg.api_listen, "nonsense");
    assert_int_equal(api_start(&a, &cfg, F.mem, &hooks, err, sizeof err), -EINVAL);

    snprintf(cfg.api_listen, sizeof cfg.api_listen, "localhost:0");
    assert_int_equal(api_start(&a, &cfg, F.mem, &hooks, err, sizeof err), 0);
    assert_true(api_port(a) > 0);
    api_stop(a);

    snprintf(cfg.api_listen, sizeof cfg.api_listen, "[::1]:0");
    if (api_start(&a, &cfg, F.mem, &hooks, err, sizeof err) != 0) {
        print_message("skipping IPv6 check: %s\n", err);
        return;
    }
    char url[128];
    snprintf(url, sizeof url, "http://[::1]:%d/v1/status", api_port(a));
    CURL *e = curl_easy_init();
    resp r = {0};
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(e), CURLE_OK);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.status);
    assert_int_equal(r.status, 200);
    curl_easy_cleanup(e);
    resp_free(&r);
    api_stop(a);
}

/* ---- server-sent events ----------------------------------------------------------- */
typedef struct stream {
    CURLM *m;
    CURL *e;
    struct curl_slist *h;
    resp r;
    bool done;
} stream;

static void stream_open(stream *s, int port, const char *path, const char *extra_header)
{
    memset(s, 0, sizeof *s);
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    s->m = curl_multi_init();
    s->e = curl_easy_init();
    if (extra_header)
        s->h = curl_slist_append(s->h, extra_header);
    curl_easy_setopt(s->e, CURLOPT_URL, url);
    curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->h);
    curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->e, CURLOPT_WRITEDATA, &s->r);
    curl_easy_setopt(s->e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->e, CURLOPT_HEADERDATA, &s->r);
    curl_multi_add_handle(s->m, s->e);
}

/* Runs the transfer until needle is in the body (true), it ends, or timeout. */
static bool stream_pump(stream *s, const char *needle, int timeout_ms)
{
    int64_t until = core_mono_ms() + timeout_ms;
    while (core_mono_ms() < until) {
        int running = 0;
        curl_multi_perform(s->m, &running);
        if (needle && s->r.body && strstr(s->r.body, needle))
            return true;
        if (!running) {
            s->done = true;
            return needle == NULL;
        }
        curl_multi_poll(s->m, NULL, 0, 100, NULL);
    }
    return false;
}

static void stream_close(stream *s)
{
    curl_multi_remove_handle(s->m, s->e);
    curl_easy_cleanup(s->e);
    curl_multi_cleanup(s->m);
    curl_slist_free_all(s->h);
    resp_free(&s->r);
}

static void t_sse_live(void **state)
{
    (void)state;
    stream s;
    stream_open(&s, F.port, "/v1/events/stream", NULL);
    assert_true(stream_pump(&s, ": connected\n\n", 10000));
    curl_easy_getinfo(s.e, CURLINFO_RESPONSE_CODE, &s.r.status);
    assert_int_equal(s.r.status, 200);
    assert_true(has_header(&s.r, "Content-Type: text/event-stream"));
    assert_null(strstr(s.r.body, "event: anomaly")); /* no replay without an id */

    /* another request is served while the stream blocks */
    json_decref(get_json("/v1/status", 200));

    int64_t id = mem_event_add(F.mem, 0, "test.sse", "info", "test", "{\"n\":1}");
    assert_true(id > 0);
    char want[128];
    snprintf(want, sizeof want, "id: %lld\nevent: test.sse\ndata: {", (long long)id);
    assert_true(stream_pump(&s, "\"n\":1}}\n\n", 10000));
    assert_non_null(strstr(s.r.body, want));
    json_error_t je;
    const char *data = strstr(s.r.body, "data: ") + 6;
    json_t *o = json_loadb(data, (size_t)(strchr(data, '\n') - data), 0, &je);
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), id);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "test.sse");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(o, "payload"), "n")), 1);
    json_decref(o);
    stream_close(&s);
}

static void t_sse_replay(void **state)
{
    (void)state;
    char hdr[64], want1[64], want2[64];
    snprintf(hdr, sizeof hdr, "Last-Event-ID: %lld", (long long)F.ev[0]);
    snprintf(want1, sizeof want1, "id: %lld\nevent: anomaly\n", (long long)F.ev[1]);
    snprintf(want2, sizeof want2, "id: %lld\nevent: anomaly\n", (long long)F.ev[2]);
    stream s;
    stream_open(&s, F.port, "/v1/events/stream?after=999999", hdr); /* the header wins */
    assert_true(stream_pump(&s, want2, 10000));
    assert_non_null(strstr(s.r.body, want1));
    assert_true(strstr(s.r.body, want1) < strstr(s.r.body, want2));
    char not_want[64];
    snprintf(not_want, sizeof not_want, "id: %lld\n", (long long)F.ev[0]);
    assert_null(strstr(s.r.body, not_want));
    stream_close(&s);

    char path[64];
    snprintf(path, sizeof path, "/v1/events/stream?after=%lld", (long long)F.ev[1]);
    stream_open(&s, F.port, path, NULL);
    assert_true(stream_pump(&s, want2, 10000));
    assert_null(strstr(s.r.body, want1));
    stream_close(&s);

    expect_error("/v1/events/stream?after=x", 400, "bad_request");
    expect_error("/v1/events/stream?since=1", 400, "bad_request");
}

static void t_sse_stop(void **state)
{
    (void)state;
    api_t *a = NULL;
    char err[256];
    core_config cfg = F.cfg;
    cfg.api_max_connections = 4; /* at most 2 streams */
    if (api_start(&a, &cfg, F.mem, &hooks, err, sizeof err) != 0)
        fail_msg("api_start: %s", err);
    stream s[2];
    for (int i = 0; i < 2; i++) {
        stream_open(&s[i], api_port(a), "/v1/events/stream", NULL);
        assert_true(stream_pump(&s[i], ": connected\n\n", 10000));
    }
    resp r;
    http_port(api_port(a), NULL, "/v1/events/stream", NULL, NULL, &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"busy\""));
    resp_free(&r);
    int64_t t0 = core_mono_ms();
    api_stop(a);
    int64_t dt = core_mono_ms() - t0;
    print_message("api_stop with 2 open streams: %lld ms\n", (long long)dt);
    assert_true(dt < 2500);
    for (int i = 0; i < 2; i++) {
        assert_true(stream_pump(&s[i], NULL, 5000)); /* the transfer ends */
        stream_close(&s[i]);
    }
}

/* A status answer that takes a while: the connections served stay open
 * until the whole burst below has been seen by the gate. */
static char *slow_status_hook(void *ud)
{
    usleep(400 * 1000);
    return status_hook(ud);
}

/* A burst of whole requests from one address: the gate hands them off
 * faster than MHD starts them, and must still hold to the per-address limit
 * (3 of 4 connections) rather than count only the connections MHD has
 * already started. */
static void t_burst_limit(void **state)
{
    (void)state;
    api_t *a = NULL;
    char err[256];
    core_config cfg = F.cfg;
    cfg.api_max_connections = 4; /* 3 from one address */
    const api_hooks slow = {.status_json = slow_status_hook};
    if (api_start(&a, &cfg, F.mem, &slow, err, sizeof err) != 0)
        fail_msg("api_start: %s", err);
    enum { N = 10 };
    int fd[N];
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)api_port(a))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < N; i++) {
        fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd[i] >= 0);
        assert_int_equal(connect(fd[i], (struct sockaddr *)&sa, sizeof sa), 0);
        struct timeval tv = {10, 0};
        setsockopt(fd[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    usleep(100 * 1000); /* all accepted and waiting for their request */
    static const char req[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++)
        assert_int_equal(send(fd[i], req, sizeof req - 1, MSG_NOSIGNAL), (ssize_t)(sizeof req - 1));
    int ok = 0, busy = 0;
    for (int i = 0; i < N; i++) {
        char buf[64] = {0};
        ssize_t n = recv(fd[i], buf, sizeof buf - 1, 0);
        if (n > 0 && !strncmp(buf, "HTTP/1.1 200", 12))
            ok++;
        else if (n > 0 && !strncmp(buf, "HTTP/1.1 503", 12))
            busy++;
    }
    print_message("burst of %d: %d served, %d busy\n", N, ok, busy);
    assert_true(ok >= 1 && ok <= 3);
    assert_int_equal(ok + busy, N);
    for (int i = 0; i < N; i++)
        close(fd[i]);
    api_stop(a);
}

/* ---- malformed input on a raw socket --------------------------------------------- */
static void raw_exchange(const void *req, size_t len, char *out, size_t outlen)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)F.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const char *p = req;
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, p + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may close early on a huge request */
        off += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    ssize_t k;
    while (got + 1 < outlen && (k = recv(fd, out + got, outlen - 1 - got, 0)) > 0)
        got += (size_t)k;
    out[got] = 0;
    close(fd);
}

static void expect_4xx_or_close(const void *req, size_t len)
{
    char out[4096];
    raw_exchange(req, len, out, sizeof out);
    bool http4xx = strncmp(out, "HTTP/1.", 7) == 0 && out[9] == '4';
    bool http505 = strncmp(out, "HTTP/1.1 505 ", 13) == 0; /* unsupported version */
    if (out[0] && !http4xx && !http505)
        fail_msg("request '%.40s...': expected a 4xx or a closed connection, got: %.200s",
                 (const char *)req, out);
    /* the gate answers malformed requests itself: JSON, never MHD's HTML */
    if (out[0] && (!strstr(out, "Content-Type: application/json\r\n") || !strstr(out, "{\"error\":{\"code\":")))
        fail_msg("request '%.40s...': the error is not JSON: %.300s", (const char *)req, out);
}

static void t_malformed(void **state)
{
    (void)state;
    static const char nul[] = "GET /v1/sta\0tus HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_4xx_or_close(nul, sizeof nul - 1);
    /* a NUL in a header value: refused by the gate before MHD could cut it */
    static const char hdrnul[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n";
    char out[4096];
    raw_exchange(hdrnul, sizeof hdrnul - 1, out, sizeof out);
    assert_non_null(strstr(out, "HTTP/1.1 400 "));
    assert_non_null(strstr(out, "\"bad_request\""));
    const char *odd[] = {"garbage\r\n\r\n", "GET\r\n\r\n", "GET /v1/status HTTP/9.9\r\n\r\n",
                         "GET /v1/status HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n",
                         "\xff\xfe\r\n\r\n"};
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
        expect_4xx_or_close(odd[i], strlen(odd[i]));
    const char *pct = "GET /v1/status?%%%%% HTTP/1.1\r\nHost: x\r\n\r\n";
    expect_4xx_or_close(pct, strlen(pct));
    const char *body = "GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    expect_4xx_or_close(body, strlen(body));

    /* a 200 KB header, then a 100 KB request target */
    static const char h1[] = "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: ";
    static const char t1[] = "GET /v1/metrics?match=", t2[] = " HTTP/1.1\r\nHost: x\r\n\r\n";
    enum { big = 200 * 1024, target = 100 * 1024 };
    static char req[big + 128];
    size_t n = sizeof h1 - 1;
    memcpy(req, h1, n);
    memset(req + n, 'a', big);
    memcpy(req + n + big, "\r\n\r\n", 4);
    expect_4xx_or_close(req, n + big + 4);
    n = sizeof t1 - 1;
    memcpy(req, t1, n);
    memset(req + n, 'b', target);
    memcpy(req + n + target, t2, sizeof t2 - 1);
    expect_4xx_or_close(req, n + target + sizeof t2 - 1);

    /* still alive */
    json_decref(get_json("/v1/status", 200));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_status),        cmocka_unit_test(t_routing),
        cmocka_unit_test(t_metrics_list),  cmocka_unit_test(t_metric_family),
        cmocka_unit_test(t_metric_key),    cmocka_unit_test(t_metric_errors),
        cmocka_unit_test(t_bad_requests),  cmocka_unit_test(t_events),
        cmocka_unit_test(t_prometheus),    cmocka_unit_test(t_prom_scale),
        cmocka_unit_test(t_auth),
        cmocka_unit_test(t_listen),        cmocka_unit_test(t_sse_live),
        cmocka_unit_test(t_sse_replay),    cmocka_unit_test(t_sse_stop),
        cmocka_unit_test(t_burst_limit),   cmocka_unit_test(t_malformed),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
