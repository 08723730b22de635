/* sense.c: the sensor scheduler. Holds the table of collector modules (one
 * per [sense.GROUP]), applies the configuration to them, runs the ones due
 * each second, times them, and keeps the availability notes that
 * sense_collectors() reports. */
#include "sense/sense_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The module table: order is the order collectors run and are listed. */
static const sn_module *const modules[] = {
    &sn_mod_cpu,       &sn_mod_load,      &sn_mod_memory,     &sn_mod_psi,
    &sn_mod_filesystem, &sn_mod_disk,     &sn_mod_net,        &sn_mod_netstat,
    &sn_mod_vmstat,    &sn_mod_fds,       &sn_mod_processes,  &sn_mod_tcp,
    &sn_mod_interrupts, &sn_mod_softirqs, &sn_mod_process,    &sn_mod_apps,
    &sn_mod_cgroup,    &sn_mod_self,
    &sn_mod_gpu,
};
#define NMODULES ((int)(sizeof modules / sizeof modules[0]))

/* An unavailable source is probed again this often (quietly). */
#define SN_RETRY_MS 60000

bool sn_due(int64_t now_ms, int64_t interval_ms)
{
    int64_t step = interval_ms / 1000;
    if (step <= 1)
        return true;
    return (now_ms / 1000) % step == 0;
}

int sn_series(sense_t *s, const char *name, const char *labels, const char *unit,
              const char *help, int kind)
{
    int id = mem_series(s->mem, name, labels, unit, help, kind);
    if (id < 0) {
        if (!s->series_err_logged)
            log_warn("sense: cannot register series %s{%s}: %s", name, labels, strerror(-id));
        s->series_err_logged = true;
        return -1;
    }
    return id;
}

void sn_unavailable(sense_t *s, sn_col *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->note, sizeof c->note, fmt, ap);
    va_end(ap);
    c->available = false;
    c->retry_ms = s->now_ms + SN_RETRY_MS;
    if (!c->logged)
        log_info("sense: %s unavailable: %s", c->mod->name, c->note);
    c->logged = true;
}

void sn_available(sn_col *c, const char *note)
{
    c->available = true;
    core_sncpy(c->note, sizeof c->note, note);
    core_sncpy(c->src, sizeof c->src, note);
}

void sn_note_once(bool *flag, const char *fmt, ...)
{
    if (*flag)
        return;
    *flag = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_info("sense: %s", msg);
}

sn_col *sn_col_find(sense_t *s, const char *name)
{
    for (int i = 0; i < s->ncols; i++)
        if (!strcmp(s->cols[i].mod->name, name))
            return &s->cols[i];
    return NULL;
}

static void free_list(char ***list, int *n)
{
    for (int i = 0; i < *n; i++)
        free((*list)[i]);
    free(*list);
    *list = NULL;
    *n = 0;
}

static int copy_list(char ***dst, int *dn, char *const *src, int n)
{
    char **l = calloc((size_t)(n ? n : 1), sizeof *l);
    if (!l)
        return -ENOMEM;
    for (int i = 0; i < n; i++) {
        l[i] = strdup(src[i]);
        if (!l[i]) {
            for (int j = 0; j < i; j++)
                free(l[j]);
            free(l);
            return -ENOMEM;
        }
    }
    *dst = l;
    *dn = n;
    return 0;
}

static bool lists_equal(char *const *a, int na, char *const *b, int nb)
{
    if (na != nb)
        return false;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i], b[i]))
            return false;
    return true;
}

static void apply_groups(sense_t *s, const core_config *cfg)
{
    int64_t def = cfg->sense_interval_ms > 0 ? cfg->sense_interval_ms : 1000;
    for (int i = 0; i < s->ncols; i++) {
        sn_col *c = &s->cols[i];
        const core_sense_group *g = core_config_group(cfg, c->mod->name);
        int64_t iv = g && g->interval_ms > 0 ? g->interval_ms : def;
        iv = iv < 1000 ? 1000 : iv / 1000 * 1000;
        if (iv != c->interval_ms)
            c->last_ms = 0; /* rates restart from a fresh reading */
        c->interval_ms = iv;
        c->enabled = g ? g->enabled : true;
    }
}

int sense_open(sense_t **out, const core_config *cfg, mem_t *mem, char *err, size_t errlen)
{
    *out = NULL;
    sense_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "sense: out of memory");
        return -ENOMEM;
    }
    s->cfg = cfg;
    s->mem = mem;
    core_sncpy(s->proc, sizeof s->proc, cfg->proc_root[0] ? cfg->proc_root : "/proc");
    core_sncpy(s->sys, sizeof s->sys, cfg->sys_root[0] ? cfg->sys_root : "/sys");
    s->page_size = sysconf(_SC_PAGESIZE);
    if (s->page_size <= 0)
        s->page_size = 4096;
    s->clk_tck = sysconf(_SC_CLK_TCK);
    if (s->clk_tck <= 0)
        s->clk_tck = 100;
    if (copy_list(&s->watch_process, &s->nwatch_process, cfg->watch_process, cfg->nwatch_process) < 0 ||
        copy_list(&s->watch_cgroup, &s->nwatch_cgroup, cfg->watch_cgroup, cfg->nwatch_cgroup) < 0 ||
        sn_buf_reserve(&s->buf, 65536) < 0 || sn_buf_reserve(&s->buf2, 16384) < 0) {
        sense_close(s);
        snprintf(err, errlen, "sense: out of memory");
        return -ENOMEM;
    }
    s->cols = calloc(NMODULES, sizeof *s->cols);
    if (!s->cols) {
        sense_close(s);
        snprintf(err, errlen, "sense: out of memory");
        return -ENOMEM;
    }
    s->ncols = NMODULES;
    for (int i = 0; i < NMODULES; i++)
        s->cols[i].mod = modules[i];
    apply_groups(s, cfg);
    int kr = sn_kb_setup(s, cfg, err, errlen);
    if (kr < 0) {
        sense_close(s);
        return kr;
    }
    for (int i = 0; i < NMODULES; i++) {
        sn_col *c = &s->cols[i];
        c->available = true;
        int r = c->mod->init(s, c);
        if (r < 0) {
            snprintf(err, errlen, "sense: %s: %s", c->mod->name, strerror(-r));
            sense_close(s);
            return r;
        }
    }
    *out = s;
    return 0;
}

int sense_reconfigure(sense_t *s, const core_config *cfg, char *err, size_t errlen)
{
    if (strcmp(s->proc, cfg->proc_root[0] ? cfg->proc_root : "/proc") ||
        strcmp(s->sys, cfg->sys_root[0] ? cfg->sys_root : "/sys"))
        log_warn("sense: proc_root/sys_root changes take effect after a restart");
    if (cfg->sense_source != s->kb.mode || strcmp(cfg->sense_device, s->kb.device)) {
        sn_kb kept = s->kb; /* a refused kernel source keeps the running one */
        char kerr[512];
        s->kb.buf.p = NULL, s->kb.buf.cap = 0;
        s->kb.snap.cpus = NULL, s->kb.snap.capcpus = 0;
        int r = sn_kb_setup(s, cfg, kerr, sizeof kerr);
        if (r < 0) {
            sn_kb_close(&s->kb);
            s->kb = kept;
            snprintf(err, errlen, "%s", kerr);
            return r;
        }
        sn_kb_close(&kept);
    }
    s->cfg = cfg;
    apply_groups(s, cfg);
    bool wp = !lists_equal(s->watch_process, s->nwatch_process, cfg->watch_process, cfg->nwatch_process);
    bool wc = !lists_equal(s->watch_cgroup, s->nwatch_cgroup, cfg->watch_cgroup, cfg->nwatch_cgroup);
    if (wp) {
        char **l;
        int n;
        if (copy_list(&l, &n, cfg->watch_process, cfg->nwatch_process) < 0)
            goto nomem;
        free_list(&s->watch_process, &s->nwatch_process);
        s->watch_process = l;
        s->nwatch_process = n;
    }
    if (wc) {
        char **l;
        int n;
        if (copy_list(&l, &n, cfg->watch_cgroup, cfg->nwatch_cgroup) < 0)
            goto nomem;
        free_list(&s->watch_cgroup, &s->nwatch_cgroup);
        s->watch_cgroup = l;
        s->nwatch_cgroup = n;
    }
    for (int i = 0; i < s->ncols; i++) {
        sn_col *c = &s->cols[i];
        if (!c->mod->reconfigure)
            continue;
        if ((c->mod == &sn_mod_process && !wp) || (c->mod == &sn_mod_cgroup && !wc))
            continue;
        int r = c->mod->reconfigure(s, c);
        if (r < 0) {
            snprintf(err, errlen, "sense: %s: %s", c->mod->name, strerror(-r));
            return r;
        }
    }
    return 0;
nomem:
    snprintf(err, errlen, "sense: out of memory");
    return -ENOMEM;
}

void sense_close(sense_t *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->ncols; i++)
        if (s->cols[i].mod->fini)
            s->cols[i].mod->fini(s, &s->cols[i]);
    free(s->cols);
    free_list(&s->watch_process, &s->nwatch_process);
    free_list(&s->watch_cgroup, &s->nwatch_cgroup);
    free(s->buf.p);
    free(s->buf2.p);
    sn_kb_close(&s->kb);
    free(s);
}

int sense_collect(sense_t *s, int64_t now_ms)
{
    int total = 0;
    s->now_ms = now_ms;
    for (int i = 0; i < s->ncols; i++) {
        sn_col *c = &s->cols[i];
        if (!c->enabled || !sn_due(now_ms, c->interval_ms))
            continue;
        if (!c->available && now_ms < c->retry_ms)
            continue;
        int64_t t0 = core_mono_ns();
        c->dt = c->last_ms > 0 && now_ms > c->last_ms ? (double)(now_ms - c->last_ms) / 1000.0 : 0;
        c->nput = 0;
        c->gen++;
        int r = c->mod->collect(s, c, now_ms);
        if (r < 0) {
            if (c->available)
                sn_unavailable(s, c, "%s", c->note[0] ? c->note : strerror(-r));
            c->retry_ms = now_ms + SN_RETRY_MS;
            c->last_ms = 0;
        } else {
            if (!c->available) {
                log_info("sense: %s available again", c->mod->name);
                core_sncpy(c->note, sizeof c->note, c->src);
            }
            c->available = true;
            c->last_ms = now_ms;
        }
        c->nseries = c->nput;
        c->cost_us = (double)(core_mono_ns() - t0) / 1000.0;
        total += c->nput;
    }
    return total;
}

int sense_collectors(sense_t *s, sense_collector_info *out, int max)
{
    for (int i = 0; i < s->ncols && i < max; i++) {
        sn_col *c = &s->cols[i];
        sense_collector_info *o = &out[i];
        memset(o, 0, sizeof *o);
        o->name = c->mod->name;
        o->enabled = c->enabled;
        o->available = c->available;
        core_sncpy(o->note, sizeof o->note, c->note);
        o->interval_ms = c->interval_ms;
        o->nseries = c->nseries;
        o->last_cost_us = c->cost_us;
    }
    return s->ncols;
}
