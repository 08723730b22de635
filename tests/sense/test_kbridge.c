/* test_kbridge.c: the kernel bridge as a sensor source. The parser of the
 * /dev/ippoc snapshot on the module's own layout (fixtures/kbridge/snap1.json
 * and snap2.json, one second apart, printed as ippoc_sensor.c prints them)
 * and on broken input (every truncation, bad JSON, missing fields, wrong
 * types, another schema); then the sensors with [sense] device pointed at a
 * regular file: source = kernel, auto with and without the file, a runtime
 * failure falling back to procfs, and the config keys. */
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

#define T0 1700000000000LL

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/kbridge/%s", fixtures_dir(), name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    *len = fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

/* Replaces the first `from` in text by `to` (fresh string). */
static char *subst(const char *text, const char *from, const char *to)
{
    const char *at = strstr(text, from);
    assert_non_null(at);
    size_t n = strlen(text) - strlen(from) + strlen(to) + 1;
    char *o = malloc(n);
    snprintf(o, n, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    return o;
}

static int parse_str(const char *text, sn_kb_snap *o, char *err, size_t n)
{
    return sn_kb_parse(text, strlen(text), o, err, n);
}

static void test_parse_sample(void **st)
{
    (void)st;
    size_t len;
    char *buf = slurp("snap1.json", &len);
    sn_kb_snap o = {0};
    char err[160] = "";
    assert_int_equal(sn_kb_parse(buf, len, &o, err, sizeof err), 0);
    assert_int_equal(o.schema, 1);
    assert_int_equal(o.ncpus, 2);
    assert_int_equal(o.cpus[1].cpu, 1);
    assert_true(o.cpus[1].v[SN_CPU_USER] == 3000000000ULL);
    assert_true(o.cpus[0].v[SN_CPU_IDLE] == 8000000000ULL);
    assert_true(o.cpus[0].v[SN_CPU_SOFTIRQ] == 10000000ULL);
    assert_true(o.total[SN_CPU_USER] == 4000000000ULL);
    assert_true(o.load[0] == 0.52 && o.load[2] == 0.12);
    assert_true(o.mem_total == 8589934592ULL && o.mem_available == 4294967296ULL);
    assert_true(o.mem_cached == 2147483648ULL && o.swap_free == 1048576ULL);
    assert_true(o.processes == 211 && o.threads == 432 && o.running == 3);
    /* reusing the snapshot (its cpu array) */
    assert_int_equal(sn_kb_parse(buf, len, &o, err, sizeof err), 0);
    assert_int_equal(o.ncpus, 2);
    sn_kb_snap_free(&o);
    free(buf);
}

static void test_parse_truncated(void **st)
{
    (void)st;
    size_t len;
    char *buf = slurp("snap1.json", &len);
    sn_kb_snap o = {0};
    char err[160];
    /* every prefix short of the closing brace fails cleanly */
    size_t close = len;
    while (close > 0 && buf[close - 1] != '}')
        close--;
    for (size_t n = 0; n < close; n++) {
        err[0] = 0;
        int r = sn_kb_parse(buf, n, &o, err, sizeof err);
        assert_int_equal(r, -EINVAL);
        assert_true(err[0] != 0);
        assert_int_equal(o.ncpus, 0);
    }
    sn_kb_snap_free(&o);
    free(buf);
}

static void expect_err(const char *text, int rc, const char *want)
{
    sn_kb_snap o = {0};
    char err[160] = "";
    int r = parse_str(text, &o, err, sizeof err);
    if (r != rc || !strstr(err, want))
        fail_msg("got %d '%s', want %d '%s'", r, err, rc, want);
    sn_kb_snap_free(&o);
}

static void test_parse_bad(void **st)
{
    (void)st;
    size_t len;
    char *good = slurp("snap1.json", &len);
    expect_err("", -EINVAL, "bad JSON");
    expect_err("not json", -EINVAL, "bad JSON");
    expect_err("[1,2]", -EINVAL, "not a JSON object");
    expect_err("{}", -EINVAL, "missing schema");
    expect_err("{\"schema\":\"1\"}", -EINVAL, "schema is not an integer");
    expect_err("{\"schema\":2,\"cpu\":{}}", -EPROTONOSUPPORT, "unknown schema 2");
    expect_err("{\"schema\":0}", -EPROTONOSUPPORT, "unknown schema 0");
    expect_err("{\"schema\":1}", -EINVAL, "missing cpu");
    expect_err("{\"schema\":1,\"schema\":1}", -EINVAL, "bad JSON"); /* duplicate key */
    struct {
        const char *from, *to, *want;
    } cases[] = {
        {"\"memory\":{", "\"mem\":{", "missing memory"},
        {"\"available_bytes\"", "\"avail\"", "missing memory.available_bytes"},
        {"\"total_bytes\":8589934592", "\"total_bytes\":-1", "memory.total_bytes is not a non-negative"},
        {"\"total_bytes\":8589934592", "\"total_bytes\":0", "memory.total_bytes is 0"},
        {"\"processes\":211", "\"processes\":\"211\"", "tasks.processes is not"},
        {"\"load1\":0.52", "\"load1\":null", "load.load1 is not"},
        {"\"load5\"", "\"load_5\"", "missing load.load5"},
        {"\"per_cpu\":[", "\"per_cpu\":7,\"x\":[", "cpu.per_cpu is not an array"},
        {"{\"cpu\":1,", "{\"cpu\":-1,", "cpu.per_cpu[1].cpu is not"},
        {"{\"cpu\":1,\"user\"", "{\"cpu\":1,\"usr\"", "missing cpu.per_cpu[1].user"},
        {"\"total\":{\"cpus\":2,\"user\"", "\"total\":{\"cpus\":2,\"u\"", "missing cpu.total.user"},
        {"\"total\":{", "\"tot\":{", "missing total"},
        {"\"tasks\":{", "\"tasks\":[{", "bad JSON"},
        {"\"threads\":432", "\"threads\":1e3", "tasks.threads is not"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *t = subst(good, cases[i].from, cases[i].to);
        expect_err(t, -EINVAL, cases[i].want);
        free(t);
    }
    free(good);
}

/* ---- the sensors on a fake device ------------------------------------------------ */

typedef struct fx {
    char dir[256], proc[300], dev[300];
    core_config cfg;
    mem_t *m;
    sense_t *s;
} fx;

static void put_snap(fx *f, const char *name)
{
    size_t len;
    char *buf = slurp(name, &len);
    assert_int_equal(file_put(f->dev, buf), 0);
    free(buf);
}

/* snap: the first snapshot to put at the device path, or NULL for none */
static fx *fx_new(int source, const char *snap)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-kb-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->proc, sizeof f->proc, "%s/proc", f->dir);
    snprintf(f->dev, sizeof f->dev, "%s/ippoc", f->dir);
    char src[512];
    snprintf(src, sizeof src, "%s/proc1", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
    if (snap)
        put_snap(f, snap);
    core_config_defaults(&f->cfg);
    core_sncpy(f->cfg.proc_root, sizeof f->cfg.proc_root, f->proc);
    core_sncpy(f->cfg.sys_root, sizeof f->cfg.sys_root, f->dir);
    core_sncpy(f->cfg.sense_device, sizeof f->cfg.sense_device, f->dev);
    f->cfg.sense_source = source;
    f->m = fm_open();
    return f;
}

static void fx_open(fx *f)
{
    char err[512];
    assert_int_equal(sense_open(&f->s, &f->cfg, f->m, err, sizeof err), 0);
}

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

static void test_sense_kernel(void **st)
{
    (void)st;
    fx *f = fx_new(CORE_SOURCE_KERNEL, "snap1.json");
    fx_open(f);
    sense_source_info si;
    sense_source(f->s, &si);
    assert_string_equal(si.source, "kernel");
    assert_string_equal(si.mode, "kernel");
    assert_string_equal(si.device, f->dev);
    assert_int_equal(si.schema, 1);
    assert_string_equal(si.reason, "");
    assert_string_equal(sense_kernel_device(f->s), f->dev);

    collect(f, T0);
    assert_true(fm_get(f->m, "load.load1", "source=\"kernel\"") == 0.52);
    assert_true(isnan(fm_get(f->m, "load.load1", ""))); /* procfs not read for load */
    assert_true(fm_get(f->m, "memory.total_bytes", "source=\"kernel\"") == 8589934592.0);
    assert_true(fm_get(f->m, "memory.cached_bytes", "source=\"kernel\"") == 2147483648.0);
    assert_true(fm_get(f->m, "memory.used_percent", "source=\"kernel\"") == 50.0);
    assert_true(isnan(fm_get(f->m, "memory.total_bytes", "")));
    /* what the snapshot lacks still comes from procfs, unlabelled */
    assert_false(isnan(fm_get(f->m, "memory.swap_total_bytes", "")));
    assert_false(isnan(fm_get(f->m, "memory.dirty_bytes", "")));
    assert_true(fm_get(f->m, "processes.count", "source=\"kernel\"") == 211);
    assert_true(fm_get(f->m, "processes.threads", "source=\"kernel\"") == 432);
    const fm_series *ms = fm_find(f->m, "memory.total_bytes", "source=\"kernel\"");
    assert_non_null(ms);
    assert_string_equal(ms->unit, "bytes");

    put_snap(f, "snap2.json");
    f->cfg.sense_source = CORE_SOURCE_KERNEL;
    char src[512];
    snprintf(src, sizeof src, "%s/proc2", fixtures_dir());
    assert_int_equal(tree_copy(src, f->proc), 0);
    collect(f, T0 + 1000);
    /* total: user 4s, system 1s, idle 14s of 19s */
    double u = fm_get(f->m, "cpu.usage_percent", "cpu=\"total\",source=\"kernel\",state=\"user\"");
    assert_float_equal(u, 400.0 / 19.0, 1e-9);
    double i0 = fm_get(f->m, "cpu.usage_percent", "cpu=\"cpu0\",source=\"kernel\",state=\"idle\"");
    assert_float_equal(i0, 800.0 / 9.5, 1e-9);
    assert_true(isnan(fm_get(f->m, "cpu.usage_percent", "cpu=\"total\",state=\"user\"")));
    /* never-used states have no series, like procfs */
    assert_null(fm_find(f->m, "cpu.usage_percent", "cpu=\"total\",source=\"kernel\",state=\"steal\""));
    /* the global counters stay procfs */
    assert_false(isnan(fm_get(f->m, "cpu.context_switches_per_second", "")));

    /* the device fails: that tick is procfs, reported */
    assert_int_equal(unlink(f->dev), 0);
    collect(f, T0 + 2000);
    assert_false(isnan(fm_get(f->m, "load.load1", "")));
    assert_true(isnan(fm_get(f->m, "load.load1", "source=\"kernel\"")));
    assert_false(isnan(fm_get(f->m, "processes.count", "")));
    sense_source(f->s, &si);
    assert_string_equal(si.source, "kernel");
    assert_true(si.last_failed);
    assert_int_equal((int)si.fallbacks, 1);
    assert_non_null(strstr(si.reason, "no "));
    /* garbage: same */
    assert_int_equal(file_put(f->dev, "{\"schema\":1,"), 0);
    collect(f, T0 + 3000);
    assert_false(isnan(fm_get(f->m, "load.load1", "")));
    sense_source(f->s, &si);
    assert_int_equal((int)si.fallbacks, 2);
    assert_non_null(strstr(si.reason, "bad JSON"));
    /* and back */
    put_snap(f, "snap2.json");
    collect(f, T0 + 4000);
    assert_true(fm_get(f->m, "load.load1", "source=\"kernel\"") == 0.52);
    sense_source(f->s, &si);
    assert_false(si.last_failed);
    fx_free(f);
}

static void test_sense_auto(void **st)
{
    (void)st;
    /* no file: procfs, and why */
    fx *f = fx_new(CORE_SOURCE_AUTO, NULL);
    fx_open(f);
    sense_source_info si;
    sense_source(f->s, &si);
    assert_string_equal(si.source, "procfs");
    assert_string_equal(si.mode, "auto");
    char want[400];
    snprintf(want, sizeof want, "no %s", f->dev);
    assert_string_equal(si.reason, want);
    assert_null(sense_kernel_device(f->s));
    collect(f, T0);
    assert_false(isnan(fm_get(f->m, "load.load1", "")));
    assert_null(fm_find(f->m, "load.load1", "source=\"kernel\""));
    fx_free(f);

    /* a schema we do not know: procfs */
    f = fx_new(CORE_SOURCE_AUTO, NULL);
    assert_int_equal(file_put(f->dev, "{\"schema\":2}"), 0);
    fx_open(f);
    sense_source(f->s, &si);
    assert_string_equal(si.source, "procfs");
    assert_string_equal(si.reason, "unknown schema 2");
    fx_free(f);

    /* present: kernel */
    f = fx_new(CORE_SOURCE_AUTO, "snap1.json");
    fx_open(f);
    sense_source(f->s, &si);
    assert_string_equal(si.source, "kernel");
    collect(f, T0);
    assert_true(fm_get(f->m, "load.load1", "source=\"kernel\"") == 0.52);
    fx_free(f);

    /* source = procfs ignores a present device */
    f = fx_new(CORE_SOURCE_PROCFS, "snap1.json");
    fx_open(f);
    sense_source(f->s, &si);
    assert_string_equal(si.source, "procfs");
    collect(f, T0);
    assert_null(fm_find(f->m, "load.load1", "source=\"kernel\""));
    fx_free(f);
}

static void test_sense_kernel_required(void **st)
{
    (void)st;
    fx *f = fx_new(CORE_SOURCE_KERNEL, NULL);
    char err[512] = "";
    assert_int_not_equal(sense_open(&f->s, &f->cfg, f->m, err, sizeof err), 0);
    assert_null(f->s);
    char want[400];
    snprintf(want, sizeof want, "sense: source = kernel but no %s", f->dev);
    assert_string_equal(err, want);
    fx_free(f);
}

static void test_config_keys(void **st)
{
    (void)st;
    core_config c;
    char err[512];
    core_config_defaults(&c);
    assert_int_equal(c.sense_source, CORE_SOURCE_AUTO);
    assert_string_equal(c.sense_device, "/dev/ippoc");
    assert_int_equal(core_config_load_string(&c, "[sense]\nsource = kernel\ndevice = /tmp/x\n", "t.conf",
                                             err, sizeof err), 0);
    assert_int_equal(c.sense_source, CORE_SOURCE_KERNEL);
    assert_string_equal(c.sense_device, "/tmp/x");
    assert_int_equal(core_config_load_string(&c, "[sense]\nsource = procfs\n", "t.conf", err, sizeof err), 0);
    assert_int_equal(c.sense_source, CORE_SOURCE_PROCFS);
    assert_int_not_equal(core_config_load_string(&c, "[sense]\n\nsource = kernal\n", "t.conf", err,
                                                 sizeof err), 0);
    assert_non_null(strstr(err, "t.conf:3:"));
    assert_non_null(strstr(err, "unknown source 'kernal'"));
    assert_int_not_equal(core_config_load_string(&c, "[sense]\ndevice = dev/ippoc\n", "t.conf", err,
                                                 sizeof err), 0);
    assert_non_null(strstr(err, "t.conf:2:"));
    core_config_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_sample),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_bad),
        cmocka_unit_test(test_sense_kernel),
        cmocka_unit_test(test_sense_auto),
        cmocka_unit_test(test_sense_kernel_required),
        cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
