/* ask.c: answers a question from memory (a first stand-in; see brain.h). */
#include "brain/brain_int.h"

#include <stdio.h>

char *brain_ask_json(brain *b, const char *question, int64_t now_ms, int *status, char *err, size_t errlen)
{
    (void)b, (void)question, (void)now_ms;
    *status = 503;
    snprintf(err, errlen, "asking is not built yet");
    return NULL;
}
