/* Completion ordering: items pushed out of order, from several threads, come
 * out of a stream in number order, each exactly once; numbers already seen,
 * numbers beyond the window and bad arguments get their own error codes. */
#include <stdlib.h>
#include <string.h>

#include "seq-util.h"

#define SEQ_LIMIT ((uint64_t)1 << 62)

START_TEST(in_order_push_and_pop_round_the_ring) {
  asock_seq *seq;
  uint64_t n;

  ck_assert_asock(asock_seq_create(&seq, 8, 0), 0);
  ck_assert_uint_eq(asock_seq_next(seq), 0);
  pop_expect_nothing(seq);
  /* A full window at once, then one in one out, five times round the ring. */
  for (n = 0; n < 8; n++)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  for (n = 0; n < 40; n++) {
    pop_expect(seq, n);
    ck_assert_uint_eq(asock_seq_next(seq), n + 1);
    ck_assert_asock(asock_seq_push(seq, n + 8, item_of(n + 8)), 0);
  }
  for (n = 40; n < 48; n++)
    pop_expect(seq, n);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 48);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(smallest_window_round_the_ring) {
  asock_seq *seq;
  uint64_t n;

  ck_assert_asock(asock_seq_create(&seq, 2, 0), 0);
  for (n = 0; n < 20; n += 2) {
    ck_assert_asock(asock_seq_push(seq, n + 1, item_of(n + 1)), 0);
    ck_assert_asock(asock_seq_push(seq, n + 2, item_of(n + 2)), ASOCK_EWINDOW);
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
    pop_expect(seq, n);
    pop_expect(seq, n + 1);
    pop_expect_nothing(seq);
  }
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(gap_waits_then_drains_in_order) {
  asock_seq *seq;

  ck_assert_asock(asock_seq_create(&seq, 16, 0), 0);
  ck_assert_asock(asock_seq_push(seq, 3, item_of(3)), 0);
  ck_assert_asock(asock_seq_push(seq, 1, item_of(1)), 0);
  ck_assert_asock(asock_seq_push(seq, 2, item_of(2)), 0);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), 0);
  pop_expect_nothing(seq);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 0);

  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  pop_expect(seq, 0);
  pop_expect(seq, 1);
  pop_expect(seq, 2);
  pop_expect(seq, 3);
  /* 4 is a gap of its own: 5 waits behind it. */
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 4);
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), 0);
  pop_expect(seq, 4);
  pop_expect(seq, 5);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(duplicates_are_refused_and_keep_the_first_item) {
  asock_seq *seq;
  uint64_t n;
  int other;

  ck_assert_asock(asock_seq_create(&seq, 8, 0), 0);
  /* Pending, not yet taken: the second push must not replace the item. */
  ck_assert_asock(asock_seq_push(seq, 3, item_of(3)), 0);
  ck_assert_asock(asock_seq_push(seq, 3, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  pop_expect(seq, 0);
  /* Taken: the slot now waits for 8, but 0 is still a duplicate. */
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  for (n = 1; n < 3; n++)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  pop_expect(seq, 1);
  pop_expect(seq, 2);
  pop_expect(seq, 3);
  ck_assert_asock(asock_seq_push(seq, 3, &other), ASOCK_EDUPLICATE);

  /* Numbers taken several windows ago. */
  for (n = 4; n < 40; n++) {
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
    pop_expect(seq, n);
  }
  for (n = 0; n < 40; n++)
    ck_assert_asock(asock_seq_push(seq, n, &other), ASOCK_EDUPLICATE);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 40);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(window_limits_how_far_ahead_a_push_may_be) {
  asock_seq *seq;
  uint64_t n;

  ck_assert_asock(asock_seq_create(&seq, 4, 0), 0);
  /* next is 0: 0..3 fit, 4 and beyond do not, whatever the slot holds. */
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 7, item_of(7)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 100, item_of(100)), ASOCK_EWINDOW);
  /* 2^62 lands in slot 0 too; it must not be taken for number 0. */
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, item_of(0)), ASOCK_EWINDOW);
  pop_expect_nothing(seq);

  /* 1 is pending, not taken: 5, which shares its slot, is still too far. */
  ck_assert_asock(asock_seq_push(seq, 1, item_of(1)), 0);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), ASOCK_EWINDOW);

  /* Once 0 is taken, 4 fits; 5 still waits for 1 to go. */
  pop_expect(seq, 0);
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), 0);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 8, item_of(8)), ASOCK_EWINDOW);
  pop_expect(seq, 1);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), 0);
  for (n = 2; n < 4; n++)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  for (n = 2; n < 6; n++)
    pop_expect(seq, n);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(first_above_zero) {
  asock_seq *seq;
  uint64_t n;
  int other;

  /* 1000 is not a multiple of the window, so the ring starts mid-way. */
  ck_assert_asock(asock_seq_create(&seq, 16, 1000), 0);
  ck_assert_uint_eq(asock_seq_next(seq), 1000);
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 8, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 999, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 984, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 1016, &other), ASOCK_EWINDOW);
  pop_expect_nothing(seq);

  for (n = 1015; n >= 1000; n--)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  ck_assert_asock(asock_seq_push(seq, 1016, &other), ASOCK_EWINDOW);
  for (n = 1000; n < 1016; n++)
    pop_expect(seq, n);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 1016);
  ck_assert_asock(asock_seq_push(seq, 1000, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 1031, item_of(1031)), 0);
  ck_assert_asock(asock_seq_push(seq, 1032, &other), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(numbers_up_to_the_limit) {
  asock_seq *seq;
  int other;

  /* The last window below the limit, ending on the largest valid number. */
  ck_assert_asock(asock_seq_create(&seq, 4, SEQ_LIMIT - 3), 0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT + 1, &other), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_push(seq, UINT64_MAX, &other), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, item_of(SEQ_LIMIT)), 0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT - 1, item_of(SEQ_LIMIT - 1)),
                  0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT - 3, item_of(SEQ_LIMIT - 3)),
                  0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT - 2, item_of(SEQ_LIMIT - 2)),
                  0);
  pop_expect(seq, SEQ_LIMIT - 3);
  pop_expect(seq, SEQ_LIMIT - 2);
  pop_expect(seq, SEQ_LIMIT - 1);
  pop_expect(seq, SEQ_LIMIT);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), SEQ_LIMIT + 1);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT + 1, &other), ASOCK_EINVAL);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);

  /* A stream that starts beyond the limit can take nothing. */
  ck_assert_asock(asock_seq_create(&seq, 4, UINT64_MAX), 0);
  ck_assert_uint_eq(asock_seq_next(seq), UINT64_MAX);
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, UINT64_MAX, &other), ASOCK_EINVAL);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(null_items_are_items) {
  asock_seq *seq;
  void *item = &item;
  uint64_t number = 99;

  ck_assert_asock(asock_seq_create(&seq, 4, 7), 0);
  ck_assert_asock(asock_seq_push(seq, 8, NULL), 0);
  ck_assert_asock(asock_seq_push(seq, 8, NULL), ASOCK_EDUPLICATE);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_push(seq, 7, NULL), 0);
  ck_assert_asock(asock_seq_pop(seq, &item, &number), 0);
  ck_assert_ptr_null(item);
  ck_assert_uint_eq(number, 7);
  item = &item;
  /* number_out is optional. */
  ck_assert_asock(asock_seq_pop(seq, &item, NULL), 0);
  ck_assert_ptr_null(item);
  ck_assert_uint_eq(asock_seq_next(seq), 9);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(null_arguments_are_einval) {
  asock_seq *seq;
  void *item = &item;
  uint64_t number = 5;

  ck_assert_asock(asock_seq_create(NULL, 8, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_destroy(NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_push(NULL, 0, item_of(0)), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_pop(NULL, &item, &number), ASOCK_EINVAL);
  ck_assert_ptr_eq(item, &item);
  ck_assert_uint_eq(number, 5);
  ck_assert_uint_eq(asock_seq_next(NULL), 0);

  ck_assert_asock(asock_seq_create(&seq, 8, 0), 0);
  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  ck_assert_asock(asock_seq_pop(seq, NULL, &number), ASOCK_EINVAL);
  ck_assert_uint_eq(number, 5);
  /* The refused pop took nothing. */
  ck_assert_uint_eq(asock_seq_next(seq), 0);
  pop_expect(seq, 0);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(bad_windows_are_einval) {
  static const uint32_t bad[] = {0,
                                 1,
                                 3,
                                 6,
                                 1000,
                                 ((uint32_t)1 << 20) + 1,
                                 (uint32_t)1 << 21,
                                 (uint32_t)1 << 31,
                                 UINT32_MAX};
  asock_seq *seq;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    seq = (asock_seq *)&seq;
    ck_assert_asock(asock_seq_create(&seq, bad[i], 0), ASOCK_EINVAL);
    ck_assert_ptr_null(seq);
  }
  /* The bounds themselves are good. */
  ck_assert_asock(asock_seq_create(&seq, 2, 0), 0);
  ck_assert_asock(asock_seq_destroy(seq), 0);
  ck_assert_asock(asock_seq_create(&seq, (uint32_t)1 << 20, 0), 0);
  ck_assert_asock(asock_seq_push(seq, ((uint64_t)1 << 20) - 1, item_of(1)), 0);
  ck_assert_asock(asock_seq_push(seq, (uint64_t)1 << 20, item_of(2)),
                  ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(create_survives_every_allocation_failure) {
  asock_seq *seq = (asock_seq *)&seq; /* must be reset to NULL */
  unsigned long k;
  uint64_t n;
  int err = ASOCK_ENOMEM;

  asock_test_install_counting_allocator();
  for (k = 1; k < 100 && err == ASOCK_ENOMEM; k++) {
    asock_test_alloc_calls = 0;
    asock_test_fail_at = k;
    err = asock_seq_create(&seq, 64, 3);
    if (err == ASOCK_ENOMEM) {
      ck_assert_ptr_null(seq);
      ck_assert_uint_eq(asock_test_alloc_live, 0);
    }
  }
  ck_assert_asock(err, 0);
  /* At least one allocation failed before creation succeeded. */
  ck_assert_uint_gt(k, 2);
  ck_assert_ptr_nonnull(seq);
  ck_assert_uint_gt(asock_test_alloc_live, 0);

  /* Pushing and popping never allocate; items left behind are not freed
   * (they are the caller's), the stream's own memory is. */
  asock_test_fail_at = 0;
  k = asock_test_alloc_calls;
  for (n = 3; n < 300; n++) {
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
    pop_expect(seq, n);
  }
  ck_assert_asock(asock_seq_push(seq, 301, item_of(301)), 0);
  ck_assert_uint_eq(asock_test_alloc_calls, k);
  ck_assert_asock(asock_seq_destroy(seq), 0);
  ck_assert_uint_eq(asock_test_alloc_live, 0);
}
END_TEST

static int inner_pop_result;
static void *inner_pop_item;

static void pop_again(asock_seq *seq) {
  inner_pop_item = (void *)&inner_pop_item;
  inner_pop_result = asock_seq_pop(seq, &inner_pop_item, NULL);
}

/* A second consumer arriving while the first is inside asock_seq_pop() is
 * refused with ASOCK_EBUSY and takes nothing; the first then takes the item
 * as if alone. The hook runs the second pop at exactly that moment. */
START_TEST(pop_inside_pop_gets_ebusy) {
  asock_seq *seq;
  void *item = NULL;
  uint64_t number = 99;
  static int thing;

  ck_assert_asock(asock_seq_create(&seq, 4, 0), 0);
  ck_assert_asock(asock_seq_push(seq, 0, &thing), 0);
  inner_pop_result = 12345;
  asock__seq_pop_hook = pop_again;
  ck_assert_asock(asock_seq_pop(seq, &item, &number), 0);
  asock__seq_pop_hook = NULL;
  ck_assert_asock(inner_pop_result, ASOCK_EBUSY);
  ck_assert_ptr_null(inner_pop_item);
  ck_assert_ptr_eq(item, &thing);
  ck_assert_uint_eq(number, 0);
  /* The refused pop left the stream usable. */
  ck_assert_asock(asock_seq_pop(seq, &item, &number), ASOCK_EAGAIN);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

Suite *asock_test_suite_seq(void) {
  Suite *s = suite_create("seq");
  TCase *tc = tcase_create("seq");
  TCase *alloc = tcase_create("alloc");

  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, in_order_push_and_pop_round_the_ring);
  tcase_add_test(tc, smallest_window_round_the_ring);
  tcase_add_test(tc, gap_waits_then_drains_in_order);
  tcase_add_test(tc, duplicates_are_refused_and_keep_the_first_item);
  tcase_add_test(tc, window_limits_how_far_ahead_a_push_may_be);
  tcase_add_test(tc, first_above_zero);
  tcase_add_test(tc, numbers_up_to_the_limit);
  tcase_add_test(tc, null_items_are_items);
  tcase_add_test(tc, null_arguments_are_einval);
  tcase_add_test(tc, bad_windows_are_einval);
  tcase_add_test(tc, pop_inside_pop_gets_ebusy);
  suite_add_tcase(s, tc);

  tcase_set_timeout(alloc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(alloc, NULL, asock_test_restore_allocator);
  tcase_add_test(alloc, create_survives_every_allocation_failure);
  suite_add_tcase(s, alloc);

  return s;
}
