/* thalamus.c: where every signal enters the brain. Events from memory become
 * signals with a priority (a user's question first, then a failed reflex, an
 * opened incident, a service exit, anomaly episodes and error-level log
 * signals, changes last); signals about one component within merge_ms merge
 * into one deliberation; the queue is bounded and drops its lowest-priority
 * signal when full (counted). Pure: no I/O, no locks (loop thread). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

int brain_thal_init(brain_thal *t, int cap, int64_t merge_ms)
{
    memset(t, 0, sizeof *t);
    t->q = calloc((size_t)(cap > 0 ? cap : 1), sizeof *t->q);
    if (!t->q)
        return -ENOMEM;
    t->cap = cap > 0 ? cap : 1;
    t->merge_ms = merge_ms;
    return 0;
}

void brain_thal_free(brain_thal *t)
{
    free(t->q);
    memset(t, 0, sizeof *t);
}

static void merge_into(brain_signal *q, const brain_signal *s)
{
    if (s->faulty && !q->faulty) { /* the first sign of a fault starts the evidence window */
        q->first_ms = s->first_ms;
        q->not_before_ms = s->not_before_ms;
    }
    if (s->prio > q->prio) {
        q->prio = s->prio;
        snprintf(q->trigger, sizeof q->trigger, "%s", s->trigger);
    }
    if (s->incident > q->incident)
        q->incident = s->incident;
    if (s->last_ms > q->last_ms)
        q->last_ms = s->last_ms;
    if (s->first_ms < q->first_ms)
        q->first_ms = s->first_ms;
    if (s->prio == BRAIN_SIG_USER && s->not_before_ms < q->not_before_ms) /* a user's question does not wait */
        q->not_before_ms = s->not_before_ms;
    q->faulty = q->faulty || s->faulty;
    q->count += s->count > 0 ? s->count : 1;
}

/* The index of the signal to drop: lowest priority, then oldest. */
static int lowest(const brain_thal *t)
{
    int at = 0;
    for (int i = 1; i < t->n; i++)
        if (t->q[i].prio < t->q[at].prio || (t->q[i].prio == t->q[at].prio && t->q[i].first_ms < t->q[at].first_ms))
            at = i;
    return at;
}

int brain_thal_push(brain_thal *t, const brain_signal *s)
{
    for (int i = 0; i < t->n; i++) {
        brain_signal *q = &t->q[i];
        int64_t gap = s->first_ms - q->last_ms;
        if (!strcmp(q->component, s->component) && gap <= t->merge_ms && gap >= -t->merge_ms) {
            merge_into(q, s);
            t->merged++;
            return BRAIN_THAL_MERGED;
        }
    }
    if (t->n == t->cap) {
        int lo = lowest(t);
        t->dropped++;
        if (t->q[lo].prio >= s->prio)
            return -ENOBUFS;
        t->q[lo] = t->q[--t->n];
    }
    brain_signal *q = &t->q[t->n++];
    *q = *s;
    if (q->count <= 0)
        q->count = 1;
    t->queued++;
    return BRAIN_THAL_QUEUED;
}

int brain_thal_pop(brain_thal *t, int64_t now_ms, bool (*busy)(void *ud, const char *component), void *ud,
                   brain_signal *out)
{
    int at = -1;
    for (int i = 0; i < t->n; i++) {
        const brain_signal *q = &t->q[i];
        if (q->not_before_ms > now_ms || (busy && busy(ud, q->component)))
            continue;
        if (at < 0 || q->prio > t->q[at].prio || (q->prio == t->q[at].prio && q->first_ms < t->q[at].first_ms))
            at = i;
    }
    if (at < 0)
        return 0;
    *out = t->q[at];
    memmove(t->q + at, t->q + at + 1, sizeof *t->q * (size_t)(t->n - at - 1));
    t->n--;
    return 1;
}

/* The service an anomaly's labels name (name= or service=), "" when none. */
static void anomaly_component(const json_t *p, char *out, size_t n)
{
    const json_t *first = json_object_get(p, "first");
    const json_t *labels = json_object_get(first ? first : p, "labels");
    const char *s = json_string_value(json_object_get(labels, "service"));
    if (!s)
        s = json_string_value(json_object_get(labels, "name"));
    snprintf(out, n, "%s", s ? s : "");
}

/* crash / probe / rule from heal's incident JSON. */
static const char *incident_trigger(const json_t *p)
{
    const char *where = json_string_value(json_object_get(p, "where"));
    const char *what = json_string_value(json_object_get(p, "what"));
    if (where && !strcmp(where, "supervisor"))
        return "crash";
    if (what && strstr(what, "failed "))
        return "probe";
    if (what && !strncmp(what, "process exited", 14))
        return "crash";
    return "rule";
}

int brain_signal_from_event(const mem_event *ev, brain_signal *out)
{
    memset(out, 0, sizeof *out);
    out->first_ms = out->last_ms = ev->ts;
    out->count = 1;
    json_t *p = json_loads(ev->payload, 0, NULL);
    int ok = 1;
    const char *t = ev->type;
    const char *by = json_string_value(json_object_get(p, "by"));
    if (!strcmp(t, "incident.open") || (!strcmp(t, "incident.failed") && !(by && !strcmp(by, "brain")))) {
        bool failed = t[9] == 'f';
        out->prio = failed ? BRAIN_SIG_FAILED : BRAIN_SIG_OPEN;
        out->incident = (uint64_t)json_integer_value(json_object_get(p, "id"));
        snprintf(out->trigger, sizeof out->trigger, "%s", incident_trigger(p));
        const char *svc = json_string_value(json_object_get(p, "service"));
        snprintf(out->component, sizeof out->component, "%s", svc ? svc : ev->source);
        out->faulty = true;
        /* the brain's own incidents (an anomaly's, a question's) are already deliberated */
        const char *where = json_string_value(json_object_get(p, "where"));
        if (!failed && where && !strcmp(where, "brain"))
            ok = 0;
    } else if (!strcmp(t, "service.exit")) {
        out->prio = BRAIN_SIG_EXIT;
        snprintf(out->trigger, sizeof out->trigger, "crash");
        snprintf(out->component, sizeof out->component, "%s", ev->source);
        out->faulty = true;
    } else if (!strcmp(t, "anomaly.episode")) {
        const char *state = json_string_value(json_object_get(p, "state"));
        ok = state && !strcmp(state, "open");
        out->prio = BRAIN_SIG_ANOMALY;
        snprintf(out->trigger, sizeof out->trigger, "anomaly");
        anomaly_component(p, out->component, sizeof out->component);
    } else if (!strcmp(t, "log.template.new") || !strcmp(t, "log.burst")) {
        const char *level = json_string_value(json_object_get(p, "level"));
        ok = level && !strcmp(level, "error");
        out->prio = BRAIN_SIG_LOG;
        snprintf(out->trigger, sizeof out->trigger, "log");
        snprintf(out->component, sizeof out->component, "%s", ev->source);
    } else if (!strcmp(t, "config.reload") || !strcmp(t, "file.changed")) {
        out->prio = BRAIN_SIG_CHANGE;
        snprintf(out->trigger, sizeof out->trigger, "change");
        const char *svc = json_string_value(json_object_get(p, "service"));
        snprintf(out->component, sizeof out->component, "%s", t[0] == 'f' ? (svc ? svc : ev->source) : "");
    } else {
        ok = 0;
    }
    json_decref(p);
    return ok;
}
