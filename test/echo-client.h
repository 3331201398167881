/* The client side of asock-echo-check: the loop it runs, waits bounded by
 * a timer, how it reports, and loopback connections that send a byte
 * pattern and check that it comes back. Plain libuv, nothing of asock, so
 * that the server is tested as a black box. */
#ifndef ASOCK_TEST_ECHO_CLIENT_H
#define ASOCK_TEST_ECHO_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define KIB 1024
#define MIB (1024 * 1024)

/* The one loop of the test, and the server's address once it is known. */
extern uv_loop_t ec_loop;
extern struct sockaddr_in ec_server_addr;
/* Set once the server exited without being asked to: a wait for something
 * the server would do then ends at once. */
extern int ec_server_died;

/* The running check's name, and whether it failed. */
extern const char *ec_check_name;
extern int ec_check_failed;

/* Prints a failure of the running check and marks it failed. */
void ec_fail(const char *fmt, ...);
/* Prints a comment line. */
void ec_note(const char *fmt, ...);

/* Initialises ec_loop and the deadline timer, and reads
 * CK_TIMEOUT_MULTIPLIER, which stretches limits as it does check's (the
 * valgrind run sets it). \return 0 or a libuv error. */
int ec_init(void);
/* Closes the deadline timer, runs the loop until every handle closed and
 * closes it. \return 0 or a libuv error. */
int ec_close(void);

/* `ms` stretched by CK_TIMEOUT_MULTIPLIER. */
uint64_t ec_scaled(uint64_t ms);

typedef int (*ec_condition)(const void *arg);
/* Runs the loop until cond(arg) holds, the server died, or `ms` (a limit,
 * stretched) passed. \return cond(arg). */
int ec_run_until(ec_condition cond, const void *arg, uint64_t ms);
/* Runs the loop until cond(arg) holds or `ms` (exactly) passed, whatever
 * the server does: for waits on the test's own handles. */
int ec_run_for(ec_condition cond, const void *arg, uint64_t ms);
/* Runs the loop for `ms`, or until the server died. */
void ec_pause(uint64_t ms);

/* Writes bytes pos to pos + len - 1 of pattern stream `stream` into buf:
 * every (stream, position) has its own byte, so that a lost, repeated or
 * misplaced block shows. */
void ec_fill(unsigned char *buf, size_t len, uint32_t stream, uint64_t pos);

/* How a client of the vanish check goes away. */
typedef enum ec_vanish {
  EC_STAYS,                 /* not one of them */
  EC_VANISH_BEFORE_CONNECT, /* closes before its connect completed */
  EC_VANISH_AT_CONNECT,     /* closes as soon as it connected */
  EC_VANISH_WITH_DATA,      /* sends, then closes at once */
  EC_VANISH_WITH_RESET      /* sends, then resets at once */
} ec_vanish;

/* ec_conn.flags */
#define EC_READ_AT_CONNECT 1u     /* read from the start */
#define EC_SHUTDOWN_AFTER_SEND 2u /* shut down the sending side when sent */
#define EC_SHUTDOWN_AFTER_ECHO 4u /* shut it down once all came back */
#define EC_SMALL_BUFFERS 8u       /* 64 KiB SO_SNDBUF and SO_RCVBUF */
#define EC_SMALL_WRITES 16u       /* writes of 1 to EC_SMALL_WRITE bytes */
/* The pattern as lowercase letters, expected back upper-cased (the
 * asock-workers example), rather than sent and expected as it is. */
#define EC_UPPERCASE_ECHO 32u

/* The largest write of a connection with EC_SMALL_WRITES. */
#define EC_SMALL_WRITE 512

/* One client connection and its progress. It sends `total` bytes of
 * pattern stream `stream`, in writes of random sizes, and checks that what
 * comes back is the same stream from its first byte on (upper-cased, with
 * EC_UPPERCASE_ECHO). */
typedef struct ec_conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  char name[40];
  uint32_t stream;
  uint64_t rng;
  size_t total;     /* bytes to send */
  size_t queued;    /* handed to uv_write() */
  size_t in_flight; /* handed to uv_write(), not yet completed */
  size_t written;   /* in writes that completed */
  size_t received;
  unsigned int flags;
  ec_vanish vanish;
  int opened;         /* its handle is initialised */
  int connect_status; /* 1 while pending */
  int shutdown_sent;
  int reading;
  int eof;
  int read_error;
  int write_error;
  int mismatch; /* a wrong or surplus byte came back (already reported) */
  int closing;
  int closed;
  char rbuf[64 * KIB];
} ec_conn;

/* Allocates the running check's n connections, zeroed; one check at a time
 * has any. \return them, or NULL (reported). */
ec_conn *ec_conns_new(size_t n);
/* Closes the check's connections and frees them. */
void ec_conns_free(void);
/* Conditions over all the check's connections: each has settled (see
 * ec_conn_settled), each has closed. */
int ec_all_settled(const void *arg);
int ec_all_closed(const void *arg);

/* Starts a connection to ec_server_addr. */
void ec_conn_open(ec_conn *c, const char *name, uint32_t stream, size_t total,
                  unsigned int flags);
/* Closes it, with a reset (RST) when asked; once only. */
void ec_conn_close(ec_conn *c, int reset);
/* Starts reading, for a connection opened without EC_READ_AT_CONNECT. */
void ec_conn_read(ec_conn *c);
/* 1 once the connection needs no more waiting for: it ended either way. */
int ec_conn_settled(const ec_conn *c);
/* Fails the check unless the connection sent and got back all its bytes
 * and, with want_eof, then the end of the stream. \return 1 if it did. */
int ec_conn_verify(const ec_conn *c, int want_eof);

#endif /* ASOCK_TEST_ECHO_CLIENT_H */
