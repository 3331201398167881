/* What the programs in docs/examples share, and none of what the guides
 * show: checks that end the program with a message, a deadline that bounds
 * every run, and a TCP client that sends bytes and collects what comes
 * back. The guides' code blocks are excerpts of the programs themselves
 * (scripts/check-snippets holds them to that), so the programs keep this
 * test machinery out of the excerpted functions. */
#ifndef ASOCK_DOCS_HARNESS_H
#define ASOCK_DOCS_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "asock.h"

/* Each ends the program with exit status 1 and a message naming the
 * expression, the file and the line, unless the check holds. Expressions,
 * not statements, so that they read as function calls. */
#define CHECK(expr) hx_check((expr) != 0, #expr, __FILE__, __LINE__)
#define CHECK_INT(expr, want)                                                  \
  hx_check_int((long long)(expr), (long long)(want), #expr, __FILE__, __LINE__)
#define CHECK_MEM(got, want, len)                                              \
  hx_check_mem((got), (want), (len), #got, __FILE__, __LINE__)

void hx_check(int ok, const char *expr, const char *file, int line);
void hx_check_int(long long got, long long want, const char *expr,
                  const char *file, int line);
void hx_check_mem(const void *got, const void *want, size_t len,
                  const char *expr, const char *file, int line);
/* Ends the program with status 1 after printing the message. */
void hx_fail(const char *what);

/* Starts the deadline on the loop: if the program still runs after ms
 * milliseconds, it prints what it was waiting for and exits with status 1,
 * so that no run can hang. One deadline per program. */
void hx_deadline_start(asock_loop *loop, uint64_t ms);
/* Closes the deadline's timer; call it before asock_loop_close(). */
void hx_deadline_stop(void);
/* Runs the loop one iteration at a time until done(arg) is true, waking it
 * every 10 ms when the deadline runs on this loop, so that a condition
 * another thread makes true is seen. */
void hx_run_until(asock_loop *loop, int (*done)(void *arg), void *arg,
                  const char *what);

/* For hx_run_until(): true once the op (an asock_op *) is idle. */
int hx_op_idle(void *op);

/* 127.0.0.1, the given port. */
struct sockaddr_in hx_loopback(int port);
/* The port a socket is bound to. */
int hx_local_port(asock_socket *sock);

/* A client connection with one op for connecting and sending, and a
 * multishot receive that appends whatever arrives to `got`. */
typedef struct hx_client {
  asock_loop *loop;
  asock_socket *sock;
  asock_op *tx;
  asock_op *rx;
  unsigned char *got; /* received and not yet taken by hx_client_expect() */
  size_t got_len;
  size_t got_cap;
  int reading;   /* rx is pending */
  int rx_status; /* rx's final status, once it ended */
} hx_client;

/* Creates the client's socket and ops, so that options can be set before
 * the connect. */
void hx_client_create(hx_client *c, asock_loop *loop);
/* Connects to 127.0.0.1:port and waits for the connect. */
void hx_client_connect(hx_client *c, int port);
/* Starts the multishot receive. */
void hx_client_read(hx_client *c);
/* Sends len bytes and waits until the send completed. */
void hx_client_send(hx_client *c, const void *bytes, size_t len);
/* Waits until len bytes arrived and checks that they are `want`. */
void hx_client_expect(hx_client *c, const void *want, size_t len);
/* Waits until the receive ended and checks its status and that nothing
 * arrived that was not expected. */
void hx_client_expect_end(hx_client *c, int status);
/* Sends the end of the stream (the send side's shutdown). */
void hx_client_shutdown(hx_client *c);
/* Closes the socket, waits for the receive's end and releases the ops. */
void hx_client_close(hx_client *c);

/* Checks that the pool holds no slice and no op beyond `ops`. */
void hx_check_pool_quiet(asock_pool *pool, size_t ops);

#endif
