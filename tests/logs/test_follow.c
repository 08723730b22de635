/* test_follow.c: the file follower (src/logs/follow.c) on real files in a
 * temporary directory, driven by a real libuv loop and inotify: appends,
 * a partial last line, rotation by rename while lines are still written,
 * copy-truncate, delete and recreate, a file (and a directory) created later,
 * a glob, a very long line, and the per-iteration read budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "logs/watch_int.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define MAXL 40000

typedef struct got {
    char *line[MAXL];
    bool cut[MAXL];
    int n;
    int since_check, max_per_iter;
} got;

static got G;
static uv_loop_t loop;
static char dir[256];

static void on_line(void *ud, void *owner, const char *path, const char *line, size_t len, bool cut)
{
    got *g = ud;
    if (g->n < MAXL) {
        g->line[g->n] = strndup(line, len);
        g->cut[g->n++] = cut;
    }
    g->since_check++;
}

static void on_check(uv_check_t *c)
{
    if (G.since_check > G.max_per_iter)
        G.max_per_iter = G.since_check;
    G.since_check = 0;
}

static void on_wake(uv_timer_t *t) { (void)t; }

/* Runs the loop until n lines have come (or the deadline); with poll, also
 * calls logs_follow_poll every 100 ms as the watch's tick does. */
static bool wait_lines(logs_follow *f, int n, int timeout_ms, bool poll)
{
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    int64_t end = core_mono_ms() + timeout_ms, next_poll = 0;
    while (G.n < n && core_mono_ms() < end) {
        if (poll && core_mono_ms() >= next_poll) {
            logs_follow_poll(f);
            next_poll = core_mono_ms() + 100;
        }
        uv_timer_start(&t, on_wake, 20, 0);
        uv_run(&loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return G.n >= n;
}

/* Runs the loop for ms (to see that nothing more comes). */
static void settle(int ms)
{
    int have = G.n;
    wait_lines(NULL, have + MAXL, ms, false);
}

static void reset(void)
{
    for (int i = 0; i < G.n; i++)
        free(G.line[i]);
    memset(&G, 0, sizeof G);
}

static void append(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static logs_follow *start(void)
{
    logs_follow *f;
    char err[256];
    reset();
    assert_int_equal(logs_follow_new(&loop, on_line, &G, &f, err, sizeof err), 0);
    return f;
}

static void stop(logs_follow *f)
{
    logs_follow_free(f);
    uv_run(&loop, UV_RUN_DEFAULT); /* the handles close */
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ippoc-follow.XXXXXX");
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    reset();
    uv_loop_close(&loop);
    return 0;
}

static void test_append_from_end(void **state)
{
    char p[300], err[256];
    path_of(p, sizeof p, "app.log");
    append(p, "history 1\nhistory 2\n");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    append(p, "new one\nnew two\r\n");
    assert_true(wait_lines(f, 2, 3000, false));
    settle(100);
    assert_int_equal(G.n, 2);
    assert_string_equal(G.line[0], "new one");
    assert_string_equal(G.line[1], "new two"); /* the \r goes */
    stop(f);

    /* from_start replays what is there */
    f = start();
    assert_int_equal(logs_follow_add(f, p, &G, true, err, sizeof err), 0);
    assert_true(wait_lines(f, 4, 3000, false));
    assert_string_equal(G.line[0], "history 1");
    stop(f);
}

static void test_partial_line(void **state)
{
    char p[300], err[256];
    path_of(p, sizeof p, "partial.log");
    append(p, "");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    append(p, "first\nhal");
    assert_true(wait_lines(f, 1, 3000, false));
    settle(100); /* "hal" is read but is no line yet */
    logs_follow_stats st;
    logs_follow_get_stats(f, &st);
    assert_int_equal(st.bytes, 9);
    assert_int_equal(G.n, 1);
    append(p, "f a line\n");
    assert_true(wait_lines(f, 2, 3000, false));
    assert_string_equal(G.line[1], "half a line");
    stop(f);
}

/* A writer goes on writing to the renamed file before it reopens the path
 * (as a logger does until it gets its signal): every line comes, once. */
static void test_rotate_rename_while_writing(void **state)
{
    char p[300], p1[300], err[256], buf[64];
    path_of(p, sizeof p, "rot.log");
    path_of(p1, sizeof p1, "rot.log.1");
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    assert_true(fd >= 0);
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buf, sizeof buf, "line %d\n", i);
        assert_int_equal(write(fd, buf, (size_t)n), n);
        if (i == 50)
            uv_run(&loop, UV_RUN_NOWAIT); /* some read before the rename */
    }
    assert_int_equal(rename(p, p1), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    for (int i = 100; i < 150; i++) { /* still into the old file */
        int n = snprintf(buf, sizeof buf, "line %d\n", i);
        assert_int_equal(write(fd, buf, (size_t)n), n);
    }
    close(fd);
    fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0644);
    for (int i = 150; i < 200; i++) {
        int n = snprintf(buf, sizeof buf, "line %d\n", i);
        assert_int_equal(write(fd, buf, (size_t)n), n);
    }
    close(fd);
    assert_true(wait_lines(f, 200, 5000, false));
    settle(200);
    assert_int_equal(G.n, 200);
    bool seen[200] = {0};
    for (int i = 0; i < G.n; i++) {
        int k = -1;
        assert_int_equal(sscanf(G.line[i], "line %d", &k), 1);
        assert_true(k >= 0 && k < 200);
        assert_false(seen[k]);
        seen[k] = true;
    }
    /* the old file is let go once it stopped growing */
    int64_t end = core_mono_ms() + 5000;
    logs_follow_stats st;
    do {
        settle(100);
        logs_follow_poll(f);
        logs_follow_get_stats(f, &st);
    } while (st.files > 1 && core_mono_ms() < end);
    assert_int_equal(st.files, 1);
    stop(f);
}

/* A writer thread logs as fast as it can while it is rotated under it:
 * rename, a few hundred more lines into the renamed file, then a new file.
 * Every line arrives exactly once, each file's lines in order. */
#define CONC_LINES 20000
typedef struct writer_arg {
    char path[300], rotated[300];
} writer_arg;

static void *writer(void *p)
{
    writer_arg *a = p;
    char buf[64];
    int fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    for (int i = 0; i < CONC_LINES; i++) {
        if (i == CONC_LINES / 3 && rename(a->path, a->rotated))
            abort();
        if (i == CONC_LINES / 3 + 300) { /* the logger notices and reopens */
            close(fd);
            fd = open(a->path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        }
        int n = snprintf(buf, sizeof buf, "seq %d\n", i);
        if (write(fd, buf, (size_t)n) != n)
            abort();
    }
    close(fd);
    return NULL;
}

static void test_rotate_concurrent_writer(void **state)
{
    writer_arg a;
    char err[256];
    path_of(a.path, sizeof a.path, "busy.log");
    path_of(a.rotated, sizeof a.rotated, "busy.log.1");
    append(a.path, "");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, a.path, &G, false, err, sizeof err), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, writer, &a), 0);
    bool all = wait_lines(f, CONC_LINES, 15000, false);
    pthread_join(th, NULL);
    settle(200);
    if (!all)
        fprintf(stderr, "got %d of %d lines\n", G.n, CONC_LINES);
    assert_int_equal(G.n, CONC_LINES);
    static bool seen[CONC_LINES];
    memset(seen, 0, sizeof seen);
    int last_old = -1, last_new = -1;
    for (int i = 0; i < G.n; i++) {
        int k = -1;
        assert_int_equal(sscanf(G.line[i], "seq %d", &k), 1);
        assert_true(k >= 0 && k < CONC_LINES);
        assert_false(seen[k]);
        seen[k] = true;
        int *last = k < CONC_LINES / 3 + 300 ? &last_old : &last_new;
        assert_true(k > *last); /* in order within each file */
        *last = k;
    }
    stop(f);
}

static void test_copy_truncate(void **state)
{
    char p[300], err[256];
    path_of(p, sizeof p, "ct.log");
    append(p, "");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    append(p, "before truncation, a long enough line\n");
    assert_true(wait_lines(f, 1, 3000, false));
    assert_int_equal(truncate(p, 0), 0);
    append(p, "after\n");
    assert_true(wait_lines(f, 2, 3000, false));
    assert_string_equal(G.line[1], "after");
    stop(f);
}

static void test_delete_recreate(void **state)
{
    char p[300], err[256];
    path_of(p, sizeof p, "del.log");
    append(p, "");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    append(p, "a\n");
    assert_true(wait_lines(f, 1, 3000, false));
    assert_int_equal(unlink(p), 0);
    settle(100);
    append(p, "b\n"); /* back: read from its start */
    assert_true(wait_lines(f, 2, 3000, false));
    assert_string_equal(G.line[1], "b");
    stop(f);
}

static void test_created_later(void **state)
{
    char p[300], sub[300], q[400], err[256];
    path_of(p, sizeof p, "later.log");
    path_of(sub, sizeof sub, "sub");
    snprintf(q, sizeof q, "%s/deep.log", sub);
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    assert_int_equal(logs_follow_add(f, q, &G, false, err, sizeof err), 0); /* not even its directory yet */
    append(p, "first words\n");
    assert_true(wait_lines(f, 1, 3000, false)); /* inotify on the directory */
    assert_string_equal(G.line[0], "first words");
    assert_int_equal(mkdir(sub, 0755), 0);
    append(q, "deep words\n");
    assert_true(wait_lines(f, 2, 3000, true)); /* the once-a-second check finds the directory */
    assert_string_equal(G.line[1], "deep words");
    append(q, "more deep words\n"); /* and from then on inotify watches it */
    assert_true(wait_lines(f, 3, 3000, false));
    stop(f);
}

static void test_glob(void **state)
{
    char p[300], a[300], a1[300], b[300], err[256];
    path_of(p, sizeof p, "*.log");
    path_of(a, sizeof a, "a.log");
    path_of(a1, sizeof a1, "a.log.1");
    path_of(b, sizeof b, "b.log");
    append(a, "old a\n");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    append(b, "b from its start\n"); /* a new match */
    append(a, "new a\n");
    assert_true(wait_lines(f, 2, 3000, false));
    settle(100);
    assert_int_equal(G.n, 2);
    bool got_a = false, got_b = false;
    for (int i = 0; i < 2; i++) {
        got_a |= !strcmp(G.line[i], "new a");
        got_b |= !strcmp(G.line[i], "b from its start");
    }
    assert_true(got_a && got_b);
    /* rotated out of the glob: drained; the new a.log read from its start */
    int fd = open(a, O_WRONLY | O_APPEND);
    assert_int_equal(rename(a, a1), 0);
    assert_int_equal(write(fd, "late a\n", 7), 7);
    close(fd);
    append(a, "fresh a\n");
    assert_true(wait_lines(f, 4, 3000, false));
    settle(100);
    assert_int_equal(G.n, 4);
    stop(f);
}

static void test_long_line(void **state)
{
    char p[300], err[256];
    path_of(p, sizeof p, "long.log");
    append(p, "");
    logs_follow *f = start();
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    size_t n = 3 * LOGS_LINE_MAX + 100;
    char *big = malloc(n + 16);
    memset(big, 'x', n);
    memcpy(big + n, "\nshort\n", 8);
    append(p, big);
    free(big);
    assert_true(wait_lines(f, 2, 3000, false));
    settle(100);
    assert_int_equal(G.n, 2);
    assert_true(G.cut[0]);
    assert_int_equal(strlen(G.line[0]), LOGS_LINE_MAX);
    assert_false(G.cut[1]);
    assert_string_equal(G.line[1], "short");
    logs_follow_stats st;
    logs_follow_get_stats(f, &st);
    assert_int_equal(st.cut_lines, 1);
    stop(f);
}

/* 2 MB at once is read over several loop iterations, not in one. */
static void test_budget(void **state)
{
    char p[300], err[256];
    path_of(p, sizeof p, "big.log");
    append(p, "");
    logs_follow *f = start();
    uv_check_t chk;
    uv_check_init(&loop, &chk);
    uv_check_start(&chk, on_check);
    assert_int_equal(logs_follow_add(f, p, &G, false, err, sizeof err), 0);
    int lines = 2 * 1024 * 1024 / 64;
    char *text = malloc((size_t)lines * 64 + 1);
    for (int i = 0; i < lines; i++)
        snprintf(text + i * 64, 65, "%-63d\n", i);
    append(p, text);
    free(text);
    assert_true(wait_lines(f, lines, 10000, false));
    assert_int_equal(G.n, lines);
    assert_true(G.max_per_iter <= 2 * (LOGS_READ_BUDGET / 64 + 1)); /* a timer and an inotify wake-up */
    assert_true(G.max_per_iter > 0);
    uv_close((uv_handle_t *)&chk, NULL);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_from_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_rename_while_writing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotate_concurrent_writer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_truncate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_recreate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_created_later, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
