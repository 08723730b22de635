/* fs.c: the `filesystem` group: space and inodes of every mounted real
 * filesystem, from <proc>/self/mounts (or <proc>/mounts) and statvfs().
 *
 * Which mounts are reported:
 *  - pseudo filesystems are skipped (proc, sysfs, cgroup*, devpts, devtmpfs,
 *    mqueue, debugfs, tracefs, securityfs, pstore, bpf, fusectl, configfs,
 *    autofs, binfmt_misc, hugetlbfs, nsfs, rpc_pipefs, efivarfs, selinuxfs,
 *    ramfs) and so are read-only images (squashfs) and overlay (container
 *    root filesystems: each one is a view of a filesystem already reported);
 *  - network and FUSE filesystems (nfs*, cifs, smb*, ceph, glusterfs, 9p,
 *    fuse.*) are skipped because statvfs() on a dead server blocks the loop
 *    thread; fuseblk (local ntfs/exfat) is kept;
 *  - tmpfs is kept: a full /run, /tmp or /dev/shm is a real incident;
 *    anything mounted under /proc or /sys (e.g. the tmpfs holding the
 *    cgroup v1 mountpoints) is not;
 *  - a filesystem mounted twice (bind mounts, same f_fsid, or the same
 *    device path) is reported once, at its first mountpoint; a mountpoint
 *    mounted over is reported once, for what is visible there;
 *  - filesystems reporting zero blocks are skipped.
 * The mount table is reparsed only when its text changes. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

enum { F_SIZE, F_USED, F_AVAIL, F_USEDPCT, F_ITOTAL, F_IUSED, F_IFREE, F_IUSEDPCT, F_N };

static const struct {
    const char *name, *unit, *help;
} fdefs[F_N] = {
    {"fs.size_bytes", "bytes", "filesystem size"},
    {"fs.used_bytes", "bytes", "space used"},
    {"fs.avail_bytes", "bytes", "space available to unprivileged users"},
    {"fs.used_percent", "percent", "space used as a share of used + available (as df shows)"},
    {"fs.inodes_total", "", "inodes in the filesystem"},
    {"fs.inodes_used", "", "inodes in use"},
    {"fs.inodes_free", "", "inodes free"},
    {"fs.inodes_used_percent", "percent", "inodes in use as a share of all"},
};

typedef struct fs_ent {
    sn_key k;         /* mountpoint */
    char *dev;
    char *fstype;
    int ids[F_N];
    bool present;     /* in the current mount table, not skipped */
} fs_ent;

typedef struct fs_priv {
    sn_file f;
    char *last;       /* the mount table text last parsed */
    size_t lastlen;
    sn_tab mounts;
    unsigned long *fsids;  /* per-run dedupe scratch */
    char **devs;
    int nscratch;
} fs_priv;

bool sn_fs_skip_type(const char *t)
{
    static const char *const skip[] = {
        "proc", "sysfs", "cgroup", "cgroup2", "devpts", "devtmpfs", "mqueue", "debugfs",
        "tracefs", "securityfs", "pstore", "bpf", "fusectl", "configfs", "autofs",
        "binfmt_misc", "hugetlbfs", "nsfs", "rpc_pipefs", "efivarfs", "selinuxfs", "ramfs",
        "squashfs", "overlay", "nfs", "nfs4", "nfsd", "cifs", "smb3", "smbfs", "ceph",
        "glusterfs", "9p", "fuse", "afs", "lustre", "gfs2", "ocfs2", "rootfs", "none",
    };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (!strcmp(t, skip[i]))
            return true;
    return !strncmp(t, "fuse.", 5);
}

void sn_unescape_mount(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '7' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *o++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
}

static int fs_init(sense_t *s, sn_col *c)
{
    fs_priv *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    c->priv = p;
    return sn_file_table_open(s, c, &p->f, &p->mounts, sizeof(fs_ent), 4096, "self/mounts", "procfs + statvfs");
}

static void fs_fini(sense_t *s, sn_col *c)
{
    fs_priv *p = c->priv;
    if (!p)
        return;
    for (int i = 0; i < p->mounts.n; i++) {
        fs_ent *fe = sn_tab_at(&p->mounts, i);
        free(fe->dev);
        free(fe->fstype);
    }
    free(p->last);
    free(p->fsids);
    free(p->devs);
    sn_file_table_close(c, &p->f, &p->mounts);
}

static bool set_str(char **dst, const char *v)
{
    if (*dst && !strcmp(*dst, v))
        return false;
    char *n = strdup(v);
    if (!n)
        return false;
    free(*dst);
    *dst = n;
    return true;
}

static int fs_parse(sense_t *s, fs_priv *p, char *text, size_t n)
{
    for (int i = 0; i < p->mounts.n; i++)
        ((fs_ent *)sn_tab_at(&p->mounts, i))->present = false;
    char *q = text, *e = text + n;
    int cursor = 0;
    while (q < e) {
        char *le = memchr(q, '\n', (size_t)(e - q));
        if (!le)
            le = e;
        *le = 0;
        char *f[4] = {NULL};
        char *t = q;
        for (int i = 0; i < 4 && t < le; i++) {
            while (t < le && *t == ' ')
                t++;
            f[i] = t;
            while (t < le && *t != ' ')
                t++;
            if (t < le)
                *t++ = 0;
        }
        q = le + 1;
        if (!f[3] || sn_fs_skip_type(f[2]))
            continue;
        sn_unescape_mount(f[0]);
        sn_unescape_mount(f[1]);
        if (!strncmp(f[1], "/proc/", 6) || !strncmp(f[1], "/sys/", 5) || !strcmp(f[1], "/proc") ||
            !strcmp(f[1], "/sys"))
            continue;
        bool created;
        int idx = sn_tab_find(&p->mounts, &cursor, f[1], strlen(f[1]), &created);
        if (idx < 0)
            continue;
        fs_ent *fe = sn_tab_at(&p->mounts, idx);
        if (created)
            for (int i = 0; i < F_N; i++)
                fe->ids[i] = -1;
        /* a mount over an earlier one at the same place: what is visible wins */
        bool changed = set_str(&fe->dev, f[0]);
        changed |= set_str(&fe->fstype, f[2]);
        if (changed && !created)
            for (int i = 0; i < F_N; i++)
                fe->ids[i] = -1;
        fe->present = fe->dev && fe->fstype;
    }
    if (p->nscratch < p->mounts.n) {
        free(p->fsids);
        free(p->devs);
        p->fsids = calloc((size_t)p->mounts.n, sizeof *p->fsids);
        p->devs = calloc((size_t)p->mounts.n, sizeof *p->devs);
        p->nscratch = p->fsids && p->devs ? p->mounts.n : 0;
        if (!p->nscratch)
            return -ENOMEM;
    }
    return 0;
}

static int fs_collect(sense_t *s, sn_col *c, int64_t now_ms)
{
    fs_priv *p = c->priv;
    ssize_t n = sn_file_read(&p->f, &s->buf);
    if (n == -ENOENT && strstr(p->f.path, "/self/mounts")) {
        sn_file_set(&p->f, "%s/mounts", s->proc);
        n = sn_file_read(&p->f, &s->buf);
    }
    if (n < 0) {
        sn_unavailable(s, c, "%s: %s", p->f.path, strerror((int)-n));
        return (int)n;
    }
    if (!p->last || p->lastlen != (size_t)n || memcmp(p->last, s->buf.p, (size_t)n)) {
        char *copy = malloc((size_t)n + 1);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, s->buf.p, (size_t)n + 1);
        free(p->last);
        p->last = copy;
        p->lastlen = (size_t)n;
        if (fs_parse(s, p, s->buf.p, (size_t)n) < 0)
            return -ENOMEM;
    }
    int nseen = 0;
    for (int i = 0; i < p->mounts.n; i++) {
        fs_ent *fe = sn_tab_at(&p->mounts, i);
        if (!fe->present)
            continue;
        struct statvfs sv;
        if (statvfs(fe->k.key, &sv) < 0 || sv.f_blocks == 0)
            continue;
        bool dup = false;
        for (int j = 0; j < nseen && !dup; j++)
            dup = (sv.f_fsid != 0 && p->fsids[j] == sv.f_fsid) ||
                  (fe->dev[0] == '/' && p->devs[j] && !strcmp(p->devs[j], fe->dev));
        if (dup)
            continue;
        p->fsids[nseen] = sv.f_fsid;
        p->devs[nseen] = fe->dev;
        nseen++;
        double fr = (double)sv.f_frsize;
        double size = (double)sv.f_blocks * fr;
        double used = (double)(sv.f_blocks - sv.f_bfree) * fr;
        double avail = (double)sv.f_bavail * fr;
        double v[F_N] = {size, used, avail, used + avail > 0 ? used * 100.0 / (used + avail) : 0};
        bool inodes = sv.f_files > 0;
        if (inodes) {
            v[F_ITOTAL] = (double)sv.f_files;
            v[F_IFREE] = (double)sv.f_ffree;
            v[F_IUSED] = (double)(sv.f_files - sv.f_ffree);
            v[F_IUSEDPCT] = v[F_IUSED] * 100.0 / v[F_ITOTAL];
        }
        for (int k = 0; k < (inodes ? F_N : F_ITOTAL); k++) {
            if (fe->ids[k] < 0) {
                char lab[CORE_PATH_MAX + 512];
                sn_labels(lab, sizeof lab, 3, "mountpoint", fe->k.key, "device", fe->dev,
                          "fstype", fe->fstype);
                fe->ids[k] = sn_series(s, fdefs[k].name, lab, fdefs[k].unit, fdefs[k].help,
                                       MEM_GAUGE);
            }
            sn_put(s, c, fe->ids[k], v[k]);
        }
    }
    return 0;
}

const sn_module sn_mod_filesystem = {
    .name = "filesystem", .init = fs_init, .collect = fs_collect, .fini = fs_fini,
};
