/* disk.c: the `disk` group, from /proc/diskstats: per whole disk (a name
 * that exists under <sys>/block; partitions are left out) reads and writes
 * per second, bytes per second, busy percent (io_ticks), average wait per
 * read / write in ms, and requests in flight. A disk appears once it has
 * done any I/O, so idle loop, ram and zram devices add no series. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* diskstats fields after the name (0-based) */
enum { D_RD, D_RDMERGE, D_RDSECT, D_RDMS, D_WR, D_WRMERGE, D_WRSECT, D_WRMS, D_INFLIGHT,
       D_TICKS, D_NF };

enum { S_READS, S_WRITES, S_RBYTES, S_WBYTES, S_BUSY, S_RAWAIT, S_WAWAIT, S_INFLIGHT, S_N };

static const struct {
    const char *name, *unit, *help;
    int kind;
} ddefs[S_N] = {
    {"disk.reads_per_second", "1/s", "reads completed per second", MEM_RATE},
    {"disk.writes_per_second", "1/s", "writes completed per second", MEM_RATE},
    {"disk.read_bytes_per_second", "bytes/s", "bytes read per second", MEM_RATE},
    {"disk.write_bytes_per_second", "bytes/s", "bytes written per second", MEM_RATE},
    {"disk.busy_percent", "percent", "share of time the disk had I/O in flight", MEM_RATE},
    {"disk.read_await_ms", "ms", "average time a read took, queueing included", MEM_RATE},
    {"disk.write_await_ms", "ms", "average time a write took, queueing included", MEM_RATE},
    {"disk.in_flight", "", "requests in flight", MEM_GAUGE},
};

typedef struct disk_ent {
    sn_key k;
    int8_t whole;     /* 0 unknown, 1 whole disk, -1 partition / not a block dev */
    bool active;      /* has done I/O */
    uint64_t prev[D_NF];
    int ids[S_N];
} disk_ent;

typedef struct disk_priv {
    sn_file f;
    sn_tab disks;
} disk_priv;

static int disk_init(sense_t *s, sn_col *c)
{
    disk_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    return sn_file_table_open(s, c, &p->f, &p->disks, sizeof(disk_ent), 4096, "diskstats", "procfs");
}

static void disk_fini(sense_t *s, sn_col *c)
{
    disk_priv *p = c->priv;
    if (!p)
        return;
    sn_file_table_close(c, &p->f, &p->disks);
}

static bool is_whole_disk(sense_t *s, const char *name)
{
    char path[CORE_PATH_MAX + 300];
    char dev[256];
    core_sncpy(dev, sizeof dev, name);
    for (char *x = dev; *x; x++)
        if (*x == '/')
            *x = '!';
    snprintf(path, sizeof path, "%s/block/%s", s->sys, dev);
    return access(path, F_OK) == 0;
}

static int disk_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    disk_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    const char *q = s->buf.p, *e = q + n;
    int cursor = 0;
    while (q < e) {
        const char *le = sn_eol(q, e);
        bool ok;
        sn_u64(&q, le, &ok); /* major */
        sn_u64(&q, le, &ok); /* minor */
        q = sn_skip_ws(q, le);
        const char *ns = q;
        q = sn_skip_tok(q, le);
        size_t nl = (size_t)(q - ns);
        uint64_t v[D_NF];
        int nf = 0;
        while (nf < D_NF) {
            v[nf] = sn_u64(&q, le, &ok);
            if (!ok)
                break;
            nf++;
        }
        const char *line_end = le;
        q = line_end;
        if (nf < D_NF || !nl)
            continue;
        bool created;
        int idx = sn_tab_find(&p->disks, &cursor, ns, nl, &created);
        if (idx < 0)
            continue;
        disk_ent *d = sn_tab_at(&p->disks, idx);
        if (created) {
            for (int i = 0; i < S_N; i++)
                d->ids[i] = -1;
            d->whole = is_whole_disk(s, d->k.key) ? 1 : -1;
        }
        if (d->whole < 0)
            continue;
        if (v[D_RD] || v[D_WR])
            d->active = true;
        bool valid = d->k.gen == c->gen - 1 && c->dt > 0;
        d->k.gen = c->gen;
        bool back = false;
        uint64_t dd[D_NF];
        for (int i = 0; i < D_NF; i++) {
            if (i != D_INFLIGHT && v[i] < d->prev[i])
                back = true;
            dd[i] = v[i] - d->prev[i];
        }
        memcpy(d->prev, v, sizeof v);
        if (!d->active)
            continue;
        double out[S_N];
        for (int i = 0; i < S_N; i++)
            out[i] = NAN;
        out[S_INFLIGHT] = (double)v[D_INFLIGHT];
        if (valid && !back) {
            double dt = c->dt;
            out[S_READS] = (double)dd[D_RD] / dt;
            out[S_WRITES] = (double)dd[D_WR] / dt;
            out[S_RBYTES] = (double)dd[D_RDSECT] * 512.0 / dt;
            out[S_WBYTES] = (double)dd[D_WRSECT] * 512.0 / dt;
            double busy = (double)dd[D_TICKS] / (dt * 10.0);
            out[S_BUSY] = busy > 100.0 ? 100.0 : busy;
            out[S_RAWAIT] = dd[D_RD] ? (double)dd[D_RDMS] / (double)dd[D_RD] : 0;
            out[S_WAWAIT] = dd[D_WR] ? (double)dd[D_WRMS] / (double)dd[D_WR] : 0;
        }
        for (int i = 0; i < S_N; i++) {
            if (isnan(out[i]))
                continue;
            if (d->ids[i] < 0) {
                char lab[300];
                sn_labels(lab, sizeof lab, 1, "device", d->k.key);
                d->ids[i] = sn_series(s, ddefs[i].name, lab, ddefs[i].unit, ddefs[i].help,
                                      ddefs[i].kind);
            }
            sn_put(s, c, d->ids[i], out[i]);
        }
    }
    return 0;
}

const sn_module sn_mod_disk = {
    .name = "disk", .init = disk_init, .collect = disk_collect, .fini = disk_fini,
};
