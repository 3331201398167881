/* TCP over loopback, the basics: loops (owned and embedded), listen,
 * accept, IPv6, socket options, and the errors for bad input. Connecting
 * is test-tcp_connect.c's. */
#include <stdio.h>
#include <string.h>

#include "tcp-util.h"

/* ---- loops --------------------------------------------------------------- */

START_TEST(loop_accessors_and_bad_input) {
  asock_loop *loop = (asock_loop *)&loop;
  ck_assert_asock(asock_loop_create(NULL, tu_pool, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_loop_create(&loop, NULL, NULL), ASOCK_EINVAL);
  ck_assert_ptr_null(loop);
  ck_assert_asock(asock_loop_run(NULL, UV_RUN_NOWAIT), ASOCK_EINVAL);
  ck_assert_asock(asock_loop_stop(NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_loop_close(NULL), ASOCK_EINVAL);
  ck_assert_ptr_null(asock_loop_uv(NULL));
  ck_assert_ptr_null(asock_loop_pool(NULL));
  ck_assert_ptr_nonnull(asock_loop_uv(tu_loop));
  ck_assert_ptr_eq(asock_loop_pool(tu_loop), tu_pool);
  /* A second loop may share the pool, and closes on its own. */
  ck_assert_asock(asock_loop_create(&loop, tu_pool, NULL), 0);
  ck_assert_ptr_nonnull(loop);
  ck_assert_ptr_ne(asock_loop_uv(loop), asock_loop_uv(tu_loop));
  ck_assert_ptr_eq(asock_loop_pool(loop), tu_pool);
  ck_assert_int_ge(asock_loop_run(loop, UV_RUN_NOWAIT), 0);
  ck_assert_asock(asock_loop_close(loop), 0);
}
END_TEST

static void on_timer(uv_timer_t *timer) { (void)timer; }
static void on_closed(uv_handle_t *handle) { *(int *)handle->data = 1; }

/* Runs an embedded libuv loop with uv_run() itself until *counter >= n. */
static int uv_wait(uv_loop_t *uvl, uv_timer_t *timer, const int *counter,
                   int n) {
  uint64_t deadline = tu_now_ms() + tu_ms(10000);
  ck_assert_int_eq(uv_timer_start(timer, on_timer, 5, 5), 0);
  while (*counter < n && tu_now_ms() < deadline)
    uv_run(uvl, UV_RUN_ONCE);
  uv_timer_stop(timer);
  return *counter >= n;
}

START_TEST(embedded_loop_runs_under_uv_run) {
  static const char msg[] = "embedded hello";
  static char got[sizeof(msg)];
  uv_loop_t uvl;
  uv_timer_t timer;
  asock_loop *loop;
  asock_socket *listener, *client, *server;
  struct sockaddr_storage addr;
  int len = (int)sizeof(addr);
  asock_op *cop = tu_op(), *aop = tu_op(), *sop = tu_op(), *rop = tu_op();
  asock_op *dop = tu_op();
  size_t n = 0;
  int closed = 0;
  int sent;
  int r;

  ck_assert_int_eq(uv_loop_init(&uvl), 0);
  ck_assert_int_eq(uv_timer_init(&uvl, &timer), 0);
  timer.data = &closed;
  ck_assert_asock(asock_loop_create(&loop, tu_pool, &uvl), 0);
  ck_assert_ptr_eq(asock_loop_uv(loop), &uvl);

  tu_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_tcp_create(&listener, loop), 0);
  ck_assert_ptr_eq(asock_socket_loop(listener), loop);
  ck_assert_asock(asock_tcp_listen(listener, (struct sockaddr *)&addr, 16, 0),
                  0);
  ck_assert_asock(
      asock_socket_local_address(listener, (struct sockaddr *)&addr, &len), 0);
  ck_assert_asock(asock_tcp_create(&client, loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&addr), 0);
  ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
  r = tu_accept(listener, aop);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  ck_assert(uv_wait(&uvl, &timer, &tu_rec(cop)->calls, 1));
  if (r == ASOCK_PENDING)
    ck_assert(uv_wait(&uvl, &timer, &tu_rec(aop)->calls, 1));
  ck_assert_asock(asock_op_status(cop), 0);
  ck_assert_asock(asock_op_status(aop), 0);
  server = asock_op_accepted(aop);
  ck_assert_ptr_nonnull(server);
  ck_assert_ptr_eq(asock_socket_loop(server), loop);
  tu_echo_start(server);

  tu_set_buffer(sop, (void *)msg, sizeof(msg));
  sent = tu_send(client, sop);
  ck_assert_msg(sent == 0 || sent == ASOCK_PENDING, "%s", asock_err_name(sent));
  while (n < sizeof(msg)) {
    ck_assert_asock(
        asock_op_set_buffer(rop, got, sizeof(got), n, sizeof(got) - n), 0);
    r = tu_receive(client, rop);
    if (r == ASOCK_PENDING)
      ck_assert(
          uv_wait(&uvl, &timer, &tu_rec(rop)->calls, tu_rec(rop)->calls + 1));
    else
      ck_assert_asock(r, 0);
    ck_assert_asock(asock_op_status(rop), 0);
    n += asock_op_bytes(rop);
  }
  ck_assert_uint_eq(n, sizeof(msg));
  ck_assert_int_eq(memcmp(got, msg, sizeof(msg)), 0);

  ck_assert_asock(tu_disconnect(client, dop), ASOCK_PENDING);
  ck_assert(uv_wait(&uvl, &timer, &tu_rec(dop)->calls, 1));
  ck_assert_asock(asock_op_status(dop), 0);
  ck_assert(uv_wait(&uvl, &timer, &tu_echo.eof, 1));
  ck_assert_int_eq(tu_echo.errors, 0);
  ck_assert_uint_eq(tu_echo.bytes, sizeof(msg));
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);

  uv_close((uv_handle_t *)&timer, on_closed);
  uv_run(&uvl, UV_RUN_NOWAIT);
  ck_assert(closed);
  ck_assert_asock(asock_loop_close(loop), 0);
  /* asock left the embedded loop open, with none of its handles in it. */
  ck_assert_int_eq(uv_loop_close(&uvl), 0);
  ck_assert_int_eq(tu_rec(sop)->calls, sent == ASOCK_PENDING ? 1 : 0);
  ck_assert_asock(asock_op_status(sop), 0);
  ck_assert_uint_eq(asock_op_bytes(sop), sizeof(msg));
}
END_TEST

static int backstop_fired;
static int stop_result = 12345;

static void on_backstop(uv_timer_t *timer) {
  (void)timer;
  backstop_fired = 1;
  asock_loop_stop(tu_loop);
}

static void stop_in_callback(asock_op *op) {
  tu_note(op);
  stop_result = asock_loop_stop(tu_loop);
}

START_TEST(loop_stop_ends_run) {
  tu_pair p;
  uv_timer_t backstop;
  asock_op *rop = tu_op();
  int closed = 0;
  static char buf[8];
  tu_pair_open(&p, "127.0.0.1");
  tu_set_buffer(rop, buf, sizeof(buf));
  ck_assert_asock(asock_op_set_callback(rop, stop_in_callback), 0);
  ck_assert_asock(tu_receive(p.server, rop), ASOCK_PENDING);
  /* Not through the loop: the receive must complete in the run below. */
  tu_os_send(p.client, "stop", 4);
  ck_assert_int_eq(uv_timer_init(asock_loop_uv(tu_loop), &backstop), 0);
  backstop.data = &closed;
  ck_assert_int_eq(uv_timer_start(&backstop, on_backstop, tu_ms(5000), 0), 0);
  /* Without the stop this would run until the backstop fires. */
  asock_loop_run(tu_loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(backstop_fired, 0);
  ck_assert_int_eq(tu_rec(rop)->calls, 1);
  ck_assert_asock(stop_result, 0);
  ck_assert_asock(tu_rec(rop)->status, 0);
  ck_assert_uint_eq(tu_rec(rop)->bytes, 4);
  uv_close((uv_handle_t *)&backstop, on_closed);
  tu_run_for(10);
  ck_assert(closed);
}
END_TEST

static int close_result = 12345;

static void close_loop_in_callback(asock_op *op) {
  tu_note(op);
  close_result = asock_loop_close(tu_loop);
}

START_TEST(loop_close_inside_callback_is_busy) {
  tu_pair p;
  asock_op *rop = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_set_callback(rop, close_loop_in_callback), 0);
  ck_assert_asock(tu_receive(p.server, rop), ASOCK_PENDING);
  tu_send_all(p.client, "x", 1);
  ck_assert(tu_wait_calls(rop, 1));
  ck_assert_asock(close_result, ASOCK_EBUSY);
  /* The loop still works after the refusal. */
  tu_send_all(p.server, "y", 1);
  {
    char c = 0;
    tu_recv_exact(p.client, &c, 1);
    ck_assert_int_eq(c, 'y');
  }
  ck_assert_asock(asock_op_clear_buffer(rop), 0);
}
END_TEST

/* ---- listen and accept --------------------------------------------------- */

START_TEST(accepts_complete_in_posting_order) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *clients[3];
  asock_op *aops[3], *cops[3];
  struct sockaddr_storage local[3], remote;
  int i, j, len;

  for (i = 0; i < 3; i++) {
    aops[i] = tu_op();
    cops[i] = tu_op();
    ck_assert_asock(tu_accept(listener, aops[i]), ASOCK_PENDING);
    ck_assert_int_eq(asock_op_last_kind(aops[i]), ASOCK_OP_ACCEPT);
    ck_assert_ptr_eq(asock_op_socket(aops[i]), listener);
    if (i > 0)
      ck_assert_uint_gt(asock_op_seq(aops[i]), asock_op_seq(aops[i - 1]));
  }
  /* One connection: only the first accept completes. */
  ck_assert_asock(asock_tcp_create(&clients[0], tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cops[0], (struct sockaddr *)&addr), 0);
  ck_assert_asock(tu_connect(clients[0], cops[0]), ASOCK_PENDING);
  ck_assert(tu_wait_calls(aops[0], 1));
  ck_assert(tu_wait_calls(cops[0], 1));
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(aops[1])->calls, 0);
  ck_assert_int_eq(tu_rec(aops[2])->calls, 0);
  ck_assert_int_eq(asock_op_is_pending(aops[1]), 1);
  /* Two more at once: the next two accepts, in posting order. */
  for (i = 1; i < 3; i++) {
    ck_assert_asock(asock_tcp_create(&clients[i], tu_loop), 0);
    ck_assert_asock(asock_op_set_remote(cops[i], (struct sockaddr *)&addr), 0);
    ck_assert_asock(tu_connect(clients[i], cops[i]), ASOCK_PENDING);
  }
  ck_assert(tu_wait_calls(aops[2], 1));
  ck_assert(tu_wait_calls(cops[1], 1));
  ck_assert(tu_wait_calls(cops[2], 1));
  ck_assert_int_lt(tu_rec(aops[0])->order, tu_rec(aops[1])->order);
  ck_assert_int_lt(tu_rec(aops[1])->order, tu_rec(aops[2])->order);
  for (i = 0; i < 3; i++) {
    len = (int)sizeof(local[i]);
    ck_assert_int_eq(tu_rec(aops[i])->calls, 1);
    ck_assert_int_eq(tu_rec(cops[i])->calls, 1);
    ck_assert_asock(tu_rec(aops[i])->status, 0);
    ck_assert_asock(tu_rec(cops[i])->status, 0);
    ck_assert_int_eq(tu_rec(aops[i])->kind, ASOCK_OP_ACCEPT);
    ck_assert_ptr_nonnull(asock_op_accepted(aops[i]));
    ck_assert_asock(asock_socket_local_address(
                        clients[i], (struct sockaddr *)&local[i], &len),
                    0);
  }
  ck_assert_ptr_ne(asock_op_accepted(aops[0]), asock_op_accepted(aops[1]));
  ck_assert_ptr_ne(asock_op_accepted(aops[1]), asock_op_accepted(aops[2]));
  /* Each accept's remote address is one client's local address, the first
   * one's the first client's; the accepted socket agrees. */
  ck_assert(
      tu_same_addr(asock_op_remote(aops[0]), (struct sockaddr *)&local[0]));
  for (i = 1; i < 3; i++) {
    int found = 0;
    for (j = 1; j < 3; j++)
      found +=
          tu_same_addr(asock_op_remote(aops[i]), (struct sockaddr *)&local[j]);
    ck_assert_int_eq(found, 1);
    len = (int)sizeof(remote);
    ck_assert_asock(asock_socket_remote_address(asock_op_accepted(aops[i]),
                                                (struct sockaddr *)&remote,
                                                &len),
                    0);
    ck_assert(
        tu_same_addr(asock_op_remote(aops[i]), (struct sockaddr *)&remote));
  }
  tu_run_for(20);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq(tu_rec(aops[i])->calls, 1);
}
END_TEST

START_TEST(accept_of_waiting_connection_is_synchronous) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *client, *server;
  asock_op *cop = tu_op(), *aop = tu_op();
  char c = 0;
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (struct sockaddr *)&addr), 0);
  ck_assert_asock(tu_connect(client, cop), ASOCK_PENDING);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  tu_run_for(30);
  ck_assert_asock(tu_accept(listener, aop), 0);
  ck_assert_asock(asock_op_status(aop), 0);
  ck_assert_int_eq(asock_op_last_kind(aop), ASOCK_OP_ACCEPT);
  server = asock_op_accepted(aop);
  ck_assert_ptr_nonnull(server);
  ck_assert_ptr_nonnull(asock_op_remote(aop));
  tu_send_all(client, "c", 1);
  tu_recv_exact(server, &c, 1);
  ck_assert_int_eq(c, 'c');
  tu_send_all(server, "s", 1);
  tu_recv_exact(client, &c, 1);
  ck_assert_int_eq(c, 's');
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(aop)->calls, 0);
}
END_TEST

START_TEST(listen_errors) {
  struct sockaddr_storage addr, any;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *other = (asock_socket *)&other;
  tu_pair p;
  ck_assert_asock(asock_tcp_create(NULL, tu_loop), ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_create(&other, NULL), ASOCK_EINVAL);
  ck_assert_ptr_null(other);
  /* Listening twice on one socket. */
  ck_assert_asock(asock_tcp_listen(listener, (struct sockaddr *)&addr, 16, 0),
                  ASOCK_EKIND);
  /* A second socket on the same port. */
  ck_assert_asock(asock_tcp_create(&other, tu_loop), 0);
  ck_assert_asock(asock_tcp_listen(other, (struct sockaddr *)&addr, 16, 0),
                  ASOCK_EADDRINUSE);
  ck_assert_asock(tu_close(other, 0), 0);
  /* Bad arguments. */
  tu_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_tcp_create(&other, tu_loop), 0);
  ck_assert_asock(asock_tcp_listen(other, (struct sockaddr *)&any, 16, 0x80u),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_listen(other, NULL, 16, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_listen(NULL, (struct sockaddr *)&any, 16, 0),
                  ASOCK_EINVAL);
  /* The refusals left the socket usable. */
  ck_assert_asock(asock_tcp_listen(other, (struct sockaddr *)&any, 16,
                                   ASOCK_LISTEN_REUSEADDR),
                  0);
  ck_assert_asock(tu_close(other, 0), 0);
  /* A connected socket cannot listen. */
  tu_pair_connect(&p, listener, &addr);
  ck_assert_asock(asock_tcp_listen(p.client, (struct sockaddr *)&any, 16, 0),
                  ASOCK_EKIND);
  ck_assert_asock(asock_tcp_listen(p.server, (struct sockaddr *)&any, 16, 0),
                  ASOCK_EKIND);
}
END_TEST

START_TEST(ipv6_loopback) {
  tu_pair p;
  struct sockaddr_storage addr, local;
  asock_socket *v6only;
  char buf[6];
  int len = (int)sizeof(local);
  if (!tu_ipv6_available()) {
    fprintf(stderr, "tcp_basic: ipv6_loopback skipped: cannot bind ::1\n");
    return;
  }
  tu_pair_open(&p, "::1");
  ck_assert_int_eq(p.addr.ss_family, AF_INET6);
  ck_assert_asock(
      asock_socket_local_address(p.client, (struct sockaddr *)&local, &len), 0);
  ck_assert_int_eq(local.ss_family, AF_INET6);
  tu_send_all(p.client, "six->6", 6);
  tu_recv_exact(p.server, buf, 6);
  ck_assert_int_eq(memcmp(buf, "six->6", 6), 0);
  tu_send_all(p.server, "6->six", 6);
  tu_recv_exact(p.client, buf, 6);
  ck_assert_int_eq(memcmp(buf, "6->six", 6), 0);
  /* IPV6ONLY is accepted on an IPv6 address. */
  tu_addr("::1", 0, &addr);
  ck_assert_asock(asock_tcp_create(&v6only, tu_loop), 0);
  ck_assert_asock(asock_tcp_listen(v6only, (struct sockaddr *)&addr, 16,
                                   ASOCK_LISTEN_IPV6ONLY),
                  0);
}
END_TEST

/* ---- options ------------------------------------------------------------- */

static void unused_watermark(asock_socket *sock, int above) {
  (void)sock;
  (void)above;
}

START_TEST(socket_options) {
  tu_pair p;
  int value;
  int marker;
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_socket_set_nodelay(p.client, 1), 0);
  ck_assert_asock(asock_socket_set_nodelay(p.client, 0), 0);
  ck_assert_asock(asock_socket_set_keepalive(p.client, 1, 30), 0);
  ck_assert_asock(asock_socket_set_keepalive(p.client, 0, 0), 0);
  value = 65536;
  ck_assert_asock(asock_socket_send_buffer_size(p.client, &value), 0);
  value = 0;
  ck_assert_asock(asock_socket_send_buffer_size(p.client, &value), 0);
#ifdef __linux__
  ck_assert_int_eq(value, 2 * 65536);
#else
  ck_assert_int_ge(value, 65536);
#endif
  value = 32768;
  ck_assert_asock(asock_socket_recv_buffer_size(p.server, &value), 0);
  value = 0;
  ck_assert_asock(asock_socket_recv_buffer_size(p.server, &value), 0);
#ifdef __linux__
  ck_assert_int_eq(value, 2 * 32768);
#else
  ck_assert_int_ge(value, 32768);
#endif
  ck_assert_asock(asock_socket_set_nodelay(NULL, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_socket_set_keepalive(NULL, 1, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_socket_send_buffer_size(NULL, &value), ASOCK_EINVAL);
  ck_assert_asock(asock_socket_recv_buffer_size(p.client, NULL), ASOCK_EINVAL);
  /* Send limits: low <= high <= cap (0 = none). */
  ck_assert_asock(asock_socket_set_send_limits(p.client, 10, 5, 0),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_socket_set_send_limits(p.client, 5, 10, 8),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_socket_set_send_limits(p.client, 5, 10, 10), 0);
  ck_assert_asock(asock_socket_set_send_limits(p.client, 5, 10, 0), 0);
  ck_assert_asock(asock_socket_set_send_limits(NULL, 5, 10, 0), ASOCK_EINVAL);
  /* Each below 4 GiB, where size_t holds more. */
  ck_assert_asock(
      asock_socket_set_send_limits(p.client, 5, (size_t)UINT32_MAX, 0), 0);
#if SIZE_MAX > UINT32_MAX
  ck_assert_asock(
      asock_socket_set_send_limits(p.client, 5, (size_t)UINT32_MAX + 1, 0),
      ASOCK_EINVAL);
  ck_assert_asock(
      asock_socket_set_send_limits(p.client, 5, 10, (size_t)UINT32_MAX + 1),
      ASOCK_EINVAL);
#endif
  ck_assert_asock(asock_socket_set_send_limits(p.client, 5, 10, 0), 0);
  ck_assert_asock(asock_socket_set_watermark_cb(p.client, unused_watermark), 0);
  ck_assert_asock(asock_socket_set_watermark_cb(NULL, unused_watermark),
                  ASOCK_EINVAL);
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  /* User data and loop. */
  ck_assert_ptr_null(asock_socket_user_data(p.client));
  ck_assert_asock(asock_socket_set_user_data(p.client, &marker), 0);
  ck_assert_ptr_eq(asock_socket_user_data(p.client), &marker);
  ck_assert_asock(asock_socket_set_user_data(NULL, &marker), ASOCK_EINVAL);
  ck_assert_ptr_null(asock_socket_user_data(NULL));
  ck_assert_ptr_eq(asock_socket_loop(p.server), tu_loop);
  ck_assert_ptr_null(asock_socket_loop(NULL));
}
END_TEST

/* ---- bad input ----------------------------------------------------------- */

START_TEST(bad_input_is_refused_without_callback) {
  tu_pair p;
  asock_socket *fresh;
  asock_op *op = tu_op(), *listed = tu_op(), *empty = tu_op();
  asock_op *noremote = tu_op();
  asock_op *foreign;
  asock_pool *other;
  static char mem[16];
  asock_buf bufs[1];
  struct sockaddr_storage addr;
  tu_pair_open(&p, "127.0.0.1");
  tu_set_buffer(op, mem, sizeof(mem));
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&p.addr), 0);

  /* NULL. */
  ck_assert_asock(tu_send(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_send(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_receive(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_receive(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_accept(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_accept(p.listener, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_connect(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_connect(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_disconnect(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_disconnect(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_cancel(NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_close(NULL, 0), ASOCK_EINVAL);
  ck_assert_asock(tu_close(p.client, 0x80u), ASOCK_EINVAL);

  /* The wrong kind of socket, or of op. */
  ck_assert_asock(tu_receive(p.listener, op), ASOCK_EKIND);
  ck_assert_asock(tu_send(p.listener, op), ASOCK_EKIND);
  ck_assert_asock(tu_disconnect(p.listener, op), ASOCK_EKIND);
  ck_assert_asock(tu_accept(p.client, op), ASOCK_EKIND);
  ck_assert_asock(tu_accept(p.server, op), ASOCK_EKIND);
  ck_assert_asock(tu_connect(p.listener, op), ASOCK_EKIND);
  ck_assert_asock(tu_connect(p.client, op), ASOCK_EKIND);
  bufs[0].base = mem;
  bufs[0].len = sizeof(mem);
  ck_assert_asock(asock_op_set_buffer_list(listed, bufs, 1), 0);
  ck_assert_asock(tu_receive(p.server, listed), ASOCK_EKIND);

  /* An empty window, a connect with nowhere to go. */
  ck_assert_asock(asock_op_set_buffer(empty, mem, sizeof(mem), 16, 0), 0);
  ck_assert_asock(tu_receive(p.server, empty), ASOCK_EINVAL);
  ck_assert_asock(asock_tcp_create(&fresh, tu_loop), 0);
  ck_assert_asock(tu_connect(fresh, noremote), ASOCK_EINVAL);
  /* A window outside its memory is caught when it is set. */
  ck_assert_asock(asock_op_set_buffer(empty, mem, sizeof(mem), 8, 9),
                  ASOCK_EBOUNDS);

  /* Not connected yet. */
  ck_assert_asock(tu_send(fresh, op), ASOCK_ENOTCONN);
  ck_assert_asock(tu_receive(fresh, op), ASOCK_ENOTCONN);
  ck_assert_asock(tu_disconnect(fresh, op), ASOCK_ENOTCONN);
  ck_assert_asock(tu_accept(fresh, op), ASOCK_EKIND);
  {
    struct sockaddr_storage ss;
    int len = (int)sizeof(ss);
    ck_assert_int_lt(
        asock_socket_remote_address(fresh, (struct sockaddr *)&ss, &len), 0);
  }

  /* An op of another pool. */
  ck_assert_asock(asock_pool_create(&other, NULL), 0);
  ck_assert_asock(asock_op_acquire(other, &foreign), 0);
  ck_assert_asock(asock_op_set_buffer(foreign, mem, sizeof(mem), 0, 16), 0);
  tu_addr("127.0.0.1", tu_port(&p.addr), &addr);
  ck_assert_asock(asock_op_set_remote(foreign, (struct sockaddr *)&addr), 0);
  ck_assert_asock(tu_send(p.client, foreign), ASOCK_EFOREIGN);
  ck_assert_asock(tu_receive(p.client, foreign), ASOCK_EFOREIGN);
  ck_assert_asock(tu_accept(p.listener, foreign), ASOCK_EFOREIGN);
  ck_assert_asock(tu_connect(fresh, foreign), ASOCK_EFOREIGN);
  ck_assert_asock(tu_disconnect(p.client, foreign), ASOCK_EFOREIGN);
  ck_assert_int_eq(asock_op_is_pending(foreign), 0);
  ck_assert_asock(asock_op_release(other, foreign), 0);
  ck_assert_asock(asock_pool_destroy(other), 0);

  /* Nothing started, so nothing completes; the ops are idle. */
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_int_eq(asock_op_is_pending(listed), 0);
  ck_assert_int_eq(asock_op_is_pending(empty), 0);
  ck_assert_int_eq(asock_op_is_pending(noremote), 0);
  ck_assert_asock(tu_cancel(op), ASOCK_ENOTPENDING);
  tu_run_for(30);
  ck_assert_int_eq(tu_completions, 0);
  /* The refusals left the sockets working. */
  tu_send_all(p.client, "ok", 2);
  tu_recv_exact(p.server, mem, 2);
  ck_assert_int_eq(memcmp(mem, "ok", 2), 0);
  ck_assert_asock(tu_close(fresh, 0), 0);
}
END_TEST

Suite *asock_test_suite_tcp_basic(void) {
  Suite *s = suite_create("tcp_basic");
  TCase *tc = tcase_create("tcp_basic");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, loop_accessors_and_bad_input);
  tcase_add_test(tc, embedded_loop_runs_under_uv_run);
  tcase_add_test(tc, loop_stop_ends_run);
  tcase_add_test(tc, loop_close_inside_callback_is_busy);
  tcase_add_test(tc, accepts_complete_in_posting_order);
  tcase_add_test(tc, accept_of_waiting_connection_is_synchronous);
  tcase_add_test(tc, listen_errors);
  tcase_add_test(tc, ipv6_loopback);
  tcase_add_test(tc, socket_options);
  tcase_add_test(tc, bad_input_is_refused_without_callback);
  suite_add_tcase(s, tc);
  return s;
}
