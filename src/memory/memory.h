/* memory.h: HiDB, the cell's durable memory (first version).
 *
 * Holds every metric series the cell senses:
 *  - full resolution (one slot per second) in RAM for the last ram window
 *    (default 15 minutes), float32 ring per series;
 *  - rolled up on disk (SQLite, WAL) into 10 s / 1 min / 1 h tiers of
 *    min/max/mean/count, each with its own retention, stored as compact
 *    per-series chunks (5 min / 1 h / 1 day of buckets per row);
 *  - the raw per-second rows are also written to disk (one packed row per
 *    tick) so that a restart, or a kill -9, restores the RAM window and loses
 *    at most the tick that was not yet committed.
 * and an append-only `events` table (typed, timestamped, JSON payload) that
 * every module appends to.
 *
 * Threads: mem_series/mem_put/mem_tick are called by the loop thread only.
 * Disk writes happen on an internal writer thread fed by a bounded queue, so
 * mem_tick never waits on disk. Every read function (mem_query,
 * mem_series_snapshot, mem_events_*) is safe from any thread: reads of the
 * RAM window take an internal mutex for a short copy; reads of the store use
 * a separate SQLite connection under its own mutex. */
#ifndef IPPOC_MEMORY_H
#define IPPOC_MEMORY_H

#include "core/core.h"

typedef struct mem mem_t;

enum { MEM_GAUGE = 0, MEM_RATE = 1 }; /* a rate was computed from a counter */

/* One series, as copied out by mem_series_snapshot. Strings are owned by the
 * store and stay valid until mem_close (series are never removed while open). */
typedef struct mem_series_info {
    int id;
    const char *name;   /* family, e.g. "cpu.usage_percent" */
    const char *labels; /* canonical Prometheus-style: cpu="cpu0",state="user"; "" if none */
    const char *unit;   /* "percent", "bytes", "bytes/s", "1/s", "" */
    const char *help;
    int kind;           /* MEM_GAUGE or MEM_RATE */
    double last;        /* NaN if never set */
    int64_t last_ts;    /* ms, 0 if never set */
} mem_series_info;

/* A point of a query answer: one step bucket. */
typedef struct mem_point {
    int64_t ts; /* bucket start, ms */
    double min, max, mean;
    uint64_t count;
} mem_point;

enum { MEM_SRC_RAM = 0, MEM_SRC_10S, MEM_SRC_1M, MEM_SRC_1H };
const char *mem_source_name(int src); /* "ram", "10s", "1m", "1h" */

typedef struct mem_event {
    int64_t id;
    int64_t ts;         /* ms */
    char type[64];      /* "daemon.start", "config.reload", "anomaly", ... */
    char severity[16];  /* "debug" "info" "warning" "error" "critical" */
    char source[128];   /* module or service name */
    char *payload;      /* JSON text (object), never NULL */
} mem_event;

typedef struct mem_event_query {
    int64_t from, to;   /* ms, inclusive; 0 = unbounded */
    const char *type;   /* exact type, or prefix ending in '*'; NULL = any */
    const char *severity; /* minimum severity; NULL = any */
    int64_t after_id;   /* only ids > after_id */
    int limit;          /* <= 10000 */
    bool ascending;     /* default newest first */
} mem_event_query;

typedef struct mem_stats {
    int nseries;
    uint64_t ticks;
    uint64_t samples;          /* total samples put */
    uint64_t rows_written;     /* rows committed by the writer */
    uint64_t writer_batches;
    uint64_t dropped_batches;  /* tick batches lost: queue full (disk too slow) or
                                  not writable (disk full); their series and
                                  events are retried until written */
    int queue_depth;
    int64_t write_failing_since; /* wall ms since the store refuses writes (disk
                                    full, read-only, I/O error); 0 = writing */
    char write_error[96];        /* then why, e.g. "database or disk is full" */
    int64_t db_bytes;
    int64_t oldest_ram_ts;
} mem_stats;

/* Since when (wall ms) the store refuses writes (disk full, read-only, I/O
 * error), 0 when it writes; the reason into why, and into *dropped (may be
 * NULL) the tick batches dropped so far (mem_stats.dropped_batches). Cheap
 * (one lock, no I/O, unlike mem_get_stats): the daemon asks every tick.
 * Any thread. */
int64_t mem_write_failing(mem_t *m, char *why, size_t n, uint64_t *dropped);

/* Opens (creating) <cfg->state_dir>/ippoc.db, migrates the schema, loads the
 * series table and restores the RAM window from the raw rows. Starts the
 * writer thread. */
int mem_open(mem_t **out, const core_config *cfg, char *err, size_t errlen);
/* Applies changed retentions (the RAM window size is fixed until restart). */
void mem_reconfigure(mem_t *m, const core_config *cfg);
/* Flushes everything queued, stops the writer, closes the store. */
void mem_close(mem_t *m);
/* Waits until every batch queued so far has been through the writer:
 * committed, or failed (then its ticks are dropped and its series and events
 * are retried with the next batches, see writer.c): it never waits for a
 * full disk to get room. 0 or -ETIMEDOUT. */
int mem_flush(mem_t *m, int timeout_ms);

/* ---- loop thread: producing samples ----------------------------------- */
/* Finds or creates a series. Returns its id (>= 0) or -errno. */
int mem_series(mem_t *m, const char *name, const char *labels, const char *unit,
               const char *help, int kind);
/* Sets the value of a series for the tick being built. NaN = no value. */
void mem_put(mem_t *m, int id, double v);
/* Closes the tick for second ts_ms (floored to 1000): moves the values put
 * since the last tick into the RAM ring (series not put get NaN) and queues
 * the tick's raw row for the writer, which builds the rollup chunks from the
 * raw rows on disk as each 5-minute chunk closes. Never blocks on disk. */
int mem_tick(mem_t *m, int64_t ts_ms);

/* ---- any thread: reading ------------------------------------------------ */
int mem_series_count(mem_t *m);
/* Copies out every series (sorted by name then labels); free(*out) after. */
int mem_series_snapshot(mem_t *m, mem_series_info **out, size_t *n);
/* Copies out the series with ids from from_id on, in id order (ids are
 * handed out in increasing order and never reused); *next_id (if not NULL)
 * gets where the next call should start to see only newer series.
 * free(*out) after. */
int mem_series_since(mem_t *m, int from_id, mem_series_info **out, size_t *n, int *next_id);
/* Whether canonical labels `have` hold every pair of canonical labels `want`
 * ("" matches anything); pairs compare whole, escapes included. */
bool mem_labels_subset(const char *have, const char *want);
/* The end of the pair starting at s in canonical labels: past its closing
 * quote (a ',' or the NUL follows), or the string's end when malformed. */
const char *mem_labels_pair_end(const char *s);
/* Canonical labels as a JSON object {"key": "value", ...}, escapes undone
 * (values past 511 bytes cut); NULL or "" give {}. */
struct json_t *mem_labels_json(const char *labels);
/* Id of an exact series, or -ENOENT. */
int mem_series_find(mem_t *m, const char *name, const char *labels);
/* Last value (NaN if none) and its time (ms, 0 if none) of one series,
 * without copying the series list. 0 or -ENOENT. */
int mem_series_last(mem_t *m, int id, double *v, int64_t *ts);
/* Points of one series in [from_ms, to_ms] bucketed by step_ms (>= 1000; 0 =
 * pick one giving at most max_points points). Chooses the source by range:
 * the RAM window when it covers from_ms, else the finest rollup tier still
 * retained at from_ms. Empty buckets are omitted. *src_out gets MEM_SRC_*.
 * Errors: -EINVAL bad range/step (message in err), -E2BIG more than
 * max_points points would be returned, -ENOENT unknown id. free(*out). */
int mem_query(mem_t *m, int id, int64_t from_ms, int64_t to_ms, int64_t step_ms,
              int64_t max_points, mem_point **out, size_t *n, int *src_out,
              char *err, size_t errlen);
void mem_get_stats(mem_t *m, mem_stats *st);

/* ---- events (any thread) ---------------------------------------------------- */
/* Appends an event (ts_ms 0 = now). payload_json must be a JSON object text
 * (NULL = "{}"). Returns the new id (> 0) or -errno. Written by the writer
 * thread; visible to mem_events_wait at once. */
int64_t mem_event_add(mem_t *m, int64_t ts_ms, const char *type, const char *severity,
                      const char *source, const char *payload_json);
int mem_events_query(mem_t *m, const mem_event_query *q, mem_event **out, size_t *n,
                     char *err, size_t errlen);
/* Blocks up to timeout_ms for events with id > after_id (kept in RAM, the last
 * 4096); returns how many were copied into *out (0 on timeout), or -errno.
 * Returns early (0) after mem_wake_waiters. */
int mem_events_wait(mem_t *m, int64_t after_id, int timeout_ms, mem_event **out, size_t *n);
void mem_events_free(mem_event *ev, size_t n);
void mem_wake_waiters(mem_t *m); /* used at shutdown */
int64_t mem_last_event_id(mem_t *m);
int mem_severity_rank(const char *sev); /* 0..4, -1 if unknown */

/* ---- tick values (loop thread) ---------------------------------------------- */
/* Copies the values of the tick at ts_ms (as mem_tick stored it in the RAM
 * window) of series ids [0, n) into vals: NaN where a series had none (or
 * when that second is not in the window). Returns the number of ids the
 * store has (1 + the highest id), which may exceed n: call again with more
 * room to get them all. */
int mem_tick_values(mem_t *m, int64_t ts_ms, float *vals, int n);

/* ---- detector state (src/detect; schema version 2) -------------------------------- */
#define MEM_BLOB_MAX 65536

typedef struct mem_blob {
    int series;       /* series id */
    const void *data; /* opaque bytes (detect_save's), 1..MEM_BLOB_MAX */
    size_t len;
} mem_blob;

/* Queues one writer job storing every blob (a series' blob replaces its older
 * one), stamped ts_ms (0 = now), in one transaction. A blob not saved again
 * for 30 days is pruned with the rest. Copies the bytes; never
 * waits on the disk. 0; -ENOBUFS when two saves are still waiting (the disk
 * is slow or full: try again later); -EINVAL (bad series id or length),
 * -ENOMEM. A save that cannot be committed is dropped, not retried. Any thread. */
int mem_detector_save(mem_t *m, const mem_blob *b, size_t n, int64_t ts_ms);
/* Calls fn for each stored blob in series order, through the reader
 * connection (committed saves only: mem_flush first to include queued ones);
 * fn's non-zero return stops the walk and is returned. 0, fn's value, or
 * -errno with the reason in err. Any thread. */
int mem_detector_load(mem_t *m, int (*fn)(void *ud, int series, const void *data, size_t len), void *ud,
                      char *err, size_t errlen);

/* ---- the brain's cases (src/brain; schema version 3) ---------------------------- */
/* Queues one writer job storing case id's JSON text (replacing an older row),
 * stamped ts_ms (0 = now); never waits on the disk; a failed batch retries it.
 * 0, -EINVAL, -E2BIG (over 64 KiB), -ENOMEM. Any thread. */
int mem_case_save(mem_t *m, int64_t id, int64_t ts_ms, const char *json);
/* Calls fn for each stored case in id order through the reader connection
 * (committed saves only); fn's non-zero return stops the walk and is
 * returned. 0, fn's value, or -errno with the reason in err. Any thread. */
int mem_case_load(mem_t *m, int (*fn)(void *ud, int64_t id, int64_t ts, const char *json), void *ud,
                  char *err, size_t errlen);

/* ---- knowledge (know*.c; its own SQLite file, STATE/knowledge.db) ---------------- */
/* Documents cut into chunks with provenance, indexed twice: SQLite FTS5
 * (BM25) and an embedding per chunk searched exactly (SIMD); answers fuse
 * both rankings (docs/knowledge.md, Search). Memories carry a confidence that decays
 * with disuse; typed links join incidents, causes, actions, components,
 * knobs, documents and papers. Every function is thread-safe (one internal
 * mutex); none is called from the loop thread (they touch the disk). */
typedef struct mem_know mem_know;

#define MEM_KNOW_DIM 256 /* the built-in embedding's dimensions */

int mem_know_open(const char *path, mem_know **out, char *err, size_t errlen);
void mem_know_close(mem_know *k);

/* An external embedder (the daemon wires llm_embed): n texts -> n*dims floats.
 * NULL = the built-in embedding. A store keeps the dims it was built with;
 * a change of embedder re-embeds on the next mem_know_reembed. */
typedef int (*mem_embed_fn)(void *ud, const char *const *texts, size_t n, float *out, int dims, char *err,
                            size_t errlen);
void mem_know_set_embedder(mem_know *k, mem_embed_fn fn, void *ud, int dims);

typedef struct mem_doc {
    const char *source; /* path, URL, "feed:URL#entry-id", "digest:2026-12-05": unique */
    const char *title;
    const char *kind;   /* "markdown","text","html","man","pdf","runbook","paper","digest","note" */
    const char *text;   /* plain text, already parsed by the caller */
    int64_t ts_ms;      /* the document's own date; 0 = now */
    double confidence;  /* 0..1; 0 = 1.0 */
    bool pinned;        /* never decays away (runbooks the operator gave) */
} mem_doc;

/* Cuts d into chunks, indexes and embeds them; a newer add of the same
 * source replaces the older; an unchanged text is 0 with *chunks = 0.
 * 0 with *doc_id, *chunks (either may be NULL); -EINVAL (empty text, no
 * source), -EIO with the reason in err. */
int mem_know_add(mem_know *k, const mem_doc *d, int64_t *doc_id, int *chunks, char *err, size_t errlen);
int mem_know_remove(mem_know *k, const char *source); /* 0 or -ENOENT */

enum { MEM_KNOW_HYBRID = 0, MEM_KNOW_BM25 = 1, MEM_KNOW_VECTOR = 2 };

typedef struct mem_hit {
    int64_t chunk, doc;
    char *source, *title, *kind, *text; /* malloc'd */
    double score;                       /* fused score, or the one ranking's */
    int rank_bm25, rank_vec;            /* 1-based; 0 = not in that list */
    double confidence;
    int64_t ts_ms;
} mem_hit;

/* The best `limit` chunks for query; each hit's use is counted (it refreshes
 * its decay). 0 with *out and *n (mem_know_hits_free), -EINVAL, -EIO. */
int mem_know_search(mem_know *k, const char *query, int mode, int limit, mem_hit **out, size_t *n, char *err,
                    size_t errlen);
void mem_know_hits_free(mem_hit *h, size_t n);

/* Typed links between nodes named "KIND:ID" (incident:12, case:3, doc:5,
 * chunk:9, component:nginx, knob:vm.swappiness, action:restart,
 * cause:oom_kill, paper:2501.01234): 0 or -EINVAL/-EIO. A repeated link
 * adds to its weight. */
int mem_know_link(mem_know *k, const char *from, const char *rel, const char *to, double weight, char *err,
                  size_t errlen);
/* Links within depth (1..3) of node: malloc'd JSON array of
 * {"from","rel","to","weight","ts"}; NULL on error. */
char *mem_know_links_json(mem_know *k, const char *node, int depth);

/* Dreaming's tools. decay: confidence *= 0.5^(unused time / half_life) for
 * every memory not pinned; one under floor is forgotten (links too).
 * dedup: merges chunks whose embeddings have cosine >= threshold (keeps the
 * older, moving its links). reembed: every chunk with the current embedder
 * and statistics. 0 or -errno; counts may be NULL. */
int mem_know_decay(mem_know *k, int64_t now_ms, int64_t half_life_ms, double floor, int *decayed, int *forgotten);
int mem_know_dedup(mem_know *k, double threshold, int *merged);
int mem_know_reembed(mem_know *k, int *n);

/* Small named values kept with the knowledge (feeds' state, the digest's
 * last day): value malloc'd or NULL when absent. */
int mem_know_meta_set(mem_know *k, const char *key, const char *value);
char *mem_know_meta_get(mem_know *k, const char *key);

/* {"docs","chunks","links","bytes","embedder","dims"} and the newest docs
 * [{"id","source","title","kind","chunks","ts","confidence"}]: malloc'd JSON. */
char *mem_know_stats_json(mem_know *k);
char *mem_know_docs_json(mem_know *k, int limit);

/* ---- the operators' preferences (src/brain/prefs.c; schema version 4) ----------- */
/* Queues one writer job storing preference id's JSON text (replacing an older
 * row), stamped ts_ms (0 = now); json NULL deletes the row (forgotten). Never
 * waits on the disk; a failed batch retries it. 0, -EINVAL, -E2BIG (over
 * 64 KiB), -ENOMEM. Any thread. */
int mem_pref_save(mem_t *m, int64_t id, int64_t ts_ms, const char *json);
/* Calls fn for each stored preference in id order through the reader
 * connection (committed saves only); fn's non-zero return stops the walk and
 * is returned. 0, fn's value, or -errno with the reason in err. Any thread. */
int mem_pref_load(mem_t *m, int (*fn)(void *ud, int64_t id, int64_t ts, const char *json), void *ud,
                  char *err, size_t errlen);

#endif
