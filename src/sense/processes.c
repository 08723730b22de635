/* processes.c: the small whole-system and self groups:
 *  - fds: /proc/sys/fs/file-nr: file handles allocated, the maximum, and
 *    the used percent;
 *  - processes: how many processes (numeric entries of <proc>, one readdir
 *    of a kept-open directory; when the apps group listed them on the
 *    previous second, its count is used instead of a second listing) and threads (the "running/total" field of
 *    /proc/loadavg); running/blocked are in the cpu group;
 *  - self: ippocd's own cpu percent, resident memory, open fds and threads
 *    from <proc>/self.
 * Also the /proc/PID/stat parser shared with the watched-process group. */
#include "sense/sense_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>

int sn_parse_pid_stat(const char *buf, size_t n, sn_pidstat *o)
{
    const char *e = buf + n;
    const char *lp = memchr(buf, '(', n);
    const char *rp = NULL;
    for (const char *x = e - 1; x > buf; x--)
        if (*x == ')') {
            rp = x;
            break;
        }
    if (!lp || !rp || rp < lp)
        return -EINVAL;
    size_t cl = (size_t)(rp - lp - 1);
    if (cl >= sizeof o->comm)
        cl = sizeof o->comm - 1;
    memcpy(o->comm, lp + 1, cl);
    o->comm[cl] = 0;
    const char *q = sn_skip_ws(rp + 1, e);
    if (q >= e)
        return -EINVAL;
    o->state = *q++;
    /* fields 4.. ; idx counts from field 3 (state) = 0 */
    uint64_t v[22] = {0};
    int idx = 1;
    while (idx < 22) {
        bool ok;
        int64_t x = sn_i64(&q, e, &ok);
        if (!ok)
            return -EINVAL;
        v[idx++] = (uint64_t)x;
    }
    o->minflt = v[7];
    o->majflt = v[9];
    o->utime = v[11];
    o->stime = v[12];
    o->threads = v[17];
    o->starttime = v[19];
    o->vsize = v[20];
    o->rss_pages = v[21];
    return 0;
}

int sn_count_dir(DIR *d, bool numeric, int skip)
{
    if (!d)
        return -EBADF;
    rewinddir(d);
    int n = 0;
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d))) {
        const char *nm = de->d_name;
        if (skip >= 0 && atoi(nm) == skip && nm[0] >= '0' && nm[0] <= '9')
            continue;
        if (numeric ? (nm[0] >= '1' && nm[0] <= '9') : !(nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))))
            n++;
    }
    return errno ? -errno : n;
}

/* ---- fds ---------------------------------------------------------------------- */

typedef struct fds_priv {
    sn_file f;
    int ids[3];
} fds_priv;

static int fds_init(sense_t *s, sn_col *c)
{
    fds_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->f);
    p->ids[0] = p->ids[1] = p->ids[2] = -1;
    if (sn_file_set(&p->f, "%s/sys/fs/file-nr", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, "procfs");
    return 0;
}

static void fds_fini(sense_t *s, sn_col *c)
{
    fds_priv *p = c->priv;
    if (!p)
        return;
    sn_file_close(&p->f);
    free(p->f.path);
    free(p);
}

static int fds_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    fds_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    bool ok1, ok2, ok3;
    uint64_t alloc = sn_u64(&q, e, &ok1);
    sn_u64(&q, e, &ok2);
    uint64_t max = sn_u64(&q, e, &ok3);
    if (!ok1 || !ok3) {
        sn_unavailable(s, c, "%s: unexpected format", p->f.path);
        return -EINVAL;
    }
    sn_put_lazy(s, c, &p->ids[0], "fds.allocated", "", "", "file handles allocated system-wide",
                MEM_GAUGE, (double)alloc);
    sn_put_lazy(s, c, &p->ids[1], "fds.max", "", "", "system-wide file handle limit (fs.file-max)",
                MEM_GAUGE, (double)max);
    if (max)
        sn_put_lazy(s, c, &p->ids[2], "fds.used_percent", "", "percent",
                    "file handles allocated as a share of the limit", MEM_GAUGE,
                    (double)alloc * 100.0 / (double)max);
    return 0;
}

const sn_module sn_mod_fds = {
    .name = "fds", .init = fds_init, .collect = fds_collect, .fini = fds_fini,
};

/* ---- processes ---------------------------------------------------------------------- */

typedef struct procs_priv {
    DIR *dir;
    sn_file load;
    int ids[2];
    int kids[2]; /* source="kernel" */
} procs_priv;

static int procs_init(sense_t *s, sn_col *c)
{
    procs_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->load);
    p->ids[0] = p->ids[1] = -1;
    p->kids[0] = p->kids[1] = -1;
    if (sn_file_set(&p->load, "%s/loadavg", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, "procfs");
    return 0;
}

static void procs_fini(sense_t *s, sn_col *c)
{
    procs_priv *p = c->priv;
    if (!p)
        return;
    if (p->dir)
        closedir(p->dir);
    sn_file_close(&p->load);
    free(p->load.path);
    free(p);
}

static int procs_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    procs_priv *p = c->priv;
    const sn_kb_snap *k = sn_kb_tick(s);
    if (k) { /* every process and thread, kernel threads included, as procfs counts them */
        sn_put_lazy(s, c, &p->kids[0], "processes.count", "source=\"kernel\"", "", "processes",
                    MEM_GAUGE, (double)k->processes);
        sn_put_lazy(s, c, &p->kids[1], "processes.threads", "source=\"kernel\"", "",
                    "threads (kernel scheduling entities)", MEM_GAUGE, (double)k->threads);
        return 0;
    }
    int np = s->apps_npids; /* apps listed <proc> on the previous second: no second listing */
    if (!s->apps_scan_ms || now_ms - s->apps_scan_ms > 1500) {
        if (!p->dir && !(p->dir = opendir(s->proc))) {
            int e = errno; /* sn_unavailable logs */
            sn_unavailable(s, c, "%s: %s", s->proc, strerror(e));
            return -e;
        }
        np = sn_count_dir(p->dir, true, -1);
        if (np < 0) {
            closedir(p->dir);
            p->dir = NULL;
            sn_unavailable(s, c, "%s: %s", s->proc, strerror(-np));
            return np;
        }
    }
    sn_put_lazy(s, c, &p->ids[0], "processes.count", "", "", "processes", MEM_GAUGE, np);
    ssize_t n = sn_file_read(&p->load, &s->buf);
    if (n > 0) {
        const char *slash = memchr(s->buf.p, '/', (size_t)n);
        if (slash) {
            const char *q = slash + 1;
            bool ok;
            uint64_t th = sn_u64(&q, s->buf.p + n, &ok);
            if (ok)
                sn_put_lazy(s, c, &p->ids[1], "processes.threads", "", "",
                            "threads (kernel scheduling entities)", MEM_GAUGE, (double)th);
        }
    }
    return 0;
}

const sn_module sn_mod_processes = {
    .name = "processes", .init = procs_init, .collect = procs_collect, .fini = procs_fini,
};

/* ---- self ------------------------------------------------------------------------------ */

typedef struct self_priv {
    sn_file stat;
    DIR *fd;
    char fdpath[CORE_PATH_MAX + 16];
    uint64_t prev_ticks;
    uint32_t gen;
    int ids[4];
    int fd_mode;     /* 0: not known yet, SELF_FD_STAT, or SELF_FD_DENTS */
    int fd_tries;
} self_priv;

/* Counting our own fds: apps keeps up to 256 procfs files open, so listing
 * <proc>/self/fd costs ~150 us a run; on procfs of Linux >= 6.2 the size of
 * the directory is the count (checked against the listing first). */
enum { SELF_FD_STAT = 1, SELF_FD_DENTS = 2 };

static int self_count_fds(self_priv *p)
{
    int dfd = dirfd(p->fd);
    struct stat st;
    if (p->fd_mode == SELF_FD_STAT && fstat(dfd, &st) == 0 && st.st_size > 0)
        return (int)(st.st_size > INT32_MAX ? INT32_MAX : st.st_size - 1);
    int n = sn_count_dir(p->fd, false, dfd);
    if (!p->fd_mode && n > 0) {
        struct statfs sf;
        if (fstatfs(dfd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
            p->fd_mode = SELF_FD_DENTS;
        else if (fstat(dfd, &st) == 0 && st.st_size - 1 == n)
            p->fd_mode = SELF_FD_STAT;
        else if (++p->fd_tries >= 3) /* other threads open files meanwhile */
            p->fd_mode = SELF_FD_DENTS;
    }
    return n;
}

static int self_init(sense_t *s, sn_col *c)
{
    self_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->stat);
    for (int i = 0; i < 4; i++)
        p->ids[i] = -1;
    p->gen = UINT32_MAX;
    snprintf(p->fdpath, sizeof p->fdpath, "%s/self/fd", s->proc);
    if (sn_file_set(&p->stat, "%s/self/stat", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, "procfs");
    return 0;
}

static void self_fini(sense_t *s, sn_col *c)
{
    self_priv *p = c->priv;
    if (!p)
        return;
    if (p->fd)
        closedir(p->fd);
    sn_file_close(&p->stat);
    free(p->stat.path);
    free(p);
}

static int self_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    self_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->stat, &s->buf);
    sn_pidstat st;
    if (n < 0 || sn_parse_pid_stat(s->buf.p, (size_t)n, &st) < 0) {
        sn_unavailable(s, c, "%s: %s", p->stat.path, n < 0 ? strerror((int)-n) : "unexpected format");
        return n < 0 ? (int)n : -EINVAL;
    }
    uint64_t ticks = st.utime + st.stime;
    double r = sn_rate(ticks, &p->prev_ticks, p->gen == c->gen - 1, c->dt);
    p->gen = c->gen;
    sn_put_lazy(s, c, &p->ids[0], "self.cpu_percent", "", "percent",
                "cpu used by ippocd (100 = one core)", MEM_RATE, r * 100.0 / (double)s->clk_tck);
    sn_put_lazy(s, c, &p->ids[1], "self.rss_bytes", "", "bytes", "resident memory of ippocd",
                MEM_GAUGE, (double)st.rss_pages * (double)s->page_size);
    sn_put_lazy(s, c, &p->ids[2], "self.threads", "", "", "threads of ippocd", MEM_GAUGE,
                (double)st.threads);
    if (!p->fd)
        p->fd = opendir(p->fdpath);
    /* the directory's own fd is not counted */
    int nfd = p->fd ? self_count_fds(p) : -1;
    if (nfd >= 0)
        sn_put_lazy(s, c, &p->ids[3], "self.fds", "", "", "open file descriptors of ippocd",
                    MEM_GAUGE, nfd);
    return 0;
}

const sn_module sn_mod_self = {
    .name = "self", .init = self_init, .collect = self_collect, .fini = self_fini,
};
