/* Connecting: connect ops to an address or to each address a host name
 * resolves to. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* ---- connect ----------------------------------------------------------- */

/* The addresses tried are kept in the op until its next connect. */
static void forget_attempts(asock_op *op) {
  asock__free(op->attempts);
  op->attempts = NULL;
  op->nattempts = 0;
}

/* The address being tried ended with err. */
static void attempt_ended(asock_op *op, int err) {
  if (op->nattempts > 0)
    op->attempts[op->nattempts - 1].error = err;
}

static void connect_finish(asock_socket *sock, asock_op *op, int status) {
  attempt_ended(op, status);
  asock__socket_set_stage(sock, status == 0 ? ASOCK__STAGE_CONNECTED
                                            : ASOCK__STAGE_NEW);
  sock->connect = NULL;
  if (op->ai_head != NULL) {
    uv_freeaddrinfo(op->ai_head);
    op->ai_head = op->ai_next = NULL;
  }
  if (status == 0)
    asock__socket_options_done(sock);
  asock__op_done(op, status, 0);
}

/* Starts a connect to the next resolved address: 0, or the error of the
 * last address tried when none is left to start. */
static int connect_next(asock_socket *sock, asock_op *op) {
  int err = ASOCK_EAI_NONAME;

  while (op->ai_next != NULL) {
    struct addrinfo *ai = op->ai_next;
    op->ai_next = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
      continue;
    memcpy(&op->remote, ai->ai_addr, ai->ai_addrlen);
    op->flags |= ASOCK__OPF_HAS_REMOTE;
    memcpy(&op->attempts[op->nattempts].addr, ai->ai_addr, ai->ai_addrlen);
    op->attempts[op->nattempts++].error = 0;
    /* The op's copy: a ring's connect may be submitted after this call. */
    err = asock__io_connect(sock, op, (const struct sockaddr *)&op->remote,
                            sock->opts);
    if (err == 0)
      return 0;
    attempt_ended(op, err);
    /* A failed attempt may leave a socket of the wrong family in the
     * handle: the next attempt needs a fresh handle. */
    break;
  }
  return err;
}

/* The current address failed with `err`: the handle is closed and made
 * afresh (asock__connect_reinit() continues), to try the next address, or,
 * after the last, so that the socket can connect again. A connect that was
 * cancelled or timed out, or whose socket closed, ends now. */
static void connect_advance(asock_socket *sock, asock_op *op, int err) {
  if (op->forced_status == 0 &&
      (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE)) == 0) {
    /* The op's result until then: it completes with it if no address is
     * left. */
    op->status = err;
    attempt_ended(op, err);
    sock->flags |= ASOCK__SF_REINIT;
    asock__socket_set_handle(sock, ASOCK__HANDLE_CLOSING);
    asock__io_close(sock, 0);
    return;
  }
  connect_finish(sock, op, op->forced_status != 0 ? op->forced_status : err);
}

void asock__connect_done(asock_op *op, int status) {
  asock_socket *sock = op->socket;

  if (op->forced_status != 0) {
    connect_finish(sock, op, op->forced_status);
    return;
  }
  if (status == 0) {
    connect_finish(sock, op, 0);
    return;
  }
  if (sock->flags & ASOCK__SF_CLOSED) {
    connect_finish(sock, op, ASOCK_ECANCELED);
    return;
  }
  connect_advance(sock, op, status);
}

void asock__connect_reinit(asock_socket *sock) {
  asock_op *op = sock->connect;
  int err;

  sock->flags &= ~ASOCK__SF_REINIT;
  if ((sock->flags & ASOCK__SF_CLOSED) == 0 && op->forced_status == 0) {
    err = asock__io_init(sock);
    if (err == 0) {
      /* A bind before the connect went with the handle. */
      asock__socket_set_handle(sock, ASOCK__HANDLE_OPEN);
      sock->flags &= ~ASOCK__SF_BOUND;
      if (op->ai_next == NULL) {
        /* The last address failed: the socket, fresh again, may connect
         * anew. */
        connect_finish(sock, op, op->status);
        return;
      }
      err = connect_next(sock, op);
      if (err == 0)
        return;
      connect_advance(sock, op, err);
      return;
    }
    op->forced_status = err;
  }
  /* Closed or timed out while the handle was closing: the handle stays
   * closed, and the socket goes the way of every closed socket. */
  connect_finish(sock, op,
                 op->forced_status != 0 ? op->forced_status : ASOCK_ECANCELED);
  asock__socket_closed(sock);
}

int asock__connect_check(asock_socket *sock, asock_op *op) {
  int err = asock__socket_check_op(sock, op);
  if (err != 0)
    return err;
  if (asock__socket_stage(sock) != ASOCK__STAGE_NEW ||
      (sock->flags & ASOCK__SF_UDP) || (op->flags & ASOCK__OPF_MULTISHOT))
    return ASOCK_EKIND;
  if (op->host == NULL && (op->flags & ASOCK__OPF_HAS_REMOTE) == 0)
    return ASOCK_EINVAL;
  return 0;
}

int asock_connect(asock_socket *sock, asock_op *op) {
  return asock__start_fast(sock, op, ASOCK_OP_CONNECT, asock__connect_check,
                           asock__connect_start);
}

int asock__connect_start(asock_socket *sock, asock_op *op) {
  int err;

  forget_attempts(op);
  if (op->host != NULL)
    return asock__connect_host_start(sock, op);
  err = asock__io_connect(sock, op, (const struct sockaddr *)&op->remote,
                          sock->opts);
  if (err != 0)
    return err;
  op->seq = sock->send_seq++;
  op->where = ASOCK__Q_LIBUV;
  sock->connect = op;
  asock__socket_set_stage(sock, ASOCK__STAGE_CONNECTING);
  asock__loop_watch(sock->loop, op);
  return ASOCK_PENDING;
}

/* Room for a record of each address of res the connect may try. */
static int keep_attempts(asock_op *op, const struct addrinfo *res) {
  size_t n = 0;
  for (; res != NULL; res = res->ai_next)
    if (res->ai_family == AF_INET || res->ai_family == AF_INET6)
      n++;
  if (n == 0)
    return 0;
  op->attempts = asock__calloc(n, sizeof(*op->attempts));
  return op->attempts == NULL ? ASOCK_ENOMEM : 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  asock_op *op = ASOCK__CONTAINER_OF(req, asock_op, req);
  asock_socket *sock = op->socket;
  int err;

  asock__socket_set_stage(sock, ASOCK__STAGE_CONNECTING);
  if (op->forced_status != 0 || status < 0 ||
      (sock->flags & (ASOCK__SF_CLOSED | ASOCK__SF_HANDLE))) {
    if (res != NULL)
      uv_freeaddrinfo(res);
    if (op->forced_status != 0)
      err = op->forced_status;
    else if (status < 0)
      err = asock__from_uv(status);
    else
      err = ASOCK_ECANCELED;
    connect_finish(sock, op, err);
  } else if (keep_attempts(op, res) != 0) {
    uv_freeaddrinfo(res);
    connect_finish(sock, op, ASOCK_ENOMEM);
  } else {
    op->ai_head = op->ai_next = res;
    err = connect_next(sock, op);
    if (err != 0)
      connect_advance(sock, op, err);
  }
  /* The resolver's reference: the socket may go now. */
  asock__socket_unref(sock);
}

int asock_connect_host(asock_socket *sock, asock_op *op, const char *host,
                       unsigned short port) {
  size_t len;
  int err;

  if (op != NULL && asock_op_is_pending(op))
    return ASOCK_EBUSY;
  if (sock == NULL || op == NULL || host == NULL)
    return ASOCK_EINVAL;
  /* The name is copied into the op, so that a start handed to the loop from
   * another thread still has it. */
  len = strlen(host);
  op->host = asock__malloc(len + 1);
  if (op->host == NULL)
    return ASOCK_ENOMEM;
  memcpy(op->host, host, len + 1);
  op->port = port;
  err = asock__start(sock, op, ASOCK_OP_CONNECT, asock__connect_check,
                     asock__connect_start);
  if (err < 0) {
    asock__free(op->host);
    op->host = NULL;
  }
  return err;
}

int asock__connect_host_start(asock_socket *sock, asock_op *op) {
  struct addrinfo hints;
  char service[8];
  int err;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  snprintf(service, sizeof(service), "%u", (unsigned int)op->port);
  op->flags &= ~ASOCK__OPF_HAS_REMOTE;
  err = asock__uv_getaddrinfo(sock->loop->uv, &op->req.getaddrinfo, on_resolved,
                              op->host, service, &hints);
  /* libuv copied the name. */
  asock__free(op->host);
  op->host = NULL;
  if (err != 0)
    return asock__from_uv(err);
  /* The resolver runs apart from the handle: it keeps the socket alive. */
  asock__socket_ref(sock);
  op->seq = sock->send_seq++;
  op->where = ASOCK__Q_LIBUV;
  sock->connect = op;
  asock__socket_set_stage(sock, ASOCK__STAGE_RESOLVING);
  asock__loop_watch(sock->loop, op);
  return ASOCK_PENDING;
}

size_t asock_op_connect_attempts(const asock_op *op) {
  if (op == NULL || op->kind != ASOCK_OP_CONNECT || asock_op_is_pending(op))
    return 0;
  return op->nattempts;
}

int asock_op_connect_attempt(const asock_op *op, size_t index,
                             struct sockaddr_storage *addr, int *error) {
  if (op == NULL)
    return ASOCK_EINVAL;
  if (asock_op_is_pending(op))
    return ASOCK_EBUSY;
  if (index >= asock_op_connect_attempts(op))
    return ASOCK_EINVAL;
  if (addr != NULL) {
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, &op->attempts[index].addr, sizeof(op->attempts[index].addr));
  }
  if (error != NULL)
    *error = op->attempts[index].error;
  return 0;
}

void asock__connect_cancel(asock_socket *sock) {
  asock_op *op = sock->connect;
  if (op == NULL)
    return;
  if (op->forced_status == 0)
    op->forced_status = ASOCK_ECANCELED;
  if (asock__socket_stage(sock) == ASOCK__STAGE_RESOLVING)
    uv_cancel((uv_req_t *)&op->req.getaddrinfo);
}

void asock__io_connected(asock_socket *sock, int status) {
  asock__connect_done(sock->connect, status);
}
