/* UDP over loopback: order, read-ahead, queued sends, cancel, timeouts,
 * close with pending ops, pool exhaustion, and no allocation per datagram.
 */
#include <string.h>

#include "internal.h"
#include "multishot-util.h"
#include "tcp-util.h"
#include "udp-util.h"

/* Several receives wait; datagrams complete them in posting order. */
START_TEST(udp_receives_in_order) {
  uu_pair p;
  asock_op *rx[4];
  asock_op *tx = tu_op();
  unsigned char out[64];
  int i;

  uu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 4; i++) {
    rx[i] = tu_op();
    ck_assert_asock(tu_receive_from(p.b, rx[i]), ASOCK_PENDING);
    ck_assert_uint_eq(asock_op_seq(rx[i]), (uint64_t)i + 1);
  }
  for (i = 0; i < 4; i++) {
    tu_fill(out, sizeof(out), 20 + (uint32_t)i, 0);
    uu_send(p.a, tx, out, (size_t)10 + (size_t)i, &p.b_addr);
  }
  ck_assert(tu_wait_calls(rx[3], 1));
  for (i = 0; i < 4; i++) {
    ck_assert_int_eq(tu_rec(rx[i])->calls, 1);
    ck_assert_int_eq(tu_rec(rx[i])->order, i + 1);
    ck_assert_asock(tu_rec(rx[i])->status, 0);
    ck_assert_uint_eq(tu_rec(rx[i])->bytes, (size_t)10 + (size_t)i);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(rx[i]), (size_t)10 + (size_t)i,
                                  20 + (uint32_t)i, 0),
                      (size_t)10 + (size_t)i);
  }
  uu_pair_close(&p);
}
END_TEST

/* Datagrams waiting before any receive: on Linux one system call reads up
 * to eight, and the ones after the first complete the next receives inside
 * their calls, in order, each holding its slice. */
START_TEST(udp_read_ahead) {
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  asock_op *user = tu_op();
  unsigned char out[200];
  unsigned char in[8];
  asock_pool_stats st;
  int i;

  uu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 6; i++) {
    tu_fill(out, sizeof(out), 30 + (uint32_t)i, 0);
    uu_send(p.a, tx, out, (size_t)100 + (size_t)i, &p.b_addr);
  }
  for (i = 0; i < 4; i++) {
    ck_assert_asock(tu_receive_from(p.b, rx), 0);
    ck_assert_uint_eq(asock_op_bytes(rx), (size_t)100 + (size_t)i);
    ck_assert_uint_eq(asock_op_count(rx), (size_t)100 + (size_t)i);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), (size_t)100 + (size_t)i,
                                  30 + (uint32_t)i, 0),
                      (size_t)100 + (size_t)i);
    ck_assert(tu_same_addr(asock_op_remote(rx), (struct sockaddr *)&p.a_addr));
  }
#ifdef __linux__
  /* Read-ahead grows while reads fill it: one datagram, then two (one
   * kept), then the receive from what was kept, then a read of four that
   * found three: the receive's slice and two kept. */
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 3);
#endif
  /* A receive with its own small window copies what was read ahead, and
   * says it was cut. */
  tu_set_buffer(user, in, sizeof(in));
  ck_assert_asock(tu_receive_message_from(p.b, user), 0);
  ck_assert_uint_eq(asock_op_bytes(user), sizeof(in));
  ck_assert_uint_eq(asock_op_msg_flags(user), ASOCK_MSG_TRUNCATED);
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 34, 0), sizeof(in));
  ck_assert_asock(asock_op_packet_info(user, NULL, NULL), 0);
  ck_assert_asock(tu_receive_from(p.b, rx), 0);
  ck_assert_uint_eq(asock_op_bytes(rx), 105);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), 105, 35, 0), 105);
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 1);

  ck_assert_asock(tu_receive_from(p.b, rx), ASOCK_PENDING);
  ck_assert_uint_eq(asock_socket_slices_held(p.b), 0);
  ck_assert_int_eq(tu_completions, 0);

  /* Closing with datagrams read ahead gives their slices back. */
  for (i = 0; i < 4; i++)
    uu_send(p.a, tx, out, 50, &p.b_addr);
  ck_assert(tu_wait_calls(rx, 1));
  ck_assert_asock(tu_receive_from(p.b, rx), 0);
  uu_pair_close(&p);
  tu_run_for(10);
  ck_assert_asock(asock_op_clear_buffer(rx), 0);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
}
END_TEST

/* A multishot receive-from is delivered every datagram read ahead, also
 * when one readiness report's share (32 datagrams) ends with some still
 * kept: no readiness report names those once the socket is empty. On Linux
 * 39 waiting datagrams are read 1, 2, 4 and then 8 at a time, and the 32nd
 * delivery is the first of a read of 8. */
START_TEST(udp_multishot_delivers_what_was_read_ahead) {
  enum { N = 39, LEN = 50 };
  static ms_rec r;
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *op;
  unsigned char out[LEN];
  int i;

  uu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < N; i++) {
    tu_fill(out, LEN, 7, (uint64_t)i * LEN);
    uu_send(p.a, tx, out, LEN, &p.b_addr);
  }
  op = ms_op(&r);
  ck_assert_asock(tu_receive_from(p.b, op), ASOCK_PENDING);
  ck_assert_msg(tu_wait_count(&r.deliveries, N), "%d of %d datagrams came",
                r.deliveries, N);
  ms_assert_stream(&r, (size_t)N * LEN, 7);
  uu_pair_close(&p);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
}
END_TEST

/* Sends the kernel cannot take at once wait, leave in posting order, count
 * against the watermarks, and can be cancelled while they wait. */
static int marks[8];
static int nmarks;
static void on_mark(asock_socket *sock, int above) {
  (void)sock;
  if (nmarks < 8)
    marks[nmarks++] = above;
}

START_TEST(udp_queued_sends) {
  uu_pair p;
  asock_op *tx[4];
  asock_op *rx = tu_op();
  unsigned char out[4][50];
  unsigned char in[64];
  int i;

  uu_pair_open(&p, "127.0.0.1");
  nmarks = 0;
  ck_assert_asock(asock_socket_set_send_limits(p.a, 60, 100, 0), 0);
  ck_assert_asock(asock_socket_set_watermark_cb(p.a, on_mark), 0);
  asock__udp_send_refusals = 1;
  for (i = 0; i < 4; i++) {
    tx[i] = tu_op();
    tu_fill(out[i], sizeof(out[i]), 40 + (uint32_t)i, 0);
    tu_set_buffer(tx[i], out[i], sizeof(out[i]));
    ck_assert_asock(asock_op_set_remote(tx[i], (struct sockaddr *)&p.b_addr),
                    0);
    ck_assert_asock(tu_send_to(p.a, tx[i]), ASOCK_PENDING);
  }
  ck_assert_uint_eq(asock_socket_send_queued(p.a), 200);
  ck_assert_asock(tu_cancel(tx[2]), 0);
  ck_assert_uint_eq(asock_socket_send_queued(p.a), 150);
  ck_assert(tu_wait_calls(tx[3], 1));
  ck_assert_uint_eq(asock_socket_send_queued(p.a), 0);
  for (i = 0; i < 4; i++) {
    ck_assert_int_eq(tu_rec(tx[i])->calls, 1);
    ck_assert_asock(tu_rec(tx[i])->status, i == 2 ? ASOCK_ECANCELED : 0);
    ck_assert_uint_eq(tu_rec(tx[i])->bytes, i == 2 ? 0 : 50);
    ck_assert_uint_eq(asock_op_seq(tx[i]), (uint64_t)i + 1);
  }
  ck_assert_int_eq(tu_rec(tx[2])->order, 1);
  ck_assert_int_lt(tu_rec(tx[0])->order, tu_rec(tx[1])->order);
  ck_assert_int_lt(tu_rec(tx[1])->order, tu_rec(tx[3])->order);
  tu_set_buffer(rx, in, sizeof(in));
  for (i = 0; i < 4; i++) {
    if (i == 2)
      continue;
    ck_assert(uu_receive_one(p.b, rx));
    ck_assert_uint_eq(asock_op_bytes(rx), 50);
    ck_assert_uint_eq(tu_mismatch(in, 50, 40 + (uint32_t)i, 0), 50);
  }
  /* "Below" is reported from the loop's notify list, on a later turn. */
  ck_assert(tu_wait_count(&nmarks, 2));
  tu_run_for(10);
  ck_assert_int_eq(nmarks, 2);
  ck_assert_int_eq(marks[0], 1);
  ck_assert_int_eq(marks[1], 0);

  /* A send behind a waiting one waits too, even when the kernel would
   * take it. Closing cancels both. */
  asock__udp_send_refusals = 1;
  ck_assert_asock(tu_send_to(p.a, tx[0]), ASOCK_PENDING);
  ck_assert_asock(tu_send_to(p.a, tx[1]), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.a, 0), 0);
  ck_assert(tu_wait_calls(tx[1], 2));
  ck_assert_asock(tu_rec(tx[0])->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_rec(tx[1])->status, ASOCK_ECANCELED);
  ck_assert_int_lt(tu_rec(tx[0])->order, tu_rec(tx[1])->order);
  ck_assert_asock(tu_close(p.b, 0), 0);
  asock__udp_send_refusals = 0;
}
END_TEST

/* Cancel, timeout and close of waiting receives: each completes once. */
START_TEST(udp_cancel_timeout_close) {
  uu_pair p;
  asock_op *a = tu_op();
  asock_op *b = tu_op();
  asock_op *c = tu_op();
  asock_op *tx = tu_op();
  unsigned char out[10] = {0};

  uu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_set_timeout(b, 50), 0);
  ck_assert_asock(tu_receive_from(p.b, a), ASOCK_PENDING);
  ck_assert_asock(tu_receive_message_from(p.b, b), ASOCK_PENDING);
  ck_assert_asock(tu_receive_from(p.b, c), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(a), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert(tu_wait_calls(b, 1));
  ck_assert_asock(tu_rec(b)->status, ASOCK_ETIMEDOUT);
  /* The one left still receives. */
  uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  ck_assert(tu_wait_calls(c, 1));
  ck_assert_asock(tu_rec(c)->status, 0);
  ck_assert_uint_eq(tu_rec(c)->bytes, sizeof(out));

  ck_assert_asock(tu_receive_from(p.b, a), ASOCK_PENDING);
  ck_assert_asock(tu_receive_from(p.b, c), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.b, 0), 0);
  ck_assert_asock(tu_receive_from(p.b, b), ASOCK_ECLOSED);
  ck_assert(tu_wait_calls(c, 2));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_rec(c)->status, ASOCK_ECANCELED);
  ck_assert_int_eq(tu_rec(a)->calls, 2);
  ck_assert_int_lt(tu_rec(a)->order, tu_rec(c)->order);
  tu_run_for(20);
  ck_assert_int_eq(tu_completions, 5);
  ck_assert_asock(tu_close(p.a, 0), 0);
}
END_TEST

/* A peer that is not there: on a socket with a default peer the ICMP port
 * unreachable comes back as the next receive's error, and the socket goes
 * on. */
START_TEST(udp_refused_peer) {
  uu_pair p;
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  unsigned char out[5] = {1, 2, 3, 4, 5};

  uu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_udp_connect(p.a, (struct sockaddr *)&p.b_addr), 0);
  ck_assert_asock(tu_close(p.b, 0), 0);
  tu_run_for(10);
  ck_assert_asock(tu_receive_from(p.a, rx), ASOCK_PENDING);
  uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  ck_assert(tu_wait_calls(rx, 1));
  /* Windows says WSAECONNRESET; asock says what Unix does. */
  ck_assert_asock(tu_rec(rx)->status, ASOCK_ECONNREFUSED);
  ck_assert_uint_eq(asock_op_msg_flags(rx), 0);
  ck_assert_asock(tu_receive_from(p.a, rx), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.a, 0), 0);
  ck_assert(tu_wait_calls(rx, 2));
  ck_assert_asock(tu_rec(rx)->status, ASOCK_ECANCELED);
}
END_TEST

/* With every slice taken, a buffer-less receive waits (the socket stops
 * reading) and completes once one is free; with FAIL_FAST it fails. */
static void exhaust(unsigned int flags) {
  asock_pool_config cfg;
  uu_pair p;
  asock_op *tx;
  asock_op *rx;
  void *held[4];
  unsigned char out[20];
  int i;

  asock_pool_config_init(&cfg);
  cfg.slice_size = 4096;
  cfg.slice_count = 4;
  cfg.op_count = 8;
  cfg.flags = flags;
  tu_setup_with(&cfg);
  tx = tu_op();
  rx = tu_op();
  uu_pair_open(&p, "127.0.0.1");
  /* The loop's cache holds nothing yet: all four come from the pool. */
  for (i = 0; i < 4; i++)
    ck_assert_asock(asock_pool_acquire(tu_pool, &held[i]), 0);
  tu_fill(out, sizeof(out), 50, 0);
  uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  if (flags & ASOCK_POOL_FAIL_FAST) {
    ck_assert_asock(tu_receive_from(p.b, rx), ASOCK_ENOBUFS);
    ck_assert_asock(asock_pool_release(tu_pool, held[0]), 0);
    ck_assert_asock(tu_receive_from(p.b, rx), 0);
  } else {
    ck_assert_asock(tu_receive_from(p.b, rx), ASOCK_PENDING);
    tu_run_for(50);
    ck_assert_int_eq(tu_rec(rx)->calls, 0);
    ck_assert_asock(asock_pool_release(tu_pool, held[0]), 0);
    ck_assert(tu_wait_calls(rx, 1));
    ck_assert_asock(tu_rec(rx)->status, 0);
  }
  ck_assert_uint_eq(asock_op_bytes(rx), sizeof(out));
  ck_assert_uint_eq(tu_mismatch(asock_op_data(rx), sizeof(out), 50, 0),
                    sizeof(out));
  ck_assert_asock(asock_op_clear_buffer(rx), 0);
  for (i = 1; i < 4; i++)
    ck_assert_asock(asock_pool_release(tu_pool, held[i]), 0);
  uu_pair_close(&p);
}

START_TEST(udp_pool_exhausted_waits) { exhaust(0); }
END_TEST

START_TEST(udp_pool_exhausted_fails_fast) { exhaust(ASOCK_POOL_FAIL_FAST); }
END_TEST

/* The socket quota bounds what read-ahead keeps. */
START_TEST(udp_quota_bounds_read_ahead) {
  asock_pool_config cfg;
  uu_pair p;
  asock_op *tx;
  asock_op *rx;
  unsigned char out[16] = {0};
  int i;

  asock_pool_config_init(&cfg);
  cfg.slice_size = 4096;
  cfg.slice_count = 64;
  cfg.op_count = 8;
  cfg.socket_quota = 2;
  tu_setup_with(&cfg);
  tx = tu_op();
  rx = tu_op();
  uu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 6; i++) {
    out[0] = (unsigned char)i;
    uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
  }
  for (i = 0; i < 6; i++) {
    ck_assert(uu_receive_one(p.b, rx));
    ck_assert_uint_le(asock_socket_slices_held(p.b), 2);
    ck_assert_int_eq(((unsigned char *)asock_op_data(rx))[0], i);
  }
  ck_assert_asock(asock_op_clear_buffer(rx), 0);
  uu_pair_close(&p);
}
END_TEST

/* An echo of many datagrams allocates nothing once running. */
static asock_socket *echo_sock;
static int echoed;
static void on_echo(asock_op *op) {
  int r;
  for (;;) {
    if (asock_op_status(op) != 0)
      return;
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVEFROM) {
      echoed++;
      r = asock_send_to(echo_sock, op);
    } else {
      r = asock_receive_from(echo_sock, op);
    }
    if (r != 0)
      return;
  }
}

START_TEST(udp_no_allocation_per_datagram) {
  uu_pair p;
  asock_op *server = tu_op();
  asock_op *tx = tu_op();
  asock_op *rx = tu_op();
  unsigned char out[64];
  unsigned char in[64];
  unsigned long before = 0;
  int i;

  uu_pair_open(&p, "127.0.0.1");
  echo_sock = p.b;
  echoed = 0;
  ck_assert_asock(asock_op_set_callback(server, on_echo), 0);
  ck_assert_asock(asock_receive_from(p.b, server), ASOCK_PENDING);
  tu_set_buffer(rx, in, sizeof(in));
  for (i = 0; i < 2000; i++) {
    if (i == 100)
      before = asock_test_alloc_calls;
    tu_fill(out, sizeof(out), (uint32_t)i, 0);
    uu_send(p.a, tx, out, sizeof(out), &p.b_addr);
    ck_assert(uu_receive_one(p.a, rx));
    ck_assert_uint_eq(asock_op_bytes(rx), sizeof(out));
    ck_assert_uint_eq(tu_mismatch(in, sizeof(out), (uint32_t)i, 0),
                      sizeof(out));
  }
  ck_assert_int_eq(echoed, 2000);
  ck_assert_uint_eq(asock_test_alloc_calls, before);
  ck_assert_asock(tu_close(p.b, 0), 0);
  ck_assert(tu_wait_idle(server));
  ck_assert_asock(asock_op_status(server), ASOCK_ECANCELED);
  ck_assert_asock(tu_close(p.a, 0), 0);
}
END_TEST

Suite *asock_test_suite_udp_flow(void) {
  Suite *s = suite_create("udp_flow");
  TCase *tc = tcase_create("udp_flow");
  TCase *own = tcase_create("udp_flow_own_pool");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, udp_receives_in_order);
  tcase_add_test(tc, udp_read_ahead);
  tcase_add_test(tc, udp_multishot_delivers_what_was_read_ahead);
  tcase_add_test(tc, udp_queued_sends);
  tcase_add_test(tc, udp_cancel_timeout_close);
  tcase_add_test(tc, udp_refused_peer);
  tcase_add_test(tc, udp_no_allocation_per_datagram);
  suite_add_tcase(s, tc);
  tcase_add_checked_fixture(own, NULL, tu_teardown);
  tcase_set_timeout(own, ASOCK_TEST_TIMEOUT);
  tcase_add_test(own, udp_pool_exhausted_waits);
  tcase_add_test(own, udp_pool_exhausted_fails_fast);
  tcase_add_test(own, udp_quota_bounds_read_ahead);
  suite_add_tcase(s, own);
  return s;
}
