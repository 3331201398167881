/* One run of asock-bench: the phases every mode goes through (connect, warm
 * up, measure, drain), the counters and the histogram they fill, and the
 * interface each mode (closed-loop TCP, connection churn, UDP) implements. */
#ifndef ASOCK_BENCH_RUN_H
#define ASOCK_BENCH_RUN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "bench-hist.h"
#include "bench-pattern.h"

/* Connections opened at once while connecting. */
#define BENCH_CONNECT_RAMP 256
/* How long the connect phase may take before the stragglers are given up. */
#define BENCH_CONNECT_TIMEOUT_MS 30000
/* How long messages still in flight at the end are waited for. */
#define BENCH_DRAIN_TIMEOUT_MS 5000
/* Size of the one receive buffer all connections share. */
#define BENCH_RECV_BUF_SIZE 65536
/* Error reports printed before the rest are only counted. */
#define BENCH_MAX_REPORTS 10

typedef enum { BENCH_TCP, BENCH_CHURN, BENCH_UDP } bench_mode;

typedef struct bench_config {
  const char *host;
  unsigned int port;
  unsigned int connections;
  size_t size;
  unsigned int depth;
  double seconds;
  double warmup;
  double timeout; /* UDP: a message not echoed by then is lost */
  bench_mode mode;
  int json;
  int progress;
  int reset;             /* churn: close with RST instead of FIN */
  const char *histogram; /* where to write the latency distribution */
} bench_config;

typedef enum {
  BENCH_PHASE_CONNECT,
  BENCH_PHASE_WARMUP,
  BENCH_PHASE_MEASURE,
  BENCH_PHASE_DRAIN,
  BENCH_PHASE_DONE
} bench_phase;

typedef struct bench_run bench_run;

typedef struct bench_mode_ops {
  /* Allocates the connections and starts opening them; calls
   * bench_run_ready() once they are open (or failed). Returns 0 or a libuv
   * error. */
  int (*open)(bench_run *r);
  /* The clock runs: start sending. */
  void (*start)(bench_run *r);
  /* The connect phase took too long: give up what is still connecting. */
  void (*connect_expired)(bench_run *r);
  /* Called every tick of the progress timer (once a second), if set. */
  void (*tick)(bench_run *r);
  /* Closes every handle the mode has open. */
  void (*close)(bench_run *r);
  /* Frees what open() allocated, after the loop has ended. */
  void (*release)(bench_run *r);
} bench_mode_ops;

struct bench_run {
  uv_loop_t loop; /* first: a handle's loop pointer is its run's address */
  const bench_config *cfg;
  const bench_mode_ops *ops;
  void *mode_data;
  struct sockaddr_storage addr;
  bench_pattern pattern;
  char *recv_buf;
  bench_phase phase;
  int interrupted;

  uv_timer_t phase_timer;
  uv_timer_t progress_timer;
  uv_signal_t sigint_watcher;
  uint64_t started;      /* uv_hrtime() when the run began */
  uint64_t connect_time; /* how long opening the connections took, in ns */
  uint64_t measure_start, measure_end;
  uint64_t last_completed;

  /* Results. Messages and latencies count only inside the measured window;
   * errors count whenever they happen. */
  uint64_t outstanding; /* sent, neither echoed nor given up */
  uint64_t completed;   /* echoed, in any phase */
  uint64_t messages;    /* echoed inside the window */
  uint64_t connected;
  uint64_t connect_errors;
  uint64_t verify_errors;
  uint64_t socket_errors;
  uint64_t unanswered; /* still in flight when the drain gave up */
  uint64_t lost;       /* UDP: not echoed within the timeout */
  uint64_t late;       /* UDP: echoed after being counted lost */
  unsigned int reports;
  bench_hist hist;
};

/* Runs the benchmark `cfg` describes to the end. Returns 0, or -1 after
 * printing why it could not start. */
int bench_run_execute(bench_run *r, const bench_config *cfg);

/* Every error the run counted. */
uint64_t bench_run_errors(const bench_run *r);

/* For the modes. The connect phase is over: start the clock, unless nothing
 * is `usable` (no connection opened), which ends the run. */
void bench_run_ready(bench_run *r, int usable);
/* Whether new messages may be sent (warming up or measuring). */
int bench_run_sending(const bench_run *r);
/* A message was sent; it is now outstanding. */
void bench_run_sent(bench_run *r);
/* A message came back whole and right after `latency_ns`. */
void bench_run_complete(bench_run *r, uint64_t latency_ns);
/* Outstanding messages that will never come back (their connection failed,
 * or they were lost). */
void bench_run_abandon(bench_run *r, uint64_t messages);
/* Errors: each counts and the first BENCH_MAX_REPORTS are printed. */
void bench_run_connect_error(bench_run *r, unsigned int conn, int err);
void bench_run_socket_error(bench_run *r, unsigned int conn, const char *what,
                            int err);
void bench_run_mismatch(bench_run *r, uint32_t conn, uint64_t msg,
                        size_t offset, uint8_t got);
void bench_run_bad_message(bench_run *r, uint32_t conn, const char *why);
/* The alloc_cb of every handle: all share one buffer, which is safe because
 * each callback has checked its data before the next read. */
void bench_run_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);
/* Writes bufs[0..n) on stream: what the kernel takes at once through
 * uv_try_write, the rest through uv_write(req, ..., cb), which copies the
 * array. Returns 1 if a uv_write was started, 0 if everything went at once,
 * or a libuv error. */
int bench_run_write(uv_stream_t *stream, uv_write_t *req, uv_buf_t *bufs,
                    unsigned int n, uv_write_cb cb);

extern const bench_mode_ops bench_tcp_ops;
extern const bench_mode_ops bench_churn_ops;
extern const bench_mode_ops bench_udp_ops;

#endif
