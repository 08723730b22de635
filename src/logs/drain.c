/* drain.c: the online log template miner (Drain-style, He et al. ICWS
 * 2017) and logs_line_level(). docs/logs.md describes the method.
 *
 * A message body goes through the extra PCRE2 masks, is tokenised (blanks,
 * commas before a key, key="quoted values"), each token through the
 * built-in scanner (mask.c), then tidied (units join their numbers, dates,
 * adjacent variables, variable-only asides). It is searched in a fixed-depth
 * prefix tree: the first level is keyed by the token count, the next depth-3
 * levels by the leading tokens (a token with a digit, a dotted name, or a
 * node already full goes under "<*>"). In the leaf, a template matches when
 * its share of positions equal to the message (a learnt <*> matching
 * anything) reaches the similarity (1 by default). Otherwise the message
 * starts a new template, and when `variants` templates of the leaf differ in
 * one position only, that position is learnt as <*> and they become one.
 * Templates whose text becomes equal merge (the later id becomes an alias of
 * the earlier); past max_templates the least recently used is forgotten. A
 * cache of whole masked token sequences skips the search for repeated
 * messages. One pass, no look-ahead.
 *
 * The `classic` mode turns all of that off but the header and the PCRE2
 * masks and reproduces the published Drain.py token for token (its
 * similarity, tie rule, tree, template update). */
#include "logs/logs.h"
#include "logs/miner_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MINER_MAX_LINE 65536 /* bytes of a message that are templated */
#define MINER_MAX_TOKENS 1024
#define MINER_DEF_SIM 1.0 /* the improved mode: masks and variants do the generalising (classic: 0.5) */
#define MINER_DEF_DEPTH 4
#define MINER_DEF_CHILDREN 100
#define MINER_DEF_VARIANTS 5
#define MINER_DEF_SIM_TOKENS 0 /* a similarity below 1 applies from this many tokens */
#define MINER_CACHE_BITS 12 /* exact token sequences remembered for the fast path */

typedef struct mtok {
    const char *s;
    uint32_t len;
    bool var;  /* a built-in mask rewrote it */
    bool glue; /* no blank before it ("a=1,b=2" is two tokens, glued) */
    uint64_t h;
} mtok;

typedef struct cluster {
    int ntok, nwild;
    uint64_t *h;    /* per position; the hash of "<*>" for a wildcard */
    uint32_t *off;  /* per position: offset of its text in toks */
    uint32_t *len;
    bool *glue;     /* per position: no blank before it */
    uint8_t *kpre;  /* per learnt <*>: bytes of punctuation kept before it... */
    uint8_t *ksuf;  /* ...and after it, common to the words it stands for ("<*>,") */
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

typedef struct idslot {
    int id;     /* ID_EMPTY, ID_GONE (tombstone) or the id */
    int alias;  /* merged into this id (c NULL), or -1 */
    cluster *c;
} idslot;
enum { ID_EMPTY = -1, ID_GONE = -2 };

typedef struct edge {
    uint64_t h; /* token hash; 0 = empty slot */
    int parent, child;
} edge;

struct logs_miner {
    double sim;
    int depth, maxch, maxtpl, variants, sim_tokens;
    uint64_t wild; /* hash of a template's wildcard: "<*>" (classic) or any_hash() */
    bool classic, broad;
    logs_masks *masks;
    /* tree */
    node *nodes;
    int nnodes, capnodes;
    edge *edges;
    size_t ecap, ecount;
    /* clusters by id (an open-addressing table, so that memory follows the
     * live templates, not every id ever given): a slot holds a cluster, or
     * the id an id was merged into */
    idslot *tab;
    size_t idcap, idused; /* slots; in use, tombstones included */
    int ncl;            /* the next id */
    int live;
    int *aring;         /* with a cap: the alias ids, oldest first, at most maxtpl */
    int ahead, acount;
    int lru_head, lru_tail;
    /* fast path: hash of a whole masked token sequence -> the id it got */
    uint64_t *ckey;
    int *cid;
    /* scratch */
    char *buf, *mbuf;
    size_t bcap, mcap;
    mtok *toks;
    int tcap;
};

/* ---- hashing -------------------------------------------------------------------- */

/* Eight bytes at a time (tokens are hashed on every line). */
static uint64_t miner_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9e3779b97f4a7c15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    if (i < n) {
        uint64_t w = 0;
        memcpy(&w, s + i, n - i);
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h | 1; /* never 0: 0 marks an empty edge slot */
}

static uint64_t wild_h; /* set once by miner_init() */

static uint64_t wild_hash(void) { return wild_h; }

/* A wildcard learnt by generalising (the improved mode's; Drain's is "<*>"
 * itself, the text a mask leaves). Not the hash of any text. */
static uint64_t any_hash(void) { return wild_hash() ^ 0x5a5a5a5a5a5a5a5aull; }

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

/* The hash a token is filed under in the tree. Beyond Drain, a dotted name
 * (com.apple.xyz, two dots or more) goes under "<*>" like a number: it is
 * often a variable (a job, host or class name), and only templates in one
 * leaf can learn a variable. */
static uint64_t tree_key(const logs_miner *m, const mtok *t)
{
    if (m->classic)
        return t->h;
    int dots = 0;
    for (uint32_t i = 1; i + 1 < t->len; i++)
        dots += t->s[i] == '.' && t->s[i - 1] != '.' && t->s[i + 1] != '.';
    return dots >= 2 ? wild_hash() : t->h;
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
        int c = edge_find(m, n, tree_key(m, &t[i]));
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
        int c = edge_find(m, n, tree_key(m, &t[i]));
        if (c < 0) {
            int w = edge_find(m, n, wh);
            int nch = m->nodes[n].nchild;
            if (tok_has_digit(&t[i]))
                c = w >= 0 ? w : edge_add(m, n, wh);
            else if (w >= 0)
                c = nch < m->maxch ? edge_add(m, n, tree_key(m, &t[i])) : w;
            else if (nch + 1 < m->maxch)
                c = edge_add(m, n, tree_key(m, &t[i]));
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

/* ---- ids -------------------------------------------------------------------------- */

static size_t id_hash(int id, size_t cap) { return ((uint64_t)(uint32_t)id * 0x9e3779b97f4a7c15ull) >> 20 & (cap - 1); }

static idslot *id_find(const logs_miner *m, int id)
{
    if (!m->idcap)
        return NULL;
    for (size_t i = id_hash(id, m->idcap);; i = (i + 1) & (m->idcap - 1)) {
        idslot *sl = &m->tab[i];
        if (sl->id == id)
            return sl;
        if (sl->id == ID_EMPTY)
            return NULL;
    }
}

static cluster *cl_at(const logs_miner *m, int id)
{
    idslot *sl = id_find(m, id);
    return sl ? sl->c : NULL;
}

static int id_rehash(logs_miner *m, size_t ncap)
{
    idslot *nt = malloc(ncap * sizeof *nt);
    if (!nt)
        return -ENOMEM;
    for (size_t i = 0; i < ncap; i++)
        nt[i].id = ID_EMPTY;
    size_t used = 0;
    for (size_t i = 0; i < m->idcap; i++) {
        if (m->tab[i].id < 0)
            continue;
        size_t j = id_hash(m->tab[i].id, ncap);
        while (nt[j].id != ID_EMPTY)
            j = (j + 1) & (ncap - 1);
        nt[j] = m->tab[i];
        used++;
    }
    free(m->tab);
    m->tab = nt;
    m->idcap = ncap;
    m->idused = used;
    return 0;
}

/* A new slot for id (not in the table). */
static idslot *id_add(logs_miner *m, int id)
{
    if ((m->idused + 1) * 2 > m->idcap) {
        size_t live = 0;
        for (size_t i = 0; i < m->idcap; i++)
            live += m->tab[i].id >= 0;
        size_t ncap = m->idcap ? m->idcap : 64;
        while ((live + 1) * 4 > ncap) /* grow when half full of live slots, else only sweep tombstones */
            ncap *= 2;
        if (id_rehash(m, ncap) < 0)
            return NULL;
    }
    size_t i = id_hash(id, m->idcap);
    while (m->tab[i].id >= 0)
        i = (i + 1) & (m->idcap - 1);
    if (m->tab[i].id == ID_EMPTY)
        m->idused++;
    m->tab[i] = (idslot){.id = id, .alias = -1, .c = NULL};
    return &m->tab[i];
}

static void id_del(logs_miner *m, int id)
{
    idslot *sl = id_find(m, id);
    if (sl) {
        sl->id = ID_GONE;
        sl->c = NULL;
    }
}

/* drop now stands for keep. With a cap, only the newest maxtpl such aliases
 * are kept (an older merged id then resolves to -1, as a forgotten one). */
static void id_alias(logs_miner *m, int drop, int keep)
{
    idslot *sl = id_find(m, drop);
    if (!sl)
        return;
    sl->c = NULL;
    sl->alias = keep;
    if (m->maxtpl <= 0 || !m->aring)
        return;
    if (m->acount == m->maxtpl) {
        int old = m->aring[m->ahead];
        idslot *o = id_find(m, old);
        if (o && !o->c)
            id_del(m, old);
        m->ahead = (m->ahead + 1) % m->maxtpl;
        m->acount--;
    }
    m->aring[(m->ahead + m->acount) % m->maxtpl] = drop;
    m->acount++;
}

static void lru_unlink(logs_miner *m, int id)
{
    cluster *c = cl_at(m, id);
    if (c->prev >= 0)
        cl_at(m, c->prev)->next = c->next;
    else
        m->lru_head = c->next;
    if (c->next >= 0)
        cl_at(m, c->next)->prev = c->prev;
    else
        m->lru_tail = c->prev;
    c->prev = c->next = -1;
}

static void lru_front(logs_miner *m, int id)
{
    cluster *c = cl_at(m, id);
    c->prev = -1;
    c->next = m->lru_head;
    if (m->lru_head >= 0)
        cl_at(m, m->lru_head)->prev = id;
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

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
    if (k == 0 || k > n || (k == 2 && s[0] < 0xc2) || (k == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((k == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (k == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (k == 4 && s[0] == 0xf0 && s[1] < 0x90) || (k == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return k;
}

/* Template text is valid UTF-8 (it goes into JSON): a byte that does not
 * start a valid sequence shows as '?'. In place; the length stays. */
static void utf8_fix(char *t, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq((const unsigned char *)t + i, n - i);
        if (k == 0) {
            t[i++] = '?';
        } else {
            i += k;
        }
    }
}

/* Renders the template text: tokens joined by single blanks. */
static int cluster_render(cluster *c)
{
    size_t n = 1;
    for (int i = 0; i < c->ntok; i++)
        n += ((c->h[i] == wild_hash() || c->h[i] == any_hash()) ? (size_t)LOGS_WILD_LEN + c->kpre[i] + c->ksuf[i]
                                                                   : (size_t)c->len[i]) + 1;
    char *t = malloc(n);
    if (!t)
        return -ENOMEM;
    size_t o = 0;
    for (int i = 0; i < c->ntok; i++) {
        if (i && !c->glue[i])
            t[o++] = ' ';
        if (c->h[i] == wild_hash() || c->h[i] == any_hash()) {
            const char *w = c->toks + c->off[i];
            memcpy(t + o, w, c->kpre[i]);
            o += c->kpre[i];
            memcpy(t + o, LOGS_WILD, LOGS_WILD_LEN);
            o += LOGS_WILD_LEN;
            memcpy(t + o, w + c->len[i] - c->ksuf[i], c->ksuf[i]);
            o += c->ksuf[i];
        } else {
            memcpy(t + o, c->toks + c->off[i], c->len[i]);
            o += c->len[i];
        }
    }
    t[o] = '\0';
    utf8_fix(t, o);
    free(c->text);
    c->text = t;
    return 0;
}

static int cluster_new(logs_miner *m, const mtok *t, int ntok, int leaf)
{
    cluster *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    size_t bytes = 1;
    for (int i = 0; i < ntok; i++)
        bytes += t[i].len + 1;
    size_t n = ntok ? (size_t)ntok : 1;
    c->h = calloc(n, sizeof *c->h + sizeof *c->off + sizeof *c->len + sizeof *c->glue + 2);
    c->toks = malloc(bytes);
    if (!c->h || !c->toks) {
        cluster_free(c);
        return -ENOMEM;
    }
    c->off = (uint32_t *)(c->h + n);
    c->len = c->off + n;
    c->glue = (bool *)(c->len + n);
    c->kpre = (uint8_t *)(c->glue + n);
    c->ksuf = c->kpre + n;
    c->ntok = ntok;
    size_t o = 0;
    for (int i = 0; i < ntok; i++) {
        c->h[i] = t[i].h;
        c->nwild += t[i].h == m->wild;
        c->off[i] = (uint32_t)o;
        c->len[i] = t[i].len;
        c->glue[i] = t[i].glue;
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
    if (m->ncl == INT32_MAX) {
        cluster_free(c);
        return -EOVERFLOW;
    }
    int id = m->ncl;
    idslot *sl = id_add(m, id);
    if (!sl || leaf_push(m, leaf, id) < 0) {
        if (sl)
            id_del(m, id);
        cluster_free(c);
        return -ENOMEM;
    }
    sl->c = c;
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
    leaf_remove(m, cl_at(m, id)->leaf, id);
    cluster_free(cl_at(m, id));
    id_del(m, id);
    m->live--;
}

static bool tok_eq(const cluster *c, int i, const mtok *t)
{
    return c->h[i] == t->h && c->len[i] == t->len && !memcmp(c->toks + c->off[i], t->s, t->len);
}

/* The improved mode's match: Drain's similarity (the share of the
 * template's constant tokens the message has; a learnt <*> counts neither
 * way, nor does a masked <*> facing a masked <*>), the best template
 * (similarity, then the more specific, then the earlier). A template with no
 * differing token always matches; one with some only when the message has
 * at least sim_tokens tokens and the similarity reaches the threshold. */
static int leaf_match_const(const logs_miner *m, int leaf, const mtok *t, int ntok)
{
    const node *nd = &m->nodes[leaf];
    int best = -1, best_wild = 0, best_diff = 0;
    double best_sim = -1;
    for (int k = 0; k < nd->ncl; k++) {
        const cluster *c = cl_at(m, nd->cl[k]);
        int consts = 0, same = 0;
        for (int i = 0; i < ntok; i++) {
            if (c->h[i] == any_hash())
                continue;
            bool eq = tok_eq(c, i, &t[i]);
            if (eq && c->h[i] == wild_hash())
                continue;
            consts++;
            same += eq;
        }
        double sim = consts ? (double)same / (double)consts : 1.0;
        if (sim > best_sim || (sim == best_sim && c->nwild < best_wild)) {
            best = nd->cl[k];
            best_sim = sim;
            best_wild = c->nwild;
            best_diff = consts - same;
        }
    }
    if (best_diff == 0)
        return best;
    return ntok >= m->sim_tokens && best_sim >= m->sim ? best : -1;
}

/* Drain's fastMatch over a leaf: the best cluster (similarity, then more
 * wildcards, then the earlier) if it reaches the threshold, else -1.
 * exact: only a cluster whose template equals the tokens. */
static int leaf_match(const logs_miner *m, int leaf, const mtok *t, int ntok, bool exact)
{
    if (!m->classic && !exact)
        return leaf_match_const(m, leaf, t, ntok);
    const node *nd = &m->nodes[leaf];
    int best = -1, best_same = -1, best_wild = -1;
    uint64_t wh = m->wild;
    for (int k = 0; k < nd->ncl; k++) {
        const cluster *c = cl_at(m, nd->cl[k]);
        int same = 0;
        for (int i = 0; i < ntok; i++)
            if (c->h[i] != wh ? tok_eq(c, i, &t[i]) : !m->classic)
                same++; /* beyond Drain: a wildcard matches any token */
        if (exact) {
            bool eq = true;
            for (int i = 0; i < ntok && eq; i++)
                eq = c->h[i] == t[i].h && (c->h[i] == wh || tok_eq(c, i, &t[i]));
            if (eq)
                return nd->cl[k];
            continue;
        }
        /* ties: Drain takes more wildcards, the improved mode the more specific */
        if (same > best_same ||
            (same == best_same && (m->classic ? c->nwild > best_wild : c->nwild < best_wild))) {
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
static int cluster_update(const logs_miner *m, cluster *c, const mtok *t)
{
    uint64_t wh = m->wild;
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

static void cluster_absorb(logs_miner *m, int keep, int drop);

/* After id's template changed: another cluster of the same leaf with the
 * same template absorbs it (the earlier id stays). Returns the surviving id. */
static int cluster_merge(logs_miner *m, int id)
{
    cluster *c = cl_at(m, id);
    const node *nd = &m->nodes[c->leaf];
    for (int k = 0; k < nd->ncl; k++) {
        int o = nd->cl[k];
        if (o == id || !cl_at(m, o) || cl_at(m, o)->ntok != c->ntok || strcmp(cl_at(m, o)->text, c->text))
            continue;
        int keep = o < id ? o : id, drop = o < id ? id : o;
        cluster_absorb(m, keep, drop);
        lru_touch(m, keep);
        return keep;
    }
    return id;
}

/* Drops cluster drop into keep (its messages and count go there). */
static void cluster_absorb(logs_miner *m, int keep, int drop)
{
    cluster *d = cl_at(m, drop);
    cl_at(m, keep)->count += d->count;
    lru_unlink(m, drop);
    leaf_remove(m, d->leaf, drop);
    cluster_free(d);
    id_alias(m, drop, keep);
    m->live--;
}

/* Position where templates a and b differ when they differ in exactly one
 * position, both constant there; -1 otherwise. */
static int one_diff(const cluster *a, const cluster *b)
{
    uint64_t wh = any_hash();
    int at = -1;
    for (int i = 0; i < a->ntok; i++) {
        if (a->h[i] == b->h[i] && (a->h[i] == wh || (a->len[i] == b->len[i] &&
                                   !memcmp(a->toks + a->off[i], b->toks + b->off[i], a->len[i]))))
            continue;
        if (at >= 0 || a->h[i] == wh || b->h[i] == wh)
            return -1;
        at = i;
    }
    return at;
}

static bool punct_open(char c) { return c == '(' || c == '[' || c == '{' || c == '\'' || c == '"'; }
static bool punct_close(char c)
{
    return c == ')' || c == ']' || c == '}' || c == '\'' || c == '"' || c == ',' || c == ';' || c == ':' || c == '.';
}

static size_t punct_lead(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && k < 15 && punct_open(s[k]))
        k++;
    return k;
}

static size_t punct_trail(const char *s, size_t n)
{
    size_t k = 0;
    while (k < n && k < 15 && punct_close(s[n - 1 - k]))
        k++;
    return k;
}

/* Shrinks *kp / *ks to the punctuation a[0..an) shares with b at its ends. */
static void punct_common(const char *a, size_t an, const char *b, size_t bn, size_t *kp, size_t *ks)
{
    size_t p = 0, q = 0;
    while (p < *kp && p < bn && a[p] == b[p])
        p++;
    while (q < *ks && q < bn && a[an - 1 - q] == b[bn - 1 - q])
        q++;
    *kp = p;
    *ks = q;
}

/* After id was created: when m->variants templates of its leaf (id among
 * them) differ only in one position, that position is a variable and they
 * become one template (the earliest id) with <*> there. Returns the id that
 * id now stands for. */
static int cluster_variants(logs_miner *m, int id)
{
    if (m->variants < 2)
        return id;
    const cluster *c = cl_at(m, id);
    const node *nd = &m->nodes[c->leaf];
    int ntok = c->ntok;
    for (int p = 0; p < ntok; p++) {
        if (c->h[p] == any_hash())
            continue;
        int n = 1, keep = id;
        for (int k = 0; k < nd->ncl; k++) {
            int o = nd->cl[k];
            if (o != id && cl_at(m, o)->ntok == ntok && one_diff(c, cl_at(m, o)) == p) {
                n++;
                if (o < keep)
                    keep = o;
            }
        }
        int consts = c->ntok - c->nwild - 1; /* after the merge */
        if (n < m->variants || consts < 2 || consts * 2 < c->ntok)
            continue; /* a template mostly of variables is never learnt */
        cluster *kc = cl_at(m, keep);
        size_t kp = punct_lead(kc->toks + kc->off[p], kc->len[p]), ks = punct_trail(kc->toks + kc->off[p], kc->len[p]);
        for (int k = 0; k < nd->ncl; k++) {
            int o = nd->cl[k];
            const cluster *oc = cl_at(m, o);
            if (o != keep && (o == id || (oc->ntok == ntok && one_diff(kc, oc) == p)))
                punct_common(kc->toks + kc->off[p], kc->len[p], oc->toks + oc->off[p], oc->len[p], &kp, &ks);
        }
        if (kp + ks > kc->len[p])
            kp = ks = 0;
        for (int k = nd->ncl - 1; k >= 0; k--) {
            int o = nd->cl[k];
            if (o != keep && (o == id || (cl_at(m, o)->ntok == ntok && one_diff(kc, cl_at(m, o)) == p)))
                cluster_absorb(m, keep, o);
        }
        kc->h[p] = any_hash();
        kc->kpre[p] = (uint8_t)kp;
        kc->ksuf[p] = (uint8_t)ks;
        kc->nwild++;
        if (cluster_render(kc) < 0)
            return -ENOMEM;
        lru_touch(m, keep);
        return cluster_merge(m, keep);
    }
    return id;
}

/* ---- fast path ------------------------------------------------------------------ */

static uint64_t seq_key(const mtok *t, int ntok)
{
    uint64_t k = 0x9e3779b97f4a7c15ull ^ (uint64_t)ntok;
    for (int i = 0; i < ntok; i++) {
        k ^= t[i].h + 0x9e3779b97f4a7c15ull + (k << 6) + (k >> 2);
        k *= 0xff51afd7ed558ccdull;
    }
    return k | 1;
}

/* ---- tokenising ----------------------------------------------------------------- */

static bool miner_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f) || c == 0;
}

/* Byte classes for the tokeniser's one pass over a line. */
enum { CLS_SPACE = 1, CLS_SPLIT = 2, CLS_DQUOTE = 4, CLS_MAYBE = 8, CLS_ALPHA = 16 };
static unsigned char miner_cls[256];

/* The tables every miner reads, once per process. */
static void miner_init(void)
{
    wild_h = miner_hash(LOGS_WILD, LOGS_WILD_LEN);
    for (int c = 0; c < 256; c++) {
        unsigned char k = 0;
        if (miner_space((unsigned char)c))
            k |= CLS_SPACE;
        if (c == ',' || c == ';')
            k |= CLS_SPLIT;
        if (c == '"')
            k |= CLS_DQUOTE;
        /* a word with none of these may still be a long hex run or a UUID
         * (checked when longer than 8) */
        if ((c >= '0' && c <= '9') || c == '=' || c == '/' || c == '<' || c == '"' || c == '\'' || c == '\\')
            k |= CLS_MAYBE;
        if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')
            k |= CLS_ALPHA;
        miner_cls[c] = k;
    }
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

/* Units that belong to the number before them: "1.16 KB", "5 ms". */
static bool tok_unit(const char *s, size_t n)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB", "PB", "kB", "KiB", "MiB", "GiB", "TiB",
                                        "ns", "us", "ms", "s", "sec", "secs", "min", "mins", "h", "hrs"};
    while (n > 0 && (s[n - 1] == ')' || s[n - 1] == ']' || s[n - 1] == ',' || s[n - 1] == ';' || s[n - 1] == '.'))
        n--;
    if (n == 0 || n > 4)
        return false;
    for (size_t k = 0; k < sizeof units / sizeof units[0]; k++)
        if (strlen(units[k]) == n && !memcmp(units[k], s, n))
            return true;
    return false;
}

/* Month and weekday names, variables of a date next to a number. */
static bool tok_datename(const char *s, size_t n)
{
    static const char names[] = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec Mon Tue Wed Thu Fri Sat Sun ";
    if (n != 3)
        return false;
    for (size_t k = 0; k + 3 < sizeof names; k += 4)
        if (!memcmp(names + k, s, 3))
            return true;
    return false;
}

/* Masks token k (all of it) into m->mbuf at *mo. */
static void tok_set(logs_miner *m, mtok *t, const char *pre, size_t npre, const char *suf, size_t nsuf, size_t *mo)
{
    char *d = m->mbuf + *mo;
    memmove(d, pre, npre);
    memcpy(d + npre, LOGS_WILD, LOGS_WILD_LEN);
    memmove(d + npre + LOGS_WILD_LEN, suf, nsuf);
    t->s = d;
    t->len = (uint32_t)(npre + LOGS_WILD_LEN + nsuf);
    *mo += t->len;
}

/* Length of the bracketed aside made only of a variable or of nothing
 * ("(<*>)", "[<*>]", "()", "[]", "{}") that token t starts with, when only
 * closing punctuation (",", ";", ":", ".") follows it in t; else 0. An empty
 * aside is a variable whose value was empty ("from h () at" is "from h
 * (name) at" with no name), so both are dropped alike. */
static size_t tok_aside(const mtok *t)
{
    if (t->len < 2)
        return 0;
    char open = t->s[0], close = open == '(' ? ')' : open == '[' ? ']' : open == '{' ? '}' : 0;
    if (!close)
        return 0;
    size_t k = 1;
    if (t->len >= 2 + LOGS_WILD_LEN && !memcmp(t->s + 1, LOGS_WILD, LOGS_WILD_LEN))
        k += LOGS_WILD_LEN;
    if (t->s[k] != close)
        return 0;
    k++;
    for (size_t i = k; i < t->len; i++)
        if (t->s[i] != ',' && t->s[i] != ';' && t->s[i] != ':' && t->s[i] != '.')
            return 0;
    return k;
}

/* Appends s[0..n) to token t (rewritten in m->mbuf; in place when t is the
 * last text written there). */
static void tok_join(logs_miner *m, mtok *t, const char *s, size_t n, size_t *mo)
{
    if (t->s + t->len == m->mbuf + *mo) {
        memmove(m->mbuf + *mo, s, n);
        t->len += (uint32_t)n;
        *mo += n;
        return;
    }
    char *d = m->mbuf + *mo;
    memmove(d, t->s, t->len);
    memmove(d + t->len, s, n);
    t->s = d;
    t->len += (uint32_t)n;
    *mo += t->len;
}

/* The improved mode's clean-up after masking: a unit joins its number
 * ("(<*> KB)" -> "(<*>)"), month and weekday names next to a number are
 * masked, and a bracketed aside made only of a variable ("(<*>)") or
 * empty ("()") is dropped, so "5 bytes sent" and "5 bytes (5 B) sent"
 * share a template. */
static int toks_tidy(logs_miner *m, int nt, size_t *mo)
{
    mtok *t = m->toks;
    for (int i = 0; i < nt; i++)
        if (!t[i].var && tok_datename(t[i].s, t[i].len) &&
            ((i + 1 < nt && t[i + 1].var) || (i > 0 && t[i - 1].var) || (i + 1 < nt && tok_datename(t[i + 1].s, 3)))) {
            t[i].s = LOGS_WILD;
            t[i].len = LOGS_WILD_LEN;
            t[i].var = true;
        }
    int o = 0;
    for (int i = 0; i < nt; i++) {
        mtok x = t[i];
        while (x.var && i + 1 < nt && t[i + 1].var && x.len >= LOGS_WILD_LEN &&
               !memcmp(x.s + x.len - LOGS_WILD_LEN, LOGS_WILD, LOGS_WILD_LEN) && t[i + 1].len >= LOGS_WILD_LEN &&
               !memcmp(t[i + 1].s, LOGS_WILD, LOGS_WILD_LEN)) { /* "<*> <*>" is one variable */
            tok_set(m, &x, x.s, x.len - LOGS_WILD_LEN, t[i + 1].s + LOGS_WILD_LEN, t[i + 1].len - LOGS_WILD_LEN, mo);
            i++;
        }
        if (x.var && i + 1 < nt && !t[i + 1].var && x.len >= LOGS_WILD_LEN &&
            !memcmp(x.s + x.len - LOGS_WILD_LEN, LOGS_WILD, LOGS_WILD_LEN) && tok_unit(t[i + 1].s, t[i + 1].len)) {
            const mtok *u = &t[i + 1];
            size_t core = u->len;
            while (core > 0 && !(((u->s[core - 1] | 0x20) >= 'a' && (u->s[core - 1] | 0x20) <= 'z')))
                core--;
            tok_set(m, &x, x.s, x.len - LOGS_WILD_LEN, u->s + core, u->len - core, mo);
            i++;
        }
        t[o++] = x;
    }
    nt = o;
    o = 0;
    for (int i = 0; i < nt; i++) {
        size_t k = tok_aside(&t[i]);
        if (!k) {
            t[o++] = t[i];
            continue;
        }
        /* "x (<*>): y" is "x: y": the punctuation after it goes to the token before */
        size_t np = t[i].len - k;
        if (np && o > 0)
            tok_join(m, &t[o - 1], t[i].s + k, np, mo);
        else if (np)
            t[o++] = t[i]; /* first token: nothing to attach the punctuation to */
    }
    return o;
}

/* Splits s into blank-separated tokens. In the improved mode each token
 * holding a variable is rewritten in m->mbuf ("(1.16" -> "(<*>"), a
 * double-quoted string with blanks is one token, and toks_tidy() runs.
 * Returns the token count or -errno. */
static int miner_tokenise(logs_miner *m, const char *s, size_t n)
{
    int nt = 0;
    size_t i = 0;
    bool builtin = !m->classic;
    if (builtin && buf_reserve(&m->mbuf, &m->mcap, 3 * n + (n / 2 + 1) * LOGS_WILD_LEN + 16) < 0)
        return -ENOMEM;
    size_t mo = 0;
    while (i < n && nt < MINER_MAX_TOKENS) {
        while (i < n && miner_space((unsigned char)s[i]))
            i++;
        if (i >= n)
            break;
        size_t b = i;
        bool glue = false;
        if (nt > 0 && b > 0 && !miner_space((unsigned char)s[b - 1]))
            glue = true; /* the rest of a word split after a comma */
        int quotes = 0;
        unsigned seen = 0;
        while (i < n) {
            unsigned c = miner_cls[(unsigned char)s[i]];
            if (c & CLS_SPACE)
                break;
            seen |= c;
            quotes += (c & CLS_DQUOTE) != 0;
            i++;
            /* beyond Drain: "a=1,b=2" splits after the comma */
            if ((c & CLS_SPLIT) && builtin && i < n && (miner_cls[(unsigned char)s[i]] & CLS_ALPHA) && i - 1 > b &&
                !quotes)
                break;
        }
        if (builtin && quotes == 1 && s[b] != '"') { /* key="a b c": up to the closing quote */
            const char *e = memchr(s + i, '"', n - i < 256 ? n - i : 256);
            if (e) {
                i = (size_t)(e - s) + 1;
                while (i < n && !miner_space((unsigned char)s[i]))
                    i++;
            }
        }
        if (toks_reserve(m, nt + 1) < 0)
            return -ENOMEM;
        mtok *t = &m->toks[nt++];
        t->s = s + b;
        t->len = (uint32_t)(i - b);
        t->var = false;
        t->glue = glue;
        size_t pre, suf;
        if (builtin && (seen & CLS_MAYBE) && logs_mask_token(s + b, i - b, m->broad, &pre, &suf)) {
            tok_set(m, t, s + b, pre, s + i - suf, suf, &mo);
            t->var = true;
        }
    }
    if (builtin)
        nt = toks_tidy(m, nt, &mo);
    for (int k = 0; k < nt; k++)
        m->toks[k].h = miner_hash(m->toks[k].s, m->toks[k].len) ^ (m->toks[k].glue ? 0x100ull : 0);
    return nt;
}

/* The id a (possibly merged) id now stands for; -1 when forgotten. */
static int miner_resolve_id(const logs_miner *m, int id)
{
    for (int hops = 0; id >= 0 && hops < 64; hops++) {
        const idslot *sl = id_find(m, id);
        if (!sl)
            return -1;
        if (sl->c)
            return id;
        id = sl->alias;
    }
    return -1;
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
    if (d.max_children < 0 || d.max_templates < 0 || d.variants < 0 || d.sim_tokens < 0) {
        snprintf(err, errlen, "max_children, max_templates, variants and sim_tokens must not be negative");
        return -EINVAL;
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, miner_init);
    logs_miner *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    m->sim = d.sim > 0 ? d.sim : d.classic ? 0.5 : MINER_DEF_SIM;
    m->depth = d.depth ? d.depth : MINER_DEF_DEPTH;
    m->maxch = d.max_children > 1 ? d.max_children : MINER_DEF_CHILDREN;
    m->maxtpl = d.max_templates;
    m->variants = d.classic ? 0 : d.variants ? d.variants : MINER_DEF_VARIANTS;
    m->sim_tokens = d.sim_tokens ? d.sim_tokens : MINER_DEF_SIM_TOKENS;
    m->classic = d.classic;
    m->wild = d.classic ? wild_hash() : any_hash();
    m->broad = !d.classic;
    m->lru_head = m->lru_tail = -1;
    if (m->maxtpl > 0 && !(m->aring = malloc((size_t)m->maxtpl * sizeof *m->aring))) {
        logs_miner_free(m);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (!m->classic) {
        m->ckey = calloc((size_t)1 << MINER_CACHE_BITS, sizeof *m->ckey);
        m->cid = calloc((size_t)1 << MINER_CACHE_BITS, sizeof *m->cid);
    }
    if ((!m->classic && (!m->ckey || !m->cid)) || node_new(m) < 0) { /* the root */
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
    uint64_t key = 0;
    size_t slot = 0;
    if (m->ckey) { /* the same masked tokens as an earlier message: its template */
        key = seq_key(t, ntok);
        slot = (size_t)(key >> (64 - MINER_CACHE_BITS));
        if (m->ckey[slot] == key) {
            int id = miner_resolve_id(m, m->cid[slot]);
            if (id >= 0) {
                cl_at(m, id)->count++;
                lru_touch(m, id);
                return id;
            }
        }
    }
    /* Published Drain never files a message shorter than depth-2 tokens in
     * its tree: such messages group only with identical ones. */
    bool exact = m->classic && ntok < m->depth - 2;
    int leaf = tree_search(m, t, ntok);
    int id = leaf >= 0 ? leaf_match(m, leaf, t, ntok, exact) : -1;
    if (id >= 0) {
        cluster *c = cl_at(m, id);
        c->count++;
        lru_touch(m, id);
        int ch = cluster_update(m, c, t);
        if (ch < 0)
            return ch;
        if (ch > 0 && !m->classic)
            id = cluster_merge(m, id);
        if (m->ckey) {
            m->ckey[slot] = key;
            m->cid[slot] = id;
        }
        return id;
    }
    leaf = tree_insert(m, t, ntok);
    if (leaf < 0)
        return leaf;
    id = cluster_new(m, t, ntok, leaf);
    if (id < 0)
        return id;
    int nid = cluster_variants(m, id);
    if (nid < 0)
        return nid;
    if (is_new)
        *is_new = nid == id; /* else an existing template took it in */
    id = nid;
    if (m->ckey) {
        m->ckey[slot] = key;
        m->cid[slot] = id;
    }
    if (m->maxtpl > 0 && m->live > m->maxtpl)
        cluster_evict(m, id);
    return id;
}


int logs_miner_resolve(const logs_miner *m, int id) { return miner_resolve_id(m, id); }

const char *logs_miner_template(const logs_miner *m, int id)
{
    id = miner_resolve_id(m, id);
    return id >= 0 ? cl_at(m, id)->text : "";
}

int logs_miner_count(const logs_miner *m) { return m->live; }

void logs_miner_free(logs_miner *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m->idcap; i++)
        if (m->tab[i].id >= 0)
            cluster_free(m->tab[i].c);
    free(m->tab);
    free(m->aring);
    for (int i = 0; i < m->nnodes; i++)
        free(m->nodes[i].cl);
    free(m->nodes);
    free(m->edges);
    logs_masks_free(m->masks);
    free(m->buf);
    free(m->mbuf);
    free(m->toks);
    free(m->ckey);
    free(m->cid);
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
