/* The asock-echo processes of asock-echo-check; see echo-server.h. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "echo-client.h"
#include "echo-server.h"

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

/* The signal on which the examples print their statistics, where there is
 * one. On Windows they take Ctrl+Break instead, which cannot be sent to
 * one child process alone, so the reports are not checked there. */
#ifdef SIGUSR1
static const int stats_signal = SIGUSR1;
#else
static const int stats_signal = 0;
#endif

const char *ec_echo_path;

static void on_server_exit(uv_process_t *proc, int64_t exit_status,
                           int term_signal) {
  ec_server *s = (ec_server *)proc->data;
  s->exited = 1;
  s->exit_status = exit_status;
  s->term_signal = term_signal;
  if (!s->stop_sent)
    ec_server_died = 1;
}

/* 64 KiB is far more than the server has to say, so more is a failure
 * rather than a reason to grow. */
static void on_out_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
  ec_server *s = (ec_server *)handle->data;
  size_t want = s->out_len + 4 * KIB;
  char *p;
  (void)suggested;
  *buf = uv_buf_init(NULL, 0);
  if (want > s->out_cap && want <= 64 * KIB) {
    p = realloc(s->out, want);
    if (p == NULL)
      return;
    s->out = p;
    s->out_cap = want;
  }
  if (s->out_cap > s->out_len + 1)
    *buf = uv_buf_init(s->out + s->out_len,
                       (unsigned int)(s->out_cap - s->out_len - 1));
}

static void on_out_read(uv_stream_t *stream, ssize_t nread,
                        const uv_buf_t *buf) {
  ec_server *s = (ec_server *)stream->data;
  (void)buf;
  if (nread > 0) {
    s->out_len += (size_t)nread;
    s->out[s->out_len] = '\0';
  } else if (nread == UV_ENOBUFS) {
    ec_fail("%s printed more than 64 KiB on standard output", s->name);
    s->out_eof = 1;
    uv_read_stop(stream);
  } else if (nread < 0) {
    if (nread != UV_EOF)
      ec_fail("reading %s's output: %s", s->name, uv_strerror((int)nread));
    s->out_eof = 1;
    uv_read_stop(stream);
  }
}

static int spawn_server(ec_server *s, const char *path, const char *host,
                        const char *const *extra) {
  char *args[24] = {(char *)path,
                    "--host",
                    (char *)host,
                    "--port",
                    "0",
                    "--slices",
                    EC_DECIMAL(EC_SLICES),
                    "--slice-size",
                    EC_DECIMAL(EC_SLICE_SIZE)};
  size_t n = s->plain ? 5 : 9;
  uv_process_options_t options;
  uv_stdio_container_t stdio[3];
  int r;

  while (extra != NULL && *extra != NULL &&
         n + 1 < sizeof(args) / sizeof(*args))
    args[n++] = (char *)*extra++;
  args[n] = NULL;
  uv_pipe_init(&ec_loop, &s->out_pipe, 0);
  s->out_pipe.data = s;
  s->out_open = 1;
  memset(&options, 0, sizeof(options));
  memset(stdio, 0, sizeof(stdio));
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&s->out_pipe;
  /* What the server says on standard error goes to the test's log. */
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = 2;
  options.file = path;
  options.args = args;
  options.exit_cb = on_server_exit;
  options.stdio = stdio;
  options.stdio_count = 3;
  s->proc.data = s;
  r = uv_spawn(&ec_loop, &s->proc, &options);
  s->proc_open = 1;
  if (r != 0) {
    ec_fail("cannot start %s: %s", path, uv_strerror(r));
    return r;
  }
  s->spawned = 1;
  r = uv_read_start((uv_stream_t *)&s->out_pipe, on_out_alloc, on_out_read);
  if (r != 0)
    ec_fail("cannot read %s's output: %s", s->name, uv_strerror(r));
  return r;
}

static int line_arrived(const void *arg) {
  const ec_server *s = (const ec_server *)arg;
  return s->out_eof || (s->out != NULL && strchr(s->out, '\n') != NULL);
}

static int server_exited(const void *arg) {
  const ec_server *s = (const ec_server *)arg;
  return s->exited && s->out_eof;
}

int ec_server_serving(const ec_server *s) {
  return s->spawned && !s->exited && s->line_len > 0;
}

void ec_server_check_quiet(const ec_server *s, const char *when) {
  if (s->out_len > s->seen)
    ec_fail("%s printed more than its listening line and the reports asked "
            "for %s: \"%s\"",
            s->name, when, s->out + s->seen);
}

void ec_server_report_death(ec_server *s) {
  if (s->spawned && s->exited && !s->stop_sent) {
    s->stop_sent = 1; /* reported once */
    ec_fail("%s exited unasked, status %lld, signal %d", s->name,
            (long long)s->exit_status, s->term_signal);
  }
}

#ifdef __linux__
long ec_server_rss_kib(const ec_server *s) {
  char path[64], line[256];
  long kib = -1;
  FILE *f;
  snprintf(path, sizeof(path), "/proc/%d/status", s->proc.pid);
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
long ec_server_rss_kib(const ec_server *s) {
  (void)s;
  return -1;
}
#endif

void ec_server_start(ec_server *s, const char *name, const char *path,
                     const char *host, const char *const *extra) {
  char prefix[80];
  size_t plen, len, i;
  const char *nl;
  long port = 0;

  s->name = name;
  snprintf(prefix, sizeof(prefix), "listening on %s:", host);
  plen = strlen(prefix);
  if (spawn_server(s, path, host, extra) != 0)
    return;
  if (!ec_run_until(line_arrived, s, 10000)) {
    ec_server_report_death(s);
    ec_fail("%s: no line on standard output within %llu ms", name,
            (unsigned long long)ec_scaled(10000));
    return;
  }
  nl = s->out != NULL ? strchr(s->out, '\n') : NULL;
  if (nl == NULL) {
    ec_fail("%s: standard output ended without a line: \"%s\"", name,
            s->out != NULL ? s->out : "");
    return;
  }
  len = (size_t)(nl - s->out);
  /* C's text mode writes "\r\n" on Windows. */
  if (len > 0 && s->out[len - 1] == '\r')
    len--;
  for (i = plen; i < len && i < plen + 6; i++) {
    if (s->out[i] < '0' || s->out[i] > '9')
      break;
    port = port * 10 + (s->out[i] - '0');
  }
  if (len <= plen || memcmp(s->out, prefix, plen) != 0 || i != len ||
      s->out[plen] == '0' || port > 65535) {
    ec_fail("%s: the first line is \"%.*s\", not \"%sPORT\" with PORT from 1 "
            "to 65535",
            name, (int)len, s->out, prefix);
    return;
  }
  memset(&s->addr, 0, sizeof(s->addr));
  if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&s->addr) != 0 &&
      uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&s->addr) != 0) {
    ec_fail("%s: %s is not an address", name, host);
    return;
  }
  s->line_len = (size_t)(nl - s->out) + 1;
  s->seen = s->line_len;
  ec_note("%s listens on %s port %ld", name, host, port);
  /* A second line printed at once would still arrive within this. */
  ec_pause(200);
  ec_server_report_death(s);
  ec_server_check_quiet(s, "before any client came");
}

int ec_find_line(const char *text, const char *start, char *buf, size_t size) {
  const char *line = text;
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

int ec_server_find_line(const ec_server *s, const char *start, char *buf,
                        size_t size) {
  return s->out != NULL && ec_find_line(s->out + s->seen, start, buf, size);
}

/* Where the report after what was read ends: just past its "ops:" line's
 * end of line, or 0 while that line has not come whole. */
static size_t report_end(const ec_server *s) {
  const char *line = s->out != NULL ? s->out + s->seen : "";
  const char *nl;
  while ((nl = strchr(line, '\n')) != NULL) {
    if (strncmp(line, "ops:", 4) == 0)
      return (size_t)(nl + 1 - s->out);
    line = nl + 1;
  }
  return 0;
}

static int report_arrived(const void *arg) {
  const ec_server *s = (const ec_server *)arg;
  return s->out_eof || report_end(s) != 0;
}

int ec_server_report(ec_server *s, char *buf, size_t size) {
  size_t end, len;
  int r;

  if (stats_signal == 0) {
    ec_note("no SIGUSR1 here: %s's statistics on demand are not checked",
            s->name);
    return 0;
  }
  ec_server_check_quiet(s, "before SIGUSR1");
  r = uv_process_kill(&s->proc, stats_signal);
  if (r != 0) {
    ec_fail("uv_process_kill(SIGUSR1): %s", uv_strerror(r));
    return 0;
  }
  if (!ec_run_until(report_arrived, s, 10000) || report_end(s) == 0) {
    ec_server_report_death(s);
    ec_fail("%s printed no statistics within %llu ms of SIGUSR1: \"%s\"",
            s->name, (unsigned long long)ec_scaled(10000), s->out + s->seen);
    return 0;
  }
  end = report_end(s);
  len = end - s->seen;
  if (len >= size) {
    ec_fail("%s's statistics are longer than %zu bytes", s->name, size - 1);
    return 0;
  }
  memcpy(buf, s->out + s->seen, len);
  buf[len] = '\0';
  s->seen = end;
  return 1;
}

/* Fails unless the line `start` reports "in use 0". */
static void check_in_use(const ec_server *s, const char *start) {
  char line[256];
  const char *at;
  if (!ec_server_find_line(s, start, line, sizeof(line))) {
    ec_fail("no line starting \"%s\" in the statistics", start);
    return;
  }
  at = strstr(line, "in use ");
  if (at == NULL || at[7] != '0' || (at[8] >= '0' && at[8] <= '9'))
    ec_fail("the statistics say \"%s\", not \"in use 0\"", line);
}

int ec_server_stop(ec_server *s) {
  size_t slices = 0, slice_size = 0;
  char line[256];
  int r, failed = ec_check_failed;

  ec_server_check_quiet(s, "before it was stopped");
  s->stop_sent = 1;
  r = uv_process_kill(&s->proc, SIGTERM);
  if (r != 0) {
    ec_fail("uv_process_kill(SIGTERM): %s", uv_strerror(r));
    return 0;
  }
  if (!ec_run_until(server_exited, s, 5000)) {
    ec_fail("%s did not exit within %llu ms of SIGTERM", s->name,
            (unsigned long long)ec_scaled(5000));
    return 0;
  }
  if (!graceful_stop)
    return 0;
  if (s->term_signal != 0 || s->exit_status != 0)
    ec_fail("%s exited with status %lld, signal %d, not status 0", s->name,
            (long long)s->exit_status, s->term_signal);
  if (s->out_len <= s->seen || s->out[s->out_len - 1] != '\n')
    ec_fail("the statistics are missing or do not end with a line end");
  /* A plain server's own statistics are for the caller to check. */
  if (!s->plain) {
    if (!ec_server_find_line(s, "slices:", line, sizeof(line)) ||
        sscanf(line, "slices: %zu of %zu bytes", &slices, &slice_size) != 2 ||
        slices != EC_SLICES || slice_size != EC_SLICE_SIZE)
      ec_fail("the statistics do not say %d slices of %d bytes as asked with "
              "--slices and --slice-size",
              EC_SLICES, EC_SLICE_SIZE);
    check_in_use(s, "slices:");
    check_in_use(s, "ops:");
  }
  if (ec_check_failed && !failed)
    ec_note("%s printed:\n%s", s->name, s->out);
  return s->exit_status == 0 && s->term_signal == 0;
}

void ec_server_close(ec_server *s) {
  if (s->spawned && !s->exited) {
    s->stop_sent = 1;
    uv_process_kill(&s->proc, SIGKILL);
    ec_run_for(server_exited, s, 5000);
  }
  if (s->proc_open)
    uv_close((uv_handle_t *)&s->proc, NULL);
  if (s->out_open)
    uv_close((uv_handle_t *)&s->out_pipe, NULL);
}
