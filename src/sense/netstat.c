/* netstat.c: the `netstat` group, from /proc/net/snmp and /proc/net/netstat
 * (pairs of "Proto: names" / "Proto: values" lines).
 *
 * Naming: one family per protocol line, the kernel's field name as a label,
 * so a user sees the exact name the kernel documents and can list a whole
 * protocol at once:
 *     netstat.tcp_per_second{field="ActiveOpens"}        counters, as rates
 *     netstat.tcp_ext_per_second{field="ListenOverflows"}
 *     netstat.tcp{field="CurrEstab"}                     gauges, as is
 * (the protocol goes to snake case: TcpExt -> tcp_ext, IpExt -> ip_ext,
 * MPTcpExt -> mp_tcp_ext). Constant settings (Ip Forwarding, DefaultTTL, Tcp
 * RtoAlgorithm, RtoMin, RtoMax, MaxConn) are not stored. A field adds a
 * series the first time it is non-zero: most of the ~300 fields stay zero
 * for the life of a machine. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { K_RATE, K_GAUGE, K_SKIP };

typedef struct ns_ent {
    sn_key k;        /* "Proto Field" */
    int8_t kind;
    bool nonzero;
    int id;
    uint64_t prev;
} ns_ent;

typedef struct ns_priv {
    sn_file f[2];
    bool missing[2];
    sn_tab fields;
} ns_priv;

static int field_kind(const char *proto, size_t pl, const char *field, size_t fl)
{
    static const struct {
        const char *proto, *field;
        int kind;
    } special[] = {
        {"Tcp", "CurrEstab", K_GAUGE},     {"MPTcpExt", "MPCurrEstab", K_GAUGE},
        {"Tcp", "RtoAlgorithm", K_SKIP},   {"Tcp", "RtoMin", K_SKIP},
        {"Tcp", "RtoMax", K_SKIP},         {"Tcp", "MaxConn", K_SKIP},
        {"Ip", "Forwarding", K_SKIP},      {"Ip", "DefaultTTL", K_SKIP},
    };
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
        if (strlen(special[i].proto) == pl && !memcmp(special[i].proto, proto, pl) &&
            strlen(special[i].field) == fl && !memcmp(special[i].field, field, fl))
            return special[i].kind;
    return K_RATE;
}

static int ns_init(sense_t *s, sn_col *c)
{
    ns_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    sn_file_init(&p->f[0]);
    sn_file_init(&p->f[1]);
    sn_tab_init(&p->fields, sizeof(ns_ent), 2048);
    if (sn_file_set(&p->f[0], "%s/net/snmp", s->proc) < 0 ||
        sn_file_set(&p->f[1], "%s/net/netstat", s->proc) < 0)
        return -ENOMEM;
    sn_available(c, "procfs");
    return 0;
}

static void ns_fini(sense_t *s, sn_col *c)
{
    ns_priv *p = c->priv;
    if (!p)
        return;
    for (int i = 0; i < 2; i++) {
        sn_file_close(&p->f[i]);
        free(p->f[i].path);
    }
    sn_tab_free(&p->fields);
    free(p);
}

static void put_field(sense_t *s, sn_col *c, ns_priv *p, int *cursor, const char *proto,
                      size_t pl, const char *field, size_t fl, int64_t val)
{
    char key[160];
    if (pl + fl + 2 > sizeof key)
        return;
    memcpy(key, proto, pl);
    key[pl] = ' ';
    memcpy(key + pl + 1, field, fl);
    key[pl + 1 + fl] = 0;
    bool created;
    int idx = sn_tab_find(&p->fields, cursor, key, pl + 1 + fl, &created);
    if (idx < 0)
        return;
    ns_ent *ne = sn_tab_at(&p->fields, idx);
    if (created) {
        ne->id = -1;
        ne->kind = (int8_t)field_kind(proto, pl, field, fl);
    }
    if (ne->kind == K_SKIP)
        return;
    bool valid = ne->k.gen == c->gen - 1 && c->dt > 0;
    ne->k.gen = c->gen;
    if (val)
        ne->nonzero = true;
    double v;
    if (ne->kind == K_GAUGE) {
        v = (double)val;
    } else {
        v = sn_rate((uint64_t)val, &ne->prev, valid && val >= 0, c->dt);
    }
    if (!ne->nonzero || isnan(v))
        return;
    if (ne->id < 0) {
        char sp[64], fam[128], fname[128], lab[200];
        sn_snake(proto, pl, sp, sizeof sp);
        snprintf(fam, sizeof fam, "netstat.%s%s", sp, ne->kind == K_RATE ? "_per_second" : "");
        snprintf(fname, sizeof fname, "%.*s", (int)fl, field);
        sn_labels(lab, sizeof lab, 1, "field", fname);
        char help[200];
        snprintf(help, sizeof help, "%.*s %s from the kernel's %.*s counters", (int)fl, field,
                 ne->kind == K_RATE ? "per second" : "now", (int)pl, proto);
        ne->id = sn_series(s, fam, lab, ne->kind == K_RATE ? "1/s" : "", help,
                           ne->kind == K_RATE ? MEM_RATE : MEM_GAUGE);
    }
    sn_put(s, c, ne->id, v);
}

/* Parses one snmp-style text: header line then value line per protocol. */
static void parse_pairs(sense_t *s, sn_col *c, ns_priv *p, int *cursor, const char *q,
                        const char *e)
{
    while (q < e) {
        const char *hl = q, *hle = sn_eol(q, e);
        const char *vl = hle, *vle = sn_eol(vl, e);
        q = vle;
        const char *hc = memchr(hl, ':', (size_t)(hle - hl));
        const char *vc = vl < e ? memchr(vl, ':', (size_t)(vle - vl)) : NULL;
        if (!hc || !vc || hc - hl != vc - vl || memcmp(hl, vl, (size_t)(hc - hl)))
            continue; /* out of step: resynchronise on the next pair */
        const char *proto = hl;
        size_t pl = (size_t)(hc - hl);
        const char *h = hc + 1, *v = vc + 1;
        for (;;) {
            h = sn_skip_ws(h, hle);
            if (h >= hle || *h == '\n')
                break;
            const char *fs = h;
            h = sn_skip_tok(h, hle);
            bool ok;
            int64_t val = sn_i64(&v, vle, &ok);
            if (!ok)
                break;
            put_field(s, c, p, cursor, proto, pl, fs, (size_t)(h - fs), val);
        }
    }
}

static int ns_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    ns_priv *p = c->priv;
    int cursor = 0, ok = 0;
    char err[2][200] = {"", ""};
    for (int i = 0; i < 2; i++) {
        ssize_t n = sn_file_read(&p->f[i], &s->buf);
        if (n < 0) {
            snprintf(err[i], sizeof err[i], "%s: %s", p->f[i].path, strerror((int)-n));
            continue;
        }
        ok++;
        parse_pairs(s, c, p, &cursor, s->buf.p, s->buf.p + n);
    }
    if (!ok) {
        sn_unavailable(s, c, "%s", err[0]);
        return -ENOENT;
    }
    for (int i = 0; i < 2; i++)
        if (err[i][0] && !p->missing[i]) {
            sn_note_once(&p->missing[i], "netstat partly unavailable: %s", err[i]);
            if (snprintf(c->note, sizeof c->note, "procfs (%s)", err[i]) >= (int)sizeof c->note)
                c->note[sizeof c->note - 2] = ')';
        }
    return 0;
}

const sn_module sn_mod_netstat = {
    .name = "netstat", .init = ns_init, .collect = ns_collect, .fini = ns_fini,
};
