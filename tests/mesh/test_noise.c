/* test_noise.c: the Noise implementation (src/mesh/noise.c) against every
 * cacophony test vector for 25519/ChaChaPoly/{SHA256,BLAKE2b} in
 * ../shared/datasets/noise-vectors (handshake ciphertexts byte for byte,
 * payloads, handshake hash, transport both ways), then what the vectors do
 * not cover: tampered handshake and transport messages, low-order keys,
 * nonce exhaustion, rekey, the 65535-byte limit, bad protocol names,
 * messages out of turn, and random bytes into ReadMessage. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "mesh/noise.h"

#define NVEC 118
#define BUF 65536

static uint8_t g_buf[BUF], g_out[BUF];

/* ---- helpers ------------------------------------------------------------------ */
static size_t unhex(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s) / 2;
    assert_true(n <= cap);
    size_t got = 0;
    assert_int_equal(sodium_hex2bin(out, cap, s, strlen(s), NULL, &got, NULL), 0);
    assert_int_equal(got, n);
    return n;
}

static const uint8_t KEY_I[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t KEY_R[32] = {101, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 132};
static const uint8_t PSK[1][32] = {{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 9}};

/* A pair of handshake states for proto with fixed static keys (random
 * ephemerals). The responder's static is known to the initiator when the
 * pattern needs it (IK, NK, ...) and vice versa. */
static void pair(const char *proto, mesh_noise_handshake *i, mesh_noise_handshake *r)
{
    uint8_t pub_i[32], pub_r[32];
    char err[256];
    mesh_noise_protocol p;
    assert_int_equal(mesh_noise_protocol_parse(proto, &p, NULL, 0), 0);
    mesh_noise_pubkey(pub_i, KEY_I);
    mesh_noise_pubkey(pub_r, KEY_R);
    mesh_noise_config ci = {.protocol = proto, .initiator = true, .prologue = (const uint8_t *)"p", .prologue_len = 1,
                            .s_priv = KEY_I, .rs = p.pattern.n_pre_r ? pub_r : NULL, .psks = PSK, .n_psks = 1};
    mesh_noise_config cr = {.protocol = proto, .initiator = false, .prologue = (const uint8_t *)"p", .prologue_len = 1,
                            .s_priv = KEY_R, .s_pub = pub_r, .rs = p.pattern.n_pre_i ? pub_i : NULL, .psks = PSK,
                            .n_psks = 1};
    int rc = mesh_noise_handshake_init(i, &ci, err, sizeof err);
    if (rc)
        fail_msg("init %s: %s", proto, err);
    rc = mesh_noise_handshake_init(r, &cr, err, sizeof err);
    if (rc)
        fail_msg("init %s: %s", proto, err);
}

/* One handshake message from the side whose turn it is to the other; the
 * message is left in g_buf. Returns the reader's result. */
static int step(mesh_noise_handshake *i, mesh_noise_handshake *r, size_t *mlen, int flip_bit)
{
    mesh_noise_handshake *w = mesh_noise_my_turn(i) ? i : r, *rd = w == i ? r : i;
    char err[256];
    size_t plen = 0;
    int rc = mesh_noise_write_message(w, (const uint8_t *)"hello", 5, g_buf, BUF, mlen, err, sizeof err);
    if (rc)
        fail_msg("write: %s", err);
    if (flip_bit >= 0)
        g_buf[flip_bit / 8] ^= (uint8_t)(1u << (flip_bit % 8));
    return mesh_noise_read_message(rd, g_buf, *mlen, g_out, BUF, &plen, err, sizeof err);
}

static void handshake(const char *proto, mesh_noise_handshake *i, mesh_noise_handshake *r, mesh_noise_cipher c[2],
                      mesh_noise_cipher d[2])
{
    size_t mlen;
    pair(proto, i, r);
    while (!mesh_noise_handshake_done(i) || !mesh_noise_handshake_done(r))
        assert_int_equal(step(i, r, &mlen, -1), 0);
    assert_int_equal(mesh_noise_split(i, &c[0], &c[1], NULL, 0), 0);
    assert_int_equal(mesh_noise_split(r, &d[0], &d[1], NULL, 0), 0);
}

/* ---- the vectors ---------------------------------------------------------------- */
typedef struct {
    uint8_t priv[32];
    bool has;
} key32;

static void field_key(json_t *v, const char *name, key32 *k)
{
    json_t *f = json_object_get(v, name);
    k->has = json_is_string(f) && json_string_length(f) > 0;
    if (k->has)
        assert_int_equal(unhex(json_string_value(f), k->priv, 32), 32);
}

static void side_config(json_t *v, const char *side, mesh_noise_config *c, key32 keys[4], uint8_t *prologue,
                        uint8_t (*psks)[32])
{
    char name[64];
    snprintf(name, sizeof name, "%s_prologue", side);
    c->prologue_len = unhex(json_string_value(json_object_get(v, name)), prologue, 256);
    c->prologue = prologue;
    snprintf(name, sizeof name, "%s_static", side);
    field_key(v, name, &keys[0]);
    snprintf(name, sizeof name, "%s_ephemeral", side);
    field_key(v, name, &keys[1]);
    snprintf(name, sizeof name, "%s_remote_static", side);
    field_key(v, name, &keys[2]);
    c->s_priv = keys[0].has ? keys[0].priv : NULL;
    c->e_priv = keys[1].has ? keys[1].priv : NULL;
    c->rs = keys[2].has ? keys[2].priv : NULL;
    snprintf(name, sizeof name, "%s_psks", side);
    json_t *ps = json_object_get(v, name);
    c->n_psks = json_array_size(ps);
    assert_true(c->n_psks <= MESH_NOISE_MAX_PSKS);
    for (size_t j = 0; j < c->n_psks; j++)
        assert_int_equal(unhex(json_string_value(json_array_get(ps, j)), psks[j], 32), 32);
    c->psks = (const uint8_t(*)[32])psks;
}

/* Runs one vector; 0, or -1 with the reason in why. */
static int run_vector(json_t *v, char *why, size_t whylen)
{
    const char *proto = json_string_value(json_object_get(v, "protocol_name"));
    mesh_noise_config ci = {.protocol = proto, .initiator = true}, cr = {.protocol = proto, .initiator = false};
    key32 ki[4], kr[4];
    uint8_t pi[256], pr[256], psi[4][32], psr[4][32];
    mesh_noise_handshake hi, hr;
    mesh_noise_cipher ic1, ic2, rc1, rc2;
    char err[256];
    side_config(v, "init", &ci, ki, pi, psi);
    side_config(v, "resp", &cr, kr, pr, psr);
    if (mesh_noise_handshake_init(&hi, &ci, err, sizeof err) || mesh_noise_handshake_init(&hr, &cr, err, sizeof err)) {
        snprintf(why, whylen, "init: %s", err);
        return -1;
    }
    json_t *msgs = json_object_get(v, "messages");
    size_t nhs = hi.proto.pattern.n_msgs;
    bool one_way = hi.proto.pattern.one_way;
    for (size_t m = 0; m < json_array_size(msgs); m++) {
        json_t *e = json_array_get(msgs, m);
        size_t plen = unhex(json_string_value(json_object_get(e, "payload")), g_buf, BUF);
        uint8_t want[512];
        size_t wlen = unhex(json_string_value(json_object_get(e, "ciphertext")), want, sizeof want);
        bool from_i = one_way || m % 2 == 0;
        size_t clen = 0, olen = 0;
        int rc;
        if (m < nhs) {
            mesh_noise_handshake *w = from_i ? &hi : &hr, *r = from_i ? &hr : &hi;
            rc = mesh_noise_write_message(w, g_buf, plen, g_out, BUF, &clen, err, sizeof err);
            if (rc == 0 && (clen != wlen || memcmp(g_out, want, wlen) != 0))
                snprintf(err, sizeof err, "ciphertext differs (%zu bytes, want %zu)", clen, wlen), rc = -1;
            if (rc == 0)
                rc = mesh_noise_read_message(r, want, wlen, g_out, BUF, &olen, err, sizeof err);
            if (m + 1 == nhs && rc == 0) {
                rc = mesh_noise_split(&hi, &ic1, &ic2, err, sizeof err);
                if (rc == 0)
                    rc = mesh_noise_split(&hr, &rc1, &rc2, err, sizeof err);
                uint8_t hh[64], h2[64], wh[64];
                size_t wl = unhex(json_string_value(json_object_get(v, "handshake_hash")), wh, sizeof wh);
                if (rc == 0 && (mesh_noise_handshake_hash(&hi, hh) != wl || memcmp(hh, wh, wl) ||
                                mesh_noise_handshake_hash(&hr, h2) != wl || memcmp(h2, wh, wl)))
                    snprintf(err, sizeof err, "handshake hash differs"), rc = -1;
            }
        } else {
            mesh_noise_cipher *w = from_i ? &ic1 : &rc2, *r = from_i ? &rc1 : &ic2;
            rc = mesh_noise_cipher_encrypt(w, NULL, 0, g_buf, plen, g_out, BUF, &clen, err, sizeof err);
            if (rc == 0 && (clen != wlen || memcmp(g_out, want, wlen) != 0))
                snprintf(err, sizeof err, "transport ciphertext differs"), rc = -1;
            if (rc == 0)
                rc = mesh_noise_cipher_decrypt(r, NULL, 0, want, wlen, g_out, BUF, &olen, err, sizeof err);
        }
        if (rc == 0 && (olen != plen || memcmp(g_out, g_buf, plen) != 0))
            snprintf(err, sizeof err, "payload differs"), rc = -1;
        if (rc) {
            snprintf(why, whylen, "message %zu: %s", m, err);
            return -1;
        }
    }
    mesh_noise_handshake_wipe(&hi);
    mesh_noise_handshake_wipe(&hr);
    return 0;
}

static void test_vectors(void **state)
{
    (void)state;
    const char *path = getenv("NOISE_VECTORS");
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root)
        fail_msg("%s:%d: %s", path, je.line, je.text);
    json_t *vs = json_object_get(root, "vectors");
    size_t failed = 0, sha = 0, blake = 0;
    for (size_t k = 0; k < json_array_size(vs); k++) {
        json_t *v = json_array_get(vs, k);
        const char *name = json_string_value(json_object_get(v, "protocol_name"));
        char why[512];
        if (run_vector(v, why, sizeof why) < 0) {
            print_error("FAIL %s: %s\n", name, why);
            failed++;
        }
        if (strstr(name, "_SHA256"))
            sha++;
        else if (strstr(name, "_BLAKE2b"))
            blake++;
    }
    print_message("%zu vectors (%zu SHA256, %zu BLAKE2b), %zu failed\n", json_array_size(vs), sha, blake, failed);
    assert_int_equal(json_array_size(vs), NVEC);
    assert_int_equal(sha, NVEC / 2);
    assert_int_equal(failed, 0);
    json_decref(root);
}

/* ---- tampering ------------------------------------------------------------------ */
/* Flips each bit of message `target` in turn: the handshake must fail at a
 * read (at once when the message is encrypted, else at the next message
 * whose AD is the now different h) and never complete. */
static void tamper_handshake(const char *proto)
{
    mesh_noise_handshake i, r;
    size_t mlen;
    pair(proto, &i, &r);
    size_t nmsg = i.proto.pattern.n_msgs;
    for (size_t target = 0; target < nmsg; target++) {
        /* learn the message's length with a clean run */
        pair(proto, &i, &r);
        for (size_t k = 0; k < target; k++)
            assert_int_equal(step(&i, &r, &mlen, -1), 0);
        mesh_noise_handshake si = i, sr = r; /* plain structs: a snapshot */
        assert_int_equal(step(&i, &r, &mlen, -1), 0);
        size_t bits = mlen * 8;
        for (size_t b = 0; b < bits; b++) {
            i = si, r = sr;
            int rc = step(&i, &r, &mlen, (int)b);
            while (rc == 0 && !(mesh_noise_handshake_done(&i) && mesh_noise_handshake_done(&r)))
                rc = step(&i, &r, &mlen, -1);
            if (rc == 0)
                fail_msg("%s: bit %zu of message %zu flipped and the handshake completed", proto, b, target);
            assert_int_equal(rc, -EBADMSG);
        }
    }
    mesh_noise_handshake_wipe(&i);
    mesh_noise_handshake_wipe(&r);
}

static void test_tamper_handshake(void **state)
{
    (void)state;
    tamper_handshake("Noise_XX_25519_ChaChaPoly_SHA256");
    tamper_handshake("Noise_IK_25519_ChaChaPoly_SHA256");
    tamper_handshake("Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b");
    tamper_handshake("Noise_NN_25519_ChaChaPoly_SHA256");
}

static void test_tamper_transport(void **state)
{
    (void)state;
    mesh_noise_handshake i, r;
    mesh_noise_cipher c[2], d[2];
    handshake("Noise_XX_25519_ChaChaPoly_SHA256", &i, &r, c, d);
    uint8_t pt[1400], ct[1416], back[1400];
    randombytes_buf(pt, sizeof pt);
    size_t clen, plen;
    assert_int_equal(mesh_noise_cipher_encrypt(&c[0], NULL, 0, pt, sizeof pt, ct, sizeof ct, &clen, NULL, 0), 0);
    assert_int_equal(clen, sizeof ct);
    for (size_t b = 0; b < clen * 8; b++) {
        ct[b / 8] ^= (uint8_t)(1u << (b % 8));
        assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, clen, back, sizeof back, &plen, NULL, 0),
                         -EBADMSG);
        ct[b / 8] ^= (uint8_t)(1u << (b % 8));
    }
    assert_int_equal(d[0].n, 0); /* a failed decrypt leaves n alone */
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, clen, back, sizeof back, &plen, NULL, 0), 0);
    assert_memory_equal(back, pt, sizeof pt);
    /* a replay of the same packet is refused: the nonce moved on */
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, clen, back, sizeof back, &plen, NULL, 0), -EBADMSG);
    /* the other direction works, and the wrong direction's key does not */
    assert_int_equal(mesh_noise_cipher_encrypt(&d[1], NULL, 0, pt, 10, ct, sizeof ct, &clen, NULL, 0), 0);
    mesh_noise_cipher wrong = c[0];
    wrong.n = 0;
    assert_int_equal(mesh_noise_cipher_decrypt(&wrong, NULL, 0, ct, clen, back, sizeof back, &plen, NULL, 0), -EBADMSG);
    assert_int_equal(mesh_noise_cipher_decrypt(&c[1], NULL, 0, ct, clen, back, sizeof back, &plen, NULL, 0), 0);
    assert_int_equal(plen, 10);
    /* the handshake hashes agree (channel binding) */
    uint8_t h1[64], h2[64];
    assert_int_equal(mesh_noise_handshake_hash(&i, h1), 32);
    assert_int_equal(mesh_noise_handshake_hash(&r, h2), 32);
    assert_memory_equal(h1, h2, 32);
    /* fresh ephemerals: a second handshake with the same static keys gets other keys */
    mesh_noise_cipher c2[2], d2[2];
    handshake("Noise_XX_25519_ChaChaPoly_SHA256", &i, &r, c2, d2);
    assert_memory_not_equal(c[0].k, c2[0].k, 32);
    assert_memory_equal(c2[0].k, d2[0].k, 32);
}

/* ---- low-order points --------------------------------------------------------- */
static const uint8_t LOW_ORDER[][32] = {
    {0}, /* 0 */
    {1}, /* 1 */
    {0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a,
     0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00}, /* order 8 */
    {0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b,
     0x04, 0x44, 0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57}, /* order 8 */
    {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, /* p-1 */
};

static void test_low_order(void **state)
{
    (void)state;
    char err[256];
    size_t mlen, plen;
    for (size_t k = 0; k < sizeof LOW_ORDER / sizeof LOW_ORDER[0]; k++) {
        uint8_t out[32];
        assert_int_equal(mesh_noise_dh(out, KEY_I, LOW_ORDER[k]), -EBADMSG);
        /* NN: the responder's e replaced by a low-order point; the initiator refuses at ee */
        mesh_noise_handshake i, r;
        pair("Noise_NN_25519_ChaChaPoly_SHA256", &i, &r);
        assert_int_equal(step(&i, &r, &mlen, -1), 0);
        assert_int_equal(mesh_noise_write_message(&r, NULL, 0, g_buf, BUF, &mlen, NULL, 0), 0);
        memcpy(g_buf, LOW_ORDER[k], 32);
        assert_int_equal(mesh_noise_read_message(&i, g_buf, mlen, g_out, BUF, &plen, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "low-order"));
        /* and a failed handshake stays failed */
        assert_int_equal(mesh_noise_write_message(&i, NULL, 0, g_buf, BUF, &mlen, NULL, 0), -EPROTO);
        /* IK toward a low-order static key: the initiator refuses to write */
        mesh_noise_config c = {.protocol = "Noise_IK_25519_ChaChaPoly_SHA256", .initiator = true, .s_priv = KEY_I,
                               .rs = LOW_ORDER[k]};
        assert_int_equal(mesh_noise_handshake_init(&i, &c, NULL, 0), 0);
        assert_int_equal(mesh_noise_write_message(&i, NULL, 0, g_buf, BUF, &mlen, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "low-order"));
    }
}

/* ---- nonces, rekey, sizes --------------------------------------------------------- */
static void test_nonce_exhaustion(void **state)
{
    (void)state;
    mesh_noise_cipher a, b;
    uint8_t key[32], ct[64], pt[64];
    size_t n;
    char err[256];
    randombytes_buf(key, sizeof key);
    mesh_noise_cipher_init_key(&a, key);
    mesh_noise_cipher_init_key(&b, key);
    mesh_noise_cipher_set_nonce(&a, UINT64_MAX - 2);
    mesh_noise_cipher_set_nonce(&b, UINT64_MAX - 2);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(mesh_noise_cipher_encrypt(&a, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n, NULL, 0), 0);
        assert_int_equal(mesh_noise_cipher_decrypt(&b, NULL, 0, ct, n, pt, sizeof pt, &n, NULL, 0), 0);
    }
    assert_true(a.n == UINT64_MAX && b.n == UINT64_MAX);
    assert_int_equal(mesh_noise_cipher_encrypt(&a, NULL, 0, (const uint8_t *)"x", 1, ct, sizeof ct, &n, err, sizeof err),
                     -EOVERFLOW);
    assert_non_null(strstr(err, "nonce exhausted"));
    memset(ct, 0, 17);
    assert_int_equal(mesh_noise_cipher_decrypt(&b, NULL, 0, ct, 17, pt, sizeof pt, &n, NULL, 0), -EOVERFLOW);
    /* the nonce is the little-endian counter after 4 zero bytes: n = 2^32 differs from n = 1 */
    mesh_noise_cipher x, y;
    uint8_t c1[32], c2[32];
    mesh_noise_cipher_init_key(&x, key);
    mesh_noise_cipher_init_key(&y, key);
    mesh_noise_cipher_set_nonce(&x, 1);
    mesh_noise_cipher_set_nonce(&y, 1ull << 32);
    assert_int_equal(mesh_noise_cipher_encrypt(&x, NULL, 0, key, 16, c1, sizeof c1, &n, NULL, 0), 0);
    assert_int_equal(mesh_noise_cipher_encrypt(&y, NULL, 0, key, 16, c2, sizeof c2, &n, NULL, 0), 0);
    assert_memory_not_equal(c1, c2, 32);
    /* compared with libsodium called directly with nonce 00000000 01000000 00000000 */
    uint8_t nonce[12] = {0, 0, 0, 0, 1};
    uint8_t c3[32];
    crypto_aead_chacha20poly1305_ietf_encrypt(c3, NULL, key, 16, NULL, 0, NULL, nonce, key);
    assert_memory_equal(c1, c3, 32);
}

static void test_rekey(void **state)
{
    (void)state;
    mesh_noise_handshake i, r;
    mesh_noise_cipher c[2], d[2];
    uint8_t ct[64], pt[64];
    size_t n;
    handshake("Noise_IK_25519_ChaChaPoly_SHA256", &i, &r, c, d);
    uint8_t before[32];
    memcpy(before, c[0].k, 32);
    assert_int_equal(mesh_noise_cipher_encrypt(&c[0], NULL, 0, (const uint8_t *)"one", 3, ct, sizeof ct, &n, NULL, 0), 0);
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, n, pt, sizeof pt, &n, NULL, 0), 0);
    assert_int_equal(mesh_noise_cipher_rekey(&c[0], NULL, 0), 0);
    assert_memory_not_equal(before, c[0].k, 32);
    assert_int_equal(c[0].n, 1); /* rekey keeps n */
    /* REKEY by hand: ENCRYPT(k, 2^64-1, empty, zeros) */
    uint8_t zeros[32] = {0}, want[48], nonce[12] = {0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    crypto_aead_chacha20poly1305_ietf_encrypt(want, NULL, zeros, 32, NULL, 0, NULL, nonce, before);
    assert_memory_equal(c[0].k, want, 32);
    /* the peer has not rekeyed yet: refused; then it does and they agree */
    assert_int_equal(mesh_noise_cipher_encrypt(&c[0], NULL, 0, (const uint8_t *)"two", 3, ct, sizeof ct, &n, NULL, 0), 0);
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, n, pt, sizeof pt, &n, NULL, 0), -EBADMSG);
    assert_int_equal(mesh_noise_cipher_rekey(&d[0], NULL, 0), 0);
    assert_memory_equal(c[0].k, d[0].k, 32);
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, ct, 19, pt, sizeof pt, &n, NULL, 0), 0);
    assert_memory_equal(pt, "two", 3);
    /* the other direction is untouched */
    assert_memory_equal(c[1].k, d[1].k, 32);
    mesh_noise_cipher none = {0};
    assert_int_equal(mesh_noise_cipher_rekey(&none, NULL, 0), -EPROTO);
}

static void test_sizes(void **state)
{
    (void)state;
    mesh_noise_handshake i, r;
    mesh_noise_cipher c[2], d[2];
    char err[256];
    size_t n;
    static uint8_t big[70000];
    handshake("Noise_NN_25519_ChaChaPoly_SHA256", &i, &r, c, d);
    /* transport: 65519 + 16 = 65535 fits, one more does not */
    assert_int_equal(mesh_noise_cipher_encrypt(&c[0], NULL, 0, big, 65520, big, sizeof big, &n, err, sizeof err),
                     -EMSGSIZE);
    assert_non_null(strstr(err, "65535"));
    assert_int_equal(mesh_noise_cipher_encrypt(&c[0], NULL, 0, big, 65519, big, sizeof big, &n, NULL, 0), 0);
    assert_int_equal(n, 65535);
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, big, n, big, sizeof big, &n, NULL, 0), 0);
    assert_int_equal(n, 65519);
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, big, 65536, big, sizeof big, &n, NULL, 0), -EMSGSIZE);
    assert_int_equal(mesh_noise_cipher_decrypt(&d[0], NULL, 0, big, 15, big, sizeof big, &n, NULL, 0), -EBADMSG);
    /* an output buffer too small */
    assert_int_equal(mesh_noise_cipher_encrypt(&c[0], NULL, 0, big, 100, g_out, 115, &n, NULL, 0), -EMSGSIZE);
    /* handshake: XX message 2 carries e(32) + s(48) + tag(16): payload of 65535-96 fits, one more does not */
    const char *xx = "Noise_XX_25519_ChaChaPoly_SHA256";
    pair(xx, &i, &r);
    assert_int_equal(step(&i, &r, &n, -1), 0);
    assert_int_equal(mesh_noise_write_message(&r, big, 65535 - 95, g_buf, BUF, &n, err, sizeof err), -EMSGSIZE);
    assert_non_null(strstr(err, "at most 65535"));
    assert_int_equal(mesh_noise_write_message(&r, big, 100, g_buf, 195, &n, err, sizeof err), -EMSGSIZE);
    assert_non_null(strstr(err, "196 needed"));
    /* a refused size leaves the handshake usable */
    assert_int_equal(mesh_noise_write_message(&r, big, 65535 - 96, g_buf, BUF, &n, err, sizeof err), 0);
    assert_int_equal(n, 65535);
    size_t plen;
    assert_int_equal(mesh_noise_read_message(&i, g_buf, n, g_out, BUF, &plen, NULL, 0), 0);
    assert_int_equal(plen, 65535 - 96);
    /* reading a message over the limit */
    pair(xx, &i, &r);
    assert_int_equal(mesh_noise_read_message(&r, big, 65536, g_out, BUF, &plen, err, sizeof err), -EMSGSIZE);
}

/* ---- names, turns ---------------------------------------------------------------- */
static void test_names_and_turns(void **state)
{
    (void)state;
    mesh_noise_protocol p;
    char err[256];
    assert_int_equal(mesh_noise_protocol_parse("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b", &p, err, sizeof err), 0);
    assert_int_equal(p.hash, MESH_NOISE_BLAKE2B);
    assert_int_equal(p.pattern.n_msgs, 2);
    assert_int_equal(p.pattern.n_psk, 1);
    assert_int_equal(p.pattern.msgs[1][p.pattern.n_tokens[1] - 1], MESH_NOISE_TOK_PSK);
    assert_int_equal(mesh_noise_protocol_parse("Noise_NNpsk0+psk2_25519_ChaChaPoly_SHA256", &p, err, sizeof err), 0);
    assert_int_equal(p.pattern.msgs[0][0], MESH_NOISE_TOK_PSK);
    assert_int_equal(p.pattern.n_psk, 2);
    struct {
        const char *name, *why;
    } bad[] = {
        {"Noise_QQ_25519_ChaChaPoly_SHA256", "unknown handshake pattern"},
        {"Noise_XX_448_ChaChaPoly_SHA256", "only 25519"},
        {"Noise_XX_25519_AESGCM_SHA256", "only 25519"},
        {"Noise_XX_25519_ChaChaPoly_SHA512", "hash 'SHA512'"},
        {"Noise_XXpsk9_25519_ChaChaPoly_SHA256", "names message 9"},
        {"Noise_XXfallback_25519_ChaChaPoly_SHA256", "unsupported modifier"},
        {"Noise_XXpsk0+_25519_ChaChaPoly_SHA256", "empty modifier"},
        {"NoiseXX", "does not start with Noise_"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        err[0] = '\0';
        assert_int_equal(mesh_noise_protocol_parse(bad[k].name, &p, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[k].why))
            fail_msg("%s: error '%s' lacks '%s'", bad[k].name, err, bad[k].why);
    }
    /* a psk pattern without its psk, IK without the responder's static key */
    mesh_noise_handshake h;
    mesh_noise_config c = {.protocol = "Noise_XXpsk3_25519_ChaChaPoly_SHA256", .initiator = true};
    assert_int_equal(mesh_noise_handshake_init(&h, &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "psk"));
    c.protocol = "Noise_IK_25519_ChaChaPoly_SHA256";
    assert_int_equal(mesh_noise_handshake_init(&h, &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "remote static"));
    /* out of turn: the responder cannot write first, the initiator cannot read first */
    mesh_noise_handshake i, r;
    size_t n;
    pair("Noise_XX_25519_ChaChaPoly_SHA256", &i, &r);
    assert_int_equal(mesh_noise_write_message(&r, NULL, 0, g_buf, BUF, &n, err, sizeof err), -EPROTO);
    assert_int_equal(mesh_noise_read_message(&i, g_buf, 48, g_out, BUF, &n, err, sizeof err), -EPROTO);
    mesh_noise_cipher c1, c2;
    assert_int_equal(mesh_noise_split(&i, &c1, &c2, err, sizeof err), -EPROTO);
    /* rs given in advance for XX: the s the responder sends is refused (5.3: rs must be empty) */
    uint8_t pub_r[32];
    mesh_noise_pubkey(pub_r, KEY_R);
    mesh_noise_config ck = {.protocol = "Noise_XX_25519_ChaChaPoly_SHA256", .initiator = true, .rs = pub_r};
    mesh_noise_config cs = {.protocol = "Noise_XX_25519_ChaChaPoly_SHA256", .initiator = false, .s_priv = KEY_R};
    assert_int_equal(mesh_noise_handshake_init(&i, &ck, NULL, 0), 0);
    assert_int_equal(mesh_noise_handshake_init(&r, &cs, NULL, 0), 0);
    assert_int_equal(step(&i, &r, &n, -1), 0);
    assert_int_equal(mesh_noise_write_message(&r, NULL, 0, g_buf, BUF, &n, NULL, 0), 0);
    size_t plen;
    assert_int_equal(mesh_noise_read_message(&i, g_buf, n, g_out, BUF, &plen, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "static key is already set"));
    /* XX sends no static key without one */
    pair("Noise_XX_25519_ChaChaPoly_SHA256", &i, &r);
    mesh_noise_config cn = {.protocol = "Noise_XX_25519_ChaChaPoly_SHA256", .initiator = false};
    assert_int_equal(mesh_noise_handshake_init(&r, &cn, NULL, 0), 0);
    assert_int_equal(step(&i, &r, &n, -1), 0);
    assert_int_equal(mesh_noise_write_message(&r, NULL, 0, g_buf, BUF, &n, err, sizeof err), -EPROTO);
    assert_non_null(strstr(err, "no static key"));
}

/* ---- random bytes into ReadMessage ---------------------------------------------- */
static void fuzz(const char *proto, size_t iters)
{
    mesh_noise_handshake i, r;
    size_t mlen, plen;
    pair(proto, &i, &r);
    size_t nmsg = i.proto.pattern.n_msgs;
    uint8_t junk[512];
    for (size_t target = 0; target < nmsg; target++) {
        pair(proto, &i, &r);
        for (size_t k = 0; k < target; k++)
            assert_int_equal(step(&i, &r, &mlen, -1), 0);
        mesh_noise_handshake *rd = mesh_noise_my_turn(&i) ? &r : &i;
        mesh_noise_handshake snap = *rd;
        /* only a message of bare e and s tokens read without a key can pass */
        bool must_fail = snap.ss.cs.has_k || snap.proto.pattern.n_psk > 0;
        size_t keys = 0;
        for (size_t t = 0; t < snap.proto.pattern.n_tokens[target]; t++) {
            uint8_t tok = snap.proto.pattern.msgs[target][t];
            must_fail = must_fail || (tok != MESH_NOISE_TOK_E && tok != MESH_NOISE_TOK_S);
            keys += 32;
        }
        for (size_t it = 0; it < iters; it++) {
            *rd = snap;
            size_t len = randombytes_uniform(it % 8 == 0 ? sizeof junk : 130);
            randombytes_buf(junk, len);
            int rc = mesh_noise_read_message(rd, junk, len, g_out, BUF, &plen, NULL, 0);
            if (must_fail)
                assert_int_equal(rc, -EBADMSG); /* keyed messages never authenticate */
            else
                assert_true(rc == 0 ? len >= keys && plen == len - keys : rc == -EBADMSG);
        }
    }
    mesh_noise_handshake_wipe(&i);
    mesh_noise_handshake_wipe(&r);
}

static void test_fuzz_read(void **state)
{
    (void)state;
    fuzz("Noise_XX_25519_ChaChaPoly_SHA256", 2000);
    fuzz("Noise_IK_25519_ChaChaPoly_SHA256", 2000);
    fuzz("Noise_XXpsk3_25519_ChaChaPoly_BLAKE2b", 1000);
    /* and into transport decryption: refused, the nonce stays put */
    mesh_noise_handshake i, r;
    mesh_noise_cipher c[2], d[2];
    uint8_t junk[1500], back[1500];
    size_t plen;
    handshake("Noise_IK_25519_ChaChaPoly_SHA256", &i, &r, c, d);
    for (int it = 0; it < 2000; it++) {
        size_t len = randombytes_uniform(sizeof junk);
        randombytes_buf(junk, len);
        int rc = mesh_noise_cipher_decrypt(&d[0], NULL, 0, junk, len, back, sizeof back, &plen, NULL, 0);
        assert_int_equal(rc, -EBADMSG);
    }
    assert_int_equal(d[0].n, 0);
}

int main(void)
{
    const char *path = getenv("NOISE_VECTORS");
    if (!path || access(path, R_OK) != 0) {
        fprintf(stderr, "noise vectors not found at %s\n", path ? path : "(NOISE_VECTORS unset)");
        return 1;
    }
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_tamper_handshake),
        cmocka_unit_test(test_tamper_transport),
        cmocka_unit_test(test_low_order),
        cmocka_unit_test(test_nonce_exhaustion),
        cmocka_unit_test(test_rekey),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_names_and_turns),
        cmocka_unit_test(test_fuzz_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
