/* One run of the fault injection sweep, in its child: the ops it counts,
 * the sockets it closes, the allocations asock holds, and what the run must
 * leave behind (see test-faults.c). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault-run.h"

fx_state fx;

void fx_fail(const char *fmt, ...) {
  va_list ap;
  uint32_t expected = 0;

  if (!asock__cas_u32(&fx.failed, &expected, 1))
    return;
  va_start(ap, fmt);
  vsnprintf(fx.failure, sizeof(fx.failure), fmt, ap);
  va_end(ap);
}

/* A status or return code must be 0 or an error asock names. */
void fx_check_code(int code, const char *what, const char *where) {
  if (code > 0 && code != ASOCK_PENDING)
    fx_fail("%s: %s returned %d", what, where, code);
  if (code < 0 && strcmp(asock_err_name(code), "ASOCK_UNKNOWN") == 0)
    fx_fail("%s: %s gave an error asock does not name (%d)", what, where, code);
}

/* A multishot receive's delivery: while the receive is pending, before
 * its one final completion, with data. */
static void fx_delivery(fx_rec *rec, asock_op *op) {
  rec->deliveries++;
  if (rec->calls >= rec->pending)
    fx_fail("%s: a delivery after its final completion", rec->what);
  if (!asock_op_is_pending(op))
    fx_fail("%s: idle inside a delivery", rec->what);
  if (asock_op_status(op) != 0 || asock_op_bytes(op) == 0)
    fx_fail("%s: a delivery with %s and %llu bytes", rec->what,
            asock_err_name(asock_op_status(op)),
            (unsigned long long)asock_op_bytes(op));
}

static void fx_cb(asock_op *op) {
  fx_rec *rec = asock_op_user_data(op);

  asock__add_u64(&fx.progress, 1);
  if (asock_op_more(op)) {
    fx_delivery(rec, op);
  } else {
    rec->calls++;
    if (rec->calls > rec->pending)
      fx_fail("%s: callback %d for %d pending start(s)", rec->what, rec->calls,
              rec->pending);
    if (asock_op_is_pending(op))
      fx_fail("%s: pending inside its callback", rec->what);
    fx_check_code(asock_op_status(op), rec->what, "the callback's status");
  }
  if (rec->done != NULL)
    rec->done(rec);
}

/* An op whose completions are counted; NULL (and the run failed) if the
 * pool has none. Any thread. */
fx_rec *fx_op(const char *what, fx_done_fn done, void *ctx) {
  asock_op *op;
  fx_rec *rec = NULL;

  uv_mutex_lock(&fx.lock);
  if (asock_op_acquire(fx.pool, &op) == 0) {
    int i;
    /* A record whose op the scenario released is used again. */
    for (i = 0; i < fx.nrecs && rec == NULL; i++)
      if (fx.recs[i].op == NULL)
        rec = &fx.recs[i];
    if (rec == NULL && fx.nrecs < FX_OPS)
      rec = &fx.recs[fx.nrecs++];
    if (rec == NULL) {
      (void)asock_op_release(fx.pool, op);
      uv_mutex_unlock(&fx.lock);
      fx_fail("%s: more than %d ops at once", what, FX_OPS);
      return NULL;
    }
    memset(rec, 0, sizeof(*rec));
    rec->op = op;
    rec->what = what;
    rec->done = done;
    rec->ctx = ctx;
    asock_op_set_callback(op, fx_cb);
    asock_op_set_user_data(op, rec);
  }
  uv_mutex_unlock(&fx.lock);
  if (rec == NULL)
    fx_fail("%s: no op left in the pool", what);
  return rec;
}

void fx_op_release(fx_rec *rec) {
  int r;
  if (rec->calls != rec->pending)
    fx_fail("%s: released after %d callback(s) for %d pending start(s)",
            rec->what, rec->calls, rec->pending);
  r = asock_op_release(fx.pool, rec->op);
  if (r != 0)
    fx_fail("%s: asock_op_release: %s", rec->what, asock_err_name(r));
  uv_mutex_lock(&fx.lock);
  rec->op = NULL;
  uv_mutex_unlock(&fx.lock);
}

void *fx_take(fx_rec *rec, size_t *off, size_t *len) {
  void *slice;
  int r = asock_op_detach_slice(rec->op, &slice, off, len);
  if (r != 0) {
    fx_fail("%s: asock_op_detach_slice: %s", rec->what, asock_err_name(r));
    return NULL;
  }
  if (fx.ntaken == FX_TAKEN) {
    fx_fail("%s: more than %d slices taken", rec->what, FX_TAKEN);
    (void)asock_pool_release(fx.pool, slice);
    return NULL;
  }
  fx.taken[fx.ntaken++] = slice;
  return slice;
}

void fx_give_back(void *slice) {
  int i;
  int r;
  for (i = 0; i < fx.ntaken; i++)
    if (fx.taken[i] == slice)
      break;
  if (i == fx.ntaken) {
    fx_fail("a slice given back that was not taken");
    return;
  }
  fx.taken[i] = fx.taken[--fx.ntaken];
  r = asock_pool_release(fx.pool, slice);
  if (r != 0)
    fx_fail("asock_pool_release of a taken slice: %s", asock_err_name(r));
}

/* Records what starting an op returned. */
int fx_started(fx_rec *rec, int r, const char *call) {
  if (r == ASOCK_PENDING)
    rec->pending++;
  else
    fx_check_code(r, rec->what, call);
  if (r == 0)
    fx_check_code(asock_op_status(rec->op), rec->what,
                  "a synchronous completion's status");
  return r;
}

void fx_track(asock_socket *sock) {
  uv_mutex_lock(&fx.lock);
  if (fx.nsocks < FX_SOCKS)
    fx.socks[fx.nsocks++] = sock;
  else
    fx_fail("more than %d sockets", FX_SOCKS);
  uv_mutex_unlock(&fx.lock);
}

/* Closes a socket of the test loop's once. */
void fx_close(asock_socket *sock) {
  int i;
  for (i = 0; i < fx.nsocks; i++) {
    if (fx.socks[i] == sock && !fx.closed[i]) {
      int r = asock_socket_close(sock, 0);
      fx.closed[i] = 1;
      if (r != 0)
        fx_fail("asock_socket_close: %s", asock_err_name(r));
    }
  }
}

/* 1 if a tracked socket was closed (the pointer must not be used then).
 * The latest entry counts: a socket may be made where a freed one was. */
int fx_closed(const asock_socket *sock) {
  int i;
  for (i = fx.nsocks - 1; i >= 0; i--)
    if (fx.socks[i] == sock)
      return fx.closed[i];
  return 0;
}

/* Allocations asock holds, counted atomically: a loop group allocates on
 * its threads. */
static asock__atomic_u64 fx_live;

static void *fx_malloc(size_t size) {
  void *p = malloc(size);
  if (p != NULL)
    asock__add_u64(&fx_live, 1);
  return p;
}

static void *fx_calloc(size_t count, size_t size) {
  void *p = calloc(count, size);
  if (p != NULL)
    asock__add_u64(&fx_live, 1);
  return p;
}

static void *fx_realloc(void *ptr, size_t size) {
  void *p = realloc(ptr, size);
  if (p != NULL && ptr == NULL)
    asock__add_u64(&fx_live, 1);
  return p;
}

static void fx_free(void *ptr) {
  if (ptr != NULL)
    asock__add_u64(&fx_live, (uint64_t)-1);
  free(ptr);
}

/* Marks a socket the scenario closed itself. */
void fx_track_closed(asock_socket *sock) {
  int i;
  for (i = 0; i < fx.nsocks; i++)
    if (fx.socks[i] == sock)
      fx.closed[i] = 1;
}

static void on_tick(uv_timer_t *t) { (void)t; }

/* How long a run waits with nothing completing: short when a call was
 * failed (an op may be left waiting for an event that will not come), long
 * when none was (the scenario must then complete, even on a loaded
 * machine). */
static uint64_t fx_stall_ms(void) { return tu_ms(fx.faulty ? 200 : 3000); }

/* Runs the test loop until done() holds, nothing completes for a while, or
 * a hard limit passes. */
int fx_run(int (*done)(void)) {
  uint64_t start = tu_now_ms();
  uint64_t last_change = start;
  uint64_t last = asock__load_u64(&fx.progress);

  while (!done()) {
    uint64_t now = tu_now_ms();
    uint64_t p = asock__load_u64(&fx.progress);
    if (p != last) {
      last = p;
      last_change = now;
    }
    if (now - last_change > fx_stall_ms() || now - start > tu_ms(10000)) {
      fx.stalls++;
      return 0;
    }
    asock_loop_run(fx.loop, UV_RUN_ONCE);
  }
  return 1;
}

/* Every op completed and every socket closed: a socket's close ends
 * after its call (the ring's sockets wait for their requests to come back,
 * and what their stashes hold is given back then). */
static int fx_all_closed(void) {
  return fx_all_completed() && fx.loop->sockets == NULL;
}

int fx_all_completed(void) {
  int i;
  int done = 1;
  uv_mutex_lock(&fx.lock);
  for (i = 0; i < fx.nrecs; i++)
    if (fx.recs[i].op != NULL && fx.recs[i].calls < fx.recs[i].pending)
      done = 0;
  uv_mutex_unlock(&fx.lock);
  return done;
}

/* Pool and loop; 0, or the run is over (nothing to clean up but what was
 * made). */
int fx_begin(void) {
  asock_pool_config cfg;
  int r;

  asock_pool_config_init(&cfg);
  cfg.slice_size = 4096;
  cfg.slice_count = 64;
  cfg.op_count = FX_OPS + 16;
  cfg.socket_quota = fx.quota;
  r = asock_pool_create(&fx.pool, &cfg);
  fx_check_code(r, "asock_pool_create", "its return");
  if (r != 0)
    return r;
  r = asock_loop_create(&fx.loop, fx.pool, NULL);
  fx_check_code(r, "asock_loop_create", "its return");
  if (r != 0) {
    if (asock_pool_destroy(fx.pool) != 0)
      fx_fail("asock_pool_destroy after a failed loop create");
    fx.pool = NULL;
    return r;
  }
  uv_timer_init(asock_loop_uv(fx.loop), &fx.tick);
  uv_timer_start(&fx.tick, on_tick, 5, 5);
  fx.tick_open = 1;
  return 0;
}

static void on_tick_closed(uv_handle_t *h) {
  (void)h;
  fx.tick_open = 0;
}

/* Closes everything and checks what a run must leave. */
void fx_end(void) {
  asock_pool_stats st;
  int i;
  int r;

  if (fx.loop == NULL)
    goto pool;
  for (i = 0; i < fx.nsocks; i++)
    fx_close(fx.socks[i]);
  if (!fx_run(fx_all_closed)) {
    if (fx.loop->sockets != NULL)
      fx_fail("a socket still open, every socket closed");
    for (i = 0; i < fx.nrecs; i++)
      if (fx.recs[i].op != NULL && fx.recs[i].calls < fx.recs[i].pending)
        fx_fail("%s: %d pending start(s), %d callback(s), its socket "
                "closed",
                fx.recs[i].what, fx.recs[i].pending, fx.recs[i].calls);
  }
  for (i = 0; i < fx.nrecs; i++) {
    if (fx.recs[i].op == NULL)
      continue;
    r = asock_op_release(fx.pool, fx.recs[i].op);
    if (r != 0)
      fx_fail("%s: asock_op_release: %s", fx.recs[i].what, asock_err_name(r));
  }
  /* Every op has completed: a slice the scenario still holds is its own
   * mistake, given back here so that the pool's count below is asock's. */
  if (fx.ntaken != 0) {
    fx_fail("%d taken slice(s) never given back", fx.ntaken);
    while (fx.ntaken > 0)
      (void)asock_pool_release(fx.pool, fx.taken[--fx.ntaken]);
  }
  asock_pool_stats_get(fx.pool, &st);
  if (st.slices_in_use != 0 || st.ops_in_use != 0)
    fx_fail("with every socket closed and every op released, the pool has "
            "%llu slice(s) and %llu op(s) in use",
            (unsigned long long)st.slices_in_use,
            (unsigned long long)st.ops_in_use);
  uv_close((uv_handle_t *)&fx.tick, on_tick_closed);
  while (fx.tick_open)
    uv_run(asock_loop_uv(fx.loop), UV_RUN_NOWAIT);
  r = asock_loop_close(fx.loop);
  if (r != 0)
    fx_fail("asock_loop_close: %s", asock_err_name(r));
  fx.loop = NULL;
  for (i = 0; i < fx.nrecs; i++)
    if (fx.recs[i].op != NULL && fx.recs[i].calls != fx.recs[i].pending)
      fx_fail("%s: %d pending start(s), %d callback(s) once the loop closed",
              fx.recs[i].what, fx.recs[i].pending, fx.recs[i].calls);

pool:
  if (fx.pool != NULL) {
    r = asock_pool_destroy(fx.pool);
    if (r != 0)
      fx_fail("asock_pool_destroy: %s", asock_err_name(r));
    fx.pool = NULL;
  }
  if (asock__load_u64(&fx_live) != 0)
    fx_fail("%llu asock allocation(s) left",
            (unsigned long long)asock__load_u64(&fx_live));
}

void fx_reset(void) {
  memset(&fx, 0, sizeof(fx));
  uv_mutex_init(&fx.lock);
  asock__store_u64(&fx_live, 0);
  asock_replace_allocator(fx_malloc, fx_realloc, fx_calloc, fx_free);
}
