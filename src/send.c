/* Sending: synchronous first, then one handed-over write at a time for what
 * the kernel did not take (on Unix a wait for writability, on Windows a
 * uv_write, on the io_uring ring a submitted send of every queued one), and
 * every send queued behind it gathered into one vectored write when the
 * socket drains. A ring socket's attempt is its submission: its try-calls
 * say ASOCK_EAGAIN at once. */
#include "internal.h"

/* libuv copies up to four buffers into a write request and allocates for
 * more; asock's writes stay within four, so that no send ever allocates. */
#define ASOCK__WRITE_BUFS 4
/* uv_buf_t lengths are 32-bit on some platforms: larger buffers are passed
 * in pieces of at most this size. */
#define ASOCK__IOV_PIECE ((size_t)1 << 30)

static unsigned int push_piece(uv_buf_t *iov, unsigned int n, unsigned int max,
                               char *base, size_t len, size_t *bytes) {
  while (len > 0 && n < max) {
    size_t piece = len < ASOCK__IOV_PIECE ? len : ASOCK__IOV_PIECE;
    iov[n].base = base;
    iov[n].len = (unsigned int)piece;
    n++;
    *bytes += piece;
    base += piece;
    len -= piece;
  }
  return n;
}

/* Appends the unsent part of op to iov[n..max): returns the new n. */
static unsigned int fill_iov(asock_op *op, uv_buf_t *iov, unsigned int n,
                             unsigned int max, size_t *bytes) {
  size_t skip = op->sent;
  size_t i;

  if (op->kind == ASOCK_OP_SENDPACKETS)
    return asock__packets_iov(op, iov, n, max, bytes);
  if (op->nbufs == 0)
    return push_piece(iov, n, max, (char *)op->mem + op->offset + skip,
                      op->count - skip, bytes);
  for (i = 0; i < op->nbufs && n < max; i++) {
    size_t len = op->bufs[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    n = push_piece(iov, n, max, (char *)op->bufs[i].base + skip, len - skip,
                   bytes);
    skip = 0;
  }
  return n;
}

void asock__send_check_marks(asock_socket *sock) {
  int above = (sock->flags & ASOCK__SF_ABOVE_HIGH) != 0;
  if (!above && sock->send_high > 0 && sock->send_queued >= sock->send_high) {
    sock->flags |= ASOCK__SF_ABOVE_HIGH;
    if (sock->watermark_cb != NULL)
      asock__loop_notify(sock->loop, sock);
  } else if (above && sock->send_queued <= sock->send_low) {
    sock->flags &= ~ASOCK__SF_ABOVE_HIGH;
    if (sock->watermark_cb != NULL)
      asock__loop_notify(sock->loop, sock);
  }
}

void asock__send_unqueue(asock_socket *sock, asock_op *op) {
  op->flags &= ~ASOCK__OPF_IN_WRITE;
  asock__socket_unqueue(sock, op);
  if (op->kind == ASOCK_OP_SENDPACKETS)
    asock__packets_end(op);
  sock->send_queued -= op->total - op->sent;
  asock__send_check_marks(sock);
}

void asock__send_fail_all(asock_socket *sock, int status) {
  asock_op *op;
  while ((op = sock->send_head) != NULL) {
    asock__send_unqueue(sock, op);
    op->bytes = op->sent;
    /* A send of packets reset for its own timeout or cancel says so. */
    asock__op_defer(sock->loop, op,
                    op->forced_status != 0 ? op->forced_status : status);
  }
}

/* The unsent rest of every queued send, up to a send of packets (which
 * is sent on its own, at the head), into iov: returns the count. */
static unsigned int gather(asock_socket *sock, uv_buf_t *iov, size_t *bytes) {
  asock_op *op;
  unsigned int n = 0;
  for (op = sock->send_head;
       op != NULL && n < ASOCK__IOV_MAX && op->kind != ASOCK_OP_SENDPACKETS;
       op = op->qnext)
    n = fill_iov(op, iov, n, ASOCK__IOV_MAX, bytes);
  return n;
}

/* Counts `bytes` the kernel took of the sends from op on, in queue
 * order. */
static void spread(asock_socket *sock, asock_op *op, size_t bytes) {
  for (; op != NULL && bytes > 0; op = op->qnext) {
    size_t take = op->total - op->sent;
    if (take > bytes)
      take = bytes;
    op->sent += take;
    sock->send_queued -= take;
    bytes -= take;
  }
}

/* Marks the head send op, whose write it is (a wait for room included),
 * and the sends after it that have bytes among the first `bytes` of the
 * queue's unsent ones. */
static void mark_written(asock_op *op, size_t bytes) {
  do {
    size_t rest = op->total - op->sent;
    op->flags |= ASOCK__OPF_IN_WRITE;
    bytes = rest < bytes ? bytes - rest : 0;
    op = op->qnext;
  } while (op != NULL && bytes > 0);
}

/* Hands iov, the unsent bytes from the head send on, to the platform, and
 * marks each send with bytes in it. */
static int hand_over(asock_socket *sock, const uv_buf_t *iov, unsigned int n,
                     size_t bytes) {
  asock_op *op = sock->send_head;
  int err = asock__io_write(sock, op, iov, n, bytes);
  if (err != 0)
    return err;
  mark_written(op, bytes);
  sock->flags |= ASOCK__SF_WRITING;
  return 0;
}

/* Hands the unsent part of the head send to the platform, which reports
 * when the socket is writable (readiness), or when the bytes are written:
 * the head's alone (Windows), or those of every send queued up to a send of
 * packets (the ring, ASOCK__IO_GATHERS), which the report spreads over them
 * in order. */
static int start_write(asock_socket *sock) {
  asock_op *op = sock->send_head;
  uv_buf_t head[ASOCK__WRITE_BUFS];
  size_t bytes = 0;
  unsigned int n;

  if (ASOCK__IO_GATHERS(sock) && op->kind != ASOCK_OP_SENDPACKETS) {
    n = gather(sock, sock->loop->iov, &bytes);
    return hand_over(sock, sock->loop->iov, n, bytes);
  }
  n = fill_iov(op, head, 0, ASOCK__WRITE_BUFS, &bytes);
  return hand_over(sock, head, n, bytes);
}

/* The socket's sending is over, for err (the first such error stays). */
static void set_send_error(asock_socket *sock, int err) {
  if (sock->send_error == 0) {
    sock->send_error = err;
    sock->flags |= ASOCK__SF_SEND_FAILED;
  }
}

/* The kernel failed the socket's sends with err: every queued send hears. */
static void send_failed(asock_socket *sock, int err) {
  set_send_error(sock, err);
  asock__send_fail_all(sock, err);
}

/* Moves the finished sends at the head of the queue to a done list. */
static void collect_done(asock_socket *sock, asock_op ***done_tail) {
  asock_op *op;
  while ((op = sock->send_head) != NULL && op->sent == op->total) {
    asock__socket_unqueue(sock, op);
    if (op->kind == ASOCK_OP_SENDPACKETS)
      asock__packets_end(op);
    op->qnext = NULL;
    **done_tail = op;
    *done_tail = &op->qnext;
  }
}

/* The head send of packets moves on: 0 when it is done or waits (for
 * writability, its file read or a slice), else the error that ended it,
 * which has it out of the queue and on the done list, its status in
 * op->forced_status. An error after some of its bytes went ends the
 * socket's sending (the peer has part of the list): returned as
 * ASOCK_ECANCELED for the sends behind it. */
static int packets_flush(asock_socket *sock, asock_op ***done_tail,
                         int *waits) {
  asock_op *op = sock->send_head;
  int r = op->forced_status;

  *waits = 1;
  if (r == 0) {
    r = asock__packets_step(sock, op);
    if (r == ASOCK__PK_DONE) {
      *waits = 0;
      return 0;
    }
    if (r == ASOCK__PK_WRITE)
      return start_write(sock);
    if (r == ASOCK__PK_READ) {
      r = asock__packets_read(sock, op);
      if (r == 0)
        return 0;
    }
  }
  *waits = 0;
  asock__send_unqueue(sock, op);
  op->forced_status = r;
  op->qnext = NULL;
  **done_tail = op;
  *done_tail = &op->qnext;
  return op->sent > 0 ? ASOCK_ECANCELED : 0;
}

/* After a write completed: complete every send that is done, try the rest
 * in one vectored write, and hand what remains to libuv. Runs inside libuv
 * callbacks, so completions are delivered directly, in order, once the
 * queue is consistent again. */
static void flush(asock_socket *sock) {
  asock_loop *loop = sock->loop;
  asock_op *done = NULL;
  asock_op **done_tail = &done;
  int err = 0;

  collect_done(sock, &done_tail);
  if (sock->flags & ASOCK__SF_HANDLE) {
    /* The socket closed while the write that just finished was out: what
     * waited behind it will not be sent. */
    asock__send_fail_all(sock, ASOCK_ECANCELED);
  }
  while (sock->send_head != NULL && (sock->flags & ASOCK__SF_HANDLE) == 0) {
    unsigned int n;
    size_t bytes = 0;
    long written;

    if (sock->send_head->kind == ASOCK_OP_SENDPACKETS) {
      int waits;
      err = packets_flush(sock, &done_tail, &waits);
      if (err != 0 || waits)
        break;
      collect_done(sock, &done_tail);
      continue;
    }
    n = gather(sock, loop->iov, &bytes);
    written = asock__io_try_write(sock, loop->iov, n);
    if (written == ASOCK_EAGAIN)
      written = 0;
    if (written < 0) {
      err = (int)written;
      break;
    }
    spread(sock, sock->send_head, (size_t)written);
    collect_done(sock, &done_tail);
    if ((size_t)written < bytes) {
      /* The kernel is full: libuv waits for room. A backend that gathers
       * (the ring, whose try-write takes nothing) is handed the list just
       * made. */
      if (written == 0 && ASOCK__IO_GATHERS(sock))
        err = hand_over(sock, loop->iov, n, bytes);
      else if (sock->send_head != NULL)
        err = start_write(sock);
      break;
    }
  }
  asock__send_check_marks(sock);
  if (err != 0)
    send_failed(sock, err);
  while (done != NULL) {
    asock_op *op = done;
    int status = op->forced_status;
    done = op->qnext;
    op->qnext = NULL;
    asock__op_done(op, status, status != 0 ? op->sent : op->total);
  }
  if (sock->send_head == NULL)
    asock__send_drained(sock);
}

void asock__send_resume(asock_socket *sock) {
  if (sock->send_head != NULL &&
      (sock->flags &
       (ASOCK__SF_WRITING | ASOCK__SF_FILE_READ | ASOCK__SF_HANDLE)) == 0)
    flush(sock);
}

void asock__packets_read_done(asock_socket *sock, asock_op *op, int status) {
  if (status != 0 && op->forced_status == 0)
    op->forced_status = status;
  flush(sock);
}

void asock__send_written(asock_op *op, int status) {
  asock_socket *sock = op->socket;
  asock_op *o;
  size_t left;
  int err;

  sock->flags &= ~ASOCK__SF_WRITING;
  for (o = op; o != NULL && (o->flags & ASOCK__OPF_IN_WRITE); o = o->qnext)
    o->flags &= ~ASOCK__OPF_IN_WRITE;
  if (status < 0 || op->forced_status != 0) {
    if (op->forced_status != 0)
      err = op->forced_status;
    else
      err = status;
    asock__send_unqueue(sock, op);
    /* The rest cannot follow a send that did not finish: they fail (later,
     * after this one) before its callback can post another. */
    send_failed(sock, err == ASOCK_ETIMEDOUT ? ASOCK_ECANCELED : err);
    asock__op_done(op, err, op->sent);
    asock__send_drained(sock);
    return;
  }
  left = op->write_bytes;
  op->write_bytes = 0;
  if (op->kind == ASOCK_OP_SENDPACKETS) {
    op->sent += left;
    sock->send_queued -= left;
    asock__packets_took(op);
  } else {
    spread(sock, op, left); /* a gathered write's, in queue order */
  }
  flush(sock);
}

void asock__io_writable(asock_socket *sock) {
  if (sock->send_head != NULL)
    asock__send_written(sock->send_head, 0);
}

void asock__io_write_cancelled(asock_socket *sock) {
  if ((sock->flags & ASOCK__SF_WRITING) && sock->send_head != NULL)
    asock__send_written(sock->send_head, ASOCK_ECANCELED);
}

static int send_check_slow(asock_socket *sock, asock_op *op) {
  int err = asock__socket_check_send(sock, op);
  if (err != 0)
    return err;
  if (op->nbufs == 0 && op->mode == ASOCK_BUFFER_NONE)
    return ASOCK_EINVAL;
  if (op->nbufs != 0) {
    err = asock__bufs_check(op->bufs, op->nbufs);
    if (err != 0)
      return err;
  }
  if (sock->send_cap != 0 && sock->send_queued > 0 &&
      sock->send_queued + asock__op_total(op) > sock->send_cap)
    return ASOCK_ENOBUFS;
  return 0;
}

/* The usual case, a connected socket still sending with nothing queued and
 * a window to send, in one test of the flags; anything else, a buffer list
 * included, is sorted out by send_check_slow(). */
static ASOCK__ALWAYS_INLINE int send_check(asock_socket *sock, asock_op *op) {
  if (sock == NULL || op == NULL ||
      (sock->flags & ASOCK__SEND_STATE) != ASOCK__STAGE_CONNECTED ||
      op->pool != sock->loop->pool || sock->send_queued != 0 ||
      op->nbufs != 0 || op->mode == ASOCK_BUFFER_NONE ||
      (op->flags & ASOCK__OPF_MULTISHOT))
    return send_check_slow(sock, op);
  return 0;
}

/* send_start() for everything but a window the kernel takes whole at once.
 * When send_start() tried the kernel already (`tried`), `written` is what
 * it wrote, or ASOCK_EAGAIN, or an error. Out of line: no message of an
 * echo comes here. */
ASOCK__NOINLINE static int send_start_rest(asock_socket *sock, asock_op *op,
                                           int tried, long written) {
  size_t total = asock__op_total(op);
  size_t bytes = 0;
  int err;

  op->seq = sock->send_seq++;
  op->total = total;
  op->sent = 0;
  op->write_bytes = 0;
  if (!tried) {
    if (sock->send_error != 0) {
      asock__op_finish_sync(op, sock->send_error, 0);
      return 0;
    }
    if (sock->send_head == NULL) {
      unsigned int n;
      if (total == 0) {
        asock__op_finish_sync(op, 0, 0);
        return 0;
      }
      n = fill_iov(op, sock->loop->iov, 0, ASOCK__IOV_MAX, &bytes);
      written = asock__io_try_write(sock, sock->loop->iov, n);
      tried = 1;
    }
  }
  if (tried) {
    if (written >= 0 && (size_t)written == total) {
      asock__op_finish_sync(op, 0, total);
      return 0;
    }
    if (written < 0 && written != ASOCK_EAGAIN) {
      set_send_error(sock, (int)written);
      asock__op_finish_sync(op, sock->send_error, 0);
      return 0;
    }
    if (written > 0)
      op->sent = (size_t)written;
  }

  asock__socket_enqueue(&sock->send_head, &sock->send_tail, op, ASOCK__Q_SEND);
  sock->send_queued += total - op->sent;
  if ((sock->flags & ASOCK__SF_WRITING) == 0 && sock->send_head == op) {
    err = start_write(sock);
    if (err != 0) {
      /* libuv refused the write: nothing is pending, so the op completes
       * now with the error, and the socket's sending is over. */
      asock__send_unqueue(sock, op);
      set_send_error(sock, err);
      asock__op_finish_sync(op, err, op->sent);
      return 0;
    }
  }
  asock__loop_watch(sock->loop, op);
  asock__send_check_marks(sock);
  return ASOCK_PENDING;
}

/* Synchronous first: the usual send is one window, with nothing queued
 * before it, that the kernel takes whole. Everything else is
 * send_start_rest()'s. */
static ASOCK__ALWAYS_INLINE int send_start(asock_socket *sock, asock_op *op) {
  size_t count = op->count;
  long written;
  uv_buf_t one;

  if (op->nbufs != 0 || sock->send_head != NULL || sock->send_error != 0 ||
      count - 1 >= ASOCK__IOV_PIECE)
    return send_start_rest(sock, op, 0, 0);
  one.base = (char *)op->mem + op->offset;
  one.len = (unsigned int)count;
  written = asock__io_try_write(sock, &one, 1);
  if ((size_t)written != count)
    return send_start_rest(sock, op, 1, written);
  op->seq = sock->send_seq++;
  asock__op_finish_sync(op, 0, count);
  return 0;
}

/* The exported halves for asock__start(); asock_send() inlines its own. */
int asock__send_check(asock_socket *sock, asock_op *op) {
  return send_check(sock, op);
}

int asock__send_start(asock_socket *sock, asock_op *op) {
  return send_start(sock, op);
}

/* The fast path found the kernel took less than the window, or nothing, or
 * failed: the op, moved to pending already, goes on as send_start() would
 * have it after its attempt. Out of line: no message of an echo comes
 * here. */
ASOCK__NOINLINE static int send_fast_rest(asock_socket *sock, asock_op *op,
                                          long written) {
  op->status = 0;
  op->bytes = 0;
  op->sync = 0;
  return send_start_rest(sock, op, 1, written);
}

/* asock_send() for everything but its usual case. Out of line, so that
 * the usual case saves only the registers it needs. */
ASOCK__NOINLINE static int send_general(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_SEND, send_check, send_start);
}

/* The usual send in one pass: on the loop's thread with nothing handed
 * over from others, one piece of 1 byte to ASOCK__IOV_PIECE (the window, or
 * a buffer list of one) on a connected socket with nothing queued and no
 * error, which the kernel takes whole. Each condition is what send_check()
 * and send_start() would find, tested once (a send error by its flag);
 * anything else, a pending op included, takes the general path, which
 * answers as it always has. An idle op without a buffer has an empty
 * window (asock__op_detach_slice() and asock__op_clear_window() see to
 * it), so the count's test also refuses it to the general path, which
 * says ASOCK_EINVAL. */
int asock_send(asock_socket *sock, asock_op *op) {
  asock_loop *loop;
  const char *base;
  size_t skip, count;
  long written;
  uint32_t idle = ASOCK__OP_IDLE;

  if (ASOCK__UNLIKELY(sock == NULL) || ASOCK__UNLIKELY(op == NULL))
    goto general;
  loop = sock->loop;
  if (!asock__loop_on_thread(loop) || asock__load_ptr(&loop->posted) != NULL)
    goto general;
  /* The offset is added once the count is known not to be 0: an op
   * without a buffer has no memory to add it to. */
  if (op->nbufs == 0) {
    base = (const char *)op->mem;
    skip = op->offset;
    count = op->count;
  } else if (op->nbufs == 1 && op->bufs[0].base != NULL) {
    base = (const char *)op->bufs[0].base;
    skip = 0;
    count = op->bufs[0].len;
  } else {
    goto general;
  }
  if ((sock->flags & (ASOCK__SEND_STATE | ASOCK__SF_SEND_FAILED)) !=
          ASOCK__STAGE_CONNECTED ||
      sock->send_head != NULL || op->pool != loop->pool ||
      (op->flags & ASOCK__OPF_MULTISHOT) != 0 || count - 1 >= ASOCK__IOV_PIECE)
    goto general;
  if (!asock__cas_u32(&op->state, &idle, ASOCK__OP_PENDING))
    return ASOCK_EBUSY;
  op->kind = ASOCK_OP_SEND;
  op->socket = sock;
  written = asock__io_try_send(sock, base + skip, count);
  if ((size_t)written != count)
    return send_fast_rest(sock, op, written);
  op->seq = sock->send_seq++;
  op->status = 0;
  op->bytes = count;
  op->sync = 1;
  /* Started here, not handed over by another thread (asock__op_finish_sync()
   * would ask): idle again at once. */
  asock__store_u32(&op->state, ASOCK__OP_IDLE);
  return 0;

general:
  return send_general(sock, op);
}

/* ---- sends of packets ---------------------------------------------------
 * Queued and completed like any send (src/packets.c has the pieces). */

int asock__packets_start(asock_socket *sock, asock_op *op) {
  int r = ASOCK__PK_WRITE;

  op->seq = sock->send_seq++;
  op->total = op->packets_total;
  op->sent = 0;
  op->write_bytes = 0;
  op->pk_index = 0;
  op->pk_start = 0;
  op->chunk = NULL;
  op->chunk_at = 0;
  op->chunk_len = 0;
  op->flags &= ~ASOCK__OPF_NO_SENDFILE;
  if (sock->send_error != 0) {
    asock__op_finish_sync(op, sock->send_error, 0);
    return 0;
  }
  if (sock->send_head == NULL) {
    /* Synchronous first, as for a send. */
    r = asock__packets_step(sock, op);
    if (r == ASOCK__PK_DONE) {
      asock__op_finish_sync(op, 0, op->total);
      return 0;
    }
    if (r < 0)
      goto failed;
  }
  asock__socket_enqueue(&sock->send_head, &sock->send_tail, op, ASOCK__Q_SEND);
  sock->send_queued += op->total - op->sent;
  if (sock->send_head == op) {
    r = r == ASOCK__PK_READ ? asock__packets_read(sock, op) : start_write(sock);
    if (r != 0) {
      asock__send_unqueue(sock, op);
      goto failed;
    }
  }
  asock__loop_watch(sock->loop, op);
  asock__send_check_marks(sock);
  return ASOCK_PENDING;

failed:
  /* Nothing sent, and the stream goes on without it; part of it sent, and
   * the socket's sending is over. */
  asock__packets_end(op);
  if (op->sent > 0)
    set_send_error(sock, ASOCK_ECANCELED);
  asock__op_finish_sync(op, r, op->sent);
  return 0;
}

int asock_send_packets(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_SENDPACKETS, asock__packets_check,
                           asock__packets_start);
}
