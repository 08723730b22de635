/* test_signature_heal.c: the signature of a real crash: a real heal engine
 * supervises a service that prints a config error and exits 3 (and a
 * dependency that runs), heal opens the incident; the signature is built
 * from heal's own incident and services JSON, its audit log and memory's
 * events, as the brain's worker does. Checks that the shapes heal writes are
 * the shapes the signature reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/signature.h"
#include "brain_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fx {
    char dir[64];
    core_config cfg;
    mem_t *m;
    uv_loop_t loop;
    uv_timer_t tick;
    heal_engine *e;
    bool stopped;
} fx;

static void on_tick(uv_timer_t *t)
{
    fx *f = t->data;
    int64_t now = core_now_ms();
    mem_tick(f->m, now / 1000 * 1000);
    heal_engine_tick(f->e, now);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    btu_tmpdir(f->dir, sizeof f->dir, "sigheal");
    char text[2048], err[1024] = "", script[128];
    snprintf(script, sizeof script, "%s/web.sh", f->dir);
    FILE *fp = fopen(script, "w");
    assert_non_null(fp);
    fprintf(fp, "echo \"error: %s/web.conf line 3: syntax error\" >&2\nexit 3\n", f->dir);
    fclose(fp);
    snprintf(text, sizeof text,
             "[heal]\nverify = 2s\n"
             "[service.db]\ncommand = /bin/sleep 60\n"
             "[service.web]\ncommand = /bin/sh %s\ndepends = db\nbackoff = 5s\n",
             script);
    btu_config(&f->cfg, text, f->dir);
    f->m = btu_mem_open(&f->cfg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    if (heal_engine_new(&f->loop, &f->cfg, f->m, &f->e, err, sizeof err))
        fail_msg("heal_engine_new: %s", err);
    uv_timer_init(&f->loop, &f->tick);
    f->tick.data = f;
    uv_timer_start(&f->tick, on_tick, 0, 100);
    *state = f;
    return 0;
}

static void on_stopped(void *ud)
{
    ((fx *)ud)->stopped = true;
}

static int teardown(void **state)
{
    fx *f = *state;
    uv_timer_stop(&f->tick);
    uv_close((uv_handle_t *)&f->tick, NULL);
    heal_engine_stop(f->e, on_stopped, f);
    int64_t end = core_mono_ms() + 15000;
    while (!f->stopped && core_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    heal_engine_free(f->e);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    btu_close(f->m, &f->cfg, f->dir);
    free(f);
    return 0;
}

/* Runs the loop until web's crash incident is published (or 10 s). */
static json_t *wait_incident(fx *f)
{
    int64_t end = core_mono_ms() + 10000;
    while (core_mono_ms() < end) {
        uv_run(&f->loop, UV_RUN_ONCE);
        char *text = heal_engine_incidents_json(f->e);
        json_t *all = text ? json_loads(text, 0, NULL) : NULL;
        free(text);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(all, "incidents"), i, v)
        {
            const char *svc = json_string_value(json_object_get(v, "service"));
            json_t *ev = json_object_get(v, "evidence");
            if (svc && !strcmp(svc, "web") && json_object_get(ev, "exit") && json_object_get(ev, "log")) {
                json_incref(v);
                json_decref(all);
                return v;
            }
        }
        json_decref(all);
    }
    fail_msg("no crash incident of web within 10 s");
    return NULL;
}

static bool has_feature(const json_t *s, const char *tok)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "features"), i, v) if (!strcmp(json_string_value(v), tok)) return true;
    return false;
}

static void test_real_crash(void **state)
{
    fx *f = *state;
    json_t *inc = wait_incident(f);
    /* heal's own reader of the incident, as the brain calls it */
    char *one = heal_engine_incident_json(f->e, (uint64_t)json_integer_value(json_object_get(inc, "id")));
    assert_non_null(one);
    json_t *inc1 = json_loads(one, 0, NULL);
    free(one);
    assert_non_null(inc1);
    assert_int_equal(mem_flush(f->m, 10000), 0);
    char conf[128];
    snprintf(conf, sizeof conf, "%s/web.conf", f->dir);
    const char *paths[] = {conf};
    const char *deps[] = {"db"};
    char kmsg[128];
    snprintf(kmsg, sizeof kmsg, "%s/no-kmsg", f->dir);
    brain_sig_ctx ctx = {.mem = f->m, .heal = f->e, .kmsg_path = kmsg, .dpkg_log_path = kmsg,
                         .config_paths = paths, .nconfig_paths = 1, .depends = deps, .ndepends = 1};
    int64_t now = core_now_ms();
    json_t *s = brain_signature_build(&ctx, "web", "crash", inc1, now - 10000, now);
    assert_non_null(s);
    char *d = json_dumps(s, JSON_COMPACT);
    print_message("%.2000s\n", d);
    free(d);
    print_message("signature of a real crash took %lld ms\n", (long long)json_integer_value(json_object_get(s, "took_ms")));
    assert_int_equal(json_integer_value(json_object_get(s, "incident")), json_integer_value(json_object_get(inc, "id")));
    const json_t *ex = json_object_get(s, "exits");
    assert_true(json_array_size(ex) >= 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ex, 0), "code")), 3);
    assert_true(has_feature(s, "exit:code:3"));
    /* its uptime from the supervisor's "started pid N" line: it exits at once */
    json_t *up = json_object_get(json_array_get(ex, 0), "uptime_ms");
    assert_true(json_is_integer(up));
    assert_true(json_integer_value(up) >= 0 && json_integer_value(up) < 5000);
    assert_true(has_feature(s, "exit:early"));
    assert_true(has_feature(s, "log:hint:config"));
    const json_t *tail = json_object_get(s, "log_tail");
    assert_true(json_array_size(tail) >= 1);
    bool said = false;
    size_t k;
    json_t *line;
    json_array_foreach(tail, k, line) said |= strstr(json_string_value(line), "line 3: syntax error") != NULL;
    assert_true(said);
    /* the process is gone: heal's zombie sample (rss 0) is not reported as the service's use */
    json_t *rss = json_object_get(json_object_get(s, "resources"), "rss_bytes");
    assert_true(json_is_null(rss) || json_number_value(rss) > 0);
    const json_t *dp = json_object_get(s, "dependencies");
    assert_int_equal(json_array_size(dp), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(dp, 0), "service")), "db");
    assert_string_equal(json_string_value(json_object_get(json_array_get(dp, 0), "state")), "running");
    assert_true(json_is_true(json_object_get(json_array_get(dp, 0), "healthy")));
    assert_false(has_feature(s, "dep:down"));
    /* the audit log heal keeps was read (it exists: no note says it cannot be opened) */
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(s, "notes"), i, v) assert_null(strstr(json_string_value(v), "audit: cannot"));
    json_decref(s);
    json_decref(inc1);
    json_decref(inc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_real_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
