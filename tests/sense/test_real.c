/* test_real.c: every collector against this machine's real /proc and /sys:
 * values must be plausible (memory total equals MemTotal read directly, the
 * cpu states of the total add up to 100, this process is found when
 * watched), every collector is available or says why not, and the cost of
 * a tick is printed (series per group, microseconds per collector). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem_spy.h"
#include "sense/sense_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Listening sockets in the procfs tables. */
static double procfs_listen(void)
{
    uint64_t counts[16] = {0};
    const char *tabs[2] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int t = 0; t < 2; t++) {
        FILE *tf = fopen(tabs[t], "r");
        if (!tf)
            continue;
        static char big[1 << 20];
        size_t len = fread(big, 1, sizeof big, tf);
        fclose(tf);
        sn_tcp_count(big, len, true, counts);
    }
    return (double)counts[10];
}

static void test_real_machine(void **st)
{
    core_config cfg;
    core_config_defaults(&cfg);
    char comm[64] = "";
    FILE *f = fopen("/proc/self/comm", "r");
    assert_non_null(f);
    assert_non_null(fgets(comm, sizeof comm, f));
    fclose(f);
    comm[strcspn(comm, "\n")] = 0;
    cfg.watch_process[cfg.nwatch_process++] = strdup(comm);
    cfg.watch_process[cfg.nwatch_process++] = strdup("no-such-process-xyz");
    cfg.watch_cgroup[cfg.nwatch_cgroup++] = strdup("*");
    cfg.watch_cgroup[cfg.nwatch_cgroup++] = strdup("/");
    mem_t *m = fm_open();
    sense_t *s;
    char err[256];
    assert_int_equal(sense_open(&s, &cfg, m, err, sizeof err), 0);

    int64_t t0 = core_now_ms() / 1000 * 1000;
    fm_round(m);
    double listen_before = procfs_listen();
    sense_collect(s, t0);
    double listen_after = procfs_listen();
    msleep(1000);
    fm_round(m);
    int n = sense_collect(s, t0 + 1000);
    assert_true(n > 100);
    assert_int_equal(fm_double_puts(m), 0);

    /* memory total = MemTotal */
    unsigned long long kb = 0;
    f = fopen("/proc/meminfo", "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "MemTotal: %llu kB", &kb), 1);
    fclose(f);
    assert_float_equal(fm_get(m, "memory.total_bytes", ""), (double)kb * 1024, 0.5);

    /* cpu states of the total add up to 100 */
    double sum = 0;
    for (int i = 0; i < fm_count(m); i++) {
        const fm_series *se = fm_at(m, i);
        if (strcmp(se->name, "cpu.usage_percent") || strncmp(se->labels, "cpu=\"total\"", 11) ||
            strstr(se->labels, "guest") || isnan(se->value))
            continue;
        sum += se->value;
    }
    assert_float_equal(sum, 100.0, 0.01);

    /* this very process is watched and found */
    char lab[256];
    snprintf(lab, sizeof lab, "name=\"%s\",pid=\"%d\"", comm, (int)getpid());
    assert_true(fm_get(m, "process.rss_bytes", lab) > 0);
    assert_true(fm_get(m, "process.fds", lab) >= 3);
    snprintf(lab, sizeof lab, "name=\"%s\"", comm);
    assert_float_equal(fm_get(m, "process.count", lab), 1, 0);
    assert_float_equal(fm_get(m, "process.count", "name=\"no-such-process-xyz\""), 0, 0);
    assert_true(fm_get(m, "self.rss_bytes", "") > 0);
    assert_true(fm_get(m, "self.fds", "") >= 3);
    assert_true(fm_get(m, "processes.count", "") >= 1);
    assert_false(isnan(fm_get(m, "load.load1", "")));

    /* the listening sockets counted (netlink on the live system, at t0; the
     * run at t0 + 1 s puts that count again) match the procfs tables read
     * just before and after that count (other processes may open or close
     * some meanwhile) */
    double listen = fm_get(m, "tcp.connections", "state=\"listen\"");
    double lo = listen_before < listen_after ? listen_before : listen_after;
    double hi = listen_before < listen_after ? listen_after : listen_before;
    if (hi > 0)
        assert_true(listen >= lo && listen <= hi);
    else
        assert_true(isnan(listen) || listen == 0);

    /* steady state: time a run of ticks */
    const int ticks = 20;
    int pause = getenv("SENSE_PERF_SLEEP_MS") ? atoi(getenv("SENSE_PERF_SLEEP_MS")) : 50;
    double total_us = 0, max_us = 0;
    for (int k = 2; k < ticks + 2; k++) {
        msleep(pause);
        fm_round(m);
        sense_collect(s, t0 + k * 1000);
        sense_collector_info info[32];
        int nc = sense_collectors(s, info, 32);
        double t = 0;
        for (int i = 0; i < nc; i++)
            t += info[i].last_cost_us;
        total_us += t;
        max_us = t > max_us ? t : max_us;
    }
    sense_collector_info info[32];
    int nc = sense_collectors(s, info, 32);
    int nseries = 0;
    printf("%-11s %-5s %7s %9s  %s\n", "group", "avail", "series", "cost_us", "note");
    for (int i = 0; i < nc; i++) {
        printf("%-11s %-5s %7d %9.1f  %s\n", info[i].name, info[i].available ? "yes" : "no",
               info[i].nseries, info[i].last_cost_us, info[i].note);
        nseries += info[i].nseries;
        if (!info[i].available)
            assert_true(info[i].note[0]);
        assert_true(info[i].enabled);
    }
    printf("total: %d series put per tick, %d registered; %.1f us per tick (mean of %d), max %.1f us\n",
           nseries, fm_count(m), total_us / ticks, ticks, max_us);
    if (getenv("SENSE_DUMP"))
        for (int i = 0; i < fm_count(m); i++) {
            const fm_series *se = fm_at(m, i);
            printf("%s{%s} %g %s\n", se->name, se->labels, se->value, se->unit);
        }
    sense_close(s);
    fm_close(m);
    core_config_free(&cfg);
}

int main(void)
{
    core_log_setup(CORE_LOG_INFO, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_machine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
