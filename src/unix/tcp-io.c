/* Socket I/O on Unix: asock makes the system calls itself, and a uv_poll_t
 * on the socket tells it when they will not block. libuv's epoll is
 * level-triggered, so a socket is watched only while something waits on it:
 * reading while receives (or accepts) wait, writing while a send waits for
 * room or a connect for its result. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4() */
#endif

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static void on_poll(uv_poll_t *poll, int status, int events);

static socklen_t addr_len(const struct sockaddr *addr) {
  return addr->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                     : (socklen_t)sizeof(struct sockaddr_in);
}

/* Where the system can, a socket is born non-blocking, as a ring socket
 * must be (src/uring/tcp-ring.c sets nothing after): the poll handle would
 * make it so with a system call of its own. */
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
static int open_socket(int family) {
  return asock__sys_socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                           0);
}
#elif defined(SOCK_CLOEXEC)
static int open_socket(int family) {
  return asock__sys_socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
}
#else
static int open_socket(int family) {
  int fd = asock__sys_socket(family, SOCK_STREAM, 0);
  if (fd >= 0)
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}
#endif

#if defined(__linux__) || defined(__FreeBSD__)
static int accept_socket(int listen_fd) {
  return asock__sys_accept4(listen_fd, NULL, NULL,
                            SOCK_CLOEXEC | SOCK_NONBLOCK);
}
#else
static int accept_socket(int listen_fd) {
  int fd = asock__sys_accept(listen_fd, NULL, NULL);
  if (fd >= 0)
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}
#endif

int asock__io_adopt_fd(asock_socket *sock, int fd) {
  int err;
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock))
    return asock__ring_adopt_fd(sock, fd);
#endif
#ifdef SO_NOSIGPIPE
  int on = 1;
  (void)asock__sys_setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof(on));
#endif
  err = asock__watch_open(&sock->io.watch, asock__socket_uv(sock), fd, on_poll);
  if (err != 0)
    asock__sys_close(fd);
  return err;
}

static void update(asock_socket *sock) { asock__watch_update(&sock->io.watch); }

void asock__io_want(asock_socket *sock, unsigned int what, int on) {
  asock__watch_want(&sock->io.watch, what, on);
}

static void connect_ready(asock_socket *sock) {
  int err = sock->io.connect_error;
  int so_error = 0;
  socklen_t len = sizeof(so_error);

  if (err == 0) {
    if (asock__sys_getsockopt(sock->io.watch.socket, SOL_SOCKET, SO_ERROR,
                              &so_error, &len) != 0)
      err = asock__sys_error();
    else if (so_error != 0)
      err = asock__from_uv(-so_error);
  }
  sock->io.connecting = 0;
  sock->io.connect_error = 0;
  asock__io_connected(sock, err);
}

static void on_poll_other(asock_socket *sock, int status, int events);

static void on_poll(uv_poll_t *poll, int status, int events) {
  asock_socket *sock = ASOCK__CONTAINER_OF(poll, asock_socket, io.watch.poll);

  /* The usual report: a connected socket has data for a receive, most
   * often a multishot one. What its receives change of what is watched
   * takes effect at once (a delivery seldom changes it, and then once: a
   * send that has to wait); everything else is on_poll_other()'s, out of
   * line. */
  if (events == UV_READABLE && status == 0) {
    if (asock__socket_reads_multishot(sock)) {
      asock__recv_ready_multishot(sock);
      return;
    }
    if (asock__socket_is_stream(sock)) {
      asock__recv_ready(sock);
      return;
    }
  }
  on_poll_other(sock, status, events);
}

ASOCK__NOINLINE static void on_poll_other(asock_socket *sock, int status,
                                          int events) {
  if (status < 0) {
    /* libuv met POLLERR and stopped watching: what waits tries the socket
     * and meets the error itself. */
    sock->io.watch.armed = 0;
    events = UV_READABLE | UV_WRITABLE;
  }
  sock->io.watch.busy = 1;
  if (asock__socket_is_udp(sock)) {
    asock__udp_ready(
        sock,
        (events & UV_READABLE) && (sock->io.watch.want & ASOCK__WATCH_READ),
        (events & UV_WRITABLE) && (sock->io.watch.want & ASOCK__WATCH_WRITE));
    sock->io.watch.busy = 0;
    update(sock);
    return;
  }
  if ((events & UV_WRITABLE) && (sock->io.watch.want & ASOCK__WATCH_WRITE)) {
    sock->io.watch.want &= (unsigned char)~ASOCK__WATCH_WRITE;
    if (sock->io.connecting)
      connect_ready(sock);
    else
      asock__io_writable(sock);
  }
  if ((events & UV_READABLE) && (sock->io.watch.want & ASOCK__WATCH_READ) &&
      !asock__socket_is_closing(sock)) {
    if (asock__socket_is_listener(sock))
      asock__on_connection(sock, 0);
    else
      asock__recv_ready(sock);
  }
  sock->io.watch.busy = 0;
  update(sock);
}

/* The poll handle is closed: what was handed over hears it was cancelled,
 * in libuv's order for a stream (the connect, then the write). */
static void on_close(uv_handle_t *handle) {
  asock_socket *sock = ASOCK__CONTAINER_OF(handle, asock_socket, io.watch.poll);

  if (sock->io.connecting) {
    sock->io.connecting = 0;
    asock__io_connected(sock, ASOCK_ECANCELED);
  }
  asock__io_write_cancelled(sock);
  asock__socket_closed(sock);
}

size_t asock__io_socket_size(const asock_loop *loop) {
#ifdef ASOCK_HAVE_URING
  /* A ring loop's TCP socket keeps no poll handle: it ends with the
   * ring's share. */
  if (loop->ring != NULL)
    return offsetof(asock_socket, io) + offsetof(asock__io, ring) +
           sizeof(asock__ring_io);
#else
  (void)loop;
#endif
  return sizeof(asock_socket);
}

int asock__io_init(asock_socket *sock) {
#ifdef ASOCK_HAVE_URING
  /* A ring loop's sockets are the ring's (and its TCP sockets have no
   * room for the rest). */
  sock->flags &= ~ASOCK__SF_RING;
  if (sock->loop->ring != NULL) {
    asock__ring_io_init(sock);
    return 0;
  }
#endif
  asock__watch_init(&sock->io.watch);
  sock->io.connecting = 0;
  sock->io.connect_error = 0;
  return 0;
}

/* Makes the socket's OS socket for family, with the options the
 * application set before (opts, may be NULL) and the bind flags, binds it
 * to addr (unless NULL) and watches it with the poll handle. Every step
 * that can fail comes before the poll handle, so that a failure leaves the
 * socket as it was. */
static int open_os(asock_socket *sock, int family, unsigned int flags,
                   const asock__tcp_options *opts,
                   const struct sockaddr *addr) {
  int on = 1;
  int fd;
  int err;

  if (family != AF_INET && family != AF_INET6)
    return ASOCK_EAFNOSUPPORT;
  fd = open_socket(family);
  if (fd < 0)
    return asock__sys_error();
  /* On Unix SO_REUSEADDR lets a socket bind over connections left in
   * TIME_WAIT, and never lets two sockets listen on one port, as it does on
   * Windows: every socket that binds has it, as libuv's do, unless it is to
   * hold its port alone (on Linux two sockets with it may bind one port
   * while neither listens). */
  if ((flags & ASOCK_BIND_EXCLUSIVE) == 0 &&
      asock__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
    goto fail;
#ifdef SO_REUSEPORT
  if ((flags & ASOCK__LISTEN_REUSEPORT) &&
      asock__sys_setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
    goto fail;
#else
  if (flags & ASOCK__LISTEN_REUSEPORT) {
    asock__sys_close(fd);
    return ASOCK_ENOTSUP;
  }
#endif
  if (family == AF_INET6) {
    on = (flags & ASOCK_BIND_IPV6ONLY) != 0;
    if (asock__sys_setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) !=
        0)
      goto fail;
  }
  err = asock__apply_options(fd, opts);
  if (err != 0) {
    asock__sys_close(fd);
    return err;
  }
  if (addr != NULL && asock__sys_bind(fd, addr, addr_len(addr)) != 0)
    goto fail;
  return asock__io_adopt_fd(sock, fd);

fail:
  err = asock__sys_error();
  asock__sys_close(fd);
  return err;
}

int asock__io_bind(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags, const asock__tcp_options *opts) {
  return open_os(sock, addr->sa_family, flags, opts, addr);
}

int asock__io_listen(asock_socket *sock, int backlog) {
  if (asock__sys_listen(sock->io.watch.socket, backlog) != 0)
    return asock__sys_error();
  return 0;
}

int asock__io_accept(asock_socket *listener, uintptr_t *conn) {
  int fd;

#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(listener)) {
    int r = asock__ring_accept(listener, conn);
    if (r != ASOCK__RING_PASS)
      return r;
  }
#endif
  *conn = 0;
  for (;;) {
    fd = accept_socket(listener->io.watch.socket);
    if (fd >= 0)
      break;
    /* A connection reset before it was accepted is not the listener's
     * error: the next one is tried. */
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return ASOCK_EAGAIN;
    return asock__sys_error();
  }
  *conn = (uintptr_t)fd;
  return 0;
}

int asock__io_adopt(asock_socket *listener, asock_socket *client,
                    uintptr_t conn) {
  (void)listener;
  return asock__io_adopt_fd(client, (int)conn);
}

void asock__io_drop(uintptr_t conn) { asock__sys_close((int)conn); }

void asock__io_accept_wanted(asock_socket *listener, int wanted) {
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(listener)) {
    asock__ring_accept_wanted(listener, wanted);
    return;
  }
#endif
  asock__io_want(listener, ASOCK__WATCH_READ, wanted);
}

int asock__io_connect(asock_socket *sock, asock_op *op,
                      const struct sockaddr *addr,
                      const asock__tcp_options *opts) {
  int r;

  (void)op;
  /* A socket bound before connects from there; any other is made now. */
  if (sock->io.watch.socket < 0) {
    if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
      return ASOCK_EAFNOSUPPORT;
    r = open_os(sock, addr->sa_family, 0, opts, NULL);
    if (r != 0)
      return r;
  }
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock))
    return asock__ring_connect(sock, addr, addr_len(addr));
#endif
  do
    r = asock__sys_connect(sock->io.watch.socket, addr, addr_len(addr));
  while (r != 0 && errno == EINTR);
  /* A connect that fails at once still reports through the poll handle
   * (the socket reads as closed), so that the result never comes inside
   * this call. */
  if (r != 0 && errno != EINPROGRESS)
    sock->io.connect_error = asock__sys_error();
  sock->io.connecting = 1;
  asock__io_want(sock, ASOCK__WATCH_WRITE, 1);
  return 0;
}

int asock__io_read_start(asock_socket *sock) {
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock))
    return asock__ring_read_start(sock);
#endif
  asock__io_want(sock, ASOCK__WATCH_READ, 1);
  return 0;
}

void asock__io_read_stop(asock_socket *sock) {
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock)) {
    asock__ring_read_stop(sock);
    return;
  }
#endif
  asock__io_want(sock, ASOCK__WATCH_READ, 0);
}

int asock__io_write(asock_socket *sock, asock_op *op, const uv_buf_t *iov,
                    unsigned int n, size_t bytes) {
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock))
    return asock__ring_write(sock, op, iov, n, bytes);
#endif
  (void)iov;
  (void)n;
  (void)bytes;
  op->write_bytes = 0;
  asock__io_want(sock, ASOCK__WATCH_WRITE, 1);
  return 0;
}

long asock__io_sendfile(asock_socket *sock, uv_file file, int64_t offset,
                        size_t len) {
#ifdef __linux__
  off_t at = (off_t)offset;
  ssize_t n;

  if (len > ((size_t)1 << 30))
    len = (size_t)1 << 30;
  do
    n = asock__sys_sendfile(sock->io.watch.socket, file, &at, len);
  while (n < 0 && errno == EINTR);
  if (n >= 0)
    return (long)n;
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return ASOCK_EAGAIN;
  /* A file sendfile() cannot take (a pipe, some file systems): read it. */
  if (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)
    return ASOCK_ENOTSUP;
  return asock__sys_error();
#else
  (void)sock;
  (void)file;
  (void)offset;
  (void)len;
  return ASOCK_ENOTSUP;
#endif
}

int asock__io_shutdown(asock_socket *sock, asock_op *op) {
  /* Everything written is in the kernel already: the FIN follows it. */
  int err = asock__sys_shutdown(sock->io.watch.socket, SHUT_WR) == 0
                ? 0
                : asock__sys_error();
  asock__shutdown_done(op, err);
  return 0;
}

void asock__io_close(asock_socket *sock, int abortive) {
  int fd = sock->io.watch.socket;

  if (fd < 0) {
    /* Never had an OS socket: nothing to wait for. */
    asock__socket_closed(sock);
    return;
  }
  if (abortive) {
    struct linger lg;
    lg.l_onoff = 1;
    lg.l_linger = 0;
    (void)asock__sys_setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  }
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock)) {
    asock__ring_close(sock, abortive);
    return;
  }
#endif
  /* uv_close() stops watching fd at once, so it can be closed now. */
  uv_close((uv_handle_t *)&sock->io.watch.poll, on_close);
  asock__sys_close(fd);
  asock__watch_forget(&sock->io.watch);
}
