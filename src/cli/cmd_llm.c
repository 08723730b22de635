/* cmd_llm.c: `ippoc llm` — the language-model client's status: the local and
 * cloud providers and a reasoning peer of the mesh (URL, model, requests, failures, last error), the token
 * budgets (spent this hour, per incident, requests refused), where what was
 * sent is recorded, and the recent fallbacks to the cloud with their reasons.
 * Reads GET /v1/llm; tolerates missing and extra fields. */
#include "cli/cli.h"

#include <math.h>
#include <string.h>

static void provider(const char *label, const json_t *p, const char *kind)
{
    if (!cli_jbool(p, "configured", false)) {
        printf("%-9s not configured\n", label);
        return;
    }
    double req = cli_jnum(p, "requests", 0), fail = cli_jnum(p, "failures", 0);
    printf("%-9s %s%s%s  model %s  %.0f request%s, %.0f failed%s\n", label, kind ? kind : "", kind ? " " : "",
           cli_jstr(p, "url", "?"), cli_jstr(p, "model", "?"), req, req == 1 ? "" : "s", fail,
           cli_jbool(p, "redacted", false) ? "  (not loopback: redacted)" : "");
    const char *err = cli_jstr(p, "last_error", "");
    if (*err)
        printf("%-9s last error: %s\n", "", err);
}

/* The mesh provider: a reasoning peer of the fleet (absent: no mesh). */
static void mesh_line(const json_t *p)
{
    if (!cli_jbool(p, "configured", false))
        return;
    double req = cli_jnum(p, "requests", 0), fail = cli_jnum(p, "failures", 0);
    printf("%-9s %s  %.0f request%s, %.0f failed\n", "mesh",
           !cli_jbool(p, "allowed", true)      ? "off ([llm] mesh = no)"
           : cli_jbool(p, "available", false) ? "a reasoning peer of the fleet is reachable"
                                              : "no reasoning peer reachable",
           req, req == 1 ? "" : "s", fail);
    const char *err = cli_jstr(p, "last_error", "");
    if (*err)
        printf("%-9s last error: %s\n", "", err);
}

static void fallbacks(const json_t *list)
{
    if (json_array_size(list) == 0) {
        printf("no recent fallbacks to the cloud\n");
        return;
    }
    static const char *const hdr[] = {"TIME", "PURPOSE", "WHY THE LOCAL ANSWER WAS NOT ENOUGH"};
    cli_table t;
    cli_table_init(&t, 3, hdr);
    size_t i;
    const json_t *f;
    json_array_foreach(list, i, f)
    {
        char ts[64], why[200];
        cli_fmt_time((int64_t)cli_jnum(f, "ts", 0), ts, sizeof ts);
        cli_fmt_cut(cli_jstr(f, "reason", ""), 120, why, sizeof why);
        const char *cells[] = {ts, cli_jstr(f, "purpose", "-"), why};
        cli_table_row(&t, cells);
    }
    printf("recent fallbacks:\n");
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_llm(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    if (!cli_jbool(ans, "available", false)) {
        printf("no language model configured ([llm] local or cloud) nor a reasoning peer reachable: the cell "
               "thinks without one\n");
        return;
    }
    const json_t *cloud = json_object_get(ans, "cloud");
    provider("local", json_object_get(ans, "local"), NULL);
    mesh_line(json_object_get(ans, "mesh"));
    provider("cloud", cloud, cli_jstr(cloud, "provider", NULL));
    printf("budget    %.0f of %.0f tokens this hour, %.0f per incident, %.0f request%s refused\n",
           cli_jnum(ans, "tokens_hour", 0), cli_jnum(ans, "budget_hour", 0), cli_jnum(ans, "budget_incident", 0),
           cli_jnum(ans, "refused", 0), cli_jnum(ans, "refused", 0) == 1 ? "" : "s");
    printf("requests  %.0f, %.0f failed, %.0f fell back to the cloud; unsure below %.2f\n",
           cli_jnum(ans, "requests", 0), cli_jnum(ans, "failures", 0), cli_jnum(ans, "fallbacks", 0),
           cli_jnum(ans, "unsure_below", NAN));
    const json_t *emb = json_object_get(ans, "embeddings");
    if (*cli_jstr(emb, "url", ""))
        printf("embeddings %s  model %s  %.0f dimensions\n", cli_jstr(emb, "url", ""), cli_jstr(emb, "model", "?"),
               cli_jnum(emb, "dims", 0));
    if (*cli_jstr(ans, "sent_log", ""))
        printf("sent      what left the machine is in %s\n", cli_jstr(ans, "sent_log", ""));
    fallbacks(json_object_get(ans, "recent_fallbacks"));
}

int cmd_llm(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "llm", argc, argv, "/v1/llm", print_llm);
}
