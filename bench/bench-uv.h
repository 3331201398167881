/* What the libuv echo baselines share: the loop, closing a client, and
 * everything main() does once the options are parsed. */
#ifndef ASOCK_BENCH_UV_H
#define ASOCK_BENCH_UV_H

#include <uv.h>

#include "bench-server.h"

extern uv_loop_t bench_uv_loop;

/* Initialises a client handle on the loop and marks it as a client, so that
 * shutdown frees it (with bench_free) when it closes everything. */
int bench_uv_client_init(uv_tcp_t *client);
/* Closes a client, unless it is closing already, and frees it. */
void bench_uv_close_client(uv_stream_t *stream);
/* Counts allocations from here on, listens as opts says with on_connection,
 * prints the `listening on` line and runs until SIGINT or SIGTERM. Returns
 * the process's exit status. */
int bench_uv_serve(const bench_server_options *opts,
                   uv_connection_cb on_connection);
/* The same for UDP: binds a uv_udp_t made with uv_udp_init_ex(family |
 * flags) where opts says, starts receiving with on_alloc and on_recv and
 * runs until SIGINT or SIGTERM. Returns the process's exit status. */
int bench_uv_serve_udp(const bench_server_options *opts, unsigned int flags,
                       uv_alloc_cb on_alloc, uv_udp_recv_cb on_recv);

#endif /* ASOCK_BENCH_UV_H */
