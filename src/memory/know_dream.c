/* know_dream.c: the knowledge store's consolidation tools, which dreaming
 * calls while the machine is idle: decay (confidence halves every half-life
 * of disuse; pinned documents never decay; a document under the floor is
 * forgotten with its chunks and links), dedup (near-identical chunks by
 * cosine are merged into the older one, moving links and uses; a document
 * left without chunks is merged into the keeper's) and reembed (statistics
 * counted afresh, every chunk embedded again with the current embedder). */
#include "memory/know_priv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- decay ------------------------------------------------------------------- */

/* Decays one table's unpinned rows from max(last_used, decayed) to now. */
static int decay_table(mem_know *k, const char *table, int64_t now, int64_t hl, int *n)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE %s SET confidence = know_halve(confidence, ?1 - max(last_used, decayed), ?2),"
             " decayed = ?1 WHERE max(last_used, decayed) < ?1 AND %s",
             table, strcmp(table, "docs") ? "doc IN (SELECT id FROM docs WHERE pinned = 0)" : "pinned = 0");
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(k->db, sql, -1, &st, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, hl);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return rc;
    *n += sqlite3_changes(k->db);
    return 0;
}

static int decay_locked(mem_know *k, int64_t now, int64_t hl, double floor, int *decayed, int *forgotten)
{
    know_uses_flush(k); /* the uses counted so far refresh what they used */
    int rc = know_exec(k, "BEGIN IMMEDIATE"), nd = 0, nc = 0, nf = 0;
    if (!rc)
        rc = decay_table(k, "docs", now, hl, &nd);
    if (!rc)
        rc = decay_table(k, "chunks", now, hl, &nc);
    sqlite3_stmt *st = NULL;
    if (!rc)
        rc = sqlite3_prepare_v2(k->db, "SELECT id FROM docs WHERE pinned = 0 AND confidence < ?", -1, &st, NULL);
    int64_t *ids = NULL;
    size_t n = 0;
    if (!rc) {
        sqlite3_bind_double(st, 1, floor);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            int64_t *p = realloc(ids, (n + 1) * sizeof *ids);
            if (!p)
                break;
            ids = p, ids[n++] = sqlite3_column_int64(st, 0);
        }
        rc = rc == SQLITE_DONE ? 0 : rc ? rc : SQLITE_NOMEM;
        sqlite3_finalize(st);
    }
    /* each delete is a savepoint that applies its RAM side at once: commit
     * failures after it would leave the index short, never holding ghosts */
    for (size_t i = 0; !rc && i < n; i++, nf++)
        rc = know_doc_delete(k, ids[i]) ? SQLITE_ERROR : 0;
    free(ids);
    if (!rc)
        rc = know_exec(k, "COMMIT");
    if (rc) {
        know_exec(k, "ROLLBACK");
        return -EIO;
    }
    if (nf)
        know_model_maybe_save(k, true);
    if (decayed)
        *decayed = nd;
    if (forgotten)
        *forgotten = nf;
    return 0;
}

int mem_know_decay(mem_know *k, int64_t now_ms, int64_t half_life_ms, double floor, int *decayed, int *forgotten)
{
    if (decayed)
        *decayed = 0;
    if (forgotten)
        *forgotten = 0;
    if (!k || half_life_ms <= 0 || !(floor >= 0 && floor < 1))
        return -EINVAL;
    pthread_mutex_lock(&k->mu);
    int rc = decay_locked(k, now_ms ? now_ms : know_now_ms(), half_life_ms, floor, decayed, forgotten);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* ---- dedup ------------------------------------------------------------------- */

size_t know_dedup_exact_max = 4096; /* chunks compared pairwise; past this, by LSH buckets */
#define LSH_TABLES 8
#define LSH_BITS 10
#define LSH_GROUP_MAX 512    /* a bucket's members compared with at most this many neighbours */

typedef struct dd {
    mem_know *k;
    size_t n, d;
    const float *v;
    const int64_t *id;
    float *norm;
    int64_t *keep; /* per index position: the chunk it merges into, or 0 */
    double thr;
} dd;

static void dd_pair(dd *x, size_t i, size_t j)
{
    if (i == j || x->keep[i] || x->keep[j] || !x->norm[i] || !x->norm[j])
        return;
    float c = mem_vec_dot(x->v + i * x->d, x->v + j * x->d, x->d) / (x->norm[i] * x->norm[j]);
    if (c < x->thr)
        return;
    /* chunk ids ascend with age: the larger id is the newer copy */
    if (x->id[i] < x->id[j])
        x->keep[j] = x->id[i];
    else
        x->keep[i] = x->id[j];
}

typedef struct code {
    uint32_t h;
    uint32_t i;
} code;

static int cmp_code(const void *a, const void *b)
{
    const code *x = a, *y = b;
    return x->h != y->h ? (x->h < y->h ? -1 : 1) : (x->i < y->i ? -1 : x->i > y->i);
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Sign-random-projection buckets: near-duplicates share a code in some table. */
static int dd_lsh(dd *x)
{
    code *c = malloc(x->n * sizeof *c);
    float *planes = malloc((size_t)LSH_BITS * x->d * sizeof *planes);
    if (!c || !planes) {
        free(c), free(planes);
        return -ENOMEM;
    }
    for (int t = 0; t < LSH_TABLES; t++) {
        for (size_t b = 0; b < (size_t)LSH_BITS * x->d; b++)
            planes[b] = (mix((uint64_t)t * 1000003u + b) & 1) ? 1.0f : -1.0f;
        for (size_t i = 0; i < x->n; i++) {
            uint32_t h = 0;
            for (int b = 0; b < LSH_BITS; b++)
                h = h << 1 | (mem_vec_dot(planes + (size_t)b * x->d, x->v + i * x->d, x->d) > 0);
            c[i] = (code){h, (uint32_t)i};
        }
        qsort(c, x->n, sizeof *c, cmp_code);
        for (size_t s = 0; s < x->n;) {
            size_t e = s;
            while (e < x->n && c[e].h == c[s].h)
                e++;
            for (size_t a = s; a < e; a++)
                for (size_t b = a + 1; b < e && b <= a + LSH_GROUP_MAX; b++)
                    dd_pair(x, c[a].i, c[b].i);
            s = e;
        }
    }
    free(c), free(planes);
    return 0;
}

/* Merges chunk gone into chunk keep: uses, links, then deletes it. */
static int merge_chunk(mem_know *k, int64_t gone, int64_t keep, know_gone *g)
{
    sqlite3_stmt *st;
    char a[40], b[40];
    int rc = sqlite3_prepare_v2(k->db, "SELECT c.doc, c.text, d.title, c.uses, c.last_used, c.confidence, d.pinned"
                                " FROM chunks c JOIN docs d ON d.id = c.doc WHERE c.id = ?", -1, &st, NULL);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 1, gone);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return 0;
    }
    int64_t doc = sqlite3_column_int64(st, 0);
    char *text = strdup((const char *)sqlite3_column_text(st, 1));
    char *title = strdup((const char *)sqlite3_column_text(st, 2));
    int64_t uses = sqlite3_column_int64(st, 3), used = sqlite3_column_int64(st, 4);
    double conf = sqlite3_column_double(st, 5);
    int pinned = sqlite3_column_int(st, 6);
    sqlite3_finalize(st);
    if (!text || !title) {
        free(text), free(title);
        return SQLITE_NOMEM;
    }
    sqlite3_stmt *del = k->st[KS_FTS_DEL];
    sqlite3_bind_int64(del, 1, gone);
    sqlite3_bind_text(del, 2, title, -1, SQLITE_STATIC);
    sqlite3_bind_text(del, 3, text, -1, SQLITE_STATIC);
    rc = sqlite3_step(del);
    sqlite3_reset(del);
    sqlite3_clear_bindings(del);
    rc = rc == SQLITE_DONE ? 0 : rc;
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE chunks SET uses = uses + %lld, last_used = max(last_used, %lld), confidence = max(confidence, %.17g)"
             " WHERE id = %lld; UPDATE docs SET pinned = max(pinned, %d) WHERE id = (SELECT doc FROM chunks"
             " WHERE id = %lld); DELETE FROM vectors WHERE chunk = %lld; DELETE FROM chunks WHERE id = %lld",
             (long long)uses, (long long)used, conf, (long long)keep, pinned, (long long)keep, (long long)gone,
             (long long)gone);
    if (!rc)
        rc = know_exec(k, sql);
    snprintf(a, sizeof a, "chunk:%lld", (long long)gone);
    snprintf(b, sizeof b, "chunk:%lld", (long long)keep);
    if (!rc)
        rc = know_links_move(k, a, b) ? SQLITE_ERROR : 0;
    if (!rc) { /* the recorded copy goes from the statistics once committed */
        int64_t *ids = realloc(g->ids, (g->n + 1) * sizeof *ids);
        char **ts = realloc(g->texts, (g->n + 1) * sizeof *ts);
        if (ids)
            g->ids = ids;
        if (ts)
            g->texts = ts;
        if (!ids || !ts)
            rc = SQLITE_NOMEM;
        else
            g->ids[g->n] = gone, g->texts[g->n++] = know_embed_text(title, text);
    }
    free(text), free(title);
    if (rc)
        return rc;
    /* a document left without chunks joins the keeper's */
    snprintf(sql, sizeof sql, "SELECT (SELECT count(*) FROM chunks WHERE doc = %lld),"
             " (SELECT doc FROM chunks WHERE id = %lld)", (long long)doc, (long long)keep);
    if ((rc = sqlite3_prepare_v2(k->db, sql, -1, &st, NULL)))
        return rc;
    int64_t left = 1, kdoc = 0;
    if (sqlite3_step(st) == SQLITE_ROW)
        left = sqlite3_column_int64(st, 0), kdoc = sqlite3_column_int64(st, 1);
    sqlite3_finalize(st);
    if (left || !kdoc || kdoc == doc)
        return 0;
    snprintf(a, sizeof a, "doc:%lld", (long long)doc);
    snprintf(b, sizeof b, "doc:%lld", (long long)kdoc);
    if (know_links_move(k, a, b))
        return SQLITE_ERROR;
    snprintf(sql, sizeof sql, "UPDATE docs SET uses = uses + (SELECT uses FROM docs WHERE id = %lld),"
             " pinned = max(pinned, (SELECT pinned FROM docs WHERE id = %lld)) WHERE id = %lld;"
             " DELETE FROM docs WHERE id = %lld", (long long)doc, (long long)doc, (long long)kdoc, (long long)doc);
    return know_exec(k, sql);
}

static int dedup_locked(mem_know *k, double thr, int *merged)
{
    know_uses_flush(k);
    dd x = {.k = k, .n = k->ix.n, .d = (size_t)k->ix.dims, .v = k->ix.v, .id = k->ix.id, .thr = thr};
    if (x.n < 2)
        return 0;
    x.norm = malloc(x.n * sizeof *x.norm);
    x.keep = calloc(x.n, sizeof *x.keep);
    int rc = x.norm && x.keep ? 0 : -ENOMEM;
    for (size_t i = 0; !rc && i < x.n; i++)
        x.norm[i] = sqrtf(mem_vec_dot(x.v + i * x.d, x.v + i * x.d, x.d));
    if (!rc && x.n <= know_dedup_exact_max) {
        for (size_t i = 0; i < x.n; i++)
            for (size_t j = i + 1; j < x.n; j++)
                dd_pair(&x, i, j);
    } else if (!rc)
        rc = dd_lsh(&x);
    know_gone g = {0};
    int n = 0;
    if (!rc && (rc = know_exec(k, "BEGIN IMMEDIATE") ? -EIO : 0) == 0) {
        for (size_t i = 0; !rc && i < x.n; i++)
            if (x.keep[i]) {
                int64_t keep = x.keep[i]; /* follow a chain to its root */
                for (ptrdiff_t p; (p = know_index_find(&k->ix, keep)) >= 0 && x.keep[p];)
                    keep = x.keep[p];
                rc = merge_chunk(k, x.id[i], keep, &g) ? -EIO : 0;
                n++;
            }
        if (!rc && know_exec(k, "COMMIT"))
            rc = -EIO;
        if (rc)
            know_exec(k, "ROLLBACK");
    }
    free(x.norm), free(x.keep);
    if (!rc && g.n) {
        know_gone_apply(k, &g);
        know_model_maybe_save(k, true);
    }
    know_gone_free(&g);
    if (merged)
        *merged = rc ? 0 : n;
    return rc;
}

int mem_know_dedup(mem_know *k, double threshold, int *merged)
{
    if (merged)
        *merged = 0;
    if (!k || !(threshold > 0 && threshold <= 1))
        return -EINVAL;
    pthread_mutex_lock(&k->mu);
    int rc = dedup_locked(k, threshold, merged);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* ---- reembed ----------------------------------------------------------------- */

#define REEMBED_BATCH 256

typedef struct batch {
    int64_t id[REEMBED_BATCH];
    char *t[REEMBED_BATCH];
    size_t n;
} batch;

static int flush_batch(mem_know *k, batch *b, float *vecs, know_index *ix, char *err, size_t errlen)
{
    int rc = know_embed(k, (const char *const *)b->t, b->n, vecs, err, errlen);
    for (size_t i = 0; !rc && i < b->n; i++) {
        sqlite3_stmt *st = k->st[KS_VEC_PUT];
        const float *v = vecs + i * (size_t)k->dims;
        sqlite3_bind_int64(st, 1, b->id[i]);
        sqlite3_bind_int(st, 2, k->dims);
        sqlite3_bind_blob(st, 3, v, k->dims * (int)sizeof *v, SQLITE_STATIC);
        int s = sqlite3_step(st);
        sqlite3_reset(st);
        if (s != SQLITE_DONE)
            rc = -EIO;
        else if (know_index_append(ix, b->id[i], v))
            rc = -ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++)
        free(b->t[i]);
    b->n = 0;
    return rc;
}

static int reembed_locked(mem_know *k, int *count)
{
    mem_embed_model *fresh = mem_embed_model_new(), *old = k->model;
    know_index ix = {.dims = k->dims};
    float *vecs = malloc(REEMBED_BATCH * (size_t)k->dims * sizeof *vecs);
    batch *b = calloc(1, sizeof *b);
    sqlite3_stmt *st = NULL;
    int rc = fresh && vecs && b ? 0 : -ENOMEM, n = 0;
    const char *sql = "SELECT c.id, d.title, c.text FROM chunks c JOIN docs d ON d.id = c.doc ORDER BY c.id";
    /* the statistics first, so that every chunk is embedded with the same */
    if (!rc && (rc = sqlite3_prepare_v2(k->db, sql, -1, &st, NULL) ? -EIO : 0) == 0) {
        while (sqlite3_step(st) == SQLITE_ROW) {
            char *t = know_embed_text((const char *)sqlite3_column_text(st, 1),
                                      (const char *)sqlite3_column_text(st, 2));
            if (t)
                mem_embed_model_add(fresh, t, 1);
            free(t);
        }
        sqlite3_reset(st);
    }
    if (!rc) {
        k->model = fresh;
        rc = know_exec(k, "BEGIN IMMEDIATE") || know_exec(k, "DELETE FROM vectors") ? -EIO : 0;
    }
    char err[256];
    while (!rc && sqlite3_step(st) == SQLITE_ROW) {
        b->id[b->n] = sqlite3_column_int64(st, 0);
        if (!(b->t[b->n] = know_embed_text((const char *)sqlite3_column_text(st, 1),
                                           (const char *)sqlite3_column_text(st, 2))))
            rc = -ENOMEM;
        else if (++b->n == REEMBED_BATCH)
            rc = flush_batch(k, b, vecs, &ix, err, sizeof err);
        n++;
    }
    if (!rc && b && b->n)
        rc = flush_batch(k, b, vecs, &ix, err, sizeof err);
    for (size_t i = 0; b && i < b->n; i++)
        free(b->t[i]);
    sqlite3_finalize(st);
    if (!rc && know_exec(k, "COMMIT"))
        rc = -EIO;
    if (rc) {
        know_exec(k, "ROLLBACK");
        k->model = old;
        mem_embed_model_free(fresh);
        know_index_free(&ix);
    } else {
        mem_embed_model_free(old);
        know_index_free(&k->ix);
        k->ix = ix;
        k->model_dirty = true;
        know_model_maybe_save(k, true);
    }
    free(vecs);
    free(b);
    if (count)
        *count = rc ? 0 : n;
    return rc;
}

int mem_know_reembed(mem_know *k, int *n)
{
    if (n)
        *n = 0;
    if (!k)
        return -EINVAL;
    pthread_mutex_lock(&k->mu);
    int rc = reembed_locked(k, n);
    pthread_mutex_unlock(&k->mu);
    return rc;
}
