/* prefs.c: the operators' learned preferences in the store (table prefs,
 * schema version 4): one row per preference, its JSON text as src/brain
 * writes it. A save (or a delete, when an operator forgets one) is one
 * writer job; a load reads the committed rows through the reader
 * connection. The JSON is opaque here: src/brain/prefs.c checks it. */
#include "memory/mem_int.h"

#include <errno.h>

int mem_pref_save(mem_t *m, int64_t id, int64_t ts_ms, const char *json)
{
    return mem_json_row_save(m, MEM_JOB_PREF, id, ts_ms, json);
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
    return mem_json_rows_load(m, "prefs", "preferences", fn, ud, err, errlen);
}
