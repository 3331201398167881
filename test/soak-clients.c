/* asock-soak's clients (see soak.c): each slot runs one connection after
 * another, each with its own way to end, and checks every echoed byte. */
#include <stdlib.h>
#include <string.h>

#include "soak.h"

client *clients;
int nclients;

static void client_after(client *cl, hop *h);

void client_close(client *cl, unsigned int flags) {
  if (cl->closed)
    return;
  cl->closed = 1;
  asock_socket_close(cl->sock, flags);
}

/* A connection is over once the socket is closed and both ops are idle:
 * its results are checked and the slot starts the next one. */
void client_maybe_done(client *cl) {
  if (!cl->live || !cl->closed || cl->c.pending || cl->r.pending)
    return;
  cl->live = 0;
  conns_done++;
  counts[cl->mode]++;
  bytes_echoed += cl->echoed;
  if (!stopping)
    client_next(cl);
}

/* A cancelling client cancels a quarter of its receives that wait, at
 * once or when one of its sends completes. A receive cancelled takes no
 * byte: the stream must go on intact. */
static void maybe_cancel_recv(client *cl) {
  if (cl->mode == M_CANCEL && cl->r.pending && !cl->cancelling &&
      next_rand() % 4 == 0 && asock_cancel(cl->r.op) == 0)
    cl->cancelling = 1;
}

static void client_recv(client *cl) {
  int r;
  if (cl->closed || cl->ended || cl->r.pending || cl->disconnecting)
    return;
  /* Half the connections give each receive a short deadline. */
  if (cl->final_probe)
    asock_op_set_timeout(cl->r.op, 30);
  else
    asock_op_set_timeout(cl->r.op, (cl->off & 1) ? rand_between(5, 200) : 0);
  r = hop_started(&cl->r, asock_receive(cl->sock, cl->r.op), "receive");
  if (r == 0)
    client_after(cl, &cl->r);
  else
    maybe_cancel_recv(cl);
}

static void client_send(client *cl) {
  const void *mem;
  size_t len;
  int r;
  if (cl->closed || cl->sending_done || cl->c.pending)
    return;
  if (cl->hdr_sent < HDR) {
    mem = cl->hdr;
    len = HDR;
  } else {
    uint64_t limit = cl->stop_at < cl->total ? cl->stop_at : cl->total;
    if (cl->sent >= limit) {
      cl->sending_done = 1;
      cl->waiting_since = uv_hrtime();
      if (cl->mode == M_HALFCLOSE) {
        cl->disconnecting = 1;
        hop_started(&cl->c, asock_disconnect(cl->sock, cl->c.op), "disconnect");
      } else if (cl->mode == M_RESET)
        client_close(cl, ASOCK_CLOSE_ABORT);
      return;
    }
    len = rand_between(1, MAX_CHUNK);
    if (len > limit - cl->sent)
      len = (size_t)(limit - cl->sent);
    mem = pattern(cl->off, cl->sent);
  }
  asock_op_set_buffer(cl->c.op, (void *)mem, len, 0, len);
  r = hop_started(&cl->c, asock_send(cl->sock, cl->c.op), "send");
  if (r == ASOCK_PENDING && cl->hdr_sent == HDR)
    cl->sending = len;
  if (r == 0)
    client_after(cl, &cl->c);
  else if (r == ASOCK_PENDING && cl->mode == M_RESET &&
           cl->sent >= cl->cancel_at && (next_rand() & 1) &&
           asock_cancel(cl->c.op) == 0)
    /* Bytes under way: the connection resets, and its receives end with
     * it (on io_uring every send is under way, the header's too, so this
     * can come before the first receive is started). */
    cl->ended = 1;
}

/* Handles the result of the op that just completed. */
static void client_after(client *cl, hop *h) {
  asock_op *op = h->op;
  int status = asock_op_status(op);
  asock_op_kind kind = asock_op_last_kind(op);
  int resetting = cl->mode == M_RESET || cl->mode == M_HALFCLOSE;

  if (kind == ASOCK_OP_CONNECT) {
    if (status != 0) {
      if (!cl->closed)
        fail("connect: %s", asock_err_name(status));
      client_close(cl, 0);
      return;
    }
    client_send(cl);
    client_recv(cl);
    return;
  }
  if (kind == ASOCK_OP_DISCONNECT) {
    if (status != 0 && status != ASOCK_ECANCELED &&
        status != ASOCK_ECONNRESET && status != ASOCK_EPIPE)
      fail("disconnect: %s", asock_err_name(status));
    client_close(cl, 0);
    return;
  }
  if (kind == ASOCK_OP_SEND) {
    cl->sending = 0;
    if (status != 0) {
      if (!resetting && !cl->closed && !stopping)
        fail("send: %s (%s)", asock_err_name(status), mode_names[cl->mode]);
      client_close(cl, ASOCK_CLOSE_ABORT);
      return;
    }
    if (cl->hdr_sent < HDR)
      cl->hdr_sent = HDR;
    else
      cl->sent += asock_op_bytes(op);
    maybe_cancel_recv(cl);
    client_send(cl);
    return;
  }
  /* A receive. */
  if (status == ASOCK_ETIMEDOUT) {
    client_timeouts++;
    if (cl->final_probe) {
      client_close(cl, 0); /* nothing more came: no byte twice */
      return;
    }
    client_recv(cl);
    return;
  }
  if (status == ASOCK_ECANCELED && !cl->closed && cl->cancelling) {
    cl->cancelling = 0;
    recv_cancels++;
    client_recv(cl);
    return;
  }
  if (status != 0) {
    int expected =
        cl->closed || stopping || resetting ||
        (cl->mode == M_HALFCLOSE && status == ASOCK_ECANCELED) ||
        (cl->mode == M_QUIET && status == ASOCK_EOF && cl->echoed == cl->sent);
    if (!expected)
      fail("receive: %s (%s, %llu of %llu echoed)", asock_err_name(status),
           mode_names[cl->mode], (unsigned long long)cl->echoed,
           (unsigned long long)cl->sent);
    cl->ended = 1;
    client_close(cl, 0);
    return;
  }
  {
    const unsigned char *p = asock_op_data(op);
    size_t n = asock_op_bytes(op);
    if (cl->final_probe) {
      fail("%llu bytes after the whole echo", (unsigned long long)n);
      client_close(cl, 0);
      return;
    }
    while (n > 0 && cl->hdr_got < HDR) {
      if (*p++ != cl->hdr[cl->hdr_got++])
        fail("the header came back wrong");
      n--;
    }
    /* Bytes of a send still pending may come back before it completes
     * (a send the kernel takes in parts: on io_uring it completes once the
     * last part went). */
    uint64_t bound = cl->sent + cl->sending;
    if (cl->echoed + n > bound || !matches(p, n, cl->off, cl->echoed)) {
      size_t i = 0;
      while (i < n && i + cl->echoed < bound &&
             p[i] == pattern(cl->off, cl->echoed + i)[0])
        i++;
      fail("echo bytes %llu..%llu wrong or never sent (%s, %llu sent, "
           "%llu pending, first wrong at %llu)",
           (unsigned long long)cl->echoed, (unsigned long long)(cl->echoed + n),
           mode_names[cl->mode], (unsigned long long)cl->sent,
           (unsigned long long)cl->sending,
           (unsigned long long)(cl->echoed + i));
      client_close(cl, ASOCK_CLOSE_ABORT);
      return;
    }
    cl->echoed += n;
  }
  /* A quiet client waits for the server to give up on it. */
  if (cl->echoed == cl->total && cl->hdr_got == HDR && cl->mode != M_QUIET) {
    if (cl->mode == M_TIMEOUT) {
      cl->final_probe = 1;
      cl->waiting_since = uv_hrtime();
      client_recv(cl);
      return;
    }
    client_close(cl, 0);
    return;
  }
  client_recv(cl);
}

void client_cb(asock_op *op) {
  hop *h = hop_completed(op);
  client *cl = (client *)h->owner;
  client_after(cl, h);
  client_maybe_done(cl);
}

void client_next(client *cl) {
  int r;
  uint32_t mode_pick = (uint32_t)(next_rand() % 100);
  memset(&cl->mode, 0, sizeof(*cl) - offsetof(client, mode));
  cl->mode = mode_pick < 40   ? M_GRACEFUL
             : mode_pick < 55 ? M_HALFCLOSE
             : mode_pick < 70 ? M_RESET
             : mode_pick < 75 ? M_QUIET
             : mode_pick < 90 ? M_CANCEL
                              : M_TIMEOUT;
  cl->off = (uint32_t)(next_rand() % TABLE);
  /* Sizes spread over orders of magnitude: 0 B to MAX_TOTAL. */
  cl->total = (uint32_t)(next_rand() % ((uint64_t)1 << rand_between(0, 18)));
  if (cl->total > MAX_TOTAL)
    cl->total = MAX_TOTAL;
  cl->stop_at = cl->total;
  if (cl->mode == M_RESET || cl->mode == M_QUIET)
    cl->stop_at = cl->total > 0 ? next_rand() % (cl->total + 1) : 0;
  cl->cancel_at = cl->stop_at / 2;
  cl->hdr[0] = 'A';
  cl->hdr[1] = 'S';
  cl->hdr[2] = (unsigned char)cl->mode;
  memcpy(cl->hdr + 4, &cl->off, 4);
  memcpy(cl->hdr + 8, &cl->total, 4);
  cl->live = 1;
  asock_op_clear_buffer(cl->r.op);
  if (asock_tcp_create(&cl->sock, loop) != 0) {
    fail("asock_tcp_create failed");
    cl->live = 0;
    return;
  }
  asock_op_set_remote(cl->c.op, (struct sockaddr *)&srv_addr);
  r = hop_started(&cl->c, asock_connect(cl->sock, cl->c.op), "connect");
  if (r != ASOCK_PENDING) {
    cl->closed = 1;
    asock_socket_close(cl->sock, 0);
    cl->live = 0;
  }
}
