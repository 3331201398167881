/* bench-splice: whether the io_uring backend should send the file range of
 * a send of packets with the ring's splice (file -> pipe -> socket, two
 * linked IORING_OP_SPLICE requests) instead of sendfile(), as it does now,
 * on a TCP connection over loopback.
 *
 *   bench-splice [--seconds S] [--rounds N] [SIZE...]
 *
 * A 64 MiB file in the page cache (made in TMPDIR, or /tmp, and removed at
 * once); a reader process drains the connection with read(). For each size
 * (default 64 KiB to 4 MiB) the sender sends SIZE bytes of the file at a
 * time, from offsets that walk through it, for S seconds (default 2): with
 * sendfile() on the non-blocking socket, waiting in poll() when it is full,
 * as asock does; or with the ring, through a pipe of up to 1 MiB, waiting
 * for each pair of requests. N rounds (default 3, the order swapped every
 * round). Prints the median MB/s and the sender's CPU per KiB (the whole
 * process, so that the ring's kernel workers count) of each, and their
 * ratios, splice over sendfile. Exits 77 if the kernel refuses io_uring or
 * splice. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* F_SETPIPE_SZ, pipe2() */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>

#include "bench-ab.h"

#define FILE_BYTES (64u << 20)
#define PIPE_MAX (1u << 20)

/* A connection over loopback: *out sends, a reader process drains the
 * other end. */
static int connect_pair(int *out, pid_t *reader) {
  int in;

  if (bench_ab_pair(out, &in) != 0)
    return -1;
  *reader = fork();
  if (*reader < 0)
    return -1;
  if (*reader == 0) {
    static char buf[1 << 20];
    close(*out);
    while (read(in, buf, sizeof(buf)) > 0) {
    }
    _exit(0);
  }
  close(in);
  return fcntl(*out, F_SETFL, O_NONBLOCK);
}

/* A file of FILE_BYTES, read once so that it is in the page cache. */
static int make_file(void) {
  const char *dir = getenv("TMPDIR");
  char path[4096];
  static char block[1 << 20];
  unsigned int i;
  int fd;

  snprintf(path, sizeof(path), "%s/bench-splice-XXXXXX",
           dir != NULL ? dir : "/tmp");
  fd = mkstemp(path);
  if (fd < 0)
    return -1;
  unlink(path);
  memset(block, 0x5a, sizeof(block));
  for (i = 0; i < FILE_BYTES / sizeof(block); i++)
    if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block))
      return -1;
  for (i = 0; i < FILE_BYTES / sizeof(block); i++)
    if (pread(fd, block, sizeof(block), (off_t)i * sizeof(block)) < 0)
      return -1;
  return fd;
}

/* size bytes of the file from off with sendfile(): 0 or a negative errno. */
static int send_sendfile(int sock, int file, size_t off, size_t size) {
  size_t done = 0;
  while (done < size) {
    off_t at = (off_t)(off + done);
    ssize_t n = sendfile(sock, file, &at, size - done);
    if (n > 0) {
      done += (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      struct pollfd p;
      p.fd = sock;
      p.events = POLLOUT;
      p.revents = 0;
      (void)poll(&p, 1, -1);
    } else {
      return n < 0 ? -errno : -EIO;
    }
  }
  return 0;
}

/* One request's result. */
static int reap_one(struct io_uring *ring, int *res, unsigned long long *data) {
  struct io_uring_cqe *cqe;
  int err = io_uring_wait_cqe(ring, &cqe);
  if (err < 0)
    return err;
  *res = cqe->res;
  *data = cqe->user_data;
  io_uring_cqe_seen(ring, cqe);
  return 0;
}

/* size bytes of the file from off through the pipe: each pipe's worth is a
 * splice into the pipe linked to a splice out of it. */
static int send_splice(struct io_uring *ring, const int pipe_fds[2],
                       size_t pipe_len, int sock, int file, size_t off,
                       size_t size) {
  size_t done = 0;
  while (done < size) {
    size_t want = size - done < pipe_len ? size - done : pipe_len;
    struct io_uring_sqe *in = io_uring_get_sqe(ring);
    struct io_uring_sqe *out = io_uring_get_sqe(ring);
    int res[2] = {0, 0}, moved, k, err;

    io_uring_prep_splice(in, file, (int64_t)(off + done), pipe_fds[1], -1,
                         (unsigned int)want, 0);
    in->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(in, 0);
    io_uring_prep_splice(out, pipe_fds[0], -1, sock, -1, (unsigned int)want, 0);
    io_uring_sqe_set_data64(out, 1);
    io_uring_submit(ring);
    for (k = 0; k < 2; k++) {
      unsigned long long which;
      int r;
      err = reap_one(ring, &r, &which);
      if (err < 0)
        return err;
      res[which ? 1 : 0] = r;
    }
    if (res[0] <= 0)
      return res[0] < 0 ? res[0] : -EIO;
    /* What the first splice out left in the pipe (a short one, or one the
     * link cancelled) goes next. */
    moved = res[1] > 0 ? res[1] : 0;
    while (moved < res[0]) {
      struct io_uring_sqe *more = io_uring_get_sqe(ring);
      unsigned long long which;
      int r;
      io_uring_prep_splice(more, pipe_fds[0], -1, sock, -1,
                           (unsigned int)(res[0] - moved), 0);
      io_uring_sqe_set_data64(more, 1);
      io_uring_submit(ring);
      err = reap_one(ring, &r, &which);
      if (err < 0)
        return err;
      if (r > 0)
        moved += r;
      else if (r != -EAGAIN && r != -ECANCELED)
        return r < 0 ? r : -EIO;
    }
    done += (size_t)res[0];
  }
  return 0;
}

typedef struct splice_ctx {
  struct io_uring ring;
  int pipe_fds[2];
  int sock;
  int file;
} splice_ctx;

/* Sends size-byte ranges with sendfile() (way 0) or splice (way 1) until
 * `until`: 0, or a negative errno. */
static int run(void *arg, size_t size, int splice_way, double until,
               unsigned long long *bytes) {
  splice_ctx *ctx = arg;
  size_t off = 0;
  size_t pipe_len = size < PIPE_MAX ? size : PIPE_MAX;

  if (splice_way && fcntl(ctx->pipe_fds[1], F_SETPIPE_SZ, (int)pipe_len) < 0)
    return -errno;
  do {
    int err;
    if (off + size > FILE_BYTES)
      off = 0;
    err = splice_way ? send_splice(&ctx->ring, ctx->pipe_fds, pipe_len,
                                   ctx->sock, ctx->file, off, size)
                     : send_sendfile(ctx->sock, ctx->file, off, size);
    if (err < 0)
      return err;
    *bytes += size;
    off += size;
  } while (bench_ab_now() < until);
  return 0;
}

int main(int argc, char **argv) {
  static const size_t default_sizes[] = {65536, 262144, 1048576, 4194304};
  bench_ab ab;
  splice_ctx ctx;
  pid_t reader;
  int err;

  memset(&ab, 0, sizeof(ab));
  ab.name = "bench-splice";
  ab.way[0] = "sendfile";
  ab.way[1] = "splice";
  ab.process_cpu = 1;
  if (bench_ab_args(&ab, argc, argv, default_sizes,
                    (int)(sizeof(default_sizes) / sizeof(default_sizes[0])),
                    FILE_BYTES) != 0)
    return 2;
  ctx.file = make_file();
  if (ctx.file < 0 || pipe2(ctx.pipe_fds, O_CLOEXEC) != 0 ||
      connect_pair(&ctx.sock, &reader) != 0) {
    perror("bench-splice: setting up");
    return 1;
  }
  err = io_uring_queue_init(8, &ctx.ring, 0);
  if (err < 0) {
    fprintf(stderr, "bench-splice: io_uring: %s\n", strerror(-err));
    kill(reader, SIGTERM);
    return 77;
  }
  err = bench_ab_table(&ab, run, &ctx);
  if (err != 0) {
    kill(reader, SIGTERM);
    return err;
  }
  shutdown(ctx.sock, SHUT_WR);
  close(ctx.sock);
  (void)waitpid(reader, NULL, 0);
  io_uring_queue_exit(&ctx.ring);
  close(ctx.file);
  return 0;
}
