/* The fault injection sweep's sends of packets: a server answers each
 * connection with one asock_send_packets() of a header, a range of a file
 * and a trailer, then closes it; clients read to the end of the stream and
 * check every byte. The file's range is longer than the kernel's buffers
 * hold, so the send waits for writability part way. Whatever call the
 * sweep fails (sendfile() among them: EINVAL takes the reading path on the
 * thread pool, EIO ends the send part way), every op completes once, every
 * slice a read took goes back, and a client that got its end of stream
 * after a send that succeeded has every byte. */
#include <stdio.h>
#include <string.h>

#include "fault-run.h"

enum {
  FP_CLIENTS = 2,
  FP_HEAD = 32,
  FP_RANGE_AT = 1000,
  FP_RANGE = 256 * 1024,
  FP_FILE = FP_RANGE_AT + FP_RANGE + 100,
  FP_TAIL = 16,
  FP_TOTAL = FP_HEAD + FP_RANGE + FP_TAIL
};

/* ---- the file ------------------------------------------------------------ */

static uv_file file = -1;
static char path[1024];

/* Byte `pos` of the stream every client expects. */
static unsigned char expected(size_t pos) {
  if (pos < FP_HEAD)
    return fx_byte(20, pos);
  if (pos < FP_HEAD + FP_RANGE)
    return fx_byte(21, FP_RANGE_AT + pos - FP_HEAD);
  return fx_byte(22, pos - FP_HEAD - FP_RANGE);
}

/* The file, written with libuv's own calls (no injection point). */
static int file_open(void) {
  static unsigned char block[16384];
  char tmpl[1024];
  size_t n = sizeof(tmpl) - 32;
  size_t at = 0;
  uv_fs_t req;

  if (uv_os_tmpdir(tmpl, &n) != 0)
    return -1;
  (void)snprintf(tmpl + n, sizeof(tmpl) - n, "/asock-fault-XXXXXX");
  if (uv_fs_mkstemp(NULL, &req, tmpl, NULL) < 0) {
    uv_fs_req_cleanup(&req);
    return -1;
  }
  file = (uv_file)req.result;
  (void)snprintf(path, sizeof(path), "%s", req.path);
  uv_fs_req_cleanup(&req);
  while (at < FP_FILE) {
    size_t len = FP_FILE - at < sizeof(block) ? FP_FILE - at : sizeof(block);
    size_t i;
    uv_buf_t b;
    for (i = 0; i < len; i++)
      block[i] = fx_byte(21, at + i);
    b = uv_buf_init((char *)block, (unsigned int)len);
    if (uv_fs_write(NULL, &req, file, &b, 1, (int64_t)at, NULL) != (int)len) {
      uv_fs_req_cleanup(&req);
      return -1;
    }
    uv_fs_req_cleanup(&req);
    at += len;
  }
  return 0;
}

static void file_close(void) {
  uv_fs_t req;
  if (file < 0)
    return;
  (void)uv_fs_close(NULL, &req, file, NULL);
  uv_fs_req_cleanup(&req);
  (void)uv_fs_unlink(NULL, &req, path, NULL);
  uv_fs_req_cleanup(&req);
  file = -1;
}

/* ---- the server ---------------------------------------------------------- */

typedef struct fp_conn {
  asock_socket *sock;
  fx_rec *tx;
  asock_packet list[3];
  int ended;
} fp_conn;

static unsigned char head[FP_HEAD], tail[FP_TAIL];
static fp_conn conns[FP_CLIENTS + 2];
static int nconns;
static int sent_ok; /* sends of packets that completed with every byte */

static void conn_sent(fp_conn *c, int status, size_t bytes) {
  if (status == 0) {
    if (bytes != FP_TOTAL)
      fx_fail("a send of packets moved %u bytes of %u", (unsigned)bytes,
              (unsigned)FP_TOTAL);
    sent_ok++;
  } else if (bytes > FP_TOTAL) {
    fx_fail("a failed send of packets reports %u bytes", (unsigned)bytes);
  }
  c->ended = 1;
  fx_close(c->sock);
}

static void tx_done(fx_rec *rec) {
  conn_sent(rec->ctx, asock_op_status(rec->op), asock_op_bytes(rec->op));
}

static void fp_serve(asock_socket *sock) {
  fp_conn *c;
  int r;

  if (nconns == (int)(sizeof(conns) / sizeof(conns[0]))) {
    fx_fail("more connections than clients");
    asock_socket_close(sock, 0);
    return;
  }
  c = &conns[nconns++];
  memset(c, 0, sizeof(*c));
  c->sock = sock;
  fx_track(sock);
  c->tx = fx_op("send packets", tx_done, c);
  if (c->tx == NULL) {
    c->ended = 1;
    fx_close(sock);
    return;
  }
  c->list[0].base = head;
  c->list[0].len = FP_HEAD;
  c->list[0].file = -1;
  c->list[1].base = NULL;
  c->list[1].len = FP_RANGE;
  c->list[1].file = file;
  c->list[1].offset = FP_RANGE_AT;
  c->list[2].base = tail;
  c->list[2].len = FP_TAIL;
  c->list[2].file = -1;
  r = asock_op_set_packets(c->tx->op, c->list, 3);
  if (r != 0)
    fx_fail("asock_op_set_packets: %s", asock_err_name(r));
  r = fx_started(c->tx, asock_send_packets(sock, c->tx->op),
                 "asock_send_packets");
  if (r == 0)
    conn_sent(c, asock_op_status(c->tx->op), asock_op_bytes(c->tx->op));
  else if (r < 0)
    conn_sent(c, r, 0);
}

/* ---- the clients -------------------------------------------------------- */

typedef struct fp_client {
  asock_socket *sock;
  fx_rec *ctl;
  fx_rec *rx;
  unsigned char in[FP_TOTAL + 1];
  size_t got;
  int eof;
  int ended;
} fp_client;

static fp_client clients[FP_CLIENTS];

static void client_end(fp_client *c) {
  if (c->ended)
    return;
  c->ended = 1;
  fx_close(c->sock);
}

/* Receives until one has to wait, into the rest of the client's buffer. */
static void client_read(fp_client *c) {
  for (;;) {
    int r;
    if (c->got > FP_TOTAL) {
      fx_fail("a client got more than the stream");
      client_end(c);
      return;
    }
    asock_op_set_buffer(c->rx->op, c->in, sizeof(c->in), c->got,
                        sizeof(c->in) - c->got);
    r = fx_started(c->rx, asock_receive(c->sock, c->rx->op), "asock_receive");
    if (r == ASOCK_PENDING)
      return;
    if (r != 0 || asock_op_status(c->rx->op) != 0) {
      c->eof = r == 0 && asock_op_status(c->rx->op) == ASOCK_EOF;
      client_end(c);
      return;
    }
    c->got += asock_op_bytes(c->rx->op);
  }
}

static void rx_done(fx_rec *rec) {
  fp_client *c = rec->ctx;
  if (asock_op_status(rec->op) != 0) {
    c->eof = asock_op_status(rec->op) == ASOCK_EOF;
    client_end(c);
    return;
  }
  c->got += asock_op_bytes(rec->op);
  client_read(c);
}

static void ctl_done(fx_rec *rec) {
  fp_client *c = rec->ctx;
  if (asock_op_status(rec->op) != 0) {
    client_end(c);
    return;
  }
  client_read(c);
}

static void client_start(fp_client *c, const struct sockaddr_storage *addr) {
  int r;

  memset(c, 0, sizeof(*c));
  c->ended = 1;
  r = asock_tcp_create(&c->sock, fx.loop);
  fx_check_code(r, "client", "asock_tcp_create");
  if (r != 0)
    return;
  fx_track(c->sock);
  c->ended = 0;
  c->ctl = fx_op("client connect", ctl_done, c);
  c->rx = fx_op("client receive", rx_done, c);
  if (c->ctl == NULL || c->rx == NULL) {
    client_end(c);
    return;
  }
  asock_op_set_remote(c->ctl->op, (const struct sockaddr *)addr);
  r = fx_started(c->ctl, asock_connect(c->sock, c->ctl->op), "asock_connect");
  if (r != ASOCK_PENDING)
    client_end(c);
}

static int clients_ended(void) {
  int i;
  for (i = 0; i < FP_CLIENTS; i++)
    if (!clients[i].ended)
      return 0;
  return 1;
}

static int packets_done(void) {
  int i;
  if (!clients_ended())
    return 0;
  for (i = 0; i < nconns; i++)
    if (!conns[i].ended)
      return 0;
  return 1;
}

/* Every byte a client got is the stream's, whatever failed: a send that
 * fails part way stops it, and never sends a wrong byte. 1 when each
 * client had all of it and then its end. */
static int clients_ok(void) {
  int ok = 1;
  int i;
  for (i = 0; i < FP_CLIENTS; i++) {
    const fp_client *c = &clients[i];
    size_t j;
    for (j = 0; j < c->got && j < FP_TOTAL; j++)
      if (c->in[j] != expected(j)) {
        fx_fail("client %d: byte %u differs", i, (unsigned)j);
        return 0;
      }
    if (!c->eof || c->got != FP_TOTAL)
      ok = 0;
  }
  return ok;
}

/* Every send of packets that pended has completed. */
static int sends_completed(void) {
  int i;
  for (i = 0; i < nconns; i++)
    if (conns[i].tx != NULL && conns[i].tx->calls < conns[i].tx->pending)
      return 0;
  return 1;
}

void scenario_packets(void) {
  struct sockaddr_storage addr;
  size_t i;
  int j;

  memset(conns, 0, sizeof(conns));
  nconns = 0;
  sent_ok = 0;
  for (i = 0; i < FP_HEAD; i++)
    head[i] = fx_byte(20, i);
  for (i = 0; i < FP_TAIL; i++)
    tail[i] = fx_byte(22, i);
  if (file_open() != 0) {
    fx_fail("the scenario's file could not be made");
    file_close();
    return;
  }
  if (fx_listen_with(&addr, fp_serve) == 0) {
    for (j = 0; j < FP_CLIENTS; j++)
      client_start(&clients[j], &addr);
    fx_run(packets_done);
  }
  fx.complete = clients_ok() && packets_done() && sent_ok == FP_CLIENTS;
  /* The sends must be over before the file closes: what is still open is
   * closed now, and its ops complete. */
  for (j = 0; j < nconns; j++)
    fx_close(conns[j].sock);
  for (j = 0; j < FP_CLIENTS; j++)
    if (clients[j].sock != NULL)
      fx_close(clients[j].sock);
  (void)fx_run(sends_completed);
  file_close();
}
