/* drift.c: the slow scale of the detector (multi-scale detection of slow
 * drifts and leaks).
 *
 * A memory leak of a few MB a minute on a 1 GB process, or a disk filling at
 * 1 % per 10 minutes, moves a 1-second series by a small fraction of its
 * noise per sample: no single sample is unusual, and the main ensemble's
 * levels follow it. At the scale of minutes it is plain: the minute means
 * rise minute after minute by more than they wander. So:
 *
 *  1. Aggregation. Samples are averaged into wall-clock minutes. The sampling
 *     interval is learned (EW mean of the gaps); a series sampled every 30 s
 *     or slower is left alone (the main ensemble already sees it at that
 *     scale) and costs a few operations per sample.
 *  2. A robust slow model on the minute means: the level is the last minute
 *     mean; the usual trend is an EWMA of the minute-to-minute differences
 *     (2-hour time constant, as the trend of Holt's linear method) and the
 *     minute-level noise the EW mean absolute deviation of the differences
 *     from that trend (30-minute time constant, 1.25 mad ~ one sigma), both
 *     learning from differences clipped at 3 noise units (Huber) and ten
 *     times slower while a run is half-way to a decision, so that the model
 *     of what is usual does not learn the drift it is testing. Differences
 *     of a wandering series are correlated, which makes runs of one sign
 *     common: the lag-1 autocorrelation rho of the standardised differences
 *     is learned too (4-hour time constant) and widens the scale by
 *     sqrt((1 + rho) / (1 - rho)) (the variance of a sum of AR(1) terms).
 *     A floor of 0.02 % of the level per minute is added to the scale so
 *     that a perfectly calm series does not call any creep a drift: drifts
 *     slower than about 1.2 % of the level an hour are not reported.
 *  3. The test: a two-sided CUSUM (Page, "Continuous inspection schemes",
 *     1954) of the standardised differences e, each clipped to +-3 so that a
 *     single step (one or two large differences) cannot make a drift:
 *     up = max(0, up + e - k), with k = 1 (a drift is a trend of at least
 *     one noise unit a minute beyond the usual one) and the decision at
 *     h = 8: a trend of 2 noise units a minute is seen in 8 minutes, a
 *     strong leak (e >= 3) in 4; for Gaussian differences the false-alarm
 *     run length is beyond 10^6 minutes (Siegmund's approximation). A
 *     decision also needs at least 4 of the run's minutes, and 75 % of
 *     them, to have moved by more than k each: a drift moves every minute,
 *     a few jumps in one direction do not. The CUSUM is held below 2h so
 *     that it ends within minutes after the drift does. Everything is in
 *     noise units learned from the series: no constant depends on its scale
 *     or on one data set.
 *  4. Output. The test decides once a minute, when a minute closes; over
 *     the first 30 minutes of a decided drift every sample gets z = 12,
 *     else z = 0. The same z on every sample of a drift is what makes it one
 *     alarm: the first gives about 0.84 through the ensemble's calibration,
 *     which then counts the rest as usual for this series and holds them
 *     back; a later drift, once the count has decayed, alarms again. After
 *     30 minutes the drift has been told, and a z held at 12 would hide the
 *     series' own spikes below it. The expected value is the
 *     minute mean before the drift began plus the usual trend since, and
 *     its band is +-3 sigma of a sample around it: the within-minute spread
 *     and the minute-level noise grown as a walk over the drift's minutes
 *     (sqrt(minutes + 1)); it is computed only while a drift is decided
 *     (detect_drift_band gives it at any time). since_ms is the start of the
 *     minute where the drift's run began.
 *  The model starts deciding after 10 minute differences (11 minutes). It
 *  knows nothing of the time of day: detect.c drops its z while the value
 *  is within the time-of-day envelope of earlier days, so a ramp that comes
 *  every morning is a drift the first day only.
 *
 * State: about 200 bytes of plain numbers; O(1) per sample.
 */
#include "detect/drift.h"

#include <math.h>
#include <string.h>

#define MINUTE_MS 60000
#define DRIFT_MAX_DT 30.0    /* slower sampling (seconds): left to the main ensemble */
#define DRIFT_A_DT 0.05      /* rate of the sampling-interval estimate */
#define DRIFT_A_TREND (1.0 / 120) /* per minute: the usual trend's time constant, 2 h */
#define DRIFT_A_MAD (1.0 / 30)    /* per minute: the noise's, 30 min */
#define DRIFT_A_RHO (1.0 / 240)   /* per minute: the autocorrelation's, 4 h */
#define DRIFT_WARM 10        /* differences before any decision */
#define DRIFT_HUBER 3.0      /* clip of the learning residuals, in noise units */
#define DRIFT_CLIP 3.0       /* clip of a difference in the CUSUM, in noise units */
#define DRIFT_MOVES 4        /* minutes of a run that must each move beyond the allowance */
#define DRIFT_STEADY 0.75    /* ...and this share of the run's minutes */
#define DRIFT_K 1.0          /* CUSUM allowance, noise units a minute */
#define DRIFT_H 8.0          /* CUSUM decision interval */
#define DRIFT_Z 12.0         /* z while a drift is decided... */
#define DRIFT_TELL 30        /* ...over its first minutes */
#define DRIFT_FLOOR 2e-4     /* scale floor, share of the level per minute */

void detect_drift_reset(detect_drift *d) { memset(d, 0, sizeof *d); }

static double clampd(double x, double lo, double hi) { return x < lo ? lo : x > hi ? hi : x; }

/* An EWMA rate that is a plain average over the first 1/a updates. */
static double rate_of(uint32_t n, double a) { return (double)n < 1 / a ? 1.0 / (double)n : a; }

/* The minute-to-minute noise: the robust scale widened by the
 * autocorrelation. */
static double noise(const detect_drift *d)
{
    double rho = d->var > 0 ? clampd(d->cov / d->var, 0, 0.8) : 0;
    return 1.25 * d->mad * sqrt((1 + rho) / (1 - rho));
}

/* One noise unit of a minute-to-minute difference: the noise plus the floor. */
static double unit(const detect_drift *d) { return noise(d) + DRIFT_FLOOR * fabs(d->m_prev) + 1e-12; }

/* Learns from the difference of two consecutive minute means and runs the
 * CUSUM; d->m_prev is still the earlier minute. */
static void learn_diff(detect_drift *d, double diff, int64_t minute)
{
    double u = unit(d);
    double e = (diff - d->trend) / u;
    if (d->nd >= DRIFT_WARM) {
        double ec = clampd(e, -DRIFT_CLIP, DRIFT_CLIP);
        double up = d->up + ec - DRIFT_K, dn = d->dn - ec - DRIFT_K;
        if (d->up <= 0 && up > 0) { d->since_up = minute * MINUTE_MS; d->base_up = d->m_prev; d->n_up = 0; }
        if (d->dn <= 0 && dn > 0) { d->since_dn = minute * MINUTE_MS; d->base_dn = d->m_prev; d->n_dn = 0; }
        if (ec > DRIFT_K) d->n_up++;
        if (-ec > DRIFT_K) d->n_dn++;
        d->up = clampd(up, 0, 2 * DRIFT_H);
        d->dn = clampd(dn, 0, 2 * DRIFT_H);
    }
    d->nd++;
    /* the usual trend and the noise: plain averages at first, then clipped
     * at DRIFT_HUBER noise units (the floor left out, or a calm series
     * would learn a drift as its noise), and ten times slower while a run
     * is half-way to a decision (the model of what is usual does not learn
     * the drift it is testing) */
    double slow = d->up >= DRIFT_H / 2 || d->dn >= DRIFT_H / 2 ? 0.1 : 1;
    double r = diff - d->trend, c = DRIFT_HUBER * (noise(d) + 1e-9 * fabs(d->m_prev) + 1e-12);
    if (d->nd > DRIFT_WARM / 2) r = clampd(r, -c, c);
    d->trend += slow * rate_of(d->nd, DRIFT_A_TREND) * r;
    d->mad += slow * rate_of(d->nd, DRIFT_A_MAD) * (fabs(r) - d->mad);
    double ec = clampd(e, -3, 3);
    if (d->nd > 1) {
        double a = slow * rate_of(d->nd - 1, DRIFT_A_RHO);
        d->cov += a * (ec * d->e_prev - d->cov);
        d->var += a * (ec * ec - d->var);
    }
    d->e_prev = ec;
}

/* The decision, once a minute: +1 or -1 while a rising or falling drift is
 * decided, else 0. */
static int32_t decide(const detect_drift *d)
{
    if (d->nd < DRIFT_WARM) return 0;
    int dir = d->up >= d->dn ? 1 : -1;
    double S = dir > 0 ? d->up : d->dn;
    uint32_t moved = dir > 0 ? d->n_up : d->n_dn;
    double run = (double)(d->prev_min * MINUTE_MS - (dir > 0 ? d->since_up : d->since_dn)) / MINUTE_MS + 1;
    return S >= DRIFT_H && moved >= DRIFT_MOVES && moved >= DRIFT_STEADY * run ? dir : 0;
}

/* Closes the minute being gathered. */
static void close_minute(detect_drift *d)
{
    double n = (double)d->cnt, mean = d->sum / n;
    double m = d->ref + mean;
    double var = d->ss / n - mean * mean;
    if (!isfinite(m)) { d->have_prev = 0; return; }
    if (isfinite(var)) d->within += rate_of(d->nd + 1, DRIFT_A_MAD) * (sqrt(var > 0 ? var : 0) - d->within);
    if (d->have_prev && d->minute == d->prev_min + 1 && isfinite(m - d->m_prev))
        learn_diff(d, m - d->m_prev, d->minute);
    else d->up = d->dn = 0; /* a gap (or the first minute): the runs start again */
    d->m_prev = m;
    d->prev_min = d->minute;
    d->have_prev = 1;
    int32_t dec = decide(d);
    d->n_decided = dec == 0 ? 0 : dec == d->decided ? d->n_decided + 1 : 1;
    d->decided = dec;
}

int detect_drift_band(const detect_drift *d, int64_t ts_ms, double *expected, double *lo, double *hi)
{
    *expected = *lo = *hi = NAN;
    if (d->nd < DRIFT_WARM || !d->have_prev) return -1;
    int dir = d->up >= d->dn ? (d->up > 0 ? 1 : 0) : -1;
    double base = d->m_prev, from_ms = (double)(d->prev_min * MINUTE_MS + MINUTE_MS / 2);
    if (dir != 0) {
        base = dir > 0 ? d->base_up : d->base_dn;
        from_ms = (double)(dir > 0 ? d->since_up : d->since_dn);
    }
    double t = ((double)ts_ms - from_ms) / MINUTE_MS;
    if (t < 0) t = 0;
    double u = unit(d);
    double half = 3 * sqrt(d->within * d->within + u * u * (t + 1));
    double e = base + d->trend * t;
    if (!(e - half <= e && e <= e + half)) return -1; /* overflow at absurd values */
    *expected = e;
    *lo = e - half;
    *hi = e + half;
    return 0;
}

/* While a drift is decided: its z, direction, start, and the band. */
static detect_drift_out output(const detect_drift *d, int64_t ts_ms)
{
    detect_drift_out o = { 0, 0, NAN, NAN, NAN, 0 };
    if (d->decided == 0 || detect_drift_band(d, ts_ms, &o.expected, &o.lo, &o.hi) != 0) return o;
    o.z = d->n_decided <= DRIFT_TELL ? DRIFT_Z : 0;
    o.dir = d->decided;
    o.since_ms = d->decided > 0 ? d->since_up : d->since_dn;
    return o;
}

detect_drift_out detect_drift_feed(detect_drift *d, int64_t ts_ms, double value)
{
    detect_drift_out none = { 0, 0, NAN, NAN, NAN, 0 };
    if (d->nts > 0) {
        if (ts_ms <= d->last_ts) return none; /* time went back (or repeated): not for the slow scale */
        double gap = clampd((double)(ts_ms - d->last_ts) / 1000.0, 0, 3600);
        d->dt += (d->nts == 1 ? 1.0 : DRIFT_A_DT) * (gap - d->dt);
    }
    d->last_ts = ts_ms;
    if (d->nts < UINT32_MAX) d->nts++;
    if (d->nts < 3 || d->dt >= DRIFT_MAX_DT) { /* slow series: the main ensemble's scale */
        d->cnt = 0;
        d->have_prev = 0;
        d->decided = 0;
        return none;
    }
    int64_t minute = ts_ms / MINUTE_MS;
    if (d->cnt > 0 && minute != d->minute) {
        close_minute(d);
        d->cnt = 0;
    }
    if (d->cnt == 0) { d->minute = minute; d->ref = value; d->sum = d->ss = 0; }
    double x = value - d->ref;
    d->sum += x;
    d->ss += x * x;
    d->cnt++;
    return output(d, ts_ms);
}
