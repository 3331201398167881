/* TCP over loopback, the contract of a start: the three-way return, no
 * callback inside the starting call, ASOCK_EBUSY, sequence numbers,
 * completion and wire order, synchronous first, gather sends and receives
 * that take a slice only when data arrives. */
#include <string.h>

#include "tcp-util.h"

static size_t slices_in_use(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  return st.slices_in_use;
}

START_TEST(three_way_return) {
  tu_pair p, q;
  asock_op *rop = tu_op(), *sop = tu_op(), *rop2 = tu_op(), *rop3 = tu_op();
  asock_op *bad = tu_op();
  static char rbuf[64], rbuf2[64], rbuf3[64];
  tu_pair_open(&p, "127.0.0.1");
  tu_pair_connect(&q, p.listener, &p.addr);

  /* ASOCK_PENDING: nothing to read yet. */
  tu_set_buffer(rop, rbuf, sizeof(rbuf));
  ck_assert_asock(tu_receive(p.server, rop), ASOCK_PENDING);
  ck_assert_int_eq(asock_op_last_kind(rop), ASOCK_OP_RECEIVE);
  ck_assert_ptr_eq(asock_op_socket(rop), p.server);
  ck_assert_int_eq(asock_op_completed_synchronously(rop), 0);

  /* 0: the kernel takes a small send whole; the results are in the op (on
   * io_uring once its callback ran: the ring's sends always pend). */
  tu_set_buffer(sop, (void *)"abc", 3);
  ck_assert_asock(tu_send_whole(p.client, sop), 0);
  ck_assert_asock(asock_op_status(sop), 0);
  ck_assert_uint_eq(asock_op_bytes(sop), 3);
  ck_assert_int_eq(asock_op_last_kind(sop), ASOCK_OP_SEND);
  ck_assert_ptr_eq(asock_op_socket(sop), p.client);

  ck_assert(tu_wait_calls(rop, 1));
  ck_assert_asock(tu_rec(rop)->status, 0);
  ck_assert_uint_eq(tu_rec(rop)->bytes, 3);
  ck_assert_int_eq(memcmp(rbuf, "abc", 3), 0);
  ck_assert_int_eq(tu_rec(rop)->kind, ASOCK_OP_RECEIVE);

  /* 0 for a receive: the bytes were there before it was posted, on a
   * socket that never had a receive... */
  tu_send_all(q.client, "defg", 4);
  tu_run_for(30);
  tu_set_buffer(rop2, rbuf2, sizeof(rbuf2));
  ck_assert_asock(tu_receive(q.server, rop2), 0);
  ck_assert_asock(asock_op_status(rop2), 0);
  ck_assert_uint_eq(asock_op_bytes(rop2), 4);
  ck_assert_int_eq(memcmp(rbuf2, "defg", 4), 0);
  /* ...and on one whose earlier receive has completed. */
  tu_send_all(p.client, "hij", 3);
  tu_run_for(30);
  tu_set_buffer(rop3, rbuf3, sizeof(rbuf3));
  ck_assert_asock(tu_receive(p.server, rop3), 0);
  ck_assert_uint_eq(asock_op_bytes(rop3), 3);
  ck_assert_int_eq(memcmp(rbuf3, "hij", 3), 0);

  /* Negative: not started, never completes. */
  ck_assert_asock(tu_receive(p.listener, bad), ASOCK_EKIND);
  ck_assert_int_eq(asock_op_is_pending(bad), 0);

  tu_run_for(50);
  ck_assert_int_eq(tu_rec(rop)->calls, 1);
  ck_assert_int_eq(tu_rec(sop)->calls, tu_sends_inline() ? 0 : 1);
  ck_assert_int_eq(tu_rec(rop2)->calls, 0);
  ck_assert_int_eq(tu_rec(rop3)->calls, 0);
  ck_assert_int_eq(tu_rec(bad)->calls, 0);
  ck_assert_int_eq(tu_completions, tu_sends_inline() ? 1 : 2);
}
END_TEST

/* A receive chain restarted from its own callback: synchronous completions
 * loop in the callback, and no callback runs inside a start. */
static unsigned char chain_buf[1000];
static size_t chain_total;
static int chain_depth, chain_max_depth, chain_sync;

static void chain_cb(asock_op *op) {
  int r = 0;
  tu_note(op);
  chain_depth++;
  if (chain_depth > chain_max_depth)
    chain_max_depth = chain_depth;
  while (r == 0) {
    ck_assert_asock(asock_op_status(op), 0);
    ck_assert_uint_eq(asock_op_bytes(op), 1);
    chain_total++;
    if (chain_total == sizeof(chain_buf))
      break;
    ck_assert_asock(
        asock_op_set_buffer(op, chain_buf, sizeof(chain_buf), chain_total, 1),
        0);
    r = tu_receive(asock_op_socket(op), op);
    ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
    if (r == 0)
      chain_sync++;
  }
  chain_depth--;
}

START_TEST(chained_restarts_do_not_recurse) {
  static unsigned char out[sizeof(chain_buf)];
  tu_pair p;
  asock_op *rop = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_set_callback(rop, chain_cb), 0);
  ck_assert_asock(asock_op_set_buffer(rop, chain_buf, sizeof(chain_buf), 0, 1),
                  0);
  ck_assert_asock(tu_receive(p.server, rop), ASOCK_PENDING);
  tu_fill(out, sizeof(out), 1, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_calls(rop, 1));
  ck_assert_uint_eq(chain_total, sizeof(chain_buf));
  ck_assert_int_eq(memcmp(chain_buf, out, sizeof(out)), 0);
  ck_assert_int_eq(chain_max_depth, 1);
  /* All 1000 bytes were there when the first completed: every restart
   * found data, and one byte per read never tells the loop it drained. */
  ck_assert_int_eq(chain_sync, (int)sizeof(chain_buf) - 1);
  ck_assert_int_eq(tu_rec(rop)->calls, 1);
}
END_TEST

START_TEST(pending_op_is_busy) {
  tu_pair p;
  asock_socket *fresh;
  asock_op *rop = tu_op(), *aop = tu_op();
  static char buf[8];
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_tcp_create(&fresh, tu_loop), 0);
  tu_set_buffer(rop, buf, sizeof(buf));
  ck_assert_asock(asock_op_set_remote(rop, (struct sockaddr *)&p.addr), 0);
  ck_assert_asock(tu_receive(p.server, rop), ASOCK_PENDING);
  ck_assert_asock(tu_accept(p.listener, aop), ASOCK_PENDING);

  ck_assert_asock(tu_receive(p.server, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_receive(p.client, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_send(p.client, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_accept(p.listener, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_connect(fresh, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_disconnect(p.client, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_accept(p.listener, aop), ASOCK_EBUSY);
  /* Busy is the answer whatever else is wrong with the start. */
  ck_assert_asock(tu_receive(NULL, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_receive(p.listener, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_send(p.listener, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_send(fresh, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_disconnect(p.listener, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_send_to(p.client, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_receive_from(p.client, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_receive_message_from(NULL, rop), ASOCK_EBUSY);
  ck_assert_asock(tu_accept(p.client, aop), ASOCK_EBUSY);
  ck_assert_asock(tu_connect(p.client, aop), ASOCK_EBUSY);
  ck_assert_asock(tu_connect_host(NULL, rop, NULL, 0), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_buffer(rop, buf, sizeof(buf), 0, 4),
                  ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_timeout(rop, 10), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_callback(rop, tu_note), ASOCK_EBUSY);
  ck_assert_asock(asock_op_release(tu_pool, rop), ASOCK_EBUSY);
  ck_assert_int_eq(asock_op_last_kind(rop), ASOCK_OP_RECEIVE);
  ck_assert_ptr_eq(asock_op_socket(rop), p.server);

  /* The refused restarts did not disturb the pending operations. */
  tu_send_all(p.client, "busy", 4);
  ck_assert(tu_wait_calls(rop, 1));
  ck_assert_asock(tu_rec(rop)->status, 0);
  ck_assert_uint_eq(tu_rec(rop)->bytes, 4);
  ck_assert_int_eq(memcmp(buf, "busy", 4), 0);
  ck_assert_asock(tu_cancel(aop), 0);
  ck_assert(tu_wait_calls(aop, 1));
  ck_assert_asock(tu_rec(aop)->status, ASOCK_ECANCELED);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(rop)->calls, 1);
  ck_assert_int_eq(tu_rec(aop)->calls, 1);
  ck_assert_asock(tu_close(fresh, 0), 0);
}
END_TEST

START_TEST(sequence_numbers_follow_posting_order) {
  tu_pair p;
  asock_op *r[4], *s[2], *m = tu_op();
  static char buf[4][4];
  int i;
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 4; i++) {
    r[i] = tu_op();
    ck_assert_uint_eq(asock_op_seq(r[i]), 0);
    tu_set_buffer(r[i], buf[i], sizeof(buf[i]));
  }
  /* Each counter of a socket starts at 1. */
  for (i = 0; i < 3; i++)
    ck_assert_asock(tu_receive(p.server, r[i]), ASOCK_PENDING);
  ck_assert_uint_eq(asock_op_seq(r[0]), 1);
  ck_assert_uint_eq(asock_op_seq(r[1]), 2);
  ck_assert_uint_eq(asock_op_seq(r[2]), 3);
  /* A send draws from the socket's send counter: the receives' numbers
   * have no gap for it. */
  tu_set_buffer(m, (void *)"m", 1);
  ck_assert_asock(tu_send_whole(p.server, m), 0);
  ck_assert_uint_eq(asock_op_seq(m), 1);
  ck_assert_asock(tu_receive(p.server, r[3]), ASOCK_PENDING);
  ck_assert_uint_eq(asock_op_seq(r[3]), 4);
  /* The client counts on its own; its connect took its first send
   * number. */
  for (i = 0; i < 2; i++) {
    s[i] = tu_op();
    tu_set_buffer(s[i], (void *)"0123456789abcdef", 16);
    ck_assert_asock(tu_send_whole(p.client, s[i]), 0);
  }
  ck_assert_uint_eq(asock_op_seq(s[0]), 2);
  ck_assert_uint_eq(asock_op_seq(s[1]), 3);
  /* Completion keeps the number given at posting. */
  for (i = 0; i < 4; i++) {
    uint64_t posted = asock_op_seq(r[i]);
    ck_assert(tu_wait_calls(r[i], 1));
    ck_assert_uint_eq(tu_rec(r[i])->seq, posted);
    ck_assert_uint_eq(asock_op_seq(r[i]), posted);
    ck_assert_asock(tu_rec(r[i])->status, 0);
    ck_assert_uint_eq(tu_rec(r[i])->bytes, 4);
  }
  ck_assert_int_eq(memcmp(buf, "0123456789abcdef", 16), 0);
}
END_TEST

START_TEST(receives_complete_in_posting_order) {
  static const char msg[] = "AAAAABBBBBCCCCCDDDDD";
  static char got[4][5];
  static unsigned char out[10240];
  char joined[sizeof(msg)];
  tu_pair p;
  asock_op *r[4], *b[3];
  size_t n = 0;
  int i;
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 4; i++) {
    r[i] = tu_op();
    tu_set_buffer(r[i], got[i], sizeof(got[i]));
    ck_assert_asock(tu_receive(p.server, r[i]), ASOCK_PENDING);
  }
  tu_send_all(p.client, msg, 20);
  for (i = 0; i < 4; i++)
    ck_assert(tu_wait_calls(r[i], 1));
  for (i = 0; i < 4; i++) {
    ck_assert_asock(tu_rec(r[i])->status, 0);
    if (i > 0)
      ck_assert_int_lt(tu_rec(r[i - 1])->order, tu_rec(r[i])->order);
    memcpy(joined + n, got[i], tu_rec(r[i])->bytes);
    n += tu_rec(r[i])->bytes;
  }
  ck_assert_uint_eq(n, 20);
  ck_assert_int_eq(memcmp(joined, msg, 20), 0);

  /* The same with buffer-less receives, each filling a slice. */
  for (i = 0; i < 3; i++) {
    b[i] = tu_op();
    ck_assert_asock(tu_receive(p.server, b[i]), ASOCK_PENDING);
  }
  tu_fill(out, sizeof(out), 2, 0);
  tu_send_all(p.client, out, sizeof(out));
  for (i = 0; i < 3; i++)
    ck_assert(tu_wait_calls(b[i], 1));
  n = 0;
  for (i = 0; i < 3; i++) {
    size_t bytes = tu_rec(b[i])->bytes;
    ck_assert_asock(tu_rec(b[i])->status, 0);
    if (i > 0)
      ck_assert_int_lt(tu_rec(b[i - 1])->order, tu_rec(b[i])->order);
    ck_assert_int_eq(asock_op_buffer_mode(b[i]), ASOCK_BUFFER_SLICE);
    ck_assert_uint_eq(asock_op_count(b[i]), bytes);
    ck_assert_uint_le(bytes, 4096);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(b[i]), bytes, 2, n), bytes);
    n += bytes;
  }
  ck_assert_uint_eq(n, sizeof(out));
  for (i = 0; i < 3; i++)
    ck_assert_asock(asock_op_clear_buffer(b[i]), 0);
}
END_TEST

/* Sends queued behind a blocked one stay behind it, on the wire and in
 * completion, whatever their shape. */
START_TEST(sends_reach_the_wire_in_posting_order) {
  static unsigned char s0[1 << 20], s1[1000], g0[1], g2[4095], s3[1];
  static unsigned char in[(1 << 20) + 1000 + 4096 + 1];
  asock_buf list[3];
  tu_pair p;
  asock_op *op[4];
  size_t total = sizeof(in);
  int i;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(s0, sizeof(s0), 3, 0);
  tu_fill(s1, sizeof(s1), 3, sizeof(s0));
  tu_fill(g0, sizeof(g0), 3, sizeof(s0) + 1000);
  tu_fill(g2, sizeof(g2), 3, sizeof(s0) + 1001);
  tu_fill(s3, sizeof(s3), 3, sizeof(s0) + 1000 + 4096);
  for (i = 0; i < 4; i++)
    op[i] = tu_op();
  tu_set_buffer(op[0], s0, sizeof(s0));
  tu_set_buffer(op[1], s1, sizeof(s1));
  list[0].base = g0;
  list[0].len = sizeof(g0);
  list[1].base = NULL;
  list[1].len = 0;
  list[2].base = g2;
  list[2].len = sizeof(g2);
  ck_assert_asock(asock_op_set_buffer_list(op[2], list, 3), 0);
  tu_set_buffer(op[3], s3, sizeof(s3));

  /* The first cannot go whole; the kernel took a part at once (on
   * io_uring all of it waits for the loop's submission). */
  ck_assert_asock(tu_send(p.client, op[0]), ASOCK_PENDING);
  ck_assert_uint_gt(asock_socket_send_queued(p.client), 0);
  if (tu_sends_inline())
    ck_assert_uint_lt(asock_socket_send_queued(p.client), sizeof(s0));
  else
    ck_assert_uint_eq(asock_socket_send_queued(p.client), sizeof(s0));
  /* The others queue behind it: no synchronous attempt jumps ahead. */
  for (i = 1; i < 4; i++) {
    ck_assert_asock(tu_send(p.client, op[i]), ASOCK_PENDING);
    ck_assert_uint_eq(asock_op_seq(op[i]), asock_op_seq(op[i - 1]) + 1);
  }
  tu_recv_exact(p.server, in, total);
  ck_assert_uint_eq(tu_mismatch(in, total, 3, 0), total);
  for (i = 0; i < 4; i++)
    ck_assert(tu_wait_calls(op[i], 1));
  ck_assert_uint_eq(tu_rec(op[0])->bytes, sizeof(s0));
  ck_assert_uint_eq(tu_rec(op[1])->bytes, sizeof(s1));
  ck_assert_uint_eq(tu_rec(op[2])->bytes, 4096);
  ck_assert_uint_eq(tu_rec(op[3])->bytes, 1);
  for (i = 0; i < 4; i++) {
    ck_assert_asock(tu_rec(op[i])->status, 0);
    ck_assert_int_eq(tu_rec(op[i])->kind, ASOCK_OP_SEND);
    if (i > 0)
      ck_assert_int_lt(tu_rec(op[i - 1])->order, tu_rec(op[i])->order);
  }
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
  tu_run_for(30);
  for (i = 0; i < 4; i++)
    ck_assert_int_eq(tu_rec(op[i])->calls, 1);
}
END_TEST

START_TEST(receive_never_overtakes_a_queued_one) {
  tu_pair p;
  asock_op *r1 = tu_op(), *r2 = tu_op(), *sop = tu_op();
  static char b1[4], b2[16];
  tu_pair_open(&p, "127.0.0.1");
  tu_set_buffer(r1, b1, sizeof(b1));
  tu_set_buffer(r2, b2, sizeof(b2));
  ck_assert_asock(tu_receive(p.server, r1), ASOCK_PENDING);
  tu_set_buffer(sop, (void *)"0123456789", 10);
  if (tu_sends_inline())
    ck_assert_asock(tu_send(p.client, sop), 0);
  else
    tu_os_send(p.client, "0123456789", 10); /* the ring's would run later */
  /* The loop has not run since r1 was posted, so r1 has not completed; the
   * bytes are there, but r2 may not take them first. */
  ck_assert_int_eq(tu_rec(r1)->calls, 0);
  ck_assert_asock(tu_receive(p.server, r2), ASOCK_PENDING);
  ck_assert(tu_wait_calls(r1, 1));
  ck_assert(tu_wait_calls(r2, 1));
  ck_assert_asock(tu_rec(r1)->status, 0);
  ck_assert_asock(tu_rec(r2)->status, 0);
  ck_assert_int_lt(tu_rec(r1)->order, tu_rec(r2)->order);
  ck_assert_uint_eq(tu_rec(r1)->bytes, 4);
  ck_assert_int_eq(memcmp(b1, "0123", 4), 0);
  ck_assert_uint_eq(tu_rec(r2)->bytes, 6);
  ck_assert_int_eq(memcmp(b2, "456789", 6), 0);
}
END_TEST

START_TEST(partial_send_goes_asynchronous) {
  static unsigned char big[4 << 20];
  static unsigned char in[4 << 20];
  tu_pair p;
  asock_op *op = tu_op();
  size_t queued;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(big, sizeof(big), 4, 0);
  tu_set_buffer(op, big, sizeof(big));
  ck_assert_asock(tu_send(p.client, op), ASOCK_PENDING);
  queued = asock_socket_send_queued(p.client);
  ck_assert_uint_gt(queued, 0);
  /* On io_uring the whole send is the ring's. */
  if (tu_sends_inline())
    ck_assert_uint_lt(queued, sizeof(big));
  else
    ck_assert_uint_eq(queued, sizeof(big));
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 4, 0), sizeof(in));
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(tu_rec(op)->status, 0);
  ck_assert_uint_eq(tu_rec(op)->bytes, sizeof(big));
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(op)->calls, 1);
}
END_TEST

START_TEST(gather_send) {
  static unsigned char pieces[ASOCK_MAX_BUFS * 3], in[ASOCK_MAX_BUFS * 3];
  static asock_buf many[ASOCK_MAX_BUFS];
  asock_buf list[3];
  tu_pair p;
  asock_op *op = tu_op();
  char buf[8];
  size_t i;
  int r;
  tu_pair_open(&p, "127.0.0.1");
  /* A list takes precedence over the op's buffer. */
  tu_set_buffer(op, (void *)"zzzz", 4);
  list[0].base = (void *)"ab";
  list[0].len = 2;
  list[1].base = NULL;
  list[1].len = 0;
  list[2].base = (void *)"cdefg";
  list[2].len = 5;
  ck_assert_asock(asock_op_set_buffer_list(op, list, 3), 0);
  ck_assert_asock(tu_send_whole(p.client, op), 0);
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 7);
  tu_recv_exact(p.server, buf, 7);
  ck_assert_int_eq(memcmp(buf, "abcdefg", 7), 0);
  /* The longest list there may be. */
  tu_fill(pieces, sizeof(pieces), 5, 0);
  for (i = 0; i < ASOCK_MAX_BUFS; i++) {
    many[i].base = pieces + 3 * i;
    many[i].len = 3;
  }
  ck_assert_asock(asock_op_set_buffer_list(op, many, ASOCK_MAX_BUFS), 0);
  r = tu_send(p.client, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 5, 0), sizeof(in));
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), sizeof(pieces));
  /* Without the list the buffer is used again. */
  ck_assert_asock(asock_op_set_buffer_list(op, NULL, 0), 0);
  ck_assert_asock(tu_send_whole(p.client, op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 4);
  tu_recv_exact(p.server, buf, 4);
  ck_assert_int_eq(memcmp(buf, "zzzz", 4), 0);
}
END_TEST

/* asock reads a list's entries when a send starts: a list of one pointed
 * at each message in turn sends each from where it is, and entries changed
 * into what the list would have been refused with refuse the send, which
 * then takes no number and leaves the socket sending. */
START_TEST(list_entries_are_read_by_each_send) {
  asock_buf one;
  asock_buf two[2];
  tu_pair p;
  asock_op *op = tu_op();
  char buf[10];
  uint64_t first;
  tu_pair_open(&p, "127.0.0.1");
  one.base = (void *)"abc";
  one.len = 3;
  ck_assert_asock(asock_op_set_buffer_list(op, &one, 1), 0);
  ck_assert_asock(tu_send_whole(p.client, op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 3);
  first = asock_op_seq(op);
  one.base = (void *)"defgh";
  one.len = 5;
  ck_assert_asock(tu_send_whole(p.client, op), 0);
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 5);
  ck_assert_uint_eq(asock_op_seq(op), first + 1);
  tu_recv_exact(p.server, buf, 8);
  ck_assert_int_eq(memcmp(buf, "abcdefgh", 8), 0);
  one.base = NULL;
  ck_assert_asock(tu_send(p.client, op), ASOCK_EINVAL);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  two[0].base = (void *)"x";
  two[0].len = 1;
  two[1].base = (void *)"y";
  two[1].len = 1;
  ck_assert_asock(asock_op_set_buffer_list(op, two, 2), 0);
  two[0].len = SIZE_MAX;
  ck_assert_asock(tu_send(p.client, op), ASOCK_EBOUNDS);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  two[0].len = 1;
  ck_assert_asock(tu_send_whole(p.client, op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 2);
  ck_assert_uint_eq(asock_op_seq(op), first + 2);
  tu_recv_exact(p.server, buf, 2);
  ck_assert_int_eq(memcmp(buf, "xy", 2), 0);
}
END_TEST

#define IDLE_PAIRS 8

START_TEST(bufferless_receive_takes_a_slice_only_on_data) {
  tu_pair p[IDLE_PAIRS];
  asock_op *op[IDLE_PAIRS], *own = tu_op();
  unsigned char out[IDLE_PAIRS + 10];
  int i;
  tu_pair_open(&p[0], "127.0.0.1");
  for (i = 1; i < IDLE_PAIRS; i++)
    tu_pair_connect(&p[i], p[0].listener, &p[0].addr);
  for (i = 0; i < IDLE_PAIRS; i++) {
    op[i] = tu_op();
    ck_assert_asock(tu_receive(p[i].server, op[i]), ASOCK_PENDING);
  }
  tu_run_for(30);
  /* Idle connections with receives pending hold nothing. */
  ck_assert_uint_eq(slices_in_use(), 0);
  for (i = 0; i < IDLE_PAIRS; i++)
    ck_assert_uint_eq(asock_socket_slices_held(p[i].server), 0);
  for (i = 0; i < IDLE_PAIRS; i++) {
    tu_fill(out, (size_t)i + 1, (uint32_t)i, 0);
    tu_send_all(p[i].client, out, (size_t)i + 1);
  }
  for (i = 0; i < IDLE_PAIRS; i++) {
    ck_assert(tu_wait_calls(op[i], 1));
    ck_assert_asock(tu_rec(op[i])->status, 0);
    ck_assert_uint_eq(tu_rec(op[i])->bytes, (size_t)i + 1);
    ck_assert_int_eq(asock_op_buffer_mode(op[i]), ASOCK_BUFFER_SLICE);
    ck_assert_uint_eq(asock_op_capacity(op[i]), 4096);
    ck_assert_uint_eq(asock_op_count(op[i]), (size_t)i + 1);
    ck_assert_uint_eq(
        tu_mismatch(asock_op_data(op[i]), (size_t)i + 1, (uint32_t)i, 0),
        (size_t)i + 1);
    ck_assert_uint_eq(asock_socket_slices_held(p[i].server), 1);
  }
  ck_assert_uint_eq(slices_in_use(), IDLE_PAIRS);
  /* Posted again, holding the slice the last one gave it: a receive that
   * waits gives it back at once. */
  for (i = 0; i < IDLE_PAIRS; i++)
    ck_assert_asock(tu_receive(p[i].server, op[i]), ASOCK_PENDING);
  ck_assert_uint_eq(slices_in_use(), 0);
  for (i = 0; i < IDLE_PAIRS; i++) {
    ck_assert_uint_eq(asock_socket_slices_held(p[i].server), 0);
    ck_assert_int_eq(asock_op_buffer_mode(op[i]), ASOCK_BUFFER_NONE);
  }
  for (i = 0; i < IDLE_PAIRS; i++) {
    tu_fill(out, 10, (uint32_t)i, 100);
    tu_send_all(p[i].client, out, 10);
  }
  for (i = 0; i < IDLE_PAIRS; i++) {
    ck_assert(tu_wait_calls(op[i], 2));
    ck_assert_uint_eq(tu_rec(op[i])->bytes, 10);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(op[i]), 10, (uint32_t)i, 100),
                      10);
    ck_assert_asock(asock_op_clear_buffer(op[i]), 0);
  }
  ck_assert_uint_eq(slices_in_use(), 0);
  /* A slice the op took for itself is its own buffer: it stays. */
  ck_assert_asock(asock_op_take_slice(own), 0);
  ck_assert_asock(tu_receive(p[0].server, own), ASOCK_PENDING);
  ck_assert_uint_eq(slices_in_use(), 1);
  tu_send_all(p[0].client, "own", 3);
  ck_assert(tu_wait_calls(own, 1));
  ck_assert_uint_eq(tu_rec(own)->bytes, 3);
  ck_assert_int_eq(memcmp(asock_op_data(own), "own", 3), 0);
  ck_assert_asock(asock_op_clear_buffer(own), 0);
  ck_assert_uint_eq(slices_in_use(), 0);
}
END_TEST

/* A framed protocol keeps an incomplete message at the start of the slice
 * a buffer-less receive gave it and receives the rest after it: the window
 * set in that slice is honoured, and the slice stays with the op. */
START_TEST(kept_prefix_receives_after_it) {
  tu_pair p;
  asock_op *op = tu_op();
  unsigned char out[64];
  unsigned char *slice;
  int r;
  tu_pair_open(&p, "127.0.0.1");
  tu_fill(out, 10, 21, 0);
  tu_send_all(p.client, out, 10);
  r = tu_receive(p.server, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  ck_assert(tu_wait_idle(op));
  ck_assert_uint_eq(asock_op_bytes(op), 10);
  slice = asock_op_buffer(op);
  ck_assert_ptr_eq(asock_op_data(op), slice);
  /* Keep the 10 bytes; read what follows after them. */
  ck_assert_asock(asock_op_set_range(op, 10, asock_op_capacity(op) - 10), 0);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  /* Waiting, it keeps the slice and its prefix. */
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_SLICE);
  tu_fill(out, 30, 21, 10);
  tu_send_all(p.client, out, 30);
  ck_assert(tu_wait_idle(op));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 30);
  ck_assert_ptr_eq(asock_op_buffer(op), slice);
  ck_assert_uint_eq(asock_op_offset(op), 10);
  ck_assert_uint_eq(tu_mismatch(slice, 40, 21, 0), 40);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
}
END_TEST

Suite *asock_test_suite_tcp_order(void) {
  Suite *s = suite_create("tcp_order");
  TCase *tc = tcase_create("tcp_order");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, three_way_return);
  tcase_add_test(tc, chained_restarts_do_not_recurse);
  tcase_add_test(tc, pending_op_is_busy);
  tcase_add_test(tc, sequence_numbers_follow_posting_order);
  tcase_add_test(tc, kept_prefix_receives_after_it);
  tcase_add_test(tc, receives_complete_in_posting_order);
  tcase_add_test(tc, sends_reach_the_wire_in_posting_order);
  tcase_add_test(tc, receive_never_overtakes_a_queued_one);
  tcase_add_test(tc, partial_send_goes_asynchronous);
  tcase_add_test(tc, gather_send);
  tcase_add_test(tc, list_entries_are_read_by_each_send);
  tcase_add_test(tc, bufferless_receive_takes_a_slice_only_on_data);
  suite_add_tcase(s, tc);
  return s;
}
