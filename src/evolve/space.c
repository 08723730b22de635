/* space.c: space files (docs/evolve.md "Experiments"): the INI file that
 * declares the knobs an experiment may turn, their values as text (sizes,
 * durations, enums) and the "key = value" files (postgresql.conf,
 * sysctl.conf) that hold them. Parsed line by line with inih so that every
 * error names FILE:LINE. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "evolve/evolve.h"

/* ---- small text helpers ---- */

static void fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static void copy(char *dst, size_t n, const char *src)
{
    size_t len = strnlen(src, n - 1);
    memmove(dst, src, len);
    dst[len] = 0;
}

/* Splits list on commas or blanks into at most max items of n bytes each. */
static int split_list(const char *list, char *items, size_t n, int max, int *count)
{
    char buf[2048];
    copy(buf, sizeof buf, list);
    *count = 0;
    for (char *save = NULL, *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
        if (*count >= max)
            return -E2BIG;
        if (strlen(t) >= n)
            return -ENAMETOOLONG;
        copy(items + (size_t)*count * n, n, t);
        (*count)++;
    }
    return 0;
}

/* ---- knob values ---- */

typedef struct unit_def {
    const char *name;
    double factor;
} unit_def;

static const unit_def size_units[] = {
    {"TB", 1099511627776.0}, {"GB", 1073741824.0}, {"MB", 1048576.0}, {"kB", 1024.0}, {"B", 1.0}, {NULL, 0}};
static const unit_def dur_units[] = {
    {"d", 86400000.0}, {"h", 3600000.0}, {"min", 60000.0}, {"s", 1000.0}, {"ms", 1.0}, {NULL, 0}};

static const unit_def *unit_find(const unit_def *u, const char *name)
{
    for (; u->name; u++)
        if (!strcasecmp(u->name, name))
            return u;
    return NULL;
}

static const unit_def *knob_units(const evolve_knob *k)
{
    return k->type == EVOLVE_KNOB_SIZE ? size_units : k->type == EVOLVE_KNOB_DURATION ? dur_units : NULL;
}

static const char *type_names[] = {"int", "float", "size", "duration", "enum", "bool"};

/* Copies text without blanks and surrounding quotes. */
static void unquote(const char *text, char *buf, size_t n)
{
    copy(buf, n, text);
    char *t = trim(buf);
    size_t len = strlen(t);
    if (len >= 2 && (t[0] == '\'' || t[0] == '"') && t[len - 1] == t[0]) {
        t[len - 1] = 0;
        t++;
    }
    memmove(buf, t, strlen(t) + 1);
}

static int parse_bool(const char *t, double *v)
{
    static const char *yes[] = {"on", "true", "yes", "1"}, *no[] = {"off", "false", "no", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(t, yes[i])) {
            *v = 1;
            return 0;
        }
        if (!strcasecmp(t, no[i])) {
            *v = 0;
            return 0;
        }
    }
    return -EINVAL;
}

int evolve_knob_parse(const evolve_knob *k, const char *text, double *v, char *err, size_t errlen)
{
    char t[256];
    unquote(text ? text : "", t, sizeof t);
    *v = NAN;
    if (!*t) {
        fail(err, errlen, "%s: empty value", k->name);
        return -EINVAL;
    }
    if (k->type == EVOLVE_KNOB_BOOL) {
        if (parse_bool(t, v) == 0)
            return 0;
        fail(err, errlen, "%s: '%s' is not a bool (on, off)", k->name, t);
        return -EINVAL;
    }
    if (k->type == EVOLVE_KNOB_ENUM) {
        for (int i = 0; i < k->nchoices; i++)
            if (!strcasecmp(t, k->choices[i])) {
                *v = i;
                return 0;
            }
        fail(err, errlen, "%s: '%s' is not one of its choices", k->name, t);
        return -EINVAL;
    }
    char *end;
    errno = 0;
    double x = strtod(t, &end);
    if (end == t || errno || !isfinite(x)) {
        fail(err, errlen, "%s: '%s' is not a number", k->name, t);
        return -EINVAL;
    }
    while (isspace((unsigned char)*end))
        end++;
    const unit_def *units = knob_units(k);
    if (*end) {
        const unit_def *u = units ? unit_find(units, end) : NULL;
        if (!u) {
            fail(err, errlen, "%s: '%s' has an unknown unit '%s' (%s)", k->name, t, end,
                 k->type == EVOLVE_KNOB_SIZE       ? "B, kB, MB, GB, TB"
                 : k->type == EVOLVE_KNOB_DURATION ? "ms, s, min, h, d"
                                                   : "a plain number");
            return -EINVAL;
        }
        x *= u->factor;
    } else if (units && k->unit[0]) {
        const unit_def *u = unit_find(units, k->unit);
        if (u)
            x *= u->factor; /* a plain number is in the knob's unit */
    }
    if (k->type == EVOLVE_KNOB_INT && x != floor(x)) {
        fail(err, errlen, "%s: '%s' is not an integer", k->name, t);
        return -EINVAL;
    }
    *v = x;
    return 0;
}

void evolve_knob_format(const evolve_knob *k, double v, char *buf, size_t n)
{
    if (!isfinite(v)) {
        snprintf(buf, n, "-");
        return;
    }
    switch (k->type) {
    case EVOLVE_KNOB_INT:
        snprintf(buf, n, "%lld", (long long)llround(v));
        return;
    case EVOLVE_KNOB_FLOAT:
        snprintf(buf, n, "%.6g", v);
        return;
    case EVOLVE_KNOB_BOOL:
        snprintf(buf, n, "%s", v >= 0.5 ? "on" : "off");
        return;
    case EVOLVE_KNOB_ENUM: {
        long i = lround(v);
        snprintf(buf, n, "%s", i >= 0 && i < k->nchoices ? k->choices[i] : "?");
        return;
    }
    default:
        break;
    }
    const unit_def *units = knob_units(k), *u = k->unit[0] ? unit_find(units, k->unit) : NULL;
    if (u) {
        snprintf(buf, n, "%lld%s", (long long)llround(v / u->factor), u->name);
        return;
    }
    /* the largest unit that divides the value exactly (sizes at kB grain) */
    double x = llround(v);
    if (k->type == EVOLVE_KNOB_SIZE && x >= 1024)
        x = llround(x / 1024) * 1024.0;
    for (u = units; u->name; u++)
        if (x >= u->factor && fmod(x, u->factor) == 0)
            break;
    if (!u->name || u->factor == 1)
        snprintf(buf, n, "%lld%s", (long long)x, k->type == EVOLVE_KNOB_DURATION ? "ms" : "");
    else
        snprintf(buf, n, "%lld%s", (long long)(x / u->factor), u->name);
}

/* ---- the space file ---- */

enum { SEC_NONE, SEC_SPACE, SEC_SANDBOX, SEC_KNOB };

typedef struct knob_raw {
    int line;                    /* of its [knob] header */
    int type_line, min_line, max_line, seeds_line, file_line;
    char min[64], max[64], seeds[512];
    bool has_type, has_scale;
} knob_raw;

typedef struct parse_ctx {
    evolve_space *s;
    const char *name;
    int line, section, never_line;
    knob_raw raw[EVOLVE_MAX_KNOBS];
    char *err;
    size_t errlen;
    int rc;
} parse_ctx;

static int perr(parse_ctx *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(parse_ctx *p, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(p->err, p->errlen, "%s:%d: %s", p->name, line, msg);
    p->rc = -EINVAL;
    return -EINVAL;
}

static int set_text(parse_ctx *p, char *dst, size_t n, const char *key, const char *value)
{
    if (strlen(value) >= n)
        return perr(p, p->line, "%s is too long (at most %zu characters)", key, n - 1);
    copy(dst, n, value);
    return 0;
}

static int space_key(parse_ctx *p, const char *key, const char *value)
{
    evolve_space *s = p->s;
    if (!strcmp(key, "name")) {
        static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
        if (!*value || value[0] == '.' || value[strspn(value, ok)])
            return perr(p, p->line, "name '%s': use letters, digits, '.', '_' and '-' (it names spaces/NAME.space)",
                        value);
        return set_text(p, s->name, sizeof s->name, key, value);
    }
    if (!strcmp(key, "fitness"))
        return set_text(p, s->fitness, sizeof s->fitness, key, value);
    if (!strcmp(key, "apply"))
        return set_text(p, s->apply, sizeof s->apply, key, value);
    if (!strcmp(key, "revert"))
        return set_text(p, s->revert, sizeof s->revert, key, value);
    if (!strcmp(key, "goal")) {
        if (strcmp(value, "max") && strcmp(value, "min"))
            return perr(p, p->line, "goal must be max or min, not '%s'", value);
        s->minimize = !strcmp(value, "min");
        return 0;
    }
    if (!strcmp(key, "never")) {
        p->never_line = p->line;
        if (split_list(value, &s->never[0][0], sizeof s->never[0], 16, &s->nnever))
            return perr(p, p->line, "never: at most 16 keys of at most 63 characters");
        return 0;
    }
    if (!strcmp(key, "watch"))
        return 0; /* services watched after an apply: read by watch.c */
    return perr(p, p->line, "unknown key '%s' in [space] (name, fitness, goal, apply, revert, never, watch)", key);
}

static int sandbox_key(parse_ctx *p, const char *key, const char *value)
{
    evolve_space *s = p->s;
    evolve_knob tmp = {.type = EVOLVE_KNOB_DURATION};
    char e[256];
    double v;
    if (!strcmp(key, "writable")) {
        if (split_list(value, &s->writable[0][0], sizeof s->writable[0], EVOLVE_MAX_PATHS, &s->nwritable))
            return perr(p, p->line, "writable: at most %d paths", EVOLVE_MAX_PATHS);
        for (int i = 0; i < s->nwritable; i++)
            if (s->writable[i][0] != '/')
                return perr(p, p->line, "writable: '%s' is not an absolute path", s->writable[i]);
        return 0;
    }
    if (!strcmp(key, "network")) {
        if (strcmp(value, "none") && strcmp(value, "loopback"))
            return perr(p, p->line, "network must be none or loopback, not '%s'", value);
        s->network = !strcmp(value, "loopback");
        return 0;
    }
    if (!strcmp(key, "timeout")) {
        copy(tmp.name, sizeof tmp.name, "timeout");
        copy(tmp.unit, sizeof tmp.unit, "s");
        if (evolve_knob_parse(&tmp, value, &v, e, sizeof e) || v <= 0)
            return perr(p, p->line, "timeout: '%s' is not a duration (e.g. 120s, 5min)", value);
        s->trial_timeout_ms = (int64_t)v;
        return 0;
    }
    if (!strcmp(key, "memory")) {
        tmp.type = EVOLVE_KNOB_SIZE;
        copy(tmp.name, sizeof tmp.name, "memory");
        if (evolve_knob_parse(&tmp, value, &v, e, sizeof e) || v <= 0)
            return perr(p, p->line, "memory: '%s' is not a size (e.g. 512MB, 1GB)", value);
        s->memory_bytes = (uint64_t)v;
        return 0;
    }
    if (!strcmp(key, "cpu")) {
        char *end;
        v = strtod(value, &end);
        if (end == value || (*end && strcmp(end, "%")) || !(v >= 0))
            return perr(p, p->line, "cpu: '%s' is not a percentage of one core (e.g. 200)", value);
        s->cpu_percent = v;
        return 0;
    }
    return perr(p, p->line, "unknown key '%s' in [sandbox] (writable, network, timeout, memory, cpu)", key);
}

static int knob_key(parse_ctx *p, const char *key, const char *value)
{
    evolve_knob *k = &p->s->knobs[p->s->nknobs - 1];
    knob_raw *r = &p->raw[p->s->nknobs - 1];
    if (!strcmp(key, "file")) {
        if (value[0] != '/')
            return perr(p, p->line, "file '%s' is not an absolute path", value);
        r->file_line = p->line;
        return set_text(p, k->file, sizeof k->file, key, value);
    }
    if (!strcmp(key, "key"))
        return set_text(p, k->key, sizeof k->key, key, value);
    if (!strcmp(key, "apply"))
        return set_text(p, k->apply, sizeof k->apply, key, value);
    if (!strcmp(key, "revert"))
        return set_text(p, k->revert, sizeof k->revert, key, value);
    if (!strcmp(key, "type")) {
        for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
            if (!strcmp(value, type_names[i])) {
                k->type = (evolve_knob_type)i;
                r->has_type = true;
                r->type_line = p->line;
                return 0;
            }
        return perr(p, p->line, "bad type '%s' (int, float, size, duration, enum, bool)", value);
    }
    if (!strcmp(key, "min") || !strcmp(key, "max")) {
        bool mn = key[1] == 'i';
        *(mn ? &r->min_line : &r->max_line) = p->line;
        return set_text(p, mn ? r->min : r->max, sizeof r->min, key, value);
    }
    if (!strcmp(key, "scale")) {
        if (strcmp(value, "log") && strcmp(value, "linear"))
            return perr(p, p->line, "scale must be log or linear, not '%s'", value);
        k->log_scale = !strcmp(value, "log");
        r->has_scale = true;
        return 0;
    }
    if (!strcmp(key, "unit"))
        return set_text(p, k->unit, sizeof k->unit, key, value);
    if (!strcmp(key, "choices")) {
        if (split_list(value, &k->choices[0][0], sizeof k->choices[0], EVOLVE_MAX_CHOICES, &k->nchoices))
            return perr(p, p->line, "choices: at most %d of at most 63 characters", EVOLVE_MAX_CHOICES);
        return 0;
    }
    if (!strcmp(key, "seeds")) {
        r->seeds_line = p->line;
        return set_text(p, r->seeds, sizeof r->seeds, key, value);
    }
    return perr(p, p->line,
                "unknown key '%s' in [knob %s] (file, key, type, min, max, scale, unit, choices, seeds, apply, "
                "revert)",
                key, k->name);
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    (void)section;
    parse_ctx *p = user;
    if (p->rc)
        return 0;
    switch (p->section) {
    case SEC_SPACE:
        return space_key(p, key, value) == 0;
    case SEC_SANDBOX:
        return sandbox_key(p, key, value) == 0;
    case SEC_KNOB:
        return knob_key(p, key, value) == 0;
    default:
        perr(p, p->line, "'%s' before any section ([space], [sandbox], [knob NAME])", key);
        return 0;
    }
}

static int on_section(parse_ctx *p, char *line)
{
    char *close = strchr(line, ']');
    if (!close || trim(close + 1)[0])
        return perr(p, p->line, "bad section header (expected [space], [sandbox] or [knob NAME])");
    *close = 0;
    char *name = trim(line + 1);
    if (!strcmp(name, "space")) {
        p->section = SEC_SPACE;
        return 0;
    }
    if (!strcmp(name, "sandbox")) {
        p->section = SEC_SANDBOX;
        return 0;
    }
    if (strncmp(name, "knob", 4) || !isspace((unsigned char)name[4]))
        return perr(p, p->line, "unknown section [%s] (space, sandbox, knob NAME)", name);
    name = trim(name + 4);
    if (!*name || strlen(name) >= sizeof p->s->knobs[0].name || strpbrk(name, " \t=\"'"))
        return perr(p, p->line, "bad knob name '%s'", name);
    for (int i = 0; i < p->s->nknobs; i++)
        if (!strcmp(p->s->knobs[i].name, name))
            return perr(p, p->line, "duplicate knob '%s' (first at line %d)", name, p->raw[i].line);
    if (p->s->nknobs >= EVOLVE_MAX_KNOBS)
        return perr(p, p->line, "too many knobs (at most %d)", EVOLVE_MAX_KNOBS);
    evolve_knob *k = &p->s->knobs[p->s->nknobs];
    memset(k, 0, sizeof *k);
    copy(k->name, sizeof k->name, name);
    p->raw[p->s->nknobs] = (knob_raw){.line = p->line};
    p->s->nknobs++;
    p->section = SEC_KNOB;
    return 0;
}

/* One line: a section header here, a key through inih. */
static int parse_line(parse_ctx *p, char *line)
{
    char *t = trim(line);
    if (!*t || *t == ';' || *t == '#')
        return 0;
    if (*t == '[')
        return on_section(p, t);
    int rc = ini_parse_string(t, on_key, p);
    if (p->rc)
        return p->rc;
    if (rc)
        return perr(p, p->line, "expected KEY = VALUE");
    return 0;
}

static int knob_bound(parse_ctx *p, evolve_knob *k, const char *text, int line, const char *what, double *v)
{
    char e[256];
    if (evolve_knob_parse(k, text, v, e, sizeof e))
        return perr(p, line, "%s: %s", what, e);
    return 0;
}

static int check_knob(parse_ctx *p, int i)
{
    evolve_knob *k = &p->s->knobs[i];
    knob_raw *r = &p->raw[i];
    if (!k->file[0])
        return perr(p, r->line, "knob %s has no file", k->name);
    if (!k->key[0])
        copy(k->key, sizeof k->key, k->name);
    if (!r->has_type)
        return perr(p, r->line, "knob %s has no type (int, float, size, duration, enum, bool)", k->name);
    for (int j = 0; j < p->s->nnever; j++)
        if (!strcmp(p->s->never[j], k->key) || !strcmp(p->s->never[j], k->name))
            return perr(p, r->line, "knob %s: '%s' is on the never list (line %d)", k->name, p->s->never[j],
                        p->never_line);
    if (k->unit[0] && (!knob_units(k) || !unit_find(knob_units(k), k->unit)))
        return perr(p, r->line, "knob %s: unit '%s' does not fit type %s", k->name, k->unit, type_names[k->type]);
    if (k->type == EVOLVE_KNOB_BOOL) {
        k->nchoices = 2;
        copy(k->choices[0], sizeof k->choices[0], "off");
        copy(k->choices[1], sizeof k->choices[1], "on");
    }
    if (k->type == EVOLVE_KNOB_ENUM || k->type == EVOLVE_KNOB_BOOL) {
        if (k->nchoices < 1)
            return perr(p, r->line, "knob %s: an enum needs choices", k->name);
        k->min = 0;
        k->max = k->nchoices - 1;
    } else {
        if (!r->min[0] || !r->max[0])
            return perr(p, r->line, "knob %s needs min and max", k->name);
        if (knob_bound(p, k, r->min, r->min_line, "min", &k->min) ||
            knob_bound(p, k, r->max, r->max_line, "max", &k->max))
            return -EINVAL;
        if (k->min > k->max)
            return perr(p, r->min_line, "knob %s: min %s > max %s", k->name, r->min, r->max);
        if (k->log_scale && k->min <= 0)
            return perr(p, r->min_line, "knob %s: a log scale needs min > 0", k->name);
        if (!r->has_scale && (k->type == EVOLVE_KNOB_SIZE || k->type == EVOLVE_KNOB_DURATION) && k->min > 0 &&
            k->max > 16 * k->min)
            k->log_scale = true;
    }
    char seeds[EVOLVE_MAX_SEEDS][64];
    int n = 0;
    if (split_list(r->seeds, &seeds[0][0], sizeof seeds[0], EVOLVE_MAX_SEEDS, &n))
        return perr(p, r->seeds_line, "seeds: at most %d", EVOLVE_MAX_SEEDS);
    for (int j = 0; j < n; j++) {
        double v;
        char e[256];
        if (evolve_knob_parse(k, seeds[j], &v, e, sizeof e))
            return perr(p, r->seeds_line, "seed: %s", e);
        if (v < k->min || v > k->max)
            return perr(p, r->seeds_line, "knob %s: seed %s is outside [%s, %s]", k->name, seeds[j], r->min,
                        r->max);
        copy(k->seeds[j], sizeof k->seeds[j], seeds[j]);
    }
    k->nseeds = n;
    return 0;
}

int evolve_space_parse(const char *text, const char *name, evolve_space *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    parse_ctx *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = (parse_ctx){.s = out, .name = name ? name : "space", .err = err, .errlen = errlen};
    out->trial_timeout_ms = 300000;
    out->memory_bytes = 1073741824ull;
    const char *at = text ? text : "";
    while (!p->rc && *at) {
        const char *nl = strchr(at, '\n');
        size_t len = nl ? (size_t)(nl - at) : strlen(at);
        p->line++;
        char *line = strndup(at, len);
        if (!line) {
            free(p);
            return -ENOMEM;
        }
        parse_line(p, line);
        free(line);
        at += len + (nl ? 1 : 0);
    }
    if (!p->rc && !out->name[0])
        perr(p, 1, "[space] has no name");
    if (!p->rc && out->nknobs == 0)
        perr(p, p->line ? p->line : 1, "no [knob NAME] section");
    for (int i = 0; !p->rc && i < out->nknobs; i++)
        check_knob(p, i);
    int rc = p->rc;
    free(p);
    return rc;
}

static int read_text(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    *out = core_slurp(path, len);
    if (*out)
        return 0;
    int e = errno ? errno : EIO;
    fail(err, errlen, "%s: %s", path, strerror(e));
    return -e;
}

int evolve_space_load(const char *path, evolve_space *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    char *text;
    int rc = read_text(path, &text, NULL, err, errlen);
    if (rc)
        return rc == -ENOENT ? -ENOENT : rc;
    rc = evolve_space_parse(text, path, out, err, errlen);
    free(text);
    if (rc == 0)
        copy(out->path, sizeof out->path, path);
    return rc;
}

/* ---- "key = value" files ---- */

/* If line is "key = value" (or "key value"? no: '=' required) for key,
 * returns a pointer to its value (not trimmed of comments), else NULL. */
static const char *line_value(const char *line, size_t len, const char *key)
{
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    size_t kl = strlen(key);
    if (len - i < kl || strncmp(line + i, key, kl))
        return NULL;
    i += kl;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i >= len || line[i] != '=')
        return NULL;
    return line + i + 1;
}

typedef struct strbuf {
    char *s;
    size_t n, cap;
    bool oom;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

int evolve_space_write_file(const evolve_space *s, const char *file, const double *values, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc = read_text(file, &text, &len, err, errlen);
    if (rc == -ENOENT) {
        text = strdup("");
        len = 0;
        if (!text)
            return -ENOMEM;
    } else if (rc) {
        return rc;
    }
    bool done[EVOLVE_MAX_KNOBS] = {0};
    strbuf b = {0};
    sb_add(&b, "", 0);
    for (const char *at = text; *at;) {
        const char *nl = strchr(at, '\n');
        size_t n = nl ? (size_t)(nl - at) : strlen(at);
        int hit = -1;
        for (int i = 0; i < s->nknobs && hit < 0; i++)
            if (!strcmp(s->knobs[i].file, file) && isfinite(values[i]) && line_value(at, n, s->knobs[i].key))
                hit = i;
        if (hit >= 0) {
            char v[128], line[320];
            evolve_knob_format(&s->knobs[hit], values[hit], v, sizeof v);
            int ln = snprintf(line, sizeof line, "%s = %s\n", s->knobs[hit].key, v);
            if (!done[hit])
                sb_add(&b, line, (size_t)ln); /* later duplicates of the key are dropped */
            done[hit] = true;
        } else {
            sb_add(&b, at, n);
            sb_add(&b, "\n", 1);
        }
        at += n + (nl ? 1 : 0);
    }
    for (int i = 0; i < s->nknobs; i++) {
        if (done[i] || strcmp(s->knobs[i].file, file) || !isfinite(values[i]))
            continue;
        char v[128], line[320];
        evolve_knob_format(&s->knobs[i], values[i], v, sizeof v);
        int ln = snprintf(line, sizeof line, "%s = %s\n", s->knobs[i].key, v);
        sb_add(&b, line, (size_t)ln);
    }
    free(text);
    if (b.oom) {
        free(b.s);
        return -ENOMEM;
    }
    rc = core_write_atomic(file, b.s, b.n, err, errlen);
    free(b.s);
    return rc;
}

/* The value text of the last "key = value" line, without its comment. */
static bool find_value(const char *text, const char *key, char *buf, size_t n, int *line)
{
    bool found = false;
    int ln = 0;
    for (const char *at = text; *at;) {
        const char *nl = strchr(at, '\n');
        size_t len = nl ? (size_t)(nl - at) : strlen(at);
        ln++;
        const char *v = line_value(at, len, key);
        if (v) {
            size_t vl = len - (size_t)(v - at);
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(vl < sizeof tmp ? vl : sizeof tmp - 1), v);
            char *hash = tmp[0] ? strchr(tmp, '#') : NULL;
            if (hash && !memchr(tmp, '\'', (size_t)(hash - tmp)))
                *hash = 0;
            copy(buf, n, trim(tmp));
            *line = ln;
            found = true;
        }
        at += len + (nl ? 1 : 0);
    }
    return found;
}

int evolve_space_read_values(const evolve_space *s, double *values, char *err, size_t errlen)
{
    for (int i = 0; i < s->nknobs; i++) {
        const evolve_knob *k = &s->knobs[i];
        values[i] = NAN;
        char *text;
        int rc = read_text(k->file, &text, NULL, err, errlen);
        if (rc == -ENOENT)
            continue;
        if (rc)
            return rc;
        char v[256], e[320];
        int line = 0;
        if (find_value(text, k->key, v, sizeof v, &line) && evolve_knob_parse(k, v, &values[i], e, sizeof e)) {
            fail(err, errlen, "%s:%d: %s", k->file, line, e);
            free(text);
            return -EINVAL;
        }
        free(text);
    }
    return 0;
}
