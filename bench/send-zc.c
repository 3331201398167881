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
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#define MAX_SIZES 16
#define MAX_ROUNDS 15

static int reader_fd;

static void *reader(void *arg) {
  static char buf[1 << 20];
  (void)arg;
  while (read(reader_fd, buf, sizeof(buf)) > 0) {
  }
  return NULL;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double thread_cpu_s(void) {
  struct rusage u;
  getrusage(RUSAGE_THREAD, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/* A connected pair over loopback: *out sends, the reader drains *in. */
static int connect_pair(int *out, int *in) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int one = 1;
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int s = socket(AF_INET, SOCK_STREAM, 0);

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (l < 0 || s < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(l, 1) != 0 || getsockname(l, (struct sockaddr *)&a, &len) != 0 ||
      connect(s, (struct sockaddr *)&a, sizeof(a)) != 0)
    return -1;
  *in = accept(l, NULL, NULL);
  close(l);
  if (*in < 0)
    return -1;
  (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  *out = s;
  return 0;
}

typedef struct result {
  double mbs;        /* MB/s */
  double cpu_us_kib; /* the sending thread's CPU per KiB sent */
} result;

/* Sends size-byte sends for `seconds`: 0, or a negative errno. */
static int run(struct io_uring *ring, int fd, const char *buf, size_t size,
               int zc, double seconds, result *res) {
  unsigned long long bytes = 0;
  double t0 = now_s();
  double c0 = thread_cpu_s();
  double t;

  do {
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    int waiting = 1;
    if (zc)
      io_uring_prep_send_zc(sqe, fd, buf, size, MSG_WAITALL, 0);
    else
      io_uring_prep_send(sqe, fd, buf, size, MSG_WAITALL);
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
        bytes += (unsigned long long)cqe->res;
        /* A zero-copy send's notification follows when F_MORE is set. */
        if ((cqe->flags & IORING_CQE_F_MORE) == 0)
          waiting = 0;
      }
      io_uring_cqe_seen(ring, cqe);
    }
    t = now_s() - t0;
  } while (t < seconds);
  res->mbs = (double)bytes / t / 1e6;
  res->cpu_us_kib = (thread_cpu_s() - c0) * 1e6 / ((double)bytes / 1024.0);
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
  static const size_t default_sizes[] = {4096,   16384,   65536,
                                         262144, 1048576, 4194304};
  size_t sizes[MAX_SIZES];
  int nsizes = 0, rounds = 3, i, r, err;
  double seconds = 2;
  size_t biggest = 0;
  struct io_uring ring;
  pthread_t th;
  char *buf;
  int out, in;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      seconds = atof(argv[++i]);
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = atoi(argv[++i]);
    } else if (argv[i][0] != '-' && nsizes < MAX_SIZES) {
      sizes[nsizes++] = strtoul(argv[i], NULL, 0);
    } else {
      fprintf(stderr,
              "usage: bench-send-zc [--seconds S] [--rounds N] [SIZE...]\n");
      return 2;
    }
  }
  if (rounds < 1 || rounds > MAX_ROUNDS || seconds <= 0) {
    fprintf(stderr, "bench-send-zc: 1 to %d rounds of more than 0 s\n",
            MAX_ROUNDS);
    return 2;
  }
  if (nsizes == 0) {
    nsizes = (int)(sizeof(default_sizes) / sizeof(default_sizes[0]));
    memcpy(sizes, default_sizes, sizeof(default_sizes));
  }
  for (i = 0; i < nsizes; i++) {
    if (sizes[i] == 0) {
      fprintf(stderr, "bench-send-zc: a size of 0\n");
      return 2;
    }
    if (sizes[i] > biggest)
      biggest = sizes[i];
  }
  buf = malloc(biggest);
  if (buf == NULL || connect_pair(&out, &in) != 0) {
    perror("bench-send-zc: setting up");
    return 1;
  }
  memset(buf, 0x5a, biggest);
  err = io_uring_queue_init(8, &ring, 0);
  if (err < 0) {
    fprintf(stderr, "bench-send-zc: io_uring: %s\n", strerror(-err));
    return 77;
  }
  reader_fd = in;
  if (pthread_create(&th, NULL, reader, NULL) != 0) {
    fprintf(stderr, "bench-send-zc: no reader thread\n");
    return 1;
  }
  printf("| size | copying MB/s | zero-copy MB/s | ratio | copying CPU µs/KiB "
         "| zero-copy CPU µs/KiB | ratio |\n");
  printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (i = 0; i < nsizes; i++) {
    double mbs[2][MAX_ROUNDS], cpu[2][MAX_ROUNDS], m[2], c[2];
    int k;
    for (r = 0; r < rounds; r++) {
      for (k = 0; k < 2; k++) {
        int zc = (k + r) % 2; /* the order swaps every round */
        result res;
        err = run(&ring, out, buf, sizes[i], zc, seconds, &res);
        if (err == -EINVAL || err == -EOPNOTSUPP) {
          fprintf(stderr, "bench-send-zc: the kernel refuses %s: %s\n",
                  zc ? "zero-copy sends" : "sends", strerror(-err));
          return 77;
        }
        if (err < 0) {
          fprintf(stderr, "bench-send-zc: %s\n", strerror(-err));
          return 1;
        }
        mbs[zc][r] = res.mbs;
        cpu[zc][r] = res.cpu_us_kib;
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
  pthread_join(th, NULL);
  close(out);
  close(in);
  io_uring_queue_exit(&ring);
  free(buf);
  return 0;
}
