/* prefs.c: the operators' preferences (a first stand-in; see brain.h). */
#include "brain/brain_int.h"

#include <string.h>

char *brain_prefs_json(brain *b)
{
    (void)b;
    return strdup("{\"configured\":[],\"learned\":[]}");
}
