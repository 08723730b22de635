/* wisdom_trust.c: per-peer trust in the style of gossipsub v1.1's peer
 * scoring, over the counters that apply to wisdom (docs/mesh/wisdom.md):
 *
 *   score = w2 * min(P2, cap2) + w4 * P4^2 + w5 * min(P5, cap5) + w7 * P7^2
 *
 * P2 first deliveries of new valid records, P4 invalid ones (malformed,
 * unsigned, bad signature, rule-breaking), P5 the application's own
 * counter (wisdom that worked here +1, that failed -fail5), P7 the behaviour
 * penalty (equivocation: two records under one (origin, seq)). Each counter
 * decays exponentially with its own half-life; time is whatever monotonic ms
 * the caller passes (virtual in tests), so the score is deterministic. A peer
 * below ignore_below is graylisted: its records are neither used nor
 * forwarded. P1 (time in mesh), P3 (mesh delivery deficit) and P6 (IP
 * colocation) belong to the membership and transport parts. */
#include "mesh/wisdom.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

mesh_wisdom_trust_params mesh_wisdom_trust_defaults(void)
{
    const double hour = 3600.0 * 1000;
    return (mesh_wisdom_trust_params){
        .w2 = 0.1, .cap2 = 50, .half2_ms = 1 * hour,
        .w4 = -2, .half4_ms = 6 * hour,
        .w5 = 1, .cap5 = 20, .half5_ms = 24 * hour, .fail5 = 2,
        .w7 = -5, .half7_ms = 6 * hour,
        .ignore_below = -10, .full_at = 10,
    };
}

void mesh_wisdom_trust_init(mesh_wisdom_trust *t, const mesh_wisdom_trust_params *p)
{
    memset(t, 0, sizeof *t);
    t->p = p ? *p : mesh_wisdom_trust_defaults();
}

void mesh_wisdom_trust_free(mesh_wisdom_trust *t)
{
    free(t->v);
    memset(t, 0, sizeof *t);
}

static mesh_wisdom_peer *find(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES])
{
    for (int i = 0; i < t->n; i++)
        if (!memcmp(t->v[i].id, id, MESH_WISDOM_ID_BYTES))
            return &t->v[i];
    return NULL;
}

static double halve(double c, double dt_ms, double half_ms)
{
    return dt_ms > 0 && half_ms > 0 ? c * pow(0.5, dt_ms / half_ms) : c;
}

/* The peer's counters decayed to now (a copy). */
static mesh_wisdom_peer decayed(const mesh_wisdom_trust *t, const mesh_wisdom_peer *p, int64_t now_ms)
{
    mesh_wisdom_peer d = *p;
    double dt = now_ms > p->t_ms ? (double)(now_ms - p->t_ms) : 0;
    d.p2 = halve(p->p2, dt, t->p.half2_ms);
    d.p4 = halve(p->p4, dt, t->p.half4_ms);
    d.p5 = halve(p->p5, dt, t->p.half5_ms);
    d.p7 = halve(p->p7, dt, t->p.half7_ms);
    if (now_ms > p->t_ms)
        d.t_ms = now_ms;
    return d;
}

/* The peer id, added with zero counters at now_ms when unknown; NULL when out of memory. */
static mesh_wisdom_peer *get(mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms)
{
    mesh_wisdom_peer *p = find(t, id);
    if (p)
        return p;
    if (t->n == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        mesh_wisdom_peer *v = realloc(t->v, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    p = &t->v[t->n++];
    memset(p, 0, sizeof *p);
    memcpy(p->id, id, MESH_WISDOM_ID_BYTES);
    p->t_ms = now_ms;
    return p;
}

int mesh_wisdom_trust_set(mesh_wisdom_trust *t, const mesh_wisdom_peer *p)
{
    mesh_wisdom_peer *q = get(t, p->id, p->t_ms);
    if (!q)
        return -ENOMEM;
    *q = *p;
    return 0;
}

int mesh_wisdom_trust_event(mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], mesh_wisdom_event ev,
                            int64_t now_ms)
{
    mesh_wisdom_peer *p = get(t, id, now_ms);
    if (!p)
        return -ENOMEM;
    *p = decayed(t, p, now_ms);
    switch (ev) {
    case MESH_TRUST_DELIVERED: p->p2 = fmin(p->p2 + 1, t->p.cap2); break;
    case MESH_TRUST_INVALID: p->p4 += 1; break;
    case MESH_TRUST_WORKED: p->p5 = fmin(p->p5 + 1, t->p.cap5); break;
    case MESH_TRUST_FAILED: p->p5 -= t->p.fail5; break;
    case MESH_TRUST_EQUIVOCATED: p->p7 += 1; break;
    default: return -EINVAL;
    }
    return 0;
}

double mesh_wisdom_trust_score(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms)
{
    const mesh_wisdom_peer *p = find(t, id);
    if (!p)
        return 0;
    mesh_wisdom_peer d = decayed(t, p, now_ms);
    return t->p.w2 * fmin(d.p2, t->p.cap2) + t->p.w4 * d.p4 * d.p4 + t->p.w5 * fmin(d.p5, t->p.cap5) +
           t->p.w7 * d.p7 * d.p7;
}

bool mesh_wisdom_trust_ignored(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms)
{
    return mesh_wisdom_trust_score(t, id, now_ms) < t->p.ignore_below;
}

double mesh_wisdom_trust_weight(const mesh_wisdom_trust *t, const uint8_t id[MESH_WISDOM_ID_BYTES], int64_t now_ms)
{
    double s = mesh_wisdom_trust_score(t, id, now_ms), lo = t->p.ignore_below, hi = t->p.full_at;
    if (s < lo || hi <= lo)
        return 0;
    return s >= hi ? 1 : (s - lo) / (hi - lo);
}
