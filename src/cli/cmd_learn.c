/* cmd_learn.c: `ippoc learn`: the cell reads. Files and directories are
 * read here, as the user (directories recursively, hidden and binary files
 * skipped), parsed to plain text (brain/learn_int.h: markdown, text, HTML,
 * man pages, PDF through pdftotext) and sent with their provenance to POST
 * /v1/learn, one document at a time; a URL is sent for the daemon to fetch.
 * `--feed URL` registers a feed (fetched once now), `--feed` alone lists
 * the feeds, `--list` shows the store, `--search QUERY` searches it. */
#include "cli/cli.h"

#include "brain/learn_int.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define LEARN_CLI_TIMEOUT_MS 120000 /* a document's embedding, a feed's first fetch */
#define LEARN_DEPTH_MAX 32

typedef struct learn_opts {
    const char *kind; /* NULL: sniffed */
    bool pin, json;   /* json: each answer as one line of JSON */
    int added, unchanged, failed, skipped;
} learn_opts;

static bool is_url(const char *s)
{
    return !strncasecmp(s, "http://", 7) || !strncasecmp(s, "https://", 8);
}

/* Prints one document's answer. */
static void print_result(const char *name, const json_t *ans, learn_opts *o)
{
    const char *status = cli_jstr(ans, "status", "?");
    const char *title = cli_jstr(ans, "title", "");
    if (o->json) {
        char *line = json_dumps(ans, JSON_COMPACT);
        printf("%s\n", line ? line : "{}");
        free(line);
        *(strcmp(status, "unchanged") ? &o->added : &o->unchanged) += 1;
        return;
    }
    if (!strcmp(status, "unchanged")) {
        o->unchanged++;
        printf("%s: unchanged\n", name);
        return;
    }
    o->added++;
    printf("%s: added %.0f chunks (%s%s%s%s)\n", name, cli_jnum(ans, "chunks", 0), cli_jstr(ans, "kind", "?"),
           *title ? ", \"" : "", title, *title ? "\"" : "");
}

static int post(const cli_ctx *ctx, json_t *req, json_t **ans)
{
    char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (!body) {
        fprintf(stderr, "ippoc: learn: out of memory\n");
        return CLI_EXIT_API;
    }
    int rc = cli_http_post_json(ctx, "/v1/learn", body, ans);
    free(body);
    return rc;
}

/* Sends one document's request (a file's text or a URL; req is consumed) and
 * prints what was stored under name. Returns an exit code (UNREACH/AUTH stop
 * all; a refused document only counts as failed). Serves files and URLs. */
static int store(const cli_ctx *ctx, const char *name, json_t *req, learn_opts *o)
{
    json_t *ans;
    int rc = post(ctx, req, &ans);
    if (rc == CLI_EXIT_UNREACH || rc == CLI_EXIT_AUTH)
        return rc;
    if (rc) {
        fprintf(stderr, "ippoc: learn: %s: not stored (the daemon's answer is above)\n", name);
        o->failed++;
        return CLI_EXIT_OK;
    }
    print_result(name, ans, o);
    json_decref(ans);
    return CLI_EXIT_OK;
}

/* One file: read, parse, send. Returns an exit code (UNREACH/AUTH stop all). */
static int learn_file(const cli_ctx *ctx, const char *path, bool from_dir, learn_opts *o)
{
    char *buf, err[512];
    size_t len;
    int rc = learn_read_file(path, &buf, &len, err, sizeof err);
    if (rc) {
        fprintf(stderr, "ippoc: learn: %s: %s\n", path, err);
        o->failed++;
        return CLI_EXIT_OK;
    }
    bool gz = len >= 2 && (unsigned char)buf[0] == 0x1f && (unsigned char)buf[1] == 0x8b;
    if (from_dir && !gz && !learn_sniff(path, buf, len)) { /* a binary file in a directory: skipped */
        free(buf);
        o->skipped++;
        return CLI_EXIT_OK;
    }
    learn_doc d;
    rc = learn_parse(path, buf, len, o->kind, &d, err, sizeof err);
    free(buf);
    if (rc && from_dir && !strncmp(err, "binary data", 11)) { /* e.g. a .tar.gz */
        o->skipped++;
        return CLI_EXIT_OK;
    }
    if (rc) {
        fprintf(stderr, "ippoc: learn: %s: %s\n", path, err);
        o->failed++;
        return CLI_EXIT_OK;
    }
    char abs[PATH_MAX];
    const char *source = realpath(path, abs) ? abs : path;
    json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:b}", "source", source, "title", d.title, "kind", d.kind, "text",
                            d.text, "pin", o->pin);
    learn_doc_free(&d);
    if (!req) { /* text that is not UTF-8 */
        fprintf(stderr, "ippoc: learn: %s: the text is not valid UTF-8\n", path);
        o->failed++;
        return CLI_EXIT_OK;
    }
    return store(ctx, path, req, o);
}

static int hidden_or_self(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int learn_dir(const cli_ctx *ctx, const char *dir, int depth, learn_opts *o)
{
    if (depth > LEARN_DEPTH_MAX) {
        fprintf(stderr, "ippoc: learn: %s: deeper than %d directories, not read\n", dir, LEARN_DEPTH_MAX);
        o->failed++;
        return CLI_EXIT_OK;
    }
    struct dirent **names;
    int n = scandir(dir, &names, hidden_or_self, alphasort);
    if (n < 0) {
        fprintf(stderr, "ippoc: learn: %s: %s\n", dir, strerror(errno));
        o->failed++;
        return CLI_EXIT_OK;
    }
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        struct stat st;
        size_t dl = strlen(dir);
        bool slash = dl && dir[dl - 1] == '/'; /* "docs/" -> "docs/x.md", not "docs//x.md" */
        snprintf(path, sizeof path, "%s%s%s", dir, slash ? "" : "/", names[i]->d_name);
        if (rc == CLI_EXIT_OK && lstat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = learn_dir(ctx, path, depth + 1, o);
            else if (S_ISREG(st.st_mode) || (S_ISLNK(st.st_mode) && stat(path, &st) == 0 && S_ISREG(st.st_mode)))
                rc = learn_file(ctx, path, true, o);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

static int learn_url(const cli_ctx *ctx, const char *url, learn_opts *o)
{
    json_t *req = json_pack("{s:s, s:b}", "url", url, "pin", o->pin);
    if (o->kind)
        json_object_set_new(req, "kind", json_string(o->kind));
    return store(ctx, url, req, o);
}

/* ---- --feed, --list, --search --------------------------------------------------- */
static void fmt_when(const json_t *o, const char *key, char *buf, size_t n)
{
    int64_t ms = (int64_t)cli_jnum(o, key, 0);
    if (ms <= 0)
        snprintf(buf, n, "-");
    else
        cli_fmt_time(ms, buf, n);
}

static void print_feeds(const json_t *feeds)
{
    if (!json_array_size(feeds)) {
        printf("no feeds (add one with: ippoc learn --feed URL)\n");
        return;
    }
    static const char *const hdr[] = {"FEED", "PAPERS", "LAST SUCCESS", "FAILURES", "NEXT TRY"};
    cli_table t;
    cli_table_init(&t, 5, hdr);
    size_t i;
    json_t *f;
    json_array_foreach(feeds, i, f) {
        char papers[32], ok[64], fails[32], next[64];
        snprintf(papers, sizeof papers, "%.0f", cli_jnum(f, "entries", 0));
        snprintf(fails, sizeof fails, "%.0f", cli_jnum(f, "failures", 0));
        fmt_when(f, "last_success", ok, sizeof ok);
        fmt_when(f, "next_try", next, sizeof next);
        const char *cells[] = {cli_jstr(f, "url", "?"), papers, ok, fails, next};
        cli_table_row(&t, cells);
    }
    cli_table_print(&t, stdout);
    cli_table_free(&t);
    json_array_foreach(feeds, i, f) {
        if (json_object_get(f, "error"))
            printf("%s: last error: %s\n", cli_jstr(f, "url", "?"), cli_jstr(f, "error", "?"));
    }
}

static int do_feed(const cli_ctx *ctx, const char *url)
{
    json_t *ans;
    int rc;
    if (!url) {
        if ((rc = cli_http_get_json(ctx, "/v1/knowledge/feeds", &ans, NULL)) != CLI_EXIT_OK)
            return rc;
        if (ctx->json)
            cli_print_json(ans);
        else
            print_feeds(json_object_get(ans, "feeds"));
        json_decref(ans);
        return CLI_EXIT_OK;
    }
    if ((rc = post(ctx, json_pack("{s:s}", "feed", url), &ans)) != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        cli_print_json(ans);
    } else {
        printf("feed %s: %s\n", url, cli_jbool(ans, "registered", false) ? "registered" : "already followed");
        if (json_object_get(ans, "error"))
            printf("first fetch failed: %s (tried again later)\n", cli_jstr(ans, "error", "?"));
        else
            printf("%.0f entries, %.0f new papers stored\n", cli_jnum(ans, "entries", 0), cli_jnum(ans, "added", 0));
    }
    json_decref(ans);
    return CLI_EXIT_OK;
}

static int do_list(const cli_ctx *ctx)
{
    json_t *ans;
    int rc = cli_http_get_json(ctx, "/v1/knowledge?limit=20", &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        cli_print_json(ans);
        json_decref(ans);
        return CLI_EXIT_OK;
    }
    const json_t *s = json_object_get(ans, "stats");
    char bytes[32];
    cli_fmt_bytes(cli_jnum(s, "bytes", 0), bytes, sizeof bytes);
    printf("%.0f documents, %.0f chunks, %.0f links, %s (embedding: %s, %.0f dims)\n", cli_jnum(s, "docs", 0),
           cli_jnum(s, "chunks", 0), cli_jnum(s, "links", 0), bytes, cli_jstr(s, "embedder", "?"),
           cli_jnum(s, "dims", 0));
    const json_t *docs = json_object_get(ans, "docs");
    if (json_array_size(docs)) {
        static const char *const hdr[] = {"ID", "KIND", "CHUNKS", "ADDED", "TITLE", "SOURCE"};
        cli_table t;
        cli_table_init(&t, 6, hdr);
        size_t i;
        json_t *d;
        json_array_foreach(docs, i, d) {
            char id[32], chunks[32], when[64], title[64];
            snprintf(id, sizeof id, "%.0f", cli_jnum(d, "id", 0));
            snprintf(chunks, sizeof chunks, "%.0f", cli_jnum(d, "chunks", 0));
            fmt_when(d, "ts", when, sizeof when);
            cli_fmt_cut(cli_jstr(d, "title", ""), 40, title, sizeof title);
            const char *cells[] = {id, cli_jstr(d, "kind", "?"), chunks, when, title, cli_jstr(d, "source", "?")};
            cli_table_row(&t, cells);
        }
        printf("\nnewest documents\n");
        cli_table_print(&t, stdout);
        cli_table_free(&t);
    }
    const json_t *feeds = json_object_get(ans, "feeds");
    if (json_array_size(feeds)) {
        printf("\nfeeds\n");
        print_feeds(feeds);
    }
    json_decref(ans);
    return CLI_EXIT_OK;
}

static int do_search(const cli_ctx *ctx, const char *q, const char *mode, long limit)
{
    cli_url u;
    char n[16];
    snprintf(n, sizeof n, "%ld", limit);
    cli_url_init(&u, "/v1/knowledge/search");
    cli_url_param(&u, "q", q);
    cli_url_param(&u, "mode", mode);
    cli_url_param(&u, "limit", n);
    json_t *ans;
    int rc = cli_http_get_json(ctx, u.buf, &ans, NULL);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (ctx->json) {
        cli_print_json(ans);
        json_decref(ans);
        return CLI_EXIT_OK;
    }
    const json_t *hits = json_object_get(ans, "hits");
    if (!json_array_size(hits))
        printf("nothing found for \"%s\"\n", q);
    size_t i;
    json_t *h;
    json_array_foreach(hits, i, h) {
        const char *title = cli_jstr(h, "title", "");
        printf("%zu. %s (%s, score %.3g)\n   %s\n   %s\n", i + 1, *title ? title : "(untitled)",
               cli_jstr(h, "kind", "?"), cli_jnum(h, "score", 0), cli_jstr(h, "source", "?"),
               cli_jstr(h, "snippet", ""));
    }
    json_decref(ans);
    return CLI_EXIT_OK;
}

int cmd_learn(const cli_ctx *ctx0, int argc, char **argv)
{
    cli_ctx ctx = *ctx0;
    if (ctx.timeout_ms < LEARN_CLI_TIMEOUT_MS)
        ctx.timeout_ms = LEARN_CLI_TIMEOUT_MS;
    cli_args a;
    cli_args_init(&a, "learn", argc, argv);
    learn_opts o = {0};
    bool list = false, feed = false;
    const char *search = NULL, *mode = NULL, *feed_url = NULL, *v;
    long limit = 10;
    const char **paths = calloc((size_t)argc + 1, sizeof *paths);
    int npaths = 0, r;
    if (!paths)
        return CLI_EXIT_API;
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            free(paths);
            return cli_args_help(&a);
        }
        if (cli_args_flag(&a, "--json"))
            ctx.json = true;
        else if (cli_args_flag(&a, "--pin"))
            o.pin = true;
        else if (cli_args_flag(&a, "--list"))
            list = true;
        else if (cli_args_flag(&a, "--feed")) {
            feed = true;
            if (a.i + 1 < a.argc && a.argv[a.i + 1][0] != '-')
                feed_url = a.argv[++a.i];
        } else if ((r = cli_args_value(&a, "--feed", &v)) != 0) {
            if (r < 0)
                return free(paths), CLI_EXIT_USAGE;
            feed = true, feed_url = v;
        } else if ((r = cli_args_value(&a, "--kind", &o.kind)) != 0 || (r = cli_args_value(&a, "--search", &search)) ||
                   (r = cli_args_value(&a, "--mode", &mode))) {
            if (r < 0)
                return free(paths), CLI_EXIT_USAGE;
        } else if ((r = cli_args_value(&a, "--limit", &v)) != 0) {
            if (r < 0 || cli_check_int("--limit", v, 1, 100, &limit) != CLI_EXIT_OK)
                return free(paths), CLI_EXIT_USAGE;
        } else if (cli_args_positional(&a))
            paths[npaths++] = a.argv[a.i];
        else
            return free(paths), cli_args_bad(&a);
    }
    static const char *const kinds[] = {"markdown", "text", "html", "man", "pdf", "runbook", NULL};
    bool kind_ok = !o.kind;
    for (int i = 0; o.kind && kinds[i]; i++)
        kind_ok = kind_ok || !strcmp(o.kind, kinds[i]);
    int modes = list + feed + (search != NULL);
    int rc = CLI_EXIT_OK;
    if (!kind_ok) {
        fprintf(stderr, "ippoc: learn: --kind: '%s' is not markdown, text, html, man, pdf or runbook\n", o.kind);
        rc = CLI_EXIT_USAGE;
    } else if (mode && strcmp(mode, "hybrid") && strcmp(mode, "bm25") && strcmp(mode, "vector")) {
        fprintf(stderr, "ippoc: learn: --mode: '%s' is not hybrid, bm25 or vector\n", mode);
        rc = CLI_EXIT_USAGE;
    } else if (modes > 1 || (modes && npaths)) {
        fprintf(stderr, "ippoc: learn: give files, or one of --list, --feed, --search (see 'ippoc help learn')\n");
        rc = CLI_EXIT_USAGE;
    } else if (!modes && !npaths) {
        fprintf(stderr, "ippoc: learn: missing FILE, DIR or URL (see 'ippoc help learn')\n");
        rc = CLI_EXIT_USAGE;
    }
    if (rc != CLI_EXIT_OK || modes) {
        free(paths);
        if (rc != CLI_EXIT_OK)
            return rc;
        return list ? do_list(&ctx) : feed ? do_feed(&ctx, feed_url) : do_search(&ctx, search, mode, limit);
    }
    if (o.kind && !strcmp(o.kind, "runbook"))
        o.pin = true;
    o.json = ctx.json;
    for (int i = 0; i < npaths && rc == CLI_EXIT_OK; i++) {
        struct stat st;
        if (is_url(paths[i]))
            rc = learn_url(&ctx, paths[i], &o);
        else if (stat(paths[i], &st) != 0) {
            fprintf(stderr, "ippoc: learn: %s: %s\n", paths[i], strerror(errno));
            o.failed++;
        } else if (S_ISDIR(st.st_mode))
            rc = learn_dir(&ctx, paths[i], 0, &o);
        else
            rc = learn_file(&ctx, paths[i], false, &o);
    }
    free(paths);
    if (rc != CLI_EXIT_OK)
        return rc;
    if (o.added + o.unchanged + o.failed + o.skipped > 1 && !o.json)
        printf("%d added, %d unchanged, %d failed%s", o.added, o.unchanged, o.failed, o.skipped ? "" : "\n");
    if (o.skipped && o.added + o.unchanged + o.failed + o.skipped > 1 && !o.json)
        printf(", %d binary files skipped\n", o.skipped);
    return o.failed ? CLI_EXIT_API : CLI_EXIT_OK;
}
