/* probe_int.h: what the probe_*.c files share: the probe struct, the
 * in-flight check ("attempt") protocol, and each kind's entry points.
 *
 * A check is either synchronous (PROCESS, METRIC: the kind calls
 * probe_complete before returning) or asynchronous: the kind allocates an
 * attempt that owns its handles and requests, sets p->cur, and later calls
 * probe_attempt_report once. When the probe gives up on it first (timeout,
 * stop, free) it sets attempt->probe = NULL and calls attempt->abort, which
 * must stop the work and free the attempt once its last callback ran. An
 * attempt never touches its probe after being reported or abandoned. */
#ifndef IPPOC_HEAL_PROBE_INT_H
#define IPPOC_HEAL_PROBE_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "heal/probe.h"

typedef struct probe_attempt probe_attempt;
struct probe_attempt {
    heal_probe *probe;               /* NULL once reported or abandoned */
    void (*abort)(probe_attempt *a); /* stop the work; free when safe */
};

typedef struct probe_http_multi probe_http_multi;

struct heal_probe {
    uv_loop_t *loop;
    heal_probe_config cfg; /* strings owned (copies) */
    char **argv;           /* exec argv copy */
    heal_probe_cb cb;
    void *ud;

    uv_timer_t tick;    /* repeating, interval_ms */
    uv_timer_t timeout; /* one shot per check */
    uv_timer_t now;     /* zero-delay, heal_probe_run_now */
    int open_handles;   /* closing: free when 0 */

    bool started, checking, now_pending, freeing;
    int in_cb;
    probe_attempt *cur;
    int64_t start_ns;
    int64_t grace_until_ns; /* failures of checks begun before this are not counted */

    heal_probe_state state;
    int fails;
    uint64_t seq, skipped;

    pcre2_code *re;        /* HTTP body regex */
    probe_http_multi *hm;  /* HTTP: the loop's shared multi (a reference) */
    unsigned char sha[32]; /* FILE: expected digest */
    int metric_id;         /* METRIC: cached series id, -1 until found */
};

typedef struct probe_outcome {
    bool ok, timed_out;
    int code;
    double latency_ms; /* < 0: measured from the start of the check */
    const char *output;
    size_t output_len;
    char msg[HEAL_PROBE_MSG_MAX];
} probe_outcome;

/* Ends the current check: updates the state, calls the callback. The probe
 * may be gone when this returns. */
void probe_complete(heal_probe *p, probe_outcome *o);
/* For an attempt: reports once if its probe still waits for it. */
void probe_attempt_report(probe_attempt *a, probe_outcome *o);
double probe_elapsed_ms(const heal_probe *p);
/* Text for a libuv error: strerror() for errno values, else uv_strerror(). */
const char *probe_uv_err(int uverr);
/* Copies at most cap bytes of the first line of s into dst (NUL-terminated). */
void probe_first_line(const char *s, size_t n, char *dst, size_t cap);

/* kinds: *_init validates and prepares at heal_probe_new (message in err),
 * *_start begins a check, *_fini releases what init took. */
int probe_tcp_init(heal_probe *p, char *err, size_t errlen);
void probe_tcp_start(heal_probe *p);

int probe_http_init(heal_probe *p, char *err, size_t errlen);
void probe_http_start(heal_probe *p);
void probe_http_fini(heal_probe *p);

int probe_exec_init(heal_probe *p, char *err, size_t errlen);
void probe_exec_start(heal_probe *p);

int probe_process_init(heal_probe *p, char *err, size_t errlen);
void probe_process_start(heal_probe *p);

int probe_file_init(heal_probe *p, char *err, size_t errlen);
void probe_file_start(heal_probe *p);

int probe_fs_init(heal_probe *p, char *err, size_t errlen);
void probe_fs_start(heal_probe *p);

int probe_metric_init(heal_probe *p, char *err, size_t errlen);
void probe_metric_start(heal_probe *p);

#endif
