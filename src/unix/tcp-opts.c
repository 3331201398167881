/* TCP socket options on Unix. Each is set on an OS socket by one small
 * function, so that the options an application sets before its socket has
 * an OS socket are applied to it as it is made (asock__io_apply_options())
 * by the same code that sets them on a socket that has one. */
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

static int set_int(int fd, int level, int name, int value) {
  if (asock__sys_setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return asock__sys_error();
  return 0;
}

/* Seconds as the int the options take. */
static int seconds(unsigned int s) {
  return s > 0x7fffffffu ? 0x7fffffff : (int)s;
}

static int os_nodelay(int fd, int enable) {
  return set_int(fd, IPPROTO_TCP, TCP_NODELAY, enable);
}

static int os_keepalive(int fd, int enable, unsigned int delay_s) {
  int err = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, enable);
#ifdef ASOCK__KEEPIDLE
  if (err == 0 && enable && delay_s > 0)
    err = set_int(fd, IPPROTO_TCP, ASOCK__KEEPIDLE, seconds(delay_s));
#else
  (void)delay_s;
#endif
  return err;
}

static int os_keepalive_probes(int fd, unsigned int interval_s,
                               unsigned int count) {
#if defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
  int err = 0;
  if (interval_s > 0)
    err = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, seconds(interval_s));
  if (err == 0 && count > 0)
    err = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, seconds(count));
  return err;
#else
  (void)fd;
  (void)interval_s;
  (void)count;
  return ASOCK_ENOTSUP;
#endif
}

/* Sets the buffer size when *value is positive, then reads it back. */
static int os_buffer_size(int fd, int send, int *value) {
  int opt = send ? SO_SNDBUF : SO_RCVBUF;
  socklen_t len = sizeof(*value);

  if (*value > 0) {
    int err = set_int(fd, SOL_SOCKET, opt, *value);
    if (err != 0)
      return err;
  }
  if (asock__sys_getsockopt(fd, SOL_SOCKET, opt, value, &len) != 0)
    return asock__sys_error();
  return 0;
}

int asock__io_apply_options(int fd, const asock__tcp_options *o) {
  int err = 0;
  int size;

  if (o == NULL)
    return 0;
  if (o->set & ASOCK__OPT_NODELAY)
    err = os_nodelay(fd, o->nodelay);
  if (err == 0 && (o->set & ASOCK__OPT_KEEPALIVE))
    err = os_keepalive(fd, o->keepalive, o->keep_idle);
  if (err == 0 && (o->set & ASOCK__OPT_KEEPPROBES))
    err = os_keepalive_probes(fd, o->keep_interval, o->keep_count);
  if (err == 0 && (o->set & ASOCK__OPT_SNDBUF)) {
    size = o->sndbuf;
    err = os_buffer_size(fd, 1, &size);
  }
  if (err == 0 && (o->set & ASOCK__OPT_RCVBUF)) {
    size = o->rcvbuf;
    err = os_buffer_size(fd, 0, &size);
  }
  return err;
}

int asock__io_nodelay(asock_socket *sock, int enable) {
  return os_nodelay(sock->io.fd, enable);
}

int asock__io_keepalive(asock_socket *sock, int enable, unsigned int delay_s) {
  return os_keepalive(sock->io.fd, enable, delay_s);
}

int asock__io_keepalive_probes(asock_socket *sock, unsigned int interval_s,
                               unsigned int count) {
  return os_keepalive_probes(sock->io.fd, interval_s, count);
}

int asock__io_buffer_size(asock_socket *sock, int send, int *value) {
  return os_buffer_size(sock->io.fd, send, value);
}

int asock__io_address(asock_socket *sock, int peer, struct sockaddr *addr,
                      int *len) {
  socklen_t n = (socklen_t)*len;
  int r = peer ? asock__sys_getpeername(sock->io.fd, addr, &n)
               : asock__sys_getsockname(sock->io.fd, addr, &n);
  if (r != 0)
    return asock__sys_error();
  *len = (int)n;
  return 0;
}

int asock__io_defer_accept(asock_socket *listener, unsigned int wait_s) {
#if defined(TCP_DEFER_ACCEPT)
  return set_int(listener->io.fd, IPPROTO_TCP, TCP_DEFER_ACCEPT,
                 seconds(wait_s));
#else
  (void)listener;
  (void)wait_s;
  return 0;
#endif
}

int asock__io_fileno(const asock_socket *sock, uv_os_sock_t *out) {
  if (sock->io.fd < 0)
    return ASOCK_ENOTCONN;
  *out = sock->io.fd;
  return 0;
}

int asock__io_sockopt(asock_socket *sock, int set, int level, int name,
                      void *value, size_t *len) {
  socklen_t n = (socklen_t)*len;
  int r = set ? asock__sys_setsockopt(sock->io.fd, level, name, value, n)
              : asock__sys_getsockopt(sock->io.fd, level, name, value, &n);
  if (r != 0)
    return asock__sys_error();
  *len = n;
  return 0;
}
