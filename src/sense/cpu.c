/* cpu.c: the `cpu` group, from /proc/stat: time per state as a percent for
 * each core and for the whole machine (the total is the average over cores,
 * so it is 0-100 too), context switches, forks and interrupts per second,
 * and the running / blocked task counts.
 *
 * A state series appears once that state's counter is non-zero on that cpu
 * (no guest or steal series on a machine that never has any). Guest time is
 * already counted inside user/nice by the kernel, so it is reported but left
 * out of the total the percentages are taken of. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[SN_CPU_NSTATES] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice",
};

typedef struct cpu_ent {
    sn_key k;
    uint64_t prev[SN_CPU_NSTATES];
    int ids[SN_CPU_NSTATES];
    bool seen_nonzero[SN_CPU_NSTATES];
} cpu_ent;

enum { G_CTXT, G_FORKS, G_INTR, G_RUNNING, G_BLOCKED, G_N };

typedef struct cpu_priv {
    sn_file f;
    sn_tab cpus;
    sn_tab kcpus;    /* the same from the kernel bridge (its own previous readings) */
    uint64_t prev[G_N];
    int ids[G_N];
    uint32_t gprev_gen;
    bool stat_missing_logged;
} cpu_priv;

bool sn_cpu_percent(const uint64_t *prev, const uint64_t *cur, double *out)
{
    uint64_t d[SN_CPU_NSTATES], total = 0;
    for (int i = 0; i < SN_CPU_NSTATES; i++) {
        d[i] = cur[i] >= prev[i] ? cur[i] - prev[i] : 0;
        if (i != SN_CPU_GUEST && i != SN_CPU_GUEST_NICE)
            total += d[i];
    }
    if (!total)
        return false;
    for (int i = 0; i < SN_CPU_NSTATES; i++) {
        double v = (double)d[i] * 100.0 / (double)total;
        out[i] = v > 100.0 ? 100.0 : v;
    }
    return true;
}

static int cpu_init(sense_t *s, sn_col *c)
{
    cpu_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    for (int i = 0; i < G_N; i++)
        p->ids[i] = -1;
    p->gprev_gen = UINT32_MAX;
    sn_tab_init(&p->kcpus, sizeof(cpu_ent), 4097);
    return sn_file_table_open(s, c, &p->f, &p->cpus, sizeof(cpu_ent), 4097, "stat", "procfs");
}

static void cpu_fini(sense_t *s, sn_col *c)
{
    cpu_priv *p = c->priv;
    if (!p)
        return;
    sn_tab_free(&p->kcpus);
    sn_file_table_close(c, &p->f, &p->cpus);
}

/* One cpu's counters (name "cpu" = the total, else "cpuN"); kernel: from
 * the kernel bridge (ns instead of ticks: the percentages are ratios). */
static void put_cpu_vals(sense_t *s, sn_col *c, sn_tab *tab, int *cursor, const char *name,
                         size_t nlen, const uint64_t *cur, bool kernel)
{
    bool created;
    int idx = sn_tab_find(tab, cursor, name, nlen, &created);
    if (idx < 0)
        return;
    cpu_ent *ce = sn_tab_at(tab, idx);
    if (created)
        for (int i = 0; i < SN_CPU_NSTATES; i++)
            ce->ids[i] = -1;
    bool valid = ce->k.gen == c->gen - 1 && c->dt > 0;
    double pct[SN_CPU_NSTATES];
    bool have = valid && sn_cpu_percent(ce->prev, cur, pct);
    for (int i = 0; i < SN_CPU_NSTATES; i++) {
        if (cur[i] < ce->prev[i])
            have = false; /* counter went back (cpu hot-unplugged / reset) */
    }
    for (int i = 0; i < SN_CPU_NSTATES; i++) {
        if (cur[i])
            ce->seen_nonzero[i] = true;
        if (have && ce->seen_nonzero[i]) {
            if (ce->ids[i] < 0) {
                char lab[128];
                if (kernel)
                    sn_labels(lab, sizeof lab, 3, "cpu", nlen == 3 ? "total" : ce->k.key, "state",
                              state_names[i], "source", "kernel");
                else
                    sn_labels(lab, sizeof lab, 2, "cpu", nlen == 3 ? "total" : ce->k.key, "state",
                              state_names[i]);
                ce->ids[i] = sn_series(s, "cpu.usage_percent", lab, "percent",
                                       "share of cpu time spent in this state", MEM_RATE);
            }
            sn_put(s, c, ce->ids[i], pct[i]);
        }
    }
    memcpy(ce->prev, cur, sizeof ce->prev);
    ce->k.gen = c->gen;
}

static void put_cpu_line(sense_t *s, sn_col *c, cpu_priv *p, int *cursor, const char *name,
                         size_t nlen, const char *q, const char *e)
{
    uint64_t cur[SN_CPU_NSTATES] = {0};
    for (int i = 0; i < SN_CPU_NSTATES; i++) {
        bool ok;
        cur[i] = sn_u64(&q, e, &ok);
        if (!ok)
            break;
    }
    put_cpu_vals(s, c, &p->cpus, cursor, name, nlen, cur, false);
}

static void put_kernel_cpus(sense_t *s, sn_col *c, cpu_priv *p, const sn_kb_snap *k)
{
    int cursor = 0;
    put_cpu_vals(s, c, &p->kcpus, &cursor, "cpu", 3, k->total, true);
    for (int i = 0; i < k->ncpus; i++) {
        char name[24];
        int nl = snprintf(name, sizeof name, "cpu%d", k->cpus[i].cpu);
        put_cpu_vals(s, c, &p->kcpus, &cursor, name, (size_t)nl, k->cpus[i].v, true);
    }
}

static const struct {
    const char *key, *name, *unit, *help;
    int kind;
} gdefs[G_N] = {
    {"ctxt", "cpu.context_switches_per_second", "1/s", "context switches per second", MEM_RATE},
    {"processes", "cpu.forks_per_second", "1/s", "processes and threads created per second", MEM_RATE},
    {"intr", "cpu.interrupts_per_second", "1/s", "interrupts serviced per second", MEM_RATE},
    {"procs_running", "cpu.procs_running", "", "tasks runnable right now", MEM_GAUGE},
    {"procs_blocked", "cpu.procs_blocked", "", "tasks blocked on I/O right now", MEM_GAUGE},
};

static int cpu_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    cpu_priv *p = c->priv;
    const sn_kb_snap *k = sn_kb_tick(s);
    if (k)
        put_kernel_cpus(s, c, p, k);
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0 && k) {
        sn_note_once(&p->stat_missing_logged, "cpu: %s: %s: only the kernel bridge's values",
                     p->f.path, strerror((int)-n));
        return 0;
    }
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    int cursor = 0;
    bool gvalid = p->gprev_gen == c->gen - 1 && c->dt > 0;
    while (q < e) {
        const char *ks = q;
        const char *ke = sn_skip_tok(q, e);
        size_t kl = (size_t)(ke - ks);
        if (kl >= 3 && !memcmp(ks, "cpu", 3)) {
            if (!k)
                put_cpu_line(s, c, p, &cursor, ks, kl, ke, e);
        } else {
            for (int g = 0; g < G_N; g++) {
                if (strlen(gdefs[g].key) != kl || memcmp(gdefs[g].key, ks, kl))
                    continue;
                const char *v = ke;
                bool ok;
                uint64_t x = sn_u64(&v, e, &ok);
                if (!ok)
                    break;
                double val;
                if (gdefs[g].kind == MEM_RATE)
                    val = sn_rate(x, &p->prev[g], gvalid, c->dt);
                else
                    val = (double)x;
                sn_put_lazy(s, c, &p->ids[g], gdefs[g].name, "", gdefs[g].unit, gdefs[g].help,
                            gdefs[g].kind, val);
                break;
            }
        }
        q = sn_eol(ke, e);
    }
    p->gprev_gen = c->gen;
    return 0;
}

const sn_module sn_mod_cpu = {
    .name = "cpu", .init = cpu_init, .collect = cpu_collect, .fini = cpu_fini,
};
