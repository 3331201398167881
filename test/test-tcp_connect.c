/* TCP over loopback, connecting: to an address and to a host name, a
 * connect the peer refuses or the kernel fails at once, the socket
 * connecting again after a failure, and the addresses a connect by name
 * tried with the result of each. */
#include <stdio.h>
#include <string.h>

#include "tcp-util.h"

START_TEST(connect_and_exchange_ipv4) {
  struct sockaddr_storage addr, a, b;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *client, *server;
  asock_op *cop = tu_op(), *aop = tu_op();
  char buf[4];
  int len;
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&addr), 0);
  ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
  ck_assert_int_eq(asock_op_last_kind(cop), ASOCK_OP_CONNECT);
  ck_assert_ptr_eq(asock_op_socket(cop), client);
  ck_assert_uint_gt(asock_op_seq(cop), 0);
  ck_assert_int_eq(tu_rec(cop)->calls, 0);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  ck_assert_int_eq(tu_rec(cop)->kind, ASOCK_OP_CONNECT);
  tu_accept_done(listener, aop);
  server = asock_op_accepted(aop);
  ck_assert_ptr_nonnull(server);
  /* The addresses agree on both ends. */
  len = (int)sizeof(a);
  ck_assert_asock(
      asock_socket_remote_address(client, (struct sockaddr *)&a, &len), 0);
  ck_assert(tu_same_addr((struct sockaddr *)&a, (struct sockaddr *)&addr));
  len = (int)sizeof(a);
  ck_assert_asock(
      asock_socket_local_address(client, (struct sockaddr *)&a, &len), 0);
  len = (int)sizeof(b);
  ck_assert_asock(
      asock_socket_remote_address(server, (struct sockaddr *)&b, &len), 0);
  ck_assert(tu_same_addr((struct sockaddr *)&a, (struct sockaddr *)&b));
  len = (int)sizeof(b);
  ck_assert_asock(
      asock_socket_local_address(server, (struct sockaddr *)&b, &len), 0);
  ck_assert(tu_same_addr((struct sockaddr *)&b, (struct sockaddr *)&addr));
  /* Both directions carry bytes. */
  tu_send_all(client, "ping", 4);
  tu_recv_exact(server, buf, 4);
  ck_assert_int_eq(memcmp(buf, "ping", 4), 0);
  tu_send_all(server, "pong", 4);
  tu_recv_exact(client, buf, 4);
  ck_assert_int_eq(memcmp(buf, "pong", 4), 0);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(cop)->calls, 1);
}
END_TEST

START_TEST(connect_refused) {
  struct sockaddr_storage addr;
  uv_tcp_t bound;
  asock_socket *client;
  asock_op *cop = tu_op();
  int r;
  tu_addr("127.0.0.1", tu_bind_unlistened("127.0.0.1", &bound), &addr);
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&addr), 0);
  r = tu_connect(client, cop);
  if (r == ASOCK_PENDING) {
    ck_assert(tu_wait_calls(cop, 1));
    ck_assert_asock(tu_rec(cop)->status, ASOCK_ECONNREFUSED);
    ck_assert_asock(asock_op_status(cop), ASOCK_ECONNREFUSED);
  } else {
    /* libuv may report it at once; then it never starts. */
    ck_assert_asock(r, ASOCK_ECONNREFUSED);
  }
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(cop)->calls, r == ASOCK_PENDING ? 1 : 0);
  /* The socket connects again, to a listener this time, and serves. */
  {
    struct sockaddr_storage laddr;
    asock_socket *listener = tu_listen("127.0.0.1", &laddr);
    asock_op *aop = tu_op(), *sop = tu_op();
    asock_socket *server;
    char buf[4];
    int calls = tu_rec(cop)->calls;
    ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&laddr), 0);
    ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
    server = tu_accept_done(listener, aop);
    ck_assert(tu_wait_calls(cop, calls + 1));
    ck_assert_asock(asock_op_status(cop), 0);
    tu_set_buffer(sop, (void *)"agin", 4);
    ck_assert_asock(tu_send_whole(client, sop), 0);
    tu_recv_exact(server, buf, 4);
    ck_assert_int_eq(memcmp(buf, "agin", 4), 0);
    ck_assert_asock(tu_close(server, 0), 0);
    ck_assert_asock(tu_close(listener, 0), 0);
  }
  ck_assert_asock(tu_close(client, 0), 0);
  tu_close_uv(&bound);
}
END_TEST

#ifdef __linux__
/* A connect the kernel refuses inside connect() itself (TCP to a multicast
 * address: ENETUNREACH, no packet leaves the host) still completes through
 * the callback, never inside the call that started it. */
START_TEST(connect_fails_at_once) {
  struct sockaddr_storage addr;
  asock_socket *client;
  asock_op *cop = tu_op();
  tu_addr("224.0.0.1", 9, &addr);
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&addr), 0);
  ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
  ck_assert_int_eq(tu_rec(cop)->calls, 0);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, ASOCK_ENETUNREACH);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(cop)->calls, 1);
  ck_assert_asock(tu_close(client, 0), 0);
}
END_TEST
#endif

START_TEST(connect_host_localhost) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *client;
  asock_op *cop = tu_op(), *aop = tu_op();
  char host[16];
  char buf[5];
  /* The name is copied: the caller's buffer is overwritten at once. */
  strcpy(host, "localhost");
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(tu_connect_host(client, cop, host, tu_port(&addr)),
                  ASOCK_PENDING);
  memset(host, 'x', sizeof(host) - 1);
  ck_assert_int_eq(asock_op_last_kind(cop), ASOCK_OP_CONNECT);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  /* "localhost" may also name ::1, where nothing listens: the address left
   * in the op is the one that accepted. */
  ck_assert(tu_same_addr(asock_op_remote(cop), (struct sockaddr *)&addr));
  /* Every address tried is kept with its result: the last connected, any
   * before it failed. */
  {
    size_t n = asock_op_connect_attempts(cop), i;
    struct sockaddr_storage tried;
    int err = 1;
    ck_assert_uint_ge(n, 1);
    for (i = 0; i < n; i++) {
      ck_assert_asock(asock_op_connect_attempt(cop, i, &tried, &err), 0);
      if (i + 1 < n)
        ck_assert_int_lt(err, 0);
    }
    ck_assert_asock(err, 0);
    ck_assert(
        tu_same_addr((struct sockaddr *)&tried, (struct sockaddr *)&addr));
    ck_assert_asock(asock_op_connect_attempt(cop, n, &tried, &err),
                    ASOCK_EINVAL);
  }
  tu_accept_done(listener, aop);
  tu_send_all(client, "hello", 5);
  tu_recv_exact(asock_op_accepted(aop), buf, 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(cop)->calls, 1);
}
END_TEST

START_TEST(connect_host_numeric) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *client, *fresh;
  asock_op *cop = tu_op(), *aop = tu_op(), *idle = tu_op();
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(tu_connect_host(client, cop, "127.0.0.1", tu_port(&addr)),
                  ASOCK_PENDING);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  ck_assert(tu_same_addr(asock_op_remote(cop), (struct sockaddr *)&addr));
  tu_accept_done(listener, aop);
  /* NULL anywhere is refused. */
  ck_assert_asock(asock_tcp_create(&fresh, tu_loop), 0);
  ck_assert_asock(tu_connect_host(NULL, idle, "127.0.0.1", 1), ASOCK_EINVAL);
  ck_assert_asock(tu_connect_host(fresh, NULL, "127.0.0.1", 1), ASOCK_EINVAL);
  ck_assert_asock(tu_connect_host(fresh, idle, NULL, 1), ASOCK_EINVAL);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(idle)->calls, 0);
  ck_assert_asock(tu_close(fresh, 0), 0);
}
END_TEST

static int is_eai(int err) {
  return err == ASOCK_EAI_ADDRFAMILY || err == ASOCK_EAI_AGAIN ||
         err == ASOCK_EAI_FAIL || err == ASOCK_EAI_FAMILY ||
         err == ASOCK_EAI_MEMORY || err == ASOCK_EAI_NODATA ||
         err == ASOCK_EAI_NONAME || err == ASOCK_EAI_SERVICE;
}

static int first_call(const void *op) {
  return tu_rec((const asock_op *)op)->calls >= 1;
}

/* A connect by name to an address that refuses keeps that address and its
 * error; the socket then connects again, by name or not, and the op keeps
 * only what its last connect tried. */
START_TEST(connect_host_keeps_each_error) {
  struct sockaddr_storage refused, laddr, tried;
  uv_tcp_t bound;
  asock_socket *client, *listener;
  asock_op *cop = tu_op(), *aop = tu_op();
  int err = 0;
  tu_addr("127.0.0.1", tu_bind_unlistened("127.0.0.1", &bound), &refused);
  listener = tu_listen("127.0.0.1", &laddr);
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_uint_eq(asock_op_connect_attempts(cop), 0);
  ck_assert_asock(asock_op_connect_attempt(NULL, 0, NULL, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_op_connect_attempt(cop, 0, NULL, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_connect_host(client, cop, "127.0.0.1", tu_port(&refused)),
                  ASOCK_PENDING);
  ck_assert_asock(asock_op_connect_attempt(cop, 0, NULL, NULL), ASOCK_EBUSY);
  ck_assert_uint_eq(asock_op_connect_attempts(cop), 0);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, ASOCK_ECONNREFUSED);
  ck_assert_uint_eq(asock_op_connect_attempts(cop), 1);
  ck_assert_asock(asock_op_connect_attempt(cop, 0, &tried, &err), 0);
  ck_assert_asock(err, ASOCK_ECONNREFUSED);
  ck_assert(
      tu_same_addr((struct sockaddr *)&tried, (struct sockaddr *)&refused));
  /* Again on the same socket, to the listener. */
  ck_assert_asock(tu_connect_host(client, cop, "127.0.0.1", tu_port(&laddr)),
                  ASOCK_PENDING);
  ck_assert(tu_wait_calls(cop, 2));
  ck_assert_asock(tu_rec(cop)->status, 0);
  ck_assert_uint_eq(asock_op_connect_attempts(cop), 1);
  ck_assert_asock(asock_op_connect_attempt(cop, 0, &tried, &err), 0);
  ck_assert_asock(err, 0);
  ck_assert(tu_same_addr((struct sockaddr *)&tried, (struct sockaddr *)&laddr));
  tu_accept_done(listener, aop);
  /* Another operation leaves nothing to read. */
  tu_set_buffer(cop, (void *)"x", 1);
  ck_assert_asock(tu_send_whole(client, cop), 0);
  ck_assert_uint_eq(asock_op_connect_attempts(cop), 0);
  ck_assert_asock(tu_close(client, 0), 0);
  tu_close_uv(&bound);
}
END_TEST

START_TEST(connect_host_that_does_not_resolve) {
  asock_socket *client;
  asock_op *cop = tu_op();
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(tu_connect_host(client, cop, "nonexistent.invalid", 80),
                  ASOCK_PENDING);
  /* Without DNS the resolver may wait for its own timeouts. */
  ck_assert(tu_run_until(first_call, cop, 30000));
  ck_assert_msg(is_eai(tu_rec(cop)->status), "status %s, want ASOCK_EAI_*",
                asock_err_name(tu_rec(cop)->status));
  ck_assert_uint_eq(asock_op_connect_attempts(cop), 0);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(cop)->calls, 1);
  ck_assert_asock(tu_close(client, 0), 0);
}
END_TEST

Suite *asock_test_suite_tcp_connect(void) {
  Suite *s = suite_create("tcp_connect");
  TCase *tc = tcase_create("tcp_connect");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, connect_and_exchange_ipv4);
  tcase_add_test(tc, connect_refused);
#ifdef __linux__
  tcase_add_test(tc, connect_fails_at_once);
#endif
  tcase_add_test(tc, connect_host_localhost);
  tcase_add_test(tc, connect_host_keeps_each_error);
  tcase_add_test(tc, connect_host_numeric);
  tcase_add_test(tc, connect_host_that_does_not_resolve);
  suite_add_tcase(s, tc);
  return s;
}
