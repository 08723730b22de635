/* query.c: mem_query: validates a range, picks the source (the RAM window
 * when it covers from_ms, else the finest rollup tier still retained there)
 * and the step (explicit, rounded up to the source's resolution, or the
 * smallest "nice" one giving at most max_points), then aggregates into
 * step-aligned buckets. The RAM answers for the whole window [last tick -
 * window, ...], as every tick of it is kept there (restored at open); older
 * data exists only in the tiers. A tier answer reads the tier's stored chunks
 * up to its done mark and derives the rest, the most recent data, from the
 * tier below (recursively, down to the raw rows and the RAM ring), so it is
 * never missing the last minutes, hours or day. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEM_TS_MAX 1000000000000000LL /* ms; about year 33658 */

typedef struct agg {
    mem_point *p;
    size_t n, cap;
    int64_t step;
} agg;

/* Adds one sample or tier row; inputs come in non-decreasing ts order.
 * `mean` holds the running sum until agg_finish. */
static void agg_add(agg *a, int64_t ts, double mn, double mx, double sum, uint64_t count)
{
    if (!count)
        return;
    int64_t b = mem_floor(ts, a->step);
    mem_point *p = a->n ? &a->p[a->n - 1] : NULL;
    if (p && p->ts == b) {
        p->min = mn < p->min ? mn : p->min;
        p->max = mx > p->max ? mx : p->max;
        p->mean += sum;
        p->count += count;
    } else if (a->n < a->cap) {
        a->p[a->n++] = (mem_point){.ts = b, .min = mn, .max = mx, .mean = sum, .count = count};
    }
}

static void agg_finish(agg *a)
{
    for (size_t i = 0; i < a->n; i++)
        a->p[i].mean /= (double)a->p[i].count;
}

/* Exact number of step buckets touching [from, to]. */
static int64_t nbuckets(int64_t from, int64_t to, int64_t step)
{
    return to / step - from / step + 1;
}

static int64_t auto_step(int64_t from, int64_t to, int64_t res, int64_t max_points)
{
    static const int64_t nice[] = {1000, 2000, 5000, 10000, 15000, 30000, 60000, 120000, 300000,
                                   600000, 900000, 1800000, 3600000, 7200000, 10800000, 21600000,
                                   43200000, 86400000, 172800000, 604800000};
    for (size_t i = 0; i < sizeof nice / sizeof nice[0]; i++)
        if (nice[i] >= res && nice[i] % res == 0 && nbuckets(from, to, nice[i]) <= max_points)
            return nice[i];
    int64_t s = 86400000LL * 14;
    while (nbuckets(from, to, s) > max_points)
        s *= 2;
    return s;
}

/* The finest tier whose retention reaches back to from (else the coarsest). */
static int pick_tier(const mem_t *m, int64_t from, int64_t ref)
{
    for (int t = 0; t < MEM_NTIERS; t++)
        if (from >= ref - m->ret.ret[t])
            return t;
    return MEM_NTIERS - 1;
}

static int validate(int64_t from, int64_t to, int64_t step, int64_t max_points, char *err, size_t errlen)
{
    if (from < 0 || to < 0 || from > MEM_TS_MAX || to > MEM_TS_MAX)
        return core_err(err, errlen, -EINVAL, "from and to must be times in ms since the epoch "
                       "(got from %lld, to %lld)", (long long)from, (long long)to);
    if (to < from)
        return core_err(err, errlen, -EINVAL, "to (%lld) is before from (%lld)", (long long)to,
                       (long long)from);
    if (step < 0 || step % 1000)
        return core_err(err, errlen, -EINVAL, "step %lld ms: must be a positive multiple of 1000 ms "
                       "(or 0 for automatic)", (long long)step);
    if (max_points <= 0)
        return core_err(err, errlen, -EINVAL, "max_points must be positive");
    return 0;
}

/* Aggregates the RAM ring of one series over [from, to]; caller holds lock. */
static void ram_agg(const mem_t *m, int id, int64_t from, int64_t to, agg *a)
{
    const mem_ser *s = m->ser[id];
    int64_t lo = mem_oldest_ram(m), hi = to < m->last_tick ? to : m->last_tick;
    int64_t first = (from + 999) / 1000 * 1000;
    if (!m->last_tick)
        return;
    for (int64_t t = first > lo ? first : lo; t <= hi; t += 1000) {
        int slot = mem_ring_slot(m, t);
        float v = s->ring[slot];
        if (m->tick_ts[slot] == t && !isnan(v))
            agg_add(a, t, v, v, v, 1);
    }
}

/* A tier answer: the RAM part copied under the lock first, then every disk
 * read in one read transaction (done marks and chunks consistent). */
typedef struct tq {
    mem_t *m;
    int id;
    agg *a;
    int64_t done[MEM_NTIERS];
    int64_t ram_start;   /* oldest second the RAM holds; INT64_MAX: none */
    int64_t ram_lo;      /* second of ram[0] */
    int64_t nram;
    float *ram;
    char *err;
    size_t errlen;
} tq;

static int tq_fail(tq *q, const char *what)
{
    return core_err(q->err, q->errlen, -EIO, "%s: %s: %s", q->m->path, what, sqlite3_errmsg(q->m->rdb));
}

/* Copies the series' RAM values over [lo, hi] (NaN where no tick). */
static int copy_ram(mem_t *m, int id, int64_t lo, int64_t hi, tq *q)
{
    pthread_mutex_lock(&m->lock);
    q->ram_start = m->last_tick ? mem_oldest_ram(m) : INT64_MAX;
    int64_t first = (lo + 999) / 1000 * 1000;
    q->ram_lo = first > q->ram_start ? first : q->ram_start;
    int64_t last = hi < m->last_tick ? hi : m->last_tick;
    q->nram = m->last_tick && last >= q->ram_lo ? (last - q->ram_lo) / 1000 + 1 : 0;
    q->ram = q->nram ? malloc(sizeof *q->ram * (size_t)q->nram) : NULL;
    for (int64_t i = 0; q->ram && i < q->nram; i++) {
        int64_t ts = q->ram_lo + i * 1000;
        int slot = mem_ring_slot(m, ts);
        q->ram[i] = m->tick_ts[slot] == ts ? m->ser[id]->ring[slot] : NAN;
    }
    pthread_mutex_unlock(&m->lock);
    return q->nram && !q->ram ? -ENOMEM : 0;
}

static int read_done(tq *q)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(q->m->rdb, "SELECT key, value FROM meta WHERE key IN "
                                "('done_10s', 'done_1m', 'done_1h')", -1, &st, NULL);
    if (rc)
        return tq_fail(q, "meta");
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int t = 0; t < MEM_NTIERS; t++)
            if (!strcmp((const char *)sqlite3_column_text(st, 0), mem_tier_done_key[t]))
                q->done[t] = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : tq_fail(q, "meta");
}

/* Stored chunks of tier t: the buckets in [lo, hi]. */
static int tier_chunks(tq *q, int t, int64_t lo, int64_t hi)
{
    char sql[160];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT chunk_ts, data FROM %s WHERE series = ? AND chunk_ts >= ? AND "
             "chunk_ts <= ? ORDER BY chunk_ts", mem_tier_table[t]);
    if (sqlite3_prepare_v2(q->m->rdb, sql, -1, &st, NULL))
        return tq_fail(q, mem_tier_table[t]);
    sqlite3_bind_int(st, 1, q->id);
    sqlite3_bind_int64(st, 2, mem_floor(lo, mem_chunk_width[t]));
    sqlite3_bind_int64(st, 3, hi);
    int nb = mem_tier_nbuckets(t), rc;
    int64_t w = mem_tier_width[t];
    mem_bucket b[MEM_CHUNK_MAX];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t c = sqlite3_column_int64(st, 0);
        if (mem_chunk_decode(sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1), nb,
                             mem_tier_full(t), b)) {
            sqlite3_finalize(st);
            return core_err(q->err, q->errlen, -EIO, "%s: %s: the chunk of series %d at %lld is "
                           "malformed", q->m->path, mem_tier_table[t], q->id, (long long)c);
        }
        for (int i = 0; i < nb; i++) {
            int64_t ts = c + i * w;
            if (ts >= lo && ts <= hi)
                agg_add(q->a, ts, b[i].min, b[i].max, (double)b[i].mean * b[i].count, b[i].count);
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : tq_fail(q, mem_tier_table[t]);
}

/* Seconds [lo, hi] from the raw rows on disk, then from the RAM copy. */
static int raw_range(tq *q, int64_t lo, int64_t hi)
{
    int64_t dhi = q->ram_start - 1 < hi ? q->ram_start - 1 : hi;
    if (lo <= dhi) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(q->m->rdb, "SELECT ts, v FROM raw WHERE ts >= ? AND ts <= ? ORDER BY ts",
                               -1, &st, NULL))
            return tq_fail(q, "raw");
        sqlite3_bind_int64(st, 1, lo);
        sqlite3_bind_int64(st, 2, dhi);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            float v = mem_raw_value(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), q->id);
            if (!isnan(v))
                agg_add(q->a, sqlite3_column_int64(st, 0), v, v, v, 1);
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return tq_fail(q, "raw");
    }
    for (int64_t i = 0; i < q->nram; i++) {
        int64_t ts = q->ram_lo + i * 1000;
        float v = q->ram[i];
        if (ts >= lo && ts <= hi && !isnan(v))
            agg_add(q->a, ts, v, v, v, 1);
    }
    return 0;
}

/* Buckets of tier t over [lo, hi]: stored chunks before the tier's done
 * mark, then (recursively) the tier below for what is not built yet. */
static int tier_range(tq *q, int t, int64_t lo, int64_t hi)
{
    int64_t split = q->done[t];
    int rc = 0;
    if (lo < split)
        rc = tier_chunks(q, t, lo, hi < split ? hi : split - 1);
    if (rc || hi < split)
        return rc;
    lo = lo > split ? lo : split;
    return t ? tier_range(q, t - 1, lo, hi) : raw_range(q, lo, hi);
}

static int tier_agg(mem_t *m, int id, int t, int64_t from, int64_t to, agg *a, char *err, size_t errlen)
{
    int64_t lo = mem_floor(from, mem_tier_width[t]);
    tq q = {.m = m, .id = id, .a = a, .err = err, .errlen = errlen};
    int rc = copy_ram(m, id, lo, to, &q);
    if (rc) {
        return core_err(err, errlen, rc, "out of memory");
    }
    pthread_mutex_lock(&m->rlock);
    if (mem_sql_exec(m->rdb, "BEGIN"))
        rc = tq_fail(&q, "cannot read");
    if (!rc)
        rc = read_done(&q);
    if (!rc)
        rc = tier_range(&q, t, lo, to);
    mem_sql_exec(m->rdb, rc ? "ROLLBACK" : "COMMIT");
    pthread_mutex_unlock(&m->rlock);
    free(q.ram);
    return rc;
}

int mem_query(mem_t *m, int id, int64_t from_ms, int64_t to_ms, int64_t step_ms,
              int64_t max_points, mem_point **out, size_t *n, int *src_out,
              char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!m)
        return core_err(err, errlen, -EINVAL, "no memory");
    int rc = validate(from_ms, to_ms, step_ms, max_points, err, errlen);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->lock);
    bool known = id >= 0 && id < m->next_id && m->ser[id];
    /* Every tick of the last window is in RAM (restored at open), so the RAM
     * answers for the whole window even when it holds fewer ticks. */
    int64_t ref = m->last_tick ? m->last_tick : core_now_ms();
    int64_t cover = ref - (int64_t)(m->nslots - 1) * 1000;
    int src = from_ms >= cover ? MEM_SRC_RAM : 1 + pick_tier(m, from_ms, ref);
    pthread_mutex_unlock(&m->lock);
    if (!known)
        return core_err(err, errlen, -ENOENT, "unknown series id %d", id);
    int64_t res = src == MEM_SRC_RAM ? 1000 : mem_tier_width[src - 1];
    int64_t step = step_ms ? (step_ms + res - 1) / res * res : auto_step(from_ms, to_ms, res, max_points);
    if ((to_ms - from_ms) / step + 1 > max_points)
        return core_err(err, errlen, -E2BIG, "%lld points (step %lld ms) exceed the limit of %lld: use a "
                       "larger step or a shorter range", (long long)((to_ms - from_ms) / step + 1),
                       (long long)step, (long long)max_points);
    agg a = {.cap = (size_t)nbuckets(from_ms, to_ms, step), .step = step};
    a.p = malloc(sizeof *a.p * a.cap);
    if (!a.p)
        return core_err(err, errlen, -ENOMEM, "out of memory");
    if (src == MEM_SRC_RAM) {
        pthread_mutex_lock(&m->lock);
        ram_agg(m, id, from_ms, to_ms, &a);
        pthread_mutex_unlock(&m->lock);
    } else if ((rc = tier_agg(m, id, src - 1, from_ms, to_ms, &a, err, errlen))) {
        free(a.p);
        return rc;
    }
    agg_finish(&a);
    *out = a.p;
    *n = a.n;
    if (src_out)
        *src_out = src;
    return 0;
}
