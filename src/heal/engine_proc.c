/* engine_proc.c: what the engine reads of other processes in /proc: the
 * resources of a service's processes (every process of its own cgroup v2
 * when it has one, else the main pid and every descendant), who
 * holds a TCP port (/proc/net/tcp{,6} socket inode -> /proc/PID/fd), named
 * in the incident when a service cannot start because its port is taken;
 * and freezing a service's own cgroup (cgroup v2 cgroup.freeze). */
#include "heal/engine_int.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TREE_MAX 512 /* processes summed per service */

/* ---- cgroups ------------------------------------------------------------------------ */

/* The cgroup v2 path ("/a/b") of pid from /proc/PID/cgroup ("0::/a/b"). */
static int cgroup2_of(const char *proc_cgroup, char *out, size_t n)
{
    char buf[4096];
    if (core_read_file(proc_cgroup, buf, sizeof buf) <= 0)
        return -ESRCH;
    for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        if (!strncmp(l, "0::", 3)) {
            snprintf(out, n, "%s", l + 3);
            return 0;
        }
    return -ENOENT;
}

/* The cgroup v2 root (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
 * host): the one that has cgroup.controllers, as eng_sys_limit finds it. Two
 * access() calls rather than a read of /proc/self/mountinfo: this runs on
 * the loop thread for every service at every sample. */
static int cgroup2_mount(char *out, size_t n)
{
    static const char *const roots[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    for (size_t i = 0; i < sizeof roots / sizeof *roots; i++) {
        char path[64];
        snprintf(path, sizeof path, "%s/cgroup.controllers", roots[i]);
        if (access(path, F_OK) == 0) {
            snprintf(out, n, "%s", roots[i]);
            return 0;
        }
    }
    return -ENOENT;
}

/* Whether cgroup path cg has a ".." component: a process outside ippocd's
 * cgroup namespace shows as "/../x"; joined to the mount it would lead out
 * of the cgroup tree. */
static bool dotdot(const char *cg)
{
    for (const char *p = strstr(cg, ".."); p; p = strstr(p + 1, ".."))
        if ((p == cg || p[-1] == '/') && (p[2] == 0 || p[2] == '/'))
            return true;
    return false;
}

/* The service's own cgroup v2 directory (that of pid, unless it is the root
 * or holds ippocd): 0, -ENOENT when it has none of its own, -ENOTSUP
 * without cgroup v2, -EXDEV when it lies outside ippocd's cgroup namespace,
 * -ESRCH when pid is gone. */
static int own_cgroup(pid_t pid, char *dir, size_t dn, char *cg, size_t cgn)
{
    char path[64], self[1024] = "", mnt[512];
    snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
    int rc = cgroup2_of(path, cg, cgn);
    if (rc == -ESRCH)
        return rc;
    if (rc || cgroup2_mount(mnt, sizeof mnt))
        return -ENOTSUP;
    if (dotdot(cg))
        return -EXDEV;
    cgroup2_of("/proc/self/cgroup", self, sizeof self);
    size_t cl = strlen(cg);
    if (!strcmp(cg, "/") || !strcmp(cg, self) || (!strncmp(self, cg, cl) && self[cl] == '/'))
        return -ENOENT;
    snprintf(dir, dn, "%s%s", mnt, cg);
    return 0;
}

/* The pids in a cgroup's cgroup.procs, up to max; -1 if unreadable. */
static int cgroup_pids(const char *dir, pid_t *out, int max)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    int n = 0;
    long v;
    while (n < max && fscanf(f, "%ld", &v) == 1)
        if (v > 0)
            out[n++] = (pid_t)v;
    fclose(f);
    return n;
}


/* Appends the children of every thread of pid to out (from n), up to max. */
static int add_children(pid_t pid, pid_t *out, int n, int max)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return n;
    for (struct dirent *de; (de = readdir(d)) && n < max;) {
        if (de->d_name[0] == '.')
            continue;
        char cpath[300], buf[4096];
        snprintf(cpath, sizeof cpath, "/proc/%d/task/%s/children", (int)pid, de->d_name);
        if (core_read_file(cpath, buf, sizeof buf) <= 0)
            continue;
        for (char *p = buf, *end; *p && n < max; p = end) {
            long v = strtol(p, &end, 10);
            if (end == p)
                break;
            if (v > 1)
                out[n++] = (pid_t)v;
        }
    }
    closedir(d);
    return n;
}

int eng_sys_tree(pid_t pid, uint64_t *ticks, double *rss, double *threads, double *fds, int *nprocs)
{
    pid_t tree[TREE_MAX]; /* 2 KiB: no allocation per sample */
    int n = 0;
    char dir[1600], cg[1024];
    if (own_cgroup(pid, dir, sizeof dir, cg, sizeof cg) == 0 && (n = cgroup_pids(dir, tree + 1, TREE_MAX - 1)) >= 0) {
        int k = 0; /* its own cgroup: every process in it, the main one first */
        for (int i = 1; i <= n; i++)
            if (tree[i] != pid)
                tree[1 + k++] = tree[i];
        tree[0] = pid;
        n = k + 1;
    } else {
        n = 0;
        tree[n++] = pid;
        for (int i = 0; i < n && n < TREE_MAX; i++)
            n = add_children(tree[i], tree, n, TREE_MAX);
    }
    *ticks = 0;
    *rss = *threads = *fds = 0;
    int counted = 0, rc = 0;
    for (int i = 0; i < n; i++) {
        uint64_t t;
        double r, th, f;
        if (eng_sys_proc(tree[i], &t, &r, &th, &f)) {
            if (i == 0)
                rc = -ESRCH; /* the main process is gone */
            continue;
        }
        *ticks += t;
        *rss += r;
        *threads += th;
        *fds += isnan(f) ? 0 : f;
        counted++;
    }
    if (nprocs)
        *nprocs = counted;
    return rc;
}

/* ---- port holders ------------------------------------------------------------------ */

/* Socket inodes bound to local port `port` in one /proc/net/tcp* file
 * (listening ones first: they are what makes bind() fail). */
static int port_inodes(const char *path, int port, unsigned long *inodes, int n, int max)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return n;
    char line[512];
    if (!fgets(line, sizeof line, f)) { /* header */
        fclose(f);
        return n;
    }
    while (fgets(line, sizeof line, f) && n < max) {
        char local[80];
        unsigned st;
        unsigned long inode;
        /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
        if (sscanf(line, "%*s %79s %*s %x %*s %*s %*s %*s %*s %lu", local, &st, &inode) != 3 || !inode)
            continue;
        char *colon = strrchr(local, ':');
        if (!colon || (int)strtol(colon + 1, NULL, 16) != port)
            continue;
        if (st == 0x0A && n > 0) { /* LISTEN: put it first */
            inodes[n] = inodes[0];
            inodes[0] = inode;
            n++;
        } else {
            inodes[n++] = inode;
        }
    }
    fclose(f);
    return n;
}

/* How long the walk of every process's fds may take: it runs on the loop
 * thread, after a crash, and a host with many processes and fds would
 * otherwise hold the loop for as long as the walk takes. */
#define OWNER_BUDGET_MS 50

/* The pid (not in process group `skip_pgid`) with an fd on socket inode;
 * 0 if none, -1 when the walk ran out of its time budget. */
static pid_t inode_owner(const unsigned long *inodes, int ninodes, pid_t skip_pgid)
{
    DIR *proc = opendir("/proc");
    if (!proc)
        return 0;
    pid_t found = 0;
    int64_t deadline = core_mono_ms() + OWNER_BUDGET_MS;
    for (struct dirent *de; !found && (de = readdir(proc));) {
        if (core_mono_ms() > deadline) {
            found = -1;
            break;
        }
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid() || (skip_pgid > 1 && getpgid((pid_t)pid) == skip_pgid))
            continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/%ld/fd", pid);
        DIR *fd = opendir(path);
        if (!fd)
            continue;
        for (struct dirent *fe; !found && (fe = readdir(fd));) {
            if (core_mono_ms() > deadline) {
                found = -1; /* one process with very many fds */
                break;
            }
            char lp[600], target[64];
            snprintf(lp, sizeof lp, "/proc/%ld/fd/%s", pid, fe->d_name);
            ssize_t k = readlink(lp, target, sizeof target - 1);
            if (k <= 0)
                continue;
            target[k] = 0;
            unsigned long ino;
            if (sscanf(target, "socket:[%lu]", &ino) != 1)
                continue;
            for (int i = 0; i < ninodes; i++)
                if (inodes[i] == ino)
                    found = (pid_t)pid;
        }
        closedir(fd);
    }
    closedir(proc);
    return found;
}

int eng_sys_port_holder(int port, pid_t skip_pgid, pid_t *pid, char *cmd, size_t n)
{
    unsigned long inodes[64];
    int k = port_inodes("/proc/net/tcp", port, inodes, 0, 64);
    k = port_inodes("/proc/net/tcp6", port, inodes, k, 64);
    *pid = 0;
    if (n)
        cmd[0] = 0;
    if (k == 0)
        return -ENOENT;
    *pid = inode_owner(inodes, k, skip_pgid);
    if (*pid < 0) {
        *pid = 0;
        return -ETIMEDOUT; /* too many processes to look through on the loop */
    }
    if (!*pid)
        return -ESRCH; /* bound, but by no process we can see (another user's, without root) */
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)*pid);
    ssize_t len = core_read_file(path, buf, sizeof buf);
    for (ssize_t i = 0; i < len - 1; i++)
        if (!buf[i])
            buf[i] = ' ';
    if (len <= 0) {
        snprintf(path, sizeof path, "/proc/%d/comm", (int)*pid);
        len = core_read_file(path, buf, sizeof buf);
        if (len > 0 && buf[len - 1] == '\n')
            buf[len - 1] = 0;
    }
    snprintf(cmd, n, "%s", len > 0 ? buf : "?");
    return 0;
}

/* The TCP port a probe spec talks to, or 0 (only loopback/local hosts are
 * ours to check, but any host naming this machine could be: all counted). */
static int spec_port(const heal_probe_spec *ps)
{
    if (ps->kind == HEAL_PROBE_TCP)
        return ps->port;
    if (ps->kind != HEAL_PROBE_HTTP && ps->kind != HEAL_PROBE_HTTPS)
        return 0;
    const char *h = strstr(ps->url, "://");
    if (!h)
        return 0;
    h += 3;
    const char *slash = strchr(h, '/');
    size_t hl = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = NULL;
    for (size_t i = 0; i < hl; i++)
        if (h[i] == ':')
            colon = h + i;
        else if (h[i] == ']')
            colon = NULL; /* [v6]:port */
    if (colon)
        return atoi(colon + 1);
    return ps->kind == HEAL_PROBE_HTTPS ? 443 : 80;
}

json_t *eng_port_conflict(eng_svc *s, pid_t exited_pgid, char *text, size_t n)
{
    if (n)
        text[0] = 0;
    for (int i = 0; i < s->nrules; i++) {
        if (s->rules[i].r.cond.kind != HEAL_COND_PROBE_FAILED)
            continue;
        int port = spec_port(&s->rules[i].r.cond.probe);
        bool asked = false; /* a TCP and an HTTP probe of one port: /proc read once */
        for (int j = 0; j < i && !asked; j++)
            asked = s->rules[j].r.cond.kind == HEAL_COND_PROBE_FAILED && spec_port(&s->rules[j].r.cond.probe) == port;
        pid_t pid;
        char cmd[512];
        if (asked || port <= 0 || port > 65535 || eng_sys_port_holder(port, exited_pgid, &pid, cmd, sizeof cmd))
            continue;
        snprintf(text, n, "port %d is held by pid %d (%s)", port, (int)pid, cmd);
        return json_pack("{s:i, s:i, s:s}", "port", port, "pid", (int)pid, "command", cmd);
    }
    return NULL;
}

/* ---- freeze / thaw ------------------------------------------------------------------ */

int eng_sys_freeze(pid_t pid, bool freeze, char *dir, size_t dn, char *msg, size_t n)
{
    char cg[1024] = "";
    int rc = own_cgroup(pid, dir, dn, cg, sizeof cg);
    if (rc == -ESRCH) {
        snprintf(msg, n, "pid %d is gone", (int)pid);
        return rc;
    }
    if (rc == -ENOTSUP) {
        snprintf(msg, n, "no cgroup v2 here (freeze and thaw need cgroup v2's cgroup.freeze)");
        return rc;
    }
    if (rc == -EXDEV) {
        snprintf(msg, n, "pid %d's cgroup %s is outside ippocd's cgroup namespace", (int)pid, cg);
        return rc;
    }
    if (rc) {
        snprintf(msg, n, "pid %d has no cgroup of its own (it is in %s, with ippocd): start the service in its own "
                 "cgroup (a systemd unit, or one made for it) to freeze it", (int)pid, cg);
        return -ENOENT;
    }
    char file[2048];
    snprintf(file, sizeof file, "%s/cgroup.freeze", dir);
    int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        snprintf(msg, n, "cannot open %s: %s%s", file, strerror(e),
                 e == ENOENT ? " (the cgroup v2 freezer needs Linux >= 5.2)" : e == EACCES ? " (needs root)" : "");
        return e == ENOENT ? -ENOTSUP : -e;
    }
    ssize_t w = write(fd, freeze ? "1" : "0", 1);
    int e = errno;
    close(fd);
    if (w != 1) {
        snprintf(msg, n, "cannot write %s: %s", file, strerror(e));
        return -e;
    }
    snprintf(msg, n, "%s cgroup %s", freeze ? "froze" : "thawed", dir);
    return 0;
}
