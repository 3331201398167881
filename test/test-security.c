/* What SECURITY.md promises: a slice never shows one connection's bytes to
 * another when the pool zeroes on release; one greedy peer cannot take the
 * slices the others need; every length and offset that crosses the API is
 * checked at its edges. */
#include <stdint.h>
#include <string.h>

#include "internal.h"
#include "tcp-util.h"

/* Connection A receives a secret into a slice and lets it go; connection B
 * then receives three bytes into the same slice. What lies beyond B's three
 * bytes is A's secret without ASOCK_POOL_ZERO_ON_RELEASE, and zeros with
 * it. */
static void slice_reuse(unsigned int flags, int expect_zero) {
  static unsigned char secret[1024];
  tu_pair a;
  tu_pair b;
  asock_op *ra;
  asock_op *rb;
  unsigned char *first;
  unsigned char *second;
  size_t i;

  tu_setup_pool(1024, 1, 0, flags);
  ra = tu_op();
  rb = tu_op();
  tu_pair_open(&a, "127.0.0.1");
  tu_pair_connect(&b, a.listener, &a.addr);
  memset(secret, 0x5a, sizeof(secret));
  tu_send_all(a.client, secret, sizeof(secret));
  ck_assert_int_ge(tu_receive(a.server, ra), 0);
  ck_assert(tu_wait_idle(ra));
  ck_assert_asock(asock_op_status(ra), 0);
  ck_assert_uint_eq(asock_op_bytes(ra), sizeof(secret));
  first = asock_op_data(ra);
  ck_assert_int_eq(first[0], 0x5a);
  ck_assert_asock(asock_op_clear_buffer(ra), 0);

  tu_send_all(b.client, "abc", 3);
  ck_assert_int_ge(tu_receive(b.server, rb), 0);
  ck_assert(tu_wait_idle(rb));
  ck_assert_asock(asock_op_status(rb), 0);
  ck_assert_uint_eq(asock_op_bytes(rb), 3);
  second = asock_op_data(rb);
  /* One slice in the pool: it is the same memory. */
  ck_assert_ptr_eq(second, first);
  ck_assert_int_eq(memcmp(second, "abc", 3), 0);
  for (i = 3; i < sizeof(secret); i++)
    ck_assert_int_eq(second[i], expect_zero ? 0 : 0x5a);
  ck_assert_asock(asock_op_clear_buffer(rb), 0);
}

START_TEST(slices_keep_old_bytes_without_zeroing) { slice_reuse(0, 0); }
END_TEST

START_TEST(zero_on_release_hides_old_bytes) {
  slice_reuse(ASOCK_POOL_ZERO_ON_RELEASE, 1);
}
END_TEST

/* A peer that sends without end to a socket with many receives posted
 * holds no more than its quota; another connection is served meanwhile. */
START_TEST(greedy_peer_keeps_to_its_quota) {
  static unsigned char flood[64 * 1024];
  tu_pair greedy;
  tu_pair other;
  asock_op *r[8];
  asock_op *ro;
  int i;

  tu_setup_pool(1024, 8, 2, 0);
  tu_pair_open(&greedy, "127.0.0.1");
  tu_pair_connect(&other, greedy.listener, &greedy.addr);
  for (i = 0; i < 8; i++) {
    r[i] = tu_op();
    ck_assert_int_ge(tu_receive(greedy.server, r[i]), 0);
  }
  tu_fill(flood, sizeof(flood), 7, 0);
  tu_send_all(greedy.client, flood, sizeof(flood));
  tu_run_for(50);
  ck_assert_uint_le(asock_socket_slices_held(greedy.server), 2);
  ro = tu_op();
  tu_send_all(other.client, "hello", 5);
  ck_assert_int_ge(tu_receive(other.server, ro), 0);
  ck_assert(tu_wait_idle(ro));
  ck_assert_asock(asock_op_status(ro), 0);
  ck_assert_uint_eq(asock_op_bytes(ro), 5);
  ck_assert_int_eq(memcmp(asock_op_data(ro), "hello", 5), 0);
  ck_assert_uint_le(asock_socket_slices_held(greedy.server), 2);
  /* The greedy socket's receives still complete, in order, as slices come
   * back. */
  for (i = 0; i < 8; i++) {
    ck_assert(tu_wait_idle(r[i]));
    ck_assert_asock(asock_op_status(r[i]), 0);
    ck_assert_uint_eq(asock_op_bytes(r[i]), 1024);
    ck_assert_uint_eq(
        tu_mismatch(asock_op_data(r[i]), 1024, 7, (uint64_t)i * 1024), 1024);
    ck_assert_asock(asock_op_clear_buffer(r[i]), 0);
  }
  ck_assert_asock(asock_op_clear_buffer(ro), 0);
}
END_TEST

/* Buffers, windows and lists at their edges: 0, the size, the size plus
 * one, and SIZE_MAX, none of which may wrap. */
START_TEST(lengths_and_offsets_at_their_edges) {
  static unsigned char mem[100];
  asock_op *op;
  size_t slice;
  asock_buf bufs[3];

  tu_setup_pool(4096, 4, 0, 0);
  op = tu_op();
  slice = asock_pool_slice_size(tu_pool);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 0, 0), 0);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 0, 100), 0);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 100, 0), 0);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 0, 101), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 101, 0), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 1, 100), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 1, SIZE_MAX),
                  ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, SIZE_MAX, 1),
                  ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, SIZE_MAX, SIZE_MAX, 1),
                  ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, NULL, 1, 0, 0), ASOCK_EINVAL);

  ck_assert_asock(asock_op_take_slice(op), 0);
  ck_assert_uint_eq(asock_op_capacity(op), slice);
  ck_assert_asock(asock_op_set_range(op, 0, 0), 0);
  ck_assert_asock(asock_op_set_range(op, 0, slice), 0);
  ck_assert_asock(asock_op_set_range(op, slice, 0), 0);
  ck_assert_asock(asock_op_set_range(op, 0, slice + 1), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_range(op, slice + 1, 0), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_range(op, 1, slice), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_range(op, 1, SIZE_MAX), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_range(op, SIZE_MAX, SIZE_MAX), ASOCK_EBOUNDS);
  /* A refused range leaves the window as it was. */
  ck_assert_uint_eq(asock_op_offset(op), slice);
  ck_assert_uint_eq(asock_op_count(op), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);

  /* A list whose lengths add up past SIZE_MAX is refused. */
  bufs[0].base = mem;
  bufs[0].len = SIZE_MAX;
  bufs[1].base = mem;
  bufs[1].len = 1;
  bufs[2].base = mem;
  bufs[2].len = 0;
  ck_assert_asock(asock_op_set_buffer_list(op, bufs, 2), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer_list(op, bufs + 1, 2), 0);
  ck_assert_asock(asock_op_set_buffer_list(op, bufs, ASOCK_MAX_BUFS + 1),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_buffer_list(op, NULL, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
}
END_TEST

Suite *asock_test_suite_security(void) {
  Suite *s = suite_create("security");
  TCase *tc = tcase_create("security");
  tcase_add_checked_fixture(tc, NULL, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, slices_keep_old_bytes_without_zeroing);
  tcase_add_test(tc, zero_on_release_hides_old_bytes);
  tcase_add_test(tc, greedy_peer_keeps_to_its_quota);
  tcase_add_test(tc, lengths_and_offsets_at_their_edges);
  suite_add_tcase(s, tc);
  return s;
}
