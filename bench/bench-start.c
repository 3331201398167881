/* asock-bench-start: what an operation start costs on the loop's thread and
 * from another thread, side by side in one run.
 *
 *   asock-bench-start [--ops N] [--rounds N] [--inflight N]
 *
 * The operation is a send-to of 64 bytes over loopback UDP to a socket
 * nobody reads (the kernel drops what overflows its buffer; the send
 * completes either way), so that both modes do the same system call and
 * differ only in how the start reaches the loop:
 *   loop    the loop's thread starts each send; it completes inside the
 *           call;
 *   thread  another thread starts each send; it is handed to the loop (a
 *           lock-free list and the loop's async handle), started there, and
 *           its completion comes back through the callback. `inflight` ops
 *           circulate: the callback gives each back to the thread (a
 *           mutex-guarded stack), which starts it again.
 * Reported per op, medians over rounds: wall time; the loop thread's CPU
 * time (user + system of that thread alone, where the OS can tell); and in
 * thread mode the time the other thread spends inside the start calls
 * (which includes waking the loop). The hand-back of idle ops is not in
 * that figure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sys/resource.h>
#endif

#include "asock.h"
#include "bench-util.h"

#define MAX_INFLIGHT 256

static asock_pool *pool;
static asock_loop *loop;
static asock_socket *tx;
static asock_socket *rx;
static struct sockaddr_storage to;
static unsigned char payload[64];

static uint64_t ops_total = 200000;
static unsigned int inflight = 64;

static uv_timer_t keep_alive;
static uint64_t completed;  /* the loop thread's */
static uint64_t starter_ns; /* the other thread's, inside the starts */

/* CPU time of the calling thread (of the process where there is no
 * per-thread figure). */
static uint64_t cpu_ns(void) {
#ifndef _WIN32
  struct rusage ru;
#ifdef RUSAGE_THREAD
  getrusage(RUSAGE_THREAD, &ru);
#else
  getrusage(RUSAGE_SELF, &ru);
#endif
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) *
             1000000000u +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) *
             1000u;
#else
  return 0;
#endif
}

static void on_keep_alive(uv_timer_t *timer) { (void)timer; }

static void die(const char *what, int err) {
  fprintf(stderr, "asock-bench-start: %s: %s\n", what, asock_strerror(err));
  exit(1);
}

static asock_op *new_op(asock_op_cb cb) {
  asock_op *op;
  int r = asock_op_acquire(pool, &op);
  if (r != 0)
    die("op", r);
  asock_op_set_callback(op, cb);
  asock_op_set_buffer(op, payload, sizeof(payload), 0, sizeof(payload));
  asock_op_set_remote(op, (struct sockaddr *)&to);
  return op;
}

/* ---- loop mode ---------------------------------------------------------- */

static void run_loop_mode(uint64_t *wall, uint64_t *cpu) {
  asock_op *op = new_op(NULL);
  uint64_t t0 = uv_hrtime();
  uint64_t c0 = cpu_ns();
  uint64_t i;

  for (i = 0; i < ops_total; i++) {
    int r = asock_send_to(tx, op);
    if (r == ASOCK_PENDING) {
      while (asock_op_is_pending(op))
        asock_loop_run(loop, UV_RUN_ONCE);
    } else if (r != 0) {
      die("send-to", r);
    }
  }
  *wall = uv_hrtime() - t0;
  *cpu = cpu_ns() - c0;
  asock_op_release(pool, op);
}

/* ---- thread mode -------------------------------------------------------- */

static asock_op *ops[MAX_INFLIGHT];
/* Ops whose callback has run, for the thread to start again. */
static asock_op *idle_ops[MAX_INFLIGHT];
static unsigned int idle_count;
static uv_mutex_t idle_lock;
static uv_cond_t idle_cond;

static void give_back(asock_op *op) {
  uv_mutex_lock(&idle_lock);
  idle_ops[idle_count++] = op;
  uv_cond_signal(&idle_cond);
  uv_mutex_unlock(&idle_lock);
}

static void on_sent(asock_op *op) {
  if (asock_op_status(op) != 0)
    die("send-to from a thread", asock_op_status(op));
  completed++;
  give_back(op);
}

static void starter(void *arg) {
  uint64_t started = 0;
  uint64_t inside = 0;
  (void)arg;
  while (started < ops_total) {
    asock_op *op;
    uint64_t t;
    int r;

    uv_mutex_lock(&idle_lock);
    while (idle_count == 0)
      uv_cond_wait(&idle_cond, &idle_lock);
    op = idle_ops[--idle_count];
    uv_mutex_unlock(&idle_lock);
    t = uv_hrtime();
    r = asock_send_to(tx, op);
    inside += uv_hrtime() - t;
    if (r != ASOCK_PENDING)
      die("send-to from a thread", r);
    started++;
  }
  starter_ns = inside;
}

static void run_thread_mode(uint64_t *wall, uint64_t *cpu, uint64_t *start) {
  uv_thread_t thread;
  unsigned int i;
  uint64_t t0, c0;

  idle_count = 0;
  for (i = 0; i < inflight; i++) {
    ops[i] = new_op(on_sent);
    idle_ops[idle_count++] = ops[i];
  }
  completed = 0;
  t0 = uv_hrtime();
  c0 = cpu_ns();
  if (uv_thread_create(&thread, starter, NULL) != 0)
    die("thread", ASOCK_ENOMEM);
  while (completed < ops_total)
    asock_loop_run(loop, UV_RUN_ONCE);
  *wall = uv_hrtime() - t0;
  *cpu = cpu_ns() - c0;
  uv_thread_join(&thread);
  *start = starter_ns;
  for (i = 0; i < inflight; i++)
    asock_op_release(pool, ops[i]);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a;
  uint64_t y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double median_per_op(uint64_t *v, unsigned int n) {
  qsort(v, n, sizeof(*v), cmp_u64);
  return (double)v[n / 2] / (double)ops_total;
}

int main(int argc, char **argv) {
  asock_pool_config cfg;
  struct sockaddr_in any;
  int len = (int)sizeof(to);
  unsigned int rounds = 5;
  uint64_t lw[16], lc[16], tw[16], tc[16], ts[16];
  double lwn, lcn, twn, tcn, tsn;
  unsigned int r;
  int i;

  for (i = 1; i < argc; i++) {
    if (i + 1 >= argc) {
      fprintf(stderr,
              "usage: asock-bench-start [--ops N] [--rounds N] [--inflight "
              "N]\n");
      return 2;
    }
    if (strcmp(argv[i], "--ops") == 0)
      ops_total = bench_parse_u64("--ops", argv[++i], 1000, 100000000);
    else if (strcmp(argv[i], "--rounds") == 0)
      rounds = (unsigned int)bench_parse_u64("--rounds", argv[++i], 1, 15);
    else if (strcmp(argv[i], "--inflight") == 0)
      inflight = (unsigned int)bench_parse_u64("--inflight", argv[++i], 1,
                                               MAX_INFLIGHT);
    else {
      fprintf(stderr, "asock-bench-start: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  asock_pool_config_init(&cfg);
  cfg.slice_size = 4096;
  cfg.slice_count = 64;
  cfg.op_count = MAX_INFLIGHT + 8;
  if ((i = asock_pool_create(&pool, &cfg)) != 0 ||
      (i = asock_loop_create(&loop, pool, NULL)) != 0 ||
      (i = asock_udp_create(&tx, loop)) != 0 ||
      (i = asock_udp_create(&rx, loop)) != 0)
    die("setup", i);
  /* asock's own handles do not keep a loop alive, and nothing here waits
   * in the kernel while ops are handed over: a timer keeps the loop
   * polling for the hand-over's wake-up. */
  uv_mutex_init(&idle_lock);
  uv_cond_init(&idle_cond);
  uv_timer_init(asock_loop_uv(loop), &keep_alive);
  uv_timer_start(&keep_alive, on_keep_alive, 1000000, 0);
  uv_ip4_addr("127.0.0.1", 0, &any);
  if ((i = asock_udp_bind(rx, (struct sockaddr *)&any, 0)) != 0 ||
      (i = asock_udp_bind(tx, (struct sockaddr *)&any, 0)) != 0 ||
      (i = asock_socket_local_address(rx, (struct sockaddr *)&to, &len)) != 0)
    die("bind", i);

  for (r = 0; r < rounds; r++) {
    run_loop_mode(&lw[r], &lc[r]);
    run_thread_mode(&tw[r], &tc[r], &ts[r]);
  }
  lwn = median_per_op(lw, rounds);
  lcn = median_per_op(lc, rounds);
  twn = median_per_op(tw, rounds);
  tcn = median_per_op(tc, rounds);
  tsn = median_per_op(ts, rounds);
  printf("ops per round: %llu, rounds: %u, in flight from the thread: %u\n",
         (unsigned long long)ops_total, rounds, inflight);
  printf("start on the loop thread:   %7.0f ns wall, %7.0f ns loop-thread CPU "
         "per op\n",
         lwn, lcn);
  printf("start from another thread: %7.0f ns wall, %7.0f ns loop-thread CPU "
         "per op, %.0f ns inside the start call\n",
         twn, tcn, tsn);
  printf("ratio (other thread / loop thread): %.2fx wall, %.2fx loop-thread "
         "CPU\n",
         twn / lwn, tcn / lcn);
  uv_close((uv_handle_t *)&keep_alive, NULL);
  asock_socket_close(tx, 0);
  asock_socket_close(rx, 0);
  asock_loop_close(loop);
  asock_pool_destroy(pool);
  return 0;
}
