/* nx_test_util.c: helpers shared by the node exposition's tests; see
 * nx_test_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nx_test_util.h"
#include "sense/sense.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void nxt_emit_plain(void *ud, const char *s, size_t n)
{
    nxt_text *t = ud;
    char *p = realloc(t->p, t->len + n + 1);
    if (!p)
        return;
    t->p = p;
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

void nxt_emit(void *ud, const char *s, size_t n)
{
    nxt_text *t = ud;
    size_t before = t->len;
    nxt_emit_plain(ud, s, n);
    assert_true(t->len == before + n);
}

sense_nx *nxt_open(const char *proc, const char *sys, const char *udev)
{
    core_config cfg;
    core_config_defaults(&cfg);
    core_sncpy(cfg.proc_root, sizeof cfg.proc_root, proc);
    core_sncpy(cfg.sys_root, sizeof cfg.sys_root, sys);
    if (udev)
        core_sncpy(cfg.udev_data_dir, sizeof cfg.udev_data_dir, udev);
    cfg.textfile_dir[0] = 0;
    sense_nx *nx = NULL;
    char err[256];
    assert_int_equal(sense_nx_open(&nx, &cfg, err, sizeof err), 0);
    core_config_free(&cfg); /* the handle keeps copies of the roots */
    return nx;
}

char *nxt_render(const char *proc, const char *sys, const char *udev, char **second)
{
    sense_nx *nx = nxt_open(proc, sys, udev);
    nxt_text t = {0}, t2 = {0};
    assert_int_equal(sense_nx_render(nx, nxt_emit, &t), 0);
    assert_int_equal(sense_nx_render(nx, nxt_emit, &t2), 0);
    sense_nx_close(nx);
    if (second)
        *second = t2.p;
    else
        free(t2.p);
    return t.p;
}

bool nxt_has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; (p = strstr(p, line)); p++)
        if ((p == out || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
            return true;
    return false;
}

double nxt_value(const char *out, const char *series)
{
    size_t k = strlen(series);
    for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, k) && p[k] == ' ')
            return strtod(p + k + 1, NULL);
    return NAN;
}
