/* memtest.h: shared fixtures of the memory unit tests: a fresh state dir per
 * test (removed afterwards), a configuration pointing at it, open/close
 * helpers, a direct SQLite handle for looking at what was stored and a
 * reader of one stored rollup bucket (decoding its chunk). */
#ifndef IPPOC_MEMTEST_H
#define IPPOC_MEMTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory/mem_int.h"

/* An hour-aligned synthetic epoch (2023-11-14T22:00:00Z) */
#define T0 1699999200000LL

typedef struct mt {
    char dir[64];
    core_config cfg;
    mem_t *m;
} mt;

static inline int mt_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static inline void mt_rmrf(const char *dir)
{
    nftw(dir, mt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static inline mt *mt_new(int64_t window_ms)
{
    mt *t = calloc(1, sizeof *t);
    assert_non_null(t);
    strcpy(t->dir, "/tmp/ippoc-memtest-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    core_log_setup(CORE_LOG_ERR, 0);
    core_config_defaults(&t->cfg);
    snprintf(t->cfg.state_dir, sizeof t->cfg.state_dir, "%s", t->dir);
    if (window_ms)
        t->cfg.mem_ram_window_ms = window_ms;
    return t;
}

static inline void mt_open(mt *t)
{
    char err[1024] = "";
    int rc = mem_open(&t->m, &t->cfg, err, sizeof err);
    if (rc)
        fail_msg("mem_open: %d: %s", rc, err);
}

static inline void mt_close(mt *t)
{
    mem_close(t->m);
    t->m = NULL;
}

static inline void mt_free(mt *t)
{
    if (t->m)
        mt_close(t);
    mt_rmrf(t->dir);
    core_config_free(&t->cfg);
    free(t);
}

static inline int mt_setup(void **state)
{
    mt *t = mt_new(60000);
    mt_open(t);
    *state = t;
    return 0;
}

static inline int mt_teardown(void **state)
{
    mt_free(*state);
    return 0;
}

static inline void mt_path(const mt *t, char *buf, size_t n)
{
    snprintf(buf, n, "%s/ippoc.db", t->dir);
}

/* A second, direct connection for checking what was stored. */
static inline sqlite3 *mt_db(const mt *t)
{
    char p[128];
    sqlite3 *db;
    mt_path(t, p, sizeof p);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static inline int64_t mt_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    return v;
}

static inline double mt_dbl(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    double v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_double(st, 0) : NAN;
    sqlite3_finalize(st);
    return v;
}

#define assert_near(a, b) do { double a_ = (a), b_ = (b); \
    if (!(fabs(a_ - b_) <= 1e-6 * (1 + fabs(b_)))) fail_msg("%s = %.9g, expected %.9g", #a, a_, b_); } while (0)

/* Bucket of `tier` starting at ts, decoded from its stored chunk; count 0
 * when the chunk or the bucket is empty. */
static inline mem_bucket mt_bucket(sqlite3 *db, int tier, int id, int64_t ts)
{
    static const char *const tab[] = {"rollup_10s", "rollup_1m", "rollup_1h"};
    static const int64_t cw[] = {300000, 3600000, 86400000}, w[] = {10000, 60000, 3600000};
    int64_t c = ts / cw[tier] * cw[tier];
    char sql[160];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT data FROM %s WHERE series = %d AND chunk_ts = %lld", tab[tier], id,
             (long long)c);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    mem_bucket b[MEM_CHUNK_MAX] = {{0}};
    int n = (int)(cw[tier] / w[tier]);
    if (sqlite3_step(st) == SQLITE_ROW &&
        mem_chunk_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), n,
                         (uint32_t)(w[tier] / 1000), b))
        fail_msg("%s: malformed chunk", sql);
    sqlite3_finalize(st);
    return b[(ts - c) / w[tier]];
}

static inline void mt_flush(mt *t)
{
    assert_int_equal(mem_flush(t->m, 20000), 0);
}

#endif
