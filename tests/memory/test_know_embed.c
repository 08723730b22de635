/* test_know_embed.c: the knowledge store's built-in embedding (know_embed.c,
 * know_int.h): its model saved and loaded back gives the same vectors, a blob
 * that is not one (wrong size, wrong magic, truncated, NULL) is refused and
 * leaves the model empty, related texts are closer than unrelated ones,
 * empty text is the zero vector, and adding then removing texts restores the
 * statistics byte for byte, and threads embedding at once with one model
 * get the same vectors as one thread alone. The model allocates its arrays
 * only when a text is counted or non-empty statistics are loaded: a model
 * that never had any, one whose texts were all removed again and one loaded
 * from an empty blob embed and save alike. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "memory/know_int.h"

static const char *docs[] = {
    "The ls command lists directory contents: the files and subdirectories of each directory given.",
    "mkdir creates directories; with -p it also creates missing parent directories.",
    "The kernel's out-of-memory killer kills a process when the system runs out of memory.",
    "nginx is a web server and reverse proxy; it reloads its configuration on SIGHUP.",
    "Swap space is used when physical memory is full; vm.swappiness tunes how eagerly pages are swapped.",
    "systemctl restart starts a service again after stopping it; systemd logs the restart in the journal.",
    "A filesystem full of files leaves no space on the device for new writes; df shows the usage.",
    "TCP retransmissions rise when packets are lost on the network between two hosts.",
};
#define NDOCS (sizeof docs / sizeof *docs)

static mem_embed_model *trained(void)
{
    mem_embed_model *m = mem_embed_model_new();
    assert_non_null(m);
    for (size_t r = 0; r < 3; r++)
        for (size_t i = 0; i < NDOCS; i++)
            mem_embed_model_add(m, docs[i], 1);
    return m;
}

static float cosine(const mem_embed_model *m, const char *a, const char *b)
{
    float va[MEM_KNOW_DIM], vb[MEM_KNOW_DIM];
    mem_embed_text(m, a, va);
    mem_embed_text(m, b, vb);
    return mem_vec_dot(va, vb, MEM_KNOW_DIM);
}

static void test_roundtrip(void **state)
{
    (void)state;
    mem_embed_model *m = trained();
    void *blob = NULL;
    size_t len = 0;
    assert_int_equal(mem_embed_model_save(m, &blob, &len), 0);
    assert_true(len > 0 && len < 8u << 20); /* "a few MB at most" */
    mem_embed_model *m2 = mem_embed_model_new();
    assert_int_equal(mem_embed_model_load(m2, blob, len), 0);
    for (size_t i = 0; i < NDOCS; i++) {
        float a[MEM_KNOW_DIM], b[MEM_KNOW_DIM];
        mem_embed_text(m, docs[i], a);
        mem_embed_text(m2, docs[i], b);
        assert_memory_equal(a, b, sizeof a);
    }
    void *blob2 = NULL;
    size_t len2 = 0;
    assert_int_equal(mem_embed_model_save(m2, &blob2, &len2), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(blob, blob2, len);
    free(blob2);
    free(blob);
    mem_embed_model_free(m2);
    mem_embed_model_free(m);
}

static void test_bad_blob(void **state)
{
    (void)state;
    mem_embed_model *m = trained();
    void *blob = NULL;
    size_t len = 0;
    assert_int_equal(mem_embed_model_save(m, &blob, &len), 0);
    mem_embed_model *empty = mem_embed_model_new();
    void *empty_blob = NULL;
    size_t empty_len = 0;
    assert_int_equal(mem_embed_model_save(empty, &empty_blob, &empty_len), 0);

    mem_embed_model *t = mem_embed_model_new();
    assert_int_equal(mem_embed_model_load(t, blob, len - 4), -EINVAL); /* truncated */
    assert_int_equal(mem_embed_model_load(t, blob, 3), -EINVAL);
    assert_int_equal(mem_embed_model_load(t, NULL, 0), -EINVAL);
    ((unsigned char *)blob)[0] ^= 0xff; /* not our magic */
    assert_int_equal(mem_embed_model_load(t, blob, len), -EINVAL);
    /* a refused blob leaves the model empty, even after a good load */
    ((unsigned char *)blob)[0] ^= 0xff;
    assert_int_equal(mem_embed_model_load(t, blob, len), 0);
    ((unsigned char *)blob)[0] ^= 0xff;
    assert_int_equal(mem_embed_model_load(t, blob, len), -EINVAL);
    void *after = NULL;
    size_t after_len = 0;
    assert_int_equal(mem_embed_model_save(t, &after, &after_len), 0);
    assert_int_equal(after_len, empty_len);
    assert_memory_equal(after, empty_blob, empty_len);
    free(after);
    free(empty_blob);
    free(blob);
    mem_embed_model_free(t);
    mem_embed_model_free(empty);
    mem_embed_model_free(m);
}

static void test_related_closer(void **state)
{
    (void)state;
    mem_embed_model *m = trained();
    /* a query against its answer and against every other document */
    struct {
        const char *q;
        size_t answer;
    } cases[] = {
        {"list directory contents", 0},
        {"create parent directories", 1},
        {"process killed when out of memory", 2},
        {"restart a service", 5},
        {"no space left on device", 6},
        {"lost packets retransmitted", 7},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float good = cosine(m, cases[c].q, docs[cases[c].answer]);
        if (good <= 0.05f)
            fail_msg("'%s': %.3f to its answer", cases[c].q, good);
        for (size_t i = 0; i < NDOCS; i++)
            if (i != cases[c].answer && cosine(m, cases[c].q, docs[i]) >= good)
                fail_msg("'%s': doc %zu (%.3f) not below its answer %zu (%.3f)", cases[c].q, i,
                         cosine(m, cases[c].q, docs[i]), cases[c].answer, good);
    }
    /* inflected forms share features (prefixes, character n-grams): seen
     * without trained word vectors, with an empty model */
    mem_embed_model *e = mem_embed_model_new();
    assert_true(cosine(e, "directories", "directory") > 0.2f);
    assert_true(cosine(e, "directories", "directory") > cosine(e, "directories", "network"));
    assert_true(cosine(e, "restarted", "restart") > cosine(e, "restarted", "stopped"));
    mem_embed_model_free(e);
    /* a vector is unit length, and a text is closest to itself */
    float v[MEM_KNOW_DIM];
    mem_embed_text(m, docs[3], v);
    assert_float_equal(mem_vec_dot(v, v, MEM_KNOW_DIM), 1.0f, 1e-4);
    mem_embed_model_free(m);
}

static void test_empty(void **state)
{
    (void)state;
    mem_embed_model *m = trained();
    float v[MEM_KNOW_DIM], zero[MEM_KNOW_DIM] = {0};
    const char *empties[] = {"", "   \n\t ", "- , ; !", NULL};
    for (size_t i = 0; i < 4; i++) {
        memset(v, 0x7f, sizeof v);
        mem_embed_text(m, empties[i], v);
        assert_memory_equal(v, zero, sizeof v);
    }
    /* an empty model still embeds (every feature weighs the same) */
    mem_embed_model *e = mem_embed_model_new();
    mem_embed_text(e, "list directory contents", v);
    assert_float_equal(mem_vec_dot(v, v, MEM_KNOW_DIM), 1.0f, 1e-4);
    mem_embed_model_free(e);
    mem_embed_model_free(m);
}

static void test_add_remove(void **state)
{
    (void)state;
    mem_embed_model *m = trained();
    void *before = NULL, *after = NULL;
    size_t lb = 0, la = 0;
    assert_int_equal(mem_embed_model_save(m, &before, &lb), 0);
    const char *extra[] = {"Journald stores logs in binary files under /var/log/journal.",
                           "The ls command lists directory contents: the files and subdirectories of each directory given.",
                           "completely different words: zebra quartz xylophone"};
    for (size_t i = 0; i < 3; i++)
        mem_embed_model_add(m, extra[i], 1);
    void *mid = NULL;
    size_t lm = 0;
    assert_int_equal(mem_embed_model_save(m, &mid, &lm), 0);
    assert_true(lm == lb && memcmp(mid, before, lb) != 0); /* adding changed the statistics */
    for (size_t i = 3; i-- > 0;)
        mem_embed_model_add(m, extra[i], -1);
    assert_int_equal(mem_embed_model_save(m, &after, &la), 0);
    assert_int_equal(la, lb);
    assert_memory_equal(after, before, lb);
    free(mid);
    free(after);
    free(before);
    mem_embed_model_free(m);
}

typedef struct reader {
    const mem_embed_model *m;
    const float *want; /* NDOCS vectors */
    int bad;
} reader;

static void *read_many(void *arg)
{
    reader *r = arg;
    float v[MEM_KNOW_DIM];
    for (int round = 0; round < 200; round++)
        for (size_t i = 0; i < NDOCS; i++) {
            mem_embed_text(r->m, docs[i], v);
            r->bad += memcmp(v, r->want + i * MEM_KNOW_DIM, sizeof v) != 0;
        }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    mem_embed_model *m = trained();
    static float want[NDOCS * MEM_KNOW_DIM];
    for (size_t i = 0; i < NDOCS; i++)
        mem_embed_text(m, docs[i], want + i * MEM_KNOW_DIM);
    pthread_t t[4];
    reader r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (reader){m, want, 0};
        assert_int_equal(pthread_create(&t[i], NULL, read_many, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].bad, 0);
    }
    mem_embed_model_free(m);
}

/* A model without arrays (never counted, or loaded from an all-zero blob)
 * is the same model as one whose arrays are allocated but empty. */
static void test_lazy(void **state)
{
    (void)state;
    mem_embed_model *never = mem_embed_model_new(), *emptied = mem_embed_model_new();
    assert_non_null(never);
    assert_non_null(emptied);
    mem_embed_model_add(never, docs[0], -1); /* nothing to uncount */
    for (size_t i = 0; i < NDOCS; i++)
        mem_embed_model_add(emptied, docs[i], 1);
    for (size_t i = NDOCS; i-- > 0;)
        mem_embed_model_add(emptied, docs[i], -1);
    void *b1 = NULL, *b2 = NULL, *b3 = NULL;
    size_t l1 = 0, l2 = 0, l3 = 0;
    assert_int_equal(mem_embed_model_save(never, &b1, &l1), 0);
    assert_int_equal(mem_embed_model_save(emptied, &b2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    mem_embed_model *loaded = trained(); /* loading the empty blob empties it */
    assert_int_equal(mem_embed_model_load(loaded, b2, l2), 0);
    assert_int_equal(mem_embed_model_save(loaded, &b3, &l3), 0);
    assert_int_equal(l3, l1);
    assert_memory_equal(b3, b1, l1);
    for (size_t i = 0; i < NDOCS; i++) {
        float a[MEM_KNOW_DIM], b[MEM_KNOW_DIM], c[MEM_KNOW_DIM];
        mem_embed_text(never, docs[i], a);
        mem_embed_text(emptied, docs[i], b);
        mem_embed_text(loaded, docs[i], c);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(a, c, sizeof a);
    }
    /* and counting into a loaded-empty model trains it like a new one */
    mem_embed_model *fresh = trained();
    for (size_t r = 0; r < 3; r++)
        for (size_t i = 0; i < NDOCS; i++)
            mem_embed_model_add(loaded, docs[i], 1);
    assert_true(fabsf(cosine(loaded, docs[0], docs[1]) - cosine(fresh, docs[0], docs[1])) < 1e-6f);
    free(b1), free(b2), free(b3);
    mem_embed_model_free(fresh);
    mem_embed_model_free(loaded);
    mem_embed_model_free(emptied);
    mem_embed_model_free(never);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_bad_blob),   cmocka_unit_test(test_related_closer),
        cmocka_unit_test(test_empty),          cmocka_unit_test(test_add_remove), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_lazy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
