/* Fault injection. Built with the CMake option ASOCK_FAULT_INJECTION, every
 * call asock makes to something outside itself that can fail (the
 * allocator, the region mapping, the system calls of src/unix/ and the
 * libuv calls below) first asks asock__fault() whether to fail, so that a
 * test can make the k-th call of any one of them fail with an error of its
 * choice and check that asock copes (test/test-faults.c). The failure looks
 * to the caller exactly like the real one: NULL from the allocator, -1 with
 * errno set from a system call, a UV_E* code from libuv.
 *
 * Without the option asock__fault() is a constant 0: every check, and the
 * wrappers around the calls, compile to the bare call. Windows has no
 * injection points of its own (src/win/ calls the OS directly). */
#ifndef ASOCK_FAULT_H
#define ASOCK_FAULT_H

#include <stdint.h>

#include <uv.h>

/* The injection points: one per kind of call, named after it. */
#define ASOCK__FAULT_POINTS(XX)                                                \
  XX(ALLOC, "alloc")   /* asock__malloc, calloc, realloc */                    \
  XX(REGION, "region") /* the pool region's mmap, mprotect */                  \
  XX(SOCKET, "socket")                                                         \
  XX(BIND, "bind")                                                             \
  XX(LISTEN, "listen")                                                         \
  XX(ACCEPT, "accept") /* accept4, or accept */                                \
  XX(CONNECT, "connect")                                                       \
  XX(RECV, "recv")                                                             \
  XX(RECVFROM, "recvfrom")                                                     \
  XX(RECVMSG, "recvmsg")                                                       \
  XX(RECVMMSG, "recvmmsg")                                                     \
  XX(SEND, "send")                                                             \
  XX(SENDTO, "sendto")                                                         \
  XX(SENDMSG, "sendmsg")                                                       \
  XX(SHUTDOWN, "shutdown")                                                     \
  XX(CLOSE, "close")                                                           \
  XX(SETSOCKOPT, "setsockopt")                                                 \
  XX(GETSOCKOPT, "getsockopt")                                                 \
  XX(GETSOCKNAME, "getsockname")                                               \
  XX(GETPEERNAME, "getpeername")                                               \
  XX(SENDFILE, "sendfile")                                                     \
  XX(POLL_INIT, "uv_poll_init_socket")                                         \
  XX(POLL_START, "uv_poll_start")                                              \
  XX(TIMER_START, "uv_timer_start")                                            \
  XX(IDLE_START, "uv_idle_start")                                              \
  XX(ASYNC_INIT, "uv_async_init")                                              \
  XX(ASYNC_SEND, "uv_async_send")                                              \
  XX(GETADDRINFO, "uv_getaddrinfo")                                            \
  XX(FS_READ, "uv_fs_read")                                                    \
  XX(LOOP_INIT, "uv_loop_init")                                                \
  XX(THREAD_CREATE, "uv_thread_create")                                        \
  XX(MUTEX_INIT, "uv_mutex_init")                                              \
  XX(COND_INIT, "uv_cond_init")                                                \
  XX(URING_INIT, "io_uring_queue_init")                                        \
  XX(URING_PROBE, "io_uring_get_probe")                                        \
  XX(URING_REGISTER, "io_uring_register_buf_ring")

typedef enum asock__fault_point {
#define ASOCK__FAULT_ENUM(name, text) ASOCK__FAULT_##name,
  ASOCK__FAULT_POINTS(ASOCK__FAULT_ENUM)
#undef ASOCK__FAULT_ENUM
      ASOCK__FAULT_COUNT
} asock__fault_point;

#ifdef ASOCK_FAULT_INJECTION

/* Counts a call of point p: the error to fail it with (a UV_E* code), or 0
 * to let it run. Any thread. (src/fault.c) */
int asock__fault(asock__fault_point p);

/* For the tests. Resets every count and disarms every point. */
void asock__fault_reset(void);
/* Makes the k-th call (1-based, counted from the last reset) of point p fail
 * with err, a UV_E* code; k 0 disarms it. */
void asock__fault_arm(asock__fault_point p, uint64_t k, int err);
/* The calls of point p since the last reset. */
uint64_t asock__fault_calls(asock__fault_point p);
/* 1 once an armed call of p has been failed. */
int asock__fault_fired(asock__fault_point p);
/* The point's name, as in the table above. */
const char *asock__fault_name(asock__fault_point p);

#else

static inline int asock__fault(asock__fault_point p) {
  (void)p;
  return 0;
}

#endif

/* The libuv calls that asock's shared code makes and that report failure,
 * each behind its point. */

static inline int asock__uv_loop_init(uv_loop_t *loop) {
  int err = asock__fault(ASOCK__FAULT_LOOP_INIT);
  return err != 0 ? err : uv_loop_init(loop);
}

static inline int asock__uv_async_init(uv_loop_t *loop, uv_async_t *async,
                                       uv_async_cb cb) {
  int err = asock__fault(ASOCK__FAULT_ASYNC_INIT);
  return err != 0 ? err : uv_async_init(loop, async, cb);
}

static inline int asock__uv_async_send(uv_async_t *async) {
  int err = asock__fault(ASOCK__FAULT_ASYNC_SEND);
  return err != 0 ? err : uv_async_send(async);
}

static inline int asock__uv_idle_start(uv_idle_t *idle, uv_idle_cb cb) {
  int err = asock__fault(ASOCK__FAULT_IDLE_START);
  return err != 0 ? err : uv_idle_start(idle, cb);
}

static inline int asock__uv_timer_start(uv_timer_t *timer, uv_timer_cb cb,
                                        uint64_t timeout, uint64_t repeat) {
  int err = asock__fault(ASOCK__FAULT_TIMER_START);
  return err != 0 ? err : uv_timer_start(timer, cb, timeout, repeat);
}

static inline int asock__uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *poll,
                                             uv_os_sock_t sock) {
  int err = asock__fault(ASOCK__FAULT_POLL_INIT);
  return err != 0 ? err : uv_poll_init_socket(loop, poll, sock);
}

static inline int asock__uv_poll_start(uv_poll_t *poll, int events,
                                       uv_poll_cb cb) {
  int err = asock__fault(ASOCK__FAULT_POLL_START);
  return err != 0 ? err : uv_poll_start(poll, events, cb);
}

static inline int asock__uv_getaddrinfo(uv_loop_t *loop, uv_getaddrinfo_t *req,
                                        uv_getaddrinfo_cb cb, const char *node,
                                        const char *service,
                                        const struct addrinfo *hints) {
  int err = asock__fault(ASOCK__FAULT_GETADDRINFO);
  return err != 0 ? err : uv_getaddrinfo(loop, req, cb, node, service, hints);
}

static inline int asock__uv_fs_read(uv_loop_t *loop, uv_fs_t *req, uv_file file,
                                    const uv_buf_t bufs[], unsigned int nbufs,
                                    int64_t offset, uv_fs_cb cb) {
  int err = asock__fault(ASOCK__FAULT_FS_READ);
  return err != 0 ? err : uv_fs_read(loop, req, file, bufs, nbufs, offset, cb);
}

static inline int asock__uv_thread_create(uv_thread_t *tid, uv_thread_cb entry,
                                          void *arg) {
  int err = asock__fault(ASOCK__FAULT_THREAD_CREATE);
  return err != 0 ? err : uv_thread_create(tid, entry, arg);
}

static inline int asock__uv_mutex_init(uv_mutex_t *mutex) {
  int err = asock__fault(ASOCK__FAULT_MUTEX_INIT);
  return err != 0 ? err : uv_mutex_init(mutex);
}

static inline int asock__uv_cond_init(uv_cond_t *cond) {
  int err = asock__fault(ASOCK__FAULT_COND_INIT);
  return err != 0 ? err : uv_cond_init(cond);
}

#endif /* ASOCK_FAULT_H */
