/* The fuzz-op target's harness (see op-harness.h and fuzz-op.c). */
#include <string.h>

#include "op-harness.h"

harness h;
int trace = -1;
int in_call;

/* A start's result for the trace. */
const char *fo_result_name(int r) {
  return r == ASOCK_PENDING ? "PENDING" : r == 0 ? "0" : asock_err_name(r);
}

/* ---- patterns ----------------------------------------------------------- */

static unsigned char pattern(uint32_t serial, size_t off) {
  uint32_t x = serial * 2654435761u + (uint32_t)off * 40503u;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  return (unsigned char)(x ^ (x >> 12) ^ (off >> 8));
}

void fo_fill(unsigned char *p, size_t len, uint32_t serial, size_t off) {
  size_t i;
  for (i = 0; i < len; i++)
    p[i] = pattern(serial, off + i);
}

void fo_put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

int fo_is_udp(int sock) { return sock == S_UDP0 || sock == S_UDP1; }

int fo_is_receive(asock_op_kind kind) {
  return kind == ASOCK_OP_RECEIVE || kind == ASOCK_OP_RECEIVEFROM ||
         kind == ASOCK_OP_RECEIVEMESSAGEFROM;
}

/* xorshift32: the same choices for the same input, as long as the
 * callbacks come in the same order. */
uint32_t fo_rand(void) {
  uint32_t x = h.rng != 0 ? h.rng : 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  h.rng = x;
  return x;
}

/* ---- the loop ----------------------------------------------------------- */

static void on_tick(uv_timer_t *t) { (void)t; }

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

/* Runs the loop until cond() holds or ms pass; \return cond(). */
int fo_run_until(cond_fn cond, uint64_t ms) {
  uint64_t deadline = now_ms() + ms;
  int done;
  uv_timer_start(&h.tick, on_tick, 1, 1);
  while (!(done = cond != NULL && cond()) && now_ms() < deadline)
    asock_loop_run(h.loop, UV_RUN_ONCE);
  uv_timer_stop(&h.tick);
  return done;
}

/* ---- TCP streams -------------------------------------------------------- */

/* The direction a socket's sends go in, or -1 for a socket not of the pair.
 */
int fo_dir_out(int sock) {
  return sock == S_CLIENT ? 0 : sock == S_SERVER ? 1 : -1;
}

/* Matches received bytes to the sends whose fate is known: a send that
 * succeeded contributes every byte, one that failed with none moved
 * contributes none (it was taken out of the queue), and one that failed
 * after moving bytes may contribute up to all of them and ends the stream. */
static void verify(stream *st) {
  while (st->cur < st->nsends) {
    send_rec *s = &st->sends[st->cur];
    size_t limit, n, i;
    if (!s->done)
      break;
    if (s->status != 0 && s->moved == 0) {
      st->cur++;
      continue;
    }
    limit = s->len;
    n = st->rx_len - st->rx_pos;
    if (n > limit - st->cur_off)
      n = limit - st->cur_off;
    for (i = 0; i < n; i++)
      FZ_CHECK(
          st->rx[st->rx_pos + i] == pattern(s->serial, st->cur_off + i),
          "TCP byte %llu: byte %zu of send %u (of %zu bytes) differs",
          (unsigned long long)(st->received - (st->rx_len - st->rx_pos) + i),
          st->cur_off + i, s->serial, s->len);
    st->rx_pos += n;
    st->cur_off += n;
    if (s->status != 0) {
      /* The connection is gone after this send: what is left must be the
       * rest of it, or nothing. */
      FZ_CHECK(st->rx_pos == st->rx_len,
               "bytes arrived after send %u, which failed with %s", s->serial,
               asock_err_name(s->status));
      st->ended = 1;
      break;
    }
    if (st->cur_off < limit)
      break;
    st->cur++;
    st->cur_off = 0;
  }
  if (st->cur == st->nsends || st->ended)
    FZ_CHECK(st->rx_pos == st->rx_len, "%zu bytes arrived that nobody sent",
             st->rx_len - st->rx_pos);
  if (st->rx_pos == st->rx_len)
    st->rx_pos = st->rx_len = 0;
}

static void received(stream *st, const unsigned char *p, size_t n) {
  if (st->rx_len + n > st->rx_cap) {
    size_t cap = st->rx_cap * 2 + n + 4096;
    unsigned char *rx = realloc(st->rx, cap);
    FZ_CHECK(rx != NULL, "out of memory");
    st->rx = rx;
    st->rx_cap = cap;
  }
  memcpy(st->rx + st->rx_len, p, n);
  st->rx_len += n;
  st->received += n;
  verify(st);
}

/* ---- completions -------------------------------------------------------- */

static void check_datagram(fop *f, int sock, size_t bytes) {
  const struct sockaddr *from = asock_op_remote(f->op);
  const unsigned char *p = asock_op_data(f->op);
  unsigned int flags = asock_op_msg_flags(f->op);
  uint32_t serial, len;
  unsigned short port;
  int src;

  FZ_CHECK(from != NULL && from->sa_family == AF_INET,
           "a datagram without its sender");
  port = ntohs(((const struct sockaddr_in *)from)->sin_port);
  if (f->window != 0)
    FZ_CHECK(bytes <= f->window, "datagram of %zu bytes in a window of %zu",
             bytes, f->window);
  if (bytes < 8)
    return; /* too short to say whose it is */
  serial = get32(p);
  len = get32(p + 4);
  for (src = 0; src < 2; src++)
    if (h.socks[S_UDP0 + src].s != NULL && h.socks[S_UDP0 + src].port == port)
      break;
  if (src == 2)
    return; /* from a socket closed since */
  FZ_CHECK(len >= 8 && len <= BUF_MAX, "datagram header says %u bytes", len);
  FZ_CHECK((flags & ASOCK_MSG_TRUNCATED) ? bytes < len : bytes == len,
           "datagram %u of %u bytes arrived with %zu bytes, flags %u", serial,
           len, bytes, flags);
  for (size_t i = 8; i < bytes; i++)
    FZ_CHECK(p[i] == pattern(serial, i), "byte %zu of datagram %u differs", i,
             serial);
  FZ_CHECK(serial > h.socks[sock].last_serial[src],
           "datagram %u arrived after datagram %u from the same socket", serial,
           h.socks[sock].last_serial[src]);
  h.socks[sock].last_serial[src] = serial;
}

/* What an operation's end, synchronous or through the callback, or a
 * multishot receive's delivery, must look like, and what it means for the
 * streams. */
void fo_finished(fop *f, int status, size_t bytes) {
  int d;

  /* Closing cancels what is pending; an op whose end was decided before
   * (a disconnect that failed, a send the kernel refused) may report that
   * instead, but none succeeds. */
  if (f->canceled_by_close)
    FZ_CHECK(status != 0, "an op pending when its socket closed succeeded");
  switch (f->kind) {
  case ASOCK_OP_SEND: {
    stream *st = &h.dirs[fo_dir_out(f->sock)];
    send_rec *s = &st->sends[f->send_index];
    FZ_CHECK(status != 0 || bytes == f->want_len,
             "a send of %zu bytes succeeded with %zu", f->want_len, bytes);
    FZ_CHECK(bytes <= f->want_len, "a send of %zu bytes moved %zu", f->want_len,
             bytes);
    s->done = 1;
    s->status = status;
    s->moved = bytes;
    if (status != 0)
      h.pair_intact = 0;
    verify(st);
    break;
  }
  case ASOCK_OP_RECEIVE:
    d = fo_dir_out(f->sock) ^ 1;
    if (status == 0) {
      FZ_CHECK(bytes > 0, "a receive succeeded with no bytes");
      FZ_CHECK(f->window == 0 || bytes <= f->window,
               "a receive into %zu bytes got %zu", f->window, bytes);
      FZ_CHECK(asock_op_seq(f->op) > f->rx->last_ok,
               "receive %llu completed after receive %llu",
               (unsigned long long)asock_op_seq(f->op),
               (unsigned long long)f->rx->last_ok);
      f->rx->last_ok = asock_op_seq(f->op);
      if (f->window == 0)
        FZ_CHECK(asock_op_buffer_mode(f->op) == ASOCK_BUFFER_SLICE &&
                     asock_op_count(f->op) == bytes,
                 "an on-demand receive does not cover its bytes");
      received(&h.dirs[d], asock_op_data(f->op), bytes);
    } else if (status != ASOCK_ECANCELED && status != ASOCK_ETIMEDOUT &&
               status != ASOCK_ENOBUFS) {
      /* The end of the stream, or an error: every later receive of the
       * socket ends so too, at once. */
      if (fo_same_socket(f))
        h.socks[f->sock].read_ended = 1;
      if (status != ASOCK_EOF)
        h.pair_intact = 0;
    }
    break;
  case ASOCK_OP_SENDTO:
    FZ_CHECK(status != 0 || bytes == f->want_len,
             "a datagram of %zu bytes left with %zu", f->want_len, bytes);
    break;
  case ASOCK_OP_RECEIVEFROM:
  case ASOCK_OP_RECEIVEMESSAGEFROM:
    if (status == 0) {
      FZ_CHECK(asock_op_seq(f->op) > f->rx->last_ok,
               "datagram receive %llu completed after receive %llu",
               (unsigned long long)asock_op_seq(f->op),
               (unsigned long long)f->rx->last_ok);
      f->rx->last_ok = asock_op_seq(f->op);
      if (f->window == 0)
        FZ_CHECK(asock_op_buffer_mode(f->op) == ASOCK_BUFFER_SLICE &&
                     asock_op_count(f->op) == bytes,
                 "an on-demand receive-from does not cover its datagram");
      check_datagram(f, f->sock, bytes);
    }
    break;
  case ASOCK_OP_DISCONNECT:
    break;
  default:
    FZ_CHECK(0, "an op of kind %d ended", (int)f->kind);
  }
}

/* ---- sockets ------------------------------------------------------------ */

static void socket_closed(int sock) {
  size_t i;
  h.socks[sock].s = NULL;
  h.socks[sock].disconnecting = 0;
  h.socks[sock].gen++;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && h.ops[i].sock == sock) {
      h.ops[i].canceled_by_close = 1;
      h.ops[i].ms_live = 0;
    }
}

int fo_same_socket(const fop *f) {
  return h.socks[f->sock].s != NULL && h.socks[f->sock].gen == f->gen;
}

void fo_close_socket(int sock, int abortive) {
  if (h.socks[sock].s == NULL)
    return;
  if (trace)
    fprintf(stderr, "close socket %d%s\n", sock, abortive ? " (abort)" : "");
  in_call = 1;
  FZ_CHECK_CODE(
      asock_socket_close(h.socks[sock].s, abortive ? ASOCK_CLOSE_ABORT : 0), 0,
      "socket_close");
  in_call = 0;
  socket_closed(sock);
  if (!fo_is_udp(sock))
    h.pair_intact = 0;
}

static int connected(void) {
  return h.helper_calls[0] == 1 && h.helper_calls[1] == 1;
}

static void reset_stream(stream *st) {
  st->nsends = 0;
  st->cur = 0;
  st->cur_off = 0;
  st->ended = 0;
  st->rx_len = 0;
  st->rx_pos = 0;
  st->received = 0;
}

static void new_socket_state(int sock, asock_socket *s) {
  fsock *fs = &h.socks[sock];
  fs->s = s;
  fs->disconnecting = 0;
  fs->read_ended = 0;
  fs->rx = fo_seq_new(sock, 1);
  fs->tx = fo_seq_new(sock, 0);
  fs->last_serial[0] = fs->last_serial[1] = 0;
}

void fo_open_pair(int shrink) {
  asock_socket *client;
  int r;

  if (trace)
    fprintf(stderr, "open pair%s\n", shrink ? " (small buffers)" : "");
  in_call = 1;
  FZ_CHECK_CODE(asock_tcp_create(&client, h.loop), 0, "tcp_create");
  FZ_CHECK_CODE(
      asock_op_set_remote(h.helper[0], (const struct sockaddr *)&h.listen_addr),
      0, "set_remote");
  FZ_CHECK_CODE(asock_connect(client, h.helper[0]), ASOCK_PENDING, "connect");
  r = asock_accept(h.socks[S_LISTENER].s, h.helper[1]);
  in_call = 0;
  h.helper_calls[0] = 0;
  h.helper_calls[1] = r == 0 ? 1 : 0;
  FZ_CHECK(r == 0 || r == ASOCK_PENDING, "accept: %s", asock_err_name(r));
  /* Accepts draw from the listener's receive counter. */
  fo_seq_taken_now(h.socks[S_LISTENER].rx, asock_op_seq(h.helper[1]),
                   "an accept");
  FZ_CHECK(fo_run_until(connected, DEADLINE_MS),
           "a loopback connection was not made in %d ms", DEADLINE_MS);
  FZ_CHECK_CODE(asock_op_status(h.helper[0]), 0, "connect status");
  FZ_CHECK_CODE(asock_op_status(h.helper[1]), 0, "accept status");
  new_socket_state(S_CLIENT, client);
  new_socket_state(S_SERVER, asock_op_accepted(h.helper[1]));
  /* The connect was the client's first send-side op; the accepted socket
   * starts both counters afresh. */
  fo_seq_taken_now(h.socks[S_CLIENT].tx, asock_op_seq(h.helper[0]),
                   "the connect");
  if (shrink) {
    int v = 4096;
    asock_socket_send_buffer_size(client, &v);
    v = 4096;
    asock_socket_recv_buffer_size(h.socks[S_SERVER].s, &v);
  }
  reset_stream(&h.dirs[0]);
  reset_stream(&h.dirs[1]);
  h.pair_intact = 1;
}

void fo_open_udp(int sock) {
  asock_socket *s;
  struct sockaddr_storage addr;
  int len = (int)sizeof(addr);

  memset(&addr, 0, sizeof(addr));
  uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&addr);
  in_call = 1;
  FZ_CHECK_CODE(asock_udp_create(&s, h.loop), 0, "udp_create");
  FZ_CHECK_CODE(asock_udp_bind(s, (struct sockaddr *)&addr, 0), 0, "bind");
  FZ_CHECK_CODE(asock_socket_local_address(s, (struct sockaddr *)&addr, &len),
                0, "local_address");
  in_call = 0;
  new_socket_state(sock, s);
  h.udp_addr[sock - S_UDP0] = addr;
  h.socks[sock].port = ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

void fo_open_listener(void) {
  asock_socket *s;
  int len = (int)sizeof(h.listen_addr);

  memset(&h.listen_addr, 0, sizeof(h.listen_addr));
  uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&h.listen_addr);
  FZ_CHECK_CODE(asock_tcp_create(&s, h.loop), 0, "tcp_create");
  FZ_CHECK_CODE(
      asock_tcp_listen(s, (const struct sockaddr *)&h.listen_addr, 16, 0), 0,
      "listen");
  FZ_CHECK_CODE(
      asock_socket_local_address(s, (struct sockaddr *)&h.listen_addr, &len), 0,
      "local_address");
  new_socket_state(S_LISTENER, s);
}

/* ---- checks between steps ----------------------------------------------- */

/* 1 while a multishot receive of the counter's socket is pending: the
 * number of its final completion may be taken and not yet seen. */
static int numbers_outstanding(const seqset *set) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && h.ops[i].multishot && h.ops[i].rx == set)
      return 1;
  return 0;
}

void fo_check_pending(void) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].op != NULL) {
      FZ_CHECK(asock_op_is_pending(h.ops[i].op) == h.ops[i].pending,
               "op %zu: asock says pending %d, its start and callbacks say %d",
               i, asock_op_is_pending(h.ops[i].op), h.ops[i].pending);
      FZ_CHECK(asock_op_more(h.ops[i].op) == 0,
               "op %zu: asock_op_more() is 1 outside its callback", i);
    }
  for (i = 0; i < h.nsets; i++)
    if (!numbers_outstanding(h.sets[i]))
      fo_seq_check_whole(h.sets[i]);
}

int fo_multishot_on(int sock) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && h.ops[i].ms_live && h.ops[i].sock == sock &&
        h.ops[i].gen == h.socks[sock].gen)
      return 1;
  return 0;
}

int fo_none_pending(void) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending)
      return 0;
  return 1;
}

/* ---- draining: every byte sent arrives ----------------------------------- */

static int drain_dir;
static int drain_status;
static int drain_busy;
static uint64_t drain_seq;
static unsigned char drain_buf[BUF_MAX];

/* A drain receive ended: in order with the others of its socket. */
static void drain_end(asock_op *op) {
  seqset *rx = h.socks[drain_dir == 0 ? S_SERVER : S_CLIENT].rx;

  drain_status = asock_op_status(op);
  FZ_CHECK(asock_op_seq(op) == drain_seq,
           "the drain's receive started as number %llu, ended as %llu",
           (unsigned long long)drain_seq, (unsigned long long)asock_op_seq(op));
  if (drain_status != 0)
    return;
  FZ_CHECK(drain_seq > rx->last_ok, "receive %llu completed after receive %llu",
           (unsigned long long)drain_seq, (unsigned long long)rx->last_ok);
  rx->last_ok = drain_seq;
  received(&h.dirs[drain_dir], asock_op_data(op), asock_op_bytes(op));
}

static void drain_done(asock_op *op) {
  FZ_CHECK(!in_call, "a callback ran inside an asock call");
  FZ_CHECK(drain_busy, "a second callback for the drain's receive");
  drain_busy = 0;
  drain_end(op);
}

static int drain_sender;

static void drop_idle_slices(void) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].op != NULL && !h.ops[i].pending &&
        asock_op_buffer_mode(h.ops[i].op) == ASOCK_BUFFER_SLICE) {
      FZ_CHECK_CODE(asock_op_clear_buffer(h.ops[i].op), 0, "clear_buffer");
      h.ops[i].has_list = 0;
    }
}

/* An on-demand receive that waits for a slice while every slice is held
 * waits for good when the holders are receives that wait too: one queued
 * behind it on its socket, or one on the other end whose bytes all came.
 * That is the contract (exhaustion is back-pressure), so the drain does what
 * an application would: it cancels the receives that hold a slice of their
 * own, and drop_idle_slices() gives those slices back once they ended. */
static void unpin_slices(int to) {
  asock_pool_stats st;
  size_t i;
  int waiting = 0;

  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && h.ops[i].kind == ASOCK_OP_RECEIVE &&
        h.ops[i].sock == to && h.ops[i].window == 0)
      waiting = 1;
  FZ_CHECK_CODE(asock_pool_stats_get(h.pool, &st), 0, "stats");
  if (!waiting || st.slices_in_use < st.slices_total)
    return;
  for (i = 0; i < NOPS; i++) {
    fop *f = &h.ops[i];
    if (f->pending && !f->multishot && fo_is_receive(f->kind) &&
        asock_op_buffer_mode(f->op) == ASOCK_BUFFER_SLICE) {
      if (trace)
        fprintf(stderr, "fo_drain cancels op %zu, which holds a slice\n", i);
      FZ_CHECK_CODE(asock_cancel(f->op), 0, "cancel of a receive's slice");
    }
  }
}

static int sender_idle(void) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && h.ops[i].sock == drain_sender)
      return 0;
  return 1;
}

static int drained(void) {
  const stream *st = &h.dirs[drain_dir];
  return !h.pair_intact || drain_status != 0 ||
         (st->cur == st->nsends && st->rx_len == st->rx_pos);
}

/* While nothing cut the connection short, every byte of every send must
 * arrive: reads on the receiving end until the streams match. A multishot
 * receive still pending there reads for the drain. */
void fo_drain(int dir) {
  int to = dir == 0 ? S_SERVER : S_CLIENT;
  asock_op *op = h.helper[2];
  uint64_t deadline = now_ms() + DEADLINE_MS;

  if (trace)
    fprintf(stderr, "fo_drain direction %d\n", dir);
  drain_dir = dir;
  drain_status = 0;
  asock_op_set_callback(op, drain_done);
  while (!drained()) {
    /* A receive that completes on demand keeps its slice: given back, so
     * that a receive waiting for one is not held up by back-pressure. */
    drop_idle_slices();
    unpin_slices(to);
    if (!drain_busy && !fo_multishot_on(to)) {
      int r;
      asock_op_set_buffer(op, drain_buf, sizeof(drain_buf), 0,
                          sizeof(drain_buf));
      in_call = 1;
      r = asock_receive(h.socks[to].s, op);
      in_call = 0;
      FZ_CHECK(r == 0 || r == ASOCK_PENDING, "fo_drain receive: %s",
               asock_err_name(r));
      drain_seq = asock_op_seq(op);
      fo_seq_taken_now(h.socks[to].rx, drain_seq, "the drain's receive");
      if (r == 0) {
        drain_end(op);
        continue;
      }
      drain_busy = 1;
    }
    FZ_CHECK(now_ms() < deadline,
             "stalled: %zu of %zu sends matched, %llu bytes received",
             h.dirs[dir].cur, h.dirs[dir].nsends,
             (unsigned long long)h.dirs[dir].received);
    fo_run_until(NULL, 1);
  }
  /* A send of the other end may be timing out meanwhile, which resets the
   * connection: the receive hears of it before the send's callback runs. */
  if (h.pair_intact && drain_status != 0) {
    drain_sender = dir == 0 ? S_CLIENT : S_SERVER;
    fo_run_until(sender_idle, DEADLINE_MS);
  }
  FZ_CHECK(!h.pair_intact || drain_status == 0,
           "an intact connection's receive ended with %s",
           asock_err_name(drain_status));
  if (drain_busy) {
    in_call = 1;
    FZ_CHECK_CODE(asock_cancel(op), 0, "cancel of the fo_drain receive");
    in_call = 0;
    while (drain_busy) {
      FZ_CHECK(now_ms() < deadline, "a cancelled receive never completed");
      fo_run_until(NULL, 1);
    }
  }
}
