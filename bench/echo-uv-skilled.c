/* bench-echo-uv-skilled: an echo server written with care on plain libuv, the
 * bar asock has to clear. Each connection owns one buffer, allocated with it.
 * An echo is first tried synchronously (uv_try_write); only what the kernel
 * did not take is queued with uv_write, and reading pauses until that write
 * is done, so the buffer is never needed twice at once and the loop never
 * reads faster than the peer drains its echoes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-alloc.h"
#include "bench-server.h"
#include "bench-util.h"
#include "bench-uv.h"

typedef struct {
  uv_tcp_t handle; /* first, so that a handle pointer is a conn_t pointer */
  uv_write_t req;
  char buf[];
} conn_t;

static size_t buf_size = 64 * 1024;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  conn_t *conn = (conn_t *)handle;

  (void)suggested;
  *buf = uv_buf_init(conn->buf, (unsigned int)buf_size);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status) {
  uv_stream_t *stream = req->handle;

  if (uv_is_closing((uv_handle_t *)stream))
    return;
  if (status < 0 || uv_read_start(stream, on_alloc, on_read) != 0)
    bench_uv_close_client(stream);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  conn_t *conn = (conn_t *)stream;
  uv_buf_t rest;
  int n;

  if (nread == 0)
    return;
  if (nread < 0) {
    /* EOF included: reading runs only while no write is queued, so every
     * byte received has been echoed already. */
    bench_uv_close_client(stream);
    return;
  }
  rest = uv_buf_init(buf->base, (unsigned int)nread);
  n = uv_try_write(stream, &rest, 1);
  if (n == nread)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    bench_uv_close_client(stream);
    return;
  }
  if (n < 0)
    n = 0;
  rest = uv_buf_init(buf->base + n, (unsigned int)(nread - n));
  uv_read_stop(stream);
  if (uv_write(&conn->req, stream, &rest, 1, on_write) != 0)
    bench_uv_close_client(stream);
}

static void on_connection(uv_stream_t *listener, int status) {
  conn_t *conn;

  if (status < 0) {
    fprintf(stderr, "%s: accept: %s\n", bench_progname, uv_strerror(status));
    return;
  }
  conn = bench_malloc(sizeof(*conn) + buf_size);
  if (conn == NULL)
    return;
  bench_uv_client_init(&conn->handle);
  if (uv_accept(listener, (uv_stream_t *)&conn->handle) != 0) {
    bench_uv_close_client((uv_stream_t *)&conn->handle);
    return;
  }
  /* Without this, Nagle's algorithm and the peer's delayed ACK would be
   * measured instead of the event loop. */
  uv_tcp_nodelay(&conn->handle, 1);
  if (uv_read_start((uv_stream_t *)&conn->handle, on_alloc, on_read) != 0)
    bench_uv_close_client((uv_stream_t *)&conn->handle);
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 64 * 1024, 0};

  bench_progname = "bench-echo-uv-skilled";
  bench_server_parse(argc, argv, BENCH_OPT_BUF_SIZE, &opts);
  buf_size = opts.buf_size;
  return bench_uv_serve(&opts, on_connection);
}
