/* asock-workers: one receive per connection, the work on a thread pool, the
 * answers in order.
 *
 * A TCP server that upper-cases what it receives and sends it back, written
 * the way a .NET server on SocketAsyncEventArgs hands its receives to
 * worker threads (the seed's pattern):
 *
 * - Each connection has exactly one receive op, a one-shot receive posted
 *   without a buffer of its own, so that it takes a pool slice only when
 *   data arrives. When it completes with data, the loop thread takes the
 *   slice out of the op (asock_op_detach_slice()), posts the receive again
 *   at once on the same op, and only then hands the chunk (slice, offset,
 *   length, and the receive's sequence number) to a worker thread: the
 *   connection is read on while the workers work.
 * - The workers finish in whatever order they finish. Each upper-cases its
 *   chunk in place and pushes it into the connection's asock_seq under its
 *   receive number. A socket numbers its receives 1, 2, 3... without gaps
 *   (sends are counted apart), so whichever thread finds the next number
 *   there takes out the chunks that are now in order and sends each from
 *   its own thread: it acquires a send op from the pool, points it at the
 *   slice (asock_op_set_buffer()) and calls asock_send(), which hands the op
 *   to the loop. The send's callback gives the slice back to the pool
 *   (asock_pool_release()) and releases the op.
 * - The end of the stream, or an error, is the receive's last completion
 *   and has a number too. It is pushed in its place, so that it comes out
 *   only after every chunk before it was sent; the connection closes once
 *   those sends have completed.
 * - A slice taken out of a receive counts against its socket's quota of the
 *   pool (socket_quota) until it is released, whichever thread holds it. A
 *   connection whose chunks wait, for a worker or for a peer that does not
 *   read, stops being read once it holds SOCKET_QUOTA slices, so that it
 *   cannot take the whole pool from the others.
 *
 *   asock-workers [--host ADDR] [--port N] [--workers N] [--stall-ms N]
 *                 [--slices N] [--slice-size BYTES] [--receives N]
 *
 * --stall-ms N makes a worker sleep N ms before it handles a chunk whose
 * number is 1 modulo 4, so that the chunks after it finish first and the
 * ordering has something to do. --slices and --slice-size shape the pool
 * (default 4096 slices of 16384 bytes). --receives N is accepted for
 * compatibility and ignored: it was how many receives a connection kept
 * posted, and a connection now has one. Prints "listening on ADDR:PORT"; on
 * SIGUSR1 (on Windows, which has no SIGUSR1: Ctrl+Break in its console)
 * prints its statistics and serves on: how many connections it served, how
 * many chunks were handled, how many of them finished before an earlier
 * one, how many bytes they held, the most slices one connection held, and
 * the pool's statistics. On SIGINT or SIGTERM closes every connection,
 * prints the same and exits 0. */
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asock.h"

#define ACCEPT_OPS 4
#define MAX_WORKERS 64
/* Connections served at once; each holds one receive op. */
#define MAX_CONNECTIONS 1024
/* The most pool slices one connection may hold: its receive's, and those
 * its chunks hold at the workers, in the order and in sends. */
#define SOCKET_QUOTA 32
/* How far ahead of the next number a chunk may be pushed. Every number not
 * yet taken out of the order but the last is a chunk that holds a slice,
 * so there are at most SOCKET_QUOTA of them and the end of the stream: a
 * power of two above that. */
#define ORDER_WINDOW 64

/* The signal that prints the statistics while the server runs. Windows has
 * no SIGUSR1; there libuv reports Ctrl+Break in the console as SIGBREAK,
 * which the server handles instead of dying of it. */
#ifdef _WIN32
#define STATS_SIGNAL SIGBREAK
#else
#define STATS_SIGNAL SIGUSR1
#endif

typedef struct conn conn;

/* A chunk of a connection's stream, from its receive until its send
 * completed. */
typedef struct chunk {
  conn *c;
  void *slice;
  size_t offset;
  size_t len;
  uint64_t seq;       /* the receive's sequence number */
  struct chunk *next; /* in the connection's free list */
} chunk;

/* One connection. A chunk holds one of the connection's slices, so that
 * SOCKET_QUOTA chunks are enough for every slice it may hold: the pool's
 * quota bounds them, and no memory is allocated per chunk. */
struct conn {
  asock_socket *sock;
  asock_op *recv; /* its one receive; NULL once receiving ended */
  asock_seq *order;
  /* The lock makes taking chunks out of the order and starting their sends
   * one step, so that sends start in order even when several threads
   * take; it also guards refs, failed and the free list. */
  uv_mutex_t lock;
  /* Who still uses the connection: its receive until the end is pushed,
   * each chunk while a worker has it, each send until it completed. The
   * last one to go closes it. */
  int refs;
  int failed; /* a send failed, or shutdown: chunks are dropped */
  chunk *free;
  chunk chunks[SOCKET_QUOTA];
  chunk end;  /* the item the end of the stream is pushed as */
  int closed; /* the socket was closed at shutdown (loop thread) */
  asock_task close_task;
  conn *next; /* every connection, for the shutdown (loop thread) */
  conn *prev;
};

/* Chunks waiting for a worker. Each holds a slice, so a ring of as many
 * entries as the pool has slices never overflows. */
typedef struct work_queue {
  uv_mutex_t lock;
  uv_cond_t ready;
  chunk **ring;
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
  size_t slice_size;
  asock_socket *listener;
  asock_op *accepts[ACCEPT_OPS];
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_signal_t sigstats; /* prints the statistics while the server runs */
  unsigned int stall_ms;
  unsigned long connections;
  unsigned long live; /* connections not yet closed */
  size_t most_held;   /* the most slices one connection held */
  conn *conns;
  int stopping;
} srv;

static work_queue queue;

static void usage(void) {
  fprintf(stderr, "usage: asock-workers [--host ADDR] [--port N] "
                  "[--workers N] [--stall-ms N] [--slices N] "
                  "[--slice-size BYTES] [--receives N (ignored)]\n");
  exit(2);
}

static unsigned long parse_number(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > max)
    usage();
  return v;
}

/* For what cannot happen while the invariants above hold: a stream that
 * lost a number would never end, so the process stops at once instead. */
static void fatal(const char *what, int err) {
  fprintf(stderr, "asock-workers: %s: %s\n", what, asock_strerror(err));
  abort();
}

static void push(conn *c, uint64_t seq, chunk *item) {
  int r = asock_seq_push(c->order, seq, item);
  if (r != 0)
    fatal("pushing a chunk into its order", r);
}

/* ---- connections -------------------------------------------------------- */

/* Runs on the loop's thread once nothing uses the connection any more:
 * every send completed and the end of the stream was taken out. */
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
  srv.live--;
  asock_seq_destroy(c->order);
  uv_mutex_destroy(&c->lock);
  free(c);
}

/* Drops a reference; the last one closes the connection. Any thread. */
static void unref(conn *c) {
  int last;
  uv_mutex_lock(&c->lock);
  last = --c->refs == 0;
  uv_mutex_unlock(&c->lock);
  if (last)
    asock_loop_post(srv.loop, &c->close_task);
}

/* The chunk is done with: it goes back to the free list before its slice
 * goes back to the pool, so that the receive the slice makes room for
 * finds a free chunk. The lock is held. */
static void give_back_locked(conn *c, chunk *k) {
  void *slice = k->slice;
  int r;
  k->slice = NULL;
  k->next = c->free;
  c->free = k;
  r = asock_pool_release(srv.pool, slice);
  if (r != 0)
    fatal("releasing a slice", r);
}

/* A send of chunk k ended with `status`: the op and the slice go back, and
 * the send's reference with them (never the last: the caller holds one,
 * or it is the send's own callback, which drops it after this). The lock
 * is held. */
static void send_ended_locked(conn *c, chunk *k, asock_op *op, int status) {
  asock_op_release(srv.pool, op);
  if (status != 0)
    c->failed = 1;
  give_back_locked(c, k);
}

/* A send completed through its callback. Loop thread. */
static void on_send(asock_op *op) {
  chunk *k = asock_op_user_data(op);
  conn *c = k->c;
  int status = asock_op_status(op);

  uv_mutex_lock(&c->lock);
  send_ended_locked(c, k, op, status);
  uv_mutex_unlock(&c->lock);
  /* The peer takes no more: stop reading it, so that the connection ends
   * (the receive's last completion, ASOCK_ECANCELED, is its end). */
  if (status != 0 && c->recv != NULL && !c->closed)
    asock_cancel(c->recv);
  unref(c);
}

/* Takes out every chunk that is next in order and sends it. Any thread;
 * the caller holds a reference. Only the loop's thread can see a send
 * complete inside asock_send(): a send from another thread is handed to
 * the loop and completes through on_send(). */
static void drain(conn *c) {
  void *item;

  uv_mutex_lock(&c->lock);
  while (asock_seq_pop(c->order, &item, NULL) == 0) {
    chunk *k = item;
    asock_op *op;
    int r;

    if (k == &c->end)
      break; /* the last number: every chunk before it is sent */
    /* The pool has an op for every slice a chunk can hold (main()). */
    if (c->failed || asock_op_acquire(srv.pool, &op) != 0) {
      c->failed = 1;
      give_back_locked(c, k);
      continue;
    }
    asock_op_set_callback(op, on_send);
    asock_op_set_user_data(op, k);
    asock_op_set_buffer(op, k->slice, srv.slice_size, k->offset, k->len);
    c->refs++;
    r = asock_send(c->sock, op);
    if (r == 0 || r < 0) {
      send_ended_locked(c, k, op, r == 0 ? asock_op_status(op) : r);
      c->refs--;
    }
  }
  uv_mutex_unlock(&c->lock);
}

/* Receiving is over: the op goes back, and the end of the stream takes its
 * number in the order. Loop thread. */
static void end_receiving(conn *c, uint64_t seq) {
  asock_op_release(srv.pool, c->recv);
  c->recv = NULL;
  c->end.seq = seq;
  push(c, seq, &c->end);
  drain(c);
  unref(c);
}

/* Takes the data of a completed receive out of the op as a chunk, or NULL
 * when the completion ends the stream (the end, an error, a cancel, or
 * data that arrived while the server stops). Loop thread. */
static chunk *take_chunk(conn *c, asock_op *op) {
  void *slice;
  size_t offset, len, held;
  chunk *k;

  if (asock_op_status(op) != 0 || srv.stopping ||
      asock_op_detach_slice(op, &slice, &offset, &len) != 0)
    return NULL;
  held = asock_socket_slices_held(c->sock);
  if (held > srv.most_held)
    srv.most_held = held;
  uv_mutex_lock(&c->lock);
  k = c->free;
  if (k != NULL) {
    c->free = k->next;
    c->refs++; /* the worker's */
  }
  uv_mutex_unlock(&c->lock);
  if (k == NULL) {
    /* Only if the socket held more slices than its quota. */
    fprintf(stderr,
            "asock-workers: a connection holds %zu slices, above its "
            "quota of %d; it is ended\n",
            held, SOCKET_QUOTA);
    asock_pool_release(srv.pool, slice);
    return NULL;
  }
  k->slice = slice;
  k->offset = offset;
  k->len = len;
  k->seq = asock_op_seq(op);
  return k;
}

static void queue_work(chunk *k) {
  uv_mutex_lock(&queue.lock);
  queue.ring[(queue.head + queue.count) % queue.cap] = k;
  queue.count++;
  uv_cond_signal(&queue.ready);
  uv_mutex_unlock(&queue.lock);
}

/* The connection's receive completed, through its callback or inside the
 * asock_receive() that posted it. Loop thread. */
static void on_receive(asock_op *op) {
  conn *c = asock_op_user_data(op);

  for (;;) {
    chunk *k = take_chunk(c, op);
    int r;

    if (k == NULL) {
      end_receiving(c, asock_op_seq(op));
      return;
    }
    /* The next receive is posted before the data is even looked at. */
    r = asock_receive(c->sock, op);
    queue_work(k);
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      /* It did not start, so it took no number: the end takes the next. */
      end_receiving(c, k->seq + 1);
      return;
    }
    /* 0: data was there already; its completion is in the op. */
  }
}

static void serve(asock_socket *sock) {
  conn *c = NULL;
  asock_op *op = NULL;
  int i, r;

  if (srv.stopping || srv.live == MAX_CONNECTIONS ||
      (c = calloc(1, sizeof(*c))) == NULL)
    goto refuse;
  if (asock_seq_create(&c->order, ORDER_WINDOW, 1) != 0)
    goto refuse;
  if (uv_mutex_init(&c->lock) != 0) {
    asock_seq_destroy(c->order);
    goto refuse;
  }
  if (asock_op_acquire(srv.pool, &op) != 0) {
    uv_mutex_destroy(&c->lock);
    asock_seq_destroy(c->order);
    goto refuse;
  }
  c->sock = sock;
  c->recv = op;
  c->refs = 1; /* the receive's */
  for (i = 0; i < SOCKET_QUOTA; i++) {
    c->chunks[i].c = c;
    c->chunks[i].next = c->free;
    c->free = &c->chunks[i];
  }
  c->end.c = c;
  c->close_task.fn = close_conn;
  c->close_task.data = c;
  c->next = srv.conns;
  if (srv.conns != NULL)
    srv.conns->prev = c;
  srv.conns = c;
  srv.connections++;
  srv.live++;
  asock_socket_set_nodelay(sock, 1);
  asock_op_set_callback(op, on_receive);
  asock_op_set_user_data(op, c);
  r = asock_receive(sock, op);
  if (r == 0)
    on_receive(op);
  else if (r < 0)
    end_receiving(c, 1);
  return;

refuse:
  free(c);
  asock_socket_close(sock, ASOCK_CLOSE_ABORT);
}

/* ---- workers ------------------------------------------------------------ */

static void worker_main(void *arg) {
  (void)arg;
  for (;;) {
    chunk *k;
    conn *c;
    unsigned char *p;
    size_t i;

    uv_mutex_lock(&queue.lock);
    while (queue.count == 0 && !queue.stop)
      uv_cond_wait(&queue.ready, &queue.lock);
    if (queue.count == 0) {
      uv_mutex_unlock(&queue.lock);
      return;
    }
    k = queue.ring[queue.head];
    queue.head = (queue.head + 1) % queue.cap;
    queue.count--;
    uv_mutex_unlock(&queue.lock);

    c = k->c;
    if (srv.stall_ms > 0 && k->seq % 4 == 1)
      uv_sleep(srv.stall_ms);
    p = (unsigned char *)k->slice + k->offset;
    for (i = 0; i < k->len; i++)
      p[i] = (unsigned char)toupper(p[i]);

    uv_mutex_lock(&queue.lock);
    queue.handled++;
    queue.bytes += k->len;
    /* Finished before an earlier number: the order has work to do. */
    if (k->seq > asock_seq_next(c->order))
      queue.out_of_order++;
    uv_mutex_unlock(&queue.lock);
    push(c, k->seq, k);
    drain(c);
    unref(c);
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

/* Loop thread, while the workers run or once they are joined. The
 * connection counts are the loop's; the chunk counts, which the workers
 * write, are read under the queue's lock, all three at once so that they
 * agree; the pool's come from asock_pool_stats_get(), which any thread may
 * call, while the workers may be taking and giving back slices. */
static void print_stats(void) {
  unsigned long long handled, out_of_order, bytes;
  asock_pool_stats st;

  uv_mutex_lock(&queue.lock);
  handled = queue.handled;
  out_of_order = queue.out_of_order;
  bytes = queue.bytes;
  uv_mutex_unlock(&queue.lock);
  asock_pool_stats_get(srv.pool, &st);
  printf("connections: %lu\n", srv.connections);
  printf("chunks: %llu, finished before an earlier one: %llu\n", handled,
         out_of_order);
  printf("bytes upper-cased: %llu\n", bytes);
  printf("most slices one connection held: %zu (quota %d)\n", srv.most_held,
         SOCKET_QUOTA);
  printf("slices: %zu of %zu bytes, in use %zu, high-water %zu, "
         "acquisitions that found none: %llu\n",
         st.slices_total, st.slice_size, st.slices_in_use, st.slices_high_water,
         (unsigned long long)st.slices_failed);
  printf("ops: %zu, in use %zu, high-water %zu, acquisitions that found "
         "none: %llu\n",
         st.ops_total, st.ops_in_use, st.ops_high_water,
         (unsigned long long)st.ops_failed);
  fflush(stdout);
}

static void on_stats_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  print_stats();
}

/* Stops the workers once they emptied the queue (their last sends are
 * handed to the loop), then closes every connection: each op still pending
 * completes once, with ASOCK_ECANCELED, chunks still in an order are
 * dropped, and each connection is let go inside asock_loop_close(). */
static int shut_down(uv_thread_t *threads, unsigned long workers) {
  unsigned long i;
  conn *c;
  int r;

  srv.stopping = 1;
  uv_mutex_lock(&queue.lock);
  queue.stop = 1;
  uv_cond_broadcast(&queue.ready);
  uv_mutex_unlock(&queue.lock);
  for (i = 0; i < workers; i++)
    uv_thread_join(&threads[i]);
  uv_close((uv_handle_t *)&srv.sigint, NULL);
  uv_close((uv_handle_t *)&srv.sigterm, NULL);
  uv_close((uv_handle_t *)&srv.sigstats, NULL);
  asock_socket_close(srv.listener, 0);
  for (c = srv.conns; c != NULL; c = c->next) {
    uv_mutex_lock(&c->lock);
    c->failed = 1;
    uv_mutex_unlock(&c->lock);
    c->closed = 1;
    asock_socket_close(c->sock, 0);
  }
  r = asock_loop_close(srv.loop);
  for (i = 0; i < ACCEPT_OPS; i++)
    asock_op_release(srv.pool, srv.accepts[i]);
  return r;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  unsigned long port = 0;
  unsigned long workers = 4;
  uv_thread_t threads[MAX_WORKERS];
  asock_pool_config config;
  struct sockaddr_storage addr;
  char name[64];
  int len = (int)sizeof(addr);
  int i, r;

  asock_pool_config_init(&config);
  config.slice_size = 16384;
  config.slice_count = 4096;
  for (i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      usage();
    if (strcmp(argv[i], "--host") == 0)
      host = argv[++i];
    else if (strcmp(argv[i], "--port") == 0)
      port = parse_number(argv[++i], 65535);
    else if (strcmp(argv[i], "--workers") == 0)
      workers = parse_number(argv[++i], MAX_WORKERS);
    else if (strcmp(argv[i], "--receives") == 0)
      (void)parse_number(argv[++i], 1UL << 16); /* ignored */
    else if (strcmp(argv[i], "--stall-ms") == 0)
      srv.stall_ms = (unsigned int)parse_number(argv[++i], 10000);
    else if (strcmp(argv[i], "--slices") == 0)
      config.slice_count = parse_number(argv[++i], 1UL << 24);
    else if (strcmp(argv[i], "--slice-size") == 0)
      config.slice_size = parse_number(argv[++i], 1UL << 30);
    else
      usage();
  }
  if (workers == 0 || config.slice_count == 0 || config.slice_size == 0)
    usage();
  /* An op for every receive, and one for the send of every slice a chunk
   * can hold, so that a send never waits for an op. */
  config.op_count = MAX_CONNECTIONS + config.slice_count + ACCEPT_OPS;
  config.socket_quota = SOCKET_QUOTA;
  srv.slice_size = config.slice_size;
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
    fprintf(stderr, "asock-workers: bad address %s\n", host);
    return 2;
  }
  queue.cap = config.slice_count;
  queue.ring = calloc(queue.cap, sizeof(*queue.ring));
  if (queue.ring == NULL || uv_mutex_init(&queue.lock) != 0 ||
      uv_cond_init(&queue.ready) != 0) {
    fprintf(stderr, "asock-workers: %s\n", asock_strerror(ASOCK_ENOMEM));
    return 1;
  }
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
  for (i = 0; r == 0 && i < ACCEPT_OPS; i++)
    r = asock_op_acquire(srv.pool, &srv.accepts[i]);
  if (r != 0) {
    fprintf(stderr, "asock-workers: %s\n", asock_strerror(r));
    return 1;
  }
  for (i = 0; i < (int)workers; i++)
    if (uv_thread_create(&threads[i], worker_main, NULL) != 0)
      return 1;
  for (i = 0; i < ACCEPT_OPS; i++) {
    asock_op_set_callback(srv.accepts[i], on_accept);
    if (asock_accept(srv.listener, srv.accepts[i]) == 0)
      on_accept(srv.accepts[i]);
  }
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigint);
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigterm);
  uv_signal_start(&srv.sigint, on_signal, SIGINT);
  uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
  /* It does not keep the loop alive; it is closed with the others. */
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigstats);
  uv_signal_start(&srv.sigstats, on_stats_signal, STATS_SIGNAL);
  uv_unref((uv_handle_t *)&srv.sigstats);

  if (addr.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&addr, name, sizeof(name));
  else
    uv_ip4_name((struct sockaddr_in *)&addr, name, sizeof(name));
  printf("listening on %s:%d\n", name,
         ntohs(((struct sockaddr_in *)&addr)->sin_port));
  fflush(stdout);

  asock_loop_run(srv.loop, UV_RUN_DEFAULT);

  r = shut_down(threads, workers);
  print_stats();
  if (r == 0)
    r = asock_pool_destroy(srv.pool);
  if (r != 0) {
    fprintf(stderr, "asock-workers: shutting down: %s\n", asock_strerror(r));
    return 1;
  }
  free(queue.ring);
  return 0;
}
