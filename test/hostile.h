/* The hostile peers suite's server and clients (hostile-peers.c), for the
 * scenarios in test-hostile.c: an asock echo server and the peers that
 * attack it, on one loop, with every op they start counted. */
#ifndef ASOCK_TEST_HOSTILE_H
#define ASOCK_TEST_HOSTILE_H

#include "tcp-util.h"

#define SLICE 4096
#define SLICES 1024
#define QUOTA 3
#define SRV_OPS 4 /* ops per server connection, each receive then send */
#define MAX_CONNS 2048
#define MAX_CLIENTS 2048
#define MAX_ACCEPTS 8
#define MSG_MAX 512
#define REQ 512 /* the normal client's request */
#define SEND_LOW 2048
#define SEND_HIGH 4096
#define SEND_CAP 8192
#define BOUND_MS 10000 /* the bound on every normal round trip */

typedef struct hop {
  asock_op *op;
  void *owner;
  int pending; /* started with ASOCK_PENDING, callback still to come */
} hop;

/* How server ops ended, by status. */
enum { ST_OK, ST_EOF, ST_RESET, ST_CANCELED, ST_TIMEDOUT, ST_PIPE, ST_OTHER };

typedef struct conn {
  asock_socket *sock;
  hop h[SRV_OPS];
  hop *parked[SRV_OPS]; /* received, waiting for room to send, in order */
  int nparked;
  int live;
  int closed;
  int end_status; /* what ended it */
  unsigned short port;
  uint64_t received;
  uint64_t echoed;
  int receives;
  size_t max_held; /* most slices seen held by the socket */
} conn;

enum { K_NORMAL, K_DRIP, K_GREEDY, K_VANISH, K_STORM, K_FLOOD };

typedef struct client {
  int kind;
  uint32_t stream;
  asock_socket *sock;
  hop c; /* connect, then sends */
  hop r; /* receives */
  int closed;
  int connect_status; /* 1 until the connect completes */
  int end_status;     /* the status that ended its receives */
  unsigned short port;
  size_t msg_len; /* bytes of the message to send and see echoed */
  size_t sent;
  size_t got;
  int served; /* the whole echo came back, byte for byte */
  int rounds; /* the normal client's round trips */
  uint64_t round_start;
  uint64_t worst_ms;
  int drip_ready;
  unsigned char out[MSG_MAX];
  unsigned char in[MSG_MAX];
} client;

#define GREEDY_TOTAL (4u << 20)

typedef int (*cond_fn)(void);

/* How the server's receives, sends and accepts ended, by ST_*; the last
 * status none of them names. */
extern int hx_srv_recv_st[ST_OTHER + 1];
extern int hx_srv_send_st[ST_OTHER + 1];
extern int hx_accept_st[ST_OTHER + 1];
extern int hx_other_status;
/* The server's connections: every one accepted, those still open. */
extern conn hx_conns[MAX_CONNS];
extern int hx_nconns;
extern int hx_conns_accepted;
extern int hx_conns_live;
/* Server sends the cap refused with ASOCK_ENOBUFS, parked to go again. */
extern int hx_enobufs;
extern asock_socket *hx_listener;
/* The timeout, in ms, the server gives its ops (0: none). */
extern uint64_t hx_srv_recv_timeout;
/* The most slices the pool had in use at any sample. */
extern size_t hx_worst_slices;
/* The clients, the normal one first. */
extern client *hx_clients;
extern int hx_nclients;
extern client *hx_normal;

/* The pool (SLICES slices of SLICE bytes, the quota QUOTA), the loop, and
 * every counter cleared. */
void hx_setup(void);
/* Starts the server and the normal client, and waits for its first echo. */
void hx_start(int backlog, int accept_ops);
/* A client of the given kind, connecting; msg_len bytes to echo. */
client *hx_cli_new(int kind, size_t msg_len);
/* Sends out[sent, sent + len). */
void hx_cli_send(client *cl, const unsigned char *mem, size_t len);
/* Posts the client's next receive. */
void hx_cli_recv(client *cl);
void hx_cli_close(client *cl, unsigned int flags);
/* The server's side of a client's connection (the latest, should the
 * kernel have given the port out again), or NULL. */
conn *hx_conn_of(const client *cl);
void hx_srv_close_listener(void);
/* Closes the server's side of a connection, ending it with `status`. */
void hx_srv_close_conn(conn *c, int status);
/* Bytes that wait in the OS socket of a server connection, read by no
 * receive yet. */
unsigned long hx_conn_unread(const conn *c);
asock_pool_stats hx_pool_stats(void);
/* Runs the loop, sampling the server's state every turn, until cond()
 * holds or ms pass; \return cond(). */
int hx_run_until(cond_fn cond, uint64_t ms);
/* A condition that never holds, to run for a while. */
int hx_never(void);
/* The normal client was served through the hostile phase: at least `n`
 * more round trips since `from`, each within the bound; those the phase
 * left to come are waited for. */
void hx_assert_normal_served(int from, int n);
/* Closes everything, waits until every op has completed, checks that each
 * did exactly once, and gives everything back. */
void hx_finish(void);

#endif /* ASOCK_TEST_HOSTILE_H */
