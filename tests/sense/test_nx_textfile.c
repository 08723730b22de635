/* test_nx_textfile.c: the node_exporter textfile collector (nx_textfile.c)
 * through sense_nx_open / sense_nx_render, over real *.prom files in a
 * temporary directory and the proc1 fixture tree (for the other collectors'
 * families): good files merged, each kind of bad file left out and reported
 * in node_textfile_scrape_error, unreadable entries, a missing directory,
 * the collector off, and the log written once per change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sense/nx_int.h"
#include "sense/nx_sys.h"
#include "nx_test_util.h"
#include "tree.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct tfx {
    char dir[256];     /* the textfile directory */
    char sys[300];
    core_config cfg;
    sense_nx *nx;
    char *text;        /* the last exposition */
    size_t len;
} tfx;

static void emit(void *ud, const char *text, size_t len)
{
    tfx *f = ud;
    free(f->text);
    f->text = malloc(len + 1);
    assert_non_null(f->text);
    memcpy(f->text, text, len);
    f->text[len] = 0;
    f->len = len;
}

static tfx *tfx_new(void)
{
    tfx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ippoc-nxtf-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->sys, sizeof f->sys, "%s/sys", fixtures_dir());
    char proc[300];
    snprintf(proc, sizeof proc, "%s/proc1", fixtures_dir());
    core_config_defaults(&f->cfg);
    core_sncpy(f->cfg.proc_root, sizeof f->cfg.proc_root, proc);
    core_sncpy(f->cfg.sys_root, sizeof f->cfg.sys_root, f->sys);
    core_sncpy(f->cfg.textfile_dir, sizeof f->cfg.textfile_dir, f->dir);
    char err[256];
    assert_int_equal(sense_nx_open(&f->nx, &f->cfg, err, sizeof err), 0);
    return f;
}

static void tfx_free(tfx *f)
{
    sense_nx_close(f->nx);
    core_config_free(&f->cfg);
    tree_rm(f->dir);
    free(f->text);
    free(f);
}

static void put(tfx *f, const char *name, const char *content)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", f->dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
    /* a fixed mtime, so the exposition can be compared exactly */
    struct timespec ts[2] = {{1700000000, 0}, {1700000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

static void render(tfx *f)
{
    assert_int_equal(sense_nx_render(f->nx, emit, f), 0);
}

/* Whether the exposition has this exact line. */
static bool has_line(const tfx *f, const char *line)
{
    return nxt_has_line(f->text, line);
}

static void expect(const tfx *f, const char *line)
{
    if (!has_line(f, line)) {
        fprintf(stderr, "--- exposition ---\n%s--- end ---\n", f->text);
        fail_msg("missing line: %s", line);
    }
}

static void expect_not(const tfx *f, const char *needle)
{
    if (strstr(f->text, needle)) {
        fprintf(stderr, "--- exposition ---\n%s--- end ---\n", f->text);
        fail_msg("unexpected text: %s", needle);
    }
}

/* Removes the samples that vary between two scrapes: the collectors'
 * durations, the clock and the kernel's clock discipline (time, timex). */
static void drop_durations(char *text)
{
    static const char *const vary[] = {"node_scrape_collector_duration_seconds{", "node_time_seconds ",
                                       "node_timex_"};
    char *w = text;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
        bool keep = true;
        for (size_t i = 0; i < sizeof vary / sizeof vary[0]; i++)
            keep &= strncmp(p, vary[i], strlen(vary[i])) != 0;
        if (keep) {
            memmove(w, p, n);
            w += n;
        }
        p += n;
    }
    *w = 0;
}

static void mtime_line(const tfx *f, const char *file, char *out, size_t n)
{
    snprintf(out, n, "node_textfile_mtime_seconds{file=\"%s/%s\"} 1700000000", f->dir, file);
}

/* ---- good files ------------------------------------------------------------------ */
static void test_good_files(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    put(f, "a.prom",
        "# HELP job_last_success_seconds When the backup last succeeded.\n"
        "# TYPE job_last_success_seconds gauge\n"
        "job_last_success_seconds{job=\"backup\"} 1.7e9\n"
        "\n"
        "# a comment\n"
        "plain_metric 7\n"
        "escaped{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\\n\",} NaN\n"
        "  spaced_metric { a = \"1\" , b=\"2\" }   +Inf\n"
        "# TYPE shouty GAUGE\n"
        "shouty-1\n"
        "dup{a=\"1\",b=\"2\"} 1\n"
        "dup{b=\"2\",a=\"1\"} 2\n"
        "# TYPE typeless_comment\n"
        "# HELP helpless_comment\n");
    put(f, "b.prom",
        "# TYPE job_last_success_seconds gauge\n"
        "job_last_success_seconds{job=\"rotate\"} 12\n"
        "job_last_success_seconds{job=\"backup\"} 99\n"
        "plain_metric{x=\"y\"} -3.5\n"
        "# HELP req_seconds Request latency.\n"
        "# TYPE req_seconds histogram\n"
        "req_seconds_bucket{le=\"0.1\"} 1\n"
        "req_seconds_bucket{le=\"+Inf\"} 3\n"
        "req_seconds_sum 0.5\n"
        "req_seconds_count 3\n"
        "# TYPE rpc_seconds summary\n"
        "rpc_seconds{quantile=\"0.5\"} 0.2\n"
        "rpc_seconds_sum 1\n"
        "rpc_seconds_count 4\n");
    put(f, "ignored.txt", "not_read 1\n");
    render(f);
    char l[600];
    expect(f, "# HELP job_last_success_seconds When the backup last succeeded.");
    expect(f, "# TYPE job_last_success_seconds gauge");
    expect(f, "job_last_success_seconds{job=\"backup\"} 1700000000");
    expect(f, "job_last_success_seconds{job=\"rotate\"} 12");
    expect_not(f, "job_last_success_seconds{job=\"backup\"} 99");  /* a repeat of a.prom's series: dropped */
    snprintf(l, sizeof l, "# HELP plain_metric Metric read from %s/a.prom, %s/b.prom", f->dir, f->dir);
    expect(f, l);
    expect(f, "# TYPE plain_metric untyped");
    expect(f, "plain_metric 7");
    expect(f, "plain_metric{x=\"y\"} -3.5");
    expect(f, "escaped{path=\"C:\\\\dir\",q=\"say \\\"hi\\\"\\n\"} NaN");
    expect(f, "spaced_metric{a=\"1\",b=\"2\"} +Inf");
    expect(f, "# TYPE req_seconds histogram");
    expect(f, "req_seconds_bucket{le=\"+Inf\"} 3");
    expect(f, "req_seconds_count 3");
    expect(f, "# TYPE rpc_seconds summary");
    expect(f, "rpc_seconds{quantile=\"0.5\"} 0.2");
    expect(f, "rpc_seconds_sum 1");
    mtime_line(f, "a.prom", l, sizeof l);
    expect(f, l);
    mtime_line(f, "b.prom", l, sizeof l);
    expect(f, l);
    expect(f, "# TYPE node_textfile_mtime_seconds gauge");
    expect(f, "node_textfile_scrape_error 0");
    expect(f, "node_scrape_collector_success{collector=\"textfile\"} 1");
    expect_not(f, "not_read");
    expect(f, "# TYPE shouty gauge");
    expect(f, "shouty -1");
    expect(f, "dup{a=\"1\",b=\"2\"} 1"); /* the repeated series is dropped, the first kept */
    expect_not(f, "} 2\ndup");
    expect_not(f, "dup{b=");
    expect_not(f, "typeless_comment");   /* ignored, as node_exporter ignores it */
    expect_not(f, "helpless_comment");
    /* each family comes out once, as one block */
    const char *first = strstr(f->text, "# TYPE job_last_success_seconds");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE job_last_success_seconds"));
    assert_non_null(strstr(first, "job_last_success_seconds{job=\"rotate\"}"));
    /* the other collectors are still there */
    expect(f, "node_load1 0.5");
    /* steady state: a second scrape gives the same text (but the durations) */
    char *before = strdup(f->text);
    drop_durations(before);
    render(f);
    drop_durations(f->text);
    assert_string_equal(before, f->text);
    free(before);
    tfx_free(f);
}

/* ---- bad files: each kind left out, the good file kept ---------------------------- */
typedef struct bad_case {
    const char *content;
    const char *why; /* part of the logged reason */
} bad_case;

static const bad_case bad_cases[] = {
    {"9bad_name 1\n", "invalid metric name"},
    {"bad-name 1\n", "expected a number as the value, got \"-name\""},
    {"m{a=\"1\" 2\n", "expected ',' or '}'"},
    {"m{a=1} 2\n", "expected '\"'"},
    {"m{1a=\"1\"} 2\n", "invalid label name"},
    {"m{a=\"x\\q\"} 2\n", "invalid escape sequence"},
    {"m{a=\"open} 2\n", "unterminated value"},
    {"m{a=\"1\",a=\"2\"} 2\n", "duplicate label name"},
    {"m{__name__=\"x\"} 2\n", "reserved"},
    {"m twelve\n", "expected a number as the value"},
    {"m\n", "expected a value"},
    {"m 0x1p3\n", "expected a number as the value"},
    {"m 1_000\n", "expected a number as the value"},
    {"m 1 1700000000000\n", "timestamps are not supported"},
    {"# TYPE m gauge\n# TYPE m gauge\nm 1\n", "second TYPE line"},
    {"# HELP m one\n# HELP m two\nm 1\n", "second HELP line"},
    {"# TYPE m gauges\nm 1\n", "unknown metric type"},
    {"m 1\n# TYPE m gauge\n", "after its samples"},
    {"# HELP m bad \\t escape\nm 1\n", "invalid escape sequence in HELP"},
    {"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "expected a number as the value of label \"le\""},
    {"# TYPE s summary\ns{quantile=\"high\"} 1\n", "expected a number as the value of label \"quantile\""},
    {"m 1\nm2 2", "the last line has no newline"},
    {"m 1 \n", "blank after the value"},
    {"# TYPE m gauge \nm 1\n", "unknown metric type \"gauge \""},
    {"node_load1 5\n", "already exported by another collector"},
    {"latin{city=\"M\xfcnchen\"} 1\n", "is not valid UTF-8"},
    {"surrogate{a=\"\xed\xa0\x80\"} 1\n", "is not valid UTF-8"},
    {"node_textfile_scrape_error 0\n", "already exported by another collector"},
    {"# TYPE good_metric counter\ngood_metric{f=\"z\"} 1\n", "has TYPE counter here but gauge in an earlier file"},
    {"# HELP good_metric Something else.\ngood_metric{f=\"z\"} 1\n", "has HELP"},
};

static int capture_stderr(const char *path)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    return saved;
}

static void restore_stderr(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = 0;
    fclose(fp);
    return buf;
}

static int count(const char *hay, const char *needle)
{
    int k = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        k++;
    return k;
}

/* Renders twice with stderr (the log) caught; returns what was logged. */
static const char *render_twice_logged(tfx *f)
{
    char logp[300];
    snprintf(logp, sizeof logp, "%s.log", f->dir);
    int saved = capture_stderr(logp);
    render(f);
    render(f);
    restore_stderr(saved);
    const char *log = slurp(logp);
    unlink(logp);
    return log;
}

static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        tfx *f = tfx_new();
        put(f, "a_good.prom", "# HELP good_metric Good.\n# TYPE good_metric gauge\ngood_metric{f=\"a\"} 1\n");
        put(f, "b_bad.prom", bad_cases[i].content);
        const char *log = render_twice_logged(f);
        if (!strstr(log, bad_cases[i].why) || !strstr(log, "b_bad.prom:"))
            fail_msg("case %zu (%s): log lacks \"%s\":\n%s", i, bad_cases[i].content, bad_cases[i].why, log);
        assert_int_equal(count(log, "b_bad.prom"), 1); /* once, not once per scrape */
        expect(f, "node_textfile_scrape_error 1");
        expect(f, "good_metric{f=\"a\"} 1");
        expect_not(f, "b_bad.prom\"}");  /* no mtime for the bad file */
        expect_not(f, "f=\"z\"");
        expect_not(f, "node_load1 5");
        expect_not(f, "\nm ");
        expect_not(f, "\nm{");
        assert_int_equal(count(f->text, "# TYPE node_textfile_scrape_error"), 1);
        expect(f, "node_scrape_collector_success{collector=\"textfile\"} 1");
        tfx_free(f);
    }
}

/* A bad file fixed: the error clears, logged once more. */
static void test_fixed_file(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    put(f, "x.prom", "x 1 2\n");
    char logp[300];
    snprintf(logp, sizeof logp, "%s.log", f->dir);
    int saved = capture_stderr(logp);
    render(f);
    expect(f, "node_textfile_scrape_error 1");
    put(f, "x.prom", "x 1\n");
    render(f);
    render(f);
    restore_stderr(saved);
    expect(f, "node_textfile_scrape_error 0");
    expect(f, "x 1");
    const char *log = slurp(logp);
    unlink(logp);
    assert_int_equal(count(log, "x.prom"), 1);
    assert_int_equal(count(log, "every file reads well again"), 1);
    tfx_free(f);
}

/* Entries that cannot be read: a dangling link, a directory, a FIFO (which
 * must not block the scrape). */
static void test_unreadable(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    put(f, "ok.prom", "ok_metric 1\n");
    char p[400];
    snprintf(p, sizeof p, "%s/dangling.prom", f->dir);
    assert_int_equal(symlink("/nonexistent/ippoc-nx-test", p), 0);
    snprintf(p, sizeof p, "%s/dir.prom", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/fifo.prom", f->dir);
    assert_int_equal(mkfifo(p, 0600), 0);
    render(f);
    expect(f, "node_textfile_scrape_error 1");
    expect(f, "ok_metric 1");
    expect_not(f, "dangling.prom\"}");
    expect_not(f, "dir.prom\"}");
    expect_not(f, "fifo.prom\"}");
    char l[600];
    mtime_line(f, "ok.prom", l, sizeof l);
    expect(f, l);
    tfx_free(f);
}

static void test_missing_dir(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    char gone[300];
    snprintf(gone, sizeof gone, "%s/gone", f->dir);
    core_sncpy(f->cfg.textfile_dir, sizeof f->cfg.textfile_dir, gone);
    sense_nx_reconfigure(f->nx, &f->cfg);
    render(f);
    expect(f, "node_textfile_scrape_error 1");
    expect_not(f, "node_textfile_mtime_seconds");
    expect(f, "node_scrape_collector_success{collector=\"textfile\"} 1");
    /* and off: no files read, no error */
    put(f, "m.prom", "m_metric 1\n");
    core_sncpy(f->cfg.textfile_dir, sizeof f->cfg.textfile_dir, "");
    sense_nx_reconfigure(f->nx, &f->cfg);
    render(f);
    expect(f, "node_textfile_scrape_error 0");
    expect_not(f, "m_metric");
    tfx_free(f);
}

/* node_exporter 1.5 reads a glob of directories. */
static void test_glob(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    char d[400];
    snprintf(d, sizeof d, "%s/one", f->dir);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(d, sizeof d, "%s/two", f->dir);
    assert_int_equal(mkdir(d, 0700), 0);
    put(f, "one/a.prom", "g_metric{d=\"1\"} 1\n");
    put(f, "two/a.prom", "g_metric{d=\"2\"} 2\n");
    snprintf(d, sizeof d, "%s/*", f->dir);
    core_sncpy(f->cfg.textfile_dir, sizeof f->cfg.textfile_dir, d);
    sense_nx_reconfigure(f->nx, &f->cfg);
    render(f);
    expect(f, "g_metric{d=\"1\"} 1");
    expect(f, "g_metric{d=\"2\"} 2");
    expect(f, "node_textfile_scrape_error 0");
    char l[600];
    mtime_line(f, "two/a.prom", l, sizeof l);
    expect(f, l);
    tfx_free(f);
}

/* Writes nfam families of one sample each (fam_<prefix>_<i>) to name. */
static void put_many(tfx *f, const char *name, const char *prefix, int nfam)
{
    size_t cap = (size_t)nfam * 96 + 1, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (int i = 0; i < nfam; i++)
        len += (size_t)snprintf(buf + len, cap - len, "# TYPE fam_%s_%d counter\nfam_%s_%d{k=\"v\"} %d\n",
                                prefix, i, prefix, i, i);
    put(f, name, buf);
    free(buf);
}

/* A file name that is not UTF-8 (a Latin-1 "café.prom"): its samples are
 * served, and its name in node_textfile_mtime_seconds' label and in the
 * generated help comes out with U+FFFD, so that the exposition stays valid
 * UTF-8 (Prometheus fails a whole scrape on one invalid byte). */
static void test_latin1_file_name(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    put(f, "caf\xe9.prom", "cafe_metric 1\n");
    render(f);
    expect(f, "cafe_metric 1");
    expect(f, "node_textfile_scrape_error 0");
    assert_non_null(strstr(f->text, "caf\xef\xbf\xbd.prom\"} 1700000000\n"));
    assert_non_null(strstr(f->text, "# HELP cafe_metric Metric read from "));
    if (!nxs_utf8_valid(f->text, f->len))
        fail_msg("the exposition is not valid UTF-8");
    tfx_free(f);
}

/* 2,000 families from four files: all served, whole, and served again
 * the same on the next scrape (the grown array is reused). */
static void test_many_families(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    const char *files[] = {"a.prom", "b.prom", "c.prom", "d.prom"};
    for (int k = 0; k < 4; k++) {
        char prefix[8];
        snprintf(prefix, sizeof prefix, "%c", 'a' + k);
        put_many(f, files[k], prefix, 500);
    }
    for (int round = 0; round < 2; round++) {
        render(f);
        expect(f, "node_textfile_scrape_error 0");
        assert_int_equal(count(f->text, "# TYPE fam_"), 2000);
        assert_int_equal(count(f->text, "# HELP fam_"), 2000);
        expect(f, "# TYPE fam_a_0 counter");
        expect(f, "fam_a_0{k=\"v\"} 0");
        expect(f, "fam_d_499{k=\"v\"} 499");
        assert_non_null(strstr(f->text, "\n# HELP fam_c_250 Metric read from "));
        char l[600];
        mtime_line(f, "d.prom", l, sizeof l);
        expect(f, l);
    }
    tfx_free(f);
}

/* Past NX_MAX_FAMILIES the file that would cross it is left out, reported
 * in node_textfile_scrape_error and logged once; the others are served. */
static void test_too_many_families(void **state)
{
    (void)state;
    tfx *f = tfx_new();
    put_many(f, "a.prom", "a", NX_MAX_FAMILIES - 100);
    put_many(f, "b.prom", "b", 200);
    put(f, "c.prom", "small_one 1\n");
    const char *log = render_twice_logged(f);
    if (!strstr(log, "b.prom: left out: the directory holds more than"))
        fail_msg("log lacks the limit:\n%s", log);
    assert_int_equal(count(log, "b.prom"), 1);
    expect(f, "node_textfile_scrape_error 1");
    assert_int_equal(count(f->text, "# TYPE fam_a_"), NX_MAX_FAMILIES - 100);
    expect_not(f, "fam_b_");
    expect(f, "small_one 1");
    tfx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_files), cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_fixed_file), cmocka_unit_test(test_unreadable),
        cmocka_unit_test(test_missing_dir), cmocka_unit_test(test_glob),
        cmocka_unit_test(test_latin1_file_name), cmocka_unit_test(test_many_families), cmocka_unit_test(test_too_many_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
