/* engine_sys.c: the actuators that touch the machine directly: renice,
 * cgroup limits (v2 unified mount if it has the controller, else v1),
 * sysctl through /proc/sys, and cleaning a directory without following
 * symlinks or leaving it; plus the per-process readings of /proc the
 * resource rules use. Each returns 0 or -errno with a message. */
#include "heal/engine_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- /proc readings ------------------------------------------------------------- */

int eng_sys_proc(pid_t pid, uint64_t *ticks, double *rss, double *threads, double *fds)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (core_read_file(path, buf, sizeof buf) <= 0)
        return -ESRCH;
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    long nth = 0;
    /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15)
     * cutime cstime priority nice num_threads(20) */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %ld", &ut, &st,
                     &nth) != 3)
        return -EINVAL;
    *ticks = ut + st;
    *threads = (double)nth;
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    long pages = 0, res = 0;
    if (core_read_file(path, buf, sizeof buf) <= 0 || sscanf(buf, "%ld %ld", &pages, &res) != 2)
        return -ESRCH;
    *rss = (double)res * (double)sysconf(_SC_PAGESIZE);
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    if (d) {
        for (struct dirent *de; (de = readdir(d));)
            n += de->d_name[0] != '.';
        closedir(d);
    }
    *fds = d ? (double)n : NAN;
    return 0;
}

/* ---- renice ----------------------------------------------------------------------- */

/* The kernel bridge takes "nice <pid> <delta>": a delta RELATIVE to each
 * thread's nice value (clamped to -20..19 per thread), bounded by the
 * module's nice_delta_min..max. The action asks for an ABSOLUTE nice, so
 * the delta is the target minus the process's current nice (its main
 * thread's, as getpriority() reports it). Threads that had another nice keep
 * their offset, as with the module's own renice of all threads. 0 done,
 * 1 nothing to do (already there), -errno (reason in why) to fall back. */
static int renice_device(const char *device, pid_t pid, int nice, char *why, size_t n)
{
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)pid);
    if (cur == -1 && errno) {
        snprintf(why, n, "getpriority: %s", strerror(errno));
        return -errno;
    }
    int delta = nice - cur;
    if (!delta)
        return 1;
    int fd = open(device, O_WRONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        snprintf(why, n, "%s: %s", device, strerror(e));
        return -e;
    }
    char cmd[64];
    int len = snprintf(cmd, sizeof cmd, "nice %d %d\n", (int)pid, delta);
    ssize_t w = write(fd, cmd, (size_t)len);
    int e = w < 0 ? errno : (w == len ? 0 : EIO);
    close(fd);
    if (e) {
        snprintf(why, n, "%s: nice %d %d: %s", device, (int)pid, delta, strerror(e));
        return -e;
    }
    return 0;
}

int eng_sys_renice(pid_t pid, int nice, const char *device, char *msg, size_t n)
{
    char path[64];
    char why[200] = "";
    if (device) {
        int r = renice_device(device, pid, nice, why, sizeof why);
        if (r >= 0) {
            if (getpgid(pid) == pid) /* a supervised service leads its group: its children too */
                setpriority(PRIO_PGRP, (id_t)pid, nice);
            snprintf(msg, n, "pid %d: nice %d via %s%s", (int)pid, nice, device,
                     r == 1 ? " (already at that value)" : "");
            return 0;
        }
        if (r == -ESRCH) {
            snprintf(msg, n, "pid %d: %s", (int)pid, why);
            return r;
        }
        log_info("heal: renice via the kernel bridge failed (%s): using setpriority()", why);
    }
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(msg, n, "pid %d: %s", (int)pid, strerror(errno));
        return -errno;
    }
    int done = 0, rc = 0;
    for (struct dirent *de; (de = readdir(d));) {
        int tid = atoi(de->d_name);
        if (tid <= 0)
            continue;
        if (setpriority(PRIO_PROCESS, (id_t)tid, nice)) {
            rc = -errno;
            snprintf(msg, n, "setpriority(%d, %d): %s%s", tid, nice, strerror(errno),
                     errno == EACCES || errno == EPERM ? " (lowering the nice value needs root)" : "");
        } else {
            done++;
        }
    }
    closedir(d);
    if (getpgid(pid) == pid) /* a supervised service leads its group: its children too */
        setpriority(PRIO_PGRP, (id_t)pid, nice);
    if (rc)
        return rc;
    snprintf(msg, n, "pid %d: nice %d on %d thread(s) via setpriority()%s%s%s", (int)pid, nice, done,
             why[0] ? " (kernel bridge: " : "", why, why[0] ? ")" : "");
    return 0;
}

/* ---- cgroups ------------------------------------------------------------------------ */

static int write_str(const char *path, const char *text, char *msg, size_t n)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || write(fd, text, strlen(text)) < 0) {
        int e = errno;
        snprintf(msg, n, "cannot write '%s' to %s: %s%s", text, path, strerror(e),
                 e == EACCES || e == EPERM || e == EROFS ? " (cgroup limits need root)" : "");
        if (fd >= 0)
            close(fd);
        return -e;
    }
    close(fd);
    return 0;
}

static bool has_controller(const char *base, const char *ctl)
{
    char path[256], buf[512];
    snprintf(path, sizeof path, "%s/cgroup.controllers", base);
    if (core_read_file(path, buf, sizeof buf) <= 0)
        return false;
    for (char *save = NULL, *w = strtok_r(buf, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
        if (!strcmp(w, ctl))
            return true;
    return false;
}

/* Makes <base>/ippoc/<service>; v2 also enables the controller on the way. */
static int make_cgroup(const char *base, bool v2, const char *ctl, const char *service, char *dir, size_t dn,
                       char *msg, size_t n)
{
    char path[CORE_PATH_MAX], plus[32];
    snprintf(plus, sizeof plus, "+%s", ctl);
    if (v2) {
        snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
        write_str(path, plus, msg, n); /* may already be on */
    }
    snprintf(path, sizeof path, "%s/ippoc", base);
    if (mkdir(path, 0755) && errno != EEXIST) {
        snprintf(msg, n, "mkdir %s: %s%s", path, strerror(errno), errno == EACCES || errno == EROFS ? " (needs root)" : "");
        return -errno;
    }
    if (v2) {
        snprintf(path, sizeof path, "%s/ippoc/cgroup.subtree_control", base);
        int rc = write_str(path, plus, msg, n);
        if (rc)
            return rc;
    }
    snprintf(dir, dn, "%s/ippoc/%s", base, service);
    if (mkdir(dir, 0755) && errno != EEXIST) {
        snprintf(msg, n, "mkdir %s: %s", dir, strerror(errno));
        return -errno;
    }
    return 0;
}

/* Moves pid and every process of its group (when it leads one) into dir. */
static int move_procs(const char *dir, pid_t pid, char *msg, size_t n)
{
    char path[CORE_PATH_MAX + 16], num[32];
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    snprintf(num, sizeof num, "%d", (int)pid);
    int rc = write_str(path, num, msg, n);
    if (rc || getpgid(pid) != pid)
        return rc;
    DIR *d = opendir("/proc");
    for (struct dirent *de; d && (de = readdir(d));) {
        int p = atoi(de->d_name);
        if (p > 0 && p != pid && getpgid(p) == pid) {
            snprintf(num, sizeof num, "%d", p);
            write_str(path, num, msg, n);
        }
    }
    if (d)
        closedir(d);
    return 0;
}

int eng_sys_limit(const char *service, pid_t pid, bool memory, uint64_t bytes, double cpu_percent, char *msg,
                  size_t n)
{
    const char *ctl = memory ? "memory" : "cpu";
    const char *v2bases[] = {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"};
    char base[CORE_PATH_MAX] = "", dir[CORE_PATH_MAX], path[CORE_PATH_MAX + 32], val[64];
    bool v2 = false;
    for (int i = 0; i < 2 && !v2; i++)
        if (has_controller(v2bases[i], ctl)) {
            snprintf(base, sizeof base, "%s", v2bases[i]);
            v2 = true;
        }
    if (!v2) {
        snprintf(base, sizeof base, "/sys/fs/cgroup/%s", ctl);
        struct stat st;
        if (stat(base, &st)) {
            snprintf(msg, n, "no cgroup %s controller (neither v2 nor v1 at %s)", ctl, base);
            return -ENOTSUP;
        }
    }
    int rc = make_cgroup(base, v2, ctl, service, dir, sizeof dir, msg, n);
    if (rc)
        return rc;
    if (memory) {
        snprintf(path, sizeof path, "%s/%s", dir, v2 ? "memory.max" : "memory.limit_in_bytes");
        snprintf(val, sizeof val, "%llu", (unsigned long long)bytes);
        rc = write_str(path, val, msg, n);
    } else {
        long quota = (long)(cpu_percent * 1000.0); /* of a 100 ms period */
        if (v2) {
            snprintf(path, sizeof path, "%s/cpu.max", dir);
            snprintf(val, sizeof val, "%ld 100000", quota);
            rc = write_str(path, val, msg, n);
        } else {
            snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
            rc = write_str(path, "100000", msg, n);
            snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
            snprintf(val, sizeof val, "%ld", quota);
            if (!rc)
                rc = write_str(path, val, msg, n);
        }
    }
    if (!rc)
        rc = move_procs(dir, pid, msg, n);
    if (!rc)
        snprintf(msg, n, "%s limit %s in %s (cgroup %s)", ctl, val, dir, v2 ? "v2" : "v1");
    return rc;
}

/* ---- sysctl --------------------------------------------------------------------------- */

int eng_sys_sysctl(const char *key, const char *value, char *old, size_t oldn, char *msg, size_t n)
{
    char path[300];
    int w = snprintf(path, sizeof path, "/proc/sys/");
    for (const char *k = key; *k && w < (int)sizeof path - 1; k++) {
        if (*k == '/' || (k[0] == '.' && k[1] == '.')) {
            snprintf(msg, n, "sysctl: bad key '%s'", key);
            return -EINVAL;
        }
        path[w++] = *k == '.' ? '/' : *k;
    }
    path[w] = 0;
    ssize_t r = core_read_file(path, old, oldn);
    if (r < 0) {
        snprintf(msg, n, "sysctl %s: %s", key, strerror((int)-r));
        return (int)r;
    }
    old[strcspn(old, "\n")] = 0;
    int rc = write_str(path, value, msg, n);
    if (rc)
        return rc;
    snprintf(msg, n, "%s: %s -> %s (old value kept to revert)", key, old, value);
    return 0;
}

/* ---- clean ------------------------------------------------------------------------------- */

int eng_sys_clean(const char *dir, int64_t older_ms, uint64_t larger, int64_t now_ms, int *removed,
                  uint64_t *bytes, char *msg, size_t n)
{
    *removed = 0;
    *bytes = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(msg, n, "clean %s: %s", dir, strerror(errno));
        return -errno;
    }
    int lfd = dup(dfd);
    DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
    if (!d) {
        int e = errno;
        if (lfd >= 0)
            close(lfd);
        close(dfd);
        snprintf(msg, n, "clean %s: %s", dir, strerror(e));
        return -e;
    }
    int failed = 0;
    for (struct dirent *de; (de = readdir(d));) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
            fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
            continue; /* only regular files right here: no symlinks, no subdirectories */
        int64_t age = now_ms - ((int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
        if ((older_ms > 0 && age < older_ms) || (larger > 0 && (uint64_t)st.st_size <= larger))
            continue;
        if (unlinkat(dfd, de->d_name, 0)) {
            failed++;
            continue;
        }
        (*removed)++;
        *bytes += (uint64_t)st.st_size;
    }
    closedir(d);
    close(dfd);
    snprintf(msg, n, "%s: removed %d file(s), %llu bytes%s", dir, *removed, (unsigned long long)*bytes,
             failed ? " (some could not be removed)" : "");
    return 0;
}
