/* The fault injection sweep's runs and scenarios (builds with
 * ASOCK_FAULT_INJECTION only): fault-run.c keeps the state of one run in
 * its child process and checks what it leaves, fault-scenarios.c has the
 * scenarios, and test-faults.c sweeps them from the parent. */
#ifndef ASOCK_TEST_FAULT_RUN_H
#define ASOCK_TEST_FAULT_RUN_H

#include "internal.h"
#include "tcp-util.h"
#include "test.h"

enum {
  FX_OPS = 64,
  FX_SOCKS = 64,
  FX_MSG = 64,
  FX_ROUNDS = 2,
  FX_TAKEN = 64 /* slices the scenario may hold at once (the pool's) */
};

typedef struct fx_rec fx_rec;
typedef void (*fx_done_fn)(fx_rec *rec);

/* What the run saw of one op. */
struct fx_rec {
  asock_op *op;     /* NULL once the scenario released it */
  const char *what; /* for messages */
  int pending;      /* starts that returned ASOCK_PENDING */
  int calls;        /* final callbacks */
  int deliveries;   /* a multishot receive's deliveries */
  fx_done_fn done;  /* the scenario's continuation, for both */
  void *ctx;
};

/* The state of one run, in the child. */
typedef struct fx_state {
  asock_pool *pool;
  asock_loop *loop;
  uv_timer_t tick; /* keeps each UV_RUN_ONCE short */
  int tick_open;
  uv_mutex_t lock; /* recs and socks: group threads add to them */
  fx_rec recs[FX_OPS];
  int nrecs;
  asock_socket *socks[FX_SOCKS];
  unsigned char closed[FX_SOCKS];
  int nsocks;
  asock__atomic_u64 progress; /* callbacks so far, on any thread */
  asock__atomic_u32 failed;
  char failure[400];
  int complete;          /* the scenario ran to its end without an error */
  int stalls;            /* runs that ended because nothing completed */
  int faulty;            /* a call is armed to fail */
  size_t quota;          /* the pool's socket_quota for the scenario */
  void *taken[FX_TAKEN]; /* slices the scenario took out of its ops */
  int ntaken;
} fx_state;

extern fx_state fx;

/* Marks the run failed with the first message given; any thread. */
void fx_fail(const char *fmt, ...);
/* A status or return code must be 0 or an error asock names. */
void fx_check_code(int code, const char *what, const char *where);
/* An op whose completions are counted; NULL (and the run failed) if the
 * pool has none. Any thread. A multishot receive's deliveries reach done()
 * too, with asock_op_more() 1. */
fx_rec *fx_op(const char *what, fx_done_fn done, void *ctx);
/* Gives an idle op back to the pool before the run ends (it must have
 * completed every start); its record is used again. Loop thread. */
void fx_op_release(fx_rec *rec);
/* Takes the slice holding the op's data (asock_op_detach_slice()): the
 * slice, with *off and *len, or NULL (and the run failed) if it could not.
 * The run fails if the scenario has not given it back by its end. */
void *fx_take(fx_rec *rec, size_t *off, size_t *len);
/* Gives a taken slice back to the pool. */
void fx_give_back(void *slice);
/* Records what starting an op returned, and returns it. */
int fx_started(fx_rec *rec, int r, const char *call);
/* Adds a socket to those fx_end() closes. */
void fx_track(asock_socket *sock);
/* Closes a socket of the test loop's once. */
void fx_close(asock_socket *sock);
/* 1 if a tracked socket was closed: its pointer must not be used. */
int fx_closed(const asock_socket *sock);
/* Marks a socket the scenario closed itself. */
void fx_track_closed(asock_socket *sock);
/* Runs the test loop until done() holds, nothing completes for a while, or
 * a hard limit passes: 1 if done() held. */
int fx_run(int (*done)(void));
/* 1 once every counted op that pended has completed. */
int fx_all_completed(void);
/* Clears the run's state and counts asock's allocations from now on. */
void fx_reset(void);
/* Pool and loop: 0, or the run is over. */
int fx_begin(void);
/* Closes everything and checks what a run must leave. */
void fx_end(void);

/* The scenarios (fault-scenarios.c), each run on fx's loop. */
void fx_scenarios_reset(void);
void scenario_echo(void);
void scenario_connect_host(void);
void scenario_bulk(void);
void scenario_udp(void);
void scenario_group_balanced(void);
void scenario_group_handoff(void);

/* What the multishot scenarios (fault-multishot.c, fault-relay.c) share
 * with the others (fault-scenarios.c). */
unsigned char fx_byte(int conn, size_t pos);
/* A listener on 127.0.0.1 whose connections go to serve(); 0, or the
 * run is over. Keeps two accepts posted. */
int fx_listen_with(struct sockaddr_storage *addr,
                   void (*serve)(asock_socket *));
/* A UDP socket of fx's loop bound to 127.0.0.1 on a port of its own, whose
 * address goes to addr; NULL (the run failed where it should) if a call
 * failed. */
asock_socket *fx_udp_socket(struct sockaddr_storage *addr, const char *what);
/* Cancels an op if it is pending. */
void fx_cancel(fx_rec *rec);

/* fault-multishot.c: an echo server connection served by one multishot
 * receive and one send op, and clients that stream to a server and check
 * what comes back. */
void fm_serve(asock_socket *sock);
int fm_servers_ended(void);
void fm_client_start(int id, const struct sockaddr_storage *addr,
                     int multishot);
/* A slice was taken from sock's receive: at its quota, the clients read. */
void fm_taken_from(asock_socket *sock);
int fm_clients_done(void);
int fm_clients_ok(void);
void fm_reset(void);
void scenario_multishot(void);
void scenario_udp_multishot(void);
/* fault-relay.c. */
void scenario_relay(void);
/* fault-packets.c: sends of packets, a file range between two buffers. */
void scenario_packets(void);

#endif /* ASOCK_TEST_FAULT_RUN_H */
