/* irq.c: the `interrupts` and `softirqs` groups.
 *  - interrupts: /proc/interrupts, each IRQ's count summed over cpus, per
 *    second: interrupts.per_second{irq="24",name="IO-APIC 5-edge ACPI:Ged"}
 *    (the name is the text after the counts, blanks collapsed). An IRQ adds
 *    a series the first time it has fired.
 *  - softirqs: /proc/softirqs, each type summed over cpus, per second:
 *    softirqs.per_second{type="net_rx"}. Same first-fired rule. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct irq_ent {
    sn_key k;
    bool nonzero;
    int id;
    uint64_t prev;
} irq_ent;

typedef struct irq_priv {
    sn_file f;
    sn_tab tab;
    bool soft;
} irq_priv;

static int irq_init_common(sense_t *s, sn_col *c, const char *file, bool soft)
{
    irq_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    p->soft = soft;
    return sn_file_table_open(s, c, &p->f, &p->tab, sizeof(irq_ent), 8192, file, "procfs");
}

static int irq_init(sense_t *s, sn_col *c) { return irq_init_common(s, c, "interrupts", false); }
static int softirq_init(sense_t *s, sn_col *c) { return irq_init_common(s, c, "softirqs", true); }

static void irq_fini(sense_t *s, sn_col *c)
{
    irq_priv *p = c->priv;
    if (!p)
        return;
    sn_file_table_close(c, &p->f, &p->tab);
}

static void collapse(const char *x, const char *e, char *out, size_t n)
{
    size_t o = 0;
    x = sn_skip_ws(x, e);
    while (x < e && *x != '\n' && o + 1 < n) {
        if (*x == ' ' || *x == '\t') {
            x = sn_skip_ws(x, e);
            if (x < e && *x != '\n')
                out[o++] = ' ';
            continue;
        }
        out[o++] = *x++;
    }
    out[o] = 0;
}

static int irq_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    irq_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    /* header: one "CPUn" column per online cpu */
    const char *le = sn_eol(q, e);
    int ncpu = 0;
    for (const char *x = q; x < le;) {
        x = sn_skip_ws(x, le);
        if (x >= le || *x == '\n')
            break;
        x = sn_skip_tok(x, le);
        ncpu++;
    }
    q = le;
    int cursor = 0;
    while (q < e) {
        le = sn_eol(q, e);
        const char *colon = memchr(q, ':', (size_t)(le - q));
        if (!colon) {
            q = le;
            continue;
        }
        const char *ks = sn_skip_ws(q, colon);
        const char *x = colon + 1;
        uint64_t sum = 0;
        for (int i = 0; i < ncpu; i++) {
            bool ok;
            const char *save = x;
            uint64_t v = sn_u64(&x, le, &ok);
            if (!ok) {
                x = save;
                break;
            }
            sum += v;
        }
        bool created;
        int idx = sn_tab_find(&p->tab, &cursor, ks, (size_t)(colon - ks), &created);
        if (idx >= 0) {
            irq_ent *ie = sn_tab_at(&p->tab, idx);
            if (created)
                ie->id = -1;
            bool valid = ie->k.gen == c->gen - 1 && c->dt > 0;
            ie->k.gen = c->gen;
            if (sum)
                ie->nonzero = true;
            double r = sn_rate(sum, &ie->prev, valid, c->dt);
            if (ie->nonzero && !isnan(r)) {
                if (ie->id < 0) {
                    char lab[400];
                    if (p->soft) {
                        char type[64];
                        size_t i = 0;
                        for (; ie->k.key[i] && i + 1 < sizeof type; i++)
                            type[i] = (char)(ie->k.key[i] >= 'A' && ie->k.key[i] <= 'Z'
                                                 ? ie->k.key[i] - 'A' + 'a'
                                                 : ie->k.key[i]);
                        type[i] = 0;
                        sn_labels(lab, sizeof lab, 1, "type", type);
                        ie->id = sn_series(s, "softirqs.per_second", lab, "1/s",
                                           "softirqs of this type run per second", MEM_RATE);
                    } else {
                        char name[256];
                        collapse(x, le, name, sizeof name);
                        sn_labels(lab, sizeof lab, 2, "irq", ie->k.key, "name", name);
                        ie->id = sn_series(s, "interrupts.per_second", lab, "1/s",
                                           "interrupts per second, all cpus", MEM_RATE);
                    }
                }
                sn_put(s, c, ie->id, r);
            }
        }
        q = le;
    }
    return 0;
}

const sn_module sn_mod_interrupts = {
    .name = "interrupts", .init = irq_init, .collect = irq_collect, .fini = irq_fini,
};
const sn_module sn_mod_softirqs = {
    .name = "softirqs", .init = softirq_init, .collect = irq_collect, .fini = irq_fini,
};
