/* ring.c: the loop-thread hot path: mem_put fills the tick being built,
 * mem_tick moves it into the per-series RAM rings, folds it into the open
 * rollup buckets (10 s / 1 min / 1 h) and queues one batch for the writer:
 * the raw row of the tick, the buckets that closed, checkpoints of long open
 * buckets and, once a minute, a pruning request. Allocation-free except the
 * batch buffer. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Builds the rows area of a tick job. */
typedef struct jbuild {
    mem_job *job;
    mem_rrow *free_rows;
} jbuild;

void mem_acc_reset(mem_acc *a, int n)
{
    for (int i = 0; i < n; i++)
        a[i] = (mem_acc){.min = INFINITY, .max = -INFINITY, .count = 0, .sum = 0.0};
}

void mem_acc_add(mem_acc *a, float v)
{
    if (v < a->min)
        a->min = v;
    if (v > a->max)
        a->max = v;
    a->sum += v;
    a->count++;
}

void mem_acc_merge(mem_acc *a, const mem_acc *b)
{
    if (!b->count)
        return;
    if (b->min < a->min)
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
    a->sum += b->sum;
    a->count += b->count;
}

int mem_ring_slot(const mem_t *m, int64_t ts)
{
    return (int)((ts / 1000) % m->nslots);
}

int64_t mem_oldest_ram(const mem_t *m)
{
    if (!m->last_tick)
        return 0;
    int64_t lo = m->last_tick - (int64_t)(m->nslots - 1) * 1000;
    return m->ring_start > lo ? m->ring_start : lo;
}

/* Stores one tick's values (restore path; mem_tick has its own fused loop). */
void mem_ring_store(mem_t *m, int64_t ts, const float *vals, int n)
{
    int slot = mem_ring_slot(m, ts);
    m->tick_ts[slot] = ts;
    for (int id = 0; id < m->next_id; id++) {
        mem_ser *s = m->ser[id];
        if (!s)
            continue;
        float v = id < n ? vals[id] : NAN;
        s->ring[slot] = v;
        if (!isnan(v)) {
            s->last_v = v;
            s->last_ts = ts;
        }
    }
    if (!m->last_tick)
        m->ring_start = ts;
    m->last_tick = ts;
}

void mem_put(mem_t *m, int id, double v)
{
    if (!m || id < 0 || id >= m->next_id || !m->ser[id])
        return;
    m->cur[id] = (float)v;
}

static int count_rows(const mem_t *m, int tier)
{
    int n = 0;
    const mem_acc *a = m->acc[tier];
    for (int id = 0; id < m->next_id; id++)
        n += a[id].count > 0;
    return n;
}

/* Copies the open bucket of a tier into the job as one row set. */
static void emit_rows(mem_t *m, jbuild *b, int tier, bool ckpt, int64_t upto)
{
    if (!b->job)
        return;
    mem_rset *rs = &b->job->u.tick.sets[b->job->u.tick.nsets++];
    *rs = (mem_rset){.tier = tier, .ckpt = ckpt, .ts = m->bucket[tier], .upto = upto,
                     .rows = b->free_rows};
    const mem_acc *a = m->acc[tier];
    for (int id = 0; id < m->next_id; id++) {
        if (!a[id].count)
            continue;
        rs->rows[rs->nrows++] = (mem_rrow){.id = id, .min = a[id].min, .max = a[id].max,
                                           .count = a[id].count, .sum = a[id].sum};
    }
    b->free_rows += rs->nrows;
}

static mem_job *alloc_tick_job(int nvals, int nrows)
{
    size_t sz = sizeof(mem_job) + sizeof(float) * (size_t)nvals + sizeof(mem_rrow) * (size_t)nrows;
    mem_job *j = malloc(sz);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->kind = MEM_JOB_TICK;
    j->u.tick.nvals = nvals;
    j->u.tick.vals = (float *)(void *)(j->data + sizeof(mem_rrow) * (size_t)nrows);
    return j;
}

/* The clock went back by more than the RAM window: start the RAM state over
 * (the disk keeps everything; raw rows from the "future" are dropped). */
static void clock_reset(mem_t *m, int64_t ts)
{
    log_warn("memory: clock went back from %lld to %lld ms: restarting the RAM window",
             (long long)m->last_tick, (long long)ts);
    for (int i = 0; i < m->nslots; i++)
        m->tick_ts[i] = MEM_NO_BUCKET;
    for (int t = 0; t < MEM_NTIERS; t++) {
        mem_acc_reset(m->acc[t], m->next_id);
        m->bucket[t] = MEM_NO_BUCKET;
        m->upto[t] = 0;
    }
    m->last_tick = 0;
    m->ring_start = 0;
    m->last_prune = 0;
}

/* The fused per-series loop: ring, last value, three accumulators. */
static void fold_tick(mem_t *m, int64_t ts, float *vals)
{
    int slot = mem_ring_slot(m, ts);
    mem_acc *a0 = m->acc[0], *a1 = m->acc[1], *a2 = m->acc[2];
    uint64_t ns = 0;
    m->tick_ts[slot] = ts;
    for (int id = 0; id < m->next_id; id++) {
        mem_ser *s = m->ser[id];
        float v = m->cur[id];
        if (vals)
            vals[id] = v;
        if (!s)
            continue;
        s->ring[slot] = v;
        if (isnan(v))
            continue;
        m->cur[id] = NAN;
        s->last_v = v;
        s->last_ts = ts;
        mem_acc_add(&a0[id], v);
        mem_acc_add(&a1[id], v);
        mem_acc_add(&a2[id], v);
        ns++;
    }
    m->samples += ns;
    m->ticks++;
    if (!m->last_tick)
        m->ring_start = ts;
    m->last_tick = ts;
}

/* Open bucket of tier t once the tick at ts is folded in. */
static int64_t bucket_after(int t, int64_t ts)
{
    return mem_floor(ts, mem_tier_width[t]);
}

/* A tier needs a checkpoint when its open bucket reaches further back than
 * half the RAM window and the last checkpoint is that old: a restart then
 * rebuilds it exactly from the checkpoint plus the raw rows after it. */
static bool needs_ckpt(const mem_t *m, int t, int64_t ts)
{
    int64_t half = (int64_t)m->nslots * 500;
    return bucket_after(t, ts) < ts - half && ts - m->upto[t] >= half;
}

/* Decides closings/checkpoints, builds and queues the batch, folds the tick. */
static int do_tick(mem_t *m, int64_t ts, int64_t delete_after)
{
    bool closing[MEM_NTIERS], ckpt[MEM_NTIERS];
    int nrows = 0;
    for (int t = 0; t < MEM_NTIERS; t++) {
        closing[t] = m->bucket[t] != MEM_NO_BUCKET && m->bucket[t] != bucket_after(t, ts);
        ckpt[t] = needs_ckpt(m, t, ts);
        nrows += (closing[t] ? count_rows(m, t) : 0) + (ckpt[t] ? m->next_id : 0);
    }
    jbuild jb = {.job = alloc_tick_job(m->next_id, nrows)};
    mem_job *j = jb.job;
    if (j) {
        jb.free_rows = (mem_rrow *)(void *)j->data;
        j->u.tick.ts = ts;
        j->u.tick.delete_after = delete_after;
    }
    for (int t = 0; t < MEM_NTIERS; t++) {
        if (closing[t]) {
            emit_rows(m, &jb, t, false, 0);
            mem_acc_reset(m->acc[t], m->next_id);
        }
        m->bucket[t] = bucket_after(t, ts);
    }
    fold_tick(m, ts, j ? j->u.tick.vals : NULL);
    for (int t = 0; t < MEM_NTIERS; t++) {
        if (ckpt[t]) {
            emit_rows(m, &jb, t, true, ts);
            m->upto[t] = ts;
        }
    }
    if (!j)
        return -ENOMEM;
    if (!m->last_prune || ts - m->last_prune >= MEM_PRUNE_EVERY_MS) {
        j->u.tick.prune = m->ret;
        j->u.tick.prune.ref = ts;
        m->last_prune = ts;
    }
    uint64_t seq;
    int rc = mem_enqueue(m, j, false, &seq);
    for (int t = 0; t < MEM_NTIERS && !rc; t++)
        if (closing[t])
            m->closed_seq[t] = seq;
    return rc == -ENOBUFS ? 0 : rc; /* a dropped batch is counted, not an error */
}

int mem_tick(mem_t *m, int64_t ts_ms)
{
    if (!m || ts_ms < 0)
        return -EINVAL;
    int64_t ts = mem_floor(ts_ms, 1000), delete_after = 0;
    pthread_mutex_lock(&m->lock);
    if (m->last_tick && ts <= m->last_tick) {
        if (m->last_tick - ts <= (int64_t)m->nslots * 1000) {
            if (!m->warned_backwards)
                log_warn("memory: tick %lld is not after the last one (%lld): ignored",
                         (long long)ts, (long long)m->last_tick);
            m->warned_backwards = true;
            pthread_mutex_unlock(&m->lock);
            return -ERANGE;
        }
        clock_reset(m, ts);
        delete_after = ts;
    }
    m->warned_backwards = false;
    int rc = do_tick(m, ts, delete_after);
    pthread_mutex_unlock(&m->lock);
    return rc;
}

/* A checkpoint of every open bucket (used at close). NULL when none/no memory. */
mem_job *mem_ckpt_job(mem_t *m)
{
    if (!m->last_tick)
        return NULL;
    jbuild jb = {.job = alloc_tick_job(0, MEM_NTIERS * m->next_id)};
    if (!jb.job)
        return NULL;
    jb.free_rows = (mem_rrow *)(void *)jb.job->data;
    for (int t = 0; t < MEM_NTIERS; t++) {
        if (m->bucket[t] == MEM_NO_BUCKET)
            continue;
        emit_rows(m, &jb, t, true, m->last_tick);
        m->upto[t] = m->last_tick;
    }
    return jb.job;
}
