/* tmp_stubs.c: TEMPORARY stand-ins for what other parts of issue 10 add at
 * the same time, so the brain builds and runs before they land: heal's
 * heal_engine_incident_new/attach/propose and heal_action_parse_text (part
 * healx) and brain_signature_build (part signature). Every definition is
 * weak, so the real one wins as soon as it is linked; this file is deleted
 * when main has them. Nothing here is meant to last. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "brain/brain_int.h"
#include "brain/tmp_stubs.h" /* TEMPORARY: until heal.h has them */
#include "heal/engine_int.h"
#include "heal/rules.h"

__attribute__((weak)) int heal_engine_incident_new(heal_engine *e, const char *service, const char *what,
                                                   json_t *evidence, uint64_t *id, char *err, size_t errlen)
{
    incident *inc = eng_incident_open(e, service, what, "brain", NULL, 0, core_now_ms(), evidence);
    if (!inc) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *id = inc->id;
    eng_publish(e);
    return 0;
}

__attribute__((weak)) int heal_engine_incident_attach(heal_engine *e, uint64_t id, const char *key, json_t *value)
{
    incident *inc = eng_incident_find(e, id);
    if (!inc) {
        json_decref(value);
        return -ENOENT;
    }
    json_object_set_new(inc->evidence, key, value);
    e->incidents_dirty = true;
    eng_publish(e);
    return 0;
}

__attribute__((weak)) int heal_engine_propose(heal_engine *e, uint64_t id, const heal_action *acts, int n,
                                              const char *who, const char *why, char *err, size_t errlen)
{
    snprintf(err, errlen, "heal_engine_propose is not there yet (temporary stub)");
    return -ENOSYS;
}

__attribute__((weak)) int heal_action_parse_text(const char *text, const char *service, heal_action *out, char *err,
                                                 size_t errlen)
{
    char line[700];
    snprintf(line, sizeof line, "if cpu > 100000%% then %s", text);
    heal_rule r;
    int rc = heal_rule_parse(line, NULL, 0, &r, err, errlen);
    if (rc)
        return rc;
    *out = r.actions[0];
    snprintf(out->service, sizeof out->service, "%s", service ? service : "");
    heal_rule_free(&r);
    return 0;
}

/* A minimal signature: the trigger and the exit heal saw. */
__attribute__((weak)) json_t *brain_signature_build(const brain_sig_ctx *ctx, const char *service, const char *trigger,
                                                    const json_t *incident_json, int64_t from_ms, int64_t to_ms)
{
    json_t *s = json_pack("{s:s, s:s, s:I, s:I, s:[], s:[], s:[], s:[], s:[], s:[], s:[], s:[], s:[], s:[]}",
                          "service", service, "trigger", trigger, "from", (json_int_t)from_ms, "to",
                          (json_int_t)to_ms, "probes", "exits", "anomalies", "logs", "kernel", "changes", "ports",
                          "dependencies", "cpu_top", "features");
    if (!s)
        return NULL;
    char f[64];
    snprintf(f, sizeof f, "trigger:%s", trigger);
    json_array_append_new(json_object_get(s, "features"), json_string(f));
    json_t *ex = json_object_get(json_object_get(incident_json, "evidence"), "exit");
    if (ex) {
        json_array_append_new(json_object_get(s, "exits"),
                              json_pack("{s:I, s:O, s:O, s:i}", "ts", (json_int_t)to_ms, "code",
                                        json_object_get(ex, "status"), "signal", json_object_get(ex, "signal"),
                                        "uptime_ms", 0));
        snprintf(f, sizeof f, "exit:code:%d", (int)json_integer_value(json_object_get(ex, "status")));
        json_array_append_new(json_object_get(s, "features"), json_string(f));
    }
    return s;
}
