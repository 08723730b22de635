/* test_know.c: the knowledge store (mem_know_*, know*.c) on a real SQLite
 * file in a temporary dir: known-item retrieval over a dozen small documents
 * for BM25, vector and hybrid; replace on re-add, an unchanged re-add is a
 * no-op; remove; links' weights and depth; decay forgets the unpinned unused
 * and keeps the pinned; dedup merges an identical document; a reopen keeps
 * everything; hostile queries are answered, not crashed on; searches and
 * adds from several threads at once; the chunker's shape; the SIMD and
 * scalar dot products agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory/know_priv.h"

typedef struct kt {
    char dir[64];
    char path[128];
    mem_know *k;
} kt;

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void kt_open(kt *t)
{
    char err[512] = "";
    int rc = mem_know_open(t->path, &t->k, err, sizeof err);
    if (rc)
        fail_msg("mem_know_open: %d %s", rc, err);
}

static int setup(void **state)
{
    kt *t = calloc(1, sizeof *t);
    strcpy(t->dir, "/tmp/ippoc-knowtest-XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof t->path, "%s/knowledge.db", t->dir);
    kt_open(t);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    kt *t = *state;
    mem_know_close(t->k);
    nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static void reopen(kt *t)
{
    mem_know_close(t->k);
    t->k = NULL;
    kt_open(t);
}

static int64_t add(kt *t, const char *source, const char *title, const char *text, bool pinned, int *chunks)
{
    char err[512] = "";
    int64_t id = 0;
    int n = -1;
    mem_doc d = {.source = source, .title = title, .kind = "text", .text = text, .pinned = pinned};
    int rc = mem_know_add(t->k, &d, &id, &n, err, sizeof err);
    if (rc)
        fail_msg("mem_know_add %s: %d %s", source, rc, err);
    if (chunks)
        *chunks = n;
    return id;
}

static const struct {
    const char *source, *title, *text;
} corpus[] = {
    {"doc/nginx.md", "nginx restarts", "Nginx worker processes restart when the master receives SIGHUP. A reload "
     "re-reads nginx.conf and starts new workers; old workers finish their connections gracefully."},
    {"doc/oom.md", "out of memory killer", "The kernel OOM killer picks a victim process by oom_score when memory "
     "is exhausted. Raise oom_score_adj to protect critical daemons; check dmesg for killed process lines."},
    {"doc/disk.md", "disk full", "When the filesystem is full, find large files with du and df. Rotate logs with "
     "logrotate, remove old journal files with journalctl --vacuum-size, and clean the package cache."},
    {"doc/swap.md", "swappiness tuning", "vm.swappiness controls how eagerly the kernel swaps anonymous pages to "
     "the swap device. Lower values keep applications in RAM; set it with sysctl."},
    {"doc/dns.md", "dns resolution", "Name resolution failures come from a broken resolv.conf, an unreachable "
     "nameserver or systemd-resolved stub problems. Test lookups with dig and resolvectl query."},
    {"doc/tls.md", "certificate expiry", "TLS certificates expire; renew them with certbot before the notAfter "
     "date. openssl x509 -enddate shows when a certificate stops being valid."},
    {"doc/cron.md", "scheduled jobs", "cron runs scheduled jobs from crontab entries; a job that never runs often "
     "has a wrong PATH or missing execute permission. Check the cron log in syslog."},
    {"doc/ntp.md", "clock drift", "Clock drift makes timestamps wrong and breaks Kerberos. chrony or "
     "systemd-timesyncd keep the clock synchronised with NTP servers; chronyc tracking shows the offset."},
    {"doc/ssh.md", "ssh login", "SSH logins fail when authorized_keys has wrong permissions or the sshd_config "
     "denies root. Run sshd -T to see the effective configuration and read auth.log."},
    {"doc/postgres.md", "postgres connections", "PostgreSQL refuses connections past max_connections. Use a "
     "pooler such as pgbouncer, and look at pg_stat_activity for idle transactions holding slots."},
    {"doc/raid.md", "raid degraded", "A degraded mdadm RAID array has lost a member disk. cat /proc/mdstat shows "
     "the state; replace the failed drive and let the array resync."},
    {"doc/iptables.md", "firewall rules", "iptables and nftables rules filter packets. A dropped port usually "
     "means a missing ACCEPT rule in the INPUT chain; list rules with nft list ruleset."},
};
#define NCORPUS (sizeof corpus / sizeof corpus[0])

static void add_corpus(kt *t)
{
    for (size_t i = 0; i < NCORPUS; i++)
        add(t, corpus[i].source, corpus[i].title, corpus[i].text, false, NULL);
}

/* 1-based rank of source among the top `limit` hits of query, 0 if absent. */
static int rank_of(kt *t, const char *query, int mode, const char *source)
{
    mem_hit *h;
    size_t n;
    char err[512] = "";
    int rc = mem_know_search(t->k, query, mode, 10, &h, &n, err, sizeof err);
    if (rc)
        fail_msg("search '%s': %d %s", query, rc, err);
    int r = 0;
    for (size_t i = 0; i < n && !r; i++)
        if (!strcmp(h[i].source, source))
            r = (int)i + 1;
    mem_know_hits_free(h, n);
    return r;
}

static const struct {
    const char *query, *want;
} queries[] = {
    {"why did nginx restart its workers", "doc/nginx.md"},
    {"process killed because memory ran out", "doc/oom.md"},
    {"filesystem full, clean up logs", "doc/disk.md"},
    {"how eagerly does the kernel swap", "doc/swap.md"},
    {"hostname lookups failing resolver", "doc/dns.md"},
    {"certificate expired renew", "doc/tls.md"},
    {"my crontab job never runs", "doc/cron.md"},
    {"time offset ntp synchronised", "doc/ntp.md"},
    {"cannot log in with ssh keys", "doc/ssh.md"},
    {"too many database connections", "doc/postgres.md"},
    {"array lost a disk mdadm", "doc/raid.md"},
    {"port blocked by firewall", "doc/iptables.md"},
};

static void test_retrieval(void **state)
{
    kt *t = *state;
    add_corpus(t);
    static const int modes[] = {MEM_KNOW_BM25, MEM_KNOW_VECTOR, MEM_KNOW_HYBRID};
    for (size_t m = 0; m < 3; m++)
        for (size_t q = 0; q < sizeof queries / sizeof *queries; q++) {
            int r = rank_of(t, queries[q].query, modes[m], queries[q].want);
            if (r < 1 || r > 3)
                fail_msg("mode %d: '%s' found %s at rank %d", modes[m], queries[q].query, queries[q].want, r);
        }
    /* hits carry their provenance and both ranks */
    mem_hit *h;
    size_t n;
    char err[256];
    assert_int_equal(mem_know_search(t->k, "nginx workers restart", MEM_KNOW_HYBRID, 3, &h, &n, err, sizeof err), 0);
    assert_true(n >= 1 && n <= 3);
    assert_string_equal(h[0].source, "doc/nginx.md");
    assert_string_equal(h[0].title, "nginx restarts");
    assert_string_equal(h[0].kind, "text");
    assert_non_null(strstr(h[0].text, "SIGHUP"));
    assert_int_equal(h[0].rank_bm25, 1);
    assert_int_equal(h[0].rank_vec, 1);
    assert_true(h[0].score > 0);
    mem_know_hits_free(h, n);
}

static int64_t count(kt *t, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static void test_readd(void **state)
{
    kt *t = *state;
    int n;
    int64_t id = add(t, "doc/x.md", "x", "The quick brown fox jumps over the lazy dog.", false, &n);
    assert_true(id > 0);
    assert_int_equal(n, 1);
    assert_int_equal(add(t, "doc/x.md", "x", "The quick brown fox jumps over the lazy dog.", false, &n), id);
    assert_int_equal(n, 0); /* unchanged: a no-op */
    assert_int_equal(rank_of(t, "fox", MEM_KNOW_BM25, "doc/x.md"), 1);
    /* a new text replaces the old chunks, the doc keeps its id */
    assert_int_equal(add(t, "doc/x.md", "x", "A slow green turtle walks under the busy bridge.", false, &n), id);
    assert_int_equal(n, 1);
    assert_int_equal(rank_of(t, "fox", MEM_KNOW_BM25, "doc/x.md"), 0);
    assert_int_equal(rank_of(t, "fox", MEM_KNOW_VECTOR, "doc/x.md") <= 1, 1);
    assert_int_equal(rank_of(t, "turtle bridge", MEM_KNOW_HYBRID, "doc/x.md"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM chunks"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), 1);
    /* bad documents */
    char err[256] = "";
    mem_doc d = {.source = "doc/empty", .text = "  \n "};
    assert_int_equal(mem_know_add(t->k, &d, NULL, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "doc/empty"));
    d = (mem_doc){.text = "words"};
    assert_int_equal(mem_know_add(t->k, &d, NULL, NULL, err, sizeof err), -EINVAL);
    d = (mem_doc){.source = "s", .text = "words", .confidence = 2};
    assert_int_equal(mem_know_add(t->k, &d, NULL, NULL, err, sizeof err), -EINVAL);
}

static void test_remove(void **state)
{
    kt *t = *state;
    add_corpus(t);
    char err[256];
    assert_int_equal(mem_know_link(t->k, "doc:1", "about", "component:nginx", 1, err, sizeof err), 0);
    assert_int_equal(rank_of(t, "nginx workers", MEM_KNOW_HYBRID, "doc/nginx.md"), 1);
    assert_int_equal(mem_know_remove(t->k, "doc/nginx.md"), 0);
    assert_int_equal(mem_know_remove(t->k, "doc/nginx.md"), -ENOENT);
    for (int m = 0; m < 3; m++)
        assert_int_equal(rank_of(t, "nginx workers", m, "doc/nginx.md"), 0);
    assert_int_equal(count(t, "SELECT count(*) FROM docs"), NCORPUS - 1);
    assert_int_equal(count(t, "SELECT count(*) FROM links"), 0);
    assert_int_equal(count(t, "SELECT count(*) FROM chunks WHERE doc = 1"), 0);
    /* the FTS index holds no trace of it: the integrity check passes */
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), count(t, "SELECT count(*) FROM chunks"));
}

static void test_hostile(void **state)
{
    kt *t = *state;
    add_corpus(t);
    static const char *const qs[] = {"\"", "NEAR(", "*", "nginx*", "\"unterminated", "AND OR NOT", "a:b", "(((",
                                     "^", "-", "col:nginx", "NEAR(nginx restart, 2)", "''", "\\", "\xff\xfe",
                                     "%", "nginx\" OR \"", ";DROP TABLE docs;--"};
    char err[256];
    for (size_t i = 0; i < sizeof qs / sizeof *qs; i++)
        for (int m = 0; m < 3; m++) {
            mem_hit *h;
            size_t n;
            int rc = mem_know_search(t->k, qs[i], m, 5, &h, &n, err, sizeof err);
            if (rc)
                fail_msg("'%s' mode %d: %d %s", qs[i], m, rc, err);
            mem_know_hits_free(h, n);
        }
    mem_hit *h;
    size_t n;
    assert_int_equal(mem_know_search(t->k, "", MEM_KNOW_HYBRID, 5, &h, &n, err, sizeof err), -EINVAL);
    assert_int_equal(n, 0);
    assert_int_equal(mem_know_search(t->k, "   ", MEM_KNOW_BM25, 5, &h, &n, err, sizeof err), -EINVAL);
    assert_int_equal(mem_know_search(t->k, "nginx", 7, 5, &h, &n, err, sizeof err), -EINVAL);
    /* punctuation alone: no words, no hits */
    assert_int_equal(mem_know_search(t->k, "*", MEM_KNOW_HYBRID, 5, &h, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    mem_know_hits_free(h, n);
    assert_int_equal(count(t, "SELECT count(*) FROM docs"), NCORPUS);
}

static void test_reopen(void **state)
{
    kt *t = *state;
    add_corpus(t);
    char err[256];
    assert_int_equal(mem_know_link(t->k, "incident:1", "caused_by", "cause:oom_kill", 2, err, sizeof err), 0);
    assert_int_equal(mem_know_meta_set(t->k, "feed:arxiv", "etag-1"), 0);
    mem_hit *h;
    size_t n;
    assert_int_equal(mem_know_search(t->k, "kernel swap pages", MEM_KNOW_VECTOR, 3, &h, &n, err, sizeof err), 0);
    assert_true(n > 0);
    double s0 = h[0].score;
    char *src0 = strdup(h[0].source);
    mem_know_hits_free(h, n);
    reopen(t);
    /* the vectors and the statistics came back: the same answer, the same score */
    assert_int_equal(mem_know_search(t->k, "kernel swap pages", MEM_KNOW_VECTOR, 3, &h, &n, err, sizeof err), 0);
    assert_true(n > 0);
    assert_string_equal(h[0].source, src0);
    assert_float_equal(h[0].score, s0, 1e-6);
    mem_know_hits_free(h, n);
    free(src0);
    for (size_t q = 0; q < sizeof queries / sizeof *queries; q++)
        assert_in_range(rank_of(t, queries[q].query, MEM_KNOW_HYBRID, queries[q].want), 1, 3);
    char *v = mem_know_meta_get(t->k, "feed:arxiv");
    assert_string_equal(v, "etag-1");
    free(v);
    assert_null(mem_know_meta_get(t->k, "nothing"));
    char *l = mem_know_links_json(t->k, "incident:1", 1);
    assert_non_null(strstr(l, "cause:oom_kill"));
    free(l);
    char *s = mem_know_stats_json(t->k);
    char want[64];
    snprintf(want, sizeof want, "\"docs\":%zu", NCORPUS);
    assert_non_null(strstr(s, want));
    assert_non_null(strstr(s, "\"embedder\":\"builtin\""));
    free(s);
    s = mem_know_docs_json(t->k, 2);
    assert_non_null(strstr(s, "doc/iptables.md")); /* newest first */
    assert_null(strstr(s, "doc/nginx.md"));
    free(s);
    assert_true(count(t, "SELECT count(*) FROM model") == 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retrieval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
