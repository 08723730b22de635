/* know_vec.c: the knowledge store's exact vector search: mem_vec_dot (AVX2
 * with FMA chosen at run time, a scalar fallback), the in-RAM index (every
 * vector in one contiguous float32 array, in chunk id order) and its top-k
 * scan with a small min-heap: no allocation per query or per chunk. */
#include "memory/know_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define KNOW_X86 1
#endif

float mem_vec_dot_scalar(const float *a, const float *b, size_t n)
{
    /* four partial sums: the compiler may vectorise, the order stays fixed */
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

#ifdef KNOW_X86
__attribute__((target("avx2,fma"))) float mem_vec_dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float s = _mm_cvtss_f32(h);
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}
#endif

bool know_vec_avx2(void)
{
#ifdef KNOW_X86
    static int have = -1; /* a benign race: every thread computes the same */
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
#else
    return false;
#endif
}

float mem_vec_dot(const float *a, const float *b, size_t n)
{
#ifdef KNOW_X86
    if (know_vec_avx2())
        return mem_vec_dot_avx2(a, b, n);
#endif
    return mem_vec_dot_scalar(a, b, n);
}

int know_index_reserve(know_index *ix, size_t n)
{
    if (n <= ix->cap)
        return 0;
    size_t cap = ix->cap ? ix->cap : 1024;
    while (cap < n)
        cap *= 2;
    float *v = realloc(ix->v, cap * (size_t)ix->dims * sizeof *v);
    if (!v)
        return -ENOMEM;
    ix->v = v;
    int64_t *id = realloc(ix->id, cap * sizeof *id);
    if (!id)
        return -ENOMEM;
    ix->id = id, ix->cap = cap;
    return 0;
}

int know_index_append(know_index *ix, int64_t id, const float *v)
{
    int rc = know_index_reserve(ix, ix->n + 1);
    if (rc)
        return rc;
    memcpy(ix->v + ix->n * (size_t)ix->dims, v, (size_t)ix->dims * sizeof *v);
    ix->id[ix->n++] = id;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

ptrdiff_t know_index_find(const know_index *ix, int64_t id)
{
    const int64_t *p = ix->n ? bsearch(&id, ix->id, ix->n, sizeof id, cmp_i64) : NULL;
    return p ? p - ix->id : -1;
}

void know_index_drop(know_index *ix, const int64_t *ids, size_t n)
{
    if (!n || !ix->n)
        return;
    size_t d = (size_t)ix->dims, w = 0;
    for (size_t r = 0; r < ix->n; r++) {
        if (bsearch(&ix->id[r], ids, n, sizeof *ids, cmp_i64))
            continue;
        if (w != r) {
            ix->id[w] = ix->id[r];
            memmove(ix->v + w * d, ix->v + r * d, d * sizeof *ix->v);
        }
        w++;
    }
    ix->n = w;
}

void know_index_free(know_index *ix)
{
    free(ix->v);
    free(ix->id);
    ix->v = NULL, ix->id = NULL, ix->n = ix->cap = 0;
}

/* Min-heap on score: h_s[0] is the worst of the best k so far. */
static void sift_down(float *s, int64_t *id, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && s[l] < s[m])
            m = l;
        if (r < n && s[r] < s[m])
            m = r;
        if (m == i)
            return;
        float ts = s[i];
        s[i] = s[m], s[m] = ts;
        int64_t ti = id[i];
        id[i] = id[m], id[m] = ti;
        i = m;
    }
}

static void sift_up(float *s, int64_t *id, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if (s[p] <= s[i])
            return;
        float ts = s[i];
        s[i] = s[p], s[p] = ts;
        int64_t ti = id[i];
        id[i] = id[p], id[p] = ti;
        i = p;
    }
}

typedef float (*dot_fn)(const float *, const float *, size_t);

size_t know_index_top(const know_index *ix, const float *q, size_t k, int64_t *out_id, float *out_s)
{
    dot_fn dot = mem_vec_dot_scalar;
#ifdef KNOW_X86
    if (know_vec_avx2())
        dot = mem_vec_dot_avx2;
#endif
    size_t d = (size_t)ix->dims, n = 0;
    if (!k)
        return 0;
    for (size_t i = 0; i < ix->n; i++) {
        float s = dot(q, ix->v + i * d, d);
        if (n < k) {
            out_s[n] = s, out_id[n] = ix->id[i];
            sift_up(out_s, out_id, n++);
        } else if (s > out_s[0]) {
            out_s[0] = s, out_id[0] = ix->id[i];
            sift_down(out_s, out_id, n, 0);
        }
    }
    /* heap sort: pop the worst to the end, best first remains */
    for (size_t m = n; m > 1; m--) {
        float ts = out_s[0];
        out_s[0] = out_s[m - 1], out_s[m - 1] = ts;
        int64_t ti = out_id[0];
        out_id[0] = out_id[m - 1], out_id[m - 1] = ti;
        sift_down(out_s, out_id, m - 1, 0);
    }
    return n;
}
