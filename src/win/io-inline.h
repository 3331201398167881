/* The two I/O calls of the per-message path. On Windows they go through
 * libuv and Winsock, out of line, in src/win. Included at the end of
 * internal.h. */
#ifndef ASOCK_IO_INLINE_H
#define ASOCK_IO_INLINE_H

long asock__try_recv(asock_socket *sock, void *buf, size_t len);
long asock__io_try_write(asock_socket *sock, const uv_buf_t *iov,
                         unsigned int n);

#endif /* ASOCK_IO_INLINE_H */
