/* UDP sockets: creation, bind, the default peer, options, and send-to.
 * Datagrams leave whole or not at all: a send-to tries the kernel at once
 * when nothing is queued before it, and otherwise waits in the socket's send
 * queue for writability, in posting order. Receiving is in udp-recv.c. */
#include <string.h>

#include "internal.h"

/* The largest UDP payloads: 65535 less the IPv4 and UDP headers, or less
 * the UDP header alone for IPv6 (whose header is outside the length). */
#define ASOCK__UDP_MAX_IPV4 65507u
#define ASOCK__UDP_MAX_IPV6 65527u

int asock_udp_create(asock_socket **sock_out, asock_loop *loop) {
  return asock__socket_create(sock_out, loop, sizeof(asock__udp_socket),
                              ASOCK__SF_UDP);
}

static int valid_family(const struct sockaddr *addr) {
  return addr->sa_family == AF_INET || addr->sa_family == AF_INET6;
}

/* What bind, connect and the options check first. */
static int check_udp(const asock_socket *sock) {
  if (sock == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))
    return ASOCK_ECLOSED;
  if ((sock->flags & ASOCK__SF_UDP) == 0)
    return ASOCK_EKIND;
  return 0;
}

static int bind_to(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags) {
  int err = asock__udp_io_bind(sock, addr, flags);
  if (err != 0)
    return err;
  asock__udp(sock)->family = addr->sa_family;
  sock->flags |= ASOCK__SF_BOUND;
  return 0;
}

int asock_udp_bind(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags) {
  int err = check_udp(sock);
  if (err != 0)
    return err;
  if (addr == NULL ||
      (flags & ~(ASOCK_UDP_IPV6ONLY | ASOCK_UDP_REUSEADDR | ASOCK_UDP_PKTINFO)))
    return ASOCK_EINVAL;
  if (sock->flags & ASOCK__SF_BOUND)
    return ASOCK_EKIND;
  if (!valid_family(addr))
    return ASOCK_EAFNOSUPPORT;
  err = bind_to(sock, addr, flags);
  if (err == 0 && (flags & ASOCK_UDP_PKTINFO)) {
    err = asock__udp_io_pktinfo(sock);
    if (err == 0)
      asock__udp(sock)->pktinfo = 1;
  }
  return err;
}

int asock__udp_autobind(asock_socket *sock, int family) {
  asock__sockaddr any;

  if (sock->flags & ASOCK__SF_BOUND)
    return 0;
  memset(&any, 0, sizeof(any));
  if (family == AF_INET6)
    any.in6.sin6_family = AF_INET6;
  else
    any.in.sin_family = AF_INET;
  return bind_to(sock, &any.sa, 0);
}

int asock_udp_connect(asock_socket *sock, const struct sockaddr *addr) {
  int err = check_udp(sock);
  if (err != 0)
    return err;
  if (addr == NULL) {
    if (asock__socket_stage(sock) != ASOCK__STAGE_CONNECTED)
      return ASOCK_ENOTCONN;
    err = asock__udp_io_connect(sock, NULL);
    if (err == 0)
      asock__socket_set_stage(sock, ASOCK__STAGE_NEW);
    return err;
  }
  if (!valid_family(addr))
    return ASOCK_EAFNOSUPPORT;
  err = asock__udp_autobind(sock, addr->sa_family);
  if (err == 0)
    err = asock__udp_io_connect(sock, addr);
  if (err == 0)
    asock__socket_set_stage(sock, ASOCK__STAGE_CONNECTED);
  return err;
}

/* What every option function checks first: 0, or the error to return. */
static int check_bound(asock_socket *sock) {
  int err = check_udp(sock);
  if (err != 0)
    return err;
  if ((sock->flags & ASOCK__SF_BOUND) == 0)
    return ASOCK_ENOTCONN;
  return 0;
}

static int is_ipv6(asock_socket *sock) {
  return asock__udp(sock)->family == AF_INET6;
}

static int set_int(asock_socket *sock, int level, int name, int value) {
  return asock__udp_io_setsockopt(sock, level, name, &value, sizeof(value));
}

/* An IPv4 multicast option, as wide as asock__mcast4_opt (a byte on the
 * BSDs). */
static int set_mcast4(asock_socket *sock, int name, int value) {
  asock__mcast4_opt narrow = (asock__mcast4_opt)value;
  return asock__udp_io_setsockopt(sock, IPPROTO_IP, name, &narrow,
                                  sizeof(narrow));
}

int asock_udp_set_broadcast(asock_socket *sock, int enable) {
  int err = check_bound(sock);
  if (err != 0)
    return err;
  return set_int(sock, SOL_SOCKET, SO_BROADCAST, enable != 0);
}

int asock_udp_set_ttl(asock_socket *sock, int ttl) {
  int err;
  if (ttl < 1 || ttl > 255)
    return ASOCK_EINVAL;
  err = check_bound(sock);
  if (err != 0)
    return err;
  return is_ipv6(sock) ? set_int(sock, IPPROTO_IPV6, IPV6_UNICAST_HOPS, ttl)
                       : set_int(sock, IPPROTO_IP, IP_TTL, ttl);
}

int asock_udp_set_multicast_ttl(asock_socket *sock, int ttl) {
  int err;
  if (ttl < 0 || ttl > 255)
    return ASOCK_EINVAL;
  err = check_bound(sock);
  if (err != 0)
    return err;
  return is_ipv6(sock) ? set_int(sock, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, ttl)
                       : set_mcast4(sock, IP_MULTICAST_TTL, ttl);
}

int asock_udp_set_multicast_loop(asock_socket *sock, int enable) {
  int err = check_bound(sock);
  if (err != 0)
    return err;
  return is_ipv6(sock)
             ? set_int(sock, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, enable != 0)
             : set_mcast4(sock, IP_MULTICAST_LOOP, enable != 0);
}

/* The interface argument of the multicast functions: NULL, or an address
 * of the family the group (or the socket) has. */
static int check_iface(const struct sockaddr *iface, int family) {
  if (iface != NULL && iface->sa_family != family)
    return ASOCK_EAFNOSUPPORT;
  return 0;
}

int asock_udp_set_multicast_interface(asock_socket *sock,
                                      const struct sockaddr *iface) {
  struct in_addr addr;
  uint32_t index;
  int err = check_bound(sock);
  if (err != 0)
    return err;
  err = check_iface(iface, asock__udp(sock)->family);
  if (err != 0)
    return err;
  if (is_ipv6(sock)) {
    index = iface != NULL
                ? (uint32_t)((const struct sockaddr_in6 *)iface)->sin6_scope_id
                : 0;
    return asock__udp_io_setsockopt(sock, IPPROTO_IPV6, IPV6_MULTICAST_IF,
                                    &index, sizeof(index));
  }
  if (iface != NULL)
    addr = ((const struct sockaddr_in *)iface)->sin_addr;
  else
    addr.s_addr = htonl(INADDR_ANY);
  return asock__udp_io_setsockopt(sock, IPPROTO_IP, IP_MULTICAST_IF, &addr,
                                  sizeof(addr));
}

static int is_multicast(const struct sockaddr *addr) {
  if (addr->sa_family == AF_INET) {
    const unsigned char *a =
        (const unsigned char *)&((const struct sockaddr_in *)addr)->sin_addr;
    return (a[0] & 0xf0) == 0xe0; /* 224.0.0.0/4 */
  }
  if (addr->sa_family == AF_INET6)
    return ((const unsigned char *)&((const struct sockaddr_in6 *)addr)
                ->sin6_addr)[0] == 0xff;
  return 0;
}

/* Joins or leaves a group whose arguments asock_udp_set_membership() has
 * checked. */
static int membership(asock_socket *sock, const struct sockaddr *group,
                      const struct sockaddr *iface, int join) {
  if (group->sa_family == AF_INET6) {
    struct ipv6_mreq mreq;
    memset(&mreq, 0, sizeof(mreq));
    mreq.ipv6mr_multiaddr = ((const struct sockaddr_in6 *)group)->sin6_addr;
    mreq.ipv6mr_interface =
        iface != NULL ? ((const struct sockaddr_in6 *)iface)->sin6_scope_id : 0;
    return asock__udp_io_setsockopt(sock, IPPROTO_IPV6,
                                    join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP,
                                    &mreq, sizeof(mreq));
  } else {
    struct ip_mreq mreq;
    memset(&mreq, 0, sizeof(mreq));
    mreq.imr_multiaddr = ((const struct sockaddr_in *)group)->sin_addr;
    if (iface != NULL)
      mreq.imr_interface = ((const struct sockaddr_in *)iface)->sin_addr;
    else
      mreq.imr_interface.s_addr = htonl(INADDR_ANY);
    return asock__udp_io_setsockopt(
        sock, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mreq,
        sizeof(mreq));
  }
}

int asock_udp_set_membership(asock_socket *sock, const struct sockaddr *group,
                             const struct sockaddr *iface, int join) {
  int err = check_udp(sock);
  if (err != 0)
    return err;
  if (group == NULL)
    return ASOCK_EINVAL;
  if ((sock->flags & ASOCK__SF_BOUND) == 0)
    return ASOCK_ENOTCONN;
  if (!valid_family(group))
    return ASOCK_EAFNOSUPPORT;
  if (!is_multicast(group))
    return ASOCK_EINVAL;
  if (group->sa_family == AF_INET6 && asock__udp(sock)->family != AF_INET6)
    return ASOCK_EAFNOSUPPORT;
  err = check_iface(iface, group->sa_family);
  if (err != 0)
    return err;
  return membership(sock, group, iface, join != 0);
}

/* ---- send-to ------------------------------------------------------------ */

/* The family the socket will have: its own, or the one an automatic bind
 * will give it. */
static int send_family(asock_socket *sock, const asock_op *op) {
  int family = asock__udp(sock)->family;
  if (family == 0)
    family = ((const struct sockaddr *)&op->remote)->sa_family;
  return family;
}

static int sendto_check_slow(asock_socket *sock, asock_op *op) {
  const struct sockaddr *to = (const struct sockaddr *)&op->remote;
  size_t len;
  int err = asock__socket_check_op(sock, op);
  if (err != 0)
    return err;
  if ((sock->flags & ASOCK__SF_UDP) == 0 || (op->flags & ASOCK__OPF_MULTISHOT))
    return ASOCK_EKIND;
  if ((op->nbufs == 0 && op->mode == ASOCK_BUFFER_NONE) ||
      op->nbufs > ASOCK__IOV_MAX)
    return ASOCK_EINVAL;
  if (op->nbufs != 0) {
    err = asock__bufs_check(op->bufs, op->nbufs);
    if (err != 0)
      return err;
  }
  if (asock__socket_stage(sock) != ASOCK__STAGE_CONNECTED) {
    if ((op->flags & ASOCK__OPF_HAS_REMOTE) == 0)
      return ASOCK_EDESTADDRREQ;
    if (to->sa_family == AF_INET6 && asock__udp(sock)->family == AF_INET)
      return ASOCK_EAFNOSUPPORT;
  }
  len = asock__op_total(op);
  if (len > (send_family(sock, op) == AF_INET6 ? ASOCK__UDP_MAX_IPV6
                                               : ASOCK__UDP_MAX_IPV4))
    return ASOCK_EMSGSIZE;
  if (sock->send_cap != 0 && sock->send_queued > 0 &&
      sock->send_queued + len > sock->send_cap)
    return ASOCK_ENOBUFS;
  return 0;
}

/* The usual case in one test: a bound socket, nothing queued, one window no
 * larger than any IPv4 datagram, and a default peer or an address of the
 * socket's own family. Anything else is sorted out by sendto_check_slow().
 */
static ASOCK__ALWAYS_INLINE int sendto_check(asock_socket *sock, asock_op *op) {
  if (sock == NULL || op == NULL ||
      (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE | ASOCK__SF_UDP |
                      ASOCK__SF_BOUND)) != (ASOCK__SF_UDP | ASOCK__SF_BOUND) ||
      op->pool != sock->loop->pool || op->nbufs != 0 ||
      op->mode == ASOCK_BUFFER_NONE || sock->send_queued != 0 ||
      (op->flags & ASOCK__OPF_MULTISHOT) || op->count > ASOCK__UDP_MAX_IPV4 ||
      (asock__socket_stage(sock) != ASOCK__STAGE_CONNECTED &&
       ((op->flags & ASOCK__OPF_HAS_REMOTE) == 0 ||
        ((const struct sockaddr *)&op->remote)->sa_family !=
            asock__udp(sock)->family)))
    return sendto_check_slow(sock, op);
  return 0;
}

/* The op's datagram as the loop's scratch vector: returns its length. */
static unsigned int datagram_iov(asock_loop *loop, const asock_op *op) {
  size_t i;
  if (op->nbufs == 0) {
    loop->iov[0] =
        uv_buf_init((char *)op->mem + op->offset, (unsigned int)op->count);
    return 1;
  }
  for (i = 0; i < op->nbufs; i++)
    loop->iov[i] =
        uv_buf_init((char *)op->bufs[i].base, (unsigned int)op->bufs[i].len);
  return (unsigned int)op->nbufs;
}

/* Where the datagram goes: NULL for the default peer. An IPv4 address on an
 * IPv6 socket is given as its IPv4-mapped form, which a dual-stack socket
 * needs. */
static const struct sockaddr *
destination(asock_socket *sock, const asock_op *op, asock__sockaddr *mapped) {
  const struct sockaddr *to = (const struct sockaddr *)&op->remote;

  if (asock__socket_stage(sock) == ASOCK__STAGE_CONNECTED)
    return NULL;
  if (to->sa_family == AF_INET && asock__udp(sock)->family == AF_INET6) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)to;
    unsigned char *a = (unsigned char *)&mapped->in6.sin6_addr;
    memset(mapped, 0, sizeof(*mapped));
    mapped->in6.sin6_family = AF_INET6;
    mapped->in6.sin6_port = in->sin_port;
    a[10] = 0xff;
    a[11] = 0xff;
    memcpy(a + 12, &in->sin_addr, 4);
    return &mapped->sa;
  }
  return to;
}

unsigned int asock__udp_send_refusals;

/* Offers the op's datagram to the kernel: its length, ASOCK_EAGAIN, or the
 * error the kernel reports for it. */
static ASOCK__ALWAYS_INLINE long try_send(asock_socket *sock,
                                          const asock_op *op) {
  asock__sockaddr mapped;
  const struct sockaddr *to;
  unsigned int n;

  if (asock__udp_send_refusals > 0) {
    asock__udp_send_refusals--;
    return ASOCK_EAGAIN;
  }
  to = destination(sock, op, &mapped);
  if (op->nbufs == 0)
    return asock__udp_io_send1(sock, op->mem + op->offset, op->count, to);
  n = datagram_iov(sock->loop, op);
  return asock__udp_io_send(sock, sock->loop->iov, n, to);
}

/* Queues a datagram the kernel could not take now, behind any before it. */
static int queue_send(asock_socket *sock, asock_op *op) {
  asock__socket_enqueue(&sock->send_head, &sock->send_tail, op, ASOCK__Q_SEND);
  sock->send_queued += op->total;
  asock__send_check_marks(sock);
  asock__loop_watch(sock->loop, op);
  asock__udp_io_want(sock, ASOCK__UDP_WRITE, 1);
  return ASOCK_PENDING;
}

static ASOCK__ALWAYS_INLINE int sendto_start(asock_socket *sock, asock_op *op) {
  long sent;

  if ((sock->flags & ASOCK__SF_BOUND) == 0) {
    int err = asock__udp_autobind(sock, send_family(sock, op));
    if (err != 0)
      return err;
  }
  op->seq = sock->send_seq++;
  op->total = asock__op_total(op);
  op->sent = 0;
  if (sock->send_head != NULL)
    return queue_send(sock, op);
  sent = try_send(sock, op);
  if (sent == ASOCK_EAGAIN)
    return queue_send(sock, op);
  if (sent >= 0)
    asock__op_finish_sync(op, 0, (size_t)sent);
  else
    asock__op_finish_sync(op, (int)sent, 0);
  return 0;
}

/* The exported halves for asock__start(); asock_send_to() inlines its own.
 */
int asock__sendto_check(asock_socket *sock, asock_op *op) {
  return sendto_check(sock, op);
}

int asock__sendto_start(asock_socket *sock, asock_op *op) {
  return sendto_start(sock, op);
}

int asock_send_to(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_SENDTO, sendto_check,
                           sendto_start);
}

/* The socket is writable: queued datagrams go, in order, until the kernel
 * takes no more. Each completes with its own result. */
static void flush_sends(asock_socket *sock) {
  asock_op *op;

  while ((op = sock->send_head) != NULL &&
         (sock->flags & ASOCK__SF_HANDLE) == 0) {
    long sent = try_send(sock, op);
    if (sent == ASOCK_EAGAIN)
      return;
    asock__send_unqueue(sock, op);
    if (sent >= 0)
      asock__op_done(op, 0, (size_t)sent);
    else
      asock__op_done(op, (int)sent, 0);
  }
  if (sock->send_head == NULL && (sock->flags & ASOCK__SF_HANDLE) == 0)
    asock__udp_io_want(sock, ASOCK__UDP_WRITE, 0);
}

void asock__udp_ready(asock_socket *sock, int readable, int writable) {
  if (writable)
    flush_sends(sock);
  if (readable)
    asock__udp_recv_ready(sock);
}
