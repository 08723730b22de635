/* procfs.c: small helpers every collector uses: kept-open files re-read with
 * pread at offset 0 into one reusable buffer, number scanners, canonical
 * label text, and cursor tables that map keys (devices, interfaces, fields)
 * to cached state with one string compare per item in the steady state;
 * and the table-driven counter reader (sn_ctr_*) of disk and net. */
#include "sense/sense_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- files -------------------------------------------------------------------- */

void sn_file_init(sn_file *f)
{
    f->fd = -1;
    f->path = NULL;
}

int sn_file_set(sn_file *f, const char *fmt, ...)
{
    sn_file_close(f);
    free(f->path);
    f->path = NULL;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&f->path, fmt, ap);
    va_end(ap);
    if (r < 0) {
        f->path = NULL;
        return -ENOMEM;
    }
    return 0;
}

void sn_file_close(sn_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}

int sn_buf_reserve(sn_buf *b, size_t cap)
{
    if (b->cap >= cap)
        return 0;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

static ssize_t read_fd(int fd, sn_buf *b, bool positional)
{
    if (b->cap < 4096 && sn_buf_reserve(b, 16384) < 0)
        return -ENOMEM;
    size_t got = 0;
    for (;;) {
        if (got + 1 >= b->cap && sn_buf_reserve(b, b->cap * 2) < 0)
            return -ENOMEM;
        ssize_t r = positional ? pread(fd, b->p + got, b->cap - 1 - got, (off_t)got)
                               : read(fd, b->p + got, b->cap - 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        /* procfs/sysfs fill the whole request unless the file ended: a short
         * read is the end, which saves the extra read() that returns 0 */
        if (positional && got + 1 < b->cap)
            break;
    }
    b->p[got] = 0;
    return (ssize_t)got;
}

ssize_t sn_file_read(sn_file *f, sn_buf *b)
{
    if (!f->path)
        return -EINVAL;
    if (f->fd < 0) {
        f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
        if (f->fd < 0)
            return -errno;
    }
    ssize_t r = read_fd(f->fd, b, true);
    if (r < 0)
        sn_file_close(f);
    return r;
}

ssize_t sn_path_read(const char *path, sn_buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t r = read_fd(fd, b, false);
    close(fd);
    return r;
}

/* ---- scanners -------------------------------------------------------------------- */

int64_t sn_i64(const char **pp, const char *e, bool *ok)
{
    const char *p = sn_skip_ws(*pp, e);
    bool neg = false;
    if (p < e && *p == '-') {
        neg = true;
        p++;
    }
    *pp = p;
    uint64_t v = sn_u64(pp, e, ok);
    return neg ? -(int64_t)v : (int64_t)v;
}

double sn_dbl(const char **pp, const char *e, bool *ok)
{
    const char *p = sn_skip_ws(*pp, e);
    bool neg = false;
    if (p < e && *p == '-') {
        neg = true;
        p++;
    }
    const char *s = p;
    double v = 0;
    while (p < e && *p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    if (p < e && *p == '.') {
        p++;
        double scale = 0.1;
        while (p < e && *p >= '0' && *p <= '9') {
            v += (*p++ - '0') * scale;
            scale *= 0.1;
        }
    }
    if (ok)
        *ok = p > s;
    *pp = p;
    return neg ? -v : v;
}

size_t sn_tok(const char **pp, const char *e, char *out, size_t n)
{
    const char *p = sn_skip_ws(*pp, e);
    const char *s = p;
    p = sn_skip_tok(p, e);
    size_t len = (size_t)(p - s);
    if (len >= n)
        len = n - 1;
    memcpy(out, s, len);
    out[len] = 0;
    *pp = p;
    return len;
}

/* ---- labels ----------------------------------------------------------------------- */

static size_t put_escaped(char *out, size_t pos, size_t n, const char *v)
{
    for (; *v; v++) {
        const char *rep = NULL;
        char one[2] = {*v, 0};
        if (*v == '\\')
            rep = "\\\\";
        else if (*v == '"')
            rep = "\\\"";
        else if (*v == '\n')
            rep = "\\n";
        else
            rep = one;
        for (; *rep; rep++) {
            if (pos + 1 < n)
                out[pos] = *rep;
            pos++;
        }
    }
    return pos;
}

static size_t put_str(char *out, size_t pos, size_t n, const char *v)
{
    for (; *v; v++) {
        if (pos + 1 < n)
            out[pos] = *v;
        pos++;
    }
    return pos;
}

int sn_labels_v(char *out, size_t n, int npairs, const char *const *kv)
{
    int order[8];
    if (npairs > 8)
        npairs = 8;
    for (int i = 0; i < npairs; i++) {
        int j = i;
        while (j > 0 && strcmp(kv[2 * order[j - 1]], kv[2 * i]) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t pos = 0;
    for (int i = 0; i < npairs; i++) {
        if (i)
            pos = put_str(out, pos, n, ",");
        pos = put_str(out, pos, n, kv[2 * order[i]]);
        pos = put_str(out, pos, n, "=\"");
        pos = put_escaped(out, pos, n, kv[2 * order[i] + 1]);
        pos = put_str(out, pos, n, "\"");
    }
    if (n)
        out[pos < n ? pos : n - 1] = 0;
    return pos < n ? 0 : -ENAMETOOLONG;
}

int sn_labels(char *out, size_t n, int npairs, ...)
{
    const char *kv[16];
    if (npairs > 8)
        npairs = 8;
    va_list ap;
    va_start(ap, npairs);
    for (int i = 0; i < 2 * npairs; i++)
        kv[i] = va_arg(ap, const char *);
    va_end(ap);
    return sn_labels_v(out, n, npairs, kv);
}

/* ---- cursor tables ------------------------------------------------------------------ */

void sn_tab_init(sn_tab *t, size_t esz, int max)
{
    t->ents = NULL;
    t->esz = esz;
    t->n = t->cap = 0;
    t->max = max;
}

void sn_tab_free(sn_tab *t)
{
    for (int i = 0; i < t->n; i++)
        free(((sn_key *)sn_tab_at(t, i))->key);
    free(t->ents);
    t->ents = NULL;
    t->n = t->cap = 0;
}

static bool key_eq(const sn_key *k, const char *key, size_t klen)
{
    return k->klen == klen && memcmp(k->key, key, klen) == 0;
}

int sn_tab_find(sn_tab *t, int *cursor, const char *key, size_t klen, bool *created)
{
    *created = false;
    int c = *cursor;
    if (c >= 0 && c < t->n && key_eq(sn_tab_at(t, c), key, klen)) {
        *cursor = c + 1;
        return c;
    }
    for (int i = 0; i < t->n; i++)
        if (key_eq(sn_tab_at(t, i), key, klen)) {
            *cursor = i + 1;
            return i;
        }
    if (t->n >= t->max)
        return -1;
    if (t->n == t->cap) {
        int ncap = t->cap ? t->cap * 2 : 16;
        char *p = realloc(t->ents, (size_t)ncap * t->esz);
        if (!p)
            return -1;
        t->ents = p;
        t->cap = ncap;
    }
    char *k = malloc(klen + 1);
    if (!k)
        return -1;
    memcpy(k, key, klen);
    k[klen] = 0;
    sn_key *e = sn_tab_at(t, t->n);
    memset(e, 0, t->esz);
    e->key = k;
    e->klen = (uint32_t)klen;
    e->gen = UINT32_MAX;
    *created = true;
    *cursor = t->n + 1;
    return t->n++;
}

/* ---- names ----------------------------------------------------------------------- */

void sn_snake(const char *in, size_t len, char *out, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 2 < n; i++) {
        char ch = in[i];
        bool up = ch >= 'A' && ch <= 'Z';
        if (up && i > 0 && o > 0 && out[o - 1] != '_') {
            char prev = in[i - 1];
            bool prev_low = (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9');
            bool next_low = i + 1 < len && in[i + 1] >= 'a' && in[i + 1] <= 'z';
            bool prev_up = prev >= 'A' && prev <= 'Z';
            if (prev_low || (prev_up && next_low))
                out[o++] = '_';
        }
        if (up)
            ch = (char)(ch - 'A' + 'a');
        else if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
            ch = '_';
        out[o++] = ch;
    }
    out[o] = 0;
}

int sn_file_table_open(sense_t *s, sn_col *c, sn_file *f, sn_tab *t, size_t esz, int max,
                       const char *rel, const char *note)
{
    sn_file_init(f);
    sn_tab_init(t, esz, max);
    if (sn_file_set(f, "%s/%s", s->proc, rel) < 0)
        return -ENOMEM;
    sn_available(c, note);
    return 0;
}

void sn_file_table_close(sn_col *c, sn_file *f, sn_tab *t)
{
    sn_tab_free(t);
    sn_file_close(f);
    free(f->path);
    free(c->priv);
    c->priv = NULL;
}

/* ---- the table-driven counter reader --------------------------------------------- */

void sn_ctr_row_init(sn_ctr_row *r)
{
    r->active = false;
    memset(r->prev, 0, sizeof r->prev);
    for (int i = 0; i < SN_CTR_FIELDS; i++)
        r->ids[i] = -1;
}

static double ctr_value(const sn_ctr_field *f, const uint64_t *cur, const uint64_t *d, bool valid,
                        uint32_t back, double dt)
{
    uint32_t uses = 1u << f->col | (f->kind == SN_CTR_PER ? 1u << f->col2 : 0);
    if (f->kind != SN_CTR_GAUGE && (!valid || (back & uses)))
        return NAN;
    switch (f->kind) {
    case SN_CTR_GAUGE:
        return (double)cur[f->col] * f->scale;
    case SN_CTR_RATE: {
        double v = (double)d[f->col] * f->scale / dt;
        return f->max > 0 && v > f->max ? f->max : v;
    }
    case SN_CTR_PER:
        return d[f->col2] ? (double)d[f->col] / (double)d[f->col2] : 0;
    }
    return NAN;
}

void sn_ctr_put_row(sense_t *s, sn_col *c, const sn_ctr_spec *sp, sn_ctr_row *r, const char *key,
                    bool valid, const uint64_t *cur)
{
    uint64_t d[SN_CTR_COLS];
    uint32_t counters = 0; /* columns read as counters */
    for (int i = 0; i < sp->nfields; i++)
        if (sp->fields[i].kind != SN_CTR_GAUGE)
            counters |= 1u << sp->fields[i].col |
                        (sp->fields[i].kind == SN_CTR_PER ? 1u << sp->fields[i].col2 : 0);
    uint32_t back = 0; /* counters that went backwards */
    for (int i = 0; i < sp->ncols; i++) {
        if ((counters >> i & 1) && cur[i] < r->prev[i])
            back |= 1u << i;
        d[i] = cur[i] - r->prev[i];
        if ((sp->active_cols >> i & 1) && cur[i])
            r->active = true;
    }
    if (back && sp->row_reset)
        back = UINT32_MAX;
    memcpy(r->prev, cur, (size_t)sp->ncols * sizeof *cur);
    if (!r->active)
        return;
    valid = valid && c->dt > 0;
    for (int i = 0; i < sp->nfields; i++) {
        const sn_ctr_field *f = &sp->fields[i];
        double v = ctr_value(f, cur, d, valid, back, c->dt);
        if (isnan(v))
            continue;
        if (r->ids[i] < 0) {
            char lab[300];
            sn_labels(lab, sizeof lab, 1, sp->label, key);
            r->ids[i] = sn_series(s, f->name, lab, f->unit, f->help,
                                  f->kind == SN_CTR_GAUGE ? MEM_GAUGE : MEM_RATE);
        }
        sn_put(s, c, r->ids[i], v);
    }
}
