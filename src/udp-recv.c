/* Receiving datagrams: one per receive-from, in posting order. A receive
 * reads into its own window, or takes a pool slice only when a datagram is
 * there. Where the platform reads several datagrams per system call
 * (recvmmsg), the ones after the first go into slices kept by the socket,
 * which complete the next receives at once. */
#include <string.h>

#include "internal.h"

/* Datagrams one readiness report may deliver on one socket before the
 * loop's other sockets get their turn. */
#define ASOCK__UDP_PER_EVENT 16

/* Copies what the platform reported of a datagram into the op. */
static void set_result(asock_op *op, const asock__dgram *d) {
  memcpy(&op->remote, &d->from, sizeof(d->from));
  op->flags |= ASOCK__OPF_HAS_REMOTE;
  op->msg_flags = d->flags;
  if (op->kind == ASOCK_OP_RECEIVEMESSAGEFROM) {
    op->local = d->local;
    op->ifindex = d->ifindex;
  }
}

/* Gives back a kept datagram's slice and its charge. */
static void give_charged(asock_socket *sock, void *slice) {
  asock__loop_give_slice(sock->loop, slice);
  asock__socket_release(sock, ASOCK__REF_SLICE);
}

/* Moves the oldest kept datagram into op: an on-demand receive takes its
 * slice (and the charge with it), any other copies it into its window.
 * Returns the bytes the op received. */
static size_t from_stash(asock_socket *sock, asock_op *op) {
  asock__udp_socket *u = asock__udp(sock);
  asock__dgram *d = &u->stash[u->stash_first];
  size_t n = d->bytes;

  u->stash_first = (u->stash_first + 1) % ASOCK__UDP_BATCH;
  u->stash_count--;
  set_result(op, d);
  if (asock__op_wants_slice(op)) {
    asock__op_park_slice(sock, op);
    asock__op_attach_slice(op, d->base, 1);
    op->charged = sock;
    op->count = n;
    return n;
  }
  if (n > op->count) {
    n = op->count;
    op->msg_flags |= ASOCK_MSG_TRUNCATED;
  }
  memcpy(op->mem + op->offset, d->base, n);
  give_charged(sock, d->base);
  return n;
}

/* Reads into op's window (taking a slice first if it wants one) and, where
 * the platform batches, into read-ahead slices kept for the next receives.
 * Returns 1 when op got a datagram (its size in *bytes), ASOCK_EAGAIN,
 * ASOCK_ENOBUFS or ASOCK_EQUOTA when op can have no slice, or the error
 * the read met. On anything but 1 an on-demand op still holds its slice. */
static int read_into(asock_socket *sock, asock_op *op, size_t *bytes) {
  asock__udp_socket *u = asock__udp(sock);
  asock__dgram d[ASOCK__UDP_BATCH];
  size_t slice_size = sock->loop->pool->slice_size;
  unsigned int n = 1;
  unsigned int i;
  int got;

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
  /* Read-ahead slices could truncate a datagram the op's own, larger,
   * window would have held: only for windows no larger than a slice. */
  if (ASOCK__UDP_READ_AHEAD && op->count <= slice_size) {
    for (; n < ASOCK__UDP_BATCH; n++) {
      void *slice;
      if (asock__socket_take_slice(sock, &slice) != 0)
        break;
      d[n].base = slice;
      d[n].len = slice_size;
    }
  }
  got = asock__udp_io_recv(sock, d, n);
  for (i = got > 1 ? (unsigned int)got : 1; i < n; i++)
    give_charged(sock, d[i].base);
  if (got <= 0)
    return got;
  /* Fewer than asked for: the socket is drained, and a receive started
   * before the next readiness report need not try. */
  if ((unsigned int)got < n)
    sock->flags |= ASOCK__SF_DRAINED;
  else
    sock->flags &= ~ASOCK__SF_DRAINED;
  for (i = 1; i < (unsigned int)got; i++) {
    u->stash[(u->stash_first + u->stash_count) % ASOCK__UDP_BATCH] = d[i];
    u->stash_count++;
  }
  set_result(op, &d[0]);
  if (op->flags & ASOCK__OPF_ON_DEMAND)
    op->count = d[0].bytes;
  *bytes = d[0].bytes;
  return 1;
}

static void start_reading(asock_socket *sock) {
  if ((sock->flags & (ASOCK__SF_READING | ASOCK__SF_WAIT_SLICE |
                      ASOCK__SF_HANDLE_GONE)) == 0) {
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
      (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE_GONE)) == 0)
    start_reading(sock);
}

void asock__udp_drop_stash(asock_socket *sock) {
  asock__udp_socket *u = asock__udp(sock);
  while (u->stash_count > 0) {
    void *slice = u->stash[u->stash_first].base;
    u->stash_first = (u->stash_first + 1) % ASOCK__UDP_BATCH;
    u->stash_count--;
    give_charged(sock, slice);
  }
}

void asock__udp_recv_ready(asock_socket *sock) {
  int i;

  for (i = 0; i < ASOCK__UDP_PER_EVENT; i++) {
    asock_op *op = sock->recv_head;
    size_t bytes = 0;
    int r;

    if (op == NULL ||
        (sock->flags & (ASOCK__SF_READING | ASOCK__SF_HANDLE_GONE)) !=
            ASOCK__SF_READING)
      break;
    if (asock__udp(sock)->stash_count > 0) {
      bytes = from_stash(sock, op);
      asock__op_done(op, 0, bytes);
      continue;
    }
    r = read_into(sock, op, &bytes);
    if (r == 1) {
      asock__op_done(op, 0, bytes);
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
  return 0;
}

int asock__recvfrom_start(asock_socket *sock, asock_op *op) {
  /* Try at once, unless an earlier receive waits (it must complete first)
   * or the socket was found drained while it is watched. */
  if (sock->recv_head == NULL) {
    size_t bytes = 0;
    int r = 1;

    if (asock__udp(sock)->stash_count > 0) {
      bytes = from_stash(sock, op);
    } else if ((sock->flags & (ASOCK__SF_READING | ASOCK__SF_DRAINED)) !=
               (ASOCK__SF_READING | ASOCK__SF_DRAINED)) {
      r = read_into(sock, op, &bytes);
    } else {
      r = ASOCK_EAGAIN;
    }
    if (r == 1) {
      op->seq = sock->next_seq++;
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
      op->seq = sock->next_seq++;
      asock__op_finish_sync(op, r, 0);
      return 0;
    }
  }

  /* Wait. An on-demand receive gives its slice back meanwhile, so that an
   * idle socket holds none. */
  if (op->flags & ASOCK__OPF_ON_DEMAND)
    asock__op_park_slice(sock, op);
  op->seq = sock->next_seq++;
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
