/* review.c: the findings of `ippoc review` (see cmd_review.c): the files under
 * review and the lines a finding may name (a whole file, or the new side of a
 * diff's hunks), the model's JSON-lines answer checked line by line (nothing
 * in it is trusted: bad JSON, unknown files, lines out of range, unknown
 * severities are dropped and counted), the output of cppcheck and
 * clang-tidy read into the same findings, and the FILE:LINE printing. */
#include "cli/cli.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

void cli_review_free(cli_review *r)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].lo);
        free(r->files[i].hi);
    }
    free(r->files);
    free(r->found);
    memset(r, 0, sizeof *r);
}

int cli_review_add_file(cli_review *r, const char *name, int nlines)
{
    if (r->nfiles % 16 == 0) {
        cli_review_file *n = realloc(r->files, (r->nfiles + 16) * sizeof *n);
        if (!n)
            return -ENOMEM;
        r->files = n;
    }
    cli_review_file *f = &r->files[r->nfiles];
    memset(f, 0, sizeof *f);
    snprintf(f->name, sizeof f->name, "%s", name);
    if (!realpath(name, f->real))
        f->real[0] = '\0';
    f->nlines = nlines;
    return (int)r->nfiles++;
}

int cli_review_add_range(cli_review *r, int file, int lo, int hi)
{
    cli_review_file *f = &r->files[file];
    if (f->nr % 16 == 0) {
        int *l = realloc(f->lo, (f->nr + 16) * sizeof *l);
        if (!l)
            return -ENOMEM;
        f->lo = l;
        int *h = realloc(f->hi, (f->nr + 16) * sizeof *h);
        if (!h)
            return -ENOMEM;
        f->hi = h;
    }
    f->lo[f->nr] = lo;
    f->hi[f->nr] = hi;
    f->nr++;
    if (hi > f->nlines)
        f->nlines = hi;
    return 0;
}

bool cli_review_line_ok(const cli_review *r, int file, long line)
{
    const cli_review_file *f = &r->files[file];
    if (line < 1 || line > f->nlines)
        return false;
    if (!f->lo) /* a whole file */
        return true;
    for (size_t i = 0; i < f->nr; i++)
        if (line >= f->lo[i] && line <= f->hi[i])
            return true;
    return false;
}

/* "./x.c" and git's "b/x.c" name x.c too. */
int cli_review_find_file(const cli_review *r, const char *name)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < r->nfiles; i++)
            if (!strcmp(r->files[i].name, name))
                return (int)i;
        if (!strncmp(name, "./", 2) || !strncmp(name, "b/", 2))
            name += 2;
        else
            break;
    }
    return -1;
}

/* By the file's real path (what the static tools print). */
static int find_real(const cli_review *r, const char *path)
{
    char real[CLI_PATH_MAX];
    if (!realpath(path, real))
        return cli_review_find_file(r, path);
    for (size_t i = 0; i < r->nfiles; i++)
        if (r->files[i].real[0] && !strcmp(r->files[i].real, real))
            return (int)i;
    return -1;
}

int cli_review_severity(const char *s)
{
    static const struct {
        const char *name;
        int sev;
    } names[] = {
        {"error", CLI_REVIEW_ERROR}, {"critical", CLI_REVIEW_ERROR},
        {"warning", CLI_REVIEW_WARNING},
        {"note", CLI_REVIEW_NOTE}, {"info", CLI_REVIEW_NOTE}, {"style", CLI_REVIEW_NOTE},
        {"performance", CLI_REVIEW_NOTE}, {"portability", CLI_REVIEW_NOTE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcasecmp(s, names[i].name))
            return names[i].sev;
    return -1;
}

static const char *sev_name(int sev)
{
    return sev == CLI_REVIEW_ERROR ? "error" : sev == CLI_REVIEW_WARNING ? "warning" : "note";
}

int cli_review_add(cli_review *r, int file, int line, int sev, const char *msg)
{
    if (r->nfound == r->capfound) {
        size_t cap = r->capfound ? r->capfound * 2 : 16;
        cli_review_finding *n = realloc(r->found, cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        r->found = n;
        r->capfound = cap;
    }
    cli_review_finding *f = &r->found[r->nfound++];
    f->file = file;
    f->line = line;
    f->sev = sev;
    f->seq = (int)r->nfound;
    /* control characters (a terminal's escapes, newlines) become blanks */
    size_t j = 0;
    for (const char *p = msg; *p && j + 1 < sizeof f->msg; p++)
        f->msg[j++] = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
    f->msg[j] = '\0';
    return 0;
}

/* One line of the model's answer: NULL when kept, else why it was dropped. */
static const char *answer_line(cli_review *r, const char *text, char *why, size_t n)
{
    json_error_t je;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        snprintf(why, n, o ? "not a JSON object" : "bad JSON (%s)", je.text);
        json_decref(o);
        return why;
    }
    json_t *file = json_object_get(o, "file"), *line = json_object_get(o, "line");
    json_t *sev = json_object_get(o, "severity"), *msg = json_object_get(o, "message");
    int fi = json_is_string(file) ? cli_review_find_file(r, json_string_value(file)) : -2;
    int s = json_is_string(sev) ? cli_review_severity(json_string_value(sev)) : -2;
    if (fi == -2 || !json_is_integer(line) || s == -2 || !json_is_string(msg) || !*json_string_value(msg))
        snprintf(why, n, "expected {\"file\": TEXT, \"line\": N, \"severity\": TEXT, \"message\": TEXT}");
    else if (fi < 0)
        snprintf(why, n, "unknown file '%.200s' (not under review)", json_string_value(file));
    else if (s < 0)
        snprintf(why, n, "unknown severity '%.40s' (expected error, warning or note)", json_string_value(sev));
    else if (!cli_review_line_ok(r, fi, (long)json_integer_value(line)))
        snprintf(why, n, r->files[fi].lo ? "line %lld of %s is not in the change" : "line %lld is out of range (%s has %d lines)",
                 (long long)json_integer_value(line), r->files[fi].name, r->files[fi].nlines);
    else if (cli_review_add(r, fi, (int)json_integer_value(line), s, json_string_value(msg)))
        snprintf(why, n, "out of memory");
    else
        why = NULL;
    json_decref(o);
    return why;
}

int cli_review_parse_answer(cli_review *r, const char *answer, FILE *log)
{
    int kept = 0, no = 0;
    const char *p = answer ? answer : "";
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        no++;
        char *line = strndup(p, len);
        if (!line)
            return -ENOMEM;
        char *s = line, *t = line + len;
        while (*s && isspace((unsigned char)*s))
            s++;
        while (t > s && isspace((unsigned char)t[-1]))
            *--t = '\0';
        if (*s && strncmp(s, "```", 3)) { /* blank lines and code fences are no findings */
            char why[320];
            if (answer_line(r, s, why, sizeof why)) {
                r->dropped++;
                for (char *q = s; *q; q++) /* shown, not obeyed: no terminal escapes */
                    if ((unsigned char)*q < 0x20 || *q == 0x7f)
                        *q = ' ';
                fprintf(log, "ippoc: review: dropped line %d of the model's answer: %s: %.120s\n", no, why, s);
            } else {
                kept++;
            }
        }
        free(line);
        p += len + (e ? 1 : 0);
    }
    return kept;
}

/* "PATH:LINE:[COL:] SEVERITY: MESSAGE" (cppcheck's template, clang-tidy's
 * diagnostics). Returns false for any other line. */
static bool tool_line(char *s, char **path, long *line, char **sev, char **msg)
{
    for (char *c = strchr(s, ':'); c; c = strchr(c + 1, ':')) {
        char *end;
        errno = 0;
        long l = strtol(c + 1, &end, 10);
        if (end == c + 1 || *end != ':' || errno || l < 1 || l > INT_MAX)
            continue;
        *c = '\0';
        *path = s;
        *line = l;
        char *q = end + 1;
        if (isdigit((unsigned char)*q)) { /* column */
            while (isdigit((unsigned char)*q))
                q++;
            if (*q++ != ':')
                return false;
        }
        while (*q == ' ')
            q++;
        char *colon = strstr(q, ": ");
        if (!colon)
            return false;
        *colon = '\0';
        *sev = q;
        *msg = colon + 2;
        return true;
    }
    return false;
}

int cli_review_parse_tool(cli_review *r, const char *output)
{
    int n = 0;
    char *copy = strdup(output ? output : "");
    if (!copy)
        return -ENOMEM;
    char *save = NULL;
    for (char *s = strtok_r(copy, "\n", &save); s; s = strtok_r(NULL, "\n", &save)) {
        char *path, *sev, *msg;
        long line;
        if (!tool_line(s, &path, &line, &sev, &msg))
            continue;
        int fi = find_real(r, path), sv = cli_review_severity(sev);
        if (fi < 0 || sv < 0 || !strcasecmp(sev, "note") || !cli_review_line_ok(r, fi, line))
            continue; /* another file (a header), clang's notes, cppcheck's information, outside the change */
        bool dup = false;
        for (size_t i = 0; i < r->nfound && !dup; i++)
            dup = r->found[i].file == fi && r->found[i].line == line && !strcmp(r->found[i].msg, msg);
        if (!dup && cli_review_add(r, fi, (int)line, sv, msg) == 0)
            n++;
    }
    free(copy);
    return n;
}

static int cmp_found(const void *a, const void *b)
{
    const cli_review_finding *x = a, *y = b;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq; /* the same place: the order found */
}

int cli_review_print(cli_review *r, FILE *out)
{
    int errors = 0;
    if (r->nfound > 1)
        qsort(r->found, r->nfound, sizeof *r->found, cmp_found);
    for (size_t i = 0; i < r->nfound; i++) {
        const cli_review_finding *f = &r->found[i];
        fprintf(out, "%s:%d: %s: %s\n", r->files[f->file].name, f->line, sev_name(f->sev), f->msg);
        errors += f->sev == CLI_REVIEW_ERROR;
    }
    return errors;
}

/* "@@ -a[,b] +c[,d] @@": the old and new counts and the new start. */
static bool hunk_head(const char *s, long *olds, long *news, long *newstart)
{
    char *e;
    if (strncmp(s, "@@ -", 4))
        return false;
    strtol(s + 4, &e, 10);
    *olds = *e == ',' ? strtol(e + 1, &e, 10) : 1;
    if (strncmp(e, " +", 2))
        return false;
    *newstart = strtol(e + 2, &e, 10);
    *news = *e == ',' ? strtol(e + 1, &e, 10) : 1;
    return !strncmp(e, " @@", 3) && *olds >= 0 && *news >= 0 && *newstart >= 0 &&
           *newstart + *news < INT_MAX;
}

/* "+++ b/path\t2024-..." -> "path"; NULL for /dev/null. */
static char *new_name(const char *s)
{
    s += 4;
    size_t n = strcspn(s, "\t");
    while (n && s[n - 1] == ' ')
        n--;
    if ((n == 9 && !strncmp(s, "/dev/null", 9)) || !n)
        return NULL;
    if (n > 2 && !strncmp(s, "b/", 2))
        s += 2, n -= 2;
    return strndup(s, n);
}

typedef struct diff_state {
    int file;              /* -1: none, or a deleted one */
    long oldleft, newleft; /* lines the hunk still holds */
    long no;               /* the next new-side line number */
    bool seen;             /* a '+++' line came */
} diff_state;

/* One line inside a hunk. 0 or -EINVAL. */
static int hunk_line(diff_state *d, const char *s, FILE *m)
{
    char c = *s ? *s : ' '; /* an empty line: context whose blank was stripped */
    const char *text = *s ? s + 1 : s;
    if (c == ' ' && d->oldleft > 0 && d->newleft > 0) {
        fprintf(m, "%6ld   %s\n", d->no++, text);
        d->oldleft--, d->newleft--;
    } else if (c == '+' && d->newleft > 0) {
        fprintf(m, "%6ld + %s\n", d->no++, text);
        d->newleft--;
    } else if (c == '-' && d->oldleft > 0) {
        fprintf(m, "       - %s\n", text);
        d->oldleft--;
    } else {
        return -EINVAL;
    }
    return 0;
}

static int diff_line(cli_review *r, diff_state *d, const char *s, FILE *m, char *err, size_t errlen)
{
    long olds, news, start;
    if (d->oldleft > 0 || d->newleft > 0) {
        if (*s == '\\') /* "\ No newline at end of file" */
            return 0;
        if (hunk_line(d, s, m)) {
            snprintf(err, errlen, "a hunk line must start with ' ', '+' or '-' and fit the hunk's counts");
            return -EINVAL;
        }
        return 0;
    }
    if (!strncmp(s, "+++ ", 4)) {
        char *name = new_name(s);
        d->file = name ? cli_review_add_file(r, name, 0) : -1;
        d->seen = true;
        if (name)
            fprintf(m, "\n=== FILE: %s ===\n", name);
        free(name);
        return d->file == -ENOMEM ? -ENOMEM : 0;
    }
    if (!strncmp(s, "@@ ", 3)) {
        if (!hunk_head(s, &olds, &news, &start)) {
            snprintf(err, errlen, "bad hunk header (expected @@ -A,B +C,D @@)");
            return -EINVAL;
        }
        if (!d->seen) {
            snprintf(err, errlen, "a hunk before any '+++ FILE' line");
            return -EINVAL;
        }
        d->oldleft = olds, d->newleft = news, d->no = start;
        if (d->file >= 0) {
            fprintf(m, "%s\n", s);
            if (news > 0 && cli_review_add_range(r, d->file, (int)start, (int)(start + news - 1)))
                return -ENOMEM;
        }
    }
    return 0; /* diff --git, index, ---, mode lines, "Binary files ... differ" */
}

int cli_review_parse_diff(cli_review *r, const char *diff, char **prompt, char *err, size_t errlen)
{
    size_t plen = 0;
    *prompt = NULL;
    FILE *m = open_memstream(prompt, &plen);
    if (!m)
        return -ENOMEM;
    diff_state d = {.file = -1};
    int rc = 0, no = 0;
    const char *p = diff;
    while (*p && !rc) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = strndup(p, len);
        if (!line) {
            rc = -ENOMEM;
            break;
        }
        if (len && line[len - 1] == '\r')
            line[len - 1] = '\0';
        no++;
        char why[160];
        rc = diff_line(r, &d, line, m, why, sizeof why);
        if (rc == -EINVAL)
            snprintf(err, errlen, "diff line %d: %s", no, why);
        free(line);
        p += len + (e ? 1 : 0);
    }
    if (!rc && (d.oldleft > 0 || d.newleft > 0)) {
        snprintf(err, errlen, "diff line %d: the last hunk is cut short", no);
        rc = -EINVAL;
    }
    if (!rc && !r->nfiles) {
        snprintf(err, errlen, "no file in the diff (expected a unified diff such as `git diff` prints)");
        rc = -EINVAL;
    }
    if (fclose(m) && !rc)
        rc = -ENOMEM;
    if (rc) {
        free(*prompt);
        *prompt = NULL;
    }
    return rc;
}
