/* The fuzz-op target's harness: its state (one loop, a TCP pair, two UDP
 * sockets and a listener, the ops, and every byte sent), the completions
 * and what they must show, the sockets, and the checks between steps.
 * fuzz-op.c starts operations and runs the steps an input chooses. */
#ifndef ASOCK_FUZZ_OP_HARNESS_H
#define ASOCK_FUZZ_OP_HARNESS_H

#include "fuzz.h"

#define NOPS 6
#define BUF_MAX 65536
#define MAX_SENDS 512
/* Sockets: the TCP pair, the two UDP sockets, the listener. */
enum { S_CLIENT, S_SERVER, S_UDP0, S_UDP1, S_LISTENER, NSOCKS };
#define MAX_STEPS 256
/* Milliseconds one input may spend in loop runs it asks for. */
#define RUN_BUDGET_MS 30
/* Where the contract promises progress: a miss is a finding. */
#define DEADLINE_MS 5000

/* One direction of the TCP pair: the sends posted on it, in posting order,
 * and the bytes received and not yet matched to them. */
typedef struct send_rec {
  uint32_t serial;
  size_t len;
  int done;
  int status;
  size_t moved;
} send_rec;

typedef struct stream {
  send_rec sends[MAX_SENDS];
  size_t nsends;
  size_t cur;     /* the send the next received byte belongs to */
  size_t cur_off; /* and its offset in it */
  int ended;      /* a failed send ended the stream: nothing may follow */
  unsigned char *rx;
  size_t rx_len;
  size_t rx_pos;
  size_t rx_cap;
  uint64_t received;
} stream;

typedef struct fsock {
  asock_socket *s; /* NULL once closed */
  int disconnecting;
  uint64_t last_seq;      /* the last sequence number an op started with */
  uint64_t last_recv_seq; /* of the last receive that succeeded */
  unsigned short port;
  /* UDP: the last serial received from each UDP socket, per generation. */
  uint32_t last_serial[2];
  unsigned int gen;
} fsock;

typedef struct fop {
  asock_op *op;    /* NULL while released */
  asock_op *stale; /* the op it released last */
  int pending;     /* started with ASOCK_PENDING, no callback yet */
  asock_op_kind kind;
  int sock;
  unsigned int gen;
  int canceled_by_close; /* its socket was closed while it was pending */
  size_t send_index;     /* SEND: in the direction's stream */
  size_t want_len;       /* SEND, SENDTO: the bytes it moves */
  size_t window;         /* receives: the window, 0 for on-demand */
  int rearm;             /* restarts left from its own callback */
  int has_list;          /* a gather list is set */
  uint8_t prep[3];       /* the bytes prepare() read, for the restarts */
  unsigned char buf[BUF_MAX];
  asock_buf list[3];
} fop;

typedef struct harness {
  asock_pool *pool;
  asock_loop *loop;
  uv_timer_t tick;
  fsock socks[NSOCKS];
  fop ops[NOPS];
  asock_op *helper[3]; /* connect, accept, drain */
  int helper_calls[3];
  stream dirs[2];  /* 0: client to server, 1: server to client */
  int pair_intact; /* nothing cut the current connection short */
  uint32_t serial; /* of the next send or datagram */
  uint64_t tcp_bytes;
  uint64_t run_ms;
  struct sockaddr_storage listen_addr;
  struct sockaddr_storage udp_addr[2];
} harness;

extern harness h;
/* ASOCK_FUZZ_TRACE set in the environment: every start and its result is
 * printed, to read what a saved input does. */
extern int trace;
/* Set around every asock call the harness makes, except loop runs. */
extern int in_call;

/* The pattern of send `serial` at offset `off`, written into p. */
void fo_fill(unsigned char *p, size_t len, uint32_t serial, size_t off);
void fo_put32(unsigned char *p, uint32_t v);
int fo_is_udp(int sock);
/* A start's result for the trace. */
const char *fo_result_name(int r);

/* Runs the loop until cond() holds or ms pass; \return cond(). */
typedef int (*cond_fn)(void);
int fo_run_until(cond_fn cond, uint64_t ms);

/* The direction a socket's sends go in, or -1 for a socket not of the
 * pair. */
int fo_dir_out(int sock);
/* What an operation's end, synchronous or through the callback, must look
 * like, and what it means for the streams. */
void fo_finished(fop *f, int status, size_t bytes);

/* The sockets: the TCP pair (its buffers shrunk or not), a UDP socket, the
 * listener; a close, FIN or RST. */
void fo_open_pair(int shrink);
void fo_open_udp(int sock);
void fo_open_listener(void);
void fo_close_socket(int sock, int abortive);

/* Between steps: asock_op_is_pending() agrees with the bookkeeping. */
void fo_check_pending(void);
/* 1 when no op is pending. */
int fo_none_pending(void);
/* While nothing cut the connection short, every byte of every send must
 * arrive: reads on the receiving end until the streams match. */
void fo_drain(int dir);

#endif /* ASOCK_FUZZ_OP_HARNESS_H */
