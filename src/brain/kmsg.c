/* kmsg.c: kernel messages as incident evidence: reads /dev/kmsg (or a file
 * of records in its text format), keeps the records of a time window that
 * say something about a fault (OOM kills, I/O and filesystem errors,
 * segfaults, hung tasks, clock trouble) with the process they name. */
#include "brain/signature.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KMSG_BUF 8192
#define KMSG_FILE_TAIL (4 << 20)
#define KMSG_KEEP 1024 /* records kept from one read, the newest */

int64_t brain_sig_mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- parsing ------------------------------------------------------------------------------ */

static bool parse_u64(const char **p, const char *e, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    if (s >= e || !isdigit((unsigned char)*s))
        return false;
    while (s < e && isdigit((unsigned char)*s)) {
        if (x > (UINT64_MAX - 9) / 10)
            return false;
        x = x * 10 + (uint64_t)(*s++ - '0');
    }
    *p = s;
    *v = x;
    return true;
}

int brain_kmsg_parse(const char *rec, size_t len, brain_kmsg_rec *out)
{
    const char *p = rec, *e = rec + len;
    const char *semi = memchr(rec, ';', len);
    uint64_t pri, seq, usec;
    if (!semi || !parse_u64(&p, semi, &pri) || p >= semi || *p++ != ',' || !parse_u64(&p, semi, &seq) ||
        p >= semi || *p++ != ',' || !parse_u64(&p, semi, &usec) || p >= semi || *p != ',' || pri > 1023 ||
        usec > (uint64_t)INT64_MAX)
        return -EINVAL;
    out->pri = (int)pri;
    out->seq = seq;
    out->usec = (int64_t)usec;
    out->text = semi + 1;
    const char *nl = memchr(out->text, '\n', (size_t)(e - out->text)); /* dictionary lines follow */
    out->len = (size_t)((nl ? nl : e) - out->text);
    return 0;
}

static const char *find(const char *t, size_t len, const char *needle)
{
    return memmem(t, len, needle, strlen(needle));
}

static void copy_comm(const char *s, const char *e, char *comm, size_t n)
{
    size_t l = (size_t)(e - s);
    if (l >= n)
        l = n - 1;
    memcpy(comm, s, l);
    comm[l] = 0;
}

/* "Killed process 1234 (comm)" */
static void killed_process(const char *t, size_t len, int *pid, char *comm, size_t n)
{
    const char *k = find(t, len, "Killed process ");
    if (!k)
        return;
    const char *p = k + 15, *e = t + len;
    *pid = (int)strtol(p, NULL, 10);
    const char *o = memchr(p, '(', (size_t)(e - p)), *c = o ? memchr(o, ')', (size_t)(e - o)) : NULL;
    if (o && c)
        copy_comm(o + 1, c, comm, n);
}

/* "oom-kill:constraint=...,task=comm,pid=1234,uid=0" */
static void oom_kill_line(const char *t, size_t len, int *pid, char *comm, size_t n)
{
    const char *e = t + len, *task = find(t, len, "task="), *p = find(t, len, ",pid=");
    if (task) {
        const char *c = memchr(task, ',', (size_t)(e - task));
        copy_comm(task + 5, c ? c : e, comm, n);
    }
    if (p)
        *pid = (int)strtol(p + 5, NULL, 10);
}

/* "comm[1234]: segfault at" / "traps: comm[1234] general protection" */
static void bracket_pid(const char *t, const char *at, int *pid, char *comm, size_t n)
{
    const char *rb = NULL;
    for (const char *q = at; q > t; q--)
        if (q[-1] == ']') {
            rb = q - 1;
            break;
        }
    if (!rb)
        return;
    const char *lb = rb;
    while (lb > t && *lb != '[')
        lb--;
    if (*lb != '[')
        return;
    *pid = (int)strtol(lb + 1, NULL, 10);
    const char *s = lb;
    while (s > t && s[-1] != ' ')
        s--;
    copy_comm(s, lb, comm, n);
}

/* "INFO: task comm:1234 blocked for more than 120 seconds." */
static void hung_task(const char *t, size_t len, int *pid, char *comm, size_t n)
{
    const char *k = find(t, len, "task "), *e = t + len;
    if (!k)
        return;
    const char *s = k + 5, *sp = memchr(s, ' ', (size_t)(e - s));
    if (!sp)
        return;
    const char *colon = NULL;
    for (const char *q = s; q < sp; q++)
        if (*q == ':')
            colon = q;
    if (!colon)
        return;
    copy_comm(s, colon, comm, n);
    *pid = (int)strtol(colon + 1, NULL, 10);
}

const char *brain_kmsg_classify(const char *t, size_t len, int *pid, char *comm, size_t commlen)
{
    *pid = 0;
    if (commlen)
        comm[0] = 0;
    if (find(t, len, "Killed process ")) { /* "Out of memory: ", "Memory cgroup out of memory: " */
        killed_process(t, len, pid, comm, commlen);
        return "oom_kill";
    }
    if (find(t, len, "oom-kill:")) {
        oom_kill_line(t, len, pid, comm, commlen);
        return "oom_kill";
    }
    const char *at;
    if ((at = find(t, len, ": segfault at")) || (at = find(t, len, " general protection")) ||
        (find(t, len, "traps: ") && (at = find(t, len, " trap ")))) {
        bracket_pid(t, at, pid, comm, commlen);
        return "segfault";
    }
    if (find(t, len, "blocked for more than")) {
        hung_task(t, len, pid, comm, commlen);
        return "hung_task";
    }
    if (find(t, len, "EXT4-fs error") || find(t, len, "EXT4-fs warning") || find(t, len, "BTRFS error") ||
        (find(t, len, "XFS (") && (find(t, len, "error") || find(t, len, "Corruption"))) ||
        find(t, len, "Remounting filesystem read-only"))
        return "fs_error";
    if (find(t, len, "I/O error, dev") || find(t, len, "Buffer I/O error") || find(t, len, "blk_update_request") ||
        find(t, len, "end_request: I/O error") || find(t, len, "critical medium error"))
        return "io_error";
    if (find(t, len, "clocksource") || find(t, len, "Time jump") || find(t, len, "time jump") ||
        find(t, len, "timekeeping watchdog"))
        return "clock";
    return NULL;
}

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct kctx {
    int64_t from, to, off_ms; /* wall = usec / 1000 + off_ms */
    json_t *out;
    int *bad;
} kctx;

static void keep(kctx *k, const char *rec, size_t len)
{
    brain_kmsg_rec r;
    if (len == 0)
        return;
    if (rec[0] == ' ') /* a dictionary line " KEY=value" of the record before */
        return;
    if (brain_kmsg_parse(rec, len, &r)) {
        (*k->bad)++;
        return;
    }
    int64_t ts = r.usec / 1000 + k->off_ms;
    if (ts < k->from || ts > k->to)
        return;
    int pid;
    char comm[64];
    const char *kind = brain_kmsg_classify(r.text, r.len, &pid, comm, sizeof comm);
    if (!kind)
        return;
    size_t tl = r.len > 400 ? 400 : r.len;
    json_t *o = json_pack("{s:s, s:i, s:s, s:s%, s:I}", "kind", kind, "pid", pid, "comm", comm, "text", r.text,
                          tl, "ts", (json_int_t)ts);
    if (!o)
        return;
    if (json_array_size(k->out) >= KMSG_KEEP) /* a flood: keep the newest */
        json_array_remove(k->out, 0);
    json_array_append_new(k->out, o);
}

static int read_device(int fd, kctx *k, int64_t deadline, bool *cut, char *err, size_t errlen)
{
    char *buf = malloc(KMSG_BUF);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (unsigned i = 0;; i++) {
        if ((i & 63) == 0 && brain_sig_mono_ms() >= deadline) {
            *cut = true;
            break;
        }
        ssize_t n = read(fd, buf, KMSG_BUF - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EPIPE) /* records were overwritten while we read: go on */
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "read: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        keep(k, buf, (size_t)n);
    }
    free(buf);
    return rc;
}

static int read_file(int fd, kctx *k, int64_t deadline, bool *cut, char *err, size_t errlen)
{
    size_t got;
    char *buf = brain_read_tail_fd(fd, KMSG_FILE_TAIL, &got, err, errlen);
    if (!buf)
        return -EINVAL;
    const char *p = buf, *e = buf + got;
    for (unsigned i = 0; p < e; i++) {
        if ((i & 255) == 0 && brain_sig_mono_ms() >= deadline) {
            *cut = true;
            break;
        }
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        keep(k, p, (size_t)(le - p));
        p = nl ? nl + 1 : e;
    }
    free(buf);
    return 0;
}

int brain_kmsg_read(const char *path, int64_t from_ms, int64_t to_ms, int64_t deadline_mono, json_t *out, int *bad,
                    bool *cut, char *err, size_t errlen)
{
    *cut = false;
    *bad = 0;
    if (errlen)
        err[0] = 0;
    struct timespec mono, real;
    clock_gettime(CLOCK_MONOTONIC, &mono);
    clock_gettime(CLOCK_REALTIME, &real);
    int64_t mono_ms = (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000;
    int64_t real_ms = (int64_t)real.tv_sec * 1000 + real.tv_nsec / 1000000;
    kctx k = {.from = from_ms, .to = to_ms, .off_ms = real_ms - mono_ms, .out = out, .bad = bad};
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    int rc;
    if (fstat(fd, &st) == 0 && S_ISCHR(st.st_mode))
        rc = read_device(fd, &k, deadline_mono, cut, err, errlen);
    else
        rc = read_file(fd, &k, deadline_mono, cut, err, errlen);
    close(fd);
    return rc;
}
