/* registry_conf.c: the [detect] section (kept raw by core/config.c): defaults,
 * parsing with FILE:LINE errors, and which series it watches (include and
 * exclude globs over the family name, or over the key name{labels} for a
 * glob with '{'). Pure: no state, any thread. (The label-subset test of
 * anomalous(METRIC{labels}) rules is memory's mem_labels_subset.) */
#include "detect/detect.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS 86400000LL

void detect_registry_config_defaults(detect_registry_config *c)
{
    memset(c, 0, sizeof *c);
    c->enabled = true;
    detect_track_config_default(&c->track);
    c->max_metrics = 5000;
    c->save_interval_ms = 300000;
    snprintf(c->include[0], sizeof c->include[0], "*");
    c->ninclude = 1;
}

static int duration(const core_kv *kv, int64_t lo, int64_t hi, const char *range, int64_t *out, char *err,
                    size_t errlen)
{
    int64_t ms;
    if (core_parse_duration(kv->value, &ms))
        return core_kv_error(err, errlen, kv, "%s: '%s' is not a duration (e.g. 0s, 500ms, 30s, 5m)", kv->key, kv->value);
    if (ms < lo || ms > hi)
        return core_kv_error(err, errlen, kv, "%s: '%s' is out of range (%s)", kv->key, kv->value, range);
    *out = ms;
    return 0;
}

/* Splits a list of globs on blanks and commas outside {...} and "...". */
static int globs(const core_kv *kv, char (*list)[DETECT_REGISTRY_GLOB_LEN + 1], int *n, char *err, size_t errlen)
{
    const char *s = kv->value;
    *n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',')
            s++;
        if (!*s)
            break;
        const char *b = s;
        int depth = 0;
        bool quoted = false;
        for (; *s; s++) {
            if (quoted && *s == '\\' && s[1])
                s++;
            else if (*s == '"' && depth)
                quoted = !quoted;
            else if (!quoted && *s == '{')
                depth++;
            else if (!quoted && *s == '}' && depth)
                depth--;
            else if (!quoted && !depth && (*s == ' ' || *s == '\t' || *s == ','))
                break;
        }
        size_t len = (size_t)(s - b);
        if (depth || quoted)
            return core_kv_error(err, errlen, kv, "%s: '%.*s' has an unclosed '{' or '\"'", kv->key, (int)len, b);
        if (len > DETECT_REGISTRY_GLOB_LEN)
            return core_kv_error(err, errlen, kv, "%s: a glob is longer than %d characters", kv->key, DETECT_REGISTRY_GLOB_LEN);
        if (*n == DETECT_REGISTRY_GLOBS_MAX)
            return core_kv_error(err, errlen, kv, "%s: more than %d globs", kv->key, DETECT_REGISTRY_GLOBS_MAX);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
                return core_kv_error(err, errlen, kv, "%s: control character in a glob", kv->key);
        memcpy(list[*n], b, len);
        list[*n][len] = 0;
        (*n)++;
    }
    return 0;
}

static int apply_key(detect_registry_config *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    if (!strcmp(k, "enabled")) {
        if (core_parse_bool(v, &c->enabled))
            return core_kv_error(err, errlen, kv, "enabled: '%s' is not yes or no", v);
        return 0;
    }
    if (!strcmp(k, "threshold")) {
        char *end;
        double t = strtod(v, &end);
        if (end == v || *end || !isfinite(t) || t <= 0 || t > 1)
            return core_kv_error(err, errlen, kv, "threshold: '%s' is not a score above 0 and at most 1 (e.g. 0.5)", v);
        c->track.threshold = t;
        return 0;
    }
    if (!strcmp(k, "for"))
        return duration(kv, 0, DAY_MS, "0s to 1d", &c->track.for_ms, err, errlen);
    if (!strcmp(k, "keep_firing_for"))
        return duration(kv, 0, DAY_MS, "0s to 1d", &c->track.keep_ms, err, errlen);
    if (!strcmp(k, "episode_window"))
        return duration(kv, 0, 3600000, "0s to 1h", &c->track.window_ms, err, errlen);
    if (!strcmp(k, "save_interval"))
        return duration(kv, 10000, DAY_MS, "10s to 1d", &c->save_interval_ms, err, errlen);
    if (!strcmp(k, "max_metrics")) {
        char *end;
        long n = strtol(v, &end, 10);
        if (end == v || *end || n < 1 || n > DETECT_REGISTRY_MAX_METRICS_LIMIT)
            return core_kv_error(err, errlen, kv, "max_metrics: '%s' is not a number from 1 to %d", v,
                       DETECT_REGISTRY_MAX_METRICS_LIMIT);
        c->max_metrics = (int)n;
        return 0;
    }
    if (!strcmp(k, "include"))
        return globs(kv, c->include, &c->ninclude, err, errlen);
    if (!strcmp(k, "exclude"))
        return globs(kv, c->exclude, &c->nexclude, err, errlen);
    return core_kv_error(err, errlen, kv,
               "unknown key '%s' in [detect] (expected enabled, threshold, for, keep_firing_for, "
               "episode_window, include, exclude, max_metrics or save_interval)", k);
}

int detect_registry_config_parse(const core_config *cfg, detect_registry_config *out, char *err, size_t errlen)
{
    detect_registry_config_defaults(out);
    for (int i = 0; i < cfg->nraw; i++) {
        if (strcmp(cfg->raw[i].section, "detect"))
            continue;
        int rc = apply_key(out, &cfg->raw[i], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

int detect_registry_config_check(const core_config *cfg, char *err, size_t errlen)
{
    detect_registry_config *c = malloc(sizeof *c);
    if (!c) {
        snprintf(err, errlen, "[detect]: out of memory");
        return -ENOMEM;
    }
    int rc = detect_registry_config_parse(cfg, c, err, errlen);
    free(c);
    return rc;
}

static bool glob_match(const char *g, const char *name, const char *key)
{
    return fnmatch(g, strchr(g, '{') ? key : name, 0) == 0;
}

bool detect_registry_config_match(const detect_registry_config *c, const char *name, const char *labels)
{
    char key[DETECT_KEY_MAX];
    snprintf(key, sizeof key, "%s%s%s%s", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "");
    bool in = false;
    for (int i = 0; i < c->ninclude && !in; i++)
        in = glob_match(c->include[i], name, key);
    for (int i = 0; i < c->nexclude && in; i++)
        in = !glob_match(c->exclude[i], name, key);
    return in;
}
