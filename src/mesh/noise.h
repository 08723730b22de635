/* noise.h: the Noise Protocol Framework (noise_spec rev 34) on libsodium,
 * internal to src/mesh: CipherState (ChaChaPoly), SymmetricState (SHA256 or
 * BLAKE2b), HandshakeState with a generic interpreter of handshake patterns
 * (the one-way, fundamental and deferred patterns of sections 7.4-7.6 and
 * 18.1, with psk modifiers), X25519 DH that refuses low-order points.
 *
 * Plain structs, no allocation: a state can be copied with memcpy and must be
 * wiped with the matching *_wipe function when dropped (keys are cleared with
 * sodium_memzero). Functions return 0 or a negative errno:
 *   -EINVAL    bad arguments or an unknown / unsupported protocol name
 *   -EPROTO    called out of turn (not our message, handshake not finished)
 *   -EMSGSIZE  a message over 65535 bytes, or an output buffer too small
 *   -EBADMSG   a message that does not authenticate, is truncated, or
 *              carries a low-order public key
 *   -EOVERFLOW the CipherState's nonce is exhausted (2^64-1 is reserved)
 * with a message naming the step and the reason in err when err is not NULL.
 * A handshake that failed stays failed (section 5: it must be deleted).
 * mesh_noise_handshake_init calls sodium_init(); call it yourself before
 * using a CipherState without a handshake. */
#ifndef IPPOC_MESH_NOISE_H
#define IPPOC_MESH_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MESH_NOISE_DHLEN 32
#define MESH_NOISE_KEYLEN 32
#define MESH_NOISE_TAGLEN 16
#define MESH_NOISE_MAX_MSG 65535u
#define MESH_NOISE_MAX_HASHLEN 64
#define MESH_NOISE_MAX_PSKS 4
#define MESH_NOISE_MAX_MSGS 6   /* message patterns in one handshake */
#define MESH_NOISE_MAX_TOKENS 8 /* tokens in one message pattern, psk included */
#define MESH_NOISE_NONCE_MAX UINT64_MAX

typedef enum { MESH_NOISE_SHA256 = 0, MESH_NOISE_BLAKE2B = 1 } mesh_noise_hash;

/* Tokens of a message pattern. */
typedef enum {
    MESH_NOISE_TOK_E = 1,
    MESH_NOISE_TOK_S,
    MESH_NOISE_TOK_EE,
    MESH_NOISE_TOK_ES,
    MESH_NOISE_TOK_SE,
    MESH_NOISE_TOK_SS,
    MESH_NOISE_TOK_PSK,
} mesh_noise_token;

/* A handshake pattern with its modifiers applied. */
typedef struct {
    char name[32];                 /* "XXpsk3", as in the protocol name */
    uint8_t pre_i[2], pre_r[2];    /* pre-message tokens (e, s) */
    uint8_t n_pre_i, n_pre_r;
    uint8_t msgs[MESH_NOISE_MAX_MSGS][MESH_NOISE_MAX_TOKENS];
    uint8_t n_tokens[MESH_NOISE_MAX_MSGS];
    uint8_t n_msgs;
    uint8_t n_psk; /* psk tokens in the pattern */
    bool one_way;
} mesh_noise_pattern;

/* A parsed protocol name: Noise_<pattern>_25519_ChaChaPoly_<SHA256|BLAKE2b>. */
typedef struct {
    char name[256];
    mesh_noise_pattern pattern;
    mesh_noise_hash hash;
} mesh_noise_protocol;

typedef struct {
    uint8_t k[MESH_NOISE_KEYLEN];
    uint64_t n;
    bool has_k;
} mesh_noise_cipher;

typedef struct {
    mesh_noise_cipher cs;
    uint8_t ck[MESH_NOISE_MAX_HASHLEN];
    uint8_t h[MESH_NOISE_MAX_HASHLEN];
    mesh_noise_hash hash;
    uint8_t hashlen;
} mesh_noise_symmetric;

typedef struct {
    uint8_t priv[MESH_NOISE_DHLEN];
    uint8_t pub[MESH_NOISE_DHLEN];
    bool set;
} mesh_noise_keypair;

/* What Initialize() takes. Absent keys are NULL. e_priv injects the
 * ephemeral private key for tests (otherwise randombytes makes one). */
typedef struct {
    const char *protocol; /* the full protocol name */
    bool initiator;
    const uint8_t *prologue;
    size_t prologue_len;
    const uint8_t *s_priv;  /* our static private key (DHLEN) */
    const uint8_t *s_pub;   /* optional: its public key, trusted to match (saves a scalar multiplication) */
    const uint8_t *e_priv;  /* test injection of our ephemeral private key */
    const uint8_t *rs;      /* the peer's static public key, when known in advance */
    const uint8_t *re;      /* the peer's ephemeral public key (pre-message e) */
    const uint8_t (*psks)[MESH_NOISE_KEYLEN];
    size_t n_psks;
} mesh_noise_config;

typedef struct {
    mesh_noise_protocol proto;
    mesh_noise_symmetric ss;
    mesh_noise_keypair s, e;
    uint8_t rs[MESH_NOISE_DHLEN], re[MESH_NOISE_DHLEN];
    bool has_rs, has_re;
    bool initiator;
    bool failed;
    bool split_done;
    uint8_t e_inject[MESH_NOISE_DHLEN];
    bool has_e_inject;
    uint8_t psks[MESH_NOISE_MAX_PSKS][MESH_NOISE_KEYLEN];
    uint8_t n_psks, psk_next;
    uint8_t msg_idx; /* the next message pattern */
} mesh_noise_handshake;

/* ---- protocol names ----------------------------------------------------- */
int mesh_noise_protocol_parse(const char *name, mesh_noise_protocol *out, char *err, size_t errlen);

/* ---- CipherState (section 5.1) ---------------------------------------------
 * encrypt: out gets ptlen + 16 bytes (ptlen when there is no key); out may
 * equal pt. decrypt: out gets ctlen - 16 bytes; a failure leaves n as it was. */
void mesh_noise_cipher_init_key(mesh_noise_cipher *cs, const uint8_t key[MESH_NOISE_KEYLEN]);
bool mesh_noise_cipher_has_key(const mesh_noise_cipher *cs);
void mesh_noise_cipher_set_nonce(mesh_noise_cipher *cs, uint64_t n);
int mesh_noise_cipher_encrypt(mesh_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                              size_t ptlen, uint8_t *out, size_t outcap, size_t *outlen, char *err, size_t errlen);
int mesh_noise_cipher_decrypt(mesh_noise_cipher *cs, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                              size_t ctlen, uint8_t *out, size_t outcap, size_t *outlen, char *err, size_t errlen);
/* REKEY: k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes). */
int mesh_noise_cipher_rekey(mesh_noise_cipher *cs, char *err, size_t errlen);
void mesh_noise_cipher_wipe(mesh_noise_cipher *cs);

/* ---- HandshakeState (section 5.3) --------------------------------------- */
int mesh_noise_handshake_init(mesh_noise_handshake *hs, const mesh_noise_config *cfg, char *err, size_t errlen);
/* Writes the next message (ours to send) with payload into out, which must
 * not overlap payload. */
int mesh_noise_write_message(mesh_noise_handshake *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                             size_t outcap, size_t *outlen, char *err, size_t errlen);
/* Reads the next message (the peer's) and puts its payload into out, which
 * must not overlap msg. */
int mesh_noise_read_message(mesh_noise_handshake *hs, const uint8_t *msg, size_t mlen, uint8_t *out, size_t outcap,
                            size_t *outlen, char *err, size_t errlen);
/* True when the next message is ours to write. */
bool mesh_noise_my_turn(const mesh_noise_handshake *hs);
/* True when every message pattern has been processed. */
bool mesh_noise_handshake_done(const mesh_noise_handshake *hs);
/* Split(): c1 is initiator->responder, c2 responder->initiator. The
 * handshake's keys are wiped; its hash stays readable. */
int mesh_noise_split(mesh_noise_handshake *hs, mesh_noise_cipher *c1, mesh_noise_cipher *c2, char *err,
                     size_t errlen);
/* GetHandshakeHash(): copies h (32 or 64 bytes) and returns its length. */
size_t mesh_noise_handshake_hash(const mesh_noise_handshake *hs, uint8_t out[MESH_NOISE_MAX_HASHLEN]);
/* The peer's static public key once received (or given), else NULL. */
const uint8_t *mesh_noise_remote_static(const mesh_noise_handshake *hs);
void mesh_noise_handshake_wipe(mesh_noise_handshake *hs);

/* ---- helpers -------------------------------------------------------------- */
/* X25519 public key of priv. */
void mesh_noise_pubkey(uint8_t pub[MESH_NOISE_DHLEN], const uint8_t priv[MESH_NOISE_DHLEN]);
/* DH(priv, pub) with all-zero results (low-order points) refused: -EBADMSG. */
int mesh_noise_dh(uint8_t out[MESH_NOISE_DHLEN], const uint8_t priv[MESH_NOISE_DHLEN],
                  const uint8_t pub[MESH_NOISE_DHLEN]);
/* HKDF(ck, ikm, n) of section 4.3 for hash; n is 2 or 3; each output hashlen. */
void mesh_noise_hkdf(mesh_noise_hash hash, const uint8_t *ck, const uint8_t *ikm, size_t ikmlen, uint8_t *o1,
                     uint8_t *o2, uint8_t *o3);

#endif
