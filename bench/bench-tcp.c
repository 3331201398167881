/* asock-bench's closed-loop TCP mode. All connections are opened first, at
 * most BENCH_CONNECT_RAMP at a time; then each keeps `depth` messages in
 * flight, starting a new one whenever an echo is complete, and checks every
 * echoed byte. A connection writes through one uv_write at a time: messages
 * started while it is busy wait and go out together in the next one, after a
 * synchronous attempt with uv_try_write. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-run.h"

enum { CONN_IDLE, CONN_CONNECTING, CONN_OPEN, CONN_CLOSED };

typedef struct tcp_conn {
  uv_tcp_t handle;
  uv_connect_t connect_req;
  uv_write_t write_req;
  bench_run *run;
  uint32_t index;
  int state;
  int writing;       /* write_req is in flight */
  uint64_t sent;     /* messages started */
  uint64_t written;  /* messages handed to the socket or to write_req */
  uint64_t received; /* messages echoed whole */
  size_t recv_off;   /* bytes of message `received` checked so far */
  /* Per message in flight, at index (message % depth): when it started, and
   * its header, which must outlive the write that sends it. */
  uint64_t *send_time;
  uint8_t *headers;
} tcp_conn;

typedef struct tcp_mode {
  tcp_conn *conns;
  uint64_t *send_times;
  uint8_t *headers;
  uv_buf_t *bufs;    /* 2 * depth: the pieces of one write */
  unsigned int next; /* the next connection to open */
  unsigned int connecting;
  unsigned int open;
  int give_up; /* the connect phase is over: open no more */
} tcp_mode;

static void conn_close(tcp_conn *c) {
  if (c->state == CONN_CONNECTING || c->state == CONN_OPEN) {
    c->state = CONN_CLOSED;
    uv_close((uv_handle_t *)&c->handle, NULL);
  }
}

/* Closes a connection whose stream can no longer be trusted; its messages in
 * flight will never come back. */
static void conn_drop(tcp_conn *c) {
  bench_run_abandon(c->run, c->sent - c->received);
  c->received = c->sent;
  conn_close(c);
}

static void conn_fail(tcp_conn *c, const char *what, int err) {
  if (c->state != CONN_OPEN)
    return;
  bench_run_socket_error(c->run, c->index, what, err);
  conn_drop(c);
}

static void on_write(uv_write_t *req, int status);

/* Sends every message started but not yet handed over. */
static void conn_flush(tcp_conn *c) {
  bench_run *r = c->run;
  tcp_mode *m = r->mode_data;
  unsigned int depth = r->cfg->depth, n = 0;
  uv_buf_t *bufs = m->bufs;
  uint64_t msg;
  int err;

  if (c->writing || c->written == c->sent || c->state != CONN_OPEN)
    return;
  for (msg = c->written; msg < c->sent; msg++)
    n += bench_pattern_bufs(&r->pattern, c->index, msg,
                            c->headers + (msg % depth) * BENCH_HEADER_SIZE,
                            bufs + n);
  c->written = c->sent;

  err = bench_run_write((uv_stream_t *)&c->handle, &c->write_req, bufs, n,
                        on_write);
  if (err < 0) {
    conn_fail(c, "write", err);
    return;
  }
  c->writing = err == 1;
}

static void on_write(uv_write_t *req, int status) {
  tcp_conn *c = req->handle->data;

  c->writing = 0;
  if (c->state != CONN_OPEN)
    return;
  if (status < 0)
    conn_fail(c, "write", status);
  else
    conn_flush(c);
}

/* Starts messages until `depth` are in flight, then sends them. A header's
 * slot is reused only when the message `depth` before is echoed whole, so
 * no write still reads it. */
static void conn_pump(tcp_conn *c) {
  bench_run *r = c->run;
  unsigned int depth = r->cfg->depth;
  uint64_t now;

  if (c->state != CONN_OPEN || !bench_run_sending(r) ||
      c->sent - c->received >= depth)
    return;
  now = uv_hrtime();
  while (c->sent - c->received < depth) {
    c->send_time[c->sent % depth] = now;
    c->sent++;
    bench_run_sent(r);
  }
  conn_flush(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  tcp_conn *c = stream->data;
  bench_run *r = c->run;
  size_t size = r->cfg->size, left, chunk;
  const uint8_t *p = (const uint8_t *)buf->base;
  uint64_t now = 0;
  int64_t bad;

  if (nread < 0) {
    conn_fail(c, "read", (int)nread);
    return;
  }
  left = (size_t)nread;
  while (left > 0) {
    if (c->received == c->sent) {
      bench_run_bad_message(r, c->index, "the server sent unasked-for bytes");
      conn_drop(c);
      return;
    }
    chunk = size - c->recv_off < left ? size - c->recv_off : left;
    bad = bench_pattern_check(&r->pattern, c->index, c->received, c->recv_off,
                              p, chunk);
    if (bad >= 0) {
      bench_run_mismatch(r, c->index, c->received, (size_t)bad,
                         p[(size_t)bad - c->recv_off]);
      conn_drop(c);
      return;
    }
    p += chunk;
    left -= chunk;
    c->recv_off += chunk;
    if (c->recv_off == size) {
      if (now == 0)
        now = uv_hrtime();
      bench_run_complete(r, now - c->send_time[c->received % r->cfg->depth]);
      c->received++;
      c->recv_off = 0;
    }
  }
  conn_pump(c);
}

static void connect_more(bench_run *r);

static void on_connect(uv_connect_t *req, int status) {
  tcp_conn *c = req->data;
  bench_run *r = c->run;
  tcp_mode *m = r->mode_data;

  m->connecting--;
  if (status < 0) {
    /* A connect cancelled because the phase timed out counts as timed out;
     * one cancelled because the run is over is no error at all. */
    if (r->phase != BENCH_PHASE_DONE)
      bench_run_connect_error(
          r, c->index,
          status == UV_ECANCELED && m->give_up ? UV_ETIMEDOUT : status);
    conn_close(c);
  } else {
    c->state = CONN_OPEN;
    m->open++;
    r->connected++;
    uv_tcp_nodelay(&c->handle, 1);
  }
  connect_more(r);
}

static void connect_more(bench_run *r) {
  tcp_mode *m = r->mode_data;
  unsigned int total = r->cfg->connections;
  tcp_conn *c;
  int err;

  while (!m->give_up && m->next < total && m->connecting < BENCH_CONNECT_RAMP) {
    c = &m->conns[m->next++];
    err = uv_tcp_init(&r->loop, &c->handle);
    if (err != 0) {
      bench_run_connect_error(r, c->index, err);
      continue;
    }
    c->handle.data = c;
    c->connect_req.data = c;
    c->state = CONN_CONNECTING;
    err = uv_tcp_connect(&c->connect_req, &c->handle,
                         (const struct sockaddr *)&r->addr, on_connect);
    if (err != 0) {
      bench_run_connect_error(r, c->index, err);
      conn_close(c);
      continue;
    }
    m->connecting++;
  }
  if (m->connecting == 0 && (m->give_up || m->next == total)) {
    /* Connections never tried because time ran out failed too. */
    r->connect_errors += total - m->next;
    m->next = total;
    bench_run_ready(r, m->open > 0);
  }
}

static int tcp_open(bench_run *r) {
  const bench_config *cfg = r->cfg;
  size_t slots = (size_t)cfg->connections * cfg->depth;
  tcp_mode *m;
  unsigned int i;

  m = calloc(1, sizeof(*m));
  if (m == NULL)
    return UV_ENOMEM;
  r->mode_data = m;
  m->conns = calloc(cfg->connections, sizeof(*m->conns));
  m->send_times = calloc(slots, sizeof(*m->send_times));
  m->headers = calloc(slots, BENCH_HEADER_SIZE);
  m->bufs = calloc(2 * (size_t)cfg->depth, sizeof(*m->bufs));
  if (m->conns == NULL || m->send_times == NULL || m->headers == NULL ||
      m->bufs == NULL)
    return UV_ENOMEM;
  for (i = 0; i < cfg->connections; i++) {
    m->conns[i].run = r;
    m->conns[i].index = i;
    m->conns[i].send_time = m->send_times + (size_t)i * cfg->depth;
    m->conns[i].headers =
        m->headers + (size_t)i * cfg->depth * BENCH_HEADER_SIZE;
  }
  connect_more(r);
  return 0;
}

static void tcp_start(bench_run *r) {
  tcp_mode *m = r->mode_data;
  tcp_conn *c;
  unsigned int i;
  int err;

  for (i = 0; i < m->next; i++) {
    c = &m->conns[i];
    if (c->state != CONN_OPEN)
      continue;
    err = uv_read_start((uv_stream_t *)&c->handle, bench_run_alloc, on_read);
    if (err != 0)
      conn_fail(c, "read", err);
    else
      conn_pump(c);
  }
}

static void tcp_connect_expired(bench_run *r) {
  tcp_mode *m = r->mode_data;
  unsigned int i;

  m->give_up = 1;
  /* The closed connects complete with UV_ECANCELED, and the last of them
   * ends the phase in connect_more(). */
  for (i = 0; i < m->next; i++)
    if (m->conns[i].state == CONN_CONNECTING)
      conn_close(&m->conns[i]);
  connect_more(r);
}

static void tcp_close(bench_run *r) {
  tcp_mode *m = r->mode_data;
  unsigned int i;

  if (m == NULL || m->conns == NULL)
    return;
  m->give_up = 1;
  for (i = 0; i < m->next; i++)
    conn_close(&m->conns[i]);
}

static void tcp_release(bench_run *r) {
  tcp_mode *m = r->mode_data;

  if (m == NULL)
    return;
  free(m->conns);
  free(m->send_times);
  free(m->headers);
  free(m->bufs);
  free(m);
  r->mode_data = NULL;
}

const bench_mode_ops bench_tcp_ops = {tcp_open, tcp_start, tcp_connect_expired,
                                      NULL,     tcp_close, tcp_release};
