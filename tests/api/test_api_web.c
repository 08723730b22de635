/* test_api_web.c: the pure parts of serving the dashboard
 * (src/api/api_web_parse.c): which file a decoded path names (traversal,
 * empty and dot segments, backslashes refused), Accept-Encoding with its q
 * values, If-None-Match lists with weak tags and the gzip'd variant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "api/api_int.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(api_web_name("/"), "index.html");
    assert_string_equal(api_web_name("/index.html"), "index.html");
    assert_string_equal(api_web_name("/assets/app.js"), "app.js");
    assert_string_equal(api_web_name("/assets/vendor/uPlot.min.css"), "vendor/uPlot.min.css");
    assert_string_equal(api_web_name("/assets/a..b.js"), "a..b.js"); /* dots inside a name are fine */
    const char *bad[] = {"/assets/", "/assets/../index.html", "/assets/..", "/assets/.", "/assets/./app.js",
                         "/assets//app.js", "/assets/vendor/", "/assets/vendor/../app.js", "/assets/a\\b",
                         "/assets/..\\app.js", "/assets", "/index.htm", "/app.js", "//", "", "/assets/x/..",
                         "/Assets/app.js"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(api_web_name(bad[i]));
    assert_null(api_web_name(NULL));
}

static void test_accept_encoding(void **state)
{
    (void)state;
    const char *yes[] = {"gzip", "gzip, deflate, br", "br;q=1.0, gzip;q=0.8", "GZIP", "x-gzip", "*",
                         "deflate, *;q=0.1", "gzip;q=0.001", "gzip; q=1", "gzip;Q=0.5", " gzip ", "gzip;q=1.000",
                         "gzip;level=1", "gzip;q=0, gzip;q=1"};
    const char *no[] = {"", "identity", "gzip;q=0", "gzip;q=0.0", "gzip;q=0.000", "*;q=0", "gzip;q=0, *",
                        "br, deflate", "gzipx", "xgzip", "gzip;q=", "gzip;q=abc", "gzip;q=2", "*;q=0, gzip;q=0",
                        "gzip;q=-1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!api_web_accepts_gzip(yes[i]))
            fail_msg("should take gzip: \"%s\"", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (api_web_accepts_gzip(no[i]))
            fail_msg("should not take gzip: \"%s\"", no[i]);
    assert_false(api_web_accepts_gzip(NULL));
}

static void test_etag(void **state)
{
    (void)state;
    const char *e = "\"abc123\"";
    assert_true(api_web_etag_match("\"abc123\"", e));
    assert_true(api_web_etag_match("\"abc123-gz\"", e));
    assert_true(api_web_etag_match("W/\"abc123\"", e));
    assert_true(api_web_etag_match("\"x\", \"y\",W/\"abc123-gz\"", e));
    assert_true(api_web_etag_match("*", e));
    assert_false(api_web_etag_match("\"abc12\"", e));
    assert_false(api_web_etag_match("\"abc1234\"", e));
    assert_false(api_web_etag_match("\"abc123-g\"", e));
    assert_false(api_web_etag_match("abc123", e));
    assert_false(api_web_etag_match("\"abc123", e));
    assert_false(api_web_etag_match("", e));
    assert_false(api_web_etag_match(NULL, e));
    assert_false(api_web_etag_match("\"x\", \"y\"", e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_accept_encoding),
        cmocka_unit_test(test_etag),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
