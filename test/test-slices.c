/* Slice ownership: a delivery's or a completion's slice taken by the
 * application (asock_op_detach_slice()) and given to an op
 * (asock_op_attach_slice()), counted against its socket's quota until
 * released, from any thread and after the socket is gone too; a pool that
 * runs out pauses a multishot receive and resumes it without loss, or
 * ends it with ASOCK_ENOBUFS when it fails fast. */
#include <stdlib.h>
#include <string.h>

#include "multishot-util.h"

/* ---- slice ownership ---------------------------------------------------- */

/* detach_slice()'s refusals; after a one-shot receive it takes the slice,
 * and the op's next receive takes another. */
START_TEST(detach_after_a_one_shot_receive) {
  static char mem[16];
  tu_pair p;
  asock_op *op = tu_op();
  void *slice = &slice;
  size_t off = 99, len = 99;
  unsigned char out[50];
  int r;
  ck_assert_asock(asock_op_detach_slice(NULL, &slice, &off, &len),
                  ASOCK_EINVAL);
  ck_assert_ptr_null(slice);
  ck_assert_uint_eq(off, 0);
  ck_assert_uint_eq(len, 0);
  ck_assert_asock(asock_op_detach_slice(op, NULL, NULL, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_detach_slice(op, &slice, NULL, NULL),
                  ASOCK_ENOSLICE);
  tu_set_buffer(op, mem, sizeof(mem));
  ck_assert_asock(asock_op_detach_slice(op, &slice, NULL, NULL),
                  ASOCK_ENOSLICE);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert_asock(asock_op_detach_slice(op, &slice, NULL, NULL), ASOCK_EBUSY);
  tu_fill(out, sizeof(out), 7, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  ck_assert_asock(asock_op_detach_slice(op, &slice, &off, &len), 0);
  ck_assert_uint_eq(off, 0);
  ck_assert_uint_eq(len, sizeof(out));
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_NONE);
  /* Still counted against the socket, and still the application's. */
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  ck_assert_uint_eq(ms_stats().slices_in_use, 1);
  tu_fill(out, 20, 7, 50);
  tu_send_all(p.client, out, 20);
  r = tu_receive(p.server, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  ck_assert(tu_wait_idle(op));
  ck_assert_uint_eq(asock_op_bytes(op), 20);
  ck_assert_ptr_ne(asock_op_data(op), slice);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(op), 20, 7, 50), 20);
  ck_assert_uint_eq(tu_mismatch(slice, 50, 7, 0), 50);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  ck_assert_asock(asock_pool_release(tu_pool, slice), 0);
  ck_assert_asock(asock_pool_release(tu_pool, slice), ASOCK_ENOTHELD);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  /* A slice the op took for itself counts against no socket. */
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_asock(asock_op_take_slice(op), 0);
  ck_assert_asock(asock_op_detach_slice(op, &slice, &off, &len), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ck_assert_asock(asock_pool_release(tu_pool, slice), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* A taken slice given to another op: the op holds it, sends from it, and
 * gives it back when its buffer changes, the socket's count with it. */
START_TEST(attach_gives_a_taken_slice_to_an_op) {
  static ms_rec r;
  tu_pair p;
  asock_op *op, *tx = tu_op();
  void *free_slice;
  char local[8];
  unsigned char back[40];
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  r.detach = 1;
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 40, 15, 0, 1);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  ck_assert_asock(asock_op_attach_slice(NULL, r.slices[0], 0, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_op_attach_slice(tx, NULL, 0, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_op_attach_slice(tx, local, 0, 1), ASOCK_ENOTSLICE);
  ck_assert_asock(asock_op_attach_slice(tx, (char *)r.slices[0] + 1, 0, 1),
                  ASOCK_EMIDSLICE);
  ck_assert_asock(asock_op_attach_slice(tx, r.slices[0], 1, 4096),
                  ASOCK_EBOUNDS);
  ck_assert_asock(asock_pool_acquire(tu_pool, &free_slice), 0);
  ck_assert_asock(asock_pool_release(tu_pool, free_slice), 0);
  ck_assert_asock(asock_op_attach_slice(tx, free_slice, 0, 1), ASOCK_ENOTHELD);
  ck_assert_int_eq(asock_op_buffer_mode(tx), ASOCK_BUFFER_NONE);
  ck_assert_asock(asock_op_attach_slice(tx, r.slices[0], r.offsets[0], 40), 0);
  ck_assert_int_eq(asock_op_buffer_mode(tx), ASOCK_BUFFER_SLICE);
  ck_assert_ptr_eq(asock_op_data(tx), (char *)r.slices[0] + r.offsets[0]);
  ck_assert_uint_eq(asock_op_count(tx), 40);
  ck_assert_asock(tu_send_whole(p.server, tx), 0);
  tu_recv_exact(p.client, back, sizeof(back));
  ck_assert_uint_eq(tu_mismatch(back, sizeof(back), 15, 0), sizeof(back));
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  ck_assert_uint_eq(ms_stats().slices_in_use, 1);
  ck_assert_asock(asock_op_clear_buffer(tx), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ck_assert_uint_eq(ms_stats().slices_in_use, 0);
  ms_close_pair(&p, &r);
}
END_TEST

/* Slices taken and not yet released count against the socket's quota: at
 * the quota the socket stops reading, and a release lets it go on, with
 * nothing lost. */
START_TEST(taken_slices_count_against_the_quota) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  unsigned char out[300];
  int i;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  r.detach = 1;
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 100, 8, 0, 1);
  ms_send_and_wait(p.client, &r, 100, 8, 100, 2);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  tu_fill(out, sizeof(out), 8, 200);
  tu_send_all(p.client, out, sizeof(out));
  tu_run_for(50);
  ck_assert_int_eq(r.deliveries, 2);
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  ck_assert_uint_eq(ms_stats().slices_failed, 0);
  /* One back, one more delivery: all that waited, in one slice. */
  ck_assert_asock(asock_pool_release(tu_pool, r.slices[0]), 0);
  ck_assert(tu_wait_count(&r.deliveries, 3));
  ck_assert_uint_eq(r.sizes[2], sizeof(out));
  ms_assert_stream(&r, 500, 8);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  for (i = 1; i < r.nslices; i++)
    ck_assert_asock(asock_pool_release(tu_pool, r.slices[i]), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ms_close_pair(&p, &r);
}
END_TEST

/* An empty pool pauses the receive without ending it; it goes on once a
 * slice is free. With ASOCK_POOL_FAIL_FAST it ends with ASOCK_ENOBUFS. */
START_TEST(exhaustion_pauses_and_resumes) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  void *held[2];
  unsigned char out[200];
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 50, 9, 0, 1);
  ck_assert_asock(asock_pool_acquire(tu_pool, &held[0]), 0);
  ck_assert_asock(asock_pool_acquire(tu_pool, &held[1]), 0);
  tu_fill(out, sizeof(out), 9, 50);
  tu_send_all(p.client, out, sizeof(out));
  tu_run_for(50);
  ck_assert_int_eq(r.deliveries, 1);
  ck_assert_int_eq(r.finals, 0);
  ck_assert_asock(asock_pool_release(tu_pool, held[1]), 0);
  ck_assert(tu_wait_count(&r.deliveries, 2));
  ms_assert_stream(&r, 250, 9);
  ck_assert_asock(asock_pool_release(tu_pool, held[0]), 0);
  ms_close_pair(&p, &r);
}
END_TEST

START_TEST(fail_fast_ends_it_with_enobufs) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  void *held;
  unsigned char out[20];
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert_asock(asock_pool_acquire(tu_pool, &held), 0);
  tu_fill(out, sizeof(out), 10, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ENOBUFS);
  ck_assert_int_eq(r.deliveries, 0);
  ck_assert_uint_eq(r.final_seq, 1);
  ck_assert_asock(asock_pool_release(tu_pool, held), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

typedef struct releaser {
  void *slices[MS_MAX];
  int n;
  int errors;
} releaser;

static void release_all(void *arg) {
  releaser *rl = arg;
  int i;
  for (i = 0; i < rl->n; i++)
    if (asock_pool_release(tu_pool, rl->slices[i]) != 0)
      rl->errors++;
}

/* Taken, then the socket closed, then released from another thread: the
 * socket's memory stays until the last slice is back, and goes then. */
START_TEST(release_from_another_thread_after_close) {
  static ms_rec r;
  static releaser rl;
  tu_pair p;
  asock_op *op;
  uv_thread_t thread;
  unsigned long live;
  int i;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  r.detach = 1;
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  for (i = 0; i < 3; i++)
    ms_send_and_wait(p.client, &r, 64, 11, (uint64_t)i * 64, i + 1);
  ms_close_pair(&p, &r);
  /* The loop goes too: the socket outlives it. */
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_uint_eq(ms_stats().slices_in_use, 3);
  live = asock_test_alloc_live;
  memset(&rl, 0, sizeof(rl));
  for (i = 0; i < 3; i++)
    rl.slices[rl.n++] = r.slices[i];
  /* Still intact, and still the application's. */
  ms_assert_stream(&r, 192, 11);
  for (i = 0; i < 3; i++)
    ck_assert_uint_eq(tu_mismatch(r.slices[i], 64, 11, (uint64_t)i * 64), 64);
  ck_assert_int_eq(uv_thread_create(&thread, release_all, &rl), 0);
  ck_assert_int_eq(uv_thread_join(&thread), 0);
  ck_assert_int_eq(rl.errors, 0);
  ck_assert_uint_eq(ms_stats().slices_in_use, 0);
  /* The last release let the socket go. */
  ck_assert_uint_eq(asock_test_alloc_live, live - 1);
}
END_TEST

/* The tests that shape their own pool. */
static void setup_quota(void) { tu_setup_pool(1024, 32, 2, 0); }
static void setup_two_slices(void) { tu_setup_pool(1024, 2, 0, 0); }
static void setup_fail_fast(void) {
  tu_setup_pool(1024, 1, 0, ASOCK_POOL_FAIL_FAST);
}

static TCase *shaped(const char *name, void (*setup)(void), const TTest *t) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, t);
  return tc;
}

Suite *asock_test_suite_slices(void) {
  Suite *s = suite_create("slices");
  TCase *tc = tcase_create("slices");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, detach_after_a_one_shot_receive);
  tcase_add_test(tc, attach_gives_a_taken_slice_to_an_op);
  tcase_add_test(tc, release_from_another_thread_after_close);
  suite_add_tcase(s, tc);
  suite_add_tcase(
      s, shaped("quota", setup_quota, taken_slices_count_against_the_quota));
  suite_add_tcase(
      s, shaped("exhaustion", setup_two_slices, exhaustion_pauses_and_resumes));
  suite_add_tcase(
      s, shaped("fail_fast", setup_fail_fast, fail_fast_ends_it_with_enobufs));
  return s;
}
