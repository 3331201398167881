/* guide-flow: options set before a connect, timeouts and cancellation, and
 * send back-pressure; sections 3, 6 and 7 of docs/guide.md quote it.
 *
 * A receive with a timeout on a connection that stays silent ends with
 * ASOCK_ETIMEDOUT, one cancelled ends with ASOCK_ECANCELED, and the socket
 * receives on after both. Then a server sends 64 KiB pieces to a client
 * that does not read (small kernel buffers on both ends, the client's set
 * before its connect), until the send queue's hard cap refuses one; the
 * watermark callback hears of the high mark once, and of the low mark once
 * the client reads everything, which must be every byte sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PIECE 65536
#define MAX_SENDS 64

static asock_pool *pool;
static asock_socket *listener;
static asock_socket *accepted[2];
static int naccepted;
static int marks[8]; /* what the watermark callback heard, in order */
static int nmarks;
static int sends_done;
static unsigned char piece[PIECE];

static void on_accept(asock_op *op) {
  do {
    if (asock_op_status(op) != 0)
      return; /* the listener closed */
    CHECK(naccepted < 2);
    accepted[naccepted++] = asock_op_accepted(op);
  } while (asock_accept(listener, op) == 0);
}

/* A client socket with a small receive buffer, set before the socket has an
 * OS socket: asock keeps the size and sets it when the connect makes one. */
static int small_receive_buffer(asock_socket *sock) {
  int size = 4096;
  return asock_socket_recv_buffer_size(sock, &size);
}

/* The first receive of a connection waits at most 200 ms for a request. */
static int first_receive(asock_socket *sock, asock_op *op) {
  asock_op_set_timeout(op, 200); /* milliseconds, for each start */
  return asock_receive(sock, op);
}

static void on_watermark(asock_socket *sock, int above) {
  (void)sock;
  CHECK(nmarks < 8);
  marks[nmarks++] = above;
}

/* A socket that may send more than its peer reads: the application hears
 * when 64 KiB wait, and again when no more than 16 KiB do, and no more than
 * 1 MiB may ever wait. */
static void limit_sends(asock_socket *sock) {
  asock_socket_set_send_limits(sock, 16 << 10, 64 << 10, 1 << 20);
  asock_socket_set_watermark_cb(sock, on_watermark); /* (sock, above) */
}

static void on_piece_sent(asock_op *op) {
  CHECK_INT(asock_op_status(op), 0);
  CHECK_INT(asock_op_bytes(op), PIECE);
  CHECK_INT(asock_op_release(pool, op), 0);
  sends_done++;
}

static void on_receive(asock_op *op) { (void)op; }

static int accepted_count(void *n) { return naccepted >= *(int *)n; }
static int marks_heard(void *n) { return nmarks >= *(int *)n; }
static int all_sent(void *n) { return sends_done >= *(int *)n; }

/* A silent connection: its receive times out, another is cancelled, and the
 * socket goes on receiving. */
static void timeouts(asock_loop *loop, int port) {
  hx_client client;
  asock_op *op;
  int want = 1;

  hx_client_create(&client, loop);
  hx_client_connect(&client, port);
  hx_run_until(loop, accepted_count, &want, "the first accept");
  CHECK_INT(asock_op_acquire(pool, &op), 0);
  asock_op_set_callback(op, on_receive);

  CHECK_INT(first_receive(accepted[0], op), ASOCK_PENDING);
  hx_run_until(loop, hx_op_idle, op, "the receive's timeout");
  CHECK_INT(asock_op_status(op), ASOCK_ETIMEDOUT);
  CHECK_INT(asock_op_timeout(op), 200);

  CHECK_INT(asock_op_set_timeout(op, 0), 0);
  CHECK_INT(asock_receive(accepted[0], op), ASOCK_PENDING);
  CHECK_INT(asock_cancel(op), 0);
  CHECK_INT(asock_op_is_pending(op), 1); /* it ends through its callback */
  hx_run_until(loop, hx_op_idle, op, "the cancelled receive");
  CHECK_INT(asock_op_status(op), ASOCK_ECANCELED);
  CHECK_INT(asock_cancel(op), ASOCK_ENOTPENDING);

  CHECK_INT(asock_receive(accepted[0], op), ASOCK_PENDING);
  hx_client_send(&client, "late", 4);
  hx_run_until(loop, hx_op_idle, op, "the receive after the timeout");
  CHECK_INT(asock_op_status(op), 0);
  CHECK_INT(asock_op_bytes(op), 4);
  CHECK_MEM(asock_op_data(op), "late", 4);

  CHECK_INT(asock_op_release(pool, op), 0);
  CHECK_INT(asock_socket_close(accepted[0], 0), 0);
  hx_client_close(&client);
}

/* A client that reads only once the server's queue is at its cap. */
static void back_pressure(asock_loop *loop, int port) {
  hx_client client;
  struct sockaddr_storage addr;
  int len = (int)sizeof(addr);
  int size = 8192;
  int sends, want = 2, i;
  size_t queued;

  hx_client_create(&client, loop);
  CHECK_INT(small_receive_buffer(client.sock), 0);
  /* Addresses need the OS socket, which the connect makes. */
  CHECK_INT(
      asock_socket_local_address(client.sock, (struct sockaddr *)&addr, &len),
      ASOCK_ENOTCONN);
  hx_client_connect(&client, port);
  hx_run_until(loop, accepted_count, &want, "the second accept");
  CHECK_INT(asock_socket_send_buffer_size(accepted[1], &size), 0);
  limit_sends(accepted[1]);

  for (i = 0; i < PIECE; i++)
    piece[i] = (unsigned char)(i % 251);
  for (sends = 0; sends < MAX_SENDS; sends++) {
    asock_op *op;
    int r;
    CHECK_INT(asock_op_acquire(pool, &op), 0);
    asock_op_set_callback(op, on_piece_sent);
    CHECK_INT(asock_op_set_buffer(op, piece, PIECE, 0, PIECE), 0);
    queued = asock_socket_send_queued(accepted[1]);
    r = asock_send(accepted[1], op);
    if (r == ASOCK_ENOBUFS) {
      /* Refused without starting: the op is the application's still. */
      CHECK(queued + PIECE > (size_t)1 << 20);
      CHECK_INT(asock_op_release(pool, op), 0);
      break;
    }
    if (r == 0)
      on_piece_sent(op); /* the kernel took it all: no callback */
    else
      CHECK_INT(r, ASOCK_PENDING);
  }
  CHECK(sends < MAX_SENDS);
  CHECK(asock_socket_send_queued(accepted[1]) >= 64 << 10);
  CHECK(asock_socket_send_queued(accepted[1]) <= 1 << 20);
  /* The callback never runs inside an asock call: it comes from the loop. */
  want = 1;
  hx_run_until(loop, marks_heard, &want, "the high watermark");
  CHECK_INT(nmarks, 1);
  CHECK_INT(marks[0], 1);

  hx_client_read(&client);
  for (i = 0; i < sends; i++)
    hx_client_expect(&client, piece, PIECE);
  hx_run_until(loop, all_sent, &sends, "the queued sends");
  CHECK_INT(asock_socket_send_queued(accepted[1]), 0);
  want = 2;
  hx_run_until(loop, marks_heard, &want, "the low watermark");
  CHECK_INT(nmarks, 2);
  CHECK_INT(marks[1], 0);
  printf("guide-flow: %d sends of 64 KiB before the cap refused one\n", sends);

  CHECK_INT(asock_socket_close(accepted[1], 0), 0);
  hx_client_expect_end(&client, ASOCK_EOF);
  hx_client_close(&client);
}

int main(void) {
  asock_pool_config cfg;
  asock_loop *loop;
  asock_op *accept;
  struct sockaddr_in addr = hx_loopback(0);
  int port;

  asock_pool_config_init(&cfg);
  cfg.slice_count = 64;
  cfg.op_count = MAX_SENDS + 8;
  CHECK_INT(asock_pool_create(&pool, &cfg), 0);
  CHECK_INT(asock_loop_create(&loop, pool, NULL), 0);
  hx_deadline_start(loop, 60000);
  CHECK_INT(asock_tcp_create(&listener, loop), 0);
  CHECK_INT(asock_tcp_listen(listener, (struct sockaddr *)&addr, 16, 0), 0);
  port = hx_local_port(listener);
  CHECK_INT(asock_op_acquire(pool, &accept), 0);
  asock_op_set_callback(accept, on_accept);
  CHECK_INT(asock_accept(listener, accept), ASOCK_PENDING);

  timeouts(loop, port);
  back_pressure(loop, port);

  CHECK_INT(asock_socket_close(listener, 0), 0);
  hx_run_until(loop, hx_op_idle, accept, "the accept's cancellation");
  CHECK_INT(asock_op_status(accept), ASOCK_ECANCELED);
  CHECK_INT(asock_op_release(pool, accept), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  return 0;
}
