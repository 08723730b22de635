/* test_fmt.c: unit tests of the CLI's human formatting (src/cli/fmt.c) and
 * text tables (src/cli/table.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_value(double v, const char *unit, const char *want)
{
    char buf[64];
    cli_fmt_value(v, unit, buf, sizeof buf);
    assert_string_equal(buf, want);
}

static void test_values(void **state)
{
    check_value(34.5, "percent", "34.5%");
    check_value(12.345, "percent", "12.3%");
    check_value(1288490188.8, "bytes", "1.2 GiB");
    check_value(512, "bytes", "512 B");
    check_value(1023.99 * 1024, "bytes", "1.0 MiB");
    check_value(12595.2, "bytes/s", "12.3 KiB/s");
    check_value(0, "bytes/s", "0 B/s");
    check_value(3.456, "1/s", "3.46/s");
    check_value(42, "", "42");
    check_value(0.25, "", "0.25");
    check_value(2500000, "", "2.5M");
    check_value(7, "widgets", "7 widgets");
    check_value(0.0123, "seconds", "12.3ms");
    check_value(NAN, "percent", "-");
}

static void test_durations(void **state)
{
    char b[32];
    cli_fmt_duration(250, b, sizeof b);
    assert_string_equal(b, "250ms");
    cli_fmt_duration(1000, b, sizeof b);
    assert_string_equal(b, "1s");
    cli_fmt_duration(1500, b, sizeof b);
    assert_string_equal(b, "1.5s");
    cli_fmt_duration(600000, b, sizeof b);
    assert_string_equal(b, "10m");
    cli_fmt_duration(3723000, b, sizeof b);
    assert_string_equal(b, "1h2m3s");
    cli_fmt_micros(123.4, b, sizeof b);
    assert_string_equal(b, "123us");
    cli_fmt_micros(1234, b, sizeof b);
    assert_string_equal(b, "1.2ms");
    cli_fmt_micros(2.5e6, b, sizeof b);
    assert_string_equal(b, "2.50s");
}

static void test_json_time(void **state)
{
    json_t *ms = json_integer(1714567890123LL), *s = json_real(1714567890.5);
    assert_int_equal(cli_json_time_ms(ms), 1714567890123LL);
    assert_int_equal(cli_json_time_ms(s), 1714567890500LL);
    assert_int_equal(cli_json_time_ms(NULL), 0);
    json_decref(ms);
    json_decref(s);
}

static void test_payload(void **state)
{
    char b[256];
    json_t *p = json_loads("{\"metric\":\"cpu.usage_percent\",\"score\":4.5,\"note\":\"two words\","
                           "\"ok\":true,\"why\":{\"n\":[1,2]}}", 0, NULL);
    cli_fmt_payload(p, b, sizeof b);
    assert_string_equal(b, "metric=cpu.usage_percent score=4.5 note=\"two words\" ok=true why={\"n\":[1,2]}");
    cli_fmt_payload(p, b, 12); /* truncation stays terminated */
    assert_int_equal(strlen(b), 11);
    json_decref(p);
    p = json_object();
    cli_fmt_payload(p, b, sizeof b);
    assert_string_equal(b, "");
    json_decref(p);
}

static void test_key(void **state)
{
    char b[128];
    json_t *m = json_loads("{\"name\":\"net.rx_bytes\",\"labels\":{\"dev\":\"eth0\",\"dir\":\"in\"}}", 0, NULL);
    cli_fmt_key(m, b, sizeof b);
    assert_string_equal(b, "net.rx_bytes{dev=\"eth0\",dir=\"in\"}");
    json_object_set_new(m, "key", json_string("k{x=\"1\"}"));
    cli_fmt_key(m, b, sizeof b);
    assert_string_equal(b, "k{x=\"1\"}");
    json_decref(m);
}

static void test_locale(void **state)
{
    setenv("LC_ALL", "", 1);
    setenv("LC_CTYPE", "", 1);
    setenv("LANG", "en_US.UTF-8", 1);
    assert_true(cli_locale_utf8());
    setenv("LC_ALL", "C", 1);
    assert_false(cli_locale_utf8());
    setenv("LC_ALL", "", 1);
    setenv("LANG", "C.utf8", 1);
    assert_true(cli_locale_utf8());
    unsetenv("LANG");
    assert_false(cli_locale_utf8());
}

static void test_table(void **state)
{
    static const char *const hdr[] = {"NAME", "N", "NOTE"};
    static const char *const r1[] = {"cpu", "17", "procfs"};
    static const char *const r2[] = {"diskstats", "3", "é ok"};
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cli_table t;
    cli_table_init(&t, 3, hdr);
    t.right[1] = true;
    cli_table_row(&t, r1);
    cli_table_row(&t, r2);
    cli_table_print(&t, f);
    cli_table_free(&t);
    fclose(f);
    assert_string_equal(out, "NAME        N  NOTE\n"
                             "cpu        17  procfs\n"
                             "diskstats   3  é ok\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),   cmocka_unit_test(test_durations),
        cmocka_unit_test(test_json_time), cmocka_unit_test(test_payload),
        cmocka_unit_test(test_key),      cmocka_unit_test(test_locale),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
