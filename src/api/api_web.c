/* api_web.c: the dashboard's static files, built into the binary (web/,
 * embedded by tools/embed_web.py). Stand-in until they are: 404. */
#include "api/api_int.h"

enum MHD_Result api_h_web(struct api *a, struct MHD_Connection *c, const char *url, bool head)
{
    (void)a;
    (void)head;
    return api_send_error(c, 404, "not_found", "the dashboard is not built into this binary (%.200s)", url);
}
