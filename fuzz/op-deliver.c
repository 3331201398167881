/* The fuzz-op target's callback for its ops (see op-harness.h): one-shot
 * completions, a multishot receive's deliveries and its final completion,
 * what each must show, and what the op's plan makes the callback do: take
 * the slice, cancel the receive, close its socket or its peer, start
 * another receive on the socket, or restart the op.
 *
 * An op's plan is one byte the input gave with its start:
 *   bits 0-1  taking slices: never, in every callback, in every other
 *             delivery, in the first delivery only;
 *   bits 2-4  what a delivery does at delivery number k: nothing (0-2),
 *             cancel the receive (3), close its socket (4) or reset it
 *             (5), close the peer socket (6), try another receive on the
 *             socket, which is refused while the multishot receive holds
 *             it, then cancel and start that other receive (7);
 *   bits 5-7  k - 1. */
#include <string.h>

#include "op-harness.h"

enum {
  PLAN_CANCEL = 3,
  PLAN_CLOSE = 4,
  PLAN_RESET = 5,
  PLAN_CLOSE_PEER = 6,
  PLAN_HAND_OVER = 7
};

static int plan_detach(const fop *f, int delivery) {
  switch (f->plan & 3) {
  case 1:
    return 1;
  case 2:
    return delivery % 2 == 1;
  case 3:
    return delivery == 1;
  default:
    return 0;
  }
}

void fo_after_sync(fop *f) {
  if (!h.tearing && fo_is_receive(f->kind) && plan_detach(f, 1))
    (void)fo_detach(f, 1);
}

/* An idle op other than f, for a second receive on f's socket. */
static fop *other_idle(const fop *f) {
  size_t i;
  for (i = 0; i < NOPS; i++)
    if (&h.ops[i] != f && h.ops[i].op != NULL && !h.ops[i].pending)
      return &h.ops[i];
  return NULL;
}

/* Starts a receive of f's kind on f's socket with another op: on demand,
 * multishot or not, with a plan of its own. */
static void start_other(const fop *f) {
  fop *g = other_idle(f);
  uint8_t prep[3] = {0, 0, 0};
  fz_input in;

  if (g == NULL)
    return;
  if (trace)
    fprintf(stderr, "op %d: starts op %d from its delivery\n", (int)(f - h.ops),
            (int)(g - h.ops));
  in.p = prep;
  in.n = sizeof(prep);
  (void)fo_set_multishot(g, fo_rand() & 1);
  fo_prepare(g, f->kind, f->sock, &in);
  g->plan = (uint8_t)fo_rand();
  fo_start_op(g, f->kind, f->sock);
}

/* A pending op cannot be changed, started again or released, even inside
 * its delivery. */
static void check_still_busy(fop *f) {
  asock_op *op = f->op;
  switch (fo_rand() % 6) {
  case 0:
    FZ_CHECK_CODE(asock_op_set_timeout(op, 5), ASOCK_EBUSY,
                  "set_timeout in a delivery");
    break;
  case 1:
    FZ_CHECK_CODE(asock_op_release(h.pool, op), ASOCK_EBUSY,
                  "op_release in a delivery");
    break;
  case 2:
    FZ_CHECK_CODE(asock_op_set_multishot(op, 0), ASOCK_EBUSY,
                  "set_multishot in a delivery");
    break;
  case 3:
    FZ_CHECK_CODE(asock_op_clear_buffer(op), ASOCK_EBUSY,
                  "clear_buffer in a delivery");
    break;
  case 4:
    in_call = 1;
    FZ_CHECK_CODE(fo_is_udp(f->sock)
                      ? asock_receive_from(h.socks[f->sock].s, op)
                      : asock_receive(h.socks[f->sock].s, op),
                  ASOCK_EBUSY, "the delivering op started again");
    in_call = 0;
    break;
  default:
    break;
  }
}

/* Ends the receive inside its delivery, as the plan says; the delivery's
 * results must stay as they were until the callback returns. */
static void end_in_delivery(fop *f, int act) {
  asock_op *op = f->op;
  size_t bytes = asock_op_bytes(op);
  uint64_t seq = asock_op_seq(op);
  int peer;

  if (trace)
    fprintf(stderr, "op %d: plan %d in delivery %d\n", (int)(f - h.ops), act,
            f->deliveries);
  switch (act) {
  case PLAN_CANCEL:
  case PLAN_HAND_OVER:
    in_call = 1;
    FZ_CHECK_CODE(asock_cancel(op), 0, "cancel in a delivery");
    in_call = 0;
    f->cancelled = 1;
    f->ms_live = 0;
    f->ended_in_delivery = 1;
    break;
  case PLAN_CLOSE:
  case PLAN_RESET:
    fo_close_socket(f->sock, act == PLAN_RESET);
    f->ended_in_delivery = 1;
    break;
  default:
    peer = f->sock == S_CLIENT   ? S_SERVER
           : f->sock == S_SERVER ? S_CLIENT
           : f->sock == S_UDP0   ? S_UDP1
                                 : S_UDP0;
    fo_close_socket(peer, fo_rand() & 1);
    break;
  }
  FZ_CHECK(asock_op_more(op) == 1 && asock_op_is_pending(op) &&
               asock_op_status(op) == 0 && asock_op_bytes(op) == bytes &&
               asock_op_seq(op) == seq,
           "ending a receive inside its delivery changed the delivery's "
           "results: more %d, pending %d, %s, %zu bytes (was %zu), number "
           "%llu (was %llu)",
           asock_op_more(op), asock_op_is_pending(op),
           asock_err_name(asock_op_status(op)), asock_op_bytes(op), bytes,
           (unsigned long long)asock_op_seq(op), (unsigned long long)seq);
  if (f->ended_in_delivery) {
    in_call = 1;
    FZ_CHECK_CODE(asock_cancel(op), 0, "a second cancel in a delivery");
    in_call = 0;
  }
  if (act == PLAN_HAND_OVER && fo_same_socket(f))
    start_other(f);
}

static void delivery(fop *f) {
  asock_op *op = f->op;
  size_t bytes = asock_op_bytes(op);
  int act = (f->plan >> 2) & 7;
  int detach_first = fo_rand() & 1;

  FZ_CHECK(f->multishot && asock_op_multishot(op),
           "a one-shot receive was called with asock_op_more() 1");
  FZ_CHECK(asock_op_is_pending(op), "an op is idle in its delivery");
  FZ_CHECK(!f->cancelled, "a delivery after the receive was cancelled");
  FZ_CHECK(!f->canceled_by_close, "a delivery after its socket was closed");
  FZ_CHECK(asock_op_status(op) == 0 && bytes > 0,
           "a delivery with %s and %zu bytes",
           asock_err_name(asock_op_status(op)), bytes);
  FZ_CHECK(asock_op_socket(op) == h.socks[f->sock].s,
           "a delivery names another socket");
  f->deliveries++;
  if (trace)
    fprintf(stderr, "op %d: delivery %d, number %llu, %zu bytes\n",
            (int)(f - h.ops), f->deliveries,
            (unsigned long long)asock_op_seq(op), bytes);
  fo_seq_taken_now(f->rx, asock_op_seq(op), "a delivery");
  fo_finished(f, 0, bytes);
  check_still_busy(f);
  if (h.tearing)
    return;
  if (detach_first && plan_detach(f, f->deliveries) && fo_detach(f, 2))
    f->window = 0; /* its next deliveries come in slices of the pool's */
  if (act >= PLAN_CANCEL && f->deliveries == 1 + (f->plan >> 5))
    end_in_delivery(f, act);
  else if (act == PLAN_HAND_OVER && (fo_rand() & 1))
    start_other(f); /* refused: the multishot receive holds the socket */
  if (!detach_first && plan_detach(f, f->deliveries) && fo_detach(f, 2))
    f->window = 0;
}

/* The final completion of a multishot receive, or a one-shot op's only
 * one. */
static void final(fop *f) {
  asock_op *op = f->op;
  int status = asock_op_status(op);

  FZ_CHECK(!asock_op_is_pending(op), "op pending in its final callback");
  f->pending = 0;
  if (trace)
    fprintf(stderr, "op %d: callback, kind %d, status %s, %zu bytes\n",
            (int)(f - h.ops), (int)f->kind, fo_result_name(status),
            asock_op_bytes(op));
  if (f->multishot) {
    FZ_CHECK(status != 0 && asock_op_bytes(op) == 0,
             "a multishot receive ended with %s and %zu bytes",
             asock_err_name(status), asock_op_bytes(op));
    FZ_CHECK(!f->ended_in_delivery || status == ASOCK_ECANCELED,
             "a multishot receive ended inside its delivery completed "
             "with %s",
             asock_err_name(status));
    fo_seq_seen(f->rx, asock_op_seq(op), "a multishot receive's end");
    f->ms_live = 0;
    fo_finished(f, status, 0);
  } else {
    if (fo_is_receive(f->kind))
      FZ_CHECK(asock_op_seq(op) == f->start_seq,
               "a receive started as number %llu completed as %llu",
               (unsigned long long)f->start_seq,
               (unsigned long long)asock_op_seq(op));
    fo_finished(f, status, asock_op_bytes(op));
    if (!h.tearing && fo_is_receive(f->kind) && plan_detach(f, 1))
      (void)fo_detach(f, 1);
  }
}

void fo_op_done(asock_op *op) {
  fop *f = asock_op_user_data(op);

  FZ_CHECK(!in_call, "a callback (kind %d, %s) ran inside an asock call",
           (int)asock_op_last_kind(op), asock_err_name(asock_op_status(op)));
  FZ_CHECK(f != NULL && f->op == op, "a callback for an op not in use");
  FZ_CHECK(f->pending,
           "a callback after the final one, or for an op that did not "
           "return ASOCK_PENDING (kind %d, %s, more %d)",
           (int)asock_op_last_kind(op), asock_err_name(asock_op_status(op)),
           asock_op_more(op));
  FZ_CHECK(!asock_op_completed_synchronously(op),
           "op marked synchronous in its callback");
  FZ_CHECK(asock_op_last_kind(op) == f->kind, "callback of kind %d for %d",
           (int)asock_op_last_kind(op), (int)f->kind);
  if (asock_op_more(op)) {
    delivery(f);
    return;
  }
  final(f);
  /* The op is idle in its final callback: it may start again at once. */
  if (f->rearm > 0 && !h.tearing && fo_same_socket(f)) {
    uint8_t prep[3];
    fz_input again;
    memcpy(prep, f->prep, sizeof(prep));
    again.p = prep;
    again.n = sizeof(prep);
    f->rearm--;
    fo_prepare(f, f->kind, f->sock, &again);
    fo_start_op(f, f->kind, f->sock);
  }
}
