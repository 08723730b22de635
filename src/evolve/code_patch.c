/* code_patch.c: the pure parts of self-code evolution: which files a model's
 * patch touches, the prompt and the answer's schema, and the judgement of a
 * candidate's benchmark against the baseline. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "evolve/code_int.h"

const char code_schema[] =
    "{\"type\":\"object\",\"properties\":{\"patch\":{\"type\":\"string\"},"
    "\"rationale\":{\"type\":\"string\"}},\"required\":[\"patch\",\"rationale\"],"
    "\"additionalProperties\":false}";

const char code_system_prompt[] =
    "You make one source file of a program faster without changing what it does. You get the file with "
    "line numbers (the numbers are not part of the file), the benchmark command and its baseline numbers. "
    "Answer with a unified diff in git's format (--- a/PATH, +++ b/PATH, @@ hunks with correct context) that "
    "changes only that file, and a short rationale. Keep the behaviour: the project's tests must still pass.";

bool code_path_ok(const char *p)
{
    if (!p || !*p || p[0] == '/')
        return false;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 2 && !strncmp(s, "..", 2)) || n == 0)
            return false;
        s += n + (e ? 1 : 0);
    }
    return true;
}

static void add_file(json_t *files, const char *start, size_t n)
{
    while (n && (start[n - 1] == '\r' || start[n - 1] == ' ' || start[n - 1] == '\t'))
        n--;
    const char *tab = memchr(start, '\t', n); /* "+++ b/x\t2024-..." */
    if (tab)
        n = (size_t)(tab - start);
    if (n >= 2 && (start[0] == 'a' || start[0] == 'b') && start[1] == '/') {
        start += 2;
        n -= 2;
    }
    if (n == 9 && !strncmp(start, "/dev/null", 9))
        return;
    if (n == 0)
        return;
    char *f = strndup(start, n);
    size_t i;
    json_t *v;
    json_array_foreach(files, i, v) if (!strcmp(json_string_value(v), f)) {
        free(f);
        return;
    }
    json_array_append_new(files, json_string(f));
    free(f);
}

json_t *code_patch_files(const char *patch)
{
    json_t *files = json_array();
    for (const char *l = patch; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        if (n > 4 && (!strncmp(l, "--- ", 4) || !strncmp(l, "+++ ", 4))) {
            add_file(files, l + 4, n - 4);
        } else if (n > 11 && !strncmp(l, "diff --git ", 11)) {
            /* "diff --git a/X b/Y": split at " b/" */
            const char *s = l + 11, *mid = NULL;
            for (const char *q = s; q + 3 < l + n; q++)
                if (!strncmp(q, " b/", 3))
                    mid = q;
            if (mid) {
                add_file(files, s, (size_t)(mid - s));
                add_file(files, mid + 1, (size_t)(l + n - mid - 1));
            }
        } else if (n > 12 && (!strncmp(l, "rename from ", 12) || !strncmp(l, "copy from ", 10))) {
            const char *s = strchr(l, ' ') + 1;
            s = strchr(s, ' ') + 1;
            add_file(files, s, (size_t)(l + n - s));
        } else if (n > 10 && (!strncmp(l, "rename to ", 10) || !strncmp(l, "copy to ", 8))) {
            const char *s = strchr(l, ' ') + 1;
            s = strchr(s, ' ') + 1;
            add_file(files, s, (size_t)(l + n - s));
        }
        l = e ? e + 1 : l + n;
    }
    return files;
}

/* Header lines that would do more than edit the text of one file. */
static const char *const not_an_edit[] = {"new file mode", "deleted file mode", "new mode", "old mode",
                                          "rename from", "rename to", "copy from", "copy to", "GIT binary patch",
                                          "Binary files"};

int code_patch_check_files(const char *patch, const char *target, char *err, size_t errlen)
{
    for (const char *l = patch; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t n = e ? (size_t)(e - l) : strlen(l);
        for (size_t i = 0; i < sizeof not_an_edit / sizeof not_an_edit[0]; i++)
            if (!strncmp(l, not_an_edit[i], strlen(not_an_edit[i]))) {
                snprintf(err, errlen, "it does more than edit the text of %s ('%.*s')", target, n > 80 ? 80 : (int)n,
                         l);
                return -EPERM;
            }
        l = e ? e + 1 : NULL;
    }
    json_t *files = code_patch_files(patch);
    size_t i, nother = 0;
    json_t *v;
    char others[512] = "";
    json_array_foreach(files, i, v) {
        const char *f = json_string_value(v);
        if (!strcmp(f, target))
            continue;
        size_t used = strlen(others);
        snprintf(others + used, sizeof others - used, "%s%s", nother++ ? ", " : "", f);
    }
    size_t n = json_array_size(files);
    json_decref(files);
    if (n == 0) {
        snprintf(err, errlen, "the patch touches no file (no ---/+++ lines)");
        return -EINVAL;
    }
    if (nother) {
        snprintf(err, errlen, "%s (only %s may change)", others, target);
        return -EPERM;
    }
    return 0;
}

char *code_prompt(const char *target, const char *text, const char *bench, const char *test, bool maximize,
                  const double *base, int nbase, const json_t *history)
{
    /* room for the text (cut at CODE_PROMPT_MAX) with 7 characters of line
     * number per line, the commands, the baseline and the history */
    size_t tlen = strlen(text), lines = 1, len = 0;
    for (const char *q = text; *q && (size_t)(q - text) < CODE_PROMPT_MAX; q++)
        lines += *q == '\n';
    size_t cap = (tlen < CODE_PROMPT_MAX ? tlen : CODE_PROMPT_MAX) + 8 * lines + strlen(bench) + strlen(test) +
                 32 * (size_t)nbase + 8192;
    size_t hi;
    json_t *hv;
    json_array_foreach(history, hi, hv) {
        const char *r = json_string_value(json_object_get(hv, "reason"));
        cap += (r ? strlen(r) : 0) + 64;
    }
    char *p = malloc(cap);
    if (!p)
        return NULL;
#define ADD(...) (len += (size_t)snprintf(p + len, len < cap ? cap - len : 0, __VA_ARGS__), len = len < cap ? len : cap - 1)
    ADD("File: %s\n\n", target);
    int line = 1;
    size_t sent = 0;
    for (const char *l = text; *l;) {
        const char *e = strchr(l, '\n');
        int n = e ? (int)(e - l) : (int)strlen(l);
        if (sent + (size_t)n > CODE_PROMPT_MAX) {
            ADD("... (the file goes on; cut at %d kB)\n", CODE_PROMPT_MAX / 1024);
            break;
        }
        ADD("%5d  %.*s\n", line++, n, l);
        sent += (size_t)n + 1;
        l = e ? e + 1 : l + n;
    }
    ADD("\nBenchmark: %s (prints a number; %s is better)\nBaseline:", bench, maximize ? "higher" : "lower");
    for (int i = 0; i < nbase; i++)
        ADD(" %.6g", base[i]);
    ADD("\nTests that must still pass: %s\n", test);
    size_t i;
    json_t *h;
    json_array_foreach(history, i, h) {
        if (i == 0)
            ADD("\nEarlier candidates (do something different):\n");
        ADD("- %s: %s\n", json_string_value(json_object_get(h, "status")),
            json_string_value(json_object_get(h, "reason")) ? json_string_value(json_object_get(h, "reason")) : "");
    }
    ADD("\nAnswer with a unified diff touching only %s, and your rationale.\n", target);
#undef ADD
    return p;
}

/* ---- the judgement ---- */

int code_judge(const double *base, int nb, const double *cand, int nc, bool maximize, evolve_test *t)
{
    memset(t, 0, sizeof *t);
    double *b = malloc(sizeof *b * (size_t)(nb + nc)), *c = b ? b + nb : NULL;
    if (!b)
        return -ENOMEM;
    for (int i = 0; i < nb + nc; i++) {
        double x = i < nb ? base[i] : cand[i - nb];
        if (!(x > 0) || !isfinite(x)) {
            free(b);
            return -EINVAL;
        }
        b[i] = maximize ? x : 1 / x;
    }
    int rc = evolve_stats_test(b, nb, c, nc, 0.95, t);
    free(b);
    return rc;
}

void code_fitness_text(const evolve_test *t, char *buf, size_t n)
{
    snprintf(buf, n, "%+.1f%% [%+.1f%%, %+.1f%%] p=%.3g", t->gain * 100, t->lo * 100, t->hi * 100, t->p);
}
