/* session_int.h: what session.c, session_replay.c and session_cookie.c share
 * (internal to the session part; the contract is session.h). */
#ifndef IPPOC_MESH_SESSION_INT_H
#define IPPOC_MESH_SESSION_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/noise.h"
#include "mesh/session.h"

/* ---- wire ---------------------------------------------------------------- */
enum {
    SESS_T_INIT_XX = 1, /* type | sender u32 | XX msg1 (e) | mac1[16] | mac2[16] */
    SESS_T_INIT_IK = 2, /* type | sender u32 | IK msg1 (e, s, stamp, cert) | mac1[16] | mac2[16] */
    SESS_T_RESP = 3,    /* type | sender u32 | receiver u32 | msg2: IK (e, cert), XX (e, s, empty payload) */
    SESS_T_FINAL = 4,   /* type | sender u32 | receiver u32 | XX msg3 (s, cert) */
    SESS_T_COOKIE = 5,  /* type | receiver u32 | nonce[24] | XChaCha20-Poly1305(cookie[16]) */
    SESS_T_DATA = 6,    /* type | receiver u32 | counter u64 | ChaChaPoly(payload) */
    SESS_T_CERT = 7,    /* as DATA, the XX responder's certificate: its first transport packet */
    SESS_T_NEED = 8,    /* -- certcache: type | receiver u32 | the initiation's mac1[16]: "send your certificate" */
};
/* -- certcache: a certificate reference = serial u64 | BLAKE2b-128(encoded certificate)[0..8) */
#define SESS_REF_LEN 16
#define SESS_NEED_PKT (1 + 4 + SESS_MAC_LEN)
#define SESS_IK_MINE_REF 1u   /* IK msg1 flags: our certificate is a reference (you hold it) */
#define SESS_IK_THEIRS_REF 2u /* IK msg1 flags: the reference of yours that we hold follows */
#define SESS_IK2_OMITTED 1u   /* IK msg2 flag: our certificate omitted (you hold it, by your reference) */
#define SESS_MAC_LEN 16
#define SESS_COOKIE_LEN 16
#define SESS_COOKIE_NONCE 24
#define SESS_COOKIE_PKT (1 + 4 + SESS_COOKIE_NONCE + SESS_COOKIE_LEN + 16)
#define SESS_DATA_HDR 13
#define SESS_COOKIE_SECRET_MS 120000u /* the responder's cookie secret rotates every 2 minutes */
#define SESS_MAX_TRIES 18
#define SESS_UNPROMPTED_PER_S 10 /* -- rejoin: initiations started by unknown-index packets, per second, in all */
#define SESS_PEER_BITS 14 /* the low bits of a local index name the peer slot */
#define SESS_MAX_PEERS (1u << SESS_PEER_BITS)

/* ---- replay window (RFC 6479) ----------------------------------------------- */
#define SESS_REPLAY_BITS 2048
#define SESS_REPLAY_BLOCKS (SESS_REPLAY_BITS / 64)
#define SESS_REPLAY_WINDOW (SESS_REPLAY_BITS - 64) /* counters this far behind the top are still judged */
typedef struct {
    uint64_t top;
    uint64_t bitmap[SESS_REPLAY_BLOCKS];
} sess_replay;

void sess_replay_init(sess_replay *w);
/* true when counter is new and inside the window; commit records it. */
bool sess_replay_check(sess_replay *w, uint64_t counter, bool commit);

/* ---- cookies and MACs (WireGuard 5.4.7) -------------------------------------- */
/* key = BLAKE2b-256(label || basis), basis = the responder's X25519 key (IK) or the fleet key (XX). */
void sess_mac_key(const char *label, const uint8_t basis[32], uint8_t key[32]);
/* BLAKE2b-128 keyed MAC. */
void sess_mac(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len, uint8_t out[SESS_MAC_LEN]);
/* The cookie of addr under secret. */
void sess_cookie_of(const uint8_t secret[32], const char *addr, uint8_t cookie[SESS_COOKIE_LEN]);
/* Seals cookie into a reply to receiver (the initiator's index), bound to its mac1. */
void sess_cookie_seal(const uint8_t key[32], uint32_t receiver, const uint8_t mac1[SESS_MAC_LEN],
                      const uint8_t cookie[SESS_COOKIE_LEN], uint8_t out[SESS_COOKIE_PKT]);
/* 0 and the cookie, or -EBADMSG. */
int sess_cookie_open(const uint8_t key[32], const uint8_t mac1[SESS_MAC_LEN], const uint8_t *pkt, size_t len,
                     uint8_t cookie[SESS_COOKIE_LEN]);

/* ---- certificates in handshakes (session.c; also the stream path) ---------------- */
/* Decodes and verifies a peer's certificate (fleet, signature, validity at
 * now +- MESH_ID_SKEW_S, revocation) and checks that its node key converts to
 * exactly the handshake's remote static key rs: 0 or -errno, why says why. */
int sess_cert_check(const uint8_t fleet_pk[MESH_ID_PK_BYTES], const mesh_identity_revlist *rl, int64_t now,
                    const uint8_t *buf, size_t len, const uint8_t *rs, mesh_identity_cert *c, char *why,
                    size_t whylen);
#define SESS_PROLOGUE_LABEL "ippoc-mesh-3" /* 2: XX message 2 carries no certificate; 3: IK certificate references */

/* ---- little-endian fields -------------------------------------------------------- */
static inline void sess_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t sess_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void sess_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t sess_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

#endif
