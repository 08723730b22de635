/* probe_exec.c: the check-program probe. uv_spawn (argv, no shell) in a new
 * session, so the child is leader of its own process group; stdout and
 * stderr share one pipe whose first 4 KiB are kept (the rest is read and
 * dropped so the child never blocks on a full pipe). On timeout the whole
 * group gets SIGKILL, and the attempt lives until libuv has reaped the child,
 * so no zombie is left behind. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heal/probe_int.h"
#include "heal/uvclose.h"

typedef struct exec_attempt {
    probe_attempt base;
    uv_process_t proc;
    uv_pipe_t out;
    int refs; /* open handles */
    bool proc_open, out_open, exited;
    char buf[HEAL_PROBE_OUTPUT_MAX];
    size_t len;
    char scratch[4096]; /* reads beyond the kept excerpt land here */
} exec_attempt;

static void exec_unref(exec_attempt *a)
{
    if (--a->refs == 0)
        free(a);
}

static void on_handle_closed(uv_handle_t *h)
{
    exec_unref(h->data);
}

static void close_out(exec_attempt *a)
{
    if (a->out_open) {
        a->out_open = false;
        heal_uv_close((uv_handle_t *)&a->out, on_handle_closed);
    }
}

static void keep(exec_attempt *a, const char *data, size_t n)
{
    size_t room = sizeof a->buf - a->len;
    if (n > room)
        n = room;
    memcpy(a->buf + a->len, data, n);
    a->len += n;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    exec_attempt *a = h->data;
    if (a->len < sizeof a->buf)
        *b = uv_buf_init(a->buf + a->len, (unsigned)(sizeof a->buf - a->len));
    else
        *b = uv_buf_init(a->scratch, sizeof a->scratch);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    exec_attempt *a = s->data;
    if (n > 0 && b->base != a->scratch)
        a->len += (size_t)n;
    else if (n < 0)
        uv_read_stop(s); /* EOF or error: wait for the exit */
}

/* After the exit, what the child wrote is in the pipe: read it without
 * waiting (a grandchild holding the pipe open must not delay the result). */
static void drain(exec_attempt *a)
{
    uv_os_fd_t fd;
    if (!a->out_open || uv_fileno((uv_handle_t *)&a->out, &fd) < 0)
        return;
    for (int i = 0; i < 64; i++) {
        ssize_t n = read(fd, a->scratch, sizeof a->scratch);
        if (n <= 0)
            break;
        keep(a, a->scratch, (size_t)n);
    }
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
    exec_attempt *a = proc->data;
    a->exited = true;
    if (a->base.probe) {
        drain(a);
        heal_probe *p = a->base.probe;
        probe_outcome o = {.latency_ms = -1, .output = a->buf, .output_len = a->len};
        char line[160];
        probe_first_line(a->buf, a->len, line, sizeof line);
        if (term_signal) {
            o.code = -EINTR;
            snprintf(o.msg, sizeof o.msg, "killed by signal %d%s%s", term_signal, line[0] ? ": " : "", line);
        } else {
            o.code = (int)status;
            o.ok = status == p->cfg.exec.expect_exit;
            snprintf(o.msg, sizeof o.msg, "exit %d%s%s", (int)status, line[0] ? ": " : "", line);
        }
        probe_attempt_report(&a->base, &o);
    }
    close_out(a);
    a->proc_open = false;
    uv_close((uv_handle_t *)&a->proc, on_handle_closed);
}

static void exec_abort(probe_attempt *base)
{
    exec_attempt *a = (exec_attempt *)base;
    if (a->proc_open && !a->exited) {
        /* The child leads its own group (UV_PROCESS_DETACHED = setsid). */
        if (kill(-a->proc.pid, SIGKILL) < 0)
            kill(a->proc.pid, SIGKILL);
    }
    close_out(a);
    /* on_exit_cb reaps, then closes the process handle and frees. */
}

int probe_exec_init(heal_probe *p, char *err, size_t errlen)
{
    if (!p->argv || !p->argv[0] || !p->argv[0][0]) {
        snprintf(err, errlen, "exec probe: no program");
        return -EINVAL;
    }
    return 0;
}

void probe_exec_start(heal_probe *p)
{
    probe_outcome o = {.latency_ms = -1};
    exec_attempt *a = calloc(1, sizeof *a);
    if (!a) {
        o.code = -ENOMEM;
        snprintf(o.msg, sizeof o.msg, "out of memory");
        probe_complete(p, &o);
        return;
    }
    uv_file fds[2];
    int rc = uv_pipe(fds, 0, 0);
    if (rc < 0) {
        free(a);
        o.code = rc;
        snprintf(o.msg, sizeof o.msg, "pipe: %s", probe_uv_err(rc));
        probe_complete(p, &o);
        return;
    }
    uv_pipe_init(p->loop, &a->out, 0);
    uv_pipe_open(&a->out, fds[0]);
    a->out.data = a;
    a->out_open = true;
    a->refs++;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
        {.flags = UV_INHERIT_FD, .data.fd = fds[1]},
    };
    uv_process_options_t opt = {
        .exit_cb = on_exit_cb,
        .file = p->argv[0],
        .args = p->argv,
        .cwd = p->cfg.exec.cwd,
        .flags = UV_PROCESS_DETACHED, /* setsid: its own process group */
        .stdio_count = 3,
        .stdio = stdio,
    };
    a->proc.data = a;
    rc = uv_spawn(p->loop, &a->proc, &opt);
    close(fds[1]);
    a->proc_open = true; /* the handle must be closed even when spawn failed */
    a->refs++;
    if (rc < 0) {
        o.code = rc;
        snprintf(o.msg, sizeof o.msg, "exec %s: %s", p->argv[0], probe_uv_err(rc));
        a->proc_open = false;
        uv_close((uv_handle_t *)&a->proc, on_handle_closed);
        close_out(a);
        probe_complete(p, &o);
        return;
    }
    uv_read_start((uv_stream_t *)&a->out, on_alloc, on_read);
    a->base.probe = p;
    a->base.abort = exec_abort;
    p->cur = &a->base;
}
