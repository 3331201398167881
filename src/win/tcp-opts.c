/* Socket options on Windows. Each TCP option is set on an OS socket by one
 * small function, so that the options an application sets before its
 * socket has an OS socket are applied to it as it is made
 * (asock__win_apply_options()) by the same code that sets them on a socket
 * that has one. */
#include <winsock2.h>
#include <ws2tcpip.h>

#include "internal.h"

/* The keepalive options of Windows 10 (1709 and later), by value where the
 * toolchain's headers lack them. */
#ifndef TCP_KEEPALIVE
#define TCP_KEEPALIVE 3
#endif
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 17
#endif

int asock__win_set_int(uv_os_sock_t s, int level, int name, int value) {
  if (setsockopt((SOCKET)s, level, name, (const char *)&value, sizeof(value)) !=
      0)
    return asock__win_error(WSAGetLastError());
  return 0;
}

/* Seconds as the int the options take. */
static int seconds(unsigned int s) {
  return s > 0x7fffffffu ? 0x7fffffff : (int)s;
}

static int os_nodelay(SOCKET s, int enable) {
  return asock__win_set_int(s, IPPROTO_TCP, TCP_NODELAY, enable);
}

static int os_keepalive(SOCKET s, int enable, unsigned int delay_s) {
  int err = asock__win_set_int(s, SOL_SOCKET, SO_KEEPALIVE, enable);
  if (err == 0 && enable && delay_s > 0)
    err = asock__win_set_int(s, IPPROTO_TCP, TCP_KEEPALIVE, seconds(delay_s));
  return err;
}

static int os_keepalive_probes(SOCKET s, unsigned int interval_s,
                               unsigned int count) {
  int err = 0;
  if (interval_s > 0)
    err =
        asock__win_set_int(s, IPPROTO_TCP, TCP_KEEPINTVL, seconds(interval_s));
  if (err == 0 && count > 0)
    err = asock__win_set_int(s, IPPROTO_TCP, TCP_KEEPCNT, seconds(count));
  return err;
}

/* Sets the buffer size when *value is positive, then reads it back. */
static int os_buffer_size(SOCKET s, int send, int *value) {
  int opt = send ? SO_SNDBUF : SO_RCVBUF;
  int len = (int)sizeof(*value);

  if (*value > 0) {
    int err = asock__win_set_int(s, SOL_SOCKET, opt, *value);
    if (err != 0)
      return err;
  }
  if (getsockopt(s, SOL_SOCKET, opt, (char *)value, &len) != 0)
    return asock__win_error(WSAGetLastError());
  return 0;
}

int asock__win_apply_options(uv_os_sock_t os, const asock__tcp_options *o) {
  SOCKET s = (SOCKET)os;
  int err = 0;
  int size;

  if (o == NULL)
    return 0;
  if (o->set & ASOCK__OPT_NODELAY)
    err = os_nodelay(s, o->nodelay);
  if (err == 0 && (o->set & ASOCK__OPT_KEEPALIVE))
    err = os_keepalive(s, o->keepalive, o->keep_idle);
  if (err == 0 && (o->set & ASOCK__OPT_KEEPPROBES))
    err = os_keepalive_probes(s, o->keep_interval, o->keep_count);
  if (err == 0 && (o->set & ASOCK__OPT_SNDBUF)) {
    size = o->sndbuf;
    err = os_buffer_size(s, 1, &size);
  }
  if (err == 0 && (o->set & ASOCK__OPT_RCVBUF)) {
    size = o->rcvbuf;
    err = os_buffer_size(s, 0, &size);
  }
  return err;
}

/* The OS socket of any kind, INVALID_SOCKET if it has none. */
static SOCKET os_socket(const asock_socket *sock) {
  uv_os_fd_t fd;

  if (sock->flags & ASOCK__SF_UDP)
    return (SOCKET)asock__win_udp_socket(sock);
  if (asock__win_handoff(sock) != NULL)
    return (SOCKET)asock__win_handoff_socket(sock);
  if (uv_fileno((const uv_handle_t *)&sock->io.handle.tcp, &fd) != 0)
    return INVALID_SOCKET;
  return (SOCKET)fd;
}

/* The TCP options run only on a socket that has an OS socket: the shared
 * code keeps them until it has one. */
int asock__io_nodelay(asock_socket *sock, int enable) {
  return os_nodelay(os_socket(sock), enable);
}

int asock__io_keepalive(asock_socket *sock, int enable, unsigned int delay_s) {
  return os_keepalive(os_socket(sock), enable, delay_s);
}

int asock__io_keepalive_probes(asock_socket *sock, unsigned int interval_s,
                               unsigned int count) {
  return os_keepalive_probes(os_socket(sock), interval_s, count);
}

int asock__io_buffer_size(asock_socket *sock, int send, int *value) {
  SOCKET s = os_socket(sock);
  if (s == INVALID_SOCKET)
    return ASOCK_EBADF;
  return os_buffer_size(s, send, value);
}

int asock__io_address(asock_socket *sock, int peer, struct sockaddr *addr,
                      int *len) {
  SOCKET s = os_socket(sock);
  int r;

  if (s == INVALID_SOCKET)
    return ASOCK_EBADF;
  r = peer ? getpeername(s, addr, len) : getsockname(s, addr, len);
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

int asock__io_fileno(const asock_socket *sock, uv_os_sock_t *out) {
  SOCKET s = os_socket(sock);
  if (s == INVALID_SOCKET)
    return ASOCK_ENOTCONN;
  *out = (uv_os_sock_t)s;
  return 0;
}

int asock__io_sockopt(asock_socket *sock, int set, int level, int name,
                      void *value, size_t *len) {
  SOCKET s = os_socket(sock);
  int n = *len > 0x7fffffff ? 0x7fffffff : (int)*len;
  int r;

  if (s == INVALID_SOCKET)
    return ASOCK_EBADF;
  r = set ? setsockopt(s, level, name, (const char *)value, n)
          : getsockopt(s, level, name, (char *)value, &n);
  if (r != 0)
    return asock__win_error(WSAGetLastError());
  *len = (size_t)n;
  return 0;
}
