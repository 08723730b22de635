/* tool_int.h: what ToolSmith's files share (tool.c, tool_lua.c,
 * tool_wasm.c); not for other parts. */
#ifndef IPPOC_EVOLVE_TOOL_INT_H
#define IPPOC_EVOLVE_TOOL_INT_H

#include "evolve/evolve_int.h"

/* Loads a Lua tool's chunk (no host, small limits) and describes it:
 * {"name","description","tests":N,"has_run":bool}. 0 or -EINVAL with err
 * naming NAME:LINE. */
int evolve_tool_lua_info(const char *name, const char *source, json_t **info, char *err, size_t errlen);

/* Runs argv directly (no sandbox) with a wall deadline, keeping up to
 * out_max bytes of stdout; fills r like evolve_sandbox_run (verdict ok,
 * failed, timeout or error). The fallback while the sandbox is unavailable. */
int evolve_tool_spawn(const char *const *argv, int64_t timeout_ms, size_t out_max, evolve_sandbox_result *r,
                      char *err, size_t errlen);

/* The sandbox has its own /tmp and sees only what is bound: a tool's file
 * is copied into a fresh directory (/var/tmp/ippoc-tool-XXXXXX, else
 * $TMPDIR) that the run binds, so it is visible wherever the state dir
 * lives. dir and copy (PATH_MAX each) get the paths; unstage removes them. */
int evolve_tool_stage(const char *file, char *dir, char *copy, char *err, size_t errlen);
void evolve_tool_unstage(const char *dir, const char *copy);

/* Is name a valid tool name ([A-Za-z0-9_-], 1 to 64 characters)? */
bool evolve_tool_name_ok(const char *name);

#endif
