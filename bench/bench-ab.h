/* What the two benchmarks of a send's way share (bench-send-zc and
 * bench-splice, Linux): their command line, a TCP connection over
 * loopback, and the table of two ways measured side by side, size by size,
 * round by round. */
#ifndef ASOCK_BENCH_AB_H
#define ASOCK_BENCH_AB_H

#include <stddef.h>

#define BENCH_AB_MAX_SIZES 16
#define BENCH_AB_MAX_ROUNDS 15

typedef struct bench_ab {
  const char *name;   /* the program, in every message */
  const char *way[2]; /* the two ways, the baseline first: in the table */
  int process_cpu;    /* 1: the whole process's CPU counts (a helper's
                       * kernel workers); 0: the calling thread's */
  size_t sizes[BENCH_AB_MAX_SIZES];
  int nsizes;
  int rounds;     /* --rounds, default 3 */
  double seconds; /* --seconds, default 2 */
} bench_ab;

/* Reads `[--seconds S] [--rounds N] [SIZE...]` into ab (name, way and
 * process_cpu set by the caller), the defaults where no size is given;
 * sizes from 1 to max_size bytes. 0, or 2 (a usage error, printed). */
int bench_ab_args(bench_ab *ab, int argc, char **argv, const size_t *defaults,
                  int ndefaults, size_t max_size);

/* Sends size-byte sends one way (0 the baseline, 1 the other) until the
 * monotonic clock reaches `until`, adding what it sent to *bytes: 0, or a
 * negative errno. */
typedef int (*bench_ab_run)(void *ctx, size_t size, int way, double until,
                            unsigned long long *bytes);

/* Prints the markdown table: for each size the median MB/s and CPU µs per
 * KiB of each way over the rounds (the order swapped every round) and the
 * ratios, the second way over the first. 0; 77 when the kernel refused a
 * way (EINVAL or EOPNOTSUPP); 1 on another error (printed). */
int bench_ab_table(const bench_ab *ab, bench_ab_run run, void *ctx);

/* The monotonic clock, in seconds. */
double bench_ab_now(void);

/* A TCP connection over loopback, TCP_NODELAY on the sending end: *out
 * sends, *in receives. 0, or -1 with errno set. */
int bench_ab_pair(int *out, int *in);

#endif
