/* test_config.c: the INI configuration: defaults, every section, conf.d
 * ordering, and bad input answered with file:line and the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"

static void test_defaults_valid(void **state)
{
    (void)state;
    core_config c;
    char err[512];
    core_config_defaults(&c);
    assert_int_equal(core_config_validate(&c, err, sizeof err), 0);
    assert_string_equal(c.api_listen, "127.0.0.1:7070");
    assert_int_equal(c.mem_ram_window_ms, 900000);
    assert_non_null(core_config_group(&c, "cpu"));
    assert_null(core_config_group(&c, "tpu"));
    assert_string_equal(c.udev_data_dir, "/run/udev/data");
    core_config_free(&c);
}

static void test_full_config(void **state)
{
    (void)state;
    const char *text =
        "; comment\n"
        "[daemon]\nstate_dir = /tmp/x\nlog_level = debug\nlog_target = journal\n"
        "[api]\nlisten = 0.0.0.0:9000\ntoken = 0123456789abcdef0123\nmax_points = 500\n"
        "[sense]\ninterval = 2s\nprocesses = nginx, sshd pidfile:/run/x.pid\ncgroups = a/*\nudev_data_dir = /tmp/udev\n"
        "[sense.disk]\ninterval = 10s\nenabled = no\n"
        "[memory]\nram_window = 5m\nretention_10s = 1d\nretention_1m = 7d\nretention_1h = 1y\n";
    core_config c;
    char err[512] = "";
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, text, "t.conf", err, sizeof err), 0);
    assert_int_equal(core_config_validate(&c, err, sizeof err), 0);
    assert_string_equal(c.state_dir, "/tmp/x");
    assert_int_equal(c.log_level, CORE_LOG_DEBUG);
    assert_int_equal(c.log_syslog, 1);
    assert_int_equal(c.api_max_points, 500);
    assert_int_equal(c.sense_interval_ms, 2000);
    assert_int_equal(c.nwatch_process, 3);
    assert_string_equal(c.watch_process[2], "pidfile:/run/x.pid");
    assert_int_equal(c.nwatch_cgroup, 1);
    const core_sense_group *g = core_config_group(&c, "disk");
    assert_int_equal(g->interval_ms, 10000);
    assert_false(g->enabled);
    assert_int_equal(c.mem_ram_window_ms, 300000);
    assert_string_equal(c.udev_data_dir, "/tmp/udev");
    core_config_free(&c);
}

/* Each bad input must fail with the right line number and a reason. */
static void test_bad_inputs(void **state)
{
    (void)state;
    static const struct { const char *text; const char *want; } cases[] = {
        {"[daemon]\nlog_level = loud\n", "t.conf:2: log_level: unknown level 'loud'"},
        {"[daemon]\nfoo = 1\n", "t.conf:2: unknown key 'foo' in [daemon]"},
        {"[nope]\nx = 1\n", "t.conf:2: unknown section [nope]"},
        {"\n\n[sense]\ninterval = 0.5s\n", "t.conf:4: interval: must be at least 1s"},
        {"[sense]\ninterval = 1500ms\n", "t.conf:2: interval: '1500ms' is not a whole number of seconds"},
        {"[sense]\ninterval = fast\n", "t.conf:2: interval: bad duration 'fast'"},
        {"[sense.tpu]\ninterval = 1s\n", "t.conf:2: unknown sensor group [sense.tpu]"},
        {"[sense.cpu]\nenabled = perhaps\n", "t.conf:2: enabled: 'perhaps' is not yes or no"},
        {"[api]\nlisten = 7070\n", "t.conf:2: listen: bad address '7070'"},
        {"[api]\nmax_points = -4\n", "t.conf:2: max_points: '-4' is not a number in range"},
        {"[api]\nprometheus_listen = 9100\n", "t.conf:2: prometheus_listen: bad address '9100'"},
        {"x = 1\n", "t.conf:1: key 'x' outside of any [section]"},
        {"[daemon\nstate_dir=/x\n", "t.conf:1: syntax error"},
        {"[memory]\nram_window = 10s\n", "t.conf:2: ram_window: must be at least 1m"},
        {"[daemon]\nstate_dir = relative\n", "t.conf:2: state_dir: 'relative' must be an absolute"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        core_config c;
        char err[512] = "";
        core_config_defaults(&c);
        assert_int_not_equal(core_config_load_string(&c, cases[i].text, "t.conf", err, sizeof err), 0);
        if (strncmp(err, cases[i].want, strlen(cases[i].want)))
            fail_msg("case %zu: got '%s', want prefix '%s'", i, err, cases[i].want);
        core_config_free(&c);
    }
}

/* [heal], [service.NAME] and [alert.NAME] are kept raw, with their places,
 * for the heal module to interpret; repeated keys (rule = ...) all kept. */
static void test_raw_sections(void **state)
{
    (void)state;
    const char *text = "[service.web]\ncommand = /bin/sleep 100\nrule = if failed process then start\n"
                       "rule = if 3 restarts within 5m then stop\n[heal]\nmode = suggest\n"
                       "[alert.ops]\nurl = http://127.0.0.1:9/hook\n";
    core_config c;
    char err[512] = "";
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, text, "web.conf", err, sizeof err), 0);
    assert_int_equal(c.nraw, 5);
    assert_string_equal(c.raw[2].section, "service.web");
    assert_string_equal(c.raw[2].key, "rule");
    assert_string_equal(c.raw[2].value, "if 3 restarts within 5m then stop");
    assert_string_equal(c.raw[2].file, "web.conf");
    assert_int_equal(c.raw[2].line, 4);
    assert_string_equal(c.raw[3].section, "heal");
    assert_string_equal(c.raw[4].section, "alert.ops");
    core_config_free(&c);
    core_config_defaults(&c);
    assert_int_not_equal(core_config_load_string(&c, "[service.]\nx = 1\n", "t.conf", err, sizeof err), 0);
    assert_non_null(strstr(err, "unknown section [service.]"));
    core_config_free(&c);
}

static void test_overlong_line(void **state)
{
    (void)state;
    char text[600];
    int n = snprintf(text, sizeof text, "[service.web]\ncommand = /bin/true\nrule = if failed http://127.0.0.1:8080/");
    memset(text + n, 'a', 300);
    snprintf(text + n + 300, sizeof text - (size_t)n - 300, " then restart\n");
    core_config c;
    char err[512] = "";
    core_config_defaults(&c);
    assert_int_not_equal(core_config_load_string(&c, text, "long.conf", err, sizeof err), 0);
    assert_non_null(strstr(err, "long.conf:3: line longer than"));
    core_config_free(&c);
}

static void test_validate(void **state)
{
    (void)state;
    core_config c;
    char err[512];
    core_config_defaults(&c);
    core_sncpy(c.api_listen, sizeof c.api_listen, "0.0.0.0:7070");
    assert_int_not_equal(core_config_validate(&c, err, sizeof err), 0);
    assert_non_null(strstr(err, "token"));
    core_sncpy(c.api_token, sizeof c.api_token, "short");
    assert_int_not_equal(core_config_validate(&c, err, sizeof err), 0);
    core_sncpy(c.api_token, sizeof c.api_token, "a-long-enough-token-value");
    assert_int_equal(core_config_validate(&c, err, sizeof err), 0);
    core_sncpy(c.api_prometheus_listen, sizeof c.api_prometheus_listen, "0.0.0.0:7070");
    assert_int_not_equal(core_config_validate(&c, err, sizeof err), 0);
    assert_non_null(strstr(err, "prometheus_listen"));
    core_sncpy(c.api_prometheus_listen, sizeof c.api_prometheus_listen, "0.0.0.0:9100");
    assert_int_equal(core_config_validate(&c, err, sizeof err), 0);
    c.mem_retention_1m_ms = 1000;
    assert_int_not_equal(core_config_validate(&c, err, sizeof err), 0);
    core_config_free(&c);
}

/* The main file then conf.d files in name order; an error names the file. */
static void test_files_and_confd(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-conf.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], confd[256], f1[300], f2[300];
    snprintf(path, sizeof path, "%s/ippoc.conf", dir);
    snprintf(confd, sizeof confd, "%s/conf.d", dir);
    snprintf(f1, sizeof f1, "%s/10-a.conf", confd);
    snprintf(f2, sizeof f2, "%s/20-b.conf", confd);
    assert_int_equal(core_mkdir_p(confd, 0700), 0);
    FILE *f = fopen(path, "w");
    fputs("[sense]\ninterval = 2s\n", f);
    fclose(f);
    f = fopen(f2, "w");
    fputs("[sense]\ninterval = 5s\n", f);
    fclose(f);
    f = fopen(f1, "w");
    fputs("[sense]\ninterval = 3s\n", f);
    fclose(f);
    core_config c;
    char err[512] = "";
    core_config_defaults(&c);
    assert_int_equal(core_config_load(&c, path, true, err, sizeof err), 0);
    assert_int_equal(c.sense_interval_ms, 5000); /* 20-b wins */
    core_config_free(&c);

    f = fopen(f1, "w");
    fputs("[sense]\n\ninterval = never\n", f);
    fclose(f);
    core_config_defaults(&c);
    assert_int_not_equal(core_config_load(&c, path, true, err, sizeof err), 0);
    char want[400];
    snprintf(want, sizeof want, "%s:3: interval: bad duration", f1);
    assert_int_equal(strncmp(err, want, strlen(want)), 0);
    core_config_free(&c);

    core_config_defaults(&c);
    char missing[300];
    snprintf(missing, sizeof missing, "%s/none.conf", dir);
    assert_int_not_equal(core_config_load(&c, missing, true, err, sizeof err), 0);
    assert_non_null(strstr(err, "cannot open"));
    core_config_free(&c);
    unlink(f1);
    unlink(f2);
    unlink(path);
    rmdir(confd);
    rmdir(dir);
}

/* Within one file a section or key given twice is an error naming both
 * lines; repeatable keys (rule, env, depends) and conf.d overrides are not. */
static void test_duplicates(void **state)
{
    (void)state;
    static const struct { const char *text; const char *want; } bad[] = {
        {"[api]\nlisten = 127.0.0.1:1\n\nlisten = 127.0.0.1:2\n",
         "d.conf:4: duplicate key 'listen' in [api] (first set at d.conf:2)"},
        {"[daemon]\nlog_level = info\n[api]\nmax_points = 5\n[daemon]\nhostname = x\n",
         "d.conf:5: duplicate section [daemon] (first at d.conf:1)"},
        {"[service.web]\ncommand = /bin/true\ncommand = /bin/false\n",
         "d.conf:3: duplicate key 'command' in [service.web] (first set at d.conf:2)"},
        {"[heal]\nmode = heal\n[service.a]\ncommand = /bin/true\n[heal]\n",
         "d.conf:5: duplicate section [heal] (first at d.conf:1)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        core_config c;
        char err[512] = "";
        core_config_defaults(&c);
        assert_int_not_equal(core_config_load_string(&c, bad[i].text, "d.conf", err, sizeof err), 0);
        if (strcmp(err, bad[i].want))
            fail_msg("case %zu: got '%s', want '%s'", i, err, bad[i].want);
        core_config_free(&c);
    }
    const char *ok = "[service.web]\ncommand = /bin/true\nrule = if failed process then start\n"
                     "rule = if 3 restarts within 5m then stop\nenv = A=1\nenv = B=2\n"
                     "depends = db\ndepends = cache\n[service.db]\ncommand = /bin/true\n";
    core_config c;
    char err[512] = "";
    core_config_defaults(&c);
    assert_int_equal(core_config_load_string(&c, ok, "ok.conf", err, sizeof err), 0);
    assert_int_equal(c.nraw, 8);
    core_config_free(&c);

    /* the same key in the main file and a drop-in: the drop-in wins */
    char dir[] = "/tmp/ippoc-dup.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256], confd[256], f1[300];
    snprintf(path, sizeof path, "%s/ippoc.conf", dir);
    snprintf(confd, sizeof confd, "%s/conf.d", dir);
    snprintf(f1, sizeof f1, "%s/10-a.conf", confd);
    assert_int_equal(core_mkdir_p(confd, 0700), 0);
    FILE *f = fopen(path, "w");
    fputs("[daemon]\nhostname = main\n", f);
    fclose(f);
    f = fopen(f1, "w");
    fputs("[daemon]\nhostname = dropin\n", f);
    fclose(f);
    core_config_defaults(&c);
    assert_int_equal(core_config_load(&c, path, true, err, sizeof err), 0);
    assert_string_equal(c.hostname, "dropin");
    core_config_free(&c);
    /* a duplicate inside the drop-in is still an error, with its file */
    f = fopen(f1, "w");
    fputs("[daemon]\nhostname = a\nhostname = b\n", f);
    fclose(f);
    core_config_defaults(&c);
    assert_int_not_equal(core_config_load(&c, path, true, err, sizeof err), 0);
    char want[700];
    snprintf(want, sizeof want, "%s:3: duplicate key 'hostname' in [daemon] (first set at %s:2)", f1, f1);
    assert_string_equal(err, want);
    core_config_free(&c);
    unlink(f1);
    unlink(path);
    rmdir(confd);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_valid), cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_bad_inputs), cmocka_unit_test(test_raw_sections), cmocka_unit_test(test_overlong_line),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_files_and_confd), cmocka_unit_test(test_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
