/* heal_fx.c: the heal tests' real engine (heal_fx.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "heal_fx.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void on_wake(uv_timer_t *t) { (void)t; }

static void on_stopped(void *ud)
{
    ((heal_fx *)ud)->stopped = true;
}

void heal_fx_tmpdir(heal_fx *h, const char *name)
{
    snprintf(h->dir, sizeof h->dir, "/tmp/ippoc-%s-XXXXXX", name);
    assert_non_null(mkdtemp(h->dir));
    core_log_setup(CORE_LOG_ERR, 0);
    core_config_defaults(&h->cfg);
}

void heal_fx_start(heal_fx *h, const char *conf)
{
    char err[1024] = "";
    if (core_config_load_string(&h->cfg, conf, "t.conf", err, sizeof err))
        fail_msg("config: %s", err);
    snprintf(h->cfg.state_dir, sizeof h->cfg.state_dir, "%s", h->dir);
    if (mem_open(&h->m, &h->cfg, err, sizeof err))
        fail_msg("mem_open: %s", err);
    assert_int_equal(uv_loop_init(&h->loop), 0);
    uv_timer_init(&h->loop, &h->wake);
    uv_timer_start(&h->wake, on_wake, 10, 10);
    if (heal_engine_new(&h->loop, &h->cfg, h->m, &h->e, err, sizeof err))
        fail_msg("heal_engine_new: %s", err);
}

void heal_fx_stop(heal_fx *h)
{
    heal_engine_stop(h->e, on_stopped, h);
    int64_t end = core_mono_ms() + 10000;
    while (!h->stopped && core_mono_ms() < end)
        uv_run(&h->loop, UV_RUN_ONCE);
    heal_engine_free(h->e);
    uv_close((uv_handle_t *)&h->wake, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&h->loop), 0);
    mem_close(h->m);
    nftw(h->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    core_config_free(&h->cfg);
}

static bool is(const char *want, const char *have)
{
    return !want || !strcmp(want, have ? have : "");
}

static int find_cb(const heal_audit_entry *e, void *ud)
{
    heal_fx_find *q = ud;
    json_t *a = json_object_get(e->json, "action");
    const char *reason = json_string_value(json_object_get(e->json, "reason"));
    if (!is(q->kind, e->kind) || !is(q->action, json_string_value(json_object_get(a, "kind"))) ||
        !is(q->text, json_string_value(json_object_get(a, "text"))) ||
        !is(q->verdict, json_string_value(json_object_get(e->json, "verdict"))) ||
        (q->reason_has && !strstr(reason ? reason : "", q->reason_has)))
        return 0;
    q->found++;
    json_decref(q->rec);
    q->rec = json_incref(e->json);
    return 0;
}

int heal_fx_audit_count(heal_fx *h, heal_fx_find *q)
{
    int64_t end = core_mono_ms() + 2000, tick = 0;
    char err[256];
    for (;;) {
        q->found = 0;
        assert_int_equal(heal_audit_read(heal_engine_audit_path(h->e), NULL, find_cb, q, err, sizeof err), 0);
        if (q->found || core_mono_ms() >= end)
            return q->found;
        uv_run(&h->loop, UV_RUN_ONCE);
        if (core_mono_ms() - tick >= 200) {
            tick = core_mono_ms();
            heal_engine_tick(h->e, core_now_ms());
        }
    }
}
