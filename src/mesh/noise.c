/* noise.c: the Noise Protocol Framework (noise_spec rev 34) on libsodium:
 * 25519 (crypto_scalarmult), ChaChaPoly (crypto_aead_chacha20poly1305_ietf,
 * nonce = 4 zero bytes + 64-bit little-endian n), SHA256 (crypto_hash_sha256,
 * HMAC by crypto_auth_hmacsha256) and BLAKE2b (crypto_generichash, HMAC built
 * per section 4.3 / RFC 2104 with BLOCKLEN 128). A table of handshake
 * patterns (7.4, 7.5, 18.1) is read by one interpreter; psk modifiers are
 * applied at parse time (section 9.4). See noise.h. */
#include "core/core.h"
#include "mesh/noise.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* ---- errors ---------------------------------------------------------------- */
/* ---- hashes, HMAC, HKDF (section 4.3) -------------------------------------- */
static size_t hash_len(mesh_noise_hash h)
{
    return h == MESH_NOISE_BLAKE2B ? 64 : 32;
}

/* HASH(a || b) */
static void hash2(mesh_noise_hash h, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen, uint8_t *out)
{
    if (h == MESH_NOISE_BLAKE2B) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, 64);
        crypto_generichash_update(&st, a, alen);
        if (blen)
            crypto_generichash_update(&st, b, blen);
        crypto_generichash_final(&st, out, 64);
        sodium_memzero(&st, sizeof st);
    } else {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, a, alen);
        if (blen)
            crypto_hash_sha256_update(&st, b, blen);
        crypto_hash_sha256_final(&st, out);
        sodium_memzero(&st, sizeof st);
    }
}

/* HMAC-BLAKE2b with a key of at most BLOCKLEN (128) bytes over a || b. */
static void hmac_blake2b(const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen, const uint8_t *b,
                         size_t blen, uint8_t out[64])
{
    uint8_t pad[128], inner[64];
    crypto_generichash_state st;
    memset(pad, 0, sizeof pad);
    memcpy(pad, key, keylen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] ^= 0x36;
    crypto_generichash_init(&st, NULL, 0, 64);
    crypto_generichash_update(&st, pad, sizeof pad);
    crypto_generichash_update(&st, a, alen);
    if (blen)
        crypto_generichash_update(&st, b, blen);
    crypto_generichash_final(&st, inner, 64);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    crypto_generichash_init(&st, NULL, 0, 64);
    crypto_generichash_update(&st, pad, sizeof pad);
    crypto_generichash_update(&st, inner, sizeof inner);
    crypto_generichash_final(&st, out, 64);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
    sodium_memzero(&st, sizeof st);
}

static void hmac(mesh_noise_hash h, const uint8_t *key, size_t keylen, const uint8_t *a, size_t alen,
                 const uint8_t *b, size_t blen, uint8_t *out)
{
    if (h == MESH_NOISE_BLAKE2B) {
        hmac_blake2b(key, keylen, a, alen, b, blen, out);
        return;
    }
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, a, alen);
    if (blen)
        crypto_auth_hmacsha256_update(&st, b, blen);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

void mesh_noise_hkdf(mesh_noise_hash hash, const uint8_t *ck, const uint8_t *ikm, size_t ikmlen, uint8_t *o1,
                     uint8_t *o2, uint8_t *o3)
{
    size_t hl = hash_len(hash);
    uint8_t temp[MESH_NOISE_MAX_HASHLEN];
    static const uint8_t one = 1, two = 2, three = 3;
    hmac(hash, ck, hl, ikm, ikmlen, NULL, 0, temp);
    hmac(hash, temp, hl, &one, 1, NULL, 0, o1);
    hmac(hash, temp, hl, o1, hl, &two, 1, o2);
    if (o3)
        hmac(hash, temp, hl, o2, hl, &three, 1, o3);
    sodium_memzero(temp, sizeof temp);
}

/* ---- DH (section 12.1) ------------------------------------------------------- */
void mesh_noise_pubkey(uint8_t pub[MESH_NOISE_DHLEN], const uint8_t priv[MESH_NOISE_DHLEN])
{
    crypto_scalarmult_base(pub, priv);
}

int mesh_noise_dh(uint8_t out[MESH_NOISE_DHLEN], const uint8_t priv[MESH_NOISE_DHLEN],
                  const uint8_t pub[MESH_NOISE_DHLEN])
{
    /* libsodium returns -1 when the result is all zeros (a low-order point) */
    if (crypto_scalarmult(out, priv, pub) != 0) {
        sodium_memzero(out, MESH_NOISE_DHLEN);
        return -EBADMSG;
    }
    return 0;
}

static void keypair_from(mesh_noise_keypair *kp, const uint8_t priv[MESH_NOISE_DHLEN])
{
    memcpy(kp->priv, priv, MESH_NOISE_DHLEN);
    mesh_noise_pubkey(kp->pub, kp->priv);
    kp->set = true;
}

/* ---- CipherState (section 5.1) ----------------------------------------------- */
static void nonce96(uint8_t out[12], uint64_t n)
{
    memset(out, 0, 4);
    for (int i = 0; i < 8; i++)
        out[4 + i] = (uint8_t)(n >> (8 * i));
}

void mesh_noise_cipher_init_key(mesh_noise_cipher *cs, const uint8_t key[MESH_NOISE_KEYLEN])
{
    memcpy(cs->k, key, MESH_NOISE_KEYLEN);
    cs->n = 0;
    cs->has_k = true;
}

bool mesh_noise_cipher_has_key(const mesh_noise_cipher *cs)
{
    return cs->has_k;
}

void mesh_noise_cipher_set_nonce(mesh_noise_cipher *cs, uint64_t n)
{
    cs->n = n;
}

void mesh_noise_cipher_wipe(mesh_noise_cipher *cs)
{
    sodium_memzero(cs, sizeof *cs);
}

int mesh_noise_cipher_encrypt(mesh_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                              size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen, char *err, size_t errlen)
{
    size_t need = ptlen + (cs->has_k ? MESH_NOISE_TAGLEN : 0);
    if (need > MESH_NOISE_MAX_MSG)
        return core_err(err, errlen, -EMSGSIZE, "noise encrypt: %zu bytes is over the 65535-byte message limit", need);
    if (need > outcap)
        return core_err(err, errlen, -EMSGSIZE, "noise encrypt: output buffer of %zu bytes, %zu needed", outcap, need);
    if (!cs->has_k) {
        if (ptlen)
            memmove(out, pt, ptlen);
        *outlen = ptlen;
        return 0;
    }
    if (cs->n == MESH_NOISE_NONCE_MAX)
        return core_err(err, errlen, -EOVERFLOW, "noise encrypt: nonce exhausted (2^64-1 is reserved); rekey or re-handshake");
    uint8_t nonce[12];
    nonce96(nonce, cs->n);
    unsigned long long clen = 0;
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, ptlen, ad, adlen, NULL, nonce, cs->k);
    cs->n++;
    *outlen = (size_t)clen;
    return 0;
}

int mesh_noise_cipher_decrypt(mesh_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                              size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen, char *err, size_t errlen)
{
    if (ctlen > MESH_NOISE_MAX_MSG)
        return core_err(err, errlen, -EMSGSIZE, "noise decrypt: %zu bytes is over the 65535-byte message limit", ctlen);
    if (!cs->has_k) {
        if (ctlen > outcap)
            return core_err(err, errlen, -EMSGSIZE, "noise decrypt: output buffer of %zu bytes, %zu needed", outcap, ctlen);
        if (ctlen)
            memmove(out, ct, ctlen);
        *outlen = ctlen;
        return 0;
    }
    if (ctlen < MESH_NOISE_TAGLEN)
        return core_err(err, errlen, -EBADMSG, "noise decrypt: %zu bytes is shorter than the 16-byte tag", ctlen);
    if (ctlen - MESH_NOISE_TAGLEN > outcap)
        return core_err(err, errlen, -EMSGSIZE, "noise decrypt: output buffer of %zu bytes, %zu needed", outcap,
                    ctlen - MESH_NOISE_TAGLEN);
    if (cs->n == MESH_NOISE_NONCE_MAX)
        return core_err(err, errlen, -EOVERFLOW, "noise decrypt: nonce exhausted (2^64-1 is reserved); rekey or re-handshake");
    uint8_t nonce[12];
    nonce96(nonce, cs->n);
    unsigned long long plen = 0;
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, ct, ctlen, ad, adlen, nonce, cs->k) != 0)
        return core_err(err, errlen, -EBADMSG, "noise decrypt: authentication failed (nonce %llu)",
                    (unsigned long long)cs->n);
    cs->n++;
    *outlen = (size_t)plen;
    return 0;
}

int mesh_noise_cipher_rekey(mesh_noise_cipher *cs, char *err, size_t errlen)
{
    if (!cs->has_k)
        return core_err(err, errlen, -EPROTO, "noise rekey: the cipher has no key");
    static const uint8_t zeros[32];
    uint8_t nonce[12], out[32 + MESH_NOISE_TAGLEN];
    nonce96(nonce, MESH_NOISE_NONCE_MAX);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, zeros, sizeof zeros, NULL, 0, NULL, nonce, cs->k);
    memcpy(cs->k, out, MESH_NOISE_KEYLEN);
    sodium_memzero(out, sizeof out);
    return 0;
}

/* ---- SymmetricState (section 5.2) -------------------------------------------- */
static void ss_init(mesh_noise_symmetric *ss, mesh_noise_hash hash, const char *name)
{
    size_t n = strlen(name);
    memset(ss, 0, sizeof *ss);
    ss->hash = hash;
    ss->hashlen = (uint8_t)hash_len(hash);
    if (n <= ss->hashlen)
        memcpy(ss->h, name, n);
    else
        hash2(hash, (const uint8_t *)name, n, NULL, 0, ss->h);
    memcpy(ss->ck, ss->h, ss->hashlen);
}

static void ss_mix_hash(mesh_noise_symmetric *ss, const uint8_t *data, size_t len)
{
    uint8_t h[MESH_NOISE_MAX_HASHLEN];
    hash2(ss->hash, ss->h, ss->hashlen, data, len, h);
    memcpy(ss->h, h, ss->hashlen);
}

static void ss_mix_key(mesh_noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t ck[MESH_NOISE_MAX_HASHLEN], k[MESH_NOISE_MAX_HASHLEN];
    mesh_noise_hkdf(ss->hash, ss->ck, ikm, len, ck, k, NULL);
    memcpy(ss->ck, ck, ss->hashlen);
    mesh_noise_cipher_init_key(&ss->cs, k); /* truncated to 32 bytes for BLAKE2b */
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(k, sizeof k);
}

static void ss_mix_key_and_hash(mesh_noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
    uint8_t ck[MESH_NOISE_MAX_HASHLEN], th[MESH_NOISE_MAX_HASHLEN], k[MESH_NOISE_MAX_HASHLEN];
    mesh_noise_hkdf(ss->hash, ss->ck, ikm, len, ck, th, k);
    memcpy(ss->ck, ck, ss->hashlen);
    ss_mix_hash(ss, th, ss->hashlen);
    mesh_noise_cipher_init_key(&ss->cs, k);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(th, sizeof th);
    sodium_memzero(k, sizeof k);
}

static int ss_encrypt_and_hash(mesh_noise_symmetric *ss, const uint8_t *pt, size_t len, uint8_t *out, size_t cap,
                               size_t *outlen, char *err, size_t errlen)
{
    int rc = mesh_noise_cipher_encrypt(&ss->cs, ss->h, ss->hashlen, pt, len, out, cap, outlen, err, errlen);
    if (rc == 0)
        ss_mix_hash(ss, out, *outlen);
    return rc;
}

static int ss_decrypt_and_hash(mesh_noise_symmetric *ss, const uint8_t *ct, size_t len, uint8_t *out, size_t cap,
                               size_t *outlen, char *err, size_t errlen)
{
    uint8_t h[MESH_NOISE_MAX_HASHLEN];
    hash2(ss->hash, ss->h, ss->hashlen, ct, len, h); /* ct may be overwritten when out == ct */
    int rc = mesh_noise_cipher_decrypt(&ss->cs, ss->h, ss->hashlen, ct, len, out, cap, outlen, err, errlen);
    if (rc == 0)
        memcpy(ss->h, h, ss->hashlen);
    return rc;
}

/* ---- handshake patterns (sections 7.4, 7.5, 18.1) ------------------------------
 * pre_i / pre_r: pre-message tokens; msgs: message patterns split by '|',
 * the first from the initiator, alternating; tokens split by ','. */
typedef struct {
    const char *name, *pre_i, *pre_r, *msgs;
} pattern_def;

static const pattern_def PATTERNS[] = {
    {"N", "", "s", "e,es"},
    {"K", "s", "s", "e,es,ss"},
    {"X", "", "s", "e,es,s,ss"},
    {"NN", "", "", "e|e,ee"},
    {"NK", "", "s", "e,es|e,ee"},
    {"NX", "", "", "e|e,ee,s,es"},
    {"XN", "", "", "e|e,ee|s,se"},
    {"XK", "", "s", "e,es|e,ee|s,se"},
    {"XX", "", "", "e|e,ee,s,es|s,se"},
    {"KN", "s", "", "e|e,ee,se"},
    {"KK", "s", "s", "e,es,ss|e,ee,se"},
    {"KX", "s", "", "e|e,ee,se,s,es"},
    {"IN", "", "", "e,s|e,ee,se"},
    {"IK", "", "s", "e,es,s,ss|e,ee,se"},
    {"IX", "", "", "e,s|e,ee,se,s,es"},
    {"NK1", "", "s", "e|e,ee,es"},
    {"NX1", "", "", "e|e,ee,s|es"},
    {"X1N", "", "", "e|e,ee|s|se"},
    {"X1K", "", "s", "e,es|e,ee|s|se"},
    {"XK1", "", "s", "e|e,ee,es|s,se"},
    {"X1K1", "", "s", "e|e,ee,es|s|se"},
    {"X1X", "", "", "e|e,ee,s,es|s|se"},
    {"XX1", "", "", "e|e,ee,s|es,s,se"},
    {"X1X1", "", "", "e|e,ee,s|es,s|se"},
    {"K1N", "s", "", "e|e,ee|se"},
    {"K1K", "s", "s", "e,es|e,ee|se"},
    {"KK1", "s", "s", "e|e,ee,se,es"},
    {"K1K1", "s", "s", "e|e,ee,es|se"},
    {"K1X", "s", "", "e|e,ee,s,es|se"},
    {"KX1", "s", "", "e|e,ee,se,s|es"},
    {"K1X1", "s", "", "e|e,ee,s|se,es"},
    {"I1N", "", "", "e,s|e,ee|se"},
    {"I1K", "", "s", "e,es,s|e,ee|se"},
    {"IK1", "", "s", "e,s|e,ee,se,es"},
    {"I1K1", "", "s", "e,s|e,ee,es|se"},
    {"I1X", "", "", "e,s|e,ee,s,es|se"},
    {"IX1", "", "", "e,s|e,ee,se,s|es"},
    {"I1X1", "", "", "e,s|e,ee,s|se,es"},
};

static int token_of(const char *t, size_t n)
{
    static const char *names[] = {"e", "s", "ee", "es", "se", "ss", "psk"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == n && memcmp(names[i], t, n) == 0)
            return (int)i + MESH_NOISE_TOK_E;
    return -1;
}

static void tokens_parse(const char *s, uint8_t *out, uint8_t *n)
{
    *n = 0;
    while (*s && *s != '|') {
        size_t len = strcspn(s, ",|");
        out[(*n)++] = (uint8_t)token_of(s, len);
        s += len;
        if (*s == ',')
            s++;
    }
}

static void pattern_load(const pattern_def *d, mesh_noise_pattern *p)
{
    memset(p, 0, sizeof *p);
    tokens_parse(d->pre_i, p->pre_i, &p->n_pre_i);
    tokens_parse(d->pre_r, p->pre_r, &p->n_pre_r);
    const char *s = d->msgs;
    while (*s) {
        tokens_parse(s, p->msgs[p->n_msgs], &p->n_tokens[p->n_msgs]);
        p->n_msgs++;
        s += strcspn(s, "|");
        if (*s == '|')
            s++;
    }
    p->one_way = d->name[1] == '\0';
}

/* Applies "pskN": psk0 goes first in the first message, pskN last in message N. */
static int psk_apply(mesh_noise_pattern *p, const char *mod, size_t len, char *err, size_t errlen)
{
    if (len < 4 || len > 5 || memcmp(mod, "psk", 3) != 0)
        return core_err(err, errlen, -EINVAL, "noise protocol: unsupported modifier '%.*s'", (int)len, mod);
    int n = 0;
    for (size_t i = 3; i < len; i++) {
        if (mod[i] < '0' || mod[i] > '9')
            return core_err(err, errlen, -EINVAL, "noise protocol: bad psk modifier '%.*s'", (int)len, mod);
        n = n * 10 + (mod[i] - '0');
    }
    if (n > p->n_msgs)
        return core_err(err, errlen, -EINVAL, "noise protocol: '%.*s' names message %d of a %d-message pattern", (int)len,
                    mod, n, p->n_msgs);
    int m = n == 0 ? 0 : n - 1;
    if (p->n_tokens[m] >= MESH_NOISE_MAX_TOKENS || p->n_psk >= MESH_NOISE_MAX_PSKS)
        return core_err(err, errlen, -EINVAL, "noise protocol: too many psk modifiers");
    uint8_t *t = p->msgs[m];
    if (n == 0) {
        memmove(t + 1, t, p->n_tokens[m]);
        t[0] = MESH_NOISE_TOK_PSK;
    } else {
        t[p->n_tokens[m]] = MESH_NOISE_TOK_PSK;
    }
    p->n_tokens[m]++;
    p->n_psk++;
    return 0;
}

static int pattern_parse(const char *s, size_t len, mesh_noise_pattern *p, char *err, size_t errlen)
{
    size_t base = 0;
    while (base < len && strchr("NKXI1", s[base]))
        base++;
    const pattern_def *d = NULL;
    for (size_t i = 0; i < sizeof PATTERNS / sizeof PATTERNS[0]; i++)
        if (strlen(PATTERNS[i].name) == base && memcmp(PATTERNS[i].name, s, base) == 0)
            d = &PATTERNS[i];
    if (!d)
        return core_err(err, errlen, -EINVAL, "noise protocol: unknown handshake pattern '%.*s'", (int)len, s);
    if (len >= sizeof p->name)
        return core_err(err, errlen, -EINVAL, "noise protocol: pattern '%.*s' too long", (int)len, s);
    pattern_load(d, p);
    memcpy(p->name, s, len);
    p->name[len] = '\0';
    size_t i = base;
    while (i < len) {
        size_t m = i;
        while (m < len && s[m] != '+')
            m++;
        int rc = psk_apply(p, s + i, m - i, err, errlen);
        if (rc < 0)
            return rc;
        i = m + 1;
        if (m + 1 == len)
            return core_err(err, errlen, -EINVAL, "noise protocol: empty modifier in '%.*s'", (int)len, s);
    }
    return 0;
}

int mesh_noise_protocol_parse(const char *name, mesh_noise_protocol *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!name)
        return core_err(err, errlen, -EINVAL, "noise protocol: no name");
    size_t n = strlen(name);
    if (n > 255)
        return core_err(err, errlen, -EINVAL, "noise protocol: name of %zu bytes, at most 255", n);
    if (strncmp(name, "Noise_", 6) != 0)
        return core_err(err, errlen, -EINVAL, "noise protocol '%s': does not start with Noise_", name);
    const char *pat = name + 6;
    const char *us = strchr(pat, '_');
    if (!us)
        return core_err(err, errlen, -EINVAL, "noise protocol '%s': no DH/cipher/hash after the pattern", name);
    const char *rest = us + 1;
    if (strncmp(rest, "25519_ChaChaPoly_", 17) != 0)
        return core_err(err, errlen, -EINVAL, "noise protocol '%s': only 25519 with ChaChaPoly is supported", name);
    const char *h = rest + 17;
    if (strcmp(h, "SHA256") == 0)
        out->hash = MESH_NOISE_SHA256;
    else if (strcmp(h, "BLAKE2b") == 0)
        out->hash = MESH_NOISE_BLAKE2B;
    else
        return core_err(err, errlen, -EINVAL, "noise protocol '%s': hash '%s' unsupported (SHA256, BLAKE2b)", name, h);
    int rc = pattern_parse(pat, (size_t)(us - pat), &out->pattern, err, errlen);
    if (rc < 0)
        return rc;
    memcpy(out->name, name, n + 1);
    return 0;
}

/* ---- HandshakeState (section 5.3) -------------------------------------------- */
static bool psk_mode(const mesh_noise_handshake *hs)
{
    return hs->proto.pattern.n_psk > 0;
}

/* MixHash of a pre-message key; MixKey too in PSK handshakes for e (9.2). */
static int pre_mix(mesh_noise_handshake *hs, const uint8_t *toks, uint8_t n, bool ours, char *err, size_t errlen)
{
    for (uint8_t i = 0; i < n; i++) {
        const uint8_t *key = NULL;
        bool is_e = toks[i] == MESH_NOISE_TOK_E;
        if (ours)
            key = is_e ? (hs->e.set ? hs->e.pub : NULL) : (hs->s.set ? hs->s.pub : NULL);
        else
            key = is_e ? (hs->has_re ? hs->re : NULL) : (hs->has_rs ? hs->rs : NULL);
        if (!key)
            return core_err(err, errlen, -EINVAL, "noise init %s: pre-message needs the %s %s key", hs->proto.name,
                        ours ? "local" : "remote", is_e ? "ephemeral" : "static");
        ss_mix_hash(&hs->ss, key, MESH_NOISE_DHLEN);
        if (is_e && psk_mode(hs))
            ss_mix_key(&hs->ss, key, MESH_NOISE_DHLEN);
    }
    return 0;
}

int mesh_noise_handshake_init(mesh_noise_handshake *hs, const mesh_noise_config *cfg, char *err, size_t errlen)
{
    memset(hs, 0, sizeof *hs);
    hs->failed = true;
    if (sodium_init() < 0)
        return core_err(err, errlen, -EIO, "noise init: libsodium failed to initialise");
    if (!cfg)
        return core_err(err, errlen, -EINVAL, "noise init: no configuration");
    int rc = mesh_noise_protocol_parse(cfg->protocol, &hs->proto, err, errlen);
    if (rc < 0)
        return rc;
    if (cfg->n_psks > MESH_NOISE_MAX_PSKS || (cfg->n_psks && !cfg->psks))
        return core_err(err, errlen, -EINVAL, "noise init %s: %zu psks, at most %d", cfg->protocol, cfg->n_psks,
                    MESH_NOISE_MAX_PSKS);
    if (cfg->n_psks < hs->proto.pattern.n_psk)
        return core_err(err, errlen, -EINVAL, "noise init %s: the pattern needs %u psk(s), %zu given", cfg->protocol,
                    hs->proto.pattern.n_psk, cfg->n_psks);
    if (cfg->prologue_len && !cfg->prologue)
        return core_err(err, errlen, -EINVAL, "noise init %s: prologue length without data", cfg->protocol);
    hs->initiator = cfg->initiator;
    if (cfg->s_priv && cfg->s_pub) {
        memcpy(hs->s.priv, cfg->s_priv, MESH_NOISE_DHLEN);
        memcpy(hs->s.pub, cfg->s_pub, MESH_NOISE_DHLEN);
        hs->s.set = true;
    } else if (cfg->s_priv) {
        keypair_from(&hs->s, cfg->s_priv);
    }
    if (cfg->e_priv) {
        memcpy(hs->e_inject, cfg->e_priv, MESH_NOISE_DHLEN);
        hs->has_e_inject = true;
    }
    if (cfg->rs) {
        memcpy(hs->rs, cfg->rs, MESH_NOISE_DHLEN);
        hs->has_rs = true;
    }
    if (cfg->re) {
        memcpy(hs->re, cfg->re, MESH_NOISE_DHLEN);
        hs->has_re = true;
    }
    for (size_t i = 0; i < cfg->n_psks; i++)
        memcpy(hs->psks[i], cfg->psks[i], MESH_NOISE_KEYLEN);
    hs->n_psks = (uint8_t)cfg->n_psks;
    ss_init(&hs->ss, hs->proto.hash, hs->proto.name);
    ss_mix_hash(&hs->ss, cfg->prologue, cfg->prologue_len);
    const mesh_noise_pattern *p = &hs->proto.pattern;
    rc = pre_mix(hs, p->pre_i, p->n_pre_i, hs->initiator, err, errlen);
    if (rc == 0)
        rc = pre_mix(hs, p->pre_r, p->n_pre_r, !hs->initiator, err, errlen);
    if (rc < 0) {
        mesh_noise_handshake_wipe(hs);
        hs->failed = true;
        return rc;
    }
    hs->failed = false;
    return 0;
}

bool mesh_noise_my_turn(const mesh_noise_handshake *hs)
{
    if (hs->failed || hs->msg_idx >= hs->proto.pattern.n_msgs)
        return false;
    return (hs->msg_idx % 2 == 0) == hs->initiator;
}

bool mesh_noise_handshake_done(const mesh_noise_handshake *hs)
{
    return !hs->failed && hs->msg_idx >= hs->proto.pattern.n_msgs && hs->proto.pattern.n_msgs > 0;
}

/* The DH a token asks for, from this side's point of view. */
static int token_dh(mesh_noise_handshake *hs, uint8_t tok, char *err, size_t errlen)
{
    bool e_local, e_remote; /* first/second letter of the token: e (true) or s */
    switch (tok) {
    case MESH_NOISE_TOK_EE: e_local = true, e_remote = true; break;
    case MESH_NOISE_TOK_SS: e_local = false, e_remote = false; break;
    case MESH_NOISE_TOK_ES: e_local = hs->initiator, e_remote = !hs->initiator; break;
    default: /* se */ e_local = !hs->initiator, e_remote = hs->initiator; break;
    }
    const mesh_noise_keypair *l = e_local ? &hs->e : &hs->s;
    bool rset = e_remote ? hs->has_re : hs->has_rs;
    if (!l->set || !rset)
        return core_err(err, errlen, -EPROTO, "noise %s message %u: DH without the %s %s key", hs->proto.name,
                    hs->msg_idx + 1, !l->set ? "local" : "remote", (!l->set ? e_local : e_remote) ? "ephemeral" : "static");
    uint8_t shared[MESH_NOISE_DHLEN];
    if (mesh_noise_dh(shared, l->priv, e_remote ? hs->re : hs->rs) < 0)
        return core_err(err, errlen, -EBADMSG, "noise %s message %u: the peer's %s key is a low-order point",
                    hs->proto.name, hs->msg_idx + 1, e_remote ? "ephemeral" : "static");
    ss_mix_key(&hs->ss, shared, sizeof shared);
    sodium_memzero(shared, sizeof shared);
    return 0;
}

static int token_psk(mesh_noise_handshake *hs, char *err, size_t errlen)
{
    if (hs->psk_next >= hs->n_psks)
        return core_err(err, errlen, -EPROTO, "noise %s: no psk left", hs->proto.name);
    ss_mix_key_and_hash(&hs->ss, hs->psks[hs->psk_next], MESH_NOISE_KEYLEN);
    hs->psk_next++;
    return 0;
}

static int hs_failed(mesh_noise_handshake *hs, int rc)
{
    mesh_noise_handshake_wipe(hs);
    hs->failed = true;
    return rc;
}

static int write_token(mesh_noise_handshake *hs, uint8_t tok, uint8_t *out, size_t cap, size_t *pos, char *err,
                       size_t errlen)
{
    size_t n = 0;
    int rc;
    switch (tok) {
    case MESH_NOISE_TOK_E:
        if (hs->e.set) /* section 5.3: e must be empty */
            return core_err(err, errlen, -EPROTO, "noise %s message %u: the ephemeral key is already set", hs->proto.name,
                        hs->msg_idx + 1);
        if (hs->has_e_inject) {
            keypair_from(&hs->e, hs->e_inject);
            sodium_memzero(hs->e_inject, sizeof hs->e_inject);
            hs->has_e_inject = false;
        } else {
            crypto_box_keypair(hs->e.pub, hs->e.priv);
            hs->e.set = true;
        }
        if (cap - *pos < MESH_NOISE_DHLEN)
            return core_err(err, errlen, -EMSGSIZE, "noise %s message %u: output buffer too small", hs->proto.name,
                        hs->msg_idx + 1);
        memcpy(out + *pos, hs->e.pub, MESH_NOISE_DHLEN);
        *pos += MESH_NOISE_DHLEN;
        ss_mix_hash(&hs->ss, hs->e.pub, MESH_NOISE_DHLEN);
        if (psk_mode(hs))
            ss_mix_key(&hs->ss, hs->e.pub, MESH_NOISE_DHLEN);
        return 0;
    case MESH_NOISE_TOK_S:
        if (!hs->s.set)
            return core_err(err, errlen, -EPROTO, "noise %s message %u: the pattern sends s but no static key is set",
                        hs->proto.name, hs->msg_idx + 1);
        rc = ss_encrypt_and_hash(&hs->ss, hs->s.pub, MESH_NOISE_DHLEN, out + *pos, cap - *pos, &n, err, errlen);
        *pos += n;
        return rc;
    case MESH_NOISE_TOK_PSK:
        return token_psk(hs, err, errlen);
    default:
        return token_dh(hs, tok, err, errlen);
    }
}

/* The bytes the next message adds to its payload (keys and tags), worked out
 * before any state changes so a refused size leaves the handshake usable. */
static size_t msg_overhead(const mesh_noise_handshake *hs)
{
    const mesh_noise_pattern *p = &hs->proto.pattern;
    bool k = hs->ss.cs.has_k;
    size_t n = 0;
    for (uint8_t i = 0; i < p->n_tokens[hs->msg_idx]; i++) {
        uint8_t t = p->msgs[hs->msg_idx][i];
        if (t == MESH_NOISE_TOK_E) {
            n += MESH_NOISE_DHLEN;
            k = k || psk_mode(hs);
        } else if (t == MESH_NOISE_TOK_S) {
            n += MESH_NOISE_DHLEN + (k ? MESH_NOISE_TAGLEN : 0);
        } else {
            k = true;
        }
    }
    return n + (k ? MESH_NOISE_TAGLEN : 0);
}

int mesh_noise_write_message(mesh_noise_handshake *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                             size_t outcap, size_t *outlen, char *err, size_t errlen)
{
    if (hs->failed)
        return core_err(err, errlen, -EPROTO, "noise write: the handshake has failed");
    if (!mesh_noise_my_turn(hs))
        return core_err(err, errlen, -EPROTO, "noise %s write: message %u is not ours to send", hs->proto.name,
                    hs->msg_idx + 1);
    if (plen && !payload)
        return core_err(err, errlen, -EINVAL, "noise write: payload length without data");
    size_t need = msg_overhead(hs) + plen;
    if (need > MESH_NOISE_MAX_MSG)
        return core_err(err, errlen, -EMSGSIZE, "noise %s message %u: %zu bytes with a %zu-byte payload, at most 65535",
                    hs->proto.name, hs->msg_idx + 1, need, plen);
    if (need > outcap)
        return core_err(err, errlen, -EMSGSIZE, "noise %s message %u: output buffer of %zu bytes, %zu needed",
                    hs->proto.name, hs->msg_idx + 1, outcap, need);
    const mesh_noise_pattern *p = &hs->proto.pattern;
    size_t pos = 0, n = 0;
    int rc = 0;
    for (uint8_t i = 0; i < p->n_tokens[hs->msg_idx] && rc == 0; i++)
        rc = write_token(hs, p->msgs[hs->msg_idx][i], out, outcap, &pos, err, errlen);
    if (rc == 0)
        rc = ss_encrypt_and_hash(&hs->ss, payload, plen, out + pos, outcap - pos, &n, err, errlen);
    if (rc < 0)
        return hs_failed(hs, rc);
    *outlen = pos + n;
    hs->msg_idx++;
    return 0;
}

static int read_token(mesh_noise_handshake *hs, uint8_t tok, const uint8_t *msg, size_t mlen, size_t *pos, char *err,
                      size_t errlen)
{
    size_t need, n = 0;
    int rc;
    switch (tok) {
    case MESH_NOISE_TOK_E:
        if (hs->has_re) /* section 5.3: re must be empty */
            return core_err(err, errlen, -EPROTO, "noise %s message %u: the peer's ephemeral key is already set",
                        hs->proto.name, hs->msg_idx + 1);
        if (mlen - *pos < MESH_NOISE_DHLEN)
            return core_err(err, errlen, -EBADMSG, "noise %s message %u: truncated before the ephemeral key",
                        hs->proto.name, hs->msg_idx + 1);
        memcpy(hs->re, msg + *pos, MESH_NOISE_DHLEN);
        hs->has_re = true;
        *pos += MESH_NOISE_DHLEN;
        ss_mix_hash(&hs->ss, hs->re, MESH_NOISE_DHLEN);
        if (psk_mode(hs))
            ss_mix_key(&hs->ss, hs->re, MESH_NOISE_DHLEN);
        return 0;
    case MESH_NOISE_TOK_S:
        if (hs->has_rs) /* section 5.3: rs must be empty */
            return core_err(err, errlen, -EPROTO, "noise %s message %u: the peer's static key is already set",
                        hs->proto.name, hs->msg_idx + 1);
        need = MESH_NOISE_DHLEN + (hs->ss.cs.has_k ? MESH_NOISE_TAGLEN : 0);
        if (mlen - *pos < need)
            return core_err(err, errlen, -EBADMSG, "noise %s message %u: truncated before the static key",
                        hs->proto.name, hs->msg_idx + 1);
        rc = ss_decrypt_and_hash(&hs->ss, msg + *pos, need, hs->rs, sizeof hs->rs, &n, err, errlen);
        if (rc < 0)
            return core_err(err, errlen, rc, "noise %s message %u: the static key does not decrypt", hs->proto.name,
                        hs->msg_idx + 1);
        hs->has_rs = true;
        *pos += need;
        return 0;
    case MESH_NOISE_TOK_PSK:
        return token_psk(hs, err, errlen);
    default:
        return token_dh(hs, tok, err, errlen);
    }
}

int mesh_noise_read_message(mesh_noise_handshake *hs, const uint8_t *msg, size_t mlen, uint8_t *out, size_t outcap,
                            size_t *outlen, char *err, size_t errlen)
{
    if (hs->failed)
        return core_err(err, errlen, -EPROTO, "noise read: the handshake has failed");
    if (hs->msg_idx >= hs->proto.pattern.n_msgs || mesh_noise_my_turn(hs))
        return core_err(err, errlen, -EPROTO, "noise %s read: message %u is not the peer's to send", hs->proto.name,
                    hs->msg_idx + 1);
    if (mlen > MESH_NOISE_MAX_MSG)
        return hs_failed(hs, core_err(err, errlen, -EMSGSIZE, "noise %s message %u: %zu bytes, at most 65535",
                                  hs->proto.name, hs->msg_idx + 1, mlen));
    if (mlen && !msg)
        return core_err(err, errlen, -EINVAL, "noise read: message length without data");
    const mesh_noise_pattern *p = &hs->proto.pattern;
    size_t pos = 0, n = 0;
    int rc = 0;
    for (uint8_t i = 0; i < p->n_tokens[hs->msg_idx] && rc == 0; i++)
        rc = read_token(hs, p->msgs[hs->msg_idx][i], msg, mlen, &pos, err, errlen);
    if (rc == 0) {
        rc = ss_decrypt_and_hash(&hs->ss, msg + pos, mlen - pos, out, outcap, &n, err, errlen);
        if (rc == -EBADMSG)
            core_err(err, errlen, rc, "noise %s message %u: the payload does not decrypt", hs->proto.name,
                 hs->msg_idx + 1);
    }
    if (rc < 0)
        return hs_failed(hs, rc);
    *outlen = n;
    hs->msg_idx++;
    return 0;
}

int mesh_noise_split(mesh_noise_handshake *hs, mesh_noise_cipher *c1, mesh_noise_cipher *c2, char *err,
                     size_t errlen)
{
    if (!mesh_noise_handshake_done(hs) || hs->split_done)
        return core_err(err, errlen, -EPROTO, "noise split: the handshake is %s",
                    hs->split_done ? "already split" : "not finished");
    uint8_t k1[MESH_NOISE_MAX_HASHLEN], k2[MESH_NOISE_MAX_HASHLEN];
    mesh_noise_hkdf(hs->ss.hash, hs->ss.ck, NULL, 0, k1, k2, NULL);
    memset(c1, 0, sizeof *c1);
    memset(c2, 0, sizeof *c2);
    mesh_noise_cipher_init_key(c1, k1);
    mesh_noise_cipher_init_key(c2, k2);
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    /* the handshake's secrets go; h stays for GetHandshakeHash() */
    sodium_memzero(hs->ss.ck, sizeof hs->ss.ck);
    mesh_noise_cipher_wipe(&hs->ss.cs);
    sodium_memzero(&hs->e, sizeof hs->e);
    sodium_memzero(hs->s.priv, sizeof hs->s.priv);
    sodium_memzero(hs->psks, sizeof hs->psks);
    hs->split_done = true;
    return 0;
}

size_t mesh_noise_handshake_hash(const mesh_noise_handshake *hs, uint8_t out[MESH_NOISE_MAX_HASHLEN])
{
    memcpy(out, hs->ss.h, hs->ss.hashlen);
    return hs->ss.hashlen;
}

const uint8_t *mesh_noise_remote_static(const mesh_noise_handshake *hs)
{
    return hs->has_rs ? hs->rs : NULL;
}

void mesh_noise_handshake_wipe(mesh_noise_handshake *hs)
{
    sodium_memzero(hs, sizeof *hs);
}
