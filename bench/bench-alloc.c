#include <stdatomic.h>
#include <stdlib.h>

#include "bench-alloc.h"

/* Atomic because libuv may allocate from its thread pool; relaxed because the
 * count is read only once every thread is done. */
static atomic_bool counting;
static atomic_ullong allocations;

static void count_one(void) {
  if (atomic_load_explicit(&counting, memory_order_relaxed))
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
}

void *bench_malloc(size_t size) {
  count_one();
  return malloc(size);
}

void *bench_calloc(size_t count, size_t size) {
  count_one();
  return calloc(count, size);
}

void *bench_realloc(void *ptr, size_t size) {
  count_one();
  return realloc(ptr, size);
}

void bench_free(void *ptr) { free(ptr); }

void bench_alloc_start(void) {
  atomic_store_explicit(&counting, 1, memory_order_relaxed);
}

unsigned long long bench_alloc_count(void) {
  return atomic_load_explicit(&allocations, memory_order_relaxed);
}
