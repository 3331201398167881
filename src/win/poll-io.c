/* An OS socket of asock's own on Windows, watched by a uv_poll_t (libuv's
 * AFD polls on IOCP): what a UDP socket (udp-io.c) and a loop group's
 * hand-off listener (handoff-io.c) are built on. */
#include <winsock2.h>

#include "internal.h"

static void on_poll(uv_poll_t *poll, int status, int events);

int asock__win_poll_open(asock__win_poll *p, struct asock_socket *sock,
                         uv_os_sock_t s, asock__win_ready_fn ready) {
  /* The poll handle makes the socket non-blocking. */
  int err = asock__from_uv(uv_poll_init_socket(sock->loop->uv, &p->poll, s));
  if (err != 0) {
    closesocket(s);
    return err;
  }
  p->sock = sock;
  p->socket = s;
  p->ready = ready;
  p->want = 0;
  p->armed = 0;
  p->busy = 0;
  return 0;
}

/* Makes the poll handle watch what is wanted. Not while on_poll() runs: it
 * updates once at its end, so that a want dropped and taken again inside a
 * callback costs nothing (each change costs libuv a new AFD poll). */
static void update(asock__win_poll *p) {
  int events = 0;

  if (p->want == p->armed || p->busy || p->socket == INVALID_SOCKET)
    return;
  if (p->want & ASOCK__WIN_POLL_READ)
    events |= UV_READABLE;
  if (p->want & ASOCK__WIN_POLL_WRITE)
    events |= UV_WRITABLE;
  if (events == 0)
    uv_poll_stop(&p->poll);
  else
    uv_poll_start(&p->poll, events, on_poll);
  p->armed = p->want;
}

void asock__win_poll_want(asock__win_poll *p, unsigned int what, int on) {
  if (on)
    p->want |= (unsigned char)what;
  else
    p->want &= (unsigned char)~what;
  update(p);
}

static void on_poll(uv_poll_t *poll, int status, int events) {
  asock__win_poll *p = (asock__win_poll *)poll;

  if (status < 0) {
    /* libuv stopped watching after an error: what waits tries the socket
     * and meets the error itself. */
    p->armed = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  p->busy = 1;
  p->ready(p, (events & UV_READABLE) && (p->want & ASOCK__WIN_POLL_READ),
           (events & UV_WRITABLE) && (p->want & ASOCK__WIN_POLL_WRITE));
  /* The socket may have closed meanwhile; the handle lives until the close
   * callback, and update() leaves a closed one alone. */
  p->busy = 0;
  update(p);
}

void asock__win_poll_close(asock__win_poll *p, uv_close_cb closed) {
  /* The AFD polls still posted end when the socket closes, and libuv waits
   * for them before the close callback; closing it now frees the port at
   * once, as on Unix. */
  uv_close((uv_handle_t *)&p->poll, closed);
  closesocket(p->socket);
  p->socket = INVALID_SOCKET;
  p->want = 0;
  p->armed = 0;
}
