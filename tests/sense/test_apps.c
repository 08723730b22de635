/* test_apps.c: the `apps` collector (src/sense/apps.c) against fixture proc
 * roots with known deltas, and against this machine's /proc.
 *
 * fixtures/apps1 is a fake proc root; fixtures/apps2 is laid over it two
 * seconds later:
 *   1 systemd;  2 kthreadd and 12 a kworker (kernel threads: PF_KTHREAD,
 *   ppid 2);  100 and 101 "my app) (x" (a comm with spaces and ')'; the test
 *   makes 101/io unreadable);  200 a zombie without memory or cpu (never gets
 *   series);  300 bash (removed by the test later);  400 nginx, its pid
 *   reused in apps2 (new start time, smaller counters);  401 nginx;
 *   500 cron, new in apps2 (only primes).
 * Only the apps group is enabled; values are read back through the
 * recording spy over the real memory store (mem_spy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem_spy.h"
#include "sense/sense_int.h"
#include "tree.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define T0 1700000000000LL /* a whole second */

typedef struct fx {
    char dir[256], proc[300];
    core_config cfg;
    mem_t *m;
    sense_t *s;
} fx;

static fx *fx_new(const char *tree)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-apps-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    if (tree) {
        char src[512];
        snprintf(src, sizeof src, "%s/%s", fixtures_dir(), tree);
        assert_int_equal(tree_copy(src, f->proc), 0);
    } else {
        assert_int_equal(mkdir(f->proc, 0755), 0);
    }
    core_config_defaults(&f->cfg);
    core_sncpy(f->cfg.proc_root, sizeof f->cfg.proc_root, f->proc);
    core_sncpy(f->cfg.sys_root, sizeof f->cfg.sys_root, f->dir);
    for (int i = 0; i < f->cfg.ngroups; i++)
        f->cfg.groups[i].enabled = !strcmp(f->cfg.groups[i].name, "apps");
    f->m = fm_open();
    assert_non_null(f->m);
    char err[256];
    assert_int_equal(sense_open(&f->s, &f->cfg, f->m, err, sizeof err), 0);
    return f;
}

static void fx_free(fx *f)
{
    sense_close(f->s);
    fm_close(f->m);
    core_config_free(&f->cfg);
    tree_rm(f->dir);
    free(f);
}

/* Root reads every file whatever its mode: to see an unreadable file as an
 * unprivileged daemon would, drop the DAC override capabilities from the
 * effective set around a run (they stay permitted, so they come back). */
static void dac_caps(bool on)
{
    if (geteuid() != 0)
        return;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    assert_int_equal(syscall(SYS_capget, &h, d), 0);
    uint32_t bits = (1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH);
    if (on)
        d[0].effective |= bits & d[0].permitted;
    else
        d[0].effective &= ~bits;
    assert_int_equal(syscall(SYS_capset, &h, d), 0);
}

static int collect(fx *f, int64_t t)
{
    fm_round(f->m);
    dac_caps(false);
    int n = sense_collect(f->s, t);
    dac_caps(true);
    assert_int_equal(fm_double_puts(f->m), 0);
    for (int i = 0; i < fm_count(f->m); i++) {
        const fm_series *se = fm_at(f->m, i);
        if (se->kind == MEM_RATE && !isnan(se->value) && se->value < 0)
            fail_msg("negative rate %s{%s} = %g", se->name, se->labels, se->value);
    }
    return n;
}

static void pathf(char *out, size_t n, fx *f, const char *rel)
{
    snprintf(out, n, "%s/%s", f->proc, rel);
}

#define V(name, app) fm_get(f->m, name, "app=\"" app "\"")
#define NEAR(a, b) assert_float_equal((a), (double)(b), 1e-6 * (1 + fabs((double)(b))))
#define NONE(name, app) assert_null(fm_find(f->m, name, "app=\"" app "\""))

static void test_fixture_moments(void **st)
{
    fx *f = fx_new("apps1");
    double tck = (double)sysconf(_SC_CLK_TCK), pg = (double)sysconf(_SC_PAGESIZE);
    char p[600];
    pathf(p, sizeof p, f, "101/io");
    assert_int_equal(chmod(p, 0), 0);

    /* first run: everything only primes, and no app has two runs yet */
    collect(f, T0);
    assert_int_equal(fm_count_prefix(f->m, "apps.", false), 0);
    sn_col *c = sn_col_find(f->s, "apps");
    assert_non_null(c);
    assert_true(c->available);
    assert_non_null(strstr(c->note, "not readable")); /* 101/io, said once */

    /* two seconds later */
    char src[512];
    snprintf(src, sizeof src, "%s/apps2", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
    collect(f, T0 + 2000);

    /* kernel threads (pids 2 and 12): 40 ticks of system time in 2 s, 16 KiB
     * written; no fds counted, never-non-zero rates have no series */
    NEAR(V("apps.processes", "kernel"), 2);
    NEAR(V("apps.threads", "kernel"), 2);
    NEAR(V("apps.memory_rss_bytes", "kernel"), 0);
    NEAR(V("apps.cpu_percent", "kernel"), 40 * 100 / tck / 2);
    NEAR(V("apps.cpu_system_percent", "kernel"), 40 * 100 / tck / 2);
    NONE("apps.cpu_user_percent", "kernel");
    NEAR(V("apps.write_bytes_per_second", "kernel"), 8192);
    NONE("apps.read_bytes_per_second", "kernel");
    NONE("apps.fds", "kernel");
    NONE("apps.processes", "kthreadd");
    NONE("apps.processes", "kworker/0:1-events");

    NEAR(V("apps.processes", "systemd"), 1);
    NEAR(V("apps.memory_rss_bytes", "systemd"), 3000 * pg);
    NEAR(V("apps.cpu_percent", "systemd"), 14 * 100 / tck / 2);
    NEAR(V("apps.cpu_user_percent", "systemd"), 10 * 100 / tck / 2);
    NEAR(V("apps.cpu_system_percent", "systemd"), 4 * 100 / tck / 2);
    NEAR(V("apps.minor_faults_per_second", "systemd"), 50);
    NEAR(V("apps.major_faults_per_second", "systemd"), 1);
    NEAR(V("apps.read_bytes_per_second", "systemd"), 20480);
    NONE("apps.write_bytes_per_second", "systemd");
    NEAR(V("apps.fds", "systemd"), 4);

    /* the comm with spaces and ')': both processes merge; 101's io is
     * unreadable, so only 100's counts */
    NEAR(V("apps.processes", "my app) (x"), 2);
    NEAR(V("apps.threads", "my app) (x"), 5);
    NEAR(V("apps.memory_rss_bytes", "my app) (x"), 1600 * pg);
    NEAR(V("apps.cpu_percent", "my app) (x"), 60 * 100 / tck / 2);
    NEAR(V("apps.cpu_user_percent", "my app) (x"), 50 * 100 / tck / 2);
    NEAR(V("apps.cpu_system_percent", "my app) (x"), 10 * 100 / tck / 2);
    NEAR(V("apps.minor_faults_per_second", "my app) (x"), 100);
    NEAR(V("apps.read_bytes_per_second", "my app) (x"), 4096);
    NEAR(V("apps.fds", "my app) (x"), 4);

    /* nginx: pid 400 was reused (new start time, smaller counters): it only
     * primes; the rate is 401's alone, neither huge nor negative */
    NEAR(V("apps.processes", "nginx"), 2);
    NEAR(V("apps.memory_rss_bytes", "nginx"), 2400 * pg);
    NEAR(V("apps.cpu_percent", "nginx"), 20 * 100 / tck / 2);
    NEAR(V("apps.cpu_user_percent", "nginx"), 10 * 100 / tck / 2);
    NEAR(V("apps.write_bytes_per_second", "nginx"), 1024);
    NONE("apps.minor_faults_per_second", "nginx");
    NEAR(V("apps.fds", "nginx"), 7);

    NEAR(V("apps.processes", "bash"), 1);
    NEAR(V("apps.cpu_percent", "bash"), 10 * 100 / tck / 2);
    NONE("apps.cpu_system_percent", "bash");

    /* no memory, no cpu, no io: no series at all */
    assert_int_equal(fm_count_prefix(f->m, "apps.", false), fm_count(f->m));
    for (int i = 0; i < fm_count(f->m); i++)
        if (strstr(fm_at(f->m, i)->labels, "defunct"))
            fail_msg("series for the idle zombie: %s", fm_at(f->m, i)->name);
    /* cron appeared this run: primes only */
    NONE("apps.processes", "cron");

    /* one second later: bash is gone, the reused pid 400 counts now */
    pathf(p, sizeof p, f, "300");
    assert_int_equal(tree_rm(p), 0);
    pathf(p, sizeof p, f, "400/stat");
    file_put(p, "400 (nginx) S 1 400 400 0 -1 4194560 10 0 0 0 21 0 0 0 20 0 1 0 5000 104857600 900 "
                "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n");
    collect(f, T0 + 3000);
    NEAR(V("apps.cpu_percent", "nginx"), 20 * 100 / tck);
    NEAR(V("apps.cpu_system_percent", "nginx"), 0);
    NEAR(V("apps.cpu_percent", "systemd"), 0);
    NEAR(V("apps.write_bytes_per_second", "kernel"), 0);
    NEAR(V("apps.processes", "cron"), 1);
    NEAR(V("apps.memory_rss_bytes", "cron"), 400 * pg);
    NEAR(V("apps.fds", "cron"), 1);
    NONE("apps.cpu_percent", "cron"); /* has not used any yet */
    /* the app that disappeared: every series it has gets one 0 ... */
    NEAR(V("apps.processes", "bash"), 0);
    NEAR(V("apps.threads", "bash"), 0);
    NEAR(V("apps.memory_rss_bytes", "bash"), 0);
    NEAR(V("apps.fds", "bash"), 0);
    NEAR(V("apps.cpu_percent", "bash"), 0);
    NEAR(V("apps.cpu_user_percent", "bash"), 0);
    /* ... then nothing */
    collect(f, T0 + 4000);
    assert_true(isnan(V("apps.processes", "bash")));
    assert_true(isnan(V("apps.cpu_percent", "bash")));
    NEAR(V("apps.processes", "nginx"), 2);

    /* a pid whose stat did not change did not run: its io is not read, and
     * counts as 0 ... */
    pathf(p, sizeof p, f, "1/io");
    file_put(p, "rchar: 10\nwchar: 10\nsyscr: 1\nsyscw: 1\nread_bytes: 1140960\n"
                "write_bytes: 500000\ncancelled_write_bytes: 0\n"); /* +100000 */
    collect(f, T0 + 5000);
    NEAR(V("apps.read_bytes_per_second", "systemd"), 0);
    /* ... until its staggered re-read (every 10 runs: pid 1 at run 9), where
     * the IO is averaged over the span since its last reading (run 2, 7 s) */
    for (int64_t t = T0 + 6000; t <= T0 + 8000; t += 1000) {
        collect(f, t);
        NEAR(V("apps.read_bytes_per_second", "systemd"), 0);
    }
    collect(f, T0 + 9000);
    NEAR(V("apps.read_bytes_per_second", "systemd"), 100000.0 / 7);
    NEAR(V("apps.fds", "systemd"), 4);
    collect(f, T0 + 10000);
    NEAR(V("apps.read_bytes_per_second", "systemd"), 0);
    fx_free(f);
}

static void put_proc(fx *f, int pid, const char *comm, uint64_t rss)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%d", f->proc, pid);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/%d/stat", f->proc, pid);
    assert_int_equal(file_putf(p, "%d (%s) S 1 %d %d 0 -1 4194560 1 0 0 0 1 1 0 0 20 0 1 0 %d 1000 %llu "
                                  "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                               pid, comm, pid, pid, pid, (unsigned long long)rss), 0);
}

static int count_series(fx *f, const char *name, bool put_only)
{
    int n = 0;
    for (int i = 0; i < fm_count(f->m); i++) {
        const fm_series *se = fm_at(f->m, i);
        if (!strcmp(se->name, name) && (!put_only || se->puts))
            n++;
    }
    return n;
}

/* At most 200 named groups, the rest in "other"; a group gone for 60 runs
 * frees its slot. */
static void test_group_bound(void **st)
{
    fx *f = fx_new(NULL);
    char name[32];
    for (int i = 0; i < 210; i++) {
        snprintf(name, sizeof name, "app%03d", i);
        put_proc(f, 1000 + i, name, 10);
    }
    put_proc(f, 999, "idle", 0); /* takes a slot, but gets no series */
    int64_t t = T0;
    collect(f, t += 1000);
    collect(f, t += 1000);
    assert_int_equal(count_series(f, "apps.processes", true), 200);
    NEAR(V("apps.processes", "app000"), 1);
    NEAR(V("apps.processes", "app198"), 1);
    NONE("apps.processes", "app199");
    NEAR(V("apps.processes", "other"), 11);
    NEAR(V("apps.memory_rss_bytes", "other"), 110.0 * (double)sysconf(_SC_PAGESIZE));
    NONE("apps.processes", "idle");
    NONE("apps.processes", "kernel"); /* no kernel threads in this tree */

    /* 100 apps go away: one 0 each, then their slots free up after 60 runs */
    char p[600];
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof p, "%s/%d", f->proc, 1000 + i);
        assert_int_equal(tree_rm(p), 0);
    }
    collect(f, t += 1000);
    NEAR(V("apps.processes", "app000"), 0);
    assert_int_equal(count_series(f, "apps.processes", true), 200);
    for (int k = 0; k < 60; k++)
        collect(f, t += 1000);
    assert_true(isnan(V("apps.processes", "app000")));
    assert_int_equal(count_series(f, "apps.processes", true), 100);
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "new%d", i);
        put_proc(f, 5000 + i, name, 10);
    }
    collect(f, t += 1000);
    collect(f, t += 1000);
    NEAR(V("apps.processes", "new0"), 1);
    NEAR(V("apps.processes", "new4"), 1);
    NEAR(V("apps.processes", "other"), 11); /* those stay where they were */
    fx_free(f);
}

/* An unreadable proc root makes the group unavailable with a reason. */
static void test_missing_root(void **st)
{
    fx *f = fx_new(NULL);
    tree_rm(f->proc);
    collect(f, T0);
    sn_col *c = sn_col_find(f->s, "apps");
    assert_false(c->available);
    assert_non_null(strstr(c->note, "No such file"));
    fx_free(f);
}

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int count_own_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = sn_count_dir(d, false, dirfd(d));
    closedir(d);
    return n;
}

/* This machine: the test process appears under its comm; prints the cost. */
static void test_real_proc(void **st)
{
    core_config cfg;
    core_config_defaults(&cfg);
    for (int i = 0; i < cfg.ngroups; i++)
        cfg.groups[i].enabled = !strcmp(cfg.groups[i].name, "apps");
    char comm[64] = "";
    FILE *fp = fopen("/proc/self/comm", "r");
    assert_non_null(fp);
    assert_non_null(fgets(comm, sizeof comm, fp));
    fclose(fp);
    comm[strcspn(comm, "\n")] = 0;
    mem_t *m = fm_open();
    sense_t *s;
    char err[256];
    int fds_before = count_own_fds();
    assert_int_equal(sense_open(&s, &cfg, m, err, sizeof err), 0);
    sn_col *c = sn_col_find(s, "apps");
    int64_t t0 = core_now_ms() / 1000 * 1000;
    fm_round(m);
    sense_collect(s, t0);
    double first_us = c->cost_us;
    msleep(1000);
    fm_round(m);
    sense_collect(s, t0 + 1000);
    assert_true(c->available);
    assert_int_equal(fm_double_puts(m), 0);
    char lab[128];
    snprintf(lab, sizeof lab, "app=\"%s\"", comm);
    assert_true(fm_get(m, "apps.processes", lab) >= 1);
    assert_true(fm_get(m, "apps.memory_rss_bytes", lab) > 0);
    assert_true(fm_get(m, "apps.threads", lab) >= 1);
    assert_true(fm_get(m, "apps.fds", lab) >= 3);
    assert_true(fm_get(m, "apps.cpu_percent", lab) >= 0 || isnan(fm_get(m, "apps.cpu_percent", lab)));
    assert_true(fm_get(m, "apps.processes", "app=\"kernel\"") >= 1 ||
                isnan(fm_get(m, "apps.processes", "app=\"kernel\""))); /* none in a container */

    /* cost: steady-state runs a few hundred ms apart (caches partly cold,
     * as at the daemon's 1 s cadence) */
    int pause = getenv("SENSE_PERF_SLEEP_MS") ? atoi(getenv("SENSE_PERF_SLEEP_MS")) : 200;
    const int runs = 10;
    double sum = 0, max = 0;
    for (int k = 2; k < runs + 2; k++) {
        msleep(pause);
        fm_round(m);
        sense_collect(s, t0 + k * 1000);
        sum += c->cost_us;
        max = c->cost_us > max ? c->cost_us : max;
    }
    int nproc = 0;
    double sumproc = 0;
    for (int i = 0; i < fm_count(m); i++) {
        const fm_series *se = fm_at(m, i);
        if (!strcmp(se->name, "apps.processes") && !isnan(se->value)) {
            nproc++;
            sumproc += se->value;
        }
    }
    printf("apps: %d series put (%d registered), %d apps with %.0f processes; "
           "%.0f us per run (mean of %d, %d ms apart), max %.0f us, first run %.0f us; %s\n",
           c->nseries, fm_count(m), nproc, sumproc, sum / runs, runs, pause, max, first_us, c->note);
    if (getenv("SENSE_DUMP"))
        for (int i = 0; i < fm_count(m); i++) {
            const fm_series *se = fm_at(m, i);
            printf("%s{%s} %g %s\n", se->name, se->labels, se->value, se->unit);
        }
    sense_close(s);
    assert_int_equal(count_own_fds(), fds_before); /* every kept file closed */
    fm_close(m);
    core_config_free(&cfg);
}

/* utime + stime of a pid, in clock ticks */
static uint64_t pid_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = 0;
    sn_pidstat ps;
    assert_int_equal(sn_parse_pid_stat(buf, n, &ps), 0);
    return ps.utime + ps.stime;
}

/* This machine: a sleeping process is read every few runs only, yet is
 * counted on every run, and the cpu it uses after waking up is all
 * reported, within APPS_SLEEP_EVERY runs. */
static void test_real_sleeper(void **st)
{
    int go[2], done[2];
    assert_int_equal(pipe(go), 0);
    assert_int_equal(pipe(done), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(go[1]);
        close(done[0]);
        prctl(PR_SET_NAME, "ippoc-sleeper");
        char ch;
        while (read(go[0], &ch, 1) == 1) { /* sleeps in read(); each byte: burn ~200 ms of cpu */
            struct timespec a, b;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
            do
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
            while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 200000000L);
            if (write(done[1], "x", 1) != 1)
                _exit(1);
        }
        _exit(0);
    }
    close(go[0]);
    close(done[1]);

    core_config cfg;
    core_config_defaults(&cfg);
    for (int i = 0; i < cfg.ngroups; i++)
        cfg.groups[i].enabled = !strcmp(cfg.groups[i].name, "apps");
    mem_t *m = fm_open();
    sense_t *s;
    char err[256];
    assert_int_equal(sense_open(&s, &cfg, m, err, sizeof err), 0);
    const char *lab = "app=\"ippoc-sleeper\"";
    int64_t t0 = core_now_ms() / 1000 * 1000;
    int k = 0;
    /* asleep: after a few runs it is carried, yet counted on every run */
    for (; k < 12; k++) {
        fm_round(m);
        sense_collect(s, t0 + k * 1000);
        if (k >= 2) {
            assert_float_equal(fm_get(m, "apps.processes", lab), 1, 0);
            assert_true(fm_get(m, "apps.memory_rss_bytes", lab) > 0);
        }
        double cpu = fm_get(m, "apps.cpu_percent", lab); /* not put until first non-zero */
        if (k >= 4)
            assert_true(isnan(cpu) || cpu == 0);
    }
    /* wakes up, burns, sleeps again: its ticks all show within a few runs */
    uint64_t before = pid_ticks(child);
    char ch;
    assert_int_equal(write(go[1], "x", 1), 1);
    assert_int_equal(read(done[0], &ch, 1), 1);
    uint64_t used = pid_ticks(child) - before;
    assert_true(used >= 10); /* ~20 ticks at 100 Hz */
    double seen = 0;
    for (int j = 0; j < 4; j++, k++) { /* APPS_SLEEP_EVERY */
        fm_round(m);
        sense_collect(s, t0 + k * 1000);
        double v = fm_get(m, "apps.cpu_percent", lab);
        if (isnan(v))
            v = 0; /* no cpu in that run */
        seen += v / 100.0 * (double)sysconf(_SC_CLK_TCK); /* ticks in this 1 s run */
    }
    assert_float_equal(seen, (double)used, 0.5);

    close(go[1]); /* the child's read() returns 0: it exits */
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    close(done[0]);
    sense_close(s);
    fm_close(m);
    core_config_free(&cfg);
}

int main(void)
{
    core_log_setup(CORE_LOG_WARN, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_moments),
        cmocka_unit_test(test_group_bound),
        cmocka_unit_test(test_missing_root),
        cmocka_unit_test(test_real_proc),
        cmocka_unit_test(test_real_sleeper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
