/* tmp_stubs.c: a TEMPORARY stand-in for brain_signature_build (part
 * signature of issue 10), so the brain builds and runs before it lands. The
 * definition is weak; this file is deleted when main has the real one.
 * Nothing here is meant to last. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "brain/brain_int.h"

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
