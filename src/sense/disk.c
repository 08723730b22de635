/* disk.c: the `disk` group, from /proc/diskstats: per whole disk (a name
 * that exists under <sys>/block; partitions are left out) reads and writes
 * per second, bytes per second, busy percent (io_ticks), average wait per
 * read / write in ms, and requests in flight. A disk appears once it has
 * done any I/O, so idle loop, ram and zram devices add no series. The
 * series are a table for the counter reader (sn_ctr_put_row). */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* diskstats fields after the name (0-based) */
enum { D_RD, D_RDMERGE, D_RDSECT, D_RDMS, D_WR, D_WRMERGE, D_WRSECT, D_WRMS, D_INFLIGHT,
       D_TICKS, D_NF };

#define SECTOR 512.0

/* busy: io_ticks are ms, so ms per second / 10 = percent */
static const sn_ctr_field dfields[] = {
    {SN_CTR_RATE, D_RD, 0, 1, 0, "disk.reads_per_second", "1/s", "reads completed per second"},
    {SN_CTR_RATE, D_WR, 0, 1, 0, "disk.writes_per_second", "1/s", "writes completed per second"},
    {SN_CTR_RATE, D_RDSECT, 0, SECTOR, 0, "disk.read_bytes_per_second", "bytes/s", "bytes read per second"},
    {SN_CTR_RATE, D_WRSECT, 0, SECTOR, 0, "disk.write_bytes_per_second", "bytes/s", "bytes written per second"},
    {SN_CTR_RATE, D_TICKS, 0, 0.1, 100, "disk.busy_percent", "percent", "share of time the disk had I/O in flight"},
    {SN_CTR_PER, D_RDMS, D_RD, 1, 0, "disk.read_await_ms", "ms", "average time a read took, queueing included"},
    {SN_CTR_PER, D_WRMS, D_WR, 1, 0, "disk.write_await_ms", "ms", "average time a write took, queueing included"},
    {SN_CTR_GAUGE, D_INFLIGHT, 0, 1, 0, "disk.in_flight", "", "requests in flight"},
};
static const sn_ctr_spec dspec = {
    .fields = dfields, .nfields = (int)(sizeof dfields / sizeof dfields[0]), .ncols = D_NF,
    .active_cols = 1u << D_RD | 1u << D_WR, .label = "device", .row_reset = true,
};

typedef struct disk_ent {
    sn_key k;
    int8_t whole;     /* 0 unknown, 1 whole disk, -1 partition / not a block dev */
    sn_ctr_row row;
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
            sn_ctr_row_init(&d->row);
            d->whole = is_whole_disk(s, d->k.key) ? 1 : -1;
        }
        if (d->whole < 0)
            continue;
        bool valid = d->k.gen == c->gen - 1;
        d->k.gen = c->gen;
        sn_ctr_put_row(s, c, &dspec, &d->row, d->k.key, valid, v);
    }
    return 0;
}

const sn_module sn_mod_disk = {
    .name = "disk", .init = disk_init, .collect = disk_collect, .fini = disk_fini,
};
