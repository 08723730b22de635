/* action_check.c: the safety policy's static part, pure, for actions that
 * are only proposed (a model's): is the action's kind on the service's
 * allowlist, and is its target one heal would accept (a restore of one of
 * the service's own config_path, never pid 1)? The stateful parts (mode,
 * rate limits, flapping, live pid checks) stay with heal_policy_decide and
 * the engine, which still judge the action when it is really proposed. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "heal/heal.h"
#include "heal/policy.h"

int heal_action_check(const heal_action *a, const char *allow, const char *const *config_paths, int npaths,
                      char *why, size_t whylen)
{
    uint32_t mask = HEAL_ALLOW_DEFAULT;
    char err[300];
    if (allow && *allow && heal_policy_allow_parse(allow, &mask, err, sizeof err) != 0) {
        snprintf(why, whylen, "the service's allowlist does not parse: %s", err);
        return -EINVAL;
    }
    if (a->kind < 0 || a->kind >= HEAL_ACT_COUNT) {
        snprintf(why, whylen, "unknown action kind");
        return -EINVAL;
    }
    if (a->kind == HEAL_ACT_GENOME) {
        snprintf(why, whylen, "genome changes are the cell's, never a service's (ippoc rollback, ippoc evolve)");
        return -EPERM;
    }
    if (!(mask & HEAL_ALLOW(a->kind))) {
        snprintf(why, whylen, "%s is not on the allowlist of service '%s'", heal_action_name(a->kind), a->service);
        return -EPERM;
    }
    if (a->kind == HEAL_ACT_RESTORE) {
        for (int i = 0; i < npaths; i++)
            if (config_paths[i] && !strcmp(config_paths[i], a->path))
                return 0;
        snprintf(why, whylen, "restore %s: not one of the config_path of service '%s'", a->path, a->service);
        return -EPERM;
    }
    if ((a->kind == HEAL_ACT_SIGNAL_PID || a->kind == HEAL_ACT_RENICE_PID) && a->pid <= 1) {
        snprintf(why, whylen, "pid %d is never a target", a->pid);
        return -EPERM;
    }
    return 0;
}
