/* UDP on the io_uring backend (src/uring/udp-ring.c): a multishot
 * receive's datagrams come through the ring's provided buffers with their
 * senders and packet information, in order, cut where a buffer ends; the
 * ring's buffers run out and come back with no datagram lost; closing gives
 * back what the ring held; an error the kernel reports ends the receive; a
 * kernel without multishot receives of messages has the ring poll instead.
 * Where io_uring is not built or not allowed the tests have nothing to
 * check. */
#include <string.h>

#include "internal.h"
#include "tcp-util.h"
#include "test.h"
#include "udp-util.h"

#ifdef ASOCK_HAVE_URING
#include <net/if.h>
#include <netinet/in.h>

#define MAX_DG 64

/* What a multishot receive's callbacks saw. */
typedef struct dg_rec {
  int deliveries;
  int finals;
  int final_status;
  int close_at;  /* closes the socket inside this delivery (1-based) */
  int cancel_at; /* cancels the receive inside this delivery (1-based) */
  size_t sizes[MAX_DG];
  unsigned int flags[MAX_DG];
  size_t offsets[MAX_DG]; /* asock_op_offset(): where in its slice it lay */
  int from_ok[MAX_DG];    /* the sender was `from` */
  struct sockaddr_storage local[MAX_DG];
  unsigned int ifindex[MAX_DG];
  int intact[MAX_DG]; /* its bytes were the pattern sent */
  const struct sockaddr_storage *from;
} dg_rec;

static void dg_cb(asock_op *op) {
  dg_rec *r = asock_op_user_data(op);
  int i;

  ck_assert_msg(!tu_inside_call(), "a callback ran inside a starting call");
  if (!asock_op_more(op)) {
    r->finals++;
    r->final_status = asock_op_status(op);
    return;
  }
  ck_assert_asock(asock_op_status(op), 0);
  i = r->deliveries++;
  ck_assert_int_lt(i, MAX_DG);
  r->sizes[i] = asock_op_bytes(op);
  r->flags[i] = asock_op_msg_flags(op);
  r->offsets[i] = asock_op_offset(op);
  r->from_ok[i] =
      tu_same_addr(asock_op_remote(op), (const struct sockaddr *)r->from);
  if (asock_op_last_kind(op) == ASOCK_OP_RECEIVEMESSAGEFROM)
    ck_assert_asock(asock_op_packet_info(op, &r->local[i], &r->ifindex[i]), 0);
  /* Datagram i is pattern i from 0. */
  r->intact[i] = tu_mismatch(asock_op_data(op), r->sizes[i], (uint32_t)i, 0) ==
                 r->sizes[i];
  if (r->close_at == r->deliveries)
    ck_assert_asock(asock_socket_close(asock_op_socket(op), 0), 0);
  if (r->cancel_at == r->deliveries)
    ck_assert_asock(asock_cancel(op), 0);
}

/* A multishot receive (with packet information when `msg`) of sock into
 * slices, reporting to r. */
static asock_op *dg_op(dg_rec *r, const struct sockaddr_storage *from) {
  asock_op *op = tu_op();
  memset(r, 0, sizeof(*r));
  r->from = from;
  ck_assert_asock(asock_op_set_callback(op, dg_cb), 0);
  ck_assert_asock(asock_op_set_user_data(op, r), 0);
  ck_assert_asock(asock_op_set_multishot(op, 1), 0);
  return op;
}

/* Sends datagram i (pattern i) of size sizes[i], for each i < n. */
static void send_each(asock_socket *sock, const size_t *sizes, int n,
                      const struct sockaddr_storage *to) {
  static unsigned char out[8192];
  asock_op *tx = tu_op();
  int i;

  for (i = 0; i < n; i++) {
    ck_assert_uint_le(sizes[i], sizeof(out));
    tu_fill(out, sizes[i], (uint32_t)i, 0);
    uu_send(sock, tx, out, sizes[i], to);
  }
}

/* Makes tu_loop a ring loop: 0 when io_uring cannot run here (tu_loop is
 * then a loop of the default backend, and the test has nothing to check). */
static int ring_loop(void) {
  asock_loop_config c;
  int r;

  asock_loop_config_init(&c);
  c.backend = ASOCK_BACKEND_IO_URING;
  r = tu_reopen_loop(&c);
  if (r == ASOCK_ENOTSUP) {
    ck_assert_asock(tu_reopen_loop(NULL), 0);
    return 0;
  }
  ck_assert_asock(r, 0);
  return 1;
}

/* 24 datagrams sent while the receive's request waits to be submitted:
 * the kernel fills the ring's 4 buffers, refuses the fifth, and the
 * request goes again as the buffers come back; every datagram comes, in
 * order, with its sender, its destination and its interface, through the
 * ring (none was read by a system call of asock's). */
START_TEST(ring_udp_multishot_brings_every_datagram) {
  enum { N = 24 };
  static dg_rec r;
  size_t sizes[N];
  uu_pair p;
  asock_op *op;
  struct sockaddr_in *local;
  int i;

  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 4);
  uu_pair_open(&p, "127.0.0.1");
  op = dg_op(&r, &p.a_addr);
  ck_assert_asock(tu_receive_message_from(p.b, op), ASOCK_PENDING);
  for (i = 0; i < N; i++)
    sizes[i] = 1 + (size_t)i * 97;
  send_each(p.a, sizes, N, &p.b_addr);
  ck_assert_msg(tu_wait_count(&r.deliveries, N), "%d of %d datagrams came",
                r.deliveries, N);
  for (i = 0; i < N; i++) {
    ck_assert_uint_eq(r.sizes[i], sizes[i]);
    ck_assert_uint_eq(r.flags[i], 0);
    /* Received in the slice it is delivered in: not copied. */
    ck_assert_uint_eq(r.offsets[i], asock_pool_slice_size(tu_pool) -
                                        asock__ring_udp_room(tu_loop));
    ck_assert_int_eq(r.from_ok[i], 1);
    ck_assert_int_eq(r.intact[i], 1);
    local = (struct sockaddr_in *)&r.local[i];
    ck_assert_int_eq(local->sin_family, AF_INET);
    ck_assert_uint_eq(ntohl(local->sin_addr.s_addr), INADDR_LOOPBACK);
    ck_assert_uint_eq(ntohs(local->sin_port), tu_port(&p.b_addr));
    ck_assert_uint_eq(r.ifindex[i], if_nametoindex("lo"));
  }
  ck_assert_uint_eq(asock__ring_udp_received(tu_loop), N);
  ck_assert_uint_ge(asock__ring_refusals(tu_loop), 1);
  uu_pair_close(&p);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
  ck_assert_int_eq(r.deliveries, N);
}
END_TEST

/* A provided buffer holds the datagram's header, sender and packet
 * information before its bytes: a datagram longer than the room left is
 * cut there and says so, one that fills it exactly is whole. */
START_TEST(ring_udp_cuts_what_a_buffer_cannot_hold) {
  static dg_rec r;
  size_t sizes[3];
  size_t room;
  uu_pair p;
  asock_op *op;

  if (!ring_loop())
    return;
  room = asock__ring_udp_room(tu_loop);
  ck_assert_uint_gt(room, 3000);
  ck_assert_uint_lt(room, asock_pool_slice_size(tu_pool));
  sizes[0] = room;
  sizes[1] = room + 1;
  sizes[2] = 100;
  uu_pair_open(&p, "127.0.0.1");
  op = dg_op(&r, &p.a_addr);
  ck_assert_asock(tu_receive_from(p.b, op), ASOCK_PENDING);
  send_each(p.a, sizes, 3, &p.b_addr);
  ck_assert(tu_wait_count(&r.deliveries, 3));
  ck_assert_uint_eq(r.sizes[0], room);
  ck_assert_uint_eq(r.flags[0], 0);
  ck_assert_uint_eq(r.sizes[1], room);
  ck_assert_uint_eq(r.flags[1], ASOCK_MSG_TRUNCATED);
  ck_assert_uint_eq(r.sizes[2], 100);
  ck_assert_uint_eq(r.flags[2], 0);
  ck_assert_int_eq(r.intact[0] && r.intact[1] && r.intact[2], 1);
  ck_assert_uint_eq(r.offsets[0], asock_pool_slice_size(tu_pool) - room);
  ck_assert_uint_eq(asock__ring_udp_received(tu_loop), 3);
  uu_pair_close(&p);
  ck_assert(tu_wait_count(&r.finals, 1));
}
END_TEST

/* Closed inside its first delivery with datagrams still in the ring's
 * buffers: the receive ends with ASOCK_ECANCELED and nothing more, every
 * buffer goes back to the kernel (a second socket then gets 24 datagrams
 * through the same 4 buffers), and no slice stays taken. */
START_TEST(ring_udp_close_gives_back_the_buffers) {
  enum { N = 24 };
  static dg_rec r, r2;
  size_t sizes[N];
  asock_pool_stats st;
  uu_pair p;
  asock_op *op;
  int i;

  if (!ring_loop())
    return;
  for (i = 0; i < N; i++)
    sizes[i] = 200;
  uu_pair_open(&p, "127.0.0.1");
  op = dg_op(&r, &p.a_addr);
  r.close_at = 1;
  ck_assert_asock(tu_receive_from(p.b, op), ASOCK_PENDING);
  send_each(p.a, sizes, 6, &p.b_addr);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
  ck_assert_int_eq(r.deliveries, 1);
  ck_assert_int_eq(r.intact[0], 1);
  ck_assert_asock(tu_close(p.a, 0), 0);

  uu_pair_open(&p, "127.0.0.1");
  op = dg_op(&r2, &p.a_addr);
  ck_assert_asock(tu_receive_from(p.b, op), ASOCK_PENDING);
  send_each(p.a, sizes, N, &p.b_addr);
  ck_assert(tu_wait_count(&r2.deliveries, N));
  for (i = 0; i < N; i++)
    ck_assert_int_eq(r2.intact[i], 1);
  uu_pair_close(&p);
  ck_assert(tu_wait_count(&r2.finals, 1));
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
}
END_TEST

static int recv_out(const void *arg) {
  const asock_socket *sock = arg;
  return (sock->io.ring.out & ASOCK__RING_RECV) != 0;
}

/* Opens p and has a multishot receive on it take the first of the n
 * datagrams sent to it (pattern i, sizes[i]) and cancel itself there: the
 * rest wait in the socket's stash, with no request out. */
static void stop_after_first(uu_pair *p, dg_rec *r, const size_t *sizes,
                             int n) {
  asock_op *op;

  uu_pair_open(p, "127.0.0.1");
  op = dg_op(r, &p->a_addr);
  r->cancel_at = 1;
  ck_assert_asock(tu_receive_from(p->b, op), ASOCK_PENDING);
  send_each(p->a, sizes, n, &p->b_addr);
  ck_assert(tu_wait_count(&r->finals, 1));
  ck_assert_asock(r->final_status, ASOCK_ECANCELED);
  ck_assert_int_eq(r->deliveries, 1);
  ck_assert_uint_eq(r->sizes[0], sizes[0]);
  ck_assert_int_eq(r->intact[0], 1);
  ck_assert(!recv_out(p->b));
  ck_assert_ptr_nonnull(p->b->io.ring.stash);
}

/* The stashed datagrams are ids the ring kept (1) or provided buffers (0). */
static int stash_kept(const asock_socket *sock, int kept) {
  const asock__ring_io *io = &sock->io.ring;
  size_t nbufs = tu_lent(sock->loop);
  return kept ? io->stash_bid >= nbufs && io->stash_last >= nbufs
              : io->stash_bid < nbufs && io->stash_last < nbufs;
}

/* Datagrams 1 to n-1 come whole, with their sender, in order, to one-shot
 * receives. */
static void read_rest(uu_pair *p, const size_t *sizes, int n) {
  int i;

  for (i = 1; i < n; i++) {
    asock_op *op = tu_op();
    ck_assert_int_eq(uu_receive_one(p->b, op), 1);
    ck_assert_uint_eq(asock_op_bytes(op), sizes[i]);
    ck_assert_uint_eq(asock_op_msg_flags(op), 0);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(op), sizes[i], (uint32_t)i, 0),
                      sizes[i]);
    ck_assert(
        tu_same_addr(asock_op_remote(op), (const struct sockaddr *)&p->a_addr));
    ck_assert_asock(asock_op_clear_buffer(op), 0);
  }
  ck_assert_ptr_null(p->b->io.ring.stash);
}

/* Every slice is back once the pairs are closed. */
static void close_all(uu_pair *p, int n) {
  asock_pool_stats st;
  int i;

  for (i = 0; i < n; i++)
    uu_pair_close(&p[i]);
  tu_run_for(0);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
}

/* Datagrams that wait for a receive that does not come let go of the
 * kernel's buffers once it has fewer than half of them (4 lent, 3 such
 * sockets, one datagram waiting on each): the first two sockets hold a
 * provided buffer each, the third's datagram (whose request the kernel
 * ended for want of a buffer) moves to a slice charged to it and the
 * kernel gets a free one. Every waiting datagram comes whole to the
 * socket's next receive, and every slice goes back. */
START_TEST(ring_udp_waiting_datagrams_let_go_of_the_kernels_buffers) {
  enum { N = 3 };
  static dg_rec r[N];
  static const size_t sizes[2] = {40, 300};
  size_t held[N];
  uu_pair p[N];
  int i;

  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 4);
  for (i = 0; i < N; i++) {
    stop_after_first(&p[i], &r[i], sizes, 2);
    held[i] = asock_socket_slices_held(p[i].b);
  }
  ck_assert_uint_eq(held[1], held[0]);
  ck_assert_uint_eq(held[2], held[0] + 1);
  ck_assert(stash_kept(p[0].b, 0));
  ck_assert(stash_kept(p[1].b, 0));
  ck_assert(stash_kept(p[2].b, 1));
  for (i = 0; i < N; i++)
    read_rest(&p[i], sizes, 2);
  ck_assert_uint_eq(asock_socket_slices_held(p[2].b), held[0]);
  close_all(p, N);
}
END_TEST

/* A socket with several datagrams waiting lets go of every buffer they
 * hold: one socket holds a provided buffer (4 lent), the next has two
 * datagrams waiting when its request ends with the kernel one buffer
 * short of half, and both move to slices charged to it, in order. */
START_TEST(ring_udp_waiting_datagrams_let_go_of_every_buffer) {
  static dg_rec r[2];
  static const size_t sizes[3] = {40, 300, 1000};
  size_t held0;
  uu_pair p[2];

  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 4);
  stop_after_first(&p[0], &r[0], sizes, 2);
  held0 = asock_socket_slices_held(p[0].b);
  ck_assert(stash_kept(p[0].b, 0));
  stop_after_first(&p[1], &r[1], sizes, 3);
  ck_assert_uint_eq(asock_socket_slices_held(p[1].b), held0 + 2);
  ck_assert(stash_kept(p[1].b, 1));
  ck_assert_uint_ne(p[1].b->io.ring.stash_bid, p[1].b->io.ring.stash_last);
  ck_assert(stash_kept(p[0].b, 0));
  read_rest(&p[1], sizes, 3);
  ck_assert_uint_eq(asock_socket_slices_held(p[1].b), held0);
  read_rest(&p[0], sizes, 2);
  close_all(p, 2);
}
END_TEST

/* On a socket with a default peer that is not there, the ICMP port
 * unreachable reaches the ring's request as an error: the multishot
 * receive ends with ASOCK_ECONNREFUSED, after the datagram that came
 * before it. */
START_TEST(ring_udp_refused_peer_ends_the_receive) {
  static dg_rec r;
  size_t one = 30;
  uu_pair p;
  asock_op *op;

  if (!ring_loop())
    return;
  uu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_udp_connect(p.b, (struct sockaddr *)&p.a_addr), 0);
  op = dg_op(&r, &p.a_addr);
  ck_assert_asock(tu_receive_from(p.b, op), ASOCK_PENDING);
  send_each(p.a, &one, 1, &p.b_addr);
  ck_assert(tu_wait_count(&r.deliveries, 1));
  /* Now the peer goes (a ring socket with nothing out closes its OS socket
   * inside the call): b's next send draws the ICMP error. */
  ck_assert_asock(tu_close(p.a, 0), 0);
  send_each(p.b, &one, 1, &p.a_addr);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECONNREFUSED);
  ck_assert_int_eq(r.deliveries, 1);
  ck_assert_uint_eq(r.sizes[0], 30);
  ck_assert_asock(tu_close(p.b, 0), 0);
}
END_TEST

/* A ring whose kernel refuses multishot receives of messages (simulated by
 * the test hook) polls: the shared code reads the socket itself, every
 * datagram comes, in order, and none through the ring's buffers. */
START_TEST(ring_udp_without_multishot_polls) {
  enum { N = 24 };
  static dg_rec r;
  size_t sizes[N];
  uu_pair p;
  asock_op *op;
  int made, i;

  asock__ring_udp_poll = 1;
  made = ring_loop();
  asock__ring_udp_poll = 0;
  if (!made)
    return;
  for (i = 0; i < N; i++)
    sizes[i] = 10 + (size_t)i;
  uu_pair_open(&p, "127.0.0.1");
  op = dg_op(&r, &p.a_addr);
  ck_assert_asock(tu_receive_from(p.b, op), ASOCK_PENDING);
  send_each(p.a, sizes, N, &p.b_addr);
  ck_assert(tu_wait_count(&r.deliveries, N));
  for (i = 0; i < N; i++) {
    ck_assert_uint_eq(r.sizes[i], sizes[i]);
    ck_assert_int_eq(r.intact[i], 1);
  }
  ck_assert_uint_eq(asock__ring_udp_received(tu_loop), 0);
  uu_pair_close(&p);
  ck_assert(tu_wait_count(&r.finals, 1));
}
END_TEST
#endif

Suite *asock_test_suite_udp_ring(void) {
  Suite *s = suite_create("udp_ring");
  TCase *tc = tcase_create("udp_ring");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
#ifdef ASOCK_HAVE_URING
  tcase_add_test(tc, ring_udp_multishot_brings_every_datagram);
  tcase_add_test(tc, ring_udp_cuts_what_a_buffer_cannot_hold);
  tcase_add_test(tc, ring_udp_close_gives_back_the_buffers);
  tcase_add_test(tc, ring_udp_waiting_datagrams_let_go_of_the_kernels_buffers);
  tcase_add_test(tc, ring_udp_waiting_datagrams_let_go_of_every_buffer);
  tcase_add_test(tc, ring_udp_refused_peer_ends_the_receive);
  tcase_add_test(tc, ring_udp_without_multishot_polls);
#endif
  suite_add_tcase(s, tc);
  return s;
}
