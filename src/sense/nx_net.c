/* nx_net.c: node_exporter's network-device collectors: netdev (the link
 * statistics node_exporter 1.5 reads over netlink by default, under its
 * legacy names: one RTM_GETLINK dump on the real system, the same counters
 * from <sys>/class/net/IF/statistics under a fixture tree), netclass
 * (<sys>/class/net/IF attributes), arp (<proc>/net/arp
 * entries per device), bonding (<sys>/class/net/bonding_masters) and
 * infiniband (<sys>/class/infiniband). */
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sense/nx_int.h"

/* ---- netdev ---------------------------------------------------------------------- */
/* In rtnl_link_stats64 terms, the same order as netdev_stats below. */
#define NX_LS(f) offsetof(struct rtnl_link_stats64, f)
static const size_t netdev_off[] = {
    NX_LS(rx_bytes), NX_LS(rx_compressed), NX_LS(rx_dropped), NX_LS(rx_errors), NX_LS(rx_fifo_errors),
    NX_LS(rx_frame_errors), NX_LS(multicast), NX_LS(rx_nohandler), NX_LS(rx_packets), NX_LS(tx_bytes),
    NX_LS(tx_carrier_errors), NX_LS(collisions), NX_LS(tx_compressed), NX_LS(tx_dropped), NX_LS(tx_errors),
    NX_LS(tx_fifo_errors), NX_LS(tx_packets),
};
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

/* Every link's IFLA_STATS64 from one RTM_GETLINK dump, as node_exporter
 * 1.5 reads them; -errno when netlink is unavailable. */
static int netdev_netlink(nx_ctx *x, const int *fam)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0)
        return -errno;
    struct {
        struct nlmsghdr nh;
        struct ifinfomsg ifi;
    } req;
    memset(&req, 0, sizeof req);
    req.nh.nlmsg_len = sizeof req;
    req.nh.nlmsg_type = RTM_GETLINK;
    req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    req.nh.nlmsg_seq = 1;
    req.ifi.ifi_family = AF_UNSPEC;
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int rc = 0;
    if (sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        sn_buf_reserve(&x->rd, 65536) < 0) {
        rc = errno ? -errno : -ENOMEM;
        close(fd);
        return rc;
    }
    for (bool done = false; !done && rc == 0;) {
        ssize_t n = recv(fd, x->rd.p, x->rd.cap, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)x->rd.p; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type == NLMSG_DONE) {
                done = true;
                break;
            }
            if (h->nlmsg_type == NLMSG_ERROR) {
                struct nlmsgerr *ne = NLMSG_DATA(h);
                rc = ne->error < 0 ? ne->error : -EPROTO;
                break;
            }
            if (h->nlmsg_type != RTM_NEWLINK)
                continue;
            struct ifinfomsg *ifi = NLMSG_DATA(h);
            int len = (int)IFLA_PAYLOAD(h);
            const char *name = NULL;
            struct rtnl_link_stats64 st;
            bool have = false;
            for (struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
                if (a->rta_type == IFLA_IFNAME)
                    name = RTA_DATA(a);
                else if (a->rta_type == IFLA_STATS64) {
                    memset(&st, 0, sizeof st);
                    size_t k = RTA_PAYLOAD(a) < sizeof st ? RTA_PAYLOAD(a) : sizeof st;
                    memcpy(&st, RTA_DATA(a), k);
                    have = true;
                }
            }
            if (!name || !have)
                continue;
            for (int i = 0; i < NX_NETDEV_N; i++) {
                uint64_t v;
                memcpy(&v, (const char *)&st + netdev_off[i], sizeof v);
                nx_sample(x, fam[i], (double)v, 1, "device", name);
            }
        }
    }
    close(fd);
    return rc;
}

/* The same counters from <sys>/class/net/IF/statistics (fixture trees, or
 * where netlink is refused). */
static int netdev_sysfs(nx_ctx *x, const int *fam)
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/class/net", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
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

NX_COLLECTOR(netdev)
{
    int fam[NX_NETDEV_N];
    for (int i = 0; i < NX_NETDEV_N; i++)
        fam[i] = nx_family(x, netdev_stats[i].name, NX_COUNTER, netdev_stats[i].help);
    /* netlink sees this process's links: only when sys is the real one */
    if (!strcmp(x->sys, "/sys")) {
        int rc = netdev_netlink(x, fam);
        if (rc == 0)
            return 0;
        core_log(CORE_LOG_DEBUG, "sense: netdev: netlink: %s; reading sysfs", strerror(-rc));
        for (int i = 0; i < x->nfams; i++) { /* drop a partial dump */
            x->fams[i].nsamples = 0;
            x->fams[i].body.len = 0;
        }
    }
    return netdev_sysfs(x, fam);
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

/* ---- infiniband ------------------------------------------------------------------ */
/* Port counters: file under ports/N/counters (or counters_ext for the
 * legacy ones), family suffix, help. The data counters count 4-byte words. */
typedef struct ib_counter {
    const char *file, *name, *help;
    bool ext;
} ib_counter;

static const ib_counter ib_counters[] = {
    {"port_multicast_rcv_packets", "legacy_multicast_packets_received_total", "Number of multicast packets received", true},
    {"port_multicast_xmit_packets", "legacy_multicast_packets_transmitted_total", "Number of multicast packets transmitted",
     true},
    {"port_rcv_data_64", "legacy_data_received_bytes_total", "Number of data octets received on all links", true},
    {"port_rcv_packets_64", "legacy_packets_received_total", "Number of data packets received on all links", true},
    {"port_unicast_rcv_packets", "legacy_unicast_packets_received_total", "Number of unicast packets received", true},
    {"port_unicast_xmit_packets", "legacy_unicast_packets_transmitted_total", "Number of unicast packets transmitted",
     true},
    {"port_xmit_data_64", "legacy_data_transmitted_bytes_total", "Number of data octets transmitted on all links", true},
    {"port_xmit_packets_64", "legacy_packets_transmitted_total", "Number of data packets received on all links", true},
    {"excessive_buffer_overrun_errors", "excessive_buffer_overrun_errors_total",
     "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one "
     "overrun error.", false},
    {"link_downed", "link_downed_total",
     "Number of times the link failed to recover from an error state and went down", false},
    {"link_error_recovery", "link_error_recovery_total",
     "Number of times the link successfully recovered from an error state", false},
    {"local_link_integrity_errors", "local_link_integrity_errors_total",
     "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.",
     false},
    {"multicast_rcv_packets", "multicast_packets_received_total",
     "Number of multicast packets received (including errors)", false},
    {"multicast_xmit_packets", "multicast_packets_transmitted_total",
     "Number of multicast packets transmitted (including errors)", false},
    {"port_rcv_constraint_errors", "port_constraint_errors_received_total",
     "Number of packets received on the switch physical port that are discarded", false},
    {"port_xmit_constraint_errors", "port_constraint_errors_transmitted_total",
     "Number of packets not transmitted from the switch physical port", false},
    {"port_rcv_data", "port_data_received_bytes_total", "Number of data octets received on all links", false},
    {"port_xmit_data", "port_data_transmitted_bytes_total", "Number of data octets transmitted on all links", false},
    {"port_rcv_discards", "port_discards_received_total",
     "Number of inbound packets discarded by the port because the port is down or congested", false},
    {"port_xmit_discards", "port_discards_transmitted_total",
     "Number of outbound packets discarded by the port because the port is down or congested", false},
    {"port_rcv_errors", "port_errors_received_total",
     "Number of packets containing an error that were received on this port", false},
    {"port_rcv_packets", "port_packets_received_total",
     "Number of packets received on all VLs by this port (including errors)", false},
    {"port_xmit_packets", "port_packets_transmitted_total",
     "Number of packets transmitted on all VLs from this port (including errors)", false},
    {"port_xmit_wait", "port_transmit_wait_total",
     "Number of ticks during which the port had data to transmit but no data was sent during the entire tick", false},
    {"unicast_rcv_packets", "unicast_packets_received_total", "Number of unicast packets received (including errors)",
     false},
    {"unicast_xmit_packets", "unicast_packets_transmitted_total",
     "Number of unicast packets transmitted (including errors)", false},
    {"port_rcv_remote_physical_errors", "port_receive_remote_physical_errors_total",
     "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.", false},
    {"port_rcv_switch_relay_errors", "port_receive_switch_relay_errors_total",
     "Number of packets that could not be forwarded by the switch.", false},
    {"symbol_error", "symbol_error_total", "Number of minor link errors detected on one or more physical lanes.", false},
    {"VL15_dropped", "vl15_dropped_total", "Number of incoming VL15 packets dropped due to resource limitations.", false},
};
#define NX_IB_N ((int)(sizeof ib_counters / sizeof ib_counters[0]))

/* "4: ACTIVE" -> 4 */
static int ib_state(nx_ctx *x, const char *dev, const char *port, const char *file, double *v)
{
    char s[64], *end;
    int rc = nx_read_str(x, x->sys, s, sizeof s, "class/infiniband/%s/ports/%s/%s", dev, port, file);
    if (rc < 0)
        return rc;
    unsigned long u = strtoul(s, &end, 10);
    if (end == s || *end != ':')
        return -EINVAL;
    *v = (double)u;
    return 0;
}

static int ib_port(nx_ctx *x, const char *dev, const char *port)
{
    static const char *const hs = "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, "
                                  "5: act defer)";
    static const char *const hp = "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, "
                                  "3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)";
    double st, ph;
    char rate[64], *end;
    int rc = ib_state(x, dev, port, "state", &st);
    if (rc == 0)
        rc = ib_state(x, dev, port, "phys_state", &ph);
    if (rc == 0)
        rc = nx_read_str(x, x->sys, rate, sizeof rate, "class/infiniband/%s/ports/%s/rate", dev, port);
    if (rc < 0)
        return rc;
    double gbps = strtod(rate, &end); /* "40 Gb/sec (4X QDR)" */
    if (end == rate)
        return -EINVAL;
    nx_sample(x, nx_family(x, "node_infiniband_state_id", NX_GAUGE, hs), st, 2, "device", dev, "port", port);
    nx_sample(x, nx_family(x, "node_infiniband_physical_state_id", NX_GAUGE, hp), ph, 2, "device", dev, "port", port);
    nx_sample(x, nx_family(x, "node_infiniband_rate_bytes_per_second", NX_GAUGE, "Maximum signal transfer rate"),
              gbps * 125000000.0, 2, "device", dev, "port", port);
    for (int i = 0; i < NX_IB_N; i++) {
        const ib_counter *c = &ib_counters[i];
        char s[64];
        if (nx_read_str(x, x->sys, s, sizeof s, "class/infiniband/%s/ports/%s/%s/%s", dev, port,
                        c->ext ? "counters_ext" : "counters", c->file) < 0)
            continue;
        double v = strtod(s, &end); /* "N/A (no PMA)": left out, as procfs does */
        if (end == s)
            continue;
        if (strstr(c->file, "_data"))
            v *= 4;
        char name[128];
        snprintf(name, sizeof name, "node_infiniband_%s", c->name);
        nx_sample(x, nx_family_dyn(x, name, NX_COUNTER, c->help), v, 2, "device", dev, "port", port);
    }
    return 0;
}

NX_COLLECTOR(infiniband)
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/class/infiniband", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return -errno; /* node_exporter: no data */
    int finfo = nx_family(x, "node_infiniband_info", NX_GAUGE,
                          "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.");
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!nx_is_dir(dir, de))
            continue;
        char dev[128], fw[64] = "", board[64] = "", hca[64] = "";
        core_sncpy(dev, sizeof dev, de->d_name);
        rc = nx_read_str(x, x->sys, fw, sizeof fw, "class/infiniband/%s/fw_ver", dev);
        if (rc < 0)
            break;
        nx_read_str(x, x->sys, board, sizeof board, "class/infiniband/%s/board_id", dev);
        nx_read_str(x, x->sys, hca, sizeof hca, "class/infiniband/%s/hca_type", dev);
        nx_sample(x, finfo, 1, 4, "device", dev, "board_id", board, "firmware_version", fw, "hca_type", hca);
        char pdir[CORE_PATH_MAX + 300];
        snprintf(pdir, sizeof pdir, "%s/%s/ports", dir, dev);
        DIR *pd = opendir(pdir);
        if (!pd) {
            rc = -errno;
            break;
        }
        struct dirent *pe;
        while (rc == 0 && (pe = readdir(pd)))
            if (nx_is_dir(pdir, pe))
                rc = ib_port(x, dev, pe->d_name);
        closedir(pd);
    }
    closedir(d);
    return rc;
}
