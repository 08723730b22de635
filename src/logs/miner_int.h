/* miner_int.h: what the template miner's files (drain.c, mask.c,
 * logformat.c) share inside src/logs; not part of the module's public face
 * (logs.h). */
#ifndef IPPOC_LOGS_MINER_INT_H
#define IPPOC_LOGS_MINER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The extra (PCRE2) masks of one miner: each match becomes "<*>". */
typedef struct logs_masks logs_masks;

int logs_masks_add(logs_masks **ms, const char *pattern, char *err, size_t errlen);
/* Rewrites in[0..len) with every mask applied in order (each to the result of
 * the previous one) into *buf (grown as needed). Returns the new length, or
 * -ENOMEM / -EINVAL (a match error). With no masks, copies. */
long logs_masks_apply(const logs_masks *ms, const char *in, size_t len, char **buf, size_t *cap);
int logs_masks_count(const logs_masks *ms);
void logs_masks_free(logs_masks *ms);

/* Built-in variable scanner. Looks at one token s[0..len) (no blanks) and
 * says whether it holds a variable: a number (with sign, decimals, exponent,
 * a unit such as ms, KB, %), hex (0x..., or hex runs with a digit), an IPv4
 * or IPv6 address (with :port), a path (/a/b, ./x, C:\x), a URL, a UUID, an
 * identifier with digits (blk_123, job_2015_0001, core.42) or a date/time.
 * *pre and *suf get how many bytes of punctuation around the variable stay
 * literal ("(1.16" -> pre 1). broad: the "contains a digit" rule and the
 * other improved kinds; false: only numbers, hex, IPs, paths and UUIDs. */
bool logs_mask_token(const char *s, size_t len, bool broad, size_t *pre, size_t *suf);

/* The wildcard text and a test for it. */
#define LOGS_WILD "<*>"
#define LOGS_WILD_LEN 3

#endif
