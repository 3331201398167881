/* Unix definitions of the few platform functions the shared code calls on
 * its fast paths, inline. */
#ifndef ASOCK_PLATFORM_H
#define ASOCK_PLATFORM_H

#include <pthread.h>

#include <uv.h>

/* Whether the calling thread is t: asked on every operation start, so it
 * skips libuv's two out-of-line wrappers. */
static inline int asock__thread_is(const uv_thread_t *t) {
  return pthread_equal(pthread_self(), *t);
}

#endif /* ASOCK_PLATFORM_H */
