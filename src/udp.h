/* UDP sockets (src/udp.c, src/udp-recv.c). */
#ifndef ASOCK_UDP_H
#define ASOCK_UDP_H

#include "queue.h"

/* ---- UDP (src/udp.c, src/udp-recv.c) ----------------------------------- */

/* The most datagrams one receive system call reads (recvmmsg on Linux; the
 * other platforms read one at a time). */
#define ASOCK__UDP_BATCH 8

/* One datagram of a batched receive: where it goes, and what the platform
 * reports of it. The addresses are written in place: into the op, or into
 * the slot that keeps a datagram read ahead. */
typedef struct asock__dgram {
  char *base; /* the buffer; out: the slice traded for it (`trade`) */
  size_t len;
  /* In: base is a whole slice of the pool, charged to the socket, which the
   * platform may trade for a slice that already holds the datagram (the
   * io_uring backend's, received into by the kernel): base then names that
   * slice, and the datagram starts `offset` bytes into it. */
  int trade;
  size_t offset;          /* out: 0 unless traded */
  asock__sockaddr *from;  /* the sender goes here */
  asock__sockaddr *local; /* the destination goes here (family 0 when the
                           * kernel gave none); NULL: not wanted */
  unsigned int *ifindex;  /* with local: the interface, 0 if unknown */
  size_t bytes;           /* out: the bytes that fit */
  unsigned int flags;     /* out: ASOCK_MSG_TRUNCATED */
} asock__dgram;

/* The IPv4-mapped IPv6 form of an IPv4 address (::ffff:a.b.c.d), as a
 * dual-stack socket names its IPv4 peers. */
static inline void asock__map_ipv4(const struct in_addr *in,
                                   unsigned short port, asock__sockaddr *out) {
  unsigned char *a = (unsigned char *)&out->in6.sin6_addr;
  memset(out, 0, sizeof(*out));
  out->in6.sin6_family = AF_INET6;
  out->in6.sin6_port = port;
  a[10] = 0xff;
  a[11] = 0xff;
  memcpy(a + 12, in, 4);
}

/* Records the destination and interface a datagram's packet information
 * gave (the port is the socket's, in network order). On an IPv6 socket
 * (`family`) an IPv4 destination is given IPv4-mapped, as its sender is,
 * whichever kind of packet information the kernel wrote. */
static inline void asock__dgram_local4(asock__dgram *d,
                                       const struct in_addr *addr,
                                       unsigned short port,
                                       unsigned int ifindex, int family) {
  if (family == AF_INET6) {
    asock__map_ipv4(addr, port, d->local);
  } else {
    memset(d->local, 0, sizeof(*d->local));
    d->local->in.sin_family = AF_INET;
    d->local->in.sin_addr = *addr;
    d->local->in.sin_port = port;
  }
  *d->ifindex = ifindex;
}
static inline void asock__dgram_local6(asock__dgram *d,
                                       const struct in6_addr *addr,
                                       unsigned short port,
                                       unsigned int ifindex) {
  memset(d->local, 0, sizeof(*d->local));
  d->local->in6.sin6_family = AF_INET6;
  d->local->in6.sin6_addr = *addr;
  d->local->in6.sin6_port = port;
  *d->ifindex = ifindex;
}

/* A datagram read ahead, in a slice charged to the socket. */
typedef struct asock__udp_kept {
  void *slice;
  size_t offset; /* where in it the datagram starts */
  size_t bytes;
  unsigned int flags;
  unsigned int ifindex;
  asock__sockaddr from;
  asock__sockaddr local;
} asock__udp_kept;

/* A UDP socket: the socket, and the datagrams read ahead of the receives,
 * waiting for the next receives. A read happens only once those are all
 * taken, so they always start at kept[kept_first]. */
typedef struct asock__udp_socket {
  asock_socket sock;
  int family;            /* of the OS socket; 0 until it exists */
  unsigned short port;   /* its local port, in network order */
  unsigned char pktinfo; /* the kernel reports packet information */
  unsigned char ahead;   /* slices the next read takes ahead: it grows
                          * while reads fill them all, and falls to what
                          * the last read used */
  unsigned int kept_first;
  unsigned int kept_count;
  asock__udp_kept kept[ASOCK__UDP_BATCH - 1];
} asock__udp_socket;

static inline asock__udp_socket *asock__udp(asock_socket *sock) {
  return (asock__udp_socket *)sock;
}

int asock__sendto_check(asock_socket *sock, asock_op *op);
int asock__sendto_start(asock_socket *sock, asock_op *op);
int asock__recvfrom_check(asock_socket *sock, asock_op *op);
int asock__recvfrom_start(asock_socket *sock, asock_op *op);
/* The socket is readable (readable != 0) or writable: what waits tries. */
void asock__udp_ready(asock_socket *sock, int readable, int writable);
/* Receive side: the socket is readable. */
void asock__udp_recv_ready(asock_socket *sock);
/* Delivers the datagrams the socket read ahead, reading none anew: from
 * the loop (asock__loop_kick()), for the ones no readiness report names
 * (a multishot receive started with some kept, or a report's share that
 * ended with some kept). */
void asock__udp_recv_kept(asock_socket *sock);
/* Resumes reading for a UDP socket that waited for a slice. */
void asock__udp_recv_retry(asock_socket *sock);
/* Gives back the slices of the datagrams kept for later receives. */
void asock__udp_drop_kept(asock_socket *sock);
/* Test hook: the next this many datagram sends find the kernel's buffer
 * full (a UDP socket's sends rarely do on loopback), so that the queued
 * path can be tested. 0 outside tests. */
extern unsigned int asock__udp_send_refusals;
/* Binds a socket not yet bound to the wildcard address of family. */
int asock__udp_autobind(asock_socket *sock, int family);

#endif /* ASOCK_UDP_H */
