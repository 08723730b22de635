/* cell_gossip.c: what the cell gossips besides membership: the fleet's
 * revocation list (channel 2: the encoded list to a random peer now and then,
 * merged, saved, sessions of revoked members dropped) and wisdom (channel 3:
 * the cell's own fix records from its memory's cases, signed, and the
 * records received, a few per round to random peers, stored through the
 * wisdom store with the sender's trust). Runs on the cell's thread under mu. */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/cell_int.h"

#define WISDOM_ROUND_MS 1000
#define WISDOM_TRANSMITS 4

bool cell_revoked_pk(const struct mesh_cell *m, const uint8_t pk[MESH_ID_PK_BYTES])
{
    for (size_t i = 0; i < m->rl.n; i++)
        if (m->rl.recs[i].kind == MESH_REVOKE_KEY && !memcmp(m->rl.recs[i].node_pk, pk, MESH_ID_PK_BYTES))
            return true;
    return false;
}

int cell_gossip_open(struct mesh_cell *m, char *err, size_t errlen)
{
    char path[CORE_PATH_MAX + 32], e[512];
    snprintf(path, sizeof path, "%s/mesh-wisdom.db", m->state_dir);
    int rc = mesh_wisdom_store_open(path, NULL, &m->ws, err, errlen);
    if (rc)
        return rc;
    mesh_wisdom_trust_init(&m->trust, NULL);
    if (mesh_wisdom_store_load_trust(m->ws, &m->trust, e, sizeof e))
        log_warn("mesh: wisdom trust: %s (starting from zero)", e);
    mesh_wisdom_local_init(&m->loc);
    if (mesh_wisdom_host_local("", &m->host, e, sizeof e))
        log_warn("mesh: wisdom host class: %s", e);
    uint64_t now = (uint64_t)core_mono_ms();
    m->next_revoke = now + 1000;
    m->next_publish = now + 2000;
    m->next_wisdom = now + WISDOM_ROUND_MS;
    m->wisdom_seq = (uint64_t)core_now_ms(); /* grows across restarts */
    m->noutbox = 0;
    m->nown = 0;
    return 0;
}

void cell_gossip_close(struct mesh_cell *m)
{
    char e[512];
    if (!m->ws)
        return;
    if (mesh_wisdom_store_save_trust(m->ws, &m->trust, e, sizeof e))
        log_warn("mesh: saving wisdom trust: %s", e);
    mesh_wisdom_store_close(m->ws);
    m->ws = NULL;
    cell_publish_free(m); /* -- wispub */
    mesh_wisdom_trust_free(&m->trust);
}

uint64_t cell_gossip_deadline(const struct mesh_cell *m)
{
    uint64_t d = m->next_revoke < m->next_publish ? m->next_revoke : m->next_publish;
    return m->next_wisdom < d ? m->next_wisdom : d;
}

/* ---- revocations ------------------------------------------------------------------ */

/* -- revsync: our list to addr on channel 2 (nothing when it is empty or too big for one payload). */
void cell_revoke_send(struct mesh_cell *m, uint64_t now, const char *addr)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (m->rl.n && mesh_identity_revlist_encode(&m->rl, &buf, &len) == 0 && len < MESH_SESSION_MAX_PAYLOAD)
        cell_send(m, now, addr, CELL_CH_REVOKE, buf, len);
    free(buf);
}

static void revoke_round(struct mesh_cell *m, uint64_t now)
{
    char addr[MESH_SESSION_ADDR_MAX + 1];
    if (!m->rl.n || !cell_random_peer(m, addr, sizeof addr))
        return;
    uint8_t *buf = NULL;
    size_t len = 0;
    if (mesh_identity_revlist_encode(&m->rl, &buf, &len) == 0 && len < MESH_SESSION_MAX_PAYLOAD)
        cell_send(m, now, addr, CELL_CH_REVOKE, buf, len);
    free(buf);
}

int cell_revoke_receive(struct mesh_cell *m, uint64_t now, const char *addr, const uint8_t *p, size_t n)
{
    char err[512];
    size_t added = 0;
    int rc = mesh_identity_revlist_merge(&m->rl, p, n, core_now_ms() / 1000, &added, err, sizeof err);
    if (rc) {
        m->malformed++;
        log_warn("mesh: revocation list from %s refused: %s", addr, err);
        return rc;
    }
    if (!added)
        return 0;
    log_info("mesh: %zu revocation(s) learned from %s", added, addr);
    m->revoke_fast = 6; /* spread them quickly: a few rounds at once, not one in 10 s */
    m->next_revoke = now;
    if (mesh_identity_revlist_save(&m->rl, m->state_dir, err, sizeof err))
        log_warn("mesh: %s", err);
    /* the session of a member now revoked (by key, or by its certificate's
     * serial) goes; the others stay. A member whose certificate is not known
     * here handshakes again, where the session checks the list. */
    for (size_t i = 0; i < m->nknown; i++) {
        cell_known *k = &m->known[i];
        if (!k->session)
            continue;
        bool revoked = k->has_cert ? mesh_identity_revlist_find(&m->rl, &k->cert) != NULL : true;
        if (!revoked)
            continue;
        if (k->has_cert)
            log_warn("mesh: %s (%s) is revoked: session dropped", k->node_id, k->addr);
        mesh_session_forget(m->ses, k->addr);
        k->session = k->rev_sent = k->has_cert = false;
    }
    return 0;
}

void cell_revoke_reload(struct mesh_cell *m, uint64_t now)
{
    char path[CORE_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", m->state_dir, MESH_ID_REVLIST_FILE);
    size_t n = 0;
    char *b = core_slurp(path, &n);
    if (!b)
        return;
    (void)cell_revoke_receive(m, now, path, (const uint8_t *)b, n);
    free(b);
}

/* ---- wisdom ------------------------------------------------------------------------ */

/* A record new to the store: gossiped a few times. */
static void remember(struct mesh_cell *m, const uint8_t *buf, size_t len)
{
    if (m->noutbox < CELL_OUTBOX_MAX && len <= MESH_WISDOM_MAX_BYTES) {
        cell_out *o = &m->outbox[m->noutbox++];
        memcpy(o->buf, buf, len);
        o->len = len;
        o->left = WISDOM_TRANSMITS;
    }
}

void cell_wisdom_receive(struct mesh_cell *m, uint64_t now, const char *addr, const uint8_t *p, size_t n)
{
    (void)now;
    const cell_known *k = cell_known_by_addr(m, addr);
    if (!k || !m->ws)
        return;
    char err[512];
    mesh_wisdom_verdict v = MESH_WISDOM_OK;
    int rc = mesh_wisdom_store_receive(m->ws, &m->trust, k->pk, p, n, core_now_ms(), &v, err, sizeof err);
    if (rc == 0)
        remember(m, p, n);
    else if (rc < 0 && rc != -EACCES)
        log_info("mesh: wisdom from %s (%s) refused: %s", k->node_id, addr, err);
}

static uint64_t fix_hash(const mesh_wisdom_rec *r)
{
    crypto_generichash_state st;
    uint64_t h = 0;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)r->fix.action, strlen(r->fix.action));
    for (int i = 0; i < r->fix.nfeatures; i++)
        crypto_generichash_update(&st, (const uint8_t *)r->fix.features[i], strlen(r->fix.features[i]) + 1);
    uint32_t kn[2] = {r->fix.k, r->fix.n};
    crypto_generichash_update(&st, (const uint8_t *)kn, sizeof kn);
    crypto_generichash_update(&st, (const uint8_t *)r->host.service, strlen(r->host.service));
    crypto_generichash_final(&st, (uint8_t *)&h, sizeof h);
    return h;
}

static int publish_one(void *ud, const mesh_wisdom_rec *rec)
{
    struct mesh_cell *m = ud;
    uint64_t h = fix_hash(rec);
    bool seen = false;
    for (size_t i = 0; i < m->nown && !seen; i++)
        seen = m->own_hash[i] == h;
    if (!seen && m->nown < CELL_OWN_MAX)
        m->own_hash[m->nown++] = h;
    if (seen)
        return 0;
    uint8_t buf[MESH_WISDOM_MAX_BYTES];
    size_t len = 0;
    if (cell_wisdom_own(m, rec, buf, sizeof buf, &len) == 0)
        remember(m, buf, len);
    return 0;
}

static void publish(struct mesh_cell *m)
{
    char err[512];
    int refused = 0;
    if (!m->mem || !m->ws)
        return;
    int rc = mesh_wisdom_fixes_from_memory(m->mem, &m->host, NULL, NULL, &m->loc, publish_one, m, &refused, err,
                                           sizeof err);
    if (rc < 0)
        log_info("mesh: own wisdom: %s", err);
}

static void wisdom_round(struct mesh_cell *m, uint64_t now)
{
    char addr[MESH_SESSION_ADDR_MAX + 1];
    for (int i = 0; i < CELL_WISDOM_PER_ROUND && m->noutbox; i++) {
        if (!cell_random_peer(m, addr, sizeof addr))
            return;
        size_t j = (size_t)(cell_rand(m) % m->noutbox);
        cell_out *o = &m->outbox[j];
        cell_send(m, now, addr, CELL_CH_WISDOM, o->buf, o->len);
        if (--o->left <= 0)
            m->outbox[j] = m->outbox[--m->noutbox];
    }
}

void cell_gossip_tick(struct mesh_cell *m, uint64_t now)
{
    if (now >= m->next_revoke) {
        revoke_round(m, now);
        m->next_revoke = now + (m->revoke_fast > 0 ? CELL_REVOKE_FAST_MS : CELL_REVOKE_EVERY_MS);
        if (m->revoke_fast > 0)
            m->revoke_fast--;
    }
    if (now >= m->next_publish) {
        publish(m);
        cell_publish_tick(m, now); /* -- wispub: baselines and knob sets */
        m->next_publish = now + m->cfg.publish_interval_ms;
    }
    if (now >= m->next_wisdom) {
        wisdom_round(m, now);
        m->next_wisdom = now + WISDOM_ROUND_MS;
    }
}
