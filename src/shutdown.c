/* The ends of a connection's sending: a shutdown (the FIN after the queued
 * sends, receives going on) and a disconnect (the FIN, then the close),
 * each waiting for the sends queued before it. */
#include "internal.h"

/* The FIN was handed over (status 0) or could not be. A disconnect then
 * closes the socket and completes when the handle is closed; a shutdown
 * completes now, or, when the FIN left inside asock_shutdown() (Unix),
 * leaves its result for shutdown_start(). */
void asock__shutdown_done(asock_op *op, int status) {
  asock_socket *sock = op->socket;

  if (op->kind != ASOCK_OP_SHUTDOWN) {
    if (status < 0 && status != ASOCK_ECANCELED && op->forced_status == 0)
      op->forced_status = status;
    asock__socket_shut(sock, 0);
    return;
  }
  if (status < 0 && op->forced_status == 0)
    op->forced_status = status;
  sock->disconnect = NULL;
  if (op->where == ASOCK__Q_STARTING) {
    op->where = ASOCK__Q_NONE;
    op->status = op->forced_status;
    op->forced_status = 0;
    return;
  }
  asock__op_done(op, op->forced_status, 0);
}

static void start_shutdown(asock_socket *sock) {
  asock_op *op = sock->disconnect;
  int err;

  if (op->where != ASOCK__Q_STARTING)
    op->where = ASOCK__Q_LIBUV;
  err = asock__io_shutdown(sock, op);
  if (err != 0)
    asock__shutdown_done(op, err);
}

void asock__send_drained(asock_socket *sock) {
  if ((sock->flags & (ASOCK__SF_HANDLE | ASOCK__SF_WRITING)) != 0)
    return;
  if (sock->disconnect != NULL &&
      sock->disconnect->where == ASOCK__Q_DISCONNECT)
    start_shutdown(sock);
  else if (sock->flags & ASOCK__SF_LINGERING)
    /* Closed while its sends were queued: they are out, the FIN follows. */
    asock__socket_shut(sock, 0);
}

int asock__disconnect_check(asock_socket *sock, asock_op *op) {
  int err = asock__socket_check_op(sock, op);
  if (err != 0)
    return err;
  if (op->flags & ASOCK__OPF_MULTISHOT)
    return ASOCK_EKIND;
  /* The send state but for a shutdown, which a disconnect may follow. */
  err = asock__send_state_error(sock->flags & ~ASOCK__SF_SHUTDOWN);
  if (err != 0)
    return err;
  if (sock->disconnect != NULL)
    return ASOCK_ECLOSED;
  return 0;
}

int asock__shutdown_check(asock_socket *sock, asock_op *op) {
  int err = asock__disconnect_check(sock, op);
  if (err == ASOCK_ECLOSED ||
      (err == 0 && (sock->flags & ASOCK__SF_SHUTDOWN) != 0))
    return ASOCK_ESHUTDOWN;
  return err;
}

int asock_shutdown(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_SHUTDOWN, asock__shutdown_check,
                           asock__shutdown_start);
}

int asock__shutdown_start(asock_socket *sock, asock_op *op) {
  op->seq = sock->send_seq++;
  sock->flags |= ASOCK__SF_SHUTDOWN;
  sock->disconnect = op;
  if (sock->send_head == NULL) {
    /* Nothing to wait for: synchronous first, as for a send. */
    op->where = ASOCK__Q_STARTING;
    start_shutdown(sock);
    if (sock->disconnect != op) {
      asock__op_finish_sync(op, op->status, 0);
      return 0;
    }
    op->where = ASOCK__Q_LIBUV;
  } else {
    op->where = ASOCK__Q_DISCONNECT;
  }
  asock__loop_watch(sock->loop, op);
  return ASOCK_PENDING;
}

int asock_disconnect(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_DISCONNECT,
                           asock__disconnect_check, asock__disconnect_start);
}

int asock__disconnect_start(asock_socket *sock, asock_op *op) {
  op->seq = sock->send_seq++;
  op->where = ASOCK__Q_DISCONNECT;
  sock->disconnect = op;
  asock__loop_watch(sock->loop, op);
  if (sock->flags & ASOCK__SF_SHUTDOWN) {
    /* A shutdown sent the FIN already: only the close is left. */
    asock__socket_shut(sock, 0);
    return ASOCK_PENDING;
  }
  sock->flags |= ASOCK__SF_SHUTDOWN;
  if (sock->send_head == NULL)
    start_shutdown(sock);
  return ASOCK_PENDING;
}
