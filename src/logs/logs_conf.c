/* logs_conf.c: the log watch's configuration: [logs] (enabled, journal,
 * journal_dir, file, new_template_grace, burst) and the log keys of
 * [service.X] (log_file; unit names its journal entries). Every error names
 * the file and line it comes from; later keys win, repeatable keys add. */
#include "logs/logs.h"
#include "logs/watch_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_GRACE_MS (10 * 60000LL)
#define DEFAULT_BURST 10.0

void logs_conf_free(logs_conf *c)
{
    for (int i = 0; i < c->nfiles; i++)
        free(c->files[i].path);
    free(c->files);
    free(c->svcs);
    memset(c, 0, sizeof *c);
}

static bool good_name(const char *s)
{
    if (!*s || strlen(s) >= LOGS_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("._-@:", *s))
            return false;
    return true;
}

static int add_file(logs_conf *c, const core_kv *kv, const char *name, const char *path, char *err, size_t errlen)
{
    if (!good_name(name))
        return core_kv_error(err, errlen, kv, "%s: bad source name '%s' (letters, digits and ._-@: only, "
                             "at most %d characters)", kv->key, name, LOGS_NAME_MAX - 1);
    if (path[0] != '/')
        return core_kv_error(err, errlen, kv, "%s: '%s' is not an absolute path", kv->key, path);
    if (strlen(path) >= CORE_PATH_MAX)
        return core_kv_error(err, errlen, kv, "%s: path too long", kv->key);
    logs_conf_file *nf = realloc(c->files, (size_t)(c->nfiles + 1) * sizeof *nf);
    if (!nf)
        goto oom;
    c->files = nf;
    char *p = strdup(path);
    if (!p)
        goto oom;
    core_sncpy(nf[c->nfiles].name, sizeof nf[c->nfiles].name, name);
    nf[c->nfiles++].path = p;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
}

/* "NAME PATH" of [logs] file. */
static int logs_file_key(logs_conf *c, const core_kv *kv, char *err, size_t errlen)
{
    char buf[CORE_PATH_MAX + LOGS_NAME_MAX + 8];
    if (core_sncpy(buf, sizeof buf, kv->value))
        return core_kv_error(err, errlen, kv, "file: value too long");
    char *s = core_trim(buf);
    char *sp = s + strcspn(s, " \t");
    if (!*sp)
        return core_kv_error(err, errlen, kv, "file: '%s' is not NAME PATH (e.g. file = nginx /var/log/nginx/error.log)",
                             kv->value);
    *sp = 0;
    return add_file(c, kv, s, core_trim(sp + 1), err, errlen);
}

static int logs_key(logs_conf *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *k = kv->key, *v = kv->value;
    if (!strcmp(k, "enabled")) {
        if (core_parse_bool(v, &c->enabled))
            return core_kv_error(err, errlen, kv, "enabled: '%s' is not yes or no", v);
        return 0;
    }
    if (!strcmp(k, "journal")) {
        bool b;
        if (!strcmp(v, "auto"))
            c->journal = LOGS_JOURNAL_AUTO;
        else if (!core_parse_bool(v, &b))
            c->journal = b ? LOGS_JOURNAL_YES : LOGS_JOURNAL_NO;
        else
            return core_kv_error(err, errlen, kv, "journal: '%s' is not auto, yes or no", v);
        return 0;
    }
    if (!strcmp(k, "journal_dir")) {
        if (v[0] != '/')
            return core_kv_error(err, errlen, kv, "journal_dir: '%s' is not an absolute path", v);
        if (core_sncpy(c->journal_dir, sizeof c->journal_dir, v))
            return core_kv_error(err, errlen, kv, "journal_dir: path too long");
        return 0;
    }
    if (!strcmp(k, "file"))
        return logs_file_key(c, kv, err, errlen);
    if (!strcmp(k, "new_template_grace")) {
        if (core_parse_duration(v, &c->grace_ms) || c->grace_ms < 0)
            return core_kv_error(err, errlen, kv, "new_template_grace: '%s' is not a duration (e.g. 10m, 0s)", v);
        return 0;
    }
    if (!strcmp(k, "burst")) {
        char *end;
        double b = strtod(v, &end);
        if (end == v || *core_trim(end) || !isfinite(b) || b <= 1.0 || b > 1e6)
            return core_kv_error(err, errlen, kv, "burst: '%s' is not a factor above 1 (e.g. 10)", v);
        c->burst = b;
        return 0;
    }
    return core_kv_error(err, errlen, kv, "unknown key '%s' in [logs] (expected enabled, journal, journal_dir, "
                         "file, new_template_grace or burst)", k);
}

static logs_conf_svc *svc_of(logs_conf *c, const char *name)
{
    for (int i = 0; i < c->nsvcs; i++)
        if (!strcmp(c->svcs[i].name, name))
            return &c->svcs[i];
    logs_conf_svc *ns = realloc(c->svcs, (size_t)(c->nsvcs + 1) * sizeof *ns);
    if (!ns)
        return NULL;
    c->svcs = ns;
    memset(&ns[c->nsvcs], 0, sizeof ns[0]);
    core_sncpy(ns[c->nsvcs].name, sizeof ns[0].name, name);
    return &ns[c->nsvcs++];
}

/* Any key of [service.X]: the service is a source (its captured output);
 * unit names its journal entries. A name no source can have is left to heal. */
static int service_key(logs_conf *c, const core_kv *kv, char *err, size_t errlen)
{
    const char *name = kv->section + strlen("service.");
    if (!good_name(name))
        return 0;
    logs_conf_svc *s = svc_of(c, name);
    if (!s)
        return -ENOMEM;
    if (!strcmp(kv->key, "unit"))
        core_sncpy(s->unit, sizeof s->unit, kv->value);
    return 0;
}

int logs_conf_parse(const core_config *cfg, logs_conf *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->enabled = true;
    c->journal = LOGS_JOURNAL_AUTO;
    c->grace_ms = DEFAULT_GRACE_MS;
    c->burst = DEFAULT_BURST;
    core_sncpy(c->state_dir, sizeof c->state_dir, cfg->state_dir);
    for (int i = 0; i < cfg->nraw; i++) {
        const core_kv *kv = &cfg->raw[i];
        int rc = 0;
        if (!strcmp(kv->section, "logs"))
            rc = logs_key(c, kv, err, errlen);
        else if (!strncmp(kv->section, "service.", 8) && !strcmp(kv->key, "log_file"))
            rc = add_file(c, kv, kv->section + 8, kv->value, err, errlen);
        if (!rc && !strncmp(kv->section, "service.", 8))
            rc = service_key(c, kv, err, errlen);
        if (rc) {
            if (rc == -ENOMEM)
                snprintf(err, errlen, "out of memory");
            logs_conf_free(c);
            return rc;
        }
    }
    return 0;
}

int logs_config_check(const core_config *cfg, char *err, size_t errlen)
{
    logs_conf c;
    int rc = logs_conf_parse(cfg, &c, err, errlen);
    if (!rc)
        logs_conf_free(&c);
    return rc;
}
