/* bench-echo-epoll: an echo server on epoll written by hand, the floor under
 * any event library on Linux. Level-triggered, non-blocking sockets, one
 * buffer per connection allocated with it. A connection reads, writes the
 * bytes straight back, and if the kernel takes only part of them keeps the
 * rest and waits for EPOLLOUT with EPOLLIN off, so that it never reads more
 * than it can hold. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench-alloc.h"
#include "bench-server.h"
#include "bench-util.h"

typedef struct conn {
  struct conn *prev, *next; /* every open connection, for shutdown */
  int fd;
  uint32_t events; /* what epoll watches: EPOLLIN, or EPOLLOUT while unsent */
  size_t off, len; /* buf[off, len) is still to be sent */
  char buf[];
} conn_t;

static int epfd = -1;
static int listen_fd = -1;
static int signal_fd = -1;
static int spare_fd = -1;
static size_t buf_size = 64 * 1024;
static conn_t *conns;

/* epoll_event.data.ptr of the two descriptors that are not connections. */
static char listen_tag, signal_tag;

static void conn_close(conn_t *c) {
  /* Closing the descriptor also removes it from the epoll set. */
  close(c->fd);
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  bench_free(c);
}

static int conn_watch(conn_t *c, uint32_t events) {
  struct epoll_event ev;

  if (c->events == events)
    return 0;
  ev.events = events;
  ev.data.ptr = c;
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0)
    return -1;
  c->events = events;
  return 0;
}

/* Sends what is left, then watches for whichever event can make progress.
 * Returns -1 if the connection is gone (and freed). */
static int conn_flush(conn_t *c) {
  ssize_t n;

  while (c->off < c->len) {
    n = send(c->fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      break;
    if (n < 0) {
      conn_close(c);
      return -1;
    }
    c->off += (size_t)n;
  }
  if (conn_watch(c, c->off < c->len ? EPOLLOUT : EPOLLIN) != 0) {
    conn_close(c);
    return -1;
  }
  return 0;
}

static void conn_readable(conn_t *c) {
  ssize_t n;
  int i;

  /* A read that fills the whole buffer probably left more behind, so the
   * connection reads again (as libuv does), up to a bound that keeps the
   * other connections' turn near. A shorter read means the socket is empty,
   * and level triggering reports any later data next time. */
  for (i = 0; i < 16; i++) {
    n = recv(c->fd, c->buf, buf_size, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return;
    if (n <= 0) {
      /* EOF or reset. EPOLLIN is on only while nothing is unsent, so
       * nothing is lost by closing now. */
      conn_close(c);
      return;
    }
    c->off = 0;
    c->len = (size_t)n;
    if (conn_flush(c) != 0 || c->off < c->len || (size_t)n < buf_size)
      return;
  }
}

/* Out of descriptors, the pending connection would keep the listener readable
 * forever; closing a spare descriptor makes room to accept it and shut it at
 * once, which at least tells the peer. */
static void accept_emfile(void) {
  int fd;

  if (spare_fd < 0)
    return;
  close(spare_fd);
  fd = accept(listen_fd, NULL, NULL);
  if (fd >= 0)
    close(fd);
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void accept_all(void) {
  struct epoll_event ev;
  conn_t *c;
  int fd, on = 1;

  for (;;) {
    fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE)
        accept_emfile();
      else if (errno != EAGAIN && errno != EWOULDBLOCK)
        fprintf(stderr, "%s: accept: %s\n", bench_progname, strerror(errno));
      return;
    }
    /* Without this, Nagle's algorithm and the peer's delayed ACK would be
     * measured instead of the event loop. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    c = bench_malloc(sizeof(*c) + buf_size);
    if (c == NULL) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->events = EPOLLIN;
    c->off = c->len = 0;
    ev.events = EPOLLIN;
    ev.data.ptr = c;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      bench_free(c);
      continue;
    }
    c->prev = NULL;
    c->next = conns;
    if (conns != NULL)
      conns->prev = c;
    conns = c;
  }
}

static int add_watch(int fd, void *tag) {
  struct epoll_event ev;

  ev.events = EPOLLIN;
  ev.data.ptr = tag;
  return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Returns 0 once a signal asks it to stop, -1 if epoll fails. */
static int serve(void) {
  struct epoll_event events[256];
  struct signalfd_siginfo si;
  conn_t *c;
  int i, n;

  for (;;) {
    n = epoll_wait(epfd, events, 256, -1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      fprintf(stderr, "%s: epoll_wait: %s\n", bench_progname, strerror(errno));
      return -1;
    }
    for (i = 0; i < n; i++) {
      if (events[i].data.ptr == &signal_tag) {
        if (read(signal_fd, &si, sizeof(si)) == sizeof(si))
          return 0;
      } else if (events[i].data.ptr == &listen_tag) {
        accept_all();
      } else {
        /* Errors and hang-ups show up as failures of the next recv or send,
         * whichever the connection is waiting for. Each connection appears
         * at most once per batch, so freeing it here is safe. */
        c = events[i].data.ptr;
        if (c->events == EPOLLIN)
          conn_readable(c);
        else
          conn_flush(c);
      }
    }
  }
}

int main(int argc, char **argv) {
  bench_server_options opts = {"127.0.0.1", 0, 64 * 1024, 0};
  struct sockaddr_storage bound;
  uint64_t limit;
  int status = 1;

  bench_progname = "bench-echo-epoll";
  bench_server_parse(argc, argv, BENCH_OPT_BUF_SIZE, &opts);
  buf_size = opts.buf_size;
  bench_raise_fd_limit(0, &limit);

  signal_fd = bench_server_signalfd();
  if (signal_fd < 0)
    goto done;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    fprintf(stderr, "%s: epoll_create1: %s\n", bench_progname, strerror(errno));
    goto done;
  }
  listen_fd = bench_server_listen(&opts, 1, &bound);
  if (listen_fd < 0)
    goto done;
  if (add_watch(listen_fd, &listen_tag) != 0 ||
      add_watch(signal_fd, &signal_tag) != 0) {
    fprintf(stderr, "%s: epoll_ctl: %s\n", bench_progname, strerror(errno));
    goto done;
  }
  spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  bench_server_print_listening((struct sockaddr *)&bound);
  bench_alloc_start();

  status = serve() == 0 ? 0 : 1;

done:
  while (conns != NULL)
    conn_close(conns);
  if (spare_fd >= 0)
    close(spare_fd);
  if (listen_fd >= 0)
    close(listen_fd);
  if (epfd >= 0)
    close(epfd);
  if (signal_fd >= 0)
    close(signal_fd);
  if (status == 0)
    fprintf(stderr, "allocations: %llu\n", bench_alloc_count());
  return status;
}
