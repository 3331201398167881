/* The counting allocator shared by the allocation tests. */
#include <stdlib.h>

#include "test.h"

unsigned long asock_test_alloc_calls;
unsigned long asock_test_alloc_live;
unsigned long asock_test_fail_at;

static int should_fail(void) {
  asock_test_alloc_calls++;
  return asock_test_fail_at != 0 &&
         asock_test_alloc_calls == asock_test_fail_at;
}

static void *counting_malloc(size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = malloc(size);
  if (p != NULL)
    asock_test_alloc_live++;
  return p;
}

static void *counting_realloc(void *ptr, size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = realloc(ptr, size);
  if (p != NULL && ptr == NULL)
    asock_test_alloc_live++;
  return p;
}

static void *counting_calloc(size_t count, size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = calloc(count, size);
  if (p != NULL)
    asock_test_alloc_live++;
  return p;
}

static void counting_free(void *ptr) {
  if (ptr != NULL)
    asock_test_alloc_live--;
  free(ptr);
}

void asock_test_install_counting_allocator(void) {
  asock_test_alloc_calls = 0;
  asock_test_alloc_live = 0;
  asock_test_fail_at = 0;
  ck_assert_int_eq(asock_replace_allocator(counting_malloc, counting_realloc,
                                           counting_calloc, counting_free),
                   0);
}

void asock_test_restore_allocator(void) {
  ck_assert_int_eq(asock_replace_allocator(malloc, realloc, calloc, free), 0);
}
