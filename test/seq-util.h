/* What the ordering suites share: distinct non-NULL items, and pops that
 * assert what comes out, or that nothing does. */
#ifndef ASOCK_TEST_SEQ_UTIL_H
#define ASOCK_TEST_SEQ_UTIL_H

#include "internal.h"
#include "test.h"

/* Items that are not NULL and differ from each other, so that a pop handing
 * out the wrong one is caught. */
static inline void *item_of(uint64_t n) { return (void *)(uintptr_t)(n + 1); }

/* Pops one item and asserts it is number `want` carrying item_of(want). */
static inline void pop_expect(asock_seq *seq, uint64_t want) {
  void *item = NULL;
  uint64_t number = ~(uint64_t)0;
  ck_assert_asock(asock_seq_pop(seq, &item, &number), 0);
  ck_assert_uint_eq(number, want);
  ck_assert_ptr_eq(item, item_of(want));
}

/* Asserts that the next item has not arrived, and that the failed pop
 * changed nothing. */
static inline void pop_expect_nothing(asock_seq *seq) {
  void *item = &item;
  uint64_t number = 12345;
  uint64_t next = asock_seq_next(seq);
  ck_assert_asock(asock_seq_pop(seq, &item, &number), ASOCK_EAGAIN);
  ck_assert_ptr_null(item);
  ck_assert_uint_eq(number, 12345);
  ck_assert_uint_eq(asock_seq_next(seq), next);
}

#endif /* ASOCK_TEST_SEQ_UTIL_H */
