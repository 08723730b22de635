/* query.c: mem_query: validates a range, picks the source (the RAM window
 * when it covers from_ms, else the finest rollup tier still retained there)
 * and the step (explicit, rounded up to the source's resolution, or the
 * smallest "nice" one giving at most max_points), then aggregates into
 * step-aligned buckets. The RAM answers for the whole window [last tick -
 * window, ...], as every tick of it is kept there (restored at open); older
 * data exists only in the tiers. A tier answer ends with the still-open
 * bucket (and any closed one not yet committed), taken from RAM. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MEM_TS_MAX 1000000000000000LL /* ms; about year 33658 */
#define TAIL_WAIT_MS 1000

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
        return mem_err(err, errlen, -EINVAL, "from and to must be times in ms since the epoch "
                       "(got from %lld, to %lld)", (long long)from, (long long)to);
    if (to < from)
        return mem_err(err, errlen, -EINVAL, "to (%lld) is before from (%lld)", (long long)to,
                       (long long)from);
    if (step < 0 || step % 1000)
        return mem_err(err, errlen, -EINVAL, "step %lld ms: must be a positive multiple of 1000 ms "
                       "(or 0 for automatic)", (long long)step);
    if (max_points <= 0)
        return mem_err(err, errlen, -EINVAL, "max_points must be positive");
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

/* What the tail of a tier answer needs, captured under the lock. */
typedef struct tail {
    bool use;
    int64_t bucket;
    mem_acc acc;
    bool in_ram;
    uint64_t need_seq;
} tail;

static void capture_tail(mem_t *m, int id, int t, int64_t to, tail *tl)
{
    tl->bucket = m->bucket[t];
    tl->use = tl->bucket != MEM_NO_BUCKET && tl->bucket <= to;
    tl->acc = m->acc[t][id];
    tl->in_ram = m->last_tick && tl->bucket >= mem_oldest_ram(m);
    tl->need_seq = m->closed_seq[t];
}

static int tier_rows(mem_t *m, int id, int t, int64_t lo, int64_t hi, agg *a, char *err, size_t errlen)
{
    char sql[160];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT ts, min, max, sum, count FROM %s WHERE series = ? AND ts >= ? "
             "AND ts <= ? ORDER BY ts", mem_tier_table[t]);
    pthread_mutex_lock(&m->rlock);
    int rc = sqlite3_prepare_v2(m->rdb, sql, -1, &st, NULL);
    if (!rc) {
        sqlite3_bind_int(st, 1, id);
        sqlite3_bind_int64(st, 2, lo);
        sqlite3_bind_int64(st, 3, hi);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            agg_add(a, sqlite3_column_int64(st, 0), sqlite3_column_double(st, 1),
                    sqlite3_column_double(st, 2), sqlite3_column_double(st, 3),
                    (uint64_t)sqlite3_column_int64(st, 4));
        rc = rc == SQLITE_DONE ? 0 : rc;
    }
    if (rc)
        rc = mem_err(err, errlen, -EIO, "%s: %s: %s", m->path, mem_tier_table[t], sqlite3_errmsg(m->rdb));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->rlock);
    return rc;
}

/* Rows of tier t before the open bucket, then the open bucket (and anything
 * not yet committed) from RAM. */
static int tier_agg(mem_t *m, int id, int t, int64_t from, int64_t to, agg *a, char *err, size_t errlen)
{
    tail tl;
    pthread_mutex_lock(&m->lock);
    capture_tail(m, id, t, to, &tl);
    pthread_mutex_unlock(&m->lock);
    if (tl.use && mem_wait_seq(m, tl.need_seq, TAIL_WAIT_MS))
        tl.use = false; /* the writer is stuck: answer from what is stored */
    int64_t hi = tl.use ? tl.bucket - 1 : to;
    int rc = tier_rows(m, id, t, mem_floor(from, mem_tier_width[t]), hi, a, err, errlen);
    if (rc || !tl.use)
        return rc;
    if (tl.in_ram) {
        pthread_mutex_lock(&m->lock);
        ram_agg(m, id, from > tl.bucket ? from : tl.bucket, to, a);
        pthread_mutex_unlock(&m->lock);
    } else {
        agg_add(a, tl.bucket, tl.acc.min, tl.acc.max, tl.acc.sum, tl.acc.count);
    }
    return 0;
}

int mem_query(mem_t *m, int id, int64_t from_ms, int64_t to_ms, int64_t step_ms,
              int64_t max_points, mem_point **out, size_t *n, int *src_out,
              char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!m)
        return mem_err(err, errlen, -EINVAL, "no memory");
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
        return mem_err(err, errlen, -ENOENT, "unknown series id %d", id);
    int64_t res = src == MEM_SRC_RAM ? 1000 : mem_tier_width[src - 1];
    int64_t step = step_ms ? (step_ms + res - 1) / res * res : auto_step(from_ms, to_ms, res, max_points);
    if ((to_ms - from_ms) / step + 1 > max_points)
        return mem_err(err, errlen, -E2BIG, "%lld points (step %lld ms) exceed the limit of %lld: use a "
                       "larger step or a shorter range", (long long)((to_ms - from_ms) / step + 1),
                       (long long)step, (long long)max_points);
    agg a = {.cap = (size_t)nbuckets(from_ms, to_ms, step), .step = step};
    a.p = malloc(sizeof *a.p * a.cap);
    if (!a.p)
        return mem_err(err, errlen, -ENOMEM, "out of memory");
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
