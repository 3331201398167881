/* Unix definitions of the few platform functions the shared code calls on
 * its fast paths, inline. */
#ifndef ASOCK_PLATFORM_H
#define ASOCK_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* A socket's handle on Unix: the OS socket itself, watched by a uv_poll_t.
 * asock makes the system calls; libuv's epoll or kqueue says when they
 * will not block. This costs less per message than libuv's stream layer
 * (no allocation callback, no generic read loop, no write queue), and the
 * poll handle is smaller than a uv_tcp_t. */
/* The width of the IPv4 multicast TTL and loop options: Linux takes an
 * int (or a byte), the BSDs and macOS a byte only. */
#if defined(__linux__)
typedef int asock__mcast4_opt;
#else
typedef unsigned char asock__mcast4_opt;
#endif

/* The value of a uv_os_sock_t that names no socket. */
#define ASOCK__NO_SOCKET (-1)

#include "watch.h"
#ifdef ASOCK_HAVE_URING
#include "uring/ring.h"
#endif

typedef struct asock__io {
#ifdef ASOCK_HAVE_URING
  /* A TCP socket of a ring loop (src/uring/, ASOCK__SF_RING) never opens
   * the poll handle, and is allocated only as far as the end of what it
   * keeps of the ring (asock__io_socket_size(); asock__io is last in
   * asock_socket). Both begin with the OS socket, which the shared Unix
   * code reads as watch.socket whichever the socket runs on. */
  union {
    asock__watch watch;
    asock__ring_io ring;
  };
#else
  asock__watch watch; /* its socket is -1 until the OS socket exists */
#endif
  /* The readiness backend's alone, beyond a ring socket's end: */
  unsigned char connecting; /* a connect waits for writability */
  int connect_error;        /* a connect that failed at once */
} asock__io;

/* Whether a socket runs on its loop's io_uring ring (src/uring/ring.h). */
#ifdef ASOCK_HAVE_URING
_Static_assert(offsetof(asock__ring_io, socket) == 0 &&
                   offsetof(asock__watch, socket) == 0,
               "a ring socket's OS socket is where the watch keeps its own");
#define ASOCK__ON_RING(sock) (((sock)->flags & ASOCK__SF_RING) != 0)
#else
#define ASOCK__ON_RING(sock) 0
#endif

/* Whether a UDP read that got every datagram it asked for may find more:
 * a readiness socket may hold more, a ring socket only what its stash
 * holds, or the socket while the ring reads none of it (src/uring/ring.h). */
#ifdef ASOCK_HAVE_URING
#define ASOCK__UDP_MAY_HOLD_MORE(sock)                                         \
  (!ASOCK__ON_RING(sock) || asock__ring_udp_more(&(sock)->io.ring))
#else
#define ASOCK__UDP_MAY_HOLD_MORE(sock) 1
#endif

/* Whether asock__io_write() takes the unsent rest of every queued send at
 * once (a list the kernel sends in one request, on the ring), not only the
 * head's: the shared code then marks each send it handed over. */
#define ASOCK__IO_GATHERS(sock) ASOCK__ON_RING(sock)

/* Makes fd the socket's, watched by its poll handle (which also makes it
 * non-blocking). On failure fd is closed. (tcp-io.c) */
struct asock_socket;
int asock__io_adopt_fd(struct asock_socket *sock, int fd);
/* Starts (on != 0) or stops watching for ASOCK__WATCH_READ or _WRITE.
 * Inside the poll callback the change waits until it returns. (tcp-io.c) */
void asock__io_want(struct asock_socket *sock, unsigned int what, int on);

/* recvmmsg() reads several datagrams per system call: UDP receives read
 * ahead into pool slices. SO_REUSEPORT balances connections between the
 * listeners of one port: a loop group gives each loop its own. Elsewhere
 * SO_REUSEPORT only shares the port (the BSDs, macOS), and the group hands
 * connections over instead. */
#if defined(__linux__)
#define ASOCK__UDP_READ_AHEAD 1
#define ASOCK__REUSEPORT_BALANCES 1
#else
#define ASOCK__UDP_READ_AHEAD 0
#define ASOCK__REUSEPORT_BALANCES 0
#endif

/* One byte per thread, whose address names the thread: asked on every
 * operation start, it costs two instructions where pthread_self() is a call
 * into libc. On ELF systems the initial-exec model keeps it off
 * __tls_get_addr() in a shared library; Mach-O has its own scheme. Defined
 * in io.c. */
#if defined(__ELF__)
#define ASOCK__TLS_MODEL __attribute__((tls_model("initial-exec")))
#else
#define ASOCK__TLS_MODEL
#endif
extern _Thread_local char asock__thread_byte ASOCK__TLS_MODEL;

/* A value that differs between threads alive at the same time. */
static inline uintptr_t asock__thread_token(void) {
  return (uintptr_t)&asock__thread_byte;
}

#endif /* ASOCK_PLATFORM_H */
