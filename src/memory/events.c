/* events.c: the append-only event log. Ids come from an in-memory counter
 * (continuing the stored high-water mark); the last MEM_EV_RING events stay
 * in a RAM ring that mem_events_wait serves (SSE streams block there); rows
 * reach SQLite through the writer. A query reads the store up to the last
 * committed id and adds the still-queued events from the ring, so it never
 * misses an event that mem_event_add already returned. The committed mark
 * only moves when the writer's transaction holding the events commits: while
 * the disk refuses writes (full, read-only) the writer keeps retrying them
 * (writer.c) and queries keep serving them from the ring (the newest
 * MEM_EV_RING of them). */
#include "memory/mem_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sev_names[] = {"debug", "info", "warning", "error", "critical"};
#define NSEV 5

int mem_severity_rank(const char *sev)
{
    for (int i = 0; sev && i < NSEV; i++)
        if (!strcmp(sev, sev_names[i]))
            return i;
    return -1;
}

/* [a-z0-9._-]{1,63}, optionally ending in '*' when `pattern`. */
static bool valid_type(const char *t, bool pattern)
{
    size_t n = strlen(t);
    if (pattern && n && t[n - 1] == '*')
        n--;
    if (n > 63 || (n == 0 && !pattern))
        return false;
    return strspn(t, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static bool valid_payload(const char *p)
{
    if (strlen(p) > MEM_EVENT_PAYLOAD_MAX)
        return false;
    json_t *j = json_loads(p, JSON_DECODE_ANY, NULL);
    bool ok = j && json_is_object(j);
    json_decref(j);
    return ok;
}

int mem_events_init(mem_t *m)
{
    int rc = mem_cond_init(&m->evcond);
    if (rc)
        return rc;
    pthread_mutex_init(&m->evlock, NULL);
    m->evring = calloc(MEM_EV_RING, sizeof *m->evring);
    if (!m->evring) {
        pthread_cond_destroy(&m->evcond);
        pthread_mutex_destroy(&m->evlock);
        return -ENOMEM;
    }
    return 0;
}

void mem_events_fini(mem_t *m)
{
    if (!m->evring)
        return;
    for (int i = 0; i < MEM_EV_RING; i++)
        free(m->evring[i].text);
    free(m->evring);
    m->evring = NULL;
    pthread_cond_destroy(&m->evcond);
    pthread_mutex_destroy(&m->evlock);
}

void mem_events_committed(mem_t *m, int64_t id)
{
    pthread_mutex_lock(&m->evlock);
    if (id > m->ev_committed)
        m->ev_committed = id;
    pthread_mutex_unlock(&m->evlock);
}

/* Builds the writer job and the ring text for one event. */
static int make_event(int64_t ts, const char *type, int sev, const char *source,
                      const char *payload, mem_job **jo, char **texto)
{
    size_t a = strlen(type) + 1, b = strlen(source) + 1, c = strlen(payload) + 1;
    mem_job *j = calloc(1, sizeof *j + a + b + c);
    char *text = malloc(a + b + c);
    if (!j || !text) {
        free(j);
        free(text);
        return -ENOMEM;
    }
    memcpy(text, type, a);
    memcpy(text + a, source, b);
    memcpy(text + a + b, payload, c);
    memcpy(j->data, text, a + b + c);
    j->kind = MEM_JOB_EVENT;
    j->u.ev.ts = ts;
    j->u.ev.type = j->data;
    j->u.ev.severity = sev_names[sev];
    j->u.ev.source = j->data + a;
    j->u.ev.payload = j->data + a + b;
    *jo = j;
    *texto = text;
    return 0;
}

int64_t mem_event_add(mem_t *m, int64_t ts_ms, const char *type, const char *severity,
                      const char *source, const char *payload_json)
{
    source = source ? source : "";
    payload_json = payload_json ? payload_json : "{}";
    int sev = mem_severity_rank(severity);
    if (!m || !type || !valid_type(type, false) || sev < 0 || ts_ms < 0 ||
        strnlen(source, 128) > 127 || !valid_payload(payload_json))
        return -EINVAL;
    if (!ts_ms)
        ts_ms = core_now_ms();
    mem_job *j;
    char *text;
    int rc = make_event(ts_ms, type, sev, source, payload_json, &j, &text);
    if (rc)
        return rc;
    pthread_mutex_lock(&m->evlock);
    int64_t id = m->ev_last + 1;
    j->u.ev.id = id;
    rc = mem_enqueue(m, j, false, NULL);
    if (!rc) {
        mem_evslot *s = &m->evring[id % MEM_EV_RING];
        free(s->text);
        *s = (mem_evslot){.id = id, .ts = ts_ms, .sev = sev, .text = text};
        m->ev_last = id;
        pthread_cond_broadcast(&m->evcond);
    }
    pthread_mutex_unlock(&m->evlock);
    if (rc) {
        free(text);
        return rc;
    }
    return id;
}

static int copy_slot(const mem_evslot *s, mem_event *e)
{
    const char *type = s->text, *source = type + strlen(type) + 1;
    const char *payload = source + strlen(source) + 1;
    memset(e, 0, sizeof *e);
    e->id = s->id;
    e->ts = s->ts;
    core_sncpy(e->type, sizeof e->type, type);
    core_sncpy(e->severity, sizeof e->severity, sev_names[s->sev]);
    core_sncpy(e->source, sizeof e->source, source);
    e->payload = strdup(payload);
    return e->payload ? 0 : -ENOMEM;
}

void mem_events_free(mem_event *ev, size_t n)
{
    for (size_t i = 0; ev && i < n; i++)
        free(ev[i].payload);
    free(ev);
}

int64_t mem_last_event_id(mem_t *m)
{
    if (!m)
        return 0;
    pthread_mutex_lock(&m->evlock);
    int64_t id = m->ev_last;
    pthread_mutex_unlock(&m->evlock);
    return id;
}

void mem_wake_waiters(mem_t *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->evlock);
    m->wake_gen++;
    pthread_cond_broadcast(&m->evcond);
    pthread_mutex_unlock(&m->evlock);
}

/* Copies ring events with id > after_id (oldest first); caller holds evlock. */
static int copy_after(mem_t *m, int64_t after_id, mem_event **out, size_t *n)
{
    int64_t lo = after_id + 1, hi = m->ev_last;
    if (lo < hi - MEM_EV_RING + 1)
        lo = hi - MEM_EV_RING + 1;
    if (hi < lo)
        return 0;
    mem_event *v = malloc(sizeof *v * (size_t)(hi - lo + 1));
    if (!v)
        return -ENOMEM;
    size_t k = 0;
    for (int64_t id = lo; id <= hi; id++) {
        const mem_evslot *s = &m->evring[id % MEM_EV_RING];
        if (s->id != id || !s->text)
            continue;
        if (copy_slot(s, &v[k])) {
            mem_events_free(v, k);
            return -ENOMEM;
        }
        k++;
    }
    if (!k) {
        free(v);
        return 0;
    }
    *out = v;
    *n = k;
    return (int)k;
}

int mem_events_wait(mem_t *m, int64_t after_id, int timeout_ms, mem_event **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!m)
        return -EINVAL;
    struct timespec dl;
    mem_deadline(&dl, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&m->evlock);
    /* only a wake-up after this point releases this waiter */
    uint64_t gen = m->wake_gen;
    int rc = 0;
    m->ev_waiters++;
    while (m->wake_gen == gen && m->ev_last <= after_id && timeout_ms > 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&m->evcond, &m->evlock, &dl);
    m->ev_waiters--;
    rc = m->wake_gen != gen ? 0 : copy_after(m, after_id, out, n);
    pthread_mutex_unlock(&m->evlock);
    return rc;
}

/* ---- query --------------------------------------------------------------------- */

typedef struct evfilter {
    int64_t from, to, after_id;
    const char *type;
    size_t prefix;  /* > 0: type is a prefix of that length */
    bool any_type;
    int min_sev;
    int limit;
    bool asc;
} evfilter;

static int make_filter(const mem_event_query *q, evfilter *f, char *err, size_t errlen)
{
    if (!q)
        return core_err(err, errlen, -EINVAL, "no query");
    *f = (evfilter){.from = q->from, .to = q->to, .after_id = q->after_id, .type = q->type,
                    .limit = q->limit ? q->limit : 100, .asc = q->ascending};
    if (q->from < 0 || q->to < 0 || (q->from && q->to && q->to < q->from))
        return core_err(err, errlen, -EINVAL, "bad time range: from %lld, to %lld",
                       (long long)q->from, (long long)q->to);
    if (q->limit < 0 || q->limit > 10000)
        return core_err(err, errlen, -EINVAL, "limit %d: must be 1..10000", q->limit);
    f->min_sev = q->severity ? mem_severity_rank(q->severity) : 0;
    if (f->min_sev < 0)
        return core_err(err, errlen, -EINVAL, "unknown severity '%.32s' (debug, info, warning, "
                       "error, critical)", q->severity);
    if (q->type && !valid_type(q->type, true))
        return core_err(err, errlen, -EINVAL, "bad event type '%.80s': [a-z0-9._-], 1..63 chars, "
                       "optionally ending in '*'", q->type);
    size_t tl = q->type ? strlen(q->type) : 0;
    f->any_type = !q->type || !strcmp(q->type, "*");
    if (!f->any_type && q->type[tl - 1] == '*')
        f->prefix = tl - 1;
    return 0;
}

static bool slot_matches(const evfilter *f, const mem_evslot *s)
{
    if (s->id <= f->after_id || s->sev < f->min_sev || (f->from && s->ts < f->from) ||
        (f->to && s->ts > f->to))
        return false;
    if (f->any_type)
        return true;
    return f->prefix ? !strncmp(s->text, f->type, f->prefix) : !strcmp(s->text, f->type);
}

/* Events queued but not yet committed that match, in ascending id order. */
static int pending_events(mem_t *m, const evfilter *f, mem_event **out, size_t *n, int64_t *committed)
{
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&m->evlock);
    *committed = m->ev_committed;
    /* the mark stays behind while the disk refuses writes: only the ring
     * can hold what is newer */
    int64_t lo = m->ev_committed + 1;
    if (lo < m->ev_last - MEM_EV_RING + 1)
        lo = m->ev_last - MEM_EV_RING + 1;
    size_t cap = m->ev_last >= lo ? (size_t)(m->ev_last - lo + 1) : 0, k = 0;
    mem_event *v = cap ? malloc(sizeof *v * cap) : NULL;
    int rc = cap && !v ? -ENOMEM : 0;
    for (int64_t id = lo; !rc && id <= m->ev_last; id++) {
        const mem_evslot *s = &m->evring[id % MEM_EV_RING];
        if (s->id != id || !s->text || !slot_matches(f, s))
            continue;
        if ((rc = copy_slot(s, &v[k])) == 0)
            k++;
    }
    pthread_mutex_unlock(&m->evlock);
    if (rc) {
        mem_events_free(v, k);
        return rc;
    }
    *out = v;
    *n = k;
    return 0;
}

static void build_sql(const evfilter *f, char *sql, size_t n)
{
    size_t k = (size_t)snprintf(sql, n, "SELECT id, ts, type, severity, source, payload FROM events "
                                "WHERE id > ?1 AND id <= ?2");
    if (f->from)
        k += (size_t)snprintf(sql + k, n - k, " AND ts >= ?3");
    if (f->to)
        k += (size_t)snprintf(sql + k, n - k, " AND ts <= ?4");
    if (!f->any_type)
        k += (size_t)snprintf(sql + k, n - k, f->prefix ? " AND type >= ?5 AND type < ?6" : " AND type = ?5");
    if (f->min_sev > 0) {
        k += (size_t)snprintf(sql + k, n - k, " AND severity IN (");
        for (int i = f->min_sev; i < NSEV; i++)
            k += (size_t)snprintf(sql + k, n - k, "%s'%s'", i > f->min_sev ? "," : "", sev_names[i]);
        k += (size_t)snprintf(sql + k, n - k, ")");
    }
    snprintf(sql + k, n - k, " ORDER BY id %s LIMIT ?7", f->asc ? "ASC" : "DESC");
}

static void row_event(sqlite3_stmt *st, mem_event *e)
{
    const char *s;
    memset(e, 0, sizeof *e);
    e->id = sqlite3_column_int64(st, 0);
    e->ts = sqlite3_column_int64(st, 1);
    s = (const char *)sqlite3_column_text(st, 2);
    core_sncpy(e->type, sizeof e->type, s ? s : "");
    s = (const char *)sqlite3_column_text(st, 3);
    core_sncpy(e->severity, sizeof e->severity, s ? s : "");
    s = (const char *)sqlite3_column_text(st, 4);
    core_sncpy(e->source, sizeof e->source, s ? s : "");
    s = (const char *)sqlite3_column_text(st, 5);
    e->payload = strdup(s ? s : "{}");
}

/* Reads up to f->limit committed events into v (capacity f->limit). */
static int stored_events(mem_t *m, const evfilter *f, int64_t committed, mem_event *v, size_t *n,
                         char *err, size_t errlen)
{
    char sql[512];
    sqlite3_stmt *st;
    build_sql(f, sql, sizeof sql);
    pthread_mutex_lock(&m->rlock);
    int rc = sqlite3_prepare_v2(m->rdb, sql, -1, &st, NULL);
    if (rc) {
        rc = core_err(err, errlen, -EIO, "%s: events: %s", m->path, sqlite3_errmsg(m->rdb));
        pthread_mutex_unlock(&m->rlock);
        return rc;
    }
    sqlite3_bind_int64(st, 1, f->after_id);
    sqlite3_bind_int64(st, 2, committed);
    sqlite3_bind_int64(st, 3, f->from);
    sqlite3_bind_int64(st, 4, f->to);
    char upper[80]; /* every type starting with the prefix sorts below prefix + 0x7f */
    snprintf(upper, sizeof upper, "%.*s\x7f", (int)f->prefix, f->type ? f->type : "");
    sqlite3_bind_text(st, 5, f->type ? f->type : "", f->prefix ? (int)f->prefix : -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, upper, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 7, f->limit);
    size_t k = 0;
    while (k < (size_t)f->limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        row_event(st, &v[k]);
        if (!v[k].payload) {
            rc = SQLITE_NOMEM;
            break;
        }
        k++;
    }
    *n = k;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE)
        rc = 0;
    else
        rc = core_err(err, errlen, rc == SQLITE_NOMEM ? -ENOMEM : -EIO, "%s: events: %s", m->path,
                     sqlite3_errstr(rc));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&m->rlock);
    return rc;
}

/* Merges pending (ascending, all newer than the stored ones) into v. */
static size_t merge_pending(const evfilter *f, mem_event *v, size_t nv, mem_event *p, size_t np)
{
    size_t lim = (size_t)f->limit, take;
    if (f->asc) {
        take = nv < lim ? lim - nv : 0;
        take = take < np ? take : np;
        if (take)
            memcpy(v + nv, p, sizeof *p * take);
    } else {
        take = np < lim ? np : lim;
        size_t keep = nv < lim - take ? nv : lim - take;
        for (size_t i = keep; i < nv; i++)
            free(v[i].payload);
        memmove(v + take, v, sizeof *v * keep);
        for (size_t i = 0; i < take; i++)
            v[i] = p[np - 1 - i];
        nv = keep;
        /* p[0 .. np-take) are dropped below */
        for (size_t i = 0; i < np - take; i++)
            free(p[i].payload);
        free(p);
        return nv + take;
    }
    for (size_t i = take; i < np; i++)
        free(p[i].payload);
    free(p);
    return nv + take;
}

int mem_events_query(mem_t *m, const mem_event_query *q, mem_event **out, size_t *n,
                     char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    evfilter f = {0};
    if (!m)
        return core_err(err, errlen, -EINVAL, "no memory");
    int rc = make_filter(q, &f, err, errlen);
    if (rc)
        return rc;
    mem_event *p, *v = malloc(sizeof *v * (size_t)f.limit);
    size_t np, nv = 0;
    int64_t committed;
    if (!v)
        return core_err(err, errlen, -ENOMEM, "out of memory");
    rc = pending_events(m, &f, &p, &np, &committed);
    if (!rc && (rc = stored_events(m, &f, committed, v, &nv, err, errlen)))
        mem_events_free(p, np);
    if (rc) {
        mem_events_free(v, nv);
        return rc == -ENOMEM ? core_err(err, errlen, rc, "out of memory") : rc;
    }
    *n = merge_pending(&f, v, nv, p, np);
    *out = v;
    return 0;
}
