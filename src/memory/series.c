/* series.c: the series registry: validation of names and labels, ids stable
 * across restarts (persisted by the writer), the (name, labels) hash, and the
 * copy-out snapshot. Ids index the per-series arrays directly. */
#include "memory/mem_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_key(const char *name, const char *labels)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const unsigned char *p = (const unsigned char *)labels; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static int hfind(const mem_t *m, const char *name, const char *labels)
{
    if (!m->htab)
        return -1;
    for (uint32_t i = hash_key(name, labels) & m->hmask;; i = (i + 1) & m->hmask) {
        int id = m->htab[i];
        if (id < 0)
            return -1;
        if (!strcmp(m->ser[id]->name, name) && !strcmp(m->ser[id]->labels, labels))
            return id;
    }
}

static void hput(mem_t *m, int id)
{
    uint32_t i = hash_key(m->ser[id]->name, m->ser[id]->labels) & m->hmask;
    while (m->htab[i] >= 0)
        i = (i + 1) & m->hmask;
    m->htab[i] = id;
}

/* Keeps the table at most half full. */
static int hreserve(mem_t *m, int n)
{
    uint32_t size = m->htab ? m->hmask + 1 : 0;
    if ((uint32_t)n * 2 < size)
        return 0;
    uint32_t ns = size ? size * 2 : 256;
    while (ns <= (uint32_t)n * 2)
        ns *= 2;
    int32_t *t = malloc(sizeof *t * ns);
    if (!t)
        return -ENOMEM;
    memset(t, 0xff, sizeof *t * ns);
    free(m->htab);
    m->htab = t;
    m->hmask = ns - 1;
    for (int id = 0; id < m->next_id; id++)
        if (m->ser[id])
            hput(m, id);
    return 0;
}

static int grow_arrays(mem_t *m, int need)
{
    if (need <= m->cap)
        return 0;
    int nc = m->cap ? m->cap : 64;
    while (nc < need)
        nc *= 2;
    mem_ser **s = realloc(m->ser, sizeof *s * (size_t)nc);
    if (!s)
        return -ENOMEM;
    m->ser = s;
    float *c = realloc(m->cur, sizeof *c * (size_t)nc);
    if (!c)
        return -ENOMEM;
    m->cur = c;
    for (int i = m->cap; i < nc; i++) {
        s[i] = NULL;
        c[i] = NAN;
    }
    m->cap = nc;
    return 0;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MEM_NAME_MAX)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:") == n;
}

static bool valid_text(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return false;
    return true;
}

/* Adds a series with a given id (load at open, or a new one). Caller holds
 * the lock (or is mem_open). */
int mem_series_insert(mem_t *m, int id, const char *name, const char *labels,
                      const char *unit, const char *help, int kind)
{
    if (id < 0 || id >= MEM_MAX_SERIES)
        return -ERANGE;
    if ((id < m->next_id && m->ser[id]) || hfind(m, name, labels) >= 0)
        return -EEXIST;
    int rc = grow_arrays(m, id + 1);
    if (!rc)
        rc = hreserve(m, m->nser + 1);
    if (rc)
        return rc;
    size_t nl = strlen(name) + 1, ll = strlen(labels) + 1;
    mem_ser *s = malloc(sizeof *s + sizeof(float) * (size_t)m->nslots);
    char *key = malloc(nl + ll);
    char *u = strdup(unit), *h = strdup(help);
    if (!s || !key || !u || !h) {
        free(s), free(key), free(u), free(h);
        return -ENOMEM;
    }
    memcpy(key, name, nl);
    memcpy(key + nl, labels, ll);
    *s = (mem_ser){.name = key, .labels = key + nl, .unit = u, .help = h, .kind = kind,
                   .last_v = NAN, .last_ts = 0};
    for (int i = 0; i < m->nslots; i++)
        s->ring[i] = NAN;
    m->ser[id] = s;
    m->cur[id] = NAN;
    if (id >= m->next_id)
        m->next_id = id + 1;
    m->nser++;
    hput(m, id);
    return 0;
}

int mem_series_reserve(mem_t *m, int next_id)
{
    if (next_id <= m->next_id)
        return 0;
    int rc = grow_arrays(m, next_id);
    if (!rc)
        m->next_id = next_id;
    return rc;
}

static mem_job *series_job(const mem_ser *s, int id)
{
    size_t a = strlen(s->name) + 1, b = strlen(s->labels) + 1;
    size_t c = strlen(s->unit) + 1, d = strlen(s->help) + 1;
    mem_job *j = calloc(1, sizeof *j + a + b + c + d);
    if (!j)
        return NULL;
    char *p = j->data;
    j->kind = MEM_JOB_SERIES;
    j->u.series.id = id;
    j->u.series.kind = s->kind;
    j->u.series.name = memcpy(p, s->name, a);
    j->u.series.labels = memcpy(p += a, s->labels, b);
    j->u.series.unit = memcpy(p += b, s->unit, c);
    j->u.series.help = memcpy(p += c, s->help, d);
    return j;
}

static int keep_garbage(mem_t *m, char *old)
{
    char **g = realloc(m->garbage, sizeof *g * (m->ngarbage + 1));
    if (!g)
        return -ENOMEM;
    m->garbage = g;
    g[m->ngarbage++] = old;
    return 0;
}

/* Replaces unit/help/kind of a known series when they changed; old strings
 * stay alive (snapshots may point at them) until mem_close. */
static int update_series(mem_t *m, int id, const char *unit, const char *help, int kind)
{
    mem_ser *s = m->ser[id];
    if (!strcmp(s->unit, unit) && !strcmp(s->help, help) && s->kind == kind)
        return 0;
    char *u = strdup(unit), *h = strdup(help);
    if (!u || !h || keep_garbage(m, s->unit) || keep_garbage(m, s->help)) {
        free(u), free(h);
        return -ENOMEM;
    }
    s->unit = u;
    s->help = h;
    s->kind = kind;
    return 1;
}

static int persist(mem_t *m, int id)
{
    mem_job *j = series_job(m->ser[id], id);
    if (!j)
        return -ENOMEM;
    return mem_enqueue(m, j, true, NULL);
}

int mem_series(mem_t *m, const char *name, const char *labels, const char *unit,
               const char *help, int kind)
{
    labels = labels ? labels : "";
    unit = unit ? unit : "";
    help = help ? help : "";
    if (!m || !name || !valid_name(name) || !valid_text(labels, MEM_LABELS_MAX) ||
        !valid_text(unit, MEM_UNIT_MAX) || !valid_text(help, MEM_HELP_MAX) ||
        (kind != MEM_GAUGE && kind != MEM_RATE))
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    int id = hfind(m, name, labels), rc;
    if (id >= 0) {
        rc = update_series(m, id, unit, help, kind);
        if (rc > 0)
            rc = persist(m, id);
    } else if (m->next_id >= MEM_MAX_SERIES) {
        rc = -ENOSPC;
    } else {
        id = m->next_id;
        rc = mem_series_insert(m, id, name, labels, unit, help, kind);
        if (!rc)
            rc = persist(m, id);
    }
    pthread_mutex_unlock(&m->lock);
    return rc < 0 ? rc : id;
}

int mem_series_find(mem_t *m, const char *name, const char *labels)
{
    if (!m || !name)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    int id = hfind(m, name, labels ? labels : "");
    pthread_mutex_unlock(&m->lock);
    return id >= 0 ? id : -ENOENT;
}

int mem_series_count(mem_t *m)
{
    if (!m)
        return 0;
    pthread_mutex_lock(&m->lock);
    int n = m->nser;
    pthread_mutex_unlock(&m->lock);
    return n;
}

static int cmp_info(const void *a, const void *b)
{
    const mem_series_info *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->labels, y->labels);
}

int mem_series_since(mem_t *m, int from_id, mem_series_info **out, size_t *n, int *next_id)
{
    *out = NULL;
    *n = 0;
    if (!m)
        return -EINVAL;
    if (from_id < 0)
        from_id = 0;
    pthread_mutex_lock(&m->lock);
    int count = m->next_id > from_id ? m->next_id - from_id : 0;
    if (count > m->nser)
        count = m->nser; /* holes (lost ids) take no room */
    mem_series_info *v = malloc(sizeof *v * (size_t)(count ? count : 1));
    if (!v) {
        pthread_mutex_unlock(&m->lock);
        return -ENOMEM;
    }
    size_t k = 0;
    for (int id = from_id; id < m->next_id; id++) {
        const mem_ser *s = m->ser[id];
        if (!s)
            continue;
        v[k++] = (mem_series_info){.id = id, .name = s->name, .labels = s->labels,
                                   .unit = s->unit, .help = s->help, .kind = s->kind,
                                   .last = s->last_v, .last_ts = s->last_ts};
    }
    if (next_id)
        *next_id = m->next_id > from_id ? m->next_id : from_id;
    pthread_mutex_unlock(&m->lock);
    *out = v;
    *n = k;
    return 0;
}

int mem_series_snapshot(mem_t *m, mem_series_info **out, size_t *n)
{
    int rc = mem_series_since(m, 0, out, n, NULL);
    if (!rc)
        qsort(*out, *n, sizeof **out, cmp_info);
    return rc;
}

int mem_series_last(mem_t *m, int id, double *v, int64_t *ts)
{
    if (!m)
        return -EINVAL;
    pthread_mutex_lock(&m->lock);
    const mem_ser *s = id >= 0 && id < m->next_id ? m->ser[id] : NULL;
    if (s) {
        *v = s->last_v;
        *ts = s->last_ts;
    }
    pthread_mutex_unlock(&m->lock);
    return s ? 0 : -ENOENT;
}

void mem_series_free_all(mem_t *m)
{
    for (int id = 0; id < m->next_id; id++) {
        mem_ser *s = m->ser[id];
        if (!s)
            continue;
        free(s->name);
        free(s->unit);
        free(s->help);
        free(s);
    }
    for (size_t i = 0; i < m->ngarbage; i++)
        free(m->garbage[i]);
    free(m->garbage);
    free(m->ser);
    free(m->cur);
    free(m->htab);
}
