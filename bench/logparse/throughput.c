/* throughput.c: lines per second of the whole template-mining pipeline on
 * one core: header split (logs_format), the per-system masks (PCRE2), the
 * built-in masks, tokenising and the tree search (logs_miner), over raw
 * Loghub logs held in memory, each pass with a fresh miner, repeated for a
 * stable time (the process's CPU time, best of a few rounds, so that other
 * load on the machine does not count). Run by bench/logparse/run.py.
 *
 * usage: logparse-throughput [--repeat N] --system LOG FORMAT [--mask RE]...
 *                            [--system LOG FORMAT [--mask RE]...]... */
#include "logs/logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TP_MAX_SYSTEMS 64
#define TP_MAX_MASKS 16
#define TP_ROUNDS 5

typedef struct tp_system {
    const char *log, *format;
    const char *masks[TP_MAX_MASKS];
    int nmasks;
    char *data;
    size_t *off, *len, nlines;
} tp_system;

/* CPU time of this (single-threaded) process: time on its core, whatever
 * else the machine runs. */
static double tp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tp_load(tp_system *s)
{
    FILE *f = fopen(s->log, "rb");
    if (!f) {
        fprintf(stderr, "logparse-throughput: %s: %s\n", s->log, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 20, n = 0, got;
    s->data = malloc(cap);
    while (s->data && (got = fread(s->data + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            s->data = realloc(s->data, cap *= 2);
    }
    fclose(f);
    if (!s->data)
        return -1;
    size_t lc = 1;
    for (size_t i = 0; i < n; i++)
        lc += s->data[i] == '\n';
    s->off = malloc(lc * sizeof *s->off);
    s->len = malloc(lc * sizeof *s->len);
    if (!s->off || !s->len)
        return -1;
    size_t b = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s->data[i] == '\n') {
            size_t e = i;
            if (e > b && s->data[e - 1] == '\r')
                e--;
            if (i < n || e > b) {
                s->off[s->nlines] = b;
                s->len[s->nlines++] = e - b;
            }
            b = i + 1;
        }
    return 0;
}

/* One pass over s with a fresh miner; returns 0 or -1. */
static int tp_pass(const tp_system *s, const logs_format *fmt)
{
    char err[256];
    logs_miner *m;
    if (logs_miner_new(NULL, &m, err, sizeof err) < 0)
        return -1;
    for (int i = 0; i < s->nmasks; i++)
        if (logs_miner_add_mask(m, s->masks[i], err, sizeof err) < 0) {
            fprintf(stderr, "logparse-throughput: %s\n", err);
            logs_miner_free(m);
            return -1;
        }
    for (size_t i = 0; i < s->nlines; i++) {
        const char *line = s->data + s->off[i], *c = line;
        size_t n = s->len[i], cn = n;
        if (logs_format_content(fmt, line, n, &c, &cn) < 0) {
            c = line;
            cn = n;
        }
        if (logs_miner_add(m, c, cn, NULL) < 0) {
            logs_miner_free(m);
            return -1;
        }
    }
    logs_miner_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    static tp_system sys[TP_MAX_SYSTEMS];
    int nsys = 0;
    long repeat = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--system") && i + 2 < argc && nsys < TP_MAX_SYSTEMS) {
            sys[nsys].log = argv[++i];
            sys[nsys++].format = argv[++i];
        } else if (!strcmp(argv[i], "--mask") && i + 1 < argc && nsys > 0 && sys[nsys - 1].nmasks < TP_MAX_MASKS) {
            sys[nsys - 1].masks[sys[nsys - 1].nmasks++] = argv[++i];
        } else {
            fprintf(stderr, "usage: logparse-throughput [--repeat N] --system LOG FORMAT [--mask RE]... ...\n");
            return 2;
        }
    }
    if (nsys == 0 || repeat < 1) {
        fprintf(stderr, "usage: logparse-throughput [--repeat N] --system LOG FORMAT [--mask RE]... ...\n");
        return 2;
    }
    size_t total_lines = 0;
    size_t total_bytes = 0;
    double total_s = 0;
    printf("throughput (one core, whole pipeline, fresh miner per pass; CPU time, best of %d rounds of %ld passes):\n",
           TP_ROUNDS, repeat);
    for (int k = 0; k < nsys; k++) {
        tp_system *s = &sys[k];
        char err[256];
        logs_format *fmt;
        if (tp_load(s) < 0)
            return 1;
        if (logs_format_new(s->format, &fmt, err, sizeof err) < 0) {
            fprintf(stderr, "logparse-throughput: %s\n", err);
            return 2;
        }
        if (tp_pass(s, fmt) < 0) /* warm-up */
            return 1;
        double dt = 0; /* the best of TP_ROUNDS rounds of `repeat` passes */
        for (int round = 0; round < TP_ROUNDS; round++) {
            double t0 = tp_now();
            for (long r = 0; r < repeat; r++)
                if (tp_pass(s, fmt) < 0)
                    return 1;
            double t = tp_now() - t0;
            if (round == 0 || t < dt)
                dt = t;
        }
        size_t bytes = 0;
        for (size_t i = 0; i < s->nlines; i++)
            bytes += s->len[i] + 1;
        const char *name = strrchr(s->log, '/');
        printf("  %-24s %9.0f lines/s  %7.1f MB/s\n", name ? name + 1 : s->log,
               (double)s->nlines * (double)repeat / dt, (double)bytes * (double)repeat / dt / 1e6);
        total_lines += s->nlines * (size_t)repeat;
        total_bytes += bytes * (size_t)repeat;
        total_s += dt;
        logs_format_free(fmt);
        free(s->data);
        free(s->off);
        free(s->len);
    }
    printf("  %-24s %9.0f lines/s  %7.1f MB/s\n", "all", (double)total_lines / total_s,
           (double)total_bytes / total_s / 1e6);
    return 0;
}
