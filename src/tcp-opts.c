/* A TCP socket's setup: binding before a connect or a listen, listening,
 * and the socket options. An option set before the socket has an OS socket
 * (which asock makes at the bind, the listen or the connect, when the
 * address family is known) is kept, and the platform sets it on the OS
 * socket as it is made, before anything else; an option set later goes to
 * the OS socket at once. */
#include <string.h>

#include "internal.h"

#define ASOCK__BIND_FLAGS                                                      \
  (ASOCK_BIND_IPV6ONLY | ASOCK_BIND_REUSEADDR | ASOCK_BIND_EXCLUSIVE)

/* What every start of a TCP socket's setup checks: 0, or the error. */
static int check_setup(const asock_socket *sock) {
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))
    return ASOCK_ECLOSED;
  if (asock__socket_stage(sock) != ASOCK__STAGE_NEW ||
      (sock->flags & ASOCK__SF_UDP))
    return ASOCK_EKIND;
  return 0;
}

int asock_tcp_bind(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags) {
  int err;

  if (sock == NULL || addr == NULL || (flags & ~ASOCK__BIND_FLAGS) != 0 ||
      (flags & (ASOCK_BIND_REUSEADDR | ASOCK_BIND_EXCLUSIVE)) ==
          (ASOCK_BIND_REUSEADDR | ASOCK_BIND_EXCLUSIVE))
    return ASOCK_EINVAL;
  err = check_setup(sock);
  if (err == 0 && (sock->flags & ASOCK__SF_BOUND))
    err = ASOCK_EKIND;
  if (err == 0)
    err = asock__io_bind(sock, addr, flags, sock->opts);
  if (err == 0)
    sock->flags |= ASOCK__SF_BOUND;
  return err;
}

int asock_tcp_listen(asock_socket *sock, const struct sockaddr *addr,
                     int backlog, unsigned int flags) {
  int err;

  if (sock == NULL ||
      (flags & ~(ASOCK_LISTEN_IPV6ONLY | ASOCK_LISTEN_REUSEADDR |
                 ASOCK_LISTEN_DEFER_ACCEPT)) != 0)
    return ASOCK_EINVAL;
  err = check_setup(sock);
  if (err != 0)
    return err;
  /* The address, or the bind before: one or the other. */
  if ((addr == NULL) != ((sock->flags & ASOCK__SF_BOUND) != 0))
    return addr == NULL ? ASOCK_EINVAL : ASOCK_EKIND;
  return asock__tcp_listen(sock, addr, backlog, flags);
}

int asock__tcp_listen(asock_socket *sock, const struct sockaddr *addr,
                      int backlog, unsigned int flags) {
  int err;

  if (addr != NULL) {
    err = asock__io_bind(sock, addr, flags, sock->opts);
    if (err != 0)
      return err;
    sock->flags |= ASOCK__SF_BOUND;
  }
  /* A listen that fails leaves the socket bound: it may listen again. */
  err = asock__io_listen(sock, backlog);
  if (err == 0 && (flags & ASOCK_LISTEN_DEFER_ACCEPT))
    err = asock__io_defer_accept(sock, ASOCK_DEFER_ACCEPT_S);
  if (err != 0)
    return err;
  asock__socket_set_stage(sock, ASOCK__STAGE_LISTENING);
  asock__socket_options_done(sock);
  return 0;
}

void asock__socket_options_done(asock_socket *sock) {
  asock__free(sock->opts);
  sock->opts = NULL;
}

/* ---- options ------------------------------------------------------------ */

/* What a TCP option call checks: 0 with *os set to whether the socket has
 * its OS socket now (the option goes to it) and *keep to where the option
 * is kept for the OS sockets it will make (NULL once it connected or
 * listens), or the error. */
static int tcp_option(asock_socket *sock, int *os, asock__tcp_options **keep) {
  uv_os_sock_t s;

  *os = 0;
  *keep = NULL;
  if (sock == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & ASOCK__SF_UDP)
    return ASOCK_EKIND;
  /* A handle closed only to be made again for the next address of a
   * connect by name is not the socket's end. */
  if ((sock->flags & ASOCK__SF_CLOSED) ||
      (asock__socket_handle(sock) != ASOCK__HANDLE_OPEN &&
       (sock->flags & ASOCK__SF_REINIT) == 0))
    return ASOCK_ECLOSED;
  *os = asock__socket_handle(sock) == ASOCK__HANDLE_OPEN &&
        asock__io_fileno(sock, &s) == 0;
  if (asock__socket_stage(sock) < ASOCK__STAGE_CONNECTED) {
    if (sock->opts == NULL) {
      sock->opts = asock__calloc(1, sizeof(*sock->opts));
      if (sock->opts == NULL)
        return ASOCK_ENOMEM;
    }
    *keep = sock->opts;
  }
  return 0;
}

int asock_socket_set_nodelay(asock_socket *sock, int enable) {
  asock__tcp_options *keep;
  int os;
  int err = tcp_option(sock, &os, &keep);

  if (err != 0)
    return err;
  if (os)
    err = asock__io_nodelay(sock, enable != 0);
  if (err == 0 && keep != NULL) {
    keep->set |= ASOCK__OPT_NODELAY;
    keep->nodelay = enable != 0;
  }
  return err;
}

int asock_socket_set_keepalive(asock_socket *sock, int enable,
                               unsigned int delay_s) {
  asock__tcp_options *keep;
  int os;
  int err = tcp_option(sock, &os, &keep);

  if (err != 0)
    return err;
  if (os)
    err = asock__io_keepalive(sock, enable != 0, delay_s);
  if (err == 0 && keep != NULL) {
    keep->set |= ASOCK__OPT_KEEPALIVE;
    keep->keepalive = enable != 0;
    keep->keep_idle = delay_s;
  }
  return err;
}

int asock_socket_set_keepalive_probes(asock_socket *sock,
                                      unsigned int interval_s,
                                      unsigned int count) {
  asock__tcp_options *keep;
  int os;
  int err = tcp_option(sock, &os, &keep);

  if (err != 0)
    return err;
  if (os)
    err = asock__io_keepalive_probes(sock, interval_s, count);
  if (err == 0 && keep != NULL) {
    keep->set |= ASOCK__OPT_KEEPPROBES;
    if (interval_s > 0)
      keep->keep_interval = interval_s;
    if (count > 0)
      keep->keep_count = count;
  }
  return err;
}

/* SO_SNDBUF and SO_RCVBUF: set when *value is positive, then read back;
 * before a TCP socket has its OS socket, kept, and read back as kept. */
static int buffer_size(asock_socket *sock, int send, int *value) {
  asock__tcp_options *keep = NULL;
  int os = 1;
  int err;

  if (sock == NULL || value == NULL || *value < 0)
    return ASOCK_EINVAL;
  if (sock->flags & ASOCK__SF_UDP)
    err = asock__socket_check_os(sock);
  else
    err = tcp_option(sock, &os, &keep);
  if (err != 0)
    return err;
  if (os)
    return asock__io_buffer_size(sock, send, value);
  if (*value > 0) {
    keep->set |= send ? ASOCK__OPT_SNDBUF : ASOCK__OPT_RCVBUF;
    if (send)
      keep->sndbuf = *value;
    else
      keep->rcvbuf = *value;
    return 0;
  }
  if ((keep->set & (send ? ASOCK__OPT_SNDBUF : ASOCK__OPT_RCVBUF)) == 0)
    return ASOCK_ENOTCONN;
  *value = send ? keep->sndbuf : keep->rcvbuf;
  return 0;
}

int asock_socket_send_buffer_size(asock_socket *sock, int *value) {
  return buffer_size(sock, 1, value);
}

int asock_socket_recv_buffer_size(asock_socket *sock, int *value) {
  return buffer_size(sock, 0, value);
}

static int address(asock_socket *sock, int peer, struct sockaddr *addr,
                   int *len) {
  int err = asock__socket_check_os(sock);
  if (err != 0)
    return err;
  if (addr == NULL || len == NULL)
    return ASOCK_EINVAL;
  return asock__io_address(sock, peer, addr, len);
}

int asock_socket_local_address(asock_socket *sock, struct sockaddr *addr,
                               int *len) {
  return address(sock, 0, addr, len);
}

int asock_socket_remote_address(asock_socket *sock, struct sockaddr *addr,
                                int *len) {
  return address(sock, 1, addr, len);
}

int asock_socket_fileno(const asock_socket *sock, uv_os_sock_t *out) {
  if (sock == NULL || out == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))
    return ASOCK_ECLOSED;
  return asock__io_fileno(sock, out);
}

/* setsockopt() or getsockopt() on the OS socket, which must exist. */
static int sockopt(asock_socket *sock, int set, int level, int name,
                   void *value, size_t *len) {
  uv_os_sock_t s;
  int err;

  if (sock == NULL || value == NULL || len == NULL || *len == 0)
    return ASOCK_EINVAL;
  err = asock_socket_fileno(sock, &s);
  if (err != 0)
    return err;
  return asock__io_sockopt(sock, set, level, name, value, len);
}

int asock_socket_set_option(asock_socket *sock, int level, int name,
                            const void *value, size_t len) {
  return sockopt(sock, 1, level, name, (void *)(uintptr_t)value, &len);
}

int asock_socket_get_option(asock_socket *sock, int level, int name,
                            void *value, size_t *len) {
  return sockopt(sock, 0, level, name, value, len);
}

/* ---- options on the OS socket, for every platform ----------------------- */

int asock__os_nodelay(uv_os_sock_t s, int enable) {
  return asock__os_set_int(s, IPPROTO_TCP, TCP_NODELAY, enable);
}

int asock__os_keepalive_probes(uv_os_sock_t s, unsigned int interval_s,
                               unsigned int count) {
#if defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
  int err = 0;
  if (interval_s > 0)
    err = asock__os_set_int(s, IPPROTO_TCP, TCP_KEEPINTVL,
                            asock__option_seconds(interval_s));
  if (err == 0 && count > 0)
    err = asock__os_set_int(s, IPPROTO_TCP, TCP_KEEPCNT,
                            asock__option_seconds(count));
  return err;
#else
  /* The platform has no such options. */
  (void)s;
  (void)interval_s;
  (void)count;
  return ASOCK_ENOTSUP;
#endif
}

int asock__os_buffer_size(uv_os_sock_t s, int send, int *value) {
  int opt = send ? SO_SNDBUF : SO_RCVBUF;
  size_t len = sizeof(*value);

  if (*value > 0) {
    int err = asock__os_set_int(s, SOL_SOCKET, opt, *value);
    if (err != 0)
      return err;
  }
  return asock__os_sockopt(s, 0, SOL_SOCKET, opt, value, &len);
}

int asock__apply_options(uv_os_sock_t s, const asock__tcp_options *o) {
  int err = 0;
  int size;

  if (o == NULL)
    return 0;
  if (o->set & ASOCK__OPT_NODELAY)
    err = asock__os_nodelay(s, o->nodelay);
  if (err == 0 && (o->set & ASOCK__OPT_KEEPALIVE))
    err = asock__os_keepalive(s, o->keepalive, o->keep_idle);
  if (err == 0 && (o->set & ASOCK__OPT_KEEPPROBES))
    err = asock__os_keepalive_probes(s, o->keep_interval, o->keep_count);
  if (err == 0 && (o->set & ASOCK__OPT_SNDBUF)) {
    size = o->sndbuf;
    err = asock__os_buffer_size(s, 1, &size);
  }
  if (err == 0 && (o->set & ASOCK__OPT_RCVBUF)) {
    size = o->rcvbuf;
    err = asock__os_buffer_size(s, 0, &size);
  }
  return err;
}

int asock__io_nodelay(asock_socket *sock, int enable) {
  uv_os_sock_t s = asock__io_os(sock);
  return s == ASOCK__NO_SOCKET ? ASOCK_EBADF : asock__os_nodelay(s, enable);
}

int asock__io_keepalive(asock_socket *sock, int enable, unsigned int delay_s) {
  uv_os_sock_t s = asock__io_os(sock);
  return s == ASOCK__NO_SOCKET ? ASOCK_EBADF
                               : asock__os_keepalive(s, enable, delay_s);
}

int asock__io_keepalive_probes(asock_socket *sock, unsigned int interval_s,
                               unsigned int count) {
  uv_os_sock_t s = asock__io_os(sock);
  return s == ASOCK__NO_SOCKET
             ? ASOCK_EBADF
             : asock__os_keepalive_probes(s, interval_s, count);
}

int asock__io_buffer_size(asock_socket *sock, int send, int *value) {
  uv_os_sock_t s = asock__io_os(sock);
  return s == ASOCK__NO_SOCKET ? ASOCK_EBADF
                               : asock__os_buffer_size(s, send, value);
}

int asock__io_sockopt(asock_socket *sock, int set, int level, int name,
                      void *value, size_t *len) {
  uv_os_sock_t s = asock__io_os(sock);
  return s == ASOCK__NO_SOCKET
             ? ASOCK_EBADF
             : asock__os_sockopt(s, set, level, name, value, len);
}

int asock__io_address(asock_socket *sock, int peer, struct sockaddr *addr,
                      int *len) {
  uv_os_sock_t s = asock__io_os(sock);
  return s == ASOCK__NO_SOCKET ? ASOCK_EBADF
                               : asock__os_address(s, peer, addr, len);
}

int asock__io_fileno(const asock_socket *sock, uv_os_sock_t *out) {
  uv_os_sock_t s = asock__io_os(sock);
  if (s == ASOCK__NO_SOCKET)
    return ASOCK_ENOTCONN;
  *out = s;
  return 0;
}
