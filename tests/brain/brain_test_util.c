/* brain_test_util.c: the brain tests' shared set-up (see brain_test_util.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "brain_test_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>

void btu_tmpdir(char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "/tmp/ippoc-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
}

void btu_config(core_config *cfg, const char *text, const char *dir)
{
    char err[1024] = "";
    core_log_setup(CORE_LOG_ERR, 0);
    core_config_defaults(cfg);
    if (text && core_config_load_string(cfg, text, "t.conf", err, sizeof err))
        fail_msg("config: %s", err);
    snprintf(cfg->state_dir, sizeof cfg->state_dir, "%s", dir);
}

mem_t *btu_mem_open(const core_config *cfg)
{
    char err[1024] = "";
    mem_t *m = NULL;
    if (mem_open(&m, cfg, err, sizeof err))
        fail_msg("mem_open: %s", err);
    return m;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

void btu_rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void btu_close(mem_t *m, core_config *cfg, const char *dir)
{
    if (m)
        mem_close(m);
    core_config_free(cfg);
    btu_rm_tree(dir);
}

json_t *btu_fixture(const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/brain/fixtures/%s.json", getenv("IPPOC_SRC") ? getenv("IPPOC_SRC") : ".",
             name);
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    if (!o)
        fail_msg("%s: %s", path, e.text);
    return o;
}
