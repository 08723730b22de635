/* test_series.c: series registry: create, find, validation, ids stable across
 * a reopen, unit/help updates, snapshot order and last values, stats. */
#include "memtest.h"

static void test_create_find(void **state)
{
    mt *t = *state;
    int a = mem_series(t->m, "cpu.usage_percent", "cpu=\"cpu0\"", "percent", "CPU use", MEM_GAUGE);
    int b = mem_series(t->m, "cpu.usage_percent", "cpu=\"cpu1\"", "percent", "CPU use", MEM_GAUGE);
    int c = mem_series(t->m, "load.1m", NULL, NULL, NULL, MEM_GAUGE);
    assert_true(a >= 0 && b >= 0 && c >= 0);
    assert_true(a != b && b != c && a != c);
    assert_int_equal(mem_series(t->m, "cpu.usage_percent", "cpu=\"cpu0\"", "percent", "CPU use", MEM_GAUGE), a);
    assert_int_equal(mem_series_find(t->m, "cpu.usage_percent", "cpu=\"cpu1\""), b);
    assert_int_equal(mem_series_find(t->m, "load.1m", ""), c);
    assert_int_equal(mem_series_find(t->m, "load.1m", NULL), c);
    assert_int_equal(mem_series_find(t->m, "load.5m", ""), -ENOENT);
    assert_int_equal(mem_series_count(t->m), 3);
}

static void test_last_value(void **state)
{
    mt *t = *state;
    int a = mem_series(t->m, "load.load1", "", "", "", MEM_GAUGE);
    double v = 0;
    int64_t ts = -1;
    assert_int_equal(mem_series_last(t->m, a, &v, &ts), 0);
    assert_true(isnan(v));
    assert_int_equal(ts, 0);
    mem_put(t->m, a, 2.5);
    assert_int_equal(mem_tick(t->m, 1700000000000LL), 0);
    assert_int_equal(mem_series_last(t->m, a, &v, &ts), 0);
    assert_true(v == 2.5);
    assert_int_equal(ts, 1700000000000LL);
    assert_int_equal(mem_series_last(t->m, a + 100, &v, &ts), -ENOENT);
    assert_int_equal(mem_series_last(t->m, -1, &v, &ts), -ENOENT);
}

static void test_validation(void **state)
{
    mt *t = *state;
    char big[600];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(mem_series(t->m, "", "", "", "", MEM_GAUGE), -EINVAL);
    assert_int_equal(mem_series(t->m, NULL, "", "", "", MEM_GAUGE), -EINVAL);
    assert_int_equal(mem_series(t->m, "has space", "", "", "", MEM_GAUGE), -EINVAL);
    assert_int_equal(mem_series(t->m, "caf\xc3\xa9", "", "", "", MEM_GAUGE), -EINVAL);
    assert_int_equal(mem_series(t->m, "a-b", "", "", "", MEM_GAUGE), -EINVAL);
    assert_int_equal(mem_series(t->m, "ok", "", "", "", 7), -EINVAL);
    assert_int_equal(mem_series(t->m, "ok", big, "", "", MEM_GAUGE), -EINVAL); /* 599 > 511 */
    big[511] = 0;
    assert_true(mem_series(t->m, "ok", big, "", "", MEM_GAUGE) >= 0);
    big[128] = 0;
    assert_int_equal(mem_series(t->m, big, "", "", "", MEM_GAUGE), -EINVAL); /* 128 > 127 */
    big[127] = 0;
    assert_true(mem_series(t->m, big, "", "", "", MEM_GAUGE) >= 0);
    assert_true(mem_series(t->m, "ns:sub_sys.name_1", "", "", "", MEM_RATE) >= 0);
    assert_int_equal(mem_series_count(t->m), 3);
}

static void test_ids_stable_across_reopen(void **state)
{
    mt *t = *state;
    int ids[50];
    char labels[32];
    for (int i = 0; i < 50; i++) {
        snprintf(labels, sizeof labels, "n=\"%d\"", i);
        ids[i] = mem_series(t->m, "x.y", labels, "bytes", "help", i % 2 ? MEM_RATE : MEM_GAUGE);
        assert_true(ids[i] >= 0);
    }
    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_series_count(t->m), 50);
    for (int i = 49; i >= 0; i--) {
        snprintf(labels, sizeof labels, "n=\"%d\"", i);
        assert_int_equal(mem_series_find(t->m, "x.y", labels), ids[i]);
        assert_int_equal(mem_series(t->m, "x.y", labels, "bytes", "help", i % 2 ? MEM_RATE : MEM_GAUGE), ids[i]);
    }
    int fresh = mem_series(t->m, "x.z", "", "", "", MEM_GAUGE);
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(fresh, ids[i]);
}

static void test_update_unit_help(void **state)
{
    mt *t = *state;
    int id = mem_series(t->m, "disk.used", "", "bytes", "old help", MEM_GAUGE);
    mem_series_info *s;
    size_t n;
    assert_int_equal(mem_series_snapshot(t->m, &s, &n), 0);
    assert_int_equal(mem_series(t->m, "disk.used", "", "bytes", "new help", MEM_GAUGE), id);
    assert_string_equal(s[0].help, "old help"); /* an older snapshot stays valid */
    free(s);
    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_series_snapshot(t->m, &s, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(s[0].help, "new help");
    assert_string_equal(s[0].unit, "bytes");
    free(s);
}

static void test_snapshot_sorted_last(void **state)
{
    mt *t = *state;
    int b2 = mem_series(t->m, "b", "k=\"2\"", "", "", MEM_GAUGE);
    int a = mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    int b1 = mem_series(t->m, "b", "k=\"1\"", "", "", MEM_RATE);
    int c = mem_series(t->m, "c", "", "", "", MEM_GAUGE);
    mem_put(t->m, a, 1.5);
    mem_put(t->m, b1, 2.5);
    assert_int_equal(mem_tick(t->m, T0), 0);
    mem_put(t->m, a, 3.5);
    assert_int_equal(mem_tick(t->m, T0 + 1000), 0);
    mem_series_info *s;
    size_t n;
    assert_int_equal(mem_series_snapshot(t->m, &s, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(s[0].id, a);
    assert_int_equal(s[1].id, b1);
    assert_int_equal(s[2].id, b2);
    assert_int_equal(s[3].id, c);
    assert_near(s[0].last, 3.5);
    assert_int_equal(s[0].last_ts, T0 + 1000);
    assert_near(s[1].last, 2.5);
    assert_int_equal(s[1].last_ts, T0);
    assert_int_equal(s[1].kind, MEM_RATE);
    assert_true(isnan(s[2].last));
    assert_int_equal(s[2].last_ts, 0);
    free(s);
}

static void test_stats(void **state)
{
    mt *t = *state;
    int a = mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    mem_series(t->m, "b", "", "", "", MEM_GAUGE);
    for (int i = 0; i < 5; i++) {
        mem_put(t->m, a, i);
        assert_int_equal(mem_tick(t->m, T0 + i * 1000), 0);
    }
    mt_flush(t);
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_int_equal(st.nseries, 2);
    assert_int_equal(st.ticks, 5);
    assert_int_equal(st.samples, 5);
    assert_true(st.rows_written >= 7); /* 2 series + 5 raw rows */
    assert_true(st.writer_batches >= 1);
    assert_int_equal(st.dropped_batches, 0);
    assert_int_equal(st.queue_depth, 0);
    assert_true(st.db_bytes > 0);
    assert_int_equal(st.oldest_ram_ts, T0);
}

/* mem_series_since: the series from an id on, in id order, and where to
 * start next time to see only newer ones. */
static void test_since(void **state)
{
    mt *t = *state;
    int b = mem_series(t->m, "b", "", "", "", MEM_GAUGE);
    int a = mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    mem_series_info *s;
    size_t n;
    int next = -1;
    assert_int_equal(mem_series_since(t->m, 0, &s, &n, &next), 0);
    assert_int_equal(n, 2);
    assert_int_equal(s[0].id, b); /* id order, not sorted */
    assert_int_equal(s[1].id, a);
    assert_string_equal(s[1].name, "a");
    assert_int_equal(next, a + 1);
    free(s);
    int c = mem_series(t->m, "c", "k=\"1\"", "", "", MEM_GAUGE);
    assert_int_equal(mem_series_since(t->m, next, &s, &n, &next), 0);
    assert_int_equal(n, 1);
    assert_int_equal(s[0].id, c);
    assert_string_equal(s[0].labels, "k=\"1\"");
    assert_int_equal(next, c + 1);
    free(s);
    assert_int_equal(mem_series_since(t->m, next, &s, &n, &next), 0); /* nothing new */
    assert_int_equal(n, 0);
    assert_int_equal(next, c + 1);
    free(s);
    assert_int_equal(mem_series_since(NULL, 0, &s, &n, NULL), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_find, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_validation, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_last_value, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_ids_stable_across_reopen, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_update_unit_help, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_sorted_last, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_since, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_stats, mt_setup, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
