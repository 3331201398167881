/* Socket options on Unix: the calls on an OS socket that src/tcp-opts.c
 * makes for every platform (backend.h, "options"). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "internal.h"

/* The keepalive idle time: TCP_KEEPIDLE on Linux and the BSDs, TCP_KEEPALIVE
 * on macOS. */
#if defined(TCP_KEEPIDLE)
#define ASOCK__KEEPIDLE TCP_KEEPIDLE
#elif defined(TCP_KEEPALIVE)
#define ASOCK__KEEPIDLE TCP_KEEPALIVE
#endif

int asock__os_set_int(uv_os_sock_t fd, int level, int name, int value) {
  if (asock__sys_setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return asock__sys_error();
  return 0;
}

int asock__os_keepalive(uv_os_sock_t fd, int enable, unsigned int delay_s) {
  int err = asock__os_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, enable);
#ifdef ASOCK__KEEPIDLE
  if (err == 0 && enable && delay_s > 0)
    err = asock__os_set_int(fd, IPPROTO_TCP, ASOCK__KEEPIDLE,
                            asock__option_seconds(delay_s));
#else
  (void)delay_s;
#endif
  return err;
}

int asock__os_address(uv_os_sock_t fd, int peer, struct sockaddr *addr,
                      int *len) {
  socklen_t n = (socklen_t)*len;
  int r = peer ? asock__sys_getpeername(fd, addr, &n)
               : asock__sys_getsockname(fd, addr, &n);
  if (r != 0)
    return asock__sys_error();
  *len = (int)n;
  return 0;
}

int asock__io_defer_accept(asock_socket *listener, unsigned int wait_s) {
#if defined(TCP_DEFER_ACCEPT)
  return asock__os_set_int(listener->io.watch.socket, IPPROTO_TCP,
                           TCP_DEFER_ACCEPT, asock__option_seconds(wait_s));
#else
  (void)listener;
  (void)wait_s;
  return 0;
#endif
}

uv_os_sock_t asock__io_os(const asock_socket *sock) {
  return sock->io.watch.socket;
}

int asock__os_sockopt(uv_os_sock_t fd, int set, int level, int name,
                      void *value, size_t *len) {
  socklen_t n = (socklen_t)*len;
  int r = set ? asock__sys_setsockopt(fd, level, name, value, n)
              : asock__sys_getsockopt(fd, level, name, value, &n);
  if (r != 0)
    return asock__sys_error();
  *len = n;
  return 0;
}
