/* TCP over loopback, accepting with the first bytes (asock_accept_receive()):
 * the op completes only once a connection has sent something, with its
 * bytes; connections that end silent are never reported; the timeout
 * reports a silent connection or none; cancel, listener close and loop
 * close; TCP_DEFER_ACCEPT; the refusals; a start from another thread. */
#include <string.h>

#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#endif

#include "tcp-util.h"

/* A client connected to addr, the connect completed. The listener's side
 * of the connection is in its backlog, not accepted. */
static asock_socket *dial(const struct sockaddr_storage *addr) {
  asock_socket *client;
  asock_op *cop = tu_op();
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (const struct sockaddr *)addr), 0);
  ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  return client;
}

/* Whether the pending accept-receive op has taken a connection (the test
 * peeks at what its owner reads only once it completes). */
static int has_taken(const void *op) {
  return asock_op_accepted((const asock_op *)op) != NULL;
}

static int accept_receive(asock_socket *listener, asock_op *op) {
  int r = asock_accept_receive(listener, op);
  ck_assert_msg(r == ASOCK_PENDING || r <= 0, "start returned %d", r);
  return r;
}

START_TEST(completes_with_the_first_bytes) {
  struct sockaddr_storage addr, local, remote;
  asock_socket *listener = tu_listen("127.0.0.1", &addr), *client, *server;
  asock_op *op = tu_op();
  int len = (int)sizeof(local);
  char buf[8];

  ck_assert_asock(accept_receive(listener, op), ASOCK_PENDING);
  ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_ACCEPT);
  client = dial(&addr);
  /* Connected, silent: nothing to report. */
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(op)->calls, 0);
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  tu_send_all(client, "hello", 5);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(tu_rec(op)->status, 0);
  ck_assert_int_eq(tu_rec(op)->kind, ASOCK_OP_ACCEPT);
  ck_assert_uint_eq(tu_rec(op)->bytes, 5);
  ck_assert_uint_eq(tu_rec(op)->seq, 1);
  server = asock_op_accepted(op);
  ck_assert_ptr_nonnull(server);
  ck_assert_ptr_eq(asock_op_socket(op), listener);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_SLICE);
  ck_assert_int_eq(memcmp(asock_op_data(op), "hello", 5), 0);
  ck_assert_uint_eq(asock_socket_slices_held(server), 1);
  ck_assert_asock(
      asock_socket_local_address(client, (struct sockaddr *)&local, &len), 0);
  ck_assert(tu_same_addr(asock_op_remote(op), (struct sockaddr *)&local));
  len = (int)sizeof(remote);
  ck_assert_asock(
      asock_socket_remote_address(server, (struct sockaddr *)&remote, &len), 0);
  ck_assert(
      tu_same_addr((struct sockaddr *)&remote, (struct sockaddr *)&local));
  /* The accepted socket works on. */
  tu_send_all(server, "back", 4);
  tu_recv_exact(client, buf, 4);
  ck_assert_int_eq(memcmp(buf, "back", 4), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_asock(tu_close(server, 0), 0);
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

/* Connections that close or reset without sending are closed by asock and
 * never reported; the op takes the next one. Its own buffer is honoured. */
START_TEST(silent_connections_are_never_reported) {
  static char mem[16];
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr), *a, *b, *c;
  asock_op *op = tu_op();
  unsigned long live;

  tu_set_buffer(op, mem, sizeof(mem));
  ck_assert_asock(accept_receive(listener, op), ASOCK_PENDING);
  a = dial(&addr);
  tu_run_for(20);
  ck_assert_asock(tu_close(a, 0), 0);
  b = dial(&addr);
  tu_run_for(20);
  ck_assert_asock(tu_close(b, ASOCK_CLOSE_ABORT), 0);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(op)->calls, 0);
  c = dial(&addr);
  tu_send_all(c, "third", 5);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(tu_rec(op)->status, 0);
  ck_assert_uint_eq(tu_rec(op)->bytes, 5);
  ck_assert_int_eq(memcmp(mem, "third", 5), 0);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_USER);
  /* Of the three sockets asock made, one is the application's; the other
   * two went with their connections. */
  live = asock_test_alloc_live;
  ck_assert_asock(tu_close(asock_op_accepted(op), 0), 0);
  ck_assert_asock(tu_close(c, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
  tu_run_for(20);
  ck_assert_uint_eq(asock_test_alloc_live, live - 3);
}
END_TEST

/* The timeout reports the silent connection taken, the application's to
 * close, or none when none came. */
START_TEST(timeout_reports_the_silent_connection) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr), *client;
  asock_op *op = tu_op(), *none = tu_op();

  ck_assert_asock(asock_op_set_timeout(op, 100), 0);
  ck_assert_asock(asock_op_set_timeout(none, 100), 0);
  client = dial(&addr);
  ck_assert_asock(accept_receive(listener, op), ASOCK_PENDING);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(tu_rec(op)->status, ASOCK_ETIMEDOUT);
  ck_assert_ptr_nonnull(asock_op_accepted(op));
  ck_assert_ptr_eq(asock_op_socket(op), listener);
  ck_assert_uint_eq(tu_rec(op)->bytes, 0);
  ck_assert_asock(tu_close(asock_op_accepted(op), 0), 0);
  ck_assert_asock(accept_receive(listener, none), ASOCK_PENDING);
  ck_assert(tu_wait_calls(none, 1));
  ck_assert_asock(tu_rec(none)->status, ASOCK_ETIMEDOUT);
  ck_assert_ptr_null(asock_op_accepted(none));
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

/* A cancel ends it with ASOCK_ECANCELED and the silent connection taken; a
 * listener's close and the loop's close take the connection with them. */
START_TEST(cancel_and_closes) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr), *c1, *c2;
  asock_op *a = tu_op(), *b = tu_op(), *c = tu_op();

  c1 = dial(&addr);
  ck_assert_asock(accept_receive(listener, a), ASOCK_PENDING);
  ck_assert(tu_run_until(has_taken, a, 10000)); /* and waits for bytes */
  ck_assert_asock(tu_cancel(a), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_ptr_nonnull(asock_op_accepted(a));
  ck_assert_asock(tu_close(asock_op_accepted(a), 0), 0);
  /* Waiting on the listener when it closes: nothing taken. */
  ck_assert_asock(accept_receive(listener, b), ASOCK_PENDING);
  c2 = dial(&addr);
  ck_assert(tu_run_until(has_taken, b, 10000));
  ck_assert_asock(accept_receive(listener, c), ASOCK_PENDING);
  ck_assert_asock(tu_close(listener, 0), 0);
  ck_assert(tu_wait_calls(c, 1));
  ck_assert_asock(tu_rec(c)->status, ASOCK_ECANCELED);
  ck_assert_ptr_null(asock_op_accepted(c));
  /* b waits in the socket it took, which the loop's close takes away. */
  ck_assert_int_eq(tu_rec(b)->calls, 0);
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_int_eq(tu_rec(b)->calls, 1);
  ck_assert_asock(tu_rec(b)->status, ASOCK_ECANCELED);
  ck_assert_ptr_null(asock_op_accepted(b));
  (void)c1;
  (void)c2;
}
END_TEST

/* Bytes already there: taken with the connection inside the call, or, on a
 * platform that reports connections later, soon after. */
START_TEST(bytes_already_there) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr), *client;
  asock_op *op = tu_op();
  int r;

  client = dial(&addr);
  tu_send_all(client, "early", 5);
  tu_run_for(20);
  r = accept_receive(listener, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 5);
  ck_assert_int_eq(memcmp(asock_op_data(op), "early", 5), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_asock(tu_close(asock_op_accepted(op), 0), 0);
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

START_TEST(refusals) {
  static char mem[4];
  static const asock_buf list[1] = {{mem, 4}};
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_op *op = tu_op();

  ck_assert_asock(asock_accept_receive(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(asock_accept_receive(listener, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_buffer(op, mem, sizeof(mem), 0, 0), 0);
  ck_assert_asock(asock_accept_receive(listener, op), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_buffer_list(op, list, 1), 0);
  ck_assert_asock(asock_accept_receive(listener, op), ASOCK_EKIND);
  ck_assert_asock(asock_op_set_buffer_list(op, NULL, 0), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_asock(asock_op_set_multishot(op, 1), 0);
  ck_assert_asock(asock_accept_receive(listener, op), ASOCK_EKIND);
  ck_assert_asock(asock_op_set_multishot(op, 0), 0);
  ck_assert_asock(accept_receive(listener, op), ASOCK_PENDING);
  ck_assert_asock(asock_accept_receive(listener, op), ASOCK_EBUSY);
  ck_assert_asock(asock_accept(listener, op), ASOCK_EBUSY);
  ck_assert_asock(tu_close(listener, 0), 0);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_int_eq(tu_completions, 1);
}
END_TEST

#ifdef TCP_DEFER_ACCEPT
/* The listen flag asks the kernel to hold silent connections; the
 * accept-receive keeps its contract. */
START_TEST(defer_accept_listener) {
  struct sockaddr_storage addr;
  asock_socket *listener, *client;
  asock_op *op = tu_op();
  int value = 0;
  size_t len = sizeof(value);

  tu_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_tcp_create(&listener, tu_loop), 0);
  ck_assert_asock(asock_tcp_listen(listener, (struct sockaddr *)&addr, 16,
                                   ASOCK_LISTEN_DEFER_ACCEPT),
                  0);
  ck_assert_asock(asock_socket_get_option(listener, IPPROTO_TCP,
                                          TCP_DEFER_ACCEPT, &value, &len),
                  0);
  ck_assert_int_gt(value, 0);
  {
    int alen = (int)sizeof(addr);
    ck_assert_asock(
        asock_socket_local_address(listener, (struct sockaddr *)&addr, &alen),
        0);
  }
  ck_assert_asock(accept_receive(listener, op), ASOCK_PENDING);
  client = dial(&addr);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(op)->calls, 0);
  tu_send_all(client, "deferred", 8);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(tu_rec(op)->status, 0);
  ck_assert_uint_eq(tu_rec(op)->bytes, 8);
  ck_assert_int_eq(memcmp(asock_op_data(op), "deferred", 8), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_asock(tu_close(asock_op_accepted(op), 0), 0);
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST
#endif

typedef struct starter {
  asock_socket *listener;
  asock_op *op;
  int result;
} starter;

static void start_elsewhere(void *arg) {
  starter *s = arg;
  s->result = asock_accept_receive(s->listener, s->op);
}

START_TEST(started_from_another_thread) {
  static starter s;
  struct sockaddr_storage addr;
  asock_socket *client;
  uv_thread_t thread;

  s.listener = tu_listen("127.0.0.1", &addr);
  s.op = tu_op();
  ck_assert_int_eq(uv_thread_create(&thread, start_elsewhere, &s), 0);
  ck_assert_int_eq(uv_thread_join(&thread), 0);
  ck_assert_asock(s.result, ASOCK_PENDING);
  client = dial(&addr);
  tu_send_all(client, "far", 3);
  ck_assert(tu_wait_calls(s.op, 1));
  ck_assert_asock(tu_rec(s.op)->status, 0);
  ck_assert_uint_eq(tu_rec(s.op)->bytes, 3);
  ck_assert_asock(asock_op_clear_buffer(s.op), 0);
  ck_assert_asock(tu_close(asock_op_accepted(s.op), 0), 0);
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(s.listener, 0), 0);
}
END_TEST

Suite *asock_test_suite_tcp_accept(void) {
  Suite *s = suite_create("tcp_accept");
  TCase *tc = tcase_create("tcp_accept");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, completes_with_the_first_bytes);
  tcase_add_test(tc, silent_connections_are_never_reported);
  tcase_add_test(tc, timeout_reports_the_silent_connection);
  tcase_add_test(tc, cancel_and_closes);
  tcase_add_test(tc, bytes_already_there);
  tcase_add_test(tc, refusals);
#ifdef TCP_DEFER_ACCEPT
  tcase_add_test(tc, defer_accept_listener);
#endif
  tcase_add_test(tc, started_from_another_thread);
  suite_add_tcase(s, tc);
  return s;
}
