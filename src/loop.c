/* The asock loop: one libuv loop, owned or embedded, plus the handles asock
 * needs on it: an idle handle that delivers completions decided inside API
 * calls (where a callback must not run), one timer for the timing wheel and
 * the slice waiters, and an async handle to stop the loop from any thread. */
#include <stdlib.h>
#include <string.h>

#include "asan.h"
#include "internal.h"

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

static void run_kicked(asock_loop *loop) {
  while (loop->kicked != NULL) {
    asock_socket *sock = loop->kicked;
    loop->kicked = sock->kick_link;
    sock->kick_link = NULL;
    sock->flags &= ~ASOCK__SF_KICKED;
    if ((sock->flags & ASOCK__SF_UDP) == 0)
      asock__send_resume(sock);
    else if ((sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE)) == 0)
      asock__udp_recv_kept(sock);
    asock__socket_unref(sock);
  }
}

static void on_idle(uv_idle_t *idle) {
  asock_loop *loop = idle->data;

  loop->idle_runs++;
  loop->callbacks++;
  run_kicked(loop);
  while (loop->deferred_head != NULL) {
    asock_op *op = loop->deferred_head;
    asock_socket *sock = op->socket;
    loop->deferred_head = op->qnext;
    if (loop->deferred_head == NULL)
      loop->deferred_tail = NULL;
    op->qnext = NULL;
    op->where = ASOCK__Q_NONE;
    asock__op_finish_async(op, op->status, op->bytes);
    /* The reference asock__op_defer() took: the socket outlived the op's
     * pending time, its callback included. */
    asock__socket_unref(sock);
  }
  deliver_notify(loop);
  loop->callbacks--;
  if (loop->deferred_head == NULL && loop->notify == NULL &&
      loop->kicked == NULL)
    uv_idle_stop(&loop->idle);
}

/* Has the idle handle deliver what waits. Should libuv refuse to start it,
 * the async handle wakes the loop to deliver instead (see on_async()). */
static void schedule_delivery(asock_loop *loop) {
  if (asock__uv_idle_start(&loop->idle, on_idle) != 0)
    asock__wake(&loop->async);
}

/* ASOCK_ACCEPT_PAUSE_MS in ticks, rounded up. */
#define ASOCK__ACCEPT_PAUSE_TICKS                                              \
  ((ASOCK_ACCEPT_PAUSE_MS + ASOCK__WHEEL_TICK_MS - 1) / ASOCK__WHEEL_TICK_MS)

/* Listeners whose pause is over take connections again; a closed one is
 * only let go. */
static void resume_accepts(asock_loop *loop, int all) {
  asock_socket **link = &loop->paused;

  while (*link != NULL) {
    asock_socket *sock = *link;
    if (!all && (sock->flags & ASOCK__SF_CLOSED) == 0 &&
        (int32_t)(loop->ticks - sock->resume_tick) < 0) {
      link = &sock->wait_link;
      continue;
    }
    *link = sock->wait_link;
    sock->wait_link = NULL;
    sock->flags &= ~ASOCK__SF_PAUSED;
    if ((sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE)) == 0 &&
        sock->recv_head != NULL)
      asock__io_accept_wanted(sock, 1);
    asock__socket_unref(sock);
  }
}

void asock__loop_pause_accepts(asock_loop *loop, asock_socket *listener) {
  if (listener->flags & ASOCK__SF_PAUSED)
    return;
  listener->wait_link = loop->paused;
  loop->paused = listener;
  asock__loop_update_timer(loop);
  if (!loop->timer_running) {
    /* No tick would end the pause: the listener goes on as it was. */
    loop->paused = listener->wait_link;
    listener->wait_link = NULL;
    return;
  }
  listener->flags |= ASOCK__SF_PAUSED;
  listener->resume_tick = loop->ticks + ASOCK__ACCEPT_PAUSE_TICKS;
  asock__socket_ref(listener);
  asock__io_accept_wanted(listener, 0);
}

/* Lingering sockets whose time is up are reset; those whose sends went out
 * (or that closed otherwise) are let go. `all`: every one, at loop close. */
static void linger_sweep(asock_loop *loop, int all) {
  asock_socket **link = &loop->lingering;

  while (*link != NULL) {
    asock_socket *sock = *link;
    int gone = (sock->flags & ASOCK__SF_HANDLE) != 0;
    if (!gone && !all && (int32_t)(loop->ticks - sock->linger_tick) < 0) {
      link = &sock->linger_link;
      continue;
    }
    *link = sock->linger_link;
    sock->linger_link = NULL;
    sock->flags &= ~ASOCK__SF_LINGERING;
    if (!gone)
      asock__socket_shut(sock, 1);
    asock__socket_unref(sock);
  }
}

int asock__loop_linger(asock_loop *loop, asock_socket *sock) {
  uint64_t ticks =
      ((uint64_t)sock->linger_s * 1000 + ASOCK__WHEEL_TICK_MS - 1) /
      ASOCK__WHEEL_TICK_MS;
  sock->linger_link = loop->lingering;
  loop->lingering = sock;
  asock__loop_update_timer(loop);
  if (!loop->timer_running) {
    loop->lingering = sock->linger_link;
    sock->linger_link = NULL;
    return -1;
  }
  sock->flags |= ASOCK__SF_LINGERING;
  sock->linger_tick =
      loop->ticks + (uint32_t)(ticks < 0x7fffffffu ? ticks : 0x7fffffffu);
  asock__socket_ref(sock);
  return 0;
}

static void on_timer(uv_timer_t *timer) {
  asock_loop *loop = timer->data;
  asock_op *due;

  loop->callbacks++;
  loop->ticks++;
  due = asock__wheel_expire(&loop->wheel, asock__now_ms());
  while (due != NULL) {
    asock_op *op = due;
    due = op->wnext;
    op->wnext = NULL;
    asock__op_expired(op);
  }
  asock__loop_retry_waiters(loop);
  resume_accepts(loop, 0);
  linger_sweep(loop, 0);
  loop->callbacks--;
  asock__loop_update_timer(loop);
}

void asock__loop_update_timer(asock_loop *loop) {
  int needed = loop->wheel.count > 0 || loop->waiters != NULL ||
               loop->paused != NULL || loop->lingering != NULL;
  if (needed && !loop->timer_running) {
    /* The wheel counts ticks from the time it was last swept; catch it up
     * so that a long idle spell does not make the first sweep walk it. */
    if (loop->wheel.count == 0)
      asock__wheel_init(&loop->wheel, asock__now_ms());
    /* A timer libuv refused is asked for again at the next change. */
    loop->timer_running =
        asock__uv_timer_start(&loop->timer, on_timer, ASOCK__WHEEL_TICK_MS,
                              ASOCK__WHEEL_TICK_MS) == 0;
  } else if (!needed && loop->timer_running) {
    uv_timer_stop(&loop->timer);
    loop->timer_running = 0;
  }
}

static void on_async(uv_async_t *async) {
  asock_loop *loop = async->data;
  uint32_t expected = 1;

  loop->callbacks++;
  asock__loop_run_posted(loop);
  asock__loop_run_cancels(loop);
  loop->callbacks--;
  if (asock__load_ptr(&loop->tasks) != NULL)
    asock__loop_run_tasks(loop);
  /* Completions the idle handle could not be started for. */
  if ((loop->deferred_head != NULL || loop->notify != NULL ||
       loop->kicked != NULL) &&
      !uv_is_active((uv_handle_t *)&loop->idle))
    on_idle(&loop->idle);
  if (asock__cas_u32(&loop->stop_requested, &expected, 0))
    uv_stop(loop->uv);
}

void asock_loop_config_init_size(asock_loop_config *config,
                                 size_t struct_size) {
  asock_loop_config defaults;

  if (config == NULL || struct_size < sizeof(config->struct_size) ||
      struct_size > sizeof(defaults))
    return;
  memset(&defaults, 0, sizeof(defaults));
  defaults.struct_size = struct_size;
  defaults.backend = ASOCK_BACKEND_AUTO;
  memcpy(config, &defaults, struct_size);
}

/* The program's config over the defaults, as the pool's is read: 0, or
 * ASOCK_EINVAL for a size no config has or an unknown backend. */
static int config_read(const asock_loop_config *in, asock_loop_config *out) {
  size_t size;

  asock_loop_config_init(out);
  if (in == NULL)
    return 0;
  size = in->struct_size;
  if (size < sizeof(in->struct_size))
    return ASOCK_EINVAL;
  if (size > sizeof(*out)) {
    const unsigned char *extra = (const unsigned char *)in + sizeof(*out);
    size_t i;
    for (i = 0; i < size - sizeof(*out); i++)
      if (extra[i] != 0)
        return ASOCK_EINVAL;
    size = sizeof(*out);
  }
  memcpy(out, in, size);
  out->struct_size = sizeof(*out);
  if ((unsigned int)out->backend > (unsigned int)ASOCK_BACKEND_IO_URING)
    return ASOCK_EINVAL;
  return 0;
}

/* The platform's own backend. */
static asock_backend native_backend(void) {
#ifdef _WIN32
  return ASOCK_BACKEND_IOCP;
#else
  return ASOCK_BACKEND_READINESS;
#endif
}

/* What ASOCK_BACKEND asks for: ASOCK_BACKEND_AUTO when unset or not a
 * backend's name. */
static asock_backend env_backend(void) {
#ifdef _WIN32
  /* Windows has one backend. */
  return ASOCK_BACKEND_AUTO;
#else
  const char *v = getenv("ASOCK_BACKEND");
  if (v == NULL)
    return ASOCK_BACKEND_AUTO;
  if (strcmp(v, "io_uring") == 0)
    return ASOCK_BACKEND_IO_URING;
  if (strcmp(v, "readiness") == 0)
    return ASOCK_BACKEND_READINESS;
  return ASOCK_BACKEND_AUTO;
#endif
}

/* Sets the loop's backend up: the one the config asks for, or for
 * ASOCK_BACKEND_AUTO the one the environment asks for where it can run,
 * else the platform's own. 0, or ASOCK_ENOTSUP for a backend the config
 * asks for that cannot run here, or the error making it. */
static int backend_setup(asock_loop *loop, asock_backend asked) {
  int forced = asked != ASOCK_BACKEND_AUTO;
  asock_backend want = forced ? asked : env_backend();
  int err;

  loop->backend = native_backend();
  if (want == ASOCK_BACKEND_AUTO || want == loop->backend)
    return 0;
  if (want == ASOCK_BACKEND_IO_URING) {
#ifdef ASOCK_HAVE_URING
    err = asock__ring_create(loop);
    if (err == 0) {
      loop->backend = ASOCK_BACKEND_IO_URING;
      return 0;
    }
#else
    err = ASOCK_ENOTSUP;
#endif
  } else {
    err = ASOCK_ENOTSUP;
  }
  /* The environment only states a preference. */
  return forced ? err : 0;
}

asock_backend asock_loop_backend(const asock_loop *loop) {
  return loop == NULL ? ASOCK_BACKEND_AUTO : loop->backend;
}

const char *asock_backend_name(asock_backend backend) {
  switch (backend) {
  case ASOCK_BACKEND_AUTO:
    return "auto";
  case ASOCK_BACKEND_READINESS:
    return "readiness";
  case ASOCK_BACKEND_IOCP:
    return "iocp";
  case ASOCK_BACKEND_IO_URING:
    return "io_uring";
  }
  return "unknown";
}

int asock_loop_create(asock_loop **loop_out, asock_pool *pool,
                      uv_loop_t *uv_loop) {
  return asock_loop_create_config(loop_out, pool, uv_loop, NULL);
}

int asock_loop_create_config(asock_loop **loop_out, asock_pool *pool,
                             uv_loop_t *uv_loop,
                             const asock_loop_config *config) {
  asock_loop_config cfg;
  asock_loop *loop;
  int err;

  if (loop_out == NULL)
    return ASOCK_EINVAL;
  *loop_out = NULL;
  if (pool == NULL)
    return ASOCK_EINVAL;
  err = config_read(config, &cfg);
  if (err != 0)
    return err;
  asock__platform_init();
  loop = asock__calloc(1, sizeof(*loop));
  if (loop == NULL)
    return ASOCK_ENOMEM;
  loop->pool = pool;
  /* A loop keeps a few free slices for its own receives, so that the
   * receive-send-receive cycle of a connection takes and gives back its
   * slice without an atomic operation; a small pool is left to the pool. */
  loop->slice_cache_max = (unsigned int)(pool->slice_count / 16);
  if (loop->slice_cache_max > ASOCK__SLICE_CACHE)
    loop->slice_cache_max = ASOCK__SLICE_CACHE;
  loop->slice_give_max =
      (pool->flags & ASOCK_POOL_ZERO_ON_RELEASE) ? 0 : loop->slice_cache_max;
  loop->slice_quota = pool->socket_quota != 0 ? pool->socket_quota : SIZE_MAX;
  loop->slice_size = pool->slice_size;
  /* Within what one system call reads on every platform. */
  loop->read_len =
      pool->slice_size < 0x7fffffffu ? pool->slice_size : 0x7fffffffu;
  if (uv_loop == NULL) {
    err = asock__uv_loop_init(&loop->owned_uv);
    if (err != 0) {
      asock__free(loop);
      return asock__from_uv(err);
    }
    loop->owns_uv = 1;
    loop->uv = &loop->owned_uv;
  } else {
    loop->uv = uv_loop;
  }
  loop->thread = asock__thread_token();
  asock__store_u32(&loop->stop_requested, 0);
  asock__store_ptr(&loop->posted, NULL);
  asock__store_ptr(&loop->cancels, NULL);
  asock__store_ptr(&loop->tasks, NULL);

  /* None of these can fail on an initialised loop except the async handle,
   * which needs an eventfd or pipe: make it first so that a failure leaves
   * nothing else to undo. */
  err = asock__uv_async_init(loop->uv, &loop->async, on_async);
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
  asock__wheel_init(&loop->wheel, asock__now_ms());
  asock__store_u32_relaxed(&loop->slices_cached, 0);
  asock__store_u32_relaxed(&loop->slices_ringed, 0);
  err = backend_setup(loop, cfg.backend);
  if (err != 0) {
    uv_close((uv_handle_t *)&loop->idle, on_handle_closed);
    uv_close((uv_handle_t *)&loop->timer, on_handle_closed);
    uv_close((uv_handle_t *)&loop->async, on_handle_closed);
    while (loop->handles > 0)
      uv_run(loop->uv, UV_RUN_NOWAIT);
    if (loop->owns_uv)
      uv_loop_close(loop->uv);
    asock__free(loop);
    return err;
  }
  /* On the pool's list, for its statistics. */
  uv_mutex_lock(&pool->loops_lock);
  loop->pool_prev = NULL;
  loop->pool_next = pool->loops;
  if (pool->loops != NULL)
    pool->loops->pool_prev = loop;
  pool->loops = loop;
  uv_mutex_unlock(&pool->loops_lock);
  *loop_out = loop;
  return 0;
}

int asock_loop_run(asock_loop *loop, uv_run_mode mode) {
  if (loop == NULL)
    return ASOCK_EINVAL;
#ifdef ASOCK_HAVE_URING
  /* Refused before anything changes, the loop's thread included. */
  if (loop->ring != NULL && asock__ring_elsewhere(loop))
    return ASOCK_ETHREAD;
#endif
  /* Written only when it changes: other threads read it to decide whether
   * they are the loop's. */
  if (!asock__loop_on_thread(loop))
    loop->thread = asock__thread_token();
#ifdef ASOCK_HAVE_URING
  if (loop->ring != NULL)
    return asock__ring_run(loop, mode);
#endif
  return uv_run(loop->uv, mode);
}

int asock_loop_keep_alive(asock_loop *loop, int enable) {
  if (loop == NULL)
    return ASOCK_EINVAL;
  if (!asock__loop_on_thread(loop))
    return ASOCK_ETHREAD;
  /* The async handle is active for the loop's whole life: referenced, it
   * keeps uv_run() going until a stop. */
  if (enable)
    uv_ref((uv_handle_t *)&loop->async);
  else
    uv_unref((uv_handle_t *)&loop->async);
  return 0;
}

int asock_loop_stop(asock_loop *loop) {
  if (loop == NULL)
    return ASOCK_EINVAL;
  if (asock__loop_on_thread(loop)) {
    uv_stop(loop->uv);
    return 0;
  }
  asock__store_u32(&loop->stop_requested, 1);
  asock__wake(&loop->async);
  return 0;
}

/* Takes a closed loop off its pool's list: the statistics read it no more.
 * Its kept slices went back to the pool already (asock__loop_flush_slices()).
 */
static void unlist(asock_loop *loop) {
  asock_pool *pool = loop->pool;

  uv_mutex_lock(&pool->loops_lock);
  if (loop->pool_prev != NULL)
    loop->pool_prev->pool_next = loop->pool_next;
  else
    pool->loops = loop->pool_next;
  if (loop->pool_next != NULL)
    loop->pool_next->pool_prev = loop->pool_prev;
  uv_mutex_unlock(&pool->loops_lock);
}

int asock_loop_close(asock_loop *loop) {
  int spins;

  if (loop == NULL)
    return ASOCK_EINVAL;
  if (loop->callbacks > 0)
    return ASOCK_EBUSY;
  loop->closing = 1;
  /* Ops other threads handed over still get their one completion: started
   * now, they are cancelled with their sockets below. */
  loop->callbacks++;
  asock__loop_run_posted(loop);
  asock__loop_run_cancels(loop);
  loop->callbacks--;
  asock__loop_run_tasks(loop);
  {
    asock_socket *sock = loop->sockets;
    while (sock != NULL) {
      asock_socket *next = sock->next;
      /* One the application closed already only waits for its handle. */
      if ((sock->flags & ASOCK__SF_CLOSED) == 0)
        asock_socket_close(sock, 0);
      sock = next;
    }
  }
  /* The paused and lingering lists hold a reference to each socket on
   * them; a socket still lingering is reset. */
  resume_accepts(loop, 1);
  linger_sweep(loop, 1);
  /* Deliver every cancellation and let libuv close the handles. */
  for (spins = 0; loop->sockets != NULL || loop->deferred_head != NULL ||
                  loop->notify != NULL || loop->kicked != NULL;
       spins++) {
    uv_run(loop->uv, UV_RUN_NOWAIT);
    if (spins > 100000)
      return ASOCK_EBUSY;
  }
  /* File reads that sends of packets gave up end on the thread pool, however
   * long the disk takes: their completions wake the loop. */
  while (loop->file_reads > 0)
    uv_run(loop->uv, UV_RUN_ONCE);
  /* Sockets still waiting for a slice hold a reference each. */
  while (loop->waiters != NULL) {
    asock_socket *sock = loop->waiters;
    loop->waiters = sock->wait_link;
    sock->wait_link = NULL;
    sock->flags &= ~(ASOCK__SF_WAIT_SLICE | ASOCK__SF_SEND_WAITS);
    asock__socket_unref(sock);
  }
  asock__loop_flush_slices(loop);
#ifdef ASOCK_HAVE_URING
  if (loop->ring != NULL)
    asock__ring_close_handles(loop);
#endif
  uv_close((uv_handle_t *)&loop->idle, on_handle_closed);
  uv_close((uv_handle_t *)&loop->timer, on_handle_closed);
  uv_close((uv_handle_t *)&loop->async, on_handle_closed);
  while (loop->handles > 0)
    uv_run(loop->uv, UV_RUN_NOWAIT);
#ifdef ASOCK_HAVE_URING
  if (loop->ring != NULL)
    asock__ring_destroy(loop);
#endif
  /* Tasks posted while the sockets closed (from their ops' callbacks, say)
   * run too: a task is never left unrun. */
  while (asock__load_ptr(&loop->tasks) != NULL)
    asock__loop_run_tasks(loop);
  if (loop->owns_uv) {
    int err = uv_loop_close(loop->uv);
    if (err != 0)
      return asock__from_uv(err);
  }
  unlist(loop);
  asock__free(loop);
  return 0;
}

uv_loop_t *asock_loop_uv(const asock_loop *loop) {
  return loop == NULL ? NULL : loop->uv;
}

asock_pool *asock_loop_pool(const asock_loop *loop) {
  return loop == NULL ? NULL : loop->pool;
}

void asock__op_defer(asock_loop *loop, asock_op *op, int status) {
  /* An accept-receive waiting on the socket it took becomes its listener's
   * op again as it leaves that queue, which lets the listener go. */
  asock_socket *listener = op->listener;

  if (listener != NULL)
    asock__socket_ref(listener);
  asock__op_leave(loop, op);
  /* The op stays pending until its completion is delivered, and so
   * asock_cancel() and asock_op_socket() may still reach its socket, which
   * may close meanwhile: the socket stays allocated until then. */
  asock__socket_ref(op->socket);
  if (listener != NULL)
    asock__socket_unref(listener);
  /* Inside its delivery callback a multishot receive keeps the delivery's
   * results until the callback returns (asock__op_deliver()). */
  if (op->flags & ASOCK__OPF_DELIVERING)
    op->forced_status = status;
  else
    op->status = status;
  op->where = ASOCK__Q_DEFERRED;
  op->qnext = NULL;
  op->qprev = NULL;
  if (loop->deferred_tail != NULL)
    loop->deferred_tail->qnext = op;
  else
    loop->deferred_head = op;
  loop->deferred_tail = op;
  schedule_delivery(loop);
}

uint64_t asock__now_ms(void) { return uv_hrtime() / 1000000; }

void asock__loop_rewatch(asock_loop *loop, asock_op *op) {
  asock__wheel_remove(&loop->wheel, op);
  asock__wheel_add(&loop->wheel, op, asock__now_ms(), op->timeout_ms);
}

void asock__loop_watch_deadline(asock_loop *loop, asock_op *op) {
  uint64_t now;
  now = asock__now_ms();
  if (!loop->timer_running && loop->wheel.count == 0)
    asock__wheel_init(&loop->wheel, now);
  asock__wheel_add(&loop->wheel, op, now, op->timeout_ms);
  asock__loop_update_timer(loop);
}

void asock__loop_notify(asock_loop *loop, asock_socket *sock) {
  if (sock->flags & ASOCK__SF_NOTIFY)
    return;
  sock->flags |= ASOCK__SF_NOTIFY;
  asock__socket_ref(sock);
  sock->link = loop->notify;
  loop->notify = sock;
  schedule_delivery(loop);
}

void asock__loop_kick(asock_loop *loop, asock_socket *sock) {
  if (sock->flags & ASOCK__SF_KICKED)
    return;
  sock->flags |= ASOCK__SF_KICKED;
  asock__socket_ref(sock);
  sock->kick_link = loop->kicked;
  loop->kicked = sock;
  schedule_delivery(loop);
}
