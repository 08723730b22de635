/* nx_net.c: node_exporter's network-device collectors: netdev (the link
 * statistics node_exporter 1.5 reads over netlink by default, here from the
 * same counters under <sys>/class/net/IF/statistics, renamed as its legacy
 * names), netclass (<sys>/class/net/IF attributes), arp (<proc>/net/arp
 * entries per device), bonding (<sys>/class/net/bonding_masters) and
 * infiniband (<sys>/class/infiniband). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "sense/nx_int.h"

/* Whether entry d of directory dir is a directory (or a link to one). */
static bool nx_is_dir(const char *dir, const struct dirent *d)
{
    if (d->d_name[0] == '.')
        return false;
    if (d->d_type == DT_DIR)
        return true;
    if (d->d_type != DT_LNK && d->d_type != DT_UNKNOWN)
        return false;
    char p[CORE_PATH_MAX + 256];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", dir, d->d_name);
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- netdev ---------------------------------------------------------------------- */
static const struct { const char *file, *name, *help; } netdev_stats[] = {
    {"rx_bytes", "node_network_receive_bytes_total", "Network device statistic receive_bytes."},
    {"rx_compressed", "node_network_receive_compressed_total", "Network device statistic receive_compressed."},
    {"rx_dropped", "node_network_receive_drop_total", "Network device statistic receive_drop."},
    {"rx_errors", "node_network_receive_errs_total", "Network device statistic receive_errs."},
    {"rx_fifo_errors", "node_network_receive_fifo_total", "Network device statistic receive_fifo."},
    {"rx_frame_errors", "node_network_receive_frame_total", "Network device statistic receive_frame."},
    {"multicast", "node_network_receive_multicast_total", "Network device statistic receive_multicast."},
    {"rx_nohandler", "node_network_receive_nohandler_total", "Network device statistic receive_nohandler."},
    {"rx_packets", "node_network_receive_packets_total", "Network device statistic receive_packets."},
    {"tx_bytes", "node_network_transmit_bytes_total", "Network device statistic transmit_bytes."},
    {"tx_carrier_errors", "node_network_transmit_carrier_total", "Network device statistic transmit_carrier."},
    {"collisions", "node_network_transmit_colls_total", "Network device statistic transmit_colls."},
    {"tx_compressed", "node_network_transmit_compressed_total", "Network device statistic transmit_compressed."},
    {"tx_dropped", "node_network_transmit_drop_total", "Network device statistic transmit_drop."},
    {"tx_errors", "node_network_transmit_errs_total", "Network device statistic transmit_errs."},
    {"tx_fifo_errors", "node_network_transmit_fifo_total", "Network device statistic transmit_fifo."},
    {"tx_packets", "node_network_transmit_packets_total", "Network device statistic transmit_packets."},
};
#define NX_NETDEV_N ((int)(sizeof netdev_stats / sizeof netdev_stats[0]))

NX_COLLECTOR(netdev)
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/class/net", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int fam[NX_NETDEV_N];
    for (int i = 0; i < NX_NETDEV_N; i++)
        fam[i] = nx_family(x, netdev_stats[i].name, NX_COUNTER, netdev_stats[i].help);
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!nx_is_dir(dir, de))
            continue;
        for (int i = 0; i < NX_NETDEV_N; i++) {
            uint64_t v;
            if (nx_read_u64(x, x->sys, &v, "class/net/%s/statistics/%s", de->d_name, netdev_stats[i].file) == 0)
                nx_sample(x, fam[i], (double)v, 1, "device", de->d_name);
        }
    }
    closedir(d);
    return 0;
}

/* ---- netclass -------------------------------------------------------------------- */
/* Numeric attributes, as procfs parses them (base prefix honoured: flags and
 * dev_id are hex). */
static const struct { const char *file, *name; int type; } netclass_attrs[] = {
    {"addr_assign_type", "node_network_address_assign_type", NX_GAUGE},
    {"carrier", "node_network_carrier", NX_GAUGE},
    {"carrier_changes", "node_network_carrier_changes_total", NX_COUNTER},
    {"carrier_up_count", "node_network_carrier_up_changes_total", NX_COUNTER},
    {"carrier_down_count", "node_network_carrier_down_changes_total", NX_COUNTER},
    {"dev_id", "node_network_device_id", NX_GAUGE},
    {"dormant", "node_network_dormant", NX_GAUGE},
    {"flags", "node_network_flags", NX_GAUGE},
    {"ifindex", "node_network_iface_id", NX_GAUGE},
    {"iflink", "node_network_iface_link", NX_GAUGE},
    {"link_mode", "node_network_iface_link_mode", NX_GAUGE},
    {"mtu", "node_network_mtu_bytes", NX_GAUGE},
    {"name_assign_type", "node_network_name_assign_type", NX_GAUGE},
    {"netdev_group", "node_network_net_dev_group", NX_GAUGE},
    {"speed", "node_network_speed_bytes", NX_GAUGE},
    {"tx_queue_len", "node_network_transmit_queue_length", NX_GAUGE},
    {"type", "node_network_protocol_type", NX_GAUGE},
};
static const char *const netclass_helps[] = {
    "Network device property: address_assign_type", "Network device property: carrier",
    "Network device property: carrier_changes_total", "Network device property: carrier_up_changes_total",
    "Network device property: carrier_down_changes_total", "Network device property: device_id",
    "Network device property: dormant", "Network device property: flags", "Network device property: iface_id",
    "Network device property: iface_link", "Network device property: iface_link_mode",
    "Network device property: mtu_bytes", "Network device property: name_assign_type",
    "Network device property: net_dev_group", "Network device property: speed_bytes",
    "Network device property: transmit_queue_length", "Network device property: protocol_type",
};
#define NX_NETCLASS_N ((int)(sizeof netclass_attrs / sizeof netclass_attrs[0]))

static int read_i64(nx_ctx *x, const char *dev, const char *file, int64_t *v)
{
    char s[64], *end;
    if (nx_read_str(x, x->sys, s, sizeof s, "class/net/%s/%s", dev, file) < 0 || !s[0])
        return -EINVAL;
    errno = 0;
    long long u = strtoll(s, &end, 0);
    if (errno || end == s || (*end && *end != ' '))
        return -EINVAL;
    *v = u;
    return 0;
}

static void netclass_dev(nx_ctx *x, const char *dev, int fup, int finfo, const int *fam)
{
    char oper[32] = "", addr[64] = "", bcast[64] = "", duplex[32] = "", alias[256] = "";
    nx_read_str(x, x->sys, oper, sizeof oper, "class/net/%s/operstate", dev);
    nx_read_str(x, x->sys, addr, sizeof addr, "class/net/%s/address", dev);
    nx_read_str(x, x->sys, bcast, sizeof bcast, "class/net/%s/broadcast", dev);
    nx_read_str(x, x->sys, duplex, sizeof duplex, "class/net/%s/duplex", dev);
    nx_read_str(x, x->sys, alias, sizeof alias, "class/net/%s/ifalias", dev);
    nx_sample(x, fup, !strcmp(oper, "up"), 1, "device", dev);
    nx_sample(x, finfo, 1, 6, "device", dev, "address", addr, "broadcast", bcast, "duplex", duplex, "operstate",
              oper, "ifalias", alias);
    for (int i = 0; i < NX_NETCLASS_N; i++) {
        int64_t v;
        if (read_i64(x, dev, netclass_attrs[i].file, &v) < 0)
            continue;
        double d = (double)v;
        if (!strcmp(netclass_attrs[i].file, "speed"))
            d = (double)(v * 1000 * 1000 / 8); /* Mb/s -> bytes/s; -1 (unknown) stays as node_exporter has it */
        nx_sample(x, fam[i], d, 1, "device", dev);
    }
}

NX_COLLECTOR(netclass)
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/class/net", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int fup = nx_family(x, "node_network_up", NX_GAUGE, "Value is 1 if operstate is 'up', 0 otherwise.");
    int finfo = nx_family(x, "node_network_info", NX_GAUGE,
                          "Non-numeric data from /sys/class/net/<iface>, value is always 1.");
    int fam[NX_NETCLASS_N];
    for (int i = 0; i < NX_NETCLASS_N; i++)
        fam[i] = nx_family(x, netclass_attrs[i].name, netclass_attrs[i].type, netclass_helps[i]);
    struct dirent *de;
    while ((de = readdir(d)))
        if (nx_is_dir(dir, de))
            netclass_dev(x, de->d_name, fup, finfo, fam);
    closedir(d);
    return 0;
}

/* ---- arp ------------------------------------------------------------------------- */
#define NX_ARP_MAX_DEVS 256

NX_COLLECTOR(arp)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/arp");
    if (n < 0)
        return (int)n;
    char devs[NX_ARP_MAX_DEVS][64];
    uint64_t count[NX_ARP_MAX_DEVS];
    int nd = 0;
    const char *p = sn_eol(x->rd.p, x->rd.p + n), *e = x->rd.p + n; /* past the header */
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = p;
        char f[64];
        int k = 0;
        for (; k < 6; k++) {
            q = sn_skip_ws(q, e);
            if (!sn_tok(&q, e, f, sizeof f))
                break;
        }
        if (k < 6)
            continue;
        int i = 0;
        while (i < nd && strcmp(devs[i], f))
            i++;
        if (i == nd) {
            if (nd == NX_ARP_MAX_DEVS)
                continue;
            core_sncpy(devs[nd], sizeof devs[nd], f);
            count[nd++] = 0;
        }
        count[i]++;
    }
    int fam = nx_family(x, "node_arp_entries", NX_GAUGE, "ARP entries by device");
    for (int i = 0; i < nd; i++)
        nx_sample(x, fam, (double)count[i], 1, "device", devs[i]);
    return 0;
}

/* ---- bonding --------------------------------------------------------------------- */
/* Reads the next blank-separated word of a list held in a local copy. */
static bool next_word(const char **pp, char *out, size_t n)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    if (!*p)
        return false;
    size_t l = strcspn(p, " \n\t");
    if (l >= n)
        l = n - 1;
    memcpy(out, p, l);
    out[l] = 0;
    *pp = p + strcspn(p, " \n\t");
    return true;
}

NX_COLLECTOR(bonding)
{
    char masters[1024];
    int rc = nx_read_str(x, x->sys, masters, sizeof masters, "class/net/bonding_masters");
    if (rc < 0)
        return rc;
    int fsl = nx_family(x, "node_bonding_slaves", NX_GAUGE, "Number of configured slaves per bonding interface.");
    int fac = nx_family(x, "node_bonding_active", NX_GAUGE, "Number of active slaves per bonding interface.");
    char m[64], s[64], slaves[1024], state[32];
    for (const char *mp = masters; next_word(&mp, m, sizeof m);) {
        rc = nx_read_str(x, x->sys, slaves, sizeof slaves, "class/net/%s/bonding/slaves", m);
        if (rc < 0)
            return rc;
        int total = 0, up = 0;
        for (const char *sp = slaves; next_word(&sp, s, sizeof s);) {
            rc = nx_read_str(x, x->sys, state, sizeof state, "class/net/%s/lower_%s/bonding_slave/mii_status", m, s);
            if (rc == -ENOENT)
                rc = nx_read_str(x, x->sys, state, sizeof state, "class/net/%s/slave_%s/bonding_slave/mii_status",
                                 m, s);
            if (rc < 0)
                return rc;
            total++;
            up += !strcmp(state, "up");
        }
        nx_sample(x, fsl, total, 1, "master", m);
        nx_sample(x, fac, up, 1, "master", m);
    }
    return 0;
}
