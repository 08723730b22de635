/* nx_sys.h: helpers shared by the nxsys collectors (nx_mem.c, nx_clock.c,
 * nx_host.c, nx_hw.c): small directory walkers for sysfs classes, UTF-8
 * checks, and the root that holds the proc root. A help built at run time
 * needs no keeping: nx_family_dyn copies it. */
#ifndef IPPOC_SENSE_NX_SYS_H
#define IPPOC_SENSE_NX_SYS_H

#include <dirent.h>

#include "sense/nx_int.h"

/* Entries of <root>/<rel> whose names start with prefix followed by digits
 * only when digits is true, sorted by name (alphasort, as Go's ReadDir and
 * Glob sort). Returns the count or -errno; free with nxs_names_free. */
int nxs_scan(const char *root, const char *rel, const char *prefix, bool digits, struct dirent ***out);
void nxs_names_free(struct dirent **v, int n);

/* Whether the n bytes at p are valid UTF-8 (what Prometheus requires of a
 * label value; the byte after them must not continue a sequence). */
bool nxs_utf8_valid(const char *p, size_t n);

/* The parent of the proc root: "" for "/proc", the fixture root in tests. */
void nxs_rootfs(const nx_ctx *x, char *out, size_t n);

#endif
