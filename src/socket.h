/* The socket every kind shares (src/socket.c): its state, its references
 * and charged slices, and the start of every operation on it. */
#ifndef ASOCK_SOCKET_H
#define ASOCK_SOCKET_H

#include "loop.h"

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

/* A socket's state is one 32-bit word (asock_socket.flags): two
 * lifecycles held as enumerated values in its low bits, and independent
 * facts as one bit each above them. Keeping them in one word lets a fast
 * path test everything it needs in one comparison
 * (ASOCK__SEND_STATE, ASOCK__RECV_STATE).
 *
 * The stage, bits 0-2: where the socket is between its creation and its
 * connection. A stream socket goes NEW -> (RESOLVING ->) CONNECTING ->
 * CONNECTED, back to NEW when every address failed, or NEW -> LISTENING;
 * a UDP socket is CONNECTED while it has a default peer, NEW otherwise.
 * Closing does not change it: a closed socket is still known to have been
 * connected. */
#define ASOCK__SF_STAGE 0x7u
#define ASOCK__STAGE_NEW 0x0u
/* asock_connect_host() waits for the resolver. */
#define ASOCK__STAGE_RESOLVING 0x1u
#define ASOCK__STAGE_CONNECTING 0x2u
#define ASOCK__STAGE_CONNECTED 0x3u
/* The one stage with bit 2 set, so that a test of the flags for a
 * listener may name it among other bits. */
#define ASOCK__STAGE_LISTENING 0x4u

/* The handle's life, bits 3-4: OPEN -> CLOSING (uv_close() was called) ->
 * GONE (libuv's close callback ran). A connect that tries its next address
 * takes a handle from CLOSING back to OPEN (ASOCK__SF_REINIT says so). */
#define ASOCK__SF_HANDLE 0x18u
#define ASOCK__HANDLE_OPEN 0x0u
#define ASOCK__HANDLE_CLOSING 0x8u
#define ASOCK__HANDLE_GONE 0x10u

/* Facts. */
/* asock_socket_close() was called: the application let the socket go. */
#define ASOCK__SF_CLOSED 0x20u
/* uv_read_start() is in force. */
#define ASOCK__SF_READING 0x40u
/* The last read found no more data. */
#define ASOCK__SF_DRAINED 0x80u
/* Receives wait for a free slice. */
#define ASOCK__SF_WAIT_SLICE 0x100u
/* Queued sends reached the high mark. */
#define ASOCK__SF_ABOVE_HIGH 0x200u
/* On the loop's notify list. */
#define ASOCK__SF_NOTIFY 0x400u
/* The sending side is shut down, or will be once the queued sends are out
 * (a shutdown or a disconnect): nothing more may be sent. */
#define ASOCK__SF_SHUTDOWN 0x800u
/* A uv_write is in flight. */
#define ASOCK__SF_WRITING 0x1000u
/* The application was told "above". */
#define ASOCK__SF_REPORTED_HIGH 0x2000u
/* The handle is closing to be made afresh for a connect's next address. */
#define ASOCK__SF_REINIT 0x4000u
/* A UDP socket (struct asock__udp_socket). */
#define ASOCK__SF_UDP 0x8000u
/* The socket has its OS socket, bound to a local address (a UDP socket's
 * bind or connect, a TCP socket's asock_tcp_bind()). */
#define ASOCK__SF_BOUND 0x10000u
/* A multishot receive is in the receive queue: no receive may be queued
 * behind it, as it has no last delivery to complete before. */
#define ASOCK__SF_MULTISHOT 0x20000u
/* On the loop's kicked list. */
#define ASOCK__SF_KICKED 0x40000u
/* asock_socket_set_linger() turned lingering on. */
#define ASOCK__SF_LINGER 0x80000u
/* A listener that ran out of descriptors or memory, on the loop's paused
 * list until its resume tick. */
#define ASOCK__SF_PAUSED 0x100000u
/* Closed by the application while sends were queued, lingering: on the
 * loop's lingering list until they are out or its linger time is up. */
#define ASOCK__SF_LINGERING 0x200000u
/* The thread pool reads a file into a slice for the head send of packets:
 * its sends go on when the read is done, unless it is given up. */
#define ASOCK__SF_FILE_READ 0x400000u
/* The head send of packets waits for a free slice (on the loop's waiters
 * list, which ASOCK__SF_WAIT_SLICE alone means a receive waits on). */
#define ASOCK__SF_SEND_WAITS 0x800000u
/* send_error is set: sends complete with it at once. A flag as well, so
 * that a send's one test of the flags sees it. */
#define ASOCK__SF_SEND_FAILED 0x1000000u
/* A socket of a ring loop: it runs on the loop's io_uring ring
 * (src/uring/); a TCP one has no room for the readiness backend's
 * handle. */
#define ASOCK__SF_RING 0x2000000u

/* The parts of the state a stream send depends on: a send may start when
 * (flags & ASOCK__SEND_STATE) == ASOCK__STAGE_CONNECTED, that is, a
 * connected stream socket, open, still sending. asock__send_state_error()
 * says why another is refused; the fast paths test this alone. */
#define ASOCK__SEND_STATE                                                      \
  (ASOCK__SF_STAGE | ASOCK__SF_HANDLE | ASOCK__SF_CLOSED |                     \
   ASOCK__SF_SHUTDOWN | ASOCK__SF_UDP)
/* Likewise for a stream receive, which no multishot receive may be ahead
 * of (asock__recv_state_error()). */
#define ASOCK__RECV_STATE                                                      \
  (ASOCK__SF_STAGE | ASOCK__SF_HANDLE | ASOCK__SF_CLOSED | ASOCK__SF_UDP |     \
   ASOCK__SF_MULTISHOT)
/* A stream socket whose readiness report goes straight to its multishot
 * receive (asock__socket_reads_multishot()): (flags &
 * ASOCK__MULTISHOT_STATE) == ASOCK__MULTISHOT_READING. */
#define ASOCK__MULTISHOT_STATE                                                 \
  (ASOCK__SF_STAGE | ASOCK__SF_UDP | ASOCK__SF_HANDLE | ASOCK__SF_READING |    \
   ASOCK__SF_MULTISHOT)
#define ASOCK__MULTISHOT_READING                                               \
  (ASOCK__STAGE_CONNECTED | ASOCK__SF_READING | ASOCK__SF_MULTISHOT)

struct asock_socket {
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
  /* References (the application, the handle, posted ops, lists, and one per
   * charged slice) in the low 32 bits; charged slices in the high 32, so
   * that charging a slice is one atomic operation. */
  asock__atomic_u64 refs;
  /* asock_socket_set_send_limits()'s, which keeps them below 4 GiB. */
  uint32_t send_low;
  uint32_t send_high;
  uint32_t send_cap;
  int read_error;    /* sticky: ASOCK_EOF or the error that ended reading */
  int send_error;    /* sticky: the error that ended sending */
  uint32_t linger_s; /* asock_socket_set_linger()'s time */
  union {
    uint32_t resume_tick; /* a paused listener's: the loop's tick to resume
                           * accepting at */
    uint32_t linger_tick; /* a lingering socket's (never a listener): the
                           * loop's tick to give up and reset the
                           * connection at */
  };
  uint32_t flags;
  /* Last: the platform's handle, of which a socket may need less than the
   * whole (asock__io_socket_size()). A libuv callback finds the socket from
   * its handle with ASOCK__CONTAINER_OF(). */
  asock__io io;
};

/* The socket's stage (ASOCK__STAGE_*) and its handle's life
 * (ASOCK__HANDLE_*). Loop thread. */
static inline uint32_t asock__socket_stage(const asock_socket *sock) {
  return sock->flags & ASOCK__SF_STAGE;
}
static inline void asock__socket_set_stage(asock_socket *sock, uint32_t stage) {
  sock->flags = (sock->flags & ~ASOCK__SF_STAGE) | stage;
}
static inline uint32_t asock__socket_handle(const asock_socket *sock) {
  return sock->flags & ASOCK__SF_HANDLE;
}
static inline void asock__socket_set_handle(asock_socket *sock,
                                            uint32_t handle) {
  sock->flags = (sock->flags & ~ASOCK__SF_HANDLE) | handle;
}
/* Whether the socket has gone: the application closed it or its handle is
 * closing or gone. */
static inline int asock__socket_gone(const asock_socket *sock) {
  return (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE)) != 0;
}

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
/* Gives a slice charged to the socket back to the loop, and its charge.
 * Loop thread. */
static inline void asock__socket_give_slice(asock_socket *sock, void *slice) {
  asock__loop_give_slice(sock->loop, slice);
  asock__socket_release(sock, ASOCK__REF_SLICE);
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
  if (asock__socket_gone(sock))
    return ASOCK_ECLOSED;
  return 0;
}

#endif /* ASOCK_SOCKET_H */
