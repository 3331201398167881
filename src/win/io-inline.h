/* The I/O calls of the per-message path. On Windows they go through
 * libuv and Winsock, out of line, in src/win. Included at the end of
 * internal.h. */
#ifndef ASOCK_IO_INLINE_H
#define ASOCK_IO_INLINE_H

long asock__try_recv(asock_socket *sock, void *buf, size_t len);
long asock__io_try_write(asock_socket *sock, const uv_buf_t *iov,
                         unsigned int n);

static inline long asock__io_try_send(asock_socket *sock, const void *buf,
                                      size_t len) {
  uv_buf_t one;
  one.base = (char *)buf;
  one.len = (ULONG)len;
  return asock__io_try_write(sock, &one, 1);
}

#endif /* ASOCK_IO_INLINE_H */
