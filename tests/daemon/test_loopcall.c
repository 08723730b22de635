/* test_loopcall.c: src/daemon/loopcall.c with a real libuv loop on its own
 * thread: results come back and every fn runs on the loop thread; 8 caller
 * threads x 500 calls; a call that cannot start in time times out and never
 * runs, while one already running is waited for; closing fails the queued
 * waiters with -ECANCELED and refuses later calls; a zeroed loopcall refuses;
 * a call from the loop thread itself runs at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "daemon/loopcall.h"

typedef struct fixture {
    uv_loop_t loop;
    loopcall lc;
    uv_async_t stop;
    pthread_t thread;
    pthread_t loop_tid;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool ready;
    long counter;   /* loop thread only */
    atomic_int off_loop; /* fns that ran on another thread */
    atomic_int closer_running;
} fixture;

static fixture F;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_stop(uv_async_t *h)
{
    loopcall_close(&F.lc);
    uv_close((uv_handle_t *)h, NULL);
}

static void *loop_main(void *arg)
{
    (void)arg;
    F.loop_tid = pthread_self();
    assert_int_equal(loopcall_init(&F.lc, &F.loop), 0);
    uv_async_init(&F.loop, &F.stop, on_stop);
    pthread_mutex_lock(&F.mu);
    F.ready = true;
    pthread_cond_signal(&F.cv);
    pthread_mutex_unlock(&F.mu);
    uv_run(&F.loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof F);
    pthread_mutex_init(&F.mu, NULL);
    pthread_cond_init(&F.cv, NULL);
    uv_loop_init(&F.loop);
    pthread_create(&F.thread, NULL, loop_main, NULL);
    pthread_mutex_lock(&F.mu);
    while (!F.ready)
        pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&F.stop);
    pthread_join(F.thread, NULL);
    assert_int_equal(uv_loop_close(&F.loop), 0);
    pthread_mutex_destroy(&F.mu);
    pthread_cond_destroy(&F.cv);
    return 0;
}

/* ---- functions run on the loop ------------------------------------------------ */
static int fn_count(void *arg)
{
    if (!pthread_equal(pthread_self(), F.loop_tid))
        atomic_fetch_add(&F.off_loop, 1);
    F.counter++;
    return (int)(intptr_t)arg;
}

typedef struct slow {
    int ms;
    atomic_int ran;
    atomic_int started;
} slow;

static int fn_slow(void *arg)
{
    slow *s = arg;
    atomic_store(&s->started, 1);
    sleep_ms(s->ms);
    atomic_store(&s->ran, 1);
    return 42;
}

typedef struct call {
    int (*fn)(void *);
    void *arg;
    int timeout_ms;
    int rc;
    pthread_t t;
} call;

static void *call_main(void *arg)
{
    call *c = arg;
    c->rc = loopcall_run(&F.lc, c->fn, c->arg, c->timeout_ms);
    return NULL;
}

static void call_start(call *c, int (*fn)(void *), void *arg, int timeout_ms)
{
    c->fn = fn;
    c->arg = arg;
    c->timeout_ms = timeout_ms;
    c->rc = 1;
    pthread_create(&c->t, NULL, call_main, c);
}

static int queued(void)
{
    return loopcall_queued(&F.lc);
}

static void wait_queued(int n)
{
    for (int i = 0; i < 2000 && queued() < n; i++)
        sleep_ms(1);
    assert_int_equal(queued(), n);
}

/* ---- tests ------------------------------------------------------------------------- */
static void t_result(void **state)
{
    (void)state;
    assert_int_equal(loopcall_run(&F.lc, fn_count, (void *)(intptr_t)7, 1000), 7);
    assert_int_equal(loopcall_run(&F.lc, fn_count, (void *)(intptr_t)-EPERM, 0), -EPERM);
    assert_int_equal(F.counter, 2);
    assert_int_equal(atomic_load(&F.off_loop), 0);
}

#define NTHREADS 8
#define NCALLS 500

static int fn_sum(void *arg)
{
    if (!pthread_equal(pthread_self(), F.loop_tid))
        atomic_fetch_add(&F.off_loop, 1);
    F.counter += *(int *)arg;
    return *(int *)arg * 2;
}

static void *hammer(void *arg)
{
    (void)arg;
    int bad = 0;
    for (int i = 1; i <= NCALLS; i++) {
        int v = i;
        if (loopcall_run(&F.lc, fn_sum, &v, 10000) != 2 * i)
            bad++;
    }
    return (void *)(intptr_t)bad;
}

static void t_many_threads(void **state)
{
    (void)state;
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < NTHREADS; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        assert_int_equal((intptr_t)bad, 0);
    }
    assert_int_equal(F.counter, (long)NTHREADS * NCALLS * (NCALLS + 1) / 2);
    assert_int_equal(atomic_load(&F.off_loop), 0);
}

/* The loop is busy in a slow fn: a second call times out, is withdrawn, and
 * its fn never runs, even after the loop is free again. */
static void t_timeout_never_runs(void **state)
{
    (void)state;
    slow busy = {.ms = 400}, late = {.ms = 0};
    call a, b;
    call_start(&a, fn_slow, &busy, 5000);
    for (int i = 0; i < 2000 && !atomic_load(&busy.started); i++)
        sleep_ms(1);
    assert_true(atomic_load(&busy.started));
    call_start(&b, fn_slow, &late, 50);
    pthread_join(b.t, NULL);
    assert_int_equal(b.rc, -ETIMEDOUT);
    assert_int_equal(queued(), 0); /* withdrawn */
    pthread_join(a.t, NULL);
    assert_int_equal(a.rc, 42);
    assert_int_equal(loopcall_run(&F.lc, fn_count, (void *)(intptr_t)1, 1000), 1); /* loop drained */
    assert_int_equal(atomic_load(&late.started), 0);
}

/* A fn that has started when the time runs out is waited for: its result,
 * not -ETIMEDOUT, because it did happen. */
static void t_timeout_running_waits(void **state)
{
    (void)state;
    slow s = {.ms = 200};
    assert_int_equal(loopcall_run(&F.lc, fn_slow, &s, 20), 42);
    assert_int_equal(atomic_load(&s.ran), 1);
}

/* Many callers with short timeouts against a loop that is sometimes slow:
 * every call either ran (its result) or timed out and never ran. */
static int fn_mark(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
    sleep_ms(2);
    return 5;
}

static void *flaky(void *arg)
{
    atomic_int *ran = arg;
    int ok = 0;
    for (int i = 0; i < 50; i++) {
        atomic_int mine = 0;
        int rc = loopcall_run(&F.lc, fn_mark, &mine, 3);
        if (rc == 5 && atomic_load(&mine) == 1)
            ok++;
        else if (rc == -ETIMEDOUT && atomic_load(&mine) == 0)
            ok++;
        atomic_fetch_add(ran, atomic_load(&mine));
    }
    return (void *)(intptr_t)ok;
}

static void t_timeout_race(void **state)
{
    (void)state;
    pthread_t t[NTHREADS];
    atomic_int ran = 0;
    for (int i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, flaky, &ran);
    for (int i = 0; i < NTHREADS; i++) {
        void *ok;
        pthread_join(t[i], &ok);
        assert_int_equal((intptr_t)ok, 50);
    }
    assert_int_equal(queued(), 0);
}

/* A fn that closes the loopcall (as a shutdown would) while 4 callers wait
 * behind it: they get -ECANCELED, later calls too, and the loop can end. */
static int fn_close_after(void *arg)
{
    (void)arg;
    atomic_store(&F.closer_running, 1);
    wait_queued(4);
    loopcall_close(&F.lc);
    return 9;
}

static void t_close_with_waiters(void **state)
{
    (void)state;
    call closer, w[4];
    call_start(&closer, fn_close_after, NULL, 0);
    for (int i = 0; i < 2000 && !atomic_load(&F.closer_running); i++)
        sleep_ms(1);
    assert_true(atomic_load(&F.closer_running));
    for (int i = 0; i < 4; i++)
        call_start(&w[i], fn_count, (void *)(intptr_t)1, i % 2 ? 0 : 10000);
    pthread_join(closer.t, NULL);
    assert_int_equal(closer.rc, 9);
    for (int i = 0; i < 4; i++) {
        pthread_join(w[i].t, NULL);
        assert_int_equal(w[i].rc, -ECANCELED);
    }
    assert_int_equal(F.counter, 0);
    assert_int_equal(loopcall_run(&F.lc, fn_count, NULL, 1000), -ECANCELED);
    loopcall_close(&F.lc); /* idempotent */
}

static void t_zeroed(void **state)
{
    (void)state;
    loopcall lc;
    memset(&lc, 0, sizeof lc);
    assert_int_equal(loopcall_run(&lc, fn_count, NULL, 100), -ECANCELED);
    loopcall_close(&lc);
    assert_int_equal(F.counter, 0);
}

/* On the loop thread itself, loopcall_run calls fn directly. */
static int fn_nested(void *arg)
{
    (void)arg;
    return loopcall_run(&F.lc, fn_count, (void *)(intptr_t)3, 1000) + 1;
}

static void t_from_loop_thread(void **state)
{
    (void)state;
    assert_int_equal(loopcall_run(&F.lc, fn_nested, NULL, 1000), 4);
    assert_int_equal(F.counter, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(t_result, setup, teardown),
        cmocka_unit_test_setup_teardown(t_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(t_timeout_never_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(t_timeout_running_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(t_timeout_race, setup, teardown),
        cmocka_unit_test_setup_teardown(t_close_with_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(t_zeroed, setup, teardown),
        cmocka_unit_test_setup_teardown(t_from_loop_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
