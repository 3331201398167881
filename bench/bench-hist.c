#include <string.h>

#include "bench-hist.h"

/* Index of the highest set bit of v, which is not 0. */
static unsigned int log2_floor(uint64_t v) {
#if defined(__GNUC__) || defined(__clang__)
  return 63u - (unsigned int)__builtin_clzll(v);
#else
  unsigned int e = 0;

  while (v >>= 1)
    e++;
  return e;
#endif
}

static unsigned int bucket_of(uint64_t v) {
  unsigned int e, shift;

  if (v < 2 * BENCH_HIST_SUB)
    return (unsigned int)v;
  /* v has e+1 bits; keeping the top BITS+1 of them leaves a mantissa in
   * [SUB, 2*SUB) that picks the bucket within the power of two. */
  e = log2_floor(v);
  shift = e - BENCH_HIST_BITS;
  return 2 * BENCH_HIST_SUB + (e - BENCH_HIST_BITS - 1) * BENCH_HIST_SUB +
         (unsigned int)(v >> shift) - BENCH_HIST_SUB;
}

/* The largest value that falls into bucket b. */
static uint64_t bucket_top(unsigned int b) {
  unsigned int e, shift;
  uint64_t mantissa;

  if (b < 2 * BENCH_HIST_SUB)
    return b;
  e = (b - 2 * BENCH_HIST_SUB) / BENCH_HIST_SUB + BENCH_HIST_BITS + 1;
  mantissa = (b - 2 * BENCH_HIST_SUB) % BENCH_HIST_SUB + BENCH_HIST_SUB;
  shift = e - BENCH_HIST_BITS;
  if (e == 63 && mantissa == 2 * BENCH_HIST_SUB - 1)
    return UINT64_MAX;
  return ((mantissa + 1) << shift) - 1;
}

void bench_hist_reset(bench_hist *h) {
  memset(h, 0, sizeof(*h));
  h->min = UINT64_MAX;
}

void bench_hist_record(bench_hist *h, uint64_t value) {
  h->buckets[bucket_of(value)]++;
  h->count++;
  h->sum += value;
  if (value < h->min)
    h->min = value;
  if (value > h->max)
    h->max = value;
}

uint64_t bench_hist_percentile(const bench_hist *h, double percent) {
  uint64_t want, seen = 0, top;
  unsigned int b;
  double rank;

  if (h->count == 0)
    return 0;
  /* The rank is rounded up, as HdrHistogram does: p50 of 1..4 is 2. */
  rank = percent / 100.0 * (double)h->count;
  want = (uint64_t)rank;
  if ((double)want < rank)
    want++;
  if (want < 1)
    want = 1;
  if (want > h->count)
    want = h->count;
  for (b = 0; b < BENCH_HIST_BUCKETS; b++) {
    seen += h->buckets[b];
    if (seen >= want) {
      top = bucket_top(b);
      return top < h->max ? top : h->max;
    }
  }
  return h->max;
}

double bench_hist_mean(const bench_hist *h) {
  return h->count == 0 ? 0.0 : (double)h->sum / (double)h->count;
}

int bench_hist_write(const bench_hist *h, FILE *out) {
  uint64_t seen = 0;
  unsigned int b;

  fprintf(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount",
          "1/(1-Percentile)");
  for (b = 0; b < BENCH_HIST_BUCKETS && seen < h->count; b++) {
    uint64_t top;
    double fraction;

    if (h->buckets[b] == 0)
      continue;
    seen += h->buckets[b];
    top = bucket_top(b);
    if (top > h->max)
      top = h->max;
    fraction = (double)seen / (double)h->count;
    if (seen == h->count)
      fprintf(out, "%12.3f %14.12f %10llu %14s\n", (double)top / 1e3, fraction,
              (unsigned long long)seen, "inf");
    else
      fprintf(out, "%12.3f %14.12f %10llu %14.2f\n", (double)top / 1e3,
              fraction, (unsigned long long)seen, 1.0 / (1.0 - fraction));
  }
  fprintf(out, "#[Mean    = %12.3f, Max            = %12.3f]\n",
          bench_hist_mean(h) / 1e3, (double)h->max / 1e3);
  fprintf(out, "#[Total count    = %12llu, Buckets        = %12u]\n",
          (unsigned long long)h->count, (unsigned int)BENCH_HIST_BUCKETS);
  return ferror(out) ? -1 : 0;
}
