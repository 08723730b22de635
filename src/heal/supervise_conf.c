/* supervise_conf.c: service configuration: defaults, one INI key at a time
 * (heal_service_config_set), command text to argv (no shell), signal names,
 * and the parser of `systemctl show` output. */
#include "heal/supervise.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void heal_service_config_init(heal_service_config *c, const char *name, heal_service_type type)
{
    memset(c, 0, sizeof *c);
    if (name)
        core_sncpy(c->name, sizeof c->name, name);
    c->type = type;
    c->command_timeout_ms = 30000;
    c->interval_ms = 1000;
    c->autorestart = type != HEAL_SVC_SYSTEMD;
    c->backoff_initial_ms = 100;
    c->backoff_max_ms = 30000;
    c->healthy_after_ms = 10000;
    c->stop_signal = SIGTERM;
    c->stop_timeout_ms = 10000;
    c->log_max_bytes = 1024 * 1024;
    c->log_keep = 3;
}

const char *heal_service_state_name(heal_service_state s)
{
    static const char *const n[] = {"stopped", "starting", "running", "backoff", "stopping", "failed"};
    return (unsigned)s < sizeof n / sizeof n[0] ? n[s] : "?";
}

const char *heal_service_type_name(heal_service_type t)
{
    static const char *const n[] = {"supervised", "external", "systemd"};
    return (unsigned)t < sizeof n / sizeof n[0] ? n[t] : "?";
}

int heal_svc_signal_parse(const char *s)
{
    if (!s || !*s)
        return -1;
    if (isdigit((unsigned char)*s)) {
        char *end;
        long v = strtol(s, &end, 10);
        return (*end || v < 1 || v >= NSIG) ? -1 : (int)v;
    }
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    for (int i = 1; i < NSIG; i++) {
        const char *a = sigabbrev_np(i);
        if (a && !strcasecmp(a, s))
            return i;
    }
    return -1;
}

int heal_svc_split_argv(const char *text, char ***argv, char *err, size_t errlen)
{
    *argv = NULL;
    size_t len = strlen(text);
    /* worst case: every other byte starts a word */
    size_t nptr = len / 2 + 2;
    char **v = malloc(nptr * sizeof(char *) + len + 1);
    if (!v)
        return -ENOMEM;
    char *out = (char *)(v + nptr);
    int argc = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        v[argc++] = out;
        bool quoted = false;
        while (*p && (quoted || (*p != ' ' && *p != '\t'))) {
            if (*p == '"') {
                quoted = !quoted;
                p++;
            } else if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                *out++ = p[1];
                p += 2;
            } else {
                *out++ = *p++;
            }
        }
        *out++ = 0;
        if (quoted) {
            snprintf(err, errlen, "unterminated \" in '%s'", text);
            free(v);
            return -EINVAL;
        }
    }
    if (!argc) {
        snprintf(err, errlen, "empty command");
        free(v);
        return -EINVAL;
    }
    v[argc] = NULL;
    *argv = v;
    return argc;
}

int heal_svc_parse_systemctl_show(const char *text, heal_service_state *state, pid_t *pid)
{
    bool got_state = false;
    *pid = 0;
    *state = HEAL_SVC_STOPPED;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        char line[256];
        if (n >= sizeof line)
            n = sizeof line - 1;
        memcpy(line, p, n);
        line[n] = 0;
        char *v = strchr(line, '=');
        if (v) {
            *v++ = 0;
            v = core_trim(v);
            v[strcspn(v, " \t\r")] = 0;
            if (!strcmp(line, "ActiveState")) {
                got_state = true;
                if (!strcmp(v, "active") || !strcmp(v, "reloading"))
                    *state = HEAL_SVC_RUNNING;
                else if (!strcmp(v, "activating"))
                    *state = HEAL_SVC_STARTING;
                else if (!strcmp(v, "deactivating"))
                    *state = HEAL_SVC_STOPPING;
                else if (!strcmp(v, "failed"))
                    *state = HEAL_SVC_FAILED;
                else if (!strcmp(v, "inactive") || !strcmp(v, "maintenance"))
                    *state = HEAL_SVC_STOPPED;
                else
                    return -EINVAL;
            } else if (!strcmp(line, "MainPID")) {
                char *end;
                long x = strtol(v, &end, 10);
                if (end == v || *end || x < 0)
                    return -EINVAL;
                *pid = (pid_t)x;
            }
        }
        p += nl ? (size_t)(nl - p) + 1 : n;
    }
    return got_state ? 0 : -EINVAL;
}

/* ---- INI keys -------------------------------------------------------------- */

static int set_str(char *dst, size_t n, const char *key, const char *v, char *err, size_t errlen)
{
    if (core_sncpy(dst, n, v)) {
        snprintf(err, errlen, "%s: value too long (max %zu bytes)", key, n - 1);
        return -EINVAL;
    }
    return 0;
}

static int set_dur(int64_t *dst, const char *key, const char *v, bool allow_zero, char *err, size_t errlen)
{
    int64_t ms;
    if (core_parse_duration(v, &ms) || ms < 0 || (!allow_zero && ms == 0)) {
        snprintf(err, errlen, "%s: '%s' is not a duration (e.g. 500ms, 10s, 2m)", key, v);
        return -EINVAL;
    }
    *dst = ms;
    return 0;
}

static bool valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.@-", *s))
            return false;
    return true;
}

/* Appends the blank- or comma-separated words of v to a fixed list. */
static int append_words(char (*list)[HEAL_ARG_MAX], int *cnt, int max, size_t width, const char *key,
                        const char *v, const char *seps, char *err, size_t errlen)
{
    char tmp[HEAL_ARG_MAX * 4];
    if (core_sncpy(tmp, sizeof tmp, v)) {
        snprintf(err, errlen, "%s: value too long", key);
        return -EINVAL;
    }
    char *save = NULL;
    for (char *w = strtok_r(tmp, seps, &save); w; w = strtok_r(NULL, seps, &save)) {
        if (*cnt >= max) {
            snprintf(err, errlen, "%s: more than %d entries", key, max);
            return -EINVAL;
        }
        if (strlen(w) >= width) {
            snprintf(err, errlen, "%s: '%s' too long", key, w);
            return -EINVAL;
        }
        strcpy(list[(*cnt)++], w);
    }
    return 0;
}

int heal_service_config_set(heal_service_config *c, const char *key, const char *value, char *err, size_t errlen)
{
    const char *v = value ? value : "";
    bool b;
    if (!strcmp(key, "type")) {
        heal_service_type t;
        if (!strcmp(v, "supervised"))
            t = HEAL_SVC_SUPERVISED;
        else if (!strcmp(v, "external"))
            t = HEAL_SVC_EXTERNAL;
        else if (!strcmp(v, "systemd"))
            t = HEAL_SVC_SYSTEMD;
        else {
            snprintf(err, errlen, "type: '%s' is not one of supervised, external, systemd", v);
            return -EINVAL;
        }
        if (t != c->type)
            c->autorestart = t != HEAL_SVC_SYSTEMD;
        c->type = t;
        return 0;
    }
    if (!strcmp(key, "command"))
        return set_str(c->command, sizeof c->command, key, v, err, errlen);
    if (!strcmp(key, "cwd"))
        return set_str(c->cwd, sizeof c->cwd, key, v, err, errlen);
    if (!strcmp(key, "env")) {
        int before = c->nenv;
        int rc = append_words(c->env, &c->nenv, HEAL_SVC_MAX_ENV, HEAL_ARG_MAX, key, v, " \t", err, errlen);
        for (int i = before; !rc && i < c->nenv; i++)
            if (!strchr(c->env[i], '=') || c->env[i][0] == '=') {
                snprintf(err, errlen, "env: '%s' is not KEY=VALUE", c->env[i]);
                rc = -EINVAL;
            }
        return rc;
    }
    if (!strcmp(key, "user"))
        return set_str(c->user, sizeof c->user, key, v, err, errlen);
    if (!strcmp(key, "group"))
        return set_str(c->group, sizeof c->group, key, v, err, errlen);
    if (!strcmp(key, "pidfile"))
        return set_str(c->pidfile, sizeof c->pidfile, key, v, err, errlen);
    if (!strcmp(key, "match"))
        return set_str(c->match, sizeof c->match, key, v, err, errlen);
    if (!strcmp(key, "start"))
        return set_str(c->start_cmd, sizeof c->start_cmd, key, v, err, errlen);
    if (!strcmp(key, "stop"))
        return set_str(c->stop_cmd, sizeof c->stop_cmd, key, v, err, errlen);
    if (!strcmp(key, "restart"))
        return set_str(c->restart_cmd, sizeof c->restart_cmd, key, v, err, errlen);
    if (!strcmp(key, "unit"))
        return set_str(c->unit, sizeof c->unit, key, v, err, errlen);
    if (!strcmp(key, "timeout"))
        return set_dur(&c->command_timeout_ms, key, v, false, err, errlen);
    if (!strcmp(key, "interval"))
        return set_dur(&c->interval_ms, key, v, false, err, errlen);
    if (!strcmp(key, "backoff"))
        return set_dur(&c->backoff_initial_ms, key, v, true, err, errlen);
    if (!strcmp(key, "backoff_max"))
        return set_dur(&c->backoff_max_ms, key, v, true, err, errlen);
    if (!strcmp(key, "healthy_after"))
        return set_dur(&c->healthy_after_ms, key, v, true, err, errlen);
    if (!strcmp(key, "stop_timeout"))
        return set_dur(&c->stop_timeout_ms, key, v, true, err, errlen);
    if (!strcmp(key, "depends")) {
        char tmp[HEAL_SVC_MAX_DEPS][HEAL_ARG_MAX];
        int n = 0;
        int rc = append_words(tmp, &n, HEAL_SVC_MAX_DEPS - c->ndepends, HEAL_NAME_MAX, key, v, " \t,", err,
                              errlen);
        if (rc)
            return rc;
        for (int i = 0; i < n; i++) {
            if (!valid_name(tmp[i])) {
                snprintf(err, errlen, "depends: '%s' is not a service name", tmp[i]);
                return -EINVAL;
            }
            strcpy(c->depends[c->ndepends++], tmp[i]);
        }
        return 0;
    }
    if (!strcmp(key, "autorestart")) {
        if (core_parse_bool(v, &b)) {
            snprintf(err, errlen, "autorestart: '%s' is not yes or no", v);
            return -EINVAL;
        }
        c->autorestart = b;
        return 0;
    }
    if (!strcmp(key, "stop_signal")) {
        int s = heal_svc_signal_parse(v);
        if (s < 0) {
            snprintf(err, errlen, "stop_signal: '%s' is not a signal (e.g. TERM, INT, QUIT)", v);
            return -EINVAL;
        }
        c->stop_signal = s;
        return 0;
    }
    if (!strcmp(key, "log_max")) {
        uint64_t sz;
        if (core_parse_size(v, &sz) || sz < 1024) {
            snprintf(err, errlen, "log_max: '%s' is not a size of at least 1KB", v);
            return -EINVAL;
        }
        c->log_max_bytes = sz;
        return 0;
    }
    if (!strcmp(key, "log_keep")) {
        char *end;
        long k = strtol(v, &end, 10);
        if (end == v || *end || k < 0 || k > 100) {
            snprintf(err, errlen, "log_keep: '%s' is not a number 0..100", v);
            return -EINVAL;
        }
        c->log_keep = (int)k;
        return 0;
    }
    return -ENOENT;
}

bool heal_svc_valid_name(const char *s)
{
    return valid_name(s);
}
