/* drift.c: bench/detect-drift, the slow scale of the detector (drift.c in
 * src/detect) measured through detect_feed on synthetic 1-second series.
 *
 * 1. False alarms: healthy-looking series that must not be called a drift
 *    (Gaussian noise, random walks, AR(1) processes, a slow wander, random
 *    level steps, bursts, cycles, daily patterns, a business-hours ramp),
 *    each seeded SEEDS times for SECONDS samples at 1 s. Printed per kind:
 *    alarm episodes (samples >= DETECT_THRESHOLD_DEFAULT, an episode ending
 *    after 30 s without one, as ippocd's keep_firing_for) per series-day,
 *    all reasons and drift alone.
 * 2. Delay: a leak of L MB/min on a 1 GB series with 2 MB of noise, from
 *    2 h on, SEEDS seeds; printed: how many were reported as drift within
 *    an hour and the mean delay.
 *
 * Usage: detect-drift [--seconds N] [--seeds N]   (defaults 259200: 3 days, 10)
 */
#include "detect/detect.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0_MS 1700000000000LL
#define KEEP_MS 30000 /* an episode ends after this long without an alarm */

static uint64_t rng;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
static double gauss(void) { return sqrt(-2 * log(urand())) * cos(2 * M_PI * urand()); }

/* ---- the healthy series: value of kind k at second i (x: the kind's memory) ---- */

static double x;

static double s_noise(int i) { (void)i; return 50 + 2 * gauss(); }
static double s_walk(int i) { if (i == 0) x = 1000; x += gauss(); return x; }
static double s_ar999(int i) { if (i == 0) x = 0; x = 0.999 * x + gauss(); return 100 + x; }
static double s_ar99(int i) { if (i == 0) x = 0; x = 0.99 * x + gauss(); return 100 + x; }
static double s_wander(int i) { if (i == 0) x = 0; x = 0.9999 * x + 0.3 * gauss(); return 100 + x + gauss(); }
static double s_steps(int i)
{
    if (i == 0) x = 50;
    if (urand() < 0.001) x = 40 + 20 * urand();
    return x + 2 * gauss();
}
static double s_stepwalk(int i)
{
    if (i == 0) x = 50;
    if (urand() < 0.003) x += 5 * gauss();
    return x + gauss();
}
static double s_bursts(int i)
{
    (void)i;
    double v = 20 + 3 * gauss();
    return urand() < 0.01 ? v + 50 * urand() : v;
}
static double s_cycle(int i) { return 50 + 10 * sin(2 * M_PI * i / 1800.0) + gauss(); }
static double s_intwalk(int i)
{
    if (i == 0) x = 0;
    if (urand() < 0.5) x += urand() < 0.5 ? 1 : -1;
    return 1e6 + x;
}
static double hour_of(int i) { return fmod((double)(T0_MS / 1000 + i) / 3600, 24); }
static double s_daily(int i) { return 50 + 20 * sin(2 * M_PI * hour_of(i) / 24) + 0.2 * gauss(); }
static double s_business(int i)
{
    double h = hour_of(i);
    double b = h > 8 && h < 18 ? 30 * (1 - exp(-(h - 8) * 2)) * exp(-(h > 17 ? (h - 17) * 5 : 0)) : 0;
    return 20 + b + gauss();
}

static const struct { const char *name; double (*f)(int); } kinds[] = {
    { "gaussian noise", s_noise },
    { "random walk", s_walk },
    { "AR(1) 0.999", s_ar999 },
    { "AR(1) 0.99", s_ar99 },
    { "slow wander + noise", s_wander },
    { "random level steps", s_steps },
    { "compound step walk", s_stepwalk },
    { "bursts", s_bursts },
    { "30-minute cycle", s_cycle },
    { "integer walk", s_intwalk },
    { "smooth daily cycle", s_daily },
    { "business-hours ramp", s_business },
};
#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

/* Alarm episodes over one series: all reasons, drift alone. */
static void episodes(double (*f)(int), int n, int *all, int *drift)
{
    detect_state *st = detect_new();
    if (!st) { fprintf(stderr, "detect-drift: out of memory\n"); exit(1); }
    int64_t last_all = -1, last_drift = -1;
    for (int i = 0; i < n; i++) {
        int64_t t = T0_MS + (int64_t)i * 1000;
        detect_result r = detect_feed(st, t, f(i));
        if (i < 600 || r.score < DETECT_THRESHOLD_DEFAULT) continue; /* 10-minute warm-up */
        if (last_all < 0 || t - last_all > KEEP_MS) (*all)++;
        last_all = t;
        if (r.reason != DETECT_REASON_DRIFT) continue;
        if (last_drift < 0 || t - last_drift > KEEP_MS) (*drift)++;
        last_drift = t;
    }
    detect_free(st);
}

/* Seconds from the start of a leak of mb MB/min to its first drift alarm,
 * -1 if none within the hour. */
static int leak_delay(double mb)
{
    detect_state *st = detect_new();
    if (!st) { fprintf(stderr, "detect-drift: out of memory\n"); exit(1); }
    int at = 7200, found = -1;
    for (int i = 0; i < at + 3600 && found < 0; i++) {
        double v = 1e9 + 2e6 * gauss() + (i >= at ? (i - at) * mb * 1e6 / 60 : 0);
        detect_result r = detect_feed(st, T0_MS + (int64_t)i * 1000, v);
        if (i >= at && r.score >= DETECT_THRESHOLD_DEFAULT && r.reason == DETECT_REASON_DRIFT) found = i - at;
    }
    detect_free(st);
    return found;
}

int main(int argc, char **argv)
{
    int n = 3 * 86400, seeds = 10;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) n = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) seeds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: detect-drift [--seconds N] [--seeds N]\n");
            return 2;
        }
    }
    if (n < 1000 || seeds < 1) {
        fprintf(stderr, "detect-drift: --seconds must be >= 1000 and --seeds >= 1\n");
        return 2;
    }
    double days = (double)seeds * (n - 600) / 86400;
    printf("detect-drift: detect_feed at 1 s, %d series of %d s per kind (%.1f series-days), threshold %.2f, "
           "episodes end after %d s without an alarm, 10-minute warm-up\n\n",
           seeds, n, days, DETECT_THRESHOLD_DEFAULT, KEEP_MS / 1000);
    printf("| healthy series | episodes per series-day, all reasons | of which drift |\n|---|---:|---:|\n");
    for (int k = 0; k < NKINDS; k++) {
        int all = 0, drift = 0;
        for (int s = 1; s <= seeds; s++) {
            rng = (uint64_t)s * 7919 + (uint64_t)k;
            episodes(kinds[k].f, n, &all, &drift);
        }
        printf("| %s | %.2f | %.2f |\n", kinds[k].name, all / days, drift / days);
    }
    printf("\n| leak on 1 GB, 2 MB noise at 1 s | reported as drift within 1 h | mean delay |\n|---|---:|---:|\n");
    const double mbs[] = { 1, 2, 4, 8, 16 };
    for (int k = 0; k < (int)(sizeof mbs / sizeof mbs[0]); k++) {
        int hit = 0;
        double sum = 0;
        for (int s = 1; s <= seeds; s++) {
            rng = (uint64_t)s;
            int d = leak_delay(mbs[k]);
            if (d >= 0) { hit++; sum += d; }
        }
        if (hit) printf("| %g MB/min | %d/%d | %.1f min |\n", mbs[k], hit, seeds, sum / hit / 60);
        else printf("| %g MB/min | 0/%d | - |\n", mbs[k], seeds);
    }
    return 0;
}
