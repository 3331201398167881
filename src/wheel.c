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
  return due;
}
