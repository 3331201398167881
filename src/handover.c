/* Work handed to a loop from other threads: ops started there (moved to
 * pending on the starting thread, checked and started on the loop's),
 * cancels, and tasks. Each list is a lock-free stack the other threads push
 * onto and the loop's async handle takes whole, in posting order. */
#include "internal.h"

static void run_posted(asock_loop *loop);

/* Takes a list pushed by other threads (newest first) in posting order. */
static asock_op *take_fifo(asock__atomic_ptr *list, int cancels) {
  asock_op *op = asock__xchg_ptr(list, NULL);
  asock_op *fifo = NULL;
  while (op != NULL) {
    asock_op *next = cancels ? op->cancel_next : op->post_next;
    if (cancels)
      op->cancel_next = fifo;
    else
      op->post_next = fifo;
    fifo = op;
    op = next;
  }
  return fifo;
}

/* Checks and starts one op another thread handed over. */
static int run_one(asock_socket *sock, asock_op *op) {
  asock__start_fn check;
  asock__start_fn start;
  int err;

  switch (op->kind) {
  case ASOCK_OP_ACCEPT:
    check = asock__accept_check;
    start = asock__accept_start;
    break;
  case ASOCK_OP_CONNECT:
    check = asock__connect_check;
    start = asock__connect_start;
    break;
  case ASOCK_OP_SEND:
    check = asock__send_check;
    start = asock__send_start;
    break;
  case ASOCK_OP_RECEIVE:
    check = asock__recv_check;
    start = asock__recv_start;
    break;
  case ASOCK_OP_DISCONNECT:
    check = asock__disconnect_check;
    start = asock__disconnect_start;
    break;
  case ASOCK_OP_SHUTDOWN:
    check = asock__shutdown_check;
    start = asock__shutdown_start;
    break;
  case ASOCK_OP_SENDPACKETS:
    check = asock__packets_check;
    start = asock__packets_start;
    break;
  case ASOCK_OP_SENDTO:
    check = asock__sendto_check;
    start = asock__sendto_start;
    break;
  case ASOCK_OP_RECEIVEFROM:
  case ASOCK_OP_RECEIVEMESSAGEFROM:
    check = asock__recvfrom_check;
    start = asock__recvfrom_start;
    break;
  default:
    return ASOCK_EKIND;
  }
  err = check(sock, op);
  return err != 0 ? err : start(sock, op);
}

/* Starts the ops other threads posted, in the order they were posted. Their
 * starters were told ASOCK_PENDING, so every outcome, a synchronous
 * completion or a refusal, reaches them through the callback, from the idle
 * handle: never from inside the asock call that runs this. */
void asock__loop_run_posted(asock_loop *loop) {
  if (asock__load_ptr(&loop->posted) != NULL)
    run_posted(loop);
}

static void run_posted(asock_loop *loop) {
  asock_op *op = take_fifo(&loop->posted, 0);
  while (op != NULL) {
    asock_op *next = op->post_next;
    asock_socket *sock = op->socket;
    int r;

    op->post_next = NULL;
    op->handed = 1;
    r = run_one(sock, op);
    op->handed = 0;
    if (r != ASOCK_PENDING) {
      if (r < 0) {
        op->seq = asock__socket_next_seq(sock, op->kind);
        op->bytes = 0;
        op->status = r;
        if (op->host != NULL) {
          asock__free(op->host);
          op->host = NULL;
        }
      }
      /* A synchronous completion (the op stayed pending) is the
       * callback's to report. */
      op->sync = 0;
      asock__op_defer(loop, op, op->status);
    }
    asock__socket_unref(sock);
    op = next;
  }
}

void asock__loop_run_cancels(asock_loop *loop) {
  asock_op *op = take_fifo(&loop->cancels, 1);
  while (op != NULL) {
    asock_op *next = op->cancel_next;
    asock_socket *sock = op->cancel_sock;
    op->cancel_next = NULL;
    op->cancel_sock = NULL;
    asock__store_u32(&op->cancel_req, 0);
    /* The op may have completed, and even started again on another socket,
     * since the cancel was asked: it applies only to that socket's op. */
    if (asock_op_is_pending(op) &&
        (op->socket == sock || op->listener == sock) &&
        op->where != ASOCK__Q_DEFERRED)
      asock__socket_cancel(op->socket, op);
    asock__socket_unref(sock);
    op = next;
  }
}

void asock__loop_run_tasks(asock_loop *loop) {
  asock_task *task = asock__xchg_ptr(&loop->tasks, NULL);
  asock_task *fifo = NULL;

  while (task != NULL) {
    asock_task *next = task->next;
    task->next = fifo;
    fifo = task;
    task = next;
  }
  /* As inside any callback asock runs, the loop cannot be closed. */
  loop->callbacks++;
  while (fifo != NULL) {
    task = fifo;
    fifo = task->next;
    task->next = NULL;
    task->fn(loop, task);
  }
  loop->callbacks--;
}

int asock_loop_post(asock_loop *loop, asock_task *task) {
  void *head;

  if (loop == NULL || task == NULL || task->fn == NULL)
    return ASOCK_EINVAL;
  head = asock__load_ptr(&loop->tasks);
  do
    task->next = head;
  while (!asock__cas_ptr(&loop->tasks, &head, task));
  asock__wake(&loop->async);
  return 0;
}

void asock__wake(uv_async_t *async) {
  while (asock__uv_async_send(async) != 0)
    uv_sleep(1);
}

static void push(asock__atomic_ptr *list, asock_op *op, asock_op **link) {
  void *head = asock__load_ptr(list);
  do
    *link = head;
  while (!asock__cas_ptr(list, &head, op));
}

ASOCK__NOINLINE int asock__start(asock_socket *sock, asock_op *op,
                                 asock_op_kind kind, asock__start_fn check,
                                 asock__start_fn start) {
  asock_loop *loop;
  int err;

  if (op != NULL && asock__load_u32(&op->state) != ASOCK__OP_IDLE)
    return ASOCK_EBUSY;
  if (sock == NULL || op == NULL)
    return ASOCK_EINVAL;
  loop = sock->loop;
  if (!asock__loop_on_thread(loop)) {
    if (op->pool != loop->pool)
      return ASOCK_EFOREIGN;
    err = asock__op_begin(op, kind, sock);
    if (err != 0)
      return err;
    /* The socket stays in memory until the loop has dealt with the op. */
    asock__socket_ref(sock);
    push(&loop->posted, op, &op->post_next);
    asock__wake(&loop->async);
    return ASOCK_PENDING;
  }
  /* Ops handed over earlier go first, so that sequence numbers follow the
   * order the application posted in. */
  asock__loop_run_posted(loop);
  return asock__start_here(sock, op, kind, check, start);
}

int asock__cancel_from_thread(asock_op *op) {
  asock_socket *sock = op->socket;
  uint32_t expected = 0;

  if (sock == NULL)
    return ASOCK_ENOTPENDING;
  if (!asock__cas_u32(&op->cancel_req, &expected, 1))
    return 0; /* a cancel is already on its way */
  asock__socket_ref(sock);
  op->cancel_sock = sock;
  push(&sock->loop->cancels, op, &op->cancel_next);
  asock__wake(&sock->loop->async);
  return 0;
}
