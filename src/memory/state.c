/* state.c: the anomaly detectors' learned state in the store (table
 * detector_state, one blob per series, schema version 2). A save copies the
 * blobs into one writer job, so the loop never waits on SQLite; a load reads
 * the committed rows through the reader connection. The blobs are opaque
 * here: src/detect checks their version and checksum. */
#include "memory/mem_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static size_t rec_size(size_t len)
{
    return (sizeof(mem_state_rec) + len + 7) & ~(size_t)7;
}

int mem_detector_save(mem_t *m, const mem_blob *b, size_t n, int64_t ts_ms)
{
    if (!m || (n && !b) || n > MEM_MAX_SERIES)
        return -EINVAL;
    if (n == 0)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (b[i].series < 0 || b[i].series >= MEM_MAX_SERIES || !b[i].data || b[i].len == 0 ||
            b[i].len > MEM_BLOB_MAX)
            return -EINVAL;
        total += rec_size(b[i].len);
    }
    mem_job *j = malloc(sizeof *j + total);
    if (!j)
        return -ENOMEM;
    memset(j, 0, sizeof *j);
    j->kind = MEM_JOB_STATE;
    j->u.state.n = (int)n;
    j->u.state.ts = ts_ms > 0 ? ts_ms : core_now_ms();
    char *p = j->data;
    for (size_t i = 0; i < n; i++) {
        mem_state_rec r = {b[i].series, (uint32_t)b[i].len};
        memcpy(p, &r, sizeof r);
        memcpy(p + sizeof r, b[i].data, b[i].len);
        memset(p + sizeof r + b[i].len, 0, rec_size(b[i].len) - sizeof r - b[i].len);
        p += rec_size(b[i].len);
    }
    return mem_enqueue(m, j, false, NULL); /* -ENOBUFS: two saves already wait */
}

int mem_detector_load(mem_t *m, int (*fn)(void *ud, int series, const void *data, size_t len), void *ud,
                      char *err, size_t errlen)
{
    if (!m || !fn)
        return core_err(err, errlen, -EINVAL, "memory: no store or callback");
    pthread_mutex_lock(&m->rlock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->rdb, "SELECT series, data FROM detector_state ORDER BY series", -1, &st, NULL);
    if (rc) {
        rc = core_err(err, errlen, -EIO, "%s: cannot read detector state: %s", m->path, sqlite3_errmsg(m->rdb));
        pthread_mutex_unlock(&m->rlock);
        return rc;
    }
    int r = 0;
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const void *data = sqlite3_column_blob(st, 1);
        int len = sqlite3_column_bytes(st, 1);
        if (id < 0 || id >= MEM_MAX_SERIES || !data || len <= 0)
            continue; /* not something this ippocd wrote: skip it */
        r = fn(ud, (int)id, data, (size_t)len);
    }
    if (!r && rc != SQLITE_DONE)
        r = core_err(err, errlen, -EIO, "%s: cannot read detector state: %s", m->path, sqlite3_errmsg(m->rdb));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->rlock);
    return r;
}
