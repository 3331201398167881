/* The latency histogram: percentiles to its stated precision, and the
 * .hgrm file asock-bench --histogram writes (rows in rising order, the last
 * at the maximum with every value counted). Exits 0, or 1 naming what
 * failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench-hist.h"

static int failures;

#define EXPECT(cond)                                                           \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "bench-hist-test:%d: %s\n", __LINE__, #cond);            \
      failures++;                                                              \
    }                                                                          \
  } while (0)

static bench_hist h;

int main(void) {
  char line[256];
  FILE *f;
  uint64_t v;
  double last_value = -1;
  unsigned long long last_count = 0;
  double last_fraction = 0;
  int rows = 0;
  int footer = 0;

  bench_hist_reset(&h);
  EXPECT(bench_hist_percentile(&h, 50) == 0);
  /* 1..1000 ns, then one of 1 s. */
  for (v = 1; v <= 1000; v++)
    bench_hist_record(&h, v);
  bench_hist_record(&h, 1000000000u);
  EXPECT(h.count == 1001);
  EXPECT(h.min == 1 && h.max == 1000000000u);
  /* Below 256 every value has its bucket; above, within 1/128. */
  EXPECT(bench_hist_percentile(&h, 10) == 101);
  v = bench_hist_percentile(&h, 50);
  EXPECT(v >= 501 && v <= 501 + 501 / 128);
  EXPECT(bench_hist_percentile(&h, 100) == 1000000000u);

  f = tmpfile();
  EXPECT(f != NULL);
  if (f == NULL)
    return 1;
  EXPECT(bench_hist_write(&h, f) == 0);
  rewind(f);
  while (fgets(line, sizeof(line), f) != NULL) {
    double value, fraction;
    unsigned long long count;
    if (line[0] == '#') {
      footer++;
      continue;
    }
    if (sscanf(line, "%lf %lf %llu", &value, &fraction, &count) != 3)
      continue; /* the heading and the blank line */
    rows++;
    EXPECT(value > last_value);
    EXPECT(count > last_count);
    EXPECT(fraction > last_fraction && fraction <= 1.0);
    last_value = value;
    last_count = count;
    last_fraction = fraction;
  }
  fclose(f);
  /* 1..255 one bucket each, 256..1000 in buckets of 2, 4 and 8, 1 s. */
  EXPECT(rows > 255 && rows < 1001);
  EXPECT(last_count == 1001);
  EXPECT(last_fraction == 1.0);
  EXPECT(last_value == 1000000.0); /* the maximum, in microseconds */
  EXPECT(footer == 2);
  if (failures == 0)
    printf("bench-hist-test: ok (%d rows)\n", rows);
  return failures == 0 ? 0 : 1;
}
