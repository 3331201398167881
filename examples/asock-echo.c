/* asock-echo: a TCP or UDP echo server in the SocketAsyncEventArgs style.
 *
 * TCP: each connection owns exactly one op, which alternates: receive (into
 * a pool slice taken only when data arrives), send the same bytes back,
 * receive again. While the send waits for the peer to read, no receive is
 * posted, so a peer that sends faster than it reads is held back by TCP
 * itself and the server's memory stays what the pool allocated at start-up.
 *
 * UDP (--udp): one socket with several receive ops posted on it. Each op
 * alternates the same way: receive-from (a slice taken only when a datagram
 * is there), send-to back to the sender with the same op and the same bytes,
 * receive-from again. A datagram longer than a slice is echoed truncated to
 * the slice and counted. Several ops let the socket go on reading while
 * some echoes wait for the kernel to take them.
 *
 *   asock-echo [--host ADDR] [--port N] [--slice-size BYTES] [--slices N]
 *              [--max-connections N] [--udp [--receives N]]
 *
 * Prints "listening on ADDR:PORT" once it accepts (TCP) or receives (UDP);
 * on SIGINT or SIGTERM closes everything, prints the pool's statistics and
 * exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asock.h"

#define ACCEPT_OPS 8
/* Receive ops posted on the UDP socket unless --receives says otherwise. */
#define UDP_RECEIVES 16

typedef struct server {
  asock_loop *loop;
  asock_pool *pool;
  asock_socket *listener;
  asock_op *accepts[ACCEPT_OPS];
  asock_socket *udp;  /* --udp: the socket, in place of the listener */
  asock_op **udp_ops; /* its receive ops */
  size_t udp_op_count;
  uv_signal_t sigint;
  uv_signal_t sigterm;
  unsigned long connections;
  unsigned long refused;
  unsigned long long messages;
  unsigned long long bytes;
  unsigned long long truncated; /* UDP: datagrams longer than a slice */
  unsigned long long send_errors;
  unsigned long long receive_errors;
  int stopping;
} server;

static server srv;

/* Heap allocations after start-up, through asock and libuv alike. */
static unsigned long long allocations;
static int counting;

static void *count_malloc(size_t n) {
  allocations += (unsigned long long)counting;
  return malloc(n);
}
static void *count_realloc(void *p, size_t n) {
  allocations += (unsigned long long)counting;
  return realloc(p, n);
}
static void *count_calloc(size_t c, size_t n) {
  allocations += (unsigned long long)counting;
  return calloc(c, n);
}

static void usage(void) {
  fprintf(stderr, "usage: asock-echo [--host ADDR] [--port N] "
                  "[--slice-size BYTES] [--slices N] "
                  "[--max-connections N] [--udp [--receives N]]\n");
  exit(2);
}

static unsigned long parse_number(const char *s, unsigned long max) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > max)
    usage();
  return v;
}

/* Ends a connection: its socket closes and its op goes back to the pool. */
static void finish(asock_op *op, unsigned int close_flags) {
  asock_socket *sock = asock_op_socket(op);
  if (sock != NULL)
    asock_socket_close(sock, close_flags); /* ASOCK_ECLOSED if already */
  asock_op_release(srv.pool, op);
}

/* Drives one connection's op from its last result to its next pending
 * operation; synchronous completions loop here instead of recursing. */
static void step(asock_op *op) {
  for (;;) {
    asock_socket *sock = asock_op_socket(op);
    int status = asock_op_status(op);
    int r;

    if (srv.stopping && status == 0 &&
        asock_op_last_kind(op) != ASOCK_OP_DISCONNECT) {
      finish(op, 0);
      return;
    }
    switch (asock_op_last_kind(op)) {
    case ASOCK_OP_RECEIVE:
      if (status == 0) {
        srv.messages++;
        srv.bytes += asock_op_bytes(op);
        r = asock_send(sock, op); /* the window is what arrived */
      } else if (status == ASOCK_EOF) {
        r = asock_disconnect(sock, op);
      } else {
        finish(op, ASOCK_CLOSE_ABORT);
        return;
      }
      break;
    case ASOCK_OP_SEND:
      if (status != 0) {
        finish(op, ASOCK_CLOSE_ABORT);
        return;
      }
      r = asock_receive(sock, op);
      break;
    default: /* a disconnect: the socket is closed */
      finish(op, 0);
      return;
    }
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      finish(op, ASOCK_CLOSE_ABORT);
      return;
    }
  }
}

static void on_op(asock_op *op) { step(op); }

/* Gives a new connection an op and posts its first receive. */
static void serve(asock_socket *client) {
  asock_op *op;
  int r;

  if (asock_op_acquire(srv.pool, &op) != 0) {
    srv.refused++;
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    return;
  }
  srv.connections++;
  asock_socket_set_nodelay(client, 1);
  asock_op_set_callback(op, on_op);
  r = asock_receive(client, op);
  if (r == 0)
    step(op);
  else if (r < 0) {
    asock_socket_close(client, ASOCK_CLOSE_ABORT);
    asock_op_release(srv.pool, op);
  }
}

static void on_accept(asock_op *op) {
  for (;;) {
    int r;
    if (asock_op_status(op) == 0)
      serve(asock_op_accepted(op));
    else if (asock_op_status(op) == ASOCK_ECANCELED || srv.stopping)
      return;
    r = asock_accept(srv.listener, op);
    if (r != 0)
      return; /* pending, or the listener is gone */
  }
}

/* Drives one UDP op from its last result to its next pending operation:
 * receive-from, send-to the sender, receive-from again. A receive that
 * finds datagrams read ahead completes at once, so synchronous completions
 * loop here instead of recursing, as in step(). An error belongs to one
 * datagram (an ICMP error, a datagram the kernel refused): it is counted and
 * the op receives again. */
static void udp_step(asock_op *op) {
  for (;;) {
    int status = asock_op_status(op);
    int r;

    /* Cancelled: the socket closed, and main() releases the op. */
    if (srv.stopping || status == ASOCK_ECANCELED)
      return;
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVEFROM && status == 0) {
      srv.messages++;
      srv.bytes += asock_op_bytes(op);
      if (asock_op_msg_flags(op) & ASOCK_MSG_TRUNCATED)
        srv.truncated++;
      /* The op's remote address is the sender, its window the datagram. */
      r = asock_send_to(srv.udp, op);
      if (r == ASOCK_PENDING)
        return;
      if (r == 0)
        continue;        /* the send's result is in the op */
      srv.send_errors++; /* refused without starting */
    } else if (status != 0) {
      if (asock_op_last_kind(op) == ASOCK_OP_SENDTO)
        srv.send_errors++;
      else
        srv.receive_errors++;
    }
    r = asock_receive_from(srv.udp, op);
    if (r == ASOCK_PENDING)
      return;
    if (r < 0) {
      /* Only a closed socket refuses a receive: the op rests. */
      fprintf(stderr, "asock-echo: receive-from: %s\n", asock_strerror(r));
      return;
    }
  }
}

static void on_udp_op(asock_op *op) { udp_step(op); }

static void on_signal(uv_signal_t *handle, int signum) {
  (void)signum;
  (void)handle;
  srv.stopping = 1;
  uv_signal_stop(&srv.sigint);
  uv_signal_stop(&srv.sigterm);
  asock_loop_stop(srv.loop);
}

static void print_stats(void) {
  asock_pool_stats st;
  asock_pool_stats_get(srv.pool, &st);
  if (srv.udp_ops != NULL)
    printf("datagrams truncated: %llu, send errors: %llu, receive errors: "
           "%llu (%zu receives posted)\n",
           srv.truncated, srv.send_errors, srv.receive_errors,
           srv.udp_op_count);
  else
    printf("connections: %lu (refused for want of an op: %lu)\n",
           srv.connections, srv.refused);
  printf("messages: %llu, bytes: %llu, heap allocations after start-up: "
         "%llu\n",
         srv.messages, srv.bytes, allocations);
  printf("slices: %zu of %zu bytes, in use %zu, high-water %zu, "
         "acquisitions that found none: %llu\n",
         st.slices_total, st.slice_size, st.slices_in_use, st.slices_high_water,
         (unsigned long long)st.slices_failed);
  printf("ops: %zu, in use %zu, high-water %zu, acquisitions that found "
         "none: %llu\n",
         st.ops_total, st.ops_in_use, st.ops_high_water,
         (unsigned long long)st.ops_failed);
  fflush(stdout);
}

/* Listens for connections on addr with ACCEPT_OPS accepts posted. */
static int start_tcp(const struct sockaddr *addr) {
  int i, r = asock_tcp_create(&srv.listener, srv.loop);
  if (r == 0)
    r = asock_tcp_listen(srv.listener, addr, 1024, 0);
  for (i = 0; r == 0 && i < ACCEPT_OPS; i++) {
    r = asock_op_acquire(srv.pool, &srv.accepts[i]);
    if (r != 0)
      break;
    asock_op_set_callback(srv.accepts[i], on_accept);
    r = asock_accept(srv.listener, srv.accepts[i]);
    if (r == 0)
      on_accept(srv.accepts[i]);
    r = r < 0 ? r : 0;
  }
  return r;
}

/* Binds the UDP socket to addr and posts srv.udp_op_count receives, each
 * without a buffer of its own. */
static int start_udp(const struct sockaddr *addr) {
  size_t i;
  int r = asock_udp_create(&srv.udp, srv.loop);
  if (r == 0)
    r = asock_udp_bind(srv.udp, addr, 0);
  for (i = 0; r == 0 && i < srv.udp_op_count; i++) {
    r = asock_op_acquire(srv.pool, &srv.udp_ops[i]);
    if (r != 0)
      break;
    asock_op_set_callback(srv.udp_ops[i], on_udp_op);
    r = asock_receive_from(srv.udp, srv.udp_ops[i]);
    if (r == 0)
      udp_step(srv.udp_ops[i]);
    r = r < 0 ? r : 0;
  }
  return r;
}

int main(int argc, char **argv) {
  const char *host = "127.0.0.1";
  unsigned long port = 0;
  unsigned long receives = UDP_RECEIVES;
  int udp = 0;
  asock_pool_config config;
  struct sockaddr_storage addr;
  asock_socket *bound;
  char name[64];
  int len = (int)sizeof(addr);
  size_t k;
  int i, r;

  asock_pool_config_init(&config);
  config.slice_size = 16384;
  config.slice_count = 4096;
  config.op_count = 20000;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--udp") == 0) {
      udp = 1;
      continue;
    }
    if (i + 1 >= argc)
      usage();
    if (strcmp(argv[i], "--host") == 0)
      host = argv[++i];
    else if (strcmp(argv[i], "--port") == 0)
      port = parse_number(argv[++i], 65535);
    else if (strcmp(argv[i], "--slice-size") == 0)
      config.slice_size = parse_number(argv[++i], 1UL << 30);
    else if (strcmp(argv[i], "--slices") == 0)
      config.slice_count = parse_number(argv[++i], 1UL << 24);
    else if (strcmp(argv[i], "--max-connections") == 0)
      config.op_count = parse_number(argv[++i], 1UL << 24);
    else if (strcmp(argv[i], "--receives") == 0)
      receives = parse_number(argv[++i], 1UL << 16);
    else
      usage();
  }
  if (udp && receives == 0)
    usage();
  /* UDP has no connections: its ops are the receives. */
  config.op_count = udp ? receives : config.op_count + ACCEPT_OPS;

  asock_replace_allocator(count_malloc, count_realloc, count_calloc, free);
  uv_replace_allocator(count_malloc, count_realloc, count_calloc, free);

  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&addr) != 0) {
    fprintf(stderr, "asock-echo: bad address %s\n", host);
    return 2;
  }
  if (udp) {
    srv.udp_op_count = receives;
    srv.udp_ops = calloc(receives, sizeof(*srv.udp_ops));
    if (srv.udp_ops == NULL) {
      fprintf(stderr, "asock-echo: %s\n", asock_strerror(ASOCK_ENOMEM));
      return 1;
    }
  }
  r = asock_pool_create(&srv.pool, &config);
  if (r == 0)
    r = asock_loop_create(&srv.loop, srv.pool, NULL);
  if (r == 0)
    r = udp ? start_udp((struct sockaddr *)&addr)
            : start_tcp((struct sockaddr *)&addr);
  bound = udp ? srv.udp : srv.listener;
  if (r == 0)
    r = asock_socket_local_address(bound, (struct sockaddr *)&addr, &len);
  if (r != 0) {
    fprintf(stderr, "asock-echo: %s\n", asock_strerror(r));
    return 1;
  }
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigint);
  uv_signal_init(asock_loop_uv(srv.loop), &srv.sigterm);
  uv_signal_start(&srv.sigint, on_signal, SIGINT);
  uv_signal_start(&srv.sigterm, on_signal, SIGTERM);

  if (addr.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&addr, name, sizeof(name));
  else
    uv_ip4_name((struct sockaddr_in *)&addr, name, sizeof(name));
  printf("listening on %s:%d\n", name,
         ntohs(((struct sockaddr_in *)&addr)->sin_port));
  fflush(stdout);
  counting = 1;

  asock_loop_run(srv.loop, UV_RUN_DEFAULT);

  counting = 0;
  srv.stopping = 1;
  uv_close((uv_handle_t *)&srv.sigint, NULL);
  uv_close((uv_handle_t *)&srv.sigterm, NULL);
  asock_socket_close(bound, 0);
  r = asock_loop_close(srv.loop);
  for (i = 0; !udp && i < ACCEPT_OPS; i++)
    asock_op_release(srv.pool, srv.accepts[i]);
  for (k = 0; k < srv.udp_op_count; k++)
    asock_op_release(srv.pool, srv.udp_ops[k]);
  print_stats();
  free(srv.udp_ops);
  if (r == 0)
    r = asock_pool_destroy(srv.pool);
  if (r != 0) {
    fprintf(stderr, "asock-echo: shutting down: %s\n", asock_strerror(r));
    return 1;
  }
  return 0;
}
