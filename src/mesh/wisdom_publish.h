/* wisdom_publish.h: the cell's own baselines and tuned knob sets as wisdom
 * records (issue 15 item 4), internal to src/mesh: builders that read the
 * cell's memory (series aggregates, service restarts) and Evolve's run
 * records, and hand each record that passes the redaction rule to an emit
 * callback, as mesh_wisdom_fixes_from_memory does for fix records. Which
 * metrics are shared and how they are aggregated: docs/mesh.md, "Wisdom". */
#ifndef IPPOC_MESH_WISDOM_PUBLISH_H
#define IPPOC_MESH_WISDOM_PUBLISH_H

#include "mesh/wisdom.h"

#define MESH_PUB_DAY_MS (24LL * 3600 * 1000)
#define MESH_PUB_RESTART_DAYS 7 /* service restarts: hourly counts over at most this many days */

/* count/mean/stddev (population)/p05/p50/p95 of v[0..n) (v is sorted in
 * place; quantiles by linear interpolation). n >= 1. */
void mesh_pub_stats(double *v, size_t n, double *mean, double *stddev, double *p05, double *p50, double *p95);

/* The cell's detector baselines from mem at now_ms: for each shared metric
 * (the machine's cpu user/system/iowait, memory used, psi some avg60 of cpu,
 * memory and io; per watched process kind its cpu and rss; per service its
 * restarts per hour), the aggregates of its per-minute means over the last
 * day (the RAM window's 10-second means while the day's rollups hold fewer
 * than MESH_WISDOM_MIN_SAMPLES points), built with
 * mesh_wisdom_build_baseline on host with the service kind set. Emits like
 * mesh_wisdom_fixes_from_memory: refused ones are skipped and counted in
 * *refused, the first reason in err; a metric with too few samples is
 * skipped silently. Returns how many were emitted or a negative error. */
int mesh_wisdom_baselines_from_memory(mem_t *m, const mesh_wisdom_host *host, int64_t now_ms,
                                      const mesh_wisdom_local *loc, mesh_wisdom_emit emit, void *eud, int *refused,
                                      char *err, size_t errlen);

/* The cell's tuned knob sets from Evolve's run records in runs_dir
 * (STATE/evolve/runs/ID.json): for each run with an accepted candidate, the
 * last accepted one's values, its confirmation batch's gain, interval and
 * measurements, objective "SPACE.fitness" (".fitness_min" when the space
 * minimises), the service kind the space's name (when it is a valid kind,
 * else "" for the machine). Emits like the above; a missing runs_dir emits
 * nothing. Returns how many were emitted or a negative error. */
int mesh_wisdom_knobs_from_runs(const char *runs_dir, const mesh_wisdom_host *host, const mesh_wisdom_local *loc,
                                mesh_wisdom_emit emit, void *eud, int *refused, char *err, size_t errlen);

/* A hash of what a baseline or knob record says (not its seq, time or
 * signature), with the baseline's statistics rounded to two significant
 * digits and its count to a power of two: a change worth re-publishing
 * changes it. *key gets what it is a version of ("KIND/SERVICE/METRIC"). */
uint64_t mesh_pub_hash(const mesh_wisdom_rec *r, char *key, size_t keylen);

#endif
