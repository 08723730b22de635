/* test_follow_stats.c: the watch's per-template statistics and events
 * (src/logs/logwatch.c) with a real memory store: a new template after the
 * grace (and none within it), a burst over the baseline and an error-level
 * burst, the per-source rate limit on events, the series, the JSON, and the
 * configuration checks with file:line errors. Lines come through
 * logs_watch_feed and through a real followed file; ticks carry their own
 * clock so rates are exact. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "logs/logs.h"
#include "logs/watch_int.h"
#include "memory/memory.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static uv_loop_t loop;
static char dir[256];
static core_config cfg;
static mem_t *mem;
static logs_watch *w;
static int64_t now;

static void open_watch(const char *extra)
{
    char conf[4096], err[512];
    snprintf(conf, sizeof conf, "[daemon]\nstate_dir = %s/state\n[logs]\njournal = no\n%s", dir, extra);
    core_config_defaults(&cfg);
    assert_int_equal(core_config_load_string(&cfg, conf, "test.conf", err, sizeof err), 0);
    assert_int_equal(mem_open(&mem, &cfg, err, sizeof err), 0);
    int rc = logs_watch_new(&loop, &cfg, mem, &w, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    now = core_now_ms() / 1000 * 1000 + 1000;
}

static void close_watch(void)
{
    logs_watch_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    mem_close(mem);
    core_config_free(&cfg);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ippoc-lstats.XXXXXX");
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    uv_loop_close(&loop);
    return 0;
}

static void feed(const char *src, const char *line, int times)
{
    for (int i = 0; i < times; i++)
        assert_int_equal(logs_watch_feed(w, src, line, strlen(line), -1), 0);
}

static void tick(void)
{
    now += 1000;
    logs_watch_tick(w, now);
}

/* Events of type (NULL: log.*) recorded so far. */
static size_t events(const char *type, mem_event **ev)
{
    char err[256];
    size_t n;
    assert_int_equal(mem_flush(mem, 5000), 0);
    mem_event_query q = {.type = type ? type : "log.*", .limit = 1000, .ascending = true};
    assert_int_equal(mem_events_query(mem, &q, ev, &n, err, sizeof err), 0);
    return n;
}

static size_t count_events(const char *type)
{
    mem_event *ev;
    size_t n = events(type, &ev);
    mem_events_free(ev, n);
    return n;
}

static void test_new_template_after_grace(void **state)
{
    open_watch("new_template_grace = 0s\n");
    feed("app", "user 17 logged in", 1);
    tick();
    mem_event *ev;
    size_t n = events("log.template.new", &ev);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].source, "app");
    assert_string_equal(ev[0].severity, "info");
    json_t *p = json_loads(ev[0].payload, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(p, "source")), "app");
    assert_string_equal(json_string_value(json_object_get(p, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(p, "sample")), "user 17 logged in");
    assert_non_null(json_string_value(json_object_get(p, "template_id")));
    assert_non_null(strstr(json_string_value(json_object_get(p, "template")), "logged in"));
    json_decref(p);
    mem_events_free(ev, n);
    feed("app", "user 18 logged in", 3); /* the same template: nothing new */
    feed("app", "ERROR: disk quota exceeded", 1);
    tick();
    n = events("log.template.new", &ev);
    assert_int_equal(n, 2);
    assert_string_equal(ev[1].severity, "warning"); /* error level */
    assert_non_null(strstr(ev[1].payload, "\"level\":\"error\""));
    mem_events_free(ev, n);
    /* the JSON */
    char *j = logs_watch_json(w, "app");
    assert_non_null(j);
    json_t *o = json_loads(j, 0, NULL);
    json_t *tpls = json_object_get(json_array_get(json_object_get(o, "sources"), 0), "templates");
    assert_int_equal(json_array_size(tpls), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(tpls, 0), "count")), 4);
    assert_true(json_integer_value(json_object_get(json_array_get(tpls, 0), "first_seen")) > 0);
    json_decref(o);
    free(j);
    assert_null(logs_watch_json(w, "nope"));
    close_watch();
}

static void test_grace_learns_silently(void **state)
{
    open_watch("new_template_grace = 1h\n");
    feed("app", "ERROR: cannot connect", 1);
    feed("app", "started in 12 ms", 1);
    tick();
    tick();
    assert_int_equal(count_events("log.template.new"), 0);
    close_watch();
}

static void test_burst(void **state)
{
    open_watch("new_template_grace = 0s\nburst = 10\n");
    for (int i = 0; i < 30; i++) { /* one a second: its normal */
        feed("app", "request 5 served", 1);
        tick();
    }
    assert_int_equal(count_events("log.burst"), 0);
    feed("app", "request 5 served", 300);
    tick();
    mem_event *ev;
    size_t n = events("log.burst", &ev);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].severity, "info");
    json_t *p = json_loads(ev[0].payload, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(p, "level")), "info");
    assert_true(json_real_value(json_object_get(p, "rate")) > 10 * json_real_value(json_object_get(p, "baseline")));
    assert_int_equal(json_integer_value(json_object_get(p, "count")), 330);
    json_decref(p);
    mem_events_free(ev, n);
    for (int i = 0; i < 5; i++) { /* while it lasts: one event, not one a second */
        feed("app", "request 5 served", 300);
        tick();
    }
    assert_int_equal(count_events("log.burst"), 1);
    close_watch();
}

static void test_error_burst_and_rate_limit(void **state)
{
    open_watch("new_template_grace = 0s\n");
    /* a storm of 40 distinct error templates (distinct token counts: any
     * miner keeps them apart), then of one of them */
    char line[1024] = "ERROR request failed";
    for (int i = 0; i < 40; i++) {
        feed("app", line, 1);
        strcat(line, " again");
    }
    tick();
    size_t news = count_events("log.template.new");
    assert_true(news >= 1 && news <= 5); /* a handful, not 40 */
    for (int i = 0; i < 3; i++) {
        feed("app", "ERROR request failed", 200);
        tick();
    }
    assert_true(count_events(NULL) <= 6);
    /* a minute later the bucket has tokens again: the next storm gets through */
    now += 60000;
    feed("app", "FATAL out of memory in the allocator", 500);
    tick();
    mem_event *ev;
    size_t n = events("log.burst", &ev);
    assert_true(n >= 1);
    assert_string_equal(ev[n - 1].severity, "warning");
    assert_non_null(strstr(ev[n - 1].payload, "\"level\":\"error\""));
    assert_non_null(strstr(ev[n - 1].payload, "FATAL out of memory"));
    mem_events_free(ev, n);
    n = events(NULL, &ev);
    bool said = false; /* an event says how many were left out */
    for (size_t i = 0; i < n; i++)
        said |= strstr(ev[i].payload, "\"suppressed\":") != NULL;
    assert_true(said);
    mem_events_free(ev, n);
    close_watch();
}

static void test_series_and_file(void **state)
{
    char extra[1024], path[300];
    snprintf(path, sizeof path, "%s/app.log", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(extra, sizeof extra, "new_template_grace = 0s\nfile = app %s\n", path);
    open_watch(extra);
    f = fopen(path, "a");
    fprintf(f, "served 120 bytes\nserved 99 bytes\nERROR db down\n");
    fclose(f);
    char *j = NULL;
    int64_t end = core_mono_ms() + 5000;
    while ((!j || !strstr(j, "\"lines\":3")) && core_mono_ms() < end) {
        free(j);
        uv_run(&loop, UV_RUN_NOWAIT);
        j = logs_watch_json(w, "app");
        usleep(10000); /* the loop has nothing else to wait on */
    }
    assert_non_null(strstr(j, "\"lines\":3"));
    assert_non_null(strstr(j, "\"errors\":1"));
    free(j);
    tick();
    mem_tick(mem, now);
    int id = mem_series_find(mem, "log.lines", "source=\"app\"");
    assert_true(id >= 0);
    double v;
    int64_t ts;
    assert_int_equal(mem_series_last(mem, id, &v, &ts), 0);
    assert_true(fabs(v - 3.0) < 1e-9);
    id = mem_series_find(mem, "log.templates", "source=\"app\"");
    assert_int_equal(mem_series_last(mem, id, &v, &ts), 0);
    assert_true(fabs(v - 2.0) < 1e-9); /* served <*> bytes, and the error */
    assert_true(mem_series_find(mem, "log.errors", "source=\"app\"") >= 0);
    assert_true(mem_series_find(mem, "log.new_templates", "source=\"app\"") >= 0);
    close_watch();
}

static void check_bad(const char *text, const char *want)
{
    core_config c;
    char err[512];
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, text, "bad.conf", err, sizeof err), 0);
    int rc = logs_config_check(&c, err, sizeof err);
    if (!rc || !strstr(err, want))
        fprintf(stderr, "for %s: rc %d, '%s' (want '%s')\n", text, rc, err, want);
    assert_true(rc < 0);
    assert_non_null(strstr(err, want));
    core_config_free(&c);
}

static void test_config_check(void **state)
{
    check_bad("[logs]\nburst = 0.5\n", "bad.conf:2: burst");
    check_bad("[logs]\njournal = maybe\n", "bad.conf:2: journal");
    check_bad("[logs]\nfile = onlyname\n", "bad.conf:2: file");
    check_bad("[logs]\n\nfile = web relative/path.log\n", "bad.conf:3: file: 'relative/path.log' is not an absolute");
    check_bad("[logs]\nfile = we/b /var/log/x.log\n", "bad source name");
    check_bad("[logs]\nnew_template_grace = soon\n", "new_template_grace");
    check_bad("[logs]\nfoo = 1\n", "unknown key 'foo' in [logs]");
    check_bad("[service.web]\ncommand = /bin/true\nlog_file = x.log\n", "bad.conf:3: log_file");
    core_config c;
    char err[512];
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, "[logs]\nenabled = yes\njournal = auto\nfile = web /var/log/*.log\n"
                                             "burst = 5\nnew_template_grace = 30s\n[service.web]\nlog_file = /a.log\n"
                                             "log_file = /b.log\n", "good.conf", err, sizeof err), 0);
    assert_int_equal(logs_config_check(&c, err, sizeof err), 0);
    core_config_free(&c);
}

/* A file that is missing or unreadable does not stop the watch. */
static void test_missing_file_is_fine(void **state)
{
    open_watch("file = ghost /nonexistent/dir/ghost.log\nfile = locked /proc/1/mem\n");
    tick();
    char *j = logs_watch_json(w, "ghost");
    assert_non_null(j);
    free(j);
    /* reload: the source goes, another comes */
    char err[512];
    core_config c2;
    char conf[512];
    snprintf(conf, sizeof conf, "[daemon]\nstate_dir = %s/state\n[logs]\njournal = no\nfile = other /nonexistent/o.log\n",
             dir);
    core_config_defaults(&c2);
    assert_int_equal(core_config_load_string(&c2, conf, "test2.conf", err, sizeof err), 0);
    assert_int_equal(logs_watch_reconfigure(w, &c2, err, sizeof err), 0);
    assert_null(logs_watch_json(w, "ghost"));
    j = logs_watch_json(w, "other");
    assert_non_null(j);
    free(j);
    core_config_free(&c2);
    close_watch();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_template_after_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_learns_silently, setup, teardown),
        cmocka_unit_test_setup_teardown(test_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_burst_and_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_series_and_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_is_fine, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
