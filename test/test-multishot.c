/* Multishot receives: deliveries in order, each with its own number and
 * the "more" mark; exactly one final completion for each way of ending;
 * nothing inside the starting call; cancel and close from inside a
 * delivery; UDP receive-from and receive-message-from. Slice ownership is
 * test-slices.c's. */
#include <stdlib.h>
#include <string.h>

#include "multishot-util.h"
#include "udp-util.h"

/* ---- TCP ----------------------------------------------------------------- */

START_TEST(deliveries_come_in_order_with_rising_numbers) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  int i;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert_uint_eq(asock_op_seq(op), 0); /* no number until a delivery */
  for (i = 0; i < 5; i++) {
    ms_send_and_wait(p.client, &r, 100 + (size_t)i, 1,
                     (uint64_t)(500 * i + (i * (i - 1)) / 2), i + 1);
    ck_assert_uint_eq(r.sizes[i], 100 + (size_t)i);
    ck_assert_uint_eq(r.seqs[i], (uint64_t)i + 1);
    /* Between deliveries: pending, holding no slice. */
    ck_assert_int_eq(asock_op_is_pending(op), 1);
    ck_assert_uint_eq(ms_stats().slices_in_use, 0);
    ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  }
  ck_assert_uint_eq(tu_mismatch(r.data, 100, 1, 0), 100);
  ck_assert_uint_eq(tu_mismatch(r.data + 100, 101, 1, 500), 101);
  ck_assert_uint_eq(tu_mismatch(r.data + 406, 104, 1, 2006), 104);
  /* The warm slice of the loop's cache came back every time (on the
   * io_uring backend it changed places with the kernel's each time). */
  ck_assert_uint_eq(ms_stats().slices_high_water, 1 + tu_lent(tu_loop));
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_EOF);
  ck_assert_uint_eq(r.final_seq, 6);
  ck_assert_int_eq(asock_op_more(op), 0);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  tu_run_for(20);
  ck_assert_int_eq(r.deliveries, 5);
  ck_assert_int_eq(r.finals, 1);
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* Data already in the socket at the start is delivered later, from the
 * loop, never inside the call; and so is an end already known. */
START_TEST(nothing_runs_inside_the_start) {
  static ms_rec r, e;
  tu_pair p;
  asock_op *op, *one;
  unsigned char out[300];
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  tu_fill(out, sizeof(out), 2, 0);
  tu_send_all(p.client, out, sizeof(out));
  tu_run_for(10);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert_int_eq(r.deliveries, 0);
  ck_assert(tu_wait_count(&r.deliveries, 1));
  ms_assert_stream(&r, sizeof(out), 2);
  /* After the end of the stream, a one-shot receive completes at once and
   * a multishot one ends from the loop, with the next number. */
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_EOF);
  one = tu_op();
  ck_assert_asock(tu_receive(p.server, one), 0);
  ck_assert_asock(asock_op_status(one), ASOCK_EOF);
  ck_assert_uint_eq(asock_op_seq(one), 3);
  op = ms_op(&e);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert_int_eq(e.finals, 0);
  ck_assert(tu_wait_count(&e.finals, 1));
  ck_assert_asock(e.final_status, ASOCK_EOF);
  ck_assert_uint_eq(e.final_seq, 4);
  ck_assert_int_eq(e.deliveries, 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* Every way of ending gives one final completion, after the deliveries
 * and numbered after them. */
START_TEST(each_end_completes_once) {
  static ms_rec r[4];
  tu_pair p[4];
  asock_op *op[4];
  int i;
  tu_pair_open(&p[0], "127.0.0.1");
  for (i = 1; i < 4; i++)
    tu_pair_connect(&p[i], p[0].listener, &p[0].addr);
  for (i = 0; i < 4; i++) {
    op[i] = ms_op(&r[i]);
    ck_assert_asock(tu_receive(p[i].server, op[i]), ASOCK_PENDING);
    ms_send_and_wait(p[i].client, &r[i], 10, (uint32_t)i, 0, 1);
  }
  /* 0: cancelled; 1: its socket closed; 2: reset by the peer; 3: idle. */
  ck_assert_asock(tu_cancel(op[0]), 0);
  ck_assert_asock(tu_close(p[1].server, 0), 0);
  ck_assert_asock(tu_close(p[2].client, ASOCK_CLOSE_ABORT), 0);
  for (i = 0; i < 3; i++)
    ck_assert(tu_wait_count(&r[i].finals, 1));
  ck_assert_asock(r[0].final_status, ASOCK_ECANCELED);
  ck_assert_asock(r[1].final_status, ASOCK_ECANCELED);
  ck_assert_asock(r[2].final_status, ASOCK_ECONNRESET);
  for (i = 0; i < 3; i++) {
    ck_assert_int_eq(r[i].deliveries, 1);
    ck_assert_uint_eq(r[i].final_seq, 2);
  }
  /* The op can start again after its end. */
  r[0].restarts = 1;
  ck_assert_asock(tu_receive(p[0].server, op[0]), ASOCK_PENDING);
  ms_send_and_wait(p[0].client, &r[0], 7, 9, 0, 2);
  ck_assert_uint_eq(r[0].seqs[1], 3);
  ck_assert_asock(tu_cancel(op[0]), 0);
  ck_assert(tu_wait_count(&r[0].finals, 2));
  ck_assert_uint_eq(r[0].final_seq, 4);
  ck_assert_int_eq(r[3].finals, 0);
  ck_assert_asock(tu_cancel(op[3]), 0);
  ck_assert(tu_wait_count(&r[3].finals, 1));
  tu_run_for(20);
  for (i = 0; i < 4; i++)
    ck_assert_int_le(r[i].finals, i == 0 ? 2 : 1);
  for (i = 0; i < 4; i++) {
    if (i != 1)
      ck_assert_asock(tu_close(p[i].server, 0), 0);
    if (i != 2)
      ck_assert_asock(tu_close(p[i].client, 0), 0);
  }
}
END_TEST

/* The timeout of a multishot receive counts from the last arrival: with
 * nothing coming it ends the receive with ASOCK_ETIMEDOUT. */
START_TEST(idle_timeout_ends_it) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  unsigned char out[10];
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  /* The bytes are there before the start, so that the first loop turn
   * delivers them whatever the machine's load. */
  tu_fill(out, sizeof(out), 3, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert_asock(asock_op_set_timeout(op, tu_ms(300)), 0);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ETIMEDOUT);
  ck_assert_int_eq(r.deliveries, 1);
  ms_assert_stream(&r, sizeof(out), 3);
  ck_assert_uint_eq(r.final_seq, 2);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* Cancelling or closing from inside a delivery: the callback keeps the
 * delivery's results, no delivery follows, and the final completion comes
 * once, after the callback. Bytes that arrive later stay unread. */
START_TEST(cancel_and_close_inside_a_delivery) {
  static ms_rec r[2];
  tu_pair p[2];
  asock_op *op[2];
  asock_op *next;
  unsigned char buf[64];
  int i;
  tu_pair_open(&p[0], "127.0.0.1");
  tu_pair_connect(&p[1], p[0].listener, &p[0].addr);
  for (i = 0; i < 2; i++) {
    op[i] = ms_op(&r[i]);
    r[i].detach = i == 1;
    if (i == 0)
      r[i].cancel_at = 2;
    else
      r[i].close_at = 2;
    ck_assert_asock(tu_receive(p[i].server, op[i]), ASOCK_PENDING);
    ms_send_and_wait(p[i].client, &r[i], 20, (uint32_t)i, 0, 1);
    ms_send_and_wait(p[i].client, &r[i], 30, (uint32_t)i, 20, 2);
  }
  for (i = 0; i < 2; i++) {
    ck_assert(tu_wait_count(&r[i].finals, 1));
    ck_assert_asock(r[i].final_status, ASOCK_ECANCELED);
    ck_assert_uint_eq(r[i].final_seq, 3);
    ms_assert_stream(&r[i], 50, (uint32_t)i);
  }
  /* The cancelled one's socket goes on: the next receive gets the bytes
   * sent after the cancel, numbered after the final completion. */
  tu_fill(buf, 40, 0, 50);
  tu_send_all(p[0].client, buf, 40);
  tu_run_for(20);
  ck_assert_int_eq(r[0].deliveries, 2);
  next = tu_op();
  tu_set_buffer(next, buf, sizeof(buf));
  memset(buf, 0, sizeof(buf));
  {
    int rr = tu_receive(p[0].server, next);
    ck_assert_msg(rr == 0 || rr == ASOCK_PENDING, "%s", asock_err_name(rr));
    ck_assert(tu_wait_idle(next));
  }
  ck_assert_asock(asock_op_status(next), 0);
  ck_assert_uint_eq(asock_op_bytes(next), 40);
  ck_assert_uint_eq(tu_mismatch(buf, 40, 0, 50), 40);
  ck_assert_uint_eq(asock_op_seq(next), 4);
  /* The closed one's slices, taken in its deliveries, are still whole. */
  ck_assert_int_eq(r[1].nslices, 2);
  ck_assert_uint_eq(tu_mismatch(r[1].slices[0], 20, 1, 0), 20);
  ck_assert_uint_eq(tu_mismatch(r[1].slices[1], 30, 1, 20), 30);
  ck_assert_uint_eq(ms_stats().slices_in_use, 2);
  for (i = 0; i < 2; i++)
    ck_assert_asock(asock_pool_release(tu_pool, r[1].slices[i]), 0);
  ck_assert_uint_eq(ms_stats().slices_in_use, 0);
  ck_assert_asock(tu_close(p[0].server, 0), 0);
  ck_assert_asock(tu_close(p[0].client, 0), 0);
  ck_assert_asock(tu_close(p[1].client, 0), 0);
}
END_TEST

/* The final completion may release the op. */
START_TEST(final_completion_may_release_the_op) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_op_acquire(tu_pool, &op), 0);
  memset(&r, 0, sizeof(r));
  r.release_op = 1;
  ck_assert_asock(asock_op_set_callback(op, ms_cb), 0);
  ck_assert_asock(asock_op_set_user_data(op, &r), 0);
  ck_assert_asock(asock_op_set_multishot(op, 1), 0);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 33, 4, 0, 1);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_EOF);
  ck_assert_uint_eq(ms_stats().ops_in_use, 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
}
END_TEST

/* While a multishot receive is pending no other receive starts on its
 * socket, and a multishot op starts nothing but receives. */
START_TEST(misuse_is_refused) {
  static ms_rec r;
  static char buf[8];
  tu_pair p;
  asock_op *op, *other;
  struct sockaddr_storage to;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  other = tu_op();
  ck_assert_asock(asock_op_set_multishot(NULL, 1), ASOCK_EINVAL);
  ck_assert_int_eq(asock_op_multishot(NULL), 0);
  ck_assert_int_eq(asock_op_more(NULL), 0);
  ck_assert_int_eq(asock_op_more(op), 0);
  /* Nothing but receives. */
  tu_set_buffer(op, buf, sizeof(buf));
  ck_assert_asock(tu_send(p.client, op), ASOCK_EKIND);
  ck_assert_asock(tu_disconnect(p.client, op), ASOCK_EKIND);
  ck_assert_asock(tu_accept(p.listener, op), ASOCK_EKIND);
  tu_addr("127.0.0.1", 9, &to);
  ck_assert_asock(asock_op_set_remote(op, (struct sockaddr *)&to), 0);
  {
    asock_socket *fresh;
    ck_assert_asock(asock_tcp_create(&fresh, tu_loop), 0);
    ck_assert_asock(tu_connect(fresh, op), ASOCK_EKIND);
    ck_assert_asock(tu_close(fresh, 0), 0);
  }
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  /* Pending: nothing changes it, and no receive queues behind it. */
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_EBUSY);
  ck_assert_asock(asock_op_set_multishot(op, 0), ASOCK_EBUSY);
  ck_assert_asock(tu_receive(p.server, other), ASOCK_EBUSY);
  ck_assert_int_eq(asock_op_is_pending(other), 0);
  /* The other direction is free. */
  tu_set_buffer(other, buf, sizeof(buf));
  ck_assert_asock(tu_send_whole(p.server, other), 0);
  ck_assert_asock(tu_cancel(op), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  /* Ended, it gives the socket back to one-shot receives. */
  ck_assert_asock(asock_op_set_multishot(op, 0), 0);
  ck_assert_asock(tu_receive(p.server, other), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(other), 0);
  ck_assert(tu_wait_idle(other));
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* A multishot receive may queue behind one-shot receives: it is delivered
 * once they have completed, numbered after them. */
START_TEST(multishot_behind_one_shot_receives) {
  static ms_rec r;
  static unsigned char a[10], b[10];
  tu_pair p;
  asock_op *ra, *rb, *op;
  unsigned char out[45];
  tu_pair_open(&p, "127.0.0.1");
  ra = tu_op();
  rb = tu_op();
  tu_set_buffer(ra, a, sizeof(a));
  tu_set_buffer(rb, b, sizeof(b));
  ck_assert_asock(tu_receive(p.server, ra), ASOCK_PENDING);
  ck_assert_asock(tu_receive(p.server, rb), ASOCK_PENDING);
  op = ms_op(&r);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  tu_fill(out, sizeof(out), 5, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_calls(rb, 1));
  ck_assert(tu_wait_count(&r.deliveries, 1));
  ck_assert_uint_eq(asock_op_seq(ra), 1);
  ck_assert_uint_eq(asock_op_seq(rb), 2);
  ck_assert_uint_eq(tu_mismatch(a, 10, 5, 0), 10);
  ck_assert_uint_eq(tu_mismatch(b, 10, 5, 10), 10);
  ck_assert_uint_eq(r.seqs[0], 3);
  while (r.len < 25)
    ck_assert(tu_wait_count(&r.deliveries, r.deliveries + 1));
  ck_assert_uint_eq(r.len, 25);
  ck_assert_uint_eq(tu_mismatch(r.data, 25, 5, 20), 25);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* An op with its own buffer is delivered into its window each time. */
START_TEST(own_buffer_is_reused_for_each_delivery) {
  static ms_rec r;
  static unsigned char mem[32];
  tu_pair p;
  asock_op *op;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  ck_assert_asock(asock_op_set_buffer(op, mem, sizeof(mem), 4, 8), 0);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 20, 6, 0, 1);
  while (r.len < 20)
    ck_assert(tu_wait_count(&r.deliveries, r.deliveries + 1));
  ms_assert_stream(&r, 20, 6);
  ck_assert_int_ge(r.deliveries, 3); /* at most 8 bytes each */
  ck_assert_uint_eq(ms_stats().slices_in_use, 0);
  ck_assert_uint_eq(ms_stats().slices_high_water, tu_lent(tu_loop));
  ck_assert_asock(tu_cancel(op), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_USER);
  ck_assert_uint_eq(asock_op_offset(op), 4);
  ck_assert_uint_eq(asock_op_count(op), 8);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* ---- starts from another thread ----------------------------------------- */

typedef struct starter {
  asock_socket *sock;
  asock_op *op;
  int result;
} starter;

static void start_elsewhere(void *arg) {
  starter *s = arg;
  s->result = asock_receive(s->sock, s->op);
}

START_TEST(started_from_another_thread) {
  static ms_rec r;
  static starter s;
  tu_pair p;
  uv_thread_t thread;
  tu_pair_open(&p, "127.0.0.1");
  s.sock = p.server;
  s.op = ms_op(&r);
  ck_assert_int_eq(uv_thread_create(&thread, start_elsewhere, &s), 0);
  ck_assert_int_eq(uv_thread_join(&thread), 0);
  ck_assert_asock(s.result, ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 40, 12, 0, 1);
  ms_send_and_wait(p.client, &r, 40, 12, 40, 2);
  ms_assert_stream(&r, 80, 12);
  ck_assert_uint_eq(r.seqs[1], 2);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* ---- UDP ----------------------------------------------------------------- */

START_TEST(udp_delivers_every_datagram) {
  static ms_rec r;
  uu_pair u;
  asock_op *op, *tx;
  unsigned char out[100];
  int i;
  uu_pair_open(&u, "127.0.0.1");
  op = ms_op(&r);
  tx = tu_op();
  ck_assert_asock(tu_receive_from(u.b, op), ASOCK_PENDING);
  for (i = 0; i < 5; i++) {
    tu_fill(out, 20 + (size_t)i, 13, (uint64_t)(i * 20 + (i * (i - 1)) / 2));
    uu_send(u.a, tx, out, 20 + (size_t)i, &u.b_addr);
  }
  ck_assert(tu_wait_count(&r.deliveries, 5));
  for (i = 0; i < 5; i++) {
    ck_assert_uint_eq(r.sizes[i], 20 + (size_t)i);
    ck_assert_uint_eq(r.seqs[i], (uint64_t)i + 1);
  }
  ms_assert_stream(&r, 110, 13);
  ck_assert(tu_same_addr(asock_op_remote(op), (struct sockaddr *)&u.a_addr));
  ck_assert_uint_eq(ms_stats().slices_in_use, 0);
  ck_assert_asock(tu_receive_from(u.b, tx), ASOCK_EBUSY);
  ck_assert_asock(tu_cancel(op), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
  ck_assert_uint_eq(r.final_seq, 6);
  uu_pair_close(&u);
}
END_TEST

static int pktinfo_seen;

static void pktinfo_cb(asock_op *op) {
  struct sockaddr_storage to;
  unsigned int ifindex = 0;
  if (!asock_op_more(op))
    return;
  ck_assert_asock(asock_op_packet_info(op, &to, &ifindex), 0);
  ck_assert_int_eq(to.ss_family, AF_INET);
  ck_assert_uint_gt(ifindex, 0);
  pktinfo_seen++;
}

START_TEST(udp_message_from_gives_packet_information) {
  uu_pair u;
  asock_op *op = tu_op(), *tx = tu_op();
  pktinfo_seen = 0;
  uu_pair_open(&u, "127.0.0.1");
  ck_assert_asock(asock_op_set_callback(op, pktinfo_cb), 0);
  ck_assert_asock(asock_op_set_multishot(op, 1), 0);
  ck_assert_asock(tu_receive_message_from(u.b, op), ASOCK_PENDING);
  uu_send(u.a, tx, "one", 3, &u.b_addr);
  uu_send(u.a, tx, "two", 3, &u.b_addr);
  ck_assert(tu_wait_count(&pktinfo_seen, 2));
  ck_assert_asock(tu_cancel(op), 0);
  ck_assert(tu_wait_idle(op));
  uu_pair_close(&u);
}
END_TEST

/* Datagrams the socket read ahead for earlier receives are delivered to a
 * multishot receive started after them, though no readiness report will
 * name them (Linux reads up to 8 per call). */
START_TEST(udp_datagrams_read_ahead_are_delivered) {
  static ms_rec r;
  uu_pair u;
  asock_op *one, *op, *tx;
  unsigned char out[16];
  int i;
  uu_pair_open(&u, "127.0.0.1");
  one = tu_op();
  tx = tu_op();
  for (i = 0; i < 15; i++) {
    tu_fill(out, sizeof(out), 14, (uint64_t)i * 16);
    uu_send(u.a, tx, out, sizeof(out), &u.b_addr);
  }
  for (i = 0; i < 8; i++) {
    ck_assert(uu_receive_one(u.b, one));
    ck_assert_uint_eq(tu_mismatch(asock_op_data(one), 16, 14, (uint64_t)i * 16),
                      16);
  }
  ck_assert_asock(asock_op_clear_buffer(one), 0);
  op = ms_op(&r);
  ck_assert_asock(tu_receive_from(u.b, op), ASOCK_PENDING);
  ck_assert_int_eq(r.deliveries, 0);
  ck_assert(tu_wait_count(&r.deliveries, 7));
  ck_assert_uint_eq(tu_mismatch(r.data, 7 * 16, 14, 8 * 16), 7 * 16);
  ck_assert_uint_eq(r.seqs[0], 9);
  ck_assert_asock(tu_cancel(op), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_uint_eq(ms_stats().slices_in_use, 0);
  uu_pair_close(&u);
}
END_TEST

Suite *asock_test_suite_multishot(void) {
  Suite *s = suite_create("multishot");
  TCase *tc = tcase_create("multishot");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, deliveries_come_in_order_with_rising_numbers);
  tcase_add_test(tc, nothing_runs_inside_the_start);
  tcase_add_test(tc, each_end_completes_once);
  tcase_add_test(tc, idle_timeout_ends_it);
  tcase_add_test(tc, cancel_and_close_inside_a_delivery);
  tcase_add_test(tc, final_completion_may_release_the_op);
  tcase_add_test(tc, misuse_is_refused);
  tcase_add_test(tc, multishot_behind_one_shot_receives);
  tcase_add_test(tc, own_buffer_is_reused_for_each_delivery);
  tcase_add_test(tc, started_from_another_thread);
  tcase_add_test(tc, udp_delivers_every_datagram);
  tcase_add_test(tc, udp_message_from_gives_packet_information);
  tcase_add_test(tc, udp_datagrams_read_ahead_are_delivered);
  suite_add_tcase(s, tc);
  return s;
}
