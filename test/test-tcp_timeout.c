/* TCP over loopback, per-operation timeouts: receive, accept, connect and
 * send each end with ASOCK_ETIMEDOUT when their deadline passes, counted
 * from each start, never early and never after the op completed; a receive
 * that timed out leaves its socket usable, a half-done send does not. */
#include <string.h>

#include "tcp-util.h"

/* A timing wheel may round a deadline to its tick, so an op may complete a
 * few milliseconds before the exact deadline, but never by more. */
#define EARLY_SLACK_MS 15

static void assert_elapsed(uint64_t start, uint64_t timeout_ms) {
  uint64_t elapsed = tu_now_ms() - start;
  ck_assert_msg(elapsed + EARLY_SLACK_MS >= timeout_ms,
                "timed out after %llu ms, deadline %llu ms",
                (unsigned long long)elapsed, (unsigned long long)timeout_ms);
  ck_assert_msg(elapsed <= tu_ms(timeout_ms + 2000),
                "timed out only after %llu ms, deadline %llu ms",
                (unsigned long long)elapsed, (unsigned long long)timeout_ms);
}

START_TEST(receive_timeout_leaves_the_socket_usable) {
  tu_pair p;
  asock_op *r = tu_op(), *again = tu_op();
  static char buf[16];
  uint64_t start;
  int rr;
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_set_timeout(r, 100), 0);
  ck_assert_uint_eq(asock_op_timeout(r), 100);
  tu_set_buffer(r, buf, sizeof(buf));
  start = tu_now_ms();
  ck_assert_asock(tu_receive(p.server, r), ASOCK_PENDING);
  ck_assert(tu_wait_calls(r, 1));
  assert_elapsed(start, 100);
  ck_assert_asock(tu_rec(r)->status, ASOCK_ETIMEDOUT);
  ck_assert_uint_eq(tu_rec(r)->bytes, 0);
  ck_assert_int_eq(tu_rec(r)->kind, ASOCK_OP_RECEIVE);
  /* The bytes sent later are all there for the next receive. */
  tu_send_all(p.client, "late", 4);
  tu_set_buffer(again, buf, sizeof(buf));
  rr = tu_receive(p.server, again);
  ck_assert_msg(rr == 0 || rr == ASOCK_PENDING, "%s", asock_err_name(rr));
  if (rr == ASOCK_PENDING)
    ck_assert(tu_wait_calls(again, 1));
  ck_assert_asock(asock_op_status(again), 0);
  ck_assert_uint_eq(asock_op_bytes(again), 4);
  ck_assert_int_eq(memcmp(buf, "late", 4), 0);
  /* And the other direction too. */
  tu_send_all(p.server, "back", 4);
  tu_recv_exact(p.client, buf, 4);
  ck_assert_int_eq(memcmp(buf, "back", 4), 0);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(r)->calls, 1);
}
END_TEST

START_TEST(timeout_counts_from_each_start) {
  tu_pair p;
  asock_op *r = tu_op();
  static char buf[8];
  uint64_t start;
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_set_timeout(r, 100), 0);
  tu_set_buffer(r, buf, sizeof(buf));
  /* Completes in time... */
  ck_assert_asock(tu_receive(p.server, r), ASOCK_PENDING);
  tu_send_all(p.client, "x", 1);
  ck_assert(tu_wait_calls(r, 1));
  ck_assert_asock(tu_rec(r)->status, 0);
  ck_assert_uint_eq(tu_rec(r)->bytes, 1);
  /* ...and its old deadline does not fire later. */
  tu_run_for(250);
  ck_assert_int_eq(tu_rec(r)->calls, 1);
  /* The next start has a deadline of its own, counted from then. */
  start = tu_now_ms();
  ck_assert_asock(tu_receive(p.server, r), ASOCK_PENDING);
  ck_assert(tu_wait_calls(r, 2));
  assert_elapsed(start, 100);
  ck_assert_asock(tu_rec(r)->status, ASOCK_ETIMEDOUT);
  /* A synchronous completion with a timeout set never calls back. */
  tu_send_all(p.client, "y", 1);
  tu_run_for(20);
  ck_assert_asock(tu_receive(p.server, r), 0);
  ck_assert_uint_eq(asock_op_bytes(r), 1);
  tu_run_for(250);
  ck_assert_int_eq(tu_rec(r)->calls, 2);
  /* 0 means none. */
  ck_assert_asock(asock_op_set_timeout(r, 0), 0);
  ck_assert_uint_eq(asock_op_timeout(r), 0);
  ck_assert_asock(asock_op_set_timeout(NULL, 5), ASOCK_EINVAL);
  ck_assert_asock(tu_receive(p.server, r), ASOCK_PENDING);
  tu_run_for(250);
  ck_assert_int_eq(tu_rec(r)->calls, 2);
  ck_assert_asock(tu_cancel(r), 0);
  ck_assert(tu_wait_calls(r, 3));
  ck_assert_asock(tu_rec(r)->status, ASOCK_ECANCELED);
}
END_TEST

START_TEST(timeouts_fire_in_deadline_order) {
  static const uint64_t timeouts[3] = {300, 100, 200};
  tu_pair p[3];
  asock_op *r[3];
  uint64_t start;
  int i;
  tu_pair_open(&p[0], "127.0.0.1");
  for (i = 1; i < 3; i++)
    tu_pair_connect(&p[i], p[0].listener, &p[0].addr);
  start = tu_now_ms();
  for (i = 0; i < 3; i++) {
    r[i] = tu_op();
    ck_assert_asock(asock_op_set_timeout(r[i], timeouts[i]), 0);
    ck_assert_asock(tu_receive(p[i].server, r[i]), ASOCK_PENDING);
  }
  ck_assert(tu_wait_calls(r[1], 1));
  assert_elapsed(start, 100);
  ck_assert(tu_wait_calls(r[2], 1));
  assert_elapsed(start, 200);
  ck_assert(tu_wait_calls(r[0], 1));
  assert_elapsed(start, 300);
  for (i = 0; i < 3; i++)
    ck_assert_asock(tu_rec(r[i])->status, ASOCK_ETIMEDOUT);
  ck_assert_int_lt(tu_rec(r[1])->order, tu_rec(r[2])->order);
  ck_assert_int_lt(tu_rec(r[2])->order, tu_rec(r[0])->order);
}
END_TEST

static void count_timers(uv_handle_t *handle, void *arg) {
  if (handle->type == UV_TIMER)
    (*(int *)arg)++;
}

/* One timing wheel per loop: many deadlines, no timer per op or socket. */
START_TEST(one_timer_for_all_deadlines) {
  tu_pair p[8];
  asock_op *r[8];
  int before = 0, after = 0;
  int i;
  tu_pair_open(&p[0], "127.0.0.1");
  for (i = 1; i < 8; i++)
    tu_pair_connect(&p[i], p[0].listener, &p[0].addr);
  uv_walk(asock_loop_uv(tu_loop), count_timers, &before);
  for (i = 0; i < 8; i++) {
    r[i] = tu_op();
    ck_assert_asock(asock_op_set_timeout(r[i], 50 + 10 * (uint64_t)i), 0);
    ck_assert_asock(tu_receive(p[i].server, r[i]), ASOCK_PENDING);
  }
  uv_walk(asock_loop_uv(tu_loop), count_timers, &after);
  ck_assert_int_le(after, before + 1);
  for (i = 0; i < 8; i++) {
    ck_assert(tu_wait_calls(r[i], 1));
    ck_assert_asock(tu_rec(r[i])->status, ASOCK_ETIMEDOUT);
  }
  for (i = 1; i < 8; i++)
    ck_assert_int_lt(tu_rec(r[i - 1])->order, tu_rec(r[i])->order);
}
END_TEST

START_TEST(accept_timeout_then_the_listener_works) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_op *a = tu_op();
  tu_pair p;
  uint64_t start = tu_now_ms();
  char c;
  ck_assert_asock(asock_op_set_timeout(a, 100), 0);
  ck_assert_asock(tu_accept(listener, a), ASOCK_PENDING);
  ck_assert(tu_wait_calls(a, 1));
  assert_elapsed(start, 100);
  ck_assert_asock(tu_rec(a)->status, ASOCK_ETIMEDOUT);
  ck_assert_int_eq(tu_rec(a)->kind, ASOCK_OP_ACCEPT);
  ck_assert_ptr_null(asock_op_accepted(a));
  tu_pair_connect(&p, listener, &addr);
  tu_send_all(p.client, "a", 1);
  tu_recv_exact(p.server, &c, 1);
  ck_assert_int_eq(c, 'a');
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(a)->calls, 1);
}
END_TEST

#ifndef _WIN32
/* Unix only: libuv on Windows keeps accepts posted on every listener
 * (AcceptEx), so a listener there takes connections nobody accepts, and a
 * full backlog refuses a connection instead of leaving it hanging. Neither
 * gives a connect that waits long enough to time out over loopback.
 *
 * A listener with a backlog of one and no accept posted: once the kernel's
 * queue is full, a connect hangs in SYN_SENT until its deadline. */
START_TEST(connect_timeout) {
  struct sockaddr_storage addr;
  asock_socket *listener, *client;
  asock_op *c;
  int len = (int)sizeof(addr);
  asock_socket *timed_out = NULL;
  int i, hung = -1;
  tu_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_tcp_create(&listener, tu_loop), 0);
  ck_assert_asock(asock_tcp_listen(listener, (struct sockaddr *)&addr, 1, 0),
                  0);
  ck_assert_asock(
      asock_socket_local_address(listener, (struct sockaddr *)&addr, &len), 0);
  for (i = 0; i < 32 && hung < 0; i++) {
    uint64_t start;
    c = tu_op();
    ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
    ck_assert_asock(asock_op_set_remote(c, (struct sockaddr *)&addr), 0);
    ck_assert_asock(asock_op_set_timeout(c, 300), 0);
    start = tu_now_ms();
    ck_assert_asock(tu_connect(client, c), ASOCK_PENDING);
    ck_assert(tu_wait_calls(c, 1));
    if (tu_rec(c)->status == ASOCK_ETIMEDOUT) {
      assert_elapsed(start, 300);
      hung = i;
      timed_out = client;
    } else {
      ck_assert_asock(tu_rec(c)->status, 0);
    }
  }
  ck_assert_msg(hung >= 0,
                "no connect hung behind a full backlog (%d): does the "
                "listener accept without an accept op?",
                hung);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(c)->calls, 1);
  ck_assert_asock(tu_close(timed_out, 0), 0);
}
END_TEST
#endif

START_TEST(send_timeout_closes_a_half_done_send) {
  static unsigned char big[8 << 20], back[8 << 20];
  static char rb[8];
  tu_pair p, q;
  asock_op *s = tu_op(), *r = tu_op();
  uint64_t start;
  size_t got;
  int end;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(big, sizeof(big), 14, 0);
  tu_set_buffer(s, big, sizeof(big));
  tu_set_buffer(r, rb, sizeof(rb));
  ck_assert_asock(asock_op_set_timeout(s, 200), 0);
  start = tu_now_ms();
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  ck_assert(tu_wait_calls(s, 1));
  assert_elapsed(start, 200);
  ck_assert_asock(tu_rec(s)->status, ASOCK_ETIMEDOUT);
  ck_assert_uint_lt(tu_rec(s)->bytes, sizeof(big));
  /* The stream cannot go on after half a message: the socket is closed,
   * its other ops canceled, and the peer sees a correct prefix, then the
   * end. */
  ck_assert(tu_wait_calls(r, 1));
  ck_assert_asock(tu_rec(r)->status, ASOCK_ECANCELED);
  end = tu_recv_to_end(p.server, 14, 0, sizeof(big), &got);
  ck_assert_msg(end == ASOCK_EOF || end == ASOCK_ECONNRESET, "%s",
                asock_err_name(end));
  ck_assert_uint_lt(got, sizeof(big));
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(s)->calls, 1);
  ck_assert_int_eq(tu_rec(r)->calls, 1);
  ck_assert_asock(tu_close(p.client, 0), 0);
  /* What ended that send ends nothing else: the op's next send, which
   * waits for its peer too, completes whole. */
  tu_pair_connect(&q, p.listener, &p.addr);
  tu_shrink_buffers(q.client, q.server);
  ck_assert_asock(asock_op_set_timeout(s, 0), 0);
  ck_assert_asock(tu_send(q.client, s), ASOCK_PENDING);
  tu_recv_exact(q.server, back, sizeof(back));
  ck_assert_uint_eq(tu_mismatch(back, sizeof(back), 14, 0), sizeof(back));
  ck_assert(tu_wait_calls(s, 2));
  ck_assert_asock(tu_rec(s)->status, 0);
  ck_assert_uint_eq(tu_rec(s)->bytes, sizeof(big));
  ck_assert_asock(tu_close(q.client, 0), 0);
  ck_assert_asock(tu_close(q.server, 0), 0);
}
END_TEST

START_TEST(cancel_or_close_before_the_deadline_completes_once) {
  tu_pair p;
  asock_op *a = tu_op(), *b = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_set_timeout(a, 100), 0);
  ck_assert_asock(asock_op_set_timeout(b, 100), 0);
  ck_assert_asock(tu_receive(p.server, a), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(a), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_receive(p.client, b), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_calls(b, 1));
  ck_assert_asock(tu_rec(b)->status, ASOCK_ECANCELED);
  tu_run_for(250);
  ck_assert_int_eq(tu_rec(a)->calls, 1);
  ck_assert_int_eq(tu_rec(b)->calls, 1);
}
END_TEST

Suite *asock_test_suite_tcp_timeout(void) {
  Suite *s = suite_create("tcp_timeout");
  TCase *tc = tcase_create("tcp_timeout");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, receive_timeout_leaves_the_socket_usable);
  tcase_add_test(tc, timeout_counts_from_each_start);
  tcase_add_test(tc, timeouts_fire_in_deadline_order);
  tcase_add_test(tc, one_timer_for_all_deadlines);
  tcase_add_test(tc, accept_timeout_then_the_listener_works);
#ifndef _WIN32
  tcase_add_test(tc, connect_timeout);
#endif
  tcase_add_test(tc, send_timeout_closes_a_half_done_send);
  tcase_add_test(tc, cancel_or_close_before_the_deadline_completes_once);
  suite_add_tcase(s, tc);
  return s;
}
