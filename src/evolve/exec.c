/* exec.c: the one way evolve runs a command directly (not in the WorldModel
 * sandbox): fork + exec of an argv in its own process group, stdin from
 * /dev/null, none of the daemon's descriptors, reading its stdout (up to a
 * limit) and the tail of its stderr until it exits, its deadline passes or
 * the caller stops it; then the whole group is killed. Self-code evolution's
 * commands and git, ToolSmith's wasm fallback, an experiment's commands
 * without the sandbox and the genome's apply commands all run through it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evolve/evolve_int.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void evolve_exec_tail_add(char *tail, size_t taillen, const char *buf, size_t n)
{
    if (!tail || taillen < 2)
        return;
    size_t have = strlen(tail), room = taillen - 1;
    if (n >= room) {
        memcpy(tail, buf + n - room, room);
        tail[room] = 0;
        return;
    }
    if (have + n > room) {
        size_t drop = have + n - room;
        memmove(tail, tail + drop, have - drop + 1);
        have -= drop;
    }
    memcpy(tail + have, buf, n);
    tail[have + n] = 0;
}

/* Reads both pipes (fd -1: none) until both close, the deadline or *stop:
 * 0, 1 on timeout, 2 when stopped. */
static int pump(int ofd, int efd, const evolve_exec_opts *o, int64_t deadline, evolve_exec_res *r)
{
    struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
    char buf[4096];
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        int64_t left = deadline - mono_ms();
        if (o->stop && atomic_load(o->stop))
            return 2;
        if (left <= 0)
            return 1;
        int n = poll(p, 2, left > 200 ? 200 : (int)left);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            ssize_t got = read(p[i].fd, buf, sizeof buf);
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got <= 0) {
                p[i].fd = -1;
                continue;
            }
            if (i == 1) {
                evolve_exec_tail_add(o->tail, o->taillen, buf, (size_t)got);
                continue;
            }
            size_t take = r->out_len + (size_t)got > o->out_max ? o->out_max - r->out_len : (size_t)got;
            memcpy(r->out + r->out_len, buf, take);
            r->out_len += take;
            r->out[r->out_len] = 0;
        }
    }
    return 0;
}

static void child(const evolve_exec_opts *o, int ofd, int efd)
{
    setpgid(0, 0);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(ofd >= 0 ? ofd : null, 1);
        dup2(efd >= 0 ? efd : null, 2);
    }
    close_range(3, ~0U, 0); /* none of the daemon's descriptors */
    if (o->cwd && chdir(o->cwd) < 0)
        _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (o->envp)
        execvpe(o->argv[0], (char *const *)o->argv, o->envp);
    else
        execvp(o->argv[0], (char *const *)o->argv);
    dprintf(2, "cannot run %s: %s\n", o->argv[0], strerror(errno));
    _exit(127);
}

static void close_pair(int p[2])
{
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
}

int evolve_exec(const evolve_exec_opts *o, evolve_exec_res *r)
{
    memset(r, 0, sizeof *r);
    if (o->tail && o->taillen)
        o->tail[0] = 0;
    int op[2] = {-1, -1}, ep[2] = {-1, -1};
    if (o->out_max && !(r->out = malloc(o->out_max + 1)))
        return -ENOMEM;
    if (r->out)
        r->out[0] = 0;
    if ((o->out_max && pipe2(op, O_CLOEXEC) < 0) || (o->tail && o->taillen && pipe2(ep, O_CLOEXEC) < 0)) {
        int e = -errno;
        close_pair(op);
        free(r->out);
        r->out = NULL;
        return e;
    }
    int64_t t0 = mono_ms();
    pid_t pid = fork();
    if (pid == 0)
        child(o, op[1], ep[1]);
    int e = errno;
    if (op[1] >= 0)
        close(op[1]);
    if (ep[1] >= 0)
        close(ep[1]);
    if (pid < 0) {
        close_pair((int[2]){op[0], ep[0]});
        free(r->out);
        r->out = NULL;
        return -e;
    }
    setpgid(pid, pid);
    int t = pump(op[0], ep[0], o, t0 + o->timeout_ms, r);
    if (op[0] >= 0)
        close(op[0]);
    if (ep[0] >= 0)
        close(ep[0]);
    bool reaped = false;
    if (t == 0 && op[0] < 0 && ep[0] < 0) /* nothing to read: wait for its exit */
        while (!(reaped = waitpid(pid, &r->status, WNOHANG) == pid)) {
            if ((o->stop && atomic_load(o->stop)) || mono_ms() >= t0 + o->timeout_ms) {
                t = o->stop && atomic_load(o->stop) ? 2 : 1;
                break;
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL); /* a child's exit has no fd here to wait on */
        }
    if (t != 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    while (!reaped && waitpid(pid, &r->status, 0) < 0 && errno == EINTR)
        ;
    if (t != 0)
        kill(-pid, SIGKILL); /* what it left behind in its group */
    r->timed_out = t == 1;
    r->stopped = t == 2;
    r->wall_ms = mono_ms() - t0;
    return 0;
}
