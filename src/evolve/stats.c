/* stats.c: is a candidate better than the incumbent? One-sided Mann-Whitney U
 * (exact null distribution without ties up to 25+25 samples, else the normal
 * approximation with tie and continuity corrections), the Hodges-Lehmann
 * estimate of the relative gain on logarithms with its distribution-free
 * interval, Holm's step-down adjustment and the median.
 *
 * Memory: one buffer of nb*nc doubles (the pairwise differences; it first
 * holds the sorted samples for the medians and the tie counts, which fit
 * because nb*nc >= nb+nc when both are >= 2) and a fixed stack array for the
 * exact distribution. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evolve/evolve.h"

#define STATS_EXACT_MAX 25
#define STATS_DIST_LEN (STATS_EXACT_MAX * STATS_EXACT_MAX + STATS_EXACT_MAX + 1)

static int stats_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of sorted v[0..n). */
static double stats_median_sorted(const double *v, size_t n)
{
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double evolve_stats_median(const double *v, int n)
{
    if (n < 1)
        return NAN;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) { /* no memory: a selection without a copy would reorder v */
        return NAN;
    }
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, stats_cmp);
    double m = stats_median_sorted(c, (size_t)n);
    free(c);
    return m;
}

/* Holm: sort p ascending, adj_(r) = max over r' <= r of (n - r') p_(r'),
 * capped at 1; a p that is not finite counts as 1. */
typedef struct holm_item {
    double p;
    int i;
} holm_item;

static int holm_cmp(const void *a, const void *b)
{
    const holm_item *x = a, *y = b;
    return x->p < y->p ? -1 : x->p > y->p ? 1 : (x->i > y->i) - (x->i < y->i);
}

void evolve_stats_holm(const double *p, int n, double *adj)
{
    if (n < 1)
        return;
    holm_item *it = malloc((size_t)n * sizeof *it); /* also lets p be adj */
    if (!it) { /* no memory: the most conservative answer */
        for (int i = 0; i < n; i++) adj[i] = 1.0;
        return;
    }
    for (int i = 0; i < n; i++) {
        it[i].p = isfinite(p[i]) ? (p[i] < 0 ? 0 : p[i]) : 1.0;
        it[i].i = i;
    }
    qsort(it, (size_t)n, sizeof *it, holm_cmp);
    double run = 0;
    for (int r = 0; r < n; r++) {
        double a = (double)(n - r) * it[r].p;
        if (a > run) run = a;
        adj[it[r].i] = run > 1 ? 1 : run;
    }
    free(it);
}

/* The exact null distribution of U for sizes m, n (no ties): the counts
 * c[u] of the C(m+n, m) arrangements with U = u are the coefficients of the
 * Gaussian binomial [m+n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i),
 * built one factor at a time in c (integers, exact in int64). Returns the
 * total C(m+n, m). */
static int64_t stats_exact_dist(int m, int n, int64_t c[STATS_DIST_LEN])
{
    memset(c, 0, STATS_DIST_LEN * sizeof c[0]);
    c[0] = 1;
    int deg = 0;
    for (int i = 1; i <= m; i++) {
        int s = n + i;
        for (int u = deg + s; u >= s; u--) /* times (1 - q^s) */
            c[u] -= c[u - s];
        deg += s;
        for (int u = i; u <= deg; u++)     /* divided by (1 - q^i) */
            c[u] += c[u - i];
        deg -= i;
    }
    int64_t total = 0;
    for (int u = 0; u <= deg; u++)
        total += c[u];
    return total;
}

/* Standard normal quantile (Acklam's rational approximation, refined by one
 * Halley step against erfc; relative error ~1e-15). */
static double stats_norm_cdf(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

static double stats_norm_quantile(double p)
{
    static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                               1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                               6.680131188771972e+01,  -1.328068155288572e+01};
    static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                               -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
    static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                               3.754408661907416e+00};
    double x;
    if (p <= 0) return -INFINITY;
    if (p >= 1) return INFINITY;
    if (p < 0.02425) {
        double q = sqrt(-2 * log(p));
        x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else if (p > 1 - 0.02425) {
        double q = sqrt(-2 * log(1 - p));
        x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
            ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    } else {
        double q = p - 0.5, r = q * q;
        x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
            (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
    }
    double e = stats_norm_cdf(x) - p;
    double u = e * sqrt(2 * M_PI) * exp(x * x / 2);
    return x - u / (1 + x * u / 2);
}

/* Sum over tie groups of t^3 - t in sorted v; 0 when all values differ. */
static double stats_tie_sum(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && v[j] == v[i]) j++;
        double t = (double)(j - i);
        s += t * t * t - t;
        i = j;
    }
    return s;
}

static bool stats_valid(const double *v, int n)
{
    if (!v || n < 2)
        return false;
    for (int i = 0; i < n; i++)
        if (!isfinite(v[i]) || v[i] <= 0)
            return false;
    return true;
}

/* U of cand over base: pairs with cand > base, plus half the ties. */
static double stats_u(const double *base, int nb, const double *cand, int nc)
{
    double u = 0;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++)
            u += cand[j] > base[i] ? 1.0 : cand[j] == base[i] ? 0.5 : 0.0;
    return u;
}

/* p and the interval's k (the k-th smallest and k-th largest differences
 * bound it) from the exact distribution. */
static void stats_exact(int nb, int nc, double u, double conf, double *p, long *k)
{
    int64_t c[STATS_DIST_LEN];
    int64_t total = stats_exact_dist(nb, nc, c);
    int mn = nb * nc;
    int64_t upper = 0;
    for (int v = mn; v >= 0 && (double)v >= u - 1e-9; v--)
        upper += c[v];
    *p = (double)upper / (double)total;
    /* the largest k with P(U <= k-1) <= (1-conf)/2 */
    double half = (1 - conf) / 2;
    int64_t cum = 0;
    long kk = 0;
    while (kk <= mn && (double)(cum + c[kk]) / (double)total <= half)
        cum += c[kk++];
    *k = kk;
}

/* The same from the normal approximation (sigma with the tie correction). */
static void stats_normal(int nb, int nc, double u, double ties, double conf, double *p, long *k)
{
    double m = nb, n = nc, N = m + n;
    double var = m * n / 12.0 * ((N + 1) - ties / (N * (N - 1)));
    double mean = m * n / 2.0;
    if (var <= 0) { /* every value equal: no evidence either way */
        *p = 1.0;
        *k = 1;
        return;
    }
    double sd = sqrt(var);
    double z = (u - mean - 0.5) / sd;
    *p = 0.5 * erfc(z / sqrt(2.0)); /* the upper tail, without cancellation */
    double zq = stats_norm_quantile(1 - (1 - conf) / 2);
    *k = (long)floor(mean + 0.5 - zq * sd);
}

int evolve_stats_test(const double *base, int nb, const double *cand, int nc, double conf, evolve_test *out)
{
    if (!out || !stats_valid(base, nb) || !stats_valid(cand, nc) || !(conf > 0 && conf < 1))
        return -EINVAL;
    size_t mn = (size_t)nb * (size_t)nc;
    double *d = malloc(mn * sizeof *d);
    if (!d)
        return -ENOMEM;
    memset(out, 0, sizeof *out);
    out->n_base = nb;
    out->n_cand = nc;

    /* the medians and the ties, in the differences' buffer (nb + nc <= nb * nc) */
    memcpy(d, base, (size_t)nb * sizeof *d);
    qsort(d, (size_t)nb, sizeof *d, stats_cmp);
    out->median_base = stats_median_sorted(d, (size_t)nb);
    memcpy(d, cand, (size_t)nc * sizeof *d);
    qsort(d, (size_t)nc, sizeof *d, stats_cmp);
    out->median_cand = stats_median_sorted(d, (size_t)nc);
    memcpy(d, base, (size_t)nb * sizeof *d);
    memcpy(d + nb, cand, (size_t)nc * sizeof *d);
    qsort(d, (size_t)(nb + nc), sizeof *d, stats_cmp);
    double ties = stats_tie_sum(d, (size_t)(nb + nc));

    out->u = stats_u(base, nb, cand, nc);
    long k;
    if (ties == 0 && nb <= STATS_EXACT_MAX && nc <= STATS_EXACT_MAX)
        stats_exact(nb, nc, out->u, conf, &out->p, &k);
    else
        stats_normal(nb, nc, out->u, ties, conf, &out->p, &k);
    if (out->p > 1) out->p = 1;
    if (out->p < 0) out->p = 0;

    /* Hodges-Lehmann on logarithms and its interval */
    size_t w = 0;
    for (int i = 0; i < nb; i++)
        for (int j = 0; j < nc; j++)
            d[w++] = log(cand[j]) - log(base[i]);
    qsort(d, mn, sizeof *d, stats_cmp);
    if (k < 1) k = 1;
    if ((size_t)k > (mn + 1) / 2) k = (long)((mn + 1) / 2);
    out->gain = expm1(stats_median_sorted(d, mn));
    out->lo = expm1(d[k - 1]);
    out->hi = expm1(d[mn - (size_t)k]);
    free(d);
    return 0;
}
