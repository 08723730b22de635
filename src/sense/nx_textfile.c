/* nx_textfile.c: node_exporter's textfile collector. Reads every *.prom file
 * of [sense] textfile_dir (sorted by name) at scrape time, validates each
 * one whole against the text exposition format as node_exporter's parser
 * does (HELP/TYPE/sample lines, names, label syntax and escapes, values, no
 * client-side timestamps), checks that its families agree with the same
 * families in earlier files and are none of the families the other
 * collectors emit, and merges the good files' families. A bad file is left
 * out whole: node_textfile_scrape_error says 1 and the reasons are logged
 * once each time the set of problems changes; nothing here is fatal.
 * Good files get node_textfile_mtime_seconds{file="<path>"}.
 *
 * Runs last in the collector table, so the exposition built so far (x->out)
 * holds every other collector's families. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sense/nx_int.h"
#include "sense/nx_sys.h"

#define TF_MAX_FILE (16u << 20) /* bytes read from one file */
#define TF_NAME_MAX 128         /* as nx_fam.name_own */

typedef struct tf_fam {
    char name[TF_NAME_MAX];
    int type;         /* NX_* */
    int fid;          /* nx family handle this scrape; -1 before the first sample */
    bool has_help;    /* a HELP line gave the help */
    char *help;       /* unescaped; owned, kept between scrapes */
    size_t helpcap;
    /* within the file being parsed */
    bool seen_help, seen_type, seen_sample;
} tf_fam;

typedef struct tf_name {
    uint32_t off, len;
} tf_name;

/* A set of series hashes (open addressing; 0 marks a free slot). */
typedef struct tf_set {
    uint64_t *h;
    size_t cap, n;
} tf_set;

struct nx_text {
    tf_fam *fams;            /* this scrape's families (storage kept) */
    int nfams, capfams;
    int *idx;                /* name -> family + 1 (0: free), open addressing */
    size_t idxcap;           /* a power of two, at least twice capfams */
    sn_buf file;             /* the file being read */
    char *names;             /* *.prom names of the directory, NUL-separated */
    size_t nameslen, namescap;
    uint32_t *order;         /* offsets into names, sorted */
    int norder, caporder;
    tf_set series;           /* series (name and labels) of the files taken so far */
    tf_name *taken;          /* families of the other collectors (offsets into x->out) */
    int ntaken, captaken;
    bool taken_built;
    uint64_t err_hash, last_err_hash;
    int nerr;                /* problems that left something out (node_textfile_scrape_error) */
    int nmsg;                /* messages of this scrape (errors and notes) */
    char errs[8][320];       /* the first problems of this scrape, logged on a change */
};

/* ---- small helpers --------------------------------------------------------------- */
static int grow(void **p, int *cap, int need, size_t esz)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, (size_t)c * esz);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

/* FNV-1a over n bytes, from h. */
static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    return h;
}

static void tf_vreport(struct nx_text *t, bool error, const char *fmt, va_list ap)
{
    char msg[320];
    vsnprintf(msg, sizeof msg, fmt, ap);
    t->err_hash = hash_bytes(t->err_hash ^ 0x9e3779b97f4a7c15ull, msg, strlen(msg));
    if (t->nmsg < (int)(sizeof t->errs / sizeof t->errs[0]))
        core_sncpy(t->errs[t->nmsg], sizeof t->errs[0], msg);
    t->nmsg++;
    t->nerr += error;
}

/* A file (or the directory) that could not be used: logged, and counted in
 * node_textfile_scrape_error. */
static void tf_problem(struct nx_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tf_problem(struct nx_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_vreport(t, true, fmt, ap);
    va_end(ap);
}

/* Something dropped from a file that is otherwise used, as node_exporter
 * drops it without counting it as a scrape error: logged only. */
static void tf_note(struct nx_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tf_note(struct nx_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tf_vreport(t, false, fmt, ap);
    va_end(ap);
}

static bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

/* A metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) at p; its length (0: none). */
static size_t metric_name(const char *p, const char *e)
{
    const char *s = p;
    if (p < e && (name_start(*p) || *p == ':'))
        for (p++; p < e && (name_char(*p) || *p == ':'); p++)
            ;
    return (size_t)(p - s);
}

static size_t label_name(const char *p, const char *e)
{
    const char *s = p;
    if (p < e && name_start(*p))
        for (p++; p < e && name_char(*p); p++)
            ;
    return (size_t)(p - s);
}

static bool tok_is(const char *p, size_t n, const char *s)
{
    return strlen(s) == n && memcmp(p, s, n) == 0;
}

static bool strpbrk_n(const char *p, size_t n, const char *set)
{
    for (size_t i = 0; i < n; i++)
        if (strchr(set, p[i]))
            return true;
    return false;
}

/* Go's strconv.ParseFloat, near enough: the whole token must be a number,
 * NaN or [+-]Inf. */
static bool parse_value(const char *p, size_t n, double *v)
{
    char buf[64];
    /* no hex floats (the parser refuses 'p' and '_', and Go wants a 'p'
     * exponent in hex), no "nan(...)" */
    if (n == 0 || n >= sizeof buf || strpbrk_n(p, n, "(xXpP_"))
        return false;
    memcpy(buf, p, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    *v = strtod(buf, &end);
    return *end == 0 && (errno == 0 || errno == ERANGE);
}

/* ---- series hashes: a series repeated within or across files is dropped ---------- */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 1 when added, 0 when already there, -ENOMEM. */
static int set_add(tf_set *s, uint64_t h)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        uint64_t *n = calloc(cap, sizeof *n);
        if (!n)
            return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->h[i])
                continue;
            size_t j = s->h[i] & (cap - 1);
            while (n[j])
                j = (j + 1) & (cap - 1);
            n[j] = s->h[i];
        }
        free(s->h);
        s->h = n;
        s->cap = cap;
    }
    size_t i = h & (s->cap - 1);
    for (; s->h[i]; i = (i + 1) & (s->cap - 1))
        if (s->h[i] == h)
            return 0;
    s->h[i] = h;
    s->n++;
    return 1;
}

static void set_clear(tf_set *s)
{
    if (s->n)
        memset(s->h, 0, s->cap * sizeof *s->h);
    s->n = 0;
}

/* ---- the families the other collectors emitted ------------------------------------ */
static int cmp_taken(const void *a, const void *b, void *arg)
{
    const char *base = arg;
    const tf_name *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(base + x->off, base + y->off, n);
    return c ? c : (int)x->len - (int)y->len;
}


static int build_taken(struct nx_text *t, nx_ctx *x)
{
    t->ntaken = 0;
    const char *p = x->out.p ? x->out.p : "", *e = p + x->out.len;
    for (; p < e; p = sn_eol(p, e)) {
        if (e - p < 7 || memcmp(p, "# TYPE ", 7) != 0)
            continue;
        size_t n = metric_name(p + 7, e);
        if (grow((void **)&t->taken, &t->captaken, t->ntaken + 1, sizeof *t->taken) < 0)
            return -ENOMEM;
        t->taken[t->ntaken++] = (tf_name){(uint32_t)(p + 7 - x->out.p), (uint32_t)n};
    }
    if (t->ntaken > 1)
        qsort_r(t->taken, (size_t)t->ntaken, sizeof *t->taken, cmp_taken, x->out.p);
    t->taken_built = true;
    return 0;
}

static bool is_taken(struct nx_text *t, nx_ctx *x, const char *name)
{
    static const char *const own[] = {"node_textfile_mtime_seconds", "node_textfile_scrape_error",
                                      "node_scrape_collector_duration_seconds", "node_scrape_collector_success"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (!strcmp(name, own[i]))
            return true;
    size_t n = strlen(name);
    int lo = 0, hi = t->ntaken - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const tf_name *m = &t->taken[mid];
        size_t k = m->len < n ? m->len : n;
        int c = memcmp(x->out.p + m->off, name, k);
        if (!c)
            c = (int)m->len - (int)n;
        if (!c)
            return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return false;
}

/* ---- families of this scrape --------------------------------------------------- */
/* The family index, so that a file of 10,000 families is not read in
 * quadratic time. */
static size_t name_hash(const char *name, size_t n)
{
    return (size_t)mix64(hash_bytes(1469598103934665603ull, name, n));
}

static void idx_put(struct nx_text *t, int i)
{
    const char *name = t->fams[i].name;
    size_t k = name_hash(name, strlen(name)) & (t->idxcap - 1);
    while (t->idx[k])
        k = (k + 1) & (t->idxcap - 1);
    t->idx[k] = i + 1;
}

/* Keeps the first n families (and the index of them alone). */
static void fams_truncate(struct nx_text *t, int n)
{
    if (t->idx && t->nfams)
        memset(t->idx, 0, t->idxcap * sizeof *t->idx);
    t->nfams = n;
    for (int i = 0; i < n; i++)
        idx_put(t, i);
}

/* Makes the index at least twice the family array, the families in it. */
static int idx_grow(struct nx_text *t)
{
    size_t c = t->idxcap ? t->idxcap : 128;
    while (c < 2 * (size_t)t->capfams)
        c *= 2;
    if (c == t->idxcap)
        return 0;
    int *p = calloc(c, sizeof *p);
    if (!p)
        return -ENOMEM;
    free(t->idx);
    t->idx = p;
    t->idxcap = c;
    for (int i = 0; i < t->nfams; i++)
        idx_put(t, i);
    return 0;
}

static int fam_find(struct nx_text *t, const char *name, size_t n)
{
    if (!t->idxcap)
        return -1;
    size_t mask = t->idxcap - 1;
    for (size_t k = name_hash(name, n) & mask; t->idx[k]; k = (k + 1) & mask) {
        int i = t->idx[k] - 1;
        if (!strncmp(t->fams[i].name, name, n) && t->fams[i].name[n] == 0)
            return i;
    }
    return -1;
}

/* The family a sample name belongs to: itself, or name less _bucket/_sum/
 * _count for a histogram, _sum/_count for a summary, as the parser does. */
static int fam_of_sample(struct nx_text *t, const char *name, size_t n)
{
    int i = fam_find(t, name, n);
    if (i >= 0)
        return i;
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    for (int k = 0; k < 3; k++) {
        size_t sl = strlen(sfx[k]);
        if (n <= sl || memcmp(name + n - sl, sfx[k], sl) != 0)
            continue;
        int j = fam_find(t, name, n - sl);
        if (j >= 0 && (t->fams[j].type == NX_HISTOGRAM || (t->fams[j].type == NX_SUMMARY && k > 0)))
            return j;
    }
    return -1;
}

static int fam_new(struct nx_text *t, const char *name, size_t n)
{
    int old = t->capfams;
    if (grow((void **)&t->fams, &t->capfams, t->nfams + 1, sizeof *t->fams) < 0)
        return -ENOMEM;
    if (t->capfams > old)
        memset(t->fams + old, 0, (size_t)(t->capfams - old) * sizeof *t->fams);
    if (idx_grow(t) < 0)
        return -ENOMEM;
    tf_fam *f = &t->fams[t->nfams];
    char *help = f->help;   /* the help storage of an earlier scrape's family in this slot */
    size_t cap = f->helpcap;
    memset(f, 0, sizeof *f);
    f->help = help;
    f->helpcap = cap;
    if (help)
        help[0] = 0;
    memcpy(f->name, name, n);
    f->name[n] = 0;
    f->type = NX_UNTYPED;
    f->fid = -1;
    idx_put(t, t->nfams);
    return t->nfams++;
}

/* Sets (at 0) or appends (at the help's end) n bytes of help text. */
static int help_put(tf_fam *f, size_t at, const char *s, size_t n)
{
    if (at + n + 1 > f->helpcap) {
        size_t c = f->helpcap ? f->helpcap : 64;
        while (c < at + n + 1)
            c *= 2;
        char *p = realloc(f->help, c);
        if (!p)
            return -ENOMEM;
        f->help = p;
        f->helpcap = c;
    }
    memcpy(f->help + at, s, n);
    f->help[at + n] = 0;
    return 0;
}

static int help_set(tf_fam *f, const char *s, size_t n) { return help_put(f, 0, s, n); }

/* node_exporter's help for a family no file gave a HELP line:
 * "Metric read from <path>, <path>". */
static int help_auto(tf_fam *f, const char *path)
{
    size_t at = f->help ? strlen(f->help) : 0;
    const char *pre = at ? ", " : "Metric read from ";
    if (help_put(f, at, pre, strlen(pre)) < 0)
        return -ENOMEM;
    return help_put(f, at + strlen(pre), path, strlen(path));
}

/* ---- one file --------------------------------------------------------------------- */
typedef struct tf_parse {
    struct nx_text *t;
    nx_ctx *x;
    const char *path;
    int line;
    int nfams0;      /* families before this file */
    bool emit;       /* second pass: write the samples */
    char help[4096];
} tf_parse;

static int fail(tf_parse *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(tf_parse *P, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tf_problem(P->t, "textfile: %s:%d: %s (file left out)", P->path, P->line, msg);
    return -EINVAL;
}

/* Unescapes HELP text (\\ and \n only, as the parser allows) into P->help. */
static int help_text(tf_parse *P, const char *p, const char *e, size_t *len)
{
    size_t k = 0;
    for (; p < e; p++) {
        char c = *p;
        if (c == '\\') {
            if (++p >= e || (*p != '\\' && *p != 'n'))
                return fail(P, "invalid escape sequence in HELP text");
            c = *p == 'n' ? '\n' : '\\';
        }
        if (k + 1 >= sizeof P->help)
            return fail(P, "HELP text longer than %zu bytes", sizeof P->help - 1);
        P->help[k++] = c;
    }
    P->help[k] = 0;
    *len = k;
    return 0;
}

static const char *const type_names[] = {"gauge", "counter", "untyped", "histogram", "summary"}; /* NX_* */

/* The parser takes the rest of the line as the type, in any case. */
static int type_of(const char *p, size_t n)
{
    for (int i = 0; i < 5; i++)
        if (strlen(type_names[i]) == n && !strncasecmp(p, type_names[i], n))
            return i;
    return -1;
}

static const char *type_word(int t) { return t >= 0 && t < 5 ? type_names[t] : "?"; }

/* The family named in a HELP/TYPE line: this file's, or a new one; checks it
 * against the other collectors. */
static int comment_family(tf_parse *P, const char *name, size_t n)
{
    int i = fam_find(P->t, name, n);
    if (i >= 0)
        return i;
    if (P->emit)
        return fail(P, "internal: family %.*s lost between passes", (int)n, name);
    i = fam_new(P->t, name, n);
    if (i < 0)
        return fail(P, "out of memory");
    if (is_taken(P->t, P->x, P->t->fams[i].name))
        return fail(P, "metric %s is already exported by another collector", P->t->fams[i].name);
    return i;
}

static int line_comment(tf_parse *P, const char *p, const char *e)
{
    p = sn_skip_ws(p + 1, e);
    const char *kw = p;
    p = sn_skip_tok(p, e);
    bool is_help = tok_is(kw, (size_t)(p - kw), "HELP"), is_type = tok_is(kw, (size_t)(p - kw), "TYPE");
    if (!is_help && !is_type)
        return 0; /* a plain comment */
    p = sn_skip_ws(p, e);
    size_t n = metric_name(p, e);
    if (n == 0 || (p + n < e && *(p + n) != ' ' && *(p + n) != '\t'))
        return fail(P, "invalid metric name in %s line", is_help ? "HELP" : "TYPE");
    if (p + n == e)
        return 0; /* "# TYPE name" and nothing more: node_exporter's parser ignores it */
    if (n >= TF_NAME_MAX)
        return fail(P, "metric name longer than %d bytes", TF_NAME_MAX - 1);
    int i = comment_family(P, p, n);
    if (i < 0)
        return i;
    tf_fam *f = &P->t->fams[i];
    p = sn_skip_ws(p + n, e);
    if (is_help) {
        if (f->seen_help && !P->emit)
            return fail(P, "second HELP line for metric name %s", f->name);
        size_t hl = 0;
        if (help_text(P, p, e, &hl) < 0)
            return -EINVAL;
        bool earlier = i < P->nfams0;
        if (!P->emit && earlier && f->has_help && strcmp(f->help, P->help) != 0)
            return fail(P, "metric %s has HELP \"%s\" here but \"%s\" in an earlier file", f->name, P->help, f->help);
        f->seen_help = true;
        if (P->emit && !f->has_help) {
            if (help_set(f, P->help, hl) < 0)
                return fail(P, "out of memory");
            f->has_help = true;
        }
        return 0;
    }
    const char *tp = p;
    p = e;
    int type = type_of(tp, (size_t)(p - tp));
    if (type < 0)
        return fail(P, "unknown metric type \"%.*s\"", (int)(p - tp), tp);
    if (P->emit)
        return 0;
    if (f->seen_type)
        return fail(P, "second TYPE line for metric name %s", f->name);
    if (f->seen_sample)
        return fail(P, "TYPE line for %s after its samples", f->name);
    if (i < P->nfams0 && f->type != type)
        return fail(P, "metric %s has TYPE %.*s here but %s in an earlier file", f->name, (int)(p - tp), tp,
                    type_word(f->type));
    f->type = type;
    f->seen_type = true;
    return 0;
}

/* Parses {name="value",...} at *pp (validating names, escapes, duplicates,
 * histogram le / summary quantile); on the second pass copies it to out. */
static int labels(tf_parse *P, const char **pp, const char *e, const tf_fam *f, nx_outbuf *out, uint64_t *hash)
{
    const char *p = *pp;
    const char *names[NX_MAX_LABELS * 4];
    size_t lens[NX_MAX_LABELS * 4];
    int nl = 0;
    /* as node_exporter's parser: a histogram's le and a summary's quantile
     * must be numbers where they appear (that they appear is not checked) */
    bool need_le = f && f->type == NX_HISTOGRAM;
    bool need_q = f && f->type == NX_SUMMARY;
    p = sn_skip_ws(p + 1, e); /* after '{' */
    bool first = true;
    while (p < e && *p != '}') {
        size_t n = label_name(p, e);
        if (n == 0)
            return fail(P, "invalid label name");
        if (n == 8 && !memcmp(p, "__name__", 8))
            return fail(P, "label name \"__name__\" is reserved");
        for (int i = 0; i < nl; i++)
            if (lens[i] == n && !memcmp(names[i], p, n))
                return fail(P, "duplicate label name \"%.*s\"", (int)n, p);
        if (nl == (int)(sizeof names / sizeof names[0]))
            return fail(P, "more than %d labels", nl);
        names[nl] = p;
        lens[nl++] = n;
        const char *ln = p;
        p = sn_skip_ws(p + n, e);
        if (p >= e || *p != '=')
            return fail(P, "expected '=' after label name \"%.*s\"", (int)n, ln);
        p = sn_skip_ws(p + 1, e);
        if (p >= e || *p != '"')
            return fail(P, "expected '\"' to start the value of label \"%.*s\"", (int)n, ln);
        const char *vs = ++p;
        for (; p < e && *p != '"'; p++) {
            if (*p == '\\') {
                if (p + 1 >= e || (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
                    return fail(P, "invalid escape sequence in the value of label \"%.*s\"", (int)n, ln);
                p++;
            }
        }
        if (p >= e)
            return fail(P, "unterminated value of label \"%.*s\"", (int)n, ln);
        const char *ve = p++;
        /* node_exporter's parser refuses it too ("invalid label value"); let
         * through, it would fail Prometheus's scrape of everything */
        if (!nxs_utf8_valid(vs, (size_t)(ve - vs)))
            return fail(P, "the value of label \"%.*s\" is not valid UTF-8", (int)n, ln);
        /* order-free: the same pairs in another order are the same series */
        *hash += mix64(hash_bytes(hash_bytes(1469598103934665603ull, ln, n) * 31, vs, (size_t)(ve - vs)));
        double d;
        if ((need_le && tok_is(ln, n, "le")) || (need_q && tok_is(ln, n, "quantile"))) {
            if (!parse_value(vs, (size_t)(ve - vs), &d))
                return fail(P, "expected a number as the value of label \"%.*s\"", (int)n, ln);
        }
        if (out) {
            nx_out_add(out, first ? "{" : ",", 1);
            nx_out_add(out, ln, n);
            nx_out_add(out, "=\"", 2);
            nx_out_add(out, vs, (size_t)(ve - vs));
            nx_out_add(out, "\"", 1);
        }
        first = false;
        p = sn_skip_ws(p, e);
        if (p < e && *p == ',')
            p = sn_skip_ws(p + 1, e);
        else if (p < e && *p != '}')
            return fail(P, "expected ',' or '}' after the value of label \"%.*s\"", (int)n, ln);
    }
    if (p >= e)
        return fail(P, "unterminated label set");
    if (out && !first)
        nx_out_add(out, "}", 1);
    *pp = p + 1;
    return 0;
}

static int line_sample(tf_parse *P, const char *p, const char *e)
{
    size_t n = metric_name(p, e);
    if (n == 0)
        return fail(P, "invalid metric name");
    if (n >= TF_NAME_MAX)
        return fail(P, "metric name longer than %d bytes", TF_NAME_MAX - 1);
    const char *name = p;
    int i = fam_of_sample(P->t, name, n);
    if (i < 0) {
        if (P->emit)
            return fail(P, "internal: family %.*s lost between passes", (int)n, name);
        i = fam_new(P->t, name, n);
        if (i < 0)
            return fail(P, "out of memory");
        if (is_taken(P->t, P->x, P->t->fams[i].name))
            return fail(P, "metric %s is already exported by another collector", P->t->fams[i].name);
    }
    tf_fam *f = &P->t->fams[i];
    f->seen_sample = true;
    nx_outbuf *out = NULL;
    size_t mark = 0;
    if (P->emit) {
        if (f->fid < 0)
            f->fid = nx_family_dyn(P->x, f->name, f->type, NULL);
        if (f->fid < 0)
            return fail(P, "internal: no family slot for %s", f->name);
        out = &P->x->fams[f->fid].body;
        mark = out->len;
        nx_out_add(out, name, n);
    }
    p = sn_skip_ws(p + n, e);
    uint64_t lh = 0;
    if (p < e && *p == '{' && labels(P, &p, e, f, out, &lh) < 0)
        return -EINVAL;
    const char *vs = sn_skip_ws(p, e); /* as the parser: "m-1" is m at -1 */
    p = sn_skip_tok(vs, e);
    double v;
    if (vs == p)
        return fail(P, "expected a value after %.*s", (int)n, name);
    if (!parse_value(vs, (size_t)(p - vs), &v))
        return fail(P, "expected a number as the value, got \"%.*s\"", (int)(p - vs), vs);
    if (p < e && sn_skip_ws(p, e) == e)
        return fail(P, "blank after the value (the parser then expects a timestamp)");
    if (p < e)
        return fail(P, "client-side timestamps are not supported (node_exporter skips the whole file)");
    /* A series seen before (in this file or an earlier one, labels in any
     * order) is dropped, the first kept, as node_exporter's registry does;
     * that is logged but leaves the file in. */
    uint64_t h = mix64(hash_bytes(1469598103934665603ull, name, n) ^ lh);
    h = h ? h : 1;
    int added = P->emit ? set_add(&P->t->series, h) : 1;
    if (added < 0)
        P->x->out.oom = true;
    if (added == 0) {
        tf_note(P->t, "textfile: %s:%d: sample %.*s repeats the name and labels of an earlier sample: dropped",
                P->path, P->line, (int)n, name);
        out->len = mark;
        return 0;
    }
    if (out) {
        nx_out_add(out, " ", 1);
        nx_out_value(out, v);
        nx_out_add(out, "\n", 1);
        P->x->fams[f->fid].nsamples++;
    }
    return 0;
}

static int parse(tf_parse *P, const char *buf, size_t len)
{
    const char *p = buf, *e = buf + len;
    P->line = 0;
    for (int i = 0; i < P->t->nfams; i++)
        P->t->fams[i].seen_help = P->t->fams[i].seen_type = P->t->fams[i].seen_sample = false;
    if (len > 0 && buf[len - 1] != '\n') {
        for (const char *q = buf; q < e; q = sn_eol(q, e))
            P->line++;
        return fail(P, "unexpected end of input: the last line has no newline");
    }
    while (p < e) {
        const char *next = sn_eol(p, e);
        const char *le = next > p && next[-1] == '\n' ? next - 1 : next;
        P->line++;
        size_t ll = le > p ? (size_t)(le - p) : 0;
        if (ll && memchr(p, 0, ll))
            return fail(P, "NUL byte in the line");
        const char *s = sn_skip_ws(p, le);
        int rc = 0;
        if (s < le && *s == '#')
            rc = line_comment(P, s, le);
        else if (s < le)
            rc = line_sample(P, s, le);
        if (rc < 0)
            return rc;
        p = next;
    }
    return 0;
}

/* Reads path into t->file; its mtime; 0 or -errno (reported). */
static int read_file(struct nx_text *t, const char *path, double *mtime, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        tf_problem(t, "textfile: %s: cannot open: %s (left out)", path, strerror(e));
        return -e;
    }
    struct stat st;
    int serr = fstat(fd, &st) < 0 ? errno : 0;
    if (serr || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > TF_MAX_FILE) {
        tf_problem(t, "textfile: %s: %s (left out)", path,
                   serr ? strerror(serr) : !S_ISREG(st.st_mode) ? "not a regular file" : "larger than 16 MiB");
        close(fd);
        return serr ? -serr : -EINVAL;
    }
    *mtime = (double)st.st_mtim.tv_sec;
    size_t n = 0;
    for (;;) {
        if (sn_buf_reserve(&t->file, n + 65536) < 0) {
            close(fd);
            tf_problem(t, "textfile: %s: out of memory", path);
            return -ENOMEM;
        }
        ssize_t r = read(fd, t->file.p + n, t->file.cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            tf_problem(t, "textfile: %s: cannot read: %s", path, strerror(e));
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > TF_MAX_FILE) {
            close(fd);
            tf_problem(t, "textfile: %s: larger than 16 MiB", path);
            return -EFBIG;
        }
    }
    close(fd);
    t->file.p[n] = 0;
    *len = n;
    return 0;
}

/* Validates then merges one file; false when it was left out. */
static bool one_file(struct nx_text *t, nx_ctx *x, const char *path)
{
    double mtime = 0;
    size_t len = 0;
    if (read_file(t, path, &mtime, &len) < 0)
        return false;
    if (!t->taken_built && build_taken(t, x) < 0) {
        tf_problem(t, "textfile: out of memory");
        return false;
    }
    tf_parse P = {.t = t, .x = x, .path = path, .nfams0 = t->nfams};
    /* types and help of earlier families may not change on a failed file */
    if (parse(&P, t->file.p, len) < 0) {
        fams_truncate(t, P.nfams0);
        return false;
    }
    /* room for its new families, node_textfile_mtime_seconds and _scrape_error */
    int room = nx_family_reserve(x, t->nfams - P.nfams0 + 2);
    if (room < 0) {
        if (room == -E2BIG)
            tf_problem(t, "textfile: %s: left out: the directory holds more than %d families", path,
                       NX_MAX_FAMILIES - 2);
        else
            tf_problem(t, "textfile: %s: left out: out of memory", path);
        fams_truncate(t, P.nfams0);
        return false;
    }
    P.emit = true;
    parse(&P, t->file.p, len);
    for (int i = 0; i < t->nfams; i++) {
        tf_fam *f = &t->fams[i];
        if (!f->has_help && (f->seen_sample || f->seen_type || f->seen_help) && help_auto(f, path) < 0)
            x->out.oom = true;
    }
    int fm = nx_family(x, "node_textfile_mtime_seconds", NX_GAUGE, "Unixtime mtime of textfiles successfully read.");
    nx_sample(x, fm, mtime, 1, "file", path);
    return true;
}

/* The families' help, set on the nx families once all files are read
 * (help_auto may move it while files are read). */
static void finish_help(struct nx_text *t, nx_ctx *x)
{
    for (int i = 0; i < t->nfams; i++) {
        tf_fam *f = &t->fams[i];
        if (f->fid >= 0)
            x->fams[f->fid].help = f->help;
    }
}

/* ---- the directory ---------------------------------------------------------------- */
static int add_name(struct nx_text *t, const char *name)
{
    size_t n = strlen(name) + 1;
    if (t->nameslen + n > t->namescap) {
        size_t c = t->namescap ? t->namescap : 1024;
        while (c < t->nameslen + n)
            c *= 2;
        char *p = realloc(t->names, c);
        if (!p)
            return -ENOMEM;
        t->names = p;
        t->namescap = c;
    }
    if (grow((void **)&t->order, &t->caporder, t->norder + 1, sizeof *t->order) < 0)
        return -ENOMEM;
    memcpy(t->names + t->nameslen, name, n);
    t->order[t->norder++] = (uint32_t)t->nameslen;
    t->nameslen += n;
    return 0;
}

static int cmp_name(const void *a, const void *b, void *arg)
{
    const char *base = arg;
    return strcmp(base + *(const uint32_t *)a, base + *(const uint32_t *)b);
}

/* The *.prom names of dir, sorted; 0 or -errno (reported). */
static int list_dir(struct nx_text *t, const char *dir)
{
    t->nameslen = 0;
    t->norder = 0;
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        tf_problem(t, "textfile: cannot read the directory %s: %s", dir, strerror(e));
        return -e;
    }
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 5, ".prom") != 0)
            continue;
        if ((rc = add_name(t, de->d_name)) < 0)
            break;
    }
    closedir(d);
    if (rc < 0) {
        tf_problem(t, "textfile: %s: out of memory", dir);
        return rc;
    }
    if (t->norder > 1)
        qsort_r(t->order, (size_t)t->norder, sizeof *t->order, cmp_name, t->names);
    return 0;
}

static void scan_dir(struct nx_text *t, nx_ctx *x, const char *dir)
{
    if (list_dir(t, dir) < 0)
        return;
    for (int i = 0; i < t->norder; i++) {
        char path[CORE_PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/%s", dir, t->names + t->order[i]);
        one_file(t, x, path);
    }
}

/* node_exporter 1.5 takes the directory as a glob (several directories). */
static void scan(struct nx_text *t, nx_ctx *x)
{
    const char *dir = x->textfile_dir;
    if (!strpbrk(dir, "*?[")) {
        scan_dir(t, x, dir);
        return;
    }
    glob_t g;
    if (glob(dir, GLOB_ONLYDIR, NULL, &g) != 0) {
        scan_dir(t, x, dir); /* no match: read it as a plain directory, as node_exporter does */
        return;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        scan_dir(t, x, g.gl_pathv[i]);
    globfree(&g);
}

static void log_changes(struct nx_text *t)
{
    if (t->err_hash == t->last_err_hash)
        return;
    t->last_err_hash = t->err_hash;
    if (t->nmsg == 0) {
        log_info("sense: textfile: every file reads well again");
        return;
    }
    int max = (int)(sizeof t->errs / sizeof t->errs[0]);
    int shown = t->nmsg < max ? t->nmsg : max;
    for (int i = 0; i < shown; i++)
        log_warn("sense: %s", t->errs[i]);
    if (t->nmsg > shown)
        log_warn("sense: textfile: %d more problems", t->nmsg - shown);
}

NX_COLLECTOR(textfile)
{
    if (!x->text) {
        x->text = calloc(1, sizeof *x->text);
        if (!x->text)
            return -ENOMEM;
    }
    struct nx_text *t = x->text;
    fams_truncate(t, 0);
    t->nerr = 0;
    t->nmsg = 0;
    t->err_hash = 0;
    t->taken_built = false;
    set_clear(&t->series);
    if (x->textfile_dir[0])
        scan(t, x);
    finish_help(t, x);
    nx_gauge1(x, "node_textfile_scrape_error", "1 if there was an error opening or reading a file, 0 otherwise",
              t->nerr > 0);
    log_changes(t);
    return 0;
}

void nx_textfile_free(nx_ctx *x)
{
    struct nx_text *t = x->text;
    if (!t)
        return;
    for (int i = 0; i < t->capfams; i++)
        free(t->fams[i].help);
    free(t->fams);
    free(t->idx);
    free(t->file.p);
    free(t->names);
    free(t->order);
    free(t->taken);
    free(t->series.h);
    free(t);
    x->text = NULL;
}
