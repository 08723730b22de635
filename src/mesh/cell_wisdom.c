/* cell_wisdom.c: the fleet's wisdom for the brain (issue 15, part fixpass).
 * mesh_cell_wisdom_candidates answers the brain's question "what fixed
 * incidents like this elsewhere" from the cell's wisdom store and trust
 * table (mesh_wisdom_candidates on this machine's host class for the
 * service's kind) and remembers which records, (origin, seq), stood behind
 * each candidate it returned; mesh_cell_wisdom_outcome later moves those
 * origins' trust when the action worked here or did not, and saves the
 * trust table. Both take the cell's mutex, as its thread does: the brain
 * asks from worker threads, several at once, and reports from its loop. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/cell_int.h"

#define WIS_MEMO_MAX 64  /* candidates remembered (the least recently asked go first) */
#define WIS_SRC_MAX 16   /* records remembered behind one candidate */
#define WIS_WALK_MAX 10000 /* records looked at for the sources (the store's default size) */

typedef struct wis_src {
    uint8_t origin[MESH_WISDOM_ID_BYTES];
    uint64_t seq;
} wis_src;

typedef struct wis_memo {
    uint64_t key; /* digest of the action and the features; 0: free */
    uint64_t used;
    int nsrc;
    wis_src src[WIS_SRC_MAX];
} wis_memo;

struct cell_wis {
    wis_memo v[WIS_MEMO_MAX];
    uint64_t clock;
};

void cell_wisdom_free(struct mesh_cell *m)
{
    free(m->wis);
    m->wis = NULL;
}

/* The memo key of (action, features): features as compact JSON, in order. */
static uint64_t memo_key(const char *action, const json_t *features)
{
    crypto_generichash_state st;
    uint64_t h = 0;
    char *f = json_dumps(features, JSON_COMPACT | JSON_ENCODE_ANY);
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)action, strlen(action) + 1);
    if (f)
        crypto_generichash_update(&st, (const uint8_t *)f, strlen(f));
    crypto_generichash_final(&st, (uint8_t *)&h, sizeof h);
    free(f);
    return h ? h : 1;
}

static wis_memo *memo_find(struct cell_wis *w, uint64_t key)
{
    for (int i = 0; i < WIS_MEMO_MAX; i++)
        if (w->v[i].key == key)
            return &w->v[i];
    return NULL;
}

/* The entry for key: found, a free one, or the least recently used. */
static wis_memo *memo_slot(struct cell_wis *w, uint64_t key)
{
    wis_memo *e = memo_find(w, key), *old = &w->v[0];
    if (e)
        return e;
    for (int i = 0; i < WIS_MEMO_MAX; i++) {
        if (!w->v[i].key)
            return &w->v[i];
        if (w->v[i].used < old->used)
            old = &w->v[i];
    }
    return old;
}

/* The walk over the kept records that finds each candidate's sources. */
typedef struct wis_walk {
    struct mesh_cell *m;
    const json_t *features;
    const mesh_wisdom_host *host;
    int64_t now;
    const mesh_wisdom_cand *cands;
    int ncands;
    wis_src (*src)[WIS_SRC_MAX]; /* per candidate */
    int *nsrc;
} wis_walk;

/* Adds (origin, seq) to candidate c's sources: one per origin, its highest seq. */
static void add_source(wis_walk *w, int c, const mesh_wisdom_rec *r)
{
    for (int i = 0; i < w->nsrc[c]; i++)
        if (!memcmp(w->src[c][i].origin, r->origin, MESH_WISDOM_ID_BYTES)) {
            if (r->seq > w->src[c][i].seq)
                w->src[c][i].seq = r->seq;
            return;
        }
    if (w->nsrc[c] < WIS_SRC_MAX) {
        memcpy(w->src[c][w->nsrc[c]].origin, r->origin, MESH_WISDOM_ID_BYTES);
        w->src[c][w->nsrc[c]++].seq = r->seq;
    }
}

static int walk_one(void *ud, const uint8_t *buf, size_t len, int64_t received_ms)
{
    (void)received_ms;
    wis_walk *w = ud;
    mesh_wisdom_rec r;
    if (mesh_wisdom_decode(buf, len, &r, NULL, 0) || r.kind != MESH_WISDOM_FIX ||
        !memcmp(r.origin, w->m->node.pk, MESH_WISDOM_ID_BYTES))
        return 0; /* the cell's own records are its memory's, not the fleet's */
    for (int c = 0; c < w->ncands; c++) {
        if (strcmp(w->cands[c].action, r.fix.action) != 0)
            continue;
        if (mesh_wisdom_trust_weight(&w->m->trust, r.origin, w->now) > 0 && mesh_wisdom_likeness(w->features, &r.fix) >= 0.5 &&
            mesh_wisdom_host_similarity(w->host, &r.host) > 0)
            add_source(w, c, &r);
    }
    return 0;
}

/* Remembers the sources of each candidate; under mu. */
static void remember_sources(struct mesh_cell *m, const json_t *features, const mesh_wisdom_host *host, int64_t now,
                             const mesh_wisdom_cand *c, int n)
{
    if (!m->wis && !(m->wis = calloc(1, sizeof *m->wis)))
        return;
    wis_src(*src)[WIS_SRC_MAX] = calloc((size_t)n, sizeof *src);
    int *nsrc = calloc((size_t)n, sizeof *nsrc);
    if (src && nsrc) {
        wis_walk w = {m, features, host, now, c, n, src, nsrc};
        mesh_wisdom_store_recent(m->ws, WIS_WALK_MAX, walk_one, &w);
        for (int i = 0; i < n; i++) {
            if (!nsrc[i])
                continue;
            uint64_t key = memo_key(c[i].action, features);
            wis_memo *e = memo_slot(m->wis, key);
            e->key = key;
            e->used = ++m->wis->clock;
            e->nsrc = nsrc[i];
            memcpy(e->src, src[i], (size_t)nsrc[i] * sizeof *e->src);
        }
    }
    free(src);
    free(nsrc);
}

int mesh_cell_wisdom_candidates(mesh_cell *m, const json_t *features, const char *service_kind,
                                mesh_cell_wisdom_cand *out, int max, char *err, size_t errlen)
{
    if (!m || !json_is_array(features) || max < 0 || (max && !out)) {
        snprintf(err, errlen, "mesh wisdom: no cell, features not an array or no room");
        return -EINVAL;
    }
    if (!max)
        return 0;
    mesh_wisdom_cand *c = calloc((size_t)max, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "mesh wisdom: out of memory");
        return -ENOMEM;
    }
    pthread_mutex_lock(&m->mu);
    int n = 0;
    if (m->running && m->ws) { /* a cell not in a fleet knows no wisdom: no candidates */
        mesh_wisdom_host host = m->host;
        snprintf(host.service, sizeof host.service, "%s", service_kind ? service_kind : "");
        int64_t now = core_now_ms();
        n = mesh_wisdom_candidates(m->ws, &m->trust, features, &host, now, c, max, err, errlen);
        if (n > 0)
            remember_sources(m, features, &host, now, c, n);
    }
    pthread_mutex_unlock(&m->mu);
    for (int i = 0; i < n; i++) {
        snprintf(out[i].action, sizeof out[i].action, "%s", c[i].action);
        out[i].weight = c[i].weight;
        out[i].k = c[i].k;
        out[i].n = c[i].n;
        out[i].origins = c[i].origins;
    }
    free(c);
    return n;
}

int mesh_cell_wisdom_outcome(mesh_cell *m, const char *action, const json_t *features, bool worked)
{
    if (!m || !action || !features)
        return -EINVAL;
    uint64_t key = memo_key(action, features);
    char err[512];
    int moved = 0;
    pthread_mutex_lock(&m->mu);
    wis_memo *e = m->wis ? memo_find(m->wis, key) : NULL;
    if (e && m->running && m->ws) {
        int64_t now = core_now_ms();
        for (int i = 0; i < e->nsrc; i++)
            if (mesh_wisdom_store_outcome(m->ws, &m->trust, e->src[i].origin, e->src[i].seq, worked, now) == 0)
                moved++;
        if (moved && mesh_wisdom_store_save_trust(m->ws, &m->trust, err, sizeof err))
            log_warn("mesh: saving wisdom trust: %s", err);
    }
    pthread_mutex_unlock(&m->mu);
    if (moved)
        log_info("mesh: fleet wisdom '%s' %s here: the trust of %d cell(s) behind it %s", action,
                 worked ? "worked" : "failed", moved, worked ? "rose" : "fell");
    return moved;
}

int cell_wisdom_own(struct mesh_cell *m, const mesh_wisdom_rec *rec, uint8_t *buf, size_t cap, size_t *len)
{
    mesh_wisdom_rec r = *rec;
    char err[512];
    if (mesh_wisdom_sign(&r, m->node.sk, ++m->wisdom_seq, core_now_ms(), &m->loc, buf, cap, len, err, sizeof err)) {
        log_info("mesh: own %s not shared: %s", mesh_wisdom_kind_name(r.kind), err);
        return -EINVAL;
    }
    return mesh_wisdom_store_receive(m->ws, &m->trust, m->node.pk, buf, *len, core_now_ms(), NULL, err, sizeof err)
               ? -EAGAIN
               : 0;
}
