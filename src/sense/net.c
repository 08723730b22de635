/* net.c: the `net` group, from /proc/net/dev: per interface bytes,
 * packets, errors and drops per second, received and transmitted. lo is
 * kept (local traffic matters to services talking to each other); an
 * interface whose counters have always been zero adds no series. The
 * series are a table for the counter reader (sn_ctr_put_row); a counter
 * going backwards (a driver reset) leaves its own rate out once. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* /proc/net/dev columns: rx bytes packets errs drop fifo frame compressed
 * multicast, then tx bytes packets errs drop ... */
#define NET_COLS 12
#define RATE(col, name, unit, help) {SN_CTR_RATE, col, 0, 1, 0, name, unit, help}
static const sn_ctr_field nfields[] = {
    RATE(0, "net.rx_bytes_per_second", "bytes/s", "bytes received per second"),
    RATE(1, "net.rx_packets_per_second", "1/s", "packets received per second"),
    RATE(2, "net.rx_errors_per_second", "1/s", "receive errors per second"),
    RATE(3, "net.rx_drops_per_second", "1/s", "received packets dropped per second"),
    RATE(8, "net.tx_bytes_per_second", "bytes/s", "bytes sent per second"),
    RATE(9, "net.tx_packets_per_second", "1/s", "packets sent per second"),
    RATE(10, "net.tx_errors_per_second", "1/s", "transmit errors per second"),
    RATE(11, "net.tx_drops_per_second", "1/s", "transmitted packets dropped per second"),
};
static const sn_ctr_spec nspec = {
    .fields = nfields, .nfields = (int)(sizeof nfields / sizeof nfields[0]), .ncols = NET_COLS,
    .active_cols = 0xf0f, .label = "iface",
};

typedef struct net_ent {
    sn_key k;
    sn_ctr_row row;
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
            sn_ctr_row_init(&ne->row);
        bool valid = ne->k.gen == c->gen - 1;
        ne->k.gen = c->gen;
        sn_ctr_put_row(s, c, &nspec, &ne->row, ne->k.key, valid, v);
    }
    return 0;
}

const sn_module sn_mod_net = {
    .name = "net", .init = net_init, .collect = net_collect, .fini = net_fini,
};
