/* Shared by the TCP loopback tests; see tcp-util.h. */
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/socket.h> /* send(); uv.h brings Winsock's */
#endif

#include "tcp-util.h"

asock_pool *tu_pool;
asock_loop *tu_loop;
int tu_completions;
tu_echo_stats tu_echo;

/* Set while a tu_* wrapper is inside the asock call that starts an
 * operation: a callback that finds it set ran inside that call. */
static int in_call;

/* Keeps every UV_RUN_ONCE short, so that a loop with nothing to do still
 * returns and the deadline is checked. */
static uv_timer_t tick;
static int tick_open;
static int tick_closed;

/* The ops tu_op() handed out, each with its record, released at teardown.
 */
#define TU_MAX_OPS 4096
static asock_op *tracked[TU_MAX_OPS];
static tu_record records[TU_MAX_OPS];
static size_t ntracked;

/* Callbacks seen through tu_note(), for tu_record.order. */
static int order;

/* A loop that turns this often without its condition is stuck. */
#define TU_MAX_ITERATIONS 100000000UL

uint64_t tu_ms(uint64_t ms) {
  const char *env = getenv("CK_TIMEOUT_MULTIPLIER");
  double factor = env != NULL ? strtod(env, NULL) : 1.0;
  if (!(factor >= 1.0))
    factor = 1.0;
  return (uint64_t)((double)ms * factor);
}

uint64_t tu_now_ms(void) { return uv_hrtime() / 1000000u; }

void tu_setup_with(const asock_pool_config *config) {
  asock_pool_config shape;
  if (config == NULL) {
    asock_pool_config_init(&shape);
    shape.slice_size = 4096;
    shape.slice_count = 64;
    shape.op_count = 256;
    config = &shape;
  }
  tu_completions = 0;
  order = 0;
  in_call = 0;
  ntracked = 0;
  memset(&tu_echo, 0, sizeof(tu_echo));
  /* Every asock allocation is counted, so that the teardown can tell that
   * closing the loop and the pool freed them all. */
  asock_test_install_counting_allocator();
  ck_assert_asock(asock_pool_create(&tu_pool, config), 0);
  ck_assert_asock(asock_loop_create(&tu_loop, tu_pool, NULL), 0);
  ck_assert_int_eq(uv_timer_init(asock_loop_uv(tu_loop), &tick), 0);
  tick_open = 1;
}

void tu_setup(void) { tu_setup_with(NULL); }

int tu_reopen_loop(const asock_loop_config *config) {
  int r;
  ck_assert_asock(tu_close_loop(), 0);
  r = asock_loop_create_config(&tu_loop, tu_pool, NULL, config);
  if (r != 0)
    return r;
  ck_assert_int_eq(uv_timer_init(asock_loop_uv(tu_loop), &tick), 0);
  tick_open = 1;
  return 0;
}

void tu_setup_pool(size_t slice_size, size_t slices, size_t quota,
                   unsigned int flags) {
  asock_pool_config config;
  asock_pool_config_init(&config);
  config.slice_size = slice_size;
  config.slice_count = slices;
  config.op_count = 128;
  config.socket_quota = quota;
  config.flags = flags;
  tu_setup_with(&config);
}

static void on_tick_closed(uv_handle_t *handle) {
  (void)handle;
  tick_closed = 1;
}

int tu_close_loop(void) {
  int r;
  int i;
  ck_assert_ptr_nonnull(tu_loop);
  if (tick_open) {
    tick_open = 0;
    tick_closed = 0;
    uv_close((uv_handle_t *)&tick, on_tick_closed);
    for (i = 0; i < 1000 && !tick_closed; i++)
      asock_loop_run(tu_loop, UV_RUN_NOWAIT);
    ck_assert_msg(tick_closed, "the test's timer did not close");
  }
  r = asock_loop_close(tu_loop);
  if (r == 0)
    tu_loop = NULL;
  return r;
}

void tu_teardown(void) {
  asock_pool_stats st;
  size_t i;
  if (tu_pool == NULL)
    return; /* the test skipped before setting anything up */
  if (tu_loop != NULL)
    ck_assert_asock(tu_close_loop(), 0);
  for (i = 0; i < ntracked; i++)
    ck_assert_asock(asock_op_release(tu_pool, tracked[i]), 0);
  ntracked = 0;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_uint_eq(st.ops_in_use, 0);
  ck_assert_asock(asock_pool_destroy(tu_pool), 0);
  tu_pool = NULL;
  ck_assert_msg(asock_test_alloc_live == 0,
                "%lu asock allocations outlived the loop and the pool",
                asock_test_alloc_live);
  asock_test_restore_allocator();
}

/* ---- ops and their completions ------------------------------------------ */

asock_op *tu_op(void) {
  asock_op *op;
  tu_record *rec;
  ck_assert_uint_lt(ntracked, TU_MAX_OPS);
  ck_assert_asock(asock_op_acquire(tu_pool, &op), 0);
  rec = &records[ntracked];
  memset(rec, 0, sizeof(*rec));
  tracked[ntracked++] = op;
  ck_assert_asock(asock_op_set_callback(op, tu_note), 0);
  ck_assert_asock(asock_op_set_user_data(op, rec), 0);
  return op;
}

tu_record *tu_rec(const asock_op *op) {
  return (tu_record *)asock_op_user_data(op);
}

void tu_note(asock_op *op) {
  tu_record *rec = (tu_record *)asock_op_user_data(op);
  ck_assert_msg(!in_call,
                "a callback (op kind %d, status %s) ran inside the asock "
                "call that started an operation",
                (int)asock_op_last_kind(op),
                asock_err_name(asock_op_status(op)));
  ck_assert_msg(!asock_op_is_pending(op), "op still pending in its callback");
  ck_assert_msg(!asock_op_completed_synchronously(op),
                "op marked synchronous in its callback");
  order++;
  if (rec == NULL)
    return;
  if (rec >= records && rec < records + TU_MAX_OPS)
    tu_completions++;
  rec->calls++;
  rec->status = asock_op_status(op);
  rec->bytes = asock_op_bytes(op);
  rec->order = order;
  rec->kind = asock_op_last_kind(op);
  rec->seq = asock_op_seq(op);
}

/* What every start must look like from outside, whatever it returned. */
static int started(asock_op *op, int r, int prev) {
  in_call = prev;
  ck_assert_msg(r == ASOCK_PENDING || r <= 0, "start returned %d", r);
  if (op == NULL)
    return r;
  if (r == ASOCK_PENDING) {
    ck_assert_msg(asock_op_is_pending(op), "PENDING but the op is idle");
  } else if (r == 0) {
    ck_assert_msg(!asock_op_is_pending(op), "returned 0 but the op pends");
    ck_assert_msg(asock_op_completed_synchronously(op),
                  "returned 0 but the op is not marked synchronous");
  }
  return r;
}

static int enter(void) {
  int prev = in_call;
  in_call = 1;
  return prev;
}

int tu_accept(asock_socket *listener, asock_op *op) {
  int prev = enter();
  return started(op, asock_accept(listener, op), prev);
}

asock_socket *tu_accept_done(asock_socket *listener, asock_op *op) {
  int r = tu_accept(listener, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(op, 1));
  ck_assert_asock(asock_op_status(op), 0);
  return asock_op_accepted(op);
}

int tu_connect(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_connect(sock, op), prev);
}

int tu_connect_host(asock_socket *sock, asock_op *op, const char *host,
                    unsigned short port) {
  int prev = enter();
  return started(op, asock_connect_host(sock, op, host, port), prev);
}

int tu_send(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_send(sock, op), prev);
}

int tu_receive(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_receive(sock, op), prev);
}

int tu_send_to(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_send_to(sock, op), prev);
}

int tu_receive_from(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_receive_from(sock, op), prev);
}

int tu_receive_message_from(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_receive_message_from(sock, op), prev);
}

int tu_disconnect(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_disconnect(sock, op), prev);
}

int tu_shutdown(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_shutdown(sock, op), prev);
}

int tu_send_packets(asock_socket *sock, asock_op *op) {
  int prev = enter();
  return started(op, asock_send_packets(sock, op), prev);
}

int tu_cancel(asock_op *op) {
  int prev = enter();
  int r = asock_cancel(op);
  in_call = prev;
  return r;
}

int tu_close(asock_socket *sock, unsigned int flags) {
  int prev = enter();
  int r = asock_socket_close(sock, flags);
  in_call = prev;
  return r;
}

int tu_inside_call(void) { return in_call; }

/* ---- running the loop --------------------------------------------------- */

static void on_tick(uv_timer_t *timer) { (void)timer; }

static int run_until_deadline(tu_cond cond, const void *arg,
                              uint64_t deadline) {
  unsigned long iterations = 0;
  int done;
  ck_assert_ptr_nonnull(tu_loop);
  ck_assert_int_eq(uv_timer_start(&tick, on_tick, 5, 5), 0);
  while (!(done = cond(arg)) && iterations++ < TU_MAX_ITERATIONS &&
         tu_now_ms() < deadline)
    asock_loop_run(tu_loop, UV_RUN_ONCE);
  uv_timer_stop(&tick);
  return done;
}

int tu_run_until(tu_cond cond, const void *arg, uint64_t ms) {
  return run_until_deadline(cond, arg, tu_now_ms() + tu_ms(ms));
}

typedef struct count_goal {
  const int *counter;
  int n;
} count_goal;

static int count_reached(const void *arg) {
  const count_goal *goal = (const count_goal *)arg;
  return *goal->counter >= goal->n;
}

int tu_wait_count(const int *counter, int n) {
  count_goal goal;
  goal.counter = counter;
  goal.n = n;
  return tu_run_until(count_reached, &goal, 10000);
}

int tu_wait_calls(const asock_op *op, int n) {
  return tu_wait_count(&tu_rec(op)->calls, n);
}

static int op_idle(const void *op) {
  return !asock_op_is_pending((const asock_op *)op);
}

int tu_wait_idle(const asock_op *op) {
  return tu_run_until(op_idle, op, 10000);
}

static int never(const void *arg) {
  (void)arg;
  return 0;
}

void tu_run_for(uint64_t ms) {
  /* At least one turn, however late this thread ran. */
  asock_loop_run(tu_loop, UV_RUN_NOWAIT);
  run_until_deadline(never, NULL, tu_now_ms() + ms);
}

/* ---- addresses ---------------------------------------------------------- */

void tu_addr(const char *ip, unsigned short port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (strchr(ip, ':') != NULL)
    ck_assert_int_eq(uv_ip6_addr(ip, port, (struct sockaddr_in6 *)ss), 0);
  else
    ck_assert_int_eq(uv_ip4_addr(ip, port, (struct sockaddr_in *)ss), 0);
}

unsigned short tu_port(const struct sockaddr_storage *ss) {
  if (ss->ss_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
  ck_assert_int_eq(ss->ss_family, AF_INET);
  return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

int tu_same_addr(const struct sockaddr *a, const struct sockaddr *b) {
  if (a == NULL || b == NULL || a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in *x = (const struct sockaddr_in *)a;
    const struct sockaddr_in *y = (const struct sockaddr_in *)b;
    return x->sin_port == y->sin_port &&
           memcmp(&x->sin_addr, &y->sin_addr, sizeof(x->sin_addr)) == 0;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
    const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  return 0;
}

static void on_handle_closed(uv_handle_t *handle) { *(int *)handle->data = 1; }

unsigned short tu_bind_unlistened(const char *ip, uv_tcp_t *h) {
  struct sockaddr_storage ss;
  int len = (int)sizeof(ss);
  tu_addr(ip, 0, &ss);
  ck_assert_int_eq(uv_tcp_init(asock_loop_uv(tu_loop), h), 0);
  ck_assert_int_eq(uv_tcp_bind(h, (struct sockaddr *)&ss, 0), 0);
  ck_assert_int_eq(uv_tcp_getsockname(h, (struct sockaddr *)&ss, &len), 0);
  return tu_port(&ss);
}

void tu_close_uv(uv_tcp_t *h) {
  int closed = 0;
  int i;
  h->data = &closed;
  uv_close((uv_handle_t *)h, on_handle_closed);
  for (i = 0; i < 1000 && !closed; i++)
    asock_loop_run(tu_loop, UV_RUN_NOWAIT);
  ck_assert(closed);
}

int tu_ipv6_available(void) {
  uv_loop_t loop;
  uv_tcp_t h;
  struct sockaddr_in6 in6;
  int closed = 0;
  int r;
  ck_assert_int_eq(uv_loop_init(&loop), 0);
  ck_assert_int_eq(uv_tcp_init(&loop, &h), 0);
  h.data = &closed;
  ck_assert_int_eq(uv_ip6_addr("::1", 0, &in6), 0);
  r = uv_tcp_bind(&h, (struct sockaddr *)&in6, 0);
  uv_close((uv_handle_t *)&h, on_handle_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert(closed);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
  return r == 0;
}

/* ---- connections -------------------------------------------------------- */

asock_socket *tu_listen(const char *ip, struct sockaddr_storage *addr) {
  asock_socket *listener;
  int len = (int)sizeof(*addr);
  tu_addr(ip, 0, addr);
  ck_assert_asock(asock_tcp_create(&listener, tu_loop), 0);
  ck_assert_asock(
      asock_tcp_listen(listener, (const struct sockaddr *)addr, 128, 0), 0);
  ck_assert_asock(
      asock_socket_local_address(listener, (struct sockaddr *)addr, &len), 0);
  ck_assert_uint_ne(tu_port(addr), 0);
  return listener;
}

/* An op outside the tracked set, for helpers that release it themselves. */
static asock_op *helper_op(tu_record *rec) {
  asock_op *op;
  memset(rec, 0, sizeof(*rec));
  ck_assert_asock(asock_op_acquire(tu_pool, &op), 0);
  ck_assert_asock(asock_op_set_callback(op, tu_note), 0);
  ck_assert_asock(asock_op_set_user_data(op, rec), 0);
  return op;
}

void tu_pair_connect(tu_pair *p, asock_socket *listener,
                     const struct sockaddr_storage *addr) {
  tu_record crec;
  tu_record arec;
  asock_op *cop = helper_op(&crec);
  asock_op *aop = helper_op(&arec);
  int r;
  p->listener = NULL;
  p->addr = *addr;
  ck_assert_asock(asock_tcp_create(&p->client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(cop, (const struct sockaddr *)addr), 0);
  ck_assert_asock(tu_connect(p->client, cop), ASOCK_PENDING);
  r = tu_accept(listener, aop);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "accept: %s", asock_err_name(r));
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_count(&arec.calls, 1));
  ck_assert(tu_wait_count(&crec.calls, 1));
  ck_assert_int_eq(crec.calls, 1);
  ck_assert_asock(crec.status, 0);
  ck_assert_asock(asock_op_status(aop), 0);
  p->server = asock_op_accepted(aop);
  ck_assert_ptr_nonnull(p->server);
  ck_assert_asock(asock_op_release(tu_pool, cop), 0);
  ck_assert_asock(asock_op_release(tu_pool, aop), 0);
}

void tu_pair_open(tu_pair *p, const char *ip) {
  struct sockaddr_storage addr;
  asock_socket *listener = tu_listen(ip, &addr);
  tu_pair_connect(p, listener, &addr);
  p->listener = listener;
}

void tu_shrink_buffers(asock_socket *sender, asock_socket *receiver) {
  int value = 16384;
  ck_assert_asock(asock_socket_send_buffer_size(sender, &value), 0);
  value = 16384;
  ck_assert_asock(asock_socket_recv_buffer_size(receiver, &value), 0);
}

/* ---- data --------------------------------------------------------------- */

unsigned char tu_byte(uint32_t stream, uint64_t pos) {
  /* Multiplying by an odd constant is a bijection of the low 32 bits. */
  uint32_t x = (uint32_t)pos * 2654435761u + stream * 40503u;
  return (unsigned char)((x >> 24) ^ (x >> 11) ^ (uint32_t)(pos >> 32));
}

void tu_fill(unsigned char *buf, size_t len, uint32_t stream, uint64_t pos) {
  size_t i;
  for (i = 0; i < len; i++)
    buf[i] = tu_byte(stream, pos + i);
}

size_t tu_mismatch(const unsigned char *buf, size_t len, uint32_t stream,
                   uint64_t pos) {
  size_t i;
  for (i = 0; i < len; i++)
    if (buf[i] != tu_byte(stream, pos + i))
      return i;
  return len;
}

void tu_set_buffer(asock_op *op, void *mem, size_t len) {
  ck_assert_asock(asock_op_set_buffer(op, mem, len, 0, len), 0);
}

void tu_send_all(asock_socket *sock, const void *buf, size_t len) {
  tu_record rec;
  asock_op *op = helper_op(&rec);
  int r;
  tu_set_buffer(op, (void *)buf, len);
  r = tu_send(sock, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "send: %s", asock_err_name(r));
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_count(&rec.calls, 1));
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), len);
  ck_assert_asock(asock_op_release(tu_pool, op), 0);
}

int tu_sends_inline(void) {
  return asock_loop_backend(tu_loop) != ASOCK_BACKEND_IO_URING;
}

int tu_send_whole(asock_socket *sock, asock_op *op) {
  int calls = tu_rec(op)->calls;
  int r = tu_send(sock, op);
  if (tu_sends_inline() || r != ASOCK_PENDING)
    return r;
  ck_assert(tu_wait_calls(op, calls + 1));
  return 0;
}

void tu_os_send(asock_socket *sock, const void *buf, size_t len) {
  uv_os_sock_t os;
  ck_assert_asock(asock_socket_fileno(sock, &os), 0);
  /* Loopback takes a test's few bytes at once. */
  ck_assert_int_eq((int)send(os, (const char *)buf, (int)len, 0), (int)len);
}

void tu_recv_exact(asock_socket *sock, void *buf, size_t len) {
  tu_record rec;
  asock_op *op = helper_op(&rec);
  size_t got = 0;
  while (got < len) {
    int r;
    ck_assert_asock(asock_op_set_buffer(op, buf, len, got, len - got), 0);
    r = tu_receive(sock, op);
    ck_assert_msg(r == 0 || r == ASOCK_PENDING, "receive: %s",
                  asock_err_name(r));
    if (r == ASOCK_PENDING)
      ck_assert_msg(tu_wait_count(&rec.calls, rec.calls + 1),
                    "receive never completed (%llu of %llu bytes)",
                    (unsigned long long)got, (unsigned long long)len);
    ck_assert_asock(asock_op_status(op), 0);
    ck_assert_uint_gt(asock_op_bytes(op), 0);
    ck_assert_uint_le(asock_op_bytes(op), len - got);
    got += asock_op_bytes(op);
  }
  ck_assert_asock(asock_op_release(tu_pool, op), 0);
}

int tu_recv_to_end(asock_socket *sock, uint32_t stream, uint64_t pos,
                   size_t limit, size_t *got) {
  static unsigned char buf[65536];
  tu_record rec;
  asock_op *op = helper_op(&rec);
  int status;
  *got = 0;
  for (;;) {
    int r;
    size_t n;
    tu_set_buffer(op, buf, sizeof(buf));
    r = tu_receive(sock, op);
    ck_assert_msg(r == 0 || r == ASOCK_PENDING, "receive: %s",
                  asock_err_name(r));
    if (r == ASOCK_PENDING)
      ck_assert_msg(tu_wait_count(&rec.calls, rec.calls + 1),
                    "receive never completed after %llu bytes",
                    (unsigned long long)*got);
    status = asock_op_status(op);
    if (status != 0)
      break;
    n = asock_op_bytes(op);
    ck_assert_uint_gt(n, 0);
    ck_assert_uint_eq(tu_mismatch(buf, n, stream, pos + *got), n);
    *got += n;
    ck_assert_uint_le(*got, limit);
  }
  ck_assert_uint_eq(asock_op_bytes(op), 0);
  ck_assert_asock(asock_op_release(tu_pool, op), 0);
  return status;
}

/* ---- echo server -------------------------------------------------------- */

static void echo_end(asock_socket *sock, asock_op *op, int status) {
  tu_echo.ended++;
  if (status == ASOCK_EOF) {
    tu_echo.eof++;
  } else if (status == ASOCK_ECANCELED || status == ASOCK_ECLOSED) {
    tu_echo.canceled++;
  } else {
    tu_echo.errors++;
    tu_echo.last_error = status;
  }
  /* A canceled op means the socket is closing already. */
  if (status != ASOCK_ECANCELED && status != ASOCK_ECLOSED)
    ck_assert_asock(tu_close(sock, 0), 0);
  ck_assert_asock(asock_op_release(asock_op_pool(op), op), 0);
}

/* Carries on from a completed step (r == 0) or a start's result, for as long
 * as steps complete synchronously. */
static void echo_run(asock_socket *sock, asock_op *op, int r) {
  for (;;) {
    int status;
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      echo_end(sock, op, r);
      return;
    }
    status = asock_op_status(op);
    if (status != 0) {
      echo_end(sock, op, status);
      return;
    }
    if (tu_echo.quota != 0 && asock_socket_slices_held(sock) > tu_echo.quota)
      tu_echo.quota_exceeded++;
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVE) {
      ck_assert_uint_gt(asock_op_bytes(op), 0);
      ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_SLICE);
      ck_assert_uint_eq(asock_op_count(op), asock_op_bytes(op));
      r = tu_send(sock, op);
    } else {
      ck_assert_int_eq(asock_op_last_kind(op), ASOCK_OP_SEND);
      ck_assert_uint_eq(asock_op_bytes(op), asock_op_count(op));
      tu_echo.bytes += asock_op_bytes(op);
      r = tu_receive(sock, op);
    }
  }
}

static void echo_cb(asock_op *op) {
  tu_note(op);
  echo_run(asock_op_socket(op), op, 0);
}

void tu_echo_start(asock_socket *sock) {
  asock_op *op;
  ck_assert_asock(asock_op_acquire(tu_pool, &op), 0);
  ck_assert_asock(asock_op_set_callback(op, echo_cb), 0);
  tu_echo.started++;
  echo_run(sock, op, tu_receive(sock, op));
}
