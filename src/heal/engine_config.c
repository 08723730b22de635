/* engine_config.c: reads the raw [heal], [service.NAME] and [alert.NAME]
 * keys kept by the config loader into the engine's configuration structs,
 * checking every value and naming FILE:LINE (FILE:LINE:COL for rules) on
 * error. heal_config_check is this with the result thrown away. */
#include "heal/engine_int.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "10 per 1m" */
static int parse_rate(const char *v, heal_rate *r)
{
    char num[32], per[16], dur[32], extra[8];
    if (sscanf(v, "%31s %15s %31s %7s", num, per, dur, extra) != 3 || strcmp(per, "per"))
        return -EINVAL;
    char *end;
    long n = strtol(num, &end, 10);
    int64_t ms;
    if (*end || n < 0 || n > HEAL_RATE_MAX || core_parse_duration(dur, &ms) || ms <= 0)
        return -EINVAL;
    r->max = (int)n;
    r->window_ms = ms;
    return 0;
}

/* "5 restarts within 1m" */
static int parse_flap(const char *v, int *k, int64_t *window)
{
    char num[32], word[16], within[16], dur[32], extra[8];
    if (sscanf(v, "%31s %15s %15s %31s %7s", num, word, within, dur, extra) != 4 ||
        (strcmp(word, "restarts") && strcmp(word, "restart")) || strcmp(within, "within"))
        return -EINVAL;
    char *end;
    long n = strtol(num, &end, 10);
    if (*end || n < 0 || n > 1000 || core_parse_duration(dur, window) || *window <= 0)
        return -EINVAL;
    *k = (int)n;
    return 0;
}

static int parse_dur_key(const core_kv *kv, int64_t *ms, char *err, size_t errlen)
{
    if (core_parse_duration(kv->value, ms) || *ms <= 0)
        return core_kv_error(err, errlen, kv, "%s: '%s' is not a duration (e.g. 500ms, 10s, 2m)", kv->key, kv->value);
    return 0;
}

static int add_rule(heal_rule **rules, int *n, const core_kv *kv, char *err, size_t errlen)
{
    heal_rule *grown = realloc(*rules, (size_t)(*n + 1) * sizeof **rules);
    if (!grown)
        return core_kv_error(err, errlen, kv, "out of memory");
    *rules = grown;
    char why[512];
    if (heal_rule_parse(kv->value, kv->file, kv->line, &grown[*n], why, sizeof why)) {
        snprintf(err, errlen, "%s", why);
        return -EINVAL;
    }
    (*n)++;
    return 0;
}

/* Policy keys shared by [heal] and [service.NAME]: 1 = handled, 0 = not
 * one of them, < 0 = error. */
static int policy_key(const core_kv *kv, heal_policy_service *ps, char *err, size_t errlen)
{
    if (!strcmp(kv->key, "allow")) {
        char why[256];
        if (heal_policy_allow_parse(kv->value, &ps->allow, why, sizeof why))
            return core_kv_error(err, errlen, kv, "allow: %s", why);
        return 1;
    }
    return 0;
}

/* [evolve]: genome changes go through the policy as service "cell"; the
 * daemon reads probation itself (src/daemon). Other evolve keys: add them here. */
static int evolve_key(eng_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    int64_t ms;
    if (!strcmp(kv->key, "probation"))
        return parse_dur_key(kv, &ms, err, errlen);
    if (strcmp(kv->key, "changes"))
        return core_kv_error(err, errlen, kv, "unknown key '%s' in [evolve] (expected changes or probation)", kv->key);
    c->cell.allow = HEAL_ALLOW(HEAL_ACT_GENOME);
    if (!strcmp(kv->value, "execute"))
        c->cell.mode = HEAL_MODE_HEAL;
    else if (!strcmp(kv->value, "approve"))
        c->cell.mode = HEAL_MODE_SUGGEST;
    else if (!strcmp(kv->value, "refuse"))
        c->cell.allow = 0;
    else
        return core_kv_error(err, errlen, kv, "changes: '%s' is not execute, approve or refuse", kv->value);
    return 0;
}

static int heal_key(eng_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    int rc = policy_key(kv, &c->machine, err, errlen);
    if (rc)
        return rc < 0 ? rc : 0;
    if (!strcmp(k, "mode")) {
        int m = heal_mode_parse(v);
        if (m < 0 || m == HEAL_MODE_INHERIT)
            return core_kv_error(err, errlen, kv, "mode: '%s' is not observe, suggest or heal", v);
        c->pol.mode = (heal_mode)m;
    } else if (!strcmp(k, "dry_run")) {
        if (core_parse_bool(v, &c->pol.dry_run))
            return core_kv_error(err, errlen, kv, "dry_run: '%s' is not yes or no", v);
    } else if (!strcmp(k, "max_actions")) {
        if (parse_rate(v, &c->pol.global))
            return core_kv_error(err, errlen, kv, "max_actions: '%s' is not 'N per DURATION' (e.g. 10 per 1m)", v);
    } else if (!strcmp(k, "service_max_actions")) {
        if (parse_rate(v, &c->pol.service))
            return core_kv_error(err, errlen, kv, "service_max_actions: '%s' is not 'N per DURATION' (e.g. 6 per 5m)", v);
    } else if (!strcmp(k, "flap")) {
        if (parse_flap(v, &c->pol.flap_restarts, &c->pol.flap_window_ms))
            return core_kv_error(err, errlen, kv, "flap: '%s' is not 'N restarts within DURATION' (e.g. 5 restarts within 1m)", v);
    } else if (!strcmp(k, "flap_cooldown")) {
        return parse_dur_key(kv, &c->pol.flap_cooldown_ms, err, errlen);
    } else if (!strcmp(k, "verify")) {
        return parse_dur_key(kv, &c->verify_ms, err, errlen);
    } else if (!strcmp(k, "rule")) {
        return add_rule(&c->rules, &c->nrules, kv, err, errlen);
    } else {
        return core_kv_error(err, errlen, kv, "unknown key '%s' in [heal]", k);
    }
    return 0;
}

static int alert_key(eng_alert_cfg *a, const core_kv *kv, char *err, size_t errlen)
{
    if (!strcmp(kv->key, "url")) {
        if ((strncmp(kv->value, "http://", 7) && strncmp(kv->value, "https://", 8)) ||
            core_sncpy(a->url, sizeof a->url, kv->value))
            return core_kv_error(err, errlen, kv, "url: '%s' is not an http:// or https:// URL", kv->value);
        return 0;
    }
    if (!strcmp(kv->key, "timeout"))
        return parse_dur_key(kv, &a->timeout_ms, err, errlen);
    return core_kv_error(err, errlen, kv, "unknown key '%s' in [%s] (expected url or timeout)", kv->key, kv->section);
}

/* config_path = PATH: absolute, no "." or ".." parts; "//" and a trailing
 * '/' are dropped. The same path twice is kept once. */
static int add_config_path(eng_svc_cfg *s, const core_kv *kv, char *err, size_t errlen)
{
    const char *v = kv->value;
    char norm[HEAL_ARG_MAX];
    size_t k = 0;
    if (v[0] != '/')
        return core_kv_error(err, errlen, kv, "config_path: '%s' is not an absolute path", v);
    for (size_t i = 0; v[i];) {
        while (v[i] == '/')
            i++;
        size_t len = strcspn(v + i, "/");
        if ((len == 1 && v[i] == '.') || (len == 2 && v[i] == '.' && v[i + 1] == '.'))
            return core_kv_error(err, errlen, kv, "config_path: '.' and '..' are not allowed in '%s'", v);
        if (len && k + len + 1 >= sizeof norm)
            return core_kv_error(err, errlen, kv, "config_path: longer than %zu characters", sizeof norm - 1);
        if (len) {
            norm[k++] = '/';
            memcpy(norm + k, v + i, len);
            k += len;
        }
        i += len;
    }
    if (!k)
        norm[k++] = '/';
    norm[k] = 0;
    for (int i = 0; i < s->nconfig_paths; i++)
        if (!strcmp(s->config_paths[i], norm))
            return 0;
    if (s->nconfig_paths >= ENG_CONFIG_PATHS_MAX)
        return core_kv_error(err, errlen, kv, "config_path: at most %d per service", ENG_CONFIG_PATHS_MAX);
    char (*grown)[HEAL_ARG_MAX] = realloc(s->config_paths, (size_t)(s->nconfig_paths + 1) * sizeof *grown);
    if (!grown)
        return core_kv_error(err, errlen, kv, "out of memory");
    s->config_paths = grown;
    memcpy(grown[s->nconfig_paths++], norm, k + 1);
    return 0;
}

static int svc_key(eng_svc_cfg *s, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    int rc = policy_key(kv, &s->ps, err, errlen);
    if (rc)
        return rc < 0 ? rc : 0;
    if (!strcmp(k, "rule"))
        return add_rule(&s->rules, &s->nrules, kv, err, errlen);
    if (!strcmp(k, "log_file")) /* followed by the logs module (src/logs/logwatch.c) */
        return 0;
    if (!strcmp(k, "config_path")) /* known-good copies, file.changed, restore (engine_files.c) */
        return add_config_path(s, kv, err, errlen);
    if (!strcmp(k, "mode")) {
        int m = heal_mode_parse(v);
        if (m < 0 || m == HEAL_MODE_INHERIT)
            return core_kv_error(err, errlen, kv, "mode: '%s' is not observe, suggest or heal", v);
        s->ps.mode = (heal_mode)m;
        return 0;
    }
    if (!strcmp(k, "max_actions")) {
        if (parse_rate(v, &s->ps.rate))
            return core_kv_error(err, errlen, kv, "max_actions: '%s' is not 'N per DURATION' (e.g. 6 per 5m)", v);
        return 0;
    }
    if (!strcmp(k, "probe_interval")) {
        rc = parse_dur_key(kv, &s->probe_interval_ms, err, errlen);
        if (!rc && s->probe_interval_ms < HEAL_PROBE_INTERVAL_MIN_MS)
            return core_kv_error(err, errlen, kv, "probe_interval: at least 100ms");
        return rc;
    }
    char why[512];
    rc = heal_service_config_set(&s->sc, k, v, why, sizeof why);
    if (rc == -ENOENT)
        return core_kv_error(err, errlen, kv, "unknown key '%s' in [%s]", k, kv->section);
    if (rc)
        return core_kv_error(err, errlen, kv, "%s", why);
    return 0;
}

/* The service or alert entry for a section, created at its first key. */
static eng_svc_cfg *svc_for(eng_cfg *c, const core_config *cfg, const core_kv *kv, char *err, size_t errlen)
{
    const char *name = kv->section + 8;
    for (int i = 0; i < c->nsvcs; i++)
        if (!strcmp(c->svcs[i].sc.name, name))
            return &c->svcs[i];
    if (!heal_svc_valid_name(name) || strlen(name) >= HEAL_NAME_MAX) {
        core_kv_error(err, errlen, kv, "[%s]: '%s' is not a service name ([A-Za-z0-9_.@-], at most %d)", kv->section,
            name, HEAL_NAME_MAX - 1);
        return NULL;
    }
    if (!strcmp(name, HEAL_CELL_TARGET)) {
        core_kv_error(err, errlen, kv, "[%s]: '%s' is reserved for the cell's own changes ([evolve])", kv->section,
                      name);
        return NULL;
    }
    eng_svc_cfg *grown = realloc(c->svcs, (size_t)(c->nsvcs + 1) * sizeof *grown);
    if (!grown) {
        core_kv_error(err, errlen, kv, "out of memory");
        return NULL;
    }
    c->svcs = grown;
    eng_svc_cfg *s = &grown[c->nsvcs++];
    memset(s, 0, sizeof *s);
    /* the type decides the defaults: find it first */
    heal_service_type t = HEAL_SVC_SUPERVISED;
    for (int i = 0; i < cfg->nraw; i++)
        if (!strcmp(cfg->raw[i].section, kv->section) && !strcmp(cfg->raw[i].key, "type")) {
            t = !strcmp(cfg->raw[i].value, "external") ? HEAL_SVC_EXTERNAL
                : !strcmp(cfg->raw[i].value, "systemd") ? HEAL_SVC_SYSTEMD : HEAL_SVC_SUPERVISED;
        }
    heal_service_config_init(&s->sc, name, t);
    heal_policy_service_defaults(&s->ps, name);
    snprintf(s->file, sizeof s->file, "%s", kv->file);
    s->line = kv->line;
    return s;
}

static eng_alert_cfg *alert_for(eng_cfg *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *name = kv->section + 6;
    for (int i = 0; i < c->nalerts; i++)
        if (!strcmp(c->alerts[i].name, name))
            return &c->alerts[i];
    if (!heal_svc_valid_name(name) || strlen(name) >= HEAL_NAME_MAX) {
        core_kv_error(err, errlen, kv, "[%s]: '%s' is not an alert name ([A-Za-z0-9_.@-])", kv->section, name);
        return NULL;
    }
    eng_alert_cfg *grown = realloc(c->alerts, (size_t)(c->nalerts + 1) * sizeof *grown);
    if (!grown) {
        core_kv_error(err, errlen, kv, "out of memory");
        return NULL;
    }
    c->alerts = grown;
    eng_alert_cfg *a = &grown[c->nalerts++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->timeout_ms = 5000;
    return a;
}

/* ---- cross checks ------------------------------------------------------------ */

static int find_svc(const eng_cfg *c, const char *name)
{
    for (int i = 0; i < c->nsvcs; i++)
        if (!strcmp(c->svcs[i].sc.name, name))
            return i;
    return -1;
}

static bool cycle_from(const eng_cfg *c, int i, int *color)
{
    color[i] = 1;
    for (int k = 0; k < c->svcs[i].sc.ndepends; k++) {
        int j = find_svc(c, c->svcs[i].sc.depends[k]);
        if (j < 0)
            continue;
        if (color[j] == 1 || (color[j] == 0 && cycle_from(c, j, color)))
            return true;
    }
    color[i] = 2;
    return false;
}

static int check_rule_refs(const eng_cfg *c, const heal_rule *r, const eng_svc_cfg *s, char *err, size_t errlen)
{
    for (int a = 0; a < r->nactions; a++) {
        const heal_action *act = &r->actions[a];
        if (act->kind == HEAL_ACT_ALERT && act->target[0]) {
            bool found = false;
            for (int i = 0; i < c->nalerts; i++)
                found |= !strcmp(c->alerts[i].name, act->target);
            if (!found) {
                snprintf(err, errlen, "%s:%d: alert '%s': no [alert.%s] section", r->file, r->line, act->target,
                         act->target);
                return -EINVAL;
            }
        }
        bool svc_action = act->kind <= HEAL_ACT_LIMIT_CPU || act->kind == HEAL_ACT_FREEZE || act->kind == HEAL_ACT_THAW ||
                          act->kind == HEAL_ACT_RESTORE;
        if (act->kind == HEAL_ACT_RESTORE && s) {
            bool found = false;
            for (int i = 0; i < s->nconfig_paths; i++)
                found |= !strcmp(s->config_paths[i], act->path);
            if (!found) {
                snprintf(err, errlen, "%s:%d: restore %s: not one of [service.%s]'s config_path", r->file, r->line,
                         act->path, s->sc.name);
                return -EINVAL;
            }
        }
        if (svc_action && !s) {
            snprintf(err, errlen, "%s:%d: '%s' needs a service: write this rule in a [service.NAME] section",
                     r->file, r->line, heal_action_name(act->kind));
            return -EINVAL;
        }
    }
    const heal_condition *cd = &r->cond;
    if (!s && (cd->kind == HEAL_COND_RESTARTS ||
               (cd->kind == HEAL_COND_PROBE_FAILED && cd->probe.kind == HEAL_PROBE_PROCESS) ||
               (cd->kind == HEAL_COND_RESOURCE && cd->res.kind <= HEAL_RES_FDS))) {
        snprintf(err, errlen, "%s:%d: this condition is about a service: write it in a [service.NAME] section",
                 r->file, r->line);
        return -EINVAL;
    }
    if (cd->kind == HEAL_COND_PROBE_FAILED && cd->probe.kind == HEAL_PROBE_FILE &&
        (cd->probe.file_check == HEAL_FILE_CHANGED ||
         ((cd->probe.file_check == HEAL_FILE_AGE || cd->probe.file_check == HEAL_FILE_SIZE) &&
          cd->probe.file_cmp != HEAL_CMP_LT))) {
        snprintf(err, errlen, "%s:%d: file probes support 'exists', 'age < D', 'size < S' and 'checksum' only",
                 r->file, r->line);
        return -EINVAL;
    }
    int64_t iv, to;
    char why[256];
    if (cd->kind == HEAL_COND_PROBE_FAILED &&
        heal_probe_timing(&cd->probe, s ? s->probe_interval_ms : 0, &iv, &to, why, sizeof why)) {
        snprintf(err, errlen, "%s:%d: %s", r->file, r->line, why);
        return -EINVAL;
    }
    return 0;
}

static int cross_check(const eng_cfg *c, char *err, size_t errlen)
{
    for (int i = 0; i < c->nsvcs; i++) {
        const eng_svc_cfg *s = &c->svcs[i];
        for (int k = 0; k < s->sc.ndepends; k++)
            if (find_svc(c, s->sc.depends[k]) < 0) {
                snprintf(err, errlen, "%s:%d: [service.%s]: unknown dependency '%s'", s->file, s->line, s->sc.name,
                         s->sc.depends[k]);
                return -EINVAL;
            }
        if (s->sc.type == HEAL_SVC_SUPERVISED && !s->sc.command[0]) {
            snprintf(err, errlen, "%s:%d: [service.%s]: a supervised service needs 'command'", s->file, s->line,
                     s->sc.name);
            return -EINVAL;
        }
        if (s->sc.type == HEAL_SVC_EXTERNAL && !s->sc.pidfile[0] && !s->sc.match[0]) {
            snprintf(err, errlen, "%s:%d: [service.%s]: an external service needs 'pidfile' or 'match'", s->file,
                     s->line, s->sc.name);
            return -EINVAL;
        }
        for (int r = 0; r < s->nrules; r++)
            if (check_rule_refs(c, &s->rules[r], s, err, errlen))
                return -EINVAL;
    }
    int *color = calloc((size_t)c->nsvcs + 1, sizeof *color);
    if (!color)
        return -ENOMEM;
    for (int i = 0; i < c->nsvcs; i++)
        if (!color[i] && cycle_from(c, i, color)) {
            snprintf(err, errlen, "%s:%d: [service.%s]: dependency cycle", c->svcs[i].file, c->svcs[i].line,
                     c->svcs[i].sc.name);
            free(color);
            return -EINVAL;
        }
    free(color);
    for (int r = 0; r < c->nrules; r++)
        if (check_rule_refs(c, &c->rules[r], NULL, err, errlen))
            return -EINVAL;
    return 0;
}

/* ---- entry points ------------------------------------------------------------- */

static int apply_key(eng_cfg *c, const core_config *cfg, const core_kv *kv, char *err, size_t errlen)
{
    if (!strcmp(kv->section, "heal"))
        return heal_key(c, kv, err, errlen);
    if (!strncmp(kv->section, "service.", 8)) {
        eng_svc_cfg *s = svc_for(c, cfg, kv, err, errlen);
        return s ? svc_key(s, kv, err, errlen) : -EINVAL;
    }
    if (!strncmp(kv->section, "alert.", 6)) {
        eng_alert_cfg *a = alert_for(c, kv, err, errlen);
        return a ? alert_key(a, kv, err, errlen) : -EINVAL;
    }
    if (!strcmp(kv->section, "evolve"))
        return evolve_key(c, kv, err, errlen);
    if (!strcmp(kv->section, "detect")) /* ippocd's anomaly detection reads it (src/detect/registry_conf.c) */
        return 0;
    if (!strcmp(kv->section, "logs") || !strcmp(kv->section, "brain")) /* src/logs/, src/brain/ read them */
        return 0;
    if (!strcmp(kv->section, "llm") || !strcmp(kv->section, "knowledge") || !strcmp(kv->section, "prefs") ||
        !strcmp(kv->section, "dream")) /* Brain II: src/llm/, src/memory/ and src/brain/ read them */
        return 0;
    if (!strcmp(kv->section, "mesh")) /* src/mesh/cell_config.c reads it */
        return 0;
    return core_kv_error(err, errlen, kv, "unknown section [%s]", kv->section);
}

int eng_cfg_build(const core_config *cfg, eng_cfg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    heal_policy_config_defaults(&out->pol);
    heal_policy_service_defaults(&out->machine, "");
    heal_policy_service_defaults(&out->cell, HEAL_CELL_TARGET); /* [evolve] changes = approve */
    out->cell.allow = HEAL_ALLOW(HEAL_ACT_GENOME);
    out->cell.mode = HEAL_MODE_SUGGEST;
    out->verify_ms = ENG_VERIFY_MS;
    for (int i = 0; i < cfg->nraw; i++) {
        int rc = apply_key(out, cfg, &cfg->raw[i], err, errlen);
        if (rc) {
            eng_cfg_free(out);
            return rc;
        }
    }
    for (int i = 0; i < out->nalerts; i++)
        if (!out->alerts[i].url[0]) {
            snprintf(err, errlen, "[alert.%s]: 'url' is required", out->alerts[i].name);
            eng_cfg_free(out);
            return -EINVAL;
        }
    int rc = cross_check(out, err, errlen);
    if (rc)
        eng_cfg_free(out);
    return rc;
}

void eng_cfg_free(eng_cfg *c)
{
    for (int i = 0; i < c->nsvcs; i++) {
        for (int r = 0; r < c->svcs[i].nrules; r++)
            heal_rule_free(&c->svcs[i].rules[r]);
        free(c->svcs[i].rules);
        free(c->svcs[i].config_paths);
    }
    for (int r = 0; r < c->nrules; r++)
        heal_rule_free(&c->rules[r]);
    free(c->rules);
    free(c->svcs);
    free(c->alerts);
    memset(c, 0, sizeof *c);
}

bool eng_svc_cfg_same(const heal_service_config *a, const heal_service_config *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

int heal_config_check(const core_config *cfg, char *err, size_t errlen)
{
    eng_cfg c;
    int rc = eng_cfg_build(cfg, &c, err, errlen);
    if (rc)
        return rc;
    char why[512];
    heal_policy *p = NULL;
    rc = heal_policy_new(&c.pol, &p, why, sizeof why);
    if (rc)
        snprintf(err, errlen, "[heal]: %s", why);
    heal_policy_free(p);
    eng_cfg_free(&c);
    return rc;
}
