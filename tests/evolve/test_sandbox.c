/* test_sandbox.c: the WorldModel sandbox on real processes, namespaces,
 * seccomp and cgroups: output comes back, exit codes, a write outside the
 * writable paths is killed and named (and did not happen), writing inside
 * works, a network socket is killed (and allowed with network, in a private
 * netns that cannot reach the host's loopback), the deadline, the memory
 * limit, forbidden calls (unshare, mount), a background child cleaned up, a
 * cancelled caller leaves nothing, and no cgroup is left behind.
 *
 * The shim is the built ippocd ($IPPOCD). Skipped (with the reason) when
 * bwrap is missing or does not work here. */
#include "evolve/evolve.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static struct {
    bool avail;
    int fds; /* open at the start: runs must not leak any */
    char why[256];
    const char *shim;
    char dir[128];
} F;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

static int setup(void **state)
{
    (void)state;
    F.fds = count_fds();
    F.shim = getenv("IPPOCD");
    F.avail = F.shim && evolve_sandbox_available(F.why, sizeof F.why);
    if (!F.shim)
        snprintf(F.why, sizeof F.why, "IPPOCD is not set (the built ippocd is the shim)");
    return 0;
}

static int each_setup(void **state)
{
    (void)state;
    snprintf(F.dir, sizeof F.dir, "/tmp/ippoc-sbx-XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    return 0;
}

static int each_teardown(void **state)
{
    (void)state;
    /* a failed test must not leave its switches to the next */
    unsetenv("IPPOC_SANDBOX_NO_NOTIFY");
    unsetenv("IPPOC_SANDBOX_CGROUP_ROOT");
    unsetenv("IPPOC_SBX_TEST_API_KEY");
    unsetenv("IPPOC_SBX_TEST_PLAIN");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s-x'", F.dir, F.dir);
    return system(cmd) == 0 ? 0 : -1;
}

#define NEED_SANDBOX()                                                           \
    do {                                                                         \
        if (!F.avail) {                                                          \
            print_message("SKIP: the sandbox is not available here: %s\n", F.why); \
            skip();                                                              \
        }                                                                        \
    } while (0)

/* Limits need a cgroup of our own, which needs root (or delegation). */
#define NEED_CGROUP()                                                                         \
    do {                                                                                      \
        if (geteuid() != 0) {                                                                 \
            print_message("SKIP: cgroup limits need root here (the sandbox runs without)\n"); \
            skip();                                                                           \
        }                                                                                     \
    } while (0)

/* Runs argv with F.dir writable; asserts it could be set up. */
static void run(const char *const *argv, evolve_sandbox_opts *o, evolve_sandbox_result *r)
{
    const char *w[] = {F.dir};
    evolve_sandbox_opts def = {0};
    if (!o)
        o = &def;
    o->argv = argv;
    if (!o->writable) {
        o->writable = w;
        o->nwritable = 1;
    }
    o->shim = F.shim;
    if (!o->timeout_ms)
        o->timeout_ms = 20000;
    char err[512] = "";
    int rc = evolve_sandbox_run(o, r, err, sizeof err);
    if (rc != 0)
        print_message("evolve_sandbox_run: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    if (r->verdict == EVOLVE_SBX_ERROR)
        print_message("error: %s / %s\n", r->detail, r->err_tail ? r->err_tail : "");
}

/* Whether a process whose command line holds token is alive. */
static bool process_with(const char *token)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    bool found = false;
    while (d && (e = readdir(d)) && !found) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        char p[300], buf[4096];
        snprintf(p, sizeof p, "/proc/%s/cmdline", e->d_name);
        int fd = open(p, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        for (ssize_t i = 0; i < n; i++)
            if (!buf[i])
                buf[i] = ' ';
        buf[n > 0 ? n : 0] = 0;
        char st[64];
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        fd = open(p, O_RDONLY);
        ssize_t m = fd >= 0 ? read(fd, st, sizeof st - 1) : 0;
        if (fd >= 0)
            close(fd);
        st[m > 0 ? m : 0] = 0;
        char *rp = strrchr(st, ')');
        bool zombie = rp && rp[1] && rp[2] == 'Z';
        if (strstr(buf, token) && !zombie)
            found = true;
    }
    if (d)
        closedir(d);
    return found;
}

/* Entries "sbx-OURPID-*" under the sandbox's cgroup bases. */
static int cgroups_left(void)
{
    static const char *const bases[] = {"/sys/fs/cgroup/ippoc-sandbox", "/sys/fs/cgroup/unified/ippoc-sandbox",
                                        "/sys/fs/cgroup/memory/ippoc-sandbox",
                                        "/sys/fs/cgroup/cpu/ippoc-sandbox", "/sys/fs/cgroup/cpuacct/ippoc-sandbox"};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "sbx-%d-", (int)getpid());
    int n = 0;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
        DIR *d = opendir(bases[i]);
        struct dirent *e;
        while (d && (e = readdir(d)))
            if (!strncmp(e->d_name, prefix, strlen(prefix))) {
                print_message("left behind: %s/%s\n", bases[i], e->d_name);
                n++;
            }
        if (d)
            closedir(d);
    }
    return n;
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(evolve_sbx_verdict_name(EVOLVE_SBX_OK), "ok");
    assert_string_equal(evolve_sbx_verdict_name(EVOLVE_SBX_WRITE), "write");
    assert_string_equal(evolve_sbx_verdict_name(EVOLVE_SBX_ERROR), "error");
    assert_string_equal(evolve_sbx_verdict_name((evolve_sbx_verdict)99), "?");
}

static void test_bad_options(void **state)
{
    (void)state;
    NEED_SANDBOX();
    evolve_sandbox_result r;
    char err[256] = "";
    evolve_sandbox_opts o = {0};
    assert_int_equal(evolve_sandbox_run(&o, &r, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no command"));
    const char *argv[] = {"true", NULL};
    const char *w[] = {"relative/dir"};
    o = (evolve_sandbox_opts){.argv = argv, .writable = w, .nwritable = 1, .shim = F.shim};
    assert_int_equal(evolve_sandbox_run(&o, &r, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "relative/dir"));
}

static void test_no_bwrap(void **state)
{
    (void)state;
    char *path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    setenv("PATH", F.dir, 1);
    const char *argv[] = {"true", NULL};
    evolve_sandbox_opts o = {.argv = argv, .shim = F.shim ? F.shim : "/bin/true"};
    evolve_sandbox_result r;
    char err[256] = "", why[256] = "";
    int rc = evolve_sandbox_run(&o, &r, err, sizeof err);
    bool avail = evolve_sandbox_available(why, sizeof why);
    setenv("PATH", path, 1);
    free(path);
    assert_int_equal(rc, -ENOSYS);
    assert_non_null(strstr(err, "install bubblewrap"));
    assert_false(avail);
    assert_non_null(strstr(why, "install bubblewrap"));
}

static void test_out_max(void **state)
{
    (void)state;
    NEED_SANDBOX();
    const char *argv[] = {"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a; head -c 9000 /dev/zero | tr '\\0' e >&2; "
                          "echo END >&2", NULL};
    evolve_sandbox_opts o = {.out_max = 1000};
    evolve_sandbox_result r;
    run(argv, &o, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_int_equal(r.out_len, 1000);
    assert_int_equal(strlen(r.out), 1000);
    assert_int_equal(strlen(r.err_tail), 4096);
    assert_string_equal(r.err_tail + 4096 - 4, "END\n");
    evolve_sandbox_result_free(&r);
}

static void test_cpu_limit(void **state)
{
    (void)state;
    NEED_SANDBOX();
    NEED_CGROUP();
    /* busy for 1.5 s of wall time at 20 % of a core */
    const char *argv[] = {"python3", "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.5: pass", NULL};
    evolve_sandbox_opts o = {.cpu_percent = 20};
    evolve_sandbox_result r;
    run(argv, &o, &r);
    print_message("cpu: %lld ms of %lld ms wall\n", (long long)r.cpu_ms, (long long)r.wall_ms);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_true(r.wall_ms >= 1500);
    assert_true(r.cpu_ms >= 0 && r.cpu_ms < 1000);
    evolve_sandbox_result_free(&r);
}

static void test_ok_stdout(void **state)
{
    (void)state;
    NEED_SANDBOX();
    const char *argv[] = {"sh", "-c", "echo hello; echo oops >&2; pwd", NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_int_equal(r.exit_code, 0);
    char want[256];
    snprintf(want, sizeof want, "hello\n%s\n", F.dir);
    assert_string_equal(r.out, want);
    assert_string_equal(r.err_tail, "oops\n");
    assert_true(r.wall_ms >= 0 && r.wall_ms < 10000);
    evolve_sandbox_result_free(&r);
}

static void test_env(void **state)
{
    (void)state;
    NEED_SANDBOX();
    setenv("IPPOC_SBX_TEST_API_KEY", "sk-secret", 1);
    setenv("IPPOC_SBX_TEST_PLAIN", "plain", 1);
    const char *argv[] = {"sh", "-c", "echo ${IPPOC_SBX_TEST_API_KEY:-unset} $IPPOC_SBX_TEST_PLAIN $EXTRA", NULL};
    const char *env[] = {"EXTRA=given", NULL};
    evolve_sandbox_opts o = {.env = env};
    evolve_sandbox_result r;
    run(argv, &o, &r);
    unsetenv("IPPOC_SBX_TEST_API_KEY");
    unsetenv("IPPOC_SBX_TEST_PLAIN");
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_string_equal(r.out, "unset plain given\n");
    evolve_sandbox_result_free(&r);
    const char *bad[] = {"NOEQUALS", NULL};
    o = (evolve_sandbox_opts){.argv = argv, .env = bad, .shim = F.shim};
    char err[256] = "";
    assert_int_equal(evolve_sandbox_run(&o, &r, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "NOEQUALS"));
}

static void test_exit_code(void **state)
{
    (void)state;
    NEED_SANDBOX();
    const char *argv[] = {"sh", "-c", "exit 3", NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_FAILED);
    assert_int_equal(r.exit_code, 3);
    evolve_sandbox_result_free(&r);
}

static void test_write_outside(void **state)
{
    (void)state;
    NEED_SANDBOX();
    unlink("/etc/ippoc-sbx-test");
    const char *argv[] = {"sh", "-c", "echo x > /etc/ippoc-sbx-test; echo survived", NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    print_message("write: %s: %s\n", evolve_sbx_verdict_name(r.verdict), r.detail);
    assert_int_equal(r.verdict, EVOLVE_SBX_WRITE);
    assert_string_equal(r.detail, "wrote /etc/ippoc-sbx-test");
    assert_null(strstr(r.out, "survived"));
    assert_int_equal(access("/etc/ippoc-sbx-test", F_OK), -1);
    evolve_sandbox_result_free(&r);
    /* relative to the cwd, and a rename out of a read-only place */
    const char *argv2[] = {"sh", "-c", "cd /usr/share && mkdir ippoc-sbx-dir", NULL};
    evolve_sandbox_opts o = {.cwd = "/"};
    run(argv2, &o, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_WRITE);
    assert_string_equal(r.detail, "wrote /usr/share/ippoc-sbx-dir (mkdir)");
    assert_int_equal(access("/usr/share/ippoc-sbx-dir", F_OK), -1);
    evolve_sandbox_result_free(&r);
}

static void test_write_inside(void **state)
{
    (void)state;
    NEED_SANDBOX();
    char script[512], hostx[256];
    snprintf(hostx, sizeof hostx, "%s-x", F.dir); /* a name in the host's /tmp */
    snprintf(script, sizeof script,
             "echo hi > %s/f && mkdir %s/d && mv %s/f %s/d/g && echo t > %s && cat %s "
             "&& echo n > /dev/null && ls /tmp",
             F.dir, F.dir, F.dir, F.dir, hostx, hostx);
    const char *argv[] = {"sh", "-c", script, NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    if (r.verdict != EVOLVE_SBX_OK)
        print_message("inside: %s %s %s\n", evolve_sbx_verdict_name(r.verdict), r.detail, r.err_tail);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    /* the private /tmp holds only what the command wrote and the bound dir */
    /* (a sanitizer build's runtime in the shim makes its log dir there too:
     * run-all.sh points log_path into the host's /tmp) */
    char want[256];
    snprintf(want, sizeof want, "t\n%s\n%s\n", strrchr(F.dir, '/') + 1, strrchr(hostx, '/') + 1);
    const char *san = getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : getenv("TSAN_OPTIONS");
    const char *lp = san ? strstr(san, "log_path=/tmp/") : NULL;
    if (lp && strcmp(r.out, want)) {
        char dir[128];
        snprintf(dir, sizeof dir, "%s", lp + strlen("log_path=/tmp/"));
        char *end = strchr(dir, '/');
        if (end)
            *end = 0;
        char with[3][128];
        snprintf(with[0], sizeof with[0], "%s", strrchr(F.dir, '/') + 1);
        snprintf(with[1], sizeof with[1], "%s", strrchr(hostx, '/') + 1);
        snprintf(with[2], sizeof with[2], "%s", dir);
        qsort(with, 3, sizeof with[0], (int (*)(const void *, const void *))strcmp);
        snprintf(want, sizeof want, "t\n%s\n%s\n%s\n", with[0], with[1], with[2]);
    }
    assert_string_equal(r.out, want);
    evolve_sandbox_result_free(&r);
    char p[256];
    snprintf(p, sizeof p, "%s/d/g", F.dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char buf[16] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "hi\n");
    assert_int_equal(access(hostx, F_OK), -1); /* the sandbox's /tmp is its own */
}

static void test_net(void **state)
{
    (void)state;
    NEED_SANDBOX();
    const char *argv[] = {"python3", "-c", "import socket; socket.socket(); print('opened')", NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_NET);
    assert_string_equal(r.detail, "socket(AF_INET)");
    assert_null(strstr(r.out, "opened"));
    evolve_sandbox_result_free(&r);
}

static void test_net_allowed_private(void **state)
{
    (void)state;
    NEED_SANDBOX();
    /* a listener on the host's loopback that the sandbox must not reach */
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 4), 0);
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    char script[512];
    snprintf(script, sizeof script,
             "import socket\ns = socket.socket()\ns.settimeout(2)\n"
             "try:\n    s.connect(('127.0.0.1', %d))\n    print('reached')\n"
             "except OSError as e:\n    print('unreachable', e.errno)\n",
             ntohs(a.sin_port));
    const char *argv[] = {"python3", "-c", script, NULL};
    evolve_sandbox_opts o = {.network = true};
    evolve_sandbox_result r;
    run(argv, &o, &r);
    close(ls);
    if (r.verdict != EVOLVE_SBX_OK)
        print_message("net allowed: %s %s %s\n", evolve_sbx_verdict_name(r.verdict), r.detail, r.err_tail);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_non_null(strstr(r.out, "unreachable"));
    evolve_sandbox_result_free(&r);
}

static int unix_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    unlink(path);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    return fd;
}

/* A Unix socket of the host (outside the writable paths) is a way out: NET;
 * one in a writable dir is the command's own business. */
static void test_unix_socket(void **state)
{
    (void)state;
    NEED_SANDBOX();
    char host[128], own[256], script[512];
    snprintf(host, sizeof host, "/var/tmp/ippoc-sbx-%d.sock", (int)getpid());
    snprintf(own, sizeof own, "%s/own.sock", F.dir);
    int l1 = unix_listener(host), l2 = unix_listener(own);
    const char *fmt = "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('%s')\nprint('connected')\n";
    snprintf(script, sizeof script, fmt, own);
    const char *argv[] = {"python3", "-c", script, NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_string_equal(r.out, "connected\n");
    evolve_sandbox_result_free(&r);
    snprintf(script, sizeof script, fmt, host);
    run(argv, NULL, &r);
    close(l1);
    close(l2);
    unlink(host);
    char want[160];
    snprintf(want, sizeof want, "connect(%s)", host);
    assert_int_equal(r.verdict, EVOLVE_SBX_NET);
    assert_string_equal(r.detail, want);
    assert_null(strstr(r.out, "connected"));
    evolve_sandbox_result_free(&r);
    /* a missing socket fails by itself (glibc tries nscd's on user lookups) */
    const char *argv2[] = {"sh", "-c", "id -un", NULL};
    run(argv2, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    evolve_sandbox_result_free(&r);
}

static void test_timeout(void **state)
{
    (void)state;
    NEED_SANDBOX();
    char script[512];
    snprintf(script, sizeof script, "echo $$ > %s/pid; sleep 30; echo %s", F.dir, F.dir);
    const char *argv[] = {"sh", "-c", script, NULL};
    evolve_sandbox_opts o = {.timeout_ms = 500};
    evolve_sandbox_result r;
    int64_t t0 = now_ms();
    run(argv, &o, &r);
    int64_t took = now_ms() - t0;
    print_message("timeout after %lld ms\n", (long long)took);
    assert_int_equal(r.verdict, EVOLVE_SBX_TIMEOUT);
    assert_true(took < 3000);
    char p[256];
    snprintf(p, sizeof p, "%s/pid", F.dir);
    assert_int_equal(access(p, F_OK), 0); /* it did run */
    assert_false(process_with(F.dir));
    evolve_sandbox_result_free(&r);
}

static void test_memory(void **state)
{
    (void)state;
    NEED_SANDBOX();
    NEED_CGROUP();
    const char *argv[] = {"python3", "-c", "s = 'x' * (200 * 1024 * 1024); print(len(s))", NULL};
    evolve_sandbox_opts o = {.memory_bytes = 64u << 20};
    evolve_sandbox_result r;
    run(argv, &o, &r);
    print_message("memory: %s %s rss %llu\n", evolve_sbx_verdict_name(r.verdict), r.detail,
                  (unsigned long long)r.max_rss);
    assert_int_equal(r.verdict, EVOLVE_SBX_MEMORY);
    assert_string_equal(r.detail, "memory limit 64 MB");
    evolve_sandbox_result_free(&r);
    /* the same with room succeeds */
    o = (evolve_sandbox_opts){.memory_bytes = 512u << 20};
    run(argv, &o, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_string_equal(r.out, "209715200\n");
    assert_true(r.max_rss >= 200u << 20);
    evolve_sandbox_result_free(&r);
}

static void test_syscall(void **state)
{
    (void)state;
    NEED_SANDBOX();
    const char *argv[] = {"unshare", "-n", "true", NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    print_message("unshare: %s %s\n", evolve_sbx_verdict_name(r.verdict), r.detail);
    assert_int_equal(r.verdict, EVOLVE_SBX_SYSCALL);
    assert_string_equal(r.detail, "unshare");
    evolve_sandbox_result_free(&r);
    /* mount(2) itself (mount(8) would first write /run/mount: a WRITE) */
    char script[256];
    snprintf(script, sizeof script,
             "import ctypes; print(ctypes.CDLL(None).mount(b'none', b'%s', b'tmpfs', 0, None))", F.dir);
    const char *argv2[] = {"python3", "-c", script, NULL};
    run(argv2, NULL, &r);
    print_message("mount: %s %s\n", evolve_sbx_verdict_name(r.verdict), r.detail);
    assert_int_equal(r.verdict, EVOLVE_SBX_SYSCALL);
    assert_string_equal(r.detail, "mount");
    evolve_sandbox_result_free(&r);
}

static void test_background_child(void **state)
{
    (void)state;
    NEED_SANDBOX();
    char script[512];
    snprintf(script, sizeof script, "(sleep 30; echo %s) & echo started", F.dir);
    const char *argv[] = {"sh", "-c", script, NULL};
    evolve_sandbox_result r;
    int64_t t0 = now_ms();
    run(argv, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_OK);
    assert_string_equal(r.out, "started\n");
    assert_true(now_ms() - t0 < 5000);
    assert_false(process_with(F.dir));
    evolve_sandbox_result_free(&r);
}

static void *cancel_body(void *arg)
{
    (void)arg;
    char script[512];
    snprintf(script, sizeof script, "echo $$ > %s/pid; sleep 30; echo %s", F.dir, F.dir);
    const char *argv[] = {"sh", "-c", script, NULL};
    const char *w[] = {F.dir};
    evolve_sandbox_opts o = {.argv = argv, .writable = w, .nwritable = 1, .shim = F.shim, .timeout_ms = 60000};
    evolve_sandbox_result r;
    char err[256];
    evolve_sandbox_run(&o, &r, err, sizeof err);
    evolve_sandbox_result_free(&r);
    return NULL;
}

static void test_cancelled(void **state)
{
    (void)state;
    NEED_SANDBOX();
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cancel_body, NULL), 0);
    char p[256];
    snprintf(p, sizeof p, "%s/pid", F.dir);
    int64_t until = now_ms() + 10000;
    while (access(p, F_OK) != 0 && now_ms() < until)
        usleep(10000);
    assert_int_equal(access(p, F_OK), 0);
    assert_true(process_with(F.dir));
    pthread_cancel(t);
    pthread_join(t, NULL);
    assert_false(process_with(F.dir));
    assert_int_equal(cgroups_left(), 0);
}

/* The v2 code on a machine with v1 hierarchies: its v2 mount has no
 * controllers, so memory falls back to an rlimit; killing through
 * cgroup.kill, CPU time and the removal are v2's. */
static void test_cgroup_v2(void **state)
{
    (void)state;
    NEED_SANDBOX();
    NEED_CGROUP();
    const char *root = "/sys/fs/cgroup/unified";
    char p[256];
    snprintf(p, sizeof p, "%s/cgroup.controllers", root);
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0 || access(p, F_OK) != 0) {
        print_message("SKIP: no separate cgroup v2 mount at %s (a pure v2 machine runs the v2 code in every test)\n",
                      root);
        skip();
    }
    setenv("IPPOC_SANDBOX_CGROUP_ROOT", root, 1);
    char script[512];
    snprintf(script, sizeof script, "(sleep 30; echo %s) & echo $$ > %s/pid; sleep 30", F.dir, F.dir);
    const char *argv[] = {"sh", "-c", script, NULL};
    evolve_sandbox_opts o = {.timeout_ms = 500};
    evolve_sandbox_result r;
    int64_t t0 = now_ms();
    run(argv, &o, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_TIMEOUT);
    assert_true(now_ms() - t0 < 3000);
    assert_false(process_with(F.dir));
    assert_true(r.cpu_ms >= 0);
    evolve_sandbox_result_free(&r);
    const char *argv2[] = {"python3", "-c", "s = 'x' * (200 * 1024 * 1024); print(len(s))", NULL};
    o = (evolve_sandbox_opts){.memory_bytes = 128u << 20};
    run(argv2, &o, &r);
    print_message("v2 without memory controller: %s %s\n", evolve_sbx_verdict_name(r.verdict), r.detail);
    assert_int_equal(r.verdict, EVOLVE_SBX_FAILED); /* MemoryError under the rlimit */
    assert_non_null(strstr(r.err_tail, "MemoryError"));
    evolve_sandbox_result_free(&r);
    unsetenv("IPPOC_SANDBOX_CGROUP_ROOT");
    assert_int_equal(cgroups_left(), 0);
}

typedef struct par {
    int i;
    evolve_sandbox_result r;
} par;

static void *par_body(void *arg)
{
    par *p = arg;
    char script[64];
    snprintf(script, sizeof script, "echo run%d; sleep 0.3", p->i);
    const char *argv[] = {"sh", "-c", script, NULL};
    const char *w[] = {F.dir};
    evolve_sandbox_opts o = {.argv = argv, .writable = w, .nwritable = 1, .shim = F.shim, .timeout_ms = 20000};
    char err[256];
    if (evolve_sandbox_run(&o, &p->r, err, sizeof err) != 0)
        p->r.verdict = EVOLVE_SBX_ERROR;
    return NULL;
}

/* Runs from several threads at once: each its own output and cgroup (no
 * pipe of one inherited by another's child, which would hold its EOF). */
static void test_parallel(void **state)
{
    (void)state;
    NEED_SANDBOX();
    par p[4];
    pthread_t t[4];
    int64_t t0 = now_ms();
    for (int i = 0; i < 4; i++) {
        p[i] = (par){.i = i};
        assert_int_equal(pthread_create(&t[i], NULL, par_body, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    print_message("4 parallel runs in %lld ms\n", (long long)(now_ms() - t0));
    for (int i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof want, "run%d\n", i);
        assert_int_equal(p[i].r.verdict, EVOLVE_SBX_OK);
        assert_string_equal(p[i].r.out, want);
        assert_true(p[i].r.wall_ms < 5000);
        evolve_sandbox_result_free(&p[i].r);
    }
}

/* Without user notification (old kernels): forbidden calls die of SIGSYS,
 * writes outside meet the read-only mounts and are not recorded. */
static void test_no_notify_fallback(void **state)
{
    (void)state;
    NEED_SANDBOX();
    setenv("IPPOC_SANDBOX_NO_NOTIFY", "1", 1);
    const char *argv[] = {"unshare", "-n", "true", NULL};
    evolve_sandbox_result r;
    run(argv, NULL, &r);
    assert_int_equal(r.verdict, EVOLVE_SBX_SYSCALL);
    assert_int_equal(r.signal, SIGSYS);
    assert_non_null(strstr(r.detail, "SIGSYS"));
    evolve_sandbox_result_free(&r);
    const char *argv2[] = {"sh", "-c", "echo x > /etc/ippoc-sbx-test || exit 5", NULL};
    run(argv2, NULL, &r);
    unsetenv("IPPOC_SANDBOX_NO_NOTIFY");
    assert_int_equal(r.verdict, EVOLVE_SBX_FAILED);
    assert_int_equal(r.exit_code, 5);
    assert_non_null(strstr(r.err_tail, "Read-only file system"));
    assert_int_equal(access("/etc/ippoc-sbx-test", F_OK), -1);
    evolve_sandbox_result_free(&r);
}

/* What one run costs: `true` in the sandbox, 10 times. */
static void test_overhead(void **state)
{
    (void)state;
    NEED_SANDBOX();
    const char *argv[] = {"true", NULL};
    int64_t t0 = now_ms(), worst = 0;
    for (int i = 0; i < 10; i++) {
        evolve_sandbox_result r;
        run(argv, NULL, &r);
        assert_int_equal(r.verdict, EVOLVE_SBX_OK);
        worst = r.wall_ms > worst ? r.wall_ms : worst;
        evolve_sandbox_result_free(&r);
    }
    print_message("overhead: %lld ms per run on average, worst %lld ms\n", (long long)(now_ms() - t0) / 10,
                  (long long)worst);
    assert_true(worst < 5000);
}

static void test_no_cgroup_left(void **state)
{
    (void)state;
    NEED_SANDBOX();
    assert_int_equal(cgroups_left(), 0);
    assert_int_equal(count_fds(), F.fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test_setup_teardown(test_bad_options, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_no_bwrap, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_ok_stdout, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_out_max, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_cpu_limit, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_env, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_exit_code, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_write_outside, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_write_inside, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_net, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_net_allowed_private, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_unix_socket, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_timeout, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_memory, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_syscall, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_background_child, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_cancelled, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_cgroup_v2, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_parallel, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_no_notify_fallback, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_overhead, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_no_cgroup_left, each_setup, each_teardown),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
