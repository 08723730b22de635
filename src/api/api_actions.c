/* api_actions.c: POST /v1/actions, a typed action proposed from outside (an
 * assistant through `ippoc mcp`, `ippoc propose`, the dashboard): checked
 * here, then handed to the propose hook, which sends it through heal's
 * policy and queues it for a person's approval. Stand-in until the route is
 * built: the hook is called with nothing checked. */
#include <string.h>

#include "api/api_int.h"

enum MHD_Result api_h_actions(struct api *a, struct MHD_Connection *c, const char *body, size_t len)
{
    (void)body;
    (void)len;
    if (!a->hooks.propose)
        return api_send_error(c, 503, "unavailable", "healing is not running");
    return api_send_error(c, 501, "not_implemented", "POST /v1/actions is not built yet");
}
