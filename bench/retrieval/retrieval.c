/* bench/retrieval/retrieval.c: the knowledge store's known-item search over
 * man pages (issue 12's retrieval benchmark; bench/retrieval/run.sh runs it).
 *
 * Reads the corpus extract.py wrote (one JSON line per page: id, query, text),
 * adds every page to a fresh store through the public mem_know_* API (source =
 * the page's id, no title), asks each page's query in each mode (BM25 alone,
 * vector alone, hybrid) and scores where the page comes among the distinct
 * pages of the hits: recall@1, recall@10, MRR, for all pages and for the two
 * halves of a fixed-seed random split (the "tune" half the embedding was tuned
 * on, the "held" half it never was). Then it pads the store with synthetic
 * pages (words drawn from the corpus with their corpus frequencies) up to
 * --pad chunks and measures the queries' latency again.
 *
 * --fusions also scores other fusions of the two lists than the store's
 * (weighted reciprocal rank, computed here from MEM_KNOW_BM25's and
 * MEM_KNOW_VECTOR's hits).
 *
 * --embed-only scores the built-in embedding alone (know_int.h, without the
 * store): pages cut into ~1,200-byte chunks, brute-force cosine, a page
 * ranked by its best chunk; for tuning the embedding.
 *
 * Usage: retrieval CORPUS [--store DIR] [--pad N] [--queries N] [--embed-only] [--fusions] [--kv]
 */

#include "memory/know_int.h"
#include "memory/memory.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct page {
    char *id, *query, *text;
    int half; /* 0 tune, 1 held */
} page;

typedef struct corpus {
    page *p;
    size_t n;
} corpus;

typedef struct score {
    double n[3], r1[3], r10[3], mrr[3]; /* [all, tune, held] */
    double *lat;                        /* ms per query */
    size_t nlat;
} score;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static uint64_t rng_state = 0x12ull * 0x9E3779B97F4A7C15ull + 1;
static uint64_t rng(void)
{
    uint64_t x = rng_state;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return rng_state = x;
}

static int load(const char *path, corpus *c)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "retrieval: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0, lineno = 0, alloc = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *q = json_string_value(json_object_get(o, "query"));
        const char *t = json_string_value(json_object_get(o, "text"));
        if (!id || !q || !t) {
            fprintf(stderr, "retrieval: %s:%zu: not a page (id, query, text)\n", path, lineno);
            json_decref(o);
            continue;
        }
        if (c->n == alloc) {
            alloc = alloc ? alloc * 2 : 1024;
            c->p = realloc(c->p, alloc * sizeof *c->p);
            if (!c->p)
                abort();
        }
        c->p[c->n++] = (page){strdup(id), strdup(q), strdup(t), 0};
        json_decref(o);
    }
    free(line);
    fclose(f);
    /* the fixed-seed split: a shuffled order, its first half is "tune" */
    size_t *ix = malloc(c->n * sizeof *ix);
    for (size_t i = 0; i < c->n; i++)
        ix[i] = i;
    for (size_t i = c->n; i > 1; i--) {
        size_t j = rng() % i, t = ix[i - 1];
        ix[i - 1] = ix[j], ix[j] = t;
    }
    for (size_t i = 0; i < c->n; i++)
        c->p[ix[i]].half = i < c->n / 2 ? 0 : 1;
    free(ix);
    return c->n ? 0 : -1;
}

static void count(score *s, int half, int rank)
{
    for (int k = 0; k < 3; k++) {
        if (k && k - 1 != half)
            continue;
        s->n[k]++;
        s->r1[k] += rank == 1;
        s->r10[k] += rank >= 1 && rank <= 10;
        s->mrr[k] += rank >= 1 ? 1.0 / rank : 0;
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(score *s, double p)
{
    if (!s->nlat)
        return 0;
    qsort(s->lat, s->nlat, sizeof *s->lat, cmp_d);
    size_t i = (size_t)(p * (double)(s->nlat - 1) + 0.5);
    return s->lat[i];
}

static const char *mode_name[] = {"hybrid", "bm25", "vector"};

static void print_score(const char *label, score *s, bool kv)
{
    for (int k = 0; k < 3; k++) {
        const char *part = k == 0 ? "all" : k == 1 ? "tune" : "held";
        double n = s->n[k] ? s->n[k] : 1;
        printf("%-22s %-4s n=%-6.0f recall@1 %5.1f%%  recall@10 %5.1f%%  MRR %.3f\n", label, part, s->n[k],
               100 * s->r1[k] / n, 100 * s->r10[k] / n, s->mrr[k] / n);
        if (kv)
            printf("kv %s_%s=%.0f %.4f %.4f %.4f\n", label, part, s->n[k], s->r1[k] / n, s->r10[k] / n,
                   s->mrr[k] / n);
    }
    if (s->nlat) {
        printf("%-22s latency p50 %.2f ms  p95 %.2f ms (%zu queries)\n", label, pct(s, 0.5), pct(s, 0.95), s->nlat);
        if (kv)
            printf("kv %s_lat=%.3f %.3f\n", label, pct(s, 0.5), pct(s, 0.95));
    }
}

/* ---- through the store ------------------------------------------------------------- */

/* The 1-based rank of source among the distinct sources of the hits, 0 if absent. */
static int rank_of(const mem_hit *h, size_t n, const char *source)
{
    int r = 0;
    for (size_t i = 0; i < n; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(h[j].source, h[i].source) == 0;
        if (dup)
            continue;
        r++;
        if (strcmp(h[i].source, source) == 0)
            return r;
    }
    return 0;
}

static int ask_all(mem_know *k, corpus *c, int mode, size_t nq, score *s)
{
    char err[256];
    memset(s, 0, sizeof *s);
    s->lat = calloc(nq, sizeof *s->lat);
    for (size_t i = 0; i < nq; i++) {
        page *p = &c->p[i * c->n / nq];
        mem_hit *h = NULL;
        size_t n = 0;
        double t0 = now_ms();
        int rc = mem_know_search(k, p->query, mode, 50, &h, &n, err, sizeof err);
        s->lat[s->nlat++] = now_ms() - t0;
        if (rc < 0) {
            fprintf(stderr, "retrieval: search '%s': %s\n", p->query, err);
            return -1;
        }
        count(s, p->half, rank_of(h, n, p->id));
        mem_know_hits_free(h, n);
    }
    return 0;
}

/* Other fusions of the same two lists, computed here from BM25's and the
 * vector's hits (for the store's fusion to be chosen by): score of a chunk
 * = 1 / (k + bm25 rank) + wv / (k + vector rank). */
typedef struct fusion {
    double k, wv;
} fusion;
static const fusion fusions[] = {{60, 1.0}, {60, 0.5}, {60, 0.3}, {10, 0.5}, {10, 0.3}};
#define NFUSE (sizeof fusions / sizeof *fusions)

typedef struct fhit {
    int64_t chunk;
    const char *source;
    double score;
} fhit;

static int cmp_fhit(const void *a, const void *b)
{
    const fhit *x = a, *y = b;
    return x->score > y->score ? -1 : x->score < y->score;
}

static int fused_rank(const mem_hit *b, size_t nb, const mem_hit *v, size_t nv, fusion f, const char *source)
{
    fhit *h = calloc(nb + nv + 1, sizeof *h);
    size_t n = 0;
    for (size_t i = 0; i < nb; i++)
        h[n++] = (fhit){b[i].chunk, b[i].source, 1.0 / (f.k + (double)(i + 1))};
    for (size_t i = 0; i < nv; i++) {
        size_t j = 0;
        while (j < n && h[j].chunk != v[i].chunk)
            j++;
        if (j == n)
            h[n++] = (fhit){v[i].chunk, v[i].source, 0};
        h[j].score += f.wv / (f.k + (double)(i + 1));
    }
    qsort(h, n, sizeof *h, cmp_fhit);
    int r = 0, found = 0;
    for (size_t i = 0; i < n && !found; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(h[j].source, h[i].source) == 0;
        if (!dup && (++r, strcmp(h[i].source, source) == 0))
            found = r;
    }
    free(h);
    return found;
}

static int fuse_all(mem_know *k, corpus *c, size_t nq, bool kv)
{
    char err[256];
    score s[NFUSE];
    memset(s, 0, sizeof s);
    size_t either = 0, vonly = 0;
    for (size_t i = 0; i < nq; i++) {
        page *p = &c->p[i * c->n / nq];
        mem_hit *b = NULL, *v = NULL;
        size_t nb = 0, nv = 0;
        if (mem_know_search(k, p->query, MEM_KNOW_BM25, 100, &b, &nb, err, sizeof err) < 0 ||
            mem_know_search(k, p->query, MEM_KNOW_VECTOR, 100, &v, &nv, err, sizeof err) < 0) {
            fprintf(stderr, "retrieval: search '%s': %s\n", p->query, err);
            return -1;
        }
        for (size_t f = 0; f < NFUSE; f++)
            count(&s[f], p->half, fused_rank(b, nb, v, nv, fusions[f], p->id));
        int rb = rank_of(b, nb, p->id), rv = rank_of(v, nv, p->id);
        either += (rb >= 1 && rb <= 10) || (rv >= 1 && rv <= 10);
        vonly += (rb < 1 || rb > 10) && rv >= 1 && rv <= 10;
        mem_know_hits_free(b, nb);
        mem_know_hits_free(v, nv);
    }
    for (size_t f = 0; f < NFUSE; f++) {
        char label[64];
        snprintf(label, sizeof label, "rrf-k%.0f-wv%.1f", fusions[f].k, fusions[f].wv);
        print_score(label, &s[f], kv);
    }
    printf("in the first 10 of BM25 or of the vector: %.1f%%; of the vector only: %.1f%%\n",
           100.0 * (double)either / (double)nq, 100.0 * (double)vonly / (double)nq);
    return 0;
}

/* Synthetic pages: words drawn from the corpus at random (so with their
 * corpus frequencies), about 3,000 bytes each. */
static char *synth_page(corpus *c)
{
    size_t cap = 3300, len = 0;
    char *t = malloc(cap);
    while (len < 3000) {
        page *p = &c->p[rng() % c->n];
        size_t tl = strlen(p->text), o = rng() % tl;
        while (o < tl && p->text[o] != ' ')
            o++;
        while (o < tl && p->text[o] == ' ')
            o++;
        size_t e = o;
        while (e < tl && e - o < 30 && p->text[e] != ' ' && p->text[e] != '\n')
            e++;
        if (e == o)
            continue;
        memcpy(t + len, p->text + o, e - o);
        len += e - o;
        t[len] = (len % 80 < 8) ? '\n' : ' ';
        len++;
    }
    t[len] = 0;
    return t;
}

static int run_store(corpus *c, const char *dir, long pad, size_t nq, bool kv, bool fuse)
{
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/knowledge.db", dir);
    unlink(path);
    mem_know *k;
    if (mem_know_open(path, &k, err, sizeof err) < 0) {
        fprintf(stderr, "retrieval: open %s: %s\n", path, err);
        return 1;
    }
    long chunks = 0;
    double t0 = now_ms();
    for (size_t i = 0; i < c->n; i++) {
        mem_doc d = {.source = c->p[i].id, .title = "", .kind = "man", .text = c->p[i].text, .confidence = 1};
        int nch = 0;
        if (mem_know_add(k, &d, NULL, &nch, err, sizeof err) < 0) {
            fprintf(stderr, "retrieval: add %s: %s\n", c->p[i].id, err);
            mem_know_close(k);
            return 1;
        }
        chunks += nch;
    }
    double idx = now_ms() - t0;
    printf("indexed %zu pages, %ld chunks in %.1f s (%.0f pages/s)\n", c->n, chunks, idx / 1e3, c->n / (idx / 1e3));
    if (kv)
        printf("kv index=%zu %ld %.3f\n", c->n, chunks, idx / 1e3);
    score s[3];
    for (int m = 0; m < 3; m++) {
        if (ask_all(k, c, m, nq, &s[m]) < 0)
            return 1;
        print_score(mode_name[m], &s[m], kv);
        free(s[m].lat);
    }
    if (fuse && fuse_all(k, c, nq, kv) < 0)
        return 1;
    if (pad > chunks) {
        long pages = 0;
        t0 = now_ms();
        while (chunks < pad) {
            char src[64];
            snprintf(src, sizeof src, "pad:%ld", pages++);
            char *t = synth_page(c);
            mem_doc d = {.source = src, .title = "", .kind = "text", .text = t, .confidence = 1};
            int nch = 0;
            int rc = mem_know_add(k, &d, NULL, &nch, err, sizeof err);
            free(t);
            if (rc < 0) {
                fprintf(stderr, "retrieval: add %s: %s\n", src, err);
                return 1;
            }
            chunks += nch;
        }
        printf("padded with %ld synthetic pages to %ld chunks in %.1f s\n", pages, chunks, (now_ms() - t0) / 1e3);
        if (kv)
            printf("kv pad=%ld %ld\n", pages, chunks);
        for (int m = 0; m < 2; m++) {
            char label[64];
            snprintf(label, sizeof label, "%s@%ldk", mode_name[m], chunks / 1000);
            if (ask_all(k, c, m, nq, &s[m]) < 0)
                return 1;
            print_score(label, &s[m], kv);
            if (kv)
                printf("kv %s_lat_pad=%.3f %.3f\n", mode_name[m], pct(&s[m], 0.5), pct(&s[m], 0.95));
            free(s[m].lat);
        }
    }
    mem_know_close(k);
    return 0;
}

/* ---- the embedding alone ------------------------------------------------------------ */

typedef struct chunkref {
    size_t page;
    char *text;
} chunkref;

static int run_embed(corpus *c, size_t nq, bool kv)
{
    chunkref *ch = NULL;
    size_t nch = 0, cap = 0;
    for (size_t i = 0; i < c->n; i++) {
        const char *t = c->p[i].text;
        size_t tl = strlen(t), o = 0;
        while (o < tl) {
            size_t e = o + 1200 < tl ? o + 1200 : tl;
            while (e < tl && e > o + 800 && t[e] != '\n')
                e--;
            if (nch == cap) {
                cap = cap ? cap * 2 : 4096;
                ch = realloc(ch, cap * sizeof *ch);
            }
            ch[nch++] = (chunkref){i, strndup(t + o, e - o)};
            o = e;
        }
    }
    mem_embed_model *m = mem_embed_model_new();
    double t0 = now_ms();
    for (size_t i = 0; i < nch; i++)
        mem_embed_model_add(m, ch[i].text, 1);
    double tadd = now_ms() - t0;
    float *v = malloc(nch * MEM_KNOW_DIM * sizeof *v);
    t0 = now_ms();
    for (size_t i = 0; i < nch; i++)
        mem_embed_text(m, ch[i].text, v + i * MEM_KNOW_DIM);
    double temb = now_ms() - t0;
    void *blob;
    size_t blen = 0;
    if (mem_embed_model_save(m, &blob, &blen) == 0)
        free(blob);
    printf("embedding: %zu pages, %zu chunks: model add %.1f s, embed %.1f s (%.1f us/chunk), model blob %.1f MB\n",
           c->n, nch, tadd / 1e3, temb / 1e3, temb * 1e3 / nch, blen / 1e6);
    float *best = malloc(c->n * sizeof *best), q[MEM_KNOW_DIM];
    score s;
    memset(&s, 0, sizeof s);
    s.lat = calloc(nq, sizeof *s.lat);
    for (size_t qi = 0; qi < nq; qi++) {
        size_t pi = qi * c->n / nq;
        t0 = now_ms();
        mem_embed_text(m, c->p[pi].query, q);
        s.lat[s.nlat++] = now_ms() - t0;
        for (size_t i = 0; i < c->n; i++)
            best[i] = -2;
        for (size_t i = 0; i < nch; i++) {
            float d = mem_vec_dot(q, v + i * MEM_KNOW_DIM, MEM_KNOW_DIM);
            if (d > best[ch[i].page])
                best[ch[i].page] = d;
        }
        int rank = 1;
        for (size_t i = 0; i < c->n; i++)
            rank += best[i] > best[pi] || (best[i] == best[pi] && i < pi);
        count(&s, c->p[pi].half, rank);
    }
    print_score("embed-only", &s, kv);
    printf("(latency above: embedding one query)\n");
    free(s.lat);
    free(best);
    free(v);
    for (size_t i = 0; i < nch; i++)
        free(ch[i].text);
    free(ch);
    mem_embed_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    const char *corpus_path = NULL, *dir = NULL;
    long pad = 100000, nq = 0;
    bool embed_only = false, kv = false, fuse = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--store") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--pad") && i + 1 < argc)
            pad = atol(argv[++i]);
        else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
            nq = atol(argv[++i]);
        else if (!strcmp(argv[i], "--embed-only"))
            embed_only = true;
        else if (!strcmp(argv[i], "--fusions"))
            fuse = true;
        else if (!strcmp(argv[i], "--kv"))
            kv = true;
        else if (argv[i][0] != '-' && !corpus_path)
            corpus_path = argv[i];
        else {
            fprintf(stderr, "usage: retrieval CORPUS [--store DIR] [--pad N] [--queries N] [--embed-only] [--fusions] [--kv]\n");
            return 2;
        }
    }
    if (!corpus_path) {
        fprintf(stderr, "usage: retrieval CORPUS [--store DIR] [--pad N] [--queries N] [--embed-only] [--fusions] [--kv]\n");
        return 2;
    }
    corpus c = {0};
    if (load(corpus_path, &c) < 0) {
        fprintf(stderr, "retrieval: %s: no pages\n", corpus_path);
        return 1;
    }
    size_t q = nq > 0 && (size_t)nq < c.n ? (size_t)nq : c.n;
    printf("corpus: %zu pages (%zu tune, %zu held out), %zu queries asked\n", c.n, c.n / 2, c.n - c.n / 2, q);
    int rc;
    if (embed_only) {
        rc = run_embed(&c, q, kv);
    } else {
        char tmpl[] = "/tmp/ippoc-retrieval.XXXXXX";
        const char *d = dir ? dir : mkdtemp(tmpl);
        rc = d ? run_store(&c, d, pad, q, kv, fuse) : 1;
        if (!dir && d) {
            char p[4096];
            const char *sfx[] = {"", "-wal", "-shm"};
            for (int i = 0; i < 3; i++) {
                snprintf(p, sizeof p, "%s/knowledge.db%s", d, sfx[i]);
                unlink(p);
            }
            rmdir(d);
        }
    }
    for (size_t i = 0; i < c.n; i++)
        free(c.p[i].id), free(c.p[i].query), free(c.p[i].text);
    free(c.p);
    return rc;
}
