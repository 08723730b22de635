/* test_engine.c: unit tests of the heal engine's pure parts: the checking
 * of [heal] / [service.NAME] / [alert.NAME] keys with their places, and the
 * directory cleaner's promises (regular files only, no symlinks followed,
 * never below or outside the directory). The loop itself is tested end to
 * end by tests/integration/test_heal.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "heal/engine_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static int check(const char *text, char *err, size_t n)
{
    core_config c;
    core_config_defaults(&c);
    int rc = core_config_load_string(&c, text, "t.conf", err, n);
    if (!rc)
        rc = heal_config_check(&c, err, n);
    core_config_free(&c);
    return rc;
}

static void test_good_config(void **st)
{
    (void)st;
    char err[1024] = "";
    assert_int_equal(check("[heal]\nmode = suggest\ndry_run = yes\nmax_actions = 10 per 1m\n"
                           "flap = 5 restarts within 1m\nverify = 10s\n"
                           "[alert.ops]\nurl = https://example.com/h\ntimeout = 2s\n"
                           "[service.db]\ncommand = /usr/bin/db\n"
                           "[service.web]\ncommand = /usr/bin/web --port 80\ndepends = db\nallow = default\n"
                           "mode = heal\nrule = if failed http://127.0.0.1/ for 2 checks then restart\n"
                           "rule = if memory > 1GB then restart, alert ops\n",
                           err, sizeof err), 0);
    /* config_path: repeatable, normalised; restore names one of them */
    assert_int_equal(check("[service.web]\ncommand = /usr/bin/web\nconfig_path = /etc/web.conf\n"
                           "config_path = //srv//data/\nconfig_path = /etc/web.conf\n"
                           "rule = if failed tcp://127.0.0.1:8080 then restore /etc/web.conf, restore /srv/data, restart\n",
                           err, sizeof err), 0);
    eng_cfg c;
    core_config cc;
    core_config_defaults(&cc);
    assert_int_equal(core_config_load_string(&cc, "[service.web]\ncommand = x\nconfig_path = //srv//data/\n"
                                             "config_path = /srv/data\nconfig_path = /etc/resolv.conf\n", "t.conf", err, sizeof err), 0);
    assert_int_equal(eng_cfg_build(&cc, &c, err, sizeof err), 0);
    assert_int_equal(c.svcs[0].nconfig_paths, 2);
    assert_string_equal(c.svcs[0].config_paths[0], "/srv/data");
    assert_string_equal(c.svcs[0].config_paths[1], "/etc/resolv.conf");
    eng_cfg_free(&c);
    core_config_free(&cc);
    assert_string_equal(err, "");
    /* [detect] belongs to ippocd's anomaly detection: heal lets it be */
    assert_int_equal(check("[detect]\nthreshold = 0.7\n[heal]\nrule = if anomalous(memory.*) for 2m then alert\n"
                           "[service.web]\ncommand = /usr/bin/web\n"
                           "rule = if anomalous(process.rss_bytes{name=\"web\"}) for 3 checks then restart\n",
                           err, sizeof err), 0);
}

static void expect_bad(const char *text, const char *want)
{
    char err[1024] = "";
    assert_int_equal(check(text, err, sizeof err), -EINVAL);
    if (!strstr(err, want))
        fail_msg("wanted '%s' in '%s'", want, err);
}

static void test_bad_configs(void **st)
{
    (void)st;
    expect_bad("[heal]\nmode = maybe\n", "t.conf:2: mode:");
    expect_bad("[heal]\n\nmax_actions = 10 each 1m\n", "t.conf:3: max_actions:");
    expect_bad("[heal]\nflap = five restarts within 1m\n", "t.conf:2: flap:");
    expect_bad("[service.a]\ncommand = x\nrule = if failed tcp://h:1 then restrt\n", "t.conf:3:");
    expect_bad("[service.a]\ncommand = x\ndepends = nope\n", "unknown dependency 'nope'");
    expect_bad("[service.a]\ncommand = x\ndepends = b\n[service.b]\ncommand = y\ndepends = a\n", "dependency cycle");
    expect_bad("[service.a]\ntype = external\n", "needs 'pidfile' or 'match'");
    expect_bad("[service.a]\ncwd = /\n", "needs 'command'");
    expect_bad("[service.a]\ncommand = x\nbackoff = soon\n", "t.conf:3: backoff:");
    expect_bad("[alert.x]\ntimeout = 1s\n", "'url' is required");
    expect_bad("[alert.x]\nurl = http://a\nretries = 3\n", "t.conf:3: unknown key 'retries'");
    expect_bad("[heal]\nrule = if failed process then restart\n", "'restart' needs a service");
    expect_bad("[heal]\nrule = if failed process then alert\n", "about a service");
    expect_bad("[service.a]\ncommand = x\nrule = if failed file /x changed then restart\n", "file probes support");
    expect_bad("[service.a]\ncommand = x\nconfig_path = etc/a.conf\n", "t.conf:3: config_path: 'etc/a.conf' is not an absolute path");
    expect_bad("[service.a]\ncommand = x\nconfig_path = /etc/../a.conf\n", "t.conf:3: config_path: '.' and '..' are not allowed");
    expect_bad("[service.a]\ncommand = x\nconfig_path = /etc/a.conf\nrule = if failed process then restore /etc/b.conf\n",
               "t.conf:4: restore /etc/b.conf: not one of [service.a]'s config_path");
    expect_bad("[heal]\nrule = if space /var > 90% then restore /etc/b.conf\n", "'restore' needs a service");
    expect_bad("[service.a]\ncommand = x\nrule = if failed process then signal KILL pid 4\n", "a rule cannot name a pid");
}

static int64_t mtime_ago(const char *path, int64_t ms)
{
    struct timeval tv[2];
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= ms / 1000;
    tv[1] = tv[0];
    lutimes(path, tv);
    return 0;
}

static void put(const char *path, size_t size)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++)
        fputc('x', f);
    fclose(f);
}

static void test_clean(void **st)
{
    (void)st;
    char root[] = "/tmp/ippoc-clean.XXXXXX", dir[128], p[256], outside[256];
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/d", root);
    mkdir(dir, 0755);
    snprintf(outside, sizeof outside, "%s/outside", root);
    put(outside, 10);
    mtime_ago(outside, 100000);
    snprintf(p, sizeof p, "%s/old", dir);
    put(p, 100);
    mtime_ago(p, 100000);
    snprintf(p, sizeof p, "%s/old-small", dir);
    put(p, 5);
    mtime_ago(p, 100000);
    snprintf(p, sizeof p, "%s/new", dir);
    put(p, 100);
    snprintf(p, sizeof p, "%s/link", dir);
    assert_int_equal(symlink(outside, p), 0);
    mtime_ago(p, 100000);
    snprintf(p, sizeof p, "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/sub/deep", dir);
    put(p, 100);
    mtime_ago(p, 100000);

    int removed;
    uint64_t bytes;
    char msg[256];
    assert_int_equal(eng_sys_clean(dir, 60000, 50, core_now_ms(), &removed, &bytes, msg, sizeof msg), 0);
    assert_int_equal(removed, 1); /* only "old": old enough and larger than 50 bytes */
    assert_int_equal(bytes, 100);
    struct stat sb;
    snprintf(p, sizeof p, "%s/old", dir);
    assert_int_not_equal(stat(p, &sb), 0);
    const char *kept[] = {"old-small", "new", "sub/deep", "link"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, kept[i]);
        assert_int_equal(lstat(p, &sb), 0);
    }
    assert_int_equal(stat(outside, &sb), 0);
    /* a symlink as the directory itself is refused */
    snprintf(p, sizeof p, "%s/dirlink", root);
    assert_int_equal(symlink(dir, p), 0);
    int rc = eng_sys_clean(p, 0, 0, core_now_ms(), &removed, &bytes, msg, sizeof msg);
    assert_true(rc == -ELOOP || rc == -ENOTDIR);

    const char *all[] = {"d/old-small", "d/new", "d/sub/deep", "d/link", "dirlink", "outside"};
    for (size_t i = 0; i < 6; i++) {
        snprintf(p, sizeof p, "%s/%s", root, all[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/d/sub", root);
    rmdir(p);
    rmdir(dir);
    assert_int_equal(rmdir(root), 0);
}

static void test_sysctl_bad_key(void **st)
{
    (void)st;
    char old[64], msg[256];
    assert_int_equal(eng_sys_sysctl("../../etc/passwd", "x", old, sizeof old, msg, sizeof msg), -EINVAL);
    assert_int_equal(eng_sys_sysctl("no.such.key.here", "1", old, sizeof old, msg, sizeof msg), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_config),
        cmocka_unit_test(test_bad_configs),
        cmocka_unit_test(test_clean),
        cmocka_unit_test(test_sysctl_bad_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
