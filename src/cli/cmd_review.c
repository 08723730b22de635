/* cmd_review.c: `ippoc review [-c CONFIG] [--static] [--diff] FILE...`, the
 * AI code review (tools/review_code.sh wraps it). No daemon: it reads [llm]
 * from the cell's configuration as ippocd does (core config, then the llm
 * client, which redacts what leaves the machine and records it in
 * STATE/llm/sent.jsonl) and sends the files, each line numbered, or with
 * --diff the hunks of unified diffs (FILE... or stdin), with a prompt asking
 * for findings as JSON lines {file, line, severity, message}. The answer is
 * checked line by line (review.c) and printed as FILE:LINE: severity:
 * message. Without a model (or with --static) it runs cppcheck and, when a
 * compile_commands.json is found, clang-tidy on the C/C++ files instead.
 *
 * Exit codes: 0 no finding of severity error; 1 at least one; 2 bad command
 * line, configuration or input (a file that cannot be read, is binary or too
 * large; a malformed diff); 3 nothing could review: the model failed (or
 * every line of its answer was dropped), or no static checker is installed. */
#include "cli/cli.h"

#include "core/core.h"
#include "llm/llm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_CONFIG "/etc/ippoc/ippoc.conf" /* ippocd's */
#define REVIEW_FILE_MAX (256 * 1024)           /* one file or diff */
#define REVIEW_TOTAL_MAX (512 * 1024)          /* everything sent at once */
#define TOOL_OUT_MAX (8 * 1024 * 1024)
#define EXIT_NOTHING 3

static const char review_system[] =
    "You review source code for defects. Report only what a careful reviewer would flag as wrong "
    "or risky: memory errors (out-of-bounds access, use after free, leaks, overflows), undefined "
    "behaviour, wrong logic, unchecked errors, races, injection and other security problems. No "
    "style remarks, no praise, no summaries.\n"
    "Answer with one JSON object per line and nothing else (no prose, no code fences):\n"
    "{\"file\": \"<the file's name exactly as given after FILE:>\", \"line\": <the line number shown "
    "at the start of the line>, \"severity\": \"error\" | \"warning\" | \"note\", \"message\": \"<one "
    "sentence: what is wrong and why>\"}\n"
    "severity error: a bug that breaks correctness or safety; warning: a likely bug or a risk; "
    "note: worth a second look. With no findings, answer with nothing at all.";

typedef struct review_cmd {
    const char *config; /* -c, or NULL: DEFAULT_CONFIG if it exists */
    bool static_only;   /* --static */
    bool diff;          /* --diff: the inputs are unified diffs */
    char **inputs;      /* FILE... */
    int ninputs;
} review_cmd;

static int parse_args(review_cmd *c, int argc, char **argv)
{
    cli_args a;
    cli_args_init(&a, "review", argc, argv);
    c->inputs = calloc((size_t)argc, sizeof *c->inputs);
    if (!c->inputs)
        return CLI_EXIT_API;
    int rc;
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a))
            return -1;
        if (cli_args_flag(&a, "--static"))
            c->static_only = true;
        else if (cli_args_flag(&a, "--diff"))
            c->diff = true;
        else if ((rc = cli_args_value(&a, "-c", &c->config)) != 0 ||
                 (rc = cli_args_value(&a, "--config", &c->config)) != 0) {
            if (rc < 0)
                return CLI_EXIT_USAGE;
        } else if (cli_args_positional(&a))
            c->inputs[c->ninputs++] = a.argv[a.i];
        else
            return cli_args_bad(&a);
    }
    if (!c->ninputs && !c->diff) {
        fprintf(stderr, "ippoc: review: which files? (ippoc review FILE..., or git diff | ippoc review --diff)\n");
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* A whole file ("-": stdin) of at most max bytes, NUL-terminated, no NUL
 * inside. CLI_EXIT_OK or CLI_EXIT_USAGE after saying why. */
static int read_input(const char *path, size_t max, char **out, size_t *len)
{
    bool in = !strcmp(path, "-");
    const char *name = in ? "stdin" : path;
    int fd = in ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "ippoc: review: %s: %s\n", name, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    char *buf = malloc(max + 2);
    size_t n = 0;
    ssize_t got = 1;
    while (buf && n <= max && (got = read(fd, buf + n, max + 1 - n)) > 0)
        n += (size_t)got;
    int err = errno;
    if (!in)
        close(fd);
    const char *why = !buf ? "out of memory" : got < 0 ? strerror(err) : n > max ? "too large" : NULL;
    if (!why && memchr(buf, '\0', n))
        why = "a binary file (it holds NUL bytes)";
    if (why) {
        fprintf(stderr, "ippoc: review: %s: %s%s\n", name, why,
                n > max ? " for one review (at most 256 KiB): review fewer lines, or use --static" : "");
        free(buf);
        return CLI_EXIT_USAGE;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return CLI_EXIT_OK;
}

static int count_lines(const char *t, size_t len)
{
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += t[i] == '\n';
    return n + (len && t[len - 1] != '\n');
}

/* Files: each under "=== FILE: NAME (N lines) ===", every line numbered. */
static int load_files(const review_cmd *c, cli_review *r, FILE *m)
{
    for (int i = 0; i < c->ninputs; i++) {
        char *text;
        size_t len;
        if (!strcmp(c->inputs[i], "-")) {
            fprintf(stderr, "ippoc: review: '-' (stdin) is read only with --diff\n");
            return CLI_EXIT_USAGE;
        }
        int rc = read_input(c->inputs[i], REVIEW_FILE_MAX, &text, &len);
        if (rc)
            return rc;
        int nl = count_lines(text, len);
        if (cli_review_add_file(r, c->inputs[i], nl) < 0) {
            free(text);
            return CLI_EXIT_API;
        }
        fprintf(m, "\n=== FILE: %s (%d lines) ===\n", c->inputs[i], nl);
        int no = 1;
        for (char *p = text, *e; *p; p = e + 1, no++) {
            e = strchr(p, '\n');
            int l = e ? (int)(e - p) : (int)strlen(p);
            fprintf(m, "%6d  %.*s\n", no, l, p);
            if (!e)
                break;
        }
        free(text);
    }
    return CLI_EXIT_OK;
}

/* Diffs (stdin when none): files and hunks, each line with its new number. */
static int load_diffs(const review_cmd *c, cli_review *r, FILE *m)
{
    char *dash[] = {"-"};
    char *const *in = c->ninputs ? c->inputs : dash;
    int n = c->ninputs ? c->ninputs : 1;
    for (int i = 0; i < n; i++) {
        char *text, *prompt, err[256];
        size_t len;
        int rc = read_input(in[i], REVIEW_FILE_MAX, &text, &len);
        if (rc)
            return rc;
        rc = cli_review_parse_diff(r, text, &prompt, err, sizeof err);
        free(text);
        if (rc) {
            fprintf(stderr, "ippoc: review: %s: %s\n", strcmp(in[i], "-") ? in[i] : "stdin",
                    rc == -ENOMEM ? "out of memory" : err);
            return rc == -ENOMEM ? CLI_EXIT_API : CLI_EXIT_USAGE;
        }
        fputs(prompt, m);
        free(prompt);
    }
    return CLI_EXIT_OK;
}

/* The text the model reads after the system prompt; NULL after saying why. */
static int build_input(const review_cmd *c, cli_review *r, char **text)
{
    size_t len = 0;
    FILE *m = open_memstream(text, &len);
    if (!m)
        return CLI_EXIT_API;
    fputs(c->diff ? "Review this change. Each line of a hunk starts with its number in the new version of "
                    "the file ('+' added, blank unchanged; removed lines ('-') have no number). Report "
                    "findings only on numbered lines, with those numbers.\n"
                  : "Review these files. Each line starts with its line number.\n",
          m);
    int rc = c->diff ? load_diffs(c, r, m) : load_files(c, r, m);
    if (fclose(m) && !rc)
        rc = CLI_EXIT_API;
    if (!rc && len > REVIEW_TOTAL_MAX) {
        fprintf(stderr, "ippoc: review: %zu bytes to review at once (at most %d): review fewer files\n", len,
                REVIEW_TOTAL_MAX);
        rc = CLI_EXIT_USAGE;
    }
    if (rc) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* ---- the model ------------------------------------------------------------------------------ */

/* The [llm] client of the configuration, or *out NULL when none is configured. */
static int load_model(const review_cmd *c, core_config *cfg, llm **out)
{
    char err[1024];
    *out = NULL;
    core_config_defaults(cfg);
    const char *path = c->config ? c->config : DEFAULT_CONFIG;
    /* first without the state dir: no model, nothing created there */
    if (core_config_load(cfg, path, c->config != NULL, err, sizeof err) ||
        llm_new(cfg, NULL, NULL, NULL, out, err, sizeof err)) {
        fprintf(stderr, "ippoc: review: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    bool available = llm_available(*out);
    llm_free(*out);
    *out = NULL;
    if (!available)
        return CLI_EXIT_OK;
    if (llm_new(cfg, cfg->state_dir, NULL, NULL, out, err, sizeof err)) {
        fprintf(stderr, "ippoc: review: %s\n", err);
        return CLI_EXIT_USAGE;
    }
    char dir[CORE_PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/llm", cfg->state_dir);
    if (access(dir, W_OK))
        fprintf(stderr, "ippoc: review: %s: %s: what is sent is not recorded in sent.jsonl "
                "(set [daemon] state_dir, or run as its owner)\n", dir, strerror(errno));
    return CLI_EXIT_OK;
}

static int ask_model(llm *l, cli_review *r, const char *input)
{
    llm_request q = {.purpose = "review", .system = review_system, .user = input, .max_tokens = 4096};
    llm_answer a = {0};
    char err[1024];
    int rc = llm_complete(l, &q, &a, err, sizeof err);
    if (rc) {
        fprintf(stderr, "ippoc: review: the language model failed: %s\n",
                rc == -EDQUOT ? "over its token budget ([llm] tokens_per_hour)" : err);
        llm_answer_free(&a);
        return EXIT_NOTHING;
    }
    int kept = cli_review_parse_answer(r, a.content, stderr);
    fprintf(stderr, "ippoc: review: %d finding%s from %s (%s)", kept, kept == 1 ? "" : "s",
            a.model ? a.model : "?", a.provider ? a.provider : "?");
    if (r->dropped)
        fprintf(stderr, "; %d line%s of its answer dropped", r->dropped, r->dropped == 1 ? "" : "s");
    fputc('\n', stderr);
    llm_answer_free(&a);
    if (kept < 0)
        return CLI_EXIT_API;
    return kept == 0 && r->dropped ? EXIT_NOTHING : CLI_EXIT_OK;
}

/* ---- the static checks ----------------------------------------------------------------------- */

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[CLI_PATH_MAX];
    for (const char *p = path ? path : "/usr/bin:/bin"; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, p, prog);
        if (n && access(buf, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

/* Everything fd gives, NUL-terminated, the first TOOL_OUT_MAX bytes kept
 * (the rest read and dropped); NULL without memory. */
static char *read_fd_all(int fd)
{
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap + 1);
    char scratch[4096] = "";
    for (;;) {
        if (buf && len == cap && cap < TOOL_OUT_MAX) {
            char *n = realloc(buf, cap * 2 + 1);
            if (n)
                buf = n, cap *= 2;
        }
        bool room = buf && len < cap;
        ssize_t got = read(fd, room ? buf + len : scratch, room ? cap - len : sizeof scratch);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (room)
            len += (size_t)got;
    }
    if (buf)
        buf[len] = '\0';
    return buf;
}

/* Runs argv (no shell), its stdout and stderr into *out. Its exit status, or
 * -errno. */
static int run_tool(char *const argv[], char **out)
{
    int fds[2];
    *out = NULL;
    if (pipe2(fds, O_CLOEXEC))
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    char *buf = read_fd_all(fds[0]);
    close(fds[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    *out = buf;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool is_c_file(const cli_review_file *f)
{
    static const char *const ext[] = {".c", ".h", ".cc", ".cpp", ".cxx", ".hh", ".hpp", ".hxx"};
    const char *dot = strrchr(f->name, '.');
    if (!f->real[0] || !dot || strchr(dot, '/'))
        return false;
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (!strcmp(dot, ext[i]))
            return true;
    return false;
}

/* DIR/compile_commands.json or DIR/build/compile_commands.json, from start
 * up to the root. */
static bool find_compdb_from(const char *start, char *dir, size_t n)
{
    char cur[CLI_PATH_MAX], probe[CLI_PATH_MAX + 40];
    snprintf(cur, sizeof cur, "%s", start);
    for (;;) {
        static const char *const sub[] = {"", "/build"};
        for (size_t i = 0; i < 2; i++) {
            snprintf(probe, sizeof probe, "%s%s/compile_commands.json", cur, sub[i]);
            if (access(probe, R_OK) == 0) {
                snprintf(dir, n, "%s%s", cur, sub[i]);
                return true;
            }
        }
        char *slash = strrchr(cur, '/');
        if (!slash || slash == cur)
            return false;
        *slash = '\0';
    }
}

static bool find_compdb(const cli_review *r, char *dir, size_t n)
{
    char cwd[CLI_PATH_MAX];
    for (size_t i = 0; i < r->nfiles; i++) {
        char d[CLI_PATH_MAX];
        snprintf(d, sizeof d, "%s", r->files[i].real);
        char *slash = strrchr(d, '/');
        if (slash && slash != d)
            *slash = '\0';
        if (r->files[i].real[0] && find_compdb_from(d, dir, n))
            return true;
    }
    return getcwd(cwd, sizeof cwd) && find_compdb_from(cwd, dir, n);
}

/* One tool on the C/C++ files: argv = fixed options, then the files. */
static int run_checker(cli_review *r, const char *const *opts, size_t nopts)
{
    char **argv = calloc(nopts + r->nfiles + 1, sizeof *argv);
    if (!argv)
        return -ENOMEM;
    size_t k = 0;
    for (; k < nopts; k++)
        argv[k] = (char *)opts[k];
    for (size_t i = 0; i < r->nfiles; i++)
        if (is_c_file(&r->files[i]))
            argv[k++] = r->files[i].name;
    char *out = NULL;
    int rc = run_tool(argv, &out);
    if (rc == 127 || rc < 0)
        fprintf(stderr, "ippoc: review: %s could not run (%s)\n", opts[0], rc < 0 ? strerror(-rc) : "exec failed");
    else
        cli_review_parse_tool(r, out);
    for (const char *e = out; e && (e = strstr(e, "Error while processing ")); e++) /* clang-tidy */
        fprintf(stderr, "ippoc: review: %s: %.*s\n", opts[0], (int)strcspn(e, "\n"), e);
    free(out);
    free(argv);
    return rc == 127 || rc < 0 ? -1 : 0;
}

static int static_checks(cli_review *r, bool asked)
{
    fprintf(stderr, "%s: static checks only (cppcheck, clang-tidy)\n",
            asked ? "--static" : "no language model configured");
    size_t nc = 0;
    for (size_t i = 0; i < r->nfiles; i++) {
        if (is_c_file(&r->files[i]))
            nc++;
        else
            fprintf(stderr, "ippoc: review: %s: %s: no static check\n", r->files[i].name,
                    r->files[i].real[0] ? "not C or C++" : "not found");
    }
    if (!nc)
        return CLI_EXIT_OK;
    int ran = 0;
    if (!in_path("cppcheck"))
        fprintf(stderr, "ippoc: review: cppcheck is not installed: skipped\n");
    else {
        static const char *const cpp[] = {"cppcheck", "--quiet", "--enable=warning,style,performance,portability",
                                          "--inline-suppr", "--suppress=missingIncludeSystem",
                                          "--template={file}:{line}: {severity}: {message} [{id}]"};
        ran += run_checker(r, cpp, sizeof cpp / sizeof cpp[0]) == 0;
    }
    char db[CLI_PATH_MAX];
    if (!in_path("clang-tidy"))
        fprintf(stderr, "ippoc: review: clang-tidy is not installed: skipped\n");
    else if (!find_compdb(r, db, sizeof db))
        fprintf(stderr, "ippoc: review: no compile_commands.json above the files or here: clang-tidy skipped\n");
    else {
        /* gcc's flags in the database are not clang's; Annex K's "use snprintf_s" is noise */
        const char *const tidy[] = {"clang-tidy", "--quiet", "-p", db, "--extra-arg=-Wno-unknown-warning-option",
                                    "--checks=-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling"};
        ran += run_checker(r, tidy, sizeof tidy / sizeof tidy[0]) == 0;
    }
    return ran ? CLI_EXIT_OK : EXIT_NOTHING;
}

int cmd_review(const cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    review_cmd c = {0};
    int rc = parse_args(&c, argc, argv);
    if (rc) {
        free(c.inputs);
        if (rc < 0)
            cli_help_command("review", stdout);
        return rc < 0 ? CLI_EXIT_OK : rc;
    }
    cli_review r = {0};
    core_config cfg;
    llm *l = NULL;
    char *input = NULL;
    rc = build_input(&c, &r, &input);
    if (!rc && !c.static_only)
        rc = load_model(&c, &cfg, &l);
    else
        core_config_defaults(&cfg);
    if (!rc)
        rc = l ? ask_model(l, &r, input) : static_checks(&r, c.static_only);
    if (rc == CLI_EXIT_OK || rc == EXIT_NOTHING) {
        int errors = cli_review_print(&r, stdout);
        if (rc == CLI_EXIT_OK && errors)
            rc = 1;
    }
    llm_free(l);
    core_config_free(&cfg);
    cli_review_free(&r);
    free(input);
    free(c.inputs);
    return rc;
}
