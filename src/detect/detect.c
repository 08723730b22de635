/* detect.c: the detector ensemble behind detect_feed.
 *
 * Every sample is scored by small detectors, each a few numbers of state,
 * and their surprises are calibrated into one score:
 *
 *  1. Point surprise, the smallest of four models' standardised residuals
 *     (a point is unusual only if no model expects it):
 *     - slow robust level: EWMA whose update is Huber-clipped so one outlier
 *       cannot drag it, scaled by the EW mean absolute residual
 *       (Huber, "Robust estimation of a location parameter", 1964);
 *     - random walk: the previous value, scaled by the mean |step|;
 *     - time-of-day range: per 5-minute bin the envelope [lo, hi] of earlier
 *       days (a seasonal profile learned online, as Holt-Winters' seasonal
 *       index but an envelope, so recurring daily spikes are expected); the
 *       residual is the distance outside the envelope of the nearest of the
 *       +-3 neighbouring bins (timing jitter). When the seasonal model fits
 *       the series much better than the others it alone decides, so a daily
 *       rise that does not come is seen;
 *     - value levels seen before: 16 levels (centre, decayed count of
 *       visits, half-life 1000 samples), a visit being a value within 2 % of
 *       the series' range of the centre, so a level is a value the series
 *       keeps returning to (a bursty CPU's 90 %, a disk's write burst); the
 *       residual is the distance to the nearest level visited at least
 *       twice, 4 per tolerance. This plays the part of the value encoders of
 *       HTM and ARTime (a value near one seen before is familiar) at the
 *       cost of 128 bytes: recurring bursts stop alarming.
 *  2. Level shift: an EWMA control chart of the value against the slow level
 *     (Roberts, "Control chart tests based on geometric moving averages",
 *     1959), used when the slow level fits better than a random walk.
 *  3. Variance change: fast over slow EW mean absolute residual.
 *  4. Flat line: the current run of identical values against the longest
 *     run seen, once the series has been seen to move.
 *  5. Calibration: surprise u = log(1 + z) is compared with how often this
 *     series was at least as surprised lately (a histogram of u with a
 *     1000-sample half-life, decayed lazily: a new count weighs more each
 *     sample instead of every bin shrinking): F = u / u0 * (c / (c + count))^2. A series that
 *     spikes every hour stops alarming on its spikes; a quiet one alarms on
 *     its first. This plays the role of Numenta's anomaly likelihood (Ahmad
 *     et al., "Unsupervised real-time anomaly detection for streaming data",
 *     2017) with an empirical tail instead of a Gaussian one (the Gaussian
 *     tail of the 10-sample mean, alone or combined, measured worse on NAB:
 *     see bench/README.md).
 *  6. New extreme: a value beyond the extremes seen (which halve towards
 *     their middle in a year) by more than 5 % of their span is a detection
 *     whatever the calibration says, as the "spatial anomaly" NAB's HTM
 *     detector adds to the likelihood (same 5 % tolerance).
 *  7. Stopped source: a flat line far longer than chance allows is a
 *     detection (score 0.9) once, whatever the calibration: for a series that
 *     changed its value in a share p >= 0.2 of its samples (a busy process's
 *     CPU, its page faults), a run of at least 8 times the longest earlier
 *     run and at least ln(1e9) / p samples (a run that long would happen by
 *     chance about once in 1e9 if changes were independent). This is how a
 *     hung process shows on 1-second series; the calibrated flat-line score
 *     (4.) learns a long run as normal within a few dozen samples.
 *  After a detection, further alarms are held back for 100 samples unless
 *  much stronger or a new extreme (one event, one alarm). score = F / (F + 1),
 *  so 0.5 is the detection threshold (DETECT_THRESHOLD_NAB).
 *
 * The band reported (lo, hi) is 3 scales around the expected value, and
 * never narrower than 5 % of the value range nor 1 % of the level: a series
 * that sat still is not "far outside" for a change no one would notice.
 *
 * Scales are floored at 1 % of the value range, which halves towards its
 * middle in 69,000 samples. The constants were chosen by measurement on the
 * NAB corpus with leave-one-category-out checks (bench/nab/loco.py), one set
 * for every series; see bench/README.md for the scores.
 */
#include "detect/detect_int.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETECT_VERSION 6u /* 4: pchg (stopped source); 5: the slow scale (drift.c); 6: drift_told */

/* The tuned constants, in samples unless said otherwise. */
static struct {
    double warm;        /* samples before any score */
    double a_slow;      /* slow level EWMA rate */
    double a_mad;       /* rate of the scales */
    double a_fast;      /* level-shift EWMA rate */
    double a_var;       /* fast variance rate */
    double var_k;       /* variance change: z per unit of fast/slow - 1 */
    double huber;       /* residual clip, in scales */
    double a_bin;       /* seasonal envelope shrink per visit (per 5 min) */
    double nb;          /* neighbouring seasonal bins tried */
    double seas_ratio;  /* seasonal alone decides when its scale is this much smaller */
    double floor_k;     /* scale floor, as a share of the value range */
    double range_decay; /* value range shrink per sample (half-life 69,000) */
    double flat_min;    /* shortest run that can count as a flat line */
    double fire;        /* z at which a first-ever surprise is a detection */
    double c0;          /* calibration: counts that quarter the score */
    double h_decay;     /* calibration: histogram decay per sample (half-life 1000) */
    double h_w;         /* calibration: histogram bin width in log surprise */
    double fire_at;     /* calibrated surprise that starts the suppression */
    double hold;        /* suppression after a detection */
    double rebound;     /* ...unless this many times stronger */
    double lvl_tol;     /* levels: a value within this share of the range is a visit */
    double lvl_min;     /* levels: visits before a level is known */
    double lvl_hl;      /* levels: half-life of the visits, in samples (0: no levels) */
    double lvl_z;       /* levels: surprise at one tolerance from a known level */
    double sp_tol;      /* new extreme: share of the extremes' span beyond them (0: off) */
    double sp_hl;       /* new extreme: half-life of the extremes, in seconds */
    double sp_F;        /* new extreme: its calibrated surprise */
    double sp_free;     /* new extreme: not held back by an earlier detection (0/1) */
    double flat_fire;   /* flat line: a detection at this many times the longest run (0: off) */
    double flat_F;      /* ...with this calibrated surprise (9: score 0.9) */
    double a_chg;       /* rate of the share of samples that change the value */
    double flat_busy;   /* ...only for a series that changed in at least this share of its samples */
    double drift_F;     /* a decided slow drift: this calibrated surprise (9: score 0.9) */
} P = {
    .warm = 100, .a_slow = 0.05, .a_mad = 0.02, .a_fast = 0.1, .a_var = 0.1, .var_k = 2,
    .huber = 3, .a_bin = 0.1, .nb = 3, .seas_ratio = 0.7, .floor_k = 0.01,
    .range_decay = 0.99999 /* half-life 69,000 samples */, .flat_min = 10,
    .fire = 0.6173, .c0 = 5, .h_decay = 0.9993070929904525 /* 0.5^(1/1000) */, .h_w = 0.25,
    .fire_at = 1.143, .hold = 100, .rebound = 2,
    .lvl_tol = 0.02, .lvl_min = 2, .lvl_hl = 1000, .lvl_z = 4,
    .sp_tol = 0.05, .sp_hl = 365 * 86400.0, .sp_F = 2, .sp_free = 1, .flat_fire = 8, .flat_F = 9, .a_chg = 0.001, .flat_busy = 0.2, .drift_F = 9,
};

size_t detect_state_size(void) { return sizeof(detect_state); }

void detect_reset(detect_state *st)
{
    memset(st, 0, sizeof *st);
    st->version = DETECT_VERSION;
    st->last_day = -1;
    st->hw = 1;
    for (int i = 0; i < DETECT_BINS; i++) st->bin_hi[i] = st->bin_lo[i] = NAN;
}

detect_state *detect_new(void)
{
    detect_state *st = malloc(sizeof *st);
    if (st) detect_reset(st);
    return st;
}

void detect_free(detect_state *st) { free(st); }

uint64_t detect_count(const detect_state *st) { return st->n; }

/* An EWMA rate that starts as a plain average while there are few samples. */
static double rate(const detect_state *st, double a)
{
    return (double)st->n < 1 / a ? 1.0 / (double)st->n : a;
}

static double clip(double x, double c) { return x > c ? c : x < -c ? -c : x; }

/* A model's scale from its mean absolute residual (1.25 mad ~ one sigma). */
static double scale_of(double mad, double floor_) { return 1.25 * mad + floor_; }

/* Distance of value outside the seasonal envelope of the nearest bin within
 * bin +- nb; NAN when none of them has been seen. *mid: that bin's middle. */
static double seas_dist(const detect_state *st, int bin, double value, double *mid)
{
    double best = NAN;
    for (int k = -(int)P.nb; k <= (int)P.nb; k++) {
        int b = (bin + k + DETECT_BINS) % DETECT_BINS;
        double hi = st->bin_hi[b], lo = st->bin_lo[b];
        if (isnan(hi)) continue;
        double d = value > hi ? value - hi : value < lo ? value - lo : 0;
        if (isnan(best) || fabs(d) < fabs(best)) { best = d; *mid = 0.5 * (hi + lo); }
    }
    return best;
}

/* Widen the bin's envelope to the value, or shrink it towards the value by
 * a_bin per 5 minutes of samples (so 1 s and 5 min series learn alike). */
static void seas_learn(detect_state *st, int bin, double value, double dt_s)
{
    float *hi = &st->bin_hi[bin], *lo = &st->bin_lo[bin];
    if (isnan(*hi)) { *hi = *lo = (float)value; return; }
    double a = P.a_bin * (dt_s > 0 && dt_s < 300 ? dt_s / 300 : 1);
    if (value > *hi) *hi = (float)value; else *hi += (float)(a * (value - *hi));
    if (value < *lo) *lo = (float)value; else *lo += (float)(a * (value - *lo));
}

/* Calibration: F for log surprise u, then count u into the histogram. The
 * tail count is the shorter of the two partial sums (htot keeps the total). */
static double calibrate(detect_state *st, double u)
{
    int hb = (int)(u / P.h_w);
    if (hb >= DETECT_HBINS) hb = DETECT_HBINS - 1;
    double count = 0; /* the counts at or above hb */
    if (hb < DETECT_HBINS / 2) {
        for (int k = 0; k < hb; k++) count += st->hist[k];
        count = st->htot - count;
        if (count < 0) count = 0;
    } else {
        for (int k = hb; k < DETECT_HBINS; k++) count += st->hist[k];
    }
    double q = P.c0 / (P.c0 + count / st->hw);
    double F = u / log1p(P.fire) * q * q;
    if ((double)st->n > P.warm) {
        float w = (float)(st->hw / P.h_decay);
        st->hist[hb] += w;
        st->htot += w;
    }
    return F;
}

/* The histogram decays lazily: a new count weighs hw, which grows by
 * 1/h_decay a sample, instead of every bin shrinking by h_decay; all is
 * rescaled before the weights overflow a float. */
static void calibrate_age(detect_state *st)
{
    if ((double)st->n <= P.warm) return;
    st->hw /= P.h_decay;
    if (st->hw < 1e15) return;
    st->htot = 0;
    for (int k = 0; k < DETECT_HBINS; k++) {
        st->hist[k] = (float)(st->hist[k] / st->hw);
        st->htot += st->hist[k];
    }
    st->hw = 1;
}

/* Levels, one pass: returns the distance from value to the nearest known
 * level (at least lvl_min visits), lvl_z per tolerance (INFINITY when none is
 * known); then every level's visits decay and the nearest level within tol
 * of value gets a visit (its centre moves towards value), or the least
 * visited level is replaced by a new one at value. */
static double lvl_step(detect_state *st, double value, double tol)
{
    double h = M_LN2 / P.lvl_hl;
    float dk = (float)(P.lvl_hl < 100 ? exp2(-1 / P.lvl_hl) : 1 - h + 0.5 * h * h); /* 0.5^(1/lvl_hl) */
    double best = INFINITY, hd = INFINITY;
    int hit = -1, weak = 0;
    for (int i = 0; i < DETECT_LEVELS; i++) {
        double d = fabs(value - st->lvl_at[i]);
        if (st->lvl_n[i] >= P.lvl_min && d < best) best = d;
        st->lvl_n[i] *= dk;
        if (st->lvl_n[i] > 0 && d <= tol && d < hd) { hd = d; hit = i; }
        if (st->lvl_n[i] < st->lvl_n[weak]) weak = i;
    }
    if (hit < 0) {
        st->lvl_at[weak] = (float)value;
        st->lvl_n[weak] = 1;
    } else {
        st->lvl_n[hit] += 1;
        st->lvl_at[hit] += (float)((value - st->lvl_at[hit]) / fmin(st->lvl_n[hit], 50));
    }
    return best / tol * P.lvl_z;
}

/* A detection that overrules the calibration (a new extreme, a stopped
 * source, a decided drift): raises *F to F_at with its reason; whether it did. */
static bool overrule(double *F, detect_reason *why, double F_at, detect_reason r)
{
    if (!(F_at > *F)) return false;
    *F = F_at;
    *why = r;
    return true;
}

/* New extreme: how far value is beyond the extremes seen, as a share of
 * their span (0 inside them or while they span nothing). */
static double beyond_extremes(const detect_state *st, double value)
{
    double w = st->xhi - st->xlo;
    double ex = value > st->xhi ? value - st->xhi : value < st->xlo ? st->xlo - value : 0;
    return w > 0 ? ex / w : 0;
}

/* The scale range (half-life in samples) and the extremes (in time; a
 * first-order half-life, as dt_s is far below a year). */
static void learn_range(detect_state *st, double value, double dt_s)
{
    double xk = 1 - dt_s * M_LN2 / P.sp_hl, xm = 0.5 * (st->xhi + st->xlo);
    st->xhi = xm + (st->xhi - xm) * xk;
    st->xlo = xm + (st->xlo - xm) * xk;
    if (value > st->xhi) st->xhi = value;
    if (value < st->xlo) st->xlo = value;
    double dk = P.range_decay, m = 0.5 * (st->hi + st->lo);
    st->hi = m + (st->hi - m) * dk;
    st->lo = m + (st->lo - m) * dk;
    if (value > st->hi) st->hi = value;
    if (value < st->lo) st->lo = value;
}

detect_result detect_feed(detect_state *st, int64_t ts_ms, double value)
{
    detect_result res = { 0.0, DETECT_REASON_NONE, NAN, NAN, NAN };
    if (!isfinite(value)) return res;
    if (st->n == 0) {
        st->slow = st->fast = st->last = st->hi = st->lo = st->xhi = st->xlo = value;
        st->last_ts = ts_ms;
        st->last_day = (int32_t)(ts_ms / 86400000);
        st->n = 1;
        return res;
    }
    double floor_ = P.floor_k * (st->hi - st->lo) + 1e-9 * fabs(st->slow) + 1e-12;
    double dt_s = (double)(ts_ms - st->last_ts) / 1000.0;
    int64_t tod = ((ts_ms / 1000) % 86400 + 86400) % 86400;
    int bin = (int)(tod * DETECT_BINS / 86400);
    int32_t day = (int32_t)(ts_ms / 86400000);

    /* 1. point surprise: every model must be surprised */
    double r_slow = value - st->slow, r_walk = value - st->last;
    double z_slow = fabs(r_slow) / scale_of(st->slow_mad, floor_);
    double z_walk = fabs(r_walk) / scale_of(st->walk_mad, floor_);
    double z_point = fmin(z_slow, z_walk);
    double expected = z_slow < z_walk ? st->slow : st->last;
    double mid = NAN, r_seas = st->days >= 1 ? seas_dist(st, bin, value, &mid) : NAN;
    int seasonal = 0;
    double shown = NAN; /* the expected value reported */
    if (!isnan(r_seas)) {
        double z_seas = fabs(r_seas) / scale_of(st->slow_mad, floor_);
        if (z_seas < z_point) { z_point = z_seas; expected = mid; }
        /* the seasonal model alone decides when it fits much better */
        if (st->days >= 2 && st->seas_mad < P.seas_ratio * fmin(st->slow_mad, st->walk_mad)) {
            z_seas = fabs(r_seas) / scale_of(st->slow_mad, floor_);
            if (z_seas > z_point) {
                z_point = z_seas;
                shown = mid;
                seasonal = fmin(z_slow, z_walk) < 3; /* else it is a plain spike/dip */
            }
        }
    }
    double tol = P.lvl_tol * (st->hi - st->lo) + floor_;
    if (P.lvl_hl > 0) z_point = fmin(z_point, lvl_step(st, value, tol));
    double r = value - expected;
    if (isnan(shown)) shown = expected;

    /* 2. level shift, when the series is a level with noise, not a walk */
    double fast = st->fast + P.a_fast * (value - st->fast);
    double z_shift = 0;
    if (st->walk_mad >= st->slow_mad)
        z_shift = fabs(fast - st->slow) /
                  (1.25 * st->slow_mad * sqrt(P.a_fast / (2 - P.a_fast)) + floor_);

    /* 3. variance change */
    double vfast = st->vfast + P.a_var * (fabs(r) - st->vfast);
    double z_var = st->vslow > 0 ? P.var_k * (vfast / (st->vslow + floor_) - 1) : 0;

    /* 4. flat line */
    double run = value == st->last ? st->run + 1 : 0;
    double z_flat = 0;
    if (st->dmad > floor_) {
        z_flat = run / (st->runmax > P.flat_min ? st->runmax : P.flat_min);
        z_flat = z_flat > 2 ? 2 * (z_flat - 1) : 0;
    }

    double S = z_point;
    detect_reason why = seasonal ? DETECT_REASON_SEASONAL : r > 0 ? DETECT_REASON_SPIKE : DETECT_REASON_DIP;
    if (z_shift > S) { S = z_shift; why = fast > st->slow ? DETECT_REASON_LEVEL_UP : DETECT_REASON_LEVEL_DOWN; }
    if (z_var > S) { S = z_var; why = DETECT_REASON_VARIANCE; }
    if (z_flat > S) { S = z_flat; why = DETECT_REASON_FLATLINE; }

    /* ---- slow scale (drift.c): the same series as one-minute means, tested
     * for a slow drift; its z joins the max unless the value is within the
     * time-of-day envelope of earlier days (a daily ramp is no leak), and
     * when it wins the result shows its expected value and band ---- */
    detect_drift_out drift = detect_drift_feed(&st->drift, ts_ms, value);
    if (!isnan(r_seas) && r_seas == 0) drift.z = 0; /* within this time of day's envelope: a daily ramp */
    int drift_won = drift.z > S;
    if (drift_won) { S = drift.z; why = DETECT_REASON_DRIFT; }
    /* ---- end slow scale ---- */

    /* 5. calibration, then one alarm per event */
    double F = calibrate(st, log1p(S > 0 ? S : 0));
    calibrate_age(st);

    /* 6. a new extreme */
    if (P.sp_tol > 0 && beyond_extremes(st, value) > P.sp_tol) {
        overrule(&F, &why, P.sp_F, value > st->xhi ? DETECT_REASON_SPIKE : DETECT_REASON_DIP);
        if (P.sp_free > 0) st->fired = 0;
    }
    /* 7. a flat line far longer than any run seen: a stopped source (a hung
     * process, a dead collector) is a detection once, when the run crosses
     * flat_fire times the longest earlier run, whatever the calibration */
    if (P.flat_fire > 0 && st->pchg >= P.flat_busy) {
        /* and so long that, for a series that changes in a share p of its
         * samples, such a run would happen by chance once in ~1e9 runs */
        double need = ceil(fmax(P.flat_fire * fmax(st->runmax, P.flat_min),
                                20.7 / fmax(st->pchg, 1e-6)));
        if (run == need && overrule(&F, &why, P.flat_F, DETECT_REASON_FLATLINE)) st->fired = 0;
    }
    /* 8. a slow drift, once decided, is a detection (once per drift)
     * whatever the calibration: the slow scale has its own noise model, and
     * the ramp's own 1-second surprises fill the calibration's histogram, so
     * the calibrated z alone was learned away (the tracker keeps the run
     * while the value keeps moving away) */
    if (drift.z > 0 && drift.since_ms != st->drift_told && overrule(&F, &why, P.drift_F, DETECT_REASON_DRIFT)) {
        st->drift_told = drift.since_ms;
        drift_won = 1;
        st->fired = 0;
    }
    double out = F;
    if (st->hold > 0) {
        if (F < st->fired * P.rebound) out = F * 0.1;
        st->hold--;
    }
    if (out >= P.fire_at && (double)st->n > P.warm) { st->hold = P.hold; st->fired = F; }
    if ((double)st->n >= P.warm) {
        res.score = isfinite(out) ? out / (out + 1) : 1.0;
        res.reason = res.score >= DETECT_THRESHOLD_NAB ? why : DETECT_REASON_NONE;
        res.expected = shown;
        /* the band: 3 scales, and never narrower than what matters in
         * practice: 5 % of the range the series spans, 1 % of its level */
        double band = fmax(3 * scale_of(st->slow_mad, floor_),
                           fmax(0.05 * (st->hi - st->lo), 0.01 * fabs(shown)));
        res.lo = shown - band;
        res.hi = shown + band;
        if (drift_won && why == DETECT_REASON_DRIFT) { /* slow scale (a new extreme may have won after it) */
            res.expected = drift.expected;
            res.lo = drift.lo;
            res.hi = drift.hi;
        }
    }

    /* learn */
    double c = P.huber * (st->slow_mad + floor_);
    double rc = clip(r_slow, c);
    st->slow += rate(st, P.a_slow) * rc;
    st->slow_mad += rate(st, P.a_mad) * (fabs(rc) - st->slow_mad);
    c = P.huber * (st->walk_mad + floor_);
    st->walk_mad += rate(st, P.a_mad) * (fmin(fabs(r_walk), c) - st->walk_mad);
    if (!isnan(r_seas)) {
        if (st->seas_mad == 0 && st->days < 2) st->seas_mad = st->slow_mad;
        c = P.huber * (st->seas_mad + floor_);
        st->seas_mad += P.a_mad * (fmin(fabs(r_seas), c) - st->seas_mad);
    }
    seas_learn(st, bin, value, dt_s);
    if (day != st->last_day) { st->days++; st->last_day = day; }
    st->fast = fast;
    learn_range(st, value, dt_s > 0 ? dt_s : 0);
    st->vfast = vfast;
    st->vslow += P.a_mad * (fabs(r) - st->vslow);
    st->dmad += P.a_mad * (fabs(r_walk) - st->dmad);
    st->pchg += rate(st, P.a_chg) * ((value != st->last) - st->pchg);
    if (value != st->last && st->run > 0) st->runmax = fmax(st->runmax * 0.999, st->run);
    st->run = run;
    st->last = value;
    st->last_ts = ts_ms;
    st->n++;
    return res;
}

static const char *const reason_names[DETECT_REASON_COUNT] = {
    "none", "spike", "dip", "level_up", "level_down", "seasonal", "flatline", "variance", "drift",
};

const char *detect_reason_name(detect_reason r)
{
    return (unsigned)r < DETECT_REASON_COUNT ? reason_names[r] : "unknown";
}

/* ---- tunables (benchmarks only) ---- */

static const struct { const char *name; double *v; double lo, hi; } tunables[] = {
    { "warm", &P.warm, 1, 10000 },
    { "fire", &P.fire, 0.01, 100 },
    { "hold", &P.hold, 0, 100000 },
    { "fire_at", &P.fire_at, 0.01, 100 },
    { "rebound", &P.rebound, 1, 1000 },
    { "c0", &P.c0, 0.01, 1000 },
    { "nb", &P.nb, 0, 100 },
    { "a_bin", &P.a_bin, 0, 1 },
    { "range_decay", &P.range_decay, 0.9, 1 },
    { "lvl_tol", &P.lvl_tol, 0, 1 },
    { "lvl_min", &P.lvl_min, 0, 1e6 },
    { "lvl_hl", &P.lvl_hl, 0, 1e7 },
    { "lvl_z", &P.lvl_z, 0, 1e3 },
    { "sp_tol", &P.sp_tol, 0, 10 },
    { "sp_hl", &P.sp_hl, 1, 1e12 },
    { "sp_F", &P.sp_F, 0, 1000 },
    { "sp_free", &P.sp_free, 0, 1 },
    { "flat_fire", &P.flat_fire, 0, 1000 },
    { "flat_F", &P.flat_F, 0, 1000 },
    { "flat_busy", &P.flat_busy, 0, 1 },
    { "drift_F", &P.drift_F, 0, 1000 },
};
#define NTUNABLES ((int)(sizeof tunables / sizeof tunables[0]))

int detect_tunable_set(const char *name, double value, char *err, size_t errlen)
{
    for (int i = 0; i < NTUNABLES; i++) {
        if (strcmp(tunables[i].name, name) != 0) continue;
        if (!(value >= tunables[i].lo && value <= tunables[i].hi)) {
            snprintf(err, errlen, "tunable '%s': %g is outside [%g, %g]", name, value, tunables[i].lo,
                     tunables[i].hi);
            return -EINVAL;
        }
        *tunables[i].v = value;
        return 0;
    }
    snprintf(err, errlen, "unknown tunable '%s'", name);
    return -EINVAL;
}

int detect_tunable_count(void) { return NTUNABLES; }

const char *detect_tunable_get(int i, double *value)
{
    if (i < 0 || i >= NTUNABLES) return NULL;
    *value = *tunables[i].v;
    return tunables[i].name;
}
