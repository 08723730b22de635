/* genome.c: the cell's git repository (libgit2). STAND-IN: the genome part replaces it. */
#include <errno.h>
#include "evolve/evolve.h"
#include <stdio.h>

int evolve_genome_open(const char *dir, evolve_genome **out, char *err, size_t errlen)
{ (void)dir; *out = NULL; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
void evolve_genome_close(evolve_genome *g) { (void)g; }
const char *evolve_genome_dir(const evolve_genome *g) { (void)g; return ""; }
int evolve_genome_check(evolve_genome *g, char *err, size_t errlen) { (void)g; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
int evolve_genome_write(evolve_genome *g, const char *path, const void *data, size_t len, const evolve_trailer *t, char oid[41], char *err, size_t errlen)
{ (void)g; (void)path; (void)data; (void)len; (void)t; oid[0] = 0; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
int evolve_genome_read(evolve_genome *g, const char *rev, const char *path, char **data, size_t *len, char *err, size_t errlen)
{ (void)g; (void)rev; (void)path; *data = NULL; *len = 0; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
json_t *evolve_genome_history(evolve_genome *g, const char *path, int limit, char *err, size_t errlen)
{ (void)g; (void)path; (void)limit; snprintf(err, errlen, "genome: not built yet"); return NULL; }
int evolve_genome_diff(evolve_genome *g, const char *rev, char **patch, char *err, size_t errlen)
{ (void)g; (void)rev; *patch = NULL; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
int evolve_genome_rollback(evolve_genome *g, const char *rev, const evolve_trailer *t, char oid[41], json_t **changed, char *err, size_t errlen)
{ (void)g; (void)rev; (void)t; oid[0] = 0; if (changed) *changed = NULL; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
int evolve_genome_revert(evolve_genome *g, const char *rev, const evolve_trailer *t, char oid[41], json_t **changed, char *err, size_t errlen)
{ (void)g; (void)rev; (void)t; oid[0] = 0; if (changed) *changed = NULL; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
int evolve_genome_resolve(evolve_genome *g, const char *rev, char oid[41], char *err, size_t errlen)
{ (void)g; (void)rev; oid[0] = 0; snprintf(err, errlen, "genome: not built yet"); return -ENOSYS; }
