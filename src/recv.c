/* Receiving: synchronous first when data may be waiting, else queued, with
 * libuv's reading kept armed while receives wait. A receive without a buffer
 * of its own takes a pool slice only once data is there; when the pool (or
 * the socket's quota) has none, the socket stops reading until one is free.
 * A multishot receive stays at the head of the queue and is delivered
 * every arrival (asock__op_deliver()) until something ends it.
 */
#include "internal.h"

static void start_reading_now(asock_socket *sock) {
  int err = asock__io_read_start(sock);
  if (err == 0) {
    sock->flags |= ASOCK__SF_READING;
    return;
  }
  /* Reading cannot start: every waiting receive hears why, later. */
  sock->read_error = err;
  while (sock->recv_head != NULL)
    asock__op_defer(sock->loop, sock->recv_head, sock->read_error);
}

/* Inline: every receive that waits asks, and reading is usually on. */
static ASOCK__ALWAYS_INLINE void start_reading(asock_socket *sock) {
  if ((sock->flags &
       (ASOCK__SF_READING | ASOCK__SF_WAIT_SLICE | ASOCK__SF_HANDLE)) == 0)
    start_reading_now(sock);
}

static void stop_reading(asock_socket *sock) {
  if (sock->flags & ASOCK__SF_READING) {
    asock__io_read_stop(sock);
    sock->flags &= ~ASOCK__SF_READING;
  }
}

static ASOCK__ALWAYS_INLINE void recv_buffer(asock_socket *sock,
                                             uv_buf_t *buf) {
  asock_op *op = sock->recv_head;
  size_t len;

  buf->base = NULL;
  buf->len = 0;
  if (op == NULL)
    return; /* nobody wants the data: reading stops */
  /* A waiting receive holds no slice of its own taking: one without a
   * buffer takes one now. */
  if (op->mode == ASOCK_BUFFER_NONE && asock__op_take_slice(sock, op) != 0) {
    sock->flags |= ASOCK__SF_WAIT_SLICE;
    return;
  }
  len = op->count < 0x7fffffffu ? op->count : 0x7fffffffu;
  buf->base = (char *)op->mem + op->offset;
  buf->len = (unsigned int)len;
}

void asock__recv_unbuffered(asock_socket *sock) {
  asock_loop *loop = sock->loop;
  asock_op *op = sock->recv_head;
  /* No receive waits, or no slice is free. */
  int no_slice = (sock->flags & ASOCK__SF_WAIT_SLICE) != 0;

  sock->flags &= ~ASOCK__SF_WAIT_SLICE;
  stop_reading(sock);
  if (!no_slice || op == NULL)
    return;
  if (loop->pool->flags & ASOCK_POOL_FAIL_FAST) {
    asock__op_done(op, ASOCK_ENOBUFS, 0);
    if (sock->recv_head != NULL)
      start_reading(sock);
    return;
  }
  asock__loop_wait_slice(loop, sock);
}

/* The end of the stream, or an error: it is final for every receive. The
 * head receive gives back the slice its read was to fill; the others wait
 * without one. A callback that closes the socket cancels the rest with it.
 * Reading stops once the receives have heard: a callback that closes the
 * socket, as most do, has stopped it with the handle then, and libuv is
 * asked once instead of twice (each costs it a pass over the events of
 * its loop iteration). Nothing reads meanwhile: the sticky read_error
 * completes every receive started from a callback at once. */
ASOCK__NOINLINE static void recv_ended(asock_socket *sock, long nread) {
  asock_op *op = sock->recv_head;

  sock->read_error = (int)nread;
  if (op != NULL && (op->flags & ASOCK__OPF_ON_DEMAND))
    asock__op_park_slice(sock, op);
  /* An accept-receive's connection that sent nothing is never reported:
   * it is closed (and its other receives, there are none, with it). */
  if (op != NULL && op->listener != NULL) {
    stop_reading(sock);
    asock__accept_no_data(op);
    return;
  }
  while ((op = sock->recv_head) != NULL &&
         (sock->flags & ASOCK__SF_HANDLE) == 0)
    asock__op_done(op, (int)nread, 0);
  stop_reading(sock);
}

static ASOCK__ALWAYS_INLINE void recv_result(asock_socket *sock, long nread,
                                             const uv_buf_t *buf) {
  asock_op *op = sock->recv_head;

  if (nread == 0) {
    /* EAGAIN: the receive waits on without the slice recv_buffer() gave
     * it, so that an idle connection holds none. */
    if (op != NULL && (op->flags & ASOCK__OPF_ON_DEMAND))
      asock__op_park_slice(sock, op);
    sock->flags |= ASOCK__SF_DRAINED;
    return;
  }
  if (nread > 0) {
    sock->flags = (sock->flags & ~ASOCK__SF_DRAINED) |
                  ((size_t)nread < buf->len ? ASOCK__SF_DRAINED : 0);
    if (op->flags & ASOCK__OPF_ON_DEMAND) {
      op->offset = 0;
      op->count = (size_t)nread;
    }
    if (op->flags & (ASOCK__OPF_MULTISHOT | ASOCK__OPF_ACCEPT_RECV)) {
      if (op->flags & ASOCK__OPF_MULTISHOT)
        (void)asock__op_deliver(sock, op, (size_t)nread);
      else
        asock__op_done(op, 0, (size_t)nread);
      return;
    }
    asock__recv_head_done(sock, op, (size_t)nread);
    return;
  }

  recv_ended(sock, nread);
}

/* For platforms whose libuv reads (Windows). */
void asock__recv_buffer(asock_socket *sock, uv_buf_t *buf) {
  recv_buffer(sock, buf);
}

void asock__recv_result(asock_socket *sock, long nread, const uv_buf_t *buf) {
  recv_result(sock, nread, buf);
}

/* Reads one readiness report may do on one socket before others get their
 * turn; a read that does not fill its buffer ends the turn sooner. */
#define ASOCK__READS_PER_EVENT 16

/* One read of a readable socket whose head receive is multishot and has no
 * buffer of its own: into a slice from the loop's cache, delivered, and
 * given back unless the callback took it. The slice is not charged to the
 * socket while the delivery lasts (asock_op_detach_slice() charges it if the
 * application takes it), so the quota is checked against the slices the
 * application took. This is asock__op_deliver() for that slice, which the
 * callback can only take or leave, written out for the path of every message of
 * a stream: what it needs after the callback is read again from the op and the
 * socket, so that little lives across the call. Returns 1 when the read filled
 * the slice and the receive goes on: more may be waiting. */
static ASOCK__ALWAYS_INLINE int multishot_read(asock_socket *sock,
                                               asock_op *op) {
  asock_loop *loop = sock->loop;
  asock_op_cb cb;
  unsigned int flags;
  void *slice;
  long n;

  if (ASOCK__UNLIKELY(asock__socket_slices(sock) >= loop->slice_quota) ||
      ASOCK__UNLIKELY(asock__loop_take_slice(loop, &slice) != 0))
    goto no_slice;
  n = asock__try_recv(sock, slice, loop->read_len);
  if (ASOCK__UNLIKELY(n <= 0)) {
    asock__loop_give_slice(loop, slice);
    if (n != ASOCK_EAGAIN)
      recv_ended(sock, n);
    return 0;
  }
  op->mode = ASOCK_BUFFER_SLICE;
  op->mem = (unsigned char *)slice;
  op->mem_len = loop->slice_size;
  op->offset = 0;
  op->count = (size_t)n;
  op->seq = sock->recv_seq++;
  op->status = 0;
  op->bytes = (size_t)n;
  op->flags |= ASOCK__OPF_ON_DEMAND | ASOCK__OPF_DELIVERING;
  /* The timeout of a multishot receive is an idle timeout: it counts from
   * the last arrival. */
  if (ASOCK__UNLIKELY(op->wslot != 0))
    asock__loop_rewatch(loop, op);
  cb = op->cb;
  loop->callbacks++;
  if (ASOCK__LIKELY(cb != NULL))
    cb(op);
  loop = sock->loop;
  loop->callbacks--;
  flags = op->flags & ~(unsigned int)ASOCK__OPF_DELIVERING;
  if (ASOCK__LIKELY(flags & ASOCK__OPF_ON_DEMAND)) {
    /* Not taken: back to the loop. Only what says "no buffer"; the rest is
     * written again by the next delivery, or cleared by the final
     * completion. */
    slice = op->mem;
    op->mode = ASOCK_BUFFER_NONE;
    op->mem = NULL;
    flags &= ~(unsigned int)ASOCK__OPF_ON_DEMAND;
    asock__loop_give_slice(loop, slice);
  }
  op->flags = flags;
  if (ASOCK__UNLIKELY(flags & ASOCK__OPF_ENDED)) {
    asock__op_deliver_ended(op);
    return 0;
  }
  /* A short read found the socket drained. */
  return op->bytes == loop->read_len && (sock->flags & ASOCK__SF_HANDLE) == 0;

no_slice:
  sock->flags |= ASOCK__SF_WAIT_SLICE;
  asock__recv_unbuffered(sock);
  return 0;
}

/* The reads after a first one that filled its slice, up to
 * ASOCK__READS_PER_EVENT in all. Out of line: a message of an echo, shorter
 * than a slice, never comes here. */
ASOCK__NOINLINE static void multishot_more(asock_socket *sock, asock_op *op) {
  int i;
  for (i = 1; i < ASOCK__READS_PER_EVENT; i++)
    if (!multishot_read(sock, op))
      return;
}

/* asock__recv_ready() for every head receive but a buffer-less multishot
 * one. */
ASOCK__NOINLINE static void recv_ready_each(asock_socket *sock) {
  int i;

  for (i = 0; i < ASOCK__READS_PER_EVENT; i++) {
    uv_buf_t buf;
    long n;

    if ((sock->flags & (ASOCK__SF_READING | ASOCK__SF_HANDLE)) !=
        ASOCK__SF_READING)
      return;
    recv_buffer(sock, &buf);
    if (buf.base == NULL) {
      asock__recv_unbuffered(sock);
      return;
    }
    n = asock__try_recv(sock, buf.base, buf.len);
    if (n == ASOCK_EAGAIN)
      n = 0;
    recv_result(sock, n, &buf);
    if (n <= 0 || (size_t)n < buf.len)
      return;
  }
}

void asock__recv_ready_multishot(asock_socket *sock) {
  /* A multishot receive is queued, so the queue has a head; one-shot
   * receives queued before it may still be ahead. */
  asock_op *op = sock->recv_head;

  if ((op->flags & ASOCK__OPF_MULTISHOT) && op->mode == ASOCK_BUFFER_NONE) {
    if (multishot_read(sock, op))
      multishot_more(sock, op);
  } else {
    recv_ready_each(sock);
  }
}

void asock__recv_ready(asock_socket *sock) {
  if ((sock->flags & ASOCK__MULTISHOT_STATE) == ASOCK__MULTISHOT_READING)
    asock__recv_ready_multishot(sock);
  else
    recv_ready_each(sock);
}

void asock__recv_retry(asock_socket *sock) {
  if (sock->flags & ASOCK__SF_UDP) {
    asock__udp_recv_retry(sock);
    return;
  }
  if (sock->recv_head != NULL &&
      (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE)) == 0)
    start_reading(sock);
}

static int recv_check_slow(asock_socket *sock, asock_op *op) {
  int err = asock__socket_check_op(sock, op);
  if (err != 0)
    return err;
  if ((sock->flags & ASOCK__RECV_STATE) != ASOCK__STAGE_CONNECTED)
    return asock__recv_state_error(sock->flags);
  if (op->nbufs != 0)
    return ASOCK_EKIND;
  if (!asock__op_wants_slice(op) && op->count == 0)
    return ASOCK_EINVAL;
  return 0;
}

/* The usual case in one test of the flags; anything else is sorted out by
 * recv_check_slow(). */
static ASOCK__ALWAYS_INLINE int recv_check(asock_socket *sock, asock_op *op) {
  if (sock == NULL || op == NULL ||
      (sock->flags & ASOCK__RECV_STATE) != ASOCK__STAGE_CONNECTED ||
      op->pool != sock->loop->pool || op->nbufs != 0 ||
      (!asock__op_wants_slice(op) && op->count == 0))
    return recv_check_slow(sock, op);
  return 0;
}

/* The synchronous attempt of recv_start(): 0 when the op completed (its
 * status says how), ASOCK_ENOBUFS to refuse the start (fail-fast pool), or
 * ASOCK_PENDING when it must wait. Out of line: in steady traffic libuv is
 * watching a drained socket and the receive goes straight to waiting. */
static int recv_try_now(asock_socket *sock, asock_op *op, int on_demand) {
  long got;

  if (on_demand) {
    if (op->mode == ASOCK_BUFFER_SLICE) {
      op->offset = 0;
      op->count = op->mem_len;
    } else if (asock__op_take_slice(sock, op) != 0) {
      if (sock->loop->pool->flags & ASOCK_POOL_FAIL_FAST)
        return ASOCK_ENOBUFS;
      return ASOCK_PENDING;
    }
  }
  got = asock__try_recv(sock, (char *)op->mem + op->offset, op->count);
  if (got > 0) {
    if (on_demand)
      op->count = (size_t)got;
    op->seq = sock->recv_seq++;
    asock__op_finish_sync(op, 0, (size_t)got);
    return 0;
  }
  if (got != ASOCK_EAGAIN) {
    sock->read_error = (int)got;
    if (on_demand)
      asock__op_park_slice(sock, op);
    op->seq = sock->recv_seq++;
    asock__op_finish_sync(op, (int)got, 0);
    return 0;
  }
  /* Nothing there: the receive waits, and recv_start() gives its slice
   * back. */
  sock->flags |= ASOCK__SF_DRAINED;
  return ASOCK_PENDING;
}

int asock__recv_first(asock_socket *sock, asock_op *op, size_t *bytes) {
  int on_demand = asock__op_wants_slice(op);
  long got;

  if (on_demand) {
    if (op->mode == ASOCK_BUFFER_SLICE) {
      op->offset = 0;
      op->count = op->mem_len;
    } else if (asock__op_take_slice(sock, op) != 0) {
      return 0; /* the read that data brings takes one, or waits for one */
    }
  }
  got = asock__try_recv(sock, (char *)op->mem + op->offset, op->count);
  if (got > 0) {
    if (on_demand)
      op->count = (size_t)got;
    *bytes = (size_t)got;
    return 1;
  }
  if (on_demand)
    asock__op_park_slice(sock, op);
  if (got == ASOCK_EAGAIN) {
    sock->flags |= ASOCK__SF_DRAINED;
    return 0;
  }
  return (int)got;
}

void asock__recv_wait(asock_socket *sock, asock_op *op) {
  asock__socket_enqueue(&sock->recv_head, &sock->recv_tail, op, ASOCK__Q_RECV);
  start_reading(sock);
}

/* A multishot receive: it waits from the start, whatever is already there,
 * so that no delivery and no final completion runs inside the starting
 * call. Out of line: a connection starts it once. */
ASOCK__NOINLINE static int multishot_start(asock_socket *sock, asock_op *op) {
  if (op->flags & ASOCK__OPF_ON_DEMAND)
    asock__op_park_slice(sock, op);
  if (sock->read_error != 0) {
    op->seq = sock->recv_seq++;
    asock__op_defer(sock->loop, op, sock->read_error);
    return ASOCK_PENDING;
  }
  sock->flags |= ASOCK__SF_MULTISHOT;
  asock__socket_enqueue(&sock->recv_head, &sock->recv_tail, op, ASOCK__Q_RECV);
  asock__loop_watch(sock->loop, op);
  start_reading(sock);
  return ASOCK_PENDING;
}

static ASOCK__ALWAYS_INLINE int recv_start(asock_socket *sock, asock_op *op) {
  int on_demand;

  if (op->flags & ASOCK__OPF_MULTISHOT)
    return multishot_start(sock, op);
  if (sock->read_error != 0) {
    op->seq = sock->recv_seq++;
    asock__op_finish_sync(op, sock->read_error, 0);
    return 0;
  }
  on_demand = asock__op_wants_slice(op);

  /* Try the socket at once, unless an earlier receive waits (it must
   * complete first) or libuv is watching a socket found drained (libuv
   * will say when data comes: a read now would find nothing). */
  if (sock->recv_head == NULL &&
      (sock->flags & (ASOCK__SF_READING | ASOCK__SF_DRAINED)) !=
          (ASOCK__SF_READING | ASOCK__SF_DRAINED)) {
    int r = recv_try_now(sock, op, on_demand);
    if (r != ASOCK_PENDING)
      return r;
  }

  /* Wait. An on-demand receive gives its slice back meanwhile, so that a
   * waiting connection holds none; the loop's cache hands the same warm
   * slice to the next taker. */
  if (on_demand && op->mode == ASOCK_BUFFER_SLICE)
    asock__op_park_slice(sock, op);
  op->seq = sock->recv_seq++;
  asock__socket_enqueue(&sock->recv_head, &sock->recv_tail, op, ASOCK__Q_RECV);
  asock__loop_watch(sock->loop, op);
  start_reading(sock);
  return ASOCK_PENDING;
}

/* The exported halves for asock__start(); asock_receive() inlines its own. */
int asock__recv_check(asock_socket *sock, asock_op *op) {
  return recv_check(sock, op);
}

int asock__recv_start(asock_socket *sock, asock_op *op) {
  return recv_start(sock, op);
}

int asock_receive(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_RECEIVE, recv_check, recv_start);
}
