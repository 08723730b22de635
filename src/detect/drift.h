/* drift.h: the slow scale of the detector, internal to src/detect (like
 * detect_int.h): a test for slow drifts and leaks on one-minute means of a
 * series sampled faster than once a minute. See drift.c for the method.
 *
 * The state is plain bytes (no pointers, a few hundred bytes) that the main
 * detector embeds in its own state and saves with it; all-zero bytes are a
 * fresh detector (so detect_reset's memset resets it too). */
#ifndef IPPOC_DETECT_DRIFT_H
#define IPPOC_DETECT_DRIFT_H

#include <stdint.h>

typedef struct detect_drift {
    uint32_t nts;            /* samples seen (0: last_ts and dt unset) */
    uint32_t cnt;            /* samples in the minute being gathered */
    uint32_t nd;             /* minute-to-minute differences learned */
    uint32_t have_prev;      /* 1: m_prev and prev_min hold a closed minute */
    uint32_t n_up, n_dn;     /* minutes of each run that moved by more than the allowance */
    int32_t decided;         /* +1 / -1 while a rising / falling drift is decided, else 0 */
    uint32_t n_decided;      /* minutes the decision has lasted */
    int64_t last_ts;         /* ms of the last sample */
    int64_t minute;          /* the minute being gathered (ms / 60000) */
    int64_t prev_min;        /* the last closed minute */
    int64_t since_up, since_dn; /* ms where the rising / falling run began */
    double dt;               /* EW mean sampling interval, seconds */
    double ref, sum, ss;     /* the minute's first value; sums of (value - ref), squared */
    double m_prev;           /* mean of the last closed minute */
    double trend;            /* usual change per minute (robust EWMA of the differences) */
    double mad;              /* mean |difference - trend| (minute-to-minute noise) */
    double within;           /* EW mean within-minute standard deviation */
    double cov, var, e_prev; /* lag-1 autocorrelation of the standardised differences */
    double up, dn;           /* CUSUM of rising / falling differences (in noise units) */
    double base_up, base_dn; /* minute mean before each run began */
} detect_drift;

typedef struct detect_drift_out {
    double z;                /* surprise, z-like: 12 over a drift's first 30 decided minutes, else 0 */
    int dir;                 /* while a drift is decided: +1 rising, -1 falling; else 0 */
    double expected, lo, hi; /* while a drift is decided: the slow model's value and band now
                                (detect_drift_band), else NAN */
    int64_t since_ms;        /* when the drift began (0 when none) */
} detect_drift_out;

/* A fresh slow scale (all zero bytes). */
void detect_drift_reset(detect_drift *d);

/* Feeds one finite sample (ts_ms: ms since the epoch). O(1); a series
 * sampled once a minute or slower costs a few operations and stays 0. */
detect_drift_out detect_drift_feed(detect_drift *d, int64_t ts_ms, double value);

/* The slow model's expected value and band at ts_ms (the minute mean before
 * the current run began plus the usual trend since, +-3 sigma of a sample):
 * 0, or -1 with NANs while it is still learning (or the series is sampled
 * once a minute or slower). */
int detect_drift_band(const detect_drift *d, int64_t ts_ms, double *expected, double *lo, double *hi);

#endif
