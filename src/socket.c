/* The socket every kind shares, TCP and UDP: creation, listening, queues,
 * closing, cancels and timeouts, and the reference count that frees a
 * socket once nothing needs it. */
#include <string.h>

#include "internal.h"

#define ASOCK__DEFAULT_SEND_LOW ((uint32_t)16 * 1024)
#define ASOCK__DEFAULT_SEND_HIGH ((uint32_t)64 * 1024)

/* Makes a socket with its handle initialised: two references, one for the
 * application and one for the handle. */
int asock__socket_new(asock_loop *loop, size_t size, uint32_t flags,
                      asock_socket **sock_out) {
  asock_socket *sock;
  int err;

  *sock_out = NULL;
  sock = asock__calloc(1, size);
  if (sock == NULL)
    return ASOCK_ENOMEM;
  sock->loop = loop;
  sock->flags = flags;
  err = asock__io_init(sock);
  if (err != 0) {
    asock__free(sock);
    return err;
  }
  /* 0 is what asock_op_seq() gives an op never posted. */
  sock->recv_seq = 1;
  sock->send_seq = 1;
  sock->send_low = ASOCK__DEFAULT_SEND_LOW;
  sock->send_high = ASOCK__DEFAULT_SEND_HIGH;
  asock__store_u64(&sock->refs, 2);
  sock->next = loop->sockets;
  if (loop->sockets != NULL)
    loop->sockets->prev = sock;
  loop->sockets = sock;
  *sock_out = sock;
  return 0;
}

int asock__socket_create(asock_socket **sock_out, asock_loop *loop, size_t size,
                         uint32_t flags) {
  if (sock_out == NULL)
    return ASOCK_EINVAL;
  *sock_out = NULL;
  if (loop == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(loop))
    return ASOCK_ETHREAD;
  if (loop->closing)
    return ASOCK_ECLOSED;
  if (size == 0)
    size = asock__io_socket_size(loop);
  return asock__socket_new(loop, size, flags, sock_out);
}

int asock_tcp_create(asock_socket **sock_out, asock_loop *loop) {
  return asock__socket_create(sock_out, loop, 0, 0);
}

void asock__socket_free(asock_socket *sock) {
  asock__free(sock->opts);
  asock__free(sock);
}

static void unlink_socket(asock_socket *sock) {
  asock_loop *loop = sock->loop;
  if (sock->prev != NULL)
    sock->prev->next = sock->next;
  else
    loop->sockets = sock->next;
  if (sock->next != NULL)
    sock->next->prev = sock->prev;
  sock->next = sock->prev = NULL;
}

/* The handle is closed: the socket leaves the loop's list, and a pending
 * disconnect completes. The memory stays while references remain. */
void asock__socket_closed(asock_socket *sock) {
  asock_op *op = sock->disconnect;

  if (sock->flags & ASOCK__SF_REINIT) {
    asock__connect_reinit(sock);
    return;
  }
  asock__socket_set_handle(sock, ASOCK__HANDLE_GONE);
  /* A socket asock closed by itself (a disconnect, a timeout) stays on the
   * loop's list until the application closes it too, so that closing the
   * loop can release it. */
  if (sock->flags & ASOCK__SF_CLOSED)
    unlink_socket(sock);

  if (op != NULL) {
    sock->disconnect = NULL;
    asock__op_done(op, op->forced_status, 0);
  }
  asock__socket_unref(sock);
}

/* What every option and address function checks first: options apply to
 * an OS socket, which exists once the socket listens or is connected (or,
 * for UDP, is bound). */
int asock__socket_check_os(const asock_socket *sock) {
  if (sock == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & ASOCK__SF_HANDLE)
    return ASOCK_ECLOSED;
  if (asock__socket_stage(sock) < ASOCK__STAGE_CONNECTED &&
      (sock->flags & ASOCK__SF_BOUND) == 0)
    return ASOCK_ENOTCONN;
  return 0;
}

int asock__send_state_error(uint32_t flags) {
  if (flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))
    return ASOCK_ECLOSED;
  if (flags & (ASOCK__STAGE_LISTENING | ASOCK__SF_UDP))
    return ASOCK_EKIND;
  if ((flags & ASOCK__SF_STAGE) != ASOCK__STAGE_CONNECTED)
    return ASOCK_ENOTCONN;
  return (flags & ASOCK__SF_SHUTDOWN) ? ASOCK_ESHUTDOWN : 0;
}

int asock__recv_state_error(uint32_t flags) {
  int err = asock__send_state_error(flags & ~ASOCK__SF_SHUTDOWN);
  if (err != 0)
    return err;
  /* Nothing can wait behind a receive that never completes for good. */
  return (flags & ASOCK__SF_MULTISHOT) ? ASOCK_EBUSY : 0;
}

/* Cancels what waits in asock's own queues; what libuv holds is cancelled by
 * libuv when the handle closes, and completes through libuv's callback. */
void asock__socket_shut(asock_socket *sock, int abortive) {
  asock_loop *loop = sock->loop;
  asock_op *op;

  while ((op = sock->recv_head) != NULL) {
    /* An accept-receive waiting here took this socket: it goes with it. */
    if (op->listener != NULL)
      op->accepted = NULL;
    asock__op_defer(loop, op, ASOCK_ECANCELED);
  }
  /* A send of packets gives up its file read: it ends with the others. */
  if (sock->flags & ASOCK__SF_FILE_READ)
    asock__packets_abandon(sock);
  /* Queued sends behind one libuv is writing wait for that write's
   * cancellation, so that they complete after it, in order. */
  if ((sock->flags & ASOCK__SF_WRITING) == 0)
    asock__send_fail_all(sock, ASOCK_ECANCELED);
  if (sock->disconnect != NULL && (sock->flags & ASOCK__SF_CLOSED) &&
      sock->disconnect->forced_status == 0)
    sock->disconnect->forced_status = ASOCK_ECANCELED;
  /* The write libuv holds completes with whatever the OS reports once the
   * handle closes: ECANCELED from libuv on Unix, but on Windows the
   * overlapped send's own result, ECONNRESET when the peer's reset came
   * first. A close cancels it whatever the OS says. */
  if ((sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_WRITING)) ==
          (ASOCK__SF_CLOSED | ASOCK__SF_WRITING) &&
      sock->send_head != NULL && sock->send_head->forced_status == 0)
    sock->send_head->forced_status = ASOCK_ECANCELED;
  asock__connect_cancel(sock);
  if (sock->flags & ASOCK__SF_UDP)
    asock__udp_drop_kept(sock);

  if (asock__socket_handle(sock) != ASOCK__HANDLE_OPEN)
    return;
  asock__socket_set_handle(sock, ASOCK__HANDLE_CLOSING);
  sock->flags &= ~ASOCK__SF_READING;
  asock__io_close(sock, abortive && asock__socket_stage(sock) ==
                                        ASOCK__STAGE_CONNECTED);
}

/* A graceful close with sends queued on a socket that lingers: its
 * receives end, and it closes once the sends are out
 * (asock__send_drained()) or, when its linger time is up, resets.
 * Returns 0, or -1 when it cannot linger and is to close now. */
static int linger_close(asock_socket *sock) {
  asock_op *op;

  if (asock__loop_linger(sock->loop, sock) != 0)
    return -1;
  while ((op = sock->recv_head) != NULL)
    asock__op_defer(sock->loop, op, ASOCK_ECANCELED);
  sock->flags |= ASOCK__SF_SHUTDOWN;
  return 0;
}

int asock_socket_close(asock_socket *sock, unsigned int flags) {
  int abortive;

  if (sock == NULL || (flags & ~ASOCK_CLOSE_ABORT) != 0)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & ASOCK__SF_CLOSED)
    return ASOCK_ECLOSED;
  sock->flags |= ASOCK__SF_CLOSED;
  if (asock__socket_handle(sock) == ASOCK__HANDLE_GONE)
    unlink_socket(sock);
  abortive = (flags & ASOCK_CLOSE_ABORT) != 0;
  if (!abortive && (sock->flags & ASOCK__SF_LINGER)) {
    if (sock->linger_s == 0)
      abortive = 1;
    else if (sock->send_head != NULL &&
             (sock->flags & (ASOCK__SF_STAGE | ASOCK__SF_HANDLE)) ==
                 ASOCK__STAGE_CONNECTED &&
             linger_close(sock) == 0) {
      asock__socket_unref(sock);
      return 0;
    }
  }
  asock__socket_shut(sock, abortive);
  asock__socket_unref(sock);
  return 0;
}

int asock_socket_set_linger(asock_socket *sock, int enable,
                            unsigned int timeout_s) {
  if (sock == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  if (sock->flags & ASOCK__SF_UDP)
    return ASOCK_EKIND;
  if (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))
    return ASOCK_ECLOSED;
  if (enable)
    sock->flags |= ASOCK__SF_LINGER;
  else
    sock->flags &= ~ASOCK__SF_LINGER;
  sock->linger_s = timeout_s;
  return 0;
}

int asock_cancel(asock_op *op) {
  if (op == NULL)
    return ASOCK_EINVAL;
  if (!asock_op_is_pending(op))
    return ASOCK_ENOTPENDING;
  if (!asock__loop_on_thread(op->socket->loop))
    return asock__cancel_from_thread(op);
  /* An op another thread handed over may not be started yet: start it, so
   * that there is something to cancel. */
  asock__loop_run_posted(op->socket->loop);
  if (op->where == ASOCK__Q_DEFERRED)
    return 0; /* already completing */
  return asock__socket_cancel(op->socket, op);
}

/* A timeout or a cancel of an op the socket cannot survive losing: the
 * connection is reset, and the op completes with `status` once libuv hands
 * its request back. */
static void abort_for(asock_socket *sock, asock_op *op, int status) {
  if (op->forced_status == 0)
    op->forced_status = status;
  asock__socket_shut(sock, 1);
}

/* Ends a pending op early with `status`: from the queue if it only waits
 * there, else by giving up the connection. `direct` says whether the
 * callback may run now (inside a loop callback) or must be deferred. */
static void end_early(asock_socket *sock, asock_op *op, int status,
                      int direct) {
  asock_loop *loop = sock->loop;

  switch (op->kind) {
  case ASOCK_OP_RECEIVE:
  case ASOCK_OP_RECEIVEFROM:
  case ASOCK_OP_RECEIVEMESSAGEFROM:
  case ASOCK_OP_ACCEPT:
    if (op->where != ASOCK__Q_RECV)
      return;
    break;
  case ASOCK_OP_SENDTO:
    /* A datagram leaves whole or not at all: one still queued can go. */
    if (op->where != ASOCK__Q_SEND)
      return;
    asock__send_unqueue(sock, op);
    break;
  case ASOCK_OP_SEND:
  case ASOCK_OP_SENDPACKETS:
    if (op->where != ASOCK__Q_SEND)
      return;
    /* Bytes of it on the wire, or in a write libuv holds: the stream cannot
     * go on without the rest. */
    if (op->sent > 0 || (op->flags & ASOCK__OPF_IN_WRITE)) {
      abort_for(sock, op, status);
      return;
    }
    if (op->kind == ASOCK_OP_SENDPACKETS && op == sock->send_head) {
      /* Nothing of it sent, but its file read or its wait for a slice
       * drives the queue: it ends from the queue's flush, before the sends
       * behind it go on. */
      if (op->forced_status == 0)
        op->forced_status = status;
      if (sock->flags & ASOCK__SF_FILE_READ)
        asock__packets_abandon(sock);
      asock__loop_kick(loop, sock);
      return;
    }
    asock__send_unqueue(sock, op);
    break;
  case ASOCK_OP_CONNECT:
    if (op->forced_status == 0)
      op->forced_status = status;
    if (asock__socket_stage(sock) == ASOCK__STAGE_RESOLVING) {
      asock__connect_cancel(sock);
      return;
    }
    /* libuv cannot cancel a connect except by closing the handle. */
    asock__socket_shut(sock, 0);
    return;
  case ASOCK_OP_SHUTDOWN:
    if (op->where == ASOCK__Q_DISCONNECT) {
      /* Still waiting for the sends before it: taken back, the socket may
       * send again. */
      sock->disconnect = NULL;
      sock->flags &= ~ASOCK__SF_SHUTDOWN;
      op->where = ASOCK__Q_NONE;
      break;
    }
    /* The FIN is on its way: it cannot be taken back. */
    abort_for(sock, op, status);
    return;
  case ASOCK_OP_DISCONNECT:
    abort_for(sock, op, status);
    return;
  default:
    return;
  }
  if (direct) {
    asock__op_done(op, status, asock__op_sent(op));
  } else {
    /* A multishot receive cancelled from its own delivery callback keeps
     * the delivery's results until the callback returns. */
    if ((op->flags & ASOCK__OPF_DELIVERING) == 0)
      op->bytes = asock__op_sent(op);
    asock__op_defer(loop, op, status);
  }
}

int asock__socket_cancel(asock_socket *sock, asock_op *op) {
  end_early(sock, op, ASOCK_ECANCELED, 0);
  return 0;
}

void asock__op_expired(asock_op *op) {
  end_early(op->socket, op, ASOCK_ETIMEDOUT, 1);
}

int asock_socket_set_send_limits(asock_socket *sock, size_t low, size_t high,
                                 size_t cap) {
  /* Kept in 32 bits: a socket holds them as small as its other limits. */
  if (sock == NULL || low > high || (cap != 0 && cap < high) ||
      (uint64_t)high > UINT32_MAX || (uint64_t)cap > UINT32_MAX)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(sock->loop))
    return ASOCK_ETHREAD;
  sock->send_low = (uint32_t)low;
  sock->send_high = (uint32_t)high;
  sock->send_cap = (uint32_t)cap;
  asock__send_check_marks(sock);
  return 0;
}

int asock_socket_set_watermark_cb(asock_socket *sock, asock_watermark_cb cb) {
  if (sock == NULL)
    return ASOCK_EINVAL;
  sock->watermark_cb = cb;
  return 0;
}

size_t asock_socket_send_queued(const asock_socket *sock) {
  return sock == NULL ? 0 : sock->send_queued;
}

int asock_socket_set_user_data(asock_socket *sock, void *user_data) {
  if (sock == NULL)
    return ASOCK_EINVAL;
  sock->user_data = user_data;
  return 0;
}

void *asock_socket_user_data(const asock_socket *sock) {
  return sock == NULL ? NULL : sock->user_data;
}

asock_loop *asock_socket_loop(const asock_socket *sock) {
  return sock == NULL ? NULL : sock->loop;
}

size_t asock_socket_slices_held(const asock_socket *sock) {
  return sock == NULL ? 0 : asock__socket_slices(sock);
}
