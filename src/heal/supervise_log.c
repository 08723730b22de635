/* supervise_log.c: the per-service log file: one timestamped line per line a
 * service wrote, rotated by size (name.log -> name.log.1 -> ... .N), and the
 * tail of it across rotated files for incident evidence.
 *
 * Writes go to the page cache with plain write(2), never fsync, so they are
 * cheap enough for the loop thread. */
#include "heal/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

int heal_svc_log_open(heal_svc_log *l, const char *path, uint64_t max, int keep)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    if (core_sncpy(l->path, sizeof l->path, path))
        return -ENAMETOOLONG;
    l->max = max ? max : 1024 * 1024;
    l->keep = keep < 0 ? 0 : keep;
    l->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (l->fd < 0)
        return -errno;
    struct stat st;
    if (fstat(l->fd, &st) == 0)
        l->size = (uint64_t)st.st_size;
    return 0;
}

void heal_svc_log_close(heal_svc_log *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
}

static void rotated_name(char *out, size_t n, const char *path, int i)
{
    if (i == 0)
        snprintf(out, n, "%s", path);
    else
        snprintf(out, n, "%s.%d", path, i);
}

static void rotate(heal_svc_log *l)
{
    char from[CORE_PATH_MAX + 16], to[CORE_PATH_MAX + 16];
    heal_svc_log_close(l);
    if (l->keep == 0) {
        unlink(l->path);
    } else {
        rotated_name(to, sizeof to, l->path, l->keep);
        unlink(to);
        for (int i = l->keep - 1; i >= 0; i--) {
            rotated_name(from, sizeof from, l->path, i);
            rotated_name(to, sizeof to, l->path, i + 1);
            rename(from, to); /* a missing one is fine */
        }
    }
    l->fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_TRUNC | O_CLOEXEC, 0640);
    l->size = 0;
}

void heal_svc_log_line(heal_svc_log *l, const char *tag, const char *line, size_t len)
{
    if (len > LINE_MAX_BYTES)
        len = LINE_MAX_BYTES;
    char ts[64];
    int64_t now = core_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t tl = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    tl += (size_t)snprintf(ts + tl, sizeof ts - tl, ".%03dZ ", (int)(now % 1000));
    char sep[] = ": ", nl[] = "\n";
    struct iovec v[5] = {
        {ts, tl},
        {(void *)(tag ? tag : ""), tag ? strlen(tag) : 0},
        {sep, tag ? 2 : 0},
        {(void *)line, len},
        {nl, 1},
    };
    uint64_t total = 0;
    for (int i = 0; i < 5; i++)
        total += v[i].iov_len;
    if (l->size > 0 && l->size + total > l->max)
        rotate(l);
    if (l->fd < 0)
        return;
    ssize_t w = writev(l->fd, v, 5);
    if (w > 0)
        l->size += (uint64_t)w;
}

void heal_svc_log_printf(heal_svc_log *l, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (w < 0)
        return;
    size_t len = (size_t)w < sizeof buf ? (size_t)w : sizeof buf - 1;
    heal_svc_log_line(l, "ippocd", buf, len);
}

/* Reads the last up to `cap` bytes of a file into out; returns the count. */
static ssize_t read_tail(const char *path, char *out, size_t cap, bool *cut)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return -e;
    }
    off_t off = st.st_size > (off_t)cap ? st.st_size - (off_t)cap : 0;
    *cut = off > 0;
    size_t got = 0;
    while (got < cap) {
        ssize_t r = pread(fd, out + got, cap - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return (ssize_t)got;
}

ssize_t heal_svc_log_tail(const char *path, int keep, int nlines, char *buf, size_t n)
{
    if (!n)
        return -EINVAL;
    buf[0] = 0;
    if (nlines <= 0)
        return 0;
    size_t cap = n - 1;
    /* Gather newest-first into the end of a scratch buffer, then keep the
     * last nlines complete lines. */
    char *scratch = malloc(cap + 1);
    if (!scratch)
        return -ENOMEM;
    size_t have = 0; /* bytes at scratch + cap - have */
    int lines = 0;
    bool any = false, cut = false;
    for (int i = 0; i <= keep && have < cap && lines <= nlines; i++) {
        char name[CORE_PATH_MAX + 16];
        rotated_name(name, sizeof name, path, i);
        char *tmp = malloc(cap - have + 1);
        if (!tmp)
            break;
        ssize_t r = read_tail(name, tmp, cap - have, &cut);
        if (r < 0) {
            free(tmp);
            if (i == 0 && r != -ENOENT) {
                free(scratch);
                return r;
            }
            continue;
        }
        any = true;
        memcpy(scratch + cap - have - (size_t)r, tmp, (size_t)r);
        free(tmp);
        have += (size_t)r;
        lines = 0;
        for (size_t k = cap - have; k < cap; k++)
            if (scratch[k] == '\n')
                lines++;
    }
    if (!any) {
        free(scratch);
        return -ENOENT;
    }
    char *start = scratch + cap - have, *end = scratch + cap;
    /* Walk back nlines newlines from the end (the last byte is usually '\n'). */
    char *p = end;
    int seen = 0;
    if (p > start && p[-1] == '\n')
        p--;
    while (p > start) {
        if (p[-1] == '\n' && ++seen == nlines)
            break;
        p--;
    }
    if (p == start && cut) {
        /* the oldest bytes read start mid-line: drop that partial line */
        char *nl = memchr(start, '\n', (size_t)(end - start));
        p = nl ? nl + 1 : end;
    }
    size_t len = (size_t)(end - p);
    memcpy(buf, p, len);
    buf[len] = 0;
    free(scratch);
    return (ssize_t)len;
}
