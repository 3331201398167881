#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/signalfd.h>
#endif

#include "bench-server.h"
#include "bench-util.h"

static void usage(FILE *out, unsigned int extra) {
  fprintf(out,
          "usage: %s [--host ADDR] [--port N]%s%s\n"
          "  An echo server for benchmarks. Prints `listening on ADDR:PORT` "
          "once it\n"
          "  accepts, exits 0 on SIGINT or SIGTERM and then prints\n"
          "  `allocations: N` (heap allocations while serving) to stderr.\n"
          "  --host ADDR       address to listen on (127.0.0.1)\n"
          "  --port N          port, 0 for an ephemeral one (0)\n",
          bench_progname,
          extra & BENCH_OPT_BUF_SIZE ? " [--buf-size BYTES]" : "",
          extra & BENCH_OPT_BUFFERS ? " [--buffers N]" : "");
  if (extra & BENCH_OPT_BUF_SIZE)
    fprintf(out, "  --buf-size BYTES  size of each receive buffer\n");
  if (extra & BENCH_OPT_BUFFERS)
    fprintf(out, "  --buffers N       receive buffers, a power of two\n");
}

void bench_server_parse(int argc, char **argv, unsigned int extra,
                        bench_server_options *o) {
  const char *v;
  int i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout, extra);
      exit(0);
    } else if (bench_opt_value(argc, argv, &i, "--host", &v)) {
      o->host = v;
    } else if (bench_opt_value(argc, argv, &i, "--port", &v)) {
      o->port = (unsigned int)bench_parse_u64("--port", v, 0, 65535);
    } else if ((extra & BENCH_OPT_BUF_SIZE) &&
               bench_opt_value(argc, argv, &i, "--buf-size", &v)) {
      o->buf_size = (size_t)bench_parse_u64("--buf-size", v, 1, 1 << 24);
    } else if ((extra & BENCH_OPT_BUFFERS) &&
               bench_opt_value(argc, argv, &i, "--buffers", &v)) {
      o->buffers = (unsigned int)bench_parse_u64("--buffers", v, 1, 32768);
      if ((o->buffers & (o->buffers - 1)) != 0) {
        fprintf(stderr, "%s: --buffers wants a power of two\n", bench_progname);
        exit(2);
      }
    } else {
      fprintf(stderr, "%s: unknown argument '%s'\n", bench_progname, argv[i]);
      usage(stderr, extra);
      exit(2);
    }
  }
}

int bench_server_address(const bench_server_options *o,
                         struct sockaddr_storage *addr) {
  struct addrinfo hints, *res;
  char port[8];
  int err;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  snprintf(port, sizeof(port), "%u", o->port);
  err = getaddrinfo(o->host, port, &hints, &res);
  if (err != 0) {
    fprintf(stderr, "%s: cannot resolve %s: %s\n", bench_progname, o->host,
            gai_strerror(err));
    return -1;
  }
  memset(addr, 0, sizeof(*addr));
  memcpy(addr, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return 0;
}

int bench_server_listen(const bench_server_options *o, int nonblocking,
                        struct sockaddr_storage *bound) {
  socklen_t len;
  int fd, on = 1;

  if (bench_server_address(o, bound) != 0)
    return -1;
  fd = socket(bound->ss_family, SOCK_STREAM, 0);
  if (fd < 0) {
    fprintf(stderr, "%s: socket: %s\n", bench_progname, strerror(errno));
    return -1;
  }
  len = bound->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      bind(fd, (struct sockaddr *)bound, len) != 0 ||
      listen(fd, BENCH_BACKLOG) != 0 ||
      getsockname(fd, (struct sockaddr *)bound, &len) != 0) {
    fprintf(stderr, "%s: cannot listen on %s port %u: %s\n", bench_progname,
            o->host, o->port, strerror(errno));
    close(fd);
    return -1;
  }
  if (nonblocking && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    fprintf(stderr, "%s: fcntl: %s\n", bench_progname, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

void bench_server_print_listening(const struct sockaddr *addr) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);

  if (getnameinfo(addr, len, host, sizeof(host), port, sizeof(port),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    snprintf(host, sizeof(host), "?");
    snprintf(port, sizeof(port), "?");
  }
  if (addr->sa_family == AF_INET6)
    printf("listening on [%s]:%s\n", host, port);
  else
    printf("listening on %s:%s\n", host, port);
  fflush(stdout);
}

#ifdef __linux__
int bench_server_signalfd(void) {
  sigset_t mask;
  int fd;

  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  /* Blocked, the signals wait in the signalfd instead of killing us. */
  if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
    fprintf(stderr, "%s: sigprocmask: %s\n", bench_progname, strerror(errno));
    return -1;
  }
  fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0)
    fprintf(stderr, "%s: signalfd: %s\n", bench_progname, strerror(errno));
  return fd;
}
#endif
