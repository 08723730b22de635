/* sandbox.c: the WorldModel sandbox: runs a command under bubblewrap (private
 * pid, net, ipc, uts and cgroup namespaces, the host read-only, a private
 * /tmp, only the writable paths bound read-write) in a fresh cgroup with
 * memory and CPU limits and a deadline, with the seccomp shim
 * (sandbox_exec.c) in front of the command; supervises it (output, the
 * shim's notifications through sandbox_sup.c, the deadline) and gives a
 * verdict. Nothing is left behind: the cgroup is killed and removed, also
 * when the calling thread is cancelled. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evolve/sandbox_int.h"

extern char **environ;

#define SBX_ERR_TAIL 4096
#define SBX_ARGS_MAX 512

const char *evolve_sbx_verdict_name(evolve_sbx_verdict v)
{
    static const char *n[] = {"ok", "failed", "timeout", "memory", "write", "net", "syscall", "error"};
    return (unsigned)v < sizeof n / sizeof n[0] ? n[v] : "?";
}

void evolve_sandbox_result_free(evolve_sandbox_result *r)
{
    if (!r)
        return;
    free(r->out);
    free(r->err_tail);
    r->out = r->err_tail = NULL;
    r->out_len = 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* bwrap's absolute path from PATH (and the usual places). */
static bool find_bwrap(char *out, size_t n)
{
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        snprintf(out, n, "%s/bwrap", d);
        if (d[0] == '/' && access(out, X_OK) == 0)
            return true;
    }
    return false;
}

bool evolve_sandbox_available(char *why, size_t n)
{
    char bwrap[PATH_MAX];
    if (!find_bwrap(bwrap, sizeof bwrap)) {
        snprintf(why, n, "sandbox: bwrap not found in PATH (install bubblewrap)");
        return false;
    }
    /* Try it: as root no user namespace is needed; otherwise the kernel must allow one. */
    const char *argv[16];
    int a = 0;
    argv[a++] = bwrap;
    if (geteuid() != 0)
        argv[a++] = "--unshare-user";
    argv[a++] = "--unshare-pid";
    argv[a++] = "--unshare-net";
    argv[a++] = "--die-with-parent";
    argv[a++] = "--ro-bind";
    argv[a++] = "/";
    argv[a++] = "/";
    argv[a++] = "--";
    argv[a++] = "true";
    argv[a] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, bwrap, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(why, n, "sandbox: cannot run %s: %s", bwrap, strerror(rc));
        return false;
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(why, n, "sandbox: %s does not work here (%s)", bwrap,
                 geteuid() ? "not root and user namespaces seem off: kernel.unprivileged_userns_clone or "
                             "user.max_user_namespaces"
                           : "bwrap failed as root");
        return false;
    }
    snprintf(why, n, "sandbox: %s works", bwrap);
    return true;
}

/* Everything one run owns; freed by sbx_cleanup (also on cancellation). */
typedef struct sbx_run {
    pid_t pid;
    int pidfd, out_r, err_r, sock, notify;
    sbx_cg cg;
    sbx_sup sup;
    char *args[SBX_ARGS_MAX];
    int nargs;
    char *out;
    size_t out_len, out_cap, out_max;
    char err[2 * SBX_ERR_TAIL];
    size_t err_len;
} sbx_run;

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void sbx_kill_all(sbx_run *s)
{
    sbx_cg_kill(&s->cg);
    if (s->pid > 0) {
        kill(s->pid, SIGKILL); /* bwrap: --die-with-parent takes its pid 1 and so the namespace along */
        kill(-s->pid, SIGKILL);
    }
}

static void sbx_cleanup(void *arg)
{
    sbx_run *s = arg;
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
    if (s->pid > 0) {
        sbx_kill_all(s);
        while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        s->pid = 0;
    }
    sbx_cg_destroy(&s->cg);
    sbx_sup_fini(&s->sup);
    close_fd(&s->pidfd);
    close_fd(&s->out_r);
    close_fd(&s->err_r);
    close_fd(&s->sock);
    close_fd(&s->notify);
    for (int i = 0; i < s->nargs; i++)
        free(s->args[i]);
    s->nargs = 0;
    free(s->out);
    free(s);
    pthread_setcancelstate(old, NULL);
}

static int arg(sbx_run *s, const char *a)
{
    if (s->nargs + 1 >= SBX_ARGS_MAX)
        return -E2BIG;
    if (!(s->args[s->nargs] = strdup(a)))
        return -ENOMEM;
    s->nargs++;
    return 0;
}

/* Whether an inherited variable looks like a secret (OPENAI_API_KEY,
 * IPPOC_TOKEN, PGPASSWORD, ...): a candidate does not get it. */
static bool secret_name(const char *name, size_t len)
{
    static const char *const words[] = {"KEY", "TOKEN", "SECRET", "PASSW", "CREDENTIAL"};
    char up[256];
    if (len >= sizeof up)
        len = sizeof up - 1;
    for (size_t i = 0; i < len; i++)
        up[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    up[len] = 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strstr(up, words[i]))
            return true;
    return false;
}

/* bwrap's command line. */
static int build_args(sbx_run *s, const evolve_sandbox_opts *o, const char *bwrap, const char *shim,
                      char *err, size_t errlen)
{
    static const char *const ns[] = {"--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                                     "--unshare-cgroup-try", "--die-with-parent", "--new-session",
                                     "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                                     "--tmpfs", "/tmp"};
    int rc = arg(s, bwrap);
    if (!rc && geteuid() != 0)
        rc = arg(s, "--unshare-user");
    for (size_t i = 0; !rc && i < sizeof ns / sizeof ns[0]; i++)
        rc = arg(s, ns[i]);
    for (int i = 0; !rc && i < o->nwritable; i++) {
        const char *w = o->writable[i];
        struct stat st;
        if (!w || w[0] != '/' || stat(w, &st) < 0) {
            snprintf(err, errlen, "sandbox: writable path %s: %s", w ? w : "(null)",
                     !w || w[0] != '/' ? "not absolute" : strerror(errno));
            return -EINVAL;
        }
        rc = arg(s, "--bind");
        rc = rc ? rc : arg(s, w);
        rc = rc ? rc : arg(s, w);
    }
    /* The shim stays visible when it lives under the host's /tmp. */
    rc = rc ? rc : arg(s, "--ro-bind");
    rc = rc ? rc : arg(s, shim);
    rc = rc ? rc : arg(s, shim);
    const char *cwd = o->cwd ? o->cwd : o->nwritable > 0 ? o->writable[0] : "/";
    rc = rc ? rc : arg(s, "--chdir");
    rc = rc ? rc : arg(s, cwd);
    /* Python would try to write its caches next to the system's modules. */
    rc = rc ? rc : arg(s, "--setenv");
    rc = rc ? rc : arg(s, "PYTHONDONTWRITEBYTECODE");
    rc = rc ? rc : arg(s, "1");
    /* A sanitizer build's leak check stops the world with ptrace, which the
     * filter forbids: inside, it is off (the run's own checks stay on). */
    const char *asan = getenv("ASAN_OPTIONS");
    if (!rc && asan) {
        char v[1024];
        snprintf(v, sizeof v, "%s%sdetect_leaks=0", asan, asan[0] ? ":" : "");
        rc = arg(s, "--setenv");
        rc = rc ? rc : arg(s, "ASAN_OPTIONS");
        rc = rc ? rc : arg(s, v);
    }
    for (char **e = environ; !rc && e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || !secret_name(*e, (size_t)(eq - *e)))
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
        rc = arg(s, "--unsetenv");
        rc = rc ? rc : arg(s, name);
    }
    for (int i = 0; !rc && o->env && o->env[i]; i++) {
        const char *eq = strchr(o->env[i], '=');
        if (!eq || eq == o->env[i]) {
            snprintf(err, errlen, "sandbox: env entry \"%s\": not NAME=VALUE", o->env[i]);
            return -EINVAL;
        }
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - o->env[i]), o->env[i]);
        rc = arg(s, "--setenv");
        rc = rc ? rc : arg(s, name);
        rc = rc ? rc : arg(s, eq + 1);
    }
    char fdnum[16];
    snprintf(fdnum, sizeof fdnum, "%d", SBX_SOCK_FD);
    rc = rc ? rc : arg(s, shim);
    rc = rc ? rc : arg(s, "--sandbox-exec");
    rc = rc ? rc : arg(s, "--notify-fd");
    rc = rc ? rc : arg(s, fdnum);
    if (!rc && o->network)
        rc = arg(s, "--network");
    /* No memory controller here: the address-space rlimit is all there is,
     * set by the shim on the command alone (a sanitizer-built shim reserves
     * terabytes of address space itself). */
    if (!rc && !s->cg.mem_limited) {
        char as[32];
        snprintf(as, sizeof as, "%llu", (unsigned long long)(o->memory_bytes ? o->memory_bytes : (1ull << 30)));
        rc = arg(s, "--rlimit-as");
        rc = rc ? rc : arg(s, as);
    }
    /* The fallback of a kernel without user notification, on demand (tests). */
    const char *nn = getenv("IPPOC_SANDBOX_NO_NOTIFY");
    if (!rc && nn && nn[0] == '1')
        rc = arg(s, "--no-notify");
    rc = rc ? rc : arg(s, "--");
    for (int i = 0; !rc && o->argv[i]; i++)
        rc = arg(s, o->argv[i]);
    if (rc < 0)
        snprintf(err, errlen, "sandbox: command line: %s", strerror(-rc));
    s->args[s->nargs] = NULL;
    return rc;
}

/* from as to, inherited across exec. */
static void move_fd(int from, int to)
{
    if (from == to)
        fcntl(from, F_SETFD, 0);
    else
        dup2(from, to);
}

/* In the child, before exec: async-signal-safe calls only. */
static void child(sbx_run *s, int go_r, int go_w, int out_w, int err_w, int sock_c, int devnull, pid_t parent)
{
    /* Until the exec this child holds every fd the daemon had (its state-dir
     * lock among them): it must not outlive the daemon while it waits for
     * "go" (ippocd SIGKILLed there left a child holding the lock). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    close(go_w);
    setpgid(0, 0);
    char b = 0;
    while (read(go_r, &b, 1) < 0 && errno == EINTR)
        ;
    if (b != 'g')
        _exit(126);
    move_fd(devnull, 0);
    move_fd(out_w, 1);
    move_fd(err_w, 2);
    move_fd(sock_c, SBX_SOCK_FD);
    syscall(SYS_close_range, SBX_SOCK_FD + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(s->args[0], s->args);
    _exit(126);
}

/* Receives the shim's hello: 1 with *fd (or -1 when it has no listener), 0 on EOF. */
static int recv_hello(int sock, int *fd)
{
    char byte = 0;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    if (r <= 0)
        return 0;
    *fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    return 1;
}

static void keep_out(sbx_run *s, const char *buf, size_t n)
{
    if (s->out_len >= s->out_max)
        return;
    if (n > s->out_max - s->out_len)
        n = s->out_max - s->out_len;
    if (s->out_len + n + 1 > s->out_cap) {
        size_t cap = s->out_cap ? s->out_cap : 4096;
        while (cap < s->out_len + n + 1)
            cap *= 2;
        char *p = realloc(s->out, cap);
        if (!p)
            return;
        s->out = p;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, buf, n);
    s->out_len += n;
}

static void keep_err(sbx_run *s, const char *buf, size_t n)
{
    if (n >= SBX_ERR_TAIL) {
        buf += n - SBX_ERR_TAIL;
        n = SBX_ERR_TAIL;
    }
    if (s->err_len + n > sizeof s->err) {
        size_t drop = s->err_len + n - SBX_ERR_TAIL;
        if (drop > s->err_len)
            drop = s->err_len;
        memmove(s->err, s->err + drop, s->err_len - drop);
        s->err_len -= drop;
    }
    memcpy(s->err + s->err_len, buf, n);
    s->err_len += n;
}

/* Reads what is there on *fd; closes it at EOF. */
static void drain(sbx_run *s, int *fd, bool is_out)
{
    char buf[16384];
    ssize_t r = read(*fd, buf, sizeof buf);
    if (r > 0) {
        if (is_out)
            keep_out(s, buf, (size_t)r);
        else
            keep_err(s, buf, (size_t)r);
    } else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        close_fd(fd);
    }
}

typedef struct sbx_state {
    evolve_sbx_verdict verdict; /* a violation or timeout decided by the loop */
    bool decided, hello, exited;
    char detail[EVOLVE_TEXT];
} sbx_state;

/* Supervises until the bwrap process has exited (or was killed for cause). */
static void supervise(sbx_run *s, const evolve_sandbox_opts *o, int64_t deadline, sbx_state *st)
{
    int64_t kill_deadline = 0;
    while (!st->exited) {
        struct pollfd p[5];
        int np = 0, ip = -1, io = -1, ie = -1, is = -1, in = -1;
        if (s->pidfd >= 0)
            p[ip = np++] = (struct pollfd){s->pidfd, POLLIN, 0};
        if (s->out_r >= 0)
            p[io = np++] = (struct pollfd){s->out_r, POLLIN, 0};
        if (s->err_r >= 0)
            p[ie = np++] = (struct pollfd){s->err_r, POLLIN, 0};
        if (s->sock >= 0)
            p[is = np++] = (struct pollfd){s->sock, POLLIN, 0};
        if (s->notify >= 0)
            p[in = np++] = (struct pollfd){s->notify, POLLIN, 0};
        int64_t now = now_ms(), until = st->decided ? kill_deadline : deadline;
        int wait = until > now ? (int)(until - now) : 0;
        if (s->pidfd < 0 && wait > 20)
            wait = 20; /* no pidfd: look at the child now and then */
        int n = poll(p, (nfds_t)np, wait);
        if (n < 0 && errno != EINTR) {
            sbx_kill_all(s); /* cannot watch it any more: it must not outlive the call */
            break;
        }
        if (ip >= 0 && p[ip].revents)
            st->exited = true;
        siginfo_t si = {0};
        if (s->pidfd < 0 && waitid(P_PID, (id_t)s->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
            si.si_pid == s->pid)
            st->exited = true;
        if (io >= 0 && p[io].revents)
            drain(s, &s->out_r, true);
        if (ie >= 0 && p[ie].revents)
            drain(s, &s->err_r, false);
        if (is >= 0 && p[is].revents) {
            int fd = -1;
            if (recv_hello(s->sock, &fd)) {
                st->hello = true;
                s->notify = fd;
            }
            close_fd(&s->sock);
        }
        if (in >= 0 && p[in].revents) {
            if (p[in].revents & (POLLHUP | POLLERR | POLLNVAL)) {
                close_fd(&s->notify);
            } else if (!st->decided) {
                evolve_sbx_verdict v;
                int rc = sbx_sup_handle(&s->sup, s->notify, &v, st->detail, sizeof st->detail);
                if (rc < 0)
                    close_fd(&s->notify);
                else if (rc == 1) {
                    st->decided = true;
                    st->verdict = v;
                    kill_deadline = now_ms() + 2000;
                    sbx_kill_all(s);
                    sbx_sup_refuse(&s->sup, s->notify);
                }
            } else {
                /* After the verdict: just refuse, everything is being killed. */
                evolve_sbx_verdict v;
                char d[64];
                if (sbx_sup_handle(&s->sup, s->notify, &v, d, sizeof d) < 0)
                    close_fd(&s->notify);
                else
                    sbx_sup_refuse(&s->sup, s->notify);
            }
        }
        now = now_ms();
        if (!st->decided && now >= deadline) {
            st->decided = true;
            st->verdict = EVOLVE_SBX_TIMEOUT;
            snprintf(st->detail, sizeof st->detail, "killed at the deadline of %lld ms",
                     (long long)(o->timeout_ms > 0 ? o->timeout_ms : 300000));
            kill_deadline = now + 2000;
            sbx_kill_all(s);
        } else if (st->decided && now >= kill_deadline) {
            sbx_kill_all(s);
            kill_deadline = now + 1000;
        }
    }
}

/* Verdict from the exit status and the cgroup when the loop decided none. */
static void judge(sbx_run *s, const evolve_sandbox_opts *o, int status, const sbx_state *st, bool oom,
                  evolve_sandbox_result *r)
{
    uint64_t mem = o->memory_bytes ? o->memory_bytes : (1ull << 30);
    if (WIFEXITED(status)) {
        r->exit_code = WEXITSTATUS(status);
        /* bwrap reports a command killed by a signal as 128 + the signal. */
        if (r->exit_code > 128 && r->exit_code < 128 + 65)
            r->signal = r->exit_code - 128;
    } else if (WIFSIGNALED(status)) {
        r->signal = WTERMSIG(status);
        r->exit_code = 128 + r->signal;
    }
    if (st->decided) {
        r->verdict = st->verdict;
        snprintf(r->detail, sizeof r->detail, "%s", st->detail);
        return;
    }
    if (!st->hello) {
        /* The shim never spoke: bwrap (or the shim) could not start it. */
        r->verdict = EVOLVE_SBX_ERROR;
        char tail[400] = "";
        size_t n = s->err_len < sizeof tail - 1 ? s->err_len : sizeof tail - 1;
        memcpy(tail, s->err + s->err_len - n, n);
        tail[n] = 0;
        tail[strcspn(tail, "\n")] = 0;
        snprintf(r->detail, sizeof r->detail, "could not start the command (exit %d): %s", r->exit_code,
                 tail[0] ? tail : "no message");
        return;
    }
    if (WIFEXITED(status) && r->exit_code == 0 && !r->signal) {
        r->verdict = EVOLVE_SBX_OK;
        return;
    }
    if (oom) {
        r->verdict = EVOLVE_SBX_MEMORY;
        snprintf(r->detail, sizeof r->detail, "memory limit %llu MB", (unsigned long long)(mem >> 20));
        return;
    }
    if (r->signal == SIGSYS) {
        r->verdict = EVOLVE_SBX_SYSCALL;
        snprintf(r->detail, sizeof r->detail, "killed by SIGSYS (a forbidden system call)");
        return;
    }
    r->verdict = EVOLVE_SBX_FAILED;
    if (r->signal)
        snprintf(r->detail, sizeof r->detail, "exit %d (signal %d)", r->exit_code, r->signal);
    else
        snprintf(r->detail, sizeof r->detail, "exit %d", r->exit_code);
}

/* Starts bwrap in its cgroup; 0 or -errno with err. */
static int start(sbx_run *s, const evolve_sandbox_opts *o, char *err, size_t errlen)
{
    int go[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, sp[2] = {-1, -1};
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    int rc = 0;
    /* go is a socket so that a child already dead is EPIPE, not SIGPIPE. */
    if (devnull < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, go) < 0 || pipe2(outp, O_CLOEXEC) < 0 ||
        pipe2(errp, O_CLOEXEC) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
        rc = -errno;
        snprintf(err, errlen, "sandbox: pipes: %s", strerror(errno));
        goto out;
    }
    s->out_r = outp[0];
    s->err_r = errp[0];
    s->sock = sp[0];
    outp[0] = errp[0] = sp[0] = -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        rc = -errno;
        snprintf(err, errlen, "sandbox: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(s, go[0], go[1], outp[1], errp[1], sp[1], devnull, parent);
    s->pid = pid;
    setpgid(pid, pid);
#ifdef SYS_pidfd_open
    s->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    rc = sbx_cg_attach(&s->cg, pid, err, errlen);
    if (rc == 0 && send(go[1], "g", 1, MSG_NOSIGNAL) != 1) {
        rc = -errno;
        snprintf(err, errlen, "sandbox: cannot start the child: %s", strerror(errno));
    }
out:
    for (int i = 0; i < 2; i++) {
        close_fd(&go[i]);
        close_fd(&outp[i]);
        close_fd(&errp[i]);
        close_fd(&sp[i]);
    }
    close_fd(&devnull);
    return rc;
}

static void finish_output(sbx_run *s, evolve_sandbox_result *r)
{
    /* The namespace is gone; what is left in the pipes comes within a moment. */
    int64_t until = now_ms() + 1000;
    while ((s->out_r >= 0 || s->err_r >= 0) && now_ms() < until) {
        struct pollfd p[2];
        int np = 0, io = -1, ie = -1;
        if (s->out_r >= 0)
            p[io = np++] = (struct pollfd){s->out_r, POLLIN, 0};
        if (s->err_r >= 0)
            p[ie = np++] = (struct pollfd){s->err_r, POLLIN, 0};
        if (poll(p, (nfds_t)np, (int)(until - now_ms() > 0 ? until - now_ms() : 0)) <= 0)
            break;
        if (io >= 0 && p[io].revents)
            drain(s, &s->out_r, true);
        if (ie >= 0 && p[ie].revents)
            drain(s, &s->err_r, false);
    }
    r->out = s->out ? s->out : malloc(1);
    s->out = NULL;
    r->out_len = s->out_len;
    if (r->out)
        r->out[r->out_len] = 0;
    r->err_tail = malloc(SBX_ERR_TAIL + 1);
    if (r->err_tail) {
        size_t n = s->err_len > SBX_ERR_TAIL ? SBX_ERR_TAIL : s->err_len;
        memcpy(r->err_tail, s->err + s->err_len - n, n);
        r->err_tail[n] = 0;
    }
}

int evolve_sandbox_run(const evolve_sandbox_opts *o, evolve_sandbox_result *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!o || !o->argv || !o->argv[0] || !o->argv[0][0]) {
        snprintf(err, errlen, "sandbox: no command to run");
        return -EINVAL;
    }
    char bwrap[PATH_MAX], shim[PATH_MAX];
    if (!find_bwrap(bwrap, sizeof bwrap)) {
        snprintf(err, errlen, "sandbox: bwrap not found in PATH (install bubblewrap)");
        return -ENOSYS;
    }
    /* Absolute: bwrap runs it from the sandbox's cwd. */
    const char *sp = o->shim ? o->shim : "/proc/self/exe";
    if (!realpath(sp, shim)) {
        int e = errno;
        snprintf(err, errlen, "sandbox: shim %s: %s", sp, strerror(e));
        return -e;
    }
    if (access(shim, X_OK) < 0) {
        int e = errno;
        snprintf(err, errlen, "sandbox: shim %s: %s", shim, strerror(e));
        return -e;
    }
    sbx_run *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "sandbox: out of memory");
        return -ENOMEM;
    }
    s->pidfd = s->out_r = s->err_r = s->sock = s->notify = -1;
    s->out_max = o->out_max ? o->out_max : (1u << 20);
    int rc = 0;
    int64_t t0 = now_ms();
    pthread_cleanup_push(sbx_cleanup, s);
    {
        /* A cgroup we may not create (not root, no delegation) is no reason
         * not to run: the namespaces and the filter stay, memory falls back
         * to the rlimit and the pid namespace takes everything down. */
        char cgerr[256];
        if (sbx_cg_create(&s->cg, o->memory_bytes ? o->memory_bytes : (1ull << 30), o->cpu_percent, cgerr,
                          sizeof cgerr) < 0)
            sbx_cg_destroy(&s->cg);
    }
    rc = build_args(s, o, bwrap, shim, err, errlen);
    if (!rc && sbx_sup_init(&s->sup, o->writable, o->nwritable) != 0) {
        snprintf(err, errlen, "sandbox: seccomp notification buffers: out of memory");
        rc = -ENOMEM;
    }
    if (!rc)
        rc = start(s, o, err, errlen);
    if (!rc) {
        sbx_state st = {0};
        int64_t deadline = t0 + (o->timeout_ms > 0 ? o->timeout_ms : 300000);
        supervise(s, o, deadline, &st);
        int status = 0;
        struct rusage ru = {0};
        while (wait4(s->pid, &status, 0, &ru) < 0 && errno == EINTR)
            ;
        s->pid = 0;
        r->wall_ms = now_ms() - t0;
        /* Daemons the command started died with its pid namespace; the cgroup makes sure. */
        sbx_cg_kill(&s->cg);
        finish_output(s, r);
        bool oom = sbx_cg_oom(&s->cg);
        r->max_rss = sbx_cg_peak(&s->cg);
        if (!r->max_rss)
            r->max_rss = (uint64_t)ru.ru_maxrss * 1024;
        r->cpu_ms = sbx_cg_cpu_ms(&s->cg);
        if (r->cpu_ms < 0)
            r->cpu_ms = (int64_t)ru.ru_utime.tv_sec * 1000 + ru.ru_utime.tv_usec / 1000 +
                        (int64_t)ru.ru_stime.tv_sec * 1000 + ru.ru_stime.tv_usec / 1000;
        judge(s, o, status, &st, oom, r);
    }
    pthread_cleanup_pop(1); /* frees s */
    if (rc < 0)
        evolve_sandbox_result_free(r);
    return rc;
}
