/* detect_int.h: the detector's state layout, internal to src/detect. */
#ifndef IPPOC_DETECT_INT_H
#define IPPOC_DETECT_INT_H

#include "detect/detect.h"

struct detect_state {
    uint32_t magic;
    uint32_t version;
    uint64_t n;
    double mean, var;
};

#endif
