/* episode.c: anomaly tracking and episodes (placeholder, being written). */
#include "detect/detect.h"
