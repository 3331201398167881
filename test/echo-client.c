/* The client side of asock-echo-check; see echo-client.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"

/* What a client hands libuv before it waits for writes to complete, and the
 * largest single write. */
#define MAX_IN_FLIGHT (256 * KIB)
#define MAX_WRITE (64 * KIB)

uv_loop_t ec_loop;
struct sockaddr_in ec_server_addr;
int ec_server_died;
const char *ec_check_name;
int ec_check_failed;

static uv_timer_t deadline;
static int deadline_hit;
static double time_scale = 1.0;

/* The connections of the running check. */
static ec_conn *conns;
static size_t nconns;

/* The bytes a connection expects next, generated here to compare with. */
static unsigned char expected[64 * KIB];

/* A write and its bytes, freed when it completes. */
typedef struct write_req {
  uv_write_t req;
  ec_conn *c;
  size_t len;
  char data[];
} write_req;

void ec_fail(const char *fmt, ...) {
  va_list ap;
  printf("#   %s: ", ec_check_name);
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
  ec_check_failed = 1;
}

void ec_note(const char *fmt, ...) {
  va_list ap;
  printf("#   ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

/* ---- the byte pattern -------------------------------------------------- */

/* splitmix64's finaliser: a bijection, so that every (stream, word) pair
 * gives its own word and a lost, repeated or misplaced block shows. */
static uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15u;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

void ec_fill(unsigned char *buf, size_t len, uint32_t stream, uint64_t pos) {
  uint64_t word = 0;
  size_t i;
  for (i = 0; i < len; i++, pos++) {
    if (i == 0 || (pos & 7) == 0)
      word = mix(((uint64_t)stream << 40) ^ (pos >> 3));
    buf[i] = (unsigned char)(word >> (8 * (pos & 7)));
  }
}

/* What connection c sends (echoed = 0) or expects back (echoed = 1) at
 * positions pos to pos + len - 1: the pattern itself, or with
 * EC_UPPERCASE_ECHO the pattern as lowercase letters, which must come back
 * as the same letters upper-cased. */
static void conn_fill(const ec_conn *c, unsigned char *buf, size_t len,
                      uint64_t pos, int echoed) {
  size_t i;
  ec_fill(buf, len, c->stream, pos);
  if (c->flags & EC_UPPERCASE_ECHO)
    for (i = 0; i < len; i++)
      buf[i] = (unsigned char)((echoed ? 'A' : 'a') + buf[i] % 26);
}

/* xorshift64, for write sizes. */
static uint64_t next_random(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

/* ---- running the loop -------------------------------------------------- */

int ec_init(void) {
  const char *env = getenv("CK_TIMEOUT_MULTIPLIER");
  int r;
  if (env != NULL && strtod(env, NULL) >= 1.0)
    time_scale = strtod(env, NULL);
  r = uv_loop_init(&ec_loop);
  if (r == 0)
    r = uv_timer_init(&ec_loop, &deadline);
  return r;
}

int ec_close(void) {
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_run(&ec_loop, UV_RUN_DEFAULT);
  return uv_loop_close(&ec_loop);
}

uint64_t ec_scaled(uint64_t ms) { return (uint64_t)((double)ms * time_scale); }

static void on_deadline(uv_timer_t *timer) {
  (void)timer;
  deadline_hit = 1;
}

static int run_loop(ec_condition cond, const void *arg, uint64_t ms,
                    int watch) {
  int done;
  deadline_hit = 0;
  uv_timer_start(&deadline, on_deadline, ms, 0);
  while (!(done = cond(arg)) && !deadline_hit && !(watch && ec_server_died))
    uv_run(&ec_loop, UV_RUN_ONCE);
  uv_timer_stop(&deadline);
  return done;
}

int ec_run_until(ec_condition cond, const void *arg, uint64_t ms) {
  return run_loop(cond, arg, ec_scaled(ms), 1);
}

int ec_run_for(ec_condition cond, const void *arg, uint64_t ms) {
  return run_loop(cond, arg, ms, 0);
}

static int never(const void *arg) {
  (void)arg;
  return 0;
}

void ec_pause(uint64_t ms) { run_loop(never, NULL, ms, 1); }

/* ---- connections ------------------------------------------------------- */

static void pump(ec_conn *c);

static void on_close(uv_handle_t *handle) {
  ec_conn *c = (ec_conn *)handle->data;
  c->closed = 1;
}

void ec_conn_close(ec_conn *c, int reset) {
  int r;
  if (c->closing || !c->opened)
    return;
  c->closing = 1;
  if (reset) {
    r = uv_tcp_close_reset(&c->tcp, on_close);
    if (r == 0)
      return;
    ec_fail("%s: uv_tcp_close_reset: %s", c->name, uv_strerror(r));
  }
  uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status) {
  write_req *w = (write_req *)req;
  ec_conn *c = w->c;
  c->in_flight -= w->len;
  if (status == 0)
    c->written += w->len;
  else if (c->write_error == 0)
    c->write_error = status;
  free(w);
  if (!c->closing && c->write_error == 0)
    pump(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  ec_conn *c = (ec_conn *)req->data;
  if (status != 0 && c->write_error == 0 && !c->closing)
    c->write_error = status;
}

static void conn_shutdown(ec_conn *c) {
  int r;
  if (c->shutdown_sent || c->closing)
    return;
  c->shutdown_sent = 1;
  c->shutdown_req.data = c;
  r = uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown);
  if (r != 0)
    c->write_error = r;
}

/* Keeps up to MAX_IN_FLIGHT bytes handed to libuv, in writes of random
 * sizes from 1 byte to MAX_WRITE (evenly spread over their logarithm, so
 * that small writes are as common as large ones), or with EC_SMALL_WRITES
 * from 1 byte to EC_SMALL_WRITE, evenly spread. */
static void pump(ec_conn *c) {
  while (c->queued < c->total && c->in_flight < MAX_IN_FLIGHT) {
    uint64_t bits = next_random(&c->rng);
    size_t len =
        (c->flags & EC_SMALL_WRITES)
            ? 1 + (size_t)((bits >> 8) % EC_SMALL_WRITE)
            : 1 + (size_t)((bits >> 8) % ((size_t)MAX_WRITE >> (bits % 17)));
    write_req *w;
    uv_buf_t buf;
    int r;

    if (len > c->total - c->queued)
      len = c->total - c->queued;
    w = malloc(sizeof(*w) + len);
    if (w == NULL) {
      ec_fail("%s: out of memory", c->name);
      c->write_error = UV_ENOMEM;
      return;
    }
    w->c = c;
    w->len = len;
    conn_fill(c, (unsigned char *)w->data, len, c->queued, 0);
    buf = uv_buf_init(w->data, (unsigned int)len);
    r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (r != 0) {
      free(w);
      c->write_error = r;
      return;
    }
    c->queued += len;
    c->in_flight += len;
  }
  if (c->queued == c->total && (c->flags & EC_SHUTDOWN_AFTER_SEND))
    conn_shutdown(c);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  ec_conn *c = (ec_conn *)handle->data;
  (void)suggested;
  *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

/* Compares what came back with what was sent, in order; the first
 * difference is reported and ends the reading. */
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  ec_conn *c = (ec_conn *)stream->data;
  size_t n = (size_t)nread, i;

  if (nread < 0) {
    if (nread == UV_EOF)
      c->eof = 1;
    else
      c->read_error = (int)nread;
    uv_read_stop(stream);
    return;
  }
  if (n > c->total - c->received) {
    ec_fail("%s: received %zu bytes, %zu more than it sent", c->name,
            c->received + n, c->received + n - c->total);
    c->mismatch = 1;
    uv_read_stop(stream);
    return;
  }
  conn_fill(c, expected, n, c->received, 1);
  if (memcmp(expected, buf->base, n) != 0) {
    for (i = 0; expected[i] == (unsigned char)buf->base[i]; i++)
      ;
    ec_fail("%s: byte %zu came back as 0x%02x, sent as 0x%02x", c->name,
            c->received + i, (unsigned char)buf->base[i], expected[i]);
    c->mismatch = 1;
    uv_read_stop(stream);
    return;
  }
  c->received += n;
  if (c->received == c->total && (c->flags & EC_SHUTDOWN_AFTER_ECHO))
    conn_shutdown(c);
}

void ec_conn_read(ec_conn *c) {
  int r;
  if (c->reading || c->closing)
    return;
  c->reading = 1;
  r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  if (r != 0)
    c->read_error = r;
}

static void on_connect(uv_connect_t *req, int status) {
  ec_conn *c = (ec_conn *)req->data;
  c->connect_status = status;
  if (status != 0 || c->closing)
    return;
  if (c->vanish == EC_VANISH_AT_CONNECT) {
    ec_conn_close(c, 0);
    return;
  }
  if (c->flags & EC_READ_AT_CONNECT)
    ec_conn_read(c);
  pump(c);
  /* The vanish check's data is in flight, partly in the kernel and partly
   * queued in libuv, when the connection goes away. */
  if (c->vanish == EC_VANISH_WITH_DATA || c->vanish == EC_VANISH_WITH_RESET)
    ec_conn_close(c, c->vanish == EC_VANISH_WITH_RESET);
}

void ec_conn_open(ec_conn *c, const char *name, uint32_t stream, size_t total,
                  unsigned int flags) {
  int r, size = 64 * KIB;

  snprintf(c->name, sizeof(c->name), "%s", name);
  c->stream = stream;
  c->rng = mix(stream) | 1;
  c->total = total;
  c->flags = flags;
  c->connect_status = 1;
  /* The socket is created now, not at connect, so that its buffer sizes
   * can be set first. */
  r = uv_tcp_init_ex(&ec_loop, &c->tcp, AF_INET);
  if (r != 0) {
    c->connect_status = r;
    return;
  }
  c->opened = 1;
  c->tcp.data = c;
  c->connect_req.data = c;
  if (flags & EC_SMALL_BUFFERS) {
    uv_send_buffer_size((uv_handle_t *)&c->tcp, &size);
    size = 64 * KIB;
    uv_recv_buffer_size((uv_handle_t *)&c->tcp, &size);
  }
  r = uv_tcp_connect(&c->connect_req, &c->tcp,
                     (const struct sockaddr *)&ec_server_addr, on_connect);
  if (r != 0) {
    c->connect_status = r;
    ec_conn_close(c, 0);
  }
}

int ec_conn_settled(const ec_conn *c) {
  return c->closing || c->connect_status < 0 || c->eof || c->read_error ||
         c->write_error || c->mismatch;
}

int ec_conn_verify(const ec_conn *c, int want_eof) {
  if (c->connect_status != 0) {
    ec_fail("%s: connect: %s", c->name,
            c->connect_status == 1 ? "did not complete"
                                   : uv_strerror(c->connect_status));
    return 0;
  }
  if (c->mismatch)
    return 0;
  if (c->write_error != 0) {
    ec_fail("%s: sending: %s after %zu of %zu bytes", c->name,
            uv_strerror(c->write_error), c->written, c->total);
    return 0;
  }
  if (c->read_error != 0) {
    ec_fail("%s: receiving: %s after %zu of %zu bytes", c->name,
            uv_strerror(c->read_error), c->received, c->total);
    return 0;
  }
  if (c->received != c->total) {
    ec_fail("%s: %zu of %zu bytes came back%s", c->name, c->received, c->total,
            c->eof ? ", then the end of the stream" : " in time");
    return 0;
  }
  if (want_eof && !c->eof) {
    ec_fail("%s: all %zu bytes came back but not the end of the stream",
            c->name, c->total);
    return 0;
  }
  return 1;
}

/* ---- the check's connections ------------------------------------------- */

ec_conn *ec_conns_new(size_t n) {
  conns = calloc(n, sizeof(*conns));
  nconns = conns != NULL ? n : 0;
  if (conns == NULL)
    ec_fail("out of memory");
  return conns;
}

int ec_all_settled(const void *arg) {
  size_t i;
  (void)arg;
  for (i = 0; i < nconns; i++)
    if (!ec_conn_settled(&conns[i]))
      return 0;
  return 1;
}

int ec_all_closed(const void *arg) {
  size_t i;
  (void)arg;
  for (i = 0; i < nconns; i++)
    if (!conns[i].closed)
      return 0;
  return 1;
}

void ec_conns_free(void) {
  size_t i;
  for (i = 0; i < nconns; i++)
    if (conns[i].opened)
      ec_conn_close(&conns[i], 0);
    else
      conns[i].closed = 1;
  /* A close completes on the next turn of the loop, so this cannot time
   * out; if it did, libuv would still hold the memory, which is then leaked
   * rather than freed under it. */
  if (ec_run_for(ec_all_closed, NULL, 10000))
    free(conns);
  else
    ec_fail("connections did not close");
  conns = NULL;
  nconns = 0;
}
