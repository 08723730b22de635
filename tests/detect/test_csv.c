/* test_csv.c: the timestamp,value CSV reader (src/detect/csv.c): the accepted
 * forms (header, CRLF, blanks, quotes, empty lines, byte-order mark, the three
 * timestamp forms), every kind of bad row with its line number and reason,
 * going on after a bad row, and read errors. Inputs are in-memory files
 * (fmemopen). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "detect/detect.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* An in-memory input and its reader. */
typedef struct input {
    FILE *f;
    detect_csv *r;
    char err[256];
} input;

static void in_open_n(input *in, const char *text, size_t len)
{
    in->f = fmemopen((void *)text, len, "r");
    assert_non_null(in->f);
    in->r = detect_csv_open(in->f, "t.csv");
    assert_non_null(in->r);
    in->err[0] = '\0';
}

static void in_open(input *in, const char *text)
{
    in_open_n(in, text, strlen(text));
}

static void in_close(input *in)
{
    detect_csv_close(in->r);
    fclose(in->f);
}

/* Next row must be good: timestamp ms, value, line. */
static void want_row(input *in, int64_t ts_ms, double value, unsigned long line)
{
    detect_csv_row row;
    int rc = detect_csv_next(in->r, &row, in->err, sizeof in->err);
    if (rc != 1)
        fail_msg("expected a row at line %lu, got %d (%s)", line, rc, in->err);
    assert_int_equal(row.ts_ms, ts_ms);
    assert_true(row.value == value);
    assert_int_equal(row.line, line);
}

/* Next read must fail with exactly this message. */
static void want_err(input *in, const char *msg)
{
    detect_csv_row row;
    int rc = detect_csv_next(in->r, &row, in->err, sizeof in->err);
    if (rc != -1)
        fail_msg("expected error '%s', got %d", msg, rc);
    assert_string_equal(in->err, msg);
}

static void want_end(input *in)
{
    detect_csv_row row;
    assert_int_equal(detect_csv_next(in->r, &row, in->err, sizeof in->err), 0);
    /* and it stays at the end */
    assert_int_equal(detect_csv_next(in->r, &row, in->err, sizeof in->err), 0);
}

/* 2014-04-10 07:15:00 UTC */
#define T0 1397114100000LL

static void test_header_and_forms(void **state)
{
    (void)state;
    input in;
    in_open(&in,
            "timestamp,value\n"
            "2014-04-10 07:15:00,1.5\n"
            "2014-04-10T07:15:01Z,-2\n"
            "2014-04-10T07:15:02,3e2\n"
            "2014-04-10 07:15:03.25,0\n"
            "2014-04-10 07:15:04.000000,+4.0\n"
            "1397114105,5\n"
            "1397114106.5,6\n"
            "1397114107.123456,7\n"
            "2014-04-10T07:15:08.123456789Z,8\n");
    want_row(&in, T0, 1.5, 2);
    want_row(&in, T0 + 1000, -2, 3);
    want_row(&in, T0 + 2000, 300, 4);
    want_row(&in, T0 + 3250, 0, 5);
    want_row(&in, T0 + 4000, 4, 6);
    want_row(&in, T0 + 5000, 5, 7);
    want_row(&in, T0 + 6500, 6, 8);
    want_row(&in, T0 + 7123, 7, 9);
    want_row(&in, T0 + 8123, 8, 10);
    want_end(&in);
    in_close(&in);
}

static void test_calendar(void **state)
{
    (void)state;
    input in;
    in_open(&in,
            "1970-01-01 00:00:00,1\n"
            "2016-02-29 23:59:59,2\n"
            "2000-02-29T12:00:00Z,3\n"
            "0,4\n"
            "9999-12-31 23:59:59,5\n"
            "253402300799,6\n");
    want_row(&in, 0, 1, 1);
    want_row(&in, 1456790399000LL, 2, 2);
    want_row(&in, 951825600000LL, 3, 3);
    want_row(&in, 0, 4, 4);
    want_row(&in, 253402300799000LL, 5, 5);
    want_row(&in, 253402300799000LL, 6, 6);
    want_end(&in);
    in_close(&in);
}

/* CRLF, blank and empty lines, blanks around fields, quotes, no final newline,
 * no header, the text kept as written (trimmed, unquoted). */
static void test_layout(void **state)
{
    (void)state;
    input in;
    in_open(&in,
            "\r\n"
            "  2014-04-10 07:15:00 ,  1.50 \r\n"
            "\n"
            "   \t \n"
            "\"2014-04-10 07:15:01\",\"2\"\r\n"
            "\t1397114102\t,\t3");
    detect_csv_row row;
    assert_int_equal(detect_csv_next(in.r, &row, in.err, sizeof in.err), 1);
    assert_int_equal(row.line, 2);
    assert_string_equal(row.ts_text, "2014-04-10 07:15:00");
    assert_string_equal(row.value_text, "1.50");
    assert_true(row.value == 1.5);
    assert_int_equal(detect_csv_next(in.r, &row, in.err, sizeof in.err), 1);
    assert_int_equal(row.line, 5);
    assert_string_equal(row.ts_text, "2014-04-10 07:15:01");
    assert_string_equal(row.value_text, "2");
    want_row(&in, T0 + 2000, 3, 6);
    want_end(&in);
    in_close(&in);
}

static void test_bom_and_empty(void **state)
{
    (void)state;
    input in;
    in_open(&in, "\xEF\xBB\xBFtimestamp,value\r\n2014-04-10 07:15:00,1\r\n");
    want_row(&in, T0, 1, 2);
    want_end(&in);
    in_close(&in);

    in_open(&in, "");
    want_end(&in);
    in_close(&in);

    in_open(&in, "timestamp,value\n\n");
    want_end(&in);
    in_close(&in);
}

/* Every kind of bad row, each with its line number; reading goes on. */
static void test_bad_rows(void **state)
{
    (void)state;
    input in;
    in_open(&in,
            "timestamp,value\n"                              /* 1 header */
            "2014-04-10 07:15:00\n"                          /* 2 */
            "2014-04-10 07:15:00,1,2\n"                      /* 3 */
            "2014-04-10 07:15:00,abc\n"                      /* 4 */
            "yesterday,1\n"                                  /* 5 */
            "2014-02-30 00:00:00,1\n"                        /* 6 */
            "2014-04-10 24:00:00,1\n"                        /* 7 */
            "1397114100000,1\n"                              /* 8 */
            "2014-04-10 07:15:00,NaN\n"                      /* 9 */
            "2014-04-10 07:15:00,inf\n"                      /* 10 */
            "2014-04-10 07:15:00,-Infinity\n"                /* 11 */
            "2014-04-10 07:15:00,1e999\n"                    /* 12 */
            "2014-04-10 07:15:00,\n"                         /* 13 */
            ",1\n"                                           /* 14 */
            "2014-04-10 07:15:00,0x10\n"                     /* 15 */
            "\"2014-04-10 07:15:00,1\n"                      /* 16 */
            "\"2014-04-10 07:15:00\"x,1\n"                   /* 17 */
            "2014-04-10 07:15:00.,1\n"                       /* 18 */
            "2014-04-10 07:15:00Z,1\n"                       /* 19 */
            "2015-02-29 00:00:00,1\n"                        /* 20 */
            "timestamp,value\n"                              /* 21: not first */
            "2014-04-10 07:15:00,1 2\n"                      /* 22 */
            "2014-04-10 07:15:01,7\n");                      /* 23 good */
    want_err(&in, "t.csv:2: missing column: expected timestamp,value, found 1 column");
    want_err(&in, "t.csv:3: extra column: expected timestamp,value, found 3 columns");
    want_err(&in, "t.csv:4: bad number 'abc'");
    want_err(&in, "t.csv:5: bad timestamp 'yesterday' (expected YYYY-MM-DD HH:MM:SS, "
                  "YYYY-MM-DDTHH:MM:SSZ or epoch seconds)");
    want_err(&in, "t.csv:6: bad timestamp '2014-02-30 00:00:00' (a field is out of range)");
    want_err(&in, "t.csv:7: bad timestamp '2014-04-10 24:00:00' (a field is out of range)");
    want_err(&in, "t.csv:8: bad timestamp '1397114100000' (epoch seconds past the year 9999: milliseconds?)");
    want_err(&in, "t.csv:9: value 'NaN' is not finite (NaN and infinity are not allowed)");
    want_err(&in, "t.csv:10: value 'inf' is not finite (NaN and infinity are not allowed)");
    want_err(&in, "t.csv:11: value '-Infinity' is not finite (NaN and infinity are not allowed)");
    want_err(&in, "t.csv:12: value '1e999' is out of range");
    want_err(&in, "t.csv:13: empty value");
    want_err(&in, "t.csv:14: empty timestamp");
    want_err(&in, "t.csv:15: bad number '0x10'");
    want_err(&in, "t.csv:16: unterminated quoted field");
    want_err(&in, "t.csv:17: text after a closing quote");
    want_err(&in, "t.csv:18: bad timestamp '2014-04-10 07:15:00.' (expected YYYY-MM-DD HH:MM:SS, "
                  "YYYY-MM-DDTHH:MM:SSZ or epoch seconds)");
    want_err(&in, "t.csv:19: bad timestamp '2014-04-10 07:15:00Z' (expected YYYY-MM-DD HH:MM:SS, "
                  "YYYY-MM-DDTHH:MM:SSZ or epoch seconds)");
    want_err(&in, "t.csv:20: bad timestamp '2015-02-29 00:00:00' (a field is out of range)");
    want_err(&in, "t.csv:21: bad timestamp 'timestamp' (expected YYYY-MM-DD HH:MM:SS, "
                  "YYYY-MM-DDTHH:MM:SSZ or epoch seconds)");
    want_err(&in, "t.csv:22: bad number '1 2'");
    want_row(&in, T0 + 1000, 7, 23);
    want_end(&in);
    in_close(&in);
}

/* A first line with a good timestamp and a bad value is a bad row, not a
 * header; so is one with a good value and a bad timestamp. */
static void test_header_only_when_both_fail(void **state)
{
    (void)state;
    input in;
    in_open(&in, "2014-04-10 07:15:00,value\n2014-04-10 07:15:01,1\n");
    want_err(&in, "t.csv:1: bad number 'value'");
    want_row(&in, T0 + 1000, 1, 2);
    want_end(&in);
    in_close(&in);

    in_open(&in, "time,12\n");
    want_err(&in, "t.csv:1: bad timestamp 'time' (expected YYYY-MM-DD HH:MM:SS, "
                  "YYYY-MM-DDTHH:MM:SSZ or epoch seconds)");
    want_end(&in);
    in_close(&in);

    /* a header must have two columns as well */
    in_open(&in, "timestamp,value,label\n");
    want_err(&in, "t.csv:1: extra column: expected timestamp,value, found 3 columns");
    want_end(&in);
    in_close(&in);
}

static void test_long_lines(void **state)
{
    (void)state;
    /* line 1: 5000 bytes; line 2: good; line 3: a value of 70 digits */
    static char text[8192];
    size_t n = 0;
    memset(text, '1', 5000);
    n = 5000;
    n += (size_t)sprintf(text + n, "\n2014-04-10 07:15:00,1\n2014-04-10 07:15:01,");
    memset(text + n, '2', 70);
    n += 70;
    n += (size_t)sprintf(text + n, "\n");
    input in;
    in_open_n(&in, text, n);
    want_err(&in, "t.csv:1: line too long (more than 4096 bytes)");
    want_row(&in, T0, 1, 2);
    want_err(&in, "t.csv:3: value too long (more than 63 characters)");
    want_end(&in);
    in_close(&in);

    /* exactly 4096 bytes is fine */
    memset(text, ' ', 4096);
    memcpy(text, "1397114100,1", 12);
    text[4096] = '\n';
    in_open_n(&in, text, 4097);
    want_row(&in, T0, 1, 1);
    want_end(&in);
    in_close(&in);
}

static void test_nul_byte(void **state)
{
    (void)state;
    static const char text[] = "1397114100,1\n13971141\0001,2\n1397114102,3\n";
    input in;
    in_open_n(&in, text, sizeof text - 1);
    want_row(&in, T0, 1, 1);
    want_err(&in, "t.csv:2: NUL byte in the line (not a text file?)");
    want_row(&in, T0 + 2000, 3, 3);
    want_end(&in);
    in_close(&in);
}

/* A message never overflows the caller's buffer, and a long name is cut. */
static void test_small_buffers(void **state)
{
    (void)state;
    FILE *f = fmemopen((void *)"x,1,2\n", 6, "r");
    assert_non_null(f);
    char name[600];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    detect_csv *r = detect_csv_open(f, name);
    assert_non_null(r);
    char err[8];
    memset(err, 'Z', sizeof err);
    detect_csv_row row;
    assert_int_equal(detect_csv_next(r, &row, err, sizeof err), -1);
    assert_true(memchr(err, '\0', sizeof err) != NULL);
    assert_int_equal(detect_csv_next(r, &row, NULL, 0), 0);
    detect_csv_close(r);
    fclose(f);
}

/* A stream that cannot be read reports a read error with its reason. */
static void test_read_error(void **state)
{
    (void)state;
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    detect_csv *r = detect_csv_open(f, "w.csv");
    char err[256];
    detect_csv_row row;
    assert_int_equal(detect_csv_next(r, &row, err, sizeof err), -1);
    assert_non_null(strstr(err, "w.csv:1: read error: "));
    detect_csv_close(r);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_and_forms),
        cmocka_unit_test(test_calendar),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_bom_and_empty),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_header_only_when_both_fail),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_nul_byte),
        cmocka_unit_test(test_small_buffers),
        cmocka_unit_test(test_read_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
