/* rollup.c: the rollup builder, run by the writer thread after each batch.
 * Rollups are derived from what is already on disk, never from loop-thread
 * state: when a 5 min chunk of raw rows has closed (a newer raw row is
 * committed), its 10 s chunk is built from those raw rows, one BLOB per
 * series (chunk.c); when an hour of 10 s chunks is final, the 1 min chunks
 * are built from them; when a day of 1 min chunks is, the 1 h chunks.
 *
 * meta done_<tier> says "every chunk of this tier before this time is
 * final"; it is written in the same transaction as the chunk it covers, so a
 * kill -9 at any point leaves either the chunk and its mark or neither, and
 * the next catch-up (at writer start, then after every batch) builds exactly
 * the chunks not written yet, from whatever source data still exists. Gaps
 * (downtime) are skipped with one indexed query. Pruning never deletes
 * source data (raw rows, finer chunks) a coarser tier has not been built
 * from: see mem_raw_prune_before / mem_tier_prune_before. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Series per pass over a chunk's raw rows: bounds the builder's memory
 * (about 90 kB with the encoded chunks) whatever the number of series. */
#define RAW_BLOCK 256

/* State of one pass building 10 s chunks from raw rows. */
typedef struct rawb {
    int base, n;       /* series [base, base + n) seen in this pass */
    int maxnv;         /* values in the longest raw row */
    mem_acc acc[RAW_BLOCK];
    mem_enc enc[RAW_BLOCK];
} rawb;

static int qi64(sqlite3 *db, const char *sql, const char *key, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc)
        return rc;
    if (key)
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
}

int mem_rollup_load(mem_t *m)
{
    int rc = qi64(m->wdb, "SELECT coalesce(max(ts), 0) FROM raw", NULL, &m->last_raw);
    for (int t = 0; t < MEM_NTIERS && !rc; t++)
        rc = qi64(m->wdb, "SELECT value FROM meta WHERE key = ?", mem_tier_done_key[t], &m->done[t]);
    return rc;
}

/* Runs a write statement to completion and resets it. */
static int run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

static int put_done(mem_t *m, int t, int64_t v)
{
    sqlite3_bind_text(m->st_meta, 1, mem_tier_done_key[t], -1, SQLITE_STATIC);
    sqlite3_bind_int64(m->st_meta, 2, v);
    return run(m->st_meta);
}

static int put_chunk(mem_t *m, int t, int id, int64_t c, mem_enc *e, uint64_t *nrows)
{
    size_t len = mem_enc_finish(e);
    if (!len)
        return 0;
    sqlite3_stmt *st = m->st_roll[t];
    sqlite3_bind_int(st, 1, id);
    sqlite3_bind_int64(st, 2, c);
    sqlite3_bind_blob(st, 3, e->p, (int)len, SQLITE_STATIC);
    int rc = run(st);
    *nrows += rc == 0;
    return rc;
}

/* Clears an encoder for the next chunk, keeping its buffer. */
static void enc_reuse(mem_enc *e, uint32_t full)
{
    uint8_t *p = e->p;
    size_t cap = e->cap;
    mem_enc_init(e, full);
    e->p = p;
    e->cap = cap;
}

/* ---- 10 s chunks from raw rows -------------------------------------------- */

/* Closes bucket k of every series of the pass into its encoder. */
static int rawb_bucket(rawb *b, int k)
{
    for (int i = 0; k >= 0 && i < b->n; i++) {
        if (!b->acc[i].count)
            continue;
        mem_bucket bk = mem_acc_get(&b->acc[i]);
        mem_acc_reset(&b->acc[i]);
        if (mem_enc_add(&b->enc[i], k, &bk))
            return -ENOMEM;
    }
    return 0;
}

static void fold_raw(rawb *b, const unsigned char *p, int nv)
{
    int hi = nv < b->base + RAW_BLOCK ? nv : b->base + RAW_BLOCK;
    if (nv > b->maxnv)
        b->maxnv = nv;
    if (hi - b->base > b->n)
        b->n = hi - b->base;
    for (int id = b->base; id < hi; id++) {
        float v;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(&v, p + 4 * (size_t)id, 4);
#else
        v = mem_raw_value(p, nv * 4, id);
#endif
        if (!isnan(v))
            mem_acc_value(&b->acc[id - b->base], v);
    }
}

/* One pass over the raw rows of chunk c for the series from b->base. */
static int raw_pass(mem_t *m, rawb *b, int64_t c, uint64_t *nrows)
{
    sqlite3_stmt *st = m->st_raw_range;
    int k = -1, rc;
    b->n = 0;
    for (int i = 0; i < RAW_BLOCK; i++) {
        mem_acc_reset(&b->acc[i]);
        enc_reuse(&b->enc[i], mem_tier_full(0));
    }
    sqlite3_bind_int64(st, 1, c);
    sqlite3_bind_int64(st, 2, c + mem_chunk_width[0] - 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0);
        const unsigned char *p = sqlite3_column_blob(st, 1);
        int nv = sqlite3_column_bytes(st, 1) / 4;
        if (ts % 1000 || !p)
            continue;
        int kb = (int)((ts - c) / mem_tier_width[0]);
        if (kb != k && rawb_bucket(b, k)) {
            rc = -ENOMEM;
            break;
        }
        k = kb;
        fold_raw(b, p, nv);
    }
    sqlite3_reset(st);
    rc = rc == SQLITE_DONE ? rawb_bucket(b, k) : rc;
    for (int i = 0; !rc && i < b->n; i++)
        rc = put_chunk(m, 0, b->base + i, c, &b->enc[i], nrows);
    return rc;
}

/* Builds the 10 s chunk [c, c + 5 min) of every series, RAW_BLOCK series
 * per pass. SQLite rc or -ENOMEM. */
static int build_from_raw(mem_t *m, int64_t c, uint64_t *nrows)
{
    rawb *b = malloc(sizeof *b);
    if (!b)
        return -ENOMEM;
    for (int i = 0; i < RAW_BLOCK; i++)
        mem_enc_init(&b->enc[i], mem_tier_full(0));
    int rc = 0;
    b->maxnv = 0;
    for (b->base = 0; !rc && (b->base == 0 || b->base < b->maxnv); b->base += RAW_BLOCK)
        rc = raw_pass(m, b, c, nrows);
    for (int i = 0; i < RAW_BLOCK; i++)
        mem_enc_free(&b->enc[i]);
    free(b);
    return rc;
}

/* ---- coarser chunks from the tier below ------------------------------------ */

typedef struct upb {
    int t;
    int64_t c;
    mem_acc acc[MEM_CHUNK_MAX];
    mem_enc enc;
} upb;

static int upb_emit(mem_t *m, upb *u, int id, uint64_t *nrows)
{
    int nb = mem_tier_nbuckets(u->t);
    enc_reuse(&u->enc, mem_tier_full(u->t));
    for (int k = 0; k < nb; k++) {
        mem_bucket bk = mem_acc_get(&u->acc[k]);
        mem_acc_reset(&u->acc[k]);
        if (mem_enc_add(&u->enc, k, &bk))
            return -ENOMEM;
    }
    return put_chunk(m, u->t, id, u->c, &u->enc, nrows);
}

static void upb_fold(upb *u, int64_t cts, const mem_bucket *src, int nsrc)
{
    int64_t w = mem_tier_width[u->t - 1];
    for (int i = 0; i < nsrc; i++) {
        int64_t k = (cts + i * w - u->c) / mem_tier_width[u->t];
        if (src[i].count && k >= 0 && k < mem_tier_nbuckets(u->t))
            mem_acc_bucket(&u->acc[k], &src[i]);
    }
}

/* Builds chunk [c, c + chunk width) of tier t >= 1 from tier t - 1. */
static int build_from_tier(mem_t *m, int t, int64_t c, uint64_t *nrows)
{
    sqlite3_stmt *st = m->st_src[t - 1];
    upb *u = malloc(sizeof *u);
    if (!u)
        return -ENOMEM;
    u->t = t;
    u->c = c;
    mem_enc_init(&u->enc, mem_tier_full(t));
    for (int k = 0; k < MEM_CHUNK_MAX; k++)
        mem_acc_reset(&u->acc[k]);
    int nsrc = mem_tier_nbuckets(t - 1), cur = -1, rc;
    mem_bucket src[MEM_CHUNK_MAX];
    sqlite3_bind_int64(st, 1, c);
    sqlite3_bind_int64(st, 2, c + mem_chunk_width[t] - 1);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int id = sqlite3_column_int(st, 0);
        int64_t cts = sqlite3_column_int64(st, 1);
        if (id != cur && cur >= 0 && (rc = upb_emit(m, u, cur, nrows)))
            break;
        cur = id;
        if (mem_chunk_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), nsrc,
                             mem_tier_full(t - 1), src)) {
            log_warn("memory: %s: %s chunk of series %d at %lld is malformed: skipped", m->path,
                     mem_tier_table[t - 1], id, (long long)cts);
            continue;
        }
        upb_fold(u, cts, src, nsrc);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        rc = cur >= 0 ? upb_emit(m, u, cur, nrows) : 0;
    mem_enc_free(&u->enc);
    free(u);
    return rc;
}

/* ---- catch-up ----------------------------------------------------------------- */

/* Start of the first source data of tier t in [from, to), or -1. */
static int next_source(mem_t *m, int t, int64_t from, int64_t to, int64_t *out)
{
    sqlite3_stmt *st = t ? m->st_src_next[t - 1] : m->st_raw_next;
    sqlite3_bind_int64(st, 1, from);
    sqlite3_bind_int64(st, 2, to - 1);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
}

static void log_fail(mem_t *m, int t, int rc)
{
    int64_t now = core_mono_ms();
    if (m->last_err_log && now - m->last_err_log < 60000)
        return;
    m->last_err_log = now;
    log_err("memory: %s: cannot build the %s chunks (will retry): %s", m->path, mem_tier_table[t],
            rc == -ENOMEM ? "out of memory" : sqlite3_errmsg(m->wdb));
}

/* One step of tier t: the next closed chunk with data, or the mark over a gap. */
static int step_tier(mem_t *m, int t, int64_t bound, uint64_t *nrows)
{
    int64_t cw = mem_chunk_width[t], next, done;
    int rc = next_source(m, t, m->done[t], bound, &next);
    if (rc)
        return rc;
    if ((rc = mem_sql_exec(m->wdb, "BEGIN IMMEDIATE")))
        return rc;
    uint64_t n = 0;
    if (next >= 0) {
        int64_t c = mem_floor(next, cw);
        done = c + cw;
        rc = t ? build_from_tier(m, t, c, &n) : build_from_raw(m, c, &n);
    } else {
        done = bound;
    }
    if (!rc)
        rc = put_done(m, t, done);
    if (!rc)
        rc = mem_sql_exec(m->wdb, "COMMIT");
    if (rc) {
        mem_sql_exec(m->wdb, "ROLLBACK");
        return rc;
    }
    m->done[t] = done;
    *nrows += n;
    return 0;
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Counts one step of tier t: rows written and the writer CPU it took. */
static void account(mem_t *m, int t, uint64_t nrows, double cpu_ms)
{
    pthread_mutex_lock(&m->qlock);
    m->rows_written += nrows;
    m->chunks_written += nrows;
    m->chunk_steps[t]++;
    m->rollup_cpu_ms[t] += cpu_ms;
    pthread_mutex_unlock(&m->qlock);
}

void mem_rollup_catchup(mem_t *m)
{
    for (int t = 0; t < MEM_NTIERS; t++) {
        int64_t bound = mem_floor(t ? m->done[t - 1] : m->last_raw, mem_chunk_width[t]);
        while (m->done[t] < bound) {
            uint64_t nrows = 0;
            double cpu0 = thread_cpu_ms();
            int rc = step_tier(m, t, bound, &nrows);
            account(m, t, nrows, thread_cpu_ms() - cpu0);
            if (rc) {
                log_fail(m, t, rc);
                return;
            }
        }
    }
}

int mem_rollup_rewind(mem_t *m, int64_t ts)
{
    char sql[160];
    for (int t = 0; t < MEM_NTIERS; t++) {
        int64_t nd = mem_floor(ts, mem_chunk_width[t]);
        if (m->done[t] <= nd)
            continue;
        sqlite3_stmt *st;
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE series IN (SELECT id FROM series) "
                 "AND chunk_ts >= ?", mem_tier_table[t]);
        int rc = sqlite3_prepare_v2(m->wdb, sql, -1, &st, NULL);
        if (rc)
            return rc;
        sqlite3_bind_int64(st, 1, nd);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE || (rc = put_done(m, t, nd)))
            return rc == SQLITE_DONE ? 0 : rc;
        m->done[t] = nd;
    }
    return 0;
}

int64_t mem_raw_prune_before(const mem_t *m, const mem_prune *p)
{
    int64_t lim = p->ref - p->raw_keep_ms;
    return lim < m->done[0] ? lim : m->done[0];
}

int64_t mem_tier_prune_before(const mem_t *m, const mem_prune *p, int tier)
{
    int64_t lim = p->ref - p->ret[tier];
    if (tier + 1 < MEM_NTIERS && m->done[tier + 1] < lim)
        lim = m->done[tier + 1];
    return lim - mem_chunk_width[tier] + 1; /* whole chunks only */
}

/* ---- statements ------------------------------------------------------------ */

static int prep(mem_t *m, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v3(m->wdb, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc)
        return core_err(err, errlen, -EIO, "%s: cannot prepare: %s", m->path, sqlite3_errmsg(m->wdb));
    return 0;
}

int mem_rollup_prepare(mem_t *m, char *err, size_t errlen)
{
    char sql[320];
    int rc = prep(m, "SELECT ts, v FROM raw WHERE ts >= ? AND ts <= ? ORDER BY ts", &m->st_raw_range,
                  err, errlen);
    if (!rc)
        rc = prep(m, "SELECT min(ts) FROM raw WHERE ts >= ? AND ts <= ?", &m->st_raw_next, err, errlen);
    for (int t = 0; t < MEM_NTIERS && !rc; t++) {
        snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO %s(series, chunk_ts, data) VALUES (?, ?, ?)",
                 mem_tier_table[t]);
        rc = prep(m, sql, &m->st_roll[t], err, errlen);
        if (rc || t == MEM_NTIERS - 1)
            continue;
        /* one index seek per series, in id order */
        snprintf(sql, sizeof sql, "SELECT s.id, r.chunk_ts, r.data FROM series s JOIN %s r ON "
                 "r.series = s.id AND r.chunk_ts >= ?1 AND r.chunk_ts <= ?2 ORDER BY s.id, r.chunk_ts",
                 mem_tier_table[t]);
        rc = prep(m, sql, &m->st_src[t], err, errlen);
        snprintf(sql, sizeof sql, "SELECT min((SELECT r.chunk_ts FROM %s r WHERE r.series = s.id AND "
                 "r.chunk_ts >= ?1 AND r.chunk_ts <= ?2 ORDER BY r.chunk_ts LIMIT 1)) FROM series s",
                 mem_tier_table[t]);
        if (!rc)
            rc = prep(m, sql, &m->st_src_next[t], err, errlen);
    }
    if (!rc && (rc = mem_rollup_load(m)))
        rc = core_err(err, errlen, -EIO, "%s: cannot read the rollup marks: %s", m->path,
                     sqlite3_errmsg(m->wdb));
    return rc;
}

void mem_rollup_finalize(mem_t *m)
{
    sqlite3_finalize(m->st_raw_range);
    sqlite3_finalize(m->st_raw_next);
    for (int t = 0; t < MEM_NTIERS; t++) {
        sqlite3_finalize(m->st_roll[t]);
        sqlite3_finalize(m->st_src[t]);
        sqlite3_finalize(m->st_src_next[t]);
    }
}
