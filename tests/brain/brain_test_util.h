/* brain_test_util.h: set-up shared by the brain's cmocka tests: a temporary
 * state dir, a config with defaults (plus test text) pointing at it, a real
 * memory store in it, its removal afterwards, and the JSON fixtures under
 * tests/brain/fixtures. Each fails the running test with the reason. */
#ifndef BRAIN_TEST_UTIL_H
#define BRAIN_TEST_UTIL_H

#include "core/core.h"
#include "memory/memory.h"

#include <jansson.h>
#include <stddef.h>

/* Makes the directory /tmp/ippoc-NAME-XXXXXX into dir (n bytes). */
void btu_tmpdir(char *dir, size_t n, const char *name);
/* Quiet logs; cfg gets the defaults, then text (NULL: none), state_dir = dir. */
void btu_config(core_config *cfg, const char *text, const char *dir);
/* Opens the memory store of cfg. */
mem_t *btu_mem_open(const core_config *cfg);
/* Closes m (if any), frees cfg and removes dir: the end of a test's store. */
void btu_close(mem_t *m, core_config *cfg, const char *dir);
/* Removes dir and everything under it. */
void btu_rm_tree(const char *dir);
/* tests/brain/fixtures/NAME.json below $IPPOC_SRC (default "."). */
json_t *btu_fixture(const char *name);

#endif
