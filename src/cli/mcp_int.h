/* mcp_int.h: what the parts of `ippoc mcp` share (internal to src/cli):
 * cmd_mcp.c speaks JSON-RPC 2.0 and the MCP lifecycle on stdio,
 * mcp_tools.c holds the tool table (schemas, annotations, the API calls),
 * mcp_schema.c checks a tool's arguments against its JSON Schema. */
#ifndef IPPOC_CLI_MCP_INT_H
#define IPPOC_CLI_MCP_INT_H

#include "cli/cli.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MCP_WHO_MAX 64 /* the API's limit on "who" */

/* One `ippoc mcp` process: its daemon connection and its client. */
typedef struct mcp_server {
    cli_ctx ctx;      /* how to reach ippocd (its URL re-read before each call) */
    bool read_only;   /* --read-only: no action_approve, no action_propose */
    bool initialized; /* `initialize` was answered (a 2025-11-25 session) */
    char client[48];  /* clientInfo.name of the session, "" when none */
    char version[16]; /* the negotiated protocol version, "" when none */
} mcp_server;

/* ---- mcp_tools.c ------------------------------------------------------------ */
/* The tools/list array (caller json_decref()s): name, title, description,
 * inputSchema, annotations of each tool; --read-only leaves out the two
 * that change anything. NULL when out of memory. */
json_t *mcp_tools_list(bool read_only);
/* Calls tool name with args (an object; NULL: {}) for client (its
 * clientInfo.name, may be ""), into *result (a CallToolResult: content,
 * structuredContent, isError). Returns 0, or -ENOENT when there is no such
 * tool (read_only hides the two), -ENOMEM. Every other failure (bad
 * arguments, the daemon down, an error answer) is a result with isError. */
int mcp_tool_call(const mcp_server *s, const char *name, const json_t *args, const char *client, json_t **result);

/* ---- mcp_schema.c ------------------------------------------------------------- */
/* Checks v against the JSON Schema subset the tools use: type (a name or a
 * list of names: object, string, integer, number, boolean, array), properties,
 * required, additionalProperties false, enum, minimum, maximum, minLength,
 * maxLength (in code points). where names v in the message ("arguments").
 * Returns 0, or -EINVAL with err saying where and why
 * ("arguments.limit: 0 is below the minimum 1"). */
int mcp_schema_check(const json_t *schema, const json_t *v, const char *where, char *err, size_t n);

#endif
