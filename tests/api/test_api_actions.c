/* test_api_actions.c: unit tests of POST /v1/actions' body check
 * (api_parse_propose_body): a good body with and without "who", and each
 * way a body can be wrong (not JSON, not an object, unknown or duplicate
 * members, missing members, wrong types, empty, blank, oversized, NUL and
 * control bytes, a bad "who"), each error naming the member. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_int.h"

/* Parses body; asserts -EINVAL with every one of the texts in err. */
static void expect_bad(const char *body, size_t len, const char *want, const char *want2)
{
    api_proposal p;
    char err[512] = "";
    int rc = api_parse_propose_body(body, len, &p, err, sizeof err);
    if (rc != -EINVAL)
        fail_msg("%.200s: rc %d, expected -EINVAL", body, rc);
    if (!strstr(err, want) || (want2 && !strstr(err, want2)))
        fail_msg("%.200s: error '%s' lacks '%s'%s%s", body, err, want, want2 ? " / " : "", want2 ? want2 : "");
    assert_string_equal(p.service, ""); /* nothing half-filled */
    assert_string_equal(p.who, "");
}

static void bad(const char *body, const char *want, const char *want2)
{
    expect_bad(body, strlen(body), want, want2);
}

static void t_good(void **state)
{
    (void)state;
    api_proposal p;
    char err[256] = "";
    const char *b = "{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"it hangs\"}";
    assert_int_equal(api_parse_propose_body(b, strlen(b), &p, err, sizeof err), 0);
    assert_string_equal(p.service, "web");
    assert_string_equal(p.action, "restart");
    assert_string_equal(p.reason, "it hangs");
    assert_string_equal(p.who, "api"); /* the default */
    b = "{\"who\":\"mcp:claude desktop\",\"reason\":\"disk full \\u00e9\",\"action\":\"sysctl vm.swappiness = 10\","
        "\"service\":\"db-1.main\"}";
    assert_int_equal(api_parse_propose_body(b, strlen(b), &p, err, sizeof err), 0);
    assert_string_equal(p.who, "mcp:claude desktop");
    assert_string_equal(p.action, "sysctl vm.swappiness = 10");
    assert_string_equal(p.reason, "disk full \xc3\xa9"); /* UTF-8 text is fine in a reason */
    assert_string_equal(p.service, "db-1.main");
}

static void t_shape(void **state)
{
    (void)state;
    expect_bad(NULL, 0, "body: not JSON", NULL);
    bad("", "body: not JSON", NULL);
    bad("{\"service\":", "body: not JSON", NULL);
    bad("[1,2]", "expected a JSON object", NULL);
    bad("\"restart\"", "expected a JSON object", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"x\",\"force\":true}", "unknown member \"force\"",
        NULL);
    bad("{\"service\":\"web\",\"service\":\"db\",\"action\":\"restart\",\"reason\":\"x\"}", "not JSON",
        "duplicate");
    char big[API_BODY_MAX + 64];
    memset(big, ' ', sizeof big);
    expect_bad(big, sizeof big, "longer than", NULL);
}

static void t_members(void **state)
{
    (void)state;
    bad("{\"action\":\"restart\",\"reason\":\"x\"}", "\"service\" is missing", NULL);
    bad("{\"service\":\"web\",\"reason\":\"x\"}", "\"action\" is missing", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\"}", "\"reason\" is missing", NULL);
    bad("{\"service\":7,\"action\":\"restart\",\"reason\":\"x\"}", "\"service\" must be a string", NULL);
    bad("{\"service\":\"web\",\"action\":[\"restart\"],\"reason\":\"x\"}", "\"action\" must be a string", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":null}", "\"reason\" must be a string", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"x\",\"who\":false}", "\"who\" must be a string",
        NULL);
    bad("{\"service\":\"\",\"action\":\"restart\",\"reason\":\"x\"}", "\"service\" is empty", NULL);
    bad("{\"service\":\"web\",\"action\":\"  \",\"reason\":\"x\"}", "\"action\" is empty", "blanks");
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"\"}", "\"reason\" is empty", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"x\",\"who\":\"\"}", "\"who\" is empty", NULL);
}

static void t_texts(void **state)
{
    (void)state;
    bad("{\"service\":\"web\\u0000x\",\"action\":\"restart\",\"reason\":\"x\"}", "\"service\" holds a NUL", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\\u0000; rm -rf /\",\"reason\":\"x\"}", "\"action\" holds a NUL",
        NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"a\\u0000b\"}", "\"reason\" holds a NUL", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"x\",\"who\":\"a\\u0000\"}", "\"who\" holds a NUL",
        NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\\nstop\",\"reason\":\"x\"}", "\"action\" holds a control", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"line\\u001b[2J\"}", "\"reason\" holds a control",
        NULL);
    bad("{\"service\":\"my web\",\"action\":\"restart\",\"reason\":\"x\"}", "\"service\" holds a blank", NULL);
    bad("{\"service\":\"w\\u00e9b\",\"action\":\"restart\",\"reason\":\"x\"}", "\"service\" holds a byte", NULL);
    bad("{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"x\",\"who\":\"\\u00e9ve\"}", "\"who\" holds a byte",
        NULL);
    char b[4096], *s = malloc(2048);
    assert_non_null(s);
    memset(s, 'a', 2047);
    s[2047] = 0;
    snprintf(b, sizeof b, "{\"service\":\"%.64s\",\"action\":\"restart\",\"reason\":\"x\"}", s);
    bad(b, "\"service\" is 64 bytes long", "at most 63");
    snprintf(b, sizeof b, "{\"service\":\"web\",\"action\":\"%.481s\",\"reason\":\"x\"}", s);
    bad(b, "\"action\" is 481 bytes long", NULL);
    snprintf(b, sizeof b, "{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"%.1001s\"}", s);
    bad(b, "\"reason\" is 1001 bytes long", NULL);
    snprintf(b, sizeof b, "{\"service\":\"web\",\"action\":\"restart\",\"reason\":\"x\",\"who\":\"%.65s\"}", s);
    bad(b, "\"who\" is 65 bytes long", NULL);
    /* the longest of each is fine */
    api_proposal p;
    char err[256];
    snprintf(b, sizeof b, "{\"service\":\"%.63s\",\"action\":\"%.480s\",\"reason\":\"%.1000s\",\"who\":\"%.64s\"}", s,
             s, s, s);
    assert_int_equal(api_parse_propose_body(b, strlen(b), &p, err, sizeof err), 0);
    assert_int_equal(strlen(p.reason), 1000);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_good),
        cmocka_unit_test(t_shape),
        cmocka_unit_test(t_members),
        cmocka_unit_test(t_texts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
