/* csv.c: the `timestamp,value` CSV reader behind `ippoc detect` and bench/nab.
 *
 * Streaming: one line at a time from a FILE, never the whole file in memory.
 * Each line is split into exactly two fields (a field may be wrapped in double
 * quotes, "" inside them being one quote), blanks around a field are dropped,
 * CRLF and a UTF-8 byte-order mark are accepted, empty lines are skipped. The
 * first non-empty line is taken as a header, and skipped, when neither of its
 * fields parses (timestamp,value). Anything else that does not parse is a bad
 * row: the reader says why in "NAME:LINE: reason" and can go on with the next
 * line.
 *
 * Timestamps: "YYYY-MM-DD HH:MM:SS[.fff]" (UTC), "YYYY-MM-DDTHH:MM:SS[.fff][Z]"
 * (1 to 9 fraction digits, cut to milliseconds) or seconds since the epoch,
 * integer or decimal, from 0 to the end of year 9999. Values: decimal numbers
 * as strtod reads them in the C locale, finite only.
 */
#include "detect/detect.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Longest line accepted, in bytes without its line ending. */
#define CSV_LINE_MAX 4096
/* Largest epoch seconds accepted: 9999-12-31 23:59:59 UTC. */
#define CSV_EPOCH_MAX 253402300799.0

struct detect_csv {
    FILE *f;
    char name[256];
    unsigned long line;    /* lines read so far */
    bool seen_row;         /* a non-empty line was read (no header after it) */
    bool eof;
    char buf[CSV_LINE_MAX + 1];
};

detect_csv *detect_csv_open(FILE *f, const char *name)
{
    detect_csv *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->f = f;
    snprintf(r->name, sizeof r->name, "%s", name ? name : "<input>");
    return r;
}

void detect_csv_close(detect_csv *r)
{
    free(r);
}

/* "NAME:LINE: reason" into err; returns -1. */
__attribute__((format(printf, 4, 5)))
static int csv_fail(const detect_csv *r, char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return -1;
    int n = snprintf(err, errlen, "%s:%lu: ", r->name, r->line);
    if (n < 0 || (size_t)n >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

/* Text of a field for a message: at most 40 bytes, printable ASCII only. */
static void csv_show(const char *s, char *out, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; s[i] && j + 4 < n; i++) {
        if (i == 40) {
            memcpy(out + j, "...", 3);
            j += 3;
            break;
        }
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[j] = '\0';
}

/* ---- reading lines ------------------------------------------------------------ */

/* Reads the next line into r->buf (without its '\n'). Returns 1 with *len set,
 * 0 at the end of input, 2 when the line was too long (its rest is skipped),
 * 3 when it held a NUL byte, -1 on a read error (errno kept). */
static int csv_read_line(detect_csv *r, size_t *len)
{
    if (r->eof)
        return 0;
    size_t n = 0;
    bool any = false, too_long = false, nul = false;
    int c;
    while ((c = getc_unlocked(r->f)) != EOF) {
        any = true;
        if (c == '\n')
            break;
        if (c == '\0')
            nul = true;
        if (n < CSV_LINE_MAX)
            r->buf[n++] = (char)c;
        else
            too_long = true;
    }
    if (c == EOF) {
        if (ferror(r->f))
            return -1;
        r->eof = true;
        if (!any)
            return 0;
    }
    r->line++;
    r->buf[n] = '\0';
    *len = n;
    return too_long ? 2 : nul ? 3 : 1;
}

/* ---- splitting fields ----------------------------------------------------------- */

static bool csv_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits s in place into at most `max` fields (more are counted, not stored).
 * Returns the number of fields, or -1 with *why set for a bad quote. */
static int csv_split(char *s, char **fields, int max, const char **why)
{
    int nf = 0;
    char *p = s;
    for (;;) {
        while (csv_blank(*p))
            p++;
        char *start = p, *end;
        if (*p == '"') {
            char *w = ++p;
            start = w;
            for (;;) {
                if (*p == '\0') {
                    *why = "unterminated quoted field";
                    return -1;
                }
                if (*p == '"') {
                    if (p[1] == '"') {
                        *w++ = '"';
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *w++ = *p++;
            }
            end = w;
            while (csv_blank(*p))
                p++;
            if (*p != ',' && *p != '\0') {
                *why = "text after a closing quote";
                return -1;
            }
        } else {
            while (*p != ',' && *p != '\0')
                p++;
            end = p;
            while (end > start && csv_blank(end[-1]))
                end--;
        }
        char sep = *p;
        *end = '\0';
        if (nf < max)
            fields[nf] = start;
        nf++;
        if (sep != ',')
            return nf;
        p++;
    }
}

/* ---- values ------------------------------------------------------------------ */

static bool csv_word(const char *s, const char *word)
{
    if (*s == '+' || *s == '-')
        s++;
    return strcasecmp(s, word) == 0;
}

/* 0 ok; -1 not a number; -2 NaN or infinite; -3 out of range. */
static int csv_parse_value(const char *s, double *out)
{
    if (csv_word(s, "nan") || csv_word(s, "inf") || csv_word(s, "infinity"))
        return -2;
    /* decimal syntax only: no hex floats, no blanks inside */
    bool digit = false;
    for (const char *p = s; *p; p++) {
        if (*p >= '0' && *p <= '9')
            digit = true;
        else if (!strchr("+-.eE", *p))
            return -1;
    }
    if (!digit)
        return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0')
        return -1;
    if (errno == ERANGE && fabs(v) > 1.0)
        return -3;
    if (!isfinite(v))
        return -2;
    *out = v;
    return 0;
}

/* ---- timestamps ----------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static int64_t csv_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int csv_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* n digits at *p into *v; advances *p. */
static bool csv_digits(const char **p, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

/* "YYYY-MM-DD[ T]HH:MM:SS[.f{1,9}][Z]" -> ms; -1 bad syntax, -2 bad field. */
static int csv_parse_datetime(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (!csv_digits(&p, 4, &y) || *p++ != '-' || !csv_digits(&p, 2, &mo) || *p++ != '-' ||
        !csv_digits(&p, 2, &d))
        return -1;
    char sep = *p++;
    if (sep != ' ' && sep != 'T')
        return -1;
    if (!csv_digits(&p, 2, &h) || *p++ != ':' || !csv_digits(&p, 2, &mi) || *p++ != ':' ||
        !csv_digits(&p, 2, &sec))
        return -1;
    int frac_ms = 0;
    if (*p == '.') {
        p++;
        int nd = 0;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9)
            return -1;
        for (int i = nd; i < 3; i++)
            frac_ms *= 10;
    }
    if (*p == 'Z' && sep == 'T')
        p++;
    if (*p != '\0')
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > csv_days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -2;
    int64_t days = csv_days_from_civil(y, mo, d);
    *ms = ((days * 24 + h) * 60 + mi) * 60000 + (int64_t)sec * 1000 + frac_ms;
    return 0;
}

/* Seconds since the epoch, "123" or "123.456" -> ms (fraction cut to ms);
 * -1 bad syntax, -3 past the year 9999. */
static int csv_parse_epoch(const char *s, int64_t *ms)
{
    const char *p = s;
    int64_t secs = 0;
    int nint = 0;
    while (*p >= '0' && *p <= '9') {
        if (secs <= (int64_t)CSV_EPOCH_MAX)
            secs = secs * 10 + (*p - '0');
        p++;
        nint++;
    }
    if (nint == 0)
        return -1;
    int frac = 0, nfrac = 0;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nfrac < 3)
                frac = frac * 10 + (*p - '0');
            nfrac++;
            p++;
        }
        if (nfrac == 0)
            return -1;
        for (int i = nfrac; i < 3; i++)
            frac *= 10;
    }
    if (*p != '\0')
        return -1;
    if (secs > (int64_t)CSV_EPOCH_MAX)
        return -3;
    *ms = secs * 1000 + frac;
    return 0;
}

/* ---- rows ---------------------------------------------------------------------- */

static const char csv_ts_forms[] =
    "expected YYYY-MM-DD HH:MM:SS, YYYY-MM-DDTHH:MM:SSZ or epoch seconds";

int detect_csv_next(detect_csv *r, detect_csv_row *row, char *err, size_t errlen)
{
    char shown[64];
    for (;;) {
        size_t len = 0;
        int rc = csv_read_line(r, &len);
        if (rc == 0)
            return 0;
        if (rc < 0) {
            int e = errno;
            r->line++; /* the line being read */
            return csv_fail(r, err, errlen, "read error: %s", strerror(e));
        }
        if (rc == 2) {
            r->seen_row = true;
            return csv_fail(r, err, errlen, "line too long (more than %d bytes)", CSV_LINE_MAX);
        }
        if (rc == 3) {
            r->seen_row = true;
            return csv_fail(r, err, errlen, "NUL byte in the line (not a text file?)");
        }
        char *s = r->buf;
        if (len > 0 && s[len - 1] == '\r')
            s[--len] = '\0';
        if (!r->seen_row && r->line == 1 && (unsigned char)s[0] == 0xEF &&
            (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF)
            s += 3; /* UTF-8 byte-order mark */
        char *q = s;
        while (csv_blank(*q))
            q++;
        if (*q == '\0')
            continue; /* empty line */
        bool first = !r->seen_row;
        r->seen_row = true;

        char *fields[2];
        const char *why = NULL;
        int nf = csv_split(s, fields, 2, &why);
        if (nf < 0)
            return csv_fail(r, err, errlen, "%s", why);
        if (nf < 2)
            return csv_fail(r, err, errlen, "missing column: expected timestamp,value, found 1 column");
        if (nf > 2)
            return csv_fail(r, err, errlen, "extra column: expected timestamp,value, found %d columns", nf);

        const char *ts = fields[0], *val = fields[1];
        int64_t ms = 0;
        double v = 0;
        int trc = *ts ? csv_parse_datetime(ts, &ms) : -1;
        if (trc == -1 && *ts)
            trc = csv_parse_epoch(ts, &ms);
        int vrc = *val ? csv_parse_value(val, &v) : -1;
        if (first && trc == -1 && vrc == -1)
            continue; /* a header, e.g. "timestamp,value" */

        if (!*ts)
            return csv_fail(r, err, errlen, "empty timestamp");
        if (strlen(ts) >= sizeof row->ts_text)
            trc = -1;
        csv_show(ts, shown, sizeof shown);
        if (trc == -1)
            return csv_fail(r, err, errlen, "bad timestamp '%s' (%s)", shown, csv_ts_forms);
        if (trc == -2)
            return csv_fail(r, err, errlen, "bad timestamp '%s' (a field is out of range)", shown);
        if (trc == -3)
            return csv_fail(r, err, errlen,
                            "bad timestamp '%s' (epoch seconds past the year 9999: milliseconds?)", shown);
        if (!*val)
            return csv_fail(r, err, errlen, "empty value");
        csv_show(val, shown, sizeof shown);
        if (strlen(val) >= sizeof row->value_text)
            return csv_fail(r, err, errlen, "value too long (more than %zu characters)",
                            sizeof row->value_text - 1);
        if (vrc == -1)
            return csv_fail(r, err, errlen, "bad number '%s'", shown);
        if (vrc == -2)
            return csv_fail(r, err, errlen, "value '%s' is not finite (NaN and infinity are not allowed)",
                            shown);
        if (vrc == -3)
            return csv_fail(r, err, errlen, "value '%s' is out of range", shown);

        row->ts_ms = ms;
        row->value = v;
        row->line = r->line;
        snprintf(row->ts_text, sizeof row->ts_text, "%s", ts);
        snprintf(row->value_text, sizeof row->value_text, "%s", val);
        return 1;
    }
}
