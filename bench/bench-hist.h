/* A latency histogram of fixed size in the manner of HdrHistogram: values
 * below 2^(BITS+1) have a bucket each, and every power of two above is cut
 * into 2^BITS buckets, so a reported value is never off by more than
 * 1/2^BITS (0.8%) of itself, from 1 ns to centuries, in 58 KiB. */
#ifndef ASOCK_BENCH_HIST_H
#define ASOCK_BENCH_HIST_H

#include <stdint.h>
#include <stdio.h>

#define BENCH_HIST_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_BITS)
#define BENCH_HIST_BUCKETS                                                     \
  (2 * BENCH_HIST_SUB + (64 - BENCH_HIST_BITS - 1) * BENCH_HIST_SUB)

typedef struct bench_hist {
  uint64_t count;
  uint64_t min;
  uint64_t max;
  uint64_t sum;
  uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist;

void bench_hist_reset(bench_hist *h);
void bench_hist_record(bench_hist *h, uint64_t value);

/* The smallest recorded value that at least `percent` of the values do not
 * exceed, to the histogram's precision (and never above the maximum); 0 for
 * an empty histogram. */
uint64_t bench_hist_percentile(const bench_hist *h, double percent);

double bench_hist_mean(const bench_hist *h);

/* Writes the distribution in HdrHistogram's percentile format (.hgrm),
 * which its plotter and gnuplot read: one row per non-empty bucket, the
 * bucket's top value in microseconds (never above the maximum), the
 * fraction of values at or below it, their count and 1/(1-fraction), then
 * the mean, maximum and total count. \return 0, or -1 if writing failed. */
int bench_hist_write(const bench_hist *h, FILE *out);

#endif
