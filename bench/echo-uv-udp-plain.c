/* bench-echo-uv-udp-plain: a UDP echo server in the plain style of libuv's
 * own examples: the baseline the UDP benchmark target is set against.
 *
 * The allocation callback mallocs the size libuv suggests (64 KiB) for every
 * read; each datagram is echoed with uv_udp_send() and a request malloc'd
 * for it, and the receive buffer is freed when that send completes. No
 * recvmmsg() and no try-send first: what a straightforward libuv program
 * does. bench-echo-uv-udp is the careful version. */
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include "bench-alloc.h"
#include "bench-server.h"
#include "bench-util.h"
#include "bench-uv.h"

/* A send request and the receive buffer it echoes, freed together. */
typedef struct echo_req {
  uv_udp_send_t req;
  char *data;
} echo_req;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  char *base = bench_malloc(suggested);
  (void)handle;
  *buf = uv_buf_init(base, base == NULL ? 0 : (unsigned int)suggested);
}

static void on_send(uv_udp_send_t *req, int status) {
  echo_req *e = (echo_req *)req;
  if (status < 0 && status != UV_ECANCELED)
    fprintf(stderr, "%s: send: %s\n", bench_progname, uv_strerror(status));
  bench_free(e->data);
  bench_free(e);
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned int flags) {
  echo_req *e;
  uv_buf_t echo;
  int err;

  (void)flags;
  if (nread <= 0 || addr == NULL) {
    /* An error, or nothing read: the buffer goes back. */
    if (nread < 0)
      fprintf(stderr, "%s: receive: %s\n", bench_progname,
              uv_strerror((int)nread));
    bench_free(buf->base);
    return;
  }
  e = bench_malloc(sizeof(*e));
  if (e == NULL) {
    bench_free(buf->base);
    return;
  }
  e->data = buf->base;
  echo = uv_buf_init(buf->base, (unsigned int)nread);
  err = uv_udp_send(&e->req, handle, &echo, 1, addr, on_send);
  if (err != 0) {
    fprintf(stderr, "%s: send: %s\n", bench_progname, uv_strerror(err));
    bench_free(e->data);
    bench_free(e);
  }
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 0, 1};
  bench_progname = "bench-echo-uv-udp-plain";
  bench_server_parse(argc, argv, 0, &opts);
  return bench_uv_serve_udp(&opts, 0, on_alloc, on_recv);
}
