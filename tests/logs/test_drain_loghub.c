/* test_drain_loghub.c: the template miner on two systems of the shared
 * Loghub-2k data set (HDFS and Proxifier, the raw logs with their header
 * formats and documented masks), scored by grouping accuracy against the
 * original labels, with a floor under the numbers bench/logparse records.
 * Skipped (exit 77), saying why, when the data set is not there ($LOGHUB2K,
 * default /work/shared/datasets/loghub2k). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "logs/logs.h"

#define LH_LINES_MAX 4000

typedef struct lh_system {
    const char *name, *format;
    const char *masks[4];
    double floor; /* GA at least this */
} lh_system;

static const char *lh_dir(void)
{
    const char *d = getenv("LOGHUB2K");
    return d && *d ? d : "/work/shared/datasets/loghub2k";
}

/* One CSV record (RFC 4180 quoting) from f into fields; returns the field
 * count, 0 at the end. Fields point into *buf. */
static int lh_csv_row(FILE *f, char **buf, size_t *cap, char **fields, int maxf)
{
    size_t n = 0;
    int c, nf = 0;
    bool q = false, any = false;
    size_t start = 0;
    while ((c = fgetc(f)) != EOF) {
        any = true;
        if (n + 2 > *cap) {
            *cap = *cap ? *cap * 2 : 4096;
            *buf = realloc(*buf, *cap);
            assert_non_null(*buf);
        }
        if (q) {
            if (c == '"') {
                int d = fgetc(f);
                if (d == '"') {
                    (*buf)[n++] = '"';
                    continue;
                }
                q = false;
                if (d == EOF)
                    break;
                c = d;
            } else {
                (*buf)[n++] = (char)c;
                continue;
            }
        }
        if (c == '"') {
            q = true;
        } else if (c == ',' || c == '\n') {
            (*buf)[n++] = '\0';
            if (nf < maxf)
                fields[nf++] = (char *)(uintptr_t)start; /* offsets until the row is complete */
            start = n;
            if (c == '\n')
                break;
        } else if (c != '\r') {
            (*buf)[n++] = (char)c;
        }
    }
    if (!any)
        return 0;
    if (c == EOF && start <= n) {
        if (n + 1 > *cap) {
            *buf = realloc(*buf, *cap = n + 1);
            assert_non_null(*buf);
        }
        (*buf)[n++] = '\0';
        if (nf < maxf)
            fields[nf++] = (char *)(uintptr_t)start;
    }
    for (int i = 0; i < nf; i++)
        fields[i] = *buf + (uintptr_t)fields[i];
    return nf;
}

/* The original labels' EventTemplate per line. */
static int lh_labels(const char *path, char ***out)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = NULL, *fld[32];
    size_t cap = 0;
    int nf = lh_csv_row(f, &buf, &cap, fld, 32), col = -1;
    for (int i = 0; i < nf; i++)
        if (!strcmp(fld[i], "EventTemplate"))
            col = i;
    assert_true(col >= 0);
    char **lab = calloc(LH_LINES_MAX, sizeof *lab);
    int n = 0;
    while ((nf = lh_csv_row(f, &buf, &cap, fld, 32)) > 0 && n < LH_LINES_MAX)
        if (nf > col)
            lab[n++] = strdup(fld[col]);
    free(buf);
    fclose(f);
    *out = lab;
    return n;
}

/* Grouping accuracy: the share of lines whose parsed group is exactly
 * their true group. */
static double lh_ga(const int *parsed, char **truth, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) {
        bool same = true;
        for (int j = 0; j < n && same; j++)
            same = (parsed[j] == parsed[i]) == !strcmp(truth[j], truth[i]);
        ok += same;
    }
    return (double)ok / n;
}

static void lh_run(const lh_system *s)
{
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/%s/%s_2k.log", lh_dir(), s->name, s->name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    logs_format *fmt;
    logs_miner *m;
    assert_int_equal(logs_format_new(s->format, &fmt, err, sizeof err), 0);
    assert_int_equal(logs_miner_new(NULL, &m, err, sizeof err), 0);
    for (int i = 0; i < 4 && s->masks[i]; i++)
        assert_int_equal(logs_miner_add_mask(m, s->masks[i], err, sizeof err), 0);
    int *ids = calloc(LH_LINES_MAX, sizeof *ids);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int n = 0;
    while ((got = getline(&line, &cap, f)) >= 0 && n < LH_LINES_MAX) {
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        const char *c;
        size_t cl;
        assert_int_equal(logs_format_content(fmt, line, len, &c, &cl), 0);
        ids[n] = logs_miner_add(m, c, cl, NULL);
        assert_true(ids[n] >= 0);
        n++;
    }
    free(line);
    fclose(f);
    for (int i = 0; i < n; i++)
        ids[i] = logs_miner_resolve(m, ids[i]);
    char **truth;
    snprintf(path, sizeof path, "%s/%s/%s_2k.log_structured.csv", lh_dir(), s->name, s->name);
    int nt = lh_labels(path, &truth);
    assert_int_equal(nt, n);
    double ga = lh_ga(ids, truth, n);
    printf("  %s: %d lines, %d templates, GA %.4f (floor %.2f)\n", s->name, n, logs_miner_count(m), ga, s->floor);
    assert_true(ga >= s->floor);
    for (int i = 0; i < nt; i++)
        free(truth[i]);
    free(truth);
    free(ids);
    logs_miner_free(m);
    logs_format_free(fmt);
}

static void test_hdfs(void **state)
{
    (void)state;
    static const lh_system s = {"HDFS", "<Date> <Time> <Pid> <Level> <Component>: <Content>",
                                {"blk_-?\\d+", "(\\d+\\.){3}\\d+(:\\d+)?"}, 0.99};
    lh_run(&s);
}

/* Proxifier: variables with blanks in them ("(1.16 KB)"), where plain Drain
 * scores 0.527. */
static void test_proxifier(void **state)
{
    (void)state;
    static const lh_system s = {"Proxifier", "\\[<Time>\\] <Program> - <Content>",
                                {"<\\d+\\ssec", "([\\w-]+\\.)+[\\w-]+(:\\d+)?", "\\d{2}:\\d{2}(:\\d{2})*", "[KGTM]B"},
                                0.95};
    lh_run(&s);
}

int main(void)
{
    struct stat st;
    char p[1024];
    snprintf(p, sizeof p, "%s/HDFS/HDFS_2k.log", lh_dir());
    if (stat(p, &st) != 0) {
        printf("Loghub-2k not found at %s (set LOGHUB2K to the data set): skipped\n", lh_dir());
        return 77; /* meson: skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdfs),
        cmocka_unit_test(test_proxifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
