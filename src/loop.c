/* The asock loop: one libuv loop, owned or embedded, plus the handles asock
 * needs on it: an idle handle that delivers completions decided inside API
 * calls (where a callback must not run), one timer for the timing wheel and
 * the slice waiters, and an async handle to stop the loop from any thread. */
#include <string.h>

#include "internal.h"

/* Slice waiters are retried this often while there are any. */
#define ASOCK__WAIT_RETRY_MS ASOCK__WHEEL_TICK_MS

static void on_handle_closed(uv_handle_t *handle) {
  asock_loop *loop = handle->data;
  loop->handles--;
}

static void deliver_notify(asock_loop *loop) {
  while (loop->notify != NULL) {
    asock_socket *sock = loop->notify;
    int above;

    loop->notify = sock->link;
    sock->link = NULL;
    sock->flags &= ~ASOCK__SF_NOTIFY;
    above = (sock->flags & ASOCK__SF_ABOVE_HIGH) != 0;
    if ((sock->flags & ASOCK__SF_CLOSED) == 0 && sock->watermark_cb != NULL &&
        above != ((sock->flags & ASOCK__SF_REPORTED_HIGH) != 0)) {
      if (above)
        sock->flags |= ASOCK__SF_REPORTED_HIGH;
      else
        sock->flags &= ~ASOCK__SF_REPORTED_HIGH;
      sock->watermark_cb(sock, above);
    }
    asock__socket_unref(sock);
  }
}

static void on_idle(uv_idle_t *idle) {
  asock_loop *loop = idle->data;

  loop->callbacks++;
  while (loop->deferred_head != NULL) {
    asock_op *op = loop->deferred_head;
    loop->deferred_head = op->qnext;
    if (loop->deferred_head == NULL)
      loop->deferred_tail = NULL;
    op->qnext = NULL;
    op->where = ASOCK__Q_NONE;
    asock__op_finish_async(op, op->status, op->bytes);
  }
  deliver_notify(loop);
  loop->callbacks--;
  if (loop->deferred_head == NULL && loop->notify == NULL)
    uv_idle_stop(&loop->idle);
}

static void retry_waiters(asock_loop *loop) {
  asock_socket *list = loop->waiters;
  loop->waiters = NULL;
  while (list != NULL) {
    asock_socket *sock = list;
    list = sock->wait_link;
    sock->wait_link = NULL;
    sock->flags &= ~ASOCK__SF_WAIT_SLICE;
    asock__recv_retry(sock);
    asock__socket_unref(sock);
  }
}

static void on_timer(uv_timer_t *timer) {
  asock_loop *loop = timer->data;
  asock_op *due;

  loop->callbacks++;
  due = asock__wheel_expire(&loop->wheel, uv_now(loop->uv));
  while (due != NULL) {
    asock_op *op = due;
    due = op->wnext;
    op->wnext = NULL;
    asock__op_expired(op);
  }
  retry_waiters(loop);
  loop->callbacks--;
  asock__loop_update_timer(loop);
}

void asock__loop_update_timer(asock_loop *loop) {
  int needed = loop->wheel.count > 0 || loop->waiters != NULL;
  if (needed && !loop->timer_running) {
    /* The wheel counts ticks from the time it was last swept; catch it up
     * so that a long idle spell does not make the first sweep walk it. */
    if (loop->wheel.count == 0)
      asock__wheel_init(&loop->wheel, uv_now(loop->uv));
    uv_timer_start(&loop->timer, on_timer, ASOCK__WHEEL_TICK_MS,
                   ASOCK__WHEEL_TICK_MS);
    loop->timer_running = 1;
  } else if (!needed && loop->timer_running) {
    uv_timer_stop(&loop->timer);
    loop->timer_running = 0;
  }
}

static void on_async(uv_async_t *async) {
  asock_loop *loop = async->data;
  uint32_t expected = 1;
  if (asock__cas_u32(&loop->stop_requested, &expected, 0))
    uv_stop(loop->uv);
}

int asock_loop_create(asock_loop **loop_out, asock_pool *pool,
                      uv_loop_t *uv_loop) {
  asock_loop *loop;
  int err;

  if (loop_out == NULL)
    return ASOCK_EINVAL;
  *loop_out = NULL;
  if (pool == NULL)
    return ASOCK_EINVAL;
  asock__platform_init();
  loop = asock__calloc(1, sizeof(*loop));
  if (loop == NULL)
    return ASOCK_ENOMEM;
  loop->pool = pool;
  if (uv_loop == NULL) {
    err = uv_loop_init(&loop->owned_uv);
    if (err != 0) {
      asock__free(loop);
      return asock__from_uv(err);
    }
    loop->owns_uv = 1;
    loop->uv = &loop->owned_uv;
  } else {
    loop->uv = uv_loop;
  }
  loop->thread = uv_thread_self();
  asock__store_u32(&loop->stop_requested, 0);

  /* None of these can fail on an initialised loop except the async handle,
   * which needs an eventfd or pipe: make it first so that a failure leaves
   * nothing else to undo. */
  err = uv_async_init(loop->uv, &loop->async, on_async);
  if (err != 0) {
    if (loop->owns_uv)
      uv_loop_close(loop->uv);
    asock__free(loop);
    return asock__from_uv(err);
  }
  uv_idle_init(loop->uv, &loop->idle);
  uv_timer_init(loop->uv, &loop->timer);
  loop->async.data = loop;
  loop->idle.data = loop;
  loop->timer.data = loop;
  /* asock's handles must not keep an application's loop alive by
   * themselves; the async handle is the only one always active. */
  uv_unref((uv_handle_t *)&loop->async);
  uv_unref((uv_handle_t *)&loop->timer);
  loop->handles = 3;
  asock__wheel_init(&loop->wheel, uv_now(loop->uv));
  *loop_out = loop;
  return 0;
}

int asock_loop_run(asock_loop *loop, uv_run_mode mode) {
  if (loop == NULL)
    return ASOCK_EINVAL;
  loop->thread = uv_thread_self();
  return uv_run(loop->uv, mode);
}

int asock_loop_stop(asock_loop *loop) {
  if (loop == NULL)
    return ASOCK_EINVAL;
  if (asock__loop_on_thread(loop)) {
    uv_stop(loop->uv);
    return 0;
  }
  asock__store_u32(&loop->stop_requested, 1);
  return asock__from_uv(uv_async_send(&loop->async));
}

int asock_loop_close(asock_loop *loop) {
  int spins;

  if (loop == NULL)
    return ASOCK_EINVAL;
  if (loop->callbacks > 0)
    return ASOCK_EBUSY;
  loop->closing = 1;
  while (loop->sockets != NULL) {
    asock_socket *sock = loop->sockets;
    /* A socket the application already closed is only waiting for its
     * handle; closing it again is refused, so skip to the next. */
    while (sock != NULL && (sock->flags & ASOCK__SF_CLOSED))
      sock = sock->next;
    if (sock == NULL)
      break;
    asock_socket_close(sock, 0);
  }
  /* Deliver every cancellation and let libuv close the handles. */
  for (spins = 0; loop->sockets != NULL || loop->deferred_head != NULL ||
                  loop->notify != NULL;
       spins++) {
    uv_run(loop->uv, UV_RUN_NOWAIT);
    if (spins > 100000)
      return ASOCK_EBUSY;
  }
  uv_close((uv_handle_t *)&loop->idle, on_handle_closed);
  uv_close((uv_handle_t *)&loop->timer, on_handle_closed);
  uv_close((uv_handle_t *)&loop->async, on_handle_closed);
  while (loop->handles > 0)
    uv_run(loop->uv, UV_RUN_NOWAIT);
  if (loop->owns_uv) {
    int err = uv_loop_close(loop->uv);
    if (err != 0)
      return asock__from_uv(err);
  }
  asock__free(loop);
  return 0;
}

uv_loop_t *asock_loop_uv(const asock_loop *loop) {
  return loop == NULL ? NULL : loop->uv;
}

asock_pool *asock_loop_pool(const asock_loop *loop) {
  return loop == NULL ? NULL : loop->pool;
}

int asock__loop_on_thread(const asock_loop *loop) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &loop->thread);
}

void asock__op_done(asock_op *op, int status, size_t bytes) {
  asock_socket *sock = op->socket;
  asock_loop *loop = sock->loop;

  asock__wheel_remove(&loop->wheel, op);
  if (op->where == ASOCK__Q_RECV || op->where == ASOCK__Q_SEND)
    asock__socket_unqueue(sock, op);
  op->where = ASOCK__Q_NONE;
  loop->callbacks++;
  asock__op_finish_async(op, status, bytes);
  loop->callbacks--;
}

void asock__op_defer(asock_loop *loop, asock_op *op, int status) {
  asock__wheel_remove(&loop->wheel, op);
  if (op->where == ASOCK__Q_RECV || op->where == ASOCK__Q_SEND)
    asock__socket_unqueue(op->socket, op);
  op->status = status;
  op->where = ASOCK__Q_DEFERRED;
  op->qnext = NULL;
  op->qprev = NULL;
  if (loop->deferred_tail != NULL)
    loop->deferred_tail->qnext = op;
  else
    loop->deferred_head = op;
  loop->deferred_tail = op;
  uv_idle_start(&loop->idle, on_idle);
}

void asock__loop_watch(asock_loop *loop, asock_op *op) {
  if (op->timeout_ms == 0)
    return;
  if (!loop->timer_running && loop->wheel.count == 0)
    asock__wheel_init(&loop->wheel, uv_now(loop->uv));
  asock__wheel_add(&loop->wheel, op, uv_now(loop->uv), op->timeout_ms);
  asock__loop_update_timer(loop);
}

void asock__loop_notify(asock_loop *loop, asock_socket *sock) {
  if (sock->flags & ASOCK__SF_NOTIFY)
    return;
  sock->flags |= ASOCK__SF_NOTIFY;
  asock__add_u32(&sock->refs, 1);
  sock->link = loop->notify;
  loop->notify = sock;
  uv_idle_start(&loop->idle, on_idle);
}

void asock__loop_wait_slice(asock_loop *loop, asock_socket *sock) {
  if (sock->flags & ASOCK__SF_WAIT_SLICE)
    return;
  sock->flags |= ASOCK__SF_WAIT_SLICE;
  asock__add_u32(&sock->refs, 1);
  sock->wait_link = loop->waiters;
  loop->waiters = sock;
  asock__loop_update_timer(loop);
}
