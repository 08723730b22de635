/* test_store.c: the database file: created from nothing and from an empty
 * file, a newer schema version refused, a corrupt or foreign file refused
 * with its name and left untouched, WAL mode, and a kill -9 at a random
 * moment of a writing child: the file opens again, holds every tick the
 * child saw committed (at most the last one lost) and the rollups built
 * from them, before and after the kill, stay exact. */
#include "memtest.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

static void test_fresh_and_empty_file(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    char p[128];
    mt_path(t, p, sizeof p);
    int fd = open(p, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    mt_open(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(mt_int(db, "PRAGMA user_version"), 4);
    assert_int_equal(mt_int(db, "PRAGMA application_id"), 0x49504f43);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM sqlite_schema WHERE name IN ('series', 'raw', "
                                "'rollup_10s', 'rollup_1m', 'rollup_1h', 'events', 'meta', "
                                "'detector_state')"), 8);
    sqlite3_close(db);
    /* reopening an up-to-date file migrates nothing */
    mt_close(t);
    mt_open(t);
}

static void expect_open_fails(mt *t, int want, const char *needle)
{
    char err[1024] = "", p[128];
    mt_path(t, p, sizeof p);
    int rc = mem_open(&t->m, &t->cfg, err, sizeof err);
    assert_int_equal(rc, want);
    assert_null(t->m);
    if (!strstr(err, p))
        fail_msg("error '%s' does not name %s", err, p);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_future_version_refused(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    mem_series(t->m, "a", "", "", "", MEM_GAUGE);
    mt_close(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_open_fails(t, -EPROTONOSUPPORT, "newer");
    db = mt_db(t);
    assert_int_equal(mt_int(db, "PRAGMA user_version"), 99);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM series"), 1); /* data untouched */
    sqlite3_close(db);
}

static void test_corrupt_file_refused(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    char p[128], junk[8192];
    mt_path(t, p, sizeof p);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 131 + 7);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    expect_open_fails(t, -EIO, "not a database");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, sizeof junk);
}

static void test_foreign_db_refused(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "PRAGMA application_id = 1234; CREATE TABLE x(a)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    expect_open_fails(t, -EINVAL, "not an IPPOC memory");
}

static void test_unwritable_state_dir(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    snprintf(t->cfg.state_dir, sizeof t->cfg.state_dir, "%s/file/sub", t->dir);
    char p[160];
    snprintf(p, sizeof p, "%s/file", t->dir);
    FILE *f = fopen(p, "w");
    fclose(f);
    char err[512] = "";
    assert_true(mem_open(&t->m, &t->cfg, err, sizeof err) < 0);
    assert_non_null(strstr(err, "state directory"));
    assert_null(t->m);
}

/* The store failing under the writer (here: a table dropped behind its
 * back): batches are dropped and counted, nothing blocks, flush returns,
 * the RAM window still answers, close works. */
static void test_writer_errors(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    mt_open(t);
    int id = mem_series(t->m, "v", "", "", "", MEM_GAUGE);
    mt_flush(t);
    sqlite3 *db = mt_db(t);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE raw", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    for (int i = 0; i < 20; i++) {
        mem_put(t->m, id, i);
        assert_int_equal(mem_tick(t->m, T0 + i * 1000LL), 0);
        mt_flush(t);
    }
    mem_stats st;
    mem_get_stats(t->m, &st);
    assert_true(st.dropped_batches >= 1);
    assert_int_equal(st.queue_depth, 0);
    mem_point *p;
    size_t n;
    int src;
    char err[256];
    assert_int_equal(mem_query(t->m, id, T0, T0 + 19000, 1000, 100, &p, &n, &src, err, sizeof err), 0);
    assert_int_equal(n, 20);
    free(p);
    assert_true(mem_event_add(t->m, 0, "still.works", "info", "", NULL) > 0);
    mt_flush(t);
}

/* ---- crash test ------------------------------------------------------------ */

#define NSER 40
#define CRASH_SPAN 3000 /* ticks the child would write at most */

static double cval(int i, int s)
{
    return (i + s) % 9 == 4 ? NAN : (double)((i * (s + 3)) % 101) - 50.0;
}

/* The child: ticks as fast as it can, flushes every few ticks and reports
 * through the pipe how many ticks are known committed. */
static void child_main(const mt *t, int wfd)
{
    mem_t *m;
    char err[512];
    if (mem_open(&m, &t->cfg, err, sizeof err))
        _exit(3);
    int ids[NSER];
    for (int s = 0; s < NSER; s++) {
        char l[32];
        snprintf(l, sizeof l, "n=\"%d\"", s);
        ids[s] = mem_series(m, "crash", l, "", "", MEM_GAUGE);
    }
    for (int i = 0; i < CRASH_SPAN; i++) {
        for (int s = 0; s < NSER; s++)
            mem_put(m, ids[s], cval(i, s));
        if (mem_tick(m, T0 + i * 1000LL))
            _exit(4);
        if (i % 7 == 6) {
            if (mem_flush(m, 20000))
                _exit(5);
            int32_t done = i + 1;
            if (write(wfd, &done, sizeof done) != sizeof done)
                _exit(6);
        }
    }
    int32_t end = -1;
    if (write(wfd, &end, sizeof end) != sizeof end)
        _exit(6);
    for (;;)
        pause();
}

static int run_child_and_kill(mt *t, int kill_after)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(t, fds[1]);
    }
    close(fds[1]);
    int32_t done = 0, v;
    while (read(fds[0], &v, sizeof v) == sizeof v) {
        if (v < 0)
            break;
        done = v;
        if (done >= kill_after)
            break;
    }
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    close(fds[0]);
    if (!WIFSIGNALED(status))
        fail_msg("child exited with %d before the kill", WEXITSTATUS(status));
    return done;
}

static void test_kill9(void **state)
{
    mt *t = mt_new(60000);
    *state = t;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    srand(seed);
    int kill_after = 200 + rand() % 2000;
    print_message("kill -9 after %d committed ticks (seed %u)\n", kill_after, seed);
    int reported = run_child_and_kill(t, kill_after);
    assert_true(reported >= kill_after);

    mt_open(t); /* must open */
    sqlite3 *db = mt_db(t);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
    int64_t last = mt_int(db, "SELECT max(ts) FROM raw");
    int committed = (int)((last - T0) / 1000) + 1;
    print_message("child reported %d committed ticks, the file holds %d\n", reported, committed);
    assert_true(committed >= reported - 1);
    sqlite3_close(db);
    assert_int_equal(mem_series_count(t->m), NSER);

    /* the RAM window came back: the last committed tick is there */
    int id = mem_series_find(t->m, "crash", "n=\"5\"");
    mem_point *p;
    size_t n;
    int src;
    char err[256];
    assert_int_equal(mem_query(t->m, id, last, last, 1000, 10, &p, &n, &src, err, sizeof err), 0);
    assert_int_equal(src, MEM_SRC_RAM);
    int li = committed - 1;
    assert_int_equal(n, isnan(cval(li, 5)) ? 0 : 1);
    if (n)
        assert_near(p[0].mean, cval(li, 5));
    free(p);

    /* go on past the hour: every 10 s and 1 min bucket of it holds each
     * committed tick exactly once */
    int ids[NSER];
    for (int s = 0; s < NSER; s++) {
        char l[32];
        snprintf(l, sizeof l, "n=\"%d\"", s);
        ids[s] = mem_series_find(t->m, "crash", l);
        assert_true(ids[s] >= 0);
    }
    for (int i = committed; i <= 3600; i++) {
        for (int s = 0; s < NSER; s++)
            mem_put(t->m, ids[s], cval(i, s));
        assert_int_equal(mem_tick(t->m, T0 + i * 1000LL), 0);
        if (i % 50 == 0)
            mt_flush(t);
    }
    mt_flush(t);
    db = mt_db(t);
    for (int s = 0; s < NSER; s += 13) {
        for (int tier = 0; tier < 2; tier++) {
            int per = tier ? 60 : 10;
            for (int b = 0; b < 3600 / per; b++) {
                double sum = 0, mn = INFINITY, mx = -INFINITY;
                uint32_t cnt = 0;
                for (int i = b * per; i < (b + 1) * per; i++) {
                    double v = cval(i, s);
                    if (!isnan(v))
                        sum += v, cnt++, mn = fmin(mn, v), mx = fmax(mx, v);
                }
                mem_bucket k = mt_bucket(db, tier, ids[s], T0 + b * per * 1000LL);
                assert_int_equal(k.count, cnt);
                assert_near(k.min, mn);
                assert_near(k.max, mx);
                assert_near(k.mean, sum / cnt);
            }
        }
    }
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_1m"), NSER);
    assert_int_equal(mt_int(db, "SELECT count(*) FROM rollup_10s"), NSER * 12);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fresh_and_empty_file, mt_teardown),
        cmocka_unit_test_teardown(test_future_version_refused, mt_teardown),
        cmocka_unit_test_teardown(test_corrupt_file_refused, mt_teardown),
        cmocka_unit_test_teardown(test_foreign_db_refused, mt_teardown),
        cmocka_unit_test_teardown(test_unwritable_state_dir, mt_teardown),
        cmocka_unit_test_teardown(test_writer_errors, mt_teardown),
        cmocka_unit_test_teardown(test_kill9, mt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
