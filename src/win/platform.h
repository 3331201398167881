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

/* Whether the calling thread is t. libuv's uv_thread_t is a handle on
 * Windows; its own comparison knows how to compare them. */
static inline int asock__thread_is(const uv_thread_t *t) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, t);
}

/* A Winsock error as the asock code the application sees. */
int asock__win_error(int wsa_error);

#endif /* ASOCK_PLATFORM_H */
