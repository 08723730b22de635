/* mem_spy.h: a recording spy over the real memory store for sense tests:
 * records every series registered and the values put since the last
 * fm_round(), while everything also goes into a real store on disk. */
#ifndef IPPOC_MEM_SPY_H
#define IPPOC_MEM_SPY_H

#include "memory/memory.h"

typedef struct fm_series {
    char *name, *labels, *unit, *help;
    int kind;
    double value;  /* NaN when not put this round */
    int puts;      /* this round */
} fm_series;

mem_t *fm_open(void);
void fm_close(mem_t *m);
void fm_round(mem_t *m);                 /* forget the values put */
int fm_count(mem_t *m);                  /* series registered */
int fm_count_prefix(mem_t *m, const char *prefix, bool put_only);
const fm_series *fm_at(mem_t *m, int i);
double fm_get(mem_t *m, const char *name, const char *labels);   /* NaN if not put */
const fm_series *fm_find(mem_t *m, const char *name, const char *labels);
int fm_double_puts(mem_t *m);            /* series put more than once this round */

#endif
