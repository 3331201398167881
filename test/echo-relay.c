/* The relay checks of asock-echo-check; see echo-relay.h.
 *
 * asock-echo listens as the backend and asock-relay, with a quota of
 * RELAY_QUOTA slices per socket, in front of it. Through the relay: echoes
 * from 1 byte to several MiB, far beyond the quota and the socket buffers,
 * every byte compared; a client that reads nothing for a while, against
 * which the relay's RSS must stay flat; a client that shuts down its
 * sending side and reads the rest; between them, the relay's statistics
 * on SIGUSR1, counting exactly what passed so far; then SIGTERM to both, and
 * the relay's statistics must count exactly the bytes the clients sent and got
 * back, with its slices bounded by the quota. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"
#include "echo-relay.h"

#define RELAY_QUOTA 4
/* The relay's RSS may grow by the pool (4 MiB) and as much again. */
#define RELAY_RSS_LIMIT_KIB (8 * 1024)

const char *ec_relay_path;

static ec_server backend, relay;

/* Over every check: the relay's connections, the most at once, and the
 * bytes its clients had taken by the kernel and got back. */
static unsigned long conns_total;
static size_t conns_most;
static unsigned long long sent_total, received_total;

static void report_deaths(void) {
  ec_server_report_death(&backend);
  ec_server_report_death(&relay);
}

/* Adds what the n connections of the check moved to the totals. */
static void account(const ec_conn *c, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    sent_total += c[i].written;
    received_total += c[i].received;
  }
  conns_total += (unsigned long)n;
  if (n > conns_most)
    conns_most = n;
}

static void check_backend_listening(void) {
  ec_server_start(&backend, "asock-echo (backend)", ec_echo_path, "127.0.0.1",
                  NULL);
}

static void check_relay_listening(void) {
  static char target[64];
  static const char *args[] = {"--backend", target, "--quota",
                               EC_DECIMAL(RELAY_QUOTA), NULL};
  const struct sockaddr_in *b = (const struct sockaddr_in *)&backend.addr;
  snprintf(target, sizeof(target), "127.0.0.1:%d", ntohs(b->sin_port));
  ec_server_start(&relay, "asock-relay", ec_relay_path, "127.0.0.1", args);
  if (ec_server_serving(&relay))
    memcpy(&ec_server_addr, &relay.addr, sizeof(ec_server_addr));
}

/* Connections of many sizes at once, one in small writes; each reads while
 * it sends, shuts down once all came back, and must then see the end. */
static void check_echo(void) {
  static const size_t sizes[] = {1,       1000,    64 * KIB + 1, 300 * KIB,
                                 1 * MIB, 3 * MIB, 6 * MIB,      32 * KIB};
  enum { N = sizeof(sizes) / sizeof(sizes[0]) };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "connection %zu (%zu bytes)", i, sizes[i]);
    ec_conn_open(&c[i], name, 900 + (uint32_t)i, sizes[i],
                 EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO |
                     (i == N - 1 ? EC_SMALL_WRITES : 0));
  }
  ec_run_until(ec_all_settled, NULL, 60000);
  report_deaths();
  for (i = 0; i < N; i++)
    ec_conn_verify(&c[i], 1);
  account(c, N);
  ec_conns_free();
  ec_server_check_quiet(&relay, "while relaying");
  ec_server_check_quiet(&backend, "while echoing");
}

/* SIGUSR1 after the echoes: the relay's statistics must count exactly the
 * connections and bytes so far, none refused or reset, and the relay must
 * then serve on (the checks after this one). */
static void check_relay_report(void) {
  unsigned long conns = 9, refused = 9, unreachable = 9, resets = 9;
  unsigned long long c2b = 0, b2c = 0, d1 = 0, d2 = 0;
  char report[1024], line[256] = "";

  if (!ec_server_report(&relay, report, sizeof(report)))
    return;
  if (!ec_find_line(report, "connections:", line, sizeof(line)) ||
      sscanf(line,
             "connections: %lu (refused: %lu, backend unreachable: %lu, "
             "reset after an error: %lu)",
             &conns, &refused, &unreachable, &resets) != 4 ||
      conns != conns_total || refused != 0 || unreachable != 0 || resets != 0)
    ec_fail("the report says \"%s\", not \"connections: %lu (refused: 0, "
            "backend unreachable: 0, reset after an error: 0)\"",
            line, conns_total);
  if (!ec_find_line(report, "client to backend:", line, sizeof(line)) ||
      sscanf(line,
             "client to backend: %llu bytes in %llu deliveries; backend to "
             "client: %llu bytes in %llu deliveries",
             &c2b, &d1, &b2c, &d2) != 4 ||
      c2b != sent_total || b2c != received_total || d1 == 0 || d2 == 0)
    ec_fail("the report says \"%s\", not %llu bytes from the clients and "
            "%llu to them",
            line, sent_total, received_total);
  if (ec_check_failed)
    ec_note("%s printed:\n%s", relay.name, report);
}

typedef struct rss_watch {
  uv_timer_t timer;
  long max_kib;
  int unreadable;
  int closed;
} rss_watch;

static void on_rss_tick(uv_timer_t *timer) {
  rss_watch *w = (rss_watch *)timer->data;
  long kib = ec_server_rss_kib(&relay);
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

/* A client with small buffers sends 16 MiB and reads nothing for a second.
 * What the kernel's buffers along the way do not take, the relay must not
 * take either: a slice waiting to be sent counts against the quota of the
 * socket it came from, which then stops reading. The relay's RSS, sampled
 * meanwhile, must stay within the bound; then the client reads and
 * everything must come back. How far the load got in the second changes
 * what is sampled, never whether the check passes. */
static void check_slow_reader(void) {
  static rss_watch w; /* the loop may hold its timer after a return */
  ec_conn *c = ec_conns_new(1);
  long before;

  if (c == NULL)
    return;
  before = ec_server_rss_kib(&relay);
  memset(&w, 0, sizeof(w));
  w.max_kib = before;
  uv_timer_init(&ec_loop, &w.timer);
  w.timer.data = &w;
  uv_timer_start(&w.timer, on_rss_tick, 50, 50);
  ec_conn_open(c, "slow reader", 950, 16 * MIB,
               EC_SMALL_BUFFERS | EC_SHUTDOWN_AFTER_ECHO);
  ec_pause(1000);
  on_rss_tick(&w.timer);
  uv_close((uv_handle_t *)&w.timer, on_rss_close);
  ec_run_for(rss_closed, &w, 10000);
  report_deaths();
  if (before < 0 || w.unreadable)
    ec_note("the relay's RSS cannot be read here; not checked");
  else if (w.max_kib - before >= RELAY_RSS_LIMIT_KIB)
    ec_fail("the relay's RSS grew from %ld KiB to %ld KiB (limit %d KiB) "
            "while the client sent %zu bytes without reading",
            before, w.max_kib, RELAY_RSS_LIMIT_KIB, c->written);
  else
    ec_note("the relay's RSS grew by %ld KiB while the client sent %zu bytes "
            "without reading",
            w.max_kib - before, c->written);
  ec_conn_read(c);
  ec_run_until(ec_all_settled, NULL, 60000);
  report_deaths();
  ec_conn_verify(c, 1);
  account(c, 1);
  ec_conns_free();
  ec_server_check_quiet(&relay, "after the slow reader");
}

/* A client sends 300 KiB and shuts down its sending side at once, then
 * reads until the end of the stream: the relay passes the end on to the
 * backend (asock_shutdown()) and goes on reading the backend's answer, so
 * every byte of the echo comes back, then the end of the stream. */
static void check_half_close(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, "half-closed client", 960, 300 * KIB,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_SEND);
  ec_run_until(ec_all_settled, NULL, 30000);
  report_deaths();
  if (c->connect_status != 0 || c->write_error != 0 || c->read_error != 0)
    ec_conn_verify(c, 1); /* reports which */
  else if (c->mismatch)
    ; /* reported as it happened */
  else if (c->written != c->total || !c->eof)
    ec_fail("%s: %zu of %zu bytes sent, %zu came back, %s", c->name, c->written,
            c->total, c->received,
            c->eof ? "then the end of the stream" : "and no end of the stream");
  else if (c->received != c->total)
    ec_fail("%s: %zu of %zu bytes came back before the end of the stream",
            c->name, c->received, c->total);
  account(c, 1);
  ec_conns_free();
  ec_server_check_quiet(&relay, "after a half-close");
}

/* SIGTERM to the relay: besides what ec_server_stop() checks, its
 * statistics must count every connection and every byte the clients sent
 * and got back, no reset, no allocation per message, and no more slices at
 * once than the quota allows each socket (plus the loop's cache of 16). */
static void check_relay_stop(void) {
  unsigned long conns = 9, refused = 9, unreachable = 9, resets = 9;
  unsigned long long c2b = 0, b2c = 0, d1 = 0, d2 = 0, sends = 0, gathered = 0;
  unsigned long long allocations = 0;
  size_t slices = 0, size = 0, in_use = 0, high = 0;
  const size_t high_bound = 2 * RELAY_QUOTA * conns_most + 16;
  char line[256];
  int failed;

  if (!ec_server_stop(&relay))
    return;
  failed = ec_check_failed;
  if (!ec_server_find_line(&relay, "connections:", line, sizeof(line)) ||
      sscanf(line,
             "connections: %lu (refused: %lu, backend unreachable: %lu, "
             "reset after an error: %lu)",
             &conns, &refused, &unreachable, &resets) != 4 ||
      conns != conns_total || refused != 0 || unreachable != 0 || resets != 0)
    ec_fail("the statistics do not say \"connections: %lu (refused: 0, "
            "backend unreachable: 0, reset after an error: 0)\"",
            conns_total);
  if (!ec_server_find_line(&relay, "client to backend:", line, sizeof(line)) ||
      sscanf(line,
             "client to backend: %llu bytes in %llu deliveries; backend to "
             "client: %llu bytes in %llu deliveries",
             &c2b, &d1, &b2c, &d2) != 4 ||
      c2b != sent_total || b2c != received_total)
    ec_fail("the statistics do not say %llu bytes from the clients and %llu "
            "to them",
            sent_total, received_total);
  if (!ec_server_find_line(&relay, "sends:", line, sizeof(line)) ||
      sscanf(line,
             "sends: %llu, of several slices: %llu; heap allocations after "
             "start-up: %llu",
             &sends, &gathered, &allocations) != 3 ||
      allocations > 4 * conns_total + 64)
    ec_fail("the statistics do not say at most %lu heap allocations",
            4 * conns_total + 64);
  else
    ec_note("%s", line);
  if (!ec_server_find_line(&relay, "slices:", line, sizeof(line)) ||
      sscanf(line, "slices: %zu of %zu bytes, in use %zu, high-water %zu",
             &slices, &size, &in_use, &high) != 4 ||
      high > high_bound)
    ec_fail("the statistics do not say at most %zu slices in use at once "
            "(quota %d, %zu connections)",
            high_bound, RELAY_QUOTA, conns_most);
  else
    ec_note("%s", line);
  if (ec_check_failed && !failed)
    ec_note("%s printed:\n%s", relay.name, relay.out);
}

/* SIGTERM to the backend: it must have had every byte the clients sent. */
static void check_backend_stop(void) {
  unsigned long long messages = 0, bytes = 0, allocations = 0;
  char line[256];

  if (!ec_server_stop(&backend))
    return;
  if (!ec_server_find_line(&backend, "messages:", line, sizeof(line)) ||
      sscanf(line,
             "messages: %llu, bytes: %llu, heap allocations after start-up: "
             "%llu",
             &messages, &bytes, &allocations) != 3 ||
      bytes != sent_total) {
    ec_fail("the backend's statistics do not say %llu bytes", sent_total);
    ec_note("%s printed:\n%s", backend.name, backend.out);
  }
}

const ec_check ec_relay_checks[] = {
    {"relay: backend listening line", check_backend_listening, NULL},
    {"relay: listening line", check_relay_listening, &backend},
    {"relay: echo, 8 connections of 1 byte to 6 MiB", check_echo, &relay},
    {"relay: statistics on SIGUSR1, then relaying on", check_relay_report,
     &relay},
    {"relay: slow reader, the relay's memory stays flat", check_slow_reader,
     &relay},
    {"relay: half-close", check_half_close, &relay},
    {"relay: stop on SIGTERM, every byte counted", check_relay_stop, &relay},
    {"relay: backend stop on SIGTERM", check_backend_stop, &backend},
};
const size_t ec_relay_check_count =
    sizeof(ec_relay_checks) / sizeof(*ec_relay_checks);

void ec_relay_close(void) {
  ec_server_close(&relay);
  ec_server_close(&backend);
  free(relay.out);
  free(backend.out);
}
