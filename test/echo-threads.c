/* The threaded checks of asock-echo-check; see echo-threads.h.
 *
 * `asock-echo --threads 2` gets GROUP_CONNS connections at once, each
 * echoing its own pattern stream, and at SIGTERM its statistics must count
 * exactly those connections and bytes, with both loops among them. Asked
 * for its statistics with SIGUSR1 before and after, it must count nothing,
 * then exactly the same, summed over its loops while they run.
 *
 * `asock-workers --stall-ms 5 --workers 4 --receives 4`, with the pool of
 * EC_SLICES slices every example server gets, is checked twice over. The
 * first server gets connections that each send a long stream of lowercase
 * letters while reading, in small writes and in large ones, a client that
 * half-closes at once, and a client that reads nothing for a while beside
 * one that does: each must get back exactly the same letters upper-cased,
 * in order, then the end of its stream. The stall holds up every chunk
 * whose number is 1 modulo 4 while the workers finish the chunks after
 * it, so that the server's count of chunks finished before an earlier one
 * must be above 0; its count of bytes must be exactly what the clients
 * sent; and the client that did not read must have held exactly the
 * server's quota of slices, a quota below the pool, while the other was
 * served. The second server meets a peer that resets while the answers to
 * it wait and peers that vanish, must serve a client after them, and must
 * have every slice and op back in its pool when it stops. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"
#include "echo-threads.h"

/* The group check: two loops, connections enough that each loop gets some
 * (the kernel spreads them by their ports on Linux; elsewhere the first
 * loop deals them out in turn). */
#define GROUP_LOOPS 2
#define GROUP_CONNS 64
#define GROUP_BYTES (128 * KIB)

/* The workers check: connections and what each sends. */
#define WORKER_CONNS 8
#define WORKER_BYTES (512 * KIB)

const char *ec_workers_path;

static ec_server group, workers, hostile;

/* Starts `server`, and makes it the one the connections go to. */
static void start(ec_server *s, const char *name, const char *path,
                  const char *const *extra) {
  ec_server_start(s, name, path, "127.0.0.1", extra);
  if (ec_server_serving(s))
    memcpy(&ec_server_addr, &s->addr, sizeof(ec_server_addr));
}

/* Opens n connections of `total` bytes each, waits for all of them to
 * settle and checks that each got back everything and then the end of its
 * stream. */
static void run_conns(ec_server *s, size_t n, uint32_t stream, size_t total,
                      unsigned int flags, uint64_t ms) {
  ec_conn *c = ec_conns_new(n);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < n; i++) {
    snprintf(name, sizeof(name), "connection %zu", i);
    ec_conn_open(&c[i], name, stream + (uint32_t)i, total,
                 EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO | flags);
  }
  ec_run_until(ec_all_settled, NULL, ms);
  ec_server_report_death(s);
  for (i = 0; i < n; i++)
    ec_conn_verify(&c[i], 1);
  ec_conns_free();
}

/* ---- asock-echo --threads 2 ---------------------------------------------- */

static void check_group_listening(void) {
  static const char *const args[] = {"--threads", EC_DECIMAL(GROUP_LOOPS),
                                     NULL};
  start(&group, "asock-echo --threads " EC_DECIMAL(GROUP_LOOPS), ec_echo_path,
        args);
}

/* SIGUSR1 to the group: the statistics, with every loop's counters summed,
 * must say `conns` connections, all of them `bytes` long, spread over the
 * loops; before any client, every loop 0 and no heap allocation. */
static void group_report(unsigned long conns, unsigned long long bytes) {
  unsigned long total = 9, refused = 9, per_loop[GROUP_LOOPS] = {9, 9};
  unsigned long long messages = 0, got = 1, allocations = 1;
  unsigned int loops = 0;
  char report[1024], line[256] = "";

  if (!ec_server_report(&group, report, sizeof(report)))
    return;
  if (!ec_find_line(report, "connections:", line, sizeof(line)) ||
      sscanf(line, "connections: %lu (refused for want of an op: %lu)", &total,
             &refused) != 2 ||
      total != conns || refused != 0)
    ec_fail("the report says \"%s\", not %lu connections and none refused",
            line, conns);
  if (!ec_find_line(report, "connections per loop", line, sizeof(line)) ||
      sscanf(line, "connections per loop (%u loops): %lu %lu", &loops,
             &per_loop[0], &per_loop[1]) != 3 ||
      loops != GROUP_LOOPS || per_loop[0] + per_loop[1] != conns)
    ec_fail("the report says \"%s\", not %d loops sharing %lu connections",
            line, GROUP_LOOPS, conns);
  if (!ec_find_line(report, "messages:", line, sizeof(line)) ||
      sscanf(line,
             "messages: %llu, bytes: %llu, heap allocations after start-up: "
             "%llu",
             &messages, &got, &allocations) != 3 ||
      got != bytes || (conns == 0 && (messages != 0 || allocations != 0)) ||
      messages < bytes / EC_SLICE_SIZE)
    ec_fail("the report says \"%s\", not %llu bytes in at least %llu "
            "messages%s",
            line, bytes, bytes / EC_SLICE_SIZE,
            conns == 0 ? " and no allocation" : "");
  if (ec_check_failed)
    ec_note("%s printed:\n%s", group.name, report);
}

static void check_group_report_idle(void) { group_report(0, 0); }

static void check_group_report(void) {
  group_report(GROUP_CONNS, (unsigned long long)GROUP_CONNS * GROUP_BYTES);
}

static void check_group_echo(void) {
  run_conns(&group, GROUP_CONNS, 700, GROUP_BYTES, 0, 30000);
  ec_server_check_quiet(&group, "while echoing");
}

/* SIGTERM; then the statistics must count every connection, split over
 * both loops, every byte, and no allocation per message. */
static void check_group_stop(void) {
  unsigned long conns = 0, refused = 0, per_loop[GROUP_LOOPS] = {0};
  unsigned long long messages = 0, bytes = 0, allocations = 0;
  unsigned long sum = 0, allocation_bound;
  unsigned int loops = 0, i;
  char line[256];
  int failed;

  if (!ec_server_stop(&group))
    return;
  failed = ec_check_failed;
  if (!ec_server_find_line(&group, "connections:", line, sizeof(line)) ||
      sscanf(line, "connections: %lu (refused for want of an op: %lu)", &conns,
             &refused) != 2)
    ec_fail("no line \"connections: C (refused for want of an op: R)\"");
  else if (conns != GROUP_CONNS || refused != 0)
    ec_fail("the statistics say \"%s\", not %d connections and none refused",
            line, GROUP_CONNS);
  if (!ec_server_find_line(&group, "connections per loop", line,
                           sizeof(line)) ||
      sscanf(line, "connections per loop (%u loops): %lu %lu", &loops,
             &per_loop[0], &per_loop[1]) != 3)
    ec_fail("no line \"connections per loop (%d loops): A B\"", GROUP_LOOPS);
  else {
    for (i = 0; i < GROUP_LOOPS; i++)
      sum += per_loop[i];
    if (loops != GROUP_LOOPS || sum != GROUP_CONNS)
      ec_fail("the statistics say \"%s\", not %d loops sharing %d "
              "connections",
              line, GROUP_LOOPS, GROUP_CONNS);
    for (i = 0; i < GROUP_LOOPS; i++)
      if (per_loop[i] == 0)
        ec_fail("loop %u served no connection: \"%s\"", i, line);
    ec_note("%s", line);
  }
  /* Each connection's socket is allocated; a message allocates nothing,
   * and the messages far outnumber this bound. */
  allocation_bound = 4 * GROUP_CONNS + 64;
  if (!ec_server_find_line(&group, "messages:", line, sizeof(line)) ||
      sscanf(line,
             "messages: %llu, bytes: %llu, heap allocations after start-up: "
             "%llu",
             &messages, &bytes, &allocations) != 3)
    ec_fail("no line \"messages: M, bytes: B, heap allocations after "
            "start-up: A\"");
  else if (bytes != (unsigned long long)GROUP_CONNS * GROUP_BYTES ||
           messages <
               (unsigned long long)GROUP_CONNS * GROUP_BYTES / EC_SLICE_SIZE ||
           allocations > allocation_bound)
    ec_fail("the statistics say \"%s\", not %llu bytes in at least %llu "
            "messages with at most %lu allocations",
            line, (unsigned long long)GROUP_CONNS * GROUP_BYTES,
            (unsigned long long)GROUP_CONNS * GROUP_BYTES / EC_SLICE_SIZE,
            allocation_bound);
  if (ec_check_failed && !failed)
    ec_note("%s printed:\n%s", group.name, group.out);
}

const ec_check ec_threads_checks[] = {
    {"threads: listening line", check_group_listening, NULL},
    {"threads: statistics on SIGUSR1 before any client",
     check_group_report_idle, &group},
    {"threads: echo, " EC_DECIMAL(GROUP_CONNS) " connections", check_group_echo,
     &group},
    {"threads: statistics on SIGUSR1, every loop's counted", check_group_report,
     &group},
    {"threads: stop on SIGTERM, both loops served", check_group_stop, &group},
};
const size_t ec_threads_check_count =
    sizeof(ec_threads_checks) / sizeof(*ec_threads_checks);

/* ---- asock-workers ------------------------------------------------------- */

/* Both servers get the same arguments; --receives is the old option, still
 * accepted and ignored. */
static const char *const workers_args[] = {"--stall-ms", "5", "--workers", "4",
                                           "--receives", "4", NULL};

/* What the connections of the first server sent, in total and in chunks of
 * at most a slice each, for its statistics. */
static unsigned long workers_conns;
static unsigned long long workers_bytes, workers_fewest;

/* Opens a connection to the workers server, counted in its statistics. */
static void open_counted(ec_conn *c, const char *name, uint32_t stream,
                         size_t total, unsigned int flags) {
  ec_conn_open(c, name, stream, total, flags | EC_UPPERCASE_ECHO);
  workers_conns++;
  workers_bytes += total;
  workers_fewest += total / EC_SLICE_SIZE;
}

static void check_workers_listening(void) {
  start(&workers, "asock-workers", ec_workers_path, workers_args);
}

/* Eight connections at once, half in writes of up to EC_SMALL_WRITE bytes
 * and half in writes of up to 64 KiB, so that chunks come small and as
 * large as a slice, and each connection's stalled chunks hold up the ones
 * after them. Eight connections at their quota hold the whole pool, so
 * receives also wait for slices. */
static void check_workers_order(void) {
  ec_conn *c = ec_conns_new(WORKER_CONNS);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < WORKER_CONNS; i++) {
    snprintf(name, sizeof(name), "connection %zu", i);
    open_counted(&c[i], name, 800 + (uint32_t)i, WORKER_BYTES,
                 EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO |
                     (i % 2 == 0 ? EC_SMALL_WRITES : 0));
  }
  ec_run_until(ec_all_settled, NULL, 60000);
  ec_server_report_death(&workers);
  for (i = 0; i < WORKER_CONNS; i++)
    ec_conn_verify(&c[i], 1);
  ec_conns_free();
  ec_server_check_quiet(&workers, "while upper-casing");
}

/* SIGUSR1 after the streams: the statistics, read while the workers
 * wait for work, must count exactly the connections and bytes so far, in
 * at least as many chunks as slices they fill, and the server must then
 * serve on (the checks after this one). */
static void check_workers_report(void) {
  unsigned long conns = 0;
  unsigned long long chunks = 0, early = 0, bytes = 0;
  char report[1024], line[256] = "";

  if (!ec_server_report(&workers, report, sizeof(report)))
    return;
  if (!ec_find_line(report, "connections:", line, sizeof(line)) ||
      sscanf(line, "connections: %lu", &conns) != 1 || conns != workers_conns)
    ec_fail("the report says \"%s\", not \"connections: %lu\"", line,
            workers_conns);
  if (!ec_find_line(report, "chunks:", line, sizeof(line)) ||
      sscanf(line, "chunks: %llu, finished before an earlier one: %llu",
             &chunks, &early) != 2 ||
      chunks < workers_fewest || chunks > workers_bytes || early >= chunks)
    ec_fail("the report says \"%s\", not %llu to %llu chunks", line,
            workers_fewest, workers_bytes);
  if (!ec_find_line(report, "bytes upper-cased:", line, sizeof(line)) ||
      sscanf(line, "bytes upper-cased: %llu", &bytes) != 1 ||
      bytes != workers_bytes)
    ec_fail("the report says \"%s\", not \"bytes upper-cased: %llu\"", line,
            workers_bytes);
  if (ec_check_failed)
    ec_note("%s printed:\n%s", workers.name, report);
}

/* The client shuts its sending side down as soon as it has sent, so the
 * end of the stream reaches the server while chunks before it still wait
 * for a worker: every byte must come back before the end. */
static void check_workers_half_close(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  open_counted(c, "half-closed client", 850, 300 * KIB,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_SEND);
  ec_run_until(ec_all_settled, NULL, 20000);
  ec_server_report_death(&workers);
  ec_conn_verify(c, 1);
  ec_conns_free();
  ec_server_check_quiet(&workers, "after a half-close");
}

static int conn_settled(const void *arg) {
  return ec_conn_settled((const ec_conn *)arg);
}

/* A client sends 16 MiB without reading for a while: the server's sends to
 * it wait, its chunks keep their slices, and it stops being read at its
 * quota. Another client, connected meanwhile, must be served in full
 * while the first still reads nothing; without the quota the first would
 * hold the whole pool. Then the first reads, and gets everything. */
static void check_workers_quota(void) {
  ec_conn *c = ec_conns_new(2);
  if (c == NULL)
    return;
  open_counted(&c[0], "client that does not read", 860, 16 * MIB,
               EC_SMALL_BUFFERS | EC_SHUTDOWN_AFTER_ECHO);
  ec_pause(1000);
  open_counted(&c[1], "client beside it", 861, 256 * KIB,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO);
  ec_run_until(conn_settled, &c[1], 20000);
  ec_server_report_death(&workers);
  ec_conn_verify(&c[1], 1);
  if (c[0].received != 0 || ec_conn_settled(&c[0]))
    ec_fail("%s: settled or received %zu bytes before it read", c[0].name,
            c[0].received);
  ec_conn_read(&c[0]);
  ec_run_until(ec_all_settled, NULL, 60000);
  ec_server_report_death(&workers);
  ec_conn_verify(&c[0], 1);
  ec_conns_free();
  ec_server_check_quiet(&workers, "after the client that did not read");
}

/* SIGTERM; then the statistics must count every connection and byte,
 * chunks that finished before an earlier one, and a connection that held
 * exactly its quota of slices (the one that did not read), a quota smaller
 * than the pool. A chunk holds at most a slice and at least a byte. The
 * pool's own lines, every slice and op back, are checked by
 * ec_server_stop(). */
static void check_workers_stop(void) {
  unsigned long long chunks = 0, early = 0, bytes = 0;
  unsigned long conns = 0, held = 0, quota = 0;
  char line[256];
  int failed;

  if (!ec_server_stop(&workers))
    return;
  failed = ec_check_failed;
  if (!ec_server_find_line(&workers, "connections:", line, sizeof(line)) ||
      sscanf(line, "connections: %lu", &conns) != 1 || conns != workers_conns)
    ec_fail("no line \"connections: %lu\" in the statistics", workers_conns);
  if (!ec_server_find_line(&workers, "chunks:", line, sizeof(line)) ||
      sscanf(line, "chunks: %llu, finished before an earlier one: %llu",
             &chunks, &early) != 2)
    ec_fail("no line \"chunks: N, finished before an earlier one: M\"");
  else if (chunks < workers_fewest || chunks > workers_bytes || early == 0 ||
           early >= chunks)
    ec_fail("the statistics say \"%s\": not %llu to %llu chunks with some, "
            "not all, finished before an earlier one",
            line, workers_fewest, workers_bytes);
  else
    ec_note("%s", line);
  if (!ec_server_find_line(&workers, "bytes upper-cased:", line,
                           sizeof(line)) ||
      sscanf(line, "bytes upper-cased: %llu", &bytes) != 1 ||
      bytes != workers_bytes)
    ec_fail("no line \"bytes upper-cased: %llu\" in the statistics",
            workers_bytes);
  if (!ec_server_find_line(&workers, "most slices one connection held:", line,
                           sizeof(line)) ||
      sscanf(line, "most slices one connection held: %lu (quota %lu)", &held,
             &quota) != 2)
    ec_fail("no line \"most slices one connection held: N (quota Q)\"");
  else if (quota == 0 || quota >= EC_SLICES || held != quota)
    ec_fail("the statistics say \"%s\", not a quota below the pool's %d "
            "slices that one connection reached",
            line, EC_SLICES);
  else
    ec_note("%s", line);
  if (ec_check_failed && !failed)
    ec_note("%s printed:\n%s", workers.name, workers.out);
}

/* The failure paths get a server of their own, whose byte counts nobody
 * can know: a peer that resets while the answers to it wait for it to
 * read fails those sends, and peers that vanish in every way end their
 * receives; a client after them must be served, and at the stop every
 * slice and every op must be back in the pool. */
static void check_hostile_listening(void) {
  start(&hostile, "asock-workers (peers that vanish)", ec_workers_path,
        workers_args);
}

static int reset_ready(const void *arg) {
  const ec_conn *c = (const ec_conn *)arg;
  return c->written == c->total || ec_conn_settled(c);
}

static void serve_one(const char *name, uint32_t stream) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, name, stream, 64 * KIB,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO | EC_UPPERCASE_ECHO);
  ec_run_until(ec_all_settled, NULL, 10000);
  ec_server_report_death(&hostile);
  ec_conn_verify(c, 1);
  ec_conns_free();
}

static void check_hostile_reset(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, "resetting client", 900, 4 * MIB,
               EC_SMALL_BUFFERS | EC_UPPERCASE_ECHO);
  /* It may not get everything out: the server stops reading it at its
   * quota. Either way its answers wait when it resets. */
  ec_run_until(reset_ready, c, 2000);
  ec_server_report_death(&hostile);
  if (c->connect_status != 0 || c->write_error != 0)
    ec_conn_verify(c, 0);
  ec_conn_close(c, 1);
  ec_conns_free();
  ec_pause(200);
  ec_server_report_death(&hostile);
  serve_one("client after the reset", 901);
  ec_server_check_quiet(&hostile, "after a reset");
}

static void check_hostile_vanish(void) {
  enum { N = 24 };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    c[i].vanish = (ec_vanish)(EC_VANISH_BEFORE_CONNECT + i % 4);
    snprintf(name, sizeof(name), "vanishing client %zu", i);
    ec_conn_open(&c[i], name, 910 + (uint32_t)i, (i * 5297) % (256 * KIB) + 1,
                 EC_UPPERCASE_ECHO);
    if (c[i].vanish == EC_VANISH_BEFORE_CONNECT)
      ec_conn_close(&c[i], 0);
  }
  if (!ec_run_until(ec_all_closed, NULL, 10000)) {
    ec_server_report_death(&hostile);
    ec_fail("the vanishing clients did not all close");
  }
  ec_conns_free();
  ec_pause(200);
  ec_server_report_death(&hostile);
  serve_one("client after the vanishing ones", 949);
  ec_server_check_quiet(&hostile, "after clients vanished");
}

/* SIGTERM while eight clients send (half of them reading, half not), so
 * that the stop finds chunks at the workers, in the orders and in sends:
 * each op must still complete once, and every slice and op be back. */
static void check_hostile_stop(void) {
  enum { N = 8 };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "client busy at the stop %zu", i);
    ec_conn_open(&c[i], name, 950 + (uint32_t)i, 64 * MIB,
                 EC_UPPERCASE_ECHO | (i % 2 == 0 ? EC_READ_AT_CONNECT : 0));
  }
  ec_pause(300);
  ec_server_report_death(&hostile);
  ec_server_stop(&hostile);
  ec_conns_free();
}

const ec_check ec_workers_checks[] = {
    {"workers: listening line", check_workers_listening, NULL},
    {"workers: " EC_DECIMAL(WORKER_CONNS) " streams upper-cased in order",
     check_workers_order, &workers},
    {"workers: statistics on SIGUSR1, then serving on", check_workers_report,
     &workers},
    {"workers: half-close, the end after every chunk", check_workers_half_close,
     &workers},
    {"workers: a peer that does not read stops at its quota, others served",
     check_workers_quota, &workers},
    {"workers: stop on SIGTERM, chunks finished out of order",
     check_workers_stop, &workers},
    {"workers: listening line, second server", check_hostile_listening, NULL},
    {"workers: a peer resets while its answers wait", check_hostile_reset,
     &hostile},
    {"workers: vanishing clients", check_hostile_vanish, &hostile},
    {"workers: stop on SIGTERM mid-stream, every slice and op back",
     check_hostile_stop, &hostile},
};
const size_t ec_workers_check_count =
    sizeof(ec_workers_checks) / sizeof(*ec_workers_checks);

void ec_threads_close(void) {
  ec_server_close(&group);
  ec_server_close(&workers);
  ec_server_close(&hostile);
  free(group.out);
  free(workers.out);
  free(hostile.out);
}
