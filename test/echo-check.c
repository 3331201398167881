/* asock-echo-check: a black-box test of the asock-echo example.
 *
 *   asock-echo-check PATH-TO-ASOCK-ECHO
 *
 * Starts the server with a small pool and talks to it over loopback as any
 * libuv client would, checking what issue 3 asks of it: the one "listening
 * on" line, every byte echoed in order, half-close, a peer that resets, peers
 * that vanish, a peer that sends faster than it reads, and a clean stop on
 * SIGTERM that prints the pool's statistics. It uses libuv alone, for the
 * process, the sockets and the timers, so that it runs wherever the server
 * does (CI machines may lack Python), and every wait is bounded by a timer.
 * Prints one "ok" or "not ok" line per check and exits 0 only when all
 * passed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"

/* The pool asock-echo is given: 4 MiB, so that a server that buffered what
 * a slow reader cannot take would show in its RSS beyond the pool. */
#define SLICES 256
#define SLICE_SIZE 16384
#define STRING(x) #x
#define DECIMAL(x) STRING(x)

/* The slow reader's bound on the server's RSS growth, in KiB: the pool's 4
 * MiB, which it may touch for the first time, and as much again for
 * everything else. */
#define RSS_GROWTH_LIMIT_KIB (8 * 1024)

/* SIGTERM stops the server gracefully only where signals exist. On Windows
 * libuv's uv_process_kill() terminates the process (TerminateProcess, exit
 * code 1) for every signal number, so asock-echo never sees it, cannot print
 * its statistics and cannot exit 0; there only the exit itself is checked.
 */
#ifdef _WIN32
static const int graceful_stop = 0;
#else
static const int graceful_stop = 1;
#endif

/* The server process and what it printed. */
typedef struct server {
  uv_process_t proc;
  uv_pipe_t out_pipe;
  int spawned;
  int proc_open; /* to be closed, even when spawning failed */
  int stop_sent;
  int exited;
  int64_t exit_status;
  int term_signal;
  int out_open; /* the pipe handle is initialised and not yet closed */
  int out_eof;
  char *out; /* everything it printed, followed by a NUL */
  size_t out_len;
  size_t out_cap;
  size_t line_len; /* the listening line with its end of line; 0 until seen */
} server;

static server srv;

/* ---- the server -------------------------------------------------------- */

static void on_server_exit(uv_process_t *proc, int64_t exit_status,
                           int term_signal) {
  (void)proc;
  srv.exited = 1;
  srv.exit_status = exit_status;
  srv.term_signal = term_signal;
  ec_server_died = !srv.stop_sent;
}

/* 64 KiB is far more than the server has to say, so more is a failure
 * rather than a reason to grow. */
static void on_out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  size_t want = srv.out_len + 4 * KIB;
  char *p;
  (void)handle;
  (void)suggested;
  *buf = uv_buf_init(NULL, 0);
  if (want > srv.out_cap && want <= 64 * KIB) {
    p = realloc(srv.out, want);
    if (p == NULL)
      return;
    srv.out = p;
    srv.out_cap = want;
  }
  if (srv.out_cap > srv.out_len + 1)
    *buf = uv_buf_init(srv.out + srv.out_len,
                       (unsigned int)(srv.out_cap - srv.out_len - 1));
}

static void on_out_read(uv_stream_t *stream, ssize_t nread,
                        const uv_buf_t *buf) {
  (void)buf;
  if (nread > 0) {
    srv.out_len += (size_t)nread;
    srv.out[srv.out_len] = '\0';
  } else if (nread == UV_ENOBUFS) {
    ec_fail("asock-echo printed more than 64 KiB on standard output");
    srv.out_eof = 1;
    uv_read_stop(stream);
  } else if (nread < 0) {
    if (nread != UV_EOF)
      ec_fail("reading asock-echo's output: %s", uv_strerror((int)nread));
    srv.out_eof = 1;
    uv_read_stop(stream);
  }
}

static int spawn_server(const char *path) {
  char *args[] = {(char *)path,
                  "--host",
                  "127.0.0.1",
                  "--port",
                  "0",
                  "--slices",
                  DECIMAL(SLICES),
                  "--slice-size",
                  DECIMAL(SLICE_SIZE),
                  NULL};
  uv_process_options_t options;
  uv_stdio_container_t stdio[3];
  int r;

  uv_pipe_init(&ec_loop, &srv.out_pipe, 0);
  srv.out_open = 1;
  memset(&options, 0, sizeof(options));
  memset(stdio, 0, sizeof(stdio));
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&srv.out_pipe;
  /* What the server says on standard error goes to the test's log. */
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  options.file = path;
  options.args = args;
  options.exit_cb = on_server_exit;
  options.stdio = stdio;
  options.stdio_count = 3;
  r = uv_spawn(&ec_loop, &srv.proc, &options);
  srv.proc_open = 1;
  if (r != 0) {
    ec_fail("cannot start %s: %s", path, uv_strerror(r));
    return r;
  }
  srv.spawned = 1;
  r = uv_read_start((uv_stream_t *)&srv.out_pipe, on_out_alloc, on_out_read);
  if (r != 0)
    ec_fail("cannot read asock-echo's output: %s", uv_strerror(r));
  return r;
}

static int line_arrived(const void *arg) {
  (void)arg;
  return srv.out_eof || (srv.out != NULL && strchr(srv.out, '\n') != NULL);
}

static int server_exited(const void *arg) {
  (void)arg;
  return srv.exited && srv.out_eof;
}

/* Fails unless the server printed nothing beyond its listening line. */
static void check_quiet(const char *when) {
  if (srv.out_len > srv.line_len)
    ec_fail("asock-echo printed more than its listening line %s: \"%s\"", when,
            srv.out + srv.line_len);
}

/* Reports, once, that the server exited unasked. */
static void report_death(void) {
  static int reported;
  if (ec_server_died && !reported) {
    reported = 1;
    ec_fail("asock-echo exited unasked, status %lld, signal %d",
            (long long)srv.exit_status, srv.term_signal);
  }
}

#ifdef __linux__
static const int rss_readable = 1;

/* The server's resident set in KiB, or -1. */
static long server_rss_kib(void) {
  char path[64], line[256];
  long kib = -1;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%d/status", srv.proc.pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
      break;
  fclose(f);
  return kib;
}
#else
/* Only Linux has /proc/PID/status; elsewhere the bound is not checked. */
static const int rss_readable = 0;

static long server_rss_kib(void) { return -1; }
#endif

/* One connection that sends `total` bytes while reading, shuts down its
 * sending side once they are all back, and must then see the server close.
 */
static void echo_one(const char *name, uint32_t stream, size_t total) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, name, stream, total,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO);
  ec_run_until(ec_all_settled, NULL, 10000);
  report_death();
  ec_conn_verify(c, 1);
  ec_conns_free();
}

/* ---- the checks -------------------------------------------------------- */

/* 1. Exactly one line, "listening on 127.0.0.1:PORT", with a real port. */
static void check_listening(const char *path) {
  static const char prefix[] = "listening on 127.0.0.1:";
  const size_t plen = sizeof(prefix) - 1;
  const char *nl;
  size_t len, i;
  long port = 0;

  if (spawn_server(path) != 0)
    return;
  if (!ec_run_until(line_arrived, NULL, 10000)) {
    report_death();
    ec_fail("no line on standard output within %llu ms",
            (unsigned long long)ec_scaled(10000));
    return;
  }
  nl = srv.out != NULL ? strchr(srv.out, '\n') : NULL;
  if (nl == NULL) {
    ec_fail("standard output ended without a line: \"%s\"",
            srv.out != NULL ? srv.out : "");
    return;
  }
  len = (size_t)(nl - srv.out);
  /* C's text mode writes "\r\n" on Windows. */
  if (len > 0 && srv.out[len - 1] == '\r')
    len--;
  for (i = plen; i < len && i < plen + 6; i++) {
    if (srv.out[i] < '0' || srv.out[i] > '9')
      break;
    port = port * 10 + (srv.out[i] - '0');
  }
  if (len <= plen || memcmp(srv.out, prefix, plen) != 0 || i != len ||
      srv.out[plen] == '0' || port > 65535) {
    ec_fail("the first line is \"%.*s\", not \"%sPORT\" with PORT from 1 to "
            "65535",
            (int)len, srv.out, prefix);
    return;
  }
  srv.line_len = (size_t)(nl - srv.out) + 1;
  uv_ip4_addr("127.0.0.1", (int)port, &ec_server_addr);
  ec_note("asock-echo listens on port %ld", port);
  /* A second line printed at once would still arrive within this. */
  ec_pause(200);
  report_death();
  check_quiet("before any client connected");
}

/* 2. Eight connections at once, each sending 1 MiB of its own bytes in
 * random-sized writes while reading; all of it comes back in order. Only
 * then does each shut down, and the server must close with nothing more. */
static void check_echo(void) {
  enum { N = 8 };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    snprintf(name, sizeof(name), "connection %zu", i);
    ec_conn_open(&c[i], name, 100 + (uint32_t)i, MIB,
                 EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_ECHO);
  }
  ec_run_until(ec_all_settled, NULL, 20000);
  report_death();
  for (i = 0; i < N; i++)
    ec_conn_verify(&c[i], 1);
  ec_conns_free();
  check_quiet("while echoing");
}

/* 3. A client sends 300 KiB and shuts down its sending side straight away,
 * so the server sees the end of the stream with bytes still to echo: all
 * 300 KiB must come back, then the end of the stream. */
static void check_half_close(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, "half-closed client", 200, 300 * KIB,
               EC_READ_AT_CONNECT | EC_SHUTDOWN_AFTER_SEND);
  ec_run_until(ec_all_settled, NULL, 10000);
  report_death();
  ec_conn_verify(c, 1);
  ec_conns_free();
  check_quiet("after a half-close");
}

static int all_written(const void *arg) {
  const ec_conn *c = (const ec_conn *)arg;
  return c->written == c->total || ec_conn_settled(c);
}

/* 4. A client sends 100 KiB without reading any of the echo and closes
 * with a reset; a client connected after it is still served. */
static void check_reset(void) {
  ec_conn *c = ec_conns_new(1);
  if (c == NULL)
    return;
  ec_conn_open(c, "resetting client", 300, 100 * KIB, 0);
  ec_run_until(all_written, c, 10000);
  report_death();
  if (c->connect_status != 0 || c->write_error != 0) {
    ec_conn_verify(c, 0);
    ec_conns_free();
    return;
  }
  if (c->written != c->total) {
    ec_fail("%s: only %zu of %zu bytes written in time", c->name, c->written,
            c->total);
    ec_conns_free();
    return;
  }
  /* Time for the server to read and echo into the unread receive buffer,
   * so that the reset finds it with the connection in full use. */
  ec_pause(100);
  ec_conn_close(c, 1);
  ec_conns_free();
  /* Time for the server to meet the reset before the next client comes. */
  ec_pause(200);
  report_death();
  echo_one("client after the reset", 301, 64 * KIB);
  check_quiet("after a reset");
}

/* 5. Fifty clients that vanish: a quarter close before their connect has
 * completed, a quarter as soon as it has, and half send up to 256 KiB and
 * close at once, half of those with a reset. A new client is then served. */
static void check_vanish(void) {
  enum { N = 50 };
  ec_conn *c = ec_conns_new(N);
  char name[40];
  size_t i;

  if (c == NULL)
    return;
  for (i = 0; i < N; i++) {
    c[i].vanish = (ec_vanish)(EC_VANISH_BEFORE_CONNECT + i % 4);
    snprintf(name, sizeof(name), "vanishing client %zu", i);
    ec_conn_open(&c[i], name, 400 + (uint32_t)i, (i * 5297) % (256 * KIB) + 1,
                 0);
    if (c[i].vanish == EC_VANISH_BEFORE_CONNECT)
      ec_conn_close(&c[i], 0);
  }
  if (!ec_run_until(ec_all_closed, NULL, 10000)) {
    report_death();
    ec_fail("the vanishing clients did not all close");
  }
  for (i = 0; i < N; i++)
    if (c[i].vanish != EC_VANISH_BEFORE_CONNECT && c[i].connect_status != 0)
      ec_fail("%s: connect: %s", c[i].name,
              c[i].connect_status == 1 ? "did not complete"
                                       : uv_strerror(c[i].connect_status));
  ec_conns_free();
  ec_pause(200);
  report_death();
  echo_one("client after the vanishing ones", 499, 64 * KIB);
  check_quiet("after clients vanished");
}

typedef struct rss_watch {
  uv_timer_t timer;
  long max_kib;
  int unreadable;
  int closed;
} rss_watch;

static void on_rss_tick(uv_timer_t *timer) {
  rss_watch *w = (rss_watch *)timer->data;
  long kib = server_rss_kib();
  if (kib < 0)
    w->unreadable = 1;
  else if (kib > w->max_kib)
    w->max_kib = kib;
}

static void on_rss_close(uv_handle_t *handle) {
  ((rss_watch *)handle->data)->closed = 1;
}

static int rss_closed(const void *arg) {
  return ((const rss_watch *)arg)->closed;
}

/* 6. A client sends 16 MiB as fast as the connection takes it but reads
 * nothing for 2 seconds; its buffers are small, so that TCP soon holds the
 * server back. Over those 2 seconds the server's RSS, sampled every 50 ms,
 * must not grow by more than RSS_GROWTH_LIMIT_KIB. Then the client reads
 * and everything must come back in order. */
static void check_slow_reader(void) {
  static rss_watch w; /* the loop may hold its timer after a return */
  ec_conn *c = ec_conns_new(1);
  long before;

  if (c == NULL)
    return;
  before = server_rss_kib();
  w.max_kib = before;
  w.unreadable = 0;
  w.closed = 0;
  uv_timer_init(&ec_loop, &w.timer);
  w.timer.data = &w;
  uv_timer_start(&w.timer, on_rss_tick, 50, 50);
  ec_conn_open(c, "slow reader", 600, 16 * MIB,
               EC_SMALL_BUFFERS | EC_SHUTDOWN_AFTER_ECHO);
  ec_pause(2000);
  on_rss_tick(&w.timer);
  uv_close((uv_handle_t *)&w.timer, on_rss_close);
  ec_run_for(rss_closed, &w, 10000);
  report_death();
  if (!rss_readable) {
    ec_note("the server's RSS is read only on Linux; not checked");
  } else if (before < 0 || w.unreadable) {
    ec_fail("cannot read VmRSS from /proc/%d/status", srv.proc.pid);
  } else if (w.max_kib - before >= RSS_GROWTH_LIMIT_KIB) {
    ec_fail("the server's RSS grew from %ld KiB to %ld KiB, by %ld KiB "
            "(limit %d KiB), while the client sent %zu bytes without reading",
            before, w.max_kib, w.max_kib - before, RSS_GROWTH_LIMIT_KIB,
            c->written);
  } else {
    ec_note("the server's RSS grew by %ld KiB while the client sent %zu "
            "bytes without reading",
            w.max_kib - before, c->written);
  }
  ec_conn_read(c);
  ec_run_until(ec_all_settled, NULL, 30000);
  report_death();
  ec_conn_verify(c, 1);
  ec_conns_free();
  check_quiet("after the slow reader");
}

/* Copies the line after the listening line that starts with `start` into
 * buf, without its end of line. \return 1 if there is one. */
static int find_line(const char *start, char *buf, size_t size) {
  const char *line = srv.out + srv.line_len;
  size_t slen = strlen(start);
  while (*line != '\0') {
    size_t len = strcspn(line, "\r\n");
    if (len >= slen && memcmp(line, start, slen) == 0) {
      snprintf(buf, size, "%.*s", (int)len, line);
      return 1;
    }
    line += len;
    line += strspn(line, "\r\n");
  }
  return 0;
}

/* Fails unless the line `start` reports "in use 0". */
static void check_in_use(const char *start) {
  char line[256];
  const char *at;
  if (!find_line(start, line, sizeof(line))) {
    ec_fail("no line starting \"%s\" in the statistics", start);
    return;
  }
  at = strstr(line, "in use ");
  if (at == NULL || at[7] != '0' || (at[8] >= '0' && at[8] <= '9'))
    ec_fail("the statistics say \"%s\", not \"in use 0\"", line);
}

/* 7. SIGTERM: the server exits 0 within 5 s, having printed its statistics
 * after the listening line, with no slice and no op still in use. */
static void check_stop(void) {
  size_t slices = 0, slice_size = 0;
  char line[256];
  int r;

  check_quiet("before it was stopped");
  srv.stop_sent = 1;
  r = uv_process_kill(&srv.proc, SIGTERM);
  if (r != 0) {
    ec_fail("uv_process_kill(SIGTERM): %s", uv_strerror(r));
    return;
  }
  if (!ec_run_until(server_exited, NULL, 5000)) {
    ec_fail("asock-echo did not exit within %llu ms of SIGTERM",
            (unsigned long long)ec_scaled(5000));
    return;
  }
  if (!graceful_stop)
    return;
  if (srv.term_signal != 0 || srv.exit_status != 0)
    ec_fail("asock-echo exited with status %lld, signal %d, not status 0",
            (long long)srv.exit_status, srv.term_signal);
  if (srv.out[srv.out_len - 1] != '\n')
    ec_fail("the statistics do not end with a line end");
  if (find_line("slices:", line, sizeof(line)) &&
      (sscanf(line, "slices: %zu of %zu bytes", &slices, &slice_size) != 2 ||
       slices != SLICES || slice_size != SLICE_SIZE))
    ec_fail("the statistics say \"%s\", not %d slices of %d bytes as asked "
            "with --slices and --slice-size",
            line, SLICES, SLICE_SIZE);
  check_in_use("slices:");
  check_in_use("ops:");
  if (ec_check_failed)
    ec_note("asock-echo printed:\n%s", srv.out);
}

/* ---- main -------------------------------------------------------------- */

/* Writing to a connection the server reset must be an error, not the end
 * of the test. Where SIGPIPE exists libuv leaves it to the application; a
 * spawned server gets its default disposition back from libuv. */
static void ignore_sigpipe(void) {
#ifdef SIGPIPE
  signal(SIGPIPE, SIG_IGN);
#endif
}

static void close_server(void) {
  if (srv.spawned && !srv.exited) {
    srv.stop_sent = 1;
    uv_process_kill(&srv.proc, SIGKILL);
    ec_run_for(server_exited, NULL, 5000);
  }
  if (srv.proc_open)
    uv_close((uv_handle_t *)&srv.proc, NULL);
  if (srv.out_open)
    uv_close((uv_handle_t *)&srv.out_pipe, NULL);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*run)(void);
  } checks[] = {
      {"echo: 8 connections, 1 MiB each", check_echo},
      {"half-close", check_half_close},
      {"reset", check_reset},
      {"vanishing clients", check_vanish},
      {"slow reader", check_slow_reader},
      {"stop on SIGTERM", check_stop},
  };
  int failures = 0, r;
  size_t i;

  if (argc != 2) {
    fprintf(stderr, "usage: asock-echo-check PATH-TO-ASOCK-ECHO\n");
    return 2;
  }
  ignore_sigpipe();
  r = ec_init();
  if (r != 0) {
    fprintf(stderr, "asock-echo-check: %s\n", uv_strerror(r));
    return 1;
  }

  ec_check_name = "listening line";
  check_listening(argv[1]);
  printf("%s 1 - %s\n", ec_check_failed ? "not ok" : "ok", ec_check_name);
  failures += ec_check_failed;
  for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
    ec_check_name = checks[i].name;
    ec_check_failed = 0;
    if (srv.exited || srv.line_len == 0) {
      printf("not ok %zu - %s: skipped, asock-echo is not serving\n", i + 2,
             ec_check_name);
      failures++;
      continue;
    }
    checks[i].run();
    printf("%s %zu - %s\n", ec_check_failed ? "not ok" : "ok", i + 2,
           ec_check_name);
    fflush(stdout);
    failures += ec_check_failed;
  }

  close_server();
  r = ec_close();
  free(srv.out);
  if (r != 0) {
    printf("# uv_loop_close: %s\n", uv_strerror(r));
    failures++;
  }
  printf("%s\n", failures == 0 ? "all checks passed" : "some checks failed");
  return failures == 0 ? 0 : 1;
}
