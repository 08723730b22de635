/* nx_cpu.c: node_exporter's cpu, stat and loadavg collectors, from
 * /proc/stat and /proc/loadavg: CPU time per core and mode as counters of
 * seconds (USER_HZ ticks / 100, as node_exporter's procfs does), boot time,
 * context switches, forks, interrupts, running and blocked tasks, load; and
 * the cpu collector's thermal throttle counters from
 * /sys/devices/system/cpu/cpuN/thermal_throttle (x86 only). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sense/nx_int.h"

#define NX_USER_HZ 100.0 /* /proc/stat's unit, fixed by the kernel ABI */

static const char *const cpu_modes[SN_CPU_NSTATES] = {"user", "nice", "system", "idle", "iowait",
                                                      "irq", "softirq", "steal", "guest", "guest_nice"};

/* Parses the numbers after a "cpuN" token into v[]; returns how many. */
static int cpu_fields(const char **pp, const char *e, uint64_t *v)
{
    int k = 0;
    for (; k < SN_CPU_NSTATES; k++) {
        bool ok;
        v[k] = sn_u64(pp, e, &ok);
        if (!ok)
            break;
    }
    return k;
}

/* node_exporter's cpu collector: throttle counts per core and per package,
 * from cpuN/topology and cpuN/thermal_throttle. A package counter is read
 * once per package (from its first CPU), a core counter once per (package,
 * core) (from its first thread); both in CPU-number order. Hosts without
 * thermal_throttle (VMs, non-x86) get neither family. */
#define NX_THR_MAX 1024

static int cpu_num_cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cpu_throttles(nx_ctx *x)
{
    char dir[CORE_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/devices/system/cpu", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int cpus[NX_THR_MAX], n = 0;
    struct dirent *de;
    while ((de = readdir(d)) && n < NX_THR_MAX) {
        const char *s = de->d_name;
        if (strncmp(s, "cpu", 3) || s[3] < '0' || s[3] > '9')
            continue;
        char *end;
        long v = strtol(s + 3, &end, 10);
        if (!*end)
            cpus[n++] = (int)v;
    }
    closedir(d);
    qsort(cpus, (size_t)n, sizeof cpus[0], cpu_num_cmp);
    /* (package << 32 | core) seen, and packages seen */
    uint64_t seen_core[NX_THR_MAX], seen_pkg[NX_THR_MAX];
    int ncore = 0, npkg = 0;
    int fcore = -1, fpkg = -1;
    for (int i = 0; i < n; i++) {
        uint64_t pkg, core, cnt;
        if (nx_read_u64(x, x->sys, &pkg, "devices/system/cpu/cpu%d/topology/physical_package_id", cpus[i]) < 0 ||
            nx_read_u64(x, x->sys, &core, "devices/system/cpu/cpu%d/topology/core_id", cpus[i]) < 0)
            continue;
        char ps[24], cs[24];
        snprintf(ps, sizeof ps, "%llu", (unsigned long long)pkg);
        snprintf(cs, sizeof cs, "%llu", (unsigned long long)core);
        uint64_t key = pkg << 32 | (core & 0xffffffffu);
        int k = 0;
        while (k < ncore && seen_core[k] != key)
            k++;
        if (k == ncore && nx_read_u64(x, x->sys, &cnt, "devices/system/cpu/cpu%d/thermal_throttle/core_throttle_count",
                                      cpus[i]) == 0) {
            seen_core[ncore++] = key;
            if (fcore < 0)
                fcore = nx_family(x, "node_cpu_core_throttles_total", NX_COUNTER,
                                  "Number of times this CPU core has been throttled.");
            nx_sample(x, fcore, (double)cnt, 2, "core", cs, "package", ps);
        }
        k = 0;
        while (k < npkg && seen_pkg[k] != pkg)
            k++;
        if (k == npkg && nx_read_u64(x, x->sys, &cnt,
                                     "devices/system/cpu/cpu%d/thermal_throttle/package_throttle_count", cpus[i]) == 0) {
            seen_pkg[npkg++] = pkg;
            if (fpkg < 0)
                fpkg = nx_family(x, "node_cpu_package_throttles_total", NX_COUNTER,
                                 "Number of times this CPU package has been throttled.");
            nx_sample(x, fpkg, (double)cnt, 1, "package", ps);
        }
    }
    return 0;
}

/* /proc/stat for this scrape: the cpu and stat collectors share one read
 * (on a large host the kernel sums every CPU's interrupt counts for it). */
static ssize_t proc_stat(nx_ctx *x)
{
    if (x->stat_len == 0)
        x->stat_len = nx_read(x, &x->stat, x->proc, "stat");
    return x->stat_len;
}

NX_COLLECTOR(cpu)
{
    ssize_t n = proc_stat(x);
    if (n < 0)
        return (int)n;
    int fsec = nx_family(x, "node_cpu_seconds_total", NX_COUNTER, "Seconds the CPUs spent in each mode.");
    int fguest = nx_family(x, "node_cpu_guest_seconds_total", NX_COUNTER,
                           "Seconds the CPUs spent in guests (VMs) for each mode.");
    const char *p = x->stat.p, *e = x->stat.p + n;
    for (; p < e; p = sn_eol(p, e)) {
        if (e - p < 4 || memcmp(p, "cpu", 3) != 0 || p[3] < '0' || p[3] > '9')
            continue;
        const char *q = p + 3;
        char id[16];
        sn_tok(&q, e, id, sizeof id);
        uint64_t v[SN_CPU_NSTATES] = {0};
        int k = cpu_fields(&q, e, v);
        if (k < 4)
            return -EINVAL;
        /* user and nice include guest time; node_exporter reports them as
         * the kernel does, and guest time on its own family. */
        for (int m = 0; m <= SN_CPU_STEAL && m < k; m++)
            nx_sample(x, fsec, (double)v[m] / NX_USER_HZ, 2, "cpu", id, "mode", cpu_modes[m]);
        if (k > SN_CPU_GUEST)
            nx_sample(x, fguest, (double)v[SN_CPU_GUEST] / NX_USER_HZ, 2, "cpu", id, "mode", "user");
        if (k > SN_CPU_GUEST_NICE)
            nx_sample(x, fguest, (double)v[SN_CPU_GUEST_NICE] / NX_USER_HZ, 2, "cpu", id, "mode", "nice");
    }
    return cpu_throttles(x);
}

static bool line_is(const char *p, const char *e, const char *key, const char **rest)
{
    size_t k = strlen(key);
    if ((size_t)(e - p) <= k || memcmp(p, key, k) != 0 || (p[k] != ' ' && p[k] != '\t'))
        return false;
    *rest = p + k;
    return true;
}

/* The single-number lines of /proc/stat, as node_exporter's stat collector. */
static const struct {
    const char *key, *name;
    int type;
    const char *help;
} stat_lines[] = {
    {"intr", "node_intr_total", NX_COUNTER, "Total number of interrupts serviced."},
    {"ctxt", "node_context_switches_total", NX_COUNTER, "Total number of context switches."},
    {"btime", "node_boot_time_seconds", NX_GAUGE, "Node boot time, in unixtime."},
    {"processes", "node_forks_total", NX_COUNTER, "Total number of forks."},
    {"procs_running", "node_procs_running", NX_GAUGE, "Number of processes in runnable state."},
    {"procs_blocked", "node_procs_blocked", NX_GAUGE, "Number of processes blocked waiting for I/O to complete."},
};

NX_COLLECTOR(stat)
{
    ssize_t n = proc_stat(x);
    if (n < 0)
        return (int)n;
    const char *p = x->stat.p, *e = x->stat.p + n, *q;
    for (; p < e; p = sn_eol(p, e))
        for (size_t i = 0; i < sizeof stat_lines / sizeof stat_lines[0]; i++) {
            if (!line_is(p, e, stat_lines[i].key, &q))
                continue;
            bool ok;
            uint64_t v = sn_u64(&q, e, &ok);
            if (ok)
                nx_sample(x, nx_family(x, stat_lines[i].name, stat_lines[i].type, stat_lines[i].help), (double)v, 0);
            break;
        }
    return 0;
}

NX_COLLECTOR(loadavg)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "loadavg");
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n;
    static const char *const names[3] = {"node_load1", "node_load5", "node_load15"};
    static const char *const helps[3] = {"1m load average.", "5m load average.", "15m load average."};
    double v[3];
    for (int i = 0; i < 3; i++) {
        bool ok;
        v[i] = sn_dbl(&p, e, &ok);
        if (!ok)
            return -EINVAL;
    }
    for (int i = 0; i < 3; i++)
        nx_gauge1(x, names[i], helps[i], v[i]);
    return 0;
}
