/* store.c: the SQLite side of opening HiDB: connections and pragmas (WAL,
 * synchronous=NORMAL, busy timeout), the versioned schema and its ordered
 * migrations, and the restore at open: series table and the RAM window from
 * the raw rows (the rollups need no restore: they are built from disk). */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Migration i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 0 -> 1: first schema */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY) WITHOUT ROWID;"
    "CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " labels TEXT NOT NULL DEFAULT '', unit TEXT NOT NULL DEFAULT '',"
    " help TEXT NOT NULL DEFAULT '', kind INTEGER NOT NULL DEFAULT 0,"
    " UNIQUE(name, labels));"
    /* one row per tick: float32 little-endian values indexed by series id */
    "CREATE TABLE raw (ts INTEGER PRIMARY KEY, v BLOB NOT NULL);"
    /* rollups: one row per (series, chunk), data = the chunk's buckets
     * encoded as in chunk.c; chunks of 5 min (10 s tier), 1 h (1 min), 1 day (1 h) */
    "CREATE TABLE rollup_10s (series INTEGER NOT NULL, chunk_ts INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY (series, chunk_ts)) WITHOUT ROWID;"
    "CREATE TABLE rollup_1m (series INTEGER NOT NULL, chunk_ts INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY (series, chunk_ts)) WITHOUT ROWID;"
    "CREATE TABLE rollup_1h (series INTEGER NOT NULL, chunk_ts INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY (series, chunk_ts)) WITHOUT ROWID;"
    "CREATE TABLE events (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, type TEXT NOT NULL,"
    " severity TEXT NOT NULL, source TEXT NOT NULL DEFAULT '', payload TEXT NOT NULL DEFAULT '{}');"
    "CREATE INDEX events_ts ON events(ts);"
    "CREATE INDEX events_type ON events(type);",
    /* 1 -> 2: the anomaly detectors' learned state (src/detect), one blob per
     * series as detect_save() writes it, so a restart keeps what normal is */
    ("CREATE TABLE detector_state (series INTEGER PRIMARY KEY, data BLOB NOT NULL,"
     " saved_ms INTEGER NOT NULL);"),
    /* 2 -> 3: the brain's remembered cases (src/brain/cases.c), one JSON row each */
    "CREATE TABLE IF NOT EXISTS cases (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, data TEXT NOT NULL);",
    /* 3 -> 4: the operators' learned preferences (src/brain/prefs.c), one JSON row each */
    "CREATE TABLE IF NOT EXISTS prefs (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, data TEXT NOT NULL);",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int mem_sql_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* Maps an SQLite result code to -errno (db: for the system errno of a
 * file that cannot open; may be NULL). */
int mem_sql_errno(sqlite3 *db, int rc)
{
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return -EACCES;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_CANTOPEN: {
        int e = db ? sqlite3_system_errno(db) : 0;
        return e ? -e : -EIO;
    }
    default: return -EIO;
    }
}

static int fail(mem_t *m, sqlite3 *db, int rc, const char *what, char *err, size_t errlen)
{
    const char *msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
        return core_err(err, errlen, -EIO, "%s: %s: %s (the file was left untouched; move it away "
                       "to start a new memory)", m->path, what, msg);
    return core_err(err, errlen, mem_sql_errno(db, rc), "%s: %s: %s", m->path, what, msg);
}

static int pragma(mem_t *m, sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    int rc = mem_sql_exec(db, sql);
    return rc ? fail(m, db, rc, sql, err, errlen) : 0;
}

/* Reads one integer from a query (0 when no row). */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
}

int mem_store_open(mem_t *m, sqlite3 **out, bool readonly, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (readonly ? 0 : SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(m->path, &db, flags, NULL);
    if (rc) {
        rc = fail(m, db, rc, "cannot open", err, errlen);
        sqlite3_close(db);
        return rc;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);
    /* The first statement reads the header: a foreign file fails here. */
    int64_t appid;
    rc = query_int(db, "PRAGMA application_id", &appid);
    if (rc) {
        rc = fail(m, db, rc, "cannot read", err, errlen);
    } else if (appid && appid != MEM_APP_ID) {
        rc = core_err(err, errlen, -EINVAL, "%s: not an IPPOC memory (application_id %lld)",
                     m->path, (long long)appid);
    } else {
        rc = pragma(m, db, readonly ? "PRAGMA query_only=1" : "PRAGMA journal_mode=WAL", err, errlen);
        if (!rc)
            rc = pragma(m, db, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256;"
                        "PRAGMA temp_store=MEMORY; PRAGMA journal_size_limit=67108864", err, errlen);
    }
    if (rc) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

static int check_wal(mem_t *m, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->wdb, "PRAGMA journal_mode", -1, &st, NULL);
    if (rc)
        return fail(m, m->wdb, rc, "journal_mode", err, errlen);
    bool wal = sqlite3_step(st) == SQLITE_ROW &&
               !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    if (!wal)
        return core_err(err, errlen, -EIO, "%s: cannot switch to WAL mode", m->path);
    return 0;
}

static int apply_migrations(mem_t *m, int from, char *err, size_t errlen)
{
    char sql[96];
    for (int v = from; v < NMIGRATIONS; v++) {
        int rc = mem_sql_exec(m->wdb, migrations[v]);
        if (rc)
            return fail(m, m->wdb, rc, "schema migration", err, errlen);
        log_info("memory: %s: schema migrated to version %d", m->path, v + 1);
    }
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d; PRAGMA application_id=%d", NMIGRATIONS,
             MEM_APP_ID);
    int rc = mem_sql_exec(m->wdb, sql);
    return rc ? fail(m, m->wdb, rc, "schema version", err, errlen) : 0;
}

int mem_store_migrate(mem_t *m, char *err, size_t errlen)
{
    int rc = check_wal(m, err, errlen);
    if (rc)
        return rc;
    rc = mem_sql_exec(m->wdb, "BEGIN IMMEDIATE");
    if (rc)
        return fail(m, m->wdb, rc, "cannot lock for migration", err, errlen);
    int64_t v;
    rc = query_int(m->wdb, "PRAGMA user_version", &v);
    if (rc)
        rc = fail(m, m->wdb, rc, "cannot read schema version", err, errlen);
    else if (v > NMIGRATIONS || v < 0)
        rc = core_err(err, errlen, -EPROTONOSUPPORT, "%s: schema version %lld is newer than this "
                     "ippocd knows (%d): refusing to open it (upgrade ippocd or use another state_dir)",
                     m->path, (long long)v, NMIGRATIONS);
    else if (v < NMIGRATIONS)
        rc = apply_migrations(m, (int)v, err, errlen);
    if (rc) {
        mem_sql_exec(m->wdb, "ROLLBACK");
        return rc;
    }
    rc = mem_sql_exec(m->wdb, "COMMIT");
    return rc ? fail(m, m->wdb, rc, "cannot commit migration", err, errlen) : 0;
}

/* ---- restore ------------------------------------------------------------- */

static const char *col_text(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return s ? s : "";
}

static int load_series(mem_t *m, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(m->wdb, "SELECT id, name, labels, unit, help, kind FROM series "
                                "ORDER BY id", -1, &st, NULL);
    if (rc)
        return fail(m, m->wdb, rc, "cannot read series", err, errlen);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        int kind = sqlite3_column_int(st, 5) == MEM_RATE ? MEM_RATE : MEM_GAUGE;
        int r = id < 0 || id >= MEM_MAX_SERIES ? -ERANGE :
                mem_series_insert(m, (int)id, col_text(st, 1), col_text(st, 2), col_text(st, 3),
                                  col_text(st, 4), kind);
        if (r) {
            sqlite3_finalize(st);
            return core_err(err, errlen, r == -ENOMEM ? r : -EIO, "%s: series %lld: cannot load "
                           "(%s)", m->path, (long long)id, strerror(-r));
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(m, m->wdb, rc, "cannot read series", err, errlen);
}

/* Decodes a raw blob into vals (NaN past its end); returns the count. */
static int decode_raw(const void *blob, int bytes, float *vals, int n)
{
    int k = bytes / 4;
    if (k > n)
        k = n;
    const unsigned char *p = blob;
    for (int i = 0; i < k; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&vals[i], &u, 4);
    }
    for (int i = k; i < n; i++)
        vals[i] = NAN;
    return n;
}

/* Ids are never handed out twice: next_id goes past every id the disk refers
 * to, not only past the series rows. A registration can be missing (lost
 * with a disk that filled up before this was fixed, or a series row written
 * after the raw rows that carry its values never made it) while raw rows
 * (one float32 per id: the longest row is a lower bound), rollup chunks or
 * the series_hwm mark the writer keeps with the raw rows still hold values at
 * its id: a new series at that id would inherit them. Such ids stay holes. */
static int reserve_ids(mem_t *m, char *err, size_t errlen)
{
    static const char *const src[] = {
        "SELECT value FROM meta WHERE key = 'series_hwm'",
        "SELECT max(length(v)) / 4 FROM raw",
        "SELECT max(series) + 1 FROM rollup_10s",
        "SELECT max(series) + 1 FROM rollup_1m",
        "SELECT max(series) + 1 FROM rollup_1h",
    };
    int64_t bound = 0;
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++) {
        int64_t v;
        int rc = query_int(m->wdb, src[i], &v);
        if (rc)
            return fail(m, m->wdb, rc, "cannot read series ids", err, errlen);
        if (v > MEM_MAX_SERIES) { /* never written so: damaged */
            log_warn("memory: %s: ignored series id bound %lld (%s): past the limit %d",
                     m->path, (long long)v, src[i], MEM_MAX_SERIES);
            continue;
        }
        if (i == 0)
            m->series_hwm = v > 0 ? (int)v : 0;
        if (v > bound)
            bound = v;
    }
    if (bound <= m->next_id)
        return 0;
    log_warn("memory: %s: %lld series ids below %lld have stored data but no series row: "
             "they stay unused", m->path, (long long)bound - m->nser, (long long)bound);
    int rc = mem_series_reserve(m, (int)bound);
    return rc ? core_err(err, errlen, rc, "memory: out of memory") : 0;
}

static int restore_ring(mem_t *m, char *err, size_t errlen)
{
    int64_t last;
    int rc = query_int(m->wdb, "SELECT coalesce(max(ts), 0) FROM raw", &last);
    if (rc)
        return fail(m, m->wdb, rc, "cannot read raw rows", err, errlen);
    if (last <= 0)
        return 0;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(m->wdb, "SELECT ts, v FROM raw WHERE ts > ? ORDER BY ts", -1, &st, NULL);
    if (rc)
        return fail(m, m->wdb, rc, "cannot read raw rows", err, errlen);
    sqlite3_bind_int64(st, 1, last - (int64_t)m->nslots * 1000);
    float *vals = malloc(sizeof *vals * (size_t)(m->next_id ? m->next_id : 1));
    if (!vals) {
        sqlite3_finalize(st);
        return -ENOMEM;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t ts = sqlite3_column_int64(st, 0);
        if (ts % 1000 || ts <= m->last_tick)
            continue;
        decode_raw(sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1), vals, m->next_id);
        mem_ring_store(m, ts, vals, m->next_id);
    }
    free(vals);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(m, m->wdb, rc, "cannot read raw rows", err, errlen);
}

/* Event ids continue after the highest ever stored (pruning keeps a mark). */
static int load_event_id(mem_t *m, char *err, size_t errlen)
{
    int64_t id;
    int rc = query_int(m->wdb, "SELECT max(coalesce((SELECT max(id) FROM events), 0), "
                       "coalesce((SELECT value FROM meta WHERE key = 'event_hwm'), 0))", &id);
    if (rc)
        return fail(m, m->wdb, rc, "cannot read events", err, errlen);
    m->ev_last = m->ev_committed = id;
    return 0;
}

int mem_store_load(mem_t *m, char *err, size_t errlen)
{
    int rc = load_series(m, err, errlen);
    if (!rc)
        rc = reserve_ids(m, err, errlen);
    if (!rc)
        rc = load_event_id(m, err, errlen);
    if (!rc)
        rc = restore_ring(m, err, errlen);
    if (!rc && m->last_tick)
        log_info("memory: restored %d series, RAM window from %lld to %lld", m->nser,
                 (long long)mem_oldest_ram(m), (long long)m->last_tick);
    return rc;
}
