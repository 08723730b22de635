/* evolve.c: the cell's evolution: owns the genome and each part's state,
 * imports the config into the genome, runs approved changes, and sends API
 * requests to the part that serves them. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "evolve/evolve_int.h"

char *evolve_reply(json_t *body, int status, int *out_status)
{
    *out_status = status;
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        *out_status = 500;
        return strdup("{\"error\":\"out of memory\"}");
    }
    return s;
}

char *evolve_error(int status, int *out_status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return evolve_reply(json_pack("{s:s}", "error", msg), status, out_status);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void evolve_cell_config_loaded(evolve_cell *c, const char *text)
{
    if (!c || !c->g || !text)
        return;
    char oid[41], err[512];
    evolve_trailer t = {.kind = "import", .author = "operator",
                        .reason = "the configuration ippocd loaded differs from the genome's"};
    if (evolve_genome_write(c->g, "ippoc.conf", text, strlen(text), &t, oid, err, sizeof err) < 0)
        log_warn("evolve: cannot import the configuration into the genome: %s", err);
}

int evolve_cell_new(const evolve_cell_opts *o, const evolve_hooks *h, evolve_cell **out, char *err, size_t errlen)
{
    *out = NULL;
    evolve_cell *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->o = *o;
    c->state_dir = dup_or_null(o->state_dir);
    c->config_path = dup_or_null(o->config_path);
    c->shim = dup_or_null(o->shim);
    c->o.state_dir = c->state_dir;
    c->o.config_path = c->config_path;
    c->o.shim = c->shim;
    c->o.config_text = NULL;
    if (h)
        c->h = *h;
    if (c->o.probation_ms <= 0)
        c->o.probation_ms = 10 * 60 * 1000;
    snprintf(c->evolve_dir, sizeof c->evolve_dir, "%s/evolve", o->state_dir);
    char gdir[4096];
    snprintf(gdir, sizeof gdir, "%s/genome", o->state_dir);
    int rc = evolve_genome_open(gdir, &c->g, err, errlen);
    if (rc == 0)
        evolve_cell_config_loaded(c, o->config_text);
    if (rc == 0)
        rc = evolve_runs_new(c, &c->runs, err, errlen);
    if (rc == 0)
        rc = evolve_tools_new(c, &c->tools, err, errlen);
    if (rc == 0)
        rc = evolve_code_new(c, &c->code, err, errlen);
    if (rc == 0)
        rc = evolve_watch_new(c, &c->watch, err, errlen);
    if (rc) {
        evolve_cell_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void evolve_cell_free(evolve_cell *c)
{
    if (!c)
        return;
    evolve_watch_free(c->watch);
    evolve_code_free(c->code);
    evolve_tools_free(c->tools);
    evolve_runs_free(c->runs);
    evolve_genome_close(c->g);
    free(c->state_dir);
    free(c->config_path);
    free(c->shim);
    free(c);
}

evolve_genome *evolve_cell_genome(evolve_cell *c)
{
    return c ? c->g : NULL;
}

int evolve_execute(evolve_cell *c, const char *op, const char *arg, char *err, size_t errlen)
{
    if (!strcmp(op, "apply"))
        return evolve_watch_apply(c, arg, err, errlen);
    if (!strcmp(op, "tool"))
        return evolve_tools_accept(c, arg, err, errlen);
    if (!strcmp(op, "code"))
        return evolve_code_execute(c, arg, err, errlen);
    snprintf(err, errlen, "genome: unknown change '%s' (apply, tool)", op);
    return -EINVAL;
}

static bool has_prefix(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return !strncmp(path, prefix, n) && (path[n] == 0 || path[n] == '/' || path[n] == '?');
}

char *evolve_http(evolve_cell *c, const char *method, const char *path, const char *query, const char *body,
                  size_t body_len, int *status)
{
    if (!c)
        return evolve_error(503, status, "evolution is unavailable");
    if (has_prefix(path, "/v1/genome"))
        return evolve_genome_http(c, method, path, query, body, body_len, status);
    if (has_prefix(path, "/v1/tools"))
        return evolve_tools_http(c, method, path, query, body, body_len, status);
    if (has_prefix(path, "/v1/evolve/code"))
        return evolve_code_http(c, method, path, query, body, body_len, status);
    if (has_prefix(path, "/v1/evolve/watch"))
        return evolve_watch_http(c, method, path, query, body, body_len, status);
    if (has_prefix(path, "/v1/evolve"))
        return evolve_runs_http(c, method, path, query, body, body_len, status);
    return evolve_error(404, status, "no such resource: %s", path);
}
