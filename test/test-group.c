/* Loop groups: loops on threads of their own, a listener that spreads
 * connections over them (balanced by the kernel or handed over), tasks
 * posted to a loop, operations started from many threads at once, and a
 * stop with operations in flight. The clients run on the test's own loop,
 * on the test's thread. */
#include <string.h>

#include "internal.h"
#include "tcp-util.h"
#include "test.h"

enum { CONNS = 32, LOOPS = 2 };

static asock_pool *pool;
static asock_loop *client_loop; /* the test thread's */
static asock_group *group;

/* What the server side saw, written on the group's threads. */
static asock__atomic_u32 served;        /* connections handed to on_conn */
static asock__atomic_u32 wrong_thread;  /* callbacks off their loop */
static asock__atomic_u32 echo_ends;     /* server ops finished */
static asock__atomic_u32 ends_canceled; /* of which with ASOCK_ECANCELED */
static asock__atomic_u32 ends_eof;      /* of which with ASOCK_EOF */
/* The argument on_conn() expects: a plain object, as the counters above may
 * be volatile (the Interlocked atomics). */
static char listen_arg;

static void setup(void) {
  asock_pool_config cfg;
  asock_pool_config_init(&cfg);
  cfg.slice_size = 4096;
  cfg.slice_count = 256;
  cfg.op_count = 512;
  ck_assert_asock(asock_pool_create(&pool, &cfg), 0);
  ck_assert_asock(asock_loop_create(&client_loop, pool, NULL), 0);
  group = NULL;
  asock__store_u32(&served, 0);
  asock__store_u32(&wrong_thread, 0);
  asock__store_u32(&echo_ends, 0);
  asock__store_u32(&ends_canceled, 0);
  asock__store_u32(&ends_eof, 0);
}

static void teardown(void) {
  asock_pool_stats st;
  if (group != NULL)
    ck_assert_asock(asock_group_destroy(group), 0);
  ck_assert_asock(asock_loop_close(client_loop), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.ops_in_use, 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}

/* ---- the server: an echo on every connection a group gives it --------- */

static void end_echo(asock_op *op, int status) {
  asock_socket *sock = asock_op_socket(op);
  if (status == ASOCK_ECANCELED)
    asock__add_u32(&ends_canceled, 1);
  else if (status == ASOCK_EOF)
    asock__add_u32(&ends_eof, 1);
  asock__add_u32(&echo_ends, 1);
  if (sock != NULL)
    asock_socket_close(sock, 0);
  asock_op_release(pool, op);
}

static void echo_step(asock_op *op) {
  for (;;) {
    asock_socket *sock = asock_op_socket(op);
    int status = asock_op_status(op);
    int r;
    if (!asock__loop_on_thread(asock_socket_loop(sock)))
      asock__add_u32(&wrong_thread, 1);
    if (status != 0) {
      end_echo(op, status);
      return;
    }
    r = asock_op_last_kind(op) == ASOCK_OP_RECEIVE ? asock_send(sock, op)
                                                   : asock_receive(sock, op);
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      end_echo(op, r);
      return;
    }
  }
}

static void on_conn(asock_group *g, asock_socket *conn, void *arg) {
  asock_op *op;
  int r;

  ck_assert_ptr_eq(g, group);
  ck_assert_ptr_eq(arg, &listen_arg);
  if (!asock__loop_on_thread(asock_socket_loop(conn)))
    asock__add_u32(&wrong_thread, 1);
  asock__add_u32(&served, 1);
  if (asock_op_acquire(pool, &op) != 0) {
    asock_socket_close(conn, ASOCK_CLOSE_ABORT);
    return;
  }
  asock_op_set_callback(op, echo_step);
  r = asock_receive(conn, op);
  if (r == 0)
    echo_step(op);
  else if (r < 0)
    end_echo(op, r);
}

/* ---- the clients, on the test's loop ---------------------------------- */

typedef struct client {
  asock_socket *sock;
  asock_op *op;
  unsigned char out[16];
  unsigned char in[16];
  int calls;
} client;

static client clients[CONNS];

static void on_client(asock_op *op) {
  client *c = asock_op_user_data(op);
  c->calls++;
}

static void run_until_calls(int want) {
  uint64_t deadline = asock__now_ms() + 20000;
  for (;;) {
    int i;
    int done = 0;
    for (i = 0; i < CONNS; i++)
      done += clients[i].calls >= want;
    if (done == CONNS)
      return;
    ck_assert_msg(asock__now_ms() < deadline, "%d of %d clients done", done,
                  CONNS);
    asock_loop_run(client_loop, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
}

static void connect_and_echo(void);

/* The client's 16 bytes sent: inside the call, or on io_uring through the
 * callback (its count of calls stays that of the connect). */
static void send_whole(client *c) {
  uint64_t deadline = asock__now_ms() + 20000;
  int r = asock_send(c->sock, c->op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  if (r == ASOCK_PENDING) {
    while (c->calls < 2) {
      ck_assert_msg(asock__now_ms() < deadline, "the send did not complete");
      asock_loop_run(client_loop, UV_RUN_NOWAIT);
      uv_sleep(1);
    }
    c->calls = 1;
  }
  ck_assert_asock(asock_op_status(c->op), 0);
  ck_assert_uint_eq(asock_op_bytes(c->op), 16);
}

/* A group of LOOPS loops listening on a loopback port with on_conn, its
 * clients connected, each having echoed 16 bytes. */
static void serve_echoed(unsigned int listen_flags) {
  struct sockaddr_in addr;

  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_group_create(&group, pool, LOOPS), 0);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 128,
                                     listen_flags, on_conn, &listen_arg),
                  0);
  connect_and_echo();
}

/* Connects every client and echoes 16 bytes over each. */
static void connect_and_echo(void) {
  struct sockaddr_storage addr;
  int i;

  ck_assert_asock(asock_group_local_address(group, &addr), 0);
  for (i = 0; i < CONNS; i++) {
    client *c = &clients[i];
    memset(c, 0, sizeof(*c));
    ck_assert_asock(asock_tcp_create(&c->sock, client_loop), 0);
    ck_assert_asock(asock_op_acquire(pool, &c->op), 0);
    asock_op_set_callback(c->op, on_client);
    asock_op_set_user_data(c->op, c);
    ck_assert_asock(asock_op_set_remote(c->op, (struct sockaddr *)&addr), 0);
    ck_assert_asock(asock_connect(c->sock, c->op), ASOCK_PENDING);
  }
  run_until_calls(1);
  for (i = 0; i < CONNS; i++) {
    client *c = &clients[i];
    ck_assert_asock(asock_op_status(c->op), 0);
    memset(c->out, 'a' + i % 26, sizeof(c->out));
    c->out[0] = (unsigned char)i;
    ck_assert_asock(asock_op_set_buffer(c->op, c->out, 16, 0, 16), 0);
    send_whole(c);
    ck_assert_asock(asock_op_set_buffer(c->op, c->in, 16, 0, 16), 0);
    ck_assert_int_ge(asock_receive(c->sock, c->op), 0);
    if (!asock_op_is_pending(c->op))
      c->calls++;
  }
  run_until_calls(2);
  for (i = 0; i < CONNS; i++) {
    client *c = &clients[i];
    ck_assert_asock(asock_op_status(c->op), 0);
    /* Segments of 16 bytes on loopback arrive whole. */
    ck_assert_uint_eq(asock_op_bytes(c->op), 16);
    ck_assert_int_eq(memcmp(c->in, c->out, 16), 0);
  }
}

static void close_clients(void) {
  int i;
  for (i = 0; i < CONNS; i++) {
    ck_assert_asock(asock_socket_close(clients[i].sock, 0), 0);
    ck_assert_asock(asock_op_clear_buffer(clients[i].op), 0);
    ck_assert_asock(asock_op_release(pool, clients[i].op), 0);
  }
}

START_TEST(group_refuses_bad_input) {
  struct sockaddr_in addr;
  struct sockaddr_storage got;

  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_group_create(NULL, pool, 2), ASOCK_EINVAL);
  ck_assert_asock(asock_group_create(&group, NULL, 2), ASOCK_EINVAL);
  ck_assert_ptr_null(group);
  ck_assert_asock(asock_group_create(&group, pool, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_group_create(&group, pool, 257), ASOCK_EINVAL);
  ck_assert_asock(asock_group_create(&group, pool, LOOPS), 0);
  ck_assert_uint_eq(asock_group_size(group), LOOPS);
  ck_assert_uint_eq(asock_group_size(NULL), 0);
  ck_assert_ptr_nonnull(asock_group_loop(group, 0));
  ck_assert_ptr_nonnull(asock_group_loop(group, 1));
  ck_assert_ptr_ne(asock_group_loop(group, 0), asock_group_loop(group, 1));
  ck_assert_ptr_null(asock_group_loop(group, LOOPS));
  /* The loops belong to their threads, not to this one. */
  {
    asock_socket *s;
    ck_assert_asock(asock_tcp_create(&s, asock_group_loop(group, 0)),
                    ASOCK_ETHREAD);
  }
  ck_assert_asock(asock_group_local_address(group, &got), ASOCK_ENOTCONN);
  ck_assert_asock(asock_group_listen(group, NULL, 16, 0, on_conn, &listen_arg),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 16, 0,
                                     NULL, &listen_arg),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 16,
                                     0x8000, on_conn, &listen_arg),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 16, 0,
                                     on_conn, &listen_arg),
                  0);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 16, 0,
                                     on_conn, &listen_arg),
                  ASOCK_EKIND);
  ck_assert_asock(asock_group_local_address(group, &got), 0);
  ck_assert_int_eq(got.ss_family, AF_INET);
  ck_assert_uint_ne(((struct sockaddr_in *)&got)->sin_port, 0);
  ck_assert_asock(asock_group_stop(group, 0), 0);
  ck_assert_asock(asock_group_stop(group, 0), ASOCK_ECLOSED);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 16, 0,
                                     on_conn, &listen_arg),
                  ASOCK_ECLOSED);
  ck_assert_asock(asock_group_stop(NULL, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_group_destroy(NULL), ASOCK_EINVAL);
}
END_TEST

/* Connections spread over the loops, each served on its own loop's
 * thread: by the kernel (Linux) or handed over in turn. */
static void spread(unsigned int flags) {
  uint64_t per_loop[LOOPS];
  unsigned int i;

  serve_echoed(flags);
  ck_assert_uint_eq(asock__load_u32(&served), CONNS);
  ck_assert_uint_eq(asock__load_u32(&wrong_thread), 0);
  for (i = 0; i < LOOPS; i++)
    per_loop[i] = asock_group_accepted(group, i);
  ck_assert_uint_eq(per_loop[0] + per_loop[1], CONNS);
  if ((flags & ASOCK_GROUP_HANDOFF) || !ASOCK__REUSEPORT_BALANCES) {
    /* In turn: exactly half each. */
    ck_assert_uint_eq(per_loop[0], CONNS / 2);
    ck_assert_uint_eq(per_loop[1], CONNS / 2);
  } else {
    /* The kernel hashes each connection's ports: all 32 on one loop has
     * odds of 2^-31. */
    ck_assert_uint_gt(per_loop[0], 0);
    ck_assert_uint_gt(per_loop[1], 0);
  }
  /* The clients leave: every server op ends with the end of its stream. */
  close_clients();
  {
    uint64_t deadline = asock__now_ms() + 20000;
    while (asock__load_u32(&echo_ends) < CONNS) {
      ck_assert(asock__now_ms() < deadline);
      asock_loop_run(client_loop, UV_RUN_NOWAIT);
      uv_sleep(1);
    }
  }
  ck_assert_uint_eq(asock__load_u32(&ends_eof), CONNS);
  ck_assert_asock(asock_group_stop(group, 0), 0);
  ck_assert_uint_eq(asock__load_u32(&echo_ends), CONNS);
}

START_TEST(group_spreads_connections) { spread(0); }
END_TEST

START_TEST(group_hands_connections_over) { spread(ASOCK_GROUP_HANDOFF); }
END_TEST

/* A stop with a receive pending on every connection: each completes with
 * ASOCK_ECANCELED, exactly once, and the threads are gone after. */
START_TEST(group_stop_cancels_what_waits) {
  serve_echoed(0);
  /* Each server op now waits in a receive. */
  ck_assert_asock(asock_group_stop(group, 0), 0);
  ck_assert_uint_eq(asock__load_u32(&echo_ends), CONNS);
  ck_assert_uint_eq(asock__load_u32(&ends_canceled), CONNS);
  ck_assert_uint_eq(asock__load_u32(&wrong_thread), 0);
  close_clients();
}
END_TEST

/* With a grace period, connections that end meanwhile end normally. */
typedef struct stopper {
  uv_thread_t thread;
  int result;
  asock__atomic_u32 returned;
} stopper;

static void stop_slowly(void *arg) {
  stopper *s = arg;
  s->result = asock_group_stop(group, 60000);
  asock__store_u32(&s->returned, 1);
}

START_TEST(group_stop_lets_connections_finish) {
  static stopper s;
  uint64_t deadline;

  serve_echoed(0);
  asock__store_u32(&s.returned, 0);
  ck_assert_int_eq(uv_thread_create(&s.thread, stop_slowly, &s), 0);
  /* The clients close during the grace period: the server sees the end of
   * each stream, and the loops stop once their sockets are gone, long
   * before the minute is up. */
  close_clients();
  deadline = asock__now_ms() + 30000;
  while (!asock__load_u32(&s.returned)) {
    ck_assert_msg(asock__now_ms() < deadline, "the grace period was waited");
    asock_loop_run(client_loop, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
  ck_assert_int_eq(uv_thread_join(&s.thread), 0);
  ck_assert_asock(s.result, 0);
  ck_assert_uint_eq(asock__load_u32(&echo_ends), CONNS);
  ck_assert_uint_eq(asock__load_u32(&ends_eof), CONNS);
  ck_assert_uint_eq(asock__load_u32(&ends_canceled), 0);
}
END_TEST

/* ---- tasks -------------------------------------------------------------- */

typedef struct probe {
  asock_task task;
  int order;
  int on_thread;
} probe;

static asock__atomic_u32 task_runs;

static void run_probe(asock_loop *loop, asock_task *task) {
  probe *p = task->data;
  p->on_thread = asock__loop_on_thread(loop);
  p->order = (int)asock__add_u32(&task_runs, 1) + 1;
}

START_TEST(tasks_run_on_the_loop_in_order) {
  static probe p[8];
  uint64_t deadline;
  int i;

  asock__store_u32(&task_runs, 0);
  ck_assert_asock(asock_group_create(&group, pool, 1), 0);
  ck_assert_asock(asock_loop_post(NULL, &p[0].task), ASOCK_EINVAL);
  ck_assert_asock(asock_loop_post(asock_group_loop(group, 0), NULL),
                  ASOCK_EINVAL);
  memset(p, 0, sizeof(p));
  ck_assert_asock(asock_loop_post(asock_group_loop(group, 0), &p[0].task),
                  ASOCK_EINVAL);
  for (i = 0; i < 8; i++) {
    p[i].task.fn = run_probe;
    p[i].task.data = &p[i];
    ck_assert_asock(asock_loop_post(asock_group_loop(group, 0), &p[i].task), 0);
  }
  deadline = asock__now_ms() + 20000;
  while (asock__load_u32(&task_runs) < 8) {
    ck_assert(asock__now_ms() < deadline);
    uv_sleep(1);
  }
  ck_assert_asock(asock_group_stop(group, 0), 0);
  for (i = 0; i < 8; i++) {
    ck_assert_int_eq(p[i].order, i + 1);
    ck_assert_int_eq(p[i].on_thread, 1);
  }
  /* A task posted to a loop that closes before it runs runs then. */
  {
    asock_loop *own;
    probe q;
    memset(&q, 0, sizeof(q));
    q.task.fn = run_probe;
    q.task.data = &q;
    ck_assert_asock(asock_loop_create(&own, pool, NULL), 0);
    ck_assert_asock(asock_loop_post(own, &q.task), 0);
    ck_assert_int_eq(q.order, 0);
    ck_assert_asock(asock_loop_close(own), 0);
    ck_assert_int_eq(q.order, 9);
  }
}
END_TEST

/* ---- starts from many threads at once --------------------------------- */

enum { SENDERS = 4, PER_SENDER = 64 };

typedef struct sender {
  uv_thread_t thread;
  asock_socket *sock;
  asock_op *ops[PER_SENDER];
  uint32_t records[PER_SENDER][2]; /* sender, index */
  int results[PER_SENDER];
} sender;

static sender senders[SENDERS];
static asock__atomic_u32 sends_done;

static void on_sent(asock_op *op) {
  (void)op;
  asock__add_u32(&sends_done, 1);
}

static void send_all(void *arg) {
  sender *s = arg;
  int i;
  for (i = 0; i < PER_SENDER; i++)
    s->results[i] = asock_send(s->sock, s->ops[i]);
}

/* The server's end of one connection, read on the test's loop. */
static asock_socket *accepted_conn;
static void keep_conn(asock_group *g, asock_socket *conn, void *arg) {
  (void)g;
  (void)arg;
  accepted_conn = conn;
  asock__add_u32(&served, 1);
}

START_TEST(sends_from_many_threads_keep_each_order) {
  static unsigned char stream[SENDERS * PER_SENDER * 8];
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  asock_socket *reader;
  asock_op *op;
  asock_op *rop;
  size_t have = 0;
  uint64_t deadline;
  uint32_t next[SENDERS] = {0};
  int i;
  int j;

  /* The sending end lives on a group loop; the receiving end is a client
   * of the test's loop. */
  uv_ip4_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_group_create(&group, pool, 1), 0);
  ck_assert_asock(asock_group_listen(group, (struct sockaddr *)&addr, 16, 0,
                                     keep_conn, NULL),
                  0);
  ck_assert_asock(asock_group_local_address(group, &bound), 0);
  ck_assert_asock(asock_tcp_create(&reader, client_loop), 0);
  ck_assert_asock(asock_op_acquire(pool, &rop), 0);
  ck_assert_asock(asock_op_set_remote(rop, (struct sockaddr *)&bound), 0);
  ck_assert_asock(asock_connect(reader, rop), ASOCK_PENDING);
  deadline = asock__now_ms() + 20000;
  while (asock__load_u32(&served) == 0 || asock_op_is_pending(rop)) {
    ck_assert(asock__now_ms() < deadline);
    asock_loop_run(client_loop, UV_RUN_NOWAIT);
    uv_sleep(1);
  }
  ck_assert_asock(asock_op_status(rop), 0);

  asock__store_u32(&sends_done, 0);
  for (i = 0; i < SENDERS; i++) {
    sender *s = &senders[i];
    s->sock = accepted_conn;
    for (j = 0; j < PER_SENDER; j++) {
      s->records[j][0] = (uint32_t)i;
      s->records[j][1] = (uint32_t)j;
      ck_assert_asock(asock_op_acquire(pool, &op), 0);
      asock_op_set_callback(op, on_sent);
      ck_assert_asock(asock_op_set_buffer(op, s->records[j], 8, 0, 8), 0);
      s->ops[j] = op;
    }
  }
  for (i = 0; i < SENDERS; i++)
    ck_assert_int_eq(
        uv_thread_create(&senders[i].thread, send_all, &senders[i]), 0);
  for (i = 0; i < SENDERS; i++)
    ck_assert_int_eq(uv_thread_join(&senders[i].thread), 0);

  /* Read everything: each sender's records arrive in its own order. */
  ck_assert_asock(
      asock_op_set_buffer(rop, stream, sizeof(stream), 0, sizeof(stream)), 0);
  deadline = asock__now_ms() + 20000;
  while (have < sizeof(stream)) {
    int r;
    ck_assert(asock__now_ms() < deadline);
    ck_assert_asock(asock_op_set_range(rop, have, sizeof(stream) - have), 0);
    r = asock_receive(reader, rop);
    while (r == ASOCK_PENDING && asock_op_is_pending(rop)) {
      ck_assert(asock__now_ms() < deadline);
      asock_loop_run(client_loop, UV_RUN_NOWAIT);
    }
    ck_assert_asock(asock_op_status(rop), 0);
    have += asock_op_bytes(rop);
  }
  for (i = 0; i < SENDERS * PER_SENDER; i++) {
    uint32_t rec[2];
    memcpy(rec, stream + (size_t)i * 8, 8);
    ck_assert_uint_lt(rec[0], SENDERS);
    ck_assert_uint_eq(rec[1], next[rec[0]]);
    next[rec[0]]++;
  }
  while (asock__load_u32(&sends_done) < SENDERS * PER_SENDER) {
    ck_assert(asock__now_ms() < deadline);
    uv_sleep(1);
  }
  for (i = 0; i < SENDERS; i++) {
    ck_assert_uint_eq(next[i], PER_SENDER);
    for (j = 0; j < PER_SENDER; j++) {
      ck_assert_asock(senders[i].results[j], ASOCK_PENDING);
      ck_assert_asock(asock_op_status(senders[i].ops[j]), 0);
      ck_assert_uint_eq(asock_op_bytes(senders[i].ops[j]), 8);
      if (j > 0)
        ck_assert_uint_gt(asock_op_seq(senders[i].ops[j]),
                          asock_op_seq(senders[i].ops[j - 1]));
      ck_assert_asock(asock_op_release(pool, senders[i].ops[j]), 0);
    }
  }
  ck_assert_asock(asock_group_stop(group, 0), 0);
  ck_assert_asock(asock_socket_close(reader, 0), 0);
  ck_assert_asock(asock_op_clear_buffer(rop), 0);
  ck_assert_asock(asock_op_release(pool, rop), 0);
}
END_TEST

/* ---- the hand-off listener, on the test's loop ------------------------- */

/* A listener as a group's first loop makes it when it hands connections
 * over, on 127.0.0.1, port 0. */
static asock_socket *handoff_listen(struct sockaddr_storage *addr) {
  asock_socket *listener;
  int len = (int)sizeof(*addr);

  tu_addr("127.0.0.1", 0, addr);
  ck_assert_asock(asock_tcp_create(&listener, tu_loop), 0);
  ck_assert_asock(asock__tcp_listen(listener, (const struct sockaddr *)addr,
                                    128, ASOCK__LISTEN_HANDOFF),
                  0);
  ck_assert_asock(
      asock_socket_local_address(listener, (struct sockaddr *)addr, &len), 0);
  ck_assert_uint_ne(tu_port(addr), 0);
  return listener;
}

/* A client connected to addr, the connect completed. */
static asock_socket *connected_client(const struct sockaddr_storage *addr) {
  asock_socket *sock;
  asock_op *op = tu_op();

  ck_assert_asock(asock_tcp_create(&sock, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(op, (const struct sockaddr *)addr), 0);
  ck_assert_asock(tu_connect(sock, op), ASOCK_PENDING);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(asock_op_status(op), 0);
  return sock;
}

/* Takes the next connection with a raw accept, waiting for it if need be:
 * no socket is made, op->conn holds the connection. */
static uintptr_t raw_accept(asock_socket *listener, asock_op *op) {
  int calls = tu_rec(op)->calls;
  int r;

  op->flags |= ASOCK__OPF_RAW_ACCEPT;
  r = tu_accept(listener, op);
  ck_assert_int_ge(r, 0);
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(op, calls + 1));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_ptr_null(asock_op_accepted(op));
  op->flags &= ~ASOCK__OPF_RAW_ACCEPT;
  return op->conn;
}

/* What a group does with the connections of its hand-off listener: a raw
 * accept takes one without making a socket; a loop adopts it (on Windows
 * an OS socket in no completion port yet, opened into the adopting loop's)
 * and it carries bytes both ways; one that cannot be handed over is
 * dropped, and its peer reads the end of the stream. An ordinary accept on
 * the same listener still makes a socket. */
START_TEST(handoff_listener_adopts_and_drops) {
  struct sockaddr_storage addr;
  asock_socket *listener = handoff_listen(&addr);
  asock_socket *c1, *c2, *c3, *s1, *s3;
  asock_op *aop = tu_op();
  size_t got;
  char c;

  /* Posted before the connection comes: it waits. */
  aop->flags |= ASOCK__OPF_RAW_ACCEPT;
  ck_assert_asock(tu_accept(listener, aop), ASOCK_PENDING);
  c1 = connected_client(&addr);
  ck_assert(tu_wait_calls(aop, 1));
  ck_assert_asock(asock_op_status(aop), 0);
  ck_assert_ptr_null(asock_op_accepted(aop));
  aop->flags &= ~ASOCK__OPF_RAW_ACCEPT;
  ck_assert_asock(asock__socket_new(tu_loop, sizeof(asock_socket), 0, &s1), 0);
  ck_assert_asock(asock__io_adopt(NULL, s1, aop->conn), 0);
  asock__socket_set_stage(s1, ASOCK__STAGE_CONNECTED);
  tu_send_all(c1, "x", 1);
  tu_recv_exact(s1, &c, 1);
  ck_assert_int_eq(c, 'x');
  tu_send_all(s1, "y", 1);
  tu_recv_exact(c1, &c, 1);
  ck_assert_int_eq(c, 'y');

  c2 = connected_client(&addr);
  asock__io_drop(raw_accept(listener, aop));
  ck_assert_asock(tu_recv_to_end(c2, 0, 0, 16, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, 0);

  c3 = connected_client(&addr);
  s3 = tu_accept_done(listener, aop);
  ck_assert_ptr_nonnull(asock_op_remote(aop));
  tu_send_all(c3, "z", 1);
  tu_recv_exact(s3, &c, 1);
  ck_assert_int_eq(c, 'z');

  ck_assert_asock(tu_close(s1, 0), 0);
  ck_assert_asock(tu_close(s3, 0), 0);
  ck_assert_asock(tu_close(c1, 0), 0);
  ck_assert_asock(tu_close(c2, 0), 0);
  ck_assert_asock(tu_close(c3, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

/* The port is the hand-off listener's alone, as an ordinary listener's is;
 * closing it cancels the accept that waits and frees the port at once. */
START_TEST(handoff_listener_holds_and_frees_its_port) {
  struct sockaddr_storage addr;
  asock_socket *listener = handoff_listen(&addr);
  asock_socket *other;
  asock_op *aop = tu_op();

  /* A socket whose bind failed is not bound again (libuv keeps the error):
   * each attempt has a socket of its own. */
  ck_assert_asock(asock_tcp_create(&other, tu_loop), 0);
  ck_assert_asock(asock__tcp_listen(other, (const struct sockaddr *)&addr, 16,
                                    ASOCK__LISTEN_HANDOFF),
                  ASOCK_EADDRINUSE);
  ck_assert_asock(tu_close(other, 0), 0);
  ck_assert_asock(asock_tcp_create(&other, tu_loop), 0);
  ck_assert_asock(
      asock_tcp_listen(other, (const struct sockaddr *)&addr, 16, 0),
      ASOCK_EADDRINUSE);
  ck_assert_asock(tu_close(other, 0), 0);
  aop->flags |= ASOCK__OPF_RAW_ACCEPT;
  ck_assert_asock(tu_accept(listener, aop), ASOCK_PENDING);
  ck_assert_asock(tu_close(listener, 0), 0);
  ck_assert(tu_wait_calls(aop, 1));
  ck_assert_asock(asock_op_status(aop), ASOCK_ECANCELED);
  ck_assert_asock(asock_tcp_create(&other, tu_loop), 0);
  ck_assert_asock(
      asock_tcp_listen(other, (const struct sockaddr *)&addr, 16, 0), 0);
  ck_assert_asock(tu_close(other, 0), 0);
}
END_TEST

Suite *asock_test_suite_group(void) {
  Suite *s = suite_create("group");
  TCase *tc = tcase_create("group");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, group_refuses_bad_input);
  tcase_add_test(tc, group_spreads_connections);
  tcase_add_test(tc, group_hands_connections_over);
  tcase_add_test(tc, group_stop_cancels_what_waits);
  tcase_add_test(tc, group_stop_lets_connections_finish);
  tcase_add_test(tc, tasks_run_on_the_loop_in_order);
  tcase_add_test(tc, sends_from_many_threads_keep_each_order);
  suite_add_tcase(s, tc);
  tc = tcase_create("handoff");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, handoff_listener_adopts_and_drops);
  tcase_add_test(tc, handoff_listener_holds_and_frees_its_port);
  suite_add_tcase(s, tc);
  return s;
}
