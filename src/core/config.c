/* config.c: the daemon's configuration: embedded defaults, INI files
 * (/etc/ippoc/ippoc.conf then conf.d/NAME.conf in name order, parsed by inih),
 * and validation. Errors name file:line and the reason, so a bad reload can
 * be rejected while the old configuration keeps running. */
#include "core/core.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *const group_names[] = {
    "cpu", "load", "memory", "psi", "filesystem", "disk", "net", "netstat", "vmstat",
    "fds", "processes", "tcp", "interrupts", "softirqs", "process", "apps", "cgroup", "self",
    "gpu",
};
#define NGROUP_NAMES ((int)(sizeof group_names / sizeof group_names[0]))

void core_config_defaults(core_config *c)
{
    memset(c, 0, sizeof *c);
    core_sncpy(c->state_dir, sizeof c->state_dir, "/var/lib/ippoc");
    c->log_level = CORE_LOG_INFO;
    core_sncpy(c->api_listen, sizeof c->api_listen, "127.0.0.1:7070");
    c->api_max_connections = 64;
    c->api_max_points = 11000;
    c->sense_interval_ms = 1000;
    for (int i = 0; i < NGROUP_NAMES && i < CORE_SENSE_GROUPS; i++) {
        c->groups[i].name = group_names[i];
        c->groups[i].interval_ms = 0; /* 0: follow [sense] interval */
        c->groups[i].enabled = true;
    }
    c->ngroups = NGROUP_NAMES;
    c->watch_cgroup[c->nwatch_cgroup++] = strdup("system.slice/*.service");
    core_sncpy(c->proc_root, sizeof c->proc_root, "/proc");
    core_sncpy(c->sys_root, sizeof c->sys_root, "/sys");
    core_sncpy(c->textfile_dir, sizeof c->textfile_dir, "/var/lib/prometheus/node-exporter");
    core_sncpy(c->udev_data_dir, sizeof c->udev_data_dir, "/run/udev/data");
    c->sense_source = CORE_SOURCE_AUTO;
    core_sncpy(c->sense_device, sizeof c->sense_device, "/dev/ippoc");
    core_sncpy(c->sense_nvml_library, sizeof c->sense_nvml_library, "libnvidia-ml.so.1");
    c->mem_ram_window_ms = 15 * 60000LL;
    c->mem_retention_10s_ms = 2 * 86400000LL;
    c->mem_retention_1m_ms = 30 * 86400000LL;
    c->mem_retention_1h_ms = 730 * 86400000LL;
    c->mem_event_retention_ms = 90 * 86400000LL;
}

static void free_list(char **list, int *n)
{
    for (int i = 0; i < *n; i++)
        free(list[i]);
    *n = 0;
}

void core_config_free(core_config *c)
{
    free_list(c->watch_process, &c->nwatch_process);
    free_list(c->watch_cgroup, &c->nwatch_cgroup);
    for (int i = 0; i < c->nraw; i++) {
        free(c->raw[i].section);
        free(c->raw[i].key);
        free(c->raw[i].value);
        free(c->raw[i].file);
    }
    free(c->raw);
    c->raw = NULL;
    c->nraw = c->capraw = 0;
}

bool core_config_raw_section(const char *section)
{
    return !strcmp(section, "heal") || !strcmp(section, "detect") || !strcmp(section, "logs") ||
           !strcmp(section, "brain") || !strcmp(section, "llm") || !strcmp(section, "knowledge") ||
           !strcmp(section, "prefs") || !strcmp(section, "dream") ||
           !strcmp(section, "evolve") || /* src/heal (changes), src/daemon (probation) */
           !strcmp(section, "mesh") || /* src/mesh (the cell) */
           (!strncmp(section, "service.", 8) && section[8]) || (!strncmp(section, "alert.", 6) && section[6]);
}

const core_sense_group *core_config_group(const core_config *c, const char *name)
{
    for (int i = 0; i < c->ngroups; i++)
        if (!strcmp(c->groups[i].name, name))
            return &c->groups[i];
    return NULL;
}

/* ---- the INI handler ------------------------------------------------------- */

/* A section or key already seen in the file being parsed, and where. */
typedef struct seen_entry {
    char *section;
    char *key; /* NULL for a section header */
    int line;
} seen_entry;

typedef struct parse_ctx {
    core_config *c;
    seen_entry *seen; /* this file's sections and keys, for duplicates */
    int nseen, capseen;
    bool continuation; /* the line being parsed is indented (inih: multi-line value) */
    const char *name; /* file name for the raw keys' places */
    char reason[512]; /* first error's reason */
    int reason_line;  /* the line it was found on */
    int line;         /* line being parsed, counted by the reader */
    FILE *file;       /* source: a file, or */
    const char *text; /* a string */
} parse_ctx;

static int fail(parse_ctx *p, const char *fmt, const char *a, const char *b)
{
    if (!p->reason[0]) {
        snprintf(p->reason, sizeof p->reason, fmt, a, b);
        p->reason_line = p->line;
    }
    return 0;
}

static int set_duration(parse_ctx *p, const char *key, const char *v, int64_t min_ms, int64_t *out)
{
    int64_t ms;
    if (core_parse_duration(v, &ms))
        return fail(p, "%s: bad duration '%s' (expected e.g. 1s, 15m, 2d)", key, v);
    if (ms < min_ms) {
        char buf[64];
        core_format_duration(min_ms, buf, sizeof buf);
        char msg[160];
        snprintf(msg, sizeof msg, "%s: must be at least %s", key, buf);
        return fail(p, "%s%s", msg, "");
    }
    *out = ms;
    return 1;
}

static int set_interval(parse_ctx *p, const char *key, const char *v, int64_t *out)
{
    int64_t ms;
    if (!set_duration(p, key, v, 1000, &ms))
        return 0;
    if (ms % 1000)
        return fail(p, "%s: '%s' is not a whole number of seconds", key, v);
    if (ms > 3600000)
        return fail(p, "%s: '%s' is longer than 1h", key, v);
    *out = ms;
    return 1;
}

static int set_string(parse_ctx *p, const char *key, const char *v, char *dst, size_t n)
{
    if (core_sncpy(dst, n, v))
        return fail(p, "%s: value too long (at most %s characters)", key,
                    n > 300 ? "4095" : "255");
    return 1;
}

/* Splits a comma/space separated list into fresh strings, replacing *list. */
static int set_list(parse_ctx *p, const char *key, const char *v, char **list, int *n)
{
    free_list(list, n);
    char *copy = strdup(v);
    if (!copy)
        return fail(p, "%s: %s", key, "out of memory");
    char *save = NULL;
    for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
        if (*n >= CORE_MAX_WATCH) {
            free(copy);
            return fail(p, "%s: more than %s entries", key, "64");
        }
        list[(*n)++] = strdup(tok);
    }
    free(copy);
    return 1;
}

static int handle_daemon(parse_ctx *p, const char *k, const char *v)
{
    core_config *c = p->c;
    if (!strcmp(k, "state_dir")) {
        if (v[0] != '/' && v[0] != '.')
            return fail(p, "state_dir: '%s' must be an absolute or ./relative path%s", v, "");
        return set_string(p, k, v, c->state_dir, sizeof c->state_dir);
    }
    if (!strcmp(k, "log_level")) {
        int l = core_log_level_parse(v);
        if (l < 0)
            return fail(p, "log_level: unknown level '%s' (expected error, warning, info or debug)%s", v, "");
        c->log_level = l;
        return 1;
    }
    if (!strcmp(k, "log_target")) {
        if (!strcmp(v, "stderr"))
            c->log_syslog = 0;
        else if (!strcmp(v, "syslog") || !strcmp(v, "journal"))
            c->log_syslog = 1;
        else
            return fail(p, "log_target: unknown target '%s' (expected stderr, syslog or journal)%s", v, "");
        return 1;
    }
    if (!strcmp(k, "hostname"))
        return set_string(p, k, v, c->hostname, sizeof c->hostname);
    return fail(p, "unknown key '%s' in [daemon]%s", k, "");
}

static int handle_api(parse_ctx *p, const char *k, const char *v)
{
    core_config *c = p->c;
    if (!strcmp(k, "listen")) {
        char host[256];
        int port;
        if (core_split_hostport(v, host, sizeof host, &port))
            return fail(p, "listen: bad address '%s' (expected HOST:PORT, e.g. 127.0.0.1:7070)%s", v, "");
        return set_string(p, k, v, c->api_listen, sizeof c->api_listen);
    }
    if (!strcmp(k, "prometheus_listen")) {
        char host[256];
        int port;
        if (v[0] && core_split_hostport(v, host, sizeof host, &port))
            return fail(p, "prometheus_listen: bad address '%s' (expected HOST:PORT, e.g. 0.0.0.0:9100)%s", v, "");
        return set_string(p, k, v, c->api_prometheus_listen, sizeof c->api_prometheus_listen);
    }
    if (!strcmp(k, "token"))
        return set_string(p, k, v, c->api_token, sizeof c->api_token);
    if (!strcmp(k, "max_connections") || !strcmp(k, "max_points")) {
        char *end;
        long long n = strtoll(v, &end, 10);
        long long max = !strcmp(k, "max_points") ? 1000000 : 4096;
        if (*end || n < 1 || n > max)
            return fail(p, "%s: '%s' is not a number in range", k, v);
        if (!strcmp(k, "max_points"))
            c->api_max_points = n;
        else
            c->api_max_connections = (int)n;
        return 1;
    }
    return fail(p, "unknown key '%s' in [api]%s", k, "");
}

static int handle_sense(parse_ctx *p, const char *k, const char *v)
{
    core_config *c = p->c;
    if (!strcmp(k, "interval"))
        return set_interval(p, k, v, &c->sense_interval_ms);
    if (!strcmp(k, "processes"))
        return set_list(p, k, v, c->watch_process, &c->nwatch_process);
    if (!strcmp(k, "cgroups"))
        return set_list(p, k, v, c->watch_cgroup, &c->nwatch_cgroup);
    if (!strcmp(k, "proc_root"))
        return set_string(p, k, v, c->proc_root, sizeof c->proc_root);
    if (!strcmp(k, "sys_root"))
        return set_string(p, k, v, c->sys_root, sizeof c->sys_root);
    if (!strcmp(k, "udev_data_dir"))
        return set_string(p, k, v, c->udev_data_dir, sizeof c->udev_data_dir);
    if (!strcmp(k, "source")) {
        if (!strcmp(v, "auto"))
            c->sense_source = CORE_SOURCE_AUTO;
        else if (!strcmp(v, "procfs"))
            c->sense_source = CORE_SOURCE_PROCFS;
        else if (!strcmp(v, "kernel"))
            c->sense_source = CORE_SOURCE_KERNEL;
        else
            return fail(p, "source: unknown source '%s' (expected auto, procfs or kernel)%s", v, "");
        return 1;
    }
    if (!strcmp(k, "textfile_dir")) {
        if (v[0] && v[0] != '/' && v[0] != '.')
            return fail(p, "textfile_dir: '%s' must be an absolute or ./relative path (or empty: off)%s", v, "");
        return set_string(p, k, v, c->textfile_dir, sizeof c->textfile_dir);
    }
    if (!strcmp(k, "device")) {
        if (v[0] != '/' && v[0] != '.')
            return fail(p, "device: '%s' must be an absolute or ./relative path%s", v, "");
        return set_string(p, k, v, c->sense_device, sizeof c->sense_device);
    }
    if (!strcmp(k, "nvml_library")) {
        if (!v[0])
            return fail(p, "nvml_library: %sempty (a library name such as libnvidia-ml.so.1, or a path)%s", "", "");
        return set_string(p, k, v, c->sense_nvml_library, sizeof c->sense_nvml_library);
    }
    return fail(p, "unknown key '%s' in [sense]%s", k, "");
}

static int handle_group(parse_ctx *p, const char *group, const char *k, const char *v)
{
    core_sense_group *g = (core_sense_group *)core_config_group(p->c, group);
    if (!g)
        return fail(p, "unknown sensor group [sense.%s] (see the README for the list)%s", group, "");
    if (!strcmp(k, "interval"))
        return set_interval(p, k, v, &g->interval_ms);
    if (!strcmp(k, "enabled")) {
        if (core_parse_bool(v, &g->enabled))
            return fail(p, "enabled: '%s' is not yes or no%s", v, "");
        return 1;
    }
    return fail(p, "unknown key '%s' in a [sense.GROUP] section (expected interval or enabled)%s", k, "");
}

static int handle_memory(parse_ctx *p, const char *k, const char *v)
{
    core_config *c = p->c;
    if (!strcmp(k, "ram_window")) {
        if (!set_duration(p, k, v, 60000, &c->mem_ram_window_ms))
            return 0;
        if (c->mem_ram_window_ms > 6 * 3600000LL)
            return fail(p, "ram_window: '%s' is longer than 6h%s", v, "");
        return 1;
    }
    if (!strcmp(k, "retention_10s"))
        return set_duration(p, k, v, 60000, &c->mem_retention_10s_ms);
    if (!strcmp(k, "retention_1m"))
        return set_duration(p, k, v, 3600000, &c->mem_retention_1m_ms);
    if (!strcmp(k, "retention_1h"))
        return set_duration(p, k, v, 86400000, &c->mem_retention_1h_ms);
    if (!strcmp(k, "event_retention"))
        return set_duration(p, k, v, 3600000, &c->mem_event_retention_ms);
    return fail(p, "unknown key '%s' in [memory]%s", k, "");
}

int core_config_add_raw(core_config *c, const char *section, const char *key, const char *value,
                        const char *file, int line)
{
    if (c->nraw == c->capraw) {
        int cap = c->capraw ? c->capraw * 2 : 32;
        core_kv *n = realloc(c->raw, (size_t)cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        c->raw = n;
        c->capraw = cap;
    }
    core_kv *kv = &c->raw[c->nraw];
    kv->section = strdup(section);
    kv->key = strdup(key);
    kv->value = strdup(value);
    kv->file = strdup(file ? file : "");
    kv->line = line;
    if (!kv->section || !kv->key || !kv->value || !kv->file) {
        free(kv->section), free(kv->key), free(kv->value), free(kv->file);
        return -ENOMEM;
    }
    c->nraw++;
    return 0;
}

static int keep_raw(parse_ctx *p, const char *section, const char *k, const char *v)
{
    if (core_config_add_raw(p->c, section, k, v, p->name, p->line))
        return fail(p, "%s: %s", k, "out of memory");
    return 1;
}

/* ---- duplicates within one file -------------------------------------------- */

/* Keys that may be given several times in one section: each adds to a list. */
static bool key_repeatable(const char *section, const char *key)
{
    if (!core_config_raw_section(section))
        return false;
    return !strcmp(key, "rule") || !strcmp(key, "env") || !strcmp(key, "depends") || !strcmp(key, "log_file") ||
           !strcmp(key, "config_path") || !strcmp(key, "file");
}

static const seen_entry *seen_find(const parse_ctx *p, const char *section, const char *key)
{
    for (int i = 0; i < p->nseen; i++) {
        const seen_entry *e = &p->seen[i];
        if (!strcmp(e->section, section) && (key ? e->key && !strcmp(e->key, key) : !e->key))
            return e;
    }
    return NULL;
}

static int seen_add(parse_ctx *p, const char *section, const char *key)
{
    if (p->nseen == p->capseen) {
        int cap = p->capseen ? p->capseen * 2 : 32;
        seen_entry *n = realloc(p->seen, (size_t)cap * sizeof *n);
        if (!n)
            return -ENOMEM;
        p->seen = n;
        p->capseen = cap;
    }
    seen_entry *e = &p->seen[p->nseen];
    e->section = strdup(section);
    e->key = key ? strdup(key) : NULL;
    e->line = p->line;
    if (!e->section || (key && !e->key)) {
        free(e->section), free(e->key);
        return -ENOMEM;
    }
    p->nseen++;
    return 0;
}

static void seen_free(parse_ctx *p)
{
    for (int i = 0; i < p->nseen; i++)
        free(p->seen[i].section), free(p->seen[i].key);
    free(p->seen);
    p->seen = NULL;
    p->nseen = p->capseen = 0;
}

/* A section header or key given twice in one file is a mistake (the first
 * would be silently lost): fail naming both places. Returns 1 when new. */
static int check_duplicate(parse_ctx *p, const char *section, const char *key)
{
    if (key && (p->continuation || key_repeatable(section, key)))
        return 1;
    const seen_entry *e = seen_find(p, section, key);
    char msg[600];
    if (e) {
        if (key)
            snprintf(msg, sizeof msg, "duplicate key '%.100s' in [%.100s] (first set at %.200s:%d)", key,
                     section, p->name, e->line);
        else
            snprintf(msg, sizeof msg, "duplicate section [%.100s] (first at %.200s:%d)", section, p->name,
                     e->line);
        return fail(p, "%s%s", msg, "");
    }
    if (seen_add(p, section, key))
        return fail(p, "%s%s", "out of memory", "");
    return 1;
}

/* Called by the reader for every line: notes a "[section]" header. */
static void note_line(parse_ctx *p, const char *buf)
{
    p->continuation = buf[0] == ' ' || buf[0] == '\t';
    const char *s = buf + strspn(buf, " \t");
    if (*s != '[' || p->reason[0])
        return;
    const char *end = strchr(s, ']');
    if (!end)
        return; /* inih reports the syntax error */
    char section[256];
    size_t n = (size_t)(end - s - 1);
    if (n >= sizeof section)
        n = sizeof section - 1;
    memcpy(section, s + 1, n);
    section[n] = 0;
    check_duplicate(p, section, NULL);
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
    parse_ctx *p = user;
    if (p->reason[0])
        return 1; /* the first error is reported; stay quiet after it */
    if (!name) /* a section header alone (inih INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    if (*section && !check_duplicate(p, section, name))
        return 0;
    if (!*section)
        return fail(p, "key '%s' outside of any [section]%s", name, "");
    if (!strcmp(section, "daemon"))
        return handle_daemon(p, name, value);
    if (!strcmp(section, "api"))
        return handle_api(p, name, value);
    if (!strcmp(section, "sense"))
        return handle_sense(p, name, value);
    if (!strncmp(section, "sense.", 6))
        return handle_group(p, section + 6, name, value);
    if (!strcmp(section, "memory"))
        return handle_memory(p, name, value);
    if (core_config_raw_section(section))
        return keep_raw(p, section, name, value);
    return fail(p, "unknown section [%s]%s", section, "");
}

/* inih reads through this so the handler knows the current line number. */
static char *read_line(char *buf, int size, void *stream)
{
    parse_ctx *p = stream;
    if (p->file) {
        if (!fgets(buf, size, p->file))
            return NULL;
    } else {
        if (!*p->text)
            return NULL;
        size_t len = strcspn(p->text, "\n");
        if (p->text[len] == '\n')
            len++;
        if (len > (size_t)size - 1)
            len = (size_t)size - 1;
        memcpy(buf, p->text, len);
        buf[len] = 0;
        p->text += len;
    }
    p->line++;
    note_line(p, buf);
    if (p->reason[0] && p->reason_line == p->line)
        return NULL; /* a duplicate section: stop here, parse() reports it */
    size_t len = strlen(buf);
    bool more = p->file ? !feof(p->file) : *p->text != 0;
    if (len == (size_t)size - 1 && buf[len - 1] != '\n' && more) {
        /* inih would cut the line and read the rest as a line of its own */
        if (!p->reason[0]) {
            snprintf(p->reason, sizeof p->reason, "line longer than %d characters", size - 2);
            p->reason_line = p->line;
        }
        return NULL;
    }
    return buf;
}

static int parse(parse_ctx *p, const char *name, char *err, size_t errlen)
{
    int rc = ini_parse_stream(read_line, p, on_ini_entry, p);
    seen_free(p);
    if (rc == 0 && p->reason[0])
        rc = p->reason_line; /* the reader stopped on an overlong line */
    if (rc == 0)
        return 0;
    if (rc == -2)
        snprintf(err, errlen, "%s: out of memory", name);
    else if (p->reason[0] && p->reason_line == rc)
        snprintf(err, errlen, "%s:%d: %s", name, rc, p->reason);
    else
        snprintf(err, errlen, "%s:%d: syntax error (expected [section] or key = value)", name, rc);
    return -EINVAL;
}

int core_config_load_string(core_config *c, const char *text, const char *name, char *err, size_t errlen)
{
    parse_ctx p = {.c = c, .text = text, .name = name};
    return parse(&p, name, err, errlen);
}

static int load_file(core_config *c, const char *path, char *err, size_t errlen)
{
    parse_ctx p = {.c = c, .name = path};
    p.file = fopen(path, "re");
    if (!p.file) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -errno;
    }
    int rc = parse(&p, path, err, errlen);
    fclose(p.file);
    return rc;
}

static int conf_filter(const struct dirent *d)
{
    return fnmatch("*.conf", d->d_name, FNM_PERIOD) == 0;
}

int core_config_load(core_config *c, const char *path, bool required, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISREG(st.st_mode)) {
            snprintf(err, errlen, "%s: not a regular file", path);
            return -EINVAL;
        }
        int rc = load_file(c, path, err, errlen);
        if (rc)
            return rc;
    } else if (required) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -errno;
    }
    char dir[CORE_PATH_MAX];
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (int)(slash - path) : 0;
    snprintf(dir, sizeof dir, "%.*s%sconf.d", dlen, path, slash ? "/" : "");
    if (slash == path)
        snprintf(dir, sizeof dir, "/conf.d");
    struct dirent **list;
    int n = scandir(dir, &list, conf_filter, alphasort);
    if (n < 0)
        return 0; /* no conf.d: fine */
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (!rc) {
            char file[CORE_PATH_MAX + 256];
            snprintf(file, sizeof file, "%s/%s", dir, list[i]->d_name);
            rc = load_file(c, file, err, errlen);
        }
        free(list[i]);
    }
    free(list);
    return rc;
}

int core_split_hostport(const char *s, char *host, size_t hn, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return -EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= hn)
        return -EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 0 || p > 65535)
        return -EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    *port = (int)p;
    return 0;
}

bool core_host_is_loopback(const char *host)
{
    return !strcmp(host, "localhost") || !strncmp(host, "127.", 4) || !strcmp(host, "::1");
}

int core_config_validate(const core_config *c, char *err, size_t errlen)
{
    char host[256];
    int port;
    if (core_split_hostport(c->api_listen, host, sizeof host, &port)) {
        snprintf(err, errlen, "[api] listen: bad address '%s'", c->api_listen);
        return -EINVAL;
    }
    if (!core_host_is_loopback(host) && !c->api_token[0]) {
        snprintf(err, errlen, "[api] listen = %s is not a loopback address: set [api] token too "
                 "(clients then send 'Authorization: Bearer TOKEN')", c->api_listen);
        return -EINVAL;
    }
    if (c->api_prometheus_listen[0] && port != 0 && !strcmp(c->api_prometheus_listen, c->api_listen)) {
        snprintf(err, errlen, "[api] prometheus_listen = %s is the address of listen: give it its own port "
                 "(e.g. 9100)", c->api_prometheus_listen);
        return -EINVAL;
    }
    if (c->api_token[0] && strlen(c->api_token) < 16) {
        snprintf(err, errlen, "[api] token: too short (use at least 16 characters)");
        return -EINVAL;
    }
    if (c->mem_retention_10s_ms < c->mem_ram_window_ms) {
        snprintf(err, errlen, "[memory] retention_10s must be at least ram_window");
        return -EINVAL;
    }
    if (c->mem_retention_1m_ms < c->mem_retention_10s_ms || c->mem_retention_1h_ms < c->mem_retention_1m_ms) {
        snprintf(err, errlen, "[memory] retentions must grow with the tier: retention_10s <= retention_1m <= retention_1h");
        return -EINVAL;
    }
    if (!c->state_dir[0]) {
        snprintf(err, errlen, "[daemon] state_dir is empty");
        return -EINVAL;
    }
    return 0;
}

int core_err(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int core_kv_error(char *err, size_t errlen, const core_kv *kv, const char *fmt, ...)
{
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%d: %s", kv->file, kv->line, why);
    return -EINVAL;
}
