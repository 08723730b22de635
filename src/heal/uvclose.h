/* uvclose.h: uv_close for handles whose descriptor libuv closes (pipes, TCP,
 * UDP, TTYs), telling ThreadSanitizer about the close first. */
#ifndef IPPOC_HEAL_UVCLOSE_H
#define IPPOC_HEAL_UVCLOSE_H

#include <uv.h>

/* uv_close(h, cb). Debian's libuv closes descriptors with a raw close
 * syscall that TSan's interceptors never see, so TSan keeps the descriptor's
 * history and reports a race when another thread (libgit2's opendir, say)
 * gets the same number next. Under TSan this calls the sanitizer's own
 * close hook on the handle's descriptor just before; elsewhere it is only
 * uv_close. Not for poll handles: libuv does not close their descriptor. */
void heal_uv_close(uv_handle_t *h, uv_close_cb cb);

#endif
