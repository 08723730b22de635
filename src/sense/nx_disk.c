/* nx_disk.c: node_exporter's diskstats and filesystem collectors.
 *
 * diskstats reads <proc>/diskstats (sectors -> bytes, ms -> seconds, only the
 * fields the kernel has), skips node_exporter 1.5's default device-exclude
 * ^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$, and labels
 * node_disk_info (and the filesystem / device-mapper / ATA families) from
 * udev's database <udev>/b<major>:<minor> when it is readable.
 *
 * filesystem reads <proc>/1/mounts (else <proc>/mounts), skips node_exporter's
 * default mount-points-exclude and fs-types-exclude, and statvfs()es each
 * mount. Remote and FUSE filesystems are stat'ed in a helper thread with
 * node_exporter's 5 s mount timeout: a mount that does not answer is
 * reported with node_filesystem_device_error 1 and skipped on later scrapes
 * until its stat returns, so a dead NFS server never hangs a scrape. */
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <time.h>

#include "sense/nx_int.h"

#define NX_SECTOR 512.0
#define NX_MS 0.001

/* ---- default filters (node_exporter 1.5) ---------------------------------------- */
static regex_t re_disk, re_mnt, re_fstype;
static bool re_ok;
static pthread_once_t re_once = PTHREAD_ONCE_INIT;

static void re_init(void)
{
    re_ok = regcomp(&re_disk, "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme[0-9]+n[0-9]+p)[0-9]+$",
                    REG_EXTENDED | REG_NOSUB) == 0 &&
            regcomp(&re_mnt, "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|"
                             "var/lib/containers/storage/.+)($|/)",
                    REG_EXTENDED | REG_NOSUB) == 0 &&
            regcomp(&re_fstype, "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|"
                                "fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|"
                                "rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$",
                    REG_EXTENDED | REG_NOSUB) == 0;
}

static bool rx_match(const regex_t *re, const char *s)
{
    return regexec(re, s, 0, NULL, 0) == 0;
}

static bool nx_disk_excluded(const char *dev)
{
    pthread_once(&re_once, re_init);
    return re_ok && rx_match(&re_disk, dev);
}

static bool nx_mount_excluded(const char *mountpoint, const char *fstype)
{
    pthread_once(&re_once, re_init);
    return re_ok && (rx_match(&re_mnt, mountpoint) || rx_match(&re_fstype, fstype));
}

/* ---- udev properties ------------------------------------------------------------- */
enum {
    UD_ID_PATH, UD_ID_WWN, UD_ID_MODEL, UD_ID_SERIAL_SHORT, UD_ID_REVISION,
    UD_ID_FS_TYPE, UD_ID_FS_USAGE, UD_ID_FS_UUID, UD_ID_FS_VERSION,
    UD_DM_NAME, UD_DM_UUID, UD_DM_VG_NAME, UD_DM_LV_NAME, UD_DM_LV_LAYER,
    UD_ID_ATA, UD_ATA_WRITE_CACHE, UD_ATA_WRITE_CACHE_ENABLED, UD_ATA_ROTATION_RATE_RPM, UD_N
};
static const char *const ud_keys[UD_N] = {
    "ID_PATH", "ID_WWN", "ID_MODEL", "ID_SERIAL_SHORT", "ID_REVISION",
    "ID_FS_TYPE", "ID_FS_USAGE", "ID_FS_UUID", "ID_FS_VERSION",
    "DM_NAME", "DM_UUID", "DM_VG_NAME", "DM_LV_NAME", "DM_LV_LAYER",
    "ID_ATA", "ID_ATA_WRITE_CACHE", "ID_ATA_WRITE_CACHE_ENABLED", "ID_ATA_ROTATION_RATE_RPM",
};

typedef struct udev_info {
    char v[UD_N][160];
    bool has[UD_N];
} udev_info;

/* Reads the "E:KEY=VALUE" properties of <udev>/b<maj>:<min> we use. */
static void udev_read(nx_ctx *x, unsigned maj, unsigned min, udev_info *u)
{
    memset(u->has, 0, sizeof u->has);
    for (int i = 0; i < UD_N; i++)
        u->v[i][0] = 0;
    if (!x->udev || !x->udev[0])
        return;
    ssize_t n = nx_read(x, &x->rd2, x->udev, "b%u:%u", maj, min);
    if (n < 0)
        return;
    const char *p = x->rd2.p, *e = p + n;
    for (; p < e; p = sn_eol(p, e)) {
        if (e - p < 3 || p[0] != 'E' || p[1] != ':')
            continue;
        const char *k = p + 2, *le = memchr(k, '\n', (size_t)(e - k));
        if (!le)
            le = e;
        const char *eq = memchr(k, '=', (size_t)(le - k));
        if (!eq)
            continue;
        for (int i = 0; i < UD_N; i++) {
            size_t kl = strlen(ud_keys[i]);
            if ((size_t)(eq - k) != kl || memcmp(k, ud_keys[i], kl) != 0)
                continue;
            size_t vl = (size_t)(le - eq - 1);
            if (vl >= sizeof u->v[i])
                vl = sizeof u->v[i] - 1;
            memcpy(u->v[i], eq + 1, vl);
            u->v[i][vl] = 0;
            u->has[i] = true;
            break;
        }
    }
}

/* ---- diskstats ------------------------------------------------------------------- */
typedef struct disk_fam {
    const char *name;
    int type;
    double scale;
    const char *help;
} disk_fam;

/* In /proc/diskstats order after major, minor, name (Documentation/iostats). */
static const disk_fam disk_fams[] = {
    {"node_disk_reads_completed_total", NX_COUNTER, 1, "The total number of reads completed successfully."},
    {"node_disk_reads_merged_total", NX_COUNTER, 1, "The total number of reads merged."},
    {"node_disk_read_bytes_total", NX_COUNTER, NX_SECTOR, "The total number of bytes read successfully."},
    {"node_disk_read_time_seconds_total", NX_COUNTER, NX_MS, "The total number of seconds spent by all reads."},
    {"node_disk_writes_completed_total", NX_COUNTER, 1, "The total number of writes completed successfully."},
    {"node_disk_writes_merged_total", NX_COUNTER, 1, "The number of writes merged."},
    {"node_disk_written_bytes_total", NX_COUNTER, NX_SECTOR, "The total number of bytes written successfully."},
    {"node_disk_write_time_seconds_total", NX_COUNTER, NX_MS,
     "This is the total number of seconds spent by all writes."},
    {"node_disk_io_now", NX_GAUGE, 1, "The number of I/Os currently in progress."},
    {"node_disk_io_time_seconds_total", NX_COUNTER, NX_MS, "Total seconds spent doing I/Os."},
    {"node_disk_io_time_weighted_seconds_total", NX_COUNTER, NX_MS, "The weighted # of seconds spent doing I/Os."},
    {"node_disk_discards_completed_total", NX_COUNTER, 1, "The total number of discards completed successfully."},
    {"node_disk_discards_merged_total", NX_COUNTER, 1, "The total number of discards merged."},
    {"node_disk_discarded_sectors_total", NX_COUNTER, 1, "The total number of sectors discarded successfully."},
    {"node_disk_discard_time_seconds_total", NX_COUNTER, NX_MS,
     "This is the total number of seconds spent by all discards."},
    {"node_disk_flush_requests_total", NX_COUNTER, 1, "The total number of flush requests completed successfully"},
    {"node_disk_flush_requests_time_seconds_total", NX_COUNTER, NX_MS,
     "This is the total number of seconds spent by all flush requests."},
};
#define NX_DISK_NFIELDS ((int)(sizeof disk_fams / sizeof disk_fams[0]))

static void disk_udev_families(nx_ctx *x, const char *dev, const udev_info *u)
{
    if (u->v[UD_ID_FS_TYPE][0])
        nx_sample(x, nx_family(x, "node_disk_filesystem_info", NX_GAUGE, "Info about disk filesystem."), 1, 5,
                  "device", dev, "type", u->v[UD_ID_FS_TYPE], "usage", u->v[UD_ID_FS_USAGE], "uuid",
                  u->v[UD_ID_FS_UUID], "version", u->v[UD_ID_FS_VERSION]);
    if (u->v[UD_DM_NAME][0])
        nx_sample(x, nx_family(x, "node_disk_device_mapper_info", NX_GAUGE, "Info about disk device mapper."), 1, 6,
                  "device", dev, "name", u->v[UD_DM_NAME], "uuid", u->v[UD_DM_UUID], "vg_name",
                  u->v[UD_DM_VG_NAME], "lv_name", u->v[UD_DM_LV_NAME], "lv_layer", u->v[UD_DM_LV_LAYER]);
    if (!u->v[UD_ID_ATA][0])
        return;
    static const struct { int key; const char *name, *help; } ata[] = {
        {UD_ATA_WRITE_CACHE, "node_disk_ata_write_cache", "ATA disk has a write cache."},
        {UD_ATA_WRITE_CACHE_ENABLED, "node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled."},
        {UD_ATA_ROTATION_RATE_RPM, "node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs)."},
    };
    for (size_t i = 0; i < sizeof ata / sizeof ata[0]; i++) {
        if (!u->has[ata[i].key])
            continue;
        char *end;
        double v = strtod(u->v[ata[i].key], &end);
        if (end == u->v[ata[i].key] || *end)
            continue;
        nx_sample(x, nx_family(x, ata[i].name, NX_GAUGE, ata[i].help), v, 1, "device", dev);
    }
}

NX_COLLECTOR(diskstats)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "diskstats");
    if (n < 0)
        return (int)n;
    int fam[NX_DISK_NFIELDS];
    for (int i = 0; i < NX_DISK_NFIELDS; i++)
        fam[i] = nx_family(x, disk_fams[i].name, disk_fams[i].type, disk_fams[i].help);
    int finfo = nx_family(x, "node_disk_info", NX_GAUGE, "Info of /sys/block/<block_device>.");
    const char *p = x->rd.p, *e = p + n;
    udev_info u;
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = p;
        bool ok1, ok2;
        uint64_t maj = sn_u64(&q, e, &ok1), min = sn_u64(&q, e, &ok2);
        char dev[128];
        q = sn_skip_ws(q, e);
        sn_tok(&q, e, dev, sizeof dev);
        if (!ok1 || !ok2 || !dev[0])
            continue;
        uint64_t v[NX_DISK_NFIELDS];
        int k = 0;
        for (; k < NX_DISK_NFIELDS; k++) {
            bool ok;
            v[k] = sn_u64(&q, e, &ok);
            if (!ok)
                break;
        }
        if (k < 11 || nx_disk_excluded(dev))
            continue;
        udev_read(x, (unsigned)maj, (unsigned)min, &u);
        char smaj[24], smin[24];
        snprintf(smaj, sizeof smaj, "%u", (unsigned)maj);
        snprintf(smin, sizeof smin, "%u", (unsigned)min);
        const char *serial = u.v[UD_ID_SERIAL_SHORT]; /* 1.5; SCSI_IDENT_SERIAL first only since 1.6 */
        nx_sample(x, finfo, 1, 8, "device", dev, "major", smaj, "minor", smin, "path", u.v[UD_ID_PATH], "wwn",
                  u.v[UD_ID_WWN], "model", u.v[UD_ID_MODEL], "serial", serial, "revision", u.v[UD_ID_REVISION]);
        for (int i = 0; i < k; i++)
            nx_sample(x, fam[i], (double)v[i] * disk_fams[i].scale, 1, "device", dev);
        disk_udev_families(x, dev, &u);
    }
    return 0;
}

/* ---- filesystem: statvfs that cannot hang a scrape ------------------------------- */
#define NX_MOUNT_TIMEOUT_S 5
/* Helper threads alive at once (each holds a slot below until its statvfs
 * returns): past this, a remote mount is reported as failed without a stat,
 * so a host with many dead mounts cannot pile up a thread per scrape. */
#define NX_MAX_STUCK 64

typedef struct stat_job {
    char path[CORE_PATH_MAX];
    struct statvfs st;
    int rc, slot;
    bool done, abandoned;
} stat_job;

static pthread_mutex_t stuck_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stuck_cond = PTHREAD_COND_INITIALIZER;
/* One slot per live helper thread; hung: its statvfs outlived the timeout,
 * and the mount point is skipped until it returns. */
static struct {
    bool used, hung;
    char path[CORE_PATH_MAX];
} stuck[NX_MAX_STUCK];
static bool stuck_full_logged;

static void *stat_worker(void *arg)
{
    stat_job *j = arg;
    int rc = statvfs(j->path, &j->st) == 0 ? 0 : -errno;
    pthread_mutex_lock(&stuck_lock);
    j->rc = rc;
    j->done = true;
    bool abandoned = j->abandoned;
    if (abandoned) {
        stuck[j->slot].used = stuck[j->slot].hung = false;
        stuck_full_logged = false;
        core_log(CORE_LOG_INFO, "sense: filesystem: %s answers again", j->path);
    }
    pthread_cond_broadcast(&stuck_cond);
    pthread_mutex_unlock(&stuck_lock);
    if (abandoned)
        free(j);
    return NULL;
}

/* Types whose statfs can block on a server (node_exporter's stuck mounts). */
static bool fs_remote(const char *t)
{
    static const char *const pre[] = {"nfs", "cifs", "smb", "ceph", "glusterfs", "fuse", "9p", "afs",
                                      "lustre", "gpfs", "davfs", "ncpfs", "coda", "sshfs", "ocfs2", "gfs2"};
    for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
        if (!strncmp(t, pre[i], strlen(pre[i])))
            return true;
    return false;
}

/* Takes a free helper slot for path (under stuck_lock); -ETIMEDOUT when path
 * is hung or every slot is taken. */
static int stuck_claim(const char *path)
{
    int free_slot = -1;
    for (int i = 0; i < NX_MAX_STUCK; i++) {
        if (stuck[i].hung && !strcmp(stuck[i].path, path))
            return -ETIMEDOUT;
        if (!stuck[i].used && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) {
        if (!stuck_full_logged)
            core_log(CORE_LOG_WARN, "sense: filesystem: %d statfs calls still hung; "
                     "reporting node_filesystem_device_error 1 for %s and other remote mounts until one returns",
                     NX_MAX_STUCK, path);
        stuck_full_logged = true;
        return -ETIMEDOUT;
    }
    stuck[free_slot].used = true;
    core_sncpy(stuck[free_slot].path, sizeof stuck[free_slot].path, path);
    return free_slot;
}

/* statvfs with the mount timeout; 0, -errno, or -ETIMEDOUT (the mount is then
 * marked stuck and skipped until its stat returns). */
static int nx_statvfs(const char *path, const char *fstype, struct statvfs *st, int timeout_ms)
{
    if (!fs_remote(fstype))
        return statvfs(path, st) == 0 ? 0 : -errno;
    stat_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    core_sncpy(j->path, sizeof j->path, path);
    pthread_mutex_lock(&stuck_lock);
    j->slot = stuck_claim(path);
    pthread_mutex_unlock(&stuck_lock);
    if (j->slot < 0) {
        free(j);
        return -ETIMEDOUT;
    }
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int prc = pthread_create(&t, &a, stat_worker, j);
    pthread_attr_destroy(&a);
    if (prc != 0) {
        pthread_mutex_lock(&stuck_lock);
        stuck[j->slot].used = false;
        pthread_mutex_unlock(&stuck_lock);
        free(j);
        return -prc;
    }
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&stuck_lock);
    while (!j->done)
        if (pthread_cond_timedwait(&stuck_cond, &stuck_lock, &dl) == ETIMEDOUT)
            break;
    int rc;
    if (j->done) {
        rc = j->rc;
        *st = j->st;
        stuck[j->slot].used = false;
        free(j);
    } else {
        j->abandoned = true; /* the worker frees it and its slot */
        stuck[j->slot].hung = true;
        core_log(CORE_LOG_WARN, "sense: filesystem: statfs(%s) did not return within %d ms; "
                 "reporting node_filesystem_device_error 1 until it does", path, timeout_ms);
        rc = -ETIMEDOUT;
    }
    pthread_mutex_unlock(&stuck_lock);
    return rc;
}

/* ---- filesystem ------------------------------------------------------------------ */
typedef struct mount_ent {
    char dev[512], mnt[CORE_PATH_MAX], type[64];
    bool ro;
} mount_ent;

/* Parses one /proc/mounts line; false when it has fewer than 4 fields. */
static bool mount_parse(const char *p, const char *e, mount_ent *m)
{
    char opts[1024];
    sn_tok(&p, e, m->dev, sizeof m->dev);
    p = sn_skip_ws(p, e);
    sn_tok(&p, e, m->mnt, sizeof m->mnt);
    p = sn_skip_ws(p, e);
    sn_tok(&p, e, m->type, sizeof m->type);
    p = sn_skip_ws(p, e);
    sn_tok(&p, e, opts, sizeof opts);
    if (!m->dev[0] || !m->mnt[0] || !m->type[0] || !opts[0])
        return false;
    /* node_exporter decodes \040 and \011 in the mount point only (fstab(5)) */
    char *w = m->mnt;
    for (const char *r = m->mnt; *r;) {
        if (r[0] == '\\' && r[1] == '0' && r[2] == '4' && r[3] == '0') {
            *w++ = ' ';
            r += 4;
        } else if (r[0] == '\\' && r[1] == '0' && r[2] == '1' && r[3] == '1') {
            *w++ = '\t';
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = 0;
    m->ro = false;
    for (const char *o = opts; *o;) {
        size_t l = strcspn(o, ",");
        if (l == 2 && o[0] == 'r' && o[1] == 'o')
            m->ro = true;
        o += l + (o[l] == ',');
    }
    return true;
}

/* Mounts already reported this scrape, by a hash of their labels: an open
 * addressing set in the ctx's second read buffer (kept between scrapes, so
 * the steady state allocates nothing), sized to twice the table's lines. */
typedef struct mount_set {
    uint64_t *h;
    size_t slots; /* 0: no memory, every mount is reported */
} mount_set;

static void mount_set_init(nx_ctx *x, mount_set *set, const char *b, const char *e)
{
    size_t lines = 1;
    set->h = NULL;
    for (const char *p = b; p < e; p = sn_eol(p, e))
        lines++;
    set->slots = 64;
    while (set->slots < 2 * lines)
        set->slots *= 2;
    if (sn_buf_reserve(&x->rd2, set->slots * sizeof(uint64_t)) < 0) {
        set->slots = 0;
        return;
    }
    set->h = (uint64_t *)(void *)x->rd2.p;
    memset(set->h, 0, set->slots * sizeof(uint64_t));
}

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL; /* field separator */
}

/* Adds m's labels; false when they were there already. */
static bool mount_set_add(mount_set *set, const mount_ent *m)
{
    if (!set->slots)
        return true;
    uint64_t h = fnv(fnv(fnv(14695981039346656037ULL, m->dev), m->mnt), m->type);
    if (h == 0)
        h = 1; /* 0 marks a free slot */
    for (size_t i = h & (set->slots - 1);; i = (i + 1) & (set->slots - 1)) {
        if (set->h[i] == h)
            return false;
        if (set->h[i] == 0) {
            set->h[i] = h;
            return true;
        }
    }
}

NX_COLLECTOR(filesystem)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "1/mounts");
    if (n == -ENOENT)
        n = nx_read(x, &x->rd, x->proc, "mounts");
    if (n < 0)
        return (int)n;
    int ferr = nx_family(x, "node_filesystem_device_error", NX_GAUGE,
                         "Whether an error occurred while getting statistics for the given device.");
    int fro = nx_family(x, "node_filesystem_readonly", NX_GAUGE, "Filesystem read-only status.");
    int fsize = nx_family(x, "node_filesystem_size_bytes", NX_GAUGE, "Filesystem size in bytes.");
    int ffree = nx_family(x, "node_filesystem_free_bytes", NX_GAUGE, "Filesystem free space in bytes.");
    int favail = nx_family(x, "node_filesystem_avail_bytes", NX_GAUGE,
                           "Filesystem space available to non-root users in bytes.");
    int ffiles = nx_family(x, "node_filesystem_files", NX_GAUGE, "Filesystem total file nodes.");
    int fffree = nx_family(x, "node_filesystem_files_free", NX_GAUGE, "Filesystem total free file nodes.");
    const char *b = x->rd.p, *e = b + n;
    mount_ent m;
    mount_set seen;
    mount_set_init(x, &seen, b, e);
    for (const char *p = b; p < e; p = sn_eol(p, e)) {
        if (!mount_parse(p, e, &m) || nx_mount_excluded(m.mnt, m.type) || !mount_set_add(&seen, &m))
            continue;
        struct statvfs st;
        int rc = nx_statvfs(m.mnt, m.type, &st, NX_MOUNT_TIMEOUT_S * 1000);
        const char *kv[6] = {"device", m.dev, "fstype", m.type, "mountpoint", m.mnt};
        nx_sample_v(x, ferr, rc < 0, 3, kv);
        if (rc < 0)
            continue; /* 1.5 reports readonly only for mounts it could stat */
        nx_sample_v(x, fro, m.ro, 3, kv);
        double bs = (double)st.f_bsize; /* node_exporter multiplies by statfs' f_bsize */
        nx_sample_v(x, fsize, (double)st.f_blocks * bs, 3, kv);
        nx_sample_v(x, ffree, (double)st.f_bfree * bs, 3, kv);
        nx_sample_v(x, favail, (double)st.f_bavail * bs, 3, kv);
        nx_sample_v(x, ffiles, (double)st.f_files, 3, kv);
        nx_sample_v(x, fffree, (double)st.f_ffree, 3, kv);
    }
    return 0;
}
