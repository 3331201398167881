/* The system calls asock makes on Unix, each behind its fault injection
 * point (src/fault.h): an injected failure returns -1 with errno set, as
 * the real call would. Without ASOCK_FAULT_INJECTION each is the bare call.
 * Included by io-inline.h, and so by every file that includes internal.h. */
#ifndef ASOCK_SYS_H
#define ASOCK_SYS_H

#include <errno.h>
#include <sys/mman.h>
#include <sys/socket.h>
#ifdef __linux__
#include <sys/sendfile.h>
#endif
#include <unistd.h>

#include "fault.h"

/* 1 when the call of point p is to fail: errno is set. */
static inline int asock__sys_fault(asock__fault_point p) {
  int err = asock__fault(p);
  if (err == 0)
    return 0;
  errno = -err;
  return 1;
}

static inline int asock__sys_socket(int domain, int type, int protocol) {
  if (asock__sys_fault(ASOCK__FAULT_SOCKET))
    return -1;
  return socket(domain, type, protocol);
}

static inline int asock__sys_bind(int fd, const struct sockaddr *addr,
                                  socklen_t len) {
  if (asock__sys_fault(ASOCK__FAULT_BIND))
    return -1;
  return bind(fd, addr, len);
}

static inline int asock__sys_listen(int fd, int backlog) {
  if (asock__sys_fault(ASOCK__FAULT_LISTEN))
    return -1;
  return listen(fd, backlog);
}

#if defined(__linux__) || defined(__FreeBSD__)
static inline int asock__sys_accept4(int fd, struct sockaddr *addr,
                                     socklen_t *len, int flags) {
  if (asock__sys_fault(ASOCK__FAULT_ACCEPT))
    return -1;
  return accept4(fd, addr, len, flags);
}
#endif

static inline int asock__sys_accept(int fd, struct sockaddr *addr,
                                    socklen_t *len) {
  if (asock__sys_fault(ASOCK__FAULT_ACCEPT))
    return -1;
  return accept(fd, addr, len);
}

static inline int asock__sys_connect(int fd, const struct sockaddr *addr,
                                     socklen_t len) {
  if (asock__sys_fault(ASOCK__FAULT_CONNECT))
    return -1;
  return connect(fd, addr, len);
}

static inline ssize_t asock__sys_recv(int fd, void *buf, size_t len,
                                      int flags) {
  if (asock__sys_fault(ASOCK__FAULT_RECV))
    return -1;
  return recv(fd, buf, len, flags);
}

/* recv() without flags, for a connected stream socket: the same call, with
 * a shorter path through the C library. */
static inline ssize_t asock__sys_read(int fd, void *buf, size_t len) {
  if (asock__sys_fault(ASOCK__FAULT_RECV))
    return -1;
  return read(fd, buf, len);
}

static inline ssize_t asock__sys_recvfrom(int fd, void *buf, size_t len,
                                          int flags, struct sockaddr *from,
                                          socklen_t *from_len) {
  if (asock__sys_fault(ASOCK__FAULT_RECVFROM))
    return -1;
  return recvfrom(fd, buf, len, flags, from, from_len);
}

static inline ssize_t asock__sys_recvmsg(int fd, struct msghdr *msg,
                                         int flags) {
  if (asock__sys_fault(ASOCK__FAULT_RECVMSG))
    return -1;
  return recvmsg(fd, msg, flags);
}

#if defined(__linux__)
static inline int asock__sys_recvmmsg(int fd, struct mmsghdr *msgs,
                                      unsigned int n, int flags,
                                      struct timespec *timeout) {
  if (asock__sys_fault(ASOCK__FAULT_RECVMMSG))
    return -1;
  return recvmmsg(fd, msgs, n, flags, timeout);
}
#endif

static inline ssize_t asock__sys_send(int fd, const void *buf, size_t len,
                                      int flags) {
  if (asock__sys_fault(ASOCK__FAULT_SEND))
    return -1;
  return send(fd, buf, len, flags);
}

static inline ssize_t asock__sys_sendto(int fd, const void *buf, size_t len,
                                        int flags, const struct sockaddr *to,
                                        socklen_t to_len) {
  if (asock__sys_fault(ASOCK__FAULT_SENDTO))
    return -1;
  return sendto(fd, buf, len, flags, to, to_len);
}

static inline ssize_t asock__sys_sendmsg(int fd, const struct msghdr *msg,
                                         int flags) {
  if (asock__sys_fault(ASOCK__FAULT_SENDMSG))
    return -1;
  return sendmsg(fd, msg, flags);
}

#ifdef __linux__
static inline ssize_t asock__sys_sendfile(int out_fd, int in_fd, off_t *offset,
                                          size_t count) {
  if (asock__sys_fault(ASOCK__FAULT_SENDFILE))
    return -1;
  return sendfile(out_fd, in_fd, offset, count);
}
#endif

static inline int asock__sys_shutdown(int fd, int how) {
  if (asock__sys_fault(ASOCK__FAULT_SHUTDOWN))
    return -1;
  return shutdown(fd, how);
}

/* A close that fails has still released the descriptor (Linux, and POSIX
 * since 2024 for every error but EINTR), so an injected failure closes it
 * too: only the report differs. */
static inline int asock__sys_close(int fd) {
  int r = close(fd);
  if (asock__sys_fault(ASOCK__FAULT_CLOSE))
    return -1;
  return r;
}

static inline int asock__sys_setsockopt(int fd, int level, int name,
                                        const void *value, socklen_t len) {
  if (asock__sys_fault(ASOCK__FAULT_SETSOCKOPT))
    return -1;
  return setsockopt(fd, level, name, value, len);
}

static inline int asock__sys_getsockopt(int fd, int level, int name,
                                        void *value, socklen_t *len) {
  if (asock__sys_fault(ASOCK__FAULT_GETSOCKOPT))
    return -1;
  return getsockopt(fd, level, name, value, len);
}

static inline int asock__sys_getsockname(int fd, struct sockaddr *addr,
                                         socklen_t *len) {
  if (asock__sys_fault(ASOCK__FAULT_GETSOCKNAME))
    return -1;
  return getsockname(fd, addr, len);
}

static inline int asock__sys_getpeername(int fd, struct sockaddr *addr,
                                         socklen_t *len) {
  if (asock__sys_fault(ASOCK__FAULT_GETPEERNAME))
    return -1;
  return getpeername(fd, addr, len);
}

static inline void *asock__sys_mmap(void *addr, size_t len, int prot, int flags,
                                    int fd, off_t offset) {
  if (asock__sys_fault(ASOCK__FAULT_REGION))
    return MAP_FAILED;
  return mmap(addr, len, prot, flags, fd, offset);
}

static inline int asock__sys_mprotect(void *addr, size_t len, int prot) {
  if (asock__sys_fault(ASOCK__FAULT_REGION))
    return -1;
  return mprotect(addr, len, prot);
}

#endif /* ASOCK_SYS_H */
