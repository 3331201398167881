/* Windows definitions of the few platform functions the shared code calls on
 * its fast paths. */
#ifndef ASOCK_PLATFORM_H
#define ASOCK_PLATFORM_H

#include <stdint.h>

#include <uv.h>

/* A socket's handle on Windows: libuv's TCP handle, on IOCP. libuv's
 * zero-byte reads are how an idle connection waits without a buffer, and its
 * AcceptEx requests stay posted, so connections arrive without accept ops. */
typedef struct asock__io {
  uv_tcp_t tcp;           /* first, so that a handle pointer is the socket */
  uint32_t pending_conns; /* connections libuv has for uv_accept() */
} asock__io;

/* A value that differs between threads alive at the same time: the
 * thread's id, which Windows reads from the thread's own block. */
static inline uintptr_t asock__thread_token(void) {
  return (uintptr_t)GetCurrentThreadId();
}

/* A Winsock error as the asock code the application sees. */
int asock__win_error(int wsa_error);

#endif /* ASOCK_PLATFORM_H */
