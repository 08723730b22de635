/* nx_host.c: node_exporter's uname, os and selinux collectors: uname(2),
 * os-release(5) (etc/os-release, else usr/lib/os-release, under the root
 * that holds the proc root: "/" on a host, the fixture root in tests), and
 * whether SELinux is on (selinuxfs under the sys root) with its modes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/utsname.h>

#include "sense/nx_sys.h"

NX_COLLECTOR(uname)
{
    struct utsname u;
    if (uname(&u) < 0)
        return -errno;
    nx_sample(x, nx_family(x, "node_uname_info", NX_GAUGE,
                           "Labeled system information as provided by the uname system call."),
              1, 6, "domainname", u.domainname, "machine", u.machine, "nodename", u.nodename, "release", u.release,
              "sysname", u.sysname, "version", u.version);
    return 0;
}

/* ---- os-release ------------------------------------------------------------------- */
enum { OS_BUILD_ID, OS_ID, OS_ID_LIKE, OS_IMAGE_ID, OS_IMAGE_VERSION, OS_NAME, OS_PRETTY_NAME, OS_VARIANT,
       OS_VARIANT_ID, OS_VERSION, OS_VERSION_CODENAME, OS_VERSION_ID, OS_NKEYS };
/* label names, sorted, as node_exporter writes them; the keys are their upper case */
static const char *const os_labels[OS_NKEYS] = {"build_id", "id", "id_like", "image_id", "image_version", "name",
                                                "pretty_name", "variant", "variant_id", "version",
                                                "version_codename", "version_id"};
#define OS_VAL 256

/* One os-release value into out, as node_exporter's envparse reads it:
 * blanks around it skipped; "double" quotes with \" \\ \n \t \r escapes;
 * 'single' quotes literal; a bare value ends at a blank or '#' and keeps
 * its backslashes (with the character each one escapes). */
static void os_value(const char *p, const char *e, char *out)
{
    size_t j = 0;
    p = sn_skip_ws(p, e);
    if (p < e && (*p == '"' || *p == '\'')) {
        char q = *p++;
        for (; p < e && *p != q; p++) {
            char c = *p;
            if (q == '"' && c == '\\' && p + 1 < e) {
                char n = *++p;
                c = n == 'n' ? '\n' : n == 't' ? '\t' : n == 'r' ? '\r' : n;
                if (n != 'n' && n != 't' && n != 'r' && n != '"' && n != '\\' && j + 1 < OS_VAL)
                    out[j++] = '\\';
            }
            if (j + 1 < OS_VAL)
                out[j++] = c;
        }
    } else {
        for (; p < e && *p != ' ' && *p != '\t' && *p != '#'; p++) {
            if (*p == '\\' && p + 1 < e && j + 1 < OS_VAL)
                out[j++] = *p++;
            if (j + 1 < OS_VAL)
                out[j++] = *p;
        }
    }
    out[j] = 0;
}

static void os_parse(const char *p, const char *e, char vals[OS_NKEYS][OS_VAL])
{
    for (; p < e; p = sn_eol(p, e)) {
        const char *eol = sn_eol(p, e), *q = sn_skip_ws(p, eol);
        if (eol > q && eol[-1] == '\n')
            eol--;
        if (eol - q > 7 && !memcmp(q, "export ", 7))
            q = sn_skip_ws(q + 7, eol);
        const char *eq = memchr(q, '=', (size_t)(eol - q));
        if (!eq || *q == '#')
            continue;
        size_t klen = (size_t)(eq - q);
        for (int k = 0; k < OS_NKEYS; k++) {
            const char *l = os_labels[k];
            if (strlen(l) != klen)
                continue;
            size_t i = 0;
            while (i < klen && q[i] == (l[i] >= 'a' && l[i] <= 'z' ? l[i] - 'a' + 'A' : l[i]))
                i++;
            if (i == klen)
                os_value(eq + 1, eol, vals[k]);
        }
    }
}

/* node_exporter: the number \d+\.?\d* found in VERSION_ID, 0 when none. */
static double os_version(const char *s)
{
    while (*s && (*s < '0' || *s > '9'))
        s++;
    if (!*s)
        return 0;
    char buf[64];
    size_t j = 0;
    while (*s >= '0' && *s <= '9' && j + 1 < sizeof buf)
        buf[j++] = *s++;
    if (*s == '.' && j + 1 < sizeof buf) {
        buf[j++] = *s++;
        while (*s >= '0' && *s <= '9' && j + 1 < sizeof buf)
            buf[j++] = *s++;
    }
    buf[j] = 0;
    return strtod(buf, NULL);
}

NX_COLLECTOR(os)
{
    char root[CORE_PATH_MAX];
    nxs_rootfs(x, root, sizeof root);
    ssize_t n = nx_read(x, &x->rd, root, "etc/os-release");
    if (n == -ENOENT)
        n = nx_read(x, &x->rd, root, "usr/lib/os-release");
    if (n < 0)
        return (int)n;
    /* nx_sample_v writes invalid UTF-8 as U+FFFD, as node_exporter's ToValidUTF8 */
    char vals[OS_NKEYS][OS_VAL];
    memset(vals, 0, sizeof vals);
    os_parse(x->rd.p, x->rd.p + n, vals);
    const char *kv[2 * OS_NKEYS];
    for (int k = 0; k < OS_NKEYS; k++) {
        kv[2 * k] = os_labels[k];
        kv[2 * k + 1] = vals[k];
    }
    int finfo = nx_family(x, "node_os_info", NX_GAUGE,
                          "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
                          "image_version, name, pretty_name, variant, variant_id, version, version_codename, "
                          "version_id.");
    nx_sample_v(x, finfo, 1, OS_NKEYS, kv);
    double v = os_version(vals[OS_VERSION_ID]);
    if (v > 0)
        nx_sample(x, nx_family(x, "node_os_version", NX_GAUGE, "Metric containing the major.minor part of the OS version."),
                  v, 3, "id", vals[OS_ID], "id_like", vals[OS_ID_LIKE], "name", vals[OS_NAME]);
    return 0;
}

/* ---- selinux ---------------------------------------------------------------------- */
/* SELINUX= in etc/selinux/config: enforcing 1, permissive 0, else -1 (disabled). */
static int selinux_config_mode(nx_ctx *x)
{
    char root[CORE_PATH_MAX];
    nxs_rootfs(x, root, sizeof root);
    ssize_t n = nx_read(x, &x->rd, root, "etc/selinux/config");
    if (n < 0)
        return -1;
    const char *p = x->rd.p, *e = x->rd.p + n;
    for (; p < e; p = sn_eol(p, e)) {
        const char *q = sn_skip_ws(p, e);
        if (e - q < 8 || memcmp(q, "SELINUX=", 8) != 0)
            continue;
        q += 8;
        const char *end = q;
        while (end < e && *end != '\n' && *end != ' ' && *end != '\t')
            end++;
        size_t len = (size_t)(end - q);
        if (len == 9 && !memcmp(q, "enforcing", 9))
            return 1;
        if (len == 10 && !memcmp(q, "permissive", 10))
            return 0;
        return -1;
    }
    return -1;
}

NX_COLLECTOR(selinux)
{
    uint64_t enforce = 0;
    char ctx[64] = "";
    /* enabled: selinuxfs mounted and this process not labelled "kernel" */
    bool on = nx_read_u64(x, x->sys, &enforce, "fs/selinux/enforce") == 0 &&
              (nx_read_str(x, x->proc, ctx, sizeof ctx, "self/attr/current") < 0 || strcmp(ctx, "kernel") != 0);
    nx_gauge1(x, "node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", on ? 1 : 0);
    if (!on)
        return 0;
    nx_gauge1(x, "node_selinux_config_mode", "Configured SELinux enforcement mode", selinux_config_mode(x));
    nx_gauge1(x, "node_selinux_current_mode", "Current SELinux enforcement mode", (double)enforce);
    return 0;
}
