/* The hostile peers suite's server and clients (see hostile.h): an asock
 * echo server with several ops per connection, the normal client doing
 * request/response echoes, and the hostile kinds of peer. Every op either
 * side starts is counted: each one that returned ASOCK_PENDING must
 * complete exactly once. */
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/ioctl.h>
#endif

#include "hostile.h"

/* ---- every op, counted ----------------------------------------------------
 */

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

int hx_srv_recv_st[ST_OTHER + 1];
int hx_srv_send_st[ST_OTHER + 1];
int hx_accept_st[ST_OTHER + 1];
int hx_other_status;

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
    hx_other_status = status;
    break;
  }
  bins[bin]++;
}

/* ---- the server -----------------------------------------------------------
 */

conn hx_conns[MAX_CONNS];
int hx_nconns; /* slots used so far (high-water) */
int hx_conns_live;
int hx_conns_accepted;
static int conns_refused;
asock_socket *hx_listener;
static struct sockaddr_storage srv_addr;
static hop accepts[MAX_ACCEPTS];
static int naccepts;
static int listener_closed;
uint64_t hx_srv_recv_timeout;
int hx_enobufs;

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
  hx_conns_live--;
}

static void conn_close(conn *c, int status) {
  if (c->closed)
    return;
  c->closed = 1;
  c->end_status = status;
  ck_assert_asock(asock_socket_close(c->sock, 0), 0);
}

void hx_srv_close_conn(conn *c, int status) { conn_close(c, status); }

#ifdef _WIN32
static unsigned long os_unread(uv_os_sock_t s) {
  u_long n = 0;
  ck_assert_int_eq(ioctlsocket(s, FIONREAD, &n), 0);
  return n;
}
#else
static unsigned long os_unread(uv_os_sock_t s) {
  int n = 0;
  ck_assert_int_eq(ioctl(s, FIONREAD, &n), 0);
  ck_assert_int_ge(n, 0);
  return (unsigned long)n;
}
#endif

unsigned long hx_conn_unread(const conn *c) {
  uv_os_sock_t s;
  ck_assert_asock(asock_socket_fileno(c->sock, &s), 0);
  return os_unread(s);
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
      count_status(hx_srv_recv_st, status);
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
        hx_enobufs++;
        c->parked[c->nparked++] = h;
        return;
      }
    } else {
      count_status(hx_srv_send_st, status);
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
  if (hx_nconns == MAX_CONNS) {
    conns_refused++;
    ck_assert_asock(asock_socket_close(sock, ASOCK_CLOSE_ABORT), 0);
    return;
  }
  c = &hx_conns[hx_nconns++];
  memset(c, 0, sizeof(*c));
  c->sock = sock;
  c->live = 1;
  hx_conns_live++;
  hx_conns_accepted++;
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
    hop_init(&c->h[i], c, srv_cb, hx_srv_recv_timeout);
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
    count_status(hx_accept_st, status);
    if (status == 0)
      adopt(asock_op_accepted(h->op), asock_op_remote(h->op));
    if (listener_closed)
      return;
    /* Any other failure (ECONNABORTED, EMFILE) leaves the listener
     * listening: accept again. */
    r = START(h, asock_accept(hx_listener, h->op));
  }
}

static void accept_cb(asock_op *op) { accept_run(completed(op), 0); }

static void srv_start(int backlog, int accept_ops) {
  int len = (int)sizeof(srv_addr);
  int i;
  tu_addr("127.0.0.1", 0, &srv_addr);
  ck_assert_asock(asock_tcp_create(&hx_listener, tu_loop), 0);
  ck_assert_asock(
      asock_tcp_listen(hx_listener, (struct sockaddr *)&srv_addr, backlog, 0),
      0);
  ck_assert_asock(asock_socket_local_address(
                      hx_listener, (struct sockaddr *)&srv_addr, &len),
                  0);
  naccepts = accept_ops;
  for (i = 0; i < naccepts; i++) {
    hop_init(&accepts[i], NULL, accept_cb, 0);
    accept_run(&accepts[i],
               START(&accepts[i], asock_accept(hx_listener, accepts[i].op)));
  }
}

void hx_srv_close_listener(void) {
  if (listener_closed)
    return;
  listener_closed = 1;
  ck_assert_asock(asock_socket_close(hx_listener, 0), 0);
}

/* ---- the clients ----------------------------------------------------------
 */

client *hx_clients;
int hx_nclients;
static client *by_port[65536];
client *hx_normal;
static int stop_normal;
static unsigned char greedy_out[64 * 1024];

void hx_cli_close(client *cl, unsigned int flags) {
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

void hx_cli_recv(client *cl) {
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
void hx_cli_send(client *cl, const unsigned char *mem, size_t len) {
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
  hx_cli_send(cl, cl->out, REQ);
  hx_cli_recv(cl);
}

static void greedy_more(client *cl) {
  if (cl->sent < GREEDY_TOTAL)
    hx_cli_send(cl, greedy_out, sizeof(greedy_out));
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
      hx_cli_send(cl, cl->out, cl->msg_len);
    break;
  case K_FLOOD:
    hx_cli_send(cl, cl->out, cl->msg_len);
    hx_cli_recv(cl);
    break;
  default:
    break; /* storm clients are driven by their round */
  }
}

static void on_echo_done(client *cl) {
  ck_assert_uint_eq(tu_mismatch(cl->in, cl->msg_len, cl->stream, 0),
                    cl->msg_len);
  cl->served = 1;
  hx_cli_close(cl, 0);
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
    hx_cli_recv(cl);
    return;
  }
  if (cl->kind == K_NORMAL) {
    if (cl->got < REQ) {
      hx_cli_recv(cl);
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
      hx_cli_close(cl, 0);
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
  hx_cli_recv(cl);
}

client *hx_cli_new(int kind, size_t msg_len) {
  client *cl;
  int r;
  ck_assert_int_lt(hx_nclients, MAX_CLIENTS);
  cl = &hx_clients[hx_nclients];
  memset(cl, 0, sizeof(*cl));
  cl->kind = kind;
  cl->stream = 1000u + (uint32_t)hx_nclients;
  hx_nclients++;
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

asock_pool_stats hx_pool_stats(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  return st;
}

/* The server's side of a client's connection (the latest, should the
 * kernel have given the port out again), or NULL. */
conn *hx_conn_of(const client *cl) {
  int i;
  for (i = hx_nconns - 1; i >= 0 && cl->port != 0; i--)
    if (hx_conns[i].port == cl->port)
      return &hx_conns[i];
  return NULL;
}

/* What holds after every loop turn: the server's slices stay within its
 * sockets' quotas, its queues within their cap. */
size_t hx_worst_slices;
static void sample(void) {
  asock_pool_stats st = hx_pool_stats();
  int i;
  ck_assert_uint_le(st.slices_in_use, (size_t)QUOTA * (size_t)hx_conns_live);
  if (st.slices_in_use > hx_worst_slices)
    hx_worst_slices = st.slices_in_use;
  for (i = 0; i < hx_nconns; i++) {
    conn *c = &hx_conns[i];
    if (!c->live || c->closed)
      continue;
    ck_assert_uint_le(asock_socket_send_queued(c->sock), SEND_CAP);
    note_held(c);
  }
}

static int sampled(const void *arg) {
  cond_fn cond = *(const cond_fn *)arg;
  sample();
  return cond();
}

int hx_run_until(cond_fn cond, uint64_t ms) {
  return tu_run_until(sampled, &cond, ms);
}

static uv_check_t drip_check;

/* One byte per loop turn for every drip client whose last byte came back. */
static void on_drip_check(uv_check_t *handle) {
  int i;
  (void)handle;
  for (i = 0; i < hx_nclients; i++) {
    client *cl = &hx_clients[i];
    if (cl->kind != K_DRIP || !cl->drip_ready || cl->closed)
      continue;
    cl->drip_ready = 0;
    hx_cli_send(cl, cl->out + cl->sent, 1);
    hx_cli_recv(cl);
  }
}

static int normal_rounds_at;
static int normal_going(void) { return hx_normal->rounds > normal_rounds_at; }

void hx_setup(void) {
  asock_pool_config config;
  asock_pool_config_init(&config);
  config.slice_size = SLICE;
  config.slice_count = SLICES;
  config.op_count = 4096;
  config.socket_quota = QUOTA;
  tu_setup_with(&config);
  hx_clients = calloc(MAX_CLIENTS, sizeof(*hx_clients));
  ck_assert_ptr_nonnull(hx_clients);
  memset(hx_conns, 0, sizeof(hx_conns));
  memset(by_port, 0, sizeof(by_port));
  memset(hx_srv_recv_st, 0, sizeof(hx_srv_recv_st));
  memset(hx_srv_send_st, 0, sizeof(hx_srv_send_st));
  memset(hx_accept_st, 0, sizeof(hx_accept_st));
  hx_nconns = hx_conns_live = hx_conns_accepted = conns_refused = 0;
  hx_nclients = naccepts = listener_closed = hx_enobufs = stop_normal = 0;
  outstanding = in_call = 0;
  hx_other_status = 0;
  hx_srv_recv_timeout = 0;
  hx_worst_slices = 0;
  tu_fill(greedy_out, sizeof(greedy_out), 7, 0);
  ck_assert_int_eq(uv_check_init(asock_loop_uv(tu_loop), &drip_check), 0);
  ck_assert_int_eq(uv_check_start(&drip_check, on_drip_check), 0);
}

/* Starts the server and the normal client, and waits for its first echo. */
void hx_start(int backlog, int accept_ops) {
  srv_start(backlog, accept_ops);
  hx_normal = hx_cli_new(K_NORMAL, REQ);
  normal_rounds_at = 0;
  ck_assert(hx_run_until(normal_going, BOUND_MS));
}

/* The normal client was served through the hostile phase: at least `n`
 * more round trips since `from`, each within the bound. How many of them
 * fit in the phase is the speed of the loop's turns (valgrind, Wine, a
 * busy machine), not a property of asock: the rest are waited for, each
 * still within the bound (its ops time out after it, and cli_after()
 * checks every round trip's time), so that a stalled client still fails
 * within one bound. */
void hx_assert_normal_served(int from, int n) {
  int done = hx_normal->rounds - from;
  if (done < n) {
    normal_rounds_at = from + n - 1;
    hx_run_until(normal_going, (uint64_t)(n - done) * BOUND_MS);
  }
  ck_assert_msg(hx_normal->rounds - from >= n,
                "the normal client made %d round trips",
                hx_normal->rounds - from);
  ck_assert_uint_lt(hx_normal->worst_ms, tu_ms(BOUND_MS));
}

static int nothing_outstanding(void) {
  return outstanding == 0 && hx_conns_live == 0;
}

static void on_check_closed(uv_handle_t *handle) { *(int *)handle->data = 1; }

/* Closes everything, waits until every op has completed, checks that each
 * did exactly once, and gives everything back. */
void hx_finish(void) {
  int closed = 0;
  int i;
  stop_normal = 1;
  for (i = 0; i < hx_nclients; i++)
    hx_cli_close(&hx_clients[i], 0);
  hx_srv_close_listener();
  for (i = 0; i < hx_nconns; i++)
    if (hx_conns[i].live)
      conn_close(&hx_conns[i], ASOCK_ECANCELED);
  ck_assert_msg(hx_run_until(nothing_outstanding, BOUND_MS),
                "%d ops still pending, %d connections", outstanding,
                hx_conns_live);
  drip_check.data = &closed;
  uv_close((uv_handle_t *)&drip_check, on_check_closed);
  ck_assert(tu_wait_count(&closed, 1));
  ck_assert_asock(tu_close_loop(), 0);
  /* Closing the loop completed nothing more. */
  ck_assert_int_eq(outstanding, 0);
  for (i = 0; i < naccepts; i++)
    hop_release(&accepts[i]);
  for (i = 0; i < hx_nclients; i++) {
    hop_release(&hx_clients[i].c);
    hop_release(&hx_clients[i].r);
  }
  ck_assert_int_eq(hx_other_status, 0);
  free(hx_clients);
  hx_clients = NULL;
}

int hx_never(void) { return 0; }
