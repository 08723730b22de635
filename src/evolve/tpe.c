/* tpe.c: the model-based proposer, a Tree-structured Parzen Estimator over
 * a space's knobs. Order: the seeds (every knob at its first seed, then one
 * knob at a time through its other seeds), then max(5, d) uniform random
 * points, then TPE: the best of the n observations against the rest, split
 * with gamma = 0.25 as hyperopt (TPE's reference implementation) does it:
 * the best ceil(0.25 sqrt(n)), at least one (the best 25% of n kept too many
 * mediocre points in l(x) and stalled on an enum: docs/evolve.md has the
 * numbers); a Parzen estimator per knob for each (Gaussian kernels on the
 * unit interval of the knob's (log-)scaled range, Scott's bandwidth clipped
 * to [0.05, 0.5], plus a uniform prior; enum and bool: smoothed counts), 24
 * candidates drawn from l(x), the one with the largest l(x)/g(x) proposed;
 * every 5th TPE proposal is a uniform random restart. Deterministic for a
 * seed (splitmix64); never an exact duplicate of a point already proposed or
 * observed while the space has another one to offer. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evolve/evolve.h"

#define TPE_GAMMA 0.25
#define TPE_CANDIDATES 24
#define TPE_RESTART_EVERY 5
#define TPE_BW_MIN 0.05
#define TPE_BW_MAX 0.5
#define TPE_REDRAWS 64
#define TPE_CAT_PRIOR 1.0 /* enum/bool: counts start at one per choice */

/* One knob as the search sees it. */
typedef struct tpe_dim {
    bool categorical;  /* enum, bool: values are choice indexes */
    int ncat;
    bool integer;      /* int, size (bytes), duration (ms) */
    bool log;          /* search on log(value) */
    double min, max;   /* native */
    double tlo, thi;   /* the searched range (log when log) */
    double seeds[EVOLVE_MAX_SEEDS];
    int nseeds;        /* at least 1: the midpoint when the knob has none */
} tpe_dim;

/* Points proposed or observed (row-major, d per point). */
typedef struct tpe_points {
    double *x;
    double *y;         /* observations only */
    int n, cap;
} tpe_points;

struct evolve_tpe {
    int d;
    tpe_dim dim[EVOLVE_MAX_KNOBS];
    uint64_t rng;
    int n_startup;
    int n_seed_props;  /* 1 + sum over knobs of (nseeds - 1) */
    int seed_next;     /* the next seed proposal's index */
    int random_done;   /* startup random points proposed */
    int tpe_done;      /* proposals in the TPE phase */
    tpe_points obs;    /* observed (x, y) */
    tpe_points seen;   /* proposed (x) */
};

/* ---------- random numbers: splitmix64 ---------- */

static uint64_t tpe_next(evolve_tpe *t)
{
    uint64_t z = (t->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double tpe_unif(evolve_tpe *t) /* [0, 1) */
{
    return (double)(tpe_next(t) >> 11) * 0x1.0p-53;
}

static double tpe_gauss(evolve_tpe *t)
{
    double u1 = ((double)(tpe_next(t) >> 11) + 0.5) * 0x1.0p-53;
    return sqrt(-2 * log(u1)) * cos(2 * M_PI * tpe_unif(t));
}

static int tpe_below(evolve_tpe *t, int n) /* [0, n) */
{
    return n <= 1 ? 0 : (int)(tpe_next(t) % (uint64_t)n);
}

/* ---------- knobs: native value <-> unit interval ---------- */

static double tpe_clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* A native value as the knob can take it: rounded, within [min, max]. */
static double tpe_fix(const tpe_dim *k, double v)
{
    if (!isfinite(v))
        v = k->min;
    if (k->categorical)
        return tpe_clamp(round(v), 0, k->ncat - 1);
    v = tpe_clamp(v, k->min, k->max);
    if (k->integer) {
        v = round(v);
        if (v < k->min) v = ceil(k->min);
        if (v > k->max) v = floor(k->max);
    }
    return v;
}

static double tpe_from_unit(const tpe_dim *k, double u)
{
    if (k->categorical)
        return tpe_fix(k, floor(u * k->ncat));
    double tv = k->tlo + tpe_clamp(u, 0, 1) * (k->thi - k->tlo);
    return tpe_fix(k, k->log ? exp(tv) : tv);
}

static double tpe_to_unit(const tpe_dim *k, double v)
{
    if (k->thi <= k->tlo)
        return 0.5;
    double tv = k->log ? log(v) : v;
    return tpe_clamp((tv - k->tlo) / (k->thi - k->tlo), 0, 1);
}

/* The knob's first value when it has no (parsable) seed. */
static double tpe_midpoint(const tpe_dim *k)
{
    return k->categorical ? 0 : tpe_from_unit(k, 0.5);
}

static void tpe_dim_init(tpe_dim *k, const evolve_knob *kn)
{
    memset(k, 0, sizeof *k);
    k->categorical = kn->type == EVOLVE_KNOB_ENUM || kn->type == EVOLVE_KNOB_BOOL;
    k->ncat = kn->type == EVOLVE_KNOB_BOOL ? 2 : (kn->nchoices > 0 ? kn->nchoices : 1);
    k->integer = kn->type == EVOLVE_KNOB_INT || kn->type == EVOLVE_KNOB_SIZE || kn->type == EVOLVE_KNOB_DURATION;
    k->min = isfinite(kn->min) ? kn->min : 0;
    k->max = isfinite(kn->max) && kn->max >= k->min ? kn->max : k->min;
    k->log = !k->categorical && kn->log_scale && k->min > 0;
    k->tlo = k->log ? log(k->min) : k->min;
    k->thi = k->log ? log(k->max) : k->max;
    for (int i = 0; i < kn->nseeds && i < EVOLVE_MAX_SEEDS; i++) {
        double v;
        char err[128];
        if (evolve_knob_parse(kn, kn->seeds[i], &v, err, sizeof err) != 0)
            v = tpe_midpoint(k);
        k->seeds[k->nseeds++] = tpe_fix(k, v);
    }
    if (k->nseeds == 0)
        k->seeds[k->nseeds++] = tpe_midpoint(k);
}

/* ---------- the point lists ---------- */

static int tpe_points_add(tpe_points *p, int d, const double *x, double y, bool with_y)
{
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 32;
        double *nx = realloc(p->x, (size_t)cap * (size_t)d * sizeof *nx);
        if (!nx)
            return -ENOMEM;
        p->x = nx;
        if (with_y) {
            double *ny = realloc(p->y, (size_t)cap * sizeof *ny);
            if (!ny)
                return -ENOMEM;
            p->y = ny;
        }
        p->cap = cap;
    }
    memcpy(p->x + (size_t)p->n * (size_t)d, x, (size_t)d * sizeof *x);
    if (with_y)
        p->y[p->n] = y;
    p->n++;
    return 0;
}

static bool tpe_points_has(const tpe_points *p, int d, const double *x)
{
    for (int i = 0; i < p->n; i++) {
        const double *q = p->x + (size_t)i * (size_t)d;
        int k = 0;
        while (k < d && q[k] == x[k]) /* ==, not memcmp: -0.0 is 0 */
            k++;
        if (k == d)
            return true;
    }
    return false;
}

static bool tpe_is_new(const evolve_tpe *t, const double *x)
{
    return !tpe_points_has(&t->seen, t->d, x) && !tpe_points_has(&t->obs, t->d, x);
}

/* ---------- the public API ---------- */

int evolve_tpe_new(const evolve_space *s, uint64_t seed, evolve_tpe **out)
{
    if (!s || !out || s->nknobs < 1 || s->nknobs > EVOLVE_MAX_KNOBS)
        return -EINVAL;
    evolve_tpe *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->d = s->nknobs;
    t->rng = seed ^ 0x5851f42d4c957f2dULL;
    /* d random points (at least 5), not 2d: a 12-knob space spent a 30-minute
     * budget on its random start (bench/evolve-postgres) */
    t->n_startup = t->d > 5 ? t->d : 5;
    t->n_seed_props = 1;
    for (int i = 0; i < t->d; i++) {
        tpe_dim_init(&t->dim[i], &s->knobs[i]);
        t->n_seed_props += t->dim[i].nseeds - 1;
    }
    *out = t;
    return 0;
}

void evolve_tpe_free(evolve_tpe *t)
{
    if (!t)
        return;
    free(t->obs.x);
    free(t->obs.y);
    free(t->seen.x);
    free(t);
}

void evolve_tpe_observe(evolve_tpe *t, const double *x, double y)
{
    double v[EVOLVE_MAX_KNOBS];
    for (int i = 0; i < t->d; i++)
        v[i] = tpe_fix(&t->dim[i], x[i]);
    if (!isfinite(y)) /* a failed trial: the worst there is */
        y = -INFINITY;
    (void)tpe_points_add(&t->obs, t->d, v, y, true); /* no memory: the point is forgotten */
}

/* Seed proposal i: 0 is every knob at its first seed; then knob by knob,
 * that knob at each of its other seeds and the rest at their first. */
static void tpe_seed_point(const evolve_tpe *t, int i, double *x)
{
    for (int k = 0; k < t->d; k++)
        x[k] = t->dim[k].seeds[0];
    int left = i - 1;
    for (int k = 0; k < t->d && left >= 0; k++) {
        if (left < t->dim[k].nseeds - 1) {
            x[k] = t->dim[k].seeds[left + 1];
            return;
        }
        left -= t->dim[k].nseeds - 1;
    }
}

static void tpe_random_point(evolve_tpe *t, double *x)
{
    for (int k = 0; k < t->d; k++) {
        const tpe_dim *dm = &t->dim[k];
        x[k] = dm->categorical ? (double)tpe_below(t, dm->ncat) : tpe_from_unit(dm, tpe_unif(t));
    }
}

/* A new uniform random point (a duplicate only when TPE_REDRAWS draws found
 * nothing new: a small discrete space that is used up). */
static bool tpe_random_new(evolve_tpe *t, double *x)
{
    for (int r = 0; r < TPE_REDRAWS; r++) {
        tpe_random_point(t, x);
        if (tpe_is_new(t, x))
            return true;
    }
    return false;
}

/* ---------- the Parzen estimators ---------- */

/* One knob's density from points u[0..n) (unit interval or category). */
typedef struct tpe_parzen {
    const double *u;
    int n;
    double bw;
    double *mass;      /* each kernel's mass inside [0, 1] */
    int ncat;          /* categorical: probabilities in p */
    double p[EVOLVE_MAX_CHOICES > 2 ? EVOLVE_MAX_CHOICES : 2];
} tpe_parzen;

static double tpe_phi(double z)
{
    return 0.5 * erfc(-z / sqrt(2.0));
}

static void tpe_parzen_fit(tpe_parzen *pz, const tpe_dim *dm, const double *u, int n, double *mass)
{
    memset(pz, 0, sizeof *pz);
    pz->u = u;
    pz->n = n;
    if (dm->categorical) {
        pz->ncat = dm->ncat;
        double prior = TPE_CAT_PRIOR;
        for (int c = 0; c < dm->ncat; c++) pz->p[c] = prior;
        for (int i = 0; i < n; i++) pz->p[(int)u[i]] += 1.0;
        for (int c = 0; c < dm->ncat; c++) pz->p[c] /= (double)n + prior * dm->ncat;
        return;
    }
    double mean = 0, var = 0;
    for (int i = 0; i < n; i++) mean += u[i];
    mean /= n > 0 ? n : 1;
    for (int i = 0; i < n; i++) var += (u[i] - mean) * (u[i] - mean);
    double sd = n > 1 ? sqrt(var / (n - 1)) : 0;
    pz->bw = tpe_clamp(1.059 * sd * pow(n > 0 ? n : 1, -0.2), TPE_BW_MIN, TPE_BW_MAX); /* Scott */
    pz->mass = mass;
    for (int i = 0; i < n; i++)
        mass[i] = tpe_phi((1 - u[i]) / pz->bw) - tpe_phi((0 - u[i]) / pz->bw);
}

/* The density at v: n truncated Gaussians and the uniform prior, equally weighted. */
static double tpe_parzen_pdf(const tpe_parzen *pz, double v)
{
    if (pz->ncat)
        return pz->p[(int)v];
    double s = 1.0; /* the uniform prior on [0, 1] */
    for (int i = 0; i < pz->n; i++) {
        double z = (v - pz->u[i]) / pz->bw;
        s += exp(-0.5 * z * z) / (pz->bw * sqrt(2 * M_PI)) / pz->mass[i];
    }
    return s / (pz->n + 1);
}

static double tpe_parzen_draw(evolve_tpe *t, const tpe_parzen *pz)
{
    if (pz->ncat) {
        double r = tpe_unif(t), acc = 0;
        for (int c = 0; c < pz->ncat; c++) {
            acc += pz->p[c];
            if (r < acc)
                return c;
        }
        return pz->ncat - 1;
    }
    int comp = tpe_below(t, pz->n + 1);
    if (comp == pz->n)
        return tpe_unif(t);
    for (int r = 0; r < 32; r++) {
        double v = pz->u[comp] + pz->bw * tpe_gauss(t);
        if (v >= 0 && v <= 1)
            return v;
    }
    return tpe_clamp(pz->u[comp], 0, 1);
}

/* Observations sorted by y, best first (ties: the earlier first). */
typedef struct tpe_rank {
    double y;
    int i;
} tpe_rank;

static int tpe_cmp_y(const void *a, const void *b)
{
    const tpe_rank *x = a, *y = b;
    if (x->y != y->y) return x->y > y->y ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* A point's coordinate in the estimators' space: unit interval or category. */
static double tpe_coord(const tpe_dim *dm, double v)
{
    return dm->categorical ? v : tpe_to_unit(dm, v);
}

/* Buffers of one TPE step. */
typedef struct tpe_work {
    tpe_rank *order;
    double *ug, *ub, *mg, *mb; /* good/bad coordinates of one knob, kernel masses */
} tpe_work;

static void tpe_work_free(tpe_work *w)
{
    free(w->order);
    free(w->ug);
    free(w->ub);
    free(w->mg);
    free(w->mb);
}

/* One TPE proposal; false when it cannot make one (no memory, nothing new). */
static bool tpe_model_point(evolve_tpe *t, double *x, double *ratio)
{
    int n = t->obs.n, d = t->d;
    int ng = (int)ceil(TPE_GAMMA * sqrt((double)n)); /* hyperopt's split; see the top */
    if (ng < 1) ng = 1;
    if (ng > n - 1) ng = n - 1;
    int nbad = n - ng;
    tpe_work w = {0};
    w.order = malloc((size_t)n * sizeof *w.order);
    w.ug = malloc((size_t)n * sizeof *w.ug);
    w.ub = malloc((size_t)n * sizeof *w.ub);
    w.mg = malloc((size_t)n * sizeof *w.mg);
    w.mb = malloc((size_t)n * sizeof *w.mb);
    double *cand = malloc((size_t)TPE_CANDIDATES * (size_t)d * sizeof *cand);
    double score[TPE_CANDIDATES];
    if (!w.order || !w.ug || !w.ub || !w.mg || !w.mb || !cand) {
        tpe_work_free(&w);
        free(cand);
        return false;
    }
    for (int i = 0; i < n; i++) w.order[i] = (tpe_rank){t->obs.y[i], i};
    qsort(w.order, (size_t)n, sizeof *w.order, tpe_cmp_y);

    for (int c = 0; c < TPE_CANDIDATES; c++) score[c] = 0;
    for (int k = 0; k < d; k++) { /* knob by knob: the estimators are per knob */
        const tpe_dim *dm = &t->dim[k];
        for (int i = 0; i < n; i++) {
            double v = tpe_coord(dm, t->obs.x[(size_t)w.order[i].i * (size_t)d + (size_t)k]);
            if (i < ng) w.ug[i] = v;
            else w.ub[i - ng] = v;
        }
        tpe_parzen l, g;
        tpe_parzen_fit(&l, dm, w.ug, ng, w.mg);
        tpe_parzen_fit(&g, dm, w.ub, nbad, w.mb);
        for (int c = 0; c < TPE_CANDIDATES; c++) {
            double u = tpe_parzen_draw(t, &l);
            double v = dm->categorical ? u : tpe_from_unit(dm, u);
            cand[(size_t)c * (size_t)d + (size_t)k] = v;
            double cu = tpe_coord(dm, v); /* rounded, as it would be tried */
            score[c] += log(tpe_parzen_pdf(&l, cu)) - log(tpe_parzen_pdf(&g, cu));
        }
    }
    int best = -1;
    for (int c = 0; c < TPE_CANDIDATES; c++)
        if (tpe_is_new(t, cand + (size_t)c * (size_t)d) && (best < 0 || score[c] > score[best]))
            best = c;
    if (best >= 0) {
        memcpy(x, cand + (size_t)best * (size_t)d, (size_t)d * sizeof *x);
        *ratio = exp(score[best]);
    }
    tpe_work_free(&w);
    free(cand);
    return best >= 0;
}

void evolve_tpe_propose(evolve_tpe *t, double *x, char *why, size_t whylen)
{
    char tmp[64];
    if (!why || whylen == 0) {
        why = tmp;
        whylen = sizeof tmp;
    }
    /* the seeds, skipping any already tried */
    while (t->seed_next < t->n_seed_props) {
        int i = t->seed_next++;
        tpe_seed_point(t, i, x);
        if (tpe_is_new(t, x)) {
            snprintf(why, whylen, "seed %d/%d", i + 1, t->n_seed_props);
            goto done;
        }
    }
    if (t->random_done < t->n_startup || t->obs.n < 2) {
        bool fresh = tpe_random_new(t, x);
        if (t->random_done < t->n_startup) {
            t->random_done++;
            snprintf(why, whylen, "random %d/%d%s", t->random_done, t->n_startup, fresh ? "" : " (space used up)");
        } else {
            snprintf(why, whylen, "random (%d observations, TPE needs 2)%s", t->obs.n,
                     fresh ? "" : " (space used up)");
        }
        goto done;
    }
    t->tpe_done++;
    if (t->tpe_done % TPE_RESTART_EVERY == 0) {
        bool fresh = tpe_random_new(t, x);
        snprintf(why, whylen, "restart%s", fresh ? "" : " (space used up)");
        goto done;
    }
    double ratio = 0;
    for (int r = 0; r < 4; r++) { /* 24 candidates all seen before: draw again */
        if (tpe_model_point(t, x, &ratio)) {
            snprintf(why, whylen, "tpe l/g=%.3g", ratio);
            goto done;
        }
    }
    bool fresh = tpe_random_new(t, x);
    snprintf(why, whylen, "random (TPE drew only known points)%s", fresh ? "" : " (space used up)");
done:
    (void)tpe_points_add(&t->seen, t->d, x, 0, false);
}
