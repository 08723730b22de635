/* know_doc.c: documents in and out of the knowledge store: add (cut into
 * chunks, count in the embedding statistics, embed, then one transaction
 * writing the doc, its chunks, their FTS rows and vectors; a re-add of the
 * same source replaces the older chunks, an unchanged one is a no-op) and
 * remove. The RAM index and the statistics follow only once committed. */
#include "memory/know_priv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : rc;
}

static void hash_hex(const char *title, const char *kind, const char *text, char out[17])
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[] = {title, "\x1f", kind, "\x1f", text};
    for (size_t p = 0; p < 5; p++)
        for (const unsigned char *s = (const unsigned char *)parts[p]; *s; s++)
            h = (h ^ *s) * 1099511628211ull;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void know_gone_free(know_gone *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->texts[i]);
    free(g->texts);
    free(g->ids);
    memset(g, 0, sizeof *g);
}

void know_gone_apply(mem_know *k, know_gone *g)
{
    if (!g->n)
        return;
    k->changes += (int64_t)g->n;
    k->nchunks -= (int64_t)g->n;
    qsort(g->ids, g->n, sizeof *g->ids, cmp_i64);
    know_index_drop(&k->ix, g->ids, g->n);
    for (size_t i = 0; i < g->n; i++)
        if (g->texts[i]) {
            mem_embed_model_add(k->model, g->texts[i], -1);
            k->model_dirty = true;
        }
}

static int gone_push(know_gone *g, int64_t id, char *text)
{
    if (!(g->n & (g->n + 1)) || !g->n) { /* grow at 0, 1, 3, 7, ... */
        size_t cap = g->n ? (g->n + 1) * 2 : 8;
        int64_t *ids = realloc(g->ids, cap * sizeof *ids);
        if (!ids)
            return -ENOMEM;
        g->ids = ids;
        char **t = realloc(g->texts, cap * sizeof *t);
        if (!t)
            return -ENOMEM;
        g->texts = t;
    }
    g->ids[g->n] = id, g->texts[g->n] = text;
    g->n++;
    return 0;
}

int know_chunks_delete(mem_know *k, int64_t doc, know_gone *g, char *err, size_t errlen)
{
    sqlite3_stmt *st = k->st[KS_DOC_CHUNKS], *del = k->st[KS_FTS_DEL];
    sqlite3_bind_int64(st, 1, doc);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        const char *text = (const char *)sqlite3_column_text(st, 1), *title = (const char *)sqlite3_column_text(st, 2);
        sqlite3_bind_int64(del, 1, id);
        sqlite3_bind_text(del, 2, title, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(del, 3, text, -1, SQLITE_TRANSIENT);
        int r = step_done(del);
        if (r || gone_push(g, id, know_embed_text(title, text))) {
            sqlite3_reset(st);
            return r ? know_sqlerr(k, r, "deleting chunks", err, errlen)
                     : core_err(err, errlen, -ENOMEM, "%s: no memory", k->path);
        }
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return know_sqlerr(k, rc, "reading chunks", err, errlen);
    char sql[160];
    snprintf(sql, sizeof sql, "DELETE FROM vectors WHERE chunk IN (SELECT id FROM chunks WHERE doc = %lld);"
             "DELETE FROM chunks WHERE doc = %lld", (long long)doc, (long long)doc);
    if ((rc = know_exec(k, sql)))
        return know_sqlerr(k, rc, "deleting chunks", err, errlen);
    return 0;
}

/* One new chunk's row, FTS row and vector (v may be NULL). */
static int put_chunk(mem_know *k, int64_t doc, int ord, const know_span *sp, const char *title, const char *text,
                     double conf, int64_t now, const float *v, int64_t *id)
{
    sqlite3_stmt *st = k->st[KS_CHUNK_INS];
    sqlite3_bind_int64(st, 1, doc);
    sqlite3_bind_int(st, 2, ord);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)sp->off);
    sqlite3_bind_text(st, 4, text + sp->off, (int)sp->len, SQLITE_STATIC);
    sqlite3_bind_double(st, 5, conf);
    sqlite3_bind_int64(st, 6, now);
    int rc = step_done(st);
    if (rc)
        return rc;
    *id = sqlite3_last_insert_rowid(k->db);
    st = k->st[KS_FTS_INS];
    sqlite3_bind_int64(st, 1, *id);
    sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text + sp->off, (int)sp->len, SQLITE_STATIC);
    if ((rc = step_done(st)) || !v)
        return rc;
    st = k->st[KS_VEC_PUT];
    sqlite3_bind_int64(st, 1, *id);
    sqlite3_bind_int(st, 2, k->dims);
    sqlite3_bind_blob(st, 3, v, k->dims * (int)sizeof *v, SQLITE_STATIC);
    return step_done(st);
}

/* Looks source up: 1 with *id and hash when present, 0 when not, or an SQLite error. */
static int doc_get(mem_know *k, const char *source, int64_t *id, char hash[17])
{
    sqlite3_stmt *st = k->st[KS_DOC_GET];
    sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        snprintf(hash, 17, "%s", (const char *)sqlite3_column_text(st, 1));
        found = 1, rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? found : -rc;
}

typedef struct adding {
    know_span *sp;
    size_t n;
    char **et;   /* embed texts */
    float *vecs; /* n * dims, NULL when the embedder failed */
    int64_t *ids;
} adding;

static void adding_free(adding *a)
{
    for (size_t i = 0; a->et && i < a->n; i++)
        free(a->et[i]);
    free(a->et);
    free(a->sp);
    free(a->vecs);
    free(a->ids);
}

static int write_doc(mem_know *k, const mem_doc *d, const char *title, const char *kind, const char *hash,
                     double conf, int64_t now, int64_t *id, bool exists, adding *a, know_gone *g, char *err,
                     size_t errlen)
{
    int rc = know_exec(k, "BEGIN IMMEDIATE");
    if (rc)
        return know_sqlerr(k, rc, "starting a transaction", err, errlen);
    if (exists && (rc = know_chunks_delete(k, *id, g, err, errlen))) {
        know_exec(k, "ROLLBACK");
        return rc;
    }
    for (size_t i = 0; i < g->n; i++) { /* the old chunks' nodes are gone; doc:ID stays */
        char node[40];
        snprintf(node, sizeof node, "chunk:%lld", (long long)g->ids[i]);
        if (know_links_drop_node(k, node)) {
            know_exec(k, "ROLLBACK");
            return core_err(err, errlen, -EIO, "%s: dropping the links of %s", k->path, node);
        }
    }
    sqlite3_stmt *st = k->st[exists ? KS_DOC_UPD : KS_DOC_INS];
    int o = exists ? 1 : 0;
    if (exists)
        sqlite3_bind_int64(st, 1, *id);
    else
        sqlite3_bind_text(st, 1, d->source, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, title, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, d->ts_ms ? d->ts_ms : now);
    sqlite3_bind_int64(st, 6, now);
    sqlite3_bind_double(st, 7, conf);
    sqlite3_bind_int(st, 8, d->pinned);
    (void)o;
    rc = step_done(st);
    if (!rc && !exists)
        *id = sqlite3_last_insert_rowid(k->db);
    for (size_t i = 0; !rc && i < a->n; i++)
        rc = put_chunk(k, *id, (int)i, &a->sp[i], title, d->text, conf, now,
                       a->vecs ? a->vecs + i * (size_t)k->dims : NULL, &a->ids[i]);
    if (!rc)
        rc = know_exec(k, "COMMIT");
    if (rc) {
        int e = know_sqlerr(k, rc, "storing the document", err, errlen);
        know_exec(k, "ROLLBACK");
        return e;
    }
    return 0;
}

static int check_doc(const mem_doc *d, char *err, size_t errlen)
{
    if (!d || !d->source || !*d->source)
        return core_err(err, errlen, -EINVAL, "knowledge: a document needs a source");
    if (!d->text || !d->text[strspn(d->text, " \t\r\n\f\v")])
        return core_err(err, errlen, -EINVAL, "knowledge: %s: empty text", d->source);
    if (!(d->confidence >= 0 && d->confidence <= 1))
        return core_err(err, errlen, -EINVAL, "knowledge: %s: confidence %g is not within 0..1", d->source,
                        d->confidence);
    return 0;
}

/* The unchanged document's id (pinned again when asked): 1; 0 when it is
 * new or changed (*found, *id); an SQLite error as -rc. */
static int unchanged(mem_know *k, const mem_doc *d, const char *hash, int *found, int64_t *id)
{
    char old[17] = "";
    int f = doc_get(k, d->source, id, old);
    if (f < 0)
        return f;
    *found = f;
    if (!f || strcmp(old, hash))
        return 0;
    if (d->pinned) { /* a pin given again still counts */
        char sql[64];
        snprintf(sql, sizeof sql, "UPDATE docs SET pinned = 1 WHERE id = %lld", (long long)*id);
        know_exec(k, sql);
    }
    return 1;
}

static void count_in(mem_embed_model *m, adding *a, int sign)
{
    for (size_t i = 0; i < a->n; i++)
        mem_embed_model_add(m, a->et[i], sign);
}

/* Cuts the text and composes what each chunk is embedded as (no lock). */
static int prepare(mem_know *k, const mem_doc *d, const char *title, adding *a, char *err, size_t errlen)
{
    if (know_chunk(d->text, &a->sp, &a->n) || !(a->et = calloc(a->n, sizeof *a->et)) ||
        !(a->ids = calloc(a->n, sizeof *a->ids)))
        return core_err(err, errlen, -ENOMEM, "%s: no memory to cut %s", k->path, d->source);
    for (size_t i = 0; i < a->n; i++) {
        char *t = malloc(a->sp[i].len + 1);
        if (t)
            memcpy(t, d->text + a->sp[i].off, a->sp[i].len), t[a->sp[i].len] = 0;
        a->et[i] = t ? know_embed_text(title, t) : NULL;
        free(t);
        if (!a->et[i])
            return core_err(err, errlen, -ENOMEM, "%s: no memory", k->path);
    }
    return 0;
}

/* Embeds with an external embedder, outside the lock; NULL when it fails
 * (BM25 still finds the chunks; mem_know_reembed adds their vectors). */
static float *embed_ext(mem_embed_fn fn, void *ud, int dims, adding *a)
{
    float *v = malloc(a->n * (size_t)dims * sizeof *v);
    char err[256];
    for (size_t i = 0; v && i < a->n; i += KNOW_BATCH) {
        size_t m = a->n - i < KNOW_BATCH ? a->n - i : KNOW_BATCH;
        if (fn(ud, (const char *const *)a->et + i, m, v + i * (size_t)dims, dims, err, sizeof err)) {
            free(v);
            return NULL;
        }
    }
    return v;
}

/* Adds d in three steps: under the lock, the no-op check, counting in the
 * statistics and (built in) embedding; without it, an external embedder's
 * calls; under it again, the transaction (checked again: another add of the
 * same source may have come between). */
static int add_doc(mem_know *k, const mem_doc *d, int64_t *doc_id, int *chunks, char *err, size_t errlen)
{
    const char *title = d->title ? d->title : "";
    const char *kind = d->kind && *d->kind ? d->kind : "text";
    double conf = d->confidence > 0 ? d->confidence : 1.0;
    char hash[17];
    hash_hex(title, kind, d->text, hash);
    adding a = {0};
    int rc = prepare(k, d, title, &a, err, errlen), found = 0;
    if (rc) {
        adding_free(&a);
        return rc;
    }
    pthread_mutex_lock(&k->mu);
    int64_t id = 0;
    int same = unchanged(k, d, hash, &found, &id);
    if (same) {
        pthread_mutex_unlock(&k->mu);
        adding_free(&a);
        if (same < 0)
            return know_sqlerr(k, -same, "looking up the document", err, errlen);
        *doc_id = id, *chunks = 0;
        return 0;
    }
    mem_embed_model *counted = k->model;
    count_in(counted, &a, 1);
    mem_embed_fn fn = k->fn;
    void *ud = k->ud;
    int dims = k->dims;
    if (!fn && (a.vecs = malloc(a.n * (size_t)dims * sizeof *a.vecs)))
        know_embed(k, (const char *const *)a.et, a.n, a.vecs, err, errlen);
    if (fn) {
        pthread_mutex_unlock(&k->mu);
        a.vecs = embed_ext(fn, ud, dims, &a);
        pthread_mutex_lock(&k->mu);
    }
    if (k->model != counted) /* a reembed counted afresh meanwhile, without these */
        count_in(counted = k->model, &a, 1);
    if (a.vecs && (k->fn != fn || k->ud != ud || k->dims != dims)) { /* a new embedder meanwhile */
        free(a.vecs);
        a.vecs = NULL;
    }
    know_gone g = {0};
    same = fn ? unchanged(k, d, hash, &found, &id) : 0;
    if (same) {
        count_in(counted, &a, -1);
        rc = same < 0 ? know_sqlerr(k, -same, "looking up the document", err, errlen) : 0;
        *doc_id = id, *chunks = 0;
    } else if ((rc = write_doc(k, d, title, kind, hash, conf, know_now_ms(), &id, found, &a, &g, err, errlen))) {
        count_in(counted, &a, -1);
    } else {
        know_gone_apply(k, &g);
        if (a.vecs && know_index_reserve(&k->ix, k->ix.n + a.n) == 0)
            for (size_t i = 0; i < a.n; i++)
                know_index_append(&k->ix, a.ids[i], a.vecs + i * (size_t)k->dims);
        k->changes += (int64_t)a.n;
        k->nchunks += (int64_t)a.n;
        k->model_dirty = true;
        k->model_unsaved++;
        know_model_maybe_save(k, false);
        *doc_id = id, *chunks = (int)a.n;
    }
    pthread_mutex_unlock(&k->mu);
    know_gone_free(&g);
    adding_free(&a);
    return rc;
}

int mem_know_add(mem_know *k, const mem_doc *d, int64_t *doc_id, int *chunks, char *err, size_t errlen)
{
    int64_t id = 0;
    int n = 0;
    if (!k)
        return core_err(err, errlen, -EINVAL, "knowledge: no store");
    int rc = check_doc(d, err, errlen);
    if (!rc)
        rc = add_doc(k, d, &id, &n, err, errlen);
    if (doc_id)
        *doc_id = rc ? 0 : id;
    if (chunks)
        *chunks = rc ? 0 : n;
    return rc;
}

/* Deletes doc id (chunks, vectors, FTS rows, links to it and its chunks) in
 * one transaction; the RAM index and statistics follow. */
int know_doc_delete(mem_know *k, int64_t id)
{
    for (size_t i = 0; i < k->nuses; i++) /* uses of what goes are void */
        if (k->uses[i].doc == id)
            k->uses[i--] = k->uses[--k->nuses];
    know_gone g = {0};
    char err[256], node[40];
    int rc = know_exec(k, "SAVEPOINT del") ? -EIO : 0;
    if (!rc)
        rc = know_chunks_delete(k, id, &g, err, sizeof err);
    for (size_t i = 0; !rc && i < g.n; i++) {
        snprintf(node, sizeof node, "chunk:%lld", (long long)g.ids[i]);
        rc = know_links_drop_node(k, node);
    }
    if (!rc) {
        snprintf(node, sizeof node, "doc:%lld", (long long)id);
        rc = know_links_drop_node(k, node);
    }
    if (!rc) {
        char sql[64];
        snprintf(sql, sizeof sql, "DELETE FROM docs WHERE id = %lld", (long long)id);
        rc = know_exec(k, sql) ? -EIO : 0;
    }
    if (rc || know_exec(k, "RELEASE del")) {
        know_exec(k, "ROLLBACK TO del");
        know_exec(k, "RELEASE del");
        know_gone_free(&g);
        return rc ? rc : -EIO;
    }
    know_gone_apply(k, &g);
    know_gone_free(&g);
    return 0;
}

int mem_know_remove(mem_know *k, const char *source)
{
    if (!k || !source || !*source)
        return -EINVAL;
    pthread_mutex_lock(&k->mu);
    int64_t id;
    char hash[17];
    int rc = doc_get(k, source, &id, hash);
    if (rc == 1) {
        rc = know_doc_delete(k, id);
        know_model_maybe_save(k, true);
    } else
        rc = rc == 0 ? -ENOENT : -EIO;
    pthread_mutex_unlock(&k->mu);
    return rc;
}
