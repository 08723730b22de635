/* changes.c: recent changes as incident evidence: packages installed,
 * upgraded or removed (dpkg's log), heal's own actions on the service (the
 * audit log), files changed in the service's config paths (healx's
 * file.changed events) and configuration reloads (config.reload events).
 * Files are read from their tail only; malformed lines are skipped and
 * counted in a note, never fatal. */
#include "brain/signature.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TAIL_BYTES (1 << 20)

void brain_sig_note(json_t *notes, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(notes, json_string(buf));
}

/* The last `max` bytes of path, from the first whole line: malloc'd, NUL-terminated. */
static char *read_tail(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = brain_read_tail_fd(fd, max, len, err, errlen);
    if (!buf && strstr(err, "not a regular file"))
        snprintf(err, errlen, "%s is not a regular file", path);
    close(fd);
    return buf;
}

char *brain_read_tail_fd(int fd, size_t max, size_t *len, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        return NULL;
    }
    off_t start = st.st_size > (off_t)max ? st.st_size - (off_t)max : 0;
    size_t cap = (size_t)(st.st_size - start), got = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    while (got < cap) {
        ssize_t n = pread(fd, buf + got, cap - got, start + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = 0;
    size_t skip = 0;
    if (start > 0) { /* the first line is likely cut */
        char *nl = memchr(buf, '\n', got);
        skip = nl ? (size_t)(nl + 1 - buf) : got;
    }
    memmove(buf, buf + skip, got - skip + 1);
    *len = got - skip;
    return buf;
}

static json_t *change(const char *kind, const char *what, int64_t ts, json_t *detail)
{
    return json_pack("{s:s, s:s, s:I, s:o}", "kind", kind, "what", what, "ts", (json_int_t)ts, "detail",
                     detail ? detail : json_object());
}

/* ---- dpkg ----------------------------------------------------------------------------------- */

/* "2026-12-04 12:00:00 upgrade libfoo:amd64 1.0 1.1" -> 0, 1 (not a package change), or -1 (bad). */
static int dpkg_line(char *line, int64_t *ts, char **act, char **pkg, char **old, char **new)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    char *rest = strptime(line, "%Y-%m-%d %H:%M:%S ", &tm);
    if (!rest)
        return -1;
    tm.tm_isdst = -1;
    time_t t = core_mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *ts = (int64_t)t * 1000;
    char *save = NULL;
    *act = strtok_r(rest, " \t", &save);
    if (!*act)
        return -1;
    if (strcmp(*act, "install") && strcmp(*act, "upgrade") && strcmp(*act, "remove") && strcmp(*act, "purge"))
        return 1; /* status, configure, trigproc, startup: not a change of its own */
    *pkg = strtok_r(NULL, " \t", &save);
    *old = strtok_r(NULL, " \t", &save);
    *new = strtok_r(NULL, " \t", &save);
    return *pkg && *old && *new ? 0 : -1;
}

int brain_changes_dpkg(const char *path, int64_t from_ms, int64_t to_ms, int64_t deadline_mono, json_t *out,
                       json_t *notes)
{
    size_t len;
    char err[300];
    char *buf = read_tail(path, TAIL_BYTES, &len, err, sizeof err);
    if (!buf) {
        brain_sig_note(notes, "packages: %s", err);
        return -ENOENT;
    }
    int bad = 0;
    long first_bad = 0, lineno = 0;
    for (char *p = buf, *e = buf + len; p < e; lineno++) {
        if ((lineno & 255) == 0 && brain_sig_mono_ms() >= deadline_mono) {
            brain_sig_note(notes, "packages: deadline reached while reading %s", path);
            break;
        }
        char *nl = memchr(p, '\n', (size_t)(e - p));
        if (nl)
            *nl = 0;
        char *line = p;
        p = nl ? nl + 1 : e;
        if (!line[0])
            continue;
        int64_t ts;
        char *act, *pkg, *old, *new;
        int rc = dpkg_line(line, &ts, &act, &pkg, &old, &new);
        if (rc < 0) {
            if (!bad++)
                first_bad = lineno + 1;
            continue;
        }
        if (rc > 0 || ts < from_ms || ts > to_ms)
            continue;
        char name[256];
        snprintf(name, sizeof name, "%s", pkg);
        char *colon = strchr(name, ':');
        const char *arch = "";
        if (colon) {
            *colon = 0;
            arch = colon + 1;
        }
        json_t *d = json_pack("{s:s, s:s, s:s, s:s, s:s}", "action", act, "package", name, "arch", arch, "old",
                              old, "new", new);
        json_array_append_new(out, change("package", name, ts, d));
    }
    if (bad)
        brain_sig_note(notes, "packages: %s: %d malformed line(s) skipped (first: line %ld of the tail read)", path, bad,
             first_bad);
    free(buf);
    return 0;
}

/* ---- audit ---------------------------------------------------------------------------------- */

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

int brain_changes_audit(const char *path, const char *service, int64_t from_ms, int64_t to_ms,
                        int64_t deadline_mono, json_t *out, json_t *notes)
{
    size_t len;
    char err[300];
    char *buf = read_tail(path, TAIL_BYTES, &len, err, sizeof err);
    if (!buf) {
        brain_sig_note(notes, "audit: %s", err);
        return -ENOENT;
    }
    int bad = 0;
    long lineno = 0;
    for (char *p = buf, *e = buf + len; p < e; lineno++) {
        if ((lineno & 63) == 0 && brain_sig_mono_ms() >= deadline_mono) {
            brain_sig_note(notes, "audit: deadline reached while reading %s", path);
            break;
        }
        char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t ll = (size_t)((nl ? nl : e) - p);
        char *line = p;
        p = nl ? nl + 1 : e;
        if (!ll)
            continue;
        /* cheap filters before parsing: the service's name must be in the line */
        if (!memmem(line, ll, service, strlen(service)))
            continue;
        json_t *o = json_loadb(line, ll, 0, NULL);
        json_int_t ts = json_integer_value(json_object_get(o, "ts"));
        if (!json_is_object(o) || !json_is_integer(json_object_get(o, "ts"))) {
            bad++;
            json_decref(o);
            continue;
        }
        const char *kind = jstr(o, "kind");
        bool wanted = !strcmp(kind, "result") || !strcmp(kind, "decision") || !strcmp(kind, "approval") ||
                      !strcmp(kind, "rejection");
        if (!wanted || strcmp(jstr(o, "service"), service) || ts < from_ms || ts > to_ms) {
            json_decref(o);
            continue;
        }
        json_t *act = json_object_get(o, "action");
        const char *text = jstr(act, "text");
        json_t *d = json_pack("{s:I, s:s, s:s, s:s}", "seq", json_integer_value(json_object_get(o, "seq")), "record",
                              kind, "action", jstr(act, "kind"), "reason", jstr(o, "reason"));
        if (d && json_object_get(o, "verdict"))
            json_object_set(d, "verdict", json_object_get(o, "verdict"));
        json_t *oc = json_object_get(o, "outcome");
        if (d && oc)
            json_object_set_new(d, "outcome", json_string(jstr(oc, "status")));
        json_array_append_new(out, change("audit", text[0] ? text : jstr(act, "kind"), ts, d));
        json_decref(o);
    }
    if (bad)
        brain_sig_note(notes, "audit: %s: %d line(s) that are not records skipped", path, bad);
    free(buf);
    return 0;
}

/* ---- events --------------------------------------------------------------------------------- */

static int query(mem_t *mem, const char *type, int64_t from, int64_t to, mem_event **ev, size_t *n, json_t *notes)
{
    char err[256] = "";
    mem_event_query q = {.from = from, .to = to, .type = type, .limit = 1000, .ascending = false}; /* the newest */
    int rc = mem_events_query(mem, &q, ev, n, err, sizeof err);
    if (rc < 0) {
        brain_sig_note(notes, "events %s: %s", type, err[0] ? err : strerror(-rc));
        *ev = NULL;
        *n = 0;
        return rc;
    }
    for (size_t i = 0; i < *n / 2; i++) { /* oldest first */
        mem_event t = (*ev)[i];
        (*ev)[i] = (*ev)[*n - 1 - i];
        (*ev)[*n - 1 - i] = t;
    }
    return rc;
}

/* When path of service was put back after ts: restored by heal (file.restored,
 * ok), or seen again as its known-good copy (file.changed, known_good). A
 * change undone before the incident (before `before`) is not a cause of it.
 * The latest such time, 0 when none. */
static int64_t undone_after(const mem_event *ev, size_t n, const mem_event *rest, size_t nrest, const char *service,
                            const char *path, int64_t ts, int64_t before)
{
    int64_t last = 0;
    for (int pass = 0; pass < 2; pass++) {
        const mem_event *e = pass ? rest : ev;
        size_t m = pass ? nrest : n;
        for (size_t i = 0; i < m; i++) {
            if (e[i].ts <= ts || e[i].ts >= before || strcmp(e[i].source, service))
                continue;
            json_t *p = json_loads(e[i].payload, 0, NULL);
            const char *pp = json_string_value(json_object_get(p, "path"));
            if (pp && !strcmp(pp, path) && json_is_true(json_object_get(p, pass ? "ok" : "known_good")))
                last = e[i].ts > last ? e[i].ts : last;
            json_decref(p);
        }
    }
    return last;
}

static void file_changes(mem_t *mem, const char *service, int64_t from, int64_t to, int64_t start, json_t *out,
                         json_t *notes)
{
    mem_event *ev, *rest = NULL;
    size_t n, nrest = 0;
    if (query(mem, "file.changed", from, to, &ev, &n, notes) < 0)
        return;
    if (query(mem, "file.restored", from, to, &rest, &nrest, notes) < 0)
        rest = NULL, nrest = 0;
    int bad = 0, undone = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ev[i].source, service))
            continue;
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        const char *path = json_string_value(json_object_get(p, "path"));
        if (!json_is_object(p) || !path) {
            bad++;
            json_decref(p);
            continue;
        }
        if ((json_is_true(json_object_get(p, "known_good")) && ev[i].ts < start) ||
            undone_after(ev, n, rest, nrest, service, path, ev[i].ts, start)) {
            undone++;
            json_decref(p);
            continue;
        }
        json_t *d = json_object();
        json_object_set(d, "was", json_object_get(p, "was") ? json_object_get(p, "was") : json_null());
        json_object_set(d, "now", json_object_get(p, "now") ? json_object_get(p, "now") : json_null());
        if (json_is_array(json_object_get(p, "diff")))
            json_object_set(d, "diff", json_object_get(p, "diff"));
        if (json_is_boolean(json_object_get(p, "known_good"))) /* the file is its known-good copy now */
            json_object_set(d, "known_good", json_object_get(p, "known_good"));
        json_array_append_new(out, change("file", path, ev[i].ts, d));
        json_decref(p);
    }
    if (bad)
        brain_sig_note(notes, "changes: %d file.changed event(s) with a bad payload skipped", bad);
    if (undone)
        brain_sig_note(notes, "changes: %d file change(s) already put back left out", undone);
    mem_events_free(ev, n);
    if (rest)
        mem_events_free(rest, nrest);
}

static void reloads(mem_t *mem, int64_t from, int64_t to, json_t *out, json_t *notes)
{
    mem_event *ev;
    size_t n;
    if (query(mem, "config.reload", from, to, &ev, &n, notes) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_loads(ev[i].payload, 0, NULL);
        const char *what = json_string_value(json_object_get(p, "config"));
        json_array_append_new(out, change("config_reload", what ? what : "configuration", ev[i].ts,
                                          json_is_object(p) ? p : NULL));
        if (!json_is_object(p))
            json_decref(p);
    }
    mem_events_free(ev, n);
}

int brain_changes_events(mem_t *mem, const char *service, int64_t from_ms, int64_t to_ms, int64_t start_ms,
                         json_t *out, json_t *notes)
{
    if (!mem)
        return -EINVAL;
    file_changes(mem, service, from_ms, to_ms, start_ms, out, notes);
    reloads(mem, from_ms, to_ms, out, notes);
    return 0;
}
