/* Windows definitions of the few platform functions the shared code calls on
 * its fast paths. */
#ifndef ASOCK_PLATFORM_H
#define ASOCK_PLATFORM_H

#include <stdint.h>

#include <uv.h>

/* The value of a uv_os_sock_t that names no socket (INVALID_SOCKET, whose
 * header this one does not include). */
#define ASOCK__NO_SOCKET ((uv_os_sock_t)(~(uintptr_t)0))

#include "watch.h"

/* The keepalive probes' options of Windows 10 (1709 and later), by value
 * where the toolchain's headers lack them. */
#ifndef TCP_KEEPCNT
#define TCP_KEEPCNT 16
#endif
#ifndef TCP_KEEPINTVL
#define TCP_KEEPINTVL 17
#endif

/* The width of the IPv4 multicast TTL and loop options: a DWORD. */
typedef int asock__mcast4_opt;

/* A UDP socket's handle (udp-io.c): the OS socket watched by a uv_poll_t,
 * allocated when the socket is bound. libuv's poll handle is larger than
 * its TCP handle on Windows, so that keeping it inline would grow every
 * TCP socket for the sake of the few UDP ones. */
typedef struct asock__udp_handle asock__udp_handle;

/* A loop group's hand-off listener (handoff-io.c): a listening OS socket
 * watched by a uv_poll_t, out of line for the same reason. */
typedef struct asock__handoff asock__handoff;

/* A socket's handle on Windows. TCP: libuv's TCP handle, on IOCP. libuv's
 * zero-byte reads are how an idle connection waits without a buffer, and
 * its AcceptEx requests stay posted, so connections arrive without accept
 * ops. UDP (ASOCK__SF_UDP): asock's own Winsock calls when the poll handle
 * reports readiness, as on Unix, for what uv_udp_t does not offer: packet
 * information, a truncation flag, and sends that never wait in libuv.
 *
 * A listener whose connections a loop group hands to other loops
 * (ASOCK__LISTEN_HANDOFF) is not libuv's: uv_accept() runs on the
 * listener's loop, into a handle of that loop, and associates the
 * connection with that loop's completion port, which a SOCKET keeps for
 * good. Its TCP handle stays initialised but unopened, and its
 * handle.tcp.data, which libuv leaves to its user, points to the
 * asock__handoff that listens. */
typedef struct asock__io {
  union {
    uv_tcp_t tcp;           /* its callbacks find the socket with
                             * ASOCK__CONTAINER_OF() */
    asock__udp_handle *udp; /* NULL until the OS socket exists */
  } handle;
  uint32_t pending_conns; /* connections libuv has for uv_accept() */
} asock__io;

struct asock_socket;

/* An OS socket of asock's own watched by a uv_poll_t (poll-io.c): a UDP
 * socket's handle, a hand-off listener. */
typedef struct asock__win_poll asock__win_poll;
/* Called from the poll callback with what is ready of what is wanted. */
typedef void (*asock__win_ready_fn)(asock__win_poll *p, int readable,
                                    int writable);
struct asock__win_poll {
  asock__watch watch;        /* the close callback finds the struct that
                              * holds this one from its poll handle */
  struct asock_socket *sock; /* whose socket this is */
  asock__win_ready_fn ready;
};
/* Watches s for sock, nothing wanted yet: 0, or the error, s closed. */
int asock__win_poll_open(asock__win_poll *p, struct asock_socket *sock,
                         uv_os_sock_t s, asock__win_ready_fn ready);
/* Starts or stops wanting ASOCK__WATCH_READ or _WRITE. */
void asock__win_poll_want(asock__win_poll *p, unsigned int what, int on);
/* Closes the poll handle (closed runs when libuv is done with it) and the
 * OS socket at once. */
void asock__win_poll_close(asock__win_poll *p, uv_close_cb closed);

/* The UDP half of what tcp-io.c does for every socket (udp-io.c). */
/* Closes the poll handle and the OS socket; asock__socket_closed() follows
 * from the close callback, or at once when the socket was never bound. */
void asock__win_udp_close(struct asock_socket *sock);
/* The OS socket, INVALID_SOCKET before the bind and after the close. */
uv_os_sock_t asock__win_udp_socket(const struct asock_socket *sock);

/* The hand-off listener (handoff-io.c), for what tcp-io.c does for every
 * socket. */
/* The socket's hand-off listener, NULL for every other socket (a UDP
 * socket's handle.udp shares the bytes of handle.tcp.data). */
asock__handoff *asock__win_handoff(const struct asock_socket *sock);
/* Binds an OS socket of its own, with the semantics of the uv_tcp_t
 * listener and the application's options (opts, may be NULL); the TCP
 * handle stays unopened. */
struct asock__tcp_options;
int asock__win_handoff_bind(struct asock_socket *sock,
                            const struct sockaddr *addr, unsigned int flags,
                            const struct asock__tcp_options *opts);
/* Listens on the socket asock__win_handoff_bind() bound. */
int asock__win_handoff_listen(struct asock_socket *sock, int backlog);
/* Accepts one connection: 0 with *conn the SOCKET, associated with no
 * completion port yet, or ASOCK_EAGAIN, or an error. */
int asock__win_handoff_accept(struct asock_socket *listener, uintptr_t *conn);
/* Watches the listening socket while accept ops wait. */
void asock__win_handoff_want(struct asock_socket *listener, int wanted);
/* Closes the poll handle and the OS socket, then the TCP handle;
 * asock__socket_closed() follows from its close callback. */
void asock__win_handoff_close(struct asock_socket *sock);
/* The listening OS socket, INVALID_SOCKET after the close. */
uv_os_sock_t asock__win_handoff_socket(const struct asock_socket *sock);

/* Windows has no recvmmsg(): a UDP receive reads one datagram per call.
 * Nothing balances connections between listeners of one port: a loop group
 * hands them over. */
#define ASOCK__UDP_READ_AHEAD 0
/* A read that got every datagram it asked for may find more. */
#define ASOCK__UDP_MAY_HOLD_MORE(sock) 1
/* libuv writes the head send's rest alone (src/backend.h). */
#define ASOCK__IO_GATHERS(sock) 0
#define ASOCK__REUSEPORT_BALANCES 0

/* A value that differs between threads alive at the same time: the
 * thread's id, which Windows reads from the thread's own block. */
static inline uintptr_t asock__thread_token(void) {
  return (uintptr_t)GetCurrentThreadId();
}

/* A Winsock error as the asock code the application sees. */
int asock__win_error(int wsa_error);

#endif /* ASOCK_PLATFORM_H */
