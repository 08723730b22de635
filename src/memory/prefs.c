/* prefs.c: the operators' learned preferences in the store (table prefs,
 * schema version 4): one row per preference, its JSON text as src/brain
 * writes it. A save (or a delete, when an operator forgets one) is one
 * writer job; a load reads the committed rows through the reader
 * connection. The JSON is opaque here: src/brain/prefs.c checks it. */
#include "memory/mem_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int mem_pref_save(mem_t *m, int64_t id, int64_t ts_ms, const char *json)
{
    if (!m || id <= 0)
        return -EINVAL;
    size_t len = json ? strlen(json) : 0;
    if (len > MEM_EVENT_PAYLOAD_MAX)
        return -E2BIG;
    mem_job *j = malloc(sizeof *j + len + 1);
    if (!j)
        return -ENOMEM;
    memset(j, 0, sizeof *j);
    j->kind = MEM_JOB_PREF;
    j->u.kase.id = id;
    j->u.kase.ts = ts_ms > 0 ? ts_ms : core_now_ms();
    if (json) {
        memcpy(j->data, json, len + 1);
        j->u.kase.json = j->data;
    }
    return mem_enqueue(m, j, false, NULL);
}

/* Writer thread: rare (a person's decision), so prepared on the spot. */
int mem_pref_apply(mem_t *m, mem_job *j)
{
    sqlite3_stmt *st;
    const char *sql = j->u.kase.json ? "INSERT OR REPLACE INTO prefs(id, ts, data) VALUES (?, ?, ?)"
                                     : "DELETE FROM prefs WHERE id = ?";
    int rc = sqlite3_prepare_v2(m->wdb, sql, -1, &st, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, j->u.kase.id);
    if (j->u.kase.json) {
        sqlite3_bind_int64(st, 2, j->u.kase.ts);
        sqlite3_bind_text(st, 3, j->u.kase.json, -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

int mem_pref_load(mem_t *m, int (*fn)(void *ud, int64_t id, int64_t ts, const char *json), void *ud, char *err,
                  size_t errlen)
{
    if (!m || !fn)
        return mem_err(err, errlen, -EINVAL, "memory: no store or callback");
    pthread_mutex_lock(&m->rlock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->rdb, "SELECT id, ts, data FROM prefs ORDER BY id", -1, &st, NULL);
    if (rc) {
        rc = mem_err(err, errlen, -EIO, "%s: cannot read preferences: %s", m->path, sqlite3_errmsg(m->rdb));
        pthread_mutex_unlock(&m->rlock);
        return rc;
    }
    int r = 0;
    while (!r && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 2);
        if (text)
            r = fn(ud, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), text);
    }
    if (!r && rc != SQLITE_DONE)
        r = mem_err(err, errlen, -EIO, "%s: cannot read preferences: %s", m->path, sqlite3_errmsg(m->rdb));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->rlock);
    return r;
}
