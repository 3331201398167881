/* Hostile peers against an asock echo server, server and clients on one
 * loop in one process: peers that drip a byte at a time, peers that send
 * without end and never read, peers that go silent, storms of resets, and a
 * flood of connections far beyond the listen backlog. Through each, a normal
 * client keeps doing request/response echoes, every one of which must come
 * back with exact bytes within a generous bound (10 s, stretched under
 * valgrind). Every op the server and the clients start is counted: each one
 * that returned ASOCK_PENDING must complete exactly once. */
#include <stdlib.h>
#include <string.h>

#include "tcp-util.h"

#define SLICE 4096
#define SLICES 1024
#define QUOTA 3
#define SRV_OPS 4 /* ops per server connection, each receive then send */
#define MAX_CONNS 2048
#define MAX_CLIENTS 2048
#define MAX_ACCEPTS 8
#define MSG_MAX 512
#define REQ 512 /* the normal client's request */
#define SEND_LOW 2048
#define SEND_HIGH 4096
#define SEND_CAP 8192
#define BOUND_MS 10000 /* the bound on every normal round trip */

/* ---- every op, counted ----------------------------------------------------
 */

typedef struct hop {
  asock_op *op;
  void *owner;
  int pending; /* started with ASOCK_PENDING, callback still to come */
} hop;

static int outstanding; /* hops pending now */
static int in_call;     /* inside an asock call that starts an op */

static int started(hop *h, int r) {
  in_call = 0;
  ck_assert_msg(r == ASOCK_PENDING || r <= 0, "start returned %d", r);
  if (r == ASOCK_PENDING) {
    ck_assert_msg(!h->pending, "an op pending twice");
    h->pending = 1;
    outstanding++;
  }
  return r;
}

#define START(h, call) (in_call = 1, started((h), (call)))

static hop *completed(asock_op *op) {
  hop *h = (hop *)asock_op_user_data(op);
  ck_assert_msg(!in_call, "a callback ran inside the call that started it");
  ck_assert_msg(h->pending, "a completion for an op not pending (kind %d, %s)",
                (int)asock_op_last_kind(op),
                asock_err_name(asock_op_status(op)));
  ck_assert(!asock_op_is_pending(op));
  h->pending = 0;
  outstanding--;
  return h;
}

static void hop_init(hop *h, void *owner, asock_op_cb cb, uint64_t timeout) {
  memset(h, 0, sizeof(*h));
  ck_assert_asock(asock_op_acquire(tu_pool, &h->op), 0);
  h->owner = owner;
  ck_assert_asock(asock_op_set_callback(h->op, cb), 0);
  ck_assert_asock(asock_op_set_user_data(h->op, h), 0);
  ck_assert_asock(asock_op_set_timeout(h->op, timeout), 0);
}

static void hop_release(hop *h) {
  if (h->op == NULL)
    return;
  ck_assert(!h->pending);
  ck_assert_asock(asock_op_release(tu_pool, h->op), 0);
  h->op = NULL;
}

/* How server ops ended, by status. */
enum { ST_OK, ST_EOF, ST_RESET, ST_CANCELED, ST_TIMEDOUT, ST_PIPE, ST_OTHER };
static int srv_recv_st[ST_OTHER + 1];
static int srv_send_st[ST_OTHER + 1];
static int accept_st[ST_OTHER + 1];
static int other_status;

static void count_status(int *bins, int status) {
  int bin = ST_OTHER;
  switch (status) {
  case 0:
    bin = ST_OK;
    break;
  case ASOCK_EOF:
    bin = ST_EOF;
    break;
  case ASOCK_ECONNRESET:
  case ASOCK_ECONNABORTED:
    bin = ST_RESET;
    break;
  case ASOCK_ECANCELED:
    bin = ST_CANCELED;
    break;
  case ASOCK_ETIMEDOUT:
    bin = ST_TIMEDOUT;
    break;
  case ASOCK_EPIPE:
    bin = ST_PIPE;
    break;
  default:
    other_status = status;
    break;
  }
  bins[bin]++;
}

/* ---- the server -----------------------------------------------------------
 */

typedef struct conn {
  asock_socket *sock;
  hop h[SRV_OPS];
  hop *parked[SRV_OPS]; /* received, waiting for room to send, in order */
  int nparked;
  int live;
  int closed;
  int end_status; /* what ended it */
  unsigned short port;
  uint64_t received;
  uint64_t echoed;
  int receives;
  size_t max_held; /* most slices seen held by the socket */
} conn;

static conn conns[MAX_CONNS];
static int nconns; /* slots used so far (high-water) */
static int conns_live;
static int conns_accepted;
static int conns_refused;
static asock_socket *listener;
static struct sockaddr_storage srv_addr;
static hop accepts[MAX_ACCEPTS];
static int naccepts;
static int listener_closed;
static uint64_t srv_recv_timeout;
static int enobufs;

static void conn_maybe_free(conn *c) {
  int i;
  if (!c->live || !c->closed)
    return;
  for (i = 0; i < SRV_OPS; i++)
    if (c->h[i].pending)
      return;
  for (i = 0; i < SRV_OPS; i++)
    hop_release(&c->h[i]);
  c->live = 0;
  conns_live--;
}

static void conn_close(conn *c, int status) {
  if (c->closed)
    return;
  c->closed = 1;
  c->end_status = status;
  ck_assert_asock(asock_socket_close(c->sock, 0), 0);
}

static void note_held(conn *c) {
  size_t held = asock_socket_slices_held(c->sock);
  ck_assert_uint_le(held, QUOTA);
  if (held > c->max_held)
    c->max_held = held;
}

/* Carries an op of a connection on from a completion (r = 0) or the result
 * of a start, for as long as steps complete synchronously: receive, send
 * the same slice back, receive again. */
static void srv_run(conn *c, hop *h, int r) {
  asock_op *op = h->op;
  for (;;) {
    int status;
    if (c->closed || r == ASOCK_PENDING)
      return;
    if (r < 0) {
      conn_close(c, r);
      return;
    }
    status = asock_op_status(op);
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVE) {
      count_status(srv_recv_st, status);
      if (status != 0) {
        conn_close(c, status);
        return;
      }
      note_held(c);
      c->received += asock_op_bytes(op);
      c->receives++;
      if (c->nparked > 0) {
        c->parked[c->nparked++] = h; /* behind earlier bytes */
        return;
      }
      r = START(h, asock_send(c->sock, op));
      if (r == ASOCK_ENOBUFS) {
        /* The send would pass the cap: the bytes wait until the queue
         * falls to its low mark. */
        enobufs++;
        c->parked[c->nparked++] = h;
        return;
      }
    } else {
      count_status(srv_send_st, status);
      if (status != 0) {
        conn_close(c, status);
        return;
      }
      c->echoed += asock_op_bytes(op);
      r = START(h, asock_receive(c->sock, op));
    }
  }
}

static void srv_cb(asock_op *op) {
  hop *h = completed(op);
  conn *c = (conn *)h->owner;
  srv_run(c, h, 0);
  conn_maybe_free(c);
}

static void srv_watermark(asock_socket *sock, int above) {
  conn *c = (conn *)asock_socket_user_data(sock);
  if (above || c->closed)
    return;
  while (c->nparked > 0 && !c->closed) {
    hop *h = c->parked[0];
    int r = START(h, asock_send(c->sock, h->op));
    if (r == ASOCK_ENOBUFS)
      break;
    c->nparked--;
    memmove(c->parked, c->parked + 1, sizeof(c->parked[0]) * c->nparked);
    srv_run(c, h, r);
  }
  conn_maybe_free(c);
}

static void adopt(asock_socket *sock, const struct sockaddr *remote) {
  int value = 16384;
  conn *c = NULL;
  int i;
  /* Slots are not reused, so that each connection's record outlives it for
   * the checks at the end; one beyond them all is refused. */
  if (nconns == MAX_CONNS) {
    conns_refused++;
    ck_assert_asock(asock_socket_close(sock, ASOCK_CLOSE_ABORT), 0);
    return;
  }
  c = &conns[nconns++];
  memset(c, 0, sizeof(*c));
  c->sock = sock;
  c->live = 1;
  conns_live++;
  conns_accepted++;
  c->port =
      remote != NULL ? tu_port((const struct sockaddr_storage *)remote) : 0;
  ck_assert_asock(asock_socket_set_user_data(sock, c), 0);
  ck_assert_asock(
      asock_socket_set_send_limits(sock, SEND_LOW, SEND_HIGH, SEND_CAP), 0);
  ck_assert_asock(asock_socket_set_watermark_cb(sock, srv_watermark), 0);
  /* A small kernel buffer, so that a peer that does not read soon leaves
   * the echo queued in asock. */
  ck_assert_asock(asock_socket_send_buffer_size(sock, &value), 0);
  for (i = 0; i < SRV_OPS; i++)
    hop_init(&c->h[i], c, srv_cb, srv_recv_timeout);
  for (i = 0; i < SRV_OPS && !c->closed; i++)
    srv_run(c, &c->h[i], START(&c->h[i], asock_receive(sock, c->h[i].op)));
  conn_maybe_free(c);
}

static void accept_run(hop *h, int r) {
  for (;;) {
    int status;
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      ck_assert_msg(listener_closed, "accept refused: %s", asock_err_name(r));
      return;
    }
    status = asock_op_status(h->op);
    count_status(accept_st, status);
    if (status == 0)
      adopt(asock_op_accepted(h->op), asock_op_remote(h->op));
    if (listener_closed)
      return;
    /* Any other failure (ECONNABORTED, EMFILE) leaves the listener
     * listening: accept again. */
    r = START(h, asock_accept(listener, h->op));
  }
}

static void accept_cb(asock_op *op) { accept_run(completed(op), 0); }

static void srv_start(int backlog, int accept_ops) {
  int len = (int)sizeof(srv_addr);
  int i;
  tu_addr("127.0.0.1", 0, &srv_addr);
  ck_assert_asock(asock_tcp_create(&listener, tu_loop), 0);
  ck_assert_asock(
      asock_tcp_listen(listener, (struct sockaddr *)&srv_addr, backlog, 0), 0);
  ck_assert_asock(
      asock_socket_local_address(listener, (struct sockaddr *)&srv_addr, &len),
      0);
  naccepts = accept_ops;
  for (i = 0; i < naccepts; i++) {
    hop_init(&accepts[i], NULL, accept_cb, 0);
    accept_run(&accepts[i],
               START(&accepts[i], asock_accept(listener, accepts[i].op)));
  }
}

static void srv_close_listener(void) {
  if (listener_closed)
    return;
  listener_closed = 1;
  ck_assert_asock(asock_socket_close(listener, 0), 0);
}

/* ---- the clients ----------------------------------------------------------
 */

enum { K_NORMAL, K_DRIP, K_GREEDY, K_VANISH, K_STORM, K_FLOOD };

typedef struct client {
  int kind;
  uint32_t stream;
  asock_socket *sock;
  hop c; /* connect, then sends */
  hop r; /* receives */
  int closed;
  int connect_status; /* 1 until the connect completes */
  int end_status;     /* the status that ended its receives */
  unsigned short port;
  size_t msg_len; /* bytes of the message to send and see echoed */
  size_t sent;
  size_t got;
  int served; /* the whole echo came back, byte for byte */
  int rounds; /* the normal client's round trips */
  uint64_t round_start;
  uint64_t worst_ms;
  int drip_ready;
  unsigned char out[MSG_MAX];
  unsigned char in[MSG_MAX];
} client;

static client *clients;
static int nclients;
static client *by_port[65536];
static client *normal;
static int stop_normal;
static unsigned char greedy_out[64 * 1024];
#define GREEDY_TOTAL (4u << 20)

static void cli_close(client *cl, unsigned int flags) {
  if (cl->closed)
    return;
  cl->closed = 1;
  ck_assert_asock(asock_socket_close(cl->sock, flags), 0);
}

static void cli_after(client *cl, hop *h);

static void cli_cb(asock_op *op) {
  hop *h = completed(op);
  cli_after((client *)h->owner, h);
}

static void cli_recv(client *cl) {
  /* A silent peer, read at last, takes whatever comes. */
  size_t want = cl->kind == K_VANISH ? sizeof(cl->in) : cl->msg_len;
  int r;
  if (cl->closed || cl->r.pending)
    return;
  ck_assert_uint_lt(cl->got, want);
  ck_assert_asock(asock_op_set_buffer(cl->r.op, cl->in, sizeof(cl->in), cl->got,
                                      want - cl->got),
                  0);
  r = START(&cl->r, asock_receive(cl->sock, cl->r.op));
  ck_assert_msg(r >= 0, "client receive: %s", asock_err_name(r));
  if (r == 0)
    cli_after(cl, &cl->r);
}

/* Sends out[sent, sent + len). */
static void cli_send(client *cl, const unsigned char *mem, size_t len) {
  int r;
  if (cl->closed)
    return;
  ck_assert_asock(asock_op_set_buffer(cl->c.op, (void *)mem, len, 0, len), 0);
  r = START(&cl->c, asock_send(cl->sock, cl->c.op));
  ck_assert_msg(r >= 0, "client send: %s", asock_err_name(r));
  if (r == 0)
    cli_after(cl, &cl->c);
}

static void normal_round(client *cl) {
  tu_fill(cl->out, REQ, cl->stream, (uint64_t)cl->rounds * REQ);
  cl->sent = cl->got = 0;
  cl->round_start = tu_now_ms();
  cli_send(cl, cl->out, REQ);
  cli_recv(cl);
}

static void greedy_more(client *cl) {
  if (cl->sent < GREEDY_TOTAL)
    cli_send(cl, greedy_out, sizeof(greedy_out));
}

static void on_connected(client *cl) {
  int len;
  struct sockaddr_storage local;
  int value = 16384;
  len = (int)sizeof(local);
  ck_assert_asock(
      asock_socket_local_address(cl->sock, (struct sockaddr *)&local, &len), 0);
  cl->port = tu_port(&local);
  by_port[cl->port] = cl;
  switch (cl->kind) {
  case K_NORMAL:
    normal_round(cl);
    break;
  case K_DRIP:
    cl->drip_ready = 1;
    break;
  case K_GREEDY:
    /* Small kernel buffers: the server's echo stops at once, and the
     * server's back-pressure reaches this peer's sends soon. */
    ck_assert_asock(asock_socket_recv_buffer_size(cl->sock, &value), 0);
    value = 16384;
    ck_assert_asock(asock_socket_send_buffer_size(cl->sock, &value), 0);
    greedy_more(cl);
    break;
  case K_VANISH:
    /* Half of them send a partial request first; then all go quiet. */
    if (cl->msg_len > 0)
      cli_send(cl, cl->out, cl->msg_len);
    break;
  case K_FLOOD:
    cli_send(cl, cl->out, cl->msg_len);
    cli_recv(cl);
    break;
  default:
    break; /* storm clients are driven by their round */
  }
}

static void on_echo_done(client *cl) {
  ck_assert_uint_eq(tu_mismatch(cl->in, cl->msg_len, cl->stream, 0),
                    cl->msg_len);
  cl->served = 1;
  cli_close(cl, 0);
}

static void cli_after(client *cl, hop *h) {
  asock_op *op = h->op;
  int status = asock_op_status(op);
  asock_op_kind kind = asock_op_last_kind(op);

  if (kind == ASOCK_OP_CONNECT) {
    cl->connect_status = status;
    ck_assert_msg(status == 0 || cl->kind == K_STORM || cl->kind == K_FLOOD,
                  "connect: %s", asock_err_name(status));
    if (status == 0 && !cl->closed)
      on_connected(cl);
    return;
  }
  if (kind == ASOCK_OP_SEND) {
    if (cl->kind == K_NORMAL || cl->kind == K_DRIP)
      ck_assert_msg(status == 0 || (cl->closed && status == ASOCK_ECANCELED),
                    "send: %s", asock_err_name(status));
    if (status != 0)
      return;
    ck_assert_uint_eq(asock_op_bytes(op), asock_op_count(op));
    cl->sent += asock_op_bytes(op);
    if (cl->kind == K_GREEDY)
      greedy_more(cl);
    return;
  }
  ck_assert_int_eq(kind, ASOCK_OP_RECEIVE);
  if (status != 0) {
    /* A client's own close cancels its receive. */
    ck_assert_msg((cl->kind != K_NORMAL && cl->kind != K_DRIP) ||
                      (cl->closed && status == ASOCK_ECANCELED),
                  "client %d receive: %s", cl->kind, asock_err_name(status));
    cl->end_status = status;
    return;
  }
  cl->got += asock_op_bytes(op);
  if (cl->kind == K_VANISH) {
    cli_recv(cl);
    return;
  }
  if (cl->kind == K_NORMAL) {
    if (cl->got < REQ) {
      cli_recv(cl);
      return;
    }
    ck_assert_uint_eq(
        tu_mismatch(cl->in, REQ, cl->stream, (uint64_t)cl->rounds * REQ), REQ);
    ck_assert_uint_eq(cl->sent, REQ);
    {
      uint64_t took = tu_now_ms() - cl->round_start;
      ck_assert_msg(took < tu_ms(BOUND_MS), "a round trip took %llu ms",
                    (unsigned long long)took);
      if (took > cl->worst_ms)
        cl->worst_ms = took;
    }
    cl->rounds++;
    if (stop_normal)
      cli_close(cl, 0);
    else
      normal_round(cl);
    return;
  }
  if (cl->got == cl->msg_len) {
    on_echo_done(cl);
    return;
  }
  if (cl->kind == K_DRIP && cl->got == cl->sent)
    cl->drip_ready = 1; /* the next byte goes on the next loop turn */
  cli_recv(cl);
}

static client *cli_new(int kind, size_t msg_len) {
  client *cl;
  int r;
  ck_assert_int_lt(nclients, MAX_CLIENTS);
  cl = &clients[nclients];
  memset(cl, 0, sizeof(*cl));
  cl->kind = kind;
  cl->stream = 1000u + (uint32_t)nclients;
  nclients++;
  cl->msg_len = msg_len;
  cl->connect_status = 1;
  tu_fill(cl->out, sizeof(cl->out), cl->stream, 0);
  hop_init(&cl->c, cl, cli_cb, kind == K_NORMAL ? tu_ms(BOUND_MS) : 0);
  hop_init(&cl->r, cl, cli_cb, kind == K_NORMAL ? tu_ms(BOUND_MS) : 0);
  ck_assert_asock(asock_tcp_create(&cl->sock, tu_loop), 0);
  ck_assert_asock(
      asock_op_set_remote(cl->c.op, (const struct sockaddr *)&srv_addr), 0);
  r = START(&cl->c, asock_connect(cl->sock, cl->c.op));
  ck_assert_asock(r, ASOCK_PENDING);
  return cl;
}

/* ---- running and checking ---------------------------------------------------
 */

static asock_pool_stats pool_stats(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  return st;
}

/* The server's side of a client's connection (the latest, should the
 * kernel have given the port out again), or NULL. */
static conn *conn_of(const client *cl) {
  int i;
  for (i = nconns - 1; i >= 0 && cl->port != 0; i--)
    if (conns[i].port == cl->port)
      return &conns[i];
  return NULL;
}

/* What holds after every loop turn: the server's slices stay within its
 * sockets' quotas, its queues within their cap. */
static size_t worst_slices;
static void sample(void) {
  asock_pool_stats st = pool_stats();
  int i;
  ck_assert_uint_le(st.slices_in_use, (size_t)QUOTA * (size_t)conns_live);
  if (st.slices_in_use > worst_slices)
    worst_slices = st.slices_in_use;
  for (i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    if (!c->live || c->closed)
      continue;
    ck_assert_uint_le(asock_socket_send_queued(c->sock), SEND_CAP);
    note_held(c);
  }
}

typedef int (*cond_fn)(void);
static int sampled(const void *arg) {
  cond_fn cond = *(const cond_fn *)arg;
  sample();
  return cond();
}

static int run_until(cond_fn cond, uint64_t ms) {
  return tu_run_until(sampled, &cond, ms);
}

static uv_check_t drip_check;

/* One byte per loop turn for every drip client whose last byte came back. */
static void on_drip_check(uv_check_t *handle) {
  int i;
  (void)handle;
  for (i = 0; i < nclients; i++) {
    client *cl = &clients[i];
    if (cl->kind != K_DRIP || !cl->drip_ready || cl->closed)
      continue;
    cl->drip_ready = 0;
    cli_send(cl, cl->out + cl->sent, 1);
    cli_recv(cl);
  }
}

static int normal_rounds_at;
static int normal_going(void) { return normal->rounds > normal_rounds_at; }

static void setup(void) {
  asock_pool_config config;
  asock_pool_config_init(&config);
  config.slice_size = SLICE;
  config.slice_count = SLICES;
  config.op_count = 4096;
  config.socket_quota = QUOTA;
  tu_setup_with(&config);
  clients = calloc(MAX_CLIENTS, sizeof(*clients));
  ck_assert_ptr_nonnull(clients);
  memset(conns, 0, sizeof(conns));
  memset(by_port, 0, sizeof(by_port));
  memset(srv_recv_st, 0, sizeof(srv_recv_st));
  memset(srv_send_st, 0, sizeof(srv_send_st));
  memset(accept_st, 0, sizeof(accept_st));
  nconns = conns_live = conns_accepted = conns_refused = 0;
  nclients = naccepts = listener_closed = enobufs = stop_normal = 0;
  outstanding = in_call = 0;
  other_status = 0;
  srv_recv_timeout = 0;
  worst_slices = 0;
  tu_fill(greedy_out, sizeof(greedy_out), 7, 0);
  ck_assert_int_eq(uv_check_init(asock_loop_uv(tu_loop), &drip_check), 0);
  ck_assert_int_eq(uv_check_start(&drip_check, on_drip_check), 0);
}

/* Starts the server and the normal client, and waits for its first echo. */
static void start(int backlog, int accept_ops) {
  srv_start(backlog, accept_ops);
  normal = cli_new(K_NORMAL, REQ);
  normal_rounds_at = 0;
  ck_assert(run_until(normal_going, BOUND_MS));
}

/* The normal client was served through the hostile phase: at least `n`
 * more round trips since `from`. */
static void assert_normal_served(int from, int n) {
  ck_assert_msg(normal->rounds - from >= n,
                "the normal client made %d round trips", normal->rounds - from);
  ck_assert_uint_lt(normal->worst_ms, tu_ms(BOUND_MS));
}

static int nothing_outstanding(void) {
  return outstanding == 0 && conns_live == 0;
}

static void on_check_closed(uv_handle_t *handle) { *(int *)handle->data = 1; }

/* Closes everything, waits until every op has completed, checks that each
 * did exactly once, and gives everything back. */
static void finish(void) {
  int closed = 0;
  int i;
  stop_normal = 1;
  for (i = 0; i < nclients; i++)
    cli_close(&clients[i], 0);
  srv_close_listener();
  for (i = 0; i < nconns; i++)
    if (conns[i].live)
      conn_close(&conns[i], ASOCK_ECANCELED);
  ck_assert_msg(run_until(nothing_outstanding, BOUND_MS),
                "%d ops still pending, %d connections", outstanding,
                conns_live);
  drip_check.data = &closed;
  uv_close((uv_handle_t *)&drip_check, on_check_closed);
  ck_assert(tu_wait_count(&closed, 1));
  ck_assert_asock(tu_close_loop(), 0);
  /* Closing the loop completed nothing more. */
  ck_assert_int_eq(outstanding, 0);
  for (i = 0; i < naccepts; i++)
    hop_release(&accepts[i]);
  for (i = 0; i < nclients; i++) {
    hop_release(&clients[i].c);
    hop_release(&clients[i].r);
  }
  ck_assert_int_eq(other_status, 0);
  free(clients);
  clients = NULL;
}

static int never(void) { return 0; }

/* ---- slow drip -------------------------------------------------------------
 */

#define DRIPS 8
#define DRIP_LEN 200

static int drips_done(void) {
  int i;
  for (i = 0; i < nclients; i++) {
    const conn *c = conn_of(&clients[i]);
    if (clients[i].kind == K_DRIP &&
        (!clients[i].served || c == NULL || !c->closed || c->live))
      return 0;
  }
  return 1;
}

/* Peers that send one byte per loop turn: the server completes a receive per
 * byte, holds at most one slice for each of them, and echoes every byte. */
START_TEST(slow_drip_is_echoed_byte_by_byte) {
  int from;
  int i;
  setup();
  start(128, 4);
  from = normal->rounds;
  for (i = 0; i < DRIPS; i++)
    cli_new(K_DRIP, DRIP_LEN);
  ck_assert_msg(run_until(drips_done, BOUND_MS), "the drips did not finish");
  for (i = 0; i < nclients; i++) {
    client *cl = &clients[i];
    conn *c = conn_of(cl);
    if (cl->kind != K_DRIP)
      continue;
    ck_assert(cl->served);
    ck_assert_uint_eq(cl->sent, DRIP_LEN);
    ck_assert_uint_eq(cl->got, DRIP_LEN);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->receives, DRIP_LEN);
    ck_assert_uint_eq(c->received, DRIP_LEN);
    ck_assert_uint_eq(c->echoed, DRIP_LEN);
    ck_assert_uint_le(c->max_held, 1);
    ck_assert_asock(c->end_status, ASOCK_EOF);
  }
  assert_normal_served(from, 10);
  finish();
}
END_TEST

/* ---- greedy -----------------------------------------------------------------
 */

#define GREEDY 8

static int greedy_backed_up(void) {
  int i;
  for (i = 0; i < nclients; i++) {
    const conn *c = conn_of(&clients[i]);
    if (clients[i].kind != K_GREEDY)
      continue;
    if (c == NULL || asock_socket_send_queued(c->sock) < SEND_HIGH)
      return 0;
  }
  return 1;
}

/* Peers that send without end and never read: the server's send queues stop
 * at their cap (a send beyond it fails with ASOCK_ENOBUFS and waits), its
 * receives stop at the quota, the server stops reading, and neither the
 * pool nor the heap grows while the normal client is served. */
START_TEST(greedy_peers_are_held_by_the_cap_and_the_quota) {
  uint64_t received[GREEDY];
  unsigned long calls;
  unsigned long live;
  int from;
  int i;
  int n;
  setup();
  start(128, 4);
  for (i = 0; i < GREEDY; i++)
    cli_new(K_GREEDY, 0);
  ck_assert_msg(run_until(greedy_backed_up, BOUND_MS),
                "the greedy peers' echo did not back up");
  /* Let the kernel buffers fill, then nothing may move. */
  run_until(never, 200);
  from = normal->rounds;
  calls = asock_test_alloc_calls;
  live = asock_test_alloc_live;
  for (i = n = 0; i < nclients; i++)
    if (clients[i].kind == K_GREEDY)
      received[n++] = conn_of(&clients[i])->received;
  run_until(never, 500);
  for (i = n = 0; i < nclients; i++) {
    client *cl = &clients[i];
    conn *c;
    if (cl->kind != K_GREEDY)
      continue;
    c = conn_of(cl);
    ck_assert_msg(c->received == received[n],
                  "the server read %llu more bytes of a greedy peer",
                  (unsigned long long)(c->received - received[n]));
    n++;
    ck_assert(!c->closed);
    ck_assert_uint_le(asock_socket_send_queued(c->sock), SEND_CAP);
    ck_assert_uint_lt(c->received, GREEDY_TOTAL / 2);
    /* The back-pressure reached the peer: its send waits. */
    ck_assert(cl->c.pending);
    ck_assert_uint_lt(cl->sent, GREEDY_TOTAL);
  }
  ck_assert_int_gt(enobufs, 0);
  ck_assert_uint_le(worst_slices, (size_t)QUOTA * (GREEDY + 1));
  ck_assert_uint_eq(asock_test_alloc_calls, calls);
  ck_assert_uint_eq(asock_test_alloc_live, live);
  assert_normal_served(from, 10);
  finish();
}
END_TEST

/* ---- silent peers
 * ------------------------------------------------------------ */

#define VANISHERS 16
#define VANISH_LEN 100

static int vanishers_closed(void) {
  int i;
  for (i = 0; i < nclients; i++) {
    const conn *c = conn_of(&clients[i]);
    if (clients[i].kind != K_VANISH)
      continue;
    if (c == NULL || !c->closed)
      return 0;
    /* Quiet, an open connection holds no slice. */
    if (c->echoed == c->received && !c->closed)
      ck_assert_uint_eq(asock_socket_slices_held(c->sock), 0);
  }
  return 1;
}

static int vanishers_read(void) {
  int i;
  for (i = 0; i < nclients; i++)
    if (clients[i].kind == K_VANISH && clients[i].end_status == 0)
      return 0;
  return 1;
}

/* Peers that connect, maybe send part of a request, and go quiet: the
 * server's receives end with ASOCK_ETIMEDOUT, it closes those connections
 * after echoing what came, and the normal client is served meanwhile. */
START_TEST(silent_peers_time_out) {
  int from;
  int i;
  setup();
  srv_recv_timeout = tu_ms(1000);
  start(128, 4);
  from = normal->rounds;
  for (i = 0; i < VANISHERS; i++)
    cli_new(K_VANISH, i % 2 == 0 ? VANISH_LEN : 0);
  ck_assert_msg(run_until(vanishers_closed, BOUND_MS + srv_recv_timeout),
                "the silent peers were not closed");
  for (i = 0; i < nclients; i++) {
    client *cl = &clients[i];
    conn *c = conn_of(cl);
    if (cl->kind != K_VANISH)
      continue;
    ck_assert_asock(c->end_status, ASOCK_ETIMEDOUT);
    ck_assert_uint_eq(c->received, cl->msg_len);
    ck_assert_uint_eq(c->echoed, cl->msg_len);
    cli_recv(cl);
  }
  ck_assert_int_ge(srv_recv_st[ST_TIMEDOUT], VANISHERS);
  /* What they sent came back, then the end of the stream. */
  ck_assert(run_until(vanishers_read, BOUND_MS));
  for (i = 0; i < nclients; i++) {
    client *cl = &clients[i];
    if (cl->kind != K_VANISH)
      continue;
    ck_assert_asock(cl->end_status, ASOCK_EOF);
    ck_assert_uint_eq(cl->got, cl->msg_len);
    ck_assert_uint_eq(tu_mismatch(cl->in, cl->got, cl->stream, 0), cl->got);
  }
  /* The normal client never went quiet long enough to be cut off. */
  ck_assert(!conn_of(normal)->closed);
  assert_normal_served(from, 10);
  finish();
}
END_TEST

/* ---- reset storms
 * ------------------------------------------------------------ */

#define STORM_ROUNDS 10
#define STORM 100

static int storm_first;
static int storm_connected;
static int storm_accepted_from;
static int storm_normal_from;
static unsigned long live_baseline;
static uint32_t rng = 2463534242u;

static uint32_t next_rand(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static int storm_connects_done(void) {
  int i;
  for (i = storm_first; i < nclients; i++)
    if (clients[i].c.pending)
      return 0;
  return 1;
}

static int storm_settled(void) {
  int i;
  for (i = storm_first; i < nclients; i++)
    if (clients[i].c.pending || clients[i].r.pending)
      return 0;
  return conns_live == 1 &&
         conns_accepted - storm_accepted_from >= storm_connected &&
         normal->rounds > storm_normal_from;
}

static int leaks_gone(void) {
  return conns_live == 1 && asock_test_alloc_live == live_baseline;
}

/* Many peers connect and reset at once (SO_LINGER 0), round after round,
 * some while connecting, some after sending, some with the echo on its way:
 * every server op completes exactly once with a status a reset explains,
 * and every connection's memory, ops and slices come back. */
START_TEST(reset_storms_leave_nothing_behind) {
  asock_pool_stats st;
  size_t ops_baseline;
  int from;
  int round;
  int i;
  setup();
  start(128, MAX_ACCEPTS);
  from = normal->rounds;
  live_baseline = asock_test_alloc_live;
  ops_baseline = pool_stats().ops_in_use;
  for (round = 0; round < STORM_ROUNDS; round++) {
    storm_first = nclients;
    storm_accepted_from = conns_accepted;
    storm_normal_from = normal->rounds;
    for (i = 0; i < STORM; i++) {
      client *cl = cli_new(K_STORM, 1 + next_rand() % MSG_MAX);
      if (i % 4 == 0)
        cli_close(cl, ASOCK_CLOSE_ABORT); /* while connecting */
    }
    ck_assert(run_until(storm_connects_done, BOUND_MS));
    /* All at once, in one loop turn. */
    storm_connected = 0;
    for (i = storm_first; i < nclients; i++) {
      client *cl = &clients[i];
      if (cl->closed || cl->connect_status != 0)
        continue;
      storm_connected++;
      if ((i - storm_first) % 4 != 2)
        cli_send(cl, cl->out, cl->msg_len);
      if ((i - storm_first) % 4 == 3)
        cli_recv(cl);
      cli_close(cl, ASOCK_CLOSE_ABORT);
    }
    ck_assert_msg(run_until(storm_settled, BOUND_MS),
                  "round %d: %d of %d connections accepted, %d still open, "
                  "%d normal round trips",
                  round, conns_accepted - storm_accepted_from, storm_connected,
                  conns_live - 1, normal->rounds - storm_normal_from);
  }
  ck_assert_msg(run_until(leaks_gone, BOUND_MS), "%lu allocations, not %lu",
                asock_test_alloc_live, live_baseline);
  /* Only the storm clients' own ops, still to be released, are held
   * beyond the start. */
  st = pool_stats();
  ck_assert_uint_eq(st.ops_in_use,
                    ops_baseline + 2 * (size_t)STORM_ROUNDS * STORM);
  ck_assert_uint_le(st.slices_in_use, QUOTA);
  ck_assert_int_gt(conns_accepted, STORM_ROUNDS * STORM / 2);
  /* Receives end with data, the end of the stream, a reset or a cancel;
   * sends with success, a reset, a broken pipe or a cancel. */
  ck_assert_int_eq(srv_recv_st[ST_TIMEDOUT] + srv_recv_st[ST_PIPE], 0);
  ck_assert_int_eq(srv_send_st[ST_TIMEDOUT] + srv_send_st[ST_EOF], 0);
  ck_assert_int_eq(other_status, 0);
  ck_assert_int_gt(srv_recv_st[ST_RESET] + srv_recv_st[ST_EOF], 0);
  /* At least one round trip in every round. */
  assert_normal_served(from, STORM_ROUNDS);
  finish();
}
END_TEST

/* ---- connection flood
 * ---------------------------------------------------------- */

#define FLOOD 400
#define FLOOD_BACKLOG 8
#define FLOOD_LEN 64

static client *late;

static int flood_over(void) {
  int i;
  for (i = 0; i < nclients; i++) {
    const client *cl = &clients[i];
    /* Still connecting, or connected and waiting for its echo. */
    if (cl->kind == K_FLOOD && !cl->served &&
        (cl->connect_status == 1 ||
         (cl->connect_status == 0 && cl->end_status == 0)))
      return 0;
  }
  return 1;
}

static int late_served(void) { return late->served; }
static int only_normal_left(void) { return conns_live == 1; }

/* Far more connections at once than the listen backlog, with two accept
 * ops: the listener keeps accepting, every accept op completes exactly once,
 * every connection accepted is served, and one made after the flood too. */
START_TEST(connection_flood_beyond_the_backlog) {
  int served = 0;
  int from;
  int i;
  setup();
  start(FLOOD_BACKLOG, 2);
  from = normal->rounds;
  for (i = 0; i < FLOOD; i++)
    cli_new(K_FLOOD, FLOOD_LEN);
  /* Connections the kernel dropped retry on their own schedule (SYN
   * retransmission, after 1 s, 3 s, 7 s...): the flood is given the first
   * retry, not all the time they may need. */
  run_until(flood_over, 1500);
  late = cli_new(K_FLOOD, FLOOD_LEN);
  ck_assert_msg(run_until(late_served, BOUND_MS),
                "a connection after the flood was not served");
  srv_close_listener();
  ck_assert_msg(run_until(only_normal_left, BOUND_MS),
                "%d accepted connections still open", conns_live - 1);
  for (i = 0; i < nconns; i++) {
    conn *c = &conns[i];
    client *cl = NULL;
    int j;
    for (j = 0; j < nclients && cl == NULL; j++)
      if (clients[j].port == c->port)
        cl = &clients[j];
    ck_assert_ptr_nonnull(cl);
    if (cl == normal)
      continue;
    ck_assert_msg(cl->served, "an accepted connection was not served");
    ck_assert_asock(c->end_status, ASOCK_EOF);
    ck_assert_uint_eq(c->received, FLOOD_LEN);
    ck_assert_uint_eq(c->echoed, FLOOD_LEN);
    served++;
  }
  ck_assert_int_ge(served, 2);
  ck_assert_int_eq(accept_st[ST_OTHER], 0);
  ck_assert_int_eq(accept_st[ST_OK], conns_accepted);
  assert_normal_served(from, 10);
  finish();
  /* The two accept ops ended canceled, once each, with the listener. */
  ck_assert_int_eq(accept_st[ST_CANCELED], 2);
}
END_TEST

Suite *asock_test_suite_hostile(void) {
  Suite *s = suite_create("hostile");
  TCase *tc = tcase_create("hostile");
  tcase_add_checked_fixture(tc, NULL, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, slow_drip_is_echoed_byte_by_byte);
  tcase_add_test(tc, greedy_peers_are_held_by_the_cap_and_the_quota);
  tcase_add_test(tc, silent_peers_time_out);
  tcase_add_test(tc, reset_storms_leave_nothing_behind);
  tcase_add_test(tc, connection_flood_beyond_the_backlog);
  suite_add_tcase(s, tc);
  return s;
}
