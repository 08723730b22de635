/* loopcall.c: running a function on the libuv loop thread for another thread
 * and handing back its result (see loopcall.h for the contract).
 *
 * Each call is a request on the caller's stack, linked into a queue under
 * lc->lock. A request moves QUEUED -> RUNNING -> DONE; only the loop moves it
 * out of QUEUED into RUNNING, and only the caller unlinks a QUEUED one when
 * its time is up, both under the lock, so a request is either run or
 * withdrawn, never both. The loop touches a request for the last time when it
 * marks it DONE (under the lock); the caller returns only after seeing DONE
 * or after withdrawing it, so the stack memory is never used after return. */
#include "daemon/loopcall.h"

#include <errno.h>
#include <stdbool.h>
#include <time.h>

#define LOOPCALL_BATCH 64 /* calls run per wake-up before yielding to the loop */

enum { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct loopcall_req {
    loopcall_req *prev, *next;
    int (*fn)(void *arg);
    void *arg;
    int result;
    int phase;
};

/* ---- the queue (lc->lock held) ------------------------------------------------ */
static void enqueue(loopcall *lc, loopcall_req *r)
{
    r->next = NULL;
    r->prev = lc->tail;
    if (lc->tail)
        lc->tail->next = r;
    else
        lc->head = r;
    lc->tail = r;
}

static void unlink_req(loopcall *lc, loopcall_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        lc->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        lc->tail = r->prev;
    r->prev = r->next = NULL;
}

/* ---- loop side ------------------------------------------------------------------ */
static void run_one(loopcall *lc, loopcall_req *r)
{
    unlink_req(lc, r);
    r->phase = REQ_RUNNING;
    pthread_mutex_unlock(&lc->lock);
    int res = r->fn(r->arg);
    pthread_mutex_lock(&lc->lock);
    r->result = res;
    r->phase = REQ_DONE; /* the last touch: the caller may return now */
    pthread_cond_broadcast(&lc->done);
}

static void on_async(uv_async_t *h)
{
    loopcall *lc = h->data;
    int n = 0;
    pthread_mutex_lock(&lc->lock);
    while (lc->head && n++ < LOOPCALL_BATCH)
        run_one(lc, lc->head);
    bool more = lc->head != NULL && atomic_load(&lc->state) == LOOPCALL_OPEN;
    pthread_mutex_unlock(&lc->lock);
    if (more) /* let timers and I/O run, then come back for the rest */
        uv_async_send(h);
}

int loopcall_init(loopcall *lc, uv_loop_t *loop)
{
    pthread_condattr_t ca;
    lc->head = lc->tail = NULL;
    lc->loop_thread = pthread_self();
    int rc = pthread_mutex_init(&lc->lock, NULL);
    if (rc)
        return -rc;
    if ((rc = pthread_condattr_init(&ca)) != 0)
        return -rc;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&lc->done, &ca);
    pthread_condattr_destroy(&ca);
    if (rc)
        return -rc;
    if ((rc = uv_async_init(loop, &lc->async, on_async)) != 0)
        return rc;
    lc->async.data = lc;
    atomic_store(&lc->state, LOOPCALL_OPEN);
    return 0;
}

void loopcall_close(loopcall *lc)
{
    if (atomic_load(&lc->state) != LOOPCALL_OPEN)
        return;
    pthread_mutex_lock(&lc->lock);
    atomic_store(&lc->state, LOOPCALL_CLOSED);
    while (lc->head) {
        loopcall_req *r = lc->head;
        unlink_req(lc, r);
        r->result = -ECANCELED;
        r->phase = REQ_DONE;
    }
    pthread_cond_broadcast(&lc->done);
    pthread_mutex_unlock(&lc->lock);
    if (!uv_is_closing((uv_handle_t *)&lc->async))
        uv_close((uv_handle_t *)&lc->async, NULL);
}

int loopcall_queued(loopcall *lc)
{
    int n = 0;
    if (atomic_load(&lc->state) == LOOPCALL_UNINIT)
        return 0;
    pthread_mutex_lock(&lc->lock);
    for (loopcall_req *r = lc->head; r; r = r->next)
        n++;
    pthread_mutex_unlock(&lc->lock);
    return n;
}

/* ---- caller side ------------------------------------------------------------------ */
static void deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Waits (lock held) until r is done or withdrawn; returns the result. */
static int wait_req(loopcall *lc, loopcall_req *r, int timeout_ms)
{
    struct timespec dl;
    bool expired = false;
    if (timeout_ms > 0)
        deadline(&dl, timeout_ms);
    while (r->phase != REQ_DONE) {
        if (timeout_ms <= 0 || expired) {
            pthread_cond_wait(&lc->done, &lc->lock);
            continue;
        }
        if (pthread_cond_timedwait(&lc->done, &lc->lock, &dl) != ETIMEDOUT)
            continue;
        expired = true;
        if (r->phase == REQ_QUEUED) { /* never started: withdraw it */
            unlink_req(lc, r);
            return -ETIMEDOUT;
        }
        /* RUNNING: fn is under way on the loop; wait for it to finish */
    }
    return r->result;
}

int loopcall_run(loopcall *lc, int (*fn)(void *arg), void *arg, int timeout_ms)
{
    if (atomic_load(&lc->state) != LOOPCALL_OPEN)
        return -ECANCELED;
    if (pthread_equal(pthread_self(), lc->loop_thread))
        return fn(arg);
    loopcall_req r = {.fn = fn, .arg = arg, .phase = REQ_QUEUED};
    pthread_mutex_lock(&lc->lock);
    if (atomic_load(&lc->state) != LOOPCALL_OPEN) {
        pthread_mutex_unlock(&lc->lock);
        return -ECANCELED;
    }
    enqueue(lc, &r);
    uv_async_send(&lc->async); /* under the lock: the handle is open */
    int rc = wait_req(lc, &r, timeout_ms);
    pthread_mutex_unlock(&lc->lock);
    return rc;
}
