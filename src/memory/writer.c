/* writer.c: the writer thread. Jobs (tick batches, new series, events,
 * detector state) come
 * through a bounded queue; each wake-up commits everything pending in one
 * transaction with prepared statements, then builds the rollup chunks that
 * closed (rollup.c) and runs the pruning a tick job asked for. Tick and event
 * jobs are dropped (and counted) when their quota is full, so producers never
 * wait on the disk.
 *
 * When a batch cannot be committed (disk full, read-only, I/O error), its
 * raw rows are dropped (counted in dropped_batches; the RAM window still has
 * them) but its series registrations and events are kept, in order, in a
 * writer-only retry list put in front of the next batch (the loop ticks every
 * second; mem_close makes a last attempt), so they reach the disk once it has
 * room again. A batch's jobs leave the queue accounting (qdepth, qevents,
 * seq_done) when it is attempted, committed or not: mem_flush waits for an
 * attempt, never for free space. Events only count as committed (for
 * mem_events_query) once they are. */
#include "memory/mem_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct batch {
    int njobs, nticks, nevents, nstates; /* queued jobs only (not the retried ones) */
    uint64_t last_seq, rows;
    int64_t last_event;         /* highest event id in the batch, retried ones too */
    int64_t last_tick; /* ts of the newest raw row written, 0 if none */
    int hwm;           /* series_hwm once the batch is committed */
    int kept_series, kept_events; /* failed: jobs kept for a retry */
    mem_job *culprit;  /* failed: the job whose statement failed, if any */
    int fail_rc;       /* failed: the SQLite error */
    mem_prune prune;
} batch;

void mem_job_free(mem_job *j)
{
    free(j);
}

static void warn_drop(mem_t *m)
{
    int64_t now = core_mono_ms();
    if (m->last_drop_warn && now - m->last_drop_warn < 60000)
        return;
    m->last_drop_warn = now;
    log_warn("memory: the disk is not keeping up: dropped a batch (%llu dropped so far)",
             (unsigned long long)m->dropped);
}

int mem_enqueue(mem_t *m, mem_job *j, bool force, uint64_t *seq)
{
    pthread_mutex_lock(&m->qlock);
    bool full = (j->kind == MEM_JOB_TICK && m->qticks >= MEM_QUEUE_MAX_TICKS) ||
                (j->kind == MEM_JOB_EVENT && m->qevents >= MEM_QUEUE_MAX_EVENTS) ||
                (j->kind == MEM_JOB_STATE && m->qstates >= MEM_QUEUE_MAX_STATES);
    if (full && !force) {
        if (j->kind != MEM_JOB_STATE) { /* a refused state save is the caller's to report */
            m->dropped++;
            warn_drop(m);
        }
        pthread_mutex_unlock(&m->qlock);
        mem_job_free(j);
        return -ENOBUFS;
    }
    j->seq = ++m->seq_enq;
    j->next = NULL;
    if (seq)
        *seq = j->seq; /* j belongs to the writer once the lock is released */
    if (m->qtail)
        m->qtail->next = j;
    else
        m->qhead = j;
    m->qtail = j;
    m->qdepth++;
    m->qticks += j->kind == MEM_JOB_TICK;
    m->qevents += j->kind == MEM_JOB_EVENT;
    m->qstates += j->kind == MEM_JOB_STATE;
    pthread_cond_signal(&m->qcond);
    pthread_mutex_unlock(&m->qlock);
    return 0;
}

int mem_wait_seq(mem_t *m, uint64_t seq, int timeout_ms)
{
    struct timespec dl;
    int rc = 0;
    mem_deadline(&dl, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&m->qlock);
    while (m->seq_done < seq && rc != ETIMEDOUT) {
        if (timeout_ms < 0)
            pthread_cond_wait(&m->dcond, &m->qlock);
        else
            rc = pthread_cond_timedwait(&m->dcond, &m->qlock, &dl);
    }
    bool done = m->seq_done >= seq;
    pthread_mutex_unlock(&m->qlock);
    return done ? 0 : -ETIMEDOUT;
}

int mem_flush(mem_t *m, int timeout_ms)
{
    if (!m)
        return -EINVAL;
    pthread_mutex_lock(&m->qlock);
    uint64_t seq = m->seq_enq;
    pthread_mutex_unlock(&m->qlock);
    return mem_wait_seq(m, seq, timeout_ms);
}

/* ---- applying jobs -------------------------------------------------------- */

/* Runs a bound statement; constraint failures skip the row, others fail the
 * batch. Returns 0, -1 (row skipped) or an SQLite error (> 0). */
static int step(mem_t *m, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return 0;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        log_warn("memory: %s: row skipped: %s", m->path, sqlite3_errstr(rc));
        return -1;
    }
    return rc;
}

/* The raw blob is float32 little-endian; swapped in place on big-endian. */
static const void *raw_blob(float *vals, int n)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &vals[i], 4);
        u = __builtin_bswap32(u);
        memcpy(&vals[i], &u, 4);
    }
#else
    (void)n;
#endif
    return vals;
}

static int apply_tick(mem_t *m, mem_job *j, batch *b)
{
    int rc;
    if (j->u.tick.delete_after) {
        sqlite3_bind_int64(m->st_raw_del_after, 1, j->u.tick.delete_after);
        if ((rc = step(m, m->st_raw_del_after)) > 0)
            return rc;
        if ((rc = mem_rollup_rewind(m, j->u.tick.delete_after)) > 0)
            return rc;
    }
    if (j->u.tick.ts) {
        sqlite3_bind_int64(m->st_raw, 1, j->u.tick.ts);
        sqlite3_bind_blob(m->st_raw, 2, raw_blob(j->u.tick.vals, j->u.tick.nvals),
                          j->u.tick.nvals * 4, SQLITE_STATIC);
        if ((rc = step(m, m->st_raw)) > 0)
            return rc;
        b->rows += rc == 0;
        b->last_tick = j->u.tick.ts;
        /* the ids this row has values for stay reserved across a restart,
         * whatever happens to their series rows (store.c) */
        if (j->u.tick.nvals > b->hwm) {
            sqlite3_bind_text(m->st_meta, 1, "series_hwm", -1, SQLITE_STATIC);
            sqlite3_bind_int(m->st_meta, 2, j->u.tick.nvals);
            if ((rc = step(m, m->st_meta)) > 0)
                return rc;
            b->hwm = j->u.tick.nvals;
        }
    }
    if (j->u.tick.prune.ref > b->prune.ref)
        b->prune = j->u.tick.prune;
    return 0;
}

static int apply_series(mem_t *m, mem_job *j, batch *b)
{
    sqlite3_stmt *st = m->st_series;
    sqlite3_bind_int(st, 1, j->u.series.id);
    sqlite3_bind_text(st, 2, j->u.series.name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, j->u.series.labels, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, j->u.series.unit, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, j->u.series.help, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 6, j->u.series.kind);
    int rc = step(m, st);
    b->rows += rc == 0;
    return rc;
}

static int apply_event(mem_t *m, mem_job *j, batch *b)
{
    sqlite3_stmt *st = m->st_event;
    sqlite3_bind_int64(st, 1, j->u.ev.id);
    sqlite3_bind_int64(st, 2, j->u.ev.ts);
    sqlite3_bind_text(st, 3, j->u.ev.type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, j->u.ev.severity, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, j->u.ev.source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, j->u.ev.payload, -1, SQLITE_STATIC);
    int rc = step(m, st);
    b->rows += rc == 0;
    return rc;
}

/* Stores every blob of a detector state job (replacing older ones). */
static int apply_state(mem_t *m, mem_job *j, batch *b)
{
    const char *p = j->data;
    for (int i = 0; i < j->u.state.n; i++) {
        mem_state_rec r;
        memcpy(&r, p, sizeof r);
        sqlite3_stmt *st = m->st_state;
        sqlite3_bind_int(st, 1, r.series);
        sqlite3_bind_blob(st, 2, p + sizeof r, (int)r.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, j->u.state.ts);
        int rc = step(m, st);
        if (rc > 0)
            return rc;
        b->rows += rc == 0;
        p += (sizeof r + r.len + 7) & ~(size_t)7;
    }
    return 0;
}

/* Counts the job in the batch (unless it is a retried one) and, when
 * `write`, applies it. */
static int apply_job(mem_t *m, mem_job *j, batch *b, bool write, bool count)
{
    if (count) {
        b->njobs++;
        b->last_seq = j->seq;
        b->nticks += j->kind == MEM_JOB_TICK;
        b->nevents += j->kind == MEM_JOB_EVENT;
        b->nstates += j->kind == MEM_JOB_STATE;
    }
    if (j->kind == MEM_JOB_EVENT && j->u.ev.id > b->last_event)
        b->last_event = j->u.ev.id;
    if (j->kind == MEM_JOB_SQL) { /* test hook: runs even in a failing batch */
        m->test_sql_rc = mem_sql_exec(m->wdb, j->u.sql.sql);
        return 0;
    }
    if (!write)
        return 0;
    switch (j->kind) {
    case MEM_JOB_TICK: return apply_tick(m, j, b);
    case MEM_JOB_SERIES: return apply_series(m, j, b);
    case MEM_JOB_STATE: return apply_state(m, j, b);
    case MEM_JOB_CASE: return mem_case_apply(m, j);
    case MEM_JOB_PREF: return mem_pref_apply(m, j);
    default: return apply_event(m, j, b);
    }
}

/* Writer thread only: at most one message a minute. */
static void log_sql_error(mem_t *m, int rc, const char *what)
{
    int64_t now = core_mono_ms();
    if (m->last_err_log && now - m->last_err_log < 60000)
        return;
    m->last_err_log = now;
    log_err("memory: %s: %s: %s (%s)", m->path, what, sqlite3_errmsg(m->wdb), sqlite3_errstr(rc));
}

/* Errors that say nothing about the row being written: the same job is
 * expected to go through later. Any other error of a series or event job
 * (a row the store can never take) drops it, so it cannot block every
 * later batch. */
static bool transient(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL: case SQLITE_IOERR: case SQLITE_READONLY: case SQLITE_BUSY:
    case SQLITE_LOCKED: case SQLITE_NOMEM: case SQLITE_CANTOPEN: case SQLITE_PERM:
    case SQLITE_PROTOCOL: case SQLITE_INTERRUPT:
        return true;
    default:
        return false;
    }
}

static bool keep_for_retry(const mem_job *j)
{
    return j->kind == MEM_JOB_SERIES || j->kind == MEM_JOB_EVENT || j->kind == MEM_JOB_CASE ||
           j->kind == MEM_JOB_PREF;
}

/* Bounds the events of the retry list: drops the oldest beyond
 * MEM_QUEUE_MAX_EVENTS (series jobs always stay). */
static void trim_retry(mem_t *m)
{
    int excess = m->retry_events - MEM_QUEUE_MAX_EVENTS, dropped = 0;
    for (mem_job **pp = &m->retry; *pp && dropped < excess;) {
        mem_job *j = *pp;
        if (j->kind != MEM_JOB_EVENT) {
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        mem_job_free(j);
        dropped++;
    }
    if (dropped <= 0)
        return;
    m->retry_events -= dropped;
    m->retry_ev_dropped += (uint64_t)dropped;
    int64_t now = core_mono_ms();
    if (m->last_retry_warn && now - m->last_retry_warn < 60000)
        return;
    m->last_retry_warn = now;
    log_warn("memory: %s: cannot write: dropped the oldest events waiting for a retry "
             "(%llu dropped so far)", m->path, (unsigned long long)m->retry_ev_dropped);
}

/* After a failed commit: the series and event jobs of the retry list and of
 * `list` (in this order) become the new retry list; the rest is freed. */
static void requeue(mem_t *m, mem_job *list, batch *b, int rc)
{
    mem_job **tail = &m->retry;
    while (*tail)
        tail = &(*tail)->next;
    *tail = list;
    mem_job *all = m->retry;
    m->retry = NULL;
    m->retry_events = 0;
    tail = &m->retry;
    for (mem_job *j = all, *n; j; j = n) {
        n = j->next;
        if (j == b->culprit && keep_for_retry(j) && !transient(rc)) {
            log_err("memory: %s: cannot write %s %lld: %s: dropped", m->path,
                    j->kind == MEM_JOB_SERIES ? "series" : "event",
                    j->kind == MEM_JOB_SERIES ? (long long)j->u.series.id : (long long)j->u.ev.id,
                    sqlite3_errstr(rc));
            mem_job_free(j);
        } else if (keep_for_retry(j)) {
            *tail = j;
            tail = &j->next;
            m->retry_events += j->kind == MEM_JOB_EVENT;
            b->kept_series += j->kind == MEM_JOB_SERIES;
        } else {
            mem_job_free(j);
        }
    }
    *tail = NULL;
    trim_retry(m);
    b->kept_events = m->retry_events;
}

static void free_list(mem_job *list)
{
    while (list) {
        mem_job *n = list->next;
        mem_job_free(list);
        list = n;
    }
}

/* Commits the retry list then `list` in one transaction. Committed: frees
 * both. Failed: keeps their series and event jobs as the new retry list. */
static bool commit_list(mem_t *m, mem_job *list, batch *b)
{
    int rc = mem_sql_exec(m->wdb, "BEGIN IMMEDIATE");
    for (int pass = 0; pass < 2; pass++) {
        for (mem_job *j = pass ? list : m->retry; j; j = j->next) {
            int r = apply_job(m, j, b, rc == 0, pass == 1);
            if (r > 0 && !rc) {
                rc = r;
                b->culprit = j;
            }
        }
    }
    if (!rc)
        rc = mem_sql_exec(m->wdb, "COMMIT");
    if (!rc) {
        free_list(m->retry);
        free_list(list);
        m->retry = NULL;
        m->retry_events = 0;
        return true;
    }
    b->rows = 0;
    b->fail_rc = rc;
    requeue(m, list, b, rc);
    char what[128];
    snprintf(what, sizeof what, "cannot write: %d ticks dropped, %d series and %d events kept "
             "for a retry", b->nticks, b->kept_series, b->kept_events);
    log_sql_error(m, rc, what); /* before the rollback replaces the error message */
    mem_sql_exec(m->wdb, "ROLLBACK");
    return false;
}

static int exec_i64(sqlite3 *db, const char *sql, int64_t v)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, v);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

/* Deletes what fell out of every retention, by primary key / index ranges,
 * but never what a coarser tier has not been built from yet (rollup.c says
 * where). The event id high-water mark is kept so ids never go back. */
static void prune(mem_t *m, const mem_prune *p)
{
    char sql[160];
    int rc = mem_sql_exec(m->wdb, "BEGIN IMMEDIATE");
    if (!rc)
        rc = exec_i64(m->wdb, "DELETE FROM raw WHERE ts < ?", mem_raw_prune_before(m, p));
    for (int t = 0; t < MEM_NTIERS && !rc; t++) {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE series IN (SELECT id FROM series) "
                 "AND chunk_ts < ?", mem_tier_table[t]);
        rc = exec_i64(m->wdb, sql, mem_tier_prune_before(m, p, t));
    }
    if (!rc)
        rc = mem_sql_exec(m->wdb, "INSERT INTO meta(key, value) SELECT 'event_hwm', max(id) FROM events "
                          "WHERE true HAVING max(id) IS NOT NULL ON CONFLICT(key) DO UPDATE SET "
                          "value = max(value, excluded.value)");
    if (!rc)
        rc = exec_i64(m->wdb, "DELETE FROM events WHERE ts < ?", p->ref - p->ev_ret);
    if (!rc) /* detectors of series not seen for a month */
        rc = exec_i64(m->wdb, "DELETE FROM detector_state WHERE saved_ms < ?", p->ref - MEM_STATE_KEEP_MS);
    if (!rc)
        rc = mem_sql_exec(m->wdb, "COMMIT");
    if (rc) {
        log_sql_error(m, rc, "cannot prune");
        mem_sql_exec(m->wdb, "ROLLBACK");
    }
}

static void finish_batch(mem_t *m, const batch *b, bool ok)
{
    if (ok && b->last_event)
        mem_events_committed(m, b->last_event);
    pthread_mutex_lock(&m->qlock);
    if (b->njobs) { /* queued jobs are done with, committed or not */
        m->seq_done = b->last_seq;
        m->qdepth -= b->njobs;
        m->qticks -= b->nticks;
        m->qevents -= b->nevents;
        m->qstates -= b->nstates;
    }
    if (ok) {
        m->batches++;
        m->rows_written += b->rows;
        m->wfail_since = 0; /* the store writes again */
    } else if (b->nticks) { /* its raw rows are lost (the rest is retried) */
        m->dropped++;
    }
    if (!ok && transient(b->fail_rc) && !m->wfail_since) { /* the disk refuses writes: a state */
        m->wfail_since = core_now_ms();
        m->wfail_rc = b->fail_rc;
    }
    pthread_cond_broadcast(&m->dcond);
    pthread_mutex_unlock(&m->qlock);
}

/* One wake-up: the retry list and `list` (NULL: the last attempt at close)
 * in one transaction, then rollups and pruning. */
static void run_batch(mem_t *m, mem_job *list)
{
    batch b = {.hwm = m->series_hwm};
    bool ok = commit_list(m, list, &b);
    if (ok) {
        if (b.last_tick)
            m->last_raw = b.last_tick;
        m->series_hwm = b.hwm;
    } else {
        mem_rollup_load(m); /* a rewind may have been rolled back */
    }
    mem_rollup_catchup(m);
    if (b.prune.ref)
        prune(m, &b.prune);
    finish_batch(m, &b, ok);
}

static void *writer_main(void *arg)
{
    mem_t *m = arg;
    pthread_mutex_lock(&m->qlock);
    for (;;) {
        while ((!m->qhead || m->test_hold) && !m->stop)
            pthread_cond_wait(&m->qcond, &m->qlock);
        if (!m->qhead)
            break;
        mem_job *list = m->qhead;
        m->qhead = m->qtail = NULL;
        pthread_mutex_unlock(&m->qlock);
        run_batch(m, list);
        pthread_mutex_lock(&m->qlock);
    }
    pthread_mutex_unlock(&m->qlock);
    if (m->retry) /* a last attempt at close */
        run_batch(m, NULL);
    if (m->retry) {
        int ns = 0, ne = 0;
        for (mem_job *j = m->retry; j; j = j->next) {
            ns += j->kind == MEM_JOB_SERIES;
            ne += j->kind == MEM_JOB_EVENT;
        }
        log_err("memory: %s: closing with %d series registrations and %d events that could "
                "not be written: lost", m->path, ns, ne);
        free_list(m->retry);
        m->retry = NULL;
        m->retry_events = 0;
    }
    return NULL;
}

/* ---- test hooks ------------------------------------------------------------ */

int mem_test_writer_exec(mem_t *m, const char *sql)
{
    size_t n = strlen(sql) + 1;
    mem_job *j = calloc(1, sizeof *j + n);
    if (!j)
        return -ENOMEM;
    j->kind = MEM_JOB_SQL;
    j->u.sql.sql = memcpy(j->data, sql, n);
    uint64_t seq;
    int rc = mem_enqueue(m, j, true, &seq);
    if (rc)
        return rc;
    mem_wait_seq(m, seq, -1);
    pthread_mutex_lock(&m->qlock);
    rc = m->test_sql_rc;
    pthread_mutex_unlock(&m->qlock);
    return rc;
}

void mem_test_hold(mem_t *m, bool hold)
{
    pthread_mutex_lock(&m->qlock);
    m->test_hold = hold;
    pthread_cond_signal(&m->qcond);
    pthread_mutex_unlock(&m->qlock);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static int prep(mem_t *m, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v3(m->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc)
        return core_err(err, errlen, -EIO, "%s: cannot prepare: %s", m->path, sqlite3_errmsg(m->wdb));
    return 0;
}

int mem_writer_prepare(mem_t *m, char *err, size_t errlen)
{
    int rc = prep(m, "INSERT OR REPLACE INTO raw(ts, v) VALUES (?, ?)", &m->st_raw, err, errlen);
    if (!rc)
        rc = prep(m, "INSERT INTO series(id, name, labels, unit, help, kind) VALUES (?, ?, ?, ?, ?, ?) "
                  "ON CONFLICT(id) DO UPDATE SET unit = excluded.unit, help = excluded.help, "
                  "kind = excluded.kind", &m->st_series, err, errlen);
    if (!rc)
        rc = prep(m, "INSERT INTO events(id, ts, type, severity, source, payload) "
                  "VALUES (?, ?, ?, ?, ?, ?)", &m->st_event, err, errlen);
    if (!rc)
        rc = prep(m, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", &m->st_meta, err, errlen);
    if (!rc)
        rc = prep(m, "DELETE FROM raw WHERE ts >= ?", &m->st_raw_del_after, err, errlen);
    if (!rc)
        rc = prep(m, "INSERT OR REPLACE INTO detector_state(series, data, saved_ms) VALUES (?, ?, ?)",
                  &m->st_state, err, errlen);
    if (!rc)
        rc = prep(m, "INSERT OR REPLACE INTO cases(id, ts, data) VALUES (?, ?, ?)", &m->st_case, err, errlen);
    if (!rc)
        rc = mem_rollup_prepare(m, err, errlen);
    return rc;
}

int mem_writer_start(mem_t *m, char *err, size_t errlen)
{
    /* chunks that closed before a kill -9 or a stop but were not written:
     * built now, so that mem_open returns with every tier up to date */
    mem_rollup_catchup(m);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals go to the loop thread */
    int rc = pthread_create(&m->thread, NULL, writer_main, m);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return core_err(err, errlen, -rc, "memory: cannot start the writer thread: %s", strerror(rc));
    m->thread_started = true;
    return 0;
}

void mem_writer_stop(mem_t *m)
{
    if (m->thread_started) {
        pthread_mutex_lock(&m->qlock);
        m->stop = true;
        pthread_cond_signal(&m->qcond);
        pthread_mutex_unlock(&m->qlock);
        pthread_join(m->thread, NULL);
        m->thread_started = false;
    }
    sqlite3_finalize(m->st_raw);
    mem_rollup_finalize(m);
    sqlite3_finalize(m->st_series);
    sqlite3_finalize(m->st_event);
    sqlite3_finalize(m->st_meta);
    sqlite3_finalize(m->st_raw_del_after);
    sqlite3_finalize(m->st_state);
    sqlite3_finalize(m->st_case);
}
