/* Windows socket I/O that libuv does not offer. libuv's sockets are
 * non-blocking (FIONBIO) besides overlapped, so a plain recv() is the
 * synchronous path; libuv's own zero-byte reads remain the way an idle
 * connection waits without a buffer. */
#include <winsock2.h>

#include "internal.h"

void asock__platform_init(void) {}

/* The Winsock errors a receive meets, as libuv's codes. */
int asock__win_error(int wsa_error) {
  switch (wsa_error) {
  case WSAECONNRESET:
  case WSAENETRESET:
    return ASOCK_ECONNRESET;
  case WSAECONNABORTED:
    return ASOCK_ECONNABORTED;
  case WSAENOTCONN:
    return ASOCK_ENOTCONN;
  case WSAESHUTDOWN:
    return ASOCK_EPIPE;
  case WSAENOBUFS:
    return ASOCK_ENOBUFS;
  case WSAETIMEDOUT:
    return ASOCK_ETIMEDOUT;
  case WSAEINTR:
    return ASOCK_EINTR;
  default:
    return ASOCK_EIO;
  }
}

long asock__try_recv(asock_socket *sock, void *buf, size_t len) {
  uv_os_fd_t fd;
  int n;

  if (uv_fileno((const uv_handle_t *)&sock->io.tcp, &fd) != 0)
    return ASOCK_EBADF;
  if (len > 0x7fffffff)
    len = 0x7fffffff;
  n = recv((SOCKET)fd, buf, (int)len, 0);
  if (n > 0)
    return n;
  if (n == 0)
    return ASOCK_EOF;
  if (WSAGetLastError() == WSAEWOULDBLOCK)
    return ASOCK_EAGAIN;
  return asock__win_error(WSAGetLastError());
}
