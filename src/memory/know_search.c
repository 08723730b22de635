/* know_search.c: searching the knowledge store. The query is cut into words
 * and given to FTS5 as quoted terms joined by OR (so no punctuation or FTS5
 * syntax in it can be an error: a query without words has no hits), ranked
 * by bm25(); the same query is embedded and scanned exactly over the RAM
 * index; the two top-KNOW_TOPN lists are fused by reciprocal rank (k = 60).
 * Every hit's use is counted. */
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
    struct know_df *e = &k->dfc[h % KNOW_DF_SLOTS];
    int64_t df;
    if (e->h == h && k->changes - e->at <= KNOW_DF_STALE) {
        df = e->df;
    } else {
        sqlite3_stmt *st = k->st[KS_VOCAB];
        sqlite3_bind_text(st, 1, tok, n, SQLITE_STATIC);
        df = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_reset(st);
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
    dfc c = {k, INT64_MAX};
    k->tok.xTokenize(k->tokp, &c, FTS5_TOKENIZE_QUERY, w, (int)strlen(w), on_token);
    return c.df == INT64_MAX ? 0 : c.df;
}

static int cmp_term(const void *a, const void *b)
{
    const term *x = a, *y = b;
    return x->df < y->df ? -1 : x->df > y->df;
}

/* A BM25 expression and, per phrase in its order, the chunks holding it
 * (-1: a repeat, not scored). */
typedef struct plan {
    char expr[16384];
    int nphrase;
    int64_t df[KNOW_Q_PHRASES];
} plan;

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

/* The plan for query: its words (common English ones dropped unless there is
 * nothing else), the KNOW_Q_TERMS rarest, as candidates the rarest while the
 * chunks they match stay within KNOW_BM25_BUDGET (at least one: when even
 * the rarest is past it, the two rarest joined by AND, with *alt the rarest
 * alone in case they never meet). Bounds the chunks scored while every term
 * still counts in their score. expr "" when the query has no words. */
static void fts_plan(mem_know *k, const char *query, plan *main_, plan *alt)
{
    term t[KNOW_MAX_TERMS];
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
    for (int i = 0; i < m; i++)
        t[i].df = term_df(k, t[i].w);
    qsort(t, (size_t)m, sizeof *t, cmp_term);
    if (m > KNOW_Q_TERMS)
        m = KNOW_Q_TERMS;
    main_->expr[0] = alt->expr[0] = 0;
    main_->nphrase = alt->nphrase = 0;
    if (!m)
        return;
    if (m >= 2 && t[0].df > KNOW_BM25_BUDGET) {
        build(main_, t, m, 2, true);
        build(alt, t, m, 1, false);
        return;
    }
    int r = 1;
    int64_t sum = t[0].df;
    while (r < m && r < KNOW_Q_RARE && sum + t[r].df <= KNOW_BM25_BUDGET)
        sum += t[r++].df;
    if (!k->have_bm25x) /* FTS5's bm25() would score the repeats: the candidates' terms alone */
        m = r;
    build(main_, t, m, r, false);
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
        if (getenv("KNOW_DEBUG") && api->xPhraseCount(fts) != np)
            fprintf(stderr, "know_bm25: %d phrases, plan %d\n", api->xPhraseCount(fts), np);
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

typedef struct cand {
    int64_t id;
    double score;
    int rb, rv;
    double sb, sv;
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
        c[*nc].score = 1.0 / (KNOW_RRF_K + r);
        (*nc)++;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return know_sqlerr(k, rc, "full-text search", err, errlen);
    return 0;
}

static void vec_list(mem_know *k, const char *query, cand *c, size_t *nc)
{
    char err[256];
    const char *t = query;
    if (k->ix.dims != k->dims || !k->ix.n || know_embed(k, &t, 1, k->qv, err, sizeof err))
        return;
    bool zero = true;
    for (int i = 0; i < k->dims && zero; i++)
        zero = k->qv[i] == 0;
    if (zero)
        return;
    size_t n = know_index_top(&k->ix, k->qv, KNOW_TOPN, k->top_id, k->top_s);
    size_t nb = *nc;
    for (size_t i = 0; i < n; i++) {
        int r = (int)i + 1;
        size_t j = 0;
        while (j < nb && c[j].id != k->top_id[i])
            j++;
        if (j == nb) {
            j = (*nc)++;
            c[j] = (cand){.id = k->top_id[i]};
        }
        c[j].rv = r, c[j].sv = k->top_s[i];
        c[j].score += 1.0 / (KNOW_RRF_K + r);
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

int know_uses_flush(mem_know *k)
{
    if (!k->nuses)
        return 0;
    if (know_exec(k, "BEGIN IMMEDIATE"))
        return -EIO;
    for (size_t i = 0; i < k->nuses; i++) {
        for (int s = KS_USE_CHUNK; s <= KS_USE_DOC; s++) {
            sqlite3_stmt *st = k->st[s];
            sqlite3_bind_int64(st, 1, s == KS_USE_CHUNK ? k->uses[i].chunk : k->uses[i].doc);
            sqlite3_bind_int64(st, 2, k->uses[i].ts);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
    }
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
    for (size_t i = 0; i < n && k->nuses < KNOW_USES_MAX; i++)
        k->uses[k->nuses++] = (struct know_use){h[i].chunk, h[i].doc, now};
    if (k->nuses + KNOW_TOPN > KNOW_USES_MAX || now - k->uses_since >= KNOW_USES_MS)
        know_uses_flush(k);
}

static int search_locked(mem_know *k, const char *query, int mode, int limit, mem_hit **out, size_t *n,
                         char *err, size_t errlen)
{
    cand c[2 * KNOW_TOPN];
    size_t nc = 0;
    int rc = 0;
    if (mode != MEM_KNOW_VECTOR) {
        plan *p = malloc(2 * sizeof *p);
        if (!p)
            return know_err(err, errlen, -ENOMEM, "%s: no memory", k->path);
        fts_plan(k, query, &p[0], &p[1]);
        rc = bm25_list(k, &p[0], c, &nc, err, errlen);
        if (!rc && !nc && p[1].expr[0])
            rc = bm25_list(k, &p[1], c, &nc, err, errlen);
        free(p);
        if (rc)
            return rc;
    }
    if (mode != MEM_KNOW_BM25)
        vec_list(k, query, c, &nc);
    for (size_t i = 0; i < nc; i++) /* one ranking alone: its own score */
        if (mode != MEM_KNOW_HYBRID)
            c[i].score = mode == MEM_KNOW_BM25 ? c[i].sb : c[i].sv;
    qsort(c, nc, sizeof *c, cmp_cand);
    size_t want = nc < (size_t)limit ? nc : (size_t)limit;
    mem_hit *h = calloc(want ? want : 1, sizeof *h);
    if (!h)
        return know_err(err, errlen, -ENOMEM, "%s: no memory", k->path);
    size_t m = 0;
    for (size_t i = 0; i < nc && m < want; i++) {
        int got = fill_hit(k, &c[i], &h[m]);
        if (got < 0) {
            mem_know_hits_free(h, m);
            return know_err(err, errlen, got, "%s: reading a hit failed", k->path);
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
        return know_err(err, errlen, -EINVAL, "knowledge: no store");
    if (!query || !query[strspn(query, " \t\r\n\f\v")])
        return know_err(err, errlen, -EINVAL, "knowledge: empty query");
    if (mode < MEM_KNOW_HYBRID || mode > MEM_KNOW_VECTOR)
        return know_err(err, errlen, -EINVAL, "knowledge: unknown search mode %d", mode);
    if (limit <= 0)
        limit = 10;
    if (limit > KNOW_TOPN)
        limit = KNOW_TOPN;
    pthread_mutex_lock(&k->mu);
    int rc = search_locked(k, query, mode, limit, out, n, err, errlen);
    pthread_mutex_unlock(&k->mu);
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
