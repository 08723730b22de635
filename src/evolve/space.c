/* space.c: space files. STAND-IN: the run part replaces it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "evolve/evolve.h"

int evolve_space_load(const char *path, evolve_space *out, char *err, size_t errlen)
{ (void)path; memset(out, 0, sizeof *out); snprintf(err, errlen, "space: not built yet"); return -ENOSYS; }
int evolve_space_parse(const char *text, const char *name, evolve_space *out, char *err, size_t errlen)
{ (void)text; (void)name; memset(out, 0, sizeof *out); snprintf(err, errlen, "space: not built yet"); return -ENOSYS; }
int evolve_knob_parse(const evolve_knob *k, const char *text, double *v, char *err, size_t errlen)
{ (void)k; (void)text; *v = 0; snprintf(err, errlen, "space: not built yet"); return -ENOSYS; }
void evolve_knob_format(const evolve_knob *k, double v, char *buf, size_t n) { (void)k; snprintf(buf, n, "%g", v); }
int evolve_space_write_file(const evolve_space *s, const char *file, const double *values, char *err, size_t errlen)
{ (void)s; (void)file; (void)values; snprintf(err, errlen, "space: not built yet"); return -ENOSYS; }
int evolve_space_read_values(const evolve_space *s, double *values, char *err, size_t errlen)
{ (void)s; (void)values; snprintf(err, errlen, "space: not built yet"); return -ENOSYS; }
