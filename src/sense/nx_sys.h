/* nx_sys.h: helpers shared by the nxsys collectors (nx_mem.c, nx_clock.c,
 * nx_host.c, nx_hw.c): a string arena for help texts built at run time, and
 * small directory walkers for sysfs classes.
 *
 * The arena lives in the ctx's scratch buffer x->rd, reserved once at the
 * start of a collector and never grown while the collector runs, so pointers
 * into it stay valid until the framework has written the collector's
 * families out. A collector that uses the arena reads files through x->rd2
 * only (nx_read(x, &x->rd2, ...) and the nx_read_* helpers). */
#ifndef IPPOC_SENSE_NX_SYS_H
#define IPPOC_SENSE_NX_SYS_H

#include <dirent.h>

#include "sense/nx_int.h"

typedef struct nxs_arena {
    char *p;
    size_t len, cap;
} nxs_arena;

/* Reserves x->rd as the arena (0, or -ENOMEM). */
int nxs_arena_init(nx_ctx *x, nxs_arena *a);
/* A formatted copy in the arena; NULL when full (the family's name then
 * stands in for its help). */
const char *nxs_keep(nxs_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Entries of <root>/<rel> whose names start with prefix followed by digits
 * only when digits is true, sorted by name (alphasort, as Go's ReadDir and
 * Glob sort). Returns the count or -errno; free with nxs_names_free. */
int nxs_scan(const char *root, const char *rel, const char *prefix, bool digits, struct dirent ***out);
void nxs_names_free(struct dirent **v, int n);

/* Copies in to out with each invalid UTF-8 sequence replaced by U+FFFD, as
 * Go's strings.ToValidUTF8(s, "\uFFFD") does for node_exporter's label
 * values (an invalid byte in a label breaks the whole scrape). */
void nxs_utf8(const char *in, char *out, size_t n);
/* Whether the n bytes at p are valid UTF-8 (what Prometheus requires of a
 * label value; the byte after them must not continue a sequence). */
bool nxs_utf8_valid(const char *p, size_t n);

/* The parent of the proc root: "" for "/proc", the fixture root in tests. */
void nxs_rootfs(const nx_ctx *x, char *out, size_t n);

#endif
