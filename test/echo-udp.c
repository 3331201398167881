/* The UDP checks of asock-echo-check; see echo-udp.h.
 *
 * Each server, `asock-echo --udp` on 127.0.0.1 and on ::1, gets one client:
 * a libuv UDP socket bound to the same loopback address and connected to
 * the server. Every datagram it sends is its own stretch of pattern bytes,
 * headed (from 8 bytes on) by the client's stream number and the datagram's
 * sequence number, so that each echo can be compared byte for byte with
 * what was sent, whatever order echoes come back in. The client counts what
 * the server must have counted, and the server's statistics at SIGTERM must
 * say exactly that. Loopback drops a datagram only when a receive buffer is
 * full, and at most FLIGHT_WINDOW small datagrams are ever in flight, far
 * below what either socket's buffer holds: a lost datagram is a failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"
#include "echo-udp.h"

/* The datagrams of the size check: the smallest, a usual one, exactly a
 * slice, and one longer than a slice, which must come back truncated to
 * exactly the slice's bytes. */
static const size_t sizes[] = {1, 1000, EC_SLICE_SIZE, EC_SLICE_SIZE + 1000};
#define MAX_DGRAM (EC_SLICE_SIZE + 1000)

/* The flight check: FLIGHT_TOTAL datagrams of 8 to 1000 bytes, FLIGHT_WINDOW
 * of them sent at once and each echo replaced by a new datagram. */
#define FLIGHT_TOTAL 2000
#define FLIGHT_WINDOW 32
#define FLIGHT_LEN(i) (8 + ((size_t)(i)*7919) % 993)

/* The receive buffer the client asks for, so that echoes never overflow it. */
#define CLIENT_RCVBUF (1 << 20)

typedef struct udp_client {
  uv_udp_t handle;
  int opened;
  uint32_t stream;
  uint32_t next_seq;
  /* What the server has been sent and must have counted. */
  unsigned long long sent;
  unsigned long long bytes; /* as received by the server: truncated */
  unsigned long long truncated;
  /* Every datagram received; the last one when not in a flight. */
  unsigned long long got;
  size_t last_len;
  unsigned int last_flags;
  unsigned char last[64 * KIB];
  /* The flight in progress, if in_flight_check. */
  int in_flight_check;
  uint32_t flight_base; /* the sequence number of its first datagram */
  uint32_t flight_sent;
  uint32_t flight_done;
  unsigned int flight_errors;
  unsigned char seen[FLIGHT_TOTAL];
} udp_client;

/* A datagram the kernel could not take at once, with its own copy. */
typedef struct udp_send {
  uv_udp_send_t req;
  unsigned char data[];
} udp_send;

static ec_server udp4, udp6, udpm;
static udp_client client4, client6, clientm;

/* Where the client reads into. */
static unsigned char rbuf[64 * KIB];

/* ---- datagrams ---------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
  p[2] = (unsigned char)(v >> 16);
  p[3] = (unsigned char)(v >> 24);
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

/* Datagram `seq` of `stream`, `len` bytes long. */
static void make_dgram(unsigned char *buf, size_t len, uint32_t stream,
                       uint32_t seq) {
  uint64_t pos = (uint64_t)seq << 24;
  if (len < 8) {
    ec_fill(buf, len, stream, pos);
    return;
  }
  put32(buf, stream);
  put32(buf + 4, seq);
  ec_fill(buf + 8, len - 8, stream, pos + 8);
}

/* The first offset where a and b differ; n if none. */
static size_t first_difference(const unsigned char *a, const unsigned char *b,
                               size_t n) {
  size_t i;
  for (i = 0; i < n && a[i] == b[i]; i++)
    ;
  return i;
}

/* Fails the check for an echo of `what` that is not what was sent: `n`
 * bytes where `want` were due, the first wrong byte at `at` (n if none),
 * with libuv's receive flags. */
static void report_echo(const char *what, size_t n, size_t want, size_t at,
                        unsigned int flags) {
  if (n != want)
    ec_fail("%s came back as %zu bytes, not %zu", what, n, want);
  else if (at != n)
    ec_fail("%s came back with byte %zu wrong", what, at);
  else if (flags & UV_UDP_PARTIAL)
    ec_fail("%s came back longer than the client's buffer", what);
}

/* ---- the client --------------------------------------------------------- */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init((char *)rbuf, sizeof(rbuf));
}

static void flight_pump(udp_client *c);

/* An echo of the flight: one of its datagrams, not seen before, intact. */
static void flight_echo(udp_client *c, size_t n, unsigned int flags) {
  static unsigned char want[1024];
  uint32_t seq, i;
  size_t at;

  seq = n >= 8 ? get32(rbuf + 4) : 0;
  i = seq - c->flight_base;
  if (n < 8 || get32(rbuf) != c->stream || i >= c->flight_sent) {
    if (c->flight_errors++ < 5)
      ec_fail("an echo of %zu bytes that is no datagram of the flight", n);
    return;
  }
  if (c->seen[i]) {
    if (c->flight_errors++ < 5)
      ec_fail("datagram %u came back twice", (unsigned int)i);
    return;
  }
  c->seen[i] = 1;
  make_dgram(want, FLIGHT_LEN(i), c->stream, seq);
  at = first_difference(rbuf, want, n < FLIGHT_LEN(i) ? n : FLIGHT_LEN(i));
  if (n != FLIGHT_LEN(i) || at != n || (flags & UV_UDP_PARTIAL)) {
    char what[64];
    snprintf(what, sizeof(what), "datagram %u of the flight (%zu bytes)",
             (unsigned int)i, FLIGHT_LEN(i));
    if (c->flight_errors++ < 5)
      report_echo(what, n, FLIGHT_LEN(i), at, flags);
    return;
  }
  c->flight_done++;
  flight_pump(c);
}

static void on_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned int flags) {
  udp_client *c = (udp_client *)handle->data;
  (void)buf;
  if (nread < 0) {
    ec_fail("receiving: %s", uv_strerror((int)nread));
    return;
  }
  if (addr == NULL)
    return; /* nothing more to read */
  c->got++;
  if (c->in_flight_check) {
    flight_echo(c, (size_t)nread, flags);
    return;
  }
  c->last_len = (size_t)nread;
  c->last_flags = flags;
  memcpy(c->last, rbuf, (size_t)nread);
}

static void on_send(uv_udp_send_t *req, int status) {
  if (status < 0)
    ec_fail("sending a datagram: %s", uv_strerror(status));
  free(req);
}

/* Sends a datagram to the server, and counts what the server should. */
static int send_dgram(udp_client *c, const unsigned char *data, size_t len) {
  uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned int)len);
  udp_send *req;
  int r = uv_udp_try_send(&c->handle, &b, 1, NULL);

  if (r == UV_EAGAIN) {
    req = malloc(sizeof(*req) + len);
    r = UV_ENOMEM;
    if (req != NULL) {
      memcpy(req->data, data, len);
      b.base = (char *)req->data;
      r = uv_udp_send(&req->req, &c->handle, &b, 1, NULL, on_send);
      if (r != 0)
        free(req);
    }
  }
  if (r < 0) {
    ec_fail("sending a datagram of %zu bytes: %s", len, uv_strerror(r));
    return r;
  }
  c->sent++;
  c->bytes += len < EC_SLICE_SIZE ? len : EC_SLICE_SIZE;
  c->truncated += len > EC_SLICE_SIZE;
  return 0;
}

/* Opens the client on the loopback address of the server's family and
 * connects it to the server. \return 0 or a libuv error (not reported). */
static int client_open(udp_client *c, const struct sockaddr_storage *server,
                       uint32_t stream) {
  struct sockaddr_storage local;
  int size = CLIENT_RCVBUF;
  int r;

  memset(c, 0, sizeof(*c));
  c->stream = stream;
  if (server->ss_family == AF_INET6)
    r = uv_ip6_addr("::1", 0, (struct sockaddr_in6 *)&local);
  else
    r = uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&local);
  if (r == 0)
    r = uv_udp_init(&ec_loop, &c->handle);
  if (r != 0)
    return r;
  c->opened = 1;
  c->handle.data = c;
  r = uv_udp_bind(&c->handle, (const struct sockaddr *)&local, 0);
  if (r == 0)
    r = uv_udp_connect(&c->handle, (const struct sockaddr *)server);
  /* The system may cap it, which would only matter if echoes were lost. */
  if (r == 0)
    (void)uv_recv_buffer_size((uv_handle_t *)&c->handle, &size);
  if (r == 0)
    r = uv_udp_recv_start(&c->handle, on_alloc, on_recv);
  return r;
}

static void client_close(udp_client *c) {
  if (c->opened && !uv_is_closing((uv_handle_t *)&c->handle))
    uv_close((uv_handle_t *)&c->handle, NULL);
}

/* ---- what the checks do, for either family ------------------------------ */

static int got_more(const void *arg) {
  const udp_client *c = (const udp_client *)arg;
  return c->got >= c->sent;
}

/* Sends datagrams of each of `sizes`, one at a time, and checks that each
 * comes back once, exactly: all its bytes, or the first EC_SLICE_SIZE of
 * them for the one longer than a slice. */
static void check_sizes_on(ec_server *s, udp_client *c) {
  static unsigned char data[MAX_DGRAM];
  size_t i;

  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    size_t len = sizes[i];
    size_t want = len < EC_SLICE_SIZE ? len : EC_SLICE_SIZE;
    size_t at;

    make_dgram(data, len, c->stream, c->next_seq++);
    if (send_dgram(c, data, len) != 0)
      return;
    if (!ec_run_until(got_more, c, 5000)) {
      ec_server_report_death(s);
      ec_fail("no echo of a datagram of %zu bytes within %llu ms", len,
              (unsigned long long)ec_scaled(5000));
      return;
    }
    at = first_difference(c->last, data,
                          c->last_len < want ? c->last_len : want);
    if (c->last_len != want || at != want || (c->last_flags & UV_UDP_PARTIAL)) {
      char what[64];
      snprintf(what, sizeof(what), "a datagram of %zu bytes", len);
      report_echo(what, c->last_len, want, at, c->last_flags);
    }
  }
  /* An echo sent twice would arrive within this. */
  ec_pause(200);
  if (c->got != c->sent)
    ec_fail("%llu datagrams came back for %llu sent", c->got, c->sent);
  ec_server_check_quiet(s, "while echoing datagrams");
}

static void flight_pump(udp_client *c) {
  static unsigned char data[1024];
  while (c->flight_sent < FLIGHT_TOTAL &&
         c->flight_sent - c->flight_done < FLIGHT_WINDOW) {
    uint32_t i = c->flight_sent;
    make_dgram(data, FLIGHT_LEN(i), c->stream, c->flight_base + i);
    if (send_dgram(c, data, FLIGHT_LEN(i)) != 0) {
      c->flight_errors++;
      return;
    }
    c->flight_sent++;
  }
}

static int flight_over(const void *arg) {
  const udp_client *c = (const udp_client *)arg;
  return c->flight_done == FLIGHT_TOTAL || c->flight_errors > 0;
}

/* FLIGHT_TOTAL datagrams of sizes from 8 to 1000 bytes, FLIGHT_WINDOW in
 * flight at all times (the first FLIGHT_WINDOW sent at once): each must come
 * back once and intact, in any order. */
static void check_flight_on(ec_server *s, udp_client *c) {
  unsigned long long got_before = c->got;
  uint32_t i, missing = 0;

  c->flight_base = c->next_seq;
  c->next_seq += FLIGHT_TOTAL;
  c->flight_sent = 0;
  c->flight_done = 0;
  c->flight_errors = 0;
  memset(c->seen, 0, sizeof(c->seen));
  c->in_flight_check = 1;
  flight_pump(c);
  if (!ec_run_until(flight_over, c, 30000)) {
    ec_server_report_death(s);
    for (i = 0; i < c->flight_sent; i++)
      missing += !c->seen[i];
    ec_fail("%u of %u datagrams sent did not come back within %llu ms",
            (unsigned int)missing, (unsigned int)c->flight_sent,
            (unsigned long long)ec_scaled(30000));
  }
  ec_pause(200);
  c->in_flight_check = 0;
  if (c->got - got_before != c->flight_sent)
    ec_fail("%llu datagrams came back for %u sent", c->got - got_before,
            (unsigned int)c->flight_sent);
  ec_server_check_quiet(s, "while echoing datagrams");
}

/* SIGTERM, as for TCP; then the statistics must count exactly what the
 * client sent, the truncated datagrams among them, no error and no heap
 * allocation after start-up. */
static void check_stop_on(ec_server *s, const udp_client *c) {
  unsigned long long truncated, send_errors, recv_errors;
  unsigned long long messages, bytes, allocations;
  char line[256];
  int failed;

  if (!ec_server_stop(s))
    return;
  failed = ec_check_failed;
  if (!ec_server_find_line(s, "datagrams truncated:", line, sizeof(line)) ||
      sscanf(line,
             "datagrams truncated: %llu, send errors: %llu, receive "
             "errors: %llu",
             &truncated, &send_errors, &recv_errors) != 3)
    ec_fail("no line \"datagrams truncated: T, send errors: S, receive "
            "errors: R\" in the statistics");
  else if (truncated != c->truncated || send_errors != 0 || recv_errors != 0)
    ec_fail("the statistics say \"%s\", not %llu truncated and no errors", line,
            c->truncated);
  if (!ec_server_find_line(s, "messages:", line, sizeof(line)) ||
      sscanf(line,
             "messages: %llu, bytes: %llu, heap allocations after start-up: "
             "%llu",
             &messages, &bytes, &allocations) != 3)
    ec_fail("no line \"messages: M, bytes: B, heap allocations after "
            "start-up: A\" in the statistics");
  else if (messages != c->sent || bytes != c->bytes || allocations != 0)
    ec_fail("the statistics say \"%s\", not %llu messages, %llu bytes and "
            "no allocation",
            line, c->sent, c->bytes);
  if (ec_check_failed && !failed)
    ec_note("%s printed:\n%s", s->name, s->out);
}

/* Starts a UDP server on host with args and opens its client. */
static int start_with(ec_server *s, udp_client *c, const char *name,
                      const char *host, const char *const *args,
                      uint32_t stream) {
  int r;

  ec_server_start(s, name, ec_echo_path, host, args);
  if (!ec_server_serving(s))
    return -1;
  r = client_open(c, &s->addr, stream);
  if (r != 0)
    ec_fail("cannot open a UDP client on %s: %s", host, uv_strerror(r));
  return r;
}

static int start_on(ec_server *s, udp_client *c, const char *name,
                    const char *host, uint32_t stream) {
  static const char *const udp_args[] = {"--udp", NULL};
  return start_with(s, c, name, host, udp_args, stream);
}

/* ---- the checks ---------------------------------------------------------- */

static void check_listening(void) {
  start_on(&udp4, &client4, "asock-echo --udp", "127.0.0.1", 0x75647034);
}

static void check_sizes(void) { check_sizes_on(&udp4, &client4); }

static void check_flight(void) { check_flight_on(&udp4, &client4); }

static void check_stop(void) {
  check_stop_on(&udp4, &client4);
  client_close(&client4);
}

/* The same over IPv6, on ::1, where the host has it. */
static void check_ipv6(void) {
  static uv_udp_t probe; /* the loop holds it until it has closed */
  struct sockaddr_in6 probe_addr;
  int r;

  /* Whether ::1 exists is what a bind to it says. */
  uv_ip6_addr("::1", 0, &probe_addr);
  r = uv_udp_init(&ec_loop, &probe);
  if (r == 0) {
    r = uv_udp_bind(&probe, (const struct sockaddr *)&probe_addr, 0);
    uv_close((uv_handle_t *)&probe, NULL);
  }
  if (r != 0) {
    ec_note("no IPv6 here (binding ::1: %s); not checked", uv_strerror(r));
    return;
  }
  if (start_on(&udp6, &client6, "asock-echo --udp --host ::1", "::1",
               0x75647036) != 0)
    return;
  check_sizes_on(&udp6, &client6);
  check_flight_on(&udp6, &client6);
  check_stop_on(&udp6, &client6);
  client_close(&client6);
}

/* One multishot receive-from (--multishot): the same flight, every datagram
 * back and counted. (On the io_uring backend its datagrams come through the
 * ring's provided buffers, which cut them a little short of a slice: the
 * sizes check is the one-op server's.) */
static void check_multishot(void) {
  static const char *const args[] = {"--udp", "--multishot", NULL};
  if (start_with(&udpm, &clientm, "asock-echo --udp --multishot", "127.0.0.1",
                 args, 0x7564706d) != 0)
    return;
  check_flight_on(&udpm, &clientm);
  check_stop_on(&udpm, &clientm);
  client_close(&clientm);
}

const ec_check ec_udp_checks[] = {
    {"udp: listening line", check_listening, NULL},
    {"udp: datagrams of 1 and 1000 bytes, a slice, more than a slice",
     check_sizes, &udp4},
    {"udp: " EC_DECIMAL(FLIGHT_TOTAL) " datagrams, " EC_DECIMAL(
         FLIGHT_WINDOW) " in flight",
     check_flight, &udp4},
    {"udp: stop on SIGTERM", check_stop, &udp4},
    {"udp: the same over IPv6", check_ipv6, NULL},
    {"udp: " EC_DECIMAL(FLIGHT_TOTAL) " datagrams to one multishot receive",
     check_multishot, NULL},
};
const size_t ec_udp_check_count =
    sizeof(ec_udp_checks) / sizeof(*ec_udp_checks);

void ec_udp_close(void) {
  client_close(&client4);
  client_close(&client6);
  client_close(&clientm);
  ec_server_close(&udp4);
  ec_server_close(&udp6);
  ec_server_close(&udpm);
  free(udp4.out);
  free(udp6.out);
  free(udpm.out);
}
