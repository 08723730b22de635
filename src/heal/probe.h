/* probe.h: service probes of the heal module (issue 3, item 2).
 *
 * A probe checks one thing at a fixed interval, with a timeout, and declares
 * the thing DOWN after `threshold` consecutive failed checks and UP again
 * after the next good one. Kinds:
 *   PROCESS  a pid (from a callback, the supervisor knows it) is alive and not
 *            a zombie, or a process with a given comm exists (/proc scan);
 *   TCP      a TCP connect succeeds;
 *   HTTP     an HTTP(S) GET answers with the expected status (class or exact
 *            code), optionally a body matching a PCRE2 regex, within a maximum
 *            latency;
 *   EXEC     a check program (argv, no shell) exits with the expected code;
 *            stdout+stderr captured (first 4 KiB);
 *   FILE     a file exists, and optionally is younger than an age, smaller
 *            than a size, has a SHA-256;
 *   FS       a filesystem's used space / used inodes are under a percentage;
 *   METRIC   a sensor metric in memory (HiDB) compared with a threshold.
 *
 * Threads: every function here, and every callback, runs on the thread of the
 * uv_loop_t the caller passes to heal_probe_new (the loop thread only). The
 * probe never blocks that loop:
 *  - TCP resolves names with uv_getaddrinfo (thread pool) and connects with
 *    uv_tcp_connect; HTTP runs on libcurl's multi interface driven by the loop
 *    (one shared CURLM per loop), with libcurl's threaded resolver
 *    (AsynchDNS; if the linked libcurl lacks it, only numeric hosts are
 *    accepted and heal_probe_new says so);
 *  - FILE and FS use uv_fs_stat / uv_fs_statfs (thread pool), the SHA-256 is
 *    read and hashed in the thread pool (uv_queue_work);
 *  - PROCESS does kill(pid, 0) and reads /proc/PID/stat (procfs, never disk);
 *    the comm form scans /proc on the loop (a few ms on a busy machine);
 *  - METRIC reads memory through mem_series_find / mem_series_since (engine_metric.c).
 * libcurl is initialised once (curl_global_init, heal_curl_ready) on the first
 * HTTP probe or webhook, not before: its TLS libraries cost megabytes of
 * resident memory that a cell without either does not pay.
 *
 * Errors are negative errno values with a message in the caller's buffer. */
#ifndef IPPOC_HEAL_PROBE_H
#define IPPOC_HEAL_PROBE_H

#include <uv.h>

#include "core/core.h"
#include "memory/memory.h"

typedef enum heal_probe_type {
    HEAL_PT_PROCESS = 0,
    HEAL_PT_TCP,
    HEAL_PT_HTTP,
    HEAL_PT_EXEC,
    HEAL_PT_FILE,
    HEAL_PT_FS,
    HEAL_PT_METRIC,
    HEAL_PT_COUNT
} heal_probe_type;

typedef enum heal_probe_state {
    HEAL_PROBE_UNKNOWN = 0, /* no check finished yet */
    HEAL_PROBE_UP,
    HEAL_PROBE_DOWN
} heal_probe_state;

typedef enum heal_probe_transition {
    HEAL_PROBE_SAME = 0,  /* no change of state */
    HEAL_PROBE_WENT_DOWN, /* UP or UNKNOWN -> DOWN (threshold reached) */
    HEAL_PROBE_WENT_UP,   /* DOWN -> UP (first good check after DOWN) */
    HEAL_PROBE_FIRST_UP   /* UNKNOWN -> UP (first good check ever) */
} heal_probe_transition;

/* METRIC comparison; the probe FAILS while `value op threshold` holds, the
 * way a rule reads: {GT, 90} is "if cpu > 90". */
typedef enum heal_probe_op {
    HEAL_OP_GT = 0, HEAL_OP_GE, HEAL_OP_LT, HEAL_OP_LE, HEAL_OP_EQ, HEAL_OP_NE
} heal_probe_op;

/* Returns the pid to check now, or <= 0 when there is none (the probe then
 * fails with "no pid"). Called on the loop thread at each check. */
typedef pid_t (*heal_probe_pid_fn)(void *ud);

#define HEAL_PROBE_MSG_MAX 256        /* result message, cut beyond */
#define HEAL_PROBE_OUTPUT_MAX 4096    /* output excerpt kept (EXEC output, HTTP body) */
#define HEAL_PROBE_BODY_MAX (64 * 1024) /* HTTP body read for the regex */

/* What to check. Strings and argv are copied by heal_probe_new; the caller
 * may free them after. Zero means "default" or "not checked" as noted. */
typedef struct heal_probe_config {
    heal_probe_type type;
    const char *name;    /* used in log lines; NULL = the type's name */
    int64_t interval_ms; /* > 0 */
    int64_t timeout_ms;  /* > 0 and < interval_ms */
    int threshold;       /* consecutive failures to declare DOWN; 0 = 1 */

    struct {
        heal_probe_pid_fn pid_fn; /* either this ... */
        void *pid_ud;
        const char *comm;         /* ... or a comm (/proc/PID/comm, max 15 chars) */
    } process;

    struct {
        const char *host; /* name or numeric address (v4/v6) */
        int port;         /* 1..65535 */
        int64_t max_latency_ms; /* connect time; 0 = only the timeout */
    } tcp;

    struct {
        const char *url;           /* http:// or https:// only */
        int expect_code;           /* exact status (100..599); 0 = use the class */
        int expect_class;          /* 1..5 for 1xx..5xx; 0 = 2 (2xx) */
        int status_min, status_max; /* an accepted range instead (e.g. 200..399); 0 = unused */
        const char *body_regex;    /* PCRE2, compiled once here; NULL = none */
        int64_t max_latency_ms;    /* 0 = only the timeout */
        bool tls_insecure;         /* true = do not verify the peer (default verify, system CAs) */
        int max_redirects;         /* 0 = redirects are not followed */
    } http;

    struct {
        const char *const *argv;   /* argv[0] is the program (PATH searched), NULL-terminated */
        const char *cwd;           /* NULL = inherit */
        int expect_exit;           /* default 0 */
    } exec;

    struct {
        const char *path;
        int64_t max_age_ms;        /* mtime age must be < this; 0 = not checked */
        uint64_t max_size;         /* size must be < this; 0 = not checked */
        const char *sha256;        /* 64 hex digits (any case); NULL/"" = not checked */
    } file;

    struct {
        const char *path;          /* any path on the filesystem */
        double max_used_percent;   /* used blocks % (as df computes it) must be <= this; 0 = not checked */
        double max_inodes_percent; /* used inodes % must be <= this; 0 = not checked */
    } fs;

    struct {
        mem_t *mem;                /* read only, through memory.h */
        const char *name;          /* series family, e.g. "cpu.usage_percent" */
        const char *labels;        /* canonical labels; NULL = "" */
        heal_probe_op op;          /* fails while value op threshold */
        double threshold;
        int64_t max_age_ms;        /* the last value must be younger; 0 = any age */
    } metric;
} heal_probe_config;

typedef struct heal_probe heal_probe;

/* The outcome of one check, passed to the callback after every check.
 * Pointers are valid during the callback only. */
typedef struct heal_probe_result {
    bool ok;
    bool timed_out;
    double latency_ms;           /* from the start of the check to its outcome */
    int code;                    /* HTTP status, exit code, or -errno; 0 if none */
    const char *message;         /* "HTTP 503 after 12 ms", "timeout after 1000 ms", ... */
    const char *output;          /* bounded excerpt (EXEC output, HTTP body); "" if none */
    size_t output_len;
    int consecutive_failures;    /* including this one; 0 when ok */
    heal_probe_state state;      /* after this check */
    heal_probe_state prev_state;
    heal_probe_transition transition;
    uint64_t seq;                /* 1, 2, ... per probe */
    int64_t ts_ms;               /* wall clock at the outcome */
} heal_probe_result;

/* The probe may be stopped or freed from inside its callback. */
typedef void (*heal_probe_cb)(heal_probe *p, const heal_probe_result *r, void *ud);

/* Validates and copies cfg, compiles the body regex (a bad one gives -EINVAL
 * with PCRE2's message and offset), and returns a stopped probe. */
int heal_probe_new(uv_loop_t *loop, const heal_probe_config *cfg, heal_probe_cb cb, void *ud,
                   heal_probe **out, char *err, size_t errlen);
/* Starts checking: the first check at once, then every interval_ms. A check
 * still running when the next is due is not started twice (the tick is
 * skipped and counted). Idempotent. */
int heal_probe_start(heal_probe *p);
/* Stops the schedule and abandons a running check without reporting it
 * (its child is killed, its socket closed). Idempotent. */
void heal_probe_stop(heal_probe *p);
/* Runs one check now, whether started or not (the verify step after an
 * action: call it again from the callback until a deadline). Returns 0, or
 * -EBUSY when a check is already running (its result will come). */
int heal_probe_run_now(heal_probe *p);
/* A grace period after the checked thing (re)started: the next scheduled
 * check comes after ms, and failures of checks begun before then are not
 * reported (no callback, no log, no failure count); a passing check is
 * reported and ends the grace. 0 or -EINVAL. */
int heal_probe_grace(heal_probe *p, int64_t ms);
/* Stops and frees; handles close on the next loop iteration, so run the loop
 * until it has nothing left before closing it. NULL is fine. */
void heal_probe_free(heal_probe *p);

heal_probe_state heal_probe_get_state(const heal_probe *p);
int heal_probe_failures(const heal_probe *p);     /* consecutive */
uint64_t heal_probe_skipped(const heal_probe *p); /* ticks skipped: previous check still running */
const heal_probe_config *heal_probe_get_config(const heal_probe *p); /* the probe's copy */

const char *heal_probe_type_name(heal_probe_type k); /* "process", "tcp", ...; NULL if unknown */
int heal_probe_type_parse(const char *s);            /* -1 if unknown */
const char *heal_probe_state_name(heal_probe_state s); /* "unknown", "up", "down" */
const char *heal_probe_op_name(heal_probe_op op);      /* ">", ">=", ... */

/* Initialise libcurl once (thread-safe); 0, or -EIO with the reason in err.
 * Call on the loop before handing curl work to another thread. */
int heal_curl_ready(char *err, size_t errlen);

#endif
