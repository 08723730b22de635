/* prefs.c: the operators' preferences. What people decide about the
 * brain's proposals (heal.rejected, approvals, approvals with an edit) is
 * remembered per signature ("FAULT_TYPE COMPONENT") and action in memory's
 * `prefs` table, and changes the next proposals for that signature: a
 * rejected action is no longer proposed, an edited one is replaced by the
 * edit, a service whose proposals were rejected across several signatures
 * is not touched, restarts approved only inside one weekly hour range are
 * queued for approval outside it. The configured [prefs] (maintenance
 * windows, services never touched) act the same way. Every change is named
 * in the diagnosis's "preferences" and in the proposal's why. See brain_int.h
 * for [prefs] and docs/brain.md ("Preferences"). */
#include "brain/brain_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define PREFS_COUNTERS 64

/* One learned record: what operators decided about one action of a signature. */
typedef struct rec {
    int64_t id;
    char sig[96], service[64], action[256], edit[256], who[64];
    int approved, rejected, edited;
    int64_t first_ms, last_ms, approve_ms, reject_ms; /* wall ms: first, last, last approval, last rejection */
    int64_t times[BRAIN_PREFS_TIMES]; /* the latest approvals (wall ms), oldest first */
    int ntimes;
    int changed;                      /* proposals it changed */
    int64_t changed_ms;
} rec;

/* What a configured or derived preference changed ("maintenance", "never:web", ...). */
typedef struct counter {
    char id[96];
    int n;
    int64_t ms;
} counter;

struct brain_prefs {
    pthread_mutex_t lock;
    mem_t *mem;
    brain_prefs_cfg cfg;
    rec *v;
    int n, cap;
    int64_t next_id;
    counter cnt[PREFS_COUNTERS];
    int ncnt;
};

/* ---- windows ----------------------------------------------------------------------- */

static const char *const day_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

static int day_of(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && !strncasecmp(s, day_names[i], 3))
            return i;
    return -1;
}

/* "Sat", "Mon-Fri", "Sat+Sun", "daily", "weekdays", "weekends" -> bits. */
static int parse_days(const char *s, size_t n, uint8_t *days)
{
    if ((n == 5 && !strncasecmp(s, "daily", 5)) || (n == 1 && *s == '*')) {
        *days = 0x7f;
        return 0;
    }
    if (n == 8 && !strncasecmp(s, "weekdays", 8)) {
        *days = 0x3e;
        return 0;
    }
    if (n == 8 && !strncasecmp(s, "weekends", 8)) {
        *days = 0x41;
        return 0;
    }
    *days = 0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '+')
            j++;
        int a, b;
        if (j - i == 7 && s[i + 3] == '-') {
            a = day_of(s + i, 3), b = day_of(s + i + 4, 3);
        } else {
            a = b = day_of(s + i, j - i);
        }
        if (a < 0 || b < 0)
            return -EINVAL;
        for (int d = a;; d = (d + 1) % 7) {
            *days |= (uint8_t)(1u << d);
            if (d == b)
                break;
        }
        i = j + 1;
    }
    return *days ? 0 : -EINVAL;
}

static int parse_hhmm(const char *s, const char **end)
{
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
        !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
        return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m))
        return -1;
    *end = s + 5;
    return h * 60 + m;
}

int brain_window_parse(const char *s, brain_window *w, int max, int *n, char *err, size_t errlen)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *item = p, *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        if (*n >= max) {
            snprintf(err, errlen, "more than %d windows", max);
            return -EINVAL;
        }
        brain_window *x = &w[*n];
        const char *sp = memchr(item, ' ', len), *t = item;
        if (sp) {
            if (parse_days(item, (size_t)(sp - item), &x->days)) {
                snprintf(err, errlen, "'%.*s': '%.*s' is not a day (Mon..Sun, Mon-Fri, Sat+Sun, daily)", (int)len,
                         item, (int)(sp - item), item);
                return -EINVAL;
            }
            t = sp;
            while (*t == ' ')
                t++;
        } else {
            x->days = 0x7f;
        }
        const char *q;
        int from = parse_hhmm(t, &q), to = -1;
        if (from >= 0 && *q == '-')
            to = parse_hhmm(q + 1, &q);
        if (from < 0 || to < 0 || q != item + len) {
            snprintf(err, errlen, "'%.*s' is not DAYS HH:MM-HH:MM", (int)len, item);
            return -EINVAL;
        }
        if (from == to || (from == 1440)) {
            snprintf(err, errlen, "'%.*s' is an empty range", (int)len, item);
            return -EINVAL;
        }
        x->from_min = from;
        x->to_min = to;
        (*n)++;
        p = item + len;
    }
    if (*n == 0) {
        snprintf(err, errlen, "no window in '%s'", s);
        return -EINVAL;
    }
    return 0;
}

bool brain_window_has(const brain_window *w, int n, int wday, int minute)
{
    for (int i = 0; i < n; i++) {
        const brain_window *x = &w[i];
        if (x->from_min < x->to_min) {
            if ((x->days >> wday & 1) && minute >= x->from_min && minute < x->to_min)
                return true;
        } else { /* past midnight: the evening of a listed day, or the next morning */
            if ((x->days >> wday & 1) && minute >= x->from_min)
                return true;
            if ((x->days >> ((wday + 6) % 7) & 1) && minute < x->to_min)
                return true;
        }
    }
    return false;
}

static void local_of(int64_t wall_ms, int *wday, int *minute)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    *wday = tm.tm_wday;
    *minute = tm.tm_hour * 60 + tm.tm_min;
}

bool brain_window_has_ms(const brain_window *w, int n, int64_t wall_ms)
{
    int wday, minute;
    local_of(wall_ms, &wday, &minute);
    return brain_window_has(w, n, wday, minute);
}

void brain_window_format(const brain_window *w, char *buf, size_t n)
{
    char days[40] = "";
    if (w->days == 0x7f) {
        snprintf(days, sizeof days, "daily");
    } else {
        for (int d = 0; d < 7; d++)
            if (w->days >> d & 1) {
                size_t l = strlen(days);
                snprintf(days + l, sizeof days - l, "%s%s", l ? "+" : "", day_names[d]);
            }
    }
    snprintf(buf, n, "%s %02d:%02d-%02d:%02d", days, w->from_min / 60, w->from_min % 60, w->to_min / 60,
             w->to_min % 60);
}

/* ---- [prefs] ------------------------------------------------------------------------- */

static int parse_count(const core_kv *kv, int lo, int hi, int *out, char *err, size_t errlen)
{
    char *end;
    long v = strtol(kv->value, &end, 10);
    if (end == kv->value || *end || v < lo || v > hi)
        return core_kv_error(err, errlen, kv, "[prefs] %s: '%s' is not a number from %d to %d", kv->key, kv->value,
                             lo, hi);
    *out = (int)v;
    return 0;
}

static int parse_never(brain_prefs_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    c->nnever = 0;
    const char *p = kv->value;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t len = strcspn(p, " ,\t");
        if (!len)
            break;
        if (len >= sizeof c->never[0] || c->nnever >= BRAIN_PREFS_NEVER)
            return core_kv_error(err, errlen, kv, "[prefs] never: too many or too long service names");
        for (size_t i = 0; i < len; i++)
            if (!isalnum((unsigned char)p[i]) && !strchr("-_.@", p[i]))
                return core_kv_error(err, errlen, kv, "[prefs] never: '%.*s' is not a service name", (int)len, p);
        snprintf(c->never[c->nnever++], sizeof c->never[0], "%.*s", (int)len, p);
        p += len;
    }
    return 0;
}

int brain_prefs_cfg_parse(const core_config *cfg, brain_prefs_cfg *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->reject_after = 1;
    c->untouchable_after = 3;
    c->window_after = 3;
    for (int i = 0; cfg && i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        if (strcmp(kv->section, "prefs") != 0)
            continue;
        int rc = 0;
        if (!strcmp(kv->key, "reject_after"))
            rc = parse_count(kv, 1, 1000, &c->reject_after, err, errlen);
        else if (!strcmp(kv->key, "untouchable_after"))
            rc = parse_count(kv, 0, 1000, &c->untouchable_after, err, errlen);
        else if (!strcmp(kv->key, "window_after"))
            rc = parse_count(kv, 0, BRAIN_PREFS_TIMES, &c->window_after, err, errlen);
        else if (!strcmp(kv->key, "never"))
            rc = parse_never(c, kv, err, errlen);
        else if (!strcmp(kv->key, "maintenance")) {
            char why[200];
            if (brain_window_parse(kv->value, c->maint, BRAIN_PREFS_WINDOWS, &c->nmaint, why, sizeof why))
                return core_kv_error(err, errlen, kv, "[prefs] maintenance: %s", why);
            snprintf(c->maint_text, sizeof c->maint_text, "%s", kv->value);
        } else
            return core_kv_error(err, errlen, kv, "[prefs] unknown key '%s'", kv->key);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- records ----------------------------------------------------------------------- */

static json_t *rec_json(const rec *r)
{
    json_t *t = json_array();
    for (int i = 0; i < r->ntimes; i++)
        json_array_append_new(t, json_integer(r->times[i]));
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:o, s:i, s:I}", "signature",
                     r->sig, "service", r->service, "action", r->action, "edit", r->edit, "who", r->who, "approved",
                     r->approved, "rejected", r->rejected, "edited", r->edited, "first_ms", (json_int_t)r->first_ms,
                     "last_ms", (json_int_t)r->last_ms, "approve_ms", (json_int_t)r->approve_ms, "reject_ms",
                     (json_int_t)r->reject_ms, "approvals", t, "changed", r->changed, "changed_ms",
                     (json_int_t)r->changed_ms);
}

static void save(brain_prefs *p, const rec *r)
{
    if (!p->mem)
        return;
    json_t *o = rec_json(r);
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (t && mem_pref_save(p->mem, r->id, r->last_ms, t) != 0)
        log_warn("brain: cannot save preference %lld", (long long)r->id);
    free(t);
    json_decref(o);
}

static void str_of(char *dst, size_t n, const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    snprintf(dst, n, "%s", s ? s : "");
}

static rec *rec_add(brain_prefs *p)
{
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 16;
        rec *v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v)
            return NULL;
        p->v = v;
        p->cap = cap;
    }
    rec *r = &p->v[p->n++];
    memset(r, 0, sizeof *r);
    return r;
}

static int load_one(void *ud, int64_t id, int64_t ts, const char *text)
{
    (void)ts;
    brain_prefs *p = ud;
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        log_warn("brain: stored preference %lld is not JSON: skipped", (long long)id);
        json_decref(o);
        return 0;
    }
    rec *r = rec_add(p);
    if (!r) {
        json_decref(o);
        return -ENOMEM;
    }
    r->id = id;
    str_of(r->sig, sizeof r->sig, o, "signature");
    str_of(r->service, sizeof r->service, o, "service");
    str_of(r->action, sizeof r->action, o, "action");
    str_of(r->edit, sizeof r->edit, o, "edit");
    str_of(r->who, sizeof r->who, o, "who");
    r->approved = (int)json_integer_value(json_object_get(o, "approved"));
    r->rejected = (int)json_integer_value(json_object_get(o, "rejected"));
    r->edited = (int)json_integer_value(json_object_get(o, "edited"));
    r->first_ms = json_integer_value(json_object_get(o, "first_ms"));
    r->last_ms = json_integer_value(json_object_get(o, "last_ms"));
    r->approve_ms = json_integer_value(json_object_get(o, "approve_ms"));
    r->reject_ms = json_integer_value(json_object_get(o, "reject_ms"));
    r->changed = (int)json_integer_value(json_object_get(o, "changed"));
    r->changed_ms = json_integer_value(json_object_get(o, "changed_ms"));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(o, "approvals"), i, t) {
        if (r->ntimes < BRAIN_PREFS_TIMES)
            r->times[r->ntimes++] = json_integer_value(t);
    }
    if (id >= p->next_id)
        p->next_id = id + 1;
    json_decref(o);
    return 0;
}

int brain_prefs_new(mem_t *mem, const core_config *cfg, brain_prefs **out, char *err, size_t errlen)
{
    brain_prefs *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    int rc = brain_prefs_cfg_parse(cfg, &p->cfg, err, errlen);
    p->mem = mem;
    p->next_id = 1;
    pthread_mutex_init(&p->lock, NULL);
    if (!rc && mem)
        rc = mem_pref_load(mem, load_one, p, err, errlen);
    if (rc) {
        brain_prefs_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

int brain_prefs_reconfigure(brain_prefs *p, const core_config *cfg, char *err, size_t errlen)
{
    brain_prefs_cfg c;
    int rc = brain_prefs_cfg_parse(cfg, &c, err, errlen);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->lock);
    p->cfg = c;
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void brain_prefs_free(brain_prefs *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p->v);
    free(p);
}

/* ---- rules in force ------------------------------------------------------------------- */

static bool rejecting(const brain_prefs *p, const rec *r)
{
    return r->rejected >= p->cfg.reject_after && r->reject_ms >= r->approve_ms;
}

static bool editing(const brain_prefs *p, const rec *r)
{
    return r->edit[0] && !rejecting(p, r);
}

static rec *rec_find(brain_prefs *p, const char *sig, const char *service, const char *action)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->v[i].sig, sig) && !strcmp(p->v[i].service, service) && !strcmp(p->v[i].action, action))
            return &p->v[i];
    return NULL;
}

static bool never(const brain_prefs *p, const char *service)
{
    for (int i = 0; i < p->cfg.nnever; i++)
        if (!strcmp(p->cfg.never[i], service))
            return true;
    return false;
}

/* Signatures whose proposals for service are rejected now. */
static int rejected_sigs(const brain_prefs *p, const char *service)
{
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        const rec *r = &p->v[i];
        if (strcmp(r->service, service) || !rejecting(p, r))
            continue;
        bool seen = false;
        for (int k = 0; k < i && !seen; k++)
            seen = !strcmp(p->v[k].service, service) && rejecting(p, &p->v[k]) && !strcmp(p->v[k].sig, r->sig);
        n += !seen;
    }
    return n;
}

static bool untouchable(const brain_prefs *p, const char *service)
{
    return p->cfg.untouchable_after > 0 && rejected_sigs(p, service) >= p->cfg.untouchable_after;
}

static bool is_restart(const char *action)
{
    return !strncmp(action, "restart", 7) && (!action[7] || action[7] == ' ');
}

/* The weekly range the restarts of service were approved in, when they all
 * were (at least window_after of them, within 6 hours of a day). */
static bool learned_window(const brain_prefs *p, const char *service, brain_window *w)
{
    if (p->cfg.window_after <= 0)
        return false;
    int n = 0, lo = 24 * 60, hi = -1;
    uint8_t days = 0;
    for (int i = 0; i < p->n; i++) {
        const rec *r = &p->v[i];
        if (strcmp(r->service, service) || !is_restart(r->action))
            continue;
        for (int k = 0; k < r->ntimes; k++) {
            int wday, minute;
            local_of(r->times[k], &wday, &minute);
            days |= (uint8_t)(1u << wday);
            lo = minute / 60 * 60 < lo ? minute / 60 * 60 : lo;
            hi = minute / 60 * 60 > hi ? minute / 60 * 60 : hi;
            n++;
        }
    }
    if (n < p->cfg.window_after || hi - lo >= 6 * 60)
        return false;
    *w = (brain_window){.days = days, .from_min = lo, .to_min = hi + 60};
    return true;
}

/* Disruptive actions wait for a maintenance window. */
static bool disruptive(const char *action)
{
    static const char *const k[] = {"restart", "stop", "signal", "freeze", "kill"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        size_t l = strlen(k[i]);
        if (!strncmp(action, k[i], l) && (!action[l] || action[l] == ' '))
            return true;
    }
    return false;
}

static void count(brain_prefs *p, const char *id, int64_t now_ms)
{
    counter *c = NULL;
    for (int i = 0; i < p->ncnt && !c; i++)
        if (!strcmp(p->cnt[i].id, id))
            c = &p->cnt[i];
    if (!c && p->ncnt < PREFS_COUNTERS) {
        c = &p->cnt[p->ncnt++];
        snprintf(c->id, sizeof c->id, "%s", id);
    }
    if (c) {
        c->n++;
        c->ms = now_ms;
    }
}

static const counter *counted(const brain_prefs *p, const char *id)
{
    for (int i = 0; i < p->ncnt; i++)
        if (!strcmp(p->cnt[i].id, id))
            return &p->cnt[i];
    return NULL;
}

/* ---- learning ------------------------------------------------------------------------- */

int brain_prefs_learn(brain_prefs *p, const char *sig, const char *service, const char *action, int verdict,
                      const char *edit, const char *who, int64_t ts_ms)
{
    if (!p || !sig || !*sig || !service || !action || !*action || (verdict == BRAIN_PREF_EDIT && (!edit || !*edit)))
        return -EINVAL;
    pthread_mutex_lock(&p->lock);
    rec *r = rec_find(p, sig, service, action);
    if (!r && (r = rec_add(p)) != NULL) {
        r->id = p->next_id++;
        snprintf(r->sig, sizeof r->sig, "%s", sig);
        snprintf(r->service, sizeof r->service, "%s", service);
        snprintf(r->action, sizeof r->action, "%s", action);
        r->first_ms = ts_ms;
    }
    if (!r) {
        pthread_mutex_unlock(&p->lock);
        return -ENOMEM;
    }
    r->last_ms = ts_ms;
    snprintf(r->who, sizeof r->who, "%s", who ? who : "");
    if (verdict == BRAIN_PREF_REJECT) {
        r->rejected++;
        r->reject_ms = ts_ms;
    } else {
        if (verdict == BRAIN_PREF_EDIT) {
            r->edited++;
            snprintf(r->edit, sizeof r->edit, "%s", edit);
        } else {
            r->approved++; /* an edit holds until a newer edit or `ippoc prefs forget` */
        }
        r->approve_ms = ts_ms;
        if (r->ntimes == BRAIN_PREFS_TIMES) {
            memmove(r->times, r->times + 1, sizeof r->times - sizeof r->times[0]);
            r->ntimes--;
        }
        r->times[r->ntimes++] = ts_ms;
    }
    save(p, r);
    log_info("brain: learned: %s '%s' of %s for %s%s%s (by %s)",
             verdict == BRAIN_PREF_REJECT ? "rejected" : verdict == BRAIN_PREF_EDIT ? "edited" : "approved", action,
             service, sig, verdict == BRAIN_PREF_EDIT ? " into " : "", verdict == BRAIN_PREF_EDIT ? edit : "",
             who && *who ? who : "?");
    pthread_mutex_unlock(&p->lock);
    return 0;
}

/* The incident a pending action was proposed for: "incident N:" in its why. */
static uint64_t incident_of(const char *why)
{
    const char *s = why ? strstr(why, "incident ") : NULL;
    return s ? strtoull(s + 9, NULL, 10) : 0;
}

/* "FAULT COMPONENT" of the diagnosis attached to heal's incident id. */
static bool signature_of(heal_engine *heal, uint64_t id, char *sig, size_t n)
{
    char *t = heal && id ? heal_engine_incident_json(heal, id) : NULL;
    json_t *o = t ? json_loads(t, 0, NULL) : NULL;
    free(t);
    json_t *dg = json_object_get(o, "diagnosis");
    const char *fault = json_string_value(json_object_get(dg, "fault_type"));
    const char *comp = json_string_value(json_object_get(dg, "component"));
    bool ok = fault && comp && *comp;
    if (ok)
        snprintf(sig, n, "%s %s", fault, comp);
    json_decref(o);
    return ok;
}

/* "approved by WHO: ...", "approved by WHO (edit of ...): ...", "rejected
 * by WHO" -> WHO (which may hold a ':', as in "cli:alice") */
static void who_of(const char *s, const char *lead, char *who, size_t n)
{
    who[0] = 0;
    if (!s || strncmp(s, lead, strlen(lead)) != 0)
        return;
    s += strlen(lead);
    const char *a = strstr(s, ": "), *b = strstr(s, " (");
    const char *e = a && (!b || a < b) ? a : b ? b : s + strlen(s);
    snprintf(who, n, "%.*s", (int)(e - s), s);
}

void brain_prefs_event(brain_prefs *p, heal_engine *heal, const mem_event *ev)
{
    bool rej = !strcmp(ev->type, "heal.rejected");
    if (!p || (!rej && strcmp(ev->type, "heal.action") != 0) || !ev->payload)
        return;
    json_t *o = json_loads(ev->payload, 0, NULL);
    const char *why = json_string_value(json_object_get(o, "why"));
    const char *service = json_string_value(json_object_get(o, "service"));
    const char *action = json_string_value(json_object_get(o, "action"));
    const char *edit_of = json_string_value(json_object_get(o, "edit_of"));
    char who[64], sig[96];
    if (rej)
        who_of(json_string_value(json_object_get(o, "reason")), "rejected by ", who, sizeof who);
    else
        who_of(why, "approved by ", who, sizeof who);
    if (service && action && (rej || who[0]) && signature_of(heal, incident_of(why), sig, sizeof sig)) {
        if (rej)
            brain_prefs_learn(p, sig, service, action, BRAIN_PREF_REJECT, NULL, who, ev->ts);
        else if (edit_of && *edit_of)
            brain_prefs_learn(p, sig, service, edit_of, BRAIN_PREF_EDIT, action, who, ev->ts);
        else
            brain_prefs_learn(p, sig, service, action, BRAIN_PREF_APPROVE, NULL, who, ev->ts);
    }
    json_decref(o);
}

/* ---- applying ------------------------------------------------------------------------- */

static void note(json_t *prefs, const char *id, const char *kind, const char *rule, const char *effect)
{
    size_t i;
    json_t *x;
    json_array_foreach(prefs, i, x) {
        if (!strcmp(json_string_value(json_object_get(x, "id")), id) &&
            !strcmp(json_string_value(json_object_get(x, "effect")), effect))
            return;
    }
    json_array_append_new(prefs, json_pack("{s:s, s:s, s:s, s:s}", "id", id, "kind", kind, "rule", rule, "effect",
                                           effect));
}

static void why_add(json_t *a, const char *id, const char *effect)
{
    const char *w = json_string_value(json_object_get(a, "why"));
    char buf[600];
    snprintf(buf, sizeof buf, "%s (preference %s: %s)", w ? w : "", id, effect);
    json_object_set_new(a, "why", json_string(buf));
}

/* The action's text as heal writes it (what heal's events carry). */
static void canon(const char *text, const char *service, char *out, size_t n)
{
    heal_action a;
    char err[200];
    if (heal_action_parse_text(text, service, &a, err, sizeof err) == 0)
        heal_action_format(&a, out, n);
    else
        snprintf(out, n, "%s", text);
}

/* The whole service is off limits: configured never, or learned untouchable. */
static bool hands_off(brain_prefs *p, const char *svc, json_t *prefs, int64_t now_ms)
{
    char id[96], rule[200], eff[200];
    if (never(p, svc)) {
        snprintf(id, sizeof id, "never:%s", svc);
        snprintf(rule, sizeof rule, "[prefs] never = %s", svc);
        snprintf(eff, sizeof eff, "nothing proposed for %s: it is never touched", svc);
        note(prefs, id, "never", rule, eff);
        count(p, id, now_ms);
        return true;
    }
    if (untouchable(p, svc)) {
        snprintf(id, sizeof id, "untouchable:%s", svc);
        snprintf(rule, sizeof rule, "proposals for %s were rejected for %d signatures", svc, rejected_sigs(p, svc));
        snprintf(eff, sizeof eff, "nothing proposed for %s: do not touch", svc);
        note(prefs, id, "untouchable", rule, eff);
        count(p, id, now_ms);
        return true;
    }
    return false;
}

/* Rejected: NULL (dropped); edited: the replacement; else a itself. */
static json_t *learned_rule(brain_prefs *p, const char *sig, const char *svc, json_t *a, json_t *prefs,
                            int64_t now_ms)
{
    char text[256], id[32], rule[600], eff[600];
    canon(json_string_value(json_object_get(a, "action")), svc, text, sizeof text);
    rec *r = rec_find(p, sig, svc, text);
    if (!r || (!rejecting(p, r) && !editing(p, r)))
        return a;
    snprintf(id, sizeof id, "%lld", (long long)r->id);
    r->changed++;
    r->changed_ms = now_ms;
    save(p, r);
    if (rejecting(p, r)) {
        snprintf(rule, sizeof rule, "'%s' of %s was rejected for %s %d time%s (last by %s)", text, svc, sig,
                 r->rejected, r->rejected == 1 ? "" : "s", r->who[0] ? r->who : "?");
        snprintf(eff, sizeof eff, "'%s' not proposed", text);
        note(prefs, id, "reject", rule, eff);
        return NULL;
    }
    snprintf(rule, sizeof rule, "'%s' of %s for %s was edited into '%s' (by %s)", text, svc, sig, r->edit,
             r->who[0] ? r->who : "?");
    snprintf(eff, sizeof eff, "'%s' proposed instead of '%s'", r->edit, text);
    note(prefs, id, "edit", rule, eff);
    json_t *b = json_deep_copy(a);
    json_object_set_new(b, "action", json_string(r->edit));
    json_object_set_new(b, "edited_from", json_string(text));
    why_add(b, id, eff);
    return b;
}

/* Outside a maintenance window (configured, or learned for the service's
 * restarts): true, with the preference noted. */
static bool outside_window(brain_prefs *p, const char *svc, const char *text, json_t *prefs, int64_t now_ms,
                           char *id, size_t idlen, char *shortwhy, size_t efflen)
{
    char rule[300];
    if (p->cfg.nmaint && disruptive(text) && !brain_window_has_ms(p->cfg.maint, p->cfg.nmaint, now_ms)) {
        snprintf(id, idlen, "maintenance");
        snprintf(rule, sizeof rule, "[prefs] maintenance = %s", p->cfg.maint_text);
        char eff[400];
        snprintf(eff, sizeof eff, "'%s' queued for approval: outside the maintenance window", text);
        snprintf(shortwhy, efflen, "outside the maintenance window, a person approves");
        note(prefs, id, "maintenance", rule, eff);
        count(p, id, now_ms);
        return true;
    }
    brain_window w;
    if (is_restart(text) && learned_window(p, svc, &w) && !brain_window_has_ms(&w, 1, now_ms)) {
        char ws[64];
        brain_window_format(&w, ws, sizeof ws);
        snprintf(id, idlen, "window:%s", svc);
        snprintf(rule, sizeof rule, "restarts of %s were approved only within %s", svc, ws);
        char eff[400];
        snprintf(eff, sizeof eff, "'%s' queued for approval: outside %s", text, ws);
        snprintf(shortwhy, efflen, "outside %s, a person approves", ws);
        note(prefs, id, "window", rule, eff);
        count(p, id, now_ms);
        return true;
    }
    return false;
}

json_t *brain_prefs_apply(brain_prefs *p, const json_t *diagnosis, int64_t now_ms, bool *ask)
{
    *ask = false;
    json_t *dg = json_deep_copy(diagnosis);
    if (!p || !dg)
        return dg;
    const char *fault = json_string_value(json_object_get(dg, "fault_type"));
    const char *comp = json_string_value(json_object_get(dg, "component"));
    json_t *in = json_object_get(dg, "proposed_actions");
    if (!fault || !comp || !json_array_size(in))
        return dg;
    char sig[96];
    snprintf(sig, sizeof sig, "%s %s", fault, comp);
    json_t *prefs = json_array(), *out = json_array();
    char ask_id[96] = "", ask_why[300] = "";
    pthread_mutex_lock(&p->lock);
    size_t i;
    json_t *a;
    json_array_foreach(in, i, a) {
        const char *svc = json_string_value(json_object_get(a, "service"));
        svc = svc && *svc ? svc : comp;
        if (*svc && hands_off(p, svc, prefs, now_ms))
            continue;
        json_t *b = learned_rule(p, sig, svc, a, prefs, now_ms);
        if (!b)
            continue;
        char text[256], id[96], eff[300];
        canon(json_string_value(json_object_get(b, "action")), svc, text, sizeof text);
        if (outside_window(p, svc, text, prefs, now_ms, id, sizeof id, eff, sizeof eff) && !*ask) {
            *ask = true; /* the whole proposal waits: each action's why says so below */
            snprintf(ask_id, sizeof ask_id, "%s", id);
            snprintf(ask_why, sizeof ask_why, "%s", eff);
        }
        json_array_append(out, b);
        if (b != a)
            json_decref(b);
    }
    pthread_mutex_unlock(&p->lock);
    json_t *x;
    json_array_foreach(out, i, a) {
        if (*ask) {
            json_t *c = json_deep_copy(a);
            why_add(c, ask_id, ask_why);
            json_array_set_new(out, i, c);
        }
    }
    json_array_foreach(prefs, i, x) { /* what was dropped is named in the why of what is left */
        if (strcmp(json_string_value(json_object_get(x, "kind")), "reject") != 0)
            continue;
        size_t k;
        json_array_foreach(out, k, a) {
            json_t *c = json_deep_copy(a);
            why_add(c, json_string_value(json_object_get(x, "id")), json_string_value(json_object_get(x, "effect")));
            json_array_set_new(out, k, c);
        }
    }
    if (json_array_size(prefs)) {
        json_object_set(dg, "proposed_actions", out);
        json_object_set(dg, "preferences", prefs);
    }
    json_decref(out);
    json_decref(prefs);
    return dg;
}

void brain_prefs_announce(mem_t *mem, uint64_t incident, const json_t *dg)
{
    const char *comp = json_string_value(json_object_get(dg, "component"));
    json_t *o = json_pack("{s:I, s:s, s:O, s:O}", "incident", (json_int_t)incident, "component", comp ? comp : "",
                          "preferences", json_object_get(dg, "preferences"), "proposed_actions",
                          json_object_get(dg, "proposed_actions"));
    char *t = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (t && mem)
        mem_event_add(mem, 0, "brain.preferences", "info", comp && *comp ? comp : "brain", t);
    free(t);
    json_decref(o);
}

/* ---- reading and forgetting ----------------------------------------------------------- */

static void add_counts(json_t *o, const counter *c)
{
    json_object_set_new(o, "changed", json_integer(c ? c->n : 0));
    json_object_set_new(o, "changed_ms", json_integer(c ? c->ms : 0));
}

static json_t *configured_json(const brain_prefs *p)
{
    json_t *a = json_array();
    char rule[300];
    if (p->cfg.nmaint) {
        json_t *o = json_pack("{s:s, s:s, s:s}", "id", "maintenance", "kind", "maintenance", "rule",
                              p->cfg.maint_text);
        json_t *w = json_array();
        for (int i = 0; i < p->cfg.nmaint; i++) {
            brain_window_format(&p->cfg.maint[i], rule, sizeof rule);
            json_array_append_new(w, json_string(rule));
        }
        json_object_set_new(o, "windows", w);
        add_counts(o, counted(p, "maintenance"));
        json_array_append_new(a, o);
    }
    for (int i = 0; i < p->cfg.nnever; i++) {
        char id[96];
        snprintf(id, sizeof id, "never:%s", p->cfg.never[i]);
        snprintf(rule, sizeof rule, "never touch %s", p->cfg.never[i]);
        json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "kind", "never", "service", p->cfg.never[i], "rule",
                              rule);
        add_counts(o, counted(p, id));
        json_array_append_new(a, o);
    }
    return a;
}

static void derived_json(const brain_prefs *p, json_t *a)
{
    for (int i = 0; i < p->n; i++) {
        const char *svc = p->v[i].service;
        bool first = true;
        for (int k = 0; k < i && first; k++)
            first = strcmp(p->v[k].service, svc) != 0;
        if (!first)
            continue;
        char id[96], rule[300];
        if (untouchable(p, svc)) {
            snprintf(id, sizeof id, "untouchable:%s", svc);
            snprintf(rule, sizeof rule, "do not touch %s: its proposals were rejected for %d signatures", svc,
                     rejected_sigs(p, svc));
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "id", id, "kind", "untouchable", "service", svc,
                                  "rule", rule, "in_force", 1);
            add_counts(o, counted(p, id));
            json_array_append_new(a, o);
        }
        brain_window w;
        if (learned_window(p, svc, &w)) {
            char ws[64];
            brain_window_format(&w, ws, sizeof ws);
            snprintf(id, sizeof id, "window:%s", svc);
            snprintf(rule, sizeof rule, "restarts of %s only within %s (as approved)", svc, ws);
            json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "id", id, "kind", "window", "service", svc,
                                  "rule", rule, "window", ws, "in_force", 1);
            add_counts(o, counted(p, id));
            json_array_append_new(a, o);
        }
    }
}

char *brain_prefs_dump(brain_prefs *p)
{
    if (!p)
        return strdup("{\"configured\":[],\"learned\":[]}");
    pthread_mutex_lock(&p->lock);
    json_t *learned = json_array();
    for (int i = 0; i < p->n; i++) {
        const rec *r = &p->v[i];
        json_t *o = rec_json(r);
        char id[32], rule[700];
        snprintf(id, sizeof id, "%lld", (long long)r->id);
        const char *kind = rejecting(p, r) ? "reject" : editing(p, r) ? "edit" : "approve";
        if (rejecting(p, r))
            snprintf(rule, sizeof rule, "do not propose '%s' of %s for %s", r->action, r->service, r->sig);
        else if (editing(p, r))
            snprintf(rule, sizeof rule, "propose '%s' instead of '%s' of %s for %s", r->edit, r->action, r->service,
                     r->sig);
        else
            snprintf(rule, sizeof rule, "'%s' of %s for %s is approved (%d/%d rejections needed to stop it)",
                     r->action, r->service, r->sig, r->rejected, p->cfg.reject_after);
        json_object_set_new(o, "id", json_string(id));
        json_object_set_new(o, "kind", json_string(kind));
        json_object_set_new(o, "rule", json_string(rule));
        json_object_set_new(o, "in_force", json_boolean(rejecting(p, r) || editing(p, r)));
        json_array_append_new(learned, o);
    }
    derived_json(p, learned);
    json_t *root = json_pack("{s:{s:i, s:i, s:i}, s:o, s:o}", "settings", "reject_after", p->cfg.reject_after,
                             "untouchable_after", p->cfg.untouchable_after, "window_after", p->cfg.window_after,
                             "configured", configured_json(p), "learned", learned);
    pthread_mutex_unlock(&p->lock);
    char *t = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return t;
}

static void rec_remove(brain_prefs *p, int i)
{
    if (p->mem)
        mem_pref_save(p->mem, p->v[i].id, 0, NULL);
    memmove(&p->v[i], &p->v[i + 1], (size_t)(p->n - i - 1) * sizeof *p->v);
    p->n--;
}

int brain_prefs_drop(brain_prefs *p, const char *id, char *err, size_t errlen)
{
    if (!p || !id || !*id) {
        snprintf(err, errlen, "no preference id");
        return -EINVAL;
    }
    if (!strcmp(id, "maintenance") || !strncmp(id, "never:", 6)) {
        snprintf(err, errlen, "preference '%.64s' is configured: change [prefs] in the configuration", id);
        return -EPERM;
    }
    int found = 0;
    pthread_mutex_lock(&p->lock);
    if (!strncmp(id, "untouchable:", 12) || !strncmp(id, "window:", 7)) {
        bool unt = id[0] == 'u';
        const char *svc = strchr(id, ':') + 1;
        for (int i = 0; i < p->n; i++) {
            rec *r = &p->v[i];
            if (strcmp(r->service, svc))
                continue;
            if (unt && rejecting(p, r)) { /* its rejections are forgotten */
                r->rejected = 0;
                found++;
                save(p, r);
            } else if (!unt && is_restart(r->action) && r->ntimes) {
                r->ntimes = 0; /* its approval times are forgotten */
                found++;
                save(p, r);
            }
        }
    } else {
        char *end;
        long long n = strtoll(id, &end, 10);
        for (int i = 0; !*end && i < p->n && !found; i++)
            if (p->v[i].id == n) {
                rec_remove(p, i);
                found = 1;
            }
    }
    pthread_mutex_unlock(&p->lock);
    if (!found) {
        snprintf(err, errlen, "no learned preference '%.64s' (see `ippoc prefs`)", id);
        return -ENOENT;
    }
    return 0;
}

/* ---- the brain's entry points (brain.h) ----------------------------------------------- */

char *brain_prefs_json(brain *b)
{
    return brain_prefs_dump(b ? brain_prefs_of(b) : NULL);
}

int brain_prefs_forget(brain *b, const char *id, char *err, size_t errlen)
{
    if (!b) {
        snprintf(err, errlen, "the brain is not running");
        return -ENOTSUP;
    }
    return brain_prefs_drop(brain_prefs_of(b), id, err, errlen);
}
