/* nx_nfs.c: node_exporter 1.5's nfs and nfsd collectors, from
 * /proc/net/rpc/nfs (the NFS client) and /proc/net/rpc/nfsd (the kernel NFS
 * server): RPC and per-procedure counters by protocol version, with the
 * method names of node_exporter's procfs library. A line that procfs refuses
 * (wrong count, unknown key) fails the collector as it fails node_exporter's;
 * versions missing from the file are reported as zeros, as node_exporter's
 * zero-valued structs are. */
#include <errno.h>
#include <stdio.h>

#include "sense/nx_int.h"

#define NFS_MAXV 96 /* numbers on one line */

/* Splits one line into its key and numbers; count or -EINVAL. */
static int nfs_line(const char **pp, const char *e, char *key, size_t kn, uint64_t *v)
{
    const char *p = *pp, *le = sn_eol(p, e);
    *pp = le;
    if (le > p && le[-1] == '\n')
        le--;
    sn_tok(&p, le, key, kn);
    int n = 0;
    for (;;) {
        p = sn_skip_ws(p, le);
        if (p >= le)
            break;
        bool ok;
        uint64_t x = sn_u64(&p, le, &ok);
        if (!ok || (p < le && *p != ' ' && *p != '\t') || n >= NFS_MAXV)
            return -EINVAL;
        v[n++] = x;
    }
    return n;
}

/* "procN" lines: first number is the count that follows. */
static bool counted(const uint64_t *v, int n, int min)
{
    return n >= 1 && (uint64_t)(n - 1) == v[0] && (int)v[0] >= min;
}

static const char *const v2_names[] = {"Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink",
                                       "Read", "WrCache", "Write", "Create", "Remove", "Rename",
                                       "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat"};
static const char *const v3_names[] = {"Null", "GetAttr", "SetAttr", "Lookup", "Access", "ReadLink",
                                       "Read", "Write", "Create", "MkDir", "SymLink", "MkNod",
                                       "Remove", "RmDir", "Rename", "Link", "ReadDir", "ReadDirPlus",
                                       "FsStat", "FsInfo", "PathConf", "Commit"};
static const char *const v4c_names[] = {
    "Null", "Read", "Write", "Commit", "Open", "OpenConfirm", "OpenNoattr", "OpenDowngrade", "Close",
    "Setattr", "FsInfo", "Renew", "SetClientID", "SetClientIDConfirm", "Lock", "Lockt", "Locku", "Access",
    "Getattr", "Lookup", "LookupRoot", "Remove", "Rename", "Link", "Symlink", "Create", "Pathconf", "StatFs",
    "ReadLink", "ReadDir", "ServerCaps", "DelegReturn", "GetACL", "SetACL", "FsLocations", "ReleaseLockowner",
    "Secinfo", "FsidPresent", "ExchangeID", "CreateSession", "DestroySession", "Sequence", "GetLeaseTime",
    "ReclaimComplete", "LayoutGet", "GetDeviceInfo", "LayoutCommit", "LayoutReturn", "SecinfoNoName",
    "TestStateID", "FreeStateID", "GetDeviceList", "BindConnToSession", "DestroyClientID", "Seek", "Allocate",
    "DeAllocate", "LayoutStats", "Clone"};
enum { NV2 = 18, NV3 = 22, NV4C = 59 };

NX_COLLECTOR(nfs)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/rpc/nfs");
    if (n < 0)
        return (int)n; /* absent (no NFS client module): ErrNoData, success 0 */
    uint64_t net[4] = {0}, rpc[3] = {0}, v2[NV2] = {0}, v3[NV3] = {0}, v4[NV4C] = {0}, v[NFS_MAXV];
    const char *p = x->rd.p, *e = x->rd.p + n;
    while (p < e) {
        char key[16];
        int k = nfs_line(&p, e, key, sizeof key, v);
        if (k < 0)
            return k;
        if (k == 0)
            return -EINVAL; /* a key alone or a blank line: procfs: "invalid NFS metric line" */
        if (!strcmp(key, "net") && k == 4)
            memcpy(net, v, sizeof net);
        else if (!strcmp(key, "rpc") && k == 3)
            memcpy(rpc, v, sizeof rpc);
        else if (!strcmp(key, "proc2") && counted(v, k, NV2))
            memcpy(v2, v + 1, sizeof v2);
        else if (!strcmp(key, "proc3") && counted(v, k, NV3))
            memcpy(v3, v + 1, sizeof v3);
        else if (!strcmp(key, "proc4") && counted(v, k, 0))
            memcpy(v4, v + 1, sizeof(uint64_t) * (size_t)(k - 1 < NV4C ? k - 1 : NV4C));
        else
            return -EINVAL;
    }
    int fp = nx_family(x, "node_nfs_packets_total", NX_COUNTER,
                       "Total NFSd network packets (sent+received) by protocol type.");
    nx_sample(x, fp, (double)net[1], 1, "protocol", "udp");
    nx_sample(x, fp, (double)net[2], 1, "protocol", "tcp");
    nx_sample(x, nx_family(x, "node_nfs_connections_total", NX_COUNTER, "Total number of NFSd TCP connections."),
              (double)net[3], 0);
    nx_sample(x, nx_family(x, "node_nfs_rpcs_total", NX_COUNTER, "Total number of RPCs performed."), (double)rpc[0], 0);
    nx_sample(x, nx_family(x, "node_nfs_rpc_retransmissions_total", NX_COUNTER, "Number of RPC transmissions performed."),
              (double)rpc[1], 0);
    nx_sample(x, nx_family(x, "node_nfs_rpc_authentication_refreshes_total", NX_COUNTER,
                           "Number of RPC authentication refreshes performed."), (double)rpc[2], 0);
    int fr = nx_family(x, "node_nfs_requests_total", NX_COUNTER, "Number of NFS procedures invoked.");
    for (int i = 0; i < NV2; i++)
        nx_sample(x, fr, (double)v2[i], 2, "method", v2_names[i], "proto", "2");
    for (int i = 0; i < NV3; i++)
        nx_sample(x, fr, (double)v3[i], 2, "method", v3_names[i], "proto", "3");
    for (int i = 0; i < NV4C; i++)
        nx_sample(x, fr, (double)v4[i], 2, "method", v4c_names[i], "proto", "4");
    return 0;
}

/* The server's NFSv4 operations that node_exporter reports, with their
 * index in the proc4ops line (after its count). node_exporter 1.5's procfs
 * reads Verify, Write and RelLockOwner two places early (at SETCLIENTID,
 * SETCLIENTID_CONFIRM and VERIFY): matched here, so dashboards agree. */
static const struct {
    const char *name;
    int at;
} v4ops[] = {
    {"Access", 3},     {"Close", 4},        {"Commit", 5},      {"Create", 6},       {"DelegPurge", 7},
    {"DelegReturn", 8}, {"GetAttr", 9},     {"GetFH", 10},      {"Link", 11},        {"Lock", 12},
    {"Lockt", 13},     {"Locku", 14},       {"Lookup", 15},     {"LookupRoot", 16},  {"Nverify", 17},
    {"Open", 18},      {"OpenAttr", 19},    {"OpenConfirm", 20}, {"OpenDgrd", 21},   {"PutFH", 22},
    {"Read", 25},      {"ReadDir", 26},     {"ReadLink", 27},   {"Remove", 28},      {"Rename", 29},
    {"Renew", 30},     {"RestoreFH", 31},   {"SaveFH", 32},     {"SecInfo", 33},     {"SetAttr", 34},
    {"Verify", 35},    {"Write", 36},       {"RelLockOwner", 37},
};

NX_COLLECTOR(nfsd)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "net/rpc/nfsd");
    if (n < 0)
        return (int)n; /* absent (no NFS server): ErrNoData, success 0 */
    uint64_t rc[3] = {0}, fh[5] = {0}, io[2] = {0}, th[2] = {0}, ra[12] = {0}, net[4] = {0}, rpc[5] = {0};
    uint64_t v2[NV2] = {0}, v3[NV3] = {0}, ops[40] = {0}, v[NFS_MAXV];
    const char *p = x->rd.p, *e = x->rd.p + n;
    while (p < e) {
        if (e - p > 3 && !memcmp(p, "th", 2) && (p[2] == ' ' || p[2] == '\t')) {
            /* th: thread count, full count, then decimals procfs ignores */
            const char *q = p + 2;
            bool ok1, ok2;
            th[0] = sn_u64(&q, e, &ok1);
            th[1] = sn_u64(&q, e, &ok2);
            if (!ok1 || !ok2)
                return -EINVAL;
            p = sn_eol(p, e);
            continue;
        }
        char key[16];
        int k = nfs_line(&p, e, key, sizeof key, v);
        if (k < 0)
            return k;
        if (k == 0)
            return -EINVAL; /* a key alone or a blank line, as procfs */
        if (!strcmp(key, "rc") && k == 3)
            memcpy(rc, v, sizeof rc);
        else if (!strcmp(key, "fh") && k == 5)
            memcpy(fh, v, sizeof fh);
        else if (!strcmp(key, "io") && k == 2)
            memcpy(io, v, sizeof io);
        else if (!strcmp(key, "ra") && k == 12)
            memcpy(ra, v, sizeof ra);
        else if (!strcmp(key, "net") && k == 4)
            memcpy(net, v, sizeof net);
        else if (!strcmp(key, "rpc") && k == 5)
            memcpy(rpc, v, sizeof rpc);
        else if (!strcmp(key, "proc2") && counted(v, k, NV2))
            memcpy(v2, v + 1, sizeof v2);
        else if (!strcmp(key, "proc3") && counted(v, k, NV3))
            memcpy(v3, v + 1, sizeof v3);
        else if (!strcmp(key, "proc4") && counted(v, k, 2) && v[0] == 2)
            ;
        else if (!strcmp(key, "proc4ops") && counted(v, k, 39))
            memcpy(ops, v + 1, sizeof(uint64_t) * (k - 1 > 40 ? 40 : (size_t)(k - 1)));
        else
            return -EINVAL;
    }
    nx_sample(x, nx_family(x, "node_nfsd_reply_cache_hits_total", NX_COUNTER,
                           "Total number of NFSd Reply Cache hits (client lost server response)."), (double)rc[0], 0);
    nx_sample(x, nx_family(x, "node_nfsd_reply_cache_misses_total", NX_COUNTER,
                           "Total number of NFSd Reply Cache an operation that requires caching (idempotent)."),
              (double)rc[1], 0);
    nx_sample(x, nx_family(x, "node_nfsd_reply_cache_nocache_total", NX_COUNTER,
                           "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/\u2026)."),
              (double)rc[2], 0);
    nx_sample(x, nx_family(x, "node_nfsd_file_handles_stale_total", NX_COUNTER,
                           "Total number of NFSd stale file handles"), (double)fh[0], 0);
    nx_sample(x, nx_family(x, "node_nfsd_disk_bytes_read_total", NX_COUNTER, "Total NFSd bytes read."), (double)io[0], 0);
    nx_sample(x, nx_family(x, "node_nfsd_disk_bytes_written_total", NX_COUNTER, "Total NFSd bytes written."),
              (double)io[1], 0);
    nx_gauge1(x, "node_nfsd_server_threads", "Total number of NFSd kernel threads that are running.", (double)th[0]);
    nx_gauge1(x, "node_nfsd_read_ahead_cache_size_blocks", "How large the read ahead cache is in blocks.",
              (double)ra[0]);
    nx_sample(x, nx_family(x, "node_nfsd_read_ahead_cache_not_found_total", NX_COUNTER,
                           "Total number of NFSd read ahead cache not found."), (double)ra[11], 0);
    int fp = nx_family(x, "node_nfsd_packets_total", NX_COUNTER,
                       "Total NFSd network packets (sent+received) by protocol type.");
    nx_sample(x, fp, (double)net[1], 1, "proto", "udp");
    nx_sample(x, fp, (double)net[2], 1, "proto", "tcp");
    nx_sample(x, nx_family(x, "node_nfsd_connections_total", NX_COUNTER, "Total number of NFSd TCP connections."),
              (double)net[3], 0);
    int fe = nx_family(x, "node_nfsd_rpc_errors_total", NX_COUNTER, "Total number of NFSd RPC errors by error type.");
    nx_sample(x, fe, (double)rpc[2], 1, "error", "fmt");
    nx_sample(x, fe, (double)rpc[3], 1, "error", "auth");
    nx_sample(x, fe, (double)rpc[4], 1, "error", "cInt");
    nx_sample(x, nx_family(x, "node_nfsd_server_rpcs_total", NX_COUNTER, "Total number of NFSd RPCs."), (double)rpc[0], 0);
    int fr = nx_family(x, "node_nfsd_requests_total", NX_COUNTER, "Total number NFSd Requests by method and protocol.");
    for (int i = 1; i < NV2; i++) /* the server leaves out Null */
        nx_sample(x, fr, (double)v2[i], 2, "method", v2_names[i], "proto", "2");
    for (int i = 1; i < NV3; i++)
        nx_sample(x, fr, (double)v3[i], 2, "method", v3_names[i], "proto", "3");
    for (size_t i = 0; i < sizeof v4ops / sizeof v4ops[0]; i++)
        nx_sample(x, fr, (double)ops[v4ops[i].at], 2, "method", v4ops[i].name, "proto", "4");
    return 0;
}
