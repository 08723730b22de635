/* code_probe.c: a driver of self-code evolution (src/evolve/code*.c) for
 * tests/integration/test_evolve_code.py while ippocd does not yet serve
 * /v1/evolve/code: it builds the part of an evolve_cell that code.c uses
 * (the model client from CONFIG's [llm], STATE/evolve) and sends one
 * request through evolve_code_http, as the daemon's API would.
 *
 *   code_probe CONFIG STATE METHOD PATH [BODY] [--wait SECONDS]
 *
 * Prints {"status": N, "body": ANSWER}; with --wait after a 202 it polls
 * GET /v1/evolve/code/ID until the job (after an accept: its "accept") is
 * done, failed or stopped and adds "job": its document. $IPPOCD names the sandbox's shim (ippocd). Exits 0 when it printed, 2 on bad arguments. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/core.h"
#include "evolve/evolve_int.h"
#include "llm/llm.h"

static json_t *call(evolve_cell *c, const char *method, const char *path, const char *body, int *status)
{
    char *ans = evolve_code_http(c, method, path, NULL, body, body ? strlen(body) : 0, status);
    json_t *j = ans ? json_loads(ans, 0, NULL) : NULL;
    free(ans);
    return j ? j : json_null();
}

/* Polls the job until it (accept: its accept) has ended, or seconds. */
static json_t *wait_job(evolve_cell *c, const char *id, bool accept, double seconds)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/evolve/code/%s", id);
    struct timespec t0, now, nap = {0, 50 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int st;
        json_t *doc = call(c, "GET", path, NULL, &st);
        const char *s = json_string_value(json_object_get(accept ? json_object_get(doc, "accept") : doc, "state"));
        clock_gettime(CLOCK_MONOTONIC, &now);
        double el = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
        if (!s || !strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "stopped") || !strcmp(s, "interrupted") ||
            el > seconds)
            return doc;
        json_decref(doc);
        nanosleep(&nap, NULL); /* polling the job's state with a deadline */
    }
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: code_probe CONFIG STATE METHOD PATH [BODY] [--wait SECONDS]\n");
        return 2;
    }
    const char *body = argc > 5 && strcmp(argv[5], "--wait") ? argv[5] : NULL;
    double wait = 0;
    for (int i = 5; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--wait"))
            wait = atof(argv[i + 1]);
    core_config cfg;
    char err[1024];
    core_config_defaults(&cfg);
    if (core_config_load(&cfg, argv[1], true, err, sizeof err)) {
        fprintf(stderr, "code_probe: %s\n", err);
        return 2;
    }
    llm *l = NULL;
    if (llm_new(&cfg, argv[2], NULL, NULL, &l, err, sizeof err)) {
        fprintf(stderr, "code_probe: %s\n", err);
        return 2;
    }
    evolve_cell cell;
    memset(&cell, 0, sizeof cell);
    cell.o.llm = l;
    cell.o.state_dir = argv[2];
    cell.o.shim = getenv("IPPOCD"); /* the sandbox's --sandbox-exec shim is ippocd, not this probe */
    snprintf(cell.evolve_dir, sizeof cell.evolve_dir, "%s/evolve", argv[2]);
    if (evolve_code_new(&cell, &cell.code, err, sizeof err)) {
        fprintf(stderr, "code_probe: %s\n", err);
        return 2;
    }
    int st = 0;
    json_t *ans = call(&cell, argv[3], argv[4], body, &st);
    json_t *out = json_pack("{s:i, s:O}", "status", st, "body", ans);
    const char *id = json_string_value(json_object_get(ans, "id"));
    if (wait > 0 && st == 202 && id)
        json_object_set_new(out, "job", wait_job(&cell, id, strstr(argv[4], "/accept") != NULL, wait));
    char *text = json_dumps(out, JSON_INDENT(1));
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(out);
    json_decref(ans);
    evolve_code_free(cell.code);
    llm_free(l);
    core_config_free(&cfg);
    return 0;
}
