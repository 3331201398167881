/* The fault injection sweep's relay scenario: clients stream through a
 * relay to the multishot echo server of fault-multishot.c (the backend),
 * all on the one loop. For each client it accepts, the relay connects to
 * the backend and reads both sockets with one multishot receive each;
 * every delivery's slice is taken out of the receive
 * (asock_op_detach_slice()) and sent as it is on the other socket with a
 * send op of its own from the pool, and both go back when the send
 * completes. The pool's socket quota bounds the slices each socket has on
 * their way; when either side ends, both are closed. Whatever call the
 * sweep fails, the relay ends or stalls with every op completed once and
 * every slice given back. */
#include <string.h>

#include "fault-run.h"

enum { FR_PAIRS = 4, FR_SENDS = 64 };

typedef struct fr_pair fr_pair;

/* One socket of a relayed connection. */
typedef struct fr_side {
  fr_pair *pair;
  struct fr_side *peer;
  asock_socket *sock;
  fx_rec *rx;  /* its multishot receive */
  int rx_done; /* ended, or never started */
  int sends;   /* sends pending on this socket */
} fr_side;

struct fr_pair {
  fr_side front; /* the client's connection */
  fr_side back;  /* the relay's connection to the backend */
  fx_rec *connect;
  int connecting;
  int ended;
};

/* A send on its way, and the slice it sends from. */
typedef struct fr_send {
  fx_rec *rec; /* NULL while the entry is free */
  fr_side *to;
  void *slice;
} fr_send;

static fr_pair pairs[FR_PAIRS];
static int npairs;
static fr_send sends[FR_SENDS];
static struct sockaddr_storage backend_addr;

/* The pair is over once both receives ended, the connect completed and no
 * send is on its way. */
static void pair_settle(fr_pair *p) {
  if (!p->ended && p->front.rx_done && p->back.rx_done && !p->connecting &&
      p->front.sends == 0 && p->back.sends == 0)
    p->ended = 1;
}

/* Ends the relayed connection: both sockets close, which ends their
 * receives and sends. */
static void pair_close(fr_pair *p) {
  fx_close(p->front.sock);
  if (p->back.sock != NULL)
    fx_close(p->back.sock);
}

/* A send completed (or never started): its slice and op go back. */
static void send_finished(fr_send *s, int status) {
  fr_pair *p = s->to->pair;
  fx_give_back(s->slice);
  fx_op_release(s->rec);
  s->rec = NULL;
  if (status != 0)
    pair_close(p);
  pair_settle(p);
}

static void send_done(fx_rec *rec) {
  fr_send *s = rec->ctx;
  s->to->sends--;
  send_finished(s, asock_op_status(rec->op));
}

static fr_send *send_entry(void) {
  int i;
  for (i = 0; i < FR_SENDS; i++)
    if (sends[i].rec == NULL)
      return &sends[i];
  fx_fail("relay: more than %d sends at once", FR_SENDS);
  return NULL;
}

/* A delivery on side d goes to its peer, in its own slice. */
static void side_delivered(fr_side *d) {
  fr_send *s;
  void *slice;
  size_t off;
  size_t len;
  int r;

  slice = fx_take(d->rx, &off, &len);
  if (slice == NULL) {
    pair_close(d->pair);
    return;
  }
  fm_taken_from(d->sock);
  s = fx_closed(d->peer->sock) ? NULL : send_entry();
  if (s != NULL)
    s->rec = fx_op("relay send", send_done, s);
  if (s == NULL || s->rec == NULL) {
    fx_give_back(slice);
    pair_close(d->pair);
    return;
  }
  s->to = d->peer;
  s->slice = slice;
  asock_op_set_buffer(s->rec->op, slice, off + len, off, len);
  r = fx_started(s->rec, asock_send(d->peer->sock, s->rec->op), "asock_send");
  if (r == ASOCK_PENDING) {
    d->peer->sends++;
    return;
  }
  send_finished(s, r < 0 ? r : asock_op_status(s->rec->op));
}

static void side_rx_done(fx_rec *rec) {
  fr_side *d = rec->ctx;
  if (asock_op_more(rec->op)) {
    side_delivered(d);
    return;
  }
  /* The end of either stream, or an error, ends both sides: the clients
   * disconnect only once they have every byte back. */
  d->rx_done = 1;
  pair_close(d->pair);
  pair_settle(d->pair);
}

/* Starts side d's multishot receive; 0, or the pair is closing. */
static int side_start(fr_side *d, const char *what) {
  int r;

  d->rx = fx_op(what, side_rx_done, d);
  if (d->rx == NULL)
    return -1;
  r = asock_op_set_multishot(d->rx->op, 1);
  if (r != 0)
    fx_fail("asock_op_set_multishot: %s", asock_err_name(r));
  r = fx_started(d->rx, asock_receive(d->sock, d->rx->op),
                 "asock_receive (multishot)");
  if (r == 0)
    fx_fail("a multishot receive completed inside its start");
  if (r != ASOCK_PENDING)
    return -1;
  d->rx_done = 0;
  return 0;
}

static void pair_connected(fx_rec *rec) {
  fr_pair *p = rec->ctx;

  p->connecting = 0;
  if (asock_op_status(rec->op) != 0 || fx_closed(p->front.sock) ||
      side_start(&p->front, "relay front receive") != 0 ||
      side_start(&p->back, "relay back receive") != 0)
    pair_close(p);
  pair_settle(p);
}

/* A client connected to the relay: connect to the backend, then relay. */
static void fr_serve(asock_socket *sock) {
  fr_pair *p;
  int r;

  if (npairs == FR_PAIRS) {
    fx_fail("more than %d relayed connections", FR_PAIRS);
    asock_socket_close(sock, 0);
    return;
  }
  p = &pairs[npairs++];
  memset(p, 0, sizeof(*p));
  p->front.pair = p->back.pair = p;
  p->front.peer = &p->back;
  p->back.peer = &p->front;
  p->front.rx_done = p->back.rx_done = 1;
  p->front.sock = sock;
  fx_track(sock);
  r = asock_tcp_create(&p->back.sock, fx.loop);
  fx_check_code(r, "relay", "asock_tcp_create");
  if (r != 0) {
    p->back.sock = NULL;
    pair_close(p);
    pair_settle(p);
    return;
  }
  fx_track(p->back.sock);
  p->connect = fx_op("relay connect", pair_connected, p);
  if (p->connect == NULL) {
    pair_close(p);
    pair_settle(p);
    return;
  }
  asock_op_set_remote(p->connect->op, (const struct sockaddr *)&backend_addr);
  r = fx_started(p->connect, asock_connect(p->back.sock, p->connect->op),
                 "asock_connect");
  if (r == ASOCK_PENDING) {
    p->connecting = 1;
    return;
  }
  pair_close(p);
  pair_settle(p);
}

static int pairs_ended(void) {
  int i;
  for (i = 0; i < npairs; i++)
    if (!pairs[i].ended)
      return 0;
  return 1;
}

static int relay_done(void) {
  return fm_clients_done() && pairs_ended() && fm_servers_ended();
}

/* Two clients, one reading with a multishot receive and one with one-shot
 * receives, stream through the relay to the backend and back. */
void scenario_relay(void) {
  struct sockaddr_storage relay_addr;

  memset(pairs, 0, sizeof(pairs));
  memset(sends, 0, sizeof(sends));
  npairs = 0;
  if (fx_listen_with(&backend_addr, fm_serve) != 0 ||
      fx_listen_with(&relay_addr, fr_serve) != 0)
    return;
  fm_client_start(0, &relay_addr, 1);
  fm_client_start(1, &relay_addr, 0);
  fx_run(relay_done);
  fx.complete =
      fm_clients_ok() && npairs == 2 && pairs_ended() && fm_servers_ended();
}
