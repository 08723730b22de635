/* cmd_logs_templates.c: `ippoc logs templates FILE [--format FORMAT]
 * [--mask REGEX]... [--sim X] [--depth N] [--classic]`.
 *
 * Mines the log templates of FILE offline (no daemon) with the same miner
 * ippocd runs on live logs (src/logs), and writes `LineId,EventId,
 * EventTemplate` CSV to stdout: a header row, then one row per input line in
 * order, each with the final template of its group (as the Loghub benchmark
 * tools write it). --format splits each line's header off first (a
 * Loghub-style format; a line that does not match is templated whole);
 * --mask adds a PCRE2 pattern whose matches become <*>. This is what
 * bench/logparse runs.
 *
 * Exit codes: 0 ok; 2 bad command line (bad option value, bad format or
 * regex: the reason and the offset); 1 the file cannot be read or the output
 * cannot be written. */
#include "cli/cli.h"

#include "logs/logs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define TPL_MAX_MASKS 64

typedef struct tpl_cmd {
    const char *file, *format;
    const char *masks[TPL_MAX_MASKS];
    int nmasks;
    logs_miner_opts o;
} tpl_cmd;

static int tpl_args(tpl_cmd *c, int argc, char **argv, bool *help)
{
    cli_args a;
    cli_args_init(&a, "logs templates", argc, argv);
    const char *v;
    int r;
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            *help = true;
            return CLI_EXIT_OK;
        }
        if ((r = cli_args_value(&a, "--format", &v)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
            c->format = v;
        } else if ((r = cli_args_value(&a, "--mask", &v)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
            if (c->nmasks >= TPL_MAX_MASKS) {
                fprintf(stderr, "ippoc: logs templates: --mask: at most %d masks\n", TPL_MAX_MASKS);
                return CLI_EXIT_USAGE;
            }
            c->masks[c->nmasks++] = v;
        } else if ((r = cli_args_value(&a, "--sim", &v)) != 0) {
            if (r < 0)
                return CLI_EXIT_USAGE;
            char *end;
            errno = 0;
            double x = strtod(v, &end);
            if (end == v || *end || errno || !(x > 0.0 && x <= 1.0)) {
                fprintf(stderr, "ippoc: --sim: bad similarity '%s' (expected a number in (0, 1])\n", v);
                return CLI_EXIT_USAGE;
            }
            c->o.sim = x;
        } else if ((r = cli_args_value(&a, "--depth", &v)) != 0) {
            long d;
            if (r < 0 || cli_check_int("--depth", v, 3, 32, &d) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            c->o.depth = (int)d;
        } else if ((r = cli_args_value(&a, "--max-templates", &v)) != 0) {
            long d;
            if (r < 0 || cli_check_int("--max-templates", v, 0, 100000000, &d) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            c->o.max_templates = (int)d;
        } else if ((r = cli_args_value(&a, "--variants", &v)) != 0) {
            long d;
            if (r < 0 || cli_check_int("--variants", v, 1, 1000000, &d) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            c->o.variants = (int)d;
        } else if ((r = cli_args_value(&a, "--sim-tokens", &v)) != 0) {
            long d;
            if (r < 0 || cli_check_int("--sim-tokens", v, 1, 1000000, &d) != CLI_EXIT_OK)
                return CLI_EXIT_USAGE;
            c->o.sim_tokens = (int)d;
        } else if (cli_args_flag(&a, "--classic")) {
            c->o.classic = true;
        } else if (!c->file && cli_args_positional(&a)) {
            c->file = a.argv[a.i];
        } else {
            return cli_args_bad(&a);
        }
    }
    if (!c->file) {
        fprintf(stderr, "ippoc: logs templates: missing FILE (see 'ippoc help logs templates')\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Writes s as one CSV field (quoted when it holds a comma, quote or line end). */
static void tpl_csv_field(FILE *out, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

typedef struct tpl_key {
    const char *text;
    int id;
} tpl_key;

static int tpl_key_cmp(const void *a, const void *b)
{
    const tpl_key *x = a, *y = b;
    int c = strcmp(x->text, y->text);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* event[id]: the EventId number of template id (the smallest id with the
 * same final text, so EventId and EventTemplate map one to one). */
static int *tpl_event_ids(const logs_miner *m, const int *ids, size_t n)
{
    int maxid = -1;
    for (size_t i = 0; i < n; i++)
        if (ids[i] > maxid)
            maxid = ids[i];
    size_t nid = (size_t)maxid + 1;
    int *ev = malloc((nid ? nid : 1) * sizeof *ev);
    tpl_key *k = malloc((nid ? nid : 1) * sizeof *k);
    if (!ev || !k) {
        free(ev);
        free(k);
        return NULL;
    }
    for (size_t i = 0; i < nid; i++)
        k[i] = (tpl_key){logs_miner_template(m, (int)i), (int)i};
    qsort(k, nid, sizeof *k, tpl_key_cmp);
    for (size_t i = 0; i < nid; i++)
        ev[k[i].id] = (i > 0 && !strcmp(k[i].text, k[i - 1].text)) ? ev[k[i - 1].id] : k[i].id;
    free(k);
    return ev;
}

/* Reads and mines every line; ids[i] gets line i's template id. */
static int tpl_mine(const tpl_cmd *c, FILE *in, logs_miner *m, const logs_format *fmt, int **idsp, size_t *np,
                    size_t *unmatched)
{
    char *line = NULL;
    size_t cap = 0, n = 0, idcap = 0;
    int *ids = NULL;
    ssize_t got;
    int rc = CLI_EXIT_OK;
    while ((got = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        const char *body = line;
        size_t blen = len;
        if (fmt && logs_format_content(fmt, line, len, &body, &blen) < 0) {
            body = line;
            blen = len;
            (*unmatched)++;
        }
        int id = logs_miner_add(m, body, blen, NULL);
        if (id < 0) {
            fprintf(stderr, "ippoc: logs templates: %s:%zu: %s\n", c->file, n + 1, strerror(-id));
            rc = CLI_EXIT_API;
            break;
        }
        if (n == idcap) {
            idcap = idcap ? idcap * 2 : 4096;
            int *ni = realloc(ids, idcap * sizeof *ni);
            if (!ni) {
                fprintf(stderr, "ippoc: logs templates: out of memory\n");
                rc = CLI_EXIT_API;
                break;
            }
            ids = ni;
        }
        ids[n++] = id;
    }
    if (rc == CLI_EXIT_OK && ferror(in)) {
        fprintf(stderr, "ippoc: logs templates: %s: read error: %s\n", c->file, strerror(errno));
        rc = CLI_EXIT_API;
    }
    free(line);
    *idsp = ids;
    *np = n;
    return rc;
}

static int tpl_write(const logs_miner *m, int *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) /* merged and forgotten templates */
        ids[i] = logs_miner_resolve(m, ids[i]);
    int *ev = tpl_event_ids(m, ids, n);
    if (!ev && n) {
        fprintf(stderr, "ippoc: logs templates: out of memory\n");
        return CLI_EXIT_API;
    }
    fputs("LineId,EventId,EventTemplate\n", stdout);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0) { /* forgotten (only with --max-templates) */
            printf("%zu,,\n", i + 1);
            continue;
        }
        printf("%zu,E%d,", i + 1, ev[ids[i]] + 1);
        tpl_csv_field(stdout, logs_miner_template(m, ids[i]));
        fputc('\n', stdout);
    }
    free(ev);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "ippoc: logs templates: cannot write the output: %s\n", strerror(errno));
        return CLI_EXIT_API;
    }
    return CLI_EXIT_OK;
}

int cmd_logs_templates(const cli_ctx *ctx, int argc, char **argv)
{
    tpl_cmd c = {0};
    bool help = false;
    int rc = tpl_args(&c, argc, argv, &help);
    if (help) {
        cli_help_command("logs templates", stdout);
        return CLI_EXIT_OK;
    }
    if (rc != CLI_EXIT_OK)
        return rc;
    char err[512];
    logs_format *fmt = NULL;
    logs_miner *m = NULL;
    if (c.format && logs_format_new(c.format, &fmt, err, sizeof err) < 0) {
        fprintf(stderr, "ippoc: logs templates: --format: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    if (logs_miner_new(&c.o, &m, err, sizeof err) < 0) {
        fprintf(stderr, "ippoc: logs templates: %s\n", err);
        logs_format_free(fmt);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < c.nmasks; i++)
        if (logs_miner_add_mask(m, c.masks[i], err, sizeof err) < 0) {
            fprintf(stderr, "ippoc: logs templates: --mask: %s\n", err);
            logs_miner_free(m);
            logs_format_free(fmt);
            return CLI_EXIT_USAGE;
        }
    FILE *in = strcmp(c.file, "-") ? fopen(c.file, "r") : stdin;
    if (!in) {
        fprintf(stderr, "ippoc: logs templates: %s: cannot open: %s\n", c.file, strerror(errno));
        logs_miner_free(m);
        logs_format_free(fmt);
        return CLI_EXIT_API;
    }
    int *ids = NULL;
    size_t n = 0, unmatched = 0;
    rc = tpl_mine(&c, in, m, fmt, &ids, &n, &unmatched);
    if (in != stdin)
        fclose(in);
    if (rc == CLI_EXIT_OK) {
        if (unmatched)
            fprintf(stderr, "ippoc: logs templates: %s: %zu of %zu lines do not match the format; "
                            "they were templated whole\n", c.file, unmatched, n);
        rc = tpl_write(m, ids, n);
    }
    free(ids);
    logs_miner_free(m);
    logs_format_free(fmt);
    return rc;
}
