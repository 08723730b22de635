/* test_follow_journal.c: the journal reader (src/logs/journal.c) and the
 * watch's grouping of journal entries by unit, on real journal files written
 * by systemd-journal-remote from the journal export format (this machine
 * runs no journald). Skipped, saying why, when that tool is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "logs/logs.h"
#include "logs/watch_int.h"
#include "memory/memory.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define REMOTE "/lib/systemd/systemd-journal-remote"

typedef struct entry {
    char unit[64], msg[128];
    int prio;
} entry;

static entry E[64];
static int nE;
static uv_loop_t loop;
static char dir[256];

static void on_entry(void *ud, const char *unit, const char *ident, const char *msg, size_t len, int priority,
                     int64_t ts_ms)
{
    if (nE >= 64)
        return;
    snprintf(E[nE].unit, sizeof E[nE].unit, "%s", unit ? unit : "");
    snprintf(E[nE].msg, sizeof E[nE].msg, "%.*s", (int)len, msg);
    E[nE++].prio = priority;
}

/* Writes entries (unit, priority, message; priority -1: none) into
 * dir/name.journal with systemd-journal-remote. */
static void write_journal(const char *name, const char *const *units, const int *prios, const char *const *msgs, int n)
{
    char exp[300], out[300], cmd[800];
    snprintf(exp, sizeof exp, "%s/%s.export", dir, name);
    snprintf(out, sizeof out, "%s/%s.journal", dir, name);
    FILE *f = fopen(exp, "w");
    assert_non_null(f);
    static int seq;
    for (int i = 0; i < n; i++) {
        seq++;
        fprintf(f, "__REALTIME_TIMESTAMP=%lld\n__MONOTONIC_TIMESTAMP=%d\n_BOOT_ID=0123456789abcdef0123456789abcdef\n"
                   "_HOSTNAME=test\n", 1733300000000000LL + seq * 1000LL, seq * 1000);
        if (units[i])
            fprintf(f, "_SYSTEMD_UNIT=%s\n", units[i]);
        if (prios[i] >= 0)
            fprintf(f, "PRIORITY=%d\n", prios[i]);
        fprintf(f, "MESSAGE=%s\n\n", msgs[i]);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s -o '%s' '%s' >/dev/null 2>&1", REMOTE, out, exp);
    assert_int_equal(system(cmd), 0);
    unlink(exp);
}

static void on_wake(uv_timer_t *t) { (void)t; }

static void run_for(int ms, int want)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    int64_t end = core_mono_ms() + ms;
    while (nE < want && core_mono_ms() < end) {
        uv_timer_start(&t, on_wake, 20, 0);
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ippoc-journal.XXXXXX");
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    nE = 0;
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

static bool have_remote(void)
{
    if (access(REMOTE, X_OK) == 0)
        return true;
    fprintf(stderr, "skipped: %s is not installed (Debian package systemd-journal-remote, in the Makefile's "
                    "DEB_TEST)\n", REMOTE);
    return false;
}

static void test_reader(void **state)
{
    if (!have_remote())
        skip();
    const char *units[] = {"web.service", "db.service", NULL};
    const int prios[] = {3, 6, -1};
    const char *msgs[] = {"connection refused to 10.0.0.1", "checkpoint complete", "kernel says hi"};
    write_journal("a", units, prios, msgs, 3);
    logs_journal *j;
    char err[256];
    int rc = logs_journal_open(&loop, dir, true, on_entry, NULL, &j, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_int_equal(logs_journal_pump(j), 3);
    assert_int_equal(nE, 3);
    assert_string_equal(E[0].unit, "web.service");
    assert_int_equal(E[0].prio, 3);
    assert_string_equal(E[0].msg, "connection refused to 10.0.0.1");
    assert_string_equal(E[2].unit, "");
    assert_int_equal(E[2].prio, -1);
    /* a reader from the end sees none of that history */
    logs_journal *tail;
    assert_int_equal(logs_journal_open(&loop, dir, false, on_entry, NULL, &tail, err, sizeof err), 0);
    assert_int_equal(logs_journal_pump(tail), 0);
    /* a new journal file in the directory: the descriptor wakes the loop */
    const char *u2[] = {"web.service"};
    const int p2[] = {4};
    const char *m2[] = {"slow request 1200 ms"};
    write_journal("b", u2, p2, m2, 1);
    run_for(5000, 5);
    assert_int_equal(nE, 5); /* both readers, the new entry only */
    assert_string_equal(E[3].msg, "slow request 1200 ms");
    assert_string_equal(E[4].msg, "slow request 1200 ms");
    logs_journal_close(j);
    logs_journal_close(tail);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_string_equal(logs_priority_level(2), "error");
    assert_string_equal(logs_priority_level(4), "warning");
    assert_string_equal(logs_priority_level(6), "info");
}

static void test_no_journal(void **state)
{
    logs_journal *j = NULL;
    char err[256], missing[300];
    snprintf(missing, sizeof missing, "%s/nothing-here", dir);
    int rc = logs_journal_open(&loop, missing, false, on_entry, NULL, &j, err, sizeof err);
    assert_true(rc == -ENOENT || rc == -ENOTSUP);
    assert_null(j);
    assert_non_null(strstr(err, rc == -ENOENT ? "nothing-here" : "libsystemd"));
}

/* The watch: entries grouped by unit, the service whose unit = names one
 * taking it, PRIORITY giving the level; a missing journal reported once. */
static void test_watch_groups_by_unit(void **state)
{
    if (!have_remote())
        skip();
    char conf[1024], err[512], state_dir[300], jdir[300];
    snprintf(state_dir, sizeof state_dir, "%s/state", dir);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    assert_int_equal(mkdir(state_dir, 0755), 0);
    assert_int_equal(mkdir(jdir, 0755), 0);
    snprintf(conf, sizeof conf, "[daemon]\nstate_dir = %s\n[logs]\njournal = yes\njournal_dir = %s\n"
             "new_template_grace = 0s\n[service.api]\ncommand = /bin/true\nunit = api-server.service\n", state_dir, jdir);
    core_config cfg;
    core_config_defaults(&cfg);
    assert_int_equal(core_config_load_string(&cfg, conf, "test.conf", err, sizeof err), 0);
    mem_t *mem;
    assert_int_equal(mem_open(&mem, &cfg, err, sizeof err), 0);
    logs_watch *w;
    assert_int_equal(logs_watch_new(&loop, &cfg, mem, &w, err, sizeof err), 0);
    /* entries written after the watch started (it starts at the journal's end) */
    char saved[256];
    snprintf(saved, sizeof saved, "%s", dir);
    snprintf(dir, sizeof dir, "%s", jdir);
    const char *units[] = {"api-server.service", "api-server.service", "cron.service"};
    const int prios[] = {2, 2, 6};
    const char *msgs[] = {"database is locked", "database is locked", "job 12 started"};
    write_journal("c", units, prios, msgs, 3);
    snprintf(dir, sizeof dir, "%s", saved);
    char *api = NULL, *cron = NULL;
    int64_t end = core_mono_ms() + 5000;
    while ((!api || !cron || !strstr(api, "\"count\":2")) && core_mono_ms() < end) {
        free(api);
        free(cron);
        run_for(50, 1 << 30);
        logs_watch_tick(w, core_now_ms());
        api = logs_watch_json(w, "api");
        cron = logs_watch_json(w, "cron");
    }
    assert_non_null(api);
    assert_non_null(cron);
    json_t *j = json_loads(api, 0, NULL);
    json_t *t = json_array_get(json_object_get(json_array_get(json_object_get(j, "sources"), 0), "templates"), 0);
    assert_string_equal(json_string_value(json_object_get(t, "level")), "error"); /* PRIORITY 2, no error word */
    assert_int_equal(json_integer_value(json_object_get(t, "count")), 2);
    json_decref(j);
    free(api);
    free(cron);
    logs_watch_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    mem_close(mem);
    core_config_free(&cfg);
}

static void test_watch_no_journal_reported_once(void **state)
{
    char conf[1024], err[512], state_dir[300];
    snprintf(state_dir, sizeof state_dir, "%s/state", dir);
    assert_int_equal(mkdir(state_dir, 0755), 0);
    snprintf(conf, sizeof conf, "[daemon]\nstate_dir = %s\n[logs]\njournal = auto\njournal_dir = %s/none\n",
             state_dir, dir);
    core_config cfg;
    core_config_defaults(&cfg);
    assert_int_equal(core_config_load_string(&cfg, conf, "test.conf", err, sizeof err), 0);
    mem_t *mem;
    assert_int_equal(mem_open(&mem, &cfg, err, sizeof err), 0);
    logs_watch *w;
    assert_int_equal(logs_watch_new(&loop, &cfg, mem, &w, err, sizeof err), 0);
    assert_int_equal(logs_watch_reconfigure(w, &cfg, err, sizeof err), 0); /* same settings: not again */
    logs_watch_tick(w, core_now_ms());
    assert_int_equal(mem_flush(mem, 5000), 0);
    mem_event *ev;
    size_t n;
    mem_event_query q = {.type = "log.journal", .limit = 10};
    assert_int_equal(mem_events_query(mem, &q, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].severity, "info");
    assert_non_null(strstr(ev[0].payload, "\"available\":false"));
    mem_events_free(ev, n);
    logs_watch_free(w);
    uv_run(&loop, UV_RUN_DEFAULT);
    mem_close(mem);
    core_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_journal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_groups_by_unit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_no_journal_reported_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
