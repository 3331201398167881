/* The test machinery of the programs in docs/examples: see harness.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static uv_timer_t deadline;
static uint64_t deadline_ms;
/* While hx_run_until() waits, a tick wakes the loop now and then: a
 * condition another thread makes true (a worker's bytes) wakes nothing on
 * the loop by itself. */
static uv_timer_t tick;
static asock_loop *tick_loop;
static const char *waiting_for = "the program's own steps";

void hx_fail(const char *what) {
  fprintf(stderr, "FAILED: %s\n", what);
  fflush(stderr);
  exit(1);
}

void hx_check(int ok, const char *expr, const char *file, int line) {
  if (ok)
    return;
  fprintf(stderr, "FAILED: %s:%d: %s\n", file, line, expr);
  fflush(stderr);
  exit(1);
}

void hx_check_int(long long got, long long want, const char *expr,
                  const char *file, int line) {
  if (got == want)
    return;
  /* A negative value is most likely one of asock's codes: its name says
   * more. */
  if (got < 0 || want < 0)
    fprintf(stderr, "FAILED: %s:%d: %s is %lld (%s), expected %lld (%s)\n",
            file, line, expr, got, asock_err_name((int)got), want,
            asock_err_name((int)want));
  else
    fprintf(stderr, "FAILED: %s:%d: %s is %lld, expected %lld\n", file, line,
            expr, got, want);
  fflush(stderr);
  exit(1);
}

void hx_check_mem(const void *got, const void *want, size_t len,
                  const char *expr, const char *file, int line) {
  const unsigned char *g = got, *w = want;
  size_t i;
  for (i = 0; i < len; i++)
    if (g[i] != w[i]) {
      fprintf(stderr,
              "FAILED: %s:%d: %s differs at byte %zu of %zu: 0x%02x, "
              "expected 0x%02x\n",
              file, line, expr, i, len, g[i], w[i]);
      fflush(stderr);
      exit(1);
    }
}

static void on_deadline(uv_timer_t *timer) {
  (void)timer;
  fprintf(stderr, "FAILED: still running after %llu ms, waiting for %s\n",
          (unsigned long long)deadline_ms, waiting_for);
  fflush(stderr);
  exit(1);
}

static void on_tick(uv_timer_t *timer) { (void)timer; }

void hx_deadline_start(asock_loop *loop, uint64_t ms) {
  deadline_ms = ms;
  tick_loop = loop;
  CHECK_INT(uv_timer_init(asock_loop_uv(loop), &deadline), 0);
  CHECK_INT(uv_timer_start(&deadline, on_deadline, ms, 0), 0);
  CHECK_INT(uv_timer_init(asock_loop_uv(loop), &tick), 0);
}

void hx_deadline_stop(void) {
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_close((uv_handle_t *)&tick, NULL);
  tick_loop = NULL;
}

void hx_run_until(asock_loop *loop, int (*done)(void *arg), void *arg,
                  const char *what) {
  /* The deadline's timer keeps the loop alive, so that each run waits for
   * the next event instead of spinning. */
  int ticking = loop == tick_loop;

  waiting_for = what;
  if (ticking)
    CHECK_INT(uv_timer_start(&tick, on_tick, 10, 10), 0);
  while (!done(arg))
    asock_loop_run(loop, UV_RUN_ONCE);
  if (ticking)
    CHECK_INT(uv_timer_stop(&tick), 0);
  waiting_for = "the program's own steps";
}

struct sockaddr_in hx_loopback(int port) {
  struct sockaddr_in addr;
  CHECK_INT(uv_ip4_addr("127.0.0.1", port, &addr), 0);
  return addr;
}

int hx_local_port(asock_socket *sock) {
  struct sockaddr_storage addr;
  int len = (int)sizeof(addr);
  CHECK_INT(asock_socket_local_address(sock, (struct sockaddr *)&addr, &len),
            0);
  CHECK_INT(addr.ss_family, AF_INET);
  return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

/* ---- the client ---------------------------------------------------------- */

int hx_op_idle(void *op) { return !asock_op_is_pending(op); }

static void on_client_sent(asock_op *op) { (void)op; }

static void on_client_data(asock_op *rx) {
  hx_client *c = asock_op_user_data(rx);
  size_t n = asock_op_bytes(rx);

  if (!asock_op_more(rx)) {
    c->reading = 0;
    c->rx_status = asock_op_status(rx);
    return;
  }
  if (c->got_len + n > c->got_cap) {
    size_t cap = c->got_cap == 0 ? 4096 : c->got_cap;
    unsigned char *p;
    while (cap < c->got_len + n)
      cap *= 2;
    p = realloc(c->got, cap);
    CHECK(p != NULL);
    c->got = p;
    c->got_cap = cap;
  }
  memcpy(c->got + c->got_len, asock_op_data(rx), n);
  c->got_len += n;
}

void hx_client_create(hx_client *c, asock_loop *loop) {
  asock_pool *pool = asock_loop_pool(loop);

  memset(c, 0, sizeof(*c));
  c->loop = loop;
  CHECK_INT(asock_tcp_create(&c->sock, loop), 0);
  CHECK_INT(asock_op_acquire(pool, &c->tx), 0);
  CHECK_INT(asock_op_acquire(pool, &c->rx), 0);
  CHECK_INT(asock_op_set_callback(c->tx, on_client_sent), 0);
  CHECK_INT(asock_op_set_callback(c->rx, on_client_data), 0);
  CHECK_INT(asock_op_set_user_data(c->rx, c), 0);
  CHECK_INT(asock_op_set_multishot(c->rx, 1), 0);
}

void hx_client_connect(hx_client *c, int port) {
  struct sockaddr_in addr = hx_loopback(port);

  CHECK_INT(asock_op_set_remote(c->tx, (struct sockaddr *)&addr), 0);
  CHECK_INT(asock_connect(c->sock, c->tx), ASOCK_PENDING);
  hx_run_until(c->loop, hx_op_idle, c->tx, "the client's connect");
  CHECK_INT(asock_op_status(c->tx), 0);
}

void hx_client_read(hx_client *c) {
  CHECK_INT(asock_receive(c->sock, c->rx), ASOCK_PENDING);
  c->reading = 1;
}

void hx_client_send(hx_client *c, const void *bytes, size_t len) {
  int r;

  CHECK_INT(asock_op_set_buffer(c->tx, (void *)bytes, len, 0, len), 0);
  r = asock_send(c->sock, c->tx);
  CHECK(r == 0 || r == ASOCK_PENDING);
  hx_run_until(c->loop, hx_op_idle, c->tx, "the client's send");
  CHECK_INT(asock_op_status(c->tx), 0);
  CHECK_INT(asock_op_bytes(c->tx), len);
}

typedef struct wait_bytes {
  hx_client *c;
  size_t len;
} wait_bytes;

static int have_bytes(void *arg) {
  wait_bytes *w = arg;
  return w->c->got_len >= w->len || !w->c->reading;
}

void hx_client_expect(hx_client *c, const void *want, size_t len) {
  wait_bytes w;

  w.c = c;
  w.len = len;
  hx_run_until(c->loop, have_bytes, &w, "the client's expected bytes");
  if (c->got_len < len) {
    fprintf(stderr,
            "FAILED: the client's receive ended (%s) with %zu of the %zu "
            "bytes expected\n",
            asock_err_name(c->rx_status), c->got_len, len);
    fflush(stderr);
    exit(1);
  }
  CHECK_MEM(c->got, want, len);
  memmove(c->got, c->got + len, c->got_len - len);
  c->got_len -= len;
}

static int rx_ended(void *arg) { return !((hx_client *)arg)->reading; }

void hx_client_expect_end(hx_client *c, int status) {
  hx_run_until(c->loop, rx_ended, c, "the end of the client's receive");
  CHECK_INT(c->rx_status, status);
  CHECK_INT(c->got_len, 0);
}

void hx_client_shutdown(hx_client *c) {
  int r = asock_shutdown(c->sock, c->tx);
  CHECK(r == 0 || r == ASOCK_PENDING);
  hx_run_until(c->loop, hx_op_idle, c->tx, "the client's shutdown");
  CHECK_INT(asock_op_status(c->tx), 0);
}

void hx_client_close(hx_client *c) {
  asock_pool *pool = asock_loop_pool(c->loop);

  CHECK_INT(asock_socket_close(c->sock, 0), 0);
  hx_run_until(c->loop, rx_ended, c, "the client's receive to end");
  CHECK_INT(asock_op_release(pool, c->tx), 0);
  CHECK_INT(asock_op_release(pool, c->rx), 0);
  free(c->got);
  memset(c, 0, sizeof(*c));
}

void hx_check_pool_quiet(asock_pool *pool, size_t ops) {
  asock_pool_stats st;
  CHECK_INT(asock_pool_stats_get(pool, &st), 0);
  CHECK_INT(st.slices_in_use, 0);
  CHECK_INT(st.ops_in_use, ops);
}
