/* What the two files of asock-echo share: asock-echo.c (TCP with one
 * multishot receive per connection, loop groups, start and stop) and
 * asock-echo-oneshot.c (TCP with one op per connection, --oneshot; UDP,
 * --udp). */
#ifndef ASOCK_ECHO_H
#define ASOCK_ECHO_H

#include "asock.h"

#define ACCEPT_OPS 8

/* What one loop counts; only that loop's thread writes it. The two counted
 * per message are not side by side: GCC's vectoriser would add them
 * together in SSE registers, in six more instructions than two adds. */
typedef struct echo_counts {
  unsigned long long messages;
  unsigned long connections;
  unsigned long refused;
  unsigned long long bytes;
} echo_counts;

/* One loop of a group. The padding keeps the counters of two loops off
 * one cache line, so that each thread writes only lines of its own. */
typedef struct echo_loop {
  asock_loop *loop;
  echo_counts counts;
  echo_counts seen;  /* counts as copied on the loop's thread for a report */
  asock_task report; /* posted to the loop to make that copy */
  char pad[64];
} echo_loop;

typedef struct server {
  asock_loop *loop;
  asock_pool *pool;
  asock_socket *listener;
  asock_op *accepts[ACCEPT_OPS];
  asock_socket *udp;  /* --udp: the socket, in place of the listener */
  asock_op **udp_ops; /* its receive ops */
  size_t udp_op_count;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_signal_t sigstats; /* prints the statistics while the server runs */
  echo_counts counts;   /* the single loop's */
  unsigned long long truncated; /* UDP: datagrams longer than a slice */
  unsigned long long send_errors;
  unsigned long long receive_errors;
  int stopping;      /* the single loop's; a group's loops stop by themselves */
  int oneshot;       /* --oneshot: one op per connection, receive then send */
  int udp_multishot; /* --udp --multishot: one multishot receive-from */
  /* The loops' backend, noted when they are made: the statistics at exit
   * come after they are closed. */
  asock_backend backend;
  /* --threads: the group, its loops, and the loop the signals wait on. */
  unsigned int threads;
  asock_group *group;
  echo_loop *loops;
  uv_loop_t signal_loop;
} server;

extern server srv;

/* Serves a new connection on the loop whose counters are n: with one op
 * (--oneshot), else with a multishot receive (echo_serve_multishot()). */
void echo_serve_on(echo_counts *n, asock_socket *client);
void echo_serve_multishot(echo_counts *n, asock_socket *client);
/* The callback of the UDP socket's receive ops. */
void echo_on_udp_op(asock_op *op);
/* The callback of the UDP socket's multishot receive (--multishot). */
void echo_on_udp_delivery(asock_op *rx);

#endif /* ASOCK_ECHO_H */
