/* tmp_stubs.h: TEMPORARY prototypes of heal's additions of issue 10 (part
 * healx), as the contract gives them, until heal.h has them; deleted then
 * with tmp_stubs.c. */
#ifndef IPPOC_BRAIN_TMP_STUBS_H
#define IPPOC_BRAIN_TMP_STUBS_H

#include <jansson.h>

#include "heal/action.h"
#include "heal/heal.h"

int heal_engine_incident_new(heal_engine *e, const char *service, const char *what, json_t *evidence,
                             uint64_t *id, char *err, size_t errlen);
int heal_engine_incident_attach(heal_engine *e, uint64_t id, const char *key, json_t *value);
int heal_engine_propose(heal_engine *e, uint64_t id, const heal_action *acts, int n, const char *who,
                        const char *why, char *err, size_t errlen);
int heal_action_parse_text(const char *text, const char *service, heal_action *out, char *err, size_t errlen);

#endif
