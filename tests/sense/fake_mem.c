/* fake_mem.c: a stand-in for the memory store in sense tests (see
 * fake_mem.h); implements only mem_series and mem_put. */
#include "fake_mem.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mem {
    fm_series *s;
    int n, cap;
};

mem_t *fm_open(void) { return calloc(1, sizeof(mem_t)); }

void fm_close(mem_t *m)
{
    for (int i = 0; i < m->n; i++) {
        free(m->s[i].name);
        free(m->s[i].labels);
        free(m->s[i].unit);
        free(m->s[i].help);
    }
    free(m->s);
    free(m);
}

void fm_round(mem_t *m)
{
    for (int i = 0; i < m->n; i++) {
        m->s[i].value = NAN;
        m->s[i].puts = 0;
    }
}

int fm_count(mem_t *m) { return m->n; }

int fm_count_prefix(mem_t *m, const char *prefix, bool put_only)
{
    int n = 0;
    for (int i = 0; i < m->n; i++)
        if (!strncmp(m->s[i].name, prefix, strlen(prefix)) && (!put_only || m->s[i].puts))
            n++;
    return n;
}

const fm_series *fm_at(mem_t *m, int i) { return &m->s[i]; }

const fm_series *fm_find(mem_t *m, const char *name, const char *labels)
{
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, name) && !strcmp(m->s[i].labels, labels))
            return &m->s[i];
    return NULL;
}

double fm_get(mem_t *m, const char *name, const char *labels)
{
    const fm_series *s = fm_find(m, name, labels);
    return s ? s->value : NAN;
}

int fm_double_puts(mem_t *m)
{
    int n = 0;
    for (int i = 0; i < m->n; i++)
        n += m->s[i].puts > 1;
    return n;
}

int mem_series(mem_t *m, const char *name, const char *labels, const char *unit,
               const char *help, int kind)
{
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, name) && !strcmp(m->s[i].labels, labels))
            return i;
    if (m->n == m->cap) {
        int nc = m->cap ? m->cap * 2 : 256;
        fm_series *p = realloc(m->s, (size_t)nc * sizeof *p);
        if (!p)
            return -ENOMEM;
        m->s = p;
        m->cap = nc;
    }
    fm_series *s = &m->s[m->n];
    s->name = strdup(name);
    s->labels = strdup(labels);
    s->unit = strdup(unit);
    s->help = strdup(help);
    s->kind = kind;
    s->value = NAN;
    s->puts = 0;
    return m->n++;
}

void mem_put(mem_t *m, int id, double v)
{
    if (id < 0 || id >= m->n)
        abort();
    m->s[id].value = v;
    m->s[id].puts++;
}
