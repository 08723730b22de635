/* test_state.c: the detectors' state in the store (mem_detector_save /
 * mem_detector_load, schema version 2) and mem_tick_values: blobs round-trip
 * byte for byte across a close and reopen, a later save replaces a series'
 * blob, bad arguments are refused, saves beyond two waiting ones are refused
 * without blocking, a version 1 file is migrated with its data kept, a blob
 * not saved for 30 days is pruned, and a tick's values come back out of the
 * RAM window. */
#include "memtest.h"

typedef struct seen {
    int n;
    int ids[16];
    size_t lens[16];
    unsigned char first[16];
} seen;

static int collect(void *ud, int series, const void *data, size_t len)
{
    seen *s = ud;
    if (s->n < 16) {
        s->ids[s->n] = series;
        s->lens[s->n] = len;
        s->first[s->n] = ((const unsigned char *)data)[0];
    }
    s->n++;
    return 0;
}

static int stop_at_two(void *ud, int series, const void *data, size_t len)
{
    (void)series, (void)data, (void)len;
    return ++*(int *)ud == 2 ? 42 : 0;
}

static void load(mt *t, seen *s)
{
    char err[256];
    memset(s, 0, sizeof *s);
    assert_int_equal(mem_detector_load(t->m, collect, s, err, sizeof err), 0);
}

static void test_roundtrip(void **state)
{
    mt *t = *state;
    unsigned char a[1000], b[3000];
    memset(a, 0xa1, sizeof a);
    memset(b, 0xb2, sizeof b);
    b[2999] = 7;
    mem_blob blobs[] = {{5, a, sizeof a}, {2, b, sizeof b}, {9, a, 1}};
    assert_int_equal(mem_detector_save(t->m, blobs, 3, T0), 0);
    assert_int_equal(mem_flush(t->m, 5000), 0);
    seen s;
    load(t, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.ids[0], 2); /* series order */
    assert_int_equal(s.lens[0], 3000);
    assert_int_equal(s.first[0], 0xb2);
    assert_int_equal(s.ids[1], 5);
    assert_int_equal(s.ids[2], 9);
    assert_int_equal(s.lens[2], 1);

    /* a later save replaces; others stay */
    memset(a, 0x33, sizeof a);
    mem_blob again = {5, a, 10};
    assert_int_equal(mem_detector_save(t->m, &again, 1, 0), 0);
    mt_close(t);
    mt_open(t);
    load(t, &s);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.ids[1], 5);
    assert_int_equal(s.lens[1], 10);
    assert_int_equal(s.first[1], 0x33);

    /* the bytes themselves, and the stamp */
    sqlite3 *db = mt_db(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM detector_state"), 3);
    assert_int_equal(mt_int(db, "SELECT saved_ms FROM detector_state WHERE series = 2"), T0);
    assert_int_equal(mt_int(db, "SELECT unicode(substr(data, 3000, 1)) FROM detector_state WHERE series = 2"), 7);
    sqlite3_close(db);

    int calls = 0;
    char err[128];
    assert_int_equal(mem_detector_load(t->m, stop_at_two, &calls, err, sizeof err), 42);
    assert_int_equal(calls, 2);
}

static void test_bad_args(void **state)
{
    mt *t = *state;
    unsigned char a[8] = {1};
    static unsigned char big[MEM_BLOB_MAX + 1];
    mem_blob bad[] = {{-1, a, 8}, {MEM_MAX_SERIES, a, 8}, {1, NULL, 8}, {1, a, 0}, {1, big, sizeof big}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(mem_detector_save(t->m, &bad[i], 1, 0), -EINVAL);
    mem_blob mixed[] = {{1, a, 8}, {2, a, 0}}; /* all or nothing */
    assert_int_equal(mem_detector_save(t->m, mixed, 2, 0), -EINVAL);
    assert_int_equal(mem_detector_save(NULL, mixed, 1, 0), -EINVAL);
    assert_int_equal(mem_detector_save(t->m, NULL, 1, 0), -EINVAL);
    assert_int_equal(mem_detector_save(t->m, NULL, 0, 0), 0);
    char err[128];
    assert_int_equal(mem_detector_load(t->m, NULL, NULL, err, sizeof err), -EINVAL);
    mem_flush(t->m, 5000);
    seen s;
    load(t, &s);
    assert_int_equal(s.n, 0);
}

/* A stalled writer: two saves wait, the third is refused at once. */
static void test_queue_bound(void **state)
{
    mt *t = *state;
    unsigned char a[64] = {9};
    mem_blob bl = {3, a, sizeof a};
    mem_test_hold(t->m, true);
    assert_int_equal(mem_detector_save(t->m, &bl, 1, 0), 0);
    assert_int_equal(mem_detector_save(t->m, &bl, 1, 0), 0);
    assert_int_equal(mem_detector_save(t->m, &bl, 1, 0), -ENOBUFS);
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_int_equal(st.dropped_batches, 0); /* not a lost tick */
    mem_test_hold(t->m, false);
    assert_int_equal(mem_flush(t->m, 5000), 0);
    assert_int_equal(mem_detector_save(t->m, &bl, 1, 0), 0); /* room again */
    mem_flush(t->m, 5000);
    seen s;
    load(t, &s);
    assert_int_equal(s.n, 1);
}

/* A file of schema version 1 (before the detectors) is migrated in place. */
static void test_migrate_v1(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "x.y", "", "", "", MEM_GAUGE);
    assert_true(id >= 0);
    mem_put(t->m, id, 5);
    mem_tick(t->m, T0);
    mt_close(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE detector_state; PRAGMA user_version = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    mt_open(t);
    db = mt_db(t);
    assert_int_equal(mt_int(db, "PRAGMA user_version"), 4);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM detector_state"), 0);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM series WHERE name = 'x.y'"), 1);
    sqlite3_close(db);
    assert_int_equal(mem_series_find(t->m, "x.y", ""), id);
}

static void test_prune_stale(void **state)
{
    mt *t = *state;
    unsigned char a[16] = {1};
    mem_blob old = {4, a, sizeof a}, fresh = {6, a, sizeof a};
    assert_int_equal(mem_detector_save(t->m, &old, 1, T0 - 31 * 86400000LL), 0);
    assert_int_equal(mem_detector_save(t->m, &fresh, 1, T0 - 29 * 86400000LL), 0);
    int id = mem_series(t->m, "x", "", "", "", MEM_GAUGE);
    mem_put(t->m, id, 1);
    assert_int_equal(mem_tick(t->m, T0), 0); /* the first tick asks for pruning */
    assert_int_equal(mem_flush(t->m, 5000), 0);
    seen s;
    load(t, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ids[0], 6);
}

static void test_tick_values(void **state)
{
    mt *t = *state;
    int a = mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    int b = mem_series(t->m, "b", "", "", "", MEM_GAUGE);
    int c = mem_series(t->m, "c", "", "", "", MEM_GAUGE);
    mem_put(t->m, a, 1.5);
    mem_put(t->m, c, -2);
    assert_int_equal(mem_tick(t->m, T0), 0);
    float v[8];
    int n = mem_tick_values(t->m, T0 + 999, v, 8);
    assert_int_equal(n, c + 1);
    assert_true(v[a] == 1.5f);
    assert_true(isnan(v[b]));
    assert_true(v[c] == -2.0f);
    assert_true(isnan(v[7]));
    /* too little room: the total says how much is needed */
    assert_int_equal(mem_tick_values(t->m, T0, v, 1), c + 1);
    /* a second not in the window */
    mem_tick_values(t->m, T0 + 5000, v, 8);
    assert_true(isnan(v[a]) && isnan(v[c]));
    mem_tick_values(t->m, T0 - 1000, v, 8);
    assert_true(isnan(v[a]));
    assert_int_equal(mem_tick_values(NULL, T0, v, 8), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_queue_bound, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_prune_stale, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_tick_values, mt_setup, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
