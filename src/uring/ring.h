/* The io_uring backend (Linux, built with liburing): a loop's ring, and
 * what a TCP socket of such a loop keeps of it.
 *
 * The ring lives on the libuv loop and adds no thread: its descriptor is
 * watched by a uv_poll_t, whose callback reaps the completions, and a
 * uv_prepare_t submits what the loop's callbacks prepared, once per loop
 * iteration, before libuv blocks (and sooner when the submission queue
 * fills). A TCP socket of a ring loop makes no system call of its own on
 * the per-message path: its receives, sends, accepts and connects are
 * submitted; a receive without a buffer of its own takes its pool slice from
 * the ring's provided buffers only when data arrives. A UDP socket's
 * datagrams arrive through the ring too (udp-ring.c).
 *
 * The shared code sees the completion model of src/backend.h, as on Windows:
 * asock__recv_buffer() and asock__recv_result() for each arrival,
 * asock__io_write() writes (the rest of every queued send at once,
 * ASOCK__IO_GATHERS) and asock__send_written() reports. The readiness
 * backend's functions (src/unix/tcp-io.c) hand a ring socket to the ones
 * below; the two calls of the per-message path (io-inline.h) test one flag.
 */
#ifndef ASOCK_URING_RING_H
#define ASOCK_URING_RING_H

#include <stdint.h>

#include <uv.h>

struct asock_socket;
struct asock_loop;
struct asock_op;
struct asock__ring;

/* What a TCP socket of a ring loop keeps (asock__io.ring, in the union with
 * the readiness backend's watch, which it never opens). Such a socket is
 * allocated only as far as the end of this struct (asock__io_socket_size()),
 * so it touches nothing of the watch beyond their common first member. */
typedef struct asock__ring_io {
  int socket;             /* the OS socket, or -1: asock__watch.socket, the
                           * common first member the shared Unix code reads */
  unsigned char out;      /* ASOCK__RING_* of the requests the kernel holds */
  unsigned char send_tag; /* the tag of the send out (ring-int.h) */
  unsigned char cancels;  /* a closing socket's cancels out */
  /* One bit each, in one byte (src/uring/ is GNU C): a ring socket is
   * allocated to the end of this struct, which every byte enlarges. */
  unsigned char reading : 1;    /* receives want data */
  unsigned char wanted : 1;     /* a listener's accepts want connections; a
                                 * UDP socket's sends want room */
  unsigned char closing : 1;    /* closing: the requests are being cancelled */
  unsigned char kicked : 1;     /* on the ring's kicked list */
  unsigned char starved : 1;    /* on the ring's starved list */
  unsigned char connecting : 1; /* a connect waits for its result */
  /* Faults injected into the receive, accept or connect out (in) and the
   * send out (out) (src/fault.h), or 0: an asock error code. */
  int16_t injected_in;
  int16_t injected_out;
  union {
    struct {                     /* a socket that reads: the stash */
      unsigned short stash_bid;  /* the id of the stash's first slice: a
                                  * provided buffer's, or a kept one's */
      unsigned short stash_last; /* the last of the stashed ids (the ring
                                  * links each to the next, ring-int.h) */
      uint32_t stash_off;        /* where the bytes still to be read start */
      uint32_t stash_end;        /* and end */
      int stash_status; /* the end of stream or error that came while no
                         * receive took it */
      char *stash;      /* the first slice of bytes that came while no receive
                         * took them, or NULL */
    };
    struct { /* a listener: the connections the kernel accepted that no
              * accept took yet, oldest first, a circular queue */
      uint32_t conns_cap; /* 0: the one in conn_one, no array yet */
      uint32_t conns_head;
      uint32_t conns_len;
      int conn_one;
      int *conns; /* made when a second connection has to wait */
    };
  };
  struct asock_socket *kick_next;    /* the ring's kicked list: sockets
                                      * with something to deliver, or
                                      * closing with nothing out */
  struct asock_socket *starved_next; /* the ring's list of sockets whose
                                      * receive found no provided buffer */
} asock__ring_io;

/* Requests out, in asock__ring_io.out. */
#define ASOCK__RING_RECV 0x1u
#define ASOCK__RING_SEND 0x2u
#define ASOCK__RING_ACCEPT 0x4u
#define ASOCK__RING_CONNECT 0x8u
#define ASOCK__RING_MSHOT 0x10u   /* the receive out is multishot */
#define ASOCK__RING_MACCEPT 0x20u /* the accept out is multishot */

/* Makes the loop's ring, unless the kernel refuses it or lacks what the
 * backend needs: 0, or the error (ASOCK_ENOTSUP for a kernel without
 * it), with nothing left made. Loop thread, at loop creation. */
int asock__ring_create(struct asock_loop *loop);
/* 1 when the loop's ring runs its completion work on the loop's thread
 * only (IORING_SETUP_DEFER_TASKRUN): it then belongs to one thread. */
int asock__ring_deferred(const struct asock_loop *loop);
/* 1 while the loop's ring takes a socket's receives as one multishot
 * request bounded by its quota (the kernel has not refused the bound). */
int asock__ring_multishot(const struct asock_loop *loop);
/* How many receives the kernel refused for want of a provided buffer (for
 * the tests). */
unsigned long asock__ring_refusals(const struct asock_loop *loop);
/* 1 while it takes a listener's accepts as one multishot request (the
 * kernel has not refused one). */
int asock__ring_multishot_accepts(const struct asock_loop *loop);
/* 1 when the ring belongs to another thread than the caller (a ring with
 * deferred work, enabled by the first thread that submitted to it): the
 * caller may not run the loop. */
int asock__ring_elsewhere(const struct asock_loop *loop);
/* asock_loop_run() on a loop with a ring: uv_run(), during which a run that
 * may block waits in the ring rather than in libuv's epoll_wait() where the
 * ring's completion work waits for the loop's thread (see ring.c). */
int asock__ring_run(struct asock_loop *loop, uv_run_mode mode);
/* Closes the ring's handles: their callbacks count down loop->handles. */
void asock__ring_close_handles(struct asock_loop *loop);
/* Frees the ring once its handles are closed; the provided slices go back to
 * the pool. */
void asock__ring_destroy(struct asock_loop *loop);

/* The seam functions for a ring socket (src/uring/tcp-ring.c), called by
 * src/unix/tcp-io.c's when the socket has ASOCK__SF_RING. */
void asock__ring_io_init(struct asock_socket *sock);
int asock__ring_adopt_fd(struct asock_socket *sock, int fd);
/* A connection the ring accepted: 0 with *conn set, ASOCK_EAGAIN while an
 * accept is out, or ASOCK__RING_PASS when none is: the readiness path then
 * accepts itself. */
#define ASOCK__RING_PASS 1
int asock__ring_accept(struct asock_socket *listener, uintptr_t *conn);
void asock__ring_accept_wanted(struct asock_socket *listener, int wanted);
int asock__ring_connect(struct asock_socket *sock, const struct sockaddr *addr,
                        unsigned int len);
int asock__ring_read_start(struct asock_socket *sock);
void asock__ring_read_stop(struct asock_socket *sock);
int asock__ring_write(struct asock_socket *sock, struct asock_op *op,
                      const uv_buf_t *iov, unsigned int n, size_t bytes);
void asock__ring_close(struct asock_socket *sock, int abortive);
/* UDP sockets of a ring loop (src/uring/udp-ring.c), called by
 * src/unix/udp-io.c's functions. */
/* asock__udp_io_want() of such a socket. */
void asock__ring_udp_want(struct asock_socket *sock, unsigned int what, int on);
/* The oldest datagram the ring received for the socket, where it lies in
 * its provided buffer. */
typedef struct asock__ring_dgram {
  const char *data; /* its bytes, len of them: all that the buffer held */
  size_t len;
  size_t whole;     /* the datagram's length */
  int truncated;    /* whole > len */
  const void *name; /* its sender, namelen bytes */
  unsigned int namelen;
  void *control; /* its packet information, controllen bytes */
  size_t controllen;
} asock__ring_dgram;
/* 1 with *d set, 0 when the ring holds nothing and none of its receives
 * is out (the caller may read the socket itself), ASOCK_EAGAIN while one
 * is, or the error the socket met after the datagrams the ring holds. */
int asock__ring_udp_peek(struct asock_socket *sock, asock__ring_dgram *d);
/* What the last peek gave is read: its buffer goes back to the kernel, or
 * the error is given. */
void asock__ring_udp_next(struct asock_socket *sock);
/* asock__ring_udp_next() without the copy: the slice the datagram lies in
 * goes to the caller, who gives `mine` (a whole slice charged to the
 * socket) in its place. Returns that slice. */
void *asock__ring_udp_take(struct asock_socket *sock, void *mine);
/* For the tests: the datagrams the loop's ring received into provided
 * buffers, and the most bytes of one datagram such a buffer holds. */
unsigned long asock__ring_udp_received(const struct asock_loop *loop);
size_t asock__ring_udp_room(const struct asock_loop *loop);
/* Whether the socket may have datagrams for a read after one: its stash
 * holds some (or an error), or no multishot receive of the ring's is out
 * and the socket itself is read. */
static inline int asock__ring_udp_more(const asock__ring_io *io) {
  return io->stash != NULL || io->stash_status != 0 ||
         (io->out & ASOCK__RING_MSHOT) == 0;
}
/* Test hook: a ring made while it is not 0 takes no multishot receive of
 * messages, as a kernel before 6.0 would: its UDP sockets' receives poll. */
extern unsigned int asock__ring_udp_poll;

/* Whether a ring socket's receive out, or what one brought while no
 * receive waited, comes before a read of the socket's own (which the
 * readiness path then makes: a ring socket's receives and accepts while the
 * ring has none out complete inside the call as they do there; its sends
 * are always the ring's, asock__io_try_send() says ASOCK_EAGAIN). */
static inline int asock__ring_recv_held(const asock__ring_io *io) {
  return (io->out & ASOCK__RING_RECV) != 0 || io->stash != NULL ||
         io->stash_status != 0;
}
/* asock__try_recv() of such a socket: the bytes that came while no receive
 * waited, their end, or ASOCK_EAGAIN while a receive is out. */
long asock__ring_try_recv(struct asock_socket *sock, void *buf, size_t len);

#endif /* ASOCK_URING_RING_H */
