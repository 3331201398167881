/* The timing wheel: per-operation deadlines for a whole loop behind one
 * uv_timer_t. A deadline is rounded up to the next tick, so an op never
 * times out early, and late by at most one tick plus the loop's latency. */
#include "internal.h"

void asock__wheel_init(asock__wheel *w, uint64_t now) {
  size_t i;
  for (i = 0; i < ASOCK__WHEEL_SLOTS; i++)
    w->slots[i] = NULL;
  w->next_tick = now / ASOCK__WHEEL_TICK_MS;
  w->count = 0;
}

void asock__wheel_add(asock__wheel *w, asock_op *op, uint64_t now,
                      uint64_t timeout_ms) {
  uint64_t tick;
  asock_op **slot;

  op->deadline = now + timeout_ms;
  tick = (op->deadline + ASOCK__WHEEL_TICK_MS - 1) / ASOCK__WHEEL_TICK_MS;
  if (tick < w->next_tick)
    tick = w->next_tick;
  op->wslot = (unsigned short)(tick % ASOCK__WHEEL_SLOTS + 1);
  slot = &w->slots[op->wslot - 1];
  op->wprev = NULL;
  op->wnext = *slot;
  if (*slot != NULL)
    (*slot)->wprev = op;
  *slot = op;
  w->count++;
}

void asock__wheel_remove(asock__wheel *w, asock_op *op) {
  if (op->wslot == 0)
    return;
  if (op->wprev != NULL)
    op->wprev->wnext = op->wnext;
  else
    w->slots[op->wslot - 1] = op->wnext;
  if (op->wnext != NULL)
    op->wnext->wprev = op->wprev;
  op->wnext = NULL;
  op->wprev = NULL;
  op->wslot = 0;
  w->count--;
}

/* Sorts a list linked through wnext by deadline, keeping the order of equal
 * deadlines: a merge sort, since a loop that stalled for more than a turn of
 * the wheel collects ops from slots in an order that is not their deadlines'.
 */
static asock_op *sort_by_deadline(asock_op *list) {
  asock_op *a = NULL;
  asock_op *b = NULL;
  asock_op **a_tail = &a;
  asock_op **b_tail = &b;
  asock_op *merged = NULL;
  asock_op **tail = &merged;
  int to_a = 1;

  if (list == NULL || list->wnext == NULL)
    return list;
  while (list != NULL) {
    asock_op *next = list->wnext;
    list->wnext = NULL;
    if (to_a) {
      *a_tail = list;
      a_tail = &list->wnext;
    } else {
      *b_tail = list;
      b_tail = &list->wnext;
    }
    to_a = !to_a;
    list = next;
  }
  a = sort_by_deadline(a);
  b = sort_by_deadline(b);
  while (a != NULL && b != NULL) {
    asock_op **from = b->deadline < a->deadline ? &b : &a;
    asock_op *op = *from;
    *from = op->wnext;
    op->wnext = NULL;
    *tail = op;
    tail = &op->wnext;
  }
  *tail = a != NULL ? a : b;
  return merged;
}

asock_op *asock__wheel_expire(asock__wheel *w, uint64_t now) {
  uint64_t last = now / ASOCK__WHEEL_TICK_MS;
  uint64_t tick;
  uint64_t sweeps = 0;
  asock_op *due = NULL;
  asock_op **tail = &due;

  for (tick = w->next_tick; tick <= last && sweeps < ASOCK__WHEEL_SLOTS;
       tick++, sweeps++) {
    asock_op *op = w->slots[tick % ASOCK__WHEEL_SLOTS];
    while (op != NULL) {
      asock_op *next = op->wnext;
      if (op->deadline <= now) {
        asock__wheel_remove(w, op);
        *tail = op;
        tail = &op->wnext;
        op->wnext = NULL;
      }
      op = next;
    }
  }
  if (last + 1 > w->next_tick)
    w->next_tick = last + 1;
  return sort_by_deadline(due);
}
