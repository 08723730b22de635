/* learn_parse.c: documents to plain text for the knowledge store: markdown
 * and text (headings kept as lines, markup dropped), HTML (libxml2's HTML
 * parser; script, style and nav dropped; title from <title>), man pages
 * (rendered by `man -l` when present, else roff requests stripped here;
 * title from NAME), PDF through pdftotext. The kind comes from the name and
 * the first bytes; gzip is looked through. Child programs run from an
 * argument vector, never a shell, with size and time limits. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>


#include "brain/learn_int.h"
#include "brain/xml_dl.h"

extern char **environ;

/* ---- a growing text buffer ------------------------------------------------- */
typedef struct tbuf {
    char *s;
    size_t n, cap;
    bool oom;
} tbuf;

static void tb_put(tbuf *b, const char *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = true;
            return;
        }
        b->s = s, b->cap = cap;
    }
    memcpy(b->s + b->n, p, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void tb_str(tbuf *b, const char *s) { tb_put(b, s, strlen(s)); }
static void tb_ch(tbuf *b, char c) { tb_put(b, &c, 1); }
static char tb_last(const tbuf *b) { return b->n ? b->s[b->n - 1] : '\n'; }

/* Ends the current line (no blank line added). */
static void tb_eol(tbuf *b)
{
    if (tb_last(b) != '\n')
        tb_ch(b, '\n');
}
/* A paragraph break: at most one blank line. */
static void tb_para(tbuf *b)
{
    tb_eol(b);
    if (b->n >= 2 && b->s[b->n - 2] != '\n')
        tb_ch(b, '\n');
}

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* Trailing blanks of each line dropped, runs of blank lines made one,
 * leading/trailing blank lines dropped. In place. */
static void tidy(char *s)
{
    char *w = s, *end = s + strlen(s);
    int blanks = 2; /* at the start: drop blank lines */
    for (char *line = s; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        size_t m = n;
        while (m && (line[m - 1] == ' ' || line[m - 1] == '\t' || line[m - 1] == '\r'))
            m--;
        if (m == 0) {
            if (blanks++ == 0)
                *w++ = '\n';
        } else {
            blanks = 0;
            memmove(w, line, m);
            w += m;
            *w++ = '\n';
        }
        line = nl ? nl + 1 : end;
    }
    while (w > s && (w[-1] == '\n'))
        w--;
    *w = 0;
}

static int finish(tbuf *b, char *title, const char *kind, learn_doc *out, char *err, size_t errlen)
{
    if (b->oom || !title) {
        free(b->s), free(title);
        set_err(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (!b->s)
        tb_str(b, "");
    tidy(b->s);
    if (!b->s || !*b->s) {
        free(b->s), free(title);
        set_err(err, errlen, "no text in it");
        return -EINVAL;
    }
    tidy(title);
    for (char *p = title; *p; p++) /* one line */
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    out->text = b->s;
    out->title = title;
    snprintf(out->kind, sizeof out->kind, "%s", kind);
    return 0;
}

void learn_doc_free(learn_doc *d)
{
    if (!d)
        return;
    free(d->title), free(d->text);
    d->title = d->text = NULL;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n), d[n] = 0;
    return d;
}

static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* ---- sniffing -------------------------------------------------------------- */
bool learn_is_text(const char *buf, size_t len)
{
    size_t n = len < 8192 ? len : 8192, bad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == 0)
            return false;
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t' && c != '\f' && c != '\b' && c != 0x1b)
            bad++;
    }
    return bad * 100 <= n;
}

static bool ends_with(const char *s, size_t n, const char *suf)
{
    size_t m = strlen(suf);
    return n >= m && strncasecmp(s + n - m, suf, m) == 0;
}

/* The kind the name's extension says, NULL when it says nothing. */
static const char *kind_of_name(const char *name)
{
    if (!name)
        return NULL;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    size_t n = strlen(base);
    if (ends_with(base, n, ".gz"))
        n -= 3;
    static const struct {
        const char *ext, *kind;
    } map[] = {{".md", "markdown"}, {".markdown", "markdown"}, {".mdown", "markdown"}, {".html", "html"},
               {".htm", "html"},     {".xhtml", "html"},        {".pdf", "pdf"},         {".txt", "text"},
               {".text", "text"},    {".rst", "text"},          {".man", "man"},         {".roff", "man"}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (ends_with(base, n, map[i].ext))
            return map[i].kind;
    const char *dot = memrchr(base, '.', n);
    if (dot && dot + 1 < base + n && dot[1] >= '1' && dot[1] <= '9' && base + n - dot <= 8) {
        bool ok = true; /* ".1", ".3pm", ".1ssl" */
        for (const char *p = dot + 2; p < base + n; p++)
            ok = ok && isalnum((unsigned char)*p);
        if (ok)
            return "man";
    }
    return NULL;
}

static bool starts_ci(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && strncasecmp(p, w, n) == 0;
}

const char *learn_sniff(const char *name, const char *buf, size_t len)
{
    if (len >= 5 && memcmp(buf, "%PDF-", 5) == 0)
        return "pdf";
    if (!learn_is_text(buf, len))
        return NULL;
    const char *end = buf + (len < 4096 ? len : 4096), *p = buf;
    const char *by_name = kind_of_name(name);
    if (by_name && !strcmp(by_name, "man")) { /* "v1.2" is no man page: a roff request is wanted */
        bool req = len && (buf[0] == '.' || buf[0] == '\'');
        for (const char *q = buf; !req && q < end && (q = memchr(q, '\n', (size_t)(end - q))) && q + 1 < end; q++)
            req = q[1] == '.' || q[1] == '\'';
        if (!req)
            by_name = NULL;
    }
    if (by_name && strcmp(by_name, "pdf") != 0)
        return by_name;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p + 3 <= end && (unsigned char)p[0] == 0xef && (unsigned char)p[1] == 0xbb && (unsigned char)p[2] == 0xbf)
        p += 3;
    if (starts_ci(p, end, "<!doctype html") || starts_ci(p, end, "<html") || starts_ci(p, end, "<head") ||
        starts_ci(p, end, "<body"))
        return "html";
    if (starts_ci(p, end, ".TH ") || starts_ci(p, end, ".Dd ") || starts_ci(p, end, ".\\\"") ||
        starts_ci(p, end, "'\\\""))
        return "man";
    for (const char *l = p; l < end;) { /* a markdown heading, fence or link */
        const char *nl = memchr(l, '\n', (size_t)(end - l));
        const char *le = nl ? nl : end;
        if ((le - l > 2 && l[0] == '#' && (l[1] == ' ' || l[1] == '#')) || (le - l >= 3 && !strncmp(l, "```", 3)))
            return "markdown";
        const char *br = memmem(l, (size_t)(le - l), "](", 2);
        if (br && memchr(l, '[', (size_t)(br - l)))
            return "markdown";
        l = nl ? nl + 1 : end;
    }
    return "text";
}

/* ---- text and markdown ---------------------------------------------------- */
int learn_parse_text(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    tbuf b = {0};
    for (size_t i = 0; i < len; i++)
        if (buf[i] != '\r' && buf[i] != 0)
            tb_ch(&b, buf[i] == '\f' ? '\n' : buf[i]);
    const char *p = b.s ? b.s : "";
    while (*p && isspace((unsigned char)*p))
        p++;
    size_t tl = strcspn(p, "\n");
    return finish(&b, dupn(p, tl > 200 ? 200 : tl), "text", out, err, errlen);
}

/* Inline markdown of one line to text: links and images keep their text,
 * code spans their code, emphasis and HTML tags go. */
static void md_inline(tbuf *b, const char *p, const char *end)
{
    while (p < end) {
        char c = *p;
        if (c == '\\' && p + 1 < end && ispunct((unsigned char)p[1])) {
            tb_ch(b, p[1]);
            p += 2;
        } else if (c == '`') {
            const char *q = p;
            while (q < end && *q == '`')
                q++;
            size_t ticks = (size_t)(q - p);
            const char *close = q;
            while (close < end) { /* the same run of backticks */
                const char *t = memchr(close, '`', (size_t)(end - close));
                if (!t)
                    break;
                const char *u = t;
                while (u < end && *u == '`')
                    u++;
                if ((size_t)(u - t) == ticks) {
                    close = t;
                    break;
                }
                close = u;
            }
            if (close < end && *close == '`') {
                tb_put(b, q, (size_t)(close - q));
                p = close + ticks;
            } else {
                tb_put(b, p, ticks);
                p = q;
            }
        } else if ((c == '!' && p + 1 < end && p[1] == '[') || c == '[') {
            const char *t = c == '!' ? p + 2 : p + 1;
            const char *rb = memchr(t, ']', (size_t)(end - t));
            if (rb && rb + 1 < end && (rb[1] == '(' || rb[1] == '[')) {
                const char *cl = memchr(rb + 2, rb[1] == '(' ? ')' : ']', (size_t)(end - rb - 2));
                if (cl) {
                    md_inline(b, t, rb);
                    p = cl + 1;
                    continue;
                }
            }
            tb_ch(b, c);
            p++;
        } else if (c == '<' && p + 1 < end && (isalpha((unsigned char)p[1]) || p[1] == '/' || p[1] == '!')) {
            const char *gt = memchr(p, '>', (size_t)(end - p));
            if (gt && memchr(p, ' ', (size_t)(gt - p)) == NULL && memchr(p, ':', (size_t)(gt - p))) {
                tb_put(b, p + 1, (size_t)(gt - p - 1)); /* <https://autolink> */
                p = gt + 1;
            } else if (gt) {
                p = gt + 1; /* an HTML tag */
            } else {
                tb_ch(b, c), p++;
            }
        } else if (c == '*' || (c == '_' && (p == end - 1 || !isalnum((unsigned char)p[1]) ||
                                              tb_last(b) == ' ' || tb_last(b) == '\n'))) {
            if (c == '_' && b->n && isalnum((unsigned char)tb_last(b)) && p + 1 < end && isalnum((unsigned char)p[1]))
                tb_ch(b, c); /* snake_case */
            p++;
        } else if (c == '~' && p + 1 < end && p[1] == '~') {
            p += 2;
        } else {
            tb_ch(b, c);
            p++;
        }
    }
}

static bool md_rule(const char *p, const char *end, char ch)
{
    int n = 0;
    for (; p < end; p++) {
        if (*p == ch)
            n++;
        else if (*p != ' ' && *p != '\t')
            return false;
    }
    return n >= 3;
}

static bool md_table_sep(const char *p, const char *end)
{
    bool bar = false, dash = false;
    for (; p < end; p++) {
        if (*p == '|')
            bar = true;
        else if (*p == '-')
            dash = true;
        else if (*p != ':' && *p != ' ' && *p != '\t')
            return false;
    }
    return bar && dash;
}

/* One markdown line outside code: headings, lists, quotes, tables. *title
 * gets the first heading. */
static void md_line(tbuf *b, const char *p, const char *end, const char *next, const char *nend, char **title)
{
    p = skip_blanks(p, end);
    while (p < end && *p == '>') /* quotes */
        p = skip_blanks(p + 1, end);
    if (p == end) {
        tb_para(b);
        return;
    }
    if (md_rule(p, end, '-') || md_rule(p, end, '*') || md_rule(p, end, '_') || md_rule(p, end, '='))
        return;
    if (*p == '[') { /* a reference definition "[x]: url" */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb && rb + 1 < end && rb[1] == ':')
            return;
    }
    if (md_table_sep(p, end))
        return;
    int level = 0;
    while (p + level < end && p[level] == '#' && level < 7)
        level++;
    bool setext = next && (md_rule(next, nend, '=') || (md_rule(next, nend, '-') && nend - next >= 3 &&
                                                          *skip_blanks(next, nend) == '-'));
    if ((level >= 1 && level <= 6 && (p + level == end || p[level] == ' ')) || setext) {
        if (level && !setext)
            p = skip_blanks(p + level, end);
        const char *e = end;
        while (e > p && (e[-1] == '#' || e[-1] == ' ')) /* closing #s */
            e--;
        if (e == p)
            e = end;
        tb_para(b);
        size_t at = b->n;
        md_inline(b, p, e);
        if (!**title && b->s && b->n > at)
            free(*title), *title = dupn(b->s + at, b->n - at);
        tb_para(b);
        return;
    }
    if ((*p == '-' || *p == '*' || *p == '+') && p + 1 < end && p[1] == ' ') {
        tb_eol(b);
        p = skip_blanks(p + 2, end);
    } else if (isdigit((unsigned char)*p)) {
        const char *q = p;
        while (q < end && isdigit((unsigned char)*q))
            q++;
        if (q < end && (*q == '.' || *q == ')') && q + 1 < end && q[1] == ' ') {
            tb_eol(b);
            p = skip_blanks(q + 2, end);
        }
    }
    if (memchr(p, '|', (size_t)(end - p))) { /* a table row: cells joined by blanks */
        tb_eol(b);
        const char *s = p;
        for (const char *q = p; q <= end; q++)
            if (q == end || *q == '|') {
                const char *a = skip_blanks(s, q), *z = q;
                while (z > a && (z[-1] == ' ' || z[-1] == '\t'))
                    z--;
                if (z > a) {
                    if (tb_last(b) != '\n')
                        tb_str(b, "  ");
                    md_inline(b, a, z);
                }
                s = q + 1;
            }
        tb_eol(b);
        return;
    }
    if (tb_last(b) != '\n' && tb_last(b) != ' ')
        tb_ch(b, '\n');
    md_inline(b, p, end);
}

int learn_parse_markdown(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    tbuf b = {0};
    char *title = calloc(1, 1);
    const char *p = buf, *end = buf + len;
    if (len >= 4 && !strncmp(buf, "---\n", 4)) { /* front matter: title: ... */
        const char *fm = memmem(buf + 4, len - 4, "\n---", 4);
        if (fm) {
            for (const char *l = buf + 4; l < fm;) {
                const char *nl = memchr(l, '\n', (size_t)(fm - l));
                const char *le = nl ? nl : fm;
                if (le - l > 6 && !strncmp(l, "title:", 6) && title && !*title) {
                    const char *v = skip_blanks(l + 6, le), *ve = le;
                    if (ve > v && (*v == '"' || *v == '\''))
                        v++, ve -= (ve > v && (ve[-1] == '"' || ve[-1] == '\''));
                    free(title), title = dupn(v, (size_t)(ve > v ? ve - v : 0));
                }
                l = nl ? nl + 1 : fm;
            }
            p = fm + 4;
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            p = nl ? nl + 1 : end;
        }
    }
    bool code = false;
    char fence[8] = "";
    while (p < end && title) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *e = le > p && le[-1] == '\r' ? le - 1 : le;
        const char *s = skip_blanks(p, e);
        const char *next = nl ? nl + 1 : NULL, *nend = NULL;
        if (next) {
            const char *nn = memchr(next, '\n', (size_t)(end - next));
            nend = nn ? nn : end;
            if (nend > next && nend[-1] == '\r')
                nend--;
            if (skip_blanks(next, nend) == nend || *skip_blanks(next, nend) == '#')
                next = NULL; /* not a setext underline */
        }
        if (e - s >= 3 && (!strncmp(s, "```", 3) || !strncmp(s, "~~~", 3))) {
            if (!code) {
                code = true;
                snprintf(fence, sizeof fence, "%.3s", s);
                tb_para(&b);
            } else if (!strncmp(s, fence, 3)) {
                code = false;
                tb_para(&b);
            }
        } else if (code) {
            tb_put(&b, p, (size_t)(e - p));
            tb_ch(&b, '\n');
        } else if (next && (md_rule(next, nend, '=') || md_rule(next, nend, '-')) && s < e) {
            md_line(&b, p, e, next, nend, &title);
            p = nend < end ? nend + 1 : end;
            continue;
        } else {
            md_line(&b, p, e, NULL, NULL, &title);
        }
        p = nl ? nl + 1 : end;
    }
    if (title && !*title && b.s) { /* no heading: the first line */
        const char *t = b.s;
        while (*t == '\n')
            t++;
        size_t tl = strcspn(t, "\n");
        free(title), title = dupn(t, tl > 200 ? 200 : tl);
    }
    return finish(&b, title, "markdown", out, err, errlen);
}

/* ---- HTML ------------------------------------------------------------------ */
static bool html_is(const xmlNode *n, const char *name) { return !strcasecmp((const char *)n->name, name); }

static bool html_dropped(const xmlNode *n)
{
    static const char *const drop[] = {"script", "style", "nav", "noscript", "template", "svg", "iframe",
                                       "head", "form", "button", "select"};
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (html_is(n, drop[i]))
            return true;
    return false;
}

static bool html_block(const xmlNode *n)
{
    static const char *const blocks[] = {"p", "div", "section", "article", "main", "header", "footer",
                                         "aside", "ul", "ol", "li", "dl", "dt", "dd", "table", "tr",
                                         "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
                                         "hr", "figure", "figcaption", "address", "details", "summary"};
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        if (html_is(n, blocks[i]))
            return true;
    return false;
}

/* Text of a node, blanks collapsed (kept in <pre>). */
static void html_text(tbuf *b, const char *s, bool pre)
{
    for (; *s; s++) {
        if (pre) {
            tb_ch(b, *s == '\r' ? '\n' : *s);
        } else if (isspace((unsigned char)*s)) {
            char l = tb_last(b);
            if (l != ' ' && l != '\n')
                tb_ch(b, ' ');
        } else {
            tb_ch(b, *s);
        }
    }
}

static void html_walk(tbuf *b, xmlNode *n, bool pre, int depth)
{
    for (; n; n = n->next) {
        if (n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) {
            if (n->content)
                html_text(b, (const char *)n->content, pre);
            continue;
        }
        if (n->type != XML_ELEMENT_NODE || html_dropped(n) || depth > 200)
            continue;
        bool block = html_block(n), heading = n->name[0] == 'h' && isdigit(n->name[1]) && !n->name[2];
        if (html_is(n, "br")) {
            tb_ch(b, '\n');
            continue;
        }
        if (heading)
            tb_para(b);
        else if (block)
            tb_eol(b);
        else if (html_is(n, "td") || html_is(n, "th"))
            if (tb_last(b) != '\n')
                tb_str(b, "  ");
        html_walk(b, n->children, pre || html_is(n, "pre"), depth + 1);
        if (heading)
            tb_para(b);
        else if (block)
            tb_eol(b);
    }
}

static char *html_first(xmlNode *n, const char *name, int depth)
{
    for (; n && depth < 200; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        if (html_is(n, name)) {
            xmlChar *c = xmlNodeGetContent(n);
            char *s = strdup(c ? (const char *)c : "");
            xmlFree(c);
            for (char *p = s; p && *p; p++)
                if (isspace((unsigned char)*p))
                    *p = ' ';
            return s;
        }
        char *s = html_first(n->children, name, depth + 1);
        if (s)
            return s;
    }
    return NULL;
}

static char *collapse(char *s)
{
    if (!s)
        return s;
    char *w = s;
    for (char *p = s; *p; p++)
        if (*p != ' ' || (w > s && w[-1] != ' '))
            *w++ = *p;
    while (w > s && w[-1] == ' ')
        w--;
    *w = 0;
    return s;
}

int learn_parse_html(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    if (len > (size_t)INT32_MAX) {
        set_err(err, errlen, "too large");
        return -EINVAL;
    }
    int lrc = learn_xml_load(err, errlen);
    if (lrc)
        return lrc;
    htmlDocPtr doc = htmlReadMemory(buf, (int)len, NULL, NULL,
                                    HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                                        HTML_PARSE_NONET | HTML_PARSE_COMPACT);
    if (!doc || !xmlDocGetRootElement(doc)) {
        xmlFreeDoc(doc);
        set_err(err, errlen, "malformed HTML: the parser found no document");
        return -EINVAL;
    }
    xmlNode *root = xmlDocGetRootElement(doc);
    char *title = collapse(html_first(root, "title", 0));
    if (!title || !*title)
        free(title), title = collapse(html_first(root, "h1", 0));
    if (!title)
        title = calloc(1, 1);
    tbuf b = {0};
    html_walk(&b, root, false, 0);
    xmlFreeDoc(doc);
    return finish(&b, title, "html", out, err, errlen);
}

/* ---- man pages ------------------------------------------------------------- */
/* roff escapes of one line: fonts, sizes, strings dropped, a few glyphs. */
static void roff_escapes(tbuf *b, const char *p, const char *end)
{
    static const struct {
        const char *name, *text;
    } glyphs[] = {{"em", "--"}, {"en", "-"}, {"hy", "-"}, {"bu", "*"}, {"aq", "'"}, {"dq", "\""}, {"lq", "\""},
                  {"rq", "\""}, {"oq", "'"}, {"cq", "'"}, {"co", "(c)"}, {"rg", "(R)"}, {"tm", "(TM)"},
                  {"mi", "-"}, {"pl", "+"}, {"ti", "~"}, {"ha", "^"}, {"ga", "`"}, {"rs", "\\"}, {"<=", "<="},
                  {">=", ">="}, {"->", "->"}, {"<-", "<-"}, {"mu", "x"}, {"de", " degrees"}};
    while (p < end) {
        if (*p != '\\') {
            tb_ch(b, *p++);
            continue;
        }
        if (++p >= end)
            break;
        char c = *p++;
        char name[16] = "";
        switch (c) {
        case '"':
            return; /* a comment to the end of the line */
        case '-': tb_ch(b, '-'); break;
        case 'e': case '\\': tb_ch(b, '\\'); break;
        case ' ': case '0': case '~': tb_ch(b, ' '); break;
        case '&': case '|': case '^': case 'c': case '%': case ')': case ',': case '/': case ':': break;
        case '.': tb_ch(b, '.'); break;
        case '\'': tb_ch(b, '\''); break;
        case '`': tb_ch(b, '`'); break;
        case 'f': case 'F': case 'n': case '*': case 'g': case 'k': case 'm': case 'V': case 'Y': case '(': case '[':
        case 's': case 'h': case 'v': case 'w': case 'o': case 'l': case 'L': case 'x': case 'N': case 'z': case 'D':
        case 'H': case 'S': case 'b': case 'R': case 'X': case 'Z': case 'C': case 'A': case 'B': case 'u': {
            bool glyph = c == '(' || c == '[' || c == 'C';
            bool str = c == '*';
            if (c == 's' && p < end && (*p == '+' || *p == '-'))
                p++;
            if (c == 's' || c == 'n' || c == 'f' || c == 'F' || c == '*' || c == 'g' || c == 'k' || c == 'm' ||
                c == 'V' || c == 'Y' || c == '(' || c == '[') {
                if (c == '[') {
                    const char *rb = memchr(p, ']', (size_t)(end - p));
                    snprintf(name, sizeof name, "%.*s", (int)((rb ? rb : end) - p), p);
                    p = rb ? rb + 1 : end;
                } else if (c == '(') {
                    snprintf(name, sizeof name, "%.*s", (int)(end - p < 2 ? end - p : 2), p);
                    p += end - p < 2 ? end - p : 2;
                } else if (p < end && *p == '(') {
                    snprintf(name, sizeof name, "%.*s", (int)(end - p - 1 < 2 ? end - p - 1 : 2), p + 1);
                    p += 1 + (end - p - 1 < 2 ? end - p - 1 : 2);
                } else if (p < end && *p == '[') {
                    const char *rb = memchr(p, ']', (size_t)(end - p));
                    snprintf(name, sizeof name, "%.*s", (int)((rb ? rb : end) - p - 1), p + 1);
                    p = rb ? rb + 1 : end;
                } else if (p < end) {
                    if (c == 's')
                        while (p < end && isdigit((unsigned char)*p))
                            p++;
                    else
                        snprintf(name, sizeof name, "%c", *p), p++;
                }
            } else if (p < end && (*p == '\'' || *p == '[')) { /* \w'..' \h'..' \C'..' */
                char close = *p == '[' ? ']' : '\'';
                const char *q = memchr(p + 1, close, (size_t)(end - p - 1));
                if (c == 'C')
                    snprintf(name, sizeof name, "%.*s", (int)((q ? q : end) - p - 1), p + 1);
                p = q ? q + 1 : end;
            }
            if (str && (!strcmp(name, "lq") || !strcmp(name, "rq") || !strcmp(name, "R")))
                tb_str(b, !strcmp(name, "R") ? "(R)" : "\"");
            if (glyph)
                for (size_t i = 0; i < sizeof glyphs / sizeof glyphs[0]; i++)
                    if (!strcmp(name, glyphs[i].name)) {
                        tb_str(b, glyphs[i].text);
                        break;
                    }
            break;
        }
        default:
            tb_ch(b, c);
        }
    }
}

/* A request's arguments (quotes honoured), each escaped, joined by sep. */
static void roff_args(tbuf *b, const char *p, const char *end, const char *sep)
{
    bool first = true;
    while (p < end) {
        p = skip_blanks(p, end);
        if (p >= end)
            break;
        const char *a = p, *z;
        if (*p == '"') {
            a = ++p;
            while (p < end && !(*p == '"' && (p + 1 >= end || p[1] != '"')))
                p++;
            z = p;
            if (p < end)
                p++;
        } else {
            while (p < end && *p != ' ' && *p != '\t') {
                if (*p == '\\' && p + 1 < end)
                    p++;
                p++;
            }
            z = p;
        }
        if (!first)
            tb_str(b, sep);
        first = false;
        roff_escapes(b, a, z);
    }
}

int learn_parse_roff(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    tbuf b = {0};
    tbuf name = {0};
    bool in_name = false, nofill = false;
    for (const char *p = buf, *end = buf + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (p < le && (*p == '.' || *p == '\'')) {
            const char *r = skip_blanks(p + 1, le), *re = r;
            while (re < le && *re != ' ' && *re != '\t')
                re++;
            size_t rn = (size_t)(re - r);
            const char *args = skip_blanks(re, le);
#define REQ(s) (rn == strlen(s) && !strncmp(r, s, rn))
            if (REQ("SH") || REQ("SS") || REQ("Sh") || REQ("Ss")) {
                tb_para(&b);
                size_t at = b.n;
                roff_args(&b, args, le, " ");
                in_name = b.s && b.n > at && !strcasecmp(b.s + at, "NAME");
                tb_para(&b);
            } else if (REQ("B") || REQ("I") || REQ("SM") || REQ("SB") || REQ("Nm") || REQ("Ar") || REQ("Pa") ||
                       REQ("Cm") || REQ("Em") || REQ("Sy") || REQ("Li") || REQ("Ev") || REQ("Va") || REQ("Dv") ||
                       REQ("Er") || REQ("Ic") || REQ("Xr") || REQ("Fn") || REQ("Fa") || REQ("Ft") || REQ("Nd") ||
                       REQ("It") || REQ("Ql") || REQ("Dq") || REQ("Sq") || REQ("Pq") || REQ("Op")) {
                tbuf *t = in_name ? &name : &b;
                if (REQ("Nd"))
                    tb_str(t, " - ");
                else if (tb_last(t) != '\n' && tb_last(t) != ' ')
                    tb_ch(t, ' ');
                roff_args(t, args, le, " ");
                if (REQ("It"))
                    tb_ch(t, '\n');
            } else if (REQ("Fl")) {
                tbuf *t = in_name ? &name : &b;
                if (tb_last(t) != '\n' && tb_last(t) != ' ')
                    tb_ch(t, ' ');
                tb_ch(t, '-');
                roff_args(t, args, le, " ");
            } else if (rn == 2 && strchr("BIR", r[0]) && strchr("BIR", r[1])) { /* .BR .IR .RB ... */
                tbuf *t = in_name ? &name : &b;
                if (tb_last(t) != '\n' && tb_last(t) != ' ')
                    tb_ch(t, ' ');
                roff_args(t, args, le, "");
            } else if (REQ("PP") || REQ("LP") || REQ("P") || REQ("Pp") || REQ("sp") || REQ("TP") || REQ("HP")) {
                tb_para(&b);
            } else if (REQ("IP") || REQ("TQ")) {
                tb_para(&b);
                roff_args(&b, args, le, " ");
                tb_ch(&b, ' ');
            } else if (REQ("br")) {
                tb_eol(&b);
            } else if (REQ("nf") || REQ("EX") || REQ("Bd")) {
                nofill = true, tb_eol(&b);
            } else if (REQ("fi") || REQ("EE") || REQ("Ed")) {
                nofill = false, tb_eol(&b);
            } else if (REQ("TH") || REQ("Dt")) {
                tb_para(&b);
            }
            /* every other request (.\" comments, .de, .ds, .RS, .in, .if ...) is dropped */
#undef REQ
        } else {
            tbuf *t = in_name ? &name : &b;
            if (!nofill && tb_last(t) != '\n' && tb_last(t) != ' ')
                tb_ch(t, ' ');
            roff_escapes(t, p, le);
            if (nofill)
                tb_ch(t, '\n');
        }
        p = nl ? nl + 1 : end;
    }
    if (name.s) { /* NAME goes into the text too */
        tidy(name.s);
        tb_str(&b, "");
        tbuf full = {0};
        tb_str(&full, "NAME\n");
        tb_str(&full, collapse(name.s));
        tb_str(&full, "\n\n");
        if (b.s)
            tb_str(&full, b.s);
        free(b.s);
        b = full;
    }
    char *title = name.s ? name.s : calloc(1, 1);
    return finish(&b, title, "man", out, err, errlen);
}

int learn_parse_rendered_man(const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    tbuf b = {0};
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\b') { /* overstrike: "x\bx" bold, "_\bx" underline */
            if (b.n)
                b.n--, b.s[b.n] = 0;
            continue;
        }
        if (c == 0x1b && i + 1 < len && buf[i + 1] == '[') { /* SGR */
            size_t j = i + 2;
            while (j < len && (isdigit((unsigned char)buf[j]) || buf[j] == ';'))
                j++;
            i = j < len ? j : len;
            continue;
        }
        if (c == '\r' || c == 0)
            continue;
        tb_ch(&b, (char)c);
    }
    char *title = calloc(1, 1);
    const char *nm = b.s ? strstr(b.s, "\nNAME\n") : NULL;
    if (!nm && b.s && !strncmp(b.s, "NAME\n", 5))
        nm = b.s - 1;
    if (nm && title) { /* the NAME section's lines up to a blank one */
        tbuf t = {0};
        for (const char *l = nm + 6; *l && *l != '\n';) {
            const char *nl = strchr(l, '\n');
            size_t n = nl ? (size_t)(nl - l) : strlen(l);
            if (t.n)
                tb_ch(&t, ' ');
            const char *s = skip_blanks(l, l + n);
            tb_put(&t, s, (size_t)(l + n - s));
            l = nl ? nl + 1 : l + n;
        }
        if (t.s)
            free(title), title = collapse(t.s);
    }
    return finish(&b, title, "man", out, err, errlen);
}

/* ---- child programs -------------------------------------------------------- */
bool learn_have(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    char dir[4096];
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)n, p, prog);
        if (n && access(dir, X_OK) == 0)
            return true;
        p += n + (p[n] == ':');
    }
    return false;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* environ plus env ("K=V" replacing a K already there): malloc'd array. */
static char **merged_env(const char *const *env)
{
    size_t n = 0, m = 0;
    while (environ && environ[n])
        n++;
    while (env && env[m])
        m++;
    char **v = calloc(n + m + 1, sizeof *v);
    if (!v)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < m; j++) {
            size_t kl = strcspn(env[j], "=");
            replaced = replaced || (!strncmp(environ[i], env[j], kl) && environ[i][kl] == '=');
        }
        if (!replaced)
            v[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        v[k++] = (char *)env[j];
    return v;
}

int learn_run(const char *const *argv, const char *const *env, size_t max, int timeout_ms, char **out,
              size_t *outlen, char *err, size_t errlen)
{
    *out = NULL, *outlen = 0;
    if (!learn_have(argv[0])) {
        snprintf(err, errlen, "%s is not installed", argv[0]);
        return -ENOENT;
    }
    int fds[2];
    if (pipe2(fds, O_CLOEXEC)) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -errno;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char **envp = merged_env(env);
    pid_t pid;
    int rc = envp ? posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, envp) : ENOMEM;
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    close(fds[1]);
    if (rc) {
        close(fds[0]);
        snprintf(err, errlen, "cannot run %s: %s", argv[0], strerror(rc));
        return -rc;
    }
    tbuf b = {0};
    int64_t deadline = mono_ms() + timeout_ms;
    int res = 0;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            res = -ETIMEDOUT;
            snprintf(err, errlen, "%s took longer than %d s", argv[0], timeout_ms / 1000);
            break;
        }
        struct pollfd pf = {fds[0], POLLIN, 0};
        int pr = poll(&pf, 1, (int)left);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr <= 0)
            continue;
        char chunk[65536];
        ssize_t n = read(fds[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (b.n + (size_t)n > max) {
            res = -E2BIG;
            snprintf(err, errlen, "%s wrote more than %zu MB", argv[0], max >> 20);
            break;
        }
        tb_put(&b, chunk, (size_t)n);
    }
    close(fds[0]);
    if (res)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!res && b.oom)
        res = -ENOMEM, snprintf(err, errlen, "out of memory");
    if (!res && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
        res = -EIO;
        snprintf(err, errlen, "%s failed (%s %d)", argv[0], WIFEXITED(st) ? "exit status" : "signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    }
    if (res) {
        free(b.s);
        return res;
    }
    *out = b.s ? b.s : calloc(1, 1);
    *outlen = b.n;
    return *out ? 0 : -ENOMEM;
}

/* ---- files and gzip -------------------------------------------------------- */
int learn_read_file(const char *path, char **buf, size_t *len, char *err, size_t errlen)
{
    *buf = NULL, *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s", strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        snprintf(err, errlen, "not a regular file");
        return -EINVAL;
    }
    if ((size_t)st.st_size > LEARN_FILE_MAX) {
        close(fd);
        snprintf(err, errlen, "larger than the limit of %zu MB (%lld bytes)", LEARN_FILE_MAX >> 20,
                 (long long)st.st_size);
        return -EFBIG;
    }
    char *b = malloc((size_t)st.st_size + 1);
    size_t n = 0;
    while (b && n < (size_t)st.st_size) {
        ssize_t r = read(fd, b + n, (size_t)st.st_size - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b[n] = 0;
    *buf = b, *len = n;
    return 0;
}

int learn_gunzip(const char *buf, size_t len, size_t max, char **out, size_t *outlen, char *err, size_t errlen)
{
    *out = NULL, *outlen = 0;
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        snprintf(err, errlen, "cannot start gzip");
        return -ENOMEM;
    }
    tbuf b = {0};
    z.next_in = (Bytef *)buf;
    z.avail_in = (uInt)len;
    int rc = Z_OK;
    while (rc != Z_STREAM_END) {
        unsigned char chunk[65536];
        z.next_out = chunk;
        z.avail_out = sizeof chunk;
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) {
            inflateEnd(&z);
            free(b.s);
            snprintf(err, errlen, "bad gzip data (%s)", z.msg ? z.msg : "truncated");
            return -EINVAL;
        }
        size_t got = sizeof chunk - z.avail_out;
        if (b.n + got > max) {
            inflateEnd(&z);
            free(b.s);
            snprintf(err, errlen, "decompresses to more than the limit of %zu MB", max >> 20);
            return -E2BIG;
        }
        tb_put(&b, (const char *)chunk, got);
        if (rc == Z_OK && got == 0 && z.avail_in == 0) {
            inflateEnd(&z);
            free(b.s);
            snprintf(err, errlen, "bad gzip data (truncated)");
            return -EINVAL;
        }
    }
    inflateEnd(&z);
    *out = b.s ? b.s : calloc(1, 1);
    *outlen = b.n;
    return *out && !b.oom ? 0 : -ENOMEM;
}

/* ---- the whole document ----------------------------------------------------- */
static int parse_man(const char *path, const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    if (path && learn_have("man")) {
        const char *argv[] = {"man", "--no-hyphenation", "--no-justification", "-l", "-P", "cat", path, NULL};
        const char *env[] = {"MANWIDTH=100", "MAN_KEEP_FORMATTING=", "GROFF_NO_SGR=1", "LC_ALL=C.UTF-8", NULL};
        char *text;
        size_t n;
        char e2[256];
        if (learn_run(argv, env, LEARN_TEXT_MAX, LEARN_TIMEOUT_MS, &text, &n, e2, sizeof e2) == 0) {
            int rc = learn_parse_rendered_man(text, n, out, err, errlen);
            free(text);
            if (rc == 0)
                return 0;
        }
    }
    return learn_parse_roff(buf, len, out, err, errlen);
}

static int parse_pdf(const char *path, const char *buf, size_t len, learn_doc *out, char *err, size_t errlen)
{
    if (!learn_have("pdftotext")) {
        snprintf(err, errlen, "a PDF, and pdftotext is not installed (Debian: apt-get install poppler-utils)");
        return -ENOENT;
    }
    char tmp[] = "/tmp/ippoc-learn-XXXXXX";
    int fd = -1;
    if (!path) { /* fetched bytes: through a private temporary file */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            snprintf(err, errlen, "temporary file: %s", strerror(errno));
            return -errno;
        }
        size_t w = 0;
        while (w < len) {
            ssize_t r = write(fd, buf + w, len - w);
            if (r <= 0)
                break;
            w += (size_t)r;
        }
        close(fd);
        path = tmp;
    }
    const char *argv[] = {"pdftotext", "-q", "-enc", "UTF-8", "-nopgbrk", path, "-", NULL};
    char *text;
    size_t n;
    int rc = learn_run(argv, NULL, LEARN_TEXT_MAX, LEARN_TIMEOUT_MS, &text, &n, err, errlen);
    if (fd >= 0)
        unlink(tmp);
    if (rc)
        return rc;
    rc = learn_parse_text(text, n, out, err, errlen);
    free(text);
    if (rc == 0)
        snprintf(out->kind, sizeof out->kind, "pdf");
    return rc;
}

int learn_parse(const char *path, const char *buf, size_t len, const char *kind, learn_doc *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *plain = NULL;
    size_t plen = 0;
    bool gz = len >= 2 && (unsigned char)buf[0] == 0x1f && (unsigned char)buf[1] == 0x8b;
    if (gz) {
        int rc = learn_gunzip(buf, len, LEARN_TEXT_MAX, &plain, &plen, err, errlen);
        if (rc)
            return rc;
        buf = plain, len = plen;
    }
    const char *sniffed = learn_sniff(path, buf, len);
    bool runbook = kind && !strcmp(kind, "runbook");
    const char *k = kind && !runbook ? kind : sniffed;
    int rc;
    if (!k) {
        snprintf(err, errlen, "binary data, not a document");
        rc = -EINVAL;
    } else if (!strcmp(k, "pdf")) {
        rc = parse_pdf(gz ? NULL : path, buf, len, out, err, errlen);
    } else if (!learn_is_text(buf, len)) {
        snprintf(err, errlen, "binary data, not %s", k);
        rc = -EINVAL;
    } else if (!strcmp(k, "markdown")) {
        rc = learn_parse_markdown(buf, len, out, err, errlen);
    } else if (!strcmp(k, "html")) {
        rc = learn_parse_html(buf, len, out, err, errlen);
    } else if (!strcmp(k, "man")) {
        rc = parse_man(path, buf, len, out, err, errlen);
    } else if (!strcmp(k, "text")) {
        rc = learn_parse_text(buf, len, out, err, errlen);
    } else {
        snprintf(err, errlen, "unknown kind '%.32s' (expected markdown, text, html, man, pdf or runbook)", k);
        rc = -EINVAL;
    }
    free(plain);
    if (rc == 0 && runbook)
        snprintf(out->kind, sizeof out->kind, "runbook");
    return rc;
}
