/* memory.c: HiDB lifecycle: mem_open (store, schema, restore, writer
 * thread), mem_reconfigure, mem_close (drain, join) and mem_get_stats. The
 * rest lives in one file per concern: ring.c (hot path), series.c, writer.c,
 * rollup.c (chunk builder), chunk.c (chunk encoding), store.c, query.c,
 * events.c. */
#include "memory/mem_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void set_retentions(mem_t *m, const core_config *cfg)
{
    m->ret.raw_keep_ms = (int64_t)m->nslots * 1000 + MEM_RAW_EXTRA_MS;
    m->ret.ret[0] = cfg->mem_retention_10s_ms;
    m->ret.ret[1] = cfg->mem_retention_1m_ms;
    m->ret.ret[2] = cfg->mem_retention_1h_ms;
    m->ret.ev_ret = cfg->mem_event_retention_ms;
}

static int init_state(mem_t *m, const core_config *cfg, char *err, size_t errlen)
{
    int64_t slots = cfg->mem_ram_window_ms / 1000;
    m->nslots = (int)(slots < 10 ? 10 : slots > 86400 ? 86400 : slots);
    if (snprintf(m->path, sizeof m->path, "%s/ippoc.db", cfg->state_dir) >= (int)sizeof m->path)
        return core_err(err, errlen, -ENAMETOOLONG, "state_dir too long: %.64s...", cfg->state_dir);
    pthread_mutex_init(&m->lock, NULL);
    pthread_mutex_init(&m->qlock, NULL);
    pthread_mutex_init(&m->rlock, NULL);
    int rc = mem_cond_init(&m->qcond);
    if (!rc)
        rc = mem_cond_init(&m->dcond);
    if (!rc)
        rc = mem_events_init(m);
    m->tick_ts = malloc(sizeof *m->tick_ts * (size_t)m->nslots);
    if (rc || !m->tick_ts)
        return core_err(err, errlen, rc ? rc : -ENOMEM, "memory: out of memory");
    for (int i = 0; i < m->nslots; i++)
        m->tick_ts[i] = MEM_NO_BUCKET;
    set_retentions(m, cfg);
    return 0;
}

static void destroy(mem_t *m)
{
    mem_writer_stop(m);
    if (m->rdb)
        sqlite3_close(m->rdb);
    if (m->wdb && sqlite3_close(m->wdb) != SQLITE_OK)
        log_warn("memory: %s: close: %s", m->path, sqlite3_errmsg(m->wdb));
    mem_job *j = m->qhead;
    while (j) {
        mem_job *n = j->next;
        mem_job_free(j);
        j = n;
    }
    mem_series_free_all(m);
    mem_events_fini(m);
    free(m->tick_ts);
    pthread_cond_destroy(&m->qcond);
    pthread_cond_destroy(&m->dcond);
    pthread_mutex_destroy(&m->lock);
    pthread_mutex_destroy(&m->qlock);
    pthread_mutex_destroy(&m->rlock);
    free(m);
}

int mem_open(mem_t **out, const core_config *cfg, char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg)
        return core_err(err, errlen, -EINVAL, "memory: no configuration");
    mem_t *m = calloc(1, sizeof *m);
    if (!m)
        return core_err(err, errlen, -ENOMEM, "memory: out of memory");
    int rc = init_state(m, cfg, err, errlen);
    if (!rc && (rc = core_mkdir_p(cfg->state_dir, 0700)))
        core_err(err, errlen, rc, "%s: cannot create the state directory: %s", cfg->state_dir,
                strerror(-rc));
    if (!rc)
        rc = mem_store_open(m, &m->wdb, false, err, errlen);
    if (!rc)
        rc = mem_store_migrate(m, err, errlen);
    if (!rc)
        rc = mem_store_load(m, err, errlen);
    if (!rc)
        rc = mem_writer_prepare(m, err, errlen);
    if (!rc)
        rc = mem_store_open(m, &m->rdb, true, err, errlen);
    if (!rc)
        rc = mem_writer_start(m, err, errlen);
    if (rc) {
        destroy(m);
        return rc;
    }
    *out = m;
    return 0;
}

void mem_reconfigure(mem_t *m, const core_config *cfg)
{
    if (!m || !cfg)
        return;
    pthread_mutex_lock(&m->lock);
    set_retentions(m, cfg);
    pthread_mutex_unlock(&m->lock);
    if (cfg->mem_ram_window_ms / 1000 != m->nslots)
        log_info("memory: ram_window change takes effect at the next restart");
}

void mem_close(mem_t *m)
{
    if (!m)
        return;
    mem_wake_waiters(m);
    if (m->thread_started)
        mem_flush(m, -1);
    destroy(m);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : (int64_t)st.st_size;
}

int64_t mem_write_failing(mem_t *m, char *why, size_t n, uint64_t *dropped)
{
    if (n)
        why[0] = 0;
    if (dropped)
        *dropped = 0;
    if (!m)
        return 0;
    pthread_mutex_lock(&m->qlock);
    int64_t since = m->wfail_since;
    int rc = m->wfail_rc;
    if (dropped)
        *dropped = m->dropped;
    pthread_mutex_unlock(&m->qlock);
    if (since && n)
        snprintf(why, n, "%s", sqlite3_errstr(rc));
    return since;
}

void mem_get_stats(mem_t *m, mem_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    st->nseries = m->nser;
    st->ticks = m->ticks;
    st->samples = m->samples;
    st->oldest_ram_ts = mem_oldest_ram(m);
    pthread_mutex_unlock(&m->lock);
    pthread_mutex_lock(&m->qlock);
    st->rows_written = m->rows_written;
    st->writer_batches = m->batches;
    st->dropped_batches = m->dropped;
    st->queue_depth = m->qdepth;
    st->write_failing_since = m->wfail_since;
    if (m->wfail_since)
        snprintf(st->write_error, sizeof st->write_error, "%s", sqlite3_errstr(m->wfail_rc));
    pthread_mutex_unlock(&m->qlock);
    char wal[sizeof m->path + 8];
    snprintf(wal, sizeof wal, "%s-wal", m->path);
    st->db_bytes = file_size(m->path) + file_size(wal);
}
