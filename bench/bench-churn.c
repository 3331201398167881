/* asock-bench's churn mode: each of the C slots connects, sends one message,
 * checks its echo, closes and starts over, so the rate measured is that of
 * whole short connections (accept, first read, close) rather than of
 * messages on long ones. With --reset the client closes with an RST, which
 * also exercises the servers' handling of peers that reset. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-run.h"

enum { SLOT_IDLE, SLOT_CONNECTING, SLOT_OPEN, SLOT_CLOSING };

typedef struct churn_slot {
  uv_tcp_t handle;
  uv_connect_t connect_req;
  uv_write_t write_req;
  bench_run *run;
  uint32_t index;
  int state;
  int pending; /* this cycle's message is outstanding */
  uint64_t cycle;
  uint64_t started;
  size_t recv_off;
  uint8_t header[BENCH_HEADER_SIZE];
} churn_slot;

static void slot_begin(churn_slot *s);

static void on_close(uv_handle_t *handle) {
  churn_slot *s = handle->data;

  s->state = SLOT_IDLE;
  s->cycle++;
  slot_begin(s);
}

/* Ends the cycle; `ok` says whether its message came back right. */
static void slot_end(churn_slot *s, int ok) {
  bench_run *r = s->run;
  int was_open = s->state == SLOT_OPEN;

  if (s->pending) {
    s->pending = 0;
    if (ok)
      bench_run_complete(r, uv_hrtime() - s->started);
    else
      bench_run_abandon(r, 1);
  }
  if (s->state == SLOT_IDLE || s->state == SLOT_CLOSING)
    return;
  s->state = SLOT_CLOSING;
  if (was_open && r->cfg->reset &&
      uv_tcp_close_reset(&s->handle, on_close) == 0)
    return;
  uv_close((uv_handle_t *)&s->handle, on_close);
}

static void slot_fail(churn_slot *s, const char *what, int err) {
  if (s->state != SLOT_OPEN)
    return;
  bench_run_socket_error(s->run, s->index, what, err);
  slot_end(s, 0);
}

static void on_write(uv_write_t *req, int status) {
  churn_slot *s = req->handle->data;

  if (status < 0)
    slot_fail(s, "write", status);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  churn_slot *s = stream->data;
  bench_run *r = s->run;
  size_t size = r->cfg->size;
  const uint8_t *p = (const uint8_t *)buf->base;
  int64_t bad;

  if (nread < 0) {
    slot_fail(s, "read", (int)nread);
    return;
  }
  if (nread == 0)
    return;
  if ((size_t)nread > size - s->recv_off) {
    bench_run_bad_message(r, s->index, "the server sent unasked-for bytes");
    slot_end(s, 0);
    return;
  }
  bad = bench_pattern_check(&r->pattern, s->index, s->cycle, s->recv_off, p,
                            (size_t)nread);
  if (bad >= 0) {
    bench_run_mismatch(r, s->index, s->cycle, (size_t)bad,
                       p[(size_t)bad - s->recv_off]);
    slot_end(s, 0);
    return;
  }
  s->recv_off += (size_t)nread;
  if (s->recv_off == size)
    slot_end(s, 1);
}

static void on_connect(uv_connect_t *req, int status) {
  churn_slot *s = req->data;
  bench_run *r = s->run;
  uv_buf_t bufs[2];
  unsigned int n;
  int err;

  if (status < 0) {
    if (r->phase != BENCH_PHASE_DONE)
      bench_run_connect_error(r, s->index, status);
    slot_end(s, 0);
    return;
  }
  s->state = SLOT_OPEN;
  r->connected++;
  uv_tcp_nodelay(&s->handle, 1);
  err = uv_read_start((uv_stream_t *)&s->handle, bench_run_alloc, on_read);
  if (err != 0) {
    slot_fail(s, "read", err);
    return;
  }
  n = bench_pattern_bufs(&r->pattern, s->index, s->cycle, s->header, bufs);
  err = bench_run_write((uv_stream_t *)&s->handle, &s->write_req, bufs, n,
                        on_write);
  if (err < 0)
    slot_fail(s, "write", err);
}

static void slot_begin(churn_slot *s) {
  bench_run *r = s->run;
  int err;

  if (!bench_run_sending(r))
    return;
  err = uv_tcp_init(&r->loop, &s->handle);
  if (err != 0) {
    /* The slot stays idle: without a handle there is nothing to retry on. */
    bench_run_connect_error(r, s->index, err);
    return;
  }
  s->handle.data = s;
  s->connect_req.data = s;
  s->recv_off = 0;
  s->state = SLOT_CONNECTING;
  s->pending = 1;
  s->started = uv_hrtime();
  bench_run_sent(r);
  err = uv_tcp_connect(&s->connect_req, &s->handle,
                       (const struct sockaddr *)&r->addr, on_connect);
  if (err != 0) {
    bench_run_connect_error(r, s->index, err);
    slot_end(s, 0);
  }
}

static int churn_open(bench_run *r) {
  churn_slot *slots;
  unsigned int i;

  slots = calloc(r->cfg->connections, sizeof(*slots));
  if (slots == NULL)
    return UV_ENOMEM;
  r->mode_data = slots;
  for (i = 0; i < r->cfg->connections; i++) {
    slots[i].run = r;
    slots[i].index = i;
  }
  /* Nothing to open ahead: connecting is what is measured. */
  bench_run_ready(r, 1);
  return 0;
}

static void churn_start(bench_run *r) {
  churn_slot *slots = r->mode_data;
  unsigned int i;

  for (i = 0; i < r->cfg->connections; i++)
    slot_begin(&slots[i]);
}

static void churn_close(bench_run *r) {
  churn_slot *slots = r->mode_data;
  unsigned int i;

  if (slots == NULL)
    return;
  for (i = 0; i < r->cfg->connections; i++)
    slot_end(&slots[i], 0);
}

static void churn_release(bench_run *r) {
  free(r->mode_data);
  r->mode_data = NULL;
}

const bench_mode_ops bench_churn_ops = {churn_open, churn_start, NULL,
                                        NULL,       churn_close, churn_release};
