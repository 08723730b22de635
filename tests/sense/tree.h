/* tree.h: fixture trees for sense tests: copy a fixture tree to a scratch
 * directory, overlay a second tree onto it in place (same inodes, so the
 * sensors' kept-open files see the new text), remove it afterwards. */
#ifndef IPPOC_TEST_TREE_H
#define IPPOC_TEST_TREE_H

#include <stddef.h>

const char *fixtures_dir(void);             /* $SENSE_FIXTURES or "fixtures" */
int tree_copy(const char *src, const char *dst);   /* 0 or -errno */
int tree_rm(const char *dir);
int file_put(const char *path, const char *text);  /* rewrite in place */
int file_putf(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
