/* Operation objects (src/op.c): the op, where a pending op waits, and the
 * moves every operation makes between idle and pending. */
#ifndef ASOCK_OP_H
#define ASOCK_OP_H

#include "pool.h"

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
/* Bytes of the send are in the write handed to the backend
 * (asock__io_write()): it cannot leave the queue before that write is
 * back. */
#define ASOCK__OPF_IN_WRITE 0x200u

/* The fields come in groups; asock__op_reset() zeroes all but the first. */
struct asock_op {
  /* Identity: fixed for the pool's life. */
  asock_pool *pool;
  asock__atomic_u32 state; /* ASOCK__OP_IDLE or ASOCK__OP_PENDING */
  uint32_t index;          /* position in pool->ops */
  /* The last operation and its result. */
  asock_op_kind kind;
  asock_buffer_mode mode;
  unsigned int flags;
  unsigned char sync;   /* the last operation completed synchronously */
  unsigned char handed; /* started on the loop for another thread: a
                         * synchronous end leaves it pending, as its
                         * callback is still to come */
  int status;
  /* The buffer: a window in memory, or a gather list. */
  unsigned char *mem; /* the buffer's memory: a slice or the caller's */
  size_t mem_len;
  size_t offset; /* the window inside mem */
  size_t count;
  const asock_buf *bufs; /* gather list, used instead of the window */
  size_t nbufs;
  size_t bytes; /* bytes transferred */
  /* The application's, and what an operation is about. */
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
  /* Connect by name. */
  char *host; /* connect_host: the name to resolve, a copy */
  unsigned short port;
  /* Sends of packets. */
  const asock_packet *packets; /* asock_op_set_packets(): the list */
  size_t npackets;
  size_t packets_total; /* and its bytes */
  size_t pk_index;      /* a send of packets: the piece op->sent is in */
  uint64_t pk_start;    /* and where it starts in the send's stream */
  void *chunk;          /* a slice holding file bytes of the current piece */
  uint64_t chunk_at;    /* where they start in the send's stream */
  size_t chunk_len;     /* how many */
  struct asock__file_read *fs; /* the file read, made for the op's first */
  /* Connect by name, while it resolves and tries. */
  struct addrinfo *ai_head; /* connect_host: the resolved list */
  struct addrinfo *ai_next; /* and the next address to try */
  asock__attempt *attempts; /* connect_host: the addresses tried, kept until
                             * the op's next connect or its release */
  unsigned int nattempts;
  /* The libuv request the operation has out, if any. */
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

#endif /* ASOCK_OP_H */
