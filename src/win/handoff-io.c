/* The listener of a loop group that hands its connections to other loops
 * (ASOCK__LISTEN_HANDOFF), on Windows. A connection libuv's listener takes
 * is associated with the accepting loop's completion port inside
 * uv_accept(), and a SOCKET keeps its port for good: the loop it is handed
 * to would run it through libuv's emulation of IOCP (uv_tcp_open() falls
 * back to it without a word), with a thread-pool wait per read.
 *
 * So this listener is not libuv's: a non-blocking listening socket watched
 * by a uv_poll_t (libuv's AFD polls), and accept() when it reads ready, as
 * on Unix. accept() makes a socket associated with no port, and the loop it
 * goes to opens it with uv_tcp_open() on its own thread, into its own
 * completion port (tcp-io.c, asock__io_adopt()). The listener's TCP handle
 * stays initialised and unopened beside it, and is closed after it. */
#include <winsock2.h>

#include "internal.h"

struct asock__handoff {
  asock__win_poll p; /* READ wanted while accept ops wait; the close
                      * callback frees the struct */
};

static int wsa_error(void) { return asock__win_error(WSAGetLastError()); }

asock__handoff *asock__win_handoff(const asock_socket *sock) {
  if (asock__socket_is_udp(sock))
    return NULL;
  return (asock__handoff *)sock->io.handle.tcp.data;
}

uv_os_sock_t asock__win_handoff_socket(const asock_socket *sock) {
  asock__handoff *h = asock__win_handoff(sock);
  return h != NULL ? h->p.watch.socket : INVALID_SOCKET;
}

/* A socket set up as libuv's listener would be, with what asock's adds
 * (tcp-io.c): SO_REUSEADDR or SO_EXCLUSIVEADDRUSE only when asked (on
 * Windows SO_REUSEADDR lets another socket take the port over),
 * IPV6_V6ONLY on or off as asked, the application's options, bound to
 * addr. */
static int open_listener(const struct sockaddr *addr, unsigned int flags,
                         const asock__tcp_options *opts, SOCKET *out) {
  int len = addr->sa_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                        : (int)sizeof(struct sockaddr_in);
  SOCKET s;
  int err = 0;

  *out = INVALID_SOCKET;
  /* uv_tcp_bind() refuses it too. */
  if ((flags & ASOCK_LISTEN_IPV6ONLY) && addr->sa_family != AF_INET6)
    return ASOCK_EINVAL;
  s = socket(addr->sa_family, SOCK_STREAM, IPPROTO_TCP);
  if (s == INVALID_SOCKET)
    return wsa_error();
  /* As libuv does: a child process does not inherit the socket. */
  if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0)) {
    err = asock__from_uv(uv_translate_sys_error((int)GetLastError()));
    goto fail;
  }
  if (flags & ASOCK_BIND_REUSEADDR)
    err = asock__os_set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
  else if (flags & ASOCK_BIND_EXCLUSIVE)
    err = asock__os_set_int(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1);
  if (err != 0)
    goto fail;
  if (addr->sa_family == AF_INET6) {
    /* Windows makes IPv6 sockets IPv6-only unless told otherwise. libuv
     * ignores a failure (a host without IPv4): so does this. */
    (void)asock__os_set_int(s, IPPROTO_IPV6, IPV6_V6ONLY,
                            (flags & ASOCK_LISTEN_IPV6ONLY) != 0);
  }
  err = asock__apply_options(s, opts);
  if (err != 0)
    goto fail;
  if (bind(s, addr, len) != 0) {
    err = WSAGetLastError() == WSAEACCES ? ASOCK_EADDRINUSE : wsa_error();
    goto fail;
  }
  *out = s;
  return 0;

fail:
  closesocket(s);
  return err;
}

/* The listening socket reads ready (or failed) while accepts wait: they
 * try it. */
static void on_ready(asock__win_poll *p, int readable, int writable) {
  (void)writable;
  if (readable)
    asock__on_connection(p->sock, 0);
}

int asock__win_handoff_bind(asock_socket *sock, const struct sockaddr *addr,
                            unsigned int flags,
                            const asock__tcp_options *opts) {
  asock__handoff *h;
  SOCKET s;
  int err;

  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return ASOCK_EAFNOSUPPORT;
  h = asock__malloc(sizeof(*h));
  if (h == NULL)
    return ASOCK_ENOMEM;
  err = open_listener(addr, flags, opts, &s);
  /* The poll handle makes the socket non-blocking; accept() then gives
   * non-blocking sockets too. */
  if (err == 0)
    err = asock__win_poll_open(&h->p, sock, s, on_ready);
  if (err != 0) {
    asock__free(h);
    return err;
  }
  sock->io.handle.tcp.data = h;
  return 0;
}

int asock__win_handoff_listen(asock_socket *sock, int backlog) {
  if (listen(asock__win_handoff(sock)->p.watch.socket, backlog) != 0)
    return wsa_error();
  return 0;
}

int asock__win_handoff_accept(asock_socket *listener, uintptr_t *conn) {
  asock__handoff *h = asock__win_handoff(listener);
  SOCKET s;

  *conn = 0;
  if (h == NULL || h->p.watch.socket == INVALID_SOCKET)
    return ASOCK_EBADF;
  for (;;) {
    int e;
    s = accept(h->p.watch.socket, NULL, NULL);
    if (s != INVALID_SOCKET)
      break;
    e = WSAGetLastError();
    /* A connection reset before it was accepted is not the listener's
     * error: the next one is tried. */
    if (e == WSAECONNRESET || e == WSAEINTR)
      continue;
    if (e == WSAEWOULDBLOCK)
      return ASOCK_EAGAIN;
    return asock__win_error(e);
  }
  /* Not inherited by a child process started before the socket is adopted
   * (uv_tcp_open() would see to it only then). */
  (void)SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  *conn = (uintptr_t)s;
  return 0;
}

void asock__win_handoff_want(asock_socket *listener, int wanted) {
  asock__handoff *h = asock__win_handoff(listener);

  if (h != NULL)
    asock__win_poll_want(&h->p, ASOCK__WATCH_READ, wanted);
}

static void on_tcp_closed(uv_handle_t *handle) {
  asock__socket_closed(
      ASOCK__CONTAINER_OF(handle, asock_socket, io.handle.tcp));
}

/* The poll handle is gone: the TCP handle, which never opened, goes next,
 * and its callback reports the socket closed. */
static void on_poll_closed(uv_handle_t *handle) {
  asock__handoff *h = ASOCK__CONTAINER_OF(handle, asock__handoff, p.watch.poll);
  asock_socket *sock = h->p.sock;

  sock->io.handle.tcp.data = NULL;
  asock__free(h);
  uv_close((uv_handle_t *)&sock->io.handle.tcp, on_tcp_closed);
}

void asock__win_handoff_close(asock_socket *sock) {
  asock__win_poll_close(&asock__win_handoff(sock)->p, on_poll_closed);
}
