/* know_embed.c: the built-in embedding, learned from the documents added.
 *
 * A text's vector has two parts, each L2-normalised and then weighted so the
 * cosine of two texts is (1 - SEM) * lexical + SEM * semantic:
 *  - lexical (LEX dims): signed feature hashing of the text's features: word
 *    unigrams, 5-letter prefixes of longer words (a stemming stand-in: list,
 *    lists, listing), word bigrams and the words' character 3- to 5-grams
 *    ("^word$"), each weighted by sublinear term frequency (1 + ln tf) and
 *    by its inverse document frequency from the model's counts;
 *  - semantic (the rest): the sum of the text's words' corpus-trained word
 *    vectors (random indexing: each chunk added gets a sparse random
 *    ternary index vector derived from its text, and every word of the chunk
 *    adds it to its own vector, so words used in the same chunks point the
 *    same way), weighted like the words above. A query word thus matches
 *    words it never co-occurs with in the query's answer, only in other
 *    chunks.
 * Every statistic is an integer count, so removing a chunk (sign -1) undoes
 * its add exactly. The model (document frequencies and word vectors) is
 * saved with the store; mem_embed_text only reads it. */
#include "memory/know_int.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS (1u << 18) /* hashed features whose document frequency is kept */
#define WORDS (1u << 14)   /* hashed words with a trained word vector */
#define SEMD 64            /* dims of a word vector (the semantic part) */
#define LEX (MEM_KNOW_DIM - SEMD)
#define RI_NZ 8            /* non-zeros of a chunk's random index vector */
#define MAGIC 0x4b4e4532u  /* "KNE2" */
#define MAXWORD 32

/* Feature weights, tuned on the "tune" half of bench/retrieval's pages
 * (embedding alone, recall@10): heavy character n-grams and prefixes help
 * (a 0.6 share gave 39%, 6 gave 52%), bigrams a little less than nothing,
 * the word vectors most (SEM 0: 52%, 0.35: 61%, 0.5: 57%, 1: 29%). */
#define W_WORD 1.0f
#define W_STEM 1.5f
#define W_BIGRAM 0.3f
#define W_CHARS 6.0f /* shared by the word's character n-grams */
#define SEM 0.35f    /* share of the semantic part in the cosine */

/* The arrays (5 MB) are allocated by the first chunk counted or the first
 * non-empty statistics loaded: a cell that reads no documents never has
 * them. NULL arrays mean all zero (and then ndocs is 0). */
struct mem_embed_model {
    uint32_t ndocs;
    uint32_t *df;  /* BUCKETS, or NULL */
    int32_t *wvec; /* WORDS * SEMD, or NULL */
};

static uint64_t fnv(const char *s, size_t n, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ (seed * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

/* ---- a text's features, counted ------------------------------------------------- */

typedef struct feat {
    uint64_t h;
    float w;     /* weight of one occurrence */
    uint32_t tf; /* occurrences */
    uint8_t word;
} feat;

typedef struct ftab {
    feat *f;
    size_t cap, n; /* cap a power of two; 0 keys unused (h |= 1) */
    uint64_t h_text;
} ftab;

static int ftab_grow(ftab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1024;
    feat *f = calloc(cap, sizeof *f);
    if (!f)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->f[i].h)
            continue;
        size_t j = t->f[i].h & (cap - 1);
        while (f[j].h)
            j = (j + 1) & (cap - 1);
        f[j] = t->f[i];
    }
    free(t->f);
    t->f = f, t->cap = cap;
    return 0;
}

static void ftab_add(ftab *t, uint64_t h, float w, int word)
{
    if ((t->n + 1) * 2 > t->cap && ftab_grow(t) < 0)
        return;
    h |= 1;
    size_t j = h & (t->cap - 1);
    while (t->f[j].h && t->f[j].h != h)
        j = (j + 1) & (t->cap - 1);
    if (!t->f[j].h) {
        t->f[j] = (feat){h, w, 0, (uint8_t)word};
        t->n++;
    }
    t->f[j].tf++;
}

static int word_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c >= 0x80;
}

static void word_features(ftab *t, const char *w, size_t n, uint64_t *prev)
{
    uint64_t hw = fnv(w, n, 1);
    ftab_add(t, hw, W_WORD, 1);
    if (n > 5)
        ftab_add(t, fnv(w, 5, 2), W_STEM, 0);
    if (*prev)
        ftab_add(t, (*prev * 31) ^ hw ^ 0x5bd1e995ull, W_BIGRAM, 0);
    *prev = hw;
    char g[MAXWORD + 2];
    g[0] = '^';
    memcpy(g + 1, w, n);
    g[n + 1] = '$';
    size_t len = n + 2, grams = 0;
    for (size_t k = 3; k <= 5; k++)
        grams += len >= k ? len - k + 1 : 0;
    if (!grams)
        return;
    float wg = W_CHARS / (float)grams;
    for (size_t k = 3; k <= 5; k++)
        for (size_t i = 0; i + k <= len; i++)
            ftab_add(t, fnv(g + i, k, 10 + k), wg, 0);
}

/* Lower-cased words of at least 2 bytes (a longer word is cut at MAXWORD). */
static void features(const char *text, ftab *t)
{
    char w[MAXWORD];
    size_t n = 0;
    uint64_t prev = 0;
    for (const char *p = text;; p++) {
        int c = (unsigned char)*p;
        if (c && word_char(c)) {
            if (n < sizeof w)
                w[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            continue;
        }
        if (n >= 2)
            word_features(t, w, n, &prev);
        else if (c != ' ' && c != '-' && c != '\'')
            prev = 0; /* a bigram does not cross punctuation */
        n = 0;
        if (!c)
            break;
    }
    t->h_text = fnv(text, strlen(text), 99);
}

/* ---- the model ------------------------------------------------------------------------ */

mem_embed_model *mem_embed_model_new(void)
{
    return calloc(1, sizeof(mem_embed_model));
}

/* The arrays, allocated (zeroed) when first needed: 0 or -ENOMEM. */
static int model_arrays(mem_embed_model *m)
{
    if (m->df && m->wvec)
        return 0;
    if (!m->df)
        m->df = calloc(BUCKETS, sizeof *m->df);
    if (!m->wvec)
        m->wvec = calloc((size_t)WORDS * SEMD, sizeof *m->wvec);
    return m->df && m->wvec ? 0 : -ENOMEM;
}

static void model_clear(mem_embed_model *m)
{
    free(m->df);
    free(m->wvec);
    m->df = NULL, m->wvec = NULL, m->ndocs = 0;
}

void mem_embed_model_free(mem_embed_model *m)
{
    if (!m)
        return;
    free(m->df);
    free(m->wvec);
    free(m);
}

void mem_embed_model_add(mem_embed_model *m, const char *text, int sign)
{
    if (sign < 0 && !m->df)
        return; /* an empty model: nothing to uncount */
    if (model_arrays(m))
        return; /* out of memory: not counted (as a feature table that cannot grow) */
    ftab t = {0};
    features(text ? text : "", &t);
    /* the chunk's random index vector: RI_NZ signed positions from its text's hash */
    int pos[RI_NZ], sgn[RI_NZ];
    uint64_t r = t.h_text;
    for (int i = 0; i < RI_NZ; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        pos[i] = (int)((r >> 33) % SEMD);
        sgn[i] = (r >> 13) & 1 ? 1 : -1;
    }
    for (size_t i = 0; i < t.cap; i++) {
        const feat *f = &t.f[i];
        if (!f->h)
            continue;
        uint32_t *df = &m->df[f->h % BUCKETS];
        if (sign > 0)
            (*df)++;
        else if (*df)
            (*df)--;
        if (f->word) {
            int32_t *v = m->wvec + (size_t)((f->h >> 20) % WORDS) * SEMD;
            for (int k = 0; k < RI_NZ; k++)
                v[pos[k]] += sign > 0 ? sgn[k] : -sgn[k];
        }
    }
    free(t.f);
    if (sign > 0)
        m->ndocs++;
    else if (m->ndocs)
        m->ndocs--;
}

/* blob: MAGIC, ndocs, BUCKETS, WORDS, SEMD, then df[BUCKETS], wvec[WORDS*SEMD]
 * (host byte order: the blob lives in the store on this machine). */
#define HDR 5
static size_t blob_len(void)
{
    return (HDR + (size_t)BUCKETS + (size_t)WORDS * SEMD) * 4;
}

int mem_embed_model_save(const mem_embed_model *m, void **blob, size_t *len)
{
    uint32_t *b = m->df && m->wvec ? malloc(blob_len()) : calloc(1, blob_len());
    if (!b)
        return -ENOMEM;
    b[0] = MAGIC, b[1] = m->ndocs, b[2] = BUCKETS, b[3] = WORDS, b[4] = SEMD;
    if (m->df && m->wvec) {
        memcpy(b + HDR, m->df, (size_t)BUCKETS * 4);
        memcpy(b + HDR + BUCKETS, m->wvec, (size_t)WORDS * SEMD * 4);
    }
    *blob = b, *len = blob_len();
    return 0;
}

int mem_embed_model_load(mem_embed_model *m, const void *blob, size_t len)
{
    const uint32_t *b = blob;
    model_clear(m);
    if (!b || len != blob_len() || b[0] != MAGIC || b[2] != BUCKETS || b[3] != WORDS || b[4] != SEMD)
        return -EINVAL;
    size_t i = HDR;
    while (i < len / 4 && !b[i])
        i++;
    if (!b[1] && i == len / 4)
        return 0; /* all zero (every document removed): the arrays stay unallocated */
    if (model_arrays(m))
        return -ENOMEM;
    m->ndocs = b[1];
    memcpy(m->df, b + HDR, (size_t)BUCKETS * 4);
    memcpy(m->wvec, b + HDR + BUCKETS, (size_t)WORDS * SEMD * 4);
    return 0;
}

/* ---- embedding a text ------------------------------------------------------------------- */

static float idf(const mem_embed_model *m, uint64_t h)
{
    if (!m || !m->ndocs || !m->df)
        return 1.0f;
    float df = (float)m->df[h % BUCKETS];
    float v = logf((1.0f + (float)m->ndocs) / (0.5f + df));
    return v > 0.05f ? v : 0.05f;
}

static void normalise(float *v, size_t n, float scale)
{
    float s = sqrtf(mem_vec_dot(v, v, n));
    if (s > 0)
        for (size_t i = 0; i < n; i++)
            v[i] *= scale / s;
}

void mem_embed_text(const mem_embed_model *m, const char *text, float *out)
{
    memset(out, 0, MEM_KNOW_DIM * sizeof *out);
    ftab t = {0};
    features(text ? text : "", &t);
    float *sem = out + LEX;
    for (size_t i = 0; i < t.cap; i++) {
        const feat *f = &t.f[i];
        if (!f->h)
            continue;
        float w = f->w * (1.0f + logf((float)f->tf)) * idf(m, f->h);
        uint64_t g = f->h * 0x9E3779B97F4A7C15ull;
        out[(g >> 33) % LEX] += (g >> 7) & 1 ? w : -w;
        if (f->word && m && m->wvec) {
            const int32_t *v = m->wvec + (size_t)((f->h >> 20) % WORDS) * SEMD;
            float n2 = 0;
            for (int k = 0; k < SEMD; k++)
                n2 += (float)v[k] * (float)v[k];
            if (n2 > 0) {
                float s = w / sqrtf(n2);
                for (int k = 0; k < SEMD; k++)
                    sem[k] += s * (float)v[k];
            }
        }
    }
    free(t.f);
    normalise(out, LEX, sqrtf(1.0f - SEM));
    normalise(sem, SEMD, sqrtf(SEM));
    normalise(out, MEM_KNOW_DIM, 1.0f);
}
