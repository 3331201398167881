/* asock-echo-check: a black-box test of the asock-echo example.
 *
 *   asock-echo-check PATH-TO-ASOCK-ECHO
 *   asock-echo-check --workers PATH-TO-ASOCK-WORKERS
 *   asock-echo-check --relay PATH-TO-ASOCK-RELAY PATH-TO-ASOCK-ECHO
 *
 * Starts the server with a small pool and talks to it over loopback as any
 * libuv client would, checking what issue 3 asks of it: the one "listening
 * on" line, its statistics on SIGUSR1 with the server serving on, every
 * byte echoed in order, half-close, a peer that resets, peers that vanish,
 * a peer that sends faster than it reads, and a clean stop on SIGTERM that
 * prints the pool's statistics. Then the same of
 * `asock-echo --udp`, over IPv4 and IPv6 (echo-udp.c), and echo over a loop
 * group, `asock-echo --threads 2` (echo-threads.c). With --workers it
 * checks the asock-workers example instead (echo-threads.c), and with
 * --relay the asock-relay example in front of asock-echo (echo-relay.c).
 * It uses libuv alone, for the processes, the sockets and the timers, so
 * that it runs wherever the server does (CI machines may lack Python), and
 * every wait is bounded by a timer. Prints one "ok" or "not ok" line per check
 * and exits 0 only when all passed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"
#include "echo-relay.h"
#include "echo-server.h"
#include "echo-threads.h"
#include "echo-udp.h"

/* The slow reader's bound on the server's RSS growth, in KiB: the pool's 4
 * MiB, which it may touch for the first time, and as much again for
 * everything else. */
#define RSS_GROWTH_LIMIT_KIB (8 * 1024)

#ifdef __linux__
static const int rss_readable = 1;
#else
/* Only Linux has /proc/PID/status; elsewhere the bound is not checked. */
static const int rss_readable = 0;
#endif

/* The TCP server. */
static ec_server srv;

static void report_death(void) { ec_server_report_death(&srv); }

static void check_quiet(const char *when) { ec_server_check_quiet(&srv, when); }

/* One connection that sends `total` bytes while reading, shuts down its
 * sending side once they are all back, and must then see the server close.
 */
static void echo_one(const char *name, uint32_t stream, size_t total) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, name, stream, total,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO);
  ec_run_until(ec_all_settled, NULL, 10000);
  report_death();
  ec_conn_verify(c, 1);
  ec_conns_free();
}

/* ---- the checks -------------------------------------------------------- */

/* 1. Exactly one line, "listening on 127.0.0.1:PORT", with a real port. */
static void check_listening(void) {
  ec_server_start(&srv, "asock-echo", ec_echo_path, "127.0.0.1", NULL);
  if (ec_server_serving(&srv))
    memcpy(&ec_server_addr, &srv.addr, sizeof(ec_server_addr));
}

/* 2. SIGUSR1 before any client: the statistics, exactly, with nothing
 * counted, no slice taken and no heap allocation since start-up, and the
 * ops in use those the accepts hold. A client is then served, every byte
 * echoed, and a second SIGUSR1 counts it and exactly its bytes. */
static void check_report(void) {
  char report[1024], line[256] = "";
  size_t total = 0, in_use = 0, high = 0;
  unsigned long long none = 1, messages = 0, bytes = 0;
  const size_t sent = 64 * KIB;
  char idle[256];
  const char *body;
  int lent = 0;

  if (!ec_server_report(&srv, report, sizeof(report))) {
    echo_one("client after SIGUSR1", 150, sent);
    return;
  }
  /* No slice out of the pool yet, except those the io_uring backend lends
   * the kernel: a sixteenth of the pool (docs/backends.md). */
  if (ec_find_line(report, "backend: io_uring", line, sizeof(line)))
    lent = EC_SLICES / 16;
  else if (!ec_find_line(report, "backend: readiness", line, sizeof(line)))
    ec_fail("the statistics name no backend: \"%s\"", report);
  snprintf(idle, sizeof(idle),
           "connections: 0 (refused for want of an op: 0)\n"
           "messages: 0, bytes: 0, heap allocations after start-up: 0\n"
           "slices: %d of %d bytes, in use 0, high-water %d, acquisitions "
           "that found none: 0\n"
           "ops: ",
           EC_SLICES, EC_SLICE_SIZE, lent);
  /* The backend's line first, then the counters. */
  body = strchr(report, '\n');
  if (strncmp(report, "backend: ", 9) != 0 || body == NULL ||
      strncmp(body + 1, idle, strlen(idle)) != 0)
    ec_fail("the statistics before any client are \"%s\", not \"backend: "
            "B\n%sN, in use U, high-water U, acquisitions that found none: "
            "0\"",
            report, idle);
  if (!ec_find_line(report, "ops:", line, sizeof(line)) ||
      sscanf(line,
             "ops: %zu, in use %zu, high-water %zu, acquisitions that found "
             "none: %llu",
             &total, &in_use, &high, &none) != 4 ||
      in_use == 0 || in_use != high || in_use >= total || none != 0)
    ec_fail("the statistics before any client say \"%s\", not the accepts' "
            "ops in use, as many as ever, and no acquisition failed",
            line);
  echo_one("client after SIGUSR1", 150, sent);
  if (ec_check_failed || !ec_server_report(&srv, report, sizeof(report)))
    return;
  if (!ec_find_line(report, "connections:", line, sizeof(line)) ||
      strcmp(line, "connections: 1 (refused for want of an op: 0)") != 0)
    ec_fail("the statistics after one client say \"%s\", not \"connections: "
            "1 (refused for want of an op: 0)\"",
            line);
  if (!ec_find_line(report, "messages:", line, sizeof(line)) ||
      sscanf(line, "messages: %llu, bytes: %llu", &messages, &bytes) != 2 ||
      bytes != sent || messages == 0 || messages > sent)
    ec_fail("the statistics after one client say \"%s\", not %zu bytes in "
            "1 to %zu messages",
            line, sent, sent);
  check_quiet("after the reports");
}

/* 3. Eight connections at once, each sending 1 MiB of its own bytes in
 * random-sized writes while reading; all of it comes back in order. Only
 * then does each shut down, and the server must close with nothing more. */
static void check_echo(void) {
  enum { N = 8 };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "connection %zu", i);
    ec_conn_open(&c[i], name, 100 + (uint32_t)i, MIB,
                 EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO);
  }
  ec_run_until(ec_all_settled, NULL, 20000);
  report_death();
  for (i = 0; i < N; i++)
    ec_conn_verify(&c[i], 1);
  ec_conns_free();
  check_quiet("while echoing");
}

/* 4. A client sends 300 KiB and shuts down its sending side straight away,
 * so the server sees the end of the stream with bytes still to echo: all
 * 300 KiB must come back, then the end of the stream. */
static void check_half_close(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, "half-closed client", 200, 300 * KIB,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_SEND);
  ec_run_until(ec_all_settled, NULL, 10000);
  report_death();
  ec_conn_verify(c, 1);
  ec_conns_free();
  check_quiet("after a half-close");
}

static int all_written(const void *arg) {
  const ec_conn *c = (const ec_conn *)arg;
  return c->written == c->total || ec_conn_settled(c);
}

/* 5. A client sends 100 KiB without reading any of the echo and closes
 * with a reset; a client connected after it is still served. */
static void check_reset(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, "resetting client", 300, 100 * KIB, 0);
  ec_run_until(all_written, c, 10000);
  report_death();
  if (c->connect_status != 0 || c->write_error != 0) {
    ec_conn_verify(c, 0);
    ec_conns_free();
    return;
  }
  if (c->written != c->total) {
    ec_fail("%s: only %zu of %zu bytes written in time", c->name, c->written,
            c->total);
    ec_conns_free();
    return;
  }
  /* Time for the server to read and echo into the unread receive buffer,
   * so that the reset finds it with the connection in full use. */
  ec_pause(100);
  ec_conn_close(c, 1);
  ec_conns_free();
  /* Time for the server to meet the reset before the next client comes. */
  ec_pause(200);
  report_death();
  echo_one("client after the reset", 301, 64 * KIB);
  check_quiet("after a reset");
}

/* 6. Fifty clients that vanish: a quarter close before their connect has
 * completed, a quarter as soon as it has, and half send up to 256 KiB and
 * close at once, half of those with a reset. A new client is then served. */
static void check_vanish(void) {
  enum { N = 50 };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    c[i].vanish = (ec_vanish)(EC_VANISH_BEFORE_CONNECT + i % 4);
    snprintf(name, sizeof(name), "vanishing client %zu", i);
    ec_conn_open(&c[i], name, 400 + (uint32_t)i, (i * 5297) % (256 * KIB) + 1,
                 0);
    if (c[i].vanish == EC_VANISH_BEFORE_CONNECT)
      ec_conn_close(&c[i], 0);
  }
  if (!ec_run_until(ec_all_closed, NULL, 10000)) {
    report_death();
    ec_fail("the vanishing clients did not all close");
  }
  for (i = 0; i < N; i++)
    if (c[i].vanish != EC_VANISH_BEFORE_CONNECT && c[i].connect_status != 0)
      ec_fail("%s: connect: %s", c[i].name,
              c[i].connect_status == 1 ? "did not complete"
                                       : uv_strerror(c[i].connect_status));
  ec_conns_free();
  ec_pause(200);
  report_death();
  echo_one("client after the vanishing ones", 499, 64 * KIB);
  check_quiet("after clients vanished");
}

typedef struct rss_watch {
  uv_timer_t timer;
  long max_kib;
  int unreadable;
  int closed;
} rss_watch;

static void on_rss_tick(uv_timer_t *timer) {
  rss_watch *w = (rss_watch *)timer->data;
  long kib = ec_server_rss_kib(&srv);
  if (kib < 0)
    w->unreadable = 1;
  else if (kib > w->max_kib)
    w->max_kib = kib;
}

static void on_rss_close(uv_handle_t *handle) {
  ((rss_watch *)handle->data)->closed = 1;
}

static int rss_closed(const void *arg) {
  return ((const rss_watch *)arg)->closed;
}

/* 7. A client sends 16 MiB as fast as the connection takes it but reads
 * nothing for 2 seconds; its buffers are small, so that TCP soon holds the
 * server back. Over those 2 seconds the server's RSS, sampled every 50 ms,
 * must not grow by more than RSS_GROWTH_LIMIT_KIB. Then the client reads
 * and everything must come back in order. */
static void check_slow_reader(void) {
  static rss_watch w; /* the loop may hold its timer after a return */
  ec_conn *c = ec_conns_new(1);
  long before;

  if (c == NULL)
    return;
  before = ec_server_rss_kib(&srv);
  w.max_kib = before;
  w.unreadable = 0;
  w.closed = 0;
  uv_timer_init(&ec_loop, &w.timer);
  w.timer.data = &w;
  uv_timer_start(&w.timer, on_rss_tick, 50, 50);
  ec_conn_open(c, "slow reader", 600, 16 * MIB,
               EC_SMALL_BUFFERS | EC_SHUTDOWN_AFTER_ECHO);
  ec_pause(2000);
  on_rss_tick(&w.timer);
  uv_close((uv_handle_t *)&w.timer, on_rss_close);
  ec_run_for(rss_closed, &w, 10000);
  report_death();
  if (!rss_readable) {
    ec_note("the server's RSS is read only on Linux; not checked");
  } else if (before < 0 || w.unreadable) {
    ec_fail("cannot read VmRSS from /proc/%d/status", srv.proc.pid);
  } else if (w.max_kib - before >= RSS_GROWTH_LIMIT_KIB) {
    ec_fail("the server's RSS grew from %ld KiB to %ld KiB, by %ld KiB "
            "(limit %d KiB), while the client sent %zu bytes without reading",
            before, w.max_kib, w.max_kib - before, RSS_GROWTH_LIMIT_KIB,
            c->written);
  } else {
    ec_note("the server's RSS grew by %ld KiB while the client sent %zu "
            "bytes without reading",
            w.max_kib - before, c->written);
  }
  ec_conn_read(c);
  ec_run_until(ec_all_settled, NULL, 30000);
  report_death();
  ec_conn_verify(c, 1);
  ec_conns_free();
  check_quiet("after the slow reader");
}

/* 8. SIGTERM: the server exits 0 within 5 s, having printed its statistics
 * after the listening line, with no slice and no op still in use. */
static void check_stop(void) { ec_server_stop(&srv); }

/* ---- main -------------------------------------------------------------- */

/* Writing to a connection the server reset must be an error, not the end
 * of the test. Where SIGPIPE exists libuv leaves it to the application; a
 * spawned server gets its default disposition back from libuv. */
static void ignore_sigpipe(void) {
#ifdef SIGPIPE
  signal(SIGPIPE, SIG_IGN);
#endif
}

/* Runs checks[0..n-1], numbering them from *number on: each prints one "ok"
 * or "not ok" line, and one that needs a server that is not serving is not
 * run and fails. */
static void run_checks(const ec_check *checks, size_t n, int *number,
                       int *failures) {
  size_t i;
  for (i = 0; i < n; i++) {
    ec_check_name = checks[i].name;
    ec_check_failed = 0;
    ++*number;
    if (checks[i].needs != NULL && !ec_server_serving(checks[i].needs)) {
      printf("not ok %d - %s: skipped, %s is not serving\n", *number,
             ec_check_name, checks[i].needs->name);
      ++*failures;
      continue;
    }
    checks[i].run();
    printf("%s %d - %s\n", ec_check_failed ? "not ok" : "ok", *number,
           ec_check_name);
    fflush(stdout);
    *failures += ec_check_failed;
  }
}

int main(int argc, char **argv) {
  static const ec_check checks[] = {
      {"listening line", check_listening, NULL},
      {"statistics on SIGUSR1, then still serving", check_report, &srv},
      {"echo: 8 connections, 1 MiB each", check_echo, &srv},
      {"half-close", check_half_close, &srv},
      {"reset", check_reset, &srv},
      {"vanishing clients", check_vanish, &srv},
      {"slow reader", check_slow_reader, &srv},
      {"stop on SIGTERM", check_stop, &srv},
  };
  int failures = 0, number = 0, r;
  int workers = argc == 3 && strcmp(argv[1], "--workers") == 0;
  int relay = argc == 4 && strcmp(argv[1], "--relay") == 0;

  if (argc != 2 && !workers && !relay) {
    fprintf(stderr, "usage: asock-echo-check PATH-TO-ASOCK-ECHO\n"
                    "       asock-echo-check --workers "
                    "PATH-TO-ASOCK-WORKERS\n"
                    "       asock-echo-check --relay PATH-TO-ASOCK-RELAY "
                    "PATH-TO-ASOCK-ECHO\n");
    return 2;
  }
  ignore_sigpipe();
  r = ec_init();
  if (r != 0) {
    fprintf(stderr, "asock-echo-check: %s\n", uv_strerror(r));
    return 1;
  }

  if (workers) {
    ec_workers_path = argv[2];
    run_checks(ec_workers_checks, ec_workers_check_count, &number, &failures);
  } else if (relay) {
    ec_relay_path = argv[2];
    ec_echo_path = argv[3];
    run_checks(ec_relay_checks, ec_relay_check_count, &number, &failures);
    ec_relay_close();
  } else {
    ec_echo_path = argv[1];
    run_checks(checks, sizeof(checks) / sizeof(checks[0]), &number, &failures);
    ec_server_close(&srv);
    run_checks(ec_udp_checks, ec_udp_check_count, &number, &failures);
    ec_udp_close();
    run_checks(ec_threads_checks, ec_threads_check_count, &number, &failures);
  }
  ec_threads_close();

  r = ec_close();
  free(srv.out);
  if (r != 0) {
    printf("# uv_loop_close: %s\n", uv_strerror(r));
    failures++;
  }
  printf("%s\n", failures == 0 ? "all checks passed" : "some checks failed");
  return failures == 0 ? 0 : 1;
}
