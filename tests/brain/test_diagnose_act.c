/* test_diagnose_act.c: the brain acting through a real heal engine (a libuv
 * loop, a real memory store and audit log in a temporary state dir, a real
 * supervised service): a proposed action the policy forbids (signalling a
 * process when the service's allowlist lacks signal-process) is refused by
 * heal and never run (the target lives; the audit log says so), the brain
 * sees the failed outcome and has nothing left to try; an action text that
 * is not one of heal's typed actions is never proposed at all; an allowed
 * action (restart) runs, is verified, and the brain counts it healed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain/brain_int.h"
#include "brain_test_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct fx {
    char dir[64];
    core_config cfg;
    mem_t *m;
    uv_loop_t loop;
    uv_timer_t wake;
    heal_engine *e;
    brain *b;
    bool stopped;
} fx;

static const char *conf = "[heal]\nverify = 1s\n[brain]\nwindow = 0s\n"
                          "[service.web]\ncommand = /bin/sleep 600\nallow = default\n";

static void on_wake(uv_timer_t *t) { (void)t; }

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    btu_tmpdir(f->dir, sizeof f->dir, "brainact");
    btu_config(&f->cfg, conf, f->dir);
    char err[1024] = "";
    f->m = btu_mem_open(&f->cfg);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->wake);
    uv_timer_start(&f->wake, on_wake, 10, 10);
    if (heal_engine_new(&f->loop, &f->cfg, f->m, &f->e, err, sizeof err))
        fail_msg("heal_engine_new: %s", err);
    if (brain_new(&f->loop, &f->cfg, f->m, f->e, NULL, &f->b, err, sizeof err))
        fail_msg("brain_new: %s", err);
    *state = f;
    return 0;
}

static void on_stopped(void *ud) { ((fx *)ud)->stopped = true; }

static int teardown(void **state)
{
    fx *f = *state;
    brain_free(f->b);
    heal_engine_stop(f->e, on_stopped, f);
    int64_t end = core_mono_ms() + 10000;
    while (!f->stopped && core_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    heal_engine_free(f->e);
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    btu_close(f->m, &f->cfg, f->dir);
    free(f);
    return 0;
}

static json_t *status(fx *f)
{
    char *t = brain_status_json(f->b);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    assert_non_null(o);
    return o;
}

static json_int_t stat_of(fx *f, const char *key)
{
    json_t *o = status(f);
    json_int_t v = json_integer_value(json_object_get(o, key));
    json_decref(o);
    return v;
}

/* Runs the loop with heal's and the brain's ticks until key reaches want. */
static bool run_until(fx *f, const char *key, json_int_t want, int ms)
{
    int64_t end = core_mono_ms() + ms, tick = 0;
    while (core_mono_ms() < end) {
        if (stat_of(f, key) >= want)
            return true;
        uv_run(&f->loop, UV_RUN_ONCE);
        if (core_mono_ms() - tick >= 100) {
            tick = core_mono_ms();
            heal_engine_tick(f->e, core_now_ms());
            brain_tick(f->b, core_now_ms());
        }
    }
    return stat_of(f, key) >= want;
}

static bool web_running(fx *f)
{
    char *t = heal_engine_services_json(f->e);
    bool ok = t && strstr(t, "\"running\"");
    free(t);
    return ok;
}

static uint64_t new_incident(fx *f)
{
    uint64_t id = 0;
    char err[256];
    if (heal_engine_incident_new(f->e, "web", "test", NULL, &id, err, sizeof err))
        fail_msg("incident_new: %s", err);
    return id;
}

static bool audit_has(fx *f, const char *a, const char *b)
{
    char path[128], line[4096];
    snprintf(path, sizeof path, "%s/audit.log", f->dir);
    FILE *fp = fopen(path, "r");
    bool found = false;
    while (fp && !found && fgets(line, sizeof line, fp))
        found = strstr(line, a) && strstr(line, b);
    if (fp)
        fclose(fp);
    return found;
}

static void test_forbidden_action_not_run(void **state)
{
    fx *f = *state;
    int64_t end = core_mono_ms() + 5000;
    while (!web_running(f) && core_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_true(web_running(f));
    pid_t victim = fork();
    if (victim == 0) {
        execl("/bin/sleep", "sleep", "600", (char *)NULL);
        _exit(127);
    }
    assert_true(victim > 0);
    char text[64];
    snprintf(text, sizeof text, "signal TERM pid %d", (int)victim);
    json_t *d = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "fault_type", "port_in_use", "component", "web",
                          "proposed_actions", "action", text, "service", "web", "why", "free the port");
    uint64_t id = new_incident(f);
    brain_act(f->b, id, 0, d, core_now_ms());
    json_decref(d);
    assert_int_equal(stat_of(f, "proposals"), 1);
    /* heal refuses it (no signal-process in the allowlist): a failed attempt */
    assert_true(run_until(f, "not_healed", 1, 10000));
    assert_int_equal(waitpid(victim, NULL, WNOHANG), 0); /* still running */
    assert_int_equal(kill(victim, 0), 0);
    assert_true(audit_has(f, "refuse", text));

    /* free-form text is no heal action: never proposed */
    char file[128];
    snprintf(file, sizeof file, "%s/keep", f->dir);
    FILE *fp = fopen(file, "w");
    fclose(fp);
    char rm[200];
    snprintf(rm, sizeof rm, "rm -f %s", file);
    d = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "fault_type", "unknown", "component", "web",
                  "proposed_actions", "action", rm, "service", "web", "why", "x");
    brain_act(f->b, new_incident(f), 0, d, core_now_ms());
    json_decref(d);
    assert_int_equal(stat_of(f, "proposals"), 1);
    struct stat sb;
    assert_int_equal(stat(file, &sb), 0);

    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
}

static void test_allowed_action_heals(void **state)
{
    fx *f = *state;
    int64_t end = core_mono_ms() + 5000;
    while (!web_running(f) && core_mono_ms() < end)
        uv_run(&f->loop, UV_RUN_ONCE);
    json_t *d = json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "fault_type", "crash", "component", "web",
                          "proposed_actions", "action", "restart", "service", "web", "why", "bring it back");
    brain_act(f->b, new_incident(f), 0, d, core_now_ms());
    json_decref(d);
    assert_true(run_until(f, "healed", 1, 15000));
    assert_int_equal(stat_of(f, "not_healed"), 0);
    assert_true(audit_has(f, "restart", "brain"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_forbidden_action_not_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_allowed_action_heals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
