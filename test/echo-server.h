/* The server processes asock-echo-check runs: starting one, reading
 * what it prints, its listening line, asking it for its statistics with
 * SIGUSR1, and stopping it with SIGTERM. */
#ifndef ASOCK_TEST_ECHO_SERVER_H
#define ASOCK_TEST_ECHO_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* The pool every asock-echo is given: 4 MiB, so that a server that
 * buffered what a slow reader cannot take would show in its RSS beyond the
 * pool, and slices small enough that a datagram can be longer than one. */
#define EC_SLICES 256
#define EC_SLICE_SIZE 16384

/* A number macro as a string literal. */
#define EC_STRING(x) #x
#define EC_DECIMAL(x) EC_STRING(x)

/* One server process (asock-echo, or another example with `plain` set)
 * and what it printed. */
typedef struct ec_server {
  uv_process_t proc;
  uv_pipe_t out_pipe;
  const char *name; /* for messages: "asock-echo", "asock-echo --udp" */
  /* Set before ec_server_start() for a server without asock-echo's pool
   * options and pool statistics (asock-workers). */
  int plain;
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
  /* What the checks have read of out: the listening line, then each report
   * asked for with ec_server_report(). */
  size_t seen;
  struct sockaddr_storage addr; /* where it listens, once the line came */
} ec_server;

/* The asock-echo executable under test. */
extern const char *ec_echo_path;

/* One check of asock-echo-check: its name, what it runs, and the server it
 * talks to (NULL if none yet), without which it cannot run. */
typedef struct ec_check {
  const char *name;
  void (*run)(void);
  const ec_server *needs;
} ec_check;

/* Starts `path --host HOST --port 0 --slices EC_SLICES --slice-size
 * EC_SLICE_SIZE` (without the last four when s->plain is set) followed by
 * `extra` (NULL-terminated, may be NULL), waits
 * for its first line and fails the running check unless that line is
 * exactly "listening on HOST:PORT" with a real port, and the server then
 * says nothing more for a moment. s->addr is then HOST:PORT. */
void ec_server_start(ec_server *s, const char *name, const char *path,
                     const char *host, const char *const *extra);
/* 1 while the server runs and has printed its listening line. */
int ec_server_serving(const ec_server *s);
/* Fails the running check if the server printed anything beyond its
 * listening line and the reports read so far; `when` says when, in the
 * message. */
void ec_server_check_quiet(const ec_server *s, const char *when);
/* Fails the running check, once, if the server exited unasked. */
void ec_server_report_death(ec_server *s);
/* The server's resident set in KiB, or -1 where it cannot be read (only
 * Linux has /proc/PID/status). */
long ec_server_rss_kib(const ec_server *s);
/* Copies the first line of text that starts with `start` into buf,
 * without its end of line. \return 1 if there is one. */
int ec_find_line(const char *text, const char *start, char *buf, size_t size);
/* The same of what the server printed after the listening line and the
 * reports read so far. */
int ec_server_find_line(const ec_server *s, const char *start, char *buf,
                        size_t size);
/* Sends SIGUSR1, on which an example prints its statistics and serves on,
 * and waits until the server printed them whole, up to its "ops:" line,
 * after what was read so far: copies them into buf and counts them as
 * read. Fails the running check if it printed anything before them, if
 * they do not come within 10 s (stretched) or do not fit. \return 1 if
 * they came; 0 on failure, or where there is no SIGUSR1 (Windows), which
 * is then noted. */
int ec_server_report(ec_server *s, char *buf, size_t size);
/* Sends SIGTERM and fails the running check unless the server exits 0
 * within 5 s, having printed its statistics with EC_SLICES slices of
 * EC_SLICE_SIZE bytes and no slice and no op still in use (a plain server:
 * having printed something after its listening line). \return 1 if it
 * exited gracefully and its statistics may be read. */
int ec_server_stop(ec_server *s);
/* Kills the server if it still runs and closes its handles. */
void ec_server_close(ec_server *s);

#endif /* ASOCK_TEST_ECHO_SERVER_H */
