/* Ops in a socket's queues, and how they leave them: the slices a receive
 * takes and gives back, the unlinking, and the completions and deliveries
 * of the per-message path (inline, as every message runs them). */
#ifndef ASOCK_QUEUE_H
#define ASOCK_QUEUE_H

#include "socket.h"

/* Gives the op a slice as its buffer, the window covering all of it;
 * on_demand marks one a buffer-less receive took. */
static inline void asock__op_attach_slice(asock_op *op, void *slice,
                                          int on_demand) {
  op->mode = ASOCK_BUFFER_SLICE;
  op->mem = (unsigned char *)slice;
  op->mem_len = op->pool->slice_size;
  op->offset = 0;
  op->count = op->mem_len;
  if (on_demand)
    op->flags |= ASOCK__OPF_ON_DEMAND;
  else
    op->flags &= ~ASOCK__OPF_ON_DEMAND;
}

/* Takes the op's slice, if it holds one, out of the op (uncharging the
 * socket it counted against) and returns it; the op has no buffer after.
 * Inline: the receive cycle does this once per message. */
static ASOCK__ALWAYS_INLINE void *asock__op_detach_slice(asock_op *op) {
  void *slice = op->mode == ASOCK_BUFFER_SLICE ? op->mem : NULL;
  if (op->charged != NULL) {
    asock_socket *sock = op->charged;
    op->charged = NULL;
    asock__socket_release(sock, ASOCK__REF_SLICE);
  }
  op->mode = ASOCK_BUFFER_NONE;
  op->flags &= ~ASOCK__OPF_ON_DEMAND;
  op->mem = NULL;
  op->mem_len = 0;
  op->offset = 0;
  op->count = 0;
  return slice;
}

/* Takes a slice for an on-demand receive of sock, charged to it: 0,
 * ASOCK_EQUOTA or ASOCK_ENOBUFS. */
static ASOCK__ALWAYS_INLINE int asock__op_take_slice(asock_socket *sock,
                                                     asock_op *op) {
  void *slice;
  int err = asock__socket_take_slice(sock, &slice);

  if (err != 0)
    return err;
  asock__op_attach_slice(op, slice, 1);
  op->charged = sock;
  return 0;
}

/* Gives back the slice an on-demand receive holds, to the loop's cache. */
static ASOCK__ALWAYS_INLINE void asock__op_park_slice(asock_socket *sock,
                                                      asock_op *op) {
  void *slice = asock__op_detach_slice(op);
  if (slice != NULL)
    asock__loop_give_slice(sock->loop, slice);
}

/* An op whose deliveries left no buffer: its window is empty again. */
static inline void asock__op_clear_window(asock_op *op) {
  if (op->mode == ASOCK_BUFFER_NONE) {
    op->mem_len = 0;
    op->offset = 0;
    op->count = 0;
  }
}

/* A multishot receive leaves its socket's receive queue: it has ended,
 * and its final completion takes the next receive number. During a
 * delivery callback the number is kept aside, so that what the callback
 * reads of the op stays the delivery's until it returns. */
static inline void asock__multishot_leaves(asock_socket *sock, asock_op *op) {
  sock->flags &= ~ASOCK__SF_MULTISHOT;
  if (op->flags & ASOCK__OPF_DELIVERING) {
    op->end_seq = sock->recv_seq++;
    op->flags |= ASOCK__OPF_ENDED;
  } else {
    op->seq = sock->recv_seq++;
    op->bytes = 0;
    asock__op_clear_window(op);
  }
}

/* An accept-receive leaves the queue of the socket it took (it completes):
 * it is the listener's op again, and lets the listener go. */
void asock__accept_leaves(asock_socket *client, asock_op *op);

/* Unlinks an op from the socket queue it waits in, if it waits in one. */
static inline void asock__socket_unqueue(asock_socket *sock, asock_op *op) {
  asock_op **head;
  asock_op **tail;

  if (op->where == ASOCK__Q_RECV) {
    head = &sock->recv_head;
    tail = &sock->recv_tail;
    if (op->flags & ASOCK__OPF_MULTISHOT)
      asock__multishot_leaves(sock, op);
    else if (op->listener != NULL)
      asock__accept_leaves(sock, op);
  } else if (op->where == ASOCK__Q_SEND) {
    head = &sock->send_head;
    tail = &sock->send_tail;
  } else {
    return;
  }
  if (op->qprev != NULL)
    op->qprev->qnext = op->qnext;
  else
    *head = op->qnext;
  if (op->qnext != NULL)
    op->qnext->qprev = op->qprev;
  else
    *tail = op->qprev;
  op->qnext = op->qprev = NULL;
  op->where = ASOCK__Q_NONE;
}

/* Takes a pending op out of every place it waits: its socket's queue and
 * the timing wheel. */
static inline void asock__op_leave(asock_loop *loop, asock_op *op) {
  if (op->wslot != 0)
    asock__wheel_remove(&loop->wheel, op);
  asock__socket_unqueue(op->socket, op);
}

/* Completes a pending op from inside a libuv callback: out of its queue and
 * the wheel, idle again, then its callback. Inline: every completion with
 * data runs it. */
static ASOCK__ALWAYS_INLINE void
asock__op_complete(asock_loop *loop, asock_op *op, int status, size_t bytes) {
  op->where = ASOCK__Q_NONE;
  loop->callbacks++;
  asock__op_finish_async(op, status, bytes);
  loop->callbacks--;
}
static inline void asock__op_done(asock_op *op, int status, size_t bytes) {
  asock_loop *loop = op->socket->loop;

  asock__op_leave(loop, op);
  asock__op_complete(loop, op, status, bytes);
}
/* asock__op_done() for a one-shot receive at the head of its socket's
 * receive queue, the usual completion of a receive: the head moves on
 * without asock__socket_unqueue()'s tests of where the op waits and what
 * kind of receive it is. */
static ASOCK__ALWAYS_INLINE void
asock__recv_head_done(asock_socket *sock, asock_op *op, size_t bytes) {
  asock_loop *loop = sock->loop;
  asock_op *next = op->qnext;

  if (op->wslot != 0)
    asock__wheel_remove(&loop->wheel, op);
  sock->recv_head = next;
  if (next != NULL)
    next->qprev = NULL;
  else
    sock->recv_tail = NULL;
  op->qnext = NULL;
  asock__op_complete(loop, op, 0, bytes);
}

/* A multishot receive ended during its delivery callback (ASOCK__OPF_ENDED):
 * the op's results become those of its final completion, which is
 * deferred. */
static inline void asock__op_deliver_ended(asock_op *op) {
  op->flags &= ~ASOCK__OPF_ENDED;
  op->status = op->forced_status;
  op->forced_status = 0;
  op->bytes = 0;
  op->seq = op->end_seq;
  asock__op_clear_window(op);
}

/* Delivers one arrival of a multishot receive, which stays pending at the
 * head of its socket's receive queue: the callback runs with the
 * delivery's results (its own sequence number, asock_op_more() 1). The
 * slice the bytes came in goes back to the loop's cache when the callback
 * returns, unless the callback took it; a slice a TCP delivery took is not
 * charged to the socket meanwhile (asock_op_detach_slice() charges it if
 * the application takes it), so that the usual delivery costs no atomic
 * operation on the socket. Returns 1 while the receive stays posted, 0
 * when it ended during the callback (it was cancelled, or its socket
 * closed): its final completion is deferred then. Loop thread, inside a
 * libuv callback. Inline: every message of a stream comes this way. */
static ASOCK__ALWAYS_INLINE int asock__op_deliver(asock_socket *sock,
                                                  asock_op *op, size_t bytes) {
  asock_loop *loop = sock->loop;
  asock_op_cb cb = op->cb;

  op->seq = sock->recv_seq++;
  op->status = 0;
  op->bytes = bytes;
  op->flags |= ASOCK__OPF_DELIVERING;
  /* The timeout of a multishot receive is an idle timeout: it counts from
   * the last arrival. */
  if (op->wslot != 0)
    asock__loop_rewatch(loop, op);
  loop->callbacks++;
  if (cb != NULL)
    cb(op);
  loop->callbacks--;
  op->flags &= ~ASOCK__OPF_DELIVERING;
  if (op->flags & ASOCK__OPF_ON_DEMAND) {
    if (op->charged == NULL) {
      /* Only what says "no buffer"; the rest is written again by the next
       * delivery, or cleared by the final completion. */
      void *slice = op->mem;
      op->mode = ASOCK_BUFFER_NONE;
      op->mem = NULL;
      op->flags &= ~ASOCK__OPF_ON_DEMAND;
      asock__loop_give_slice(loop, slice);
    } else {
      asock__op_park_slice(sock, op);
    }
  }
  if (op->flags & ASOCK__OPF_ENDED) {
    asock__op_deliver_ended(op);
    return 0;
  }
  return 1;
}

/* Appends an op to one of a socket's queues. */
static ASOCK__ALWAYS_INLINE void asock__socket_enqueue(asock_op **head,
                                                       asock_op **tail,
                                                       asock_op *op,
                                                       unsigned char where) {
  op->qnext = NULL;
  op->qprev = *tail;
  if (*tail != NULL)
    (*tail)->qnext = op;
  else
    *head = op;
  *tail = op;
  op->where = where;
}

#endif /* ASOCK_QUEUE_H */
