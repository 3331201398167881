/* bench-echo-uv-udp: a UDP echo server written with care on plain libuv, the
 * bar asock-echo --udp has to clear.
 *
 * One receive buffer, allocated once, is handed out by the allocation
 * callback for every read. With --buffers N above 1 (8 by default, the batch
 * asock reads) it holds N datagrams of 64 KiB and the handle is made with
 * UV_UDP_RECVMMSG, so that libuv reads up to N datagrams per recvmmsg();
 * with --buffers 1 it is one 64 KiB buffer read with recvmsg(). Either way
 * libuv reads up to 32 datagrams per readiness report.
 *
 * Each datagram is echoed to its sender straight from that buffer with
 * uv_udp_try_send(). Only when the kernel cannot take it now, or earlier
 * echoes still wait, is it copied into a request of its own and queued with
 * uv_udp_send(), to be freed when sent: the buffer is then free for the next
 * read as soon as the callback returns, and the usual path allocates
 * nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-alloc.h"
#include "bench-server.h"
#include "bench-util.h"
#include "bench-uv.h"

/* libuv's recvmmsg() path cuts the buffer into datagrams of this size
 * (UV__UDP_DGRAM_MAXSIZE in its source). */
#define DGRAM_MAX (64 * 1024)

/* An echo the kernel could not take at once, with its own copy. */
typedef struct queued_echo {
  uv_udp_send_t req;
  char data[];
} queued_echo;

static char *recv_buf;
static size_t recv_len;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(recv_buf, (unsigned int)recv_len);
}

static void on_send(uv_udp_send_t *req, int status) {
  if (status < 0 && status != UV_ECANCELED)
    fprintf(stderr, "%s: send: %s\n", bench_progname, uv_strerror(status));
  bench_free(req);
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned int flags) {
  uv_buf_t echo;
  queued_echo *q;
  int err;

  (void)flags;
  if (nread < 0) {
    /* An error belongs to one datagram; reading goes on. */
    fprintf(stderr, "%s: receive: %s\n", bench_progname,
            uv_strerror((int)nread));
    return;
  }
  /* Nothing more to read, or the end of a recvmmsg() batch
   * (UV_UDP_MMSG_FREE): the buffer is static, nothing to free. */
  if (addr == NULL)
    return;
  echo = uv_buf_init(buf->base, (unsigned int)nread);
  err = uv_udp_try_send(handle, &echo, 1, addr);
  if (err >= 0)
    return;
  if (err != UV_EAGAIN) {
    fprintf(stderr, "%s: send: %s\n", bench_progname, uv_strerror(err));
    return;
  }
  q = bench_malloc(sizeof(*q) + (size_t)nread);
  if (q == NULL)
    return;
  memcpy(q->data, buf->base, (size_t)nread);
  echo.base = q->data;
  err = uv_udp_send(&q->req, handle, &echo, 1, addr, on_send);
  if (err != 0) {
    fprintf(stderr, "%s: send: %s\n", bench_progname, uv_strerror(err));
    bench_free(q);
  }
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 0, 8};
  int status;

  bench_progname = "bench-echo-uv-udp";
  bench_server_parse(argc, argv, BENCH_OPT_BUFFERS, &opts);
  recv_len = (size_t)opts.buffers * DGRAM_MAX;
  recv_buf = malloc(recv_len);
  if (recv_buf == NULL) {
    fprintf(stderr, "%s: out of memory\n", bench_progname);
    return 1;
  }
  status = bench_uv_serve_udp(&opts, opts.buffers > 1 ? UV_UDP_RECVMMSG : 0,
                              on_alloc, on_recv);
  free(recv_buf);
  return status;
}
