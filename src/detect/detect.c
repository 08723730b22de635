/* detect.c: the ensemble behind detect_feed (placeholder: EWMA z-score). */
#include "detect/detect_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETECT_MAGIC 0x54454449u /* "IDET" */
#define DETECT_VERSION 1u

size_t detect_state_size(void) { return sizeof(detect_state); }

void detect_reset(detect_state *st)
{
    memset(st, 0, sizeof *st);
    st->magic = DETECT_MAGIC;
    st->version = DETECT_VERSION;
}

detect_state *detect_new(void)
{
    detect_state *st = malloc(sizeof *st);
    if (st) detect_reset(st);
    return st;
}

void detect_free(detect_state *st) { free(st); }

uint64_t detect_count(const detect_state *st) { return st->n; }

detect_result detect_feed(detect_state *st, int64_t ts_ms, double value)
{
    (void)ts_ms;
    detect_result r = { 0.0, DETECT_REASON_NONE, NAN };
    if (!isfinite(value)) return r;
    if (st->n > 10) {
        double sd = sqrt(st->var) + 1e-9 * (1 + fabs(st->mean));
        double z = (value - st->mean) / sd;
        r.expected = st->mean;
        r.score = 1.0 - exp(-fabs(z) / 4.0);
        if (r.score > 0.5) r.reason = z > 0 ? DETECT_REASON_SPIKE : DETECT_REASON_DIP;
    }
    double a = st->n < 100 ? 1.0 / (double)(st->n + 1) : 0.01;
    double d = value - st->mean;
    st->mean += a * d;
    st->var = (1 - a) * (st->var + a * d * d);
    st->n++;
    return r;
}

static const char *const reason_names[DETECT_REASON_COUNT] = {
    "none", "spike", "dip", "level_up", "level_down", "seasonal", "flatline", "variance", "pattern",
};

const char *detect_reason_name(detect_reason r)
{
    return (unsigned)r < DETECT_REASON_COUNT ? reason_names[r] : "unknown";
}
