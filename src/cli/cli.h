/* cli.h: internal interface of the `ippoc` command-line front end.
 *
 * `ippoc` is a thin client of ippocd's HTTP/JSON API, the way git's porcelain
 * sits over its library: main.c parses the global options and dispatches to
 * one cmd_*.c per command; http.c talks to the daemon (libcurl); sse.c parses
 * server-sent events; fmt.c and table.c turn numbers and rows into text.
 *
 * Commands never call exit(): they print their own messages to stderr and
 * return one of the CLI_EXIT_* codes, which main() returns. */
#ifndef IPPOC_CLI_H
#define IPPOC_CLI_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- exit codes (documented in `ippoc --help`) ------------------------------ */
enum {
    CLI_EXIT_OK = 0,       /* success */
    CLI_EXIT_API = 1,      /* the API answered with an error (or garbage) */
    CLI_EXIT_USAGE = 2,    /* bad command line */
    CLI_EXIT_UNREACH = 3,  /* cannot reach the daemon */
    CLI_EXIT_AUTH = 4,     /* unauthorized (missing or wrong token) */
};

#define CLI_DEFAULT_URL "http://127.0.0.1:7070"
#define CLI_DEFAULT_STATE_DIR "/var/lib/ippoc" /* ippocd's default [daemon] state_dir */
#define CLI_URL_MAX 1024
#define CLI_PATH_MAX 4096

/* Options shared by every command (global options, resolved once). */
typedef struct cli_ctx {
    char url[CLI_URL_MAX]; /* base URL of the API, no trailing '/' */
    const char *token;     /* bearer token or NULL */
    int64_t timeout_ms;    /* per request (connect timeout for streams) */
    bool json;             /* print the API's JSON instead of text */
    char url_file[CLI_PATH_MAX]; /* the ippocd.url the URL came from, or "" */
    char socket[CLI_PATH_MAX];   /* ippocd.sock beside it (or in the default state dir): used instead of TCP */
} cli_ctx;

/* ---- opts.c: global options ---------------------------------------------------- */
typedef struct cli_global {
    const char *url;       /* --url */
    const char *token;     /* --token */
    const char *timeout;   /* --timeout */
    const char *state_dir; /* --state-dir */
    bool json, help, version;
} cli_global;

/* Consumes the global options at the front of argv (up to the command name).
 * Returns the index of the command (== argc if none) or -1 after printing a
 * usage error. */
int cli_parse_global(int argc, char **argv, cli_global *g);
/* Fills ctx from g and the environment (IPPOC_URL, IPPOC_TOKEN,
 * IPPOC_STATE_DIR, ./.ippoc/ippocd.url). Returns CLI_EXIT_OK or an exit code
 * after printing why. */
int cli_resolve(const cli_global *g, cli_ctx *ctx);

/* Re-reads ctx->url_file (a restarted daemon may listen on a new port).
 * Returns 1 if the URL changed, 0 otherwise; never prints. */
int cli_reload_url(cli_ctx *ctx);

/* ---- args.c: per-command argument scanning -------------------------------------- */
typedef struct cli_args {
    int argc;
    char **argv;
    int i;            /* current index */
    const char *cmd;  /* command name, for messages */
    bool only_pos;    /* after "--" */
} cli_args;

void cli_args_init(cli_args *a, const char *cmd, int argc, char **argv);
/* Next argument, or NULL at the end (a->i then points at it). */
const char *cli_args_next(cli_args *a);
/* True if the current argument is the flag `name` (e.g. "--json"). */
bool cli_args_flag(cli_args *a, const char *name);
/* 1 if the current argument is option `name` with a value ("--since 10m" or
 * "--since=10m") stored in *val; 0 if it is not that option; -1 (after
 * printing why) if the value is missing. */
int cli_args_value(cli_args *a, const char *name, const char **val);
/* True if the current argument is a positional one (not an option). */
bool cli_args_positional(const cli_args *a);
/* -h / --help, and printing the command's help (returns CLI_EXIT_OK). */
bool cli_args_is_help(const cli_args *a);
/* A command whose only option is --json: GETs path and prints the answer
 * as JSON or with print(). Returns the exit code. */
int cli_run_get(const cli_ctx *ctx0, const char *cmd, int argc, char **argv, const char *path,
                void (*print)(const cli_ctx *ctx, const json_t *ans));
int cli_args_help(const cli_args *a);
/* Prints "unknown option" / "unexpected argument" for the current argument
 * and returns CLI_EXIT_USAGE. */
int cli_args_bad(const cli_args *a);
/* The whole command line of a command that takes --json and at most one
 * positional argument (pos NULL: none; posname non-NULL: required, named in
 * the error). Returns CLI_EXIT_OK, CLI_EXIT_USAGE (after printing why), or
 * -1 for -h/--help. */
int cli_args_simple(cli_args *a, cli_ctx *ctx, const char **pos, const char *posname);
/* cli_args_simple, and one option opt with a value (*val, kept when absent). */
int cli_args_opt(cli_args *a, cli_ctx *ctx, const char *opt, const char **val, const char **pos, const char *posname);
/* Who asks, for the audit: "cli:alice" (the login name, only [A-Za-z0-9._-], at most 48 of them). */
void cli_who_am_i(char *buf, size_t n);
/* Validators: print "ippoc: OPT: bad ... 'VAL' (expected ...)" and return
 * CLI_EXIT_USAGE on failure, CLI_EXIT_OK on success. */
int cli_check_time(const char *opt, const char *val, int64_t now_ms, int64_t *ms);
int cli_check_duration(const char *opt, const char *val, int64_t *ms);
int cli_check_int(const char *opt, const char *val, long lo, long hi, long *out);

/* ---- http.c: the daemon's API over libcurl ------------------------------------------ */
/* GETs ctx->url + path (path starts with "/v1/...", already escaped) and
 * parses the JSON answer into *out (caller json_decref()s). On failure prints
 * the reason and returns CLI_EXIT_API/UNREACH/AUTH. If raw is not NULL it
 * gets the body text (caller free()s). */
int cli_http_get_json(const cli_ctx *ctx, const char *path, json_t **out, char **raw);
/* POSTs body_text (JSON; NULL = empty body) to ctx->url + path; the answer
 * and the failures as for cli_http_get_json. */
int cli_http_post_json(const cli_ctx *ctx, const char *path, const char *body_text, json_t **out);
/* cli_http_post_json with obj (taken: freed here) as its compact JSON text;
 * NULL obj: out of memory (CLI_EXIT_API, said on stderr). */
int cli_http_post_obj(const cli_ctx *ctx, const char *path, json_t *obj, json_t **out);
/* POSTs {} to path (a command on one thing: stop, forget); prints the answer
 * as JSON under --json, else the line done. Returns the exit code. */
int cli_http_post_done(const cli_ctx *ctx, const char *path, const char *done);
/* GETs a text answer (a diff, a file) into *text (caller free()s); the
 * failures as for cli_http_get_json. */
int cli_http_get_text(const cli_ctx *ctx, const char *path, char **text);
/* One request (a GET, or a POST of post_body when not NULL) answered by
 * JSON that never prints: a failure is one line in err ("cannot reach
 * ippocd at ...", "not_found (HTTP 404): ..."); *status is the HTTP status
 * (0: no answer). Returns CLI_EXIT_OK or the exit code the failure would
 * have. For `ippoc mcp`, which hands failures to its client. */
int cli_http_call(const cli_ctx *ctx, const char *path, const char *post_body, json_t **out, long *status,
                  char *err, size_t errn);

/* Receives bytes of a stream; returns 0 to go on, non-zero to stop. */
typedef int (*cli_stream_fn)(const char *buf, size_t n, void *ud);

typedef struct cli_stream_result {
    bool connected;   /* the server answered 200 and the body started */
    bool stopped;     /* *stop was set (signal) or the callback asked to stop */
    char reason[256]; /* why the connection ended, for messages */
} cli_stream_result;

/* GETs a never-ending body (text/event-stream) and feeds it to fn.
 * last_event_id (may be NULL) is sent as Last-Event-ID. Aborts when *stop is
 * set. A connection that could not be made or that dropped returns
 * CLI_EXIT_UNREACH without printing (the caller reconnects); an HTTP error
 * status prints the API's message and returns CLI_EXIT_API/AUTH; a stream the
 * server closed or that was stopped returns CLI_EXIT_OK. */
int cli_http_stream(const cli_ctx *ctx, const char *path, const char *last_event_id,
                    cli_stream_fn fn, void *ud, volatile sig_atomic_t *stop,
                    cli_stream_result *res);

/* Query-string / path building with percent-escaping. */
typedef struct cli_url {
    char buf[4096];
    size_t len;
    bool overflow;
    bool has_query;
} cli_url;

void cli_url_init(cli_url *u, const char *path);
void cli_url_append_escaped(cli_url *u, const char *segment); /* path segment */
void cli_url_param(cli_url *u, const char *key, const char *value); /* skips NULL value */

/* ---- sse.c: incremental text/event-stream parser --------------------------------------- */
typedef struct cli_sse_event {
    const char *id;    /* last event id seen (may be "") */
    const char *event; /* "message" when the stream gave none */
    const char *data;  /* data lines joined with '\n' */
} cli_sse_event;

typedef int (*cli_sse_fn)(const cli_sse_event *ev, void *ud); /* non-zero: stop */

typedef struct cli_sse {
    char *line;  size_t llen, lcap;
    char *data;  size_t dlen, dcap;
    bool has_data;
    bool skip_lf;      /* the previous byte was '\r' */
    char event[128];
    char last_id[128];
    cli_sse_fn fn;
    void *ud;
} cli_sse;

void cli_sse_init(cli_sse *s, cli_sse_fn fn, void *ud);
/* Feeds bytes; calls fn for each complete event. Returns 0, 1 if fn asked to
 * stop, or -ENOMEM / -E2BIG (a line over 1 MiB). */
int cli_sse_feed(cli_sse *s, const char *buf, size_t n);
/* Drops a partial event (after a reconnect); keeps last_id. */
void cli_sse_reset(cli_sse *s);
void cli_sse_free(cli_sse *s);

/* ---- fmt.c: human formatting ------------------------------------------------------------ */
/* A value with its unit: "34.5%", "1.2 GiB", "12.3 KiB/s", "3.4/s", "12 ms",
 * "42", "-" for NaN. Units: percent, bytes, bytes/s, 1/s, seconds/s, ms, us,
 * anything else is appended after a space. */
void cli_fmt_value(double v, const char *unit, char *buf, size_t n);
void cli_fmt_bytes(double bytes, char *buf, size_t n);        /* "1.2 GiB" */
void cli_fmt_number(double v, char *buf, size_t n);           /* "42", "0.25", "1.2M" */
void cli_fmt_duration(int64_t ms, char *buf, size_t n);       /* "1h2m3s", "250ms" */
void cli_fmt_micros(double us, char *buf, size_t n);          /* "850us", "1.2ms", "2.5s" */
void cli_fmt_time(int64_t ms, char *buf, size_t n);           /* local "2024-05-01 12:34:56" */
/* A timestamp from JSON that may be epoch ms, epoch seconds or text. */
int64_t cli_json_time_ms(const json_t *v);
/* Payload object as "k=v k2=v2" (strings bare unless they need quotes). */
void cli_fmt_payload(const json_t *payload, char *buf, size_t n);
/* Series key "name{labels}" from a metric/series object: its "key" field if
 * present, else built from "name" and the "labels" object. */
void cli_fmt_key(const json_t *obj, char *buf, size_t n);

bool cli_locale_utf8(void);  /* LC_ALL, else LC_CTYPE, else LANG mentions UTF-8 */
int cli_term_width(void);    /* columns of stdout's terminal, 0 when not a tty */
/* Display width of UTF-8 text (code points; no wide-char handling). */
size_t cli_text_width(const char *s);

/* JSON accessors tolerant of missing fields and wrong types. */
const char *cli_jstr(const json_t *o, const char *key, const char *dflt);
double cli_jnum(const json_t *o, const char *key, double dflt); /* NaN-able */
bool cli_jbool(const json_t *o, const char *key, bool dflt);

/* Prints the JSON for --json: pretty, keys in their order, newline. */
void cli_print_json(const json_t *j);

/* ---- table.c: aligned text tables ------------------------------------------------------------ */
#define CLI_TABLE_MAXCOLS 12

typedef struct cli_table {
    int ncols;
    bool right[CLI_TABLE_MAXCOLS]; /* right-align this column */
    char **cells;                  /* rows * ncols, row 0 = headers */
    size_t nrows, cap;
    bool oom;
} cli_table;

void cli_table_init(cli_table *t, int ncols, const char *const *headers);
void cli_table_row(cli_table *t, const char *const *cells);
/* Columns separated by two spaces; the last column is not padded. */
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_free(cli_table *t);

/* ---- cmd_show.c: sparkline (exposed for tests) -------------------------------------------- */
typedef struct cli_point {
    int64_t ts;   /* ms */
    double mean, min, max;
    double count;
} cli_point;

/* Renders points falling in [from_ms, to_ms) as `width` columns (each the
 * count-weighted mean of its points, blank when it has none), scaled between
 * lo and hi, into buf (UTF-8 block chars or ASCII). Returns columns drawn. */
int cli_sparkline(const cli_point *pts, size_t n, int64_t from_ms, int64_t to_ms, int width,
                  double lo, double hi, bool ascii, char *buf, size_t bufsz);

/* ---- review.c: `ippoc review`'s findings (cmd_review.c) ---------------------------------- */
enum { CLI_REVIEW_ERROR = 0, CLI_REVIEW_WARNING, CLI_REVIEW_NOTE };

typedef struct cli_review_file {
    char name[CLI_PATH_MAX]; /* as given (files) or as the diff names it */
    char real[CLI_PATH_MAX]; /* its realpath, "" when it does not exist */
    int nlines;              /* lines of the file (or the last line a hunk covers) */
    int *lo, *hi;            /* diff: the new side's hunk lines [lo, hi]; NULL: the whole file */
    size_t nr;
} cli_review_file;

typedef struct cli_review_finding {
    int file, line, sev, seq;
    char msg[512]; /* control characters blanked */
} cli_review_finding;

typedef struct cli_review {
    cli_review_file *files;
    size_t nfiles;
    cli_review_finding *found;
    size_t nfound, capfound;
    int dropped; /* lines of the model's answer dropped */
} cli_review;

void cli_review_free(cli_review *r);
/* Index of the new file, or -ENOMEM. */
int cli_review_add_file(cli_review *r, const char *name, int nlines);
int cli_review_add_range(cli_review *r, int file, int lo, int hi); /* 0 or -ENOMEM */
bool cli_review_line_ok(const cli_review *r, int file, long line);
int cli_review_find_file(const cli_review *r, const char *name); /* -1: none */
int cli_review_severity(const char *s); /* CLI_REVIEW_* or -1 */
int cli_review_add(cli_review *r, int file, int line, int sev, const char *msg);
/* The model's answer, one JSON object per line: kept findings (>= 0), each
 * dropped line said on log and counted in r->dropped; -ENOMEM. */
int cli_review_parse_answer(cli_review *r, const char *answer, FILE *log);
/* cppcheck's / clang-tidy's "PATH:LINE:[COL:] SEVERITY: MESSAGE" lines about
 * the files under review (and, for a diff, in its hunks): findings added. */
int cli_review_parse_tool(cli_review *r, const char *output);
/* FILE:LINE: severity: message, by file and line; returns the errors. */
int cli_review_print(cli_review *r, FILE *out);
/* Unified diff -> files and hunk ranges, and the text the model reads (each
 * line with its new-side number), malloc'd into *prompt. 0 or -EINVAL with
 * "diff line N: reason" / -ENOMEM. */
int cli_review_parse_diff(cli_review *r, const char *diff, char **prompt, char *err, size_t errlen);
int cmd_review(const cli_ctx *ctx, int argc, char **argv); /* cmd_review.c: no daemon */

/* ---- heal_fmt.c: text for the healing commands (exposed for tests) ------------------------ */
/* An id argument: 1..UINT64_MAX digits; prints the usage error and returns
 * CLI_EXIT_USAGE otherwise. */
int cli_check_id(const char *cmd, const char *val, uint64_t *id);
/* s cut to at most max display columns, "..." marking a cut; newlines become
 * blanks. */
void cli_fmt_cut(const char *s, size_t max, char *buf, size_t n);
/* A service's last_exit {status, signal, ts}: "SIGKILL 3m ago", "exit 1 5s ago",
 * "exit 0", "-" when none. */
void cli_fmt_exit(const json_t *last_exit, int64_t now_ms, char *buf, size_t n);
/* The VERDICT/OUTCOME cell of an audit record: "execute", "ok", "failed: why",
 * "queue (pending 3)", "approved by alice", "refuse: rate limited". */
void cli_fmt_audit_outcome(const json_t *rec, char *buf, size_t n);
/* The line `ippoc audit --verify` prints for GET /v1/audit/verify's answer;
 * returns true when the log is intact. */
bool cli_fmt_verify(const json_t *v, char *buf, size_t n);
/* "in 4m32s" from a pending entry's expires_in_ms (or expires_ms, epoch). */
void cli_fmt_expires(const json_t *p, int64_t now_ms, char *buf, size_t n);

/* ---- commands -------------------------------------------------------------------------------- */
int cmd_status(const cli_ctx *ctx, int argc, char **argv);
int cmd_metrics(const cli_ctx *ctx, int argc, char **argv);
int cmd_show(const cli_ctx *ctx, int argc, char **argv);
int cmd_events(const cli_ctx *ctx, int argc, char **argv);
int cmd_services(const cli_ctx *ctx, int argc, char **argv);
int cmd_incidents(const cli_ctx *ctx, int argc, char **argv);
int cmd_incident(const cli_ctx *ctx, int argc, char **argv);
int cmd_pending(const cli_ctx *ctx, int argc, char **argv);
int cmd_approve(const cli_ctx *ctx, int argc, char **argv);
int cmd_reject(const cli_ctx *ctx, int argc, char **argv);
int cmd_audit(const cli_ctx *ctx, int argc, char **argv);
int cmd_anomalies(const cli_ctx *ctx, int argc, char **argv);
int cmd_detect(const cli_ctx *ctx, int argc, char **argv); /* local files, no daemon */
int cmd_logs(const cli_ctx *ctx, int argc, char **argv);
int cmd_why(const cli_ctx *ctx, int argc, char **argv);      /* cmd_why.c: the brain */
int cmd_diagnose(const cli_ctx *ctx, int argc, char **argv);
int cmd_digest(const cli_ctx *ctx, int argc, char **argv); /* cmd_digest.c: dreaming */
int cmd_dream(const cli_ctx *ctx, int argc, char **argv);
int cmd_learn(const cli_ctx *ctx, int argc, char **argv);    /* cmd_learn.c: documents and feeds */
int cmd_ask(const cli_ctx *ctx, int argc, char **argv);      /* cmd_ask.c: questions answered from memory */
int cmd_prefs(const cli_ctx *ctx, int argc, char **argv);   /* cmd_prefs.c: preferences */
/* cmd_genome.c: the genome (history, diff, rollback, genome check|show) and `ippoc evolve watch` */
int cmd_history(const cli_ctx *ctx, int argc, char **argv);
int cmd_diff(const cli_ctx *ctx, int argc, char **argv);
int cmd_rollback(const cli_ctx *ctx, int argc, char **argv);
int cmd_genome(const cli_ctx *ctx, int argc, char **argv);
int cmd_evolve_watch(const cli_ctx *ctx, int argc, char **argv); /* argv[0] = "watch" */
/* cmd_evolve_code.c: `ippoc evolve code` and `ippoc evolve accept` (argv[0]: the subcommand) */
int cmd_evolve_code(const cli_ctx *ctx, int argc, char **argv);
int cmd_evolve_accept(const cli_ctx *ctx, int argc, char **argv);
int cmd_tool(const cli_ctx *ctx, int argc, char **argv);    /* cmd_tool.c: ToolSmith's tools */
int cmd_propose(const cli_ctx *ctx, int argc, char **argv); /* cmd_propose.c: POST /v1/actions */
int cmd_mcp(const cli_ctx *ctx, int argc, char **argv);     /* cmd_mcp.c: a Model Context Protocol server on stdio */
/* cmd_why.c: a diagnosis (GET /v1/incidents/ID/diagnosis's shape) as text;
 * the diagnosis kept on an incident's JSON, NULL when none. */
void cli_print_diagnosis(const json_t *d);
const json_t *cli_incident_diagnosis(const json_t *inc);
int cmd_logs_templates(const cli_ctx *ctx, int argc, char **argv); /* `logs templates`: a local file, no daemon */
int cmd_llm(const cli_ctx *ctx, int argc, char **argv); /* cmd_llm.c: the language-model client */
int cmd_evolve(const cli_ctx *ctx, int argc, char **argv); /* cmd_evolve.c: experiment runs, subcommands */

/* ---- mesh_args.c: `ippoc mesh invite|revoke`'s arguments (pure; tests/cli/test_mesh_args.c) ---- */
#define CLI_MESH_SEEDS_MAX 8     /* seeds in a token (MESH_ID_SEEDS_MAX) */
#define CLI_MESH_DAYS_MAX 3650   /* longest certificate --days */

typedef struct cli_mesh_invite {
    const char *node_pk; /* NODE_PK, 64 hex digits (checked by the caller's key parser) */
    const char *id;      /* --id NAME */
    uint32_t roles;      /* --roles (MESH_ROLE_* bits; default all) */
    long days;           /* --days (default 365) */
    int64_t from;        /* --from: unix seconds the certificate starts (default now) */
    int nseeds;
    const char *seeds[CLI_MESH_SEEDS_MAX]; /* --seed HOST:PORT, repeatable */
    bool help;
} cli_mesh_invite;

typedef struct cli_mesh_revoke {
    uint64_t serial;     /* --serial N (nonzero), or 0 */
    const char *key;     /* --key NODE_PK, or NULL */
    int reason;          /* --reason (MESH_REASON_*; default unspecified) */
    bool list;           /* --list: print the list, revoke nothing */
    bool help;
} cli_mesh_revoke;

/* Parse argv (argv[0] the subcommand's name): 0, or -EINVAL with err naming
 * the argument and the reason ("--days: bad number 'x' (expected ...)"). */
int cli_mesh_parse_invite(int argc, char **argv, int64_t now, cli_mesh_invite *o, char *err, size_t n);
int cli_mesh_parse_revoke(int argc, char **argv, cli_mesh_revoke *o, char *err, size_t n);
/* "key-compromise", "retired", "superseded", "unspecified" -> MESH_REASON_*; -1 when unknown. */
int cli_mesh_reason(const char *name);
/* `ippoc mesh ...` (cmd_mesh.c): local key files in the state dir, or the
 * daemon's GET /v1/mesh/... routes; resolves the daemon's URL itself. */
int cmd_mesh(const cli_global *g, int argc, char **argv);
/* The state dir the local commands use: --state-dir, $IPPOC_STATE_DIR,
 * ./.ippoc when it holds an ippocd.url, else /var/lib/ippoc. */
void cli_state_dir(const cli_global *g, char *buf, size_t n);

/* help.c: usage texts. cli_help_command returns false for an unknown name. */
void cli_usage(FILE *f);
bool cli_help_command(const char *name, FILE *f);

#endif
