/* meminfo.c: the `load`, `memory` and `psi` groups.
 *  - load: /proc/loadavg 1/5/15 minute averages;
 *  - memory: /proc/meminfo in bytes (plus used = total - available, and
 *    swap used), and page faults / swap-ins / swap-outs per second from
 *    /proc/vmstat (the vmstat group leaves those four fields out, so each
 *    value is stored once);
 *  - psi: /proc/pressure/{cpu,memory,io}: some/full avg10/60/300 in percent
 *    and the stall total as stalled microseconds per second. The
 *    system-wide cpu "full" line is always zero (the kernel defines it only
 *    for cgroups), so it is not stored. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- load ------------------------------------------------------------------------ */

typedef struct load_priv {
    sn_file f;
    int ids[3];
    int kids[3]; /* source="kernel" */
} load_priv;

static int load_init(sense_t *s, sn_col *c)
{
    load_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->f);
    p->ids[0] = p->ids[1] = p->ids[2] = -1;
    p->kids[0] = p->kids[1] = p->kids[2] = -1;
    if (sn_file_set(&p->f, "%s/loadavg", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, "procfs");
    return 0;
}

static void simple_fini(sn_file *f, void *p)
{
    sn_file_close(f);
    free(f->path);
    free(p);
}

static void load_fini(sense_t *s, sn_col *c)
{
    load_priv *p = c->priv;
    if (p)
        simple_fini(&p->f, p);
}

static int load_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    load_priv *p = c->priv;
    static const char *const names[3] = {"load.load1", "load.load5", "load.load15"};
    static const char *const helps[3] = {
        "run queue length averaged over 1 minute", "run queue length averaged over 5 minutes",
        "run queue length averaged over 15 minutes"};
    const sn_kb_snap *k = sn_kb_tick(s);
    if (k) {
        for (int i = 0; i < 3; i++)
            sn_put_lazy(s, c, &p->kids[i], names[i], "source=\"kernel\"", "", helps[i], MEM_GAUGE,
                        k->load[i]);
        return 0;
    }
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    for (int i = 0; i < 3; i++) {
        bool ok;
        double v = sn_dbl(&q, e, &ok);
        if (!ok)
            break;
        sn_put_lazy(s, c, &p->ids[i], names[i], "", "", helps[i], MEM_GAUGE, v);
    }
    return 0;
}

const sn_module sn_mod_load = {
    .name = "load", .init = load_init, .collect = load_collect, .fini = load_fini,
};

/* ---- memory ------------------------------------------------------------------------ */

enum {
    M_TOTAL, M_FREE, M_AVAIL, M_BUFFERS, M_CACHED, M_SHMEM, M_SRECL, M_SUNRECL, M_DIRTY,
    M_WRITEBACK, M_ANON, M_SWAPTOTAL, M_SWAPFREE, M_COMMITTED, M_COMMITLIMIT, M_HPTOTAL,
    M_HPFREE, M_NKEYS,
    /* derived */
    M_USED = M_NKEYS, M_USEDPCT, M_SWAPUSED, M_NALL
};

static const struct {
    const char *key, *name, *unit, *help;
} mdefs[M_NALL] = {
    {"MemTotal", "memory.total_bytes", "bytes", "usable RAM"},
    {"MemFree", "memory.free_bytes", "bytes", "RAM not used for anything"},
    {"MemAvailable", "memory.available_bytes", "bytes", "RAM available for new work without swapping"},
    {"Buffers", "memory.buffers_bytes", "bytes", "block device buffers"},
    {"Cached", "memory.cached_bytes", "bytes", "page cache"},
    {"Shmem", "memory.shmem_bytes", "bytes", "shared memory and tmpfs"},
    {"SReclaimable", "memory.slab_reclaimable_bytes", "bytes", "kernel slab that can be reclaimed"},
    {"SUnreclaim", "memory.slab_unreclaimable_bytes", "bytes", "kernel slab that cannot be reclaimed"},
    {"Dirty", "memory.dirty_bytes", "bytes", "memory waiting to be written to disk"},
    {"Writeback", "memory.writeback_bytes", "bytes", "memory being written to disk"},
    {"AnonPages", "memory.anon_bytes", "bytes", "anonymous memory of processes"},
    {"SwapTotal", "memory.swap_total_bytes", "bytes", "swap space"},
    {"SwapFree", "memory.swap_free_bytes", "bytes", "unused swap space"},
    {"Committed_AS", "memory.committed_as_bytes", "bytes", "memory committed to processes"},
    {"CommitLimit", "memory.commit_limit_bytes", "bytes", "commit limit under strict overcommit"},
    {"HugePages_Total", "memory.hugepages_total", "", "huge pages in the pool"},
    {"HugePages_Free", "memory.hugepages_free", "", "huge pages not allocated"},
    {NULL, "memory.used_bytes", "bytes", "RAM in use (total - available)"},
    {NULL, "memory.used_percent", "percent", "RAM in use as a share of total"},
    {NULL, "memory.swap_used_bytes", "bytes", "swap space in use"},
};

enum { V_PGFAULT, V_PGMAJFAULT, V_PSWPIN, V_PSWPOUT, V_N };
static const struct {
    const char *key, *name, *help;
} vdefs[V_N] = {
    {"pgfault", "memory.page_faults_per_second", "page faults per second"},
    {"pgmajfault", "memory.major_page_faults_per_second", "page faults that needed disk I/O, per second"},
    {"pswpin", "memory.swap_in_pages_per_second", "pages swapped in per second"},
    {"pswpout", "memory.swap_out_pages_per_second", "pages swapped out per second"},
};

typedef struct memory_priv {
    sn_file f, vm;
    int ids[M_NALL];
    int kids[M_NALL]; /* source="kernel" */
    int vids[V_N];
    uint64_t vprev[V_N];
    uint32_t vgen;
    bool vm_missing_logged;
} memory_priv;

static int memory_init(sense_t *s, sn_col *c)
{
    memory_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->f);
    sn_file_init(&p->vm);
    for (int i = 0; i < M_NALL; i++)
        p->ids[i] = p->kids[i] = -1;
    for (int i = 0; i < V_N; i++)
        p->vids[i] = -1;
    p->vgen = UINT32_MAX;
    if (sn_file_set(&p->f, "%s/meminfo", s->proc) < 0 ||
        sn_file_set(&p->vm, "%s/vmstat", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, "procfs");
    return 0;
}

static void memory_fini(sense_t *s, sn_col *c)
{
    memory_priv *p = c->priv;
    if (!p)
        return;
    sn_file_close(&p->vm);
    free(p->vm.path);
    simple_fini(&p->f, p);
}

static int memory_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    memory_priv *p = c->priv;
    const sn_kb_snap *k = sn_kb_tick(s);
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0 && !k) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    if (n < 0)
        n = 0; /* the kernel bridge's values only */
    double v[M_NALL];
    bool have[M_NALL] = {false};
    const char *q = s->buf.p, *e = q + n;
    while (q < e) {
        const char *colon = memchr(q, ':', (size_t)(e - q));
        if (!colon)
            break;
        size_t kl = (size_t)(colon - q);
        for (int i = 0; i < M_NKEYS; i++) {
            if (have[i] || mdefs[i].key[0] != q[0] || strlen(mdefs[i].key) != kl ||
                memcmp(mdefs[i].key, q, kl))
                continue;
            const char *x = colon + 1;
            bool ok;
            uint64_t val = sn_u64(&x, e, &ok);
            x = sn_skip_ws(x, e);
            if (ok) {
                have[i] = true;
                v[i] = (double)val * (x + 1 < e && x[0] == 'k' && x[1] == 'B' ? 1024.0 : 1.0);
            }
            break;
        }
        q = sn_eol(colon, e);
    }
    if (have[M_TOTAL] && have[M_AVAIL]) {
        have[M_USED] = have[M_USEDPCT] = true;
        v[M_USED] = v[M_TOTAL] - v[M_AVAIL];
        v[M_USEDPCT] = v[M_TOTAL] > 0 ? v[M_USED] * 100.0 / v[M_TOTAL] : 0;
    }
    if (have[M_SWAPTOTAL] && have[M_SWAPFREE]) {
        have[M_SWAPUSED] = true;
        v[M_SWAPUSED] = v[M_SWAPTOTAL] - v[M_SWAPFREE];
    }
    bool swap = have[M_SWAPTOTAL] && v[M_SWAPTOTAL] > 0;
    bool huge = have[M_HPTOTAL] && v[M_HPTOTAL] > 0;
    if (!swap)
        have[M_SWAPFREE] = have[M_SWAPUSED] = false; /* no swap: total 0 says it */
    if (!huge)
        have[M_HPTOTAL] = have[M_HPFREE] = false;
    bool kern[M_NALL] = {false};
    if (k) { /* what the snapshot covers; swap stays procfs (no SwapTotal there) */
        static const int cov[] = {M_TOTAL, M_FREE, M_AVAIL, M_BUFFERS, M_CACHED, M_SHMEM,
                                  M_USED, M_USEDPCT};
        const double kv[] = {(double)k->mem_total, (double)k->mem_free, (double)k->mem_available,
                             (double)k->mem_buffers, (double)k->mem_cached, (double)k->mem_shared,
                             (double)k->mem_total - (double)k->mem_available,
                             ((double)k->mem_total - (double)k->mem_available) * 100.0 /
                                 (double)k->mem_total};
        for (size_t i = 0; i < sizeof cov / sizeof cov[0]; i++) {
            kern[cov[i]] = have[cov[i]] = true;
            v[cov[i]] = kv[i];
        }
    }
    for (int i = 0; i < M_NALL; i++) {
        if (have[i] && kern[i])
            sn_put_lazy(s, c, &p->kids[i], mdefs[i].name, "source=\"kernel\"", mdefs[i].unit,
                        mdefs[i].help, MEM_GAUGE, v[i]);
        else if (have[i])
            sn_put_lazy(s, c, &p->ids[i], mdefs[i].name, "", mdefs[i].unit, mdefs[i].help,
                        MEM_GAUGE, v[i]);
    }

    /* fault and swap rates from /proc/vmstat */
    n = sn_file_read(&p->vm, &s->buf);
    if (n < 0) {
        sn_note_once(&p->vm_missing_logged, "memory: no fault rates: %s: %s", p->vm.path,
                     strerror((int)-n));
        return 0;
    }
    bool valid = p->vgen == c->gen - 1 && c->dt > 0;
    q = s->buf.p;
    e = q + n;
    int found = 0;
    while (q < e && found < V_N) {
        const char *ke = sn_skip_tok(q, e);
        size_t kl = (size_t)(ke - q);
        for (int i = 0; i < V_N; i++) {
            if (strlen(vdefs[i].key) != kl || memcmp(vdefs[i].key, q, kl))
                continue;
            const char *x = ke;
            bool ok;
            uint64_t val = sn_u64(&x, e, &ok);
            found++;
            if (!ok)
                break;
            double r = sn_rate(val, &p->vprev[i], valid, c->dt);
            if (i >= V_PSWPIN && !swap)
                break;
            sn_put_lazy(s, c, &p->vids[i], vdefs[i].name, "", "1/s", vdefs[i].help, MEM_RATE, r);
            break;
        }
        q = sn_eol(ke, e);
    }
    p->vgen = c->gen;
    return 0;
}

const sn_module sn_mod_memory = {
    .name = "memory", .init = memory_init, .collect = memory_collect, .fini = memory_fini,
};

/* ---- psi ---------------------------------------------------------------------------- */

static const char *const psi_res[3] = {"cpu", "memory", "io"};

typedef struct psi_res_state {
    sn_file f;
    bool missing;
    uint64_t prev[2];
    uint32_t gen[2];
    int ids[2][4]; /* [some/full][avg10, avg60, avg300, stall rate] */
} psi_res_state;

typedef struct psi_priv {
    psi_res_state r[3];
} psi_priv;

static void psi_fini(sense_t *s, sn_col *c)
{
    psi_priv *p = c->priv;
    if (!p)
        return;
    for (int i = 0; i < 3; i++) {
        sn_file_close(&p->r[i].f);
        free(p->r[i].f.path);
    }
    free(p);
}

static int psi_init(sense_t *s, sn_col *c)
{
    psi_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    for (int i = 0; i < 3; i++) {
        sn_file_init(&p->r[i].f);
        if (sn_file_set(&p->r[i].f, "%s/pressure/%s", s->proc, psi_res[i]) < 0)
            return -ENOMEM;
        for (int k = 0; k < 2; k++) {
            p->r[i].gen[k] = UINT32_MAX;
            for (int j = 0; j < 4; j++)
                p->r[i].ids[k][j] = -1;
        }
    }
    sn_available(c, "procfs");
    return 0;
}

static int psi_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    psi_priv *p = c->priv;
    static const char *const fam[2][4] = {
        {"psi.some_avg10_percent", "psi.some_avg60_percent", "psi.some_avg300_percent",
         "psi.some_stall_us_per_second"},
        {"psi.full_avg10_percent", "psi.full_avg60_percent", "psi.full_avg300_percent",
         "psi.full_stall_us_per_second"},
    };
    static const char *const help[2][4] = {
        {"share of time some tasks were stalled, 10 s average", "share of time some tasks were stalled, 60 s average",
         "share of time some tasks were stalled, 300 s average", "microseconds per second some tasks were stalled"},
        {"share of time all tasks were stalled, 10 s average", "share of time all tasks were stalled, 60 s average",
         "share of time all tasks were stalled, 300 s average", "microseconds per second all tasks were stalled"},
    };
    int ok_files = 0;
    char first_err[160] = "";
    for (int i = 0; i < 3; i++) {
        psi_res_state *r = &p->r[i];
        ssize_t n = sn_file_read(&r->f, &s->buf);
        if (n < 0) {
            if (!first_err[0])
                snprintf(first_err, sizeof first_err, "%s: %s", r->f.path, strerror((int)-n));
            continue;
        }
        ok_files++;
        const char *q = s->buf.p, *e = q + n;
        while (q < e) {
            int k = -1;
            if (e - q > 5 && !memcmp(q, "some ", 5))
                k = 0;
            else if (e - q > 5 && !memcmp(q, "full ", 5))
                k = 1;
            if (k < 0 || (k == 1 && i == 0)) {
                q = sn_eol(q, e);
                continue;
            }
            q += 5;
            const char *le = sn_eol(q, e);
            double vals[4];
            int got = 0;
            uint64_t total = 0;
            while (q < le && got < 4) {
                q = sn_skip_ws(q, le);
                const char *eq = memchr(q, '=', (size_t)(le - q));
                if (!eq)
                    break;
                q = eq + 1;
                bool ok;
                if (got < 3)
                    vals[got] = sn_dbl(&q, le, &ok);
                else
                    total = sn_u64(&q, le, &ok);
                if (!ok)
                    break;
                got++;
            }
            if (got == 4) {
                char lab[64];
                sn_labels(lab, sizeof lab, 1, "resource", psi_res[i]);
                for (int j = 0; j < 3; j++)
                    sn_put_lazy(s, c, &r->ids[k][j], fam[k][j], lab, "percent", help[k][j],
                                MEM_GAUGE, vals[j]);
                double rate = sn_rate(total, &r->prev[k], r->gen[k] == c->gen - 1, c->dt);
                r->gen[k] = c->gen;
                sn_put_lazy(s, c, &r->ids[k][3], fam[k][3], lab, "us/s", help[k][3], MEM_RATE,
                            rate);
            }
            q = le;
        }
    }
    if (!ok_files) {
        sn_unavailable(s, c, "%s", first_err);
        return -ENOENT;
    }
    if (first_err[0] && !c->logged) {
        sn_note_once(&c->logged, "psi partly unavailable: %s", first_err);
        if (snprintf(c->note, sizeof c->note, "procfs (%s)", first_err) >= (int)sizeof c->note)
            c->note[sizeof c->note - 2] = ')';
    }
    return 0;
}

const sn_module sn_mod_psi = {
    .name = "psi", .init = psi_init, .collect = psi_collect, .fini = psi_fini,
};
