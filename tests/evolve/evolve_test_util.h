/* evolve_test_util.h: file helpers the evolve unit tests share. */
#ifndef IPPOC_TESTS_EVOLVE_TEST_UTIL_H
#define IPPOC_TESTS_EVOLVE_TEST_UTIL_H

/* A file's text (up to 64 KiB) in a static buffer that the next call
 * reuses; "" when the file is missing. */
const char *etu_read(const char *path);
/* Writes text to path (the test fails when it cannot). */
void etu_write(const char *path, const char *text);
/* Removes dir and everything under it. */
void etu_rm_tree(const char *dir);

#endif
