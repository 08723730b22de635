/* detect.h: streaming, unsupervised anomaly detection, one detector per
 * metric. Feed each sample in time order; get back a score in [0, 1] and the
 * reason the ensemble gives for it. A detector is a fixed-size plain struct
 * (no pointers, at most DETECT_STATE_MAX bytes): O(1) memory per metric, no
 * look-ahead, safe to copy, save and load as bytes.
 *
 * Not thread-safe per detector: one thread feeds a given detector (the loop in
 * ippocd); different detectors are independent.
 */
#ifndef IPPOC_DETECT_H
#define IPPOC_DETECT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DETECT_STATE_MAX 4096

/* Score scale: 0.5 is where the ensemble calls a sample a detection (a new
 * extreme scores 0.667). The threshold that maximises the NAB standard profile
 * (bench/nab, whose costs accept one false alarm for a tenth of a caught
 * anomaly) measured 0.435 on the whole corpus and 0.435-0.53 across the
 * leave-one-category-out folds. Gaussian noise and a random walk still reach
 * about 0.77 once in a few 100,000 samples, so the daemon's default for
 * "anomalous" is higher: noise alone raises nothing. */
#define DETECT_THRESHOLD_NAB 0.5
#define DETECT_THRESHOLD_DEFAULT 0.8

typedef enum detect_reason {
    DETECT_REASON_NONE = 0,    /* nothing unusual (or still learning) */
    DETECT_REASON_SPIKE,       /* a value far above what the recent past allows */
    DETECT_REASON_DIP,         /* a value far below it */
    DETECT_REASON_LEVEL_UP,    /* a sustained shift up (change point) */
    DETECT_REASON_LEVEL_DOWN,  /* a sustained shift down */
    DETECT_REASON_SEASONAL,    /* unusual for this time of day */
    DETECT_REASON_FLATLINE,    /* a series that used to move has stopped */
    DETECT_REASON_VARIANCE,    /* the spread changed (noisier or calmer) */
    DETECT_REASON_DRIFT,       /* a slow drift (a leak, a filling disk) seen at the slow scale */
    DETECT_REASON_COUNT
} detect_reason;

typedef struct detect_result {
    double score;          /* [0, 1]; >= threshold means anomalous */
    detect_reason reason;  /* the detector that contributed most */
    double expected;       /* what the baseline expected (NAN while learning) */
    double lo, hi;         /* the band of values it expected, lo <= expected <= hi
                              (NAN while learning) */
} detect_result;

typedef struct detect_state detect_state; /* see detect_int.h; plain bytes */

/* Size of one detector's state in bytes (<= DETECT_STATE_MAX). */
size_t detect_state_size(void);

/* A new detector that knows nothing yet; NULL when out of memory. */
detect_state *detect_new(void);
void detect_free(detect_state *st);
/* Forget everything (as if just created). */
void detect_reset(detect_state *st);

/* Feed one sample; ts_ms is wall-clock milliseconds since the epoch (used for
 * seasonal profiles and gaps), value is the sample. NaN/inf values are
 * ignored (score 0, reason NONE, state unchanged). Samples whose time goes
 * backwards are scored but do not update the seasonal profile. */
detect_result detect_feed(detect_state *st, int64_t ts_ms, double value);

/* Tunables, for benchmarks only (bench/nab/tune.py, `ippoc detect --set`):
 * process-wide values read by every detector; ippocd never changes them.
 * detect_tunable_set: 0, or -EINVAL with the reason in err (unknown name,
 * value out of range). detect_tunable_count/detect_tunable_get list them
 * (name, current value) for i in [0, count). */
int detect_tunable_set(const char *name, double value, char *err, size_t errlen);
int detect_tunable_count(void);
const char *detect_tunable_get(int i, double *value);

/* Number of samples this detector has learned from. */
uint64_t detect_count(const detect_state *st);

/* Stable lower-case name of a reason ("spike", "level_up", ...). */
const char *detect_reason_name(detect_reason r);

/* Serialise to buf (cap >= detect_state_size()); returns the bytes written or
 * 0 when cap is too small. The bytes carry a version and checksum. */
size_t detect_save(const detect_state *st, void *buf, size_t cap);
/* Restore from detect_save()'s bytes; 0 on success, -1 with a reason in err
 * (wrong size, version or checksum: st is then reset, never half-loaded). */
int detect_load(detect_state *st, const void *buf, size_t len, char *err, size_t errlen);

/* ---- CSV input: `timestamp,value` rows (ippoc detect, bench/nab) ----
 * The first line may be a header (a row whose value is not a number).
 * Timestamps: "YYYY-MM-DD HH:MM:SS[.fff]" (UTC), "YYYY-MM-DDTHH:MM:SS[.fff][Z]"
 * or seconds since the epoch (integer or decimal). */
typedef struct detect_csv detect_csv;

typedef struct detect_csv_row {
    int64_t ts_ms;        /* the timestamp, ms since the epoch */
    double value;
    unsigned long line;   /* 1-based line number in the input */
    char ts_text[64];     /* the timestamp as written */
    char value_text[64];  /* the value as written */
} detect_csv_row;

/* Read rows from f (not closed by detect_csv_close); name is used in errors. */
detect_csv *detect_csv_open(FILE *f, const char *name);
/* 1: a row was read; 0: end of input; -1: a bad row or read error, with
 * "NAME:LINE: reason" in err. Reading can continue after a bad row. */
int detect_csv_next(detect_csv *r, detect_csv_row *row, char *err, size_t errlen);
void detect_csv_close(detect_csv *r);

/* ---- Episodes (anomaly tracking across metrics): see below ---- */

#include <stdbool.h>

/* detect_tracker turns the scores of many metrics into anomalous states,
 * one notice per anomalous run, and episodes that group the metrics which
 * turned anomalous together. Pure bookkeeping: no clock, no I/O, no
 * threads; the caller passes the time. Metrics are small non-negative ints
 * (in ippocd, series ids), at most DETECT_TRACK_IDS_MAX.
 *
 *  - a metric turns anomalous at its first score >= threshold (a *hit*; the
 *    time is its onset) and stays anomalous until no hit came for keep_ms
 *    and its departure stopped lasting for keep_ms (then it is calm). The
 *    detectors fire briefly at the onset of something new and then hold
 *    back; what bridges their silences is keep_ms and the departure: a
 *    value still outside the band expected at the onset and still at least
 *    half as far from the value expected then as at its farthest hit (so a
 *    spike, or a load average relaxing after one, is over soon; a CPU hog, a
 *    leak, a filling disk last), or, for a flat line, a value that has not
 *    moved (for at most 30 minutes after the last hit);
 *  - once it has been anomalous for for_ms, its departure unbroken over the
 *    last for_ms (with for_ms 0: at once), it is *noticed* (once per run):
 *    DETECT_NOTE_ANOMALY. A burst of spikes that keeps hitting but comes
 *    and goes is never noticed;
 *  - a noticed metric joins the newest open episode whose newest member's
 *    onset is within window_ms of its own onset; otherwise it opens a new
 *    episode. Members are kept in onset order (ties: order of notice) with
 *    their peak score and the reason, value and expected value at the peak,
 *    the band expected there (lo, hi), how far the value left it
 *    (departure, in band half-widths, signed) and its relative change. The
 *    episode names its first mover (earliest onset, ties: order of notice,
 *    also among members beyond the listed ones) and marks the members whose
 *    onset is within window_ms of the first mover's (moved together, in
 *    either direction). An episode closes once every metric in it has been calm for window_ms;
 *  - memory is bounded: at most DETECT_EPISODE_MEMBERS listed members per
 *    episode (later ones are only counted in `more`), DETECT_EPISODES_KEEP
 *    episodes (open and recently closed; the oldest closed one is forgotten
 *    first, and when every kept one is open the oldest is closed).
 *
 * Each tick: detect_tracker_update() for every metric fed, then
 * detect_tracker_tick(now), then drain detect_tracker_next_note(). Not
 * thread-safe: one thread owns a tracker (the loop in ippocd). */

#define DETECT_EPISODE_MEMBERS 32
#define DETECT_EPISODES_KEEP 16
#define DETECT_TRACK_IDS_MAX (1 << 18) /* memory grows with the highest id */

typedef struct detect_track_config {
    double threshold;  /* (0, 1]: a score >= threshold is a hit */
    int64_t for_ms;    /* >= 0: anomalous this long before the notice */
    int64_t keep_ms;   /* >= 0: calm after this long without a hit */
    int64_t window_ms; /* >= 0: episode grouping and closing window */
} detect_track_config;

/* How far value lies outside the band [lo, hi], in half-widths of the band,
 * signed: 0 inside it, +1 one half-width above hi, -2 two below lo. NAN when
 * the band is unknown (NaN) or value is; a band of width 0 counts as one
 * of half-width 1e-9 * max(1, |lo|, |hi|), so the figure stays finite. */
double detect_departure(double value, double lo, double hi);
/* The relative change of value against expected, (value - expected) /
 * |expected|: +0.5 is 50 % above. NAN when either is NaN or expected is 0. */
double detect_change(double value, double expected);

/* threshold DETECT_THRESHOLD_DEFAULT, for 2 min, keep 30 s, window 10 s.
 * `for` is what keeps a healthy machine quiet (bench/quiet): the faults
 * worth an episode last (a hog, a leak, a filling disk, a hang), the noise
 * of hundreds of 1-second series does not. */
void detect_track_config_default(detect_track_config *c);

/* What the tracker knows about one metric (last sample, current run). */
typedef struct detect_metric {
    int64_t last_ms;        /* time of the last sample, 0 = never fed */
    double score;           /* last score */
    detect_reason reason;   /* last reason */
    double value, expected; /* last value fed and what the detector expected */
    double lo, hi;          /* the band it expected for the last value (NAN: none) */
    int64_t since_ms;       /* onset of the current anomalous run, 0 = calm */
    int64_t last_hit_ms;    /* last hit of the run */
    double peak;            /* highest score of the run */
    detect_reason peak_reason;
    double peak_value, peak_expected;
    double peak_lo, peak_hi;   /* the band at the peak */
    double peak_departure;     /* detect_departure() at the peak */
    double peak_change;        /* detect_change() at the peak */
    bool noticed;           /* the run was noticed (DETECT_NOTE_ANOMALY given) */
    uint64_t episode;       /* the run's episode, 0 = none */
} detect_metric;

typedef struct detect_member {
    int id;
    int64_t since_ms;       /* onset */
    int64_t noticed_ms;
    int64_t calm_ms;        /* when it turned calm, 0 while anomalous */
    double peak;            /* highest score while in the episode */
    detect_reason reason;   /* at the peak */
    double value, expected; /* at the peak */
    double lo, hi;          /* the band at the peak */
    double departure;       /* detect_departure() at the peak */
    double change;          /* detect_change() at the peak */
    bool together;          /* onset within window_ms of the first mover's */
} detect_member;

typedef struct detect_episode {
    uint64_t id;            /* 1, 2, ... in order of opening */
    int64_t opened_ms;      /* when it was opened (its first notice) */
    int64_t first_onset_ms; /* earliest onset of its members */
    int64_t last_onset_ms;  /* onset of its newest member */
    int64_t closed_ms;      /* 0 while open */
    int64_t calm_ms;        /* every metric in it calm since, 0 = not all calm */
    double peak;            /* highest member peak */
    int anomalous;          /* metrics in it that are anomalous now */
    int nmembers;           /* listed members */
    int more;               /* members beyond DETECT_EPISODE_MEMBERS (not listed) */
    int first;              /* the first mover: earliest onset (ties: first noticed) */
    detect_member members[DETECT_EPISODE_MEMBERS];
} detect_episode;

typedef enum detect_note_kind {
    DETECT_NOTE_EPISODE_OPEN = 1, /* `episode` opened by metric `id` (its ANOMALY follows) */
    DETECT_NOTE_ANOMALY,          /* metric `id` noticed, member of `episode` */
    DETECT_NOTE_CALM,             /* noticed metric `id` is calm again */
    DETECT_NOTE_EPISODE_CLOSE,    /* `episode` closed (id: -1) */
} detect_note_kind;

typedef struct detect_note {
    detect_note_kind kind;
    int id;
    uint64_t episode;
    int64_t ts_ms;
} detect_note;

typedef struct detect_tracker detect_tracker;

/* NULL when out of memory or cfg is invalid (see detect_track_config_check). */
detect_tracker *detect_tracker_new(const detect_track_config *cfg);
void detect_tracker_free(detect_tracker *t);
/* 0, or -EINVAL with the reason in err (threshold outside (0, 1], a negative
 * or NaN duration). */
int detect_track_config_check(const detect_track_config *cfg, char *err, size_t errlen);
/* New settings; states, runs and episodes are kept. 0 or -EINVAL. */
int detect_tracker_configure(detect_tracker *t, const detect_track_config *cfg);
const detect_track_config *detect_tracker_config(const detect_tracker *t);

/* Records metric id's result at ts_ms (value: the sample). 0, -EINVAL (bad
 * id), -ENOMEM. A NaN score counts as no hit. */
int detect_tracker_update(detect_tracker *t, int id, int64_t ts_ms, const detect_result *r, double value);
/* Advances time to now_ms: calms metrics, gives notices, forms and closes
 * episodes. */
void detect_tracker_tick(detect_tracker *t, int64_t now_ms);
/* The metric is no longer tracked (series dropped, excluded): a noticed run
 * ends as if calm at now_ms; its state is forgotten. */
void detect_tracker_forget(detect_tracker *t, int id, int64_t now_ms);

/* Takes the oldest pending note: 1, or 0 when none is left. Notes beyond
 * 65536 pending ones are dropped (counted by detect_tracker_notes_dropped). */
int detect_tracker_next_note(detect_tracker *t, detect_note *out);
uint64_t detect_tracker_notes_dropped(const detect_tracker *t);

/* The metric's state, or NULL when it was never fed (or forgotten). */
const detect_metric *detect_tracker_metric(const detect_tracker *t, int id);
/* The ids of the metrics anomalous now (in the order they turned so); *n
 * gets the count. Valid until the next update/tick/forget. */
const int *detect_tracker_anomalous(const detect_tracker *t, int *n);
/* The kept episodes, newest first, into out[0..max); returns how many. */
int detect_tracker_episodes(const detect_tracker *t, const detect_episode **out, int max);
/* One kept episode, or NULL. */
const detect_episode *detect_tracker_episode(const detect_tracker *t, uint64_t id);
/* Episodes opened so far (the id of the newest). */
uint64_t detect_tracker_episodes_total(const detect_tracker *t);

/* ---- the registry: one detector per sensed series (registry.c, registry_conf.c) ----
 *
 * What ippocd runs: one detector per watched series of the memory store, fed
 * every tick after sensing; their scores tracked into anomalous metrics and
 * episodes (detect_tracker); `anomaly` and `anomaly.episode` events; the
 * learned state saved in the memory store and loaded at start. The daemon
 * creates it and wires its readers into the API's hooks and its
 * anomalous(METRIC) check into the heal engine. Built as its own library
 * (detect_registry_dep): it reads and writes the memory store, so a program
 * linking it also links mem_dep (src/memory is built after src/detect).
 *
 * Configuration ([detect], kept raw by core/config.c, checked here):
 *
 *   [detect]
 *   enabled         = yes | no            (default yes)
 *   threshold       = 0.7                 score at or above which a sample is anomalous, (0, 1]
 *                                         (default DETECT_THRESHOLD_DEFAULT)
 *   for             = 2m                  anomalous this long before an `anomaly` event (0s..1d)
 *   keep_firing_for = 30s                 stays anomalous this long after its last anomalous sample (0s..1d)
 *   episode_window  = 10s                 grouping window of episodes, and how long an episode
 *                                         stays open once every member is calm (0s..1h)
 *   include         = *                   globs: series to watch (a glob with '{' matches
 *   exclude         =                     the key name{labels}, else the family name)
 *   max_metrics     = 5000                detectors at most (about 2.9 KB each)
 *   save_interval   = 5m                  how often the learned state is saved (10s..1d)
 *
 * Threads: detect_registry_new/reconfigure/tick/save/free and
 * detect_registry_rule_check run on the loop thread (new and free also before
 * and after the loop). detect_registry_json and detect_registry_scores are
 * safe from any thread: they read an immutable, reference-counted snapshot
 * the loop publishes each tick (its own mutex). The config functions keep no
 * state. */
#include "core/core.h"
#include "memory/memory.h"

#define DETECT_REGISTRY_GLOBS_MAX 64
#define DETECT_REGISTRY_GLOB_LEN 255
#define DETECT_REGISTRY_MAX_METRICS_LIMIT 262144
#define DETECT_KEY_MAX 704 /* name{labels}: the store's 127 + 511, braces, room */

typedef struct detect_registry_config {
    bool enabled;
    detect_track_config track; /* threshold, for, keep_firing_for, episode_window */
    int max_metrics;
    int64_t save_interval_ms;
    char include[DETECT_REGISTRY_GLOBS_MAX][DETECT_REGISTRY_GLOB_LEN + 1];
    int ninclude;
    char exclude[DETECT_REGISTRY_GLOBS_MAX][DETECT_REGISTRY_GLOB_LEN + 1];
    int nexclude;
} detect_registry_config;

/* registry_conf.c */
void detect_registry_config_defaults(detect_registry_config *c);
/* Reads every [detect] key of cfg over the defaults. 0, or -EINVAL with
 * "FILE:LINE: reason" in err. */
int detect_registry_config_parse(const core_config *cfg, detect_registry_config *out, char *err, size_t errlen);
/* detect_registry_config_parse with the result thrown away (ippocd
 * --check-config, reload). */
int detect_registry_config_check(const core_config *cfg, char *err, size_t errlen);
/* Whether a series (family name, canonical labels) is watched: it matches an
 * include glob and no exclude glob. */
bool detect_registry_config_match(const detect_registry_config *c, const char *name, const char *labels);

/* registry.c */
typedef struct detect_registry detect_registry;

/* One watched series' score (strings owned by the memory store). */
typedef struct detect_score {
    const char *name;   /* family, e.g. "memory.used_bytes" */
    const char *labels; /* canonical, "" if none */
    double score;       /* [0, 1] */
    bool anomalous;     /* anomalous now: its run began, keep_firing_for not over */
} detect_score;

/* Builds the detectors' owner from cfg's [detect] and loads the state saved
 * in mem. Returns 0 or -errno with err. */
int detect_registry_new(detect_registry **out, mem_t *mem, const core_config *cfg, char *err, size_t errlen);
/* SIGHUP: new settings; detectors of series still watched keep what they
 * learned. 0 or -EINVAL with err (nothing changed then). */
int detect_registry_reconfigure(detect_registry *a, const core_config *cfg, char *err, size_t errlen);
/* After mem_tick(ts_ms): feeds the tick's values, writes events, saves the
 * state when due, publishes the snapshot. */
void detect_registry_tick(detect_registry *a, int64_t ts_ms);
/* Queues every detector's state for the store now (clean stop). 0 or -errno. */
int detect_registry_save(detect_registry *a, int64_t now_ms);
void detect_registry_free(detect_registry *a);

/* Any thread: the JSON of GET /v1/anomalies (all: every watched series too);
 * malloc'd, NULL when out of memory. */
char *detect_registry_json(detect_registry *a, bool all);
/* Any thread: every watched series' score; *out is malloc'd (free it); the
 * strings stay valid while the memory store is open. Returns the count or
 * -ENOMEM. */
int detect_registry_scores(detect_registry *a, detect_score **out);

/* Loop thread, the heal engine's hook for anomalous(METRIC): 1 when a watched
 * series whose family matches the glob `metric` and whose labels contain
 * `labels` is anomalous now (key and score of the strongest such series),
 * 0 when none is, -ENOENT when detection is off. */
int detect_registry_rule_check(void *ud, const char *metric, const char *labels, char *key, size_t keylen,
                               double *score);

#endif
