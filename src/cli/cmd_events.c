/* cmd_events.c: `ippoc events` — the daemon's event log as a table (oldest
 * first, newest last), filtered by time, type and minimum severity; with
 * --follow it then streams new events (GET /v1/events/stream, server-sent
 * events), reconnecting with Last-Event-ID when the connection drops, until
 * SIGINT/SIGTERM, which ends it cleanly with exit code 0.
 * With --json: the API's answer, or with --follow one event per line. */
#include "cli/cli.h"

#include "core/core.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_LIMIT 20

typedef struct events_opts {
    const char *since, *type, *severity;
    long limit;
    bool follow;
} events_opts;

typedef struct follow_state {
    cli_ctx ctx; /* a copy: the URL may be re-read on reconnect */
    const events_opts *o;
    cli_sse sse;
    int64_t last_id;
    bool got_bytes; /* on the current connection */
    bool lost;      /* a drop was reported and not yet recovered */
} follow_state;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = 1;
}

/* ---- one event ------------------------------------------------------------------ */

static const char *const severities[] = {"debug", "info", "warning", "error", "critical"};

static int severity_rank(const char *s)
{
    for (int i = 0; i < 5; i++)
        if (s && !strcmp(s, severities[i]))
            return i;
    return -1;
}

/* Same rules as the API: exact type, or a prefix ending in '*'; min severity. */
static bool event_matches(const json_t *ev, const events_opts *o)
{
    const char *type = cli_jstr(ev, "type", "");
    if (o->type) {
        size_t n = strlen(o->type);
        bool prefix = n > 0 && o->type[n - 1] == '*';
        if (prefix ? strncmp(type, o->type, n - 1) != 0 : strcmp(type, o->type) != 0)
            return false;
    }
    return !o->severity ||
           severity_rank(cli_jstr(ev, "severity", "")) >= severity_rank(o->severity);
}

static void print_header(void)
{
    printf("%-19s  %-8s  %-24s  %-16s  %s\n", "TIME", "SEVERITY", "TYPE", "SOURCE", "PAYLOAD");
}

static void print_event_text(const json_t *ev)
{
    char when[64], payload[2048], line[4096];
    const json_t *ts = json_object_get(ev, "ts");
    int64_t ms = cli_json_time_ms(ts);
    if (ms > 0)
        cli_fmt_time(ms, when, sizeof when);
    else
        snprintf(when, sizeof when, "%s", json_is_string(ts) ? json_string_value(ts) : "-");
    cli_fmt_payload(json_object_get(ev, "payload"), payload, sizeof payload);
    int n = snprintf(line, sizeof line, "%-19s  %-8s  %-24s  %-16s  %s", when,
                     cli_jstr(ev, "severity", "-"), cli_jstr(ev, "type", "-"),
                     cli_jstr(ev, "source", "-"), payload);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    puts(line);
}

static void print_event(const json_t *ev, bool json)
{
    if (json) {
        char *s = json_dumps(ev, JSON_COMPACT);
        if (s)
            puts(s);
        free(s);
    } else {
        print_event_text(ev);
    }
    fflush(stdout);
}

static int64_t event_id(const json_t *ev)
{
    double id = cli_jnum(ev, "id", 0);
    return (int64_t)id;
}

/* ---- the initial list -------------------------------------------------------------- */

static int by_id(const void *a, const void *b)
{
    int64_t x = event_id(*(json_t *const *)a), y = event_id(*(json_t *const *)b);
    return (x > y) - (x < y);
}

/* Prints the events oldest first; returns the highest id seen. */
static int64_t print_list(const json_t *list, bool json, bool header)
{
    size_t n = json_array_size(list), i;
    int64_t max = 0;
    json_t **v = calloc(n ? n : 1, sizeof *v);
    if (!v)
        return 0;
    for (i = 0; i < n; i++)
        v[i] = json_array_get(list, i);
    qsort(v, n, sizeof *v, by_id);
    if (header && !json)
        print_header();
    for (i = 0; i < n; i++) {
        print_event(v[i], json);
        max = event_id(v[i]) > max ? event_id(v[i]) : max;
    }
    free(v);
    return max;
}

static int query_events(const cli_ctx *ctx, const events_opts *o, long limit, bool filtered,
                        json_t **ans)
{
    char lim[32];
    cli_url u;
    snprintf(lim, sizeof lim, "%ld", limit);
    cli_url_init(&u, "/v1/events");
    if (filtered) {
        cli_url_param(&u, "from", o->since);
        cli_url_param(&u, "type", o->type);
        cli_url_param(&u, "severity", o->severity);
    }
    cli_url_param(&u, "limit", lim);
    cli_url_param(&u, "order", "desc");
    return cli_http_get_json(ctx, u.buf, ans, NULL);
}

/* The newest event id of all (unfiltered), so following starts after it. */
static int latest_id(const cli_ctx *ctx, const events_opts *o, int64_t *id)
{
    json_t *ans;
    int rc = query_events(ctx, o, 1, false, &ans);
    if (rc != CLI_EXIT_OK)
        return rc;
    const json_t *list = json_object_get(ans, "events");
    size_t i;
    json_t *ev;
    *id = 0;
    json_array_foreach(list, i, ev)
        *id = event_id(ev) > *id ? event_id(ev) : *id;
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* ---- following ------------------------------------------------------------------------ */

static int on_sse(const cli_sse_event *e, void *ud)
{
    follow_state *st = ud;
    json_t *ev = json_loads(e->data, 0, NULL);
    int64_t id = strtoll(e->id, NULL, 10);
    if (json_is_object(ev)) {
        if (event_id(ev) > id)
            id = event_id(ev);
        if (id > st->last_id || id == 0) {
            if (event_matches(ev, st->o))
                print_event(ev, st->ctx.json);
        }
    }
    if (id > st->last_id)
        st->last_id = id;
    json_decref(ev);
    return g_stop ? 1 : 0;
}

static int on_bytes(const char *buf, size_t n, void *ud)
{
    follow_state *st = ud;
    if (!st->got_bytes && st->lost)
        fprintf(stderr, "ippoc: events: reconnected\n");
    st->got_bytes = true;
    st->lost = false;
    int r = cli_sse_feed(&st->sse, buf, n);
    if (r < 0)
        fprintf(stderr, "ippoc: events: bad stream: %s\n", strerror(-r));
    return r != 0;
}

static void nap(int ms)
{
    struct timespec ts = {0, 100 * 1000000L};
    for (int t = 0; t < ms && !g_stop; t += 100)
        nanosleep(&ts, NULL);
}

static int stream_once(follow_state *st, cli_stream_result *res)
{
    char after[32];
    cli_url u;
    snprintf(after, sizeof after, "%" PRId64, st->last_id);
    cli_url_init(&u, "/v1/events/stream");
    cli_url_param(&u, "after", after);
    cli_sse_reset(&st->sse);
    st->got_bytes = false;
    return cli_http_stream(&st->ctx, u.buf, after, on_bytes, st, &g_stop, res);
}

static int follow(follow_state *st)
{
    int backoff = 500;
    while (!g_stop) {
        cli_stream_result res;
        int rc = stream_once(st, &res);
        if (res.stopped || g_stop)
            break;
        if (rc == CLI_EXIT_API || rc == CLI_EXIT_AUTH)
            return rc;
        backoff = st->got_bytes ? 500 : backoff * 2 > 5000 ? 5000 : backoff * 2;
        if (!st->lost)
            fprintf(stderr, "ippoc: events: stream lost (%s), reconnecting\n", res.reason);
        st->lost = true;
        nap(backoff);
        if (cli_reload_url(&st->ctx))
            fprintf(stderr, "ippoc: events: ippocd moved to %s\n", st->ctx.url);
    }
    return CLI_EXIT_OK;
}

static int run_follow(const cli_ctx *ctx, const events_opts *o, int64_t after)
{
    struct sigaction sa = {0}, old_int, old_term;
    follow_state st = {.ctx = *ctx, .o = o, .last_id = after};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    g_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    cli_sse_init(&st.sse, on_sse, &st);
    int rc = follow(&st);
    cli_sse_free(&st.sse);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    return rc;
}

/* ---- options ---------------------------------------------------------------------------- */

static int parse_opt(cli_args *a, events_opts *o, cli_ctx *ctx)
{
    const char *lim;
    int r;
    if (cli_args_flag(a, "--json"))
        ctx->json = true;
    else if (cli_args_flag(a, "--follow") || cli_args_flag(a, "-f"))
        o->follow = true;
    else if ((r = cli_args_value(a, "--since", &o->since)) != 0 ||
             (r = cli_args_value(a, "--type", &o->type)) != 0 ||
             (r = cli_args_value(a, "--severity", &o->severity)) != 0)
        return r < 0 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    else if ((r = cli_args_value(a, "--limit", &lim)) != 0) {
        if (r < 0 || cli_check_int("--limit", lim, 1, 10000, &o->limit) != CLI_EXIT_OK)
            return CLI_EXIT_USAGE;
    } else
        return cli_args_bad(a);
    return CLI_EXIT_OK;
}

static int check_opts(const events_opts *o)
{
    int64_t ms;
    if (o->since && cli_check_time("--since", o->since, core_now_ms(), &ms) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (o->severity && severity_rank(o->severity) < 0) {
        fprintf(stderr, "ippoc: --severity: bad severity '%s' (expected debug, info, warning, error or critical)\n",
                o->severity);
        return CLI_EXIT_USAGE;
    }
    if (o->type && !*o->type) {
        fprintf(stderr, "ippoc: --type: empty type (expected e.g. daemon.start or anomaly*)\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static int parse_events(cli_args *a, events_opts *o, cli_ctx *ctx)
{
    while (cli_args_next(a)) {
        if (cli_args_is_help(a))
            return -1;
        int rc = parse_opt(a, o, ctx);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    return check_opts(o);
}

static int list_and_follow(const cli_ctx *ctx, const events_opts *o)
{
    int64_t newest = 0;
    json_t *ans;
    int rc;
    if (o->follow && (rc = latest_id(ctx, o, &newest)) != CLI_EXIT_OK)
        return rc;
    if ((rc = query_events(ctx, o, o->limit, true, &ans)) != CLI_EXIT_OK)
        return rc;
    const json_t *list = json_object_get(ans, "events");
    if (ctx->json && !o->follow) {
        cli_print_json(ans);
    } else if (json_array_size(list) == 0 && !o->follow) {
        printf("no events\n");
    } else {
        int64_t max = print_list(list, ctx->json, true);
        newest = max > newest ? max : newest;
    }
    json_decref(ans);
    return o->follow ? run_follow(ctx, o, newest) : CLI_EXIT_OK;
}

int cmd_events(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    events_opts o = {.limit = DEFAULT_LIMIT};
    cli_args a;
    cli_args_init(&a, "events", argc, argv);
    int rc = parse_events(&a, &o, &ctx);
    if (rc < 0)
        return cli_args_help(&a);
    if (rc != CLI_EXIT_OK)
        return rc;
    return list_and_follow(&ctx, &o);
}
