/* perf_mem.c: measurement (not a test; meson suite "perf"): 1500 series of
 * mixed data ticked through 2 h 5 min of simulated time as fast as the writer
 * keeps up; prints the mean and p99 cost of mem_tick, the cost of the 1500
 * mem_put calls, the process RSS high-water mark, the DB size, and (built
 * against this tree's memory module) the writer CPU per chunk step of each
 * tier. Usage: perf-memory [nseries] [seconds]. */
#include "memory/mem_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define T0 1699999200000LL

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key)))
            v = atol(line + strlen(key) + 1);
    if (f)
        fclose(f);
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int ns = argc > 1 ? atoi(argv[1]) : 1500, secs = argc > 2 ? atoi(argv[2]) : 7500;
    char dir[] = "/tmp/ippoc-perf-XXXXXX", err[512];
    if (!mkdtemp(dir))
        return 1;
    core_config cfg;
    core_log_setup(CORE_LOG_ERR, 0);
    core_config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    mem_t *m;
    if (mem_open(&m, &cfg, err, sizeof err)) {
        fprintf(stderr, "mem_open: %s\n", err);
        return 1;
    }
    int *ids = malloc(sizeof *ids * (size_t)ns);
    for (int s = 0; s < ns; s++) {
        char l[32];
        snprintf(l, sizeof l, "n=\"%d\"", s);
        ids[s] = mem_series(m, "perf", l, "", "", MEM_GAUGE);
    }
    double *tick_us = malloc(sizeof *tick_us * (size_t)secs), put_us = 0;
    for (int i = 0; i < secs; i++) {
        double a = now_us();
        for (int s = 0; s < ns; s++) {
            double v = s % 3 == 0 ? s : s % 3 == 1 ? 50 + 20 * sin((i + s) / 600.0) : (double)((i * 7919 + s * 31) % 1000);
            mem_put(m, ids[s], v);
        }
        double b = now_us();
        mem_tick(m, T0 + i * 1000LL);
        tick_us[i] = now_us() - b;
        put_us += b - a;
        if (i % 30 == 29)
            mem_flush(m, 60000);
    }
    mem_flush(m, 60000);
    mem_stats st;
    mem_get_stats(m, &st);
    double sum = 0;
    for (int i = 0; i < secs; i++)
        sum += tick_us[i];
    qsort(tick_us, (size_t)secs, sizeof *tick_us, cmp_d);
    printf("series %d, ticks %d\n", ns, secs);
    printf("mem_tick: mean %.1f us, p50 %.1f us, p99 %.1f us; %d x mem_put: %.1f us per tick\n",
           sum / secs, tick_us[secs / 2], tick_us[secs * 99 / 100], ns, put_us / secs);
    printf("RSS now %ld kB, high-water %ld kB\n", status_kb("VmRSS:"), status_kb("VmHWM:"));
    printf("db %.1f MB, dropped batches %llu\n", (double)st.db_bytes / 1e6,
           (unsigned long long)st.dropped_batches);
#ifndef PERF_OLD
    for (int t = 0; t < MEM_NTIERS; t++)
        printf("%s: %llu chunk steps, writer CPU %.2f ms per step\n", mem_tier_table[t],
               (unsigned long long)m->chunk_steps[t],
               m->chunk_steps[t] ? m->rollup_cpu_ms[t] / (double)m->chunk_steps[t] : 0.0);
#endif
    mem_close(m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        return 1;
    free(ids);
    free(tick_us);
    core_config_free(&cfg);
    return 0;
}
