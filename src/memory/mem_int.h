/* mem_int.h: internals of HiDB shared by the files of src/memory/ (never
 * included from outside the module).
 *
 * Layout of the RAM state (all under mem->lock unless said otherwise):
 *  - series registry: ser[id] (NULL for holes), a hash of (name, labels) -> id;
 *  - cur[id]: the tick being built (loop thread only, no lock needed);
 *  - ser[id]->ring[slot]: float32 ring of nslots seconds, slot = ts/1000 % N;
 *    tick_ts[slot] says which second a slot holds (a slot is valid for second
 *    s only if tick_ts[slot] == s), so gaps need no clearing.
 * Rollups hold no RAM state on the loop thread: the writer thread derives
 * them from what is on disk (rollup.c), one chunk of buckets per row.
 *
 * Lock order: lock -> qlock, evlock -> qlock; rlock is taken alone. */
#ifndef IPPOC_MEM_INT_H
#define IPPOC_MEM_INT_H

#include "memory/memory.h"

#include <pthread.h>
#include <sqlite3.h>

#define MEM_NTIERS 3
#define MEM_MAX_SERIES (1 << 18)     /* hard cap on series ids */
#define MEM_EV_RING 4096             /* events kept in RAM for waiters */
#define MEM_QUEUE_MAX_TICKS 120      /* tick batches pending before dropping */
#define MEM_QUEUE_MAX_EVENTS MEM_EV_RING /* so every pending event is in RAM */
#define MEM_QUEUE_MAX_STATES 2        /* detector state saves pending before refusing */
#define MEM_STATE_KEEP_MS (30 * 86400000LL) /* a detector state not saved this long is pruned */
#define MEM_PRUNE_EVERY_MS 60000
#define MEM_EVENT_PAYLOAD_MAX 65536
#define MEM_NAME_MAX 127
#define MEM_LABELS_MAX 511
#define MEM_UNIT_MAX 63
#define MEM_HELP_MAX 1023
#define MEM_APP_ID 0x49504f43        /* "IPOC" in PRAGMA application_id */
#define MEM_NO_BUCKET INT64_MIN

extern const int64_t mem_tier_width[MEM_NTIERS]; /* 10 s, 1 min, 1 h in ms */
extern const int64_t mem_chunk_width[MEM_NTIERS]; /* 5 min, 1 h, 1 day in ms */
extern const char *const mem_tier_table[MEM_NTIERS];
extern const char *const mem_tier_done_key[MEM_NTIERS]; /* meta keys */

/* Raw rows are kept for the RAM window plus this (one 10 s chunk and some
 * slack), and never before the 10 s tier has been built from them. */
#define MEM_RAW_EXTRA_MS (mem_chunk_width[0] + 60000)
#define MEM_CHUNK_MAX 60             /* buckets in the largest chunk */
#define MEM_REC_MAX 18               /* bytes of the largest bucket record */

/* One rollup bucket; count 0 = empty. */
typedef struct mem_bucket {
    float min, max, mean;
    uint32_t count;
} mem_bucket;

/* Accumulator of samples or buckets (24 bytes). */
typedef struct mem_acc {
    float min, max;
    uint32_t count;
    double sum;
} mem_acc;

/* Incremental encoder of one chunk (chunk.c): buckets are added in order,
 * at increasing indexes (the skipped ones are empty). */
typedef struct mem_enc {
    uint8_t *p;
    size_t len, cap;
    size_t last;       /* offset of the last record's tag byte, SIZE_MAX: none */
    int next;          /* index of the next bucket */
    int pending_empty; /* empty buckets not written yet (dropped at the end) */
    uint32_t full;     /* samples in a full bucket of the tier */
} mem_enc;

/* One series; the ring follows the struct in the same allocation. */
typedef struct mem_ser {
    char *name, *labels, *unit, *help;
    int kind;
    float last_v;
    int64_t last_ts;
    float ring[];
} mem_ser;

/* MEM_JOB_SQL: test hook only (mem_test_writer_exec). MEM_JOB_STATE: detector
 * state blobs (state.c), never retried after a failed batch (the next save
 * carries newer state). */
enum { MEM_JOB_TICK, MEM_JOB_SERIES, MEM_JOB_EVENT, MEM_JOB_SQL, MEM_JOB_STATE, MEM_JOB_CASE,
       MEM_JOB_PREF /* prefs.c: u.kase with json NULL = delete */ };

/* Retention values copied into a job so the writer needs no lock. */
typedef struct mem_prune {
    int64_t ref;                 /* 0: no pruning with this job */
    int64_t raw_keep_ms;
    int64_t ret[MEM_NTIERS];
    int64_t ev_ret;
} mem_prune;

typedef struct mem_job {
    struct mem_job *next;
    int kind;
    uint64_t seq;
    union {
        struct {
            int64_t ts;          /* 0: no raw row (checkpoint-only job) */
            int64_t delete_after; /* >0: drop raw rows newer (clock reset) */
            int32_t nvals;
            float *vals;
            mem_prune prune;
        } tick;
        struct {
            int id, kind;
            const char *name, *labels, *unit, *help;
        } series;
        struct {
            int64_t id, ts;
            const char *type, *severity, *source, *payload;
        } ev;
        struct {
            const char *sql;
        } sql;
        struct {
            int n;               /* entries in data: mem_state_rec, then its bytes */
            int64_t ts;          /* saved_ms */
        } state;
        struct {
            int64_t id, ts;      /* a brain case (cases.c) */
            const char *json;
        } kase;
    } u;
    char data[]; /* strings / arrays the union points into */
} mem_job;

/* One blob of a MEM_JOB_STATE job: the record, then len bytes, the next
 * record at the following multiple of 8. */
typedef struct mem_state_rec {
    int32_t series;
    uint32_t len;
} mem_state_rec;

/* An event kept in RAM: text = "type\0source\0payload\0". */
typedef struct mem_evslot {
    int64_t id, ts;
    int sev;
    char *text;
} mem_evslot;

struct mem {
    char path[CORE_PATH_MAX + 16];
    int nslots;

    /* ---- RAM state (lock) ---- */
    pthread_mutex_t lock;
    mem_ser **ser;
    int cap;          /* allocated length of ser/cur/acc */
    int next_id;      /* 1 + highest id in use */
    int nser;
    float *cur;
    int32_t *htab;    /* open addressing, -1 = empty */
    uint32_t hmask;
    int64_t *tick_ts;
    int64_t last_tick, ring_start; /* 0 when no tick yet */
    int64_t last_prune;
    uint64_t ticks, samples;
    mem_prune ret;                 /* configured retentions (ref unused) */
    char **garbage;                /* replaced unit/help strings, freed at close */
    size_t ngarbage;
    bool warned_backwards;

    /* ---- writer queue (qlock) ---- */
    pthread_mutex_t qlock;
    pthread_cond_t qcond, dcond;
    mem_job *qhead, *qtail;
    int qdepth, qticks, qevents, qstates;
    uint64_t seq_enq, seq_done;
    bool stop;
    uint64_t rows_written, batches, dropped;
    int64_t wfail_since;           /* (qlock) wall ms writes began failing, 0 = fine */
    int wfail_rc;                  /* (qlock) the SQLite error then */
    int64_t last_drop_warn;
    int64_t last_err_log;          /* writer thread only */
    /* Series and event jobs of a failed batch (disk full, read-only...),
     * writer thread only: put in front of the next batch, in order, until
     * they commit, so a registration or an event is never lost to a
     * transient write error. They already left the queue accounting
     * (qdepth/qevents/seq_done): mem_flush waits for an attempt, not for
     * the disk to have room again. At most MEM_QUEUE_MAX_EVENTS events are
     * kept (the oldest beyond are dropped, counted in retry_ev_dropped);
     * series jobs are never dropped (at most MEM_MAX_SERIES of them). */
    mem_job *retry;
    int retry_events;
    uint64_t retry_ev_dropped;
    int64_t last_retry_warn;
    int series_hwm;                /* meta series_hwm on disk (writer thread) */
    bool test_hold;                /* (qlock) test hook: writer takes no job */
    int test_sql_rc;               /* result of the last MEM_JOB_SQL */
    pthread_t thread;
    bool thread_started;
    sqlite3 *wdb;
    sqlite3_stmt *st_raw, *st_roll[MEM_NTIERS], *st_series, *st_event, *st_meta;
    sqlite3_stmt *st_raw_del_after, *st_state;
    sqlite3_stmt *st_case;         /* cases.c */
    /* rollup builder (writer thread only) */
    sqlite3_stmt *st_raw_range, *st_raw_next, *st_src[MEM_NTIERS], *st_src_next[MEM_NTIERS];
    int64_t done[MEM_NTIERS];      /* meta done_<tier>: every chunk before is final */
    int64_t last_raw;              /* newest committed raw tick, 0 if none */
    /* (qlock) chunk rows written, chunk steps and writer CPU per tier */
    uint64_t chunks_written, chunk_steps[MEM_NTIERS];
    double rollup_cpu_ms[MEM_NTIERS];

    /* ---- reader (rlock) ---- */
    pthread_mutex_t rlock;
    sqlite3 *rdb;

    /* ---- events (evlock) ---- */
    pthread_mutex_t evlock;
    pthread_cond_t evcond;
    mem_evslot *evring;
    int64_t ev_last, ev_committed;
    uint64_t wake_gen;             /* bumped by mem_wake_waiters */
    int ev_waiters;                /* threads blocked in mem_events_wait */
};

/* util.c */
/* store.c: an SQLite result code as -errno (db, may be NULL, gives the
 * system errno of a file that cannot open). */
struct sqlite3;
int mem_sql_errno(struct sqlite3 *db, int rc);
int mem_cond_init(pthread_cond_t *c);
void mem_deadline(struct timespec *ts, int timeout_ms);
int64_t mem_floor(int64_t ts, int64_t step);

/* store.c: opening, schema, restore */
int mem_store_open(mem_t *m, sqlite3 **db, bool readonly, char *err, size_t errlen);
int mem_store_migrate(mem_t *m, char *err, size_t errlen);
int mem_store_load(mem_t *m, char *err, size_t errlen);
int mem_sql_exec(sqlite3 *db, const char *sql);

/* series.c */
int mem_series_insert(mem_t *m, int id, const char *name, const char *labels,
                      const char *unit, const char *help, int kind);
/* Raises next_id to at least next_id (load at open): the ids below it with no
 * series stay holes, never handed to a new series. 0 or -ENOMEM. */
int mem_series_reserve(mem_t *m, int next_id);
void mem_series_free_all(mem_t *m);

/* ring.c */
int mem_ring_slot(const mem_t *m, int64_t ts);
void mem_ring_store(mem_t *m, int64_t ts, const float *vals, int n);
int64_t mem_oldest_ram(const mem_t *m);

/* chunk.c: the bucket encoding of a chunk BLOB */
uint32_t mem_tier_full(int tier);   /* samples in a full bucket: 10, 60, 3600 */
int mem_tier_nbuckets(int tier);    /* buckets in a chunk: 30, 60, 24 */
void mem_enc_init(mem_enc *e, uint32_t full);
void mem_enc_free(mem_enc *e);
int mem_enc_add(mem_enc *e, int index, const mem_bucket *b); /* 0 or -ENOMEM */
size_t mem_enc_finish(mem_enc *e);  /* bytes of the blob; 0 = every bucket empty */
/* Decodes a chunk blob into out[0..n) (empty past its end). 0, or -EINVAL
 * with out undefined when the blob is malformed. */
int mem_chunk_decode(const void *blob, size_t len, int n, uint32_t full, mem_bucket *out);
void mem_acc_reset(mem_acc *a);
void mem_acc_value(mem_acc *a, float v);
void mem_acc_bucket(mem_acc *a, const mem_bucket *b);
mem_bucket mem_acc_get(const mem_acc *a);
/* Value of series id in a raw row blob (float32 LE); NaN past its end. */
float mem_raw_value(const void *blob, int bytes, int id);

/* rollup.c: the writer-thread chunk builder */
int mem_rollup_load(mem_t *m);      /* done marks and newest raw tick from disk */
void mem_rollup_catchup(mem_t *m);  /* builds every closed chunk not yet written */
int mem_rollup_prepare(mem_t *m, char *err, size_t errlen);
void mem_rollup_finalize(mem_t *m);
/* Clock reset (inside the writer's transaction): forgets chunks at or after ts. */
int mem_rollup_rewind(mem_t *m, int64_t ts);
/* Prune limits of raw rows and of each tier, given retentions at ref. */
int64_t mem_raw_prune_before(const mem_t *m, const mem_prune *p);
int64_t mem_tier_prune_before(const mem_t *m, const mem_prune *p, int tier);

/* writer.c */
int mem_writer_start(mem_t *m, char *err, size_t errlen);
void mem_writer_stop(mem_t *m);
int mem_writer_prepare(mem_t *m, char *err, size_t errlen);
/* Queues a job; tick and event jobs are refused when their quota is full
 * (returns -ENOBUFS and frees the job). *seq (if given) gets the job's
 * sequence number; the job belongs to the writer once queued. */
int mem_enqueue(mem_t *m, mem_job *j, bool force, uint64_t *seq);
int mem_wait_seq(mem_t *m, uint64_t seq, int timeout_ms);
void mem_job_free(mem_job *j);

/* Test hooks (writer.c). mem_test_writer_exec runs sql on the writer's own
 * connection (e.g. PRAGMA max_page_count, which is per connection) from the
 * writer thread, in order with the queued jobs, even inside a failing batch;
 * waits for it and returns the SQLite result code. mem_test_hold(true) makes
 * the writer leave the queue alone until mem_test_hold(false), so that a test
 * can put several jobs into one batch (never call mem_flush or
 * mem_test_writer_exec while holding). */
int mem_test_writer_exec(mem_t *m, const char *sql);
void mem_test_hold(mem_t *m, bool hold);

/* cases.c: applies a MEM_JOB_CASE (writer thread): 0 or an SQLite error */
int mem_case_apply(mem_t *m, mem_job *j);
/* cases.c: the JSON-row tables (cases, prefs: id, ts, data). A save is a
 * writer job of that kind (NULL json: delete); a load calls fn on each row in
 * id order through the reader connection (what names the rows in errors). */
int mem_json_row_save(mem_t *m, int kind, int64_t id, int64_t ts_ms, const char *json);
int mem_json_rows_load(mem_t *m, const char *table, const char *what,
                       int (*fn)(void *ud, int64_t id, int64_t ts, const char *json), void *ud, char *err,
                       size_t errlen);
/* prefs.c: applies a MEM_JOB_PREF (writer thread): 0 or an SQLite error */
int mem_pref_apply(mem_t *m, mem_job *j);

/* events.c */
int mem_events_init(mem_t *m);
void mem_events_fini(mem_t *m);
void mem_events_committed(mem_t *m, int64_t id);

#endif
