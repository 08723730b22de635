/* know.c: the knowledge store (a first stand-in: not yet built; see the
 * knowledge section of memory.h). */
#include "memory/memory.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int nosys(char *err, size_t errlen)
{
    if (err && errlen)
        strncpy(err, "the knowledge store is not built yet", errlen - 1), err[errlen - 1] = 0;
    return -ENOSYS;
}

int mem_know_open(const char *path, mem_know **out, char *err, size_t errlen)
{
    (void)path;
    *out = NULL;
    return nosys(err, errlen);
}
void mem_know_close(mem_know *k) { (void)k; }
void mem_know_set_embedder(mem_know *k, mem_embed_fn fn, void *ud, int dims) { (void)k, (void)fn, (void)ud, (void)dims; }
int mem_know_add(mem_know *k, const mem_doc *d, int64_t *doc_id, int *chunks, char *err, size_t errlen)
{
    (void)k, (void)d, (void)doc_id, (void)chunks;
    return nosys(err, errlen);
}
int mem_know_remove(mem_know *k, const char *source) { (void)k, (void)source; return -ENOSYS; }
int mem_know_search(mem_know *k, const char *query, int mode, int limit, mem_hit **out, size_t *n, char *err,
                    size_t errlen)
{
    (void)k, (void)query, (void)mode, (void)limit;
    *out = NULL, *n = 0;
    return nosys(err, errlen);
}
void mem_know_hits_free(mem_hit *h, size_t n) { (void)n; free(h); }
int mem_know_link(mem_know *k, const char *from, const char *rel, const char *to, double weight, char *err,
                  size_t errlen)
{
    (void)k, (void)from, (void)rel, (void)to, (void)weight;
    return nosys(err, errlen);
}
char *mem_know_links_json(mem_know *k, const char *node, int depth) { (void)k, (void)node, (void)depth; return NULL; }
int mem_know_decay(mem_know *k, int64_t now_ms, int64_t half_life_ms, double floor, int *decayed, int *forgotten)
{
    (void)k, (void)now_ms, (void)half_life_ms, (void)floor, (void)decayed, (void)forgotten;
    return -ENOSYS;
}
int mem_know_dedup(mem_know *k, double threshold, int *merged) { (void)k, (void)threshold, (void)merged; return -ENOSYS; }
int mem_know_reembed(mem_know *k, int *n) { (void)k, (void)n; return -ENOSYS; }
int mem_know_meta_set(mem_know *k, const char *key, const char *value) { (void)k, (void)key, (void)value; return -ENOSYS; }
char *mem_know_meta_get(mem_know *k, const char *key) { (void)k, (void)key; return NULL; }
char *mem_know_stats_json(mem_know *k) { (void)k; return NULL; }
char *mem_know_docs_json(mem_know *k, int limit) { (void)k, (void)limit; return NULL; }
