/* perf_know.c: a measurement, not a test: the knowledge store at 100,000
 * chunks of synthetic text (Zipf-distributed pseudo-words, 10 chunks per
 * document): index time, then query latency p50/p95 for hybrid, BM25 and
 * vector alone, each query five words of a random chunk. Run it on one core:
 * taskset -c 0 build/tests/memory/perf-know [CHUNKS] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memory/know_priv.h"

#define VOCAB 30000

static unsigned long long rng = 88172645463325252ull;
static unsigned long long next(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static double cdf[VOCAB];
static char words[VOCAB][16];

static int zipf(void)
{
    double u = (double)(next() % 1000000007ull) / 1000000007.0;
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int m = (lo + hi) / 2;
        if (cdf[m] < u)
            lo = m + 1;
        else
            hi = m;
    }
    return lo;
}

static double ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int chunks = argc > 1 ? atoi(argv[1]) : 100000, per = 10, words_per = 190;
    static const char *syl[] = {"ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "dra", "gen", "tor", "lix",
                                "bar", "qui", "zen"};
    double s = 0;
    for (int i = 0; i < VOCAB; i++) {
        int n = i, o = 0;
        do {
            o += snprintf(words[i] + o, sizeof words[i] - (size_t)o, "%s", syl[n % 16]);
            n /= 16;
        } while (n && o < 12);
        s += 1.0 / (i + 1);
        cdf[i] = s;
    }
    for (int i = 0; i < VOCAB; i++)
        cdf[i] /= s;
    char dir[] = "/tmp/ippoc-perfknow-XXXXXX", path[64], err[512];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/k.db", dir);
    bool reuse = argc > 2 && !access(argv[2], F_OK); /* perf-know N DB: measure an existing store */
    if (reuse)
        snprintf(path, sizeof path, "%s", argv[2]);
    mem_know *k;
    if (mem_know_open(path, &k, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t cap = (size_t)per * words_per * 16 + 64;
    char *text = malloc(cap);
    double t0 = ms();
    int ndocs = reuse ? 0 : chunks / per, total = 0;
    for (int d = 0; d < ndocs; d++) {
        size_t o = 0;
        for (int c = 0; c < per; c++) {
            for (int w = 0; w < words_per; w++)
                o += (size_t)snprintf(text + o, cap - o, "%s%s", words[zipf()], w % 15 == 14 ? ". " : " ");
            text[o++] = '\n', text[o++] = '\n';
        }
        text[o] = 0;
        char src[32];
        snprintf(src, sizeof src, "doc/%d", d);
        mem_doc doc = {.source = src, .title = src, .text = text};
        int n;
        if (mem_know_add(k, &doc, NULL, &n, err, sizeof err)) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        total += n;
    }
    double t1 = ms();
    printf("indexed %d docs, %d chunks in %.1f s (%.0f chunks/s)\n", ndocs, total, (t1 - t0) / 1e3,
           total / ((t1 - t0) / 1e3));
    mem_know_close(k);
    t0 = ms();
    if (mem_know_open(path, &k, err, sizeof err))
        return 1;
    printf("reopen (vectors and statistics loaded) in %.0f ms\n", ms() - t0);
    static const char *mname[] = {"hybrid", "bm25", "vector"};
    enum { Q = 300 };
    for (int m = 0; m < 3; m++) {
        double lat[Q], cpu[Q];
        int found = 0;
        for (int q = 0; q < Q; q++) {
            char query[256];
            size_t o = 0;
            for (int w = 0; w < 5; w++)
                o += (size_t)snprintf(query + o, sizeof query - o, "%s ", words[zipf() % 3000]);
            mem_hit *h;
            size_t n;
            double a = ms(), c = cpu_ms();
            if (mem_know_search(k, query, m, 10, &h, &n, err, sizeof err)) {
                fprintf(stderr, "%s\n", err);
                return 1;
            }
            lat[q] = ms() - a;
            cpu[q] = cpu_ms() - c;
            found += n > 0;
            mem_know_hits_free(h, n);
        }
        qsort(lat, Q, sizeof *lat, cmpd);
        qsort(cpu, Q, sizeof *cpu, cmpd);
        printf("%-7s wall p50 %.2f ms  p95 %.2f ms  max %.2f ms | cpu p50 %.2f ms  p95 %.2f ms  (%d/%d with hits)\n",
               mname[m], lat[Q / 2], lat[Q * 95 / 100], lat[Q - 1], cpu[Q / 2], cpu[Q * 95 / 100], found, Q);
    }
    char *st = mem_know_stats_json(k);
    printf("%s\n", st);
    free(st);
    t0 = ms();
    int merged;
    mem_know_dedup(k, 0.98, &merged);
    printf("dedup: %d merged in %.1f s\n", merged, (ms() - t0) / 1e3);
    mem_know_close(k);
    free(text);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (reuse || getenv("PERF_KNOW_KEEP")) {
        printf("kept %s\n", path);
        return 0;
    }
    if (reuse)
        rmdir(dir);
    return reuse || !system(cmd) ? 0 : 1;
}
