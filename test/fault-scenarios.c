/* The fault injection sweep's scenarios: an echo over several TCP
 * connections, a connect by host name, bulk transfers, a UDP exchange and
 * loop groups (the multishot ones are in fault-multishot.c and
 * fault-relay.c). Each runs on the loop fault-run.c made, counts every op
 * it starts, and must end, or stall, whatever call the sweep fails. */
#include <stdlib.h>
#include <string.h>

#include "fault-run.h"

unsigned char fx_byte(int conn, size_t pos) {
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

/* A listener, what serves its connections, and the accepts it keeps
 * posted. */
typedef struct fx_acceptor {
  asock_socket *listener;
  void (*serve)(asock_socket *sock);
} fx_acceptor;

static fx_acceptor acceptors[2];
static int nacceptors;

static void accept_next(fx_rec *rec, int r) {
  fx_acceptor *a = rec->ctx;
  asock_op *op = rec->op;
  for (;;) {
    if (r == ASOCK_PENDING)
      return;
    if (r < 0 || asock_op_status(op) == ASOCK_ECANCELED)
      return;
    if (asock_op_status(op) == 0)
      a->serve(asock_op_accepted(op));
    /* An accept that failed (EMFILE...) is the listener's: post again. */
    r = fx_started(rec, asock_accept(a->listener, op), "asock_accept");
  }
}

static void accept_done(fx_rec *rec) { accept_next(rec, 0); }

static void echo_serve(asock_socket *sock) { server_start(sock, 0); }

int fx_listen_with(struct sockaddr_storage *addr,
                   void (*serve)(asock_socket *sock)) {
  fx_acceptor *a;
  int len = (int)sizeof(*addr);
  int r;
  int i;

  if (nacceptors == 2) {
    fx_fail("more than two listeners");
    return ASOCK_EINVAL;
  }
  a = &acceptors[nacceptors++];
  a->serve = serve;
  r = asock_tcp_create(&a->listener, fx.loop);
  fx_check_code(r, "listener", "asock_tcp_create");
  if (r != 0)
    return r;
  fx_track(a->listener);
  tu_addr("127.0.0.1", 0, addr);
  r = asock_tcp_listen(a->listener, (struct sockaddr *)addr, 16, 0);
  fx_check_code(r, "listener", "asock_tcp_listen");
  if (r == 0) {
    r = asock_socket_local_address(a->listener, (struct sockaddr *)addr, &len);
    fx_check_code(r, "listener", "asock_socket_local_address");
  }
  for (i = 0; r == 0 && i < 2; i++) {
    fx_rec *rec = fx_op("accept", accept_done, a);
    if (rec == NULL)
      return ASOCK_ENOBUFS;
    accept_next(rec, fx_started(rec, asock_accept(a->listener, rec->op),
                                "asock_accept"));
  }
  return r;
}

static int fx_listen(struct sockaddr_storage *addr) {
  return fx_listen_with(addr, echo_serve);
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

void scenario_echo(void) {
  struct sockaddr_storage addr;
  int i;

  if (fx_listen(&addr) != 0)
    return;
  for (i = 0; i < 3; i++)
    client_start(i, &addr, NULL);
  fx_run(echo_done);
  fx.complete = clients_ok() && asock__load_u32(&nservers) == 3;
}

void scenario_connect_host(void) {
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

void scenario_bulk(void) {
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

void fx_cancel(fx_rec *rec) {
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

asock_socket *fx_udp_socket(struct sockaddr_storage *addr, const char *what) {
  asock_socket *s;
  int len = (int)sizeof(*addr);
  int r = asock_udp_create(&s, fx.loop);

  fx_check_code(r, what, "asock_udp_create");
  if (r != 0)
    return NULL;
  fx_track(s);
  tu_addr("127.0.0.1", 0, addr);
  r = asock_udp_bind(s, (struct sockaddr *)addr, 0);
  fx_check_code(r, what, "asock_udp_bind");
  if (r == 0) {
    r = asock_socket_local_address(s, (struct sockaddr *)addr, &len);
    fx_check_code(r, what, "asock_socket_local_address");
  }
  return r == 0 ? s : NULL;
}

static int udp_done(void) {
  return u.a_done == 2 && u.send_done && u.reply_recv_done && !u.reply_pending;
}

void scenario_udp(void) {
  int r;

  memset(&u, 0, sizeof(u));
  u.a = fx_udp_socket(&u.a_addr, "udp");
  u.b = fx_udp_socket(&u.b_addr, "udp");
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

void scenario_group_balanced(void) { scenario_group(0, 100); }
void scenario_group_handoff(void) { scenario_group(ASOCK_GROUP_HANDOFF, 0); }

void fx_scenarios_reset(void) {
  memset(servers, 0, sizeof(servers));
  memset(clients, 0, sizeof(clients));
  nclients = 0;
  memset(acceptors, 0, sizeof(acceptors));
  nacceptors = 0;
  fm_reset();
  asock__store_u32(&nservers, 0);
  asock__store_u32(&servers_ended, 0);
}
