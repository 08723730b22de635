/* test_nx_sys.c: the nxsys collectors of the node_exporter-compatible
 * exposition (meminfo, vmstat, pressure, filefd, entropy, time, timex,
 * uname, os, selinux, cpufreq, thermal_zone, hwmon, powersupplyclass, edac)
 * over the fixture tree fixtures/nx/nxsys, rendered through sense_nx_open /
 * sense_nx_render and compared line by line with expected.prom, which is
 * what node_exporter 1.5 itself serves over the same tree (regen.sh). The
 * families that read the live clock, uname(2) or adjtimex(2) are checked
 * against the running host instead. Also: the cpu and stat collectors'
 * shared /proc/stat read, and edges of the frame (nx.c) they rely on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sense/nx_int.h"
#include "sense/sense_int.h"
#include "nx_test_util.h"
#include "tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Renders the exposition with proc/sys roots under fixtures/<dir>. */
static char *render(const char *proc, const char *sys)
{
    char *t2 = NULL;
    char *t = nxt_render(proc, sys, NULL, &t2);
    /* a second scrape reuses every buffer and says the same about files */
    assert_true(!strstr(t, "node_memory_MemTotal_bytes ") == !strstr(t2, "node_memory_MemTotal_bytes "));
    assert_true(!strstr(t, "node_hwmon_chip_names{") == !strstr(t2, "node_hwmon_chip_names{"));
    free(t2);
    return t;
}

static char *render_fixture(void)
{
    char proc[512], sys[512];
    snprintf(proc, sizeof proc, "%s/nx/nxsys/proc", fixtures_dir());
    snprintf(sys, sizeof sys, "%s/nx/nxsys/sys", fixtures_dir());
    return render(proc, sys);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    nxt_text t = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        nxt_emit(&t, buf, n);
    fclose(f);
    return t.p ? t.p : strdup("");
}

/* The families these collectors write whose values come from files. */
static const char *const mine[] = {"node_memory_", "node_vmstat_", "node_pressure_", "node_filefd_",
                                   "node_entropy_", "node_time_clocksource_", "node_os_", "node_cpu_frequency_",
                                   "node_cpu_scaling_", "node_thermal_zone_", "node_cooling_device_", "node_hwmon_",
                                   "node_power_supply_", "node_edac_"};

static bool is_mine(const char *line)
{
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (!strncmp(line, mine[i], strlen(mine[i])))
            return true;
    return false;
}

static void test_matches_node_exporter(void **st)
{
    char *out = render_fixture();
    char path[512];
    snprintf(path, sizeof path, "%s/nx/nxsys/expected.prom", fixtures_dir());
    char *exp = slurp(path);
    int bad = 0, samples = 0;
    for (char *line = strtok(exp, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            if (!nxt_has_line(out, line)) {
                print_message("missing: %s\n", line);
                bad++;
            }
            continue;
        }
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        *sp = 0;
        double want = strtod(sp + 1, NULL), got = nxt_value(out, line);
        samples++;
        if (!(got == want)) {
            print_message("%s: want %.17g, got %.17g\n", line, want, got);
            bad++;
        }
        *sp = ' ';
    }
    /* and nothing of ours that node_exporter does not have */
    free(exp);
    exp = slurp(path);
    char *copy = strdup(out);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !is_mine(line))
            continue;
        char *sp = strrchr(line, ' ');
        *sp = 0;
        if (isnan(nxt_value(exp, line))) {
            print_message("extra: %s\n", line);
            bad++;
        }
    }
    free(copy);
    assert_true(samples > 150);
    assert_int_equal(bad, 0);
    free(exp);
    free(out);
}

static void test_live_families(void **st)
{
    char *out = render_fixture();
    double now = (double)time(NULL);
    double t = nxt_value(out, "node_time_seconds");
    assert_true(t > now - 5 && t < now + 5);
    assert_true(nxt_has_line(out, "# TYPE node_timex_pps_jitter_total counter"));
    assert_true(nxt_value(out, "node_timex_tick_seconds") > 0);
    assert_true(nxt_value(out, "node_timex_frequency_adjustment_ratio") > 0.99);
    double sync = nxt_value(out, "node_timex_sync_status");
    assert_true(sync == 0 || sync == 1);
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    char series[1024];
    snprintf(series, sizeof series,
             "node_uname_info{domainname=\"%s\",machine=\"%s\",nodename=\"%s\",release=\"%s\",sysname=\"%s\","
             "version=\"%s\"}", u.domainname, u.machine, u.nodename, u.release, u.sysname, u.version);
    assert_true(nxt_value(out, series) == 1);
    struct tm tm;
    time_t now_t = time(NULL);
    localtime_r(&now_t, &tm);
    snprintf(series, sizeof series, "node_time_zone_offset_seconds{time_zone=\"%s\"}", tm.tm_zone);
    assert_true(nxt_value(out, series) == (double)tm.tm_gmtoff);
    for (const char *c = "meminfo\0vmstat\0pressure\0filefd\0entropy\0time\0timex\0uname\0os\0selinux\0"
                         "cpufreq\0thermal_zone\0hwmon\0powersupplyclass\0edac\0"; *c; c += strlen(c) + 1) {
        snprintf(series, sizeof series, "node_scrape_collector_success{collector=\"%s\"}", c);
        if (nxt_value(out, series) != 1)
            print_message("collector %s failed\n", c);
        assert_true(nxt_value(out, series) == 1);
    }
    free(out);
}

/* The fixture's sys tree has selinuxfs (enforcing) and its etc/selinux/config
 * says permissive; node_exporter reads the host's instead, so this is ours. */
static void test_selinux(void **st)
{
    char *out = render_fixture();
    assert_true(nxt_value(out, "node_selinux_enabled") == 1);
    assert_true(nxt_value(out, "node_selinux_current_mode") == 1);
    assert_true(nxt_value(out, "node_selinux_config_mode") == 0);
    assert_true(nxt_has_line(out, "# HELP node_selinux_enabled SELinux is enabled, 1 is true, 0 is false"));
    free(out);
}

/* Empty roots: no PSI, no meminfo, no hardware. Collectors report failure
 * where node_exporter does, nothing crashes, no family of ours appears. */
static void test_absent_sources(void **st)
{
    char dir[] = "/tmp/ippoc-nxsys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *out = render(dir, dir);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"pressure\"}") == 0);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"meminfo\"}") == 0);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"hwmon\"}") == 0);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"edac\"}") == 1);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"thermal_zone\"}") == 1);
    assert_true(nxt_value(out, "node_selinux_enabled") == 0);
    assert_null(strstr(out, "node_memory_"));
    assert_null(strstr(out, "node_hwmon_"));
    assert_null(strstr(out, "node_selinux_config_mode"));
    free(out);
    tree_rm(dir);
}

/* Malformed files: a clear failure of that collector, never a crash. */
static void test_bad_input(void **st)
{
    char dir[] = "/tmp/ippoc-nxsys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/pressure", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/pressure/cpu", dir);
    assert_int_equal(file_put(path, "some avg10=0.00 total=\n"), 0);
    snprintf(path, sizeof path, "%s/meminfo", dir);
    assert_int_equal(file_put(path, "MemTotal: lots kB\n"), 0);
    snprintf(path, sizeof path, "%s/vmstat", dir);
    assert_int_equal(file_put(path, "pgfault\noom_kill 3\n"), 0);
    /* a chip with no device link (named by its name file), an invalid
     * UTF-8 label (one U+FFFD per bad run, as Go's ToValidUTF8) and a value
     * that is not a number (left out) */
    snprintf(path, sizeof path, "%s/class", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/class/hwmon", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0/name", dir);
    assert_int_equal(file_put(path, "My Chip\n"), 0);
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0/temp1_label", dir);
    assert_int_equal(file_put(path, "\xff\xfe" "CPU\n"), 0);
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0/temp1_input", dir);
    assert_int_equal(file_put(path, "41500\n"), 0);
    snprintf(path, sizeof path, "%s/class/hwmon/hwmon0/temp2_input", dir);
    assert_int_equal(file_put(path, "N/A\n"), 0);
    char *out = render(dir, dir);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"pressure\"}") == 0);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"meminfo\"}") == 0);
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"vmstat\"}") == 0);
    assert_null(strstr(out, "node_pressure_"));
    assert_true(nxt_value(out, "node_hwmon_chip_names{chip=\"my_chip\",chip_name=\"my_chip\"}") == 1);
    assert_true(nxt_value(out, "node_hwmon_sensor_label{chip=\"my_chip\",label=\"\xef\xbf\xbd" "CPU\",sensor=\"temp1\"}") == 1);
    assert_true(nxt_value(out, "node_hwmon_temp_celsius{chip=\"my_chip\",sensor=\"temp1\"}") == 41.5);
    assert_null(strstr(out, "sensor=\"temp2\""));
    assert_true(nxt_value(out, "node_scrape_collector_success{collector=\"hwmon\"}") == 1);
    free(out);
    tree_rm(dir);
}

/* The cpu and stat collectors share one read of /proc/stat per scrape: both
 * see it, and the next scrape on the same handle reads it afresh. */
static void test_proc_stat_each_scrape(void **st)
{
    char dir[] = "/tmp/ippoc-nxsys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512];
    snprintf(path, sizeof path, "%s/stat", dir);
    assert_int_equal(file_put(path, "cpu  100 0 50 1000 0 0 0 0 0 0\ncpu0 100 0 50 1000 0 0 0 0 0 0\n"
                                    "intr 12 4 8\nctxt 7\nbtime 1700000000\nprocesses 55\nprocs_running 3\n"
                                    "procs_blocked 1\nsoftirq 5 1 4\n"), 0);
    sense_nx *nx = nxt_open(dir, dir, NULL);
    nxt_text t = {0}, t2 = {0};
    assert_int_equal(sense_nx_render(nx, nxt_emit, &t), 0);
    assert_true(nxt_value(t.p, "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}") == 1);
    assert_true(nxt_value(t.p, "node_context_switches_total") == 7);
    assert_true(nxt_value(t.p, "node_intr_total") == 12);
    assert_true(nxt_value(t.p, "node_boot_time_seconds") == 1700000000);
    assert_true(nxt_value(t.p, "node_forks_total") == 55);
    assert_true(nxt_value(t.p, "node_procs_running") == 3);
    assert_true(nxt_value(t.p, "node_procs_blocked") == 1);
    assert_true(nxt_has_line(t.p, "# TYPE node_forks_total counter"));
    assert_true(nxt_has_line(t.p, "# TYPE node_procs_blocked gauge"));
    assert_true(nxt_has_line(t.p, "# HELP node_intr_total Total number of interrupts serviced."));
    assert_int_equal(file_put(path, "cpu  300 0 50 1000 0 0 0 0 0 0\ncpu0 300 0 50 1000 0 0 0 0 0 0\nctxt 9\n"), 0);
    assert_int_equal(sense_nx_render(nx, nxt_emit, &t2), 0);
    assert_true(nxt_value(t2.p, "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"}") == 3);
    assert_true(nxt_value(t2.p, "node_context_switches_total") == 9);
    /* gone: both collectors fail on that scrape */
    assert_int_equal(unlink(path), 0);
    free(t.p);
    t = (nxt_text){0};
    assert_int_equal(sense_nx_render(nx, nxt_emit, &t), 0);
    assert_true(nxt_value(t.p, "node_scrape_collector_success{collector=\"cpu\"}") == 0);
    assert_true(nxt_value(t.p, "node_scrape_collector_success{collector=\"stat\"}") == 0);
    free(t.p);
    free(t2.p);
    sense_nx_close(nx);
    tree_rm(dir);
}

/* A run-time family name too long for the family's copy is refused rather
 * than cut short (a cut copy is never found again by the full name, so
 * each call would add another family of the same name). */
static void test_family_long_name(void **st)
{
    nx_ctx x = {0};
    x.collector = "test";
    char name[200];
    memset(name, 'a', 150);
    name[150] = 0;
    assert_int_equal(nx_family_dyn(&x, name, NX_GAUGE, NULL), -1);
    assert_int_equal(nx_family_dyn(&x, name, NX_GAUGE, NULL), -1);
    name[128] = 0;
    assert_int_equal(nx_family_dyn(&x, name, NX_GAUGE, NULL), -1);
    name[127] = 0;
    int f = nx_family_dyn(&x, name, NX_GAUGE, NULL);
    assert_true(f >= 0);
    assert_int_equal(nx_family_dyn(&x, name, NX_GAUGE, NULL), f);
    assert_int_equal(x.nfams, 1);
    for (int i = 0; i < x.capfams; i++)
        free(x.fams[i].body.p);
    free(x.fams);
    free(x.fidx);
}

/* A sysfs number of -1 (physical_package_id on some platforms) is no
 * unsigned number: that CPU's throttle counters are left out, as
 * node_exporter does, rather than labelled package="18446744073709551615". */
static void test_negative_u64(void **st)
{
    char dir[] = "/tmp/ippoc-nxsys-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const dirs[] = {"devices", "devices/system", "devices/system/cpu",
                                       "devices/system/cpu/cpu0", "devices/system/cpu/cpu0/topology",
                                       "devices/system/cpu/cpu0/thermal_throttle"};
    char path[512];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, dirs[i]);
        assert_int_equal(mkdir(path, 0755), 0);
    }
    snprintf(path, sizeof path, "%s/devices/system/cpu/cpu0/topology/physical_package_id", dir);
    assert_int_equal(file_put(path, "-1\n"), 0);
    snprintf(path, sizeof path, "%s/devices/system/cpu/cpu0/topology/core_id", dir);
    assert_int_equal(file_put(path, "0\n"), 0);
    snprintf(path, sizeof path, "%s/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count", dir);
    assert_int_equal(file_put(path, "4\n"), 0);
    snprintf(path, sizeof path, "%s/devices/system/cpu/cpu0/thermal_throttle/package_throttle_count", dir);
    assert_int_equal(file_put(path, "5\n"), 0);
    snprintf(path, sizeof path, "%s/stat", dir);
    assert_int_equal(file_put(path, "cpu0 1 0 1 1 0 0 0 0 0 0\n"), 0);
    char *out = render(dir, dir);
    assert_null(strstr(out, "node_cpu_package_throttles_total"));
    assert_null(strstr(out, "node_cpu_core_throttles_total"));
    free(out);
    snprintf(path, sizeof path, "%s/devices/system/cpu/cpu0/topology/physical_package_id", dir);
    assert_int_equal(file_put(path, "0\n"), 0);
    out = render(dir, dir);
    assert_true(nxt_value(out, "node_cpu_package_throttles_total{package=\"0\"}") == 5);
    assert_true(nxt_value(out, "node_cpu_core_throttles_total{core=\"0\",package=\"0\"}") == 4);
    free(out);
    tree_rm(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_node_exporter),
        cmocka_unit_test(test_live_families),
        cmocka_unit_test(test_selinux),
        cmocka_unit_test(test_absent_sources),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_proc_stat_each_scrape),
        cmocka_unit_test(test_family_long_name),
        cmocka_unit_test(test_negative_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
