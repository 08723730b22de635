/* loopcall.h: run a function on the libuv loop thread from another thread
 * (an HTTP thread, say) and wait for its result, with a timeout.
 *
 *   loopcall lc;                         // lives as long as any caller may call
 *   loopcall_init(&lc, loop);            // on the loop thread
 *   ...
 *   int rc = loopcall_run(&lc, fn, arg, 5000);   // any thread
 *   ...
 *   loopcall_close(&lc);                 // on the loop thread, before the loop's
 *                                        // handles are walked and closed
 *
 * A call is a request put on a queue under a mutex; uv_async_send wakes the
 * loop, whose async callback runs the queued functions in order, one at a
 * time. The request lives on the caller's stack: the loop never touches it
 * after marking it done, and a caller never returns while the loop holds it.
 *
 * Results of loopcall_run:
 *   fn's return value            fn ran on the loop thread (to the end)
 *   -ETIMEDOUT                   fn did not START within timeout_ms; it was
 *                                taken off the queue and will never run. A fn
 *                                already running when the time is up is waited
 *                                for (loop functions are short), so -ETIMEDOUT
 *                                always means "nothing happened".
 *   -ECANCELED                   the loopcall is not open (never initialised,
 *                                or closed, or closed while the call waited);
 *                                fn did not run.
 * Since fn's own value comes back unchanged, a fn that may itself return
 * -ETIMEDOUT / -ECANCELED should report through arg and return 0.
 * Called on the loop thread itself, loopcall_run runs fn at once (waiting on
 * the loop from its own thread would deadlock).
 *
 * Threads: loopcall_run is thread-safe. loopcall_init and loopcall_close run
 * on the loop thread (fn may call loopcall_close: the calls still queued
 * then fail with -ECANCELED). The struct may be
 * zero-filled before init (loopcall_run then answers -ECANCELED), and must
 * stay valid until every thread that may call loopcall_run is gone (its mutex
 * and condition variable are never destroyed; glibc needs no destroy for
 * them) and the async handle's close has completed (the loop has run once
 * after loopcall_close). */
#ifndef IPPOC_DAEMON_LOOPCALL_H
#define IPPOC_DAEMON_LOOPCALL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

typedef struct loopcall_req loopcall_req; /* private: one waiting call */

typedef struct loopcall {
    uv_async_t async;
    pthread_mutex_t lock;
    pthread_cond_t done;      /* broadcast when any request finishes */
    loopcall_req *head, *tail; /* queued, not yet started (under lock) */
    pthread_t loop_thread;
    atomic_int state;         /* LOOPCALL_* below */
} loopcall;

enum { LOOPCALL_UNINIT = 0, LOOPCALL_OPEN = 1, LOOPCALL_CLOSED = 2 };

/* Sets lc up on loop (loop thread). Returns 0 or a negative libuv/errno. */
int loopcall_init(loopcall *lc, uv_loop_t *loop);
/* Runs fn(arg) on the loop thread and returns its result, or -ETIMEDOUT /
 * -ECANCELED (see the top). timeout_ms <= 0 waits without a limit. */
int loopcall_run(loopcall *lc, int (*fn)(void *arg), void *arg, int timeout_ms);
/* Calls queued and not yet started (a snapshot; for tests and status). */
int loopcall_queued(loopcall *lc);
/* Fails every queued call with -ECANCELED, refuses new ones, closes the async
 * handle (unless something else already closes it). Loop thread; idempotent;
 * a never-initialised (zeroed) lc is fine. */
void loopcall_close(loopcall *lc);

#endif
