/* cmd_incidents.c: `ippoc incidents` (one row per incident, newest first:
 * id, when it was opened, service, status, what failed, time to heal) and
 * `ippoc incident ID` (everything about one: what failed and where, the
 * times, the evidence with the service's last log lines, each action and
 * its outcome, then the brain's diagnosis when the incident has one). Reads
 * GET /v1/incidents and GET /v1/incidents/{id}. */
#include "cli/cli.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#define WHAT_COLS 50

static void time_to_heal(const json_t *inc, char *buf, size_t n)
{
    double t = cli_jnum(inc, "time_to_heal_ms", NAN);
    if (!strcmp(cli_jstr(inc, "state", ""), "resolved") && !isnan(t))
        cli_fmt_duration((int64_t)t, buf, n);
    else
        snprintf(buf, n, "-");
}

static void incident_row(cli_table *t, const json_t *inc)
{
    char id[32], opened[64], what[WHAT_COLS * 4 + 8], tth[32];
    snprintf(id, sizeof id, "%.0f", cli_jnum(inc, "id", 0));
    cli_fmt_time(cli_json_time_ms(json_object_get(inc, "detected_ms")), opened, sizeof opened);
    cli_fmt_cut(cli_jstr(inc, "what", ""), WHAT_COLS, what, sizeof what);
    time_to_heal(inc, tth, sizeof tth);
    const char *cells[] = {id, opened, cli_jstr(inc, "service", "-"), cli_jstr(inc, "state", "?"), what, tth};
    cli_table_row(t, cells);
}

static void print_incidents(const json_t *ans)
{
    static const char *const hdr[] = {"ID", "OPENED", "SERVICE", "STATUS", "WHAT", "TIME-TO-HEAL"};
    const json_t *list = json_object_get(ans, "incidents");
    size_t i;
    json_t *inc;
    cli_table t;
    if (json_array_size(list) == 0) {
        printf("no incidents\n");
        return;
    }
    cli_table_init(&t, 6, hdr);
    t.right[0] = t.right[5] = true;
    json_array_foreach(list, i, inc)
        incident_row(&t, inc);
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_incidents_cb(const cli_ctx *ctx, const json_t *ans)
{
    (void)ctx;
    print_incidents(ans);
}

int cmd_incidents(const cli_ctx *ctx, int argc, char **argv)
{
    return cli_run_get(ctx, "incidents", argc, argv, "/v1/incidents", print_incidents_cb);
}

/* ---- one incident ------------------------------------------------------------------ */
static void line(const char *label, const char *value)
{
    if (value && *value)
        printf("%-10s %s\n", label, value);
}

static void time_line(const char *label, const json_t *inc, const char *key, const char *dkey,
                      const char *dname)
{
    char t[64], d[32], out[160];
    int64_t ms = cli_json_time_ms(json_object_get(inc, key));
    double dv = dkey ? cli_jnum(inc, dkey, NAN) : NAN;
    if (ms <= 0)
        return;
    cli_fmt_time(ms, t, sizeof t);
    if (!isnan(dv)) {
        cli_fmt_duration((int64_t)dv, d, sizeof d);
        snprintf(out, sizeof out, "%s (%s %s)", t, dname, d);
    } else {
        snprintf(out, sizeof out, "%s", t);
    }
    line(label, out);
}

/* One evidence member as text: numbers in their unit, objects as k=v. */
static void evidence_value(const char *key, const json_t *v, char *buf, size_t n)
{
    size_t kl = strlen(key);
    if (json_is_number(v)) {
        const char *unit = kl > 6 && !strcmp(key + kl - 6, "_bytes") ? "bytes"
                         : kl > 8 && !strcmp(key + kl - 8, "_percent") ? "percent" : "";
        cli_fmt_value(json_number_value(v), unit, buf, n);
    } else if (json_is_string(v)) {
        cli_fmt_cut(json_string_value(v), 200, buf, n);
    } else if (json_is_object(v)) {
        cli_fmt_payload(v, buf, n);
    } else if (json_is_boolean(v)) {
        snprintf(buf, n, "%s", json_is_true(v) ? "yes" : "no");
    } else {
        snprintf(buf, n, "-");
    }
}

static void print_log(const char *log)
{
    printf("\nlog (last lines)\n");
    const char *p = log;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        printf("  | %.*s\n", (int)n, p);
        p += n + (e ? 1 : 0);
    }
}

static void print_evidence(const json_t *ev)
{
    const char *k, *log = NULL;
    json_t *v;
    char buf[1024];
    if (!json_is_object(ev) || json_object_size(ev) == 0)
        return;
    printf("\nevidence\n");
    json_object_foreach((json_t *)ev, k, v) {
        if (!strcmp(k, "service") || !strcmp(k, "diagnosis") || !strcmp(k, "signature"))
            continue; /* the header says it; the brain's members follow below */
        if (!strcmp(k, "log") && json_is_string(v)) {
            log = json_string_value(v);
        } else if (json_is_array(v)) {
            size_t i;
            json_t *x;
            printf("  %s%s\n", k, json_array_size(v) ? "" : " (none)");
            json_array_foreach(v, i, x) {
                evidence_value(k, x, buf, sizeof buf);
                printf("    - %s\n", buf);
            }
        } else {
            evidence_value(k, v, buf, sizeof buf);
            printf("  %-13s %s\n", k, buf);
        }
    }
    if (log && *log)
        print_log(log);
}

static void print_actions(const json_t *acts)
{
    static const char *const hdr[] = {"TIME", "ACTION", "OUTCOME", "MESSAGE"};
    size_t i;
    json_t *x;
    cli_table t;
    printf("\nactions\n");
    if (json_array_size(acts) == 0) {
        printf("  (none yet)\n");
        return;
    }
    cli_table_init(&t, 4, hdr);
    json_array_foreach(acts, i, x) {
        char ts[64], msg[256];
        cli_fmt_time(cli_json_time_ms(json_object_get(x, "ts")), ts, sizeof ts);
        cli_fmt_cut(cli_jstr(x, "message", ""), 80, msg, sizeof msg);
        const char *cells[] = {ts, cli_jstr(x, "action", "?"), cli_jstr(x, "outcome", "?"), msg};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
}

static void print_incident(const json_t *inc)
{
    printf("incident %.0f: %s, %s\n", cli_jnum(inc, "id", 0), cli_jstr(inc, "service", "-"),
           cli_jstr(inc, "state", "?"));
    line("what", cli_jstr(inc, "what", NULL));
    line("where", cli_jstr(inc, "where", NULL));
    time_line("failing", inc, "failing_since_ms", NULL, NULL);
    time_line("detected", inc, "detected_ms", "time_to_detect_ms", "time to detect");
    time_line("closed", inc, "closed_ms", "time_to_heal_ms", "time to heal");
    line("reason", cli_jstr(inc, "reason", NULL));
    print_evidence(json_object_get(inc, "evidence"));
    print_actions(json_object_get(inc, "actions"));
    const json_t *d = cli_incident_diagnosis(inc);
    if (d) {
        printf("\ndiagnosis\n");
        cli_print_diagnosis(d);
    }
}

int cmd_incident(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    cli_args a;
    const char *ids = NULL;
    uint64_t id;
    char path[64];
    json_t *ans;
    cli_args_init(&a, "incident", argc, argv);
    int rc = cli_args_simple(&a, &ctx, &ids, "ID");
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK || (rc = cli_check_id("incident", ids, &id)) != CLI_EXIT_OK)
        return rc;
    snprintf(path, sizeof path, "/v1/incidents/%" PRIu64, id);
    if ((rc = cli_http_get_json(&ctx, path, &ans, NULL)) != CLI_EXIT_OK)
        return rc;
    if (ctx.json)
        cli_print_json(ans);
    else
        print_incident(ans);
    json_decref(ans);
    return CLI_EXIT_OK;
}
