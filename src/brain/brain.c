/* brain.c: the brain's loop side: [brain] configuration, reading new events
 * each tick into the thalamus, starting deliberations on the libuv thread
 * pool (signature, recall, rules), attaching their diagnosis to heal's
 * incident, acting through heal_engine_propose, watching the outcome and
 * remembering it in the case store. Nothing slow runs on the loop thread:
 * events are read from memory's RAM copy, the signature is built on a
 * worker, the case store writes through memory's writer thread. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

#define BRAIN_DIAG_KEEP 256   /* diagnoses kept for the API */
#define BRAIN_PLANS_MAX 64    /* incidents being acted on at once */
#define BRAIN_RECENT_MAX 64   /* components diagnosed lately */
#define BRAIN_ATTEMPTS_MAX 8
#define BRAIN_QUICK_MS 500    /* the first look at a signal, before its evidence window */

typedef struct brain_cfg {
    bool enabled, act;
    int workers, queue;
    int64_t window_ms, merge_ms, deadline_ms;
    double min_conf;
    double wisdom_min;        /* wisdom_threshold: a fleet candidate this heavy may be proposed */
    char kmsg[CORE_PATH_MAX], dpkg_log[CORE_PATH_MAX], audit_log[CORE_PATH_MAX];
} brain_cfg;

/* A service's config paths and dependencies, for the signature. */
typedef struct svc_paths {
    char name[64];
    char **paths;
    int n;
    char **deps;
    int ndeps;
} svc_paths;

typedef struct delib {
    uv_work_t req;
    brain *b;
    bool orphan;              /* brain_free let go of it: free in the after-work callback */
    bool work_done;           /* (b->lock) the work function returned */
    brain_signal sig;
    uint64_t latest_incident; /* signals merged while it ran */
    char *incident_json;      /* heal's incident when queued (may be NULL) */
    char **paths;             /* the service's config paths (copies) */
    int npaths;
    char **deps;              /* and the services it depends on (copies) */
    int ndeps;
    brain_cfg cfg;            /* copy: a reload may change b->cfg meanwhile */
    int64_t from_ms, to_ms, started_mono;
    json_t *signature, *diagnosis;
    json_t *think_svcs;       /* the services the model may name (a copy) */
    bool fast;                /* a very close healed case: act without the window */
    brain_wisdom_fn wisdom;   /* the fleet's hook when it started (NULL: none) */
    void *wisdom_ud;
    char wisdom_kind[64];     /* the service kind it is asked about ("" machine-wide) */
    struct delib *next;
} delib;

/* Acting on one incident: its attempts, one at a time. */
typedef struct plan {
    bool used, waiting;       /* waiting: proposed, outcome not seen yet */
    uint64_t incident;
    int64_t case_id;
    char component[64];
    json_t *diagnosis;        /* a copy */
    json_t *proposed;         /* its proposed_actions */
    bool moved;               /* acting on an incident of its own (heal's was busy) */
    int first[BRAIN_ATTEMPTS_MAX], nattempts, next;
    int64_t signal_ms;        /* the first signal, wall ms: time to mitigate */
    int64_t proposed_ms;
    int retries;              /* -EBUSY answers */
    bool ask;                 /* a preference: heal queues the actions for a person */
} plan;

typedef struct recent {
    char component[64];
    int64_t ms;               /* wall ms of the diagnosis */
} recent;

/* What brain_status_json shows: copied under the lock by the loop thread. */
typedef struct brain_stats {
    uint64_t done, late, opened, proposals, healed, failed, refused, queued, merged, dropped;
    int queue, running;
} brain_stats;

typedef struct diag_entry {
    uint64_t incident;
    char *text;
} diag_entry;

struct brain {
    uv_loop_t *loop;
    mem_t *mem;
    heal_engine *heal;
    logs_watch *logs;
    brain_cfg cfg;
    svc_paths *svcs;
    int nsvcs;
    json_t *think_svcs;       /* brain_think_services of the config (loop thread) */
    brain_thal thal;
    brain_cases cases;
    int64_t last_event;
    delib *running;           /* list */
    int nrunning;
    plan plans[BRAIN_PLANS_MAX];
    recent recents[BRAIN_RECENT_MAX];
    pthread_mutex_t lock;     /* diags, stats, cfg (for readers), work_done */
    brain_stats stats;        /* (lock) the counters as last published */
    pthread_cond_t work_cond;
    diag_entry diags[BRAIN_DIAG_KEEP];
    int ndiag_next;
    uint64_t done, late, opened, proposals, healed, failed, refused;
    brain_mind mind;          /* fixed after brain_new / brain_set_thinking */
    brain_dream *dream;       /* dreaming while idle (dream.c) */
    brain_prefs *prefs;       /* the operators' preferences (prefs.c) */
    brain_wisdom_fn wisdom;   /* fleet wisdom (fleet.c): loop thread; copied into each delib */
    brain_wisdom_outcome_fn wisdom_outcome;
    void *wisdom_ud;
};

/* ---- configuration ---------------------------------------------------------- */

static void cfg_defaults(brain_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->enabled = true;
    c->act = true;
    c->workers = 1;
    c->queue = 64;
    c->window_ms = 5000;
    c->merge_ms = 30000;
    c->deadline_ms = 10000;
    c->min_conf = 0.6;
    c->wisdom_min = BRAIN_WISDOM_THRESHOLD;
    snprintf(c->kmsg, sizeof c->kmsg, "/dev/kmsg");
    snprintf(c->dpkg_log, sizeof c->dpkg_log, "/var/log/dpkg.log");
}

static int parse_key(brain_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    long n;
    char *end;
    if (!strcmp(k, "enabled") || !strcmp(k, "act")) {
        bool b;
        if (core_parse_bool(v, &b))
            return core_kv_error(err, errlen, kv, "[brain] %s: '%s' is not yes or no", k, v);
        *(k[0] == 'e' ? &c->enabled : &c->act) = b;
    } else if (!strcmp(k, "workers") || !strcmp(k, "queue")) {
        bool w = k[0] == 'w';
        n = strtol(v, &end, 10);
        if (*end || end == v || n < 1 || n > (w ? 4 : 10000))
            return core_kv_error(err, errlen, kv, "[brain] %s: '%s' is not a number from 1 to %d", k, v,
                                 w ? 4 : 10000);
        *(w ? &c->workers : &c->queue) = (int)n;
    } else if (!strcmp(k, "window") || !strcmp(k, "merge") || !strcmp(k, "deadline")) {
        int64_t ms;
        if (core_parse_duration(v, &ms) || ms < 0 || ms > 3600000)
            return core_kv_error(err, errlen, kv, "[brain] %s: '%s' is not a duration up to 1h", k, v);
        *(k[0] == 'w' ? &c->window_ms : k[0] == 'm' ? &c->merge_ms : &c->deadline_ms) = ms;
    } else if (!strcmp(k, "min_confidence")) {
        double x = strtod(v, &end);
        if (*end || end == v || !(x >= 0 && x <= 1))
            return core_kv_error(err, errlen, kv, "[brain] min_confidence: '%s' is not a number from 0 to 1", v);
        c->min_conf = x;
    } else if (!strcmp(k, "wisdom_threshold")) {
        double x = strtod(v, &end);
        if (*end || end == v || !(x >= 0 && x <= 1))
            return core_kv_error(err, errlen, kv, "[brain] wisdom_threshold: '%s' is not a number from 0 to 1", v);
        c->wisdom_min = x;
    } else if (!strcmp(k, "kmsg") || !strcmp(k, "dpkg_log") || !strcmp(k, "audit_log")) {
        char *dst = k[0] == 'k' ? c->kmsg : k[0] == 'd' ? c->dpkg_log : c->audit_log;
        if (v[0] != '/' || strlen(v) >= CORE_PATH_MAX)
            return core_kv_error(err, errlen, kv, "[brain] %s: '%s' is not an absolute path", k, v);
        snprintf(dst, CORE_PATH_MAX, "%s", v);
    } else {
        return core_kv_error(err, errlen, kv, "[brain] unknown key '%s'", k);
    }
    return 0;
}

static int cfg_parse(const core_config *cfg, brain_cfg *c, char *err, size_t errlen)
{
    cfg_defaults(c);
    for (int i = 0; i < cfg->nraw; i++) {
        if (strcmp(cfg->raw[i].section, "brain") != 0)
            continue;
        int rc = parse_key(c, &cfg->raw[i], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int brain_config_check(const core_config *cfg, char *err, size_t errlen)
{
    brain_cfg c;
    brain_dream_cfg dc;
    brain_prefs_cfg pc;
    int rc = cfg_parse(cfg, &c, err, errlen);
    if (!rc)
        rc = brain_dream_cfg_parse(cfg, &dc, err, errlen);
    return rc ? rc : brain_prefs_cfg_parse(cfg, &pc, err, errlen);
}

static void svcs_free(svc_paths *s, int n)
{
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < s[i].n; k++)
            free(s[i].paths[k]);
        free(s[i].paths);
        for (int k = 0; k < s[i].ndeps; k++)
            free(s[i].deps[k]);
        free(s[i].deps);
    }
    free(s);
}

static svc_paths *svc_find(svc_paths *s, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s[i].name, name))
            return &s[i];
    return NULL;
}

/* Appends the names of a depends value ("db, cache" or "db cache"). */
static int add_deps(svc_paths *p, const char *v)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        char **nd = realloc(p->deps, sizeof *nd * (size_t)(p->ndeps + 1));
        if (!nd)
            return -ENOMEM;
        p->deps = nd;
        if (!(p->deps[p->ndeps] = strdup(t)))
            return -ENOMEM;
        p->ndeps++;
    }
    return 0;
}

static char **copy_strv(char *const *v, int n, int *out_n)
{
    *out_n = 0;
    char **c = n > 0 ? calloc((size_t)n, sizeof *c) : NULL;
    for (int i = 0; c && i < n; i++)
        if ((c[*out_n] = strdup(v[i])))
            (*out_n)++;
    return c;
}

/* Every [service.X] with its config_path and depends keys. */
static int svcs_parse(const core_config *cfg, svc_paths **out, int *nout)
{
    svc_paths *s = NULL;
    int n = 0;
    for (int i = 0; i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        if (strncmp(kv->section, "service.", 8) != 0 || strlen(kv->section + 8) >= 64)
            continue;
        svc_paths *p = svc_find(s, n, kv->section + 8);
        if (!p) {
            svc_paths *ns = realloc(s, sizeof *s * (size_t)(n + 1));
            if (!ns)
                goto oom;
            s = ns;
            p = &s[n++];
            memset(p, 0, sizeof *p);
            snprintf(p->name, sizeof p->name, "%s", kv->section + 8);
        }
        if (!strcmp(kv->key, "depends") && add_deps(p, kv->value) != 0)
            goto oom;
        if (strcmp(kv->key, "config_path") != 0)
            continue;
        char **np = realloc(p->paths, sizeof *np * (size_t)(p->n + 1));
        if (!np)
            goto oom;
        p->paths = np;
        if (!(p->paths[p->n] = strdup(kv->value)))
            goto oom;
        p->n++;
    }
    *out = s;
    *nout = n;
    return 0;
oom:
    svcs_free(s, n);
    return -ENOMEM;
}

/* ---- diagnoses kept for the API ----------------------------------------------- */

static void diag_store(brain *b, uint64_t incident, const json_t *d)
{
    char *text = json_dumps(d, JSON_COMPACT);
    if (!text)
        return;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < BRAIN_DIAG_KEEP; i++)
        if (b->diags[i].text && b->diags[i].incident == incident) {
            free(b->diags[i].text);
            b->diags[i].text = text;
            pthread_mutex_unlock(&b->lock);
            return;
        }
    diag_entry *e = &b->diags[b->ndiag_next];
    b->ndiag_next = (b->ndiag_next + 1) % BRAIN_DIAG_KEEP;
    free(e->text);
    e->incident = incident;
    e->text = text;
    pthread_mutex_unlock(&b->lock);
}

char *brain_diagnosis_json(brain *b, uint64_t incident)
{
    if (!b || !incident)
        return NULL;
    char *t = NULL;
    pthread_mutex_lock(&b->lock);
    for (int i = 0; i < BRAIN_DIAG_KEEP && !t; i++)
        if (b->diags[i].text && b->diags[i].incident == incident)
            t = strdup(b->diags[i].text);
    pthread_mutex_unlock(&b->lock);
    return t;
}

/* Loop thread: the counters for brain_status_json. */
static void publish_stats(brain *b)
{
    brain_stats s = {b->done, b->late, b->opened, b->proposals, b->healed, b->failed, b->refused, b->thal.queued,
                     b->thal.merged, b->thal.dropped, b->thal.n, b->nrunning};
    pthread_mutex_lock(&b->lock);
    b->stats = s;
    pthread_mutex_unlock(&b->lock);
}

/* ---- deliberation (worker thread) ---------------------------------------------- */

/* Worker thread: the fleet's candidates for the signature, merged into the
 * diagnosis (fleet.c). */
static void ask_fleet(delib *d, const brain_case_hit *hits, int n)
{
    const json_t *features = json_object_get(d->signature, "features");
    if (!json_is_array(features))
        return;
    brain_wisdom_cand c[BRAIN_WISDOM_MAX];
    memset(c, 0, sizeof c);
    int nc = d->wisdom(d->wisdom_ud, features, d->wisdom_kind, c, BRAIN_WISDOM_MAX);
    if (nc > BRAIN_WISDOM_MAX)
        nc = BRAIN_WISDOM_MAX;
    if (nc < 0)
        log_warn("brain: the fleet's wisdom about %s could not be read (error %d)", d->sig.component, nc);
    brain_fleet_merge(d->diagnosis, features, d->wisdom_kind, hits, n, c, nc, d->cfg.wisdom_min);
}

static void delib_work(uv_work_t *req)
{
    delib *d = req->data;
    brain *b = d->b;
    brain_sig_ctx ctx = {
        .mem = b->mem, .heal = b->heal, .logs = b->logs, .kmsg_path = d->cfg.kmsg,
        .dpkg_log_path = d->cfg.dpkg_log, .audit_path = d->cfg.audit_log[0] ? d->cfg.audit_log : NULL,
        .config_paths = (const char *const *)d->paths, .nconfig_paths = d->npaths,
        .depends = (const char *const *)d->deps, .ndepends = d->ndeps,
        .deadline_ms = (int)(d->cfg.deadline_ms < 5000 ? d->cfg.deadline_ms : 5000),
    };
    json_t *inc = d->incident_json ? json_loads(d->incident_json, 0, NULL) : NULL;
    d->signature = brain_signature_build(&ctx, d->sig.component, d->sig.trigger, inc, d->from_ms, d->to_ms);
    json_decref(inc);
    if (d->signature) {
        if (d->sig.incident)
            json_object_set_new(d->signature, "incident", json_integer((json_int_t)d->sig.incident));
        brain_case_hit hits[BRAIN_CASE_HITS];
        int n = brain_cases_recall(&b->cases, json_object_get(d->signature, "features"), hits, BRAIN_CASE_HITS);
        d->diagnosis = brain_diagnose(d->signature, hits, n);
        /* the shorter path: a very close case that healed, or a close one
         * whose fault the rules name too */
        const char *fault = json_string_value(json_object_get(d->diagnosis, "fault_type"));
        for (int i = 0; i < n && !d->fast; i++)
            d->fast = hits[i].fixed > 0 &&
                      (hits[i].similarity >= BRAIN_CASE_VERY_CLOSE ||
                       (hits[i].similarity >= BRAIN_CASE_AGREE && fault && !strcmp(fault, hits[i].fault_type)));
        bool publishing =
            d->diagnosis && (d->sig.full || d->fast || d->cfg.window_ms <= 0 || d->sig.prio == BRAIN_SIG_USER);
        if (publishing && d->wisdom) /* the fleet's word, after the cell's own memory */
            ask_fleet(d, hits, n);
        brain_case_hits_free(hits, n);
        /* the deliberation that publishes: the model thinks, within what is left of the deadline */
        if (publishing) {
            brain_think_in ti = {.signature = d->signature, .services = d->think_svcs, .incident = d->sig.incident,
                                 .deadline_mono = d->started_mono + d->cfg.deadline_ms};
            brain_think(&b->mind, &ti, d->diagnosis);
        }
    }
    pthread_mutex_lock(&b->lock);
    d->work_done = true;
    pthread_cond_broadcast(&b->work_cond);
    pthread_mutex_unlock(&b->lock);
}

static void delib_free(delib *d)
{
    free(d->incident_json);
    for (int i = 0; i < d->npaths; i++)
        free(d->paths[i]);
    free(d->paths);
    for (int i = 0; i < d->ndeps; i++)
        free(d->deps[i]);
    free(d->deps);
    json_decref(d->signature);
    json_decref(d->diagnosis);
    json_decref(d->think_svcs);
    free(d);
}

/* ---- acting ------------------------------------------------------------------------ */

static plan *plan_find(brain *b, uint64_t incident)
{
    for (int i = 0; i < BRAIN_PLANS_MAX; i++)
        if (b->plans[i].used && b->plans[i].incident == incident)
            return &b->plans[i];
    return NULL;
}

static bool plan_active(brain *b, const char *component)
{
    for (int i = 0; i < BRAIN_PLANS_MAX; i++)
        if (b->plans[i].used && !strcmp(b->plans[i].component, component))
            return true;
    return false;
}

static void plan_end(plan *p)
{
    json_decref(p->diagnosis);
    memset(p, 0, sizeof *p);
}

/* The action texts of attempt k. */
static json_t *attempt_actions(const plan *p, int k)
{
    json_t *a = json_array();
    int end = k + 1 < p->nattempts ? p->first[k + 1] : (int)json_array_size(p->proposed);
    for (int i = p->first[k]; i < end; i++)
        json_array_append(a, json_object_get(json_array_get(p->proposed, (size_t)i), "action"));
    return a;
}

/* "where" of heal's incident ("brain" for the brain's own), "" when unknown. */
static const char *incident_where(brain *b, uint64_t id, char *buf, size_t n)
{
    char *t = heal_engine_incident_json(b->heal, id);
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    const char *w = json_string_value(json_object_get(o, "where"));
    snprintf(buf, n, "%s", w ? w : "");
    json_decref(o);
    free(t);
    return buf;
}

/* The diagnosed incident is heal's (or busy): the brain opens an incident
 * of its own for the fix, with the diagnosis. */
static int move_plan(brain *b, plan *p)
{
    char what[400], err[256];
    snprintf(what, sizeof what, "brain: %s: %.300s", json_string_value(json_object_get(p->diagnosis, "fault_type")),
             json_string_value(json_object_get(p->diagnosis, "root_cause")));
    uint64_t id = 0;
    json_t *evd = json_pack("{s:I}", "for_incident", (json_int_t)p->incident);
    if (heal_engine_incident_new(b->heal, p->component, what, evd, &id, err, sizeof err) != 0)
        return -1;
    log_info("brain: incident %llu is busy: acting through incident %llu", (unsigned long long)p->incident,
             (unsigned long long)id);
    heal_engine_incident_attach(b->heal, id, "diagnosis", json_deep_copy(p->diagnosis));
    diag_store(b, id, p->diagnosis);
    p->incident = id;
    p->moved = true;
    b->opened++;
    return 0;
}

/* Proposes the plan's next attempt to heal. false when nothing was proposed
 * (no attempt left, or every action refused by the parser or heal). */
static bool plan_next(brain *b, plan *p)
{
    while (p->next < p->nattempts) {
        int k = p->next;
        int end = k + 1 < p->nattempts ? p->first[k + 1] : (int)json_array_size(p->proposed);
        heal_action acts[BRAIN_ATTEMPTS_MAX];
        int n = 0;
        char err[256] = "", why[300];
        for (int i = p->first[k]; i < end && n < BRAIN_ATTEMPTS_MAX; i++) {
            json_t *a = json_array_get(p->proposed, (size_t)i);
            const char *text = json_string_value(json_object_get(a, "action"));
            const char *svc = json_string_value(json_object_get(a, "service"));
            if (!text || heal_action_parse_text(text, svc ? svc : p->component, &acts[n], err, sizeof err) != 0) {
                log_warn("brain: incident %llu: not a heal action: '%s': %s", (unsigned long long)p->incident,
                         text ? text : "?", err);
                continue;
            }
            n++;
        }
        snprintf(why, sizeof why, "brain: %s",
                 json_string_value(json_object_get(json_array_get(p->proposed, (size_t)p->first[k]), "why"))
                     ? json_string_value(json_object_get(json_array_get(p->proposed, (size_t)p->first[k]), "why"))
                     : "diagnosis");
        if (n == 0) {
            p->next++;
            continue;
        }
        int rc = (p->ask ? heal_engine_propose_ask : heal_engine_propose)(b->heal, p->incident, acts, n, "brain", why,
                                                                          err, sizeof err);
        if (rc == -EBUSY && !p->moved && move_plan(b, p) == 0)
            continue; /* heal's reflex still runs on its incident: act on one of the brain's own now */
        if (rc == -EBUSY) { /* the next tick tries again */
            p->retries++;
            return p->retries < 60;
        }
        if (rc != 0) {
            log_warn("brain: incident %llu: heal refused attempt %d: %s", (unsigned long long)p->incident, k + 1,
                     err);
            b->refused++;
            p->next++;
            continue;
        }
        b->proposals++;
        if (p->ask)
            return false; /* a person decides (heal.pending): nothing to wait for */
        p->waiting = true;
        p->proposed_ms = core_now_ms();
        p->retries = 0;
        return true;
    }
    return false;
}

static void start_plan(brain *b, uint64_t incident, int64_t case_id, const char *component, const json_t *diagnosis,
                       int64_t signal_ms, bool ask)
{
    const json_t *proposed = json_object_get(diagnosis, "proposed_actions");
    if (plan_find(b, incident) || !json_array_size(proposed))
        return;
    plan *p = NULL;
    for (int i = 0; i < BRAIN_PLANS_MAX && !p; i++)
        if (!b->plans[i].used)
            p = &b->plans[i];
    if (!p) {
        log_warn("brain: too many incidents acted on at once: incident %llu is only diagnosed",
                 (unsigned long long)incident);
        return;
    }
    memset(p, 0, sizeof *p);
    p->used = true;
    p->incident = incident;
    p->case_id = case_id;
    snprintf(p->component, sizeof p->component, "%s", component);
    p->diagnosis = json_deep_copy(diagnosis);
    p->proposed = json_object_get(p->diagnosis, "proposed_actions");
    p->nattempts = brain_attempts(p->proposed, p->first, BRAIN_ATTEMPTS_MAX);
    p->signal_ms = signal_ms;
    p->ask = ask;
    /* heal's own incident keeps its reflex (a pending restart with back-off,
     * its verify): the fix gets an incident of the brain's, so that neither
     * judges the other's attempt */
    char where[32];
    if (strcmp(incident_where(b, incident, where, sizeof where), "brain") != 0)
        move_plan(b, p);
    if (!plan_next(b, p))
        plan_end(p);
}

void brain_act(brain *b, uint64_t incident, int64_t case_id, const json_t *diagnosis, int64_t signal_ms)
{
    const char *component = json_string_value(json_object_get(diagnosis, "component"));
    bool ask = false; /* the operators' preferences first: they may drop, replace or hold proposals */
    json_t *dg = brain_prefs_apply(b->prefs, diagnosis, core_now_ms(), &ask);
    if (dg && json_object_get(dg, "preferences") && incident) {
        diag_store(b, incident, dg);
        if (b->heal)
            heal_engine_incident_attach(b->heal, incident, "diagnosis", json_deep_copy(dg));
        brain_prefs_announce(b->mem, incident, dg);
    }
    if (b->heal && incident)
        start_plan(b, incident, case_id, component ? component : "", dg ? dg : diagnosis, signal_ms, ask);
    json_decref(dg);
    publish_stats(b);
}

/* The attempt's actions heal really ran (outcome "ok" or "failed" in the
 * incident's results; not refused, recorded or queued): only those tell the
 * fleet whether its wisdom works here. */
static json_t *ran_actions(const json_t *attempt, const json_t *results, const char *service)
{
    json_t *ran = json_array();
    size_t i, k;
    json_t *t, *r;
    json_array_foreach(attempt, i, t) {
        heal_action a;
        char canon[256] = "", err[256];
        const char *text = json_string_value(t);
        if (!text)
            continue;
        if (heal_action_parse_text(text, service, &a, err, sizeof err) == 0)
            heal_action_format(&a, canon, sizeof canon);
        json_array_foreach(results, k, r) {
            const char *ra = json_string_value(json_object_get(r, "action"));
            const char *out = json_string_value(json_object_get(r, "outcome"));
            if (ra && out && (!strcmp(ra, text) || !strcmp(ra, canon)) &&
                (!strcmp(out, "ok") || !strcmp(out, "failed"))) {
                json_array_append(ran, t);
                break;
            }
        }
    }
    return ran;
}

/* incident.resolved / incident.failed of an incident the brain acts on. */
static void plan_outcome(brain *b, const mem_event *ev)
{
    json_t *o = json_loads(ev->payload, 0, NULL);
    uint64_t id = (uint64_t)json_integer_value(json_object_get(o, "id"));
    const char *by = json_string_value(json_object_get(o, "by"));
    bool ours = !by || !strcmp(by, "brain");
    plan *p = plan_find(b, id);
    if (!p || !p->waiting || !ours || ev->ts < p->proposed_ms - 1000) {
        json_decref(o);
        return;
    }
    bool healed = !strcmp(ev->type, "incident.resolved");
    json_t *acts = attempt_actions(p, p->next);
    bool alert_only = true; /* telling a person fixes nothing: never remembered as a fix */
    size_t k;
    json_t *a;
    json_array_foreach(acts, k, a) {
        if (!json_string_value(a) || strncmp(json_string_value(a), "alert", 5) != 0)
            alert_only = false;
    }
    if (p->case_id > 0)
        brain_cases_outcome(&b->cases, p->case_id, acts, healed && !alert_only, healed ? ev->ts - p->signal_ms : 0);
    if (b->wisdom_outcome) { /* the cell moves the origins' trust */
        json_t *ran = ran_actions(acts, json_object_get(o, "actions"), p->component);
        brain_fleet_outcome(p->diagnosis, ran, healed && !alert_only, b->wisdom_outcome, b->wisdom_ud);
        json_decref(ran);
    }
    json_decref(o);
    char *t = json_dumps(acts, JSON_COMPACT);
    log_info("brain: incident %llu: %s %s", (unsigned long long)id, t ? t : "?", healed ? "healed it" : "did not heal it");
    free(t);
    json_decref(acts);
    p->waiting = false;
    p->next++;
    if (healed) {
        b->healed++;
        plan_end(p);
    } else if (!plan_next(b, p)) {
        b->failed++;
        plan_end(p);
    }
}

/* ---- after a deliberation (loop thread) --------------------------------------------- */

static void recent_mark(brain *b, const char *component, int64_t ms)
{
    int at = 0;
    for (int i = 0; i < BRAIN_RECENT_MAX; i++) {
        if (!strcmp(b->recents[i].component, component)) {
            at = i;
            break;
        }
        if (b->recents[i].ms < b->recents[at].ms)
            at = i;
    }
    snprintf(b->recents[at].component, sizeof b->recents[at].component, "%s", component);
    b->recents[at].ms = ms;
}

static bool recently(brain *b, const char *component, int64_t now_ms)
{
    for (int i = 0; i < BRAIN_RECENT_MAX; i++)
        if (b->recents[i].ms && !strcmp(b->recents[i].component, component))
            return now_ms - b->recents[i].ms < b->cfg.merge_ms;
    return false;
}

/* The component is healthy again: its next trouble is a new deliberation. */
static void recent_clear(brain *b, const char *component)
{
    for (int i = 0; i < BRAIN_RECENT_MAX; i++)
        if (b->recents[i].ms && !strcmp(b->recents[i].component, component))
            b->recents[i].ms = 0;
}

static bool is_service(brain *b, const char *name)
{
    return *name && svc_find(b->svcs, b->nsvcs, name) != NULL;
}

static const char *incident_state(brain *b, uint64_t id, char *buf, size_t n)
{
    buf[0] = 0;
    char *t = b->heal ? heal_engine_incident_json(b->heal, id) : NULL;
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    snprintf(buf, n, "%s", json_string_value(json_object_get(o, "state")) ? json_string_value(json_object_get(o, "state")) : "");
    json_decref(o);
    free(t);
    return buf;
}

/* An incident for a signal heal did not open (anomaly, log burst): only
 * when the diagnosis names a fault of a configured service. */
static uint64_t open_incident(brain *b, const delib *d, const char *fault, double conf, const char *component)
{
    if (!b->heal || !strcmp(fault, "none") || !strcmp(fault, "unknown") || conf < d->cfg.min_conf ||
        !is_service(b, component))
        return 0;
    char what[400], err[256];
    snprintf(what, sizeof what, "brain: %s: %.300s", fault,
             json_string_value(json_object_get(d->diagnosis, "root_cause")));
    uint64_t id = 0;
    json_t *evd = json_pack("{s:s, s:O}", "trigger", d->sig.trigger, "evidence",
                            json_object_get(d->diagnosis, "evidence"));
    if (heal_engine_incident_new(b->heal, component, what, evd, &id, err, sizeof err) != 0) {
        log_warn("brain: cannot open an incident for %s: %s", component, err);
        return 0;
    }
    b->opened++;
    return id;
}

static void requeue_full(brain *b, const delib *d)
{
    brain_signal s = d->sig;
    s.full = true;
    s.not_before_ms = s.first_ms + d->cfg.window_ms;
    if (d->latest_incident > s.incident)
        s.incident = d->latest_incident;
    brain_thal_push(&b->thal, &s);
}

static void publish(brain *b, delib *d)
{
    json_t *dg = d->diagnosis;
    const char *fault = json_string_value(json_object_get(dg, "fault_type"));
    const char *component = json_string_value(json_object_get(dg, "component"));
    double conf = json_number_value(json_object_get(dg, "confidence"));
    json_t *rules_conf = json_object_get(json_object_get(dg, "model"), "rules_confidence");
    if (json_is_number(rules_conf)) /* the model's disagreement never keeps an incident from opening */
        conf = json_number_value(rules_conf);
    uint64_t id = d->latest_incident > d->sig.incident ? d->latest_incident : d->sig.incident;
    if (!id)
        id = open_incident(b, d, fault, conf, d->sig.component);
    if (!id && !strcmp(fault, "none"))
        return; /* a healthy machine stays quiet */
    json_object_set_new(dg, "incident", json_integer((json_int_t)id));
    json_object_set_new(d->signature, "incident", json_integer((json_int_t)id));
    json_object_set_new(dg, "trigger", json_string(d->sig.trigger));
    json_object_set_new(dg, "signals", json_integer(d->sig.count));
    if (id) {
        diag_store(b, id, dg);
        if (b->heal) {
            heal_engine_incident_attach(b->heal, id, "signature", json_deep_copy(d->signature));
            heal_engine_incident_attach(b->heal, id, "diagnosis", json_deep_copy(dg));
        }
    }
    char *text = json_dumps(dg, JSON_COMPACT);
    if (text) {
        mem_event_add(b->mem, 0, "brain.diagnosis", id && strcmp(fault, "none") ? "warning" : "info",
                      *component ? component : "brain", text);
        free(text);
    }
    log_info("brain: incident %llu: %s %s (%.2f): %s", (unsigned long long)id, fault, component, conf,
             json_string_value(json_object_get(dg, "root_cause")));
    if (id && !strcmp(fault, "none") && b->heal) { /* a question that found nothing: the incident ends */
        char st[32];
        if (!strcmp(incident_state(b, id, st, sizeof st), "diagnosing"))
            heal_engine_incident_close(b->heal, id, true, "the brain found no fault");
    }
    if (!id || !strcmp(fault, "none"))
        return;
    int64_t case_id = brain_cases_add(&b->cases, id, component, is_service(b, component) ? "service" : "machine",
                                      fault, json_object_get(d->signature, "features"));
    char st[32];
    bool reflex_healed = d->sig.prio != BRAIN_SIG_USER && !strcmp(incident_state(b, id, st, sizeof st), "resolved");
    if (d->cfg.act && b->heal && !reflex_healed)
        brain_act(b, id, case_id, dg, d->sig.first_ms);
}

static void delib_after(uv_work_t *req, int status)
{
    delib *d = req->data;
    if (d->orphan) {
        delib_free(d);
        return;
    }
    brain *b = d->b;
    for (delib **pp = &b->running; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    b->nrunning--;
    if (core_mono_ms() - d->started_mono > d->cfg.deadline_ms) {
        b->late++;
        log_warn("brain: the deliberation about %s took %lld ms (deadline %lld ms)", d->sig.component,
                 (long long)(core_mono_ms() - d->started_mono), (long long)d->cfg.deadline_ms);
    }
    if (status != 0 || !d->diagnosis || !d->signature) {
        log_warn("brain: the deliberation about %s failed%s", d->sig.component, status ? " (cancelled)" : "");
    } else if (!d->sig.full && !d->fast && d->cfg.window_ms > 0 && d->sig.prio != BRAIN_SIG_USER) {
        requeue_full(b, d); /* no remembered case: gather the window's evidence first */
    } else {
        b->done++;
        recent_mark(b, d->sig.component, core_now_ms());
        publish(b, d);
    }
    delib_free(d);
    publish_stats(b);
}

static void start_delib(brain *b, const brain_signal *s, int64_t now_ms)
{
    delib *d = calloc(1, sizeof *d);
    if (!d)
        return;
    d->b = b;
    d->sig = *s;
    d->cfg = b->cfg;
    d->req.data = d;
    d->started_mono = core_mono_ms();
    d->think_svcs = json_deep_copy(b->think_svcs);
    d->wisdom = b->wisdom;
    d->wisdom_ud = b->wisdom_ud;
    snprintf(d->wisdom_kind, sizeof d->wisdom_kind, "%s", is_service(b, s->component) ? s->component : "");
    d->from_ms = s->first_ms - (s->prio == BRAIN_SIG_USER ? 60000 : 30000);
    d->to_ms = now_ms;
    if (s->incident && b->heal)
        d->incident_json = heal_engine_incident_json(b->heal, s->incident);
    svc_paths *sp = svc_find(b->svcs, b->nsvcs, s->component);
    if (sp) {
        d->paths = copy_strv(sp->paths, sp->n, &d->npaths);
        d->deps = copy_strv(sp->deps, sp->ndeps, &d->ndeps);
    }
    if (uv_queue_work(b->loop, &d->req, delib_work, delib_after) != 0) {
        delib_free(d);
        return;
    }
    d->next = b->running;
    b->running = d;
    b->nrunning++;
}

static bool busy(void *ud, const char *component)
{
    brain *b = ud;
    for (delib *d = b->running; d; d = d->next)
        if (!strcmp(d->sig.component, component))
            return true;
    return false;
}

/* A signal about a component being deliberated or acted on joins that. */
static bool absorbed(brain *b, const brain_signal *s)
{
    for (delib *d = b->running; d; d = d->next)
        if (!strcmp(d->sig.component, s->component)) {
            if (s->incident > d->latest_incident)
                d->latest_incident = s->incident;
            d->sig.count++;
            return true;
        }
    if (s->prio == BRAIN_SIG_USER)
        return false;
    return plan_active(b, s->component) || recently(b, s->component, s->first_ms);
}

/* ---- the tick ------------------------------------------------------------------------ */

static void take_event(brain *b, const mem_event *ev)
{
    brain_prefs_event(b->prefs, b->heal, ev); /* an operator's approval or rejection */
    if (!strcmp(ev->type, "incident.resolved") || !strcmp(ev->type, "incident.failed"))
        plan_outcome(b, ev);
    if (!strcmp(ev->type, "incident.resolved"))
        recent_clear(b, ev->source);
    brain_signal s;
    if (!brain_signal_from_event(ev, &s))
        return;
    /* the quick look waits a moment, so that a crash loop's next exits and
     * log lines are in (a remembered case is then recognised at once) */
    s.not_before_ms = s.first_ms + (b->cfg.window_ms < BRAIN_QUICK_MS ? b->cfg.window_ms : BRAIN_QUICK_MS);
    if (absorbed(b, &s)) {
        b->thal.merged++;
        return;
    }
    brain_thal_push(&b->thal, &s);
}

void brain_tick(brain *b, int64_t now_ms)
{
    if (!b || !b->cfg.enabled)
        return;
    for (int round = 0; round < 16; round++) {
        mem_event *ev = NULL;
        size_t n = 0;
        if (mem_events_wait(b->mem, b->last_event, 0, &ev, &n) <= 0 || n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            if (ev[i].id > b->last_event)
                b->last_event = ev[i].id;
            take_event(b, &ev[i]);
        }
        mem_events_free(ev, n);
    }
    /* plans heal answered -EBUSY to */
    for (int i = 0; i < BRAIN_PLANS_MAX; i++) {
        plan *p = &b->plans[i];
        if (p->used && !p->waiting && !plan_next(b, p))
            plan_end(p);
        else if (p->used && p->waiting && now_ms - p->proposed_ms > 600000)
            plan_end(p); /* no outcome in 10 minutes: let go */
    }
    brain_signal s;
    while (b->nrunning < b->cfg.workers && brain_thal_pop(&b->thal, now_ms, busy, b, &s))
        start_delib(b, &s, now_ms);
    publish_stats(b);
    brain_dream_tick(b->dream, now_ms, b->nrunning > 0);
}

int brain_diagnose_service(brain *b, const char *service, uint64_t *incident, char *err, size_t errlen)
{
    if (!b || !b->cfg.enabled) {
        snprintf(err, errlen, "the brain is off ([brain] enabled = no)");
        return -ENOTSUP;
    }
    if (!service || !is_service(b, service)) {
        snprintf(err, errlen, "no service '%.64s' is configured", service ? service : "");
        return -ENOENT;
    }
    if (!b->heal) {
        snprintf(err, errlen, "healing is not running");
        return -ENOTSUP;
    }
    uint64_t id = 0;
    int rc = heal_engine_incident_new(b->heal, service, "brain: a user asked why", json_pack("{s:b}", "question", 1),
                                      &id, err, errlen);
    if (rc)
        return rc;
    brain_signal s = {.prio = BRAIN_SIG_USER, .incident = id, .count = 1, .full = true, .faulty = false};
    snprintf(s.component, sizeof s.component, "%s", service);
    snprintf(s.trigger, sizeof s.trigger, "user");
    s.first_ms = s.last_ms = s.not_before_ms = core_now_ms();
    if (brain_thal_push(&b->thal, &s) < 0) {
        snprintf(err, errlen, "the brain's queue is full");
        return -EBUSY;
    }
    brain_tick(b, core_now_ms()); /* start it now if a worker is free */
    *incident = id;
    return 0;
}

char *brain_status_json(brain *b)
{
    if (!b)
        return NULL;
    pthread_mutex_lock(&b->lock);
    const brain_stats *s = &b->stats;
    json_t *o = json_pack("{s:b, s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "enabled",
                          b->cfg.enabled, "act", b->cfg.act, "workers", b->cfg.workers, "window_ms",
                          (json_int_t)b->cfg.window_ms, "done", (json_int_t)s->done, "late", (json_int_t)s->late,
                          "incidents_opened", (json_int_t)s->opened, "proposals", (json_int_t)s->proposals,
                          "healed", (json_int_t)s->healed, "not_healed", (json_int_t)s->failed, "refused",
                          (json_int_t)s->refused, "queued", (json_int_t)s->queued, "merged", (json_int_t)s->merged);
    if (o) {
        json_object_set_new(o, "queue", json_integer(s->queue));
        json_object_set_new(o, "running", json_integer(s->running));
        json_object_set_new(o, "dropped", json_integer((json_int_t)s->dropped));
    }
    pthread_mutex_unlock(&b->lock);
    if (o)
        json_object_set_new(o, "cases", json_integer(brain_cases_count(&b->cases)));
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return t;
}

/* ---- life ----------------------------------------------------------------------------- */

int brain_new(uv_loop_t *loop, const core_config *cfg, mem_t *mem, heal_engine *heal, logs_watch *logs,
              brain **out, char *err, size_t errlen)
{
    brain *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->loop = loop;
    b->mem = mem;
    b->heal = heal;
    b->mind = (brain_mind){.mem = mem, .heal = heal, .cases = &b->cases};
    b->logs = logs;
    pthread_mutex_init(&b->lock, NULL);
    pthread_cond_init(&b->work_cond, NULL);
    int rc = cfg_parse(cfg, &b->cfg, err, errlen);
    if (!rc && svcs_parse(cfg, &b->svcs, &b->nsvcs) != 0)
        rc = -ENOMEM;
    if (!rc && brain_thal_init(&b->thal, b->cfg.queue, b->cfg.merge_ms) != 0)
        rc = -ENOMEM;
    if (!rc)
        rc = brain_cases_open(&b->cases, mem, err, errlen);
    brain_dream_cfg dc;
    if (!rc && (rc = brain_dream_cfg_parse(cfg, &dc, err, errlen)) != 0)
        brain_cases_close(&b->cases);
    if (!rc && (rc = brain_dream_new(b, loop, &dc, &b->dream)) != 0)
        brain_cases_close(&b->cases);
    if (!rc && (rc = brain_prefs_new(mem, cfg, &b->prefs, err, errlen)) != 0) {
        brain_dream_free(b->dream);
        brain_cases_close(&b->cases);
    }
    if (rc) {
        brain_thal_free(&b->thal);
        svcs_free(b->svcs, b->nsvcs);
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->work_cond);
        free(b);
        return rc;
    }
    b->last_event = mem ? mem_last_event_id(mem) : 0;
    b->think_svcs = brain_think_services(cfg);
    log_info("brain: %s, %d worker%s, window %lld ms, %s, %d remembered case%s", b->cfg.enabled ? "on" : "off",
             b->cfg.workers, b->cfg.workers > 1 ? "s" : "", (long long)b->cfg.window_ms,
             b->cfg.act ? "acting through heal" : "diagnosing only", b->cases.n, b->cases.n == 1 ? "" : "s");
    *out = b;
    return 0;
}

int brain_reconfigure(brain *b, const core_config *cfg, char *err, size_t errlen)
{
    brain_cfg c;
    brain_dream_cfg dc;
    int rc = cfg_parse(cfg, &c, err, errlen);
    if (!rc)
        rc = brain_dream_cfg_parse(cfg, &dc, err, errlen);
    if (!rc)
        rc = brain_prefs_reconfigure(b->prefs, cfg, err, errlen);
    if (rc)
        return rc;
    brain_dream_reconfigure(b->dream, &dc);
    svc_paths *s;
    int n;
    if (svcs_parse(cfg, &s, &n) != 0)
        return -ENOMEM;
    if (c.queue != b->thal.cap) {
        brain_thal t;
        if (brain_thal_init(&t, c.queue, c.merge_ms) != 0) {
            svcs_free(s, n);
            return -ENOMEM;
        }
        for (int i = 0; i < b->thal.n; i++)
            brain_thal_push(&t, &b->thal.q[i]);
        t.queued = b->thal.queued;
        t.merged = b->thal.merged;
        t.dropped += b->thal.dropped;
        brain_thal_free(&b->thal);
        b->thal = t;
    }
    b->thal.merge_ms = c.merge_ms;
    svcs_free(b->svcs, b->nsvcs);
    b->svcs = s;
    b->nsvcs = n;
    json_decref(b->think_svcs);
    b->think_svcs = brain_think_services(cfg);
    pthread_mutex_lock(&b->lock);
    b->cfg = c;
    pthread_mutex_unlock(&b->lock);
    return 0;
}

void brain_free(brain *b)
{
    if (!b)
        return;
    brain_dream_free(b->dream); /* waits for a running pass */
    /* the work functions may read heal and memory: wait until they returned;
     * their after-work callbacks run later and only free their own memory */
    pthread_mutex_lock(&b->lock);
    for (delib *d = b->running; d; d = d->next) {
        while (!d->work_done)
            pthread_cond_wait(&b->work_cond, &b->lock);
        d->orphan = true;
    }
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < BRAIN_PLANS_MAX; i++)
        if (b->plans[i].used)
            plan_end(&b->plans[i]);
    for (int i = 0; i < BRAIN_DIAG_KEEP; i++)
        free(b->diags[i].text);
    brain_thal_free(&b->thal);
    brain_cases_close(&b->cases);
    brain_prefs_free(b->prefs);
    svcs_free(b->svcs, b->nsvcs);
    json_decref(b->think_svcs);
    pthread_mutex_destroy(&b->lock);
    pthread_cond_destroy(&b->work_cond);
    free(b);
}

/* ---- the model and the knowledge ------------------------------------------- */

void brain_set_thinking(brain *b, llm *l, mem_know *know)
{
    if (!b)
        return;
    b->mind.llm = l;
    b->mind.know = know;
}

void brain_set_wisdom(brain *b, brain_wisdom_fn fn, brain_wisdom_outcome_fn outcome, void *ud)
{
    if (!b)
        return;
    b->wisdom = fn;
    b->wisdom_outcome = outcome;
    b->wisdom_ud = ud;
}

const brain_mind *brain_mind_of(brain *b)
{
    return &b->mind;
}

brain_dream *brain_dream_of(brain *b)
{
    return b->dream;
}

bool brain_deliberating(brain *b)
{
    return b->nrunning > 0;
}

logs_watch *brain_ask_sources(brain *b, char *dpkg_log, size_t n)
{
    pthread_mutex_lock(&b->lock);
    snprintf(dpkg_log, n, "%s", b->cfg.dpkg_log);
    pthread_mutex_unlock(&b->lock);
    return b->logs;
}

brain_prefs *brain_prefs_of(brain *b)
{
    return b->prefs;
}
