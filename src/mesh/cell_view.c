/* cell_view.c: what the cell shows: GET /v1/mesh/status, /v1/mesh/peers,
 * /v1/mesh/wisdom as JSON text, and its /metrics families (ippoc_mesh_*).
 * Any thread: each view takes the cell's lock while it reads. */
#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/cell_int.h"

static char *dump(json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static json_t *roles_json(uint32_t roles)
{
    json_t *a = json_array();
    static const char *const names[] = {"reasoning", "retrieval", "tool", "relay"};
    for (int i = 0; i < 4; i++)
        if (roles & (1u << i))
            json_array_append_new(a, json_string(names[i]));
    return a;
}

static void session_totals(const struct mesh_cell *m, mesh_session_stats *st)
{
    memset(st, 0, sizeof *st);
    if (m->ses)
        mesh_session_get_stats(m->ses, st);
}

static int ignored_peers(const struct mesh_cell *m)
{
    int n = 0;
    int64_t now = core_now_ms();
    for (int i = 0; i < m->trust.n; i++)
        n += mesh_wisdom_trust_ignored(&m->trust, m->trust.v[i].id, now);
    return n;
}

static json_t *status_running(const struct mesh_cell *m, json_t *o)
{
    char fleet[2 * MESH_ID_PK_BYTES + 1];
    mesh_identity_pk_hex(m->tok.cert.fleet_pk, fleet);
    mesh_session_stats st;
    session_totals(m, &st);
    int records = 0, rejects = 0;
    if (m->ws)
        mesh_wisdom_store_count(m->ws, &records, &rejects);
    json_object_set_new(o, "node_id", json_string(m->tok.cert.node_id));
    json_object_set_new(o, "fleet", json_string(fleet));
    json_object_set_new(o, "listen", json_string(m->listen));
    json_object_set_new(o, "roles", roles_json(m->roles));
    json_object_set_new(o, "members",
                        json_pack("{s:I, s:I, s:I, s:I}", "alive",
                                  (json_int_t)mesh_swim_member_count(m->sw, MESH_SWIM_ALIVE), "suspect",
                                  (json_int_t)mesh_swim_member_count(m->sw, MESH_SWIM_SUSPECT), "dead",
                                  (json_int_t)mesh_swim_member_count(m->sw, MESH_SWIM_DEAD), "left",
                                  (json_int_t)mesh_swim_member_count(m->sw, MESH_SWIM_LEFT)));
    json_object_set_new(o, "awareness", json_integer(mesh_swim_awareness(m->sw)));
    json_object_set_new(o, "incarnation", json_integer((json_int_t)mesh_swim_incarnation(m->sw)));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)m->udp_bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)m->udp_bytes_out));
    json_object_set_new(o, "packets_in", json_integer((json_int_t)m->udp_in));
    json_object_set_new(o, "packets_out", json_integer((json_int_t)m->udp_out));
    json_object_set_new(o, "sessions", json_integer((json_int_t)st.sessions));
    json_object_set_new(o, "rejected",
                        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "cert", (json_int_t)st.rejected_cert,
                                  "revoked", (json_int_t)st.rejected_revoked, "forged",
                                  (json_int_t)(st.rejected_forged + m->forged), "replay",
                                  (json_int_t)st.rejected_replay, "malformed",
                                  (json_int_t)(st.rejected_malformed + m->malformed), "mac1",
                                  (json_int_t)st.dropped_mac1, "stale", (json_int_t)st.rejected_stale));
    json_object_set_new(o, "wisdom", json_pack("{s:i, s:i}", "records", records, "ignored_peers", ignored_peers(m)));
    json_object_set_new(o, "rejoin", /* -- rejoin: packets for forgotten keys, handshakes they started */
                        json_pack("{s:I, s:I}", "unknown_index", (json_int_t)st.unknown_index, "handshakes",
                                  (json_int_t)st.handshakes_unprompted));
    json_object_set_new(o, "reasoning", cell_reason_json(m));
    json_object_set_new(o, "sync", cell_sync_json(m)); /* -- pushpull */
    json_object_set_new(o, "discovery", cell_mdns_json(m)); /* -- mdns */
    json_object_set_new(o, "revocations", json_integer((json_int_t)m->rl.n));
    return o;
}

char *mesh_cell_status_json(mesh_cell *m)
{
    json_t *o = json_object();
    pthread_mutex_lock(&m->mu);
    json_object_set_new(o, "enabled", json_boolean(m->cfg.enabled));
    json_object_set_new(o, "joined", json_boolean(m->running));
    json_object_set_new(o, "pk", json_string(m->pk_hex));
    if (m->running) {
        status_running(m, o);
    } else {
        json_object_set_new(o, "node_id", json_null());
        if (m->cfg.enabled)
            json_object_set_new(o, "reason", json_string(m->reason));
    }
    pthread_mutex_unlock(&m->mu);
    return dump(o);
}

struct peers_ctx {
    const struct mesh_cell *m;
    json_t *a;
    int64_t now;
};

static void peer_one(void *ctx, const struct mesh_swim_member_info *mi)
{
    struct peers_ctx *p = ctx;
    const struct mesh_cell *m = p->m;
    cell_caps c = {0};
    cell_caps_decode(mi->meta, mi->meta_len, &c);
    const cell_known *k = NULL;
    for (size_t i = 0; i < m->nknown && !k; i++)
        if (!strcmp(m->known[i].node_id, mi->id))
            k = &m->known[i];
    const uint8_t *pk = mi->self ? m->node.pk : k ? k->pk : NULL;
    double trust = pk ? mesh_wisdom_trust_score(&m->trust, pk, p->now) : 0;
    bool ignored = pk && !mi->self && mesh_wisdom_trust_ignored(&m->trust, pk, p->now);
    json_t *caps = json_pack("{s:I, s:I, s:I, s:b, s:b}", "cpus", (json_int_t)c.cpus, "memory_mb",
                             (json_int_t)c.memory_mb, "disk_gb", (json_int_t)c.disk_gb, "gpu", c.gpu, "llm", c.llm);
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:f, s:b, s:b, s:b}", "node_id", mi->id, "addr",
                          mi->addr, "state", mesh_swim_state_name(mi->state), "incarnation",
                          (json_int_t)mi->incarnation, "roles", roles_json(c.roles), "caps", caps, "trust", trust,
                          "ignored", ignored, "session", k && k->session, "self", mi->self);
    if (o)
        json_array_append_new(p->a, o);
}

char *mesh_cell_peers_json(mesh_cell *m)
{
    json_t *a = json_array();
    pthread_mutex_lock(&m->mu);
    if (m->running) {
        struct peers_ctx p = {m, a, core_now_ms()};
        mesh_swim_members(m->sw, peer_one, &p);
    }
    pthread_mutex_unlock(&m->mu);
    return dump(json_pack("{s:o}", "peers", a));
}

static void summarise(const mesh_wisdom_rec *r, char *out, size_t n)
{
    switch (r->kind) {
    case MESH_WISDOM_FIX: {
        char feats[120] = "";
        size_t used = 0;
        for (int i = 0; i < r->fix.nfeatures && used + 2 < sizeof feats; i++)
            used += (size_t)snprintf(feats + used, sizeof feats - used, "%s%s", i ? "," : "", r->fix.features[i]);
        snprintf(out, n, "%s fixed %s %u of %u times", r->fix.action, feats, r->fix.k, r->fix.n);
        return;
    }
    case MESH_WISDOM_BASELINE:
    case MESH_WISDOM_KNOBS:
        cell_publish_summary(r, out, n); /* -- wispub */
        return;
    }
    snprintf(out, n, "?");
}

struct wisdom_ctx {
    const struct mesh_cell *m;
    json_t *a;
    int64_t now;
};

static int wisdom_one(void *ud, const uint8_t *buf, size_t len, int64_t received_ms)
{
    struct wisdom_ctx *w = ud;
    const struct mesh_cell *m = w->m;
    mesh_wisdom_rec r;
    char err[256], id[33], from[2 * MESH_ID_PK_BYTES + 1], summary[256];
    if (mesh_wisdom_decode(buf, len, &r, err, sizeof err))
        return 0;
    uint8_t h[16];
    crypto_generichash(h, sizeof h, buf, len, NULL, 0);
    sodium_bin2hex(id, sizeof id, h, sizeof h);
    const cell_known *k = cell_known_by_pk(m, r.origin);
    bool own = !memcmp(r.origin, m->node.pk, MESH_ID_PK_BYTES);
    if (own)
        core_sncpy(from, sizeof from, m->tok.cert.node_id);
    else if (k && k->node_id[0])
        core_sncpy(from, sizeof from, k->node_id);
    else
        mesh_identity_pk_hex(r.origin, from);
    summarise(&r, summary, sizeof summary);
    const char *kind = mesh_wisdom_kind_name(r.kind);
    bool fix = r.kind == MESH_WISDOM_FIX;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:I, s:I}", "id", id, "kind", kind ? kind : "?",
                          "from", from, "summary", summary, "k", (json_int_t)(fix ? r.fix.k : 0), "n",
                          (json_int_t)(fix ? r.fix.n : 0), "trust",
                          own ? 1.0 : mesh_wisdom_trust_score(&m->trust, r.origin, w->now), "received",
                          (json_int_t)(received_ms / 1000), "seq", (json_int_t)r.seq);
    if (o)
        json_array_append_new(w->a, o);
    return 0;
}

char *mesh_cell_wisdom_json(mesh_cell *m, int limit)
{
    json_t *a = json_array();
    pthread_mutex_lock(&m->mu);
    if (m->running && m->ws) {
        struct wisdom_ctx w = {m, a, core_now_ms()};
        mesh_wisdom_store_recent(m->ws, limit > 0 ? limit : 50, wisdom_one, &w);
    }
    pthread_mutex_unlock(&m->mu);
    return dump(json_pack("{s:o}", "records", a));
}

/* ---- /metrics ------------------------------------------------------------------------ */

typedef struct tbuf {
    char *p;
    size_t len, cap;
    bool oom;
} tbuf;

static void add(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(tbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 2048;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q, b->cap = cap;
    }
}

static void family(tbuf *b, const char *name, const char *type, const char *help)
{
    add(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *mesh_cell_prometheus(mesh_cell *m)
{
    tbuf b = {0};
    add(&b, "%s", "");
    pthread_mutex_lock(&m->mu);
    if (m->running) {
        family(&b, "ippoc_mesh_members", "gauge", "Mesh members this cell knows, by state (itself included)");
        for (int s = MESH_SWIM_ALIVE; s <= MESH_SWIM_LEFT; s++)
            add(&b, "ippoc_mesh_members{state=\"%s\"} %zu\n", mesh_swim_state_name(s),
                mesh_swim_member_count(m->sw, s));
        family(&b, "ippoc_mesh_awareness", "gauge", "Lifeguard local health awareness (0 is healthy)");
        add(&b, "ippoc_mesh_awareness %u\n", mesh_swim_awareness(m->sw));
        family(&b, "ippoc_mesh_bytes_sent_total", "counter", "Mesh UDP bytes sent");
        add(&b, "ippoc_mesh_bytes_sent_total %llu\n", (unsigned long long)m->udp_bytes_out);
        family(&b, "ippoc_mesh_bytes_received_total", "counter", "Mesh UDP bytes received");
        add(&b, "ippoc_mesh_bytes_received_total %llu\n", (unsigned long long)m->udp_bytes_in);
        mesh_session_stats st;
        session_totals(m, &st);
        family(&b, "ippoc_mesh_packets_rejected_total", "counter", "Mesh packets and peers refused, by reason");
        const struct {
            const char *r;
            uint64_t v;
        } rej[] = {{"cert", st.rejected_cert},
                   {"revoked", st.rejected_revoked},
                   {"forged", st.rejected_forged + m->forged},
                   {"replay", st.rejected_replay},
                   {"malformed", st.rejected_malformed + m->malformed},
                   {"mac1", st.dropped_mac1}, /* another fleet's initiation (its mac1 is keyed by the fleet key) */
                   {"stale", st.rejected_stale}};
        for (size_t i = 0; i < sizeof rej / sizeof rej[0]; i++)
            add(&b, "ippoc_mesh_packets_rejected_total{reason=\"%s\"} %llu\n", rej[i].r,
                (unsigned long long)rej[i].v);
        int records = 0, rejects = 0;
        if (m->ws)
            mesh_wisdom_store_count(m->ws, &records, &rejects);
        family(&b, "ippoc_mesh_wisdom_records", "gauge", "Wisdom records in this cell's store");
        add(&b, "ippoc_mesh_wisdom_records %d\n", records);
        char reason[1024];
        cell_reason_prometheus(m, reason, sizeof reason);
        add(&b, "%s", reason);
        cell_sync_prometheus(m, reason, sizeof reason); /* -- pushpull */
        add(&b, "%s", reason);
    }
    pthread_mutex_unlock(&m->mu);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
