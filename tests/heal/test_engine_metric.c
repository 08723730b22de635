/* test_engine_metric.c: METRIC conditions over a family of series
 * (src/heal/engine_metric.c) against a real memory store in a temporary
 * state dir: the label-subset test, which series decides each comparison,
 * a series with no value yet, the cached set kept while no series is added
 * and refreshed when one is, and how the deciding series is named in the
 * incident's detail and text. Rules come from the real parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "heal/engine_int.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[64];
    core_config cfg;
    mem_t *m;
    int64_t ts;
} fx;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-engmetric-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    core_log_setup(CORE_LOG_ERR, 0);
    core_config_defaults(&f->cfg);
    snprintf(f->cfg.state_dir, sizeof f->cfg.state_dir, "%s", f->dir);
    char err[1024] = "";
    if (mem_open(&f->m, &f->cfg, err, sizeof err))
        fail_msg("mem_open: %s", err);
    f->ts = core_now_ms() / 1000 * 1000;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    mem_close(f->m);
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    core_config_free(&f->cfg);
    free(f);
    return 0;
}

static int series(fx *f, const char *name, const char *labels)
{
    int id = mem_series(f->m, name, labels, "", "", MEM_GAUGE);
    assert_true(id >= 0);
    return id;
}

static void tick(fx *f)
{
    f->ts += 1000;
    assert_int_equal(mem_tick(f->m, f->ts), 0);
}

static heal_rule rule; /* big: off the stack */

static const heal_resource *cond(const char *text)
{
    char err[512];
    if (heal_rule_parse(text, "t.conf", 1, &rule, err, sizeof err))
        fail_msg("%s: %s", text, err);
    assert_int_equal(rule.cond.res.kind, HEAL_RES_METRIC);
    return &rule.cond.res;
}

/* Evaluates a rule once on a fresh set; *held: whether its condition holds. */
static eng_metric_hit eval(fx *f, const char *text, bool *held)
{
    const heal_resource *res = cond(text);
    eng_metric_set set = {.nseries = -1};
    eng_metric_hit h;
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    *held = h.id >= 0 && heal_cmp_eval(res->op, h.value, res->threshold);
    eng_metric_set_free(&set);
    return h;
}

static void test_subset(void **state)
{
    (void)state;
    assert_true(mem_labels_subset("gpu=\"0\"", ""));
    assert_true(mem_labels_subset("", ""));
    assert_true(mem_labels_subset("gpu=\"0\",uuid=\"GPU-1\"", "gpu=\"0\""));
    assert_true(mem_labels_subset("gpu=\"0\",uuid=\"GPU-1\"", "uuid=\"GPU-1\""));
    assert_true(mem_labels_subset("gpu=\"0\",uuid=\"GPU-1\"", "gpu=\"0\",uuid=\"GPU-1\""));
    assert_false(mem_labels_subset("", "gpu=\"0\""));
    assert_false(mem_labels_subset("gpu=\"01\"", "gpu=\"0\""));
    assert_false(mem_labels_subset("xgpu=\"0\"", "gpu=\"0\""));
    assert_false(mem_labels_subset("gpu=\"0\"", "gpu=\"0\",uuid=\"GPU-1\""));
    /* a pair written inside another's value is not a pair */
    assert_false(mem_labels_subset("a=\"x\\\",b=\\\"y\"", "b=\"y\""));
    assert_true(mem_labels_subset("a=\"x\\\",b=\\\"y\",b=\"y\"", "b=\"y\""));
}

static void test_which_series(void **state)
{
    fx *f = *state;
    int g0 = series(f, "gpu.temperature", "gpu=\"0\"");
    int g1 = series(f, "gpu.temperature", "gpu=\"1\"");
    int other = series(f, "gpu.temperature_limit", "gpu=\"0\"");
    int power = series(f, "gpu.power_watts", "gpu=\"0\"");
    mem_put(f->m, g0, 45);
    mem_put(f->m, g1, 91);
    mem_put(f->m, other, 200);
    mem_put(f->m, power, 300);
    tick(f);

    bool held;
    eng_metric_hit h = eval(f, "if gpu.temperature > 85 for 1m then alert", &held);
    assert_true(held);
    assert_int_equal(h.id, g1);
    assert_int_equal(h.matched, 2); /* not gpu.temperature_limit, not gpu.power_watts */
    assert_string_equal(h.labels, "gpu=\"1\"");
    assert_true(h.value == 91);
    h = eval(f, "if metric gpu.temperature >= 95 then alert", &held);
    assert_false(held);
    assert_int_equal(h.id, g1); /* the largest, still below */
    h = eval(f, "if gpu.temperature < 50 then alert", &held);
    assert_true(held);
    assert_int_equal(h.id, g0);
    h = eval(f, "if gpu.temperature <= 40 then alert", &held);
    assert_false(held);
    assert_int_equal(h.id, g0);
    /* == : some series equals; != : some series differs */
    h = eval(f, "if gpu.temperature == 91 then alert", &held);
    assert_true(held);
    assert_int_equal(h.id, g1);
    h = eval(f, "if gpu.temperature == 60 then alert", &held);
    assert_false(held);
    h = eval(f, "if gpu.temperature != 45 then alert", &held);
    assert_true(held);
    assert_int_equal(h.id, g1);
    h = eval(f, "if gpu.temperature != 91 then alert", &held);
    assert_true(held);
    assert_int_equal(h.id, g0);
    /* exact labels: that series alone, as before */
    h = eval(f, "if metric gpu.temperature{gpu=\"0\"} > 85 then alert", &held);
    assert_false(held);
    assert_int_equal(h.matched, 1);
    assert_int_equal(h.id, g0);
    h = eval(f, "if gpu.temperature{gpu=\"1\"} > 85 then alert", &held);
    assert_true(held);
    assert_int_equal(h.id, g1);
    /* labels no series has: nothing to compare, never holds */
    h = eval(f, "if gpu.temperature{gpu=\"7\"} > 0 then alert", &held);
    assert_false(held);
    assert_int_equal(h.matched, 0);
    assert_int_equal(h.id, -1);
    assert_true(isnan(h.value));
    h = eval(f, "if nvidia.temperature > 0 then alert", &held);
    assert_false(held);
    assert_int_equal(h.matched, 0);
}

static void test_cache_and_refresh(void **state)
{
    fx *f = *state;
    int g0 = series(f, "gpu.temperature", "gpu=\"0\"");
    mem_put(f->m, g0, 50);
    tick(f);
    const heal_resource *res = cond("if gpu.temperature > 85 then alert");
    eng_metric_set set = {.nseries = -1};
    eng_metric_hit h;
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.nseries, mem_series_count(f->m));
    int *ids = set.ids;
    /* new values, no new series: the same set, the new value */
    mem_put(f->m, g0, 88);
    tick(f);
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_ptr_equal(set.ids, ids);
    assert_true(h.value == 88);
    /* a series with no value yet is in the set and decides nothing */
    int g2 = series(f, "gpu.temperature", "gpu=\"2\"");
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_int_equal(set.n, 2);
    assert_int_equal(h.id, g0);
    /* another family's new series: refreshed, same members */
    series(f, "gpu.power_watts", "gpu=\"2\"");
    mem_put(f->m, g0, 60);
    mem_put(f->m, g2, 99);
    tick(f);
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_int_equal(set.n, 2);
    assert_int_equal(set.nseries, mem_series_count(f->m));
    assert_int_equal(h.id, g2);
    assert_string_equal(h.labels, "gpu=\"2\"");
    /* no value this tick: the last one counts, as for one series */
    tick(f);
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_true(h.value == 99);
    eng_metric_set_free(&set);
    assert_null(set.ids);
    assert_int_equal(set.nseries, -1);
    /* no store: an error, not a crash */
    assert_int_equal(eng_metric_eval(NULL, &set, res, &h), -EINVAL);
    assert_int_equal(h.id, -1);
}

static void test_naming(void **state)
{
    fx *f = *state;
    int id = series(f, "app.queue", "name=\"a \\\"b\\\"\",shard=\"1\"");
    mem_put(f->m, id, 12.5);
    tick(f);
    bool held;
    eng_metric_hit h = eval(f, "if app.queue{shard=\"1\"} > 10 then alert", &held);
    assert_true(held);
    json_t *d = json_pack("{s:s, s:f}", "resource", "metric", "value", h.value);
    eng_metric_detail(d, "app.queue", &h);
    assert_string_equal(json_string_value(json_object_get(d, "series")), "app.queue{name=\"a \\\"b\\\"\",shard=\"1\"}");
    json_t *labels = json_object_get(d, "labels");
    assert_string_equal(json_string_value(json_object_get(labels, "name")), "a \"b\"");
    assert_string_equal(json_string_value(json_object_get(labels, "shard")), "1");
    assert_int_equal(json_integer_value(json_object_get(d, "matched")), 1);
    char text[HEAL_RULE_LINE_MAX + 64] = "if metric app.queue{shard=\"1\"} > 10 then alert";
    eng_metric_what(text, sizeof text, d);
    assert_string_equal(text, "if metric app.queue{shard=\"1\"} > 10 then alert [app.queue{name=\"a \\\"b\\\"\",shard=\"1\"} = 12.5]");
    /* a cut buffer stays terminated */
    char small[12] = "if x";
    eng_metric_what(small, sizeof small, d);
    assert_string_equal(small, "if x [app.q");
    json_decref(d);
    /* no series: no name, the text unchanged */
    h = eval(f, "if app.queue{shard=\"2\"} > 10 then alert", &held);
    d = json_pack("{s:s, s:f}", "resource", "metric", "value", 0.0);
    eng_metric_detail(d, "app.queue", &h);
    assert_null(json_object_get(d, "series"));
    char same[64] = "if metric app.queue > 10 then alert";
    eng_metric_what(same, sizeof same, d);
    assert_string_equal(same, "if metric app.queue > 10 then alert");
    json_decref(d);
}

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* The cost the cache saves: an evaluation reads its few series, a refresh
 * looks at every series of the store (printed, not asserted: shared CPU). */
static void test_cost(void **state)
{
    fx *f = *state;
    char labels[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(labels, sizeof labels, "pid=\"%d\"", i);
        mem_put(f->m, series(f, "process.rss_bytes", labels), i);
    }
    for (int i = 0; i < 8; i++) {
        snprintf(labels, sizeof labels, "gpu=\"%d\"", i);
        mem_put(f->m, series(f, "gpu.temperature", labels), 40 + i);
    }
    tick(f);
    const heal_resource *res = cond("if gpu.temperature > 85 then alert");
    eng_metric_set set = {.nseries = -1};
    eng_metric_hit h;
    double t0 = now_us();
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    double t1 = now_us();
    const int n = 1000;
    for (int i = 0; i < n; i++)
        assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    double t2 = now_us();
    assert_int_equal(set.n, 8);
    assert_true(h.value == 47);
    print_message("METRIC rule over 8 of %d series: first (refresh) %.1f us, cached %.2f us per evaluation\n",
                  mem_series_count(f->m), t1 - t0, (t2 - t1) / n);
    eng_metric_set_free(&set);
}

/* Series added after the set was found join it in their place by labels,
 * so "the first by labels" stays the first whatever order they came in. */
static void test_grown_in_order(void **state)
{
    fx *f = *state;
    int g2 = series(f, "gpu.temperature", "gpu=\"2\"");
    mem_put(f->m, g2, 90);
    tick(f);
    const heal_resource *res = cond("if gpu.temperature == 90 then alert");
    eng_metric_set set = {.nseries = -1};
    eng_metric_hit h;
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_int_equal(h.id, g2);
    int g0 = series(f, "gpu.temperature", "gpu=\"0\"");
    series(f, "gpu.power_watts", "gpu=\"1\"");
    int g1 = series(f, "gpu.temperature", "gpu=\"1\"");
    for (int i = 0; i < 6; i++) /* past the first capacity */
        mem_put(f->m, series(f, "gpu.temperature", i % 2 ? "gpu=\"9\",x=\"a\"" : "gpu=\"8\""), 1);
    mem_put(f->m, g0, 90);
    mem_put(f->m, g1, 90);
    mem_put(f->m, g2, 90);
    tick(f);
    assert_int_equal(eng_metric_eval(f->m, &set, res, &h), 0);
    assert_int_equal(set.n, 5);
    assert_int_equal(h.id, g0);
    for (int i = 1; i < set.n; i++)
        assert_true(strcmp(set.labels[i - 1], set.labels[i]) < 0);
    assert_int_equal(set.nseries, mem_series_count(f->m));
    eng_metric_set_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subset),
        cmocka_unit_test_setup_teardown(test_which_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_and_refresh, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grown_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_naming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
