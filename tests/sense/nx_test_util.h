/* nx_test_util.h: helpers shared by the node exposition's tests
 * (test_nx_*.c): collecting sense_nx_render's text, rendering over fixture
 * roots, and finding lines and sample values in the result. */
#ifndef IPPOC_TESTS_NX_TEST_UTIL_H
#define IPPOC_TESTS_NX_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* The exposition as sense_nx_render emits it; p is NUL-terminated, free(p). */
typedef struct nxt_text {
    char *p;
    size_t len;
} nxt_text;

/* sense_nx_render's emit: appends to the nxt_text at ud (asserts on OOM). */
void nxt_emit(void *ud, const char *s, size_t n);
/* The same without cmocka's asserts, for a forked child. */
void nxt_emit_plain(void *ud, const char *s, size_t n);
/* A handle with these proc, sys and udev roots (udev NULL: the default),
 * textfile off; sense_nx_close it. */
struct sense_nx;
struct sense_nx *nxt_open(const char *proc, const char *sys, const char *udev);
/* Renders the exposition with these proc, sys and udev roots (udev NULL:
 * the default), textfile off, twice on one handle (the second reuses the
 * buffers). Returns the first text (free it); the second in *second when
 * second is not NULL. */
char *nxt_render(const char *proc, const char *sys, const char *udev, char **second);
/* Whether line is a whole line of out. */
bool nxt_has_line(const char *out, const char *line);
/* The value of the sample whose text before the value is series, NAN when
 * there is none. */
double nxt_value(const char *out, const char *series);

#endif
