/* know_search.c: searching the knowledge store. The query is cut into words
 * and given to FTS5 as quoted terms (so no punctuation or FTS5 syntax in it
 * can be an error: a query without words has no hits): candidates are the
 * chunks holding the rarest words, within a budget, and every word scores
 * on them by BM25 (know_bm25, a ranking function like FTS5's bm25()); the
 * same query is embedded, moved towards BM25's first chunks' vectors
 * (pseudo-relevance feedback) and scanned exactly over the RAM index; the
 * hybrid scores every candidate of either top-KNOW_TOPN list by BM25's
 * score over its best plus 0.3 x its cosine min-max scaled (see KNOW_FUSE
 * below). A search's first hits count as used, written in batches. */
#include "memory/know_priv.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Words too common to rank by (dropped unless the query has nothing else). */
static const char *const stop[] = {
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "did", "do", "does", "for", "from", "has", "have",
    "how", "i", "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when",
    "where", "which", "who", "why", "will", "with",
};

static bool is_stop(const char *w)
{
    for (size_t i = 0; i < sizeof stop / sizeof *stop; i++)
        if (!strcmp(w, stop[i]))
            return true;
    return false;
}

static bool wordc(int c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

typedef struct term {
    char w[64];
    int64_t df; /* chunks holding it (all its tokens: the rarest's count) */
    bool stop;
} term;

typedef struct dfc {
    mem_know *k;
    int64_t df;
} dfc;

static int on_token(void *ctx, int tflags, const char *tok, int n, int start, int end)
{
    (void)tflags, (void)start, (void)end;
    dfc *c = ctx;
    mem_know *k = c->k;
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < n; i++)
        h = (h ^ (unsigned char)tok[i]) * 1099511628211ull;
    h |= 1; /* never 0, an empty slot */
    struct know_df *e = k->dfc ? &k->dfc[h % KNOW_DF_SLOTS] : NULL; /* NULL: no memory for the cache */
    int64_t df;
    if (e && e->h == h && e->df > 0 && k->changes - e->at <= KNOW_DF_STALE) { /* an absent word may arrive */
        df = e->df;
    } else {
        sqlite3_stmt *st = k->st[KS_VOCAB];
        sqlite3_bind_text(st, 1, tok, n, SQLITE_STATIC);
        df = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
        if (e)
            *e = (struct know_df){h, df, k->changes};
    }
    if (df < c->df)
        c->df = df;
    return SQLITE_OK;
}

/* How many chunks hold w, through the index's own tokenizer (0 when unknown). */
static int64_t term_df(mem_know *k, const char *w)
{
    if (!k->tokp)
        return 0;
    if (!k->dfc) /* the cache, from the first search on (a cell that never searches has none) */
        k->dfc = calloc(KNOW_DF_SLOTS, sizeof *k->dfc);
    dfc c = {k, INT64_MAX};
    k->tok.xTokenize(k->tokp, &c, FTS5_TOKENIZE_QUERY, w, (int)strlen(w), on_token);
    return c.df == INT64_MAX ? 0 : c.df;
}

static int cmp_term(const void *a, const void *b)
{
    const term *x = a, *y = b;
    return x->df < y->df ? -1 : x->df > y->df;
}


static void put(plan *p, size_t *o, const char *s)
{
    size_t n = strlen(s);
    if (*o + n < sizeof p->expr) {
        memcpy(p->expr + *o, s, n + 1);
        *o += n;
    }
}

static void put_term(plan *p, size_t *o, const term *t, int64_t df)
{
    put(p, o, "\"");
    put(p, o, t->w);
    put(p, o, "\"");
    if (p->nphrase < KNOW_Q_PHRASES)
        p->df[p->nphrase++] = df;
}

/* base: the r rarest terms joined by OR (or AND): the candidates. Each other
 * term joins as OR (term AND base): the same candidates, but its
 * occurrences in them are scored (know_bm25 skips the base's repeats). */
static void build(plan *p, const term *t, int m, int r, bool and_mode)
{
    size_t o = 0;
    p->nphrase = 0;
    p->expr[0] = 0;
    for (int pass = 0; pass <= m - r; pass++) {
        if (pass) {
            put(p, &o, " OR (");
            put_term(p, &o, &t[r + pass - 1], t[r + pass - 1].df);
            put(p, &o, " AND ");
        }
        put(p, &o, "(");
        for (int i = 0; i < r; i++) {
            if (i)
                put(p, &o, and_mode ? " AND " : " OR ");
            put_term(p, &o, &t[i], pass ? -1 : t[i].df);
        }
        put(p, &o, pass ? "))" : ")");
    }
}

/* The query's words to rank by, rarest first: common English ones dropped
 * unless there is nothing else, at most KNOW_Q_TERMS. Their count. */
static int query_terms(mem_know *k, const char *query, term *t)
{
    int n = 0, nstop = 0;
    for (const unsigned char *p = (const unsigned char *)query; *p && n < KNOW_MAX_TERMS;) {
        if (!wordc(*p)) {
            p++;
            continue;
        }
        size_t len = 0;
        char w[64];
        while (*p && wordc(*p)) {
            if (len < sizeof w - 1)
                w[len++] = (char)tolower(*p);
            p++;
        }
        w[len] = 0;
        bool dup = false;
        for (int i = 0; i < n && !dup; i++)
            dup = !strcmp(t[i].w, w);
        if (dup)
            continue;
        memcpy(t[n].w, w, len + 1);
        t[n].stop = is_stop(w);
        nstop += t[n].stop;
        n++;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!t[i].stop || nstop == n)
            t[m++] = t[i];
    int kept = 0;
    for (int i = 0; i < m; i++) { /* a word in no chunk can only crowd out the others */
        t[i].df = term_df(k, t[i].w);
        if (t[i].df > 0 || !k->tokp)
            t[kept++] = t[i];
    }
    qsort(t, (size_t)kept, sizeof *t, cmp_term);
    return kept < KNOW_Q_TERMS ? kept : KNOW_Q_TERMS;
}

/* The candidates' terms: the rarest while the chunks they match stay within
 * KNOW_BM25_BUDGET (joined by OR); when even the rarest is past it, the
 * fewest rarest whose AND is expected within it (independent terms). */
static int candidates(const mem_know *k, const term *t, int m, bool *and_mode)
{
    int r = 1;
    *and_mode = false;
    if (t[0].df > KNOW_BM25_BUDGET) {
        double n = k->nchunks > 0 ? (double)k->nchunks : 1, est = (double)t[0].df;
        while (r < m && r < KNOW_Q_RARE && est > KNOW_BM25_BUDGET)
            est *= (double)t[r++].df / n;
        *and_mode = r > 1;
        return r;
    }
    int64_t sum = t[0].df;
    while (r < m && r < KNOW_Q_RARE && sum + t[r].df <= KNOW_BM25_BUDGET)
        sum += t[r++].df;
    return r;
}

void know_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *cx, int nval, sqlite3_value **val)
{
    (void)nval, (void)val;
    mem_know *k = api->xUserData(fts);
    int np = k->q_nphrase;
    if (!k->q_ready) {
        sqlite3_int64 nrow = 0, ntok = 0;
        api->xRowCount(fts, &nrow);
        api->xColumnTotalSize(fts, -1, &ntok);
        k->q_avgdl = nrow > 0 && ntok > 0 ? (double)ntok / (double)nrow : 1.0;
        for (int i = 0; i < np; i++) {
            double df = (double)k->q_df[i];
            double idf = k->q_df[i] < 0 ? 0 : log(((double)nrow - df + 0.5) / (df + 0.5));
            k->q_idf[i] = k->q_df[i] < 0 ? 0 : idf > 0 ? idf : 1e-6;
        }
        k->q_ready = true;
    }
    double f[KNOW_Q_PHRASES];
    memset(f, 0, (size_t)np * sizeof *f);
    int ninst = 0;
    api->xInstCount(fts, &ninst);
    for (int i = 0; i < ninst; i++) {
        int ip, ic, io;
        if (!api->xInst(fts, i, &ip, &ic, &io) && ip >= 0 && ip < np)
            f[ip] += ic == 0 ? 2.0 : 1.0; /* the title weighs double */
    }
    int d = 0;
    api->xColumnSize(fts, -1, &d);
    double kd = 1.2 * (1 - 0.75 + 0.75 * (double)d / k->q_avgdl), score = 0;
    for (int i = 0; i < np; i++)
        if (f[i] > 0)
            score += k->q_idf[i] * (f[i] * 2.2) / (f[i] + kd);
    sqlite3_result_double(cx, -score);
}

/* The hybrid's fusion (chosen on bench/retrieval's tune half, see
 * docs/knowledge.md; settable at build time for measurements, like
 * KNOW_BM25_BUDGET):
 *  KNOW_FUSE      0: reciprocal rank (1 / (K + rank)); 1: scores, BM25's
 *                 divided by its best, the cosine min-max scaled over the
 *                 candidates (every BM25 candidate gets its cosine);
 *  KNOW_FUSE_WV   the vector side's weight (BM25's is 1);
 *  KNOW_FUSE_K    reciprocal rank's k;
 *  KNOW_FUSE_DOC  1: each side's part of a chunk is the best of its
 *                 document's chunks (a document found by BM25 through one
 *                 chunk and by the vector through another adds up);
 *  KNOW_PRF_M/_B  the query vector moved towards the mean vector of BM25's
 *                 first M chunks with weight B (Rocchio; 0: not). */
#ifndef KNOW_FUSE
#define KNOW_FUSE 1
#endif
#ifndef KNOW_FUSE_WV
#define KNOW_FUSE_WV 0.3
#endif
#ifndef KNOW_FUSE_K
#define KNOW_FUSE_K KNOW_RRF_K
#endif
#ifndef KNOW_FUSE_DOC
#define KNOW_FUSE_DOC 0
#endif
#ifndef KNOW_PRF_M
#define KNOW_PRF_M 3
#endif
#ifndef KNOW_PRF_B
#define KNOW_PRF_B 1.0
#endif

typedef struct cand {
    int64_t id, doc;
    double score;
    int rb, rv;
    double sb, sv;
    bool hv; /* sv is known (in the vector's list or scored against the query) */
} cand;

static int bm25_list(mem_know *k, const plan *p, cand *c, size_t *nc, char *err, size_t errlen)
{
    if (!p->expr[0])
        return 0;
    sqlite3_stmt *st = k->st[k->have_bm25x ? KS_BM25X : KS_BM25];
    k->q_nphrase = p->nphrase;
    memcpy(k->q_df, p->df, (size_t)p->nphrase * sizeof *p->df);
    k->q_ready = false;
    sqlite3_bind_text(st, 1, p->expr, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, KNOW_TOPN);
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        r++;
        c[*nc] = (cand){.id = sqlite3_column_int64(st, 0), .rb = r, .sb = -sqlite3_column_double(st, 1)};
        (*nc)++;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return know_sqlerr(k, rc, "full-text search", err, errlen);
    return 0;
}

/* The query vector moved towards the mean of BM25's first KNOW_PRF_M
 * chunks' vectors (c[0..nb) are BM25's list in rank order), unit length. */
static void prf(mem_know *k, const cand *c, size_t nb)
{
    if (KNOW_PRF_M <= 0 || KNOW_PRF_B <= 0 || !nb)
        return;
    size_t d = (size_t)k->dims;
    int m = 0;
    for (size_t i = 0; i < nb && m < KNOW_PRF_M; i++)
        m += know_index_find(&k->ix, c[i].id) >= 0;
    float w = (float)(KNOW_PRF_B / (m ? m : 1));
    for (size_t i = 0, got = 0; i < nb && got < (size_t)m; i++) {
        ptrdiff_t at = know_index_find(&k->ix, c[i].id);
        if (at < 0)
            continue;
        const float *v = k->ix.v + (size_t)at * d;
        for (size_t j = 0; j < d; j++)
            k->qv[j] += w * v[j];
        got++;
    }
    float n2 = mem_vec_dot(k->qv, k->qv, d);
    if (m && n2 > 0)
        for (size_t j = 0; j < d; j++)
            k->qv[j] /= sqrtf(n2);
}

/* ext: the query embedded by the external embedder (outside the lock), or
 * NULL for the built-in one (which reads the statistics: under it). The
 * first nb candidates are BM25's. */
static void vec_list(mem_know *k, const char *query, const float *ext, cand *c, size_t *nc, size_t nb)
{
    char err[256];
    const char *t = query;
    if (k->ix.dims != k->dims || !k->ix.n)
        return;
    if (ext)
        memcpy(k->qv, ext, (size_t)k->dims * sizeof *k->qv);
    else if (k->fn || know_embed(k, &t, 1, k->qv, err, sizeof err))
        return;
    bool zero = true;
    for (int i = 0; i < k->dims && zero; i++)
        zero = k->qv[i] == 0;
    if (zero)
        return;
    prf(k, c, nb);
    size_t n = know_index_top(&k->ix, k->qv, KNOW_TOPN, k->top_id, k->top_s);
    for (size_t i = 0; i < n; i++) {
        int r = (int)i + 1;
        size_t j = 0;
        while (j < nb && c[j].id != k->top_id[i])
            j++;
        if (j == nb) {
            j = (*nc)++;
            c[j] = (cand){.id = k->top_id[i]};
        }
        c[j].rv = r, c[j].sv = k->top_s[i], c[j].hv = true;
    }
    if (KNOW_FUSE != 1)
        return;
    for (size_t j = 0; j < nb; j++) { /* BM25's candidates beyond the vector's list: their cosine */
        ptrdiff_t at = c[j].hv ? -1 : know_index_find(&k->ix, c[j].id);
        if (at >= 0) {
            c[j].sv = mem_vec_dot(k->qv, k->ix.v + (size_t)at * (size_t)k->dims, (size_t)k->dims);
            c[j].hv = true;
        }
    }
}

/* The chunk's document (0 when it is gone). */
static int64_t doc_of(mem_know *k, int64_t chunk)
{
    sqlite3_stmt *st = k->st[KS_HIT];
    sqlite3_bind_int64(st, 1, chunk);
    int64_t doc = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return doc;
}

/* The hybrid's score of every candidate (see KNOW_FUSE above). */
static void fuse(mem_know *k, cand *c, size_t nc)
{
    double fb[2 * KNOW_TOPN], fv[2 * KNOW_TOPN], bmax = 0, vmin = INFINITY, vmax = -INFINITY;
    for (size_t i = 0; i < nc; i++) {
        if (c[i].rb && c[i].sb > bmax)
            bmax = c[i].sb;
        if (c[i].hv && c[i].sv < vmin)
            vmin = c[i].sv;
        if (c[i].hv && c[i].sv > vmax)
            vmax = c[i].sv;
    }
    for (size_t i = 0; i < nc; i++) {
        if (KNOW_FUSE == 1) {
            fb[i] = c[i].rb && bmax > 0 ? c[i].sb / bmax : 0;
            fv[i] = c[i].hv && vmax > vmin ? (c[i].sv - vmin) / (vmax - vmin) : 0;
        } else {
            fb[i] = c[i].rb ? 1.0 / (KNOW_FUSE_K + c[i].rb) : 0;
            fv[i] = c[i].rv ? 1.0 / (KNOW_FUSE_K + c[i].rv) : 0;
        }
        c[i].score = fb[i] + KNOW_FUSE_WV * fv[i];
    }
    if (!KNOW_FUSE_DOC)
        return;
    for (size_t i = 0; i < nc; i++)
        c[i].doc = doc_of(k, c[i].id);
    for (size_t i = 0; i < nc; i++) {
        double b = fb[i], v = fv[i];
        for (size_t j = 0; j < nc; j++)
            if (c[j].doc == c[i].doc) {
                b = fb[j] > b ? fb[j] : b;
                v = fv[j] > v ? fv[j] : v;
            }
        c[i].score = b + KNOW_FUSE_WV * v + 1e-3 * c[i].score; /* its own parts order a document's chunks */
    }
}

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static char *dupcol(sqlite3_stmt *st, int i)
{
    const char *s = (const char *)sqlite3_column_text(st, i);
    return strdup(s ? s : "");
}

/* Fills hit h for candidate c: 1, 0 when the chunk is gone, or -errno. */
static int fill_hit(mem_know *k, const cand *c, mem_hit *h)
{
    sqlite3_stmt *st = k->st[KS_HIT];
    sqlite3_bind_int64(st, 1, c->id);
    int rc = sqlite3_step(st), got = 0;
    if (rc == SQLITE_ROW) {
        *h = (mem_hit){.chunk = c->id, .doc = sqlite3_column_int64(st, 0), .text = dupcol(st, 1),
                       .confidence = sqlite3_column_double(st, 2), .source = dupcol(st, 3),
                       .title = dupcol(st, 4), .kind = dupcol(st, 5), .ts_ms = sqlite3_column_int64(st, 6),
                       .score = c->score, .rank_bm25 = c->rb, .rank_vec = c->rv};
        got = h->text && h->source && h->title && h->kind ? 1 : -ENOMEM;
        rc = SQLITE_DONE;
    }
    sqlite3_reset(st);
    if (got < 0) {
        free(h->text), free(h->source), free(h->title), free(h->kind);
        return got;
    }
    return rc == SQLITE_DONE ? got : -EIO;
}

static int cmp_use(const void *a, const void *b)
{
    const struct know_use *x = a, *y = b;
    return x->chunk < y->chunk ? -1 : x->chunk > y->chunk;
}

static int cmp_use_doc(const void *a, const void *b)
{
    const struct know_use *x = a, *y = b;
    return x->doc < y->doc ? -1 : x->doc > y->doc;
}

/* Adds up the uses of each key (sorted by cmp): n summed, ts the latest. */
static size_t fold(struct know_use *u, size_t n, int (*cmp)(const void *, const void *))
{
    qsort(u, n, sizeof *u, cmp);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && !cmp(&u[w - 1], &u[i])) {
            u[w - 1].n += u[i].n;
            if (u[i].ts > u[w - 1].ts)
                u[w - 1].ts = u[i].ts;
        } else
            u[w++] = u[i];
    }
    return w;
}

static void use_rows(mem_know *k, int s, const struct know_use *u, size_t n)
{
    sqlite3_stmt *st = k->st[s];
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, 1, s == KS_USE_CHUNK ? u[i].chunk : u[i].doc);
        sqlite3_bind_int64(st, 2, u[i].ts);
        sqlite3_bind_int64(st, 3, u[i].n);
        sqlite3_step(st);
        sqlite3_reset(st);
    }
}

int know_uses_flush(mem_know *k)
{
    if (!k->nuses)
        return 0;
    if (know_exec(k, "BEGIN IMMEDIATE"))
        return -EIO;
    size_t n = fold(k->uses, k->nuses, cmp_use);
    use_rows(k, KS_USE_CHUNK, k->uses, n);
    n = fold(k->uses, n, cmp_use_doc);
    use_rows(k, KS_USE_DOC, k->uses, n);
    if (know_exec(k, "COMMIT")) {
        know_exec(k, "ROLLBACK");
        return -EIO;
    }
    k->nuses = 0;
    return 0;
}

static void count_uses(mem_know *k, const mem_hit *h, size_t n)
{
    int64_t now = know_now_ms();
    if (!k->nuses)
        k->uses_since = now;
    for (size_t i = 0; i < n && i < KNOW_USES_HITS && k->nuses < KNOW_USES_MAX; i++)
        k->uses[k->nuses++] = (struct know_use){h[i].chunk, h[i].doc, now, 1};
    if (k->nuses + KNOW_USES_HITS > KNOW_USES_MAX || now - k->uses_since >= KNOW_USES_MS)
        know_uses_flush(k);
}

static int search_locked(mem_know *k, const char *query, const float *ext, int mode, int limit, mem_hit **out,
                         size_t *n, char *err, size_t errlen)
{
    cand c[2 * KNOW_TOPN];
    size_t nc = 0;
    int rc = 0;
    if (mode != MEM_KNOW_VECTOR) {
        term t[KNOW_MAX_TERMS];
        int m = query_terms(k, query, t);
        bool and_mode;
        int r = m ? candidates(k, t, m, &and_mode) : 0;
        /* candidates that never meet: fewer of them, down to the rarest alone */
        for (; r > 0 && !rc && !nc; r = r > 2 ? 2 : r - 1, and_mode = r > 1 && and_mode) {
            /* without know_bm25, FTS5's bm25() would score the repeats: the candidates' terms alone */
            build(k->plan, t, k->have_bm25x ? m : r, r, and_mode);
            rc = bm25_list(k, k->plan, c, &nc, err, errlen);
            if (!and_mode)
                break;
        }
        if (rc)
            return rc;
    }
    size_t nb = nc;
    if (mode != MEM_KNOW_BM25)
        vec_list(k, query, ext, c, &nc, nb);
    if (mode == MEM_KNOW_HYBRID)
        fuse(k, c, nc);
    else
        for (size_t i = 0; i < nc; i++) /* one ranking alone: its own score */
            c[i].score = mode == MEM_KNOW_BM25 ? c[i].sb : c[i].sv;
    qsort(c, nc, sizeof *c, cmp_cand);
    size_t want = nc < (size_t)limit ? nc : (size_t)limit;
    mem_hit *h = calloc(want ? want : 1, sizeof *h);
    if (!h)
        return core_err(err, errlen, -ENOMEM, "%s: no memory", k->path);
    size_t m = 0;
    for (size_t i = 0; i < nc && m < want; i++) {
        int got = fill_hit(k, &c[i], &h[m]);
        if (got < 0) {
            mem_know_hits_free(h, m);
            return core_err(err, errlen, got, "%s: reading a hit failed", k->path);
        }
        m += (size_t)got;
    }
    count_uses(k, h, m);
    *out = h, *n = m;
    return 0;
}

int mem_know_search(mem_know *k, const char *query, int mode, int limit, mem_hit **out, size_t *n, char *err,
                    size_t errlen)
{
    *out = NULL, *n = 0;
    if (!k)
        return core_err(err, errlen, -EINVAL, "knowledge: no store");
    if (!query || !query[strspn(query, " \t\r\n\f\v")])
        return core_err(err, errlen, -EINVAL, "knowledge: empty query");
    if (mode < MEM_KNOW_HYBRID || mode > MEM_KNOW_VECTOR)
        return core_err(err, errlen, -EINVAL, "knowledge: unknown search mode %d", mode);
    if (limit <= 0)
        limit = 10;
    if (limit > KNOW_TOPN)
        limit = KNOW_TOPN;
    /* an external embedder (an HTTP call) is asked outside the lock */
    pthread_mutex_lock(&k->mu);
    mem_embed_fn fn = k->fn;
    void *ud = k->ud;
    int dims = k->dims;
    pthread_mutex_unlock(&k->mu);
    float *ext = NULL;
    if (fn && mode != MEM_KNOW_BM25 && (ext = malloc((size_t)dims * sizeof *ext))) {
        char eerr[256];
        if (fn(ud, &query, 1, ext, dims, eerr, sizeof eerr)) { /* BM25 alone answers */
            free(ext);
            ext = NULL;
        }
    }
    pthread_mutex_lock(&k->mu);
    if (ext && (k->fn != fn || k->ud != ud || k->dims != dims)) { /* the embedder changed meanwhile */
        free(ext);
        ext = NULL;
    }
    int rc = search_locked(k, query, ext, mode, limit, out, n, err, errlen);
    pthread_mutex_unlock(&k->mu);
    free(ext);
    return rc;
}

void mem_know_hits_free(mem_hit *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].source);
        free(h[i].title);
        free(h[i].kind);
        free(h[i].text);
    }
    free(h);
}
