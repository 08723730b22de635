/* test_identity.c: the mesh's identities and trust roots with real files in a
 * temporary dir: key files (creation, mode, corruption), the X25519 key
 * derived for Noise, certificates (every way verification fails), invite
 * tokens (checksum, alphabet, seeds), revocation records and the bounded,
 * mergeable, persisted revocation list, and fuzzed parsers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "mesh/identity.h"

#define NOW 1800000000LL

typedef struct {
    char dir[64];
    mesh_identity_key fleet, node;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    char err[512] = "";
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-mesh-id-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, MESH_ID_FLEET_KEY_FILE);
    if (mesh_identity_key_create(path, MESH_KEY_FLEET, &f->fleet, err, sizeof err))
        return fprintf(stderr, "%s\n", err), -1;
    if (mesh_identity_node_key(f->dir, &f->node, NULL, err, sizeof err))
        return fprintf(stderr, "%s\n", err), -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    int rc = system(cmd);
    free(f);
    return rc;
}

static void path_in(const fixture *f, const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", f->dir, name);
}

static void write_bytes(const char *path, const void *b, size_t n, mode_t mode)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static mesh_identity_cert make_cert(const fixture *f, const char *id)
{
    mesh_identity_cert c = {0};
    char err[256] = "";
    memcpy(c.node_pk, f->node.pk, 32);
    snprintf(c.node_id, sizeof c.node_id, "%s", id);
    c.roles = MESH_ROLE_REASONING | MESH_ROLE_RELAY;
    c.not_before = NOW - 3600;
    c.not_after = NOW + 86400;
    assert_int_equal(mesh_identity_cert_sign(&c, &f->fleet, err, sizeof err), 0);
    return c;
}

static void assert_cert_equal(const mesh_identity_cert *a, const mesh_identity_cert *b)
{
    assert_memory_equal(a->fleet_pk, b->fleet_pk, 32);
    assert_memory_equal(a->node_pk, b->node_pk, 32);
    assert_string_equal(a->node_id, b->node_id);
    assert_int_equal(a->roles, b->roles);
    assert_int_equal(a->serial, b->serial);
    assert_int_equal(a->not_before, b->not_before);
    assert_int_equal(a->not_after, b->not_after);
    assert_memory_equal(a->sig, b->sig, 64);
}

/* ---- keys ------------------------------------------------------------------ */
static void test_node_key_created_once(void **state)
{
    fixture *f = *state;
    char err[512] = "", path[128];
    path_in(f, MESH_ID_NODE_KEY_FILE, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, MESH_ID_KEY_FILE_BYTES);
    mesh_identity_key again;
    bool created = true;
    assert_int_equal(mesh_identity_node_key(f->dir, &again, &created, err, sizeof err), 0);
    assert_false(created);
    assert_memory_equal(again.pk, f->node.pk, 32);
    assert_memory_equal(again.sk, f->node.sk, 64);
    /* a fresh dir makes a new, different key */
    char dir2[128];
    snprintf(dir2, sizeof dir2, "%s/other", f->dir);
    assert_int_equal(mkdir(dir2, 0700), 0);
    assert_int_equal(mesh_identity_node_key(dir2, &again, &created, err, sizeof err), 0);
    assert_true(created);
    assert_memory_not_equal(again.pk, f->node.pk, 32);
    /* an empty file (creation cut short before its write) is replaced */
    char empty[160];
    snprintf(empty, sizeof empty, "%s/%s", dir2, MESH_ID_NODE_KEY_FILE);
    write_bytes(empty, "", 0, 0600);
    assert_int_equal(mesh_identity_node_key(dir2, &again, &created, err, sizeof err), 0);
    assert_true(created);
    struct stat st2;
    assert_int_equal(stat(empty, &st2), 0);
    assert_int_equal(st2.st_size, MESH_ID_KEY_FILE_BYTES);
    assert_int_equal(st2.st_mode & 0777, 0600);
    /* the fleet key refuses to be created twice */
    path_in(f, MESH_ID_FLEET_KEY_FILE, path, sizeof path);
    assert_int_equal(mesh_identity_key_create(path, MESH_KEY_FLEET, &again, err, sizeof err), -EEXIST);
    assert_non_null(strstr(err, path));
}

static void test_key_file_errors(void **state)
{
    fixture *f = *state;
    char err[512] = "", path[128], fpath[128];
    path_in(f, MESH_ID_NODE_KEY_FILE, path, sizeof path);
    path_in(f, MESH_ID_FLEET_KEY_FILE, fpath, sizeof fpath);
    mesh_identity_key k;
    uint8_t good[MESH_ID_KEY_FILE_BYTES];
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(good, 1, sizeof good, fp), sizeof good);
    fclose(fp);

    assert_int_equal(chmod(path, 0644), 0); /* others may read it */
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "0644"));
    /* the daemon never replaces a key it cannot trust: node_key answers the error too */
    assert_int_equal(mesh_identity_node_key(f->dir, &k, NULL, err, sizeof err), -EPERM);

    write_bytes(path, good, sizeof good - 1, 0600); /* cut */
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "71 bytes"));

    uint8_t bad[MESH_ID_KEY_FILE_BYTES];
    memcpy(bad, good, sizeof bad);
    bad[50] ^= 1; /* public key no longer matches the seed */
    write_bytes(path, bad, sizeof bad, 0600);
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "does not match"));

    memcpy(bad, good, sizeof bad);
    bad[0] = 'X';
    write_bytes(path, bad, sizeof bad, 0600);
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "magic"));

    memcpy(bad, good, sizeof bad);
    bad[2] = 9;
    write_bytes(path, bad, sizeof bad, 0600);
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), -EPROTONOSUPPORT);

    /* a fleet key is not a node key */
    assert_int_equal(mesh_identity_key_load(fpath, MESH_KEY_NODE, &k, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "holds a fleet key"));

    /* a symlink is not followed */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink(fpath, path), 0);
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_FLEET, &k, err, sizeof err), -ELOOP);

    /* missing: a clear -ENOENT naming the file */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, path));
    write_bytes(path, good, sizeof good, 0600); /* restored */
    assert_int_equal(mesh_identity_key_load(path, MESH_KEY_NODE, &k, err, sizeof err), 0);
    assert_memory_equal(k.pk, f->node.pk, 32);
}

static void test_x25519_derived(void **state)
{
    fixture *f = *state;
    uint8_t xsk_a[32], xpk_a[32], xsk_b[32], xpk_b[32], peer_a[32], peer_b[32], s1[32], s2[32];
    assert_int_equal(mesh_identity_x25519(&f->node, xsk_a, xpk_a), 0);
    assert_int_equal(mesh_identity_x25519(&f->fleet, xsk_b, xpk_b), 0);
    /* what a peer derives from the certified Ed25519 key is the Noise static key */
    assert_int_equal(mesh_identity_x25519_pk(f->node.pk, peer_a), 0);
    assert_int_equal(mesh_identity_x25519_pk(f->fleet.pk, peer_b), 0);
    assert_memory_equal(peer_a, xpk_a, 32);
    assert_memory_equal(peer_b, xpk_b, 32);
    assert_int_equal(crypto_scalarmult(s1, xsk_a, peer_b), 0);
    assert_int_equal(crypto_scalarmult(s2, xsk_b, peer_a), 0);
    assert_memory_equal(s1, s2, 32);
    uint8_t junk[32];
    memset(junk, 0xff, sizeof junk); /* not a point */
    assert_int_equal(mesh_identity_x25519_pk(junk, peer_a), -EINVAL);
}

static void test_pk_hex(void **state)
{
    fixture *f = *state;
    char hex[65], err[256];
    uint8_t pk[32];
    mesh_identity_pk_hex(f->node.pk, hex);
    assert_int_equal(mesh_identity_pk_parse(hex, pk, err, sizeof err), 0);
    assert_memory_equal(pk, f->node.pk, 32);
    hex[10] = 'g';
    assert_int_equal(mesh_identity_pk_parse(hex, pk, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "character 11"));
    assert_int_equal(mesh_identity_pk_parse("abcd", pk, err, sizeof err), -EBADMSG);
}

/* ---- certificates ------------------------------------------------------------- */
static void test_cert_roundtrip_and_verify(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    mesh_identity_cert c = make_cert(f, "web-01.prod");
    assert_int_not_equal(c.serial, 0);
    uint8_t b[MESH_ID_CERT_MAX];
    int n = mesh_identity_cert_encode(&c, b, sizeof b, err, sizeof err);
    assert_int_equal(n, MESH_ID_CERT_FIXED + 11 + MESH_ID_SIG_BYTES);
    assert_true(n <= 224); /* fits a Noise handshake payload in a 1,400-byte packet many times over */
    mesh_identity_cert d;
    assert_int_equal(mesh_identity_cert_decode(b, (size_t)n, &d, err, sizeof err), 0);
    assert_string_equal(d.node_id, "web-01.prod");
    assert_int_equal(d.roles, MESH_ROLE_REASONING | MESH_ROLE_RELAY);
    assert_int_equal(d.serial, c.serial);
    assert_int_equal(d.not_after, NOW + 86400);
    assert_memory_equal(d.node_pk, f->node.pk, 32);
    assert_int_equal(mesh_identity_cert_verify(&d, f->fleet.pk, NULL, NOW, MESH_ID_SKEW_S, err, sizeof err), 0);

    /* every byte of the signed part and of the signature matters */
    for (int i = 4; i < n; i++) {
        uint8_t m[MESH_ID_CERT_MAX];
        memcpy(m, b, (size_t)n);
        m[i] ^= 0x20;
        mesh_identity_cert e;
        int rc = mesh_identity_cert_decode(m, (size_t)n, &e, err, sizeof err);
        if (rc == 0)
            rc = mesh_identity_cert_verify(&e, f->fleet.pk, NULL, NOW, MESH_ID_SKEW_S, err, sizeof err);
        assert_int_not_equal(rc, 0);
        if (i >= 36 && i < 4 + 32 + 32) /* node key changed: only the signature can tell */
            assert_int_equal(rc, -EKEYREJECTED);
    }
}

static void test_cert_errors(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    mesh_identity_cert c = make_cert(f, "db-1");
    int64_t skew = MESH_ID_SKEW_S;

    /* wrong fleet */
    mesh_identity_key other;
    char path[128];
    path_in(f, "other-fleet.key", path, sizeof path);
    assert_int_equal(mesh_identity_key_create(path, MESH_KEY_FLEET, &other, err, sizeof err), 0);
    assert_int_equal(mesh_identity_cert_verify(&c, other.pk, NULL, NOW, skew, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "fleet"));
    /* a certificate from the other fleet claiming ours: bad signature */
    mesh_identity_cert forged = c;
    assert_int_equal(mesh_identity_cert_sign(&forged, &other, err, sizeof err), 0);
    memcpy(forged.fleet_pk, f->fleet.pk, 32);
    assert_int_equal(mesh_identity_cert_verify(&forged, f->fleet.pk, NULL, NOW, skew, err, sizeof err),
                     -EKEYREJECTED);
    assert_non_null(strstr(err, "bad signature"));
    /* roles widened after signing */
    mesh_identity_cert wider = c;
    wider.roles = MESH_ROLE_ALL;
    assert_int_equal(mesh_identity_cert_verify(&wider, f->fleet.pk, NULL, NOW, skew, err, sizeof err),
                     -EKEYREJECTED);

    /* validity window with the skew allowance on both sides */
    assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, NULL, c.not_after + skew, skew, err, sizeof err), 0);
    assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, NULL, c.not_after + skew + 1, skew, err, sizeof err),
                     -EKEYEXPIRED);
    assert_non_null(strstr(err, "expired"));
    assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, NULL, c.not_before - skew, skew, err, sizeof err), 0);
    assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, NULL, c.not_before - skew - 1, skew, err, sizeof err),
                     -EAGAIN);
    assert_non_null(strstr(err, "not valid for another"));
    /* the extremes of the window do not overflow */
    mesh_identity_cert forever = c;
    forever.not_before = 0;
    forever.not_after = INT64_MAX;
    assert_int_equal(mesh_identity_cert_sign(&forever, &f->fleet, err, sizeof err), 0);
    assert_int_equal(mesh_identity_cert_verify(&forever, f->fleet.pk, NULL, NOW, skew, err, sizeof err), 0);

    /* signing refuses bad fields */
    mesh_identity_cert bad = c;
    snprintf(bad.node_id, sizeof bad.node_id, "has space");
    assert_int_equal(mesh_identity_cert_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "character 4"));
    bad = c;
    bad.node_id[0] = 0;
    assert_int_equal(mesh_identity_cert_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
    bad = c;
    bad.not_after = bad.not_before;
    assert_int_equal(mesh_identity_cert_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
    bad = c;
    bad.not_before = -1;
    assert_int_equal(mesh_identity_cert_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "1970"));
    bad = c;
    bad.roles = 0x100;
    assert_int_equal(mesh_identity_cert_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
    assert_int_equal(mesh_identity_cert_sign(&bad, &f->node, err, sizeof err), -EINVAL); /* not a fleet key */

    /* strict parse: lengths, magic, version */
    uint8_t b[MESH_ID_CERT_MAX + 8];
    int n = mesh_identity_cert_encode(&c, b, sizeof b, err, sizeof err);
    assert_true(n > 0);
    mesh_identity_cert d;
    assert_int_equal(mesh_identity_cert_decode(b, (size_t)n - 1, &d, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "node id length"));
    assert_int_equal(mesh_identity_cert_decode(b, 10, &d, err, sizeof err), -EBADMSG);
    b[n] = 0;
    assert_int_equal(mesh_identity_cert_decode(b, (size_t)n + 1, &d, err, sizeof err), -EBADMSG);
    b[2] = 2;
    assert_int_equal(mesh_identity_cert_decode(b, (size_t)n, &d, err, sizeof err), -EPROTONOSUPPORT);
    b[2] = 1;
    b[0] = 'X';
    assert_int_equal(mesh_identity_cert_decode(b, (size_t)n, &d, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "magic"));
    assert_int_equal(mesh_identity_cert_encode(&c, b, 50, err, sizeof err), -ENOSPC);
}

static void test_roles(void **state)
{
    (void)state;
    char buf[64], err[256];
    uint32_t r = 0;
    assert_int_equal(mesh_identity_roles_parse("relay,reasoning", &r, err, sizeof err), 0);
    assert_int_equal(r, MESH_ROLE_RELAY | MESH_ROLE_REASONING);
    mesh_identity_roles_format(r, buf, sizeof buf);
    assert_string_equal(buf, "reasoning,relay");
    assert_int_equal(mesh_identity_roles_parse("relay,gpu", &r, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "'gpu'"));
    assert_int_equal(mesh_identity_roles_parse("tool,", &r, err, sizeof err), -EINVAL);
    assert_int_equal(mesh_identity_roles_parse("", &r, err, sizeof err), 0);
    assert_int_equal(r, 0);
}

/* ---- tokens --------------------------------------------------------------------- */
static mesh_identity_token make_token(const fixture *f)
{
    mesh_identity_token t = {0};
    t.cert = make_cert(f, "cache-7");
    t.nseeds = 3;
    snprintf(t.seeds[0], sizeof t.seeds[0], "10.0.0.1:7946");
    snprintf(t.seeds[1], sizeof t.seeds[1], "seed.example.org:7946");
    snprintf(t.seeds[2], sizeof t.seeds[2], "[fd00::1]:7946");
    return t;
}

static void test_token_roundtrip(void **state)
{
    fixture *f = *state;
    char err[512] = "", text[MESH_ID_TOKEN_MAX];
    mesh_identity_token t = make_token(f);
    assert_int_equal(mesh_identity_token_encode(&t, text, sizeof text, err, sizeof err), 0);
    assert_int_equal(strncmp(text, "ippoc1", 6), 0);
    assert_int_equal(strspn(text + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                     strlen(text) - 6);
    print_message("token with 3 seeds: %zu characters\n", strlen(text));
    mesh_identity_token d;
    assert_int_equal(mesh_identity_token_decode(text, &d, err, sizeof err), 0);
    assert_int_equal(d.nseeds, 3);
    assert_string_equal(d.seeds[2], "[fd00::1]:7946");
    assert_cert_equal(&d.cert, &t.cert);
    assert_int_equal(mesh_identity_token_accept(&d, &f->node, NOW, MESH_ID_SKEW_S, err, sizeof err), 0);
    /* pasted with a newline and spaces around it */
    char padded[MESH_ID_TOKEN_MAX + 8];
    snprintf(padded, sizeof padded, "  %s\n", text);
    assert_int_equal(mesh_identity_token_decode(padded, &d, err, sizeof err), 0);
    /* the token is for this node's key only */
    mesh_identity_key fleet_as_node = f->fleet;
    assert_int_equal(mesh_identity_token_accept(&d, &fleet_as_node, NOW, MESH_ID_SKEW_S, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "made for node key"));
    /* and only while it is valid */
    assert_int_equal(mesh_identity_token_accept(&d, &f->node, NOW + 2 * 86400, MESH_ID_SKEW_S, err, sizeof err),
                     -EKEYEXPIRED);
    /* no seeds is fine (the seeds may come on the command line) */
    t.nseeds = 0;
    assert_int_equal(mesh_identity_token_encode(&t, text, sizeof text, err, sizeof err), 0);
    assert_int_equal(mesh_identity_token_decode(text, &d, err, sizeof err), 0);
    assert_int_equal(d.nseeds, 0);
}

static void test_token_errors(void **state)
{
    fixture *f = *state;
    char err[512] = "", text[MESH_ID_TOKEN_MAX], m[MESH_ID_TOKEN_MAX];
    mesh_identity_token t = make_token(f), d;
    assert_int_equal(mesh_identity_token_encode(&t, text, sizeof text, err, sizeof err), 0);
    size_t len = strlen(text);

    /* one mistyped character: the checksum says so */
    snprintf(m, sizeof m, "%s", text);
    m[40] = m[40] == 'A' ? 'B' : 'A';
    assert_int_equal(mesh_identity_token_decode(m, &d, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, "checksum"));
    /* two characters swapped */
    snprintf(m, sizeof m, "%s", text);
    for (size_t i = 30; i < len - 1; i++) {
        if (m[i] != m[i + 1]) {
            char c = m[i];
            m[i] = m[i + 1];
            m[i + 1] = c;
            break;
        }
    }
    assert_int_equal(mesh_identity_token_decode(m, &d, err, sizeof err), -EILSEQ);
    /* a character outside base64url, with its position */
    snprintf(m, sizeof m, "%s", text);
    m[20] = '+';
    assert_int_equal(mesh_identity_token_decode(m, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "character 21"));
    /* not a token at all */
    assert_int_equal(mesh_identity_token_decode("hello", &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "ippoc1"));
    assert_int_equal(mesh_identity_token_decode("", &d, err, sizeof err), -EINVAL);
    assert_int_equal(mesh_identity_token_decode("ippoc1", &d, err, sizeof err), -EBADMSG);
    /* cut short: checksum or base64 */
    for (size_t cut = 7; cut < len; cut += 13) {
        snprintf(m, sizeof m, "%.*s", (int)cut, text);
        int rc = mesh_identity_token_decode(m, &d, err, sizeof err);
        assert_true(rc == -EILSEQ || rc == -EINVAL || rc == -EBADMSG);
    }
    /* too long */
    memset(m, 'A', sizeof m - 1);
    memcpy(m, "ippoc1", 6);
    m[sizeof m - 1] = 0;
    assert_int_equal(mesh_identity_token_decode(m, &d, err, sizeof err), -EBADMSG);
    /* bad seeds are refused when the token is made */
    const char *bad[] = {"10.0.0.1", "host:0", "host:65536", ":7946", "ho st:1", "[fd00::1:7946", "h:12a", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mesh_identity_token b = t;
        snprintf(b.seeds[0], sizeof b.seeds[0], "%s", bad[i]);
        assert_int_equal(mesh_identity_token_encode(&b, m, sizeof m, err, sizeof err), -EBADMSG);
        assert_non_null(strstr(err, "seed address"));
    }
    t.nseeds = MESH_ID_SEEDS_MAX + 1;
    assert_int_equal(mesh_identity_token_encode(&t, m, sizeof m, err, sizeof err), -EINVAL);
}

static void test_member_file(void **state)
{
    fixture *f = *state;
    char err[512] = "", path[128];
    mesh_identity_token t = make_token(f), d;
    assert_int_equal(mesh_identity_member_load(f->dir, &d, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "not joined"));
    assert_int_equal(mesh_identity_member_save(f->dir, &t, err, sizeof err), 0);
    assert_int_equal(mesh_identity_member_load(f->dir, &d, err, sizeof err), 0);
    assert_cert_equal(&d.cert, &t.cert);
    assert_int_equal(d.nseeds, 3);
    assert_string_equal(d.seeds[1], "seed.example.org:7946");
    path_in(f, MESH_ID_MEMBER_FILE, path, sizeof path);
    char text[MESH_ID_TOKEN_MAX];
    assert_int_equal(mesh_identity_token_encode(&t, text, sizeof text, err, sizeof err), 0);
    text[30] = text[30] == 'x' ? 'y' : 'x'; /* the file was edited by hand */
    write_bytes(path, text, strlen(text), 0644);
    assert_int_equal(mesh_identity_member_load(f->dir, &d, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, path));
}

/* ---- revocation ----------------------------------------------------------------- */
static mesh_identity_revocation make_rev(const fixture *f, int kind, uint64_t serial, const uint8_t *pk,
                                         int64_t until)
{
    mesh_identity_revocation r = {0};
    char err[256] = "";
    r.kind = kind;
    r.reason = MESH_REASON_KEY_COMPROMISE;
    r.serial = serial;
    if (pk)
        memcpy(r.node_pk, pk, 32);
    r.time = NOW - 10;
    r.until = until;
    assert_int_equal(mesh_identity_revocation_sign(&r, &f->fleet, err, sizeof err), 0);
    return r;
}

static void test_revocation_record(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    mesh_identity_revocation r = make_rev(f, MESH_REVOKE_SERIAL, 42, NULL, NOW + 100), d;
    uint8_t b[MESH_ID_REVOCATION_BYTES];
    assert_int_equal(mesh_identity_revocation_encode(&r, b), MESH_ID_REVOCATION_BYTES);
    assert_int_equal(mesh_identity_revocation_decode(b, sizeof b, &d, err, sizeof err), 0);
    assert_int_equal(d.serial, 42);
    assert_int_equal(d.reason, MESH_REASON_KEY_COMPROMISE);
    assert_string_equal(mesh_identity_reason_name(d.reason), "key-compromise");
    for (size_t i = 0; i < sizeof b; i++) { /* every byte is covered */
        uint8_t m[sizeof b];
        memcpy(m, b, sizeof b);
        m[i] ^= 0x01;
        assert_int_not_equal(mesh_identity_revocation_decode(m, sizeof m, &d, err, sizeof err), 0);
    }
    b[60] ^= 1; /* inside the signed target, past the serial: reserved */
    assert_int_equal(mesh_identity_revocation_decode(b, sizeof b, &d, err, sizeof err), -EBADMSG);
    b[60] ^= 1;
    b[45] ^= 1; /* the serial itself: the signature */
    assert_int_equal(mesh_identity_revocation_decode(b, sizeof b, &d, err, sizeof err), -EKEYREJECTED);
    assert_int_equal(mesh_identity_revocation_decode(b, sizeof b - 1, &d, err, sizeof err), -EBADMSG);
    mesh_identity_revocation bad = r;
    bad.until = bad.time - 1;
    assert_int_equal(mesh_identity_revocation_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
    bad = r;
    bad.kind = 7;
    assert_int_equal(mesh_identity_revocation_sign(&bad, &f->fleet, err, sizeof err), -EBADMSG);
}

static void test_revoked_cert(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    mesh_identity_cert c = make_cert(f, "gone-1");
    mesh_identity_revlist rl;
    mesh_identity_revlist_init(&rl, f->fleet.pk, 0);
    assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, &rl, NOW, MESH_ID_SKEW_S, err, sizeof err), 0);
    mesh_identity_revocation r = make_rev(f, MESH_REVOKE_SERIAL, c.serial, NULL, c.not_after);
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, NOW, err, sizeof err), 1);
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, NOW, err, sizeof err), 0); /* known */
    assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, &rl, NOW, MESH_ID_SKEW_S, err, sizeof err),
                     -EKEYREVOKED);
    assert_non_null(strstr(err, "revoked by serial"));
    assert_non_null(strstr(err, "key-compromise"));
    /* a new certificate for the same key passes; revoking the key stops every one */
    mesh_identity_cert c2 = make_cert(f, "gone-1");
    assert_int_equal(mesh_identity_cert_verify(&c2, f->fleet.pk, &rl, NOW, MESH_ID_SKEW_S, err, sizeof err), 0);
    mesh_identity_revocation rk = make_rev(f, MESH_REVOKE_KEY, 0, f->node.pk, NOW + 86400 * 365);
    assert_int_equal(mesh_identity_revlist_add(&rl, &rk, NOW, err, sizeof err), 1);
    assert_int_equal(mesh_identity_cert_verify(&c2, f->fleet.pk, &rl, NOW, MESH_ID_SKEW_S, err, sizeof err),
                     -EKEYREVOKED);
    assert_non_null(strstr(err, "node key"));
    /* another fleet's revocation is refused; a forged one too */
    mesh_identity_key other;
    char path[128];
    path_in(f, "other2.key", path, sizeof path);
    assert_int_equal(mesh_identity_key_create(path, MESH_KEY_FLEET, &other, err, sizeof err), 0);
    mesh_identity_revocation ro = r;
    ro.serial = 99;
    assert_int_equal(mesh_identity_revocation_sign(&ro, &other, err, sizeof err), 0);
    assert_int_equal(mesh_identity_revlist_add(&rl, &ro, NOW, err, sizeof err), -EPERM);
    ro = r;
    ro.serial = 99; /* our fleet, old signature */
    assert_int_equal(mesh_identity_revlist_add(&rl, &ro, NOW, err, sizeof err), -EKEYREJECTED);
    assert_int_equal(rl.n, 2);
    mesh_identity_revlist_free(&rl);
}

static void test_revlist_bound_and_prune(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    mesh_identity_revlist rl;
    mesh_identity_revlist_init(&rl, f->fleet.pk, 8);
    for (int i = 0; i < 8; i++) {
        mesh_identity_revocation r = make_rev(f, MESH_REVOKE_SERIAL, 100 + (uint64_t)i, NULL, NOW + 10 * i);
        assert_int_equal(mesh_identity_revlist_add(&rl, &r, NOW, err, sizeof err), 1);
    }
    mesh_identity_revocation r = make_rev(f, MESH_REVOKE_SERIAL, 500, NULL, NOW + 1000);
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, NOW, err, sizeof err), -ENOSPC);
    assert_non_null(strstr(err, "full"));
    /* later, the first records' certificates have expired: they make room */
    int64_t later = NOW + 25 + MESH_ID_SKEW_S;
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, later, err, sizeof err), 1);
    assert_int_equal(rl.n, 6); /* 100, 101, 102 dropped (until 0, 10, 20); 500 added */
    /* an expired record is not taken in */
    mesh_identity_revocation old = make_rev(f, MESH_REVOKE_SERIAL, 600, NULL, NOW);
    assert_int_equal(mesh_identity_revlist_add(&rl, &old, later, err, sizeof err), 0);
    /* a revocation forever (until INT64_MAX) is kept, and pruning does not overflow */
    mesh_identity_revocation ever = make_rev(f, MESH_REVOKE_KEY, 0, f->node.pk, INT64_MAX);
    assert_int_equal(mesh_identity_revlist_add(&rl, &ever, later, err, sizeof err), 1);
    assert_int_equal(mesh_identity_revlist_prune(&rl, INT64_MAX / 2), 6);
    assert_int_equal(rl.n, 1);
    mesh_identity_revlist_free(&rl);
}

static void encode_sorted(mesh_identity_revlist *rl, uint8_t **out, size_t *len)
{
    /* lists compare as sets: sort the records by their bytes */
    assert_int_equal(mesh_identity_revlist_encode(rl, out, len), 0);
    size_t n = (*len - 8) / MESH_ID_REVOCATION_BYTES;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            uint8_t *a = *out + 8 + (j - 1) * MESH_ID_REVOCATION_BYTES, *b = a + MESH_ID_REVOCATION_BYTES;
            if (memcmp(a, b, MESH_ID_REVOCATION_BYTES) <= 0)
                break;
            uint8_t t[MESH_ID_REVOCATION_BYTES];
            memcpy(t, a, sizeof t);
            memcpy(a, b, sizeof t);
            memcpy(b, t, sizeof t);
        }
}

static void test_revlist_merge_converges(void **state)
{
    fixture *f = *state;
    char err[512] = "";
    mesh_identity_revlist a, b;
    mesh_identity_revlist_init(&a, f->fleet.pk, 0);
    mesh_identity_revlist_init(&b, f->fleet.pk, 0);
    /* a and b hold different records, two of them for one target */
    mesh_identity_revocation r1 = make_rev(f, MESH_REVOKE_SERIAL, 1, NULL, NOW + 100);
    mesh_identity_revocation r2 = make_rev(f, MESH_REVOKE_SERIAL, 2, NULL, NOW + 100);
    mesh_identity_revocation r1b = make_rev(f, MESH_REVOKE_SERIAL, 1, NULL, NOW + 500);
    mesh_identity_revocation k = make_rev(f, MESH_REVOKE_KEY, 0, f->node.pk, NOW + 100);
    assert_int_equal(mesh_identity_revlist_add(&a, &r1, NOW, err, sizeof err), 1);
    assert_int_equal(mesh_identity_revlist_add(&a, &k, NOW, err, sizeof err), 1);
    assert_int_equal(mesh_identity_revlist_add(&b, &r2, NOW, err, sizeof err), 1);
    assert_int_equal(mesh_identity_revlist_add(&b, &r1b, NOW, err, sizeof err), 1);
    uint8_t *wa, *wb;
    size_t la, lb, added = 0;
    assert_int_equal(mesh_identity_revlist_encode(&a, &wa, &la), 0);
    assert_int_equal(mesh_identity_revlist_encode(&b, &wb, &lb), 0);
    assert_int_equal(mesh_identity_revlist_merge(&a, wb, lb, NOW, &added, err, sizeof err), 0);
    assert_int_equal(added, 2); /* r2, and r1b superseding r1 */
    assert_int_equal(mesh_identity_revlist_merge(&b, wa, la, NOW, &added, err, sizeof err), 0);
    assert_int_equal(added, 1); /* k; r1 is superseded by r1b */
    free(wa);
    free(wb);
    encode_sorted(&a, &wa, &la);
    encode_sorted(&b, &wb, &lb);
    assert_int_equal(la, 8 + 3 * MESH_ID_REVOCATION_BYTES);
    assert_int_equal(la, lb);
    assert_memory_equal(wa, wb, la);
    /* merging again changes nothing */
    assert_int_equal(mesh_identity_revlist_merge(&a, wb, lb, NOW, &added, err, sizeof err), 0);
    assert_int_equal(added, 0);
    /* one bad record rejects the whole message, naming it */
    wb[8 + MESH_ID_REVOCATION_BYTES + 100] ^= 1;
    mesh_identity_revlist c;
    mesh_identity_revlist_init(&c, f->fleet.pk, 0);
    assert_int_equal(mesh_identity_revlist_merge(&c, wb, lb, NOW, &added, err, sizeof err), -EKEYREJECTED);
    assert_non_null(strstr(err, "record 2"));
    assert_int_equal(c.n, 0);
    assert_int_equal(mesh_identity_revlist_merge(&c, wb, lb - 1, NOW, &added, err, sizeof err), -EBADMSG);
    free(wa);
    free(wb);
    mesh_identity_revlist_free(&a);
    mesh_identity_revlist_free(&b);
    mesh_identity_revlist_free(&c);
}

static void test_revlist_persisted(void **state)
{
    fixture *f = *state;
    char err[512] = "", path[128];
    mesh_identity_revlist rl, back;
    mesh_identity_revlist_init(&rl, f->fleet.pk, 0);
    mesh_identity_revlist_init(&back, f->fleet.pk, 0);
    /* no file: empty */
    assert_int_equal(mesh_identity_revlist_load(&back, f->dir, NOW, err, sizeof err), 0);
    assert_int_equal(back.n, 0);
    for (uint64_t s = 1; s <= 5; s++) {
        mesh_identity_revocation r = make_rev(f, MESH_REVOKE_SERIAL, s, NULL, NOW + 100);
        assert_int_equal(mesh_identity_revlist_add(&rl, &r, NOW, err, sizeof err), 1);
    }
    assert_int_equal(mesh_identity_revlist_save(&rl, f->dir, err, sizeof err), 0);
    assert_int_equal(mesh_identity_revlist_load(&back, f->dir, NOW, err, sizeof err), 0);
    assert_int_equal(back.n, 5);
    mesh_identity_cert c = make_cert(f, "x");
    c.serial = 3;
    assert_non_null(mesh_identity_revlist_find(&back, &c));
    /* a corrupt file is an error naming it */
    path_in(f, MESH_ID_REVLIST_FILE, path, sizeof path);
    write_bytes(path, "ILjunk", 6, 0644);
    mesh_identity_revlist_free(&back);
    mesh_identity_revlist_init(&back, f->fleet.pk, 0);
    assert_int_equal(mesh_identity_revlist_load(&back, f->dir, NOW, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, path));
    /* another fleet's list is refused */
    mesh_identity_revlist_free(&back);
    assert_int_equal(mesh_identity_revlist_save(&rl, f->dir, err, sizeof err), 0);
    mesh_identity_revlist_init(&back, f->node.pk, 0);
    assert_int_equal(mesh_identity_revlist_load(&back, f->dir, NOW, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "another fleet"));
    mesh_identity_revlist_free(&back);
    mesh_identity_revlist_free(&rl);
}

/* ---- fuzz: random and mutated input never crashes, never passes forged --------- */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void mutate(uint8_t *b, size_t *len, size_t cap)
{
    int k = 1 + (int)(rnd() % 4);
    for (int i = 0; i < k; i++) {
        switch (rnd() % 5) {
        case 0: if (*len) b[rnd() % *len] ^= (uint8_t)(1u << (rnd() % 8)); break;
        case 1: if (*len) b[rnd() % *len] = (uint8_t)rnd(); break;
        case 2: if (*len) *len = rnd() % *len; break;
        case 3: if (*len < cap) b[(*len)++] = (uint8_t)rnd(); break;
        default: if (*len > 1) { size_t a = rnd() % *len, c = rnd() % *len; uint8_t t = b[a]; b[a] = b[c]; b[c] = t; }
        }
    }
}

static void test_fuzz(void **state)
{
    fixture *f = *state;
    char err[512], text[MESH_ID_TOKEN_MAX];
    mesh_identity_token t = make_token(f), d;
    assert_int_equal(mesh_identity_token_encode(&t, text, sizeof text, err, sizeof err), 0);
    size_t tlen = strlen(text);
    uint8_t cert[MESH_ID_CERT_MAX];
    int clen = mesh_identity_cert_encode(&t.cert, cert, sizeof cert, err, sizeof err);
    mesh_identity_revocation r = make_rev(f, MESH_REVOKE_KEY, 0, f->node.pk, NOW + 100);
    uint8_t rec[MESH_ID_REVOCATION_BYTES];
    mesh_identity_revocation_encode(&r, rec);
    mesh_identity_revlist rl;
    mesh_identity_revlist_init(&rl, f->fleet.pk, 0);
    assert_int_equal(mesh_identity_revlist_add(&rl, &r, NOW, err, sizeof err), 1);
    uint8_t *list;
    size_t llen;
    assert_int_equal(mesh_identity_revlist_encode(&rl, &list, &llen), 0);
    int passed = 0;
    const int rounds = 20000;
    for (int i = 0; i < rounds; i++) {
        uint8_t b[MESH_ID_TOKEN_MAX + 16];
        size_t n;
        /* token text: mutated, or random base64url after the prefix */
        if (i % 4) {
            memcpy(b, text, tlen);
            n = tlen;
            mutate(b, &n, MESH_ID_TOKEN_MAX - 1);
        } else {
            n = 6 + rnd() % 1800;
            memcpy(b, "ippoc1", 6);
            for (size_t j = 6; j < n; j++)
                b[j] = (uint8_t)"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[rnd() % 64];
        }
        b[n] = 0;
        if (mesh_identity_token_decode((char *)b, &d, err, sizeof err) == 0) {
            /* only a mutation that left the meaning alone may pass */
            assert_cert_equal(&d.cert, &t.cert);
            passed++;
        }
        /* certificate bytes */
        memcpy(b, cert, (size_t)clen);
        n = (size_t)clen;
        mutate(b, &n, sizeof b);
        mesh_identity_cert c;
        if (mesh_identity_cert_decode(b, n, &c, err, sizeof err) == 0 &&
            mesh_identity_cert_verify(&c, f->fleet.pk, NULL, NOW, MESH_ID_SKEW_S, err, sizeof err) == 0)
            assert_cert_equal(&c, &t.cert);
        /* revocation record and list */
        memcpy(b, rec, sizeof rec);
        n = sizeof rec;
        mutate(b, &n, sizeof b);
        mesh_identity_revocation x;
        if (mesh_identity_revocation_decode(b, n, &x, err, sizeof err) == 0)
            assert_memory_equal(b, rec, sizeof rec);
        uint8_t lb[2 * MESH_ID_REVOCATION_BYTES];
        memcpy(lb, list, llen);
        n = llen;
        mutate(lb, &n, sizeof lb);
        mesh_identity_revlist_merge(&rl, lb, n, NOW, NULL, err, sizeof err);
        assert_true(rl.n == 1);
    }
    print_message("fuzz: %d rounds x 4 parsers, %d mutated tokens decoded to the original\n", rounds, passed);
    free(list);
    mesh_identity_revlist_free(&rl);
}

/* ---- cost: what a handshake pays to check a certificate ------------------------ */
static void test_verify_cost(void **state)
{
    fixture *f = *state;
    char err[256];
    mesh_identity_cert c = make_cert(f, "bench");
    struct timespec a, b;
    const int n = 2000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < n; i++)
        assert_int_equal(mesh_identity_cert_verify(&c, f->fleet.pk, NULL, NOW, MESH_ID_SKEW_S, err, sizeof err), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3 / n;
    print_message("certificate verify: %.1f us each (%d runs)\n", us, n);
    assert_true(us < 5000);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_node_key_created_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_x25519_derived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pk_hex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_roundtrip_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_errors, setup, teardown),
        cmocka_unit_test(test_roles),
        cmocka_unit_test_setup_teardown(test_token_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_member_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revocation_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revoked_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revlist_bound_and_prune, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revlist_merge_converges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_revlist_persisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fuzz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_cost, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
