/* tool_lua.c: ToolSmith's Lua runner. Each run gets a fresh lua_State with
 * an allocator that refuses memory past the limit, a count hook that stops
 * the tool at its instruction limit or wall deadline, only the pure
 * libraries (base, string, table, math, utf8) and the documented `ippoc`
 * API (docs/tools.md). Anything else (os, io, require, ...) fails with an
 * error naming it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "evolve/tool_int.h"

#define TOOL_HOOK_EVERY 1000
#define TOOL_LOG_MAX 200
#define TOOL_LOG_LINE 1024
#define TOOL_JSON_DEPTH 32

typedef struct tool_run {
    size_t used, limit;            /* bytes allocated, the cap */
    uint64_t count, max_instr;     /* VM instructions (counted by the hook) */
    int64_t deadline;              /* monotonic ms */
    const char *stop;              /* "instruction limit", "time limit": set once */
    const evolve_tool_host *host;
    json_t *log;
} tool_run;

static const char *const forbidden[] = {"os", "io", "require", "debug", "package", "coroutine", "dofile",
                                        "loadfile", "load", "loadstring", "collectgarbage", NULL};

static int64_t now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *tool_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    tool_run *t = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        t->used -= old;
        return NULL;
    }
    if (nsize > old && t->used + (nsize - old) > t->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        t->used = t->used - old + nsize;
    return p;
}

static tool_run *run_of(lua_State *L)
{
    void *ud;
    lua_getallocf(L, &ud);
    return ud;
}

/* Every TOOL_HOOK_EVERY instructions; once stopped, at every instruction so
 * that a pcall in the tool cannot swallow the stop. */
static void tool_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    tool_run *t = run_of(L);
    if (!t->stop) {
        t->count += TOOL_HOOK_EVERY;
        if (t->count > t->max_instr)
            t->stop = "instruction limit";
        else if (now_mono_ms() > t->deadline)
            t->stop = "time limit";
        if (t->stop)
            lua_sethook(L, tool_hook, LUA_MASKCOUNT, 1);
    }
    if (t->stop)
        luaL_error(L, "%s reached", t->stop);
}

/* ---- JSON <-> Lua ---- */

static void push_json(lua_State *L, const json_t *v, int depth)
{
    luaL_checkstack(L, 4, "json too deep");
    if (!v || depth > TOOL_JSON_DEPTH) {
        lua_pushnil(L);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        lua_createtable(L, 0, (int)json_object_size(v));
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) {
            push_json(L, e, depth + 1);
            lua_setfield(L, -2, k);
        }
        return;
    }
    case JSON_ARRAY: {
        lua_createtable(L, (int)json_array_size(v), 0);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            push_json(L, e, depth + 1);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return;
    }
    case JSON_STRING:
        lua_pushlstring(L, json_string_value(v), json_string_length(v));
        return;
    case JSON_INTEGER:
        lua_pushinteger(L, (lua_Integer)json_integer_value(v));
        return;
    case JSON_REAL:
        lua_pushnumber(L, json_real_value(v));
        return;
    case JSON_TRUE:
        lua_pushboolean(L, 1);
        return;
    case JSON_FALSE:
        lua_pushboolean(L, 0);
        return;
    default:
        lua_pushnil(L);
    }
}

/* Is the table at idx a sequence 1..n with n > 0 and nothing else? */
static bool is_array(lua_State *L, int idx, lua_Integer *n)
{
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx), count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > len) {
            lua_pop(L, 1);
            return false;
        }
        count++;
    }
    *n = len;
    return len > 0 && count == len;
}

static json_t *to_json(lua_State *L, int idx, int depth)
{
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return json_boolean(lua_toboolean(L, idx));
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return json_integer((json_int_t)lua_tointeger(L, idx));
        return isfinite(lua_tonumber(L, idx)) ? json_real(lua_tonumber(L, idx)) : json_null();
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        json_t *j = json_stringn(s, n);
        return j ? j : json_string("<not UTF-8>");
    }
    case LUA_TTABLE:
        break;
    case LUA_TNIL:
    case LUA_TNONE:
        return json_null();
    default:
        return json_sprintf("<%s>", luaL_typename(L, idx));
    }
    if (depth > TOOL_JSON_DEPTH)
        return json_string("<too deep>");
    if (!lua_checkstack(L, 4))
        return json_null();
    lua_Integer n;
    if (is_array(L, idx, &n)) {
        json_t *a = json_array();
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            json_array_append_new(a, to_json(L, -1, depth + 1));
            lua_pop(L, 1);
        }
        return a;
    }
    json_t *o = json_object();
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        char key[64];
        const char *k;
        if (lua_type(L, -2) == LUA_TSTRING) {
            k = lua_tostring(L, -2);
        } else if (lua_type(L, -2) == LUA_TNUMBER) {
            if (lua_isinteger(L, -2))
                snprintf(key, sizeof key, "%lld", (long long)lua_tointeger(L, -2));
            else
                snprintf(key, sizeof key, "%.17g", lua_tonumber(L, -2));
            k = key;
        } else {
            snprintf(key, sizeof key, "<%s>", luaL_typename(L, -2));
            k = key;
        }
        json_object_set_new(o, k, to_json(L, -1, depth + 1));
        lua_pop(L, 1);
    }
    return o;
}

/* ---- the ippoc API ---- */

static const evolve_tool_host *host_or_fail(lua_State *L, const char *fn, bool have)
{
    tool_run *t = run_of(L);
    if (!t->host || !have)
        luaL_error(L, "ippoc.%s is unavailable here", fn);
    return t->host;
}

/* labels: nil, "k=v,..." or a table {k = v} (sorted by key) */
static void labels_text(lua_State *L, int idx, char *buf, size_t n)
{
    buf[0] = 0;
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_type(L, idx) == LUA_TSTRING) {
        snprintf(buf, n, "%s", lua_tostring(L, idx));
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    json_t *o = to_json(L, idx, 0);
    const char *keys[64];
    size_t nk = 0;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) if (nk < 64) keys[nk++] = k;
    for (size_t i = 1; i < nk; i++)
        for (size_t j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
            const char *x = keys[j];
            keys[j] = keys[j - 1];
            keys[j - 1] = x;
        }
    size_t off = 0;
    for (size_t i = 0; i < nk && off < n; i++) {
        json_t *e = json_object_get(o, keys[i]);
        off += (size_t)snprintf(buf + off, n - off, "%s%s=%s", i ? "," : "", keys[i],
                                json_is_string(e) ? json_string_value(e) : "");
    }
    json_decref(o);
}

static int api_metric(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char labels[512];
    labels_text(L, 2, labels, sizeof labels);
    const evolve_tool_host *h = host_or_fail(L, "metric", run_of(L)->host && run_of(L)->host->metric);
    double v;
    int rc = h->metric(h->ud, name, labels, &v);
    if (rc == -ENOENT) {
        lua_pushnil(L);
        return 1;
    }
    if (rc < 0)
        return luaL_error(L, "ippoc.metric(%s): %s", name, strerror(-rc));
    lua_pushnumber(L, v);
    return 1;
}

static int api_incidents(lua_State *L)
{
    lua_Integer n = luaL_optinteger(L, 1, 10);
    if (n < 1 || n > 1000)
        return luaL_error(L, "ippoc.incidents: n must be 1 to 1000, not %d", (int)n);
    const evolve_tool_host *h = host_or_fail(L, "incidents", run_of(L)->host && run_of(L)->host->incidents);
    char *text = h->incidents(h->ud, (int)n);
    if (!text)
        return luaL_error(L, "ippoc.incidents is unavailable here");
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    free(text);
    if (!j)
        return luaL_error(L, "ippoc.incidents: the host sent bad JSON: %s", je.text);
    /* accept a bare array or {"incidents": [...]} */
    json_t *arr = json_is_array(j) ? j : json_object_get(j, "incidents");
    push_json(L, json_is_array(arr) ? arr : NULL, 0);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
    }
    json_decref(j);
    return 1;
}

static int api_propose(lua_State *L)
{
    const char *service = luaL_checkstring(L, 1);
    const char *action = luaL_checkstring(L, 2);
    const char *why = luaL_optstring(L, 3, "");
    const evolve_tool_host *h = host_or_fail(L, "propose", run_of(L)->host && run_of(L)->host->propose);
    char out[512] = "";
    int rc = h->propose(h->ud, service, action, why, out, sizeof out);
    if (rc < 0)
        return luaL_error(L, "ippoc.propose(%s, %s): %s", service, action, out[0] ? out : strerror(-rc));
    lua_pushstring(L, out);
    return 1;
}

static int api_log(lua_State *L)
{
    tool_run *t = run_of(L);
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        if (i > 1)
            luaL_addchar(&b, '\t');
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (json_array_size(t->log) < TOOL_LOG_MAX) {
        json_t *line = json_stringn(s, len < TOOL_LOG_LINE ? len : TOOL_LOG_LINE);
        json_array_append_new(t->log, line ? line : json_string("<not UTF-8>"));
    }
    return 0;
}

static int api_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushinteger(L, (lua_Integer)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    return 1;
}

static void push_api(lua_State *L)
{
    static const luaL_Reg api[] = {{"metric", api_metric}, {"incidents", api_incidents},
                                   {"propose", api_propose}, {"log", api_log},
                                   {"now", api_now},       {NULL, NULL}};
    luaL_newlib(L, api);
    lua_setglobal(L, "ippoc");
}

/* _G's __index: a forbidden name fails with its name; others are nil. */
static int global_index(lua_State *L)
{
    const char *k = lua_tostring(L, 2);
    for (int i = 0; k && forbidden[i]; i++)
        if (!strcmp(k, forbidden[i]))
            return luaL_error(L, "%s is not available in IPPOC tools", k);
    return 0;
}

static void open_libs(lua_State *L)
{
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table},  {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}, {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->func; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    for (int i = 0; forbidden[i]; i++) {
        lua_pushnil(L);
        lua_setglobal(L, forbidden[i]);
    }
    lua_getglobal(L, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_pop(L, 1);
    push_api(L);
    lua_getglobal(L, "ippoc");
    lua_getfield(L, -1, "log");
    lua_setglobal(L, "print");
    lua_pop(L, 1);
    lua_pushglobaltable(L);
    lua_newtable(L);
    lua_pushcfunction(L, global_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);
}

/* ---- running ---- */

static int traceback_msg(lua_State *L)
{
    if (!lua_isstring(L, 1))
        lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    return 1;
}

/* pcall with the stop reason winning over whatever the tool made of it. */
static int call(lua_State *L, tool_run *t, int nargs, int nres, char *msg, size_t n)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, traceback_msg);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nres, base);
    lua_remove(L, base);
    if (rc == LUA_OK)
        return 0;
    if (t->stop)
        snprintf(msg, n, "%s reached", t->stop);
    else if (rc == LUA_ERRMEM)
        snprintf(msg, n, "not enough memory (limit %zu bytes)", t->limit);
    else
        snprintf(msg, n, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    return -1;
}

static void stop_msg(tool_run *t, const evolve_tool_limits *lim, char *msg, size_t n)
{
    if (!strcmp(t->stop, "instruction limit"))
        snprintf(msg, n, "instruction limit reached (%" PRIu64 " instructions)", t->max_instr);
    else
        snprintf(msg, n, "time limit reached (%lld ms)", (long long)lim->timeout_ms);
}

static void run_tests(lua_State *L, tool_run *t, const evolve_tool_limits *lim, json_t *res)
{
    json_t *tests = json_array();
    int failed = 0, total = 0;
    char first[1024] = "";
    lua_getfield(L, -1, "tests");
    if (lua_istable(L, -1)) {
        /* names sorted, so runs are repeatable */
        json_t *names = json_array();
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1))
                json_array_append_new(names, json_string(lua_tostring(L, -2)));
            lua_pop(L, 1);
        }
        size_t nn = json_array_size(names);
        for (size_t i = 1; i < nn; i++)
            for (size_t j = i; j > 0 && strcmp(json_string_value(json_array_get(names, j - 1)),
                                               json_string_value(json_array_get(names, j))) > 0;
                 j--) {
                json_t *a = json_incref(json_array_get(names, j - 1));
                json_array_set(names, j - 1, json_array_get(names, j));
                json_array_set_new(names, j, a);
            }
        for (size_t i = 0; i < nn && !t->stop; i++) {
            const char *tn = json_string_value(json_array_get(names, i));
            push_api(L); /* a fresh ippoc table: stubs of one test do not leak */
            lua_getglobal(L, "ippoc");
            lua_getfield(L, -1, "log");
            lua_setglobal(L, "print");
            lua_pop(L, 1);
            lua_getfield(L, -1, tn);
            char msg[1024] = "";
            int rc = call(L, t, 0, 0, msg, sizeof msg);
            if (rc && t->stop)
                stop_msg(t, lim, msg, sizeof msg);
            total++;
            json_t *one = json_pack("{s:s,s:b}", "name", tn, "ok", rc == 0);
            if (rc) {
                failed++;
                json_object_set_new(one, "error", json_string(msg));
                if (!first[0])
                    snprintf(first, sizeof first, "%s: %s", tn, msg);
            }
            json_array_append_new(tests, one);
        }
        json_decref(names);
    }
    lua_pop(L, 1);
    json_object_set_new(res, "tests", tests);
    json_object_set_new(res, "value", json_pack("{s:i,s:i}", "passed", total - failed, "failed", failed));
    if (total == 0) {
        json_object_set_new(res, "error", json_string("the tool has no tests (tests = {name = function() ... end})"));
    } else if (failed) {
        json_object_set_new(res, "error", json_sprintf("%d of %d tests failed; %s", failed, total, first));
    } else {
        json_object_set_new(res, "ok", json_true());
    }
}

static void run_main(lua_State *L, tool_run *t, const evolve_tool_limits *lim, const json_t *args, json_t *res)
{
    lua_getfield(L, -1, "run");
    if (!lua_isfunction(L, -1)) {
        lua_pop(L, 1);
        json_object_set_new(res, "error", json_string("the tool has no run function (run = function(args) ... end)"));
        return;
    }
    if (args && json_is_object(args))
        push_json(L, args, 0);
    else
        lua_newtable(L);
    char msg[1024];
    if (call(L, t, 1, 1, msg, sizeof msg)) {
        if (t->stop)
            stop_msg(t, lim, msg, sizeof msg);
        json_object_set_new(res, "error", json_string(msg));
        return;
    }
    json_object_set_new(res, "value", to_json(L, -1, 0));
    json_object_set_new(res, "ok", json_true());
    lua_pop(L, 1);
}

/* A state ready to run; NULL when even that does not fit the memory limit. */
static lua_State *new_state(tool_run *t, const evolve_tool_limits *lim)
{
    lua_State *L = lua_newstate(tool_alloc, t);
    if (!L)
        return NULL;
    open_libs(L);
    t->max_instr = lim->instructions;
    t->deadline = now_mono_ms() + lim->timeout_ms;
    lua_sethook(L, tool_hook, LUA_MASKCOUNT, TOOL_HOOK_EVERY);
    return L;
}

static void defaults(const evolve_tool_limits *in, evolve_tool_limits *out)
{
    *out = in ? *in : (evolve_tool_limits){0};
    if (!out->instructions)
        out->instructions = 10000000;
    if (!out->memory_bytes)
        out->memory_bytes = 16u << 20;
    if (out->timeout_ms <= 0)
        out->timeout_ms = 5000;
}

/* Loads and runs the chunk; leaves the tool's table on the stack. 0, -1
 * (a runtime error: msg), -EINVAL (does not load: msg names NAME:LINE). */
static int load_tool(lua_State *L, tool_run *t, const evolve_tool_limits *lim, const char *name, const char *source,
                     char *msg, size_t n)
{
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=%s", name);
    int rc = luaL_loadbufferx(L, source, strlen(source), chunk, "t");
    if (rc != LUA_OK) {
        snprintf(msg, n, "%s", rc == LUA_ERRMEM ? "not enough memory to load" : lua_tostring(L, -1));
        lua_pop(L, 1);
        return -EINVAL;
    }
    if (call(L, t, 0, 1, msg, n)) {
        if (t->stop)
            stop_msg(t, lim, msg, n);
        return -1;
    }
    if (!lua_istable(L, -1)) {
        snprintf(msg, n, "%s: the chunk must return a table {name=, description=, run=, tests=}, not a %s", name,
                 luaL_typename(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

int evolve_tool_run_lua(const char *name, const char *source, const json_t *args, bool test,
                        const evolve_tool_host *host, const evolve_tool_limits *lim_in, json_t **result, char *err,
                        size_t errlen)
{
    *result = NULL;
    if (!name || !source) {
        snprintf(err, errlen, "tool: no name or source");
        return -EINVAL;
    }
    evolve_tool_limits lim;
    defaults(lim_in, &lim);
    tool_run t = {.limit = lim.memory_bytes, .host = host, .log = json_array()};
    lua_State *L = new_state(&t, &lim);
    if (!L) {
        json_decref(t.log);
        snprintf(err, errlen, "%s: not enough memory for a Lua state (limit %zu bytes)", name, lim.memory_bytes);
        return -ENOMEM;
    }
    int64_t t0 = now_mono_ms();
    json_t *res = json_pack("{s:b,s:n}", "ok", 0, "value");
    char msg[1024];
    int rc = load_tool(L, &t, &lim, name, source, msg, sizeof msg);
    if (rc == -EINVAL) {
        lua_close(L);
        json_decref(t.log);
        json_decref(res);
        snprintf(err, errlen, "%s", msg);
        return -EINVAL;
    }
    if (rc)
        json_object_set_new(res, "error", json_string(msg));
    else if (test)
        run_tests(L, &t, &lim, res);
    else
        run_main(L, &t, &lim, args, res);
    lua_close(L);
    json_object_set_new(res, "log", t.log);
    json_object_set_new(res, "instructions", json_integer((json_int_t)t.count));
    json_object_set_new(res, "ms", json_integer(now_mono_ms() - t0));
    if (t.stop)
        json_object_set_new(res, "stopped", json_string(t.stop));
    *result = res;
    return 0;
}

int evolve_tool_lua_info(const char *name, const char *source, json_t **info, char *err, size_t errlen)
{
    *info = NULL;
    evolve_tool_limits lim = {.instructions = 1000000, .memory_bytes = 8u << 20, .timeout_ms = 1000};
    tool_run t = {.limit = lim.memory_bytes, .log = json_array()};
    lua_State *L = new_state(&t, &lim);
    if (!L) {
        json_decref(t.log);
        snprintf(err, errlen, "%s: not enough memory for a Lua state", name);
        return -ENOMEM;
    }
    char msg[1024];
    int rc = load_tool(L, &t, &lim, name, source, msg, sizeof msg);
    if (rc) {
        lua_close(L);
        json_decref(t.log);
        snprintf(err, errlen, "%s", msg);
        return -EINVAL;
    }
    lua_getfield(L, -1, "description");
    const char *d = lua_tostring(L, -1);
    json_t *o = json_pack("{s:s,s:s}", "name", name, "description", d ? d : "");
    lua_pop(L, 1);
    lua_getfield(L, -1, "run");
    json_object_set_new(o, "has_run", json_boolean(lua_isfunction(L, -1)));
    lua_pop(L, 1);
    int ntests = 0;
    lua_getfield(L, -1, "tests");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            ntests += lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 2);
    json_object_set_new(o, "tests", json_integer(ntests));
    lua_close(L);
    json_decref(t.log);
    *info = o;
    return 0;
}

bool evolve_tool_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-'))
            return false;
    }
    return true;
}
