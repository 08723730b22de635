/* test_rng.h: the deterministic noise the detector tests share (xorshift64
 * and Box-Muller): seed rng_state, then urand() in (0, 1), gauss() ~ N(0, 1).
 * One copy per test program (static). */
#ifndef IPPOC_TEST_RNG_H
#define IPPOC_TEST_RNG_H

#include <math.h>
#include <stdint.h>

static uint64_t rng_state;

static inline double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((double)(rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static inline double gauss(void) { return sqrt(-2 * log(urand())) * cos(2 * M_PI * urand()); }

#endif
