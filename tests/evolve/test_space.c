/* test_space.c: space files (src/evolve/space.c): a good file parses, every
 * error names FILE:LINE and its reason, knob values round-trip through
 * parse/format, and writing a knob file keeps its other lines. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "evolve/evolve.h"
#include "evolve_test_util.h"

static const char *good =
    "; a PostgreSQL space\n"
    "[space]\n"
    "name = pg\n"
    "fitness = sh -c 'pgbench -T 10'\n"
    "goal = max\n"
    "never = fsync, synchronous_commit\n"
    "\n"
    "[sandbox]\n"
    "writable = /tmp /var/tmp\n"
    "network = loopback\n"
    "timeout = 2min\n"
    "memory = 512MB\n"
    "cpu = 150\n"
    "\n"
    "[knob shared_buffers]\n"
    "file = /etc/pg/ippoc.conf\n"
    "type = size\n"
    "min = 32MB\n"
    "max = 4GB\n"
    "unit = MB\n"
    "seeds = 128MB, 1GB\n"
    "[knob random_page_cost]\n"
    "file = /etc/pg/ippoc.conf\n"
    "type = float\n"
    "min = 1\n"
    "max = 4\n"
    "[knob wal_level]\n"
    "file = /etc/pg/ippoc.conf\n"
    "type = enum\n"
    "choices = minimal, replica, logical\n"
    "[knob jit]\n"
    "file = /etc/pg/ippoc.conf\n"
    "type = bool\n"
    "[knob checkpoint_timeout]\n"
    "file = /etc/pg/ippoc.conf\n"
    "type = duration\n"
    "min = 30s\n"
    "max = 1h\n";

static void test_good(void **state)
{
    (void)state;
    evolve_space s;
    char err[512] = "";
    assert_int_equal(evolve_space_parse(good, "pg.space", &s, err, sizeof err), 0);
    assert_string_equal(s.name, "pg");
    assert_string_equal(s.fitness, "sh -c 'pgbench -T 10'");
    assert_false(s.minimize);
    assert_int_equal(s.nnever, 2);
    assert_string_equal(s.never[1], "synchronous_commit");
    assert_int_equal(s.nwritable, 2);
    assert_string_equal(s.writable[1], "/var/tmp");
    assert_true(s.network);
    assert_int_equal(s.trial_timeout_ms, 120000);
    assert_int_equal(s.memory_bytes, 512ull << 20);
    assert_true(fabs(s.cpu_percent - 150) < 1e-9);
    assert_int_equal(s.nknobs, 5);
    const evolve_knob *k = &s.knobs[0];
    assert_string_equal(k->key, "shared_buffers");
    assert_int_equal(k->type, EVOLVE_KNOB_SIZE);
    assert_true(k->min == 32.0 * 1048576 && k->max == 4.0 * 1073741824);
    assert_true(k->log_scale); /* > 16x span: log by default */
    assert_int_equal(k->nseeds, 2);
    assert_string_equal(k->seeds[1], "1GB");
    assert_false(s.knobs[1].log_scale);
    assert_int_equal(s.knobs[2].nchoices, 3);
    assert_true(s.knobs[2].max == 2);
    assert_int_equal(s.knobs[3].type, EVOLVE_KNOB_BOOL);
    assert_true(s.knobs[4].min == 30000 && s.knobs[4].max == 3600000);
}

/* Replaces the first occurrence of from in good by to, parses, and checks
 * the message. */
static void expect_error(const char *from, const char *to, const char *msg)
{
    char text[4096];
    const char *at = strstr(good, from);
    assert_non_null(at);
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    evolve_space s;
    char err[512] = "";
    int rc = evolve_space_parse(text, "bad.space", &s, err, sizeof err);
    if (rc != -EINVAL || !strstr(err, msg))
        fail_msg("replacing '%s': rc %d, '%s' (wanted '%s')", from, rc, err, msg);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("goal = max", "goal = maximal", "bad.space:5: goal must be max or min");
    expect_error("cpu = 150", "cpus = 150", "bad.space:13: unknown key 'cpus' in [sandbox]");
    expect_error("type = size", "type = sizes", "bad.space:17: bad type 'sizes'");
    expect_error("min = 32MB", "min = 8GB", "bad.space:18: knob shared_buffers: min 8GB > max 4GB");
    expect_error("seeds = 128MB, 1GB", "seeds = 128MB, 8GB",
                 "bad.space:21: knob shared_buffers: seed 8GB is outside");
    expect_error("[knob random_page_cost]", "[knob fsync]",
                 "bad.space:22: knob fsync: 'fsync' is on the never list (line 6)");
    expect_error("file = /etc/pg/ippoc.conf\ntype = float", "file = pg.conf\ntype = float",
                 "bad.space:23: file 'pg.conf' is not an absolute path");
    expect_error("[knob jit]", "[knob wal_level]", "bad.space:31: duplicate knob 'wal_level' (first at line 27)");
    expect_error("max = 4\n", "max = four\n", "bad.space:26: max: random_page_cost: 'four' is not a number");
    expect_error("min = 30s", "min = 30 parsecs",
                 "bad.space:37: min: checkpoint_timeout: '30 parsecs' has an unknown unit");
    expect_error("[sandbox]", "[sandbag]", "bad.space:8: unknown section [sandbag]");
    expect_error("network = loopback", "network loopback", "bad.space:10: expected KEY = VALUE");
    expect_error("name = pg\n", "", "bad.space:1: [space] has no name");
    expect_error("name = pg\n", "name = ../pg\n", "bad.space:3: name '../pg': use letters, digits");
    expect_error("type = bool\n", "", "bad.space:31: knob jit has no type");
}

static void test_load_missing(void **state)
{
    (void)state;
    evolve_space s;
    char err[512] = "";
    assert_int_equal(evolve_space_load("/nonexistent/x.space", &s, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x.space"));
}

static void round_trip(const evolve_knob *k, const char *text, double want, const char *formatted)
{
    double v;
    char err[256] = "", buf[64];
    assert_int_equal(evolve_knob_parse(k, text, &v, err, sizeof err), 0);
    if (fabs(v - want) > 1e-9)
        fail_msg("%s: %s parsed as %g, wanted %g", k->name, text, v, want);
    evolve_knob_format(k, v, buf, sizeof buf);
    assert_string_equal(buf, formatted);
    double again;
    assert_int_equal(evolve_knob_parse(k, buf, &again, err, sizeof err), 0);
    assert_true(fabs(again - v) < 1e-9);
}

static void test_values(void **state)
{
    (void)state;
    evolve_knob size = {.name = "sb", .type = EVOLVE_KNOB_SIZE};
    round_trip(&size, "128MB", 134217728, "128MB");
    round_trip(&size, "8kB", 8192, "8kB");
    round_trip(&size, "1GB", 1073741824, "1GB");
    round_trip(&size, "1536MB", 1610612736, "1536MB");
    round_trip(&size, "100", 100, "100");
    round_trip(&size, "'2GB'", 2147483648.0, "2GB");
    evolve_knob sizemb = {.name = "sb", .type = EVOLVE_KNOB_SIZE, .unit = "MB"};
    round_trip(&sizemb, "1GB", 1073741824, "1024MB");
    round_trip(&sizemb, "64", 67108864, "64MB"); /* a plain number is in the knob's unit */
    evolve_knob dur = {.name = "ct", .type = EVOLVE_KNOB_DURATION};
    round_trip(&dur, "300ms", 300, "300ms");
    round_trip(&dur, "5s", 5000, "5s");
    round_trip(&dur, "15min", 900000, "15min");
    round_trip(&dur, "1h", 3600000, "1h");
    round_trip(&dur, "90s", 90000, "90s");
    evolve_knob b = {.name = "jit", .type = EVOLVE_KNOB_BOOL, .nchoices = 2, .choices = {"off", "on"}};
    round_trip(&b, "on", 1, "on");
    round_trip(&b, "false", 0, "off");
    evolve_knob e = {.name = "wl", .type = EVOLVE_KNOB_ENUM, .nchoices = 2, .choices = {"replica", "logical"}};
    round_trip(&e, "logical", 1, "logical");
    evolve_knob i = {.name = "n", .type = EVOLVE_KNOB_INT};
    round_trip(&i, "42", 42, "42");
    evolve_knob f = {.name = "rpc", .type = EVOLVE_KNOB_FLOAT};
    round_trip(&f, "1.25", 1.25, "1.25");
    double v;
    char err[256];
    assert_int_equal(evolve_knob_parse(&i, "4.5", &v, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "n: '4.5' is not an integer"));
    assert_int_equal(evolve_knob_parse(&e, "minimal", &v, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not one of its choices"));
    assert_int_equal(evolve_knob_parse(&b, "maybe", &v, err, sizeof err), -EINVAL);
    assert_int_equal(evolve_knob_parse(&size, "12 parsecs", &v, err, sizeof err), -EINVAL);
}

static void test_write_file(void **state)
{
    (void)state;
    char dir[] = "/tmp/test-space-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], text[2048];
    snprintf(path, sizeof path, "%s/pg.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("# tuned by hand\nmax_connections = 100\nshared_buffers = 128MB   # the default\n"
          "\n  work_mem=4MB\nshared_buffers = 256MB\n", f);
    fclose(f);
    snprintf(text, sizeof text,
             "[space]\nname = t\n[knob shared_buffers]\nfile = %s\ntype = size\nmin = 1MB\nmax = 8GB\n"
             "[knob work_mem]\nfile = %s\ntype = size\nmin = 1MB\nmax = 1GB\nunit = MB\n"
             "[knob jit]\nfile = %s\ntype = bool\n[knob other]\nfile = %s/other.conf\ntype = int\nmin = 0\nmax = 9\n",
             path, path, path, dir);
    evolve_space s;
    char err[512] = "";
    assert_int_equal(evolve_space_parse(text, "t.space", &s, err, sizeof err), 0);
    double cur[4];
    assert_int_equal(evolve_space_read_values(&s, cur, err, sizeof err), 0);
    assert_true(cur[0] == 256.0 * 1048576); /* the last line wins, as in postgresql.conf */
    assert_true(cur[1] == 4.0 * 1048576);
    assert_true(isnan(cur[2]) && isnan(cur[3]));
    double v[4] = {1073741824.0, 64.0 * 1048576, 1, 3};
    assert_int_equal(evolve_space_write_file(&s, path, v, err, sizeof err), 0);
    assert_string_equal(etu_read(path), "# tuned by hand\nmax_connections = 100\nshared_buffers = 1GB\n\n"
                                     "work_mem = 64MB\njit = on\n");
    double back[4];
    assert_int_equal(evolve_space_read_values(&s, back, err, sizeof err), 0);
    assert_true(back[0] == v[0] && back[1] == v[1] && back[2] == 1 && isnan(back[3]));
    /* NaN leaves a knob's line alone */
    double w[4] = {NAN, NAN, 0, 3};
    assert_int_equal(evolve_space_write_file(&s, path, w, err, sizeof err), 0);
    assert_non_null(strstr(etu_read(path), "shared_buffers = 1GB\n\nwork_mem = 64MB\njit = off\n"));
    /* a bad value in the file names FILE:LINE */
    f = fopen(path, "a");
    fputs("work_mem = lots\n", f);
    fclose(f);
    assert_int_equal(evolve_space_read_values(&s, back, err, sizeof err), -EINVAL);
    char want[300];
    snprintf(want, sizeof want, "%s:7: work_mem: 'lots' is not a number", path);
    assert_string_equal(err, want);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),        cmocka_unit_test(test_errors),     cmocka_unit_test(test_load_missing),
        cmocka_unit_test(test_values),      cmocka_unit_test(test_write_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
