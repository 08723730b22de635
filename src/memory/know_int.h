/* know_int.h: inside the knowledge store: the built-in embedding model
 * (know_embed.c) that know.c calls when no external embedder is set.
 *
 * The model is learned from the documents themselves (feature statistics
 * such as document frequencies), so it is added to and removed from as
 * documents come and go, and saved with the store. */
#ifndef IPPOC_MEMORY_KNOW_INT_H
#define IPPOC_MEMORY_KNOW_INT_H

#include <stddef.h>

#include "memory/memory.h"

typedef struct mem_embed_model mem_embed_model;

mem_embed_model *mem_embed_model_new(void);
void mem_embed_model_free(mem_embed_model *m);
/* Counts (sign +1) or uncounts (sign -1) one chunk's text in the statistics. */
void mem_embed_model_add(mem_embed_model *m, const char *text, int sign);
/* Serialised statistics: malloc'd *blob / *len; 0 or -ENOMEM. */
int mem_embed_model_save(const mem_embed_model *m, void **blob, size_t *len);
/* 0, or -EINVAL for a blob that is not one of ours (the model is left empty). */
int mem_embed_model_load(mem_embed_model *m, const void *blob, size_t len);
/* text -> MEM_KNOW_DIM floats, L2-normalised (all zero for empty text).
 * Reads the model only: many threads may embed at once. */
void mem_embed_text(const mem_embed_model *m, const char *text, float *out);

/* Dot product of two n-float vectors (AVX2 when the CPU has it). */
float mem_vec_dot(const float *a, const float *b, size_t n);

#endif
