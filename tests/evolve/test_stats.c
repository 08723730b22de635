/* test_stats.c: evolve's statistics. Exact Mann-Whitney p against known
 * values and scipy's; the normal approximation with ties and for large
 * samples against scipy; the Hodges-Lehmann gain and interval; synthetic
 * fitness with known lognormal distributions (a real +15% gain is accepted,
 * noise is not); Holm against a hand example; bad input refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "evolve/evolve.h"

#define ACCEPT_P 0.05
#define ACCEPT_MIN_GAIN 0.02

static void close_to(double got, double want, double rel)
{
    if (fabs(got - want) > rel * fabs(want)) {
        print_error("got %.17g, want %.17g (rel %.2g)\n", got, want, rel);
        fail();
    }
}

static evolve_test mw_test(const double *b, int nb, const double *c, int nc, double conf)
{
    evolve_test t;
    assert_int_equal(evolve_stats_test(b, nb, c, nc, conf, &t), 0);
    return t;
}

/* 5 vs 5 completely separated: only one of C(10,5) = 252 arrangements is as
 * extreme, p = 1/252; the other way round every arrangement is, p = 1. */
static void test_exact_separated(void **st)
{
    (void)st;
    double b[] = {1, 2, 3, 4, 5}, c[] = {6, 7, 8, 9, 10};
    evolve_test t = mw_test(b, 5, c, 5, 0.95);
    assert_true(t.u == 25);
    close_to(t.p, 1.0 / 252, 1e-12);
    t = mw_test(c, 5, b, 5, 0.95);
    assert_true(t.u == 0);
    close_to(t.p, 1.0, 1e-12);
    assert_true(t.gain < 0);
    assert_int_equal(t.n_base, 5);
    assert_int_equal(t.n_cand, 5);
    close_to(t.median_base, 8, 1e-12);
    close_to(t.median_cand, 3, 1e-12);
}

/* Reference values from scipy 1.10.1 (python3-scipy), computed once with
 *   scipy.stats.mannwhitneyu(cand, base, alternative='greater', method=M)
 * where M is 'exact' for the untied small samples and 'asymptotic' (tie
 * and continuity corrections) for the others. */
static void test_scipy_exact(void **st)
{
    (void)st;
    double b1[] = {10.2, 11.5, 9.8, 12.1, 10.9, 11.0}, c1[] = {11.8, 12.4, 10.5, 13.0, 12.2, 11.1, 12.9};
    evolve_test t = mw_test(b1, 6, c1, 7, 0.95);
    assert_true(t.u == 35);
    close_to(t.p, 0.02564102564102564, 1e-12);
    double b2[] = {100, 104, 98, 107, 101, 99, 103, 110}, c2[] = {105, 108, 102, 111, 97, 109, 106, 112};
    t = mw_test(b2, 8, c2, 8, 0.95);
    assert_true(t.u == 46);
    close_to(t.p, 0.080264180264180252, 1e-12);
    /* HL with numpy: median of the 64 log differences, and the 14th
     * smallest / largest (P(U <= 13) = 0.0249 <= 0.025 < P(U <= 14)) */
    close_to(t.gain, 0.04020996683654285, 1e-9);
    close_to(t.lo, -0.018181818181817425, 1e-9);
    close_to(t.hi, 0.0873786407766985, 1e-9);
}

static void test_scipy_normal(void **st)
{
    (void)st;
    double b[] = {1, 2, 2, 3, 3, 3, 4}, c[] = {2, 3, 3, 4, 4, 5, 5, 6}; /* ties: the normal approximation */
    evolve_test t = mw_test(b, 7, c, 8, 0.95);
    assert_true(t.u == 45);
    close_to(t.p, 0.02494221848996294, 1e-9);
    /* 30 vs 30 (over the exact limit of 25) */
    double bb[] = {100.012, 103.033, 97.296, 91.479, 95.555, 90.559, 100.603, 114.342, 95.197, 93.984,
                   105.02,  103.633, 101.06, 91.115, 99.708, 107.2,  87.422,  95.527,  82.686, 87.901,
                   83.179,  97.677,  88.096, 102.75, 101.58, 98.148, 77.75,   94.756,  99.516, 101.14};
    double cc[] = {88.353,  91.974,  91.749,  101.495, 83.422,  103.16,  95.531,  114.954, 115.683, 120.831,
                   113.513, 104.571, 114.566, 122.207, 98.476,  111.743, 104.679, 121.41,  96.687,  102.004,
                   109.006, 107.876, 89.231,  108.982, 103.889, 102.637, 103.507, 107.454, 87.666,  122.783};
    t = mw_test(bb, 30, cc, 30, 0.95);
    assert_true(t.u == 669);
    close_to(t.p, 0.00061809228160450555, 1e-9);
    assert_true(t.lo < t.gain && t.gain < t.hi);
    /* all equal: no evidence, p = 1, no gain */
    double e[] = {5, 5, 5};
    t = mw_test(e, 3, e, 3, 0.95);
    close_to(t.p, 1.0, 1e-12);
    assert_true(t.gain == 0 && t.lo == 0 && t.hi == 0);
}

/* The same samples scaled by 1.2: every log difference is log 1.2 plus one
 * of a set symmetric around 0, so the HL gain is +20% exactly. */
static void test_hl_scaled(void **st)
{
    (void)st;
    double b[] = {101, 97, 110, 93, 104, 99, 107, 95, 102, 100, 96, 108};
    double c[12];
    for (int i = 0; i < 12; i++) c[i] = 1.2 * b[i];
    evolve_test t = mw_test(b, 12, c, 12, 0.95);
    close_to(t.gain, 0.2, 1e-9);
    assert_true(t.lo < 0.2 && t.hi > 0.2);
    assert_true(t.lo > 0.02); /* the spread is ~5%, the shift 20% */
    assert_true(t.p < 0.001);
    close_to(t.median_cand / t.median_base, 1.2, 1e-9);
    /* a narrower level gives a narrower interval */
    evolve_test t80 = mw_test(b, 12, c, 12, 0.80);
    assert_true(t80.lo >= t.lo && t80.hi <= t.hi);
    assert_true(t80.lo > t.lo || t80.hi < t.hi);
}

/* Seeded samples: splitmix64 and Box-Muller (the test's own, fixed). */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_normal(uint64_t *s)
{
    double u1 = ((double)(rng_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(rng_next(s) >> 11) * 0x1.0p-53;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

/* How many of 100 seeded trials accept: base ~ 100 * lognormal(0, sigma),
 * cand ~ 100 * (1 + shift) * lognormal(0, sigma), n each; accepted when
 * p < 0.05 and the 95% interval's lower bound is above +2%. */
static int accepted_of_100(double shift, double sigma, int n, uint64_t seed)
{
    int acc = 0;
    for (int trial = 0; trial < 100; trial++) {
        double b[32], c[32];
        for (int i = 0; i < n; i++) {
            b[i] = 100 * exp(sigma * rng_normal(&seed));
            c[i] = 100 * (1 + shift) * exp(sigma * rng_normal(&seed));
        }
        evolve_test t = mw_test(b, n, c, n, 0.95);
        if (t.p < ACCEPT_P && t.lo > ACCEPT_MIN_GAIN)
            acc++;
    }
    return acc;
}

/* A real +15% gain with 10% lognormal noise. At n = 10 the rule's power is
 * only ~0.7 (a simulation of 2000 trials with scipy gave 68%: the 95%
 * interval's lower bound must clear +2%), so 90 of 100 needs n = 20 (95%
 * simulated); with 5% noise n = 10 is enough (99.8% simulated). */
static void test_accepts_real_gain(void **st)
{
    (void)st;
    int a20 = accepted_of_100(0.15, 0.10, 20, 1);
    int a10 = accepted_of_100(0.15, 0.10, 10, 2);
    int a10q = accepted_of_100(0.15, 0.05, 10, 3);
    print_message("accepted of 100: +15%% sigma 0.10 n=20: %d, n=10: %d; sigma 0.05 n=10: %d\n", a20, a10, a10q);
    assert_true(a20 >= 90);
    assert_true(a10 >= 55 && a10 <= 85);
    assert_true(a10q >= 90);
}

/* Noise only (the same distribution): at most 5 of 100 accepted. */
static void test_rejects_noise(void **st)
{
    (void)st;
    int n10 = accepted_of_100(0, 0.10, 10, 4);
    int n20 = accepted_of_100(0, 0.10, 20, 5);
    int n16 = accepted_of_100(0, 0.16, 10, 6);
    print_message("noise accepted of 100: sigma 0.10 n=10: %d, n=20: %d; sigma 0.16 n=10: %d\n", n10, n20, n16);
    assert_true(n10 <= 5);
    assert_true(n20 <= 5);
    assert_true(n16 <= 5);
}

/* Holm by hand: p = (0.01, 0.04, 0.03, 0.005), sorted 0.005, 0.01, 0.03,
 * 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.02, 0.03,
 * 0.06, 0.06. */
static void test_holm(void **st)
{
    (void)st;
    double p[] = {0.01, 0.04, 0.03, 0.005}, adj[4];
    evolve_stats_holm(p, 4, adj);
    close_to(adj[0], 0.03, 1e-12);
    close_to(adj[1], 0.06, 1e-12);
    close_to(adj[2], 0.06, 1e-12);
    close_to(adj[3], 0.02, 1e-12);
    /* capped at 1, in place */
    double q[] = {0.5, 0.4, 0.3};
    evolve_stats_holm(q, 3, q);
    close_to(q[0], 0.9, 1e-12);
    close_to(q[1], 0.9, 1e-12);
    close_to(q[2], 0.9, 1e-12);
    double r[] = {0.6, 0.7};
    evolve_stats_holm(r, 2, r);
    assert_true(r[0] == 1 && r[1] == 1);
    double one[] = {0.02};
    evolve_stats_holm(one, 1, adj);
    close_to(adj[0], 0.02, 1e-12);
}

static void test_median(void **st)
{
    (void)st;
    double v[] = {5, 1, 4, 2, 3};
    close_to(evolve_stats_median(v, 5), 3, 1e-12);
    close_to(evolve_stats_median(v, 4), 3, 1e-12); /* 5 1 4 2 -> (2 + 4) / 2 */
    assert_true(v[0] == 5 && v[1] == 1); /* not reordered */
    close_to(evolve_stats_median(v, 1), 5, 1e-12);
}

static void test_bad_input(void **st)
{
    (void)st;
    double ok[] = {1, 2, 3}, zero[] = {1, 0, 3}, neg[] = {1, -2, 3}, inf[] = {1, INFINITY, 3}, nan_[] = {1, NAN, 3};
    evolve_test t;
    assert_int_equal(evolve_stats_test(ok, 1, ok, 3, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(ok, 3, ok, 1, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(ok, 3, zero, 3, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(neg, 3, ok, 3, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(ok, 3, inf, 3, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(nan_, 3, ok, 3, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(ok, 3, ok, 3, 1.0, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(ok, 3, ok, 3, 0, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(NULL, 3, ok, 3, 0.95, &t), -EINVAL);
    assert_int_equal(evolve_stats_test(ok, 3, ok, 3, 0.95, NULL), -EINVAL);
    /* 2 vs 2 is the smallest allowed: the interval is the whole range */
    double b[] = {1, 2}, c[] = {3, 4};
    t = mw_test(b, 2, c, 2, 0.95);
    close_to(t.p, 1.0 / 6, 1e-12);
    close_to(t.lo, 0.5, 1e-12);
    close_to(t.hi, 3.0, 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_separated),
        cmocka_unit_test(test_scipy_exact),
        cmocka_unit_test(test_scipy_normal),
        cmocka_unit_test(test_hl_scaled),
        cmocka_unit_test(test_accepts_real_gain),
        cmocka_unit_test(test_rejects_noise),
        cmocka_unit_test(test_holm),
        cmocka_unit_test(test_median),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
