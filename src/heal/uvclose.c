/* uvclose.c: uv_close that tells ThreadSanitizer about the descriptor libuv
 * is about to close behind its back (see uvclose.h). */
#include "heal/uvclose.h"

#include "core/core.h" /* IPPOC_TSAN */

#ifdef IPPOC_TSAN
/* The sanitizer runtime's syscall hook (sanitizer/linux_syscall_hooks.h,
 * which gcc does not ship): forgets the descriptor's history as a close does. */
void __sanitizer_syscall_pre_impl_close(long fd);
#endif

void heal_uv_close(uv_handle_t *h, uv_close_cb cb)
{
#ifdef IPPOC_TSAN
    uv_os_fd_t fd;
    uv_handle_type t = uv_handle_get_type(h);
    if ((t == UV_NAMED_PIPE || t == UV_TCP || t == UV_UDP || t == UV_TTY) && uv_fileno(h, &fd) == 0 && fd >= 0)
        __sanitizer_syscall_pre_impl_close((long)fd);
#endif
    uv_close(h, cb);
}
