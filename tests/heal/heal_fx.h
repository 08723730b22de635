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

#endif
