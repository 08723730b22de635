/* watch.c: applying the genome to the machine, probation. STAND-IN: the cell part replaces it. */
#include <errno.h>
#include <stdio.h>
#include "evolve/evolve_int.h"

int evolve_watch_new(evolve_cell *c, struct evolve_watch **out, char *err, size_t errlen) { (void)c; (void)err; (void)errlen; *out = NULL; return 0; }
void evolve_watch_free(struct evolve_watch *w) { (void)w; }
int evolve_watch_apply(evolve_cell *c, const char *rev, char *err, size_t errlen) { (void)c; (void)rev; snprintf(err, errlen, "watch: not built yet"); return -ENOSYS; }
char *evolve_watch_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body, size_t len, int *status)
{ (void)c; (void)method; (void)path; (void)query; (void)body; (void)len; return evolve_error(503, status, "watch: not built yet"); }
