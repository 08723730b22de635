/* action.c: names and human text of the typed actions (see action.h). */
#include "heal/action.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *const names[HEAL_ACT_COUNT] = {
    [HEAL_ACT_START] = "start",          [HEAL_ACT_STOP] = "stop",
    [HEAL_ACT_RESTART] = "restart",      [HEAL_ACT_SIGNAL] = "signal",
    [HEAL_ACT_RENICE] = "renice",        [HEAL_ACT_LIMIT_MEMORY] = "limit memory",
    [HEAL_ACT_LIMIT_CPU] = "limit cpu",  [HEAL_ACT_SYSCTL] = "sysctl",
    [HEAL_ACT_CLEAN] = "clean",          [HEAL_ACT_PLAYBOOK] = "run",
    [HEAL_ACT_ALERT] = "alert",          [HEAL_ACT_FREEZE] = "freeze",
    [HEAL_ACT_THAW] = "thaw",            [HEAL_ACT_RESTORE] = "restore",
    [HEAL_ACT_SIGNAL_PID] = "signal-process", [HEAL_ACT_RENICE_PID] = "renice-process",
    [HEAL_ACT_GENOME] = "genome",
};

const char *heal_action_name(heal_action_kind k)
{
    return (unsigned)k < HEAL_ACT_COUNT ? names[k] : NULL;
}

int heal_action_kind_parse(const char *s)
{
    for (int i = 0; i < HEAL_ACT_COUNT; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

static void fmt_size(uint64_t b, char *out, size_t n)
{
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (u < 4 && b >= 1024 && b % 1024 == 0) {
        b /= 1024;
        u++;
    }
    snprintf(out, n, "%llu%s", (unsigned long long)b, units[u]);
}

/* prefix and path, quoted as the rule language reads it back when the path
 * holds a blank, ',', '"', '\\' or ';' (those three escaped), as rules_format.c. */
static int fmt_path(char *buf, size_t n, const char *prefix, const char *path)
{
    if (!path[strcspn(path, " \t,\"\\;")])
        return snprintf(buf, n, "%s%s", prefix, path);
    size_t w = (size_t)snprintf(buf, n, "%s\"", prefix);
    for (const char *c = path; *c; c++) {
        if ((*c == '"' || *c == '\\' || *c == ';') && w < n)
            buf[w++] = '\\';
        if (w < n)
            buf[w++] = *c;
    }
    if (w < n)
        buf[w++] = '"';
    if (w < n)
        buf[w] = 0;
    else if (n)
        buf[n - 1] = 0;
    return (int)w;
}

int heal_action_format(const heal_action *a, char *buf, size_t n)
{
    char x[64], y[64];
    int w;
    switch (a->kind) {
    case HEAL_ACT_SIGNAL: w = snprintf(buf, n, "signal %s", sigabbrev_np(a->signum) ? sigabbrev_np(a->signum) : "?"); break;
    case HEAL_ACT_RENICE: w = snprintf(buf, n, "renice %d", a->nice); break;
    case HEAL_ACT_SIGNAL_PID:
        w = snprintf(buf, n, "signal %s pid %d", sigabbrev_np(a->signum) ? sigabbrev_np(a->signum) : "?", a->pid);
        break;
    case HEAL_ACT_RENICE_PID: w = snprintf(buf, n, "renice %d pid %d", a->nice, a->pid); break;
    case HEAL_ACT_RESTORE: w = fmt_path(buf, n, "restore ", a->path); break;
    case HEAL_ACT_LIMIT_MEMORY: fmt_size(a->bytes, x, sizeof x); w = snprintf(buf, n, "limit memory %s", x); break;
    case HEAL_ACT_LIMIT_CPU: w = snprintf(buf, n, "limit cpu %g%%", a->cpu_percent); break;
    case HEAL_ACT_SYSCTL: w = snprintf(buf, n, "sysctl %s = %s", a->key, a->value); break;
    case HEAL_ACT_CLEAN:
        core_format_duration(a->older_than_ms, x, sizeof x);
        fmt_size(a->larger_than, y, sizeof y);
        w = snprintf(buf, n, "clean %s%s%s%s%s", a->path, a->older_than_ms ? " older than " : "",
                     a->older_than_ms ? x : "", a->larger_than ? " larger than " : "", a->larger_than ? y : "");
        break;
    case HEAL_ACT_PLAYBOOK:
        core_format_duration(a->timeout_ms, x, sizeof x);
        w = snprintf(buf, n, "run \"%s\"%s%s", a->program, a->timeout_ms ? " timeout " : "", a->timeout_ms ? x : "");
        break;
    case HEAL_ACT_ALERT: w = snprintf(buf, n, "alert%s%s", a->target[0] ? " " : "", a->target); break;
    case HEAL_ACT_GENOME: /* a commit id is shown short, as git does */
        w = snprintf(buf, n, "genome %s %.*s", a->key, strspn(a->value, "0123456789abcdef") == 40 ? 7 : (int)sizeof a->value,
                     a->value);
        break;
    default: w = snprintf(buf, n, "%s", heal_action_name(a->kind) ? heal_action_name(a->kind) : "?"); break;
    }
    return w < 0 || (size_t)w >= n ? -ENAMETOOLONG : 0;
}
