/* propose_llm.c: candidates from the cell's language model. */
#include <errno.h>
#include <stdio.h>

#include "evolve/run_int.h"

int evolve_propose_llm(evolve_cell *c, const evolve_space *s, const double *incumbent, const json_t *history,
                       double (*x)[EVOLVE_MAX_KNOBS], json_t **info, int max, char *err, size_t errlen)
{
    (void)c; (void)s; (void)incumbent; (void)history; (void)x; (void)info; (void)max;
    snprintf(err, errlen, "no model proposals yet");
    return -ENOENT;
}
