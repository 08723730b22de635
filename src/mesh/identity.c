/* identity.c: the mesh's identities and trust roots: node and fleet key files,
 * certificates, invite tokens, revocation records and the revocation list.
 * Every parser is strict (exact lengths, reserved bytes zero, canonical
 * forms) so that a decoded object re-encodes to the bytes that were signed. */
#include "mesh/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

static const char CERT_CTX[] = "ippoc-mesh-cert-v1";
static const char REVOKE_CTX[] = "ippoc-mesh-revoke-v1";
static const uint8_t KEY_MAGIC[2] = {'I', 'K'};
static const uint8_t CERT_MAGIC[2] = {'I', 'C'};
static const uint8_t REVOKE_MAGIC[2] = {'I', 'R'};
static const uint8_t LIST_MAGIC[2] = {'I', 'L'};
#define FORMAT_VERSION 1
#define LIST_HEADER 8
#define REVOKE_SIGNED 88
#define CHECKSUM_BYTES 4

static int init_sodium(void)
{
    return sodium_init() < 0 ? -ENOSYS : 0;
}

/* ---- big-endian helpers ------------------------------------------------------ */
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Ed25519 over ctx (with its NUL, for domain separation) then msg. */
static void sign_ctx(const char *ctx, const uint8_t *msg, size_t len, const uint8_t *sk, uint8_t *sig)
{
    crypto_sign_state st;
    crypto_sign_init(&st);
    crypto_sign_update(&st, (const uint8_t *)ctx, strlen(ctx) + 1);
    crypto_sign_update(&st, msg, len);
    crypto_sign_final_create(&st, sig, NULL, sk);
}

static bool verify_ctx(const char *ctx, const uint8_t *msg, size_t len, const uint8_t *pk, const uint8_t *sig)
{
    crypto_sign_state st;
    crypto_sign_init(&st);
    crypto_sign_update(&st, (const uint8_t *)ctx, strlen(ctx) + 1);
    crypto_sign_update(&st, msg, len);
    return crypto_sign_final_verify(&st, (uint8_t *)sig, pk) == 0;
}

/* ---- keys -------------------------------------------------------------------- */
static const char *kind_name(int kind)
{
    return kind == MESH_KEY_FLEET ? "fleet" : "node";
}

static void key_encode(const mesh_identity_key *k, uint8_t out[MESH_ID_KEY_FILE_BYTES])
{
    memset(out, 0, MESH_ID_KEY_FILE_BYTES);
    memcpy(out, KEY_MAGIC, 2);
    out[2] = FORMAT_VERSION;
    out[3] = (uint8_t)k->kind;
    memcpy(out + 8, k->sk, 32); /* the seed */
    memcpy(out + 40, k->pk, 32);
}

static int key_decode(const char *path, const uint8_t *b, size_t len, int kind, mesh_identity_key *k, char *err,
                      size_t errlen)
{
    if (len != MESH_ID_KEY_FILE_BYTES) {
        snprintf(err, errlen, "%s: corrupt key file: %zu bytes, want %d", path, len, MESH_ID_KEY_FILE_BYTES);
        return -EBADMSG;
    }
    if (memcmp(b, KEY_MAGIC, 2) || !all_zero(b + 4, 4)) {
        snprintf(err, errlen, "%s: corrupt key file: bad magic or reserved bytes", path);
        return -EBADMSG;
    }
    if (b[2] != FORMAT_VERSION) {
        snprintf(err, errlen, "%s: key file version %d, this build reads %d", path, b[2], FORMAT_VERSION);
        return -EPROTONOSUPPORT;
    }
    if (b[3] != kind) {
        snprintf(err, errlen, "%s: holds a %s key, want a %s key", path,
                 b[3] == MESH_KEY_FLEET ? "fleet" : b[3] == MESH_KEY_NODE ? "node" : "unknown", kind_name(kind));
        return -EBADMSG;
    }
    k->kind = kind;
    crypto_sign_seed_keypair(k->pk, k->sk, b + 8);
    if (sodium_memcmp(k->pk, b + 40, 32)) {
        mesh_identity_key_wipe(k);
        snprintf(err, errlen, "%s: corrupt key file: the public key does not match the secret seed", path);
        return -EBADMSG;
    }
    return 0;
}

void mesh_identity_key_wipe(mesh_identity_key *k)
{
    sodium_memzero(k->sk, sizeof k->sk);
}

int mesh_identity_key_load(const char *path, int kind, mesh_identity_key *k, char *err, size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot open the %s key: %s", path, kind_name(kind), strerror(e));
        return -e;
    }
    struct stat st;
    int rc = 0;
    uint8_t buf[MESH_ID_KEY_FILE_BYTES + 1];
    if (fstat(fd, &st)) {
        rc = -errno;
        snprintf(err, errlen, "%s: %s", path, strerror(-rc));
    } else if (!S_ISREG(st.st_mode)) {
        rc = -EBADMSG;
        snprintf(err, errlen, "%s: not a regular file", path);
    } else if (st.st_mode & 077) {
        rc = -EPERM;
        snprintf(err, errlen, "%s: mode %04o opens the %s key to other users; want 0600 (chmod 600 %s)", path,
                 (unsigned)(st.st_mode & 07777), kind_name(kind), path);
    } else {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc));
        } else {
            rc = key_decode(path, buf, (size_t)n, kind, k, err, errlen);
        }
    }
    sodium_memzero(buf, sizeof buf);
    close(fd);
    return rc;
}

int mesh_identity_key_create(const char *path, int kind, mesh_identity_key *k, char *err, size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    /* The empty placeholder (0600, exclusive) gives the atomic write its mode:
     * core_write_temp keeps an existing file's mode, so the secret is never
     * readable by others, not even in the temporary file. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create the %s key: %s", path, kind_name(kind), strerror(e));
        return -e;
    }
    close(fd);
    k->kind = kind;
    crypto_sign_keypair(k->pk, k->sk);
    uint8_t buf[MESH_ID_KEY_FILE_BYTES];
    key_encode(k, buf);
    int rc = core_write_atomic(path, buf, sizeof buf, err, errlen);
    sodium_memzero(buf, sizeof buf);
    if (rc) {
        unlink(path);
        mesh_identity_key_wipe(k);
    }
    return rc;
}

int mesh_identity_node_key(const char *state_dir, mesh_identity_key *k, bool *created, char *err, size_t errlen)
{
    char path[CORE_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", state_dir, MESH_ID_NODE_KEY_FILE) >= (int)sizeof path)
        return snprintf(err, errlen, "%s: path too long", state_dir), -ENAMETOOLONG;
    if (created)
        *created = false;
    int rc = mesh_identity_key_load(path, MESH_KEY_NODE, k, err, errlen);
    struct stat st;
    if (rc == -EBADMSG && !lstat(path, &st) && S_ISREG(st.st_mode) && st.st_size == 0 && !unlink(path))
        rc = -ENOENT; /* the placeholder of a creation that died before its write */
    if (rc != -ENOENT)
        return rc;
    rc = mesh_identity_key_create(path, MESH_KEY_NODE, k, err, errlen);
    if (rc == -EEXIST) /* another process made it first: use theirs */
        return mesh_identity_key_load(path, MESH_KEY_NODE, k, err, errlen);
    if (!rc && created)
        *created = true;
    return rc;
}

int mesh_identity_x25519(const mesh_identity_key *k, uint8_t xsk[MESH_ID_X25519_BYTES],
                         uint8_t xpk[MESH_ID_X25519_BYTES])
{
    if (init_sodium() || crypto_sign_ed25519_sk_to_curve25519(xsk, k->sk))
        return -EINVAL;
    crypto_scalarmult_base(xpk, xsk);
    return 0;
}

int mesh_identity_x25519_pk(const uint8_t edpk[MESH_ID_PK_BYTES], uint8_t xpk[MESH_ID_X25519_BYTES])
{
    if (init_sodium() || crypto_sign_ed25519_pk_to_curve25519(xpk, edpk))
        return -EINVAL;
    return 0;
}

void mesh_identity_pk_hex(const uint8_t pk[MESH_ID_PK_BYTES], char out[2 * MESH_ID_PK_BYTES + 1])
{
    sodium_bin2hex(out, 2 * MESH_ID_PK_BYTES + 1, pk, MESH_ID_PK_BYTES);
}

int mesh_identity_pk_parse(const char *hex, uint8_t pk[MESH_ID_PK_BYTES], char *err, size_t errlen)
{
    size_t n = strlen(hex);
    if (n != 2 * MESH_ID_PK_BYTES) {
        snprintf(err, errlen, "public key: %zu characters, want %d hex digits", n, 2 * MESH_ID_PK_BYTES);
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789abcdefABCDEF", hex[i]) || !hex[i]) {
            snprintf(err, errlen, "public key: character %zu is not a hex digit", i + 1);
            return -EINVAL;
        }
    }
    size_t got = 0;
    if (sodium_hex2bin(pk, MESH_ID_PK_BYTES, hex, n, NULL, &got, NULL) || got != MESH_ID_PK_BYTES)
        return snprintf(err, errlen, "public key: not hex"), -EINVAL;
    return 0;
}

/* ---- certificates -------------------------------------------------------------- */
static const char *const ROLE_NAMES[] = {"reasoning", "retrieval", "tool", "relay"};
#define NROLES (sizeof ROLE_NAMES / sizeof ROLE_NAMES[0])

void mesh_identity_roles_format(uint32_t roles, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < NROLES && n; i++) {
        if (!(roles & (1u << i)))
            continue;
        int w = snprintf(buf + off, n - off, "%s%s", off ? "," : "", ROLE_NAMES[i]);
        if (w < 0 || (size_t)w >= n - off)
            return;
        off += (size_t)w;
    }
}

int mesh_identity_roles_parse(const char *s, uint32_t *roles, char *err, size_t errlen)
{
    *roles = 0;
    const char *p = s;
    while (*p) {
        size_t len = strcspn(p, ",");
        size_t i = 0;
        while (i < NROLES && !(strlen(ROLE_NAMES[i]) == len && !strncmp(p, ROLE_NAMES[i], len)))
            i++;
        if (i == NROLES) {
            snprintf(err, errlen, "roles: unknown role '%.*s' (known: reasoning, retrieval, tool, relay)",
                     (int)(len > 32 ? 32 : len), p);
            return -EINVAL;
        }
        *roles |= 1u << i;
        p += len;
        if (*p == ',' && *++p == 0)
            return snprintf(err, errlen, "roles: trailing comma in '%s'", s), -EINVAL;
    }
    return 0;
}

int mesh_identity_node_id_check(const char *id, char *err, size_t errlen)
{
    size_t n = strnlen(id, MESH_ID_NODE_ID_MAX + 1);
    if (n == 0 || n > MESH_ID_NODE_ID_MAX) {
        snprintf(err, errlen, "node id: %s, want 1 to %d characters", n ? "too long" : "empty",
                 MESH_ID_NODE_ID_MAX);
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            snprintf(err, errlen, "node id: character %zu (0x%02x) not allowed (letters, digits, '.', '_', '-'; "
                     "a letter or digit first)", i + 1, (unsigned char)c);
            return -EBADMSG;
        }
    }
    return 0;
}

/* The fields a signature cannot fix: checked before signing and after parsing. */
static int cert_fields_check(const mesh_identity_cert *c, char *err, size_t errlen)
{
    int rc = mesh_identity_node_id_check(c->node_id, err, errlen);
    if (rc)
        return rc;
    if (c->roles & ~(uint32_t)MESH_ROLE_ALL)
        return snprintf(err, errlen, "certificate: unknown role bits 0x%x", c->roles & ~(uint32_t)MESH_ROLE_ALL),
               -EBADMSG;
    if (c->not_before < 0)
        return snprintf(err, errlen, "certificate: not-before (%" PRId64 ") before 1970", c->not_before), -EBADMSG;
    if (c->not_after <= c->not_before)
        return snprintf(err, errlen, "certificate: not-after (%" PRId64 ") is not after not-before (%" PRId64 ")",
                        c->not_after, c->not_before),
               -EBADMSG;
    if (c->serial == 0)
        return snprintf(err, errlen, "certificate: serial 0"), -EBADMSG;
    return 0;
}

/* The signed bytes (everything before the signature); their length. */
static size_t cert_body(const mesh_identity_cert *c, uint8_t *b)
{
    size_t idlen = strlen(c->node_id);
    memcpy(b, CERT_MAGIC, 2);
    b[2] = FORMAT_VERSION;
    b[3] = (uint8_t)idlen;
    memcpy(b + 4, c->fleet_pk, 32);
    memcpy(b + 36, c->node_pk, 32);
    put_u64(b + 68, c->serial);
    put_u64(b + 76, (uint64_t)c->not_before);
    put_u64(b + 84, (uint64_t)c->not_after);
    put_u32(b + 92, c->roles);
    memcpy(b + MESH_ID_CERT_FIXED, c->node_id, idlen);
    return MESH_ID_CERT_FIXED + idlen;
}

int mesh_identity_cert_sign(mesh_identity_cert *c, const mesh_identity_key *fleet, char *err, size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    if (fleet->kind != MESH_KEY_FLEET)
        return snprintf(err, errlen, "certificate: signing key is not a fleet key"), -EINVAL;
    while (c->serial == 0)
        randombytes_buf(&c->serial, sizeof c->serial);
    int rc = cert_fields_check(c, err, errlen);
    if (rc)
        return rc;
    memcpy(c->fleet_pk, fleet->pk, 32);
    uint8_t b[MESH_ID_CERT_MAX];
    size_t n = cert_body(c, b);
    sign_ctx(CERT_CTX, b, n, fleet->sk, c->sig);
    return 0;
}

int mesh_identity_cert_encode(const mesh_identity_cert *c, uint8_t *buf, size_t cap, char *err, size_t errlen)
{
    int rc = cert_fields_check(c, err, errlen);
    if (rc)
        return rc;
    uint8_t b[MESH_ID_CERT_MAX];
    size_t n = cert_body(c, b);
    if (cap < n + MESH_ID_SIG_BYTES)
        return snprintf(err, errlen, "certificate: %zu bytes do not fit in %zu", n + MESH_ID_SIG_BYTES, cap),
               -ENOSPC;
    memcpy(buf, b, n);
    memcpy(buf + n, c->sig, MESH_ID_SIG_BYTES);
    return (int)(n + MESH_ID_SIG_BYTES);
}

int mesh_identity_cert_decode(const uint8_t *buf, size_t len, mesh_identity_cert *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (len < MESH_ID_CERT_FIXED + 1 + MESH_ID_SIG_BYTES || len > MESH_ID_CERT_MAX)
        return snprintf(err, errlen, "certificate: %zu bytes, want %d to %d", len,
                        MESH_ID_CERT_FIXED + 1 + MESH_ID_SIG_BYTES, MESH_ID_CERT_MAX),
               -EBADMSG;
    if (memcmp(buf, CERT_MAGIC, 2))
        return snprintf(err, errlen, "certificate: bad magic (not a certificate)"), -EBADMSG;
    if (buf[2] != FORMAT_VERSION)
        return snprintf(err, errlen, "certificate: version %d, this build reads %d", buf[2], FORMAT_VERSION),
               -EPROTONOSUPPORT;
    size_t idlen = buf[3];
    if (len != MESH_ID_CERT_FIXED + idlen + MESH_ID_SIG_BYTES)
        return snprintf(err, errlen, "certificate: %zu bytes, but its node id length %zu makes %zu", len, idlen,
                        MESH_ID_CERT_FIXED + idlen + MESH_ID_SIG_BYTES),
               -EBADMSG;
    memcpy(c->fleet_pk, buf + 4, 32);
    memcpy(c->node_pk, buf + 36, 32);
    c->serial = get_u64(buf + 68);
    c->not_before = (int64_t)get_u64(buf + 76);
    c->not_after = (int64_t)get_u64(buf + 84);
    c->roles = get_u32(buf + 92);
    memcpy(c->node_id, buf + MESH_ID_CERT_FIXED, idlen);
    c->node_id[idlen] = 0;
    if (strlen(c->node_id) != idlen)
        return snprintf(err, errlen, "node id: holds a NUL byte"), -EBADMSG;
    memcpy(c->sig, buf + MESH_ID_CERT_FIXED + idlen, MESH_ID_SIG_BYTES);
    return cert_fields_check(c, err, errlen);
}

static int cert_check_sig(const mesh_identity_cert *c, char *err, size_t errlen)
{
    uint8_t b[MESH_ID_CERT_MAX];
    int rc = cert_fields_check(c, err, errlen);
    if (rc)
        return rc;
    size_t n = cert_body(c, b);
    if (!verify_ctx(CERT_CTX, b, n, c->fleet_pk, c->sig))
        return snprintf(err, errlen, "certificate of '%s': bad signature", c->node_id), -EKEYREJECTED;
    return 0;
}

int mesh_identity_cert_verify(const mesh_identity_cert *c, const uint8_t fleet_pk[MESH_ID_PK_BYTES],
                              const mesh_identity_revlist *rl, int64_t now, int64_t skew_s, char *err,
                              size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    if (sodium_memcmp(c->fleet_pk, fleet_pk, 32)) {
        char got[65], want[65];
        mesh_identity_pk_hex(c->fleet_pk, got);
        mesh_identity_pk_hex(fleet_pk, want);
        snprintf(err, errlen, "certificate of '%.64s': signed by fleet %.16s..., this fleet is %.16s...",
                 c->node_id, got, want);
        return -EPERM;
    }
    int rc = cert_check_sig(c, err, errlen);
    if (rc)
        return rc;
    if (now - skew_s > c->not_after) /* no overflow for a not-after of INT64_MAX */
        return snprintf(err, errlen, "certificate of '%s' (serial %016" PRIx64 "): expired %" PRId64 " s ago",
                        c->node_id, c->serial, now - c->not_after),
               -EKEYEXPIRED;
    if (now + skew_s < c->not_before)
        return snprintf(err, errlen, "certificate of '%s' (serial %016" PRIx64 "): not valid for another %" PRId64
                        " s", c->node_id, c->serial, c->not_before - now),
               -EAGAIN;
    const mesh_identity_revocation *r = rl ? mesh_identity_revlist_find(rl, c) : NULL;
    if (r)
        return snprintf(err, errlen, "certificate of '%s' (serial %016" PRIx64 "): revoked by %s at %" PRId64
                        " (%s)", c->node_id, c->serial, r->kind == MESH_REVOKE_KEY ? "node key" : "serial",
                        r->time, mesh_identity_reason_name(r->reason)),
               -EKEYREVOKED;
    return 0;
}

/* ---- invite tokens -------------------------------------------------------------- */
int mesh_identity_seed_check(const char *seed, char *err, size_t errlen)
{
    size_t n = strnlen(seed, MESH_ID_SEED_MAX + 1);
    if (n == 0 || n > MESH_ID_SEED_MAX)
        return snprintf(err, errlen, "seed address: %s (want host:port, at most %d characters)",
                        n ? "too long" : "empty", MESH_ID_SEED_MAX),
               -EBADMSG;
    const char *colon = strrchr(seed, ':');
    if (!colon || colon == seed)
        return snprintf(err, errlen, "seed address '%s': want host:port", seed), -EBADMSG;
    size_t hlen = (size_t)(colon - seed);
    bool v6 = seed[0] == '[';
    if (v6 && (hlen < 3 || seed[hlen - 1] != ']'))
        return snprintf(err, errlen, "seed address '%s': an IPv6 host goes in brackets, [::1]:7946", seed),
               -EBADMSG;
    for (size_t i = v6; i < hlen - v6; i++) {
        char c = seed[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '-' || (v6 && (c == ':' || c == '%'));
        if (!ok)
            return snprintf(err, errlen, "seed address '%s': character %zu (0x%02x) not allowed in a host", seed,
                            i + 1, (unsigned char)c),
                   -EBADMSG;
    }
    const char *p = colon + 1;
    long port = 0;
    if (!*p || strlen(p) > 5)
        return snprintf(err, errlen, "seed address '%s': bad port", seed), -EBADMSG;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return snprintf(err, errlen, "seed address '%s': port is not a number", seed), -EBADMSG;
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535 || colon[1] == '0')
        return snprintf(err, errlen, "seed address '%s': port out of 1..65535", seed), -EBADMSG;
    return 0;
}

static void token_checksum(const uint8_t *b, size_t n, uint8_t out[CHECKSUM_BYTES])
{
    uint8_t h[crypto_generichash_BYTES_MIN];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)MESH_ID_TOKEN_PREFIX, strlen(MESH_ID_TOKEN_PREFIX));
    crypto_generichash_update(&st, b, n);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(out, h, CHECKSUM_BYTES);
}

#define TOKEN_BIN_MAX (2 + MESH_ID_CERT_MAX + 1 + MESH_ID_SEEDS_MAX * (1 + MESH_ID_SEED_MAX) + CHECKSUM_BYTES)

int mesh_identity_token_encode(const mesh_identity_token *t, char *out, size_t cap, char *err, size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    uint8_t b[TOKEN_BIN_MAX];
    int clen = mesh_identity_cert_encode(&t->cert, b + 2, MESH_ID_CERT_MAX, err, errlen);
    if (clen < 0)
        return clen;
    b[0] = (uint8_t)(clen >> 8);
    b[1] = (uint8_t)clen;
    size_t n = 2 + (size_t)clen;
    if (t->nseeds < 0 || t->nseeds > MESH_ID_SEEDS_MAX)
        return snprintf(err, errlen, "token: %d seed addresses, at most %d", t->nseeds, MESH_ID_SEEDS_MAX),
               -EINVAL;
    b[n++] = (uint8_t)t->nseeds;
    for (int i = 0; i < t->nseeds; i++) {
        int rc = mesh_identity_seed_check(t->seeds[i], err, errlen);
        if (rc)
            return rc;
        size_t sl = strlen(t->seeds[i]);
        b[n++] = (uint8_t)sl;
        memcpy(b + n, t->seeds[i], sl);
        n += sl;
    }
    token_checksum(b, n, b + n);
    n += CHECKSUM_BYTES;
    size_t plen = strlen(MESH_ID_TOKEN_PREFIX);
    size_t need = plen + sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (cap < need)
        return snprintf(err, errlen, "token: %zu characters do not fit in %zu", need, cap), -ENOSPC;
    memcpy(out, MESH_ID_TOKEN_PREFIX, plen);
    sodium_bin2base64(out + plen, cap - plen, b, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The token's bytes from its text: prefix, alphabet, base64, checksum. */
static int token_unwrap(const char *text, uint8_t *b, size_t *blen, char *err, size_t errlen)
{
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    size_t len = strlen(text);
    while (len && strchr(" \t\r\n", text[len - 1]))
        len--;
    size_t plen = strlen(MESH_ID_TOKEN_PREFIX);
    if (len < plen || memcmp(text, MESH_ID_TOKEN_PREFIX, plen))
        return snprintf(err, errlen, "token: does not start with '%s' (not an IPPOC invite token)",
                        MESH_ID_TOKEN_PREFIX),
               -EINVAL;
    size_t most = plen + sodium_base64_ENCODED_LEN(TOKEN_BIN_MAX, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1;
    if (len > most)
        return snprintf(err, errlen, "token: %zu characters, at most %zu", len, most), -EBADMSG;
    for (size_t i = plen; i < len; i++)
        if (!b64url_char(text[i]))
            return snprintf(err, errlen, "token: character %zu (0x%02x) is not base64url (A-Z a-z 0-9 - _)", i + 1,
                            (unsigned char)text[i]),
                   -EINVAL;
    size_t n = 0;
    const char *end = NULL;
    if (sodium_base642bin(b, TOKEN_BIN_MAX, text + plen, len - plen, NULL, &n, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        end != text + len)
        return snprintf(err, errlen, "token: bad base64 (too long, or cut inside a character group)"), -EINVAL;
    if (n < 2 + CHECKSUM_BYTES)
        return snprintf(err, errlen, "token: %zu bytes, too short", n), -EBADMSG;
    uint8_t sum[CHECKSUM_BYTES];
    token_checksum(b, n - CHECKSUM_BYTES, sum);
    if (memcmp(sum, b + n - CHECKSUM_BYTES, CHECKSUM_BYTES))
        return snprintf(err, errlen, "token: checksum mismatch (mistyped or incomplete; copy it again)"), -EILSEQ;
    *blen = n - CHECKSUM_BYTES;
    return 0;
}

int mesh_identity_token_decode(const char *text, mesh_identity_token *t, char *err, size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    memset(t, 0, sizeof *t);
    uint8_t b[TOKEN_BIN_MAX];
    size_t n = 0;
    int rc = token_unwrap(text, b, &n, err, errlen);
    if (rc)
        return rc;
    size_t clen = (size_t)b[0] << 8 | b[1];
    if (2 + clen + 1 > n)
        return snprintf(err, errlen, "token: certificate length %zu overruns the token (%zu bytes)", clen, n),
               -EBADMSG;
    if ((rc = mesh_identity_cert_decode(b + 2, clen, &t->cert, err, errlen)))
        return rc;
    size_t off = 2 + clen;
    t->nseeds = b[off++];
    if (t->nseeds > MESH_ID_SEEDS_MAX)
        return snprintf(err, errlen, "token: %d seed addresses, at most %d", t->nseeds, MESH_ID_SEEDS_MAX),
               -EBADMSG;
    for (int i = 0; i < t->nseeds; i++) {
        size_t sl = off < n ? b[off++] : 0;
        if (sl == 0 || sl > MESH_ID_SEED_MAX || off + sl > n)
            return snprintf(err, errlen, "token: seed address %d: bad length", i + 1), -EBADMSG;
        memcpy(t->seeds[i], b + off, sl);
        t->seeds[i][sl] = 0;
        off += sl;
        if (strlen(t->seeds[i]) != sl)
            return snprintf(err, errlen, "token: seed address %d holds a NUL byte", i + 1), -EBADMSG;
        if ((rc = mesh_identity_seed_check(t->seeds[i], err, errlen)))
            return rc;
    }
    if (off != n)
        return snprintf(err, errlen, "token: %zu bytes left over after the seed addresses", n - off), -EBADMSG;
    return 0;
}

int mesh_identity_token_accept(const mesh_identity_token *t, const mesh_identity_key *node, int64_t now,
                               int64_t skew_s, char *err, size_t errlen)
{
    if (sodium_memcmp(t->cert.node_pk, node->pk, 32)) {
        char got[65], mine[65];
        mesh_identity_pk_hex(t->cert.node_pk, got);
        mesh_identity_pk_hex(node->pk, mine);
        snprintf(err, errlen, "token: made for node key %.16s..., this node's key is %.16s... (ask for an invite "
                 "for `ippoc mesh id`'s key)", got, mine);
        return -EPERM;
    }
    return mesh_identity_cert_verify(&t->cert, t->cert.fleet_pk, NULL, now, skew_s, err, errlen);
}

static int member_path(const char *state_dir, char *path, size_t n, char *err, size_t errlen)
{
    if (snprintf(path, n, "%s/%s", state_dir, MESH_ID_MEMBER_FILE) >= (int)n)
        return snprintf(err, errlen, "%s: path too long", state_dir), -ENAMETOOLONG;
    return 0;
}

int mesh_identity_member_save(const char *state_dir, const mesh_identity_token *t, char *err, size_t errlen)
{
    char path[CORE_PATH_MAX], text[MESH_ID_TOKEN_MAX + 1];
    int rc = member_path(state_dir, path, sizeof path, err, errlen);
    if (!rc)
        rc = mesh_identity_token_encode(t, text, sizeof text - 1, err, errlen);
    if (rc)
        return rc;
    size_t n = strlen(text);
    text[n++] = '\n';
    return core_write_atomic(path, text, n, err, errlen);
}

int mesh_identity_member_load(const char *state_dir, mesh_identity_token *t, char *err, size_t errlen)
{
    char path[CORE_PATH_MAX], text[MESH_ID_TOKEN_MAX + 1], why[300];
    int rc = member_path(state_dir, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    ssize_t n = core_read_file(path, text, sizeof text);
    if (n < 0)
        return snprintf(err, errlen, "%s: %s", path, n == -ENOENT ? "not joined to a fleet" : strerror((int)-n)),
               (int)n;
    if ((size_t)n >= sizeof text - 1)
        return snprintf(err, errlen, "%s: too long for a token", path), -EBADMSG;
    if (strlen(text) != (size_t)n)
        return snprintf(err, errlen, "%s: holds a NUL byte", path), -EBADMSG;
    rc = mesh_identity_token_decode(text, t, why, sizeof why);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}

/* ---- revocation records ----------------------------------------------------------- */
const char *mesh_identity_reason_name(int reason)
{
    static const char *const names[] = {"unspecified", "key-compromise", "retired", "superseded"};
    return reason >= 0 && reason <= MESH_REASON_MAX ? names[reason] : "unknown";
}

static int revocation_check(const mesh_identity_revocation *r, char *err, size_t errlen)
{
    if (r->kind != MESH_REVOKE_SERIAL && r->kind != MESH_REVOKE_KEY)
        return snprintf(err, errlen, "revocation: unknown kind %d", r->kind), -EBADMSG;
    if (r->reason < 0 || r->reason > MESH_REASON_MAX)
        return snprintf(err, errlen, "revocation: unknown reason %d", r->reason), -EBADMSG;
    if (r->kind == MESH_REVOKE_SERIAL && r->serial == 0)
        return snprintf(err, errlen, "revocation: serial 0"), -EBADMSG;
    if (r->time < 0)
        return snprintf(err, errlen, "revocation: time (%" PRId64 ") before 1970", r->time), -EBADMSG;
    if (r->until < r->time)
        return snprintf(err, errlen, "revocation: until (%" PRId64 ") before its time (%" PRId64 ")", r->until,
                        r->time),
               -EBADMSG;
    return 0;
}

static void revocation_body(const mesh_identity_revocation *r, uint8_t b[REVOKE_SIGNED])
{
    memset(b, 0, REVOKE_SIGNED);
    memcpy(b, REVOKE_MAGIC, 2);
    b[2] = FORMAT_VERSION;
    b[3] = (uint8_t)r->kind;
    b[4] = (uint8_t)r->reason;
    memcpy(b + 8, r->fleet_pk, 32);
    if (r->kind == MESH_REVOKE_SERIAL)
        put_u64(b + 40, r->serial);
    else
        memcpy(b + 40, r->node_pk, 32);
    put_u64(b + 72, (uint64_t)r->time);
    put_u64(b + 80, (uint64_t)r->until);
}

int mesh_identity_revocation_sign(mesh_identity_revocation *r, const mesh_identity_key *fleet, char *err,
                                  size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    if (fleet->kind != MESH_KEY_FLEET)
        return snprintf(err, errlen, "revocation: signing key is not a fleet key"), -EINVAL;
    int rc = revocation_check(r, err, errlen);
    if (rc)
        return rc;
    memcpy(r->fleet_pk, fleet->pk, 32);
    if (r->kind == MESH_REVOKE_SERIAL)
        memset(r->node_pk, 0, 32);
    else
        r->serial = 0;
    uint8_t b[REVOKE_SIGNED];
    revocation_body(r, b);
    sign_ctx(REVOKE_CTX, b, sizeof b, fleet->sk, r->sig);
    return 0;
}

int mesh_identity_revocation_encode(const mesh_identity_revocation *r, uint8_t buf[MESH_ID_REVOCATION_BYTES])
{
    revocation_body(r, buf);
    memcpy(buf + REVOKE_SIGNED, r->sig, MESH_ID_SIG_BYTES);
    return MESH_ID_REVOCATION_BYTES;
}

int mesh_identity_revocation_decode(const uint8_t *buf, size_t len, mesh_identity_revocation *r, char *err,
                                    size_t errlen)
{
    if (init_sodium())
        return snprintf(err, errlen, "libsodium failed to initialise"), -ENOSYS;
    memset(r, 0, sizeof *r);
    if (len != MESH_ID_REVOCATION_BYTES)
        return snprintf(err, errlen, "revocation: %zu bytes, want %d", len, MESH_ID_REVOCATION_BYTES), -EBADMSG;
    if (memcmp(buf, REVOKE_MAGIC, 2))
        return snprintf(err, errlen, "revocation: bad magic (not a revocation record)"), -EBADMSG;
    if (buf[2] != FORMAT_VERSION)
        return snprintf(err, errlen, "revocation: version %d, this build reads %d", buf[2], FORMAT_VERSION),
               -EPROTONOSUPPORT;
    r->kind = buf[3];
    r->reason = buf[4];
    memcpy(r->fleet_pk, buf + 8, 32);
    if (r->kind == MESH_REVOKE_SERIAL) {
        r->serial = get_u64(buf + 40);
        if (!all_zero(buf + 48, 24))
            return snprintf(err, errlen, "revocation: nonzero bytes after the serial"), -EBADMSG;
    } else {
        memcpy(r->node_pk, buf + 40, 32);
    }
    r->time = (int64_t)get_u64(buf + 72);
    r->until = (int64_t)get_u64(buf + 80);
    memcpy(r->sig, buf + REVOKE_SIGNED, MESH_ID_SIG_BYTES);
    if (!all_zero(buf + 5, 3))
        return snprintf(err, errlen, "revocation: nonzero reserved bytes"), -EBADMSG;
    int rc = revocation_check(r, err, errlen);
    if (rc)
        return rc;
    if (!verify_ctx(REVOKE_CTX, buf, REVOKE_SIGNED, r->fleet_pk, r->sig))
        return snprintf(err, errlen, "revocation: bad signature"), -EKEYREJECTED;
    return 0;
}

/* ---- the revocation list --------------------------------------------------------- */
int mesh_identity_revlist_init(mesh_identity_revlist *rl, const uint8_t fleet_pk[MESH_ID_PK_BYTES], size_t max)
{
    memset(rl, 0, sizeof *rl);
    memcpy(rl->fleet_pk, fleet_pk, 32);
    rl->max = max ? max : MESH_ID_REVLIST_MAX;
    return 0;
}

void mesh_identity_revlist_free(mesh_identity_revlist *rl)
{
    free(rl->recs);
    rl->recs = NULL;
    rl->n = 0;
}

static bool same_target(const mesh_identity_revocation *a, const mesh_identity_revocation *b)
{
    if (a->kind != b->kind)
        return false;
    return a->kind == MESH_REVOKE_SERIAL ? a->serial == b->serial : !memcmp(a->node_pk, b->node_pk, 32);
}

/* Which of two records of one target a list keeps: the later until, then the
 * smaller encoding. A total order, so every merge order converges. */
static bool supersedes(const mesh_identity_revocation *a, const mesh_identity_revocation *b)
{
    if (a->until != b->until)
        return a->until > b->until;
    uint8_t ea[MESH_ID_REVOCATION_BYTES], eb[MESH_ID_REVOCATION_BYTES];
    mesh_identity_revocation_encode(a, ea);
    mesh_identity_revocation_encode(b, eb);
    return memcmp(ea, eb, sizeof ea) < 0;
}

/* Adds a record already checked (signature, fleet). */
static int revlist_put(mesh_identity_revlist *rl, const mesh_identity_revocation *r, int64_t now, char *err,
                       size_t errlen)
{
    if (r->until < now - MESH_ID_SKEW_S)
        return 0;
    for (size_t i = 0; i < rl->n; i++) {
        if (!same_target(&rl->recs[i], r))
            continue;
        if (!supersedes(r, &rl->recs[i]))
            return 0;
        rl->recs[i] = *r;
        return 1;
    }
    if (rl->n >= rl->max && !mesh_identity_revlist_prune(rl, now))
        return snprintf(err, errlen, "revocation list: full (%zu records, none expired)", rl->max), -ENOSPC;
    if (!(rl->n & (rl->n + 1)) || !rl->recs) { /* grow at 0, 1, 3, 7, ... */
        size_t cap = rl->n ? 2 * (rl->n + 1) : 1;
        mesh_identity_revocation *g = realloc(rl->recs, cap * sizeof *g);
        if (!g)
            return snprintf(err, errlen, "revocation list: out of memory"), -ENOMEM;
        rl->recs = g;
    }
    rl->recs[rl->n++] = *r;
    return 1;
}

static int revlist_check_fleet(const mesh_identity_revlist *rl, const mesh_identity_revocation *r, char *err,
                               size_t errlen)
{
    if (sodium_memcmp(r->fleet_pk, rl->fleet_pk, 32))
        return snprintf(err, errlen, "revocation: signed by another fleet"), -EPERM;
    return 0;
}

int mesh_identity_revlist_add(mesh_identity_revlist *rl, const mesh_identity_revocation *r, int64_t now,
                              char *err, size_t errlen)
{
    uint8_t b[MESH_ID_REVOCATION_BYTES];
    mesh_identity_revocation chk;
    mesh_identity_revocation_encode(r, b);
    int rc = mesh_identity_revocation_decode(b, sizeof b, &chk, err, errlen);
    if (!rc)
        rc = revlist_check_fleet(rl, &chk, err, errlen);
    return rc ? rc : revlist_put(rl, &chk, now, err, errlen);
}

const mesh_identity_revocation *mesh_identity_revlist_find(const mesh_identity_revlist *rl,
                                                           const mesh_identity_cert *c)
{
    for (size_t i = 0; i < rl->n; i++) {
        const mesh_identity_revocation *r = &rl->recs[i];
        if (r->kind == MESH_REVOKE_SERIAL ? r->serial == c->serial : !memcmp(r->node_pk, c->node_pk, 32))
            return r;
    }
    return NULL;
}

size_t mesh_identity_revlist_prune(mesh_identity_revlist *rl, int64_t now)
{
    size_t kept = 0;
    for (size_t i = 0; i < rl->n; i++)
        if (rl->recs[i].until >= now - MESH_ID_SKEW_S)
            rl->recs[kept++] = rl->recs[i];
    size_t dropped = rl->n - kept;
    rl->n = kept;
    return dropped;
}

int mesh_identity_revlist_encode(const mesh_identity_revlist *rl, uint8_t **out, size_t *len)
{
    size_t n = LIST_HEADER + rl->n * MESH_ID_REVOCATION_BYTES;
    uint8_t *b = calloc(1, n);
    if (!b)
        return -ENOMEM;
    memcpy(b, LIST_MAGIC, 2);
    b[2] = FORMAT_VERSION;
    put_u32(b + 4, (uint32_t)rl->n);
    for (size_t i = 0; i < rl->n; i++)
        mesh_identity_revocation_encode(&rl->recs[i], b + LIST_HEADER + i * MESH_ID_REVOCATION_BYTES);
    *out = b;
    *len = n;
    return 0;
}

int mesh_identity_revlist_merge(mesh_identity_revlist *rl, const uint8_t *buf, size_t len, int64_t now,
                                size_t *added, char *err, size_t errlen)
{
    if (added)
        *added = 0;
    if (len < LIST_HEADER || memcmp(buf, LIST_MAGIC, 2) || buf[3])
        return snprintf(err, errlen, "revocation list: bad header"), -EBADMSG;
    if (buf[2] != FORMAT_VERSION)
        return snprintf(err, errlen, "revocation list: version %d, this build reads %d", buf[2], FORMAT_VERSION),
               -EPROTONOSUPPORT;
    uint32_t count = get_u32(buf + 4);
    if (count > rl->max || len != LIST_HEADER + (size_t)count * MESH_ID_REVOCATION_BYTES)
        return snprintf(err, errlen, "revocation list: %zu bytes for %" PRIu32 " records (at most %zu)", len, count,
                        rl->max),
               -EBADMSG;
    mesh_identity_revocation *tmp = calloc(count ? count : 1, sizeof *tmp);
    if (!tmp)
        return snprintf(err, errlen, "revocation list: out of memory"), -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < count && !rc; i++) {
        char why[200];
        rc = mesh_identity_revocation_decode(buf + LIST_HEADER + (size_t)i * MESH_ID_REVOCATION_BYTES,
                                             MESH_ID_REVOCATION_BYTES, &tmp[i], why, sizeof why);
        if (!rc)
            rc = revlist_check_fleet(rl, &tmp[i], why, sizeof why);
        if (rc)
            snprintf(err, errlen, "revocation list: record %" PRIu32 ": %s", i + 1, why);
    }
    for (uint32_t i = 0; i < count && !rc; i++) {
        rc = revlist_put(rl, &tmp[i], now, err, errlen);
        if (rc > 0 && added)
            (*added)++;
        rc = rc > 0 ? 0 : rc;
    }
    free(tmp);
    return rc;
}

static int revlist_path(const char *state_dir, char *path, size_t n, char *err, size_t errlen)
{
    if (snprintf(path, n, "%s/%s", state_dir, MESH_ID_REVLIST_FILE) >= (int)n)
        return snprintf(err, errlen, "%s: path too long", state_dir), -ENAMETOOLONG;
    return 0;
}

int mesh_identity_revlist_save(const mesh_identity_revlist *rl, const char *state_dir, char *err, size_t errlen)
{
    char path[CORE_PATH_MAX];
    int rc = revlist_path(state_dir, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    uint8_t *b = NULL;
    size_t n = 0;
    if ((rc = mesh_identity_revlist_encode(rl, &b, &n)))
        return snprintf(err, errlen, "%s: out of memory", path), rc;
    rc = core_write_atomic(path, b, n, err, errlen);
    free(b);
    return rc;
}

int mesh_identity_revlist_load(mesh_identity_revlist *rl, const char *state_dir, int64_t now, char *err,
                               size_t errlen)
{
    char path[CORE_PATH_MAX];
    int rc = revlist_path(state_dir, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    size_t n = 0;
    char *b = core_slurp(path, &n);
    if (!b) {
        if (errno == ENOENT)
            return 0;
        rc = -errno;
        return snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-rc)), rc;
    }
    char why[300];
    rc = mesh_identity_revlist_merge(rl, (const uint8_t *)b, n, now, NULL, why, sizeof why);
    free(b);
    if (rc)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}
