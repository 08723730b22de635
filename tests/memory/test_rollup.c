/* test_rollup.c: the 10 s / 1 min / 1 h tiers: stored chunks (decoded)
 * against a reference computed from the same sequence (NaNs skipped), answers
 * read from the tiers for ranges older than the (60 s) RAM window, the choice
 * of tier, the recent part of a tier answer derived from the tier below,
 * chunks spanning close/reopen, and retention pruning by chunk. */
#include "memtest.h"

static const int64_t W[3] = {10000, 60000, 3600000};

static double val(int i)
{
    return i % 13 == 3 ? NAN : (double)((i * 7) % 23) * 0.5 - 3.0;
}

typedef struct ref {
    double min, max, sum;
    uint64_t count;
} ref;

/* Reference over ticks [a, b) of the sequence. */
static ref ref_range(int a, int b)
{
    ref r = {INFINITY, -INFINITY, 0, 0};
    for (int i = a; i < b; i++) {
        double v = val(i);
        if (isnan(v))
            continue;
        r.min = fmin(r.min, v), r.max = fmax(r.max, v), r.sum += v, r.count++;
    }
    return r;
}

static void drive(mt *t, int id, int from_i, int to_i)
{
    for (int i = from_i; i < to_i; i++) {
        mem_put(t->m, id, val(i));
        assert_int_equal(mem_tick(t->m, T0 + (int64_t)i * 1000), 0);
        if (i % 50 == 49)
            mt_flush(t);
    }
    mt_flush(t);
}

/* The stored bucket of tier at ts against the reference. */
static void check_row(sqlite3 *db, int tier, int id, int64_t ts, ref r)
{
    mem_bucket b = mt_bucket(db, tier, id, ts);
    if (b.count != r.count)
        fail_msg("tier %d bucket %lld: count %u, expected %llu", tier, (long long)(ts - T0), b.count,
                 (unsigned long long)r.count);
    if (!r.count)
        return;
    assert_near(b.min, r.min);
    assert_near(b.max, r.max);
    assert_near(b.mean, r.sum / (double)r.count);
}

static mem_point *query(mt *t, int id, int64_t from, int64_t to, int64_t step, size_t *n, int *src)
{
    mem_point *p = NULL;
    char err[256] = "";
    int rc = mem_query(t->m, id, from, to, step, 100000, &p, n, src, err, sizeof err);
    if (rc)
        fail_msg("mem_query: %d: %s", rc, err);
    return p;
}

/* Each answer point against the reference of its step bucket. */
static void check_points(const mem_point *p, size_t n, int64_t from, int64_t to, int64_t step, int last_i)
{
    size_t k = 0;
    for (int64_t b = from / step * step; b <= to; b += step) {
        int a = (int)((b - T0) / 1000), e = (int)((b + step - T0) / 1000);
        if (a < 0)
            a = 0;
        if (e > last_i + 1)
            e = last_i + 1;
        ref r = ref_range(a, e);
        if (!r.count)
            continue;
        assert_true(k < n);
        assert_int_equal(p[k].ts, b);
        assert_int_equal(p[k].count, r.count);
        assert_near(p[k].min, r.min);
        assert_near(p[k].max, r.max);
        assert_near(p[k].mean, r.sum / (double)r.count);
        k++;
    }
    assert_int_equal(k, n);
}

static void test_hand_computed_bucket(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    static const double seq[10] = {-1, -0.75, -0.5, NAN, 0, 0.25, 0.5, 0.75, 1.0, 1.25};
    for (int i = 0; i < 10; i++) {
        mem_put(t->m, id, seq[i]);
        assert_int_equal(mem_tick(t->m, T0 + i * 1000), 0);
    }
    assert_int_equal(mem_tick(t->m, T0 + 10000), 0);
    mt_flush(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 0); /* chunk still open */
    sqlite3_close(db);
    mem_put(t->m, id, 2.0);
    assert_int_equal(mem_tick(t->m, T0 + 300000), 0); /* closes the first 5 min chunk */
    mt_flush(t);
    db = mt_db(t);
    check_row(db, 0, id, T0, (ref){-1, 1.25, 1.5, 9});
    check_row(db, 0, id, T0 + 10000, (ref){0, 0, 0, 0});
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 1);
    assert_int_equal(mt_int(db, "SELECT value FROM meta WHERE key = 'done_10s'"), T0 + 300000);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1m"), 0); /* hour still open */
    sqlite3_close(db);
}

static void test_tiers_exact(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    int sparse = mem_series(t->m, "sparse", "", "", "", MEM_GAUGE);
    const int N = 2 * 3600 + 15;
    for (int i = 0; i < N; i++) {
        mem_put(t->m, id, val(i));
        if (i < 5)
            mem_put(t->m, sparse, 7.0);
        assert_int_equal(mem_tick(t->m, T0 + (int64_t)i * 1000), 0);
        if (i % 50 == 49)
            mt_flush(t);
    }
    mt_flush(t);
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_int_equal(st.dropped_batches, 0);
    sqlite3 *db = mt_db(t);
    /* closed chunks: 10 s and 1 min up to T0 + 2 h; the 1 h tier's day
     * (T0 is 22:00 UTC) closed at T0 + 2 h too */
    for (int tier = 0; tier < 3; tier++) {
        int per = (int)(W[tier] / 1000);
        int closed = 7200 / per;
        for (int b = 0; b < closed; b++)
            check_row(db, tier, id, T0 + (int64_t)b * W[tier], ref_range(b * per, (b + 1) * per));
    }
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s WHERE series=0"), 24);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1m WHERE series=0"), 2);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1h WHERE series=0"), 1);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s WHERE series=1"), 1);
    assert_int_equal(mt_bucket(db, 2, 1, T0).count, 5);
    assert_int_equal(mt_bucket(db, 0, 1, T0).count, 5);
    sqlite3_close(db);

    /* answers for ranges older than the RAM window come from the 10 s tier */
    size_t n;
    int src = -1;
    mem_point *p = query(t, id, T0, T0 + 3599999, 10000, &n, &src);
    assert_int_equal(src, MEM_SRC_10S);
    check_points(p, n, T0, T0 + 3599999, 10000, N - 1);
    free(p);
    p = query(t, id, T0 + 5000, T0 + 3599999, 60000, &n, &src);
    assert_int_equal(src, MEM_SRC_10S);
    check_points(p, n, T0, T0 + 3599999, 60000, N - 1);
    free(p);
    p = query(t, id, T0, T0 + 7199999, 3600000, &n, &src);
    check_points(p, n, T0, T0 + 7199999, 3600000, N - 1);
    free(p);
    /* explicit step finer than the tier: rounded up to 10 s */
    p = query(t, id, T0, T0 + 59999, 1000, &n, &src);
    assert_int_equal(src, MEM_SRC_10S);
    assert_int_equal(n, 6);
    check_points(p, n, T0, T0 + 59999, 10000, N - 1);
    free(p);
    /* a range reaching the newest data ends with the open buckets, from RAM */
    p = query(t, id, T0, T0 + (N - 1) * 1000LL, 3600000, &n, &src);
    assert_int_equal(n, 3);
    check_points(p, n, T0, T0 + (N - 1) * 1000LL, 3600000, N - 1);
    free(p);
    p = query(t, id, T0 + 3600000, T0 + (N - 1) * 1000LL, 10000, &n, &src);
    check_points(p, n, T0 + 3600000, T0 + (N - 1) * 1000LL, 10000, N - 1);
    free(p);
}

static void test_tier_choice(void **state)
{
    mt *t = mt_new(60000);
    t->cfg.mem_retention_10s_ms = 30 * 60000LL;
    t->cfg.mem_retention_1m_ms = 90 * 60000LL;
    mt_open(t);
    *state = t;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    const int N = 2 * 3600 + 1; /* last tick at T0 + 2 h */
    drive(t, id, 0, N);
    int64_t last = T0 + 7200000;
    size_t n;
    int src;
    mem_point *p = query(t, id, last - 30000, last, 1000, &n, &src);
    assert_int_equal(src, MEM_SRC_RAM);
    free(p);
    p = query(t, id, last - 20 * 60000, last, 0, &n, &src);
    assert_int_equal(src, MEM_SRC_10S);
    check_points(p, n, last - 20 * 60000, last, p[1].ts - p[0].ts, N - 1);
    free(p);
    p = query(t, id, last - 60 * 60000, last, 60000, &n, &src);
    assert_int_equal(src, MEM_SRC_1M);
    check_points(p, n, last - 60 * 60000, last, 60000, N - 1);
    free(p);
    p = query(t, id, T0, last, 0, &n, &src);
    assert_int_equal(src, MEM_SRC_1H);
    check_points(p, n, T0, last, 3600000, N - 1);
    free(p);
    /* pruning kept the tiers to their retention */
    sqlite3 *db = mt_db(t);
    char sql[160];
    /* whole chunks out of retention are gone (pruning runs once a minute) */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rollup_10s WHERE chunk_ts + 300000 <= %lld",
             (long long)(last - 31 * 60000));
    assert_int_equal(mt_int(db, sql), 0);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rollup_1m WHERE chunk_ts + 3600000 <= %lld",
             (long long)(last - 91 * 60000));
    assert_int_equal(mt_int(db, sql), 0);
    assert_true(mt_int(db, "SELECT count(*) FROM rollup_10s") >= 6);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1h"), 1); /* one day chunk */
    assert_int_equal(mt_bucket(db, 2, id, T0 + 3600000).count, ref_range(3600, 7200).count);
    /* raw rows: RAM window + one 5 min chunk + 1 min slack (+ 1 min prune lag) */
    assert_true(mt_int(db, "SELECT count(*) FROM raw") <= 61 + 300 + 60 + 60);
    sqlite3_close(db);
}

/* Close and reopen in the middle of every tier's bucket, twice: the stored
 * rows still count every tick exactly once. */
static void test_open_buckets_survive_reopen(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    drive(t, id, 0, 1234);
    mt_close(t);
    mt_open(t);
    drive(t, id, 1234, 2222);
    mt_close(t);
    mt_open(t);
    drive(t, id, 2222, 3601);
    sqlite3 *db = mt_db(t);
    for (int b = 0; b < 60; b++)
        check_row(db, 1, id, T0 + b * 60000LL, ref_range(b * 60, b * 60 + 60));
    check_row(db, 0, id, T0 + 1230000, ref_range(1230, 1240));
    check_row(db, 0, id, T0 + 2220000, ref_range(2220, 2230));
    for (int b = 0; b < 360; b++)
        check_row(db, 0, id, T0 + b * 10000LL, ref_range(b * 10, b * 10 + 10));
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 12);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1m"), 1);
    sqlite3_close(db);
    size_t n;
    int src;
    mem_point *p = query(t, id, T0, T0 + 3599999, 3600000, &n, &src);
    check_points(p, n, T0, T0 + 3599999, 3600000, 3600);
    free(p);
}

static void test_retention_pruning(void **state)
{
    mt *t = mt_new(60000);
    t->cfg.mem_retention_10s_ms = 5 * 60000LL;
    t->cfg.mem_retention_1m_ms = 20 * 60000LL;
    t->cfg.mem_retention_1h_ms = 2 * 3600000LL;
    t->cfg.mem_event_retention_ms = 3600000LL;
    mt_open(t);
    *state = t;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    int64_t old = mem_event_add(t->m, T0 - 7200000, "old.one", "info", "test", NULL);
    int64_t keep = mem_event_add(t->m, T0 + 3 * 3600000LL, "new.one", "info", "test", NULL);
    assert_true(old > 0 && keep > old);
    drive(t, id, 0, 3 * 3600 + 10);
    int64_t last = T0 + (3 * 3600 + 9) * 1000LL;
    sqlite3 *db = mt_db(t);
    /* a chunk goes once all of it is older than the retention (pruning runs
     * once a minute), and not before the next tier was built from it */
    assert_true(mt_int(db, "SELECT min(chunk_ts) FROM rollup_10s") + 300000 > last - 5 * 60000 - 60000);
    assert_true(mt_int(db, "SELECT min(chunk_ts) FROM rollup_10s") <= last - 5 * 60000);
    /* the 1 h tier's day ended at T0 + 2 h: 1 min chunks before are prunable */
    assert_int_equal(mt_int(db, "SELECT min(chunk_ts) FROM rollup_1m"), T0 + 2 * 3600000LL);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1h"), 1); /* the day ending at T0 + 2 h */
    assert_true(mt_int(db, "SELECT min(ts) FROM raw") > last - 60000 - 360000 - 60000);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM events WHERE type='old.one'"), 0);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM events WHERE type='new.one'"), 1);
    sqlite3_close(db);
    /* ids never go back, even once the newest event was pruned */
    mt_close(t);
    t->cfg.mem_event_retention_ms = 1000;
    mt_open(t);
    drive(t, id, 3 * 3600 + 200, 3 * 3600 + 202);
    db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM events"), 0);
    sqlite3_close(db);
    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_last_event_id(t->m), keep);
    assert_int_equal(mem_event_add(t->m, 0, "after.prune", "info", "", NULL), keep + 1);
}

/* A tier answer whose range reaches the newest data: the 1 h tier has no
 * chunk yet (its day is open), the 1 min tier's hour is open: the answer is
 * built from the 1 min chunks, the 10 s chunks, the raw rows and the RAM,
 * and still matches the reference exactly, up to the last tick. */
static void test_recent_from_tier_below(void **state)
{
    mt *t = mt_new(60000);
    t->cfg.mem_retention_10s_ms = 10 * 60000LL;
    t->cfg.mem_retention_1m_ms = 70 * 60000LL;
    mt_open(t);
    *state = t;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    const int start = 2 * 3600, N = 2 * 3600 + 47 * 60 + 13; /* a day starting at T0 + 2 h */
    drive(t, id, start, start + N);
    int64_t last = T0 + (int64_t)(start + N - 1) * 1000;
    sqlite3 *db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1h"), 0);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1m"), 2);
    sqlite3_close(db);
    size_t n;
    int src;
    int64_t from = T0 + start * 1000LL;
    mem_point *p = query(t, id, from, last, 3600000, &n, &src);
    assert_int_equal(src, MEM_SRC_1H);
    assert_int_equal(n, 3);
    check_points(p, n, from, last, 3600000, start + N - 1);
    free(p);
    /* the 1 min tier: its last hour comes from 10 s chunks, raw rows, RAM */
    p = query(t, id, last - 65 * 60000, last, 60000, &n, &src);
    assert_int_equal(src, MEM_SRC_1M);
    check_points(p, n, last - 65 * 60000, last, 60000, start + N - 1);
    free(p);
    p = query(t, id, last - 9 * 60000, last, 10000, &n, &src);
    assert_int_equal(src, MEM_SRC_10S);
    check_points(p, n, last - 9 * 60000, last, 10000, start + N - 1);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hand_computed_bucket, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_tiers_exact, mt_setup, mt_teardown),
        cmocka_unit_test_teardown(test_tier_choice, mt_teardown),
        cmocka_unit_test_setup_teardown(test_open_buckets_survive_reopen, mt_setup, mt_teardown),
        cmocka_unit_test_teardown(test_retention_pruning, mt_teardown),
        cmocka_unit_test_teardown(test_recent_from_tier_below, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
