/* util.c: small helpers of the memory module: error messages, monotonic
 * condition variables and deadlines, integer flooring, tier and chunk constants,
 * canonical label sets. */
#include "memory/mem_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const int64_t mem_tier_width[MEM_NTIERS] = {10000, 60000, 3600000};
const int64_t mem_chunk_width[MEM_NTIERS] = {300000, 3600000, 86400000};
const char *const mem_tier_table[MEM_NTIERS] = {"rollup_10s", "rollup_1m", "rollup_1h"};
const char *const mem_tier_done_key[MEM_NTIERS] = {"done_10s", "done_1m", "done_1h"};

const char *mem_source_name(int src)
{
    static const char *const names[] = {"ram", "10s", "1m", "1h"};
    if (src < MEM_SRC_RAM || src > MEM_SRC_1H)
        return "?";
    return names[src];
}


int mem_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc)
        return -rc;
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

/* Absolute CLOCK_MONOTONIC time timeout_ms from now. */
void mem_deadline(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Floors ts to a multiple of step (both >= 0, step > 0). */
int64_t mem_floor(int64_t ts, int64_t step)
{
    int64_t q = ts / step;
    if (ts < 0 && q * step != ts)
        q--;
    return q * step;
}

/* Values escape \\ \" \n: an escaped quote does not end the pair. */
const char *mem_labels_pair_end(const char *s)
{
    const char *q = strchr(s, '"');
    if (!q)
        return s + strlen(s);
    for (q++; *q && *q != '"'; q++)
        if (*q == '\\' && q[1])
            q++;
    return *q ? q + 1 : q;
}

static const char *pair_next(const char *end)
{
    return *end == ',' ? end + 1 : end;
}

bool mem_labels_subset(const char *have, const char *want)
{
    for (const char *w = want; *w;) {
        const char *we = mem_labels_pair_end(w);
        size_t wl = (size_t)(we - w);
        bool found = false;
        for (const char *h = have; *h && !found;) {
            const char *he = mem_labels_pair_end(h);
            found = (size_t)(he - h) == wl && !memcmp(h, w, wl);
            h = pair_next(he);
        }
        if (!found)
            return false;
        w = pair_next(we);
    }
    return true;
}

json_t *mem_labels_json(const char *labels)
{
    json_t *o = json_object();
    char key[256], val[512];
    for (const char *s = labels ? labels : ""; *s && o;) {
        const char *eq = strchr(s, '='), *end = mem_labels_pair_end(s);
        if (!eq || eq > end || eq[1] != '"' || (size_t)(eq - s) >= sizeof key)
            break;
        snprintf(key, sizeof key, "%.*s", (int)(eq - s), s);
        size_t k = 0;
        for (const char *q = eq + 2; q < end - 1 && k + 1 < sizeof val; q++) {
            char c = *q;
            if (c == '\\' && q + 1 < end - 1) {
                c = *++q;
                c = c == 'n' ? '\n' : c;
            }
            val[k++] = c;
        }
        val[k] = 0;
        json_object_set_new(o, key, json_string(val));
        s = pair_next(end);
    }
    return o;
}
