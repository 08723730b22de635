/* nx_netstat.c: node_exporter's protocol-counter collectors: netstat
 * (<proc>/net/netstat, snmp and snmp6 through node_exporter 1.5's default
 * field whitelist, untyped as it declares them), sockstat (<proc>/net/sockstat
 * and sockstat6, with _mem_bytes = pages * page size), softnet
 * (<proc>/net/softnet_stat, per CPU line), conntrack
 * (<proc>/sys/net/netfilter and <proc>/net/stat/nf_conntrack summed over CPUs)
 * and udp_queues (queued bytes summed over <proc>/net/udp and udp6). */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sense/nx_int.h"

/* ---- netstat --------------------------------------------------------------------- */
static regex_t re_fields;
static bool re_fields_ok;
static pthread_once_t re_fields_once = PTHREAD_ONCE_INIT;

static void re_fields_init(void)
{
    re_fields_ok = regcomp(&re_fields,
                           "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|"
                           "TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|"
                           "Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|"
                           "Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$",
                           REG_EXTENDED | REG_NOSUB) == 0;
}

/* One "Proto_Field value" pair through the whitelist. */
static void netstat_put(nx_ctx *x, const char *proto, size_t pl, const char *field, size_t fl, const char *val,
                        size_t vl)
{
    char key[160], name[192], help[192], num[64];
    if (pl + fl + 2 > sizeof key || vl >= sizeof num)
        return;
    snprintf(key, sizeof key, "%.*s_%.*s", (int)pl, proto, (int)fl, field);
    if (!re_fields_ok || regexec(&re_fields, key, 0, NULL, 0) != 0)
        return;
    memcpy(num, val, vl);
    num[vl] = 0;
    char *end;
    double v = strtod(num, &end);
    if (end == num)
        return;
    snprintf(name, sizeof name, "node_netstat_%s", key);
    snprintf(help, sizeof help, "Statistic %.*s%.*s.", (int)pl, proto, (int)fl, field);
    nx_sample(x, nx_family_dyn(x, name, NX_UNTYPED, help), v, 0);
}

/* "Proto: F1 F2 ...\nProto: v1 v2 ...\n" pairs (netstat, snmp). */
static void netstat_pairs(nx_ctx *x, const char *p, const char *e)
{
    while (p < e) {
        const char *l1 = p, *e1 = sn_eol(l1, e), *l2 = e1, *e2 = sn_eol(l2, e);
        p = e2;
        const char *c1 = memchr(l1, ':', (size_t)(e1 - l1)), *c2 = l2 < e ? memchr(l2, ':', (size_t)(e2 - l2)) : NULL;
        if (!c1 || !c2 || c1 - l1 != c2 - l2 || memcmp(l1, l2, (size_t)(c1 - l1)) != 0)
            continue;
        const char *a = c1 + 1, *b = c2 + 1;
        for (;;) {
            a = sn_skip_ws(a, e1);
            b = sn_skip_ws(b, e2);
            const char *ae = sn_skip_tok(a, e1), *be = sn_skip_tok(b, e2);
            if (ae == a || be == b)
                break;
            netstat_put(x, l1, (size_t)(c1 - l1), a, (size_t)(ae - a), b, (size_t)(be - b));
            a = ae;
            b = be;
        }
    }
}

/* "Ip6InReceives 123" lines: the protocol is the name up to its first '6'. */
static void netstat_snmp6(nx_ctx *x, const char *p, const char *e)
{
    for (; p < e; p = sn_eol(p, e)) {
        const char *ke = sn_skip_tok(p, e);
        const char *six = memchr(p, '6', (size_t)(ke - p));
        const char *v = sn_skip_ws(ke, e), *ve = sn_skip_tok(v, e);
        if (!six || ve == v)
            continue;
        netstat_put(x, p, (size_t)(six + 1 - p), six + 1, (size_t)(ke - six - 1), v, (size_t)(ve - v));
    }
}

NX_COLLECTOR(netstat)
{
    pthread_once(&re_fields_once, re_fields_init);
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/netstat");
    if (n < 0)
        return (int)n;
    netstat_pairs(x, x->rd.p, x->rd.p + n);
    n = nx_read(x, &x->rd, x->proc, "net/snmp");
    if (n < 0)
        return (int)n;
    netstat_pairs(x, x->rd.p, x->rd.p + n);
    n = nx_read(x, &x->rd, x->proc, "net/snmp6");
    if (n >= 0)
        netstat_snmp6(x, x->rd.p, x->rd.p + n);
    else if (n != -ENOENT) /* no IPv6: node_exporter goes on without */
        return (int)n;
    return 0;
}

/* ---- sockstat -------------------------------------------------------------------- */
static void sockstat_put(nx_ctx *x, const char *proto, const char *field, double v)
{
    char name[160], help[192];
    snprintf(name, sizeof name, "node_sockstat_%s_%s", proto, field);
    snprintf(help, sizeof help, "Number of %s sockets in state %s.", proto, field);
    nx_sample(x, nx_family_dyn(x, name, NX_GAUGE, help), v, 0);
}

static const char *const sock_fields[] = {"inuse", "orphan", "tw", "alloc", "mem", "memory"};

static void sockstat_parse(nx_ctx *x, const char *p, const char *e, bool v4)
{
    double page = (double)sysconf(_SC_PAGESIZE);
    for (; p < e; p = sn_eol(p, e)) {
        const char *le = sn_eol(p, e), *c = memchr(p, ':', (size_t)(le - p));
        if (!c)
            continue;
        char proto[32];
        size_t pl = (size_t)(c - p) < sizeof proto ? (size_t)(c - p) : sizeof proto - 1;
        memcpy(proto, p, pl);
        proto[pl] = 0;
        const char *q = c + 1;
        for (;;) {
            char key[32];
            q = sn_skip_ws(q, le);
            if (!sn_tok(&q, le, key, sizeof key))
                break;
            bool ok;
            uint64_t v = sn_u64(&q, le, &ok);
            if (!ok)
                break;
            if (!strcmp(proto, "sockets")) {
                if (v4 && !strcmp(key, "used"))
                    nx_gauge1(x, "node_sockstat_sockets_used", "Number of IPv4 sockets in use.", (double)v);
                continue;
            }
            for (size_t i = 0; i < sizeof sock_fields / sizeof sock_fields[0]; i++) {
                if (strcmp(key, sock_fields[i]))
                    continue;
                sockstat_put(x, proto, key, (double)v);
                if (!strcmp(key, "mem"))
                    sockstat_put(x, proto, "mem_bytes", (double)v * page);
            }
        }
    }
}

NX_COLLECTOR(sockstat)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/sockstat");
    if (n < 0)
        return (int)n;
    sockstat_parse(x, x->rd.p, x->rd.p + n, true);
    n = nx_read(x, &x->rd, x->proc, "net/sockstat6");
    if (n >= 0)
        sockstat_parse(x, x->rd.p, x->rd.p + n, false);
    else if (n != -ENOENT)
        return (int)n;
    return 0;
}

/* ---- softnet --------------------------------------------------------------------- */
/* A hex number that ends at a blank, a newline or the end. */
static uint64_t hex_tok(const char **pp, const char *e, bool *ok)
{
    uint64_t v = sn_x64(pp, e, ok);
    const char *p = *pp;
    *ok = *ok && (p == e || *p == ' ' || *p == '\t' || *p == '\n');
    return v;
}

NX_COLLECTOR(softnet)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/softnet_stat");
    if (n < 0)
        return (int)n;
    int fp = nx_family(x, "node_softnet_processed_total", NX_COUNTER, "Number of processed packets");
    int fd = nx_family(x, "node_softnet_dropped_total", NX_COUNTER, "Number of dropped packets");
    int fs = nx_family(x, "node_softnet_times_squeezed_total", NX_COUNTER,
                       "Number of times processing packets ran out of quota");
    const char *p = x->rd.p, *e = p + n;
    for (int cpu = 0; p < e; p = sn_eol(p, e), cpu++) {
        const char *q = p;
        uint64_t v[3];
        for (int i = 0; i < 3; i++) {
            bool ok;
            v[i] = hex_tok(&q, e, &ok);
            if (!ok) {
                core_log(CORE_LOG_DEBUG, "sense: softnet: line %d of softnet_stat is malformed", cpu + 1);
                return -EINVAL;
            }
        }
        char id[16]; /* the line's index, as node_exporter 1.5 labels it */
        snprintf(id, sizeof id, "%d", cpu);
        nx_sample(x, fp, (double)v[0], 1, "cpu", id);
        nx_sample(x, fd, (double)v[1], 1, "cpu", id);
        nx_sample(x, fs, (double)v[2], 1, "cpu", id);
    }
    return 0;
}

/* ---- conntrack ------------------------------------------------------------------- */
/* Columns of /proc/net/stat/nf_conntrack node_exporter reports (by position,
 * as procfs reads them). */
static const struct { int col; const char *name, *help; } ct_stats[] = {
    {2, "node_nf_conntrack_stat_found", "Number of searched entries which were successful."},
    {4, "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."},
    {5, "node_nf_conntrack_stat_ignore", "Number of packets seen which are already connected to a conntrack entry."},
    {8, "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."},
    {9, "node_nf_conntrack_stat_insert_failed", "Number of entries for which list insertion was attempted but failed."},
    {10, "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."},
    {11, "node_nf_conntrack_stat_early_drop",
     "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."},
    {16, "node_nf_conntrack_stat_search_restart",
     "Number of conntrack table lookups which had to be restarted due to hashtable resizes."},
};
#define NX_CT_N ((int)(sizeof ct_stats / sizeof ct_stats[0]))
#define NX_CT_COLS 17

NX_COLLECTOR(conntrack)
{
    uint64_t count, max;
    int rc = nx_read_u64(x, x->proc, &count, "sys/net/netfilter/nf_conntrack_count");
    if (rc < 0)
        return rc; /* no conntrack module: node_exporter reports no data */
    nx_gauge1(x, "node_nf_conntrack_entries", "Number of currently allocated flow entries for connection tracking.",
              (double)count);
    rc = nx_read_u64(x, x->proc, &max, "sys/net/netfilter/nf_conntrack_max");
    if (rc < 0)
        return rc;
    nx_gauge1(x, "node_nf_conntrack_entries_limit", "Maximum size of connection tracking table.", (double)max);
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/stat/nf_conntrack");
    if (n < 0)
        return (int)n;
    uint64_t sum[NX_CT_COLS] = {0};
    const char *p = sn_eol(x->rd.p, x->rd.p + n), *e = x->rd.p + n; /* past the header */
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = p;
        for (int c = 0; c < NX_CT_COLS; c++) {
            bool ok;
            uint64_t v = hex_tok(&q, e, &ok);
            if (!ok) {
                core_log(CORE_LOG_DEBUG, "sense: conntrack: net/stat/nf_conntrack: column %d is not hex", c + 1);
                return -EINVAL;
            }
            sum[c] += v;
        }
    }
    for (int i = 0; i < NX_CT_N; i++)
        nx_gauge1(x, ct_stats[i].name, ct_stats[i].help, (double)sum[ct_stats[i].col]);
    return 0;
}

/* ---- udp_queues ------------------------------------------------------------------ */
/* Sums the tx_queue:rx_queue column (hex) over the sockets of one file. */
static int udp_sum(nx_ctx *x, const char *rel, uint64_t *tx, uint64_t *rx)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "%s", rel);
    if (n < 0)
        return (int)n;
    *tx = *rx = 0;
    const char *p = sn_eol(x->rd.p, x->rd.p + n), *e = x->rd.p + n;
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = p;
        for (int i = 0; i < 4; i++) { /* sl local rem st */
            q = sn_skip_ws(q, e);
            q = sn_skip_tok(q, e);
        }
        bool ok1, ok2;
        uint64_t t = hex_tok(&q, e, &ok1);
        if (q < e && *q == ':')
            q++;
        uint64_t r = hex_tok(&q, e, &ok2);
        (void)ok1;
        if (q == p || !ok2)
            continue;
        *tx += t;
        *rx += r;
    }
    return 0;
}

NX_COLLECTOR(udp_queues)
{
    int f = nx_family(x, "node_udp_queues", NX_GAUGE,
                      "Number of allocated memory in the kernel for UDP datagrams in bytes.");
    uint64_t tx, rx;
    int rc4 = udp_sum(x, "net/udp", &tx, &rx);
    if (rc4 == 0) {
        nx_sample(x, f, (double)tx, 2, "queue", "tx", "ip", "v4");
        nx_sample(x, f, (double)rx, 2, "queue", "rx", "ip", "v4");
    } else if (rc4 != -ENOENT) {
        return rc4;
    }
    int rc6 = udp_sum(x, "net/udp6", &tx, &rx);
    if (rc6 == 0) {
        nx_sample(x, f, (double)tx, 2, "queue", "tx", "ip", "v6");
        nx_sample(x, f, (double)rx, 2, "queue", "rx", "ip", "v6");
    } else if (rc6 != -ENOENT) {
        return rc6;
    }
    return rc4 < 0 && rc6 < 0 ? -ENOENT : 0;
}
