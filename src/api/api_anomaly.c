/* api_anomaly.c: GET /v1/anomalies (?all=1 adds every watched series) and
 * the scores of the anomalous series appended to GET /metrics. Both come
 * from the daemon's hooks, which read a snapshot the loop publishes each
 * tick; without the hooks /v1/anomalies answers 503 and /metrics simply has
 * no scores. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"

enum MHD_Result api_h_anomalies(struct api *a, struct MHD_Connection *c)
{
    static const char *const allowed[] = {"all", NULL};
    const char *vals[2];
    enum MHD_Result ret;
    bool all = false;
    if (!api_get_params(c, allowed, vals, &ret))
        return ret;
    if (vals[0] && api_parse_flag(vals[0], &all) != 0)
        return api_send_error(c, 400, "bad_request", "all: '%.32s' is not 1 or 0 (or true/false, yes/no)",
                              vals[0]);
    if (!a->hooks.anomalies_json)
        return api_send_error(c, 503, "unavailable", "anomaly detection is not running");
    char *s = a->hooks.anomalies_json(a->hooks.ud, all);
    if (!s)
        return api_send_error(c, 503, "unavailable", "anomalies not available yet");
    return api_send_buf(c, 200, s, strlen(s), "application/json");
}

void api_prom_anomaly(struct api *a, api_buf *b)
{
    if (!a->hooks.anomaly_scores)
        return;
    api_anomaly_score *sc = NULL;
    int k = a->hooks.anomaly_scores(a->hooks.ud, &sc);
    if (k >= 0)
        api_prom_render_anomaly(b, sc, (size_t)k);
    free(sc);
}
