/* csv.c: timestamp,value CSV reader (placeholder, being written). */
#include "detect/detect.h"
