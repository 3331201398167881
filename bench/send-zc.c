/* bench-send-zc: what a zero-copy send (IORING_OP_SEND_ZC) gains over a
 * copying one (IORING_OP_SEND) on a TCP connection over loopback, for the
 * threshold above which the io_uring backend would send without copying.
 *
 *   bench-send-zc [--seconds S] [--rounds N] [SIZE...]
 *
 * One connection; a reader thread drains it with read(). For each size
 * (default 4 KiB to 4 MiB) the sender submits one send of SIZE bytes from
 * one buffer at a time, with MSG_WAITALL, and waits for its completion (and
 * for a zero-copy send, its notification: the buffer is the sender's again
 * only then), for S seconds (default 2), copying and zero-copy in turn,
 * N rounds (default 3, the order swapped every round). Prints the median
 * MB/s and the sending thread's CPU per KiB of each, and their ratios,
 * zero-copy over copying. Exits 77 if the kernel refuses io_uring or
 * zero-copy sends. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "bench-ab.h"

static int reader_fd;

static void *reader(void *arg) {
  static char buf[1 << 20];
  (void)arg;
  while (read(reader_fd, buf, sizeof(buf)) > 0) {
  }
  return NULL;
}

typedef struct zc_ctx {
  struct io_uring ring;
  int fd;
  const char *buf;
} zc_ctx;

/* Sends size-byte sends, copying (way 0) or not (way 1), until `until`: 0,
 * or a negative errno. */
static int run(void *arg, size_t size, int zc, double until,
               unsigned long long *bytes) {
  zc_ctx *ctx = arg;
  struct io_uring *ring = &ctx->ring;

  do {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    int waiting = 1;
    if (zc)
      io_uring_prep_send_zc(sqe, ctx->fd, ctx->buf, size, MSG_WAITALL, 0);
    else
      io_uring_prep_send(sqe, ctx->fd, ctx->buf, size, MSG_WAITALL);
    io_uring_submit(ring);
    while (waiting) {
      struct io_uring_cqe *cqe;
      int err = io_uring_wait_cqe(ring, &cqe);
      if (err < 0)
        return err;
      if (cqe->flags & IORING_CQE_F_NOTIF) {
        waiting = 0; /* the buffer is the sender's again */
      } else {
        if (cqe->res < 0) {
          err = cqe->res;
          io_uring_cqe_seen(ring, cqe);
          return err;
        }
        *bytes += (unsigned long long)cqe->res;
        /* A zero-copy send's notification follows when F_MORE is set. */
        if ((cqe->flags & IORING_CQE_F_MORE) == 0)
          waiting = 0;
      }
      io_uring_cqe_seen(ring, cqe);
    }
  } while (bench_ab_now() < until);
  return 0;
}

int main(int argc, char **argv) {
  static const size_t default_sizes[] = {4096,   16384,   65536,
                                         262144, 1048576, 4194304};
  bench_ab ab;
  size_t biggest = 0;
  zc_ctx ctx;
  pthread_t th;
  char *buf;
  int i, err, in;

  memset(&ab, 0, sizeof(ab));
  ab.name = "bench-send-zc";
  ab.way[0] = "copying";
  ab.way[1] = "zero-copy";
  ab.process_cpu = 0;
  if (bench_ab_args(&ab, argc, argv, default_sizes,
                    (int)(sizeof(default_sizes) / sizeof(default_sizes[0])),
                    (size_t)1 << 30) != 0)
    return 2;
  for (i = 0; i < ab.nsizes; i++)
    if (ab.sizes[i] > biggest)
      biggest = ab.sizes[i];
  buf = malloc(biggest);
  if (buf == NULL || bench_ab_pair(&ctx.fd, &in) != 0) {
    perror("bench-send-zc: setting up");
    return 1;
  }
  memset(buf, 0x5a, biggest);
  ctx.buf = buf;
  err = io_uring_queue_init(8, &ctx.ring, 0);
  if (err < 0) {
    fprintf(stderr, "bench-send-zc: io_uring: %s\n", strerror(-err));
    return 77;
  }
  reader_fd = in;
  if (pthread_create(&th, NULL, reader, NULL) != 0) {
    fprintf(stderr, "bench-send-zc: no reader thread\n");
    return 1;
  }
  err = bench_ab_table(&ab, run, &ctx);
  if (err != 0)
    return err;
  shutdown(ctx.fd, SHUT_WR);
  pthread_join(th, NULL);
  close(ctx.fd);
  close(in);
  io_uring_queue_exit(&ctx.ring);
  free(buf);
  return 0;
}
