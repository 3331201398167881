/* asock-bench's UDP mode: each "connection" is a connected UDP socket that
 * keeps `depth` datagrams in flight. Echoes may come back in any order, or
 * not at all: a message not echoed within the timeout is counted lost and
 * its slot reused, and an echo that turns up after that counts as late. The
 * header of every datagram says which message it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-run.h"

typedef struct udp_slot {
  uint64_t msg;
  uint64_t sent_at;
  int active;
  uint8_t header[BENCH_HEADER_SIZE];
} udp_slot;

typedef struct udp_conn {
  uv_udp_t handle;
  bench_run *run;
  uint32_t index;
  int initialized;
  int open;
  uint64_t next_msg;
  unsigned int inflight;
  udp_slot *slots; /* depth of them */
} udp_conn;

/* A send the kernel could not take at once. It carries its own copy of the
 * header: the slot may be reused (the message lost) before it goes out. */
typedef struct udp_send {
  uv_udp_send_t req;
  uint8_t header[BENCH_HEADER_SIZE];
} udp_send;

typedef struct udp_mode {
  udp_conn *conns;
  udp_slot *slots;
  uv_timer_t loss_timer;
  int timer_initialized;
  unsigned int open;
} udp_mode;

static void slot_settle(udp_conn *c, udp_slot *s) {
  s->active = 0;
  c->inflight--;
}

static void on_send(uv_udp_send_t *req, int status) {
  udp_conn *c = req->handle->data;

  if (status < 0 && status != UV_ECANCELED)
    bench_run_socket_error(c->run, c->index, "send", status);
  free(req);
}

/* Sends the message in slot s. Returns 0, or -1 if it could not be sent (the
 * slot is then free again). */
static int conn_send(udp_conn *c, udp_slot *s) {
  bench_run *r = c->run;
  uv_buf_t bufs[2];
  udp_send *req;
  unsigned int n;
  int err;

  n = bench_pattern_bufs(&r->pattern, c->index, s->msg, s->header, bufs);
  err = uv_udp_try_send(&c->handle, bufs, n, NULL);
  if (err >= 0)
    return 0;
  if (err == UV_EAGAIN) {
    req = malloc(sizeof(*req));
    err = UV_ENOMEM;
    if (req != NULL) {
      memcpy(req->header, s->header, BENCH_HEADER_SIZE);
      bufs[0].base = (char *)req->header;
      err = uv_udp_send(&req->req, &c->handle, bufs, n, NULL, on_send);
      if (err == 0)
        return 0;
      free(req);
    }
  }
  /* An ICMP error from an earlier datagram surfaces here too (on Linux as
   * ECONNREFUSED when nothing listens on the port). */
  bench_run_socket_error(r, c->index, "send", err);
  slot_settle(c, s);
  bench_run_abandon(r, 1);
  return -1;
}

static void conn_pump(udp_conn *c) {
  bench_run *r = c->run;
  unsigned int depth = r->cfg->depth, i;
  uint64_t now;
  udp_slot *s;

  if (!c->open || !bench_run_sending(r) || c->inflight >= depth)
    return;
  now = uv_hrtime();
  while (c->inflight < depth) {
    for (i = 0; c->slots[i].active; i++)
      ;
    s = &c->slots[i];
    s->msg = c->next_msg++;
    s->sent_at = now;
    s->active = 1;
    c->inflight++;
    bench_run_sent(r);
    /* After a failure, the loss timer's next tick tries again. */
    if (conn_send(c, s) != 0)
      break;
  }
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned int flags) {
  udp_conn *c = handle->data;
  bench_run *r = c->run;
  const uint8_t *data = (const uint8_t *)buf->base;
  unsigned int i;
  char why[96];
  uint32_t conn;
  uint64_t msg;
  int64_t bad;
  udp_slot *s;

  if (nread == 0 && addr == NULL)
    return; /* nothing more to read */
  if (nread < 0) {
    bench_run_socket_error(r, c->index, "receive", (int)nread);
    return;
  }
  if ((flags & UV_UDP_PARTIAL) || (size_t)nread != r->cfg->size) {
    snprintf(why, sizeof(why), "a datagram of %s%ld bytes, not %lu",
             flags & UV_UDP_PARTIAL ? "more than " : "", (long)nread,
             (unsigned long)r->cfg->size);
    bench_run_bad_message(r, c->index, why);
    return;
  }
  if (bench_pattern_parse(data, &conn, &msg) != 0 || conn != c->index) {
    bench_run_bad_message(r, c->index, "a datagram that is none of its own");
    return;
  }
  s = NULL;
  for (i = 0; i < r->cfg->depth; i++)
    if (c->slots[i].active && c->slots[i].msg == msg)
      s = &c->slots[i];
  if (s == NULL) {
    if (msg < c->next_msg)
      r->late++;
    else
      bench_run_bad_message(r, c->index, "an echo of a message never sent");
    return;
  }
  bad = bench_pattern_check(&r->pattern, c->index, msg, 0, data, (size_t)nread);
  slot_settle(c, s);
  if (bad >= 0) {
    bench_run_mismatch(r, c->index, msg, (size_t)bad, data[bad]);
    bench_run_abandon(r, 1);
  } else {
    bench_run_complete(r, uv_hrtime() - s->sent_at);
  }
  conn_pump(c);
}

static void on_loss_timer(uv_timer_t *timer) {
  bench_run *r = timer->data;
  udp_mode *m = r->mode_data;
  uint64_t now = uv_hrtime();
  uint64_t limit = (uint64_t)(r->cfg->timeout * 1e9);
  unsigned int i, j;
  udp_conn *c;

  for (i = 0; i < r->cfg->connections; i++) {
    c = &m->conns[i];
    if (!c->open)
      continue;
    for (j = 0; j < r->cfg->depth; j++) {
      if (c->slots[j].active && now - c->slots[j].sent_at >= limit) {
        slot_settle(c, &c->slots[j]);
        r->lost++;
        bench_run_abandon(r, 1);
      }
    }
    conn_pump(c);
  }
}

static int udp_open(bench_run *r) {
  const bench_config *cfg = r->cfg;
  udp_mode *m;
  udp_conn *c;
  unsigned int i;
  int err;

  m = calloc(1, sizeof(*m));
  if (m == NULL)
    return UV_ENOMEM;
  r->mode_data = m;
  m->conns = calloc(cfg->connections, sizeof(*m->conns));
  m->slots = calloc((size_t)cfg->connections * cfg->depth, sizeof(*m->slots));
  if (m->conns == NULL || m->slots == NULL)
    return UV_ENOMEM;
  uv_timer_init(&r->loop, &m->loss_timer);
  m->loss_timer.data = r;
  m->timer_initialized = 1;
  for (i = 0; i < cfg->connections; i++) {
    c = &m->conns[i];
    c->run = r;
    c->index = i;
    c->slots = m->slots + (size_t)i * cfg->depth;
    err = uv_udp_init(&r->loop, &c->handle);
    if (err != 0) {
      bench_run_connect_error(r, i, err);
      continue;
    }
    c->handle.data = c;
    c->initialized = 1;
    err = uv_udp_connect(&c->handle, (const struct sockaddr *)&r->addr);
    if (err == 0)
      err = uv_udp_recv_start(&c->handle, bench_run_alloc, on_recv);
    if (err != 0) {
      bench_run_connect_error(r, i, err);
      continue;
    }
    c->open = 1;
    m->open++;
    r->connected++;
  }
  bench_run_ready(r, m->open > 0);
  return 0;
}

static void udp_start(bench_run *r) {
  udp_mode *m = r->mode_data;
  uint64_t period = (uint64_t)(r->cfg->timeout * 1e3 / 4);
  unsigned int i;

  if (period < 10)
    period = 10;
  if (period > 250)
    period = 250;
  uv_timer_start(&m->loss_timer, on_loss_timer, period, period);
  for (i = 0; i < r->cfg->connections; i++)
    conn_pump(&m->conns[i]);
}

static void udp_close(bench_run *r) {
  udp_mode *m = r->mode_data;
  unsigned int i;

  if (m == NULL)
    return;
  if (m->timer_initialized && !uv_is_closing((uv_handle_t *)&m->loss_timer))
    uv_close((uv_handle_t *)&m->loss_timer, NULL);
  if (m->conns == NULL)
    return;
  for (i = 0; i < r->cfg->connections; i++) {
    if (m->conns[i].initialized &&
        !uv_is_closing((uv_handle_t *)&m->conns[i].handle)) {
      m->conns[i].open = 0;
      uv_close((uv_handle_t *)&m->conns[i].handle, NULL);
    }
  }
}

static void udp_release(bench_run *r) {
  udp_mode *m = r->mode_data;

  if (m == NULL)
    return;
  free(m->conns);
  free(m->slots);
  free(m);
  r->mode_data = NULL;
}

const bench_mode_ops bench_udp_ops = {udp_open, udp_start, NULL,
                                      NULL,     udp_close, udp_release};
