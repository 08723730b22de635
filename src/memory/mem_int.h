/* mem_int.h: internals of HiDB shared by the files of src/memory/ (never
 * included from outside the module).
 *
 * Layout of the RAM state (all under mem->lock unless said otherwise):
 *  - series registry: ser[id] (NULL for holes), a hash of (name, labels) -> id;
 *  - cur[id]: the tick being built (loop thread only, no lock needed);
 *  - ser[id]->ring[slot]: float32 ring of nslots seconds, slot = ts/1000 % N;
 *    tick_ts[slot] says which second a slot holds (a slot is valid for second
 *    s only if tick_ts[slot] == s), so gaps need no clearing;
 *  - acc[tier][id]: min/max/sum/count of the open bucket of each tier.
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
#define MEM_PRUNE_EVERY_MS 60000
#define MEM_EVENT_PAYLOAD_MAX 65536
#define MEM_NAME_MAX 127
#define MEM_LABELS_MAX 511
#define MEM_UNIT_MAX 63
#define MEM_HELP_MAX 1023
#define MEM_APP_ID 0x49504f43        /* "IPOC" in PRAGMA application_id */
#define MEM_NO_BUCKET INT64_MIN

extern const int64_t mem_tier_width[MEM_NTIERS]; /* 10 s, 1 min, 1 h in ms */
extern const char *const mem_tier_table[MEM_NTIERS];

/* Open-bucket accumulator of one series in one tier (24 bytes). */
typedef struct mem_acc {
    float min, max;
    uint32_t count;
    double sum;
} mem_acc;

/* One series; the ring follows the struct in the same allocation. */
typedef struct mem_ser {
    char *name, *labels, *unit, *help;
    int kind;
    float last_v;
    int64_t last_ts;
    float ring[];
} mem_ser;

/* One rollup row as queued to the writer. */
typedef struct mem_rrow {
    int32_t id;
    float min, max;
    uint32_t count;
    double sum;
} mem_rrow;

/* The rows of one tier bucket: closed (final) or a checkpoint of the open
 * one (then meta upto_<tier> = upto, in the same transaction). */
typedef struct mem_rset {
    int tier;
    bool ckpt;
    int64_t ts, upto;
    int32_t nrows;
    mem_rrow *rows;
} mem_rset;

enum { MEM_JOB_TICK, MEM_JOB_SERIES, MEM_JOB_EVENT };

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
            int nsets;
            mem_rset sets[2 * MEM_NTIERS];
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
    } u;
    char data[]; /* strings / arrays the union points into */
} mem_job;

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
    mem_acc *acc[MEM_NTIERS];
    int32_t *htab;    /* open addressing, -1 = empty */
    uint32_t hmask;
    int64_t *tick_ts;
    int64_t last_tick, ring_start; /* 0 when no tick yet */
    int64_t bucket[MEM_NTIERS];    /* open bucket start or MEM_NO_BUCKET */
    int64_t upto[MEM_NTIERS];      /* last checkpointed tick of the tier */
    uint64_t closed_seq[MEM_NTIERS]; /* job seq that carried the last closed bucket */
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
    int qdepth, qticks, qevents;
    uint64_t seq_enq, seq_done;
    bool stop;
    uint64_t rows_written, batches, dropped;
    int64_t last_drop_warn;
    int64_t last_err_log;          /* writer thread only */
    pthread_t thread;
    bool thread_started;
    sqlite3 *wdb;
    sqlite3_stmt *st_raw, *st_roll[MEM_NTIERS], *st_series, *st_event, *st_meta;
    sqlite3_stmt *st_raw_del_after;

    /* ---- reader (rlock) ---- */
    pthread_mutex_t rlock;
    sqlite3 *rdb;

    /* ---- events (evlock) ---- */
    pthread_mutex_t evlock;
    pthread_cond_t evcond;
    mem_evslot *evring;
    int64_t ev_last, ev_committed;
    bool woken;
};

/* util.c */
int mem_err(char *err, size_t errlen, int rc, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
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
void mem_series_free_all(mem_t *m);

/* ring.c */
void mem_acc_reset(mem_acc *a, int n);
void mem_acc_add(mem_acc *a, float v);
void mem_acc_merge(mem_acc *a, const mem_acc *b);
int mem_ring_slot(const mem_t *m, int64_t ts);
void mem_ring_store(mem_t *m, int64_t ts, const float *vals, int n);
int64_t mem_oldest_ram(const mem_t *m);
mem_job *mem_ckpt_job(mem_t *m);

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

/* events.c */
int mem_events_init(mem_t *m);
void mem_events_fini(mem_t *m);
void mem_events_committed(mem_t *m, int64_t id);

#endif
