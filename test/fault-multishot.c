/* The fault injection sweep's multishot scenarios, and what the relay
 * scenario (fault-relay.c) builds on: an echo server whose connections are
 * each served by one multishot receive and one send op, and clients that
 * stream to it and check every byte that comes back; and a UDP socket's
 * multishot receive-from (at the end).
 *
 * A server connection sends each delivery back from the slice it came in.
 * When the send has to wait, the slice must outlive the delivery: the
 * connection takes it (asock_op_detach_slice()) and gives it back when the
 * send completes; deliveries that come meanwhile are taken too and queue
 * behind it, to go out in order. Taken slices count against the socket's
 * quota (the scenario's pool has one), so a client that reads slowly stops
 * being read. Whatever call the sweep fails, every taken slice is given
 * back: by the send's completion, or as the queue is emptied once the
 * socket is closed.
 *
 * A client reads nothing until its whole stream is sent, or until some
 * socket of the scenario holds its quota of taken slices: the stream is
 * longer than the kernel's buffers on the way back hold, so the server's
 * sends wait and the quota is reached whatever the machine's speed; and as
 * a reader at its quota is the only thing that holds the bytes up, the
 * clients then read, so that nothing waits for ever. */
#include <string.h>

#include "fault-run.h"

enum {
  FM_CONNS = 8,
  FM_CLIENTS = 4,
  FM_BULK = 128 * 1024, /* bytes each client streams */
  FM_WINDOW = 1500      /* a multishot client's own window */
};

/* ---- the server -------------------------------------------------------- */

/* A delivery taken out of its receive, waiting for the send. */
typedef struct fm_chunk {
  void *slice;
  size_t off;
  size_t len;
} fm_chunk;

typedef struct fm_conn {
  asock_socket *sock;
  fx_rec *rx;     /* the multishot receive */
  fx_rec *tx;     /* the send */
  int tx_busy;    /* the send is pending */
  void *tx_slice; /* the slice the pending send's bytes are in */
  fm_chunk queue[FX_TAKEN];
  int head;
  int count;
  int rx_done; /* the receive had its final completion, or never started */
  int ended;
} fm_conn;

static fm_conn conns[FM_CONNS];
static int nconns;
static int conns_ended;

static void conn_close(fm_conn *c) { fx_close(c->sock); }

/* The connection is over once its receive ended and nothing of it waits
 * to be sent; the socket closes then (the end of the client's stream
 * leaves it open until the echo is out). */
static void conn_settle(fm_conn *c) {
  if (c->ended || !c->rx_done || c->tx_busy || c->count > 0)
    return;
  c->ended = 1;
  conns_ended++;
  conn_close(c);
}

/* Sends queued deliveries while the send op is free; once the socket is
 * closed, gives their slices back instead. */
static void conn_pump(fm_conn *c) {
  asock_op *tx = c->tx->op;

  while (!c->tx_busy && c->count > 0) {
    fm_chunk ch = c->queue[c->head];
    int r;

    c->head = (c->head + 1) % FX_TAKEN;
    c->count--;
    if (fx_closed(c->sock)) {
      fx_give_back(ch.slice);
      continue;
    }
    asock_op_set_buffer(tx, ch.slice, ch.off + ch.len, ch.off, ch.len);
    r = fx_started(c->tx, asock_send(c->sock, tx), "asock_send");
    if (r == ASOCK_PENDING) {
      c->tx_busy = 1;
      c->tx_slice = ch.slice;
      return;
    }
    fx_give_back(ch.slice);
    if (r < 0 || asock_op_status(tx) != 0)
      conn_close(c); /* the receive ends with it */
  }
  conn_settle(c);
}

/* The send waits: the delivery goes into the queue behind it, in its
 * slice. */
static void conn_queue(fm_conn *c) {
  fm_chunk *ch;
  void *slice;
  size_t off;
  size_t len;

  if (c->count == FX_TAKEN) {
    fx_fail("multishot server: more deliveries queued than the pool has");
    return;
  }
  slice = fx_take(c->rx, &off, &len);
  if (slice == NULL)
    return;
  ch = &c->queue[(c->head + c->count) % FX_TAKEN];
  ch->slice = slice;
  ch->off = off;
  ch->len = len;
  c->count++;
  fm_taken_from(c->sock);
}

static void conn_delivered(fm_conn *c) {
  asock_op *rx = c->rx->op;
  asock_op *tx = c->tx->op;
  size_t n = asock_op_bytes(rx);
  int r;

  if (c->tx_busy || c->count > 0 || fx_closed(c->sock)) {
    conn_queue(c);
    return;
  }
  asock_op_set_buffer(tx, asock_op_data(rx), n, 0, n);
  r = fx_started(c->tx, asock_send(c->sock, tx), "asock_send");
  if (r == ASOCK_PENDING) {
    size_t off;
    size_t len;
    /* The bytes must outlive this delivery: the send takes the slice. */
    c->tx_busy = 1;
    c->tx_slice = fx_take(c->rx, &off, &len);
    if (c->tx_slice != NULL &&
        (len != n || (unsigned char *)c->tx_slice + off != asock_op_data(tx)))
      fx_fail("multishot server: the slice taken is not the delivery's");
    fm_taken_from(c->sock);
    return;
  }
  if (r < 0 || asock_op_status(tx) != 0)
    conn_close(c);
}

static void conn_rx_done(fx_rec *rec) {
  fm_conn *c = rec->ctx;
  if (asock_op_more(rec->op)) {
    conn_delivered(c);
    return;
  }
  c->rx_done = 1;
  /* After the end of the stream what is queued still goes back; after
   * anything else the connection is over. */
  if (asock_op_status(rec->op) != ASOCK_EOF)
    conn_close(c);
  conn_pump(c);
}

static void conn_tx_done(fx_rec *rec) {
  fm_conn *c = rec->ctx;
  c->tx_busy = 0;
  if (c->tx_slice != NULL) {
    fx_give_back(c->tx_slice);
    c->tx_slice = NULL;
  }
  if (asock_op_status(rec->op) != 0)
    conn_close(c);
  conn_pump(c);
}

void fm_serve(asock_socket *sock) {
  fm_conn *c;
  int size = 4096;
  int r;

  if (nconns == FM_CONNS) {
    fx_fail("more than %d multishot server connections", FM_CONNS);
    asock_socket_close(sock, 0);
    return;
  }
  c = &conns[nconns++];
  memset(c, 0, sizeof(*c));
  c->sock = sock;
  c->rx_done = 1;
  fx_track(sock);
  /* A small send buffer, so that sends wait and slices are taken. An
   * option that fails is reported, not fatal. */
  fx_check_code(asock_socket_send_buffer_size(sock, &size), "multishot server",
                "asock_socket_send_buffer_size");
  c->rx = fx_op("multishot server receive", conn_rx_done, c);
  c->tx = fx_op("multishot server send", conn_tx_done, c);
  if (c->rx == NULL || c->tx == NULL) {
    conn_settle(c);
    return;
  }
  r = asock_op_set_multishot(c->rx->op, 1);
  if (r != 0)
    fx_fail("asock_op_set_multishot: %s", asock_err_name(r));
  r = fx_started(c->rx, asock_receive(sock, c->rx->op),
                 "asock_receive (multishot)");
  if (r == 0)
    fx_fail("a multishot receive completed inside its start");
  if (r == ASOCK_PENDING) {
    c->rx_done = 0;
    return;
  }
  conn_settle(c);
}

int fm_servers_ended(void) { return conns_ended == nconns; }

/* ---- the clients ------------------------------------------------------- */

/* A client connects, streams FM_BULK bytes in one send, receives (one
 * multishot receive into a window of its own, or one-shot receives on
 * demand) once the send is done or a reader is at its quota, checks each
 * byte that comes back, and disconnects once it has them all. */
typedef struct fm_client {
  int id;
  int multishot;
  asock_socket *sock;
  fx_rec *ctl;  /* connect, then disconnect */
  fx_rec *send; /* the stream */
  fx_rec *recv; /* the echo */
  int connected;
  int sent;
  int reading; /* its receive was started */
  int disconnecting;
  size_t got;
  int ended;
  int ok;
  unsigned char out[FM_BULK];
  unsigned char win[FM_WINDOW];
} fm_client;

static fm_client clients[FM_CLIENTS];
static int nclients;

static void client_end(fm_client *c, int ok) {
  if (c->ended)
    return;
  c->ended = 1;
  c->ok = ok;
  /* Whatever is still pending ends with the socket. */
  fx_close(c->sock);
}

static void client_disconnect(fm_client *c) {
  int r;
  if (!c->sent || c->got < FM_BULK || c->disconnecting || c->ended)
    return;
  c->disconnecting = 1;
  r = fx_started(c->ctl, asock_disconnect(c->sock, c->ctl->op),
                 "asock_disconnect");
  if (r != ASOCK_PENDING)
    client_end(c, 0);
}

/* Checks the bytes that came back; 0 (and the client ends) if they are
 * wrong. */
static int client_check(fm_client *c, const unsigned char *p, size_t n) {
  size_t i;
  if (c->got + n > FM_BULK) {
    fx_fail("client %d: %llu bytes came back, %d were sent", c->id,
            (unsigned long long)(c->got + n), FM_BULK);
    client_end(c, 0);
    return 0;
  }
  for (i = 0; i < n; i++)
    if (p[i] != fx_byte(c->id, c->got + i)) {
      fx_fail("client %d: byte %llu came back wrong", c->id,
              (unsigned long long)(c->got + i));
      client_end(c, 0);
      return 0;
    }
  c->got += n;
  return 1;
}

static void client_recv_next(fm_client *c, int r) {
  asock_op *op = c->recv->op;
  for (;;) {
    if (r == ASOCK_PENDING || c->ended)
      return;
    if (r < 0 || asock_op_status(op) != 0) {
      client_end(c, 0);
      return;
    }
    if (!client_check(c, asock_op_data(op), asock_op_bytes(op)))
      return;
    if (c->got == FM_BULK) {
      client_disconnect(c);
      return;
    }
    r = fx_started(c->recv, asock_receive(c->sock, op), "asock_receive");
  }
}

static void client_recv_done(fx_rec *rec) {
  fm_client *c = rec->ctx;
  asock_op *op = rec->op;

  if (!c->multishot) {
    client_recv_next(c, 0);
    return;
  }
  if (asock_op_more(op)) {
    if (!c->ended && client_check(c, asock_op_data(op), asock_op_bytes(op)) &&
        c->got == FM_BULK)
      client_disconnect(c);
    return;
  }
  /* The final completion: the disconnect's close, or the stream cut
   * short. */
  if (c->got < FM_BULK)
    client_end(c, 0);
}

/* Starts the client's receive, once. */
static void client_read(fm_client *c) {
  int r;

  if (c->reading || c->ended || !c->connected)
    return;
  c->reading = 1;
  if (c->multishot) {
    r = asock_op_set_multishot(c->recv->op, 1);
    if (r != 0)
      fx_fail("asock_op_set_multishot: %s", asock_err_name(r));
    asock_op_set_buffer(c->recv->op, c->win, FM_WINDOW, 0, FM_WINDOW);
    r = fx_started(c->recv, asock_receive(c->sock, c->recv->op),
                   "asock_receive (multishot)");
    if (r == 0)
      fx_fail("a multishot receive completed inside its start");
    if (r != ASOCK_PENDING)
      client_end(c, 0);
    return;
  }
  client_recv_next(c, fx_started(c->recv, asock_receive(c->sock, c->recv->op),
                                 "asock_receive"));
}

void fm_taken_from(asock_socket *sock) {
  int i;
  if (fx.quota == 0 || asock_socket_slices_held(sock) < fx.quota)
    return;
  for (i = 0; i < nclients; i++)
    client_read(&clients[i]);
}

static void client_sent(fm_client *c, int r) {
  if (r == ASOCK_PENDING)
    return;
  if (r < 0 || asock_op_status(c->send->op) != 0) {
    client_end(c, 0);
    return;
  }
  c->sent = 1;
  client_read(c);
  client_disconnect(c);
}

static void client_send_done(fx_rec *rec) { client_sent(rec->ctx, 0); }

static void client_connected(fm_client *c) {
  asock_op_set_buffer(c->send->op, c->out, FM_BULK, 0, FM_BULK);
  client_sent(
      c, fx_started(c->send, asock_send(c->sock, c->send->op), "asock_send"));
}

static void client_ctl_done(fx_rec *rec) {
  fm_client *c = rec->ctx;
  if (asock_op_status(rec->op) != 0 || c->ended) {
    client_end(c, 0);
    return;
  }
  if (!c->connected) {
    c->connected = 1;
    client_connected(c);
    return;
  }
  client_end(c, 1); /* disconnected */
}

void fm_client_start(int id, const struct sockaddr_storage *addr,
                     int multishot) {
  fm_client *c;
  size_t i;
  int r;

  if (nclients == FM_CLIENTS) {
    fx_fail("more than %d multishot clients", FM_CLIENTS);
    return;
  }
  c = &clients[nclients++];
  memset(c, 0, sizeof(*c));
  c->id = id;
  c->multishot = multishot;
  c->ended = 1;
  for (i = 0; i < FM_BULK; i++)
    c->out[i] = fx_byte(id, i);
  r = asock_tcp_create(&c->sock, fx.loop);
  fx_check_code(r, "client", "asock_tcp_create");
  if (r != 0)
    return;
  fx_track(c->sock);
  c->ended = 0;
  c->ctl = fx_op("client connect/disconnect", client_ctl_done, c);
  c->send = fx_op("client send", client_send_done, c);
  c->recv = fx_op(multishot ? "client receive (multishot)" : "client receive",
                  client_recv_done, c);
  if (c->ctl == NULL || c->send == NULL || c->recv == NULL) {
    client_end(c, 0);
    return;
  }
  asock_op_set_remote(c->ctl->op, (const struct sockaddr *)addr);
  r = fx_started(c->ctl, asock_connect(c->sock, c->ctl->op), "asock_connect");
  if (r != ASOCK_PENDING)
    client_end(c, 0);
}

/* Every client ended, with nothing of it still pending. */
int fm_clients_done(void) {
  int i;
  for (i = 0; i < nclients; i++) {
    const fm_client *c = &clients[i];
    const fx_rec *recs[3];
    int j;
    if (!c->ended)
      return 0;
    recs[0] = c->ctl;
    recs[1] = c->send;
    recs[2] = c->recv;
    for (j = 0; j < 3; j++)
      if (recs[j] != NULL && recs[j]->calls < recs[j]->pending)
        return 0;
  }
  return 1;
}

int fm_clients_ok(void) {
  int i;
  for (i = 0; i < nclients; i++)
    if (!clients[i].ok || clients[i].got != FM_BULK)
      return 0;
  return nclients > 0;
}

void fm_reset(void) {
  memset(conns, 0, sizeof(conns));
  nconns = 0;
  conns_ended = 0;
  nclients = 0;
}

/* ---- the scenario ------------------------------------------------------ */

static int multishot_done(void) {
  return fm_clients_done() && fm_servers_ended();
}

/* Three clients, two reading with a multishot receive into a window of
 * their own and one with one-shot receives, stream to the multishot echo
 * server at once. */
void scenario_multishot(void) {
  struct sockaddr_storage addr;
  int i;

  if (fx_listen_with(&addr, fm_serve) != 0)
    return;
  for (i = 0; i < 3; i++)
    fm_client_start(i, &addr, i != 1);
  fx_run(multishot_done);
  fx.complete = fm_clients_ok() && nconns == 3 && fm_servers_ended();
}

/* ---- a multishot receive-from ------------------------------------------ */

enum { UM_DATAGRAMS = 6, UM_LEN = 100 };

/* b sends UM_DATAGRAMS datagrams to a, whose one multishot receive-from
 * (buffer-less) checks each and cancels itself once all came. On the
 * io_uring backend the datagrams come through the ring's lent slices
 * (src/uring/udp-ring.c), on readiness through recvmmsg(). */
typedef struct um_state {
  asock_socket *a;
  asock_socket *b;
  struct sockaddr_storage a_addr;
  fx_rec *recv; /* on a, multishot */
  fx_rec *send; /* on b, to a */
  int got;
  int ended; /* the receive's final completion came */
  int final_status;
  int sent;
  int send_done;
  unsigned char out[UM_LEN];
} um_state;

static um_state um;

static unsigned char um_byte(int n, int i) {
  return (unsigned char)(n * 31 + i);
}

static void um_recv_done(fx_rec *rec) {
  asock_op *op = rec->op;
  const unsigned char *p = asock_op_data(op);
  size_t i;

  if (!asock_op_more(op)) {
    um.ended = 1;
    um.final_status = asock_op_status(op);
    return;
  }
  if (asock_op_bytes(op) != UM_LEN || p == NULL)
    fx_fail("udp multishot: a datagram of %llu bytes",
            (unsigned long long)asock_op_bytes(op));
  else
    for (i = 0; i < UM_LEN; i++)
      if (p[i] != um_byte(p[0] / 31, (int)i)) {
        fx_fail("udp multishot: datagram %d arrived damaged", um.got);
        break;
      }
  if (++um.got == UM_DATAGRAMS)
    fx_cancel(rec);
}

static void um_send_next(int r) {
  asock_op *op = um.send->op;
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) != 0 || ++um.sent == UM_DATAGRAMS)
      break;
    for (r = 0; r < UM_LEN; r++)
      um.out[r] = um_byte(um.sent, r);
    asock_op_set_buffer(op, um.out, UM_LEN, 0, UM_LEN);
    r = fx_started(um.send, asock_send_to(um.b, op), "asock_send_to");
  }
  um.send_done = 1;
  /* Datagrams that were not sent will not come. */
  if (um.sent < UM_DATAGRAMS)
    fx_cancel(um.recv);
}

static void um_send_done(fx_rec *rec) {
  (void)rec;
  um_send_next(0);
}

static int um_done(void) { return um.ended && um.send_done; }

void scenario_udp_multishot(void) {
  struct sockaddr_storage b_addr;
  int r;

  memset(&um, 0, sizeof(um));
  um.a = fx_udp_socket(&um.a_addr, "udp multishot");
  um.b = fx_udp_socket(&b_addr, "udp multishot");
  if (um.a == NULL || um.b == NULL)
    return;
  um.recv = fx_op("udp multishot receive-from", um_recv_done, NULL);
  um.send = fx_op("udp multishot send-to", um_send_done, NULL);
  if (um.recv == NULL || um.send == NULL)
    return;
  asock_op_set_multishot(um.recv->op, 1);
  r = fx_started(um.recv, asock_receive_from(um.a, um.recv->op),
                 "asock_receive_from");
  if (r != ASOCK_PENDING) {
    fx_check_code(r, "udp multishot", "asock_receive_from");
    return;
  }
  asock_op_set_remote(um.send->op, (const struct sockaddr *)&um.a_addr);
  for (r = 0; r < UM_LEN; r++)
    um.out[r] = um_byte(0, r);
  asock_op_set_buffer(um.send->op, um.out, UM_LEN, 0, UM_LEN);
  um_send_next(
      fx_started(um.send, asock_send_to(um.b, um.send->op), "asock_send_to"));
  fx_run(um_done);
  fx.complete =
      um.got == UM_DATAGRAMS && um.ended && um.final_status == ASOCK_ECANCELED;
}
