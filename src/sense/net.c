/* net.c: the `net` group, from /proc/net/dev: per interface bytes,
 * packets, errors and drops per second, received and transmitted. lo is
 * kept (local traffic matters to services talking to each other); an
 * interface whose counters have always been zero adds no series. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* the /proc/net/dev columns we use */
enum { N_RXB, N_RXP, N_RXE, N_RXD, N_TXB, N_TXP, N_TXE, N_TXD, N_N };
static const int colidx[N_N] = {0, 1, 2, 3, 8, 9, 10, 11};

static const struct {
    const char *name, *unit, *help;
} ndefs[N_N] = {
    {"net.rx_bytes_per_second", "bytes/s", "bytes received per second"},
    {"net.rx_packets_per_second", "1/s", "packets received per second"},
    {"net.rx_errors_per_second", "1/s", "receive errors per second"},
    {"net.rx_drops_per_second", "1/s", "received packets dropped per second"},
    {"net.tx_bytes_per_second", "bytes/s", "bytes sent per second"},
    {"net.tx_packets_per_second", "1/s", "packets sent per second"},
    {"net.tx_errors_per_second", "1/s", "transmit errors per second"},
    {"net.tx_drops_per_second", "1/s", "transmitted packets dropped per second"},
};

typedef struct net_ent {
    sn_key k;
    bool active;
    uint64_t prev[N_N];
    int ids[N_N];
} net_ent;

typedef struct net_priv {
    sn_file f;
    sn_tab ifs;
} net_priv;

static int net_init(sense_t *s, sn_col *c)
{
    net_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    return sn_file_table_open(s, c, &p->f, &p->ifs, sizeof(net_ent), 4096, "net/dev", "procfs");
}

static void net_fini(sense_t *s, sn_col *c)
{
    net_priv *p = c->priv;
    if (!p)
        return;
    sn_file_table_close(c, &p->f, &p->ifs);
}

static int net_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    net_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    int cursor = 0;
    while (q < e) {
        const char *le = sn_eol(q, e);
        const char *colon = memchr(q, ':', (size_t)(le - q));
        if (!colon) {
            q = le;
            continue;
        }
        const char *ns = sn_skip_ws(q, colon);
        size_t nl = (size_t)(colon - ns);
        const char *x = colon + 1;
        uint64_t v[16];
        int nf = 0;
        bool ok = true;
        while (nf < 16) {
            v[nf] = sn_u64(&x, le, &ok);
            if (!ok)
                break;
            nf++;
        }
        q = le;
        if (nf < 12 || !nl)
            continue;
        bool created;
        int idx = sn_tab_find(&p->ifs, &cursor, ns, nl, &created);
        if (idx < 0)
            continue;
        net_ent *ne = sn_tab_at(&p->ifs, idx);
        if (created)
            for (int i = 0; i < N_N; i++)
                ne->ids[i] = -1;
        bool valid = ne->k.gen == c->gen - 1 && c->dt > 0;
        ne->k.gen = c->gen;
        uint64_t cur[N_N];
        for (int i = 0; i < N_N; i++) {
            cur[i] = v[colidx[i]];
            if (cur[i])
                ne->active = true;
        }
        for (int i = 0; i < N_N; i++) {
            double r = sn_rate(cur[i], &ne->prev[i], valid, c->dt);
            if (!ne->active || isnan(r))
                continue;
            if (ne->ids[i] < 0) {
                char lab[128];
                sn_labels(lab, sizeof lab, 1, "iface", ne->k.key);
                ne->ids[i] = sn_series(s, ndefs[i].name, lab, ndefs[i].unit, ndefs[i].help, MEM_RATE);
            }
            sn_put(s, c, ne->ids[i], r);
        }
    }
    return 0;
}

const sn_module sn_mod_net = {
    .name = "net", .init = net_init, .collect = net_collect, .fini = net_fini,
};
