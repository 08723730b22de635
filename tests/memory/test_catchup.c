/* test_catchup.c: the writer's chunk catch-up. A kill -9 between the commit
 * of the raw rows and the commit of the chunk built from them (reproduced by
 * removing the chunks and moving the done mark back, which is exactly what
 * such a kill leaves): the next open builds them again, once, exactly. A long
 * downtime: the chunks of what existed before it are built (all three
 * tiers), nothing is written for the gap, nothing twice. A clock set back
 * further than the RAM window: the chunks of the "future" go with its raw
 * rows and are built again from the new ticks. (A kill -9 at a
 * random moment of a real writing process is in test_store.c.) */
#include "memtest.h"

static double val(int i)
{
    return i % 13 == 3 ? NAN : (double)((i * 7) % 23) * 0.5 - 3.0;
}

static mem_bucket ref(int a, int b)
{
    mem_acc acc;
    mem_acc_reset(&acc);
    for (int i = a; i < b; i++)
        if (!isnan(val(i)))
            mem_acc_value(&acc, (float)val(i));
    mem_bucket r = mem_acc_get(&acc);
    r.mean = acc.count ? (float)(acc.sum / acc.count) : 0;
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

static void check(sqlite3 *db, int tier, int id, int bucket_i, int a, int b)
{
    static const int per[] = {10, 60, 3600};
    mem_bucket k = mt_bucket(db, tier, id, T0 + (int64_t)bucket_i * per[tier] * 1000);
    mem_bucket r = ref(a, b);
    if (k.count != r.count)
        fail_msg("tier %d bucket %d: count %u, expected %u", tier, bucket_i, k.count, r.count);
    if (!r.count)
        return;
    assert_near(k.min, r.min);
    assert_near(k.max, r.max);
    assert_near(k.mean, r.mean);
}

static void test_kill_between_raw_and_chunk(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    drive(t, id, 0, 1000);
    mt_close(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT value FROM meta WHERE key = 'done_10s'"), T0 + 900000);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 3);
    char sql[200];
    snprintf(sql, sizeof sql, "DELETE FROM rollup_10s WHERE chunk_ts >= %lld; UPDATE meta SET value = %lld "
             "WHERE key = 'done_10s'", T0 + 600000, T0 + 600000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    mt_open(t); /* the writer catches up at start, before any tick */
    mt_flush(t);
    id = mem_series_find(t->m, "v", "");
    db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT value FROM meta WHERE key = 'done_10s'"), T0 + 900000);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 3);
    for (int b = 0; b < 90; b++)
        check(db, 0, id, b, b * 10, b * 10 + 10);
    sqlite3_close(db);
    /* and it goes on from there: the chunk open at the kill gets every tick */
    drive(t, id, 1000, 3700);
    db = mt_db(t);
    for (int b = 0; b < 360; b++)
        check(db, 0, id, b, b * 10, b * 10 + 10);
    for (int b = 0; b < 60; b++)
        check(db, 1, id, b, b * 60, b * 60 + 60);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 12);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1m"), 1);
    sqlite3_close(db);
}

static void test_long_downtime(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    drive(t, id, 0, 1000); /* 16 min 40 s from 22:00 UTC */
    mt_close(t);
    mt_open(t);
    const int back = 30 * 3600; /* 30 h later: 04:00 UTC two days on */
    drive(t, id, back, back + 3901);
    sqlite3 *db = mt_db(t);
    for (int b = 0; b < 100; b++)
        check(db, 0, id, b, b * 10, b * 10 + 10);
    for (int b = 0; b < 17; b++)
        check(db, 1, id, b, b * 60, b * 60 + 60 < 1000 ? b * 60 + 60 : 1000);
    check(db, 2, id, 0, 0, 1000);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rollup_10s WHERE chunk_ts < %lld", T0 + back * 1000LL);
    assert_int_equal(mt_int(db, sql), 4);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rollup_1m WHERE chunk_ts < %lld", T0 + back * 1000LL);
    assert_int_equal(mt_int(db, sql), 1);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1h"), 1);
    /* after the downtime: its own chunks (13 x 5 min closed, 1 hour) */
    snprintf(sql, sizeof sql, "SELECT count(*) FROM rollup_10s WHERE chunk_ts >= %lld", T0 + back * 1000LL);
    assert_int_equal(mt_int(db, sql), 13);
    for (int b = back / 10; b < back / 10 + 390; b++)
        check(db, 0, id, b, b * 10, b * 10 + 10);
    for (int b = back / 60; b < back / 60 + 60; b++)
        check(db, 1, id, b, b * 60, b * 60 + 60);
    assert_int_equal(mt_int(db, "SELECT value FROM meta WHERE key = 'done_1m'"), T0 + (back + 3600) * 1000LL);
    assert_int_equal(mt_int(db, "SELECT value FROM meta WHERE key = 'done_1h'"), T0 + 26 * 3600000LL);
    sqlite3_close(db);
    /* the old range answers from the tiers */
    mem_point *p;
    size_t n;
    int src;
    char err[256];
    assert_int_equal(mem_query(t->m, id, T0, T0 + 999000, 60000, 100, &p, &n, &src, err, sizeof err), 0);
    assert_int_equal(src, MEM_SRC_10S);
    assert_int_equal(n, 17);
    for (size_t k = 0; k < n; k++) {
        mem_bucket r = ref((int)k * 60, (int)k * 60 + 60 < 1000 ? (int)k * 60 + 60 : 1000);
        assert_int_equal(p[k].count, r.count);
        assert_near(p[k].mean, r.mean);
    }
    free(p);
}

static void test_clock_back(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    drive(t, id, 0, 1000);
    drive(t, id, 200, 1300); /* 800 s back: more than the 60 s window */
    sqlite3 *db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT value FROM meta WHERE key = 'done_10s'"), T0 + 1200000);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), 4);
    for (int b = 0; b < 20; b++) /* their raw rows were pruned before the reset */
        assert_int_equal(mt_bucket(db, 0, id, T0 + b * 10000LL).count, 0);
    for (int b = 20; b < 120; b++)
        check(db, 0, id, b, b * 10, b * 10 + 10);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_kill_between_raw_and_chunk, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_long_downtime, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_clock_back, mt_setup, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
