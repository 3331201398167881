/* asock-echo: a TCP or UDP echo server in the SocketAsyncEventArgs style.
 *
 * TCP: each connection has one multishot receive, started once, and one
 * send op. Every chunk the receive delivers (in a pool slice taken only when
 * data arrived) is sent back from that slice, at which the send op's buffer
 * list of one entry is pointed: usually the kernel takes it at once and
 * the slice goes back to the loop's cache when the delivery callback
 * returns. A send that has to wait takes the slice with it
 * (asock_op_detach_slice()) and gives it back when it completes; chunks
 * delivered meanwhile are taken too and queue behind it, each with a send
 * op of its own from the pool, in order. Taken slices count against the
 * connection's quota of the pool (ECHO_QUOTA), so a peer that sends faster
 * than it reads stops being read once it holds that many, and the server's
 * memory stays what the pool allocated at start-up. At the end of the
 * stream the connection is disconnected once its sends are out.
 *
 * TCP with --oneshot: the same, the way a .NET SocketAsyncEventArgs server
 * is written: each connection owns exactly one op, which alternates:
 * receive, send the same bytes back, receive again. While the send waits
 * for the peer to read, no receive is posted, so TCP itself holds the peer
 * back. The benchmarks compare the two.
 *
 * UDP (--udp): one socket with several receive ops posted on it. Each op
 * alternates the same way: receive-from (a slice taken only when a datagram
 * is there), send-to back to the sender with the same op and the same bytes,
 * receive-from again. A datagram longer than a slice is echoed truncated to
 * the slice and counted. Several ops let the socket go on reading while
 * some echoes wait for the kernel to take them. With --multishot, one
 * multishot receive-from delivers every datagram instead, each sent back
 * from its slice by a send op of the pool (--receives of them at most).
 *
 * TCP with --threads N (N > 1): a loop group of N loops on N threads, all
 * over the one pool, listening on the same address; each connection is
 * served on the loop it was given, by the same step() as above, from the
 * accept callback on, on that loop's thread. Each loop counts into its own
 * counters, which are summed once the threads are joined, so that no
 * counter is written by two threads. --threads is for TCP only.
 *
 *   asock-echo [--host ADDR] [--port N] [--slice-size BYTES] [--slices N]
 *              [--max-connections N] [--threads N] [--oneshot]
 *              [--udp [--receives N] [--multishot]]
 *
 * Prints "listening on ADDR:PORT" once it accepts (TCP) or receives (UDP);
 * on SIGUSR1 prints the statistics and goes on serving (on Windows, which
 * has no SIGUSR1: Ctrl+Break in its console); on SIGINT or SIGTERM closes
 * everything (a group gets GROUP_GRACE_MS for its connections to finish),
 * prints the statistics once more and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asock-echo.h"

/* Receive ops posted on the UDP socket unless --receives says otherwise. */
#define UDP_RECEIVES 16
/* The accept ops asock_group_listen() takes from the pool per listener
 * (one listener per loop at most). */
#define GROUP_ACCEPT_OPS 4
/* How long a stopping group lets its connections finish. */
#define GROUP_GRACE_MS 100
#define MAX_THREADS 256
/* The most slices one connection may hold: the one a delivery comes in and
 * those its waiting sends took. */
#define ECHO_QUOTA 16

/* The signal that prints the statistics while the server runs. Windows
 * has no SIGUSR1; there libuv reports Ctrl+Break in the console as
 * SIGBREAK, which the server handles instead of dying of it. */
#ifdef _WIN32
#define STATS_SIGNAL SIGBREAK
#else
#define STATS_SIGNAL SIGUSR1
#endif

/* For code that runs once, at start-up or shutdown, or on request (the
 * statistics on STATS_SIGNAL). run_group() is marked so: with it in the
 * program and not marked, GCC's link-time inliner stopped inlining asock's
 * slice helpers into step(), which cost the single loop about 20
 * instructions per message (470 to 490, callgrind). */
#if defined(__GNUC__)
#define ECHO_COLD __attribute__((cold))
#else
#define ECHO_COLD
#endif
/* For the rare turns of the per-message callbacks: kept out of line, so
 * that the usual path saves and restores few registers. */
#if defined(__GNUC__)
#define ECHO_RARE __attribute__((cold, noinline))
#elif defined(_MSC_VER)
#define ECHO_RARE __declspec(noinline)
#else
#define ECHO_RARE
#endif

server srv;

/* Heap allocations after start-up, through asock and libuv alike. With a
 * group, the loops' threads allocate too (a socket per connection), so
 * the count is taken under a lock; no message allocates, so the lock costs
 * nothing per message. */
static unsigned long long allocations;
static int counting;
static int count_locked; /* set before any thread starts, then read-only */
static uv_mutex_t count_lock;

static void count_allocation(void) {
  if (count_locked) {
    uv_mutex_lock(&count_lock);
    allocations += (unsigned long long)counting;
    uv_mutex_unlock(&count_lock);
  } else {
    allocations += (unsigned long long)counting;
  }
}
static void *count_malloc(size_t n) {
  count_allocation();
  return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
  count_allocation();
  return realloc(p, n);
}
static void *count_calloc(size_t c, size_t n) {
  count_allocation();
  return calloc(c, n);
}

/* The count so far: with a group, the loops' threads may be counting. */
static unsigned long long allocations_now(void) {
  unsigned long long n;
  if (count_locked)
    uv_mutex_lock(&count_lock);
  n = allocations;
  if (count_locked)
    uv_mutex_unlock(&count_lock);
  return n;
}

static void set_counting(int on) {
  if (count_locked)
    uv_mutex_lock(&count_lock);
  counting = on;
  if (count_locked)
    uv_mutex_unlock(&count_lock);
}

static void usage(void) {
  fprintf(stderr, "usage: asock-echo [--host ADDR] [--port N] "
                  "[--slice-size BYTES] [--slices N] "
                  "[--max-connections N] [--threads N] [--oneshot] "
                  "[--udp [--receives N] [--multishot]]\n"
                  "  --threads N  N loops on N threads (TCP only: not "
                  "with --udp)\n"
                  "  --oneshot    one op per connection, re-posting its "
                  "receive after each echo (TCP)\n"
                  "  --multishot  one multishot receive-from, each datagram "
                  "sent back by a send op of its own (UDP)\n");
  exit(2);
}

static unsigned long parse_number(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > max)
    usage();
  return v;
}

/* ---- TCP, multishot ------------------------------------------------------ */

/* One connection: its receive, its send, and how many of its ops (those two
 * and the extra sends queued behind a waiting one) are not yet released;
 * the last one frees it. Only the connection's loop touches it. */
typedef struct echo_conn {
  asock_socket *sock;
  asock_op *rx;
  asock_op *tx;
  asock_buf out;  /* what tx sends: its buffer list of one, pointed at each
                   * delivery's bytes in turn */
  void *tx_slice; /* the slice a waiting send of tx took, or NULL */
  echo_counts *n;
  unsigned int ops;
  int tx_busy; /* tx waits for the kernel */
  int ending;  /* the receive ended: ops are released as they finish */
} echo_conn;

static void conn_release(echo_conn *c, asock_op *op) {
  asock_op_release(srv.pool, op);
  if (--c->ops == 0)
    free(c);
}

/* Closes the connection (ASOCK_ECLOSED if a disconnect closed it already)
 * and lets go of the ops that are idle; waiting sends finish with
 * ASOCK_ECANCELED and let themselves go. */
static void conn_end(echo_conn *c, unsigned int close_flags) {
  c->ending = 1;
  asock_socket_close(c->sock, close_flags);
  if (!c->tx_busy)
    conn_release(c, c->tx);
  conn_release(c, c->rx);
}

/* Moves the slice the receive delivered into op, which sends from it and
 * gives it back when its buffer changes or it is released. */
static void take_delivery(asock_op *rx, asock_op *op) {
  void *slice;
  size_t off, len;
  asock_op_detach_slice(rx, &slice, &off, &len);
  asock_op_attach_slice(op, slice, off, len);
}

/* A send queued behind a waiting one completed: its op goes back, and the
 * slice with it. */
static void on_extra_sent(asock_op *op) {
  echo_conn *c = asock_op_user_data(op);
  if (asock_op_status(op) != 0 && !c->ending)
    asock_socket_close(c->sock, ASOCK_CLOSE_ABORT); /* the receive ends */
  conn_release(c, op);
}

/* The chunk the receive delivers now cannot go with tx, which waits: it
 * takes its slice and a send op of its own, queued behind tx. */
static int send_extra(echo_conn *c, asock_op *rx) {
  asock_op *op;
  int r;

  if (asock_op_acquire(srv.pool, &op) != 0)
    return ASOCK_ENOBUFS;
  take_delivery(rx, op);
  asock_op_set_callback(op, on_extra_sent);
  asock_op_set_user_data(op, c);
  c->ops++;
  r = asock_send(c->sock, op);
  if (r != ASOCK_PENDING)
    conn_release(c, op);
  return r == ASOCK_PENDING ? 0 : r;
}

static void on_sent(asock_op *tx) {
  echo_conn *c = asock_op_user_data(tx);
  c->tx_busy = 0;
  if (c->tx_slice != NULL) {
    asock_pool_release(srv.pool, c->tx_slice);
    c->tx_slice = NULL;
  }
  if (c->ending) {
    conn_release(c, tx);
    return;
  }
  if (asock_op_status(tx) != 0)
    asock_socket_close(c->sock, ASOCK_CLOSE_ABORT); /* the receive ends */
}

/* A chunk that tx did not send at once (r is asock_send()'s result, or
 * the status of its synchronous completion), or that came while tx waits
 * (r is ASOCK_EBUSY then, as asock_send() would say). */
ECHO_RARE static void send_later(echo_conn *c, int r) {
  asock_op *rx = c->rx;
  if (r == ASOCK_PENDING) {
    /* The bytes must outlive this callback: their slice is kept until tx
     * completes (tx is pending, so it cannot be given the slice). */
    c->tx_busy = 1;
    asock_op_detach_slice(rx, &c->tx_slice, NULL, NULL);
    return;
  }
  if (c->tx_busy)
    r = send_extra(c, rx);
  if (r != 0)
    asock_cancel(rx); /* its final completion ends the connection */
}

/* The receive's final completion ends the connection, through a disconnect
 * after the end of the stream. */
ECHO_RARE static void receive_ended(echo_conn *c, asock_op *rx) {
  int status = asock_op_status(rx);
  if (asock_op_last_kind(rx) == ASOCK_OP_RECEIVE && status == ASOCK_EOF &&
      !srv.stopping) {
    /* The sends already queued go out first. The op is idle now, and
     * one-shot again for the disconnect. */
    asock_op_set_multishot(rx, 0);
    if (asock_disconnect(c->sock, rx) == ASOCK_PENDING)
      return;
  }
  conn_end(c, status == 0 || status == ASOCK_EOF || status == ASOCK_ECANCELED
                  ? 0
                  : ASOCK_CLOSE_ABORT);
}

/* Each delivery is sent back from its slice, usually at once. */
static void on_delivery(asock_op *rx) {
  echo_conn *c = asock_op_user_data(rx);
  echo_counts *counts;
  size_t n;
  int r;

  if (!asock_op_more(rx)) {
    receive_ended(c, rx);
    return;
  }
  n = asock_op_bytes(rx);
  counts = c->n;
  counts->messages++;
  counts->bytes += n;
  if (c->tx_busy) {
    send_later(c, ASOCK_EBUSY);
    return;
  }
  /* asock reads tx's list when the send starts: pointing its one entry at
   * the bytes is all the setting up a send needs. */
  c->out.base = asock_op_data(rx);
  c->out.len = n;
  /* Only c is needed after the call (the rest is read from it again), so
   * that the callback keeps few registers of its caller's. */
  r = asock_send(c->sock, c->tx);
  if (r == 0)
    r = asock_op_status(c->tx);
  if (r != 0)
    send_later(c, r);
}

/* A new connection: a receive started once, and a send. */
void echo_serve_multishot(echo_counts *n, asock_socket *client) {
  echo_conn *c = calloc(1, sizeof(*c));
  int r;

  if (c == NULL || asock_op_acquire(srv.pool, &c->rx) != 0) {
    free(c);
    n->refused++;
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    return;
  }
  if (asock_op_acquire(srv.pool, &c->tx) != 0) {
    asock_op_release(srv.pool, c->rx);
    free(c);
    n->refused++;
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    return;
  }
  n->connections++;
  c->sock = client;
  c->n = n;
  c->ops = 2;
  asock_socket_set_nodelay(client, 1);
  asock_op_set_callback(c->rx, on_delivery);
  asock_op_set_user_data(c->rx, c);
  asock_op_set_multishot(c->rx, 1);
  asock_op_set_callback(c->tx, on_sent);
  asock_op_set_user_data(c->tx, c);
  asock_op_set_buffer_list(c->tx, &c->out, 1);
  r = asock_receive(client, c->rx);
  if (r != ASOCK_PENDING)
    conn_end(c, ASOCK_CLOSE_ABORT);
}

static void serve(asock_socket *client) { echo_serve_on(&srv.counts, client); }

/* A connection the group accepted, on the thread of its loop. */
static void on_group_conn(asock_group *group, asock_socket *conn, void *arg) {
  echo_loop *loops = arg;
  asock_loop *loop = asock_socket_loop(conn);
  unsigned int i;

  (void)group;
  for (i = 0; i < srv.threads; i++)
    if (loops[i].loop == loop) {
      echo_serve_on(&loops[i].counts, conn);
      return;
    }
  asock_socket_close(conn, ASOCK_CLOSE_ABORT); /* not one of ours: never */
}

static void on_accept(asock_op *op) {
  for (;;) {
    int r;
    if (asock_op_status(op) == 0)
      serve(asock_op_accepted(op));
    else if (asock_op_status(op) == ASOCK_ECANCELED || srv.stopping)
      return;
    r = asock_accept(srv.listener, op);
    if (r != 0)
      return; /* pending, or the listener is gone */
  }
}

static void on_signal(uv_signal_t *handle, int signum) {
  (void)signum;
  (void)handle;
  srv.stopping = 1;
  uv_signal_stop(&srv.sigint);
  uv_signal_stop(&srv.sigterm);
  asock_loop_stop(srv.loop);
}

/* --threads: the signal loop on the main thread returns once its handles
 * are closed, and main then stops the group. */
static void on_group_signal(uv_signal_t *handle, int signum) {
  (void)signum;
  (void)handle;
  uv_close((uv_handle_t *)&srv.sigint, NULL);
  uv_close((uv_handle_t *)&srv.sigterm, NULL);
  uv_close((uv_handle_t *)&srv.sigstats, NULL);
}

/* Prints the statistics; `n` is the counters of every loop summed, and
 * with a group each loop's own are in its `seen`. */
static void print_stats(const echo_counts *n) {
  asock_pool_stats st;
  unsigned int i;

  asock_pool_stats_get(srv.pool, &st);
  /* How the loops move bytes (docs/backends.md). */
  printf("backend: %s\n", asock_backend_name(srv.backend));
  if (srv.udp_ops != NULL)
    printf("datagrams truncated: %llu, send errors: %llu, receive errors: "
           "%llu (%zu receives posted)\n",
           srv.truncated, srv.send_errors, srv.receive_errors,
           srv.udp_op_count);
  else
    printf("connections: %lu (refused for want of an op: %lu)\n",
           n->connections, n->refused);
  if (srv.loops != NULL) {
    printf("connections per loop (%u loops):", srv.threads);
    for (i = 0; i < srv.threads; i++)
      printf(" %lu", srv.loops[i].seen.connections);
    printf("\n");
  }
  printf("messages: %llu, bytes: %llu, heap allocations after start-up: "
         "%llu\n",
         n->messages, n->bytes, allocations_now());
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

/* STATS_SIGNAL on the single loop, whose thread owns every counter. */
ECHO_COLD static void on_stats_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  print_stats(&srv.counts);
}

/* --threads: each loop's counters are written by that loop's thread alone,
 * so the main thread does not read them while the group runs. On
 * STATS_SIGNAL it posts a task to every loop that copies them into `seen`
 * on that loop's thread, waits until every loop has, and prints the sum.
 * Each loop's copy is exact as of the moment its task ran; the moments of
 * two loops differ by the time they take to get to the task. The pool's
 * counters come from asock_pool_stats_get(), which any thread may call,
 * and the allocation count is read under its lock. */
static unsigned int copies_pending; /* under count_lock */
static uv_cond_t copies_done;

ECHO_COLD static void copy_counts(asock_loop *loop, asock_task *task) {
  echo_loop *l = task->data;
  (void)loop;
  l->seen = l->counts;
  uv_mutex_lock(&count_lock);
  if (--copies_pending == 0)
    uv_cond_signal(&copies_done);
  uv_mutex_unlock(&count_lock);
}

ECHO_COLD static void sum_seen(echo_counts *sum) {
  unsigned int i;
  memset(sum, 0, sizeof(*sum));
  for (i = 0; i < srv.threads; i++) {
    const echo_counts *n = &srv.loops[i].seen;
    sum->connections += n->connections;
    sum->refused += n->refused;
    sum->messages += n->messages;
    sum->bytes += n->bytes;
  }
}

ECHO_COLD static void on_group_stats_signal(uv_signal_t *handle, int signum) {
  echo_counts sum;
  unsigned int i;

  (void)handle;
  (void)signum;
  uv_mutex_lock(&count_lock);
  copies_pending = srv.threads;
  uv_mutex_unlock(&count_lock);
  /* The tasks are free to post again: the last report waited for them. */
  for (i = 0; i < srv.threads; i++) {
    srv.loops[i].report.fn = copy_counts;
    srv.loops[i].report.data = &srv.loops[i];
    asock_loop_post(srv.loops[i].loop, &srv.loops[i].report);
  }
  uv_mutex_lock(&count_lock);
  while (copies_pending > 0)
    uv_cond_wait(&copies_done, &count_lock);
  uv_mutex_unlock(&count_lock);
  sum_seen(&sum);
  print_stats(&sum);
}

/* Starts the handle that prints the statistics on STATS_SIGNAL. It does
 * not keep the loop alive; it is closed with the other signals. */
ECHO_COLD static int watch_stats_signal(uv_loop_t *uv, uv_signal_cb cb) {
  int r = uv_signal_init(uv, &srv.sigstats);
  if (r == 0)
    r = uv_signal_start(&srv.sigstats, cb, STATS_SIGNAL);
  if (r == 0)
    uv_unref((uv_handle_t *)&srv.sigstats);
  return r;
}

/* Listens for connections on addr with ACCEPT_OPS accepts posted. */
static int start_tcp(const struct sockaddr *addr) {
  int i, r = asock_tcp_create(&srv.listener, srv.loop);
  if (r == 0)
    r = asock_tcp_listen(srv.listener, addr, 1024, 0);
  for (i = 0; r == 0 && i < ACCEPT_OPS; i++) {
    r = asock_op_acquire(srv.pool, &srv.accepts[i]);
    if (r != 0)
      break;
    asock_op_set_callback(srv.accepts[i], on_accept);
    r = asock_accept(srv.listener, srv.accepts[i]);
    if (r == 0)
      on_accept(srv.accepts[i]);
    r = r < 0 ? r : 0;
  }
  return r;
}

/* Binds the UDP socket to addr and posts srv.udp_op_count receives, each
 * without a buffer of its own. */
static int start_udp(const struct sockaddr *addr) {
  size_t i;
  int r = asock_udp_create(&srv.udp, srv.loop);
  if (r == 0)
    r = asock_udp_bind(srv.udp, addr, 0);
  for (i = 0; r == 0 && i < srv.udp_op_count; i++) {
    r = asock_op_acquire(srv.pool, &srv.udp_ops[i]);
    if (r != 0)
      break;
    if (srv.udp_multishot) {
      asock_op_set_callback(srv.udp_ops[i], echo_on_udp_delivery);
      asock_op_set_multishot(srv.udp_ops[i], 1);
    } else {
      asock_op_set_callback(srv.udp_ops[i], echo_on_udp_op);
    }
    r = asock_receive_from(srv.udp, srv.udp_ops[i]);
    if (r == 0)
      echo_on_udp_op(srv.udp_ops[i]);
    r = r < 0 ? r : 0;
  }
  return r;
}

static void print_listening(const struct sockaddr_storage *addr) {
  char name[64];
  if (addr->ss_family == AF_INET6)
    uv_ip6_name((const struct sockaddr_in6 *)addr, name, sizeof(name));
  else
    uv_ip4_name((const struct sockaddr_in *)addr, name, sizeof(name));
  printf("listening on %s:%d\n", name,
         ntohs(((const struct sockaddr_in *)addr)->sin_port));
  fflush(stdout);
}

/* --threads: runs a group of srv.threads loops listening on addr until
 * SIGINT or SIGTERM, then stops it and prints the statistics, the loops'
 * counters summed once their threads are joined. \return the exit status.
 */
ECHO_COLD static int run_group(const asock_pool_config *config,
                               struct sockaddr_storage *addr) {
  echo_counts sum;
  unsigned int i;
  int r;

  /* Before any thread allocates: the count is shared from here on. */
  if (uv_mutex_init(&count_lock) != 0 || uv_cond_init(&copies_done) != 0) {
    fprintf(stderr, "asock-echo: %s\n", asock_strerror(ASOCK_ENOMEM));
    return 1;
  }
  count_locked = 1;
  srv.loops = calloc(srv.threads, sizeof(*srv.loops));
  if (srv.loops == NULL) {
    fprintf(stderr, "asock-echo: %s\n", asock_strerror(ASOCK_ENOMEM));
    return 1;
  }
  r = uv_loop_init(&srv.signal_loop);
  if (r == 0)
    r = uv_signal_init(&srv.signal_loop, &srv.sigint);
  if (r == 0)
    r = uv_signal_init(&srv.signal_loop, &srv.sigterm);
  if (r == 0)
    r = uv_signal_start(&srv.sigint, on_group_signal, SIGINT);
  if (r == 0)
    r = uv_signal_start(&srv.sigterm, on_group_signal, SIGTERM);
  if (r == 0)
    r = watch_stats_signal(&srv.signal_loop, on_group_stats_signal);
  if (r != 0) {
    fprintf(stderr, "asock-echo: signals: %s\n", uv_strerror(r));
    return 1;
  }
  r = asock_pool_create(&srv.pool, config);
  if (r == 0)
    r = asock_group_create(&srv.group, srv.pool, srv.threads);
  /* The loops are known before any connection comes, so that each loop's
   * thread finds its own counters by its loop. */
  for (i = 0; r == 0 && i < srv.threads; i++)
    srv.loops[i].loop = asock_group_loop(srv.group, i);
  if (r == 0)
    srv.backend = asock_loop_backend(srv.loops[0].loop);
  if (r == 0)
    r = asock_group_listen(srv.group, (struct sockaddr *)addr, 1024, 0,
                           on_group_conn, srv.loops);
  if (r == 0)
    r = asock_group_local_address(srv.group, addr);
  if (r != 0) {
    fprintf(stderr, "asock-echo: %s\n", asock_strerror(r));
    return 1;
  }
  print_listening(addr);
  set_counting(1);

  uv_run(&srv.signal_loop, UV_RUN_DEFAULT);

  set_counting(0);
  /* Every connection still open after the grace is closed on its loop, its
   * op cancelled and let go by step(); then the threads are joined. */
  r = asock_group_stop(srv.group, GROUP_GRACE_MS);
  for (i = 0; i < srv.threads; i++)
    srv.loops[i].seen = srv.loops[i].counts;
  sum_seen(&sum);
  print_stats(&sum);
  if (r == 0)
    r = asock_group_destroy(srv.group);
  if (r == 0)
    r = asock_pool_destroy(srv.pool);
  if (r == 0)
    r = uv_loop_close(&srv.signal_loop); /* a UV_E* code, as asock's are */
  free(srv.loops);
  uv_cond_destroy(&copies_done);
  uv_mutex_destroy(&count_lock);
  if (r != 0) {
    fprintf(stderr, "asock-echo: shutting down: %s\n", asock_strerror(r));
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  unsigned long port = 0;
  unsigned long receives = UDP_RECEIVES;
  unsigned long threads = 1;
  int udp = 0;
  asock_pool_config config;
  struct sockaddr_storage addr;
  asock_socket *bound;
  int len = (int)sizeof(addr);
  size_t k;
  int i, r;

  asock_pool_config_init(&config);
  config.slice_size = 16384;
  config.slice_count = 4096;
  config.op_count = 20000;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--udp") == 0) {
      udp = 1;
      continue;
    }
    if (strcmp(argv[i], "--oneshot") == 0) {
      srv.oneshot = 1;
      continue;
    }
    if (strcmp(argv[i], "--multishot") == 0) {
      srv.udp_multishot = 1;
      continue;
    }
    if (i + 1 >= argc)
      usage();
    if (strcmp(argv[i], "--host") == 0)
      host = argv[++i];
    else if (strcmp(argv[i], "--port") == 0)
      port = parse_number(argv[++i], 65535);
    else if (strcmp(argv[i], "--slice-size") == 0)
      config.slice_size = parse_number(argv[++i], 1UL << 30);
    else if (strcmp(argv[i], "--slices") == 0)
      config.slice_count = parse_number(argv[++i], 1UL << 24);
    else if (strcmp(argv[i], "--max-connections") == 0)
      config.op_count = parse_number(argv[++i], 1UL << 24);
    else if (strcmp(argv[i], "--receives") == 0)
      receives = parse_number(argv[++i], 1UL << 16);
    else if (strcmp(argv[i], "--threads") == 0)
      threads = parse_number(argv[++i], MAX_THREADS);
    else
      usage();
  }
  if ((udp && receives == 0) || threads == 0 || (srv.udp_multishot && !udp))
    usage();
  if (udp && threads > 1) {
    fprintf(stderr, "asock-echo: --threads serves TCP only, not --udp\n");
    return 2;
  }
  /* --threads 1 is the single loop, without a group. */
  srv.threads = threads > 1 ? (unsigned int)threads : 0;
  /* UDP has no connections: its ops are the receives. A group takes
   * accept ops for each loop's listener. */
  if (!udp && !srv.oneshot) {
    /* Two ops per connection, and room for the sends that wait. */
    config.op_count *= 2;
    config.socket_quota = ECHO_QUOTA;
  }
  if (udp)
    config.op_count = receives + (srv.udp_multishot ? 1 : 0);
  else if (srv.threads > 0)
    config.op_count += GROUP_ACCEPT_OPS * srv.threads;
  else
    config.op_count += ACCEPT_OPS;

  asock_replace_allocator(count_malloc, count_realloc, count_calloc, free);
  uv_replace_allocator(count_malloc, count_realloc, count_calloc, free);

  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
    fprintf(stderr, "asock-echo: bad address %s\n", host);
    return 2;
  }
  if (srv.threads > 0)
    return run_group(&config, &addr);
  if (udp) {
    srv.udp_op_count = srv.udp_multishot ? 1 : receives;
    srv.udp_ops = calloc(receives, sizeof(*srv.udp_ops));
    if (srv.udp_ops == NULL) {
      fprintf(stderr, "asock-echo: %s\n", asock_strerror(ASOCK_ENOMEM));
      return 1;
    }
  }
  r = asock_pool_create(&srv.pool, &config);
  if (r == 0)
    r = asock_loop_create(&srv.loop, srv.pool, NULL);
  if (r == 0)
    srv.backend = asock_loop_backend(srv.loop);
  if (r == 0)
    r = udp ? start_udp((struct sockaddr *)&addr)
            : start_tcp((struct sockaddr *)&addr);
  bound = udp ? srv.udp : srv.listener;
  if (r == 0)
    r = asock_socket_local_address(bound, (struct sockaddr *)&addr, &len);
  if (r != 0) {
    fprintf(stderr, "asock-echo: %s\n", asock_strerror(r));
    return 1;
  }
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigint);
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigterm);
  uv_signal_start(&srv.sigint, on_signal, SIGINT);
  uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
  watch_stats_signal(asock_loop_uv(srv.loop), on_stats_signal);

  print_listening(&addr);
  counting = 1;

  asock_loop_run(srv.loop, UV_RUN_DEFAULT);

  counting = 0;
  srv.stopping = 1;
  uv_close((uv_handle_t *)&srv.sigint, NULL);
  uv_close((uv_handle_t *)&srv.sigterm, NULL);
  uv_close((uv_handle_t *)&srv.sigstats, NULL);
  asock_socket_close(bound, 0);
  r = asock_loop_close(srv.loop);
  for (i = 0; !udp && i < ACCEPT_OPS; i++)
    asock_op_release(srv.pool, srv.accepts[i]);
  for (k = 0; k < srv.udp_op_count; k++)
    asock_op_release(srv.pool, srv.udp_ops[k]);
  print_stats(&srv.counts);
  free(srv.udp_ops);
  if (r == 0)
    r = asock_pool_destroy(srv.pool);
  if (r != 0) {
    fprintf(stderr, "asock-echo: shutting down: %s\n", asock_strerror(r));
    return 1;
  }
  return 0;
}
