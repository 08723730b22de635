/* test_ask_answer.c: brain_ask_json on a real memory store (a temporary
 * state dir) seeded with events, a dpkg log and remembered cases, without
 * heal and without a model: each kind's structured answer says what the
 * records say and cites exactly records that were given; a question about
 * nothing is a polite 200 with no records; a bad question is 400. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/ask_int.h"
#include "brain_test_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[64], dpkg[128];
    core_config cfg;
    mem_t *m;
    uv_loop_t loop;
    brain *b;
    int64_t now;
} fx;

static int64_t ev(fx *f, int64_t ts, const char *type, const char *sev, const char *src, const char *payload)
{
    int64_t id = mem_event_add(f->m, ts, type, sev, src, payload);
    assert_true(id > 0);
    return id;
}

static void dpkg_line(FILE *o, int64_t ms, const char *rest)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    localtime_r(&s, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(o, "%s %s\n", when, rest);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    btu_tmpdir(f->dir, sizeof f->dir, "ask");
    snprintf(f->dpkg, sizeof f->dpkg, "%s/dpkg.log", f->dir);
    f->now = core_now_ms();
    FILE *o = fopen(f->dpkg, "w");
    assert_non_null(o);
    dpkg_line(o, f->now - 3600000, "upgrade openssl:amd64 3.0.1 3.0.2");
    dpkg_line(o, f->now - 3600000, "status installed openssl:amd64 3.0.2");
    dpkg_line(o, f->now - 5 * 86400000LL, "install oldthing:amd64 <none> 1.0");
    fclose(o);
    char conf[512], err[1024] = "";
    snprintf(conf, sizeof conf, "[brain]\nwindow = 0s\nkmsg = /nonexistent\ndpkg_log = %s\n", f->dpkg);
    btu_config(&f->cfg, conf, f->dir);
    f->m = btu_mem_open(&f->cfg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (brain_new(&f->loop, &f->cfg, f->m, NULL, NULL, &f->b, err, sizeof err))
        fail_msg("brain_new: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    brain_free(f->b);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    btu_close(f->m, &f->cfg, f->dir);
    free(f);
    return 0;
}

static json_t *ask(fx *f, const char *q)
{
    assert_int_equal(mem_flush(f->m, 5000), 0);
    int status = 0;
    char err[512] = "";
    char *t = brain_ask_json(f->b, q, f->now, &status, err, sizeof err);
    if (!t)
        fail_msg("ask '%s': %d %s", q, status, err);
    assert_int_equal(status, 200);
    json_t *o = json_loads(t, 0, NULL);
    free(t);
    assert_non_null(o);
    /* without a model, and saying so */
    assert_true(json_is_false(json_object_get(json_object_get(o, "model"), "used")));
    assert_non_null(strstr(json_string_value(json_object_get(json_object_get(o, "model"), "why")), "no model"));
    /* every ref cited in the answer is a record given */
    const char *ans = json_string_value(json_object_get(o, "answer"));
    for (const char *p = ans; (p = strchr(p, '[')); p++) {
        const char *e = strchr(p, ']');
        assert_non_null(e);
        char inner[1024];
        snprintf(inner, sizeof inner, "%.*s", (int)(e - p - 1), p + 1);
        for (char *r = inner, *next; r; r = next) { /* refs are joined by ", " */
            next = strstr(r, ", ");
            if (next)
                *next = 0, next += 2;
            bool found = false;
            size_t i;
            json_t *x;
            json_array_foreach(json_object_get(o, "records"), i, x)
                found |= !strcmp(json_string_value(json_object_get(x, "ref")), r);
            if (!found)
                fail_msg("'%s' cites %s, not a record: %s", q, r, ans);
        }
    }
    return o;
}

static bool cites(const json_t *o, const char *ref)
{
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "records"), i, x)
        if (!strcmp(json_string_value(json_object_get(x, "ref")), ref))
            return true;
    return false;
}

/* Whether o cites the record KIND:ID (event:12, case:3). */
static bool cites_id(const json_t *o, const char *kind, int64_t id)
{
    char r[64];
    snprintf(r, sizeof r, "%s:%lld", kind, (long long)id);
    return cites(o, r);
}

static const char *answer(const json_t *o)
{
    return json_string_value(json_object_get(o, "answer"));
}

static void test_why_exit_status(void **state)
{
    fx *f = *state;
    int64_t t = f->now - 2 * 3600000;
    int64_t fc = ev(f, t - 300000, "file.changed", "warning", "db",
                    "{\"service\":\"db\",\"path\":\"/etc/db.conf\",\"known_good\":false}");
    int64_t lg = ev(f, t - 60000, "log.burst", "warning", "db", "{\"level\":\"error\",\"template\":\"cannot open <*>\"}");
    int64_t ex = ev(f, t, "service.exit", "warning", "db",
                    "{\"service\":\"db\",\"pid\":42,\"status\":3,\"signal\":0,\"reason\":\"exit status 3\"}");
    int64_t other = ev(f, t - 600000, "service.exit", "warning", "other", "{\"service\":\"other\",\"status\":1,\"signal\":0}");
    char r[64];
    json_t *o = ask(f, "why did db fail 2 hours ago?");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "why");
    assert_string_equal(json_string_value(json_object_get(o, "component")), "db");
    assert_non_null(strstr(answer(o), "exited with status 3"));
    assert_true(cites_id(o, "event", ex));
    snprintf(r, sizeof r, "event:%lld", (long long)ex);
    assert_non_null(strstr(answer(o), r));
    assert_true(cites_id(o, "event", fc));
    assert_non_null(strstr(answer(o), "/etc/db.conf"));
    assert_true(cites_id(o, "event", lg));
    assert_false(cites_id(o, "event", other)); /* the other service's exit is not about db */
    json_decref(o);
    /* a time without exits: says so, and points at the last one */
    o = ask(f, "why did db restart 3 days ago?");
    assert_non_null(strstr(answer(o), "no record"));
    assert_non_null(strstr(answer(o), "The last recorded exit of db"));
    json_decref(o);
}

/* The process group's series of the service, at their peak before the exit. */
static void test_why_metrics(void **state)
{
    fx *f = *state;
    int rss = mem_series(f->m, "process.rss_bytes", "name=\"db\",pid=\"42\"", "bytes", "", MEM_GAUGE);
    int cpu = mem_series(f->m, "process.cpu_percent", "name=\"db\",pid=\"42\"", "percent", "", MEM_RATE);
    int other = mem_series(f->m, "process.rss_bytes", "name=\"web\",pid=\"7\"", "bytes", "", MEM_GAUGE);
    assert_true(rss >= 0 && cpu >= 0 && other >= 0);
    int64_t t0 = (f->now / 1000 - 200) * 1000;
    for (int i = 0; i < 180; i++) {
        mem_put(f->m, rss, i == 150 ? 900.0 * 1048576 : 100.0 * 1048576);
        mem_put(f->m, cpu, i == 100 ? 97 : 5);
        mem_put(f->m, other, 5e9);
        assert_int_equal(mem_tick(f->m, t0 + i * 1000), 0);
    }
    int64_t ex = ev(f, t0 + 181000, "service.exit", "warning", "db", "{\"service\":\"db\",\"status\":0,\"signal\":9}");
    json_t *o = ask(f, "why did db crash?");
    assert_true(cites_id(o, "event", ex));
    assert_non_null(strstr(answer(o), "SIGKILL"));
    assert_non_null(strstr(answer(o), "memory (RSS) peaked at 900.0 MiB"));
    assert_non_null(strstr(answer(o), "CPU at 97%"));
    assert_null(strstr(answer(o), "4.7 GiB")); /* web's series is not db's */
    int metrics = 0;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "records"), i, x)
        metrics += !strncmp(json_string_value(json_object_get(x, "ref")), "metric:process.", 15);
    assert_int_equal(metrics, 2);
    json_decref(o);
}

static void test_changes_since(void **state)
{
    fx *f = *state;
    int64_t fc = ev(f, f->now - 1800000, "file.changed", "warning", "web", "{\"service\":\"web\",\"path\":\"/etc/web.conf\"}");
    int64_t rl = ev(f, f->now - 1200000, "config.reload", "info", "ippocd", "{\"config\":\"/etc/ippoc.conf\"}");
    ev(f, f->now - 10 * 3600000LL, "file.changed", "warning", "web", "{\"service\":\"web\",\"path\":\"/etc/old.conf\"}");
    json_t *o = ask(f, "what changed since 3 hours ago?");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "changes");
    assert_true(cites_id(o, "event", fc));
    assert_true(cites_id(o, "event", rl));
    assert_non_null(strstr(answer(o), "openssl"));
    assert_non_null(strstr(answer(o), "3.0.2"));
    assert_null(strstr(answer(o), "old.conf"));  /* before the span */
    assert_null(strstr(answer(o), "oldthing"));
    bool pkg = false;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "records"), i, x)
        pkg |= !strncmp(json_string_value(json_object_get(x, "ref")), "package:openssl@", 16);
    assert_true(pkg);
    json_decref(o);
}

static void test_history_recalls_cases(void **state)
{
    fx *f = *state;
    brain_cases *cs = brain_mind_of(f->b)->cases;
    json_t *a = json_pack("[s,s,s]", "trigger:crash", "exit:signal:9", "log:oom"),
           *b2 = json_pack("[s,s]", "trigger:crash", "exit:signal:9"), *c = json_pack("[s]", "trigger:probe");
    int64_t older = brain_cases_add(cs, 0, "db", "service", "oom_kill", a);
    int64_t unrelated = brain_cases_add(cs, 0, "web", "service", "config_error", c);
    int64_t similar = brain_cases_add(cs, 0, "cache", "service", "crash", b2);
    int64_t newest = brain_cases_add(cs, 0, "db", "service", "oom_kill", a);
    assert_true(older > 0 && unrelated > 0 && similar > 0 && newest > 0);
    json_t *o = ask(f, "has db crashed before?");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "history");
    assert_true(cites_id(o, "case", newest));
    assert_true(cites_id(o, "case", older));
    assert_true(cites_id(o, "case", similar));
    assert_false(cites_id(o, "case", unrelated)); /* nothing in common */
    assert_non_null(strstr(answer(o), "100% similar"));
    json_decref(a), json_decref(b2), json_decref(c);
    json_decref(o);
}

static void test_status_and_nothing(void **state)
{
    fx *f = *state;
    int64_t w = ev(f, f->now - 60000, "incident.open", "warning", "web", "{\"id\":7,\"what\":\"probe failed\"}");
    ev(f, f->now - 30000, "daemon.start", "info", "ippocd", "{}");
    json_t *o = ask(f, "what is wrong now?");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "status");
    assert_true(cites_id(o, "event", w));
    assert_int_equal(json_array_size(json_object_get(o, "records")), 1); /* info events are not trouble */
    json_decref(o);
    o = ask(f, "colorless green ideas sleep furiously");
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "generic");
    assert_int_equal(json_array_size(json_object_get(o, "records")), 0);
    assert_non_null(strstr(answer(o), "found nothing"));
    json_decref(o);
    int status = 0;
    char err[256] = "";
    assert_null(brain_ask_json(f->b, "   ", f->now, &status, err, sizeof err));
    assert_int_equal(status, 400);
    assert_non_null(strstr(err, "empty"));
    assert_null(brain_ask_json(NULL, "why", f->now, &status, err, sizeof err));
    assert_int_equal(status, 503);
}

/* The filled directory's largest child comes first, with its size. */
static void test_disk_path(void **state)
{
    fx *f = *state;
    char d[160], p[200];
    snprintf(d, sizeof d, "%s/fill", f->dir);
    assert_int_equal(mkdir(d, 0700), 0);
    const int sizes[] = {3 << 20, 1 << 20};
    const char *names[] = {"big", "small"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        FILE *o = fopen(p, "w");
        assert_non_null(o);
        char *buf = malloc((size_t)sizes[i]);
        for (int k = 0; k < sizes[i]; k++)
            buf[k] = (char)((unsigned)k * 7919u + (unsigned)i);
        assert_int_equal(fwrite(buf, 1, (size_t)sizes[i], o), (size_t)sizes[i]);
        free(buf);
        fclose(o);
    }
    char q[256];
    snprintf(q, sizeof q, "what is using the disk in %s", d);
    json_t *o = ask(f, q);
    assert_string_equal(json_string_value(json_object_get(o, "kind")), "disk");
    snprintf(p, sizeof p, "path:%s/big", d);
    json_t *first = NULL;
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(o, "records"), i, x)
        if (!first && !strcmp(json_string_value(json_object_get(x, "type")), "path"))
            first = x;
    assert_non_null(first);
    assert_string_equal(json_string_value(json_object_get(first, "ref")), p);
    assert_non_null(strstr(json_string_value(json_object_get(first, "summary")), "3.0 MiB"));
    json_decref(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_why_exit_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_why_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changes_since, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history_recalls_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_and_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_path, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
