/* bench-echo-uring: an echo server on io_uring, the other floor on Linux.
 * One multishot accept; per connection one multishot receive that picks its
 * buffers from a ring registered with the kernel; each buffer is echoed by a
 * send straight from it and goes back to the ring once the send completes.
 * Sends on one connection go one at a time, because io_uring does not keep
 * two sends to a socket in order, and a short send is resubmitted for the
 * rest. Exits 77 if the kernel refuses io_uring, buffer rings or multishot. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "bench-alloc.h"
#include "bench-server.h"
#include "bench-util.h"

/* The low bits of a request's user_data say what it is; the rest is the
 * connection it belongs to (malloc aligns to at least 8). */
enum {
  TAG_ACCEPT = 1,
  TAG_RECV = 2,
  TAG_SEND = 3,
  TAG_SIGNAL = 4,
  TAG_CANCEL = 5,
  TAG_PROBE = 6,
  TAG_MASK = 7
};

#define EXIT_UNSUPPORTED 77
#define BUF_GROUP 0
#define NO_BUF UINT32_MAX

typedef struct conn {
  struct conn *prev, *next; /* every connection, for shutdown */
  struct conn *starved_next;
  int fd;
  unsigned int ops;      /* requests in flight that name this connection */
  uint32_t qhead, qtail; /* received buffers still to echo, oldest first */
  uint32_t sent;         /* bytes of the oldest already sent */
  unsigned int receiving : 1, sending : 1, eof : 1, closing : 1, starved : 1;
} conn_t;

static struct io_uring ring;
static struct io_uring_buf_ring *buf_ring;
static size_t buf_ring_bytes;
static char *buf_base;
static size_t buf_size = 64 * 1024;
static unsigned int buf_count = 1024;
static uint32_t *buf_next; /* queue links between received buffers */
static uint32_t *buf_len;  /* bytes received into each buffer */
static unsigned int bufs_free;

static int listen_fd = -1;
static int signal_fd = -1;
static struct signalfd_siginfo siginfo;
static conn_t *conns;
static conn_t *starved;       /* connections whose receive ran out of buffers */
static unsigned int inflight; /* requests whose last completion is to come */
static int stopping;
static int ring_ready;
static int failed; /* exit status once the loop ends, 0 if none */

static void fail(int status, const char *what, int err) {
  fprintf(stderr, "%s: %s: %s\n", bench_progname, what, strerror(err));
  if (failed == 0)
    failed = status;
}

/* Returns a free submission entry, flushing the queue to the kernel first if
 * it is full. */
static struct io_uring_sqe *get_sqe(void) {
  struct io_uring_sqe *sqe;
  int err;

  sqe = io_uring_get_sqe(&ring);
  if (sqe == NULL) {
    err = io_uring_submit(&ring);
    sqe = io_uring_get_sqe(&ring);
    if (sqe == NULL) {
      fail(1, "io_uring_submit", err < 0 ? -err : EBUSY);
      return NULL;
    }
  }
  /* Every request has a last completion, which the count waits for. */
  inflight++;
  return sqe;
}

static void arm_accept(void) {
  struct io_uring_sqe *sqe = get_sqe();

  if (sqe == NULL)
    return;
  io_uring_prep_multishot_accept(sqe, listen_fd, NULL, NULL, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(sqe, TAG_ACCEPT);
}

static void arm_recv(int fd, uint64_t user_data) {
  struct io_uring_sqe *sqe = get_sqe();

  if (sqe == NULL)
    return;
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = BUF_GROUP;
  io_uring_sqe_set_data64(sqe, user_data);
}

static void conn_recv(conn_t *c) {
  arm_recv(c->fd, (uintptr_t)c | TAG_RECV);
  c->receiving = 1;
  c->ops++;
}

static void conn_send(conn_t *c) {
  struct io_uring_sqe *sqe = get_sqe();
  uint32_t bid = c->qhead;

  if (sqe == NULL)
    return;
  io_uring_prep_send(sqe, c->fd, buf_base + (size_t)bid * buf_size + c->sent,
                     buf_len[bid] - c->sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, (uintptr_t)c | TAG_SEND);
  c->sending = 1;
  c->ops++;
}

/* Gives a buffer back to the kernel, then lets connections that ran short
 * receive again, one per free buffer. */
static void buf_recycle(uint32_t bid) {
  conn_t *c;

  io_uring_buf_ring_add(buf_ring, buf_base + (size_t)bid * buf_size,
                        (unsigned int)buf_size, (unsigned short)bid,
                        io_uring_buf_ring_mask(buf_count), 0);
  io_uring_buf_ring_advance(buf_ring, 1);
  bufs_free++;
  while (starved != NULL && bufs_free > 0 && !stopping) {
    c = starved;
    starved = c->starved_next;
    c->starved = 0;
    if (!c->closing && !c->eof && !c->receiving)
      conn_recv(c);
  }
}

static void conn_new(int fd) {
  conn_t *c;
  int on = 1;

  /* Without this, Nagle's algorithm and the peer's delayed ACK would be
   * measured instead of the event loop. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  c = bench_calloc(1, sizeof(*c));
  if (c == NULL) {
    close(fd);
    return;
  }
  c->fd = fd;
  c->qhead = c->qtail = NO_BUF;
  c->next = conns;
  if (conns != NULL)
    conns->prev = c;
  conns = c;
  conn_recv(c);
}

/* Frees a closing connection once no request names it any more. */
static void conn_maybe_free(conn_t *c) {
  conn_t **p;
  uint32_t bid;

  if (!c->closing || c->ops > 0)
    return;
  while (c->qhead != NO_BUF) {
    bid = c->qhead;
    c->qhead = buf_next[bid];
    buf_recycle(bid);
  }
  if (c->starved) {
    for (p = &starved; *p != c; p = &(*p)->starved_next)
      ;
    *p = c->starved_next;
  }
  close(c->fd);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  bench_free(c);
}

/* Starts closing; the caller then calls conn_maybe_free(), as every
 * completion handler does last. */
static void conn_close(conn_t *c) {
  struct io_uring_sqe *sqe;

  if (c->closing)
    return;
  c->closing = 1;
  if (c->ops > 0 && !stopping) {
    /* The cancel names the connection too, so the descriptor stays open
     * (and its number unused by a new connection) until it is done. */
    sqe = get_sqe();
    if (sqe != NULL) {
      io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(sqe, (uintptr_t)c | TAG_CANCEL);
      c->ops++;
    }
  }
}

static void on_accept(int res, int more) {
  if (res >= 0) {
    if (stopping)
      close(res);
    else
      conn_new(res);
  } else if (res == -EINVAL) {
    fail(EXIT_UNSUPPORTED, "the kernel refuses multishot accept", -res);
  } else if (res != -ECANCELED) {
    fprintf(stderr, "%s: accept: %s\n", bench_progname, strerror(-res));
  }
  if (!more && !stopping && failed == 0)
    arm_accept();
}

/* The receive ended because the ring was empty: it is armed again when a
 * buffer comes back. Buffers given back after the kernel found the ring empty
 * but before this completion was seen were given while the connection was
 * not waiting; then it tries again at once, or it could wait forever. */
static void conn_starve(conn_t *c) {
  if (bufs_free > 0) {
    conn_recv(c);
    return;
  }
  c->starved = 1;
  c->starved_next = starved;
  starved = c;
}

static void on_recv(conn_t *c, struct io_uring_cqe *cqe) {
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  uint32_t bid;

  if (!more) {
    c->receiving = 0;
    c->ops--;
  }
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    bufs_free--;
    if (cqe->res > 0 && !c->closing && !stopping) {
      buf_len[bid] = (uint32_t)cqe->res;
      buf_next[bid] = NO_BUF;
      if (c->qhead == NO_BUF)
        c->qhead = bid;
      else
        buf_next[c->qtail] = bid;
      c->qtail = bid;
      if (!c->sending)
        conn_send(c);
    } else {
      buf_recycle(bid);
    }
  }

  if (cqe->res == 0) {
    /* EOF: close once the last echo is out. */
    c->eof = 1;
    if (!c->sending)
      conn_close(c);
  } else if (cqe->res == -ENOBUFS) {
    if (!c->closing && !c->starved && !stopping)
      conn_starve(c);
  } else if (cqe->res == -EINVAL) {
    fail(EXIT_UNSUPPORTED, "the kernel refuses multishot receive", EINVAL);
    conn_close(c);
  } else if (cqe->res < 0) {
    if (cqe->res != -ECANCELED)
      conn_close(c);
  } else if (!more && !c->closing && !stopping) {
    /* The kernel ended the multishot receive for its own reasons (a full
     * completion queue, say); the connection is fine, so it goes on. */
    conn_recv(c);
  }
  conn_maybe_free(c);
}

static void on_send(conn_t *c, int res) {
  uint32_t bid = c->qhead;

  c->sending = 0;
  c->ops--;
  if (res <= 0) {
    conn_close(c);
  } else if (!c->closing && !stopping) {
    c->sent += (uint32_t)res;
    if (c->sent == buf_len[bid]) {
      c->qhead = buf_next[bid];
      c->sent = 0;
      buf_recycle(bid);
    }
    /* A short send leaves the head in place: the next send is the rest. */
    if (c->qhead != NO_BUF)
      conn_send(c);
    else if (c->eof)
      conn_close(c);
  }
  conn_maybe_free(c);
}

static void on_signal(void) {
  struct io_uring_sqe *sqe;

  stopping = 1;
  /* Cancels every request left; the loop ends when the last completes. */
  sqe = get_sqe();
  if (sqe != NULL) {
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, TAG_CANCEL);
  }
}

static void arm_signal(void) {
  struct io_uring_sqe *sqe = get_sqe();

  if (sqe == NULL)
    return;
  io_uring_prep_read(sqe, signal_fd, &siginfo, sizeof(siginfo), 0);
  io_uring_sqe_set_data64(sqe, TAG_SIGNAL);
}

static void on_cqe(struct io_uring_cqe *cqe) {
  uint64_t ud = io_uring_cqe_get_data64(cqe);
  conn_t *c = (conn_t *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);
  int more = (cqe->flags & IORING_CQE_F_MORE) != 0;

  if (!more)
    inflight--;
  switch (ud & TAG_MASK) {
  case TAG_ACCEPT:
    on_accept(cqe->res, more);
    break;
  case TAG_RECV:
    on_recv(c, cqe);
    break;
  case TAG_SEND:
    on_send(c, cqe->res);
    break;
  case TAG_SIGNAL:
    if (cqe->res == (int)sizeof(siginfo))
      on_signal();
    else if (!stopping)
      arm_signal();
    break;
  case TAG_CANCEL:
    if (c != NULL) {
      c->ops--;
      conn_maybe_free(c);
    }
    break;
  default:
    break;
  }
}

static void reap(void) {
  struct io_uring_cqe *cqe;
  unsigned int head, n = 0;

  io_uring_for_each_cqe(&ring, head, cqe) {
    on_cqe(cqe);
    n++;
  }
  io_uring_cq_advance(&ring, n);
}

/* Multishot receive with buffer selection needs Linux 6.0. Rather than fail
 * at the first client, try it once on a socket pair: one byte, then EOF. */
static int probe_recv(void) {
  struct __kernel_timespec ts = {1, 0};
  struct io_uring_cqe *cqe;
  int sv[2], res = 0, done = 0, err;

  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    fail(1, "socketpair", errno);
    return -1;
  }
  arm_recv(sv[0], TAG_PROBE);
  if (write(sv[1], "x", 1) != 1)
    fail(1, "write", errno);
  close(sv[1]);
  while (!done && failed == 0) {
    err = io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, NULL);
    if (err < 0) {
      fail(1, "waiting for the receive probe", -err);
      break;
    }
    if ((io_uring_cqe_get_data64(cqe) & TAG_MASK) != TAG_PROBE) {
      on_cqe(cqe);
    } else {
      done = (cqe->flags & IORING_CQE_F_MORE) == 0;
      if (done)
        inflight--;
      /* ENOBUFS means it worked but the ring ran dry before the EOF (a
       * ring of one buffer does that): multishot works. */
      if (cqe->res < 0 && cqe->res != -ENOBUFS)
        res = cqe->res;
      if (cqe->flags & IORING_CQE_F_BUFFER) {
        bufs_free--;
        buf_recycle(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
      }
    }
    io_uring_cqe_seen(&ring, cqe);
  }
  close(sv[0]);
  if (res < 0)
    fail(res == -EINVAL ? EXIT_UNSUPPORTED : 1,
         "the kernel refuses multishot receive with a buffer ring", -res);
  return failed == 0 ? 0 : -1;
}

static int setup_ring(void) {
  struct io_uring_params p;
  struct io_uring_buf_reg reg;
  unsigned int i;
  int err;

  /* Deferred task work (6.1) batches completions for a single thread; older
   * kernels refuse the flags, and then the ring is set up without them. */
  memset(&p, 0, sizeof(p));
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  p.cq_entries = 16384;
  err = io_uring_queue_init_params(4096, &ring, &p);
  if (err == -EINVAL) {
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    err = io_uring_queue_init_params(4096, &ring, &p);
  }
  if (err < 0) {
    fail(EXIT_UNSUPPORTED, "the kernel refuses an io_uring", -err);
    return -1;
  }
  ring_ready = 1;

  /* liburing 2.3 (Debian 12) has no io_uring_setup_buf_ring(): the ring is
   * page-aligned memory of our own, registered by hand. */
  buf_ring_bytes = buf_count * sizeof(struct io_uring_buf);
  buf_ring = mmap(NULL, buf_ring_bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  buf_base = mmap(NULL, (size_t)buf_count * buf_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  buf_next = bench_calloc(buf_count, sizeof(*buf_next));
  buf_len = bench_calloc(buf_count, sizeof(*buf_len));
  if (buf_ring == MAP_FAILED || buf_base == MAP_FAILED || buf_next == NULL ||
      buf_len == NULL) {
    fail(1, "allocating the receive buffers", ENOMEM);
    return -1;
  }
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uintptr_t)buf_ring;
  reg.ring_entries = buf_count;
  reg.bgid = BUF_GROUP;
  err = io_uring_register_buf_ring(&ring, &reg, 0);
  if (err < 0) {
    fail(EXIT_UNSUPPORTED, "the kernel refuses a provided buffer ring", -err);
    return -1;
  }
  io_uring_buf_ring_init(buf_ring);
  for (i = 0; i < buf_count; i++)
    io_uring_buf_ring_add(buf_ring, buf_base + (size_t)i * buf_size,
                          (unsigned int)buf_size, (unsigned short)i,
                          io_uring_buf_ring_mask(buf_count), (int)i);
  io_uring_buf_ring_advance(buf_ring, (int)buf_count);
  bufs_free = buf_count;
  return 0;
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 64 * 1024, 1024};
  struct sockaddr_storage bound;
  uint64_t limit;
  conn_t *c;
  int err;

  bench_progname = "bench-echo-uring";
  bench_server_parse(argc, argv, BENCH_OPT_BUF_SIZE | BENCH_OPT_BUFFERS, &opts);
  buf_size = opts.buf_size;
  buf_count = opts.buffers;
  bench_raise_fd_limit(0, &limit);

  signal_fd = bench_server_signalfd();
  if (signal_fd < 0)
    goto done;
  if (setup_ring() != 0)
    goto done;
  listen_fd = bench_server_listen(&opts, 0, &bound);
  if (listen_fd < 0) {
    failed = 1;
    goto done;
  }
  arm_signal();
  arm_accept();
  if (probe_recv() != 0)
    goto done;
  bench_server_print_listening((struct sockaddr *)&bound);
  bench_alloc_start();

  while (failed == 0 && !(stopping && inflight == 0)) {
    err = io_uring_submit_and_wait(&ring, 1);
    if (err < 0 && err != -EINTR) {
      fail(1, "io_uring_submit_and_wait", -err);
      break;
    }
    reap();
  }

done:
  while (conns != NULL) {
    /* Every request is done (or the ring is about to go): just let go. */
    c = conns;
    conns = c->next;
    close(c->fd);
    bench_free(c);
  }
  if (ring_ready)
    io_uring_queue_exit(&ring);
  if (buf_ring != NULL && buf_ring != MAP_FAILED)
    munmap(buf_ring, buf_ring_bytes);
  if (buf_base != NULL && buf_base != MAP_FAILED)
    munmap(buf_base, (size_t)buf_count * buf_size);
  bench_free(buf_next);
  bench_free(buf_len);
  if (listen_fd >= 0)
    close(listen_fd);
  if (signal_fd >= 0)
    close(signal_fd);
  if (failed == 0)
    fprintf(stderr, "allocations: %llu\n", bench_alloc_count());
  return failed;
}
