/* logformat.c: Loghub-style header formats ("<Date> <Time> <Level>
 * <Component>: <Content>"), compiled into a small backtracking matcher that
 * splits a raw line and hands back its Content: each <Field> matches lazily
 * (as Loghub's "(.*?)"), each run of blanks in the format matches one or more
 * whitespace characters, "\X" is the literal X, "(...)?" an optional part
 * (tried with the part first), anything else literal. The line is stripped of
 * surrounding whitespace first and the match is anchored at both ends, as in
 * the reference implementation. */
#include "logs/logs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { FMT_LIT, FMT_WS, FMT_FIELD, FMT_OPT, FMT_END };

typedef struct fmt_el {
    int kind;
    int len;      /* FMT_LIT: bytes in lit; FMT_OPT: elements in the group */
    char *lit;    /* FMT_LIT */
    bool content; /* FMT_FIELD named Content */
} fmt_el;

struct logs_format {
    fmt_el *el;
    int n;
    bool has_content;
};

#define FMT_MAX_ELEMS 256
#define FMT_MAX_STEPS 100000 /* backtracking budget per line */

static int fmt_push(logs_format *f, fmt_el e)
{
    if (f->n >= FMT_MAX_ELEMS)
        return -E2BIG;
    fmt_el *ne = realloc(f->el, (size_t)(f->n + 1) * sizeof *ne);
    if (!ne)
        return -ENOMEM;
    f->el = ne;
    f->el[f->n++] = e;
    return 0;
}

/* Appends one literal byte, joining it to a literal just before. */
static int fmt_lit(logs_format *f, char c, bool join)
{
    if (join && f->n > 0 && f->el[f->n - 1].kind == FMT_LIT) {
        fmt_el *e = &f->el[f->n - 1];
        char *nl = realloc(e->lit, (size_t)e->len + 2);
        if (!nl)
            return -ENOMEM;
        e->lit = nl;
        e->lit[e->len++] = c;
        e->lit[e->len] = '\0';
        return 0;
    }
    char *l = malloc(2);
    if (!l)
        return -ENOMEM;
    l[0] = c;
    l[1] = '\0';
    int rc = fmt_push(f, (fmt_el){.kind = FMT_LIT, .len = 1, .lit = l});
    if (rc < 0)
        free(l);
    return rc;
}

void logs_format_free(logs_format *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n; i++)
        free(f->el[i].lit);
    free(f->el);
    free(f);
}

static int fmt_fail(logs_format *f, char *err, size_t errlen, int rc, const char *fmt, size_t at, const char *why)
{
    snprintf(err, errlen, "format '%s': at offset %zu: %s", fmt, at, why);
    logs_format_free(f);
    return rc;
}

int logs_format_new(const char *format, logs_format **out, char *err, size_t errlen)
{
    *out = NULL;
    logs_format *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int open = -1; /* index of the open FMT_OPT element */
    size_t i = 0, n = strlen(format);
    while (i < n) {
        char c = format[i];
        int rc = 0;
        if (c == ' ' || c == '\t') {
            while (i < n && (format[i] == ' ' || format[i] == '\t'))
                i++;
            rc = fmt_push(f, (fmt_el){.kind = FMT_WS});
        } else if (c == '<') {
            const char *e = strchr(format + i + 1, '>');
            if (!e || e == format + i + 1)
                return fmt_fail(f, err, errlen, -EINVAL, format, i, "'<' without a field name and '>'");
            for (const char *p = format + i + 1; p < e; p++)
                if (*p == '<' || *p == ' ')
                    return fmt_fail(f, err, errlen, -EINVAL, format, i, "bad field name");
            bool content = (size_t)(e - (format + i + 1)) == 7 && !strncmp(format + i + 1, "Content", 7);
            if (f->n > 0 && f->el[f->n - 1].kind == FMT_FIELD)
                return fmt_fail(f, err, errlen, -EINVAL, format, i, "two fields with nothing between them");
            rc = fmt_push(f, (fmt_el){.kind = FMT_FIELD, .content = content});
            f->has_content |= content;
            i = (size_t)(e - format) + 1;
        } else if (c == '\\') {
            if (i + 1 >= n)
                return fmt_fail(f, err, errlen, -EINVAL, format, i, "'\\' at the end");
            rc = fmt_lit(f, format[i + 1], true);
            i += 2;
        } else if (c == '(') {
            if (open >= 0)
                return fmt_fail(f, err, errlen, -EINVAL, format, i, "nested optional parts are not supported");
            open = f->n;
            rc = fmt_push(f, (fmt_el){.kind = FMT_OPT});
            i++;
        } else if (c == ')') {
            if (open < 0 || i + 1 >= n || format[i + 1] != '?')
                return fmt_fail(f, err, errlen, -EINVAL, format, i, "')' must close an optional part '(...)?'");
            f->el[open].len = f->n - open - 1;
            open = -1;
            i += 2;
            rc = fmt_push(f, (fmt_el){.kind = FMT_END}); /* keeps literals from joining across */
        } else {
            rc = fmt_lit(f, c, true);
            i++;
        }
        if (rc < 0)
            return fmt_fail(f, err, errlen, rc, format, i, rc == -E2BIG ? "too long" : "out of memory");
    }
    if (open >= 0)
        return fmt_fail(f, err, errlen, -EINVAL, format, n, "optional part '(' not closed");
    if (!f->has_content)
        return fmt_fail(f, err, errlen, -EINVAL, format, n, "no <Content> field");
    *out = f;
    return 0;
}

static bool fmt_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

typedef struct fmt_run {
    const logs_format *f;
    const char *s;
    size_t n;
    long steps;
    size_t cs, ce; /* Content */
} fmt_run;

/* Matches elements i.. of the format at line offset pos, to the line's end. */
static bool fmt_match(fmt_run *r, int i, size_t pos)
{
    if (++r->steps > FMT_MAX_STEPS)
        return false;
    const logs_format *f = r->f;
    if (i >= f->n)
        return pos == r->n;
    const fmt_el *e = &f->el[i];
    switch (e->kind) {
    case FMT_END:
        return fmt_match(r, i + 1, pos);
    case FMT_LIT:
        if (r->n - pos < (size_t)e->len || memcmp(r->s + pos, e->lit, (size_t)e->len))
            return false;
        return fmt_match(r, i + 1, pos + (size_t)e->len);
    case FMT_WS: {
        size_t k = pos;
        while (k < r->n && fmt_space((unsigned char)r->s[k]))
            k++;
        for (size_t end = k; end > pos; end--) /* greedy, then give back */
            if (fmt_match(r, i + 1, end))
                return true;
        return false;
    }
    case FMT_OPT:
        if (fmt_match(r, i + 1, pos))
            return true;
        return fmt_match(r, i + 1 + e->len + 1, pos); /* skip the group and its END */
    case FMT_FIELD:
    default:
        if (i + 1 >= f->n) { /* last element: takes the rest */
            if (e->content) {
                r->cs = pos;
                r->ce = r->n;
            }
            return true;
        }
        for (size_t end = pos; end <= r->n; end++) { /* lazy */
            /* a literal next: jump to its next occurrence */
            const fmt_el *nx = &f->el[i + 1];
            if (nx->kind == FMT_LIT) {
                const char *p = memchr(r->s + end, nx->lit[0], r->n - end);
                if (!p)
                    return false;
                end = (size_t)(p - r->s);
            } else if (nx->kind == FMT_WS) {
                while (end < r->n && !fmt_space((unsigned char)r->s[end]))
                    end++;
                if (end >= r->n)
                    return false;
            }
            if (fmt_match(r, i + 1, end)) {
                if (e->content) {
                    r->cs = pos;
                    r->ce = end;
                }
                return true;
            }
            if (r->steps > FMT_MAX_STEPS)
                return false;
        }
        return false;
    }
}

int logs_format_content(const logs_format *f, const char *line, size_t len, const char **content, size_t *clen)
{
    while (len > 0 && fmt_space((unsigned char)line[0])) {
        line++;
        len--;
    }
    while (len > 0 && fmt_space((unsigned char)line[len - 1]))
        len--;
    fmt_run r = {.f = f, .s = line, .n = len};
    if (!fmt_match(&r, 0, 0))
        return -EINVAL;
    *content = line + r.cs;
    *clen = r.ce - r.cs;
    return 0;
}
