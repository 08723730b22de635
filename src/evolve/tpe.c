/* tpe.c: the model-based proposer (TPE). STAND-IN: the stats part replaces it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include "evolve/evolve.h"

struct evolve_tpe { const evolve_space *s; };
int evolve_tpe_new(const evolve_space *s, uint64_t seed, evolve_tpe **out)
{ (void)seed; *out = calloc(1, sizeof **out); if (!*out) return -ENOMEM; (*out)->s = s; return 0; }
void evolve_tpe_free(evolve_tpe *t) { free(t); }
void evolve_tpe_observe(evolve_tpe *t, const double *x, double y) { (void)t; (void)x; (void)y; }
void evolve_tpe_propose(evolve_tpe *t, double *x, char *why, size_t whylen)
{ for (int i = 0; i < t->s->nknobs; i++) x[i] = t->s->knobs[i].min; snprintf(why, whylen, "stand-in"); }
