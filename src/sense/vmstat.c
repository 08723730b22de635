/* vmstat.c: the `vmstat` group, from /proc/vmstat.
 *
 * Naming: the kernel's names are already snake case, so each field is its
 * own family: vmstat.<field>_per_second for event counters (pgpgin,
 * pgscan_kswapd, oom_kill, ...) as rates, and vmstat.<field> for the nr_*
 * gauges (page counts, as the kernel gives them) and workingset_nodes.
 * nr_foll_pin_* are counters despite their prefix. pgfault, pgmajfault,
 * pswpin and pswpout are stored by the memory group (memory.*_per_second)
 * and left out here. A field adds a series the first time it is non-zero. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_RATE, K_GAUGE, K_SKIP };

typedef struct vm_ent {
    sn_key k;
    int8_t kind;
    bool nonzero;
    int id;
    uint64_t prev;
} vm_ent;

typedef struct vm_priv {
    sn_file f;
    sn_tab fields;
} vm_priv;

static int vm_kind(const char *k)
{
    static const char *const skip[] = {"pgfault", "pgmajfault", "pswpin", "pswpout"};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strcmp(k, skip[i]))
            return K_SKIP;
    if (!strncmp(k, "nr_foll_pin_", 12))
        return K_RATE;
    if (!strncmp(k, "nr_", 3) || !strcmp(k, "workingset_nodes"))
        return K_GAUGE;
    return K_RATE;
}

static int vm_init(sense_t *s, sn_col *c)
{
    vm_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    return sn_file_table_open(s, c, &p->f, &p->fields, sizeof(vm_ent), 2048, "vmstat", "procfs");
}

static void vm_fini(sense_t *s, sn_col *c)
{
    vm_priv *p = c->priv;
    if (!p)
        return;
    sn_file_table_close(c, &p->f, &p->fields);
}

static int vm_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    vm_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    int cursor = 0;
    while (q < e) {
        const char *ks = q, *ke = sn_skip_tok(q, e);
        bool ok;
        const char *x = ke;
        uint64_t val = sn_u64(&x, e, &ok);
        q = sn_eol(x, e);
        if (!ok || ke == ks)
            continue;
        bool created;
        int idx = sn_tab_find(&p->fields, &cursor, ks, (size_t)(ke - ks), &created);
        if (idx < 0)
            continue;
        vm_ent *ve = sn_tab_at(&p->fields, idx);
        if (created) {
            ve->id = -1;
            ve->kind = (int8_t)vm_kind(ve->k.key);
        }
        if (ve->kind == K_SKIP)
            continue;
        bool valid = ve->k.gen == c->gen - 1 && c->dt > 0;
        ve->k.gen = c->gen;
        if (val)
            ve->nonzero = true;
        double v = ve->kind == K_GAUGE ? (double)val : sn_rate(val, &ve->prev, valid, c->dt);
        if (!ve->nonzero || isnan(v))
            continue;
        if (ve->id < 0) {
            char fam[200], help[200];
            snprintf(fam, sizeof fam, "vmstat.%s%s", ve->k.key,
                     ve->kind == K_RATE ? "_per_second" : "");
            snprintf(help, sizeof help, "%s from /proc/vmstat%s", ve->k.key,
                     ve->kind == K_RATE ? ", per second" : "");
            ve->id = sn_series(s, fam, "", ve->kind == K_RATE ? "1/s" : "", help,
                               ve->kind == K_RATE ? MEM_RATE : MEM_GAUGE);
        }
        sn_put(s, c, ve->id, v);
    }
    return 0;
}

const sn_module sn_mod_vmstat = {
    .name = "vmstat", .init = vm_init, .collect = vm_collect, .fini = vm_fini,
};
