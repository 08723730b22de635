/* tool_wasm.c: WebAssembly tools, run by wabt's wasm-interp with WASI in
 * the WorldModel sandbox (read-only file system, no network, memory and
 * time limits). While the sandbox is unavailable (no bwrap: -ENOSYS) the
 * interpreter runs directly under a deadline and the result says so. Also
 * the plain spawn with a deadline that this fallback (and tool tests) use. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evolve/tool_int.h"

#define WASM_TIMEOUT_MS 10000
#define WASM_MEMORY (256ull << 20)
#define WASM_OUT_MAX (1u << 20)

/* Is prog an executable in PATH (or a path)? */
static bool in_path(const char *prog)
{
    if (strchr(prog, '/'))
        return access(prog, X_OK) == 0;
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char full[4352];
        snprintf(full, sizeof full, "%s/%s", d, prog);
        if (access(full, X_OK) == 0)
            return true;
    }
    return false;
}

int evolve_tool_spawn(const char *const *argv, int64_t timeout_ms, size_t out_max, evolve_sandbox_result *r,
                      char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    if (!out_max)
        out_max = WASM_OUT_MAX;
    char *tail = calloc(1, 4097); /* the last 4 KiB of stderr */
    if (!tail) {
        snprintf(err, errlen, "spawn %s: out of memory", argv[0]);
        return -ENOMEM;
    }
    evolve_exec_opts o = {.argv = argv, .timeout_ms = timeout_ms, .out_max = out_max, .tail = tail, .taillen = 4097};
    evolve_exec_res x;
    int rc = evolve_exec(&o, &x);
    if (rc < 0) {
        free(tail);
        snprintf(err, errlen, "spawn %s: %s", argv[0], strerror(-rc));
        return rc;
    }
    int st = x.status;
    bool timed_out = x.timed_out;
    r->out = x.out;
    r->out_len = x.out_len;
    r->err_tail = tail;
    r->wall_ms = x.wall_ms;
    if (timed_out) {
        r->verdict = EVOLVE_SBX_TIMEOUT;
        snprintf(r->detail, sizeof r->detail, "killed at the deadline (%lld ms)", (long long)timeout_ms);
    } else if (WIFEXITED(st)) {
        r->exit_code = WEXITSTATUS(st);
        r->verdict = r->exit_code == 0 ? EVOLVE_SBX_OK : EVOLVE_SBX_FAILED;
        if (r->exit_code == 127)
            r->verdict = EVOLVE_SBX_ERROR;
    } else if (WIFSIGNALED(st)) {
        r->signal = WTERMSIG(st);
        r->verdict = EVOLVE_SBX_FAILED;
        snprintf(r->detail, sizeof r->detail, "killed by signal %d", r->signal);
    }
    return 0;
}

int evolve_tool_stage(const char *file, char *dir, char *copy, char *err, size_t errlen)
{
    const char *roots[] = {"/var/tmp", getenv("TMPDIR"), "/tmp"};
    dir[0] = copy[0] = 0;
    for (size_t i = 0; i < 3 && !dir[0]; i++) {
        if (!roots[i] || !*roots[i])
            continue;
        snprintf(dir, PATH_MAX, "%s/ippoc-tool-XXXXXX", roots[i]);
        if (!mkdtemp(dir))
            dir[0] = 0;
    }
    if (!dir[0]) {
        int e = errno;
        snprintf(err, errlen, "tool: cannot make a directory for the sandbox: %s", strerror(e));
        return -e;
    }
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    snprintf(copy, PATH_MAX, "%s/%s", dir, base);
    int in = open(file, O_RDONLY | O_CLOEXEC), out = -1, rc = 0;
    if (in < 0 || (out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0)
        rc = -errno;
    char buf[65536];
    ssize_t n;
    while (!rc && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 || write(out, buf, (size_t)n) != n)
            rc = n < 0 ? -errno : -EIO;
    }
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) < 0 && !rc)
        rc = -errno;
    if (rc) {
        snprintf(err, errlen, "tool: cannot copy %s for the sandbox: %s", file, strerror(-rc));
        evolve_tool_unstage(dir, copy);
    }
    return rc;
}

void evolve_tool_unstage(const char *dir, const char *copy)
{
    if (copy && *copy)
        unlink(copy);
    if (dir && *dir)
        rmdir(dir);
}

static atomic_bool wasi_missing; /* learnt from the first run */

static void free_result(evolve_sandbox_result *r, const char *sandbox)
{
    if (!strcmp(sandbox, "none")) {
        free(r->out);
        free(r->err_tail);
        r->out = r->err_tail = NULL;
    } else {
        evolve_sandbox_result_free(r);
    }
}

/* One wasm-interp run: in the sandbox, or directly when it is unavailable
 * (*sandbox = "none", why says so). */
static int run_interp(const char *path, const char *const *args, const char *shim, bool wasi,
                      evolve_sandbox_result *r, const char **sandbox, char *why, size_t whylen, char *err,
                      size_t errlen)
{
    const char *argv[72];
    int n = 0;
    argv[n++] = "wasm-interp";
    if (wasi) {
        argv[n++] = "--wasi";
        argv[n++] = path;
        argv[n++] = "--";
        for (int i = 0; args && args[i] && n < 71; i++)
            argv[n++] = args[i];
    } else {
        argv[n++] = "--host-print";
        argv[n++] = "--run-all-exports";
        argv[n++] = path;
    }
    argv[n] = NULL;
    /* the module, copied where the sandbox sees it (a private /tmp there) */
    char dir[PATH_MAX], copy[PATH_MAX];
    int rc = evolve_tool_stage(path, dir, copy, err, errlen);
    if (rc < 0)
        return rc;
    argv[wasi ? 2 : 3] = copy;
    const char *const writable[] = {dir};
    evolve_sandbox_opts o = {.argv = argv, .cwd = "/", .writable = writable, .nwritable = 1,
                             .timeout_ms = WASM_TIMEOUT_MS, .memory_bytes = WASM_MEMORY, .out_max = WASM_OUT_MAX,
                             .shim = shim};
    *sandbox = "bwrap";
    rc = evolve_sandbox_run(&o, r, why, whylen);
    evolve_tool_unstage(dir, copy);
    if (rc == -ENOSYS) {
        argv[wasi ? 2 : 3] = path;
        *sandbox = "none";
        return evolve_tool_spawn(argv, WASM_TIMEOUT_MS, WASM_OUT_MAX, r, err, errlen);
    }
    if (rc < 0)
        snprintf(err, errlen, "%s: the sandbox could not start: %s", path, why);
    return rc;
}

int evolve_tool_run_wasm(const char *path, const char *const *args, const char *shim, json_t **result, char *err,
                         size_t errlen)
{
    *result = NULL;
    if (!in_path("wasm-interp")) {
        snprintf(err, errlen, "wasm tools need wasm-interp (Debian's wabt package), which is not installed");
        return -ENOSYS;
    }
    struct stat st;
    if (stat(path, &st) < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    /* Debian's wabt may be built without WASI ("wasi support not compiled
     * in"): then the module's exports run (--run-all-exports, host.print
     * importable) and their results are its output; arguments cannot be
     * passed that way. */
    evolve_sandbox_result r;
    char why[512] = "";
    const char *sandbox = "bwrap";
    bool wasi = !atomic_load(&wasi_missing);
    int rc = run_interp(path, args, shim, wasi, &r, &sandbox, why, sizeof why, err, errlen);
    if (rc == 0 && wasi && r.verdict != EVOLVE_SBX_OK && r.err_tail && strstr(r.err_tail, "wasi support not compiled in")) {
        atomic_store(&wasi_missing, true);
        wasi = false;
        free_result(&r, sandbox);
        rc = run_interp(path, args, shim, wasi, &r, &sandbox, why, sizeof why, err, errlen);
    }
    if (rc < 0)
        return rc;
    json_t *res = json_pack("{s:b,s:s%,s:s,s:i,s:I}", "ok", r.verdict == EVOLVE_SBX_OK, "value",
                            r.out ? r.out : "", r.out_len, "verdict", evolve_sbx_verdict_name(r.verdict), "exit_code",
                            r.exit_code, "ms", (json_int_t)r.wall_ms);
    if (!res) /* stdout that is not UTF-8 */
        res = json_pack("{s:b,s:s,s:s,s:i}", "ok", r.verdict == EVOLVE_SBX_OK, "value", "<not UTF-8>", "verdict",
                        evolve_sbx_verdict_name(r.verdict), "exit_code", r.exit_code);
    json_object_set_new(res, "sandbox", json_string(sandbox));
    json_object_set_new(res, "mode", json_string(wasi ? "wasi" : "exports"));
    if (!strcmp(sandbox, "none"))
        json_object_set_new(res, "sandbox_why", json_string(why));
    if (r.verdict != EVOLVE_SBX_OK) {
        const char *tail = r.err_tail && *r.err_tail ? r.err_tail : r.detail;
        json_object_set_new(res, "error", json_sprintf("%s: %s%s%s", evolve_sbx_verdict_name(r.verdict), r.detail,
                                                       *r.detail && tail != r.detail ? "; " : "",
                                                       tail != r.detail ? tail : ""));
    }
    free_result(&r, sandbox);
    *result = res;
    return 0;
}
