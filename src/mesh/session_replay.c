/* session_replay.c: the transport's sliding replay window, a 2,048-bit ring
 * bitmap as in RFC 6479 (and WireGuard's counter.c). Judged after the packet
 * authenticated; a packet is recorded only when commit is set. */
#include <string.h>

#include "mesh/session_int.h"

void sess_replay_init(sess_replay *w)
{
    memset(w, 0, sizeof *w);
}

bool sess_replay_check(sess_replay *w, uint64_t counter, bool commit)
{
    uint64_t index = counter >> 6;
    if (counter > w->top) {
        if (commit) {
            uint64_t cur = w->top >> 6, diff = index - cur;
            if (diff > SESS_REPLAY_BLOCKS)
                diff = SESS_REPLAY_BLOCKS;
            for (uint64_t i = 1; i <= diff; i++)
                w->bitmap[(cur + i) & (SESS_REPLAY_BLOCKS - 1)] = 0;
            w->top = counter;
        }
    } else if (w->top - counter > SESS_REPLAY_WINDOW) {
        return false;
    }
    uint64_t bit = 1ull << (counter & 63);
    uint64_t *blk = &w->bitmap[index & (SESS_REPLAY_BLOCKS - 1)];
    if (*blk & bit)
        return false;
    if (commit)
        *blk |= bit;
    return true;
}
