/* Declarations shared by asock's own source files. Nothing here is part of
 * the public API; the tests link the internal archive to reach it. */
#ifndef ASOCK_INTERNAL_H
#define ASOCK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "asan.h"
#include "asock.h"
#include "atomic.h"
#include "fault.h"
#include "platform.h"

/* For the few functions of the per-message path that the compiler would
 * otherwise leave out of line because of their size: inlined into their one
 * or two callers they cost about a tenth fewer instructions per message. */
#if defined(_MSC_VER)
#define ASOCK__ALWAYS_INLINE __forceinline
#elif defined(__GNUC__)
#define ASOCK__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ASOCK__ALWAYS_INLINE inline
#endif
/* Keeps a rarely taken path out of its caller. */
#if defined(_MSC_VER)
#define ASOCK__NOINLINE __declspec(noinline)
#elif defined(__GNUC__)
#define ASOCK__NOINLINE __attribute__((noinline))
#else
#define ASOCK__NOINLINE
#endif

/* A test the usual path fails, or passes: the compiler lays the rare branch
 * out of the way. */
#if defined(__GNUC__)
#define ASOCK__UNLIKELY(x) __builtin_expect((x) != 0, 0)
#define ASOCK__LIKELY(x) __builtin_expect((x) != 0, 1)
#else
#define ASOCK__UNLIKELY(x) ((x) != 0)
#define ASOCK__LIKELY(x) ((x) != 0)
#endif

/* Keeps a frequently written field on a cache line of its own. */
#define ASOCK__CACHE_LINE 64

/* ---- allocator (src/alloc.c) ------------------------------------------- */

/* Every allocation inside asock goes through these four. */
void *asock__malloc(size_t size);
void *asock__calloc(size_t count, size_t size);
void *asock__realloc(void *ptr, size_t size);
void asock__free(void *ptr);

/* ---- errors (src/errors.c) --------------------------------------------- */

/* Turns a libuv error into the asock code the application sees: the few
 * system codes asock has its own code for (ETIMEDOUT, ECANCELED, EOF,
 * ENOBUFS) are mapped to them; every other value passes through. */
int asock__from_uv(int uv_err);

/* ---- index stack (src/stack.c) ----------------------------------------- */

/* A lock-free LIFO of the indices 0..count-1, the free list behind both the
 * slices and the ops of a pool. The head packs a 32-bit ABA tag above the
 * top index plus one (0 is empty); `held` marks the indices out of the stack
 * so that a double release is detected instead of corrupting the list. */
typedef struct asock__stack {
  asock__atomic_u64 head;
  char pad_[ASOCK__CACHE_LINE - sizeof(asock__atomic_u64)];
  asock__atomic_u32 *next;
  asock__atomic_u32 *held;
  uint32_t count;
} asock__stack;

/* Allocates next[] and held[] and pushes every index, 0 on top. */
int asock__stack_init(asock__stack *s, uint32_t count);
void asock__stack_free(asock__stack *s);
/* Pops an index into *index: 0, or ASOCK_ENOBUFS when empty. */
int asock__stack_pop(asock__stack *s, uint32_t *index);
/* Pushes a held index back: 0, or ASOCK_ENOTHELD if it is not held. */
int asock__stack_push(asock__stack *s, uint32_t index);
/* 1 if the index is out of the stack. */
int asock__stack_is_held(const asock__stack *s, uint32_t index);

/* ---- memory region (src/unix/region.c, src/win/region.c) --------------- */

/* The pool's slices live in one region mapped straight from the OS, with an
 * inaccessible guard page on each side. */
typedef struct asock__region {
  unsigned char *base; /* first usable byte, page-aligned */
  size_t len;          /* usable bytes, a multiple of the page size */
  void *mapping;       /* the whole mapping, guards included */
  size_t mapping_len;
  int locked;
  asock_huge_pages huge_pages;
} asock__region;

/* Maps at least len usable bytes. flags are the pool's ASOCK_POOL_LOCK and
 * ASOCK_POOL_HUGE_PAGES; what the OS refuses is left out and recorded in
 * the region. Returns 0 or ASOCK_ENOMEM. */
int asock__region_map(asock__region *r, size_t len, unsigned int flags);
void asock__region_unmap(asock__region *r);
size_t asock__page_size(void);

/* Test hook: ASOCK_POOL_LOCK and ASOCK_POOL_HUGE_PAGES bits set here make
 * the platform code behave as if the OS refused them, so that the fallback
 * can be tested on a machine where they succeed. */
extern unsigned int asock__region_refuse;

/* ---- completion ordering (src/seq.c) ----------------------------------- */

/* Test hook: called by asock_seq_pop() while it holds the stream, so that a
 * test can show deterministically what a second consumer meets. NULL
 * outside tests. */
extern void (*asock__seq_pop_hook)(asock_seq *seq);

/* ---- pool (src/pool.c) ------------------------------------------------- */

struct asock_pool {
  asock__stack slices; /* free slices; its head has a cache line of its own */
  asock__stack free_ops;
  asock__atomic_u64 slices_in_use;
  asock__atomic_u64 slices_high_water;
  asock__atomic_u64 slices_failed;
  asock__atomic_u64 ops_in_use;
  asock__atomic_u64 ops_high_water;
  asock__atomic_u64 ops_failed;
  asock__region region;
  size_t slice_size;
  size_t slice_count;
  size_t op_count;
  size_t socket_quota;
  unsigned int flags;
  asock_op *ops; /* the fixed array of op_count ops */
  /* Per slice, the socket whose quota an application-owned slice counts
   * against (asock_op_detach_slice()), until asock_pool_release(); NULL
   * for every other slice. */
  asock__atomic_ptr *owners;
  /* The loops over the pool, linked through pool_next and pool_prev. Each
   * keeps a few free slices of its own (asock_loop.slices_cached), which
   * the statistics count as free: they are summed over the loops when
   * asked for, so that a loop takes and gives them without an atomic
   * operation. */
  uv_mutex_t loops_lock;
  struct asock_loop *loops;
};

/* Finds the index of the slice that starts at p: 0, ASOCK_ENOTSLICE or
 * ASOCK_EMIDSLICE. */
int asock__pool_slice_index(const asock_pool *pool, const void *p,
                            uint32_t *index);

/* ---- operation objects (src/op.c) -------------------------------------- */

enum { ASOCK__OP_IDLE = 0, ASOCK__OP_PENDING = 1 };

/* An IPv4 or IPv6 address, in the room it needs (sockaddr_storage takes
 * 128 bytes). */
typedef union asock__sockaddr {
  struct sockaddr sa;
  struct sockaddr_in in;
  struct sockaddr_in6 in6;
} asock__sockaddr;

/* One address asock_connect_host() tried, and how it ended. */
typedef struct asock__attempt {
  asock__sockaddr addr;
  int error;
} asock__attempt;

/* Op flags. */
/* Its slice came from a buffer-less receive. */
#define ASOCK__OPF_ON_DEMAND 0x2u
#define ASOCK__OPF_HAS_REMOTE 0x4u
/* An accept that takes the connection without making a socket of it (a
 * loop group hands it to another loop): op->conn. */
#define ASOCK__OPF_RAW_ACCEPT 0x8u
/* Receives started on the op stay posted (asock_op_set_multishot()). */
#define ASOCK__OPF_MULTISHOT 0x10u
/* A multishot receive's delivery callback runs: the op is pending, and
 * its results are the delivery's. An end decided meanwhile (a cancel, the
 * socket's close) is recorded in forced_status and end_seq and takes
 * effect when the callback returns. */
#define ASOCK__OPF_DELIVERING 0x20u
/* The op ended during its delivery callback. */
#define ASOCK__OPF_ENDED 0x40u
/* An accept that also receives the new connection's first bytes
 * (asock_accept_receive()). */
#define ASOCK__OPF_ACCEPT_RECV 0x80u
/* A send of packets found that sendfile() does not take its file: the
 * file's bytes are read into slices. */
#define ASOCK__OPF_NO_SENDFILE 0x100u

struct asock_op {
  asock_pool *pool;
  asock__atomic_u32 state; /* ASOCK__OP_IDLE or ASOCK__OP_PENDING */
  uint32_t index;          /* position in pool->ops */
  asock_op_kind kind;
  asock_buffer_mode mode;
  unsigned int flags;
  unsigned char sync;   /* the last operation completed synchronously */
  unsigned char handed; /* started on the loop for another thread: a
                         * synchronous end leaves it pending, as its
                         * callback is still to come */
  int status;
  unsigned char *mem; /* the buffer's memory: a slice or the caller's */
  size_t mem_len;
  size_t offset; /* the window inside mem */
  size_t count;
  const asock_buf *bufs; /* gather list, used instead of the window */
  size_t nbufs;
  size_t bytes; /* bytes transferred */
  void *user_data;
  asock_op_cb cb;
  asock_socket *socket;
  asock_socket *accepted;
  asock_socket *listener; /* an accept-receive waiting for the first bytes
                           * in the queue of the socket it took: its
                           * listener, referenced */
  uint64_t seq;
  uint64_t timeout_ms;
  struct sockaddr_storage remote;
  uintptr_t conn;         /* a raw accept's connection */
  unsigned int msg_flags; /* ASOCK_MSG_* of the last datagram received */
  unsigned int ifindex;   /* receive-message-from: the interface */
  asock__sockaddr local;  /* receive-message-from: the destination */

  /* Below: what the loop keeps while the op is pending. */
  asock_op *qnext; /* the queue the op waits in (see `where`) */
  asock_op *qprev;
  asock_op *wnext; /* the timing wheel's slot */
  asock_op *wprev;
  uint64_t deadline;     /* uv_now() value at which the op times out */
  unsigned char where;   /* ASOCK__Q_* */
  unsigned short wslot;  /* wheel slot plus one; 0 when not in the wheel */
  int forced_status;     /* status to complete with, set by a cancel or timeout
                          * while libuv still holds the request, or while a
                          * multishot receive's delivery callback runs */
  uint64_t end_seq;      /* a multishot receive that ended during a delivery:
                          * the sequence number of its final completion */
  size_t total;          /* bytes a send must move */
  size_t sent;           /* bytes of it the kernel has taken */
  size_t write_bytes;    /* bytes in the uv_write now in flight */
  asock_socket *charged; /* socket whose quota the op's slice counts in */
  asock_op *post_next;   /* the loop's list of ops posted from other threads */
  asock_op *cancel_next; /* the loop's list of cancels from other threads */
  asock__atomic_u32 cancel_req; /* a cancel from another thread is queued */
  asock_socket *cancel_sock;    /* the socket that cancel holds a ref on */
  char *host;                   /* connect_host: the name to resolve, a copy */
  unsigned short port;
  const asock_packet *packets; /* asock_op_set_packets(): the list */
  size_t npackets;
  size_t packets_total; /* and its bytes */
  size_t pk_index;      /* a send of packets: the piece op->sent is in */
  uint64_t pk_start;    /* and where it starts in the send's stream */
  void *chunk;          /* a slice holding file bytes of the current piece */
  uint64_t chunk_at;    /* where they start in the send's stream */
  size_t chunk_len;     /* how many */
  struct asock__file_read *fs; /* the file read, made for the op's first */
  struct addrinfo *ai_head;    /* connect_host: the resolved list */
  struct addrinfo *ai_next;    /* and the next address to try */
  asock__attempt *attempts;    /* connect_host: the addresses tried, kept until
                                * the op's next connect or its release */
  unsigned int nattempts;
  union {
    uv_write_t write;
    uv_connect_t connect;
    uv_shutdown_t shutdown;
    uv_getaddrinfo_t getaddrinfo;
  } req;
};

/* Where a pending op waits. */
enum {
  ASOCK__Q_NONE = 0,
  ASOCK__Q_RECV,       /* socket's receive (or accept) queue */
  ASOCK__Q_SEND,       /* socket's send queue */
  ASOCK__Q_DEFERRED,   /* loop's list of completions to deliver */
  ASOCK__Q_LIBUV,      /* a libuv request (connect, shutdown, resolve) */
  ASOCK__Q_DISCONNECT, /* socket's disconnect slot, waiting for its sends */
  ASOCK__Q_STARTING    /* a shutdown inside its starting call */
};

/* The bytes an op's window or buffer list covers (asock_op_set_buffer_list()
 * refuses lists whose sum would wrap). */
static inline size_t asock__op_total(const asock_op *op) {
  size_t total = 0;
  size_t i;
  if (op->nbufs == 0)
    return op->count;
  for (i = 0; i < op->nbufs; i++)
    total += op->bufs[i].len;
  return total;
}

/* What asock_op_set_buffer_list() demands of a list's entries, checked
 * again when a send starts, as the application may change them between
 * sends: 0, ASOCK_EINVAL (no memory for a length) or ASOCK_EBOUNDS (the
 * lengths add up past SIZE_MAX). */
int asock__bufs_check(const asock_buf *bufs, size_t nbufs);

/* Resets an op to the state asock_op_acquire() promises. */
void asock__op_reset(asock_op *op);

/* Moves an idle op to pending for an operation of this kind on this socket,
 * clearing the previous result: 0, or ASOCK_EBUSY if it is already pending.
 * The check and the move are one atomic step, so two threads starting the
 * same op cannot both succeed. These four run on every operation: inline. */
static ASOCK__ALWAYS_INLINE int
asock__op_begin(asock_op *op, asock_op_kind kind, asock_socket *socket) {
  uint32_t expected = ASOCK__OP_IDLE;

  if (!asock__cas_u32(&op->state, &expected, ASOCK__OP_PENDING))
    return ASOCK_EBUSY;
  op->kind = kind;
  op->socket = socket;
  op->status = 0;
  op->bytes = 0;
  op->sync = 0;
  return 0;
}

/* Returns an op that asock__op_begin() moved to pending to idle, when the
 * operation turned out not to start after all. */
static inline void asock__op_unbegin(asock_op *op) {
  op->kind = ASOCK_OP_NONE;
  op->socket = NULL;
  asock__store_u32(&op->state, ASOCK__OP_IDLE);
}

/* Ends an operation inside the call that started it: the op is idle again,
 * marked synchronous, and no callback runs. */
static ASOCK__ALWAYS_INLINE void asock__op_finish_sync(asock_op *op, int status,
                                                       size_t bytes) {
  op->status = status;
  op->bytes = bytes;
  op->sync = 1;
  /* An op another thread handed over stays pending until its callback:
   * idle even for a moment, it could be started again by that thread
   * while its completion is still queued. */
  if (!op->handed)
    asock__store_u32(&op->state, ASOCK__OP_IDLE);
}

/* Ends a pending operation: the op is idle again, then its callback runs.
 * Only the loop thread calls this. */
static ASOCK__ALWAYS_INLINE void
asock__op_finish_async(asock_op *op, int status, size_t bytes) {
  asock_op_cb cb = op->cb;

  op->status = status;
  op->bytes = bytes;
  /* What forced this end belongs to it alone: the op's next operation
   * starts without it. */
  op->forced_status = 0;
  /* Idle before the callback, so that the callback may start the op again. */
  asock__store_u32(&op->state, ASOCK__OP_IDLE);
  if (cb != NULL)
    cb(op);
}

/* Returns the op's slice, if it holds one, to the pool. */
void asock__op_drop_slice(asock_op *op);

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

/* ---- sockets (src/tcp*.c) ---------------------------------------------- */

/* TCP options the application set before its socket had an OS socket:
 * kept until one is made (bind, listen or connect), which the platform sets
 * them on before anything else. */
#define ASOCK__OPT_NODELAY 0x1u
#define ASOCK__OPT_KEEPALIVE 0x2u
#define ASOCK__OPT_KEEPPROBES 0x4u
#define ASOCK__OPT_SNDBUF 0x8u
#define ASOCK__OPT_RCVBUF 0x10u
typedef struct asock__tcp_options {
  unsigned int set; /* ASOCK__OPT_* */
  int nodelay;
  int keepalive;
  unsigned int keep_idle;
  unsigned int keep_interval;
  unsigned int keep_count;
  int sndbuf;
  int rcvbuf;
} asock__tcp_options;

/* Socket flags. */
#define ASOCK__SF_LISTENING 0x0001u
#define ASOCK__SF_CONNECTED 0x0002u
#define ASOCK__SF_CONNECTING 0x0004u
/* uv_read_start() is in force. */
#define ASOCK__SF_READING 0x0008u
/* The last read found no more data. */
#define ASOCK__SF_DRAINED 0x0010u
/* asock_socket_close() was called. */
#define ASOCK__SF_CLOSED 0x0020u
/* uv_close() was called on the handle. */
#define ASOCK__SF_HANDLE_GONE 0x0040u
/* Receives wait for a free slice. */
#define ASOCK__SF_WAIT_SLICE 0x0080u
/* Queued sends reached the high mark. */
#define ASOCK__SF_ABOVE_HIGH 0x0100u
/* On the loop's notify list. */
#define ASOCK__SF_NOTIFY 0x0200u
/* The sending side is shut down, or will be once the queued sends are out
 * (a shutdown or a disconnect): nothing more may be sent. */
#define ASOCK__SF_SHUTDOWN 0x0400u
/* A uv_write is in flight. */
#define ASOCK__SF_WRITING 0x0800u
/* The application was told "above". */
#define ASOCK__SF_REPORTED_HIGH 0x1000u
/* Handle closed to retry a connect. */
#define ASOCK__SF_REINIT 0x2000u
/* asock_connect_host() waits for the resolver. */
#define ASOCK__SF_RESOLVING 0x4000u
/* libuv's close callback ran: the handle is gone for good. */
#define ASOCK__SF_HANDLE_CLOSED 0x8000u
/* A UDP socket (struct asock__udp_socket). */
#define ASOCK__SF_UDP 0x10000u
/* The socket has its OS socket, bound to a local address (a UDP socket's
 * bind or connect, a TCP socket's asock_tcp_bind()). */
#define ASOCK__SF_BOUND 0x20000u
/* A multishot receive is in the receive queue: no receive may be queued
 * behind it, as it has no last delivery to complete before. */
#define ASOCK__SF_MULTISHOT 0x40000u
/* On the loop's kicked list. */
#define ASOCK__SF_KICKED 0x80000u
/* asock_socket_set_linger() turned lingering on. */
#define ASOCK__SF_LINGER 0x100000u
/* A listener that ran out of descriptors or memory, on the loop's paused
 * list until its resume tick. */
#define ASOCK__SF_PAUSED 0x200000u
/* Closed by the application while sends were queued, lingering: on the
 * loop's lingering list until they are out or its linger time is up. */
#define ASOCK__SF_LINGERING 0x400000u
/* The thread pool reads a file into a slice for the head send of packets:
 * its sends go on when the read is done, unless it is given up. */
#define ASOCK__SF_FILE_READ 0x800000u
/* The head send of packets waits for a free slice (on the loop's waiters
 * list, which ASOCK__SF_WAIT_SLICE alone means a receive waits on). */
#define ASOCK__SF_SEND_WAITS 0x1000000u
/* send_error is set: sends complete with it at once. A flag as well, so
 * that a send's one test of the flags sees it. */
#define ASOCK__SF_SEND_FAILED 0x2000000u

struct asock_socket {
  asock__io io; /* first, so that a handle pointer is the socket */
  asock_loop *loop;
  asock_op *recv_head; /* receives, or accepts on a listener */
  asock_op *recv_tail;
  asock_op *send_head;
  asock_op *send_tail;
  asock_socket *next; /* the loop's list of sockets */
  asock_socket *prev;
  asock_socket *link;        /* the loop's notify list */
  asock_socket *wait_link;   /* the loop's slice-waiter list; a listener's
                              * paused list */
  asock_socket *kick_link;   /* the loop's kicked list */
  asock_socket *linger_link; /* the loop's lingering list */
  asock_op *disconnect;      /* the pending disconnect or shutdown, if any */
  asock__tcp_options *opts;  /* options set before the OS socket was made,
                              * until the socket connects or listens */
  asock_op *connect;         /* the pending connect, if any */
  void *user_data;
  asock_watermark_cb watermark_cb;
  /* The next sequence numbers, one counter per direction so that each
   * stream of numbers has no gaps: receives, receive-froms and accepts
   * draw from recv_seq; sends, send-tos, connects and disconnects from
   * send_seq. Both start at 1. */
  uint64_t recv_seq;
  uint64_t send_seq;
  size_t send_queued;
  size_t send_low;
  size_t send_high;
  size_t send_cap;
  /* References (the application, the handle, posted ops, lists, and one per
   * charged slice) in the low 32 bits; charged slices in the high 32, so
   * that charging a slice is one atomic operation. */
  asock__atomic_u64 refs;
  int read_error;       /* sticky: ASOCK_EOF or the error that ended reading */
  int send_error;       /* sticky: the error that ended sending */
  uint32_t resume_tick; /* a paused listener's: the loop's tick to resume
                         * accepting at */
  uint32_t linger_s;    /* asock_socket_set_linger()'s time */
  uint32_t linger_tick; /* a lingering socket's: the loop's tick to give up
                         * and reset the connection at */
  uint32_t flags;
};

/* Whether an op of this kind draws its number from the receive counter
 * (receives, receive-froms, accepts) or the send counter (the rest). */
static inline int asock__kind_receives(asock_op_kind kind) {
  return kind == ASOCK_OP_RECEIVE || kind == ASOCK_OP_RECEIVEFROM ||
         kind == ASOCK_OP_RECEIVEMESSAGEFROM || kind == ASOCK_OP_ACCEPT;
}
/* Takes the next sequence number of the counter an op of `kind` draws
 * from. */
static inline uint64_t asock__socket_next_seq(asock_socket *sock,
                                              asock_op_kind kind) {
  return asock__kind_receives(kind) ? sock->recv_seq++ : sock->send_seq++;
}

/* The loop-thread half of asock__start(): check, move to pending, start. */
static ASOCK__ALWAYS_INLINE int
asock__start_here(asock_socket *sock, asock_op *op, asock_op_kind kind,
                  asock__start_fn check, asock__start_fn start) {
  int err = check(sock, op);
  if (err == 0)
    err = asock__op_begin(op, kind, sock);
  if (err != 0)
    return err;
  err = start(sock, op);
  if (err < 0)
    asock__op_unbegin(op);
  return err;
}

/* asock__start() for the public functions: the common case, on the loop's
 * thread with nothing handed over from other threads, is inlined where
 * check and start are known, without indirect calls. A pending op is busy
 * whatever the other arguments say, so that the one mistake of starting it
 * again always gets the one answer. */
static ASOCK__ALWAYS_INLINE int
asock__start_fast(asock_socket *sock, asock_op *op, asock_op_kind kind,
                  asock__start_fn check, asock__start_fn start) {
  if (op != NULL && asock__load_u32(&op->state) != ASOCK__OP_IDLE)
    return ASOCK_EBUSY;
  if (sock != NULL && asock__loop_on_thread(sock->loop) &&
      asock__load_ptr(&sock->loop->posted) == NULL)
    return asock__start_here(sock, op, kind, check, start);
  return asock__start(sock, op, kind, check, start);
}

/* One charged slice in asock_socket.refs: a reference and a slice. */
#define ASOCK__REF_SLICE (((uint64_t)1 << 32) + 1)

/* Frees a socket nothing references any more. */
void asock__socket_free(asock_socket *sock);
/* Takes one reference. Any thread. */
static inline void asock__socket_ref(asock_socket *sock) {
  asock__add_u64(&sock->refs, 1);
}
/* Drops `amount` (1, or ASOCK__REF_SLICE); the last reference frees the
 * socket. Any thread. */
static ASOCK__ALWAYS_INLINE void asock__socket_release(asock_socket *sock,
                                                       uint64_t amount) {
  uint64_t old = asock__add_u64(&sock->refs, (uint64_t)0 - amount);
  if (((old - amount) & 0xffffffffu) == 0)
    asock__socket_free(sock);
}
static inline void asock__socket_unref(asock_socket *sock) {
  asock__socket_release(sock, 1);
}
/* The slices charged to the socket now. Any thread. */
static inline uint32_t asock__socket_slices(const asock_socket *sock) {
  return (uint32_t)(asock__load_u64(&sock->refs) >> 32);
}
/* Takes a slice from the loop for one of the socket's receives and charges
 * it to the socket: 0, ASOCK_EQUOTA (the socket holds its quota) or
 * ASOCK_ENOBUFS. Loop thread. */
static inline int asock__socket_take_slice(asock_socket *sock, void **slice) {
  asock_pool *pool = sock->loop->pool;

  if (pool->socket_quota != 0 &&
      asock__socket_slices(sock) >= pool->socket_quota)
    return ASOCK_EQUOTA;
  if (asock__loop_take_slice(sock->loop, slice) != 0)
    return ASOCK_ENOBUFS;
  asock__add_u64(&sock->refs, ASOCK__REF_SLICE);
  return 0;
}
/* A receive that takes a slice on demand: no buffer, or the slice an
 * earlier on-demand receive left in the op. */
static ASOCK__ALWAYS_INLINE int asock__op_wants_slice(const asock_op *op) {
  /* ASOCK__OPF_ON_DEMAND is only ever set on an op holding a slice. */
  return (op->flags & ASOCK__OPF_ON_DEMAND) != 0 ||
         op->mode == ASOCK_BUFFER_NONE;
}
/* Closes the handle, if it is open, and cancels every pending op with
 * `status` (ASOCK_ECANCELED, or ASOCK_ETIMEDOUT for the op that timed out).
 * Used by asock_socket_close() and for internal aborts. */
void asock__socket_shut(asock_socket *sock, int abortive);
/* What the option and address functions check: 0, or the error to return
 * (ASOCK_ENOTCONN before the socket has its OS socket). */
int asock__socket_check_os(const asock_socket *sock);
/* Checks what every operation start checks; 0 or the error to return. */
static inline int asock__socket_check_op(const asock_socket *sock,
                                         const asock_op *op) {
  if (sock == NULL || op == NULL)
    return ASOCK_EINVAL;
  if (op->pool != sock->loop->pool)
    return ASOCK_EFOREIGN;
  if (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE_GONE))
    return ASOCK_ECLOSED;
  return 0;
}
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
static inline void asock__op_done(asock_op *op, int status, size_t bytes) {
  asock_loop *loop = op->socket->loop;

  asock__op_leave(loop, op);
  op->where = ASOCK__Q_NONE;
  loop->callbacks++;
  asock__op_finish_async(op, status, bytes);
  loop->callbacks--;
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

int asock__accept_check(asock_socket *sock, asock_op *op);
int asock__accept_start(asock_socket *sock, asock_op *op);
/* The connection an accept-receive took ended before sending anything: it
 * is closed, and the op waits on its listener again. */
void asock__accept_no_data(asock_op *op);
/* An accept-receive's first read on the socket it took: 1 when bytes came
 * (*bytes, and the window of an op without a buffer covers them), 0 when
 * it must wait (the op then holds no slice it took), or ASOCK_EOF or the
 * error that ended the connection first. */
int asock__recv_first(asock_socket *sock, asock_op *op, size_t *bytes);
/* Puts an op in a socket's receive queue as a receive that waits. */
void asock__recv_wait(asock_socket *sock, asock_op *op);
int asock__connect_check(asock_socket *sock, asock_op *op);
int asock__connect_start(asock_socket *sock, asock_op *op);
int asock__connect_host_start(asock_socket *sock, asock_op *op);
int asock__send_check(asock_socket *sock, asock_op *op);
int asock__send_start(asock_socket *sock, asock_op *op);
int asock__disconnect_check(asock_socket *sock, asock_op *op);
int asock__disconnect_start(asock_socket *sock, asock_op *op);
int asock__shutdown_check(asock_socket *sock, asock_op *op);
int asock__shutdown_start(asock_socket *sock, asock_op *op);
int asock__recv_check(asock_socket *sock, asock_op *op);
int asock__recv_start(asock_socket *sock, asock_op *op);

/* Binds (unless addr is NULL: bound before) and listens, without checking
 * the arguments; flags are ASOCK_LISTEN_* and ASOCK__LISTEN_*. */
int asock__tcp_listen(asock_socket *sock, const struct sockaddr *addr,
                      int backlog, unsigned int flags);
/* The options set before the socket had an OS socket are on it now, and on
 * any it makes again: they are let go. */
void asock__socket_options_done(asock_socket *sock);
/* Internal listen flags. SO_REUSEPORT, for a loop group's listeners that
 * the kernel balances between (Linux). */
#define ASOCK__LISTEN_REUSEPORT 0x100u
/* A listener whose connections are handed to other loops: its accept ops
 * with ASOCK__OPF_RAW_ACCEPT get a connection any loop can adopt with
 * asock__io_adopt(NULL, client, conn), in op->conn. */
#define ASOCK__LISTEN_HANDOFF 0x200u
/* Makes a socket of `size` bytes (an asock_socket first in it): for TCP
 * sizeof(asock_socket), for UDP sizeof(asock__udp_socket), with `flags`
 * (ASOCK__SF_UDP) set before asock__io_init() sees it. */
int asock__socket_new(asock_loop *loop, size_t size, uint32_t flags,
                      asock_socket **sock_out);
/* asock_tcp_create() and asock_udp_create(): the checks of an application's
 * request for a socket, then asock__socket_new(). */
int asock__socket_create(asock_socket **sock_out, asock_loop *loop, size_t size,
                         uint32_t flags);
/* The handle was closed to retry a connect with the next address. */
void asock__connect_reinit(asock_socket *sock);
/* Cancels the socket's pending connect, if any (with ASOCK_ECANCELED unless
 * a status is forced already). */
void asock__connect_cancel(asock_socket *sock);
/* Send side: unlinks a send that has not started and uncounts its bytes. */
void asock__send_unqueue(asock_socket *sock, asock_op *op);

/* The bytes an op ended early reports: a stream send's progress, else 0. */
static inline size_t asock__op_sent(const asock_op *op) {
  return op->kind == ASOCK_OP_SEND || op->kind == ASOCK_OP_SENDPACKETS
             ? op->sent
             : 0;
}

/* Sends of packets (src/tcp-packets.c). A file range's read on libuv's
 * thread pool: it fills `slice` for `op`, or, once the op gave it up (its
 * socket closed, or it was cancelled), ends on its own, giving the slice
 * back and freeing itself. */
typedef struct asock__file_read {
  uv_fs_t req;
  asock_op *op; /* NULL once given up */
  asock_loop *loop;
  void *slice;
} asock__file_read;
/* What packets_step() found: */
#define ASOCK__PK_DONE 0  /* every byte is on the wire */
#define ASOCK__PK_WRITE 2 /* the kernel is full: wait for writability */
#define ASOCK__PK_READ 3  /* a file range's bytes are to be read first */
/* Sends what can go now of the head send of packets: ASOCK__PK_* or the
 * error that ended it (ASOCK_EOF for a file shorter than its range). */
int asock__packets_step(asock_socket *sock, asock_op *op);
/* Starts reading the current file range into a slice (0, also when it
 * waits for a free slice), or the error. */
int asock__packets_read(asock_socket *sock, asock_op *op);
/* The read finished with status (0, ASOCK_EOF, an error). (tcp-send.c) */
void asock__packets_read_done(asock_socket *sock, asock_op *op, int status);
/* Appends the bytes of a send of packets that are in memory now (its
 * memory pieces, and a file range's slice) to iov[n..max): the new n. */
unsigned int asock__packets_iov(asock_op *op, uv_buf_t *iov, unsigned int n,
                                unsigned int max, size_t *bytes);
/* The bytes the kernel took are counted in op->sent: a slice whose bytes
 * are all sent goes back. */
void asock__packets_took(asock_op *op);
/* A send of packets ends: its slice goes back. */
void asock__packets_end(asock_op *op);
/* The head send of packets gives up the read it has on the thread pool. */
void asock__packets_abandon(asock_socket *sock);
/* Sends the socket's queue on after a send of packets got a slice, or was
 * cancelled while it waited (loop thread, inside a libuv callback). */
void asock__send_resume(asock_socket *sock);
int asock__packets_check(asock_socket *sock, asock_op *op);
int asock__packets_start(asock_socket *sock, asock_op *op);
/* Send side: reports a crossing of the watermarks. */
void asock__send_check_marks(asock_socket *sock);

/* The timing wheel found this op due. */
void asock__op_expired(asock_op *op);
/* Receive side: resumes reading for a socket that waited for a slice. */
void asock__recv_retry(asock_socket *sock);
/* Send side: completes every queued send with status. */
void asock__send_fail_all(asock_socket *sock, int status);
/* Send side: called when the send queue empties, for a waiting disconnect. */
void asock__send_drained(asock_socket *sock);
/* Cancels a pending op of the given socket. */
int asock__socket_cancel(asock_socket *sock, asock_op *op);

/* ---- UDP (src/udp.c, src/udp-recv.c) ----------------------------------- */

/* The most datagrams one receive system call reads (recvmmsg on Linux; the
 * other platforms read one at a time). */
#define ASOCK__UDP_BATCH 8

/* One datagram of a batched receive: where it goes, and what the platform
 * reports of it. The addresses are written in place: into the op, or into
 * the slot that keeps a datagram read ahead. */
typedef struct asock__dgram {
  char *base; /* the buffer */
  size_t len;
  asock__sockaddr *from;  /* the sender goes here */
  asock__sockaddr *local; /* the destination goes here (family 0 when the
                           * kernel gave none); NULL: not wanted */
  unsigned int *ifindex;  /* with local: the interface, 0 if unknown */
  size_t bytes;           /* out: the bytes that fit */
  unsigned int flags;     /* out: ASOCK_MSG_TRUNCATED */
} asock__dgram;

/* The IPv4-mapped IPv6 form of an IPv4 address (::ffff:a.b.c.d), as a
 * dual-stack socket names its IPv4 peers. */
static inline void asock__map_ipv4(const struct in_addr *in,
                                   unsigned short port, asock__sockaddr *out) {
  unsigned char *a = (unsigned char *)&out->in6.sin6_addr;
  memset(out, 0, sizeof(*out));
  out->in6.sin6_family = AF_INET6;
  out->in6.sin6_port = port;
  a[10] = 0xff;
  a[11] = 0xff;
  memcpy(a + 12, in, 4);
}

/* Records the destination and interface a datagram's packet information
 * gave (the port is the socket's, in network order). On an IPv6 socket
 * (`family`) an IPv4 destination is given IPv4-mapped, as its sender is,
 * whichever kind of packet information the kernel wrote. */
static inline void asock__dgram_local4(asock__dgram *d,
                                       const struct in_addr *addr,
                                       unsigned short port,
                                       unsigned int ifindex, int family) {
  if (family == AF_INET6) {
    asock__map_ipv4(addr, port, d->local);
  } else {
    memset(d->local, 0, sizeof(*d->local));
    d->local->in.sin_family = AF_INET;
    d->local->in.sin_addr = *addr;
    d->local->in.sin_port = port;
  }
  *d->ifindex = ifindex;
}
static inline void asock__dgram_local6(asock__dgram *d,
                                       const struct in6_addr *addr,
                                       unsigned short port,
                                       unsigned int ifindex) {
  memset(d->local, 0, sizeof(*d->local));
  d->local->in6.sin6_family = AF_INET6;
  d->local->in6.sin6_addr = *addr;
  d->local->in6.sin6_port = port;
  *d->ifindex = ifindex;
}

/* A datagram read ahead, in a slice charged to the socket. */
typedef struct asock__udp_kept {
  void *slice;
  size_t bytes;
  unsigned int flags;
  unsigned int ifindex;
  asock__sockaddr from;
  asock__sockaddr local;
} asock__udp_kept;

/* A UDP socket: the socket, and the datagrams read ahead of the receives,
 * waiting for the next receives. A read happens only once those are all
 * taken, so they always start at kept[kept_first]. */
typedef struct asock__udp_socket {
  asock_socket sock;
  int family;            /* of the OS socket; 0 until it exists */
  unsigned short port;   /* its local port, in network order */
  unsigned char pktinfo; /* the kernel reports packet information */
  unsigned char ahead;   /* slices the next read takes ahead: it grows
                          * while reads fill them all, and falls to what
                          * the last read used */
  unsigned int kept_first;
  unsigned int kept_count;
  asock__udp_kept kept[ASOCK__UDP_BATCH - 1];
} asock__udp_socket;

static inline asock__udp_socket *asock__udp(asock_socket *sock) {
  return (asock__udp_socket *)sock;
}

int asock__sendto_check(asock_socket *sock, asock_op *op);
int asock__sendto_start(asock_socket *sock, asock_op *op);
int asock__recvfrom_check(asock_socket *sock, asock_op *op);
int asock__recvfrom_start(asock_socket *sock, asock_op *op);
/* The socket is readable (readable != 0) or writable: what waits tries. */
void asock__udp_ready(asock_socket *sock, int readable, int writable);
/* Receive side: the socket is readable. */
void asock__udp_recv_ready(asock_socket *sock);
/* Resumes reading for a UDP socket that waited for a slice. */
void asock__udp_recv_retry(asock_socket *sock);
/* Gives back the slices of the datagrams kept for later receives. */
void asock__udp_drop_kept(asock_socket *sock);
/* Test hook: the next this many datagram sends find the kernel's buffer
 * full (a UDP socket's sends rarely do on loopback), so that the queued
 * path can be tested. 0 outside tests. */
extern unsigned int asock__udp_send_refusals;
/* Binds a socket not yet bound to the wildcard address of family. */
int asock__udp_autobind(asock_socket *sock, int family);

/* ---- platform (src/unix/io.c, src/win/io.c) ---------------------------- */

/* One-time process setup: on Unix, SIGPIPE is ignored unless the
 * application installed a handler, so that a write to a reset connection is
 * an error code instead of the process's death. */
void asock__platform_init(void);

/* ---- socket I/O (src/unix/tcp-io.c, src/win/tcp-io.c) ------------------ */

/* Each platform moves bytes its own way: on Unix asock makes the system
 * calls when libuv's poll handle reports readiness; on Windows libuv's TCP
 * handle runs them on IOCP. Below these functions the shared code does not
 * know which. They run on the loop thread; what they report comes back
 * through the asock__on_* and asock__*_done functions after them, from libuv
 * callbacks, never inside the call that started the work (except where
 * said). Errors are asock codes. */

/* Readies the handle storage of a new socket. */
int asock__io_init(asock_socket *sock);
/* Makes the OS socket for addr's family, sets the options in opts (NULL:
 * none) on it, and binds it; on failure the socket is left as it was.
 * flags are ASOCK_BIND_* and ASOCK__LISTEN_*. */
int asock__io_bind(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags, const asock__tcp_options *opts);
/* Listens on the socket a bind made; on failure it stays bound. */
int asock__io_listen(asock_socket *sock, int backlog);
/* Has the kernel hold connections of a listener until they send something,
 * for up to seconds, where it can (Linux); 0 elsewhere, doing nothing. */
int asock__io_defer_accept(asock_socket *listener, unsigned int seconds);
/* Takes one waiting connection off a listener: 0 with *conn set (an OS
 * socket on Unix), ASOCK_EAGAIN when none waits, or an error. */
int asock__io_accept(asock_socket *listener, uintptr_t *conn);
/* Makes conn, from asock__io_accept(), the handle of client. */
int asock__io_adopt(asock_socket *listener, asock_socket *client,
                    uintptr_t conn);
/* Drops a connection that could not be adopted. */
void asock__io_drop(uintptr_t conn);
/* Accept ops wait (1) or none does (0): Unix watches the listening socket
 * only while they wait, since libuv's epoll is level-triggered. */
void asock__io_accept_wanted(asock_socket *listener, int wanted);
/* Starts connecting to addr, from the OS socket a bind made, or one made
 * now with the options in opts; asock__connect_done() reports the result. */
int asock__io_connect(asock_socket *sock, asock_op *op,
                      const struct sockaddr *addr,
                      const asock__tcp_options *opts);
/* Starts or stops the flow of asock__recv_buffer()/asock__recv_result(). */
int asock__io_read_start(asock_socket *sock);
void asock__io_read_stop(asock_socket *sock);
/* Hands the unsent rest of the head send over; asock__send_written()
 * reports. On Windows libuv writes iov (op->write_bytes is set to its
 * size); on Unix nothing is written, and the report only says the socket is
 * writable again (op->write_bytes is 0), so that the queue is retried. */
int asock__io_write(asock_socket *sock, asock_op *op, const uv_buf_t *iov,
                    unsigned int n, size_t bytes);
/* Shuts the sending side down once what was written is out;
 * asock__shutdown_done() reports, possibly inside this call. */
int asock__io_shutdown(asock_socket *sock, asock_op *op);
/* Sends up to len bytes of `file` from offset in the kernel (sendfile()):
 * the bytes sent, 0 at the file's end, ASOCK_EAGAIN when the socket is
 * full, ASOCK_ENOTSUP where the platform or the file cannot (the bytes are
 * read and sent then), or the error. */
long asock__io_sendfile(asock_socket *sock, uv_file file, int64_t offset,
                        size_t len);
/* Closes the handle (with a reset when abortive). A write or connect still
 * handed over reports ASOCK_ECANCELED, then asock__socket_closed() runs,
 * from a libuv callback; at once if the socket never had an OS socket. */
void asock__io_close(asock_socket *sock, int abortive);
int asock__io_nodelay(asock_socket *sock, int enable);
int asock__io_keepalive(asock_socket *sock, int enable, unsigned int delay_s);
/* The keepalive probes' interval and count (0 leaves one as it is):
 * ASOCK_ENOTSUP where the platform has no such options. */
int asock__io_keepalive_probes(asock_socket *sock, unsigned int interval_s,
                               unsigned int count);
/* The OS socket, ASOCK_ENOTCONN when there is none. */
int asock__io_fileno(const asock_socket *sock, uv_os_sock_t *out);
/* setsockopt (set != 0) or getsockopt on the OS socket; *len is the value's
 * length in, and for a get also out. */
int asock__io_sockopt(asock_socket *sock, int set, int level, int name,
                      void *value, size_t *len);
/* SO_SNDBUF (send != 0) or SO_RCVBUF: sets *value when it is positive, then
 * reads it back into *value. */
int asock__io_buffer_size(asock_socket *sock, int send, int *value);
/* getpeername (peer != 0) or getsockname. */
int asock__io_address(asock_socket *sock, int peer, struct sockaddr *addr,
                      int *len);

/* UDP. The OS socket is made by the first of bind and connect. */
/* Opens the socket for addr's family if it has none, binds it to addr.
 * flags are ASOCK_UDP_*. */
int asock__udp_io_bind(asock_socket *sock, const struct sockaddr *addr,
                       unsigned int flags);
/* Sets the default peer (addr) or removes it (NULL). */
int asock__udp_io_connect(asock_socket *sock, const struct sockaddr *addr);
/* Reads up to n datagrams without waiting, each as d[i] says: the number
 * read (>= 1), ASOCK_EAGAIN when none is there, or an error (for example
 * ASOCK_ECONNREFUSED after an ICMP port unreachable). */
int asock__udp_io_recv(asock_socket *sock, asock__dgram *d, unsigned int n);
/* Asks the kernel for every datagram's packet information from now on. */
int asock__udp_io_pktinfo(asock_socket *sock);
/* Sends one datagram of the n buffers to `to` (NULL: the default peer)
 * without waiting: the bytes sent, ASOCK_EAGAIN, or an error. */
long asock__udp_io_send(asock_socket *sock, const uv_buf_t *iov, unsigned int n,
                        const struct sockaddr *to);
/* The same for one buffer, the usual case. */
long asock__udp_io_send1(asock_socket *sock, const void *buf, size_t len,
                         const struct sockaddr *to);
/* Watches for readability (ASOCK__UDP_READ) or writability
 * (ASOCK__UDP_WRITE) while `on`; asock__udp_ready() reports. */
#define ASOCK__UDP_READ 0x1u
#define ASOCK__UDP_WRITE 0x2u
void asock__udp_io_want(asock_socket *sock, unsigned int what, int on);
/* Sets one option on the bound socket's OS socket: 0 or the error. */
int asock__udp_io_setsockopt(asock_socket *sock, int level, int name,
                             const void *value, size_t len);

/* What the platform reports back, on the loop thread. */
/* The handle is closed for good (or for a connect's next address). */
void asock__socket_closed(asock_socket *sock);
/* A listener has a connection to accept (status 0), or accepting failed. */
void asock__on_connection(asock_socket *listener, int status);
/* The connect the op started ended with status. */
void asock__connect_done(asock_op *op, int status);
/* The buffer the next read fills: the head receive's window, taking a slice
 * for it if it has none. base is NULL when no receive waits or no slice is
 * free; asock__recv_unbuffered() is then reported instead of a read. */
void asock__recv_buffer(asock_socket *sock, uv_buf_t *buf);
void asock__recv_unbuffered(asock_socket *sock);
/* A read into the buffer asock__recv_buffer() gave: bytes (> 0), 0 when
 * nothing was there, or ASOCK_EOF or an error. */
void asock__recv_result(asock_socket *sock, long nread, const uv_buf_t *buf);
/* Readiness platforms (Unix): the socket is readable. Reads into the head
 * receive's buffer until a read comes back short, no receive waits, or the
 * reads one report may do are used. */
void asock__recv_ready(asock_socket *sock);
/* asock__recv_ready() for a socket whose flags the caller found to be
 * ASOCK__SF_MULTISHOT_READING under the mask ASOCK__SF_MULTISHOT_READS: a
 * TCP socket, not listening, whose handle is open, reading, with a
 * multishot receive queued (the usual report of a stream, tested once). */
void asock__recv_ready_multishot(asock_socket *sock);
#define ASOCK__SF_MULTISHOT_READS                                              \
  (ASOCK__SF_LISTENING | ASOCK__SF_UDP | ASOCK__SF_HANDLE_GONE |               \
   ASOCK__SF_READING | ASOCK__SF_MULTISHOT)
#define ASOCK__SF_MULTISHOT_READING (ASOCK__SF_READING | ASOCK__SF_MULTISHOT)
/* The write asock__io_write() handed over finished with status. */
void asock__send_written(asock_op *op, int status);
/* The shutdown asock__io_shutdown() started finished with status. */
void asock__shutdown_done(asock_op *op, int status);

/* From io-inline.h, per platform (inline on Unix, where every message
 * makes these calls):
 *   asock__try_recv(sock, buf, len): a non-blocking receive straight from
 *     the socket: the bytes read, ASOCK_EOF at end of stream, ASOCK_EAGAIN
 *     if nothing is there, or an error;
 *   asock__io_try_write(sock, iov, n): writes what the kernel takes now,
 *     without waiting: the bytes written, ASOCK_EAGAIN when it takes none,
 *     or an error;
 *   asock__io_try_send(sock, buf, len): the same for one buffer. */
#include "io-inline.h"

#endif /* ASOCK_INTERNAL_H */
