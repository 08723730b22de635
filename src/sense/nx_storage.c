/* nx_storage.c: node_exporter's storage-stack collectors: nvme
 * (<sys>/class/nvme info), mdadm (<proc>/mdstat, parsed as procfs does) and
 * bcache, btrfs and xfs (their <sys>/fs trees). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "sense/nx_int.h"

static bool st_is_dir(const char *dir, const struct dirent *d)
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

/* Trims blanks at both ends in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
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
        if (!st_is_dir(dir, de))
            continue;
        static const char *const files[4] = {"firmware_rev", "model", "serial", "state"};
        char v[4][256];
        for (int i = 0; i < 4 && rc == 0; i++)
            rc = nx_read_str(x, x->sys, v[i], sizeof v[i], "class/nvme/%s/%s", de->d_name, files[i]);
        if (rc < 0)
            break;
        nx_sample(x, f, 1, 5, "device", de->d_name, "firmware_revision", trim(v[0]), "model", trim(v[1]), "serial",
                  trim(v[2]), "state", trim(v[3]));
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
    int rc = md_status(dev, trim(st), m);
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
