/* code.c: self-code evolution. STAND-IN: the code part replaces it. */
#include <errno.h>
#include <stdio.h>
#include "evolve/evolve_int.h"

int evolve_code_new(evolve_cell *c, struct evolve_code **out, char *err, size_t errlen) { (void)c; (void)err; (void)errlen; *out = NULL; return 0; }
void evolve_code_free(struct evolve_code *k) { (void)k; }
char *evolve_code_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body, size_t len, int *status)
{ (void)c; (void)method; (void)path; (void)query; (void)body; (void)len; return evolve_error(503, status, "self-code evolution: not built yet"); }
