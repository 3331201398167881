/* What the two halves of asock-soak share: soak.c (the pattern, the ops,
 * the server, the measurements, main) and soak-clients.c (the clients). */
#ifndef ASOCK_TEST_SOAK_H
#define ASOCK_TEST_SOAK_H

#include <stdint.h>
#include <stdio.h>

#include "asock.h"

#define SLICE 4096
#define QUOTA 4
#define ACCEPTS 16
#define MAX_CHUNK 16384
#define MAX_TOTAL (256u * 1024)
#define HDR 12
#define SRV_TIMEOUT_MS 3000
/* The pattern: every stream reads the same random table from an offset of
 * its own. The table is longer than any stream, so that a block lost or
 * repeated shows, and is followed by a copy of its start, so that any
 * window of up to MAX_CHUNK bytes is contiguous. */
#define TABLE 1048573u /* a prime above every stream's length */

enum { M_GRACEFUL, M_HALFCLOSE, M_RESET, M_QUIET, M_CANCEL, M_TIMEOUT, M_N };
extern const char *const mode_names[M_N];

extern asock_pool *pool;
extern asock_loop *loop;
extern struct sockaddr_storage srv_addr;
extern int stopping;
extern uint64_t counts[M_N];
extern uint64_t bytes_echoed;
extern uint64_t conns_done;
extern uint64_t client_timeouts;
extern uint64_t recv_cancels;

/* Records a failure (the first 20 are printed). */
void fail(const char *fmt, ...);
/* The run's random numbers (xorshift, seeded by --seed). */
uint64_t next_rand(void);
size_t rand_between(size_t lo, size_t hi);
/* The stream pattern from `pos` of the stream at table offset `off`. */
const unsigned char *pattern(uint32_t off, uint64_t pos);
/* Whether `len` received bytes are the stream's from `pos` on. */
int matches(const unsigned char *buf, size_t len, uint32_t off, uint64_t pos);
uint64_t now_ms(void);

/* An op that must complete exactly once per start. */
typedef struct hop {
  asock_op *op;
  void *owner;
  int pending;
} hop;
int hop_started(hop *h, int r, const char *what);
hop *hop_completed(asock_op *op);
int hop_init(hop *h, void *owner, asock_op_cb cb);
void hop_release(hop *h);

/* A client slot, running one connection after another. */
typedef struct client {
  asock_socket *sock;
  hop c; /* connect, sends, disconnect */
  hop r; /* receives */
  int mode;
  int live;
  int closed;
  int sending_done; /* no more sends will start */
  int ended;        /* its receives ended (EOF, reset, cancel...) */
  int final_probe;  /* the last receive, which must time out */
  int disconnecting;
  int cancelling;
  uint64_t waiting_since; /* went quiet, or started its last receive */
  uint32_t off;
  uint32_t total;
  uint64_t sent;    /* pattern bytes the kernel took */
  uint64_t sending; /* pattern bytes of the send still pending: the peer
                     * may echo some before it completes */
  uint64_t echoed;  /* pattern bytes read back */
  uint64_t stop_at; /* a reset or quiet client stops sending here */
  uint64_t cancel_at;
  size_t hdr_sent;
  size_t hdr_got;
  unsigned char hdr[HDR];
} client;
extern client *clients;
extern int nclients;
/* Starts the slot's next connection (or ends the slot when stopping). */
void client_next(client *cl);
/* The callback of both of a client's ops. */
void client_cb(asock_op *op);
/* Closes the slot's socket once (flags as for asock_socket_close()). */
void client_close(client *cl, unsigned int flags);
/* Checks a connection that may be over, and starts the next. */
void client_maybe_done(client *cl);

#endif /* ASOCK_TEST_SOAK_H */
