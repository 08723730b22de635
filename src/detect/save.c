/* save.c: detector state to and from bytes (version + size + checksum). */
#include "detect/detect_int.h"

#include <stdio.h>
#include <string.h>

#define SAVE_MAGIC 0x56534449u /* "IDSV" */

typedef struct save_header {
    uint32_t magic;
    uint32_t size;
    uint32_t version;
    uint32_t sum;
} save_header;

static uint32_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 16777619u; }
    return h;
}

size_t detect_save(const detect_state *st, void *buf, size_t cap)
{
    size_t need = sizeof(save_header) + sizeof *st;
    if (cap < need) return 0;
    save_header h = { SAVE_MAGIC, (uint32_t)sizeof *st, st->version, fnv1a(st, sizeof *st) };
    memcpy(buf, &h, sizeof h);
    memcpy((char *)buf + sizeof h, st, sizeof *st);
    return need;
}

int detect_load(detect_state *st, const void *buf, size_t len, char *err, size_t errlen)
{
    save_header h;
    const char *why = NULL;
    if (len != sizeof h + sizeof *st) why = "wrong size";
    else {
        memcpy(&h, buf, sizeof h);
        if (h.magic != SAVE_MAGIC) why = "not detector state";
        else if (h.size != sizeof *st) why = "wrong size";
        else if (h.sum != fnv1a((const char *)buf + sizeof h, sizeof *st)) why = "checksum mismatch";
    }
    if (!why) {
        detect_state tmp;
        memcpy(&tmp, (const char *)buf + sizeof h, sizeof tmp);
        detect_state fresh; /* the version this build writes */
        detect_reset(&fresh);
        if (tmp.version != h.version || tmp.version == 0) why = "unknown version";
        else if (tmp.version != fresh.version) {
            /* same size, another layout: never reinterpret its bytes */
            snprintf(err, errlen, "detector state: version %u, this detector reads version %u", (unsigned)tmp.version,
                     (unsigned)fresh.version);
            detect_reset(st);
            return -1;
        } else { memcpy(st, &tmp, sizeof tmp); return 0; }
    }
    snprintf(err, errlen, "detector state: %s", why);
    detect_reset(st);
    return -1;
}
