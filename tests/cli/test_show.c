/* test_show.c: unit tests of the sparkline renderer of `ippoc show`
 * (cli_sparkline in src/cli/cmd_show.c): scaling, gaps, bucketing of more
 * points than columns, ASCII fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.h"

#include <math.h>
#include <string.h>

static cli_point pt(int64_t ts, double v)
{
    cli_point p = {ts, v, v, v, 1};
    return p;
}

static void test_ramp(void **state)
{
    cli_point p[8];
    char buf[128];
    for (int i = 0; i < 8; i++)
        p[i] = pt(i * 1000, i);
    assert_int_equal(cli_sparkline(p, 8, 0, 8000, 8, NAN, NAN, false, buf, sizeof buf), 8);
    assert_string_equal(buf, "▁▂▃▄▅▆▇█");
    cli_sparkline(p, 8, 0, 8000, 8, NAN, NAN, true, buf, sizeof buf);
    assert_string_equal(buf, "_.-:=+*#");
}

static void test_gaps_and_flat(void **state)
{
    cli_point p[] = {pt(2000, 5), pt(3000, 5), pt(6000, 5)};
    char buf[128];
    cli_sparkline(p, 3, 0, 8000, 8, NAN, NAN, true, buf, sizeof buf);
    assert_string_equal(buf, "  ::  :"); /* leading gap kept, trailing one trimmed */
    cli_point z[] = {pt(0, 0), pt(1000, 0)};
    cli_sparkline(z, 2, 0, 2000, 2, NAN, NAN, true, buf, sizeof buf);
    assert_string_equal(buf, "__");
}

static void test_bucketing(void **state)
{
    cli_point p[100];
    char buf[64];
    for (int i = 0; i < 100; i++)
        p[i] = pt(i * 1000, i < 50 ? 0 : 10); /* two halves */
    assert_int_equal(cli_sparkline(p, 100, 0, 100000, 4, NAN, NAN, true, buf, sizeof buf), 4);
    assert_string_equal(buf, "__##");
}

static void test_fixed_scale_and_small_buffer(void **state)
{
    cli_point p[] = {pt(0, 50), pt(1000, 100)};
    char buf[8];
    cli_sparkline(p, 2, 0, 2000, 2, 0, 100, true, buf, sizeof buf);
    assert_string_equal(buf, "=#");
    cli_point q[8];
    for (int i = 0; i < 8; i++)
        q[i] = pt(i * 1000, i);
    cli_sparkline(q, 8, 0, 8000, 8, NAN, NAN, false, buf, sizeof buf); /* 3 bytes a block */
    assert_string_equal(buf, "▁▂");
    assert_int_equal(cli_sparkline(q, 8, 0, 0, 8, NAN, NAN, false, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ramp), cmocka_unit_test(test_gaps_and_flat),
        cmocka_unit_test(test_bucketing), cmocka_unit_test(test_fixed_scale_and_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
