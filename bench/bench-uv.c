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

/* Opens the server's handle at *addr and stores the address it got there.
 * Returns 0 or a libuv error. */
typedef int (*open_fn)(struct sockaddr_storage *addr);

static uv_connection_cb tcp_on_connection;
static uv_udp_t udp_server;
static unsigned int udp_flags;
static uv_alloc_cb udp_on_alloc;
static uv_udp_recv_cb udp_on_recv;

static int open_tcp(struct sockaddr_storage *addr) {
  int len = sizeof(*addr);
  int err;

  uv_tcp_init(&bench_uv_loop, &server);
  err = uv_tcp_bind(&server, (const struct sockaddr *)addr, 0);
  if (err == 0)
    err = uv_listen((uv_stream_t *)&server, BENCH_BACKLOG, tcp_on_connection);
  if (err == 0)
    err = uv_tcp_getsockname(&server, (struct sockaddr *)addr, &len);
  return err;
}

static int open_udp(struct sockaddr_storage *addr) {
  int len = sizeof(*addr);
  int err;

  err =
      uv_udp_init_ex(&bench_uv_loop, &udp_server, addr->ss_family | udp_flags);
  if (err != 0)
    return err;
  err = uv_udp_bind(&udp_server, (const struct sockaddr *)addr, 0);
  if (err == 0)
    err = uv_udp_recv_start(&udp_server, udp_on_alloc, udp_on_recv);
  if (err == 0)
    err = uv_udp_getsockname(&udp_server, (struct sockaddr *)addr, &len);
  return err;
}

static int serve(const bench_server_options *opts, open_fn open_server) {
  struct sockaddr_storage addr;
  uint64_t limit;
  int err;

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
  err = open_server(&addr);
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

int bench_uv_serve(const bench_server_options *opts,
                   uv_connection_cb on_connection) {
  tcp_on_connection = on_connection;
  return serve(opts, open_tcp);
}

int bench_uv_serve_udp(const bench_server_options *opts, unsigned int flags,
                       uv_alloc_cb on_alloc, uv_udp_recv_cb on_recv) {
  udp_flags = flags;
  udp_on_alloc = on_alloc;
  udp_on_recv = on_recv;
  return serve(opts, open_udp);
}
