/* Operations started from threads other than the loop's: they are handed to
 * the loop, always return ASOCK_PENDING, keep their posting order, and
 * complete exactly once through their callbacks on the loop thread. */
#include <string.h>

#include "internal.h"
#include "test.h"

enum { OPS = 64, CHUNK = 100 };

typedef struct fixture {
  asock_pool *pool;
  asock_loop *loop;
  asock_socket *listener;
  asock_socket *server; /* the accepted end */
  asock_socket *client;
  uv_timer_t guard;
  int guard_fired;
} fixture;

static fixture fx;

/* Completions seen, in the order the loop delivered them. */
static asock_op *done_ops[OPS * 2];
static int done_count;
static int done_on_loop_thread;
static uv_thread_t loop_thread;

static void record(asock_op *op) {
  uv_thread_t self = uv_thread_self();
  if (uv_thread_equal(&self, &loop_thread))
    done_on_loop_thread++;
  ck_assert_int_lt(done_count, OPS * 2);
  done_ops[done_count++] = op;
}

static void on_guard(uv_timer_t *t) {
  (void)t;
  fx.guard_fired = 1;
  uv_stop(asock_loop_uv(fx.loop));
}

/* Runs the loop until `count` completions arrived; a 20 s guard timer keeps
 * a broken implementation from hanging the test. */
static void run_until(int count) {
  uv_timer_start(&fx.guard, on_guard, 20000, 0);
  while (done_count < count && !fx.guard_fired)
    asock_loop_run(fx.loop, UV_RUN_ONCE);
  uv_timer_stop(&fx.guard);
  ck_assert_msg(!fx.guard_fired, "timed out with %d of %d completions",
                done_count, count);
}

static void setup(void) {
  asock_pool_config config;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  int len = (int)sizeof(bound);
  asock_op *accept_op;
  asock_op *connect_op;
  int r;

  memset(&fx, 0, sizeof(fx));
  done_count = 0;
  done_on_loop_thread = 0;
  loop_thread = uv_thread_self();
  asock_pool_config_init(&config);
  config.slice_size = 4096;
  config.slice_count = 256;
  config.op_count = 4 * OPS;
  ck_assert_asock(asock_pool_create(&fx.pool, &config), 0);
  ck_assert_asock(asock_loop_create(&fx.loop, fx.pool, NULL), 0);
  uv_timer_init(asock_loop_uv(fx.loop), &fx.guard);
  ck_assert_asock(asock_tcp_create(&fx.listener, fx.loop), 0);
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(
      asock_tcp_listen(fx.listener, (struct sockaddr *)&addr, 16, 0), 0);
  ck_assert_asock(
      asock_socket_local_address(fx.listener, (struct sockaddr *)&bound, &len),
      0);

  ck_assert_asock(asock_op_acquire(fx.pool, &accept_op), 0);
  ck_assert_asock(asock_op_acquire(fx.pool, &connect_op), 0);
  asock_op_set_callback(accept_op, record);
  asock_op_set_callback(connect_op, record);
  ck_assert_asock(asock_tcp_create(&fx.client, fx.loop), 0);
  ck_assert_asock(asock_op_set_remote(connect_op, (struct sockaddr *)&bound),
                  0);
  ck_assert_asock(asock_connect(fx.client, connect_op), ASOCK_PENDING);
  r = asock_accept(fx.listener, accept_op);
  ck_assert(r == ASOCK_PENDING || r == 0);
  run_until(r == 0 ? 1 : 2);
  ck_assert_asock(asock_op_status(connect_op), 0);
  ck_assert_asock(asock_op_status(accept_op), 0);
  fx.server = asock_op_accepted(accept_op);
  ck_assert_ptr_nonnull(fx.server);
  ck_assert_asock(asock_op_release(fx.pool, accept_op), 0);
  ck_assert_asock(asock_op_release(fx.pool, connect_op), 0);
  done_count = 0;
  done_on_loop_thread = 0;
}

static void teardown(void) {
  asock_pool_stats st;
  if (fx.loop != NULL) {
    uv_close((uv_handle_t *)&fx.guard, NULL);
    ck_assert_asock(asock_loop_close(fx.loop), 0);
  }
  ck_assert_asock(asock_pool_stats_get(fx.pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_asock(asock_pool_destroy(fx.pool), 0);
}

/* ---- receives posted from a worker thread ------------------------------ */

typedef struct poster {
  asock_socket *sock;
  asock_op *ops[OPS];
  int results[OPS];
  int kind; /* ASOCK_OP_RECEIVE or ASOCK_OP_SEND */
} poster;

static void post_all(void *arg) {
  poster *p = arg;
  int i;
  for (i = 0; i < OPS; i++)
    p->results[i] = p->kind == ASOCK_OP_RECEIVE
                        ? asock_receive(p->sock, p->ops[i])
                        : asock_send(p->sock, p->ops[i]);
}

START_TEST(receives_from_another_thread_keep_order) {
  static poster p;
  static unsigned char sent[OPS * CHUNK];
  static unsigned char got[OPS * CHUNK];
  asock_op *sender;
  uv_thread_t worker;
  size_t have = 0;
  int i;

  memset(&p, 0, sizeof(p));
  p.sock = fx.server;
  p.kind = ASOCK_OP_RECEIVE;
  for (i = 0; i < OPS; i++) {
    ck_assert_asock(asock_op_acquire(fx.pool, &p.ops[i]), 0);
    ck_assert_asock(asock_op_set_callback(p.ops[i], record), 0);
    ck_assert_asock(
        asock_op_set_buffer(p.ops[i], got + i * CHUNK, CHUNK, 0, CHUNK), 0);
  }
  ck_assert_int_eq(uv_thread_create(&worker, post_all, &p), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  for (i = 0; i < OPS; i++)
    ck_assert_asock(p.results[i], ASOCK_PENDING);

  /* The peer sends every chunk at once; each receive takes what the kernel
   * gives, so the chunks land wherever the receives are, in order. */
  for (i = 0; i < OPS * CHUNK; i++)
    sent[i] = (unsigned char)(i * 7 + i / 251);
  ck_assert_asock(asock_op_acquire(fx.pool, &sender), 0);
  asock_op_set_callback(sender, record);
  ck_assert_asock(
      asock_op_set_buffer(sender, sent, sizeof(sent), 0, sizeof(sent)), 0);
  i = asock_send(fx.client, sender);
  ck_assert(i == 0 || i == ASOCK_PENDING);
  run_until(OPS + (i == ASOCK_PENDING));
  ck_assert_int_eq(done_on_loop_thread, done_count);

  /* Completions in posting order: sequence numbers increase, and reading
   * each op's bytes in that order gives the stream back. */
  {
    uint64_t last = 0;
    int seen = 0;
    for (i = 0; i < done_count; i++) {
      asock_op *op = done_ops[i];
      if (op == sender)
        continue;
      ck_assert_asock(asock_op_status(op), 0);
      ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_RECEIVE);
      ck_assert_int_eq(asock_op_completed_synchronously(op), 0);
      if (seen > 0)
        ck_assert_uint_gt(asock_op_seq(op), last);
      last = asock_op_seq(op);
      ck_assert_ptr_eq(op, p.ops[seen]);
      ck_assert_uint_le(have + asock_op_bytes(op), sizeof(sent));
      ck_assert_int_eq(
          memcmp(asock_op_data(op), sent + have, asock_op_bytes(op)), 0);
      have += asock_op_bytes(op);
      seen++;
    }
    ck_assert_int_eq(seen, OPS);
  }
  ck_assert_uint_gt(have, 0);
  for (i = 0; i < OPS; i++)
    ck_assert_asock(asock_op_release(fx.pool, p.ops[i]), 0);
  ck_assert_asock(asock_op_release(fx.pool, sender), 0);
}
END_TEST

/* ---- datagrams from a worker thread ------------------------------------ */

typedef struct dgram_poster {
  asock_socket *tx_sock;
  asock_socket *rx_sock;
  asock_op *tx[OPS];
  asock_op *rx[OPS];
  int tx_results[OPS];
  int rx_results[OPS];
} dgram_poster;

static void post_datagrams(void *arg) {
  dgram_poster *p = arg;
  int i;
  for (i = 0; i < OPS; i++)
    p->rx_results[i] = i % 2 ? asock_receive_from(p->rx_sock, p->rx[i])
                             : asock_receive_message_from(p->rx_sock, p->rx[i]);
  for (i = 0; i < OPS; i++)
    p->tx_results[i] = asock_send_to(p->tx_sock, p->tx[i]);
}

START_TEST(datagrams_from_another_thread_keep_order) {
  static dgram_poster p;
  static unsigned char payload[OPS][8];
  struct sockaddr_in any;
  struct sockaddr_storage to;
  int len = (int)sizeof(to);
  uv_thread_t worker;
  int i;
  int seen = 0;

  memset(&p, 0, sizeof(p));
  uv_ip4_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_udp_create(&p.tx_sock, fx.loop), 0);
  ck_assert_asock(asock_udp_create(&p.rx_sock, fx.loop), 0);
  ck_assert_asock(asock_udp_bind(p.rx_sock, (struct sockaddr *)&any, 0), 0);
  ck_assert_asock(
      asock_socket_local_address(p.rx_sock, (struct sockaddr *)&to, &len), 0);
  for (i = 0; i < OPS; i++) {
    memset(payload[i], i, sizeof(payload[i]));
    ck_assert_asock(asock_op_acquire(fx.pool, &p.tx[i]), 0);
    ck_assert_asock(asock_op_acquire(fx.pool, &p.rx[i]), 0);
    ck_assert_asock(asock_op_set_callback(p.tx[i], record), 0);
    ck_assert_asock(asock_op_set_callback(p.rx[i], record), 0);
    ck_assert_asock(asock_op_set_buffer(p.tx[i], payload[i], 8, 0, 8), 0);
    ck_assert_asock(asock_op_set_remote(p.tx[i], (struct sockaddr *)&to), 0);
  }
  ck_assert_int_eq(uv_thread_create(&worker, post_datagrams, &p), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  for (i = 0; i < OPS; i++) {
    ck_assert_asock(p.rx_results[i], ASOCK_PENDING);
    ck_assert_asock(p.tx_results[i], ASOCK_PENDING);
  }
  run_until(2 * OPS);
  ck_assert_int_eq(done_on_loop_thread, done_count);
  /* Each receive got the datagram of the same rank: the sends left in
   * posting order and the receives completed in theirs. */
  for (i = 0; i < done_count; i++) {
    asock_op *op = done_ops[i];
    asock_op_kind kind = asock_op_last_kind(op);
    ck_assert_asock(asock_op_status(op), 0);
    ck_assert_uint_eq(asock_op_bytes(op), 8);
    if (kind == ASOCK_OP_SENDTO)
      continue;
    ck_assert_ptr_eq(op, p.rx[seen]);
    ck_assert_int_eq(kind, seen % 2 ? ASOCK_OP_RECEIVEFROM
                                    : ASOCK_OP_RECEIVEMESSAGEFROM);
    ck_assert_int_eq(memcmp(asock_op_data(op), payload[seen], 8), 0);
    ck_assert_uint_eq(asock_op_seq(op), (uint64_t)seen + 1);
    seen++;
  }
  ck_assert_int_eq(seen, OPS);
  for (i = 0; i < OPS; i++) {
    ck_assert_uint_eq(asock_op_seq(p.tx[i]), (uint64_t)i + 1);
    ck_assert_asock(asock_op_clear_buffer(p.rx[i]), 0);
    ck_assert_asock(asock_op_release(fx.pool, p.tx[i]), 0);
    ck_assert_asock(asock_op_release(fx.pool, p.rx[i]), 0);
  }
  ck_assert_asock(asock_socket_close(p.tx_sock, 0), 0);
  ck_assert_asock(asock_socket_close(p.rx_sock, 0), 0);
}
END_TEST

/* A send-to handed over completes inside its start on the loop; until its
 * callback has run it stays pending, and starting it again is refused. */
static void post_one_datagram(void *arg) {
  dgram_poster *p = arg;
  p->tx_results[0] = asock_send_to(p->tx_sock, p->tx[0]);
}

START_TEST(handed_over_op_is_pending_until_its_callback) {
  static dgram_poster p;
  static unsigned char payload[4] = {1, 2, 3, 4};
  struct sockaddr_in any;
  struct sockaddr_storage to;
  int len = (int)sizeof(to);
  uv_thread_t worker;

  memset(&p, 0, sizeof(p));
  uv_ip4_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_udp_create(&p.tx_sock, fx.loop), 0);
  ck_assert_asock(asock_udp_create(&p.rx_sock, fx.loop), 0);
  ck_assert_asock(asock_udp_bind(p.rx_sock, (struct sockaddr *)&any, 0), 0);
  ck_assert_asock(
      asock_socket_local_address(p.rx_sock, (struct sockaddr *)&to, &len), 0);
  ck_assert_asock(asock_op_acquire(fx.pool, &p.tx[0]), 0);
  ck_assert_asock(asock_op_set_callback(p.tx[0], record), 0);
  ck_assert_asock(asock_op_set_buffer(p.tx[0], payload, 4, 0, 4), 0);
  ck_assert_asock(asock_op_set_remote(p.tx[0], (struct sockaddr *)&to), 0);
  ck_assert_int_eq(uv_thread_create(&worker, post_one_datagram, &p), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  ck_assert_asock(p.tx_results[0], ASOCK_PENDING);
  /* The loop starts it: the datagram leaves at once. */
  asock__loop_run_posted(fx.loop);
  ck_assert_int_eq(done_count, 0);
  ck_assert_int_eq(asock_op_is_pending(p.tx[0]), 1);
  ck_assert_asock(asock_send_to(p.tx_sock, p.tx[0]), ASOCK_EBUSY);
  run_until(1);
  ck_assert_ptr_eq(done_ops[0], p.tx[0]);
  ck_assert_asock(asock_op_status(p.tx[0]), 0);
  ck_assert_uint_eq(asock_op_bytes(p.tx[0]), 4);
  ck_assert_int_eq(asock_op_is_pending(p.tx[0]), 0);
  ck_assert_asock(asock_op_release(fx.pool, p.tx[0]), 0);
  ck_assert_asock(asock_socket_close(p.tx_sock, 0), 0);
  ck_assert_asock(asock_socket_close(p.rx_sock, 0), 0);
}
END_TEST

/* ---- every kind of op, from several threads at once -------------------- */

enum { WORKERS = 4 };

typedef struct kinds {
  int index;
  asock_socket *client; /* this worker's own connection */
  asock_socket *udp_tx;
  asock_socket *udp_rx;
  asock_op *accept;
  asock_op *connect;
  asock_op *send_to;
  asock_op *recv_from;
  asock_op *send;
  asock_op *recv;
  asock_op *disconnect;
  asock_op *canceled;
  unsigned char out[1];
  unsigned char in[1];
  int results[8];
  uv_thread_t thread;
} kinds;

static kinds workers[WORKERS];

static void post_kinds(void *arg) {
  kinds *k = arg;
  k->results[0] = asock_accept(fx.listener, k->accept);
  k->results[1] = asock_connect(k->client, k->connect);
  k->results[2] = asock_receive_from(k->udp_rx, k->recv_from);
  k->results[3] = asock_send_to(k->udp_tx, k->send_to);
  k->results[4] = asock_receive(fx.server, k->recv);
  k->results[5] = asock_send(fx.client, k->send);
}

static void post_endings(void *arg) {
  kinds *k = arg;
  k->results[6] = asock_disconnect(k->client, k->disconnect);
  k->results[7] = asock_receive_message_from(k->udp_rx, k->canceled);
  asock_cancel(k->canceled);
}

/* Runs fn on each worker's thread at once, and waits for them all. */
static void run_workers(void (*fn)(void *)) {
  int i;
  for (i = 0; i < WORKERS; i++)
    ck_assert_int_eq(uv_thread_create(&workers[i].thread, fn, &workers[i]), 0);
  for (i = 0; i < WORKERS; i++)
    ck_assert_int_eq(uv_thread_join(&workers[i].thread), 0);
}

static asock_op *kind_op(void) {
  asock_op *op;
  ck_assert_asock(asock_op_acquire(fx.pool, &op), 0);
  ck_assert_asock(asock_op_set_callback(op, record), 0);
  return op;
}

START_TEST(every_kind_from_several_threads_at_once) {
  struct sockaddr_storage listen_addr;
  struct sockaddr_storage udp_addr;
  struct sockaddr_in any;
  asock_socket *tx;
  asock_socket *rx;
  int len = (int)sizeof(listen_addr);
  int seen_dgram[WORKERS] = {0};
  int seen_byte[WORKERS] = {0};
  int i;

  ck_assert_asock(asock_socket_local_address(
                      fx.listener, (struct sockaddr *)&listen_addr, &len),
                  0);
  uv_ip4_addr("127.0.0.1", 0, &any);
  ck_assert_asock(asock_udp_create(&tx, fx.loop), 0);
  ck_assert_asock(asock_udp_create(&rx, fx.loop), 0);
  ck_assert_asock(asock_udp_bind(rx, (struct sockaddr *)&any, 0), 0);
  len = (int)sizeof(udp_addr);
  ck_assert_asock(
      asock_socket_local_address(rx, (struct sockaddr *)&udp_addr, &len), 0);
  for (i = 0; i < WORKERS; i++) {
    kinds *k = &workers[i];
    memset(k, 0, sizeof(*k));
    k->index = i;
    k->udp_tx = tx;
    k->udp_rx = rx;
    k->out[0] = (unsigned char)i;
    ck_assert_asock(asock_tcp_create(&k->client, fx.loop), 0);
    k->accept = kind_op();
    k->connect = kind_op();
    ck_assert_asock(
        asock_op_set_remote(k->connect, (struct sockaddr *)&listen_addr), 0);
    k->send_to = kind_op();
    ck_assert_asock(asock_op_set_buffer(k->send_to, k->out, 1, 0, 1), 0);
    ck_assert_asock(
        asock_op_set_remote(k->send_to, (struct sockaddr *)&udp_addr), 0);
    k->recv_from = kind_op();
    k->send = kind_op();
    ck_assert_asock(asock_op_set_buffer(k->send, k->out, 1, 0, 1), 0);
    k->recv = kind_op();
    ck_assert_asock(asock_op_set_buffer(k->recv, k->in, 1, 0, 1), 0);
    k->disconnect = kind_op();
    k->canceled = kind_op();
  }
  run_workers(post_kinds);
  run_until(6 * WORKERS);
  ck_assert_int_eq(done_on_loop_thread, done_count);
  for (i = 0; i < WORKERS; i++) {
    kinds *k = &workers[i];
    int j;
    for (j = 0; j < 6; j++)
      ck_assert_asock(k->results[j], ASOCK_PENDING);
    ck_assert_asock(asock_op_status(k->accept), 0);
    ck_assert_ptr_nonnull(asock_op_accepted(k->accept));
    ck_assert_asock(asock_op_status(k->connect), 0);
    ck_assert_asock(asock_op_status(k->send_to), 0);
    ck_assert_asock(asock_op_status(k->recv_from), 0);
    ck_assert_uint_eq(asock_op_bytes(k->recv_from), 1);
    seen_dgram[*(unsigned char *)asock_op_data(k->recv_from)]++;
    ck_assert_asock(asock_op_status(k->send), 0);
    ck_assert_asock(asock_op_status(k->recv), 0);
    ck_assert_uint_eq(asock_op_bytes(k->recv), 1);
    seen_byte[k->in[0]]++;
  }
  /* Every datagram and every byte arrived once. */
  for (i = 0; i < WORKERS; i++) {
    ck_assert_int_eq(seen_dgram[i], 1);
    ck_assert_int_eq(seen_byte[i], 1);
  }

  done_count = 0;
  done_on_loop_thread = 0;
  run_workers(post_endings);
  run_until(2 * WORKERS);
  ck_assert_int_eq(done_on_loop_thread, done_count);
  for (i = 0; i < WORKERS; i++) {
    kinds *k = &workers[i];
    ck_assert_asock(k->results[6], ASOCK_PENDING);
    ck_assert_asock(k->results[7], ASOCK_PENDING);
    ck_assert_asock(asock_op_status(k->disconnect), 0);
    ck_assert_asock(asock_op_status(k->canceled), ASOCK_ECANCELED);
  }
  for (i = 0; i < WORKERS; i++) {
    kinds *k = &workers[i];
    asock_op *ops[8];
    int j;
    ops[0] = k->accept;
    ops[1] = k->connect;
    ops[2] = k->send_to;
    ops[3] = k->recv_from;
    ops[4] = k->send;
    ops[5] = k->recv;
    ops[6] = k->disconnect;
    ops[7] = k->canceled;
    ck_assert_asock(asock_socket_close(asock_op_accepted(k->accept), 0), 0);
    ck_assert_asock(asock_socket_close(k->client, 0), 0);
    for (j = 0; j < 8; j++) {
      ck_assert_asock(asock_op_clear_buffer(ops[j]), 0);
      ck_assert_asock(asock_op_release(fx.pool, ops[j]), 0);
    }
  }
  ck_assert_asock(asock_socket_close(tx, 0), 0);
  ck_assert_asock(asock_socket_close(rx, 0), 0);
}
END_TEST

START_TEST(sends_from_another_thread_reach_the_wire_in_order) {
  static poster p;
  static unsigned char data[OPS][CHUNK];
  static unsigned char got[OPS * CHUNK];
  asock_op *receiver;
  uv_thread_t worker;
  size_t have = 0;
  int i, r;

  memset(&p, 0, sizeof(p));
  p.sock = fx.client;
  p.kind = ASOCK_OP_SEND;
  for (i = 0; i < OPS; i++) {
    memset(data[i], i, CHUNK);
    ck_assert_asock(asock_op_acquire(fx.pool, &p.ops[i]), 0);
    ck_assert_asock(asock_op_set_callback(p.ops[i], record), 0);
    ck_assert_asock(asock_op_set_buffer(p.ops[i], data[i], CHUNK, 0, CHUNK), 0);
  }
  ck_assert_int_eq(uv_thread_create(&worker, post_all, &p), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  for (i = 0; i < OPS; i++)
    ck_assert_asock(p.results[i], ASOCK_PENDING);
  run_until(OPS);
  for (i = 0; i < OPS; i++) {
    ck_assert_ptr_eq(done_ops[i], p.ops[i]);
    ck_assert_asock(asock_op_status(p.ops[i]), 0);
    ck_assert_uint_eq(asock_op_bytes(p.ops[i]), CHUNK);
    if (i > 0)
      ck_assert_uint_gt(asock_op_seq(p.ops[i]), asock_op_seq(p.ops[i - 1]));
  }

  ck_assert_asock(asock_op_acquire(fx.pool, &receiver), 0);
  asock_op_set_callback(receiver, record);
  while (have < sizeof(got)) {
    ck_assert_asock(asock_op_set_buffer(receiver, got, sizeof(got), have,
                                        sizeof(got) - have),
                    0);
    r = asock_receive(fx.server, receiver);
    if (r == ASOCK_PENDING) {
      run_until(done_count + 1);
      r = 0;
    }
    ck_assert_asock(r, 0);
    ck_assert_asock(asock_op_status(receiver), 0);
    have += asock_op_bytes(receiver);
  }
  for (i = 0; i < OPS; i++) {
    int j;
    for (j = 0; j < CHUNK; j++)
      ck_assert_uint_eq(got[i * CHUNK + j], (unsigned char)i);
  }
  for (i = 0; i < OPS; i++)
    ck_assert_asock(asock_op_release(fx.pool, p.ops[i]), 0);
  ck_assert_asock(asock_op_release(fx.pool, receiver), 0);
}
END_TEST

/* ---- refusals, cancellation and stop from another thread --------------- */

typedef struct misuse {
  asock_socket *sock;
  asock_op *op;
  asock_op *foreign_op;
  asock_socket *created;
  int first;
  int second;
  int foreign;
  int close;
  int nodelay;
  int create;
} misuse;

static void post_twice(void *arg) {
  misuse *m = arg;
  m->first = asock_receive(m->sock, m->op);
  m->second = asock_receive(m->sock, m->op);
  m->foreign = asock_receive(m->sock, m->foreign_op);
  /* What belongs to the loop's thread is refused here. */
  m->close = asock_socket_close(m->sock, 0);
  m->nodelay = asock_socket_set_nodelay(m->sock, 1);
  m->create = asock_tcp_create(&m->created, asock_socket_loop(m->sock));
}

START_TEST(another_thread_gets_busy_and_foreign) {
  static misuse m;
  asock_pool *other;
  uv_thread_t worker;

  ck_assert_asock(asock_pool_create(&other, NULL), 0);
  memset(&m, 0, sizeof(m));
  m.sock = fx.server;
  ck_assert_asock(asock_op_acquire(fx.pool, &m.op), 0);
  ck_assert_asock(asock_op_acquire(other, &m.foreign_op), 0);
  asock_op_set_callback(m.op, record);
  ck_assert_int_eq(uv_thread_create(&worker, post_twice, &m), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  ck_assert_asock(m.first, ASOCK_PENDING);
  ck_assert_asock(m.second, ASOCK_EBUSY);
  ck_assert_asock(m.foreign, ASOCK_EFOREIGN);
  ck_assert_asock(m.close, ASOCK_ETHREAD);
  ck_assert_asock(m.nodelay, ASOCK_ETHREAD);
  ck_assert_asock(m.create, ASOCK_ETHREAD);
  ck_assert_ptr_null(m.created);
  ck_assert_int_eq(asock_op_is_pending(m.foreign_op), 0);

  /* Closing the socket before the loop took the op: it still completes,
   * once, through its callback. */
  ck_assert_asock(asock_socket_close(fx.server, 0), 0);
  run_until(1);
  ck_assert_ptr_eq(done_ops[0], m.op);
  ck_assert_asock(asock_op_status(m.op), ASOCK_ECLOSED);
  ck_assert_int_eq(asock_op_completed_synchronously(m.op), 0);
  ck_assert_asock(asock_op_release(fx.pool, m.op), 0);
  ck_assert_asock(asock_op_release(other, m.foreign_op), 0);
  ck_assert_asock(asock_pool_destroy(other), 0);
  /* Nothing more arrives. */
  asock_loop_run(fx.loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(done_count, 1);
}
END_TEST

static void cancel_it(void *arg) {
  asock_op *op = arg;
  ck_assert_asock(asock_cancel(op), 0);
}

START_TEST(cancel_from_another_thread) {
  asock_op *op;
  uv_thread_t worker;

  ck_assert_asock(asock_op_acquire(fx.pool, &op), 0);
  asock_op_set_callback(op, record);
  ck_assert_asock(asock_receive(fx.server, op), ASOCK_PENDING);
  ck_assert_int_eq(uv_thread_create(&worker, cancel_it, op), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  run_until(1);
  ck_assert_ptr_eq(done_ops[0], op);
  ck_assert_asock(asock_op_status(op), ASOCK_ECANCELED);
  ck_assert_asock(asock_cancel(op), ASOCK_ENOTPENDING);
  ck_assert_asock(asock_op_release(fx.pool, op), 0);
}
END_TEST

static void post_one(void *arg) {
  asock_op *op = arg;
  ck_assert_asock(asock_receive(fx.server, op), ASOCK_PENDING);
}

/* Cancelled on the loop's thread before the loop took it over: the cancel
 * still reaches it. */
START_TEST(cancel_before_the_loop_took_the_op) {
  asock_op *op;
  uv_thread_t worker;

  ck_assert_asock(asock_op_acquire(fx.pool, &op), 0);
  asock_op_set_callback(op, record);
  ck_assert_int_eq(uv_thread_create(&worker, post_one, op), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  ck_assert_asock(asock_cancel(op), 0);
  run_until(1);
  ck_assert_ptr_eq(done_ops[0], op);
  ck_assert_asock(asock_op_status(op), ASOCK_ECANCELED);
  ck_assert_asock(asock_op_release(fx.pool, op), 0);
}
END_TEST

static void stop_it(void *arg) { ck_assert_asock(asock_loop_stop(arg), 0); }

START_TEST(stop_from_another_thread) {
  uv_thread_t worker;
  asock_op *op;

  /* A pending receive keeps the loop alive: only the stop ends the run. */
  ck_assert_asock(asock_op_acquire(fx.pool, &op), 0);
  asock_op_set_callback(op, record);
  ck_assert_asock(asock_receive(fx.server, op), ASOCK_PENDING);
  ck_assert_int_eq(uv_thread_create(&worker, stop_it, fx.loop), 0);
  uv_timer_start(&fx.guard, on_guard, 20000, 0);
  asock_loop_run(fx.loop, UV_RUN_DEFAULT);
  uv_timer_stop(&fx.guard);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  ck_assert_int_eq(fx.guard_fired, 0);
  ck_assert_int_eq(done_count, 0);
  ck_assert_asock(asock_socket_close(fx.server, 0), 0);
  run_until(1);
  ck_assert_asock(asock_op_status(op), ASOCK_ECANCELED);
  ck_assert_asock(asock_op_release(fx.pool, op), 0);
}
END_TEST

/* Kept alive, a loop with nothing pending runs until it is stopped; let go,
 * it returns at once. */
static asock__atomic_u32 stopper_stopped;

static void stop_after_a_while(void *arg) {
  uv_sleep(50);
  asock__store_u32(&stopper_stopped, 1);
  ck_assert_asock(asock_loop_stop(arg), 0);
}

START_TEST(kept_alive_loop_runs_until_stopped) {
  uv_thread_t worker;

  ck_assert_asock(asock_loop_keep_alive(NULL, 1), ASOCK_EINVAL);
  ck_assert_asock(asock_loop_keep_alive(fx.loop, 1), 0);
  asock__store_u32(&stopper_stopped, 0);
  ck_assert_int_eq(uv_thread_create(&worker, stop_after_a_while, fx.loop), 0);
  uv_timer_start(&fx.guard, on_guard, 20000, 0);
  uv_unref((uv_handle_t *)&fx.guard);
  asock_loop_run(fx.loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(asock__load_u32(&stopper_stopped), 1);
  uv_timer_stop(&fx.guard);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  ck_assert_int_eq(fx.guard_fired, 0);
  /* Let go, its own handles keep it alive no longer (on Windows the
   * fixture's listener, whose AcceptEx requests stay posted, still does). */
  ck_assert_int_ne(uv_has_ref((uv_handle_t *)&fx.loop->async), 0);
  ck_assert_asock(asock_loop_keep_alive(fx.loop, 0), 0);
  ck_assert_int_eq(uv_has_ref((uv_handle_t *)&fx.loop->async), 0);
}
END_TEST

/* An op handed over but not yet taken by the loop when the loop closes
 * still completes, once, through its callback. */
START_TEST(loop_close_completes_handed_over_ops) {
  asock_op *op;
  uv_thread_t worker;

  ck_assert_asock(asock_op_acquire(fx.pool, &op), 0);
  asock_op_set_callback(op, record);
  ck_assert_int_eq(uv_thread_create(&worker, post_one, op), 0);
  ck_assert_int_eq(uv_thread_join(&worker), 0);
  ck_assert_int_eq(done_count, 0);
  uv_close((uv_handle_t *)&fx.guard, NULL);
  ck_assert_asock(asock_loop_close(fx.loop), 0);
  fx.loop = NULL;
  ck_assert_int_eq(done_count, 1);
  ck_assert_ptr_eq(done_ops[0], op);
  ck_assert_asock(asock_op_status(op), ASOCK_ECANCELED);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  ck_assert_asock(asock_op_release(fx.pool, op), 0);
}
END_TEST

Suite *asock_test_suite_threads(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("threads");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, receives_from_another_thread_keep_order);
  tcase_add_test(tc, sends_from_another_thread_reach_the_wire_in_order);
  tcase_add_test(tc, datagrams_from_another_thread_keep_order);
  tcase_add_test(tc, handed_over_op_is_pending_until_its_callback);
  tcase_add_test(tc, every_kind_from_several_threads_at_once);
  tcase_add_test(tc, another_thread_gets_busy_and_foreign);
  tcase_add_test(tc, cancel_from_another_thread);
  tcase_add_test(tc, cancel_before_the_loop_took_the_op);
  tcase_add_test(tc, stop_from_another_thread);
  tcase_add_test(tc, kept_alive_loop_runs_until_stopped);
  tcase_add_test(tc, loop_close_completes_handed_over_ops);
  suite_add_tcase(s, tc);
  return s;
}
