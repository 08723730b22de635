/* policy.c: the safety policy (see policy.h): modes, allowlists, sliding-window
 * rate limits, flap detection and the pending-approval queue.
 *
 * A rate window is a ring of the times of the last `max` counted actions: the
 * limit is reached when the ring is full and its oldest entry is still inside
 * the window, and it frees exactly at oldest + window. The flap rule uses the
 * same ring with K entries. No I/O, no clock, no locks. */
#include "heal/policy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct win {
    int64_t *t;
    int cap, n, head; /* head: index of the oldest */
} win;

typedef struct svc {
    heal_policy_service cfg;
    win rate;
    win flap;
    bool flapping;
    int64_t flap_since;
    uint64_t executed, failed;
    int consecutive_failures;
} svc;

struct heal_policy {
    heal_policy_config cfg;
    win global;
    svc *svcs;
    size_t nsvcs, capsvcs;
    heal_pending *pend; /* by id; expired ones kept one more TTL to say "expired" */
    size_t npend, cappend;
    uint64_t next_id;
};

/* ---- names ------------------------------------------------------------------ */

const char *heal_mode_name(heal_mode m)
{
    switch (m) {
    case HEAL_MODE_INHERIT: return "inherit";
    case HEAL_MODE_OBSERVE: return "observe";
    case HEAL_MODE_SUGGEST: return "suggest";
    case HEAL_MODE_HEAL: return "heal";
    }
    return "?";
}

int heal_mode_parse(const char *s)
{
    for (int m = HEAL_MODE_OBSERVE; m <= HEAL_MODE_HEAL; m++)
        if (!strcmp(s, heal_mode_name((heal_mode)m)))
            return m;
    return -1;
}

const char *heal_verdict_name(heal_verdict v)
{
    switch (v) {
    case HEAL_VERDICT_EXECUTE: return "execute";
    case HEAL_VERDICT_RECORD_ONLY: return "record";
    case HEAL_VERDICT_QUEUE: return "queue";
    case HEAL_VERDICT_REFUSE: return "refuse";
    }
    return "?";
}

const char *heal_refusal_name(heal_refusal r)
{
    switch (r) {
    case HEAL_REFUSE_NONE: return "none";
    case HEAL_REFUSE_INVALID: return "invalid action";
    case HEAL_REFUSE_NOT_ALLOWED: return "not allowed";
    case HEAL_REFUSE_RATE_SERVICE: return "rate limited (service)";
    case HEAL_REFUSE_RATE_GLOBAL: return "rate limited (global)";
    case HEAL_REFUSE_FLAPPING: return "flapping";
    case HEAL_REFUSE_QUEUE_FULL: return "pending queue full";
    case HEAL_REFUSE_TARGET: return "target refused";
    }
    return "?";
}

/* ---- configuration -------------------------------------------------------------- */

void heal_policy_config_defaults(heal_policy_config *c)
{
    *c = (heal_policy_config){
        .mode = HEAL_MODE_HEAL,
        .global = {30, 60000},
        .service = {6, 300000},
        .flap_restarts = 5,
        .flap_window_ms = 300000,
        .flap_cooldown_ms = 900000,
        .pending_ttl_ms = 900000,
        .pending_max = 64,
    };
}

void heal_policy_service_defaults(heal_policy_service *s, const char *name)
{
    memset(s, 0, sizeof *s);
    core_sncpy(s->name, sizeof s->name, name ? name : "");
    s->mode = HEAL_MODE_INHERIT;
    s->allow = HEAL_ALLOW_DEFAULT;
    s->rate = (heal_rate){-1, 0};
}

static void allow_text(uint32_t mask, char *buf, size_t n)
{
    size_t w = 0;
    buf[0] = 0;
    for (int k = 0; k < HEAL_ACT_COUNT; k++) {
        if (!(mask & HEAL_ALLOW(k)))
            continue;
        int r = snprintf(buf + w, n - w, "%s%s", w ? ", " : "", heal_action_name((heal_action_kind)k));
        if (r < 0 || (size_t)r >= n - w)
            return;
        w += (size_t)r;
    }
    if (!w)
        snprintf(buf, n, "nothing");
}

int heal_policy_allow_parse(const char *s, uint32_t *mask, char *err, size_t errlen)
{
    uint32_t m = 0;
    char buf[512];
    if (core_sncpy(buf, sizeof buf, s))
        return core_err(err, errlen, -EINVAL, "allowlist too long");
    char *w[128];
    int n = 0;
    char *save = NULL;
    for (char *x = strtok_r(buf, ", \t", &save); x; x = strtok_r(NULL, ", \t", &save)) {
        if (n == 128)
            return core_err(err, errlen, -EINVAL, "allowlist: too many words");
        w[n++] = x;
    }
    for (int i = 0; i < n; i++) {
        int k;
        if (!strcmp(w[i], "limit")) {
            if (i + 1 < n && !strcmp(w[i + 1], "memory"))
                m |= HEAL_ALLOW(HEAL_ACT_LIMIT_MEMORY), i++;
            else if (i + 1 < n && !strcmp(w[i + 1], "cpu"))
                m |= HEAL_ALLOW(HEAL_ACT_LIMIT_CPU), i++;
            else
                m |= HEAL_ALLOW(HEAL_ACT_LIMIT_MEMORY) | HEAL_ALLOW(HEAL_ACT_LIMIT_CPU);
        } else if (!strcmp(w[i], "default")) {
            m |= HEAL_ALLOW_DEFAULT;
        } else if (!strcmp(w[i], "all")) {
            m |= HEAL_ALLOW_ALL;
        } else if (!strcmp(w[i], "playbook")) {
            m |= HEAL_ALLOW(HEAL_ACT_PLAYBOOK);
        } else if ((k = heal_action_kind_parse(w[i])) >= 0) {
            m |= HEAL_ALLOW(k);
        } else {
            return core_err(err, errlen, -EINVAL,
                        "allowlist: unknown action \"%s\" (expected start, stop, restart, signal, renice, "
                        "limit memory, limit cpu, limit, sysctl, clean, run, alert, freeze, thaw, restore, "
                        "signal-process, renice-process, default or all)", w[i]);
        }
    }
    *mask = m;
    return 0;
}

static int check_rate(const heal_rate *r, bool allow_inherit, const char *what, char *err, size_t errlen)
{
    if (r->max < (allow_inherit ? -1 : 0) || r->max > HEAL_RATE_MAX)
        return core_err(err, errlen, -EINVAL, "%s: max %d out of range (0..%d)", what, r->max, HEAL_RATE_MAX);
    if (r->max > 0 && r->window_ms <= 0)
        return core_err(err, errlen, -EINVAL, "%s: the window must be positive", what);
    return 0;
}

static int check_config(const heal_policy_config *c, char *err, size_t errlen)
{
    int rc;
    if (c->mode < HEAL_MODE_OBSERVE || c->mode > HEAL_MODE_HEAL)
        return core_err(err, errlen, -EINVAL, "policy: invalid mode %d", (int)c->mode);
    if ((rc = check_rate(&c->global, false, "policy: global rate limit", err, errlen)) ||
        (rc = check_rate(&c->service, false, "policy: service rate limit", err, errlen)))
        return rc;
    if (c->flap_restarts < 0 || c->flap_restarts > HEAL_RATE_MAX)
        return core_err(err, errlen, -EINVAL, "policy: flap restarts %d out of range (0..%d)", c->flap_restarts,
                    HEAL_RATE_MAX);
    if (c->flap_restarts > 0 && c->flap_window_ms <= 0)
        return core_err(err, errlen, -EINVAL, "policy: the flap window must be positive");
    if (c->flap_cooldown_ms < 0)
        return core_err(err, errlen, -EINVAL, "policy: the flap cool-down cannot be negative");
    if (c->pending_ttl_ms <= 0)
        return core_err(err, errlen, -EINVAL, "policy: the pending TTL must be positive");
    if (c->pending_max < 1 || c->pending_max > HEAL_RATE_MAX)
        return core_err(err, errlen, -EINVAL, "policy: pending max %d out of range (1..%d)", c->pending_max,
                    HEAL_RATE_MAX);
    return 0;
}

/* ---- windows --------------------------------------------------------------------- */

/* Resizes w to cap entries, keeping the newest. */
static int win_resize(win *w, int cap)
{
    if (cap == w->cap)
        return 0;
    int64_t *t = NULL;
    if (cap > 0 && !(t = calloc((size_t)cap, sizeof *t)))
        return -ENOMEM;
    int keep = w->n < cap ? w->n : cap;
    for (int i = 0; i < keep; i++)
        t[i] = w->t[(w->head + w->n - keep + i) % w->cap];
    free(w->t);
    w->t = t;
    w->cap = cap;
    w->n = keep;
    w->head = 0;
    return 0;
}

static void win_push(win *w, int64_t now)
{
    if (w->cap == 0)
        return;
    if (w->n < w->cap) {
        w->t[(w->head + w->n) % w->cap] = now;
        w->n++;
    } else {
        w->t[w->head] = now;
        w->head = (w->head + 1) % w->cap;
    }
}

/* 0 if one more fits at now, else the time it frees. */
static int64_t win_full_until(const win *w, int64_t window, int64_t now)
{
    if (w->cap == 0 || w->n < w->cap)
        return 0;
    int64_t frees = w->t[w->head] + window;
    return now < frees ? frees : 0;
}

static int win_count(const win *w, int64_t window, int64_t now)
{
    int c = 0;
    for (int i = 0; i < w->n; i++)
        if (w->t[(w->head + i) % w->cap] > now - window)
            c++;
    return c;
}

static void win_clear(win *w)
{
    w->n = 0;
    w->head = 0;
}

/* ---- services ---------------------------------------------------------------------- */

static heal_rate svc_rate(const heal_policy *p, const svc *s)
{
    return s->cfg.rate.max < 0 ? p->cfg.service : s->cfg.rate;
}

static heal_mode svc_mode(const heal_policy *p, const svc *s)
{
    return s->cfg.mode == HEAL_MODE_INHERIT ? p->cfg.mode : s->cfg.mode;
}

static int svc_fit(heal_policy *p, svc *s)
{
    int rc = win_resize(&s->rate, svc_rate(p, s).max);
    if (!rc)
        rc = win_resize(&s->flap, p->cfg.flap_restarts);
    return rc;
}

static svc *svc_find(heal_policy *p, const char *name)
{
    for (size_t i = 0; i < p->nsvcs; i++)
        if (!strcmp(p->svcs[i].cfg.name, name))
            return &p->svcs[i];
    return NULL;
}

/* Finds or creates (with defaults) the entry of name; NULL when out of memory. */
static svc *svc_get(heal_policy *p, const char *name)
{
    svc *s = svc_find(p, name);
    if (s)
        return s;
    if (p->nsvcs == p->capsvcs) {
        size_t cap = p->capsvcs ? p->capsvcs * 2 : 8;
        svc *n = realloc(p->svcs, cap * sizeof *n);
        if (!n)
            return NULL;
        p->svcs = n;
        p->capsvcs = cap;
    }
    s = &p->svcs[p->nsvcs];
    memset(s, 0, sizeof *s);
    heal_policy_service_defaults(&s->cfg, name);
    if (svc_fit(p, s)) {
        free(s->rate.t);
        free(s->flap.t);
        return NULL;
    }
    p->nsvcs++;
    return s;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

int heal_policy_new(const heal_policy_config *cfg, heal_policy **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = check_config(cfg, err, errlen);
    if (rc)
        return rc;
    heal_policy *p = calloc(1, sizeof *p);
    if (!p)
        return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    p->cfg = *cfg;
    p->next_id = 1;
    if (win_resize(&p->global, cfg->global.max)) {
        free(p);
        return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    }
    *out = p;
    return 0;
}

void heal_policy_free(heal_policy *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nsvcs; i++) {
        free(p->svcs[i].rate.t);
        free(p->svcs[i].flap.t);
    }
    free(p->svcs);
    free(p->global.t);
    free(p->pend);
    free(p);
}

int heal_policy_configure(heal_policy *p, const heal_policy_config *cfg, char *err, size_t errlen)
{
    int rc = check_config(cfg, err, errlen);
    if (rc)
        return rc;
    p->cfg = *cfg;
    if (win_resize(&p->global, cfg->global.max))
        return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    for (size_t i = 0; i < p->nsvcs; i++)
        if (svc_fit(p, &p->svcs[i]))
            return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    return 0;
}

int heal_policy_set_service(heal_policy *p, const heal_policy_service *s, char *err, size_t errlen)
{
    int rc;
    if (!memchr(s->name, 0, sizeof s->name))
        return core_err(err, errlen, -EINVAL, "policy: service name too long");
    const char *n = s->name[0] ? s->name : "(machine-wide)";
    if (s->mode < HEAL_MODE_INHERIT || s->mode > HEAL_MODE_HEAL)
        return core_err(err, errlen, -EINVAL, "policy: service %s: invalid mode %d", n, (int)s->mode);
    if (s->allow & ~(uint32_t)HEAL_ALLOW_ALL)
        return core_err(err, errlen, -EINVAL, "policy: service %s: unknown bits in the allowlist", n);
    char what[HEAL_NAME_MAX + 64];
    snprintf(what, sizeof what, "policy: service %s: rate limit", n);
    if ((rc = check_rate(&s->rate, true, what, err, errlen)))
        return rc;
    svc *e = svc_get(p, s->name);
    if (!e)
        return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    e->cfg = *s;
    if (svc_fit(p, e))
        return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    return 0;
}

/* ---- deciding ------------------------------------------------------------------------ */

static bool is_start(const heal_action *a)
{
    return a->kind == HEAL_ACT_START || a->kind == HEAL_ACT_RESTART;
}

static const char *svc_label(const char *name, char *buf, size_t n)
{
    if (!name[0])
        snprintf(buf, n, "machine-wide");
    else
        snprintf(buf, n, "for service %s", name);
    return buf;
}

/* A wait, rounded up to whole seconds from 1 s on ("in 8s", never "in 7s"
 * for 7.5 s). */
static void in_text(int64_t ms, char *buf, size_t n)
{
    if (ms < 0)
        ms = 0;
    if (ms >= 1000)
        ms = (ms + 999) / 1000 * 1000;
    core_format_duration(ms, buf, n);
}

static heal_verdict refuse(heal_decision *d, heal_refusal r, int64_t retry_at)
{
    d->verdict = HEAL_VERDICT_REFUSE;
    d->refusal = r;
    d->retry_at_ms = retry_at;
    return d->verdict;
}

static bool allowed(const svc *s, const heal_action *a, heal_decision *d)
{
    if (s->cfg.allow & HEAL_ALLOW(a->kind))
        return true;
    char lab[HEAL_NAME_MAX + 32], list[200];
    allow_text(s->cfg.allow, list, sizeof list);
    snprintf(d->reason, sizeof d->reason, "%s is not allowed %s (allowed: %s)", heal_action_name(a->kind),
             svc_label(s->cfg.name, lab, sizeof lab), list);
    refuse(d, HEAL_REFUSE_NOT_ALLOWED, 0);
    return false;
}

/* The flap rule for a start/restart: true if it may go on. */
static bool flap_ok(heal_policy *p, svc *s, const heal_action *a, int64_t now, heal_decision *d)
{
    const heal_policy_config *c = &p->cfg;
    if (!is_start(a) || c->flap_restarts == 0)
        return true;
    char t1[32], t2[32];
    if (s->flapping) {
        int64_t until = c->flap_cooldown_ms ? s->flap_since + c->flap_cooldown_ms : 0;
        if (until && now >= until) {
            s->flapping = false; /* cooled down: start afresh */
            win_clear(&s->flap);
            return true;
        }
        core_format_duration(now - s->flap_since, t1, sizeof t1);
        if (until) {
            in_text(until - now, t2, sizeof t2);
            snprintf(d->reason, sizeof d->reason,
                     "service %s is flapping (marked %s ago): %s refused for another %s or until reset",
                     s->cfg.name, t1, heal_action_name(a->kind), t2);
        } else {
            snprintf(d->reason, sizeof d->reason,
                     "service %s is flapping (marked %s ago): %s refused until reset", s->cfg.name, t1,
                     heal_action_name(a->kind));
        }
        refuse(d, HEAL_REFUSE_FLAPPING, until);
        return false;
    }
    if (!win_full_until(&s->flap, c->flap_window_ms, now))
        return true;
    s->flapping = true;
    s->flap_since = now;
    d->raise_alert = true;
    core_format_duration(c->flap_window_ms, t1, sizeof t1);
    int64_t until = c->flap_cooldown_ms ? now + c->flap_cooldown_ms : 0;
    if (until) {
        core_format_duration(c->flap_cooldown_ms, t2, sizeof t2);
        snprintf(d->reason, sizeof d->reason,
                 "service %s is flapping: %d starts/restarts within %s; restart storm stopped, "
                 "restarts refused for %s or until reset", s->cfg.name, c->flap_restarts, t1, t2);
    } else {
        snprintf(d->reason, sizeof d->reason,
                 "service %s is flapping: %d starts/restarts within %s; restart storm stopped, "
                 "restarts refused until reset", s->cfg.name, c->flap_restarts, t1);
    }
    refuse(d, HEAL_REFUSE_FLAPPING, until);
    return false;
}

static bool rate_ok(heal_policy *p, svc *s, int64_t now, heal_decision *d)
{
    char lab[HEAL_NAME_MAX + 32], t1[32], t2[32];
    heal_rate r = svc_rate(p, s);
    int64_t until = win_full_until(&s->rate, r.window_ms, now);
    if (until) {
        core_format_duration(r.window_ms, t1, sizeof t1);
        in_text(until - now, t2, sizeof t2);
        snprintf(d->reason, sizeof d->reason,
                 "rate limited %s: %d actions in the last %s (at most %d); next allowed in %s",
                 svc_label(s->cfg.name, lab, sizeof lab), r.max, t1, r.max, t2);
        refuse(d, HEAL_REFUSE_RATE_SERVICE, until);
        return false;
    }
    const heal_rate *g = &p->cfg.global;
    until = win_full_until(&p->global, g->window_ms, now);
    if (until) {
        core_format_duration(g->window_ms, t1, sizeof t1);
        in_text(until - now, t2, sizeof t2);
        snprintf(d->reason, sizeof d->reason,
                 "rate limited globally: %d actions in the last %s (at most %d); next allowed in %s", g->max, t1,
                 g->max, t2);
        refuse(d, HEAL_REFUSE_RATE_GLOBAL, until);
        return false;
    }
    return true;
}

static void count(heal_policy *p, svc *s, const heal_action *a, int64_t now)
{
    win_push(&p->global, now);
    win_push(&s->rate, now);
    if (is_start(a))
        win_push(&s->flap, now);
}

/* Flap, rate, then count; the verdict is EXECUTE or RECORD_ONLY (simulated). */
static heal_verdict admit(heal_policy *p, svc *s, const heal_action *a, int64_t now, heal_decision *d)
{
    if (!flap_ok(p, s, a, now, d) || !rate_ok(p, s, now, d))
        return d->verdict;
    count(p, s, a, now);
    d->verdict = d->simulated ? HEAL_VERDICT_RECORD_ONLY : HEAL_VERDICT_EXECUTE;
    if (d->dry_run)
        snprintf(d->reason, sizeof d->reason, "dry run: recorded, not run");
    else if (d->mode == HEAL_MODE_OBSERVE)
        snprintf(d->reason, sizeof d->reason, "observe mode: recorded, not run");
    else
        snprintf(d->reason, sizeof d->reason, "allowed");
    return d->verdict;
}

/* ---- the pending queue ------------------------------------------------------------------ */

static void pend_remove(heal_policy *p, size_t i)
{
    memmove(p->pend + i, p->pend + i + 1, (p->npend - i - 1) * sizeof *p->pend);
    p->npend--;
}

/* Drops entries expired for more than a TTL (kept that long to say "expired"). */
static void pend_prune(heal_policy *p, int64_t now)
{
    for (size_t i = 0; i < p->npend;)
        if (now >= p->pend[i].expires_ms + p->cfg.pending_ttl_ms)
            pend_remove(p, i);
        else
            i++;
}

static size_t pend_live(const heal_policy *p, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < p->npend; i++)
        n += now < p->pend[i].expires_ms;
    return n;
}

static bool same_action(const heal_action *x, const heal_action *y)
{
    char a[HEAL_ARG_MAX * 2], b[HEAL_ARG_MAX * 2];
    if (x->kind != y->kind || strcmp(x->service, y->service))
        return false;
    heal_action_format(x, a, sizeof a);
    heal_action_format(y, b, sizeof b);
    return !strcmp(a, b);
}

static heal_verdict enqueue(heal_policy *p, const heal_action *a, const char *why, int64_t now, heal_decision *d)
{
    char t[32];
    pend_prune(p, now);
    for (size_t i = 0; i < p->npend; i++) {
        heal_pending *e = &p->pend[i];
        if (now < e->expires_ms && same_action(&e->action, a)) {
            d->verdict = HEAL_VERDICT_QUEUE;
            d->pending_id = e->id;
            in_text(e->expires_ms - now, t, sizeof t);
            snprintf(d->reason, sizeof d->reason, "suggest mode: already pending as #%llu (expires in %s)",
                     (unsigned long long)e->id, t);
            return d->verdict;
        }
    }
    if (pend_live(p, now) >= (size_t)p->cfg.pending_max) {
        snprintf(d->reason, sizeof d->reason, "suggest mode: the pending queue is full (%d actions await approval)",
                 p->cfg.pending_max);
        return refuse(d, HEAL_REFUSE_QUEUE_FULL, 0);
    }
    /* Make room by dropping the oldest expired entries kept for messages. */
    while (p->npend >= (size_t)p->cfg.pending_max * 2) {
        size_t i = 0;
        while (i < p->npend && now < p->pend[i].expires_ms)
            i++;
        if (i == p->npend)
            break;
        pend_remove(p, i);
    }
    if (p->npend == p->cappend) {
        size_t cap = p->cappend ? p->cappend * 2 : 16;
        heal_pending *n = realloc(p->pend, cap * sizeof *n);
        if (!n) {
            snprintf(d->reason, sizeof d->reason, "suggest mode: out of memory queueing the action");
            return refuse(d, HEAL_REFUSE_QUEUE_FULL, 0);
        }
        p->pend = n;
        p->cappend = cap;
    }
    heal_pending *e = &p->pend[p->npend++];
    memset(e, 0, sizeof *e);
    e->id = p->next_id++;
    e->action = *a;
    core_sncpy(e->why, sizeof e->why, why ? why : "");
    e->queued_ms = now;
    e->expires_ms = now + p->cfg.pending_ttl_ms;
    d->verdict = HEAL_VERDICT_QUEUE;
    d->pending_id = e->id;
    in_text(p->cfg.pending_ttl_ms, t, sizeof t);
    snprintf(d->reason, sizeof d->reason, "suggest mode: queued for approval as #%llu (expires in %s)",
             (unsigned long long)e->id, t);
    return d->verdict;
}

heal_verdict heal_policy_queue(heal_policy *p, const heal_action *a, const char *why, int64_t now_ms,
                               heal_decision *out)
{
    heal_mode mode = out->mode;
    memset(out, 0, sizeof *out);
    out->mode = mode;
    heal_verdict v = enqueue(p, a, why, now_ms, out);
    if (v == HEAL_VERDICT_QUEUE && !strncmp(out->reason, "suggest mode: ", 14)) {
        char r[sizeof out->reason];
        snprintf(r, sizeof r, "asked for: %s", out->reason + 14);
        memcpy(out->reason, r, sizeof r);
    }
    return v;
}

heal_verdict heal_policy_decide(heal_policy *p, const heal_action *a, const char *why, int64_t now_ms,
                                heal_decision *out)
{
    memset(out, 0, sizeof *out);
    out->mode = p->cfg.mode;
    out->dry_run = p->cfg.dry_run;
    if (!heal_action_name(a->kind) || !memchr(a->service, 0, sizeof a->service)) {
        snprintf(out->reason, sizeof out->reason, "invalid action (kind %d)", (int)a->kind);
        return refuse(out, HEAL_REFUSE_INVALID, 0);
    }
    if ((a->kind == HEAL_ACT_SIGNAL_PID || a->kind == HEAL_ACT_RENICE_PID) && a->pid <= 1) {
        snprintf(out->reason, sizeof out->reason, "pid %d is never a target", a->pid);
        return refuse(out, HEAL_REFUSE_TARGET, 0);
    }
    svc *s = svc_get(p, a->service);
    if (!s) {
        snprintf(out->reason, sizeof out->reason, "policy: out of memory");
        return refuse(out, HEAL_REFUSE_INVALID, 0);
    }
    out->mode = svc_mode(p, s);
    out->simulated = out->dry_run || out->mode == HEAL_MODE_OBSERVE;
    if (!allowed(s, a, out))
        return out->verdict;
    if (out->mode == HEAL_MODE_SUGGEST && !out->dry_run)
        return enqueue(p, a, why, now_ms, out);
    return admit(p, s, a, now_ms, out);
}

void heal_policy_record_result(heal_policy *p, const heal_action *a, bool ok, int64_t now_ms)
{
    (void)now_ms;
    if (!memchr(a->service, 0, sizeof a->service))
        return;
    svc *s = svc_get(p, a->service);
    if (!s)
        return;
    s->executed++;
    if (ok) {
        s->consecutive_failures = 0;
    } else {
        s->failed++;
        s->consecutive_failures++;
    }
}

size_t heal_policy_pending_list(heal_policy *p, int64_t now_ms, heal_pending *out, size_t cap)
{
    size_t n = 0;
    pend_prune(p, now_ms);
    for (size_t i = 0; i < p->npend; i++) {
        if (now_ms >= p->pend[i].expires_ms)
            continue;
        if (n < cap)
            out[n] = p->pend[i];
        n++;
    }
    return n;
}

static int pend_find(heal_policy *p, uint64_t id, int64_t now, const char *verb, size_t *idx, char *err,
                     size_t errlen)
{
    for (size_t i = 0; i < p->npend; i++) {
        if (p->pend[i].id != id)
            continue;
        if (now >= p->pend[i].expires_ms) {
            char t[32];
            core_format_duration(now - p->pend[i].expires_ms, t, sizeof t);
            char ttl[32];
            core_format_duration(p->cfg.pending_ttl_ms, ttl, sizeof ttl);
            pend_remove(p, i);
            return core_err(err, errlen, -ETIMEDOUT,
                        "cannot %s #%llu: it expired %s ago (%s after it was queued) and was not run", verb,
                        (unsigned long long)id, t, ttl);
        }
        *idx = i;
        return 0;
    }
    return core_err(err, errlen, -ENOENT, "cannot %s #%llu: no such pending action (see `ippoc pending`)", verb,
                (unsigned long long)id);
}

int heal_policy_approve(heal_policy *p, uint64_t id, int64_t now_ms, heal_pending *out, heal_decision *d,
                        char *err, size_t errlen)
{
    size_t i;
    heal_decision tmp;
    if (!d)
        d = &tmp;
    memset(d, 0, sizeof *d);
    int rc = pend_find(p, id, now_ms, "approve", &i, err, errlen);
    if (rc)
        return rc;
    heal_pending e = p->pend[i];
    svc *s = svc_get(p, e.action.service);
    if (!s)
        return core_err(err, errlen, -ENOMEM, "policy: out of memory");
    d->mode = svc_mode(p, s);
    d->dry_run = p->cfg.dry_run;
    d->simulated = d->dry_run; /* a person approved it: the mode is not asked again */
    d->pending_id = id;
    if (!allowed(s, &e.action, d)) {
        pend_remove(p, i);
        return core_err(err, errlen, -EPERM, "cannot approve #%llu: %s", (unsigned long long)id, d->reason);
    }
    if (admit(p, s, &e.action, now_ms, d) == HEAL_VERDICT_REFUSE)
        return core_err(err, errlen, -EAGAIN, "cannot approve #%llu now: %s; it stays pending",
                    (unsigned long long)id, d->reason);
    snprintf(d->reason, sizeof d->reason, "approved #%llu%s", (unsigned long long)id,
             d->dry_run ? " (dry run: recorded, not run)" : "");
    pend_remove(p, i);
    if (out)
        *out = e;
    return 0;
}

int heal_policy_reject(heal_policy *p, uint64_t id, int64_t now_ms, heal_pending *out, char *err, size_t errlen)
{
    size_t i;
    int rc = pend_find(p, id, now_ms, "reject", &i, err, errlen);
    if (rc)
        return rc;
    if (out)
        *out = p->pend[i];
    pend_remove(p, i);
    return 0;
}

void heal_policy_reset_flap(heal_policy *p, const char *service)
{
    svc *s = svc_find(p, service);
    if (!s)
        return;
    s->flapping = false;
    win_clear(&s->flap);
}

void heal_policy_service_state(heal_policy *p, const char *service, int64_t now_ms, heal_policy_svc_state *out)
{
    memset(out, 0, sizeof *out);
    svc *s = svc_find(p, service);
    if (!s)
        return;
    out->flapping = s->flapping;
    if (s->flapping) {
        out->flapping_since_ms = s->flap_since;
        out->flapping_until_ms = p->cfg.flap_cooldown_ms ? s->flap_since + p->cfg.flap_cooldown_ms : 0;
        if (out->flapping_until_ms && now_ms >= out->flapping_until_ms)
            out->flapping = false; /* cooled down; cleared at the next start/restart */
    }
    out->recent_restarts = p->cfg.flap_restarts ? win_count(&s->flap, p->cfg.flap_window_ms, now_ms) : 0;
    heal_rate r = svc_rate(p, s);
    out->recent_actions = r.max > 0 ? win_count(&s->rate, r.window_ms, now_ms) : 0;
    out->executed = s->executed;
    out->failed = s->failed;
    out->consecutive_failures = s->consecutive_failures;
}
