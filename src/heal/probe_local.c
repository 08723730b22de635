/* probe_local.c: the probes that look at this machine without a network:
 * PROCESS (kill(pid, 0) plus the state letter of /proc/PID/stat, or a /proc
 * scan by comm), FILE (uv_fs_stat, then SHA-256 in the thread pool), FS
 * (uv_fs_statfs) and METRIC (the last value of a series in memory). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <sodium.h>

#include "heal/probe_int.h"

/* ---- PROCESS ------------------------------------------------------------------- */

/* The state letter of /proc/PID/stat ('R', 'S', 'Z', ...), or 0 if unreadable. */
static char proc_state(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (core_read_file(path, buf, sizeof buf) <= 0)
        return 0;
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' ? rp[2] : 0;
}

static pid_t find_comm(const char *comm)
{
    DIR *d = opendir("/proc");
    if (!d)
        return -errno;
    pid_t found = 0;
    struct dirent *de;
    char path[300], buf[64];
    while (!found && (de = readdir(d))) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        snprintf(path, sizeof path, "/proc/%s/comm", de->d_name);
        if (core_read_file(path, buf, sizeof buf) <= 0)
            continue;
        buf[strcspn(buf, "\n")] = 0;
        if (strcmp(buf, comm) != 0)
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        char st = proc_state(pid);
        if (st && st != 'Z' && st != 'X')
            found = pid;
    }
    closedir(d);
    return found;
}

int probe_process_init(heal_probe *p, char *err, size_t errlen)
{
    const char *comm = p->cfg.process.comm;
    if (!p->cfg.process.pid_fn && (!comm || !comm[0])) {
        snprintf(err, errlen, "process probe: needs a pid callback or a comm name");
        return -EINVAL;
    }
    if (!p->cfg.process.pid_fn && strlen(comm) > 15) {
        snprintf(err, errlen, "process probe: comm '%s' longer than the kernel's 15 characters", comm);
        return -EINVAL;
    }
    return 0;
}

void probe_process_start(heal_probe *p)
{
    probe_outcome o = {.latency_ms = -1};
    const char *comm = p->cfg.process.comm;
    if (!p->cfg.process.pid_fn) {
        pid_t pid = find_comm(comm);
        o.ok = pid > 0;
        o.code = pid > 0 ? 0 : pid < 0 ? pid : -ESRCH;
        if (pid > 0)
            snprintf(o.msg, sizeof o.msg, "process %s running (pid %d)", comm, (int)pid);
        else if (pid < 0)
            snprintf(o.msg, sizeof o.msg, "/proc: %s", strerror((int)-pid));
        else
            snprintf(o.msg, sizeof o.msg, "no process named %s", comm);
        probe_complete(p, &o);
        return;
    }
    pid_t pid = p->cfg.process.pid_fn(p->cfg.process.pid_ud);
    if (pid <= 0) {
        o.code = -ESRCH;
        snprintf(o.msg, sizeof o.msg, "no pid");
    } else if (kill(pid, 0) < 0 && errno != EPERM) {
        o.code = -errno;
        snprintf(o.msg, sizeof o.msg, "process %d not running: %s", (int)pid, strerror(errno));
    } else {
        char st = proc_state(pid);
        if (st == 'Z' || st == 'X') {
            o.code = -ESRCH;
            snprintf(o.msg, sizeof o.msg, "process %d is a zombie", (int)pid);
        } else {
            o.ok = true;
            snprintf(o.msg, sizeof o.msg, "process %d running", (int)pid);
        }
    }
    probe_complete(p, &o);
}

/* ---- FILE ------------------------------------------------------------------------ */

typedef struct file_attempt {
    probe_attempt base;
    uv_fs_t fs;
    uv_work_t work;
    bool in_fs, in_work;
    atomic_bool cancel;
    char *path;  /* copy: the worker must not read the probe */
    int hash_err; /* worker: 0 or -errno */
    unsigned char digest[32];
} file_attempt;

static void file_free(file_attempt *a)
{
    free(a->path);
    free(a);
}

static void file_abort(probe_attempt *base)
{
    file_attempt *a = (file_attempt *)base;
    atomic_store(&a->cancel, true);
    if (a->in_fs)
        uv_cancel((uv_req_t *)&a->fs);
    if (a->in_work)
        uv_cancel((uv_req_t *)&a->work);
    /* The callback comes either way (UV_ECANCELED or done) and frees. */
}

static void hash_work(uv_work_t *w)
{
    file_attempt *a = w->data;
    int fd = open(a->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        a->hash_err = -errno;
        return;
    }
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[64 * 1024];
    for (;;) {
        if (atomic_load(&a->cancel)) {
            a->hash_err = -ECANCELED;
            break;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            a->hash_err = -errno;
            break;
        }
        if (n == 0)
            break;
        crypto_hash_sha256_update(&st, buf, (unsigned long long)n);
    }
    close(fd);
    crypto_hash_sha256_final(&st, a->digest);
}

static void hash_done(uv_work_t *w, int status)
{
    file_attempt *a = w->data;
    a->in_work = false;
    if (a->base.probe) {
        probe_outcome o = {.latency_ms = -1};
        if (status < 0 || a->hash_err < 0) {
            o.code = status < 0 ? status : a->hash_err;
            snprintf(o.msg, sizeof o.msg, "read %s: %s", a->path, probe_uv_err(o.code));
        } else if (memcmp(a->digest, a->base.probe->sha, 32) != 0) {
            char hex[65];
            sodium_bin2hex(hex, sizeof hex, a->digest, 32);
            o.code = -EBADMSG;
            snprintf(o.msg, sizeof o.msg, "%s: sha256 %s, expected %s", a->path, hex,
                     a->base.probe->cfg.file.sha256);
        } else {
            o.ok = true;
            snprintf(o.msg, sizeof o.msg, "%s: sha256 matches", a->path);
        }
        probe_attempt_report(&a->base, &o);
    }
    file_free(a);
}

static void on_file_stat(uv_fs_t *req)
{
    file_attempt *a = req->data;
    a->in_fs = false;
    heal_probe *p = a->base.probe;
    if (!p) {
        uv_fs_req_cleanup(req);
        file_free(a);
        return;
    }
    const heal_probe_config *c = &p->cfg;
    probe_outcome o = {.latency_ms = -1};
    int64_t res = req->result;
    uv_stat_t sb = req->statbuf;
    uv_fs_req_cleanup(req);
    if (res < 0) {
        o.code = (int)res;
        if (res == UV_ENOENT)
            snprintf(o.msg, sizeof o.msg, "%s does not exist", a->path);
        else
            snprintf(o.msg, sizeof o.msg, "stat %s: %s", a->path, probe_uv_err((int)res));
        goto report;
    }
    int64_t age = core_now_ms() - ((int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000);
    if (age < 0)
        age = 0;
    if (c->file.max_age_ms > 0 && age >= c->file.max_age_ms) {
        char a1[32], a2[32];
        core_format_duration(age, a1, sizeof a1);
        core_format_duration(c->file.max_age_ms, a2, sizeof a2);
        o.code = -ESTALE;
        snprintf(o.msg, sizeof o.msg, "%s is %s old, max %s", a->path, a1, a2);
        goto report;
    }
    if (c->file.max_size > 0 && sb.st_size >= c->file.max_size) {
        o.code = -EFBIG;
        snprintf(o.msg, sizeof o.msg, "%s is %llu bytes, max %llu", a->path,
                 (unsigned long long)sb.st_size, (unsigned long long)c->file.max_size);
        goto report;
    }
    if (c->file.sha256 && c->file.sha256[0]) {
        a->work.data = a;
        int rc = uv_queue_work(p->loop, &a->work, hash_work, hash_done);
        if (rc == 0) {
            a->in_work = true;
            return;
        }
        o.code = rc;
        snprintf(o.msg, sizeof o.msg, "queue work: %s", probe_uv_err(rc));
        goto report;
    }
    o.ok = true;
    snprintf(o.msg, sizeof o.msg, "%s exists, %llu bytes, %lld ms old", a->path,
             (unsigned long long)sb.st_size, (long long)age);
report:
    probe_attempt_report(&a->base, &o);
    file_free(a);
}

int probe_file_init(heal_probe *p, char *err, size_t errlen)
{
    const heal_probe_config *c = &p->cfg;
    if (!c->file.path || !c->file.path[0]) {
        snprintf(err, errlen, "file probe: no path");
        return -EINVAL;
    }
    if (c->file.max_age_ms < 0) {
        snprintf(err, errlen, "file probe: max age must be >= 0");
        return -EINVAL;
    }
    if (c->file.sha256 && c->file.sha256[0]) {
        size_t bin_len = 0;
        if (strlen(c->file.sha256) != 64 ||
            sodium_hex2bin(p->sha, sizeof p->sha, c->file.sha256, 64, NULL, &bin_len, NULL) != 0 ||
            bin_len != 32) {
            snprintf(err, errlen, "file probe: sha256 '%s' is not 64 hex digits", c->file.sha256);
            return -EINVAL;
        }
    }
    return 0;
}

void probe_file_start(heal_probe *p)
{
    probe_outcome o = {.code = -ENOMEM, .latency_ms = -1};
    file_attempt *a = calloc(1, sizeof *a);
    if (a && !(a->path = strdup(p->cfg.file.path))) {
        free(a);
        a = NULL;
    }
    if (!a) {
        snprintf(o.msg, sizeof o.msg, "out of memory");
        probe_complete(p, &o);
        return;
    }
    a->base.probe = p;
    a->base.abort = file_abort;
    a->fs.data = a;
    int rc = uv_fs_stat(p->loop, &a->fs, a->path, on_file_stat);
    if (rc < 0) {
        file_free(a);
        o.code = rc;
        snprintf(o.msg, sizeof o.msg, "stat %s: %s", p->cfg.file.path, probe_uv_err(rc));
        probe_complete(p, &o);
        return;
    }
    a->in_fs = true;
    p->cur = &a->base;
}

/* ---- FS ------------------------------------------------------------------------------ */

typedef struct fs_attempt {
    probe_attempt base;
    uv_fs_t fs;
} fs_attempt;

static void fs_abort(probe_attempt *base)
{
    uv_cancel((uv_req_t *)&((fs_attempt *)base)->fs); /* the callback frees */
}

static void on_statfs(uv_fs_t *req)
{
    fs_attempt *a = req->data;
    heal_probe *p = a->base.probe;
    if (p) {
        const heal_probe_config *c = &p->cfg;
        probe_outcome o = {.latency_ms = -1};
        if (req->result < 0) {
            o.code = (int)req->result;
            snprintf(o.msg, sizeof o.msg, "statfs %s: %s", c->fs.path, probe_uv_err((int)req->result));
        } else {
            const uv_statfs_t *s = req->ptr;
            /* As df: used / (used + available to unprivileged users). */
            double used = (double)(s->f_blocks - s->f_bfree);
            double denom = used + (double)s->f_bavail;
            double pct = denom > 0 ? used * 100.0 / denom : 0;
            double ipct = s->f_files > 0 ? (double)(s->f_files - s->f_ffree) * 100.0 / (double)s->f_files : 0;
            if (c->fs.max_used_percent > 0 && pct > c->fs.max_used_percent) {
                o.code = -ENOSPC;
                snprintf(o.msg, sizeof o.msg, "%s: %.1f%% used, max %.1f%%", c->fs.path, pct,
                         c->fs.max_used_percent);
            } else if (c->fs.max_inodes_percent > 0 && s->f_files > 0 && ipct > c->fs.max_inodes_percent) {
                o.code = -ENOSPC;
                snprintf(o.msg, sizeof o.msg, "%s: %.1f%% inodes used, max %.1f%%", c->fs.path, ipct,
                         c->fs.max_inodes_percent);
            } else {
                o.ok = true;
                if (s->f_files > 0)
                    snprintf(o.msg, sizeof o.msg, "%s: %.1f%% used, %.1f%% inodes used", c->fs.path,
                             pct, ipct);
                else
                    snprintf(o.msg, sizeof o.msg, "%s: %.1f%% used, no inode count", c->fs.path, pct);
            }
        }
        probe_attempt_report(&a->base, &o);
    }
    uv_fs_req_cleanup(req);
    free(a);
}

int probe_fs_init(heal_probe *p, char *err, size_t errlen)
{
    const heal_probe_config *c = &p->cfg;
    if (!c->fs.path || !c->fs.path[0]) {
        snprintf(err, errlen, "fs probe: no path");
        return -EINVAL;
    }
    if (c->fs.max_used_percent < 0 || c->fs.max_used_percent > 100 || c->fs.max_inodes_percent < 0 ||
        c->fs.max_inodes_percent > 100) {
        snprintf(err, errlen, "fs probe: percentages must be within 0..100");
        return -EINVAL;
    }
    if (c->fs.max_used_percent == 0 && c->fs.max_inodes_percent == 0) {
        snprintf(err, errlen, "fs probe: set a max used percent or a max inodes percent");
        return -EINVAL;
    }
    return 0;
}

void probe_fs_start(heal_probe *p)
{
    probe_outcome o = {.code = -ENOMEM, .latency_ms = -1};
    fs_attempt *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(o.msg, sizeof o.msg, "out of memory");
        probe_complete(p, &o);
        return;
    }
    a->base.probe = p;
    a->base.abort = fs_abort;
    a->fs.data = a;
    int rc = uv_fs_statfs(p->loop, &a->fs, p->cfg.fs.path, on_statfs);
    if (rc < 0) {
        free(a);
        o.code = rc;
        snprintf(o.msg, sizeof o.msg, "statfs %s: %s", p->cfg.fs.path, probe_uv_err(rc));
        probe_complete(p, &o);
        return;
    }
    p->cur = &a->base;
}

/* ---- METRIC -------------------------------------------------------------------------- */

static bool op_holds(heal_probe_op op, double v, double t)
{
    switch (op) {
    case HEAL_OP_GT: return v > t;
    case HEAL_OP_GE: return v >= t;
    case HEAL_OP_LT: return v < t;
    case HEAL_OP_LE: return v <= t;
    case HEAL_OP_EQ: return v == t;
    case HEAL_OP_NE: return v != t;
    }
    return false;
}

int probe_metric_init(heal_probe *p, char *err, size_t errlen)
{
    const heal_probe_config *c = &p->cfg;
    if (!c->metric.mem) {
        snprintf(err, errlen, "metric probe: no memory store");
        return -EINVAL;
    }
    if (!c->metric.name || !c->metric.name[0]) {
        snprintf(err, errlen, "metric probe: no metric name");
        return -EINVAL;
    }
    if ((unsigned)c->metric.op > HEAL_OP_NE || isnan(c->metric.threshold) || c->metric.max_age_ms < 0) {
        snprintf(err, errlen, "metric probe: bad operator, threshold or max age");
        return -EINVAL;
    }
    return 0;
}

void probe_metric_start(heal_probe *p)
{
    const heal_probe_config *c = &p->cfg;
    probe_outcome o = {.latency_ms = -1};
    char label[700];
    snprintf(label, sizeof label, "%s%s%s%s", c->metric.name, c->metric.labels[0] ? "{" : "",
             c->metric.labels, c->metric.labels[0] ? "}" : "");
    if (p->metric_id < 0)
        p->metric_id = mem_series_find(c->metric.mem, c->metric.name, c->metric.labels);
    if (p->metric_id < 0) {
        o.code = -ENOENT;
        snprintf(o.msg, sizeof o.msg, "%s: no such series", label);
        probe_complete(p, &o);
        return;
    }
    double last;
    int64_t last_ts;
    int rc = mem_series_last(c->metric.mem, p->metric_id, &last, &last_ts);
    if (rc < 0) {
        o.code = rc;
        snprintf(o.msg, sizeof o.msg, "%s: %s", label, rc == -ENOENT ? "no such series" : strerror(-rc));
    } else if (isnan(last) || last_ts == 0) {
        o.code = -ENODATA;
        snprintf(o.msg, sizeof o.msg, "%s: no value yet", label);
    } else if (c->metric.max_age_ms > 0 && core_now_ms() - last_ts > c->metric.max_age_ms) {
        o.code = -ESTALE;
        snprintf(o.msg, sizeof o.msg, "%s: last value %lld ms old, max %lld ms", label,
                 (long long)(core_now_ms() - last_ts), (long long)c->metric.max_age_ms);
    } else if (op_holds(c->metric.op, last, c->metric.threshold)) {
        snprintf(o.msg, sizeof o.msg, "%s = %g %s %g", label, last, heal_probe_op_name(c->metric.op),
                 c->metric.threshold);
    } else {
        o.ok = true;
        snprintf(o.msg, sizeof o.msg, "%s = %g, not %s %g", label, last,
                 heal_probe_op_name(c->metric.op), c->metric.threshold);
    }
    probe_complete(p, &o);
}
