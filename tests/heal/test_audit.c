/* test_audit.c: the hash-chained audit log on real files in a temporary dir:
 * 1000 records verify; the line format re-derived independently; reopen
 * continues the chain; tampering (a changed byte, a deleted line, two lines
 * swapped, a record rewritten with its own hash made consistent, garbage) is
 * found at the right line; a torn tail is reported as such, recovered at open
 * without losing bytes, and a forged recovery does not pass; 4 threads
 * appending give unique gapless seqs while the live log verifies intact;
 * symlinks, foreign modes and a second writer are refused; reading with
 * filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "heal/audit.h"

typedef struct tdir {
    char dir[256];
    char path[320];
} tdir;

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(p);
}

static int setup(void **state)
{
    tdir *t = calloc(1, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "%s/ippoc-audit-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->path, sizeof t->path, "%s/audit.log", t->dir);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tdir *t = *state;
    nftw(t->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    free(t);
    return 0;
}

static heal_action act(heal_action_kind k, const char *svc)
{
    heal_action a;
    memset(&a, 0, sizeof a);
    a.kind = k;
    snprintf(a.service, sizeof a.service, "%s", svc);
    return a;
}

/* Appends n records cycling through kinds; the i-th has reason "rule conf.d/web.conf:<i>". */
static void fill(heal_audit *au, int n, uint64_t first_seq)
{
    heal_action a = act(HEAL_ACT_RESTART, "web");
    heal_action b = act(HEAL_ACT_LIMIT_MEMORY, "db");
    b.bytes = 600u << 20;
    for (int i = 0; i < n; i++) {
        char reason[64], err[256] = "";
        snprintf(reason, sizeof reason, "rule conf.d/web.conf:%d", i);
        heal_audit_rec r = {.kind = (heal_audit_kind)(i % 5), .ts_ms = 1700000000000 + i,
                            .action = i % 3 ? &a : &b, .reason = reason, .mode = "heal"};
        if (r.kind == HEAL_AUDIT_RESULT) {
            r.outcome = i % 2 ? HEAL_OUTCOME_OK : HEAL_OUTCOME_TIMEOUT;
            r.message = "done";
            r.duration_ms = i;
            r.intent_seq = first_seq + (uint64_t)i - 1;
        } else if (r.kind == HEAL_AUDIT_DECISION) {
            r.verdict = "refuse";
            r.detail = "rate limited";
        } else if (r.kind >= HEAL_AUDIT_APPROVAL) {
            r.pending_id = (uint64_t)i;
            r.detail = "cli";
        }
        uint64_t seq = 0;
        int rc = heal_audit_append(au, &r, &seq, err, sizeof err);
        if (rc)
            fail_msg("append %d: %d %s", i, rc, err);
        assert_int_equal(seq, first_seq + (uint64_t)i);
    }
}

static void write_log(tdir *t, int n)
{
    heal_audit *au;
    char err[256] = "";
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    fill(au, n, 1);
    heal_audit_close(au);
}

/* ---- file helpers -------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

typedef struct lines {
    char *l[64];
    int n;
} lines;

static lines split(const char *path)
{
    lines L = {.n = 0};
    size_t n;
    char *b = slurp(path, &n), *save = NULL;
    for (char *x = strtok_r(b, "\n", &save); x && L.n < 64; x = strtok_r(NULL, "\n", &save))
        L.l[L.n++] = strdup(x);
    free(b);
    return L;
}

static void join(const char *path, lines *L)
{
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < L->n; i++) {
        fputs(L->l[i], f);
        fputc('\n', f);
        free(L->l[i]);
    }
    fclose(f);
}

/* The hash of a line computed the way audit.h documents it. */
static void doc_hash(const char *line, char out[65])
{
    const char *h = strstr(line, ",\"hash\":\"");
    assert_non_null(h);
    const char *pv = strstr(line, "\"prev\":\"");
    assert_non_null(pv);
    size_t body = (size_t)(h - line);
    char *buf = malloc(64 + body + 2);
    memcpy(buf, pv + 8, 64);
    memcpy(buf + 64, line, body);
    buf[64 + body] = '}';
    unsigned char d[32];
    crypto_hash_sha256(d, (unsigned char *)buf, 64 + body + 1);
    sodium_bin2hex(out, 65, d, 32);
    free(buf);
}

static heal_audit_verify_result verify(tdir *t, int want_rc)
{
    heal_audit_verify_result r;
    char err[256] = "";
    int rc = heal_audit_verify(t->path, &r, err, sizeof err);
    if (rc != want_rc)
        fail_msg("verify: rc %d (want %d) status %s line %llu: %s %s", rc, want_rc,
                 heal_audit_status_name(r.status), (unsigned long long)r.bad_line, r.why, err);
    return r;
}

/* ---- tests ------------------------------------------------------------------------ */

static void test_thousand(void **state)
{
    tdir *t = *state;
    write_log(t, 1000);
    heal_audit_verify_result r = verify(t, 0);
    assert_int_equal(r.status, HEAL_AUDIT_OK);
    assert_int_equal(r.records, 1000);
    assert_int_equal(r.last_seq, 1000);
    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* The format, re-derived independently of audit.c. */
    lines L = split(t->path);
    assert_int_equal(L.n, 64); /* split keeps the first 64 lines */
    const char *want0 = "{\"seq\":1,\"ts\":1700000000000,\"kind\":\"intent\",\"service\":\"db\","
                                 "\"action\":{\"kind\":\"limit memory\",\"text\":\"limit memory 600MB\","
                                 "\"bytes\":629145600},\"reason\":\"rule conf.d/web.conf:0\",\"mode\":\"heal\","
                                 "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                                 "\"hash\":\"";
    assert_true(!strncmp(L.l[0], want0, strlen(want0)));
    assert_non_null(strstr(L.l[1], "\"outcome\":{\"status\":\"ok\",\"message\":\"done\",\"duration_ms\":1}"));
    for (int i = 0; i < L.n; i++) {
        char h[65];
        doc_hash(L.l[i], h);
        assert_non_null(strstr(L.l[i], h));
        if (i) { /* prev is the previous record's hash */
            char want[80];
            const char *ph = strstr(L.l[i - 1], ",\"hash\":\"") + 9;
            snprintf(want, sizeof want, "\"prev\":\"%.64s\"", ph);
            assert_non_null(strstr(L.l[i], want));
        }
    }
    for (int i = 0; i < L.n; i++)
        free(L.l[i]);
}

static void test_reopen_continues(void **state)
{
    tdir *t = *state;
    heal_audit *au;
    char err[256] = "", h1[65], h2[65];
    uint64_t s1, s2;
    write_log(t, 3);
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    assert_int_equal(heal_audit_torn_at_open(au), 0);
    heal_audit_head(au, &s1, h1);
    assert_int_equal(s1, 3);
    fill(au, 2, 4);
    heal_audit_head(au, &s2, h2);
    assert_int_equal(s2, 5);
    heal_audit_close(au);
    heal_audit_verify_result r = verify(t, 0);
    assert_int_equal(r.records, 5);
    assert_string_equal(r.last_hash, h2);
    assert_string_not_equal(h1, h2);
}

static void test_tamper_byte(void **state)
{
    tdir *t = *state;
    write_log(t, 10);
    lines L = split(t->path);
    char *p = strstr(L.l[4], "web.conf:4");
    p[9] = '5'; /* "web.conf:5": a plausible lie */
    join(t->path, &L);
    heal_audit_verify_result r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_HASH_MISMATCH);
    assert_int_equal(r.bad_line, 5);
    assert_int_equal(r.bad_seq, 5);
    assert_int_equal(r.records, 4);
    assert_non_null(strstr(r.why, "own hash"));

    /* A byte inside the JSON structure: bad JSON. */
    unlink(t->path);
    write_log(t, 10);
    L = split(t->path);
    L.l[2][0] = '[';
    join(t->path, &L);
    r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_BAD_JSON);
    assert_int_equal(r.bad_line, 3);
}

static void test_tamper_delete(void **state)
{
    tdir *t = *state;
    write_log(t, 10);
    lines L = split(t->path);
    free(L.l[4]);
    memmove(L.l + 4, L.l + 5, 5 * sizeof L.l[0]);
    L.n--;
    join(t->path, &L);
    heal_audit_verify_result r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_SEQ_GAP);
    assert_int_equal(r.bad_line, 5);
    assert_int_equal(r.bad_seq, 6);
}

static void test_tamper_reorder(void **state)
{
    tdir *t = *state;
    write_log(t, 10);
    lines L = split(t->path);
    char *x = L.l[3];
    L.l[3] = L.l[4];
    L.l[4] = x;
    join(t->path, &L);
    heal_audit_verify_result r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_SEQ_GAP);
    assert_int_equal(r.bad_line, 4);
    assert_int_equal(r.bad_seq, 5);
}

static void test_tamper_consistent_hash(void **state)
{
    tdir *t = *state;
    write_log(t, 10);
    lines L = split(t->path);
    /* Rewrite record 5's reason and recompute its own hash: record 5 alone
     * looks fine, record 6's prev gives it away. */
    char *l = L.l[4];
    char *p = strstr(l, "web.conf:4");
    p[9] = '7';
    char h[65];
    doc_hash(l, h);
    memcpy(strstr(l, ",\"hash\":\"") + 9, h, 64);
    join(t->path, &L);
    heal_audit_verify_result r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_PREV_MISMATCH);
    assert_int_equal(r.bad_line, 6);
    assert_int_equal(r.bad_seq, 6);
    assert_int_equal(r.records, 5);
}

static void test_torn_tail(void **state)
{
    tdir *t = *state;
    write_log(t, 10);
    size_t n;
    char *orig = slurp(t->path, &n);
    assert_int_equal(truncate(t->path, (off_t)n - 20), 0);

    heal_audit_verify_result r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_TORN_TAIL);
    assert_int_equal(r.bad_line, 10);
    assert_int_equal(r.records, 9);
    assert_non_null(strstr(r.why, "never completed"));

    /* Open records the torn line and keeps every byte of it. */
    heal_audit *au;
    char err[256] = "";
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    assert_int_equal(heal_audit_torn_at_open(au), 1);
    uint64_t seq;
    heal_audit_head(au, &seq, NULL);
    assert_int_equal(seq, 10); /* the recovery record took seq 10 */
    fill(au, 2, 11);
    heal_audit_close(au);
    size_t m;
    char *now = slurp(t->path, &m);
    assert_memory_equal(now, orig, n - 20);
    assert_int_equal(now[n - 20], '\n');
    assert_non_null(strstr(now + n - 19, "\"kind\":\"recovery\""));
    free(orig);

    r = verify(t, 0);
    assert_int_equal(r.records, 12);
    assert_int_equal(r.torn_recovered, 1);
    /* A second open finds nothing torn. */
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    assert_int_equal(heal_audit_torn_at_open(au), 0);
    heal_audit_close(au);

    /* Changing the torn bytes afterwards is tampering, not a torn tail. */
    now[n - 30] ^= 1;
    spit(t->path, now, m);
    free(now);
    r = verify(t, -EBADMSG);
    assert_int_not_equal(r.status, HEAL_AUDIT_TORN_TAIL);
    assert_int_equal(r.bad_line, 10);
}

static void test_torn_only_and_twice(void **state)
{
    tdir *t = *state;
    heal_audit *au;
    char err[256] = "";
    /* The very first write was torn. */
    spit(t->path, "{\"seq\":1,\"ts\":17", 16);
    chmod(t->path, 0600);
    verify(t, -EBADMSG);
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    assert_int_equal(heal_audit_torn_at_open(au), 1);
    fill(au, 1, 2);
    heal_audit_close(au);
    heal_audit_verify_result r = verify(t, 0);
    assert_int_equal(r.records, 2);
    assert_int_equal(r.torn_recovered, 1);

    /* A crash tearing the recovery write itself, after its newline: the torn
     * region spans two lines and is still recovered as one. */
    FILE *f = fopen(t->path, "ab");
    fputs("{\"seq\":3,\"ts\":1", f); /* torn */
    fclose(f);
    f = fopen(t->path, "ab");
    fputs("\n{\"seq\":3,\"ts\":1700,\"kind\":\"recov", f); /* torn recovery */
    fclose(f);
    r = verify(t, -EBADMSG);
    assert_int_equal(r.status, HEAL_AUDIT_BAD_JSON); /* line 3 is complete now but no record */
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    assert_int_equal(heal_audit_torn_at_open(au), 1);
    fill(au, 1, 4);
    heal_audit_close(au);
    r = verify(t, 0);
    assert_int_equal(r.records, 4);
    assert_int_equal(r.torn_recovered, 2);
}

static void test_bad_last_line(void **state)
{
    tdir *t = *state;
    write_log(t, 3);
    FILE *f = fopen(t->path, "ab");
    fputs("not a record\n", f);
    fclose(f);
    heal_audit *au;
    char err[256] = "";
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "not a valid record"));
    assert_null(au);
}

typedef struct thr {
    heal_audit *au;
    uint64_t seqs[250];
} thr;

static void *worker(void *arg)
{
    thr *w = arg;
    heal_action a = act(HEAL_ACT_SIGNAL, "worker");
    a.signum = 15;
    for (int i = 0; i < 250; i++) {
        heal_audit_rec r = {.kind = HEAL_AUDIT_INTENT, .action = &a, .reason = "api"};
        char err[128];
        if (heal_audit_append(w->au, &r, &w->seqs[i], err, sizeof err))
            w->seqs[i] = 0;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_threads(void **state)
{
    tdir *t = *state;
    heal_audit *au;
    char err[256] = "";
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    thr w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i].au = au;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    /* Checking the live log while they append always finds it intact. */
    for (int i = 0; i < 5; i++) {
        heal_audit_verify_result vr;
        int rc = heal_audit_verify_live(au, &vr, err, sizeof err);
        if (rc)
            fail_msg("verify_live during appends: %s line %llu: %s", heal_audit_status_name(vr.status),
                     (unsigned long long)vr.bad_line, vr.why);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* A line being written by someone else right now (simulated) is past
     * what verify_live looks at; a plain verify calls it a torn tail. */
    struct stat st;
    assert_int_equal(stat(t->path, &st), 0);
    FILE *f = fopen(t->path, "ab");
    fputs("{\"seq\":1001,\"ts\":1", f);
    fclose(f);
    heal_audit_verify_result lr;
    assert_int_equal(heal_audit_verify_live(au, &lr, err, sizeof err), 0);
    assert_int_equal(lr.records, 1000);
    verify(t, -EBADMSG);
    heal_audit_close(au);
    assert_int_equal(truncate(t->path, st.st_size), 0);
    uint64_t all[1000];
    for (int i = 0; i < 4; i++)
        memcpy(all + i * 250, w[i].seqs, sizeof w[i].seqs);
    qsort(all, 1000, sizeof all[0], cmp_u64);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(all[i], (uint64_t)i + 1);
    heal_audit_verify_result r = verify(t, 0);
    assert_int_equal(r.records, 1000);
}

static void test_refusals(void **state)
{
    tdir *t = *state;
    heal_audit *au = NULL, *au2 = NULL;
    char err[256] = "", target[400], link[400];
    snprintf(target, sizeof target, "%s/real.log", t->dir);
    snprintf(link, sizeof link, "%s/link.log", t->dir);
    int fd = open(target, O_CREAT | O_WRONLY, 0600);
    close(fd);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(heal_audit_open(link, &au, err, sizeof err), -ELOOP);
    assert_non_null(strstr(err, "symbolic link"));
    heal_audit_verify_result r;
    assert_int_equal(heal_audit_verify(link, &r, err, sizeof err), -ELOOP);
    /* A dangling symlink is not followed to create a file either. */
    unlink(target);
    assert_int_equal(heal_audit_open(link, &au, err, sizeof err), -ELOOP);
    assert_int_equal(access(target, F_OK), -1);

    /* Writable by others: refused. */
    fd = open(target, O_CREAT | O_WRONLY, 0600);
    close(fd);
    chmod(target, 0666);
    assert_int_equal(heal_audit_open(target, &au, err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "writable by group or others"));
    chmod(target, 0600);

    /* A directory is not a log. */
    assert_int_equal(heal_audit_open(t->dir, &au, err, sizeof err), -EISDIR);

    /* One writer at a time. */
    assert_int_equal(heal_audit_open(target, &au, err, sizeof err), 0);
    assert_int_equal(heal_audit_open(target, &au2, err, sizeof err), -EBUSY);
    assert_non_null(strstr(err, "in use"));
    heal_audit_close(au);

    /* Missing file for verify. */
    assert_int_equal(heal_audit_verify(t->path, &r, err, sizeof err), -ENOENT);
}

static void test_bad_records(void **state)
{
    tdir *t = *state;
    heal_audit *au;
    char err[256] = "";
    assert_int_equal(heal_audit_open(t->path, &au, err, sizeof err), 0);
    heal_audit_rec r = {.kind = HEAL_AUDIT_RECOVERY};
    assert_int_equal(heal_audit_append(au, &r, NULL, err, sizeof err), -EINVAL);
    r.kind = HEAL_AUDIT_RESULT;
    assert_int_equal(heal_audit_append(au, &r, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "outcome"));
    r.kind = (heal_audit_kind)42;
    assert_int_equal(heal_audit_append(au, &r, NULL, err, sizeof err), -EINVAL);
    heal_action a = act((heal_action_kind)99, "x");
    r = (heal_audit_rec){.kind = HEAL_AUDIT_INTENT, .action = &a};
    assert_int_equal(heal_audit_append(au, &r, NULL, err, sizeof err), -EINVAL);

    /* Any bytes: invalid UTF-8, quotes, newlines and control characters are
     * escaped; the line stays one ASCII line. */
    a = act(HEAL_ACT_PLAYBOOK, "we\"b\n");
    snprintf(a.program, sizeof a.program, "/bin/echo \xff\xfe \x01");
    r = (heal_audit_rec){.kind = HEAL_AUDIT_INTENT, .action = &a, .reason = "cli caf\xc3\xa9"};
    uint64_t seq;
    assert_int_equal(heal_audit_append(au, &r, &seq, err, sizeof err), 0);
    assert_int_equal(seq, 1);
    heal_audit_close(au);
    heal_audit_verify_result v = verify(t, 0);
    assert_int_equal(v.records, 1);
    size_t n;
    char *b = slurp(t->path, &n);
    for (size_t i = 0; i < n; i++)
        assert_true((unsigned char)b[i] < 0x80 && (b[i] >= 0x20 || (b[i] == '\n' && i == n - 1)));
    assert_non_null(strstr(b, "caf\\u00E9"));
    free(b);
}

typedef struct collect {
    uint64_t seq[64];
    int n;
} collect;

static int collect_cb(const heal_audit_entry *e, void *ud)
{
    collect *c = ud;
    assert_non_null(e->json);
    assert_true(e->len > 0 && e->line[0] == '{');
    c->seq[c->n++] = e->seq;
    return c->n == 64;
}

static void test_read(void **state)
{
    tdir *t = *state;
    write_log(t, 30); /* services alternate: i%3==0 -> db, else web */
    collect c = {.n = 0};
    char err[256] = "";
    assert_int_equal(heal_audit_read(t->path, NULL, collect_cb, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 30);
    c.n = 0;
    heal_audit_filter f = {.since_seq = 25};
    assert_int_equal(heal_audit_read(t->path, &f, collect_cb, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 5);
    assert_int_equal(c.seq[0], 26);
    c.n = 0;
    f = (heal_audit_filter){.last_n = 4, .service = "db"};
    assert_int_equal(heal_audit_read(t->path, &f, collect_cb, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.seq[0], 19); /* db: seq 1, 4, ..., 28 */
    assert_int_equal(c.seq[3], 28);
    c.n = 0;
    f = (heal_audit_filter){.last_n = 100};
    assert_int_equal(heal_audit_read(t->path, &f, collect_cb, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 30);
    /* A torn tail is skipped by read. */
    FILE *fp = fopen(t->path, "ab");
    fputs("{\"seq\":31,", fp);
    fclose(fp);
    c.n = 0;
    assert_int_equal(heal_audit_read(t->path, NULL, collect_cb, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 30);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_thousand, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_consistent_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_only_and_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_last_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
