/* UDP sockets on a loop's io_uring ring: their datagrams arrive through
 * the ring, their sends stay asock's own system calls.
 *
 * While a multishot receive waits, a socket has one multishot
 * IORING_OP_RECVMSG out that selects a provided buffer per datagram: the
 * kernel writes each datagram with its header, its sender and its packet
 * information into a pool slice as it comes, and posts a completion, with
 * no system call of the socket's own. The slices wait in the socket's
 * stash, oldest first; the shared code (src/udp-recv.c) reads them through
 * asock__udp_io_recv() as it would read the socket: a receive without a
 * buffer of its own takes the slice as it is and lends the kernel its own
 * empty one (asock__ring_udp_take()), one with a buffer gets a copy and
 * the slice goes back to the kernel. Reading stops as on TCP: the
 * request is cancelled, and what it brought before stays stashed (and
 * leaves the kernel's buffer as on TCP, asock__ring_stash_keep()).
 *
 * One-shot receives wait for a poll of the ring, and the shared code reads
 * the socket itself when it is readable (recvmmsg(), several datagrams per
 * call), as on the readiness backend: with no request of the ring's
 * holding datagrams, the next receive reads what is there inside its
 * call. So do all receives where the kernel refuses a multishot receive of
 * messages (before 6.0).
 *
 * A datagram is sent at once by sendto()/sendmsg() (src/unix/udp-io.c), as
 * on the readiness backend: it nearly always fits, and the send then
 * completes inside its call, where a submission would complete it only
 * after the loop's next turn. A send that finds the socket full waits for a
 * poll of the ring. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "ring-int.h"

unsigned int asock__ring_udp_poll;

/* The room a datagram's sender and packet information take in the
 * header, before its bytes: an IPv6 address (rounded up to 8 bytes, so that
 * the packet information after it is aligned as struct cmsghdr must be),
 * and the packet information of both families (a dual-stack socket's IPv4
 * datagram may carry both). */
#define NAME_ROOM ((socklen_t)((sizeof(struct sockaddr_in6) + 7u) & ~7u))
#define CONTROL_ROOM                                                           \
  (CMSG_SPACE(sizeof(struct in6_pktinfo)) +                                    \
   CMSG_SPACE(sizeof(struct in_pktinfo)))

_Static_assert((sizeof(struct io_uring_recvmsg_out) + NAME_ROOM) % 8 == 0,
               "the packet information lies aligned in a provided buffer");

void asock__ring_udp_init(asock__ring *r) {
  memset(&r->udp_msg, 0, sizeof(r->udp_msg));
  r->udp_msg.msg_namelen = NAME_ROOM;
  r->udp_msg.msg_controllen = CONTROL_ROOM;
  r->udp_mshot = asock__ring_udp_poll == 0;
}

/* Whether a receive is to be submitted: receives wait, none is out, and
 * nothing that came before waits to be read. */
static int due(const asock_socket *sock) {
  const asock__ring_io *io = &sock->io.ring;
  return io->reading && !io->closing && !io->starved &&
         (io->out & ASOCK__RING_RECV) == 0 && io->stash == NULL &&
         io->stash_status == 0;
}

void asock__ring_udp_submit(asock_socket *sock) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  struct io_uring_sqe *sqe = asock__ring_sqe(r);
  int mshot = r->udp_mshot && (sock->flags & ASOCK__SF_MULTISHOT) != 0;

  if (sqe == NULL) {
    asock__ring_starve(sock);
    r->returned = 1; /* not a buffer it waits for: the next pass retries */
    return;
  }
  if (!asock__ring_inject(sqe, ASOCK__FAULT_RECVMSG, &io->injected_in)) {
    if (mshot) {
      /* MSG_TRUNC: the header gives a cut datagram's whole length. */
      io_uring_prep_recvmsg_multishot(sqe, asock__ring_fd(sock), &r->udp_msg,
                                      MSG_TRUNC);
      sqe->flags |= IOSQE_BUFFER_SELECT;
      sqe->buf_group = ASOCK__RING_BGID;
    } else {
      io_uring_prep_poll_add(sqe, asock__ring_fd(sock), POLLIN);
    }
  }
  io_uring_sqe_set_data64(sqe, asock__ring_tagged(sock, ASOCK__RING_TAG_RECV));
  io->out |=
      (unsigned char)(ASOCK__RING_RECV | (mshot ? ASOCK__RING_MSHOT : 0u));
}

/* What the stash holds, and an error that came after it, go to the
 * receives while they read; what a share of the shared code leaves goes
 * on from the prepare handle. */
static void deliver(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  if (!io->reading)
    return;
  asock__udp_ready(sock, 1, 0);
  if (io->reading && !io->closing && (io->stash != NULL || io->stash_status))
    asock__ring_kick(sock);
}

static void recv_done(asock_socket *sock, int res, unsigned int flags) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  int mshot = (io->out & ASOCK__RING_MSHOT) != 0;
  int buffered = asock__ring_recv_head(sock, &res, flags);

  if (buffered < 0)
    return;
  if (res == -EINVAL && mshot) {
    /* A kernel without multishot receives of messages: the ring polls, and
     * the shared code reads. */
    r->udp_mshot = 0;
  } else if (res == -ECANCELED) {
    /* Reading stopped (asock__ring_read_stop()): what the request brought
     * before waits for the next receive. */
    asock__ring_stash_keeps(sock);
  } else if (buffered) {
    r->udp_received++;
    asock__ring_stash(sock, (unsigned short)(flags >> IORING_CQE_BUFFER_SHIFT),
                      (size_t)res);
    deliver(sock);
    asock__ring_stash_keeps(sock);
  } else if (res > 0) {
    deliver(sock); /* the poll: the socket is readable */
  } else if (res == -ENOBUFS) {
    /* Every provided buffer is taken: back-pressure until one is back.
     * What the request brought before may let go of its buffer. */
    r->refusals++;
    asock__ring_stash_keeps(sock);
    asock__ring_starve(sock);
    return;
  } else if (res < 0 && res != -EINTR && res != -EAGAIN) {
    /* An error of the socket's (an ICMP port unreachable, say), after the
     * datagrams that came before it. */
    io->stash_status = asock__from_uv(res);
    deliver(sock);
  }
  if (due(sock))
    asock__ring_udp_submit(sock);
}

/* The poll for room that a send waiting for it submitted. */
static void submit_writable(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;
  struct io_uring_sqe *sqe = asock__ring_sqe(asock__ring_of(sock));

  if (sqe == NULL) {
    asock__ring_kick(sock); /* tried again before the next submission */
    return;
  }
  io_uring_prep_poll_add(sqe, asock__ring_fd(sock), POLLOUT);
  io_uring_sqe_set_data64(sqe,
                          asock__ring_tagged(sock, ASOCK__RING_TAG_WRITABLE));
  io->send_tag = ASOCK__RING_TAG_WRITABLE;
  io->out |= ASOCK__RING_SEND;
}

static void writable_done(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  io->out &= (unsigned char)~ASOCK__RING_SEND;
  if (io->closing || !io->wanted)
    return;
  asock__udp_ready(sock, 0, 1);
  if (io->wanted && !io->closing && (io->out & ASOCK__RING_SEND) == 0)
    submit_writable(sock);
}

void asock__ring_udp_complete(asock_socket *sock, unsigned int tag, int res,
                              unsigned int flags) {
  if (tag == ASOCK__RING_TAG_RECV)
    recv_done(sock, res, flags);
  else if (tag == ASOCK__RING_TAG_WRITABLE)
    writable_done(sock);
}

void asock__ring_udp_kicked(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  if (io->stash != NULL || io->stash_status != 0)
    deliver(sock);
  if (io->wanted && (io->out & ASOCK__RING_SEND) == 0)
    submit_writable(sock);
  if (due(sock))
    asock__ring_udp_submit(sock);
}

void asock__ring_udp_want(asock_socket *sock, unsigned int what, int on) {
  asock__ring_io *io = &sock->io.ring;

  if (what & ASOCK__UDP_READ) {
    if (on)
      (void)asock__ring_read_start(sock);
    else
      asock__ring_read_stop(sock);
  }
  if ((what & ASOCK__UDP_WRITE) && on && !io->wanted) {
    io->wanted = 1;
    asock__ring_hold(asock__ring_of(sock), 1);
    if ((io->out & ASOCK__RING_SEND) == 0 && !io->closing)
      submit_writable(sock);
  } else if ((what & ASOCK__UDP_WRITE) && !on && io->wanted) {
    /* A poll out stays out; its completion finds nothing to wake. */
    io->wanted = 0;
    asock__ring_hold(asock__ring_of(sock), -1);
  }
}

int asock__ring_udp_peek(asock_socket *sock, asock__ring_dgram *d) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  struct io_uring_recvmsg_out *out = NULL;

  while (io->stash != NULL) {
    out = io_uring_recvmsg_validate(io->stash, (int)io->stash_end, &r->udp_msg);
    if (out != NULL)
      break;
    asock__ring_stash_recycle(sock); /* shorter than its header: no datagram */
  }
  if (out == NULL) {
    if (io->stash_status != 0)
      return io->stash_status;
    /* With no multishot receive out, what the socket holds comes after
     * everything the ring brought: the caller reads it. */
    return (io->out & ASOCK__RING_MSHOT) != 0 ? ASOCK_EAGAIN : 0;
  }
  d->data = io_uring_recvmsg_payload(out, &r->udp_msg);
  d->len =
      io_uring_recvmsg_payload_length(out, (int)io->stash_end, &r->udp_msg);
  d->whole = out->payloadlen;
  d->truncated = (out->flags & MSG_TRUNC) != 0 || d->whole > d->len;
  d->name = io_uring_recvmsg_name(out);
  d->namelen = out->namelen < NAME_ROOM ? out->namelen : NAME_ROOM;
  d->control = (char *)(out + 1) + NAME_ROOM;
  d->controllen = out->controllen;
  return 1;
}

void *asock__ring_udp_take(asock_socket *sock, void *mine) {
  return asock__ring_stash_trade(sock, mine);
}

void asock__ring_udp_next(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  if (io->stash != NULL)
    asock__ring_stash_recycle(sock);
  else
    io->stash_status = 0;
}

unsigned long asock__ring_udp_received(const asock_loop *loop) {
  return loop->ring != NULL ? loop->ring->udp_received : 0;
}

size_t asock__ring_udp_room(const asock_loop *loop) {
  if (loop->ring == NULL)
    return 0;
  return loop->ring->buf_len - sizeof(struct io_uring_recvmsg_out) - NAME_ROOM -
         CONTROL_ROOM;
}
