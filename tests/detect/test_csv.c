/* test_csv.c: placeholder, being written. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "detect/detect.h"

static void test_placeholder(void **state) { (void)state; assert_true(detect_state_size() <= DETECT_STATE_MAX); }

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_placeholder) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
