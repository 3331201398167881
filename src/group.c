/* Loop groups: N asock loops, each created and run on a thread of its own,
 * over one pool. A group listener is either one listener per loop on a
 * shared port that the kernel balances (SO_REUSEPORT, Linux), or one
 * listener on the first loop that hands each connection, as an OS socket,
 * to the loops in turn through a ring per loop and the loop's wake-up
 * handle. The threads only ever touch their own loop; other threads reach a
 * loop through asock_loop_post() and the group's wake-up handles. */
#include <string.h>

#include "internal.h"

#define ASOCK__GROUP_MAX 256
/* Accept ops each listener keeps posted. */
#define ASOCK__GROUP_ACCEPTS 4
/* Connections handed over and not yet adopted, per loop (a power of two).
 * A full ring keeps the connection on the accepting loop. */
#define ASOCK__HANDOFF_RING 256
/* How often a stopping loop checks whether its sockets are all gone. */
#define ASOCK__GRACE_TICK_MS 10

typedef struct group_loop {
  asock_group *group;
  unsigned int index;
  uv_thread_t thread;
  int thread_started;
  asock_loop *loop;
  uv_async_t wake; /* referenced: keeps the loop running until the stop */
  uv_timer_t grace;
  int closing_handles;
  asock_socket *listener;
  int winding; /* the stop reached this loop */
  int done;    /* its uv_run() is to return for good */
  uint64_t grace_until;
  asock_task task; /* a job from asock_group_listen() */
  int task_result;
  int task_done;
  /* The ring of handed-over connections: the accepting loop writes at
   * tail, this loop reads at head. */
  asock__atomic_u32 ring_head;
  asock__atomic_u32 ring_tail;
  uintptr_t ring[ASOCK__HANDOFF_RING];
  asock__atomic_u64 accepted;
} group_loop;

struct asock_group {
  asock_pool *pool;
  unsigned int count;
  group_loop *loops;
  uv_mutex_t lock; /* the fields below, and the task handshakes */
  uv_cond_t cond;
  unsigned int reported; /* threads that finished starting */
  int start_error;
  int listening;
  int handoff;
  unsigned int listen_flags;
  int backlog;
  struct sockaddr_storage addr; /* the listener's, its port once bound */
  asock_group_accept_cb cb;
  void *arg;
  unsigned int next; /* the loop the next handed-off connection goes to */
  asock__atomic_u32 stopping;
  uint64_t grace_ms;
  int stopped;
  /* A loop's wake handle closes when its thread ends: these say when
   * nothing will use one any more. The stop has woken every loop: */
  int wakes_done;
  /* the first loop, the one that hands connections over, stopped doing
   * so: */
  int handoff_done;
};

static uv_loop_t *uv_of(group_loop *gl) { return asock_loop_uv(gl->loop); }

static int on_group_thread(const asock_group *group) {
  unsigned int i;
  for (i = 0; i < group->count; i++) {
    const asock_loop *loop = group->loops[i].loop;
    if (loop != NULL && asock__loop_on_thread(loop))
      return 1;
  }
  return 0;
}

/* ---- connections ------------------------------------------------------- */

/* Makes a connection handed over (or accepted raw) this loop's socket and
 * tells the application. */
static void adopt(group_loop *gl, uintptr_t conn) {
  asock_group *group = gl->group;
  asock_socket *client;
  int err =
      asock__socket_new(gl->loop, asock__io_socket_size(gl->loop), 0, &client);

  if (err != 0) {
    asock__io_drop(conn);
    return;
  }
  err = asock__io_adopt(NULL, client, conn);
  if (err != 0) {
    asock_socket_close(client, 0);
    return;
  }
  asock__socket_set_stage(client, ASOCK__STAGE_CONNECTED);
  asock__add_u64(&gl->accepted, 1);
  group->cb(group, client, group->arg);
}

/* Hands a connection to `to` (the accepting loop's own thread only). */
static void hand_over(group_loop *from, group_loop *to, uintptr_t conn) {
  uint32_t tail = asock__load_u32(&to->ring_tail);
  uint32_t head = asock__load_u32(&to->ring_head);

  if (to == from || tail - head == ASOCK__HANDOFF_RING) {
    adopt(from, conn);
    return;
  }
  to->ring[tail % ASOCK__HANDOFF_RING] = conn;
  asock__store_u32(&to->ring_tail, tail + 1);
  asock__wake(&to->wake);
}

static void drain_ring(group_loop *gl) {
  uint32_t head = asock__load_u32(&gl->ring_head);
  uint32_t tail = asock__load_u32(&gl->ring_tail);

  while (head != tail) {
    uintptr_t conn = gl->ring[head % ASOCK__HANDOFF_RING];
    head++;
    asock__store_u32(&gl->ring_head, head);
    if (gl->winding)
      asock__io_drop(conn);
    else
      adopt(gl, conn);
  }
}

static void deliver(group_loop *gl, asock_op *op) {
  asock_group *group = gl->group;

  if (op->flags & ASOCK__OPF_RAW_ACCEPT) {
    group_loop *to = &group->loops[group->next];
    group->next = (group->next + 1) % group->count;
    hand_over(gl, to, op->conn);
    op->conn = 0;
    return;
  }
  asock__add_u64(&gl->accepted, 1);
  group->cb(group, asock_op_accepted(op), group->arg);
}

/* Drives one of a listener's accept ops: delivers what it accepted and
 * posts it again, until it pends; releases it once the listener is gone. */
static void accept_step(group_loop *gl, asock_op *op, int r) {
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r == 0 && asock_op_status(op) == 0)
      deliver(gl, op);
    /* Other failures (EMFILE...) are the listener's: it reports them at its
     * next readiness, and the op waits for that. */
    if (r < 0 || gl->winding || gl->listener == NULL ||
        asock_op_status(op) == ASOCK_ECANCELED) {
      asock_op_release(gl->group->pool, op);
      return;
    }
    r = asock_accept(gl->listener, op);
  }
}

static void on_accept(asock_op *op) {
  accept_step(asock_op_user_data(op), op, 0);
}

/* ---- the loops' threads ------------------------------------------------ */

static void finish(group_loop *gl) {
  uv_timer_stop(&gl->grace);
  gl->done = 1;
  uv_stop(uv_of(gl));
}

static void on_grace(uv_timer_t *timer) {
  group_loop *gl = timer->data;
  if (gl->loop->sockets == NULL || asock__now_ms() >= gl->grace_until)
    finish(gl);
}

/* The group stops: no more connections here; the loop runs on through the
 * grace period, or until its sockets are gone. */
static void begin_stop(group_loop *gl) {
  gl->winding = 1;
  if (gl->listener != NULL) {
    asock_socket_close(gl->listener, 0);
    gl->listener = NULL;
  }
  if (gl->index == 0) {
    /* No connection is handed over from here on. */
    uv_mutex_lock(&gl->group->lock);
    gl->group->handoff_done = 1;
    uv_cond_broadcast(&gl->group->cond);
    uv_mutex_unlock(&gl->group->lock);
  }
  drain_ring(gl);
  if (gl->group->grace_ms == 0) {
    finish(gl);
    return;
  }
  gl->grace_until = asock__now_ms() + gl->group->grace_ms;
  /* Without its timer nothing would end the grace period: the loop stops
   * now, as without one. */
  if (asock__uv_timer_start(&gl->grace, on_grace, 0, ASOCK__GRACE_TICK_MS) != 0)
    finish(gl);
}

static void on_wake(uv_async_t *async) {
  group_loop *gl = async->data;
  drain_ring(gl);
  if (!gl->winding && asock__load_u32(&gl->group->stopping))
    begin_stop(gl);
}

static void on_handle_closed(uv_handle_t *handle) {
  group_loop *gl = handle->data;
  gl->closing_handles--;
}

static void report(asock_group *group, int err) {
  uv_mutex_lock(&group->lock);
  group->reported++;
  if (err != 0 && group->start_error == 0)
    group->start_error = err;
  uv_cond_broadcast(&group->cond);
  uv_mutex_unlock(&group->lock);
}

static void loop_main(void *arg) {
  group_loop *gl = arg;
  int err = asock_loop_create(&gl->loop, gl->group->pool, NULL);

  if (err == 0) {
    err = asock__from_uv(asock__uv_async_init(uv_of(gl), &gl->wake, on_wake));
    if (err != 0) {
      asock_loop_close(gl->loop);
      gl->loop = NULL;
    }
  }
  if (err != 0) {
    report(gl->group, err);
    return;
  }
  gl->wake.data = gl;
  uv_timer_init(uv_of(gl), &gl->grace);
  gl->grace.data = gl;
  report(gl->group, 0);

  while (!gl->done)
    asock_loop_run(gl->loop, UV_RUN_DEFAULT);

  /* Another loop woken first may have stopped first: the wake handle stays
   * open until the stop has woken every loop and, in hand-off mode, the
   * first loop has stopped handing connections over, so that no thread
   * wakes it once closed and no connection is left in its ring. */
  uv_mutex_lock(&gl->group->lock);
  while (!gl->group->wakes_done ||
         (gl->group->handoff && gl->index != 0 && !gl->group->handoff_done))
    uv_cond_wait(&gl->group->cond, &gl->group->lock);
  uv_mutex_unlock(&gl->group->lock);

  /* Connections handed over after the stop are dropped; every socket
   * still open is closed with the loop, its pending ops cancelled. */
  drain_ring(gl);
  gl->closing_handles = 2;
  uv_close((uv_handle_t *)&gl->wake, on_handle_closed);
  uv_close((uv_handle_t *)&gl->grace, on_handle_closed);
  while (gl->closing_handles > 0)
    uv_run(uv_of(gl), UV_RUN_NOWAIT);
  asock_loop_close(gl->loop);
}

int asock_group_create(asock_group **group_out, asock_pool *pool,
                       unsigned int loops) {
  asock_group *group;
  unsigned int i;
  int err = 0;

  if (group_out == NULL)
    return ASOCK_EINVAL;
  *group_out = NULL;
  if (pool == NULL || loops == 0 || loops > ASOCK__GROUP_MAX)
    return ASOCK_EINVAL;
  group = asock__calloc(1, sizeof(*group));
  if (group == NULL)
    return ASOCK_ENOMEM;
  group->loops = asock__calloc(loops, sizeof(*group->loops));
  if (group->loops == NULL) {
    asock__free(group);
    return ASOCK_ENOMEM;
  }
  group->pool = pool;
  group->count = loops;
  asock__store_u32(&group->stopping, 0);
  if (asock__uv_mutex_init(&group->lock) != 0) {
    asock__free(group->loops);
    asock__free(group);
    return ASOCK_ENOMEM;
  }
  if (asock__uv_cond_init(&group->cond) != 0) {
    uv_mutex_destroy(&group->lock);
    asock__free(group->loops);
    asock__free(group);
    return ASOCK_ENOMEM;
  }
  for (i = 0; i < loops; i++) {
    group_loop *gl = &group->loops[i];
    gl->group = group;
    gl->index = i;
    asock__store_u32(&gl->ring_head, 0);
    asock__store_u32(&gl->ring_tail, 0);
    asock__store_u64(&gl->accepted, 0);
    err = asock__from_uv(asock__uv_thread_create(&gl->thread, loop_main, gl));
    if (err != 0)
      break;
    gl->thread_started = 1;
  }
  uv_mutex_lock(&group->lock);
  while (group->reported < i)
    uv_cond_wait(&group->cond, &group->lock);
  if (err == 0)
    err = group->start_error;
  uv_mutex_unlock(&group->lock);
  if (err != 0) {
    asock_group_destroy(group);
    return err;
  }
  *group_out = group;
  return 0;
}

unsigned int asock_group_size(const asock_group *group) {
  return group == NULL ? 0 : group->count;
}

asock_loop *asock_group_loop(const asock_group *group, unsigned int index) {
  if (group == NULL || index >= group->count)
    return NULL;
  return group->loops[index].loop;
}

uint64_t asock_group_accepted(const asock_group *group, unsigned int index) {
  if (group == NULL || index >= group->count)
    return 0;
  return asock__load_u64(&group->loops[index].accepted);
}

/* ---- listening --------------------------------------------------------- */

static void listen_task(asock_loop *loop, asock_task *task) {
  group_loop *gl = task->data;
  asock_group *group = gl->group;
  asock_socket *listener = NULL;
  unsigned int flags = group->listen_flags;
  int err;
  int i;

  flags |= group->handoff ? ASOCK__LISTEN_HANDOFF : ASOCK__LISTEN_REUSEPORT;
  err = asock_tcp_create(&listener, loop);
  if (err == 0)
    err = asock__tcp_listen(listener, (const struct sockaddr *)&group->addr,
                            group->backlog, flags);
  if (err == 0 && gl->index == 0) {
    int len = (int)sizeof(group->addr);
    err = asock_socket_local_address(listener, (struct sockaddr *)&group->addr,
                                     &len);
  }
  if (err == 0)
    gl->listener = listener;
  for (i = 0; err == 0 && i < ASOCK__GROUP_ACCEPTS; i++) {
    asock_op *op;
    err = asock_op_acquire(group->pool, &op);
    if (err != 0)
      break;
    asock_op_set_callback(op, on_accept);
    asock_op_set_user_data(op, gl);
    if (group->handoff)
      op->flags |= ASOCK__OPF_RAW_ACCEPT;
    accept_step(gl, op, asock_accept(listener, op));
  }
  if (err != 0 && listener != NULL) {
    /* The accepts posted so far are cancelled and let go. */
    gl->listener = NULL;
    asock_socket_close(listener, 0);
  }
  uv_mutex_lock(&group->lock);
  gl->task_result = err;
  gl->task_done = 1;
  uv_cond_broadcast(&group->cond);
  uv_mutex_unlock(&group->lock);
}

static void close_task(asock_loop *loop, asock_task *task) {
  group_loop *gl = task->data;
  (void)loop;
  if (gl->listener != NULL) {
    asock_socket_close(gl->listener, 0);
    gl->listener = NULL;
  }
  uv_mutex_lock(&gl->group->lock);
  gl->task_done = 1;
  uv_cond_broadcast(&gl->group->cond);
  uv_mutex_unlock(&gl->group->lock);
}

/* Runs fn on loop `index` and waits for it; the group's lock is held. */
static int run_on(asock_group *group, unsigned int index, asock_task_fn fn) {
  group_loop *gl = &group->loops[index];

  gl->task.fn = fn;
  gl->task.data = gl;
  gl->task_done = 0;
  gl->task_result = 0;
  if (asock_loop_post(gl->loop, &gl->task) != 0)
    return ASOCK_ECLOSED;
  while (!gl->task_done)
    uv_cond_wait(&group->cond, &group->lock);
  return gl->task_result;
}

int asock_group_listen(asock_group *group, const struct sockaddr *addr,
                       int backlog, unsigned int flags,
                       asock_group_accept_cb cb, void *arg) {
  unsigned int count;
  unsigned int i;
  int err = 0;

  if (group == NULL || addr == NULL || cb == NULL ||
      (flags & ~(ASOCK_LISTEN_IPV6ONLY | ASOCK_LISTEN_REUSEADDR |
                 ASOCK_GROUP_HANDOFF)) != 0)
    return ASOCK_EINVAL;
  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return ASOCK_EAFNOSUPPORT;
  if (on_group_thread(group))
    return ASOCK_ETHREAD;
  uv_mutex_lock(&group->lock);
  if (group->listening) {
    err = ASOCK_EKIND;
    goto done;
  }
  if (asock__load_u32(&group->stopping)) {
    err = ASOCK_ECLOSED;
    goto done;
  }
  memset(&group->addr, 0, sizeof(group->addr));
  memcpy(&group->addr, addr,
         addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in));
  group->backlog = backlog;
  group->listen_flags =
      flags & (ASOCK_LISTEN_IPV6ONLY | ASOCK_LISTEN_REUSEADDR);
  group->handoff = (flags & ASOCK_GROUP_HANDOFF) != 0 ||
                   !ASOCK__REUSEPORT_BALANCES || group->count == 1;
  group->cb = cb;
  group->arg = arg;
  group->next = 0;
  /* The first loop binds (and learns the port); the others share it. */
  count = group->handoff ? 1 : group->count;
  for (i = 0; i < count; i++) {
    err = run_on(group, i, listen_task);
    if (err != 0)
      break;
  }
  if (err != 0) {
    while (i-- > 0)
      (void)run_on(group, i, close_task);
    goto done;
  }
  group->listening = 1;

done:
  uv_mutex_unlock(&group->lock);
  return err;
}

int asock_group_local_address(const asock_group *group,
                              struct sockaddr_storage *addr) {
  int err = 0;
  asock_group *g = (asock_group *)(uintptr_t)group;

  if (group == NULL || addr == NULL)
    return ASOCK_EINVAL;
  uv_mutex_lock(&g->lock);
  if (g->listening)
    *addr = g->addr;
  else
    err = ASOCK_ENOTCONN;
  uv_mutex_unlock(&g->lock);
  return err;
}

/* ---- stopping ---------------------------------------------------------- */

int asock_group_stop(asock_group *group, uint64_t grace_ms) {
  unsigned int i;

  if (group == NULL)
    return ASOCK_EINVAL;
  if (on_group_thread(group))
    return ASOCK_ETHREAD;
  uv_mutex_lock(&group->lock);
  if (asock__load_u32(&group->stopping)) {
    uv_mutex_unlock(&group->lock);
    return ASOCK_ECLOSED;
  }
  group->grace_ms = grace_ms;
  asock__store_u32(&group->stopping, 1);
  uv_mutex_unlock(&group->lock);
  for (i = 0; i < group->count; i++)
    if (group->loops[i].loop != NULL)
      asock__wake(&group->loops[i].wake);
  uv_mutex_lock(&group->lock);
  group->wakes_done = 1;
  uv_cond_broadcast(&group->cond);
  uv_mutex_unlock(&group->lock);
  for (i = 0; i < group->count; i++)
    if (group->loops[i].thread_started) {
      uv_thread_join(&group->loops[i].thread);
      group->loops[i].thread_started = 0;
      group->loops[i].loop = NULL;
    }
  uv_mutex_lock(&group->lock);
  group->stopped = 1;
  group->listening = 0;
  uv_mutex_unlock(&group->lock);
  return 0;
}

int asock_group_destroy(asock_group *group) {
  if (group == NULL)
    return ASOCK_EINVAL;
  if (on_group_thread(group))
    return ASOCK_ETHREAD;
  if (!group->stopped)
    (void)asock_group_stop(group, 0);
  uv_cond_destroy(&group->cond);
  uv_mutex_destroy(&group->lock);
  asock__free(group->loops);
  asock__free(group);
  return 0;
}
