/* bench_wispub.c: how long the cell's baselines take on a full day of
 * memory (they run on the cell's thread under its lock, once per 10
 * minutes): plants HOURS hours (default 24) of one-second ticks of the
 * shared machine series and NPROC process series into a fresh store, then
 * times mesh_wisdom_baselines_from_memory. Not a test: run
 * build/tests/mesh/mesh-wispub-bench [HOURS [NPROC]] by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "mesh/wisdom_publish.h"

static int count(void *ud, const mesh_wisdom_rec *r)
{
    if ((*(int *)ud)++ == 0)
        printf("  first: %s over %u points\n", r->base.metric, r->base.count);
    return 0;
}

int main(int argc, char **argv)
{
    int hours = argc > 1 ? atoi(argv[1]) : 24, nproc = argc > 2 ? atoi(argv[2]) : 4;
    char dir[] = "/tmp/ippoc-wispub-bench-XXXXXX", err[512] = "";
    if (hours < 1 || nproc < 0 || nproc > 64 || !mkdtemp(dir)) {
        fprintf(stderr, "usage: mesh-wispub-bench [HOURS [NPROC <= 64]]\n");
        return 2;
    }
    core_log_setup(CORE_LOG_ERR, 0);
    core_config cfg;
    core_config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    mem_t *m = NULL;
    if (mem_open(&m, &cfg, err, sizeof err)) {
        fprintf(stderr, "mem_open: %s\n", err);
        return 1;
    }
    static const char *const machine[][2] = {
        {"cpu.usage_percent", "cpu=\"total\",state=\"user\""}, {"cpu.usage_percent", "cpu=\"total\",state=\"system\""},
        {"cpu.usage_percent", "cpu=\"total\",state=\"iowait\""}, {"memory.used_percent", ""},
        {"psi.some_avg60_percent", "resource=\"cpu\""}, {"psi.some_avg60_percent", "resource=\"memory\""},
        {"psi.some_avg60_percent", "resource=\"io\""}};
    int ids[7 + 2 * 64], n = 0;
    for (int i = 0; i < 7; i++)
        ids[n++] = mem_series(m, machine[i][0], machine[i][1], "percent", "", MEM_GAUGE);
    for (int i = 0; i < nproc; i++) {
        char lab[64];
        snprintf(lab, sizeof lab, "name=\"svc%d\",pid=\"%d\"", i, 100 + i);
        ids[n++] = mem_series(m, "process.cpu_percent", lab, "percent", "", MEM_RATE);
        ids[n++] = mem_series(m, "process.rss_bytes", lab, "bytes", "", MEM_GAUGE);
    }
    int64_t now = core_now_ms() / 1000 * 1000, t0 = now - hours * 3600000LL, p0 = core_mono_ms();
    for (int64_t t = t0; t <= now; t += 1000) {
        for (int i = 0; i < n; i++)
            mem_put(m, ids[i], (double)((t / 1000 + i) % 97));
        if (mem_tick(m, t)) {
            fprintf(stderr, "mem_tick failed\n");
            return 1;
        }
        if ((t - t0) % 60000 == 0)
            mem_flush(m, 60000);
    }
    mem_flush(m, 60000);
    mem_stats st;
    mem_get_stats(m, &st);
    printf("store: %llu rows written, %llu batches dropped, %lld bytes\n", (unsigned long long)st.rows_written,
           (unsigned long long)st.dropped_batches, (long long)st.db_bytes);
    printf("planted %d h of %d series in %.1f s\n", hours, n, (double)(core_mono_ms() - p0) / 1000);
    mesh_wisdom_host h;
    mesh_wisdom_host_local("", &h, err, sizeof err);
    for (int round = 0; round < 3; round++) {
        int got = 0, refused = 0;
        int64_t b0 = core_mono_ms();
        int rc = mesh_wisdom_baselines_from_memory(m, &h, core_now_ms(), NULL, count, &got, &refused, err,
                                                   sizeof err);
        printf("baselines: %d records (rc %d, %d refused) in %lld ms\n", got, rc, refused,
               (long long)(core_mono_ms() - b0));
    }
    mem_close(m);
    core_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) ? 1 : 0;
}
