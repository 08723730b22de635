/* nx.c: the node_exporter-compatible exposition's frame: the collector table,
 * the per-collector family buffers, the sample writer, and the scrape's own
 * node_scrape_collector_{success,duration_seconds} families. See nx_int.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sense/nx_int.h"

/* node_exporter's default Linux collectors (plus hwmon, nvme, mdadm, bonding,
 * infiniband), in its order: by name; textfile last, since it checks its
 * files' families against everything the others emitted. */
const nx_collector nx_collectors[] = {
    {"arp", nx_col_arp},
    {"bcache", nx_col_bcache},
    {"bonding", nx_col_bonding},
    {"btrfs", nx_col_btrfs},
    {"conntrack", nx_col_conntrack},
    {"cpu", nx_col_cpu},
    {"cpufreq", nx_col_cpufreq},
    {"diskstats", nx_col_diskstats},
    {"dmi", nx_col_dmi},
    {"edac", nx_col_edac},
    {"entropy", nx_col_entropy},
    {"fibrechannel", nx_col_fibrechannel},
    {"filefd", nx_col_filefd},
    {"filesystem", nx_col_filesystem},
    {"hwmon", nx_col_hwmon},
    {"infiniband", nx_col_infiniband},
    {"ipvs", nx_col_ipvs},
    {"loadavg", nx_col_loadavg},
    {"mdadm", nx_col_mdadm},
    {"meminfo", nx_col_meminfo},
    {"netclass", nx_col_netclass},
    {"netdev", nx_col_netdev},
    {"netstat", nx_col_netstat},
    {"nfs", nx_col_nfs},
    {"nfsd", nx_col_nfsd},
    {"nvme", nx_col_nvme},
    {"os", nx_col_os},
    {"powersupplyclass", nx_col_powersupplyclass},
    {"pressure", nx_col_pressure},
    {"rapl", nx_col_rapl},
    {"schedstat", nx_col_schedstat},
    {"selinux", nx_col_selinux},
    {"sockstat", nx_col_sockstat},
    {"softnet", nx_col_softnet},
    {"stat", nx_col_stat},
    {"tapestats", nx_col_tapestats},
    {"thermal_zone", nx_col_thermal_zone},
    {"time", nx_col_time},
    {"timex", nx_col_timex},
    {"udp_queues", nx_col_udp_queues},
    {"uname", nx_col_uname},
    {"vmstat", nx_col_vmstat},
    {"xfs", nx_col_xfs},
    {"zfs", nx_col_zfs},
    {"textfile", nx_col_textfile},
};
const int nx_ncollectors = (int)(sizeof nx_collectors / sizeof nx_collectors[0]);

struct sense_nx {
    pthread_mutex_t lock;
    char proc[CORE_PATH_MAX];
    char sys[CORE_PATH_MAX];
    char textfile_dir[CORE_PATH_MAX];
    char udev[CORE_PATH_MAX];
    nx_ctx ctx;
    double *cost;   /* per collector: seconds of the scrape in progress */
    int *ok;
};

/* ---- output ---------------------------------------------------------------------- */
void nx_out_add(nx_outbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void out_puts(nx_outbuf *b, const char *s)
{
    nx_out_add(b, s, strlen(s));
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64) prints the shortest form that
 * reads back; the shortest of %.15g / %.16g / %.17g that does is the same
 * digits (node_exporter prints 67070 ms as 67.07000000000001, not ...007). */
void nx_out_value(nx_outbuf *b, double v)
{
    char buf[40];
    if (isnan(v))
        snprintf(buf, sizeof buf, "NaN");
    else if (isinf(v))
        snprintf(buf, sizeof buf, v > 0 ? "+Inf" : "-Inf");
    else {
        for (int prec = 15; prec <= 17; prec++) { /* the shortest that reads back, as Go */
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (strtod(buf, NULL) == v)
                break;
        }
    }
    out_puts(b, buf);
}

static void out_put(void *ud, const char *s, size_t n)
{
    nx_out_add(ud, s, n);
}

static void out_escaped(nx_outbuf *b, const char *s, bool quote)
{
    core_prom_escape(s, quote, out_put, b); /* invalid UTF-8 as U+FFFD (a mount point, a file name) */
}

/* ---- families -------------------------------------------------------------------- */
/* The family index: names to slots, so that finding a family again costs
 * the same with 20 families as with 10,000. */
static uint32_t name_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void fidx_put(int *t, size_t cap, const char *name, int i)
{
    size_t k = name_hash(name) & (cap - 1);
    while (t[k])
        k = (k + 1) & (cap - 1);
    t[k] = i + 1;
}

/* Empties the index and the running collector's families. */
static void fams_reset(nx_ctx *x)
{
    if (x->nfams && x->fidx)
        memset(x->fidx, 0, x->fidxcap * sizeof *x->fidx);
    x->nfams = 0;
}

/* Makes the index at least twice cap, with the families so far in it. */
static int fidx_grow(nx_ctx *x, int cap)
{
    size_t c = x->fidxcap ? x->fidxcap : 128;
    while (c < 2 * (size_t)cap)
        c *= 2;
    if (c == x->fidxcap)
        return 0;
    int *t = calloc(c, sizeof *t);
    if (!t)
        return -ENOMEM;
    for (int i = 0; i < x->nfams; i++)
        fidx_put(t, c, x->fams[i].name, i);
    free(x->fidx);
    x->fidx = t;
    x->fidxcap = c;
    return 0;
}

/* Grows the family array to hold need families. The slots move, so names
 * and helps that point into their own slot are pointed at its new place;
 * the sample buffers go with their slots: the steady state allocates
 * nothing. */
static int fams_grow(nx_ctx *x, int need)
{
    if (need <= x->capfams)
        return 0;
    if (need > NX_MAX_FAMILIES)
        return -E2BIG;
    int cap = x->capfams ? x->capfams : 64;
    while (cap < need)
        cap *= 2;
    if (cap > NX_MAX_FAMILIES)
        cap = NX_MAX_FAMILIES;
    nx_fam *p = calloc((size_t)cap, sizeof *p);
    if (!p)
        return -ENOMEM;
    for (int i = 0; i < x->capfams; i++) {
        const nx_fam *o = &x->fams[i];
        p[i] = *o;
        if (o->name == o->name_own)
            p[i].name = p[i].name_own;
        if (o->help == o->help_own)
            p[i].help = p[i].help_own;
    }
    free(x->fams);
    x->fams = p;
    x->capfams = cap;
    return fidx_grow(x, cap);
}

int nx_family_reserve(nx_ctx *x, int n)
{
    return n < 0 || n > NX_MAX_FAMILIES - x->nfams ? -E2BIG : fams_grow(x, x->nfams + n);
}

static int family(nx_ctx *x, const char *name, int type, const char *help, bool dyn)
{
    /* a copy cut short would not be found again by the full name: each
     * call would add another family of the same (cut) name */
    if (dyn && strlen(name) >= sizeof x->fams->name_own)
        return -1;
    size_t mask = x->fidxcap - 1;
    if (x->fidxcap)
        for (size_t k = name_hash(name) & mask; x->fidx[k]; k = (k + 1) & mask)
            if (!strcmp(x->fams[x->fidx[k] - 1].name, name))
                return x->fidx[k] - 1;
    int rc = fams_grow(x, x->nfams + 1);
    if (rc == 0 && x->fidxcap < 2 * (size_t)x->capfams)
        rc = fidx_grow(x, x->capfams); /* an earlier fidx_grow ran out of memory */
    if (rc < 0) {
        if (!x->too_many_logged)
            core_log(CORE_LOG_WARN, "sense: node exposition: collector %s: %s %d families; the rest are left out",
                     x->collector, rc == -ENOMEM ? "out of memory at" : "more than", x->nfams);
        x->too_many_logged = true;
        return -1;
    }
    nx_fam *f = &x->fams[x->nfams];
    if (dyn) {
        core_sncpy(f->name_own, sizeof f->name_own, name);
        f->name = f->name_own;
        if (help) {
            core_sncpy(f->help_own, sizeof f->help_own, help);
            help = f->help_own;
        }
    } else {
        f->name = name;
    }
    f->type = type;
    f->help = help;
    f->body.len = 0;
    f->body.oom = false;
    f->nsamples = 0;
    fidx_put(x->fidx, x->fidxcap, f->name, x->nfams);
    return x->nfams++;
}

int nx_family(nx_ctx *x, const char *name, int type, const char *help)
{
    return family(x, name, type, help, false);
}

int nx_family_dyn(nx_ctx *x, const char *name, int type, const char *help)
{
    return family(x, name, type, help, true);
}

void nx_sample_v(nx_ctx *x, int f, double v, int nlabels, const char *const *kv)
{
    if (f < 0 || f >= x->nfams || isnan(v))
        return;
    nx_fam *fam = &x->fams[f];
    nx_outbuf *b = &fam->body;
    out_puts(b, fam->name);
    if (nlabels > 0) {
        nx_out_add(b, "{", 1);
        for (int i = 0; i < nlabels; i++) {
            if (i)
                nx_out_add(b, ",", 1);
            out_puts(b, kv[2 * i]);
            nx_out_add(b, "=\"", 2);
            out_escaped(b, kv[2 * i + 1] ? kv[2 * i + 1] : "", true);
            nx_out_add(b, "\"", 1);
        }
        nx_out_add(b, "}", 1);
    }
    nx_out_add(b, " ", 1);
    nx_out_value(b, v);
    nx_out_add(b, "\n", 1);
    fam->nsamples++;
}

void nx_sample(nx_ctx *x, int f, double v, int nlabels, ...)
{
    const char *kv[2 * NX_MAX_LABELS];
    if (nlabels > NX_MAX_LABELS)
        nlabels = NX_MAX_LABELS;
    va_list ap;
    va_start(ap, nlabels);
    for (int i = 0; i < 2 * nlabels; i++)
        kv[i] = va_arg(ap, const char *);
    va_end(ap);
    nx_sample_v(x, f, v, nlabels, kv);
}

void nx_gauge1(nx_ctx *x, const char *name, const char *help, double v)
{
    nx_sample(x, nx_family(x, name, NX_GAUGE, help), v, 0);
}

static const char *type_name(int t)
{
    static const char *const names[] = {"gauge", "counter", "untyped", "histogram", "summary"};
    return t > 0 && t < (int)(sizeof names / sizeof names[0]) ? names[t] : "gauge";
}

/* Writes the running collector's families (those with samples) out whole. */
static void flush_families(nx_ctx *x)
{
    for (int i = 0; i < x->nfams; i++) {
        nx_fam *f = &x->fams[i];
        if (f->nsamples == 0 || f->body.oom) {
            x->out.oom |= f->body.oom;
            continue;
        }
        out_puts(&x->out, "# HELP ");
        out_puts(&x->out, f->name);
        nx_out_add(&x->out, " ", 1);
        out_escaped(&x->out, f->help && f->help[0] ? f->help : f->name, false);
        out_puts(&x->out, "\n# TYPE ");
        out_puts(&x->out, f->name);
        nx_out_add(&x->out, " ", 1);
        out_puts(&x->out, type_name(f->type));
        nx_out_add(&x->out, "\n", 1);
        nx_out_add(&x->out, f->body.p, f->body.len);
    }
    fams_reset(x);
}

/* ---- reading --------------------------------------------------------------------- */
static ssize_t read_va(sn_buf *buf, const char *root, const char *fmt, va_list ap)
{
    char path[CORE_PATH_MAX + 256];
    int k = snprintf(path, sizeof path, "%s/", root);
    if (k < 0 || (size_t)k >= sizeof path)
        return -ENAMETOOLONG;
    int m = vsnprintf(path + k, sizeof path - (size_t)k, fmt, ap);
    if (m < 0 || (size_t)m >= sizeof path - (size_t)k)
        return -ENAMETOOLONG;
    return sn_path_read(path, buf);
}

ssize_t nx_read(nx_ctx *x, sn_buf *buf, const char *root, const char *fmt, ...)
{
    (void)x;
    va_list ap;
    va_start(ap, fmt);
    ssize_t n = read_va(buf, root, fmt, ap);
    va_end(ap);
    return n;
}

/* What read_one makes of a one-line attribute. */
enum { NX_RD_U64, NX_RD_DBL, NX_RD_STR };

/* Reads <root>/<fmt...> through x->rd2 and parses it as kind into out (a
 * uint64_t, a double, or a string of n bytes); 0 or -errno. */
static int read_one(nx_ctx *x, const char *root, int kind, void *out, size_t n, const char *fmt, va_list ap)
{
    ssize_t len = read_va(&x->rd2, root, fmt, ap);
    if (len < 0)
        return (int)len;
    const char *t = x->rd2.p;
    char *end;
    if (kind == NX_RD_U64) {
        errno = 0;
        unsigned long long u = strtoull(t, &end, 10);
        /* strtoull takes "-1" as 2^64-1; Go's ParseUint (node_exporter)
         * refuses it (a topology id of -1, say) */
        if (end == t || errno || memchr(t, '-', (size_t)(end - t)))
            return -EINVAL;
        *(uint64_t *)out = u;
    } else if (kind == NX_RD_DBL) {
        double d = strtod(t, &end);
        if (end == t)
            return -EINVAL;
        *(double *)out = d;
    } else if (n == 0) {
        return -EINVAL;
    } else {
        size_t l = strcspn(t, "\n");
        if (l >= n)
            l = n - 1;
        memcpy(out, t, l);
        ((char *)out)[l] = 0;
    }
    return 0;
}

int nx_read_u64(nx_ctx *x, const char *root, uint64_t *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = read_one(x, root, NX_RD_U64, v, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int nx_read_dbl(nx_ctx *x, const char *root, double *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = read_one(x, root, NX_RD_DBL, v, 0, fmt, ap);
    va_end(ap);
    return rc;
}

int nx_read_str(nx_ctx *x, const char *root, char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = read_one(x, root, NX_RD_STR, out, n, fmt, ap);
    va_end(ap);
    return rc;
}

/* Whether entry d of directory dir is a directory (or a link to one). */
bool nx_is_dir(const char *dir, const struct dirent *d)
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

/* ---- the handle ------------------------------------------------------------------ */
int sense_nx_open(sense_nx **out, const core_config *cfg, char *err, size_t errlen)
{
    sense_nx *x = calloc(1, sizeof *x);
    if (x) {
        x->cost = calloc((size_t)nx_ncollectors, sizeof *x->cost);
        x->ok = calloc((size_t)nx_ncollectors, sizeof *x->ok);
    }
    if (!x || !x->cost || !x->ok) {
        if (x) {
            free(x->cost);
            free(x->ok);
        }
        free(x);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    pthread_mutex_init(&x->lock, NULL);
    core_sncpy(x->proc, sizeof x->proc, cfg->proc_root);
    core_sncpy(x->sys, sizeof x->sys, cfg->sys_root);
    core_sncpy(x->textfile_dir, sizeof x->textfile_dir, cfg->textfile_dir);
    x->ctx.proc = x->proc;
    x->ctx.sys = x->sys;
    x->ctx.textfile_dir = x->textfile_dir;
    core_sncpy(x->udev, sizeof x->udev, cfg->udev_data_dir);
    x->ctx.udev = x->udev;
    *out = x;
    return 0;
}

void sense_nx_reconfigure(sense_nx *x, const core_config *cfg)
{
    pthread_mutex_lock(&x->lock);
    core_sncpy(x->textfile_dir, sizeof x->textfile_dir, cfg->textfile_dir);
    core_sncpy(x->udev, sizeof x->udev, cfg->udev_data_dir);
    pthread_mutex_unlock(&x->lock);
}

void sense_nx_close(sense_nx *x)
{
    if (!x)
        return;
    nx_textfile_free(&x->ctx);
    for (int i = 0; i < x->ctx.capfams; i++)
        free(x->ctx.fams[i].body.p);
    free(x->ctx.fams);
    free(x->ctx.fidx);
    free(x->ctx.rd.p);
    free(x->ctx.rd2.p);
    free(x->ctx.stat.p);
    free(x->ctx.out.p);
    free(x->cost);
    free(x->ok);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

static void scrape_families(nx_ctx *x, const double *cost, const int *ok)
{
    x->collector = "scrape";
    int fd = nx_family(x, "node_scrape_collector_duration_seconds", NX_GAUGE,
                       "node_exporter: Duration of a collector scrape.");
    int fs = nx_family(x, "node_scrape_collector_success", NX_GAUGE,
                       "node_exporter: Whether a collector succeeded.");
    for (int i = 0; i < nx_ncollectors; i++) {
        nx_sample(x, fd, cost[i], 1, "collector", nx_collectors[i].name);
        nx_sample(x, fs, ok[i], 1, "collector", nx_collectors[i].name);
    }
    flush_families(x);
}

int sense_nx_render(sense_nx *nx, void (*emit)(void *ud, const char *text, size_t len), void *ud)
{
    pthread_mutex_lock(&nx->lock);
    nx_ctx *x = &nx->ctx;
    x->out.len = 0;
    x->out.oom = false;
    x->stat_len = 0;
    nx_out_add(&x->out, "", 0);
    for (int i = 0; i < nx_ncollectors; i++) {
        x->collector = nx_collectors[i].name;
        fams_reset(x);
        int64_t t0 = core_mono_ns();
        int rc = nx_collectors[i].fn(x);
        nx->cost[i] = (double)(core_mono_ns() - t0) / 1e9;
        nx->ok[i] = rc >= 0;
        flush_families(x);
    }
    scrape_families(x, nx->cost, nx->ok);
    int rc = x->out.oom ? -ENOMEM : 0;
    if (rc == 0)
        emit(ud, x->out.p ? x->out.p : "", x->out.len);
    pthread_mutex_unlock(&nx->lock);
    return rc;
}
