/* asock-relay: a TCP relay that moves bytes without copying them.
 *
 * For each client it accepts, it connects to the backend and then reads
 * both sockets with one multishot receive each. Every delivery arrives in a
 * pool slice, and is sent as it is on the other socket, straight from the
 * slice, by that socket's send op (asock_op_set_buffer()). A send that the
 * kernel takes at once (the usual case) is done before the delivery
 * callback returns, and the slice goes back to the loop's cache by itself.
 * A send that has to wait takes the slice out of the receive
 * (asock_op_detach_slice()) and gives it back to the pool
 * (asock_pool_release()) when it completes.
 *
 * Back-pressure is the pool's socket quota (--quota): a slice waiting to be
 * sent still counts against the socket it was read from, so when one side
 * reads slowly the other side's socket reaches its quota and stops reading,
 * and TCP holds its peer back. Memory stays what the pool allocated at
 * start-up.
 *
 * Each direction has one send op, taken with the connection. A delivery
 * that finds it still pending waits in a list, and when the send completes
 * everything waiting goes out in one gather send (asock_op_set_buffer_list())
 * on the same op. (Measured with callgrind, 64-byte ping-pong: the kernel
 * takes nearly every send at once on loopback, so the lists are seldom
 * used, and a send op of its own per delivery costs the same with or
 * without them; but taking that op from the pool and giving it back was a
 * third of the relay's instructions per message, and taking each slice out
 * of its receive and releasing it a quarter of the rest.)
 *
 * Ends: when one side's stream ends, what it sent is passed on and the
 * other side's sending is shut down (asock_shutdown()), so that it sees
 * the end of the stream too while the relay goes on reading it: a client
 * that shuts down its sending side gets every byte of the answer. Once
 * both streams have ended and both shutdowns completed, both sockets are
 * closed. An error on either side resets both.
 *
 *   asock-relay --backend HOST:PORT [--host ADDR] [--port N] [--quota N]
 *               [--slice-size BYTES] [--slices N] [--max-connections N]
 *
 * Prints "listening on ADDR:PORT" once it accepts; on SIGUSR1 (on Windows,
 * which has no SIGUSR1: Ctrl+Break in its console) prints its statistics
 * and relays on; on SIGINT or SIGTERM closes everything, prints the
 * statistics and, on standard error, "allocations: N" (heap allocations
 * after start-up), and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asock.h"

#define ACCEPT_OPS 8

/* The signal that prints the statistics while the relay runs. Windows has
 * no SIGUSR1; there libuv reports Ctrl+Break in the console as SIGBREAK,
 * which the relay handles instead of dying of it. */
#ifdef _WIN32
#define STATS_SIGNAL SIGBREAK
#else
#define STATS_SIGNAL SIGUSR1
#endif

/* One socket of a relayed connection, and the bytes on their way to it. */
typedef struct side side;
typedef struct pair pair;

struct side {
  pair *pair;
  side *peer;
  asock_socket *sock; /* NULL once the relay closed it */
  /* The side's own op: its multishot receive, then, once that ended, the
   * shutdown of the peer's sending side. NULL once released. */
  asock_op *op;
  int ended;     /* its receive ended with the end of the stream */
  int shut;      /* a shutdown was started on it */
  int shut_done; /* and completed */
  /* The op that sends the peer's bytes on this socket; while it is
   * pending, the slices it carries and the deliveries waiting for it to
   * complete. Each list has room for the quota, which bounds the slices of
   * the peer's stream. */
  asock_op *tx;
  int listed; /* tx's last send was a gather list */
  size_t nflight, nwait;
  asock_buf *flight, *wait;
  void **flight_slices, **wait_slices;
};

struct pair {
  side side[2];     /* the client, the backend */
  unsigned int ops; /* ops of the pair that are pending */
  int in_use;
  int aborted;
  pair *next_free;
};

typedef struct counts {
  unsigned long connections;
  unsigned long refused;            /* no pair or op free */
  unsigned long connect_errors;     /* the backend could not be reached */
  unsigned long aborted;            /* reset after an error */
  unsigned long long deliveries[2]; /* read from the client, the backend */
  unsigned long long bytes[2];
  unsigned long long sends;    /* send operations started */
  unsigned long long gathered; /* of which gather sends of several slices */
} counts;

static struct {
  asock_loop *loop;
  asock_pool *pool;
  asock_socket *listener;
  asock_op *accepts[ACCEPT_OPS];
  struct sockaddr_storage backend;
  size_t quota;
  pair *pairs;
  size_t npairs;
  pair *free_pairs;
  asock_buf *bufs;
  void **slices;
  uv_signal_t sigint, sigterm;
  uv_signal_t sigstats; /* prints the statistics while the relay runs */
  int stopping;
  counts n;
} relay;

/* Heap allocations after start-up, asock's and libuv's alike. */
static unsigned long long allocations;
static int counting;

static void *count_malloc(size_t n) {
  allocations += (unsigned long long)counting;
  return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
  allocations += (unsigned long long)counting;
  return realloc(p, n);
}
static void *count_calloc(size_t c, size_t n) {
  allocations += (unsigned long long)counting;
  return calloc(c, n);
}

static void usage(void) {
  fprintf(stderr, "usage: asock-relay --backend HOST:PORT [--host ADDR] "
                  "[--port N] [--quota N]\n"
                  "                   [--slice-size BYTES] [--slices N] "
                  "[--max-connections N]\n");
  exit(2);
}

static unsigned long parse_number(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > max)
    usage();
  return v;
}

/* HOST:PORT with an IPv4 or IPv6 literal, the latter as [ADDR]:PORT or
 * with the port after its last colon. \return 0 or -1. */
static int parse_address(const char *s, struct sockaddr_storage *addr) {
  char host[64];
  const char *colon = strrchr(s, ':');
  size_t len;
  unsigned long port;
  char *end;

  if (colon == NULL)
    return -1;
  len = (size_t)(colon - s);
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
    s++;
    len -= 2;
  }
  port = strtoul(colon + 1, &end, 10);
  if (len == 0 || len >= sizeof(host) || colon[1] == '\0' || *end != '\0' ||
      port == 0 || port > 65535)
    return -1;
  memcpy(host, s, len);
  host[len] = '\0';
  memset(addr, 0, sizeof(*addr));
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) != 0)
    return -1;
  return 0;
}

/* ---- pairs --------------------------------------------------------------- */

static void side_init(pair *p, int i, side *s) {
  size_t q = relay.quota;
  size_t base = ((size_t)(p - relay.pairs) * 2 + (size_t)i) * 2 * q;
  s->pair = p;
  s->peer = &p->side[1 - i];
  s->flight = relay.bufs + base;
  s->wait = relay.bufs + base + q;
  s->flight_slices = relay.slices + base;
  s->wait_slices = relay.slices + base + q;
}

static pair *pair_new(void) {
  pair *p = relay.free_pairs;
  if (p == NULL)
    return NULL;
  relay.free_pairs = p->next_free;
  memset(p, 0, sizeof(*p));
  side_init(p, 0, &p->side[0]);
  side_init(p, 1, &p->side[1]);
  p->in_use = 1;
  return p;
}

/* Returns a pair whose sockets are closed and whose ops have all completed
 * to the free list, with what it still holds. */
static void pair_maybe_free(pair *p) {
  int i;
  if (!p->in_use || p->ops > 0 ||
      (!p->aborted && (p->side[0].sock != NULL || p->side[1].sock != NULL)))
    return;
  for (i = 0; i < 2; i++) {
    side *s = &p->side[i];
    size_t k;
    for (k = 0; k < s->nwait; k++)
      asock_pool_release(relay.pool, s->wait_slices[k]);
    s->nwait = 0;
    if (s->op != NULL)
      asock_op_release(relay.pool, s->op);
    if (s->tx != NULL)
      asock_op_release(relay.pool, s->tx);
    s->op = NULL;
    s->tx = NULL;
  }
  p->in_use = 0;
  p->next_free = relay.free_pairs;
  relay.free_pairs = p;
}

/* Resets both sockets; every pending op of the pair then completes with
 * ASOCK_ECANCELED and lets go of what it holds. */
static void pair_abort(pair *p) {
  int i;
  if (!p->aborted && !relay.stopping)
    relay.n.aborted++;
  p->aborted = 1;
  for (i = 0; i < 2; i++) {
    side *s = &p->side[i];
    size_t k;
    if (s->sock != NULL)
      asock_socket_close(s->sock, ASOCK_CLOSE_ABORT);
    s->sock = NULL;
    for (k = 0; k < s->nwait; k++)
      asock_pool_release(relay.pool, s->wait_slices[k]);
    s->nwait = 0;
  }
}

/* ---- sending ------------------------------------------------------------- */

static void on_send(asock_op *op);
static void on_shutdown(asock_op *op);
static void shut_done(side *t, asock_op *op, int status);

/* Shuts t's sending side down, with the peer's op, idle since the peer's
 * receive ended: the peer's stream has ended and everything it sent is in
 * t's send queue, which asock sends before the end of the stream. t's own
 * receive goes on. */
static void shut(side *t) {
  asock_op *op = t->peer->op;
  int r;

  if (t->shut || t->sock == NULL || t->pair->aborted)
    return;
  t->shut = 1;
  t->peer->op = NULL;
  asock_op_set_multishot(op, 0);
  asock_op_set_callback(op, on_shutdown);
  asock_op_set_user_data(op, t);
  r = asock_shutdown(t->sock, op);
  if (r == ASOCK_PENDING) {
    t->pair->ops++;
    return;
  }
  shut_done(t, op, r == 0 ? asock_op_status(op) : r);
}

/* t's shutdown completed: once both streams have ended and both sides are
 * shut down, the connection is over. */
static void shut_done(side *t, asock_op *op, int status) {
  pair *p = t->pair;
  int i;

  asock_op_release(relay.pool, op);
  t->shut_done = 1;
  if (status != 0 && !p->aborted) {
    pair_abort(p);
  } else if (!p->aborted && t->peer->shut_done) {
    for (i = 0; i < 2; i++) {
      asock_socket_close(p->side[i].sock, 0);
      p->side[i].sock = NULL;
    }
  }
  pair_maybe_free(p);
}

static void on_shutdown(asock_op *op) {
  side *t = asock_op_user_data(op);
  t->pair->ops--;
  shut_done(t, op, asock_op_status(op));
}

/* Sends what t's flight list holds on t with t's send op, as one buffer
 * or as a gather list. \return what asock_send() returned. */
static int send_flight(side *t) {
  asock_op *op = t->tx;
  relay.n.sends++;
  if (t->nflight == 1) {
    if (t->listed)
      asock_op_set_buffer_list(op, NULL, 0);
    t->listed = 0;
    asock_op_set_buffer(op, t->flight[0].base, t->flight[0].len, 0,
                        t->flight[0].len);
  } else {
    relay.n.gathered++;
    t->listed = 1;
    asock_op_set_buffer_list(op, t->flight, t->nflight);
  }
  return asock_send(t->sock, op);
}

/* t's send completed with status: its slices go back, and what waited
 * goes out in one gather send. Synchronous completions loop here rather
 * than recurse. */
static void sent(side *t, int status) {
  pair *p = t->pair;
  size_t k;

  for (;;) {
    for (k = 0; k < t->nflight; k++)
      asock_pool_release(relay.pool, t->flight_slices[k]);
    t->nflight = 0;
    if (status != 0 || p->aborted || t->nwait == 0)
      break;
    /* The waiting list becomes the one in flight. */
    {
      asock_buf *b = t->flight;
      void **sl = t->flight_slices;
      t->flight = t->wait;
      t->flight_slices = t->wait_slices;
      t->wait = b;
      t->wait_slices = sl;
      t->nflight = t->nwait;
      t->nwait = 0;
    }
    status = send_flight(t);
    if (status == ASOCK_PENDING) {
      p->ops++;
      return;
    }
    if (status == 0)
      status = asock_op_status(t->tx);
  }
  if (status != 0 && !p->aborted)
    pair_abort(p);
  else if (t->peer->ended && t->nwait == 0)
    shut(t);
  pair_maybe_free(p);
}

static void on_send(asock_op *op) {
  side *t = asock_op_user_data(op);
  t->pair->ops--;
  sent(t, asock_op_status(op));
}

/* Takes the slice of the delivery rop is in the middle of and adds it to
 * one of t's lists (flight or wait). The quota bounds the slices of the
 * peer's stream, so a list cannot be full; were it, the pair is reset
 * rather than the list overrun. */
static void take(side *t, asock_op *rop, asock_buf *list, void **slices,
                 size_t *n) {
  void *slice;
  size_t offset, len;
  if (*n == relay.quota ||
      asock_op_detach_slice(rop, &slice, &offset, &len) != 0) {
    pair_abort(t->pair);
    return;
  }
  list[*n].base = (char *)slice + offset;
  list[*n].len = len;
  slices[(*n)++] = slice;
}

/* Passes the delivery rop is in the middle of (a receive of t's peer) on
 * to t: sent at once from its slice if t's send op is free, else added to
 * what waits for it. */
static void forward(side *t, asock_op *rop) {
  pair *p = t->pair;
  int r;

  if (p->aborted || t->sock == NULL)
    return; /* the slice goes back by itself */
  if (asock_op_is_pending(t->tx)) {
    take(t, rop, t->wait, t->wait_slices, &t->nwait);
    return;
  }
  t->flight[0].base = asock_op_data(rop);
  t->flight[0].len = asock_op_bytes(rop);
  t->nflight = 1;
  r = send_flight(t);
  if (r == 0 && asock_op_status(t->tx) == 0) {
    t->nflight = 0; /* sent: the slice goes back with the delivery */
    return;
  }
  if (r == ASOCK_PENDING) {
    /* The send holds on to the bytes: the slice is the relay's now. */
    p->ops++;
    t->nflight = 0;
    take(t, rop, t->flight, t->flight_slices, &t->nflight);
    return;
  }
  t->nflight = 0;
  pair_abort(p);
}

/* ---- receiving ----------------------------------------------------------- */

static void on_receive(asock_op *op) {
  side *s = asock_op_user_data(op);
  pair *p = s->pair;
  int status = asock_op_status(op);

  if (asock_op_more(op)) {
    relay.n.deliveries[s == &p->side[1]]++;
    relay.n.bytes[s == &p->side[1]] += asock_op_bytes(op);
    forward(s->peer, op);
    return;
  }
  p->ops--;
  /* The end of the stream: what came is passed on, then the peer's
   * sending side is shut down. Anything else is an error. */
  if (!p->aborted && status == ASOCK_EOF) {
    side *t = s->peer;
    s->ended = 1;
    if (t->nwait == 0)
      shut(t);
    /* else sent() shuts t once the list is out */
  } else if (!p->aborted) {
    pair_abort(p);
  }
  pair_maybe_free(p);
}

/* Starts the multishot receive of s on its own op. */
static int start_receive(side *s) {
  int r;
  asock_op_set_multishot(s->op, 1);
  asock_op_set_callback(s->op, on_receive);
  asock_op_set_user_data(s->op, s);
  r = asock_receive(s->sock, s->op);
  if (r != ASOCK_PENDING)
    return r < 0 ? r : ASOCK_EINVAL; /* a multishot start never completes */
  s->pair->ops++;
  return 0;
}

/* ---- connecting ---------------------------------------------------------- */

static void on_connect(asock_op *op) {
  side *b = asock_op_user_data(op);
  pair *p = b->pair;
  side *c = b->peer;
  int r;

  p->ops--;
  if (p->aborted || asock_op_status(op) != 0) {
    if (!p->aborted) {
      relay.n.connect_errors++;
      pair_abort(p);
    }
    pair_maybe_free(p);
    return;
  }
  asock_socket_set_nodelay(b->sock, 1);
  r = asock_op_acquire(relay.pool, &c->op);
  if (r == 0)
    r = asock_op_acquire(relay.pool, &c->tx);
  if (r == 0)
    r = asock_op_acquire(relay.pool, &b->tx);
  if (r == 0) {
    asock_op_set_callback(c->tx, on_send);
    asock_op_set_user_data(c->tx, c);
    asock_op_set_callback(b->tx, on_send);
    asock_op_set_user_data(b->tx, b);
    r = start_receive(c);
  }
  if (r == 0)
    r = start_receive(b);
  if (r != 0) {
    relay.n.refused++;
    pair_abort(p);
    pair_maybe_free(p);
  }
}

/* Takes a new client: a pair, a backend socket, and the connect, whose op
 * becomes the backend side's own. */
static void serve(asock_socket *client) {
  pair *p = relay.stopping ? NULL : pair_new();
  side *b;
  int r;

  if (p == NULL) {
    relay.n.refused++;
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    return;
  }
  relay.n.connections++;
  p->side[0].sock = client;
  asock_socket_set_nodelay(client, 1);
  b = &p->side[1];
  r = asock_tcp_create(&b->sock, relay.loop);
  if (r != 0)
    b->sock = NULL;
  if (r == 0)
    r = asock_op_acquire(relay.pool, &b->op);
  if (r == 0) {
    asock_op_set_callback(b->op, on_connect);
    asock_op_set_user_data(b->op, b);
    asock_op_set_remote(b->op, (const struct sockaddr *)&relay.backend);
    r = asock_connect(b->sock, b->op);
  }
  if (r == ASOCK_PENDING) {
    p->ops++;
    return;
  }
  relay.n.refused++;
  pair_abort(p);
  pair_maybe_free(p);
}

static void on_accept(asock_op *op) {
  for (;;) {
    int r;
    if (asock_op_status(op) == 0)
      serve(asock_op_accepted(op));
    else if (asock_op_status(op) == ASOCK_ECANCELED || relay.stopping)
      return;
    r = asock_accept(relay.listener, op);
    if (r != 0)
      return; /* pending, or the listener is gone */
  }
}

/* ---- start and stop ------------------------------------------------------ */

static void on_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  relay.stopping = 1;
  uv_signal_stop(&relay.sigint);
  uv_signal_stop(&relay.sigterm);
  asock_loop_stop(relay.loop);
}

static int start(const struct sockaddr *addr) {
  int i, r = asock_tcp_create(&relay.listener, relay.loop);
  if (r == 0)
    r = asock_tcp_listen(relay.listener, addr, 1024, 0);
  for (i = 0; r == 0 && i < ACCEPT_OPS; i++) {
    r = asock_op_acquire(relay.pool, &relay.accepts[i]);
    if (r != 0)
      break;
    asock_op_set_callback(relay.accepts[i], on_accept);
    r = asock_accept(relay.listener, relay.accepts[i]);
    if (r == 0)
      on_accept(relay.accepts[i]);
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

/* The statistics, on standard output, and the allocation count also on
 * standard error. Loop thread: every counter is the loop's. */
static void print_stats(void) {
  asock_pool_stats st;
  asock_pool_stats_get(relay.pool, &st);
  printf("connections: %lu (refused: %lu, backend unreachable: %lu, "
         "reset after an error: %lu)\n",
         relay.n.connections, relay.n.refused, relay.n.connect_errors,
         relay.n.aborted);
  printf("client to backend: %llu bytes in %llu deliveries; backend to "
         "client: %llu bytes in %llu deliveries\n",
         relay.n.bytes[0], relay.n.deliveries[0], relay.n.bytes[1],
         relay.n.deliveries[1]);
  printf("sends: %llu, of several slices: %llu; heap allocations after "
         "start-up: %llu\n",
         relay.n.sends, relay.n.gathered, allocations);
  printf("slices: %zu of %zu bytes, in use %zu, high-water %zu, "
         "acquisitions that found none: %llu\n",
         st.slices_total, st.slice_size, st.slices_in_use, st.slices_high_water,
         (unsigned long long)st.slices_failed);
  printf("ops: %zu, in use %zu, high-water %zu, acquisitions that found "
         "none: %llu\n",
         st.ops_total, st.ops_in_use, st.ops_high_water,
         (unsigned long long)st.ops_failed);
  fflush(stdout);
  fprintf(stderr, "allocations: %llu\n", allocations);
}

static void on_stats_signal(uv_signal_t *handle, int signum) {
  (void)handle;
  (void)signum;
  print_stats();
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  const char *backend = NULL;
  unsigned long port = 0, max_conns = 4096, quota = 8;
  asock_pool_config config;
  struct sockaddr_storage addr;
  int len = (int)sizeof(addr);
  size_t k;
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
    else if (strcmp(argv[i], "--backend") == 0)
      backend = argv[++i];
    else if (strcmp(argv[i], "--quota") == 0)
      quota = parse_number(argv[++i], ASOCK_MAX_BUFS);
    else if (strcmp(argv[i], "--slice-size") == 0)
      config.slice_size = parse_number(argv[++i], 1UL << 30);
    else if (strcmp(argv[i], "--slices") == 0)
      config.slice_count = parse_number(argv[++i], 1UL << 24);
    else if (strcmp(argv[i], "--max-connections") == 0)
      max_conns = parse_number(argv[++i], 1UL << 20);
    else
      usage();
  }
  if (backend == NULL || quota == 0 || max_conns == 0)
    usage();
  if (parse_address(backend, &relay.backend) != 0) {
    fprintf(stderr, "asock-relay: bad backend %s (HOST:PORT)\n", backend);
    return 2;
  }
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
    fprintf(stderr, "asock-relay: bad address %s\n", host);
    return 2;
  }
  /* Each side of a pair keeps two ops: its receive (later the shutdown
   * of its peer) and the send of its peer's bytes. */
  config.socket_quota = quota;
  config.op_count = 4 * max_conns + ACCEPT_OPS;
  relay.quota = quota;
  relay.npairs = max_conns;

  asock_replace_allocator(count_malloc, count_realloc, count_calloc, free);
  uv_replace_allocator(count_malloc, count_realloc, count_calloc, free);

  /* Every pair and its lists, allocated once. */
  relay.pairs = calloc(max_conns, sizeof(*relay.pairs));
  relay.bufs = calloc(max_conns * 4 * quota, sizeof(*relay.bufs));
  relay.slices = calloc(max_conns * 4 * quota, sizeof(*relay.slices));
  if (relay.pairs == NULL || relay.bufs == NULL || relay.slices == NULL) {
    fprintf(stderr, "asock-relay: %s\n", asock_strerror(ASOCK_ENOMEM));
    return 1;
  }
  for (k = max_conns; k-- > 0;) {
    pair *p = &relay.pairs[k];
    side_init(p, 0, &p->side[0]);
    side_init(p, 1, &p->side[1]);
    p->next_free = relay.free_pairs;
    relay.free_pairs = p;
  }

  r = asock_pool_create(&relay.pool, &config);
  if (r == 0)
    r = asock_loop_create(&relay.loop, relay.pool, NULL);
  if (r == 0)
    r = start((struct sockaddr *)&addr);
  if (r == 0)
    r = asock_socket_local_address(relay.listener, (struct sockaddr *)&addr,
                                   &len);
  if (r != 0) {
    fprintf(stderr, "asock-relay: %s\n", asock_strerror(r));
    return 1;
  }
  uv_signal_init(asock_loop_uv(relay.loop), &relay.sigint);
  uv_signal_init(asock_loop_uv(relay.loop), &relay.sigterm);
  uv_signal_start(&relay.sigint, on_signal, SIGINT);
  uv_signal_start(&relay.sigterm, on_signal, SIGTERM);
  /* It does not keep the loop alive; it is closed with the others. */
  uv_signal_init(asock_loop_uv(relay.loop), &relay.sigstats);
  uv_signal_start(&relay.sigstats, on_stats_signal, STATS_SIGNAL);
  uv_unref((uv_handle_t *)&relay.sigstats);

  print_listening(&addr);
  counting = 1;

  asock_loop_run(relay.loop, UV_RUN_DEFAULT);

  counting = 0;
  relay.stopping = 1;
  uv_close((uv_handle_t *)&relay.sigint, NULL);
  uv_close((uv_handle_t *)&relay.sigterm, NULL);
  uv_close((uv_handle_t *)&relay.sigstats, NULL);
  asock_socket_close(relay.listener, 0);
  /* Every pair is reset here, while its sockets are still the relay's; the
   * loop's close then completes what is pending, and the callbacks give
   * back the slices and ops. */
  for (k = 0; k < relay.npairs; k++)
    if (relay.pairs[k].in_use) {
      pair_abort(&relay.pairs[k]);
      pair_maybe_free(&relay.pairs[k]);
    }
  r = asock_loop_close(relay.loop);
  for (i = 0; i < ACCEPT_OPS; i++)
    asock_op_release(relay.pool, relay.accepts[i]);
  print_stats();
  if (r == 0)
    r = asock_pool_destroy(relay.pool);
  free(relay.pairs);
  free(relay.bufs);
  free(relay.slices);
  if (r != 0) {
    fprintf(stderr, "asock-relay: shutting down: %s\n", asock_strerror(r));
    return 1;
  }
  return 0;
}
