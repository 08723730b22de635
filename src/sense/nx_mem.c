/* nx_mem.c: node_exporter's meminfo, vmstat, pressure, filefd and entropy
 * collectors (/proc/meminfo, /proc/vmstat, /proc/pressure/{cpu,io,memory},
 * /proc/sys/fs/file-nr, /proc/sys/kernel/random), plus the helpers of
 * nx_sys.h that the nxsys collectors share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "sense/nx_sys.h"

/* ---- shared helpers (nx_sys.h) ---------------------------------------------------- */
static bool scan_match(const char *name, const char *prefix, bool digits)
{
    size_t k = strlen(prefix);
    if (strncmp(name, prefix, k) != 0 || name[0] == '.')
        return false;
    if (!digits)
        return true;
    const char *s = name + k;
    if (!*s)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

int nxs_scan(const char *root, const char *rel, const char *prefix, bool digits, struct dirent ***out)
{
    char path[CORE_PATH_MAX + 256];
    int k = snprintf(path, sizeof path, "%s/%s", root, rel);
    if (k < 0 || (size_t)k >= sizeof path)
        return -ENAMETOOLONG;
    struct dirent **v;
    int n = scandir(path, &v, NULL, alphasort);
    if (n < 0)
        return -errno;
    int k2 = 0;
    for (int i = 0; i < n; i++) {
        if (scan_match(v[i]->d_name, prefix, digits))
            v[k2++] = v[i];
        else
            free(v[i]);
    }
    *out = v;
    return k2;
}

void nxs_names_free(struct dirent **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

bool nxs_utf8_valid(const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        size_t k = core_utf8_len(s + i);
        if (!k || k > n - i)
            return false;
        i += k;
    }
    return true;
}

void nxs_rootfs(const nx_ctx *x, char *out, size_t n)
{
    core_sncpy(out, n, x->proc);
    size_t len = strlen(out);
    while (len > 0 && out[len - 1] == '/')
        out[--len] = 0;
    char *slash = strrchr(out, '/');
    if (slash)
        *slash = 0;
    else
        out[0] = 0;
}

/* ---- meminfo ---------------------------------------------------------------------- */
/* "Active(anon)" -> "Active_anon", as node_exporter's \((.*)\) -> _$1. */
static void meminfo_key(const char *p, size_t len, char *out, size_t n)
{
    size_t j = 0;
    const char *open = memchr(p, '(', len);
    const char *close = NULL;
    for (const char *q = p + len; open && q > open; q--)
        if (q[-1] == ')') {
            close = q - 1;
            break;
        }
    for (size_t i = 0; i < len && j + 1 < n; i++) {
        const char *c = p + i;
        if (open && close && c == open)
            out[j++] = '_';
        else if (open && close && c == close)
            continue;
        else
            out[j++] = *c;
    }
    out[j] = 0;
}

NX_COLLECTOR(meminfo)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "meminfo");
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n;
    for (; p < e; p = sn_eol(p, e)) {
        const char *colon = p, *eol = sn_eol(p, e);
        while (colon < eol && *colon != ':')
            colon++;
        if (colon >= eol)
            continue; /* blank lines occur on some kernels */
        const char *q = colon + 1;
        bool ok;
        uint64_t v = sn_u64(&q, eol, &ok);
        if (!ok)
            return -EINVAL;
        q = sn_skip_ws(q, eol);
        bool unit = q < eol && *q != '\n';
        char key[96], name[128], help[160];
        meminfo_key(p, (size_t)(colon - p), key, sizeof key);
        snprintf(name, sizeof name, "node_memory_%s%s", key, unit ? "_bytes" : "");
        snprintf(help, sizeof help, "Memory information field %s%s.", key, unit ? "_bytes" : "");
        nx_sample(x, nx_family_dyn(x, name, NX_GAUGE, help), unit ? (double)v * 1024.0 : (double)v, 0);
    }
    return 0;
}

/* ---- vmstat ----------------------------------------------------------------------- */
/* node_exporter's default --collector.vmstat.fields ^(oom_kill|pgpg|pswp|pg.*fault).* */
static bool vmstat_field(const char *k, size_t len)
{
    if ((len >= 8 && !memcmp(k, "oom_kill", 8)) || (len >= 4 && !memcmp(k, "pgpg", 4)) ||
        (len >= 4 && !memcmp(k, "pswp", 4)))
        return true;
    if (len < 7 || memcmp(k, "pg", 2) != 0)
        return false;
    for (size_t i = 2; i + 5 <= len; i++)
        if (!memcmp(k + i, "fault", 5))
            return true;
    return false;
}

NX_COLLECTOR(vmstat)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "vmstat");
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n;
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = p;
        char key[96];
        size_t len = sn_tok(&q, e, key, sizeof key);
        if (!len || !vmstat_field(key, len))
            continue;
        bool ok;
        int64_t v = sn_i64(&q, e, &ok);
        if (!ok)
            return -EINVAL;
        char name[128], help[160];
        snprintf(name, sizeof name, "node_vmstat_%s", key);
        snprintf(help, sizeof help, "/proc/vmstat information field %s.", key);
        nx_sample(x, nx_family_dyn(x, name, NX_UNTYPED, help), (double)v, 0);
    }
    return 0;
}

/* ---- pressure --------------------------------------------------------------------- */
/* The total= of the "some" (or "full") line, in microseconds. */
static bool psi_total(const char *p, const char *e, const char *kind, uint64_t *v)
{
    size_t k = strlen(kind);
    for (; p < e; p = sn_eol(p, e)) {
        if ((size_t)(e - p) <= k || memcmp(p, kind, k) != 0 || p[k] != ' ')
            continue;
        const char *eol = sn_eol(p, e);
        for (const char *q = p; q + 6 <= eol; q++)
            if (!memcmp(q, "total=", 6)) {
                q += 6;
                bool ok;
                *v = sn_u64(&q, eol, &ok);
                return ok;
            }
    }
    return false;
}

NX_COLLECTOR(pressure)
{
    static const char *const res[3] = {"cpu", "io", "memory"};
    static const char *const waiting[3] = {"node_pressure_cpu_waiting_seconds_total",
                                           "node_pressure_io_waiting_seconds_total",
                                           "node_pressure_memory_waiting_seconds_total"};
    static const char *const waiting_help[3] = {
        "Total time in seconds that processes have waited for CPU time",
        "Total time in seconds that processes have waited due to IO congestion",
        "Total time in seconds that processes have waited for memory"};
    static const char *const stalled[3] = {NULL, "node_pressure_io_stalled_seconds_total",
                                           "node_pressure_memory_stalled_seconds_total"};
    static const char *const stalled_help[3] = {
        NULL, "Total time in seconds no process could make progress due to IO congestion",
        "Total time in seconds no process could make progress due to memory congestion"};
    for (int i = 0; i < 3; i++) {
        /* node_exporter: a missing file means no PSI (kernel < 4.20 or
         * CONFIG_PSI off): no data, the collector reports failure */
        ssize_t n = nx_read(x, &x->rd, x->proc, "pressure/%s", res[i]);
        if (n < 0)
            return (int)n;
        const char *p = x->rd.p, *e = x->rd.p + n;
        uint64_t some, full;
        if (!psi_total(p, e, "some", &some))
            return -EINVAL;
        nx_sample(x, nx_family(x, waiting[i], NX_COUNTER, waiting_help[i]), (double)some / 1000.0 / 1000.0, 0);
        if (stalled[i] && psi_total(p, e, "full", &full))
            nx_sample(x, nx_family(x, stalled[i], NX_COUNTER, stalled_help[i]), (double)full / 1000.0 / 1000.0,
                      0);
    }
    return 0;
}

/* ---- filefd ----------------------------------------------------------------------- */
NX_COLLECTOR(filefd)
{
    ssize_t n = nx_read(x, &x->rd, x->proc, "sys/fs/file-nr");
    if (n < 0)
        return (int)n;
    const char *p = x->rd.p, *e = x->rd.p + n;
    bool ok1, ok2, ok3;
    uint64_t alloc = sn_u64(&p, e, &ok1);
    (void)sn_u64(&p, e, &ok2);
    uint64_t max = sn_u64(&p, e, &ok3);
    if (!ok1 || !ok2 || !ok3)
        return -EINVAL;
    nx_gauge1(x, "node_filefd_allocated", "File descriptor statistics: allocated.", (double)alloc);
    nx_gauge1(x, "node_filefd_maximum", "File descriptor statistics: maximum.", (double)max);
    return 0;
}

/* ---- entropy ---------------------------------------------------------------------- */
NX_COLLECTOR(entropy)
{
    uint64_t avail, pool;
    int rc = nx_read_u64(x, x->proc, &avail, "sys/kernel/random/entropy_avail");
    if (rc < 0)
        return rc;
    nx_gauge1(x, "node_entropy_available_bits", "Bits of available entropy.", (double)avail);
    rc = nx_read_u64(x, x->proc, &pool, "sys/kernel/random/poolsize");
    if (rc < 0)
        return rc;
    nx_gauge1(x, "node_entropy_pool_size_bits", "Bits of entropy pool.", (double)pool);
    return 0;
}
