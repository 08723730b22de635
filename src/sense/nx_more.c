/* nx_more.c: node_exporter 1.5's default Linux collectors for hardware and
 * services that many hosts lack (so a host without them shows nothing, as
 * node_exporter does): schedstat (/proc/schedstat), dmi (/sys/class/dmi/id),
 * rapl (/sys/class/powercap), ipvs (/proc/net/ip_vs*), zfs
 * (/proc/spl/kstat/zfs), fibrechannel (/sys/class/fc_host) and tapestats
 * (/sys/class/scsi_tape). NFS client and server are in nx_nfs.c. Names,
 * types, labels and units follow node_exporter 1.5 and its procfs library.
 * Where the source is absent node_exporter's collector returns ErrNoData,
 * which it reports as node_scrape_collector_success 0: so do these. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sense/nx_int.h"
#include "sense/nx_sys.h"

/* ---- schedstat ---------------------------------------------------------------- */
NX_COLLECTOR(schedstat)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "schedstat");
    if (n < 0)
        return (int)n; /* absent: node_exporter's ErrNoData, success 0 too */
    int frun = nx_family(x, "node_schedstat_running_seconds_total", NX_COUNTER,
                         "Number of seconds CPU spent running a process.");
    int fwait = nx_family(x, "node_schedstat_waiting_seconds_total", NX_COUNTER,
                          "Number of seconds spent by processing waiting for this CPU.");
    int fslice = nx_family(x, "node_schedstat_timeslices_total", NX_COUNTER, "Number of timeslices executed by CPU.");
    const char *p = x->rd.p, *e = x->rd.p + n;
    for (; p < e; p = sn_eol(p, e)) {
        if (e - p < 4 || memcmp(p, "cpu", 3) != 0 || p[3] < '0' || p[3] > '9')
            continue;
        const char *q = p + 3;
        char id[16];
        sn_tok(&q, e, id, sizeof id);
        /* cpuN then 9 numbers; the last three are running ns, waiting ns, timeslices */
        uint64_t v[9];
        for (int k = 0; k < 9; k++) {
            bool ok;
            v[k] = sn_u64(&q, e, &ok);
            if (!ok)
                return -EINVAL;
        }
        nx_sample(x, frun, (double)v[6] / 1e9, 1, "cpu", id);
        nx_sample(x, fwait, (double)v[7] / 1e9, 1, "cpu", id);
        nx_sample(x, fslice, (double)v[8], 1, "cpu", id);
    }
    return 0;
}

/* ---- dmi ---------------------------------------------------------------------- */
NX_COLLECTOR(dmi)
{
    /* label name, file under class/dmi/id (sorted by label: the exposition order) */
    static const char *const attrs[][2] = {
        {"bios_date", "bios_date"},           {"bios_release", "bios_release"},
        {"bios_vendor", "bios_vendor"},       {"bios_version", "bios_version"},
        {"board_asset_tag", "board_asset_tag"}, {"board_name", "board_name"},
        {"board_serial", "board_serial"},     {"board_vendor", "board_vendor"},
        {"board_version", "board_version"},   {"chassis_asset_tag", "chassis_asset_tag"},
        {"chassis_serial", "chassis_serial"}, {"chassis_vendor", "chassis_vendor"},
        {"chassis_version", "chassis_version"}, {"product_family", "product_family"},
        {"product_name", "product_name"},     {"product_serial", "product_serial"},
        {"product_sku", "product_sku"},       {"product_uuid", "product_uuid"},
        {"product_version", "product_version"}, {"system_vendor", "sys_vendor"},
    };
    enum { NA = sizeof attrs / sizeof attrs[0] };
    char vals[NA][128];
    const char *kv[2 * NA];
    int nl = 0;
    for (int i = 0; i < NA; i++) {
        /* unreadable (root-only serials) or absent attributes are left out */
        if (nx_read_str(x, x->sys, vals[i], sizeof vals[i], "class/dmi/id/%s", attrs[i][1]) < 0)
            continue; /* invalid UTF-8 is written as U+FFFD by nx_sample_v, as Go's ToValidUTF8 */
        kv[2 * nl] = attrs[i][0];
        kv[2 * nl + 1] = vals[i];
        nl++;
    }
    if (nl == 0)
        return -ENOENT; /* node_exporter: ErrNoData */
    int f = nx_family(x, "node_dmi_info", NX_GAUGE,
                      "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, "
                      "bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, "
                      "chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, "
                      "product_name, product_serial, product_sku, product_uuid, product_version, system_vendor "
                      "if provided by DMI.");
    nx_sample_v(x, f, 1, nl, kv);
    return 0;
}

/* ---- rapl --------------------------------------------------------------------- */
/* Metric-name characters: [a-zA-Z0-9_], others become '_'. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            *s = '_';
}

NX_COLLECTOR(rapl)
{
    struct dirent **ls;
    int nls = nxs_scan(x->sys, "class/powercap", "", false, &ls);
    if (nls < 0)
        return nls; /* absent or unreadable: node_exporter's ErrNoData */
    /* names seen without an index suffix, and how often (procfs' countNameUsages) */
    enum { RAPL_NAMES = 128 };
    char seen[RAPL_NAMES][48];
    int count[RAPL_NAMES], nseen = 0, rc = 0;
    for (int i = 0; i < nls; i++) {
        const char *zone = ls[i]->d_name;
        char name[48];
        if (nx_read_str(x, x->sys, name, sizeof name, "class/powercap/%s/name", zone) < 0)
            continue;
        uint64_t maxuj, uj;
        rc = nx_read_u64(x, x->sys, &maxuj, "class/powercap/%s/max_energy_range_uj", zone);
        if (rc < 0)
            break;
        int index = -1;
        char *dash = strchr(name, '-');
        if (dash && !strchr(dash + 1, '-') && dash[1]) {
            char *end;
            long v = strtol(dash + 1, &end, 10);
            if (!*end) {
                index = (int)v;
                *dash = 0;
            }
        }
        int k = 0;
        while (k < nseen && strcmp(seen[k], name))
            k++;
        if (k == nseen) {
            if (nseen == RAPL_NAMES)
                continue;
            memcpy(seen[nseen], name, strlen(name) + 1);
            count[nseen++] = 0;
        }
        if (index < 0)
            index = count[k];
        count[k] = index + 1;
        rc = nx_read_u64(x, x->sys, &uj, "class/powercap/%s/energy_uj", zone);
        if (rc < 0)
            break; /* root-only energy_uj too: node_exporter's ErrNoData */
        char fam[96], help[96], idx[16], path[CORE_PATH_MAX + 300];
        snprintf(fam, sizeof fam, "node_rapl_%s_joules_total", name);
        sanitize(fam);
        snprintf(help, sizeof help, "Current RAPL %s value in joules", name);
        snprintf(idx, sizeof idx, "%d", index);
        snprintf(path, sizeof path, "%s/class/powercap/%s", x->sys, zone);
        nx_sample(x, nx_family_dyn(x, fam, NX_COUNTER, help), (double)uj / 1e6, 2, "index", idx, "path", path);
    }
    nxs_names_free(ls, nls);
    return rc;
}

/* ---- ipvs --------------------------------------------------------------------- */
/* "C0A80016:0CEA" or "[2620:...:0001]:0035" -> address text and port; 0 or -EINVAL. */
static int ipvs_addr(const char *tok, char *addr, size_t an, char *port, size_t pn)
{
    const char *colon;
    if (tok[0] == '[') {
        const char *rb = strchr(tok, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        char six[64];
        size_t k = (size_t)(rb - tok - 1);
        if (k >= sizeof six)
            return -EINVAL;
        memcpy(six, tok + 1, k);
        six[k] = 0;
        struct in6_addr a6;
        if (inet_pton(AF_INET6, six, &a6) != 1 || !inet_ntop(AF_INET6, &a6, addr, (socklen_t)an))
            return -EINVAL;
        colon = rb + 1;
    } else {
        colon = strchr(tok, ':');
        if (!colon || colon - tok != 8)
            return -EINVAL;
        const char *q = tok;
        bool ok;
        uint64_t v = sn_x64(&q, colon, &ok);
        if (!ok || q != colon)
            return -EINVAL;
        struct in_addr a4 = {.s_addr = htonl((uint32_t)v)};
        if (!inet_ntop(AF_INET, &a4, addr, (socklen_t)an))
            return -EINVAL;
    }
    const char *q = colon + 1;
    bool ok;
    uint64_t pv = sn_x64(&q, q + strlen(q), &ok);
    if (!ok || *q)
        return -EINVAL;
    snprintf(port, pn, "%u", (unsigned)pv);
    return 0;
}

static int ipvs_stats(nx_ctx *x)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/ip_vs_stats");
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n;
    p = sn_eol(sn_eol(p, e), e); /* two header lines */
    uint64_t v[5];
    for (int i = 0; i < 5; i++) {
        bool ok;
        v[i] = sn_x64(&p, e, &ok);
        if (!ok)
            return -EINVAL;
    }
    static const char *const names[5][2] = {
        {"node_ipvs_connections_total", "The total number of connections made."},
        {"node_ipvs_incoming_packets_total", "The total number of incoming packets."},
        {"node_ipvs_outgoing_packets_total", "The total number of outgoing packets."},
        {"node_ipvs_incoming_bytes_total", "The total amount of incoming data."},
        {"node_ipvs_outgoing_bytes_total", "The total amount of outgoing data."},
    };
    for (int i = 0; i < 5; i++)
        nx_sample(x, nx_family(x, names[i][0], NX_COUNTER, names[i][1]), (double)v[i], 0);
    return 0;
}

NX_COLLECTOR(ipvs)
{
    int rc = ipvs_stats(x);
    if (rc < 0)
        return rc; /* no IPVS module: node_exporter's ErrNoData, success 0 */
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/ip_vs");
    if (n < 0)
        return (int)n;
    int fact = nx_family(x, "node_ipvs_backend_connections_active", NX_GAUGE,
                         "The current active connections by local and remote address.");
    int finact = nx_family(x, "node_ipvs_backend_connections_inactive", NX_GAUGE,
                           "The current inactive connections by local and remote address.");
    int fw = nx_family(x, "node_ipvs_backend_weight", NX_GAUGE, "The current backend weight by local and remote address.");
    const char *p = x->rd.p, *e = x->rd.p + n;
    char proto[8] = "", laddr[64] = "", lport[8] = "", mark[16] = "";
    bool have_service = false;
    for (int line = 0; p < e; p = sn_eol(p, e), line++) {
        if (line < 3)
            continue; /* version and two column headers */
        const char *q = p;
        char t0[96];
        sn_tok(&q, e, t0, sizeof t0);
        q = sn_skip_ws(q, e);
        if (!strcmp(t0, "TCP") || !strcmp(t0, "UDP") || !strcmp(t0, "SCTP")) {
            char a[96];
            sn_tok(&q, e, a, sizeof a);
            if (ipvs_addr(a, laddr, sizeof laddr, lport, sizeof lport) < 0)
                return -EINVAL;
            memcpy(proto, t0, strlen(t0) + 1);
            mark[0] = 0;
            have_service = true;
        } else if (!strcmp(t0, "FWM")) {
            sn_tok(&q, e, mark, sizeof mark);
            memcpy(proto, "FWM", 4);
            laddr[0] = 0;
            memcpy(lport, "0", 2);
            have_service = true;
        } else if (!strcmp(t0, "->")) {
            if (!have_service)
                return -EINVAL;
            char a[96], raddr[64], rport[8], fwd[16];
            sn_tok(&q, e, a, sizeof a);
            if (ipvs_addr(a, raddr, sizeof raddr, rport, sizeof rport) < 0)
                return -EINVAL;
            q = sn_skip_ws(q, e);
            sn_tok(&q, e, fwd, sizeof fwd);
            bool ok1, ok2, ok3;
            uint64_t w = sn_u64(&q, e, &ok1), act = sn_u64(&q, e, &ok2), inact = sn_u64(&q, e, &ok3);
            if (!ok1 || !ok2 || !ok3)
                return -EINVAL;
            const char *kv[12] = {"local_address", laddr, "local_mark", mark, "local_port", lport,
                                  "proto", proto, "remote_address", raddr, "remote_port", rport};
            nx_sample_v(x, fact, (double)act, 6, kv);
            nx_sample_v(x, finact, (double)inact, 6, kv);
            nx_sample_v(x, fw, (double)w, 6, kv);
        }
    }
    return 0;
}

/* ---- zfs ---------------------------------------------------------------------- */
/* A kstat "name type data" file: every uint64/int64 row becomes
 * node_<subsystem>_<name> (untyped), help kstat.zfs.misc.<file>.<name>;
 * labels (pool, dataset) for objset files. Returns 0, -ENOENT or -EINVAL. */
static int zfs_kstat(nx_ctx *x, const char *subsystem, const char *file, const char *rel, const char *pool)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "spl/kstat/zfs/%s", rel);
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n;
    bool started = false;
    char dataset[256] = "";
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = p;
        char name[96], type[8], data[256];
        sn_tok(&q, e, name, sizeof name);
        q = sn_skip_ws(q, e);
        sn_tok(&q, e, type, sizeof type);
        q = sn_skip_ws(q, e);
        sn_tok(&q, e, data, sizeof data);
        if (!started) {
            started = !strcmp(name, "name") && !strcmp(type, "type") && !strcmp(data, "data");
            continue;
        }
        if (!data[0])
            continue;
        if (pool && !strcmp(name, "dataset_name")) {
            memcpy(dataset, data, strlen(data) + 1);
            continue;
        }
        if (strcmp(type, "4"))
            continue; /* KSTAT_DATA_UINT64 only, as node_exporter 1.5 */
        const char *d = data;
        bool ok;
        uint64_t v = sn_u64(&d, d + strlen(d), &ok);
        if (!ok || *d)
            return -EINVAL;
        char fam[160], help[192];
        snprintf(fam, sizeof fam, "node_%s_%s", subsystem, name);
        for (char *c = fam; *c; c++) /* '-' -> '_' as node_exporter; anything else invalid too */
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
                *c = '_';
        snprintf(help, sizeof help, "kstat.zfs.misc.%s.%s", file, name);
        int f = nx_family_dyn(x, fam, NX_UNTYPED, help);
        if (pool)
            nx_sample(x, f, (double)v, 2, "dataset", dataset, "zpool", pool);
        else
            nx_sample(x, f, (double)v, 0);
    }
    return started ? 0 : -EINVAL;
}

/* <pool>/io: a header row starting "nread" and rows of numbers under it. */
static int zfs_pool_io(nx_ctx *x, const char *pool)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "spl/kstat/zfs/%s/io", pool);
    if (n == -ENOENT || n == -ENOTDIR) /* not a pool, or a pool without io (newer ZFS) */
        return 0;
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n, *hdr = NULL;
    for (; p < e; p = sn_eol(p, e)) {
        if (!hdr) {
            const char *q = sn_skip_ws(p, e);
            if (e - q > 6 && !memcmp(q, "nread", 5) && (q[5] == ' ' || q[5] == '\t'))
                hdr = q;
            continue;
        }
        const char *h = hdr, *he = sn_eol(hdr, e), *q = p;
        for (;;) {
            char col[64], help[128], fam[96];
            h = sn_skip_ws(h, he);
            if (sn_tok(&h, he, col, sizeof col) == 0 || col[0] == '\n')
                break;
            bool ok;
            uint64_t v = sn_u64(&q, e, &ok);
            if (!ok)
                return -EINVAL;
            snprintf(fam, sizeof fam, "node_zfs_zpool_%s", col);
            snprintf(help, sizeof help, "kstat.zfs.misc.io.%s", col);
            nx_sample(x, nx_family_dyn(x, fam, NX_UNTYPED, help), (double)v, 1, "zpool", pool);
        }
    }
    return 0;
}

static int zfs_pool_state(nx_ctx *x, const char *pool)
{
    char st[32];
    int rc = nx_read_str(x, x->proc, st, sizeof st, "spl/kstat/zfs/%s/state", pool);
    if (rc == -ENOENT || rc == -ENOTDIR)
        return 0;
    if (rc < 0)
        return rc;
    for (char *c = st; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    /* node_exporter 1.5's list: no "suspended" */
    static const char *const states[] = {"online", "degraded", "faulted", "offline", "removed", "unavail"};
    int f = nx_family(x, "node_zfs_zpool_state", NX_GAUGE, "kstat.zfs.misc.state");
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        nx_sample(x, f, !strcmp(st, states[i]) ? 1 : 0, 2, "state", states[i], "zpool", pool);
    return 0;
}

NX_COLLECTOR(zfs)
{
    static const char *const files[][2] = {
        {"zfs_abd", "abdstats"},           {"zfs_arc", "arcstats"},      {"zfs_dbuf", "dbufstats"},
        {"zfs_dmu_tx", "dmu_tx"},          {"zfs_dnode", "dnodestats"},  {"zfs_fm", "fm"},
        {"zfs_vdev_cache", "vdev_cache_stats"}, {"zfs_vdev_mirror", "vdev_mirror_stats"},
        {"zfs_xuio", "xuio_stats"},        {"zfs_zfetch", "zfetchstats"}, {"zfs_zil", "zil"},
    };
    struct dirent **pools;
    int npools = nxs_scan(x->proc, "spl/kstat/zfs", "", false, &pools);
    if (npools < 0)
        return npools; /* no ZFS module: node_exporter's ErrNoData, success 0 */
    int rc = 0;
    for (size_t i = 0; i < sizeof files / sizeof files[0] && rc == 0; i++) {
        rc = zfs_kstat(x, files[i][0], files[i][1], files[i][1], NULL);
        if (rc == -ENOENT)
            rc = 0;
    }
    /* pools are the subdirectories; io, then objset-*, then state (node_exporter's order) */
    for (int i = 0; i < npools && rc == 0; i++)
        rc = zfs_pool_io(x, pools[i]->d_name);
    for (int i = 0; i < npools && rc == 0; i++) {
        char dir[CORE_PATH_MAX];
        snprintf(dir, sizeof dir, "spl/kstat/zfs/%s", pools[i]->d_name);
        struct dirent **objs;
        int nobjs = nxs_scan(x->proc, dir, "objset-", false, &objs);
        for (int j = 0; j < nobjs && rc == 0; j++) {
            char rel[CORE_PATH_MAX];
            snprintf(rel, sizeof rel, "%s/%s", pools[i]->d_name, objs[j]->d_name);
            rc = zfs_kstat(x, "zfs_zpool_dataset", "objset", rel, pools[i]->d_name);
        }
        if (nobjs >= 0)
            nxs_names_free(objs, nobjs);
    }
    for (int i = 0; i < npools && rc == 0; i++)
        rc = zfs_pool_state(x, pools[i]->d_name);
    nxs_names_free(pools, npools);
    return rc;
}

/* ---- fibrechannel ------------------------------------------------------------- */
/* Reads a host attribute; strips a leading "0x" where procfs does. */
static int fc_attr(nx_ctx *x, const char *host, const char *attr, char *out, size_t n, bool hex)
{
    int rc = nx_read_str(x, x->sys, out, n, "class/fc_host/%s/%s", host, attr);
    if (rc < 0)
        return rc;
    if (hex && out[0] == '0' && out[1] == 'x')
        memmove(out, out + 2, strlen(out + 2) + 1);
    return 0;
}

static int fc_host(nx_ctx *x, const char *host)
{
    static const char *const info[][2] = {/* label, attribute (sorted by label: fc_host is the host) */
        {"dev_loss_tmo", "dev_loss_tmo"},   {"fabric_name", "fabric_name"},   {"fc_host", NULL},
        {"port_id", "port_id"},             {"port_name", "port_name"},       {"port_state", "port_state"},
        {"port_type", "port_type"},         {"speed", "speed"},               {"supported_classes", "supported_classes"},
        {"supported_speeds", "supported_speeds"}, {"symbolic_name", "symbolic_name"}};
    enum { NI = sizeof info / sizeof info[0] };
    char vals[NI][128];
    const char *kv[2 * NI];
    for (int i = 0; i < NI; i++) {
        kv[2 * i] = info[i][0];
        kv[2 * i + 1] = vals[i];
        if (!info[i][1]) {
            kv[2 * i + 1] = host;
            continue;
        }
        bool hex = !strcmp(info[i][1], "port_id") || !strcmp(info[i][1], "port_name") ||
                   !strcmp(info[i][1], "fabric_name");
        int rc = fc_attr(x, host, info[i][1], vals[i], sizeof vals[i], hex);
        if (rc < 0)
            return rc;
    }
    char node_name[64];
    int rc = fc_attr(x, host, "node_name", node_name, sizeof node_name, true);
    if (rc < 0)
        return rc;
    nx_sample_v(x, nx_family(x, "node_fibrechannel_info", NX_GAUGE,
                             "Non-numeric data from /sys/class/fc_host/<host>, value is always 1."),
                1, NI, kv);
    static const char *const stats[][3] = {/* family suffix, statistics file, help */
        {"dumped_frames_total", "dumped_frames", "Number of dumped frames"},
        {"error_frames_total", "error_frames", "Number of errors in frames"},
        {"invalid_crc_total", "invalid_crc_count", "Invalid Cyclic Redundancy Check count"},
        {"rx_frames_total", "rx_frames", "Number of frames received"},
        {"rx_words_total", "rx_words", "Number of words received by host port"},
        {"tx_frames_total", "tx_frames", "Number of frames transmitted by host port"},
        {"tx_words_total", "tx_words", "Number of words transmitted by host port"},
        {"seconds_since_last_reset_total", "seconds_since_last_reset", "Number of seconds since last host port reset"},
        {"invalid_tx_words_total", "invalid_tx_word_count", "Number of invalid words transmitted by host port"},
        {"link_failure_total", "link_failure_count", "Number of times the host port link has failed"},
        {"loss_of_sync_total", "loss_of_sync_count", "Number of failures on either bit or transmission word boundaries"},
        {"loss_of_signal_total", "loss_of_signal_count", "Number of times signal has been lost"},
        {"nos_total", "nos_count", "Number Not_Operational Primitive Sequence received by host port"},
        {"fcp_packet_aborts_total", "fcp_packet_aborts", "Number of aborted packets"},
    };
    for (size_t i = 0; i < sizeof stats / sizeof stats[0]; i++) {
        char s[32];
        rc = nx_read_str(x, x->sys, s, sizeof s, "class/fc_host/%s/statistics/%s", host, stats[i][1]);
        if (rc < 0)
            return rc;
        const char *q = s;
        if (q[0] == '0' && q[1] == 'x')
            q += 2;
        bool ok;
        uint64_t v = sn_x64(&q, q + strlen(q), &ok);
        if (!ok || *q)
            return -EINVAL;
        if (v == UINT64_MAX)
            continue; /* not implemented by the HBA's firmware */
        char fam[96];
        snprintf(fam, sizeof fam, "node_fibrechannel_%s", stats[i][0]);
        nx_sample(x, nx_family_dyn(x, fam, NX_COUNTER, stats[i][2]), (double)v, 1, "fc_host", host);
    }
    return 0;
}

NX_COLLECTOR(fibrechannel)
{
    struct dirent **ls;
    int nls = nxs_scan(x->sys, "class/fc_host", "", false, &ls);
    if (nls < 0)
        return nls; /* absent: node_exporter's ErrNoData, success 0 */
    int rc = 0;
    for (int i = 0; i < nls && rc == 0; i++)
        rc = fc_host(x, ls[i]->d_name); /* procfs fails the whole class on one bad host */
    nxs_names_free(ls, nls);
    return rc;
}

/* ---- tapestats ---------------------------------------------------------------- */
NX_COLLECTOR(tapestats)
{
    /* st<N> only: nst* are the same drives without rewind */
    struct dirent **ls;
    int nls = nxs_scan(x->sys, "class/scsi_tape", "st", true, &ls);
    if (nls < 0)
        return nls; /* absent: node_exporter's ErrNoData, success 0 */
    static const struct {
        const char *fam, *file, *help;
        int type;
        double scale;
    } st[] = {
        {"node_tape_io_now", "in_flight", "The number of I/Os currently outstanding to this device.", NX_GAUGE, 1},
        {"node_tape_io_time_seconds_total", "io_ns",
         "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape "
         "movement commands such as seeking between file or set marks and implicit tape movement such as when "
         "rewind on close tape devices are used.", NX_COUNTER, 1e-9},
        {"node_tape_io_others_total", "other_cnt",
         "The number of I/Os issued to the tape drive other than read or write commands. The time taken to "
         "complete these commands uses the following calculation "
         "io_time_seconds_total-read_time_seconds_total-write_time_seconds_total", NX_COUNTER, 1},
        {"node_tape_read_bytes_total", "read_byte_cnt", "The number of bytes read from the tape drive.", NX_COUNTER, 1},
        {"node_tape_reads_completed_total", "read_cnt", "The number of read requests issued to the tape drive.",
         NX_COUNTER, 1},
        {"node_tape_read_time_seconds_total", "read_ns", "The amount of time spent waiting for read requests to complete.",
         NX_COUNTER, 1e-9},
        {"node_tape_residual_total", "resid_cnt",
         "The number of times during a read or write we found the residual amount to be non-zero. This should mean "
         "that a program is issuing a read larger thean the block size on tape. For write not all data made it to "
         "tape.", NX_COUNTER, 1},
        {"node_tape_written_bytes_total", "write_byte_cnt", "The number of bytes written to the tape drive.",
         NX_COUNTER, 1},
        {"node_tape_writes_completed_total", "write_cnt", "The number of write requests issued to the tape drive.",
         NX_COUNTER, 1},
        {"node_tape_write_time_seconds_total", "write_ns",
         "The amount of time spent waiting for write requests to complete.", NX_COUNTER, 1e-9},
    };
    int rc = 0;
    for (int i = 0; i < nls && rc == 0; i++) {
        const char *dev = ls[i]->d_name;
        for (size_t k = 0; k < sizeof st / sizeof st[0] && rc == 0; k++) {
            uint64_t v;
            rc = nx_read_u64(x, x->sys, &v, "class/scsi_tape/%s/stats/%s", dev, st[k].file);
            if (rc == 0)
                nx_sample(x, nx_family(x, st[k].fam, st[k].type, st[k].help), (double)v * st[k].scale, 1,
                          "device", dev);
        }
    }
    nxs_names_free(ls, nls);
    return rc;
}
