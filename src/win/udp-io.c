/* UDP on Windows: the OS socket watched by a uv_poll_t, which libuv runs on
 * IOCP through AFD polls, with asock's own non-blocking Winsock calls, as on
 * Unix: WSARecvMsg() with the packet information control data, and
 * WSASendTo(). libuv's uv_udp_t would read into buffers of its own choice
 * through its callbacks and report neither the destination of a datagram
 * nor the interface it came in on.
 *
 * Two Winsock habits are turned into what Unix does:
 * - an ICMP port unreachable is reported (WSAECONNRESET, on the next
 *   receive) only while the socket has a default peer, as Linux reports
 *   ECONNREFUSED only on a connected socket: SIO_UDP_CONNRESET is off
 *   until asock__udp_io_connect() and off again after it dissolves the
 *   association (libuv keeps it off always); an ICMP time exceeded
 *   (SIO_UDP_NETRESET) is never reported, as on Linux;
 * - a datagram larger than the buffer fails the receive with WSAEMSGSIZE,
 *   with the buffer filled and the rest discarded: that is a truncated
 *   datagram (MSG_TRUNC on Unix), not an error.
 * Unlike Linux, Windows reports the ICMP error only to a receive, never to
 * the next send. */
/* mswsock.h (WSARecvMsg) needs winsock2.h first: separate blocks keep the
 * order. */
#include <winsock2.h>

#include <mswsock.h>
#include <ws2tcpip.h>

#include "internal.h"

/* Windows SDKs put these in mstcpip.h, MinGW-w64 in mswsock.h. */
#ifndef SIO_UDP_CONNRESET
#define SIO_UDP_CONNRESET _WSAIOW(IOC_VENDOR, 12)
#endif
#ifndef SIO_UDP_NETRESET
#define SIO_UDP_NETRESET _WSAIOW(IOC_VENDOR, 15)
#endif

/* Room for the packet information of one datagram: a dual-stack socket may
 * get both the IPv4 and the IPv6 one. */
#define ASOCK__CMSG_SPACE 128

struct asock__udp_handle {
  asock__win_poll p;       /* the close callback frees the struct */
  LPFN_WSARECVMSG recvmsg; /* WSARecvMsg, an extension of its provider */
};

static int addr_len(const struct sockaddr *addr) {
  return addr->sa_family == AF_INET6 ? (int)sizeof(struct sockaddr_in6)
                                     : (int)sizeof(struct sockaddr_in);
}

static int wsa_error(void) { return asock__win_error(WSAGetLastError()); }

static int set_int(SOCKET s, int level, int name, int value) {
  if (setsockopt(s, level, name, (const char *)&value, sizeof(value)) != 0)
    return wsa_error();
  return 0;
}

/* Turns one of the ICMP reports (see the top of the file) on or off. A
 * provider that does not know the ioctl makes no such report (Windows
 * before 8 has no SIO_UDP_NETRESET): a failure changes nothing. */
static void report_icmp(SOCKET s, DWORD ioctl, BOOL enable) {
  DWORD bytes = 0;
  (void)WSAIoctl(s, ioctl, &enable, sizeof(enable), NULL, 0, &bytes, NULL,
                 NULL);
}

static int load_recvmsg(SOCKET s, LPFN_WSARECVMSG *fn) {
  GUID guid = WSAID_WSARECVMSG;
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), fn,
               sizeof(*fn), &bytes, NULL, NULL) != 0)
    return wsa_error();
  return 0;
}

/* Makes the OS socket with what the bind needs before it: the address
 * sharing the flags ask for, the families it accepts, and the packet
 * information of every datagram, kept on for every receive. */
static int open_udp(int family, unsigned int flags, SOCKET *out,
                    LPFN_WSARECVMSG *recvmsg) {
  SOCKET s;
  int err;

  *out = INVALID_SOCKET;
  s = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0, WSA_FLAG_OVERLAPPED);
  if (s == INVALID_SOCKET)
    return wsa_error();
  /* As libuv does: a child process does not inherit the socket. */
  if (!SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0)) {
    err = asock__from_uv(uv_translate_sys_error((int)GetLastError()));
    goto fail;
  }
  err = load_recvmsg(s, recvmsg);
  if (err != 0)
    goto fail;
  /* Windows lets any socket with SO_REUSEADDR take over a port bound
   * without it. On Unix a port is shared only when every socket on it asked
   * for it: a socket that did not ask holds its port alone. */
  if (flags & ASOCK_UDP_REUSEADDR)
    err = set_int(s, SOL_SOCKET, SO_REUSEADDR, 1);
  else
    err = set_int(s, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, 1);
  if (err != 0)
    goto fail;
  /* Windows makes IPv6 sockets IPv6-only unless told otherwise. */
  if (family == AF_INET6) {
    err = set_int(s, IPPROTO_IPV6, IPV6_V6ONLY,
                  (flags & ASOCK_UDP_IPV6ONLY) != 0);
    if (err != 0)
      goto fail;
  }
  report_icmp(s, SIO_UDP_CONNRESET, FALSE);
  report_icmp(s, SIO_UDP_NETRESET, FALSE);
  *out = s;
  return 0;

fail:
  closesocket(s);
  return err;
}

/* The socket's own port (network order), which packet information leaves
 * out. */
static unsigned short local_port(SOCKET s) {
  asock__sockaddr self;
  int len = (int)sizeof(self);
  if (getsockname(s, &self.sa, &len) != 0)
    return 0;
  return self.sa.sa_family == AF_INET6 ? self.in6.sin6_port : self.in.sin_port;
}

static void on_ready(asock__win_poll *p, int readable, int writable) {
  asock__udp_ready(p->sock, readable, writable);
}

int asock__udp_io_bind(asock_socket *sock, const struct sockaddr *addr,
                       unsigned int flags) {
  asock__udp_handle *h;
  LPFN_WSARECVMSG recvmsg = NULL;
  SOCKET s;
  int err;

  h = asock__malloc(sizeof(*h));
  if (h == NULL)
    return ASOCK_ENOMEM;
  err = open_udp(addr->sa_family, flags, &s, &recvmsg);
  if (err != 0)
    goto fail;
  if (bind(s, addr, addr_len(addr)) != 0) {
    /* WSAEACCES: another socket holds the port exclusively, which Unix
     * calls EADDRINUSE. */
    err = WSAGetLastError() == WSAEACCES ? ASOCK_EADDRINUSE : wsa_error();
    closesocket(s);
    goto fail;
  }
  /* The poll handle makes the socket non-blocking. */
  err = asock__win_poll_open(&h->p, sock, s, on_ready);
  if (err != 0)
    goto fail;
  h->recvmsg = recvmsg;
  sock->io.handle.udp = h;
  asock__udp(sock)->port = local_port(s);
  return 0;

fail:
  asock__free(h);
  return err;
}

uv_os_sock_t asock__win_udp_socket(const asock_socket *sock) {
  return sock->io.handle.udp != NULL ? sock->io.handle.udp->p.watch.socket
                                     : INVALID_SOCKET;
}

static void on_close(uv_handle_t *handle) {
  asock__udp_handle *h =
      ASOCK__CONTAINER_OF(handle, asock__udp_handle, p.watch.poll);
  asock_socket *sock = h->p.sock;

  asock__free(h);
  asock__socket_closed(sock);
}

void asock__win_udp_close(asock_socket *sock) {
  asock__udp_handle *h = sock->io.handle.udp;

  if (h == NULL) {
    /* Never had an OS socket: nothing to wait for. */
    asock__socket_closed(sock);
    return;
  }
  sock->io.handle.udp = NULL;
  asock__win_poll_close(&h->p, on_close);
}

int asock__udp_io_connect(asock_socket *sock, const struct sockaddr *addr) {
  SOCKET s = asock__win_udp_socket(sock);
  asock__sockaddr mapped;
  struct sockaddr_storage none;

  if (s == INVALID_SOCKET)
    return ASOCK_EBADF;
  if (addr == NULL) {
    /* An all-zero address dissolves the association (as libuv does it);
     * unlike Linux, Windows keeps the local port. */
    memset(&none, 0, sizeof(none));
    if (connect(s, (struct sockaddr *)&none, (int)sizeof(none)) != 0)
      return wsa_error();
    report_icmp(s, SIO_UDP_CONNRESET, FALSE);
    return 0;
  }
  /* Linux takes an IPv4 peer on a dual-stack socket; Windows wants its
   * IPv4-mapped form. */
  if (addr->sa_family == AF_INET && asock__udp(sock)->family == AF_INET6) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
    asock__map_ipv4(&in->sin_addr, in->sin_port, &mapped);
    addr = &mapped.sa;
  }
  if (connect(s, addr, addr_len(addr)) != 0)
    return wsa_error();
  report_icmp(s, SIO_UDP_CONNRESET, TRUE);
  return 0;
}

int asock__udp_io_pktinfo(asock_socket *sock) {
  SOCKET s = asock__win_udp_socket(sock);
  int err;

  if (s == INVALID_SOCKET)
    return ASOCK_EBADF;
  /* On a dual-stack socket the IPv4 datagrams carry IP_PKTINFO. */
  err = set_int(s, IPPROTO_IP, IP_PKTINFO, 1);
  if (asock__udp(sock)->family == AF_INET6) {
    int err6 = set_int(s, IPPROTO_IPV6, IPV6_PKTINFO, 1);
    /* An IPv6-only socket may refuse the IPv4 kind. */
    err = err6 != 0 ? err6 : 0;
  }
  return err;
}

/* Reads the packet information of one received datagram into d->local and
 * d->ifindex. */
static void read_pktinfo(WSAMSG *msg, asock__dgram *d, unsigned short port,
                         int family) {
  WSACMSGHDR *c;

  *d->ifindex = 0;
  memset(d->local, 0, sizeof(*d->local));
  for (c = WSA_CMSG_FIRSTHDR(msg); c != NULL; c = WSA_CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      IN_PKTINFO info;
      memcpy(&info, WSA_CMSG_DATA(c), sizeof(info));
      asock__dgram_local4(d, &info.ipi_addr, port,
                          (unsigned int)info.ipi_ifindex, family);
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
      IN6_PKTINFO info;
      memcpy(&info, WSA_CMSG_DATA(c), sizeof(info));
      asock__dgram_local6(d, &info.ipi6_addr, port,
                          (unsigned int)info.ipi6_ifindex);
    }
  }
}

/* One datagram at a time: Windows has no recvmmsg() (ASOCK__UDP_READ_AHEAD
 * is 0, so n is 1). */
int asock__udp_io_recv(asock_socket *sock, asock__dgram *d, unsigned int n) {
  asock__udp_handle *h = sock->io.handle.udp;
  WSAMSG msg;
  WSABUF buf;
  /* Aligned for WSACMSGHDR. */
  union {
    WSACMSGHDR align;
    char bytes[ASOCK__CMSG_SPACE];
  } control;
  DWORD bytes = 0;
  unsigned int flags = 0;

  (void)n;
  if (h == NULL)
    return ASOCK_EBADF;
  buf.buf = d->base;
  buf.len = d->len > 0xffffffffu ? 0xffffffffu : (ULONG)d->len;
  memset(&msg, 0, sizeof(msg));
  msg.name = &d->from->sa;
  msg.namelen = (int)sizeof(*d->from);
  msg.lpBuffers = &buf;
  msg.dwBufferCount = 1;
  /* Room for packet information even when the receive does not want it:
   * Wine fails a WSARecvMsg() that has none with WSAEMSGSIZE once the
   * socket reports it. */
  msg.Control.buf = control.bytes;
  msg.Control.len = sizeof(control.bytes);
  if (h->recvmsg(h->p.watch.socket, &msg, &bytes, NULL, NULL) != 0) {
    int e = WSAGetLastError();
    switch (e) {
    case WSAEMSGSIZE:
      /* The buffer holds the datagram's first bytes; the rest is gone. */
      bytes = buf.len;
      flags = ASOCK_MSG_TRUNCATED;
      break;
    case WSAEWOULDBLOCK:
      return ASOCK_EAGAIN;
    case WSAECONNRESET:
      /* An ICMP port unreachable, reported only with a default peer. */
      return ASOCK_ECONNREFUSED;
    default:
      return asock__win_error(e);
    }
  }
  d->bytes = bytes < d->len ? bytes : d->len;
  d->flags = flags | ((msg.dwFlags & MSG_TRUNC) ? ASOCK_MSG_TRUNCATED : 0);
  if (d->local != NULL)
    read_pktinfo(&msg, d, asock__udp(sock)->port, asock__udp(sock)->family);
  return 1;
}

long asock__udp_io_send1(asock_socket *sock, const void *buf, size_t len,
                         const struct sockaddr *to) {
  uv_buf_t one = uv_buf_init((char *)(uintptr_t)buf, (unsigned int)len);
  return asock__udp_io_send(sock, &one, 1, to);
}

long asock__udp_io_send(asock_socket *sock, const uv_buf_t *iov, unsigned int n,
                        const struct sockaddr *to) {
  SOCKET s = asock__win_udp_socket(sock);
  /* uv_buf_t is laid out as WSABUF on Windows. */
  WSABUF *bufs = (WSABUF *)(uintptr_t)iov;
  DWORD sent = 0;
  int r;

  if (s == INVALID_SOCKET)
    return ASOCK_EBADF;
  if (to != NULL)
    r = WSASendTo(s, bufs, n, &sent, 0, to, addr_len(to), NULL, NULL);
  else
    r = WSASend(s, bufs, n, &sent, 0, NULL, NULL);
  if (r == 0)
    return (long)sent;
  r = WSAGetLastError();
  if (r == WSAEWOULDBLOCK || r == WSAENOBUFS)
    return ASOCK_EAGAIN;
  return asock__win_error(r);
}

void asock__udp_io_want(asock_socket *sock, unsigned int what, int on) {
  asock__udp_handle *h = sock->io.handle.udp;
  unsigned int bits = ((what & ASOCK__UDP_READ) ? ASOCK__WATCH_READ : 0) |
                      ((what & ASOCK__UDP_WRITE) ? ASOCK__WATCH_WRITE : 0);

  if (h != NULL)
    asock__win_poll_want(&h->p, bits, on);
}

int asock__udp_io_setsockopt(asock_socket *sock, int level, int name,
                             const void *value, size_t len) {
  if (setsockopt(asock__win_udp_socket(sock), level, name, (const char *)value,
                 (int)len) != 0)
    return wsa_error();
  return 0;
}
