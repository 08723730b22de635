/* test_mem.c: the sensors feeding the real memory store (HiDB) end to end:
 * fixture trees, two collects a second apart with mem_tick after each, then
 * the values and series metadata are read back with mem_series_snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sense/sense.h"
#include "tree.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define T0 1700000000000LL

static const mem_series_info *find(const mem_series_info *v, size_t n, const char *name,
                                   const char *labels)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].name, name) && !strcmp(v[i].labels, labels))
            return &v[i];
    return NULL;
}

static void test_sense_into_memory(void **st)
{
    char dir[] = "/tmp/ippoc-sense-mem-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char proc[300], sys[300], state[300], src[512];
    snprintf(proc, sizeof proc, "%s/proc", dir);
    snprintf(sys, sizeof sys, "%s/sys", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(src, sizeof src, "%s/proc1", fixtures_dir());
    assert_int_equal(tree_copy(src, proc), 0);
    snprintf(src, sizeof src, "%s/sys", fixtures_dir());
    assert_int_equal(tree_copy(src, sys), 0);

    core_config cfg;
    core_config_defaults(&cfg);
    core_sncpy(cfg.state_dir, sizeof cfg.state_dir, state);
    core_sncpy(cfg.proc_root, sizeof cfg.proc_root, proc);
    core_sncpy(cfg.sys_root, sizeof cfg.sys_root, sys);
    assert_int_equal(core_mkdir_p(state, 0700), 0);
    char err[256];
    mem_t *m;
    assert_int_equal(mem_open(&m, &cfg, err, sizeof err), 0);
    sense_t *s;
    assert_int_equal(sense_open(&s, &cfg, m, err, sizeof err), 0);

    assert_true(sense_collect(s, T0) > 0);
    assert_int_equal(mem_tick(m, T0), 0);
    snprintf(src, sizeof src, "%s/proc2", fixtures_dir());
    assert_int_equal(tree_copy(src, proc), 0);
    assert_true(sense_collect(s, T0 + 1000) > 0);
    assert_int_equal(mem_tick(m, T0 + 1000), 0);

    mem_series_info *v;
    size_t n;
    assert_int_equal(mem_series_snapshot(m, &v, &n), 0);
    assert_true(n > 100);
    const mem_series_info *x = find(v, n, "cpu.usage_percent", "cpu=\"total\",state=\"user\"");
    assert_non_null(x);
    assert_float_equal(x->last, 30.0, 1e-4);
    assert_int_equal(x->kind, MEM_RATE);
    assert_string_equal(x->unit, "percent");
    x = find(v, n, "disk.read_bytes_per_second", "device=\"vda\"");
    assert_non_null(x);
    assert_float_equal(x->last, 409600.0, 1e-2);
    assert_string_equal(x->unit, "bytes/s");
    x = find(v, n, "memory.total_bytes", "");
    assert_non_null(x);
    assert_float_equal(x->last, 24000000.0 * 1024, 1e3); /* float32 ring */
    assert_int_equal(x->kind, MEM_GAUGE);
    assert_true(mem_series_find(m, "net.rx_bytes_per_second", "iface=\"eth0\"") >= 0);
    free(v);

    sense_close(s);
    mem_close(m);
    core_config_free(&cfg);
    tree_rm(dir);
}

int main(void)
{
    core_log_setup(CORE_LOG_WARN, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sense_into_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
