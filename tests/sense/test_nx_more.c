/* test_nx_more.c: node_exporter's schedstat, dmi, rapl, nfs, nfsd, ipvs,
 * zfs, fibrechannel and tapestats collectors and the cpu collector's thermal
 * throttle families, over the fixture tree fixtures/nx/more, rendered
 * through sense_nx_open / sense_nx_render and compared line by line with
 * expected.prom, which is what node_exporter 1.5 itself serves over the same
 * tree (regen.sh); then exact lines, absent sources and malformed files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sense/sense_int.h"
#include "tree.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

typedef struct text {
    char *p;
    size_t len;
} text;

static void emit(void *ud, const char *s, size_t n)
{
    text *t = ud;
    t->p = realloc(t->p, t->len + n + 1);
    assert_non_null(t->p);
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

/* Renders the exposition with proc/sys roots under fixtures/<dir>. */
static char *render(const char *proc, const char *sys)
{
    core_config cfg;
    core_config_defaults(&cfg);
    core_sncpy(cfg.proc_root, sizeof cfg.proc_root, proc);
    core_sncpy(cfg.sys_root, sizeof cfg.sys_root, sys);
    cfg.textfile_dir[0] = 0;
    sense_nx *nx = NULL;
    char err[256];
    assert_int_equal(sense_nx_open(&nx, &cfg, err, sizeof err), 0);
    text t = {0};
    assert_int_equal(sense_nx_render(nx, emit, &t), 0);
    /* a second scrape reuses every buffer and says the same about files */
    text t2 = {0};
    assert_int_equal(sense_nx_render(nx, emit, &t2), 0);
    assert_true(!strstr(t.p, "node_zfs_arc_hits ") == !strstr(t2.p, "node_zfs_arc_hits "));
    assert_true(!strstr(t.p, "node_nfsd_requests_total{") == !strstr(t2.p, "node_nfsd_requests_total{"));
    free(t2.p);
    sense_nx_close(nx);
    core_config_free(&cfg);
    return t.p;
}

static char *render_fixture(void)
{
    char proc[512], sys[512];
    snprintf(proc, sizeof proc, "%s/nx/more/proc", fixtures_dir());
    snprintf(sys, sizeof sys, "%s/nx/more/sys", fixtures_dir());
    return render(proc, sys);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    text t = {0};
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        emit(&t, buf, n);
    fclose(f);
    return t.p ? t.p : strdup("");
}

/* The value of the sample whose "name{labels}" is series, or NAN. */
static double sample(const char *out, const char *series)
{
    size_t k = strlen(series);
    for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, k) && p[k] == ' ')
            return strtod(p + k + 1, NULL);
    return NAN;
}

static bool has_line(const char *out, const char *line)
{
    size_t k = strlen(line);
    for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, line, k) && (p[k] == '\n' || p[k] == 0))
            return true;
    return false;
}

/* The families these collectors write. */
static const char *const mine[] = {"node_schedstat_", "node_dmi_", "node_rapl_", "node_cpu_", "node_nfs_",
                                   "node_nfsd_", "node_ipvs_", "node_zfs_", "node_fibrechannel_", "node_tape_"};

static bool is_mine(const char *line)
{
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (!strncmp(line, mine[i], strlen(mine[i])))
            return true;
    return false;
}

/* expected.prom with rapl's @SYS@ put back to the fixture's sys root. */
static char *expected(void)
{
    char path[512], sys[512];
    snprintf(path, sizeof path, "%s/nx/more/expected.prom", fixtures_dir());
    snprintf(sys, sizeof sys, "%s/nx/more/sys", fixtures_dir());
    char *raw = slurp(path);
    text t = {0};
    const char *p = raw, *at;
    while ((at = strstr(p, "@SYS@"))) {
        emit(&t, p, (size_t)(at - p));
        emit(&t, sys, strlen(sys));
        p = at + 5;
    }
    emit(&t, p, strlen(p));
    free(raw);
    return t.p;
}

/* Every line node_exporter 1.5 serves over fixtures/nx/more is in ours
 * (HELP and TYPE verbatim, sample values equal), and we serve no sample of
 * these families that it does not. */
static void test_matches_node_exporter(void **st)
{
    char *out = render_fixture();
    char *exp = expected();
    int bad = 0, samples = 0;
    for (char *line = strtok(exp, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            if (!has_line(out, line)) {
                print_message("missing: %s\n", line);
                bad++;
            }
            continue;
        }
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        *sp = 0;
        double want = strtod(sp + 1, NULL), got = sample(out, line);
        samples++;
        if (!(got == want)) {
            print_message("%s: want %.17g, got %.17g\n", line, want, got);
            bad++;
        }
        *sp = ' ';
    }
    free(exp);
    exp = expected();
    char *copy = strdup(out);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#' || !is_mine(line))
            continue;
        char *sp = strrchr(line, ' ');
        *sp = 0;
        if (isnan(sample(exp, line))) {
            print_message("extra: %s\n", line);
            bad++;
        }
    }
    free(copy);
    assert_true(samples > 300);
    assert_int_equal(bad, 0);
    for (const char *c = "schedstat\0dmi\0rapl\0cpu\0nfs\0nfsd\0ipvs\0zfs\0fibrechannel\0tapestats\0"; *c;
         c += strlen(c) + 1) {
        char series[128];
        snprintf(series, sizeof series, "node_scrape_collector_success{collector=\"%s\"}", c);
        if (sample(out, series) != 1)
            print_message("collector %s failed\n", c);
        assert_true(sample(out, series) == 1);
    }
    free(exp);
    free(out);
}

/* A few exact lines, so a regenerated expected.prom cannot hide a unit or
 * label mistake: ns -> s, uJ -> J, sectors of hex, the FWM service, the
 * unimplemented (all ones) FC counter left out, nst* left out, the
 * dmi serials present when readable. */
static void test_exact_lines(void **st)
{
    char *out = render_fixture();
    assert_true(sample(out, "node_schedstat_waiting_seconds_total{cpu=\"1\"}") == 364107.263788241);
    assert_true(sample(out, "node_schedstat_timeslices_total{cpu=\"0\"}") == 4767485306.0);
    assert_true(has_line(out, "# TYPE node_zfs_arc_hits untyped"));
    assert_true(sample(out, "node_zfs_arc_hits") == 8772612);
    assert_true(sample(out, "node_zfs_fm_erpt_dropped") == 18);
    assert_true(isnan(sample(out, "node_zfs_dmu_tx_some_string")));
    assert_true(sample(out, "node_zfs_zpool_dataset_nwritten{dataset=\"tank/home\",zpool=\"tank\"}") == 2048);
    assert_true(sample(out, "node_zfs_zpool_state{state=\"degraded\",zpool=\"rpool\"}") == 1);
    assert_true(sample(out, "node_zfs_zpool_state{state=\"online\",zpool=\"rpool\"}") == 0);
    assert_true(sample(out, "node_ipvs_backend_connections_inactive{local_address=\"2620::1\",local_mark=\"\","
                            "local_port=\"53\",proto=\"UDP\",remote_address=\"2620::2\",remote_port=\"53\"}") == 3);
    assert_true(sample(out, "node_ipvs_backend_weight{local_address=\"\",local_mark=\"10001000\",local_port=\"0\","
                            "proto=\"FWM\",remote_address=\"192.168.50.26\",remote_port=\"3306\"}") == 20);
    assert_true(sample(out, "node_ipvs_incoming_bytes_total") == 86594201961652.0);
    assert_true(sample(out, "node_tape_io_time_seconds_total{device=\"st0\"}") == 9247.01108772);
    assert_null(strstr(out, "device=\"nst0\""));
    assert_null(strstr(out, "node_fibrechannel_dumped_frames_total"));
    assert_true(sample(out, "node_fibrechannel_loss_of_sync_total{fc_host=\"host0\"}") == 16);
    assert_true(sample(out, "node_cpu_core_throttles_total{core=\"0\",package=\"1\"}") == 11);
    assert_true(sample(out, "node_cpu_package_throttles_total{package=\"1\"}") == 10);
    assert_true(sample(out, "node_nfs_requests_total{method=\"Clone\",proto=\"4\"}") == 0);
    assert_true(sample(out, "node_nfs_requests_total{method=\"GetAttr\",proto=\"3\"}") == 1061909262.0);
    assert_true(sample(out, "node_nfsd_requests_total{method=\"PutFH\",proto=\"4\"}") == 9609);
    assert_true(sample(out, "node_nfsd_server_threads") == 8);
    assert_non_null(strstr(out, "node_dmi_info{bios_date=\"04/12/2021\","));
    assert_non_null(strstr(out, ",system_vendor=\"Dell Inc.\"} 1\n"));
    char series[1024];
    snprintf(series, sizeof series,
             "node_rapl_package_joules_total{index=\"0\",path=\"%s/nx/more/sys/class/powercap/intel-rapl-mmio:0\"}",
             fixtures_dir());
    assert_true(sample(out, series) == 1.1e-05);
    free(out);
}

/* Empty roots: none of these sources, so none of these families, and every
 * collector reports node_scrape_collector_success 0, as node_exporter's
 * ErrNoData does (its own output over an empty tree). */
static void test_absent_sources(void **st)
{
    char dir[] = "/tmp/ippoc-nxmore-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *out = render(dir, dir);
    for (const char *c = "schedstat\0dmi\0rapl\0nfs\0nfsd\0ipvs\0zfs\0fibrechannel\0tapestats\0"; *c;
         c += strlen(c) + 1) {
        char series[128];
        snprintf(series, sizeof series, "node_scrape_collector_success{collector=\"%s\"}", c);
        assert_true(sample(out, series) == 0);
    }
    assert_true(sample(out, "node_scrape_collector_success{collector=\"cpu\"}") == 0);
    for (size_t i = 0; i < sizeof mine / sizeof mine[0]; i++)
        if (strcmp(mine[i], "node_cpu_"))
            assert_null(strstr(out, mine[i]));
    assert_null(strstr(out, "throttles_total"));
    free(out);
    tree_rm(dir);
}

static void put(const char *dir, const char *rel, const char *body)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = strchr(path + strlen(dir) + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        mkdir(path, 0755);
        *s = '/';
    }
    assert_int_equal(file_put(path, body), 0);
}

/* Malformed files: that collector fails (node_scrape_collector_success 0,
 * as node_exporter's does), nothing crashes, the others still report. */
static void test_bad_input(void **st)
{
    char dir[] = "/tmp/ippoc-nxmore-XXXXXX";
    assert_non_null(mkdtemp(dir));
    put(dir, "schedstat", "version 15\ncpu0 1 2 3\n");
    put(dir, "net/rpc/nfsd", "rc 0 6 18622\nwdeleg_getattr 15\n");
    put(dir, "net/rpc/nfs", "net 1 2 3 4\nproc3 22 1 2\n");
    put(dir, "net/ip_vs_stats", "   Total Incoming\n   Conns  Packets\n  zz\n");
    put(dir, "spl/kstat/zfs/arcstats", "6 1 0x01\nname type data\nhits 4 lots\n");
    put(dir, "class/fc_host/host1/port_state", "Linkdown\n");
    put(dir, "class/scsi_tape/st0/stats/in_flight", "1\n");
    put(dir, "class/powercap/intel-rapl:0/name", "package-0\n");
    put(dir, "class/dmi/id/product_name", "Box \"9\"\n");
    put(dir, "class/dmi/id/sys_vendor", "\xff\xfe" "ACME\n");
    char *out = render(dir, dir);
    for (const char *c = "schedstat\0nfs\0nfsd\0ipvs\0zfs\0fibrechannel\0tapestats\0rapl\0"; *c; c += strlen(c) + 1) {
        char series[128];
        snprintf(series, sizeof series, "node_scrape_collector_success{collector=\"%s\"}", c);
        if (sample(out, series) != 0)
            print_message("collector %s did not fail\n", c);
        assert_true(sample(out, series) == 0);
    }
    assert_true(sample(out, "node_scrape_collector_success{collector=\"dmi\"}") == 1);
    assert_true(sample(out, "node_dmi_info{product_name=\"Box \\\"9\\\"\",system_vendor=\"\xef\xbf\xbd" "ACME\"}") == 1);
    assert_null(strstr(out, "node_nfsd_"));
    assert_null(strstr(out, "node_zfs_arc_hits"));
    free(out);
    tree_rm(dir);
}

/* A real arcstats holds ~150 counters, dbufstats ~60 more: hundreds of
 * families in one collector. All of them come out, each once. */
static void test_zfs_many_kstats(void **st)
{
    char dir[] = "/tmp/ippoc-nxmore-XXXXXX";
    assert_non_null(mkdtemp(dir));
    text t = {0};
    const char *hdr = "6 1 0x01 400 4368 5266997922 97951858082072\nname                            type data\n";
    emit(&t, hdr, strlen(hdr));
    for (int i = 0; i < 400; i++) {
        char row[96];
        int k = snprintf(row, sizeof row, "counter_%03d                     4    %d\n", i, i * 7);
        emit(&t, row, (size_t)k);
    }
    put(dir, "spl/kstat/zfs/arcstats", t.p);
    free(t.p);
    char *out = render(dir, dir);
    assert_true(sample(out, "node_scrape_collector_success{collector=\"zfs\"}") == 1);
    assert_true(sample(out, "node_zfs_arc_counter_000") == 0);
    assert_true(sample(out, "node_zfs_arc_counter_399") == 399 * 7);
    assert_true(has_line(out, "# HELP node_zfs_arc_counter_250 kstat.zfs.misc.arcstats.counter_250"));
    assert_true(has_line(out, "# TYPE node_zfs_arc_counter_250 untyped"));
    int n = 0;
    for (const char *p = out; (p = strstr(p, "\n# TYPE node_zfs_arc_")); p++)
        n++;
    assert_int_equal(n, 400);
    free(out);
    tree_rm(dir);
}

/* Directory listings have no fixed cap: a pool with hundreds of datasets
 * reports every one, and so does a library of many tape drives (each with
 * its st/nst device entries). */
static void test_many_datasets_and_tapes(void **st)
{
    char dir[] = "/tmp/ippoc-nxmore-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char rel[128], body[256];
    for (int i = 0; i < 200; i++) {
        snprintf(rel, sizeof rel, "spl/kstat/zfs/big/objset-0x%x", 0x100 + i);
        snprintf(body, sizeof body, "23 1 0x01 7 2160 1 2\nname type data\ndataset_name 7 big/ds%03d\nwrites 4 %d\n",
                 i, i + 1);
        put(dir, rel, body);
    }
    for (int i = 0; i < 20; i++) {
        static const char *const sfx[] = {"", "a", "l", "m"};
        for (int k = 0; k < 4; k++) {
            snprintf(rel, sizeof rel, "class/scsi_tape/nst%d%s/stats/read_cnt", i, sfx[k]);
            put(dir, rel, "1\n");
            if (k > 0) {
                snprintf(rel, sizeof rel, "class/scsi_tape/st%d%s/stats/read_cnt", i, sfx[k]);
                put(dir, rel, "1\n");
            }
        }
        static const char *const files[] = {"in_flight", "io_ns", "other_cnt", "read_byte_cnt", "read_cnt",
                                            "read_ns", "resid_cnt", "write_byte_cnt", "write_cnt", "write_ns"};
        for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
            snprintf(rel, sizeof rel, "class/scsi_tape/st%d/stats/%s", i, files[f]);
            snprintf(body, sizeof body, "%d\n", i + 1);
            put(dir, rel, body);
        }
    }
    char *out = render(dir, dir);
    assert_true(sample(out, "node_scrape_collector_success{collector=\"zfs\"}") == 1);
    assert_true(sample(out, "node_scrape_collector_success{collector=\"tapestats\"}") == 1);
    for (int i = 0; i < 200; i++) {
        char series[128];
        snprintf(series, sizeof series, "node_zfs_zpool_dataset_writes{dataset=\"big/ds%03d\",zpool=\"big\"}", i);
        assert_true(sample(out, series) == i + 1);
    }
    for (int i = 0; i < 20; i++) {
        char series[128];
        snprintf(series, sizeof series, "node_tape_reads_completed_total{device=\"st%d\"}", i);
        assert_true(sample(out, series) == i + 1);
    }
    assert_null(strstr(out, "device=\"nst"));
    assert_null(strstr(out, "device=\"st0a\""));
    free(out);
    tree_rm(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_node_exporter),
        cmocka_unit_test(test_exact_lines),
        cmocka_unit_test(test_absent_sources),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_zfs_many_kstats),
        cmocka_unit_test(test_many_datasets_and_tapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
