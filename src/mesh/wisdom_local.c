/* wisdom_local.c: the cell's own wisdom, read from its memory: a fix record
 * for each case the brain remembers (memory's `cases` table) and each action
 * that healed it at least once, built through mesh_wisdom_build_fix so that
 * the redaction rule refuses what may not leave. */
#include "mesh/wisdom.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct walk {
    const mesh_wisdom_host *host;
    const char *(*kind_of)(void *ud, const char *component);
    void *kud;
    const mesh_wisdom_local *loc;
    mesh_wisdom_emit emit;
    void *eud;
    int emitted, refused;
    char *err;
    size_t errlen;
} walk;

/* Each distinct action text of the case's attempts that healed once at least. */
static int healed_actions(const json_t *c, const char **out, int max)
{
    int n = 0;
    size_t i, j;
    json_t *att, *a;
    json_array_foreach(json_object_get(c, "attempts"), i, att) {
        if (!json_is_true(json_object_get(att, "healed")))
            continue;
        json_array_foreach(json_object_get(att, "actions"), j, a) {
            const char *t = json_is_string(a) ? json_string_value(a) : json_string_value(json_object_get(a, "action"));
            bool seen = !t;
            for (int k = 0; k < n && !seen; k++)
                seen = !strcmp(out[k], t);
            if (!seen && n < max)
                out[n++] = t;
        }
    }
    return n;
}

static int one_case(void *ud, int64_t id, int64_t ts, const char *text)
{
    walk *w = ud;
    (void)ts;
    json_t *c = json_loads(text, 0, NULL);
    if (!c)
        return 0; /* an unreadable row: the brain skips it too */
    mesh_wisdom_host h = *w->host;
    const char *comp = json_string_value(json_object_get(c, "component"));
    const char *kind = json_string_value(json_object_get(c, "kind"));
    const char *svc = !comp || (kind && !strcmp(kind, "machine")) ? "" : w->kind_of ? w->kind_of(w->kud, comp) : comp;
    snprintf(h.service, sizeof h.service, "%s", svc ? svc : "");
    const char *acts[16];
    int n = healed_actions(c, acts, 16), rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        mesh_wisdom_rec r;
        char why[256];
        int b = mesh_wisdom_build_fix(c, acts[i], &h, w->loc, &r, why, sizeof why);
        if (b) {
            if (!w->refused++ && w->err && w->errlen)
                snprintf(w->err, w->errlen, "case %lld, action '%s': %s", (long long)id, acts[i], why);
            continue;
        }
        rc = w->emit(w->eud, &r);
        w->emitted += !rc;
    }
    json_decref(c);
    return rc;
}

int mesh_wisdom_fixes_from_memory(mem_t *m, const mesh_wisdom_host *host,
                                  const char *(*kind_of)(void *ud, const char *component), void *kud,
                                  const mesh_wisdom_local *loc, mesh_wisdom_emit emit, void *eud, int *refused,
                                  char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = 0;
    walk w = {host, kind_of, kud, loc, emit, eud, 0, 0, err, errlen};
    char lerr[256];
    int rc = mem_case_load(m, one_case, &w, lerr, sizeof lerr);
    if (refused)
        *refused = w.refused;
    if (rc < 0 && err && errlen)
        snprintf(err, errlen, "reading the cases: %s", lerr);
    return rc ? rc : w.emitted;
}
