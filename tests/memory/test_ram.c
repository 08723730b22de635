/* test_ram.c: the RAM window: exact values back from mem_query, step
 * aggregation, gaps, the restore of the window after close/reopen, ticks that
 * go backwards, and the validation of query arguments. */
#include "memtest.h"

static mem_point *query(mt *t, int id, int64_t from, int64_t to, int64_t step, int64_t maxp,
                        size_t *n, int *src)
{
    mem_point *p = NULL;
    char err[256] = "";
    int rc = mem_query(t->m, id, from, to, step, maxp, &p, n, src, err, sizeof err);
    if (rc)
        fail_msg("mem_query: %d: %s", rc, err);
    return p;
}

/* value of tick i: exact in float32; NaN on every 7th tick */
static double val(int i)
{
    return i % 7 == 3 ? NAN : (double)(i % 11) * 0.25 - 1.0;
}

static void put_ticks(mt *t, int id, int from_i, int to_i)
{
    for (int i = from_i; i < to_i; i++) {
        mem_put(t->m, id, val(i));
        assert_int_equal(mem_tick(t->m, T0 + (int64_t)i * 1000), 0);
    }
}

static void test_exact_values(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    int other = mem_series(t->m, "w", "", "", "", MEM_GAUGE);
    put_ticks(t, id, 0, 50);
    size_t n;
    int src = -1;
    mem_point *p = query(t, id, T0, T0 + 49000, 1000, 1000, &n, &src);
    assert_int_equal(src, MEM_SRC_RAM);
    size_t k = 0;
    for (int i = 0; i < 50; i++) {
        if (isnan(val(i)))
            continue;
        assert_true(k < n);
        assert_int_equal(p[k].ts, T0 + i * 1000);
        assert_near(p[k].min, val(i));
        assert_near(p[k].max, val(i));
        assert_near(p[k].mean, val(i));
        assert_int_equal(p[k].count, 1);
        k++;
    }
    assert_int_equal(k, n);
    free(p);
    p = query(t, other, T0, T0 + 49000, 1000, 1000, &n, &src);
    assert_int_equal(n, 0); /* never put: every bucket empty, omitted */
    free(p);
    /* a young RAM window still answers for its whole length (60 s) */
    p = query(t, id, T0 + 49000 - 59000, T0 + 49000, 1000, 1000, &n, &src);
    assert_int_equal(src, MEM_SRC_RAM);
    assert_int_equal(p[0].ts, T0);
    free(p);
    p = query(t, id, T0 + 49000 - 60000, T0 + 49000, 1000, 1000, &n, &src);
    assert_int_equal(src, MEM_SRC_10S);
    free(p);
}

static void test_step_aggregation(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    put_ticks(t, id, 0, 40);
    size_t n;
    int src;
    /* from/to not aligned: buckets are step-aligned, samples outside [from, to] ignored */
    mem_point *p = query(t, id, T0 + 2500, T0 + 31000, 10000, 100, &n, &src);
    assert_int_equal(n, 4);
    for (size_t b = 0; b < n; b++) {
        int64_t bts = T0 + (int64_t)b * 10000;
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        uint64_t cnt = 0;
        for (int i = (int)b * 10; i < (int)b * 10 + 10; i++) {
            int64_t ts = T0 + i * 1000LL;
            if (ts < T0 + 2500 || ts > T0 + 31000 || isnan(val(i)))
                continue;
            mn = fmin(mn, val(i)), mx = fmax(mx, val(i)), sum += val(i), cnt++;
        }
        assert_int_equal(p[b].ts, bts);
        assert_int_equal(p[b].count, cnt);
        assert_near(p[b].min, mn);
        assert_near(p[b].max, mx);
        assert_near(p[b].mean, sum / (double)cnt);
    }
    free(p);
}

static void test_gaps_and_backwards(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    mem_put(t->m, id, 1);
    assert_int_equal(mem_tick(t->m, T0), 0);
    mem_put(t->m, id, 2);
    assert_int_equal(mem_tick(t->m, T0 + 5000), 0); /* 4 s gap */
    mem_put(t->m, id, 3);
    assert_int_equal(mem_tick(t->m, T0 + 5000), -ERANGE); /* same second again */
    assert_int_equal(mem_tick(t->m, T0 + 4000), -ERANGE); /* slightly back */
    assert_int_equal(mem_tick(t->m, T0 + 6999), 0);       /* floored to T0+6000, carries the 3 */
    assert_int_equal(mem_tick(t->m, -5), -EINVAL);
    size_t n;
    int src;
    mem_point *p = query(t, id, T0, T0 + 10000, 1000, 100, &n, &src);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].ts, T0);
    assert_int_equal(p[1].ts, T0 + 5000);
    assert_int_equal(p[2].ts, T0 + 6000);
    assert_near(p[2].mean, 3);
    free(p);
    /* a wrap of the ring over the gap leaves no stale slot */
    put_ticks(t, id, 7, 200);
    p = query(t, id, T0 + 150000, T0 + 199000, 1000, 100, &n, &src);
    assert_int_equal(src, MEM_SRC_RAM);
    for (size_t i = 0; i < n; i++)
        assert_true(p[i].ts >= T0 + 150000);
    free(p);
    /* the clock going back by more than the window restarts the RAM window */
    mem_put(t->m, id, 42);
    assert_int_equal(mem_tick(t->m, T0 - 3600000), 0);
    p = query(t, id, T0 - 3600000, T0 - 3600000, 1000, 10, &n, &src);
    assert_int_equal(src, MEM_SRC_RAM);
    assert_int_equal(n, 1);
    assert_near(p[0].mean, 42);
    free(p);
}

static void test_restore_window(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    int late = -1;
    for (int i = 0; i < 120; i++) {
        if (i == 100)
            late = mem_series(t->m, "late", "", "", "", MEM_GAUGE);
        mem_put(t->m, id, val(i));
        if (late >= 0)
            mem_put(t->m, late, i);
        assert_int_equal(mem_tick(t->m, T0 + i * 1000LL), 0);
    }
    mt_close(t);
    mt_open(t);
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_int_equal(st.oldest_ram_ts, T0 + 60000); /* 60 slots, last tick T0+119 s */
    size_t n;
    int src;
    mem_point *p = query(t, id, T0 + 60000, T0 + 119000, 1000, 100, &n, &src);
    assert_int_equal(src, MEM_SRC_RAM);
    size_t k = 0;
    for (int i = 60; i < 120; i++) {
        if (isnan(val(i)))
            continue;
        assert_int_equal(p[k].ts, T0 + i * 1000LL);
        assert_near(p[k].mean, val(i));
        k++;
    }
    assert_int_equal(k, n);
    free(p);
    p = query(t, late, T0 + 60000, T0 + 119000, 1000, 100, &n, &src);
    assert_int_equal(n, 20);
    assert_near(p[0].mean, 100);
    free(p);
    mem_series_info *s;
    assert_int_equal(mem_series_snapshot(t->m, &s, &n), 0);
    assert_near(s[0].last, 119);            /* "late" */
    assert_int_equal(s[0].last_ts, T0 + 119000);
    free(s);
    /* ticking on after the restore continues the same window */
    mem_put(t->m, id, 5);
    assert_int_equal(mem_tick(t->m, T0 + 120000), 0);
    p = query(t, id, T0 + 118000, T0 + 120000, 1000, 100, &n, &src);
    assert_near(p[n - 1].mean, 5);
    free(p);
}

static void expect_err(mt *t, int id, int64_t from, int64_t to, int64_t step, int64_t maxp,
                       int want, const char *needle)
{
    mem_point *p = (mem_point *)1;
    size_t n = 99;
    char err[256] = "";
    int rc = mem_query(t->m, id, from, to, step, maxp, &p, &n, NULL, err, sizeof err);
    assert_int_equal(rc, want);
    assert_null(p);
    assert_int_equal(n, 0);
    if (needle && !strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_query_validation(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    put_ticks(t, id, 0, 10);
    expect_err(t, id, T0 + 5000, T0, 1000, 100, -EINVAL, "before");
    expect_err(t, id, -1, T0, 1000, 100, -EINVAL, "epoch");
    expect_err(t, id, T0, -1, 1000, 100, -EINVAL, "epoch");
    expect_err(t, id, T0, T0 + 1000, 1500, 100, -EINVAL, "multiple of 1000");
    expect_err(t, id, T0, T0 + 1000, -1000, 100, -EINVAL, "step");
    expect_err(t, id, T0, T0 + 1000, 1000, 0, -EINVAL, "max_points");
    expect_err(t, id, T0, T0 + 100000, 1000, 100, -E2BIG, "101 points");
    expect_err(t, id + 100, T0, T0 + 1000, 1000, 100, -ENOENT, "unknown");
    expect_err(t, -1, T0, T0 + 1000, 1000, 100, -ENOENT, NULL);
    /* exactly at the limit is fine */
    size_t n;
    int src;
    free(query(t, id, T0, T0 + 99000, 1000, 100, &n, &src));
}

static void test_auto_step(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    put_ticks(t, id, 0, 60);
    size_t n;
    int src;
    mem_point *p = query(t, id, T0, T0 + 59000, 0, 1000, &n, &src);
    assert_int_equal(p[1].ts - p[0].ts, 1000); /* 1 s gives 60 points */
    free(p);
    p = query(t, id, T0, T0 + 59000, 0, 10, &n, &src);
    assert_true(n <= 10);
    assert_int_equal(p[0].ts, T0);
    assert_int_equal(p[1].ts, T0 + 10000);    /* 1, 2, 5 s too many; 10 s gives 6 */
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += p[i].count;
    assert_int_equal(total, 60 - 9); /* NaN at i % 7 == 3: 9 of 60 */
    free(p);
    p = query(t, id, T0, T0 + 59000, 0, 1, &n, &src);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].count, 51);
    free(p);
}

/* A stuck disk: ticks keep going at full speed, whole batches past the
 * quota are dropped and counted, the RAM window keeps everything. */
static void test_tick_queue_full(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    mt_flush(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    int64_t t0 = core_mono_ms();
    for (int i = 0; i < 130; i++) {
        mem_put(t->m, id, i);
        assert_int_equal(mem_tick(t->m, T0 + i * 1000LL), 0);
    }
    assert_true(core_mono_ms() - t0 < 2000);
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_int_equal(st.dropped_batches, 10);
    assert_int_equal(st.queue_depth, 120);
    size_t n;
    int src;
    mem_point *p = query(t, id, T0 + 70000, T0 + 129000, 1000, 100, &n, &src);
    assert_int_equal(n, 60);
    assert_near(p[59].mean, 129);
    free(p);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    mt_flush(t);
    assert_int_equal(mt_int(db, "SELECT max(ts) FROM raw"), T0 + 119000);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_exact_values, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_step_aggregation, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_gaps_and_backwards, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_restore_window, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_query_validation, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_auto_step, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_tick_queue_full, mt_setup, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
