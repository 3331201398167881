/* guide-basics: the pool, ops, loops, a listener, the three-way return of
 * an operation start and completion ordering; sections 1 to 4 of
 * docs/guide.md quote it.
 *
 * A server receives with one op per connection, buffer-less and one-shot,
 * and keeps each chunk it receives with the receive's sequence number. The
 * client sends five pieces, the loop run between them so that each is a
 * receive of its own, then the end of the stream. Two worker threads then
 * push the chunks into an asock_seq in an order of their own, and the
 * consumer takes them out in the socket's order: the bytes must be the
 * client's, exactly. An asock loop inside an application's own uv_loop_t
 * runs a task beside it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PIECES 5
#define MAX_CHUNKS 16

/* One completed receive, kept for the workers. */
typedef struct chunk {
  uint64_t seq;
  size_t len;
  unsigned char bytes[64];
} chunk;

typedef struct conn {
  chunk chunks[MAX_CHUNKS];
  size_t nchunks;
  size_t received;  /* bytes */
  int end_status;   /* the status the last receive ended with */
  uint64_t end_seq; /* and its number */
  int ended;
} conn;

static asock_loop *loop;     /* owns its uv_loop_t */
static asock_loop *embedded; /* lives in the application's */
static asock_socket *listener;
static conn server_conn; /* the one connection this program serves */

static void on_done(asock_op *op);

/* The pool of a server for 20,000 connections: every receive buffer in one
 * region, allocated here and never again. */
static int create_pool(asock_pool **pool) {
  asock_pool_config cfg;

  asock_pool_config_init(&cfg); /* defaults: 1024 slices of 16 KiB, 1024 ops */
  cfg.slice_size = 16384;
  cfg.slice_count = 4096; /* 64 MiB of receive buffers, in one region */
  cfg.op_count = 20000;   /* one per connection, plus accepts */
  cfg.socket_quota = 8;   /* no socket holds more than 8 slices */
  cfg.flags = ASOCK_POOL_LOCK | ASOCK_POOL_HUGE_PAGES;
  return asock_pool_create(pool, &cfg);
}

/* The op a new connection lives on, carrying the connection. */
static asock_op *connection_op(asock_pool *pool, conn *c) {
  asock_op *op;
  if (asock_op_acquire(pool, &op) != 0)
    return NULL; /* every op is in use: refuse the connection */
  asock_op_set_callback(op, on_done);
  asock_op_set_user_data(op, c);
  return op;
}

/* One asock loop that owns its uv_loop_t, one inside the application's. */
static int create_loops(asock_pool *pool, uv_loop_t *my_uv_loop) {
  int r = asock_loop_create(&loop, pool, NULL); /* asock owns the uv_loop_t */
  if (r == 0)
    r = asock_loop_create(&embedded, pool, my_uv_loop); /* or yours */
  return r;
}

static int listen_on(const struct sockaddr *addr) {
  int r = asock_tcp_create(&listener, loop);
  if (r == 0)
    r = asock_tcp_listen(listener, addr, 1024, 0);
  return r;
}

/* Keeps a completed receive's bytes; returns non-zero once the connection
 * is over (its end of stream, or an error), the op released. */
static int handle(asock_op *op) {
  conn *c = asock_op_user_data(op);
  chunk *ch;

  if (asock_op_status(op) != 0) {
    c->ended = 1;
    c->end_status = asock_op_status(op);
    c->end_seq = asock_op_seq(op);
    asock_socket_close(asock_op_socket(op), 0);
    CHECK_INT(asock_op_release(asock_op_pool(op), op), 0);
    return 1;
  }
  CHECK(c->nchunks < MAX_CHUNKS);
  CHECK(asock_op_bytes(op) <= sizeof(ch->bytes));
  ch = &c->chunks[c->nchunks++];
  ch->seq = asock_op_seq(op);
  ch->len = asock_op_bytes(op);
  memcpy(ch->bytes, asock_op_data(op), ch->len);
  c->received += ch->len;
  return 0;
}

static void end_connection(asock_op *op, int error) {
  conn *c = asock_op_user_data(op);
  c->ended = 1;
  c->end_status = error;
  asock_socket_close(asock_op_socket(op), ASOCK_CLOSE_ABORT);
  asock_op_release(asock_op_pool(op), op);
}

/* Receives until a receive has to wait. What is there at once is handled
 * in this loop, so a run of synchronous completions never recurses. */
static void receive_loop(asock_socket *sock, asock_op *op) {
  int r;
  for (;;) {
    r = asock_receive(sock, op);
    if (r == ASOCK_PENDING)
      return; /* on_done runs later, on the loop thread */
    if (r < 0)
      break; /* did not start; no callback will run */
    /* r == 0: done now, the result is in the op. */
    if (handle(op) != 0)
      return;
  }
  end_connection(op, r);
}

static void on_done(asock_op *op) {
  if (handle(op) == 0)
    receive_loop(asock_op_socket(op), op);
}

static void on_accept(asock_op *accept) {
  asock_op *op;

  do {
    if (asock_op_status(accept) != 0)
      return; /* the listener closed */
    op = connection_op(asock_op_pool(accept), &server_conn);
    CHECK(op != NULL);
    receive_loop(asock_op_accepted(accept), op);
  } while (asock_accept(listener, accept) == 0);
}

/* ---- completions handed to worker threads -------------------------------- */

typedef struct worker_arg {
  asock_seq *order;
  chunk *chunks;
  size_t n;
  size_t first; /* this worker's chunks: first, first + 2, ... */
  int errors;
} worker_arg;

/* The ordering stream of one socket's receives, numbered from 1. */
static int create_order(asock_seq **order) {
  return asock_seq_create(order, 1024, 1); /* a window of 1024 */
}

/* A worker: each chunk it finished goes to the stream under its receive's
 * number, from this thread, in whatever order the work ended. */
static void worker(void *arg) {
  worker_arg *w = arg;
  size_t i;
  for (i = w->first; i < w->n; i += 2) {
    chunk *done = &w->chunks[w->n - 1 - i]; /* here, the last first */
    if (asock_seq_push(w->order, done->seq, done) != 0)
      w->errors++;
  }
}

/* The consumer: takes the chunks out in the socket's order, whichever
 * thread finished them, and appends their bytes to out. */
static size_t consume(asock_seq *order, unsigned char *out) {
  void *item;
  uint64_t n;
  size_t len = 0;

  while (asock_seq_pop(order, &item, &n) == 0) { /* strictly n = 1, 2, ... */
    chunk *ch = item;
    memcpy(out + len, ch->bytes, ch->len);
    len += ch->len;
  }
  return len;
}

static void reorder_through_workers(const unsigned char *sent, size_t len) {
  asock_seq *order;
  uv_thread_t threads[2];
  worker_arg args[2];
  unsigned char out[PIECES * 64];
  size_t i;

  CHECK_INT(create_order(&order), 0);
  for (i = 0; i < 2; i++) {
    args[i].order = order;
    args[i].chunks = server_conn.chunks;
    args[i].n = server_conn.nchunks;
    args[i].first = i;
    args[i].errors = 0;
    CHECK_INT(uv_thread_create(&threads[i], worker, &args[i]), 0);
  }
  for (i = 0; i < 2; i++) {
    CHECK_INT(uv_thread_join(&threads[i]), 0);
    CHECK_INT(args[i].errors, 0);
  }
  CHECK_INT(consume(order, out), len);
  CHECK_MEM(out, sent, len);
  CHECK_INT(asock_seq_next(order), server_conn.nchunks + 1);
  /* Number 1 came and went: pushing it again is an error, not a loss. */
  CHECK_INT(asock_seq_push(order, 1, NULL), ASOCK_EDUPLICATE);
  CHECK_INT(asock_seq_destroy(order), 0);
}

/* ---- the embedded loop --------------------------------------------------- */

static int task_ran;

static void on_task(asock_loop *l, asock_task *task) {
  (void)task;
  task_ran = 1;
  asock_loop_stop(l);
}

static void on_embedded_deadline(uv_timer_t *timer) {
  (void)timer;
  hx_fail("the task posted to the embedded loop did not run in 30 s");
}

/* The application runs its own uv_loop_t; asock's loop inside it runs a
 * task on it, and asock_loop_close() leaves it open. */
static void run_embedded(uv_loop_t *my_uv_loop) {
  uv_timer_t guard;
  asock_task task;

  task.fn = on_task;
  task.data = NULL;
  CHECK_INT(uv_timer_init(my_uv_loop, &guard), 0);
  CHECK_INT(uv_timer_start(&guard, on_embedded_deadline, 30000, 0), 0);
  CHECK_INT(asock_loop_post(embedded, &task), 0);
  CHECK_INT(task_ran, 0); /* never inside the call */
  /* asock's own handles do not keep a loop alive: the guard timer does. */
  uv_run(my_uv_loop, UV_RUN_DEFAULT);
  CHECK_INT(task_ran, 1);
  uv_close((uv_handle_t *)&guard, NULL);
  CHECK_INT(asock_loop_close(embedded), 0);
  CHECK_INT(uv_run(my_uv_loop, UV_RUN_DEFAULT), 0);
  CHECK_INT(uv_loop_close(my_uv_loop), 0);
}

/* ---- the test ------------------------------------------------------------ */

static int server_has(void *n) { return server_conn.received >= *(size_t *)n; }
static int server_ended(void *arg) {
  (void)arg;
  return server_conn.ended;
}

int main(void) {
  static const char *pieces[PIECES] = {"first", "second piece", "3",
                                       "the fourth piece of five", "fifth"};
  unsigned char sent[PIECES * 64];
  asock_pool *pool;
  asock_pool_stats st;
  uv_loop_t my_uv_loop;
  asock_op *accept;
  struct sockaddr_in addr = hx_loopback(0);
  hx_client client;
  size_t len = 0, i;
  int r;

  CHECK_INT(create_pool(&pool), 0);
  CHECK_INT(asock_pool_stats_get(pool, &st), 0);
  CHECK_INT(st.slice_size, 16384);
  CHECK_INT(st.slices_total, 4096);
  CHECK_INT(st.ops_total, 20000);
  CHECK(st.region_bytes >= (size_t)4096 * 16384);
  CHECK_INT(uv_loop_init(&my_uv_loop), 0);
  CHECK_INT(create_loops(pool, &my_uv_loop), 0);
  hx_deadline_start(loop, 60000);
  run_embedded(&my_uv_loop);

  CHECK_INT(listen_on((struct sockaddr *)&addr), 0);
  CHECK_INT(asock_op_acquire(pool, &accept), 0);
  asock_op_set_callback(accept, on_accept);
  r = asock_accept(listener, accept);
  CHECK_INT(r, ASOCK_PENDING);

  hx_client_create(&client, loop);
  hx_client_connect(&client, hx_local_port(listener));
  for (i = 0; i < PIECES; i++) {
    size_t n = strlen(pieces[i]);
    memcpy(sent + len, pieces[i], n);
    hx_client_send(&client, pieces[i], n);
    len += n;
    hx_run_until(loop, server_has, &len, "the server's receive of a piece");
  }
  hx_client_shutdown(&client);
  hx_run_until(loop, server_ended, NULL, "the server's end of the stream");
  CHECK_INT(server_conn.end_status, ASOCK_EOF);
  CHECK_INT(server_conn.received, len);
  /* Each receive took the next number of the socket's receive counter, the
   * end of the stream included. */
  for (i = 0; i < server_conn.nchunks; i++)
    CHECK_INT(server_conn.chunks[i].seq, i + 1);
  CHECK_INT(server_conn.end_seq, server_conn.nchunks + 1);
  CHECK_INT(server_conn.nchunks, PIECES);
  hx_client_close(&client);

  reorder_through_workers(sent, len);

  CHECK_INT(asock_socket_close(listener, 0), 0);
  hx_run_until(loop, hx_op_idle, accept, "the accept's cancellation");
  CHECK_INT(asock_op_status(accept), ASOCK_ECANCELED);
  CHECK_INT(asock_op_release(pool, accept), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  printf("guide-basics: %zu receives numbered 1 to %zu, put back in order "
         "from two workers\n",
         server_conn.nchunks, server_conn.nchunks);
  return 0;
}
