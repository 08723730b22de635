/* util.c: clocks, parsers for durations, sizes, booleans and times, and small
 * string and file helpers used across modules. */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t core_now_ms(void) { return clock_ns(CLOCK_REALTIME) / 1000000; }
int64_t core_mono_ms(void) { return clock_ns(CLOCK_MONOTONIC) / 1000000; }
int64_t core_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Parses a non-negative decimal number with an optional fraction; sets *end. */
static int parse_number(const char *s, double *out, const char **end)
{
    if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
        return -EINVAL;
    char *e;
    errno = 0;
    double v = strtod(s, &e);
    if (errno || !isfinite(v) || v < 0)
        return -EINVAL;
    *out = v;
    *end = e;
    return 0;
}

int core_parse_duration(const char *s, int64_t *ms)
{
    static const struct { const char *suffix; double ms; } units[] = {
        {"ms", 1}, {"s", 1000}, {"sec", 1000}, {"m", 60000}, {"min", 60000},
        {"h", 3600000}, {"d", 86400000}, {"w", 604800000}, {"y", 31536000000.0},
    };
    if (!s)
        return -EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    double v;
    const char *end;
    if (parse_number(s, &v, &end))
        return -EINVAL;
    char suffix[8] = "s";
    size_t len = 0;
    while (isalpha((unsigned char)end[len]) && len < sizeof suffix - 1)
        len++;
    if (len) {
        memcpy(suffix, end, len);
        suffix[len] = 0;
    }
    const char *rest = end + len;
    while (isspace((unsigned char)*rest))
        rest++;
    if (*rest)
        return -EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (!strcmp(suffix, units[i].suffix)) {
            double r = v * units[i].ms;
            if (r > 9.0e15)
                return -EINVAL;
            *ms = (int64_t)llround(r);
            return 0;
        }
    }
    return -EINVAL;
}

int core_parse_size(const char *s, uint64_t *bytes)
{
    if (!s)
        return -EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    double v;
    const char *end;
    if (parse_number(s, &v, &end))
        return -EINVAL;
    while (isspace((unsigned char)*end))
        end++;
    double mult = 1;
    const char *p = end;
    switch (toupper((unsigned char)*p)) {
    case 'K': mult = 1024.0; p++; break;
    case 'M': mult = 1048576.0; p++; break;
    case 'G': mult = 1073741824.0; p++; break;
    case 'T': mult = 1099511627776.0; p++; break;
    default: break;
    }
    if (mult > 1 && *p == 'i')
        p++;
    if (*p == 'B' || (*p == 'b' && mult > 1))
        p++;
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -EINVAL;
    double r = v * mult;
    if (r >= 1.8e19)
        return -EINVAL;
    *bytes = (uint64_t)llround(r);
    return 0;
}

int core_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcasecmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int core_parse_time(const char *s, int64_t now_ms, int64_t *ms)
{
    if (!s || !*s)
        return -EINVAL;
    if (!strcmp(s, "now")) {
        *ms = now_ms;
        return 0;
    }
    int64_t ago;
    if (!strncmp(s, "now-", 4)) {
        if (core_parse_duration(s + 4, &ago))
            return -EINVAL;
        *ms = now_ms - ago;
        return 0;
    }
    /* A plain number is an epoch in seconds; with a unit it is "that long ago". */
    double v;
    const char *end;
    if (parse_number(s, &v, &end))
        return -EINVAL;
    if (*end == 0) {
        if (v > 4.0e11) /* past year 14000: probably milliseconds, refuse */
            return -EINVAL;
        *ms = (int64_t)llround(v * 1000.0);
        return 0;
    }
    if (core_parse_duration(s, &ago))
        return -EINVAL;
    *ms = now_ms - ago;
    return 0;
}

void core_format_duration(int64_t ms, char *buf, size_t n)
{
    static const struct { char unit; int64_t ms; } parts[] = {
        {'d', 86400000}, {'h', 3600000}, {'m', 60000}, {'s', 1000},
    };
    if (ms < 1000) {
        snprintf(buf, n, "%lldms", (long long)ms);
        return;
    }
    size_t used = 0;
    buf[0] = 0;
    for (size_t i = 0; i < 4 && used < n; i++) {
        int64_t q = ms / parts[i].ms;
        if (q) {
            int w = snprintf(buf + used, n - used, "%lld%c", (long long)q, parts[i].unit);
            if (w < 0)
                break;
            used += (size_t)w;
            ms -= q * parts[i].ms;
        }
    }
}

int core_sncpy(char *dst, size_t n, const char *src)
{
    if (!n)
        return -ENAMETOOLONG;
    size_t len = strlen(src);
    if (len >= n) {
        memcpy(dst, src, n - 1);
        dst[n - 1] = 0;
        return -ENAMETOOLONG;
    }
    memcpy(dst, src, len + 1);
    return 0;
}

char *core_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        s[--len] = 0;
    return s;
}

size_t core_utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t k;
    unsigned min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        k = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        k = 4, min = 0x10000;
    else
        return 0;
    unsigned cp = c & (0x3fu >> (k - 1));
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return k;
}

void core_prom_escape(const char *s, bool quote, void (*put)(void *ud, const char *p, size_t n), void *ud)
{
    const char *run = s; /* runs without specials go out in one piece */
    while (*s) {
        const char *rep = NULL;
        size_t skip = 1;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        else if ((unsigned char)*s >= 0x80 && (skip = core_utf8_len((const unsigned char *)s)) == 0) {
            rep = "\xef\xbf\xbd";
            for (skip = 1; s[skip] && (unsigned char)s[skip] >= 0x80 &&
                           !core_utf8_len((const unsigned char *)s + skip); skip++)
                ;
        }
        if (!rep) {
            s += skip;
            continue;
        }
        put(ud, run, (size_t)(s - run));
        put(ud, rep, strlen(rep));
        s += skip;
        run = s;
    }
    put(ud, run, (size_t)(s - run));
}

ssize_t core_read_file(const char *path, char *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got + 1 < n) {
        ssize_t r = read(fd, buf + got, n - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = 0;
    close(fd);
    return (ssize_t)got;
}

int core_mkdir_p(const char *path, int mode)
{
    char tmp[CORE_PATH_MAX];
    if (core_sncpy(tmp, sizeof tmp, path))
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, (mode_t)mode) && errno != EEXIST)
        return -errno;
    struct stat st;
    if (stat(tmp, &st))
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

char *core_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0, r;
    char chunk[8192];
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (n + r + 1 > cap) {
            cap = (n + r + 1) * 2;
            char *g = realloc(buf, cap);
            if (!g) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = g;
        }
        memcpy(buf + n, chunk, r);
        n += r;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    if (!buf && !(buf = calloc(1, 1)))
        return NULL;
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int core_write_temp(const char *path, const void *data, size_t len, char *tmp, size_t tmplen, char *err,
                    size_t errlen)
{
    struct stat st;
    bool had = stat(path, &st) == 0;
    mode_t mode = had ? (st.st_mode & 07777) : 0644;
    if (snprintf(tmp, tmplen, "%s.ippoc-XXXXXX", path) >= (int)tmplen) {
        snprintf(err, errlen, "%s: path too long", path);
        return -ENAMETOOLONG;
    }
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: cannot create a temporary file: %s", path, strerror(e));
        return -e;
    }
    int rc = 0;
    for (size_t off = 0; off < len && !rc;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno != EINTR)
            rc = -errno;
        else if (w > 0)
            off += (size_t)w;
    }
    if (!rc && (fchmod(fd, mode) || fsync(fd)))
        rc = -errno;
    if (!rc && had && fchown(fd, st.st_uid, st.st_gid) && errno != EPERM)
        rc = -errno; /* keep the owner (postgres' conf.d file stays postgres'); unprivileged: ours */
    if (close(fd) && !rc)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-rc));
    }
    return rc;
}

int core_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    char tmp[CORE_PATH_MAX + 32];
    int rc = core_write_temp(path, data, len, tmp, sizeof tmp, err, errlen);
    if (rc)
        return rc;
    if (rename(tmp, path)) {
        rc = -errno;
        unlink(tmp);
        snprintf(err, errlen, "%s: cannot replace it: %s", path, strerror(-rc));
    }
    return rc;
}

time_t core_mktime(struct tm *tm)
{
    struct tm g = *tm;
    time_t as_utc = timegm(&g);
    if (as_utc == (time_t)-1)
        return -1;
    /* Two rounds: the offset at the guess, then at the result (a DST edge). */
    time_t t = as_utc;
    struct tm l;
    for (int i = 0; i < 2; i++) {
        if (!localtime_r(&t, &l))
            return -1;
        t = as_utc - l.tm_gmtoff;
    }
    if (!localtime_r(&t, tm))
        return -1;
    return t;
}
