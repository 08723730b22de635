/* tool.c: ToolSmith. STAND-IN: the tools part replaces it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "evolve/evolve_int.h"

int evolve_tool_run_lua(const char *name, const char *source, const json_t *args, bool test, const evolve_tool_host *host,
                        const evolve_tool_limits *lim, json_t **result, char *err, size_t errlen)
{ (void)name; (void)source; (void)args; (void)test; (void)host; (void)lim; *result = NULL; snprintf(err, errlen, "tools: not built yet"); return -ENOSYS; }
int evolve_tool_run_wasm(const char *path, const char *const *args, const char *shim, json_t **result, char *err, size_t errlen)
{ (void)path; (void)args; (void)shim; *result = NULL; snprintf(err, errlen, "tools: not built yet"); return -ENOSYS; }
int evolve_tools_new(evolve_cell *c, struct evolve_tools **out, char *err, size_t errlen) { (void)c; (void)err; (void)errlen; *out = NULL; return 0; }
void evolve_tools_free(struct evolve_tools *t) { (void)t; }
char *evolve_tools_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body, size_t len, int *status)
{ (void)c; (void)method; (void)path; (void)query; (void)body; (void)len; return evolve_error(503, status, "tools: not built yet"); }
int evolve_tools_accept(evolve_cell *c, const char *draft_id, char *err, size_t errlen)
{ (void)c; (void)draft_id; snprintf(err, errlen, "tools: not built yet"); return -ENOSYS; }
