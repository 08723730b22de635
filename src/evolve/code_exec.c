/* code_exec.c: self-code evolution runs things: the operator's build, test
 * and bench commands (split into argv, never a shell unless written, in the
 * WorldModel sandbox when it is there) and git (argv, directly). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evolve/code_int.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- splitting ---- */

typedef struct words {
    char **w;
    size_t n, cap;
} words;

static int words_add(words *v, char *s)
{
    if (v->n + 2 > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        char **w = realloc(v->w, cap * sizeof *w);
        if (!w)
            return -ENOMEM;
        v->w = w;
        v->cap = cap;
    }
    v->w[v->n++] = s;
    v->w[v->n] = NULL;
    return 0;
}

/* One word from *p into a malloc'd string; *amp set for an unquoted "&&". */
static int next_word(const char **p, char **out, bool *amp, char *err, size_t errlen)
{
    const char *s = *p;
    size_t len = strlen(s);
    char *w = malloc(len + 1), *o = w;
    if (!w)
        return -ENOMEM;
    bool quoted = false;
    while (*s && *s != ' ' && *s != '\t' && *s != '\n') {
        if (*s == '\'' || *s == '"') {
            char q = *s++;
            quoted = true;
            while (*s && *s != q) {
                if (q == '"' && *s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                *o++ = *s++;
            }
            if (!*s) {
                free(w);
                snprintf(err, errlen, "unclosed %c quote", q);
                return -EINVAL;
            }
            s++;
        } else {
            *o++ = *s++;
        }
    }
    *o = 0;
    *amp = !quoted && !strcmp(w, "&&");
    *out = w;
    *p = s;
    return 0;
}

void code_cmds_free(char ***cmds)
{
    for (size_t i = 0; cmds && cmds[i]; i++) {
        for (size_t j = 0; cmds[i][j]; j++)
            free(cmds[i][j]);
        free(cmds[i]);
    }
    free(cmds);
}

/* Ends the current command (at "&&" or the end): moved into list. */
static int end_cmd(words *cur, char ***list, size_t *ncmd, char *err, size_t errlen)
{
    if (!cur->n) {
        snprintf(err, errlen, "%s", *ncmd ? "an empty command after '&&'" : "an empty command");
        return -EINVAL;
    }
    list[(*ncmd)++] = cur->w;
    *cur = (words){0};
    return 0;
}

int code_cmds_split(const char *text, char ****cmds, char *err, size_t errlen)
{
    *cmds = NULL;
    const char *p = text ? text : "";
    words cur = {0};
    char ***list = calloc(strlen(p) / 2 + 2, sizeof *list);
    size_t ncmd = 0;
    int rc = list ? 0 : -ENOMEM;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (rc < 0 || !*p)
            break;
        bool amp = false;
        char *w = NULL;
        rc = next_word(&p, &w, &amp, err, errlen);
        if (rc == 0 && amp) {
            free(w);
            rc = end_cmd(&cur, list, &ncmd, err, errlen);
        } else if (rc == 0 && words_add(&cur, w) < 0) {
            free(w);
            rc = -ENOMEM;
        }
    }
    if (rc == 0)
        rc = end_cmd(&cur, list, &ncmd, err, errlen);
    if (rc < 0) {
        for (size_t j = 0; j < cur.n; j++)
            free(cur.w[j]);
        free(cur.w);
        code_cmds_free(list);
        return rc;
    }
    *cmds = list;
    return 0;
}

/* ---- direct runs ---- */

static void tail_add(char *tail, size_t taillen, const char *buf, size_t n)
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

static int out_add(char **out, size_t *len, const char *buf, size_t n)
{
    if (*len + n > (size_t)4 << 20)
        return 0;
    char *o = realloc(*out, *len + n + 1);
    if (!o)
        return -ENOMEM;
    memcpy(o + *len, buf, n);
    *len += n;
    o[*len] = 0;
    *out = o;
    return 0;
}

/* Reads both pipes until both close or the deadline; 1 on timeout, 2 when
 * *stop was set. */
static int pump(int ofd, int efd, int64_t deadline, atomic_int *stop, char **out, char *tail,
                size_t taillen)
{
    size_t olen = 0;
    struct pollfd p[2] = {{.fd = ofd, .events = POLLIN}, {.fd = efd, .events = POLLIN}};
    char buf[4096];
    while (p[0].fd >= 0 || p[1].fd >= 0) {
        int64_t left = deadline - now_ms();
        if (stop && atomic_load(stop))
            return 2;
        if (left <= 0)
            return 1;
        int n = poll(p, 2, left > 200 ? 200 : (int)left);
        if (n < 0 && errno != EINTR)
            return -errno;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            ssize_t r = read(p[i].fd, buf, sizeof buf);
            if (r <= 0) {
                p[i].fd = -1;
                continue;
            }
            if (i == 0 && out)
                out_add(out, &olen, buf, (size_t)r);
            else if (i == 1)
                tail_add(tail, taillen, buf, (size_t)r);
        }
    }
    return 0;
}

/* environ with NAME=VALUE set (malloc'd array, strings borrowed), or NULL. */
static char **env_with(const char *setting)
{
    size_t n = 0, name = strcspn(setting, "=") + 1;
    while (environ[n])
        n++;
    char **e = calloc(n + 2, sizeof *e);
    size_t k = 0;
    for (size_t i = 0; e && i < n; i++)
        if (strncmp(environ[i], setting, name))
            e[k++] = environ[i];
    if (e)
        e[k] = (char *)setting;
    return e;
}

static int exec_direct(const char *const *argv, const char *cwd, int64_t timeout_ms, atomic_int *stop,
                       char **out, char *tail, size_t taillen, bool *timed_out, char **envp)
{
    int op[2], ep[2];
    if (pipe2(op, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(ep, O_CLOEXEC) < 0) {
        int e = -errno;
        close(op[0]);
        close(op[1]);
        return e;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(op[1], 1);
        dup2(ep[1], 2);
        close_range(3, ~0U, 0); /* none of the daemon's descriptors */
        if (cwd && chdir(cwd) < 0)
            _exit(126);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (envp)
            execvpe(argv[0], (char *const *)argv, envp);
        else
            execvp(argv[0], (char *const *)argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int e = errno;
    close(op[1]);
    close(ep[1]);
    if (pid < 0) {
        close(op[0]);
        close(ep[0]);
        return -e;
    }
    setpgid(pid, pid);
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 600000);
    int t = pump(op[0], ep[0], deadline, stop, out, tail, taillen);
    close(op[0]);
    close(ep[0]);
    if (t != 0) {
        kill(-pid, SIGKILL);
        kill(pid, SIGKILL);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (t != 0) {
        kill(-pid, SIGKILL); /* what it left behind in its group */
        *timed_out = t == 1;
        return t == 1 ? -ETIMEDOUT : -ECANCELED;
    }
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return WEXITSTATUS(st);
}

int code_exec_argv(const char *const *argv, const char *cwd, const char *gitconfig, int64_t timeout_ms, char **out,
                   char *tail, size_t taillen)
{
    bool to = false;
    if (out)
        *out = NULL;
    if (tail && taillen)
        tail[0] = 0;
    char setting[4200], **envp = NULL;
    if (gitconfig) {
        snprintf(setting, sizeof setting, "GIT_CONFIG_GLOBAL=%s", gitconfig);
        if (!(envp = env_with(setting)))
            return -ENOMEM;
    }
    int rc = exec_direct(argv, cwd, timeout_ms, NULL, out, tail, taillen, &to, envp);
    free(envp);
    return rc;
}

/* Gives what root owns under dirfd (closed) to uid:gid. */
static void chown_tree(int dirfd, uid_t uid, gid_t gid, int depth)
{
    DIR *d = fdopendir(dirfd);
    if (!d) {
        close(dirfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (st.st_uid == 0 && fchownat(dirfd, e->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth < 64) {
            int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd >= 0)
                chown_tree(fd, uid, gid, depth + 1);
        }
    }
    closedir(d);
}

void code_fix_owner(const char *repo)
{
    struct stat st;
    if (geteuid() != 0 || stat(repo, &st) < 0 || st.st_uid == 0)
        return;
    int fd = open(repo, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0)
        chown_tree(fd, st.st_uid, st.st_gid, 0);
}

void code_run_res_free(code_run_res *r)
{
    free(r->out);
    r->out = NULL;
}

/* "meson setup [opts] DIR" whose DIR is configured already. */
static bool setup_done(char **argv, const char *cwd)
{
    if (!argv[0] || strcmp(argv[0], "meson") || !argv[1] || strcmp(argv[1], "setup"))
        return false;
    const char *dir = NULL;
    for (int i = 2; argv[i]; i++)
        if (argv[i][0] != '-')
            dir = argv[i];
    if (!dir)
        return false;
    char p[8192];
    snprintf(p, sizeof p, "%s/%s/build.ninja", dir[0] == '/' ? "" : cwd, dir);
    return access(p, F_OK) == 0;
}

static int run_sandboxed(char **argv, const char *cwd, const char *shim, int64_t timeout_ms, code_run_res *r,
                         char *err, size_t errlen)
{
    const char *wr[] = {cwd};
    evolve_sandbox_opts o = {.argv = (const char *const *)argv, .cwd = cwd, .writable = wr, .nwritable = 1,
                             .network = false, .timeout_ms = timeout_ms, .memory_bytes = (uint64_t)4 << 30,
                             .shim = shim};
    evolve_sandbox_result s;
    memset(&s, 0, sizeof s);
    /* the one place a job's thread may be cancelled (evolve_code_free at
     * shutdown): the sandbox kills and removes what it started */
    int old;
    pthread_setcancelstate(PTHREAD_CANCEL_ENABLE, &old);
    int rc = evolve_sandbox_run(&o, &s, err, errlen);
    pthread_setcancelstate(old, NULL);
    if (rc < 0)
        return rc;
    free(r->out);
    r->out = s.out;
    s.out = NULL;
    r->exit_code = s.exit_code;
    snprintf(r->verdict, sizeof r->verdict, "%s", evolve_sbx_verdict_name(s.verdict));
    r->tail[0] = 0;
    if (s.err_tail)
        tail_add(r->tail, sizeof r->tail, s.err_tail, strlen(s.err_tail));
    if (s.verdict != EVOLVE_SBX_OK && s.verdict != EVOLVE_SBX_FAILED && s.detail[0]) {
        char d[EVOLVE_TEXT + 32];
        snprintf(d, sizeof d, "\n[sandbox: %s: %s]", r->verdict, s.detail);
        tail_add(r->tail, sizeof r->tail, d, strlen(d));
    }
    evolve_sandbox_result_free(&s);
    return s.verdict == EVOLVE_SBX_OK ? 0 : 1;
}

static int run_one(char **argv, const char *cwd, bool *use_sandbox, const char *shim, int64_t timeout_ms,
                   atomic_int *stop, code_run_res *r)
{
    if (*use_sandbox) {
        char why[256] = "";
        int rc = run_sandboxed(argv, cwd, shim, timeout_ms, r, why, sizeof why);
        if (rc >= 0) {
            snprintf(r->how, sizeof r->how, "sandbox");
            return rc;
        }
        if (rc != -ENOSYS) {
            snprintf(r->verdict, sizeof r->verdict, "error");
            snprintf(r->tail, sizeof r->tail, "sandbox: %s", why);
            return 1;
        }
        *use_sandbox = false;
        snprintf(r->how, sizeof r->how, "direct: %s", why[0] ? why : "no sandbox");
    }
    bool to = false;
    free(r->out);
    r->out = NULL;
    r->tail[0] = 0;
    int rc = exec_direct((const char *const *)argv, cwd, timeout_ms, stop, &r->out, r->tail, sizeof r->tail, &to,
                         NULL);
    r->exit_code = rc;
    snprintf(r->verdict, sizeof r->verdict, "%s",
             to ? "timeout" : rc == -ECANCELED ? "stopped" : rc == 0 ? "ok" : rc < 0 ? "error" : "failed");
    if (to)
        tail_add(r->tail, sizeof r->tail, "\n[killed at the deadline]", 25);
    if (rc == -ECANCELED)
        tail_add(r->tail, sizeof r->tail, "\n[stopped]", 10);
    return rc == 0 ? 0 : 1;
}

int code_run(const char *text, const char *cwd, bool use_sandbox, const char *shim, int64_t timeout_ms,
             atomic_int *stop, code_run_res *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    snprintf(r->how, sizeof r->how, use_sandbox ? "sandbox" : "direct");
    char ***cmds;
    int rc = code_cmds_split(text, &cmds, err, errlen);
    if (rc < 0)
        return rc;
    int64_t t0 = now_ms();
    r->ok = true;
    snprintf(r->verdict, sizeof r->verdict, "ok");
    for (size_t i = 0; cmds[i] && r->ok; i++) {
        if (setup_done(cmds[i], cwd))
            continue;
        if (stop && atomic_load(stop)) {
            r->ok = false;
            snprintf(r->verdict, sizeof r->verdict, "stopped");
            break;
        }
        if (run_one(cmds[i], cwd, &use_sandbox, shim, timeout_ms, stop, r) != 0)
            r->ok = false;
        if (stop && atomic_load(stop)) {
            r->ok = false;
            snprintf(r->verdict, sizeof r->verdict, "stopped");
        }
    }
    r->wall_ms = now_ms() - t0;
    code_cmds_free(cmds);
    return 0;
}

bool code_parse_number(const char *text, double *v)
{
    bool found = false;
    for (const char *p = text; p && *p;) {
        if ((*p >= '0' && *p <= '9') || ((*p == '-' || *p == '.') && p[1] >= '0' && p[1] <= '9')) {
            char *end;
            double x = strtod(p, &end);
            if (end > p) {
                *v = x;
                found = true;
                p = end;
                continue;
            }
        }
        p++;
    }
    return found;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

void code_rmtree(const char *dir)
{
    nftw(dir, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}
