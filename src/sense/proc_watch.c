/* proc_watch.c: the `process` group: the processes named in
 * [sense] processes = ... (a name matched exactly against /proc/PID/comm,
 * which the kernel cuts to 15 characters, or "pidfile:/path").
 *
 * For each matched process (labels name = the watch entry, pid):
 *   process.cpu_percent (100 = one core), rss_bytes, vsize_bytes, threads,
 *   fds (entries of /proc/PID/fd), io_read_bytes_per_second and
 *   io_write_bytes_per_second (/proc/PID/io; not readable for other users'
 *   processes without privilege: then left out quietly), minor/major
 *   faults per second, and state as a code (see STATE_HELP);
 * and per watch entry process.count{name}: how many processes match (0 when
 * the service is down - the series a detector wants).
 *
 * Matching is cached: the pid's stat file stays open, every run checks it
 * still reads and its comm and start time are unchanged. /proc is scanned
 * again only when a pid went away or an entry matches nothing (at most every
 * 5 s), and once a minute to pick up new workers. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PW_MAX_PROCS 256
#define PW_MAX_PER_WATCH 64
#define PW_RESCAN_MIN_MS 5000
#define PW_RESCAN_MAX_MS 60000

#define STATE_HELP "process state: 1 running, 2 sleeping, 3 disk sleep, 4 zombie, 5 stopped, 6 idle, 0 other"

enum { P_CPU, P_RSS, P_VSIZE, P_THREADS, P_FDS, P_IOR, P_IOW, P_MINFLT, P_MAJFLT, P_STATE, P_N };
static const struct {
    const char *name, *unit, *help;
    int kind;
} pdefs[P_N] = {
    {"process.cpu_percent", "percent", "cpu used by the process (100 = one core)", MEM_RATE},
    {"process.rss_bytes", "bytes", "resident memory", MEM_GAUGE},
    {"process.vsize_bytes", "bytes", "virtual memory size", MEM_GAUGE},
    {"process.threads", "", "threads", MEM_GAUGE},
    {"process.fds", "", "open file descriptors", MEM_GAUGE},
    {"process.io_read_bytes_per_second", "bytes/s", "bytes read from storage per second", MEM_RATE},
    {"process.io_write_bytes_per_second", "bytes/s", "bytes written to storage per second", MEM_RATE},
    {"process.minor_faults_per_second", "1/s", "minor page faults per second", MEM_RATE},
    {"process.major_faults_per_second", "1/s", "major page faults (disk reads) per second", MEM_RATE},
    {"process.state", "", STATE_HELP, MEM_GAUGE},
};

typedef struct pw_proc {
    int pid;
    int watch;
    bool alive;
    bool io_denied, fd_denied;
    sn_file stat, io;
    DIR *fd;
    uint64_t starttime;
    uint64_t prev[4]; /* ticks, read bytes, write bytes, minflt; majflt below */
    uint64_t prev_maj;
    uint32_t gen;
    int ids[P_N];
} pw_proc;

typedef struct pw_watch {
    const char *spec;  /* points into s->watch_process */
    const char *pidfile;
    int count_id;
    int n;             /* alive matches this run */
} pw_watch;

typedef struct pw_priv {
    pw_watch *w;
    int nw;
    pw_proc *procs;
    int np;
    int64_t last_scan_ms;
    bool scanned_once;
    DIR *proc;
} pw_priv;

static int state_code(char st)
{
    switch (st) {
    case 'R': return 1;
    case 'S': return 2;
    case 'D': return 3;
    case 'Z': return 4;
    case 'T': case 't': return 5;
    case 'I': return 6;
    default: return 0;
    }
}

static void proc_drop(pw_proc *pp)
{
    sn_file_close(&pp->stat);
    free(pp->stat.path);
    sn_file_close(&pp->io);
    free(pp->io.path);
    if (pp->fd)
        closedir(pp->fd);
    memset(pp, 0, sizeof *pp);
}

static void pw_clear(pw_priv *p)
{
    for (int i = 0; i < p->np; i++)
        proc_drop(&p->procs[i]);
    p->np = 0;
    free(p->w);
    p->w = NULL;
    p->nw = 0;
}

static int pw_setup(sense_t *s, sn_col *c, pw_priv *p)
{
    pw_clear(p);
    if (s->nwatch_process) {
        p->w = calloc((size_t)s->nwatch_process, sizeof *p->w);
        if (!p->w)
            return -ENOMEM;
    }
    p->nw = s->nwatch_process;
    for (int i = 0; i < p->nw; i++) {
        p->w[i].spec = s->watch_process[i];
        p->w[i].count_id = -1;
        if (!strncmp(p->w[i].spec, "pidfile:", 8))
            p->w[i].pidfile = p->w[i].spec + 8;
    }
    p->scanned_once = false;
    p->last_scan_ms = 0;
    if (p->nw)
        sn_available(c, "procfs");
    else
        sn_available(c, "procfs (no processes to watch: [sense] processes)");
    return 0;
}

static int pw_init(sense_t *s, sn_col *c)
{
    pw_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    p->procs = calloc(PW_MAX_PROCS, sizeof *p->procs);
    if (!p->procs)
        return -ENOMEM;
    return pw_setup(s, c, p);
}

static int pw_reconfigure(sense_t *s, sn_col *c)
{
    return pw_setup(s, c, c->priv);
}

static void pw_fini(sense_t *s, sn_col *c)
{
    pw_priv *p = c->priv;
    if (!p)
        return;
    if (p->procs)
        pw_clear(p);
    if (p->proc)
        closedir(p->proc);
    free(p->procs);
    free(p);
}

static bool comm_matches(const char *want, const char *comm)
{
    size_t wl = strlen(want);
    if (wl > 15)
        return strlen(comm) == 15 && !strncmp(want, comm, 15);
    return !strcmp(want, comm);
}

static bool tracked(pw_priv *p, int pid)
{
    for (int i = 0; i < p->np; i++)
        if (p->procs[i].pid == pid)
            return true;
    return false;
}

static void add_proc(sense_t *s, pw_priv *p, int watch, int pid)
{
    if (p->np >= PW_MAX_PROCS || p->w[watch].n >= PW_MAX_PER_WATCH || tracked(p, pid))
        return;
    pw_proc *pp = &p->procs[p->np];
    memset(pp, 0, sizeof *pp);
    sn_file_init(&pp->stat);
    sn_file_init(&pp->io);
    if (sn_file_set(&pp->stat, "%s/%d/stat", s->proc, pid) < 0 ||
        sn_file_set(&pp->io, "%s/%d/io", s->proc, pid) < 0) {
        proc_drop(pp);
        return;
    }
    pp->pid = pid;
    pp->watch = watch;
    pp->alive = true;
    pp->gen = UINT32_MAX;
    pp->starttime = UINT64_MAX;
    for (int i = 0; i < P_N; i++)
        pp->ids[i] = -1;
    p->w[watch].n++;
    p->np++;
}

/* Drops dead entries, then finds matches again. */
static void rescan(sense_t *s, pw_priv *p)
{
    int o = 0;
    for (int i = 0; i < p->np; i++) {
        if (p->procs[i].alive) {
            if (o != i)
                p->procs[o] = p->procs[i];
            o++;
        } else {
            proc_drop(&p->procs[i]);
        }
    }
    for (int i = o; i < p->np; i++)
        memset(&p->procs[i], 0, sizeof p->procs[i]);
    p->np = o;
    bool names = false;
    for (int w = 0; w < p->nw; w++) {
        if (!p->w[w].pidfile) {
            names = true;
            continue;
        }
        ssize_t n = sn_path_read(p->w[w].pidfile, &s->buf2);
        if (n <= 0)
            continue;
        const char *q = s->buf2.p;
        bool ok;
        uint64_t pid = sn_u64(&q, q + n, &ok);
        if (ok && pid > 0 && pid < INT32_MAX)
            add_proc(s, p, w, (int)pid);
    }
    if (!names)
        return;
    if (!p->proc && !(p->proc = opendir(s->proc)))
        return;
    rewinddir(p->proc);
    struct dirent *de;
    char path[CORE_PATH_MAX + 64];
    while ((de = readdir(p->proc))) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        if (snprintf(path, sizeof path, "%s/%s/comm", s->proc, de->d_name) >= (int)sizeof path)
            continue;
        ssize_t n = sn_path_read(path, &s->buf2);
        if (n <= 0)
            continue;
        if (s->buf2.p[n - 1] == '\n')
            s->buf2.p[--n] = 0;
        for (int w = 0; w < p->nw; w++)
            if (!p->w[w].pidfile && comm_matches(p->w[w].spec, s->buf2.p))
                add_proc(s, p, w, atoi(de->d_name));
    }
}

static void put_proc(sense_t *s, sn_col *c, pw_proc *pp, int k, double v)
{
    if (isnan(v))
        return;
    if (pp->ids[k] < 0) {
        char lab[600], pid[16];
        snprintf(pid, sizeof pid, "%d", pp->pid);
        sn_labels(lab, sizeof lab, 2, "name", ((pw_priv *)c->priv)->w[pp->watch].spec, "pid", pid);
        pp->ids[k] = sn_series(s, pdefs[k].name, lab, pdefs[k].unit, pdefs[k].help, pdefs[k].kind);
    }
    sn_put(s, c, pp->ids[k], v);
}

/* Reads one process; false when it is gone (or the pid was reused). */
static bool read_proc(sense_t *s, sn_col *c, pw_priv *p, pw_proc *pp)
{
    ssize_t n = sn_file_read(&pp->stat, &s->buf);
    sn_pidstat st;
    if (n <= 0 || sn_parse_pid_stat(s->buf.p, (size_t)n, &st) < 0)
        return false;
    pw_watch *w = &p->w[pp->watch];
    if (!w->pidfile && !comm_matches(w->spec, st.comm))
        return false;
    if (pp->starttime != UINT64_MAX && st.starttime != pp->starttime)
        return false;
    pp->starttime = st.starttime;
    bool valid = pp->gen == c->gen - 1 && c->dt > 0;
    pp->gen = c->gen;
    double dt = c->dt;
    put_proc(s, c, pp, P_CPU, sn_rate(st.utime + st.stime, &pp->prev[0], valid, dt) * 100.0 / (double)s->clk_tck);
    put_proc(s, c, pp, P_RSS, (double)st.rss_pages * (double)s->page_size);
    put_proc(s, c, pp, P_VSIZE, (double)st.vsize);
    put_proc(s, c, pp, P_THREADS, (double)st.threads);
    put_proc(s, c, pp, P_MINFLT, sn_rate(st.minflt, &pp->prev[3], valid, dt));
    put_proc(s, c, pp, P_MAJFLT, sn_rate(st.majflt, &pp->prev_maj, valid, dt));
    put_proc(s, c, pp, P_STATE, state_code(st.state));
    if (!pp->fd_denied) {
        if (!pp->fd) {
            char path[CORE_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/%d/fd", s->proc, pp->pid);
            pp->fd = opendir(path);
            if (!pp->fd && (errno == EACCES || errno == EPERM))
                pp->fd_denied = true;
        }
        int nfd = pp->fd ? sn_count_dir(pp->fd, false, -1) : -1;
        if (nfd >= 0)
            put_proc(s, c, pp, P_FDS, nfd);
    }
    if (!pp->io_denied) {
        n = sn_file_read(&pp->io, &s->buf);
        if (n == -EACCES || n == -EPERM) {
            pp->io_denied = true;
        } else if (n > 0) {
            const char *q = s->buf.p, *e = q + n;
            while (q < e) {
                int k = -1;
                if (e - q > 11 && !memcmp(q, "read_bytes:", 11))
                    k = 0;
                else if (e - q > 12 && !memcmp(q, "write_bytes:", 12))
                    k = 1;
                if (k >= 0) {
                    const char *x = memchr(q, ':', (size_t)(e - q)) + 1;
                    bool ok;
                    uint64_t v = sn_u64(&x, e, &ok);
                    if (ok)
                        put_proc(s, c, pp, k ? P_IOW : P_IOR, sn_rate(v, &pp->prev[1 + k], valid, dt));
                }
                q = sn_eol(q, e);
            }
        }
    }
    return true;
}

static int pw_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    pw_priv *p = c->priv;
    if (!p->nw)
        return 0;
    bool lost = false;
    for (int w = 0; w < p->nw; w++)
        p->w[w].n = 0;
    for (int i = 0; i < p->np; i++) {
        pw_proc *pp = &p->procs[i];
        pp->alive = read_proc(s, c, p, pp);
        if (pp->alive)
            p->w[pp->watch].n++;
        else
            lost = true;
    }
    for (int w = 0; w < p->nw; w++)
        if (!p->w[w].n)
            lost = true;
    int64_t since = now_ms - p->last_scan_ms;
    if (!p->scanned_once || (lost && since >= PW_RESCAN_MIN_MS) || since >= PW_RESCAN_MAX_MS) {
        for (int w = 0; w < p->nw; w++)
            p->w[w].n = 0;
        for (int i = 0; i < p->np; i++)
            if (p->procs[i].alive)
                p->w[p->procs[i].watch].n++;
        rescan(s, p);
        p->scanned_once = true;
        p->last_scan_ms = now_ms;
        for (int i = 0; i < p->np; i++) {
            pw_proc *pp = &p->procs[i];
            if (pp->gen == UINT32_MAX) /* new: first reading (gauges now, rates primed) */
                pp->alive = read_proc(s, c, p, pp);
        }
    }
    for (int w = 0; w < p->nw; w++) {
        int n = 0;
        for (int i = 0; i < p->np; i++)
            n += p->procs[i].alive && p->procs[i].watch == w;
        char lab[600];
        if (p->w[w].count_id < 0) {
            sn_labels(lab, sizeof lab, 1, "name", p->w[w].spec);
            p->w[w].count_id = sn_series(s, "process.count", lab, "",
                                         "processes matching this watch entry", MEM_GAUGE);
        }
        sn_put(s, c, p->w[w].count_id, n);
    }
    return 0;
}

const sn_module sn_mod_process = {
    .name = "process", .init = pw_init, .collect = pw_collect, .fini = pw_fini,
    .reconfigure = pw_reconfigure,
};
