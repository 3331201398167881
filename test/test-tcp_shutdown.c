/* TCP over loopback, the graceful endings. Half-close (asock_shutdown()):
 * the queued sends go out first, then the end of the stream; the socket
 * goes on receiving until the peer's own end; later sends are refused; a
 * disconnect after it only closes; a shutdown still waiting can be taken
 * back, one under way cannot; the refusals of every wrong start. And a
 * lingering close (asock_socket_set_linger()): the queued sends go out
 * before the FIN, or the connection is reset when the time is up. */
#include <string.h>

#include "tcp-util.h"
#include "udp-util.h"

/* Waits for a start that may complete inside its call (0) or later. */
static void wait_started(asock_op *op, int r) {
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  ck_assert(tu_wait_idle(op));
}

/* The .NET pattern: send the last bytes, shut the sending side down, read
 * until the peer's end of the stream, close. */
START_TEST(shutdown_sends_the_queue_then_reads_on) {
  static unsigned char a[512 << 10], reply[64];
  tu_pair p;
  asock_op *s = tu_op(), *sd = tu_op(), *late = tu_op(), *r = tu_op();
  asock_op *back = tu_op();
  size_t got;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(a, sizeof(a), 31, 0);
  tu_set_buffer(s, a, sizeof(a));
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_shutdown(p.client, sd), ASOCK_PENDING);
  ck_assert_int_eq(asock_op_last_kind(sd), ASOCK_OP_SHUTDOWN);
  ck_assert_uint_eq(asock_op_seq(sd), asock_op_seq(s) + 1);
  /* Nothing more may be sent, and nothing shuts down twice. */
  tu_set_buffer(late, reply, 1);
  ck_assert_asock(tu_send(p.client, late), ASOCK_ESHUTDOWN);
  ck_assert_asock(tu_shutdown(p.client, late), ASOCK_ESHUTDOWN);
  ck_assert_asock(tu_disconnect(p.client, late), ASOCK_ECLOSED);
  /* The receives go on. */
  tu_set_buffer(r, reply, sizeof(reply));
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  /* The peer gets every byte, then the end of the stream. */
  ck_assert_asock(tu_recv_to_end(p.server, 31, 0, sizeof(a), &got), ASOCK_EOF);
  ck_assert_uint_eq(got, sizeof(a));
  ck_assert(tu_wait_calls(sd, 1));
  ck_assert_asock(tu_rec(sd)->status, 0);
  ck_assert_int_eq(tu_rec(s)->calls, 1);
  ck_assert_asock(tu_rec(s)->status, 0);
  ck_assert_uint_eq(tu_rec(s)->bytes, sizeof(a));
  ck_assert_int_lt(tu_rec(s)->order, tu_rec(sd)->order);
  ck_assert_int_eq(tu_rec(r)->calls, 0);
  /* The peer answers after the end of the stream it received. */
  tu_fill(reply, 40, 32, 0);
  tu_set_buffer(back, reply, 40);
  wait_started(back, tu_send(p.server, back));
  ck_assert(tu_wait_calls(r, 1));
  ck_assert_asock(tu_rec(r)->status, 0);
  ck_assert_uint_eq(tu_rec(r)->bytes, 40);
  ck_assert_uint_eq(tu_mismatch(reply, 40, 32, 0), 40);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_recv_to_end(p.client, 33, 0, 0, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(sd)->calls, 1);
  ck_assert_int_eq(tu_rec(late)->calls, 0);
}
END_TEST

/* With nothing queued the shutdown may complete inside its call; either
 * way the peer sees the end of the stream, and a disconnect then only
 * closes. */
START_TEST(shutdown_with_nothing_queued_then_disconnect) {
  tu_pair p;
  asock_op *sd = tu_op(), *d = tu_op(), *r = tu_op();
  size_t got;
  int rr;
  tu_pair_open(&p, "127.0.0.1");
  rr = tu_shutdown(p.client, sd);
  wait_started(sd, rr);
  ck_assert_asock(asock_op_status(sd), 0);
  ck_assert_asock(tu_recv_to_end(p.server, 34, 0, 0, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, 0);
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  ck_assert_asock(tu_disconnect(p.client, d), ASOCK_PENDING);
  ck_assert(tu_wait_calls(d, 1));
  ck_assert_asock(tu_rec(d)->status, 0);
  ck_assert(tu_wait_calls(r, 1));
  ck_assert_asock(tu_rec(r)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* A shutdown that waits for earlier sends can be taken back: the socket
 * sends again afterwards, and the peer sees no end of the stream. */
START_TEST(cancel_a_waiting_shutdown) {
  static unsigned char a[512 << 10], more[100];
  static unsigned char in[sizeof(a) + sizeof(more)];
  tu_pair p;
  asock_op *s = tu_op(), *sd = tu_op(), *s2 = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(a, sizeof(a), 35, 0);
  tu_fill(more, sizeof(more), 35, sizeof(a));
  tu_set_buffer(s, a, sizeof(a));
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_shutdown(p.client, sd), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(sd), 0);
  ck_assert(tu_wait_calls(sd, 1));
  ck_assert_asock(tu_rec(sd)->status, ASOCK_ECANCELED);
  tu_set_buffer(s2, more, sizeof(more));
  ck_assert_asock(tu_send(p.client, s2), ASOCK_PENDING);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 35, 0), sizeof(in));
  ck_assert(tu_wait_calls(s2, 1));
  ck_assert_asock(tu_rec(s)->status, 0);
  ck_assert_asock(tu_rec(s2)->status, 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* A shutdown waiting for its sends ends with ASOCK_ECANCELED when its socket
 * closes, and with ASOCK_ETIMEDOUT at its deadline, which takes it back. */
START_TEST(close_or_timeout_ends_a_waiting_shutdown) {
  static unsigned char a[2 << 20];
  tu_pair p, q;
  asock_op *s = tu_op(), *sd = tu_op(), *s2 = tu_op(), *sd2 = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  tu_pair_connect(&q, p.listener, &p.addr);
  tu_shrink_buffers(p.client, p.server);
  tu_shrink_buffers(q.client, q.server);
  tu_set_buffer(s, a, sizeof(a));
  tu_set_buffer(s2, a, sizeof(a));
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_shutdown(p.client, sd), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_calls(sd, 1));
  ck_assert_asock(tu_rec(sd)->status, ASOCK_ECANCELED);
  ck_assert(tu_wait_calls(s, 1));
  ck_assert_asock(tu_rec(s)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_send(q.client, s2), ASOCK_PENDING);
  ck_assert_asock(asock_op_set_timeout(sd2, 50), 0);
  ck_assert_asock(tu_shutdown(q.client, sd2), ASOCK_PENDING);
  ck_assert(tu_wait_calls(sd2, 1));
  ck_assert_asock(tu_rec(sd2)->status, ASOCK_ETIMEDOUT);
  /* Taken back: the send it waited for is still going. */
  ck_assert_int_eq(asock_op_is_pending(s2), 1);
  ck_assert_asock(tu_close(q.client, 0), 0);
  ck_assert(tu_wait_calls(s2, 1));
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(q.server, 0), 0);
}
END_TEST

START_TEST(shutdown_refuses_what_it_cannot_do) {
  tu_pair p;
  asock_socket *fresh;
  asock_op *op = tu_op(), *ms = tu_op();
  uu_pair u;
  tu_pair_open(&p, "127.0.0.1");
  uu_pair_open(&u, "127.0.0.1");
  ck_assert_asock(asock_tcp_create(&fresh, tu_loop), 0);
  ck_assert_asock(tu_shutdown(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_shutdown(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_shutdown(p.listener, op), ASOCK_EKIND);
  ck_assert_asock(tu_shutdown(u.a, op), ASOCK_EKIND);
  ck_assert_asock(tu_shutdown(fresh, op), ASOCK_ENOTCONN);
  ck_assert_asock(asock_op_set_multishot(ms, 1), 0);
  ck_assert_asock(tu_shutdown(p.client, ms), ASOCK_EKIND);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_int_eq(tu_rec(op)->calls, 0);
  ck_assert_asock(tu_close(fresh, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  uu_pair_close(&u);
}
END_TEST

/* ---- lingering close ---------------------------------------------------- */

START_TEST(linger_lets_queued_sends_finish) {
  static unsigned char a[512 << 10];
  static char rb[8];
  tu_pair p;
  asock_op *s = tu_op(), *r = tu_op();
  asock_socket *u;
  size_t got;
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_socket_set_linger(NULL, 1, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_udp_create(&u, tu_loop), 0);
  ck_assert_asock(asock_socket_set_linger(u, 1, 1), ASOCK_EKIND);
  ck_assert_asock(tu_close(u, 0), 0);
  tu_shrink_buffers(p.client, p.server);
  tu_fill(a, sizeof(a), 36, 0);
  tu_set_buffer(s, a, sizeof(a));
  tu_set_buffer(r, rb, sizeof(rb));
  ck_assert_asock(asock_socket_set_linger(p.client, 1, 60), 0);
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.client, 0), 0);
  /* The receive ends at once; the send goes on. */
  ck_assert(tu_wait_calls(r, 1));
  ck_assert_asock(tu_rec(r)->status, ASOCK_ECANCELED);
  ck_assert_int_eq(tu_rec(s)->calls, 0);
  ck_assert_asock(tu_recv_to_end(p.server, 36, 0, sizeof(a), &got), ASOCK_EOF);
  ck_assert_uint_eq(got, sizeof(a));
  ck_assert(tu_wait_calls(s, 1));
  ck_assert_asock(tu_rec(s)->status, 0);
  ck_assert_uint_eq(tu_rec(s)->bytes, sizeof(a));
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* When the linger time is up first, the connection is reset and the send
 * still queued is cancelled. */
START_TEST(linger_time_up_resets) {
  static unsigned char a[4 << 20];
  tu_pair p;
  asock_op *s = tu_op();
  size_t got;
  int end;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(a, sizeof(a), 37, 0);
  tu_set_buffer(s, a, sizeof(a));
  ck_assert_asock(asock_socket_set_linger(p.client, 1, 1), 0);
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_calls(s, 1));
  ck_assert_asock(tu_rec(s)->status, ASOCK_ECANCELED);
  ck_assert_uint_lt(tu_rec(s)->bytes, sizeof(a));
  end = tu_recv_to_end(p.server, 37, 0, sizeof(a), &got);
  ck_assert_msg(end == ASOCK_ECONNRESET || end == ASOCK_EOF, "%s",
                asock_err_name(end));
  ck_assert_uint_lt(got, sizeof(a));
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* Lingering for no time is a reset; and a socket still lingering when the
 * loop closes is reset with it, each op completing once. */
START_TEST(linger_zero_resets_and_loop_close_ends_lingering) {
  static unsigned char a[4 << 20];
  tu_pair p, q;
  asock_op *s = tu_op();
  size_t got;
  tu_pair_open(&p, "127.0.0.1");
  tu_pair_connect(&q, p.listener, &p.addr);
  ck_assert_asock(asock_socket_set_linger(p.client, 1, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_recv_to_end(p.server, 38, 0, 0, &got), ASOCK_ECONNRESET);
  ck_assert_asock(tu_close(p.server, 0), 0);
  tu_shrink_buffers(q.client, q.server);
  tu_set_buffer(s, a, sizeof(a));
  ck_assert_asock(asock_socket_set_linger(q.client, 1, 3600), 0);
  ck_assert_asock(tu_send(q.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_close(q.client, 0), 0);
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_int_eq(tu_rec(s)->calls, 1);
  ck_assert_asock(tu_rec(s)->status, ASOCK_ECANCELED);
}
END_TEST

Suite *asock_test_suite_tcp_shutdown(void) {
  Suite *s = suite_create("tcp_shutdown");
  TCase *tc = tcase_create("tcp_shutdown");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, shutdown_sends_the_queue_then_reads_on);
  tcase_add_test(tc, shutdown_with_nothing_queued_then_disconnect);
  tcase_add_test(tc, cancel_a_waiting_shutdown);
  tcase_add_test(tc, close_or_timeout_ends_a_waiting_shutdown);
  tcase_add_test(tc, shutdown_refuses_what_it_cannot_do);
  tcase_add_test(tc, linger_lets_queued_sends_finish);
  tcase_add_test(tc, linger_time_up_resets);
  tcase_add_test(tc, linger_zero_resets_and_loop_close_ends_lingering);
  suite_add_tcase(s, tc);
  return s;
}
