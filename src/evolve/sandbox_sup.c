/* sandbox_sup.c: the WorldModel sandbox's supervisor: answers the seccomp
 * user notifications of the command inside. A write-like call whose path
 * (read from /proc/PID/mem, resolved against its cwd or dirfd) lies under a
 * writable path, /tmp, the sandbox's own /dev or /proc/self goes on; any other
 * is a violation (WRITE), as are a network socket or a connect() to a Unix
 * socket of the host (NET) and the forbidden
 * calls (SYSCALL): the call fails and the caller kills the sandbox. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "evolve/sandbox_int.h"

/* Where a write-like call's paths are: (dirfd arg, path arg) twice; dirfd
 * -1 = the cwd, path -1 = none. */
typedef struct sbx_wcall {
    const char *name;
    signed char dfd1, path1, dfd2, path2;
} sbx_wcall;

static const sbx_wcall wcalls[] = {
    {"open", -1, 0, -1, -1},       {"creat", -1, 0, -1, -1},     {"openat", 0, 1, -1, -1},
    {"unlink", -1, 0, -1, -1},     {"unlinkat", 0, 1, -1, -1},   {"rename", -1, 0, -1, 1},
    {"renameat", 0, 1, 2, 3},      {"renameat2", 0, 1, 2, 3},    {"mkdir", -1, 0, -1, -1},
    {"mkdirat", 0, 1, -1, -1},     {"rmdir", -1, 0, -1, -1},     {"truncate", -1, 0, -1, -1},
    {"chmod", -1, 0, -1, -1},      {"fchmodat", 0, 1, -1, -1},   {"chown", -1, 0, -1, -1},
    {"lchown", -1, 0, -1, -1},     {"fchownat", 0, 1, -1, -1},   {"link", -1, -1, -1, 1},
    {"linkat", -1, -1, 2, 3},      {"symlink", -1, -1, -1, 1},   {"symlinkat", -1, -1, 1, 2},
    {"mknod", -1, 0, -1, -1},      {"mknodat", 0, 1, -1, -1},
};

int sbx_sup_init(sbx_sup *s, const char *const *writable, int nwritable)
{
    memset(s, 0, sizeof *s);
    s->writable = writable;
    s->nwritable = nwritable;
    return seccomp_notify_alloc(&s->req, &s->resp);
}

void sbx_sup_fini(sbx_sup *s)
{
    if (s->req)
        seccomp_notify_free(s->req, s->resp);
    s->req = NULL;
    s->resp = NULL;
}

void sbx_path_normalize(const char *path, char *out, size_t n)
{
    /* Components pushed onto out; ".." pops one. */
    size_t len = 0;
    out[0] = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        const char *e = p;
        while (*e && *e != '/')
            e++;
        size_t cl = (size_t)(e - p);
        if (cl == 0 || (cl == 1 && p[0] == '.')) {
            /* nothing */
        } else if (cl == 2 && p[0] == '.' && p[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--;
            out[len] = 0;
        } else if (len + 1 + cl < n) {
            out[len++] = '/';
            memcpy(out + len, p, cl);
            len += cl;
            out[len] = 0;
        }
        p = e;
    }
    if (len == 0 && n > 1) {
        out[0] = '/';
        out[1] = 0;
    }
}

static bool under(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    while (l > 1 && dir[l - 1] == '/')
        l--;
    if (l == 1 && dir[0] == '/')
        return true;
    return !strncmp(path, dir, l) && (path[l] == 0 || path[l] == '/');
}

bool sbx_path_allowed(const char *path, const char *const *writable, int nwritable)
{
    /* /dev is the sandbox's own (bwrap --dev: null, zero, tty, shm, ...). */
    static const char *const always[] = {"/tmp", "/dev", "/proc/self", "/proc/thread-self"};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (under(path, always[i]))
            return true;
    for (int i = 0; i < nwritable; i++) {
        char w[PATH_MAX];
        sbx_path_normalize(writable[i], w, sizeof w);
        if (under(path, w))
            return true;
    }
    return false;
}

/* The NUL-terminated string at addr in pid's memory. */
static int read_str(pid_t pid, uint64_t addr, char *buf, size_t n)
{
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = pread(fd, buf, n - 1, (off_t)addr);
    int e = errno;
    close(fd);
    if (r < 0)
        return -e;
    buf[r] = 0;
    if (!memchr(buf, 0, (size_t)r) && (size_t)r == n - 1)
        return -ENAMETOOLONG;
    return 0;
}

/* The absolute, normalised path of (dirfd, path) in pid. */
static int resolve(pid_t pid, int dirfd, const char *path, char *out, size_t n)
{
    char base[PATH_MAX] = "", link[64], full[2 * PATH_MAX];
    if (path[0] != '/') {
        if (dirfd == AT_FDCWD)
            snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
        else
            snprintf(link, sizeof link, "/proc/%d/fd/%d", (int)pid, dirfd);
        ssize_t l = readlink(link, base, sizeof base - 1);
        if (l < 0)
            return -errno;
        base[l] = 0;
    }
    snprintf(full, sizeof full, "%s/%s", base, path);
    sbx_path_normalize(full, out, n);
    return 0;
}

static const char *family_name(uint64_t f)
{
    switch (f) {
    case AF_INET: return "AF_INET";
    case AF_INET6: return "AF_INET6";
    case AF_PACKET: return "AF_PACKET";
    default: return "?";
    }
}

static void respond(sbx_sup *s, int fd, int error, bool cont)
{
    s->resp->id = s->req->id;
    s->resp->val = 0;
    s->resp->error = cont ? 0 : -error;
    s->resp->flags = cont ? SECCOMP_USER_NOTIF_FLAG_CONTINUE : 0;
    (void)seccomp_notify_respond(fd, s->resp); /* fails when the target died meanwhile: nothing to answer */
}

void sbx_sup_refuse(sbx_sup *s, int fd)
{
    /* The caller dies before it can see the refusal, also where no cgroup
     * kill reached it at once (only bwrap's pid namespace teardown). */
    if (s->refuse && s->req->pid > 0)
        kill((pid_t)s->req->pid, SIGKILL);
    if (s->refuse)
        respond(s, fd, s->refuse, false);
    s->refuse = 0;
}

/* connect(): a Unix socket path of the host outside the writable paths is a
 * violation when such a socket exists (a missing one fails by itself:
 * glibc tries nscd's on every user lookup). 0 allowed, 1 violation. */
static int check_connect(sbx_sup *s, int fd, char *detail, size_t n)
{
    const struct seccomp_data *d = &s->req->data;
    pid_t pid = (pid_t)s->req->pid;
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    size_t len = d->args[2] < sizeof sa ? (size_t)d->args[2] : sizeof sa;
    char p[64];
    snprintf(p, sizeof p, "/proc/%d/mem", (int)pid);
    int mfd = open(p, O_RDONLY | O_CLOEXEC);
    if (mfd < 0)
        return 0;
    ssize_t r = pread(mfd, &sa, len, (off_t)d->args[1]);
    close(mfd);
    if (r < (ssize_t)sizeof(sa_family_t) + 1 || sa.sun_family != AF_UNIX || sa.sun_path[0] == 0)
        return 0; /* not a Unix path: IP (checked at socket()) or abstract (per netns: private) */
    if (seccomp_notify_id_valid(fd, s->req->id) < 0)
        return 0;
    char path[sizeof sa.sun_path + 1], abs[PATH_MAX];
    memcpy(path, sa.sun_path, sizeof sa.sun_path);
    path[sizeof sa.sun_path] = 0;
    if (resolve(pid, AT_FDCWD, path, abs, sizeof abs) < 0 || sbx_path_allowed(abs, s->writable, s->nwritable))
        return 0;
    struct stat st;
    if (stat(abs, &st) < 0 || !S_ISSOCK(st.st_mode))
        return 0;
    snprintf(detail, n, "connect(%s)", abs);
    return 1;
}

/* A write-like call: 0 allowed, 1 violation with detail. */
static int check_write(sbx_sup *s, int fd, const sbx_wcall *w, char *detail, size_t n)
{
    const struct seccomp_data *d = &s->req->data;
    pid_t pid = (pid_t)s->req->pid;
    for (int k = 0; k < 2; k++) {
        int dfa = k ? w->dfd2 : w->dfd1, pa = k ? w->path2 : w->path1;
        if (pa < 0)
            continue;
        char path[PATH_MAX], abs[PATH_MAX];
        if (read_str(pid, d->args[pa], path, sizeof path) < 0)
            return -1; /* unreadable: the read-only mounts decide */
        /* Only trust what we read while the notification is still live. */
        if (seccomp_notify_id_valid(fd, s->req->id) < 0)
            return -1;
        int dirfd = dfa < 0 ? AT_FDCWD : (int)d->args[dfa];
        if (resolve(pid, dirfd, path, abs, sizeof abs) < 0)
            return -1;
        if (!sbx_path_allowed(abs, s->writable, s->nwritable)) {
            if (!strcmp(w->name, "open") || !strcmp(w->name, "openat") || !strcmp(w->name, "creat"))
                snprintf(detail, n, "wrote %s", abs);
            else
                snprintf(detail, n, "wrote %s (%s)", abs, w->name);
            return 1;
        }
    }
    return 0;
}

int sbx_sup_handle(sbx_sup *s, int fd, evolve_sbx_verdict *v, char *detail, size_t n)
{
    memset(s->req, 0, sizeof *s->req);
    if (seccomp_notify_receive(fd, s->req) < 0) {
        int e = errno;
        /* ENOENT: the target died before we read it. */
        return e == ENOENT || e == EINTR ? 0 : -(e ? e : EIO);
    }
    const struct seccomp_data *d = &s->req->data;
    char *name = seccomp_syscall_resolve_num_arch(d->arch, d->nr);
    int rc = 0;
    if (name && !strcmp(name, "connect")) {
        if (check_connect(s, fd, detail, n) == 1) {
            *v = EVOLVE_SBX_NET;
            rc = 1;
            s->refuse = EACCES;
        } else {
            respond(s, fd, 0, true);
        }
    } else if (name && !strcmp(name, "socket")) {
        *v = EVOLVE_SBX_NET;
        snprintf(detail, n, "socket(%s)", family_name(d->args[0]));
        rc = 1;
        s->refuse = EACCES;
    } else {
        const sbx_wcall *w = NULL;
        for (size_t i = 0; name && i < sizeof wcalls / sizeof wcalls[0]; i++)
            if (!strcmp(name, wcalls[i].name))
                w = &wcalls[i];
        if (w) {
            int c = check_write(s, fd, w, detail, n);
            if (c == 1) {
                *v = EVOLVE_SBX_WRITE;
                rc = 1;
                s->refuse = EROFS;
            } else {
                respond(s, fd, 0, true);
            }
        } else {
            *v = EVOLVE_SBX_SYSCALL;
            snprintf(detail, n, "%s", name ? name : "unknown system call");
            rc = 1;
            s->refuse = EPERM;
        }
    }
    free(name);
    return rc;
}
