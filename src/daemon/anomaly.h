/* anomaly.h: ippocd's anomaly detection: one streaming detector (src/detect)
 * per sensed series, fed every tick after sensing; their scores tracked into
 * anomalous metrics and episodes (detect_tracker); `anomaly` and
 * `anomaly.episode` events; the learned state saved in the memory store and
 * loaded at start; what the API and the rules read.
 *
 * Configuration ([detect], kept raw by core/config.c, checked here):
 *
 *   [detect]
 *   enabled         = yes | no            (default yes)
 *   threshold       = 0.7                 score at or above which a sample is anomalous, (0, 1]
 *                                         (default DETECT_THRESHOLD_DEFAULT)
 *   for             = 0s                  anomalous this long before an `anomaly` event (0s..1d)
 *   keep_firing_for = 30s                 stays anomalous this long after its last anomalous sample (0s..1d)
 *   episode_window  = 10s                 grouping window of episodes, and how long an episode
 *                                         stays open once every member is calm (0s..1h)
 *   include         = *                   globs: series to watch (a glob with '{' matches
 *   exclude         =                     the key name{labels}, else the family name)
 *   max_metrics     = 5000                detectors at most (about 2 KB each)
 *   save_interval   = 5m                  how often the learned state is saved (10s..1d)
 *
 * Threads: anomaly_new/reconfigure/tick/save/free and anomaly_rule_check run
 * on the loop thread (anomaly_new and anomaly_free also before and after the
 * loop). anomaly_json and anomaly_scores are safe from any thread: they read
 * an immutable, reference-counted snapshot the loop publishes each tick
 * (its own mutex). The config functions keep no state. */
#ifndef IPPOC_DAEMON_ANOMALY_H
#define IPPOC_DAEMON_ANOMALY_H

#include "api/api.h"
#include "core/core.h"
#include "detect/detect.h"
#include "memory/memory.h"

#define ANOMALY_GLOBS_MAX 64
#define ANOMALY_GLOB_LEN 255
#define ANOMALY_MAX_METRICS_LIMIT 262144
#define ANOMALY_KEY_MAX 704 /* name{labels}: the store's 127 + 511, braces, room */

typedef struct anomaly_config {
    bool enabled;
    detect_track_config track; /* threshold, for, keep_firing_for, episode_window */
    int max_metrics;
    int64_t save_interval_ms;
    char include[ANOMALY_GLOBS_MAX][ANOMALY_GLOB_LEN + 1];
    int ninclude;
    char exclude[ANOMALY_GLOBS_MAX][ANOMALY_GLOB_LEN + 1];
    int nexclude;
} anomaly_config;

/* anomaly_conf.c */
void anomaly_config_defaults(anomaly_config *c);
/* Reads every [detect] key of cfg over the defaults. 0, or -EINVAL with
 * "FILE:LINE: reason" in err. */
int anomaly_config_parse(const core_config *cfg, anomaly_config *out, char *err, size_t errlen);
/* anomaly_config_parse with the result thrown away (ippocd --check-config,
 * reload). */
int anomaly_config_check(const core_config *cfg, char *err, size_t errlen);
/* Whether a series (family name, canonical labels) is watched: it matches an
 * include glob and no exclude glob. */
bool anomaly_config_match(const anomaly_config *c, const char *name, const char *labels);
/* Whether canonical labels `have` contain every pair of canonical labels
 * `want` ("" matches anything). */
bool anomaly_labels_subset(const char *have, const char *want);

/* anomaly.c */
typedef struct anomaly anomaly;

/* Builds the detectors' owner from cfg's [detect] and loads the state saved
 * in mem. Returns 0 or -errno with err. */
int anomaly_new(anomaly **out, mem_t *mem, const core_config *cfg, char *err, size_t errlen);
/* SIGHUP: new settings; detectors of series still watched keep what they
 * learned. 0 or -EINVAL with err (nothing changed then). */
int anomaly_reconfigure(anomaly *a, const core_config *cfg, char *err, size_t errlen);
/* After mem_tick(ts_ms): feeds the tick's values, writes events, saves the
 * state when due, publishes the snapshot. */
void anomaly_tick(anomaly *a, int64_t ts_ms);
/* Queues every detector's state for the store now (clean stop). 0 or -errno. */
int anomaly_save(anomaly *a, int64_t now_ms);
void anomaly_free(anomaly *a);

/* Any thread: the JSON of GET /v1/anomalies (all: every watched series too);
 * malloc'd, NULL when out of memory. */
char *anomaly_json(anomaly *a, bool all);
/* Any thread: every watched series' score for /metrics; *out is malloc'd
 * (free it); the strings stay valid while the memory store is open. Returns
 * the count or -ENOMEM. */
int anomaly_scores(anomaly *a, api_anomaly_score **out);

/* Loop thread, the heal engine's hook for anomalous(METRIC): 1 when a watched
 * series whose family matches the glob `metric` and whose labels contain
 * `labels` is anomalous now (key and score of the strongest such series),
 * 0 when none is, -ENOENT when detection is off. */
int anomaly_rule_check(void *ud, const char *metric, const char *labels, char *key, size_t keylen,
                       double *score);

#endif
