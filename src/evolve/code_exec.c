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
    evolve_exec_opts o = {.argv = argv, .cwd = cwd, .envp = envp, .timeout_ms = timeout_ms > 0 ? timeout_ms : 600000,
                          .stop = stop, .out_max = out ? (size_t)4 << 20 : 0, .tail = tail, .taillen = taillen};
    evolve_exec_res r;
    int rc = evolve_exec(&o, &r);
    if (out)
        *out = r.out;
    if (rc < 0)
        return rc;
    if (r.timed_out || r.stopped) {
        *timed_out = r.timed_out;
        return r.timed_out ? -ETIMEDOUT : -ECANCELED;
    }
    if (WIFSIGNALED(r.status))
        return 128 + WTERMSIG(r.status);
    return WEXITSTATUS(r.status);
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
        evolve_exec_tail_add(r->tail, sizeof r->tail, s.err_tail, strlen(s.err_tail));
    if (s.verdict != EVOLVE_SBX_OK && s.verdict != EVOLVE_SBX_FAILED && s.detail[0]) {
        char d[EVOLVE_TEXT + 32];
        snprintf(d, sizeof d, "\n[sandbox: %s: %s]", r->verdict, s.detail);
        evolve_exec_tail_add(r->tail, sizeof r->tail, d, strlen(d));
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
        evolve_exec_tail_add(r->tail, sizeof r->tail, "\n[killed at the deadline]", 25);
    if (rc == -ECANCELED)
        evolve_exec_tail_add(r->tail, sizeof r->tail, "\n[stopped]", 10);
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
