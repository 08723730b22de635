/* table.c: aligned text tables for human output. Rows are collected first
 * (copied), then printed with each column as wide as its widest cell,
 * columns separated by two spaces, the last column unpadded, so output has
 * no trailing blanks. Widths count UTF-8 code points. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

void cli_table_init(cli_table *t, int ncols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols > CLI_TABLE_MAXCOLS ? CLI_TABLE_MAXCOLS : ncols;
    cli_table_row(t, headers);
}

void cli_table_row(cli_table *t, const char *const *cells)
{
    size_t need = (t->nrows + 1) * (size_t)t->ncols;
    if (t->oom)
        return;
    if (need > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : (size_t)t->ncols * 16;
        while (cap < need)
            cap *= 2;
        char **c = realloc(t->cells, cap * sizeof *c);
        if (!c) {
            t->oom = true;
            return;
        }
        t->cells = c;
        t->cap = cap;
    }
    char **row = t->cells + t->nrows * (size_t)t->ncols;
    for (int i = 0; i < t->ncols; i++)
        row[i] = strdup(cells[i] ? cells[i] : "");
    t->nrows++;
}

static void pad(FILE *f, size_t n)
{
    while (n-- > 0)
        fputc(' ', f);
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t w[CLI_TABLE_MAXCOLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t cw = s ? cli_text_width(s) : 0;
            if (cw > w[c])
                w[c] = cw;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * (size_t)t->ncols + (size_t)c];
            size_t cw = s ? cli_text_width(s) : 0;
            bool last = c == t->ncols - 1;
            if (c > 0)
                fputs("  ", f);
            if (t->right[c])
                pad(f, w[c] - cw);
            fputs(s ? s : "?", f);
            if (!t->right[c] && !last)
                pad(f, w[c] - cw);
        }
        fputc('\n', f);
    }
}

void cli_table_free(cli_table *t)
{
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}
