/* genome_http.c: the genome's API routes. STAND-IN: the cell part replaces it. */
#include "evolve/evolve_int.h"

char *evolve_genome_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body, size_t len, int *status)
{ (void)c; (void)method; (void)path; (void)query; (void)body; (void)len; return evolve_error(503, status, "genome: not built yet"); }
