/* The fault injection sweep (builds with ASOCK_FAULT_INJECTION only). Real
 * scenarios (an echo over several TCP connections, a connect by host name,
 * a UDP exchange, loop groups) run once with every injection point
 * counting, then again for each point and each k with the k-th call of
 * that point failing. Every run happens in a child process of its own, so
 * that a crash or a hang is reported with the scenario, point and k that
 * caused it; and every run must leave asock as the contract says: each op
 * that returned ASOCK_PENDING completed exactly once, with 0 or a known
 * asock error code; the pool back to no slice and no op in use; the loop
 * closed by asock_loop_close(); nothing left allocated (the counting
 * allocator here; AddressSanitizer's leak check or valgrind on the child).
 *
 * A scenario never waits without a bound: the loop runs until the scenario
 * is done, or nothing completed for a while (a failed call may leave an
 * operation waiting for an event that will not come; closing its socket
 * must still complete it), or a hard limit passes.
 *
 * ASOCK_FAULT_SWEEP=quick (the valgrind stage sets it) tries fewer k per
 * point. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "tcp-util.h"
#include "test.h"

/* ---- one run, in the child ------------------------------------------- */

enum { FX_OPS = 64, FX_SOCKS = 64, FX_MSG = 64, FX_ROUNDS = 2 };

typedef struct fx_rec fx_rec;
typedef void (*fx_done_fn)(fx_rec *rec);

/* What the run saw of one op. */
struct fx_rec {
  asock_op *op;
  const char *what; /* for messages */
  int pending;      /* starts that returned ASOCK_PENDING */
  int calls;        /* callbacks */
  fx_done_fn done;  /* the scenario's continuation */
  void *ctx;
};

static struct {
  asock_pool *pool;
  asock_loop *loop;
  uv_timer_t tick; /* keeps each UV_RUN_ONCE short */
  int tick_open;
  uv_mutex_t lock; /* recs and socks: group threads add to them */
  fx_rec recs[FX_OPS];
  int nrecs;
  asock_socket *socks[FX_SOCKS];
  unsigned char closed[FX_SOCKS];
  int nsocks;
  asock__atomic_u64 progress; /* callbacks so far, on any thread */
  asock__atomic_u32 failed;
  char failure[400];
  int complete; /* the scenario ran to its end without an error */
  int stalls;   /* runs that ended because nothing completed */
  int faulty;   /* a call is armed to fail */
} fx;

static void fx_fail(const char *fmt, ...) {
  va_list ap;
  uint32_t expected = 0;

  if (!asock__cas_u32(&fx.failed, &expected, 1))
    return;
  va_start(ap, fmt);
  vsnprintf(fx.failure, sizeof(fx.failure), fmt, ap);
  va_end(ap);
}

/* A status or return code must be 0 or an error asock names. */
static void fx_check_code(int code, const char *what, const char *where) {
  if (code > 0 && code != ASOCK_PENDING)
    fx_fail("%s: %s returned %d", what, where, code);
  if (code < 0 && strcmp(asock_err_name(code), "ASOCK_UNKNOWN") == 0)
    fx_fail("%s: %s gave an error asock does not name (%d)", what, where, code);
}

static void fx_cb(asock_op *op) {
  fx_rec *rec = asock_op_user_data(op);

  asock__add_u64(&fx.progress, 1);
  rec->calls++;
  if (rec->calls > rec->pending)
    fx_fail("%s: callback %d for %d pending start(s)", rec->what, rec->calls,
            rec->pending);
  if (asock_op_is_pending(op))
    fx_fail("%s: pending inside its callback", rec->what);
  fx_check_code(asock_op_status(op), rec->what, "the callback's status");
  if (rec->done != NULL)
    rec->done(rec);
}

/* An op whose completions are counted; NULL (and the run failed) if the
 * pool has none. Any thread. */
static fx_rec *fx_op(const char *what, fx_done_fn done, void *ctx) {
  asock_op *op;
  fx_rec *rec = NULL;

  uv_mutex_lock(&fx.lock);
  if (fx.nrecs < FX_OPS && asock_op_acquire(fx.pool, &op) == 0) {
    rec = &fx.recs[fx.nrecs++];
    rec->op = op;
    rec->what = what;
    rec->done = done;
    rec->ctx = ctx;
    asock_op_set_callback(op, fx_cb);
    asock_op_set_user_data(op, rec);
  }
  uv_mutex_unlock(&fx.lock);
  if (rec == NULL)
    fx_fail("%s: no op left in the pool", what);
  return rec;
}

/* Records what starting an op returned. */
static int fx_started(fx_rec *rec, int r, const char *call) {
  if (r == ASOCK_PENDING)
    rec->pending++;
  else
    fx_check_code(r, rec->what, call);
  if (r == 0)
    fx_check_code(asock_op_status(rec->op), rec->what,
                  "a synchronous completion's status");
  return r;
}

static void fx_track(asock_socket *sock) {
  uv_mutex_lock(&fx.lock);
  if (fx.nsocks < FX_SOCKS)
    fx.socks[fx.nsocks++] = sock;
  else
    fx_fail("more than %d sockets", FX_SOCKS);
  uv_mutex_unlock(&fx.lock);
}

/* Closes a socket of the test loop's once. */
static void fx_close(asock_socket *sock) {
  int i;
  for (i = 0; i < fx.nsocks; i++) {
    if (fx.socks[i] == sock && !fx.closed[i]) {
      int r = asock_socket_close(sock, 0);
      fx.closed[i] = 1;
      if (r != 0)
        fx_fail("asock_socket_close: %s", asock_err_name(r));
    }
  }
}

/* Allocations asock holds, counted atomically: a loop group allocates on
 * its threads. */
static asock__atomic_u64 fx_live;

static void *fx_malloc(size_t size) {
  void *p = malloc(size);
  if (p != NULL)
    asock__add_u64(&fx_live, 1);
  return p;
}

static void *fx_calloc(size_t count, size_t size) {
  void *p = calloc(count, size);
  if (p != NULL)
    asock__add_u64(&fx_live, 1);
  return p;
}

static void *fx_realloc(void *ptr, size_t size) {
  void *p = realloc(ptr, size);
  if (p != NULL && ptr == NULL)
    asock__add_u64(&fx_live, 1);
  return p;
}

static void fx_free(void *ptr) {
  if (ptr != NULL)
    asock__add_u64(&fx_live, (uint64_t)-1);
  free(ptr);
}

/* Marks a socket the scenario closed itself. */
static void fx_track_closed(asock_socket *sock) {
  int i;
  for (i = 0; i < fx.nsocks; i++)
    if (fx.socks[i] == sock)
      fx.closed[i] = 1;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* How long a run waits with nothing completing: short when a call was
 * failed (an op may be left waiting for an event that will not come), long
 * when none was (the scenario must then complete, even on a loaded
 * machine). */
static uint64_t fx_stall_ms(void) { return tu_ms(fx.faulty ? 200 : 3000); }

/* Runs the test loop until done() holds, nothing completes for a while, or
 * a hard limit passes. */
static int fx_run(int (*done)(void)) {
  uint64_t start = tu_now_ms();
  uint64_t last_change = start;
  uint64_t last = asock__load_u64(&fx.progress);

  while (!done()) {
    uint64_t now = tu_now_ms();
    uint64_t p = asock__load_u64(&fx.progress);
    if (p != last) {
      last = p;
      last_change = now;
    }
    if (now - last_change > fx_stall_ms() || now - start > tu_ms(10000)) {
      fx.stalls++;
      return 0;
    }
    asock_loop_run(fx.loop, UV_RUN_ONCE);
  }
  return 1;
}

static int all_completed(void) {
  int i;
  int done = 1;
  uv_mutex_lock(&fx.lock);
  for (i = 0; i < fx.nrecs; i++)
    if (fx.recs[i].calls < fx.recs[i].pending)
      done = 0;
  uv_mutex_unlock(&fx.lock);
  return done;
}

/* Pool and loop; 0, or the run is over (nothing to clean up but what was
 * made). */
static int fx_begin(void) {
  asock_pool_config cfg;
  int r;

  asock_pool_config_init(&cfg);
  cfg.slice_size = 4096;
  cfg.slice_count = 64;
  cfg.op_count = FX_OPS + 16;
  r = asock_pool_create(&fx.pool, &cfg);
  fx_check_code(r, "asock_pool_create", "its return");
  if (r != 0)
    return r;
  r = asock_loop_create(&fx.loop, fx.pool, NULL);
  fx_check_code(r, "asock_loop_create", "its return");
  if (r != 0) {
    if (asock_pool_destroy(fx.pool) != 0)
      fx_fail("asock_pool_destroy after a failed loop create");
    fx.pool = NULL;
    return r;
  }
  uv_timer_init(asock_loop_uv(fx.loop), &fx.tick);
  uv_timer_start(&fx.tick, on_tick, 5, 5);
  fx.tick_open = 1;
  return 0;
}

static void on_tick_closed(uv_handle_t *h) {
  (void)h;
  fx.tick_open = 0;
}

/* Closes everything and checks what a run must leave. */
static void fx_end(void) {
  asock_pool_stats st;
  int i;
  int r;

  if (fx.loop == NULL)
    goto pool;
  for (i = 0; i < fx.nsocks; i++)
    fx_close(fx.socks[i]);
  if (!fx_run(all_completed)) {
    for (i = 0; i < fx.nrecs; i++)
      if (fx.recs[i].calls < fx.recs[i].pending)
        fx_fail("%s: %d pending start(s), %d callback(s), its socket "
                "closed",
                fx.recs[i].what, fx.recs[i].pending, fx.recs[i].calls);
  }
  for (i = 0; i < fx.nrecs; i++) {
    r = asock_op_release(fx.pool, fx.recs[i].op);
    if (r != 0)
      fx_fail("%s: asock_op_release: %s", fx.recs[i].what, asock_err_name(r));
  }
  asock_pool_stats_get(fx.pool, &st);
  if (st.slices_in_use != 0 || st.ops_in_use != 0)
    fx_fail("with every socket closed and every op released, the pool has "
            "%llu slice(s) and %llu op(s) in use",
            (unsigned long long)st.slices_in_use,
            (unsigned long long)st.ops_in_use);
  uv_close((uv_handle_t *)&fx.tick, on_tick_closed);
  while (fx.tick_open)
    uv_run(asock_loop_uv(fx.loop), UV_RUN_NOWAIT);
  r = asock_loop_close(fx.loop);
  if (r != 0)
    fx_fail("asock_loop_close: %s", asock_err_name(r));
  fx.loop = NULL;
  for (i = 0; i < fx.nrecs; i++)
    if (fx.recs[i].calls != fx.recs[i].pending)
      fx_fail("%s: %d pending start(s), %d callback(s) once the loop closed",
              fx.recs[i].what, fx.recs[i].pending, fx.recs[i].calls);

pool:
  if (fx.pool != NULL) {
    r = asock_pool_destroy(fx.pool);
    if (r != 0)
      fx_fail("asock_pool_destroy: %s", asock_err_name(r));
    fx.pool = NULL;
  }
  if (asock__load_u64(&fx_live) != 0)
    fx_fail("%llu asock allocation(s) left",
            (unsigned long long)asock__load_u64(&fx_live));
}

/* ---- TCP: echo connections ------------------------------------------- */

static unsigned char fx_byte(int conn, size_t pos) {
  return (unsigned char)(conn * 31 + pos * 7 + (pos >> 8));
}

/* A server connection: buffer-less receives, each slice sent back with the
 * same op, until the stream ends. */
typedef struct fx_server {
  asock_socket *sock;
  fx_rec *rec;
  int cancel_only; /* a loop group's: closed by its loop */
  int ended;
} fx_server;

static fx_server servers[FX_SOCKS];
static asock__atomic_u32 nservers;
static asock__atomic_u32 servers_ended;

static void server_end(fx_server *s) {
  int status = asock_op_status(s->rec->op);
  s->ended = 1;
  asock__add_u32(&servers_ended, 1);
  if (s->cancel_only) {
    if (status != ASOCK_ECANCELED)
      asock_socket_close(s->sock, 0);
    return;
  }
  fx_close(s->sock);
}

static void server_next(fx_server *s, int r) {
  asock_op *op = s->rec->op;

  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) != 0) {
      server_end(s);
      return;
    }
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVE) {
      asock_op_set_range(op, 0, asock_op_bytes(op));
      r = fx_started(s->rec, asock_send(s->sock, op), "asock_send");
    } else {
      r = fx_started(s->rec, asock_receive(s->sock, op), "asock_receive");
    }
  }
}

static void server_done(fx_rec *rec) { server_next(rec->ctx, 0); }

static void server_start(asock_socket *sock, int cancel_only) {
  uint32_t i = asock__add_u32(&nservers, 1);
  fx_server *s;

  if (i >= FX_SOCKS) {
    fx_fail("too many server connections");
    asock_socket_close(sock, 0);
    return;
  }
  s = &servers[i];
  s->sock = sock;
  s->cancel_only = cancel_only;
  s->rec = fx_op("server receive/send", server_done, s);
  if (s->rec == NULL) {
    asock_socket_close(sock, 0);
    s->ended = 1;
    asock__add_u32(&servers_ended, 1);
    return;
  }
  if (!cancel_only)
    fx_track(sock);
  /* An option that fails is reported, not fatal. */
  fx_check_code(asock_socket_set_nodelay(sock, 1), "server",
                "asock_socket_set_nodelay");
  server_next(
      s, fx_started(s->rec, asock_receive(sock, s->rec->op), "asock_receive"));
}

/* The accepts a listener keeps posted. */
static asock_socket *listener;

static void accept_next(fx_rec *rec, int r) {
  asock_op *op = rec->op;
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) == ASOCK_ECANCELED)
      return;
    if (asock_op_status(op) == 0)
      server_start(asock_op_accepted(op), 0);
    /* An accept that failed (EMFILE...) is the listener's: post again. */
    r = fx_started(rec, asock_accept(listener, op), "asock_accept");
  }
}

static void accept_done(fx_rec *rec) { accept_next(rec, 0); }

static int fx_listen(struct sockaddr_storage *addr) {
  int len = (int)sizeof(*addr);
  int r;
  int i;

  r = asock_tcp_create(&listener, fx.loop);
  fx_check_code(r, "listener", "asock_tcp_create");
  if (r != 0)
    return r;
  fx_track(listener);
  tu_addr("127.0.0.1", 0, addr);
  r = asock_tcp_listen(listener, (struct sockaddr *)addr, 16, 0);
  fx_check_code(r, "listener", "asock_tcp_listen");
  if (r == 0) {
    r = asock_socket_local_address(listener, (struct sockaddr *)addr, &len);
    fx_check_code(r, "listener", "asock_socket_local_address");
  }
  for (i = 0; r == 0 && i < 2; i++) {
    fx_rec *rec = fx_op("accept", accept_done, NULL);
    if (rec == NULL)
      return ASOCK_ENOBUFS;
    accept_next(
        rec, fx_started(rec, asock_accept(listener, rec->op), "asock_accept"));
  }
  return r;
}

/* A client: connect (to an address or a host name), FX_ROUNDS messages
 * echoed back and checked, a disconnect. */
enum { C_CONNECT, C_SEND, C_RECEIVE, C_DISCONNECT, C_DONE };

typedef struct fx_client {
  int id;
  asock_socket *sock;
  fx_rec *rec;
  int state;
  int round;
  size_t got;
  int ok; /* finished every step */
  unsigned char out[FX_MSG];
  unsigned char in[FX_MSG];
} fx_client;

static fx_client clients[4];
static int nclients;

static void client_next(fx_client *c, int r) {
  asock_op *op = c->rec->op;
  size_t i;

  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) != 0) {
      /* The server hears of it by the end of its stream. */
      c->state = C_DONE;
      fx_close(c->sock);
      return;
    }
    switch (c->state) {
    case C_CONNECT:
      fx_check_code(asock_socket_set_nodelay(c->sock, 1), "client",
                    "asock_socket_set_nodelay");
      c->state = C_SEND;
      break;
    case C_SEND:
      c->got = 0;
      c->state = C_RECEIVE;
      break;
    case C_RECEIVE:
      for (i = 0; i < asock_op_bytes(op); i++) {
        size_t pos = (size_t)c->round * FX_MSG + c->got + i;
        if (c->in[c->got + i] != fx_byte(c->id, pos)) {
          fx_fail("client %d: byte %llu echoed wrong", c->id,
                  (unsigned long long)pos);
          c->state = C_DONE;
          return;
        }
      }
      c->got += asock_op_bytes(op);
      if (c->got == FX_MSG) {
        c->round++;
        c->state = c->round < FX_ROUNDS ? C_SEND : C_DISCONNECT;
      }
      break;
    case C_DISCONNECT:
      c->ok = 1;
      c->state = C_DONE;
      return;
    default:
      return;
    }
    switch (c->state) {
    case C_SEND:
      for (i = 0; i < FX_MSG; i++)
        c->out[i] = fx_byte(c->id, (size_t)c->round * FX_MSG + i);
      asock_op_set_buffer(op, c->out, FX_MSG, 0, FX_MSG);
      r = fx_started(c->rec, asock_send(c->sock, op), "asock_send");
      break;
    case C_RECEIVE:
      asock_op_set_buffer(op, c->in, FX_MSG, c->got, FX_MSG - c->got);
      r = fx_started(c->rec, asock_receive(c->sock, op), "asock_receive");
      break;
    default:
      asock_op_clear_buffer(op);
      r = fx_started(c->rec, asock_disconnect(c->sock, op), "asock_disconnect");
      break;
    }
  }
}

static void client_done(fx_rec *rec) { client_next(rec->ctx, 0); }

/* Starts client `id` to addr, or to host (when not NULL) at addr's port. */
static void client_start(int id, const struct sockaddr_storage *addr,
                         const char *host) {
  fx_client *c = &clients[nclients++];
  int r;

  memset(c, 0, sizeof(*c));
  c->id = id;
  c->state = C_DONE;
  r = asock_tcp_create(&c->sock, fx.loop);
  fx_check_code(r, "client", "asock_tcp_create");
  if (r != 0)
    return;
  fx_track(c->sock);
  c->rec = fx_op("client", client_done, c);
  if (c->rec == NULL)
    return;
  /* A deadline far off: the wheel and its timer take part. */
  asock_op_set_timeout(c->rec->op, tu_ms(20000));
  c->state = C_CONNECT;
  if (host != NULL) {
    r = asock_connect_host(c->sock, c->rec->op, host, tu_port(addr));
  } else {
    asock_op_set_remote(c->rec->op, (const struct sockaddr *)addr);
    r = asock_connect(c->sock, c->rec->op);
  }
  client_next(c, fx_started(c->rec, r, "asock_connect"));
}

static int clients_done(void) {
  int i;
  for (i = 0; i < nclients; i++)
    if (clients[i].state != C_DONE)
      return 0;
  return 1;
}

static int clients_ok(void) {
  int i;
  for (i = 0; i < nclients; i++)
    if (!clients[i].ok)
      return 0;
  return 1;
}

/* Clients done, and every server connection ended by the disconnects. */
static int echo_done(void) {
  return clients_done() &&
         asock__load_u32(&servers_ended) == asock__load_u32(&nservers);
}

static void scenario_echo(void) {
  struct sockaddr_storage addr;
  int i;

  if (fx_listen(&addr) != 0)
    return;
  for (i = 0; i < 3; i++)
    client_start(i, &addr, NULL);
  fx_run(echo_done);
  fx.complete = clients_ok() && asock__load_u32(&nservers) == 3;
}

static void scenario_connect_host(void) {
  struct sockaddr_storage addr;

  if (fx_listen(&addr) != 0)
    return;
  client_start(0, &addr, "localhost");
  fx_run(echo_done);
  fx.complete = clients_ok();
}

/* Streams large enough to queue: client 0 sends BULK bytes in one gathered
 * send through a small send buffer while receiving the echo, then
 * disconnects; client 1 starts the same send and aborts its connection at
 * once; client 2 waits for data that never comes, with a short timeout. */
enum { BULK = 96 * 1024, B_STREAM = 0, B_ABORT = 1, B_IDLE = 2 };

typedef struct fx_bulk {
  int id;
  asock_socket *sock;
  fx_rec *ctl;  /* connect, then disconnect */
  fx_rec *send; /* the large send */
  fx_rec *recv; /* the echo, or the idle receive */
  int connected;
  int sent; /* the send completed with 0 */
  size_t got;
  int ended; /* nothing of it is left to complete */
  int ok;
  asock_buf list[2];
} fx_bulk;

static fx_bulk bulks[3];
static unsigned char *bulk_out;
static unsigned char *bulk_in;

static void bulk_end(fx_bulk *b, int ok) {
  if (b->ended)
    return;
  b->ended = 1;
  b->ok = ok;
  fx_close(b->sock);
}

static void bulk_disconnect(fx_bulk *b) {
  int r;
  if (!b->sent || b->got < BULK)
    return;
  r = fx_started(b->ctl, asock_disconnect(b->sock, b->ctl->op),
                 "asock_disconnect");
  if (r != ASOCK_PENDING)
    bulk_end(b, r == 0 && asock_op_status(b->ctl->op) == 0);
}

static void bulk_recv_next(fx_bulk *b, int r) {
  asock_op *op = b->recv->op;
  size_t i;
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) != 0) {
      bulk_end(b, b->id == B_IDLE && r == 0 &&
                      asock_op_status(op) == ASOCK_ETIMEDOUT);
      return;
    }
    for (i = 0; i < asock_op_bytes(op); i++)
      if (bulk_in[b->got + i] != fx_byte(b->id, b->got + i)) {
        fx_fail("bulk: byte %llu echoed wrong",
                (unsigned long long)(b->got + i));
        bulk_end(b, 0);
        return;
      }
    b->got += asock_op_bytes(op);
    if (b->got == BULK) {
      bulk_disconnect(b);
      return;
    }
    asock_op_set_buffer(op, bulk_in, BULK, b->got, BULK - b->got);
    r = fx_started(b->recv, asock_receive(b->sock, op), "asock_receive");
  }
}

static void bulk_recv_done(fx_rec *rec) { bulk_recv_next(rec->ctx, 0); }

static void bulk_send_result(fx_bulk *b, int r) {
  if (r == ASOCK_PENDING)
    return;
  if (r < 0 || asock_op_status(b->send->op) != 0) {
    bulk_end(b, b->id == B_ABORT);
    return;
  }
  b->sent = 1;
  if (b->id == B_STREAM)
    bulk_disconnect(b);
  else
    bulk_end(b, 0); /* the abort came too late to matter */
}

static void bulk_send_done(fx_rec *rec) { bulk_send_result(rec->ctx, 0); }

static void bulk_connected(fx_bulk *b) {
  int size = 4096;
  int r;

  fx_check_code(asock_socket_send_buffer_size(b->sock, &size), "bulk",
                "asock_socket_send_buffer_size");
  if (b->id == B_IDLE) {
    asock_op_set_timeout(b->recv->op, 30);
    bulk_recv_next(b, fx_started(b->recv, asock_receive(b->sock, b->recv->op),
                                 "asock_receive"));
    return;
  }
  if (b->id == B_STREAM) {
    asock_op_set_buffer(b->recv->op, bulk_in, BULK, 0, BULK);
    bulk_recv_next(b, fx_started(b->recv, asock_receive(b->sock, b->recv->op),
                                 "asock_receive"));
    if (b->ended)
      return;
  }
  b->list[0].base = bulk_out;
  b->list[0].len = BULK / 3;
  b->list[1].base = bulk_out + BULK / 3;
  b->list[1].len = BULK - BULK / 3;
  asock_op_set_buffer_list(b->send->op, b->list, 2);
  r = fx_started(b->send, asock_send(b->sock, b->send->op), "asock_send");
  if (b->id == B_ABORT && r == ASOCK_PENDING) {
    r = asock_socket_close(b->sock, ASOCK_CLOSE_ABORT);
    if (r != 0)
      fx_fail("bulk: asock_socket_close(ASOCK_CLOSE_ABORT): %s",
              asock_err_name(r));
    fx_track_closed(b->sock);
    return;
  }
  bulk_send_result(b, r);
}

static void bulk_ctl_next(fx_bulk *b, int r) {
  if (r == ASOCK_PENDING)
    return;
  if (r < 0 || asock_op_status(b->ctl->op) != 0) {
    bulk_end(b, 0);
    return;
  }
  if (!b->connected) {
    b->connected = 1;
    bulk_connected(b);
    return;
  }
  bulk_end(b, 1); /* disconnected */
}

static void bulk_ctl_done(fx_rec *rec) { bulk_ctl_next(rec->ctx, 0); }

/* Done once every client ended and its ops completed, and the server saw
 * every stream end. */
static int bulk_done(void) {
  int i;
  for (i = 0; i < 3; i++) {
    fx_bulk *b = &bulks[i];
    if (!b->ended || (b->send != NULL && b->send->calls < b->send->pending) ||
        (b->recv != NULL && b->recv->calls < b->recv->pending))
      return 0;
  }
  return asock__load_u32(&servers_ended) == asock__load_u32(&nservers);
}

static void scenario_bulk(void) {
  static unsigned char out[BULK];
  static unsigned char in[BULK];
  struct sockaddr_storage addr;
  size_t i;
  int id;

  bulk_out = out;
  bulk_in = in;
  for (i = 0; i < BULK; i++)
    out[i] = fx_byte(B_STREAM, i);
  memset(bulks, 0, sizeof(bulks));
  for (id = 0; id < 3; id++)
    bulks[id].ended = 1;
  if (fx_listen(&addr) != 0)
    return;
  for (id = 0; id < 3; id++) {
    fx_bulk *b = &bulks[id];
    int r;

    b->id = id;
    r = asock_tcp_create(&b->sock, fx.loop);
    fx_check_code(r, "bulk", "asock_tcp_create");
    if (r != 0)
      continue;
    fx_track(b->sock);
    b->ended = 0;
    b->ctl = fx_op("bulk connect/disconnect", bulk_ctl_done, b);
    b->send = fx_op("bulk send", bulk_send_done, b);
    b->recv = fx_op("bulk receive", bulk_recv_done, b);
    if (b->ctl == NULL || b->send == NULL || b->recv == NULL) {
      bulk_end(b, 0);
      continue;
    }
    asock_op_set_remote(b->ctl->op, (const struct sockaddr *)&addr);
    bulk_ctl_next(b, fx_started(b->ctl, asock_connect(b->sock, b->ctl->op),
                                "asock_connect"));
  }
  fx_run(bulk_done);
  fx.complete = bulks[0].ok && bulks[1].ok && bulks[2].ok;
}

/* ---- UDP ------------------------------------------------------------- */

enum { U_DATAGRAMS = 4, U_LEN = 48 };

/* b, connected to a, sends a U_DATAGRAMS datagrams (plain and gathered);
 * a takes them with a buffer-less receive-from and a receive-message-from
 * posted side by side, cancels the one left waiting, and replies to b. */
typedef struct fx_udp {
  asock_socket *a;
  asock_socket *b;
  struct sockaddr_storage a_addr;
  struct sockaddr_storage b_addr;
  fx_rec *recv_from;  /* on a, buffer-less */
  fx_rec *recv_msg;   /* on a, into msg_in */
  fx_rec *send;       /* on b, to its default peer a */
  fx_rec *reply;      /* on a, to b */
  fx_rec *reply_recv; /* on b, into reply_in */
  int a_got;          /* datagrams a received */
  int a_done;         /* a's receives that ended */
  int sent;           /* datagrams b sent */
  int send_done;
  int reply_pending;
  int reply_recv_done;
  int ok_reply; /* b received the reply intact */
  unsigned char out[U_DATAGRAMS][U_LEN];
  unsigned char msg_in[U_LEN];
  unsigned char reply_out[U_LEN];
  unsigned char reply_in[U_LEN];
  asock_buf list[2];
} fx_udp;

static fx_udp u;

static void udp_fill(unsigned char *p, int n) {
  int i;
  for (i = 0; i < U_LEN; i++)
    p[i] = (unsigned char)(n * 13 + i);
}

static int udp_intact(const unsigned char *p, size_t len) {
  int n;
  int i;
  if (p == NULL || len != U_LEN)
    return 0;
  n = p[0] / 13;
  for (i = 0; i < U_LEN; i++)
    if (p[i] != (unsigned char)(n * 13 + i))
      return 0;
  return 1;
}

static void fx_cancel(fx_rec *rec) {
  if (rec != NULL && asock_op_is_pending(rec->op)) {
    int r = asock_cancel(rec->op);
    if (r != 0)
      fx_fail("%s: asock_cancel: %s", rec->what, asock_err_name(r));
  }
}

/* a's receives both ended: reply, or tell b no reply comes. */
static void udp_a_finished(void) {
  int r;
  if (u.a_got == U_DATAGRAMS) {
    r = fx_started(u.reply, asock_send_to(u.a, u.reply->op), "asock_send_to");
    if (r == ASOCK_PENDING) {
      u.reply_pending = 1;
      return;
    }
    if (r == 0 && asock_op_status(u.reply->op) == 0)
      return;
  }
  fx_cancel(u.reply_recv);
}

static void udp_reply_done(fx_rec *rec) {
  u.reply_pending = 0;
  if (asock_op_status(rec->op) != 0)
    fx_cancel(u.reply_recv);
}

/* One of a's receives: counts the datagram and posts again until all came,
 * then cancels the other. */
static void udp_recv_next(fx_rec *rec, int r) {
  asock_op *op = rec->op;
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) != 0)
      break;
    if (!udp_intact(asock_op_data(op), asock_op_bytes(op)))
      fx_fail("udp: a datagram arrived damaged (%llu bytes)",
              (unsigned long long)asock_op_bytes(op));
    if (++u.a_got == U_DATAGRAMS) {
      fx_cancel(rec == u.recv_from ? u.recv_msg : u.recv_from);
      break;
    }
    if (rec == u.recv_from) {
      asock_op_clear_buffer(op);
      r = fx_started(rec, asock_receive_from(u.a, op), "asock_receive_from");
    } else {
      r = fx_started(rec, asock_receive_message_from(u.a, op),
                     "asock_receive_message_from");
    }
  }
  if (++u.a_done == 2)
    udp_a_finished();
}

static void udp_recv_done(fx_rec *rec) { udp_recv_next(rec, 0); }

static void udp_send_next(int r) {
  asock_op *op = u.send->op;
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) != 0 || ++u.sent == U_DATAGRAMS)
      break;
    udp_fill(u.out[u.sent], u.sent);
    if (u.sent % 2 == 1) {
      /* A gathered datagram: sendmsg(). */
      u.list[0].base = u.out[u.sent];
      u.list[0].len = 20;
      u.list[1].base = u.out[u.sent] + 20;
      u.list[1].len = U_LEN - 20;
      asock_op_set_buffer_list(op, u.list, 2);
    } else {
      asock_op_set_buffer(op, u.out[u.sent], U_LEN, 0, U_LEN);
    }
    r = fx_started(u.send, asock_send_to(u.b, op), "asock_send_to");
  }
  u.send_done = 1;
  /* Datagrams that were not sent will not come. */
  if (u.sent < U_DATAGRAMS) {
    fx_cancel(u.recv_from);
    fx_cancel(u.recv_msg);
  }
}

static void udp_send_done(fx_rec *rec) {
  (void)rec;
  udp_send_next(0);
}

static void udp_reply_recv_next(int r) {
  asock_op *op = u.reply_recv->op;
  if (r == ASOCK_PENDING)
    return;
  u.reply_recv_done = 1;
  if (r == 0 && asock_op_status(op) == 0) {
    if (!udp_intact(u.reply_in, asock_op_bytes(op)))
      fx_fail("udp: the reply arrived damaged");
    else
      u.ok_reply = 1;
  }
}

static void udp_reply_recv_done(fx_rec *rec) {
  (void)rec;
  udp_reply_recv_next(0);
}

static asock_socket *udp_socket(struct sockaddr_storage *addr) {
  asock_socket *s;
  int len = (int)sizeof(*addr);
  int r = asock_udp_create(&s, fx.loop);

  fx_check_code(r, "udp", "asock_udp_create");
  if (r != 0)
    return NULL;
  fx_track(s);
  tu_addr("127.0.0.1", 0, addr);
  r = asock_udp_bind(s, (struct sockaddr *)addr, 0);
  fx_check_code(r, "udp", "asock_udp_bind");
  if (r == 0) {
    r = asock_socket_local_address(s, (struct sockaddr *)addr, &len);
    fx_check_code(r, "udp", "asock_socket_local_address");
  }
  return r == 0 ? s : NULL;
}

static int udp_done(void) {
  return u.a_done == 2 && u.send_done && u.reply_recv_done && !u.reply_pending;
}

static void scenario_udp(void) {
  int r;

  memset(&u, 0, sizeof(u));
  u.a = udp_socket(&u.a_addr);
  u.b = udp_socket(&u.b_addr);
  if (u.a == NULL || u.b == NULL)
    return;
  r = asock_udp_connect(u.b, (const struct sockaddr *)&u.a_addr);
  fx_check_code(r, "udp", "asock_udp_connect");
  if (r != 0)
    return;
  u.recv_from = fx_op("udp receive-from", udp_recv_done, NULL);
  u.recv_msg = fx_op("udp receive-message-from", udp_recv_done, NULL);
  u.send = fx_op("udp send-to", udp_send_done, NULL);
  u.reply = fx_op("udp reply", udp_reply_done, NULL);
  u.reply_recv = fx_op("udp reply receive", udp_reply_recv_done, NULL);
  if (u.recv_from == NULL || u.recv_msg == NULL || u.send == NULL ||
      u.reply == NULL || u.reply_recv == NULL)
    return;
  asock_op_set_timeout(u.recv_from->op, tu_ms(20000));
  asock_op_set_buffer(u.recv_msg->op, u.msg_in, U_LEN, 0, U_LEN);
  asock_op_set_buffer(u.reply_recv->op, u.reply_in, U_LEN, 0, U_LEN);
  udp_fill(u.reply_out, 0);
  asock_op_set_buffer(u.reply->op, u.reply_out, U_LEN, 0, U_LEN);
  asock_op_set_remote(u.reply->op, (const struct sockaddr *)&u.b_addr);

  udp_reply_recv_next(fx_started(u.reply_recv,
                                 asock_receive_from(u.b, u.reply_recv->op),
                                 "asock_receive_from"));
  udp_recv_next(u.recv_from,
                fx_started(u.recv_from,
                           asock_receive_from(u.a, u.recv_from->op),
                           "asock_receive_from"));
  udp_recv_next(u.recv_msg,
                fx_started(u.recv_msg,
                           asock_receive_message_from(u.a, u.recv_msg->op),
                           "asock_receive_message_from"));
  udp_fill(u.out[0], 0);
  asock_op_set_buffer(u.send->op, u.out[0], U_LEN, 0, U_LEN);
  udp_send_next(
      fx_started(u.send, asock_send_to(u.b, u.send->op), "asock_send_to"));
  fx_run(udp_done);
  fx.complete = u.a_got == U_DATAGRAMS && u.sent == U_DATAGRAMS && u.ok_reply;
}

/* ---- loop groups ----------------------------------------------------- */

static void on_group_conn(asock_group *group, asock_socket *sock, void *arg) {
  (void)group;
  (void)arg;
  server_start(sock, 1);
}

/* flags for asock_group_listen(); grace_ms for asock_group_stop(). */
static void scenario_group(unsigned int flags, uint64_t grace_ms) {
  struct sockaddr_storage addr;
  asock_group *group = NULL;
  int r;
  int i;

  r = asock_group_create(&group, fx.pool, 2);
  fx_check_code(r, "group", "asock_group_create");
  if (r != 0) {
    if (group != NULL)
      fx_fail("asock_group_create failed but gave a group");
    return;
  }
  tu_addr("127.0.0.1", 0, &addr);
  r = asock_group_listen(group, (const struct sockaddr *)&addr, 16, flags,
                         on_group_conn, NULL);
  fx_check_code(r, "group", "asock_group_listen");
  if (r == 0) {
    r = asock_group_local_address(group, &addr);
    fx_check_code(r, "group", "asock_group_local_address");
  }
  if (r == 0) {
    for (i = 0; i < 2; i++)
      client_start(i, &addr, NULL);
    fx_run(clients_done);
  }
  r = asock_group_stop(group, grace_ms);
  if (r != 0)
    fx_fail("asock_group_stop: %s", asock_err_name(r));
  r = asock_group_destroy(group);
  if (r != 0)
    fx_fail("asock_group_destroy: %s", asock_err_name(r));
  fx.complete = clients_ok();
}

static void scenario_group_balanced(void) { scenario_group(0, 100); }
static void scenario_group_handoff(void) {
  scenario_group(ASOCK_GROUP_HANDOFF, 0);
}

/* ---- the sweep, in the parent ------------------------------------------ */

typedef struct fx_scenario {
  const char *name;
  void (*run)(void);
  /* Points the scenario must reach when nothing fails, so that the sweep
   * is known to cover them. */
  asock__fault_point reaches[24];
} fx_scenario;

#define P(name) ASOCK__FAULT_##name
#define END ASOCK__FAULT_COUNT

static const fx_scenario scenarios[] = {
    {"echo", scenario_echo, {P(ALLOC),       P(REGION),
                             P(SOCKET),      P(BIND),
                             P(LISTEN),      P(ACCEPT),
                             P(CONNECT),     P(RECV),
                             P(SEND),        P(SHUTDOWN),
                             P(CLOSE),       P(SETSOCKOPT),
                             P(GETSOCKOPT),  P(GETSOCKNAME),
                             P(GETPEERNAME), P(POLL_INIT),
                             P(POLL_START),  P(TIMER_START),
                             P(IDLE_START),  P(ASYNC_INIT),
                             P(LOOP_INIT),   END}},
    {"bulk",
     scenario_bulk,
     {P(SENDMSG), P(RECV), P(SEND), P(SETSOCKOPT), P(GETSOCKOPT), P(POLL_START),
      P(TIMER_START), END}},
    {"connect_host",
     scenario_connect_host,
     {P(GETADDRINFO), P(CONNECT), P(RECV), P(SEND), P(SHUTDOWN), END}},
    {"udp",
     scenario_udp,
     {P(SOCKET), P(BIND), P(CONNECT), P(RECVFROM), P(RECVMMSG), P(SENDTO),
      P(SENDMSG), P(SETSOCKOPT), P(GETSOCKNAME), P(POLL_START), END}},
    {"group",
     scenario_group_balanced,
     {P(THREAD_CREATE), P(MUTEX_INIT), P(COND_INIT), P(ASYNC_INIT),
      P(ASYNC_SEND), P(LOOP_INIT), P(ACCEPT), END}},
    {"group_handoff",
     scenario_group_handoff,
     {P(THREAD_CREATE), P(ASYNC_SEND), P(ACCEPT), END}},
};

/* The errors injected: what each call could really fail with. The receive
 * and send calls also fail with EINTR (to be retried unseen) and EAGAIN
 * (a readiness report that was wrong). */
typedef struct fx_fault {
  asock__fault_point point;
  int err;
} fx_fault;

static const fx_fault faults[] = {
    {P(ALLOC), UV_ENOMEM},          {P(REGION), UV_ENOMEM},
    {P(SOCKET), UV_EMFILE},         {P(BIND), UV_EADDRINUSE},
    {P(LISTEN), UV_EADDRINUSE},     {P(ACCEPT), UV_EMFILE},
    {P(ACCEPT), UV_ECONNABORTED},   {P(CONNECT), UV_ECONNREFUSED},
    {P(RECV), UV_ECONNRESET},       {P(RECV), UV_EINTR},
    {P(RECV), UV_EAGAIN},           {P(RECVFROM), UV_ECONNREFUSED},
    {P(RECVFROM), UV_EINTR},        {P(RECVMSG), UV_ECONNREFUSED},
    {P(RECVMMSG), UV_ECONNREFUSED}, {P(RECVMMSG), UV_EAGAIN},
    {P(SEND), UV_ECONNRESET},       {P(SEND), UV_EINTR},
    {P(SEND), UV_EAGAIN},           {P(SENDTO), UV_ENETUNREACH},
    {P(SENDTO), UV_EAGAIN},         {P(SENDMSG), UV_EPIPE},
    {P(SHUTDOWN), UV_ENOTCONN},     {P(CLOSE), UV_EIO},
    {P(SETSOCKOPT), UV_EINVAL},     {P(GETSOCKOPT), UV_EINVAL},
    {P(GETSOCKNAME), UV_EINVAL},    {P(GETPEERNAME), UV_ENOTCONN},
    {P(POLL_INIT), UV_EBADF},       {P(POLL_START), UV_EBADF},
    {P(TIMER_START), UV_EINVAL},    {P(IDLE_START), UV_EINVAL},
    {P(ASYNC_INIT), UV_EMFILE},     {P(ASYNC_SEND), UV_EINVAL},
    {P(GETADDRINFO), UV_ENOMEM},    {P(LOOP_INIT), UV_EMFILE},
    {P(THREAD_CREATE), UV_EAGAIN},  {P(MUTEX_INIT), UV_ENOMEM},
    {P(COND_INIT), UV_ENOMEM},
};

/* The descriptors the process has open. */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* What a child reports. */
typedef struct fx_result {
  int written;
  int complete;
  int fired;
  int stalls;
  uint64_t calls[ASOCK__FAULT_COUNT];
  char failure[400];
} fx_result;

static void child_run(const fx_scenario *sc, const fx_fault *f, uint64_t k,
                      int out) {
  fx_result res;
  int fds = open_fds();
  int i;

  /* check's handler would take the whole process group with it. */
  signal(SIGALRM, SIG_DFL);
  alarm((unsigned int)(tu_ms(30000) / 1000));
  memset(&fx, 0, sizeof(fx));
  memset(servers, 0, sizeof(servers));
  memset(clients, 0, sizeof(clients));
  nclients = 0;
  listener = NULL;
  asock__store_u32(&nservers, 0);
  asock__store_u32(&servers_ended, 0);
  uv_mutex_init(&fx.lock);
  asock__store_u64(&fx_live, 0);
  asock_replace_allocator(fx_malloc, fx_realloc, fx_calloc, fx_free);
  asock__fault_reset();
  if (f != NULL)
    asock__fault_arm(f->point, k, f->err);
  fx.faulty = f != NULL;
  if (fx_begin() == 0)
    sc->run();
  fx_end();
  if (open_fds() != fds)
    fx_fail("%d descriptor(s) open before the run, %d after", fds, open_fds());

  memset(&res, 0, sizeof(res));
  res.written = 1;
  res.complete = fx.complete;
  res.stalls = fx.stalls;
  res.fired = f != NULL && asock__fault_fired(f->point);
  for (i = 0; i < ASOCK__FAULT_COUNT; i++)
    res.calls[i] = asock__fault_calls((asock__fault_point)i);
  memcpy(res.failure, fx.failure, sizeof(res.failure));
  if (write(out, &res, sizeof(res)) != (ssize_t)sizeof(res))
    _exit(3);
  close(out);
  /* exit(), not _exit(): AddressSanitizer checks for leaks at exit. */
  exit(0);
}

/* Runs one case in a child: 0 and *res, or -1 with why in msg. */
static int run_case(const fx_scenario *sc, const fx_fault *f, uint64_t k,
                    fx_result *res, char *msg, size_t msg_len) {
  int fds[2];
  pid_t pid;
  int status;
  size_t got = 0;

  memset(res, 0, sizeof(*res));
  ck_assert_int_eq(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    child_run(sc, f, k, fds[1]);
  }
  close(fds[1]);
  while (got < sizeof(*res)) {
    ssize_t n = read(fds[0], (char *)res + got, sizeof(*res) - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(fds[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFSIGNALED(status)) {
    snprintf(msg, msg_len, "%s (signal %d)",
             WTERMSIG(status) == SIGALRM ? "hung"
             : WTERMSIG(status) == SIGABRT
                 ? "aborted; a sanitizer's report may be above"
                 : "crashed",
             WTERMSIG(status));
    return -1;
  }
  if (got != sizeof(*res) || !res->written) {
    snprintf(msg, msg_len, "exited with status %d without a report",
             WEXITSTATUS(status));
    return -1;
  }
  if (WEXITSTATUS(status) != 0) {
    snprintf(msg, msg_len,
             "exited with status %d (a sanitizer's report is above)",
             WEXITSTATUS(status));
    return -1;
  }
  if (res->failure[0] != '\0') {
    snprintf(msg, msg_len, "%s", res->failure);
    return -1;
  }
  return 0;
}

static int quick_sweep(void) {
  const char *env = getenv("ASOCK_FAULT_SWEEP");
  return env != NULL && strcmp(env, "quick") == 0;
}

/* The k to try for a point called n times: every k up to a cap, then a
 * sample, always the last. Returns the next k after k, 0 when done. */
static uint64_t next_k(uint64_t k, uint64_t n) {
  uint64_t all = quick_sweep() ? 3 : 20;
  uint64_t step;

  if (k >= n)
    return 0;
  if (k < all)
    return k + 1;
  step = (n - all) / (quick_sweep() ? 2 : 6);
  if (step < 1)
    step = 1;
  return k + step < n ? k + step : n;
}

/* ASOCK_FAULT_CASE=point:k (say "send:1") runs only that case. */
static int case_selected(const fx_fault *f, uint64_t k) {
  const char *only = getenv("ASOCK_FAULT_CASE");
  const char *colon;
  size_t len;

  if (only == NULL)
    return 1;
  colon = strchr(only, ':');
  len = colon != NULL ? (size_t)(colon - only) : strlen(only);
  if (strlen(asock__fault_name(f->point)) != len ||
      strncmp(only, asock__fault_name(f->point), len) != 0)
    return 0;
  return colon == NULL || strtoull(colon + 1, NULL, 10) == k;
}

static void sweep(const fx_scenario *sc) {
  const char *only = getenv("ASOCK_FAULT_SCENARIO");
  uv_loop_t uv;
  fx_result base;
  fx_result res;
  char msg[512];
  char first[700] = "";
  int failures = 0;
  unsigned long cases = 0;
  unsigned long fired = 0;
  unsigned long completed = 0;
  unsigned long stalled = 0;
  size_t i;

  if (only != NULL && strcmp(only, sc->name) != 0)
    return;
  /* libuv opens a pipe for its signal handling with the first loop of a
   * process and keeps it: made here, it is open before every run. */
  ck_assert_int_eq(uv_loop_init(&uv), 0);
  ck_assert_int_eq(uv_loop_close(&uv), 0);

  /* The counting run: nothing fails, and the scenario must work. */
  if (run_case(sc, NULL, 0, &base, msg, sizeof(msg)) != 0)
    ck_abort_msg("scenario %s, no fault: %s", sc->name, msg);
  ck_assert_msg(base.complete, "scenario %s did not complete without faults",
                sc->name);
  if (getenv("ASOCK_FAULT_VERBOSE") != NULL)
    for (i = 0; i < ASOCK__FAULT_COUNT; i++)
      printf("faults: %s: %s called %llu times\n", sc->name,
             asock__fault_name((asock__fault_point)i),
             (unsigned long long)base.calls[i]);
  for (i = 0; sc->reaches[i] != END; i++)
    ck_assert_msg(base.calls[sc->reaches[i]] > 0,
                  "scenario %s never reached point %s", sc->name,
                  asock__fault_name(sc->reaches[i]));

  for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
    const fx_fault *f = &faults[i];
    uint64_t n = base.calls[f->point];
    uint64_t k;

    for (k = next_k(0, n); k != 0; k = next_k(k, n)) {
      if (!case_selected(f, k))
        continue;
      cases++;
      if (run_case(sc, f, k, &res, msg, sizeof(msg)) == 0) {
        if (getenv("ASOCK_FAULT_VERBOSE") != NULL)
          printf("faults: %s %s %s k=%llu: %s%s%s\n", sc->name,
                 asock__fault_name(f->point), asock_err_name(f->err),
                 (unsigned long long)k, res.fired ? "fired" : "not reached",
                 res.complete ? ", completed" : "",
                 res.stalls ? ", stalled" : "");
        fired += res.fired != 0;
        completed += res.complete != 0;
        stalled += res.stalls != 0;
        continue;
      }
      failures++;
      fprintf(stderr,
              "faults: scenario %s, point %s failing with %s, k=%llu "
              "of %llu: %s\n",
              sc->name, asock__fault_name(f->point), asock_err_name(f->err),
              (unsigned long long)k, (unsigned long long)n, msg);
      if (first[0] == '\0')
        snprintf(first, sizeof(first),
                 "point %s failing with %s, k=%llu of %llu: %s",
                 asock__fault_name(f->point), asock_err_name(f->err),
                 (unsigned long long)k, (unsigned long long)n, msg);
    }
  }
  printf("faults: scenario %s: %lu cases (%lu fired, %lu still completed, "
         "%lu stalled), %d failed\n",
         sc->name, cases, fired, completed, stalled, failures);
  ck_assert_msg(failures == 0, "scenario %s: %d of %lu cases failed; first: %s",
                sc->name, failures, cases, first);
}

START_TEST(injection_reaches_the_calls) {
  asock_pool *pool = NULL;
  asock_pool_config cfg;
  asock_loop *loop = NULL;
  asock_socket *sock;
  struct sockaddr_storage addr;

  /* A failure armed for the first call comes back as the call's own. */
  asock_pool_config_init(&cfg);
  cfg.slice_count = 4;
  cfg.op_count = 4;
  asock__fault_reset();
  asock__fault_arm(ASOCK__FAULT_ALLOC, 1, UV_ENOMEM);
  ck_assert_asock(asock_pool_create(&pool, &cfg), ASOCK_ENOMEM);
  ck_assert(asock__fault_fired(ASOCK__FAULT_ALLOC));
  asock__fault_arm(ASOCK__FAULT_REGION, asock__fault_calls(P(REGION)) + 1,
                   UV_ENOMEM);
  ck_assert_asock(asock_pool_create(&pool, &cfg), ASOCK_ENOMEM);
  ck_assert_asock(asock_pool_create(&pool, &cfg), 0);
  ck_assert_asock(asock_loop_create(&loop, pool, NULL), 0);
  ck_assert_asock(asock_tcp_create(&sock, loop), 0);
  asock__fault_arm(ASOCK__FAULT_SOCKET, asock__fault_calls(P(SOCKET)) + 1,
                   UV_EMFILE);
  tu_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_tcp_listen(sock, (struct sockaddr *)&addr, 4, 0),
                  ASOCK_EMFILE);
  /* Disarmed once fired: the next call is the real one. */
  ck_assert_asock(asock_tcp_listen(sock, (struct sockaddr *)&addr, 4, 0), 0);
  ck_assert_uint_eq(asock__fault_calls(P(SOCKET)), 2);
  ck_assert_asock(asock_socket_close(sock, 0), 0);
  ck_assert_asock(asock_loop_close(loop), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  asock__fault_reset();
}
END_TEST

/* A waiting receive keeps its slice only while the tick that takes it back
 * can run: with the timer refused, it gives the slice back at once. */
START_TEST(refused_timer_keeps_no_slice) {
  tu_pair p;
  asock_op *op;
  asock_pool_stats st;
  int r;

  asock__fault_reset();
  tu_setup_pool(1024, 8, 0, 0);
  op = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  r = tu_receive(p.server, op);
  ck_assert_asock(r, ASOCK_PENDING);
  tu_send_all(p.client, "abc", 3);
  ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 3);
  asock__fault_arm(ASOCK__FAULT_TIMER_START,
                   asock__fault_calls(P(TIMER_START)) + 1, UV_EINVAL);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ck_assert(asock__fault_fired(ASOCK__FAULT_TIMER_START));
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_NONE);
  /* It still receives. */
  tu_send_all(p.client, "de", 2);
  ck_assert(tu_wait_calls(op, 2));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), 2);
  ck_assert_int_eq(memcmp(asock_op_data(op), "de", 2), 0);
  tu_teardown();
  asock__fault_reset();
}
END_TEST

START_TEST(sweep_scenario) { sweep(&scenarios[_i]); }
END_TEST

Suite *asock_test_suite_faults(void) {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("sweep");
  TCase *kept = tcase_create("kept");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, injection_reaches_the_calls);
  tcase_add_loop_test(tc, sweep_scenario, 0,
                      (int)(sizeof(scenarios) / sizeof(scenarios[0])));
  suite_add_tcase(s, tc);
  tcase_set_timeout(kept, ASOCK_TEST_TIMEOUT);
  tcase_add_test(kept, refused_timer_keeps_no_slice);
  suite_add_tcase(s, kept);
  return s;
}
