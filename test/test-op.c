/* Operation objects: acquisition, buffers and their bounds, and the
 * idle -> pending -> idle state machine. */
#include <string.h>

#include "internal.h"
#include "test.h"

static asock_pool *pool;

static void setup(void) {
  asock_pool_config config;
  asock_pool_config_init(&config);
  config.slice_size = 1024;
  config.slice_count = 4;
  config.op_count = 4;
  ck_assert_asock(asock_pool_create(&pool, &config), 0);
}

static void teardown(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_uint_eq(st.ops_in_use, 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  pool = NULL;
}

static size_t slices_in_use(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  return st.slices_in_use;
}

START_TEST(acquired_op_is_reset) {
  asock_op *op;
  static char mem[8];
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_set_user_data(op, mem), 0);
  ck_assert_asock(asock_op_set_buffer(op, mem, 8, 2, 3), 0);
  ck_assert_asock(asock_op_set_timeout(op, 500), 0);
  ck_assert_asock(asock_op_release(pool, op), 0);
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_ptr_null(asock_op_user_data(op));
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_NONE);
  ck_assert_ptr_null(asock_op_data(op));
  ck_assert_uint_eq(asock_op_count(op), 0);
  ck_assert_uint_eq(asock_op_timeout(op), 0);
  ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_NONE);
  ck_assert_int_eq(asock_op_status(op), 0);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_ptr_eq(asock_op_pool(op), pool);
  ck_assert_ptr_null(asock_op_remote(op));
  ck_assert_ptr_null(asock_op_socket(op));
  ck_assert_ptr_null(asock_op_accepted(op));
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

START_TEST(ops_run_out) {
  asock_op *ops[4];
  asock_op *extra = (asock_op *)&extra;
  asock_pool_stats st;
  int i;
  for (i = 0; i < 4; i++)
    ck_assert_asock(asock_op_acquire(pool, &ops[i]), 0);
  ck_assert_asock(asock_op_acquire(pool, &extra), ASOCK_ENOBUFS);
  ck_assert_ptr_null(extra);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.ops_in_use, 4);
  ck_assert_uint_eq(st.ops_high_water, 4);
  ck_assert_uint_eq(st.ops_failed, 1);
  for (i = 0; i < 4; i++)
    ck_assert_asock(asock_op_release(pool, ops[i]), 0);
}
END_TEST

START_TEST(release_misuse_is_an_error) {
  asock_pool *other;
  asock_op *op;
  asock_op *foreign;
  asock_op *scratch = (asock_op *)&scratch;
  static unsigned char junk[4096];

  ck_assert_asock(asock_pool_create(&other, NULL), 0);
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_acquire(other, &foreign), 0);
  ck_assert_asock(asock_op_release(pool, foreign), ASOCK_EFOREIGN);
  ck_assert_asock(asock_op_release(other, op), ASOCK_EFOREIGN);
  ck_assert_asock(asock_op_release(pool, (asock_op *)junk), ASOCK_EFOREIGN);
  ck_assert_asock(asock_op_release(pool, (asock_op *)((char *)op + 1)),
                  ASOCK_EFOREIGN);
  ck_assert_asock(asock_op_release(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(asock_op_release(pool, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_acquire(NULL, &scratch), ASOCK_EINVAL);
  ck_assert_ptr_null(scratch);
  ck_assert_asock(asock_op_acquire(pool, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_release(pool, op), 0);
  ck_assert_asock(asock_op_release(pool, op), ASOCK_ENOTHELD);
  ck_assert_asock(asock_pool_destroy(other), ASOCK_EBUSY);
  ck_assert_asock(asock_op_release(other, foreign), 0);
  ck_assert_asock(asock_pool_destroy(other), 0);
}
END_TEST

START_TEST(user_buffer_bounds) {
  asock_op *op;
  unsigned char mem[100];
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_ptr_null(asock_op_buffer(op));
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 10, 90), 0);
  ck_assert_ptr_eq(asock_op_data(op), mem + 10);
  ck_assert_ptr_eq(asock_op_buffer(op), mem);
  ck_assert_uint_eq(asock_op_offset(op), 10);
  ck_assert_uint_eq(asock_op_count(op), 90);
  ck_assert_uint_eq(asock_op_capacity(op), 100);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_USER);
  /* Out of range, including sums that would overflow: refused, and the op
   * keeps its previous buffer. */
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 10, 91), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 101, 0), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, SIZE_MAX, 2),
                  ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, mem, 100, 2, SIZE_MAX),
                  ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_buffer(op, NULL, 100, 0, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_buffer(NULL, mem, 100, 0, 0), ASOCK_EINVAL);
  ck_assert_ptr_eq(asock_op_data(op), mem + 10);
  ck_assert_uint_eq(asock_op_count(op), 90);
  /* The window moves inside the same memory. */
  ck_assert_asock(asock_op_set_range(op, 0, 100), 0);
  ck_assert_ptr_eq(asock_op_data(op), mem);
  ck_assert_asock(asock_op_set_range(op, 50, 51), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_range(op, SIZE_MAX, 1), ASOCK_EBOUNDS);
  ck_assert_uint_eq(asock_op_offset(op), 0);
  ck_assert_uint_eq(asock_op_count(op), 100);
  ck_assert_asock(asock_op_set_range(op, 100, 0), 0);
  /* Clearing leaves no buffer and no room. */
  ck_assert_asock(asock_op_set_buffer(op, NULL, 0, 0, 0), 0);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_NONE);
  ck_assert_asock(asock_op_set_range(op, 0, 1), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_range(op, 0, 0), 0);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

START_TEST(slice_buffer_returns_to_pool) {
  asock_op *op;
  unsigned char mem[16];
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_take_slice(op), 0);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_SLICE);
  ck_assert_uint_eq(asock_op_capacity(op), 1024);
  ck_assert_uint_eq(asock_op_count(op), 1024);
  ck_assert_uint_eq(asock_op_offset(op), 0);
  ck_assert_uint_eq(slices_in_use(), 1);
  memset(asock_op_data(op), 0x11, 1024);
  /* Taking again keeps the same slice. */
  {
    void *first = asock_op_data(op);
    ck_assert_asock(asock_op_set_range(op, 10, 5), 0);
    ck_assert_asock(asock_op_take_slice(op), 0);
    ck_assert_ptr_eq(asock_op_data(op), first);
    ck_assert_uint_eq(asock_op_count(op), 1024);
    ck_assert_uint_eq(slices_in_use(), 1);
  }
  /* Switching to caller memory gives the slice back. */
  ck_assert_asock(asock_op_set_buffer(op, mem, 16, 0, 16), 0);
  ck_assert_uint_eq(slices_in_use(), 0);
  ck_assert_asock(asock_op_take_slice(op), 0);
  ck_assert_uint_eq(slices_in_use(), 1);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_uint_eq(slices_in_use(), 0);
  ck_assert_ptr_null(asock_op_data(op));
  /* Releasing the op gives its slice back. */
  ck_assert_asock(asock_op_take_slice(op), 0);
  ck_assert_uint_eq(slices_in_use(), 1);
  ck_assert_asock(asock_op_release(pool, op), 0);
  ck_assert_uint_eq(slices_in_use(), 0);
}
END_TEST

START_TEST(take_slice_when_pool_is_empty) {
  asock_op *op;
  void *slices[4];
  unsigned char mem[16];
  int i;
  for (i = 0; i < 4; i++)
    ck_assert_asock(asock_pool_acquire(pool, &slices[i]), 0);
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_set_buffer(op, mem, 16, 4, 4), 0);
  ck_assert_asock(asock_op_take_slice(op), ASOCK_ENOBUFS);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_USER);
  ck_assert_ptr_eq(asock_op_data(op), mem + 4);
  ck_assert_asock(asock_op_release(pool, op), 0);
  for (i = 0; i < 4; i++)
    ck_assert_asock(asock_pool_release(pool, slices[i]), 0);
}
END_TEST

START_TEST(buffer_list_validation) {
  asock_op *op;
  char a[4], b[8];
  asock_buf bufs[3];
  bufs[0].base = a;
  bufs[0].len = 4;
  bufs[1].base = b;
  bufs[1].len = 8;
  bufs[2].base = NULL;
  bufs[2].len = 0;
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_set_buffer_list(op, bufs, 3), 0);
  ck_assert_asock(asock_op_set_buffer_list(op, NULL, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_buffer_list(op, bufs, ASOCK_MAX_BUFS + 1),
                  ASOCK_EINVAL);
  bufs[2].len = 1;
  ck_assert_asock(asock_op_set_buffer_list(op, bufs, 3), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_buffer_list(op, NULL, 0), 0);
  ck_assert_asock(asock_op_set_buffer_list(NULL, bufs, 2), ASOCK_EINVAL);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

START_TEST(remote_address) {
  asock_op *op;
  struct sockaddr_in in4;
  struct sockaddr_in6 in6;
  struct sockaddr other;
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_int_eq(uv_ip4_addr("127.0.0.1", 4242, &in4), 0);
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&in4), 0);
  ck_assert_int_eq(memcmp(asock_op_remote(op), &in4, sizeof(in4)), 0);
  ck_assert_int_eq(uv_ip6_addr("::1", 4243, &in6), 0);
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&in6), 0);
  ck_assert_int_eq(memcmp(asock_op_remote(op), &in6, sizeof(in6)), 0);
  memset(&other, 0, sizeof(other));
  other.sa_family = AF_UNIX;
  ck_assert_asock(asock_op_set_remote(op, &other), ASOCK_EAFNOSUPPORT);
  ck_assert_asock(asock_op_set_remote(op, NULL), ASOCK_EINVAL);
  ck_assert_int_eq(memcmp(asock_op_remote(op), &in6, sizeof(in6)), 0);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

static int callbacks;
static asock_op *callback_op;
static int restart_result;
static int callback_status;
static size_t callback_bytes;
static int callback_sync;

static void count_cb(asock_op *op) {
  callbacks++;
  callback_op = op;
  callback_status = asock_op_status(op);
  callback_bytes = asock_op_bytes(op);
  callback_sync = asock_op_completed_synchronously(op);
  /* The op is idle inside its callback, so it can start again at once. */
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  restart_result = asock__op_begin(op, ASOCK_OP_SEND, NULL);
}

START_TEST(pending_op_is_busy) {
  asock_op *op;
  unsigned char mem[8];
  asock_buf buf;
  struct sockaddr_in in4;

  buf.base = mem;
  buf.len = 8;
  uv_ip4_addr("127.0.0.1", 1, &in4);
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_RECEIVE, NULL), 0);
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_RECEIVE);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_SEND, NULL), ASOCK_EBUSY);
  ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_RECEIVE);
  ck_assert_asock(asock_op_release(pool, op), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_buffer(op, mem, 8, 0, 8), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_range(op, 0, 0), ASOCK_EBUSY);
  ck_assert_asock(asock_op_take_slice(op), ASOCK_EBUSY);
  ck_assert_asock(asock_op_clear_buffer(op), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_buffer_list(op, &buf, 1), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_callback(op, count_cb), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&in4),
                  ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_timeout(op, 1), ASOCK_EBUSY);
  /* User data belongs to the application and may change at any time. */
  ck_assert_asock(asock_op_set_user_data(op, mem), 0);
  ck_assert_uint_eq(slices_in_use(), 0);
  asock__op_finish_sync(op, 0, 0);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

START_TEST(synchronous_completion_runs_no_callback) {
  asock_op *op;
  callbacks = 0;
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_set_callback(op, count_cb), 0);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_SEND, NULL), 0);
  asock__op_finish_sync(op, 0, 77);
  ck_assert_int_eq(callbacks, 0);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_int_eq(asock_op_completed_synchronously(op), 1);
  ck_assert_uint_eq(asock_op_bytes(op), 77);
  ck_assert_int_eq(asock_op_status(op), 0);
  ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_SEND);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

/* An op another thread handed over ends inside its start on the loop, but
 * its callback is still to come: it must not look idle, or that thread
 * could start it again while its completion is queued. */
START_TEST(handed_over_op_stays_pending_through_a_synchronous_end) {
  asock_op *op;
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_SEND, NULL), 0);
  op->handed = 1;
  asock__op_finish_sync(op, 0, 5);
  op->handed = 0;
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_SEND, NULL), ASOCK_EBUSY);
  asock__op_finish_async(op, 0, 5);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

START_TEST(asynchronous_completion_runs_callback_once) {
  asock_op *op;
  callbacks = 0;
  callback_op = NULL;
  restart_result = 12345;
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_op_set_callback(op, count_cb), 0);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_RECEIVE, NULL), 0);
  asock__op_finish_sync(op, 0, 1);
  ck_assert_int_eq(asock_op_completed_synchronously(op), 1);
  ck_assert_asock(asock__op_begin(op, ASOCK_OP_RECEIVE, NULL), 0);
  /* A new start clears the previous result. */
  ck_assert_int_eq(asock_op_completed_synchronously(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 0);
  asock__op_finish_async(op, ASOCK_ECONNRESET, 5);
  ck_assert_int_eq(callbacks, 1);
  ck_assert_ptr_eq(callback_op, op);
  ck_assert_int_eq(callback_status, ASOCK_ECONNRESET);
  ck_assert_uint_eq(callback_bytes, 5);
  ck_assert_int_eq(callback_sync, 0);
  /* The callback restarted the op: it is pending again. */
  ck_assert_asock(restart_result, 0);
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_SEND);
  asock__op_finish_sync(op, 0, 0);
  ck_assert_int_eq(callbacks, 1);
  ck_assert_asock(asock_op_release(pool, op), 0);
}
END_TEST

START_TEST(null_op_accessors) {
  ck_assert_ptr_null(asock_op_data(NULL));
  ck_assert_ptr_null(asock_op_buffer(NULL));
  ck_assert_uint_eq(asock_op_count(NULL), 0);
  ck_assert_uint_eq(asock_op_bytes(NULL), 0);
  ck_assert_int_eq(asock_op_status(NULL), ASOCK_EINVAL);
  ck_assert_int_eq(asock_op_is_pending(NULL), 0);
  ck_assert_ptr_null(asock_op_pool(NULL));
  ck_assert_asock(asock_op_set_callback(NULL, count_cb), ASOCK_EINVAL);
  ck_assert_asock(asock_op_take_slice(NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_range(NULL, 0, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_op_clear_buffer(NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_timeout(NULL, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_user_data(NULL, NULL), ASOCK_EINVAL);
}
END_TEST

Suite *asock_test_suite_op(void) {
  Suite *s = suite_create("op");
  TCase *tc = tcase_create("op");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, acquired_op_is_reset);
  tcase_add_test(tc, ops_run_out);
  tcase_add_test(tc, release_misuse_is_an_error);
  tcase_add_test(tc, user_buffer_bounds);
  tcase_add_test(tc, slice_buffer_returns_to_pool);
  tcase_add_test(tc, take_slice_when_pool_is_empty);
  tcase_add_test(tc, buffer_list_validation);
  tcase_add_test(tc, remote_address);
  tcase_add_test(tc, pending_op_is_busy);
  tcase_add_test(tc, synchronous_completion_runs_no_callback);
  tcase_add_test(tc, handed_over_op_stays_pending_through_a_synchronous_end);
  tcase_add_test(tc, asynchronous_completion_runs_callback_once);
  tcase_add_test(tc, null_op_accessors);
  suite_add_tcase(s, tc);
  return s;
}
