/* mem_spy.c: a recording spy over the REAL memory store for sense tests
 * (see mem_spy.h). The test binaries are linked with
 * -Wl,--wrap=mem_series,--wrap=mem_put: every call the sensors make goes to
 * the real store in a temporary state dir, and is also recorded here so a
 * test can read back exactly what was put in the current round. */
#include "mem_spy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int __real_mem_series(mem_t *m, const char *name, const char *labels, const char *unit,
                      const char *help, int kind);
void __real_mem_put(mem_t *m, int id, double v);
int __wrap_mem_series(mem_t *m, const char *name, const char *labels, const char *unit,
                      const char *help, int kind);
void __wrap_mem_put(mem_t *m, int id, double v);

static struct spy {
    fm_series *s; /* indexed by the store's series id */
    int n;        /* ids seen so far: 0..n-1 */
    char dir[64];
    int64_t ts;   /* tick time of the current round */
} spy;

mem_t *fm_open(void)
{
    core_config cfg;
    char err[256];
    mem_t *m = NULL;
    memset(&spy, 0, sizeof spy);
    snprintf(spy.dir, sizeof spy.dir, "/tmp/ippoc-sense-test.XXXXXX");
    if (!mkdtemp(spy.dir))
        return NULL;
    core_config_defaults(&cfg);
    core_sncpy(cfg.state_dir, sizeof cfg.state_dir, spy.dir);
    if (mem_open(&m, &cfg, err, sizeof err)) {
        fprintf(stderr, "fm_open: %s\n", err);
        m = NULL;
    }
    core_config_free(&cfg);
    spy.ts = core_now_ms() / 1000 * 1000;
    return m;
}

void fm_close(mem_t *m)
{
    for (int i = 0; i < spy.n; i++) {
        free(spy.s[i].name);
        free(spy.s[i].labels);
        free(spy.s[i].unit);
        free(spy.s[i].help);
    }
    free(spy.s);
    if (m)
        mem_close(m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", spy.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fm_close: could not remove %s\n", spy.dir);
    memset(&spy, 0, sizeof spy);
}

/* Ends the round: the real store closes its tick; the spy forgets values. */
void fm_round(mem_t *m)
{
    spy.ts += 1000;
    mem_tick(m, spy.ts);
    for (int i = 0; i < spy.n; i++) {
        spy.s[i].value = NAN;
        spy.s[i].puts = 0;
    }
}

int fm_count(mem_t *m)
{
    (void)m;
    int n = 0;
    for (int i = 0; i < spy.n; i++)
        n += spy.s[i].name != NULL;
    return n;
}

int fm_count_prefix(mem_t *m, const char *prefix, bool put_only)
{
    (void)m;
    int n = 0;
    for (int i = 0; i < spy.n; i++)
        if (spy.s[i].name && !strncmp(spy.s[i].name, prefix, strlen(prefix)) && (!put_only || spy.s[i].puts))
            n++;
    return n;
}

const fm_series *fm_at(mem_t *m, int i)
{
    (void)m;
    return &spy.s[i];
}

const fm_series *fm_find(mem_t *m, const char *name, const char *labels)
{
    int id = mem_series_find(m, name, labels);
    return id >= 0 && id < spy.n && spy.s[id].name ? &spy.s[id] : NULL;
}

double fm_get(mem_t *m, const char *name, const char *labels)
{
    const fm_series *s = fm_find(m, name, labels);
    return s ? s->value : NAN;
}

int fm_double_puts(mem_t *m)
{
    (void)m;
    int n = 0;
    for (int i = 0; i < spy.n; i++)
        n += spy.s[i].puts > 1;
    return n;
}

int __wrap_mem_series(mem_t *m, const char *name, const char *labels, const char *unit,
                      const char *help, int kind)
{
    int id = __real_mem_series(m, name, labels, unit, help, kind);
    if (id < 0)
        return id;
    if (id >= spy.n) {
        fm_series *p = realloc(spy.s, (size_t)(id + 1) * sizeof *p);
        if (!p)
            return -ENOMEM;
        memset(p + spy.n, 0, (size_t)(id + 1 - spy.n) * sizeof *p);
        spy.s = p;
        spy.n = id + 1;
    }
    fm_series *s = &spy.s[id];
    if (!s->name) {
        s->name = strdup(name);
        s->labels = strdup(labels);
        s->unit = strdup(unit);
        s->help = strdup(help);
        s->kind = kind;
        s->value = NAN;
    }
    return id;
}

void __wrap_mem_put(mem_t *m, int id, double v)
{
    if (id < 0 || id >= spy.n || !spy.s[id].name)
        abort(); /* the sensors put to an id they never registered */
    spy.s[id].value = v;
    spy.s[id].puts++;
    __real_mem_put(m, id, v);
}
