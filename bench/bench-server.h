/* What the echo-server baselines share (POSIX): their command line, the
 * listening socket, the `listening on` line and the shutdown signals. */
#ifndef ASOCK_BENCH_SERVER_H
#define ASOCK_BENCH_SERVER_H

#include <stddef.h>
#include <sys/socket.h>

/* The listen backlog; the kernel caps it at net.core.somaxconn. A large one
 * matters here: asock-bench opens thousands of connections at a time. */
#define BENCH_BACKLOG 4096

/* Options a server accepts besides --host and --port. */
enum {
  BENCH_OPT_BUF_SIZE = 1, /* --buf-size BYTES */
  BENCH_OPT_BUFFERS = 2   /* --buffers N */
};

typedef struct bench_server_options {
  const char *host;
  unsigned int port;
  size_t buf_size;
  unsigned int buffers;
} bench_server_options;

/* Parses argv into *o, which holds the defaults on entry. `extra` is a mask
 * of BENCH_OPT_* saying which options besides --host and --port this server
 * takes. Prints usage and exits on --help (0) and on bad input (2). */
void bench_server_parse(int argc, char **argv, unsigned int extra,
                        bench_server_options *o);

/* Resolves o->host and o->port (numeric or from the hosts file) into *addr.
 * Returns 0, or -1 after printing why not. */
int bench_server_address(const bench_server_options *o,
                         struct sockaddr_storage *addr);

/* Opens, binds and listens on a TCP socket for o, non-blocking if asked.
 * Stores the bound address (with the real port) in *bound. Returns the
 * descriptor, or -1 after printing why not. */
int bench_server_listen(const bench_server_options *o, int nonblocking,
                        struct sockaddr_storage *bound);

/* Prints `listening on ADDR:PORT` (IPv6 as [ADDR]:PORT) and flushes stdout. */
void bench_server_print_listening(const struct sockaddr *addr);

#ifdef __linux__
/* Blocks SIGINT and SIGTERM and returns a non-blocking signalfd that reads
 * them, or -1 after printing why not. */
int bench_server_signalfd(void);
#endif

#endif
