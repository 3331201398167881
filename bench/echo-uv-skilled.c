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

typedef struct {
  uv_tcp_t handle; /* first, so that a handle pointer is a conn_t pointer */
  uv_write_t req;
  char buf[];
} conn_t;

static uv_loop_t loop;
static uv_tcp_t server;
static uv_signal_t sigint_watcher;
static uv_signal_t sigterm_watcher;
static size_t buf_size = 64 * 1024;

static char client_tag;

static void on_client_close(uv_handle_t *handle) { bench_free(handle); }

static void close_client(uv_stream_t *stream) {
  if (!uv_is_closing((uv_handle_t *)stream))
    uv_close((uv_handle_t *)stream, on_client_close);
}

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
    close_client(stream);
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
    close_client(stream);
    return;
  }
  rest = uv_buf_init(buf->base, (unsigned int)nread);
  n = uv_try_write(stream, &rest, 1);
  if (n == nread)
    return;
  if (n < 0 && n != UV_EAGAIN) {
    close_client(stream);
    return;
  }
  if (n < 0)
    n = 0;
  rest = uv_buf_init(buf->base + n, (unsigned int)(nread - n));
  uv_read_stop(stream);
  if (uv_write(&conn->req, stream, &rest, 1, on_write) != 0)
    close_client(stream);
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
  uv_tcp_init(&loop, &conn->handle);
  conn->handle.data = &client_tag;
  if (uv_accept(listener, (uv_stream_t *)&conn->handle) != 0) {
    uv_close((uv_handle_t *)&conn->handle, on_client_close);
    return;
  }
  /* Without this, Nagle's algorithm and the peer's delayed ACK would be
   * measured instead of the event loop. */
  uv_tcp_nodelay(&conn->handle, 1);
  if (uv_read_start((uv_stream_t *)&conn->handle, on_alloc, on_read) != 0)
    close_client((uv_stream_t *)&conn->handle);
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
  bench_server_options opts = {"127.0.0.1", 0, 64 * 1024, 0};
  struct sockaddr_storage addr;
  uint64_t limit;
  int len, err;

  bench_progname = "bench-echo-uv-skilled";
  bench_server_parse(argc, argv, BENCH_OPT_BUF_SIZE, &opts);
  buf_size = opts.buf_size;
  bench_raise_fd_limit(0, &limit);
  if (bench_server_address(&opts, &addr) != 0)
    return 1;

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
