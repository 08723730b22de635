/* journal.c: follows the systemd journal through libsystemd's sd-journal on
 * the libuv loop: sd_journal_get_fd() is polled, sd_journal_process() tells
 * what changed, and the new entries are read in bounded batches (the rest on
 * the next loop iteration). Each entry goes to the callback with its unit, identifier,
 * message, priority and time; the watch (logwatch.c) groups them by unit.
 * Built without libsystemd, opening says so (-ENOTSUP). */
#include "logs/watch_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

const char *logs_priority_level(int priority)
{
    if (priority < 0)
        return "info";
    return priority <= 3 ? "error" : priority == 4 ? "warning" : "info";
}

#ifdef IPPOC_HAVE_SYSTEMD
#include <systemd/sd-journal.h>

#define ENTRY_BUDGET 2000 /* entries per loop iteration */

struct logs_journal {
    sd_journal *j;
    logs_journal_fn fn;
    void *ud;
    uv_poll_t poll;
    uv_idle_t more; /* more to read: once per loop iteration (a 0 ms timer would rerun at once) */
    bool has_poll;
    int open_handles;
    bool closing;
};

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A field's value ("MESSAGE=..." minus the name) or NULL. */
static const char *field(sd_journal *j, const char *name, size_t *len)
{
    const void *d;
    size_t l, nl = strlen(name);
    if (sd_journal_get_data(j, name, &d, &l) < 0 || l <= nl)
        return NULL;
    *len = l - nl - 1;
    return (const char *)d + nl + 1;
}

static void copy_field(sd_journal *j, const char *name, char *out, size_t n, bool *have)
{
    size_t l;
    const char *v = field(j, name, &l);
    *have = v != NULL;
    if (!v)
        return;
    if (l >= n)
        l = n - 1;
    memcpy(out, v, l);
    out[l] = 0;
}

static void read_entry(logs_journal *lj)
{
    char unit[256], ident[128], prio[8], pid[24];
    bool hu, hi, hp, hpid;
    size_t mlen;
    copy_field(lj->j, "_PID", pid, sizeof pid, &hpid);
    if (hpid && atol(pid) == (long)getpid())
        return; /* ippocd's own log lines (log_target = syslog) are not evidence */
    /* the message points into sd-journal's buffer: copy the others first */
    copy_field(lj->j, "_SYSTEMD_UNIT", unit, sizeof unit, &hu);
    copy_field(lj->j, "SYSLOG_IDENTIFIER", ident, sizeof ident, &hi);
    copy_field(lj->j, "PRIORITY", prio, sizeof prio, &hp);
    uint64_t usec = 0;
    sd_journal_get_realtime_usec(lj->j, &usec);
    const char *msg = field(lj->j, "MESSAGE", &mlen);
    if (!msg)
        return;
    int p = hp && prio[0] >= '0' && prio[0] <= '7' && !prio[1] ? prio[0] - '0' : -1;
    lj->fn(lj->ud, hu ? unit : NULL, hi ? ident : NULL, msg, mlen, p, (int64_t)(usec / 1000));
}

static void on_more(uv_idle_t *t)
{
    uv_idle_stop(t);
    logs_journal_pump(t->data);
}

int logs_journal_pump(logs_journal *lj)
{
    int n = 0;
    for (; n < ENTRY_BUDGET; n++) {
        int r = sd_journal_next(lj->j);
        if (r < 0)
            return r;
        if (r == 0)
            return n;
        read_entry(lj);
    }
    if (!lj->closing)
        uv_idle_start(&lj->more, on_more);
    return n;
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    logs_journal *lj = h->data;
    sd_journal_process(lj->j);
    logs_journal_pump(lj);
}

int logs_journal_open(uv_loop_t *loop, const char *dir, bool from_start, logs_journal_fn fn, void *ud,
                      logs_journal **out, char *err, size_t errlen)
{
    *out = NULL;
    if (dir ? !is_dir(dir) : !is_dir("/run/log/journal") && !is_dir("/var/log/journal")) {
        snprintf(err, errlen, "no journal in %s", dir ? dir : "/run/log/journal or /var/log/journal");
        return -ENOENT;
    }
    logs_journal *lj = calloc(1, sizeof *lj);
    if (!lj) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int r = dir ? sd_journal_open_directory(&lj->j, dir, 0) : sd_journal_open(&lj->j, SD_JOURNAL_LOCAL_ONLY);
    if (r < 0) {
        snprintf(err, errlen, "cannot open the journal%s%s: %s", dir ? " in " : "", dir ? dir : "", strerror(-r));
        free(lj);
        return r;
    }
    sd_journal_set_data_threshold(lj->j, LOGS_LINE_MAX + 64);
    if (from_start) {
        sd_journal_seek_head(lj->j);
    } else {
        sd_journal_seek_tail(lj->j);
        if (sd_journal_previous(lj->j) <= 0) /* empty: whatever comes is new */
            sd_journal_seek_head(lj->j);     /* (from the tail it would start at the last one) */
    }
    lj->fn = fn;
    lj->ud = ud;
    uv_idle_init(loop, &lj->more);
    lj->more.data = lj;
    lj->open_handles = 1;
    int fd = sd_journal_get_fd(lj->j);
    if (fd >= 0 && uv_poll_init(loop, &lj->poll, fd) == 0) {
        lj->poll.data = lj;
        lj->has_poll = true;
        lj->open_handles++;
        uv_poll_start(&lj->poll, UV_READABLE, on_readable);
    } else { /* the watch's once-a-second pump still reads it */
        log_warn("logs: the journal gives no descriptor to wait on (%s): read once a second",
                 fd < 0 ? strerror(-fd) : "libuv refused it");
    }
    *out = lj;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    logs_journal *lj = h->data;
    if (--lj->open_handles == 0) {
        sd_journal_close(lj->j);
        free(lj);
    }
}

void logs_journal_close(logs_journal *lj)
{
    if (!lj)
        return;
    lj->closing = true;
    uv_close((uv_handle_t *)&lj->more, on_closed);
    if (lj->has_poll)
        uv_close((uv_handle_t *)&lj->poll, on_closed);
}

#else /* no libsystemd */

int logs_journal_open(uv_loop_t *loop, const char *dir, bool from_start, logs_journal_fn fn, void *ud,
                      logs_journal **out, char *err, size_t errlen)
{
    *out = NULL;
    snprintf(err, errlen, "built without libsystemd (install libsystemd-dev and rebuild)");
    return -ENOTSUP;
}

int logs_journal_pump(logs_journal *j)
{
    return 0;
}

void logs_journal_close(logs_journal *j)
{
}

#endif
