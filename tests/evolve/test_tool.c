/* test_tool.c: ToolSmith's Lua runner and wasm tools (evolve_tool_run_lua,
 * evolve_tool_run_wasm): values, forbidden calls, the instruction, memory and
 * time limits, the host API, tests and load errors; a wasm module built with
 * wat2wasm at test time. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "evolve/evolve.h"
#include "evolve/evolve_int.h"

static json_t *run(const char *src, const json_t *args, bool test, const evolve_tool_host *h,
                   const evolve_tool_limits *lim)
{
    json_t *res = NULL;
    char err[1024] = "";
    int rc = evolve_tool_run_lua("t", src, args, test, h, lim, &res, err, sizeof err);
    if (rc)
        fprintf(stderr, "run: %d %s\n", rc, err);
    assert_int_equal(rc, 0);
    assert_non_null(res);
    return res;
}

static const char *error_of(json_t *res)
{
    const char *e = json_string_value(json_object_get(res, "error"));
    return e ? e : "";
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_value(void **state)
{
    (void)state;
    json_t *args = json_pack("{s:i,s:s}", "n", 20, "who", "db");
    json_t *res = run("return {name='t', run=function(a) return {sum=a.n + 1, who=a.who, list={1,2,3}, "
                      "f=0.5, yes=true} end}",
                      args, false, NULL, NULL);
    assert_true(json_is_true(json_object_get(res, "ok")));
    json_t *v = json_object_get(res, "value");
    assert_int_equal(json_integer_value(json_object_get(v, "sum")), 21);
    assert_string_equal(json_string_value(json_object_get(v, "who")), "db");
    assert_int_equal(json_array_size(json_object_get(v, "list")), 3);
    assert_true(json_real_value(json_object_get(v, "f")) == 0.5);
    assert_true(json_is_true(json_object_get(v, "yes")));
    assert_true(json_integer_value(json_object_get(res, "instructions")) >= 0);
    json_decref(args);
    json_decref(res);
}

static void expect_forbidden(const char *call, const char *named)
{
    char src[512];
    snprintf(src, sizeof src, "return {run=function() %s end}", call);
    json_t *res = run(src, NULL, false, NULL, NULL);
    assert_false(json_is_true(json_object_get(res, "ok")));
    char want[128];
    snprintf(want, sizeof want, "%s is not available in IPPOC tools", named);
    if (!strstr(error_of(res), want))
        fail_msg("%s: error '%s' does not say '%s'", call, error_of(res), want);
    json_decref(res);
}

static void test_forbidden(void **state)
{
    (void)state;
    expect_forbidden("os.execute('touch /tmp/ippoc-tool-pwned')", "os");
    expect_forbidden("return io.open('/etc/passwd')", "io");
    expect_forbidden("return require('socket')", "require");
    expect_forbidden("return load('return 1')()", "load");
    expect_forbidden("return debug.getinfo(1)", "debug");
    assert_int_not_equal(access("/tmp/ippoc-tool-pwned", F_OK), 0);
}

static void test_instruction_limit(void **state)
{
    (void)state;
    int64_t t0 = mono_ms();
    json_t *res = run("return {run=function() while true do end end}", NULL, false, NULL, NULL);
    int64_t ms = mono_ms() - t0;
    assert_false(json_is_true(json_object_get(res, "ok")));
    assert_non_null(strstr(error_of(res), "instruction limit"));
    assert_true(ms < 1000);
    json_decref(res);
    /* a pcall in the tool cannot swallow the stop */
    res = run("return {run=function() while true do pcall(function() while true do end end) end end}", NULL,
              false, NULL, NULL);
    assert_non_null(strstr(error_of(res), "instruction limit"));
    json_decref(res);
}

static void test_time_limit(void **state)
{
    (void)state;
    /* many instructions allowed, little time: the wall deadline stops it */
    evolve_tool_limits lim = {.instructions = UINT64_MAX / 2, .timeout_ms = 200};
    int64_t t0 = mono_ms();
    json_t *res = run("return {run=function() local x = 0 while true do x = x + 1 end end}", NULL, false, NULL, &lim);
    int64_t ms = mono_ms() - t0;
    assert_non_null(strstr(error_of(res), "time limit"));
    assert_true(ms >= 150 && ms < 2000);
    json_decref(res);
}

static void test_memory_limit(void **state)
{
    (void)state;
    evolve_tool_limits lim = {.memory_bytes = 4u << 20};
    json_t *res = run("return {run=function() local s = 'x' while true do s = s .. s end end}", NULL, false, NULL,
                      &lim);
    assert_false(json_is_true(json_object_get(res, "ok")));
    if (!strstr(error_of(res), "not enough memory"))
        fail_msg("error: %s", error_of(res));
    json_decref(res);
}

static void test_string_dump_gone(void **state)
{
    (void)state;
    json_t *res = run("return {run=function() return {dump = string.dump == nil, rep = string.rep('a', 3)} end}",
                      NULL, false, NULL, NULL);
    json_t *v = json_object_get(res, "value");
    assert_true(json_is_true(json_object_get(v, "dump")));
    assert_string_equal(json_string_value(json_object_get(v, "rep")), "aaa");
    json_decref(res);
}

/* ---- the host ---- */

typedef struct spy {
    char metric[128], labels[128];
    char service[64], action[64], why[128];
    int proposals;
} spy;

static int spy_metric(void *ud, const char *name, const char *labels, double *value)
{
    spy *s = ud;
    snprintf(s->metric, sizeof s->metric, "%s", name);
    snprintf(s->labels, sizeof s->labels, "%s", labels);
    if (strcmp(name, "disk.used_pct"))
        return -ENOENT;
    *value = 93.5;
    return 0;
}

static int spy_propose(void *ud, const char *service, const char *action, const char *why, char *out,
                       size_t outlen)
{
    spy *s = ud;
    s->proposals++;
    snprintf(s->service, sizeof s->service, "%s", service);
    snprintf(s->action, sizeof s->action, "%s", action);
    snprintf(s->why, sizeof s->why, "%s", why);
    snprintf(out, outlen, "queue");
    return 0;
}

static char *spy_incidents(void *ud, int n)
{
    (void)ud;
    char *s = NULL;
    if (asprintf(&s, "[{\"id\":7,\"service\":\"web\",\"asked\":%d}]", n) < 0)
        return NULL;
    return s;
}

static void test_host_metric(void **state)
{
    (void)state;
    spy s = {0};
    evolve_tool_host h = {.metric = spy_metric, .incidents = spy_incidents, .ud = &s};
    json_t *res = run("return {run=function() return {v = ippoc.metric('disk.used_pct', {mount='/', dev='sda'}), "
                      "none = ippoc.metric('nope') == nil, inc = ippoc.incidents(3)} end}",
                      NULL, false, &h, NULL);
    assert_true(json_is_true(json_object_get(res, "ok")));
    json_t *v = json_object_get(res, "value");
    assert_true(json_number_value(json_object_get(v, "v")) == 93.5);
    assert_true(json_is_true(json_object_get(v, "none")));
    json_t *inc = json_array_get(json_object_get(v, "inc"), 0);
    assert_int_equal(json_integer_value(json_object_get(inc, "id")), 7);
    assert_int_equal(json_integer_value(json_object_get(inc, "asked")), 3);
    assert_string_equal(s.metric, "nope");
    json_decref(res);
    /* labels sorted into "k=v,..." */
    res = run("return {run=function() return ippoc.metric('disk.used_pct', {mount='/', dev='sda'}) end}", NULL,
              false, &h, NULL);
    assert_string_equal(s.labels, "dev=sda,mount=/");
    json_decref(res);
    /* without a host the call says so */
    res = run("return {run=function() return ippoc.metric('x') end}", NULL, false, NULL, NULL);
    assert_non_null(strstr(error_of(res), "ippoc.metric is unavailable"));
    json_decref(res);
}

static void test_host_propose(void **state)
{
    (void)state;
    spy s = {0};
    evolve_tool_host h = {.propose = spy_propose, .ud = &s};
    json_t *res = run("return {run=function() ippoc.log('asking', 1) print('and', true) "
                      "return ippoc.propose('web', 'restart', 'slow') end}",
                      NULL, false, &h, NULL);
    assert_true(json_is_true(json_object_get(res, "ok")));
    assert_string_equal(json_string_value(json_object_get(res, "value")), "queue");
    assert_int_equal(s.proposals, 1);
    assert_string_equal(s.service, "web");
    assert_string_equal(s.action, "restart");
    assert_string_equal(s.why, "slow");
    json_t *log = json_object_get(res, "log");
    assert_int_equal(json_array_size(log), 2);
    assert_string_equal(json_string_value(json_array_get(log, 0)), "asking\t1");
    assert_string_equal(json_string_value(json_array_get(log, 1)), "and\ttrue");
    json_decref(res);
}

static void test_tests(void **state)
{
    (void)state;
    /* a tool reaches its own run through a local (documented) */
    const char *src = "local T T = {run=function() return ippoc.metric('x') end, tests={"
                      "passes=function() ippoc.metric = function() return 5 end assert(T.run() == 5) end,"
                      "fails=function() assert(1 == 2, 'one is not two') end,"
                      "fresh=function() assert(not pcall(ippoc.metric, 'x')) end}} return T";
    json_t *res = run(src, NULL, true, NULL, NULL);
    assert_false(json_is_true(json_object_get(res, "ok")));
    if (!strstr(error_of(res), "1 of 3 tests failed; fails: ") || !strstr(error_of(res), "one is not two"))
        fail_msg("error: %s", error_of(res));
    json_t *tests = json_object_get(res, "tests");
    assert_int_equal(json_array_size(tests), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(tests, 0), "name")), "fails");
    assert_true(json_is_true(json_object_get(json_array_get(tests, 1), "ok")));
    assert_true(json_is_true(json_object_get(json_array_get(tests, 2), "ok")));
    json_decref(res);
    /* no tests is not a pass */
    res = run("return {run=function() end}", NULL, true, NULL, NULL);
    assert_false(json_is_true(json_object_get(res, "ok")));
    assert_non_null(strstr(error_of(res), "no tests"));
    json_decref(res);
}

static void test_syntax_error(void **state)
{
    (void)state;
    json_t *res = NULL;
    char err[512] = "";
    int rc = evolve_tool_run_lua("broken", "return {\nrun = function()\n  return 1 +\nend}", NULL, false, NULL, NULL,
                                 &res, err, sizeof err);
    assert_int_equal(rc, -EINVAL);
    assert_null(res);
    if (strncmp(err, "broken:4:", 9))
        fail_msg("err: %s", err);
    /* a chunk that does not return a table */
    res = run("return 42", NULL, false, NULL, NULL);
    assert_non_null(strstr(error_of(res), "must return a table"));
    json_decref(res);
    /* binary chunks are refused */
    rc = evolve_tool_run_lua("bin", "\x1bLua", NULL, false, NULL, NULL, &res, err, sizeof err);
    assert_int_equal(rc, -EINVAL);
}

/* ---- wasm ---- */

static bool have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

static void wat(const char *dir, const char *name, const char *text, char *wasm, size_t n)
{
    char path[512], cmd[1400];
    snprintf(path, sizeof path, "%s/%s.wat", dir, name);
    snprintf(wasm, n, "%s/%s.wasm", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "wat2wasm '%s' -o '%s'", path, wasm);
    assert_int_equal(system(cmd), 0);
}

static void test_wasm(void **state)
{
    (void)state;
    if (!have("wasm-interp") || !have("wat2wasm"))
        skip();
    char dir[] = "/tmp/ippoc-test-tool-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char hello[600], answer[600];
    wat(dir, "hello",
        "(module (import \"wasi_snapshot_preview1\" \"fd_write\" (func $w (param i32 i32 i32 i32) (result i32)))"
        " (memory 1) (export \"memory\" (memory 0)) (data (i32.const 8) \"hello\\n\")"
        " (func (export \"_start\") (i32.store (i32.const 0) (i32.const 8)) (i32.store (i32.const 4) (i32.const 6))"
        " (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))))",
        hello, sizeof hello);
    wat(dir, "answer", "(module (func (export \"run\") (result i32) i32.const 42))", answer, sizeof answer);
    json_t *res = NULL;
    char err[512] = "";
    const char *args[] = {"a=1", NULL};
    assert_int_equal(evolve_tool_run_wasm(hello, args, getenv("IPPOCD"), &res, err, sizeof err), 0);
    char mode[16];
    assert_non_null(json_string_value(json_object_get(res, "mode")));
    snprintf(mode, sizeof mode, "%s", json_string_value(json_object_get(res, "mode")));
    if (!strcmp(mode, "wasi")) {
        /* an interpreter with WASI: the module's own output */
        assert_true(json_is_true(json_object_get(res, "ok")));
        assert_string_equal(json_string_value(json_object_get(res, "value")), "hello\n");
    } else {
        /* Debian's wabt without WASI: the exports ran; fd_write has no import */
        assert_string_equal(mode, "exports");
        assert_false(json_is_true(json_object_get(res, "ok")));
        print_message("wasm-interp has no WASI here: %s\n", error_of(res));
    }
    json_decref(res);
    assert_int_equal(evolve_tool_run_wasm(answer, NULL, getenv("IPPOCD"), &res, err, sizeof err), 0);
    if (!strcmp(mode, "exports")) {
        assert_true(json_is_true(json_object_get(res, "ok")));
        assert_non_null(strstr(json_string_value(json_object_get(res, "value")), "run() => i32:42"));
    }
    json_decref(res);
    /* a missing module is an error naming it */
    char missing[640];
    snprintf(missing, sizeof missing, "%s/missing.wasm", dir);
    assert_true(evolve_tool_run_wasm(missing, NULL, NULL, &res, err, sizeof err) < 0);
    assert_non_null(strstr(err, "missing.wasm"));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* the example tools in tools/ pass their own tests */
static void test_examples(void **state)
{
    (void)state;
    const char *src_root = getenv("IPPOC_SRC");
    if (!src_root)
        skip();
    static const char *names[] = {"disk_hog", "restart_if_slow"};
    for (int i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tools/%s.lua", src_root, names[i]);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        static char src[65536];
        size_t n = fread(src, 1, sizeof src - 1, f);
        fclose(f);
        src[n] = 0;
        json_t *res = NULL;
        char err[512];
        assert_int_equal(evolve_tool_run_lua(names[i], src, NULL, true, NULL, NULL, &res, err, sizeof err), 0);
        if (!json_is_true(json_object_get(res, "ok")))
            fail_msg("%s: %s", names[i], error_of(res));
        assert_true(json_integer_value(json_object_get(json_object_get(res, "value"), "passed")) >= 3);
        json_decref(res);
    }
}

/* ---- the routes, on a real cell (genome in a temporary dir) ---- */

static evolve_cell *the_cell;
static int changes;
static char policy_verdict[16] = "execute";

/* the safety policy, as heal would decide it: run it now (or queue, refuse) */
static int fake_change(void *ud, const char *op, const char *arg, const char *why, char *verdict, size_t vlen,
                       char *err, size_t errlen)
{
    (void)ud;
    (void)why;
    changes++;
    snprintf(verdict, vlen, "%s", policy_verdict);
    if (!strcmp(policy_verdict, "refuse")) {
        snprintf(err, errlen, "[evolve] changes = refuse");
        return -EPERM;
    }
    if (!strcmp(policy_verdict, "queue"))
        return 0;
    assert_string_equal(op, "tool");
    return evolve_execute(the_cell, op, arg, err, errlen);
}

static json_t *http(const char *method, const char *path, json_t *body, int *status)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char *ans = evolve_http(the_cell, method, path, NULL, text, text ? strlen(text) : 0, status);
    free(text);
    assert_non_null(ans);
    json_t *j = json_loads(ans, 0, NULL);
    if (!j)
        fail_msg("%s %s: not JSON: %s", method, path, ans);
    free(ans);
    return j;
}

static const char good_src[] = "local T T = {description = 'twice x', run = function(a) return (a.x or 0) * 2 end,"
                               " tests = {twice = function() assert(T.run({x = 4}) == 8) end}} return T";

static void test_routes(void **state)
{
    (void)state;
    char dir[] = "/tmp/ippoc-test-tool-cell-XXXXXX";
    assert_non_null(mkdtemp(dir));
    evolve_cell_opts o = {.state_dir = dir, .shim = getenv("IPPOCD")};
    evolve_hooks h = {.change = fake_change};
    char err[1024] = "";
    int rc = evolve_cell_new(&o, &h, &the_cell, err, sizeof err);
    if (rc)
        fail_msg("evolve_cell_new: %s", err);
    int st = 0;
    /* a person's tool: tested, executed by the policy, committed */
    json_t *a = http("POST", "/v1/tools/draft", json_pack("{s:s,s:s}", "name", "twice", "source", good_src), &st);
    if (st != 201)
        fail_msg("draft: %d %s", st, json_dumps(a, 0));
    assert_string_equal(json_string_value(json_object_get(a, "status")), "accepted");
    assert_int_equal(strlen(json_string_value(json_object_get(a, "commit"))), 40);
    json_decref(a);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(evolve_genome_read(evolve_cell_genome(the_cell), NULL, "tools/twice.lua", &data, &len, err,
                                        sizeof err),
                     0);
    assert_string_equal(data, good_src);
    free(data);
    json_t *hist = evolve_genome_history(evolve_cell_genome(the_cell), "tools/twice.lua", 0, err, sizeof err);
    assert_non_null(hist);
    json_t *c0 = json_array_get(json_is_array(hist) ? hist : json_object_get(hist, "commits"), 0);
    assert_string_equal(json_string_value(json_object_get(c0, "kind")), "tool");
    assert_string_equal(json_string_value(json_object_get(c0, "fitness")), "tests 1/1 passed");
    json_decref(hist);
    /* listed, run, tested */
    a = http("GET", "/v1/tools", NULL, &st);
    assert_int_equal(st, 200);
    json_t *t0 = json_array_get(json_object_get(a, "tools"), 0);
    assert_string_equal(json_string_value(json_object_get(t0, "name")), "twice");
    assert_string_equal(json_string_value(json_object_get(t0, "description")), "twice x");
    json_decref(a);
    a = http("POST", "/v1/tools/twice/run", json_pack("{s:{s:i}}", "args", "x", 21), &st);
    assert_int_equal(st, 200);
    assert_int_equal(json_integer_value(json_object_get(a, "value")), 42);
    json_decref(a);
    a = http("POST", "/v1/tools/twice/test", NULL, &st);
    assert_int_equal(st, 200);
    if (!json_is_true(json_object_get(a, "ok")))
        fail_msg("test: %s", json_dumps(a, 0));
    print_message("tool tests ran in sandbox: %s\n", json_string_value(json_object_get(a, "sandbox")));
    json_decref(a);
    a = http("GET", "/v1/tools", NULL, &st);
    t0 = json_array_get(json_object_get(a, "tools"), 0);
    assert_true(json_is_true(json_object_get(json_object_get(t0, "last_run"), "ok")));
    json_decref(a);
    /* a wasm tool committed to the genome runs through the same route */
    if (have("wasm-interp") && have("wat2wasm")) {
        char wasm[600], *bin = NULL, oid[41];
        size_t blen = 0;
        wat(dir, "answer", "(module (func (export \"run\") (result i32) i32.const 42))", wasm, sizeof wasm);
        FILE *f = fopen(wasm, "rb");
        assert_non_null(f);
        bin = malloc(4096);
        blen = fread(bin, 1, 4096, f);
        fclose(f);
        evolve_trailer tr = {.kind = "tool", .author = "test", .reason = "a wasm tool"};
        assert_int_equal(evolve_genome_write(evolve_cell_genome(the_cell), "tools/answer.wasm", bin, blen, &tr, oid,
                                             err, sizeof err),
                         0);
        free(bin);
        a = http("POST", "/v1/tools/answer/run", NULL, &st);
        assert_int_equal(st, 200);
        assert_string_equal(json_string_value(json_object_get(a, "kind")), "wasm");
        const char *v = json_string_value(json_object_get(a, "value"));
        if (!v || (!strstr(v, "i32:42") && !json_is_true(json_object_get(a, "ok"))))
            fail_msg("wasm run: %s", json_dumps(a, 0));
        json_decref(a);
    }
    /* a failing test: refused, not committed, the policy never asked */
    int before = changes;
    a = http("POST", "/v1/tools/draft",
             json_pack("{s:s,s:s}", "name", "bad", "source",
                       "return {run = function() end, tests = {t = function() assert(false, 'nope') end}}"),
             &st);
    assert_int_equal(st, 422);
    assert_non_null(strstr(json_string_value(json_object_get(a, "error")), "nope"));
    json_decref(a);
    /* an endless test: stopped, refused */
    a = http("POST", "/v1/tools/draft",
             json_pack("{s:s,s:s}", "name", "spin", "source",
                       "return {run = function() end, tests = {t = function() while true do end end}}"),
             &st);
    assert_int_equal(st, 422);
    assert_non_null(strstr(json_string_value(json_object_get(a, "error")), "instruction limit"));
    json_decref(a);
    /* no tests: refused */
    a = http("POST", "/v1/tools/draft",
             json_pack("{s:s,s:s}", "name", "bare", "source", "return {run = function() end}"), &st);
    assert_int_equal(st, 422);
    json_decref(a);
    assert_int_equal(changes, before);
    assert_int_not_equal(evolve_genome_read(evolve_cell_genome(the_cell), NULL, "tools/bad.lua", &data, &len, err,
                                            sizeof err),
                         0);
    /* queued by the policy: 202, not in the genome until executed */
    snprintf(policy_verdict, sizeof policy_verdict, "queue");
    a = http("POST", "/v1/tools/draft", json_pack("{s:s,s:s}", "name", "later", "source", good_src), &st);
    assert_int_equal(st, 202);
    assert_string_equal(json_string_value(json_object_get(a, "status")), "queued");
    char id[128];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(a, "id")));
    json_decref(a);
    a = http("POST", "/v1/tools/later/run", NULL, &st);
    assert_int_equal(st, 404);
    json_decref(a);
    assert_int_equal(evolve_execute(the_cell, "tool", id, err, sizeof err), 0); /* approved */
    a = http("POST", "/v1/tools/later/run", json_pack("{s:{s:i}}", "args", "x", 1), &st);
    assert_int_equal(st, 200);
    json_decref(a);
    assert_int_not_equal(evolve_execute(the_cell, "tool", id, err, sizeof err), 0); /* not twice */
    assert_int_not_equal(evolve_execute(the_cell, "tool", "../x", err, sizeof err), 0);
    /* refused by the policy: 409 */
    snprintf(policy_verdict, sizeof policy_verdict, "refuse");
    a = http("POST", "/v1/tools/draft", json_pack("{s:s,s:s}", "name", "no", "source", good_src), &st);
    assert_int_equal(st, 409);
    json_decref(a);
    /* no model: 503 naming [llm]; bad names; unknown tools */
    a = http("POST", "/v1/tools/draft", json_pack("{s:s,s:s}", "name", "x", "description", "y"), &st);
    assert_int_equal(st, 503);
    assert_non_null(strstr(json_string_value(json_object_get(a, "error")), "[llm]"));
    json_decref(a);
    a = http("POST", "/v1/tools/a.b/run", NULL, &st);
    assert_int_equal(st, 400);
    json_decref(a);
    a = http("POST", "/v1/tools/draft", json_pack("{s:s,s:s}", "name", "../x", "source", good_src), &st);
    assert_int_equal(st, 400);
    json_decref(a);
    a = http("POST", "/v1/tools/twice/run", json_pack("{s:s}", "args", "no"), &st);
    assert_int_equal(st, 400);
    json_decref(a);
    evolve_cell_free(the_cell);
    the_cell = NULL;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value),
        cmocka_unit_test(test_forbidden),
        cmocka_unit_test(test_instruction_limit),
        cmocka_unit_test(test_time_limit),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_string_dump_gone),
        cmocka_unit_test(test_host_metric),
        cmocka_unit_test(test_host_propose),
        cmocka_unit_test(test_tests),
        cmocka_unit_test(test_syntax_error),
        cmocka_unit_test(test_wasm),
        cmocka_unit_test(test_examples),
        cmocka_unit_test(test_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
