/* drain.c: the online log template miner (a Drain-style parser, He et al.
 * ICWS 2017) and logs_line_level().
 *
 * A message body is masked (extra PCRE2 masks, then the built-in scanner on
 * each token), tokenised, and searched in a fixed-depth prefix tree: the
 * first level is keyed by the token count, the next depth-3 levels by the
 * leading tokens (a token with a digit, or a node already full, goes under
 * "<*>"). The leaf holds clusters of equal length; the most similar one (the
 * share of positions where its template equals the message, wildcards not
 * counted) is taken when the share reaches the threshold, and the positions
 * that differ become "<*>". Otherwise the message starts a new cluster.
 *
 * Beyond plain Drain (all off in the `classic` mode, which reproduces the
 * published algorithm token for token): the broad built-in masks, clusters
 * whose templates become equal are merged (the later id becomes an alias of
 * the earlier), and past max_templates the least recently used template is
 * forgotten. One pass, no look-ahead. */
#include "logs/logs.h"
#include "logs/miner_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINER_MAX_LINE 65536 /* bytes of a message that are templated */
#define MINER_MAX_TOKENS 1024
#define MINER_DEF_SIM 0.5
#define MINER_DEF_DEPTH 4
#define MINER_DEF_CHILDREN 100

typedef struct mtok {
    const char *s;
    uint32_t len;
    uint64_t h;
} mtok;

typedef struct cluster {
    int ntok, nwild;
    uint64_t *h;    /* per position; the hash of "<*>" for a wildcard */
    uint32_t *off;  /* per position: offset of its text in toks */
    uint32_t *len;
    char *toks;     /* the first message's token texts */
    char *text;     /* rendered template */
    uint64_t count;
    int leaf;       /* tree node holding it */
    int prev, next; /* LRU list (most recent at head) */
} cluster;

typedef struct node {
    int nchild;
    int *cl; /* cluster ids, in creation order */
    int ncl, capcl;
} node;

typedef struct edge {
    uint64_t h; /* token hash; 0 = empty slot */
    int parent, child;
} edge;

struct logs_miner {
    double sim;
    int depth, maxch, maxtpl;
    bool classic, broad;
    logs_masks *masks;
    /* tree */
    node *nodes;
    int nnodes, capnodes;
    edge *edges;
    size_t ecap, ecount;
    /* clusters by id; alias[id] >= 0: merged into that id */
    cluster **cl;
    int *alias;
    int ncl, capcl, live;
    int lru_head, lru_tail;
    /* scratch */
    char *buf, *mbuf;
    size_t bcap, mcap;
    mtok *toks;
    int tcap;
};

/* ---- hashing -------------------------------------------------------------------- */

static uint64_t miner_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ull;
    }
    return h | 1; /* never 0: 0 marks an empty edge slot */
}

static uint64_t wild_hash(void)
{
    static uint64_t h;
    if (!h)
        h = miner_hash(LOGS_WILD, LOGS_WILD_LEN);
    return h;
}

static uint64_t edge_slot(uint64_t h, int parent)
{
    uint64_t k = h ^ ((uint64_t)(uint32_t)parent * 0x9e3779b97f4a7c15ull);
    k ^= k >> 29;
    k *= 0xbf58476d1ce4e5b9ull;
    return k ^ (k >> 32);
}

/* ---- tree ----------------------------------------------------------------------- */

static int node_new(logs_miner *m)
{
    if (m->nnodes == m->capnodes) {
        int nc = m->capnodes ? m->capnodes * 2 : 64;
        node *nn = realloc(m->nodes, (size_t)nc * sizeof *nn);
        if (!nn)
            return -ENOMEM;
        m->nodes = nn;
        m->capnodes = nc;
    }
    m->nodes[m->nnodes] = (node){0};
    return m->nnodes++;
}

static int edge_find(const logs_miner *m, int parent, uint64_t h)
{
    if (!m->ecap)
        return -1;
    size_t mask = m->ecap - 1;
    for (size_t i = edge_slot(h, parent) & mask;; i = (i + 1) & mask) {
        const edge *e = &m->edges[i];
        if (!e->h)
            return -1;
        if (e->h == h && e->parent == parent)
            return e->child;
    }
}

static int edge_grow(logs_miner *m)
{
    size_t nc = m->ecap ? m->ecap * 2 : 256;
    edge *ne = calloc(nc, sizeof *ne);
    if (!ne)
        return -ENOMEM;
    for (size_t i = 0; i < m->ecap; i++) {
        const edge *e = &m->edges[i];
        if (!e->h)
            continue;
        size_t j = edge_slot(e->h, e->parent) & (nc - 1);
        while (ne[j].h)
            j = (j + 1) & (nc - 1);
        ne[j] = *e;
    }
    free(m->edges);
    m->edges = ne;
    m->ecap = nc;
    return 0;
}

/* A new child of parent under h; returns its node index or -errno. */
static int edge_add(logs_miner *m, int parent, uint64_t h)
{
    if ((m->ecount + 1) * 2 > m->ecap && edge_grow(m) < 0)
        return -ENOMEM;
    int child = node_new(m);
    if (child < 0)
        return child;
    size_t mask = m->ecap - 1;
    size_t i = edge_slot(h, parent) & mask;
    while (m->edges[i].h)
        i = (i + 1) & mask;
    m->edges[i] = (edge){.h = h, .parent = parent, .child = child};
    m->ecount++;
    m->nodes[parent].nchild++;
    return child;
}

static bool tok_has_digit(const mtok *t)
{
    for (uint32_t i = 0; i < t->len; i++)
        if (t->s[i] >= '0' && t->s[i] <= '9')
            return true;
    return false;
}

static uint64_t len_key(int ntok) { return miner_hash((const char *)&ntok, sizeof ntok); }

/* Leading tokens keyed in the tree for a message of ntok tokens. */
static int tree_levels(const logs_miner *m, int ntok)
{
    int lv = m->depth - 3;
    if (lv < 0)
        lv = 0;
    return ntok < lv ? ntok : lv;
}

/* The leaf a message of these tokens belongs to, or -1. */
static int tree_search(const logs_miner *m, const mtok *t, int ntok)
{
    int n = edge_find(m, 0, len_key(ntok));
    if (n < 0)
        return -1;
    int lv = tree_levels(m, ntok);
    for (int i = 0; i < lv; i++) {
        int c = edge_find(m, n, t[i].h);
        if (c < 0)
            c = edge_find(m, n, wild_hash());
        if (c < 0)
            return -1;
        n = c;
    }
    return n;
}

/* The leaf for a new cluster with these tokens, created as needed (Drain's
 * addSeqToPrefixTree). */
static int tree_insert(logs_miner *m, const mtok *t, int ntok)
{
    uint64_t lk = len_key(ntok);
    int n = edge_find(m, 0, lk);
    if (n < 0 && (n = edge_add(m, 0, lk)) < 0)
        return n;
    int lv = tree_levels(m, ntok);
    uint64_t wh = wild_hash();
    for (int i = 0; i < lv; i++) {
        int c = edge_find(m, n, t[i].h);
        if (c < 0) {
            int w = edge_find(m, n, wh);
            int nch = m->nodes[n].nchild;
            if (tok_has_digit(&t[i]))
                c = w >= 0 ? w : edge_add(m, n, wh);
            else if (w >= 0)
                c = nch < m->maxch ? edge_add(m, n, t[i].h) : w;
            else if (nch + 1 < m->maxch)
                c = edge_add(m, n, t[i].h);
            else
                c = edge_add(m, n, wh);
            if (c < 0)
                return c;
        }
        n = c;
    }
    return n;
}

static int leaf_push(logs_miner *m, int leaf, int id)
{
    node *nd = &m->nodes[leaf];
    if (nd->ncl == nd->capcl) {
        int nc = nd->capcl ? nd->capcl * 2 : 4;
        int *ncl = realloc(nd->cl, (size_t)nc * sizeof *ncl);
        if (!ncl)
            return -ENOMEM;
        nd->cl = ncl;
        nd->capcl = nc;
    }
    nd->cl[nd->ncl++] = id;
    return 0;
}

static void leaf_remove(logs_miner *m, int leaf, int id)
{
    node *nd = &m->nodes[leaf];
    for (int i = 0; i < nd->ncl; i++)
        if (nd->cl[i] == id) {
            memmove(nd->cl + i, nd->cl + i + 1, (size_t)(nd->ncl - i - 1) * sizeof *nd->cl);
            nd->ncl--;
            return;
        }
}

/* ---- clusters ------------------------------------------------------------------- */

static void lru_unlink(logs_miner *m, int id)
{
    cluster *c = m->cl[id];
    if (c->prev >= 0)
        m->cl[c->prev]->next = c->next;
    else
        m->lru_head = c->next;
    if (c->next >= 0)
        m->cl[c->next]->prev = c->prev;
    else
        m->lru_tail = c->prev;
    c->prev = c->next = -1;
}

static void lru_front(logs_miner *m, int id)
{
    cluster *c = m->cl[id];
    c->prev = -1;
    c->next = m->lru_head;
    if (m->lru_head >= 0)
        m->cl[m->lru_head]->prev = id;
    m->lru_head = id;
    if (m->lru_tail < 0)
        m->lru_tail = id;
}

static void lru_touch(logs_miner *m, int id)
{
    if (m->lru_head == id)
        return;
    lru_unlink(m, id);
    lru_front(m, id);
}

static void cluster_free(cluster *c)
{
    if (!c)
        return;
    free(c->h);
    free(c->toks);
    free(c->text);
    free(c);
}

/* Renders the template text: tokens joined by single blanks. */
static int cluster_render(cluster *c)
{
    size_t n = 1;
    for (int i = 0; i < c->ntok; i++)
        n += (c->h[i] == wild_hash() ? LOGS_WILD_LEN : c->len[i]) + 1;
    char *t = malloc(n);
    if (!t)
        return -ENOMEM;
    size_t o = 0;
    for (int i = 0; i < c->ntok; i++) {
        if (i)
            t[o++] = ' ';
        if (c->h[i] == wild_hash()) {
            memcpy(t + o, LOGS_WILD, LOGS_WILD_LEN);
            o += LOGS_WILD_LEN;
        } else {
            memcpy(t + o, c->toks + c->off[i], c->len[i]);
            o += c->len[i];
        }
    }
    t[o] = '\0';
    free(c->text);
    c->text = t;
    return 0;
}

static int cluster_new(logs_miner *m, const mtok *t, int ntok, int leaf)
{
    if (m->ncl == m->capcl) {
        int nc = m->capcl ? m->capcl * 2 : 64;
        cluster **ncl = realloc(m->cl, (size_t)nc * sizeof *ncl);
        if (!ncl)
            return -ENOMEM;
        m->cl = ncl;
        int *na = realloc(m->alias, (size_t)nc * sizeof *na);
        if (!na)
            return -ENOMEM;
        m->alias = na;
        m->capcl = nc;
    }
    cluster *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    size_t bytes = 1;
    for (int i = 0; i < ntok; i++)
        bytes += t[i].len + 1;
    size_t n = ntok ? (size_t)ntok : 1;
    c->h = malloc(n * (sizeof *c->h + sizeof *c->off + sizeof *c->len));
    c->toks = malloc(bytes);
    if (!c->h || !c->toks) {
        cluster_free(c);
        return -ENOMEM;
    }
    c->off = (uint32_t *)(c->h + n);
    c->len = c->off + n;
    c->ntok = ntok;
    size_t o = 0;
    for (int i = 0; i < ntok; i++) {
        c->h[i] = t[i].h;
        c->nwild += t[i].h == wild_hash();
        c->off[i] = (uint32_t)o;
        c->len[i] = t[i].len;
        memcpy(c->toks + o, t[i].s, t[i].len);
        o += t[i].len;
        c->toks[o++] = '\0';
    }
    c->leaf = leaf;
    c->count = 1;
    if (cluster_render(c) < 0) {
        cluster_free(c);
        return -ENOMEM;
    }
    int id = m->ncl;
    if (leaf_push(m, leaf, id) < 0) {
        cluster_free(c);
        return -ENOMEM;
    }
    m->cl[id] = c;
    m->alias[id] = -1;
    m->ncl++;
    m->live++;
    lru_front(m, id);
    return id;
}

/* Forgets the least recently used template (not keep). */
static void cluster_evict(logs_miner *m, int keep)
{
    int id = m->lru_tail;
    if (id < 0 || id == keep)
        return;
    lru_unlink(m, id);
    leaf_remove(m, m->cl[id]->leaf, id);
    cluster_free(m->cl[id]);
    m->cl[id] = NULL;
    m->live--;
}

static bool tok_eq(const cluster *c, int i, const mtok *t)
{
    return c->h[i] == t->h && c->len[i] == t->len && !memcmp(c->toks + c->off[i], t->s, t->len);
}

/* Drain's fastMatch over a leaf: the best cluster (similarity, then more
 * wildcards, then the earlier) if it reaches the threshold, else -1.
 * exact: only a cluster whose template equals the tokens. */
static int leaf_match(const logs_miner *m, int leaf, const mtok *t, int ntok, bool exact)
{
    const node *nd = &m->nodes[leaf];
    int best = -1, best_same = -1, best_wild = -1;
    uint64_t wh = wild_hash();
    for (int k = 0; k < nd->ncl; k++) {
        const cluster *c = m->cl[nd->cl[k]];
        int same = 0;
        for (int i = 0; i < ntok; i++)
            if (c->h[i] != wh ? tok_eq(c, i, &t[i]) : (!m->classic && t[i].h == wh))
                same++; /* beyond Drain: a masked variable matches a wildcard */
        if (exact) {
            bool eq = true;
            for (int i = 0; i < ntok && eq; i++)
                eq = c->h[i] == t[i].h && (c->h[i] == wh || tok_eq(c, i, &t[i]));
            if (eq)
                return nd->cl[k];
            continue;
        }
        if (same > best_same || (same == best_same && c->nwild > best_wild)) {
            best = nd->cl[k];
            best_same = same;
            best_wild = c->nwild;
        }
    }
    if (exact || best < 0)
        return -1;
    double sim = ntok ? (double)best_same / (double)ntok : 1.0;
    return sim >= m->sim ? best : -1;
}

/* Drain's template update: positions that differ become "<*>". Returns 1 if
 * the template changed. */
static int cluster_update(cluster *c, const mtok *t)
{
    uint64_t wh = wild_hash();
    int changed = 0;
    for (int i = 0; i < c->ntok; i++)
        if (c->h[i] != wh && !tok_eq(c, i, &t[i])) {
            c->h[i] = wh;
            c->nwild++;
            changed = 1;
        }
    if (changed && cluster_render(c) < 0)
        return -ENOMEM;
    return changed;
}

/* After id's template changed: another cluster of the same leaf with the
 * same template absorbs it (the earlier id stays). Returns the surviving id. */
static int cluster_merge(logs_miner *m, int id)
{
    cluster *c = m->cl[id];
    const node *nd = &m->nodes[c->leaf];
    for (int k = 0; k < nd->ncl; k++) {
        int o = nd->cl[k];
        if (o == id || !m->cl[o] || m->cl[o]->ntok != c->ntok || strcmp(m->cl[o]->text, c->text))
            continue;
        int keep = o < id ? o : id, drop = o < id ? id : o;
        m->cl[keep]->count += m->cl[drop]->count;
        lru_unlink(m, drop);
        leaf_remove(m, m->cl[drop]->leaf, drop);
        cluster_free(m->cl[drop]);
        m->cl[drop] = NULL;
        m->alias[drop] = keep;
        m->live--;
        lru_touch(m, keep);
        return keep;
    }
    return id;
}

/* ---- tokenising ----------------------------------------------------------------- */

static bool miner_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0;
}

static int toks_reserve(logs_miner *m, int n)
{
    if (n <= m->tcap)
        return 0;
    int nc = m->tcap ? m->tcap : 64;
    while (nc < n)
        nc *= 2;
    mtok *nt = realloc(m->toks, (size_t)nc * sizeof *nt);
    if (!nt)
        return -ENOMEM;
    m->toks = nt;
    m->tcap = nc;
    return 0;
}

static int buf_reserve(char **b, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 1024;
    while (nc < need)
        nc *= 2;
    char *nb = realloc(*b, nc);
    if (!nb)
        return -ENOMEM;
    *b = nb;
    *cap = nc;
    return 0;
}

/* Splits s into blank-separated tokens; with the built-in masks on, a token
 * holding a variable is rewritten in place in m->mbuf ("(1.16" -> "(<*>").
 * Returns the token count or -errno. */
static int miner_tokenise(logs_miner *m, const char *s, size_t n)
{
    int nt = 0;
    size_t i = 0;
    bool builtin = !m->classic;
    if (builtin && buf_reserve(&m->mbuf, &m->mcap, n + (n / 2 + 1) * LOGS_WILD_LEN) < 0)
        return -ENOMEM;
    size_t mo = 0;
    while (i < n && nt < MINER_MAX_TOKENS) {
        while (i < n && miner_space((unsigned char)s[i]))
            i++;
        if (i >= n)
            break;
        size_t b = i;
        while (i < n && !miner_space((unsigned char)s[i]))
            i++;
        if (toks_reserve(m, nt + 1) < 0)
            return -ENOMEM;
        mtok *t = &m->toks[nt++];
        t->s = s + b;
        t->len = (uint32_t)(i - b);
        size_t pre, suf;
        if (builtin && logs_mask_token(s + b, i - b, m->broad, &pre, &suf)) {
            char *d = m->mbuf + mo;
            memcpy(d, s + b, pre);
            memcpy(d + pre, LOGS_WILD, LOGS_WILD_LEN);
            memcpy(d + pre + LOGS_WILD_LEN, s + i - suf, suf);
            t->s = d;
            t->len = (uint32_t)(pre + LOGS_WILD_LEN + suf);
            mo += t->len;
        }
        t->h = miner_hash(t->s, t->len);
    }
    return nt;
}

/* ---- public --------------------------------------------------------------------- */

int logs_miner_new(const logs_miner_opts *o, logs_miner **out, char *err, size_t errlen)
{
    *out = NULL;
    logs_miner_opts d = o ? *o : (logs_miner_opts){0};
    if (d.sim < 0 || d.sim > 1 || d.sim != d.sim) {
        snprintf(err, errlen, "similarity %g: must be between 0 and 1", d.sim);
        return -EINVAL;
    }
    if (d.depth != 0 && (d.depth < 3 || d.depth > 32)) {
        snprintf(err, errlen, "depth %d: must be between 3 and 32", d.depth);
        return -EINVAL;
    }
    if (d.max_children < 0 || d.max_templates < 0) {
        snprintf(err, errlen, "max_children and max_templates must not be negative");
        return -EINVAL;
    }
    logs_miner *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->sim = d.sim > 0 ? d.sim : MINER_DEF_SIM;
    m->depth = d.depth ? d.depth : MINER_DEF_DEPTH;
    m->maxch = d.max_children > 1 ? d.max_children : MINER_DEF_CHILDREN;
    m->maxtpl = d.max_templates;
    m->classic = d.classic;
    m->broad = !d.classic;
    m->lru_head = m->lru_tail = -1;
    if (node_new(m) < 0) { /* the root */
        logs_miner_free(m);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

int logs_miner_add_mask(logs_miner *m, const char *pattern, char *err, size_t errlen)
{
    return logs_masks_add(&m->masks, pattern, err, errlen);
}

int logs_miner_add(logs_miner *m, const char *msg, size_t len, bool *is_new)
{
    if (is_new)
        *is_new = false;
    if (len > MINER_MAX_LINE)
        len = MINER_MAX_LINE;
    const char *s = msg;
    if (logs_masks_count(m->masks) > 0) {
        long r = logs_masks_apply(m->masks, msg, len, &m->buf, &m->bcap);
        if (r < 0)
            return (int)r;
        s = m->buf;
        len = (size_t)r;
    }
    int ntok = miner_tokenise(m, s, len);
    if (ntok < 0)
        return ntok;
    const mtok *t = m->toks;
    /* Published Drain never files a message shorter than depth-2 tokens in
     * its tree: such messages group only with identical ones. */
    bool exact = m->classic && ntok < m->depth - 2;
    int leaf = tree_search(m, t, ntok);
    int id = leaf >= 0 ? leaf_match(m, leaf, t, ntok, exact) : -1;
    if (id >= 0) {
        cluster *c = m->cl[id];
        c->count++;
        lru_touch(m, id);
        int ch = cluster_update(c, t);
        if (ch < 0)
            return ch;
        if (ch > 0 && !m->classic)
            id = cluster_merge(m, id);
        return id;
    }
    leaf = tree_insert(m, t, ntok);
    if (leaf < 0)
        return leaf;
    id = cluster_new(m, t, ntok, leaf);
    if (id < 0)
        return id;
    if (is_new)
        *is_new = true;
    if (m->maxtpl > 0 && m->live > m->maxtpl)
        cluster_evict(m, id);
    return id;
}

/* The id a (possibly merged) id now stands for; -1 when forgotten. */
static int miner_resolve(const logs_miner *m, int id)
{
    if (id < 0 || id >= m->ncl)
        return -1;
    while (m->alias[id] >= 0)
        id = m->alias[id];
    return m->cl[id] ? id : -1;
}

int logs_miner_resolve(const logs_miner *m, int id) { return miner_resolve(m, id); }

const char *logs_miner_template(const logs_miner *m, int id)
{
    id = miner_resolve(m, id);
    return id >= 0 ? m->cl[id]->text : "";
}

int logs_miner_count(const logs_miner *m) { return m->live; }

void logs_miner_free(logs_miner *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->ncl; i++)
        cluster_free(m->cl[i]);
    free(m->cl);
    free(m->alias);
    for (int i = 0; i < m->nnodes; i++)
        free(m->nodes[i].cl);
    free(m->nodes);
    free(m->edges);
    logs_masks_free(m->masks);
    free(m->buf);
    free(m->mbuf);
    free(m->toks);
    free(m);
}

/* ---- level ---------------------------------------------------------------------- */

static bool lvl_word(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_';
}

/* w at s[i..] as a whole word (case as given) */
static bool lvl_at(const char *s, size_t n, size_t i, const char *w, size_t wl)
{
    if (i + wl > n || memcmp(s + i, w, wl))
        return false;
    if (i > 0 && lvl_word((unsigned char)s[i - 1]))
        return false;
    return i + wl == n || !lvl_word((unsigned char)s[i + wl]);
}

const char *logs_line_level(const char *line, size_t len)
{
    static const char *const errw[] = {"FATAL", "Fatal", "fatal", "CRIT", "CRITICAL", "Critical", "critical",
                                       "ERROR", "Error", "error", "ERR", "PANIC", "Panic", "panic",
                                       "EMERG", "EMERGENCY", "ALERT", "Traceback", "segfault"};
    static const char *const warnw[] = {"WARN", "WARNING", "Warning", "warning", "Warn"};
    bool warn = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c != 'F' && c != 'f' && c != 'C' && c != 'c' && c != 'E' && c != 'e' && c != 'P' && c != 'p' &&
            c != 'A' && c != 'T' && c != 's' && c != 'W' && c != 'w')
            continue;
        if (i > 0 && lvl_word((unsigned char)line[i - 1]))
            continue;
        for (size_t k = 0; k < sizeof errw / sizeof errw[0]; k++)
            if (lvl_at(line, len, i, errw[k], strlen(errw[k])))
                return "error";
        /* "Exception" also ends a class name: java.io.IOException */
        for (size_t k = 0; k < sizeof warnw / sizeof warnw[0]; k++)
            if (lvl_at(line, len, i, warnw[k], strlen(warnw[k])))
                warn = true;
    }
    for (size_t i = 0; i + 9 <= len; i++)
        if (line[i] == 'E' && !memcmp(line + i, "Exception", 9) &&
            (i + 9 == len || !lvl_word((unsigned char)line[i + 9])))
            return "error";
    return warn ? "warning" : "info";
}
