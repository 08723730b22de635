/* follow.c: follows log files like `tail -F`, on the libuv loop.
 *
 * One inotify instance (on a uv_poll) watches the directory of each pattern,
 * which reports appends, creations, renames and deletions of the files in it.
 * Each pattern is a path or a glob; it has a list of open files:
 *  - an existing file is read from its end (no history replayed) unless
 *    asked, a file that appears later from its beginning;
 *  - rotation by rename (the path names another inode): the old file is
 *    kept open and read to its end, until it has not grown for
 *    LOGS_DRAIN_GRACE_MS (a writer may still be writing to it), then closed;
 *    the new one is read from its beginning; a glob follows a renamed file
 *    that still matches under its new name;
 *  - copy and truncate (the size went below what was read): from 0 again;
 *  - deletion: the open file is drained as for a rename, and the path is
 *    picked up again when it comes back;
 * Work is bounded: at most LOGS_READ_BUDGET bytes per pattern (a path or a
 * glob, whatever its number of files) per loop iteration (the rest on the next loop iteration, through an idle handle, so other
 * handles run in between),
 * lines longer than LOGS_LINE_MAX are cut (and counted). A stat-based check
 * of every pattern once a second (logs_follow_poll) catches what inotify
 * does not (directories that appear later, files moved out of view). */
#include "logs/watch_int.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define READ_CHUNK 65536
#define DIR_EVENTS (IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CLOSE_WRITE | IN_ATTRIB)

typedef struct lf_file {
    char *path;
    int fd;
    dev_t dev;
    ino_t ino;
    off_t off;
    bool draining;       /* rotated or deleted: read to its end, then closed */
    int64_t idle_since;  /* draining: at its end since (mono ms), 0 = not at its end */
    char *part;          /* the line being assembled (LOGS_LINE_MAX bytes) */
    size_t plen;
    bool skipping;       /* past LOGS_LINE_MAX: dropping up to the next newline */
    struct lf_file *next;
} lf_file;

typedef struct lf_pat {
    char *pattern;
    char *dir;           /* the part before the last '/' */
    bool glob;
    void *owner;
    bool from_start;
    bool scanned;        /* the first look is done: later files are new */
    bool dirty;          /* its directory reported something */
    int wd;              /* inotify watch of dir, -1 when none (yet) */
    lf_file *files;
    struct lf_pat *next;
} lf_pat;

struct logs_follow {
    uv_loop_t *loop;
    logs_follow_fn fn;
    void *ud;
    int ifd;
    uv_poll_t poll;
    uv_idle_t more; /* more to read: once per loop iteration (a 0 ms timer would rerun at once) */
    bool has_poll;
    int open_handles;
    bool freeing;
    lf_pat *pats;
    uint64_t lines, bytes, cut_lines;
    char buf[READ_CHUNK];
};

/* ---- lines ------------------------------------------------------------------------ */

static void emit(logs_follow *f, lf_pat *p, lf_file *x, const char *s, size_t n, bool cut)
{
    if (n && s[n - 1] == '\r')
        n--;
    f->lines++;
    if (cut)
        f->cut_lines++;
    f->fn(f->ud, p->owner, x->path, s, n, cut);
}

/* Splits new bytes into lines, joining with the partial line kept from before. */
static void feed(logs_follow *f, lf_pat *p, lf_file *x, const char *s, size_t n)
{
    while (n) {
        const char *nl = memchr(s, '\n', n);
        size_t len = nl ? (size_t)(nl - s) : n;
        size_t step = nl ? len + 1 : n;
        if (x->skipping) {
            if (nl)
                x->skipping = false;
        } else if (x->plen == 0 && nl && len <= LOGS_LINE_MAX) {
            emit(f, p, x, s, len, false); /* the common case: no copy */
        } else if (x->plen + len > LOGS_LINE_MAX) {
            size_t room = LOGS_LINE_MAX - x->plen;
            if (x->plen == 0) {
                emit(f, p, x, s, LOGS_LINE_MAX, true);
            } else {
                memcpy(x->part + x->plen, s, room);
                emit(f, p, x, x->part, LOGS_LINE_MAX, true);
            }
            x->plen = 0;
            x->skipping = !nl;
        } else {
            if (!x->part && !(x->part = malloc(LOGS_LINE_MAX)))
                return; /* out of memory: this piece is lost */
            memcpy(x->part + x->plen, s, len);
            x->plen += len;
            if (nl) {
                emit(f, p, x, x->part, x->plen, false);
                x->plen = 0;
            }
        }
        s += step;
        n -= step;
    }
}

/* ---- files ------------------------------------------------------------------------ */

static void file_free(lf_file *x)
{
    if (x->fd >= 0)
        close(x->fd);
    free(x->path);
    free(x->part);
    free(x);
}

/* Opens path and appends it to p's files; from 0, or from its end when at_end. */
static lf_file *file_open(lf_pat *p, const char *path, bool at_end)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return NULL;
    struct stat st;
    lf_file *x = calloc(1, sizeof *x);
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || !x || !(x->path = strdup(path))) {
        close(fd);
        free(x);
        return NULL;
    }
    x->fd = fd;
    x->dev = st.st_dev;
    x->ino = st.st_ino;
    x->off = at_end ? st.st_size : 0;
    lf_file **tail = &p->files;
    while (*tail)
        tail = &(*tail)->next;
    *tail = x;
    return x;
}

/* Reads what is new in x, at most *budget bytes (taken from it). Returns
 * true when more may be waiting (the budget ran out first). */
static bool file_read(logs_follow *f, lf_pat *p, lf_file *x, size_t *budget)
{
    while (*budget > 0) {
        size_t want = *budget < sizeof f->buf ? *budget : sizeof f->buf;
        ssize_t n = pread(x->fd, f->buf, want, x->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        x->off += n;
        f->bytes += (uint64_t)n;
        *budget -= (size_t)n;
        x->idle_since = 0;
        feed(f, p, x, f->buf, (size_t)n);
    }
    return true;
}

/* Removes the drained files that have been at their end long enough (their
 * unfinished last line is passed on as a line). */
static void reap_drained(logs_follow *f, lf_pat *p, int64_t now)
{
    for (lf_file **pp = &p->files; *pp;) {
        lf_file *x = *pp;
        if (x->draining && x->idle_since && now - x->idle_since >= LOGS_DRAIN_GRACE_MS) {
            if (x->plen && !x->skipping)
                emit(f, p, x, x->part, x->plen, false);
            *pp = x->next;
            file_free(x);
        } else {
            pp = &x->next;
        }
    }
}

/* Reads the files of p (draining ones first: they are older), at most
 * LOGS_READ_BUDGET bytes in all. True when the budget ran out. */
static bool pat_read(logs_follow *f, lf_pat *p)
{
    bool more = false;
    size_t budget = LOGS_READ_BUDGET;
    int64_t now = core_mono_ms();
    for (int pass = 0; pass < 2; pass++)
        for (lf_file *x = p->files; x; x = x->next) {
            if (x->draining != (pass == 0))
                continue;
            if (budget == 0 || file_read(f, p, x, &budget))
                more = true;
            else if (x->draining && !x->idle_since)
                x->idle_since = now;
        }
    reap_drained(f, p, now);
    return more;
}

/* ---- patterns: what is there now -------------------------------------------------- */

static lf_file *current_file(lf_pat *p)
{
    for (lf_file *x = p->files; x; x = x->next)
        if (!x->draining)
            return x;
    return NULL;
}

static void check_truncated(lf_file *x, off_t size)
{
    if (size < x->off) { /* copy and truncate: start again */
        x->off = 0;
        x->plen = 0;
        x->skipping = false;
    }
}

static void scan_path(lf_pat *p)
{
    struct stat st;
    lf_file *cur = current_file(p);
    bool there = stat(p->pattern, &st) == 0 && S_ISREG(st.st_mode);
    if (cur && (!there || st.st_ino != cur->ino || st.st_dev != cur->dev)) {
        cur->draining = true; /* renamed away or deleted: read it to its end */
        cur = NULL;
    }
    if (cur)
        check_truncated(cur, st.st_size);
    else if (there)
        file_open(p, p->pattern, !p->scanned && !p->from_start);
}

typedef struct match {
    const char *path;
    struct stat st;
    bool claimed;
} match;

static void scan_glob(lf_pat *p)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    int rc = glob(p->pattern, GLOB_NOSORT, NULL, &g);
    size_t n = rc == 0 ? g.gl_pathc : 0;
    match *m = n ? calloc(n, sizeof *m) : NULL;
    size_t k = 0;
    for (size_t i = 0; m && i < n; i++)
        if (stat(g.gl_pathv[i], &m[k].st) == 0 && S_ISREG(m[k].st.st_mode))
            m[k++].path = g.gl_pathv[i];
    /* each open file follows its inode; one that left the matches drains */
    for (lf_file *x = p->files; x; x = x->next) {
        if (x->draining)
            continue;
        size_t i = 0;
        while (i < k && (m[i].claimed || m[i].st.st_ino != x->ino || m[i].st.st_dev != x->dev))
            i++;
        if (i == k) {
            x->draining = true;
            continue;
        }
        m[i].claimed = true;
        check_truncated(x, m[i].st.st_size);
        if (strcmp(x->path, m[i].path)) {
            char *np = strdup(m[i].path);
            if (np) {
                free(x->path);
                x->path = np;
            }
        }
    }
    for (size_t i = 0; i < k; i++)
        if (!m[i].claimed)
            file_open(p, m[i].path, !p->scanned && !p->from_start);
    free(m);
    globfree(&g);
}

static void add_dir_watch(logs_follow *f, lf_pat *p)
{
    if (p->wd >= 0 || f->ifd < 0 || strpbrk(p->dir, "*?["))
        return;
    p->wd = inotify_add_watch(f->ifd, p->dir[0] ? p->dir : "/", DIR_EVENTS | IN_ONLYDIR);
    if (p->wd < 0)
        p->wd = -1; /* the directory is not there (yet): the poll tries again */
}

static void pat_scan(logs_follow *f, lf_pat *p)
{
    add_dir_watch(f, p);
    if (p->glob)
        scan_glob(p);
    else
        scan_path(p);
    p->scanned = true;
}

/* ---- the loop side ----------------------------------------------------------------- */

static void read_all(logs_follow *f);

static void on_more(uv_idle_t *t)
{
    uv_idle_stop(t);
    read_all(t->data);
}

static void read_all(logs_follow *f)
{
    bool more = false;
    for (lf_pat *p = f->pats; p; p = p->next)
        if (pat_read(f, p))
            more = true;
    if (more && !f->freeing)
        uv_idle_start(&f->more, on_more);
}

static void on_inotify(uv_poll_t *h, int status, int events)
{
    logs_follow *f = h->data;
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool all = status < 0;
    for (;;) {
        ssize_t n = read(f->ifd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *ev = (struct inotify_event *)q;
            if (ev->mask & IN_Q_OVERFLOW)
                all = true;
            for (lf_pat *p = f->pats; p; p = p->next)
                if (p->wd == ev->wd) {
                    p->dirty = true;
                    if (ev->mask & IN_IGNORED) /* the directory went away */
                        p->wd = -1;
                }
            q += sizeof *ev + ev->len;
        }
    }
    for (lf_pat *p = f->pats; p; p = p->next)
        if (p->dirty || all) {
            p->dirty = false;
            pat_scan(f, p);
        }
    read_all(f);
}

void logs_follow_poll(logs_follow *f)
{
    for (lf_pat *p = f->pats; p; p = p->next)
        pat_scan(f, p);
    read_all(f);
}

int logs_follow_new(uv_loop_t *loop, logs_follow_fn fn, void *ud, logs_follow **out, char *err, size_t errlen)
{
    logs_follow *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    f->loop = loop;
    f->fn = fn;
    f->ud = ud;
    f->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (f->ifd < 0) /* no inotify (limits): the once-a-second poll still follows */
        log_warn("logs: inotify: %s: files are checked once a second instead", strerror(errno));
    uv_idle_init(loop, &f->more);
    f->more.data = f;
    f->open_handles = 1;
    if (f->ifd >= 0 && uv_poll_init(loop, &f->poll, f->ifd) == 0) {
        f->poll.data = f;
        f->open_handles++;
        f->has_poll = true;
        if (uv_poll_start(&f->poll, UV_READABLE, on_inotify))
            log_warn("logs: cannot watch the inotify descriptor: files are checked once a second instead");
    }
    *out = f;
    return 0;
}

int logs_follow_add(logs_follow *f, const char *path, void *owner, bool from_start, char *err, size_t errlen)
{
    if (path[0] != '/') {
        snprintf(err, errlen, "%s: not an absolute path", path);
        return -EINVAL;
    }
    lf_pat *p = calloc(1, sizeof *p);
    if (!p || !(p->pattern = strdup(path)) || !(p->dir = strdup(path))) {
        if (p)
            free(p->pattern);
        free(p);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *strrchr(p->dir, '/') = 0;
    p->glob = strpbrk(path, "*?[") != NULL;
    p->owner = owner;
    p->from_start = from_start;
    p->wd = -1;
    lf_pat **tail = &f->pats;
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    pat_scan(f, p);
    if (pat_read(f, p))
        uv_idle_start(&f->more, on_more);
    return 0;
}

static void pat_free(logs_follow *f, lf_pat *p)
{
    if (p->wd >= 0 && f->ifd >= 0) {
        bool shared = false; /* inotify gives one wd per directory */
        for (lf_pat *q = f->pats; q; q = q->next)
            shared |= q != p && q->wd == p->wd;
        if (!shared)
            inotify_rm_watch(f->ifd, p->wd);
    }
    while (p->files) {
        lf_file *x = p->files;
        p->files = x->next;
        file_free(x);
    }
    free(p->pattern);
    free(p->dir);
    free(p);
}

void logs_follow_remove(logs_follow *f, void *owner)
{
    for (lf_pat **pp = &f->pats; *pp;) {
        lf_pat *p = *pp;
        if (p->owner == owner) {
            *pp = p->next;
            pat_free(f, p);
        } else {
            pp = &p->next;
        }
    }
}

void logs_follow_get_stats(const logs_follow *f, logs_follow_stats *st)
{
    memset(st, 0, sizeof *st);
    st->lines = f->lines;
    st->bytes = f->bytes;
    st->cut_lines = f->cut_lines;
    for (lf_pat *p = f->pats; p; p = p->next) {
        st->patterns++;
        for (lf_file *x = p->files; x; x = x->next)
            st->files++;
    }
}

static void on_closed(uv_handle_t *h)
{
    logs_follow *f = h->data;
    if (--f->open_handles == 0) {
        if (f->ifd >= 0)
            close(f->ifd);
        free(f);
    }
}

void logs_follow_free(logs_follow *f)
{
    if (!f)
        return;
    f->freeing = true;
    while (f->pats) {
        lf_pat *p = f->pats;
        f->pats = p->next;
        p->wd = -1; /* the inotify fd goes with all its watches */
        pat_free(f, p);
    }
    uv_close((uv_handle_t *)&f->more, on_closed);
    if (f->has_poll)
        uv_close((uv_handle_t *)&f->poll, on_closed);
}
