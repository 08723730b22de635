/* session.h: the mesh's secure channel between cells, as a pure state machine
 * (no sockets, clocks or threads inside; internal to src/mesh/).
 *
 * Noise_XX_25519_ChaChaPoly_SHA256 on first contact and Noise_IK_... when the
 * peer's static key is already known (mesh_session_learn_key), on top of
 * noise.h; the Noise static key is the X25519 key derived from the node's
 * Ed25519 key (identity.h), and each side's certificate travels encrypted in
 * its handshake payload: a peer whose certificate is not signed by our fleet,
 * is expired or not yet valid, is revoked, or does not bind the static key it
 * used gets no session and nothing else (a REJECT event with the reason).
 * Transport packets carry a receiver index and a 64-bit counter (WireGuard's
 * layout); the counter is the AEAD nonce and passes a sliding replay window
 * (RFC 6479 style, 2,048 packets). Sessions rekey on a timer and after a
 * message count; under load (too many handshakes a second) a handshake
 * initiation is answered with a cookie reply, and only a retried initiation
 * carrying a valid MAC over that cookie is processed (WireGuard 5.4.7).
 * Every datagram is at most MESH_SESSION_MTU bytes; a payload is at most
 * MESH_SESSION_MAX_PAYLOAD.
 *
 * The caller
 *  - gives the time in milliseconds (any monotonic origin) to every call,
 *  - hands every received datagram to mesh_session_receive() with its source,
 *  - sends what mesh_session_next_out() yields, to the address it names,
 *  - calls mesh_session_tick() at or after mesh_session_next_deadline().
 * Addresses are opaque strings ("127.0.0.1:7947", "[::1]:7947"). */

/* Wire format (added by the session part; integers little-endian):
 *   1 XX initiation  type | sender u32 | msg1 (e, 32) | mac1[16] | mac2[16]
 *   2 IK initiation  type | sender u32 | msg1 (e, s, payload P1) | mac1[16] | mac2[16]
 *   3 response       type | sender u32 | receiver u32 | msg2: IK (e, payload P2), XX (e, s, empty payload)
 *   4 XX message 3   type | sender u32 | receiver u32 | msg3 (s, certificate)
 *   5 cookie reply   type | receiver u32 | nonce[24] | XChaCha20-Poly1305(cookie[16]) (32)
 *   6 transport      type | receiver u32 | counter u64 | ChaChaPoly(payload) (len + 16)
 *   7 certificate    as 6, payload = the XX responder's certificate (its first transport packet)
 *   8 cert needed    type | receiver u32 (the initiation's sender) | the initiation's mac1[16]
 * Noise prologue "ippoc-mesh-3" || fleet public key (version 2: XX message 2
 * carries no certificate; version 3: IK certificate references, below).
 * Certificate references (added by the certcache part): ref = serial u64 |
 * BLAKE2b-128(the encoded certificate)[0..8), 16 bytes.
 *   P1 = stamp u64 | flags u8 | [ref of the responder's certificate we hold,
 *        flag 2] | (flag 1: ref of ours | else: our certificate)
 *   P2 = flag u8 | (flag 1: nothing, the initiator named our current
 *        certificate | 0: our certificate)
 * An initiator names its own certificate by reference only when a session
 * with that address completed before (so the peer checked it) and the peer
 * has not asked for it since; it names the peer's when it holds it. A
 * reference is resolved only against the certificate kept for that address,
 * and that certificate is checked again exactly as a fresh one (fleet
 * signature, validity window against the clock, revocation list, binding to
 * the handshake's static key) on every handshake; any failure refuses it as
 * a full one would. A reference that names nothing held, or another
 * certificate, is never taken: the responder sends type 8 (no REJECT,
 * counted certs_asked) and the initiator sends the same try at once with its
 * certificate in full (certs_needed); the reply must name the pending IK
 * initiation's index and mac1. A cell that restarts holds nothing, so its
 * first contacts are full. With a 166-byte certificate: IK 174 + 58 bytes
 * instead of 307 + 223 (a rekey or a re-contact after expiry); XX unchanged. Certificates (mesh_identity_cert_encode) travel
 * only in encrypted payloads, and never to a peer whose certificate has not
 * been checked first: in IK the responder answers message 1 (which carries
 * the initiator's certificate) only after checking it; in XX the responder
 * checks message 3's certificate and only then sends its own as packet 7.
 * The XX initiator keeps its new keys unused until packet 7 arrives and
 * checks (a transport packet before it is refused); without it within
 * handshake_retry_ms it starts over, and gives up (DOWN, with the reason)
 * after the usual 18 tries. So a refused cell that knows the fleet key learns
 * the responder's X25519 static key (XX message 2, the pattern's) and nothing
 * else; the XX initiator shows its certificate first, to an address it chose.
 * mac1 = BLAKE2b-128(key, the initiation up to mac1) with key =
 * BLAKE2b-256("mac1----" || the responder's X25519 key) for IK and
 * ("mac1----" || fleet key) for XX (the initiator does not know the
 * responder yet); mac2 = BLAKE2b-128(cookie, up to mac2) or zeros. cookie =
 * BLAKE2b-128(secret rotated every 2 min, source address), sealed under
 * BLAKE2b-256("cookie--" || same basis) with the initiation's mac1 as AD.
 * Transport AD is its 13-byte header; the counter is the nonce; the replay
 * window is judged after authentication. A transport packet is 29 bytes
 * more than its payload (1,368 -> 1,397). Empty transport payloads are
 * keepalives that confirm new keys and are not reported as DATA.
 * The IK stamp (wall seconds << 20 plus a count) must grow per sender key:
 * a replayed IK initiation is refused.
 * Rejoin (added by the rejoin part): a transport packet whose receiver
 * index names no keys we hold, from an address with no live keys that is
 * not revoked, makes us send an initiation there: with no handshake pending,
 * IK only (the address's key known, as after mesh_session_forget; one try,
 * no retries unless payloads wait); with one pending for a quarter of a
 * retry period or more, its retry at once. At most once per
 * handshake_retry_ms per address and 10 a second in all; nothing of that
 * packet is delivered. The peer, which still has its session, takes the new
 * one (as for a rekey).
 * Simultaneous initiations: the one whose ephemeral key (clear in both
 * msg1) is larger wins; the other side drops its own and answers.
 * UP is reported when a peer first gets a session (not on each rekey); the
 * XX initiator's UP comes with the responder's certificate (packet 7). */
#ifndef IPPOC_MESH_SESSION_H
#define IPPOC_MESH_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mesh/identity.h"

#define MESH_SESSION_MTU 1400
#define MESH_SESSION_OVERHEAD 32 /* transport header + AEAD tag, at most */
#define MESH_SESSION_MAX_PAYLOAD (MESH_SESSION_MTU - MESH_SESSION_OVERHEAD)
#define MESH_SESSION_ADDR_MAX 64

typedef struct {
    const mesh_identity_key *node;       /* our Ed25519 key pair (copied) */
    const mesh_identity_cert *cert;      /* our certificate (copied) */
    const uint8_t *fleet_pk;             /* MESH_ID_PK_BYTES: the fleet we trust (copied) */
    const mesh_identity_revlist *revoked; /* consulted on every handshake; may be NULL; not owned */
    int64_t (*wall_clock)(void *ctx);    /* unix seconds for certificate validity; NULL = time(NULL) */
    void *clock_ctx;
    uint32_t rekey_after_ms;       /* 0 = 120000 (WireGuard's REKEY_AFTER_TIME) */
    uint64_t rekey_after_messages; /* 0 = 1 << 40 */
    uint32_t reject_after_ms;      /* 0 = 180000: a session this old accepts nothing */
    uint32_t handshake_retry_ms;   /* 0 = 5000 (REKEY_TIMEOUT); given up after 18 tries (90 s) */
    uint32_t load_handshakes_per_s; /* 0 = 1000: above it, initiations get a cookie reply */
    size_t max_peers;              /* 0 = 16384 */
    size_t max_queued;             /* 0 = 64 payloads per peer waiting for a handshake */
} mesh_session_config;

enum mesh_session_event_kind {
    MESH_SESSION_UP = 1,     /* a handshake completed: node_id, pk, roles, addr set */
    MESH_SESSION_DATA = 2,   /* an authenticated payload: data, len set */
    MESH_SESSION_REJECT = 3, /* a peer or packet refused: reason set (certificate, revoked, forged, replay, ...) */
    MESH_SESSION_DOWN = 4,   /* a session expired or its handshake gave up: reason set */
};

typedef struct {
    enum mesh_session_event_kind kind;
    const char *addr;                 /* the peer's address */
    const char *node_id;              /* from its certificate; "" when not known (REJECT before the cert) */
    const uint8_t *pk;                /* its Ed25519 key, NULL when not known */
    uint32_t roles;                   /* from its certificate */
    const mesh_identity_cert *cert;   /* UP: its whole certificate (serial for revocations); else NULL */
    const uint8_t *data;
    size_t len;
    const char *reason;
} mesh_session_event;

typedef void (*mesh_session_event_fn)(void *ctx, const mesh_session_event *ev);

typedef struct {
    char addr[MESH_SESSION_ADDR_MAX + 1];
    size_t len;
    uint8_t data[MESH_SESSION_MTU];
} mesh_session_out;

typedef struct {
    uint64_t packets_in, packets_out, bytes_in, bytes_out;
    uint64_t handshakes_ok, handshakes_failed, rekeys;
    uint64_t rejected_cert, rejected_revoked, rejected_forged, rejected_replay, rejected_malformed;
    uint64_t cookies_sent;
    size_t sessions;
    /* added by the session part: */
    uint64_t dropped_mac1;   /* initiations with a bad mac1, dropped silently */
    uint64_t rejected_stale; /* transport packets for keys past reject_after_ms */
    /* added by the rejoin part: */
    uint64_t unknown_index;         /* transport packets for keys we do not hold (also counted malformed) */
    uint64_t handshakes_unprompted; /* initiations those started or hurried (bounded: see "Rejoin" above) */
    /* added by the certcache part: */
    uint64_t certs_omitted;   /* IK messages sent with a reference instead of our certificate */
    uint64_t certs_needed;    /* "certificate needed" replies received (a full initiation went at once) */
    uint64_t certs_asked;     /* "certificate needed" replies sent */
} mesh_session_stats;

struct mesh_session;

/* Checks and copies the config; -EINVAL with a message naming the field. */
int mesh_session_new(const mesh_session_config *cfg, struct mesh_session **out, char *err, size_t errlen);
void mesh_session_free(struct mesh_session *s);
void mesh_session_on_event(struct mesh_session *s, mesh_session_event_fn fn, void *ctx);
/* Remembers a peer's Ed25519 key for addr, so the next handshake to it is IK. */
void mesh_session_learn_key(struct mesh_session *s, const char *addr, const uint8_t pk[MESH_ID_PK_BYTES]);
/* Queues len <= MESH_SESSION_MAX_PAYLOAD bytes for addr, starting a handshake
 * when there is no live session (the payload waits for it, bounded).
 * -EMSGSIZE, -ENOBUFS (queue full), -EINVAL (bad address). */
int mesh_session_send(struct mesh_session *s, uint64_t now_ms, const char *addr, const uint8_t *data,
                      size_t len, char *err, size_t errlen);
/* A datagram from addr. Returns 0 when it was used, a negative errno when it
 * was refused (also counted and, for a peer-level refusal, a REJECT event);
 * never changes state on a refused packet. */
int mesh_session_receive(struct mesh_session *s, uint64_t now_ms, const char *addr, const uint8_t *pkt, size_t len);
void mesh_session_tick(struct mesh_session *s, uint64_t now_ms);
uint64_t mesh_session_next_deadline(const struct mesh_session *s);
/* Copies the next datagram to send into *out; false when there is none. */
bool mesh_session_next_out(struct mesh_session *s, mesh_session_out *out);
/* Drops the session with addr (a peer found dead or revoked). */
void mesh_session_forget(struct mesh_session *s, const char *addr);
void mesh_session_get_stats(const struct mesh_session *s, mesh_session_stats *st);

#endif
