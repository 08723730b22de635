/* ring.c: the loop-thread hot path: mem_put fills the tick being built,
 * mem_tick moves it into the per-series RAM rings and queues one batch for
 * the writer: the raw row of the tick and, once a minute, a pruning request;
 * mem_tick_values copies one tick back out for the detectors.
 * The rollups are not touched here: the writer derives them from the raw rows
 * on disk (rollup.c). Allocation-free except the batch buffer. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

static mem_job *alloc_tick_job(int nvals)
{
    mem_job *j = malloc(sizeof(mem_job) + sizeof(float) * (size_t)nvals);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->kind = MEM_JOB_TICK;
    j->u.tick.nvals = nvals;
    j->u.tick.vals = (float *)(void *)j->data;
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
    m->last_tick = 0;
    m->ring_start = 0;
    m->last_prune = 0;
}

/* The fused per-series loop: ring, last value, the raw row. */
static void fold_tick(mem_t *m, int64_t ts, float *vals)
{
    int slot = mem_ring_slot(m, ts);
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
        ns++;
    }
    m->samples += ns;
    m->ticks++;
    if (!m->last_tick)
        m->ring_start = ts;
    m->last_tick = ts;
}

/* Builds and queues the batch of one tick, folds the tick. */
static int do_tick(mem_t *m, int64_t ts, int64_t delete_after)
{
    mem_job *j = alloc_tick_job(m->next_id);
    if (j) {
        j->u.tick.ts = ts;
        j->u.tick.delete_after = delete_after;
    }
    fold_tick(m, ts, j ? j->u.tick.vals : NULL);
    if (!j)
        return -ENOMEM;
    if (!m->last_prune || ts - m->last_prune >= MEM_PRUNE_EVERY_MS) {
        j->u.tick.prune = m->ret;
        j->u.tick.prune.ref = ts;
        m->last_prune = ts;
    }
    int rc = mem_enqueue(m, j, false, NULL);
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

int mem_tick_values(mem_t *m, int64_t ts_ms, float *vals, int n)
{
    if (!m)
        return -EINVAL;
    int64_t ts = mem_floor(ts_ms, 1000);
    pthread_mutex_lock(&m->lock);
    int slot = mem_ring_slot(m, ts);
    bool have = ts > 0 && m->tick_ts[slot] == ts;
    int k = n < m->next_id ? n : m->next_id;
    for (int id = 0; id < k; id++) {
        mem_ser *s = m->ser[id];
        vals[id] = have && s ? s->ring[slot] : NAN;
    }
    for (int id = k; id < n; id++)
        vals[id] = NAN;
    int total = m->next_id;
    pthread_mutex_unlock(&m->lock);
    return total;
}
