/* guide-group: a loop group serving an echo on two threads; section 9 of
 * docs/guide.md quotes it.
 *
 * The group's two loops each run on a thread of their own over one pool;
 * each connection is served on the loop it was given, by one op that
 * receives, sends the bytes back and receives again, and disconnects at the
 * end of the stream. The clients run on the main thread's own loop over
 * the same pool. Each connection's end is told to the main thread with a
 * task posted to its loop, so that nothing is shared between threads but
 * through asock. Every echo is checked, and every connection must have
 * been given to one of the loops and ended. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define CLIENTS 4

/* One connection served by the group, on its loop's thread. */
typedef struct served_conn {
  asock_task ended; /* posted to the main thread's loop at the end */
  int status;
} served_conn;

/* What the connections' callbacks need: the main thread's loop. */
typedef struct app {
  asock_loop *main_loop;
  int ended; /* connections ended; the main thread's */
  int clean; /* of those, ended by the end of their stream */
} app;

static asock_group *group;
static app the_app;

/* Runs on the main thread: a connection of the group ended. */
static void on_conn_ended(asock_loop *loop, asock_task *task) {
  served_conn *c = task->data;
  (void)loop;
  the_app.ended++;
  if (c->status == 0)
    the_app.clean++;
  free(c);
}

/* Tells the main thread, and lets the op and the socket go. */
static void conn_end(asock_op *op, int status) {
  served_conn *c = asock_op_user_data(op);
  asock_socket *sock = asock_op_socket(op);

  if (sock != NULL)
    asock_socket_close(sock, 0); /* ASOCK_ECLOSED after a disconnect */
  asock_op_release(asock_op_pool(op), op);
  c->status = status;
  asock_loop_post(the_app.main_loop, &c->ended);
}

/* Receive, send the bytes back, receive again; disconnect at the end of
 * the stream. Synchronous completions loop here. */
static void echo_step(asock_op *op) {
  for (;;) {
    asock_socket *sock = asock_op_socket(op);
    int status = asock_op_status(op);
    int r;

    switch (asock_op_last_kind(op)) {
    case ASOCK_OP_RECEIVE:
      if (status == ASOCK_EOF)
        r = asock_disconnect(sock, op);
      else if (status == 0)
        r = asock_send(sock, op); /* the window is what arrived */
      else
        r = status;
      break;
    case ASOCK_OP_SEND:
      r = status == 0 ? asock_receive(sock, op) : status;
      break;
    default: /* the disconnect */
      conn_end(op, status);
      return;
    }
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      conn_end(op, r);
      return;
    }
  }
}

/* A connection the group accepted, on the thread of the loop it belongs
 * to for life. */
static void on_conn(asock_group *g, asock_socket *sock, void *arg) {
  asock_pool *pool = asock_loop_pool(asock_socket_loop(sock));
  served_conn *c = calloc(1, sizeof(*c));
  asock_op *op;
  int r;

  (void)g;
  (void)arg;
  CHECK(c != NULL);
  c->ended.fn = on_conn_ended;
  c->ended.data = c;
  CHECK_INT(asock_op_acquire(pool, &op), 0);
  asock_op_set_callback(op, echo_step);
  asock_op_set_user_data(op, c);
  r = asock_receive(sock, op);
  if (r == 0)
    echo_step(op);
  else if (r != ASOCK_PENDING) {
    asock_op_release(pool, op);
    asock_socket_close(sock, ASOCK_CLOSE_ABORT);
    free(c);
  }
}

static int start_group(asock_pool *pool, const struct sockaddr *addr) {
  int r = asock_group_create(&group, pool, 2); /* two loops, two threads */
  if (r == 0)
    r = asock_group_listen(group, addr, 1024, 0, on_conn, &the_app);
  return r;
}

static int stop_group(void) {
  int r = asock_group_stop(group, 5000); /* stop accepting; 5 s grace */
  if (r == 0)
    r = asock_group_destroy(group);
  return r;
}

static int all_ended(void *arg) {
  (void)arg;
  return the_app.ended >= CLIENTS;
}

int main(void) {
  asock_pool_config cfg;
  asock_pool *pool;
  struct sockaddr_in addr = hx_loopback(0);
  struct sockaddr_storage bound;
  hx_client clients[CLIENTS];
  char message[64];
  uint64_t accepted = 0;
  int port, i;

  asock_pool_config_init(&cfg);
  cfg.slice_count = 64;
  cfg.op_count = 64;
  CHECK_INT(asock_pool_create(&pool, &cfg), 0);
  CHECK_INT(asock_loop_create(&the_app.main_loop, pool, NULL), 0);
  hx_deadline_start(the_app.main_loop, 60000);
  CHECK_INT(start_group(pool, (struct sockaddr *)&addr), 0);
  CHECK_INT(asock_group_size(group), 2);
  CHECK_INT(asock_group_local_address(group, &bound), 0);
  port = ntohs(((struct sockaddr_in *)&bound)->sin_port);

  for (i = 0; i < CLIENTS; i++) {
    hx_client_create(&clients[i], the_app.main_loop);
    hx_client_connect(&clients[i], port);
    hx_client_read(&clients[i]);
  }
  for (i = 0; i < CLIENTS; i++) {
    size_t n = (size_t)snprintf(message, sizeof(message),
                                "client %d, echoed by the group", i);
    hx_client_send(&clients[i], message, n);
    hx_client_expect(&clients[i], message, n);
  }
  for (i = 0; i < CLIENTS; i++) {
    hx_client_shutdown(&clients[i]);
    hx_client_expect_end(&clients[i], ASOCK_EOF);
    hx_client_close(&clients[i]);
  }
  hx_run_until(the_app.main_loop, all_ended, NULL, "the connections' ends");
  CHECK_INT(the_app.clean, CLIENTS);
  for (i = 0; i < 2; i++)
    accepted += asock_group_accepted(group, (unsigned int)i);
  CHECK_INT(accepted, CLIENTS);

  CHECK_INT(stop_group(), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(the_app.main_loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  printf("guide-group: %d connections echoed on 2 loops\n", CLIENTS);
  return 0;
}
