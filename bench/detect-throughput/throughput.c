/* throughput.c: bench/detect-throughput, what IPPOC's anomaly detector
 * (src/detect, the whole ensemble behind detect_feed) costs per point and per
 * metric.
 *
 * It generates realistic series for many metrics (percentages with daily and
 * hourly seasonality and noise, big byte gauges that wander, small integer
 * counts, flat series, bursty rates, all with rare level steps and spikes),
 * and feeds them:
 *   - interleaved: N detectors (10,000 by default), one point each per round,
 *     every round 1 s later, the way ippocd feeds them on each tick: each
 *     detector's state is cold in the cache when its turn comes;
 *   - hot: one detector fed point after point (its state stays in L1), the
 *     best case.
 * Both after a warm-up that is not timed, in several chunks whose median is
 * reported. Time is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so other
 * load on the machine does not count; the process is pinned to one CPU. The
 * cost of generating the series is measured alone and subtracted.
 *
 * It prints points per second on one core, ns per point, the bytes of state
 * per metric (detect_state_size(), the malloc block, and resident memory per
 * metric measured from /proc/self/statm), what N metrics at 1 s cost as a
 * share of one core, and with --kv the same figures as key=value lines for
 * bench/detect-throughput/run.sh.
 */
#include "detect/detect.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- series generation --------------------------------------------------------- */

enum { KIND_PERCENT, KIND_GAUGE, KIND_COUNT, KIND_FLAT, KIND_BURSTY, KIND_N };
static const char *const kind_names[KIND_N] = {"percent", "gauge", "count", "flat", "bursty"};

#define SINE_N 4096
static double sine_table[SINE_N];

typedef struct gen {
    uint64_t rng;
    int kind;
    double base, amp, noise, level, walk;
    uint32_t period;      /* seasonal period in ticks */
    uint32_t phase;
} gen;

static uint64_t gen_u64(gen *g)
{
    /* xorshift64* */
    uint64_t x = g->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double gen_unif(gen *g)
{
    return (double)(gen_u64(g) >> 11) * 0x1.0p-53;
}

/* About N(0, 1): Irwin-Hall of four uniforms, cheap. */
static double gen_normal(gen *g)
{
    uint64_t x = gen_u64(g);
    double s = (double)(x & 0xffff) + (double)((x >> 16) & 0xffff) + (double)((x >> 32) & 0xffff) +
               (double)(x >> 48);
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}

static void gen_init(gen *g, unsigned m, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->rng = (seed ^ (0x9E3779B97F4A7C15ULL * (m + 1))) | 1;
    for (int i = 0; i < 4; i++)
        gen_u64(g);
    g->kind = (int)(m % KIND_N);
    /* periods: a day for most, an hour or 5 minutes (cron-like) for some */
    uint32_t periods[4] = {86400, 86400, 3600, 300};
    g->period = periods[gen_u64(g) % 4];
    g->phase = (uint32_t)(gen_u64(g) % g->period);
    double u = gen_unif(g);
    switch (g->kind) {
    case KIND_PERCENT: g->base = 10 + 50 * u; g->amp = 2 + 15 * gen_unif(g); g->noise = 0.5 + 3 * gen_unif(g); break;
    case KIND_GAUGE: g->base = 1e8 * (1 + 100 * u); g->amp = g->base * 0.05; g->noise = g->base * 1e-4; break;
    case KIND_COUNT: g->base = 1 + 10 * u; g->amp = g->base * 0.3; g->noise = 1; break;
    case KIND_FLAT: g->base = (double)(1u << (20 + gen_u64(g) % 12)); break;
    default: g->base = 1e4 + 1e6 * u; g->amp = 0; g->noise = 0; break;
    }
}

/* The value of metric g at tick t (1 tick = 1 s). */
static double gen_next(gen *g, uint64_t t)
{
    double r = gen_unif(g);
    if (r < 1e-5) /* a rare level step */
        g->level += (gen_unif(g) - 0.4) * (g->base * 0.5 + 1);
    double v;
    uint32_t idx = (uint32_t)(((t + g->phase) % g->period) * (uint64_t)SINE_N / g->period);
    double season = sine_table[idx];
    switch (g->kind) {
    case KIND_PERCENT:
        v = g->base + g->level + g->amp * season + g->noise * gen_normal(g);
        v = v < 0 ? 0 : v > 100 ? 100 : v;
        break;
    case KIND_GAUGE:
        g->walk += g->noise * gen_normal(g);
        v = g->base + g->level + g->amp * season + g->walk;
        break;
    case KIND_COUNT:
        v = floor(g->base + g->level + g->amp * season + 1.5 * gen_normal(g) + 0.5);
        v = v < 0 ? 0 : v;
        break;
    case KIND_FLAT:
        v = g->base + g->level;
        break;
    default: /* mostly idle, bursts now and then */
        v = gen_unif(g) < 0.05 ? g->base * -log(gen_unif(g) + 1e-12) : 0;
        break;
    }
    if (r > 1 - 1e-4) /* a spike */
        v += (g->kind == KIND_FLAT ? g->base : fabs(v) + g->amp + g->noise * 10 + 1) * (2 + 8 * gen_unif(g));
    return v;
}

/* ---- timing ------------------------------------------------------------------------ */

static double now_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double now_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res < 0 ? -1 : res * sysconf(_SC_PAGESIZE);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* What the scores looked like (and a sink the compiler cannot drop). */
typedef struct sink {
    uint64_t n, anomalous;
    double sum;
} sink;

static void sink_add(sink *s, detect_result r)
{
    s->n++;
    s->sum += r.score;
    s->anomalous += r.score >= DETECT_THRESHOLD_DEFAULT;
}

/* ---- the runs ----------------------------------------------------------------------- */

typedef struct opts {
    unsigned metrics, rounds, warmup, warmup_step, chunks;
    uint64_t hot, hot_warmup;
    uint64_t seed;
    int64_t t0_ms;
    bool kv, pin;
} opts;

typedef struct result {
    double ns_point;      /* CPU ns per point, generation subtracted (median chunk) */
    double ns_point_gross;
    double ns_min, ns_max;
    double wall_ns_point;
    uint64_t points;
} result;

/* Interleaved: every detector once per round, timed in chunks (the warm-up
 * is done by the caller). Returns the median chunk. */
static result run_interleaved(const opts *o, detect_state **st, gen *g, uint64_t *tick, sink *sk,
                              double gen_ns)
{
    double *per = calloc(o->chunks, sizeof *per);
    result res = {0};
    unsigned per_chunk = o->rounds / o->chunks;
    double wall_total = 0;
    for (unsigned c = 0; c < o->chunks; c++) {
        double w0 = now_wall_ns(), c0 = now_cpu_ns();
        for (unsigned r = 0; r < per_chunk; r++, (*tick)++) {
            int64_t ts = o->t0_ms + (int64_t)*tick * 1000;
            for (unsigned m = 0; m < o->metrics; m++)
                sink_add(sk, detect_feed(st[m], ts, gen_next(&g[m], *tick)));
        }
        double c1 = now_cpu_ns(), w1 = now_wall_ns();
        double pts = (double)per_chunk * o->metrics;
        per[c] = (c1 - c0) / pts;
        wall_total += w1 - w0;
        res.points += (uint64_t)pts;
    }
    res.wall_ns_point = wall_total / (double)res.points;
    res.ns_point_gross = median(per, (int)o->chunks);
    res.ns_min = per[0] - gen_ns;
    res.ns_max = per[o->chunks - 1] - gen_ns;
    res.ns_point = res.ns_point_gross - gen_ns;
    free(per);
    return res;
}

/* The same loop without the detector: what generating the series costs. */
static double run_gen_only(const opts *o, gen *g, uint64_t tick)
{
    volatile double vsink = 0;
    unsigned rounds = o->rounds / o->chunks;
    if (rounds < 10)
        rounds = 10;
    double c0 = now_cpu_ns();
    double acc = 0;
    for (unsigned r = 0; r < rounds; r++, tick++)
        for (unsigned m = 0; m < o->metrics; m++)
            acc += gen_next(&g[m], tick);
    double c1 = now_cpu_ns();
    vsink = acc;
    (void)vsink;
    return (c1 - c0) / ((double)rounds * o->metrics);
}

/* One detector, point after point. */
static result run_hot(const opts *o, sink *sk)
{
    detect_state *st = detect_new();
    gen g;
    gen_init(&g, 0, o->seed + 7);
    result res = {0};
    if (!st)
        return res;
    uint64_t t = 0;
    for (; t < o->hot_warmup; t++)
        (void)detect_feed(st, o->t0_ms + (int64_t)t * 1000, gen_next(&g, t));
    /* generation alone, on a copy of the generator */
    gen g2 = g;
    volatile double vsink = 0;
    double acc = 0;
    uint64_t ngen = o->hot / o->chunks;
    double c0 = now_cpu_ns();
    for (uint64_t i = 0; i < ngen; i++)
        acc += gen_next(&g2, t + i);
    double gen_ns = (now_cpu_ns() - c0) / (double)ngen;
    vsink = acc;
    (void)vsink;

    double *per = calloc(o->chunks, sizeof *per);
    double wall = 0;
    for (unsigned c = 0; c < o->chunks; c++) {
        double w0 = now_wall_ns(), c1 = now_cpu_ns();
        for (uint64_t i = 0; i < ngen; i++, t++)
            sink_add(sk, detect_feed(st, o->t0_ms + (int64_t)t * 1000, gen_next(&g, t)));
        per[c] = (now_cpu_ns() - c1) / (double)ngen;
        wall += now_wall_ns() - w0;
        res.points += ngen;
    }
    res.ns_point_gross = median(per, (int)o->chunks);
    res.ns_point = res.ns_point_gross - gen_ns;
    res.ns_min = per[0] - gen_ns;
    res.ns_max = per[o->chunks - 1] - gen_ns;
    res.wall_ns_point = wall / (double)res.points;
    free(per);
    detect_free(st);
    return res;
}

/* ---- main ---------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fputs("usage: detect-throughput [--metrics N] [--rounds N] [--warmup N] [--chunks N]\n"
          "                         [--hot N] [--seed N] [--no-pin] [--kv] [--quick]\n"
          "  --metrics N  detectors fed interleaved, one point each per 1 s round (10000)\n"
          "  --rounds N   timed rounds, 1 s apart (600)\n"
          "  --warmup N   untimed rounds before, --warmup-step S seconds apart (576 x 300 s:\n"
          "               two days of history, so daily profiles are in use)\n"
          "  --hot-warmup N  untimed points, 1 s apart, for the hot detector (172800: 2 days)\n"
          "  --chunks N   timed chunks, the median is reported (5)\n"
          "  --hot N      points fed to the single hot detector (10000000)\n"
          "  --quick      --metrics 2000 --rounds 200 --hot 2000000\n"
          "  --no-pin     do not pin to the current CPU\n"
          "  --kv         also print key=value lines\n", f);
}

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static int parse_args(int argc, char **argv, opts *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        uint64_t v = 0;
        if (!strcmp(a, "--kv")) { o->kv = true; continue; }
        if (!strcmp(a, "--no-pin")) { o->pin = false; continue; }
        if (!strcmp(a, "--quick")) {
            o->metrics = 2000; o->rounds = 200; o->hot = 2000000;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 1; }
        if (i + 1 >= argc || !parse_u64(argv[i + 1], &v)) {
            fprintf(stderr, "detect-throughput: %s: %s\n", a,
                    i + 1 >= argc ? "missing or unknown option" : "expected a number");
            usage(stderr);
            return -1;
        }
        i++;
        if (!strcmp(a, "--metrics") && v >= 1 && v <= 10000000) o->metrics = (unsigned)v;
        else if (!strcmp(a, "--rounds") && v >= 1 && v <= 100000000) o->rounds = (unsigned)v;
        else if (!strcmp(a, "--warmup") && v <= 100000000) o->warmup = (unsigned)v;
        else if (!strcmp(a, "--warmup-step") && v >= 1 && v <= 86400) o->warmup_step = (unsigned)v;
        else if (!strcmp(a, "--hot-warmup")) o->hot_warmup = v;
        else if (!strcmp(a, "--chunks") && v >= 1 && v <= 1000) o->chunks = (unsigned)v;
        else if (!strcmp(a, "--hot") && v >= 1) o->hot = v;
        else if (!strcmp(a, "--seed")) o->seed = v;
        else {
            fprintf(stderr, "detect-throughput: %s %s: unknown option or value out of range\n", a, argv[i]);
            return -1;
        }
    }
    if (o->rounds < o->chunks)
        o->chunks = o->rounds;
    if (o->hot < o->chunks)
        o->hot = o->chunks;
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {.metrics = 10000, .rounds = 600, .warmup = 576, .warmup_step = 300, .chunks = 5,
              .hot = 10000000, .hot_warmup = 172800, .seed = 42, .t0_ms = 1795651200000LL /* 2026-11-26 */,
              .kv = false, .pin = true};
    int prc = parse_args(argc, argv, &o);
    if (prc)
        return prc > 0 ? 0 : 2;
    for (int i = 0; i < SINE_N; i++)
        sine_table[i] = sin(2 * M_PI * i / SINE_N);

    int cpu = sched_getcpu();
    if (o.pin && cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0)
            cpu = -1;
    }

    detect_state **st = calloc(o.metrics, sizeof *st);
    gen *g = calloc(o.metrics, sizeof *g);
    if (!st || !g) {
        fprintf(stderr, "detect-throughput: out of memory\n");
        return 1;
    }
    for (unsigned m = 0; m < o.metrics; m++)
        gen_init(&g[m], m, o.seed);
    long rss_gen = resident_bytes();
    for (unsigned m = 0; m < o.metrics; m++) {
        st[m] = detect_new();
        if (!st[m]) {
            fprintf(stderr, "detect-throughput: out of memory at detector %u\n", m);
            return 1;
        }
    }
    size_t block = malloc_usable_size(st[0]);

    sink sk = {0};
    uint64_t tick = 0;
    /* warm-up (untimed), the cost of generation alone, then the timed rounds */
    for (unsigned r = 0; r < o.warmup; r++, tick += o.warmup_step) {
        int64_t ts = o.t0_ms + (int64_t)tick * 1000;
        for (unsigned m = 0; m < o.metrics; m++)
            (void)detect_feed(st[m], ts, gen_next(&g[m], tick));
    }
    long rss1 = resident_bytes();
    double gen_ns = run_gen_only(&o, g, tick);
    result inter = run_interleaved(&o, st, g, &tick, &sk, gen_ns);
    sink hot_sink = {0};
    result hot = run_hot(&o, &hot_sink);

    size_t state = detect_state_size();
    double resident_per = (rss_gen >= 0 && rss1 >= 0)
        ? (double)(rss1 - rss_gen) / o.metrics : -1;
    double pps_inter = 1e9 / inter.ns_point, pps_hot = 1e9 / hot.ns_point;
    double core_pct = inter.ns_point * o.metrics / 1e9 * 100.0; /* N metrics at 1 s */

    printf("detect-throughput: detect_feed (the whole ensemble); %u metrics interleaved: %u timed "
           "rounds 1 s apart after %u untimed ones %u s apart (%.1f days of history); one hot "
           "detector: %llu timed points after %llu untimed, 1 s apart; %s\n",
           o.metrics, o.rounds / o.chunks * o.chunks, o.warmup, o.warmup_step,
           o.warmup * (double)o.warmup_step / 86400, (unsigned long long)hot.points,
           (unsigned long long)o.hot_warmup, cpu >= 0 ? "pinned to one CPU" : "not pinned");
    printf("series: %s, %s, %s, %s, %s (one kind in five each), daily, hourly and 5-minute seasonality,"
           " rare level steps and spikes\n",
           kind_names[0], kind_names[1], kind_names[2], kind_names[3], kind_names[4]);
    printf("\n");
    printf("| case | points timed | ns/point (CPU, median of %u) | min-max | points/s per core |\n", o.chunks);
    printf("|---|---:|---:|---:|---:|\n");
    printf("| %u metrics interleaved | %llu | %.0f | %.0f-%.0f | %.2f M |\n", o.metrics,
           (unsigned long long)inter.points, inter.ns_point, inter.ns_min, inter.ns_max, pps_inter / 1e6);
    printf("| one metric, hot | %llu | %.0f | %.0f-%.0f | %.2f M |\n", (unsigned long long)hot.points,
           hot.ns_point, hot.ns_min, hot.ns_max, pps_hot / 1e6);
    printf("\n");
    printf("- generating the series: %.1f ns/point, subtracted (with it: %.0f ns/point interleaved);"
           " wall clock %.0f ns/point interleaved\n", gen_ns, inter.ns_point_gross, inter.wall_ns_point);
    printf("- state per metric: %zu bytes (detect_state_size()), malloc block %zu bytes, resident "
           "%.0f bytes per metric (RSS growth over %u detectors after warm-up)\n",
           state, block, resident_per, o.metrics);
    printf("- %u metrics at 1 s: %.3f%% of one core (interleaved figure)\n", o.metrics, core_pct);
    printf("- scores: %.2f%% of points at or above %.2f, mean score %.4f (interleaved)\n",
           100.0 * (double)sk.anomalous / (double)(sk.n ? sk.n : 1), DETECT_THRESHOLD_DEFAULT,
           sk.sum / (double)(sk.n ? sk.n : 1));
    if (o.kv) {
        printf("kv metrics=%u\n", o.metrics);
        printf("kv ns_point_interleaved=%.2f\n", inter.ns_point);
        printf("kv ns_point_hot=%.2f\n", hot.ns_point);
        printf("kv ns_point_gen=%.2f\n", gen_ns);
        printf("kv pps_interleaved=%.0f\n", pps_inter);
        printf("kv pps_hot=%.0f\n", pps_hot);
        printf("kv state_bytes=%zu\n", state);
        printf("kv malloc_block_bytes=%zu\n", block);
        printf("kv resident_bytes_per_metric=%.0f\n", resident_per);
        printf("kv core_percent=%.4f\n", core_pct);
        printf("kv anomalous_fraction=%.6f\n", (double)sk.anomalous / (double)(sk.n ? sk.n : 1));
    }
    for (unsigned m = 0; m < o.metrics; m++)
        detect_free(st[m]);
    free(st);
    free(g);
    return 0;
}
