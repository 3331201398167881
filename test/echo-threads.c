/* The threaded checks of asock-echo-check; see echo-threads.h.
 *
 * `asock-echo --threads 2` gets GROUP_CONNS connections at once, each
 * echoing its own pattern stream, and at SIGTERM its statistics must count
 * exactly those connections and bytes, with both loops among them.
 *
 * `asock-workers --stall-ms 5 --workers 4 --receives 4` gets a few
 * connections that each send a long stream of lowercase letters in small
 * writes while reading, and each must get back exactly the same letters
 * upper-cased, in order. The stall holds up every chunk whose number is 1
 * modulo 4 while the workers finish the chunks after it, so that the
 * server's count of chunks finished before an earlier one must be above 0;
 * and its count of bytes must be exactly what the clients sent. */
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
#define WORKER_CONNS 4
#define WORKER_BYTES (512 * KIB)

const char *ec_workers_path;

static ec_server group, workers;

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
    {"threads: echo, " EC_DECIMAL(GROUP_CONNS) " connections", check_group_echo,
     &group},
    {"threads: stop on SIGTERM, both loops served", check_group_stop, &group},
};
const size_t ec_threads_check_count =
    sizeof(ec_threads_checks) / sizeof(*ec_threads_checks);

/* ---- asock-workers ------------------------------------------------------- */

static void check_workers_listening(void) {
  static const char *const args[] = {"--stall-ms", "5", "--workers", "4",
                                     "--receives", "4", NULL};
  workers.plain = 1;
  start(&workers, "asock-workers", ec_workers_path, args);
}

static void check_workers_order(void) {
  run_conns(&workers, WORKER_CONNS, 800, WORKER_BYTES,
            EC_SMALL_WRITES | EC_UPPERCASE_ECHO, 60000);
  ec_server_check_quiet(&workers, "while upper-casing");
}

/* SIGTERM; then the statistics must count every connection and byte, and
 * chunks that finished before an earlier one. A chunk holds at most a
 * slice (16 KiB in asock-workers) and at least a byte. */
static void check_workers_stop(void) {
  const unsigned long long total =
      (unsigned long long)WORKER_CONNS * WORKER_BYTES;
  const unsigned long long fewest = WORKER_CONNS * (WORKER_BYTES / 16384);
  unsigned long long chunks = 0, early = 0, bytes = 0;
  unsigned long conns = 0;
  char line[256];
  int failed;

  if (!ec_server_stop(&workers))
    return;
  failed = ec_check_failed;
  if (!ec_server_find_line(&workers, "connections:", line, sizeof(line)) ||
      sscanf(line, "connections: %lu", &conns) != 1 || conns != WORKER_CONNS)
    ec_fail("no line \"connections: %d\" in the statistics", WORKER_CONNS);
  if (!ec_server_find_line(&workers, "chunks:", line, sizeof(line)) ||
      sscanf(line, "chunks: %llu, finished before an earlier one: %llu",
             &chunks, &early) != 2)
    ec_fail("no line \"chunks: N, finished before an earlier one: M\"");
  else if (chunks < fewest || chunks > total || early == 0 || early >= chunks)
    ec_fail("the statistics say \"%s\": not %llu to %llu chunks with some, "
            "not all, finished before an earlier one",
            line, fewest, total);
  else
    ec_note("%s", line);
  if (!ec_server_find_line(&workers, "bytes upper-cased:", line,
                           sizeof(line)) ||
      sscanf(line, "bytes upper-cased: %llu", &bytes) != 1 || bytes != total)
    ec_fail("no line \"bytes upper-cased: %llu\" in the statistics", total);
  if (ec_check_failed && !failed)
    ec_note("%s printed:\n%s", workers.name, workers.out);
}

const ec_check ec_workers_checks[] = {
    {"workers: listening line", check_workers_listening, NULL},
    {"workers: " EC_DECIMAL(WORKER_CONNS) " streams upper-cased in order",
     check_workers_order, &workers},
    {"workers: stop on SIGTERM, chunks finished out of order",
     check_workers_stop, &workers},
};
const size_t ec_workers_check_count =
    sizeof(ec_workers_checks) / sizeof(*ec_workers_checks);

void ec_threads_close(void) {
  ec_server_close(&group);
  ec_server_close(&workers);
  free(group.out);
  free(workers.out);
}
