/* The system calls of the per-message path on Unix, inline: a receive
 * and a send straight on the socket. Included at the end of internal.h. */
#ifndef ASOCK_IO_INLINE_H
#define ASOCK_IO_INLINE_H

#include <errno.h>
#include <sys/socket.h>

#include "sys.h"

/* A reset peer must be an error code, not SIGPIPE: where send() cannot be
 * told so per call, the socket is (SO_NOSIGPIPE, in tcp-io.c). */
#ifdef MSG_NOSIGNAL
#define ASOCK__SEND_FLAGS MSG_NOSIGNAL
#else
#define ASOCK__SEND_FLAGS 0
#endif

/* The error of the system call that just failed, as asock's code (libuv's
 * UV_E* values are the negated errno values on Unix). */
static inline int asock__sys_error(void) { return asock__from_uv(-errno); }

/* What follows a read that returned n <= 0, or a send that failed (r < 0):
 * the call again after EINTR, else the code to return. Out of line
 * (io.c), so that the usual call is one system call and one test. */
long asock__try_recv_rest(int fd, void *buf, size_t len, ssize_t n);
long asock__try_send_rest(int fd, const void *buf, size_t len, ssize_t r);

static inline long asock__try_recv(asock_socket *sock, void *buf, size_t len) {
  ssize_t n;
  /* A ring socket reads here too while the ring has no receive out and
   * holds nothing it brought: else what it holds comes first. */
  if (ASOCK__ON_RING(sock) && asock__ring_recv_held(&sock->io.ring))
    return asock__ring_try_recv(sock, buf, len);
  /* A socket without its OS socket has fd -1, which the kernel answers
   * with EBADF, ASOCK_EBADF here: no test of its own on every read. */
  n = asock__sys_read(sock->io.watch.socket, buf, len);
  if (n > 0)
    return (long)n;
  return asock__try_recv_rest(sock->io.watch.socket, buf, len, n);
}

/* One buffer, the usual send: the bytes sent, ASOCK_EAGAIN when the kernel
 * takes none, or an error. */
static inline long asock__io_try_send(asock_socket *sock, const void *buf,
                                      size_t len) {
  ssize_t r;
  /* A ring socket's sends are the ring's: submitted with the loop
   * iteration's other requests, in one system call. */
  if (ASOCK__ON_RING(sock))
    return ASOCK_EAGAIN;
  r = asock__sys_send(sock->io.watch.socket, buf, len, ASOCK__SEND_FLAGS);
  if (r >= 0)
    return (long)r;
  return asock__try_send_rest(sock->io.watch.socket, buf, len, r);
}

static inline long asock__io_try_write(asock_socket *sock, const uv_buf_t *iov,
                                       unsigned int n) {
  ssize_t r;

  if (ASOCK__ON_RING(sock))
    return ASOCK_EAGAIN;
  for (;;) {
    if (n == 1) {
      r = asock__sys_send(sock->io.watch.socket, iov[0].base, iov[0].len,
                          ASOCK__SEND_FLAGS);
    } else {
      /* uv_buf_t is laid out as struct iovec on Unix. */
      struct msghdr msg;
      memset(&msg, 0, sizeof(msg));
      msg.msg_iov = (struct iovec *)(void *)iov;
      msg.msg_iovlen = n;
      r = asock__sys_sendmsg(sock->io.watch.socket, &msg, ASOCK__SEND_FLAGS);
    }
    if (r >= 0)
      return (long)r;
    if (errno != EINTR)
      break;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return ASOCK_EAGAIN;
  return asock__sys_error();
}

#endif /* ASOCK_IO_INLINE_H */
