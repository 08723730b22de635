/* test_registry_conf.c: ippocd's [detect] section (src/detect/registry_conf.c):
 * defaults, every key read, every bad value refused with FILE:LINE and the
 * reason, which series the include/exclude globs watch (family name, or the
 * key name{labels} for a glob with '{'), and the label-subset test that
 * anomalous(METRIC{labels}) rules use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "detect/detect.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static detect_registry_config ac; /* large: off the stack */

static int parse(const char *text, char *err, size_t n)
{
    core_config c;
    core_config_defaults(&c);
    int rc = core_config_load_string(&c, text, "d.conf", err, n);
    if (!rc)
        rc = detect_registry_config_parse(&c, &ac, err, n);
    if (!rc)
        rc = detect_registry_config_check(&c, err, n);
    core_config_free(&c);
    return rc;
}

/* Two files, as the main one then a conf.d drop-in. */
static int parse2(const char *main_text, const char *dropin, char *err, size_t n)
{
    core_config c;
    core_config_defaults(&c);
    int rc = core_config_load_string(&c, main_text, "ippoc.conf", err, n);
    if (!rc)
        rc = core_config_load_string(&c, dropin, "conf.d/50.conf", err, n);
    if (!rc)
        rc = detect_registry_config_parse(&c, &ac, err, n);
    core_config_free(&c);
    return rc;
}

static void test_defaults(void **st)
{
    (void)st;
    char err[512] = "";
    assert_int_equal(parse("", err, sizeof err), 0);
    assert_true(ac.enabled);
    assert_true(ac.track.threshold == DETECT_THRESHOLD_DEFAULT);
    assert_int_equal(ac.track.for_ms, 120000);
    assert_int_equal(ac.track.keep_ms, 30000);
    assert_int_equal(ac.track.window_ms, 10000);
    assert_int_equal(ac.max_metrics, 5000);
    assert_int_equal(ac.save_interval_ms, 300000);
    assert_int_equal(ac.ninclude, 1);
    assert_string_equal(ac.include[0], "*");
    assert_int_equal(ac.nexclude, 0);
}

static void test_keys(void **st)
{
    (void)st;
    char err[512] = "";
    assert_int_equal(parse("[detect]\nenabled = no\nthreshold = 0.75\nfor = 10s\nkeep_firing_for = 2m\n"
                           "episode_window = 0\nmax_metrics = 100\nsave_interval = 30s\n"
                           "include = memory.*, process.rss_bytes{name=\"a b,c\"} cpu.*\n"
                           "exclude = self.*\n",
                           err, sizeof err), 0);
    assert_false(ac.enabled);
    assert_true(ac.track.threshold == 0.75);
    assert_int_equal(ac.track.for_ms, 10000);
    assert_int_equal(ac.track.keep_ms, 120000);
    assert_int_equal(ac.track.window_ms, 0);
    assert_int_equal(ac.max_metrics, 100);
    assert_int_equal(ac.save_interval_ms, 30000);
    assert_int_equal(ac.ninclude, 3);
    assert_string_equal(ac.include[1], "process.rss_bytes{name=\"a b,c\"}");
    assert_string_equal(ac.include[2], "cpu.*");
    assert_int_equal(ac.nexclude, 1);
    /* a later file replaces a list; twice in one file is a mistake */
    assert_int_equal(parse2("[detect]\ninclude = a.*\nexclude = x.*\n", "[detect]\ninclude = b.*\nexclude =\n",
                            err, sizeof err), 0);
    assert_int_equal(ac.ninclude, 1);
    assert_string_equal(ac.include[0], "b.*");
    assert_int_equal(ac.nexclude, 0);
    assert_int_not_equal(parse("[detect]\ninclude = a.*\ninclude = b.*\n", err, sizeof err), 0);
    assert_string_equal(err, "d.conf:3: duplicate key 'include' in [detect] (first set at d.conf:2)");
}

static void expect_bad(const char *text, const char *want)
{
    char err[512] = "";
    assert_int_equal(parse(text, err, sizeof err), -EINVAL);
    if (!strstr(err, want))
        fail_msg("wanted '%s' in '%s'", want, err);
}

static void test_bad(void **st)
{
    (void)st;
    expect_bad("[detect]\nthreshold = 2\n", "d.conf:2: threshold: '2' is not a score above 0 and at most 1");
    expect_bad("[detect]\n\nthreshold = 0\n", "d.conf:3: threshold:");
    expect_bad("[detect]\nthreshold = high\n", "d.conf:2: threshold:");
    expect_bad("[detect]\nthreshold = nan\n", "d.conf:2: threshold:");
    expect_bad("[detect]\nenabled = maybe\n", "d.conf:2: enabled: 'maybe' is not yes or no");
    expect_bad("[detect]\nfor = soon\n", "d.conf:2: for: 'soon' is not a duration");
    expect_bad("[detect]\nfor = 2d\n", "d.conf:2: for: '2d' is out of range (0s to 1d)");
    expect_bad("[detect]\nkeep_firing_for = -1s\n", "d.conf:2: keep_firing_for:");
    expect_bad("[detect]\nepisode_window = 2h\n", "d.conf:2: episode_window: '2h' is out of range (0s to 1h)");
    expect_bad("[detect]\nsave_interval = 1s\n", "d.conf:2: save_interval: '1s' is out of range (10s to 1d)");
    expect_bad("[detect]\nmax_metrics = 0\n", "d.conf:2: max_metrics: '0' is not a number from 1 to 262144");
    expect_bad("[detect]\nmax_metrics = 10x\n", "d.conf:2: max_metrics:");
    expect_bad("[detect]\ninclude = memory.{a=\"x\"\n", "d.conf:2: include: 'memory.{a=\"x\"' has an unclosed");
    expect_bad("[detect]\nthreshhold = 0.5\n", "d.conf:2: unknown key 'threshhold' in [detect]");
    char many[1024] = "[detect]\nexclude =";
    for (int i = 0; i < 65; i++)
        strcat(many, " a");
    strcat(many, "\n");
    expect_bad(many, "d.conf:2: exclude: more than 64 globs");
}

static void test_match(void **st)
{
    (void)st;
    char err[512] = "";
    assert_int_equal(parse("[detect]\ninclude = memory.* process.*{*name=\"web\"*} load.load1\n"
                           "exclude = memory.swap_* *{*pid=\"1\"*}\n", err, sizeof err), 0);
    assert_true(detect_registry_config_match(&ac, "memory.used_bytes", ""));
    assert_false(detect_registry_config_match(&ac, "memory.swap_used_bytes", ""));
    assert_true(detect_registry_config_match(&ac, "load.load1", ""));
    assert_false(detect_registry_config_match(&ac, "load.load5", ""));
    assert_true(detect_registry_config_match(&ac, "process.rss_bytes", "name=\"web\",pid=\"42\""));
    assert_false(detect_registry_config_match(&ac, "process.rss_bytes", "name=\"web\",pid=\"1\""));
    assert_false(detect_registry_config_match(&ac, "process.rss_bytes", "name=\"db\",pid=\"42\""));
    assert_false(detect_registry_config_match(&ac, "cpu.usage_percent", "cpu=\"total\""));
    assert_int_equal(parse("", err, sizeof err), 0); /* default: everything */
    assert_true(detect_registry_config_match(&ac, "cpu.usage_percent", "cpu=\"total\",state=\"user\""));
}

static void test_labels_subset(void **st)
{
    (void)st;
    const char *have = "cpu=\"total\",name=\"a,b=\\\"c\\\"\",state=\"user\"";
    assert_true(mem_labels_subset(have, ""));
    assert_true(mem_labels_subset(have, "cpu=\"total\""));
    assert_true(mem_labels_subset(have, "cpu=\"total\",state=\"user\""));
    assert_true(mem_labels_subset(have, "name=\"a,b=\\\"c\\\"\""));
    assert_false(mem_labels_subset(have, "b=\"c\""));
    assert_false(mem_labels_subset(have, "cpu=\"tot\""));
    assert_false(mem_labels_subset(have, "state=\"user\",x=\"1\""));
    assert_false(mem_labels_subset("", "cpu=\"total\""));
    assert_true(mem_labels_subset("", ""));
    assert_false(mem_labels_subset("bad", "cpu=\"total\"")); /* malformed: no match, no hang */
    assert_false(mem_labels_subset("cpu=\"total", "cpu=\"total\""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults), cmocka_unit_test(test_keys), cmocka_unit_test(test_bad),
        cmocka_unit_test(test_match),    cmocka_unit_test(test_labels_subset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
