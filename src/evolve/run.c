/* run.c: experiment runs. STAND-IN: the run part replaces it. */
#include <errno.h>
#include <stdio.h>
#include "evolve/evolve_int.h"

int evolve_runs_new(evolve_cell *c, struct evolve_runs **out, char *err, size_t errlen) { (void)c; (void)err; (void)errlen; *out = NULL; return 0; }
void evolve_runs_free(struct evolve_runs *r) { (void)r; }
char *evolve_runs_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body, size_t len, int *status)
{ (void)c; (void)method; (void)path; (void)query; (void)body; (void)len; return evolve_error(503, status, "evolve runs: not built yet"); }
