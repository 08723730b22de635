/* dream.c: consolidation while idle and the daily digest (a first stand-in;
 * see brain.h). */
#include "brain/brain_int.h"

#include <stdio.h>

char *brain_digest_json(brain *b, const char *day, char *err, size_t errlen)
{
    (void)b, (void)day;
    snprintf(err, errlen, "the digest is not built yet");
    return NULL;
}
