/* asock-workers: completions processed on a thread pool, answered in order.
 *
 * A TCP server that upper-cases what it receives and sends it back. Each
 * connection keeps several receives posted, and every completed receive is
 * handed to a small pool of worker threads, which finish in whatever order
 * they finish. Before anything goes back, the completion-ordering module
 * puts the finished chunks back in the socket's sequence order: every op
 * of a socket has a number, the workers push what they finished under its
 * number into the socket's asock_seq, and whichever thread finds the next
 * number there sends it, from that thread (asock_send() hands it to the
 * loop). A send's own number is pushed with nothing in it when it
 * completes, so that the numbers have no gaps.
 *
 *   asock-workers [--host ADDR] [--port N] [--workers N] [--receives N]
 *                 [--stall-ms N]
 *
 * --stall-ms N makes a worker sleep N ms before it handles a chunk whose
 * number is 1 modulo 4, so that the chunks after it finish first and the
 * ordering has something to do. Prints "listening on ADDR:PORT"; on SIGINT
 * or SIGTERM stops and prints how many connections it served, how many
 * chunks were handled, how many finished before an earlier one and how
 * many bytes they held, then exits 0. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asock.h"

#define ACCEPT_OPS 4
#define MAX_RECEIVES 16
/* Numbers in flight per socket: its receives and as many sends. */
#define ORDER_WINDOW 64

/* One connection. Its lock makes taking finished chunks out of the order
 * and starting their sends one step, so that sends start in order even
 * when several threads drain; it also guards the counts. */
typedef struct conn {
  asock_socket *sock;
  asock_seq *order;
  uv_mutex_t lock;
  int ops_live; /* ops not yet released */
  int ending;   /* the stream ended or failed: nothing more is sent */
  int closed;   /* the socket was closed at shutdown */
  asock_task close_task;
  struct conn *next; /* every connection, for the shutdown (loop thread) */
  struct conn *prev;
} conn;

/* The work queue: completed receives waiting for a worker. */
typedef struct work_queue {
  uv_mutex_t lock;
  uv_cond_t ready;
  asock_op **ring;
  size_t cap;
  size_t head;
  size_t count;
  int stop;
  unsigned long long handled;
  unsigned long long bytes; /* in the chunks handled */
  unsigned long long out_of_order;
} work_queue;

static struct {
  asock_loop *loop;
  asock_pool *pool;
  asock_socket *listener;
  asock_op *accepts[ACCEPT_OPS];
  uv_signal_t sigint;
  uv_signal_t sigterm;
  unsigned int receives;
  unsigned int stall_ms;
  unsigned long connections;
  conn *conns;
  int stopping;
} srv;

static work_queue queue;

static void handle(asock_op *op);

static void usage(void) {
  fprintf(stderr, "usage: asock-workers [--host ADDR] [--port N] "
                  "[--workers N] [--receives N] [--stall-ms N]\n");
  exit(2);
}

static unsigned long parse_number(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > max)
    usage();
  return v;
}

/* ---- connections -------------------------------------------------------- */

/* Runs on the loop's thread once every op of the connection is back. */
static void close_conn(asock_loop *loop, asock_task *task) {
  conn *c = task->data;
  (void)loop;
  if (!c->closed)
    asock_socket_close(c->sock, 0);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv.conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  asock_seq_destroy(c->order);
  uv_mutex_destroy(&c->lock);
  free(c);
}

/* Lets an op go; the last one ends the connection. The lock is held. */
static int release_locked(conn *c, asock_op *op) {
  asock_op_clear_buffer(op);
  asock_op_release(srv.pool, op);
  return --c->ops_live == 0;
}

static void release(conn *c, asock_op *op) {
  int last;
  uv_mutex_lock(&c->lock);
  c->ending = 1;
  last = release_locked(c, op);
  uv_mutex_unlock(&c->lock);
  if (last)
    asock_loop_post(srv.loop, &c->close_task);
}

/* Takes out every finished chunk that is next in order and sends it. Any
 * thread. Sends that complete inside asock_send() (on the loop's thread)
 * are handled after the lock is let go. */
static void drain(conn *c) {
  asock_op *done[MAX_RECEIVES];
  size_t ndone = 0;
  size_t i;
  int last = 0;
  void *item;

  uv_mutex_lock(&c->lock);
  while (asock_seq_pop(c->order, &item, NULL) == 0) {
    asock_op *op = item;
    int r;
    if (op == NULL)
      continue; /* a send's number: nothing to deliver */
    if (asock_op_status(op) != 0 || c->ending) {
      /* The end of the stream, or an error, in its place in the order:
       * everything before it has been sent. */
      c->ending = 1;
      last |= release_locked(c, op);
      continue;
    }
    r = asock_send(c->sock, op);
    if (r == 0)
      done[ndone++] = op;
    else if (r < 0)
      last |= release_locked(c, op);
  }
  uv_mutex_unlock(&c->lock);
  for (i = 0; i < ndone; i++)
    handle(done[i]);
  if (last)
    asock_loop_post(srv.loop, &c->close_task);
}

static void post_receive(conn *c, asock_op *op) {
  int r = asock_receive(c->sock, op);
  if (r == 0)
    handle(op);
  else if (r < 0)
    release(c, op);
}

static void queue_work(asock_op *op) {
  uv_mutex_lock(&queue.lock);
  queue.ring[(queue.head + queue.count) % queue.cap] = op;
  queue.count++;
  uv_cond_signal(&queue.ready);
  uv_mutex_unlock(&queue.lock);
}

/* An op of a connection completed (through its callback, or inside the
 * call that started it). Loop thread. */
static void handle(asock_op *op) {
  conn *c = asock_op_user_data(op);
  int status = asock_op_status(op);
  int again;

  if (asock_op_last_kind(op) == ASOCK_OP_RECEIVE) {
    if (status == 0 && !srv.stopping) {
      queue_work(op);
      return;
    }
    asock_seq_push(c->order, asock_op_seq(op), op);
    drain(c);
    return;
  }
  /* A send: the op receives again, and its number joins the order. */
  uv_mutex_lock(&c->lock);
  again = status == 0 && !c->ending && !srv.stopping;
  uv_mutex_unlock(&c->lock);
  asock_seq_push(c->order, asock_op_seq(op), NULL);
  if (again)
    post_receive(c, op);
  else
    release(c, op);
  drain(c);
}

static void serve(asock_socket *sock) {
  conn *c = calloc(1, sizeof(*c));
  unsigned int i;

  if (c == NULL || asock_seq_create(&c->order, ORDER_WINDOW, 1) != 0) {
    free(c);
    asock_socket_close(sock, ASOCK_CLOSE_ABORT);
    return;
  }
  uv_mutex_init(&c->lock);
  c->sock = sock;
  c->close_task.fn = close_conn;
  c->close_task.data = c;
  c->next = srv.conns;
  if (srv.conns != NULL)
    srv.conns->prev = c;
  srv.conns = c;
  srv.connections++;
  asock_socket_set_nodelay(sock, 1);
  /* Count every op first, so that one finishing early cannot end the
   * connection while the others are still being posted. */
  c->ops_live = (int)srv.receives + 1;
  for (i = 0; i < srv.receives; i++) {
    asock_op *op;
    if (asock_op_acquire(srv.pool, &op) != 0) {
      uv_mutex_lock(&c->lock);
      c->ops_live--;
      uv_mutex_unlock(&c->lock);
      continue;
    }
    asock_op_set_callback(op, handle);
    asock_op_set_user_data(op, c);
    post_receive(c, op);
  }
  uv_mutex_lock(&c->lock);
  i = --c->ops_live == 0;
  uv_mutex_unlock(&c->lock);
  if (i)
    asock_loop_post(srv.loop, &c->close_task);
}

/* ---- workers ------------------------------------------------------------ */

static void worker_main(void *arg) {
  (void)arg;
  for (;;) {
    asock_op *op;
    conn *c;
    unsigned char *p;
    size_t i, n;
    uint64_t seq;

    uv_mutex_lock(&queue.lock);
    while (queue.count == 0 && !queue.stop)
      uv_cond_wait(&queue.ready, &queue.lock);
    if (queue.count == 0) {
      uv_mutex_unlock(&queue.lock);
      return;
    }
    op = queue.ring[queue.head];
    queue.head = (queue.head + 1) % queue.cap;
    queue.count--;
    uv_mutex_unlock(&queue.lock);

    c = asock_op_user_data(op);
    seq = asock_op_seq(op);
    if (srv.stall_ms > 0 && seq % 4 == 1)
      uv_sleep(srv.stall_ms);
    p = (unsigned char *)asock_op_data(op) + asock_op_offset(op);
    n = asock_op_bytes(op);
    for (i = 0; i < n; i++)
      p[i] = (unsigned char)toupper(p[i]);

    uv_mutex_lock(&queue.lock);
    queue.handled++;
    queue.bytes += n;
    /* Finished before an earlier number: the order has work to do. */
    if (seq > asock_seq_next(c->order))
      queue.out_of_order++;
    uv_mutex_unlock(&queue.lock);
    asock_seq_push(c->order, seq, op);
    drain(c);
  }
}

/* ---- the server --------------------------------------------------------- */

static void on_accept(asock_op *op) {
  for (;;) {
    if (asock_op_status(op) == 0)
      serve(asock_op_accepted(op));
    else if (asock_op_status(op) == ASOCK_ECANCELED || srv.stopping)
      return;
    if (asock_accept(srv.listener, op) != 0)
      return; /* pending, or the listener is gone */
  }
}

static void on_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  uv_signal_stop(&srv.sigint);
  uv_signal_stop(&srv.sigterm);
  asock_loop_stop(srv.loop);
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  unsigned long port = 0;
  unsigned long workers = 4;
  uv_thread_t threads[64];
  asock_pool_config config;
  struct sockaddr_storage addr;
  char name[64];
  int len = (int)sizeof(addr);
  unsigned long i;
  int r;

  srv.receives = 4;
  for (i = 1; i < (unsigned long)argc; i++) {
    if (i + 1 >= (unsigned long)argc)
      usage();
    if (strcmp(argv[i], "--host") == 0)
      host = argv[++i];
    else if (strcmp(argv[i], "--port") == 0)
      port = parse_number(argv[++i], 65535);
    else if (strcmp(argv[i], "--workers") == 0)
      workers = parse_number(argv[++i], 64);
    else if (strcmp(argv[i], "--receives") == 0)
      srv.receives = (unsigned int)parse_number(argv[++i], MAX_RECEIVES);
    else if (strcmp(argv[i], "--stall-ms") == 0)
      srv.stall_ms = (unsigned int)parse_number(argv[++i], 10000);
    else
      usage();
  }
  if (workers == 0 || srv.receives == 0)
    usage();

  asock_pool_config_init(&config);
  config.slice_size = 16384;
  config.slice_count = 4096;
  config.op_count = 4096 + ACCEPT_OPS;
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
    fprintf(stderr, "asock-workers: bad address %s\n", host);
    return 2;
  }
  /* Every op fits in the queue at once: it never grows. */
  queue.cap = config.op_count;
  queue.ring = calloc(queue.cap, sizeof(*queue.ring));
  if (queue.ring == NULL || uv_mutex_init(&queue.lock) != 0 ||
      uv_cond_init(&queue.ready) != 0)
    return 1;
  r = asock_pool_create(&srv.pool, &config);
  if (r == 0)
    r = asock_loop_create(&srv.loop, srv.pool, NULL);
  if (r == 0)
    r = asock_tcp_create(&srv.listener, srv.loop);
  if (r == 0)
    r = asock_tcp_listen(srv.listener, (struct sockaddr *)&addr, 1024, 0);
  if (r == 0)
    r = asock_socket_local_address(srv.listener, (struct sockaddr *)&addr,
                                   &len);
  if (r != 0) {
    fprintf(stderr, "asock-workers: %s\n", asock_strerror(r));
    return 1;
  }
  for (i = 0; i < workers; i++)
    if (uv_thread_create(&threads[i], worker_main, NULL) != 0)
      return 1;
  for (i = 0; i < ACCEPT_OPS; i++) {
    asock_op_acquire(srv.pool, &srv.accepts[i]);
    asock_op_set_callback(srv.accepts[i], on_accept);
    if (asock_accept(srv.listener, srv.accepts[i]) == 0)
      on_accept(srv.accepts[i]);
  }
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigint);
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigterm);
  uv_signal_start(&srv.sigint, on_signal, SIGINT);
  uv_signal_start(&srv.sigterm, on_signal, SIGTERM);

  if (addr.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&addr, name, sizeof(name));
  else
    uv_ip4_name((struct sockaddr_in *)&addr, name, sizeof(name));
  printf("listening on %s:%d\n", name,
         ntohs(((struct sockaddr_in *)&addr)->sin_port));
  fflush(stdout);

  asock_loop_run(srv.loop, UV_RUN_DEFAULT);

  /* The workers finish what they hold (their sends are handed to the
   * loop), then the loop closes every connection: each op completes once
   * more, with ASOCK_ECANCELED, and each connection is let go. */
  srv.stopping = 1;
  uv_mutex_lock(&queue.lock);
  queue.stop = 1;
  uv_cond_broadcast(&queue.ready);
  uv_mutex_unlock(&queue.lock);
  for (i = 0; i < workers; i++)
    uv_thread_join(&threads[i]);
  uv_close((uv_handle_t *)&srv.sigint, NULL);
  uv_close((uv_handle_t *)&srv.sigterm, NULL);
  asock_socket_close(srv.listener, 0);
  {
    conn *c;
    for (c = srv.conns; c != NULL; c = c->next) {
      asock_socket_close(c->sock, 0);
      c->closed = 1;
    }
  }
  r = asock_loop_close(srv.loop);
  for (i = 0; i < ACCEPT_OPS; i++)
    asock_op_release(srv.pool, srv.accepts[i]);
  printf("connections: %lu\n", srv.connections);
  printf("chunks: %llu, finished before an earlier one: %llu\n", queue.handled,
         queue.out_of_order);
  printf("bytes upper-cased: %llu\n", queue.bytes);
  fflush(stdout);
  if (r == 0)
    r = asock_pool_destroy(srv.pool);
  if (r != 0) {
    fprintf(stderr, "asock-workers: shutting down: %s\n", asock_strerror(r));
    return 1;
  }
  free(queue.ring);
  return 0;
}
