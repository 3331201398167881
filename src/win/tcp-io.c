/* Socket I/O on Windows: libuv's TCP handle on IOCP does the work, and
 * its callbacks are turned into the reports the shared code expects. The
 * functions for every socket (init, close, buffer sizes, addresses) hand UDP
 * sockets, whose handle is udp-io.c's, to Winsock or to udp-io.c, and a loop
 * group's hand-off listener to handoff-io.c. */
#include <winsock2.h>

#include "internal.h"

static asock_op *op_of(void *req) {
  return ASOCK__CONTAINER_OF(req, asock_op, req);
}

/* The socket a libuv callback's handle (its TCP handle) lies in. */
static asock_socket *socket_of(void *handle) {
  return ASOCK__CONTAINER_OF(handle, asock_socket, io.handle.tcp);
}

static void on_close(uv_handle_t *handle) {
  asock__socket_closed(socket_of(handle));
}

static int is_udp(const asock_socket *sock) {
  return asock__socket_is_udp(sock);
}

size_t asock__io_socket_size(const asock_loop *loop) {
  (void)loop;
  return sizeof(asock_socket);
}

int asock__io_init(asock_socket *sock) {
  int err;

  sock->io.pending_conns = 0;
  if (is_udp(sock)) {
    sock->io.handle.udp = NULL; /* made by the bind */
    return 0;
  }
  err = uv_tcp_init(asock__socket_uv(sock), &sock->io.handle.tcp);
  /* No hand-off listener (asock__win_handoff()). */
  sock->io.handle.tcp.data = NULL;
  return asock__from_uv(err);
}

/* Makes the TCP handle's OS socket for family, with SO_REUSEADDR or
 * SO_EXCLUSIVEADDRUSE and IPV6_V6ONLY as the flags ask, the application's
 * options (opts, may be NULL), and bound to addr unless it is NULL. Every
 * step that can fail comes before uv_tcp_open(), so that a failure leaves
 * the handle as it was; a bind failure is reported at once (uv_tcp_bind()
 * would report EADDRINUSE only at the listen or connect). */
static int open_os(asock_socket *sock, int family, unsigned int flags,
                   const asock__tcp_options *opts,
                   const struct sockaddr *addr) {
  SOCKET s;
  int err = 0;

  if (family != AF_INET && family != AF_INET6)
    return ASOCK_EAFNOSUPPORT;
  s = socket(family, SOCK_STREAM, IPPROTO_TCP);
  if (s == INVALID_SOCKET)
    return asock__win_error(WSAGetLastError());
  if (flags & ASOCK_BIND_REUSEADDR)
    err = asock__os_set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
  else if (flags & ASOCK_BIND_EXCLUSIVE)
    err = asock__os_set_int(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1);
  /* Windows makes IPv6 sockets IPv6-only unless told otherwise. libuv
   * ignores a failure (a host without IPv4): so does this. */
  if (err == 0 && family == AF_INET6)
    (void)asock__os_set_int(s, IPPROTO_IPV6, IPV6_V6ONLY,
                            (flags & ASOCK_BIND_IPV6ONLY) != 0);
  if (err == 0)
    err = asock__apply_options(s, opts);
  if (err == 0 && addr != NULL &&
      bind(s, addr,
           family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                              : (int)sizeof(struct sockaddr_in)) != 0) {
    /* A port another socket holds exclusively is refused with WSAEACCES. */
    err = WSAGetLastError() == WSAEACCES ? ASOCK_EADDRINUSE
                                         : asock__win_error(WSAGetLastError());
  }
  if (err == 0)
    err = asock__from_uv(uv_tcp_open(&sock->io.handle.tcp, (uv_os_sock_t)s));
  if (err != 0)
    closesocket(s);
  return err;
}

int asock__io_bind(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags, const asock__tcp_options *opts) {
  /* Nothing balances connections between listeners of one port
   * (ASOCK__REUSEPORT_BALANCES): a loop group never asks. */
  if (flags & ASOCK__LISTEN_REUSEPORT)
    return ASOCK_ENOTSUP;
  if (flags & ASOCK__LISTEN_HANDOFF)
    return asock__win_handoff_bind(sock, addr, flags, opts);
  return open_os(sock, addr->sa_family, flags, opts, addr);
}

static void on_connection(uv_stream_t *server, int status) {
  asock_socket *listener = socket_of(server);
  if (status < 0) {
    asock__on_connection(listener, asock__from_uv(status));
    return;
  }
  listener->io.pending_conns++;
  asock__on_connection(listener, 0);
}

int asock__io_listen(asock_socket *sock, int backlog) {
  if (asock__win_handoff(sock) != NULL)
    return asock__win_handoff_listen(sock, backlog);
  return asock__from_uv(
      uv_listen((uv_stream_t *)&sock->io.handle.tcp, backlog, on_connection));
}

/* libuv keeps AcceptEx posted and counts what it has; uv_accept() in
 * asock__io_adopt() takes one, and conn is 0: the connection is libuv's
 * until then. A hand-off listener's conn is the accepted SOCKET. */
int asock__io_accept(asock_socket *listener, uintptr_t *conn) {
  if (asock__win_handoff(listener) != NULL)
    return asock__win_handoff_accept(listener, conn);
  *conn = 0;
  return listener->io.pending_conns > 0 ? 0 : ASOCK_EAGAIN;
}

/* A SOCKET that no completion port has yet becomes the client's, on the
 * client's loop and in its completion port; on failure it is closed. */
static int adopt_socket(asock_socket *client, SOCKET s) {
  int err = uv_tcp_open(&client->io.handle.tcp, (uv_os_sock_t)s);
  if (err != 0) {
    closesocket(s);
    return asock__from_uv(err);
  }
  return 0;
}

int asock__io_adopt(asock_socket *listener, asock_socket *client,
                    uintptr_t conn) {
  int err;

  if (listener == NULL || asock__win_handoff(listener) != NULL)
    return adopt_socket(client, (SOCKET)conn);
  err = uv_accept((uv_stream_t *)&listener->io.handle.tcp,
                  (uv_stream_t *)&client->io.handle.tcp);
  if (err != 0) {
    /* libuv had no connection after all, or lost it. */
    listener->io.pending_conns = 0;
    return asock__from_uv(err);
  }
  listener->io.pending_conns--;
  return 0;
}

/* A SOCKET a hand-off listener accepted is closed; libuv's listener keeps
 * its connection (conn 0) for the next accept. */
void asock__io_drop(uintptr_t conn) {
  if (conn != 0)
    closesocket((SOCKET)conn);
}

/* libuv's listener keeps its AcceptEx requests posted whether or not an
 * accept op waits; a hand-off listener watches its socket only then. */
void asock__io_accept_wanted(asock_socket *listener, int wanted) {
  if (asock__win_handoff(listener) != NULL)
    asock__win_handoff_want(listener, wanted);
}

static void on_connect(uv_connect_t *req, int status) {
  asock__connect_done(op_of(req), asock__from_uv(status));
}

int asock__io_connect(asock_socket *sock, asock_op *op,
                      const struct sockaddr *addr,
                      const asock__tcp_options *opts) {
  uv_os_fd_t fd;

  /* libuv makes the OS socket inside uv_tcp_connect(), too late for the
   * options: with some to set, it is made here. */
  if (opts != NULL &&
      uv_fileno((const uv_handle_t *)&sock->io.handle.tcp, &fd) != 0) {
    int err = open_os(sock, addr->sa_family, 0, opts, NULL);
    if (err != 0)
      return err;
  }
  return asock__from_uv(
      uv_tcp_connect(&op->req.connect, &sock->io.handle.tcp, addr, on_connect));
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  asock__recv_buffer(socket_of(handle), buf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  asock_socket *sock = socket_of(stream);
  if (nread == UV_ENOBUFS)
    asock__recv_unbuffered(sock);
  else if (nread >= 0)
    asock__recv_result(sock, (long)nread, buf);
  else
    asock__recv_result(sock, asock__from_uv((int)nread), buf);
}

int asock__io_read_start(asock_socket *sock) {
  return asock__from_uv(
      uv_read_start((uv_stream_t *)&sock->io.handle.tcp, on_alloc, on_read));
}

void asock__io_read_stop(asock_socket *sock) {
  uv_read_stop((uv_stream_t *)&sock->io.handle.tcp);
}

long asock__io_try_write(asock_socket *sock, const uv_buf_t *iov,
                         unsigned int n) {
  int written = uv_try_write((uv_stream_t *)&sock->io.handle.tcp, iov, n);
  if (written >= 0)
    return written;
  return written == UV_EAGAIN ? ASOCK_EAGAIN : asock__from_uv(written);
}

static void on_write(uv_write_t *req, int status) {
  asock__send_written(op_of(req), asock__from_uv(status));
}

int asock__io_write(asock_socket *sock, asock_op *op, const uv_buf_t *iov,
                    unsigned int n, size_t bytes) {
  int err = uv_write(&op->req.write, (uv_stream_t *)&sock->io.handle.tcp, iov,
                     n, on_write);
  if (err != 0)
    return asock__from_uv(err);
  op->write_bytes = bytes;
  return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  asock__shutdown_done(op_of(req), asock__from_uv(status));
}

/* TransmitFile() would need the socket's own overlapped I/O, which libuv
 * keeps: file ranges are read and sent from slices. */
long asock__io_sendfile(asock_socket *sock, uv_file file, int64_t offset,
                        size_t len) {
  (void)sock;
  (void)file;
  (void)offset;
  (void)len;
  return ASOCK_ENOTSUP;
}

int asock__io_shutdown(asock_socket *sock, asock_op *op) {
  return asock__from_uv(uv_shutdown(
      &op->req.shutdown, (uv_stream_t *)&sock->io.handle.tcp, on_shutdown));
}

void asock__io_close(asock_socket *sock, int abortive) {
  if (is_udp(sock)) {
    asock__win_udp_close(sock);
    return;
  }
  if (asock__win_handoff(sock) != NULL) {
    asock__win_handoff_close(sock);
    return;
  }
  if (abortive && uv_tcp_close_reset(&sock->io.handle.tcp, on_close) == 0)
    return;
  uv_close((uv_handle_t *)&sock->io.handle.tcp, on_close);
}
