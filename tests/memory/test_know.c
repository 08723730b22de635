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
#include <math.h>
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

static void exec(kt *t, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t->path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
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
    assert_int_equal(rank_of(t, "turtle", MEM_KNOW_BM25, "doc/x.md"), 0); /* not there yet */
    assert_int_equal(add(t, "doc/x.md", "x", "A slow green turtle walks under the busy bridge.", false, &n), id);
    assert_int_equal(n, 1);
    assert_int_equal(rank_of(t, "fox", MEM_KNOW_BM25, "doc/x.md"), 0);
    assert_int_equal(rank_of(t, "fox", MEM_KNOW_VECTOR, "doc/x.md") <= 1, 1);
    assert_int_equal(rank_of(t, "turtle bridge", MEM_KNOW_HYBRID, "doc/x.md"), 1);
    assert_int_equal(rank_of(t, "turtle", MEM_KNOW_BM25, "doc/x.md"), 1); /* a word once absent is found */
    assert_int_equal(count(t, "SELECT count(*) FROM chunks"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), 1);
    /* links to the doc survive a replace, links to its old chunks do not */
    char err0[256], node[32];
    snprintf(node, sizeof node, "doc:%lld", (long long)id);
    assert_int_equal(mem_know_link(t->k, "incident:3", "cites", node, 1, err0, sizeof err0), 0);
    snprintf(node, sizeof node, "chunk:%lld", (long long)count(t, "SELECT id FROM chunks"));
    assert_int_equal(mem_know_link(t->k, "incident:3", "cites", node, 1, err0, sizeof err0), 0);
    add(t, "doc/x.md", "x", "A slow green turtle walks under the busy bridge at noon.", false, &n);
    assert_int_equal(n, 1);
    assert_int_equal(count(t, "SELECT count(*) FROM links"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM links WHERE to_node LIKE 'doc:%'"), 1);
    /* a pin sticks: given once, a later add without it keeps it */
    add(t, "doc/x.md", "x", "A slow green turtle walks under the busy bridge at noon.", true, &n);
    assert_int_equal(n, 0);
    assert_int_equal(count(t, "SELECT pinned FROM docs WHERE source = 'doc/x.md'"), 1);
    add(t, "doc/x.md", "x", "The turtle crossed the bridge at dawn.", false, &n);
    assert_int_equal(n, 1);
    assert_int_equal(count(t, "SELECT pinned FROM docs WHERE source = 'doc/x.md'"), 1);
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
    /* many words, long words: the expression stays within its bounds */
    char *big = malloc(20000);
    size_t o = 0;
    for (int w = 0; w < 60; w++) {
        for (int c = 0; c < 90; c++)
            big[o++] = (char)('a' + (w + c) % 26);
        big[o++] = ' ';
        o += (size_t)sprintf(big + o, "%s ", w % 2 ? "nginx" : "kernel");
    }
    big[o] = 0;
    mem_hit *h;
    size_t n;
    for (int m = 0; m < 3; m++) {
        assert_int_equal(mem_know_search(t->k, big, m, 5, &h, &n, err, sizeof err), 0);
        assert_true(n > 0 || m == MEM_KNOW_VECTOR);
        mem_know_hits_free(h, n);
    }
    free(big);
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

static void test_links(void **state)
{
    kt *t = *state;
    char err[256];
    assert_int_equal(mem_know_link(t->k, "incident:1", "caused_by", "cause:oom_kill", 1, err, sizeof err), 0);
    assert_int_equal(mem_know_link(t->k, "incident:1", "caused_by", "cause:oom_kill", 2.5, err, sizeof err), 0);
    char *j = mem_know_links_json(t->k, "incident:1", 1);
    assert_non_null(j);
    assert_non_null(strstr(j, "\"weight\":3.5"));
    free(j);
    /* a chain a -> b -> c -> d -> e with a cycle back from c to a */
    const char *n[] = {"component:a", "component:b", "component:c", "component:d", "component:e"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(mem_know_link(t->k, n[i], "uses", n[i + 1], 0, err, sizeof err), 0);
    assert_int_equal(mem_know_link(t->k, n[2], "feeds", n[0], 1, err, sizeof err), 0);
    static const struct {
        int depth;
        bool d_in, e_in;
        int links;
    } want[] = {{1, false, false, 2}, {2, true, false, 4}, {3, true, true, 5}, {9, true, true, 5}};
    for (size_t w = 0; w < sizeof want / sizeof *want; w++) {
        j = mem_know_links_json(t->k, "component:a", want[w].depth);
        assert_non_null(j);
        int links = 0;
        for (const char *p = j; (p = strstr(p, "\"rel\"")); p++)
            links++;
        assert_int_equal(links, want[w].links);
        assert_int_equal(strstr(j, "\"component:d\"") != NULL, want[w].d_in);
        assert_int_equal(strstr(j, "\"component:e\"") != NULL, want[w].e_in);
        free(j);
    }
    j = mem_know_links_json(t->k, "component:nothing", 2);
    assert_string_equal(j, "[]");
    free(j);
    /* bad names, relations and weights */
    assert_int_equal(mem_know_link(t->k, "nocolon", "uses", "component:a", 1, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "nocolon"));
    assert_int_equal(mem_know_link(t->k, "Kind:x", "uses", "component:a", 1, err, sizeof err), -EINVAL);
    assert_int_equal(mem_know_link(t->k, "component:a", "", "component:b", 1, err, sizeof err), -EINVAL);
    assert_int_equal(mem_know_link(t->k, "component:a", "Uses Much", "component:b", 1, err, sizeof err), -EINVAL);
    assert_int_equal(mem_know_link(t->k, "component:a", "uses", "component:b", -1, err, sizeof err), -EINVAL);
    assert_int_equal(mem_know_link(t->k, "component:a", "uses", "component:b", NAN, err, sizeof err), -EINVAL);
    assert_null(mem_know_links_json(t->k, "bad", 1));
}

#define DAY 86400000LL

static void test_decay(void **state)
{
    kt *t = *state;
    add(t, "runbook/pinned.md", "pinned", "Restart the payment service only after draining the queue.", true, NULL);
    add(t, "doc/unused.md", "unused", "An old note about a printer that no longer exists.", false, NULL);
    add(t, "doc/used.md", "used", "Zebra crossings and quokka habitats are often discussed.", false, NULL);
    char err[256];
    assert_int_equal(mem_know_link(t->k, "doc:2", "about", "component:printer", 1, err, sizeof err), 0);
    int64_t now = know_now_ms();
    int decayed = -1, forgotten = -1;
    /* one half-life on: everything unpinned halves, nothing is forgotten */
    assert_int_equal(mem_know_decay(t->k, now + 30 * DAY, 30 * DAY, 0.1, &decayed, &forgotten), 0);
    assert_int_equal(decayed, 2);
    assert_int_equal(forgotten, 0);
    assert_in_range(count(t, "SELECT CAST(confidence * 1000 AS INTEGER) FROM docs WHERE id = 2"), 495, 505);
    assert_int_equal(count(t, "SELECT CAST(confidence * 1000 AS INTEGER) FROM docs WHERE id = 1"), 1000);
    /* a second call for the same moment does not count the time twice */
    assert_int_equal(mem_know_decay(t->k, now + 30 * DAY, 30 * DAY, 0.1, &decayed, &forgotten), 0);
    assert_in_range(count(t, "SELECT CAST(confidence * 1000 AS INTEGER) FROM docs WHERE id = 2"), 495, 505);
    /* the used doc is searched (its use refreshes it: counted, and stamped
     * now; the test moves the stamp to day 120 as if the search were then) */
    assert_int_equal(rank_of(t, "zebra quokka", MEM_KNOW_BM25, "doc/used.md"), 1);
    assert_int_equal(count(t, "SELECT uses FROM docs WHERE id = 3"), 0); /* counted in RAM first, */
    free(mem_know_stats_json(t->k));                                      /* written by a reader of them */
    assert_int_equal(count(t, "SELECT uses FROM docs WHERE id = 3"), 1);
    assert_int_equal(count(t, "SELECT uses FROM chunks WHERE doc = 3"), 1);
    assert_in_range(count(t, "SELECT last_used FROM docs WHERE id = 3"), now, know_now_ms());
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE docs SET last_used = %lld WHERE id = 3", (long long)(now + 120 * DAY));
    exec(t, sql);
    assert_int_equal(mem_know_decay(t->k, now + 150 * DAY, 30 * DAY, 0.1, &decayed, &forgotten), 0);
    assert_int_equal(forgotten, 1); /* unused: 0.5^5 < 0.1 */
    assert_int_equal(count(t, "SELECT count(*) FROM docs WHERE source = 'doc/unused.md'"), 0);
    assert_int_equal(count(t, "SELECT count(*) FROM docs WHERE source = 'doc/used.md'"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM docs WHERE source = 'runbook/pinned.md'"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM links"), 0);
    assert_int_equal(rank_of(t, "printer", MEM_KNOW_HYBRID, "doc/unused.md"), 0);
    /* much later: the used one goes too, the pinned one never */
    assert_int_equal(mem_know_decay(t->k, now + 3650 * DAY, 30 * DAY, 0.1, &decayed, &forgotten), 0);
    assert_int_equal(forgotten, 1);
    assert_int_equal(count(t, "SELECT count(*) FROM docs"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM chunks"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), 1);
    assert_int_equal(rank_of(t, "payment queue", MEM_KNOW_HYBRID, "runbook/pinned.md"), 1);
    assert_int_equal(mem_know_decay(t->k, now, 0, 0.1, NULL, NULL), -EINVAL);
    assert_int_equal(mem_know_decay(t->k, now, DAY, 1.5, NULL, NULL), -EINVAL);
}

static void test_dedup(void **state)
{
    kt *t = *state;
    add_corpus(t);
    const char *text = corpus[1].text;
    int64_t copy = add(t, "mirror/oom.md", corpus[1].title, text, true, NULL);
    char err[256];
    assert_int_equal(mem_know_link(t->k, "incident:7", "explained_by", "doc:2", 1, err, sizeof err), 0);
    char node[32];
    snprintf(node, sizeof node, "doc:%lld", (long long)copy);
    assert_int_equal(mem_know_link(t->k, "incident:7", "explained_by", node, 2, err, sizeof err), 0);
    assert_int_equal(mem_know_link(t->k, node, "mentions", "knob:vm.overcommit_memory", 1, err, sizeof err), 0);
    int merged = -1;
    assert_int_equal(mem_know_dedup(t->k, 0.98, &merged), 0);
    assert_int_equal(merged, 1);
    /* the older doc stays, the copy is gone, its links moved to the older (weights added) */
    assert_int_equal(count(t, "SELECT count(*) FROM docs WHERE source = 'mirror/oom.md'"), 0);
    assert_int_equal(count(t, "SELECT count(*) FROM docs WHERE source = 'doc/oom.md'"), 1);
    assert_int_equal(count(t, "SELECT pinned FROM docs WHERE id = 2"), 1); /* the copy's pin came along */
    assert_int_equal(count(t, "SELECT count(*) FROM docs"), NCORPUS);
    assert_int_equal(count(t, "SELECT weight FROM links WHERE from_node = 'incident:7' AND to_node = 'doc:2'"), 3);
    assert_int_equal(count(t, "SELECT count(*) FROM links WHERE from_node = 'doc:2' AND rel = 'mentions'"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM links"), 2);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), count(t, "SELECT count(*) FROM chunks"));
    assert_int_equal(rank_of(t, "oom killer victim", MEM_KNOW_HYBRID, "doc/oom.md"), 1);
    assert_int_equal(rank_of(t, "oom killer victim", MEM_KNOW_BM25, "mirror/oom.md"), 0);
    /* nothing else is that close */
    assert_int_equal(mem_know_dedup(t->k, 0.98, &merged), 0);
    assert_int_equal(merged, 0);
    assert_int_equal(mem_know_dedup(t->k, 0, &merged), -EINVAL);
    /* the same through the buckets that replace pairwise comparison at scale */
    add(t, "mirror/dns.md", corpus[4].title, corpus[4].text, false, NULL);
    add(t, "mirror2/dns.md", corpus[4].title, corpus[4].text, false, NULL);
    know_dedup_exact_max = 0;
    assert_int_equal(mem_know_dedup(t->k, 0.98, &merged), 0);
    know_dedup_exact_max = 4096;
    assert_int_equal(merged, 2);
    assert_int_equal(count(t, "SELECT count(*) FROM docs"), NCORPUS);
    assert_int_equal(count(t, "SELECT count(*) FROM docs WHERE source = 'doc/dns.md'"), 1);
}

/* An external embedder: letter frequencies in 26 dims, counting its calls. */
typedef struct fake_emb {
    int calls, max_batch;
    bool fail;
} fake_emb;

static int letters(void *ud, const char *const *texts, size_t n, float *out, int dims, char *err, size_t errlen)
{
    fake_emb *f = ud;
    __atomic_add_fetch(&f->calls, 1, __ATOMIC_RELAXED);
    if ((int)n > __atomic_load_n(&f->max_batch, __ATOMIC_RELAXED))
        __atomic_store_n(&f->max_batch, (int)n, __ATOMIC_RELAXED);
    if (f->fail) {
        snprintf(err, errlen, "embedder down");
        return -EIO;
    }
    for (size_t i = 0; i < n; i++) {
        float *v = out + i * (size_t)dims, s = 0;
        memset(v, 0, (size_t)dims * sizeof *v);
        for (const char *p = texts[i]; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                v[*p - 'a'] += 1;
        for (int d = 0; d < dims; d++)
            s += v[d] * v[d];
        for (int d = 0; s > 0 && d < dims; d++)
            v[d] /= sqrtf(s);
    }
    return 0;
}

static void test_embedder(void **state)
{
    kt *t = *state;
    add_corpus(t);
    fake_emb f = {0};
    mem_know_set_embedder(t->k, letters, &f, 26);
    char *s = mem_know_stats_json(t->k);
    assert_non_null(strstr(s, "\"embedder\":\"external\""));
    assert_non_null(strstr(s, "\"vectors\":0")); /* the old vectors wait for a reembed */
    free(s);
    int n = 0;
    assert_int_equal(mem_know_reembed(t->k, &n), 0);
    assert_int_equal(n, (int)count(t, "SELECT count(*) FROM chunks"));
    assert_true(f.calls >= 1 && f.max_batch <= KNOW_BATCH);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors WHERE dims = 26"), n);
    assert_in_range(rank_of(t, corpus[4].text, MEM_KNOW_VECTOR, corpus[4].source), 1, 1);
    /* an add while the embedder is down: stored, found by BM25, vectors on reembed */
    f.fail = true;
    add(t, "doc/late.md", "late", "Xylophone quartz jukebox.", false, NULL);
    assert_int_equal(rank_of(t, "xylophone", MEM_KNOW_HYBRID, "doc/late.md"), 1);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), n);
    mem_hit *h;
    size_t nh;
    char err[256];
    assert_int_equal(mem_know_search(t->k, "xylophone", MEM_KNOW_VECTOR, 5, &h, &nh, err, sizeof err), 0);
    assert_int_equal(nh, 0);
    mem_know_hits_free(h, nh);
    f.fail = false;
    assert_int_equal(mem_know_reembed(t->k, &n), 0);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors"), n);
    /* back to the built-in */
    mem_know_set_embedder(t->k, NULL, NULL, 0);
    assert_int_equal(mem_know_reembed(t->k, &n), 0);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors WHERE dims = 256"), n);
    assert_int_equal(rank_of(t, "nginx workers", MEM_KNOW_VECTOR, "doc/nginx.md"), 1);
}

typedef struct conc {
    kt *t;
    int errors, searches;
} conc;

static void *searcher(void *p)
{
    conc *c = p;
    char err[256];
    for (int i = 0; i < 60; i++) {
        mem_hit *h;
        size_t n;
        if (mem_know_search(c->t->k, queries[i % 12].query, i % 3, 5, &h, &n, err, sizeof err))
            __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
        else
            __atomic_add_fetch(&c->searches, 1, __ATOMIC_RELAXED);
        mem_know_hits_free(h, n);
    }
    return NULL;
}

static void *adder(void *p)
{
    conc *c = p;
    char err[256], src[64], text[256];
    for (int i = 0; i < 40; i++) {
        snprintf(src, sizeof src, "gen/%d", i);
        snprintf(text, sizeof text, "Generated note %d about widget%d calibration and sprocket%d tension.", i, i, i);
        mem_doc d = {.source = src, .title = src, .text = text};
        if (mem_know_add(c->t->k, &d, NULL, NULL, err, sizeof err))
            __atomic_add_fetch(&c->errors, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void concurrent(kt *t)
{
    conc c = {.t = t};
    pthread_t th[5];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, searcher, &c), 0);
    assert_int_equal(pthread_create(&th[4], NULL, adder, &c), 0);
    for (int i = 0; i < 5; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(c.errors, 0);
    assert_int_equal(c.searches, 240);
    assert_int_equal(count(t, "SELECT count(*) FROM docs"), NCORPUS + 40);
    assert_int_equal(rank_of(t, "widget17 sprocket17", MEM_KNOW_HYBRID, "gen/17"), 1);
}

static void test_concurrent(void **state)
{
    kt *t = *state;
    add_corpus(t);
    concurrent(t);
}

/* the same with an external embedder, called outside the store's lock */
static void test_concurrent_ext(void **state)
{
    kt *t = *state;
    fake_emb f = {0};
    mem_know_set_embedder(t->k, letters, &f, 26);
    add_corpus(t);
    concurrent(t);
    assert_int_equal(count(t, "SELECT count(*) FROM vectors WHERE dims = 26"), count(t, "SELECT count(*) FROM chunks"));
    assert_true(__atomic_load_n(&f.calls, __ATOMIC_RELAXED) >= 40 + 160); /* the adds and the searches that embed */
}

static void test_chunks(void **state)
{
    kt *t = *state;
    /* a markdown document: sections of 90 words under headings */
    char *text = malloc(40000);
    size_t o = 0;
    for (int s = 0; s < 12; s++) {
        o += (size_t)sprintf(text + o, "## Section %d\n\n", s);
        for (int p = 0; p < 2; p++) {
            for (int w = 0; w < 45; w++)
                o += (size_t)sprintf(text + o, "w%d_%d_%d%s", s, p, w, w == 44 ? ".\n\n" : " ");
        }
    }
    know_span *sp;
    size_t n;
    assert_int_equal(know_chunk(text, &sp, &n), 0);
    assert_true(n >= 5 && n <= 12);
    for (size_t i = 0; i < n; i++) {
        int words = 0;
        bool in = false;
        for (size_t b = sp[i].off; b < sp[i].off + sp[i].len; b++) {
            bool sp_ = text[b] == ' ' || text[b] == '\n';
            words += !sp_ && !in;
            in = !sp_;
        }
        assert_in_range(words, 20, KNOW_CHUNK_WORDS + KNOW_CHUNK_WORDS / 5 + 5);
        assert_true(sp[i].off + sp[i].len <= o);
        /* every chunk after the first starts at a heading (kept with its text) or overlaps its predecessor */
        if (i) {
            assert_true(!strncmp(text + sp[i].off, "## ", 3) || sp[i].off < sp[i - 1].off + sp[i - 1].len);
            assert_true(sp[i].off > sp[i - 1].off);
        }
        /* no chunk ends on a heading */
        const char *last = text + sp[i].off + sp[i].len;
        const char *ln = last;
        while (ln > text + sp[i].off && ln[-1] != '\n')
            ln--;
        assert_true(strncmp(ln, "## ", 3) != 0);
    }
    assert_int_equal(sp[0].off, 0);
    assert_int_equal(sp[n - 1].off + sp[n - 1].len, o - 2); /* the whole text is covered */
    free(sp);
    /* a long paragraph without breaks: windows that overlap by about 30 words */
    o = 0;
    for (int w = 0; w < 1000; w++)
        o += (size_t)sprintf(text + o, "x%d ", w);
    assert_int_equal(know_chunk(text, &sp, &n), 0);
    assert_in_range(n, 5, 6);
    size_t nlong = n;
    for (size_t i = 1; i < n; i++)
        assert_true(sp[i].off < sp[i - 1].off + sp[i - 1].len);
    free(sp);
    assert_int_equal(know_chunk(" \n\n ", &sp, &n), 0);
    assert_int_equal(n, 0);
    free(sp);
    /* stored with their offsets */
    int chunks;
    add(t, "doc/long", "long", text, false, &chunks);
    assert_int_equal(chunks, (int)nlong);
    assert_int_equal(count(t, "SELECT count(*) FROM chunks WHERE off > 0"), chunks - 1);
    free(text);
}

static void test_vec(void **state)
{
    (void)state;
    float a[1031], b[1031];
    unsigned r = 12345;
    for (int i = 0; i < 1031; i++) {
        r = r * 1103515245u + 12345u;
        a[i] = (float)((r >> 8) % 2001) / 1000.0f - 1.0f;
        r = r * 1103515245u + 12345u;
        b[i] = (float)((r >> 8) % 2001) / 1000.0f - 1.0f;
    }
    static const size_t ns[] = {0, 1, 7, 8, 15, 16, 17, 31, 256, 1000, 1031};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        double ref = 0;
        for (size_t j = 0; j < ns[i]; j++)
            ref += (double)a[j] * b[j];
        assert_float_equal(mem_vec_dot_scalar(a, b, ns[i]), ref, 1e-3);
        assert_float_equal(mem_vec_dot(a, b, ns[i]), ref, 1e-3);
#if defined(__x86_64__) || defined(__i386__)
        if (know_vec_avx2())
            assert_float_equal(mem_vec_dot_avx2(a, b, ns[i]), mem_vec_dot_scalar(a, b, ns[i]), 1e-3);
#endif
    }
    /* the top-k scan against a sort */
    know_index ix = {.dims = 16};
    float q[16];
    memcpy(q, a, sizeof q);
    for (int i = 0; i < 60; i++)
        assert_int_equal(know_index_append(&ix, 10 + i, a + i), 0);
    int64_t id[8];
    float s[8];
    assert_int_equal(know_index_top(&ix, q, 8, id, s), 8);
    for (int i = 0; i < 60; i++) {
        float v = mem_vec_dot(q, a + i, 16);
        int better = 0;
        for (int j = 0; j < 60; j++)
            better += mem_vec_dot(q, a + j, 16) > v;
        if (better < 8)
            assert_int_equal(id[better], 10 + i);
    }
    for (int i = 1; i < 8; i++)
        assert_true(s[i - 1] >= s[i]);
    int64_t drop[] = {10, 11, 40};
    know_index_drop(&ix, drop, 3);
    assert_int_equal(ix.n, 57);
    assert_int_equal(know_index_find(&ix, 11), -1);
    assert_int_equal(know_index_find(&ix, 12), 0);
    assert_int_equal(know_index_find(&ix, 41), 28);
    assert_float_equal(ix.v[28 * 16], a[31], 0);
    know_index_free(&ix);
}

static void test_foreign(void **state)
{
    kt *t = *state;
    char path[160], err[512] = "";
    mem_know *k = (mem_know *)1;
    /* another application's SQLite file */
    snprintf(path, sizeof path, "%s/other.db", t->dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 1234; CREATE TABLE x (a)", NULL, NULL, NULL), 0);
    sqlite3_close(db);
    assert_int_equal(mem_know_open(path, &k, err, sizeof err), -EINVAL);
    assert_null(k);
    assert_non_null(strstr(err, "not an IPPOC knowledge store"));
    /* not SQLite at all */
    snprintf(path, sizeof path, "%s/garbage.db", t->dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 200; i++)
        fputs("this is not a database file at all. ", f);
    fclose(f);
    assert_true(mem_know_open(path, &k, err, sizeof err) < 0);
    assert_non_null(strstr(err, path));
    /* a schema newer than this build */
    mem_know_close(t->k);
    t->k = NULL;
    exec(t, "PRAGMA user_version = 99");
    assert_int_equal(mem_know_open(t->path, &k, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "newer"));
    exec(t, "PRAGMA user_version = 2");
    kt_open(t);
    /* no path, a dir that does not exist */
    assert_int_equal(mem_know_open("", &k, err, sizeof err), -EINVAL);
    assert_true(mem_know_open("/nonexistent-dir/k.db", &k, err, sizeof err) < 0);
    assert_non_null(strstr(err, "/nonexistent-dir/k.db"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_retrieval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_ext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunks, setup, teardown),
        cmocka_unit_test(test_vec),
        cmocka_unit_test_setup_teardown(test_foreign, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
