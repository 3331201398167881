/* Windows socket I/O that libuv does not offer. libuv's sockets are
 * non-blocking (FIONBIO) besides overlapped, so a plain recv() is the
 * synchronous path; libuv's own zero-byte reads remain the way an idle
 * connection waits without a buffer. */
#include <winsock2.h>

#include "internal.h"

void asock__platform_init(void) {}

/* A Winsock error as asock's code: the few libuv leaves out or maps to a
 * code of its own first (libuv calls WSAEINTR a cancellation), then libuv's
 * table; ASOCK_EIO for what neither knows. */
int asock__win_error(int wsa_error) {
  int err;

  switch (wsa_error) {
  case WSAENETRESET:
    return ASOCK_ECONNRESET;
  case WSAEINTR:
    return ASOCK_EINTR;
  case WSAENOPROTOOPT:
    return ASOCK_ENOPROTOOPT;
  case WSAEOPNOTSUPP:
    return ASOCK_ENOTSUP;
  case WSAEDESTADDRREQ:
    return ASOCK_EDESTADDRREQ;
  case WSAENETDOWN:
    return ASOCK_ENETDOWN;
  case WSAEHOSTDOWN:
    return ASOCK_EHOSTUNREACH;
  default:
    err = uv_translate_sys_error(wsa_error);
    return err == UV_UNKNOWN ? ASOCK_EIO : asock__from_uv(err);
  }
}

long asock__try_recv(asock_socket *sock, void *buf, size_t len) {
  uv_os_fd_t fd;
  int n;

  if (uv_fileno((const uv_handle_t *)&sock->io.handle.tcp, &fd) != 0)
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
