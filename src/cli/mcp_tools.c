/* mcp_tools.c: the tools `ippoc mcp` offers an assistant, each a typed call
 * of ippocd's HTTP API (never a shell command): status, metrics_query,
 * incidents_list, incident_get, ask, actions_pending, and the two that
 * change something, action_approve and action_propose, which --read-only
 * leaves out. A tool's arguments are checked against its JSON Schema here
 * (mcp_schema.c) before any request; every failure, the daemon's included,
 * becomes a result with isError and a line saying what went wrong. */
#include "cli/mcp_int.h"

#include "core/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERR_MAX 1024
#define ASK_TIMEOUT_MS 120000 /* a model may think a while (as `ippoc ask`) */
#define INCIDENTS_LIMIT 20    /* incidents_list without limit */

typedef struct tool {
    const char *name, *title, *description;
    const char *schema; /* inputSchema, JSON text */
    bool read_only, destructive, idempotent;
    bool acts; /* changes something: not offered with --read-only */
    /* *out: the structured answer (an object); non-zero: failed, err says why */
    int (*run)(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n);
} tool;

/* ---- calling the daemon -------------------------------------------------------------- */

/* GET path (POST of body, taken, when not NULL) with timeout_ms (0: the
 * ctx's); err gets "METHOD PATH: why". */
static int api(const mcp_server *s, const char *path, json_t *body, int64_t timeout_ms, json_t **out, char *err,
               size_t n)
{
    cli_ctx ctx = s->ctx;
    char why[ERR_MAX];
    long status;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (body && !text) {
        snprintf(err, n, "out of memory");
        return -ENOMEM;
    }
    cli_reload_url(&ctx); /* a restarted daemon may listen on a new port */
    if (timeout_ms > ctx.timeout_ms)
        ctx.timeout_ms = timeout_ms;
    int rc = cli_http_call(&ctx, path, text, out, &status, why, sizeof why);
    free(text);
    if (rc != CLI_EXIT_OK) {
        snprintf(err, n, "%s %s: %s", body ? "POST" : "GET", path, why);
        return status == 404 ? -ENOENT : -EIO;
    }
    return 0;
}

static json_int_t arg_int(const json_t *args, const char *key, json_int_t dflt)
{
    const json_t *v = json_object_get(args, key);
    if (json_is_integer(v))
        return json_integer_value(v);
    return json_is_real(v) ? (json_int_t)json_real_value(v) : dflt;
}

static const char *arg_str(const json_t *args, const char *key)
{
    return json_string_value(json_object_get(args, key));
}

/* A time argument (text, or epoch seconds as a number) as the API's text. */
static const char *arg_time(const json_t *args, const char *key, char *buf, size_t n)
{
    const json_t *v = json_object_get(args, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (!json_is_number(v))
        return NULL;
    snprintf(buf, n, "%" JSON_INTEGER_FORMAT, arg_int(args, key, 0));
    return buf;
}

/* ---- the tools ------------------------------------------------------------------------------ */

static int run_status(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    json_t *st, *sv;
    char why[ERR_MAX];
    (void)args, (void)who;
    int rc = api(s, "/v1/status", NULL, 0, &st, err, n);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "status", st);
    if (!*out)
        return -ENOMEM;
    if (api(s, "/v1/services", NULL, 0, &sv, why, sizeof why) == 0) {
        json_t *list = json_object_get(sv, "services");
        json_object_set(*out, "services", list ? list : sv);
        json_decref(sv);
    } else { /* healing not running: the status alone still says a lot */
        json_object_set_new(*out, "services", json_null());
        json_object_set_new(*out, "services_error", json_string(why));
    }
    return 0;
}

static int run_metrics(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    const char *name = arg_str(args, "name"), *match = arg_str(args, "match");
    char b1[32], b2[32];
    cli_url u;
    (void)who;
    if (name && match) {
        snprintf(err, n, "arguments: give either name (points of one metric) or match (a list of names), not both");
        return -EINVAL;
    }
    if (!name && (json_object_get(args, "from") || json_object_get(args, "to") || json_object_get(args, "step"))) {
        snprintf(err, n, "arguments: from, to and step need name (list the names first: no arguments, or match)");
        return -EINVAL;
    }
    if (name) {
        cli_url_init(&u, "/v1/metrics/");
        cli_url_append_escaped(&u, name);
        cli_url_param(&u, "from", arg_time(args, "from", b1, sizeof b1));
        cli_url_param(&u, "to", arg_time(args, "to", b2, sizeof b2));
        cli_url_param(&u, "step", arg_str(args, "step"));
    } else {
        cli_url_init(&u, "/v1/metrics");
        cli_url_param(&u, "match", match);
    }
    if (u.overflow) {
        snprintf(err, n, "arguments: the request would be too long");
        return -EINVAL;
    }
    return api(s, u.buf, NULL, 0, out, err, n);
}

/* Does an incident in state st count for the filter? "open": not over yet. */
static bool state_matches(const char *filter, const char *st)
{
    if (!strcmp(filter, "all"))
        return true;
    if (!strcmp(filter, "open"))
        return strcmp(st, "resolved") != 0 && strcmp(st, "failed") != 0;
    return !strcmp(filter, st);
}

static int run_incidents(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err,
                         size_t n)
{
    const char *filter = arg_str(args, "state") ? arg_str(args, "state") : "all";
    json_int_t limit = arg_int(args, "limit", INCIDENTS_LIMIT);
    json_t *ans, *inc;
    size_t i;
    (void)who;
    int rc = api(s, "/v1/incidents", NULL, 0, &ans, err, n);
    if (rc)
        return rc;
    const json_t *all = json_object_get(ans, "incidents");
    json_t *list = json_array();
    json_array_foreach(all, i, inc) {
        if ((json_int_t)json_array_size(list) < limit && state_matches(filter, cli_jstr(inc, "state", "")))
            json_array_append(list, inc);
    }
    *out = json_pack("{s:o, s:s, s:I, s:I}", "incidents", list, "state", filter, "count",
                     (json_int_t)json_array_size(list), "total", (json_int_t)json_array_size(all));
    json_decref(ans);
    return *out ? 0 : -ENOMEM;
}

static int run_incident(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    char path[96], why[ERR_MAX];
    json_t *inc, *diag;
    (void)who;
    snprintf(path, sizeof path, "/v1/incidents/%" JSON_INTEGER_FORMAT, arg_int(args, "id", 0));
    int rc = api(s, path, NULL, 0, &inc, err, n);
    if (rc)
        return rc;
    *out = json_pack("{s:o}", "incident", inc);
    if (!*out)
        return -ENOMEM;
    strncat(path, "/diagnosis", sizeof path - strlen(path) - 1);
    rc = api(s, path, NULL, 0, &diag, why, sizeof why);
    if (rc == 0) {
        json_object_set_new(*out, "diagnosis", diag);
    } else {
        const json_t *kept = cli_incident_diagnosis(inc); /* none yet (404), or the brain is off */
        json_object_set(*out, "diagnosis", kept ? (json_t *)kept : json_null());
        if (rc != -ENOENT)
            json_object_set_new(*out, "diagnosis_error", json_string(why));
    }
    return 0;
}

static int run_ask(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    json_t *body = json_pack("{s:s}", "question", arg_str(args, "question"));
    (void)who;
    if (body && arg_str(args, "at"))
        json_object_set_new(body, "at", json_string(arg_str(args, "at")));
    return api(s, "/v1/ask", body, ASK_TIMEOUT_MS, out, err, n);
}

static int run_pending(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    (void)args, (void)who;
    return api(s, "/v1/pending", NULL, 0, out, err, n);
}

static int run_approve(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    char path[96];
    snprintf(path, sizeof path, "/v1/pending/%" JSON_INTEGER_FORMAT "/%s", arg_int(args, "id", 0),
             !strcmp(arg_str(args, "decision"), "approve") ? "approve" : "reject");
    return api(s, path, json_pack("{s:s}", "who", who), 0, out, err, n);
}

static int run_propose(const mcp_server *s, const json_t *args, const char *who, json_t **out, char *err, size_t n)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "service", arg_str(args, "service"), "action",
                             arg_str(args, "action"), "reason", arg_str(args, "reason"), "who", who);
    return api(s, "/v1/actions", body, 0, out, err, n);
}

/* ---- the table ------------------------------------------------------------------------------ */

#define NO_ARGS "{\"type\":\"object\",\"properties\":{},\"required\":[],\"additionalProperties\":false}"
#define ID_PROP "\"id\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":9007199254740991"

static const tool tools[] = {
    {"status", "Cell status",
     "The daemon's status (version, uptime, host, collectors, healing mode, its own CPU and memory) and every "
     "supervised service with its state, pid, restarts and last exit.",
     NO_ARGS, true, false, true, false, run_status},
    {"metrics_query", "Query metrics",
     "Without name: the list of metric series (name, labels, unit, last value), optionally only those whose name "
     "matches the glob match. With name (a family like cpu_usage_percent, or one series key name{labels}): its "
     "points [ts_ms, mean, min, max, count] between from and to (epoch seconds, 'now', 'now-15m' or '15m' ago; "
     "default the last 15 minutes) at step ('10s', '1m'; default automatic).",
     "{\"type\":\"object\",\"properties\":{"
     "\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":512,\"description\":\"metric family or series key\"},"
     "\"match\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":256,\"description\":\"glob on names, when listing\"},"
     "\"from\":{\"type\":[\"string\",\"integer\"],\"minLength\":1,\"maxLength\":64,\"minimum\":0,"
     "\"description\":\"start: epoch seconds, now-15m, 15m\"},"
     "\"to\":{\"type\":[\"string\",\"integer\"],\"minLength\":1,\"maxLength\":64,\"minimum\":0,"
     "\"description\":\"end: epoch seconds, now\"},"
     "\"step\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":32,\"description\":\"10s, 1m, 1h\"}},"
     "\"required\":[],\"additionalProperties\":false}",
     true, false, true, false, run_metrics},
    {"incidents_list", "List incidents",
     "Incidents newest first: id, service, state (diagnosing, acting, verifying, resolved, failed), what failed, "
     "since when. state filters them ('open': not resolved or failed yet; default 'all'); limit caps how many "
     "(default 20).",
     "{\"type\":\"object\",\"properties\":{"
     "\"state\":{\"type\":\"string\",\"enum\":[\"all\",\"open\",\"diagnosing\",\"acting\",\"verifying\","
     "\"resolved\",\"failed\"]},"
     "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":1000}},"
     "\"required\":[],\"additionalProperties\":false}",
     true, false, true, false, run_incidents},
    {"incident_get", "One incident",
     "One incident with its timeline (signals, actions, outcome) and the brain's diagnosis (null until there is "
     "one).",
     "{\"type\":\"object\",\"properties\":{" ID_PROP ",\"description\":\"incident id\"}},"
     "\"required\":[\"id\"],\"additionalProperties\":false}",
     true, false, true, false, run_incident},
    {"ask", "Ask the cell",
     "A question answered from what the daemon remembers (events, incidents, diagnoses, metrics, log templates, "
     "changes, learned documents), citing the records used: 'why did web restart?', 'what changed before db "
     "failed?', 'what is wrong now?'. at: the moment asked about (epoch seconds, now-2h or ISO 8601).",
     "{\"type\":\"object\",\"properties\":{"
     "\"question\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024},"
     "\"at\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64}},"
     "\"required\":[\"question\"],\"additionalProperties\":false}",
     true, false, true, false, run_ask},
    {"actions_pending", "Actions waiting for approval",
     "The actions the healing policy queued for a person's approval: id, service, action, why, when the offer "
     "expires.",
     NO_ARGS, true, false, true, false, run_pending},
    {"action_approve", "Approve or reject a pending action",
     "Decides one pending action (see actions_pending): 'approve' runs it through the same safety policy and "
     "audit log as any other action, 'reject' drops it. The audit log names this assistant as who decided. Ask "
     "the user before approving.",
     "{\"type\":\"object\",\"properties\":{" ID_PROP ",\"description\":\"pending action id\"},"
     "\"decision\":{\"type\":\"string\",\"enum\":[\"approve\",\"reject\"]}},"
     "\"required\":[\"id\",\"decision\"],\"additionalProperties\":false}",
     false, true, false, true, run_approve},
    {"action_propose", "Propose a typed action",
     "Proposes one typed action for a supervised service, in the rule language ('restart', 'stop', 'signal HUP', "
     "'sysctl vm.swappiness = 10', 'exec NAME' of the service's allowlist; never shell). It opens an incident and "
     "goes through the safety policy; whatever the policy allows is queued for a person's approval, never run by "
     "itself.",
     "{\"type\":\"object\",\"properties\":{"
     "\"service\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":63},"
     "\"action\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":256},"
     "\"reason\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1000}},"
     "\"required\":[\"service\",\"action\",\"reason\"],\"additionalProperties\":false}",
     false, false, false, true, run_propose},
};

#define NTOOLS (sizeof tools / sizeof tools[0])

static json_t *tool_json(const tool *t)
{
    json_error_t jerr;
    json_t *schema = json_loads(t->schema, 0, &jerr);
    if (!schema) /* a bug in the table above: say so rather than list a tool without one */
        fprintf(stderr, "ippoc mcp: %s: bad inputSchema: %s\n", t->name, jerr.text);
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name, "title", t->title,
                     "description", t->description, "inputSchema", schema, "annotations", "title", t->title,
                     "readOnlyHint", t->read_only, "destructiveHint", t->destructive, "idempotentHint",
                     t->idempotent, "openWorldHint", 0);
}

json_t *mcp_tools_list(bool read_only)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < NTOOLS; i++)
        if (!(read_only && tools[i].acts) && json_array_append_new(list, tool_json(&tools[i])) < 0) {
            json_decref(list);
            return NULL;
        }
    return list;
}

/* ---- results ------------------------------------------------------------------------------ */

static json_t *result_error(const char *text)
{
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text, "isError", 1);
}

/* content: the answer as JSON text too, for clients that do not read structuredContent */
static json_t *result_ok(json_t *ans)
{
    if (!json_is_object(ans))
        ans = json_pack("{s:o}", "result", ans);
    char *text = ans ? json_dumps(ans, JSON_COMPACT) : NULL;
    json_t *r = text ? json_pack("{s:[{s:s}], s:o, s:b}", "content", "type", "text", "structuredContent", ans,
                                 "isError", 0)
                     : NULL;
    if (r)
        json_object_set_new(json_array_get(json_object_get(r, "content"), 0), "text", json_string(text));
    else
        json_decref(ans);
    free(text);
    return r;
}

/* "mcp:NAME": the client's name in the API's alphabet, for the audit log. */
static void who_of(const char *client, char *who, size_t n)
{
    char clean[MCP_WHO_MAX - 4];
    size_t k = 0;
    for (const char *p = client ? client : ""; *p && k + 1 < sizeof clean; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        clean[k++] = ok ? c : '_';
    }
    clean[k] = '\0';
    snprintf(who, n, "mcp:%s", k ? clean : "unknown");
}

static const tool *find_tool(const char *name, bool read_only)
{
    for (size_t i = 0; i < NTOOLS; i++)
        if (!strcmp(tools[i].name, name) && !(read_only && tools[i].acts))
            return &tools[i];
    return NULL;
}

int mcp_tool_call(const mcp_server *s, const char *name, const json_t *args, const char *client, json_t **result)
{
    const tool *t = find_tool(name, s->read_only);
    char err[ERR_MAX + 256] = "out of memory", who[MCP_WHO_MAX + 8];
    json_t *empty = NULL, *ans = NULL;
    *result = NULL;
    if (!t)
        return -ENOENT;
    if (!args)
        args = empty = json_object();
    json_t *schema = json_loads(t->schema, 0, NULL);
    int rc = schema ? mcp_schema_check(schema, args, "arguments", err, sizeof err) : -ENOMEM;
    json_decref(schema);
    if (rc == -ENOMEM) {
        json_decref(empty);
        return -ENOMEM;
    }
    who_of(client, who, sizeof who);
    if (rc == 0)
        rc = t->run(s, args, who, &ans, err, sizeof err);
    json_decref(empty);
    if (rc == 0 && !ans)
        return -ENOMEM;
    if (rc != 0)
        fprintf(stderr, "ippoc mcp: %s: %s\n", name, err);
    *result = rc == 0 ? result_ok(ans) : result_error(err);
    return *result ? 0 : -ENOMEM;
}
