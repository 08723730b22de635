/* know.c: the knowledge store's file and handle: opening its own SQLite file
 * (WAL, a versioned schema with ordered migrations as in store.c, FTS5 with
 * the porter+unicode61 tokenizer), the cached statements, the embedding
 * model's statistics (loaded at open, saved after batches of adds and at
 * close), the choice of embedder, the in-RAM vector index's rebuild, and the
 * small readers: meta, stats and docs as JSON. Adding and removing documents
 * is know_doc.c, searching know_search.c, links know_link.c. */
#include "memory/know_priv.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KNOW_APP_ID 0x49504b4e /* "IPKN" in PRAGMA application_id */
#define MODEL_SAVE_ADDS 64     /* adds between saves of the statistics... */
#define MODEL_SAVE_MS 10000    /* ...or this long since the last save */

/* Migration i brings the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 0 -> 1: first schema. Times are Unix ms. A doc's hash is of its title
     * and text (an unchanged re-add is a no-op); confidence decays from
     * max(last_used, decayed) on (know_doc.c); off is the chunk's byte offset
     * in the doc's text. The FTS table is contentless: its rows are deleted
     * with the text they were indexed with, read back from chunks and docs. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE docs (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL UNIQUE,"
    " title TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT 'text', hash TEXT NOT NULL,"
    " ts INTEGER NOT NULL, added INTEGER NOT NULL, confidence REAL NOT NULL DEFAULT 1,"
    " pinned INTEGER NOT NULL DEFAULT 0, last_used INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0,"
    " decayed INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX docs_added ON docs(added);"
    "CREATE TABLE chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, doc INTEGER NOT NULL,"
    " ord INTEGER NOT NULL, off INTEGER NOT NULL, text TEXT NOT NULL,"
    " confidence REAL NOT NULL DEFAULT 1, last_used INTEGER NOT NULL, uses INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX chunks_doc ON chunks(doc, ord);"
    "CREATE VIRTUAL TABLE fts USING fts5(title, text, content='', tokenize='porter unicode61');"
    "CREATE TABLE vectors (chunk INTEGER PRIMARY KEY, dims INTEGER NOT NULL, v BLOB NOT NULL);"
    "CREATE TABLE links (id INTEGER PRIMARY KEY, from_node TEXT NOT NULL, rel TEXT NOT NULL,"
    " to_node TEXT NOT NULL, weight REAL NOT NULL, ts INTEGER NOT NULL, UNIQUE(from_node, rel, to_node));"
    "CREATE INDEX links_to ON links(to_node);"
    "CREATE TABLE model (id INTEGER PRIMARY KEY CHECK (id = 1), data BLOB NOT NULL, saved INTEGER NOT NULL);",
    /* 1 -> 2: chunks decay on their own clock too (know_dream.c) */
    "ALTER TABLE chunks ADD COLUMN decayed INTEGER NOT NULL DEFAULT 0;",
};
#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

static const char *const stmt_sql[KS_N] = {
    [KS_DOC_GET] = "SELECT id, hash FROM docs WHERE source = ?",
    [KS_DOC_INS] = "INSERT INTO docs (source, title, kind, hash, ts, added, confidence, pinned, last_used, decayed)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?6, ?6)",
    [KS_DOC_UPD] = "UPDATE docs SET title = ?2, kind = ?3, hash = ?4, ts = ?5, added = ?6, confidence = ?7,"
                   " pinned = max(pinned, ?8), last_used = ?6, decayed = ?6 WHERE id = ?1",
    [KS_DOC_CHUNKS] = "SELECT c.id, c.text, d.title FROM chunks c JOIN docs d ON d.id = c.doc"
                      " WHERE c.doc = ? ORDER BY c.id",
    [KS_CHUNK_INS] = "INSERT INTO chunks (doc, ord, off, text, confidence, last_used, decayed)"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    [KS_FTS_INS] = "INSERT INTO fts (rowid, title, text) VALUES (?, ?, ?)",
    [KS_FTS_DEL] = "INSERT INTO fts (fts, rowid, title, text) VALUES ('delete', ?, ?, ?)",
    [KS_VEC_PUT] = "INSERT OR REPLACE INTO vectors (chunk, dims, v) VALUES (?, ?, ?)",
    [KS_BM25] = "SELECT rowid, bm25(fts, 2.0, 1.0) AS s FROM fts WHERE fts MATCH ? ORDER BY s LIMIT ?",
    [KS_BM25X] = "SELECT rowid, know_bm25(fts) AS s FROM fts WHERE fts MATCH ? ORDER BY s LIMIT ?",
    [KS_HIT] = "SELECT c.doc, c.text, c.confidence, d.source, d.title, d.kind, d.ts FROM chunks c"
               " JOIN docs d ON d.id = c.doc WHERE c.id = ?",
    [KS_USE_CHUNK] = "UPDATE chunks SET uses = uses + ?3, last_used = max(last_used, ?2) WHERE id = ?1",
    [KS_USE_DOC] = "UPDATE docs SET uses = uses + ?3, last_used = max(last_used, ?2) WHERE id = ?1",
    [KS_VOCAB] = "SELECT doc FROM temp.know_vocab WHERE term = ?",
};

int know_sqlerr(mem_know *k, int rc, const char *what, char *err, size_t errlen)
{
    const char *msg = k->db ? sqlite3_errmsg(k->db) : sqlite3_errstr(rc);
    return core_err(err, errlen, mem_sql_errno(NULL, rc), "%s: %s: %s", k->path, what, msg);
}

int64_t know_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int know_exec(mem_know *k, const char *sql)
{
    return sqlite3_exec(k->db, sql, NULL, NULL, NULL);
}

char *know_embed_text(const char *title, const char *text)
{
    size_t a = strlen(title), b = strlen(text);
    char *s = malloc(a + b + 2);
    if (!s)
        return NULL;
    memcpy(s, title, a);
    s[a] = '\n';
    memcpy(s + a + 1, text, b + 1);
    return s;
}

int know_embed(mem_know *k, const char *const *texts, size_t n, float *out, char *err, size_t errlen)
{
    if (!k->fn) {
        for (size_t i = 0; i < n; i++)
            mem_embed_text(k->model, texts[i], out + i * MEM_KNOW_DIM);
        return 0;
    }
    for (size_t i = 0; i < n; i += KNOW_BATCH) {
        size_t m = n - i < KNOW_BATCH ? n - i : KNOW_BATCH;
        int rc = k->fn(k->ud, texts + i, m, out + i * (size_t)k->dims, k->dims, err, errlen);
        if (rc)
            return rc < 0 ? rc : -EIO;
    }
    return 0;
}

static int64_t query_i64(mem_know *k, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = 0;
    if (sqlite3_prepare_v2(k->db, sql, -1, &st, NULL))
        return 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void model_save(mem_know *k)
{
    void *blob;
    size_t len;
    if (mem_embed_model_save(k->model, &blob, &len))
        return;
    sqlite3_stmt *st;
    if (!sqlite3_prepare_v2(k->db, "INSERT OR REPLACE INTO model (id, data, saved) VALUES (1, ?, ?)", -1, &st,
                            NULL)) {
        sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, know_now_ms());
        if (sqlite3_step(st) == SQLITE_DONE) {
            k->model_dirty = false;
            k->model_unsaved = 0;
            k->model_saved_ms = know_now_ms();
        }
        sqlite3_finalize(st);
    }
    free(blob);
}

void know_model_maybe_save(mem_know *k, bool force)
{
    if (!k->model_dirty)
        return;
    if (force || k->model_unsaved >= MODEL_SAVE_ADDS || know_now_ms() - k->model_saved_ms >= MODEL_SAVE_MS)
        model_save(k);
}

/* Counts every stored chunk again (a lost or foreign statistics blob). */
static int model_rebuild(mem_know *k)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, "SELECT d.title, c.text FROM chunks c JOIN docs d ON d.id = c.doc", -1,
                                &st, NULL);
    if (rc)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char *t = know_embed_text((const char *)sqlite3_column_text(st, 0), (const char *)sqlite3_column_text(st, 1));
        if (t)
            mem_embed_model_add(k->model, t, 1);
        free(t);
    }
    sqlite3_finalize(st);
    k->model_dirty = true;
    return rc == SQLITE_DONE ? 0 : rc;
}

static int model_load(mem_know *k)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, "SELECT data FROM model WHERE id = 1", -1, &st, NULL);
    if (rc)
        return rc;
    bool ok = false;
    if (sqlite3_step(st) == SQLITE_ROW)
        ok = !mem_embed_model_load(k->model, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    if (!ok && query_i64(k, "SELECT count(*) FROM chunks") > 0)
        return model_rebuild(k);
    return 0;
}

int know_index_load(mem_know *k, char *err, size_t errlen)
{
    know_index_free(&k->ix);
    k->ix.dims = k->dims;
    size_t want = (size_t)query_i64(k, "SELECT count(*) FROM vectors");
    if (know_index_reserve(&k->ix, want ? want : 1))
        return core_err(err, errlen, -ENOMEM, "%s: no memory for %zu vectors", k->path, want);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, "SELECT chunk, v FROM vectors WHERE dims = ? ORDER BY chunk", -1, &st, NULL);
    if (rc)
        return know_sqlerr(k, rc, "reading vectors", err, errlen);
    sqlite3_bind_int(st, 1, k->dims);
    size_t bytes = (size_t)k->dims * sizeof(float);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((size_t)sqlite3_column_bytes(st, 1) != bytes)
            continue;
        if (know_index_append(&k->ix, sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1))) {
            sqlite3_finalize(st);
            return core_err(err, errlen, -ENOMEM, "%s: no memory for the vectors", k->path);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return know_sqlerr(k, rc, "reading vectors", err, errlen);
    float *qv = realloc(k->qv, bytes);
    if (!qv)
        return -ENOMEM;
    k->qv = qv;
    return 0;
}

static int migrate(mem_know *k, char *err, size_t errlen)
{
    int64_t v = query_i64(k, "PRAGMA user_version");
    if (v > NMIGRATIONS)
        return core_err(err, errlen, -EINVAL, "%s: schema version %lld is newer than this build knows (%d)",
                        k->path, (long long)v, NMIGRATIONS);
    for (int i = (int)v; i < NMIGRATIONS; i++) {
        char sql[64];
        int rc = know_exec(k, "BEGIN IMMEDIATE");
        if (!rc)
            rc = know_exec(k, migrations[i]);
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", i + 1);
        if (!rc)
            rc = know_exec(k, sql);
        if (!rc)
            rc = know_exec(k, "COMMIT");
        if (rc) {
            int e = know_sqlerr(k, rc, "migrating the schema", err, errlen);
            know_exec(k, "ROLLBACK");
            return e;
        }
    }
    return 0;
}

/* know_halve(confidence, elapsed_ms, half_life_ms): the decay (know_dream.c),
 * in C because SQLite's own math functions are a build option. */
static void sql_halve(sqlite3_context *cx, int argc, sqlite3_value **v)
{
    (void)argc;
    double c = sqlite3_value_double(v[0]), e = sqlite3_value_double(v[1]), hl = sqlite3_value_double(v[2]);
    sqlite3_result_double(cx, hl > 0 && e > 0 ? c * pow(0.5, e / hl) : c);
}

/* The index's tokenizer, for the query side (know_search.c); without it
 * every query term is scored, however common. */
static void open_tokenizer(mem_know *k)
{
    fts5_api *api = NULL;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(k->db, "SELECT fts5(?1)", -1, &st, NULL))
        return;
    sqlite3_bind_pointer(st, 1, (void *)&api, "fts5_api_ptr", NULL);
    sqlite3_step(st);
    sqlite3_finalize(st);
    void *ud = NULL;
    if (!api || api->iVersion < 2)
        return;
    k->have_bm25x = !api->xCreateFunction(api, "know_bm25", k, know_bm25, NULL);
    if (api->xFindTokenizer(api, "porter", &ud, &k->tok))
        return;
    if (k->tok.xCreate(ud, NULL, 0, &k->tokp))
        k->tokp = NULL;
}

static int open_db(mem_know *k, char *err, size_t errlen)
{
    int rc = sqlite3_open_v2(k->path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc)
        return know_sqlerr(k, rc, "cannot open", err, errlen);
    sqlite3_extended_result_codes(k->db, 1);
    sqlite3_busy_timeout(k->db, 5000);
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(k->db, "PRAGMA application_id", -1, &st, NULL);
    int64_t app = 0;
    if (!rc) {
        rc = sqlite3_step(st);
        app = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : rc;
        sqlite3_finalize(st);
    }
    if (rc)
        return know_sqlerr(k, rc, "cannot read (not a knowledge store?)", err, errlen);
    if (app && app != KNOW_APP_ID)
        return core_err(err, errlen, -EINVAL, "%s: not an IPPOC knowledge store (application_id %lld)", k->path,
                        (long long)app);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA application_id = %d", KNOW_APP_ID);
    if ((rc = know_exec(k, "PRAGMA journal_mode=WAL")) || (rc = know_exec(k, sql)) ||
        (rc = know_exec(k, "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16384;"
                           "PRAGMA journal_size_limit=67108864")))
        return know_sqlerr(k, rc, "setting up", err, errlen);
    if ((rc = sqlite3_create_function(k->db, "know_halve", 3, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL, sql_halve,
                                      NULL, NULL)))
        return know_sqlerr(k, rc, "setting up", err, errlen);
    if ((rc = migrate(k, err, errlen)))
        return rc;
    if ((rc = know_exec(k, "CREATE VIRTUAL TABLE temp.know_vocab USING fts5vocab(main, fts, 'row')")))
        return know_sqlerr(k, rc, "setting up the vocabulary", err, errlen);
    open_tokenizer(k);
    for (int i = 0; i < KS_N; i++)
        if ((i != KS_BM25X || k->have_bm25x) &&
            (rc = sqlite3_prepare_v3(k->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &k->st[i], NULL)))
            return know_sqlerr(k, rc, stmt_sql[i], err, errlen);
    return 0;
}

int mem_know_open(const char *path, mem_know **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path)
        return core_err(err, errlen, -EINVAL, "knowledge store: no path");
    mem_know *k = calloc(1, sizeof *k);
    if (!k || !(k->path = strdup(path)) || !(k->model = mem_embed_model_new()) ||
        !(k->uses = malloc(KNOW_USES_MAX * sizeof *k->uses)) ||
        !(k->plan = malloc(sizeof *k->plan)) ||
        !(k->top_id = malloc(KNOW_TOPN * sizeof *k->top_id)) || !(k->top_s = malloc(KNOW_TOPN * sizeof *k->top_s))) {
        mem_know_close(k);
        return core_err(err, errlen, -ENOMEM, "%s: no memory", path);
    }
    pthread_mutex_init(&k->mu, NULL);
    k->dims = MEM_KNOW_DIM;
    int rc = open_db(k, err, errlen);
    if (!rc && (rc = model_load(k)))
        rc = know_sqlerr(k, rc, "loading the embedding statistics", err, errlen);
    if (!rc)
        rc = know_index_load(k, err, errlen);
    if (rc) {
        mem_know_close(k);
        return rc;
    }
    k->model_saved_ms = know_now_ms();
    k->nchunks = query_i64(k, "SELECT count(*) FROM chunks");
    *out = k;
    return 0;
}

void mem_know_close(mem_know *k)
{
    if (!k)
        return;
    if (k->db && k->uses)
        know_uses_flush(k);
    if (k->db && k->model)
        know_model_maybe_save(k, true);
    for (int i = 0; i < KS_N; i++)
        sqlite3_finalize(k->st[i]);
    if (k->tokp)
        k->tok.xDelete(k->tokp);
    if (k->db) {
        sqlite3_exec(k->db, "PRAGMA optimize", NULL, NULL, NULL);
        sqlite3_close(k->db);
        pthread_mutex_destroy(&k->mu);
    }
    mem_embed_model_free(k->model);
    know_index_free(&k->ix);
    free(k->qv);
    free(k->uses);
    free(k->dfc);
    free(k->plan);
    free(k->top_id);
    free(k->top_s);
    free(k->path);
    free(k);
}

void mem_know_set_embedder(mem_know *k, mem_embed_fn fn, void *ud, int dims)
{
    if (!k)
        return;
    if (!fn || dims <= 0)
        fn = NULL, ud = NULL, dims = MEM_KNOW_DIM;
    pthread_mutex_lock(&k->mu);
    k->fn = fn, k->ud = ud;
    if (dims != k->dims) {
        k->dims = dims;
        char err[256];
        if (know_index_load(k, err, sizeof err)) /* out of memory: search by BM25 until a reembed */
            know_index_free(&k->ix), k->ix.dims = dims;
    }
    char d[16];
    snprintf(d, sizeof d, "%d", dims);
    sqlite3_stmt *st;
    if (!sqlite3_prepare_v2(k->db, "INSERT OR REPLACE INTO meta (key, value) VALUES ('embedder', ?), ('dims', ?)",
                            -1, &st, NULL)) {
        sqlite3_bind_text(st, 1, fn ? "external" : "builtin", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, d, -1, SQLITE_TRANSIENT);
        sqlite3_step(st);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&k->mu);
}

int mem_know_meta_set(mem_know *k, const char *key, const char *value)
{
    if (!k || !key || !*key)
        return -EINVAL;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, value ? "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
                                             : "DELETE FROM meta WHERE key = ?", -1, &st, NULL);
    if (!rc) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (value)
            sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? 0 : 1;
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&k->mu);
    return rc ? -EIO : 0;
}

char *mem_know_meta_get(mem_know *k, const char *key)
{
    if (!k || !key)
        return NULL;
    char *v = NULL;
    pthread_mutex_lock(&k->mu);
    sqlite3_stmt *st;
    if (!sqlite3_prepare_v2(k->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL)) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW)
            v = strdup((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&k->mu);
    return v;
}

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

char *mem_know_stats_json(mem_know *k)
{
    if (!k)
        return NULL;
    pthread_mutex_lock(&k->mu);
    know_uses_flush(k);
    int64_t bytes = query_i64(k, "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()");
    json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:s, s:i, s:I, s:I, s:I, s:s}",
                          "docs", (json_int_t)query_i64(k, "SELECT count(*) FROM docs"),
                          "chunks", (json_int_t)query_i64(k, "SELECT count(*) FROM chunks"),
                          "links", (json_int_t)query_i64(k, "SELECT count(*) FROM links"),
                          "bytes", (json_int_t)bytes,
                          "embedder", k->fn ? "external" : "builtin",
                          "dims", k->dims,
                          "vectors", (json_int_t)k->ix.n,
                          "index_bytes", (json_int_t)(k->ix.cap * ((size_t)k->ix.dims * sizeof(float) + 8)),
                          "exact_max", (json_int_t)KNOW_EXACT_MAX,
                          "simd", know_vec_avx2() ? "avx2" : "scalar");
    pthread_mutex_unlock(&k->mu);
    return dump(j);
}

char *mem_know_docs_json(mem_know *k, int limit)
{
    if (!k)
        return NULL;
    if (limit <= 0 || limit > 10000)
        limit = limit <= 0 ? 100 : 10000;
    json_t *a = json_array();
    pthread_mutex_lock(&k->mu);
    know_uses_flush(k);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, "SELECT d.id, d.source, d.title, d.kind, d.ts, d.confidence, d.pinned,"
                                " d.uses, (SELECT count(*) FROM chunks c WHERE c.doc = d.id)"
                                " FROM docs d ORDER BY d.added DESC, d.id DESC LIMIT ?", -1, &st, NULL);
    if (!rc) {
        sqlite3_bind_int(st, 1, limit);
        while (a && sqlite3_step(st) == SQLITE_ROW)
            json_array_append_new(a, json_pack("{s:I, s:s, s:s, s:s, s:I, s:I, s:f, s:b, s:I}",
                "id", (json_int_t)sqlite3_column_int64(st, 0),
                "source", (const char *)sqlite3_column_text(st, 1),
                "title", (const char *)sqlite3_column_text(st, 2),
                "kind", (const char *)sqlite3_column_text(st, 3),
                "chunks", (json_int_t)sqlite3_column_int64(st, 8),
                "ts", (json_int_t)sqlite3_column_int64(st, 4),
                "confidence", sqlite3_column_double(st, 5),
                "pinned", sqlite3_column_int(st, 6),
                "uses", (json_int_t)sqlite3_column_int64(st, 7)));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&k->mu);
    if (rc) {
        json_decref(a);
        return NULL;
    }
    return dump(a);
}
