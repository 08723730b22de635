/* test_tcp.c: the `tcp` group on the live system, in a network namespace of
 * its own (so the sockets counted are exactly the ones the test opens):
 * the states come from one netlink sock_diag dump, are counted again only
 * every 10 s (the runs in between put the last counts), and when sock_diag
 * is refused (a seccomp filter failing socket(AF_NETLINK) with EPERM) the
 * collector says so and counts /proc/net/tcp and tcp6 instead, with the
 * same result. Each case runs in a forked child (the namespace and the
 * filter stay there); without the privilege to create a namespace the
 * tests are skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mem_spy.h"
#include "sense/sense_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKIP_CODE 77

/* A failed check in the child: say which, exit 1. */
#define CHECK(cond)                                                                             \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);            \
            _exit(1);                                                                           \
        }                                                                                       \
    } while (0)

/* A new network namespace with lo up; false (errno set) when not allowed. */
static bool own_netns(void)
{
    if (unshare(CLONE_NEWNET) < 0)
        return false;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    bool ok = ioctl(fd, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags |= IFF_UP;
    ok = ok && ioctl(fd, SIOCSIFFLAGS, &ifr) == 0;
    close(fd);
    return ok;
}

/* A listening socket on loopback (IPv4, or IPv6 ::1), port chosen by the
 * kernel; its port in *port. -1 on failure. */
static int listener(bool v6, int *port)
{
    int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    if (v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_addr = in6addr_loopback;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *a;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, 4) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        close(fd);
        return -1;
    }
    if (port)
        *port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* One established pair to an IPv4 listener on port (both ends count). */
static void connect_pair(int lfd, int port, int *cfd, int *afd)
{
    *cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(*cfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(*cfd, (struct sockaddr *)&a, sizeof a) == 0);
    *afd = accept(lfd, NULL, NULL);
    CHECK(*afd >= 0);
}

/* Refuses socket(AF_NETLINK, ...) with EPERM from now on (this process). */
static void refuse_netlink(void)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_socket, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AF_NETLINK, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0);
    int probe = socket(AF_NETLINK, SOCK_DGRAM, 0);
    CHECK(probe < 0 && errno == EPERM);
}

static const char *tcp_note(sense_t *s)
{
    static sense_collector_info info[32];
    int n = sense_collectors(s, info, 32);
    for (int i = 0; i < n; i++)
        if (!strcmp(info[i].name, "tcp"))
            return info[i].note;
    return "";
}

static double st(mem_t *m, const char *state)
{
    char lab[64];
    snprintf(lab, sizeof lab, "state=\"%s\"", state);
    return fm_get(m, "tcp.connections", lab);
}

/* The child: counts in its own namespace; refused = sock_diag blocked. */
static void child(bool refused)
{
    if (!own_netns())
        _exit(SKIP_CODE);
    if (refused)
        refuse_netlink();
    int p4, p6 = 0;
    int l1 = listener(false, &p4), l2 = listener(false, NULL), l3 = listener(false, NULL);
    CHECK(l1 >= 0 && l2 >= 0 && l3 >= 0);
    int l6 = listener(true, &p6); /* IPv6 may be disabled: then 3 listeners */
    double nlisten = l6 >= 0 ? 4 : 3;
    int cfd, afd;
    connect_pair(l1, p4, &cfd, &afd);

    core_config cfg;
    core_config_defaults(&cfg);
    mem_t *m = fm_open();
    CHECK(m);
    sense_t *s;
    char err[256];
    CHECK(sense_open(&s, &cfg, m, err, sizeof err) == 0);
    int64_t t0 = core_now_ms() / 1000 * 1000;
    fm_round(m);
    sense_collect(s, t0);
    fprintf(stderr, "tcp note: %s\n", tcp_note(s));
    if (refused)
        CHECK(!strncmp(tcp_note(s), "procfs", 6));
    else
        CHECK(!strcmp(tcp_note(s), "netlink sock_diag + procfs"));
    CHECK(st(m, "listen") == nlisten);
    CHECK(st(m, "established") == 2);
    CHECK(isnan(st(m, "syn_sent"))); /* never seen: no series */

    /* one more listener and the pair closed: not seen until 10 s passed */
    int l4 = listener(false, NULL);
    CHECK(l4 >= 0);
    close(cfd);
    close(afd);
    for (int k = 1; k <= 9; k++) {
        fm_round(m);
        sense_collect(s, t0 + k * 1000);
        CHECK(st(m, "listen") == nlisten);
        CHECK(st(m, "established") == 2);
    }
    fm_round(m);
    sense_collect(s, t0 + 10000);
    CHECK(st(m, "listen") == nlisten + 1);
    CHECK(st(m, "established") == 0); /* seen before: stays, at 0 */
    /* the closed pair: the end that closed first waits in time_wait */
    CHECK(st(m, "time_wait") == 1);

    sense_close(s);
    fm_close(m);
    core_config_free(&cfg);
    close(l1), close(l2), close(l3), close(l4);
    if (l6 >= 0)
        close(l6);
    _exit(0);
}

static void run_child(bool refused)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child(refused);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == SKIP_CODE)
        skip(); /* no privilege for a network namespace */
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_tcp_netlink(void **state)
{
    (void)state;
    run_child(false);
}

static void test_tcp_refused_falls_back(void **state)
{
    (void)state;
    run_child(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_netlink),
        cmocka_unit_test(test_tcp_refused_falls_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
