/* The seam between the shared code and a backend: everything a backend
 * implements, and everything it may call or read of the shared code, is in
 * this file. A backend is one folder (src/unix/, src/win/) with its
 * platform.h (the socket's handle, asock__io, and ASOCK__NO_SOCKET), its
 * io-inline.h (the two calls of the per-message path) and the functions
 * below, chosen by CMake (ASOCK_PLATFORM_DIR).
 *
 * Two models meet here:
 *   - readiness (src/unix/: epoll, kqueue through libuv's poll handle):
 *     the backend reports that a socket is readable or writable
 *     (asock__recv_ready(), asock__io_writable(), asock__on_connection())
 *     and the shared code makes the non-blocking calls itself through the
 *     backend's try-functions (asock__try_recv(), asock__io_try_write());
 *     asock__io_write() only waits for writability.
 *   - completion (src/win/: IOCP through libuv's TCP handle): the backend
 *     is handed buffers and reports results (asock__recv_buffer() then
 *     asock__recv_result(); asock__io_write() writes, and
 *     asock__send_written() reports the bytes).
 * A UDP socket is run the readiness way on both (src/watch.c).
 */
#ifndef ASOCK_BACKEND_H
#define ASOCK_BACKEND_H

#include "tcp.h"
#include "udp.h"

/* ---- platform (src/unix/io.c, src/win/io.c) ---------------------------- */

/* One-time process setup: on Unix, SIGPIPE is ignored unless the
 * application installed a handler, so that a write to a reset connection is
 * an error code instead of the process's death. */
void asock__platform_init(void);

/* ---- down: what a backend implements ------------------------------------ */

/* They run on the loop thread; what they report comes back through the
 * functions of "up" below, from libuv callbacks, never inside the call
 * that started the work (except where said). Errors are asock codes. */

/* The bytes a TCP socket of loop is allocated: sizeof(asock_socket), or
 * less where the loop's sockets need less of asock__io (the last member)
 * than its whole. */
size_t asock__io_socket_size(const asock_loop *loop);
/* Readies the handle storage of a new socket. */
int asock__io_init(asock_socket *sock);
/* Makes the OS socket for addr's family, sets the options in opts (NULL:
 * none) on it, and binds it; on failure the socket is left as it was.
 * flags are ASOCK_BIND_* and ASOCK__LISTEN_*. */
int asock__io_bind(asock_socket *sock, const struct sockaddr *addr,
                   unsigned int flags, const asock__tcp_options *opts);
/* Listens on the socket a bind made; on failure it stays bound. */
int asock__io_listen(asock_socket *sock, int backlog);
/* Has the kernel hold connections of a listener until they send something,
 * for up to seconds, where it can (Linux); 0 elsewhere, doing nothing. */
int asock__io_defer_accept(asock_socket *listener, unsigned int seconds);
/* Takes one waiting connection off a listener: 0 with *conn set (an OS
 * socket on Unix), ASOCK_EAGAIN when none waits, or an error. */
int asock__io_accept(asock_socket *listener, uintptr_t *conn);
/* Makes conn, from asock__io_accept(), the handle of client. */
int asock__io_adopt(asock_socket *listener, asock_socket *client,
                    uintptr_t conn);
/* Drops a connection that could not be adopted. */
void asock__io_drop(uintptr_t conn);
/* Accept ops wait (1) or none does (0): Unix watches the listening socket
 * only while they wait, since libuv's epoll is level-triggered. */
void asock__io_accept_wanted(asock_socket *listener, int wanted);
/* Starts connecting to addr, from the OS socket a bind made, or one made
 * now with the options in opts; asock__connect_done() reports the result. */
int asock__io_connect(asock_socket *sock, asock_op *op,
                      const struct sockaddr *addr,
                      const asock__tcp_options *opts);
/* Starts or stops the flow of asock__recv_buffer()/asock__recv_result(). */
int asock__io_read_start(asock_socket *sock);
void asock__io_read_stop(asock_socket *sock);
/* Hands the unsent rest of the head send over; asock__send_written()
 * reports. On Windows libuv writes iov (op->write_bytes is set to its
 * size); on Unix nothing is written, and the report only says the socket is
 * writable again (op->write_bytes is 0), so that the queue is retried. */
int asock__io_write(asock_socket *sock, asock_op *op, const uv_buf_t *iov,
                    unsigned int n, size_t bytes);
/* Shuts the sending side down once what was written is out;
 * asock__shutdown_done() reports, possibly inside this call. */
int asock__io_shutdown(asock_socket *sock, asock_op *op);
/* Sends up to len bytes of `file` from offset in the kernel (sendfile()):
 * the bytes sent, 0 at the file's end, ASOCK_EAGAIN when the socket is
 * full, ASOCK_ENOTSUP where the platform or the file cannot (the bytes are
 * read and sent then), or the error. */
long asock__io_sendfile(asock_socket *sock, uv_file file, int64_t offset,
                        size_t len);
/* Closes the handle (with a reset when abortive). A write or connect still
 * handed over reports ASOCK_ECANCELED, then asock__socket_closed() runs,
 * from a libuv callback; at once if the socket never had an OS socket. */
void asock__io_close(asock_socket *sock, int abortive);
/* Options. The backend names the OS socket of any socket, and makes the
 * option calls on one (src/unix/tcp-opts.c, src/win/tcp-opts.c); the
 * shared code (src/tcp-opts.c) applies them to a socket, or to one just
 * made with the options kept from before. */
/* The OS socket, ASOCK__NO_SOCKET when the socket has none. */
uv_os_sock_t asock__io_os(const asock_socket *sock);
/* setsockopt() of an int. */
int asock__os_set_int(uv_os_sock_t s, int level, int name, int value);
/* Seconds as the int the options take. */
static inline int asock__option_seconds(unsigned int s) {
  return s > 0x7fffffffu ? 0x7fffffff : (int)s;
}
int asock__os_nodelay(uv_os_sock_t s, int enable);
int asock__os_keepalive(uv_os_sock_t s, int enable, unsigned int delay_s);
/* The keepalive probes' interval and count (0 leaves one as it is):
 * ASOCK_ENOTSUP where the platform has no such options. */
int asock__os_keepalive_probes(uv_os_sock_t s, unsigned int interval_s,
                               unsigned int count);
/* SO_SNDBUF (send != 0) or SO_RCVBUF: sets *value when it is positive, then
 * reads it back into *value. */
int asock__os_buffer_size(uv_os_sock_t s, int send, int *value);
/* setsockopt (set != 0) or getsockopt; *len is the value's length in, and
 * for a get also out. */
int asock__os_sockopt(uv_os_sock_t s, int set, int level, int name, void *value,
                      size_t *len);
/* getpeername (peer != 0) or getsockname. */
int asock__os_address(uv_os_sock_t s, int peer, struct sockaddr *addr,
                      int *len);
/* Sets the options the application set before the socket had an OS socket
 * on s, one just made: 0 or the first error. (src/tcp-opts.c) */
int asock__apply_options(uv_os_sock_t s, const asock__tcp_options *opts);
/* The same calls on a socket's OS socket: ASOCK_EBADF when it has none
 * (the shared code keeps the TCP options until it has one). */
int asock__io_nodelay(asock_socket *sock, int enable);
int asock__io_keepalive(asock_socket *sock, int enable, unsigned int delay_s);
int asock__io_keepalive_probes(asock_socket *sock, unsigned int interval_s,
                               unsigned int count);
int asock__io_buffer_size(asock_socket *sock, int send, int *value);
int asock__io_sockopt(asock_socket *sock, int set, int level, int name,
                      void *value, size_t *len);
int asock__io_address(asock_socket *sock, int peer, struct sockaddr *addr,
                      int *len);
/* The OS socket, ASOCK_ENOTCONN when there is none. */
int asock__io_fileno(const asock_socket *sock, uv_os_sock_t *out);

/* UDP. The OS socket is made by the first of bind and connect. */
/* Opens the socket for addr's family if it has none, binds it to addr.
 * flags are ASOCK_UDP_*. */
int asock__udp_io_bind(asock_socket *sock, const struct sockaddr *addr,
                       unsigned int flags);
/* Sets the default peer (addr) or removes it (NULL). */
int asock__udp_io_connect(asock_socket *sock, const struct sockaddr *addr);
/* Reads up to n datagrams without waiting, each as d[i] says: the number
 * read (>= 1), ASOCK_EAGAIN when none is there, or an error (for example
 * ASOCK_ECONNREFUSED after an ICMP port unreachable). */
int asock__udp_io_recv(asock_socket *sock, asock__dgram *d, unsigned int n);
/* Asks the kernel for every datagram's packet information from now on. */
int asock__udp_io_pktinfo(asock_socket *sock);
/* Sends one datagram of the n buffers to `to` (NULL: the default peer)
 * without waiting: the bytes sent, ASOCK_EAGAIN, or an error. */
long asock__udp_io_send(asock_socket *sock, const uv_buf_t *iov, unsigned int n,
                        const struct sockaddr *to);
/* The same for one buffer, the usual case. */
long asock__udp_io_send1(asock_socket *sock, const void *buf, size_t len,
                         const struct sockaddr *to);
/* Watches for readability (ASOCK__UDP_READ) or writability
 * (ASOCK__UDP_WRITE) while `on`; asock__udp_ready() reports. */
#define ASOCK__UDP_READ 0x1u
#define ASOCK__UDP_WRITE 0x2u
void asock__udp_io_want(asock_socket *sock, unsigned int what, int on);
/* Sets one option on the bound socket's OS socket: 0 or the error. */
int asock__udp_io_setsockopt(asock_socket *sock, int level, int name,
                             const void *value, size_t len);

/* ---- up: what a backend reads and reports ---------------------------------
 */

/* What a backend reads of the shared socket state: nothing else. */
static inline uv_loop_t *asock__socket_uv(const asock_socket *sock) {
  return sock->loop->uv;
}
static inline int asock__socket_is_udp(const asock_socket *sock) {
  return (sock->flags & ASOCK__SF_UDP) != 0;
}
static inline int asock__socket_is_listener(const asock_socket *sock) {
  return asock__socket_stage(sock) == ASOCK__STAGE_LISTENING;
}
/* Its handle is closing: nothing more is to be read. */
static inline int asock__socket_is_closing(const asock_socket *sock) {
  return asock__socket_handle(sock) != ASOCK__HANDLE_OPEN;
}
/* A readiness report's usual socket: a stream (not listening) whose
 * handle is open and reading, with a multishot receive queued, in one test
 * of the flags. */
static ASOCK__ALWAYS_INLINE int
asock__socket_reads_multishot(const asock_socket *sock) {
  return (sock->flags & ASOCK__MULTISHOT_STATE) == ASOCK__MULTISHOT_READING;
}
/* A stream (neither listening nor UDP), whatever its state. */
static ASOCK__ALWAYS_INLINE int
asock__socket_is_stream(const asock_socket *sock) {
  return (sock->flags & (ASOCK__STAGE_LISTENING | ASOCK__SF_UDP)) == 0;
}

/* What the platform reports back, on the loop thread. */
/* A readiness backend's connect waited for writability and ended with
 * status; the socket's pending connect completes. */
void asock__io_connected(asock_socket *sock, int status);
/* A readiness backend's socket is writable again: the queued sends go on. */
void asock__io_writable(asock_socket *sock);
/* The handle closed with a write still handed over: it is cancelled. */
void asock__io_write_cancelled(asock_socket *sock);
/* The handle is closed for good (or for a connect's next address). */
void asock__socket_closed(asock_socket *sock);
/* A listener has a connection to accept (status 0), or accepting failed. */
void asock__on_connection(asock_socket *listener, int status);
/* The connect the op started ended with status. */
void asock__connect_done(asock_op *op, int status);
/* The buffer the next read fills: the head receive's window, taking a slice
 * for it if it has none. base is NULL when no receive waits or no slice is
 * free; asock__recv_unbuffered() is then reported instead of a read. */
void asock__recv_buffer(asock_socket *sock, uv_buf_t *buf);
void asock__recv_unbuffered(asock_socket *sock);
/* A read into the buffer asock__recv_buffer() gave: bytes (> 0), 0 when
 * nothing was there, or ASOCK_EOF or an error. */
void asock__recv_result(asock_socket *sock, long nread, const uv_buf_t *buf);
/* Readiness platforms (Unix): the socket is readable. Reads into the head
 * receive's buffer until a read comes back short, no receive waits, or the
 * reads one report may do are used. */
void asock__recv_ready(asock_socket *sock);
/* asock__recv_ready() for a socket whose flags the caller found to be
 * ASOCK__MULTISHOT_READING under the mask ASOCK__MULTISHOT_STATE: a
 * TCP socket, not listening, whose handle is open, reading, with a
 * multishot receive queued (the usual report of a stream, tested once). */
void asock__recv_ready_multishot(asock_socket *sock);
/* The write asock__io_write() handed over finished with status. */
void asock__send_written(asock_op *op, int status);
/* The shutdown asock__io_shutdown() started finished with status. */
void asock__shutdown_done(asock_op *op, int status);

/* From io-inline.h, per platform (inline on Unix, where every message
 * makes these calls):
 *   asock__try_recv(sock, buf, len): a non-blocking receive straight from
 *     the socket: the bytes read, ASOCK_EOF at end of stream, ASOCK_EAGAIN
 *     if nothing is there, or an error;
 *   asock__io_try_write(sock, iov, n): writes what the kernel takes now,
 *     without waiting: the bytes written, ASOCK_EAGAIN when it takes none,
 *     or an error;
 *   asock__io_try_send(sock, buf, len): the same for one buffer. */
#include "io-inline.h"

#endif /* ASOCK_BACKEND_H */
