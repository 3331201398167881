/* What the TCP loopback tests share: one pool and one loop per test, ops
 * whose completions are recorded, wrappers that flag the time spent inside
 * an asock call (so that a callback run from inside one is caught), a loop
 * runner that always returns, connected pairs, an echo server and byte
 * patterns that make a misplaced byte visible. */
#ifndef ASOCK_TEST_TCP_UTIL_H
#define ASOCK_TEST_TCP_UTIL_H

#include "test.h"

/* The pool and loop of the running test; tu_loop is NULL once closed. */
extern asock_pool *tu_pool;
extern asock_loop *tu_loop;

/* A time limit in milliseconds, stretched by CK_TIMEOUT_MULTIPLIER as
 * check's own timeouts are (valgrind runs set it). */
uint64_t tu_ms(uint64_t ms);
/* Milliseconds since an arbitrary start, monotonic. */
uint64_t tu_now_ms(void);

/* Installs the counting allocator (test.h) and creates tu_pool (with
 * config, or a small default shape when NULL) and an owned tu_loop. */
void tu_setup_with(const asock_pool_config *config);
/* tu_setup_with() a pool of `slices` slices of slice_size bytes, 128 ops,
 * the given socket quota and ASOCK_POOL_* flags. */
void tu_setup_pool(size_t slice_size, size_t slices, size_t quota,
                   unsigned int flags);
/* Fixture setup: tu_setup_with(NULL). */
void tu_setup(void);
/* Fixture teardown: closes the loop if still open, releases every op
 * tu_op() gave (each must be idle by then), checks that the pool is empty,
 * destroys it and checks that no asock allocation is left. */
void tu_teardown(void);
/* Closes tu_loop (asock_loop_close) and returns what that returned; the
 * test's own timer is closed first. tu_loop is NULL afterwards. */
int tu_close_loop(void);
/* Closes tu_loop and makes it again over tu_pool with config: 0, or what
 * asock_loop_create_config() returned (tu_loop is NULL then). */
int tu_reopen_loop(const asock_loop_config *config);
/* The slices a loop lends the kernel as provided buffers on the io_uring
 * backend (out of the pool, though not in use), 0 on any other: what the
 * pool's high-water mark counts besides the slices ops and the
 * application took. */
size_t tu_lent(const asock_loop *loop);

/* What the completions of one op looked like. */
typedef struct tu_record {
  int calls;          /* callbacks run for this op */
  int status;         /* status seen by the last callback */
  size_t bytes;       /* bytes seen by the last callback */
  int order;          /* position of the last callback among all, 1-based */
  asock_op_kind kind; /* last kind seen by the callback */
  uint64_t seq;       /* sequence number seen by the last callback */
} tu_record;

/* Callbacks run so far for the ops tu_op() gave (the helpers' own ops and
 * the echo server's are not counted). */
extern int tu_completions;

/* Acquires an op from tu_pool whose callback is tu_note() and whose user
 * data is a fresh record; teardown releases it. */
asock_op *tu_op(void);
/* The record of an op tu_op() gave. */
tu_record *tu_rec(const asock_op *op);
/* Records a completion and checks what every callback must see: not inside
 * a starting call, the op idle, not marked synchronous. A test's own
 * callback calls it first. */
void tu_note(asock_op *op);

/* The asock calls that start operations, with the "inside a call" flag set
 * around them. */
int tu_accept(asock_socket *listener, asock_op *op);
/* tu_accept() for a connection that is coming: waits for it if the accept
 * is pending, asserts that it succeeded and returns the accepted socket. */
asock_socket *tu_accept_done(asock_socket *listener, asock_op *op);
int tu_connect(asock_socket *sock, asock_op *op);
int tu_connect_host(asock_socket *sock, asock_op *op, const char *host,
                    unsigned short port);
int tu_send(asock_socket *sock, asock_op *op);
int tu_receive(asock_socket *sock, asock_op *op);
int tu_disconnect(asock_socket *sock, asock_op *op);
int tu_shutdown(asock_socket *sock, asock_op *op);
int tu_send_packets(asock_socket *sock, asock_op *op);
int tu_send_to(asock_socket *sock, asock_op *op);
int tu_receive_from(asock_socket *sock, asock_op *op);
int tu_receive_message_from(asock_socket *sock, asock_op *op);
int tu_cancel(asock_op *op);
int tu_close(asock_socket *sock, unsigned int flags);
/* 1 while one of the wrappers above is inside its asock call. */
int tu_inside_call(void);

/* Runs the loop until cond(arg) holds or `ms` (stretched) pass; a timer
 * keeps each iteration short. \return cond(arg). */
typedef int (*tu_cond)(const void *arg);
int tu_run_until(tu_cond cond, const void *arg, uint64_t ms);
/* Runs until *counter >= n, for at most 10 s (stretched). \return 1 if it
 * got there. */
int tu_wait_count(const int *counter, int n);
/* Runs until the op's record has at least n calls, at most 10 s. */
int tu_wait_calls(const asock_op *op, int n);
/* Runs until the op is idle, at most 10 s. */
int tu_wait_idle(const asock_op *op);
/* Runs the loop for about ms milliseconds (not stretched). */
void tu_run_for(uint64_t ms);

/* Fills a sockaddr_storage from a numeric IPv4 or IPv6 address. */
void tu_addr(const char *ip, unsigned short port, struct sockaddr_storage *ss);
unsigned short tu_port(const struct sockaddr_storage *ss);
/* 1 if two socket addresses have the same family, address and port. */
int tu_same_addr(const struct sockaddr *a, const struct sockaddr *b);
/* Binds h, a plain libuv handle, to a free port on ip without listening
 * and returns the port: a connection to it is refused. A port that was
 * merely free a moment ago is not enough: another socket may take it, and
 * if the connecting socket itself is given it, TCP connects the socket to
 * itself. Bound, the port stays out of reach until tu_close_uv(h). */
unsigned short tu_bind_unlistened(const char *ip, uv_tcp_t *h);
/* Closes h and runs the loop until its close callback has run. */
void tu_close_uv(uv_tcp_t *h);
/* 1 if a plain libuv TCP handle can bind ::1. */
int tu_ipv6_available(void);

/* A listening socket on ip, port 0; its address goes to addr. */
asock_socket *tu_listen(const char *ip, struct sockaddr_storage *addr);

/* A connected pair over loopback. */
typedef struct tu_pair {
  asock_socket *listener; /* NULL when the pair was made on another's */
  asock_socket *client;
  asock_socket *server;         /* the accepted socket */
  struct sockaddr_storage addr; /* the listener's address */
} tu_pair;

/* Makes the kernel buffer little between sender and receiver (SO_SNDBUF
 * and SO_RCVBUF of 16 KiB), so that a receiver that does not read soon
 * leaves the sender's bytes queued in asock. */
void tu_shrink_buffers(asock_socket *sender, asock_socket *receiver);

/* A new listener on ip and one connection to it. */
void tu_pair_open(tu_pair *p, const char *ip);
/* One more connection to an existing listener. */
void tu_pair_connect(tu_pair *p, asock_socket *listener,
                     const struct sockaddr_storage *addr);

/* The test pattern: byte `pos` of stream `stream`. Depends on every bit of
 * pos that matters for a few MiB, so that a lost, repeated or reordered
 * block shows. */
unsigned char tu_byte(uint32_t stream, uint64_t pos);
void tu_fill(unsigned char *buf, size_t len, uint32_t stream, uint64_t pos);
/* Index of the first byte that differs from the pattern, or len. */
size_t tu_mismatch(const unsigned char *buf, size_t len, uint32_t stream,
                   uint64_t pos);

/* Points an op at the whole of len bytes of caller memory. */
void tu_set_buffer(asock_op *op, void *mem, size_t len);

/* Sends len bytes and runs the loop until the send completed, asserting
 * that it moved every byte. */
void tu_send_all(asock_socket *sock, const void *buf, size_t len);
/* Whether the test loop's backend completes a send the kernel can take
 * inside asock_send() (readiness, IOCP); on io_uring every send completes
 * through its callback, submitted once per loop iteration
 * (docs/backends.md). */
int tu_sends_inline(void);
/* tu_send() of a send the kernel takes whole at once, the op one of
 * tu_op()'s: where sends complete inline it must return 0; on io_uring it
 * must return ASOCK_PENDING, and the callback is waited for. eturn 0 then,
 * else what the start returned; the op's results are the send's. */
int tu_send_whole(asock_socket *sock, asock_op *op);
/* Writes len bytes straight on the socket's OS socket, without running the
 * loop: for a test whose loop must not run before the peer has data. */
void tu_os_send(asock_socket *sock, const void *buf, size_t len);
/* Receives exactly len bytes, running the loop as needed. */
void tu_recv_exact(asock_socket *sock, void *buf, size_t len);
/* Receives until a receive ends with a non-zero status, checking each byte
 * against the pattern from `pos` on; at most `limit` bytes. \return the
 * final status; *got receives the byte count. */
int tu_recv_to_end(asock_socket *sock, uint32_t stream, uint64_t pos,
                   size_t limit, size_t *got);

/* Echo server on a socket: buffer-less receives, each slice sent back with
 * the same op, until the end of the stream (then the socket is closed) or
 * an error. */
typedef struct tu_echo_stats {
  int started;
  int ended;          /* connections whose echo finished */
  int eof;            /* of which by ASOCK_EOF */
  int canceled;       /* of which by ASOCK_ECANCELED */
  int errors;         /* of which by another status or a failed start */
  int last_error;     /* the last such status */
  uint64_t bytes;     /* echoed */
  int quota_exceeded; /* times slices_held went past the pool's quota */
  size_t quota;       /* the quota to check, 0 for none */
} tu_echo_stats;
extern tu_echo_stats tu_echo;
void tu_echo_start(asock_socket *sock);

#endif /* ASOCK_TEST_TCP_UTIL_H */
