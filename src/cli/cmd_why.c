/* cmd_why.c: the brain's commands. `ippoc why INCIDENT` prints an
 * incident's diagnosis human-readably (fault type, component, root cause,
 * confidence, the evidence lines, the proposed actions, the similar past
 * cases and what fixed them, and, when a model took part, its explanation
 * with the records each claim cites and its disagreement with the rules);
 * `ippoc diagnose SERVICE` asks the brain about
 * a service now (POST /v1/diagnose) and prints the diagnosis once it is
 * there; cli_print_diagnosis is also what `ippoc incident ID` shows. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#define DIAGNOSE_WAIT_MS 30000

/* "model": why there was none, or its explanation (each claim with the
 * records it cites) and its disagreement with the rules. */
static void print_model(const json_t *d)
{
    const json_t *m = json_object_get(d, "model");
    if (!json_is_object(m))
        return;
    if (json_object_get(m, "absent")) {
        printf("\nmodel       none: %s\n", cli_jstr(m, "absent", "?"));
        return;
    }
    printf("\nmodel       %s (%s), %s with the rules%s\n", cli_jstr(m, "model", "?"), cli_jstr(m, "provider", "?"),
           !strcmp(cli_jstr(d, "agreement", "none"), "agree")      ? "agrees"
           : !strcmp(cli_jstr(d, "agreement", "none"), "disagree") ? "DISAGREES"
                                                                     : "offers no hypothesis",
           json_is_true(json_object_get(m, "unsure")) ? " (unsure)" : "");
    const json_t *dis = json_object_get(m, "disagreement");
    if (json_is_object(dis)) {
        printf("  it says   %s of %s (%.0f%%)%s", cli_jstr(dis, "fault_type", "?"), cli_jstr(dis, "component", "?"),
               cli_jnum(dis, "confidence", 0) * 100, json_is_true(json_object_get(dis, "cited")) ? ", because" : ", citing no evidence");
        size_t k;
        json_t *r;
        json_array_foreach(json_object_get(dis, "because"), k, r) printf(" %s", json_string_value(r) ? json_string_value(r) : "?");
        printf("\n");
    }
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(m, "explanation"), i, x) {
        printf("  - %s\n", cli_jstr(x, "claim", ""));
        size_t k;
        json_t *c;
        json_array_foreach(json_object_get(x, "cites"), k, c) {
            const char *type = cli_jstr(c, "type", "");
            char id[96] = "";
            if (!strcmp(type, "case"))
                snprintf(id, sizeof id, "case %.0f", cli_jnum(c, "id", 0));
            else if (!strcmp(type, "chunk"))
                snprintf(id, sizeof id, "knowledge chunk %.0f", cli_jnum(c, "id", 0));
            else if (!strcmp(type, "rule_evidence"))
                snprintf(id, sizeof id, "rules' evidence %.0f", cli_jnum(c, "index", 0) + 1);
            else
                snprintf(id, sizeof id, "%s[%.0f]", cli_jstr(c, "field", "?"), cli_jnum(c, "index", 0));
            printf("      %-4s %-22s %.100s\n", cli_jstr(c, "ref", "?"), id, cli_jstr(c, "text", ""));
        }
    }
}

void cli_print_diagnosis(const json_t *d)
{
    printf("fault       %s\n", cli_jstr(d, "fault_type", "?"));
    printf("component   %s\n", cli_jstr(d, "component", "-"));
    printf("root cause  %s\n", cli_jstr(d, "root_cause", "-"));
    printf("confidence  %.0f%% (from %s)", cli_jnum(d, "confidence", 0) * 100, cli_jstr(d, "source", "rules"));
    const json_t *model = json_object_get(d, "model");
    if (json_is_number(json_object_get(model, "rules_confidence")))
        printf(", lowered from %.0f%%: the model disagrees", cli_jnum(model, "rules_confidence", 0) * 100);
    printf("\n");
    size_t i;
    json_t *x;
    const json_t *ev = json_object_get(d, "evidence");
    if (json_array_size(ev)) {
        printf("\nevidence\n");
        json_array_foreach(ev, i, x) printf("  %-10s %s\n", cli_jstr(x, "kind", "?"), cli_jstr(x, "text", ""));
    }
    const json_t *acts = json_object_get(d, "proposed_actions");
    printf("\nproposed actions\n");
    if (!json_array_size(acts))
        printf("  (none)\n");
    json_array_foreach(acts, i, x) {
        printf("  %zu. %s", i + 1, cli_jstr(x, "action", "?"));
        const char *svc = cli_jstr(x, "service", "");
        if (*svc && strcmp(svc, cli_jstr(d, "component", "")) != 0)
            printf(" (service %s)", svc);
        printf(": %s%s\n", cli_jstr(x, "why", ""), !strcmp(cli_jstr(x, "by", ""), "model") ? " [model]" : "");
    }
    const json_t *prefs = json_object_get(d, "preferences");
    if (json_array_size(prefs)) {
        printf("\npreferences applied\n");
        json_array_foreach(prefs, i, x) printf("  %s (%s): %s; %s\n", cli_jstr(x, "id", "?"), cli_jstr(x, "kind", "?"),
                                               cli_jstr(x, "effect", ""), cli_jstr(x, "rule", ""));
    }
    const json_t *cases = json_object_get(d, "cases");
    if (json_array_size(cases)) {
        printf("\nsimilar past cases\n");
        json_array_foreach(cases, i, x) {
            char fixed[512] = "";
            size_t k;
            json_t *a;
            json_array_foreach(json_object_get(x, "fixed_by"), k, a) {
                size_t l = strlen(fixed);
                snprintf(fixed + l, sizeof fixed - l, "%s%s", l ? ", " : "", json_string_value(a) ? json_string_value(a) : "?");
            }
            printf("  incident %.0f (%.0f%% similar): %s on %s, fixed %.0f of %.0f tries%s%s\n",
                   cli_jnum(x, "incident", 0), cli_jnum(x, "similarity", 0) * 100, cli_jstr(x, "fault_type", "?"),
                   cli_jstr(x, "component", "?"), cli_jnum(x, "fixed", 0), cli_jnum(x, "tried", 0),
                   *fixed ? " by " : "", fixed);
        }
    }
    print_model(d);
}

static int get_id_arg(cli_args *a, cli_ctx *ctx, const char *cmd, const char *name, const char **val)
{
    cli_args_init(a, cmd, a->argc, a->argv);
    int rc = cli_args_simple(a, ctx, val, name);
    return rc < 0 ? cli_args_help(a) : rc;
}

int cmd_why(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a = {.argc = argc, .argv = argv};
    const char *ids = NULL;
    uint64_t id;
    int rc = get_id_arg(&a, &ctx, "why", "INCIDENT", &ids);
    if (rc != CLI_EXIT_OK || !ids || (rc = cli_check_id("why", ids, &id)) != CLI_EXIT_OK)
        return rc;
    char path[96];
    json_t *ans;
    snprintf(path, sizeof path, "/v1/incidents/%" PRIu64 "/diagnosis", id);
    if ((rc = cli_http_get_json(&ctx, path, &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    if (ctx.json) {
        cli_print_json(ans);
    } else {
        printf("incident %" PRIu64 "\n", id);
        cli_print_diagnosis(ans);
    }
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* The diagnosis heal keeps on the incident (top level or in its evidence). */
const json_t *cli_incident_diagnosis(const json_t *inc)
{
    const json_t *d = json_object_get(inc, "diagnosis");
    if (!json_is_object(d))
        d = json_object_get(json_object_get(inc, "evidence"), "diagnosis");
    return json_is_object(d) ? d : NULL;
}

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int cmd_diagnose(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a = {.argc = argc, .argv = argv};
    const char *service = NULL;
    int rc = get_id_arg(&a, &ctx, "diagnose", "SERVICE", &service);
    if (rc != CLI_EXIT_OK || !service)
        return rc;
    json_t *body = json_pack("{s:s}", "service", service), *ans = NULL;
    rc = cli_http_post_obj(&ctx, "/v1/diagnose", body, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    uint64_t id = (uint64_t)cli_jnum(ans, "incident", 0);
    json_decref(ans);
    char path[96];
    snprintf(path, sizeof path, "/v1/incidents/%" PRIu64, id);
    /* the deliberation runs on the daemon's workers: poll its incident */
    for (int waited = 0; waited <= DIAGNOSE_WAIT_MS; waited += 200) {
        json_t *inc = NULL;
        if ((rc = cli_http_get_json(&ctx, path, &inc, NULL)) != CLI_EXIT_OK)
            return rc;
        const json_t *d = cli_incident_diagnosis(inc);
        if (d) {
            if (ctx.json) {
                cli_print_json(d);
            } else {
                printf("incident %" PRIu64 ": %s\n", id, service);
                cli_print_diagnosis(d);
            }
            json_decref(inc);
            return CLI_EXIT_OK;
        }
        json_decref(inc);
        nap(200);
    }
    fprintf(stderr, "ippoc: no diagnosis of incident %" PRIu64 " after %d s: see 'ippoc why %" PRIu64 "' later\n", id,
            DIAGNOSE_WAIT_MS / 1000, id);
    return CLI_EXIT_API;
}
