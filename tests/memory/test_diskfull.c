/* test_diskfull.c: the writer under write failures. The disk is made full
 * (PRAGMA max_page_count on the writer's own connection: SQLITE_FULL as soon
 * as a page must be added) or read-only (PRAGMA query_only) on demand, through
 * the writer test hook. Series registrations and events of a failed batch are
 * retried until they commit (ticks are dropped and counted), events stay
 * visible to queries all along, and after a reopen every series keeps its id,
 * no id is handed out twice and the restored values belong to the right
 * series. Also: next_id at open goes past every id the disk refers to (raw
 * row lengths, the series_hwm mark, rollup chunks) even with series rows
 * missing. */
#include "memtest.h"

#define NBASE 1200 /* a raw row of 4800 bytes: needs an overflow page */

static void pragma(mt *t, const char *sql)
{
    assert_int_equal(mem_test_writer_exec(t->m, sql), SQLITE_OK);
}

static int64_t count(const mt *t, const char *sql)
{
    sqlite3 *db = mt_db(t);
    int64_t v = mt_int(db, sql);
    sqlite3_close(db);
    return v;
}

static mem_stats stats(mt *t)
{
    mem_stats st;
    mem_get_stats(t->m, &st);
    return st;
}

/* Ids of the events a query returns (ascending), their number. */
static size_t event_ids(mt *t, int64_t *ids, size_t max)
{
    mem_event_query q = {.limit = 10000, .ascending = true};
    mem_event *ev;
    size_t n;
    char err[256] = "";
    int rc = mem_events_query(t->m, &q, &ev, &n, err, sizeof err);
    if (rc)
        fail_msg("mem_events_query: %d: %s", rc, err);
    for (size_t i = 0; i < n && i < max; i++)
        ids[i] = ev[i].id;
    mem_events_free(ev, n);
    return n;
}

static bool has_event(mt *t, int64_t id)
{
    static int64_t ids[10000];
    size_t n = event_ids(t, ids, 10000);
    for (size_t i = 0; i < n; i++)
        if (ids[i] == id)
            return true;
    return false;
}

/* Value of series id at second ts from the RAM window; NaN if none. */
static double ram_value(mt *t, int id, int64_t ts)
{
    mem_point *p;
    size_t n;
    int src;
    char err[256] = "";
    int rc = mem_query(t->m, id, ts, ts, 1000, 10, &p, &n, &src, err, sizeof err);
    if (rc)
        fail_msg("mem_query %d: %d: %s", id, rc, err);
    assert_int_equal(src, MEM_SRC_RAM);
    double v = n ? p[0].mean : NAN;
    free(p);
    return v;
}

/* Value of id in the stored raw row of ts. */
static double raw_at(const mt *t, int64_t ts, int id)
{
    sqlite3 *db = mt_db(t);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT v FROM raw WHERE ts = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_int64(st, 1, ts);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    double v = mem_raw_value(sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0), id);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void tick(mt *t, int64_t ts)
{
    assert_int_equal(mem_tick(t->m, ts), 0);
}

/* The scenario of the bug: new series and events in a batch that fails on a
 * full disk, more ticks while full, then room again. */
static void test_full_disk(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    int base[NBASE];
    char labels[32];
    for (int i = 0; i < NBASE; i++) {
        snprintf(labels, sizeof labels, "i=\"%d\"", i);
        base[i] = mem_series(t->m, "base", labels, "", "", MEM_GAUGE);
        assert_int_equal(base[i], i);
    }
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < NBASE; i++)
            mem_put(t->m, base[i], i);
        tick(t, T0 + s * 1000LL);
    }
    mt_flush(t);
    assert_int_equal(stats(t).dropped_batches, 0);
    assert_int_equal(count(t, "PRAGMA freelist_count"), 0);

    /* full: no page can be added (the limit snaps to the current size) */
    pragma(t, "PRAGMA max_page_count = 1");
    mem_test_hold(t->m, true); /* one batch: the new series, an event, a tick */
    int a = mem_series(t->m, "new.a", "", "", "", MEM_GAUGE);
    int b = mem_series(t->m, "new.b", "", "", "", MEM_RATE);
    assert_int_equal(a, NBASE);
    assert_int_equal(b, NBASE + 1);
    int64_t e1 = mem_event_add(t->m, T0 + 2000, "disk.full", "error", "test", "{\"n\": 1}");
    assert_true(e1 > 0);
    mem_put(t->m, base[0], 100);
    mem_put(t->m, a, 1000);
    mem_put(t->m, b, 2000);
    tick(t, T0 + 2000);
    mem_test_hold(t->m, false);
    mt_flush(t);
    mem_stats st = stats(t);
    assert_int_equal(st.dropped_batches, 1);
    assert_int_equal(st.queue_depth, 0);
    /* the store says it cannot write, since when and why */
    int64_t since = st.write_failing_since;
    assert_true(since > 0 && since <= core_now_ms());
    assert_string_equal(st.write_error, "database or disk is full");
    char why[96];
    assert_int_equal(mem_write_failing(t->m, why, sizeof why, NULL), since);
    assert_string_equal(why, "database or disk is full");
    assert_int_equal(count(t, "SELECT count(*) FROM series"), NBASE);
    assert_int_equal(count(t, "SELECT count(*) FROM events"), 0);
    assert_true(has_event(t, e1)); /* from the RAM ring */

    /* still full: ticks are dropped and counted, events wait */
    mem_put(t->m, a, 1003);
    mem_put(t->m, b, 2003);
    tick(t, T0 + 3000);
    mt_flush(t);
    /* (small rows alone may still fit in a page: keep the event with a tick) */
    mem_test_hold(t->m, true);
    int64_t e2 = mem_event_add(t->m, T0 + 3500, "disk.still_full", "warning", "test", NULL);
    mem_put(t->m, a, 1004);
    mem_put(t->m, b, 2004);
    tick(t, T0 + 4000);
    mem_test_hold(t->m, false);
    mt_flush(t);
    assert_int_equal(stats(t).dropped_batches, 3);
    assert_int_equal(stats(t).write_failing_since, since); /* the same episode */
    assert_int_equal(count(t, "SELECT count(*) FROM series"), NBASE);
    assert_int_equal(count(t, "SELECT count(*) FROM events"), 0);
    assert_int_equal(count(t, "SELECT max(ts) FROM raw"), T0 + 1000);
    assert_true(has_event(t, e1) && has_event(t, e2));
    /* the RAM window has every tick */
    assert_near(ram_value(t, a, T0 + 3000), 1003);
    assert_near(ram_value(t, b, T0 + 4000), 2004);

    /* room again: the next batch commits what was kept, before its tick */
    pragma(t, "PRAGMA max_page_count = 2147483646");
    mem_put(t->m, a, 1005);
    mem_put(t->m, b, 2005);
    mem_put(t->m, base[NBASE - 1], 7);
    tick(t, T0 + 5000);
    mt_flush(t);
    assert_int_equal(stats(t).dropped_batches, 3);
    assert_int_equal(stats(t).write_failing_since, 0); /* writing again */
    assert_int_equal(mem_write_failing(t->m, why, sizeof why, NULL), 0);
    assert_string_equal(why, "");
    assert_int_equal(count(t, "SELECT count(*) FROM series"), NBASE + 2);
    assert_int_equal(count(t, "SELECT id FROM series WHERE name = 'new.a'"), a);
    assert_int_equal(count(t, "SELECT id FROM series WHERE name = 'new.b'"), b);
    assert_int_equal(count(t, "SELECT kind FROM series WHERE name = 'new.b'"), MEM_RATE);
    assert_int_equal(count(t, "SELECT count(*) FROM events"), 2);
    assert_int_equal(count(t, "SELECT min(id) FROM events"), e1);
    assert_int_equal(count(t, "SELECT max(id) FROM events"), e2);
    assert_int_equal(count(t, "SELECT count(*) FROM raw"), 3); /* T0, T0+1s, T0+5s */
    assert_int_equal(count(t, "SELECT value FROM meta WHERE key = 'series_hwm'"), NBASE + 2);
    assert_true(has_event(t, e1) && has_event(t, e2));
    int64_t ids[4];
    assert_int_equal(event_ids(t, ids, 4), 2); /* once each: disk, not ring too */

    /* reopen: same ids, a fresh id for a new series, values where they belong */
    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_series_find(t->m, "new.a", ""), a);
    assert_int_equal(mem_series_find(t->m, "new.b", ""), b);
    assert_int_equal(mem_series_find(t->m, "base", "i=\"7\""), base[7]);
    int c = mem_series(t->m, "new.c", "", "", "", MEM_GAUGE);
    assert_int_equal(c, NBASE + 2);
    assert_near(ram_value(t, a, T0 + 5000), 1005);
    assert_near(ram_value(t, b, T0 + 5000), 2005);
    assert_near(ram_value(t, base[NBASE - 1], T0 + 5000), 7);
    assert_near(ram_value(t, base[5], T0 + 1000), 5);
    assert_true(isnan(ram_value(t, c, T0 + 5000)));
    assert_true(has_event(t, e1) && has_event(t, e2));
    assert_int_equal(mem_event_add(t->m, 0, "after", "info", "", NULL), e2 + 1);
}

/* A read-only store: a batch of only a registration and an event fails, the
 * next one (with a tick carrying the new series' value) commits both first;
 * so no raw row ever holds a value at an id whose series row is missing. */
static void test_readonly_then_tick(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    int a = mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    int b = mem_series(t->m, "b", "", "", "", MEM_GAUGE);
    mem_put(t->m, a, 1);
    mem_put(t->m, b, 2);
    tick(t, T0);
    mt_flush(t);

    pragma(t, "PRAGMA query_only = 1");
    int c = mem_series(t->m, "c", "", "", "", MEM_GAUGE);
    int64_t e = mem_event_add(t->m, T0 + 500, "ro", "error", "test", NULL);
    mt_flush(t);
    assert_int_equal(count(t, "SELECT count(*) FROM series"), 2);
    assert_int_equal(count(t, "SELECT count(*) FROM events"), 0);
    assert_int_equal(stats(t).dropped_batches, 0); /* no tick was lost */
    assert_true(stats(t).write_failing_since > 0); /* but the store refuses writes */
    assert_non_null(strstr(stats(t).write_error, "readonly"));
    assert_true(has_event(t, e));
    /* this job runs after the retried ones fail in its batch: they wait more */
    pragma(t, "PRAGMA query_only = 0");
    assert_int_equal(count(t, "SELECT count(*) FROM series"), 2);
    assert_true(has_event(t, e));

    mem_put(t->m, a, 10);
    mem_put(t->m, c, 30);
    tick(t, T0 + 1000);
    mt_flush(t);
    assert_int_equal(count(t, "SELECT id FROM series WHERE name = 'c'"), c);
    assert_int_equal(count(t, "SELECT id FROM events"), e);
    assert_int_equal(count(t, "SELECT length(v) FROM raw WHERE ts = 1699999201000"), 12);

    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_series_find(t->m, "c", ""), c);
    int d = mem_series(t->m, "d", "", "", "", MEM_GAUGE);
    assert_int_equal(d, 3);
    assert_near(ram_value(t, c, T0 + 1000), 30);
    assert_near(ram_value(t, a, T0 + 1000), 10);
    assert_near(ram_value(t, b, T0), 2);
    assert_true(isnan(ram_value(t, d, T0 + 1000)));
    assert_true(has_event(t, e));
}

/* While the store refuses writes, at most MEM_QUEUE_MAX_EVENTS events wait
 * for a retry: the oldest beyond are dropped and counted; queries serve the
 * newest from RAM meanwhile. */
static void test_retry_bound(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    pragma(t, "PRAGMA query_only = 1");
    const int per = 3000, total = 2 * per;
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < per; i++)
            assert_true(mem_event_add(t->m, T0 + i, "bulk", "info", "test", NULL) > 0);
        mt_flush(t);
    }
    mem_stats st = stats(t);
    assert_int_equal(st.queue_depth, 0);
    assert_int_equal(t->m->retry_ev_dropped, total - MEM_QUEUE_MAX_EVENTS);
    int64_t *ids = malloc(sizeof *ids * 10000);
    assert_non_null(ids);
    size_t n = event_ids(t, ids, 10000);
    assert_int_equal(n, MEM_EV_RING);
    assert_int_equal(ids[0], total - MEM_EV_RING + 1);
    assert_int_equal(ids[n - 1], total);
    pragma(t, "PRAGMA query_only = 0");
    tick(t, T0);
    mt_flush(t);
    assert_int_equal(count(t, "SELECT count(*) FROM events"), MEM_QUEUE_MAX_EVENTS);
    assert_int_equal(count(t, "SELECT min(id) FROM events"), total - MEM_QUEUE_MAX_EVENTS + 1);
    n = event_ids(t, ids, 10000);
    assert_int_equal(n, MEM_QUEUE_MAX_EVENTS);
    assert_int_equal(ids[n - 1], total);
    free(ids);
}

/* Closing while the store still refuses writes neither hangs nor reuses ids
 * afterwards (nothing on disk refers to the lost registration). */
static void test_close_while_readonly(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    int a = mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    mem_put(t->m, a, 1);
    tick(t, T0);
    mt_flush(t);
    pragma(t, "PRAGMA query_only = 1");
    int b = mem_series(t->m, "b", "", "", "", MEM_GAUGE);
    mem_put(t->m, b, 2);
    tick(t, T0 + 1000);
    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_series_find(t->m, "a", ""), a);
    assert_int_equal(mem_series_find(t->m, "b", ""), -ENOENT);
    int c = mem_series(t->m, "c", "", "", "", MEM_GAUGE);
    assert_true(c == b); /* free to reuse: no stored value at that id */
    assert_true(isnan(ram_value(t, c, T0 + 1000)));
    assert_near(ram_value(t, a, T0), 1);
}

static sqlite3 *closed_db(mt *t)
{
    mt_close(t);
    return mt_db(t);
}

static void exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
}

/* A store whose series table lacks the highest ids that raw rows, the
 * series_hwm mark or rollup chunks refer to: those ids stay unused. */
static void test_next_id_bounds(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    char name[16];
    for (int i = 0; i < 5; i++) {
        snprintf(name, sizeof name, "s%d", i);
        assert_int_equal(mem_series(t->m, name, "", "", "", MEM_GAUGE), i);
    }
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < 5; i++)
            mem_put(t->m, i, 10 * i + s);
        tick(t, T0 + s * 1000LL);
    }
    mt_flush(t);

    /* raw rows of 5 values, series rows 3 and 4 lost, no mark */
    sqlite3 *db = closed_db(t);
    exec(db, "DELETE FROM series WHERE id >= 3; DELETE FROM meta WHERE key = 'series_hwm'");
    sqlite3_close(db);
    mt_open(t);
    assert_int_equal(mem_series_count(t->m), 3);
    assert_int_equal(mem_series_find(t->m, "s3", ""), -ENOENT);
    assert_near(ram_value(t, 2, T0 + 1000), 21);
    int x = mem_series(t->m, "x", "", "", "", MEM_GAUGE);
    assert_int_equal(x, 5);
    assert_true(isnan(ram_value(t, x, T0 + 1000))); /* not s3's or s4's values */
    mem_series_info *info;
    size_t n;
    assert_int_equal(mem_series_snapshot(t->m, &info, &n), 0);
    assert_int_equal(n, 4);
    free(info);
    mem_put(t->m, x, 5);
    mem_put(t->m, 3, 99); /* a hole: ignored */
    tick(t, T0 + 2000);
    mt_flush(t);
    assert_int_equal(count(t, "SELECT length(v) FROM raw WHERE ts = 1699999202000"), 24);
    assert_true(isnan(raw_at(t, T0 + 2000, 3)));
    assert_near(raw_at(t, T0 + 2000, x), 5);
    assert_int_equal(count(t, "SELECT value FROM meta WHERE key = 'series_hwm'"), 6);

    /* the mark alone (no raw rows) */
    db = closed_db(t);
    exec(db, "DELETE FROM raw; UPDATE meta SET value = 9 WHERE key = 'series_hwm'");
    sqlite3_close(db);
    mt_open(t);
    assert_int_equal(mem_series_find(t->m, "x", ""), x);
    assert_int_equal(mem_series(t->m, "y", "", "", "", MEM_GAUGE), 9);

    /* a rollup chunk of an id past everything else */
    mt_flush(t);
    db = closed_db(t);
    exec(db, "DELETE FROM meta WHERE key = 'series_hwm';"
         "INSERT INTO rollup_10s(series, chunk_ts, data) VALUES (20, 1699999200000, x'00')");
    sqlite3_close(db);
    mt_open(t);
    assert_int_equal(mem_series(t->m, "z", "", "", "", MEM_GAUGE), 21);

    /* a corrupt bound past the limit is ignored */
    mt_flush(t);
    db = closed_db(t);
    exec(db, "DELETE FROM rollup_10s WHERE series = 20;"
         "INSERT OR REPLACE INTO meta(key, value) VALUES ('series_hwm', 1000000000)");
    sqlite3_close(db);
    mt_open(t);
    assert_int_equal(mem_series_find(t->m, "z", ""), 21);
    assert_int_equal(mem_series(t->m, "w", "", "", "", MEM_GAUGE), 22);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_full_disk, mt_teardown),
        cmocka_unit_test_teardown(test_readonly_then_tick, mt_teardown),
        cmocka_unit_test_teardown(test_retry_bound, mt_teardown),
        cmocka_unit_test_teardown(test_close_while_readonly, mt_teardown),
        cmocka_unit_test_teardown(test_next_id_bounds, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
