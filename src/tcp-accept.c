/* Accepting: accept ops on a listening socket, and accepts that also
 * receive the new connection's first bytes (asock_accept_receive()). Such
 * an op, once it took a connection that has sent nothing yet, waits in
 * the new socket's receive queue as that socket's receive, holding a
 * reference to the listener; it completes from there like any receive
 * (asock__socket_unqueue() gives it back its listener as it leaves), or,
 * when the connection ends before sending anything, closes it and goes
 * back to wait on the listener for the next one. */
#include "internal.h"

/* Takes one waiting connection into a new socket for `op`: 0,
 * ASOCK_EAGAIN when none waits, or an error. *taken says whether a
 * connection was taken off the listener (and lost, on error). */
static int accept_one(asock_socket *listener, asock_op *op, int *taken) {
  asock_socket *client;
  uintptr_t conn;
  int len = (int)sizeof(op->remote);
  int err;

  *taken = 0;
  err = asock__io_accept(listener, &conn);
  if (err != 0)
    return err;
  *taken = 1;
  if (op->flags & ASOCK__OPF_RAW_ACCEPT) {
    op->conn = conn;
    return 0;
  }
  err = asock__socket_new(listener->loop, asock__io_socket_size(listener->loop),
                          0, &client);
  if (err != 0) {
    asock__io_drop(conn);
    return err;
  }
  err = asock__io_adopt(listener, client, conn);
  if (err != 0) {
    asock_socket_close(client, 0);
    return err;
  }
  asock__socket_set_stage(client, ASOCK__STAGE_CONNECTED);
  op->accepted = client;
  if (asock__io_address(client, 1, (struct sockaddr *)&op->remote, &len) == 0)
    op->flags |= ASOCK__OPF_HAS_REMOTE;
  return 0;
}

/* What an accept-receive does with the connection it took, op out of every
 * queue: 0 when the first bytes were there (op->bytes says how many),
 * ASOCK_PENDING when it now waits for them in the new socket's receive
 * queue, ASOCK_EOF when the connection ended without sending anything (it
 * is closed, and the op is to wait for another). */
static int first_receive(asock_socket *listener, asock_op *op) {
  asock_socket *client = op->accepted;
  size_t bytes = 0;
  int r = asock__recv_first(client, op, &bytes);

  if (r == 1) {
    op->bytes = bytes;
    return 0;
  }
  if (r == 0) {
    asock__socket_ref(listener);
    op->listener = listener;
    op->socket = client;
    asock__recv_wait(client, op);
    return ASOCK_PENDING;
  }
  op->accepted = NULL;
  op->flags &= ~ASOCK__OPF_HAS_REMOTE;
  asock_socket_close(client, r == ASOCK_EOF ? 0 : ASOCK_CLOSE_ABORT);
  return ASOCK_EOF;
}

/* Puts an accept op in its listener's queue, watching for connections. */
static void wait_on(asock_socket *listener, asock_op *op) {
  asock__socket_enqueue(&listener->recv_head, &listener->recv_tail, op,
                        ASOCK__Q_RECV);
  if ((listener->flags & ASOCK__SF_PAUSED) == 0)
    asock__io_accept_wanted(listener, 1);
}

void asock__accept_no_data(asock_op *op) {
  asock_socket *client = op->socket;
  asock_socket *listener = op->listener;

  /* Out of the client's queue; the reference to the listener is kept
   * until the op is back in its queue or done. */
  op->listener = NULL;
  asock__socket_unqueue(client, op);
  op->socket = listener;
  op->accepted = NULL;
  op->flags &= ~ASOCK__OPF_HAS_REMOTE;
  asock_socket_close(client, 0);
  if (listener->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))
    asock__op_done(op, ASOCK_ECANCELED, 0);
  else
    wait_on(listener, op);
  asock__socket_unref(listener);
}

void asock__accept_leaves(asock_socket *client, asock_op *op) {
  asock_socket *listener = op->listener;
  (void)client;
  op->listener = NULL;
  op->socket = listener;
  op->flags &= ~ASOCK__OPF_ACCEPT_RECV;
  asock__socket_unref(listener);
}

/* Whether an accept failed for want of descriptors or memory: the
 * connection stays in the backlog, and trying again at once fails again. */
static int out_of_resources(int err) {
  return err == ASOCK_EMFILE || err == ASOCK_ENFILE || err == ASOCK_ENOBUFS ||
         err == ASOCK_ENOMEM;
}

/* Accepting failed: the first waiting accept hears of it, and the listener
 * keeps listening; one out of descriptors or memory pauses first. */
static void accept_failed(asock_socket *listener, asock_op *op, int err) {
  if (out_of_resources(err))
    asock__loop_pause_accepts(listener->loop, listener);
  if (op != NULL)
    asock__op_done(op, err, 0);
}

void asock__on_connection(asock_socket *listener, int status) {
  if (status < 0) {
    accept_failed(listener, listener->recv_head, status);
    return;
  }
  while (listener->recv_head != NULL &&
         (listener->flags & ASOCK__SF_HANDLE) == 0) {
    asock_op *op = listener->recv_head;
    int taken;
    int err = accept_one(listener, op, &taken);
    if (err == ASOCK_EAGAIN)
      return;
    if (err != 0 && !taken) {
      accept_failed(listener, op, err);
      return;
    }
    if (err == 0 && (op->flags & ASOCK__OPF_ACCEPT_RECV)) {
      int r;
      asock__socket_unqueue(listener, op);
      r = first_receive(listener, op);
      if (r == 0) {
        op->flags &= ~ASOCK__OPF_ACCEPT_RECV;
        asock__op_done(op, 0, op->bytes);
      } else if (r == ASOCK_EOF) {
        wait_on(listener, op); /* last, behind the others */
      }
      continue;
    }
    asock__op_done(op, err, 0);
    if (err != 0)
      return;
  }
  if ((listener->flags & ASOCK__SF_HANDLE) == 0)
    asock__io_accept_wanted(listener, 0);
}

int asock__accept_check(asock_socket *listener, asock_op *op) {
  int err = asock__socket_check_op(listener, op);
  if (err != 0)
    return err;
  if ((listener->flags & ASOCK__STAGE_LISTENING) == 0 ||
      (op->flags & ASOCK__OPF_MULTISHOT))
    return ASOCK_EKIND;
  if (op->flags & ASOCK__OPF_ACCEPT_RECV) {
    /* What a receive checks of its op. */
    if (op->nbufs != 0)
      return ASOCK_EKIND;
    if (!asock__op_wants_slice(op) && op->count == 0)
      return ASOCK_EINVAL;
  }
  return 0;
}

int asock_accept(asock_socket *listener, asock_op *op) {
  /* The op's owner calls this: it may set what the start is to do. */
  if (op != NULL && !asock_op_is_pending(op))
    op->flags &= ~ASOCK__OPF_ACCEPT_RECV;
  return asock__start_fast(listener, op, ASOCK_OP_ACCEPT, asock__accept_check,
                           asock__accept_start);
}

int asock_accept_receive(asock_socket *listener, asock_op *op) {
  if (op != NULL && !asock_op_is_pending(op))
    op->flags |= ASOCK__OPF_ACCEPT_RECV;
  return asock__start_fast(listener, op, ASOCK_OP_ACCEPT, asock__accept_check,
                           asock__accept_start);
}

int asock__accept_start(asock_socket *listener, asock_op *op) {
  int err;

  op->accepted = NULL;
  op->listener = NULL;
  op->flags &= ~ASOCK__OPF_HAS_REMOTE;
  op->seq = listener->recv_seq++;
  /* Synchronous only when a connection was taken, with its outcome. A
   * listener that cannot accept now (EMFILE...) leaves the op waiting, and
   * its next readiness reports the error, so that an application posting
   * again at once cannot spin inside its own callback; a paused one
   * watches for readiness again only when its pause ends. */
  if (listener->recv_head == NULL) {
    int taken;
    err = accept_one(listener, op, &taken);
    if (taken && err == 0 && (op->flags & ASOCK__OPF_ACCEPT_RECV)) {
      int r = first_receive(listener, op);
      if (r == 0) {
        op->flags &= ~ASOCK__OPF_ACCEPT_RECV;
        asock__op_finish_sync(op, 0, op->bytes);
        return 0;
      }
      if (r == ASOCK_PENDING) {
        asock__loop_watch(listener->loop, op);
        return ASOCK_PENDING;
      }
    } else if (taken) {
      asock__op_finish_sync(op, err, 0);
      return 0;
    }
  }
  wait_on(listener, op);
  asock__loop_watch(listener->loop, op);
  return ASOCK_PENDING;
}
