/* test_review.c: unit tests of `ippoc review`'s findings (src/cli/review.c):
 * the model's JSON-lines answer checked line by line, a unified diff's files
 * and hunk ranges with the numbered text the model reads, the static tools'
 * output lines, and the sorted FILE:LINE printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static FILE *devnull(void)
{
    FILE *f = fopen("/dev/null", "w");
    assert_non_null(f);
    return f;
}

static void test_answer(void **state)
{
    (void)state;
    cli_review r = {0};
    assert_int_equal(cli_review_add_file(&r, "a.c", 10), 0);
    assert_int_equal(cli_review_add_file(&r, "src/b.c", 3), 1);
    const char *answer =
        "```json\n"
        "{\"file\":\"a.c\",\"line\":10,\"severity\":\"error\",\"message\":\"last line\"}\n"
        "  \n"
        "{\"file\":\"b/src/b.c\",\"line\":1,\"severity\":\"Warning\",\"message\":\"git's b/ prefix\"}\n"
        "{\"file\":\"./a.c\",\"line\":1,\"severity\":\"info\",\"message\":\"esc\\u001b[2J\\nnewline\"}\n"
        "{\"file\":\"a.c\",\"line\":11,\"severity\":\"error\",\"message\":\"past the end\"}\n"
        "{\"file\":\"a.c\",\"line\":0,\"severity\":\"error\",\"message\":\"zero\"}\n"
        "{\"file\":\"c.c\",\"line\":1,\"severity\":\"error\",\"message\":\"unknown file\"}\n"
        "{\"file\":\"a.c\",\"line\":2,\"severity\":\"fatal\",\"message\":\"unknown severity\"}\n"
        "{\"file\":\"a.c\",\"line\":2,\"severity\":\"error\",\"message\":\"\"}\n"
        "{\"file\":\"a.c\",\"line\":2.5,\"severity\":\"error\",\"message\":\"float line\"}\n"
        "[1,2]\n"
        "{\"file\":\"a.c\",\"line\":2,\"file\":\"src/b.c\",\"severity\":\"error\",\"message\":\"dup key\"}\n"
        "not json\n"
        "```";
    FILE *log = devnull();
    assert_int_equal(cli_review_parse_answer(&r, answer, log), 3);
    fclose(log);
    assert_int_equal(r.dropped, 9);
    assert_int_equal(r.nfound, 3);
    assert_int_equal(r.found[1].file, 1);
    assert_int_equal(r.found[1].sev, CLI_REVIEW_WARNING);
    assert_string_equal(r.found[2].msg, "esc [2J newline"); /* control characters blanked */
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    assert_int_equal(cli_review_print(&r, m), 1);
    fclose(m);
    assert_string_equal(text, "a.c:1: note: esc [2J newline\n"
                              "a.c:10: error: last line\n"
                              "src/b.c:1: warning: git's b/ prefix\n");
    free(text);
    assert_int_equal(cli_review_parse_answer(&r, "", stderr), 0); /* no findings: nothing */
    assert_int_equal(cli_review_parse_answer(&r, NULL, stderr), 0);
    cli_review_free(&r);
}

static const char diff[] =
    "diff --git a/x.c b/x.c\n"
    "index 1..2 100644\n"
    "--- a/x.c\n"
    "+++ b/x.c\n"
    "@@ -10,3 +10,4 @@ int f(void)\n"
    " keep\n"
    "-old\n"
    "+new1\n"
    "+new2\n"
    "\n"
    "\\ No newline at end of file\n"
    "--- a/gone.c\n"
    "+++ /dev/null\n"
    "@@ -1,2 +0,0 @@\n"
    "-a\n"
    "-b\n"
    "--- /dev/null\n"
    "+++ b/new.c\t2024-01-01 00:00:00\n"
    "@@ -0,0 +1 @@\n"
    "+int x;\n";

static void test_diff(void **state)
{
    (void)state;
    cli_review r = {0};
    char *prompt = NULL, err[256] = "";
    assert_int_equal(cli_review_parse_diff(&r, diff, &prompt, err, sizeof err), 0);
    assert_int_equal(r.nfiles, 2);
    assert_string_equal(r.files[0].name, "x.c");
    assert_string_equal(r.files[1].name, "new.c");
    assert_int_equal(r.files[0].nr, 1);
    assert_int_equal(r.files[0].lo[0], 10);
    assert_int_equal(r.files[0].hi[0], 13);
    assert_false(cli_review_line_ok(&r, 0, 9));
    assert_true(cli_review_line_ok(&r, 0, 13));
    assert_false(cli_review_line_ok(&r, 0, 14));
    assert_true(cli_review_line_ok(&r, 1, 1));
    assert_false(cli_review_line_ok(&r, 1, 2));
    assert_non_null(strstr(prompt, "=== FILE: x.c ===\n@@ -10,3 +10,4 @@ int f(void)\n"
                                   "    10   keep\n       - old\n    11 + new1\n    12 + new2\n    13   \n"));
    assert_non_null(strstr(prompt, "=== FILE: new.c ===\n@@ -0,0 +1 @@\n     1 + int x;\n"));
    assert_null(strstr(prompt, "gone.c"));
    free(prompt);
    cli_review_free(&r);

    static const struct {
        const char *text, *why;
    } bad[] = {
        {"@@ -1 +1 @@\n+x\n", "diff line 1: a hunk before any '+++ FILE' line"},
        {"+++ b/x.c\n@@ -1 +1,2 @@\n+a\n", "diff line 3: the last hunk is cut short"},
        {"+++ b/x.c\n@@ -1 +1 @@\n*a\n", "diff line 3: a hunk line must start with ' ', '+' or '-' and fit the hunk's counts"},
        {"+++ b/x.c\n@@ -0,0 +1 @@\n+a\n+b\n", ""}, /* "+b" after the hunk: outside any, ignored */
        {"+++ b/x.c\n@@ -a +1 @@\n", "diff line 2: bad hunk header (expected @@ -A,B +C,D @@)"},
        {"hello\n", "no file in the diff (expected a unified diff such as `git diff` prints)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_review q = {0};
        err[0] = '\0';
        int rc = cli_review_parse_diff(&q, bad[i].text, &prompt, err, sizeof err);
        assert_int_equal(rc, *bad[i].why ? -EINVAL : 0);
        assert_string_equal(err, bad[i].why);
        if (!rc)
            free(prompt);
        else
            assert_null(prompt);
        cli_review_free(&q);
    }
}

static void test_tool_lines(void **state)
{
    (void)state;
    cli_review r = {0};
    assert_int_equal(cli_review_add_file(&r, "t.c", 20), 0);
    const char *out =
        "t.c:8: error: Array 'a[10]' accessed at index 10, which is out of bounds. [arrayIndexOutOfBounds]\n"
        "t.c:8:5: warning: array index 10 is past the end [clang-diagnostic-array-bounds]\n"
        "t.c:8:5: note: array 'a' declared here\n"
        "t.c:3: style: The scope of the variable 'x' can be reduced. [variableScope]\n"
        "nofile:0: information: Too many #ifdef configurations [toomanyconfigs]\n"
        "other.h:2: error: in a header [x]\n"
        "t.c:99: error: beyond the file [x]\n"
        "1 warning generated.\n"
        "t.c:8: error: Array 'a[10]' accessed at index 10, which is out of bounds. [arrayIndexOutOfBounds]\n";
    assert_int_equal(cli_review_parse_tool(&r, out), 3);
    assert_int_equal(r.found[0].sev, CLI_REVIEW_ERROR);
    assert_int_equal(r.found[1].sev, CLI_REVIEW_WARNING);
    assert_int_equal(r.found[2].sev, CLI_REVIEW_NOTE);
    assert_int_equal(r.found[2].line, 3);
    cli_review_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer),
        cmocka_unit_test(test_diff),
        cmocka_unit_test(test_tool_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
