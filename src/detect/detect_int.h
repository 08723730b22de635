/* detect_int.h: the detector's state layout, internal to src/detect. The
 * struct is plain bytes (no pointers) so save.c can copy it whole. */
#ifndef IPPOC_DETECT_INT_H
#define IPPOC_DETECT_INT_H

#include "detect/detect.h"
#include "detect/drift.h" /* slow scale (drift.c) */

#define DETECT_BINS 288  /* time-of-day bins of the seasonal range (5 min each) */
#define DETECT_HBINS 32  /* bins of the recent-surprise histogram (log scale) */
#define DETECT_LEVELS 16 /* remembered value levels (values seen before) */

struct detect_state {
    uint32_t version;
    uint64_t n;            /* samples learned */
    int64_t last_ts;       /* ms of the last sample */
    double last;           /* last value */
    double slow, slow_mad; /* slow robust level and its mean absolute residual */
    double walk_mad;       /* random walk (expects the previous value): mean |step|, clipped */
    double seas_mad;       /* time-of-day envelope: mean distance outside it */
    double fast;           /* fast EWMA of the value (level shifts) */
    double dmad;           /* mean |step| (has the series ever moved?) */
    double vfast, vslow;   /* fast/slow mean |residual| (variance change) */
    double run, runmax;
    double pchg;           /* EW share of samples that changed the value */
    int64_t drift_told;    /* since_ms of the last slow drift told as a detection */    /* flat line: current run of equal values, longest seen */
    double hi, lo;         /* slowly shrinking range of values seen (scale floor) */
    double xhi, xlo;       /* extremes seen, shrinking in time (new extremes) */
    double hold;           /* samples left in the suppression after a detection */
    double fired;          /* calibrated surprise of that detection */
    double hw;             /* weight of a new count in hist (lazy decay: a count is hist/hw) */
    double htot;           /* sum of hist */
    uint32_t days;         /* day boundaries crossed (seasonal maturity) */
    int32_t last_day;
    float lvl_at[DETECT_LEVELS], lvl_n[DETECT_LEVELS]; /* level centres, decayed visits */
    float hist[DETECT_HBINS];                       /* decayed counts of recent surprise */
    float bin_hi[DETECT_BINS], bin_lo[DETECT_BINS]; /* NaN: bin not seen yet */
    /* ---- slow scale (drift.c): one-minute means, drifts and leaks; all-zero = fresh ---- */
    detect_drift drift;
    /* ---- end slow scale ---- */
};

#endif
