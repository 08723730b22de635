/* cases.c: the brain's remembered cases in the store (table cases, schema
 * version 3): one row per case, its JSON text as src/brain writes it. A save
 * is one writer job (the caller never waits on SQLite) that replaces the
 * row; a load reads the committed rows through the reader connection. The
 * JSON is opaque here: src/brain checks it. The JSON-row save and load
 * helpers here serve prefs.c too. */
#include "memory/mem_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JSON-row save as a writer job of this kind (NULL json: a delete, for
 * the kinds that have one). Serves cases and prefs. */
int mem_json_row_save(mem_t *m, int kind, int64_t id, int64_t ts_ms, const char *json)
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
    j->kind = kind;
    j->u.kase.id = id;
    j->u.kase.ts = ts_ms > 0 ? ts_ms : core_now_ms();
    if (json) {
        memcpy(j->data, json, len + 1);
        j->u.kase.json = j->data;
    }
    return mem_enqueue(m, j, false, NULL);
}

/* Reads the committed rows of a JSON-row table (id, ts, data; `what` names
 * them in errors) in id order through the reader connection, calling fn on
 * each until it returns nonzero. Serves cases and prefs. */
int mem_json_rows_load(mem_t *m, const char *table, const char *what,
                       int (*fn)(void *ud, int64_t id, int64_t ts, const char *json), void *ud, char *err,
                       size_t errlen)
{
    if (!m || !fn)
        return core_err(err, errlen, -EINVAL, "memory: no store or callback");
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT id, ts, data FROM %s ORDER BY id", table);
    pthread_mutex_lock(&m->rlock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->rdb, sql, -1, &st, NULL);
    if (rc) {
        rc = core_err(err, errlen, -EIO, "%s: cannot read %s: %s", m->path, what, sqlite3_errmsg(m->rdb));
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
        r = core_err(err, errlen, -EIO, "%s: cannot read %s: %s", m->path, what, sqlite3_errmsg(m->rdb));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->rlock);
    return r;
}

int mem_case_save(mem_t *m, int64_t id, int64_t ts_ms, const char *json)
{
    return json ? mem_json_row_save(m, MEM_JOB_CASE, id, ts_ms, json) : -EINVAL;
}

int mem_case_apply(mem_t *m, mem_job *j)
{
    sqlite3_stmt *st = m->st_case;
    sqlite3_bind_int64(st, 1, j->u.kase.id);
    sqlite3_bind_int64(st, 2, j->u.kase.ts);
    sqlite3_bind_text(st, 3, j->u.kase.json, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

int mem_case_load(mem_t *m, int (*fn)(void *ud, int64_t id, int64_t ts, const char *json), void *ud, char *err,
                  size_t errlen)
{
    return mem_json_rows_load(m, "cases", "cases", fn, ud, err, errlen);
}
