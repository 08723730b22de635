/* test_wisdom.c: unit tests of the mesh's wisdom records (src/mesh/wisdom*.c):
 * the canonical encoding's round trip, signatures and tampering, the
 * redaction rule with planted hostnames, IPs, paths and user names in every
 * field (on the way out and on the way in), the store's dedup, limits and
 * provenance in a real SQLite file, trust rising, falling, ignoring and
 * decaying in virtual time, the brain's candidates, and decoding random
 * and mutated bytes. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/core.h"
#include "mesh/wisdom.h"

#define HOUR (3600 * 1000LL)

typedef struct key {
    uint8_t pk[32], sk[64];
} key;

static key mkkey(uint8_t seed_byte)
{
    key k;
    uint8_t seed[crypto_sign_SEEDBYTES];
    memset(seed, seed_byte, sizeof seed);
    crypto_sign_seed_keypair(k.pk, k.sk, seed);
    return k;
}

static mesh_wisdom_host host_nginx(void)
{
    return (mesh_wisdom_host){.cpu_log2 = 3, .mem_log2 = 4, .kernel_major = 6, .kernel_minor = 1, .os = "debian12",
                              .service = "nginx"};
}

static json_t *mkcase(const char *const *features, int nf, const char *action, int healed, int failed)
{
    json_t *f = json_array(), *a = json_array();
    for (int i = 0; i < nf; i++)
        json_array_append_new(f, json_string(features[i]));
    for (int i = 0; i < healed + failed; i++)
        json_array_append_new(a, json_pack("{s:[s], s:b, s:I}", "actions", action, "healed", i < healed, "ts",
                                           (json_int_t)i));
    json_array_append_new(a, json_pack("{s:[s], s:b}", "actions", "stop", "healed", 0)); /* another action */
    return json_pack("{s:o, s:o, s:s}", "features", f, "attempts", a, "fault_type", "crash");
}

static const char *const FEATS[] = {"probe:http:refused", "exit:signal:KILL", "kernel:oom_kill", "res:rss_rising"};

/* A signed fix record: "restart" fixed healed of healed + failed tries. */
static size_t signed_fix(const key *k, uint64_t seq, const char *action, int healed, int failed,
                         const mesh_wisdom_host *h, uint8_t *buf)
{
    mesh_wisdom_rec r;
    char err[256];
    json_t *c = mkcase(FEATS, 4, action, healed, failed);
    int rc = mesh_wisdom_build_fix(c, action, h, NULL, &r, err, sizeof err);
    json_decref(c);
    if (rc)
        fail_msg("build_fix: %s", err);
    size_t len = 0;
    rc = mesh_wisdom_sign(&r, k->sk, seq, 1000 + (int64_t)seq, NULL, buf, MESH_WISDOM_MAX_BYTES, &len, err, sizeof err);
    if (rc)
        fail_msg("sign: %s", err);
    return len;
}

/* ---- encoding ---- */

static void roundtrip(const mesh_wisdom_rec *in, const key *k)
{
    mesh_wisdom_rec r = *in, d;
    uint8_t buf[MESH_WISDOM_MAX_BYTES], again[MESH_WISDOM_MAX_BYTES];
    size_t len, len2;
    char err[256];
    assert_int_equal(mesh_wisdom_sign(&r, k->sk, 7, 123456789, NULL, buf, sizeof buf, &len, err, sizeof err), 0);
    assert_true(len <= MESH_WISDOM_MAX_BYTES);
    assert_int_equal(mesh_wisdom_decode(buf, len, &d, err, sizeof err), 0);
    assert_int_equal(d.kind, r.kind);
    assert_memory_equal(d.origin, k->pk, 32);
    assert_int_equal(d.seq, 7);
    assert_int_equal(d.ts_ms, 123456789);
    assert_memory_equal(&d.host, &r.host, sizeof d.host);
    assert_int_equal(mesh_wisdom_verify(buf, len, &d, err, sizeof err), 0);
    assert_int_equal(mesh_wisdom_accept(buf, len, &d, err, sizeof err), MESH_WISDOM_OK);
    /* canonical: the decoded record encodes to the same bytes (Ed25519 is deterministic) */
    assert_int_equal(mesh_wisdom_sign(&d, k->sk, 7, 123456789, NULL, again, sizeof again, &len2, err, sizeof err), 0);
    assert_int_equal(len2, len);
    assert_memory_equal(again, buf, len);
    json_t *j = mesh_wisdom_to_json(&d);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), mesh_wisdom_kind_name(r.kind));
    json_decref(j);
}

static void test_roundtrip(void **state)
{
    (void)state;
    key k = mkkey(1);
    mesh_wisdom_host h = host_nginx();
    mesh_wisdom_rec r;
    char err[256];
    const char *rep[] = {"probe:http:refused", "exit:signal:KILL", "probe:http:refused"};
    json_t *c = mkcase(rep, 3, "restart", 3, 1);
    assert_int_equal(mesh_wisdom_build_fix(c, "restart", &h, NULL, &r, err, sizeof err), 0);
    json_decref(c);
    assert_int_equal(r.fix.k, 3);
    assert_int_equal(r.fix.n, 4);
    assert_int_equal(r.fix.nfeatures, 2);
    mesh_wisdom_rec none;
    c = mkcase(FEATS, 4, "restart", 3, 1);
    assert_int_equal(mesh_wisdom_build_fix(c, "renice 5", &h, NULL, &none, err, sizeof err), -ENOENT);
    json_decref(c);
    roundtrip(&r, &k);
    /* a feature list out of order is sorted by sign; the decoded one is sorted */
    uint8_t buf[MESH_WISDOM_MAX_BYTES];
    size_t len;
    mesh_wisdom_rec d;
    assert_int_equal(mesh_wisdom_sign(&r, k.sk, 1, 1, NULL, buf, sizeof buf, &len, err, sizeof err), 0);
    assert_int_equal(mesh_wisdom_decode(buf, len, &d, err, sizeof err), 0);
    for (int i = 1; i < d.fix.nfeatures; i++)
        assert_true(strcmp(d.fix.features[i - 1], d.fix.features[i]) < 0);

    assert_int_equal(mesh_wisdom_build_baseline("process.rss_bytes", 1440, 5.2e7, 3e6, 4.8e7, 5.1e7, 5.9e7, &h, NULL,
                                                &r, err, sizeof err),
                     0);
    roundtrip(&r, &k);
    const char *names[] = {"work_mem", "shared_buffers", "vm.swappiness"}, *values[] = {"16MB", "256MB", "10"};
    assert_int_equal(mesh_wisdom_build_knobs("pgbench.tps", 3, names, values, 0.12, 0.05, 0.2, 40, &h, NULL, &r, err,
                                             sizeof err),
                     0);
    roundtrip(&r, &k);

    /* a record over the size limit is refused, not cut */
    memset(&r, 0, sizeof r);
    r.kind = MESH_WISDOM_FIX;
    r.host = h;
    r.fix.nfeatures = 16;
    for (int i = 0; i < 16; i++)
        snprintf(r.fix.features[i], sizeof r.fix.features[i], "anomaly:f%02d%s:level_down", i,
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"); /* 63 characters */
    strcpy(r.fix.action, "restart");
    r.fix.k = r.fix.n = 1;
    assert_int_equal(strlen(r.fix.features[15]), 63);
    assert_int_equal(mesh_wisdom_sign(&r, k.sk, 1, 1, NULL, buf, sizeof buf, &len, err, sizeof err), -EMSGSIZE);
    r.fix.nfeatures = 13; /* 13 of them fit (985 bytes) */
    assert_int_equal(mesh_wisdom_sign(&r, k.sk, 1, 1, NULL, buf, sizeof buf, &len, err, sizeof err), 0);
    assert_true(len <= MESH_WISDOM_MAX_BYTES);
}

/* ---- signatures ---- */

static void test_tamper(void **state)
{
    (void)state;
    key k = mkkey(2), other = mkkey(3);
    mesh_wisdom_host h = host_nginx();
    uint8_t buf[MESH_WISDOM_MAX_BYTES], t[MESH_WISDOM_MAX_BYTES];
    size_t len = signed_fix(&k, 1, "restart", 2, 0, &h, buf);
    mesh_wisdom_rec d;
    char err[256];
    /* every single-bit flip anywhere: never accepted */
    for (size_t i = 0; i < len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(t, buf, len);
            t[i] ^= (uint8_t)(1 << bit);
            mesh_wisdom_verdict v = mesh_wisdom_accept(t, len, &d, err, sizeof err);
            if (v == MESH_WISDOM_OK)
                fail_msg("flip of bit %d of byte %zu accepted", bit, i);
        }
    /* a flipped signature byte: bad signature */
    memcpy(t, buf, len);
    t[len - 1] ^= 1;
    assert_int_equal(mesh_wisdom_accept(t, len, &d, err, sizeof err), MESH_WISDOM_BAD_SIG);
    assert_non_null(strstr(err, "signature"));
    /* a changed count (k) in the body: decodes, fails the signature */
    memcpy(t, buf, len);
    t[len - 64 - 5] ^= 1; /* low byte of k */
    assert_int_equal(mesh_wisdom_accept(t, len, &d, err, sizeof err), MESH_WISDOM_BAD_SIG);
    /* another origin's key in place of the signer's */
    memcpy(t, buf, len);
    memcpy(t + 5, other.pk, 32);
    assert_int_equal(mesh_wisdom_accept(t, len, &d, err, sizeof err), MESH_WISDOM_BAD_SIG);
    /* no signature at all */
    memcpy(t, buf, len);
    memset(t + len - 64, 0, 64);
    assert_int_equal(mesh_wisdom_accept(t, len, &d, err, sizeof err), MESH_WISDOM_UNSIGNED);
    /* cut short, one byte more: malformed, naming the byte */
    assert_int_equal(mesh_wisdom_accept(buf, len - 1, &d, err, sizeof err), MESH_WISDOM_MALFORMED);
    assert_non_null(strstr(err, "byte "));
    memcpy(t, buf, len);
    t[len] = 0;
    assert_int_equal(mesh_wisdom_accept(t, len + 1, &d, err, sizeof err), MESH_WISDOM_MALFORMED);
    assert_non_null(strstr(err, "trailing"));
}

/* ---- the redaction rule ---- */

static void expect_refused(int rc, const char *err, const char *field)
{
    if (rc != -EPERM || !strstr(err, field))
        fail_msg("expected -EPERM naming %s, got %d: %s", field, rc, err);
}

static int fix_with(const char *feature, const char *action, const mesh_wisdom_host *h, const mesh_wisdom_local *loc,
                    char *err, size_t errlen)
{
    const char *f[] = {"exit:code:1", feature};
    json_t *c = mkcase(f, feature ? 2 : 1, action, 1, 0);
    mesh_wisdom_rec r;
    int rc = mesh_wisdom_build_fix(c, action, h, loc, &r, err, errlen);
    json_decref(c);
    return rc;
}

static void test_redaction_refusals(void **state)
{
    (void)state;
    mesh_wisdom_host h = host_nginx();
    mesh_wisdom_local loc = {0};
    mesh_wisdom_local_add(&loc, "web7");    /* this machine's hostname */
    mesh_wisdom_local_add(&loc, "alice");   /* a user of it */
    char err[256];
    mesh_wisdom_rec r;

    /* allowed: the plain things */
    assert_int_equal(fix_with("probe:http:refused", "restart", &h, &loc, err, sizeof err), 0);
    assert_int_equal(fix_with("anomaly:process.rss_bytes:level_up", "clean /var/log/nginx older than 7d", &h, &loc,
                              err, sizeof err),
                     0);
    assert_int_equal(fix_with(NULL, "sysctl vm.swappiness = 10", &h, &loc, err, sizeof err), 0);
    assert_int_equal(fix_with(NULL, "restore /etc/nginx/nginx.conf", &h, &loc, err, sizeof err), 0);

    /* features: hostname, IPv4, IPv6, MAC, local names, paths, not a feature at all */
    expect_refused(fix_with("probe:http:db1.example.com", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    expect_refused(fix_with("anomaly:10.0.0.5:spike", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    expect_refused(fix_with("log:hint:fe80::1:2", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    expect_refused(fix_with("log:hint:00:1a:2b:3c:4d:5e", "restart", &h, &loc, err, sizeof err), err,
                   "fix.features[1]");
    expect_refused(fix_with("log:hint:web7", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    expect_refused(fix_with("log:hint:alice", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    expect_refused(fix_with("change:file:/home/alice/.bashrc", "restart", &h, &loc, err, sizeof err), err,
                   "fix.features[1]");
    expect_refused(fix_with("host:web7", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    /* a free word where the vocabulary has fixed ones: a hostname without a domain */
    expect_refused(fix_with("log:hint:prod-db-7", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    assert_non_null(strstr(err, "vocabulary"));
    expect_refused(fix_with("probe:http:prod-db-7", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    expect_refused(fix_with("exit:code:123456", "restart", &h, &loc, err, sizeof err), err, "fix.features[1]");
    /* every family of the vocabulary passes */
    const char *fine[] = {"exit:code:-1", "exit:signal:SEGV", "exit:signal:34", "exit:early", "exit:repeated",
                          "probe:tcp:timeout", "probe:unknown:other", "rule:resource:fds", "rule:restarts",
                          "rule:anomalous", "kernel:segfault", "kernel:oom_kill:other", "log:hint:addr_in_use",
                          "log:new:error", "log:burst:warning", "port:held", "dep:down", "change:file",
                          "change:file:owner", "change:package", "fs:inodes_full", "fs:full:other",
                          "res:rss_rising", "pressure:io", "cpu:hog", "anomaly:psi.some_avg10_percent:level_up"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        if (fix_with(fine[i], "restart", &h, &loc, err, sizeof err))
            fail_msg("%s refused: %s", fine[i], err);
    expect_refused(fix_with("log:line:GET /index.html 200", "restart", &h, &loc, err, sizeof err), err,
                   "fix.features[1]");

    /* actions: paths outside the allowlist, hostnames and IPs in paths, local programs, pids, webhooks */
    expect_refused(fix_with(NULL, "restore /home/alice/app.conf", &h, &loc, err, sizeof err), err, "fix.action");
    assert_non_null(strstr(err, "allowlist"));
    expect_refused(fix_with(NULL, "restore /srv/app/app.conf", &h, &loc, err, sizeof err), err, "fix.action");
    expect_refused(fix_with(NULL, "clean /var/log/web1.example.com older than 7d", &h, &loc, err, sizeof err), err,
                   "fix.action");
    expect_refused(fix_with(NULL, "clean /var/log/web7 older than 7d", &h, &loc, err, sizeof err), err, "fix.action");
    expect_refused(fix_with(NULL, "restore /etc/hosts.d/10.1.2.3.conf", &h, &loc, err, sizeof err), err,
                   "fix.action");
    expect_refused(fix_with(NULL, "run \"/usr/local/bin/fix-it\"", &h, &loc, err, sizeof err), err, "fix.action");
    expect_refused(fix_with(NULL, "signal TERM pid 4242", &h, &loc, err, sizeof err), err, "fix.action");
    expect_refused(fix_with(NULL, "alert ops", &h, &loc, err, sizeof err), err, "fix.action");
    expect_refused(fix_with(NULL, "rm -rf /", &h, &loc, err, sizeof err), err, "fix.action");

    /* the host class */
    mesh_wisdom_host bad = h;
    snprintf(bad.service, sizeof bad.service, "web7");
    expect_refused(fix_with(NULL, "restart", &bad, &loc, err, sizeof err), err, "host.service");
    snprintf(bad.service, sizeof bad.service, "db1.corp");
    expect_refused(fix_with(NULL, "restart", &bad, &loc, err, sizeof err), err, "host.service");
    bad = h;
    snprintf(bad.os, sizeof bad.os, "web1.example.com");
    expect_refused(fix_with(NULL, "restart", &bad, &loc, err, sizeof err), err, "host.os");
    snprintf(bad.os, sizeof bad.os, "192.168.1.9");
    expect_refused(fix_with(NULL, "restart", &bad, &loc, err, sizeof err), err, "host.os");

    /* baselines: hostnames and IPs in the metric, raw values (too few samples), nonsense statistics */
    expect_refused(mesh_wisdom_build_baseline("node.web1.example.com", 100, 1, 1, 0, 1, 2, &h, &loc, &r, err,
                                              sizeof err),
                   err, "baseline.metric");
    expect_refused(mesh_wisdom_build_baseline("ping.10.0.0.1", 100, 1, 1, 0, 1, 2, &h, &loc, &r, err, sizeof err), err,
                   "baseline.metric");
    expect_refused(mesh_wisdom_build_baseline("alice.cpu", 100, 1, 1, 0, 1, 2, &h, &loc, &r, err, sizeof err), err,
                   "baseline.metric");
    expect_refused(mesh_wisdom_build_baseline("/var/lib/x", 100, 1, 1, 0, 1, 2, &h, &loc, &r, err, sizeof err), err,
                   "baseline.metric");
    expect_refused(mesh_wisdom_build_baseline("process.rss_bytes", 1, 5e7, 0, 5e7, 5e7, 5e7, &h, &loc, &r, err,
                                              sizeof err),
                   err, "baseline.count");
    expect_refused(mesh_wisdom_build_baseline("process.rss_bytes", 100, 1, 1, 3, 2, 1, &h, &loc, &r, err, sizeof err),
                   err, "baseline");
    expect_refused(mesh_wisdom_build_baseline("process.rss_bytes", 100, NAN, 1, 0, 1, 2, &h, &loc, &r, err,
                                              sizeof err),
                   err, "baseline");

    /* knob sets: every field */
    const char *n1[] = {"work_mem"}, *v1[] = {"16MB"};
    expect_refused(mesh_wisdom_build_knobs("tps.db1.example.com", 1, n1, v1, 0.1, 0, 0.2, 10, &h, &loc, &r, err,
                                           sizeof err),
                   err, "knobs.objective");
    const char *n2[] = {"listen_addresses"}, *v2[] = {"10.0.0.7"};
    expect_refused(mesh_wisdom_build_knobs("pgbench.tps", 1, n2, v2, 0.1, 0, 0.2, 10, &h, &loc, &r, err, sizeof err),
                   err, "knobs.knobs[0].value");
    const char *n3[] = {"web7.cache"}, *v3[] = {"1"};
    expect_refused(mesh_wisdom_build_knobs("pgbench.tps", 1, n3, v3, 0.1, 0, 0.2, 10, &h, &loc, &r, err, sizeof err),
                   err, "knobs.knobs[0].name");
    const char *n4[] = {"data_directory"}, *v4[] = {"/home/alice/pg"};
    expect_refused(mesh_wisdom_build_knobs("pgbench.tps", 1, n4, v4, 0.1, 0, 0.2, 10, &h, &loc, &r, err, sizeof err),
                   err, "knobs.knobs[0].value");
    const char *n5[] = {"bind"}, *v5[] = {"fe80::1:2:3"};
    expect_refused(mesh_wisdom_build_knobs("pgbench.tps", 1, n5, v5, 0.1, 0, 0.2, 10, &h, &loc, &r, err, sizeof err),
                   err, "knobs.knobs[0].value");
    expect_refused(mesh_wisdom_build_knobs("pgbench.tps", 1, n1, v1, 0.3, 0, 0.2, 10, &h, &loc, &r, err, sizeof err),
                   err, "knobs.gain");
    expect_refused(mesh_wisdom_build_knobs("pgbench.tps", 1, n1, v1, 0.1, 0, 0.2, 1, &h, &loc, &r, err, sizeof err),
                   err, "knobs.runs");

    /* a generic hostname names no machine: "debian12" still passes on a host called debian */
    mesh_wisdom_local generic = {0};
    mesh_wisdom_local_add(&generic, "debian");
    mesh_wisdom_local_add(&generic, "localhost");
    assert_int_equal(generic.nnames, 0);
    /* this machine's own names from mesh_wisdom_local_init: the hostname is refused */
    mesh_wisdom_local me;
    mesh_wisdom_local_init(&me);
    mesh_wisdom_host plain = h; /* the machine: this host may be called nginx */
    plain.service[0] = 0;
    char hn[256] = "";
    bool have = false;
    if (!gethostname(hn, sizeof hn - 1))
        for (int i = 0; i < me.nnames; i++)
            have |= !strcmp(me.names[i], hn);
    if (have && strspn(hn, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(hn)) {
        char feat[128];
        snprintf(feat, sizeof feat, "log:hint:%s", hn);
        expect_refused(fix_with(feat, "restart", &plain, &me, err, sizeof err), err, "fix.features[1]");
    }
    /* whatever this machine is called, its own plain records pass */
    assert_int_equal(fix_with("probe:http:refused", "sysctl vm.swappiness = 10", &plain, &me, err, sizeof err), 0);
    mesh_wisdom_host mine;
    assert_int_equal(mesh_wisdom_host_local("", &mine, err, sizeof err), 0); /* the machine: a host may be called nginx */
    assert_int_equal(fix_with("exit:code:1", "restart", &mine, &me, err, sizeof err), 0);
}

/* A signed record that breaks the rule (a malicious peer: signed by hand,
 * past the builder): the receiver's checker refuses it. */
static void test_redaction_received(void **state)
{
    (void)state;
    key k = mkkey(4);
    mesh_wisdom_host h = host_nginx();
    uint8_t buf[MESH_WISDOM_MAX_BYTES];
    size_t len = signed_fix(&k, 1, "restart", 1, 0, &h, buf);
    struct {
        const char *from, *to, *field;
    } plants[] = {
        {"probe:http:refused", "probe:1.2.3.4:refu", "fix.features"},
        {"kernel:oom_kill", "kernel:a.b.corp", "fix.features"},
        {"restart", "start \"", "fix.action"},
        {"nginx", "a.com", "host.service"},
        {"debian12", "10.0.0.1", "host.os"},
    };
    for (size_t p = 0; p < sizeof plants / sizeof plants[0]; p++) {
        uint8_t t[MESH_WISDOM_MAX_BYTES];
        memcpy(t, buf, len);
        size_t fl = strlen(plants[p].from);
        assert_int_equal(fl, strlen(plants[p].to));
        uint8_t *at = memmem(t, len - 64, plants[p].from, fl);
        assert_non_null(at);
        memcpy(at, plants[p].to, fl);
        crypto_sign_detached(t + len - 64, NULL, t, len - 64, k.sk);
        mesh_wisdom_rec d;
        char err[256];
        mesh_wisdom_verdict v = mesh_wisdom_accept(t, len, &d, err, sizeof err);
        if (v != MESH_WISDOM_FORBIDDEN || !strstr(err, plants[p].field))
            fail_msg("plant %zu: verdict %s: %s", p, mesh_wisdom_verdict_name(v), err);
    }
}

/* Signs r, patches the first `from` in its body to `to` (same length), signs
 * again by hand and expects the receiver's verdict FORBIDDEN naming field. */
static void plant_signed(mesh_wisdom_rec *r, const key *k, const char *from, const char *to, size_t n,
                         const char *field)
{
    uint8_t t[MESH_WISDOM_MAX_BYTES];
    size_t len;
    char err[256];
    assert_int_equal(mesh_wisdom_sign(r, k->sk, 1, 1, NULL, t, sizeof t, &len, err, sizeof err), 0);
    uint8_t *at = memmem(t, len - 64, from, n);
    assert_non_null(at);
    memcpy(at, to, n);
    crypto_sign_detached(t + len - 64, NULL, t, len - 64, k->sk);
    mesh_wisdom_rec d;
    mesh_wisdom_verdict v = mesh_wisdom_accept(t, len, &d, err, sizeof err);
    if (v != MESH_WISDOM_FORBIDDEN || !strstr(err, field))
        fail_msg("%s -> %s: verdict %s: %s", from, to, mesh_wisdom_verdict_name(v), err);
}

static void test_redaction_received_aggregates(void **state)
{
    (void)state;
    key k = mkkey(5);
    mesh_wisdom_host h = host_nginx();
    mesh_wisdom_rec r;
    char err[256];
    assert_int_equal(mesh_wisdom_build_baseline("process.rss_bytes", 1440, 5.2e7, 3e6, 4.8e7, 5.1e7, 5.9e7, &h, NULL,
                                                &r, err, sizeof err),
                     0);
    plant_signed(&r, &k, "process.rss_bytes", "db1.example.co.uk", 17, "baseline.metric");
    /* the count (big-endian 1440 = 00 00 05 a0 after the metric) cut to 5: a raw value */
    assert_int_equal(mesh_wisdom_build_baseline("process.rss_bytes", 1440, 5.2e7, 3e6, 4.8e7, 5.1e7, 5.9e7, &h, NULL,
                                                &r, err, sizeof err),
                     0);
    plant_signed(&r, &k, "process.rss_bytes\x00\x00\x05\xa0", "process.rss_bytes\x00\x00\x00\x05", 21,
                 "baseline.count");
    const char *n[] = {"listen_port", "work_mem"}, *v[] = {"123456789", "16MB"};
    assert_int_equal(mesh_wisdom_build_knobs("pgbench.tps", 2, n, v, 0.1, 0.05, 0.2, 10, &h, NULL, &r, err, sizeof err),
                     0);
    plant_signed(&r, &k, "123456789", "10.0.0.99", 9, "knobs.knobs[0].value");
    assert_int_equal(mesh_wisdom_build_knobs("pgbench.tps", 2, n, v, 0.1, 0.05, 0.2, 10, &h, NULL, &r, err, sizeof err),
                     0);
    plant_signed(&r, &k, "pgbench.tps", "a.corp.lan.", 11, "knobs.objective");
}

/* ---- the store ---- */

typedef struct fx {
    char dir[64], path[128];
    mesh_wisdom_store *s;
    mesh_wisdom_trust t;
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-wisdom-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/wisdom.db", f->dir);
    char err[256];
    mesh_wisdom_limits lim = {.max_records = 20, .max_per_origin = 3, .max_rejects = 4};
    if (mesh_wisdom_store_open(f->path, &lim, &f->s, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    mesh_wisdom_trust_init(&f->t, NULL);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    mesh_wisdom_store_close(f->s);
    mesh_wisdom_trust_free(&f->t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd)) {
    }
    free(f);
    return 0;
}

static void test_store_dedup(void **state)
{
    fx *f = *state;
    key a = mkkey(10), relay = mkkey(11);
    mesh_wisdom_host h = host_nginx();
    uint8_t buf[MESH_WISDOM_MAX_BYTES], other[MESH_WISDOM_MAX_BYTES];
    char err[256];
    mesh_wisdom_verdict v;
    size_t len = signed_fix(&a, 1, "restart", 4, 1, &h, buf);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, relay.pk, buf, len, 0, &v, err, sizeof err), 0);
    assert_int_equal(v, MESH_WISDOM_OK);
    /* the same record again, from its origin or the relay: a duplicate, kept once */
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, a.pk, buf, len, 1, &v, err, sizeof err), 1);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, relay.pk, buf, len, 2, &v, err, sizeof err), 1);
    int nrec, nrej;
    mesh_wisdom_store_count(f->s, &nrec, &nrej);
    assert_int_equal(nrec, 1);
    assert_int_equal(nrej, 0);
    assert_true(mesh_wisdom_store_forwardable(f->s, &f->t, a.pk, 1, 3));
    assert_false(mesh_wisdom_store_forwardable(f->s, &f->t, a.pk, 2, 3));
    /* first delivery counted for the relay (P2), once */
    assert_true(fabs(mesh_wisdom_trust_score(&f->t, relay.pk, 2) - 0.1) < 1e-6);
    /* other bytes under the same (origin, seq): equivocation, P7 on the origin */
    size_t olen = signed_fix(&a, 1, "restart", 5, 0, &h, other);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, relay.pk, other, olen, 3, &v, err, sizeof err), -EEXIST);
    assert_true(fabs(mesh_wisdom_trust_score(&f->t, a.pk, 3) - (-5.0)) < 1e-9);
    mesh_wisdom_store_count(f->s, &nrec, &nrej);
    assert_int_equal(nrec, 1);
    assert_int_equal(nrej, 1);
    /* limits: 3 per origin (the highest seq stay), rejects 4 */
    for (uint64_t seq = 2; seq <= 6; seq++) {
        len = signed_fix(&a, seq, "restart", 1, 0, &h, buf);
        assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, relay.pk, buf, len, 10, &v, err, sizeof err), 0);
    }
    mesh_wisdom_store_count(f->s, &nrec, NULL);
    assert_int_equal(nrec, 3);
    assert_false(mesh_wisdom_store_forwardable(f->s, &f->t, a.pk, 3, 10));
    assert_true(mesh_wisdom_store_forwardable(f->s, &f->t, a.pk, 6, 10));
    /* an evicted record replayed: not new, not kept, no delivery credit */
    double relay_before = mesh_wisdom_trust_score(&f->t, relay.pk, 10);
    len = signed_fix(&a, 2, "restart", 1, 0, &h, buf);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, relay.pk, buf, len, 10, &v, err, sizeof err), 1);
    assert_true(mesh_wisdom_trust_score(&f->t, relay.pk, 10) == relay_before);
    mesh_wisdom_store_count(f->s, &nrec, NULL);
    assert_int_equal(nrec, 3);
    assert_false(mesh_wisdom_store_forwardable(f->s, &f->t, a.pk, 2, 10));
    for (int i = 0; i < 6; i++) {
        uint8_t junk[8] = {'I', 'P', 'W', '1', 9, 9, 9, (uint8_t)i};
        key j = mkkey((uint8_t)(50 + i)); /* one bad record each: none of them ignored yet */
        assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, j.pk, junk, sizeof junk, 20, &v, err, sizeof err),
                         -EBADMSG);
        assert_int_equal(v, MESH_WISDOM_MALFORMED);
    }
    mesh_wisdom_store_count(f->s, NULL, &nrej);
    assert_int_equal(nrej, 4);
    /* total limit: 20 kept at most, from 10 origins of 3 */
    for (uint8_t o = 0; o < 10; o++) {
        key k = mkkey((uint8_t)(100 + o));
        for (uint64_t seq = 1; seq <= 3; seq++) {
            len = signed_fix(&k, seq, "restart", 1, 0, &h, buf);
            assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, k.pk, buf, len, 30 + o, &v, err, sizeof err), 0);
        }
    }
    mesh_wisdom_store_count(f->s, &nrec, NULL);
    assert_int_equal(nrec, 20);

    /* provenance and trust survive closing */
    assert_int_equal(mesh_wisdom_store_save_trust(f->s, &f->t, err, sizeof err), 0);
    double before = mesh_wisdom_trust_score(&f->t, a.pk, 50);
    mesh_wisdom_store_close(f->s);
    mesh_wisdom_trust_free(&f->t);
    mesh_wisdom_trust_init(&f->t, NULL);
    assert_int_equal(mesh_wisdom_store_open(f->path, NULL, &f->s, err, sizeof err), 0);
    assert_int_equal(mesh_wisdom_store_load_trust(f->s, &f->t, err, sizeof err), 0);
    assert_true(fabs(mesh_wisdom_trust_score(&f->t, a.pk, 50) - before) < 1e-9);
    mesh_wisdom_store_count(f->s, &nrec, NULL);
    assert_int_equal(nrec, 20);
}

/* ---- trust ---- */

static void test_trust(void **state)
{
    (void)state;
    mesh_wisdom_trust t;
    mesh_wisdom_trust_init(&t, NULL);
    key good = mkkey(20), bad = mkkey(21);
    /* unknown: 0, half weight, not ignored */
    assert_true(mesh_wisdom_trust_score(&t, good.pk, 0) == 0);
    assert_true(fabs(mesh_wisdom_trust_weight(&t, good.pk, 0) - 0.5) < 1e-9);
    /* rising: deliveries (capped) and wisdom that worked */
    for (int i = 0; i < 100; i++)
        mesh_wisdom_trust_event(&t, good.pk, MESH_TRUST_DELIVERED, 0);
    assert_true(fabs(mesh_wisdom_trust_score(&t, good.pk, 0) - 5.0) < 1e-9); /* 0.1 * cap 50 */
    for (int i = 0; i < 5; i++)
        mesh_wisdom_trust_event(&t, good.pk, MESH_TRUST_WORKED, 0);
    assert_true(fabs(mesh_wisdom_trust_score(&t, good.pk, 0) - 10.0) < 1e-9);
    assert_true(mesh_wisdom_trust_weight(&t, good.pk, 0) == 1.0);
    /* falling: wisdom that failed weighs twice */
    mesh_wisdom_trust_event(&t, good.pk, MESH_TRUST_FAILED, 0);
    assert_true(fabs(mesh_wisdom_trust_score(&t, good.pk, 0) - 8.0) < 1e-9);
    /* invalid records: squared, three of them and the peer is ignored */
    mesh_wisdom_trust_event(&t, bad.pk, MESH_TRUST_INVALID, 0);
    assert_true(fabs(mesh_wisdom_trust_score(&t, bad.pk, 0) + 2.0) < 1e-9);
    assert_false(mesh_wisdom_trust_ignored(&t, bad.pk, 0));
    mesh_wisdom_trust_event(&t, bad.pk, MESH_TRUST_INVALID, 0);
    mesh_wisdom_trust_event(&t, bad.pk, MESH_TRUST_INVALID, 0);
    assert_true(fabs(mesh_wisdom_trust_score(&t, bad.pk, 0) + 18.0) < 1e-9);
    assert_true(mesh_wisdom_trust_ignored(&t, bad.pk, 0));
    assert_true(mesh_wisdom_trust_weight(&t, bad.pk, 0) == 0);
    /* decay in virtual time: after one half-life (6 h) P4 = 1.5, -4.5: no longer ignored */
    assert_true(fabs(mesh_wisdom_trust_score(&t, bad.pk, 6 * HOUR) + 4.5) < 1e-9);
    assert_false(mesh_wisdom_trust_ignored(&t, bad.pk, 6 * HOUR));
    /* the good peer's deliveries decay with 1 h, its outcomes with 24 h */
    double s24 = mesh_wisdom_trust_score(&t, good.pk, 24 * HOUR);
    assert_true(fabs(s24 - (0.1 * 50 * pow(0.5, 24) + 3 * 0.5)) < 1e-9);
    /* scoring does not change state; an event applies the decay first */
    mesh_wisdom_trust_event(&t, bad.pk, MESH_TRUST_INVALID, 6 * HOUR);
    assert_true(fabs(mesh_wisdom_trust_score(&t, bad.pk, 6 * HOUR) + 2.0 * 2.5 * 2.5) < 1e-9);
    /* the evidence weight: Wilson's 95 % lower bound times trust, likeness and host likeness */
    assert_true(fabs(mesh_wisdom_evidence(9, 10, 1, 1, 1) - 0.595850) < 1e-5);
    assert_true(fabs(mesh_wisdom_evidence(2, 2, 1, 1, 1) - 0.342380) < 1e-5);
    assert_true(fabs(mesh_wisdom_evidence(90, 100, 0.5, 0.5, 1) - 0.825634 / 4) < 1e-5);
    assert_true(mesh_wisdom_evidence(0, 10, 1, 1, 1) == 0);
    mesh_wisdom_host a = host_nginx(), b = a;
    assert_true(mesh_wisdom_host_similarity(&a, &b) == 1);
    b.cpu_log2++;
    b.kernel_minor++;
    assert_true(fabs(mesh_wisdom_host_similarity(&a, &b) - 0.64) < 1e-12);
    snprintf(b.service, sizeof b.service, "postgres");
    assert_true(mesh_wisdom_host_similarity(&a, &b) == 0);
    mesh_wisdom_trust_free(&t);
}

/* The store with trust: an invalid sender ends ignored, its records
 * dropped unread and neither used nor forwarded; outcomes move the origin. */
static void test_trust_store(void **state)
{
    fx *f = *state;
    key a = mkkey(30), b = mkkey(31), liar = mkkey(32);
    mesh_wisdom_host h = host_nginx();
    uint8_t buf[MESH_WISDOM_MAX_BYTES], t[MESH_WISDOM_MAX_BYTES];
    char err[256];
    size_t len = signed_fix(&a, 1, "restart", 9, 1, &h, buf);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, a.pk, buf, len, 0, NULL, err, sizeof err), 0);
    len = signed_fix(&b, 1, "renice 10", 1, 4, &h, buf);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, b.pk, buf, len, 0, NULL, err, sizeof err), 0);

    json_t *feats = json_array();
    for (int i = 0; i < 4; i++)
        json_array_append_new(feats, json_string(FEATS[i]));
    mesh_wisdom_cand c[8];
    int n = mesh_wisdom_candidates(f->s, &f->t, feats, &h, 0, c, 8, err, sizeof err);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].action, "restart");
    assert_string_equal(c[1].action, "renice 10");
    assert_true(c[0].weight > c[1].weight);
    assert_int_equal(c[0].k, 9);
    assert_int_equal(c[0].n, 10);
    double w = mesh_wisdom_evidence(9, 10, mesh_wisdom_trust_weight(&f->t, a.pk, 0), 1.0, 1.0);
    assert_true(fabs(c[0].weight - w) < 1e-12);
    /* another service kind: nothing; features less than half alike: nothing */
    mesh_wisdom_host pg = h;
    snprintf(pg.service, sizeof pg.service, "postgres");
    assert_int_equal(mesh_wisdom_candidates(f->s, &f->t, feats, &pg, 0, c, 8, err, sizeof err), 0);
    json_t *other = json_pack("[s, s, s]", "fs:full", "dep:down", "probe:http:refused");
    assert_int_equal(mesh_wisdom_candidates(f->s, &f->t, other, &h, 0, c, 8, err, sizeof err), 0);
    json_decref(other);

    /* a's restart failed here, again and again: a falls below the threshold and is left out */
    double s0 = mesh_wisdom_trust_score(&f->t, a.pk, 1);
    assert_int_equal(mesh_wisdom_store_outcome(f->s, &f->t, a.pk, 1, false, 1), 0);
    assert_true(mesh_wisdom_trust_score(&f->t, a.pk, 1) < s0);
    for (int i = 0; i < 5; i++)
        mesh_wisdom_store_outcome(f->s, &f->t, a.pk, 1, false, 1);
    assert_true(mesh_wisdom_trust_ignored(&f->t, a.pk, 1));
    n = mesh_wisdom_candidates(f->s, &f->t, feats, &h, 1, c, 8, err, sizeof err);
    assert_int_equal(n, 1);
    assert_string_equal(c[0].action, "renice 10");
    assert_false(mesh_wisdom_store_forwardable(f->s, &f->t, a.pk, 1, 1));
    assert_int_equal(mesh_wisdom_store_outcome(f->s, &f->t, a.pk, 99, true, 1), -ENOENT);
    /* b's worked: b rises */
    s0 = mesh_wisdom_trust_score(&f->t, b.pk, 1);
    assert_int_equal(mesh_wisdom_store_outcome(f->s, &f->t, b.pk, 1, true, 1), 0);
    assert_true(mesh_wisdom_trust_score(&f->t, b.pk, 1) > s0);

    /* a liar sends garbage, unsigned and badly signed records: ignored after three */
    len = signed_fix(&liar, 1, "restart", 1, 0, &h, buf);
    mesh_wisdom_verdict v;
    memcpy(t, buf, len);
    memset(t + len - 64, 0, 64);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, liar.pk, t, len, 2, &v, err, sizeof err), -ENOKEY);
    assert_int_equal(v, MESH_WISDOM_UNSIGNED);
    memcpy(t, buf, len);
    t[len - 3] ^= 0x40;
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, liar.pk, t, len, 2, &v, err, sizeof err), -EKEYREJECTED);
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, liar.pk, t, 9, 2, &v, err, sizeof err), -EBADMSG);
    assert_true(mesh_wisdom_trust_ignored(&f->t, liar.pk, 2));
    /* now even its valid record is dropped unread */
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, liar.pk, buf, len, 2, &v, err, sizeof err), -EACCES);
    /* ...until its penalties decay (four half-lives of P4: 9/16 * 2 < 10) */
    assert_int_equal(mesh_wisdom_store_receive(f->s, &f->t, liar.pk, buf, len, 2 + 24 * HOUR, &v, err, sizeof err),
                     0);
    json_decref(feats);
}

/* ---- from the cell's memory ---- */

typedef struct emitted {
    int n;
    mesh_wisdom_rec v[8];
} emitted;

static int collect(void *ud, const mesh_wisdom_rec *r)
{
    emitted *e = ud;
    if (e->n < 8)
        e->v[e->n++] = *r;
    return 0;
}

/* Cases saved through a real memory store (a temporary state dir) become fix
 * records; the ones the rule refuses are counted, never emitted. */
static void test_from_memory(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-wisdom-mem-XXXXXX", err[512] = "";
    assert_non_null(mkdtemp(dir));
    core_config cfg;
    core_log_setup(CORE_LOG_ERR, 0);
    core_config_defaults(&cfg);
    snprintf(cfg.state_dir, sizeof cfg.state_dir, "%s", dir);
    mem_t *m = NULL;
    if (mem_open(&m, &cfg, err, sizeof err))
        fail_msg("mem_open: %s", err);
    /* nginx: restart healed twice of three, renice never; web7 (this host's name): refused;
       a machine-wide case healed by a playbook: refused (a local program) */
    assert_int_equal(mem_case_save(m, 1, 0,
                                   "{\"id\":1,\"component\":\"nginx\",\"kind\":\"service\",\"fault_type\":\"crash\","
                                   "\"features\":[\"exit:signal:KILL\",\"probe:http:refused\"],\"attempts\":["
                                   "{\"actions\":[\"restart\"],\"healed\":true},{\"actions\":[\"restart\"],\"healed\":false},"
                                   "{\"actions\":[\"renice 10\"],\"healed\":false},{\"actions\":[\"restart\"],\"healed\":true}]}"),
                     0);
    assert_int_equal(mem_case_save(m, 2, 0,
                                   "{\"id\":2,\"component\":\"web7\",\"kind\":\"service\",\"fault_type\":\"crash\","
                                   "\"features\":[\"exit:code:1\"],\"attempts\":[{\"actions\":[\"restart\"],\"healed\":true}]}"),
                     0);
    assert_int_equal(mem_case_save(m, 3, 0,
                                   "{\"id\":3,\"component\":\"\",\"kind\":\"machine\",\"fault_type\":\"disk_full\","
                                   "\"features\":[\"fs:full:other\"],\"attempts\":[{\"actions\":[\"run \\\"/opt/x/clean.sh\\\"\"],"
                                   "\"healed\":true}]}"),
                     0);
    assert_int_equal(mem_flush(m, 5000), 0);
    mesh_wisdom_host h = host_nginx();
    h.service[0] = 0;
    mesh_wisdom_local loc = {0};
    mesh_wisdom_local_add(&loc, "web7");
    emitted e = {0};
    int refused = -1;
    int n = mesh_wisdom_fixes_from_memory(m, &h, NULL, NULL, &loc, collect, &e, &refused, err, sizeof err);
    assert_int_equal(n, 1);
    assert_int_equal(refused, 2);
    assert_non_null(strstr(err, "case 2"));
    assert_non_null(strstr(err, "host.service"));
    assert_string_equal(e.v[0].fix.action, "restart");
    assert_string_equal(e.v[0].host.service, "nginx");
    assert_int_equal(e.v[0].fix.k, 2);
    assert_int_equal(e.v[0].fix.n, 3);
    mem_close(m);
    core_config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
}

/* ---- fuzz-style decoding ---- */

static void test_fuzz(void **state)
{
    (void)state;
    key k = mkkey(40);
    mesh_wisdom_host h = host_nginx();
    uint8_t buf[MESH_WISDOM_MAX_BYTES + 16], t[MESH_WISDOM_MAX_BYTES + 16];
    size_t len = signed_fix(&k, 1, "clean /var/log/nginx older than 7d", 3, 2, &h, buf);
    mesh_wisdom_rec d;
    char err[256];
    srandom(12345);
    int ok = 0;
    /* random bytes, some with the magic in front */
    for (int i = 0; i < 200000; i++) {
        size_t n = (size_t)(random() % (MESH_WISDOM_MAX_BYTES + 8));
        for (size_t j = 0; j < n; j++)
            t[j] = (uint8_t)random();
        if (i & 1 && n >= 4)
            memcpy(t, "IPW1", 4);
        if (mesh_wisdom_accept(t, n, &d, err, sizeof err) == MESH_WISDOM_OK)
            ok++;
    }
    assert_int_equal(ok, 0);
    /* a valid record mutated: random bytes replaced, cut, lengthened */
    for (int i = 0; i < 100000; i++) {
        memcpy(t, buf, len);
        size_t n = len;
        int muts = 1 + (int)(random() % 4);
        for (int m = 0; m < muts; m++)
            t[random() % (long)len] = (uint8_t)random();
        if (i % 5 == 0)
            n = (size_t)(random() % (long)len);
        else if (i % 7 == 0)
            n = len + (size_t)(random() % 16);
        mesh_wisdom_verdict v = mesh_wisdom_accept(t, n, &d, err, sizeof err);
        if (v == MESH_WISDOM_OK && (n != len || memcmp(t, buf, len)))
            fail_msg("mutation %d accepted", i);
        if (v == MESH_WISDOM_MALFORMED)
            assert_non_null(strstr(err, "byte "));
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tamper),
        cmocka_unit_test(test_redaction_refusals),
        cmocka_unit_test(test_redaction_received),
        cmocka_unit_test(test_redaction_received_aggregates),
        cmocka_unit_test_setup_teardown(test_store_dedup, fx_setup, fx_teardown),
        cmocka_unit_test(test_trust),
        cmocka_unit_test_setup_teardown(test_trust_store, fx_setup, fx_teardown),
        cmocka_unit_test(test_from_memory),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
