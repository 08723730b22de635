/* know_chunk.c: cuts a document's text into chunks of about
 * KNOW_CHUNK_WORDS words, paragraph-aware: a chunk ends at a paragraph end
 * when one falls in a reasonable range, else at a sentence end, else at the
 * word limit; consecutive chunks overlap by about KNOW_OVERLAP_WORDS words,
 * except where the next chunk starts at a heading, and a heading is never
 * left at the end of a chunk: it goes with the text it heads. Each chunk is a
 * byte range of the text (its provenance offset). */
#include "memory/know_priv.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct word {
    size_t off, end;
    unsigned para_start : 1; /* first word of a paragraph */
    unsigned heading : 1;    /* part of a heading paragraph */
    unsigned sentence_end : 1;
} word;

typedef struct words {
    word *w;
    size_t n, cap;
} words;

static int push(words *ws, word w)
{
    if (ws->n == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 256;
        word *p = realloc(ws->w, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        ws->w = p, ws->cap = cap;
    }
    ws->w[ws->n++] = w;
    return 0;
}

/* A heading: a markdown "#" line, a setext underline's text, or a short
 * single line without closing punctuation (man sections, "Symptoms:"). */
static bool is_heading(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    if (p >= end)
        return false;
    if (*p == '#')
        return true;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl) { /* several lines: only a setext heading ("Title\n=====") */
        const char *q = nl + 1;
        while (q < end && (*q == '=' || *q == '-'))
            q++;
        return q > nl + 2 && (q == end || *q == '\n' || *q == ' ');
    }
    int nw = 0;
    bool in = false;
    const char *last = end;
    while (last > p && isspace((unsigned char)last[-1]))
        last--;
    for (const char *q = p; q < last; q++) {
        bool sp = isspace((unsigned char)*q);
        if (!sp && !in)
            nw++;
        in = !sp;
    }
    if (!nw || nw > 10)
        return false;
    char c = last[-1];
    return c != '.' && c != ',' && c != ';' && c != '!' && c != '?';
}

static int split(const char *text, words *ws)
{
    size_t i = 0, n = strlen(text);
    while (i < n) {
        /* one paragraph: up to a blank line */
        size_t s = i;
        while (s < n && isspace((unsigned char)text[s]))
            s++;
        if (s >= n)
            break;
        size_t e = s;
        for (;;) {
            const char *nl = memchr(text + e, '\n', n - e);
            if (!nl) {
                e = n;
                break;
            }
            size_t q = (size_t)(nl - text) + 1;
            while (q < n && (text[q] == ' ' || text[q] == '\t' || text[q] == '\r'))
                q++;
            if (q >= n || text[q] == '\n') {
                e = (size_t)(nl - text);
                break;
            }
            e = q;
        }
        bool head = is_heading(text + s, text + e);
        bool first = true;
        for (size_t p = s; p < e;) {
            while (p < e && isspace((unsigned char)text[p]))
                p++;
            if (p >= e)
                break;
            size_t q = p;
            while (q < e && !isspace((unsigned char)text[q]))
                q++;
            char last = text[q - 1];
            word w = {.off = p, .end = q, .para_start = first, .heading = head,
                      .sentence_end = last == '.' || last == '!' || last == '?' || last == ':'};
            if (push(ws, w))
                return -ENOMEM;
            first = false;
            p = q;
        }
        i = e;
    }
    return 0;
}

/* Where the chunk starting at word s ends (exclusive). */
static size_t chunk_end(const words *ws, size_t s)
{
    size_t n = ws->n, max = s + KNOW_CHUNK_WORDS;
    if (n <= max + KNOW_OVERLAP_WORDS) /* the rest fits (a small tail is not left alone) */
        return n;
    const word *w = ws->w;
    /* the last paragraph start in [s + CHUNK/2, max + CHUNK/5] not right after a heading */
    size_t lo = s + KNOW_CHUNK_WORDS / 2, hi = max + KNOW_CHUNK_WORDS / 5;
    if (hi > n - 1)
        hi = n - 1;
    for (size_t e = hi; e > lo; e--) {
        if (!w[e].para_start)
            continue;
        size_t b = e; /* move back over headings that would end the chunk */
        while (b > lo && w[b - 1].heading) {
            b--;
            while (b > lo && !w[b].para_start)
                b--;
        }
        if (b > lo && !w[b - 1].heading)
            return b;
    }
    for (size_t e = max; e > s + KNOW_CHUNK_WORDS * 3 / 4; e--)
        if (w[e - 1].sentence_end)
            return e;
    return max;
}

int know_chunk(const char *text, know_span **out, size_t *n)
{
    *out = NULL, *n = 0;
    words ws = {0};
    if (split(text, &ws)) {
        free(ws.w);
        return -ENOMEM;
    }
    know_span *sp = NULL;
    size_t ns = 0, cap = 0;
    for (size_t s = 0; s < ws.n;) {
        size_t e = chunk_end(&ws, s);
        if (ns == cap) {
            cap = cap ? cap * 2 : 8;
            know_span *p = realloc(sp, cap * sizeof *p);
            if (!p) {
                free(sp);
                free(ws.w);
                return -ENOMEM;
            }
            sp = p;
        }
        sp[ns++] = (know_span){ws.w[s].off, ws.w[e - 1].end - ws.w[s].off};
        if (e >= ws.n)
            break;
        size_t next = e;
        if (!ws.w[e].heading) { /* overlap, starting at a sentence when one is near */
            next = e > s + KNOW_OVERLAP_WORDS ? e - KNOW_OVERLAP_WORDS : s + 1;
            for (size_t b = next; b < e && b < next + 10; b++)
                if (ws.w[b - 1].sentence_end || ws.w[b].para_start) {
                    next = b;
                    break;
                }
        }
        s = next;
    }
    free(ws.w);
    *out = sp, *n = ns;
    return 0;
}
