/* miner_stub.c: TEMPORARY stand-in for the `drain` engineer's template miner
 * (drain.c), so the watch builds and its tests run until theirs is merged:
 * a template is the line with every run of digits replaced by <*>, exact
 * match. Removed when drain.c lands. */
#include "logs/logs.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct logs_miner {
    char **tpl;
    int n, cap, max;
};

int logs_miner_new(const logs_miner_opts *o, logs_miner **out, char *err, size_t errlen)
{
    *out = calloc(1, sizeof **out);
    if (!*out) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    (*out)->max = o && o->max_templates ? o->max_templates : 1 << 30;
    return 0;
}

int logs_miner_add(logs_miner *m, const char *msg, size_t len, bool *is_new)
{
    char buf[1024];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < sizeof buf; i++) {
        if (isdigit((unsigned char)msg[i])) {
            while (i + 1 < len && isdigit((unsigned char)msg[i + 1]))
                i++;
            memcpy(buf + k, "<*>", 3);
            k += 3;
        } else {
            buf[k++] = msg[i] ? msg[i] : ' ';
        }
    }
    buf[k] = 0;
    if (is_new)
        *is_new = false;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->tpl[i], buf))
            return i;
    if (m->n >= m->max)
        return m->n;
    if (m->n == m->cap) {
        int c = m->cap ? m->cap * 2 : 16;
        char **t = realloc(m->tpl, (size_t)c * sizeof *t);
        if (!t)
            return -ENOMEM;
        m->tpl = t;
        m->cap = c;
    }
    if (!(m->tpl[m->n] = strdup(buf)))
        return -ENOMEM;
    if (is_new)
        *is_new = true;
    return m->n++;
}

const char *logs_miner_template(const logs_miner *m, int id)
{
    return id >= 0 && id < m->n ? m->tpl[id] : "";
}

int logs_miner_count(const logs_miner *m)
{
    return m->n;
}

void logs_miner_free(logs_miner *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++)
        free(m->tpl[i]);
    free(m->tpl);
    free(m);
}

const char *logs_line_level(const char *line, size_t len)
{
    static const char *const err[] = {"FATAL", "CRIT", "ERROR", "ERR", "PANIC", "EMERG", "ALERT", "Traceback",
                                      "Exception", "segfault"};
    char buf[1024];
    size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
    memcpy(buf, line, n);
    buf[n] = 0;
    for (size_t i = 0; i < sizeof err / sizeof err[0]; i++)
        if (strstr(buf, err[i]) || (i < 7 && strcasestr(buf, err[i]) && strcasestr(buf, "error")))
            return "error";
    if (strstr(buf, "WARN") || strcasestr(buf, "warning"))
        return "warning";
    return "info";
}
