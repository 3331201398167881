/* Windows definitions of the few platform functions the shared code calls on
 * its fast paths. */
#ifndef ASOCK_PLATFORM_H
#define ASOCK_PLATFORM_H

#include <uv.h>

/* Whether the calling thread is t. libuv's uv_thread_t is a handle on
 * Windows; its own comparison knows how to compare them. */
static inline int asock__thread_is(const uv_thread_t *t) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, t);
}

#endif /* ASOCK_PLATFORM_H */
