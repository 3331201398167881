/* guide-framed: a length-prefixed protocol served over asock; the guide's
 * chapter "Framed protocols" quotes it.
 *
 * A message is a 4-byte big-endian length and that many bytes of payload.
 * The server answers each message with the 4-byte big-endian FNV-1a hash of
 * its payload, so that every answer shows where the server found the
 * message's boundaries, not merely its bytes. Each connection has one
 * receive op, one-shot and without a buffer of its own, and one send op
 * for the answers; the receive is posted again once the answers to the
 * last one are sent, as a SocketAsyncEventArgs server does.
 *
 * The cases a framed reader must handle, each forced by the client in
 * main(), which runs the loop between the pieces it sends so that the
 * server sees them apart, and checks every answer and the server's counts:
 *   - several messages in one receive: each is answered, in one send;
 *   - an incomplete message at the end of a receive (a part of its payload,
 *     or of its length): kept at the start of the slice, the rest received
 *     after it;
 *   - a message larger than a slice: received into a buffer of the
 *     application's own, sized from its length prefix;
 *   - a length beyond MAX_MESSAGE: the connection is reset. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Small, so that a message of a few KiB is larger than a slice. */
#define SLICE_SIZE 1024
#define HEADER 4
/* A length prefix above this is a protocol error, not an allocation. */
#define MAX_MESSAGE (1u << 20)

typedef struct conn {
  asock_socket *sock;
  asock_op *rx;
  asock_op *tx;
  size_t kept;        /* bytes of an incomplete message at rx's slice start */
  unsigned char *big; /* a message larger than a slice, being received */
  size_t big_len;
  size_t big_have;
  /* One receive's answers. A message takes at least HEADER bytes of a
   * receive of at most SLICE_SIZE and is answered with 4, so they fit. */
  unsigned char answers[SLICE_SIZE];
  size_t answers_len;
} conn;

/* What the server did, for main() to check. */
static struct {
  unsigned long messages;
  unsigned long most_in_one_receive;
  unsigned long tails_kept;
  unsigned long big_messages;
  unsigned long protocol_errors;
  unsigned long ended;
} served;

static asock_pool *pool;
static asock_socket *listener;

static uint32_t get_u32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

static uint32_t fnv1a(const unsigned char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

/* Queues the answer to one whole message. */
static void answer(conn *c, const unsigned char *payload, size_t len) {
  put_u32(c->answers + c->answers_len, fnv1a(payload, len));
  c->answers_len += 4;
  served.messages++;
}

/* Starts receiving a message larger than a slice into a buffer of its own:
 * the part that came is copied there, and the op's window is the rest, so
 * that no receive reads past the message's end. */
static int start_big(conn *c, const unsigned char *msg, size_t have,
                     size_t len) {
  c->big = malloc(len);
  if (c->big == NULL)
    return ASOCK_ENOMEM;
  c->big_len = len;
  c->big_have = have - HEADER;
  memcpy(c->big, msg + HEADER, c->big_have);
  c->kept = 0;
  /* The slice goes back to the pool: its bytes are copied. */
  return asock_op_set_buffer(c->rx, c->big, len, c->big_have,
                             len - c->big_have);
}

/* Answers every whole message a receive into a slice completed with, and
 * sets rx up for the next receive: without a buffer when nothing is left
 * over, or with the incomplete message kept at the start of the slice and
 * the window after it. */
static int on_bytes(conn *c) {
  asock_op *rx = c->rx;
  unsigned char *data = (unsigned char *)asock_op_data(rx) - c->kept;
  size_t have = c->kept + asock_op_bytes(rx);
  size_t at = 0;

  while (have - at >= HEADER) {
    size_t len = get_u32(data + at);
    if (len > MAX_MESSAGE)
      return ASOCK_EPROTO;
    if (HEADER + len > asock_op_capacity(rx))
      return start_big(c, data + at, have - at, len);
    if (have - at < HEADER + len)
      break; /* incomplete */
    answer(c, data + at + HEADER, len);
    at += HEADER + len;
  }
  c->kept = have - at;
  if (c->kept == 0)
    return asock_op_clear_buffer(rx); /* the slice goes back to the pool */
  memmove(asock_op_buffer(rx), data + at, c->kept);
  return asock_op_set_range(rx, c->kept, asock_op_capacity(rx) - c->kept);
}

/* A receive into the large message's own buffer completed. */
static int on_big_bytes(conn *c) {
  c->big_have += asock_op_bytes(c->rx);
  if (c->big_have < c->big_len)
    return asock_op_set_range(c->rx, c->big_have, c->big_len - c->big_have);
  answer(c, c->big, c->big_len);
  free(c->big);
  c->big = NULL;
  return asock_op_clear_buffer(c->rx); /* slices again from here on */
}

/* Handles a completed receive and counts what it saw. */
static int received(conn *c) {
  unsigned long before = served.messages;
  int was_big = c->big != NULL;
  int r = was_big ? on_big_bytes(c) : on_bytes(c);

  if (served.messages - before > served.most_in_one_receive)
    served.most_in_one_receive = served.messages - before;
  if (r == 0 && c->kept > 0)
    served.tails_kept++;
  if (r == 0 && !was_big && c->big != NULL)
    served.big_messages++;
  return r;
}

/* Ends a connection whose ops are both idle: gracefully after the end of
 * its stream, with a reset after an error. */
static void end(conn *c, int status) {
  if (status == ASOCK_EPROTO)
    served.protocol_errors++;
  served.ended++;
  asock_socket_close(c->sock, status == ASOCK_EOF ? 0 : ASOCK_CLOSE_ABORT);
  CHECK_INT(asock_op_release(pool, c->rx), 0);
  CHECK_INT(asock_op_release(pool, c->tx), 0);
  free(c->big);
  free(c);
}

/* Sends the answers queued; 0 if the kernel took them at once. */
static int send_answers(conn *c) {
  int r = asock_op_set_buffer(c->tx, c->answers, sizeof(c->answers), 0,
                              c->answers_len);
  if (r == 0)
    r = asock_send(c->sock, c->tx);
  if (r == 0) {
    c->answers_len = 0;
    r = asock_op_status(c->tx);
  }
  return r;
}

/* Drives a connection from a completed receive to its next pending
 * operation: answer, send, receive again. Synchronous completions loop
 * here instead of recursing. */
static void serve(conn *c) {
  int r;
  for (;;) {
    r = asock_op_status(c->rx);
    if (r == 0)
      r = received(c);
    if (r == 0 && c->answers_len > 0)
      r = send_answers(c); /* ASOCK_PENDING: on_sent goes on */
    if (r == 0)
      r = asock_receive(c->sock, c->rx);
    if (r != 0)
      break;
  }
  if (r != ASOCK_PENDING)
    end(c, r);
}

static void on_received(asock_op *rx) { serve(asock_op_user_data(rx)); }

static void on_sent(asock_op *tx) {
  conn *c = asock_op_user_data(tx);
  int r = asock_op_status(tx);

  c->answers_len = 0;
  if (r == 0)
    r = asock_receive(c->sock, c->rx);
  if (r == 0)
    serve(c);
  else if (r != ASOCK_PENDING)
    end(c, r);
}

static void start_conn(asock_socket *sock) {
  conn *c = calloc(1, sizeof(*c));
  int r;

  CHECK(c != NULL);
  c->sock = sock;
  CHECK_INT(asock_op_acquire(pool, &c->rx), 0);
  CHECK_INT(asock_op_acquire(pool, &c->tx), 0);
  asock_op_set_callback(c->rx, on_received);
  asock_op_set_user_data(c->rx, c);
  asock_op_set_callback(c->tx, on_sent);
  asock_op_set_user_data(c->tx, c);
  r = asock_receive(sock, c->rx);
  if (r == 0)
    serve(c);
  else if (r != ASOCK_PENDING)
    end(c, r);
}

static void on_accept(asock_op *op) {
  int r;
  do {
    if (asock_op_status(op) != 0)
      return; /* the listener closed */
    start_conn(asock_op_accepted(op));
    r = asock_accept(listener, op);
  } while (r == 0);
}

/* ---- the client's side of the test -------------------------------------- */

/* Appends a message to buf at *len. */
static void frame(unsigned char *buf, size_t *len, const void *payload,
                  size_t n) {
  put_u32(buf + *len, (uint32_t)n);
  memcpy(buf + *len + HEADER, payload, n);
  *len += HEADER + n;
}

/* Appends the answer to a message to buf at *len. */
static void expect_answer(unsigned char *buf, size_t *len, const void *payload,
                          size_t n) {
  put_u32(buf + *len, fnv1a(payload, n));
  *len += 4;
}

static int conns_ended(void *n) { return served.ended >= *(unsigned long *)n; }

int main(void) {
  static unsigned char out[8192], want[64], big[3000];
  asock_pool_config cfg;
  asock_loop *loop;
  asock_op *accept_op;
  struct sockaddr_in addr = hx_loopback(0);
  hx_client c;
  size_t n, w, i;
  unsigned long ended;
  int port, r;

  asock_pool_config_init(&cfg);
  cfg.slice_size = SLICE_SIZE;
  cfg.slice_count = 64;
  cfg.op_count = 16;
  CHECK_INT(asock_pool_create(&pool, &cfg), 0);
  CHECK_INT(asock_loop_create(&loop, pool, NULL), 0);
  hx_deadline_start(loop, 60000);
  CHECK_INT(asock_tcp_create(&listener, loop), 0);
  CHECK_INT(asock_tcp_listen(listener, (struct sockaddr *)&addr, 16, 0), 0);
  port = hx_local_port(listener);
  CHECK_INT(asock_op_acquire(pool, &accept_op), 0);
  asock_op_set_callback(accept_op, on_accept);
  r = asock_accept(listener, accept_op);
  CHECK_INT(r, ASOCK_PENDING);

  hx_client_create(&c, loop);
  hx_client_connect(&c, port);
  hx_client_read(&c);

  /* Three messages, one of them empty, in one send: one receive. */
  n = w = 0;
  frame(out, &n, "one", 3);
  frame(out, &n, "", 0);
  frame(out, &n, "three", 5);
  expect_answer(want, &w, "one", 3);
  expect_answer(want, &w, "", 0);
  expect_answer(want, &w, "three", 5);
  hx_client_send(&c, out, n);
  hx_client_expect(&c, want, w);
  CHECK_INT(served.most_in_one_receive, 3);
  CHECK_INT(served.tails_kept, 0);

  /* A whole message and the start of the next one's payload: the server
   * answers the first (so the client knows it has read both) and keeps
   * the rest of the receive. */
  n = w = 0;
  frame(out, &n, "alpha", 5);
  frame(out, &n, "bravo-charlie", 13);
  expect_answer(want, &w, "alpha", 5);
  hx_client_send(&c, out, n - 8); /* "bravo" of bravo-charlie */
  hx_client_expect(&c, want, w);
  CHECK_INT(served.tails_kept, 1);
  /* The rest of it, a whole message, and two bytes of a length prefix. */
  w = 0;
  frame(out, &n, "delta", 5);
  frame(out, &n, "echo", 4);
  expect_answer(want, &w, "bravo-charlie", 13);
  expect_answer(want, &w, "delta", 5);
  hx_client_send(&c, out + 9 + 4 + 5, n - (9 + 4 + 5) - 6);
  hx_client_expect(&c, want, w);
  CHECK_INT(served.tails_kept, 2);
  /* The rest of that prefix, and its payload. */
  w = 0;
  expect_answer(want, &w, "echo", 4);
  hx_client_send(&c, out + n - 6, 6);
  hx_client_expect(&c, want, w);
  CHECK_INT(served.tails_kept, 2);
  CHECK_INT(served.messages, 7);

  /* A small message, one of 3000 bytes (about three slices) and another
   * small one, in one send. */
  for (i = 0; i < sizeof(big); i++)
    big[i] = (unsigned char)(i * 7 + i / 256);
  n = w = 0;
  frame(out, &n, "F", 1);
  frame(out, &n, big, sizeof(big));
  frame(out, &n, "golf", 4);
  expect_answer(want, &w, "F", 1);
  expect_answer(want, &w, big, sizeof(big));
  expect_answer(want, &w, "golf", 4);
  hx_client_send(&c, out, n);
  hx_client_expect(&c, want, w);
  CHECK_INT(served.big_messages, 1);
  CHECK_INT(served.messages, 10);

  /* The end of the stream: the server closes its side as well. */
  hx_client_shutdown(&c);
  hx_client_expect_end(&c, ASOCK_EOF);
  hx_client_close(&c);
  ended = 1;
  hx_run_until(loop, conns_ended, &ended, "the server's end of the stream");

  /* A length beyond MAX_MESSAGE: the server resets the connection. */
  hx_client_create(&c, loop);
  hx_client_connect(&c, port);
  hx_client_read(&c);
  put_u32(out, MAX_MESSAGE + 1);
  hx_client_send(&c, out, HEADER);
  ended = 2;
  hx_run_until(loop, conns_ended, &ended, "the server's protocol error");
  CHECK_INT(served.protocol_errors, 1);
  hx_client_close(&c);

  CHECK_INT(served.messages, 10);
  CHECK_INT(served.ended, 2);
  CHECK_INT(asock_socket_close(listener, 0), 0);
  hx_run_until(loop, hx_op_idle, accept_op, "the accept's cancellation");
  CHECK_INT(asock_op_status(accept_op), ASOCK_ECANCELED);
  CHECK_INT(asock_op_release(pool, accept_op), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  printf("guide-framed: 10 messages answered, 2 tails kept, 1 message "
         "larger than a slice, 1 protocol error\n");
  return 0;
}
