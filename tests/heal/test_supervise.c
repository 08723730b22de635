/* test_supervise.c: the service supervisor on real processes: kill -9 healed
 * (timed), backoff on a crash loop and its reset, stop with TERM and KILL of
 * a process group that ignores TERM, log capture and rotation, dependency
 * order and cycles, an external service through a pidfile and a
 * daemonizing start script, a fake systemctl, bad configurations, a free
 * that leaves no process behind, the dependent hook, and the adoption of a
 * recorded process left running by an earlier ippocd.
 *
 * The tests drive the uv loop (uv_run with a deadline and a 5 ms tick to
 * re-check conditions); every pid seen is SIGKILLed in teardown. */
#include "heal/supervise.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_EV 4096

typedef struct ev {
    char name[HEAL_NAME_MAX];
    heal_service_state old_state, new_state;
    pid_t pid;
    int exit_status, term_signal;
    int64_t delay_ms;
    int64_t t_ns;
    char reason[96];
} ev;

static struct fx {
    char dir[128];
    uv_loop_t loop;
    uv_timer_t tick;
    heal_supervisor *sup;
    ev evs[MAX_EV];
    int nev;
    pid_t pids[MAX_EV];
    int npids;
} F;

static void on_ev(const heal_service_event *e, void *ud)
{
    (void)ud;
    if (F.nev >= MAX_EV)
        return;
    ev *x = &F.evs[F.nev++];
    snprintf(x->name, sizeof x->name, "%s", e->name);
    x->old_state = e->old_state;
    x->new_state = e->new_state;
    x->pid = e->pid;
    x->exit_status = e->exit_status;
    x->term_signal = e->term_signal;
    x->delay_ms = e->delay_ms;
    x->t_ns = core_mono_ns();
    snprintf(x->reason, sizeof x->reason, "%s", e->reason ? e->reason : "");
    if (e->pid > 0 && F.npids < MAX_EV)
        F.pids[F.npids++] = e->pid;
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    snprintf(F.dir, sizeof F.dir, "/tmp/ippoc-sup-test.XXXXXX");
    if (!mkdtemp(F.dir))
        return -1;
    uv_loop_init(&F.loop);
    uv_timer_init(&F.loop, &F.tick);
    uv_timer_start(&F.tick, on_tick, 5, 5);
    char err[256];
    if (heal_supervisor_new(&F.loop, F.dir, &F.sup, err, sizeof err)) {
        fprintf(stderr, "supervisor_new: %s\n", err);
        return -1;
    }
    heal_supervisor_set_callback(F.sup, on_ev, NULL);
    return 0;
}

static void kill_pidfile(const char *name)
{
    char path[256], buf[64];
    snprintf(path, sizeof path, "%s/%s", F.dir, name);
    if (core_read_file(path, buf, sizeof buf) > 0 && atoi(buf) > 1)
        kill(atoi(buf), SIGKILL);
}

static int teardown(void **state)
{
    (void)state;
    heal_supervisor_free(F.sup);
    F.sup = NULL;
    for (int i = 0; i < F.npids; i++)
        if (F.pids[i] > 1) {
            kill(-F.pids[i], SIGKILL);
            kill(F.pids[i], SIGKILL);
        }
    kill_pidfile("ext.pid");
    kill_pidfile("child.pid");
    uv_timer_stop(&F.tick);
    uv_close((uv_handle_t *)&F.tick, NULL);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&F.loop);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.dir);
    if (system(cmd)) {
    }
    return rc ? -1 : 0;
}

/* ---- helpers ---------------------------------------------------------------- */

typedef bool (*pred_fn)(const void *arg);

static bool run_until(pred_fn p, const void *arg, int64_t ms)
{
    int64_t end = core_mono_ms() + ms;
    while (!p(arg) && core_mono_ms() < end)
        uv_run(&F.loop, UV_RUN_ONCE);
    return p(arg);
}

typedef struct want {
    const char *name;
    heal_service_state st;
    int from;     /* events index to search from */
    pid_t not_pid;
} want_t;

static int find_ev(const want_t *w)
{
    for (int i = w->from; i < F.nev; i++)
        if (!strcmp(F.evs[i].name, w->name) && F.evs[i].new_state == w->st &&
            (!w->not_pid || F.evs[i].pid != w->not_pid))
            return i;
    return -1;
}

static bool pred_ev(const void *arg)
{
    return find_ev(arg) >= 0;
}

/* Runs the loop until `name` enters st (from event index `from`); returns the index. */
static int wait_ev(const char *name, heal_service_state st, int from, pid_t not_pid, int64_t ms)
{
    want_t w = {name, st, from, not_pid};
    run_until(pred_ev, &w, ms);
    return find_ev(&w);
}

static bool pred_file(const void *arg)
{
    return access(arg, F_OK) == 0;
}

static void pathf(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pathf(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, n, fmt, ap);
    va_end(ap);
}

static heal_service_config supervised(const char *name, const char *command)
{
    heal_service_config c;
    heal_service_config_init(&c, name, HEAL_SVC_SUPERVISED);
    snprintf(c.command, sizeof c.command, "%s", command);
    return c;
}

static void add_ok(const heal_service_config *c)
{
    char err[512] = "";
    int rc = heal_supervisor_add(F.sup, c, err, sizeof err);
    if (rc)
        fprintf(stderr, "add %s: %s\n", c->name, err);
    assert_int_equal(rc, 0);
}

static void start_all_ok(void)
{
    char err[512] = "";
    int rc = heal_supervisor_start_all(F.sup, err, sizeof err);
    if (rc)
        fprintf(stderr, "start_all: %s\n", err);
    assert_int_equal(rc, 0);
}

static bool dead(pid_t pid)
{
    return !heal_svc_pid_alive(pid);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- pure helpers -------------------------------------------------------- */

static void test_split_argv(void **state)
{
    (void)state;
    char **v, err[128];
    assert_int_equal(heal_svc_split_argv("  sleep   1000 ", &v, err, sizeof err), 2);
    assert_string_equal(v[0], "sleep");
    assert_string_equal(v[1], "1000");
    assert_null(v[2]);
    free(v);
    assert_int_equal(heal_svc_split_argv("/bin/sh -c \"echo 'a b' \\\"q\\\" \\\\\" x\"y\"", &v, err, sizeof err), 4);
    assert_string_equal(v[2], "echo 'a b' \"q\" \\");
    assert_string_equal(v[3], "xy");
    free(v);
    assert_int_equal(heal_svc_split_argv("a \"\" b", &v, err, sizeof err), 3);
    assert_string_equal(v[1], "");
    free(v);
    assert_int_equal(heal_svc_split_argv("   ", &v, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(heal_svc_split_argv("sh -c \"oops", &v, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unterminated"));
}

static void test_config_keys(void **state)
{
    (void)state;
    heal_service_config c;
    char err[256];
    heal_service_config_init(&c, "web", HEAL_SVC_SUPERVISED);
    assert_true(c.autorestart);
    assert_int_equal(c.stop_signal, SIGTERM);
    assert_int_equal(heal_service_config_set(&c, "command", "python3 -m http.server", err, sizeof err), 0);
    assert_int_equal(heal_service_config_set(&c, "env", "A=1 B=two", err, sizeof err), 0);
    assert_int_equal(heal_service_config_set(&c, "env", "C=3", err, sizeof err), 0);
    assert_int_equal(c.nenv, 3);
    assert_string_equal(c.env[2], "C=3");
    assert_int_equal(heal_service_config_set(&c, "depends", "db, cache", err, sizeof err), 0);
    assert_int_equal(c.ndepends, 2);
    assert_string_equal(c.depends[1], "cache");
    assert_int_equal(heal_service_config_set(&c, "backoff", "250ms", err, sizeof err), 0);
    assert_int_equal(c.backoff_initial_ms, 250);
    assert_int_equal(heal_service_config_set(&c, "healthy_after", "1m", err, sizeof err), 0);
    assert_int_equal(c.healthy_after_ms, 60000);
    assert_int_equal(heal_service_config_set(&c, "stop_signal", "SIGQUIT", err, sizeof err), 0);
    assert_int_equal(c.stop_signal, SIGQUIT);
    assert_int_equal(heal_service_config_set(&c, "stop_signal", "2", err, sizeof err), 0);
    assert_int_equal(c.stop_signal, SIGINT);
    assert_int_equal(heal_service_config_set(&c, "log_max", "64KB", err, sizeof err), 0);
    assert_int_equal(c.log_max_bytes, 65536);
    assert_int_equal(heal_service_config_set(&c, "autorestart", "no", err, sizeof err), 0);
    assert_false(c.autorestart);
    assert_int_equal(heal_service_config_set(&c, "type", "systemd", err, sizeof err), 0);
    assert_int_equal(c.type, HEAL_SVC_SYSTEMD);
    /* errors */
    assert_int_equal(heal_service_config_set(&c, "probe", "x", err, sizeof err), -ENOENT);
    assert_int_equal(heal_service_config_set(&c, "type", "docker", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "docker"));
    assert_int_equal(heal_service_config_set(&c, "env", "NOVALUE", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "KEY=VALUE"));
    assert_int_equal(heal_service_config_set(&c, "stop_signal", "SIGNOPE", err, sizeof err), -EINVAL);
    assert_int_equal(heal_service_config_set(&c, "backoff", "soon", err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "backoff"));
    assert_int_equal(heal_service_config_set(&c, "depends", "a/b", err, sizeof err), -EINVAL);
    assert_int_equal(heal_service_config_set(&c, "log_keep", "-1", err, sizeof err), -EINVAL);
    assert_int_equal(heal_svc_signal_parse("kill"), SIGKILL);
    assert_int_equal(heal_svc_signal_parse("HUP"), SIGHUP);
    assert_int_equal(heal_svc_signal_parse("0"), -1);
}

static void test_systemctl_show_parse(void **state)
{
    (void)state;
    heal_service_state st;
    pid_t pid;
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=active\nMainPID=1234\n", &st, &pid), 0);
    assert_int_equal(st, HEAL_SVC_RUNNING);
    assert_int_equal(pid, 1234);
    assert_int_equal(heal_svc_parse_systemctl_show("MainPID=0\nActiveState=inactive\n", &st, &pid), 0);
    assert_int_equal(st, HEAL_SVC_STOPPED);
    assert_int_equal(pid, 0);
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=failed\nMainPID=0", &st, &pid), 0);
    assert_int_equal(st, HEAL_SVC_FAILED);
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=activating\nMainPID=77\n", &st, &pid), 0);
    assert_int_equal(st, HEAL_SVC_STARTING);
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=deactivating\n", &st, &pid), 0);
    assert_int_equal(st, HEAL_SVC_STOPPING);
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=reloading\nMainPID=5\n", &st, &pid), 0);
    assert_int_equal(st, HEAL_SVC_RUNNING);
    assert_int_equal(heal_svc_parse_systemctl_show("", &st, &pid), -EINVAL);
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=weird\n", &st, &pid), -EINVAL);
    assert_int_equal(heal_svc_parse_systemctl_show("ActiveState=active\nMainPID=x1\n", &st, &pid), -EINVAL);
}

/* ---- supervised ----------------------------------------------------------- */

static void test_kill9_healed_fast(void **state)
{
    (void)state;
    heal_service_config c = supervised("sleeper", "sleep 1000");
    add_ok(&c);
    start_all_ok();
    int i = wait_ev("sleeper", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(i >= 0);
    pid_t pid = F.evs[i].pid;
    assert_true(pid > 0);

    /* first crash: restarted at once (no delay) */
    int from = F.nev;
    int64_t t0 = core_mono_ns();
    assert_int_equal(kill(pid, SIGKILL), 0);
    int j = wait_ev("sleeper", HEAL_SVC_RUNNING, from, pid, 2000);
    assert_true(j >= 0);
    double ms = (double)(F.evs[j].t_ns - t0) / 1e6;
    printf("kill -9 -> RUNNING (new pid %d): %.2f ms\n", (int)F.evs[j].pid, ms);
    assert_true(ms < 100.0);
    int b = wait_ev("sleeper", HEAL_SVC_BACKOFF, from, 0, 0);
    assert_true(b >= 0 && b < j);
    assert_int_equal(F.evs[b].delay_ms, 0);
    assert_int_equal(F.evs[b].term_signal, SIGKILL);
    assert_int_equal(F.evs[b].pid, pid);

    heal_service_info inf;
    assert_int_equal(heal_service_info_get(F.sup, "sleeper", &inf), 0);
    assert_int_equal(inf.state, HEAL_SVC_RUNNING);
    assert_int_equal(inf.pid, F.evs[j].pid);
    assert_int_equal(inf.restarts, 1);
    assert_true(inf.has_exited);
    assert_int_equal(inf.last_signal, SIGKILL);
    assert_int_equal(inf.next_delay_ms, 100); /* a second quick crash would wait */

    /* second quick crash: backoff 100 ms */
    pid = F.evs[j].pid;
    from = F.nev;
    kill(pid, SIGKILL);
    b = wait_ev("sleeper", HEAL_SVC_BACKOFF, from, 0, 2000);
    assert_true(b >= 0);
    assert_int_equal(F.evs[b].delay_ms, 100);
    j = wait_ev("sleeper", HEAL_SVC_RUNNING, from, 0, 2000);
    assert_true(j >= 0);
    ms = (double)(F.evs[j].t_ns - F.evs[b].t_ns) / 1e6;
    printf("second quick crash: restarted after %.1f ms (backoff 100 ms)\n", ms);
    assert_true(ms >= 95.0);
}

static void test_kill9_trials(void **state)
{
    (void)state;
    heal_service_config c = supervised("trial", "sleep 1000");
    c.healthy_after_ms = 0; /* every crash is the first: measure the immediate path */
    add_ok(&c);
    start_all_ok();
    int i = wait_ev("trial", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(i >= 0);
    pid_t pid = F.evs[i].pid;
    enum { N = 20 };
    int64_t us[N];
    for (int t = 0; t < N; t++) {
        int from = F.nev;
        int64_t t0 = core_mono_ns();
        kill(pid, SIGKILL);
        int j = wait_ev("trial", HEAL_SVC_RUNNING, from, pid, 2000);
        assert_true(j >= 0);
        us[t] = (F.evs[j].t_ns - t0) / 1000;
        pid = F.evs[j].pid;
    }
    qsort(us, N, sizeof us[0], cmp_i64);
    printf("kill -9 -> RUNNING over %d trials: min %.2f ms, median %.2f ms, max %.2f ms\n", N, us[0] / 1e3,
           us[N / 2] / 1e3, us[N - 1] / 1e3);
    assert_true(us[N / 2] < 100000);
}

static void test_crash_loop_backoff(void **state)
{
    (void)state;
    heal_service_config c = supervised("crasher", "/bin/sh -c \"exit 3\"");
    c.backoff_initial_ms = 20;
    c.backoff_max_ms = 80;
    add_ok(&c);
    start_all_ok();
    int64_t want[] = {0, 20, 40, 80, 80, 80};
    int from = 0;
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        int b = wait_ev("crasher", HEAL_SVC_BACKOFF, from, 0, 3000);
        assert_true(b >= 0);
        assert_int_equal(F.evs[b].exit_status, 3);
        assert_int_equal(F.evs[b].delay_ms, want[k]);
        int r = wait_ev("crasher", HEAL_SVC_RUNNING, b, 0, 3000);
        assert_true(r >= 0);
        double gap = (double)(F.evs[r].t_ns - F.evs[b].t_ns) / 1e6;
        assert_true(gap >= (double)want[k] - 2.0);
        from = r;
    }
    heal_service_info inf;
    heal_service_info_get(F.sup, "crasher", &inf);
    assert_true(inf.restarts >= 6);
    assert_int_equal(inf.last_exit_status, 3);
    /* stop ends the loop, even in BACKOFF */
    char err[256];
    int rc = heal_service_stop(F.sup, "crasher", err, sizeof err);
    assert_true(rc == 0);
    int s = wait_ev("crasher", HEAL_SVC_STOPPED, from, 0, 2000);
    assert_true(s >= 0);
}

static void test_backoff_resets_after_healthy(void **state)
{
    (void)state;
    /* up 150 ms each time, healthy after 100 ms: every exit counts as the first */
    heal_service_config c = supervised("flaky", "/bin/sh -c \"sleep 0.15; exit 1\"");
    c.backoff_initial_ms = 500;
    c.healthy_after_ms = 100;
    add_ok(&c);
    heal_service_config q = supervised("quick", "/bin/sh -c \"exit 1\"");
    q.backoff_initial_ms = 50;
    q.healthy_after_ms = 100;
    add_ok(&q);
    start_all_ok();
    int from = 0;
    for (int k = 0; k < 3; k++) {
        int b = wait_ev("flaky", HEAL_SVC_BACKOFF, from, 0, 3000);
        assert_true(b >= 0);
        assert_int_equal(F.evs[b].delay_ms, 0);
        from = b + 1;
    }
    /* the quick one never stays up: its delays grow */
    int b1 = wait_ev("quick", HEAL_SVC_BACKOFF, 0, 0, 3000);
    int b2 = wait_ev("quick", HEAL_SVC_BACKOFF, b1 + 1, 0, 3000);
    int b3 = wait_ev("quick", HEAL_SVC_BACKOFF, b2 + 1, 0, 3000);
    assert_true(b3 >= 0);
    assert_int_equal(F.evs[b1].delay_ms, 0);
    assert_int_equal(F.evs[b2].delay_ms, 50);
    assert_int_equal(F.evs[b3].delay_ms, 100);
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; d && (de = readdir(d));)
        n += de->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A crash loop through the output FIFOs: every line of every instance is in
 * the log, and no reader of an earlier instance stays open (each would keep
 * an fd and steal the next instance's output). */
static void test_crash_loop_output(void **state)
{
    (void)state;
    heal_service_config c = supervised("loop", "/bin/sh -c \"echo out-$$; echo err-$$ >&2; exit 1\"");
    c.backoff_initial_ms = 0; /* each instance spawned from the exit callback of the one before */
    c.backoff_max_ms = 0;
    add_ok(&c);
    int fds0 = count_fds();
    start_all_ok();
    int from = 0;
    for (int k = 0; k < 20; k++) {
        int b = wait_ev("loop", HEAL_SVC_BACKOFF, from, 0, 3000);
        assert_true(b >= 0);
        from = b + 1;
    }
    char err[128];
    heal_service_stop(F.sup, "loop", err, sizeof err);
    assert_true(wait_ev("loop", HEAL_SVC_STOPPED, from, 0, 3000) >= 0);
    for (int k = 0; k < 20; k++) /* let closes finish */
        uv_run(&F.loop, UV_RUN_NOWAIT);
    int fds1 = count_fds();
    printf("fds before %d, after 20 restarts %d\n", fds0, fds1);
    assert_true(fds1 <= fds0 + 4);
    char buf[65536];
    assert_true(heal_service_log_tail(F.sup, "loop", 400, buf, sizeof buf) > 0);
    for (int k = 0; k < 20 && from; k++) { /* each exited pid printed both lines */
        pid_t pid = 0;
        for (int i = 0, seen = 0; i < F.nev && !pid; i++)
            if (!strcmp(F.evs[i].name, "loop") && F.evs[i].new_state == HEAL_SVC_RUNNING && seen++ == k)
                pid = F.evs[i].pid;
        char want[64];
        snprintf(want, sizeof want, "out-%d\n", (int)pid);
        assert_non_null(strstr(buf, want));
        snprintf(want, sizeof want, "err-%d\n", (int)pid);
        assert_non_null(strstr(buf, want));
    }
}

static void test_stop_term(void **state)
{
    (void)state;
    heal_service_config c = supervised("term", "sleep 1000");
    add_ok(&c);
    start_all_ok();
    int i = wait_ev("term", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(i >= 0);
    pid_t pid = F.evs[i].pid;
    char err[256];
    assert_int_equal(heal_service_stop(F.sup, "term", err, sizeof err), 0);
    int s = wait_ev("term", HEAL_SVC_STOPPED, i, 0, 2000);
    assert_true(s >= 0);
    assert_int_equal(F.evs[s].term_signal, SIGTERM);
    assert_true(dead(pid));
    /* not restarted */
    assert_int_equal(wait_ev("term", HEAL_SVC_RUNNING, s, 0, 100), -1);
    assert_int_equal(heal_service_stop(F.sup, "term", err, sizeof err), -EALREADY);
    assert_int_equal(heal_service_signal(F.sup, "term", SIGHUP, err, sizeof err), -ESRCH);
    /* start again */
    assert_int_equal(heal_service_start(F.sup, "term", err, sizeof err), 0);
    assert_true(wait_ev("term", HEAL_SVC_RUNNING, s, 0, 2000) >= 0);
    assert_int_equal(heal_service_start(F.sup, "term", err, sizeof err), -EALREADY);
    assert_non_null(strstr(err, "already running"));
}

static void test_stop_kills_group_ignoring_term(void **state)
{
    (void)state;
    char cmd[512], pidf[256];
    pathf(pidf, sizeof pidf, "%s/child.pid", F.dir);
    snprintf(cmd, sizeof cmd, "/bin/sh -c \"trap '' TERM; sleep 1000 & echo $! > %s; wait\"", pidf);
    heal_service_config c = supervised("stubborn", cmd);
    c.stop_timeout_ms = 300;
    add_ok(&c);
    start_all_ok();
    int i = wait_ev("stubborn", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(i >= 0);
    pid_t pid = F.evs[i].pid;
    assert_true(run_until(pred_file, pidf, 2000));
    char buf[64];
    int64_t w0 = core_mono_ms();
    while (core_read_file(pidf, buf, sizeof buf) <= 0 || !strchr(buf, '\n')) /* written at once by sh */
        if (core_mono_ms() - w0 > 2000)
            fail_msg("child.pid never completed");
        else
            uv_run(&F.loop, UV_RUN_ONCE);
    pid_t kid = atoi(buf);
    assert_true(kid > 1);
    assert_false(dead(kid));

    char err[256];
    int64_t t0 = core_mono_ms();
    assert_int_equal(heal_service_stop(F.sup, "stubborn", err, sizeof err), 0);
    int s = wait_ev("stubborn", HEAL_SVC_STOPPED, i, 0, 3000);
    assert_true(s >= 0);
    int64_t took = F.evs[s].t_ns / 1000000 - t0;
    printf("TERM ignored: KILLed after %lld ms (timeout 300 ms)\n", (long long)took);
    assert_true(took >= 290);
    assert_int_equal(F.evs[s].term_signal, SIGKILL);
    assert_true(dead(pid));
    int64_t k0 = core_mono_ms();
    while (!dead(kid) && core_mono_ms() - k0 < 1000)
        uv_run(&F.loop, UV_RUN_ONCE);
    assert_true(dead(kid)); /* the whole process group went */
    char tail[4096];
    assert_true(heal_service_log_tail(F.sup, "stubborn", 5, tail, sizeof tail) > 0);
    assert_non_null(strstr(tail, "SIGKILL"));
}

typedef struct tailwant {
    const char *svc;
    const char *needle;
} tailwant;

static bool pred_tail(const void *arg)
{
    const tailwant *t = arg;
    char buf[8192];
    return heal_service_log_tail(F.sup, t->svc, 20, buf, sizeof buf) > 0 && strstr(buf, t->needle);
}

static void test_log_capture_and_rotation(void **state)
{
    (void)state;
    heal_service_config c = supervised(
        "chatty", "/bin/sh -c \"i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; "
                  "echo err-line >&2; echo done-$((6*7)); exec sleep 1000\"");
    c.log_max_bytes = 16 * 1024;
    c.log_keep = 2;
    add_ok(&c);
    start_all_ok();
    tailwant tw = {"chatty", "done-42"}; /* not in the command text the log starts with */
    assert_true(run_until(pred_tail, &tw, 5000));
    tailwant tw2 = {"chatty", "err-line\n"}; /* stderr is its own pipe: may come a little later */
    assert_true(run_until(pred_tail, &tw2, 5000));
    char path[256];
    struct stat st;
    for (int k = 0; k <= 2; k++) {
        if (k)
            pathf(path, sizeof path, "%s/services/chatty.log.%d", F.dir, k);
        else
            pathf(path, sizeof path, "%s/services/chatty.log", F.dir);
        if (stat(path, &st))
            fail_msg("%s: %s", path, strerror(errno));
        printf("%s: %lld bytes\n", path, (long long)st.st_size);
        assert_true(st.st_size <= 16 * 1024);
        if (k)
            assert_true(st.st_size > 8 * 1024);
    }
    pathf(path, sizeof path, "%s/services/chatty.log.3", F.dir);
    assert_int_not_equal(stat(path, &st), 0);

    char tail[4096];
    ssize_t n = heal_service_log_tail(F.sup, "chatty", 3, tail, sizeof tail);
    assert_true(n > 0);
    printf("tail:\n%s", tail);
    assert_non_null(strstr(tail, "line-2999\n"));
    assert_non_null(strstr(tail, "err-line\n"));
    assert_non_null(strstr(tail, "done-42\n"));
    assert_null(strstr(tail, "line-2998\n"));
    /* each line carries a timestamp: 2025-01-02T03:04:05.678Z */
    assert_true(tail[4] == '-' && tail[10] == 'T' && tail[23] == 'Z');
    int lines = 0;
    for (char *p = tail; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    /* a tail longer than the current file reaches into the rotated one */
    static char big[64 * 1024];
    n = heal_service_log_tail(F.sup, "chatty", 1000, big, sizeof big);
    assert_true(n > 16 * 1024);
    lines = 0;
    for (char *p = big; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1000);
    /* a small buffer holds only whole lines */
    char small[100];
    n = heal_service_log_tail(F.sup, "chatty", 10, small, sizeof small);
    assert_true(n > 0 && n < (ssize_t)sizeof small);
    assert_true(small[4] == '-' && small[10] == 'T' && small[n - 1] == '\n');
    assert_int_equal(heal_service_log_tail(F.sup, "nope", 3, tail, sizeof tail), -ENOENT);
}

static void test_env_cwd_user(void **state)
{
    (void)state;
    char cmd[512], out[256];
    pathf(out, sizeof out, "%s/out.txt", F.dir);
    snprintf(cmd, sizeof cmd, "/bin/sh -c \"echo $FOO:$(pwd):$(id -u) > %s; exec sleep 1000\"", out);
    heal_service_config c = supervised("envy", cmd);
    snprintf(c.env[c.nenv++], HEAL_ARG_MAX, "FOO=bar baz");
    snprintf(c.cwd, sizeof c.cwd, "/tmp");
    bool root = geteuid() == 0;
    if (root) { /* as nobody: it must be able to write the file */
        snprintf(c.user, sizeof c.user, "nobody");
        chmod(F.dir, 0755);
        FILE *f = fopen(out, "w");
        assert_non_null(f);
        fclose(f);
        chmod(out, 0666);
    }
    add_ok(&c);
    start_all_ok();
    assert_true(wait_ev("envy", HEAL_SVC_RUNNING, 0, 0, 2000) >= 0);
    char buf[256] = "";
    int64_t t0 = core_mono_ms();
    while ((core_read_file(out, buf, sizeof buf) <= 0 || !strchr(buf, '\n')) && core_mono_ms() - t0 < 3000)
        uv_run(&F.loop, UV_RUN_ONCE);
    printf("child saw: %s", buf);
    char want[64];
    snprintf(want, sizeof want, "bar baz:/tmp:%d\n", root ? 65534 : (int)geteuid());
    assert_string_equal(buf, want);
}

static void test_signal_action(void **state)
{
    (void)state;
    heal_service_config c = supervised("sig", "sleep 1000");
    add_ok(&c);
    start_all_ok();
    int i = wait_ev("sig", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(i >= 0);
    heal_action a;
    memset(&a, 0, sizeof a);
    a.kind = HEAL_ACT_SIGNAL;
    a.signum = SIGTERM;
    snprintf(a.service, sizeof a.service, "sig");
    char err[256];
    assert_int_equal(heal_service_act(F.sup, &a, err, sizeof err), 0);
    /* a signal is not a stop: the service comes back */
    int b = wait_ev("sig", HEAL_SVC_BACKOFF, i, 0, 2000);
    assert_true(b >= 0);
    assert_int_equal(F.evs[b].term_signal, SIGTERM);
    assert_true(wait_ev("sig", HEAL_SVC_RUNNING, b, 0, 2000) >= 0);
    a.kind = HEAL_ACT_RENICE;
    assert_int_equal(heal_service_act(F.sup, &a, err, sizeof err), -EOPNOTSUPP);
    a.kind = HEAL_ACT_RESTART;
    snprintf(a.service, sizeof a.service, "ghost");
    assert_int_equal(heal_service_act(F.sup, &a, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "ghost"));
}

/* ---- dependencies ----------------------------------------------------------- */

static void test_dependency_order(void **state)
{
    (void)state;
    heal_service_config a = supervised("app", "sleep 1000");
    snprintf(a.depends[a.ndepends++], HEAL_NAME_MAX, "db");
    heal_service_config w = supervised("web", "sleep 1000");
    snprintf(w.depends[w.ndepends++], HEAL_NAME_MAX, "app");
    heal_service_config d = supervised("db", "sleep 1000");
    add_ok(&w); /* added before what it needs */
    add_ok(&a);
    add_ok(&d);
    start_all_ok();
    int iw = wait_ev("web", HEAL_SVC_RUNNING, 0, 0, 2000);
    int ia = wait_ev("app", HEAL_SVC_RUNNING, 0, 0, 0);
    int id = wait_ev("db", HEAL_SVC_RUNNING, 0, 0, 0);
    assert_true(id >= 0 && ia > id && iw > ia);
    assert_true(wait_ev("web", HEAL_SVC_STARTING, 0, 0, 0) < id); /* it waited */

    /* restart db: app and web are restarted after it */
    pid_t app_pid = F.evs[ia].pid, web_pid = F.evs[iw].pid;
    int from = F.nev;
    char err[256];
    assert_int_equal(heal_service_restart(F.sup, "db", err, sizeof err), 0);
    int rd = wait_ev("db", HEAL_SVC_RUNNING, from, 0, 3000);
    int ra = wait_ev("app", HEAL_SVC_RUNNING, from, app_pid, 3000);
    int rw = wait_ev("web", HEAL_SVC_RUNNING, from, web_pid, 3000);
    assert_true(rd >= 0 && ra > rd && rw > ra);
    assert_true(dead(app_pid) && dead(web_pid));

    /* stop_all: dependents first */
    from = F.nev;
    heal_supervisor_stop_all(F.sup, true, NULL, NULL);
    int sw = wait_ev("web", HEAL_SVC_STOPPED, from, 0, 3000);
    int sa = wait_ev("app", HEAL_SVC_STOPPED, from, 0, 3000);
    int sd = wait_ev("db", HEAL_SVC_STOPPED, from, 0, 3000);
    assert_true(sw >= 0 && sa > sw && sd > sa);
    int pa = wait_ev("app", HEAL_SVC_STOPPING, from, 0, 0);
    assert_true(pa > sw); /* app was not even asked before web was down */
}

/* With a dependent hook the supervisor does not restart dependents itself:
 * it names them once the restarted dependency runs again. */
static char hook_dep[HEAL_NAME_MAX], hook_dependent[HEAL_NAME_MAX];
static int hook_calls;

static void on_dependent(const char *dep, const char *dependent, void *ud)
{
    (void)ud;
    hook_calls++;
    snprintf(hook_dep, sizeof hook_dep, "%s", dep);
    snprintf(hook_dependent, sizeof hook_dependent, "%s", dependent);
    heal_service_info in;
    heal_service_info_get(F.sup, dep, &in);
    assert_int_equal(in.state, HEAL_SVC_RUNNING); /* called once the dependency runs */
}

static bool pred_hook(const void *arg)
{
    (void)arg;
    return hook_calls > 0;
}

static void test_dependent_hook(void **state)
{
    (void)state;
    hook_calls = 0;
    heal_supervisor_set_dependent_hook(F.sup, on_dependent, NULL);
    heal_service_config a = supervised("app", "sleep 1000");
    snprintf(a.depends[a.ndepends++], HEAL_NAME_MAX, "db");
    heal_service_config d = supervised("db", "sleep 1000");
    add_ok(&a);
    add_ok(&d);
    start_all_ok();
    int ia = wait_ev("app", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(ia >= 0);
    pid_t app_pid = F.evs[ia].pid;
    int from = F.nev;
    char err[256];
    assert_int_equal(heal_service_restart(F.sup, "db", err, sizeof err), 0);
    assert_true(run_until(pred_hook, NULL, 3000));
    assert_int_equal(hook_calls, 1);
    assert_string_equal(hook_dep, "db");
    assert_string_equal(hook_dependent, "app");
    assert_int_equal(wait_ev("app", HEAL_SVC_STOPPING, from, 0, 0), -1); /* left to the caller */
    heal_service_info in;
    heal_service_info_get(F.sup, "app", &in);
    assert_int_equal(in.state, HEAL_SVC_RUNNING);
    assert_int_equal(in.pid, app_pid);
}

/* With a ready hook, a dependent waits until its dependency is ready, not
 * only RUNNING; recheck starts it once the answer changed. */
static bool db_ready;

static bool on_ready(const char *name, void *ud)
{
    (void)ud;
    return strcmp(name, "db") || db_ready;
}

static void test_ready_hook(void **state)
{
    (void)state;
    db_ready = false;
    heal_supervisor_set_ready_hook(F.sup, on_ready, NULL);
    heal_service_config a = supervised("app", "sleep 1000");
    snprintf(a.depends[a.ndepends++], HEAL_NAME_MAX, "db");
    heal_service_config d = supervised("db", "sleep 1000");
    add_ok(&a);
    add_ok(&d);
    start_all_ok();
    assert_true(wait_ev("db", HEAL_SVC_RUNNING, 0, 0, 2000) >= 0);
    heal_supervisor_recheck(F.sup); /* still not ready: nothing happens */
    heal_service_info in;
    heal_service_info_get(F.sup, "app", &in);
    assert_int_equal(in.state, HEAL_SVC_STARTING);
    assert_int_equal(wait_ev("app", HEAL_SVC_RUNNING, 0, 0, 0), -1);
    db_ready = true;
    heal_supervisor_recheck(F.sup);
    assert_true(wait_ev("app", HEAL_SVC_RUNNING, 0, 0, 2000) >= 0);
}

/* A recorded pid whose start time still matches is adopted (not started
 * again), watched by pidfd; a stale record is dropped and a new process
 * spawned; a spawned child is recorded. */
static void write_record(const char *name, pid_t pid, uint64_t start, const char *command)
{
    char path[256], text[256];
    pathf(path, sizeof path, "%s/services/%s.pid", F.dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    snprintf(text, sizeof text, "%d %llu\n%s\n", (int)pid, (unsigned long long)start, command);
    fputs(text, fp);
    fclose(fp);
}

static pid_t sleeper(void)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL); /* as a service spawned by ippocd would have it */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        setsid();
        execlp("sleep", "sleep", "1000", (char *)NULL);
        _exit(127);
    }
    F.pids[F.npids++] = pid;
    int64_t end = core_mono_ms() + 5000; /* until it runs sleep (before that, a TERM could be lost) */
    char comm[32] = "";
    while (core_mono_ms() < end && (heal_svc_pid_comm(pid, comm, sizeof comm) || strcmp(comm, "sleep")))
        uv_run(&F.loop, UV_RUN_ONCE);
    assert_string_equal(comm, "sleep");
    return pid;
}

static void test_adopt_recorded(void **state)
{
    (void)state;
    pid_t pid = sleeper(), other = sleeper();
    uint64_t start = 0, ostart = 0; /* set at fork, kept across exec */
    assert_int_equal(heal_svc_pid_starttime(pid, &start), 0);
    assert_int_equal(heal_svc_pid_starttime(other, &ostart), 0);
    write_record("old", pid, start, "sleep 1000");
    write_record("stale", pid, start + 1, "sleep 1000"); /* same pid, another process: not adopted */
    write_record("changed", other, ostart, "sleep 999"); /* adopted, then restarted with the new command */
    heal_service_config ch = supervised("changed", "sleep 1000");
    add_ok(&ch);
    heal_service_config o = supervised("old", "sleep 1000");
    o.autorestart = false;
    heal_service_config st = supervised("stale", "sleep 1000");
    add_ok(&o);
    add_ok(&st);
    start_all_ok();
    int io = wait_ev("old", HEAL_SVC_RUNNING, 0, 0, 2000);
    int is = wait_ev("stale", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(io >= 0 && is >= 0);
    assert_int_equal(F.evs[io].pid, pid);
    assert_string_equal(F.evs[io].reason, "adopted");
    assert_true(F.evs[is].pid != pid);
    char path[256], text[64];
    pathf(path, sizeof path, "%s/services/stale.pid", F.dir);
    assert_true(core_read_file(path, text, sizeof text) > 0); /* the new child's record */
    assert_int_equal(atoi(text), (int)F.evs[is].pid);
    heal_service_info in;
    heal_service_info_get(F.sup, "old", &in);
    assert_true(in.uptime_ms >= 0);
    int ic = wait_ev("changed", HEAL_SVC_RUNNING, 0, 0, 0);
    assert_true(ic >= 0 && F.evs[ic].pid == other);
    int ic2 = wait_ev("changed", HEAL_SVC_RUNNING, ic + 1, other, 3000);
    assert_true(ic2 > ic);
    waitpid(other, NULL, 0);
    assert_true(dead(other));

    kill(pid, SIGKILL);
    int iff = wait_ev("old", HEAL_SVC_FAILED, io, 0, 3000);
    assert_true(iff >= 0);
    assert_string_equal(F.evs[iff].reason, "exited (adopted: status unknown)");
    pathf(path, sizeof path, "%s/services/old.pid", F.dir);
    assert_int_equal(access(path, F_OK), -1);
    waitpid(pid, NULL, 0);
}

/* The daemon's shutdown: stop everything, free in the done callback. */
static void on_stopped_all(void *ud)
{
    (*(int *)ud)++;
    heal_service_info inf;
    heal_service_info_get(F.sup, "one", &inf);
    assert_int_equal(inf.state, HEAL_SVC_STOPPED);
    heal_supervisor_free(F.sup);
    F.sup = NULL;
}

static void test_stop_all_callback(void **state)
{
    (void)state;
    heal_service_config a = supervised("one", "sleep 1000");
    heal_service_config b = supervised("two", "sleep 1000");
    snprintf(b.depends[b.ndepends++], HEAL_NAME_MAX, "one");
    add_ok(&a);
    add_ok(&b);
    start_all_ok();
    assert_true(wait_ev("two", HEAL_SVC_RUNNING, 0, 0, 2000) >= 0);
    int done = 0;
    heal_supervisor_stop_all(F.sup, false, on_stopped_all, &done);
    int64_t t0 = core_mono_ms();
    while (!done && core_mono_ms() - t0 < 3000)
        uv_run(&F.loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);
    assert_null(F.sup);
    for (int i = 0; i < F.npids; i++)
        assert_true(dead(F.pids[i]));
}

static void test_dependency_errors(void **state)
{
    (void)state;
    heal_service_config a = supervised("a", "sleep 1000");
    snprintf(a.depends[a.ndepends++], HEAL_NAME_MAX, "b");
    heal_service_config b = supervised("b", "sleep 1000");
    snprintf(b.depends[b.ndepends++], HEAL_NAME_MAX, "c");
    heal_service_config c = supervised("c", "sleep 1000");
    snprintf(c.depends[c.ndepends++], HEAL_NAME_MAX, "a");
    add_ok(&a);
    add_ok(&b);
    add_ok(&c);
    char err[512];
    assert_int_equal(heal_supervisor_start_all(F.sup, err, sizeof err), -EINVAL);
    printf("cycle: %s\n", err);
    assert_non_null(strstr(err, "cycle"));
    assert_non_null(strstr(err, "a -> b -> c -> a"));
    assert_int_equal(F.nev, 0); /* nothing started */
    assert_int_equal(heal_service_start(F.sup, "a", err, sizeof err), -EINVAL);

    heal_supervisor_free(F.sup);
    heal_supervisor_new(&F.loop, F.dir, &F.sup, err, sizeof err);
    heal_supervisor_set_callback(F.sup, on_ev, NULL);
    heal_service_config x = supervised("x", "sleep 1000");
    snprintf(x.depends[x.ndepends++], HEAL_NAME_MAX, "missing");
    add_ok(&x);
    assert_int_equal(heal_supervisor_start_all(F.sup, err, sizeof err), -EINVAL);
    printf("unknown: %s\n", err);
    assert_non_null(strstr(err, "'x'"));
    assert_non_null(strstr(err, "unknown service 'missing'"));
}

/* ---- bad configs ------------------------------------------------------------- */

static void expect_add_error(const heal_service_config *c, const char *needle)
{
    char err[512] = "";
    int rc = heal_supervisor_add(F.sup, c, err, sizeof err);
    printf("%-10s -> %s\n", c->name, err);
    assert_true(rc < 0);
    assert_non_null(strstr(err, needle));
}

static void test_bad_configs(void **state)
{
    (void)state;
    heal_service_config c = supervised("nocmd", "");
    expect_add_error(&c, "needs a command");
    c = supervised("quote", "sh -c \"x");
    expect_add_error(&c, "unterminated");
    c = supervised("baduser", "sleep 1");
    snprintf(c.user, sizeof c.user, "no-such-user-ippoc");
    expect_add_error(&c, "unknown user 'no-such-user-ippoc'");
    c = supervised("badgroup", "sleep 1");
    snprintf(c.group, sizeof c.group, "no-such-group-ippoc");
    expect_add_error(&c, "unknown group");
    c = supervised("badcwd", "sleep 1");
    snprintf(c.cwd, sizeof c.cwd, "/nonexistent/dir");
    expect_add_error(&c, "not a directory");
    c = supervised("bad/name", "sleep 1");
    expect_add_error(&c, "bad name");
    heal_service_config_init(&c, "ext", HEAL_SVC_EXTERNAL);
    expect_add_error(&c, "pidfile or a match");
    heal_service_config_init(&c, "unit", HEAL_SVC_SYSTEMD);
    snprintf(c.unit, sizeof c.unit, "nginx.service");
    char comm[64] = "";
    heal_svc_pid_comm(1, comm, sizeof comm);
    if (strcmp(comm, "systemd"))
        expect_add_error(&c, "needs systemd as PID 1");
    c = supervised("dup", "sleep 1");
    add_ok(&c);
    expect_add_error(&c, "defined twice");
    /* a command that cannot be executed: start fails with the reason */
    c = supervised("noexec", "/nonexistent/bin/daemon --flag");
    c.autorestart = false;
    add_ok(&c);
    char err[256];
    assert_int_equal(heal_service_start(F.sup, "noexec", err, sizeof err), -EIO);
    printf("noexec -> %s\n", err);
    assert_non_null(strstr(err, "/nonexistent/bin/daemon"));
    heal_service_info inf;
    heal_service_info_get(F.sup, "noexec", &inf);
    assert_int_equal(inf.state, HEAL_SVC_FAILED);
    assert_non_null(strstr(inf.error, "no such file"));
}

/* ---- external ---------------------------------------------------------------- */

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0755);
}

static void test_external_pidfile(void **state)
{
    (void)state;
    char script[256], pidf[256], text[1024];
    pathf(script, sizeof script, "%s/start.sh", F.dir);
    pathf(pidf, sizeof pidf, "%s/ext.pid", F.dir);
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "# daemonizes: the daemon runs on, the script exits\n"
             "sleep 1000 </dev/null >/dev/null 2>&1 &\n"
             "echo $! > %s\n"
             "echo started daemon $!\n",
             pidf);
    write_script(script, text);
    heal_service_config c;
    heal_service_config_init(&c, "extd", HEAL_SVC_EXTERNAL);
    snprintf(c.pidfile, sizeof c.pidfile, "%s", pidf);
    snprintf(c.match, sizeof c.match, "sleep");
    snprintf(c.start_cmd, sizeof c.start_cmd, "/bin/sh %s", script);
    c.stop_timeout_ms = 1000;
    add_ok(&c);
    start_all_ok();
    int r = wait_ev("extd", HEAL_SVC_RUNNING, 0, 0, 3000);
    assert_true(r >= 0);
    pid_t pid = F.evs[r].pid;
    char buf[64];
    core_read_file(pidf, buf, sizeof buf);
    assert_int_equal(pid, atoi(buf));

    /* death detected at once (pidfd), restarted through the start command */
    int from = F.nev;
    int64_t t0 = core_mono_ns();
    kill(pid, SIGKILL);
    int r2 = wait_ev("extd", HEAL_SVC_RUNNING, from, pid, 3000);
    assert_true(r2 >= 0);
    printf("external kill -9 -> RUNNING again: %.1f ms\n", (double)(F.evs[r2].t_ns - t0) / 1e6);
    assert_true(wait_ev("extd", HEAL_SVC_BACKOFF, from, 0, 0) >= 0);
    pid_t pid2 = F.evs[r2].pid;
    assert_int_not_equal(pid2, pid);

    /* restart (no restart command: stop by signal, then the start command) */
    char err[256];
    from = F.nev;
    assert_int_equal(heal_service_restart(F.sup, "extd", err, sizeof err), 0);
    int r3 = wait_ev("extd", HEAL_SVC_RUNNING, from, pid2, 3000);
    assert_true(r3 >= 0);
    assert_true(wait_ev("extd", HEAL_SVC_STOPPED, from, 0, 0) >= 0);
    pid_t pid3 = F.evs[r3].pid;
    int64_t d0 = core_mono_ms();
    while (!dead(pid2) && core_mono_ms() - d0 < 1000)
        uv_run(&F.loop, UV_RUN_ONCE);
    assert_true(dead(pid2));

    /* stop */
    from = F.nev;
    assert_int_equal(heal_service_stop(F.sup, "extd", err, sizeof err), 0);
    assert_true(wait_ev("extd", HEAL_SVC_STOPPED, from, 0, 3000) >= 0);
    assert_true(dead(pid3));
    char tail[4096];
    assert_true(heal_service_log_tail(F.sup, "extd", 50, tail, sizeof tail) > 0);
    assert_non_null(strstr(tail, "cmd: started daemon"));
}

static void test_external_adopts_and_commands(void **state)
{
    (void)state;
    /* a process already running is adopted; restart/stop use the commands */
    char script[256], pidf[256], text[1024];
    pathf(script, sizeof script, "%s/ctl.sh", F.dir);
    pathf(pidf, sizeof pidf, "%s/ext.pid", F.dir);
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "case \"$1\" in\n"
             "start) sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > %s ;;\n"
             "stop) kill $(cat %s) ;;\n"
             "restart) kill $(cat %s); sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > %s ;;\n"
             "esac\n",
             pidf, pidf, pidf, pidf);
    write_script(script, text);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/bin/sh %s start", script);
    assert_int_equal(system(cmd), 0);
    char buf[64];
    core_read_file(pidf, buf, sizeof buf);
    pid_t pid = atoi(buf);
    assert_true(pid > 1);

    heal_service_config c;
    heal_service_config_init(&c, "ctl", HEAL_SVC_EXTERNAL);
    snprintf(c.pidfile, sizeof c.pidfile, "%s", pidf);
    snprintf(c.start_cmd, sizeof c.start_cmd, "/bin/sh %s start", script);
    snprintf(c.stop_cmd, sizeof c.stop_cmd, "/bin/sh %s stop", script);
    snprintf(c.restart_cmd, sizeof c.restart_cmd, "/bin/sh %s restart", script);
    add_ok(&c);
    start_all_ok();
    int r = wait_ev("ctl", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(r >= 0);
    assert_int_equal(F.evs[r].pid, pid);
    assert_string_equal(F.evs[r].reason, "found running");

    char err[256];
    int from = F.nev;
    assert_int_equal(heal_service_restart(F.sup, "ctl", err, sizeof err), 0);
    int r2 = wait_ev("ctl", HEAL_SVC_RUNNING, from, pid, 3000);
    assert_true(r2 >= 0);
    pid_t pid2 = F.evs[r2].pid;
    heal_service_info inf;
    heal_service_info_get(F.sup, "ctl", &inf);
    assert_int_equal(inf.restarts, 1);
    assert_int_equal(inf.pid, pid2);

    from = F.nev;
    assert_int_equal(heal_service_stop(F.sup, "ctl", err, sizeof err), 0);
    assert_true(wait_ev("ctl", HEAL_SVC_STOPPED, from, 0, 3000) >= 0);
    assert_true(dead(pid2));
}

/* ---- systemd through a fake systemctl ---------------------------------------------- */

static void test_systemd_fake_systemctl(void **state)
{
    (void)state;
    char script[256], st[256], text[1024];
    pathf(script, sizeof script, "%s/systemctl", F.dir);
    pathf(st, sizeof st, "%s/unit.state", F.dir);
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "S=%s\n"
             "echo \"$@\" >> $S.calls\n"
             "case \"$1\" in\n"
             "start|restart) echo active > $S ;;\n"
             "stop) echo inactive > $S ;;\n"
             "kill) ;;\n"
             "show) s=$(cat $S 2>/dev/null || echo inactive); echo ActiveState=$s;"
             " if [ $s = active ]; then echo MainPID=4242; else echo MainPID=0; fi ;;\n"
             "esac\n",
             st);
    write_script(script, text);
    heal_supervisor_set_systemctl(F.sup, script, true);
    heal_service_config c;
    heal_service_config_init(&c, "unit", HEAL_SVC_SYSTEMD);
    snprintf(c.unit, sizeof c.unit, "demo.service");
    c.interval_ms = 50;
    add_ok(&c);
    start_all_ok();
    int r = wait_ev("unit", HEAL_SVC_RUNNING, 0, 0, 3000);
    assert_true(r >= 0);
    assert_int_equal(F.evs[r].pid, 4242);
    char err[256];
    assert_int_equal(heal_service_signal(F.sup, "unit", SIGHUP, err, sizeof err), 0);
    int from = F.nev;
    assert_int_equal(heal_service_stop(F.sup, "unit", err, sizeof err), 0);
    assert_true(wait_ev("unit", HEAL_SVC_STOPPED, from, 0, 3000) >= 0);
    /* the unit going down by itself is noticed by polling */
    assert_int_equal(heal_service_start(F.sup, "unit", err, sizeof err), 0);
    from = F.nev;
    assert_true(wait_ev("unit", HEAL_SVC_RUNNING, from, 0, 3000) >= 0);
    write_script(st, "failed\n");
    from = F.nev;
    assert_true(wait_ev("unit", HEAL_SVC_FAILED, from, 0, 3000) >= 0);
    char calls[1024], path[300];
    pathf(path, sizeof path, "%s.calls", st);
    assert_true(core_read_file(path, calls, sizeof calls) > 0);
    assert_non_null(strstr(calls, "start demo.service"));
    assert_non_null(strstr(calls, "kill -s HUP demo.service"));
    assert_non_null(strstr(calls, "stop demo.service"));
    assert_non_null(strstr(calls, "show -p ActiveState,MainPID demo.service"));
}

/* ---- free ------------------------------------------------------------------ */

static void test_free_leaves_nothing(void **state)
{
    (void)state;
    char cmd[512], pidf[256];
    pathf(pidf, sizeof pidf, "%s/child.pid", F.dir);
    snprintf(cmd, sizeof cmd, "/bin/sh -c \"trap '' TERM; sleep 1000 & echo $! > %s; wait\"", pidf);
    heal_service_config c = supervised("stubborn", cmd);
    c.stop_timeout_ms = 200;
    add_ok(&c);
    heal_service_config n = supervised("nice", "sleep 1000");
    add_ok(&n);
    start_all_ok();
    int i = wait_ev("stubborn", HEAL_SVC_RUNNING, 0, 0, 2000);
    int j = wait_ev("nice", HEAL_SVC_RUNNING, 0, 0, 2000);
    assert_true(i >= 0 && j >= 0);
    char buf[64];
    int64_t w0 = core_mono_ms();
    while ((core_read_file(pidf, buf, sizeof buf) <= 0 || !strchr(buf, '\n')) && core_mono_ms() - w0 < 2000)
        uv_run(&F.loop, UV_RUN_ONCE);
    pid_t kid = atoi(buf);
    assert_true(kid > 1);
    int64_t t0 = core_mono_ms();
    heal_supervisor_free(F.sup);
    F.sup = NULL;
    int64_t took = core_mono_ms() - t0;
    printf("free: %lld ms\n", (long long)took);
    assert_true(took < 2000);
    assert_true(dead(F.evs[i].pid));
    assert_true(dead(F.evs[j].pid));
    int64_t k0 = core_mono_ms();
    while (!dead(kid) && core_mono_ms() - k0 < 1000)
        uv_run(&F.loop, UV_RUN_NOWAIT);
    assert_true(dead(kid));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_argv),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_systemctl_show_parse),
        cmocka_unit_test_setup_teardown(test_kill9_healed_fast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_trials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_resets_after_healthy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_kills_group_ignoring_term, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_capture_and_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_cwd_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signal_action, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependency_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_all_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependent_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_loop_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ready_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt_recorded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dependency_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_configs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_pidfile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_external_adopts_and_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_systemd_fake_systemctl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_leaves_nothing, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
