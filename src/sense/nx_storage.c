/* nx_storage.c: node_exporter's storage-stack collectors: nvme
 * (<sys>/class/nvme info), mdadm (<proc>/mdstat, parsed as procfs does) and
 * bcache, btrfs and xfs (their <sys>/fs trees). */
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sense/nx_int.h"

/* Calls fn for each UUID directory of <sys>/fs/<fs> (procfs: fs/<fs>/ * - *)
 * until one fails; 0 when the file system is not there (nothing to say). */
static int each_uuid(nx_ctx *x, const char *fs, int (*fn)(nx_ctx *x, const char *uuid))
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/fs/%s", x->sys, fs);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)))
        if (strchr(de->d_name, '-') && nx_is_dir(dir, de))
            rc = fn(x, de->d_name);
    closedir(d);
    return rc;
}

/* ---- nvme ------------------------------------------------------------------------ */
NX_COLLECTOR(nvme)
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/class/nvme", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return -errno; /* node_exporter: no data */
    int f = nx_family(x, "node_nvme_info", NX_GAUGE, "Non-numeric data from /sys/class/nvme/<device>, value is always 1.");
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!nx_is_dir(dir, de))
            continue;
        static const char *const files[4] = {"firmware_rev", "model", "serial", "state"};
        char v[4][256];
        for (int i = 0; i < 4 && rc == 0; i++)
            rc = nx_read_str(x, x->sys, v[i], sizeof v[i], "class/nvme/%s/%s", de->d_name, files[i]);
        if (rc < 0)
            break;
        nx_sample(x, f, 1, 5, "device", de->d_name, "firmware_revision", core_trim(v[0]), "model", core_trim(v[1]), "serial",
                  core_trim(v[2]), "state", core_trim(v[3]));
    }
    closedir(d);
    return rc;
}

/* ---- mdadm ----------------------------------------------------------------------- */
typedef struct md_stat {
    char name[64];
    char state[16];  /* active, inactive, recovering, resyncing, checking */
    double active, failed, spare, total, blocks, synced;
} md_stat;

/* Copies line l (up to its newline) into out. */
static void line_copy(const char *l, const char *e, char *out, size_t n)
{
    const char *le = memchr(l, '\n', (size_t)(e - l));
    size_t k = (size_t)((le ? le : e) - l);
    if (k >= n)
        k = n - 1;
    memcpy(out, l, k);
    out[k] = 0;
}

static int count_of(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub))
        n++;
    return n;
}

/* The status line: "N blocks ... [total/active] [UU_]" (raid0 / linear count
 * the [n] of the device line; inactive arrays have neither). */
static int md_status(const char *dev, const char *st, md_stat *m)
{
    char *end;
    m->blocks = (double)strtoull(st, &end, 10);
    if (end == st)
        return -EINVAL;
    if (strstr(dev, "raid0") || strstr(dev, "linear")) {
        m->total = m->active = count_of(dev, "[");
        return 0;
    }
    if (strstr(dev, "inactive")) {
        m->total = m->active = 0;
        return 0;
    }
    if (!strstr(st, " blocks "))
        return -EINVAL;
    /* the last "[a/b]" followed by " [U_...]" */
    const char *br = NULL;
    for (const char *p = st; (p = strchr(p, '[')); p++) {
        unsigned long a, b;
        char *q;
        a = strtoul(p + 1, &q, 10);
        if (q == p + 1 || *q != '/')
            continue;
        b = strtoul(q + 1, &q, 10);
        if (*q != ']' || q[1] != ' ' || q[2] != '[' || (q[3] != 'U' && q[3] != '_'))
            continue;
        m->total = (double)a;
        m->active = (double)b;
        br = p;
    }
    return br ? 0 : -EINVAL;
}

/* "... recovery = 12.6% (12345/98765) finish=..." -> 12345 */
static int md_synced(const char *l, double *v)
{
    for (const char *p = l; (p = strchr(p, '(')); p++) {
        char *q;
        unsigned long long a = strtoull(p + 1, &q, 10);
        if (q != p + 1 && *q == '/') {
            *v = (double)a;
            return 0;
        }
    }
    return -EINVAL;
}

static int md_parse_one(const char *const *ln, int nl, int i, md_stat *m)
{
    char dev[1024], st[512], sync[512];
    line_copy(ln[i], ln[nl], dev, sizeof dev);
    const char *p = dev, *e = dev + strlen(dev);
    char f2[32];
    sn_tok(&p, e, m->name, sizeof m->name);
    p = sn_skip_ws(p, e);
    sn_tok(&p, e, f2, sizeof f2); /* ":" */
    p = sn_skip_ws(p, e);
    sn_tok(&p, e, m->state, sizeof m->state);
    if (!m->state[0] || i + 3 >= nl + 1)
        return -EINVAL;
    m->failed = count_of(dev, "(F)");
    m->spare = count_of(dev, "(S)");
    line_copy(ln[i + 1], ln[nl], st, sizeof st);
    int rc = md_status(dev, core_trim(st), m);
    if (rc < 0)
        return rc;
    int si = i + 2;
    line_copy(ln[si], ln[nl], sync, sizeof sync);
    if (strstr(sync, "bitmap") && si + 1 < nl)
        line_copy(ln[++si], ln[nl], sync, sizeof sync);
    m->synced = m->blocks;
    bool rec = strstr(sync, "recovery"), res = strstr(sync, "resync"), chk = strstr(sync, "check");
    if (!rec && !res && !chk)
        return 0;
    core_sncpy(m->state, sizeof m->state, rec ? "recovering" : chk ? "checking" : "resyncing");
    if (strstr(sync, "PENDING") || strstr(sync, "DELAYED")) {
        m->synced = 0;
        return 0;
    }
    return md_synced(sync, &m->synced);
}

static void md_put(nx_ctx *x, const md_stat *m)
{
    int fst = nx_family(x, "node_md_state", NX_GAUGE, "Indicates the state of md-device.");
    int fd = nx_family(x, "node_md_disks", NX_GAUGE, "Number of active/failed/spare disks of device.");
    nx_sample(x, nx_family(x, "node_md_disks_required", NX_GAUGE, "Total number of disks of device."), m->total, 1,
              "device", m->name);
    nx_sample(x, fd, m->active, 2, "device", m->name, "state", "active");
    nx_sample(x, fd, m->failed, 2, "device", m->name, "state", "failed");
    nx_sample(x, fd, m->spare, 2, "device", m->name, "state", "spare");
    static const char *const states[][2] = {{"active", "active"}, {"inactive", "inactive"},
                                            {"recovering", "recovering"}, {"resyncing", "resync"},
                                            {"checking", "check"}};
    for (int i = 0; i < 5; i++)
        nx_sample(x, fst, !strcmp(m->state, states[i][0]), 2, "device", m->name, "state", states[i][1]);
    nx_sample(x, nx_family(x, "node_md_blocks", NX_GAUGE, "Total number of blocks on device."), m->blocks, 1,
              "device", m->name);
    nx_sample(x, nx_family(x, "node_md_blocks_synced", NX_GAUGE, "Number of blocks synced on device."), m->synced, 1,
              "device", m->name);
}

#define NX_MD_MAX_LINES 4096

NX_COLLECTOR(mdadm)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "mdstat");
    if (n < 0)
        return (int)n; /* no md driver: node_exporter reports no data */
    const char *b = x->rd.p, *e = b + n;
    const char *ln[NX_MD_MAX_LINES + 1];
    int nl = 0;
    for (const char *p = b; p < e && nl < NX_MD_MAX_LINES; p = sn_eol(p, e))
        ln[nl++] = p;
    ln[nl] = e;
    for (int i = 0; i < nl; i++) {
        const char *l = ln[i];
        if (l == e || *l == '\n' || *l == ' ' || *l == '\t' || !strncmp(l, "Personalities", 13) ||
            !strncmp(l, "unused", 6))
            continue;
        if (i + 3 > nl) {
            core_log(CORE_LOG_DEBUG, "sense: mdadm: mdstat line %d: too few lines for the md device", i + 1);
            return -EINVAL;
        }
        md_stat m;
        memset(&m, 0, sizeof m);
        int rc = md_parse_one(ln, nl, i, &m);
        if (rc < 0) {
            core_log(CORE_LOG_DEBUG, "sense: mdadm: mdstat line %d: cannot parse the md device", i + 1);
            return rc;
        }
        md_put(x, &m);
    }
    return 0;
}

/* ---- xfs ------------------------------------------------------------------------- */
/* Counters of <sys>/fs/xfs/DEV/stats/stats: line tag, field index, family
 * suffix, help (procfs' field order; "rw" is write then read). */
static const struct { const char *tag; int idx, want; const char *name, *help; } xfs_fields[] = {
    {"extent_alloc", 0, 4, "extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem."},
    {"extent_alloc", 1, 4, "extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem."},
    {"extent_alloc", 2, 4, "extent_allocation_extents_freed_total", "Number of extents freed for a filesystem."},
    {"extent_alloc", 3, 4, "extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem."},
    {"abt", 0, 4, "allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem."},
    {"abt", 1, 4, "allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem."},
    {"abt", 2, 4, "allocation_btree_records_inserted_total",
     "Number of allocation B-tree records inserted for a filesystem."},
    {"abt", 3, 4, "allocation_btree_records_deleted_total", "Number of allocation B-tree records deleted for a filesystem."},
    {"blk_map", 0, 7, "block_mapping_reads_total", "Number of block map for read operations for a filesystem."},
    {"blk_map", 1, 7, "block_mapping_writes_total", "Number of block map for write operations for a filesystem."},
    {"blk_map", 2, 7, "block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem."},
    {"blk_map", 3, 7, "block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem."},
    {"blk_map", 4, 7, "block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem."},
    {"blk_map", 5, 7, "block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem."},
    {"blk_map", 6, 7, "block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem."},
    {"bmbt", 0, 4, "block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem."},
    {"bmbt", 1, 4, "block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem."},
    {"bmbt", 2, 4, "block_map_btree_records_inserted_total", "Number of block map B-tree records inserted for a filesystem."},
    {"bmbt", 3, 4, "block_map_btree_records_deleted_total", "Number of block map B-tree records deleted for a filesystem."},
    {"dir", 0, 4, "directory_operation_lookup_total",
     "Number of file name directory lookups which miss the operating systems directory name lookup cache."},
    {"dir", 1, 4, "directory_operation_create_total", "Number of times a new directory entry was created for a filesystem."},
    {"dir", 2, 4, "directory_operation_remove_total",
     "Number of times an existing directory entry was created for a filesystem."},
    {"dir", 3, 4, "directory_operation_getdents_total",
     "Number of times the directory getdents operation was performed for a filesystem."},
    {"ig", 0, 7, "inode_operation_attempts_total", "Number of times the OS looked for an XFS inode in the inode cache."},
    {"ig", 1, 7, "inode_operation_found_total",
     "Number of times the OS looked for and found an XFS inode in the inode cache."},
    {"ig", 2, 7, "inode_operation_recycled_total",
     "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled."},
    {"ig", 3, 7, "inode_operation_missed_total",
     "Number of times the OS looked for an XFS inode in the cache, but did not find it."},
    {"ig", 4, 7, "inode_operation_duplicates_total",
     "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added "
     "by another process."},
    {"ig", 5, 7, "inode_operation_reclaims_total",
     "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose."},
    {"ig", 6, 7, "inode_operation_attribute_changes_total",
     "Number of times the OS explicitly changed the attributes of an XFS inode."},
    {"rw", 1, 2, "read_calls_total", "Number of read(2) system calls made to files in a filesystem."},
    {"rw", 0, 2, "write_calls_total", "Number of write(2) system calls made to files in a filesystem."},
    {"vnodes", 0, 7, "vnode_active_total", "Number of vnodes not on free lists for a filesystem."},
    {"vnodes", 1, 7, "vnode_allocate_total", "Number of times vn_alloc called for a filesystem."},
    {"vnodes", 2, 7, "vnode_get_total", "Number of times vn_get called for a filesystem."},
    {"vnodes", 3, 7, "vnode_hold_total", "Number of times vn_hold called for a filesystem."},
    {"vnodes", 4, 7, "vnode_release_total", "Number of times vn_rele called for a filesystem."},
    {"vnodes", 5, 7, "vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem."},
    {"vnodes", 6, 7, "vnode_remove_total", "Number of times vn_remove called for a filesystem."},
};
#define NX_XFS_N ((int)(sizeof xfs_fields / sizeof xfs_fields[0]))

/* Finds the line "tag v0 v1 ..." and reads its numbers into v (0 when the
 * line is absent, as procfs leaves them); -EINVAL when it has too few. */
static int xfs_line(const char *b, const char *e, const char *tag, int want, uint64_t *v)
{
    size_t tl = strlen(tag);
    for (int i = 0; i < 8; i++)
        v[i] = 0;
    for (const char *p = b; p < e; p = sn_eol(p, e)) {
        if ((size_t)(e - p) <= tl || memcmp(p, tag, tl) != 0 || p[tl] != ' ')
            continue;
        const char *q = p + tl, *le = sn_eol(p, e);
        int k = 0;
        for (bool ok = true; k < 8; k++) {
            v[k] = sn_u64(&q, le, &ok);
            if (!ok)
                break;
        }
        return k < want ? -EINVAL : 0;
    }
    return 0;
}

static int xfs_dev(nx_ctx *x, const char *dev)
{
    ssize_t n = nx_read(x, &x->rd, x->sys, "fs/xfs/%s/stats/stats", dev);
    if (n == -ENOENT || n == -ENOTDIR)
        return 0; /* the global stats directory, or not a filesystem */
    if (n < 0)
        return (int)n;
    const char *b = x->rd.p, *e = b + n;
    uint64_t v[8];
    const char *cur = NULL;
    for (int i = 0; i < NX_XFS_N; i++) {
        if (!cur || strcmp(cur, xfs_fields[i].tag)) {
            cur = xfs_fields[i].tag;
            if (xfs_line(b, e, cur, xfs_fields[i].want, v) < 0) {
                core_log(CORE_LOG_DEBUG, "sense: xfs: fs/xfs/%s/stats/stats: short \"%s\" line", dev, cur);
                return -EINVAL;
            }
        }
        char name[128];
        snprintf(name, sizeof name, "node_xfs_%s", xfs_fields[i].name);
        nx_sample(x, nx_family_dyn(x, name, NX_COUNTER, xfs_fields[i].help), (double)v[xfs_fields[i].idx], 1,
                  "device", dev);
    }
    return 0;
}

NX_COLLECTOR(xfs)
{
    char dir[CORE_PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/fs/xfs", x->sys);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno; /* no xfs: nothing to say */
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)))
        if (nx_is_dir(dir, de))
            rc = xfs_dev(x, de->d_name);
    closedir(d);
    return rc;
}

/* ---- btrfs ----------------------------------------------------------------------- */
static int btrfs_u64(nx_ctx *x, uint64_t *v, const char *uuid, const char *rel)
{
    return nx_read_u64(x, x->sys, v, "fs/btrfs/%s/%s", uuid, rel);
}

/* procfs' allocation ratio for a layout directory name. */
static double btrfs_ratio(const char *layout, int ndev)
{
    if (!strcmp(layout, "single") || !strcmp(layout, "raid0"))
        return 1;
    if (!strcmp(layout, "dup") || !strcmp(layout, "raid1") || !strcmp(layout, "raid10"))
        return 2;
    if (!strcmp(layout, "raid5"))
        return (double)ndev / ((double)ndev - 1);
    if (!strcmp(layout, "raid6"))
        return (double)ndev / ((double)ndev - 2);
    if (!strcmp(layout, "raid1c3"))
        return 3;
    if (!strcmp(layout, "raid1c4"))
        return 4;
    return 0;
}

static int btrfs_type(nx_ctx *x, const char *uuid, const char *type, int ndev)
{
    char dir[CORE_PATH_MAX + 160];
    snprintf(dir, sizeof dir, "%s/fs/btrfs/%s/allocation/%s", x->sys, uuid, type);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    uint64_t reserved;
    char rel[128];
    snprintf(rel, sizeof rel, "allocation/%s/bytes_reserved", type);
    int rc = btrfs_u64(x, &reserved, uuid, rel);
    if (rc == 0)
        nx_sample(x, nx_family(x, "node_btrfs_reserved_bytes", NX_GAUGE, "Amount of space reserved for a data type"),
                  (double)reserved, 2, "uuid", uuid, "block_group_type", type);
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (!nx_is_dir(dir, de))
            continue;
        uint64_t used, total;
        snprintf(rel, sizeof rel, "allocation/%s/%s/used_bytes", type, de->d_name);
        rc = btrfs_u64(x, &used, uuid, rel);
        snprintf(rel, sizeof rel, "allocation/%s/%s/total_bytes", type, de->d_name);
        if (rc == 0)
            rc = btrfs_u64(x, &total, uuid, rel);
        if (rc < 0)
            break;
        const char *kv[6] = {"uuid", uuid, "block_group_type", type, "mode", de->d_name};
        nx_sample_v(x, nx_family(x, "node_btrfs_used_bytes", NX_GAUGE, "Amount of used space by a layout/data type"),
                    (double)used, 3, kv);
        nx_sample_v(x, nx_family(x, "node_btrfs_size_bytes", NX_GAUGE,
                                 "Amount of space allocated for a layout/data type"), (double)total, 3, kv);
        nx_sample_v(x, nx_family(x, "node_btrfs_allocation_ratio", NX_GAUGE,
                                 "Data allocation ratio for a layout/data type"), btrfs_ratio(de->d_name, ndev), 3, kv);
    }
    closedir(d);
    return rc;
}

/* The per-device view node_exporter 1.5 takes with btrfs ioctls on a mount
 * of the filesystem (FS_INFO, DEV_INFO, GET_DEV_STATS): size, unused bytes
 * and error counters per device, labelled with the device's btrfs uuid.
 * Opens the mount point read-only; returns an open fd on a mount of the
 * filesystem whose fsid (hex, no dashes) is `hex`, else -1. */
static int btrfs_mount_fd(nx_ctx *x, const char *hex, struct btrfs_ioctl_fs_info_args *fi)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "1/mounts");
    if (n == -ENOENT)
        n = nx_read(x, &x->rd, x->proc, "mounts");
    if (n < 0)
        return -1;
    const char *p = x->rd.p, *e = p + n;
    for (; p < e; p = sn_eol(p, e)) {
        char dev[256], mnt[CORE_PATH_MAX], type[32];
        const char *q = p;
        sn_tok(&q, e, dev, sizeof dev);
        q = sn_skip_ws(q, e);
        sn_tok(&q, e, mnt, sizeof mnt);
        q = sn_skip_ws(q, e);
        sn_tok(&q, e, type, sizeof type);
        if (strcmp(type, "btrfs") != 0)
            continue;
        sn_unescape_mount(mnt); /* "\040" for a space, as the kernel writes it */
        int fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            continue;
        memset(fi, 0, sizeof *fi);
        if (ioctl(fd, BTRFS_IOC_FS_INFO, fi) == 0) {
            char h[2 * BTRFS_FSID_SIZE + 1];
            for (int i = 0; i < BTRFS_FSID_SIZE; i++)
                snprintf(h + 2 * i, 3, "%02x", fi->fsid[i]);
            if (!strcmp(h, hex))
                return fd;
        }
        close(fd);
    }
    return -1;
}

static void uuid_str(const uint8_t *u, char *out, size_t n)
{
    bool zero = true;
    for (int i = 0; i < BTRFS_UUID_SIZE; i++)
        zero &= u[i] == 0;
    if (zero) {
        core_sncpy(out, n, "<zero>");
        return;
    }
    snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3],
             u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Emits the ioctl families; false when no mount could be queried (the
 * caller then reports the sysfs device sizes, as node_exporter does). */
static bool btrfs_ioctl_devices(nx_ctx *x, const char *uuid)
{
    char hex[64];
    size_t k = 0;
    for (const char *c = uuid; *c && k + 1 < sizeof hex; c++)
        if (*c != '-')
            hex[k++] = *c;
    hex[k] = 0;
    struct btrfs_ioctl_fs_info_args fi;
    int fd = btrfs_mount_fd(x, hex, &fi);
    if (fd < 0)
        return false;
    static const char *const types[5] = {"write", "read", "flush", "corruption", "generation"};
    uint64_t found = 0;
    for (uint64_t id = 0; id <= fi.max_id && found < fi.num_devices; id++) {
        struct btrfs_ioctl_dev_info_args di;
        struct btrfs_ioctl_get_dev_stats ds;
        memset(&di, 0, sizeof di);
        di.devid = id;
        if (ioctl(fd, BTRFS_IOC_DEV_INFO, &di) < 0)
            continue; /* ENODEV: ids have gaps */
        memset(&ds, 0, sizeof ds);
        ds.devid = id;
        ds.nr_items = BTRFS_DEV_STAT_VALUES_MAX;
        if (ioctl(fd, BTRFS_IOC_GET_DEV_STATS, &ds) < 0)
            break;
        found++;
        char duuid[48];
        uuid_str(di.uuid, duuid, sizeof duuid);
        const char *path = (const char *)di.path, *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        const char *kv[8] = {"uuid", uuid, "device", base, "btrfs_dev_uuid", duuid, NULL, NULL};
        nx_sample_v(x, nx_family(x, "node_btrfs_device_size_bytes", NX_GAUGE,
                                 "Size of a device that is part of the filesystem."), (double)di.total_bytes, 3, kv);
        nx_sample_v(x, nx_family(x, "node_btrfs_device_unused_bytes", NX_GAUGE,
                                 "Unused bytes unused on a device that is part of the filesystem."),
                    (double)(di.total_bytes - di.bytes_used), 3, kv);
        int fe = nx_family(x, "node_btrfs_device_errors_total", NX_COUNTER, "Errors reported for the device");
        for (int t = 0; t < 5; t++) {
            const char *ekv[8] = {"uuid", uuid, "type", types[t], "device", base, "btrfs_dev_uuid", duuid};
            nx_sample_v(x, fe, (double)ds.values[t], 4, ekv);
        }
    }
    close(fd);
    return true;
}

static int btrfs_fs(nx_ctx *x, const char *uuid)
{
    char label[256] = "", dir[CORE_PATH_MAX + 160];
    int rc = nx_read_str(x, x->sys, label, sizeof label, "fs/btrfs/%s/label", uuid);
    uint64_t rsv = 0;
    if (rc == 0)
        rc = btrfs_u64(x, &rsv, uuid, "allocation/global_rsv_size");
    if (rc < 0)
        return rc;
    nx_sample(x, nx_family(x, "node_btrfs_info", NX_GAUGE, "Filesystem information"), 1, 2, "uuid", uuid, "label",
              core_trim(label));
    nx_sample(x, nx_family(x, "node_btrfs_global_rsv_size_bytes", NX_GAUGE, "Size of global reserve."), (double)rsv,
              1, "uuid", uuid);
    /* devices first: the raid5/6 ratios need their count */
    bool by_ioctl = btrfs_ioctl_devices(x, uuid);
    snprintf(dir, sizeof dir, "%s/fs/btrfs/%s/devices", x->sys, uuid);
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    int ndev = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        uint64_t sectors;
        char rel[320];
        snprintf(rel, sizeof rel, "devices/%s/size", de->d_name);
        rc = btrfs_u64(x, &sectors, uuid, rel);
        if (rc < 0)
            break;
        ndev++;
        if (!by_ioctl) /* else reported per device by btrfs_ioctl_devices */
            nx_sample(x, nx_family(x, "node_btrfs_device_size_bytes", NX_GAUGE,
                                   "Size of a device that is part of the filesystem."),
                      (double)sectors * 512, 2, "uuid", uuid, "device", de->d_name);
    }
    closedir(d);
    static const char *const types[3] = {"data", "metadata", "system"};
    for (int i = 0; i < 3 && rc == 0; i++)
        rc = btrfs_type(x, uuid, types[i], ndev);
    return rc;
}

NX_COLLECTOR(btrfs)
{
    return each_uuid(x, "btrfs", btrfs_fs);
}

/* ---- bcache ---------------------------------------------------------------------- */
/* bcache's human-readable numbers ("2.5M", bch_hprint: powers of 1024) back
 * to a count as procfs reads them: the digit after the point is taken as
 * tenths of 1000/1024 (bch_hprint prints t * 10 / 1024 of the remainder t),
 * so "1.5M" is 1560576, truncated; a leading '-' kept. */
static int dehumanize(const char *s, double *out)
{
    bool neg = *s == '-';
    if (neg)
        s++;
    char *end;
    double ip = (double)strtoull(s, &end, 10);
    if (end == s)
        return -EINVAL;
    double frac = 0;
    if (*end == '.') {
        const char *f = end;
        frac = strtod(f, &end); /* ".5" */
        if (end == f + 1)
            return -EINVAL;
        frac *= 1000.0 / 1024.0;
    }
    static const char units[] = "kMGTPEZY";
    double mul = 1;
    if (*end && *end != '\n' && *end != '/') {
        const char *u = strchr(units, *end);
        if (!u)
            return -EINVAL;
        for (long i = 0; i <= u - units; i++)
            mul *= 1024;
    }
    double v = (double)(uint64_t)((ip + frac) * mul);
    *out = neg ? -v : v;
    return 0;
}

static int bc_read(nx_ctx *x, double *v, bool human, const char *rel)
{
    char s[64];
    int rc = nx_read_str(x, x->sys, s, sizeof s, "fs/bcache/%s", rel);
    if (rc < 0)
        return rc;
    if (human)
        return dehumanize(core_trim(s), v);
    char *end;
    *v = (double)strtoull(s, &end, 10);
    return end == s ? -EINVAL : 0;
}

typedef struct bc_metric {
    const char *file;   /* under the uuid, bdevN or cacheN directory */
    bool human;
    double scale;
    const char *name, *help;
    int type;
} bc_metric;

static const bc_metric bc_set[] = {
    {"average_key_size", true, 1, "average_key_size_sectors", "Average data per key in the btree (sectors).", NX_GAUGE},
    {"btree_cache_size", true, 1, "btree_cache_size_bytes", "Amount of memory currently used by the btree cache.",
     NX_GAUGE},
    {"cache_available_percent", false, 1, "cache_available_percent",
     "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", NX_GAUGE},
    {"congested", false, 1, "congested", "Congestion.", NX_GAUGE},
    {"root_usage_percent", false, 1, "root_usage_percent",
     "Percentage of the root btree node in use (tree depth increases if too high).", NX_GAUGE},
    {"tree_depth", false, 1, "tree_depth", "Depth of the btree.", NX_GAUGE},
    {"internal/active_journal_entries", false, 1, "active_journal_entries",
     "Number of journal entries that are newer than the index.", NX_GAUGE},
    {"internal/btree_nodes", false, 1, "btree_nodes", "Total nodes in the btree.", NX_GAUGE},
    /* node_exporter 1.5 takes these microseconds for nanoseconds (* 1e-9): kept, so its dashboards agree */
    {"internal/btree_read_average_duration_us", false, 1e-9, "btree_read_average_duration_seconds",
     "Average btree read duration.", NX_GAUGE},
    {"internal/cache_read_races", false, 1, "cache_read_races_total",
     "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. "
     "where the pointer was stale after the read completed.", NX_COUNTER},
};
static const bc_metric bc_bdev[] = {
    {"dirty_data", true, 1, "dirty_data_bytes", "Amount of dirty data for this backing device in the cache.", NX_GAUGE},
    {"stats_total/bypassed", true, 1, "bypassed_bytes_total",
     "Amount of IO (both reads and writes) that has bypassed the cache.", NX_COUNTER},
    {"stats_total/cache_hits", false, 1, "cache_hits_total", "Hits counted per individual IO as bcache sees them.",
     NX_COUNTER},
    {"stats_total/cache_misses", false, 1, "cache_misses_total", "Misses counted per individual IO as bcache sees them.",
     NX_COUNTER},
    {"stats_total/cache_bypass_hits", false, 1, "cache_bypass_hits_total", "Hits for IO intended to skip the cache.",
     NX_COUNTER},
    {"stats_total/cache_bypass_misses", false, 1, "cache_bypass_misses_total",
     "Misses for IO intended to skip the cache.", NX_COUNTER},
    {"stats_total/cache_miss_collisions", false, 1, "cache_miss_collisions_total",
     "Instances where data insertion from cache miss raced with write (data already present).", NX_COUNTER},
    {"stats_total/cache_readaheads", false, 1, "cache_readaheads_total", "Count of times readahead occurred.",
     NX_COUNTER},
};
static const bc_metric bc_cache[] = {
    {"io_errors", false, 1, "io_errors", "Number of errors that have occurred, decayed by io_error_halflife.", NX_GAUGE},
    {"metadata_written", true, 1, "metadata_written_bytes_total",
     "Sum of all non data writes (btree writes and all other metadata).", NX_COUNTER},
    {"written", true, 1, "written_bytes_total", "Sum of all data that has been written to the cache.", NX_COUNTER},
};
/* writeback_rate_debug lines node_exporter reports */
static const struct { const char *key, *name, *help; } bc_wb[] = {
    {"target", "dirty_target_bytes", "Current dirty data target threshold for this backing device in bytes."},
    {"rate", "writeback_rate", "Current writeback rate for this backing device in bytes."},
    {"proportional", "writeback_rate_proportional_term", "Current result of proportional controller, part of writeback rate"},
    {"integral", "writeback_rate_integral_term", "Current result of integral controller, part of writeback rate"},
    {"change", "writeback_change", "Last writeback rate change step for this backing device."},
};

static void bc_put(nx_ctx *x, const bc_metric *m, double v, int nl, const char *const *kv)
{
    char name[128];
    snprintf(name, sizeof name, "node_bcache_%s", m->name);
    nx_sample_v(x, nx_family_dyn(x, name, m->type, m->help), v * m->scale, nl, kv);
}

static int bc_metrics(nx_ctx *x, const char *uuid, const char *sub, const bc_metric *ms, int n, const char *label)
{
    const char *kv[4] = {"uuid", uuid, label, sub};
    for (int i = 0; i < n; i++) {
        double v;
        char rel[CORE_PATH_MAX];
        if (sub)
            snprintf(rel, sizeof rel, "%s/%s/%s", uuid, sub, ms[i].file);
        else
            snprintf(rel, sizeof rel, "%s/%s", uuid, ms[i].file);
        int rc = bc_read(x, &v, ms[i].human, rel);
        if (rc < 0)
            return rc;
        bc_put(x, &ms[i], v, sub ? 2 : 1, kv);
    }
    return 0;
}

/* writeback_rate_debug: "rate:\t\t1.1M/sec\ndirty:\t\t..." */
static int bc_writeback(nx_ctx *x, const char *uuid, const char *bdev)
{
    ssize_t n = nx_read(x, &x->rd, x->sys, "fs/bcache/%s/%s/writeback_rate_debug", uuid, bdev);
    if (n < 0)
        return (int)n;
    const char *kv[4] = {"uuid", uuid, "backing_device", bdev};
    const char *b = x->rd.p, *e = b + n;
    for (size_t i = 0; i < sizeof bc_wb / sizeof bc_wb[0]; i++) {
        double v = 0;
        size_t kl = strlen(bc_wb[i].key);
        for (const char *p = b; p < e; p = sn_eol(p, e)) {
            if ((size_t)(e - p) <= kl || memcmp(p, bc_wb[i].key, kl) != 0 || p[kl] != ':')
                continue;
            char tok[64];
            const char *q = sn_skip_ws(p + kl + 1, e);
            sn_tok(&q, e, tok, sizeof tok);
            if (dehumanize(tok, &v) < 0)
                return -EINVAL;
            break;
        }
        char name[128];
        snprintf(name, sizeof name, "node_bcache_%s", bc_wb[i].name);
        nx_sample_v(x, nx_family_dyn(x, name, NX_GAUGE, bc_wb[i].help), v, 2, kv);
    }
    return 0;
}

static int bc_set_stats(nx_ctx *x, const char *uuid)
{
    int rc = bc_metrics(x, uuid, NULL, bc_set, (int)(sizeof bc_set / sizeof bc_set[0]), NULL);
    char dir[CORE_PATH_MAX + 160];
    snprintf(dir, sizeof dir, "%s/fs/bcache/%s", x->sys, uuid);
    DIR *d = rc == 0 ? opendir(dir) : NULL;
    if (rc == 0 && !d)
        rc = -errno;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        const char *nm = de->d_name;
        if (!strncmp(nm, "bdev", 4) && nm[4] >= '0' && nm[4] <= '9') {
            rc = bc_metrics(x, uuid, nm, bc_bdev, (int)(sizeof bc_bdev / sizeof bc_bdev[0]), "backing_device");
            if (rc == 0)
                rc = bc_writeback(x, uuid, nm);
        } else if (!strncmp(nm, "cache", 5) && nm[5] >= '0' && nm[5] <= '9') {
            rc = bc_metrics(x, uuid, nm, bc_cache, (int)(sizeof bc_cache / sizeof bc_cache[0]), "cache_device");
        }
    }
    if (d)
        closedir(d);
    return rc;
}

NX_COLLECTOR(bcache)
{
    return each_uuid(x, "bcache", bc_set_stats);
}
