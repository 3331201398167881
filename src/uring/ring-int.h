/* What ring.c and tcp-ring.c share of a loop's ring. */
#ifndef ASOCK_URING_RING_INT_H
#define ASOCK_URING_RING_INT_H

#include <liburing.h>
#include <sys/socket.h>

#include "internal.h"

/* The buffer group of the provided slices. */
#define ASOCK__RING_BGID 1

/* What a completion is for, in the low bits of its user_data (the rest is
 * the socket, which calloc() aligns to at least 8). */
#define ASOCK__RING_TAG_MASK 0x7u
#define ASOCK__RING_TAG_RECV 1u
#define ASOCK__RING_TAG_SEND 2u
#define ASOCK__RING_TAG_WRITABLE 3u /* a poll for room, for sendfile() */
#define ASOCK__RING_TAG_ACCEPT 4u
#define ASOCK__RING_TAG_CONNECT 5u
#define ASOCK__RING_TAG_CANCEL 6u /* a closing socket's cancel */
#define ASOCK__RING_TAG_IGNORE 7u /* a completion nothing waits for */

/* A provided buffer a socket stashes: what it holds, and the one stashed
 * after it on the same socket. Ids below nbufs are the kernel's buffer
 * ids; the nbufs above them name slices that stashes kept as their own
 * (asock__ring_stash_keep()), the free ones linked through `next` from
 * asock__ring.keep_free. */
typedef struct asock__ring_stashed {
  uint32_t len;
  unsigned short next;
} asock__ring_stashed;

/* No id: the end of the free kept ids. */
#define ASOCK__RING_NO_ID 0xffffu

struct asock__ring {
  struct io_uring uring;
  uv_poll_t poll;       /* completions wait (see `evfd`) */
  uv_prepare_t prepare; /* submits before libuv blocks */
  asock_loop *loop;
  struct io_uring_buf_ring *br; /* the provided buffers */
  size_t br_len;
  void **bufs;                  /* the slice of each id (2 * nbufs) */
  asock__ring_stashed *stashed; /* and, while a socket stashes it, this */
  unsigned short keep_free;     /* the first free kept id, or NO_ID */
  /* Buffers came back since the starved retried, or the starved still
   * wait their turn (asock__ring_retry_starved()). */
  unsigned char returned;
  /* The provided buffers the kernel has, as far as the completions reaped
   * say (a completion that took one may still wait to be reaped). */
  unsigned int avail;
  /* Receives sent again from the starved list, queued and not submitted
   * yet, or submitted since the completions were last reaped: each takes a
   * buffer as it finds its bytes waiting, and completes at its submission
   * when it does. */
  unsigned int retry_queued;
  unsigned int retry_sent;
  unsigned long refusals; /* receives that found no buffer (for the tests) */
  /* The kernel takes a multishot receive bounded by a byte count (Linux
   * 6.17); cleared when it refuses one, and receives go one at a time. */
  unsigned char mshot;
  /* The kernel takes a multishot accept (Linux 5.19); cleared when it
   * refuses one, and accepts go one at a time. */
  unsigned char maccept;
  /* The kernel runs the ring's completion work only when the loop's thread
   * asks (IORING_SETUP_DEFER_TASKRUN): the ring's descriptor does not
   * become readable for it, an eventfd the kernel signals does, and the
   * poll handle watches that instead. -1 on a ring made without. */
  int evfd;
  /* The ring was enabled (IORING_SETUP_R_DISABLED) by the first thread
   * that submitted to it, and is that thread's: `owner`. */
  unsigned char enabled;
  uintptr_t owner;
  unsigned int idle_runs; /* asock_loop.idle_runs when this run began */
  /* Inside asock_loop_run() on a ring with deferred work: the prepare
   * handle waits in the ring (ASOCK__RING_WAIT_*), with a poll of libuv's
   * own descriptor among its requests. */
  unsigned char waits;
  unsigned char backend_polled; /* that poll is out */
  unsigned char backend_ready;  /* it fired: libuv has events */
  uv_idle_t idle;               /* keeps libuv from blocking after a wait */
  unsigned int nbufs;           /* a power of two */
  unsigned int buf_len;         /* the bytes one provided buffer takes */
  unsigned int active; /* what waits on the ring and keeps the loop alive */
  /* Sockets whose receive found no buffer, oldest first. */
  asock_socket *starved;
  asock_socket *starved_tail;
  asock_socket *kicked; /* sockets to run before the next submission */
  /* The message headers and buffer lists of the gathered sends queued
   * since the last submission: the kernel has read them once it took the
   * entries (IORING_FEAT_SUBMIT_STABLE), and they are used again then. */
  struct msghdr *msgs;
  struct iovec *iovs;
  unsigned int msgs_used;
  unsigned int iovs_used;
  /* The template header of a UDP socket's receive: the kernel reads only
   * its lengths, which lay out each datagram's provided buffer. */
  struct msghdr udp_msg;
  /* The kernel takes a multishot UDP receive (Linux 6.0); cleared when it
   * refuses one, and UDP receives go one at a time. */
  unsigned char udp_mshot;
  unsigned long udp_received; /* datagrams, for the tests */
};
typedef struct asock__ring asock__ring;

/* What asock__ring.waits says: no waiting, or waiting in the ring until
 * libuv has something to do (UV_RUN_DEFAULT), or once (UV_RUN_ONCE). */
#define ASOCK__RING_WAIT_NO 0u
#define ASOCK__RING_WAIT_LOOP 1u
#define ASOCK__RING_WAIT_ONCE 2u

/* The message headers and list entries one loop's gathered sends may
 * queue between two submissions. */
#define ASOCK__RING_MSGS 256u
#define ASOCK__RING_IOVS 2048u

/* A submission queue entry, submitting what is queued when none is free:
 * NULL only when the kernel takes none. */
struct io_uring_sqe *asock__ring_sqe(asock__ring *r);
/* Submits what is queued; once the kernel took every entry, the gathered
 * sends' headers and lists are free again. */
void asock__ring_submit(asock__ring *r);
/* asock__ring_submit(), and the completion work that leaves, run now: what
 * the submission ended has let go of its files when it returns. */
void asock__ring_submit_now(asock__ring *r);
/* A header with n list entries for a gathered send, until the next
 * submission: NULL when too many are queued (submitting first frees
 * them). */
struct msghdr *asock__ring_msg(asock__ring *r, unsigned int n);
/* Counts something that waits on the ring (delta 1) or stopped waiting
 * (-1): the loop stays alive while anything does. */
void asock__ring_hold(asock__ring *r, int delta);
/* Gives a provided buffer back to the kernel, as `slice` (which may be
 * another slice than the one it held). */
void asock__ring_recycle(asock__ring *r, unsigned short bid, void *slice);
/* A socket's ring, the user data of its request `tag`, and its OS
 * socket. */
static inline asock__ring *asock__ring_of(const asock_socket *sock) {
  return sock->loop->ring;
}
static inline uint64_t asock__ring_tagged(asock_socket *sock,
                                          unsigned int tag) {
  return (uint64_t)(uintptr_t)sock | tag;
}
static inline int asock__ring_fd(const asock_socket *sock) {
  return sock->io.ring.socket;
}

/* What the TCP and UDP sockets of a ring share (tcp-ring.c). */
/* The fault point p of a request about to be submitted: 1 when it fired,
 * a no-op in sqe then, its completion carrying the error kept in *slot. */
int asock__ring_inject(struct io_uring_sqe *sqe, asock__fault_point p,
                       int16_t *slot);
/* A completion's result, or the error injected in its request's place. */
int asock__ring_result(int res, int16_t *slot);
/* Runs the socket from the prepare handle, before the next submission. */
void asock__ring_kick(asock_socket *sock);
/* Its receive found no provided buffer: it tries again once some are back. */
void asock__ring_starve(asock_socket *sock);
/* Queues a cancel of the socket's request `tag`, replied to as `reply`: 0
 * when the kernel takes no entry now. */
int asock__ring_cancel(asock_socket *sock, unsigned int tag,
                       unsigned int reply);
/* Submits the receive of a socket whose receive is due (`wait`: for bytes
 * first, a TCP socket's). */
void asock__ring_submit_recv(asock_socket *sock, int wait);
/* A provided buffer done with goes back to the kernel (erased first where
 * the pool erases slices: `used` bytes). */
void asock__ring_recycle_used(asock__ring *r, unsigned short bid, void *slice,
                              size_t used);
/* What every receive completion of a socket begins with (recv_done() of
 * tcp-ring.c and udp-ring.c): the provided buffer counted out of the ring,
 * the request no longer out unless the kernel says more comes, an injected
 * fault's result in *res's place, and the buffer back to the kernel when
 * the socket is closing or nothing is in it. -1: the socket is closing, the
 * completion is done with; else 1 when a buffer with *res bytes came. */
static inline int asock__ring_recv_head(asock_socket *sock, int *res,
                                        unsigned int flags) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  unsigned short bid = (unsigned short)(flags >> IORING_CQE_BUFFER_SHIFT);
  int buffered = (flags & IORING_CQE_F_BUFFER) != 0;

  if (buffered)
    r->avail--;
  /* A multishot request stays out while the kernel says more comes. */
  if ((flags & IORING_CQE_F_MORE) == 0)
    io->out &= (unsigned char)~(ASOCK__RING_RECV | ASOCK__RING_MSHOT);
  *res = asock__ring_result(*res, &io->injected_in);
  if (buffered && (io->closing || *res <= 0)) {
    asock__ring_recycle_used(r, bid, r->bufs[bid], *res > 0 ? (size_t)*res : 0);
    buffered = 0;
  }
  return io->closing ? -1 : buffered;
}
/* Provided buffer bid, len bytes, goes last in the socket's stash; the
 * first stashed one goes back to the kernel, the next one first. */
void asock__ring_stash(asock_socket *sock, unsigned short bid, size_t len);
void asock__ring_stash_recycle(asock_socket *sock);
/* The first stashed slice, whole, goes to the caller, who gives `mine`, a
 * slice charged to the socket with nothing in it to keep, in its place
 * (to the kernel, or the pool); the next one is first. Nothing is copied. */
void *asock__ring_stash_trade(asock_socket *sock, void *mine);
/* Whether a stash id names a slice kept as the socket's own rather than a
 * buffer of the kernel's. */
static inline int asock__ring_kept(const asock__ring *r, unsigned short id) {
  return id >= r->nbufs;
}
/* A stash waiting with no request out while the kernel has fewer than
 * half its buffers keeps its buffers' slices as slices of the socket's
 * (charged, its quota allowing, as far as kept ids are free) and the kernel
 * gets free ones in their place: asock__ring_stash_keep(), where
 * asock__ring_stash_keeps() says it is due (inline: every receive
 * completion asks). */
void asock__ring_stash_keep(asock_socket *sock);
static inline void asock__ring_stash_keeps(asock_socket *sock) {
  const asock__ring_io *io = &sock->io.ring;
  const asock__ring *r = asock__ring_of(sock);
  if (io->stash != NULL && (io->out & ASOCK__RING_RECV) == 0 &&
      r->avail < r->nbufs / 2)
    asock__ring_stash_keep(sock);
}

/* UDP sockets of a ring (udp-ring.c). */
/* Readies the ring's UDP receives, at its creation. */
void asock__ring_udp_init(asock__ring *r);
void asock__ring_udp_submit(asock_socket *sock);
void asock__ring_udp_complete(asock_socket *sock, unsigned int tag, int res,
                              unsigned int flags);
void asock__ring_udp_kicked(asock_socket *sock);

/* One completion (tcp-ring.c). */
void asock__ring_complete(asock__ring *r, uint64_t data, int res,
                          unsigned int flags);
/* Receives that found no provided buffer try again, then the kicked
 * sockets run (tcp-ring.c). */
void asock__ring_retry_starved(asock__ring *r);
void asock__ring_run_kicked(asock__ring *r);

#endif /* ASOCK_URING_RING_INT_H */
