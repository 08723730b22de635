/* fmt.c: turning the API's numbers into text people read: values with their
 * units (1.2 GiB, 34.5%, 12.3 KiB/s), durations, local times, compact event
 * payloads, series keys; plus what the terminal can show (UTF-8? how wide?)
 * and forgiving JSON accessors (a missing or mistyped field gets a default). */
#include "cli/cli.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* ---- JSON accessors ------------------------------------------------------------ */

const char *cli_jstr(const json_t *o, const char *key, const char *dflt)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : dflt;
}

double cli_jnum(const json_t *o, const char *key, double dflt)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : dflt;
}

bool cli_jbool(const json_t *o, const char *key, bool dflt)
{
    const json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

void cli_print_json(const json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
        free(s);
    }
}

/* ---- numbers and units ------------------------------------------------------------ */

static void trim_zeros(char *s)
{
    if (!strchr(s, '.'))
        return;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '0')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '.')
        s[--n] = '\0';
}

void cli_fmt_number(double v, char *buf, size_t n)
{
    static const char *const si[] = {"", "k", "M", "G", "T", "P", "E"};
    double a = fabs(v);
    if (isnan(v)) {
        snprintf(buf, n, "-");
    } else if (isinf(v)) {
        snprintf(buf, n, "%s", v < 0 ? "-inf" : "inf");
    } else if (a >= 1e6) {
        int k = 0;
        while (a >= 999.95 && k < 6) {
            a /= 1000;
            v /= 1000;
            k++;
        }
        snprintf(buf, n, "%.1f%s", v, si[k]);
    } else if (v == floor(v)) {
        snprintf(buf, n, "%.0f", v);
    } else if (a >= 100) {
        snprintf(buf, n, "%.1f", v);
        trim_zeros(buf);
    } else if (a >= 0.01) {
        snprintf(buf, n, "%.2f", v);
        trim_zeros(buf);
    } else {
        snprintf(buf, n, "%.3g", v);
    }
}

void cli_fmt_bytes(double b, char *buf, size_t n)
{
    static const char *const iec[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double a = fabs(b);
    int k = 0;
    if (isnan(b)) {
        snprintf(buf, n, "-");
        return;
    }
    if (a < 1024) {
        snprintf(buf, n, "%.0f B", b);
        return;
    }
    while (a >= 1023.95 && k < 6) { /* 1023.95 would print as 1024.0 */
        a /= 1024;
        b /= 1024;
        k++;
    }
    snprintf(buf, n, "%.1f %s", b, iec[k]);
}

void cli_fmt_micros(double us, char *buf, size_t n)
{
    if (isnan(us))
        snprintf(buf, n, "-");
    else if (fabs(us) < 999.5)
        snprintf(buf, n, "%.0fus", us);
    else if (fabs(us) < 999950)
        snprintf(buf, n, "%.1fms", us / 1e3);
    else
        snprintf(buf, n, "%.2fs", us / 1e6);
}

void cli_fmt_duration(int64_t ms, char *buf, size_t n)
{
    static const struct { int64_t ms; char c; } parts[] = {
        {86400000, 'd'}, {3600000, 'h'}, {60000, 'm'}, {1000, 's'}};
    size_t len = 0;
    if (ms < 0)
        ms = 0;
    if (ms < 1000 || (ms < 60000 && ms % 1000 != 0)) {
        if (ms < 1000)
            snprintf(buf, n, "%lldms", (long long)ms);
        else
            snprintf(buf, n, "%.1fs", (double)ms / 1000.0);
        return;
    }
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && len + 1 < n; i++) {
        int64_t q = ms / parts[i].ms;
        ms %= parts[i].ms;
        if (q > 0)
            len += (size_t)snprintf(buf + len, n - len, "%lld%c", (long long)q, parts[i].c);
        if (len >= n)
            break;
    }
}

static bool unit_is(const char *unit, const char *a, const char *b)
{
    return !strcmp(unit, a) || (b && !strcmp(unit, b));
}

void cli_fmt_value(double v, const char *unit, char *buf, size_t n)
{
    char num[64];
    if (!unit)
        unit = "";
    if (isnan(v)) {
        snprintf(buf, n, "-");
    } else if (unit_is(unit, "percent", "%")) {
        snprintf(buf, n, "%.1f%%", v);
    } else if (unit_is(unit, "bytes", "B")) {
        cli_fmt_bytes(v, buf, n);
    } else if (unit_is(unit, "bytes/s", "B/s")) {
        cli_fmt_bytes(v, num, sizeof num);
        snprintf(buf, n, "%s/s", num);
    } else if (unit_is(unit, "1/s", "/s")) {
        cli_fmt_number(v, num, sizeof num);
        snprintf(buf, n, "%s/s", num);
    } else if (unit_is(unit, "seconds", "s")) {
        cli_fmt_micros(v * 1e6, buf, n);
    } else if (unit_is(unit, "ms", "milliseconds")) {
        cli_fmt_micros(v * 1e3, buf, n);
    } else if (unit_is(unit, "us", "microseconds")) {
        cli_fmt_micros(v, buf, n);
    } else {
        cli_fmt_number(v, num, sizeof num);
        snprintf(buf, n, "%s%s%s", num, *unit ? " " : "", unit);
    }
}

/* ---- time ---------------------------------------------------------------------------- */

int64_t cli_json_time_ms(const json_t *v)
{
    double d;
    if (json_is_number(v))
        d = json_number_value(v);
    else if (json_is_string(v))
        d = strtod(json_string_value(v), NULL);
    else
        return 0;
    if (!isfinite(d) || d <= 0)
        return 0;
    return d > 1e11 ? (int64_t)d : (int64_t)(d * 1000.0); /* ms, else seconds */
}

void cli_fmt_time(int64_t ms, char *buf, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !localtime_r(&t, &tm) || strftime(buf, n, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, n, "-");
}

/* ---- events and series ------------------------------------------------------------------ */

static bool is_bare(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._/:@%+-", *s))
            return false;
    return true;
}

static size_t put(char *buf, size_t n, size_t len, const char *s)
{
    if (len < n)
        snprintf(buf + len, n - len, "%s", s);
    return len + strlen(s);
}

static size_t put_value(char *buf, size_t n, size_t len, const json_t *v)
{
    if (json_is_string(v) && is_bare(json_string_value(v)))
        return put(buf, n, len, json_string_value(v));
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    len = put(buf, n, len, s ? s : "?");
    free(s);
    return len;
}

void cli_fmt_payload(const json_t *payload, char *buf, size_t n)
{
    const char *key;
    const json_t *v;
    size_t len = 0;
    buf[0] = '\0';
    if (!json_is_object(payload)) {
        if (payload && !json_is_null(payload))
            put_value(buf, n, 0, payload);
        return;
    }
    json_object_foreach((json_t *)payload, key, v) {
        if (len)
            len = put(buf, n, len, " ");
        len = put(buf, n, len, key);
        len = put(buf, n, len, "=");
        len = put_value(buf, n, len, v);
    }
}

void cli_fmt_key(const json_t *obj, char *buf, size_t n)
{
    const char *key = cli_jstr(obj, "key", NULL);
    const json_t *labels = json_object_get(obj, "labels");
    const char *k;
    const json_t *v;
    size_t len;
    if (key && *key) {
        snprintf(buf, n, "%s", key);
        return;
    }
    snprintf(buf, n, "%s", cli_jstr(obj, "name", "?"));
    if (!json_is_object(labels) || json_object_size(labels) == 0)
        return;
    len = put(buf, n, strlen(buf), "{");
    bool first = true;
    json_object_foreach((json_t *)labels, k, v) {
        char item[512];
        snprintf(item, sizeof item, "%s%s=\"%s\"", first ? "" : ",", k,
                 json_is_string(v) ? json_string_value(v) : "?");
        len = put(buf, n, len, item);
        first = false;
    }
    put(buf, n, len, "}");
}

/* ---- terminal ----------------------------------------------------------------------------- */

bool cli_locale_utf8(void)
{
    static const char *const vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v)
            return strcasestr(v, "utf-8") || strcasestr(v, "utf8");
    }
    return false;
}

int cli_term_width(void)
{
    struct winsize ws;
    if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
        return 0;
    return ws.ws_col;
}

size_t cli_text_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}
