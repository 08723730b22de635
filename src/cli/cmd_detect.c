/* cmd_detect.c: `ippoc detect FILE.csv [FILE...] [-o OUT] [--reason]
 * [--set NAME=VALUE]... [--tunables]`.
 *
 * Scores every row of `timestamp,value` CSV files with the same detector
 * ippocd runs (src/detect), offline and without a daemon: each file from
 * scratch with a new detector, rows in file order, no look-ahead, one
 * parameter set for all. Writes `timestamp,value,anomaly_score` (and
 * `,reason` with --reason), the timestamp and value as written, the score with
 * 6 decimals. This is what bench/nab runs on the NAB corpus.
 *
 * Output: stdout for one input; `-o FILE` for one input; `-o DIR` (an existing
 * directory) writes DIR/<input's base name> for each input. A file output is
 * written beside its final name and renamed into place once complete, so a
 * failed run never leaves a half-written result.
 *
 * --set NAME=VALUE (repeatable) changes one of the detector's bench-only
 * tunables (detect_tunable_set) for this run, before any file is read;
 * --tunables lists every tunable as name=value (after the --set ones) and
 * reads no file. bench/nab/tune.py runs the corpus once per setting this way.
 *
 * Exit codes: 0 ok; 2 bad command line or bad input (an unknown tunable or a
 * value that is not a number or out of its range, with the reason; an input
 * that cannot be opened, or a bad row: "FILE:LINE: reason" on stderr; the
 * command stops there); 1 the output cannot be written.
 */
#include "cli/cli.h"

#include "detect/detect.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct detect_cmd {
    const char **inputs;
    int ninputs;
    const char *out;   /* -o value or NULL */
    bool out_dir;      /* out is a directory */
    bool reason;       /* --reason column */
    bool tunables;     /* --tunables: list them, read no file */
} detect_cmd;

/* --set NAME=VALUE: applies one tunable now. CLI_EXIT_OK or CLI_EXIT_USAGE
 * with the reason on stderr. */
static int detect_set(const char *spec)
{
    const char *eq = strchr(spec, '=');
    char name[64];
    if (!eq || eq == spec || (size_t)(eq - spec) >= sizeof name) {
        fprintf(stderr, "ippoc: detect: --set '%s': expected NAME=VALUE (see 'ippoc detect --tunables')\n",
                spec);
        return CLI_EXIT_USAGE;
    }
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = '\0';
    char *end;
    errno = 0;
    double v = strtod(eq + 1, &end);
    if (!eq[1] || *end || errno == ERANGE || !isfinite(v)) {
        fprintf(stderr, "ippoc: detect: --set %s: '%s' is not a finite number\n", name, eq + 1);
        return CLI_EXIT_USAGE;
    }
    char err[256];
    if (detect_tunable_set(name, v, err, sizeof err) < 0) {
        fprintf(stderr, "ippoc: detect: --set %s: %s (see 'ippoc detect --tunables')\n", spec, err);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* --tunables: name=value lines, in detect_tunable_get's order. */
static int detect_list_tunables(void)
{
    for (int i = 0; i < detect_tunable_count(); i++) {
        double v;
        const char *name = detect_tunable_get(i, &v);
        if (name)
            printf("%s=%.15g\n", name, v);
    }
    return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_API;
}

/* Base name of a path ("a/b/c.csv" -> "c.csv"); "" for "dir/". */
static const char *detect_basename(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static const char *detect_input_name(const char *path)
{
    return strcmp(path, "-") ? path : "<stdin>";
}

/* Scores one input into out. Returns CLI_EXIT_OK, CLI_EXIT_USAGE after a bad
 * row or read error (message printed), or CLI_EXIT_API if out failed. */
static int detect_stream(const detect_cmd *c, FILE *in, const char *name, FILE *out,
                         const char *out_name)
{
    detect_csv *r = detect_csv_open(in, name);
    detect_state *st = detect_new();
    if (!r || !st) {
        detect_csv_close(r);
        detect_free(st);
        fprintf(stderr, "ippoc: detect: out of memory\n");
        return CLI_EXIT_API;
    }
    fputs(c->reason ? "timestamp,value,anomaly_score,reason\n" : "timestamp,value,anomaly_score\n", out);
    int rc = CLI_EXIT_OK;
    char err[512];
    detect_csv_row row;
    int got;
    while ((got = detect_csv_next(r, &row, err, sizeof err)) == 1) {
        detect_result res = detect_feed(st, row.ts_ms, row.value);
        double s = res.score;
        if (!(s >= 0.0)) /* NaN too */
            s = 0.0;
        else if (s > 1.0)
            s = 1.0;
        if (c->reason)
            fprintf(out, "%s,%s,%.6f,%s\n", row.ts_text, row.value_text, s, detect_reason_name(res.reason));
        else
            fprintf(out, "%s,%s,%.6f\n", row.ts_text, row.value_text, s);
        if (ferror(out))
            break;
    }
    if (got < 0) {
        fprintf(stderr, "ippoc: detect: %s\n", err);
        rc = CLI_EXIT_USAGE;
    }
    if (rc == CLI_EXIT_OK && (fflush(out) != 0 || ferror(out))) {
        fprintf(stderr, "ippoc: detect: cannot write %s: %s\n", out_name, strerror(errno));
        rc = CLI_EXIT_API;
    }
    detect_free(st);
    detect_csv_close(r);
    return rc;
}

/* Writes the result of one input to path through path.tmp.PID, renamed into
 * place when complete. */
static int detect_to_file(const detect_cmd *c, FILE *in, const char *name, const char *path)
{
    char tmp[CLI_PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp) {
        fprintf(stderr, "ippoc: detect: output path too long: %s\n", path);
        return CLI_EXIT_USAGE;
    }
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fprintf(stderr, "ippoc: detect: cannot create %s: %s\n", tmp, strerror(errno));
        return CLI_EXIT_API;
    }
    setvbuf(out, NULL, _IOFBF, 1 << 16);
    int rc = detect_stream(c, in, name, out, path);
    if (fclose(out) != 0 && rc == CLI_EXIT_OK) {
        fprintf(stderr, "ippoc: detect: cannot write %s: %s\n", path, strerror(errno));
        rc = CLI_EXIT_API;
    }
    if (rc == CLI_EXIT_OK && rename(tmp, path) != 0) {
        fprintf(stderr, "ippoc: detect: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
        rc = CLI_EXIT_API;
    }
    if (rc != CLI_EXIT_OK)
        unlink(tmp);
    return rc;
}

static int detect_one(const detect_cmd *c, const char *path)
{
    const char *name = detect_input_name(path);
    FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!in) {
        fprintf(stderr, "ippoc: detect: cannot open %s: %s\n", path, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    int rc;
    if (!c->out || !strcmp(c->out, "-")) {
        rc = detect_stream(c, in, name, stdout, "standard output");
    } else if (c->out_dir) {
        char dst[CLI_PATH_MAX];
        size_t n = strlen(c->out);
        const char *sep = (n > 0 && c->out[n - 1] == '/') ? "" : "/";
        if (snprintf(dst, sizeof dst, "%s%s%s", c->out, sep, detect_basename(path)) >= (int)sizeof dst) {
            fprintf(stderr, "ippoc: detect: output path too long for %s\n", path);
            rc = CLI_EXIT_USAGE;
        } else {
            rc = detect_to_file(c, in, name, dst);
        }
    } else {
        rc = detect_to_file(c, in, name, c->out);
    }
    if (in != stdin)
        fclose(in);
    return rc;
}

/* Checks the combination of inputs and -o before anything is written. */
static int detect_check_outputs(detect_cmd *c)
{
    if (c->ninputs == 0) {
        fprintf(stderr, "ippoc: detect: missing FILE (see 'ippoc help detect')\n");
        return CLI_EXIT_USAGE;
    }
    struct stat sb;
    size_t n = c->out ? strlen(c->out) : 0;
    if (c->out && strcmp(c->out, "-") &&
        ((n > 0 && c->out[n - 1] == '/') || (stat(c->out, &sb) == 0 && S_ISDIR(sb.st_mode)))) {
        if (stat(c->out, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            fprintf(stderr, "ippoc: detect: -o: %s is not a directory\n", c->out);
            return CLI_EXIT_USAGE;
        }
        c->out_dir = true;
    }
    if (c->ninputs > 1 && !c->out_dir) {
        fprintf(stderr, "ippoc: detect: %d input files need -o DIR (an existing directory), "
                        "one result file per input\n", c->ninputs);
        return CLI_EXIT_USAGE;
    }
    for (int i = 0; i < c->ninputs; i++) {
        if (c->out_dir && !strcmp(c->inputs[i], "-")) {
            fprintf(stderr, "ippoc: detect: standard input ('-') has no name to write in -o DIR; "
                            "use -o FILE\n");
            return CLI_EXIT_USAGE;
        }
        if (c->out_dir && !*detect_basename(c->inputs[i])) {
            fprintf(stderr, "ippoc: detect: '%s' is not a file name\n", c->inputs[i]);
            return CLI_EXIT_USAGE;
        }
        for (int j = 0; c->out_dir && j < i; j++)
            if (!strcmp(detect_basename(c->inputs[i]), detect_basename(c->inputs[j]))) {
                fprintf(stderr, "ippoc: detect: %s and %s would both be written to %s/%s\n",
                        c->inputs[j], c->inputs[i], c->out, detect_basename(c->inputs[i]));
                return CLI_EXIT_USAGE;
            }
        if (!strcmp(c->inputs[i], "-"))
            for (int j = 0; j < i; j++)
                if (!strcmp(c->inputs[j], "-")) {
                    fprintf(stderr, "ippoc: detect: standard input ('-') given twice\n");
                    return CLI_EXIT_USAGE;
                }
    }
    return CLI_EXIT_OK;
}

int cmd_detect(const cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx; /* works on files; needs no daemon */
    detect_cmd c = {0};
    c.inputs = calloc((size_t)argc, sizeof *c.inputs);
    if (!c.inputs) {
        fprintf(stderr, "ippoc: detect: out of memory\n");
        return CLI_EXIT_API;
    }
    cli_args a;
    cli_args_init(&a, "detect", argc, argv);
    int rc = CLI_EXIT_OK;
    while (rc == CLI_EXIT_OK && cli_args_next(&a)) {
        int v;
        const char *set;
        if (cli_args_positional(&a)) {
            c.inputs[c.ninputs++] = a.argv[a.i];
        } else if (cli_args_is_help(&a)) {
            free(c.inputs);
            return cli_args_help(&a);
        } else if (cli_args_flag(&a, "--reason")) {
            c.reason = true;
        } else if (cli_args_flag(&a, "--tunables")) {
            c.tunables = true;
        } else if ((v = cli_args_value(&a, "--set", &set)) != 0) {
            rc = v < 0 ? CLI_EXIT_USAGE : detect_set(set);
        } else if ((v = cli_args_value(&a, "-o", &c.out)) != 0 ||
                   (v = cli_args_value(&a, "--output", &c.out)) != 0) {
            if (v < 0)
                rc = CLI_EXIT_USAGE;
            else if (!*c.out) {
                fprintf(stderr, "ippoc: detect: -o: empty output name\n");
                rc = CLI_EXIT_USAGE;
            }
        } else {
            rc = cli_args_bad(&a);
        }
    }
    if (rc == CLI_EXIT_OK && c.tunables) {
        if (c.ninputs > 0 || c.out) {
            fprintf(stderr, "ippoc: detect: --tunables lists the tunables and reads no file; "
                            "drop FILE and -o\n");
            rc = CLI_EXIT_USAGE;
        } else {
            rc = detect_list_tunables();
        }
        free(c.inputs);
        return rc;
    }
    if (rc == CLI_EXIT_OK)
        rc = detect_check_outputs(&c);
    for (int i = 0; rc == CLI_EXIT_OK && i < c.ninputs; i++)
        rc = detect_one(&c, c.inputs[i]);
    free(c.inputs);
    return rc;
}
