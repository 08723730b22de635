/* chunk.c: the on-disk encoding of a rollup chunk (one BLOB holding the
 * consecutive buckets of one series: 30 x 10 s, 60 x 1 min or 24 x 1 h), the
 * accumulators the builder and the queries fold samples and buckets into,
 * and the decoding of one value from a raw row.
 *
 * A chunk is a sequence of records, one per run of identical buckets:
 *   tag byte = (run - 1) << 3 | kind, run 1..32, then the payload of kind:
 *     0 EMPTY       no payload (never at the end: trailing empties are implied)
 *     1 CONST       f32 v               count = full, min = max = mean = v
 *     2 FULL        f32 min, max, mean  count = full
 *     3 CONST_PART  varint count, f32 v (0 < count < full)
 *     4 PART        varint count, f32 min, max, mean (0 < count < full)
 * Floats are IEEE-754 binary32 little-endian; varints are LEB128 (<= 5 bytes).
 * A series that holds one value costs 5 bytes per chunk; a noisy one 13 bytes
 * per bucket. Decoding checks every byte and rejects what the encoder cannot
 * have produced. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { K_EMPTY = 0, K_CONST, K_FULL, K_CONST_PART, K_PART, K_NKINDS };
#define RUN_MAX 32

uint32_t mem_tier_full(int tier)
{
    return (uint32_t)(mem_tier_width[tier] / 1000);
}

int mem_tier_nbuckets(int tier)
{
    return (int)(mem_chunk_width[tier] / mem_tier_width[tier]);
}

/* ---- accumulators ------------------------------------------------------- */

void mem_acc_reset(mem_acc *a)
{
    *a = (mem_acc){.min = INFINITY, .max = -INFINITY, .count = 0, .sum = 0.0};
}

void mem_acc_value(mem_acc *a, float v)
{
    if (v < a->min)
        a->min = v;
    if (v > a->max)
        a->max = v;
    a->sum += v;
    a->count++;
}

void mem_acc_bucket(mem_acc *a, const mem_bucket *b)
{
    if (!b->count)
        return;
    if (b->min < a->min)
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
    a->sum += (double)b->mean * b->count;
    a->count += b->count;
}

mem_bucket mem_acc_get(const mem_acc *a)
{
    if (!a->count)
        return (mem_bucket){0};
    float mean = a->min == a->max ? a->min : (float)(a->sum / a->count);
    return (mem_bucket){.min = a->min, .max = a->max, .mean = mean, .count = a->count};
}

float mem_raw_value(const void *blob, int bytes, int id)
{
    if (!blob || id < 0 || id >= bytes / 4)
        return NAN;
    const unsigned char *p = (const unsigned char *)blob + 4 * (size_t)id;
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* ---- encoding ------------------------------------------------------------ */

static size_t put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (uint8_t)u, p[1] = (uint8_t)(u >> 8), p[2] = (uint8_t)(u >> 16), p[3] = (uint8_t)(u >> 24);
    return 4;
}

static size_t put_varint(uint8_t *p, uint32_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

void mem_enc_init(mem_enc *e, uint32_t full)
{
    *e = (mem_enc){.last = SIZE_MAX, .full = full};
}

void mem_enc_free(mem_enc *e)
{
    free(e->p);
    e->p = NULL;
    e->len = e->cap = 0;
}

static int reserve(mem_enc *e, size_t more)
{
    if (e->len + more <= e->cap)
        return 0;
    size_t nc = e->cap ? e->cap * 2 : 64;
    while (nc < e->len + more)
        nc *= 2;
    uint8_t *p = realloc(e->p, nc);
    if (!p)
        return -ENOMEM;
    e->p = p;
    e->cap = nc;
    return 0;
}

/* Writes one bucket's record (tag with run 1, then payload) into r. */
static size_t make_record(const mem_bucket *b, uint32_t full, uint8_t *r)
{
    bool cst = b->min == b->max, is_full = b->count == full;
    size_t n = 1;
    r[0] = (uint8_t)(cst ? (is_full ? K_CONST : K_CONST_PART) : (is_full ? K_FULL : K_PART));
    if (!is_full)
        n += put_varint(r + n, b->count);
    n += put_f32(r + n, b->min);
    if (!cst) {
        n += put_f32(r + n, b->max);
        n += put_f32(r + n, b->mean);
    }
    return n;
}

static int flush_empty(mem_enc *e)
{
    while (e->pending_empty > 0) {
        int run = e->pending_empty < RUN_MAX ? e->pending_empty : RUN_MAX;
        if (reserve(e, 1))
            return -ENOMEM;
        e->last = e->len;
        e->p[e->len++] = (uint8_t)((run - 1) << 3 | K_EMPTY);
        e->pending_empty -= run;
    }
    return 0;
}

int mem_enc_add(mem_enc *e, int index, const mem_bucket *b)
{
    if (index < e->next)
        return -EINVAL;
    e->pending_empty += index - e->next;
    e->next = index + 1;
    if (!b->count) {
        e->pending_empty++;
        return 0;
    }
    if (b->count > e->full)
        return -EINVAL;
    uint8_t r[MEM_REC_MAX];
    size_t n = make_record(b, e->full, r);
    if (flush_empty(e))
        return -ENOMEM;
    if (e->last != SIZE_MAX) {
        uint8_t *lt = &e->p[e->last];
        size_t ln = e->len - e->last;
        if ((*lt & 7) == r[0] && (*lt >> 3) < RUN_MAX - 1 && ln == n && !memcmp(lt + 1, r + 1, n - 1)) {
            *lt = (uint8_t)(*lt + 8); /* one more bucket in the run */
            return 0;
        }
    }
    if (reserve(e, n))
        return -ENOMEM;
    e->last = e->len;
    memcpy(e->p + e->len, r, n);
    e->len += n;
    return 0;
}

size_t mem_enc_finish(mem_enc *e)
{
    e->pending_empty = 0; /* trailing empties are implied */
    return e->len;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
} rd;

static int get_f32(rd *r, float *v)
{
    if (r->len - r->pos < 4)
        return -EINVAL;
    const uint8_t *p = r->p + r->pos;
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    memcpy(v, &u, 4);
    r->pos += 4;
    return 0;
}

static int get_varint(rd *r, uint32_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 5; i++) {
        if (r->pos >= r->len)
            return -EINVAL;
        uint8_t c = r->p[r->pos++];
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            if (x > UINT32_MAX)
                return -EINVAL;
            *v = (uint32_t)x;
            return 0;
        }
    }
    return -EINVAL;
}

/* Reads the payload of one record of `kind` into b. */
static int get_record(rd *r, int kind, uint32_t full, mem_bucket *b)
{
    *b = (mem_bucket){.count = full};
    if (kind == K_EMPTY) {
        b->count = 0;
        return 0;
    }
    if ((kind == K_CONST_PART || kind == K_PART) &&
        (get_varint(r, &b->count) || b->count == 0 || b->count >= full))
        return -EINVAL;
    if (get_f32(r, &b->min))
        return -EINVAL;
    if (kind == K_CONST || kind == K_CONST_PART) {
        b->max = b->mean = b->min;
        return isnan(b->min) ? -EINVAL : 0;
    }
    if (get_f32(r, &b->max) || get_f32(r, &b->mean))
        return -EINVAL;
    /* a non-constant bucket has min < max (NaN fails this too) */
    return b->min < b->max ? 0 : -EINVAL;
}

int mem_chunk_decode(const void *blob, size_t len, int n, uint32_t full, mem_bucket *out)
{
    rd r = {.p = blob, .len = len};
    int i = 0;
    if (n < 0 || n > MEM_CHUNK_MAX || (len && !blob))
        return -EINVAL;
    while (r.pos < r.len) {
        uint8_t tag = r.p[r.pos++];
        int kind = tag & 7, run = (tag >> 3) + 1;
        mem_bucket b;
        if (kind >= K_NKINDS || run > n - i || get_record(&r, kind, full, &b))
            return -EINVAL;
        while (run--)
            out[i++] = b;
    }
    while (i < n)
        out[i++] = (mem_bucket){0};
    return 0;
}
