/* test_parse.c: durations, sizes, booleans, times and host:port parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"

static void test_duration(void **state)
{
    (void)state;
    static const struct { const char *in; int64_t ms; } ok[] = {
        {"500ms", 500}, {"10s", 10000}, {"10", 10000}, {"1.5s", 1500}, {"15m", 900000},
        {"2h", 7200000}, {"1d", 86400000}, {"1w", 604800000}, {" 3s ", 3000}, {"0", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        assert_int_equal(core_parse_duration(ok[i].in, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    static const char *const bad[] = {"", "abc", "-1s", "5x", "1s2", "s", "1e400s", "10 m x", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        assert_int_equal(core_parse_duration(bad[i], &ms), -EINVAL);
    }
}

static void test_size(void **state)
{
    (void)state;
    uint64_t b;
    assert_int_equal(core_parse_size("512", &b), 0);
    assert_int_equal(b, 512);
    assert_int_equal(core_parse_size("12MB", &b), 0);
    assert_int_equal(b, 12ULL << 20);
    assert_int_equal(core_parse_size("2GiB", &b), 0);
    assert_int_equal(b, 2ULL << 30);
    assert_int_equal(core_parse_size("64k", &b), 0);
    assert_int_equal(b, 64ULL << 10);
    assert_int_equal(core_parse_size("1.5 G", &b), 0);
    assert_int_equal(b, 3ULL << 29);
    assert_int_equal(core_parse_size("12XB", &b), -EINVAL);
    assert_int_equal(core_parse_size("-1", &b), -EINVAL);
    assert_int_equal(core_parse_size("", &b), -EINVAL);
}

static void test_bool_and_time(void **state)
{
    (void)state;
    bool v;
    assert_int_equal(core_parse_bool("yes", &v), 0);
    assert_true(v);
    assert_int_equal(core_parse_bool("Off", &v), 0);
    assert_false(v);
    assert_int_equal(core_parse_bool("maybe", &v), -EINVAL);

    int64_t now = 1700000000000LL, t;
    assert_int_equal(core_parse_time("now", now, &t), 0);
    assert_int_equal(t, now);
    assert_int_equal(core_parse_time("now-15m", now, &t), 0);
    assert_int_equal(t, now - 900000);
    assert_int_equal(core_parse_time("15m", now, &t), 0);
    assert_int_equal(t, now - 900000);
    assert_int_equal(core_parse_time("1700000000.5", now, &t), 0);
    assert_int_equal(t, 1700000000500LL);
    assert_int_equal(core_parse_time("1700000000000", now, &t), -EINVAL); /* ms, not s */
    assert_int_equal(core_parse_time("yesterday", now, &t), -EINVAL);
    assert_int_equal(core_parse_time("", now, &t), -EINVAL);
}

static void test_hostport(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(core_split_hostport("127.0.0.1:7070", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7070);
    assert_int_equal(core_split_hostport("[::1]:0", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(core_split_hostport("::1:80", host, sizeof host, &port), -EINVAL);
    assert_int_equal(core_split_hostport("host:99999", host, sizeof host, &port), -EINVAL);
    assert_int_equal(core_split_hostport("host:", host, sizeof host, &port), -EINVAL);
    assert_int_equal(core_split_hostport(":80", host, sizeof host, &port), -EINVAL);
    assert_true(core_host_is_loopback("127.0.0.1"));
    assert_true(core_host_is_loopback("::1"));
    assert_false(core_host_is_loopback("0.0.0.0"));
}

static void test_format_duration(void **state)
{
    (void)state;
    char buf[32];
    core_format_duration(3723000, buf, sizeof buf);
    assert_string_equal(buf, "1h2m3s");
    core_format_duration(250, buf, sizeof buf);
    assert_string_equal(buf, "250ms");
}

static void put_into(void *ud, const char *p, size_t n)
{
    strncat(ud, p, n);
}

/* The Prometheus escapes: backslash and newline always, quotes in label
 * values only. */
static void test_prom_escape(void **state)
{
    (void)state;
    char out[128] = "";
    core_prom_escape("a\\b\n\"c\"", true, put_into, out);
    assert_string_equal(out, "a\\\\b\\n\\\"c\\\"");
    out[0] = 0;
    core_prom_escape("a\\b\n\"c\"", false, put_into, out);
    assert_string_equal(out, "a\\\\b\\n\"c\"");
    out[0] = 0;
    core_prom_escape("", true, put_into, out);
    assert_string_equal(out, "");
    /* invalid UTF-8: one U+FFFD per run, valid sequences kept */
    out[0] = 0;
    core_prom_escape("M\xfcnchen \xff\xfe\"x\" caf\xc3\xa9 \xed\xa0\x80", true, put_into, out);
    assert_string_equal(out, "M\xef\xbf\xbdnchen \xef\xbf\xbd\\\"x\\\" caf\xc3\xa9 \xef\xbf\xbd");
}

/* core_mktime agrees with mktime, DST edges and normalisation included (a
 * POSIX TZ rule: no zoneinfo files needed). */
static void test_mktime(void **state)
{
    (void)state;
    static const char *const zones[] = {"EST5EDT,M3.2.0,M11.1.0", "CET-1CEST,M3.5.0,M10.5.0/3", "UTC0"};
    static const int days[][6] = {
        {2026, 3, 8, 12, 0, 0}, {2026, 3, 8, 0, 30, 0}, {2026, 11, 1, 12, 0, 0}, {2026, 1, 15, 23, 59, 59},
        {2026, 7, 4, 6, 0, 0},  {2026, 3, 29, 12, 0, 0}, {2026, 10, 25, 12, 0, 0}, {2026, 2, 31, 0, 0, 0},
    };
    for (size_t z = 0; z < sizeof zones / sizeof zones[0]; z++) {
        setenv("TZ", zones[z], 1);
        tzset();
        for (size_t i = 0; i < sizeof days / sizeof days[0]; i++) {
            struct tm a = {.tm_year = days[i][0] - 1900, .tm_mon = days[i][1] - 1, .tm_mday = days[i][2],
                           .tm_hour = days[i][3], .tm_min = days[i][4], .tm_sec = days[i][5], .tm_isdst = -1};
            struct tm b = a;
            time_t want = mktime(&a);
            time_t got = core_mktime(&b);
            assert_int_equal((long long)got, (long long)want);
            assert_int_equal(b.tm_mday, a.tm_mday); /* 2026-02-31 normalised to March 3 */
            assert_int_equal(b.tm_mon, a.tm_mon);
        }
    }
    unsetenv("TZ");
    tzset();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duration), cmocka_unit_test(test_size),
        cmocka_unit_test(test_bool_and_time), cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_format_duration), cmocka_unit_test(test_prom_escape),
        cmocka_unit_test(test_mktime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
