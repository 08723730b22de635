/* test_events.c: the event log: validation, ids, filters (type, prefix,
 * severity, time, after_id, order, limit), events still queued seen by
 * queries, persistence across reopen, and mem_events_wait with a second
 * thread (wake-up on add, timeout, mem_wake_waiters releasing only the
 * waiters present at the call). */
#include "memtest.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

static void test_validation(void **state)
{
    mt *t = *state;
    char big[80];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    assert_int_equal(mem_event_add(t->m, 0, "", "info", "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, NULL, "info", "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "Upper", "info", "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "sp ace", "info", "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, big, "info", "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "ok", "notice", "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "ok", NULL, "", NULL), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "ok", "info", "", "[1,2]"), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "ok", "info", "", "42"), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "ok", "info", "", "{\"a\":"), -EINVAL);
    assert_int_equal(mem_event_add(t->m, 0, "ok", "info", "", "{} {}"), -EINVAL);
    assert_int_equal(mem_event_add(t->m, -1, "ok", "info", "", NULL), -EINVAL);
    assert_int_equal(mem_last_event_id(t->m), 0);
    big[63] = 0;
    assert_int_equal(mem_event_add(t->m, 0, big, "critical", NULL, "{\"k\": [1, {\"x\": null}]}"), 1);
    assert_int_equal(mem_event_add(t->m, 0, "a-b_c.9", "debug", "src", NULL), 2);
    assert_int_equal(mem_severity_rank("warning"), 2);
    assert_int_equal(mem_severity_rank("bogus"), -1);
}

static void add_sample(mt *t)
{
    static const struct { const char *type, *sev; } e[] = {
        {"daemon.start", "info"}, {"anomaly", "warning"}, {"anomaly.cpu", "error"},
        {"daemon.stop", "info"}, {"anomaly.mem", "critical"}, {"config.reload", "debug"},
    };
    for (int i = 0; i < 6; i++) {
        char payload[64];
        snprintf(payload, sizeof payload, "{\"i\": %d}", i);
        assert_int_equal(mem_event_add(t->m, T0 + i * 1000, e[i].type, e[i].sev, "test", payload), i + 1);
    }
}

static size_t run(mt *t, mem_event_query q, int64_t *ids)
{
    mem_event *ev;
    size_t n;
    char err[256] = "";
    int rc = mem_events_query(t->m, &q, &ev, &n, err, sizeof err);
    if (rc)
        fail_msg("mem_events_query: %d: %s", rc, err);
    for (size_t i = 0; i < n; i++) {
        ids[i] = ev[i].id;
        assert_non_null(ev[i].payload);
        assert_string_equal(ev[i].source, "test");
    }
    mem_events_free(ev, n);
    return n;
}

#define EXPECT(q, ...) do { int64_t got_[16], want_[] = {__VA_ARGS__}; \
    size_t n_ = run(t, q, got_); \
    assert_int_equal(n_, sizeof want_ / sizeof want_[0]); \
    for (size_t i_ = 0; i_ < n_; i_++) assert_int_equal(got_[i_], want_[i_]); } while (0)

static void check_filters(mt *t)
{
    EXPECT(((mem_event_query){0}), 6, 5, 4, 3, 2, 1);
    EXPECT(((mem_event_query){.ascending = true}), 1, 2, 3, 4, 5, 6);
    EXPECT(((mem_event_query){.type = "anomaly"}), 2);
    EXPECT(((mem_event_query){.type = "anomaly*"}), 5, 3, 2);
    EXPECT(((mem_event_query){.type = "anomaly.*", .ascending = true}), 3, 5);
    EXPECT(((mem_event_query){.type = "*", .limit = 2}), 6, 5);
    EXPECT(((mem_event_query){.severity = "error"}), 5, 3);
    EXPECT(((mem_event_query){.severity = "warning", .type = "anomaly*", .limit = 2, .ascending = true}), 2, 3);
    EXPECT(((mem_event_query){.from = T0 + 1000, .to = T0 + 3000}), 4, 3, 2);
    EXPECT(((mem_event_query){.after_id = 4, .ascending = true}), 5, 6);
    EXPECT(((mem_event_query){.after_id = 2, .limit = 3, .ascending = true}), 3, 4, 5);
    EXPECT(((mem_event_query){.after_id = 2, .limit = 3}), 6, 5, 4);
}

static void test_filters_committed(void **state)
{
    mt *t = *state;
    add_sample(t);
    mt_flush(t);
    check_filters(t);
}

/* Holds the database write lock from a second connection so the writer is
 * stuck: everything added is still queued, and queries must still see it. */
static void test_filters_pending(void **state)
{
    mt *t = *state;
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    add_sample(t);
    check_filters(t); /* nothing can be committed yet */
    assert_int_equal(mem_flush(t->m, 50), -ETIMEDOUT);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    mt_flush(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM events"), 6);
    check_filters(t); /* all committed */
    /* half and half */
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(mem_event_add(t->m, T0 + 9000, "held", "info", "test", "{}"), 7);
    EXPECT(((mem_event_query){.type = "held"}), 7);
    EXPECT(((mem_event_query){.limit = 2}), 7, 6);
    EXPECT(((mem_event_query){.limit = 2, .ascending = true}), 1, 2);
    EXPECT(((mem_event_query){.after_id = 5, .ascending = true}), 6, 7);
    EXPECT(((mem_event_query){.severity = "info", .limit = 3}), 7, 5, 4);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    mt_flush(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM events"), 7);
    sqlite3_close(db);
    EXPECT(((mem_event_query){.type = "held"}), 7);
}

/* With the writer stuck, the queue takes MEM_EV_RING events, then refuses
 * (counted as a dropped batch) instead of growing or blocking. */
static void test_queue_full(void **state)
{
    mt *t = *state;
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(mem_event_add(t->m, 0, "fill", "debug", "test", NULL), i + 1);
    assert_int_equal(mem_event_add(t->m, 0, "fill", "debug", "test", NULL), -ENOBUFS);
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_int_equal(st.dropped_batches, 1);
    assert_int_equal(st.queue_depth, 4096);
    /* ticks are not held back by a full event quota */
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    mem_put(t->m, id, 1);
    assert_int_equal(mem_tick(t->m, T0), 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    mt_flush(t);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM events"), 4096);
    assert_int_equal(mem_event_add(t->m, 0, "fill", "debug", "test", NULL), 4097);
    sqlite3_close(db);
}

static void test_query_validation(void **state)
{
    mt *t = *state;
    mem_event *ev = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.limit = 10001}, &ev, &n, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "limit"));
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.limit = -1}, &ev, &n, err, sizeof err), -EINVAL);
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.severity = "loud"}, &ev, &n, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "severity"));
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.type = "A*"}, &ev, &n, err, sizeof err), -EINVAL);
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.from = 5, .to = 4}, &ev, &n, err, sizeof err), -EINVAL);
    assert_null(ev);
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.limit = 10000}, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    mem_events_free(ev, n);
}

static void test_persist_reopen(void **state)
{
    mt *t = *state;
    add_sample(t);
    mt_close(t);
    mt_open(t);
    assert_int_equal(mem_last_event_id(t->m), 6);
    check_filters(t);
    mem_event *ev;
    size_t n;
    char err[256];
    assert_int_equal(mem_events_query(t->m, &(mem_event_query){.type = "anomaly.cpu"}, &ev, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0].ts, T0 + 2000);
    assert_string_equal(ev[0].severity, "error");
    assert_string_equal(ev[0].payload, "{\"i\": 2}");
    mem_events_free(ev, n);
    /* RAM ring is empty after a restart: waits only see new events */
    assert_int_equal(mem_events_wait(t->m, 0, 0, &ev, &n), 0);
    assert_int_equal(mem_event_add(t->m, 0, "again", "info", "test", NULL), 7);
    assert_int_equal(mem_events_wait(t->m, 0, 0, &ev, &n), 1);
    assert_int_equal(ev[0].id, 7);
    assert_true(ev[0].ts > T0);
    mem_events_free(ev, n);
}

typedef struct waiter {
    mt *t;
    int64_t after;
    int timeout_ms;
    int rc;
    mem_event *ev;
    size_t n;
    int64_t took_ms;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool entered;
} waiter;

static void *wait_main(void *arg)
{
    waiter *w = arg;
    pthread_mutex_lock(&w->lock);
    w->entered = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    int64_t t0 = core_mono_ms();
    w->rc = mem_events_wait(w->t->m, w->after, w->timeout_ms, &w->ev, &w->n);
    w->took_ms = core_mono_ms() - t0;
    return NULL;
}

/* Spins (no sleep) until `n` threads are blocked in mem_events_wait. */
static void wait_blocked(mt *t, int n)
{
    for (;;) {
        pthread_mutex_lock(&t->m->evlock);
        int k = t->m->ev_waiters;
        pthread_mutex_unlock(&t->m->evlock);
        if (k >= n)
            return;
        sched_yield();
    }
}

static void start_waiter(waiter *w, pthread_t *th)
{
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    assert_int_equal(pthread_create(th, NULL, wait_main, w), 0);
    pthread_mutex_lock(&w->lock);
    while (!w->entered)
        pthread_cond_wait(&w->cond, &w->lock);
    pthread_mutex_unlock(&w->lock);
}

static void test_wait(void **state)
{
    mt *t = *state;
    mem_event *ev;
    size_t n;
    assert_int_equal(mem_event_add(t->m, 0, "one", "info", "test", NULL), 1);
    /* already there: no waiting */
    assert_int_equal(mem_events_wait(t->m, 0, 10000, &ev, &n), 1);
    assert_string_equal(ev[0].type, "one");
    assert_string_equal(ev[0].payload, "{}");
    mem_events_free(ev, n);
    /* timeout with nothing new */
    int64_t t0 = core_mono_ms();
    assert_int_equal(mem_events_wait(t->m, 1, 50, &ev, &n), 0);
    assert_true(core_mono_ms() - t0 >= 40);
    assert_null(ev);
    /* a second thread blocks until an event arrives */
    waiter w = {.t = t, .after = 1, .timeout_ms = 20000};
    pthread_t th;
    start_waiter(&w, &th);
    assert_int_equal(mem_event_add(t->m, 0, "two", "warning", "test", "{\"x\":1}"), 2);
    pthread_join(th, NULL);
    assert_int_equal(w.rc, 1);
    assert_int_equal(w.n, 1);
    assert_int_equal(w.ev[0].id, 2);
    assert_string_equal(w.ev[0].severity, "warning");
    assert_string_equal(w.ev[0].payload, "{\"x\":1}");
    assert_true(w.took_ms < 10000);
    mem_events_free(w.ev, w.n);
    /* more than the ring holds: the newest 4096 come back, in order */
    for (int i = 0; i < 5000; i++) {
        assert_true(mem_event_add(t->m, 0, "bulk", "debug", "test", NULL) > 0);
        if (i % 1000 == 999)
            mt_flush(t);
    }
    assert_int_equal(mem_events_wait(t->m, 0, 0, &ev, &n), 4096);
    assert_int_equal(ev[0].id, 5002 - 4095);
    assert_int_equal(ev[4095].id, 5002);
    mem_events_free(ev, n);
    mt_flush(t);
    /* mem_wake_waiters releases a blocked waiter at once */
    waiter w2 = {.t = t, .after = 5002, .timeout_ms = 20000};
    start_waiter(&w2, &th);
    wait_blocked(t, 1);
    mem_wake_waiters(t->m);
    pthread_join(th, NULL);
    assert_int_equal(w2.rc, 0);
    assert_true(w2.took_ms < 10000);
    /* ... and only the waiters present then: a later wait waits (the API is
     * restarted on the same store), and still gets new events */
    t0 = core_mono_ms();
    assert_int_equal(mem_events_wait(t->m, 5002, 50, &ev, &n), 0);
    assert_true(core_mono_ms() - t0 >= 40);
    waiter w3 = {.t = t, .after = 5002, .timeout_ms = 20000};
    start_waiter(&w3, &th);
    wait_blocked(t, 1);
    assert_int_equal(mem_event_add(t->m, 0, "after.wake", "info", "test", NULL), 5003);
    pthread_join(th, NULL);
    assert_int_equal(w3.rc, 1);
    assert_string_equal(w3.ev[0].type, "after.wake");
    mem_events_free(w3.ev, w3.n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_filters_committed, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_filters_pending, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_queue_full, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_query_validation, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_persist_reopen, mt_setup, mt_teardown),
        cmocka_unit_test_setup_teardown(test_wait, mt_setup, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
