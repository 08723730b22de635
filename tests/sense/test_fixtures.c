/* test_fixtures.c: every collector against fixture trees with known counter
 * deltas (fixtures/proc1 then fixtures/proc2 one second later, a synthetic
 * sys tree for block devices and cgroup v2, another for cgroup v1), so each
 * rate, percent and filter below can be checked by hand. Values are read
 * back through a stand-in memory store (mem_spy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem_spy.h"
#include "sense/sense_int.h"
#include "tree.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL /* a whole second */

typedef struct fx {
    char dir[256], proc[300], sys[300];
    core_config cfg;
    mem_t *m;
    sense_t *s;
} fx;

static fx *fx_new(const char *sys_tree, bool with_psi)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-sense-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    snprintf(f->sys, sizeof f->sys, "%s/sys", f->dir);
    char src[512];
    snprintf(src, sizeof src, "%s/proc1", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
    snprintf(src, sizeof src, "%s/%s", fixtures_dir(), sys_tree);
    assert_int_equal(tree_copy(src, f->sys), 0);
    if (!with_psi) {
        char p[400];
        snprintf(p, sizeof p, "%s/pressure", f->proc);
        tree_rm(p);
    }
    core_config_defaults(&f->cfg);
    core_sncpy(f->cfg.proc_root, sizeof f->cfg.proc_root, f->proc);
    core_sncpy(f->cfg.sys_root, sizeof f->cfg.sys_root, f->sys);
    f->cfg.watch_process[f->cfg.nwatch_process++] = strdup("nginx");
    /* the fixture machine has no GPU, whatever this one has */
    core_sncpy(f->cfg.sense_nvml_library, sizeof f->cfg.sense_nvml_library, "/nonexistent/libnvidia-ml.so.1");
    f->m = fm_open();
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

static void advance(fx *f)
{
    char src[512];
    snprintf(src, sizeof src, "%s/proc2", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
}

static int collect(fx *f, int64_t t)
{
    fm_round(f->m);
    int n = sense_collect(f->s, t);
    assert_int_equal(fm_double_puts(f->m), 0);
    return n;
}

#define V(name, labels) fm_get(f->m, name, labels)
#define NEAR(a, b) assert_float_equal((a), (double)(b), 1e-6 * (1 + fabs((double)(b))))

static void test_rates_from_two_snapshots(void **st)
{
    fx *f = fx_new("sys", true);
    int n1 = collect(f, T0);
    assert_true(n1 > 50);
    /* first reading only primes rates */
    assert_true(isnan(V("cpu.usage_percent", "cpu=\"total\",state=\"user\"")));
    assert_true(isnan(V("disk.reads_per_second", "device=\"vda\"")));
    NEAR(V("load.load1", ""), 0.5);

    advance(f);
    char path[512];
    snprintf(path, sizeof path, "%s/fs/cgroup/system.slice/nginx.service/cpu.stat", f->sys);
    file_put(path, "usage_usec 5500000\nuser_usec 0\nsystem_usec 0\nnr_periods 100\nnr_throttled 15\n"
                   "throttled_usec 300000\nnr_bursts 0\nburst_usec 0\n");
    snprintf(path, sizeof path, "%s/fs/cgroup/system.slice/nginx.service/io.stat", f->sys);
    file_put(path, "8:0 rbytes=11000 wbytes=4000 rios=1 wios=1 dbytes=0 dios=0\n"
                   "253:0 rbytes=1000 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n");
    collect(f, T0 + 1000);

    /* cpu: deltas cpu0 user+50 system+25 idle+25, cpu1 user+10 idle+90 */
    NEAR(V("cpu.usage_percent", "cpu=\"total\",state=\"user\""), 30.0);
    NEAR(V("cpu.usage_percent", "cpu=\"total\",state=\"system\""), 12.5);
    NEAR(V("cpu.usage_percent", "cpu=\"total\",state=\"idle\""), 57.5);
    NEAR(V("cpu.usage_percent", "cpu=\"total\",state=\"iowait\""), 0.0);
    NEAR(V("cpu.usage_percent", "cpu=\"cpu0\",state=\"user\""), 50.0);
    NEAR(V("cpu.usage_percent", "cpu=\"cpu0\",state=\"idle\""), 25.0);
    NEAR(V("cpu.usage_percent", "cpu=\"cpu1\",state=\"idle\""), 90.0);
    assert_null(fm_find(f->m, "cpu.usage_percent", "cpu=\"total\",state=\"irq\"")); /* never non-zero */
    assert_null(fm_find(f->m, "cpu.usage_percent", "cpu=\"cpu0\",state=\"guest\""));
    NEAR(V("cpu.context_switches_per_second", ""), 1000);
    NEAR(V("cpu.forks_per_second", ""), 10);
    NEAR(V("cpu.interrupts_per_second", ""), 500);
    NEAR(V("cpu.procs_running", ""), 5);
    NEAR(V("cpu.procs_blocked", ""), 1);

    NEAR(V("load.load1", ""), 1.5);
    NEAR(V("load.load15", ""), 0.2);

    NEAR(V("memory.total_bytes", ""), 24000000.0 * 1024);
    NEAR(V("memory.used_bytes", ""), 4000000.0 * 1024);
    NEAR(V("memory.used_percent", ""), 100.0 / 6);
    NEAR(V("memory.page_faults_per_second", ""), 2000);
    NEAR(V("memory.major_page_faults_per_second", ""), 4);
    NEAR(V("memory.swap_total_bytes", ""), 0);
    assert_null(fm_find(f->m, "memory.swap_used_bytes", "")); /* no swap */
    assert_null(fm_find(f->m, "memory.swap_in_pages_per_second", ""));

    NEAR(V("vmstat.pgpgin_per_second", ""), 100);
    NEAR(V("vmstat.nr_dirty", ""), 150);
    assert_null(fm_find(f->m, "vmstat.pgfault_per_second", "")); /* in memory.* */

    NEAR(V("psi.some_avg10_percent", "resource=\"cpu\""), 3.0);
    NEAR(V("psi.some_stall_us_per_second", "resource=\"cpu\""), 50000);
    NEAR(V("psi.full_stall_us_per_second", "resource=\"memory\""), 2000);
    NEAR(V("psi.full_avg10_percent", "resource=\"io\""), 0.5);
    assert_null(fm_find(f->m, "psi.full_avg10_percent", "resource=\"cpu\""));

    /* disk: vda reads+100 (800 sectors, 50 ms), writes+10 (80 sectors, 30 ms),
     * io_ticks+250 ms; partitions and idle devices add nothing */
    NEAR(V("disk.reads_per_second", "device=\"vda\""), 100);
    NEAR(V("disk.read_bytes_per_second", "device=\"vda\""), 409600);
    NEAR(V("disk.writes_per_second", "device=\"vda\""), 10);
    NEAR(V("disk.write_bytes_per_second", "device=\"vda\""), 40960);
    NEAR(V("disk.busy_percent", "device=\"vda\""), 25);
    NEAR(V("disk.read_await_ms", "device=\"vda\""), 0.5);
    NEAR(V("disk.write_await_ms", "device=\"vda\""), 3);
    NEAR(V("disk.in_flight", "device=\"vda\""), 2);
    assert_int_equal(fm_count_prefix(f->m, "disk.reads_per_second", false), 1);

    /* net: eth0 rx +1e6 bytes; lo's rx counters went back (reset): no value */
    NEAR(V("net.rx_bytes_per_second", "iface=\"eth0\""), 1e6);
    NEAR(V("net.rx_packets_per_second", "iface=\"eth0\""), 1000);
    NEAR(V("net.rx_drops_per_second", "iface=\"eth0\""), 3);
    NEAR(V("net.tx_bytes_per_second", "iface=\"eth0\""), 2000);
    assert_true(isnan(V("net.rx_bytes_per_second", "iface=\"lo\"")));
    assert_false(isnan(V("net.tx_bytes_per_second", "iface=\"lo\""))); /* its own counter did not go back */
    NEAR(V("net.tx_bytes_per_second", "iface=\"lo\""), 100);
    assert_null(fm_find(f->m, "net.rx_bytes_per_second", "iface=\"ifb0\""));

    NEAR(V("netstat.tcp_per_second", "field=\"ActiveOpens\""), 5);
    NEAR(V("netstat.tcp_per_second", "field=\"InSegs\""), 100);
    NEAR(V("netstat.tcp", "field=\"CurrEstab\""), 3);
    NEAR(V("netstat.tcp_ext_per_second", "field=\"ListenOverflows\""), 7);
    assert_null(fm_find(f->m, "netstat.tcp_per_second", "field=\"RtoMin\""));
    assert_null(fm_find(f->m, "netstat.tcp", "field=\"RtoMin\""));

    NEAR(V("tcp.connections", "state=\"established\""), 1);
    NEAR(V("tcp.connections", "state=\"listen\""), 3); /* 2 IPv4 + 1 IPv6 */
    NEAR(V("tcp.connections", "state=\"close_wait\""), 1);
    NEAR(V("tcp.connections", "state=\"time_wait\""), 0); /* seen before: stays */
    assert_null(fm_find(f->m, "tcp.connections", "state=\"syn_sent\""));
    NEAR(V("tcp.sockets_inuse", ""), 3);
    NEAR(V("tcp.memory_bytes", ""), 120.0 * (double)sysconf(_SC_PAGESIZE));
    NEAR(V("tcp.udp_sockets_inuse", ""), 2);

    NEAR(V("fds.allocated", ""), 1536);
    NEAR(V("fds.used_percent", ""), 75);

    NEAR(V("interrupts.per_second", "irq=\"36\",name=\"PCI-MSIX-0000:00:02.0 1-edge virtio1-req.0\""), 1000);
    NEAR(V("interrupts.per_second", "irq=\"LOC\",name=\"Local timer interrupts\""), 2000);
    assert_int_equal(fm_count_prefix(f->m, "interrupts.per_second", false) <= 25, 1);
    NEAR(V("softirqs.per_second", "type=\"timer\""), 100);
    NEAR(V("softirqs.per_second", "type=\"net_rx\""), 50);
    assert_null(fm_find(f->m, "softirqs.per_second", "type=\"hi\""));

    NEAR(V("processes.count", ""), 2);
    NEAR(V("processes.threads", ""), 96);

    /* watched nginx: 50 ticks of cpu in 1 s at 100 Hz */
    const char *ng = "name=\"nginx\",pid=\"4242\"";
    NEAR(V("process.cpu_percent", ng), 50.0 * 100 / sysconf(_SC_CLK_TCK));
    NEAR(V("process.rss_bytes", ng), 3072.0 * (double)sysconf(_SC_PAGESIZE));
    NEAR(V("process.threads", ng), 4);
    NEAR(V("process.fds", ng), 3);
    NEAR(V("process.io_read_bytes_per_second", ng), 4096);
    NEAR(V("process.io_write_bytes_per_second", ng), 0);
    NEAR(V("process.minor_faults_per_second", ng), 500);
    NEAR(V("process.state", ng), 2);
    NEAR(V("process.count", "name=\"nginx\""), 1);

    NEAR(V("self.cpu_percent", ""), 100.0 / sysconf(_SC_CLK_TCK));
    NEAR(V("self.threads", ""), 3);
    NEAR(V("self.fds", ""), 1);

    /* filesystems: "/" once (the /tmp bind of /dev/vda is the same fs), the
     * twice-mounted /dev/shm once, no pseudo / overlay / nfs mounts */
    assert_false(isnan(V("fs.avail_bytes", "device=\"/dev/vda\",fstype=\"ext4\",mountpoint=\"/\"")));
    assert_false(isnan(V("fs.used_percent", "device=\"tmpfs\",fstype=\"tmpfs\",mountpoint=\"/dev/shm\"")));
    assert_int_equal(fm_count_prefix(f->m, "fs.avail_bytes", true), 2);

    /* cgroup v2: nginx.service usage +0.5 s in 1 s, throttled +0.1 s */
    const char *cg = "cgroup=\"/system.slice/nginx.service\"";
    NEAR(V("cgroup.cpu_percent", cg), 50);
    NEAR(V("cgroup.cpu_throttled_percent", cg), 10);
    NEAR(V("cgroup.cpu_throttled_periods_per_second", cg), 5);
    NEAR(V("cgroup.memory_current_bytes", cg), 104857600);
    assert_null(fm_find(f->m, "cgroup.memory_max_bytes", cg)); /* "max" */
    NEAR(V("cgroup.memory_max_bytes", "cgroup=\"/system.slice/db.service\""), 209715200);
    NEAR(V("cgroup.memory_anon_bytes", cg), 50000000);
    NEAR(V("cgroup.pids_current", cg), 7);
    NEAR(V("cgroup.io_read_bytes_per_second", cg), 10000);
    NEAR(V("cgroup.io_write_bytes_per_second", cg), 2000);
    NEAR(V("cgroup.pressure_some_avg10_percent", "cgroup=\"/system.slice/nginx.service\",resource=\"cpu\""), 1.25);
    assert_null(fm_find(f->m, "cgroup.pids_current", "cgroup=\"/system.slice/session-1.scope\""));
    assert_null(fm_find(f->m, "cgroup.pids_current", "cgroup=\"/system.slice/nginx.service/child.service\""));

    sense_collector_info info[32];
    int nc = sense_collectors(f->s, info, 32);
    assert_int_equal(nc, 19);
    for (int i = 0; i < nc; i++) {
        if (!strcmp(info[i].name, "gpu")) { /* no NVML here: reported, not an error */
            assert_false(info[i].available);
            assert_int_equal(info[i].nseries, 0);
            continue;
        }
        if (!info[i].available)
            fail_msg("%s unavailable: %s", info[i].name, info[i].note);
        assert_true(info[i].nseries > 0);
    }
    /* every family is dotted lowercase: group.what */
    for (int i = 0; i < fm_count(f->m); i++) {
        const fm_series *se = fm_at(f->m, i);
        assert_non_null(strchr(se->name, '.'));
        for (const char *x = se->name; *x; x++)
            assert_true((*x >= 'a' && *x <= 'z') || (*x >= '0' && *x <= '9') || *x == '_' || *x == '.');
        assert_true(se->help[0]);
    }
    fx_free(f);
}

static void test_missing_psi_reported_once(void **st)
{
    fx *f = fx_new("sys", false);
    collect(f, T0);
    collect(f, T0 + 1000);
    sn_col *c = sn_col_find(f->s, "psi");
    assert_false(c->available);
    assert_non_null(strstr(c->note, "pressure/cpu"));
    assert_non_null(strstr(c->note, "No such file"));
    assert_true(c->logged);
    assert_int_equal(fm_count_prefix(f->m, "psi.", false), 0);
    sense_collector_info info[32];
    int nc = sense_collectors(f->s, info, 32);
    for (int i = 0; i < nc; i++)
        if (!strcmp(info[i].name, "psi"))
            assert_false(info[i].available);
    /* not retried every second */
    int64_t before = c->retry_ms;
    collect(f, T0 + 2000);
    assert_int_equal(c->retry_ms, before);
    /* appears: picked up at the retry */
    char src[512], dst[512];
    snprintf(src, sizeof src, "%s/proc1/pressure", fixtures_dir());
    snprintf(dst, sizeof dst, "%s/pressure", f->proc);
    assert_int_equal(tree_copy(src, dst), 0);
    collect(f, c->retry_ms);
    assert_true(c->available);
    assert_string_equal(c->note, "procfs");
    NEAR(V("psi.some_avg10_percent", "resource=\"cpu\""), 2.18);
    fx_free(f);
}

static void test_cgroup_v1(void **st)
{
    fx *f = fx_new("sys_v1", true);
    collect(f, T0);
    char p[512];
    snprintf(p, sizeof p, "%s/fs/cgroup/cpuacct/system.slice/app.service/cpuacct.usage", f->sys);
    file_put(p, "1250000000\n");
    collect(f, T0 + 2000); /* 2 s later: 0.25 s of cpu in 2 s */
    const char *cg = "cgroup=\"/system.slice/app.service\"";
    NEAR(V("cgroup.cpu_percent", cg), 12.5);
    NEAR(V("cgroup.memory_current_bytes", cg), 52428800);
    assert_null(fm_find(f->m, "cgroup.memory_max_bytes", cg)); /* unlimited */
    NEAR(V("cgroup.memory_anon_bytes", cg), 8192);
    NEAR(V("cgroup.memory_file_bytes", cg), 4096);
    NEAR(V("cgroup.pids_current", cg), 3);
    sn_col *c = sn_col_find(f->s, "cgroup");
    assert_true(c->available);
    assert_string_equal(c->note, "cgroup v1");
    fx_free(f);
}

static void test_counter_reset_gives_no_value(void **st)
{
    fx *f = fx_new("sys", true);
    collect(f, T0);
    advance(f);
    collect(f, T0 + 1000);
    /* back to proc1: every counter goes backwards */
    char src[512];
    snprintf(src, sizeof src, "%s/proc1", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
    collect(f, T0 + 2000);
    assert_true(isnan(V("cpu.context_switches_per_second", "")));
    assert_true(isnan(V("disk.reads_per_second", "device=\"vda\"")));
    assert_true(isnan(V("net.rx_bytes_per_second", "iface=\"eth0\"")));
    assert_true(isnan(V("netstat.tcp_per_second", "field=\"ActiveOpens\"")));
    assert_true(isnan(V("memory.page_faults_per_second", "")));
    for (int i = 0; i < fm_count(f->m); i++) {
        const fm_series *se = fm_at(f->m, i);
        if (se->kind == MEM_RATE && !isnan(se->value) && se->value < 0)
            fail_msg("negative rate %s{%s} = %g", se->name, se->labels, se->value);
    }
    /* gauges still come */
    NEAR(V("load.load1", ""), 0.5);
    fx_free(f);
}

static void test_intervals_and_reconfigure(void **st)
{
    fx *f = fx_new("sys", true);
    core_sense_group *g = (core_sense_group *)core_config_group(&f->cfg, "disk");
    g->interval_ms = 10000;
    g = (core_sense_group *)core_config_group(&f->cfg, "vmstat");
    g->enabled = false;
    free(f->cfg.watch_process[0]);
    f->cfg.watch_process[0] = strdup("my (odd) name");
    char err[256];
    assert_int_equal(sense_reconfigure(f->s, &f->cfg, err, sizeof err), 0);
    collect(f, T0 + 1000); /* 1700000001 s: disk not due */
    assert_int_equal(fm_count_prefix(f->m, "disk.", true), 0);
    assert_int_equal(fm_count_prefix(f->m, "vmstat.", true), 0);
    NEAR(V("process.count", "name=\"my (odd) name\""), 1);
    NEAR(V("process.state", "name=\"my (odd) name\",pid=\"4243\""), 2);
    collect(f, T0 + 10000); /* 1700000010 s: due */
    assert_true(fm_count_prefix(f->m, "disk.", true) > 0);
    fx_free(f);
}

int main(void)
{
    core_log_setup(CORE_LOG_WARN, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rates_from_two_snapshots),
        cmocka_unit_test(test_missing_psi_reported_once),
        cmocka_unit_test(test_cgroup_v1),
        cmocka_unit_test(test_counter_reset_gives_no_value),
        cmocka_unit_test(test_intervals_and_reconfigure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
