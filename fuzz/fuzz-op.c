/* Fuzzes the operation state machine over real loopback sockets. Each input
 * sets up one loop, a connected TCP pair and two bound UDP sockets, and is
 * then a program of API calls chosen by its bytes: start a send, receive,
 * send-to, receive-from or disconnect on any socket (listener included) with
 * random sizes, windows and buffers, receives one-shot or multishot, cancel,
 * set a timeout of a few ms, close a socket, reopen the pair, run the loop
 * once or for a few ms, release and re-acquire ops, restart an op from its
 * own callback, take an idle op's slice, give taken slices back. An op's
 * callbacks follow a plan the input gives (op-deliver.c): take the slice of
 * a completion or delivery, and inside a delivery cancel the receive, close
 * its socket or its peer, or start another receive on the socket. After
 * every step the contract is checked (design.md):
 *
 *   - a start returns ASOCK_PENDING, 0 or a negative code; a pending op
 *     started again is refused, with ASOCK_EBUSY when nothing else is wrong;
 *     a multishot receive never completes inside its start, while it is
 *     pending every other receive on its socket is refused with ASOCK_EBUSY,
 *     and a multishot op is refused by every other kind with ASOCK_EKIND;
 *   - an op that returned ASOCK_PENDING gets exactly one final callback,
 *     never inside an asock call the application made (a flag is set around
 *     every call), and an op that did not is never called back; a multishot
 *     receive's deliveries come only while it is pending, with
 *     asock_op_more() 1, status 0 and data, and none after it was cancelled
 *     or its socket closed; its final completion is an error (ASOCK_EOF, a
 *     connection error, ASOCK_ETIMEDOUT, ASOCK_ECANCELED, ASOCK_ENOBUFS),
 *     and ASOCK_ECANCELED when the receive was ended inside a delivery,
 *     whose results stay the delivery's until the callback returns;
 *   - asock_op_is_pending() agrees with that bookkeeping at every step, and
 *     asock_op_more() is 0 outside callbacks;
 *   - each socket's send counter (sends, send-tos, connects, disconnects)
 *     gives 1, 2, 3... at the starts; its receive counter (receives,
 *     receive-froms, accepts, and a multishot receive's deliveries and
 *     final completion) gives every number once, a number taken at a start
 *     or delivery is above every number given before, and once no
 *     multishot receive is pending the numbers given are exactly 1..n;
 *     receives that succeed, and deliveries, come in that order;
 *   - the bytes received on a TCP connection, by one-shot receives and
 *     deliveries alike, are exactly the bytes sent, in order (every send has
 *     a pattern of its own), and while the connection was never cut short,
 *     all of them arrive; a datagram arrives whole (or truncated, and
 *     flagged so), once, and in order;
 *   - a slice taken out of an op (asock_op_detach_slice()) holds the data
 *     the op said, the op has no buffer after, a slice a receive took counts
 *     against its socket from then on (the count stays, or rises by one for
 *     a TCP delivery's, charged only when taken) and stops counting when it
 *     is given back, and its bytes are untouched until asock_pool_release()
 *     takes it; every taken slice is given back by the end, some after the
 *     loop closed;
 *   - at the end, with everything closed and the loop closed, every pending
 *     op has completed exactly once and the pool has no slice or op in use.
 *
 * Every loop run has a deadline, so that an input cannot hang the fuzzer: a
 * deadline missed where the contract promises progress is a finding.
 *
 * Among the seeds, cancel-after-close-in-delivery cancels an op whose
 * socket a delivery closed, while its ECANCELED is still on its way: the
 * socket must still be there for the cancel (it once was freed first). */
#include <string.h>

#include "op-harness.h"

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
    if (h.ops[i].pending && !fo_is_udp(h.ops[i].sock) &&
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

/* Whether the socket is as the harness thinks it is: open, and not shut
 * by asock itself. */
static int socket_sound(int sock) {
  const fsock *fs = &h.socks[sock];
  if (fs->s == NULL || fs->disconnecting || sock == S_LISTENER)
    return 0;
  return fo_is_udp(sock) || !pair_at_risk();
}

/* Whether the op's kind fits the socket (and the socket can take it), so
 * that a pending op can only be refused for being busy. */
static int fits(const fop *f, asock_op_kind kind, int sock) {
  if (!socket_sound(sock))
    return 0;
  if (!fo_is_receive(kind) && asock_op_multishot(f->op))
    return 0;
  switch (kind) {
  case ASOCK_OP_SEND:
    return !fo_is_udp(sock) &&
           (f->has_list || asock_op_buffer_mode(f->op) != ASOCK_BUFFER_NONE);
  case ASOCK_OP_DISCONNECT:
    return !fo_is_udp(sock);
  case ASOCK_OP_RECEIVE:
    return !fo_is_udp(sock) && receivable(f);
  case ASOCK_OP_SENDTO:
    return fo_is_udp(sock) && asock_op_remote(f->op) != NULL &&
           (f->has_list ? f->want_len
            : asock_op_buffer_mode(f->op) != ASOCK_BUFFER_NONE
                ? asock_op_count(f->op)
                : SIZE_MAX) <= 65507;
  default:
    return fo_is_udp(sock) && receivable(f);
  }
}

int fo_set_multishot(fop *f, int enable) {
  int r = asock_op_set_multishot(f->op, enable);
  FZ_CHECK_CODE(r, f->pending ? ASOCK_EBUSY : 0, "set_multishot");
  if (r == 0)
    FZ_CHECK(asock_op_multishot(f->op) == (enable != 0),
             "asock_op_multishot() says %d after set_multishot(%d)",
             asock_op_multishot(f->op), enable);
  return asock_op_multishot(f->op) == (enable != 0);
}

/* Prepares the idle op's buffer for an operation of this kind; the bytes
 * say how. */
void fo_prepare(fop *f, asock_op_kind kind, int sock, fz_input *in) {
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
    fo_fill(f->buf, len, h.serial, 0);
    if (kind == ASOCK_OP_SENDTO) {
      fo_put32(f->buf, h.serial);
      fo_put32(f->buf + 4, (uint32_t)len);
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

/* The numbers a start took, and what the op's callbacks will check. */
static void started(fop *f, asock_op_kind kind, int sock, int multishot) {
  fsock *fs = &h.socks[sock];
  uint64_t seq = asock_op_seq(f->op);

  f->multishot = 0;
  f->ms_live = 0;
  if (!fo_is_receive(kind)) {
    FZ_CHECK(seq == fs->tx->max + 1,
             "an op started with send number %llu after %llu",
             (unsigned long long)seq, (unsigned long long)fs->tx->max);
    fo_seq_taken_now(fs->tx, seq, "a start");
    return;
  }
  f->rx = fs->rx;
  f->multishot = multishot;
  f->cancelled = 0;
  f->ended_in_delivery = 0;
  f->deliveries = 0;
  /* A multishot receive takes its numbers as it delivers and ends; on a
   * socket whose stream has ended it ends at once, holding nothing. */
  f->ms_live = multishot && !fs->read_ended;
  if (!multishot) {
    f->start_seq = seq;
    fo_seq_taken_now(fs->rx, seq, "a receive's start");
  }
}

void fo_start_op(fop *f, asock_op_kind kind, int sock) {
  fsock *fs = &h.socks[sock];
  int was_pending = f->pending;
  int fit = fits(f, kind, sock);
  int multishot = asock_op_multishot(f->op);
  /* A multishot receive holds the socket's receive side. */
  int held = fo_is_receive(kind) && fo_multishot_on(sock);
  stream *st = NULL;
  int r;

  if (kind == ASOCK_OP_SEND && fo_dir_out(sock) >= 0 && !was_pending) {
    st = &h.dirs[fo_dir_out(sock)];
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
            fo_result_name(r), fo_result_name(asock_op_status(f->op)),
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
  if (!fo_is_receive(kind) && multishot) {
    FZ_CHECK(r < 0, "a multishot op started an op of kind %d", (int)kind);
    FZ_CHECK(r == ASOCK_EKIND || !socket_sound(sock),
             "a multishot op started as kind %d was refused with %s, not "
             "ASOCK_EKIND",
             (int)kind, asock_err_name(r));
  } else if (held) {
    FZ_CHECK(r == ASOCK_EBUSY || (!fit && r < 0),
             "a receive on a socket a multishot receive holds got %s",
             asock_err_name(r));
  } else {
    FZ_CHECK(r != ASOCK_EBUSY, "an idle op was refused as busy");
  }
  if (fo_is_receive(kind) && multishot)
    FZ_CHECK(r != 0, "a multishot receive completed inside its start");
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
  started(f, kind, sock, multishot);
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
  fo_finished(f, asock_op_status(f->op), asock_op_bytes(f->op));
  fo_after_sync(f);
}

static void helper_done(asock_op *op) {
  FZ_CHECK(!in_call, "a helper's callback ran inside an asock call");
  h.helper_calls[(uintptr_t)asock_op_user_data(op)]++;
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

/* Starts an op: `what` picks the kind (its low three bits), and for a
 * receive whether it is multishot (0x40) and whether a plan byte follows
 * (0x80); any other kind leaves a multishot op multishot when both bits are
 * set, to be refused. */
static void step_start(fop *f, fz_input *in) {
  uint8_t what = fz_u8(in);
  uint8_t where = fz_u8(in);
  asock_op_kind kind = kinds[what % 8];
  int sock = (where & 0xf0) == 0xf0 ? (int)(where % NSOCKS)
                                    : natural_socket(kind, where);

  if (kind == ASOCK_OP_DISCONNECT && (what & 0x30) != 0x30)
    kind = ASOCK_OP_RECEIVE; /* disconnects end the pair: rarer */
  if (h.socks[sock].s == NULL) {
    /* A pending op may be refused as busy before the socket is looked
     * at. */
    int r = start_call(kind, NULL, f->op);
    FZ_CHECK(r == ASOCK_EINVAL || (f->pending && r == ASOCK_EBUSY),
             "a start on no socket got %s", asock_err_name(r));
    return;
  }
  if (!f->pending) {
    if (fo_is_receive(kind))
      (void)fo_set_multishot(f, (what & 0x40) != 0);
    else
      (void)fo_set_multishot(f, (what & 0xc0) == 0xc0);
    fo_prepare(f, kind, sock, in);
    f->plan = (what & 0x80) && fo_is_receive(kind) ? fz_u8(in) : 0;
  } else if (what & 0x40) {
    (void)fo_set_multishot(f, 0); /* refused: it is pending */
  }
  fo_start_op(f, kind, sock);
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
  if (f->pending && f->multishot) {
    f->cancelled = 1;
    f->ms_live = 0;
  }
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
  FZ_CHECK_CODE(asock_op_set_callback(f->op, fo_op_done), 0, "set_callback");
  FZ_CHECK_CODE(asock_op_set_user_data(f->op, f), 0, "set_user_data");
  f->pending = 0;
  f->rearm = 0;
  f->has_list = 0;
  f->multishot = 0;
  f->ms_live = 0;
  f->plan = 0;
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
    fo_close_socket(S_CLIENT, how & 2);
    fo_close_socket(S_SERVER, how & 4);
    if (h.socks[S_LISTENER].s == NULL)
      fo_open_listener();
    fo_open_pair(how & 8);
  } else {
    int sock = (how & 2) ? S_UDP1 : S_UDP0;
    fo_close_socket(sock, 0);
    fo_open_udp(sock);
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
    fo_run_until(NULL, ms);
}

/* Gives back one slice the application took (arg's low bits pick it), or
 * all of them (arg & 0x80). */
static void step_give_back(uint8_t arg) {
  if (h.ntaken == 0)
    return;
  if (arg & 0x80)
    fo_release_all_taken();
  else
    fo_release_taken(arg % h.ntaken);
}

/* One step: `what % 16` picks it; for steps 13 and 15 the bit 0x80 picks a
 * second one (taking an op's slice, giving taken slices back). */
static void step(fz_input *in) {
  uint8_t what = fz_u8(in);
  uint8_t arg = fz_u8(in);
  fop *f = &h.ops[arg % NOPS];

  if (what % 16 == 15 && (what & 0x80)) {
    step_give_back(arg);
    fo_check_pending();
    return;
  }
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
    fo_close_socket((arg >> 3) % NSOCKS, arg & 0x80);
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
    if (what & 0x80)
      (void)fo_detach(f, 0);
    else
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
  fo_check_pending();
}

/* ---- one input ---------------------------------------------------------- */

static void setup(fz_input *in) {
  static const size_t sizes[] = {64, 256, 1024, 4096, 16384};
  asock_pool_config cfg;
  uint8_t shape = fz_u8(in);
  uint8_t count = fz_u8(in);
  size_t i;

  memset(&h.socks, 0, sizeof(h.socks));
  h.serial = 1;
  h.tcp_bytes = 0;
  h.run_ms = 0;
  h.tearing = 0;
  h.ntaken = 0;
  h.rng = 0x9e3779b9u ^ ((uint32_t)shape << 8 | count);
  asock_pool_config_init(&cfg);
  cfg.slice_size = sizes[shape % 5];
  cfg.slice_count = 1 + count % 40;
  cfg.op_count = NOPS + 3;
  /* A quota of a few slices, none, or about half the pool: with slices
   * taken and not given back, a socket then stops reading before the pool
   * runs dry. */
  cfg.socket_quota =
      (shape & 0x80) ? cfg.slice_count / 2 + 1 : (size_t)(shape >> 3) % 4;
  cfg.flags = ((shape & 0x20) ? ASOCK_POOL_FAIL_FAST : 0) |
              ((shape & 0x40) ? ASOCK_POOL_ZERO_ON_RELEASE : 0);
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
  fo_open_listener();
  fo_open_pair(count & 0x80);
  fo_open_udp(S_UDP0);
  fo_open_udp(S_UDP1);
}

static void on_tick_closed(uv_handle_t *handle) { *(int *)handle->data = 1; }

static void teardown(uint8_t how) {
  asock_pool_stats st;
  int closed = 0;
  size_t i;

  int drain = h.pair_intact && h.socks[S_CLIENT].s != NULL &&
              h.socks[S_SERVER].s != NULL;

  /* From here on the callbacks only check: no restarts, no slices taken,
   * nothing cancelled or closed from inside them. */
  h.tearing = 1;
  for (i = 0; i < NOPS; i++)
    h.ops[i].rearm = 0;
  /* Slices the application took hold a socket that reaches its quota:
   * given back before a drain, which needs it reading. Otherwise some stay
   * taken until after the loop closed, which their sockets outlive. */
  if (drain || !(how & 4))
    fo_release_all_taken();
  /* What was sent on a connection nothing cut short all arrives. The UDP
   * sockets go first: datagrams they keep hold slices a receive may need. */
  fo_close_socket(S_UDP0, 0);
  fo_close_socket(S_UDP1, 0);
  if (drain) {
    fo_drain(0);
    fo_drain(1);
  }
  /* Every pending op completes once its socket closes: closed here, or by
   * asock_loop_close(). */
  if (how & 1) {
    for (i = 0; i < NSOCKS; i++)
      fo_close_socket((int)i, how & 2);
    FZ_CHECK(fo_run_until(fo_none_pending, DEADLINE_MS),
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
  fo_release_all_taken();
  fo_ledger_end();
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
  if (trace < 0) {
    trace = getenv("ASOCK_FUZZ_TRACE") != NULL;
  }
  setup(&in);
  while (!fz_done(&in) && steps++ < MAX_STEPS)
    step(&in);
  /* The last byte says how the input ends, as the steps rarely leave one
   * unread. */
  teardown(size > 0 ? data[size - 1] : 0);
  return 0;
}
