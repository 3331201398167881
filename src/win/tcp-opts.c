/* Socket options on Windows: the calls on an OS socket that src/tcp-opts.c
 * makes for every platform (backend.h, "options"). */
#include <winsock2.h>
#include <ws2tcpip.h>

#include "internal.h"

/* The keepalive options of Windows 10 (1709 and later), by value where the
 * toolchain's headers lack them. */
#ifndef TCP_KEEPALIVE
#define TCP_KEEPALIVE 3
#endif

int asock__os_set_int(uv_os_sock_t s, int level, int name, int value) {
  if (setsockopt((SOCKET)s, level, name, (const char *)&value, sizeof(value)) !=
      0)
    return asock__win_error(WSAGetLastError());
  return 0;
}

int asock__os_keepalive(uv_os_sock_t s, int enable, unsigned int delay_s) {
  int err = asock__os_set_int(s, SOL_SOCKET, SO_KEEPALIVE, enable);
  if (err == 0 && enable && delay_s > 0)
    err = asock__os_set_int(s, IPPROTO_TCP, TCP_KEEPALIVE,
                            asock__option_seconds(delay_s));
  return err;
}

uv_os_sock_t asock__io_os(const asock_socket *sock) {
  uv_os_fd_t fd;

  if (asock__socket_is_udp(sock))
    return asock__win_udp_socket(sock);
  if (asock__win_handoff(sock) != NULL)
    return asock__win_handoff_socket(sock);
  if (uv_fileno((const uv_handle_t *)&sock->io.handle.tcp, &fd) != 0)
    return INVALID_SOCKET;
  return (uv_os_sock_t)fd;
}

int asock__os_address(uv_os_sock_t s, int peer, struct sockaddr *addr,
                      int *len) {
  int r = peer ? getpeername((SOCKET)s, addr, len)
               : getsockname((SOCKET)s, addr, len);
  if (r != 0)
    return asock__win_error(WSAGetLastError());
  return 0;
}

/* AcceptEx waits for a connection, not for its first bytes, as libuv
 * posts it: the accept-receive waits for them itself. */
int asock__io_defer_accept(asock_socket *listener, unsigned int wait_s) {
  (void)listener;
  (void)wait_s;
  return 0;
}

int asock__os_sockopt(uv_os_sock_t s, int set, int level, int name, void *value,
                      size_t *len) {
  int n = *len > 0x7fffffff ? 0x7fffffff : (int)*len;
  int r = set ? setsockopt((SOCKET)s, level, name, (const char *)value, n)
              : getsockopt((SOCKET)s, level, name, (char *)value, &n);
  if (r != 0)
    return asock__win_error(WSAGetLastError());
  *len = (size_t)n;
  return 0;
}
