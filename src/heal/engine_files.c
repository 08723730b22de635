/* engine_files.c: the files a service depends on ([service.X] config_path):
 * known-good copies under <state_dir>/known-good/<service>/, file.changed
 * events, and the restore action that puts a path back. */
#include "heal/engine_int.h"

#include <errno.h>
#include <stdio.h>

int eng_files_can_restore(heal_engine *e, const char *service, const char *path, char *msg, size_t n)
{
    (void)e, (void)service, (void)path;
    snprintf(msg, n, "no known-good copy");
    return -ENOENT;
}

int eng_files_restore(heal_engine *e, const heal_action *a, char *msg, size_t n)
{
    (void)e, (void)a;
    snprintf(msg, n, "no known-good copy");
    return -ENOENT;
}

void eng_files_restored(heal_engine *e, const heal_action *a, int rc, const char *msg)
{
    eng_event(e, "file.restored", rc ? "error" : "info", a->service,
              json_pack("{s:s, s:s, s:b, s:s}", "service", a->service, "path", a->path, "ok", rc == 0, "message", msg));
}
