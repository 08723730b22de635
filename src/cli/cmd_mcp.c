/* cmd_mcp.c: `ippoc mcp [--read-only]`, a Model Context Protocol server on
 * stdio, so an assistant (Claude Desktop, OpenClaw, any MCP host) can look
 * at the cell and propose typed actions through the same safety policy as
 * everyone else. JSON-RPC 2.0, one message per line on stdin and stdout,
 * logs on stderr only, until EOF. Both lifecycles: the 2025-11-25 one
 * (initialize, notifications/initialized, then requests on the session)
 * and the stateless 2026-07-28 one (server/discover; each request carries
 * its protocol version, clientInfo and clientCapabilities in params._meta).
 * The tools are in mcp_tools.c; see docs/mcp.md. */
#include "cli/mcp_int.h"

#include "core/core.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (4u << 20) /* one message: 4 MiB at most */

/* JSON-RPC 2.0's error codes, and MCP 2026-07-28's UnsupportedProtocolVersion */
enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL = -32603,
    RPC_UNSUPPORTED_VERSION = -32022,
};

/* Newest first. The first is the stateless revision; initialize answers the
 * client's version when it is here, else HANDSHAKE_LATEST. */
static const char *const versions[] = {"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"};
#define NVERSIONS (sizeof versions / sizeof versions[0])
#define HANDSHAKE_LATEST "2025-11-25"

#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CLIENT "io.modelcontextprotocol/clientInfo"
#define META_CAPS "io.modelcontextprotocol/clientCapabilities"

static bool supported(const char *v)
{
    for (size_t i = 0; v && i < NVERSIONS; i++)
        if (!strcmp(versions[i], v))
            return true;
    return false;
}

static json_t *versions_json(void)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < NVERSIONS; i++)
        json_array_append_new(a, json_string(versions[i]));
    return a;
}

/* ---- replies ------------------------------------------------------------------------------ */

/* An error reply to id (NULL: null) with data (taken, may be NULL). */
static json_t *rpc_error(const json_t *id, int code, json_t *data, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *e = json_pack("{s:i, s:s}", "code", code, "message", msg);
    if (e && data)
        json_object_set(e, "data", data);
    json_decref(data);
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id ? (json_t *)id : json_null(), "error", e);
}

static json_t *rpc_result(const json_t *id, json_t *result)
{
    if (!result)
        return rpc_error(id, RPC_INTERNAL, NULL, "out of memory");
    return json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result);
}

/* ---- the lifecycle ------------------------------------------------------------------------------ */

static const char *instructions(const mcp_server *s)
{
    return s->read_only
               ? "IPPOC supervises and heals this Linux server. This server is read-only: status, "
                 "incidents_list, incident_get, metrics_query, ask (questions answered from the daemon's "
                 "memory with citations) and actions_pending. It cannot change anything."
               : "IPPOC supervises and heals this Linux server. Start with status, incidents_list and "
                 "actions_pending; incident_get shows an incident's timeline and diagnosis; ask answers "
                 "questions from the daemon's memory with citations; metrics_query lists and reads metrics. "
                 "action_propose only queues a typed action (the rule language, never shell) for a person's "
                 "approval through the safety policy; action_approve decides a pending action: ask the user "
                 "first. Every action is checked by the policy and written to the audit log.";
}

static json_t *capabilities(void)
{
    return json_pack("{s:{s:b}}", "tools", "listChanged", 0);
}

static json_t *server_info(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "ippoc", "title", "IPPOC self-healing agent", "version",
                     IPPOC_VERSION);
}

static void keep_client(char *dst, size_t n, const json_t *info)
{
    const char *name = json_string_value(json_object_get(info, "name"));
    core_sncpy(dst, n, name ? name : "");
}

static json_t *do_initialize(mcp_server *s, const json_t *id, const json_t *params)
{
    const json_t *pv = json_object_get(params, "protocolVersion");
    const json_t *info = json_object_get(params, "clientInfo");
    if (!json_is_string(pv))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "params.protocolVersion: %s (a string such as \"%s\")",
                         pv ? "not a string" : "missing", HANDSHAKE_LATEST);
    if (info && !json_is_object(info))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "params.clientInfo: not an object");
    const char *want = json_string_value(pv);
    core_sncpy(s->version, sizeof s->version, supported(want) ? want : HANDSHAKE_LATEST);
    keep_client(s->client, sizeof s->client, info);
    s->initialized = true;
    fprintf(stderr, "ippoc mcp: initialize from %s: protocol %s (asked %.32s)\n", s->client[0] ? s->client : "?",
            s->version, want);
    return rpc_result(id, json_pack("{s:s, s:o, s:o, s:s}", "protocolVersion", s->version, "capabilities",
                                    capabilities(), "serverInfo", server_info(), "instructions", instructions(s)));
}

static json_t *do_discover(const mcp_server *s, const json_t *id)
{
    return rpc_result(id, json_pack("{s:s, s:o, s:o, s:o, s:s}", "resultType", "complete", "supportedVersions",
                                    versions_json(), "capabilities", capabilities(), "serverInfo", server_info(),
                                    "instructions", instructions(s)));
}

/* A request on no session must be a stateless one: params._meta carries a
 * supported version (checked before), clientInfo and clientCapabilities.
 * NULL when it may go on (*client: whose it is), else the error reply. */
static json_t *check_session(const mcp_server *s, const json_t *id, const json_t *meta, const char **client)
{
    const json_t *info = json_object_get(meta, META_CLIENT);
    if (json_is_object(info) && json_is_string(json_object_get(info, "name")))
        *client = json_string_value(json_object_get(info, "name"));
    if (!json_object_get(meta, META_VERSION)) {
        if (s->initialized)
            return NULL;
        return rpc_error(id, RPC_INVALID_REQUEST, NULL,
                         "not initialized: send initialize first (2025-11-25), or give params._meta a \"%s\" "
                         "with \"%s\" and \"%s\" (2026-07-28)", META_VERSION, META_CLIENT, META_CAPS);
    }
    if (s->initialized)
        return NULL;
    if (!json_is_object(info) || !json_is_string(json_object_get(info, "name")))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL,
                         "params._meta: \"%s\" %s (an object with a name: a stateless request says who sends it)",
                         META_CLIENT, info ? "has no name" : "is missing");
    if (!json_is_object(json_object_get(meta, META_CAPS)))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "params._meta: \"%s\" is %s (an object, {} for none)",
                         META_CAPS, json_object_get(meta, META_CAPS) ? "not an object" : "missing");
    return NULL;
}

static json_t *do_tools_call(const mcp_server *s, const json_t *id, const json_t *params, const char *client)
{
    const json_t *name = json_object_get(params, "name");
    json_t *result;
    if (!json_is_string(name))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "params.name: %s (the tool's name, see tools/list)",
                         name ? "not a string" : "missing");
    int rc = mcp_tool_call(s, json_string_value(name), json_object_get(params, "arguments"), client, &result);
    if (rc == -ENOENT)
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "unknown tool: '%.64s'%s", json_string_value(name),
                         s->read_only ? " (this server is --read-only)" : " (see tools/list)");
    if (rc < 0)
        return rpc_error(id, RPC_INTERNAL, NULL, "out of memory");
    return rpc_result(id, result);
}

/* A request (it has an id); params is an object or NULL. */
static json_t *do_request(mcp_server *s, const json_t *id, const char *method, const json_t *params)
{
    const json_t *meta = json_object_get(params, "_meta");
    const json_t *mv = json_object_get(meta, META_VERSION);
    const char *client = s->client;
    json_t *err;
    if (meta && !json_is_object(meta))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "params._meta: not an object");
    if (mv && !json_is_string(mv))
        return rpc_error(id, RPC_INVALID_PARAMS, NULL, "params._meta: \"%s\" is not a string", META_VERSION);
    if (!strcmp(method, "initialize"))
        return do_initialize(s, id, params);
    if (mv && !supported(json_string_value(mv)))
        return rpc_error(id, RPC_UNSUPPORTED_VERSION,
                         json_pack("{s:o, s:o, s:s}", "supported", versions_json(), "supportedVersions",
                                   versions_json(), "requested", json_string_value(mv)),
                         "Unsupported protocol version '%.32s'", json_string_value(mv));
    if (!strcmp(method, "ping"))
        return rpc_result(id, json_object());
    if (!strcmp(method, "server/discover"))
        return do_discover(s, id);
    if (strcmp(method, "tools/list") != 0 && strcmp(method, "tools/call") != 0)
        return rpc_error(id, RPC_METHOD_NOT_FOUND, NULL, "method not found: '%.64s'", method);
    if ((err = check_session(s, id, meta, &client)))
        return err;
    if (!strcmp(method, "tools/list"))
        return rpc_result(id, json_pack("{s:o}", "tools", mcp_tools_list(s->read_only)));
    return do_tools_call(s, id, params, client);
}

static void do_notification(mcp_server *s, const char *method)
{
    if (!strcmp(method, "notifications/initialized")) {
        if (!s->initialized)
            fprintf(stderr, "ippoc mcp: notifications/initialized before initialize (ignored)\n");
    }
    /* notifications/cancelled and the others: nothing runs in the background to stop */
}

/* ---- one line ------------------------------------------------------------------------------ */

static bool valid_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

/* The reply to one line, NULL for none (a notification, a response). */
static json_t *handle(mcp_server *s, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(line, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
    json_t *reply = NULL;
    if (!msg)
        return rpc_error(NULL, RPC_PARSE_ERROR, NULL, "parse error at column %d: %s", jerr.column, jerr.text);
    const json_t *id = json_object_get(msg, "id"), *method = json_object_get(msg, "method");
    const json_t *params = json_object_get(msg, "params"), *ver = json_object_get(msg, "jsonrpc");
    const json_t *rid = valid_id(id) ? id : NULL;
    if (json_is_array(msg))
        reply = rpc_error(NULL, RPC_INVALID_REQUEST, NULL,
                          "batches are not supported: one JSON-RPC message per line (MCP 2025-11-25 has no batches)");
    else if (!json_is_object(msg))
        reply = rpc_error(NULL, RPC_INVALID_REQUEST, NULL, "not a JSON-RPC message (a JSON object)");
    else if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
        reply = rpc_error(rid, RPC_INVALID_REQUEST, NULL, "jsonrpc: must be \"2.0\"");
    else if (!method && id && (json_object_get(msg, "result") || json_object_get(msg, "error")))
        fprintf(stderr, "ippoc mcp: a response to a request never sent (ignored)\n");
    else if (!json_is_string(method))
        reply = rpc_error(rid, RPC_INVALID_REQUEST, NULL, "method: %s", method ? "not a string" : "missing");
    else if (id && !valid_id(id))
        reply = rpc_error(NULL, RPC_INVALID_REQUEST, NULL, "id: must be a string or an integer");
    else if (!id)
        do_notification(s, json_string_value(method));
    else if (params && !json_is_object(params))
        reply = rpc_error(id, RPC_INVALID_PARAMS, NULL, "params: not an object");
    else
        reply = do_request(s, id, json_string_value(method), params);
    json_decref(msg);
    return reply;
}

/* Writes reply as one line; false when stdout is gone. */
static bool send_reply(json_t *reply)
{
    char *text = json_dumps(reply, JSON_COMPACT);
    bool ok = text && fputs(text, stdout) >= 0 && fputc('\n', stdout) != EOF && fflush(stdout) == 0;
    if (!text)
        fprintf(stderr, "ippoc mcp: out of memory\n");
    free(text);
    json_decref(reply);
    return ok || !text;
}

static bool blank(const char *p)
{
    return p[strspn(p, " \t\r\n")] == '\0';
}

static int serve(mcp_server *s)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = CLI_EXIT_OK;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        json_t *reply;
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (blank(line))
            continue;
        if ((size_t)n > LINE_MAX_BYTES)
            reply = rpc_error(NULL, RPC_INVALID_REQUEST, NULL, "message of %zd bytes (at most %u)", n, LINE_MAX_BYTES);
        else
            reply = handle(s, line, (size_t)n);
        if (reply && !send_reply(reply)) {
            fprintf(stderr, "ippoc mcp: cannot write to stdout: %s\n", strerror(errno));
            rc = CLI_EXIT_API;
            break;
        }
    }
    free(line);
    return rc;
}

int cmd_mcp(const cli_ctx *ctx, int argc, char **argv)
{
    mcp_server s = {.ctx = *ctx};
    cli_args a;
    cli_args_init(&a, "mcp", argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a))
            return cli_args_help(&a);
        if (cli_args_flag(&a, "--read-only"))
            s.read_only = true;
        else
            return cli_args_bad(&a);
    }
    signal(SIGPIPE, SIG_IGN); /* a client gone is a write error, not a death */
    fprintf(stderr, "ippoc mcp: serving MCP on stdio for ippocd at %s%s%s\n", s.ctx.url,
            s.ctx.socket[0] ? " through " : "", s.ctx.socket);
    int rc = serve(&s);
    fprintf(stderr, "ippoc mcp: end of input, bye\n");
    return rc;
}
