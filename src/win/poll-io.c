/* An OS socket of asock's own on Windows, watched by a uv_poll_t (libuv's
 * AFD polls on IOCP) through the shared watch (src/watch.c): what a UDP
 * socket (udp-io.c) and a loop group's hand-off listener (handoff-io.c)
 * are built on. */
#include <winsock2.h>

#include "internal.h"

static void on_poll(uv_poll_t *poll, int status, int events);

int asock__win_poll_open(asock__win_poll *p, struct asock_socket *sock,
                         uv_os_sock_t s, asock__win_ready_fn ready) {
  /* The poll handle makes the socket non-blocking. */
  int err = asock__watch_open(&p->watch, asock__socket_uv(sock), s, on_poll);
  if (err != 0) {
    closesocket(s);
    return err;
  }
  p->sock = sock;
  p->ready = ready;
  return 0;
}

void asock__win_poll_want(asock__win_poll *p, unsigned int what, int on) {
  asock__watch_want(&p->watch, what, on);
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  asock__win_poll *p = ASOCK__CONTAINER_OF(poll, asock__win_poll, watch.poll);
  unsigned int want = p->watch.want;

  if (status < 0) {
    /* libuv stopped watching after an error: what waits tries the socket
     * and meets the error itself. */
    p->watch.armed = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  p->watch.busy = 1;
  p->ready(p, (events & UV_READABLE) && (want & ASOCK__WATCH_READ),
           (events & UV_WRITABLE) && (want & ASOCK__WATCH_WRITE));
  /* The socket may have closed meanwhile; the handle lives until the close
   * callback, and the update leaves a closed one alone. */
  p->watch.busy = 0;
  asock__watch_update(&p->watch);
}

void asock__win_poll_close(asock__win_poll *p, uv_close_cb closed) {
  /* The AFD polls still posted end when the socket closes, and libuv waits
   * for them before the close callback; closing it now frees the port at
   * once, as on Unix. */
  uv_close((uv_handle_t *)&p->watch.poll, closed);
  closesocket(p->watch.socket);
  asock__watch_forget(&p->watch);
}
