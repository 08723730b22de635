/* detect.h: streaming, unsupervised anomaly detection, one detector per
 * metric. Feed each sample in time order; get back a score in [0, 1] and the
 * reason the ensemble gives for it. A detector is a fixed-size plain struct
 * (no pointers, at most DETECT_STATE_MAX bytes): O(1) memory per metric, no
 * look-ahead, safe to copy, save and load as bytes.
 *
 * Not thread-safe per detector: one thread feeds a given detector (the loop in
 * ippocd); different detectors are independent.
 */
#ifndef IPPOC_DETECT_H
#define IPPOC_DETECT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DETECT_STATE_MAX 4096

/* Scores at or above this are "anomalous" (the threshold bench/nab found to
 * maximise the NAB standard profile; the daemon's default). */
#define DETECT_THRESHOLD_DEFAULT 0.5

typedef enum detect_reason {
    DETECT_REASON_NONE = 0,    /* nothing unusual (or still learning) */
    DETECT_REASON_SPIKE,       /* a value far above what the recent past allows */
    DETECT_REASON_DIP,         /* a value far below it */
    DETECT_REASON_LEVEL_UP,    /* a sustained shift up (change point) */
    DETECT_REASON_LEVEL_DOWN,  /* a sustained shift down */
    DETECT_REASON_SEASONAL,    /* unusual for this time of day */
    DETECT_REASON_FLATLINE,    /* a series that used to move has stopped */
    DETECT_REASON_VARIANCE,    /* the spread changed (noisier or calmer) */
    DETECT_REASON_PATTERN,     /* the shape of recent values is new */
    DETECT_REASON_COUNT
} detect_reason;

typedef struct detect_result {
    double score;          /* [0, 1]; >= threshold means anomalous */
    detect_reason reason;  /* the detector that contributed most */
    double expected;       /* what the baseline expected (NAN while learning) */
} detect_result;

typedef struct detect_state detect_state; /* see detect_int.h; plain bytes */

/* Size of one detector's state in bytes (<= DETECT_STATE_MAX). */
size_t detect_state_size(void);

/* A new detector that knows nothing yet; NULL when out of memory. */
detect_state *detect_new(void);
void detect_free(detect_state *st);
/* Forget everything (as if just created). */
void detect_reset(detect_state *st);

/* Feed one sample; ts_ms is wall-clock milliseconds since the epoch (used for
 * seasonal profiles and gaps), value is the sample. NaN/inf values are
 * ignored (score 0, reason NONE, state unchanged). Samples whose time goes
 * backwards are scored but do not update the seasonal profile. */
detect_result detect_feed(detect_state *st, int64_t ts_ms, double value);

/* Number of samples this detector has learned from. */
uint64_t detect_count(const detect_state *st);

/* Stable lower-case name of a reason ("spike", "level_up", ...). */
const char *detect_reason_name(detect_reason r);

/* Serialise to buf (cap >= detect_state_size()); returns the bytes written or
 * 0 when cap is too small. The bytes carry a version and checksum. */
size_t detect_save(const detect_state *st, void *buf, size_t cap);
/* Restore from detect_save()'s bytes; 0 on success, -1 with a reason in err
 * (wrong size, version or checksum: st is then reset, never half-loaded). */
int detect_load(detect_state *st, const void *buf, size_t len, char *err, size_t errlen);

/* ---- CSV input: `timestamp,value` rows (ippoc detect, bench/nab) ----
 * The first line may be a header (a row whose value is not a number).
 * Timestamps: "YYYY-MM-DD HH:MM:SS[.fff]" (UTC), "YYYY-MM-DDTHH:MM:SS[.fff][Z]"
 * or seconds since the epoch (integer or decimal). */
typedef struct detect_csv detect_csv;

typedef struct detect_csv_row {
    int64_t ts_ms;        /* the timestamp, ms since the epoch */
    double value;
    unsigned long line;   /* 1-based line number in the input */
    char ts_text[64];     /* the timestamp as written */
    char value_text[64];  /* the value as written */
} detect_csv_row;

/* Read rows from f (not closed by detect_csv_close); name is used in errors. */
detect_csv *detect_csv_open(FILE *f, const char *name);
/* 1: a row was read; 0: end of input; -1: a bad row or read error, with
 * "NAME:LINE: reason" in err. Reading can continue after a bad row. */
int detect_csv_next(detect_csv *r, detect_csv_row *row, char *err, size_t errlen);
void detect_csv_close(detect_csv *r);

/* ---- Episodes (anomaly tracking across metrics): see below ---- */

#endif
