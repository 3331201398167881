/* TCP over loopback under load: 5,000 connections at once on a pool far too
 * small for them, every byte checked; messages of random sizes from 1 byte
 * to 1 MiB; and a steady-state echo that allocates nothing per message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcp-util.h"

/* ---- 5,000 connections ---------------------------------------------------
 * Each client connects, sends PER_CONN bytes of its own part of one pattern
 * and reads them back, checking each byte, then closes. The server echoes
 * with three buffer-less receives per connection, but sends what they
 * received only once per loop iteration (from a uv_check_t), so that a
 * whole poll's worth of completions holds slices at once: with 256 slices
 * for 5,000 connections the pool runs dry and receives must wait. */

#define CONNS 5000
#define PER_CONN 3000
#define IN_FLIGHT 256
#define ACCEPTS 64
#define ECHO_OPS 3
#define SLICES 256
#define QUOTA 2

typedef struct client {
  asock_socket *sock;
  asock_op *op;  /* connect, then the send */
  asock_op *rop; /* receives */
  size_t got;    /* bytes read back, all checked */
  int sent;      /* the send completed */
  int connected;
  unsigned char in[1024];
} client;

typedef struct server {
  asock_socket *sock;
  int alive; /* echo ops not yet released */
  int closed;
} server;

static client *clients;
static server *servers;
static unsigned char *pattern; /* CONNS * PER_CONN bytes of stream 77 */
static asock_socket *listener;
static int next_connect, connected, accepted, verified, closed_clients;
static int server_eofs, server_errors, server_last_error, quota_exceeded;
static int client_errors, client_last_error;
static int echo_alive; /* echo ops acquired and not yet released */
static uint64_t echoed;

/* Completed receives waiting for the check phase; two lists so that what
 * completes while one is processed waits for the next iteration. */
static asock_op **batch[2];
static size_t batch_len[2];
static int cur;
static uv_check_t check;
static uv_idle_t idle;
static int handles_closed;

static void idle_cb(uv_idle_t *handle) { (void)handle; }

static void server_op_end(asock_op *op, int status) {
  server *srv = (server *)asock_op_user_data(op);
  if (status == ASOCK_EOF) {
    if (!srv->closed)
      server_eofs++;
  } else if (status != ASOCK_ECANCELED && status != ASOCK_ECLOSED) {
    server_errors++;
    server_last_error = status;
  }
  if (!srv->closed) {
    srv->closed = 1;
    ck_assert_asock(tu_close(srv->sock, 0), 0);
  }
  srv->alive--;
  echo_alive--;
  ck_assert_asock(asock_op_release(tu_pool, op), 0);
}

/* Handles a finished step of an echo op, for as long as steps finish
 * synchronously; a received slice goes to the next batch. */
static void server_step(asock_op *op, int r) {
  server *srv = (server *)asock_op_user_data(op);
  for (;;) {
    int status;
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      server_op_end(op, r);
      return;
    }
    status = asock_op_status(op);
    if (status != 0) {
      server_op_end(op, status);
      return;
    }
    if (asock_socket_slices_held(srv->sock) > QUOTA)
      quota_exceeded++;
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVE) {
      size_t next = (size_t)(cur ^ 1);
      ck_assert_uint_gt(asock_op_bytes(op), 0);
      batch[next][batch_len[next]++] = op;
      if (!uv_is_active((uv_handle_t *)&idle))
        ck_assert_int_eq(uv_idle_start(&idle, idle_cb), 0);
      return;
    }
    ck_assert_uint_eq(asock_op_bytes(op), asock_op_count(op));
    echoed += asock_op_bytes(op);
    r = tu_receive(srv->sock, op);
  }
}

static void server_cb(asock_op *op) {
  ck_assert(!tu_inside_call());
  server_step(op, 0);
}

/* The check phase: send back everything received in the last iteration,
 * in the order it was received. */
static void check_cb(uv_check_t *handle) {
  size_t i, n;
  asock_op **ops;
  (void)handle;
  cur ^= 1;
  ops = batch[cur];
  n = batch_len[cur];
  for (i = 0; i < n; i++) {
    server *srv = (server *)asock_op_user_data(ops[i]);
    server_step(ops[i], tu_send(srv->sock, ops[i]));
  }
  batch_len[cur] = 0;
  if (batch_len[cur ^ 1] == 0)
    uv_idle_stop(&idle);
}

static void refill(void);

static void start_echo(asock_socket *sock) {
  server *srv = &servers[accepted++];
  int i;
  refill();
  srv->sock = sock;
  srv->alive = ECHO_OPS;
  for (i = 0; i < ECHO_OPS; i++) {
    asock_op *op;
    ck_assert_asock(asock_op_acquire(tu_pool, &op), 0);
    ck_assert_asock(asock_op_set_callback(op, server_cb), 0);
    ck_assert_asock(asock_op_set_user_data(op, srv), 0);
    echo_alive++;
    server_step(op, tu_receive(sock, op));
    if (srv->closed)
      break;
  }
}

static void accept_step(asock_op *op, int r) {
  while (r == 0) {
    ck_assert_asock(asock_op_status(op), 0);
    ck_assert_int_lt(accepted, CONNS);
    start_echo(asock_op_accepted(op));
    if (accepted + ACCEPTS > CONNS)
      return; /* enough accepts are posted for the rest */
    r = tu_accept(listener, op);
  }
  ck_assert_asock(r, ASOCK_PENDING);
}

static void accept_cb(asock_op *op) {
  ck_assert(!tu_inside_call());
  if (asock_op_status(op) == ASOCK_ECANCELED)
    return;
  accept_step(op, 0);
}

static void client_close_if_done(client *c) {
  if (c->got == PER_CONN && c->sent) {
    verified++;
    ck_assert_asock(tu_close(c->sock, 0), 0);
    closed_clients++;
  }
}

static void client_fail(int status) {
  client_errors++;
  client_last_error = status;
}

static void client_receive(client *c, int r) {
  while (r == 0) {
    size_t n = asock_op_bytes(c->rop);
    int status = asock_op_status(c->rop);
    if (status != 0) {
      client_fail(status);
      return;
    }
    ck_assert_uint_le(c->got + n, PER_CONN);
    ck_assert_uint_eq(
        memcmp(c->in, pattern + (size_t)(c - clients) * PER_CONN + c->got, n),
        0);
    c->got += n;
    if (c->got == PER_CONN) {
      client_close_if_done(c);
      return;
    }
    tu_set_buffer(c->rop, c->in, sizeof(c->in));
    r = tu_receive(c->sock, c->rop);
  }
  if (r != ASOCK_PENDING)
    client_fail(r);
}

static void client_rcb(asock_op *op) {
  ck_assert(!tu_inside_call());
  client_receive((client *)asock_op_user_data(op), 0);
}

static void client_start_data(client *c) {
  size_t off = (size_t)(c - clients) * PER_CONN;
  int r;
  tu_set_buffer(c->rop, c->in, sizeof(c->in));
  client_receive(c, tu_receive(c->sock, c->rop));
  ck_assert_asock(asock_op_set_buffer(c->op, pattern, (size_t)CONNS * PER_CONN,
                                      off, PER_CONN),
                  0);
  r = tu_send(c->sock, c->op);
  if (r == 0) {
    ck_assert_asock(asock_op_status(c->op), 0);
    c->sent = 1;
    client_close_if_done(c);
  } else if (r != ASOCK_PENDING) {
    client_fail(r);
  }
}

static void start_connect(void);

static void client_cb(asock_op *op) {
  client *c = (client *)asock_op_user_data(op);
  ck_assert(!tu_inside_call());
  if (asock_op_status(op) != 0) {
    client_fail(asock_op_status(op));
    return;
  }
  if (asock_op_last_kind(op) == ASOCK_OP_CONNECT) {
    c->connected = 1;
    connected++;
    refill();
    return;
  }
  ck_assert_uint_eq(asock_op_bytes(op), PER_CONN);
  c->sent = 1;
  client_close_if_done(c);
}

static struct sockaddr_storage listen_addr;

/* Keeps IN_FLIGHT connections between connect and accept. Counting only
 * connects in progress would let a server that accepts more slowly than the
 * clients connect (under Wine, under valgrind) overflow the listen backlog,
 * and the kernel drops the handshakes that overflow it: the client counts
 * the connection, the server never sees it. */
static void refill(void) {
  while (next_connect < CONNS && next_connect - accepted < IN_FLIGHT)
    start_connect();
}

static void start_connect(void) {
  client *c;
  if (next_connect == CONNS)
    return;
  c = &clients[next_connect++];
  ck_assert_asock(asock_tcp_create(&c->sock, tu_loop), 0);
  ck_assert_asock(asock_op_acquire(tu_pool, &c->op), 0);
  ck_assert_asock(asock_op_acquire(tu_pool, &c->rop), 0);
  ck_assert_asock(asock_op_set_callback(c->op, client_cb), 0);
  ck_assert_asock(asock_op_set_callback(c->rop, client_rcb), 0);
  ck_assert_asock(asock_op_set_user_data(c->op, c), 0);
  ck_assert_asock(asock_op_set_user_data(c->rop, c), 0);
  ck_assert_asock(asock_op_set_remote(c->op, (struct sockaddr *)&listen_addr),
                  0);
  ck_assert_asock(tu_connect(c->sock, c->op), ASOCK_PENDING);
}

static int all_connected(const void *arg) {
  (void)arg;
  return (connected == CONNS && accepted == CONNS) || client_errors > 0;
}

static int all_verified(const void *arg) {
  (void)arg;
  return (verified == CONNS && server_eofs == CONNS) || client_errors > 0 ||
         server_errors > 0;
}

static int echo_ops_gone(const void *arg) {
  (void)arg;
  return echo_alive == 0;
}

static void on_closed(uv_handle_t *handle) {
  (void)handle;
  handles_closed++;
}

START_TEST(five_thousand_connections_on_a_small_pool) {
  asock_pool_config config;
  asock_pool_stats st;
  asock_op *aops[ACCEPTS];
  int len = (int)sizeof(listen_addr);
  int i;

  asock_pool_config_init(&config);
  config.slice_size = 1024;
  config.slice_count = SLICES;
  config.op_count = CONNS * (2 + ECHO_OPS) + ACCEPTS + 16;
  config.socket_quota = QUOTA;
  tu_setup_with(&config);
  clients = calloc(CONNS, sizeof(*clients));
  servers = calloc(CONNS, sizeof(*servers));
  pattern = malloc((size_t)CONNS * PER_CONN);
  batch[0] = malloc(sizeof(asock_op *) * CONNS * ECHO_OPS);
  batch[1] = malloc(sizeof(asock_op *) * CONNS * ECHO_OPS);
  ck_assert(clients && servers && pattern && batch[0] && batch[1]);
  tu_fill(pattern, (size_t)CONNS * PER_CONN, 77, 0);
  ck_assert_int_eq(uv_check_init(asock_loop_uv(tu_loop), &check), 0);
  ck_assert_int_eq(uv_check_start(&check, check_cb), 0);
  ck_assert_int_eq(uv_idle_init(asock_loop_uv(tu_loop), &idle), 0);

  tu_addr("127.0.0.1", 0, &listen_addr);
  ck_assert_asock(asock_tcp_create(&listener, tu_loop), 0);
  ck_assert_asock(
      asock_tcp_listen(listener, (struct sockaddr *)&listen_addr, 1024, 0), 0);
  ck_assert_asock(asock_socket_local_address(
                      listener, (struct sockaddr *)&listen_addr, &len),
                  0);
  for (i = 0; i < ACCEPTS; i++) {
    ck_assert_asock(asock_op_acquire(tu_pool, &aops[i]), 0);
    ck_assert_asock(asock_op_set_callback(aops[i], accept_cb), 0);
    accept_step(aops[i], tu_accept(listener, aops[i]));
  }

  /* Every connection open at once. */
  refill();
  ck_assert_msg(tu_run_until(all_connected, NULL, 60000),
                "%d connected, %d accepted", connected, accepted);
  ck_assert_int_eq(client_errors, 0);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);

  /* Every connection sends at once. */
  for (i = 0; i < CONNS; i++)
    client_start_data(&clients[i]);
  ck_assert_msg(tu_run_until(all_verified, NULL, 60000),
                "%d verified, %d server EOFs, errors: client %d (%s), "
                "server %d (%s)",
                verified, server_eofs, client_errors,
                asock_err_name(client_last_error), server_errors,
                asock_err_name(server_last_error));
  ck_assert_int_eq(client_errors, 0);
  ck_assert_int_eq(server_errors, 0);
  ck_assert_int_eq(closed_clients, CONNS);
  ck_assert_uint_eq(echoed, (uint64_t)CONNS * PER_CONN);
  for (i = 0; i < CONNS; i++)
    ck_assert_uint_eq(clients[i].got, PER_CONN);
  ck_assert_int_eq(quota_exceeded, 0);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  /* The pool ran dry, and the receives waited instead of failing. On the
   * io_uring backend the kernel's provided buffers run dry first, and
   * receives wait for those. */
  if (tu_lent(tu_loop) == 0)
    ck_assert_uint_eq(st.slices_high_water, SLICES);
  else
    ck_assert_uint_le(st.slices_high_water, SLICES);
  /* The echo ops left on each closed server socket end canceled. */
  ck_assert(tu_run_until(echo_ops_gone, NULL, 10000));

  /* Clean up: the remaining echo ops end when the loop closes them. */
  for (i = 0; i < ACCEPTS; i++)
    if (asock_op_is_pending(aops[i]))
      ck_assert_asock(tu_cancel(aops[i]), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
  uv_close((uv_handle_t *)&check, on_closed);
  uv_close((uv_handle_t *)&idle, on_closed);
  ck_assert(tu_wait_count(&handles_closed, 2));
  for (i = 0; i < ACCEPTS; i++)
    ck_assert_asock(asock_op_release(tu_pool, aops[i]), 0);
  for (i = 0; i < CONNS; i++) {
    ck_assert_int_eq(servers[i].alive, 0);
    ck_assert_asock(asock_op_release(tu_pool, clients[i].op), 0);
    ck_assert_asock(asock_op_release(tu_pool, clients[i].rop), 0);
  }
  free(clients);
  free(servers);
  free(pattern);
  free(batch[0]);
  free(batch[1]);
}
END_TEST

/* ---- random sizes -------------------------------------------------------- */

#define MESSAGES 40

static uint32_t rng_state = 12345;

static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

START_TEST(random_sizes_from_one_byte_to_one_mib) {
  asock_pool_config config;
  static size_t sizes[MESSAGES];
  unsigned char *out, *in;
  size_t total = 0, got = 0, off = 0;
  asock_op *ops[MESSAGES], *r, *d;
  tu_pair p;
  int i, rr;

  asock_pool_config_init(&config);
  config.slice_size = 16384;
  config.slice_count = 64;
  config.op_count = 128;
  tu_setup_with(&config);
  for (i = 0; i < MESSAGES; i++) {
    uint32_t bits = rng() % 21;
    sizes[i] = 1 + (rng() & ((1u << bits) - 1));
  }
  sizes[0] = 1;
  sizes[1] = 1 << 20;
  sizes[MESSAGES - 1] = 1;
  for (i = 0; i < MESSAGES; i++)
    total += sizes[i];
  out = malloc(total);
  in = malloc(total);
  ck_assert(out != NULL && in != NULL);
  tu_fill(out, total, 21, 0);

  tu_pair_open(&p, "127.0.0.1");
  tu_echo_start(p.server);
  r = tu_op();
  d = tu_op();
  /* All messages posted back to back; most queue behind the big one. */
  for (i = 0; i < MESSAGES; i++) {
    ops[i] = tu_op();
    ck_assert_asock(asock_op_set_buffer(ops[i], out, total, off, sizes[i]), 0);
    rr = tu_send(p.client, ops[i]);
    ck_assert_msg(rr == 0 || rr == ASOCK_PENDING, "message %d: %s", i,
                  asock_err_name(rr));
    off += sizes[i];
  }
  /* Read it all back through windows of random sizes. */
  while (got < total) {
    size_t want = 1 + rng() % 65536;
    if (want > total - got)
      want = total - got;
    ck_assert_asock(asock_op_set_buffer(r, in, total, got, want), 0);
    rr = tu_receive(p.client, r);
    ck_assert_msg(rr == 0 || rr == ASOCK_PENDING, "%s", asock_err_name(rr));
    if (rr == ASOCK_PENDING)
      ck_assert_msg(tu_wait_idle(r), "stuck after %llu of %llu bytes",
                    (unsigned long long)got, (unsigned long long)total);
    ck_assert_asock(asock_op_status(r), 0);
    ck_assert_uint_gt(asock_op_bytes(r), 0);
    got += asock_op_bytes(r);
  }
  ck_assert_uint_eq(got, total);
  ck_assert_uint_eq(tu_mismatch(in, total, 21, 0), total);
  for (i = 0; i < MESSAGES; i++) {
    ck_assert(tu_wait_idle(ops[i]));
    ck_assert_asock(asock_op_status(ops[i]), 0);
    ck_assert_uint_eq(asock_op_bytes(ops[i]), sizes[i]);
    ck_assert_int_le(tu_rec(ops[i])->calls, 1);
    if (i > 0 && tu_rec(ops[i])->calls == 1 && tu_rec(ops[i - 1])->calls == 1)
      ck_assert_int_lt(tu_rec(ops[i - 1])->order, tu_rec(ops[i])->order);
  }
  ck_assert_asock(tu_disconnect(p.client, d), ASOCK_PENDING);
  ck_assert(tu_wait_calls(d, 1));
  ck_assert(tu_wait_count(&tu_echo.ended, 1));
  ck_assert_int_eq(tu_echo.eof, 1);
  ck_assert_uint_eq(tu_echo.bytes, total);
  ck_assert_asock(tu_close(p.client, 0), 0);
  free(out);
  free(in);
}
END_TEST

/* ---- no allocation per message ------------------------------------------- */

static unsigned long uv_calls;

static void *uv_count_malloc(size_t size) {
  uv_calls++;
  return malloc(size);
}

static void *uv_count_realloc(void *ptr, size_t size) {
  uv_calls++;
  return realloc(ptr, size);
}

static void *uv_count_calloc(size_t count, size_t size) {
  uv_calls++;
  return calloc(count, size);
}

static void uv_count_free(void *ptr) { free(ptr); }

#define ROUND_BYTES 64

static tu_pair zp;
static asock_op *zsend, *zrecv;
static unsigned char zout[ROUND_BYTES], zin[ROUND_BYTES];
static size_t zgot;
static int zsent, zrounds, ztarget, zerrors;

static void round_start(void);

static void round_maybe_done(void) {
  if (zgot < ROUND_BYTES || !zsent)
    return;
  if (memcmp(zin, zout, ROUND_BYTES) != 0)
    zerrors++;
  zrounds++;
  if (zrounds < ztarget)
    round_start();
}

static void round_receive(int r) {
  while (r == 0) {
    if (asock_op_status(zrecv) != 0) {
      zerrors++;
      return;
    }
    zgot += asock_op_bytes(zrecv);
    if (zgot == ROUND_BYTES) {
      round_maybe_done();
      return;
    }
    ck_assert_asock(asock_op_set_range(zrecv, zgot, ROUND_BYTES - zgot), 0);
    r = tu_receive(zp.client, zrecv);
  }
  if (r != ASOCK_PENDING)
    zerrors++;
}

static void round_start(void) {
  int r;
  tu_fill(zout, ROUND_BYTES, (uint32_t)zrounds, 0);
  zgot = 0;
  zsent = 0;
  r = tu_send(zp.client, zsend);
  if (r == 0 && asock_op_status(zsend) == 0)
    zsent = 1;
  else if (r != ASOCK_PENDING)
    zerrors++;
  ck_assert_asock(asock_op_set_buffer(zrecv, zin, ROUND_BYTES, 0, ROUND_BYTES),
                  0);
  round_receive(tu_receive(zp.client, zrecv));
}

static void zsend_cb(asock_op *op) {
  tu_note(op);
  if (asock_op_status(op) != 0) {
    zerrors++;
    return;
  }
  zsent = 1;
  round_maybe_done();
}

static void zrecv_cb(asock_op *op) {
  tu_note(op);
  round_receive(0);
}

static int rounds_reached(const void *arg) {
  (void)arg;
  return zrounds >= ztarget || zerrors > 0;
}

/* 1 if this test runs in a process of its own, forked by check. */
static int forked(void) {
#ifdef _WIN32
  return 0; /* check cannot fork there */
#else
  const char *fork_mode = getenv("CK_FORK");
  return fork_mode == NULL || strcmp(fork_mode, "no") != 0;
#endif
}

START_TEST(steady_echo_makes_no_allocations) {
  asock_pool_config config;
  unsigned long asock_before, uv_before;
  if (!forked()) {
    fprintf(stderr, "tcp_stress: steady_echo_makes_no_allocations skipped: "
                    "uv_replace_allocator() must come before any libuv use "
                    "in the process, which only a test check forks can "
                    "ensure (CK_FORK=no, or Windows)\n");
    return;
  }
  ck_assert_int_eq(uv_replace_allocator(uv_count_malloc, uv_count_realloc,
                                        uv_count_calloc, uv_count_free),
                   0);
  /* tu_setup_with() installs the counting allocator for asock. */
  asock_pool_config_init(&config);
  config.slice_size = 4096;
  config.slice_count = 16;
  config.op_count = 32;
  tu_setup_with(&config);
  tu_pair_open(&zp, "127.0.0.1");
  tu_echo_start(zp.server);
  zsend = tu_op();
  zrecv = tu_op();
  ck_assert_asock(asock_op_set_callback(zsend, zsend_cb), 0);
  ck_assert_asock(asock_op_set_callback(zrecv, zrecv_cb), 0);
  tu_set_buffer(zsend, zout, ROUND_BYTES);

  /* Both counters are wired: setting up allocated through each. */
  ck_assert_uint_gt(uv_calls, 0);
  ck_assert_uint_gt(asock_test_alloc_calls, 0);
  /* Warm up: the first messages may size things once. */
  ztarget = 200;
  round_start();
  ck_assert(tu_run_until(rounds_reached, NULL, 30000));
  ck_assert_int_eq(zerrors, 0);
  ck_assert_int_eq(zrounds, 200);

  asock_before = asock_test_alloc_calls;
  uv_before = uv_calls;
  ztarget = 2200;
  round_start();
  ck_assert(tu_run_until(rounds_reached, NULL, 60000));
  ck_assert_int_eq(zerrors, 0);
  ck_assert_int_eq(zrounds, 2200);
  ck_assert_msg(asock_test_alloc_calls == asock_before,
                "asock allocated %lu times in 2000 round trips",
                asock_test_alloc_calls - asock_before);
  ck_assert_msg(uv_calls == uv_before,
                "libuv allocated %lu times in 2000 round trips",
                uv_calls - uv_before);
  ck_assert_uint_eq(tu_echo.bytes, 2200u * ROUND_BYTES);
  ck_assert_int_eq(tu_echo.errors, 0);
}
END_TEST

Suite *asock_test_suite_tcp_stress(void) {
  Suite *s = suite_create("tcp_stress");
  TCase *tc = tcase_create("tcp_stress");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  /* Each test shapes its own pool; the teardown is shared. */
  tcase_add_checked_fixture(tc, NULL, tu_teardown);
  tcase_add_test(tc, five_thousand_connections_on_a_small_pool);
  tcase_add_test(tc, random_sizes_from_one_byte_to_one_mib);
  tcase_add_test(tc, steady_echo_makes_no_allocations);
  suite_add_tcase(s, tc);
  return s;
}
