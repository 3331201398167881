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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#define MAX_SIZES 16
#define MAX_ROUNDS 15
#define FILE_BYTES (64u << 20)
#define PIPE_MAX (1u << 20)

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The process's CPU: its threads and the ring's kernel workers. */
static double process_cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* A connected pair over loopback: *out sends, a reader process drains
 * the other end. */
static int connect_pair(int *out, pid_t *reader) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int one = 1;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int in;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || s < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0 ||
      connect(s, (struct sockaddr *)&a, sizeof(a)) != 0)
    return -1;
  in = accept(l, NULL, NULL);
  close(l);
  if (in < 0)
    return -1;
  *reader = fork();
  if (*reader < 0)
    return -1;
  if (*reader == 0) {
    static char buf[1 << 20];
    close(s);
    while (read(in, buf, sizeof(buf)) > 0) {
    }
    _exit(0);
  }
  close(in);
  (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (fcntl(s, F_SETFL, O_NONBLOCK) != 0)
    return -1;
  *out = s;
  return 0;
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

typedef struct result {
  double mbs;        /* MB/s */
  double cpu_us_kib; /* the process's CPU per KiB sent */
} result;

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

/* Sends size-byte ranges for `seconds` with one way: 0, or a negative
 * errno. */
static int run(struct io_uring *ring, const int pipe_fds[2], int sock, int file,
               size_t size, int splice_way, double seconds, result *res) {
  unsigned long long bytes = 0;
  size_t off = 0;
  size_t pipe_len = size < PIPE_MAX ? size : PIPE_MAX;
  double t0, c0, t;

  if (splice_way && fcntl(pipe_fds[1], F_SETPIPE_SZ, (int)pipe_len) < 0)
    return -errno;
  t0 = now_s();
  c0 = process_cpu_s();
  do {
    int err;
    if (off + size > FILE_BYTES)
      off = 0;
    err = splice_way
              ? send_splice(ring, pipe_fds, pipe_len, sock, file, off, size)
              : send_sendfile(sock, file, off, size);
    if (err < 0)
      return err;
    bytes += size;
    off += size;
    t = now_s() - t0;
  } while (t < seconds);
  res->mbs = (double)bytes / t / 1e6;
  res->cpu_us_kib = (process_cpu_s() - c0) * 1e6 / ((double)bytes / 1024.0);
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  static const size_t default_sizes[] = {65536, 262144, 1048576, 4194304};
  size_t sizes[MAX_SIZES];
  int nsizes = 0, rounds = 3, i, r, err;
  double seconds = 2;
  struct io_uring ring;
  int pipe_fds[2];
  int out, file;
  pid_t reader;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else if (argv[i][0] != '-' && nsizes < MAX_SIZES) {
      sizes[nsizes++] = strtoul(argv[i], NULL, 0);
    } else {
      fprintf(stderr,
              "usage: bench-splice [--seconds S] [--rounds N] [SIZE...]\n");
      return 2;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || seconds <= 0) {
    fprintf(stderr, "bench-splice: 1 to %d rounds of more than 0 s\n",
            MAX_ROUNDS);
    return 2;
  }
  if (nsizes == 0) {
    nsizes = (int)(sizeof(default_sizes) / sizeof(default_sizes[0]));
    memcpy(sizes, default_sizes, sizeof(default_sizes));
  }
  for (i = 0; i < nsizes; i++) {
    if (sizes[i] == 0 || sizes[i] > FILE_BYTES) {
      fprintf(stderr, "bench-splice: sizes from 1 byte to 64 MiB\n");
      return 2;
    }
  }
  file = make_file();
  if (file < 0 || pipe2(pipe_fds, O_CLOEXEC) != 0 ||
      connect_pair(&out, &reader) != 0) {
    perror("bench-splice: setting up");
    return 1;
  }
  err = io_uring_queue_init(8, &ring, 0);
  if (err < 0) {
    fprintf(stderr, "bench-splice: io_uring: %s\n", strerror(-err));
    kill(reader, SIGTERM);
    return 77;
  }
  printf("| size | sendfile MB/s | splice MB/s | ratio | sendfile CPU µs/KiB "
         "| splice CPU µs/KiB | ratio |\n");
  printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (i = 0; i < nsizes; i++) {
    double mbs[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS], m[2], c[2];
    int k;
    for (r = 0; r < rounds; r++) {
      for (k = 0; k < 2; k++) {
        int way = (k + r) % 2; /* the order swaps every round */
        result res = {0, 0};
        err = run(&ring, pipe_fds, out, file, sizes[i], way, seconds, &res);
        if (err == -EINVAL || err == -EOPNOTSUPP) {
          fprintf(stderr, "bench-splice: the kernel refuses %s: %s\n",
                  way ? "splice" : "sendfile", strerror(-err));
          kill(reader, SIGTERM);
          return 77;
        }
        if (err < 0) {
          fprintf(stderr, "bench-splice: %s\n", strerror(-err));
          kill(reader, SIGTERM);
          return 1;
        }
        mbs[way][r] = res.mbs;
        cpu[way][r] = res.cpu_us_kib;
      }
    }
    for (k = 0; k < 2; k++) {
      m[k] = median(mbs[k], rounds);
      c[k] = median(cpu[k], rounds);
    }
    printf("| %zu | %.0f | %.0f | %.2fx | %.3f | %.3f | %.2fx |\n", sizes[i],
           m[0], m[1], m[1] / m[0], c[0], c[1], c[1] / c[0]);
    fflush(stdout);
  }
  shutdown(out, SHUT_WR);
  close(out);
  (void)waitpid(reader, NULL, 0);
  io_uring_queue_exit(&ring);
  close(file);
  return 0;
}
