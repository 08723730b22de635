/* cases.c: case-based reasoning. A case is one deliberated incident: its
 * signature's features, the fault type and component, and the attempts made
 * with which actions and whether they healed. Cases live in RAM (under a
 * mutex: workers recall, the loop records) and durably in memory's `cases`
 * table (one JSON row per case, rewritten through memory's writer thread at
 * each change, read back at start). Recall ranks cases by weighted Jaccard
 * similarity over features, each feature weighing 1 + ln((N + 1) / (df + 1))
 * (N cases, df of them holding it): rarer features weigh more. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "brain/brain_int.h"

static void case_free(brain_case *k)
{
    json_decref(k->features);
    json_decref(k->attempts);
    memset(k, 0, sizeof *k);
}

static json_t *case_to_json(const brain_case *k)
{
    return json_pack("{s:I, s:I, s:I, s:s, s:s, s:s, s:O, s:O, s:i, s:i, s:I}", "id", (json_int_t)k->id, "incident",
                     (json_int_t)k->incident, "ts", (json_int_t)k->ts, "component", k->component, "kind", k->kind,
                     "fault_type", k->fault_type, "features", k->features, "attempts", k->attempts, "fixed",
                     k->fixed, "tried", k->tried, "mitigate_ms", (json_int_t)k->mitigate_ms);
}

static int case_from_json(const json_t *o, brain_case *k)
{
    memset(k, 0, sizeof *k);
    json_t *f = json_object_get(o, "features"), *a = json_object_get(o, "attempts");
    const char *ft = json_string_value(json_object_get(o, "fault_type"));
    if (!json_is_array(f) || !ft || !brain_fault_type_valid(ft))
        return -EINVAL;
    k->id = json_integer_value(json_object_get(o, "id"));
    k->incident = (uint64_t)json_integer_value(json_object_get(o, "incident"));
    k->ts = json_integer_value(json_object_get(o, "ts"));
    snprintf(k->component, sizeof k->component, "%s", json_string_value(json_object_get(o, "component"))
                                                           ? json_string_value(json_object_get(o, "component")) : "");
    snprintf(k->kind, sizeof k->kind, "%s", json_string_value(json_object_get(o, "kind"))
                                                 ? json_string_value(json_object_get(o, "kind")) : "service");
    snprintf(k->fault_type, sizeof k->fault_type, "%s", ft);
    k->features = json_deep_copy(f);
    k->attempts = json_is_array(a) ? json_deep_copy(a) : json_array();
    k->fixed = (int)json_integer_value(json_object_get(o, "fixed"));
    k->tried = (int)json_integer_value(json_object_get(o, "tried"));
    k->mitigate_ms = json_integer_value(json_object_get(o, "mitigate_ms"));
    return 0;
}

/* Appends k (taken), forgetting the oldest past BRAIN_CASES_MAX. Locked. */
static int push(brain_cases *c, brain_case *k)
{
    if (c->n == BRAIN_CASES_MAX) {
        case_free(&c->v[0]);
        memmove(c->v, c->v + 1, sizeof *c->v * (size_t)(c->n - 1));
        c->n--;
    }
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 16;
        brain_case *v = realloc(c->v, sizeof *v * (size_t)cap);
        if (!v)
            return -ENOMEM;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = *k;
    if (k->id >= c->next_id)
        c->next_id = k->id + 1;
    return 0;
}

static int load_one(void *ud, int64_t id, int64_t ts, const char *text)
{
    brain_cases *c = ud;
    json_t *o = json_loads(text, 0, NULL);
    brain_case k;
    if (o && json_object_get(o, "merged_into")) { /* dreaming merged it into an older case */
        json_decref(o);
        if (id >= c->next_id)
            c->next_id = id + 1;
        return 0;
    }
    if (!o || case_from_json(o, &k) != 0) {
        log_warn("brain: case %lld in the store is unreadable: skipped", (long long)id);
        json_decref(o);
        return 0;
    }
    json_decref(o);
    k.id = id;
    if (!k.ts)
        k.ts = ts;
    if (push(c, &k) != 0) {
        case_free(&k);
        return -ENOMEM;
    }
    return 0;
}

int brain_cases_open(brain_cases *c, mem_t *mem, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->mem = mem;
    c->next_id = 1;
    if (!mem)
        return 0;
    int rc = mem_case_load(mem, load_one, c, err, errlen);
    if (rc < 0) {
        brain_cases_close(c);
        return rc;
    }
    return 0;
}

void brain_cases_close(brain_cases *c)
{
    for (int i = 0; i < c->n; i++)
        case_free(&c->v[i]);
    free(c->v);
    c->v = NULL;
    c->n = c->cap = 0;
    pthread_mutex_destroy(&c->lock);
}

int brain_cases_count(brain_cases *c)
{
    pthread_mutex_lock(&c->lock);
    int n = c->n;
    pthread_mutex_unlock(&c->lock);
    return n;
}

static bool holds(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *t = json_string_value(v);
        if (t && !strcmp(t, s))
            return true;
    }
    return false;
}

/* Weight of feature s: 1 + ln((N + 1) / (df + 1)). Locked. */
static double weight(const brain_cases *c, const char *s)
{
    int df = 0;
    for (int i = 0; i < c->n; i++)
        df += holds(c->v[i].features, s);
    return 1 + log((c->n + 1.0) / (df + 1.0));
}

static double sim_locked(const brain_cases *c, const json_t *a, const json_t *b)
{
    double inter = 0, uni = 0;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        const char *s = json_string_value(v);
        if (!s)
            continue;
        bool dup = false; /* a feature listed twice counts once */
        for (size_t k = 0; k < i && !dup; k++)
            dup = json_equal(json_array_get(a, k), v);
        if (dup)
            continue;
        double w = weight(c, s);
        uni += w;
        if (holds(b, s))
            inter += w;
    }
    json_array_foreach(b, i, v) {
        const char *s = json_string_value(v);
        if (!s || holds(a, s))
            continue;
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++)
            dup = json_equal(json_array_get(b, k), v);
        if (!dup)
            uni += weight(c, s);
    }
    return uni > 0 ? inter / uni : 0;
}

double brain_cases_similarity(brain_cases *c, const json_t *a, const json_t *b)
{
    pthread_mutex_lock(&c->lock);
    double s = sim_locked(c, a, b);
    pthread_mutex_unlock(&c->lock);
    return s;
}

static json_t *last_fix(const brain_case *k)
{
    size_t n = json_array_size(k->attempts);
    for (size_t i = n; i-- > 0;) {
        json_t *a = json_array_get(k->attempts, i);
        if (json_is_true(json_object_get(a, "healed")))
            return json_deep_copy(json_object_get(a, "actions"));
    }
    return json_array();
}

/* The actions of the case's attempts that did not heal, each text once
 * (what fleet wisdom must not override with its word). */
static json_t *failed_actions(const brain_case *k)
{
    json_t *out = json_array();
    size_t i, j, m;
    json_t *a, *t, *u;
    json_array_foreach(k->attempts, i, a) {
        if (json_is_true(json_object_get(a, "healed")))
            continue;
        json_array_foreach(json_object_get(a, "actions"), j, t) {
            bool seen = !json_is_string(t);
            json_array_foreach(out, m, u) seen = seen || json_equal(u, t);
            if (!seen)
                json_array_append(out, t);
        }
    }
    return out;
}

int brain_cases_recall(brain_cases *c, const json_t *features, brain_case_hit *out, int max)
{
    if (!json_is_array(features) || max <= 0)
        return 0;
    int n = 0;
    pthread_mutex_lock(&c->lock);
    for (int i = c->n; i-- > 0;) { /* newest first: equal similarities keep the newer */
        const brain_case *k = &c->v[i];
        double s = sim_locked(c, features, k->features);
        if (s <= 0)
            continue;
        int at = n;
        while (at > 0 && out[at - 1].similarity < s)
            at--;
        if (at >= max)
            continue;
        if (n == max)
            brain_case_hits_free(&out[--n], 1);
        memmove(out + at + 1, out + at, sizeof *out * (size_t)(n - at));
        brain_case_hit *h = &out[at];
        memset(h, 0, sizeof *h);
        h->id = k->id;
        h->incident = k->incident;
        h->ts = k->ts;
        h->similarity = s;
        snprintf(h->fault_type, sizeof h->fault_type, "%s", k->fault_type);
        snprintf(h->component, sizeof h->component, "%s", k->component);
        h->fixed_by = last_fix(k);
        h->failed_by = failed_actions(k);
        h->fixed = k->fixed;
        h->tried = k->tried;
        h->mitigate_ms = k->mitigate_ms;
        n++;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

void brain_case_hits_free(brain_case_hit *h, int n)
{
    for (int i = 0; i < n; i++) {
        json_decref(h[i].fixed_by);
        h[i].fixed_by = NULL;
        json_decref(h[i].failed_by);
        h[i].failed_by = NULL;
    }
}

static brain_case *find(brain_cases *c, int64_t id)
{
    for (int i = 0; i < c->n; i++)
        if (c->v[i].id == id)
            return &c->v[i];
    return NULL;
}

/* Queues the case's row for the writer. Locked. */
static void save(brain_cases *c, const brain_case *k)
{
    if (!c->mem)
        return;
    json_t *o = case_to_json(k);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text || mem_case_save(c->mem, k->id, k->ts, text) < 0)
        log_warn("brain: case %lld could not be queued for the store", (long long)k->id);
    free(text);
}

int64_t brain_cases_add(brain_cases *c, uint64_t incident, const char *component, const char *kind,
                        const char *fault_type, const json_t *features)
{
    brain_case k = {0};
    k.incident = incident;
    k.ts = core_now_ms();
    snprintf(k.component, sizeof k.component, "%s", component ? component : "");
    snprintf(k.kind, sizeof k.kind, "%s", kind ? kind : "service");
    snprintf(k.fault_type, sizeof k.fault_type, "%s", brain_fault_type_valid(fault_type) ? fault_type : "unknown");
    k.features = json_is_array(features) ? json_deep_copy(features) : json_array();
    k.attempts = json_array();
    if (!k.features || !k.attempts) {
        case_free(&k);
        return -ENOMEM;
    }
    pthread_mutex_lock(&c->lock);
    k.id = c->next_id;
    int rc = push(c, &k);
    if (rc == 0)
        save(c, &c->v[c->n - 1]);
    pthread_mutex_unlock(&c->lock);
    if (rc) {
        case_free(&k);
        return rc;
    }
    return k.id;
}

int brain_cases_outcome(brain_cases *c, int64_t id, const json_t *actions, bool healed, int64_t mitigate_ms)
{
    pthread_mutex_lock(&c->lock);
    brain_case *k = find(c, id);
    if (!k) {
        pthread_mutex_unlock(&c->lock);
        return -ENOENT;
    }
    json_t *acts = json_is_array(actions) ? json_deep_copy(actions) : json_array();
    json_array_append_new(k->attempts, json_pack("{s:o, s:b, s:I}", "actions", acts, "healed", healed, "ts",
                                                 (json_int_t)core_now_ms()));
    k->tried++;
    if (healed) {
        k->fixed++;
        if (!k->mitigate_ms)
            k->mitigate_ms = mitigate_ms;
    }
    save(c, k);
    pthread_mutex_unlock(&c->lock);
    return 0;
}

json_t *brain_case_json(brain_cases *c, int64_t id)
{
    pthread_mutex_lock(&c->lock);
    brain_case *k = find(c, id);
    json_t *o = k ? case_to_json(k) : NULL;
    pthread_mutex_unlock(&c->lock);
    return o;
}

/* ---- dreaming: merging near-identical cases --------------------------------- */

/* Moves k's attempts, counts and features into into (both locked). */
static void absorb(brain_case *into, const brain_case *k)
{
    size_t i;
    json_t *v;
    json_array_foreach(k->attempts, i, v)
        json_array_append(into->attempts, v);
    json_array_foreach(k->features, i, v)
        if (json_string_value(v) && !holds(into->features, json_string_value(v)))
            json_array_append(into->features, v);
    into->fixed += k->fixed;
    into->tried += k->tried;
    if (k->mitigate_ms && (!into->mitigate_ms || k->mitigate_ms < into->mitigate_ms))
        into->mitigate_ms = k->mitigate_ms;
}

/* The row that replaces a merged case in the store. Locked. */
static void save_tombstone(brain_cases *c, const brain_case *k, int64_t into)
{
    if (!c->mem)
        return;
    char text[96];
    snprintf(text, sizeof text, "{\"merged_into\":%lld}", (long long)into);
    if (mem_case_save(c->mem, k->id, k->ts, text) < 0)
        log_warn("brain: merged case %lld could not be queued for the store", (long long)k->id);
}

/* Each feature's weight, 1 + ln((N + 1) / (df + 1)), computed once for a
 * pass (weight() scans every case: too slow for all pairs). Locked. */
static json_t *weights_now(const brain_cases *c)
{
    json_t *df = json_object();
    for (int i = 0; i < c->n; i++) {
        size_t k;
        json_t *v;
        json_array_foreach(c->v[i].features, k, v) {
            const char *s = json_string_value(v);
            bool dup = false;
            for (size_t j = 0; s && j < k && !dup; j++)
                dup = json_equal(json_array_get(c->v[i].features, j), v);
            if (s && !dup)
                json_object_set_new(df, s, json_integer(json_integer_value(json_object_get(df, s)) + 1));
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(df, key, v)
        json_object_set_new(df, key, json_real(1 + log((c->n + 1.0) / ((double)json_integer_value(v) + 1.0))));
    return df;
}

/* sim_locked with the weights of w (the same value while nothing changed). */
static double sim_weighted(const json_t *w, const json_t *a, const json_t *b)
{
    double inter = 0, uni = 0;
    const json_t *sets[2] = {a, b};
    for (int s = 0; s < 2; s++) {
        size_t i;
        json_t *v;
        json_array_foreach(sets[s], i, v) {
            const char *f = json_string_value(v);
            if (!f || (s == 1 && holds(a, f)))
                continue;
            bool dup = false;
            for (size_t k = 0; k < i && !dup; k++)
                dup = json_equal(json_array_get(sets[s], k), v);
            if (dup)
                continue;
            json_t *x = json_object_get(w, f);
            double wt = x ? json_real_value(x) : 1;
            uni += wt;
            if (s == 0 && holds(b, f))
                inter += wt;
        }
    }
    return uni > 0 ? inter / uni : 0;
}

/* When k was last recorded or tried (wall ms). */
static int64_t last_touch(const brain_case *k)
{
    int64_t t = k->ts;
    size_t i;
    json_t *a;
    json_array_foreach(k->attempts, i, a) {
        int64_t at = json_integer_value(json_object_get(a, "ts"));
        if (at > t)
            t = at;
    }
    return t;
}

int brain_cases_recluster(brain_cases *c, double threshold, int64_t settled_ms, json_t *merges)
{
    int merged = 0;
    pthread_mutex_lock(&c->lock);
    /* the weights are those of the store before the pass: merging does not
     * change which pairs are near-identical halfway through */
    char *gone = calloc((size_t)(c->n ? c->n : 1), 1);
    json_t *w = weights_now(c);
    if (!gone || !w) {
        free(gone);
        json_decref(w);
        pthread_mutex_unlock(&c->lock);
        return -ENOMEM;
    }
    for (int i = 0; i < c->n; i++) /* still being acted on: not now */
        if (last_touch(&c->v[i]) >= settled_ms)
            gone[i] = 3;
    for (int i = 0; i < c->n; i++) { /* older first: the older id is kept */
        if (gone[i])
            continue;
        json_t *ids = NULL;
        for (int j = i + 1; j < c->n; j++) {
            brain_case *a = &c->v[i], *b = &c->v[j];
            if (gone[j] || strcmp(a->fault_type, b->fault_type) || strcmp(a->component, b->component) ||
                sim_weighted(w, a->features, b->features) < threshold)
                continue;
            gone[j] = 1;
            if (!ids)
                ids = json_array();
            json_array_append_new(ids, json_integer((json_int_t)b->id));
        }
        if (!ids)
            continue;
        for (int j = i + 1; j < c->n; j++)
            if (gone[j] == 1) {
                absorb(&c->v[i], &c->v[j]);
                save_tombstone(c, &c->v[j], c->v[i].id);
                gone[j] = 2;
                merged++;
            }
        save(c, &c->v[i]);
        if (merges)
            json_array_append_new(merges, json_pack("{s:I, s:o}", "kept", (json_int_t)c->v[i].id, "merged", ids));
        else
            json_decref(ids);
    }
    int n = 0;
    for (int i = 0; i < c->n; i++) {
        if (gone[i] == 2) {
            case_free(&c->v[i]);
            continue;
        }
        c->v[n++] = c->v[i];
    }
    c->n = n;
    free(gone);
    json_decref(w);
    pthread_mutex_unlock(&c->lock);
    return merged;
}
