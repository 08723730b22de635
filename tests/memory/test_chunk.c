/* test_chunk.c: the rollup chunk encoding (src/memory/chunk.c): round trip of
 * every record kind (empty, constant, full, partial counts, runs, trailing
 * empties, infinities), the exact byte sizes promised, and malformed blobs
 * (hand-made and fuzzed from valid ones) rejected with an error, never a
 * crash or an out-of-range bucket. */
#include "memtest.h"

static void roundtrip(const mem_bucket *in, int n, uint32_t full, size_t want_len)
{
    mem_enc e;
    mem_enc_init(&e, full);
    for (int i = 0; i < n; i++)
        assert_int_equal(mem_enc_add(&e, i, &in[i]), 0);
    size_t len = mem_enc_finish(&e);
    if (want_len != SIZE_MAX && len != want_len)
        fail_msg("encoded %zu bytes, expected %zu", len, want_len);
    mem_bucket out[MEM_CHUNK_MAX];
    assert_int_equal(mem_chunk_decode(e.p, len, n, full, out), 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(out[i].count, in[i].count);
        if (!in[i].count)
            continue;
        assert_memory_equal(&out[i].min, &in[i].min, 4);
        assert_memory_equal(&out[i].max, &in[i].max, 4);
        if (in[i].min != in[i].max)
            assert_memory_equal(&out[i].mean, &in[i].mean, 4);
        else
            assert_true(out[i].mean == in[i].min);
    }
    mem_enc_free(&e);
}

static void test_kinds(void **state)
{
    (void)state;
    mem_bucket b[30] = {{0}};
    roundtrip(b, 30, 10, 0); /* all empty: nothing stored */
    for (int i = 0; i < 30; i++)
        b[i] = (mem_bucket){.min = 3.5f, .max = 3.5f, .mean = 3.5f, .count = 10};
    roundtrip(b, 30, 10, 5); /* a constant series: one run of 30 */
    b[7] = (mem_bucket){.min = -1, .max = 2, .mean = 0.25f, .count = 10};      /* full */
    b[8] = (mem_bucket){.min = 4, .max = 4, .mean = 4, .count = 3};             /* constant, partial */
    b[9] = (mem_bucket){.min = -1e30f, .max = 1e30f, .mean = 7, .count = 9};    /* partial */
    b[10] = (mem_bucket){0};                                                    /* empty inside */
    b[11] = (mem_bucket){.min = INFINITY, .max = INFINITY, .mean = INFINITY, .count = 10};
    b[12] = (mem_bucket){.min = -INFINITY, .max = INFINITY, .mean = NAN, .count = 2};
    for (int i = 20; i < 30; i++)
        b[i] = (mem_bucket){0}; /* trailing empties are implied */
    /* run(7) + full + cpart + part + empty + const + part(+-inf) + run(7) */
    roundtrip(b, 30, 10, 5 + 13 + 6 + 14 + 1 + 5 + 14 + 5);
    mem_bucket h[60];
    for (int i = 0; i < 60; i++) /* 1 min tier, partial counts */
        h[i] = (mem_bucket){.min = (float)i, .max = (float)i + 1, .mean = (float)i + 0.5f, .count = 59};
    roundtrip(h, 60, 60, 60 * 14);
    mem_bucket d[24];
    for (int i = 0; i < 24; i++)
        d[i] = (mem_bucket){.min = 1, .max = 1, .mean = 1, .count = i == 5 ? 3599 : 3600};
    roundtrip(d, 24, 3600, 5 + 7 + 5); /* a count of 3599 takes a 2-byte varint */
    /* a run longer than 32 is split; empty runs likewise */
    for (int i = 0; i < 60; i++)
        h[i] = i < 40 ? (mem_bucket){0} : (mem_bucket){.min = 2, .max = 2, .mean = 2, .count = 60};
    roundtrip(h, 60, 60, 2 + 5);
    /* adding at a lower index, or a count over full, is refused */
    mem_enc e;
    mem_enc_init(&e, 10);
    assert_int_equal(mem_enc_add(&e, 3, &b[0]), 0);
    assert_int_equal(mem_enc_add(&e, 2, &b[0]), -EINVAL);
    mem_bucket over = {.min = 1, .max = 1, .mean = 1, .count = 11};
    assert_int_equal(mem_enc_add(&e, 5, &over), -EINVAL);
    mem_enc_free(&e);
}

static int dec(const uint8_t *p, size_t len, int n, uint32_t full)
{
    mem_bucket out[MEM_CHUNK_MAX];
    return mem_chunk_decode(p, len, n, full, out);
}

static void test_malformed(void **state)
{
    (void)state;
    const uint8_t one[] = {0x01, 0, 0, 0x80, 0x3f}; /* CONST 1.0 */
    assert_int_equal(dec(one, sizeof one, 30, 10), 0);
    assert_int_equal(dec(one, 3, 30, 10), -EINVAL);                     /* truncated float */
    const uint8_t badkind[] = {0x05};
    assert_int_equal(dec(badkind, 1, 30, 10), -EINVAL);                 /* unknown kind */
    const uint8_t toolong[] = {0xf8, 0xf8};                             /* 2 empty runs of 32 > 30 */
    assert_int_equal(dec(toolong, 2, 30, 10), -EINVAL);
    const uint8_t cnt0[] = {0x03, 0x00, 0, 0, 0x80, 0x3f};              /* partial count 0 */
    assert_int_equal(dec(cnt0, sizeof cnt0, 30, 10), -EINVAL);
    const uint8_t cntfull[] = {0x03, 0x0a, 0, 0, 0x80, 0x3f};           /* partial count = full */
    assert_int_equal(dec(cntfull, sizeof cntfull, 30, 10), -EINVAL);
    const uint8_t cntbig[] = {0x03, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0x80, 0x3f}; /* varint > 32 bits */
    assert_int_equal(dec(cntbig, sizeof cntbig, 60, 60), -EINVAL);
    const uint8_t cntrun[] = {0x03, 0x80};                              /* varint cut */
    assert_int_equal(dec(cntrun, sizeof cntrun, 30, 10), -EINVAL);
    const uint8_t minmax[] = {0x02, 0, 0, 0, 0x40, 0, 0, 0x80, 0x3f, 0, 0, 0, 0}; /* min 2 > max 1 */
    assert_int_equal(dec(minmax, sizeof minmax, 30, 10), -EINVAL);
    const uint8_t nanc[] = {0x01, 0, 0, 0xc0, 0x7f};                    /* constant NaN */
    assert_int_equal(dec(nanc, sizeof nanc, 30, 10), -EINVAL);
    assert_int_equal(dec(NULL, 0, 30, 10), 0);                          /* empty blob: all empty */
    assert_int_equal(dec(one, sizeof one, 61, 10), -EINVAL);            /* bad bucket count */
}

/* Mutations of valid chunks: every result is an error or a chunk whose
 * buckets satisfy what a valid one promises. */
static void test_fuzz(void **state)
{
    (void)state;
    unsigned seed = 12345;
    mem_bucket b[60];
    uint8_t buf[60 * MEM_REC_MAX + 8];
    int rejected = 0, accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245u + 12345u;
        int tier = (int)(seed >> 8) % 3, n = mem_tier_nbuckets(tier);
        uint32_t full = mem_tier_full(tier);
        mem_enc e;
        mem_enc_init(&e, full);
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = seed >> 16;
            float v = (float)(r % 7);
            switch (r % 4) {
            case 0: b[i] = (mem_bucket){0}; break;
            case 1: b[i] = (mem_bucket){v, v, v, full}; break;
            case 2: b[i] = (mem_bucket){v, v + 1, v + 0.5f, full}; break;
            default: b[i] = (mem_bucket){v, v + 2, v + 1, 1 + r % (full - 1)}; break;
            }
            assert_int_equal(mem_enc_add(&e, i, &b[i]), 0);
        }
        size_t len = mem_enc_finish(&e);
        memcpy(buf, e.p, len);
        mem_enc_free(&e);
        seed = seed * 1103515245u + 12345u;
        int nmut = 1 + (int)(seed >> 20) % 4;
        for (int k = 0; k < nmut && len; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % len;
            if ((seed & 3) == 0)
                len = pos; /* truncate */
            else
                buf[pos] ^= (uint8_t)(1u << ((seed >> 4) & 7));
        }
        mem_bucket out[MEM_CHUNK_MAX];
        /* decode from a heap copy of exactly len bytes: ASan catches overreads */
        uint8_t *h = malloc(len ? len : 1);
        memcpy(h, buf, len);
        int rc = mem_chunk_decode(h, len, n, full, out);
        free(h);
        if (rc) {
            assert_int_equal(rc, -EINVAL);
            rejected++;
            continue;
        }
        accepted++;
        for (int i = 0; i < n; i++) {
            assert_true(out[i].count <= full);
            if (out[i].count)
                assert_true(out[i].min <= out[i].max);
        }
    }
    print_message("fuzz: %d rejected, %d accepted\n", rejected, accepted);
    assert_true(rejected > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
