/* know_embed.c: the built-in embedding (a first version: hashed words and
 * character trigrams weighted by their inverse document frequency, folded
 * into MEM_KNOW_DIM signed dimensions). */
#include "memory/know_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS (1u << 18) /* hashed features whose document frequency is kept */
#define MAGIC 0x4b4e4531u  /* "KNE1" */

struct mem_embed_model {
    uint32_t ndocs;
    uint32_t *df; /* BUCKETS */
};

static uint64_t fnv(const char *s, size_t n, uint64_t seed)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* Calls fn for each feature of text: lower-cased words and their trigrams. */
static void features(const char *text, void (*fn)(void *ud, uint64_t h, float w), void *ud)
{
    char w[64];
    size_t n = 0;
    for (const char *p = text;; p++) {
        int c = (unsigned char)*p;
        if (c && (isalnum(c) || c == '_')) {
            if (n < sizeof w - 1)
                w[n++] = (char)tolower(c);
            continue;
        }
        if (n >= 2) {
            fn(ud, fnv(w, n, 0), 1.0f);
            char g[66] = "^";
            memcpy(g + 1, w, n);
            g[n + 1] = '$';
            for (size_t i = 0; i + 3 <= n + 2; i++)
                fn(ud, fnv(g + i, 3, 7), 0.25f);
        }
        n = 0;
        if (!c)
            break;
    }
}

mem_embed_model *mem_embed_model_new(void)
{
    mem_embed_model *m = calloc(1, sizeof *m);
    if (m && !(m->df = calloc(BUCKETS, sizeof *m->df))) {
        free(m);
        return NULL;
    }
    return m;
}

void mem_embed_model_free(mem_embed_model *m)
{
    if (m)
        free(m->df);
    free(m);
}

typedef struct seen {
    uint32_t *b;
    size_t n, cap;
} seen;

static void collect(void *ud, uint64_t h, float w)
{
    (void)w;
    seen *s = ud;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint32_t *b = realloc(s->b, cap * sizeof *b);
        if (!b)
            return;
        s->b = b, s->cap = cap;
    }
    s->b[s->n++] = (uint32_t)(h % BUCKETS);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void mem_embed_model_add(mem_embed_model *m, const char *text, int sign)
{
    seen s = {0};
    features(text, collect, &s);
    qsort(s.b, s.n, sizeof *s.b, cmp_u32);
    for (size_t i = 0; i < s.n; i++) {
        if (i && s.b[i] == s.b[i - 1])
            continue;
        if (sign > 0)
            m->df[s.b[i]]++;
        else if (m->df[s.b[i]])
            m->df[s.b[i]]--;
    }
    free(s.b);
    if (sign > 0)
        m->ndocs++;
    else if (m->ndocs)
        m->ndocs--;
}

int mem_embed_model_save(const mem_embed_model *m, void **blob, size_t *len)
{
    size_t n = 8 + (size_t)BUCKETS * 4;
    uint32_t *b = malloc(n);
    if (!b)
        return -ENOMEM;
    b[0] = MAGIC, b[1] = m->ndocs;
    memcpy(b + 2, m->df, (size_t)BUCKETS * 4);
    *blob = b, *len = n;
    return 0;
}

int mem_embed_model_load(mem_embed_model *m, const void *blob, size_t len)
{
    const uint32_t *b = blob;
    if (len != 8 + (size_t)BUCKETS * 4 || b[0] != MAGIC) {
        memset(m->df, 0, (size_t)BUCKETS * 4);
        m->ndocs = 0;
        return -EINVAL;
    }
    m->ndocs = b[1];
    memcpy(m->df, b + 2, (size_t)BUCKETS * 4);
    return 0;
}

typedef struct acc {
    const mem_embed_model *m;
    float *out;
} acc;

static void add_feature(void *ud, uint64_t h, float w)
{
    acc *a = ud;
    uint32_t df = a->m->df[h % BUCKETS];
    float idf = logf((1.0f + (float)a->m->ndocs) / (1.0f + (float)df)) + 1.0f;
    uint64_t g = h * 0x9E3779B97F4A7C15ull;
    a->out[(g >> 33) % MEM_KNOW_DIM] += ((g >> 7) & 1 ? 1.0f : -1.0f) * w * idf;
}

void mem_embed_text(const mem_embed_model *m, const char *text, float *out)
{
    memset(out, 0, MEM_KNOW_DIM * sizeof *out);
    acc a = {m, out};
    features(text ? text : "", add_feature, &a);
    float n = sqrtf(mem_vec_dot(out, out, MEM_KNOW_DIM));
    if (n > 0)
        for (int i = 0; i < MEM_KNOW_DIM; i++)
            out[i] /= n;
}
