/* The poll-handle watch of a socket asock reads and writes itself: see
 * watch.h. */
#include "internal.h"

void asock__watch_init(asock__watch *w) {
  w->socket = ASOCK__NO_SOCKET;
  w->cb = NULL;
  w->want = 0;
  w->armed = 0;
  w->busy = 0;
}

int asock__watch_open(asock__watch *w, uv_loop_t *uv, uv_os_sock_t s,
                      uv_poll_cb cb) {
  int err = asock__uv_poll_init_socket(uv, &w->poll, s);
  if (err != 0)
    return asock__from_uv(err);
  w->socket = s;
  w->cb = cb;
  w->want = 0;
  w->armed = 0;
  w->busy = 0;
  return 0;
}

void asock__watch_update(asock__watch *w) {
  int events = 0;

  if (w->want == w->armed || w->busy || w->socket == ASOCK__NO_SOCKET)
    return;
  if (w->want & ASOCK__WATCH_READ)
    events |= UV_READABLE;
  if (w->want & ASOCK__WATCH_WRITE)
    events |= UV_WRITABLE;
  if (events == 0)
    uv_poll_stop(&w->poll);
  else if (asock__uv_poll_start(&w->poll, events, w->cb) != 0)
    return; /* libuv still watches what it did: the next change retries */
  w->armed = w->want;
}

void asock__watch_want(asock__watch *w, unsigned int what, int on) {
  if (on)
    w->want |= (unsigned char)what;
  else
    w->want &= (unsigned char)~what;
  asock__watch_update(w);
}

void asock__watch_forget(asock__watch *w) {
  w->socket = ASOCK__NO_SOCKET;
  w->want = 0;
  w->armed = 0;
}
