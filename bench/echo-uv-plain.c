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

typedef struct {
  uv_write_t req;
  uv_buf_t buf;
} write_req_t;

static uv_loop_t loop;
static uv_tcp_t server;
static uv_signal_t sigint_watcher;
static uv_signal_t sigterm_watcher;

/* Client handles carry this in their data field, so that shutdown can tell
 * them from the static handles when it closes everything. */
static char client_tag;

static void on_client_close(uv_handle_t *handle) { bench_free(handle); }

static void close_client(uv_stream_t *stream) {
  if (!uv_is_closing((uv_handle_t *)stream))
    uv_close((uv_handle_t *)stream, on_client_close);
}

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
    close_client(stream);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  close_client(req->handle);
  bench_free(req);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf) {
  write_req_t *wr;
  uv_shutdown_t *sreq;

  if (nread > 0) {
    wr = bench_malloc(sizeof(*wr));
    if (wr == NULL) {
      bench_free(buf->base);
      close_client(stream);
      return;
    }
    wr->buf = uv_buf_init(buf->base, (unsigned int)nread);
    if (uv_write(&wr->req, stream, &wr->buf, 1, on_write) != 0) {
      bench_free(wr->buf.base);
      bench_free(wr);
      close_client(stream);
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
  close_client(stream);
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
  uv_tcp_init(&loop, client);
  client->data = &client_tag;
  if (uv_accept(listener, (uv_stream_t *)client) != 0) {
    uv_close((uv_handle_t *)client, on_client_close);
    return;
  }
  /* Without this, Nagle's algorithm and the peer's delayed ACK would be
   * measured instead of the event loop. */
  uv_tcp_nodelay(client, 1);
  if (uv_read_start((uv_stream_t *)client, on_alloc, on_read) != 0)
    close_client((uv_stream_t *)client);
}

static void close_any(uv_handle_t *handle, void *arg) {
  (void)arg;
  if (!uv_is_closing(handle))
    uv_close(handle, handle->data == &client_tag ? on_client_close : NULL);
}

static void on_signal(uv_signal_t *watcher, int signum) {
  (void)signum;
  uv_walk(watcher->loop, close_any, NULL);
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 0, 0};
  struct sockaddr_storage addr;
  uint64_t limit;
  int len, err;

  bench_progname = "bench-echo-uv-plain";
  bench_server_parse(argc, argv, 0, &opts);
  bench_raise_fd_limit(0, &limit);
  if (bench_server_address(&opts, &addr) != 0)
    return 1;

  /* Before anything else in libuv, so that every allocation it makes is
   * counted too. */
  uv_replace_allocator(bench_malloc, bench_realloc, bench_calloc, bench_free);
  uv_loop_init(&loop);
  uv_signal_init(&loop, &sigint_watcher);
  uv_signal_init(&loop, &sigterm_watcher);
  uv_signal_start(&sigint_watcher, on_signal, SIGINT);
  uv_signal_start(&sigterm_watcher, on_signal, SIGTERM);
  uv_tcp_init(&loop, &server);
  err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&server, BENCH_BACKLOG, on_connection);
  len = sizeof(addr);
  if (err == 0)
    err = uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
  if (err != 0) {
    fprintf(stderr, "%s: cannot listen on %s port %u: %s\n", bench_progname,
            opts.host, opts.port, uv_strerror(err));
    uv_walk(&loop, close_any, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 1;
  }
  bench_server_print_listening((const struct sockaddr *)&addr);
  bench_alloc_start();

  uv_run(&loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&loop);
  if (err != 0)
    fprintf(stderr, "%s: uv_loop_close: %s\n", bench_progname,
            uv_strerror(err));
  fprintf(stderr, "allocations: %llu\n", bench_alloc_count());
  return err == 0 ? 0 : 1;
}
