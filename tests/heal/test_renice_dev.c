/* test_renice_dev.c: renice through the kernel bridge. A regular file stands
 * in for /dev/ippoc: the command written must be the module's RELATIVE
 * "nice <pid> <delta>" for the action's ABSOLUTE nice; an unusable device
 * falls back to setpriority() and the message says which path was used. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "heal/engine_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_renice_device(void **st)
{
    (void)st;
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        pause();
        _exit(0);
    }
    char dir[] = "/tmp/ippoc-renice-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char dev[128], cmd[64], want[64], msg[512];
    snprintf(dev, sizeof dev, "%s/ippoc", dir);
    FILE *f = fopen(dev, "w");
    assert_non_null(f);
    fclose(f);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)child);
    assert_int_equal(errno, 0);
    int target = cur + 3 > 19 ? 19 : cur + 3;

    /* the device: a relative delta, nothing else touched */
    assert_int_equal(eng_sys_renice(child, target, dev, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "via "));
    assert_non_null(strstr(msg, dev));
    f = fopen(dev, "r");
    assert_non_null(f);
    assert_non_null(fgets(cmd, sizeof cmd, f));
    fclose(f);
    snprintf(want, sizeof want, "nice %d %d\n", (int)child, target - cur);
    assert_string_equal(cmd, want);
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)child), cur); /* a file does not renice */

    /* already there: nothing written */
    assert_int_equal(eng_sys_renice(child, cur, dev, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "already"));

    /* no device: setpriority(), said so */
    char gone[160];
    snprintf(gone, sizeof gone, "%s/missing", dir);
    assert_int_equal(eng_sys_renice(child, target, gone, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "via setpriority()"));
    assert_non_null(strstr(msg, "kernel bridge"));
    assert_int_equal(getpriority(PRIO_PROCESS, (id_t)child), target);

    /* no device configured: setpriority() as before */
    assert_int_equal(eng_sys_renice(child, target, NULL, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "via setpriority()"));

    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    unlink(dev);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_renice_device)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
