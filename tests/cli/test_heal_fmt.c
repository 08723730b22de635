/* test_heal_fmt.c: unit tests of the text helpers of the healing commands
 * (src/cli/heal_fmt.c): id arguments, cut cells, a service's last exit,
 * expiry of a pending action, an audit record's verdict/outcome cell, and
 * the verdict line of `ippoc audit --verify`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <string.h>

static json_t *js(const char *text)
{
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    return j;
}

static void test_ids(void **state)
{
    uint64_t id = 0;
    assert_int_equal(cli_check_id("approve", "3", &id), CLI_EXIT_OK);
    assert_int_equal(id, 3);
    assert_int_equal(cli_check_id("approve", "18446744073709551615", &id), CLI_EXIT_OK);
    assert_true(id == UINT64_MAX);
    static const char *const bad[] = {"", "0", "-3", "+3", "3x", " 3", "18446744073709551616", "1e3"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cli_check_id("approve", bad[i], &id), CLI_EXIT_USAGE);
    assert_int_equal(cli_check_id("incident", NULL, &id), CLI_EXIT_USAGE);
}

static void test_cut(void **state)
{
    char b[64];
    cli_fmt_cut("short", 10, b, sizeof b);
    assert_string_equal(b, "short");
    cli_fmt_cut("exactly10!", 10, b, sizeof b);
    assert_string_equal(b, "exactly10!");
    cli_fmt_cut("this is far too long", 10, b, sizeof b);
    assert_string_equal(b, "this is...");
    cli_fmt_cut("two\nlines", 20, b, sizeof b);
    assert_string_equal(b, "two lines");
    cli_fmt_cut("héllo wörld", 8, b, sizeof b); /* code points, not bytes */
    assert_string_equal(b, "héllo...");
    cli_fmt_cut(NULL, 5, b, sizeof b);
    assert_string_equal(b, "");
}

static void test_exit(void **state)
{
    char b[64];
    int64_t now = INT64_C(1700000000000);
    json_t *k = js("{\"status\":0,\"signal\":9,\"ts\":1699999820000}");
    cli_fmt_exit(k, now, b, sizeof b);
    assert_string_equal(b, "SIGKILL 3m ago");
    json_t *e = js("{\"status\":1,\"signal\":0,\"ts\":1699999995000}");
    cli_fmt_exit(e, now, b, sizeof b);
    assert_string_equal(b, "exit 1 5s ago");
    json_t *d = js("{\"status\":0,\"signal\":15,\"ts\":1699900000000}");
    cli_fmt_exit(d, now, b, sizeof b);
    assert_string_equal(b, "SIGTERM 1d3h ago");
    json_t *n = js("{\"status\":2}");
    cli_fmt_exit(n, now, b, sizeof b);
    assert_string_equal(b, "exit 2");
    cli_fmt_exit(NULL, now, b, sizeof b);
    assert_string_equal(b, "-");
    json_decref(k), json_decref(e), json_decref(d), json_decref(n);
}

static void test_expires(void **state)
{
    char b[64];
    json_t *a = js("{\"expires_in_ms\":272500}"), *z = js("{\"expires_in_ms\":-5}");
    json_t *abs = js("{\"expires_ms\":1700000060000}"), *none = js("{}");
    cli_fmt_expires(a, 0, b, sizeof b);
    assert_string_equal(b, "in 4m32s");
    cli_fmt_expires(z, 0, b, sizeof b);
    assert_string_equal(b, "expired");
    cli_fmt_expires(abs, INT64_C(1700000000000), b, sizeof b);
    assert_string_equal(b, "in 1m");
    cli_fmt_expires(none, 0, b, sizeof b);
    assert_string_equal(b, "-");
    json_decref(a), json_decref(z), json_decref(abs), json_decref(none);
}

static void outcome(const char *rec, const char *want)
{
    char b[128];
    json_t *j = js(rec);
    cli_fmt_audit_outcome(j, b, sizeof b);
    assert_string_equal(b, want);
    json_decref(j);
}

static void test_audit_outcome(void **state)
{
    outcome("{\"kind\":\"intent\",\"verdict\":\"execute\"}", "execute");
    outcome("{\"kind\":\"intent\"}", "execute");
    outcome("{\"kind\":\"intent\",\"verdict\":\"execute\",\"dry_run\":true}", "execute (dry run)");
    outcome("{\"kind\":\"result\",\"outcome\":{\"status\":\"ok\",\"message\":\"\"}}", "ok");
    outcome("{\"kind\":\"result\",\"outcome\":{\"status\":\"failed\",\"message\":\"exit 1\"}}", "failed: exit 1");
    outcome("{\"kind\":\"decision\",\"verdict\":\"queue\",\"pending_id\":3}", "queue (pending 3)");
    outcome("{\"kind\":\"decision\",\"verdict\":\"refuse\",\"detail\":\"flapping\"}", "refuse: flapping");
    outcome("{\"kind\":\"approval\",\"detail\":\"cli:alice\",\"pending_id\":3}", "approved by cli:alice (pending 3)");
    outcome("{\"kind\":\"rejection\",\"pending_id\":4}", "rejected (pending 4)");
    outcome("{\"kind\":\"recovery\",\"torn\":{\"offset\":10,\"bytes\":17}}", "torn line of 17 bytes recovered");
    char longmsg[300] = "{\"kind\":\"result\",\"outcome\":{\"status\":\"failed\",\"message\":\"";
    memset(longmsg + strlen(longmsg), 'x', 100);
    strcat(longmsg, "\"}}");
    char b[128];
    json_t *j = js(longmsg);
    cli_fmt_audit_outcome(j, b, sizeof b);
    assert_int_equal(strlen(b), 70);
    assert_string_equal(b + 67, "...");
    json_decref(j);
}

static void test_verify_line(void **state)
{
    char b[256];
    json_t *ok = js("{\"ok\":true,\"records\":12}");
    assert_true(cli_fmt_verify(ok, b, sizeof b));
    assert_string_equal(b, "audit log intact: 12 records");
    json_t *bad = js("{\"ok\":false,\"status\":\"hash_mismatch\",\"line\":3,\"seq\":3,\"reason\":\"bytes changed\"}");
    assert_false(cli_fmt_verify(bad, b, sizeof b));
    assert_string_equal(b, "audit log TAMPERED at line 3 (seq 3): bytes changed");
    json_t *miss = js("{\"ok\":false,\"status\":\"missing\",\"line\":0,\"seq\":0,\"reason\":\"the audit log does not exist\"}");
    assert_false(cli_fmt_verify(miss, b, sizeof b));
    assert_string_equal(b, "audit log TAMPERED: the audit log does not exist");
    json_t *odd = js("{\"ok\":false,\"status\":\"seq_gap\",\"line\":9,\"seq\":12}");
    assert_false(cli_fmt_verify(odd, b, sizeof b));
    assert_string_equal(b, "audit log TAMPERED at line 9 (seq 12): seq_gap");
    json_decref(ok), json_decref(bad), json_decref(miss), json_decref(odd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),     cmocka_unit_test(test_cut),
        cmocka_unit_test(test_exit),    cmocka_unit_test(test_expires),
        cmocka_unit_test(test_audit_outcome), cmocka_unit_test(test_verify_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
