/* TCP over loopback, the end of a connection: close (graceful and
 * abortive), cancel, disconnect, half-close in both directions, a peer that
 * resets in the middle of a send, and closing the loop with work pending.
 * Every pending op completes exactly once through all of it. */
#include <string.h>

#include "tcp-util.h"

static int all_called(const void *arg) {
  asock_op *const *ops = (asock_op *const *)arg;
  for (; *ops != NULL; ops++)
    if (tu_rec(*ops)->calls == 0)
      return 0;
  return 1;
}

/* Runs until every op of the NULL-terminated list has completed. */
static void wait_all(asock_op **ops) {
  ck_assert_msg(tu_run_until(all_called, ops, 10000), "not every op completed");
}

static void assert_each_once(asock_op **ops, int status) {
  for (; *ops != NULL; ops++) {
    ck_assert_int_eq(tu_rec(*ops)->calls, 1);
    ck_assert_asock(tu_rec(*ops)->status, status);
    ck_assert_int_eq(asock_op_is_pending(*ops), 0);
  }
}

START_TEST(close_cancels_every_pending_op) {
  static unsigned char big[1 << 20], mid[1000], g[2][100];
  static char rb[3][16];
  asock_buf list[2];
  struct sockaddr_storage laddr;
  asock_socket *listener = tu_listen("127.0.0.1", &laddr);
  asock_socket *connecting;
  tu_pair p, q;
  asock_op *ops[13];
  int n = 0, i;

  for (i = 0; i < 12; i++)
    ops[i] = tu_op();
  ops[12] = NULL;
  tu_pair_open(&p, "127.0.0.1");
  tu_pair_open(&q, "127.0.0.1");
  tu_shrink_buffers(q.client, q.server);

  /* Accepts on a listener. */
  for (i = 0; i < 3; i++)
    ck_assert_asock(tu_accept(listener, ops[n++]), ASOCK_PENDING);
  /* Receives of each buffer kind. */
  tu_set_buffer(ops[n], rb[0], sizeof(rb[0]));
  ck_assert_asock(tu_receive(p.server, ops[n++]), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.server, ops[n++]), ASOCK_PENDING);
  ck_assert_asock(asock_op_take_slice(ops[n]), 0);
  ck_assert_asock(tu_receive(p.server, ops[n++]), ASOCK_PENDING);
  /* Sends: one partly on the wire, two queued behind it, and a receive on
   * the same socket. */
  tu_set_buffer(ops[n], big, sizeof(big));
  ck_assert_asock(tu_send(q.client, ops[n++]), ASOCK_PENDING);
  tu_set_buffer(ops[n], mid, sizeof(mid));
  ck_assert_asock(tu_send(q.client, ops[n++]), ASOCK_PENDING);
  list[0].base = g[0];
  list[0].len = sizeof(g[0]);
  list[1].base = g[1];
  list[1].len = sizeof(g[1]);
  ck_assert_asock(asock_op_set_buffer_list(ops[n], list, 2), 0);
  ck_assert_asock(tu_send(q.client, ops[n++]), ASOCK_PENDING);
  tu_set_buffer(ops[n], rb[1], sizeof(rb[1]));
  ck_assert_asock(tu_receive(q.client, ops[n++]), ASOCK_PENDING);
  /* A connect in progress (the loop has not run since). */
  ck_assert_asock(asock_tcp_create(&connecting, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(ops[n], (struct sockaddr *)&laddr), 0);
  ck_assert_asock(tu_connect(connecting, ops[n++]), ASOCK_PENDING);
  /* One spare: a receive on the listener is refused, not pending. */
  ck_assert_asock(tu_receive(listener, ops[n]), ASOCK_EKIND);
  ops[n] = NULL;
  ck_assert_int_eq(n, 11);

  ck_assert_asock(tu_close(listener, 0), 0);
  ck_assert_asock(tu_close(listener, 0), ASOCK_ECLOSED);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(q.client, 0), 0);
  ck_assert_asock(tu_close(connecting, 0), 0);
  /* Callbacks come from the loop, after the calls. */
  ck_assert_int_eq(tu_completions, 0);
  wait_all(ops);
  tu_run_for(100);
  assert_each_once(ops, ASOCK_ECANCELED);
  ck_assert_int_eq(tu_completions, 11);
  /* The peer of the gracefully closed socket sees the end of the stream. */
  {
    size_t got;
    ck_assert_asock(tu_recv_to_end(p.client, 0, 0, 0, &got), ASOCK_EOF);
    ck_assert_uint_eq(got, 0);
  }
}
END_TEST

START_TEST(graceful_close_gives_peer_data_then_eof) {
  tu_pair p;
  asock_op *r = tu_op(), *r2 = tu_op(), *r3 = tu_op();
  static char buf[32];
  asock_pool_stats st;
  int rr;
  tu_pair_open(&p, "127.0.0.1");
  tu_set_buffer(r, buf, sizeof(buf));
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  tu_send_all(p.server, "last words", 10);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert(tu_wait_calls(r, 1));
  ck_assert_asock(tu_rec(r)->status, 0);
  ck_assert_uint_eq(tu_rec(r)->bytes, 10);
  ck_assert_int_eq(memcmp(buf, "last words", 10), 0);
  /* The end of the stream may or may not have been seen with the data. */
  rr = tu_receive(p.client, r);
  ck_assert_msg(rr == 0 || rr == ASOCK_PENDING, "%s", asock_err_name(rr));
  if (rr == ASOCK_PENDING)
    ck_assert(tu_wait_calls(r, 2));
  ck_assert_asock(asock_op_status(r), ASOCK_EOF);
  ck_assert_uint_eq(asock_op_bytes(r), 0);
  /* Every later receive ends the same way, at once: the end is there. */
  tu_set_buffer(r2, buf, sizeof(buf));
  ck_assert_asock(tu_receive(p.client, r2), 0);
  ck_assert_asock(asock_op_status(r2), ASOCK_EOF);
  ck_assert_uint_eq(asock_op_bytes(r2), 0);
  ck_assert_asock(tu_receive(p.client, r3), 0);
  ck_assert_asock(asock_op_status(r3), ASOCK_EOF);
  ck_assert_int_ne(asock_op_buffer_mode(r3), ASOCK_BUFFER_SLICE);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(r)->calls, rr == ASOCK_PENDING ? 2 : 1);
  ck_assert_int_eq(tu_rec(r2)->calls + tu_rec(r3)->calls, 0);
}
END_TEST

START_TEST(abortive_close_resets_peer) {
  tu_pair p;
  asock_op *r = tu_op(), *mine = tu_op();
  static char buf[16];
  tu_pair_open(&p, "127.0.0.1");
  tu_set_buffer(r, buf, sizeof(buf));
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.server, mine), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.server, ASOCK_CLOSE_ABORT), 0);
  ck_assert(tu_wait_calls(r, 1));
  ck_assert(tu_wait_calls(mine, 1));
  ck_assert_asock(tu_rec(r)->status, ASOCK_ECONNRESET);
  ck_assert_asock(tu_rec(mine)->status, ASOCK_ECANCELED);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(r)->calls, 1);
  ck_assert_int_eq(tu_rec(mine)->calls, 1);
}
END_TEST

static void close_in_callback(asock_op *op) {
  tu_note(op);
  ck_assert_asock(tu_close(asock_op_socket(op), 0), 0);
}

START_TEST(close_from_a_callback_cancels_the_rest_once) {
  tu_pair p;
  asock_op *r[4] = {NULL, NULL, NULL, NULL};
  static char buf[3][8];
  int i;
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 3; i++) {
    r[i] = tu_op();
    tu_set_buffer(r[i], buf[i], sizeof(buf[i]));
  }
  ck_assert_asock(asock_op_set_callback(r[0], close_in_callback), 0);
  for (i = 0; i < 3; i++)
    ck_assert_asock(tu_receive(p.server, r[i]), ASOCK_PENDING);
  tu_send_all(p.client, "x", 1);
  wait_all(r);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(r[0])->calls, 1);
  ck_assert_asock(tu_rec(r[0])->status, 0);
  ck_assert_uint_eq(tu_rec(r[0])->bytes, 1);
  assert_each_once(r + 1, ASOCK_ECANCELED);
  ck_assert_int_lt(tu_rec(r[0])->order, tu_rec(r[1])->order);
}
END_TEST

/* A completion on its way after its socket closed leaves its op pending:
 * a cancel of it still finds the socket (kept until the completion is
 * delivered), returns 0 and changes nothing. The close comes from a
 * callback (the handle closes in the same turn of the loop), and from
 * outside any with a write in flight (libuv reports the write as the
 * handle closes). */
START_TEST(cancel_between_the_close_and_the_completion) {
  static unsigned char big[3][1 << 20];
  static char buf[3][8];
  tu_pair p, q;
  asock_op *r[4] = {NULL, NULL, NULL, NULL};
  asock_op *s[4] = {NULL, NULL, NULL, NULL};
  int i;
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 3; i++) {
    r[i] = tu_op();
    tu_set_buffer(r[i], buf[i], sizeof(buf[i]));
  }
  ck_assert_asock(asock_op_set_callback(r[0], close_in_callback), 0);
  for (i = 0; i < 3; i++)
    ck_assert_asock(tu_receive(p.server, r[i]), ASOCK_PENDING);
  tu_send_all(p.client, "x", 1);
  ck_assert(tu_wait_calls(r[0], 1));
  for (i = 1; i < 3; i++)
    if (asock_op_is_pending(r[i]))
      ck_assert_asock(tu_cancel(r[i]), 0);
  wait_all(r + 1);
  assert_each_once(r + 1, ASOCK_ECANCELED);

  tu_pair_connect(&q, p.listener, &p.addr);
  tu_shrink_buffers(q.client, q.server);
  for (i = 0; i < 3; i++) {
    s[i] = tu_op();
    tu_set_buffer(s[i], big[i], sizeof(big[i]));
    ck_assert_asock(tu_send(q.client, s[i]), ASOCK_PENDING);
  }
  ck_assert_asock(tu_close(q.client, 0), 0);
  ck_assert(tu_wait_calls(s[0], 1));
  for (i = 1; i < 3; i++)
    if (asock_op_is_pending(s[i]))
      ck_assert_asock(tu_cancel(s[i]), 0);
  wait_all(s);
  assert_each_once(s, ASOCK_ECANCELED);
  ck_assert_asock(tu_close(q.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

START_TEST(cancel_receive_keeps_the_socket_usable) {
  tu_pair p;
  asock_op *r[3], *again = tu_op();
  static char buf[3][4], more[8];
  int i;
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 3; i++) {
    r[i] = tu_op();
    tu_set_buffer(r[i], buf[i], sizeof(buf[i]));
    ck_assert_asock(tu_receive(p.server, r[i]), ASOCK_PENDING);
  }
  /* Cancel the middle one: the others keep their places. */
  ck_assert_asock(tu_cancel(r[1]), 0);
  ck_assert_int_eq(tu_rec(r[1])->calls, 0);
  ck_assert(tu_wait_calls(r[1], 1));
  ck_assert_asock(tu_rec(r[1])->status, ASOCK_ECANCELED);
  ck_assert_uint_eq(tu_rec(r[1])->bytes, 0);
  ck_assert_asock(tu_cancel(r[1]), ASOCK_ENOTPENDING);
  tu_send_all(p.client, "abcdefgh", 8);
  ck_assert(tu_wait_calls(r[2], 1));
  ck_assert(tu_wait_calls(r[0], 1));
  ck_assert_asock(tu_rec(r[0])->status, 0);
  ck_assert_asock(tu_rec(r[2])->status, 0);
  ck_assert_uint_eq(tu_rec(r[0])->bytes, 4);
  ck_assert_uint_eq(tu_rec(r[2])->bytes, 4);
  ck_assert_int_eq(memcmp(buf[0], "abcd", 4), 0);
  ck_assert_int_eq(memcmp(buf[2], "efgh", 4), 0);
  ck_assert_int_lt(tu_rec(r[0])->order, tu_rec(r[2])->order);
  /* Cancel the only one: no byte is lost. */
  tu_set_buffer(r[0], buf[0], sizeof(buf[0]));
  ck_assert_asock(tu_receive(p.server, r[0]), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(r[0]), 0);
  ck_assert(tu_wait_calls(r[0], 2));
  ck_assert_asock(tu_rec(r[0])->status, ASOCK_ECANCELED);
  tu_send_all(p.client, "after", 5);
  tu_run_for(20);
  tu_set_buffer(again, more, sizeof(more));
  ck_assert_asock(tu_receive(p.server, again), 0);
  ck_assert_uint_eq(asock_op_bytes(again), 5);
  ck_assert_int_eq(memcmp(more, "after", 5), 0);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(r[0])->calls, 2);
  ck_assert_int_eq(tu_rec(r[1])->calls, 1);
  ck_assert_int_eq(tu_rec(r[2])->calls, 1);
}
END_TEST

START_TEST(cancel_then_close_completes_once) {
  tu_pair p;
  asock_op *a = tu_op(), *b = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(tu_receive(p.server, a), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.server, b), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(a), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  /* Still pending until its callback: cancelling again changes nothing. */
  ck_assert_asock(tu_cancel(b), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert(tu_wait_calls(b, 1));
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(a)->calls, 1);
  ck_assert_int_eq(tu_rec(b)->calls, 1);
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_rec(b)->status, ASOCK_ECANCELED);
}
END_TEST

START_TEST(cancel_accept) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_op *a = tu_op();
  tu_pair p;
  ck_assert_asock(tu_accept(listener, a), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(a), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_ptr_null(asock_op_accepted(a));
  /* The listener still accepts. */
  tu_pair_connect(&p, listener, &addr);
  tu_send_all(p.client, "k", 1);
  {
    char c;
    tu_recv_exact(p.server, &c, 1);
    ck_assert_int_eq(c, 'k');
  }
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(a)->calls, 1);
}
END_TEST

/* A send none of whose bytes reached the kernel is taken back whole; the
 * stream goes on without it. */
START_TEST(cancel_queued_send_takes_it_back) {
  static unsigned char big[1 << 20], other[1000], tail[10];
  static unsigned char in[(1 << 20) + 10];
  tu_pair p;
  asock_op *s1 = tu_op(), *s2 = tu_op(), *s3 = tu_op(), *d = tu_op();
  size_t got;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(big, sizeof(big), 8, 0);
  memset(other, 0xEE, sizeof(other));
  tu_fill(tail, sizeof(tail), 8, sizeof(big));
  tu_set_buffer(s1, big, sizeof(big));
  tu_set_buffer(s2, other, sizeof(other));
  tu_set_buffer(s3, tail, sizeof(tail));
  ck_assert_asock(tu_send(p.client, s1), ASOCK_PENDING);
  ck_assert_asock(tu_send(p.client, s2), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(s2), 0);
  ck_assert(tu_wait_calls(s2, 1));
  ck_assert_asock(tu_rec(s2)->status, ASOCK_ECANCELED);
  ck_assert_int_eq(tu_rec(s1)->calls, 0);
  ck_assert_asock(tu_send(p.client, s3), ASOCK_PENDING);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 8, 0), sizeof(in));
  ck_assert(tu_wait_calls(s3, 1));
  ck_assert_int_eq(tu_rec(s1)->calls, 1);
  ck_assert_asock(tu_rec(s1)->status, 0);
  ck_assert_uint_eq(tu_rec(s1)->bytes, sizeof(big));
  ck_assert_asock(tu_rec(s3)->status, 0);
  ck_assert_uint_eq(tu_rec(s3)->bytes, sizeof(tail));
  /* Nothing of s2 follows. */
  ck_assert_asock(tu_disconnect(p.client, d), ASOCK_PENDING);
  ck_assert_asock(tu_recv_to_end(p.server, 8, sizeof(in), 0, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, 0);
  ck_assert(tu_wait_calls(d, 1));
  ck_assert_asock(tu_rec(d)->status, 0);
  ck_assert_int_eq(tu_rec(s2)->calls, 1);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* A send partly on the wire cannot be taken back: cancelling it resets the
 * connection and ends every other op of the socket. */
START_TEST(cancel_partial_send_resets_the_connection) {
  static unsigned char big[1 << 20], small[100];
  static char rb[16];
  tu_pair p;
  asock_op *ops[4] = {NULL, NULL, NULL, NULL};
  size_t got;
  int i;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  for (i = 0; i < 3; i++)
    ops[i] = tu_op();
  tu_fill(big, sizeof(big), 10, 0);
  tu_fill(small, sizeof(small), 10, sizeof(big));
  tu_set_buffer(ops[0], big, sizeof(big));
  tu_set_buffer(ops[1], small, sizeof(small));
  tu_set_buffer(ops[2], rb, sizeof(rb));
  ck_assert_asock(tu_send(p.client, ops[0]), ASOCK_PENDING);
  /* Part of it went at once; on io_uring the whole send is in the ring's
   * write once the loop runs, and the cancel resets the connection too. */
  if (tu_sends_inline())
    ck_assert_uint_lt(asock_socket_send_queued(p.client), sizeof(big));
  else
    tu_run_for(20);
  ck_assert_asock(tu_send(p.client, ops[1]), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.client, ops[2]), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(ops[0]), 0);
  wait_all(ops);
  tu_run_for(50);
  assert_each_once(ops, ASOCK_ECANCELED);
  ck_assert_uint_lt(tu_rec(ops[0])->bytes, sizeof(big));
  /* The peer reads a correct prefix, then the reset. */
  ck_assert_asock(tu_recv_to_end(p.server, 10, 0, sizeof(big), &got),
                  ASOCK_ECONNRESET);
  ck_assert_uint_lt(got, sizeof(big));
  /* The reset socket is still the application's to release. */
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

START_TEST(disconnect_sends_what_is_queued_then_ends) {
  static unsigned char a[256 << 10], b[256 << 10];
  static char rb[16];
  tu_pair p;
  asock_op *s1 = tu_op(), *s2 = tu_op(), *r = tu_op(), *d = tu_op();
  asock_op *d2 = tu_op(), *late = tu_op();
  size_t got;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(a, sizeof(a), 6, 0);
  tu_fill(b, sizeof(b), 6, sizeof(a));
  tu_set_buffer(s1, a, sizeof(a));
  tu_set_buffer(s2, b, sizeof(b));
  tu_set_buffer(r, rb, sizeof(rb));
  ck_assert_asock(tu_send(p.client, s1), ASOCK_PENDING);
  ck_assert_asock(tu_send(p.client, s2), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.client, r), ASOCK_PENDING);
  ck_assert_asock(tu_disconnect(p.client, d), ASOCK_PENDING);
  ck_assert_int_eq(asock_op_last_kind(d), ASOCK_OP_DISCONNECT);
  ck_assert_asock(tu_disconnect(p.client, d2), ASOCK_ECLOSED);
  /* Every queued byte arrives before the end of the stream. */
  ck_assert_asock(tu_recv_to_end(p.server, 6, 0, sizeof(a) + sizeof(b), &got),
                  ASOCK_EOF);
  ck_assert_uint_eq(got, sizeof(a) + sizeof(b));
  ck_assert(tu_wait_calls(d, 1));
  ck_assert_asock(tu_rec(d)->status, 0);
  ck_assert_int_eq(tu_rec(d)->kind, ASOCK_OP_DISCONNECT);
  ck_assert_int_eq(tu_rec(s1)->calls, 1);
  ck_assert_int_eq(tu_rec(s2)->calls, 1);
  ck_assert_asock(tu_rec(s1)->status, 0);
  ck_assert_asock(tu_rec(s2)->status, 0);
  ck_assert_uint_eq(tu_rec(s2)->bytes, sizeof(b));
  ck_assert_int_lt(tu_rec(s1)->order, tu_rec(s2)->order);
  ck_assert_int_lt(tu_rec(s2)->order, tu_rec(d)->order);
  ck_assert_int_eq(tu_rec(r)->calls, 1);
  ck_assert_asock(tu_rec(r)->status, ASOCK_ECANCELED);
  /* The socket is closed now; only asock_socket_close() remains. */
  tu_set_buffer(late, rb, sizeof(rb));
  ck_assert_asock(tu_send(p.client, late), ASOCK_ECLOSED);
  ck_assert_asock(tu_receive(p.client, late), ASOCK_ECLOSED);
  ck_assert_asock(tu_disconnect(p.client, late), ASOCK_ECLOSED);
  ck_assert_asock(tu_close(p.client, 0), 0);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(d)->calls, 1);
  ck_assert_int_eq(tu_rec(d2)->calls + tu_rec(late)->calls, 0);
}
END_TEST

/* A plain libuv peer that shuts its sending side down and keeps reading. */
typedef struct raw_peer {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_shutdown_t shutdown;
  int connected, written, shut, eof, read_error, closed;
  size_t got;
  size_t mismatch;
} raw_peer;

static raw_peer peer;
static unsigned char peer_buf[65536];

static void peer_connected(uv_connect_t *req, int status) {
  (void)req;
  ck_assert_int_eq(status, 0);
  peer.connected = 1;
}

static void peer_wrote(uv_write_t *req, int status) {
  (void)req;
  ck_assert_int_eq(status, 0);
  peer.written = 1;
}

static void peer_shut(uv_shutdown_t *req, int status) {
  (void)req;
  ck_assert_int_eq(status, 0);
  peer.shut = 1;
}

static void peer_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  *buf = uv_buf_init((char *)peer_buf, sizeof(peer_buf));
}

static void peer_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)s;
  (void)buf;
  if (nread > 0) {
    if (tu_mismatch(peer_buf, (size_t)nread, 9, peer.got) != (size_t)nread)
      peer.mismatch++;
    peer.got += (size_t)nread;
  } else if (nread == UV_EOF) {
    peer.eof++;
  } else if (nread < 0) {
    peer.read_error = (int)nread;
  }
}

static int peer_got(const void *arg) {
  return ((const raw_peer *)arg)->got >= 65536;
}

static void peer_closed(uv_handle_t *h) {
  (void)h;
  peer.closed = 1;
}

START_TEST(peer_shuts_down_first) {
  static unsigned char reply[65536];
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen("127.0.0.1", &addr);
  asock_socket *server;
  asock_op *a = tu_op(), *r2 = tu_op(), *d = tu_op();
  char request[7];
  uv_buf_t wbuf;
  size_t got;
  int ra;

  memset(&peer, 0, sizeof(peer));
  ck_assert_int_eq(uv_tcp_init(asock_loop_uv(tu_loop), &peer.tcp), 0);
  ck_assert_int_eq(uv_tcp_connect(&peer.connect, &peer.tcp,
                                  (struct sockaddr *)&addr, peer_connected),
                   0);
  ra = tu_accept(listener, a);
  ck_assert_msg(ra == 0 || ra == ASOCK_PENDING, "%s", asock_err_name(ra));
  ck_assert(tu_wait_count(&peer.connected, 1));
  if (ra == ASOCK_PENDING)
    ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(asock_op_status(a), 0);
  server = asock_op_accepted(a);
  ck_assert_int_eq(
      uv_read_start((uv_stream_t *)&peer.tcp, peer_alloc, peer_read), 0);
  wbuf = uv_buf_init("request", 7);
  ck_assert_int_eq(
      uv_write(&peer.write, (uv_stream_t *)&peer.tcp, &wbuf, 1, peer_wrote), 0);
  ck_assert_int_eq(
      uv_shutdown(&peer.shutdown, (uv_stream_t *)&peer.tcp, peer_shut), 0);
  ck_assert(tu_wait_count(&peer.shut, 1));

  /* We read what came, then the end of the stream, again and again. */
  tu_recv_exact(server, request, sizeof(request));
  ck_assert_int_eq(memcmp(request, "request", 7), 0);
  ck_assert_asock(tu_recv_to_end(server, 0, 0, 0, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, 0);
  ck_assert_asock(tu_receive(server, r2), 0);
  ck_assert_asock(asock_op_status(r2), ASOCK_EOF);

  /* Our sending side still works until we disconnect. */
  tu_fill(reply, sizeof(reply), 9, 0);
  tu_send_all(server, reply, sizeof(reply));
  ck_assert(tu_run_until(peer_got, &peer, 10000));
  ck_assert_uint_eq(peer.got, sizeof(reply));
  ck_assert_uint_eq(peer.mismatch, 0);
  ck_assert_int_eq(peer.eof, 0);
  ck_assert_asock(tu_disconnect(server, d), ASOCK_PENDING);
  ck_assert(tu_wait_calls(d, 1));
  ck_assert_asock(tu_rec(d)->status, 0);
  ck_assert(tu_wait_count(&peer.eof, 1));
  ck_assert_uint_eq(peer.got, sizeof(reply));
  ck_assert_int_eq(peer.read_error, 0);
  ck_assert_asock(tu_close(server, 0), 0);
  uv_close((uv_handle_t *)&peer.tcp, peer_closed);
  ck_assert(tu_wait_count(&peer.closed, 1));
}
END_TEST

START_TEST(peer_reset_during_a_large_send) {
  static unsigned char big[8 << 20];
  static char rb[16];
  tu_pair p;
  asock_op *ops[3] = {NULL, NULL, NULL};
  int s, r;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  ops[0] = tu_op();
  ops[1] = tu_op();
  tu_fill(big, sizeof(big), 11, 0);
  tu_set_buffer(ops[0], big, sizeof(big));
  tu_set_buffer(ops[1], rb, sizeof(rb));
  ck_assert_asock(tu_send(p.client, ops[0]), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.client, ops[1]), ASOCK_PENDING);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(ops[0])->calls, 0);
  ck_assert_asock(tu_close(p.server, ASOCK_CLOSE_ABORT), 0);
  wait_all(ops);
  tu_run_for(100);
  ck_assert_int_eq(tu_rec(ops[0])->calls, 1);
  ck_assert_int_eq(tu_rec(ops[1])->calls, 1);
  s = tu_rec(ops[0])->status;
  r = tu_rec(ops[1])->status;
  ck_assert_msg(s == ASOCK_ECONNRESET || s == ASOCK_EPIPE ||
                    s == ASOCK_ECANCELED,
                "send ended with %s", asock_err_name(s));
  ck_assert_msg(r == ASOCK_ECONNRESET || r == ASOCK_EOF || r == ASOCK_ECANCELED,
                "receive ended with %s", asock_err_name(r));
  ck_assert_uint_lt(tu_rec(ops[0])->bytes, sizeof(big));
}
END_TEST

START_TEST(loop_close_completes_everything) {
  static unsigned char big[1 << 20];
  struct sockaddr_storage laddr;
  asock_socket *listener = tu_listen("127.0.0.1", &laddr);
  asock_socket *connecting;
  tu_pair p, q;
  asock_op *ops[9];
  int i;
  for (i = 0; i < 8; i++)
    ops[i] = tu_op();
  ops[8] = NULL;
  tu_pair_open(&p, "127.0.0.1");
  tu_pair_open(&q, "127.0.0.1");
  tu_shrink_buffers(q.client, q.server);
  ck_assert_asock(tu_accept(listener, ops[0]), ASOCK_PENDING);
  ck_assert_asock(tu_accept(listener, ops[1]), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.client, ops[2]), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.server, ops[3]), ASOCK_PENDING);
  tu_set_buffer(ops[4], big, sizeof(big));
  ck_assert_asock(tu_send(q.client, ops[4]), ASOCK_PENDING);
  tu_set_buffer(ops[5], big, 1000);
  ck_assert_asock(tu_send(q.client, ops[5]), ASOCK_PENDING);
  ck_assert_asock(tu_receive(q.client, ops[6]), ASOCK_PENDING);
  ck_assert_asock(asock_tcp_create(&connecting, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(ops[7], (struct sockaddr *)&laddr), 0);
  ck_assert_asock(tu_connect(connecting, ops[7]), ASOCK_PENDING);
  ck_assert_int_eq(tu_completions, 0);
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_ptr_null(tu_loop);
  for (i = 0; i < 8; i++) {
    ck_assert_int_eq(tu_rec(ops[i])->calls, 1);
    ck_assert_int_eq(asock_op_is_pending(ops[i]), 0);
  }
  /* The connect may have been accepted (by ops[0]) before the close. */
  for (i = 2; i < 7; i++)
    ck_assert_asock(tu_rec(ops[i])->status, ASOCK_ECANCELED);
  if (tu_rec(ops[7])->status == 0) {
    ck_assert_asock(tu_rec(ops[0])->status, 0);
  } else {
    ck_assert_asock(tu_rec(ops[7])->status, ASOCK_ECANCELED);
    ck_assert_asock(tu_rec(ops[0])->status, ASOCK_ECANCELED);
  }
  ck_assert_asock(tu_rec(ops[1])->status, ASOCK_ECANCELED);
}
END_TEST

/* A socket asock closed by itself (here after a completed disconnect) is
 * the application's until asock_socket_close(); if the loop is closed
 * first, the loop must free it, as nothing can close it once its loop is
 * gone. The teardown checks that every asock allocation was freed. */
START_TEST(loop_close_frees_sockets_asock_closed_itself) {
  tu_pair p;
  asock_op *d = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(tu_disconnect(p.client, d), ASOCK_PENDING);
  ck_assert(tu_wait_calls(d, 1));
  ck_assert_asock(tu_rec(d)->status, 0);
  ck_assert_asock(tu_close_loop(), 0);
}
END_TEST

Suite *asock_test_suite_tcp_close(void) {
  Suite *s = suite_create("tcp_close");
  TCase *tc = tcase_create("tcp_close");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, close_cancels_every_pending_op);
  tcase_add_test(tc, graceful_close_gives_peer_data_then_eof);
  tcase_add_test(tc, abortive_close_resets_peer);
  tcase_add_test(tc, close_from_a_callback_cancels_the_rest_once);
  tcase_add_test(tc, cancel_between_the_close_and_the_completion);
  tcase_add_test(tc, cancel_receive_keeps_the_socket_usable);
  tcase_add_test(tc, cancel_then_close_completes_once);
  tcase_add_test(tc, cancel_accept);
  tcase_add_test(tc, cancel_queued_send_takes_it_back);
  tcase_add_test(tc, cancel_partial_send_resets_the_connection);
  tcase_add_test(tc, disconnect_sends_what_is_queued_then_ends);
  tcase_add_test(tc, peer_shuts_down_first);
  tcase_add_test(tc, peer_reset_during_a_large_send);
  tcase_add_test(tc, loop_close_completes_everything);
  tcase_add_test(tc, loop_close_frees_sockets_asock_closed_itself);
  suite_add_tcase(s, tc);
  return s;
}
