/* UDP on Unix: the OS socket watched by the same uv_poll_t as TCP, with
 * asock's own system calls: recvmmsg() (Linux) or recvmsg() with the
 * packet information ancillary data, and sendmsg(). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* recvmmsg(), struct in_pktinfo */
#endif

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

/* Room for the packet information of one datagram, IPv4 or IPv6, aligned
 * as struct cmsghdr is (its first field is a size_t on Linux, smaller
 * elsewhere). */
#define ASOCK__CMSG_SPACE 128
typedef union asock__cmsg_room {
  /* Read by no one: it only gives the union struct cmsghdr's alignment. */
  /* cppcheck-suppress unusedStructMember */
  size_t align;
  char bytes[ASOCK__CMSG_SPACE];
} asock__cmsg_room;

static socklen_t addr_len(const struct sockaddr *addr) {
  return addr->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                     : (socklen_t)sizeof(struct sockaddr_in);
}

static int set_int(int fd, int level, int name, int value) {
  if (asock__sys_setsockopt(fd, level, name, &value, sizeof(value)) != 0)
    return asock__sys_error();
  return 0;
}

/* Asks the kernel for every datagram's destination and interface, which
 * receive-message-from reports. On a dual-stack socket the IPv4 datagrams
 * carry the IPv4 kind. */
int asock__udp_io_pktinfo(asock_socket *sock) {
  int fd = sock->io.watch.socket;
  int err = 0;
#if defined(IP_PKTINFO)
  int v4 = set_int(fd, IPPROTO_IP, IP_PKTINFO, 1);
#elif defined(IP_RECVDSTADDR)
  int v4 = set_int(fd, IPPROTO_IP, IP_RECVDSTADDR, 1);
#if defined(IP_RECVIF)
  (void)set_int(fd, IPPROTO_IP, IP_RECVIF, 1);
#endif
#else
  int v4 = ASOCK_ENOTSUP;
#endif
  if (asock__udp(sock)->family == AF_INET6) {
#if defined(IPV6_RECVPKTINFO)
    err = set_int(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
#else
    err = ASOCK_ENOTSUP;
#endif
  } else {
    err = v4;
  }
  return err;
}

static int open_udp(int family, unsigned int flags) {
  int fd;
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
  /* Born non-blocking, as a ring socket must be (the poll handle would set
   * it too). */
  fd = asock__sys_socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
#elif defined(SOCK_CLOEXEC)
  fd = asock__sys_socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
#else
  fd = asock__sys_socket(family, SOCK_DGRAM, 0);
  if (fd >= 0)
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  if (fd < 0)
    return asock__sys_error();
  if (family == AF_INET6 && set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY,
                                    (flags & ASOCK_UDP_IPV6ONLY) != 0) != 0)
    goto fail;
  if (flags & ASOCK_UDP_REUSEADDR) {
    if (set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) != 0)
      goto fail;
#if defined(SO_REUSEPORT) && !defined(__linux__)
    /* On the BSDs and macOS, SO_REUSEPORT is what lets several sockets
     * bind one UDP port; on Linux it would also balance unicast datagrams
     * between them, which is not what sharing a port means here. */
    if (set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) != 0)
      goto fail;
#endif
  }
  return fd;

fail:
  flags = (unsigned int)asock__sys_error();
  asock__sys_close(fd);
  return (int)flags;
}

/* The socket's own port (network order), which packet information leaves
 * out. */
static unsigned short local_port(int fd) {
  asock__sockaddr self;
  socklen_t len = sizeof(self);
  memset(&self, 0, sizeof(self));
  if (asock__sys_getsockname(fd, &self.sa, &len) != 0)
    return 0;
  return self.sa.sa_family == AF_INET6 ? self.in6.sin6_port : self.in.sin_port;
}

int asock__udp_io_bind(asock_socket *sock, const struct sockaddr *addr,
                       unsigned int flags) {
  int fd = open_udp(addr->sa_family, flags);
  int err;

  if (fd < 0)
    return fd;
  if (asock__sys_bind(fd, addr, addr_len(addr)) != 0) {
    err = asock__sys_error();
    asock__sys_close(fd);
    return err;
  }
  asock__udp(sock)->port = local_port(fd);
  return asock__io_adopt_fd(sock, fd);
}

int asock__udp_io_connect(asock_socket *sock, const struct sockaddr *addr) {
  struct sockaddr unspec;
  int r;

  if (addr == NULL) {
    /* Connecting to AF_UNSPEC dissolves the association. */
    memset(&unspec, 0, sizeof(unspec));
    unspec.sa_family = AF_UNSPEC;
    r = asock__sys_connect(sock->io.watch.socket, &unspec, sizeof(unspec));
    /* The BSDs report EAFNOSUPPORT but dissolve it all the same. */
    if (r != 0 && errno != EAFNOSUPPORT)
      return asock__sys_error();
    /* Linux unbinds a port the kernel chose; the next send picks another,
     * which the next receive reads back. */
    asock__udp(sock)->port = 0;
    return 0;
  }
  if (asock__sys_connect(sock->io.watch.socket, addr, addr_len(addr)) != 0)
    return asock__sys_error();
  return 0;
}

/* Reads the packet information of one received datagram into d->local
 * and d->ifindex. A dual-stack socket's IPv4 datagram may carry both kinds
 * (Linux writes an IPv4-mapped IPV6_PKTINFO and IP_PKTINFO); both give the
 * same IPv4-mapped destination. */
static void read_pktinfo(struct msghdr *msg, asock__dgram *d,
                         unsigned short port, int family) {
  struct cmsghdr *c;

  d->local->sa.sa_family = 0;
  *d->ifindex = 0;
  if (msg->msg_controllen == 0)
    return;
  for (c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
#if defined(IP_PKTINFO)
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      struct in_pktinfo info;
      memcpy(&info, CMSG_DATA(c), sizeof(info));
      asock__dgram_local4(d, &info.ipi_addr, port,
                          (unsigned int)info.ipi_ifindex, family);
    }
#elif defined(IP_RECVDSTADDR)
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVDSTADDR) {
      struct in_addr addr;
      memcpy(&addr, CMSG_DATA(c), sizeof(addr));
      asock__dgram_local4(d, &addr, port, *d->ifindex, family);
    }
#endif
#if defined(IPV6_PKTINFO)
    if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      struct in6_pktinfo info;
      memcpy(&info, CMSG_DATA(c), sizeof(info));
      asock__dgram_local6(d, &info.ipi6_addr, port, info.ipi6_ifindex);
    }
#endif
  }
}

/* Sets up one message header for d, with room for packet information
 * only when it is wanted. */
static void fill_msg(struct msghdr *msg, struct iovec *iov, asock__dgram *d,
                     asock__cmsg_room *control) {
  iov->iov_base = d->base;
  iov->iov_len = d->len;
  msg->msg_name = d->from;
  msg->msg_namelen = sizeof(*d->from);
  msg->msg_iov = iov;
  msg->msg_iovlen = 1;
  msg->msg_control = d->local != NULL ? control->bytes : NULL;
  msg->msg_controllen = d->local != NULL ? ASOCK__CMSG_SPACE : 0;
  msg->msg_flags = 0;
}

/* Records a datagram of `bytes` bytes (its full length: MSG_TRUNC). */
static void read_msg(struct msghdr *msg, size_t bytes, asock__dgram *d,
                     unsigned short port, int family) {
  d->bytes = bytes < d->len ? bytes : d->len;
  d->flags =
      (msg->msg_flags & MSG_TRUNC) || bytes > d->len ? ASOCK_MSG_TRUNCATED : 0;
  if (d->local != NULL)
    read_pktinfo(msg, d, port, family);
}

static int recv_error(void) {
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return ASOCK_EAGAIN;
  return asock__sys_error();
}

/* One datagram without packet information: recvfrom(), the cheapest. */
static int recv_plain(int fd, asock__dgram *d) {
  socklen_t len = sizeof(*d->from);
  ssize_t r;

  do
    r = asock__sys_recvfrom(fd, d->base, d->len, MSG_TRUNC, &d->from->sa, &len);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return recv_error();
  /* With MSG_TRUNC, Linux and the BSDs give the datagram's full length. */
  d->bytes = (size_t)r < d->len ? (size_t)r : d->len;
  d->flags = (size_t)r > d->len ? ASOCK_MSG_TRUNCATED : 0;
  return 1;
}

/* The socket's port, for packet information (read once, and again after a
 * disconnect may have changed it). */
static unsigned short info_port(asock_socket *sock) {
  if (asock__udp(sock)->port == 0)
    asock__udp(sock)->port = local_port(sock->io.watch.socket);
  return asock__udp(sock)->port;
}

#ifdef ASOCK_HAVE_URING
/* Reads up to n of the datagrams the ring brought a ring socket (copied
 * out of their provided buffers, or, where the caller's slice may be
 * traded, in the slice the kernel wrote): how many, 0 when the ring holds
 * none and has no receive out (the socket is read then), ASOCK_EAGAIN
 * while it has one, or the error the socket met. */
static int ring_recv(asock_socket *sock, asock__dgram *d, unsigned int n) {
  unsigned int i;

  for (i = 0; i < n; i++) {
    asock__ring_dgram g;
    size_t name;
    int r = asock__ring_udp_peek(sock, &g);

    if (r != 1) {
      if (i > 0)
        break; /* the error, if any, is the next read's */
      if (r < 0 && r != ASOCK_EAGAIN)
        asock__ring_udp_next(sock);
      return r;
    }
    d[i].bytes = g.len < d[i].len ? g.len : d[i].len;
    d[i].flags = g.whole > d[i].bytes ? ASOCK_MSG_TRUNCATED : 0;
    if (!d[i].trade)
      memcpy(d[i].base, g.data, d[i].bytes);
    name = g.namelen < sizeof(*d[i].from) ? g.namelen : sizeof(*d[i].from);
    memset(d[i].from, 0, sizeof(*d[i].from));
    memcpy(d[i].from, g.name, name);
    if (d[i].local != NULL) {
      struct msghdr msg;
      memset(&msg, 0, sizeof(msg));
      msg.msg_control = g.control;
      msg.msg_controllen = g.controllen;
      read_pktinfo(&msg, &d[i], info_port(sock), asock__udp(sock)->family);
    }
    if (d[i].trade) {
      /* The slices change places: the datagram stays where it is. */
      char *slice = asock__ring_udp_take(sock, d[i].base);
      d[i].offset = (size_t)(g.data - slice);
      d[i].base = slice;
    } else {
      asock__ring_udp_next(sock);
    }
  }
  return (int)i;
}
#endif

#if defined(__linux__)
int asock__udp_io_recv(asock_socket *sock, asock__dgram *d, unsigned int n) {
  struct mmsghdr msgs[ASOCK__UDP_BATCH];
  struct iovec iov[ASOCK__UDP_BATCH];
  asock__cmsg_room control[ASOCK__UDP_BATCH];
  unsigned int i;
  int got;

  if (sock->io.watch.socket < 0)
    return ASOCK_EBADF;
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock)) {
    got = ring_recv(sock, d, n);
    if (got != 0)
      return got;
  }
#endif
  if (n == 1 && d->local == NULL)
    return recv_plain(sock->io.watch.socket, d);
  for (i = 0; i < n; i++)
    fill_msg(&msgs[i].msg_hdr, &iov[i], &d[i], &control[i]);
  do
    got = asock__sys_recvmmsg(sock->io.watch.socket, msgs, n, MSG_TRUNC, NULL);
  while (got < 0 && errno == EINTR);
  if (got < 0)
    return recv_error();
  for (i = 0; i < (unsigned int)got; i++)
    read_msg(&msgs[i].msg_hdr, msgs[i].msg_len, &d[i],
             d[i].local != NULL ? info_port(sock) : 0,
             asock__udp(sock)->family);
  return got;
}
#else
int asock__udp_io_recv(asock_socket *sock, asock__dgram *d, unsigned int n) {
  struct msghdr msg;
  struct iovec iov;
  asock__cmsg_room control;
  ssize_t r;

  (void)n;
  if (sock->io.watch.socket < 0)
    return ASOCK_EBADF;
  if (d->local == NULL)
    return recv_plain(sock->io.watch.socket, d);
  fill_msg(&msg, &iov, d, &control);
  do
    r = asock__sys_recvmsg(sock->io.watch.socket, &msg, MSG_TRUNC);
  while (r < 0 && errno == EINTR);
  if (r < 0)
    return recv_error();
  read_msg(&msg, (size_t)r, d, info_port(sock), asock__udp(sock)->family);
  return 1;
}
#endif

long asock__udp_io_send1(asock_socket *sock, const void *buf, size_t len,
                         const struct sockaddr *to) {
  ssize_t r;

  do
    r = asock__sys_sendto(sock->io.watch.socket, buf, len, 0, to,
                          to != NULL ? addr_len(to) : 0);
  while (r < 0 && errno == EINTR);
  if (r >= 0)
    return (long)r;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
    return ASOCK_EAGAIN;
  return asock__sys_error();
}

long asock__udp_io_send(asock_socket *sock, const uv_buf_t *iov, unsigned int n,
                        const struct sockaddr *to) {
  struct msghdr msg;
  ssize_t r;

  if (sock->io.watch.socket < 0)
    return ASOCK_EBADF;
  memset(&msg, 0, sizeof(msg));
  if (to != NULL) {
    msg.msg_name = (void *)(uintptr_t)to;
    msg.msg_namelen = addr_len(to);
  }
  /* uv_buf_t is laid out as struct iovec on Unix. */
  msg.msg_iov = (struct iovec *)(void *)(uintptr_t)iov;
  msg.msg_iovlen = n;
  do
    r = asock__sys_sendmsg(sock->io.watch.socket, &msg, ASOCK__SEND_FLAGS);
  while (r < 0 && errno == EINTR);
  if (r >= 0)
    return (long)r;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
    return ASOCK_EAGAIN;
  return asock__sys_error();
}

void asock__udp_io_want(asock_socket *sock, unsigned int what, int on) {
#ifdef ASOCK_HAVE_URING
  if (ASOCK__ON_RING(sock)) {
    asock__ring_udp_want(sock, what, on);
    return;
  }
#endif
  asock__io_want(sock, what, on);
}

int asock__udp_io_setsockopt(asock_socket *sock, int level, int name,
                             const void *value, size_t len) {
  if (asock__sys_setsockopt(sock->io.watch.socket, level, name, value,
                            (socklen_t)len) != 0)
    return asock__sys_error();
  return 0;
}
