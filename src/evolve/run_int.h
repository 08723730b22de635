/* run_int.h: what run.c (the experiment loop), run_http.c (its routes) and
 * propose_llm.c (the model's candidates) share. Not for other parts. */
#ifndef IPPOC_EVOLVE_RUN_INT_H
#define IPPOC_EVOLVE_RUN_INT_H

#include <stdatomic.h>

#include "evolve/evolve_int.h"

/* What a POST /v1/evolve/runs asks for. */
typedef struct evolve_run_params {
    char space_path[EVOLVE_TEXT];  /* for messages and the record ("" = from text) */
    char *space_text;              /* the space file's text (owned) */
    char fitness[EVOLVE_TEXT];     /* overrides [space] fitness when set */
    double budget_s;               /* default 1800 */
    int repeats;                   /* interleaved pairs in a race, default 10 */
    double min_gain;               /* default 0.02 */
    double alpha;                  /* default 0.05 */
    uint64_t seed;
    bool apply;                    /* ask hooks->change("apply") for an accepted result */
} evolve_run_params;

typedef struct evolve_run evolve_run;

struct evolve_runs {
    evolve_cell *c;
    pthread_mutex_t mu;            /* the list and every run's doc */
    pthread_mutex_t save_mu;       /* one save at a time, in order */
    evolve_run *list;              /* newest first */
    int next_id;
    atomic_bool closing;           /* the cell is being freed: runs end "interrupted" */
    char dir[4200];                /* STATE/evolve/runs */
};

/* Starts a run (a thread): 0 with id, -EINVAL (space error, FILE:LINE in
 * err), -EBUSY (another run is running). Takes p->space_text. */
int evolve_run_start(struct evolve_runs *rs, evolve_run_params *p, char *id, size_t idlen, char *err, size_t errlen);
/* Copies of the state: one run's doc (NULL when unknown), every run's summary. */
json_t *evolve_run_get(struct evolve_runs *rs, const char *id);
json_t *evolve_run_list(struct evolve_runs *rs);
/* Asks run id to stop after its current trial: 0, -ENOENT, -EALREADY (not running). */
int evolve_run_stop(struct evolve_runs *rs, const char *id);

/* propose_llm.c: up to max candidates from the cell's model (values native,
 * one row per candidate, EVOLVE_MAX_KNOBS wide), each with its rationale and
 * cited sources in info[i] (a JSON object: "rationale", "cites", "dropped").
 * history: the run's trials so far (JSON array). Returns how many, or -errno
 * with err (no model, the model failed). */
int evolve_propose_llm(evolve_cell *c, const evolve_space *s, const double *incumbent, const json_t *history,
                       double (*x)[EVOLVE_MAX_KNOBS], json_t **info, int max, char *err, size_t errlen);

#endif
