/* know_dream.c: the knowledge store's consolidation tools for dreaming:
 * decay, dedup, reembed (not yet built). */
#include "memory/know_priv.h"

#include <errno.h>

int mem_know_decay(mem_know *k, int64_t now_ms, int64_t half_life_ms, double floor, int *decayed, int *forgotten)
{
    (void)k, (void)now_ms, (void)half_life_ms, (void)floor, (void)decayed, (void)forgotten;
    return -ENOSYS;
}
int mem_know_dedup(mem_know *k, double threshold, int *merged) { (void)k, (void)threshold, (void)merged; return -ENOSYS; }
int mem_know_reembed(mem_know *k, int *n) { (void)k, (void)n; return -ENOSYS; }
