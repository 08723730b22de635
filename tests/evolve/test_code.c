/* test_code.c: the pure parts of self-code evolution (src/evolve/code_*.c):
 * splitting the operator's commands into argv, which files a patch touches,
 * the prompt, the judgement of bench numbers, and a real direct run. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "evolve/code_int.h"

static void test_split(void **state)
{
    (void)state;
    char ***c, err[256];
    assert_int_equal(code_cmds_split("meson setup build && ninja -C build", &c, err, sizeof err), 0);
    assert_string_equal(c[0][0], "meson");
    assert_string_equal(c[0][2], "build");
    assert_null(c[0][3]);
    assert_string_equal(c[1][0], "ninja");
    assert_string_equal(c[1][2], "build");
    assert_null(c[2]);
    code_cmds_free(c);
    /* the operator's own shell, quoted; "&&" inside quotes is a word's text */
    assert_int_equal(code_cmds_split("sh -c 'make && ./t \"x y\"'", &c, err, sizeof err), 0);
    assert_string_equal(c[0][2], "make && ./t \"x y\"");
    assert_null(c[1]);
    code_cmds_free(c);
    assert_int_equal(code_cmds_split("a \"b \\\"c\\\"\" '&&'", &c, err, sizeof err), 0);
    assert_string_equal(c[0][1], "b \"c\"");
    assert_string_equal(c[0][2], "&&");
    code_cmds_free(c);
    assert_int_equal(code_cmds_split("make &&", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "empty command"));
    assert_int_equal(code_cmds_split("&& make", &c, err, sizeof err), -EINVAL);
    assert_int_equal(code_cmds_split("   ", &c, err, sizeof err), -EINVAL);
    assert_int_equal(code_cmds_split("echo 'open", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "unclosed"));
}

static const char PATCH_OK[] = "diff --git a/src/slow.c b/src/slow.c\n--- a/src/slow.c\n+++ b/src/slow.c\n"
                               "@@ -1,2 +1,2 @@\n-int x;\n+int y;\n";
static const char PATCH_TWO[] = "--- a/src/slow.c\n+++ b/src/slow.c\n@@ -1 +1 @@\n-a\n+b\n"
                                "--- a/Makefile\t2024-01-01\n+++ b/Makefile\t2024-01-01\n@@ -1 +1 @@\n-a\n+b\n";
static const char PATCH_NEW[] = "--- /dev/null\n+++ b/evil.sh\n@@ -0,0 +1 @@\n+rm -rf /\n";
static const char PATCH_RENAME[] = "diff --git a/src/slow.c b/src/fast.c\nrename from src/slow.c\nrename to src/fast.c\n";

static void test_patch_files(void **state)
{
    (void)state;
    char err[512];
    json_t *f = code_patch_files(PATCH_OK);
    assert_int_equal(json_array_size(f), 1);
    assert_string_equal(json_string_value(json_array_get(f, 0)), "src/slow.c");
    json_decref(f);
    assert_int_equal(code_patch_check_files(PATCH_OK, "src/slow.c", err, sizeof err), 0);
    assert_int_equal(code_patch_check_files(PATCH_TWO, "src/slow.c", err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "Makefile"));
    assert_int_equal(code_patch_check_files(PATCH_NEW, "src/slow.c", err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "evil.sh"));
    assert_non_null(strstr(err, "only src/slow.c"));
    assert_int_equal(code_patch_check_files(PATCH_RENAME, "src/slow.c", err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "rename from src/slow.c"));
    f = code_patch_files(PATCH_RENAME);
    assert_int_equal(json_array_size(f), 2);
    assert_string_equal(json_string_value(json_array_get(f, 1)), "src/fast.c");
    json_decref(f);
    assert_int_equal(code_patch_check_files("just prose, no diff", "src/slow.c", err, sizeof err), -EINVAL);
    /* only the text of the target: no new or deleted file, no mode, no symlink, no binary */
    static const char LINK[] = "diff --git a/src/slow.c b/src/slow.c\ndeleted file mode 100644\n--- a/src/slow.c\n"
                               "+++ /dev/null\n@@ -1 +0,0 @@\n-int x;\ndiff --git a/src/slow.c b/src/slow.c\n"
                               "new file mode 120000\n--- /dev/null\n+++ b/src/slow.c\n@@ -0,0 +1 @@\n+/etc/shadow\n";
    assert_int_equal(code_patch_check_files(LINK, "src/slow.c", err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "deleted file mode"));
    static const char MODE[] = "diff --git a/src/slow.c b/src/slow.c\nold mode 100644\nnew mode 100755\n";
    assert_int_equal(code_patch_check_files(MODE, "src/slow.c", err, sizeof err), -EPERM);
    assert_non_null(strstr(err, "more than edit"));
}

static void test_paths(void **state)
{
    (void)state;
    assert_true(code_path_ok("src/x.c"));
    assert_true(code_path_ok("a..b/c"));
    assert_false(code_path_ok("/etc/passwd"));
    assert_false(code_path_ok("../x"));
    assert_false(code_path_ok("a/../../x"));
    assert_false(code_path_ok("a//b"));
    assert_false(code_path_ok(""));
}

static void test_number(void **state)
{
    (void)state;
    double v = 0;
    assert_true(code_parse_number("elapsed: 0.0521 s\n", &v));
    assert_true(v > 0.052 && v < 0.0522);
    assert_true(code_parse_number("run 3 of 7: 1.5e-3\n", &v));
    assert_true(v > 0.00149 && v < 0.00151);
    assert_false(code_parse_number("no numbers here\n", &v));
    assert_false(code_parse_number(NULL, &v));
}

static void test_prompt(void **state)
{
    (void)state;
    double base[] = {0.5, 0.52};
    json_t *h = json_pack("[{s:s, s:s}]", "status", "rejected", "reason", "tests failed");
    char *p = code_prompt("src/slow.c", "int a;\nint b;\n", "./bench.sh", "make test", false, base, 2, h);
    assert_non_null(strstr(p, "    1  int a;\n    2  int b;\n"));
    assert_non_null(strstr(p, "lower is better"));
    assert_non_null(strstr(p, "0.52"));
    assert_non_null(strstr(p, "tests failed"));
    assert_non_null(strstr(p, "touching only src/slow.c"));
    free(p);
    json_decref(h);
    /* many short lines: every one is numbered, nothing cut */
    char *many = malloc(20001);
    for (int i = 0; i < 10000; i++)
        memcpy(many + 2 * i, "x\n", 2);
    many[20000] = 0;
    p = code_prompt("t.c", many, "b", "t", true, base, 2, NULL);
    assert_non_null(strstr(p, "10000  x\n"));
    assert_non_null(strstr(p, "touching only t.c"));
    free(p);
    free(many);
    /* a long file is cut at the limit, and says so */
    char *big = malloc(200001);
    memset(big, 'y', 200000);
    for (int i = 99; i < 200000; i += 100)
        big[i] = '\n';
    big[200000] = 0;
    p = code_prompt("t.c", big, "b", "t", true, base, 2, NULL);
    assert_non_null(strstr(p, "the file goes on"));
    assert_true(strlen(p) < CODE_PROMPT_MAX + 20000);
    free(p);
    free(big);
}

static void test_judge(void **state)
{
    (void)state;
    /* times (lower is better): the candidate takes about half */
    double base[] = {1.00, 1.05, 0.98, 1.10, 1.02, 0.99, 1.04};
    double fast[] = {0.50, 0.52, 0.49, 0.55, 0.51, 0.50, 0.53};
    double same[] = {1.01, 1.03, 0.99, 1.08, 1.00, 1.06, 1.02};
    evolve_test t;
    assert_int_equal(code_judge(base, 7, fast, 7, false, &t), 0);
    assert_true(t.p < 0.05);
    assert_true(t.gain > 0.8 && t.gain < 1.2); /* twice as fast: +100 % */
    assert_true(t.lo > 0.02);
    char buf[128];
    code_fitness_text(&t, buf, sizeof buf);
    assert_non_null(strstr(buf, "p="));
    assert_true(buf[0] == '+');
    assert_int_equal(code_judge(base, 7, same, 7, false, &t), 0);
    assert_false(t.p < 0.05 && t.lo > 0.02);
    /* maximise: the slower "fast" samples are worse */
    assert_int_equal(code_judge(base, 7, fast, 7, true, &t), 0);
    assert_true(t.p > 0.5);
    double bad[] = {1, 0};
    assert_int_equal(code_judge(base, 2, bad, 2, false, &t), -EINVAL);
}

static void test_run(void **state)
{
    (void)state;
    code_run_res r;
    char err[256];
    atomic_int stop = 0;
    assert_int_equal(code_run("sh -c 'echo 42; echo oops >&2' && echo 7", "/", false, NULL, 5000, &stop, &r,
                              err, sizeof err), 0);
    assert_true(r.ok);
    assert_string_equal(r.out, "7\n");
    code_run_res_free(&r);
    assert_int_equal(code_run("sh -c 'echo broken >&2; exit 3' && echo never", "/", false, NULL, 5000, &stop, &r,
                              err, sizeof err), 0);
    assert_false(r.ok);
    assert_int_equal(r.exit_code, 3);
    assert_non_null(strstr(r.tail, "broken"));
    code_run_res_free(&r);
    assert_int_equal(code_run("sleep 10", "/", false, NULL, 300, &stop, &r, err, sizeof err), 0);
    assert_false(r.ok);
    assert_string_equal(r.verdict, "timeout");
    assert_true(r.wall_ms < 5000);
    code_run_res_free(&r);
    stop = 1; /* a stopped job kills its command at once */
    assert_int_equal(code_run("sleep 10", "/", false, NULL, 20000, &stop, &r, err, sizeof err), 0);
    assert_false(r.ok);
    assert_string_equal(r.verdict, "stopped");
    assert_true(r.wall_ms < 5000);
    code_run_res_free(&r);
    stop = 0;
    assert_int_equal(code_run("no-such-program-ippoc", "/", false, NULL, 5000, &stop, &r, err, sizeof err), 0);
    assert_false(r.ok);
    assert_int_equal(r.exit_code, 127);
    code_run_res_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),  cmocka_unit_test(test_patch_files), cmocka_unit_test(test_paths),
        cmocka_unit_test(test_number), cmocka_unit_test(test_prompt),      cmocka_unit_test(test_judge),
        cmocka_unit_test(test_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
