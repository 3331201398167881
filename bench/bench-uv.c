/* The shared part of the libuv echo baselines; see bench-uv.h. */
#include <signal.h>
#include <stdio.h>

#include "bench-alloc.h"
#include "bench-util.h"
#include "bench-uv.h"

uv_loop_t bench_uv_loop;

static uv_tcp_t server;
static uv_signal_t sigint_watcher;
static uv_signal_t sigterm_watcher;

/* Client handles carry this in their data field, so that shutdown can tell
 * them from the static handles when it closes everything. */
static char client_tag;

static void on_client_close(uv_handle_t *handle) { bench_free(handle); }

int bench_uv_client_init(uv_tcp_t *client) {
  int err = uv_tcp_init(&bench_uv_loop, client);
  client->data = &client_tag;
  return err;
}

void bench_uv_close_client(uv_stream_t *stream) {
  if (!uv_is_closing((uv_handle_t *)stream))
    uv_close((uv_handle_t *)stream, on_client_close);
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

int bench_uv_serve(const bench_server_options *opts,
                   uv_connection_cb on_connection) {
  struct sockaddr_storage addr;
  uint64_t limit;
  int len, err;

  bench_raise_fd_limit(0, &limit);
  if (bench_server_address(opts, &addr) != 0)
    return 1;

  /* Before anything else in libuv, so that every allocation it makes is
   * counted too. */
  uv_replace_allocator(bench_malloc, bench_realloc, bench_calloc, bench_free);
  uv_loop_init(&bench_uv_loop);
  uv_signal_init(&bench_uv_loop, &sigint_watcher);
  uv_signal_init(&bench_uv_loop, &sigterm_watcher);
  uv_signal_start(&sigint_watcher, on_signal, SIGINT);
  uv_signal_start(&sigterm_watcher, on_signal, SIGTERM);
  uv_tcp_init(&bench_uv_loop, &server);
  err = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&server, BENCH_BACKLOG, on_connection);
  len = sizeof(addr);
  if (err == 0)
    err = uv_tcp_getsockname(&server, (struct sockaddr *)&addr, &len);
  if (err != 0) {
    fprintf(stderr, "%s: cannot listen on %s port %u: %s\n", bench_progname,
            opts->host, opts->port, uv_strerror(err));
    uv_walk(&bench_uv_loop, close_any, NULL);
    uv_run(&bench_uv_loop, UV_RUN_DEFAULT);
    uv_loop_close(&bench_uv_loop);
    return 1;
  }
  bench_server_print_listening((const struct sockaddr *)&addr);
  bench_alloc_start();

  uv_run(&bench_uv_loop, UV_RUN_DEFAULT);
  err = uv_loop_close(&bench_uv_loop);
  if (err != 0)
    fprintf(stderr, "%s: uv_loop_close: %s\n", bench_progname,
            uv_strerror(err));
  fprintf(stderr, "allocations: %llu\n", bench_alloc_count());
  return err == 0 ? 0 : 1;
}
