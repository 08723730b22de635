/* api_llm.c: GET /v1/llm, the language-model client's status (providers,
 * budgets, counters, recent fallbacks) as the daemon's llm_json hook gives
 * it (llm_status_json). */
#include <string.h>

#include "api/api_int.h"

enum MHD_Result api_h_llm(struct api *a, struct MHD_Connection *c)
{
    enum MHD_Result ret;
    if (!api_no_params(c, &ret))
        return ret;
    if (!a->hooks.llm_json)
        return api_send_error(c, 503, "unavailable", "the language-model client is not running");
    char *s = a->hooks.llm_json(a->hooks.ud);
    if (!s)
        return api_send_error(c, 503, "unavailable", "the language-model client's status is not available");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}
