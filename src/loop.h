/* The loop (src/loop.c), its timing wheel (src/wheel.c), its cache of free
 * slices (src/slices.c) and the hand-over of work from other threads
 * (src/handover.c). */
#ifndef ASOCK_LOOP_H
#define ASOCK_LOOP_H

#include "op.h"

/* ---- timing wheel (src/wheel.c) ---------------------------------------- */

#define ASOCK__WHEEL_SLOTS 256
/* The loop's tick: the wheel's resolution, and how often receives that
 * wait for a free slice try again. */
#define ASOCK__WHEEL_TICK_MS 4

/* Per-operation deadlines, in one wheel per loop. Slot i holds the ops due
 * in ticks congruent to i; an op due more than one turn ahead stays in its
 * slot and is skipped until its turn comes. Adding and removing are O(1). */
typedef struct asock__wheel {
  asock_op *slots[ASOCK__WHEEL_SLOTS];
  uint64_t next_tick; /* the first tick not yet swept */
  size_t count;
} asock__wheel;

void asock__wheel_init(asock__wheel *w, uint64_t now);
void asock__wheel_add(asock__wheel *w, asock_op *op, uint64_t now,
                      uint64_t timeout_ms);
void asock__wheel_remove(asock__wheel *w, asock_op *op);
/* Moves every op due at `now` out of the wheel into a list linked through
 * wnext, in deadline order within each tick, and returns its head. */
asock_op *asock__wheel_expire(asock__wheel *w, uint64_t now);

/* ---- loop (src/loop.c) ------------------------------------------------- */

/* The most buffers one batched write gathers. */
#define ASOCK__IOV_MAX 256
/* The most free slices one loop keeps for itself; see asock_loop. */
#define ASOCK__SLICE_CACHE 16

struct asock_loop {
  uv_loop_t *uv;
  asock_pool *pool;
  uv_idle_t idle;   /* delivers deferred completions */
  uv_timer_t timer; /* drives the wheel and slice-waiter retries */
  uv_async_t async; /* wakes the loop for asock_loop_stop() */
  asock__wheel wheel;
  asock_op *deferred_head; /* completions to deliver from the idle handle */
  asock_op *deferred_tail;
  asock_socket *notify;    /* sockets with a watermark change to report */
  asock_socket *waiters;   /* sockets waiting for a free slice */
  asock_socket *kicked;    /* sockets with datagrams read ahead for a
                            * multishot receive that just started, or a
                            * cancelled send of packets to end in order */
  size_t file_reads;       /* reads of sends of packets on the thread pool */
  asock_socket *paused;    /* listeners out of descriptors, until a tick */
  asock_socket *lingering; /* sockets closed with sends queued, lingering */
  asock_socket *sockets;   /* every socket not yet freed */
  uintptr_t thread;        /* asock__thread_token() of the loop's thread */
  asock__atomic_u32 stop_requested;
  asock__atomic_ptr posted;  /* ops started on other threads, newest first */
  asock__atomic_ptr cancels; /* ops cancelled on other threads */
  asock__atomic_ptr tasks;   /* asock_loop_post(), newest first */
  unsigned int handles;      /* asock's own handles still open */
  unsigned int callbacks;    /* depth of asock callbacks running now */
  unsigned int idle_runs;    /* times the idle handle ran */
  int owns_uv;
  int timer_running;
  int closing;
  uint32_t ticks; /* timer ticks so far, while the timer runs */
  uv_loop_t owned_uv;
  /* Free slices kept by the loop: written by its thread only, read by
   * asock_pool_stats_get() from any. */
  asock__atomic_u32 slices_cached;
  unsigned int slice_cache_max;
  /* slice_cache_max, or 0 when the pool erases what slices held
   * (ASOCK_POOL_ZERO_ON_RELEASE): asock__loop_give_slice() then leaves
   * every slice to its slow path, which erases it. */
  unsigned int slice_give_max;
  size_t slice_size;  /* the pool's */
  size_t read_len;    /* the most one read into a slice asks for */
  size_t slice_quota; /* the pool's socket_quota, SIZE_MAX for none */
  void *slice_cache[ASOCK__SLICE_CACHE];
  uv_buf_t iov[ASOCK__IOV_MAX]; /* scratch for one batched write */
  asock_loop *pool_next;        /* the pool's list of loops */
  asock_loop *pool_prev;
  asock_backend backend;    /* never ASOCK_BACKEND_AUTO */
  struct asock__ring *ring; /* ASOCK_BACKEND_IO_URING's (src/uring/) */
  /* Free slices the ring holds as the kernel's provided buffers: not in
   * use, as those of slice_cache. */
  asock__atomic_u32 slices_ringed;
};

/* asock_pool_acquire() without its checks, and without counting a
 * failure in the statistics. */
int asock__pool_take(asock_pool *pool, void **slice_out);
/* asock__loop_take_slice() when the loop keeps no free slice: from the
 * pool. */
int asock__loop_take_slice_slow(asock_loop *loop, void **slice);
/* Stops a listener taking connections for ASOCK_ACCEPT_PAUSE_MS after an
 * accept failed for want of descriptors or memory. Loop thread. */
void asock__loop_pause_accepts(asock_loop *loop, asock_socket *listener);

/* A slice for a receive on this loop: from the loop's own few free slices
 * when it has one (no atomic operation: see asock_pool.loops), else from
 * the pool. 0 or ASOCK_ENOBUFS. Loop thread; inline, as every message
 * takes one. */
static ASOCK__ALWAYS_INLINE int asock__loop_take_slice(asock_loop *loop,
                                                       void **slice) {
  uint32_t n = asock__load_u32_relaxed(&loop->slices_cached);
  if (ASOCK__LIKELY(n > 0)) {
    *slice = loop->slice_cache[n - 1];
    asock__store_u32_relaxed(&loop->slices_cached, n - 1);
    asock__unpoison(*slice, loop->pool->slice_size);
    return 0;
  }
  return asock__loop_take_slice_slow(loop, slice);
}

/* Gives a slice back: kept by the loop while it has room, else returned to
 * the pool. Loop thread. */
void asock__loop_give_slice_slow(asock_loop *loop, void *slice);
static ASOCK__ALWAYS_INLINE void asock__loop_give_slice(asock_loop *loop,
                                                        void *slice) {
  uint32_t n = asock__load_u32_relaxed(&loop->slices_cached);
  if (ASOCK__LIKELY(n < loop->slice_give_max)) {
    asock__poison(slice, loop->pool->slice_size);
    loop->slice_cache[n] = slice;
    asock__store_u32_relaxed(&loop->slices_cached, n + 1);
    return;
  }
  asock__loop_give_slice_slow(loop, slice);
}

/* Completes a pending op later, from the loop's idle handle: for completions
 * decided inside an API call, where the callback must not run. */
void asock__op_defer(asock_loop *loop, asock_op *op, int status);
/* Arms the op's deadline if it has a timeout. */
void asock__loop_watch_deadline(asock_loop *loop, asock_op *op);
/* Moves the deadline of an op in the wheel to its timeout from now. */
void asock__loop_rewatch(asock_loop *loop, asock_op *op);
static ASOCK__ALWAYS_INLINE void asock__loop_watch(asock_loop *loop,
                                                   asock_op *op) {
  if (op->timeout_ms != 0)
    asock__loop_watch_deadline(loop, op);
}
/* Runs the loop's timer while the wheel or the slice waiters need it. */
void asock__loop_update_timer(asock_loop *loop);
/* Queues a socket's watermark change for delivery from the idle handle. */
void asock__loop_notify(asock_loop *loop, asock_socket *sock);
/* Adds a socket to the list retried when slices may be free again. */
void asock__loop_wait_slice(asock_loop *loop, asock_socket *sock);
/* The same for the head send of packets, which needs a slice to read its
 * file into. */
void asock__loop_wait_slice_send(asock_loop *loop, asock_socket *sock);
/* Has the loop run a UDP socket's receives soon, from its idle handle: for
 * datagrams read ahead that no readiness report will name. */
void asock__loop_kick(asock_loop *loop, asock_socket *sock);
/* Puts a socket closed with sends queued on the lingering list, until its
 * linger time is up: 0, or -1 when no tick would end it (libuv refused the
 * timer), so that it must not linger. */
int asock__loop_linger(asock_loop *loop, asock_socket *sock);
static ASOCK__ALWAYS_INLINE int asock__loop_on_thread(const asock_loop *loop) {
  return asock__thread_token() == loop->thread;
}
/* Wakes the loop of an async handle, for work already handed to it. That
 * work cannot be taken back, and nothing else may wake the loop, so a wake
 * libuv refuses is tried again until it goes through. (libuv 1.44 never
 * refuses one: it aborts the process if the write behind it fails.) Any
 * thread. */
void asock__wake(uv_async_t *async);
/* Milliseconds on libuv's monotonic clock, read now: deadlines count from
 * the moment an op starts, not from the start of the loop iteration. */
uint64_t asock__now_ms(void);

/* The two halves of every operation start. `check` validates the socket and
 * op (everything but the op being idle); `start` runs the operation on an op
 * already moved to pending and returns ASOCK_PENDING, 0 (done, results in
 * the op) or a negative code (did not start). */
typedef int (*asock__start_fn)(asock_socket *sock, asock_op *op);

/* Starts an operation from any thread: on the loop's thread it checks,
 * moves the op to pending and starts it; from another thread it moves the
 * op to pending and hands it to the loop, which checks and starts it there
 * and reports every outcome through the callback. */
int asock__start(asock_socket *sock, asock_op *op, asock_op_kind kind,
                 asock__start_fn check, asock__start_fn start);

/* asock_cancel() from a thread other than the loop's: hands it over. */
int asock__cancel_from_thread(asock_op *op);
/* Starts the ops other threads handed over, if any, in posting order; their
 * outcomes are deferred, never delivered inside the calling asock call. */
void asock__loop_run_posted(asock_loop *loop);
/* The cancels and the tasks other threads handed over (src/handover.c). */
void asock__loop_run_cancels(asock_loop *loop);
void asock__loop_run_tasks(asock_loop *loop);
/* The sockets waiting for a slice try again; the loop's kept slices go back
 * to the pool (src/slices.c). */
void asock__loop_retry_waiters(asock_loop *loop);
void asock__loop_flush_slices(asock_loop *loop);

#endif /* ASOCK_LOOP_H */
