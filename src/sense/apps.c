/* apps.c: the `apps` group, like Netdata's apps.plugin: every process on the
 * machine grouped into applications, with per-application resource use.
 *
 * Groups: by process name (comm in /proc/PID/stat), so the workers of one
 * program merge; kernel threads (PF_KTHREAD, or children of kthreadd, pid 2)
 * are one app "kernel". At most APPS_MAX named groups; further names go to
 * "other" (a user process named "kernel" or "other" joins that group). Names
 * keep printable ASCII only (anything else becomes '_').
 *
 * Per app (label app="NAME"): apps.cpu_percent, cpu_user_percent,
 * cpu_system_percent (100 = one core), minor_faults_per_second,
 * major_faults_per_second, read_bytes_per_second, write_bytes_per_second
 * (storage IO from /proc/PID/io), memory_rss_bytes, processes, threads and
 * fds (not counted for kernel threads). No swap: it needs /proc/PID/status,
 * which would cost as much again.
 *
 * Rates come from each pid's previous reading (a table sorted by pid, keyed
 * by pid + start time, so a reused pid starts afresh), summed per app. A new
 * pid only primes; a pid that exits takes its last interval with it (short
 * lived processes are undercounted); a per-pid counter going backwards counts
 * 0, so an app's rate is never negative.
 *
 * No padding: an app gets series once it was seen in two consecutive runs
 * and has resident memory or used cpu or IO (kernel: always); each rate
 * series starts at its first non-zero value. When an app's last process is
 * gone its series get one 0, then nothing; the slot is freed after
 * APPS_EVICT_RUNS runs. Unreadable io / fd files (other users' processes
 * without privilege) are skipped quietly per pid; the note says so once.
 *
 * Cost: one getdents64 walk of <proc>, then per pid a pread of its stat (and
 * io) file kept open - at most APPS_KEEP_FDS files and RLIMIT_NOFILE / 4,
 * io only within half of that (each also pins a page of kernel buffer) - or
 * else openat(<proc fd>, "PID/stat") + read + close. A kept file of an exited
 * pid reads ESRCH and is reopened by path. Open fds: one fstatat of PID/fd
 * where the kernel reports the count as its size (Linux >= 6.2, checked on
 * <proc>/self/fd), else a getdents64 of it (no stat per entry), then done
 * every APPS_FD_EVERY runs per pid (staggered). A pid whose stat did not
 * change at all (ticks, faults) did not run, or barely: its io and fds are
 * not read, it adds 0 IO and its last fd count, and it is re-read every
 * APPS_IDLE_REREAD runs (staggered), any IO then averaged over the span since
 * its previous io reading. Kernel threads (often half the pids) are read
 * every APPS_KTHREAD_EVERY runs only (staggered by pid), while their
 * /proc entry keeps its inode number (the getdents64 d_ino: a new task
 * under a reused pid gets a new inode, and is read at once); in between
 * each adds its thread count and the per-second cpu and fault rates of its
 * last span, so the "kernel" app's rates stay smooth and sum to the same.
 * Likewise a user process whose stat did not change in APPS_SLEEP_RUNS
 * reads in a row (it sleeps) is read every APPS_SLEEP_EVERY runs only; in
 * between it adds its last threads, resident memory and fds and no cpu, so
 * a sleeper that wakes up shows its cpu up to APPS_SLEEP_EVERY - 1 runs
 * late, all of it in the run that reads it. On a host with 2,000 sleeping
 * processes this is most of the collector's cost.
 * The steady state allocates nothing; the pid table grows only past the
 * most processes seen so far. */
#include "sense/sense_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define APPS_MAX 200          /* named groups; further names go to "other" */
#define APPS_EVICT_RUNS 60    /* runs without a process before a slot is freed */
#define APPS_DENTS 32768      /* getdents64 buffer */
#define APPS_KEEP_FDS 256     /* procfs files kept open at most (and <= RLIMIT_NOFILE / 4) */
#define APPS_FD_EVERY 10      /* runs between fd recounts when counting takes getdents64 */
#define APPS_IDLE_REREAD 10   /* runs between io/fd reads of a pid that did not run */
#define APPS_KTHREAD_EVERY 10 /* runs between stat reads of a kernel thread */
#define APPS_SLEEP_RUNS 3     /* reads without any change: the pid sleeps... */
#define APPS_SLEEP_EVERY 4    /* ...and its stat is read every this many runs */
#define APP_KERNEL 0
#define APP_OTHER 1
#define APP_NONE UINT16_MAX
#define APP_NAME 16           /* TASK_COMM_LEN: user comms are at most 15 bytes */
#define PF_KTHREAD_FLAG 0x00200000u

enum { A_CPU, A_CPU_USER, A_CPU_SYS, A_MINFLT, A_MAJFLT, A_READ, A_WRITE, /* rates */
       A_RSS, A_PROCS, A_THREADS, A_FDS, A_N };

static const struct {
    const char *name, *unit, *help;
    int kind;
} adefs[A_N] = {
    {"apps.cpu_percent", "percent", "cpu used by the application's processes (100 = one core)", MEM_RATE},
    {"apps.cpu_user_percent", "percent", "user-mode cpu of the application (100 = one core)", MEM_RATE},
    {"apps.cpu_system_percent", "percent", "kernel-mode cpu of the application (100 = one core)", MEM_RATE},
    {"apps.minor_faults_per_second", "1/s", "minor page faults of the application per second", MEM_RATE},
    {"apps.major_faults_per_second", "1/s", "major page faults (disk reads) of the application per second", MEM_RATE},
    {"apps.read_bytes_per_second", "bytes/s", "bytes the application read from storage per second", MEM_RATE},
    {"apps.write_bytes_per_second", "bytes/s", "bytes the application wrote to storage per second", MEM_RATE},
    {"apps.memory_rss_bytes", "bytes", "resident memory of the application's processes", MEM_GAUGE},
    {"apps.processes", "", "processes of the application", MEM_GAUGE},
    {"apps.threads", "", "threads of the application", MEM_GAUGE},
    {"apps.fds", "", "open file descriptors of the application", MEM_GAUGE},
};

/* per-pid flags */
enum { AP_IO_OK = 1, AP_IO_DENIED = 2, AP_FD_DENIED = 4 };
/* how open fds are counted */
enum { FDM_UNKNOWN, FDM_STAT, FDM_DENTS };

typedef struct app_pid {
    int pid;
    uint16_t app;
    uint8_t flags;
    char comm[APP_NAME];   /* sanitized, zero-padded; the app it was looked up for */
    int sfd, ifd;          /* kept-open stat and io files, or -1 */
    int nfds;              /* last fd count, -1 unknown */
    bool kthread;
    uint8_t still;         /* reads in a row with no change (saturates) */
    int64_t io_ms;         /* when rbytes/wbytes were read */
    int64_t stat_ms;       /* when utime.. were read */
    uint64_t ino;          /* d_ino of its <proc> entry */
    uint64_t threads, rss; /* at the last read (carried between reads) */
    float r_utime, r_stime, r_minflt, r_majflt; /* kernel threads: per second over the last span */
    uint64_t starttime, utime, stime, minflt, majflt, rbytes, wbytes;
} app_pid;

typedef struct app_grp {
    char name[APP_NAME];
    bool used;       /* slot holds a group */
    bool active;     /* its series may exist */
    bool put_last;   /* values were put on the previous run */
    uint32_t seen_gen;
    uint32_t streak; /* consecutive runs with processes */
    int ids[A_N];
    /* this run */
    double utime, stime, minflt, majflt; /* deltas since the previous run */
    double rd, wr;   /* bytes/s, each pid's over the span since its last io reading */
    uint64_t rss, threads, fds;
    int procs;
    bool has_rate, has_io, has_fd;
} app_grp;

typedef struct apps_priv {
    int procfd;
    int fd_mode;     /* FDM_* */
    int is_procfs;   /* 0 unknown, 1 procfs (inodes identify tasks), -1 not (a test tree) */
    int nkept, keep_max;
    char *dents;
    int *scan;
    uint64_t *scan_ino;
    int nscan, scan_cap;
    app_pid *cur, *nxt;
    int ncur, cap;
    int napps;       /* slots in use are below this */
    bool denied_noted;
    app_grp apps[APPS_MAX + 2];
} apps_priv;

/* ---- parsing -------------------------------------------------------------------- */

typedef struct ap_stat {
    const char *comm;
    size_t commlen;
    uint64_t ppid, flags, minflt, majflt, utime, stime, threads, starttime, rss;
} ap_stat;

/* Fields of /proc/PID/stat by number (1-based, man 5 proc); comm may hold
 * spaces and parentheses, so the fields start after the LAST ')'. */
static int parse_stat(const char *b, size_t n, ap_stat *o)
{
    const char *e = b + n;
    const char *lp = memchr(b, '(', n);
    const char *rp = memrchr(b, ')', n);
    if (!lp || !rp || rp < lp)
        return -EINVAL;
    o->comm = lp + 1;
    o->commlen = (size_t)(rp - lp - 1);
    const char *p = rp + 1;
    while (p < e && *p == ' ')
        p++;
    if (p >= e)
        return -EINVAL;
    p++; /* field 3, the state */
    uint64_t v[25];
    for (int f = 4; f <= 24; f++) {
        while (p < e && *p == ' ')
            p++;
        if (p < e && *p == '-')
            p++;
        const char *s = p;
        uint64_t x = 0;
        while (p < e && (unsigned)(*p - '0') < 10)
            x = x * 10 + (uint64_t)(*p++ - '0');
        if (p == s)
            return -EINVAL;
        v[f] = x;
    }
    o->ppid = v[4];
    o->flags = v[9];
    o->minflt = v[10];
    o->majflt = v[12];
    o->utime = v[14];
    o->stime = v[15];
    o->threads = v[20];
    o->starttime = v[22];
    o->rss = v[24];
    return 0;
}

/* read_bytes / write_bytes of /proc/PID/io; false when missing. */
static bool parse_io(const char *b, size_t n, uint64_t *rd, uint64_t *wr)
{
    const char *q = b, *e = b + n;
    int got = 0;
    while (q < e && got < 2) {
        const char *x = NULL;
        uint64_t *dst = NULL;
        if (e - q > 11 && !memcmp(q, "read_bytes:", 11))
            x = q + 11, dst = rd;
        else if (e - q > 12 && !memcmp(q, "write_bytes:", 12))
            x = q + 12, dst = wr;
        if (dst) {
            bool ok;
            *dst = sn_u64(&x, e, &ok);
            if (!ok)
                return false;
            got++;
        }
        q = sn_eol(q, e);
    }
    return got == 2;
}

/* "PID/" + leaf into out (no snprintf on the hot path). */
static void pid_path(char *out, int pid, const char *leaf)
{
    char tmp[12];
    int n = 0;
    unsigned u = (unsigned)pid;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10));
    char *o = out;
    while (n)
        *o++ = tmp[--n];
    *o++ = '/';
    while ((*o++ = *leaf++))
        ;
}

static ssize_t pread_all(int fd, sn_buf *b)
{
    ssize_t n;
    do
        n = pread(fd, b->p, b->cap - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    b->p[n] = 0;
    return n;
}

static void close_kept(apps_priv *p, int *fd)
{
    if (*fd < 0)
        return;
    close(*fd);
    *fd = -1;
    p->nkept--;
}

/* Reads the small procfs file PID/leaf into b: through the kept fd *kfd
 * when there is one (a pid that exited reads an error: then by path), else
 * by path relative to the kept <proc> fd, keeping the new fd while fewer
 * than keep files are kept. Returns the length or -errno. */
static ssize_t read_kept(apps_priv *p, int *kfd, int pid, const char *leaf, int keep, sn_buf *b)
{
    if (*kfd >= 0) {
        ssize_t n = pread_all(*kfd, b);
        if (n > 0)
            return n;
        close_kept(p, kfd);
    }
    char path[32];
    pid_path(path, pid, leaf);
    int fd = openat(p->procfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = pread_all(fd, b);
    if (n > 0 && p->nkept < keep) {
        *kfd = fd;
        p->nkept++;
    } else {
        close(fd);
    }
    return n;
}

/* Entries of an open directory, listed with getdents64 (never stat-ed). */
static int count_dents(apps_priv *p, int fd)
{
    int count = 0;
    for (;;) {
        ssize_t n = getdents64(fd, p->dents, APPS_DENTS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            count = -errno;
            break;
        }
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *de = (struct dirent64 *)(void *)(p->dents + off);
            const char *nm = de->d_name;
            if (!(nm[0] == '.' && (!nm[1] || (nm[1] == '.' && !nm[2]))))
                count++;
            off += de->d_reclen;
        }
    }
    return count;
}

/* Open fds of a pid: the size of PID/fd (FDM_STAT) or its entries. */
static int count_fds(apps_priv *p, int pid)
{
    char path[32];
    pid_path(path, pid, "fd");
    if (p->fd_mode == FDM_STAT) {
        struct stat st;
        if (fstatat(p->procfd, path, &st, 0) < 0)
            return -errno;
        return st.st_size > INT32_MAX ? INT32_MAX : (int)st.st_size;
    }
    int fd = openat(p->procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int n = count_dents(p, fd);
    close(fd);
    return n;
}

/* Whether <proc> is procfs reporting fd counts as the size of PID/fd
 * (Linux >= 6.2): the size of our own fd directory, opened, equals its
 * entries (a few tries: other threads open and close files meanwhile). */
static int fd_mode_detect(apps_priv *p)
{
    struct statfs sf;
    if (fstatfs(p->procfd, &sf) < 0 || sf.f_type != PROC_SUPER_MAGIC)
        return FDM_DENTS;
    for (int tries = 0; tries < 3; tries++) {
        int fd = openat(p->procfd, "self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return FDM_DENTS;
        struct stat st;
        int n = fstat(fd, &st) == 0 ? count_dents(p, fd) : -1;
        close(fd);
        if (n > 0 && st.st_size == n)
            return FDM_STAT;
    }
    return FDM_DENTS;
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The numeric entries of <proc>, ascending (procfs lists them in order; a
 * fixture tree may not). */
static int scan_pids(apps_priv *p)
{
    if (lseek(p->procfd, 0, SEEK_SET) < 0)
        return -errno;
    p->nscan = 0;
    bool sorted = true;
    for (;;) {
        ssize_t n = getdents64(p->procfd, p->dents, APPS_DENTS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        for (ssize_t off = 0; off < n;) {
            struct dirent64 *de = (struct dirent64 *)(void *)(p->dents + off);
            off += de->d_reclen;
            const char *nm = de->d_name;
            if (nm[0] < '1' || nm[0] > '9')
                continue;
            long pid = 0;
            while (*nm >= '0' && *nm <= '9' && pid < INT32_MAX)
                pid = pid * 10 + (*nm++ - '0');
            if (*nm || pid > INT32_MAX)
                continue;
            if (p->nscan == p->scan_cap) {
                int ncap = p->scan_cap ? p->scan_cap * 2 : 256;
                int *ns = realloc(p->scan, (size_t)ncap * sizeof *ns);
                if (!ns)
                    return -ENOMEM;
                p->scan = ns;
                uint64_t *ni = realloc(p->scan_ino, (size_t)ncap * sizeof *ni);
                if (!ni)
                    return -ENOMEM;
                p->scan_ino = ni;
                p->scan_cap = ncap;
            }
            if (p->nscan && p->scan[p->nscan - 1] > pid)
                sorted = false;
            p->scan_ino[p->nscan] = p->is_procfs > 0 ? de->d_ino : 0;
            p->scan[p->nscan++] = (int)pid;
        }
    }
    if (!sorted) { /* a fixture tree: inodes are not used there */
        qsort(p->scan, (size_t)p->nscan, sizeof *p->scan, cmp_int);
        memset(p->scan_ino, 0, (size_t)p->nscan * sizeof *p->scan_ino);
    }
    return 0;
}

/* ---- groups ---------------------------------------------------------------------- */

static void app_reset(app_grp *a, const char *name)
{
    memset(a, 0, sizeof *a);
    memcpy(a->name, name, APP_NAME);
    a->used = true;
    for (int k = 0; k < A_N; k++)
        a->ids[k] = -1;
}

/* The group of a (sanitized, zero-padded) name: an existing one, a free
 * slot, or "other". */
static uint16_t app_find(apps_priv *p, const char *name)
{
    int free_slot = -1;
    for (int i = 0; i < p->napps; i++) {
        app_grp *a = &p->apps[i];
        if (!a->used) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (a->name[0] == name[0] && !memcmp(a->name, name, APP_NAME))
            return (uint16_t)i;
    }
    if (free_slot < 0 && p->napps < APPS_MAX + 2)
        free_slot = p->napps++;
    if (free_slot < 0)
        return APP_OTHER;
    app_reset(&p->apps[free_slot], name);
    return (uint16_t)free_slot;
}

static void sanitize(const char *comm, size_t len, char *out)
{
    memset(out, 0, APP_NAME);
    if (len > APP_NAME - 1)
        len = APP_NAME - 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)comm[i];
        out[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '_';
    }
    if (!len)
        out[0] = '_';
}

/* ---- one process ----------------------------------------------------------------- */

static inline uint64_t delta(uint64_t cur, uint64_t prev)
{
    return cur > prev ? cur - prev : 0;
}

static void note_denied(sense_t *s, sn_col *c, apps_priv *p)
{
    if (p->denied_noted)
        return;
    sn_note_once(&p->denied_noted, "apps: io or fds of some processes are not readable "
                                   "(permission): left out");
    sn_available(c, "procfs (io/fds of some processes not readable: permission)");
}

/* A kernel thread's cpu and faults this run: the per-second rates of its
 * last span (its reads may be runs apart). */
static void add_kthread_rates(sn_col *c, app_grp *a, const app_pid *np)
{
    a->has_rate = true;
    a->utime += np->r_utime * c->dt;
    a->stime += np->r_stime * c->dt;
    a->minflt += np->r_minflt * c->dt;
    a->majflt += np->r_majflt * c->dt;
}

/* Whether old, the same task (same inode) as on its last read, is left
 * unread this run: a kernel thread but every APPS_KTHREAD_EVERY runs, a
 * sleeping user process but every APPS_SLEEP_EVERY runs (staggered by pid). */
static bool carry_due(const sn_col *c, const apps_priv *p, const app_pid *old)
{
    unsigned turn = (unsigned)old->pid + c->gen;
    if (old->kthread)
        return old->stat_ms > 0 && turn % APPS_KTHREAD_EVERY != 0;
    return old->still >= APPS_SLEEP_RUNS && old->app < p->napps && p->apps[old->app].used &&
           turn % APPS_SLEEP_EVERY != 0;
}

/* A pid left unread this run (carry_due) adds what it had at its last
 * read: threads, resident memory and fds; a kernel thread also the rates of
 * its last span, a sleeper no cpu, faults or IO. */
static void carry_pid(sn_col *c, apps_priv *p, app_pid *old, app_pid *np)
{
    *np = *old;
    old->sfd = old->ifd = -1;
    app_grp *a = &p->apps[np->app];
    a->procs++;
    a->threads += np->threads;
    a->rss += np->rss;
    a->has_rate = true;
    if (np->flags & AP_IO_OK)
        a->has_io = true;
    if (np->nfds >= 0) {
        a->fds += (uint64_t)np->nfds;
        a->has_fd = true;
    }
    if (np->kthread)
        add_kthread_rates(c, a, np);
}

/* Reads one pid into *np, taking over the kept files of old (its entry
 * from the previous run, if any); false when it is gone. */
static bool read_pid(sense_t *s, sn_col *c, apps_priv *p, int pid, app_pid *old,
                     app_pid *np, bool valid_dt, int64_t now_ms)
{
    int sfd = -1, ifd = -1;
    if (old) {
        sfd = old->sfd;
        ifd = old->ifd;
        old->sfd = old->ifd = -1;
    }
    ssize_t n = read_kept(p, &sfd, pid, "stat", p->keep_max, &s->buf);
    ap_stat st;
    if (n <= 0 || parse_stat(s->buf.p, (size_t)n, &st) < 0) {
        close_kept(p, &sfd);
        close_kept(p, &ifd);
        return false;
    }
    bool kthread = (st.flags & PF_KTHREAD_FLAG) || st.ppid == 2 || pid == 2;
    bool same = old && old->starttime == st.starttime;
    if (same) {
        *np = *old;
    } else { /* new, or the pid was reused: start afresh */
        close_kept(p, &ifd);
        memset(np, 0, sizeof *np);
        np->pid = pid;
        np->starttime = st.starttime;
        np->app = APP_NONE;
        np->nfds = -1;
    }
    np->sfd = sfd;
    np->kthread = kthread;
    np->threads = st.threads;
    np->rss = st.rss;
    bool valid = same && valid_dt;
    uint16_t ai;
    if (kthread) {
        ai = APP_KERNEL;
    } else {
        char name[APP_NAME];
        sanitize(st.comm, st.commlen, name);
        if (np->app != APP_NONE && !memcmp(np->comm, name, APP_NAME)) {
            ai = np->app;
        } else {
            ai = app_find(p, name);
            memcpy(np->comm, name, APP_NAME);
        }
    }
    np->app = ai;
    app_grp *a = &p->apps[ai];
    a->procs++;
    a->threads += st.threads;
    a->rss += st.rss;
    bool idle = valid && st.utime == np->utime && st.stime == np->stime &&
                st.minflt == np->minflt && st.majflt == np->majflt;
    np->still = idle ? (uint8_t)(np->still < UINT8_MAX ? np->still + 1 : UINT8_MAX) : 0;
    bool reread = ((unsigned)pid + c->gen) % APPS_IDLE_REREAD == 0;
    if (valid && kthread && now_ms > np->stat_ms) {
        /* its last read may be runs ago: this run gets its share */
        double span = (double)(now_ms - np->stat_ms) / 1000.0;
        np->r_utime = (float)((double)delta(st.utime, np->utime) / span);
        np->r_stime = (float)((double)delta(st.stime, np->stime) / span);
        np->r_minflt = (float)((double)delta(st.minflt, np->minflt) / span);
        np->r_majflt = (float)((double)delta(st.majflt, np->majflt) / span);
        add_kthread_rates(c, a, np);
    } else if (valid) {
        a->has_rate = true;
        a->utime += (double)delta(st.utime, np->utime);
        a->stime += (double)delta(st.stime, np->stime);
        a->minflt += (double)delta(st.minflt, np->minflt);
        a->majflt += (double)delta(st.majflt, np->majflt);
    }
    np->stat_ms = now_ms;
    np->utime = st.utime;
    np->stime = st.stime;
    np->minflt = st.minflt;
    np->majflt = st.majflt;

    if (np->flags & AP_IO_DENIED) {
        /* skipped quietly */
    } else if (idle && !reread && (np->flags & AP_IO_OK)) {
        a->has_io = true; /* did not run: no new IO */
    } else {
        /* io is read far less often (not for idle pids): stat files come
         * first for the budget */
        n = read_kept(p, &ifd, pid, "io", p->keep_max / 2, &s->buf);
        uint64_t rd, wr;
        if (n == -EACCES || n == -EPERM) {
            np->flags |= AP_IO_DENIED;
            np->flags &= (uint8_t)~AP_IO_OK;
            note_denied(s, c, p);
        } else if (n > 0 && parse_io(s->buf.p, (size_t)n, &rd, &wr)) {
            if (valid && (np->flags & AP_IO_OK) && now_ms > np->io_ms) {
                double span = (double)(now_ms - np->io_ms) / 1000.0;
                a->has_io = true;
                a->rd += (double)delta(rd, np->rbytes) / span;
                a->wr += (double)delta(wr, np->wbytes) / span;
            }
            np->rbytes = rd;
            np->wbytes = wr;
            np->io_ms = now_ms;
            np->flags |= AP_IO_OK;
        } else {
            np->flags &= (uint8_t)~AP_IO_OK;
        }
    }
    np->ifd = ifd;

    if (!kthread && !(np->flags & AP_FD_DENIED)) {
        bool due = np->nfds < 0 ||
                   (idle ? reread : p->fd_mode == FDM_STAT || ((unsigned)pid + c->gen) % APPS_FD_EVERY == 0);
        if (due) {
            int nfd = count_fds(p, pid);
            if (nfd == -EACCES || nfd == -EPERM) {
                np->flags |= AP_FD_DENIED;
                note_denied(s, c, p);
            }
            np->nfds = nfd >= 0 ? nfd : -1;
        }
        if (np->nfds >= 0) {
            a->fds += (uint64_t)np->nfds;
            a->has_fd = true;
        }
    }
    return true;
}

/* ---- putting ---------------------------------------------------------------------- */

static void put_app(sense_t *s, sn_col *c, app_grp *a, int k, double v, bool lazy_zero)
{
    if (a->ids[k] < 0) {
        if (lazy_zero && v == 0)
            return; /* a rate series starts at its first non-zero value */
        char lab[128];
        sn_labels(lab, sizeof lab, 1, "app", a->name);
        a->ids[k] = sn_series(s, adefs[k].name, lab, adefs[k].unit, adefs[k].help, adefs[k].kind);
    }
    sn_put(s, c, a->ids[k], v);
}

static void put_apps(sense_t *s, sn_col *c, apps_priv *p)
{
    double dt = c->dt, tck = (double)s->clk_tck;
    for (int i = 0; i < p->napps; i++) {
        app_grp *a = &p->apps[i];
        if (!a->used)
            continue;
        if (!a->procs) {
            if (a->put_last)
                for (int k = 0; k < A_N; k++)
                    if (a->ids[k] >= 0)
                        sn_put(s, c, a->ids[k], 0);
            a->put_last = false;
            a->streak = 0;
            if (i > APP_OTHER && c->gen - a->seen_gen >= APPS_EVICT_RUNS)
                a->used = false;
            continue;
        }
        a->streak++;
        a->seen_gen = c->gen;
        if (!a->active) {
            bool busy = a->rss || a->utime || a->stime || a->rd > 0 || a->wr > 0;
            if (a->streak < 2 || !(i == APP_KERNEL || busy))
                continue;
            a->active = true;
        }
        put_app(s, c, a, A_PROCS, a->procs, false);
        put_app(s, c, a, A_THREADS, (double)a->threads, false);
        put_app(s, c, a, A_RSS, (double)a->rss * (double)s->page_size, false);
        if (a->has_fd)
            put_app(s, c, a, A_FDS, (double)a->fds, false);
        if (a->has_rate && dt > 0) {
            double u = (double)a->utime * 100.0 / tck / dt;
            double y = (double)a->stime * 100.0 / tck / dt;
            put_app(s, c, a, A_CPU, u + y, true);
            put_app(s, c, a, A_CPU_USER, u, true);
            put_app(s, c, a, A_CPU_SYS, y, true);
            put_app(s, c, a, A_MINFLT, (double)a->minflt / dt, true);
            put_app(s, c, a, A_MAJFLT, (double)a->majflt / dt, true);
        }
        if (a->has_io) {
            put_app(s, c, a, A_READ, a->rd, true);
            put_app(s, c, a, A_WRITE, a->wr, true);
        }
        a->put_last = true;
    }
    while (p->napps > APP_OTHER + 1 && !p->apps[p->napps - 1].used)
        p->napps--;
}

/* ---- the module ------------------------------------------------------------------ */

static int apps_init(sense_t *s, sn_col *c)
{
    apps_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    p->procfd = -1;
    struct rlimit rl;
    p->keep_max = APPS_KEEP_FDS;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 < (rlim_t)p->keep_max)
        p->keep_max = (int)(rl.rlim_cur / 4);
    p->dents = malloc(APPS_DENTS);
    if (!p->dents)
        return -ENOMEM;
    char name[APP_NAME];
    sanitize("kernel", 6, name);
    app_reset(&p->apps[APP_KERNEL], name);
    sanitize("other", 5, name);
    app_reset(&p->apps[APP_OTHER], name);
    p->napps = 2;
    sn_available(c, "procfs");
    return 0;
}

static void apps_fini(sense_t *s, sn_col *c)
{
    apps_priv *p = c->priv;
    if (!p)
        return;
    for (int i = 0; i < p->ncur; i++) {
        close_kept(p, &p->cur[i].sfd);
        close_kept(p, &p->cur[i].ifd);
    }
    if (p->procfd >= 0)
        close(p->procfd);
    free(p->dents);
    free(p->scan);
    free(p->scan_ino);
    free(p->cur);
    free(p->nxt);
    free(p);
}

static int apps_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    apps_priv *p = c->priv;
    if (p->procfd < 0 && (p->procfd = open(s->proc, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int r = -errno;
        sn_unavailable(s, c, "%s: %s", s->proc, strerror(-r));
        return r;
    }
    if (p->fd_mode == FDM_UNKNOWN)
        p->fd_mode = fd_mode_detect(p);
    if (!p->is_procfs) {
        struct statfs sf;
        p->is_procfs = fstatfs(p->procfd, &sf) == 0 && sf.f_type == PROC_SUPER_MAGIC ? 1 : -1;
    }
    int r = scan_pids(p);
    if (r == 0) { /* the processes group counts these too (processes.c) */
        s->apps_npids = p->nscan;
        s->apps_scan_ms = now_ms;
    }
    if (r < 0) {
        close(p->procfd);
        p->procfd = -1;
        sn_unavailable(s, c, "%s: %s", s->proc, strerror(-r));
        return r;
    }
    if (p->nscan > p->cap) {
        int ncap = p->cap ? p->cap : 256;
        while (ncap < p->nscan)
            ncap *= 2;
        app_pid *a = realloc(p->cur, (size_t)ncap * sizeof *a);
        if (!a)
            return -ENOMEM;
        p->cur = a;
        app_pid *b = realloc(p->nxt, (size_t)ncap * sizeof *b);
        if (!b)
            return -ENOMEM;
        p->nxt = b;
        p->cap = ncap;
    }
    for (int i = 0; i < p->napps; i++) {
        app_grp *a = &p->apps[i];
        a->utime = a->stime = a->minflt = a->majflt = 0;
        a->rd = a->wr = 0;
        a->rss = a->threads = a->fds = 0;
        a->procs = 0;
        a->has_rate = a->has_io = a->has_fd = false;
    }
    /* both lists are sorted by pid: merge them */
    bool valid_dt = c->dt > 0;
    int j = 0, k = 0;
    for (int i = 0; i < p->nscan; i++) {
        int pid = p->scan[i];
        while (j < p->ncur && p->cur[j].pid < pid)
            j++;
        app_pid *old = j < p->ncur && p->cur[j].pid == pid ? &p->cur[j] : NULL;
        uint64_t ino = p->scan_ino[i];
        if (old && ino && old->ino == ino && valid_dt && carry_due(c, p, old)) {
            carry_pid(c, p, old, &p->nxt[k++]);
            continue;
        }
        if (read_pid(s, c, p, pid, old, &p->nxt[k], valid_dt, now_ms))
            p->nxt[k++].ino = ino;
    }
    for (int i = 0; i < p->ncur; i++) { /* the files of pids gone */
        close_kept(p, &p->cur[i].sfd);
        close_kept(p, &p->cur[i].ifd);
    }
    app_pid *t = p->cur;
    p->cur = p->nxt;
    p->nxt = t;
    p->ncur = k;
    put_apps(s, c, p);
    return 0;
}

const sn_module sn_mod_apps = {
    .name = "apps", .init = apps_init, .collect = apps_collect, .fini = apps_fini,
};
