/* porting-echo: the echo server of .NET's SocketAsyncEventArgs sample,
 * written with asock in the same shape; docs/porting-from-dotnet.md quotes
 * it beside the C#.
 *
 * The sample's names are kept: StartAccept posts the accept again, and
 * loops while accepts complete synchronously; ProcessAccept gives a new
 * connection an op from the pool (the SocketAsyncEventArgsPool) and posts
 * its receive; IO_Completed dispatches on the op's last operation;
 * ProcessReceive sends back what arrived, ProcessSend posts the next
 * receive, and CloseClientSocket closes the socket and gives the op back.
 * The sample's BufferManager is the pool's slices: a receive without a
 * buffer takes one when data arrives. Where the sample calls ProcessSend
 * and ProcessReceive from each other on synchronous completions (and can
 * exhaust its stack), ProcessReceive loops.
 *
 * Three clients each send a short message and one of 100,000 bytes (a
 * hundred receives of a 1 KiB slice) and must get every byte back, then end
 * their stream; the server must close each connection and have no op or
 * slice left. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_CONNECTIONS 8 /* numConnections */
#define BUFFER_SIZE 1024  /* receiveBufferSize */
#define CLIENTS 3
#define LONG_MESSAGE 100000

static asock_pool *pool; /* BufferManager and SocketAsyncEventArgsPool */
static asock_socket *listen_socket;
static int connected_sockets; /* m_numConnectedSockets */

static void process_accept(asock_op *e);
static void io_completed(asock_op *e);
static void process_receive(asock_op *e);
static void process_send(asock_op *e);
static void close_client_socket(asock_op *e);

/* StartAccept: accepts that complete synchronously loop here. */
static void start_accept(asock_op *accept_event_arg) {
  while (asock_accept(listen_socket, accept_event_arg) == 0)
    process_accept(accept_event_arg);
}

/* AcceptEventArg_Completed */
static void accept_completed(asock_op *e) {
  if (asock_op_status(e) == ASOCK_ECANCELED)
    return; /* the listener closed */
  process_accept(e);
  start_accept(e);
}

/* ProcessAccept: an op from the pool for the new connection, and its
 * first receive. */
static void process_accept(asock_op *e) {
  asock_socket *socket = asock_op_accepted(e);
  asock_op *read_event_args;
  int r;

  if (asock_op_status(e) != 0)
    return;
  if (asock_op_acquire(pool, &read_event_args) != 0) {
    asock_socket_close(socket, ASOCK_CLOSE_ABORT); /* every op is in use */
    return;
  }
  asock_op_set_callback(read_event_args, io_completed);
  r = asock_receive(socket, read_event_args);
  if (r < 0) { /* did not start, where ReceiveAsync would throw */
    asock_socket_close(socket, ASOCK_CLOSE_ABORT);
    asock_op_release(pool, read_event_args);
    return;
  }
  connected_sockets++;
  if (r == 0)
    process_receive(read_event_args);
}

/* IO_Completed */
static void io_completed(asock_op *e) {
  switch (asock_op_last_kind(e)) {
  case ASOCK_OP_RECEIVE:
    process_receive(e);
    break;
  case ASOCK_OP_SEND:
    process_send(e);
    break;
  default:
    close_client_socket(e);
  }
}

/* ProcessReceive: the window is what arrived; it is sent back. The end of
 * the stream is ASOCK_EOF, where .NET reports 0 bytes transferred. */
static void process_receive(asock_op *e) {
  asock_socket *socket = asock_op_socket(e);
  int r;

  while (asock_op_status(e) == 0) {
    r = asock_send(socket, e);
    if (r == ASOCK_PENDING)
      return; /* process_send runs later */
    if (r < 0 || asock_op_status(e) != 0)
      break;
    r = asock_receive(socket, e);
    if (r == ASOCK_PENDING)
      return; /* process_receive runs later */
    if (r < 0)
      break;
  }
  close_client_socket(e);
}

/* ProcessSend: the echo went out; the next receive. */
static void process_send(asock_op *e) {
  int r = asock_op_status(e);
  if (r == 0)
    r = asock_receive(asock_op_socket(e), e);
  if (r == 0)
    process_receive(e);
  else if (r != ASOCK_PENDING)
    close_client_socket(e);
}

/* CloseClientSocket: a graceful close, and the op back to the pool. */
static void close_client_socket(asock_op *e) {
  asock_socket_close(asock_op_socket(e), 0);
  connected_sockets--;
  asock_op_release(pool, e);
}

/* ---- the clients --------------------------------------------------------- */

static int none_connected(void *arg) {
  (void)arg;
  return connected_sockets == 0;
}

int main(void) {
  static unsigned char long_message[LONG_MESSAGE];
  asock_pool_config cfg;
  asock_loop *loop;
  asock_op *accept_event_arg;
  struct sockaddr_in addr = hx_loopback(0);
  hx_client clients[CLIENTS];
  char message[64];
  int port, i;

  asock_pool_config_init(&cfg);
  cfg.slice_size = BUFFER_SIZE;
  cfg.slice_count = MAX_CONNECTIONS * 2;
  /* An op per connection, the accept, and the clients' two each. */
  cfg.op_count = MAX_CONNECTIONS + 1 + 2 * CLIENTS;
  CHECK_INT(asock_pool_create(&pool, &cfg), 0);
  CHECK_INT(asock_loop_create(&loop, pool, NULL), 0);
  hx_deadline_start(loop, 60000);
  CHECK_INT(asock_tcp_create(&listen_socket, loop), 0);
  CHECK_INT(asock_tcp_listen(listen_socket, (struct sockaddr *)&addr, 100, 0),
            0);
  port = hx_local_port(listen_socket);
  CHECK_INT(asock_op_acquire(pool, &accept_event_arg), 0);
  asock_op_set_callback(accept_event_arg, accept_completed);
  start_accept(accept_event_arg);

  for (i = 0; i < LONG_MESSAGE; i++)
    long_message[i] = (unsigned char)(i * 29 + i / 4096);
  for (i = 0; i < CLIENTS; i++) {
    hx_client_create(&clients[i], loop);
    hx_client_connect(&clients[i], port);
    hx_client_read(&clients[i]);
  }
  for (i = 0; i < CLIENTS; i++) {
    size_t n = (size_t)snprintf(message, sizeof(message), "hello from %d", i);
    hx_client_send(&clients[i], message, n);
    hx_client_expect(&clients[i], message, n);
  }
  for (i = 0; i < CLIENTS; i++) {
    hx_client_send(&clients[i], long_message, LONG_MESSAGE);
    hx_client_expect(&clients[i], long_message, LONG_MESSAGE);
  }
  CHECK_INT(connected_sockets, CLIENTS);
  for (i = 0; i < CLIENTS; i++) {
    hx_client_shutdown(&clients[i]);
    hx_client_expect_end(&clients[i], ASOCK_EOF);
    hx_client_close(&clients[i]);
  }
  hx_run_until(loop, none_connected, NULL, "the server's closes");

  CHECK_INT(asock_socket_close(listen_socket, 0), 0);
  hx_run_until(loop, hx_op_idle, accept_event_arg, "the accept's end");
  CHECK_INT(asock_op_status(accept_event_arg), ASOCK_ECANCELED);
  CHECK_INT(asock_op_release(pool, accept_event_arg), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  printf("porting-echo: %d connections, every byte echoed\n", CLIENTS);
  return 0;
}
