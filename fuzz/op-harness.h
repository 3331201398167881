/* The fuzz-op target's harness: its state (one loop, a TCP pair, two UDP
 * sockets and a listener, the ops, every byte sent, the sequence numbers
 * each counter handed out and the slices the application took), the
 * completions and deliveries and what they must show, the sockets, and the
 * checks between steps. fuzz-op.c starts operations and runs the steps an
 * input chooses; op-deliver.c is the ops' callback; op-ledger.c keeps the
 * numbers and the taken slices. */
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
/* Slices the application may hold at once (more than any pool has). */
#define MAX_DETACHED 64

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

/* The numbers one counter of one socket (of one generation of the socket)
 * handed out, as the harness saw them. Each counter starts at 1 and has no
 * gaps, so once every number taken has been seen they are 1..max. */
typedef struct seqset {
  unsigned char *seen; /* bit n: number n was seen */
  size_t cap;          /* bits */
  uint64_t count;
  uint64_t max;
  uint64_t last_ok; /* receives: the last that completed or was delivered
                     * with data (they do so in order) */
  int sock;
  int receives; /* the receive counter, not the send counter */
} seqset;

typedef struct fsock {
  asock_socket *s; /* NULL once closed */
  int disconnecting;
  int read_ended; /* a receive saw the end of the stream or an error */
  seqset *rx;     /* receives, receive-froms, accepts */
  seqset *tx;     /* sends, send-tos, connects, disconnects */
  unsigned short port;
  /* UDP: the last serial received from each UDP socket, per generation. */
  uint32_t last_serial[2];
  unsigned int gen;
} fsock;

typedef struct fop {
  asock_op *op;    /* NULL while released */
  asock_op *stale; /* the op it released last */
  int pending;     /* started with ASOCK_PENDING, no final callback yet */
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
  /* Receives. */
  seqset *rx;            /* the counter its numbers come from */
  uint64_t start_seq;    /* a one-shot receive's number, taken at its start */
  uint8_t plan;          /* what its callbacks do (op-deliver.c) */
  int multishot;         /* the current receive was started multishot */
  int ms_live;           /* a multishot receive of it still holds its socket's
                          * receive side: other receives there are refused */
  int cancelled;         /* cancelled while pending: no delivery may follow */
  int ended_in_delivery; /* cancelled, or its socket closed, inside one of
                          * its deliveries: the final is ASOCK_ECANCELED */
  int deliveries;        /* of the current multishot receive */
  unsigned char buf[BUF_MAX];
  asock_buf list[3];
} fop;

/* A slice the application took with asock_op_detach_slice(). */
typedef struct detached {
  void *slice;
  size_t off;
  size_t len;
  uint32_t sum; /* of its bytes when taken: nothing may change them */
  int sock;
  unsigned int gen;
  int charged; /* 1: counted against its socket; 0: not; -1: unknown */
} detached;

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
  int tearing;  /* the input's steps are over: callbacks only check */
  uint32_t rng; /* choices inside callbacks, seeded by the input */
  struct sockaddr_storage listen_addr;
  struct sockaddr_storage udp_addr[2];
  detached taken[MAX_DETACHED];
  int ntaken;
  seqset **sets; /* every counter of the input, for the end */
  size_t nsets;
  size_t sets_cap;
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
int fo_is_receive(asock_op_kind kind);
/* A start's result for the trace. */
const char *fo_result_name(int r);
/* The next choice inside a callback. */
uint32_t fo_rand(void);

/* Runs the loop until cond() holds or ms pass; \return cond(). */
typedef int (*cond_fn)(void);
int fo_run_until(cond_fn cond, uint64_t ms);

/* The direction a socket's sends go in, or -1 for a socket not of the
 * pair. */
int fo_dir_out(int sock);
/* What an operation's end, synchronous or through the callback, or a
 * multishot receive's delivery, must look like, and what it means for the
 * streams. */
void fo_finished(fop *f, int status, size_t bytes);

/* The sockets: the TCP pair (its buffers shrunk or not), a UDP socket, the
 * listener; a close, FIN or RST. */
void fo_open_pair(int shrink);
void fo_open_udp(int sock);
void fo_open_listener(void);
void fo_close_socket(int sock, int abortive);
/* 1 while the socket the op last used is open in the same generation. */
int fo_same_socket(const fop *f);

/* Between steps: asock_op_is_pending() and asock_op_more() agree with the
 * bookkeeping, and each counter with no number outstanding is whole. */
void fo_check_pending(void);
/* 1 when no op is pending. */
int fo_none_pending(void);
/* 1 while a multishot receive holds the receive side of socket `sock`. */
int fo_multishot_on(int sock);
/* While nothing cut the connection short, every byte of every send must
 * arrive: reads on the receiving end until the streams match. */
void fo_drain(int dir);

/* Starting (fuzz-op.c): prepares an idle op's buffer for an operation of
 * this kind as the bytes say, and starts it with every check. */
void fo_prepare(fop *f, asock_op_kind kind, int sock, fz_input *in);
void fo_start_op(fop *f, asock_op_kind kind, int sock);
/* Makes an idle op multishot or not; \return 1 if it is now as asked. */
int fo_set_multishot(fop *f, int enable);

/* The callbacks (op-deliver.c). */
void fo_op_done(asock_op *op);
/* After a synchronous completion: what its plan says to do with the op. */
void fo_after_sync(fop *f);

/* The ledger (op-ledger.c). A counter for a new socket. */
seqset *fo_seq_new(int sock, int receives);
/* A number seen at the moment it was taken (a start, a delivery): above
 * every number seen before, and new. */
void fo_seq_taken_now(seqset *set, uint64_t seq, const char *what);
/* A number taken earlier (a multishot receive's final completion): new. */
void fo_seq_seen(seqset *set, uint64_t seq, const char *what);
/* Every number taken has been seen: they are 1..max. */
void fo_seq_check_whole(const seqset *set);
/* Takes the op's slice as the application; \return 1 if it held one. */
int fo_detach(fop *f, int in_delivery);
/* Gives back taken slice i, checking its bytes are untouched. */
void fo_release_taken(int i);
void fo_release_all_taken(void);
/* Frees the counters, each checked whole first. */
void fo_ledger_end(void);

#endif /* ASOCK_FUZZ_OP_HARNESS_H */
