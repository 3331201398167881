#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-run.h"
#include "bench-util.h"

static void finish(bench_run *r);

static uint64_t ms_of(double seconds) { return (uint64_t)(seconds * 1e3); }

static void on_phase_timer(uv_timer_t *timer);

/* Modes that connect in the background say when they are done through
 * bench_run_ready(); the others have no connect phase to end. */
static void give_up_connecting(bench_run *r) {
  if (r->ops->connect_expired != NULL)
    r->ops->connect_expired(r);
  else
    finish(r);
}

static void begin_measure(bench_run *r) {
  r->phase = BENCH_PHASE_MEASURE;
  r->measure_start = uv_hrtime();
  r->messages = 0;
  bench_hist_reset(&r->hist);
  uv_timer_start(&r->phase_timer, on_phase_timer, ms_of(r->cfg->seconds), 0);
}

static void begin_drain(bench_run *r) {
  uint64_t wait = BENCH_DRAIN_TIMEOUT_MS;

  r->phase = BENCH_PHASE_DRAIN;
  r->measure_end = uv_hrtime();
  /* A UDP message is only given up after its timeout. */
  if (r->cfg->mode == BENCH_UDP)
    wait += ms_of(r->cfg->timeout);
  /* Even with nothing outstanding the end comes from the timer, never from
   * inside a mode's callback, which may still be using its connection. */
  uv_timer_start(&r->phase_timer, on_phase_timer,
                 r->outstanding == 0 ? 0 : wait, 0);
}

static void on_phase_timer(uv_timer_t *timer) {
  bench_run *r = timer->data;

  switch (r->phase) {
  case BENCH_PHASE_CONNECT:
    give_up_connecting(r);
    break;
  case BENCH_PHASE_WARMUP:
    begin_measure(r);
    break;
  case BENCH_PHASE_MEASURE:
    begin_drain(r);
    break;
  case BENCH_PHASE_DRAIN:
    if (r->outstanding > 0) {
      fprintf(stderr,
              "%s: %llu messages were not echoed within %.1f s "
              "after the end\n",
              bench_progname, (unsigned long long)r->outstanding,
              BENCH_DRAIN_TIMEOUT_MS / 1e3);
      r->unanswered += r->outstanding;
      r->outstanding = 0;
    }
    finish(r);
    break;
  case BENCH_PHASE_DONE:
    break;
  }
}

static void on_progress(uv_timer_t *timer) {
  bench_run *r = timer->data;
  double t = (double)(uv_hrtime() - r->started) / 1e9;
  static const char *const names[] = {"connect", "warmup", "measure", "drain",
                                      "done"};

  if (r->ops->tick != NULL)
    r->ops->tick(r);
  if (!r->cfg->progress)
    return;
  if (r->phase == BENCH_PHASE_CONNECT)
    fprintf(stderr, "[%5.1fs] connect: %llu open, %llu failed\n", t,
            (unsigned long long)r->connected,
            (unsigned long long)r->connect_errors);
  else
    fprintf(stderr, "[%5.1fs] %s: %llu messages/s, %llu errors\n", t,
            names[r->phase],
            (unsigned long long)(r->completed - r->last_completed),
            (unsigned long long)bench_run_errors(r));
  r->last_completed = r->completed;
}

static void on_sigint(uv_signal_t *watcher, int signum) {
  bench_run *r = watcher->data;

  (void)signum;
  r->interrupted = 1;
  switch (r->phase) {
  case BENCH_PHASE_CONNECT:
    give_up_connecting(r);
    break;
  case BENCH_PHASE_MEASURE:
    begin_drain(r);
    break;
  default:
    finish(r);
    break;
  }
}

static void close_if_open(uv_handle_t *handle) {
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

static void finish(bench_run *r) {
  if (r->phase == BENCH_PHASE_DONE)
    return;
  if (r->phase == BENCH_PHASE_MEASURE)
    r->measure_end = uv_hrtime();
  r->phase = BENCH_PHASE_DONE;
  close_if_open((uv_handle_t *)&r->phase_timer);
  close_if_open((uv_handle_t *)&r->progress_timer);
  close_if_open((uv_handle_t *)&r->sigint_watcher);
  r->ops->close(r);
}

void bench_run_ready(bench_run *r, int usable) {
  if (r->phase != BENCH_PHASE_CONNECT)
    return;
  r->connect_time = uv_hrtime() - r->started;
  uv_timer_stop(&r->phase_timer);
  if (!usable || r->interrupted) {
    finish(r);
    return;
  }
  if (r->cfg->warmup > 0) {
    r->phase = BENCH_PHASE_WARMUP;
    uv_timer_start(&r->phase_timer, on_phase_timer, ms_of(r->cfg->warmup), 0);
  } else {
    begin_measure(r);
  }
  r->ops->start(r);
}

int bench_run_sending(const bench_run *r) {
  return r->phase == BENCH_PHASE_WARMUP || r->phase == BENCH_PHASE_MEASURE;
}

void bench_run_sent(bench_run *r) { r->outstanding++; }

void bench_run_complete(bench_run *r, uint64_t latency_ns) {
  r->completed++;
  r->outstanding--;
  if (r->phase == BENCH_PHASE_MEASURE) {
    r->messages++;
    bench_hist_record(&r->hist, latency_ns);
  } else if (r->phase == BENCH_PHASE_DRAIN && r->outstanding == 0) {
    uv_timer_start(&r->phase_timer, on_phase_timer, 0, 0);
  }
}

void bench_run_abandon(bench_run *r, uint64_t messages) {
  r->outstanding -= messages;
  if (r->phase == BENCH_PHASE_DRAIN && r->outstanding == 0)
    uv_timer_start(&r->phase_timer, on_phase_timer, 0, 0);
}

static int report(bench_run *r) {
  if (r->reports == BENCH_MAX_REPORTS)
    fprintf(stderr, "%s: further errors are counted, not shown\n",
            bench_progname);
  return r->reports++ < BENCH_MAX_REPORTS;
}

void bench_run_connect_error(bench_run *r, unsigned int conn, int err) {
  r->connect_errors++;
  if (report(r))
    fprintf(stderr, "%s: connection %u: connect: %s\n", bench_progname, conn,
            uv_strerror(err));
}

void bench_run_socket_error(bench_run *r, unsigned int conn, const char *what,
                            int err) {
  r->socket_errors++;
  if (report(r))
    fprintf(stderr, "%s: connection %u: %s: %s\n", bench_progname, conn, what,
            err == UV_EOF ? "the server closed the connection"
                          : uv_strerror(err));
}

void bench_run_mismatch(bench_run *r, uint32_t conn, uint64_t msg,
                        size_t offset, uint8_t got) {
  r->verify_errors++;
  if (report(r))
    fprintf(stderr,
            "%s: connection %u: message %llu byte %llu: expected 0x%02x, got "
            "0x%02x\n",
            bench_progname, (unsigned int)conn, (unsigned long long)msg,
            (unsigned long long)offset,
            bench_pattern_byte(&r->pattern, conn, msg, offset), got);
}

void bench_run_bad_message(bench_run *r, uint32_t conn, const char *why) {
  r->verify_errors++;
  if (report(r))
    fprintf(stderr, "%s: connection %u: %s\n", bench_progname,
            (unsigned int)conn, why);
}

void bench_run_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  bench_run *r = (bench_run *)handle->loop;

  (void)suggested;
  *buf = uv_buf_init(r->recv_buf, BENCH_RECV_BUF_SIZE);
}

int bench_run_write(uv_stream_t *stream, uv_write_t *req, uv_buf_t *bufs,
                    unsigned int n, uv_write_cb cb) {
  unsigned int i;
  size_t done;
  int err = uv_try_write(stream, bufs, n);

  if (err < 0 && err != UV_EAGAIN)
    return err;
  done = err < 0 ? 0 : (size_t)err;
  for (i = 0; i < n && done >= bufs[i].len; i++)
    done -= bufs[i].len;
  if (i == n)
    return 0;
  bufs[i].base += done;
  bufs[i].len -= done;
  err = uv_write(req, stream, bufs + i, n - i, cb);
  return err != 0 ? err : 1;
}

uint64_t bench_run_errors(const bench_run *r) {
  return r->connect_errors + r->verify_errors + r->socket_errors +
         r->unanswered;
}

static int resolve(bench_run *r) {
  const bench_config *cfg = r->cfg;
  struct sockaddr_in *sin = (struct sockaddr_in *)&r->addr;
  struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->addr;
  struct addrinfo hints;
  uv_getaddrinfo_t req;
  int err;

  memset(&r->addr, 0, sizeof(r->addr));
  if (uv_ip4_addr(cfg->host, (int)cfg->port, sin) == 0 ||
      uv_ip6_addr(cfg->host, (int)cfg->port, sin6) == 0)
    return 0;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = cfg->mode == BENCH_UDP ? SOCK_DGRAM : SOCK_STREAM;
  /* Without a callback, uv_getaddrinfo resolves synchronously. */
  err = uv_getaddrinfo(&r->loop, &req, NULL, cfg->host, NULL, &hints);
  if (err != 0) {
    fprintf(stderr, "%s: cannot resolve %s: %s\n", bench_progname, cfg->host,
            uv_strerror(err));
    return -1;
  }
  memcpy(&r->addr, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
  uv_freeaddrinfo(req.addrinfo);
  if (r->addr.ss_family == AF_INET6)
    sin6->sin6_port = htons((unsigned short)cfg->port);
  else
    sin->sin_port = htons((unsigned short)cfg->port);
  return 0;
}

int bench_run_execute(bench_run *r, const bench_config *cfg) {
  int err, status = -1;

  memset(r, 0, sizeof(*r));
  r->cfg = cfg;
  r->ops = cfg->mode == BENCH_TCP     ? &bench_tcp_ops
           : cfg->mode == BENCH_CHURN ? &bench_churn_ops
                                      : &bench_udp_ops;
  bench_hist_reset(&r->hist);
  err = uv_loop_init(&r->loop);
  if (err != 0) {
    fprintf(stderr, "%s: uv_loop_init: %s\n", bench_progname, uv_strerror(err));
    return -1;
  }
  if (resolve(r) != 0)
    goto done;
  r->recv_buf = malloc(BENCH_RECV_BUF_SIZE);
  if (r->recv_buf == NULL || bench_pattern_init(&r->pattern, cfg->size) != 0) {
    fprintf(stderr, "%s: out of memory\n", bench_progname);
    goto done;
  }

  uv_timer_init(&r->loop, &r->phase_timer);
  uv_timer_init(&r->loop, &r->progress_timer);
  uv_signal_init(&r->loop, &r->sigint_watcher);
  r->phase_timer.data = r->progress_timer.data = r->sigint_watcher.data = r;
  uv_signal_start(&r->sigint_watcher, on_sigint, SIGINT);
  uv_timer_start(&r->progress_timer, on_progress, 1000, 1000);
  uv_timer_start(&r->phase_timer, on_phase_timer, BENCH_CONNECT_TIMEOUT_MS, 0);
  r->started = uv_hrtime();
  r->phase = BENCH_PHASE_CONNECT;
  err = r->ops->open(r);
  if (err != 0) {
    fprintf(stderr, "%s: %s\n", bench_progname, uv_strerror(err));
    finish(r);
  } else {
    status = 0;
  }
  uv_run(&r->loop, UV_RUN_DEFAULT);
  r->ops->release(r);

done:
  /* Handles closed by finish() are gone once uv_run returns; a run that
   * never started has none. */
  uv_run(&r->loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&r->loop);
  if (err != 0)
    fprintf(stderr, "%s: uv_loop_close: %s\n", bench_progname,
            uv_strerror(err));
  bench_pattern_free(&r->pattern);
  free(r->recv_buf);
  return status;
}
