/* know_priv.h: inside the knowledge store (know*.c, not know_embed.c): the
 * handle with its cached statements and the in-RAM vector index, the chunker,
 * the exact vector scan and the helpers the files share. Everything here
 * runs under the store's one mutex unless said otherwise. */
#ifndef IPPOC_MEMORY_KNOW_PRIV_H
#define IPPOC_MEMORY_KNOW_PRIV_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memory/know_int.h"
#include "memory/mem_int.h"

#define KNOW_EXACT_MAX 500000 /* chunks up to which the exact scan is the design (see docs/knowledge.md) */
#define KNOW_TOPN 100         /* depth of each ranking before fusion */
#define KNOW_RRF_K 60         /* reciprocal rank fusion's k */
#define KNOW_BATCH 32         /* texts per call of an external embedder */
#define KNOW_MAX_TERMS 32     /* words of a query read */
#ifndef KNOW_BM25_BUDGET      /* (settable at build time for measurements) */
#define KNOW_BM25_BUDGET 3000 /* chunks a BM25 ranking's candidates may number (see know_search.c) */
#endif

#define KNOW_DF_SLOTS 4096    /* words whose chunk counts are cached */
#define KNOW_DF_STALE 2000    /* chunks added or deleted before a cached count is looked up again */
#define KNOW_Q_TERMS 16       /* words of one BM25 expression at most, the rarest */
#define KNOW_Q_RARE 6         /* of which the candidates' words at most */
#define KNOW_Q_PHRASES (KNOW_Q_RARE + KNOW_Q_TERMS * (KNOW_Q_RARE + 1))

/* A BM25 expression and, per phrase in its order, the chunks holding it
 * (-1: a repeat, not scored): know_search.c. */
typedef struct plan {
    char expr[16384];
    int nphrase;
    int64_t df[KNOW_Q_PHRASES];
} plan;

/* Every vector of the store's current dims, one contiguous float32 array in
 * chunk id order (ids ascending: chunks are AUTOINCREMENT and appended). */
typedef struct know_index {
    float *v;    /* n * dims */
    int64_t *id; /* n */
    size_t n, cap;
    int dims;
} know_index;

/* The cached statements (know.c prepares them at open). */
enum {
    KS_DOC_GET,     /* source -> id, hash */
    KS_DOC_INS,
    KS_DOC_UPD,
    KS_DOC_CHUNKS,  /* doc -> chunk id, text, doc title */
    KS_CHUNK_INS,
    KS_FTS_INS,
    KS_FTS_DEL,
    KS_VEC_PUT,
    KS_BM25,        /* FTS5's bm25(): when know_bm25 is not there */
    KS_BM25X,       /* know_bm25 (know_search.c) */
    KS_HIT,
    KS_USE_CHUNK,
    KS_USE_DOC,
    KS_VOCAB,       /* term -> documents (chunks) holding it */
    KS_N
};

struct mem_know {
    pthread_mutex_t mu;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *st[KS_N];
    mem_embed_model *model;
    bool model_dirty;
    int model_unsaved;    /* adds since the statistics were last saved */
    int64_t model_saved_ms;
    mem_embed_fn fn;      /* external embedder, or NULL */
    void *ud;
    int dims;             /* of the current embedder (MEM_KNOW_DIM built in) */
    know_index ix;
    fts5_tokenizer tok; /* the index's own tokenizer (porter over unicode61), */
    Fts5Tokenizer *tokp; /* for looking up how common a query's terms are; NULL: not */
    /* how common query terms are (know_search.c): a cache of fts5vocab's
     * answers, an entry trusted while under KNOW_DF_STALE chunks changed */
    struct know_df {
        uint64_t h;
        int64_t df, at;
    } *dfc; /* KNOW_DF_SLOTS, allocated by the first search */
    int64_t changes; /* chunks added and deleted since open */
    int64_t nchunks; /* chunks stored */
    plan *plan;      /* the query's, kept between queries */
    /* the BM25 expression being run, for know_bm25: per phrase (in the
     * expression's order) its chunk count, or -1 for a repeat not scored */
    bool have_bm25x;
    int q_nphrase;
    int64_t q_df[KNOW_Q_PHRASES];
    double q_idf[KNOW_Q_PHRASES], q_avgdl;
    bool q_ready;
    /* uses of hits not yet written (know_uses_flush) */
    struct know_use {
        int64_t chunk, doc, ts, n;
    } *uses;
    size_t nuses;
    int64_t uses_since;
    /* per-query scratch, kept between queries */
    float *qv;
    int64_t *top_id;
    float *top_s;
};

/* ---- know.c -------------------------------------------------------------- */
int know_sqlerr(mem_know *k, int rc, const char *what, char *err, size_t errlen);
int64_t know_now_ms(void);
int know_exec(mem_know *k, const char *sql);
/* The text a chunk is embedded and counted as: title, newline, chunk text. */
char *know_embed_text(const char *title, const char *text);
/* Embeds n texts with the current embedder into out (n * k->dims). */
int know_embed(mem_know *k, const char *const *texts, size_t n, float *out, char *err, size_t errlen);
/* Saves the statistics when dirty and (force or a batch has built up). */
void know_model_maybe_save(mem_know *k, bool force);
/* Rebuilds the RAM index from the vectors table for k->dims. */
int know_index_load(mem_know *k, char *err, size_t errlen);

/* Writes the counted uses of hits (searches keep them in RAM: a write per
 * query would cost more than the query); 0 or -EIO. */
int know_uses_flush(mem_know *k);
/* know_bm25(fts): BM25 like FTS5's bm25(fts, 2.0, 1.0), scoring only the
 * phrases the expression's plan marks (k->q_*), with the counts the plan
 * looked up; registered at open. */
void know_bm25(const Fts5ExtensionApi *api, Fts5Context *fts, sqlite3_context *cx, int nval, sqlite3_value **val);
#ifndef KNOW_USES_MAX
#define KNOW_USES_MAX 4096    /* uses kept in RAM at most... */
#endif
#define KNOW_USES_MS 30000    /* ...or for this long */
#define KNOW_USES_HITS 10     /* a search's first hits count as used, not the long tail */

/* ---- know_dream.c -------------------------------------------------------------- */
extern size_t know_dedup_exact_max; /* chunks compared pairwise by dedup (tests lower it) */

/* ---- know_chunk.c ----------------------------------------------------------- */
typedef struct know_span {
    size_t off, len; /* bytes of the document's text */
} know_span;
#define KNOW_CHUNK_WORDS 200
#define KNOW_OVERLAP_WORDS 30
/* Cuts text into paragraph-aware chunks: malloc'd *out, *n (0 for blank text);
 * 0 or -ENOMEM. */
int know_chunk(const char *text, know_span **out, size_t *n);

/* ---- know_vec.c ------------------------------------------------------------- */
float mem_vec_dot_scalar(const float *a, const float *b, size_t n);
#if defined(__x86_64__) || defined(__i386__)
float mem_vec_dot_avx2(const float *a, const float *b, size_t n); /* only when know_vec_avx2() */
#endif
bool know_vec_avx2(void); /* the CPU has AVX2 and FMA */
int know_index_reserve(know_index *ix, size_t n);
int know_index_append(know_index *ix, int64_t id, const float *v);
/* Drops the ids in sorted ids[0..n) from the index. */
void know_index_drop(know_index *ix, const int64_t *ids, size_t n);
/* Position of id in the index, or -1. */
ptrdiff_t know_index_find(const know_index *ix, int64_t id);
void know_index_free(know_index *ix);
/* The best k by dot product with q: out_id / out_s sorted best first; the
 * count found (<= k). */
size_t know_index_top(const know_index *ix, const float *q, size_t k, int64_t *out_id, float *out_s);

/* ---- know_doc.c --------------------------------------------------------------- */
/* Deletes doc's chunks (FTS rows, vectors, chunk rows) inside the caller's
 * transaction; their ids (sorted, malloc'd) and embed texts come back for the
 * RAM index and the statistics once committed. */
typedef struct know_gone {
    int64_t *ids;
    char **texts;
    size_t n;
} know_gone;
int know_chunks_delete(mem_know *k, int64_t doc, know_gone *g, char *err, size_t errlen);
void know_gone_apply(mem_know *k, know_gone *g); /* after the commit */
void know_gone_free(know_gone *g);
/* Deletes doc id with its chunks and links (a savepoint inside any caller's transaction). */
int know_doc_delete(mem_know *k, int64_t id);
/* Deletes links touching a node name. */
int know_links_drop_node(mem_know *k, const char *node);
/* Moves the links of node old to node new (weights add). */
int know_links_move(mem_know *k, const char *old, const char *new_);

#endif
