/* test_api_unit.c: unit tests of the API's pure helpers: Prometheus names,
 * values and exposition (checked by a real parser when python3's
 * prometheus_client is installed), label parsing and canonicalisation,
 * series keys, query-parameter and time-range validation, request-target
 * checks, the bearer-token check, JSON error bodies and SSE frames. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api_int.h"
#include "api_test_util.h"

static void t_prom_name(void **state)
{
    (void)state;
    char b[64];
    api_prom_name("cpu.usage_percent", b, sizeof b);
    assert_string_equal(b, "ippoc_cpu_usage_percent");
    api_prom_name("disk-io.read:bytes", b, sizeof b);
    assert_string_equal(b, "ippoc_disk_io_read_bytes");
    api_prom_name("net.rx_bytes2", b, sizeof b);
    assert_string_equal(b, "ippoc_net_rx_bytes2");
    api_prom_name("x\xc3\xa9", b, sizeof b);
    assert_string_equal(b, "ippoc_x__");
    api_prom_name("abcdef", b, 9); /* cut, still terminated */
    assert_string_equal(b, "ippoc_ab");
    api_prom_label_name("9lives", b, sizeof b);
    assert_string_equal(b, "_9lives");
    api_prom_label_name("a.b-c", b, sizeof b);
    assert_string_equal(b, "a_b_c");
}

static void t_prom_value(void **state)
{
    (void)state;
    char b[40];
    api_prom_value(1, b, sizeof b);
    assert_string_equal(b, "1");
    api_prom_value(0.1, b, sizeof b);
    assert_string_equal(b, "0.1");
    api_prom_value(-12.5, b, sizeof b);
    assert_string_equal(b, "-12.5");
    api_prom_value(1e300, b, sizeof b);
    assert_string_equal(b, "1e+300");
    api_prom_value(NAN, b, sizeof b);
    assert_string_equal(b, "NaN");
    api_prom_value(INFINITY, b, sizeof b);
    assert_string_equal(b, "+Inf");
    api_prom_value(-INFINITY, b, sizeof b);
    assert_string_equal(b, "-Inf");
    double odd = 0.1 + 0.2; /* needs 17 digits */
    api_prom_value(odd, b, sizeof b);
    assert_true(strtod(b, NULL) == odd);
    api_prom_value(123456789012.0, b, sizeof b);
    assert_string_equal(b, "123456789012");
}

static void t_labels(void **state)
{
    (void)state;
    char out[256], err[128];
    assert_int_equal(api_labels_canon("state=\"user\", cpu=\"total\"", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "cpu=\"total\",state=\"user\"");
    assert_int_equal(api_labels_canon("", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "");
    assert_int_equal(api_labels_canon(" a = \"x\\\"y\\\\z\\n\" , ", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "a=\"x\\\"y\\\\z\\n\"");
    assert_int_equal(api_labels_canon("b=\"}{,=\",a=\"\"", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "a=\"\",b=\"}{,=\"");

    assert_int_equal(api_labels_canon("a=\"1\",a=\"2\"", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_canon("a=1", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_canon("a=\"1", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_canon("a=\"\\x\"", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_canon("a=\"1\" b=\"2\"", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_canon("=\"1\"", out, sizeof out, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_canon("a=\"1\"", out, 4, err, sizeof err), -ENAMETOOLONG);

    api_label l[4];
    assert_int_equal(api_labels_parse("a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\"", l, 4, err, sizeof err), -EINVAL);
    assert_int_equal(api_labels_parse("z=\"1\",y=\"2\"", l, 4, err, sizeof err), 2);
    assert_string_equal(l[1].name, "y");
    assert_string_equal(l[1].value, "2");

    json_t *o = api_labels_json("cpu=\"total\",state=\"user\"");
    assert_string_equal(json_string_value(json_object_get(o, "state")), "user");
    assert_int_equal(json_object_size(o), 2);
    json_decref(o);
    o = api_labels_json("garbage");
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

static void t_split_key(void **state)
{
    (void)state;
    char n[64], l[128];
    assert_int_equal(api_split_key("cpu.usage{cpu=\"0\"}", n, sizeof n, l, sizeof l), 0);
    assert_string_equal(n, "cpu.usage");
    assert_string_equal(l, "cpu=\"0\"");
    assert_int_equal(api_split_key("cpu.usage", n, sizeof n, l, sizeof l), 0);
    assert_string_equal(l, "");
    assert_int_equal(api_split_key("cpu.usage{}", n, sizeof n, l, sizeof l), 0);
    assert_string_equal(n, "cpu.usage");
    assert_string_equal(l, "");
    assert_int_equal(api_split_key("{a=\"1\"}", n, sizeof n, l, sizeof l), -EINVAL);
    assert_int_equal(api_split_key("x{a=\"1\"", n, sizeof n, l, sizeof l), -EINVAL);
    assert_int_equal(api_split_key("x}", n, sizeof n, l, sizeof l), -EINVAL);
    char *k = api_series_key("m", "a=\"1\"");
    assert_string_equal(k, "m{a=\"1\"}");
    free(k);
    k = api_series_key("m", "");
    assert_string_equal(k, "m");
    free(k);
}

static void t_params(void **state)
{
    (void)state;
    static const char *const allowed[] = {"from", "to", "step", NULL};
    const char *vals[4], err_dummy[1] = {0};
    char err[160];
    (void)err_dummy;
    const char *k1[] = {"from", "step"}, *v1[] = {"now-1h", "10s"};
    assert_int_equal(api_params_check(k1, v1, 2, allowed, vals, err, sizeof err), 0);
    assert_string_equal(vals[0], "now-1h");
    assert_null(vals[1]);
    assert_string_equal(vals[2], "10s");

    const char *k2[] = {"from", "bogus"}, *v2[] = {"1", "2"};
    assert_int_equal(api_params_check(k2, v2, 2, allowed, vals, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'bogus'"));
    const char *k3[] = {"to", "to"}, *v3[] = {"1", "2"};
    assert_int_equal(api_params_check(k3, v3, 2, allowed, vals, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "twice"));
    const char *k4[] = {"to"}, *v4[] = {NULL};
    assert_int_equal(api_params_check(k4, v4, 1, allowed, vals, err, sizeof err), -EINVAL);
    const char *k5[] = {"x\n\xff"}, *v5[] = {"1"};
    assert_int_equal(api_params_check(k5, v5, 1, allowed, vals, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'x?" "?'"));
    assert_int_equal(api_params_check(NULL, NULL, 0, allowed, vals, err, sizeof err), 0);
}

static void t_range(void **state)
{
    (void)state;
    const int64_t now = 1700000000000;
    int64_t f, t, s;
    char err[160];
    assert_int_equal(api_parse_range(NULL, NULL, NULL, now, &f, &t, &s, err, sizeof err), API_RANGE_OK);
    assert_int_equal(f, now - 900000);
    assert_int_equal(t, now);
    assert_int_equal(s, 0);
    assert_int_equal(api_parse_range("now-1h", "now", "10s", now, &f, &t, &s, err, sizeof err), 0);
    assert_int_equal(f, now - 3600000);
    assert_int_equal(s, 10000);
    assert_int_equal(api_parse_range("15m", NULL, "60", now, &f, &t, &s, err, sizeof err), 0);
    assert_int_equal(f, now - 900000);
    assert_int_equal(s, 60000);
    assert_int_equal(api_parse_range("1699999000.5", "1700000000", NULL, now, &f, &t, &s, err, sizeof err), 0);
    assert_int_equal(f, 1699999000500);
    assert_int_equal(t, 1700000000000);

    assert_int_equal(api_parse_range("now", "now-1h", NULL, now, &f, &t, &s, err, sizeof err), API_RANGE_BAD);
    assert_int_equal(api_parse_range("yesterday", NULL, NULL, now, &f, &t, &s, err, sizeof err), API_RANGE_BAD);
    assert_non_null(strstr(err, "from"));
    assert_int_equal(api_parse_range(NULL, "1e30", NULL, now, &f, &t, &s, err, sizeof err), API_RANGE_BAD);
    assert_int_equal(api_parse_range("-5", NULL, NULL, now, &f, &t, &s, err, sizeof err), API_RANGE_BAD);
    assert_int_equal(api_parse_range(NULL, NULL, "500ms", now, &f, &t, &s, err, sizeof err), API_STEP_BAD);
    assert_int_equal(api_parse_range(NULL, NULL, "0", now, &f, &t, &s, err, sizeof err), API_STEP_BAD);
    assert_int_equal(api_parse_range(NULL, NULL, "-10s", now, &f, &t, &s, err, sizeof err), API_STEP_BAD);
    assert_int_equal(api_parse_range(NULL, NULL, "1.5", now, &f, &t, &s, err, sizeof err), API_STEP_BAD);
    assert_int_equal(api_parse_range(NULL, NULL, "fast", now, &f, &t, &s, err, sizeof err), API_STEP_BAD);

    assert_int_equal(api_points_for(0, 9000, 1000), 10);
    assert_int_equal(api_points_for(0, 0, 1000), 1);
    assert_int_equal(api_points_for(10, 0, 1000), 0);

    assert_int_equal(api_effective_step(1000, MEM_SRC_RAM), 1000);
    assert_int_equal(api_effective_step(1000, MEM_SRC_10S), 10000);
    assert_int_equal(api_effective_step(15000, MEM_SRC_10S), 20000);
    assert_int_equal(api_effective_step(60000, MEM_SRC_1M), 60000);
    assert_int_equal(api_effective_step(60000, MEM_SRC_1H), 3600000);

    struct api a = {.max_points = 1000, .ram_window_ms = 900000, .ret10s_ms = 2 * 86400000LL,
                    .ret1m_ms = 30 * 86400000LL};
    assert_int_equal(api_auto_step(&a, now - 900000, now, now), 1000);
    int64_t st = api_auto_step(&a, now - 3600000, now, now);
    assert_int_equal(st % 10000, 0);
    assert_true(api_points_for(now - 3600000, now, st) <= 1000);
    st = api_auto_step(&a, now - 7 * 86400000LL, now, now);
    assert_int_equal(st % 60000, 0);
    assert_true(api_points_for(now - 7 * 86400000LL, now, st) <= 1000);
    st = api_auto_step(&a, now - 365 * 86400000LL, now, now);
    assert_int_equal(st % 3600000, 0);
}

static void t_uri(void **state)
{
    (void)state;
    assert_int_equal(api_uri_check("/v1/metrics/cpu.x%7Ba%3D%22b%22%7D?from=now-1h"), 0);
    assert_int_equal(api_uri_check("/v1/status?x=%zz"), -EINVAL);
    assert_int_equal(api_uri_check("/v1/status?x=%4"), -EINVAL);
    assert_int_equal(api_uri_check("/v1/status?x=%00"), -EINVAL);
    assert_int_equal(api_uri_check("/v1/status?x=%0a"), -EINVAL);
    assert_int_equal(api_uri_check("/v1/st\x01tus"), -EINVAL);
    char *big = malloc(API_MAX_URI + 10);
    memset(big, 'a', API_MAX_URI + 9);
    big[0] = '/';
    big[API_MAX_URI + 9] = 0;
    assert_int_equal(api_uri_check(big), -E2BIG);
    big[API_MAX_URI] = 0;
    assert_int_equal(api_uri_check(big), 0);
    free(big);
}

static void t_token(void **state)
{
    (void)state;
    assert_true(api_token_ok(NULL, ""));
    assert_true(api_token_ok("whatever", ""));
    assert_true(api_token_ok("Bearer s3cret-token-0123456", "s3cret-token-0123456"));
    assert_true(api_token_ok("bearer  s3cret-token-0123456", "s3cret-token-0123456"));
    assert_false(api_token_ok(NULL, "s3cret-token-0123456"));
    assert_false(api_token_ok("Bearer s3cret-token-012345", "s3cret-token-0123456"));
    assert_false(api_token_ok("Bearer s3cret-token-01234567", "s3cret-token-0123456"));
    assert_false(api_token_ok("Bearer S3cret-token-0123456", "s3cret-token-0123456"));
    assert_false(api_token_ok("Basic s3cret-token-0123456", "s3cret-token-0123456"));
    assert_false(api_token_ok("Bearer ", "s3cret-token-0123456"));
}

static void t_error_body(void **state)
{
    (void)state;
    char *s = api_error_body("not_found", "no \"such\" thing\n\xff");
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "code")), "not_found");
    assert_string_equal(json_string_value(json_object_get(json_object_get(o, "error"), "message")),
                        "no \"such\" thing?" "?");
    json_decref(o);
    free(s);
}

static void t_event_json(void **state)
{
    (void)state;
    mem_event e = {.id = 42, .ts = 1700000000123, .payload = (char *)"{\"a\":[1,2]}"};
    strcpy(e.type, "anomaly\nx");
    strcpy(e.severity, "warning");
    strcpy(e.source, "detect");
    json_t *o = api_event_json(&e);
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
    assert_true(json_is_object(json_object_get(o, "payload")));
    json_decref(o);

    api_buf b = {0};
    api_sse_frame(&b, &e);
    assert_non_null(b.p);
    assert_memory_equal(b.p, "id: 42\nevent: anomaly_x\ndata: {", 31);
    assert_non_null(strstr(b.p, "\"payload\":{\"a\":[1,2]}"));
    assert_string_equal(b.p + b.len - 3, "}\n\n");
    assert_ptr_equal(strchr(strstr(b.p, "data: "), '\n'), b.p + b.len - 2); /* one line of data */
    api_buf_free(&b);

    e.payload = (char *)"not json";
    o = api_event_json(&e);
    assert_string_equal(json_string_value(json_object_get(o, "payload")), "not json");
    json_decref(o);
}

static void t_buf(void **state)
{
    (void)state;
    api_buf b = {0};
    for (int i = 0; i < 10000; i++)
        api_buf_printf(&b, "%d,", i);
    assert_false(b.oom);
    assert_int_equal(b.len, strlen(b.p));
    assert_memory_equal(b.p + b.len - 5, "9999,", 5);
    char big[9000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    api_buf_printf(&b, "%s", big);
    assert_int_equal(b.len, strlen(b.p));
    api_buf_free(&b);
}

/* ---- exposition ---------------------------------------------------------------- */
static void t_prom_render(void **state)
{
    (void)state;
    mem_series_info s[] = {
        {.id = 0, .name = "memory.used_bytes", .labels = "", .help = "Used memory", .unit = "bytes", .last = 1e6},
        {.id = 1, .name = "cpu.usage_percent", .labels = "cpu=\"total\"", .help = "CPU", .unit = "percent",
         .last = 12.5},
        {.id = 2, .name = "process.rss_bytes", .labels = "name=\"web\",pid=\"2\"",
         .help = "resident", .unit = "bytes", .last = 2048},
        {.id = 3, .name = "process.rss_bytes", .labels = "name=\"db\",pid=\"1\"", .help = "resident\nmemory \\ of it",
         .unit = "bytes", .last = 4096},
        {.id = 4, .name = "process.rss_bytes", .labels = "name=\"x\",pid=\"3\"", .unit = "bytes", .last = NAN},
        {.id = 5, .name = "process.cpu_percent", .labels = "name=\"web\",pid=\"2\"", .unit = "percent",
         .kind = MEM_RATE, .last = 3},
        {.id = 6, .name = "apps.read_bytes_per_second", .labels = "app=\"a\"", .unit = "bytes/s",
         .kind = MEM_RATE, .last = 3},
        {.id = 7, .name = "apps.fds", .labels = "app=\"a \\\"b\\\" \\\\c\"", .help = "", .last = 7},
        {.id = 8, .name = "self.rss_bytes", .labels = "", .help = "resident memory of ippocd", .unit = "bytes",
         .last = 9e6},
        {.id = 9, .name = "cgroup.pressure_some_avg10_percent", .labels = "cgroup=\"a\"", .unit = "percent",
         .last = 1},
        {.id = 10, .name = "process.count", .labels = "name=\"web\"", .help = "matching", .last = 1},
    };
    api_buf b = {0};
    mem_stats st = {.nseries = 11, .dropped_batches = 2, .samples = 40};
    assert_int_equal(api_prom_render(&b, s, sizeof s / sizeof s[0], &st, 0), 0);
    const char *want =
        "# HELP ippoc_app_open_fds (no help)\n"
        "# TYPE ippoc_app_open_fds gauge\n"
        "ippoc_app_open_fds{app=\"a \\\"b\\\" \\\\c\"} 7\n"
        "# HELP ippoc_process_matching matching\n"
        "# TYPE ippoc_process_matching gauge\n"
        "ippoc_process_matching{name=\"web\"} 1\n"
        "# HELP ippoc_process_resident_memory_bytes resident\\nmemory \\\\ of it\n"
        "# TYPE ippoc_process_resident_memory_bytes gauge\n"
        "ippoc_process_resident_memory_bytes{name=\"db\",pid=\"1\"} 4096\n"
        "ippoc_process_resident_memory_bytes{name=\"web\",pid=\"2\"} 2048\n"
        "# HELP ippoc_self_resident_memory_bytes resident memory of ippocd\n"
        "# TYPE ippoc_self_resident_memory_bytes gauge\n"
        "ippoc_self_resident_memory_bytes 9000000\n"
        "# HELP ippoc_build_info ippocd build information (always 1)\n"
        "# TYPE ippoc_build_info gauge\n"
        "ippoc_build_info{version=\"" IPPOC_VERSION "\"} 1\n"
        "# HELP ippoc_memory_series Series held by the memory store\n"
        "# TYPE ippoc_memory_series gauge\n"
        "ippoc_memory_series 11\n"
        "# HELP ippoc_memory_samples_total Samples put into memory\n"
        "# TYPE ippoc_memory_samples_total counter\n"
        "ippoc_memory_samples_total 40\n";
    assert_memory_equal(b.p, want, strlen(want));
    assert_non_null(strstr(b.p, "\nippoc_memory_dropped_batches_total 2\n"));
    /* host families, rates, percentages and NaN are left out */
    assert_null(strstr(b.p, "used_bytes"));
    assert_null(strstr(b.p, "percent"));
    assert_null(strstr(b.p, "per_second"));
    assert_null(strstr(b.p, "name=\"x\""));
    if (api_test_prom_parse(b.p) == 1)
        fail_msg("prometheus_client rejected:\n%s", b.p);
    api_buf_free(&b);
}

/* A series not set for a while (a watched process gone) is left out. */
static void t_prom_stale(void **state)
{
    (void)state;
    mem_series_info s[] = {
        {.id = 0, .name = "process.rss_bytes", .labels = "name=\"gone\",pid=\"7\"", .last = 1, .last_ts = 1000},
        {.id = 1, .name = "process.rss_bytes", .labels = "name=\"here\",pid=\"8\"", .last = 2, .last_ts = 20000},
    };
    api_buf b = {0};
    assert_int_equal(api_prom_render(&b, s, 2, NULL, 10000), 0);
    assert_non_null(b.p);
    assert_non_null(strstr(b.p, "ippoc_process_resident_memory_bytes{name=\"here\",pid=\"8\"} 2\n"));
    assert_null(strstr(b.p, "gone"));
    api_buf_free(&b);
    static core_config cfg; /* large: off the stack */
    core_config_defaults(&cfg);
    assert_int_equal(api_prom_stale_ms(&cfg), 10000); /* 1 s groups: the floor */
    cfg.groups[0].enabled = true;
    cfg.groups[0].interval_ms = 60000;
    if (cfg.ngroups < 1)
        cfg.ngroups = 1;
    assert_int_equal(api_prom_stale_ms(&cfg), 180000);
    cfg.groups[0].enabled = false;
    assert_int_equal(api_prom_stale_ms(&cfg), 10000);
    core_config_free(&cfg);
}

/* The table: names, types, and what is not exported. */
static void t_prom_export_name(void **state)
{
    (void)state;
    const char *type = NULL;
    assert_string_equal(api_prom_export_name("cgroup.pids_current", MEM_GAUGE, "", &type), "ippoc_cgroup_tasks");
    assert_string_equal(type, "gauge");
    assert_string_equal(api_prom_export_name("cgroup.memory_max_bytes", MEM_GAUGE, "bytes", &type),
                        "ippoc_cgroup_memory_max_bytes");
    assert_null(api_prom_export_name("cgroup.cpu_percent", MEM_RATE, "percent", &type));
    assert_null(api_prom_export_name("memory.total_bytes", MEM_GAUGE, "bytes", &type)); /* node_exporter's */
    assert_null(api_prom_export_name("process.rss_bytes", MEM_RATE, "bytes", &type));   /* a rate: never */
    assert_null(api_prom_export_name("self.rss_bytes", MEM_GAUGE, "percent", &type));   /* a percentage: never */
    assert_null(api_prom_export_name(NULL, MEM_GAUGE, "", &type));
}

static void t_prom_services(void **state)
{
    (void)state;
    api_buf b = {0};
    assert_int_equal(api_prom_render_services(&b, "{\"services\":[{\"name\":\"web\",\"state\":\"running\","
                                                   "\"restarts\":3},{\"name\":\"d\\\"b\",\"state\":\"failed\","
                                                   "\"restarts\":0}]}"), 0);
    const char *want =
        "# HELP ippoc_service_restarts_total Restarts of the service by ippocd since it started\n"
        "# TYPE ippoc_service_restarts_total counter\n"
        "ippoc_service_restarts_total{service=\"web\"} 3\n"
        "ippoc_service_restarts_total{service=\"d\\\"b\"} 0\n"
        "# HELP ippoc_service_up 1 when the service is running, else 0\n"
        "# TYPE ippoc_service_up gauge\n"
        "ippoc_service_up{service=\"web\"} 1\n"
        "ippoc_service_up{service=\"d\\\"b\"} 0\n";
    assert_non_null(b.p);
    assert_string_equal(b.p, want);
    if (api_test_prom_parse(b.p) == 1)
        fail_msg("prometheus_client rejected:\n%s", b.p);
    api_buf_free(&b);
    /* nothing for no services, NULL or garbage */
    assert_int_equal(api_prom_render_services(&b, "{\"services\":[]}"), 0);
    assert_int_equal(api_prom_render_services(&b, NULL), 0);
    assert_int_equal(api_prom_render_services(&b, "{nope"), 0);
    assert_true(b.len == 0);
    api_buf_free(&b);
}

static void t_prom_anomaly(void **state)
{
    (void)state;
    api_anomaly_score sc[] = {
        {"process.rss_bytes", "name=\"web\",metric=\"m\"", 0.93, true},
        {"cpu.usage_percent", "cpu=\"total\"", 0.2, false},
        {"memory.used_bytes", "", 0.81, true},
        {"load.load1", "", 0.5, false},
    };
    api_buf b = {0};
    assert_int_equal(api_prom_render_anomaly(&b, sc, 4), 0);
    assert_non_null(b.p);
    assert_non_null(strstr(b.p, "# TYPE ippoc_anomalous_series gauge\nippoc_anomalous_series 2\n"));
    const char *want = "# TYPE ippoc_anomaly_score gauge\n"
                       "ippoc_anomaly_score{metric=\"memory.used_bytes\"} 0.81\n"
                       "ippoc_anomaly_score{metric=\"process.rss_bytes\",name=\"web\",exported_metric=\"m\"} 0.93\n";
    assert_non_null(strstr(b.p, want));
    assert_null(strstr(b.p, "cpu.usage_percent"));
    assert_null(strstr(b.p, "load.load1"));
    if (api_test_prom_parse(b.p) == 1)
        fail_msg("prometheus_client rejected:\n%s", b.p);
    api_buf_free(&b);
    /* none anomalous: the count, no score family */
    assert_int_equal(api_prom_render_anomaly(&b, sc + 1, 1), 0);
    assert_string_equal(strstr(b.p, "ippoc_anomalous_series 0\n") ? "ok" : b.p, "ok");
    assert_null(strstr(b.p, "ippoc_anomaly_score"));
    api_buf_free(&b);
}

static void t_prom_speed(void **state)
{
    (void)state;
    enum { N = 1500 };
    mem_series_info *s = calloc(N, sizeof *s);
    char (*names)[64] = calloc(N, 64), (*labels)[96] = calloc(N, 96);
    static const char *const fams[] = {"process.rss_bytes", "process.threads", "apps.threads",
                                       "apps.memory_rss_bytes", "cgroup.memory_current_bytes", "cpu.skipped"};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], 64, "%s", fams[i % 6]); /* 1250 exported, 250 looked up and left out */
        snprintf(labels[i], 96, "cpu=\"cpu%d\",state=\"s%d\",dev=\"d%d\"", i, i % 9, i % 3);
        s[i] = (mem_series_info){.id = i, .name = names[i], .labels = labels[i], .help = "h",
                                 .last = i * 1.25};
    }
    mem_stats st = {.nseries = N};
    int64_t t0 = core_mono_ns();
    enum { ROUNDS = 20 };
    api_buf b = {0};
    for (int r = 0; r < ROUNDS; r++) {
        api_buf_free(&b);
        assert_int_equal(api_prom_render(&b, s, N, &st, 0), 0);
    }
    int64_t dt = (core_mono_ns() - t0) / ROUNDS;
    size_t len = b.len;
    int lines = 0;
    for (const char *p = b.p; (p = strchr(p, '\n')); p++)
        lines++;
    assert_int_equal(lines, N - N / 6 + 5 * 2 + 3 * 7); /* samples, 5 families' heads, 7 self metrics */
    if (api_test_prom_parse(b.p) == 1)
        fail_msg("prometheus_client rejected the 1500-series exposition");
    api_buf_free(&b);
    print_message("/metrics render: %d series, %zu bytes, %.3f ms\n", N, len, dt / 1e6);
    assert_true(dt < 200 * 1000000LL); /* generous: sanitizers are slow */
    free(s);
    free(names);
    free(labels);
}

/* ---- request heads (the gate's check) ------------------------------------------ */
static void expect_head(const char *req, int want, unsigned status, const char *code)
{
    api_head h;
    int rc = api_head_check(req, strlen(req), &h);
    if (rc != want)
        fail_msg("'%.60s': got %d (%u %s), want %d", req, rc, h.status, h.msg, want);
    if (want == API_HEAD_BAD && (h.status != status || strcmp(h.code, code)))
        fail_msg("'%.60s': got %u %s, want %u %s", req, h.status, h.code, status, code);
}

static void t_head(void **state)
{
    (void)state;
    const char *ok = "GET /v1/status HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
    expect_head(ok, API_HEAD_OK, 0, NULL);
    api_head h;
    assert_int_equal(api_head_check(ok, strlen(ok), &h), API_HEAD_OK);
    assert_int_equal(h.need, strlen(ok));
    /* every prefix of a good request is incomplete, never bad */
    for (size_t n = 0; n < strlen(ok); n++)
        assert_int_equal(api_head_check(ok, n, &h), API_HEAD_MORE);
    expect_head("\r\nGET / HTTP/1.0\n\n", API_HEAD_OK, 0, NULL); /* bare LF, a leading empty line */
    expect_head("POST /v1/pending/1/approve HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab",
                API_HEAD_MORE, 0, NULL);
    expect_head("POST /v1/pending/1/approve HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
                API_HEAD_OK, 0, NULL);
    expect_head("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
                API_HEAD_OK, 0, NULL);
    expect_head("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nab\r\n",
                API_HEAD_MORE, 0, NULL);
    /* POST /v1/learn carries a document: handed on once its head is in (learn) */
    const char *doc = "POST /v1/learn HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n{\"so";
    assert_int_equal(api_head_check(doc, strlen(doc), &h), API_HEAD_OK);
    assert_int_equal(h.need, strlen(doc) - 4);
    expect_head("POST /v1/learn HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n", API_HEAD_BAD, 413,
                "too_large");
    expect_head("POST /v1/diagnose HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", API_HEAD_BAD, 413,
                "too_large");
    expect_head("GET /v1/learn HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", API_HEAD_BAD, 413,
                "too_large");
    /* and each mistake with its status and code */
    expect_head("GET\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("G(T / HTTP/1.1\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("\xff\xfe", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/2.0\r\n\r\n", API_HEAD_BAD, 505, "bad_request");
    expect_head("GET / HTTP/1.1 x\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\n\r\n", API_HEAD_BAD, 400, "bad_request"); /* no Host */
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nNo colon\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost : a\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4097\r\n\r\n", API_HEAD_BAD, 413, "too_large");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", API_HEAD_BAD, 400, "bad_request");
    expect_head("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
                API_HEAD_BAD, 400, "bad_request");
    expect_head("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", API_HEAD_BAD, 400,
                "bad_request");
    expect_head("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", API_HEAD_BAD,
                400, "bad_request");
    expect_head("POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n", API_HEAD_BAD, 413,
                "too_large");
    /* sizes: the request target, the header lines, their number */
    static char big[API_HEAD_MAX + API_MAX_URI + 256];
    memset(big, 0, sizeof big);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', API_MAX_URI + 100);
    expect_head(big, API_HEAD_BAD, 414, "too_large"); /* not even ended */
    memset(big, 0, sizeof big);
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'b', API_HEAD_MAX);
    expect_head(big, API_HEAD_BAD, 431, "too_large");
    memset(big, 0, sizeof big);
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 70; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "X-%d: y\r\n", i);
    snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    expect_head(big, API_HEAD_BAD, 431, "too_large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_prom_name),  cmocka_unit_test(t_prom_value), cmocka_unit_test(t_labels),
        cmocka_unit_test(t_split_key),  cmocka_unit_test(t_params),     cmocka_unit_test(t_range),
        cmocka_unit_test(t_uri),        cmocka_unit_test(t_token),      cmocka_unit_test(t_error_body),
        cmocka_unit_test(t_event_json), cmocka_unit_test(t_buf),        cmocka_unit_test(t_prom_render),
        cmocka_unit_test(t_prom_export_name), cmocka_unit_test(t_prom_stale),
        cmocka_unit_test(t_prom_services), cmocka_unit_test(t_prom_anomaly),
        cmocka_unit_test(t_prom_speed),
        cmocka_unit_test(t_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
