/* detect.c: the detector ensemble behind detect_feed.
 *
 * Every sample is scored by five small detectors, each a few numbers of
 * state, and their surprises are calibrated into one score:
 *
 *  1. Point surprise, the smallest of three models' standardised residuals
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
 *       rise that does not come is seen.
 *  2. Level shift: an EWMA control chart of the value against the slow level
 *     (Roberts, "Control chart tests based on geometric moving averages",
 *     1959), used when the slow level fits better than a random walk.
 *  3. Variance change: fast over slow EW mean absolute residual.
 *  4. Flat line: the current run of identical values against the longest
 *     run seen, once the series has been seen to move.
 *  5. Calibration: surprise u = log(1 + z) is compared with how often this
 *     series was at least as surprised lately (a histogram of u with a
 *     1000-sample half-life): F = u / u0 * (c / (c + count))^2. A series that
 *     spikes every hour stops alarming on its spikes; a quiet one alarms on
 *     its first. This plays the role of Numenta's anomaly likelihood (Ahmad
 *     et al., "Unsupervised real-time anomaly detection for streaming data",
 *     2017) with an empirical tail instead of a Gaussian one.
 *  After a detection, further alarms are held back for 100 samples unless
 *  much stronger (one event, one alarm). score = F / (F + 1), so 0.5 is the
 *  detection threshold (DETECT_THRESHOLD_NAB).
 *
 * The constants were chosen by measurement on the NAB corpus (bench/nab),
 * one set for every series; see bench/README.md for the scores.
 */
#include "detect/detect_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETECT_VERSION 2u

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
    double shift_clip;  /* level shift: each step of the fast EWMA clipped to this many scales (0: off) */
    double sp_tol;      /* new extreme: share of the range beyond it (0: off) */
    double sp_hl;       /* new extreme: half-life of the extremes, in seconds */
    double sp_free;     /* new extreme: not held back by an earlier detection (0/1) */
    double sp_F;        /* new extreme: its calibrated surprise */
    double seas_up;     /* a value outside a bin's envelope widens it by this share of the gap */
    double seas_trust;  /* the seasonal model may excuse a value only when its scale is this much smaller (0: always) */
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
    double res_k;       /* scale floor, in resolutions (the smallest recent step) */
    double res_grow;    /* resolution's growth per sample, so it can forget */
    double lvl_tol;     /* levels: a value within this share of the range is a visit */
    double lvl_min;     /* levels: visits before a level counts as known */
    double lvl_hl;      /* levels: half-life of the visits, in samples (0: off) */
    double lvl_z;       /* levels: surprise at one tolerance from a known level */
    double lvl_sdk;     /* levels: a level's tolerance is at least this many of its spreads */
    double lvl_shift;   /* levels: also bound the level-shift surprise (0/1) */
    double env_hl;      /* recent envelope: half-life in samples (0: off) */
    double env_w;       /* recent envelope: share of the point surprise kept inside it */
    double u_cap;       /* calibration: most the surprise itself multiplies F by */
    double cal;         /* calibration: 0 histogram, 1 likelihood, 2 max, 3 product; 4, 5: 1, 2 on the histogram's score */
    double al_d;        /* cal 6: -log10 of the tail probability that scores 0.5 */
    double al_k;        /* raw score = S^2 / (S^2 + al_k^2) */
    double al_win;      /* likelihood: samples of the long window (mean/variance) */
    double al_short;    /* likelihood: samples of the short mean (<= DETECT_SHORT) */
    double al_floor;    /* likelihood: least standard deviation of the short mean */
    double al_learn;    /* likelihood: samples before it can fire */
} P = {
    .warm = 100, .a_slow = 0.05, .a_mad = 0.02, .a_fast = 0.1, .a_var = 0.1, .var_k = 2,
    .huber = 3, .a_bin = 0.1, .nb = 3, .seas_ratio = 0.7, .seas_trust = 0, .seas_up = 1, .shift_clip = 0, .sp_tol = 0.05, .sp_F = 2, .sp_free = 1, .sp_hl = 365 * 86400.0, .floor_k = 0.01,
    .range_decay = 0.99999 /* half-life 69,000 samples */, .flat_min = 10,
    .fire = 0.6173, .c0 = 5, .h_decay = 0.9993070929904525 /* 0.5^(1/1000) */, .h_w = 0.25,
    .fire_at = 1.143, .hold = 100, .rebound = 2,
    .res_k = 0, .res_grow = 1.001, .lvl_tol = 0.02, .lvl_min = 2, .lvl_hl = 1000, .lvl_z = 4, .lvl_shift = 0, .lvl_sdk = 0, .env_hl = 0, .env_w = 0.3, .u_cap = 1e9, .cal = 0, .al_d = 4, .al_k = 4, .al_win = 2000, .al_short = 10, .al_floor = 0.01, .al_learn = 300,
};

size_t detect_state_size(void) { return sizeof(detect_state); }

void detect_reset(detect_state *st)
{
    memset(st, 0, sizeof *st);
    st->version = DETECT_VERSION;
    st->last_day = -1;
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
    double up = P.seas_up;
    if (value > *hi) *hi += (float)(up * (value - *hi)); else *hi += (float)(a * (value - *hi));
    if (value < *lo) *lo += (float)(up * (value - *lo)); else *lo += (float)(a * (value - *lo));
}

/* Calibration: F for log surprise u, then count u into the histogram. */
static double calibrate(detect_state *st, double u)
{
    int hb = (int)(u / P.h_w);
    if (hb >= DETECT_HBINS) hb = DETECT_HBINS - 1;
    double count = 0, total = 0;
    for (int k = 0; k < DETECT_HBINS; k++) {
        total += st->hist[k];
        if (k >= hb) count += st->hist[k];
    }
    double F;
    if (P.cal == 6) {
        /* tail probability: the share of recent samples at least as
         * surprised, with a Gaussian prior of weight c0 for what was never seen */
        double z = expm1(u);
        double p = (count + P.c0 * erfc(z / M_SQRT2)) / (total + P.c0);
        F = -log10(p + 1e-300) / P.al_d;
    } else {
        double q = P.c0 / (P.c0 + count);
        F = fmin(u / log1p(P.fire), P.u_cap) * q * q;
    }
    if ((double)st->n > P.warm) {
        float d = (float)P.h_decay;
        for (int k = 0; k < DETECT_HBINS; k++) st->hist[k] *= d;
        st->hist[hb] += 1;
    }
    return F;
}

/* Anomaly likelihood (Ahmad et al. 2017): the tail probability of the mean
 * of the last al_short raw scores under the running normal of that mean,
 * log-scaled as in NAB's HTM detector: -log10(p) / 10, 0.5 at p = 1e-5.
 * Returned as F = s / (1 - s) so that F = 1 at score 0.5. */
static double likelihood(detect_state *st, double raw)
{
    int k = (int)P.al_short;
    if (k > DETECT_SHORT) k = DETECT_SHORT;
    if (k < 1) k = 1;
    uint32_t i = st->al_i % (uint32_t)k;
    st->al_sum += raw - st->al_ring[i];
    st->al_ring[i] = (float)raw;
    st->al_i = (i + 1) % (uint32_t)k;
    double m = st->al_sum / k;
    double sd = sqrt(st->al_var);
    if (sd < P.al_floor) sd = P.al_floor;
    double z = (m - st->al_mu) / sd;
    double p = 0.5 * erfc(z / M_SQRT2);
    double s = -log10(p + 1e-10) / 10;
    if ((double)st->n < P.al_learn) s = 0;
    double a = (double)st->n < P.al_win ? 1.0 / (double)st->n : 1 / P.al_win;
    double d = m - st->al_mu;
    st->al_mu += a * d;
    st->al_var = (1 - a) * (st->al_var + a * d * d);
    return s >= 0.999 ? 999 : s / (1 - s);
}

/* Levels: the nearest remembered value level known (>= lvl_min visits) to
 * value, as a surprise: lvl_z per tolerance away; INFINITY when none. */
static double lvl_surprise(const detect_state *st, double value, double tol)
{
    double best = INFINITY;
    for (int i = 0; i < DETECT_LEVELS; i++) {
        if (st->lvl_n[i] < P.lvl_min) continue;
        double d = fabs(value - st->lvl_at[i]) / fmax(tol, P.lvl_sdk * st->lvl_sd[i]);
        if (d < best) best = d;
    }
    return best * P.lvl_z;
}

/* Count a visit to the level within tol of value, or replace the least
 * visited level by a new one at value; every level's visits decay. */
static void lvl_learn(detect_state *st, double value, double tol)
{
    float dk = (float)exp2(-1 / P.lvl_hl);
    int hit = -1, weak = 0;
    double hd = INFINITY;
    for (int i = 0; i < DETECT_LEVELS; i++) {
        st->lvl_n[i] *= dk;
        double d = fabs(value - st->lvl_at[i]) / fmax(tol, P.lvl_sdk * st->lvl_sd[i]);
        if (st->lvl_n[i] > 0 && d <= 1 && d < hd) { hd = d; hit = i; }
        if (st->lvl_n[i] < st->lvl_n[weak]) weak = i;
    }
    if (hit < 0) {
        st->lvl_at[weak] = (float)value;
        st->lvl_n[weak] = 1;
        st->lvl_sd[weak] = 0;
        return;
    }
    st->lvl_n[hit] += 1;
    double w = 1 / fmin(st->lvl_n[hit], 50);
    double d = value - st->lvl_at[hit];
    st->lvl_at[hit] += (float)(w * d);
    st->lvl_sd[hit] += (float)(w * (fabs(d) - st->lvl_sd[hit]));
}

static void learn_range(detect_state *st, double value, double dt_s)
{
    double xk = exp2(-dt_s / P.sp_hl), xm = 0.5 * (st->xhi + st->xlo);
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
    floor_ = fmax(floor_, P.res_k * st->res);
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
        int trusted = P.seas_trust <= 0 ||
                      (st->days >= 2 && st->seas_mad < P.seas_trust * fmin(st->slow_mad, st->walk_mad));
        if (trusted && z_seas < z_point) { z_point = z_seas; expected = mid; }
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
    double z_lvl = INFINITY;
    if (P.lvl_hl > 0) {
        z_lvl = lvl_surprise(st, value, tol);
        if (z_lvl < z_point) z_point = z_lvl;
    }
    if (P.env_hl > 0 && st->n > 1) {
        double d = value > st->ehi ? value - st->ehi : value < st->elo ? st->elo - value : 0;
        double z_env = d / scale_of(st->slow_mad, floor_) + P.env_w * z_point;
        if (z_env < z_point) z_point = z_env;
    }
    double r = value - expected;
    if (isnan(shown)) shown = expected;

    /* 2. level shift, when the series is a level with noise, not a walk */
    double df = value - st->fast;
    if (P.shift_clip > 0) df = clip(df, P.shift_clip * scale_of(st->slow_mad, floor_));
    double fast = st->fast + P.a_fast * df;
    double z_shift = 0;
    if (st->walk_mad >= st->slow_mad)
        z_shift = fabs(fast - st->slow) /
                  (1.25 * st->slow_mad * sqrt(P.a_fast / (2 - P.a_fast)) + floor_);

    if (P.lvl_shift > 0 && z_lvl < z_shift) z_shift = z_lvl;

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

    /* 5. calibration, then one alarm per event */
    double F = calibrate(st, log1p(S > 0 ? S : 0));
    if (P.cal > 0 && P.cal < 6) {
        double S2 = S > 0 ? S * S : 0;
        double raw = P.cal >= 4 ? F / (F + 1) : S2 / (S2 + P.al_k * P.al_k);
        double L = likelihood(st, raw);
        F = P.cal == 1 || P.cal == 4 ? L : P.cal == 2 || P.cal == 5 ? fmax(F, L) : sqrt(F * L);
    }
    /* a new extreme: beyond the range seen by more than sp_tol of it
     * (NAB's HTM detector adds the same "spatial anomaly") */
    if (P.sp_tol > 0 && st->n > 1) {
        double w = st->xhi - st->xlo, ex = value > st->xhi ? value - st->xhi : value < st->xlo ? st->xlo - value : 0;
        if (w > 0 && ex > P.sp_tol * w && P.sp_F > F) {
            F = P.sp_F;
            if (P.sp_free > 0) st->fired = 0;
            why = value > st->xhi ? DETECT_REASON_SPIKE : DETECT_REASON_DIP;
        }
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
        double band = 3 * scale_of(st->slow_mad, floor_);
        res.lo = shown - band;
        res.hi = shown + band;
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
    if (P.lvl_hl > 0) lvl_learn(st, value, tol);
    if (P.env_hl > 0) {
        double k = 1 - exp2(-1 / P.env_hl);
        if (st->n == 1) st->ehi = st->elo = value;
        st->ehi += k * (st->slow - st->ehi);
        st->elo += k * (st->slow - st->elo);
        if (value > st->ehi) st->ehi = value;
        if (value < st->elo) st->elo = value;
    }
    if (day != st->last_day) { st->days++; st->last_day = day; }
    st->fast = fast;
    learn_range(st, value, dt_s > 0 ? dt_s : 0);
    st->vfast = vfast;
    st->vslow += P.a_mad * (fabs(r) - st->vslow);
    st->dmad += P.a_mad * (fabs(r_walk) - st->dmad);
    if (value != st->last && st->run > 0) st->runmax = fmax(st->runmax * 0.999, st->run);
    st->run = run;
    double step = fabs(value - st->last);
    if (step > 0 && (st->res == 0 || step < st->res)) st->res = step;
    else st->res *= P.res_grow;
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
    { "cal", &P.cal, 0, 6 },
    { "al_d", &P.al_d, 0.1, 100 },
    { "res_k", &P.res_k, 0, 1000 },
    { "res_grow", &P.res_grow, 1, 2 },
    { "lvl_tol", &P.lvl_tol, 0, 1 },
    { "lvl_min", &P.lvl_min, 0, 1e6 },
    { "lvl_hl", &P.lvl_hl, 0, 1e7 },
    { "lvl_z", &P.lvl_z, 0, 1e3 },
    { "lvl_sdk", &P.lvl_sdk, 0, 100 },
    { "lvl_shift", &P.lvl_shift, 0, 1 },
    { "nb", &P.nb, 0, 100 },
    { "a_bin", &P.a_bin, 0, 1 },
    { "range_decay", &P.range_decay, 0.9, 1 },
    { "shift_clip", &P.shift_clip, 0, 1000 },
    { "sp_tol", &P.sp_tol, 0, 10 },
    { "sp_hl", &P.sp_hl, 1, 1e12 },
    { "sp_free", &P.sp_free, 0, 1 },
    { "sp_F", &P.sp_F, 0, 1000 },
    { "seas_up", &P.seas_up, 0, 1 },
    { "seas_trust", &P.seas_trust, 0, 100 },
    { "seas_ratio", &P.seas_ratio, 0, 10 },
    { "env_hl", &P.env_hl, 0, 1e6 },
    { "env_w", &P.env_w, 0, 1 },
    { "u_cap", &P.u_cap, 1, 1e9 },
    { "c0", &P.c0, 0.01, 1000 },
    { "h_decay", &P.h_decay, 0.9, 1 },
    { "rebound", &P.rebound, 1, 1000 },
    { "al_k", &P.al_k, 0.01, 100 },
    { "al_win", &P.al_win, 10, 1e6 },
    { "al_short", &P.al_short, 1, DETECT_SHORT },
    { "al_floor", &P.al_floor, 0, 1 },
    { "al_learn", &P.al_learn, 0, 1e6 },
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
