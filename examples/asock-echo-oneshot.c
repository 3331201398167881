/* asock-echo's one-op paths (see asock-echo.c): TCP with --oneshot, each
 * connection owning exactly one op that alternates receive and send, the
 * way a .NET SocketAsyncEventArgs server is written; and UDP (--udp), each
 * receive op alternating receive-from and send-to the sender, or with
 * --multishot one receive-from delivering every datagram. */
#include <stdio.h>

#include "asock-echo.h"

/* Ends a connection: its socket closes and its op goes back to the pool. */
static void finish(asock_op *op, unsigned int close_flags) {
  asock_socket *sock = asock_op_socket(op);
  if (sock != NULL)
    asock_socket_close(sock, close_flags); /* ASOCK_ECLOSED if already */
  asock_op_release(srv.pool, op);
}

/* Drives one connection's op from its last result to its next pending
 * operation; synchronous completions loop here instead of recursing. The
 * op's user data is the counters of the connection's loop. */
static void step(asock_op *op) {
  echo_counts *n = asock_op_user_data(op);
  for (;;) {
    asock_socket *sock = asock_op_socket(op);
    int status = asock_op_status(op);
    int r;

    if (srv.stopping && status == 0 &&
        asock_op_last_kind(op) != ASOCK_OP_DISCONNECT) {
      finish(op, 0);
      return;
    }
    switch (asock_op_last_kind(op)) {
    case ASOCK_OP_RECEIVE:
      if (status == 0) {
        n->messages++;
        n->bytes += asock_op_bytes(op);
        r = asock_send(sock, op); /* the window is what arrived */
      } else if (status == ASOCK_EOF) {
        r = asock_disconnect(sock, op);
      } else {
        finish(op, ASOCK_CLOSE_ABORT);
        return;
      }
      break;
    case ASOCK_OP_SEND:
      if (status != 0) {
        finish(op, ASOCK_CLOSE_ABORT);
        return;
      }
      r = asock_receive(sock, op);
      break;
    default: /* a disconnect: the socket is closed */
      finish(op, 0);
      return;
    }
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      finish(op, ASOCK_CLOSE_ABORT);
      return;
    }
  }
}

static void on_op(asock_op *op) { step(op); }

void echo_serve_on(echo_counts *n, asock_socket *client) {
  asock_op *op;
  int r;

  if (!srv.oneshot) {
    echo_serve_multishot(n, client);
    return;
  }
  if (asock_op_acquire(srv.pool, &op) != 0) {
    n->refused++;
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    return;
  }
  n->connections++;
  asock_socket_set_nodelay(client, 1);
  asock_op_set_callback(op, on_op);
  asock_op_set_user_data(op, n);
  r = asock_receive(client, op);
  if (r == 0)
    step(op);
  else if (r < 0) {
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    asock_op_release(srv.pool, op);
  }
}

/* ---- UDP ----------------------------------------------------------------- */

/* Drives one UDP op from its last result to its next pending operation:
 * receive-from, send-to the sender, receive-from again. A receive that
 * finds datagrams read ahead completes at once, so synchronous completions
 * loop here instead of recursing, as in step(). An error belongs to one
 * datagram (an ICMP error, a datagram the kernel refused): it is counted and
 * the op receives again. */
static void udp_step(asock_op *op) {
  for (;;) {
    int status = asock_op_status(op);
    int r;

    /* Cancelled: the socket closed, and main() releases the op. */
    if (srv.stopping || status == ASOCK_ECANCELED)
      return;
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVEFROM && status == 0) {
      srv.counts.messages++;
      srv.counts.bytes += asock_op_bytes(op);
      if (asock_op_msg_flags(op) & ASOCK_MSG_TRUNCATED)
        srv.truncated++;
      /* The op's remote address is the sender, its window the datagram. */
      r = asock_send_to(srv.udp, op);
      if (r == ASOCK_PENDING)
        return;
      if (r == 0)
        continue;        /* the send's result is in the op */
      srv.send_errors++; /* refused without starting */
    } else if (status != 0) {
      if (asock_op_last_kind(op) == ASOCK_OP_SENDTO)
        srv.send_errors++;
      else
        srv.receive_errors++;
    }
    r = asock_receive_from(srv.udp, op);
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      /* Only a closed socket refuses a receive: the op rests. */
      fprintf(stderr, "asock-echo: receive-from: %s\n", asock_strerror(r));
      return;
    }
  }
}

void echo_on_udp_op(asock_op *op) { udp_step(op); }

/* --udp --multishot: one multishot receive-from delivers every datagram;
 * each goes back from its own slice with a send op of the pool, which
 * takes the slice and gives it back when it is released. With no op free
 * (--receives sends wait already) the datagram is dropped and counted as a
 * send error, as the kernel drops what it has no room for. */
static void on_udp_sent(asock_op *tx) {
  if (asock_op_status(tx) != 0)
    srv.send_errors++;
  asock_op_release(srv.pool, tx);
}

void echo_on_udp_delivery(asock_op *rx) {
  asock_op *tx;
  void *slice;
  size_t off, len;
  int r;

  if (!asock_op_more(rx)) {
    /* The final completion: an error the kernel reported (an ICMP error)
     * ends the receive, which starts again; the socket's close ends it for
     * good, and main() releases the op. */
    if (srv.stopping || asock_op_status(rx) == ASOCK_ECANCELED)
      return;
    srv.receive_errors++;
    r = asock_receive_from(srv.udp, rx);
    if (r != ASOCK_PENDING)
      fprintf(stderr, "asock-echo: receive-from: %s\n", asock_strerror(r));
    return;
  }
  srv.counts.messages++;
  srv.counts.bytes += asock_op_bytes(rx);
  if (asock_op_msg_flags(rx) & ASOCK_MSG_TRUNCATED)
    srv.truncated++;
  if (asock_op_acquire(srv.pool, &tx) != 0) {
    srv.send_errors++;
    return;
  }
  asock_op_detach_slice(rx, &slice, &off, &len);
  asock_op_attach_slice(tx, slice, off, len);
  asock_op_set_remote(tx, asock_op_remote(rx));
  asock_op_set_callback(tx, on_udp_sent);
  r = asock_send_to(srv.udp, tx);
  if (r == ASOCK_PENDING)
    return;
  if (r != 0 || asock_op_status(tx) != 0)
    srv.send_errors++;
  asock_op_release(srv.pool, tx);
}
