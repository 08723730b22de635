/* sandbox_exec.c: the WorldModel sandbox's shim, run inside bwrap as
 * `ippocd --sandbox-exec [--notify-fd N] [--network] [--no-notify] [--rlimit-as B] -- CMD
 * ARGS...` (--no-notify: the filter without user notification). It sets
 * no_new_privs, installs the seccomp filter (default allow; network sockets
 * unless --network and the forbidden calls go to the supervisor, or kill
 * when the kernel has no user notification; write-like calls go to the
 * supervisor), hands the listener fd to the supervisor over fd N
 * (SCM_RIGHTS), closes it and execs the command. */
#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "evolve/sandbox_int.h"

static const char *const forbidden[] = {
    "mount",         "umount2",       "pivot_root",       "ptrace",        "bpf",         "init_module",
    "finit_module",  "delete_module", "kexec_load",       "kexec_file_load", "reboot",    "swapon",
    "swapoff",       "settimeofday",  "clock_settime",    "process_vm_writev", "open_by_handle_at",
    "keyctl",        "add_key",       "request_key",      "unshare",       "setns",       "fsopen",
    "fsmount",       "move_mount",    "open_tree",        "umount",
};

/* Path-taking calls that always go to the supervisor. */
static const char *const wr_always[] = {
    "creat",   "unlink",  "unlinkat",  "rename",  "renameat", "renameat2", "mkdir",    "mkdirat",
    "rmdir",   "truncate", "chmod",    "fchmodat", "chown",   "lchown",    "fchownat", "link",
    "linkat",  "symlink", "symlinkat", "mknod",   "mknodat",
};

static int add(scmp_filter_ctx ctx, uint32_t act, const char *name, unsigned n, const struct scmp_arg_cmp *c)
{
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR)
        return 0; /* not on this architecture */
    int rc = seccomp_rule_add_array(ctx, act, nr, n, c);
    /* -EDOM/-EFAULT: a pseudo syscall this arch lacks (open on aarch64). */
    return rc == -EDOM || rc == -EFAULT ? 0 : rc;
}

/* The filter: kill_act for forbidden calls and sockets, notify for writes
 * (none when notify is false). */
static int build(scmp_filter_ctx ctx, bool network, bool notify)
{
    uint32_t bad = notify ? SCMP_ACT_NOTIFY : SCMP_ACT_KILL_PROCESS;
    int rc = 0;
    for (size_t i = 0; !rc && i < sizeof forbidden / sizeof forbidden[0]; i++)
        rc = add(ctx, bad, forbidden[i], 0, NULL);
    /* Calls that would slip past the path checks: fall back to the plain ones. */
    rc = rc ? rc : add(ctx, SCMP_ACT_ERRNO(ENOSYS), "openat2", 0, NULL);
    rc = rc ? rc : add(ctx, SCMP_ACT_ERRNO(ENOSYS), "io_uring_setup", 0, NULL);
    static const int fams[] = {AF_INET, AF_INET6, AF_PACKET};
    for (size_t i = 0; !rc && i < 3; i++) {
        if (network && fams[i] != AF_PACKET)
            continue;
        struct scmp_arg_cmp c = {.arg = 0, .op = SCMP_CMP_EQ, .datum_a = (scmp_datum_t)fams[i], .datum_b = 0};
        rc = add(ctx, bad, "socket", 1, &c);
    }
    if (!notify)
        return rc;
    /* A Unix socket of the host (docker.sock, the system bus) is a way out. */
    rc = rc ? rc : add(ctx, SCMP_ACT_NOTIFY, "connect", 0, NULL);
    for (size_t i = 0; !rc && i < sizeof wr_always / sizeof wr_always[0]; i++)
        rc = add(ctx, SCMP_ACT_NOTIFY, wr_always[i], 0, NULL);
    static const int bits[] = {O_WRONLY, O_RDWR, O_CREAT, O_TRUNC};
    for (size_t i = 0; !rc && i < 4; i++) {
        /* flags & bit == bit: open's flags are argument 1, openat's 2 */
        scmp_datum_t b = (scmp_datum_t)bits[i];
        struct scmp_arg_cmp c1 = {.arg = 1, .op = SCMP_CMP_MASKED_EQ, .datum_a = b, .datum_b = b};
        struct scmp_arg_cmp c2 = {.arg = 2, .op = SCMP_CMP_MASKED_EQ, .datum_a = b, .datum_b = b};
        rc = add(ctx, SCMP_ACT_NOTIFY, "open", 1, &c1);
        rc = rc ? rc : add(ctx, SCMP_ACT_NOTIFY, "openat", 1, &c2);
    }
    return rc;
}

/* Sends tag (and fd when >= 0) over sock. */
static int hand_over(int sock, char tag, int fd)
{
    char byte = tag;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    memset(&u, 0, sizeof u);
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(sock, &m, MSG_NOSIGNAL) == 1 ? 0 : -errno;
}

static int usage(void)
{
    fprintf(stderr, "usage: ippocd --sandbox-exec [--notify-fd N] [--network] [--no-notify] [--rlimit-as BYTES] -- COMMAND [ARGS...]\n"
                    "(the WorldModel sandbox's shim: run by ippocd inside bwrap, not by hand)\n");
    return 2;
}

int evolve_sandbox_exec_main(int argc, char **argv)
{
    int sock = -1, i = 1;
    bool network = false, no_notify = false;
    unsigned long long as_limit = 0;
    for (; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--network"))
            network = true;
        else if (!strcmp(argv[i], "--no-notify"))
            no_notify = true;
        else if (!strcmp(argv[i], "--notify-fd") && i + 1 < argc)
            sock = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rlimit-as") && i + 1 < argc)
            as_limit = strtoull(argv[++i], NULL, 10);
        else
            return usage();
    }
    if (i + 1 >= argc)
        return usage();
    char **cmd = argv + i + 1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        fprintf(stderr, "sandbox-exec: no_new_privs: %s\n", strerror(errno));
        return 126;
    }
    /* With a supervisor, try user notification first; without it (or an old
     * kernel), forbidden calls kill and writes meet the read-only mounts. */
    int notify_fd = -1;
    bool notify = sock >= 0 && !no_notify;
    for (int pass = 0; pass < 2; pass++) {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        if (!ctx) {
            fprintf(stderr, "sandbox-exec: seccomp_init failed\n");
            return 126;
        }
        /* A call of another ABI (32-bit int 0x80) would pass rules written for
         * the native one: kill the process instead. */
        int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
        rc = rc ? rc : build(ctx, network, notify);
        if (!rc)
            rc = seccomp_load(ctx);
        if (!rc && notify) {
            notify_fd = seccomp_notify_fd(ctx);
            if (notify_fd < 0)
                rc = notify_fd;
        }
        seccomp_release(ctx);
        if (!rc)
            break;
        if (!notify || pass == 1) {
            fprintf(stderr, "sandbox-exec: seccomp filter: %s\n", strerror(-rc));
            _exit(126);
        }
        notify = false; /* the kernel said no to the listener: filter without it */
    }
    if (sock >= 0) {
        int rc = hand_over(sock, notify ? SBX_HELLO_FD : SBX_HELLO_NOFD, notify ? notify_fd : -1);
        if (notify_fd >= 0)
            close(notify_fd);
        close(sock);
        if (rc < 0) {
            fprintf(stderr, "sandbox-exec: cannot reach the supervisor: %s\n", strerror(-rc));
            _exit(126);
        }
    }
    if (as_limit) { /* no memory controller: the command's address space is its limit */
        struct rlimit rl = {(rlim_t)as_limit, (rlim_t)as_limit};
        setrlimit(RLIMIT_AS, &rl);
    }
    execvp(cmd[0], cmd);
    int e = errno;
    fprintf(stderr, "sandbox-exec: %s: %s\n", cmd[0], strerror(e));
    /* _exit: a sanitizer's exit-time work (LeakSanitizer ptraces) would meet the filter. */
    _exit(e == ENOENT ? 127 : 126);
}
