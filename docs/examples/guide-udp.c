/* guide-udp: a UDP echo with one op that receives a datagram and answers
 * it with the same bytes; section 8 of docs/guide.md quotes it.
 *
 * A client bound to the wildcard address sends three datagrams, one longer
 * than a slice, and receives each echo with receive-message-from: the
 * bytes, the sender, and the packet information (the client's own address
 * the echo was sent to) are checked; the long one comes back cut to the
 * slice, which the server saw flagged ASOCK_MSG_TRUNCATED. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SLICE_SIZE 1024

static asock_socket *echo_sock;
static asock_op *echo_op;
static unsigned long echoed;
static unsigned long truncated;

/* Receives from anyone and answers each datagram with its own bytes, from
 * the op that received it: after a receive-from, asock_op_remote() is the
 * sender and the window the datagram. Completions that come at once (a
 * datagram read ahead, a send the kernel took) loop here. */
static void echo_step(asock_op *op) {
  int r;
  do {
    int status = asock_op_status(op);
    if (status == ASOCK_ECANCELED)
      return; /* the socket closed */
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVEFROM && status == 0) {
      if (asock_op_msg_flags(op) & ASOCK_MSG_TRUNCATED)
        truncated++; /* longer than the slice: the rest is gone */
      echoed++;
      r = asock_send_to(echo_sock, op); /* the same bytes, to the sender */
    } else {
      r = asock_receive_from(echo_sock, op); /* a slice only on arrival */
    }
  } while (r == 0);
}

static int start_udp_echo(asock_loop *loop, const struct sockaddr *addr) {
  int r = asock_udp_create(&echo_sock, loop);
  if (r == 0)
    r = asock_udp_bind(echo_sock, addr, 0); /* or ASOCK_UDP_REUSEADDR */
  if (r == 0)
    r = asock_op_acquire(asock_loop_pool(loop), &echo_op);
  if (r == 0)
    r = asock_op_set_callback(echo_op, echo_step);
  if (r == 0)
    echo_step(echo_op);
  return r;
}

static void on_client_op(asock_op *op) { (void)op; }

/* Sends a datagram to the echo and checks what comes back: `back` bytes of
 * it, from the echo's address, sent to the client's own. */
static void exchange(asock_loop *loop, asock_socket *client, asock_op *tx,
                     asock_op *rx, const unsigned char *bytes, size_t len,
                     size_t back) {
  struct sockaddr_in to = hx_loopback(hx_local_port(echo_sock));
  struct sockaddr_storage dest;
  const struct sockaddr_in *from;
  unsigned int ifindex = 0;
  int r;

  CHECK_INT(asock_op_set_remote(tx, (struct sockaddr *)&to), 0);
  CHECK_INT(asock_op_set_buffer(tx, (void *)bytes, len, 0, len), 0);
  r = asock_send_to(client, tx);
  CHECK(r == 0 || r == ASOCK_PENDING);
  hx_run_until(loop, hx_op_idle, tx, "the client's send-to");
  CHECK_INT(asock_op_status(tx), 0);
  CHECK_INT(asock_op_bytes(tx), len);

  CHECK_INT(asock_op_clear_buffer(rx), 0);
  r = asock_receive_message_from(client, rx);
  CHECK(r == 0 || r == ASOCK_PENDING);
  hx_run_until(loop, hx_op_idle, rx, "the echo");
  CHECK_INT(asock_op_status(rx), 0);
  CHECK_INT(asock_op_bytes(rx), back);
  CHECK_MEM(asock_op_data(rx), bytes, back);
  from = (const struct sockaddr_in *)asock_op_remote(rx);
  CHECK(from != NULL);
  CHECK_INT(from->sin_family, AF_INET);
  CHECK_INT(from->sin_port, to.sin_port);
  CHECK_INT(from->sin_addr.s_addr, to.sin_addr.s_addr);
  CHECK_INT(asock_op_packet_info(rx, &dest, &ifindex), 0);
  CHECK_INT(dest.ss_family, AF_INET);
  CHECK_INT(((struct sockaddr_in *)&dest)->sin_addr.s_addr, to.sin_addr.s_addr);
  CHECK_INT(ntohs(((struct sockaddr_in *)&dest)->sin_port),
            hx_local_port(client));
  CHECK(ifindex != 0);
}

int main(void) {
  static unsigned char big[1500];
  asock_pool_config cfg;
  asock_pool *pool;
  asock_loop *loop;
  asock_socket *client;
  asock_op *tx, *rx;
  struct sockaddr_in addr = hx_loopback(0);
  struct sockaddr_in any;
  size_t i;

  asock_pool_config_init(&cfg);
  cfg.slice_size = SLICE_SIZE;
  cfg.slice_count = 64;
  cfg.op_count = 8;
  CHECK_INT(asock_pool_create(&pool, &cfg), 0);
  CHECK_INT(asock_loop_create(&loop, pool, NULL), 0);
  hx_deadline_start(loop, 60000);
  CHECK_INT(start_udp_echo(loop, (struct sockaddr *)&addr), 0);

  CHECK_INT(uv_ip4_addr("0.0.0.0", 0, &any), 0);
  CHECK_INT(asock_udp_create(&client, loop), 0);
  CHECK_INT(asock_udp_bind(client, (struct sockaddr *)&any, ASOCK_UDP_PKTINFO),
            0);
  CHECK_INT(asock_op_acquire(pool, &tx), 0);
  CHECK_INT(asock_op_acquire(pool, &rx), 0);
  asock_op_set_callback(tx, on_client_op);
  asock_op_set_callback(rx, on_client_op);

  for (i = 0; i < sizeof(big); i++)
    big[i] = (unsigned char)(i * 31 + 7);
  exchange(loop, client, tx, rx, (const unsigned char *)"hello", 5, 5);
  exchange(loop, client, tx, rx, (const unsigned char *)"!", 1, 1);
  exchange(loop, client, tx, rx, big, sizeof(big), SLICE_SIZE);
  CHECK_INT(echoed, 3);
  CHECK_INT(truncated, 1);

  CHECK_INT(asock_op_release(pool, tx), 0);
  CHECK_INT(asock_op_release(pool, rx), 0);
  CHECK_INT(asock_socket_close(client, 0), 0);
  CHECK_INT(asock_socket_close(echo_sock, 0), 0);
  hx_run_until(loop, hx_op_idle, echo_op, "the echo's cancellation");
  CHECK_INT(asock_op_status(echo_op), ASOCK_ECANCELED);
  CHECK_INT(asock_op_release(pool, echo_op), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  printf("guide-udp: 3 datagrams echoed, 1 of them truncated to a slice\n");
  return 0;
}
