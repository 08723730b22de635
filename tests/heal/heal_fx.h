/* heal_fx.h: a real heal engine for the heal tests (a libuv loop with a
 * 10 ms wake timer, a memory store and audit log in a temporary state dir),
 * started from a config text and stopped with everything removed. */
#ifndef IPPOC_TESTS_HEAL_FX_H
#define IPPOC_TESTS_HEAL_FX_H

#include "heal/engine_int.h"

typedef struct heal_fx {
    char dir[64]; /* the state dir */
    core_config cfg;
    mem_t *m;
    uv_loop_t loop;
    uv_timer_t wake;
    heal_engine *e;
    bool stopped;
} heal_fx;

/* Makes /tmp/ippoc-NAME-XXXXXX (h->dir) and the config defaults; the test
 * may put files there before heal_fx_start. */
void heal_fx_tmpdir(heal_fx *h, const char *name);
/* Loads conf (state_dir = h->dir), opens the store, the loop and the engine. */
void heal_fx_start(heal_fx *h, const char *conf);
/* Stops the engine (10 s at most), closes the loop and the store, removes
 * h->dir. */
void heal_fx_stop(heal_fx *h);

/* Audit records to look for; NULL fields match anything. */
typedef struct heal_fx_find {
    const char *kind;       /* the record's: "intent", "decision", "result" */
    const char *action;     /* the action's kind ("genome") */
    const char *text;       /* the action's text */
    const char *verdict;
    const char *reason_has; /* a part of the reason */
    int found;
    json_t *rec;            /* the last match (json_decref it) */
} heal_fx_find;
/* How many audit records match q (the last one in q->rec), once one does
 * (decisions are written on the thread pool), or after 2 s; meanwhile the
 * loop runs, with the engine's tick every 200 ms. */
int heal_fx_audit_count(heal_fx *h, heal_fx_find *q);

#endif
