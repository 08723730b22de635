/* run_http.c: the experiment routes (evolve_int.h):
 *   POST /v1/evolve/runs            start one -> 202 {"id"}
 *   GET  /v1/evolve, /v1/evolve/runs every run's summary
 *   GET  /v1/evolve/runs/ID         one run with its trials
 *   POST /v1/evolve/runs/ID/stop    stop after the current trial */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "evolve/run_int.h"

static char *read_space(const char *path, char *err, size_t errlen)
{
    char *buf = core_slurp(path, NULL);
    if (!buf)
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return buf;
}

/* A number field: absent keeps dflt; present must be a number in [lo, hi]. */
static int num_field(const json_t *o, const char *key, double lo, double hi, double *v, char *err, size_t errlen)
{
    const json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_number(j) || !(json_number_value(j) >= lo && json_number_value(j) <= hi)) {
        snprintf(err, errlen, "%s: expected a number in [%g, %g]", key, lo, hi);
        return -EINVAL;
    }
    *v = json_number_value(j);
    return 0;
}

static int str_field(const json_t *o, const char *key, char *dst, size_t n, char *err, size_t errlen)
{
    const json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_string(j) || json_string_length(j) >= n) {
        snprintf(err, errlen, "%s: expected a string of at most %zu characters", key, n - 1);
        return -EINVAL;
    }
    snprintf(dst, n, "%s", json_string_value(j));
    return 0;
}

static char *start(evolve_cell *c, const char *body, size_t len, int *status)
{
    json_error_t je;
    json_t *o = body && len ? json_loadb(body, len, 0, &je) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return evolve_error(400, status, "the body must be a JSON object (space, fitness, budget_s, ...)");
    }
    evolve_run_params p = {.budget_s = 1800, .repeats = 10, .min_gain = 0.02, .alpha = 0.05,
                           .seed = (uint64_t)time(NULL)};
    char err[1024] = "", space[EVOLVE_TEXT] = "";
    double repeats = 10, seed = (double)p.seed;
    int rc = str_field(o, "space", space, sizeof space, err, sizeof err);
    if (!rc)
        rc = str_field(o, "space_path", p.space_path, sizeof p.space_path, err, sizeof err);
    if (!rc)
        rc = str_field(o, "fitness", p.fitness, sizeof p.fitness, err, sizeof err);
    if (!rc)
        rc = num_field(o, "budget_s", 1, 7 * 86400, &p.budget_s, err, sizeof err);
    if (!rc)
        rc = num_field(o, "repeats", 3, 1000, &repeats, err, sizeof err);
    if (!rc)
        rc = num_field(o, "min_gain", 0, 10, &p.min_gain, err, sizeof err);
    if (!rc)
        rc = num_field(o, "alpha", 1e-9, 0.5, &p.alpha, err, sizeof err);
    if (!rc)
        rc = num_field(o, "seed", 0, 9007199254740992.0, &seed, err, sizeof err);
    const json_t *ap = json_object_get(o, "apply");
    if (!rc && ap && !json_is_boolean(ap)) {
        snprintf(err, sizeof err, "apply: expected true or false");
        rc = -EINVAL;
    }
    p.apply = json_is_true(ap);
    p.repeats = (int)repeats;
    p.seed = (uint64_t)seed;
    const json_t *text = json_object_get(o, "space_text");
    if (!rc && json_is_string(text)) {
        p.space_text = strdup(json_string_value(text));
    } else if (!rc && space[0]) {
        if (!p.space_path[0])
            snprintf(p.space_path, sizeof p.space_path, "%s", space);
        p.space_text = read_space(space, err, sizeof err);
        if (!p.space_text)
            rc = -ENOENT;
    } else if (!rc) {
        snprintf(err, sizeof err, "no space: give space (a path) or space_text");
        rc = -EINVAL;
    }
    json_decref(o);
    if (rc) {
        free(p.space_text);
        return evolve_error(400, status, "%s", err);
    }
    char id[32];
    rc = evolve_run_start(c->runs, &p, id, sizeof id, err, sizeof err);
    if (rc)
        return evolve_error(rc == -EBUSY ? 409 : rc == -EINVAL || rc == -ENOENT ? 400 : 500, status, "%s", err);
    return evolve_reply(json_pack("{s:s}", "id", id), 202, status);
}

char *evolve_runs_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body,
                       size_t len, int *status)
{
    (void)query;
    if (!c->runs)
        return evolve_error(503, status, "experiment runs are unavailable");
    bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
    if (!strcmp(path, "/v1/evolve") || !strcmp(path, "/v1/evolve/runs")) {
        if (get)
            return evolve_reply(json_pack("{s:o}", "runs", evolve_run_list(c->runs)), 200, status);
        if (post && !strcmp(path, "/v1/evolve/runs"))
            return start(c, body, len, status);
        return evolve_error(405, status, "%s %s: not allowed", method, path);
    }
    const char *pre = "/v1/evolve/runs/";
    if (strncmp(path, pre, strlen(pre)))
        return evolve_error(404, status, "no such resource: %s", path);
    char id[32];
    const char *rest = path + strlen(pre), *slash = strchr(rest, '/');
    size_t idn = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!idn || idn >= sizeof id)
        return evolve_error(404, status, "no such run");
    snprintf(id, sizeof id, "%.*s", (int)idn, rest);
    if (!slash) {
        if (!get)
            return evolve_error(405, status, "%s %s: not allowed", method, path);
        json_t *d = evolve_run_get(c->runs, id);
        return d ? evolve_reply(d, 200, status) : evolve_error(404, status, "no run %s", id);
    }
    if (!strcmp(slash, "/stop")) {
        if (!post)
            return evolve_error(405, status, "%s %s: not allowed", method, path);
        int rc = evolve_run_stop(c->runs, id);
        if (rc == -ENOENT)
            return evolve_error(404, status, "no run %s", id);
        if (rc)
            return evolve_error(409, status, "run %s is not running", id);
        return evolve_reply(json_pack("{s:s,s:s}", "id", id, "status", "stopping"), 202, status);
    }
    return evolve_error(404, status, "no such resource: %s", path);
}
