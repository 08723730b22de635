/* cgroup.c: the `cgroup` group: per cgroup matching [sense] cgroups = ...
 * (fnmatch globs, FNM_PATHNAME, relative to the cgroup root; "/" is the
 * root itself), labelled cgroup="/system.slice/nginx.service":
 *   cgroup.cpu_percent                (100 = one core)
 *   cgroup.cpu_throttled_percent, cgroup.cpu_throttled_periods_per_second
 *                                     (only where the cpu controller is on)
 *   cgroup.memory_current_bytes, cgroup.memory_max_bytes (when limited),
 *   cgroup.memory_anon_bytes, cgroup.memory_file_bytes,
 *   cgroup.pids_current,
 *   cgroup.io_read_bytes_per_second, cgroup.io_write_bytes_per_second,
 *   cgroup.pressure_some_avg10_percent{resource=cpu|memory|io}.
 *
 * Hierarchies: cgroup v2 at <sys>/fs/cgroup (unified), or at
 * <sys>/fs/cgroup/unified or wherever <proc>/self/mounts puts a cgroup2
 * mount (hybrid systems); v1 controllers at <sys>/fs/cgroup/{cpuacct,
 * memory,pids}. Each value comes from the v2 file when the cgroup has it
 * there, else from the v1 equivalent (cpuacct.usage, memory.usage_in_bytes,
 * memory.limit_in_bytes, memory.stat total_rss/total_cache, pids.current).
 * The cgroup tree is walked only as deep as the globs reach, again every 30 s
 * or soon after a watched cgroup disappears. */
#include "sense/sense_int.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define CG_MAX 1024       /* cgroups followed */
#define CG_KEEP_OPEN 256  /* beyond this many (or RLIMIT_NOFILE / 4 / CF_N), files are opened per read */
#define CG_RESCAN_MS 30000
#define CG_RESCAN_LOST_MS 5000
#define CG_MAX_DEPTH 16

enum { CF_CPU, CF_MEM, CF_MAX, CF_MSTAT, CF_PIDS, CF_IO, CF_PCPU, CF_PMEM, CF_PIO, CF_N };
enum { C_CPU, C_THR, C_NTHR, C_MEM, C_MAX, C_ANON, C_FILE, C_PIDS, C_IOR, C_IOW, C_PCPU, C_PMEM,
       C_PIO, C_N };

static const struct {
    const char *name, *unit, *help;
    int kind;
} cdefs[C_N] = {
    {"cgroup.cpu_percent", "percent", "cpu used by the cgroup (100 = one core)", MEM_RATE},
    {"cgroup.cpu_throttled_percent", "percent", "share of time the cgroup was throttled by its cpu limit", MEM_RATE},
    {"cgroup.cpu_throttled_periods_per_second", "1/s", "scheduler periods throttled per second", MEM_RATE},
    {"cgroup.memory_current_bytes", "bytes", "memory charged to the cgroup", MEM_GAUGE},
    {"cgroup.memory_max_bytes", "bytes", "memory limit of the cgroup", MEM_GAUGE},
    {"cgroup.memory_anon_bytes", "bytes", "anonymous memory of the cgroup", MEM_GAUGE},
    {"cgroup.memory_file_bytes", "bytes", "page cache charged to the cgroup", MEM_GAUGE},
    {"cgroup.pids_current", "", "tasks in the cgroup", MEM_GAUGE},
    {"cgroup.io_read_bytes_per_second", "bytes/s", "bytes read per second, all devices", MEM_RATE},
    {"cgroup.io_write_bytes_per_second", "bytes/s", "bytes written per second, all devices", MEM_RATE},
    {"cgroup.pressure_some_avg10_percent", "percent", "share of time some tasks were stalled, 10 s average", MEM_GAUGE},
    {"cgroup.pressure_some_avg10_percent", "percent", "share of time some tasks were stalled, 10 s average", MEM_GAUGE},
    {"cgroup.pressure_some_avg10_percent", "percent", "share of time some tasks were stalled, 10 s average", MEM_GAUGE},
};

typedef struct cg_ent {
    sn_key k;          /* relative path, "" for the root */
    bool present;
    bool lost;
    bool v1cpu, v1mem;
    sn_file f[CF_N];
    uint32_t gen;
    uint64_t prev_usage, prev_thr, prev_nthr, prev_r, prev_w;
    int ids[C_N];
} cg_ent;

typedef struct cg_priv {
    char v2[CORE_PATH_MAX];   /* "" when none */
    char cpuacct[CORE_PATH_MAX], memory[CORE_PATH_MAX], pids[CORE_PATH_MAX];
    const char *walk_root;
    sn_tab cgs;
    int64_t last_scan_ms;
    bool scanned;
    bool truncated_logged;
    int max_depth;
    int keep;                 /* cgroups whose files stay open (cg_keep_open, at start) */
} cg_priv;

static bool exists(const char *dir, const char *file)
{
    char path[CORE_PATH_MAX + 256];
    snprintf(path, sizeof path, "%s%s%s", dir, file[0] ? "/" : "", file);
    return access(path, F_OK) == 0;
}

/* Finds a cgroup2 mount in the mount table, mapped under sys_root. */
static bool v2_from_mounts(sense_t *s, char *out, size_t n)
{
    char path[CORE_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/self/mounts", s->proc);
    ssize_t len = sn_path_read(path, &s->buf2);
    if (len <= 0)
        return false;
    char *q = s->buf2.p, *e = q + len;
    while (q < e) {
        char *le = memchr(q, '\n', (size_t)(e - q));
        if (!le)
            le = e;
        *le = 0;
        char dev[256], mnt[CORE_PATH_MAX], type[64];
        const char *x = q;
        sn_tok(&x, le, dev, sizeof dev);
        sn_tok(&x, le, mnt, sizeof mnt);
        sn_tok(&x, le, type, sizeof type);
        q = le + 1;
        if (strcmp(type, "cgroup2"))
            continue;
        sn_unescape_mount(mnt);
        if (!strncmp(mnt, "/sys/", 5)) {
            if (snprintf(out, n, "%s%s", s->sys, mnt + 4) >= (int)n)
                continue;
        } else {
            core_sncpy(out, n, mnt);
        }
        if (exists(out, "cgroup.controllers"))
            return true;
    }
    return false;
}

static void find_roots(sense_t *s, cg_priv *p)
{
    char base[CORE_PATH_MAX + 16];
    snprintf(base, sizeof base, "%s/fs/cgroup", s->sys);
    p->v2[0] = p->cpuacct[0] = p->memory[0] = p->pids[0] = 0;
    if (exists(base, "cgroup.controllers"))
        core_sncpy(p->v2, sizeof p->v2, base);
    else if (snprintf(p->v2, sizeof p->v2, "%s/unified", base) > 0 && exists(p->v2, "cgroup.controllers"))
        ;
    else if (!v2_from_mounts(s, p->v2, sizeof p->v2))
        p->v2[0] = 0;
    static const char *const cpuacct[] = {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"};
    for (size_t i = 0; i < 3 && !p->cpuacct[0]; i++) {
        if (snprintf(p->cpuacct, sizeof p->cpuacct, "%s/%s", base, cpuacct[i]) >= (int)sizeof p->cpuacct ||
            !exists(p->cpuacct, "cpuacct.usage"))
            p->cpuacct[0] = 0;
    }
    if (snprintf(p->memory, sizeof p->memory, "%s/memory", base) >= (int)sizeof p->memory ||
        !exists(p->memory, "memory.usage_in_bytes"))
        p->memory[0] = 0;
    if (snprintf(p->pids, sizeof p->pids, "%s/pids", base) >= (int)sizeof p->pids ||
        !exists(p->pids, "cgroup.procs"))
        p->pids[0] = 0;
    /* walk the hierarchy that has the controllers: pure v2, else v1 memory */
    bool v2full = false;
    if (p->v2[0]) {
        char path[CORE_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/cgroup.controllers", p->v2);
        ssize_t n = sn_path_read(path, &s->buf2);
        v2full = n > 0 && (strstr(s->buf2.p, "memory") || strstr(s->buf2.p, "cpu"));
    }
    p->walk_root = v2full ? p->v2 : p->memory[0] ? p->memory : p->cpuacct[0] ? p->cpuacct
                 : p->v2[0] ? p->v2 : NULL;
}

static void ent_close(cg_ent *ce)
{
    for (int i = 0; i < CF_N; i++) {
        sn_file_close(&ce->f[i]);
        free(ce->f[i].path);
        ce->f[i].path = NULL;
    }
}

static void cg_drop_all(cg_priv *p)
{
    for (int i = 0; i < p->cgs.n; i++)
        ent_close(sn_tab_at(&p->cgs, i));
    sn_tab_free(&p->cgs);
}

static int max_components(sense_t *s)
{
    int m = 0;
    for (int i = 0; i < s->nwatch_cgroup; i++) {
        int k = 1;
        for (const char *x = s->watch_cgroup[i]; *x; x++)
            k += *x == '/';
        m = k > m ? k : m;
    }
    return m > CG_MAX_DEPTH ? CG_MAX_DEPTH : m;
}

static int cg_setup(sense_t *s, sn_col *c, cg_priv *p)
{
    cg_drop_all(p);
    sn_tab_init(&p->cgs, sizeof(cg_ent), CG_MAX);
    p->scanned = false;
    p->max_depth = max_components(s);
    find_roots(s, p);
    if (!p->walk_root) {
        sn_unavailable(s, c, "no cgroup hierarchy under %s/fs/cgroup", s->sys);
        return 0;
    }
    char note[160];
    if (p->v2[0] && p->walk_root == p->v2)
        snprintf(note, sizeof note, "cgroup v2");
    else if (p->v2[0])
        snprintf(note, sizeof note, "cgroup v1 + v2 (hybrid)");
    else
        snprintf(note, sizeof note, "cgroup v1");
    if (!s->nwatch_cgroup)
        snprintf(note + strlen(note), sizeof note - strlen(note), " (no cgroups to watch)");
    sn_available(c, note);
    return 0;
}

/* cgroups whose files stay open: CG_KEEP_OPEN within a quarter of the fd limit */
static int cg_keep_open(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur / 4 / CF_N < CG_KEEP_OPEN)
        return (int)(rl.rlim_cur / 4 / CF_N);
    return CG_KEEP_OPEN;
}

static int cg_init(sense_t *s, sn_col *c)
{
    cg_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    p->keep = cg_keep_open();
    sn_tab_init(&p->cgs, sizeof(cg_ent), CG_MAX);
    return cg_setup(s, c, p);
}

static int cg_reconfigure(sense_t *s, sn_col *c) { return cg_setup(s, c, c->priv); }

static void cg_fini(sense_t *s, sn_col *c)
{
    cg_priv *p = c->priv;
    if (!p)
        return;
    cg_drop_all(p);
    free(p);
}

/* Does some glob match rel, or could one match below it? */
static bool glob_match(sense_t *s, const char *rel, bool *descend)
{
    bool m = false;
    *descend = false;
    int depth = rel[0] ? 1 : 0;
    for (const char *x = rel; *x; x++)
        depth += *x == '/';
    for (int i = 0; i < s->nwatch_cgroup; i++) {
        const char *g = s->watch_cgroup[i];
        while (*g == '/')
            g++;
        if (!rel[0]) {
            if (!*g || !strcmp(g, "."))
                m = true;
            *descend = *descend || *g;
            continue;
        }
        if (!fnmatch(g, rel, FNM_PATHNAME | FNM_PERIOD))
            m = true;
        /* prefix test: the first `depth` components of g against rel */
        char pre[CORE_PATH_MAX];
        const char *cut = g;
        for (int k = 0; k < depth && cut; k++) {
            cut = strchr(cut, '/');
            if (cut)
                cut++;
        }
        if (cut && *cut) {
            size_t pl = (size_t)(cut - g - 1);
            if (pl < sizeof pre) {
                memcpy(pre, g, pl);
                pre[pl] = 0;
                if (!fnmatch(pre, rel, FNM_PATHNAME | FNM_PERIOD))
                    *descend = true;
            }
        }
    }
    return m;
}

static void set_file(cg_ent *ce, int f, const char *dir, const char *rel, const char *name)
{
    char path[CORE_PATH_MAX * 2];
    snprintf(path, sizeof path, "%s%s%s/%s", dir, rel[0] ? "/" : "", rel, name);
    if (access(path, F_OK) == 0)
        sn_file_set(&ce->f[f], "%s", path);
}

static void add_cgroup(sense_t *s, cg_priv *p, const char *rel, int *cursor)
{
    bool created;
    int idx = sn_tab_find(&p->cgs, cursor, rel, strlen(rel), &created);
    if (idx < 0) {
        sn_note_once(&p->truncated_logged, "cgroup: following the first %d matching cgroups only", CG_MAX);
        return;
    }
    cg_ent *ce = sn_tab_at(&p->cgs, idx);
    ce->present = true;
    ce->lost = false;
    if (!created)
        return;
    for (int i = 0; i < CF_N; i++)
        sn_file_init(&ce->f[i]);
    for (int i = 0; i < C_N; i++)
        ce->ids[i] = -1;
    ce->gen = UINT32_MAX;
    const char *v2 = p->v2;
    if (v2[0]) {
        set_file(ce, CF_CPU, v2, rel, "cpu.stat");
        set_file(ce, CF_MEM, v2, rel, "memory.current");
        set_file(ce, CF_MAX, v2, rel, "memory.max");
        set_file(ce, CF_MSTAT, v2, rel, "memory.stat");
        set_file(ce, CF_PIDS, v2, rel, "pids.current");
        set_file(ce, CF_IO, v2, rel, "io.stat");
        set_file(ce, CF_PCPU, v2, rel, "cpu.pressure");
        set_file(ce, CF_PMEM, v2, rel, "memory.pressure");
        set_file(ce, CF_PIO, v2, rel, "io.pressure");
    }
    if (!ce->f[CF_CPU].path && p->cpuacct[0]) {
        set_file(ce, CF_CPU, p->cpuacct, rel, "cpuacct.usage");
        ce->v1cpu = ce->f[CF_CPU].path != NULL;
    }
    if (!ce->f[CF_MEM].path && p->memory[0]) {
        set_file(ce, CF_MEM, p->memory, rel, "memory.usage_in_bytes");
        set_file(ce, CF_MAX, p->memory, rel, "memory.limit_in_bytes");
        set_file(ce, CF_MSTAT, p->memory, rel, "memory.stat");
        ce->v1mem = ce->f[CF_MEM].path != NULL;
    }
    if (!ce->f[CF_PIDS].path && p->pids[0])
        set_file(ce, CF_PIDS, p->pids, rel, "pids.current");
}

static void walk(sense_t *s, cg_priv *p, char *rel, size_t rl, int depth, int *cursor)
{
    bool descend;
    if (glob_match(s, rel, &descend))
        add_cgroup(s, p, rel, cursor);
    if (!descend || depth >= p->max_depth)
        return;
    char path[CORE_PATH_MAX * 2];
    snprintf(path, sizeof path, "%s%s%s", p->walk_root, rl ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
            continue;
        size_t nl = strlen(de->d_name);
        if (rl + nl + 2 >= CORE_PATH_MAX)
            continue;
        size_t nrl = rl;
        if (rl)
            rel[nrl++] = '/';
        memcpy(rel + nrl, de->d_name, nl + 1);
        if (de->d_type == DT_UNKNOWN) {
            struct stat st;
            char full[CORE_PATH_MAX * 2];
            snprintf(full, sizeof full, "%s/%s", p->walk_root, rel);
            if (stat(full, &st) < 0 || !S_ISDIR(st.st_mode)) {
                rel[rl] = 0;
                continue;
            }
        }
        walk(s, p, rel, nrl + nl, depth + 1, cursor);
        rel[rl] = 0;
    }
    closedir(d);
}

static void scan(sense_t *s, cg_priv *p)
{
    for (int i = 0; i < p->cgs.n; i++)
        ((cg_ent *)sn_tab_at(&p->cgs, i))->present = false;
    char rel[CORE_PATH_MAX] = "";
    int cursor = 0;
    if (s->nwatch_cgroup)
        walk(s, p, rel, 0, 0, &cursor);
    /* drop what vanished (their fds would pin dead cgroups) */
    int o = 0;
    for (int i = 0; i < p->cgs.n; i++) {
        cg_ent *ce = sn_tab_at(&p->cgs, i);
        if (!ce->present) {
            ent_close(ce);
            free(ce->k.key);
            continue;
        }
        if (o != i)
            memcpy(sn_tab_at(&p->cgs, o), ce, sizeof *ce);
        o++;
    }
    p->cgs.n = o;
}

/* Reads one file of a cgroup into s->buf; -errno on failure. */
static ssize_t cg_read(sense_t *s, cg_ent *ce, int f, bool keep)
{
    if (!ce->f[f].path)
        return -ENOENT;
    ssize_t n = sn_file_read(&ce->f[f], &s->buf);
    if (!keep)
        sn_file_close(&ce->f[f]);
    return n;
}

static uint64_t kv(const char *q, const char *e, const char *key, bool *ok)
{
    size_t kl = strlen(key);
    *ok = false;
    while (q < e) {
        if ((size_t)(e - q) > kl && !memcmp(q, key, kl) && q[kl] == ' ') {
            q += kl;
            return sn_u64(&q, e, ok);
        }
        q = sn_eol(q, e);
    }
    return 0;
}

static void put_cg(sense_t *s, sn_col *c, cg_ent *ce, int k, double v)
{
    if (isnan(v))
        return;
    if (ce->ids[k] < 0) {
        char lab[CORE_PATH_MAX + 64], path[CORE_PATH_MAX + 2];
        snprintf(path, sizeof path, "/%s", ce->k.key);
        if (k >= C_PCPU)
            sn_labels(lab, sizeof lab, 2, "cgroup", path, "resource",
                      k == C_PCPU ? "cpu" : k == C_PMEM ? "memory" : "io");
        else
            sn_labels(lab, sizeof lab, 1, "cgroup", path);
        ce->ids[k] = sn_series(s, cdefs[k].name, lab, cdefs[k].unit, cdefs[k].help, cdefs[k].kind);
    }
    sn_put(s, c, ce->ids[k], v);
}

static bool read_cgroup(sense_t *s, sn_col *c, cg_ent *ce, bool keep)
{
    bool valid = ce->gen == c->gen - 1 && c->dt > 0;
    ce->gen = c->gen;
    double dt = c->dt;
    bool ok;
    int got = 0;
    ssize_t n = cg_read(s, ce, CF_CPU, keep);
    if (n > 0) {
        got++;
        const char *q = s->buf.p, *e = q + n;
        if (ce->v1cpu) {
            uint64_t ns = sn_u64(&q, e, &ok);
            if (ok)
                put_cg(s, c, ce, C_CPU, sn_rate(ns, &ce->prev_usage, valid, dt) / 1e7);
        } else {
            uint64_t us = kv(q, e, "usage_usec", &ok);
            if (ok)
                put_cg(s, c, ce, C_CPU, sn_rate(us, &ce->prev_usage, valid, dt) / 1e4);
            uint64_t thr = kv(q, e, "throttled_usec", &ok);
            if (ok)
                put_cg(s, c, ce, C_THR, sn_rate(thr, &ce->prev_thr, valid, dt) / 1e4);
            uint64_t nthr = kv(q, e, "nr_throttled", &ok);
            if (ok)
                put_cg(s, c, ce, C_NTHR, sn_rate(nthr, &ce->prev_nthr, valid, dt));
        }
    }
    n = cg_read(s, ce, CF_MEM, keep);
    if (n > 0) {
        got++;
        const char *q = s->buf.p;
        uint64_t v = sn_u64(&q, q + n, &ok);
        if (ok)
            put_cg(s, c, ce, C_MEM, (double)v);
    }
    n = cg_read(s, ce, CF_MAX, keep);
    if (n > 0) {
        const char *q = s->buf.p;
        uint64_t v = sn_u64(&q, q + n, &ok);
        if (ok && v < (1ULL << 60)) /* "max" or the v1 "unlimited" value: no limit */
            put_cg(s, c, ce, C_MAX, (double)v);
    }
    n = cg_read(s, ce, CF_MSTAT, keep);
    if (n > 0) {
        const char *q = s->buf.p, *e = q + n;
        uint64_t a = kv(q, e, ce->v1mem ? "total_rss" : "anon", &ok);
        if (ok)
            put_cg(s, c, ce, C_ANON, (double)a);
        uint64_t f = kv(q, e, ce->v1mem ? "total_cache" : "file", &ok);
        if (ok)
            put_cg(s, c, ce, C_FILE, (double)f);
    }
    n = cg_read(s, ce, CF_PIDS, keep);
    if (n > 0) {
        const char *q = s->buf.p;
        uint64_t v = sn_u64(&q, q + n, &ok);
        if (ok)
            put_cg(s, c, ce, C_PIDS, (double)v);
    }
    n = cg_read(s, ce, CF_IO, keep);
    if (n >= 0) {
        uint64_t rb = 0, wb = 0;
        const char *q = s->buf.p, *e = q + n;
        while (q < e) {
            const char *le = sn_eol(q, e);
            for (const char *x = q; x < le;) {
                x = sn_skip_ws(x, le);
                const char *t = x;
                x = sn_skip_tok(x, le);
                if (x - t > 7 && !memcmp(t, "rbytes=", 7)) {
                    const char *v = t + 7;
                    rb += sn_u64(&v, x, &ok);
                } else if (x - t > 7 && !memcmp(t, "wbytes=", 7)) {
                    const char *v = t + 7;
                    wb += sn_u64(&v, x, &ok);
                }
                if (x < le && *x == '\n')
                    break;
            }
            q = le;
        }
        put_cg(s, c, ce, C_IOR, sn_rate(rb, &ce->prev_r, valid, dt));
        put_cg(s, c, ce, C_IOW, sn_rate(wb, &ce->prev_w, valid, dt));
    }
    for (int r = 0; r < 3; r++) {
        n = cg_read(s, ce, CF_PCPU + r, keep);
        if (n <= 0)
            continue;
        const char *q = s->buf.p, *e = q + n;
        if (n > 12 && !memcmp(q, "some avg10=", 11)) {
            q += 11;
            double v = sn_dbl(&q, e, &ok);
            if (ok)
                put_cg(s, c, ce, C_PCPU + r, v);
        }
    }
    return got > 0;
}

static int cg_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    cg_priv *p = c->priv;
    int keep = p->keep;
    if (!p->walk_root) {
        cg_setup(s, c, p); /* retry: maybe mounted since */
        if (!p->walk_root)
            return -ENOENT;
    }
    bool lost = false;
    for (int i = 0; i < p->cgs.n; i++) {
        cg_ent *ce = sn_tab_at(&p->cgs, i);
        if (!read_cgroup(s, c, ce, i < keep))
            lost = ce->lost = true;
    }
    int64_t since = now_ms - p->last_scan_ms;
    if (!p->scanned || since >= CG_RESCAN_MS || (lost && since >= CG_RESCAN_LOST_MS)) {
        scan(s, p);
        p->scanned = true;
        p->last_scan_ms = now_ms;
        for (int i = 0; i < p->cgs.n; i++) {
            cg_ent *ce = sn_tab_at(&p->cgs, i);
            if (ce->gen == UINT32_MAX) /* new: first reading */
                read_cgroup(s, c, ce, i < keep);
        }
    }
    return 0;
}

const sn_module sn_mod_cgroup = {
    .name = "cgroup", .init = cg_init, .collect = cg_collect, .fini = cg_fini,
    .reconfigure = cg_reconfigure,
};
