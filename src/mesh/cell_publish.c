/* cell_publish.c: the cell's own detector baselines and tuned knob sets as
 * signed wisdom (issue 15 item 4), beside the fix records cell_gossip.c
 * publishes: built from the cell's memory and Evolve's run records
 * (wisdom_publish.c), signed in the same seq space, kept in the cell's
 * store and gossiped like them; a record is published again only when what
 * it says changed (its statistics to two significant digits, its knob
 * values or gain). And the receiving side's use of them:
 * mesh_cell_knob_sets. Runs on the cell's thread under mu, except
 * mesh_cell_knob_sets (any thread; takes mu). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/cell_int.h"
#include "mesh/wisdom_publish.h"

#define PUB_KEYS_MAX 256
#define PUB_BASELINE_EVERY_MS (10ULL * 60 * 1000) /* the day's aggregates move slowly */
#define PUB_TRANSMITS 4                        /* as cell_gossip.c's */

typedef struct pub_key {
    char key[160];
    uint64_t hash;
} pub_key;

struct cell_pub {
    pub_key keys[PUB_KEYS_MAX]; /* the last version published of each baseline and knob set */
    int nkeys;
    uint64_t next_baselines;
    int published, unchanged, deferred;
    char said[2][512]; /* the last refusal logged of baselines, knob sets: said once */
};

/* Logs a refusal of what (0 baselines, 1 knob sets) once, until it changes. */
static void tell(struct cell_pub *p, int what, int rc, int refused, const char *err)
{
    if (rc >= 0 && !refused) {
        p->said[what][0] = 0;
        return;
    }
    if (!strcmp(p->said[what], err))
        return;
    snprintf(p->said[what], sizeof p->said[what], "%s", err);
    log_info("mesh: own %s: %d refused: %s", what ? "knob sets" : "baselines", refused, err);
}

void cell_publish_free(struct mesh_cell *m)
{
    free(m->pub);
    m->pub = NULL;
}

/* Whether r says something not published yet; remembers it. */
static bool changed(struct cell_pub *p, const mesh_wisdom_rec *r)
{
    char key[160];
    uint64_t h = mesh_pub_hash(r, key, sizeof key);
    for (int i = 0; i < p->nkeys; i++) {
        if (strcmp(p->keys[i].key, key))
            continue;
        if (p->keys[i].hash == h)
            return false;
        p->keys[i].hash = h;
        return true;
    }
    if (p->nkeys == PUB_KEYS_MAX)
        return false; /* more kinds of record than a cell shares: the first ones stand */
    snprintf(p->keys[p->nkeys].key, sizeof p->keys[p->nkeys].key, "%s", key);
    p->keys[p->nkeys++].hash = h;
    return true;
}

static int publish_rec(void *ud, const mesh_wisdom_rec *rec)
{
    struct mesh_cell *m = ud;
    if (m->noutbox >= CELL_OUTBOX_MAX) { /* no room to gossip it: the next round tries again */
        m->pub->deferred++;
        return 0;
    }
    if (!changed(m->pub, rec)) {
        m->pub->unchanged++;
        return 0;
    }
    uint8_t buf[MESH_WISDOM_MAX_BYTES];
    size_t len = 0;
    if (cell_wisdom_own(m, rec, buf, sizeof buf, &len))
        return 0;
    m->pub->published++;
    if (m->noutbox < CELL_OUTBOX_MAX) {
        cell_out *o = &m->outbox[m->noutbox++];
        memcpy(o->buf, buf, len);
        o->len = len;
        o->left = PUB_TRANSMITS;
    }
    return 0;
}

void cell_publish_tick(struct mesh_cell *m, uint64_t now)
{
    char err[512], dir[CORE_PATH_MAX + 32];
    int refused = 0;
    if (!m->ws)
        return;
    if (!m->pub && !(m->pub = calloc(1, sizeof *m->pub)))
        return;
    if (m->mem && now >= m->pub->next_baselines) {
        m->pub->deferred = 0;
        int rc = mesh_wisdom_baselines_from_memory(m->mem, &m->host, core_now_ms(), &m->loc, publish_rec, m,
                                                   &refused, err, sizeof err);
        tell(m->pub, 0, rc, refused, err);
        /* some waited for room in the outbox: again at the next publish round */
        m->pub->next_baselines = now + (m->pub->deferred ? m->cfg.publish_interval_ms : PUB_BASELINE_EVERY_MS);
    }
    snprintf(dir, sizeof dir, "%s/evolve/runs", m->state_dir);
    int rc = mesh_wisdom_knobs_from_runs(dir, &m->host, &m->loc, publish_rec, m, &refused, err, sizeof err);
    tell(m->pub, 1, rc, refused, err);
}

/* ---- the receiving side ------------------------------------------------------------------ */

struct knobs_ctx {
    const struct mesh_cell *m;
    const char *service;
    mesh_knob_set *out;
    int max, n;
    int64_t now;
};

static void knob_set_of(const struct mesh_cell *m, const mesh_wisdom_rec *r, double weight, mesh_knob_set *k)
{
    memset(k, 0, sizeof *k);
    const cell_known *kn = cell_known_by_pk(m, r->origin);
    if (kn && kn->node_id[0])
        core_sncpy(k->from, sizeof k->from, kn->node_id);
    else
        mesh_identity_pk_hex(r->origin, k->from);
    memcpy(k->origin, r->origin, sizeof k->origin);
    core_sncpy(k->service, sizeof k->service, r->host.service);
    core_sncpy(k->objective, sizeof k->objective, r->knobs.objective);
    k->nknobs = r->knobs.nknobs;
    for (int i = 0; i < r->knobs.nknobs && i < MESH_KNOBS_MAX; i++) {
        core_sncpy(k->name[i], sizeof k->name[i], r->knobs.knobs[i].name);
        core_sncpy(k->value[i], sizeof k->value[i], r->knobs.knobs[i].value);
    }
    k->gain = r->knobs.gain;
    k->lo = r->knobs.lo;
    k->hi = r->knobs.hi;
    k->runs = r->knobs.runs;
    k->weight = weight;
    k->seq = r->seq;
    k->ts_ms = r->ts_ms;
}

static int knobs_one(void *ud, const uint8_t *buf, size_t len, int64_t received_ms)
{
    (void)received_ms;
    struct knobs_ctx *c = ud;
    const struct mesh_cell *m = c->m;
    mesh_wisdom_rec r;
    char err[256];
    if (mesh_wisdom_decode(buf, len, &r, err, sizeof err) || r.kind != MESH_WISDOM_KNOBS ||
        strcmp(r.host.service, c->service) || !memcmp(r.origin, m->node.pk, MESH_ID_PK_BYTES))
        return 0;
    double w = mesh_wisdom_trust_weight(&m->trust, r.origin, c->now);
    if (w <= 0)
        return 0; /* an ignored origin's wisdom is not used */
    for (int i = 0; i < c->n; i++) { /* an origin's newest version of an objective's set */
        mesh_knob_set *k = &c->out[i];
        if (memcmp(k->origin, r.origin, sizeof k->origin) || strcmp(k->objective, r.knobs.objective))
            continue;
        if (r.seq > k->seq)
            knob_set_of(m, &r, w, k);
        return 0;
    }
    if (c->n < c->max)
        knob_set_of(m, &r, w, &c->out[c->n++]);
    return 0;
}

static int by_evidence(const void *a, const void *b)
{
    const mesh_knob_set *x = a, *y = b;
    double ex = x->weight * x->lo, ey = y->weight * y->lo;
    return ex > ey ? -1 : ex < ey;
}

int mesh_cell_knob_sets(mesh_cell *m, const char *service, mesh_knob_set *out, int max)
{
    if (!service || max < 0 || (max && !out))
        return -EINVAL;
    struct knobs_ctx c = {m, service, out, max, 0, core_now_ms()};
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    if (m->running && m->ws)
        rc = mesh_wisdom_store_recent(m->ws, 100000, knobs_one, &c);
    pthread_mutex_unlock(&m->mu);
    if (rc < 0)
        return rc;
    qsort(out, (size_t)c.n, sizeof *out, by_evidence);
    return c.n;
}

void cell_publish_summary(const mesh_wisdom_rec *r, char *out, size_t n)
{
    const char *svc = r->host.service[0] ? r->host.service : "the machine";
    if (r->kind == MESH_WISDOM_BASELINE) {
        snprintf(out, n, "baseline of %s (%s): mean %.4g, stddev %.3g, p05 %.4g, p50 %.4g, p95 %.4g over %u samples",
                 r->base.metric, svc, r->base.mean, r->base.stddev, r->base.p05, r->base.p50, r->base.p95,
                 r->base.count);
        return;
    }
    char knobs[200] = "";
    size_t used = 0;
    for (int i = 0; i < r->knobs.nknobs && used + 2 < sizeof knobs; i++) {
        int w = snprintf(knobs + used, sizeof knobs - used, "%s%s=%s", i ? " " : "", r->knobs.knobs[i].name,
                         r->knobs.knobs[i].value);
        used = w < 0 ? used : used + (size_t)w < sizeof knobs ? used + (size_t)w : sizeof knobs - 1;
    }
    snprintf(out, n, "knobs for %s (%s): %s: gain %+.1f%% [%+.1f%%, %+.1f%%] over %u runs", r->knobs.objective, svc,
             knobs, 100 * r->knobs.gain, 100 * r->knobs.lo, 100 * r->knobs.hi, r->knobs.runs);
}
