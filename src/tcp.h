/* The TCP operations: accept (src/tcp-accept.c), connect
 * (src/tcp-connect.c), receive (src/recv.c), send and sends of packets
 * (src/send.c, src/packets.c), shutdown and disconnect (src/shutdown.c),
 * listen and options (src/tcp-opts.c). */
#ifndef ASOCK_TCP_H
#define ASOCK_TCP_H

#include "queue.h"

/* ---- TCP operations --------------------------------------------------- */

/* Why a stream send or receive may not start on a socket whose state is
 * not ASOCK__STAGE_CONNECTED under ASOCK__SEND_STATE or ASOCK__RECV_STATE:
 * ASOCK_ECLOSED, ASOCK_EKIND, ASOCK_ENOTCONN, ASOCK_ESHUTDOWN or (a receive
 * behind a multishot one) ASOCK_EBUSY. */
int asock__send_state_error(uint32_t flags);
int asock__recv_state_error(uint32_t flags);

/* What every start of a stream send checks first (a send, a send of
 * packets): 0 or the error to return. */
static inline int asock__socket_check_send(const asock_socket *sock,
                                           const asock_op *op) {
  int err = asock__socket_check_op(sock, op);
  if (err != 0)
    return err;
  if (op->flags & ASOCK__OPF_MULTISHOT)
    return ASOCK_EKIND;
  if ((sock->flags & ASOCK__SEND_STATE) != ASOCK__STAGE_CONNECTED)
    return asock__send_state_error(sock->flags);
  return 0;
}

int asock__accept_check(asock_socket *sock, asock_op *op);
int asock__accept_start(asock_socket *sock, asock_op *op);
/* The connection an accept-receive took ended before sending anything: it
 * is closed, and the op waits on its listener again. */
void asock__accept_no_data(asock_op *op);
/* An accept-receive's first read on the socket it took: 1 when bytes came
 * (*bytes, and the window of an op without a buffer covers them), 0 when
 * it must wait (the op then holds no slice it took), or ASOCK_EOF or the
 * error that ended the connection first. */
int asock__recv_first(asock_socket *sock, asock_op *op, size_t *bytes);
/* Puts an op in a socket's receive queue as a receive that waits. */
void asock__recv_wait(asock_socket *sock, asock_op *op);
int asock__connect_check(asock_socket *sock, asock_op *op);
int asock__connect_start(asock_socket *sock, asock_op *op);
int asock__connect_host_start(asock_socket *sock, asock_op *op);
int asock__send_check(asock_socket *sock, asock_op *op);
int asock__send_start(asock_socket *sock, asock_op *op);
int asock__disconnect_check(asock_socket *sock, asock_op *op);
int asock__disconnect_start(asock_socket *sock, asock_op *op);
int asock__shutdown_check(asock_socket *sock, asock_op *op);
int asock__shutdown_start(asock_socket *sock, asock_op *op);
int asock__recv_check(asock_socket *sock, asock_op *op);
int asock__recv_start(asock_socket *sock, asock_op *op);

/* Binds (unless addr is NULL: bound before) and listens, without checking
 * the arguments; flags are ASOCK_LISTEN_* and ASOCK__LISTEN_*. */
int asock__tcp_listen(asock_socket *sock, const struct sockaddr *addr,
                      int backlog, unsigned int flags);
/* The options set before the socket had an OS socket are on it now, and on
 * any it makes again: they are let go. */
void asock__socket_options_done(asock_socket *sock);
/* Internal listen flags. SO_REUSEPORT, for a loop group's listeners that
 * the kernel balances between (Linux). */
#define ASOCK__LISTEN_REUSEPORT 0x100u
/* A listener whose connections are handed to other loops: its accept ops
 * with ASOCK__OPF_RAW_ACCEPT get a connection any loop can adopt with
 * asock__io_adopt(NULL, client, conn), in op->conn. */
#define ASOCK__LISTEN_HANDOFF 0x200u
/* Makes a socket of `size` bytes (an asock_socket first in it): for TCP
 * sizeof(asock_socket), for UDP sizeof(asock__udp_socket), with `flags`
 * (ASOCK__SF_UDP) set before asock__io_init() sees it. */
int asock__socket_new(asock_loop *loop, size_t size, uint32_t flags,
                      asock_socket **sock_out);
/* asock_tcp_create() and asock_udp_create(): the checks of an application's
 * request for a socket, then asock__socket_new(); `size` 0 is a TCP
 * socket's size on this loop (asock__io_socket_size()). */
int asock__socket_create(asock_socket **sock_out, asock_loop *loop, size_t size,
                         uint32_t flags);
/* The handle was closed to retry a connect with the next address. */
void asock__connect_reinit(asock_socket *sock);
/* Cancels the socket's pending connect, if any (with ASOCK_ECANCELED unless
 * a status is forced already). */
void asock__connect_cancel(asock_socket *sock);
/* Send side: unlinks a send that has not started and uncounts its bytes. */
void asock__send_unqueue(asock_socket *sock, asock_op *op);

/* The bytes an op ended early reports: a stream send's progress, else 0. */
static inline size_t asock__op_sent(const asock_op *op) {
  return op->kind == ASOCK_OP_SEND || op->kind == ASOCK_OP_SENDPACKETS
             ? op->sent
             : 0;
}

/* Sends of packets (src/packets.c). A file range's read on libuv's
 * thread pool: it fills `slice` for `op`, or, once the op gave it up (its
 * socket closed, or it was cancelled), ends on its own, giving the slice
 * back and freeing itself. */
typedef struct asock__file_read {
  uv_fs_t req;
  asock_op *op; /* NULL once given up */
  asock_loop *loop;
  void *slice;
} asock__file_read;
/* What packets_step() found: */
#define ASOCK__PK_DONE 0  /* every byte is on the wire */
#define ASOCK__PK_WRITE 2 /* the kernel is full: wait for writability */
#define ASOCK__PK_READ 3  /* a file range's bytes are to be read first */
/* Sends what can go now of the head send of packets: ASOCK__PK_* or the
 * error that ended it (ASOCK_EOF for a file shorter than its range). */
int asock__packets_step(asock_socket *sock, asock_op *op);
/* Starts reading the current file range into a slice (0, also when it
 * waits for a free slice), or the error. */
int asock__packets_read(asock_socket *sock, asock_op *op);
/* The read finished with status (0, ASOCK_EOF, an error). (src/send.c) */
void asock__packets_read_done(asock_socket *sock, asock_op *op, int status);
/* Appends the bytes of a send of packets that are in memory now (its
 * memory pieces, and a file range's slice) to iov[n..max): the new n. */
unsigned int asock__packets_iov(asock_op *op, uv_buf_t *iov, unsigned int n,
                                unsigned int max, size_t *bytes);
/* The bytes the kernel took are counted in op->sent: a slice whose bytes
 * are all sent goes back. */
void asock__packets_took(asock_op *op);
/* A send of packets ends: its slice goes back. */
void asock__packets_end(asock_op *op);
/* The head send of packets gives up the read it has on the thread pool. */
void asock__packets_abandon(asock_socket *sock);
/* Sends the socket's queue on after a send of packets got a slice, or was
 * cancelled while it waited (loop thread, inside a libuv callback). */
void asock__send_resume(asock_socket *sock);
int asock__packets_check(asock_socket *sock, asock_op *op);
int asock__packets_start(asock_socket *sock, asock_op *op);
/* Send side: reports a crossing of the watermarks. */
void asock__send_check_marks(asock_socket *sock);

/* The timing wheel found this op due. */
void asock__op_expired(asock_op *op);
/* Receive side: resumes reading for a socket that waited for a slice. */
void asock__recv_retry(asock_socket *sock);
/* Send side: completes every queued send with status. */
void asock__send_fail_all(asock_socket *sock, int status);
/* Send side: called when the send queue empties, for a waiting disconnect. */
void asock__send_drained(asock_socket *sock);
/* Cancels a pending op of the given socket. */
int asock__socket_cancel(asock_socket *sock, asock_op *op);

#endif /* ASOCK_TCP_H */
