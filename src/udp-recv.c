/* Receiving datagrams: one per receive-from, in posting order. A receive
 * reads into its own window, or takes a pool slice only when a datagram is
 * there. Where the platform reads several datagrams per system call
 * (recvmmsg), the ones after the first go into slices kept by the socket,
 * which complete the next receives at once. A multishot receive stays at
 * the head of the queue and is delivered every datagram. */
#include <string.h>

#include "internal.h"

/* Datagrams one readiness report may deliver on one socket before the
 * loop's other sockets get their turn (as many as libuv reads). */
#define ASOCK__UDP_PER_EVENT 32

/* Moves the oldest kept datagram into op: an on-demand receive takes its
 * slice (and the charge with it), any other copies it into its window.
 * Returns the bytes the op received. */
static size_t from_kept(asock_socket *sock, asock_op *op) {
  asock__udp_socket *u = asock__udp(sock);
  asock__udp_kept *k = &u->kept[u->kept_first++];
  size_t n = k->bytes;

  u->kept_count--;
  memcpy(&op->remote, &k->from, sizeof(k->from));
  op->flags |= ASOCK__OPF_HAS_REMOTE;
  op->msg_flags = k->flags;
  if (op->kind == ASOCK_OP_RECEIVEMESSAGEFROM) {
    op->local = k->local;
    op->ifindex = k->ifindex;
  }
  if (asock__op_wants_slice(op)) {
    asock__op_park_slice(sock, op);
    asock__op_attach_slice(op, k->slice, 1);
    op->charged = sock;
    op->offset = k->offset;
    op->count = n;
    return n;
  }
  if (n > op->count) {
    n = op->count;
    op->msg_flags |= ASOCK_MSG_TRUNCATED;
  }
  memcpy(op->mem + op->offset, (char *)k->slice + k->offset, n);
  asock__socket_give_slice(sock, k->slice);
  return n;
}

#if ASOCK__UDP_READ_AHEAD
/* Takes up to `want` slices, within the socket's quota, to read datagrams
 * ahead into the kept slots; charges them all at once. Returns how many. */
static unsigned int take_ahead(asock_socket *sock, asock__dgram *d,
                               unsigned int want) {
  asock__udp_socket *u = asock__udp(sock);
  asock_pool *pool = sock->loop->pool;
  unsigned int n = 0;

  if (pool->socket_quota != 0) {
    uint32_t held = asock__socket_slices(sock);
    size_t room = held < pool->socket_quota ? pool->socket_quota - held : 0;
    if (room < want)
      want = (unsigned int)room;
  }
  for (; n < want; n++) {
    asock__udp_kept *k = &u->kept[n];
    void *slice;
    if (asock__loop_take_slice(sock->loop, &slice) != 0)
      break;
    d[n].base = slice;
    d[n].len = pool->slice_size;
    /* Fresh from the loop (erased where the pool erases), with nothing in
     * it to leak: tradable whatever the pool's flags, unlike an op's own. */
    d[n].trade = 1;
    d[n].offset = 0;
    d[n].from = &k->from;
    d[n].local = u->pktinfo ? &k->local : NULL;
    d[n].ifindex = &k->ifindex;
  }
  if (n > 0)
    asock__add_u64(&sock->refs, ASOCK__REF_SLICE * n);
  return n;
}

/* After a read that took `ahead` slices ahead and filled `used` of them:
 * the rest go back, and the next read takes more or fewer. */
static void settle_ahead(asock_socket *sock, asock__dgram *d,
                         unsigned int ahead, unsigned int used, int full) {
  asock__udp_socket *u = asock__udp(sock);
  unsigned int i;

  for (i = used; i < ahead; i++)
    asock__loop_give_slice(sock->loop, d[i].base);
  if (ahead > used)
    asock__socket_release(sock, ASOCK__REF_SLICE * (ahead - used));
  if (full) {
    unsigned int more = 2u * u->ahead + 1u;
    u->ahead =
        (unsigned char)(more < ASOCK__UDP_BATCH - 1 ? more
                                                    : ASOCK__UDP_BATCH - 1);
  } else {
    u->ahead = (unsigned char)used;
  }
}
#endif

/* Reads into op's window (taking a slice first if it wants one) and, where
 * the platform batches, into slices read ahead for the next receives.
 * Returns 1 when op got a datagram (its size in *bytes), ASOCK_EAGAIN,
 * ASOCK_ENOBUFS or ASOCK_EQUOTA when op can have no slice, or the error
 * the read met. On anything but 1 an on-demand op still holds its slice. */
static int read_into(asock_socket *sock, asock_op *op, size_t *bytes) {
  asock__udp_socket *u = asock__udp(sock);
  asock__dgram d[ASOCK__UDP_BATCH];
  unsigned int n = 1;
  unsigned int i;
  int got, full;

  if (asock__op_wants_slice(op)) {
    if (op->mode == ASOCK_BUFFER_SLICE) {
      op->offset = 0;
      op->count = op->mem_len;
    } else {
      int err = asock__op_take_slice(sock, op);
      if (err != 0)
        return err;
    }
  }
  d[0].base = (char *)op->mem + op->offset;
  d[0].len = op->count;
  /* An on-demand receive's slice, whole, may change places with one the
   * datagram is in already. Not where the pool erases slices: the slice the
   * backend takes in trade would keep what it held. */
  d[0].trade = (op->flags & ASOCK__OPF_ON_DEMAND) && op->offset == 0 &&
               op->count == op->mem_len &&
               (sock->loop->pool->flags & ASOCK_POOL_ZERO_ON_RELEASE) == 0;
  d[0].offset = 0;
  d[0].from = (asock__sockaddr *)&op->remote;
  d[0].local = op->kind == ASOCK_OP_RECEIVEMESSAGEFROM ? &op->local : NULL;
  d[0].ifindex = &op->ifindex;
#if ASOCK__UDP_READ_AHEAD
  /* Read-ahead slices could cut a datagram the op's own, larger, window
   * would have held: only for windows no larger than a slice. */
  if (u->ahead > 0 && op->count <= sock->loop->pool->slice_size)
    n += take_ahead(sock, d + 1, u->ahead);
#endif
  got = asock__udp_io_recv(sock, d, n);
  /* Fewer than asked for, or all a ring socket had: the socket is drained,
   * and a receive started before the next readiness report need not try. */
  full = got == (int)n && ASOCK__UDP_MAY_HOLD_MORE(sock);
#if ASOCK__UDP_READ_AHEAD
  settle_ahead(sock, d + 1, n - 1, got > 1 ? (unsigned int)got - 1 : 0, full);
#endif
  if (got <= 0)
    return got;
  if (!full)
    sock->flags |= ASOCK__SF_DRAINED;
  else
    sock->flags &= ~ASOCK__SF_DRAINED;
  for (i = 1; i < (unsigned int)got; i++) {
    asock__udp_kept *k = &u->kept[i - 1];
    k->slice = d[i].base;
    k->offset = d[i].offset;
    k->bytes = d[i].bytes;
    k->flags = d[i].flags;
    if (d[i].local == NULL) {
      k->local.sa.sa_family = 0;
      k->ifindex = 0;
    }
  }
  u->kept_first = 0;
  u->kept_count = (unsigned int)got - 1;
  op->flags |= ASOCK__OPF_HAS_REMOTE;
  op->msg_flags = d[0].flags;
  if (d[0].offset != 0) {
    op->mem = (unsigned char *)d[0].base; /* traded */
    op->offset = d[0].offset;
  }
  if (op->flags & ASOCK__OPF_ON_DEMAND)
    op->count = d[0].bytes;
  *bytes = d[0].bytes;
  return 1;
}

static void start_reading(asock_socket *sock) {
  if ((sock->flags &
       (ASOCK__SF_READING | ASOCK__SF_WAIT_SLICE | ASOCK__SF_HANDLE)) == 0) {
    asock__udp_io_want(sock, ASOCK__UDP_READ, 1);
    sock->flags |= ASOCK__SF_READING;
  }
}

static void stop_reading(asock_socket *sock) {
  if (sock->flags & ASOCK__SF_READING) {
    asock__udp_io_want(sock, ASOCK__UDP_READ, 0);
    sock->flags &= ~ASOCK__SF_READING;
  }
}

void asock__udp_recv_retry(asock_socket *sock) {
  if (sock->recv_head != NULL &&
      (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE)) == 0)
    start_reading(sock);
}

void asock__udp_drop_kept(asock_socket *sock) {
  asock__udp_socket *u = asock__udp(sock);
  while (u->kept_count > 0) {
    u->kept_count--;
    asock__socket_give_slice(sock, u->kept[u->kept_first++].slice);
  }
}

/* The head receive got a datagram of `bytes`: a one-shot receive
 * completes, a multishot one is delivered it. */
static void got_datagram(asock_socket *sock, asock_op *op, size_t bytes) {
  if (op->flags & ASOCK__OPF_MULTISHOT)
    (void)asock__op_deliver(sock, op, bytes);
  else
    asock__op_done(op, 0, bytes);
}

/* The receive to deliver the next datagram to, or NULL while the socket
 * does not read (none waits, back-pressure, or handed over). */
static asock_op *reading_head(const asock_socket *sock) {
  if ((sock->flags & (ASOCK__SF_READING | ASOCK__SF_HANDLE)) !=
      ASOCK__SF_READING)
    return NULL;
  return sock->recv_head;
}

void asock__udp_recv_ready(asock_socket *sock) {
  int i;

  for (i = 0; i < ASOCK__UDP_PER_EVENT; i++) {
    asock_op *op = reading_head(sock);
    size_t bytes = 0;
    int r;

    if (op == NULL)
      break;
    if (asock__udp(sock)->kept_count > 0) {
      bytes = from_kept(sock, op);
      got_datagram(sock, op, bytes);
      continue;
    }
    /* The last read came back short: the socket is empty, and epoll will
     * say when it is not. */
    if (i > 0 && (sock->flags & ASOCK__SF_DRAINED))
      break;
    r = read_into(sock, op, &bytes);
    if (r == 1) {
      got_datagram(sock, op, bytes);
      continue;
    }
    if (op->flags & ASOCK__OPF_ON_DEMAND)
      asock__op_park_slice(sock, op);
    if (r == ASOCK_EAGAIN) {
      sock->flags |= ASOCK__SF_DRAINED;
      return;
    }
    if (r == ASOCK_ENOBUFS || r == ASOCK_EQUOTA) {
      if (sock->loop->pool->flags & ASOCK_POOL_FAIL_FAST) {
        op->msg_flags = 0;
        asock__op_done(op, ASOCK_ENOBUFS, 0);
        continue;
      }
      /* Back-pressure: the socket stops reading until a slice is free. */
      stop_reading(sock);
      asock__loop_wait_slice(sock->loop, sock);
      return;
    }
    /* An error belongs to one datagram (an ICMP error, say): the head
     * receive reports it, and the next ones go on reading. */
    op->msg_flags = 0;
    asock__op_done(op, r, 0);
  }
  if (sock->recv_head == NULL)
    stop_reading(sock);
  else if (asock__udp(sock)->kept_count > 0)
    /* The share ended with datagrams read ahead, which no readiness report
     * will name once the socket is empty: the loop delivers them next,
     * after the other sockets' turn. */
    asock__loop_kick(sock->loop, sock);
}

void asock__udp_recv_kept(asock_socket *sock) {
  asock_op *op;
  while (asock__udp(sock)->kept_count > 0 && (op = reading_head(sock)) != NULL)
    got_datagram(sock, op, from_kept(sock, op));
  if (sock->recv_head == NULL)
    stop_reading(sock);
}

int asock__recvfrom_check(asock_socket *sock, asock_op *op) {
  int err = asock__socket_check_op(sock, op);
  if (err != 0)
    return err;
  if ((sock->flags & ASOCK__SF_UDP) == 0 || op->nbufs != 0)
    return ASOCK_EKIND;
  if ((sock->flags & ASOCK__SF_BOUND) == 0)
    return ASOCK_ENOTCONN;
  if (!asock__op_wants_slice(op) && op->count == 0)
    return ASOCK_EINVAL;
  /* Nothing can wait behind a receive that never completes for good. */
  if (sock->flags & ASOCK__SF_MULTISHOT)
    return ASOCK_EBUSY;
  return 0;
}

/* A multishot receive-from waits from the start, so that no delivery runs
 * inside the starting call; datagrams the socket read ahead already are
 * delivered from the loop soon after, as no readiness report will name
 * them. */
static int multishot_start(asock_socket *sock, asock_op *op) {
  if (op->flags & ASOCK__OPF_ON_DEMAND)
    asock__op_park_slice(sock, op);
  sock->flags |= ASOCK__SF_MULTISHOT;
  asock__socket_enqueue(&sock->recv_head, &sock->recv_tail, op, ASOCK__Q_RECV);
  asock__loop_watch(sock->loop, op);
  start_reading(sock);
  if (asock__udp(sock)->kept_count > 0 && sock->recv_head == op)
    asock__loop_kick(sock->loop, sock);
  return ASOCK_PENDING;
}

int asock__recvfrom_start(asock_socket *sock, asock_op *op) {
  /* Packet information is asked for from the first receive-message-from
   * on: the kernel does not build it for sockets that never use it. */
  if (op->kind == ASOCK_OP_RECEIVEMESSAGEFROM && !asock__udp(sock)->pktinfo) {
    int err = asock__udp_io_pktinfo(sock);
    if (err != 0)
      return err;
    asock__udp(sock)->pktinfo = 1;
  }
  if (op->flags & ASOCK__OPF_MULTISHOT)
    return multishot_start(sock, op);
  /* Try at once, unless an earlier receive waits (it must complete first)
   * or the socket was found drained while it is watched. */
  if (sock->recv_head == NULL) {
    size_t bytes = 0;
    int r = 1;

    if (asock__udp(sock)->kept_count > 0) {
      bytes = from_kept(sock, op);
    } else if ((sock->flags & (ASOCK__SF_READING | ASOCK__SF_DRAINED)) !=
               (ASOCK__SF_READING | ASOCK__SF_DRAINED)) {
      r = read_into(sock, op, &bytes);
    } else {
      r = ASOCK_EAGAIN;
    }
    if (r == 1) {
      op->seq = sock->recv_seq++;
      asock__op_finish_sync(op, 0, bytes);
      return 0;
    }
    if ((r == ASOCK_ENOBUFS || r == ASOCK_EQUOTA) &&
        (sock->loop->pool->flags & ASOCK_POOL_FAIL_FAST))
      return ASOCK_ENOBUFS;
    if (r == ASOCK_EAGAIN)
      sock->flags |= ASOCK__SF_DRAINED;
    else if (r != ASOCK_ENOBUFS && r != ASOCK_EQUOTA) {
      if (op->flags & ASOCK__OPF_ON_DEMAND)
        asock__op_park_slice(sock, op);
      op->msg_flags = 0;
      op->seq = sock->recv_seq++;
      asock__op_finish_sync(op, r, 0);
      return 0;
    }
  }

  /* Wait. An on-demand receive gives its slice back meanwhile, so that an
   * idle socket holds none. */
  if (op->flags & ASOCK__OPF_ON_DEMAND)
    asock__op_park_slice(sock, op);
  op->seq = sock->recv_seq++;
  asock__socket_enqueue(&sock->recv_head, &sock->recv_tail, op, ASOCK__Q_RECV);
  asock__loop_watch(sock->loop, op);
  start_reading(sock);
  return ASOCK_PENDING;
}

int asock_receive_from(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_RECEIVEFROM,
                           asock__recvfrom_check, asock__recvfrom_start);
}

int asock_receive_message_from(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_RECEIVEMESSAGEFROM,
                           asock__recvfrom_check, asock__recvfrom_start);
}
