/* tool.c: ToolSmith's part of the cell: the tools in the genome (tools/
 * NAME.lua, tools/NAME.wasm), their API routes (list, run, test, draft),
 * drafts in STATE/evolve/drafts/ (written by the model or posted by a
 * person), whose own tests run in the sandbox before a "tool" change goes
 * through the safety policy, and the shim mode `ippocd --tool-test FILE`
 * that runs a tool's tests inside the sandbox. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "evolve/evolve_int.h"
#include "evolve/tool_int.h"
#include "llm/llm.h"
#include "memory/memory.h"

#define TOOL_SRC_MAX (256u << 10)

struct evolve_tools {
    pthread_mutex_t mu;
    json_t *last;    /* name -> {"at","ok","ms","error"} */
    char drafts[4200];
    unsigned seq;
};

int evolve_tools_new(evolve_cell *c, struct evolve_tools **out, char *err, size_t errlen)
{
    *out = NULL;
    struct evolve_tools *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    pthread_mutex_init(&t->mu, NULL);
    t->last = json_object();
    snprintf(t->drafts, sizeof t->drafts, "%s/drafts", c->evolve_dir);
    if ((mkdir(c->evolve_dir, 0700) < 0 && errno != EEXIST) || (mkdir(t->drafts, 0700) < 0 && errno != EEXIST)) {
        int e = errno;
        snprintf(err, errlen, "tools: cannot create %s: %s", t->drafts, strerror(e));
        evolve_tools_free(t);
        return -e;
    }
    *out = t;
    return 0;
}

void evolve_tools_free(struct evolve_tools *t)
{
    if (!t)
        return;
    json_decref(t->last);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- files ---- */

static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char *buf = malloc(TOOL_SRC_MAX + 1);
    size_t n = buf ? fread(buf, 1, TOOL_SRC_MAX + 1, f) : 0;
    fclose(f);
    if (!buf)
        return -ENOMEM;
    if (n > TOOL_SRC_MAX) {
        free(buf);
        snprintf(err, errlen, "%s: larger than %u bytes", path, TOOL_SRC_MAX);
        return -EFBIG;
    }
    buf[n] = 0;
    *data = buf;
    if (len)
        *len = n;
    return 0;
}

static int write_file(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    char tmp[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", tmp, strerror(e));
        return -e;
    }
    ssize_t w = write(fd, data, len);
    int e = w == (ssize_t)len ? 0 : (w < 0 ? errno : EIO);
    if (close(fd) < 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e) {
        unlink(tmp);
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    return 0;
}

/* Is tools/NAME.KIND committed (HEAD)? Its content in *src (malloc'd) when
 * src is not NULL. A file in the working tree that is not committed is no
 * tool. */
static bool in_head(evolve_cell *c, const char *name, const char *kind, char **src)
{
    char gpath[128], err[256], *data = NULL;
    size_t len = 0;
    snprintf(gpath, sizeof gpath, "tools/%s.%s", name, kind);
    if (evolve_genome_read(c->g, NULL, gpath, &data, &len, err, sizeof err) < 0)
        return false;
    if (src)
        *src = data;
    else
        free(data);
    return true;
}

/* A tool in the genome: its kind and the path in the working tree. */
static int find_tool(evolve_cell *c, const char *name, char *kind, char *path, size_t n)
{
    if (!c->g)
        return -ENOENT;
    const char *dir = evolve_genome_dir(c->g);
    static const char *kinds[] = {"lua", "wasm"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, n, "%s/tools/%s.%s", dir, name, kinds[i]);
        if (access(path, R_OK) == 0 && in_head(c, name, kinds[i], NULL)) {
            strcpy(kind, kinds[i]);
            return 0;
        }
    }
    return -ENOENT;
}

/* ---- the --tool-test shim mode and running tests ---- */

int evolve_tool_test_main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ippocd --tool-test FILE.lua\n");
        return 2;
    }
    char *src = NULL, err[1024] = "";
    if (read_file(argv[1], &src, NULL, err, sizeof err) < 0) {
        fprintf(stderr, "ippocd --tool-test: %s\n", err);
        return 2;
    }
    const char *base = strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1];
    char name[128];
    snprintf(name, sizeof name, "%s", base);
    char *dot = strrchr(name, '.');
    if (dot)
        *dot = 0;
    json_t *res = NULL;
    int rc = evolve_tool_run_lua(name, src, NULL, true, NULL, NULL, &res, err, sizeof err);
    free(src);
    if (rc < 0)
        res = json_pack("{s:b,s:s,s:b}", "ok", 0, "error", err, "load_error", 1);
    char *s = json_dumps(res, JSON_COMPACT);
    bool ok = json_is_true(json_object_get(res, "ok"));
    json_decref(res);
    printf("%s\n", s ? s : "{}");
    free(s);
    return ok ? 0 : 1;
}

static const char *shim_path(evolve_cell *c, char *buf, size_t n)
{
    if (c->shim)
        return c->shim;
    ssize_t k = readlink("/proc/self/exe", buf, n - 1);
    if (k <= 0)
        return "ippocd";
    buf[k] = 0;
    return buf;
}

/* Runs file's tests in the sandbox (`SHIM --tool-test FILE`); while the
 * sandbox is unavailable, in this process's restricted Lua state, and the
 * result's "sandbox" says so. 0 with *res, or -errno. */
static int test_in_sandbox(evolve_cell *c, const char *name, const char *file, json_t **res, char *err,
                           size_t errlen)
{
    *res = NULL;
    char exe[PATH_MAX];
    const char *shim = shim_path(c, exe, sizeof exe);
    char dir[PATH_MAX], copy[PATH_MAX];
    int rc = evolve_tool_stage(file, dir, copy, err, errlen);
    if (rc < 0)
        return rc;
    const char *argv[] = {shim, "--tool-test", copy, NULL};
    const char *const writable[] = {dir};
    evolve_sandbox_opts o = {.argv = argv, .cwd = "/", .writable = writable, .nwritable = 1, .timeout_ms = 30000,
                             .memory_bytes = 256ull << 20, .shim = c->shim};
    evolve_sandbox_result r;
    char why[512] = "";
    rc = evolve_sandbox_run(&o, &r, why, sizeof why);
    evolve_tool_unstage(dir, copy);
    if (rc == -ENOSYS) {
        char *src = NULL;
        if ((rc = read_file(file, &src, NULL, err, errlen)) < 0)
            return rc;
        rc = evolve_tool_run_lua(name, src, NULL, true, NULL, NULL, res, err, errlen);
        free(src);
        if (rc == -EINVAL) {
            *res = json_pack("{s:b,s:s,s:b}", "ok", 0, "error", err, "load_error", 1);
            rc = 0;
        }
        if (rc == 0)
            json_object_set_new(*res, "sandbox", json_sprintf("none (%s)", why));
        return rc;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: the sandbox could not start: %s", name, why);
        return rc;
    }
    json_error_t je;
    json_t *j = r.out ? json_loads(r.out, 0, &je) : NULL;
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_pack("{s:b,s:s}", "ok", 0, "error", "");
        json_object_set_new(j, "error", json_sprintf("the test run ended %s%s%s%s", evolve_sbx_verdict_name(r.verdict),
                                                     r.detail[0] ? ": " : "", r.detail,
                                                     r.err_tail && *r.err_tail ? " (see stderr)" : ""));
        if (r.err_tail && *r.err_tail)
            json_object_set_new(j, "stderr", json_string(r.err_tail));
    }
    json_object_set_new(j, "sandbox", json_string("bwrap"));
    json_object_set_new(j, "verdict", json_string(evolve_sbx_verdict_name(r.verdict)));
    evolve_sandbox_result_free(&r);
    *res = j;
    return 0;
}

/* ---- routes ---- */

static void record_run(struct evolve_tools *t, const char *name, const json_t *res)
{
    json_t *ok = json_object_get(res, "ok");
    json_t *e = json_pack("{s:I,s:O?,s:O?,s:O?}", "at", (json_int_t)time(NULL), "ok", ok, "ms",
                          json_object_get(res, "ms"), "error", json_object_get(res, "error"));
    pthread_mutex_lock(&t->mu);
    json_object_set_new(t->last, name, e);
    pthread_mutex_unlock(&t->mu);
}

static json_t *list_dir(evolve_cell *c, const char *dir, bool drafts)
{
    json_t *a = json_array();
    DIR *d = opendir(dir);
    if (!d)
        return a;
    struct dirent *de;
    while ((de = readdir(d))) {
        char name[256];
        snprintf(name, sizeof name, "%s", de->d_name);
        char *dot = strrchr(name, '.');
        if (!dot || (strcmp(dot, ".lua") && strcmp(dot, ".wasm")))
            continue;
        const char *kind = dot + 1;
        *dot = 0;
        char *src = NULL;
        if (!drafts && !in_head(c, name, kind, &src))
            continue;
        json_t *e = json_pack("{s:s,s:s,s:s}", "name", name, "kind", kind, "description", "");
        if (!strcmp(kind, "lua")) {
            char path[4600], err[512];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            json_t *info = NULL;
            if ((src || read_file(path, &src, NULL, err, sizeof err) == 0) &&
                evolve_tool_lua_info(name, src, &info, err, sizeof err) == 0) {
                json_object_set(e, "description", json_object_get(info, "description"));
                json_object_set(e, "tests", json_object_get(info, "tests"));
                json_decref(info);
            } else {
                json_object_set_new(e, "error", json_string(err));
            }
        }
        free(src);
        if (drafts) {
            char meta[4600], *m = NULL, err[256];
            snprintf(meta, sizeof meta, "%s/%s.json", dir, name);
            json_t *mj = read_file(meta, &m, NULL, err, sizeof err) == 0 ? json_loads(m, 0, NULL) : NULL;
            free(m);
            json_object_set_new(e, "id", json_string(name));
            if (mj) {
                json_object_set(e, "name", json_object_get(mj, "name"));
                json_object_set(e, "status", json_object_get(mj, "status"));
                json_decref(mj);
            }
        } else {
            pthread_mutex_lock(&c->tools->mu);
            json_t *last = json_object_get(c->tools->last, name);
            json_object_set_new(e, "last_run", last ? json_deep_copy(last) : json_null());
            pthread_mutex_unlock(&c->tools->mu);
        }
        json_array_append_new(a, e);
    }
    closedir(d);
    return a;
}

static char *route_list(evolve_cell *c, int *status)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/tools", c->g ? evolve_genome_dir(c->g) : "");
    json_t *tools = c->g ? list_dir(c, dir, false) : json_array();
    json_t *drafts = list_dir(c, c->tools->drafts, true);
    return evolve_reply(json_pack("{s:o,s:o}", "tools", tools, "drafts", drafts), 200, status);
}

/* ---- the host a tool run gets: the daemon's, with label matching ----
 * A tool names labels as "k=v,..." (docs/tools.md), often only some of
 * them ({mountpoint = "/"}); memory keys a series by all its labels in
 * Prometheus form (device="/dev/vda",mountpoint="/"). When the daemon's
 * exact lookup finds nothing, the newest series of that name holding every
 * k=v the tool named answers. */

/* Does canonical labels (k="v",...) hold k="v" for each k=v of want? */
static bool labels_hold(const char *canon, const char *want)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", want);
    char *save = NULL;
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return false;
        *eq = 0;
        char needle[600];
        const char *v = eq[1] == '"' ? eq + 1 : NULL; /* already quoted */
        snprintf(needle, sizeof needle, v ? "%s=%s" : "%s=\"%s\"", kv, v ? v : eq + 1);
        size_t nl = strlen(needle);
        bool found = false;
        for (const char *p = strstr(canon, needle); p && !found; p = strstr(p + 1, needle))
            found = (p == canon || p[-1] == ',') && (p[nl] == 0 || p[nl] == ',');
        if (!found)
            return false;
    }
    return true;
}

static int host_metric(void *ud, const char *name, const char *labels, double *value)
{
    evolve_cell *c = ud;
    int rc = c->h.tools.metric ? c->h.tools.metric(c->h.tools.ud, name, labels, value) : -ENOSYS;
    if ((rc != -ENOENT && rc != -ENOSYS) || !c->o.mem)
        return rc;
    mem_series_info *all = NULL;
    size_t n = 0;
    if (mem_series_snapshot(c->o.mem, &all, &n) < 0)
        return rc;
    int64_t best = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(all[i].name, name) && all[i].last_ts > best && labels_hold(all[i].labels, labels ? labels : "")) {
            best = all[i].last_ts;
            *value = all[i].last;
        }
    free(all);
    return best ? 0 : -ENOENT;
}

static char *host_incidents(void *ud, int n)
{
    evolve_cell *c = ud;
    return c->h.tools.incidents ? c->h.tools.incidents(c->h.tools.ud, n) : NULL;
}

static int host_propose(void *ud, const char *service, const char *action, const char *why, char *out,
                        size_t outlen)
{
    evolve_cell *c = ud;
    if (!c->h.tools.propose) {
        snprintf(out, outlen, "no safety policy is wired to take proposals");
        return -ENOSYS;
    }
    return c->h.tools.propose(c->h.tools.ud, service, action, why, out, outlen);
}

/* args object -> "KEY=VALUE" strings for a wasm tool */
static int wasm_args(const json_t *args, char **out, int max)
{
    int n = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)args, k, v) {
        if (n >= max)
            break;
        char *s = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        char *kv = NULL;
        if (s && asprintf(&kv, "%s=%s", k, s) < 0)
            kv = NULL;
        free(s);
        if (kv)
            out[n++] = kv;
    }
    out[n] = NULL;
    return n;
}

static char *route_run(evolve_cell *c, const char *name, const char *body, size_t len, int *status)
{
    char kind[8], path[4600], err[1024] = "";
    if (find_tool(c, name, kind, path, sizeof path) < 0)
        return evolve_error(404, status, "no tool '%s' in the genome (tools/%s.lua or .wasm)", name, name);
    json_t *args = NULL;
    if (body && len) {
        json_error_t je;
        json_t *b = json_loadb(body, len, 0, &je);
        if (!json_is_object(b)) {
            json_decref(b);
            return evolve_error(400, status, "body: expected {\"args\": {...}}: %s", b ? "not an object" : je.text);
        }
        args = json_incref(json_object_get(b, "args"));
        json_decref(b);
        if (args && !json_is_object(args)) {
            json_decref(args);
            return evolve_error(400, status, "body: \"args\" must be an object of KEY: VALUE");
        }
    }
    json_t *res = NULL;
    int rc;
    if (!strcmp(kind, "lua")) {
        char *src = NULL; /* what HEAD holds, not the working tree */
        rc = in_head(c, name, kind, &src) ? 0 : read_file(path, &src, NULL, err, sizeof err);
        if (rc == 0) {
            evolve_tool_host host = {.metric = (c->h.tools.metric || c->o.mem) ? host_metric : NULL,
                                     .incidents = c->h.tools.incidents ? host_incidents : NULL,
                                     .propose = host_propose, .ud = c};
            rc = evolve_tool_run_lua(name, src, args, false, &host, NULL, &res, err, sizeof err);
        }
        free(src);
    } else {
        char *argv[65];
        int n = args ? wasm_args(args, argv, 64) : (argv[0] = NULL, 0);
        rc = evolve_tool_run_wasm(path, (const char *const *)argv, c->shim, &res, err, sizeof err);
        for (int i = 0; i < n; i++)
            free(argv[i]);
    }
    json_decref(args);
    if (rc == -EINVAL)
        return evolve_error(422, status, "%s", err);
    if (rc < 0)
        return evolve_error(rc == -ENOSYS ? 503 : 500, status, "%s", err);
    record_run(c->tools, name, res);
    if (c->o.mem) { /* a "tool.run" event in memory: what ran, how it ended */
        json_t *ev = json_pack("{s:s,s:s,s:O?,s:O?,s:O?}", "tool", name, "kind", kind, "ok",
                               json_object_get(res, "ok"), "ms", json_object_get(res, "ms"), "error",
                               json_object_get(res, "error"));
        char *p = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
        if (p)
            mem_event_add(c->o.mem, 0, "tool.run", json_is_true(json_object_get(res, "ok")) ? "info" : "warning",
                          "tool", p);
        free(p);
        json_decref(ev);
    }
    json_object_set_new(res, "name", json_string(name));
    json_object_set_new(res, "kind", json_string(kind));
    return evolve_reply(res, 200, status);
}

static char *route_test(evolve_cell *c, const char *name, int *status)
{
    char kind[8], path[4600], err[1024] = "";
    if (find_tool(c, name, kind, path, sizeof path) < 0)
        return evolve_error(404, status, "no tool '%s' in the genome", name);
    if (strcmp(kind, "lua"))
        return evolve_error(400, status, "%s is a wasm tool: only Lua tools carry tests", name);
    json_t *res = NULL;
    int rc = test_in_sandbox(c, name, path, &res, err, sizeof err);
    if (rc < 0)
        return evolve_error(500, status, "%s", err);
    json_object_set_new(res, "name", json_string(name));
    return evolve_reply(res, 200, status);
}

/* ---- drafts ---- */

static const char draft_schema[] =
    "{\"type\":\"object\",\"properties\":{\"source\":{\"type\":\"string\"}},\"required\":[\"source\"],"
    "\"additionalProperties\":false}";

static const char draft_system[] =
    "You write small tools for IPPOC, a self-healing agent for Linux servers, in Lua 5.4. A tool is a chunk that "
    "returns a table {name = NAME, description = TEXT, run = function(args) ... return VALUE end, tests = {NAME = "
    "function() ... assert(...) end, ...}}. Only base, string, table, math and utf8 exist: no io, os, require, "
    "debug, load or coroutine. The API: ippoc.metric(name[, labels]) -> number or nil; ippoc.incidents([n]) -> "
    "array of tables; ippoc.propose(service, action, why) -> the safety policy's verdict string (actions: "
    "restart, reload, stop, start, clean, ...); ippoc.log(...); ippoc.now() -> milliseconds. Each test starts with "
    "a fresh ippoc table and must replace the functions it uses with stubs (ippoc.metric = function(n) return 95 "
    "end). Write at least two tests. Answer with JSON {\"source\": \"...the Lua chunk...\"}.";

/* Asks the model for a tool's source; malloc'd or NULL with err. */
static char *draft_from_model(evolve_cell *c, const char *name, const char *desc, int *status, char *err,
                              size_t errlen)
{
    if (!c->o.llm || !llm_available(c->o.llm)) {
        *status = 503;
        snprintf(err, errlen, "drafting a tool needs a model: configure [llm] local or cloud (or use `ippoc tool add "
                              "FILE`)");
        return NULL;
    }
    char user[4096];
    snprintf(user, sizeof user, "Write the tool '%s': %s", name, desc);
    llm_request rq = {.purpose = "tool", .system = draft_system, .user = user, .schema_name = "tool",
                      .schema = draft_schema, .max_tokens = 4096};
    llm_answer a = {0};
    int rc = llm_complete(c->o.llm, &rq, &a, err, errlen);
    char *src = NULL;
    if (rc == 0) {
        json_t *j = json_loads(a.content ? a.content : "", 0, NULL);
        const char *s = json_string_value(json_object_get(j, "source"));
        if (s)
            src = strdup(s);
        else
            snprintf(err, errlen, "the model's answer has no \"source\" string");
        json_decref(j);
    }
    llm_answer_free(&a);
    if (!src)
        *status = rc == -ENOENT ? 503 : 502;
    return src;
}

static void save_meta(struct evolve_tools *t, const char *id, json_t *meta)
{
    char path[4400], err[256];
    snprintf(path, sizeof path, "%s/%s.json", t->drafts, id);
    char *s = json_dumps(meta, JSON_INDENT(2));
    if (s)
        write_file(path, s, strlen(s), err, sizeof err);
    free(s);
}

static json_t *read_meta(struct evolve_tools *t, const char *id)
{
    char path[4400], *m = NULL, err[256];
    snprintf(path, sizeof path, "%s/%s.json", t->drafts, id);
    json_t *j = read_file(path, &m, NULL, err, sizeof err) == 0 ? json_loads(m, 0, NULL) : NULL;
    free(m);
    return j;
}

/* The draft's meta once it left "proposed" (accepted or failed), polled
 * every 20 ms up to wait_ms; else as it is. */
static json_t *wait_meta(struct evolve_tools *t, const char *id, int wait_ms)
{
    for (int waited = 0;; waited += 20) {
        json_t *j = read_meta(t, id);
        const char *st = json_string_value(json_object_get(j, "status"));
        if (waited >= wait_ms || (st && strcmp(st, "proposed")))
            return j;
        json_decref(j);
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
    }
}

/* A draft whose tests passed goes to the safety policy as a "tool" change;
 * the answer says what became of it (meta: the draft's record, stolen). */
static char *propose_draft(evolve_cell *c, const char *id, const char *name, const char *by, const char *desc,
                           json_t *meta, int *status)
{
    struct evolve_tools *t = c->tools;
    char err[1024] = "";
    int rc;
    if (!c->h.change) {
        json_object_set_new(meta, "status", json_string("tested"));
        save_meta(t, id, meta);
        json_decref(meta);
        return evolve_error(503, status, "draft %s passed its tests, but no safety policy is wired to add it", id);
    }
    char why[1024], verdict[64] = "";
    snprintf(why, sizeof why, "add tool %s (%s): %s", name, by, *desc ? desc : "no description");
    json_object_set_new(meta, "status", json_string("proposed"));
    save_meta(t, id, meta);
    err[0] = 0;
    rc = c->h.change(c->h.ud, "tool", id, why, verdict, sizeof verdict, err, sizeof err);
    /* evolve_tools_accept may have run (and rewritten the meta) by now;
     * heal runs an executed change on its pool: wait a little for it */
    bool executing = rc == 0 && !strcmp(verdict, "execute");
    json_t *now = wait_meta(t, id, executing ? 3000 : 0);
    if (now) {
        json_decref(meta);
        meta = now;
    }
    const char *stv = json_string_value(json_object_get(meta, "status"));
    if (rc < 0 || !strcmp(verdict, "refuse")) {
        json_object_set_new(meta, "status", json_string("refused"));
        json_object_set_new(meta, "reason", json_sprintf("the safety policy: %s", err[0] ? err : "refused"));
        save_meta(t, id, meta);
        json_t *reply = json_pack("{s:s,s:s,s:s,s:O}", "id", id, "name", name, "status", "refused", "error",
                                  json_object_get(meta, "reason"));
        json_decref(meta);
        return evolve_reply(reply, 409, status);
    }
    if (stv && !strcmp(stv, "failed")) {
        char *r = evolve_error(500, status, "draft %s passed its tests and the policy, but adding it failed: %s", id,
                               json_string_value(json_object_get(meta, "error")));
        json_decref(meta);
        return r;
    }
    bool queued = !strcmp(verdict, "queue");
    if (queued && stv && !strcmp(stv, "proposed")) {
        json_object_set_new(meta, "status", json_string("queued"));
        save_meta(t, id, meta);
    }
    json_t *reply = json_pack("{s:s,s:s,s:s,s:s}", "id", id, "name", name, "verdict", verdict, "status",
                              json_string_value(json_object_get(meta, "status")));
    json_object_set(reply, "commit", json_object_get(meta, "commit"));
    json_decref(meta);
    return evolve_reply(reply, queued ? 202 : 201, status);
}

static char *route_draft(evolve_cell *c, const char *body, size_t len, int *status)
{
    json_error_t je;
    json_t *b = body && len ? json_loadb(body, len, 0, &je) : NULL;
    if (!json_is_object(b)) {
        json_decref(b);
        return evolve_error(400, status, "body: expected {\"name\", \"description\"} or {\"name\", \"source\"}");
    }
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *desc = json_string_value(json_object_get(b, "description"));
    const char *given = json_string_value(json_object_get(b, "source"));
    if (!evolve_tool_name_ok(name)) {
        json_decref(b);
        return evolve_error(400, status, "name: expected 1 to 64 letters, digits, '_' or '-'");
    }
    if (!given && (!desc || !*desc)) {
        json_decref(b);
        return evolve_error(400, status, "description: say what the tool should do (or send its \"source\")");
    }
    if (given && strlen(given) > TOOL_SRC_MAX) {
        json_decref(b);
        return evolve_error(400, status, "source: larger than %u bytes", TOOL_SRC_MAX);
    }
    /* the body's strings are copied: the body is freed before the end */
    char name_buf[72], desc_buf[1024];
    snprintf(name_buf, sizeof name_buf, "%s", name);
    snprintf(desc_buf, sizeof desc_buf, "%s", desc ? desc : "");
    json_t *info = NULL;
    char ierr[256];
    if (given && !desc_buf[0] && evolve_tool_lua_info(name, given, &info, ierr, sizeof ierr) == 0) {
        snprintf(desc_buf, sizeof desc_buf, "%s", json_string_value(json_object_get(info, "description")));
        json_decref(info);
    }
    name = name_buf;
    desc = desc_buf;
    char err[1024] = "";
    int st = 0;
    char *src = given ? strdup(given) : draft_from_model(c, name, desc, &st, err, sizeof err);
    if (!src) {
        json_decref(b);
        return evolve_error(st ? st : 500, status, "%s", err);
    }
    struct evolve_tools *t = c->tools;
    pthread_mutex_lock(&t->mu);
    unsigned seq = ++t->seq;
    pthread_mutex_unlock(&t->mu);
    char id[128], file[4400];
    snprintf(id, sizeof id, "%s-%lx%x", name, (unsigned long)time(NULL), seq);
    snprintf(file, sizeof file, "%s/%s.lua", t->drafts, id);
    bool by_operator = given != NULL;
    json_decref(b);
    json_t *meta = json_pack("{s:s,s:s,s:s,s:s,s:I}", "id", id, "name", name, "description", desc, "author",
                             by_operator ? "operator" : "ippoc", "created", (json_int_t)time(NULL));
    int rc = write_file(file, src, strlen(src), err, sizeof err);
    free(src);
    if (rc < 0) {
        json_decref(meta);
        return evolve_error(500, status, "%s", err);
    }
    json_t *res = NULL;
    rc = test_in_sandbox(c, name, file, &res, err, sizeof err);
    if (rc < 0) {
        json_object_set_new(meta, "status", json_string("error"));
        json_object_set_new(meta, "error", json_string(err));
        save_meta(t, id, meta);
        json_decref(meta);
        return evolve_error(500, status, "%s", err);
    }
    json_object_set(meta, "test", res);
    if (!json_is_true(json_object_get(res, "ok"))) {
        json_object_set_new(meta, "status", json_string("refused"));
        json_object_set_new(meta, "reason", json_sprintf("its tests did not pass: %s",
                                                         json_string_value(json_object_get(res, "error"))));
        save_meta(t, id, meta);
        json_t *reply = json_pack("{s:s,s:s,s:O,s:s,s:O}", "id", id, "status", "refused", "error",
                                  json_object_get(meta, "reason"), "name", name, "test", res);
        json_decref(res);
        json_decref(meta);
        return evolve_reply(reply, 422, status);
    }
    json_decref(res);
    return propose_draft(c, id, name, by_operator ? "posted by an operator" : "drafted by the model", desc, meta,
                         status);
}

static bool id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (!n || n > 100)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", id[i]))
            return false;
    return true;
}

int evolve_tools_accept(evolve_cell *c, const char *id, char *err, size_t errlen)
{
    if (!id_ok(id)) {
        snprintf(err, errlen, "tool: bad draft id '%s'", id ? id : "");
        return -EINVAL;
    }
    struct evolve_tools *t = c->tools;
    char path[4400], *meta_text = NULL, *src = NULL;
    snprintf(path, sizeof path, "%s/%s.json", t->drafts, id);
    int rc = read_file(path, &meta_text, NULL, err, errlen);
    json_t *meta = rc == 0 ? json_loads(meta_text, 0, NULL) : NULL;
    free(meta_text);
    if (!meta) {
        snprintf(err, errlen, "tool: no draft %s", id);
        return -ENOENT;
    }
    const char *st = json_string_value(json_object_get(meta, "status"));
    if (!st || (strcmp(st, "proposed") && strcmp(st, "queued") && strcmp(st, "tested"))) {
        snprintf(err, errlen, "tool: draft %s is %s, not waiting to be added", id, st ? st : "in an unknown state");
        json_decref(meta);
        return -EINVAL;
    }
    snprintf(path, sizeof path, "%s/%s.lua", t->drafts, id);
    size_t len = 0;
    if ((rc = read_file(path, &src, &len, err, errlen)) < 0) {
        json_decref(meta);
        return rc;
    }
    const char *name = json_string_value(json_object_get(meta, "name"));
    json_t *test = json_object_get(meta, "test");
    json_t *val = json_object_get(test, "value");
    char gpath[128], reason[1024], fitness[128], oid[41] = "";
    snprintf(gpath, sizeof gpath, "tools/%s.lua", name ? name : id);
    snprintf(reason, sizeof reason, "draft %s: %s", id, json_string_value(json_object_get(meta, "description")));
    snprintf(fitness, sizeof fitness, "tests %lld/%lld passed",
             (long long)json_integer_value(json_object_get(val, "passed")),
             (long long)(json_integer_value(json_object_get(val, "passed")) +
                         json_integer_value(json_object_get(val, "failed"))));
    evolve_trailer tr = {.kind = "tool", .author = json_string_value(json_object_get(meta, "author")),
                         .reason = reason, .fitness = fitness};
    rc = c->g ? evolve_genome_write(c->g, gpath, src, len, &tr, oid, err, errlen) : -ENOSYS;
    free(src);
    if (rc < 0) {
        if (!c->g)
            snprintf(err, errlen, "tool: no genome");
        json_object_set_new(meta, "status", json_string("failed"));
        json_object_set_new(meta, "error", json_string(err));
        save_meta(t, id, meta);
        json_decref(meta);
        return rc;
    }
    json_object_set_new(meta, "status", json_string("accepted"));
    json_object_set_new(meta, "commit", json_string(oid));
    save_meta(t, id, meta);
    json_decref(meta);
    return 0;
}

char *evolve_tools_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body,
                        size_t len, int *status)
{
    (void)query;
    if (!c->tools)
        return evolve_error(503, status, "tools are unavailable");
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(path, "/v1/tools") || !strcmp(path, "/v1/tools/")) {
        if (!get)
            return evolve_error(405, status, "/v1/tools: use GET");
        return route_list(c, status);
    }
    if (!strcmp(path, "/v1/tools/draft")) {
        if (!post)
            return evolve_error(405, status, "/v1/tools/draft: use POST");
        return route_draft(c, body, len, status);
    }
    char name[128], verb[16];
    if (strncmp(path, "/v1/tools/", 10))
        return evolve_error(404, status, "no such resource: %s", path);
    const char *rest = path + 10;
    const char *slash = strchr(rest, '/');
    if (!slash || (size_t)(slash - rest) >= sizeof name || strlen(slash + 1) >= sizeof verb)
        return evolve_error(404, status, "no such resource: %s", path);
    memcpy(name, rest, (size_t)(slash - rest));
    name[slash - rest] = 0;
    snprintf(verb, sizeof verb, "%s", slash + 1);
    if (!evolve_tool_name_ok(name))
        return evolve_error(400, status, "tool name '%s': expected letters, digits, '_' or '-'", name);
    if (strcmp(verb, "run") && strcmp(verb, "test"))
        return evolve_error(404, status, "no such resource: %s (run, test)", path);
    if (!post)
        return evolve_error(405, status, "%s: use POST", path);
    return !strcmp(verb, "run") ? route_run(c, name, body, len, status) : route_test(c, name, status);
}
