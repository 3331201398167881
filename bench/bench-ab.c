/* The shared parts of bench-send-zc and bench-splice (bench-ab.h). */
#include "bench-ab.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

double bench_ab_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_s(int process) {
  struct rusage u;
  getrusage(process ? RUSAGE_SELF : RUSAGE_THREAD, &u);
  return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int bench_ab_pair(int *out, int *in) {
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

int bench_ab_args(bench_ab *ab, int argc, char **argv, const size_t *defaults,
                  int ndefaults, size_t max_size) {
  int i;

  ab->nsizes = 0;
  ab->rounds = 3;
  ab->seconds = 2;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
      ab->seconds = atof(argv[++i]);
    } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      ab->rounds = atoi(argv[++i]);
    } else if (argv[i][0] != '-' && ab->nsizes < BENCH_AB_MAX_SIZES) {
      ab->sizes[ab->nsizes++] = strtoul(argv[i], NULL, 0);
    } else {
      fprintf(stderr, "usage: %s [--seconds S] [--rounds N] [SIZE...]\n",
              ab->name);
      return 2;
    }
  }
  if (ab->rounds < 1 || ab->rounds > BENCH_AB_MAX_ROUNDS || ab->seconds <= 0) {
    fprintf(stderr, "%s: 1 to %d rounds of more than 0 s\n", ab->name,
            BENCH_AB_MAX_ROUNDS);
    return 2;
  }
  if (ab->nsizes == 0) {
    for (i = 0; i < ndefaults && i < BENCH_AB_MAX_SIZES; i++)
      ab->sizes[i] = defaults[i];
    ab->nsizes = i;
  }
  for (i = 0; i < ab->nsizes; i++) {
    if (ab->sizes[i] == 0 || ab->sizes[i] > max_size) {
      fprintf(stderr, "%s: sizes from 1 to %zu bytes\n", ab->name, max_size);
      return 2;
    }
  }
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

int bench_ab_table(const bench_ab *ab, bench_ab_run run, void *ctx) {
  int i;

  printf("| size | %s MB/s | %s MB/s | ratio | %s CPU µs/KiB | %s CPU µs/KiB "
         "| ratio |\n",
         ab->way[0], ab->way[1], ab->way[0], ab->way[1]);
  printf("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (i = 0; i < ab->nsizes; i++) {
    double mbs[2][BENCH_AB_MAX_ROUNDS], cpu[2][BENCH_AB_MAX_ROUNDS], m[2], c[2];
    int r, k;
    for (r = 0; r < ab->rounds; r++) {
      for (k = 0; k < 2; k++) {
        int way = (k + r) % 2; /* the order swaps every round */
        unsigned long long bytes = 0;
        double t0 = bench_ab_now(), c0 = cpu_s(ab->process_cpu), t;
        int err = run(ctx, ab->sizes[i], way, t0 + ab->seconds, &bytes);
        if (err == -EINVAL || err == -EOPNOTSUPP) {
          fprintf(stderr, "%s: the kernel refuses %s: %s\n", ab->name,
                  ab->way[way], strerror(-err));
          return 77;
        }
        if (err < 0 || bytes == 0) {
          fprintf(stderr, "%s: %s\n", ab->name,
                  err < 0 ? strerror(-err) : "nothing sent");
          return 1;
        }
        t = bench_ab_now() - t0;
        mbs[way][r] = (double)bytes / t / 1e6;
        cpu[way][r] =
            (cpu_s(ab->process_cpu) - c0) * 1e6 / ((double)bytes / 1024.0);
      }
    }
    for (k = 0; k < 2; k++) {
      m[k] = median(mbs[k], ab->rounds);
      c[k] = median(cpu[k], ab->rounds);
    }
    printf("| %zu | %.0f | %.0f | %.2fx | %.3f | %.3f | %.2fx |\n",
           ab->sizes[i], m[0], m[1], m[1] / m[0], c[0], c[1], c[1] / c[0]);
    fflush(stdout);
  }
  return 0;
}
