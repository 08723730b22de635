/* test_engine_proc.c: what the engine reads of other processes in /proc,
 * on real processes this test forks: the resources of a whole process tree
 * (a child and its grandchild; two siblings in a cgroup of their own), and
 * the holder of a TCP port (a child that listens on it), with the port
 * free and the holder's own group left out; freeze refused for a process
 * that shares ippocd's cgroup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "heal/engine_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A child in its own process group that, with `port`, listens on it first;
 * with `grandchild`, forks one more sleeper. Ready once it wrote a byte. */
static pid_t spawn(int port, bool grandchild)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        close(pfd[0]);
        if (port) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                     .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4))
                _exit(1);
        }
        if (grandchild && fork() == 0) {
            if (write(pfd[1], "g", 1) != 1)
                _exit(1);
            pause();
            _exit(0);
        }
        if (write(pfd[1], "c", 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    char b[2];
    ssize_t want = grandchild ? 2 : 1, got = 0;
    while (got < want) {
        ssize_t n = read(pfd[0], b, (size_t)(want - got));
        assert_true(n > 0);
        got += n;
    }
    close(pfd[0]);
    return pid;
}

static void reap(pid_t pid)
{
    kill(-pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_tree(void **st)
{
    (void)st;
    pid_t pid = spawn(0, true);
    uint64_t ticks;
    double rss, threads, fds, rss1, t1, f1;
    int n = 0;
    assert_int_equal(eng_sys_tree(pid, &ticks, &rss, &threads, &fds, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(eng_sys_proc(pid, &ticks, &rss1, &t1, &f1), 0);
    assert_true(rss > rss1 && threads == 2 * t1 && fds > f1);
    reap(pid);
    assert_int_equal(eng_sys_tree(pid, &ticks, &rss, &threads, &fds, &n), -ESRCH);
}

/* A service in its own cgroup v2: every process of it counts, descendant or
 * not (root only: skipped where no cgroup can be made). */
static void test_tree_cgroup(void **st)
{
    (void)st;
    const char *roots[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    char dir[256] = "";
    for (int i = 0; i < 2 && !dir[0]; i++) {
        char probe[300];
        snprintf(probe, sizeof probe, "%s/cgroup.procs", roots[i]);
        if (access(probe, F_OK))
            continue;
        snprintf(dir, sizeof dir, "%s/ippoc-test-%d", roots[i], (int)getpid());
        if (mkdir(dir, 0755))
            dir[0] = 0;
    }
    if (!dir[0]) {
        print_message("skip: cannot make a cgroup v2 here\n");
        return;
    }
    pid_t a = spawn(0, false), b = spawn(0, false); /* siblings: b is no descendant of a */
    char path[300], num[32];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        snprintf(num, sizeof num, "%d", (int)(i ? b : a));
        fputs(num, f);
        assert_int_equal(fclose(f), 0);
    }
    uint64_t ticks;
    double rss, threads, fds;
    int n = 0;
    assert_int_equal(eng_sys_tree(a, &ticks, &rss, &threads, &fds, &n), 0);
    assert_int_equal(n, 2);
    reap(a);
    reap(b);
    assert_int_equal(rmdir(dir), 0);
}

static void test_port_holder(void **st)
{
    (void)st;
    int port = free_port();
    pid_t holder;
    char cmd[256];
    assert_int_equal(eng_sys_port_holder(port, 0, &holder, cmd, sizeof cmd), -ENOENT);
    pid_t pid = spawn(port, false);
    assert_int_equal(eng_sys_port_holder(port, 0, &holder, cmd, sizeof cmd), 0);
    assert_int_equal(holder, pid);
    assert_non_null(strstr(cmd, "test-heal-engine-proc"));
    /* its own process group is left out (what is left of the service that exited) */
    assert_int_equal(eng_sys_port_holder(port, pid, &holder, cmd, sizeof cmd), -ESRCH);
    reap(pid);
}

static void test_freeze_shared_cgroup(void **st)
{
    (void)st;
    pid_t pid = spawn(0, false); /* in this test's cgroup */
    char dir[512] = "", msg[512] = "";
    int rc = eng_sys_freeze(pid, true, dir, sizeof dir, msg, sizeof msg);
    assert_true(rc == -ENOENT || rc == -ENOTSUP);
    assert_true(strstr(msg, "no cgroup of its own") || strstr(msg, "no cgroup v2"));
    reap(pid);
    assert_int_equal(eng_sys_freeze(pid, true, dir, sizeof dir, msg, sizeof msg), -ESRCH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_tree_cgroup),
        cmocka_unit_test(test_port_holder),
        cmocka_unit_test(test_freeze_shared_cgroup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
