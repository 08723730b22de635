/* test_gpu.c: the gpu collector against the stand-in NVML library built by
 * the test suite (nvml_stub.c, path in $NVML_STUB): two GPUs, the second
 * refusing some queries with NVML_ERROR_NOT_SUPPORTED, XID events
 * delivered while it runs, per-process memory with the comm read from the
 * proc root; then what happens without a library, with a driver that does
 * not load and with no GPU (one note, no series, never fatal), and the
 * [sense] nvml_library key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem_spy.h"
#include "sense/sense_int.h"
#include "tree.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 1700000000000LL

typedef struct fx {
    char dir[64], proc[128], script[128];
    core_config cfg;
    mem_t *m;
    sense_t *s;
} fx;

static const char *stub_path(void)
{
    const char *p = getenv("NVML_STUB");
    assert_non_null(p);
    return p;
}

static fx *fx_new_en(const char *script, const char *lib, bool enabled)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-gpu-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    snprintf(f->script, sizeof f->script, "%s/nvml.script", f->dir);
    char src[512], path[256];
    snprintf(src, sizeof src, "%s/proc1", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
    snprintf(path, sizeof path, "%s/7777", f->proc);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/7777/comm", f->proc);
    assert_int_equal(file_put(path, "python3\n"), 0);
    assert_int_equal(file_put(f->script, script), 0);
    setenv("NVML_STUB_SCRIPT", f->script, 1);
    core_config_defaults(&f->cfg);
    core_sncpy(f->cfg.proc_root, sizeof f->cfg.proc_root, f->proc);
    core_sncpy(f->cfg.sys_root, sizeof f->cfg.sys_root, f->dir);
    f->cfg.sense_source = CORE_SOURCE_PROCFS;
    core_sncpy(f->cfg.sense_nvml_library, sizeof f->cfg.sense_nvml_library, lib ? lib : stub_path());
    ((core_sense_group *)core_config_group(&f->cfg, "gpu"))->enabled = enabled;
    f->m = fm_open();
    char err[512];
    assert_int_equal(sense_open(&f->s, &f->cfg, f->m, err, sizeof err), 0);
    return f;
}

static fx *fx_new(const char *script, const char *lib) { return fx_new_en(script, lib, true); }

static void fx_free(fx *f)
{
    sense_close(f->s);
    fm_close(f->m);
    core_config_free(&f->cfg);
    tree_rm(f->dir);
    free(f);
}

static void collect(fx *f, int64_t t)
{
    fm_round(f->m);
    sense_collect(f->s, t);
    assert_int_equal(fm_double_puts(f->m), 0);
}

static sense_collector_info gpu_info(fx *f)
{
    sense_collector_info info[64];
    int n = sense_collectors(f->s, info, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (!strcmp(info[i].name, "gpu"))
            return info[i];
    fail_msg("no gpu collector");
    return info[0];
}

static const char two_gpus[] =
    "# two GPUs; the second lacks power, temperature, ECC and processes\n"
    "gpu 0 name=NVIDIA_H200 uuid=GPU-0000-aaaa minor=0 util=37 memutil=12 total=150000000000 "
    "used=1048576000 temp=45 power=110500 limit=700000 sm=1980 mem=2619 tx=1000 rx=2000 ecc_c=1 "
    "ecc_u=0 throttle=4 procs=7777:524288000,999999:1048576 xid=79\n"
    "gpu 1 name=NVIDIA_T4 uuid=GPU-1111-bbbb minor=3 util=0 memutil=0 total=16000000000 used=0 "
    "sm=300 mem=405 tx=0 rx=0 throttle=1 fail=power:3,temp:3,ecc:3,procs:3,events:3\n";

static double get(fx *f, const char *name, const char *labels) { return fm_get(f->m, name, labels); }

static void test_two_gpus(void **st)
{
    (void)st;
    fx *f = fx_new(two_gpus, NULL);
    sense_collector_info ci = gpu_info(f);
    assert_true(ci.available);
    assert_string_equal(ci.note, "NVML (2 GPUs)");
    collect(f, T0);
    assert_true(get(f, "gpu.info", "device=\"nvidia0\",gpu=\"0\",name=\"NVIDIA H200\",pci_bus_id=\"00000000:0F:00.0\","
                  "uuid=\"GPU-0000-aaaa\"") == 1);
    assert_true(get(f, "gpu.info", "device=\"nvidia3\",gpu=\"1\",name=\"NVIDIA T4\",pci_bus_id=\"00000000:10:00.0\","
                  "uuid=\"GPU-1111-bbbb\"") == 1);
    assert_true(get(f, "gpu.utilization_percent", "gpu=\"0\"") == 37);
    assert_true(get(f, "gpu.memory_utilization_percent", "gpu=\"0\"") == 12);
    assert_true(get(f, "gpu.memory_total_bytes", "gpu=\"0\"") == 150000000000.0);
    assert_true(get(f, "gpu.memory_used_bytes", "gpu=\"0\"") == 1048576000.0);
    assert_true(get(f, "gpu.memory_free_bytes", "gpu=\"0\"") == 150000000000.0 - 1048576000.0);
    assert_true(get(f, "gpu.temperature", "gpu=\"0\"") == 45);
    assert_true(get(f, "gpu.power_watts", "gpu=\"0\"") == 110.5);
    assert_true(get(f, "gpu.power_limit_watts", "gpu=\"0\"") == 700);
    assert_true(get(f, "gpu.sm_clock_hz", "gpu=\"0\"") == 1980e6);
    assert_true(get(f, "gpu.memory_clock_hz", "gpu=\"0\"") == 2619e6);
    assert_true(get(f, "gpu.pcie_tx_bytes_per_second", "gpu=\"0\"") == 1000 * 1024.0);
    assert_true(get(f, "gpu.pcie_rx_bytes_per_second", "gpu=\"0\"") == 2000 * 1024.0);
    assert_true(get(f, "gpu.ecc_errors", "gpu=\"0\",type=\"corrected\"") == 1);
    assert_true(get(f, "gpu.ecc_errors", "gpu=\"0\",type=\"uncorrected\"") == 0);
    assert_true(get(f, "gpu.throttle_reasons", "gpu=\"0\"") == 4);
    assert_true(get(f, "gpu.xid_errors", "gpu=\"0\"") == 1);
    assert_true(get(f, "gpu.last_xid", "gpu=\"0\"") == 79);
    assert_true(get(f, "gpu.processes", "gpu=\"0\"") == 2);
    assert_true(get(f, "gpu.process_memory_bytes", "comm=\"python3\",gpu=\"0\",pid=\"7777\"") == 524288000.0);
    /* a pid gone from the proc root: comm unknown, still reported */
    assert_true(get(f, "gpu.process_memory_bytes", "comm=\"?\",gpu=\"0\",pid=\"999999\"") == 1048576.0);
    /* gpu 1: what it supports, nothing of what it refused */
    assert_true(get(f, "gpu.utilization_percent", "gpu=\"1\"") == 0);
    assert_true(get(f, "gpu.sm_clock_hz", "gpu=\"1\"") == 300e6);
    assert_true(get(f, "gpu.throttle_reasons", "gpu=\"1\"") == 1);
    assert_null(fm_find(f->m, "gpu.temperature", "gpu=\"1\""));
    assert_null(fm_find(f->m, "gpu.power_watts", "gpu=\"1\""));
    assert_null(fm_find(f->m, "gpu.ecc_errors", "gpu=\"1\",type=\"corrected\""));
    assert_null(fm_find(f->m, "gpu.processes", "gpu=\"1\""));
    assert_null(fm_find(f->m, "gpu.xid_errors", "gpu=\"1\""));
    int per_tick = fm_count_prefix(f->m, "gpu.", true);
    /* gpu 0: 19 per GPU + 2 processes; gpu 1: info, utilisation x2, memory x3, limit, clocks x2,
     * throttle (its PCIe comes on its own turn, below) */
    assert_int_equal(per_tick, 21 + 10);

    /* next tick: a new XID and a hotter GPU; no event is delivered twice */
    char *more = malloc(sizeof two_gpus + 64);
    snprintf(more, sizeof two_gpus + 64, "%s", two_gpus);
    char *x = strstr(more, "xid=79");
    memmove(x + 9, x + 6, strlen(x + 6) + 1);
    memcpy(x, "xid=79,48", 9);
    x = strstr(more, "temp=45");
    memcpy(x, "temp=91", 7);
    assert_int_equal(file_put(f->script, more), 0);
    free(more);
    collect(f, T0 + 1000);
    assert_true(get(f, "gpu.xid_errors", "gpu=\"0\"") == 2);
    assert_true(get(f, "gpu.last_xid", "gpu=\"0\"") == 48);
    assert_true(get(f, "gpu.temperature", "gpu=\"0\"") == 91);
    collect(f, T0 + 2000);
    assert_true(get(f, "gpu.xid_errors", "gpu=\"0\"") == 2);
    assert_int_equal(fm_count_prefix(f->m, "gpu.", true), per_tick - 2); /* no PCIe this run */
    /* PCIe (a 20 ms wait inside NVML) every 10th run per GPU, GPUs in turn */
    for (int64_t t = T0 + 3000; t < T0 + 9000; t += 1000) {
        collect(f, t);
        assert_true(isnan(get(f, "gpu.pcie_tx_bytes_per_second", "gpu=\"0\"")));
        assert_true(isnan(get(f, "gpu.pcie_tx_bytes_per_second", "gpu=\"1\"")));
    }
    collect(f, T0 + 9000);
    assert_true(get(f, "gpu.pcie_tx_bytes_per_second", "gpu=\"1\"") == 0);
    assert_true(isnan(get(f, "gpu.pcie_tx_bytes_per_second", "gpu=\"0\"")));
    collect(f, T0 + 10000);
    assert_true(get(f, "gpu.pcie_rx_bytes_per_second", "gpu=\"0\"") == 2000 * 1024.0);
    assert_true(isnan(get(f, "gpu.pcie_rx_bytes_per_second", "gpu=\"1\"")));
    assert_true(gpu_info(f).available);
    fx_free(f);
}

/* A query failing with another error (GPU lost) leaves the series out for
 * that tick and is asked again the next. */
static void test_lost_then_back(void **st)
{
    (void)st;
    fx *f = fx_new("gpu 0 name=A uuid=GPU-a util=5 temp=50 fail=temp:15\n", NULL);
    collect(f, T0);
    assert_true(get(f, "gpu.utilization_percent", "gpu=\"0\"") == 5);
    assert_true(isnan(get(f, "gpu.temperature", "gpu=\"0\"")));
    assert_int_equal(file_put(f->script, "gpu 0 name=A uuid=GPU-a util=6 temp=51\n"), 0);
    collect(f, T0 + 1000);
    assert_true(get(f, "gpu.temperature", "gpu=\"0\"") == 51);
    assert_true(gpu_info(f).available);
    fx_free(f);
}

static void expect_unavailable(fx *f, const char *note_part)
{
    sense_collector_info ci = gpu_info(f);
    assert_false(ci.available);
    if (!strstr(ci.note, note_part))
        fail_msg("note '%s' lacks '%s'", ci.note, note_part);
    collect(f, T0);
    collect(f, T0 + 1000);
    collect(f, T0 + 120000); /* past the retry time: still nothing */
    assert_int_equal(fm_count_prefix(f->m, "gpu.", false), 0);
    ci = gpu_info(f);
    assert_false(ci.available);
    assert_non_null(strstr(ci.note, note_part));
    /* every other group still runs */
    assert_true(fm_count_prefix(f->m, "cpu.", true) > 0);
}

static void test_no_library(void **st)
{
    (void)st;
    fx *f = fx_new("", "/nonexistent/libnvidia-ml.so.1");
    expect_unavailable(f, "no NVML (/nonexistent/libnvidia-ml.so.1: cannot open shared object file");
    fx_free(f);
}

static void test_not_nvml(void **st)
{
    (void)st;
    fx *f = fx_new("", "libc.so.6"); /* a library, but not NVML */
    expect_unavailable(f, "the NVML library has no nvmlInit_v2");
    fx_free(f);
}

static void test_driver_not_loaded(void **st)
{
    (void)st;
    fx *f = fx_new("init 9\ngpu 0 name=A\n", NULL);
    expect_unavailable(f, "NVML: nvmlInit failed: Driver Not Loaded");
    fx_free(f);
}

static void test_no_gpu(void **st)
{
    (void)st;
    fx *f = fx_new("# no GPU\n", NULL);
    expect_unavailable(f, "no NVIDIA GPU");
    fx_free(f);
}

/* Job churn: at most 256 process series per GPU over the daemon's life. */
static void test_process_series_bounded(void **st)
{
    (void)st;
    fx *f = fx_new("gpu 0 name=A uuid=GPU-a util=5\n", NULL);
    char script[4096];
    for (int round = 0; round < 18; round++) {
        int o = snprintf(script, sizeof script, "gpu 0 name=A uuid=GPU-a util=5 procs=");
        for (int k = 0; k < 16; k++)
            o += snprintf(script + o, sizeof script - (size_t)o, "%s%d:%d", k ? "," : "", 100000 + round * 16 + k,
                          1024 * (k + 1));
        snprintf(script + o, sizeof script - (size_t)o, "\n");
        assert_int_equal(file_put(f->script, script), 0);
        collect(f, T0 + round * 1000);
        assert_true(get(f, "gpu.processes", "gpu=\"0\"") == 16);
        int puts = fm_count_prefix(f->m, "gpu.process_memory_bytes", true);
        assert_int_equal(puts, round < 16 ? 16 : 0);
    }
    assert_int_equal(fm_count_prefix(f->m, "gpu.process_memory_bytes", false), 256);
    fx_free(f);
}

/* More compute processes than the collector's first buffer holds (NVML
 * answers INSUFFICIENT_SIZE with the count): still counted, and the largest
 * still get their series. */
static void test_many_processes(void **st)
{
    (void)st;
    fx *f = fx_new("gpu 0 name=A uuid=GPU-a util=5\n", NULL);
    char script[8192];
    int o = snprintf(script, sizeof script, "gpu 0 name=A uuid=GPU-a util=5 procs=");
    for (int k = 0; k < 300; k++)
        o += snprintf(script + o, sizeof script - (size_t)o, "%s%d:%d", k ? "," : "", 200000 + k, 1024 * (k + 1));
    snprintf(script + o, sizeof script - (size_t)o, "\n");
    assert_int_equal(file_put(f->script, script), 0);
    collect(f, T0);
    assert_true(get(f, "gpu.processes", "gpu=\"0\"") == 300);
    assert_int_equal(fm_count_prefix(f->m, "gpu.process_memory_bytes", true), 16);
    assert_true(get(f, "gpu.process_memory_bytes", "comm=\"?\",gpu=\"0\",pid=\"200299\"") == 1024 * 300);
    fx_free(f);
}

/* An older driver's library without some functions: their series are left
 * out, the rest is read. */
static void test_old_library(void **st)
{
    (void)st;
    const char *old = getenv("NVML_STUB_OLD");
    assert_non_null(old);
    fx *f = fx_new("gpu 0 name=A uuid=GPU-a util=5 temp=50 tx=7 procs=7777:1024 xid=31 throttle=2\n", old);
    sense_collector_info ci = gpu_info(f);
    assert_true(ci.available);
    assert_string_equal(ci.note, "NVML (1 GPU, no XID events)");
    collect(f, T0);
    assert_true(get(f, "gpu.temperature", "gpu=\"0\"") == 50);
    assert_true(get(f, "gpu.throttle_reasons", "gpu=\"0\"") == 2); /* under its deprecated name */
    assert_null(fm_find(f->m, "gpu.pcie_tx_bytes_per_second", "gpu=\"0\""));
    assert_null(fm_find(f->m, "gpu.processes", "gpu=\"0\""));
    assert_null(fm_find(f->m, "gpu.xid_errors", "gpu=\"0\""));
    fx_free(f);
}

/* Disabled at start: NVML is not loaded at all; a reload enabling the group
 * loads it on the next run. */
static void test_disabled_then_enabled(void **st)
{
    (void)st;
    fx *f = fx_new_en("gpu 0 name=A uuid=GPU-a util=5 temp=50\n", NULL, false);
    assert_null(dlopen(stub_path(), RTLD_NOW | RTLD_NOLOAD));
    sense_collector_info ci = gpu_info(f);
    assert_false(ci.enabled);
    assert_string_equal(ci.note, "NVML not loaded (disabled)");
    collect(f, T0);
    assert_int_equal(fm_count_prefix(f->m, "gpu.", false), 0);
    assert_null(dlopen(stub_path(), RTLD_NOW | RTLD_NOLOAD));
    ((core_sense_group *)core_config_group(&f->cfg, "gpu"))->enabled = true;
    char err[256];
    assert_int_equal(sense_reconfigure(f->s, &f->cfg, err, sizeof err), 0);
    collect(f, T0 + 1000);
    assert_true(get(f, "gpu.temperature", "gpu=\"0\"") == 50);
    ci = gpu_info(f);
    assert_true(ci.enabled && ci.available);
    assert_string_equal(ci.note, "NVML (1 GPU)");
    void *h = dlopen(stub_path(), RTLD_NOW | RTLD_NOLOAD);
    assert_non_null(h);
    dlclose(h);
    fx_free(f);
}

static void test_config_key(void **st)
{
    (void)st;
    core_config c;
    char err[512];
    core_config_defaults(&c);
    assert_string_equal(c.sense_nvml_library, "libnvidia-ml.so.1");
    assert_int_equal(core_config_load_string(&c, "[sense]\nnvml_library = /opt/nv/libnvidia-ml.so.1\n",
                                             "t.conf", err, sizeof err), 0);
    assert_string_equal(c.sense_nvml_library, "/opt/nv/libnvidia-ml.so.1");
    assert_int_equal(core_config_load_string(&c, "[sense.gpu]\ninterval = 5s\nenabled = no\n", "t.conf", err,
                                             sizeof err), 0);
    assert_int_equal(core_config_group(&c, "gpu")->interval_ms, 5000);
    assert_false(core_config_group(&c, "gpu")->enabled);
    assert_int_not_equal(core_config_load_string(&c, "[sense]\n\nnvml_library =\n", "t.conf", err, sizeof err), 0);
    assert_non_null(strstr(err, "t.conf:3:"));
    assert_non_null(strstr(err, "nvml_library: empty"));
    core_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_gpus),        cmocka_unit_test(test_lost_then_back),
        cmocka_unit_test(test_no_library),      cmocka_unit_test(test_not_nvml),
        cmocka_unit_test(test_driver_not_loaded), cmocka_unit_test(test_no_gpu),
        cmocka_unit_test(test_process_series_bounded), cmocka_unit_test(test_many_processes), cmocka_unit_test(test_old_library),     cmocka_unit_test(test_disabled_then_enabled), cmocka_unit_test(test_config_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
