/* bench-echo-uv-plain: an echo server written the way libuv's own test echo
 * server is, as the baseline of a straightforward libuv program. Every read
 * gets a fresh buffer of the size libuv suggests, every echo a fresh write
 * request; both are freed when the write completes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-alloc.h"
#include "bench-server.h"
#include "bench-util.h"
#include "bench-uv.h"

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  buf->base = bench_malloc(suggested);
  /* A zero length makes libuv report UV_ENOBUFS to on_read. */
  buf->len = buf->base == NULL ? 0 : suggested;
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *wr = (write_req_t *)req;
  uv_stream_t *stream = req->handle;

  bench_free(wr->buf.base);
  bench_free(wr);
  if (status < 0)
    bench_uv_close_client(stream);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  bench_uv_close_client(req->handle);
  bench_free(req);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  write_req_t *wr;
  uv_shutdown_t *sreq;

  if (nread > 0) {
    wr = bench_malloc(sizeof(*wr));
    if (wr == NULL) {
      bench_free(buf->base);
      bench_uv_close_client(stream);
      return;
    }
    wr->buf = uv_buf_init(buf->base, (unsigned int)nread);
    if (uv_write(&wr->req, stream, &wr->buf, 1, on_write) != 0) {
      bench_free(wr->buf.base);
      bench_free(wr);
      bench_uv_close_client(stream);
    }
    return;
  }

  /* Nothing to echo: the buffer goes back at once (base is NULL after
   * UV_ENOBUFS, which free accepts). */
  bench_free(buf->base);
  if (nread == 0)
    return;
  if (nread == UV_EOF) {
    /* The peer has sent everything; the shutdown waits for the queued
     * echoes to reach the wire before the connection closes. */
    sreq = bench_malloc(sizeof(*sreq));
    if (sreq != NULL && uv_shutdown(sreq, stream, on_shutdown) == 0)
      return;
    bench_free(sreq);
  }
  bench_uv_close_client(stream);
}

static void on_connection(uv_stream_t *listener, int status) {
  uv_tcp_t *client;

  if (status < 0) {
    fprintf(stderr, "%s: accept: %s\n", bench_progname, uv_strerror(status));
    return;
  }
  client = bench_malloc(sizeof(*client));
  if (client == NULL)
    return;
  bench_uv_client_init(client);
  if (uv_accept(listener, (uv_stream_t *)client) != 0) {
    bench_uv_close_client((uv_stream_t *)client);
    return;
  }
  /* Without this, Nagle's algorithm and the peer's delayed ACK would be
   * measured instead of the event loop. */
  uv_tcp_nodelay(client, 1);
  if (uv_read_start((uv_stream_t *)client, on_alloc, on_read) != 0)
    bench_uv_close_client((uv_stream_t *)client);
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 0, 0};

  bench_progname = "bench-echo-uv-plain";
  bench_server_parse(argc, argv, 0, &opts);
  return bench_uv_serve(&opts, on_connection);
}
