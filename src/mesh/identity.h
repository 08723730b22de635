/* identity.h: the mesh's identities and trust roots (internal to src/mesh/).
 *
 * A cell has an Ed25519 key pair in its state dir; its X25519 key for Noise is
 * derived from it, so the certificate that binds the Ed25519 key binds the
 * Noise static key too. A fleet is a fleet key pair: it signs certificates
 * (node key, node id, roles, validity window, serial) and revocation records.
 * An invite token ("ippoc1..." base64url, with a checksum) carries a
 * certificate and seed addresses. Every parser here is strict and answers bad
 * input with a distinct negative errno and a message naming what and why:
 *   -EINVAL       not a token / bad base64 (prefix, character, position)
 *   -EILSEQ       token checksum mismatch (mistyped or cut)
 *   -EBADMSG      wrong length or a malformed field
 *   -EPROTONOSUPPORT  unknown format version
 *   -EKEYREJECTED bad signature
 *   -EPERM        signed by another fleet
 *   -EKEYEXPIRED  past not-after (plus the skew allowance)
 *   -EAGAIN       before not-before (minus the skew allowance)
 *   -EKEYREVOKED  revoked by serial or by node key
 * The formats are written out in docs/mesh/identity.md. */
#ifndef IPPOC_MESH_IDENTITY_H
#define IPPOC_MESH_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MESH_ID_PK_BYTES 32
#define MESH_ID_SK_BYTES 64
#define MESH_ID_SIG_BYTES 64
#define MESH_ID_X25519_BYTES 32
#define MESH_ID_NODE_ID_MAX 64          /* bytes of a node id */
#define MESH_ID_CERT_FIXED 96           /* certificate bytes before the node id */
#define MESH_ID_CERT_MAX (MESH_ID_CERT_FIXED + MESH_ID_NODE_ID_MAX + MESH_ID_SIG_BYTES)
#define MESH_ID_SEEDS_MAX 8             /* seed addresses in a token */
#define MESH_ID_SEED_MAX 128            /* bytes of one "host:port" */
#define MESH_ID_TOKEN_PREFIX "ippoc1"
#define MESH_ID_TOKEN_MAX 2048          /* characters of a token, NUL included */
#define MESH_ID_REVOCATION_BYTES 152
#define MESH_ID_REVLIST_MAX 4096        /* default bound of a revocation list */
#define MESH_ID_SKEW_S 300              /* default clock skew allowance, seconds */
#define MESH_ID_KEY_FILE_BYTES 72

/* file names inside the state dir */
#define MESH_ID_NODE_KEY_FILE "mesh-node.key"
#define MESH_ID_FLEET_KEY_FILE "mesh-fleet.key"
#define MESH_ID_REVLIST_FILE "mesh-revoked.bin"
#define MESH_ID_MEMBER_FILE "mesh-member.token"

enum { MESH_KEY_NODE = 1, MESH_KEY_FLEET = 2 };

/* roles a certificate grants (bit mask) */
enum {
    MESH_ROLE_REASONING = 1u << 0,
    MESH_ROLE_RETRIEVAL = 1u << 1,
    MESH_ROLE_TOOL = 1u << 2,
    MESH_ROLE_RELAY = 1u << 3,
    MESH_ROLE_ALL = 0xfu,
};

/* An Ed25519 key pair (libsodium's sk: 32-byte seed then the public key). */
typedef struct {
    int kind; /* MESH_KEY_NODE or MESH_KEY_FLEET */
    uint8_t pk[MESH_ID_PK_BYTES];
    uint8_t sk[MESH_ID_SK_BYTES];
} mesh_identity_key;

typedef struct {
    uint8_t fleet_pk[MESH_ID_PK_BYTES];
    uint8_t node_pk[MESH_ID_PK_BYTES];
    char node_id[MESH_ID_NODE_ID_MAX + 1];
    uint32_t roles;
    uint64_t serial; /* nonzero */
    int64_t not_before, not_after; /* unix seconds */
    uint8_t sig[MESH_ID_SIG_BYTES];
} mesh_identity_cert;

typedef struct {
    mesh_identity_cert cert; /* its fleet_pk is the fleet the joiner trusts */
    int nseeds;
    char seeds[MESH_ID_SEEDS_MAX][MESH_ID_SEED_MAX + 1]; /* "host:port", "[v6]:port" */
} mesh_identity_token;

enum { MESH_REVOKE_SERIAL = 1, MESH_REVOKE_KEY = 2 };
enum { MESH_REASON_UNSPECIFIED = 0, MESH_REASON_KEY_COMPROMISE, MESH_REASON_RETIRED, MESH_REASON_SUPERSEDED,
       MESH_REASON_MAX = MESH_REASON_SUPERSEDED };

typedef struct {
    uint8_t fleet_pk[MESH_ID_PK_BYTES];
    int kind;   /* MESH_REVOKE_SERIAL or MESH_REVOKE_KEY */
    int reason; /* MESH_REASON_* */
    uint64_t serial;                    /* kind SERIAL */
    uint8_t node_pk[MESH_ID_PK_BYTES];  /* kind KEY */
    int64_t time;  /* when it was revoked, unix seconds */
    int64_t until; /* it may be forgotten after until + skew (the revoked certificate's not-after) */
    uint8_t sig[MESH_ID_SIG_BYTES];
} mesh_identity_revocation;

/* A bounded set of verified revocations of one fleet, at most one per target. */
typedef struct {
    uint8_t fleet_pk[MESH_ID_PK_BYTES];
    mesh_identity_revocation *recs;
    size_t n, max;
} mesh_identity_revlist;

/* ---- keys ------------------------------------------------------------------ */
/* Loads a key file of the given kind: a regular file, mode 0600 or stricter,
 * 72 bytes, its public key matching its seed. 0 or -errno, err naming path. */
int mesh_identity_key_load(const char *path, int kind, mesh_identity_key *k, char *err, size_t errlen);
/* Creates a new key file (mode 0600; -EEXIST when path exists). */
int mesh_identity_key_create(const char *path, int kind, mesh_identity_key *k, char *err, size_t errlen);
/* The cell's node key in state_dir: loaded, or created on first use
 * (*created tells which; created may be NULL). An empty file (a creation cut
 * short before its atomic write) is replaced; any other bad file is an error. */
int mesh_identity_node_key(const char *state_dir, mesh_identity_key *k, bool *created, char *err, size_t errlen);
/* The X25519 key pair for Noise, derived from the Ed25519 one. */
int mesh_identity_x25519(const mesh_identity_key *k, uint8_t xsk[MESH_ID_X25519_BYTES],
                         uint8_t xpk[MESH_ID_X25519_BYTES]);
/* A peer's X25519 public key from its certified Ed25519 one (-EINVAL if not a valid point). */
int mesh_identity_x25519_pk(const uint8_t edpk[MESH_ID_PK_BYTES], uint8_t xpk[MESH_ID_X25519_BYTES]);
/* Wipes a key's secret. */
void mesh_identity_key_wipe(mesh_identity_key *k);
/* Hex of a public key (65 bytes) and its parse (strict: 64 hex digits). */
void mesh_identity_pk_hex(const uint8_t pk[MESH_ID_PK_BYTES], char out[2 * MESH_ID_PK_BYTES + 1]);
int mesh_identity_pk_parse(const char *hex, uint8_t pk[MESH_ID_PK_BYTES], char *err, size_t errlen);

/* ---- certificates ------------------------------------------------------------ */
/* Checks a node id: 1..64 bytes of [A-Za-z0-9._-], starting with a letter or digit. */
int mesh_identity_node_id_check(const char *id, char *err, size_t errlen);
/* Signs c with the fleet key: sets c->fleet_pk and c->sig, and a random
 * serial when c->serial is 0. The other fields are checked first. */
int mesh_identity_cert_sign(mesh_identity_cert *c, const mesh_identity_key *fleet, char *err, size_t errlen);
/* The wire form (at most MESH_ID_CERT_MAX bytes): its length, or -errno. */
int mesh_identity_cert_encode(const mesh_identity_cert *c, uint8_t *buf, size_t cap, char *err, size_t errlen);
/* Strict structural parse (signature not checked: see verify). */
int mesh_identity_cert_decode(const uint8_t *buf, size_t len, mesh_identity_cert *c, char *err, size_t errlen);
/* Fleet match, signature, validity window (now +- skew_s), revocation (rl may be NULL). */
int mesh_identity_cert_verify(const mesh_identity_cert *c, const uint8_t fleet_pk[MESH_ID_PK_BYTES],
                              const mesh_identity_revlist *rl, int64_t now, int64_t skew_s, char *err,
                              size_t errlen);
/* "reasoning,relay" for a role mask, and its parse (-EINVAL naming the unknown role). */
void mesh_identity_roles_format(uint32_t roles, char *buf, size_t n);
int mesh_identity_roles_parse(const char *s, uint32_t *roles, char *err, size_t errlen);

/* ---- invite tokens ------------------------------------------------------------ */
/* Checks a seed address "host:port" / "[v6]:port". */
int mesh_identity_seed_check(const char *seed, char *err, size_t errlen);
int mesh_identity_token_encode(const mesh_identity_token *t, char *out, size_t cap, char *err, size_t errlen);
/* Strict parse; leading and trailing white space is ignored. */
int mesh_identity_token_decode(const char *text, mesh_identity_token *t, char *err, size_t errlen);
/* The joiner's check: the token's certificate is for this node's key, signed
 * by the fleet key it names, and valid now. */
int mesh_identity_token_accept(const mesh_identity_token *t, const mesh_identity_key *node, int64_t now,
                               int64_t skew_s, char *err, size_t errlen);

/* The joined cell's membership: its token (certificate, fleet, seeds) in
 * state_dir/mesh-member.token, one line. Load answers -ENOENT when the cell
 * has not joined a fleet, and a parse error prefixed with the file's path. */
int mesh_identity_member_save(const char *state_dir, const mesh_identity_token *t, char *err, size_t errlen);
int mesh_identity_member_load(const char *state_dir, mesh_identity_token *t, char *err, size_t errlen);

/* ---- revocation --------------------------------------------------------------- */
const char *mesh_identity_reason_name(int reason);
/* Signs r with the fleet key (sets r->fleet_pk and r->sig). */
int mesh_identity_revocation_sign(mesh_identity_revocation *r, const mesh_identity_key *fleet, char *err,
                                  size_t errlen);
int mesh_identity_revocation_encode(const mesh_identity_revocation *r, uint8_t buf[MESH_ID_REVOCATION_BYTES]);
/* Strict parse and signature check against r's own fleet key. */
int mesh_identity_revocation_decode(const uint8_t *buf, size_t len, mesh_identity_revocation *r, char *err,
                                    size_t errlen);

/* max 0 means MESH_ID_REVLIST_MAX. */
int mesh_identity_revlist_init(mesh_identity_revlist *rl, const uint8_t fleet_pk[MESH_ID_PK_BYTES], size_t max);
void mesh_identity_revlist_free(mesh_identity_revlist *rl);
/* Adds a record of this fleet (signature checked): 1 when it changed the
 * list, 0 when already known or past until + skew, -errno (-ENOSPC when full). */
int mesh_identity_revlist_add(mesh_identity_revlist *rl, const mesh_identity_revocation *r, int64_t now,
                              char *err, size_t errlen);
/* The record revoking c (by serial or by node key), or NULL. */
const mesh_identity_revocation *mesh_identity_revlist_find(const mesh_identity_revlist *rl,
                                                           const mesh_identity_cert *c);
/* Drops records past until + MESH_ID_SKEW_S; returns how many. */
size_t mesh_identity_revlist_prune(mesh_identity_revlist *rl, int64_t now);
/* The list's wire form (gossip and file): malloc'd into *out. */
int mesh_identity_revlist_encode(const mesh_identity_revlist *rl, uint8_t **out, size_t *len);
/* Merges a wire form from a peer or the file: every record is checked before
 * any is added (all or nothing); *added counts the changes (may be NULL). */
int mesh_identity_revlist_merge(mesh_identity_revlist *rl, const uint8_t *buf, size_t len, int64_t now,
                                size_t *added, char *err, size_t errlen);
/* Persisted in state_dir/mesh-revoked.bin (atomic write); a missing file is an empty list. */
int mesh_identity_revlist_save(const mesh_identity_revlist *rl, const char *state_dir, char *err, size_t errlen);
int mesh_identity_revlist_load(mesh_identity_revlist *rl, const char *state_dir, int64_t now, char *err,
                               size_t errlen);

#endif
