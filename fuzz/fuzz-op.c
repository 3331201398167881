/* Fuzzes the operation state machine over real loopback sockets. Each input
 * sets up one loop, a connected TCP pair and two bound UDP sockets, and is
 * then a program of API calls chosen by its bytes: start a send, receive,
 * send-to, receive-from or disconnect on any socket (listener included) with
 * random sizes, windows and buffers, cancel, set a timeout of a few ms, close
 * a socket, reopen the pair, run the loop once or for a few ms, release and
 * re-acquire ops, restart an op from its own callback. After every step the
 * contract is checked (design.md):
 *
 *   - a start returns ASOCK_PENDING, 0 or a negative code; a pending op
 *     started again is refused, with ASOCK_EBUSY when nothing else is wrong;
 *   - an op that returned ASOCK_PENDING gets exactly one callback, never
 *     inside an asock call the application made (a flag is set around every
 *     call), and an op that did not is never called back;
 *   - asock_op_is_pending() agrees with that bookkeeping at every step;
 *   - a socket's ops that start get sequence numbers 1, 2, 3... and receives
 *     that succeed complete in that order;
 *   - the bytes received on a TCP connection are exactly the bytes sent, in
 *     order (every send has a pattern of its own), and while the connection
 *     was never cut short, all of them arrive; a datagram arrives whole (or
 *     truncated, and flagged so), once, and in order;
 *   - at the end, with everything closed and the loop closed, every pending
 *     op has completed exactly once and the pool has no slice or op in use.
 *
 * Every loop run has a deadline, so that an input cannot hang the fuzzer: a
 * deadline missed where the contract promises progress is a finding. */
#include <string.h>

#include "fuzz.h"

#define NOPS 6
#define BUF_MAX 65536
#define MAX_SENDS 512
/* Sockets: the TCP pair, the two UDP sockets, the listener. */
enum { S_CLIENT, S_SERVER, S_UDP0, S_UDP1, S_LISTENER, NSOCKS };
#define MAX_STEPS 256
/* Milliseconds one input may spend in loop runs it asks for. */
#define RUN_BUDGET_MS 30
/* Where the contract promises progress: a miss is a finding. */
#define DEADLINE_MS 5000

/* One direction of the TCP pair: the sends posted on it, in posting order,
 * and the bytes received and not yet matched to them. */
typedef struct send_rec {
  uint32_t serial;
  size_t len;
  int done;
  int status;
  size_t moved;
} send_rec;

typedef struct stream {
  send_rec sends[MAX_SENDS];
  size_t nsends;
  size_t cur;     /* the send the next received byte belongs to */
  size_t cur_off; /* and its offset in it */
  int ended;      /* a failed send ended the stream: nothing may follow */
  unsigned char *rx;
  size_t rx_len;
  size_t rx_pos;
  size_t rx_cap;
  uint64_t received;
} stream;

typedef struct fsock {
  asock_socket *s; /* NULL once closed */
  int disconnecting;
  uint64_t last_seq;      /* the last sequence number an op started with */
  uint64_t last_recv_seq; /* of the last receive that succeeded */
  unsigned short port;
  /* UDP: the last serial received from each UDP socket, per generation. */
  uint32_t last_serial[2];
  unsigned int gen;
} fsock;

typedef struct fop {
  asock_op *op;    /* NULL while released */
  asock_op *stale; /* the op it released last */
  int pending;     /* started with ASOCK_PENDING, no callback yet */
  asock_op_kind kind;
  int sock;
  unsigned int gen;
  int canceled_by_close; /* its socket was closed while it was pending */
  size_t send_index;     /* SEND: in the direction's stream */
  size_t want_len;       /* SEND, SENDTO: the bytes it moves */
  size_t window;         /* receives: the window, 0 for on-demand */
  int rearm;             /* restarts left from its own callback */
  int has_list;          /* a gather list is set */
  uint8_t prep[3];       /* the bytes prepare() read, for the restarts */
  unsigned char buf[BUF_MAX];
  asock_buf list[3];
} fop;

typedef struct harness {
  asock_pool *pool;
  asock_loop *loop;
  uv_timer_t tick;
  fsock socks[NSOCKS];
  fop ops[NOPS];
  asock_op *helper[3]; /* connect, accept, drain */
  int helper_calls[3];
  stream dirs[2];  /* 0: client to server, 1: server to client */
  int pair_intact; /* nothing cut the current connection short */
  uint32_t serial; /* of the next send or datagram */
  uint64_t tcp_bytes;
  uint64_t run_ms;
  struct sockaddr_storage listen_addr;
  struct sockaddr_storage udp_addr[2];
} harness;

static harness h;
/* ASOCK_FUZZ_TRACE set in the environment: every start and its result is
 * printed, to read what a saved input does. */
static int trace = -1;
/* Set around every asock call the harness makes, except loop runs. */
static int in_call;

static void op_done(asock_op *op);

/* A start's result for the trace. */
static const char *result_name(int r) {
  return r == ASOCK_PENDING ? "PENDING" : r == 0 ? "0" : asock_err_name(r);
}

/* ---- patterns ----------------------------------------------------------- */

static unsigned char pattern(uint32_t serial, size_t off) {
  uint32_t x = serial * 2654435761u + (uint32_t)off * 40503u;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  return (unsigned char)(x ^ (x >> 12) ^ (off >> 8));
}

static void fill(unsigned char *p, size_t len, uint32_t serial, size_t off) {
  size_t i;
  for (i = 0; i < len; i++)
    p[i] = pattern(serial, off + i);
}

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }

static uint32_t get32(const unsigned char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static int is_udp(int sock) { return sock == S_UDP0 || sock == S_UDP1; }

/* ---- the loop ----------------------------------------------------------- */

static void on_tick(uv_timer_t *t) { (void)t; }

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

typedef int (*cond_fn)(void);

/* Runs the loop until cond() holds or ms pass; \return cond(). */
static int run_until(cond_fn cond, uint64_t ms) {
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
static int dir_out(int sock) {
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

/* What an operation's end, synchronous or through the callback, must look
 * like, and what it means for the streams. */
static void finished(fop *f, int status, size_t bytes) {
  fsock *fs = &h.socks[f->sock];
  int d;

  /* Closing cancels what is pending; an op whose end was decided before
   * (a disconnect that failed, a send the kernel refused) may report that
   * instead, but none succeeds. */
  if (f->canceled_by_close)
    FZ_CHECK(status != 0, "an op pending when its socket closed succeeded");
  switch (f->kind) {
  case ASOCK_OP_SEND: {
    stream *st = &h.dirs[dir_out(f->sock)];
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
    d = dir_out(f->sock) ^ 1;
    if (status == 0) {
      FZ_CHECK(bytes > 0, "a receive succeeded with no bytes");
      FZ_CHECK(f->window == 0 || bytes <= f->window,
               "a receive into %zu bytes got %zu", f->window, bytes);
      FZ_CHECK(asock_op_seq(f->op) > fs->last_recv_seq,
               "receive %llu completed after receive %llu",
               (unsigned long long)asock_op_seq(f->op),
               (unsigned long long)fs->last_recv_seq);
      fs->last_recv_seq = asock_op_seq(f->op);
      if (f->window == 0)
        FZ_CHECK(asock_op_buffer_mode(f->op) == ASOCK_BUFFER_SLICE &&
                     asock_op_count(f->op) == bytes,
                 "an on-demand receive does not cover its bytes");
      received(&h.dirs[d], asock_op_data(f->op), bytes);
    } else if (status != ASOCK_ECANCELED && status != ASOCK_ETIMEDOUT &&
               status != ASOCK_ENOBUFS && status != ASOCK_EOF) {
      h.pair_intact = 0;
    }
    break;
  case ASOCK_OP_SENDTO:
    FZ_CHECK(status != 0 || bytes == f->want_len,
             "a datagram of %zu bytes left with %zu", f->want_len, bytes);
    break;
  case ASOCK_OP_RECEIVEFROM:
  case ASOCK_OP_RECEIVEMESSAGEFROM:
    if (status == 0)
      check_datagram(f, f->sock, bytes);
    break;
  case ASOCK_OP_DISCONNECT:
    break;
  default:
    FZ_CHECK(0, "an op of kind %d ended", (int)f->kind);
  }
}

/* ---- starting ----------------------------------------------------------- */

static int start_call(asock_op_kind kind, asock_socket *s, asock_op *op) {
  int r;
  in_call = 1;
  switch (kind) {
  case ASOCK_OP_SEND:
    r = asock_send(s, op);
    break;
  case ASOCK_OP_RECEIVE:
    r = asock_receive(s, op);
    break;
  case ASOCK_OP_SENDTO:
    r = asock_send_to(s, op);
    break;
  case ASOCK_OP_RECEIVEFROM:
    r = asock_receive_from(s, op);
    break;
  case ASOCK_OP_RECEIVEMESSAGEFROM:
    r = asock_receive_message_from(s, op);
    break;
  default:
    r = asock_disconnect(s, op);
    break;
  }
  in_call = 0;
  return r;
}

/* asock may have closed the pair's sockets by itself: a send or disconnect
 * failed, was cancelled, or may time out, any of which resets the
 * connection. */
static int pair_at_risk(void) {
  size_t i;
  if (!h.pair_intact)
    return 1;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && !is_udp(h.ops[i].sock) &&
        (h.ops[i].kind == ASOCK_OP_SEND ||
         h.ops[i].kind == ASOCK_OP_DISCONNECT) &&
        asock_op_timeout(h.ops[i].op) != 0)
      return 1;
  return 0;
}

/* A receive needs a window, or no buffer at all (on demand). */
static int receivable(const fop *f) {
  return !f->has_list && (asock_op_buffer_mode(f->op) == ASOCK_BUFFER_NONE ||
                          asock_op_count(f->op) > 0);
}

/* Whether the op's kind fits the socket (and the socket can take it), so
 * that a pending op can only be refused for being busy. */
static int fits(const fop *f, asock_op_kind kind, int sock) {
  const fsock *fs = &h.socks[sock];
  if (fs->s == NULL || fs->disconnecting || sock == S_LISTENER)
    return 0;
  if (!is_udp(sock) && pair_at_risk())
    return 0;
  switch (kind) {
  case ASOCK_OP_SEND:
    return !is_udp(sock) &&
           (f->has_list || asock_op_buffer_mode(f->op) != ASOCK_BUFFER_NONE);
  case ASOCK_OP_DISCONNECT:
    return !is_udp(sock);
  case ASOCK_OP_RECEIVE:
    return !is_udp(sock) && receivable(f);
  case ASOCK_OP_SENDTO:
    return is_udp(sock) && asock_op_remote(f->op) != NULL &&
           (f->has_list ? f->want_len
            : asock_op_buffer_mode(f->op) != ASOCK_BUFFER_NONE
                ? asock_op_count(f->op)
                : SIZE_MAX) <= 65507;
  default:
    return is_udp(sock) && receivable(f);
  }
}

/* Prepares the idle op's buffer for an operation of this kind; the bytes
 * say how. */
static void prepare(fop *f, asock_op_kind kind, int sock, fz_input *in) {
  uint8_t how = fz_u8(in);
  uint16_t size = fz_u16(in);
  size_t len;

  f->prep[0] = how;
  f->prep[1] = (uint8_t)size;
  f->prep[2] = (uint8_t)(size >> 8);

  if (kind == ASOCK_OP_SEND || kind == ASOCK_OP_SENDTO) {
    len = (how & 0x40) ? size % BUF_MAX : size % 512;
    if (kind == ASOCK_OP_SENDTO) {
      if (len < 8)
        len = 8;
      if (len > 2048 && !(how & 0x20))
        len = 2048;
    }
    f->want_len = len;
    fill(f->buf, len, h.serial, 0);
    if (kind == ASOCK_OP_SENDTO) {
      put32(f->buf, h.serial);
      put32(f->buf + 4, (uint32_t)len);
      asock_op_set_remote(
          f->op,
          (const struct sockaddr *)&h.udp_addr[(sock == S_UDP0) ^ !(how & 1)]);
    }
    if ((how & 0x80) && len >= 3) {
      /* A gather list of three pieces. */
      f->list[0].base = f->buf;
      f->list[0].len = len / 3;
      f->list[1].base = f->buf + len / 3;
      f->list[1].len = 0;
      f->list[2].base = f->buf + len / 3;
      f->list[2].len = len - len / 3;
      asock_op_set_buffer(f->op, NULL, 0, 0, 0);
      asock_op_set_buffer_list(f->op, f->list, 3);
      f->has_list = 1;
    } else {
      asock_op_set_buffer_list(f->op, NULL, 0);
      asock_op_set_buffer(f->op, f->buf, BUF_MAX, 0, len);
      f->has_list = 0;
    }
    return;
  }
  asock_op_set_buffer_list(f->op, NULL, 0);
  f->has_list = 0;
  switch (how % 4) {
  case 0:
    /* On demand: a slice once data is there. */
    asock_op_set_buffer(f->op, NULL, 0, 0, 0);
    f->window = 0;
    break;
  case 1:
    /* The slice a previous on-demand receive left, if any, reused as is. */
    f->window = asock_op_buffer_mode(f->op) == ASOCK_BUFFER_NONE ? 0 : SIZE_MAX;
    break;
  default:
    len = 1 + size % ((how & 4) ? BUF_MAX - 1 : 64);
    asock_op_set_buffer(f->op, f->buf, BUF_MAX, (how >> 3) % 16, len);
    f->window = len;
    break;
  }
  (void)sock;
}

static void start_op(fop *f, asock_op_kind kind, int sock) {
  fsock *fs = &h.socks[sock];
  int was_pending = f->pending;
  int fit = fits(f, kind, sock);
  stream *st = NULL;
  int r;

  if (kind == ASOCK_OP_SEND && dir_out(sock) >= 0 && !was_pending) {
    st = &h.dirs[dir_out(sock)];
    if (st->nsends == MAX_SENDS || h.tcp_bytes > (8u << 20))
      return;
    /* Recorded before the start, since the start may complete it. */
    f->send_index = st->nsends;
    memset(&st->sends[st->nsends], 0, sizeof(st->sends[0]));
    st->sends[st->nsends].serial = h.serial;
    st->sends[st->nsends].len = f->want_len;
    st->nsends++;
  }
  r = start_call(kind, fs->s, f->op);
  if (trace)
    fprintf(stderr, "op %d: kind %d on socket %d%s: %s, status %s, %zu bytes\n",
            (int)(f - h.ops), (int)kind, sock, was_pending ? " (pending)" : "",
            result_name(r), result_name(asock_op_status(f->op)),
            asock_op_bytes(f->op));
  FZ_CHECK(r == ASOCK_PENDING || r <= 0, "a start returned %d", r);
  if (was_pending) {
    FZ_CHECK(r < 0, "a pending op started again: %s", asock_err_name(r));
    /* The arguments are checked before the op's state: a send the socket's
     * hard cap refuses is refused so whether the op is pending or not. */
    FZ_CHECK(r == ASOCK_EBUSY || !fit ||
                 ((kind == ASOCK_OP_SEND || kind == ASOCK_OP_SENDTO) &&
                  r == ASOCK_ENOBUFS),
             "a pending op started again got %s, not ASOCK_EBUSY",
             asock_err_name(r));
    FZ_CHECK(asock_op_is_pending(f->op), "a refused start ended the op");
    return;
  }
  FZ_CHECK(r != ASOCK_EBUSY, "an idle op was refused as busy");
  FZ_CHECK(asock_op_is_pending(f->op) == (r == ASOCK_PENDING),
           "start returned %s, op pending %d", asock_err_name(r),
           asock_op_is_pending(f->op));
  if (r < 0) {
    if (st != NULL)
      st->nsends--;
    return;
  }
  h.serial++;
  if (st != NULL)
    h.tcp_bytes += f->want_len;
  FZ_CHECK(asock_op_seq(f->op) == fs->last_seq + 1,
           "an op started with sequence number %llu after %llu",
           (unsigned long long)asock_op_seq(f->op),
           (unsigned long long)fs->last_seq);
  fs->last_seq = asock_op_seq(f->op);
  f->kind = kind;
  f->sock = sock;
  f->gen = fs->gen;
  f->canceled_by_close = 0;
  if (kind == ASOCK_OP_DISCONNECT) {
    fs->disconnecting = 1;
    h.pair_intact = 0;
  }
  if (r == ASOCK_PENDING) {
    f->pending = 1;
    return;
  }
  FZ_CHECK(asock_op_completed_synchronously(f->op),
           "returned 0, not marked synchronous");
  finished(f, asock_op_status(f->op), asock_op_bytes(f->op));
}

static void op_done(asock_op *op) {
  fop *f = asock_op_user_data(op);

  FZ_CHECK(!in_call, "a callback (kind %d, %s) ran inside an asock call",
           (int)asock_op_last_kind(op), asock_err_name(asock_op_status(op)));
  FZ_CHECK(f != NULL && f->op == op, "a callback for an op not in use");
  FZ_CHECK(f->pending,
           "a second callback, or one for an op that did not "
           "return ASOCK_PENDING (kind %d, %s)",
           (int)asock_op_last_kind(op), asock_err_name(asock_op_status(op)));
  FZ_CHECK(!asock_op_is_pending(op), "op pending in its callback");
  FZ_CHECK(!asock_op_completed_synchronously(op),
           "op marked synchronous in its callback");
  FZ_CHECK(asock_op_last_kind(op) == f->kind, "callback of kind %d for %d",
           (int)asock_op_last_kind(op), (int)f->kind);
  f->pending = 0;
  if (trace)
    fprintf(stderr, "op %d: callback, kind %d, status %s, %zu bytes\n",
            (int)(f - h.ops), (int)f->kind, result_name(asock_op_status(op)),
            asock_op_bytes(op));
  finished(f, asock_op_status(op), asock_op_bytes(op));
  /* The op is idle in its callback: it may start again at once. */
  if (f->rearm > 0 && h.socks[f->sock].s != NULL &&
      h.socks[f->sock].gen == f->gen) {
    uint8_t prep[3];
    fz_input again;
    memcpy(prep, f->prep, sizeof(prep));
    again.p = prep;
    again.n = sizeof(prep);
    f->rearm--;
    prepare(f, f->kind, f->sock, &again);
    start_op(f, f->kind, f->sock);
  }
}

static void helper_done(asock_op *op) {
  FZ_CHECK(!in_call, "a helper's callback ran inside an asock call");
  h.helper_calls[(uintptr_t)asock_op_user_data(op)]++;
}

/* ---- sockets ------------------------------------------------------------ */

static void socket_closed(int sock) {
  size_t i;
  h.socks[sock].s = NULL;
  h.socks[sock].disconnecting = 0;
  h.socks[sock].gen++;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].pending && h.ops[i].sock == sock)
      h.ops[i].canceled_by_close = 1;
}

static void close_socket(int sock, int abortive) {
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
  if (!is_udp(sock))
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
  fs->last_seq = 0;
  fs->last_recv_seq = 0;
  fs->last_serial[0] = fs->last_serial[1] = 0;
}

static void open_pair(int shrink) {
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
  FZ_CHECK(run_until(connected, DEADLINE_MS),
           "a loopback connection was not made in %d ms", DEADLINE_MS);
  FZ_CHECK_CODE(asock_op_status(h.helper[0]), 0, "connect status");
  FZ_CHECK_CODE(asock_op_status(h.helper[1]), 0, "accept status");
  new_socket_state(S_CLIENT, client);
  new_socket_state(S_SERVER, asock_op_accepted(h.helper[1]));
  /* The connect was the client's first op. */
  h.socks[S_CLIENT].last_seq = asock_op_seq(h.helper[0]);
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

static void open_udp(int sock) {
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

static void open_listener(void) {
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

static void check_pending(void) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].op != NULL)
      FZ_CHECK(asock_op_is_pending(h.ops[i].op) == h.ops[i].pending,
               "op %zu: asock says pending %d, its start and callbacks say %d",
               i, asock_op_is_pending(h.ops[i].op), h.ops[i].pending);
}

static int none_pending(void) {
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
static unsigned char drain_buf[BUF_MAX];

static void drain_done(asock_op *op) {
  FZ_CHECK(!in_call, "a callback ran inside an asock call");
  drain_busy = 0;
  drain_status = asock_op_status(op);
  if (drain_status == 0)
    received(&h.dirs[drain_dir], asock_op_data(op), asock_op_bytes(op));
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
 * arrive: reads on the receiving end until the streams match. */
static void drain(int dir) {
  int to = dir == 0 ? S_SERVER : S_CLIENT;
  asock_op *op = h.helper[2];
  uint64_t deadline = now_ms() + DEADLINE_MS;

  if (trace)
    fprintf(stderr, "drain direction %d\n", dir);
  drain_dir = dir;
  drain_status = 0;
  asock_op_set_callback(op, drain_done);
  while (!drained()) {
    /* A receive that completes on demand keeps its slice: given back, so
     * that a receive waiting for one is not held up by back-pressure. */
    drop_idle_slices();
    if (!drain_busy) {
      int r;
      asock_op_set_buffer(op, drain_buf, sizeof(drain_buf), 0,
                          sizeof(drain_buf));
      in_call = 1;
      r = asock_receive(h.socks[to].s, op);
      in_call = 0;
      FZ_CHECK(r == 0 || r == ASOCK_PENDING, "drain receive: %s",
               asock_err_name(r));
      if (r == 0) {
        drain_status = asock_op_status(op);
        if (drain_status == 0)
          received(&h.dirs[dir], asock_op_data(op), asock_op_bytes(op));
        continue;
      }
      drain_busy = 1;
    }
    FZ_CHECK(now_ms() < deadline,
             "stalled: %zu of %zu sends matched, %llu bytes received",
             h.dirs[dir].cur, h.dirs[dir].nsends,
             (unsigned long long)h.dirs[dir].received);
    run_until(NULL, 1);
  }
  /* A send of the other end may be timing out meanwhile, which resets the
   * connection: the receive hears of it before the send's callback runs. */
  if (h.pair_intact && drain_status != 0) {
    drain_sender = dir == 0 ? S_CLIENT : S_SERVER;
    run_until(sender_idle, DEADLINE_MS);
  }
  FZ_CHECK(!h.pair_intact || drain_status == 0,
           "an intact connection's receive ended with %s",
           asock_err_name(drain_status));
  if (drain_busy) {
    in_call = 1;
    FZ_CHECK_CODE(asock_cancel(op), 0, "cancel of the drain receive");
    in_call = 0;
    while (drain_busy) {
      FZ_CHECK(now_ms() < deadline, "a cancelled receive never completed");
      run_until(NULL, 1);
    }
  }
}

/* ---- the steps ---------------------------------------------------------- */

static const asock_op_kind kinds[] = {ASOCK_OP_SEND,
                                      ASOCK_OP_SEND,
                                      ASOCK_OP_RECEIVE,
                                      ASOCK_OP_RECEIVE,
                                      ASOCK_OP_SENDTO,
                                      ASOCK_OP_RECEIVEFROM,
                                      ASOCK_OP_RECEIVEMESSAGEFROM,
                                      ASOCK_OP_DISCONNECT};

/* The socket an operation of this kind would normally go to. */
static int natural_socket(asock_op_kind kind, uint8_t pick) {
  switch (kind) {
  case ASOCK_OP_SEND:
  case ASOCK_OP_RECEIVE:
  case ASOCK_OP_DISCONNECT:
    return (pick & 1) ? S_SERVER : S_CLIENT;
  default:
    return (pick & 1) ? S_UDP1 : S_UDP0;
  }
}

static void step_start(fop *f, fz_input *in) {
  uint8_t what = fz_u8(in);
  uint8_t where = fz_u8(in);
  asock_op_kind kind = kinds[what % 8];
  int sock = (where & 0xf0) == 0xf0 ? (int)(where % NSOCKS)
                                    : natural_socket(kind, where);

  if (kind == ASOCK_OP_DISCONNECT && (what & 0x30) != 0x30)
    kind = ASOCK_OP_RECEIVE; /* disconnects end the pair: rarer */
  if (h.socks[sock].s == NULL) {
    int r = start_call(kind, NULL, f->op);
    FZ_CHECK_CODE(r, ASOCK_EINVAL, "a start on no socket");
    return;
  }
  if (!f->pending)
    prepare(f, kind, sock, in);
  start_op(f, kind, sock);
}

static void step_cancel(fop *f) {
  int r;
  if (trace)
    fprintf(stderr, "op %d: cancel\n", (int)(f - h.ops));
  in_call = 1;
  r = asock_cancel(f->op);
  in_call = 0;
  FZ_CHECK_CODE(r, f->pending ? 0 : ASOCK_ENOTPENDING, "cancel");
  FZ_CHECK(asock_op_is_pending(f->op) == f->pending,
           "cancel changed whether the op is pending");
  /* Cancelling a send or a disconnect may reset the connection. */
  if (f->pending &&
      (f->kind == ASOCK_OP_SEND || f->kind == ASOCK_OP_DISCONNECT))
    h.pair_intact = 0;
}

static void step_release(fop *f) {
  size_t i;

  if (f->op != NULL) {
    in_call = 1;
    FZ_CHECK_CODE(asock_op_release(h.pool, f->op), f->pending ? ASOCK_EBUSY : 0,
                  "op_release");
    in_call = 0;
    if (!f->pending) {
      f->stale = f->op;
      f->op = NULL;
    }
    return;
  }
  /* Released twice: refused, unless the free list handed the same op to
   * another slot since, which makes it that slot's. */
  if (f->stale == NULL)
    return;
  for (i = 0; i < NOPS; i++)
    if (h.ops[i].op == f->stale)
      return;
  for (i = 0; i < 3; i++)
    if (h.helper[i] == f->stale)
      return;
  FZ_CHECK_CODE(asock_op_release(h.pool, f->stale), ASOCK_ENOTHELD,
                "a second op_release");
}

static void step_acquire(fop *f) {
  if (f->op != NULL)
    return;
  FZ_CHECK_CODE(asock_op_acquire(h.pool, &f->op), 0, "op_acquire");
  FZ_CHECK_CODE(asock_op_set_callback(f->op, op_done), 0, "set_callback");
  FZ_CHECK_CODE(asock_op_set_user_data(f->op, f), 0, "set_user_data");
  f->pending = 0;
  f->rearm = 0;
  f->has_list = 0;
}

static void step_buffer(fop *f, uint8_t how) {
  int r;
  if (how & 1) {
    r = asock_op_take_slice(f->op);
    FZ_CHECK(f->pending ? r == ASOCK_EBUSY : (r == 0 || r == ASOCK_ENOBUFS),
             "take_slice: %s", asock_err_name(r));
  } else {
    FZ_CHECK_CODE(asock_op_clear_buffer(f->op), f->pending ? ASOCK_EBUSY : 0,
                  "clear_buffer");
    if (!f->pending)
      f->has_list = 0;
  }
}

static void step_limits(fz_input *in) {
  int sock = fz_u8(in) & 1 ? S_SERVER : S_CLIENT;
  size_t low = fz_u16(in);
  size_t high = fz_u16(in);
  size_t cap = (size_t)fz_u16(in) * 4;

  if (h.socks[sock].s == NULL)
    return;
  FZ_CHECK_CODE(asock_socket_set_send_limits(h.socks[sock].s, low, high, cap),
                low > high || (cap != 0 && cap < high) ? ASOCK_EINVAL : 0,
                "set_send_limits");
}

static void step_reopen(uint8_t how) {
  if (how & 1) {
    close_socket(S_CLIENT, how & 2);
    close_socket(S_SERVER, how & 4);
    if (h.socks[S_LISTENER].s == NULL)
      open_listener();
    open_pair(how & 8);
  } else {
    int sock = (how & 2) ? S_UDP1 : S_UDP0;
    close_socket(sock, 0);
    open_udp(sock);
  }
}

/* Runs the loop: mostly without waiting, sometimes for a few ms so that
 * timeouts (the wheel ticks every 4 ms) come due. */
static void step_run(uint8_t how) {
  uint64_t ms = how % 4 < 2 ? 0 : how % 4 == 2 ? 1 : (how >> 2) % 12;
  if (h.run_ms + ms > RUN_BUDGET_MS)
    ms = 0;
  h.run_ms += ms;
  if (trace)
    fprintf(stderr, "run %d ms\n", (int)ms);
  if (ms == 0)
    asock_loop_run(h.loop, UV_RUN_NOWAIT);
  else
    run_until(NULL, ms);
}

static void step(fz_input *in) {
  uint8_t what = fz_u8(in);
  uint8_t arg = fz_u8(in);
  fop *f = &h.ops[arg % NOPS];

  if (f->op == NULL && what % 16 != 10 && what % 16 != 11)
    return;
  switch (what % 16) {
  case 0:
  case 1:
  case 2:
  case 3:
    step_start(f, in);
    break;
  case 4:
    step_cancel(f);
    break;
  case 5:
    FZ_CHECK_CODE(asock_op_set_timeout(f->op, 1 + arg % 8),
                  f->pending ? ASOCK_EBUSY : 0, "set_timeout");
    break;
  case 6:
    close_socket((arg >> 3) % NSOCKS, arg & 0x80);
    break;
  case 7:
    step_reopen(fz_u8(in));
    break;
  case 8:
  case 9:
    step_run(fz_u8(in));
    break;
  case 10:
    step_release(f);
    break;
  case 11:
    step_acquire(f);
    break;
  case 12:
    f->rearm = (arg >> 4) % 4;
    break;
  case 13:
    step_buffer(f, arg >> 4);
    break;
  case 14:
    step_limits(in);
    break;
  default:
    FZ_CHECK_CODE(asock_op_set_timeout(f->op, 0), f->pending ? ASOCK_EBUSY : 0,
                  "set_timeout 0");
    break;
  }
  check_pending();
}

/* ---- one input ---------------------------------------------------------- */

static void setup(fz_input *in) {
  static const size_t sizes[] = {64, 256, 1024, 4096, 16384};
  asock_pool_config cfg;
  uint8_t shape = fz_u8(in);
  size_t i;

  memset(&h.socks, 0, sizeof(h.socks));
  h.serial = 1;
  h.tcp_bytes = 0;
  h.run_ms = 0;
  asock_pool_config_init(&cfg);
  cfg.slice_size = sizes[shape % 5];
  cfg.slice_count = 1 + fz_u8(in) % 40;
  cfg.op_count = NOPS + 3;
  cfg.socket_quota = (shape >> 3) % 4;
  cfg.flags = ((shape & 0x20) ? ASOCK_POOL_FAIL_FAST : 0) |
              ((shape & 0x40) ? ASOCK_POOL_ZERO_ON_RELEASE : 0) |
              ((shape & 0x80) ? ASOCK_POOL_NO_LINGER : 0);
  FZ_CHECK_CODE(asock_pool_create(&h.pool, &cfg), 0, "pool_create");
  FZ_CHECK_CODE(asock_loop_create(&h.loop, h.pool, NULL), 0, "loop_create");
  FZ_CHECK(uv_timer_init(asock_loop_uv(h.loop), &h.tick) == 0, "timer");
  for (i = 0; i < 3; i++) {
    FZ_CHECK_CODE(asock_op_acquire(h.pool, &h.helper[i]), 0, "helper op");
    asock_op_set_callback(h.helper[i], helper_done);
    asock_op_set_user_data(h.helper[i], (void *)(uintptr_t)i);
  }
  for (i = 0; i < NOPS; i++) {
    h.ops[i].op = NULL;
    h.ops[i].stale = NULL;
    step_acquire(&h.ops[i]);
  }
  open_listener();
  open_pair(shape & 0x80);
  open_udp(S_UDP0);
  open_udp(S_UDP1);
}

static void on_tick_closed(uv_handle_t *handle) { *(int *)handle->data = 1; }

static void teardown(uint8_t how) {
  asock_pool_stats st;
  int closed = 0;
  size_t i;

  for (i = 0; i < NOPS; i++)
    h.ops[i].rearm = 0;
  /* What was sent on a connection nothing cut short all arrives. The UDP
   * sockets go first: datagrams they keep hold slices a receive may need. */
  close_socket(S_UDP0, 0);
  close_socket(S_UDP1, 0);
  if (h.pair_intact && h.socks[S_CLIENT].s != NULL &&
      h.socks[S_SERVER].s != NULL) {
    drain(0);
    drain(1);
  }
  /* Every pending op completes once its socket closes: closed here, or by
   * asock_loop_close(). */
  if (how & 1) {
    for (i = 0; i < NSOCKS; i++)
      close_socket((int)i, how & 2);
    FZ_CHECK(run_until(none_pending, DEADLINE_MS),
             "ops still pending %d ms after their sockets closed", DEADLINE_MS);
  }
  h.tick.data = &closed;
  uv_close((uv_handle_t *)&h.tick, on_tick_closed);
  while (!closed)
    asock_loop_run(h.loop, UV_RUN_NOWAIT);
  for (i = 0; i < NSOCKS; i++)
    h.socks[i].s = NULL;
  FZ_CHECK_CODE(asock_loop_close(h.loop), 0, "loop_close");
  h.loop = NULL;
  for (i = 0; i < NOPS; i++) {
    FZ_CHECK(!h.ops[i].pending, "op %zu never completed", i);
    if (h.ops[i].op != NULL)
      FZ_CHECK_CODE(asock_op_release(h.pool, h.ops[i].op), 0, "op_release");
    h.ops[i].op = NULL;
  }
  for (i = 0; i < 3; i++)
    FZ_CHECK_CODE(asock_op_release(h.pool, h.helper[i]), 0, "helper release");
  FZ_CHECK_CODE(asock_pool_stats_get(h.pool, &st), 0, "stats");
  FZ_CHECK(st.slices_in_use == 0 && st.ops_in_use == 0,
           "after closing: %zu slices and %zu ops in use", st.slices_in_use,
           st.ops_in_use);
  FZ_CHECK_CODE(asock_pool_destroy(h.pool), 0, "pool_destroy");
  h.pool = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_input in;
  unsigned int steps = 0;

  in.p = data;
  in.n = size;
  if (trace < 0)
    trace = getenv("ASOCK_FUZZ_TRACE") != NULL;
  setup(&in);
  while (!fz_done(&in) && steps++ < MAX_STEPS)
    step(&in);
  teardown(fz_u8(&in));
  return 0;
}
