/* TCP sockets on a loop's io_uring ring: receives, sends, accepts and
 * connects submitted to the kernel, and their completions turned into the
 * reports of the completion model (src/backend.h).
 *
 * A receive is an IORING_OP_RECV that selects a provided buffer: the
 * kernel takes a pool slice only when data arrives. While a multishot
 * receive is queued the request is multishot too, bounded by what the
 * socket's quota leaves (MSHOT_BUFS at most): it stays out across arrivals
 * until that many bytes came, and is cancelled when reading stops. Else it
 * is one-shot, and so on a kernel that refuses the bound (before 6.17).
 * The bytes go to the head receive through asock__recv_buffer(): an
 * on-demand receive's empty slice and the provided one change places
 * (nothing is copied, the slice the receive held becomes the provided
 * buffer), a receive into its own buffer gets a copy. Bytes that come while
 * no receive takes them stay in their provided buffers, the stash, oldest
 * first, until the next receive reads them. A listener's accept is a
 * multishot request while accepts want connections. A socket stays open
 * until every request it has out is back, so that a completion never
 * outlives it. */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "ring-int.h"

/* The fault point of a request about to be submitted (src/fault.h): when
 * it fires, a no-op goes in the request's place and its completion reports
 * the injected error, as a request the kernel refused at once would, so
 * that the sweep (test/test-faults.c) reaches the ring's error paths as it
 * reaches the readiness backend's system calls. 1 when it fired. */
int asock__ring_inject(struct io_uring_sqe *sqe, asock__fault_point p,
                       int16_t *slot) {
  int err = asock__fault(p);
  if (err == 0)
    return 0;
  io_uring_prep_nop(sqe);
  *slot = (int16_t)err;
  return 1;
}

/* A completion's result, or the error injected in its request's place. */
int asock__ring_result(int res, int16_t *slot) {
  if (*slot != 0) {
    res = *slot;
    *slot = 0;
  }
  return res;
}

void asock__ring_io_init(asock_socket *sock) {
  memset(&sock->io.ring, 0, sizeof(sock->io.ring));
  sock->io.ring.socket = ASOCK__NO_SOCKET;
  sock->flags |= ASOCK__SF_RING;
}

int asock__ring_adopt_fd(asock_socket *sock, int fd) {
  /* fd is non-blocking, as on the readiness backend (the calls asock still
   * makes itself, sendfile() and shutdown(), must not block the loop): on
   * Linux every socket asock makes is born so, by socket(), accept4() or
   * the ring's accepts (SOCK_NONBLOCK), which saves two fcntl() calls per
   * connection. */
  sock->io.ring.socket = fd;
  return 0;
}

/* Runs the socket from the prepare handle, before the next submission. A
 * reference keeps it while it is listed. */
void asock__ring_kick(asock_socket *sock) {
  asock__ring *r = asock__ring_of(sock);
  if (sock->io.ring.kicked)
    return;
  sock->io.ring.kicked = 1;
  asock__socket_ref(sock);
  sock->io.ring.kick_next = r->kicked;
  r->kicked = sock;
}

/* Goes last in the ring's list of starved sockets. */
static void starved_append(asock__ring *r, asock_socket *sock) {
  sock->io.ring.starved_next = NULL;
  if (r->starved_tail != NULL)
    r->starved_tail->io.ring.starved_next = sock;
  else
    r->starved = sock;
  r->starved_tail = sock;
}

/* Its receive found no provided buffer: it is submitted again once buffers
 * came back, after the sockets that found none before it. */
void asock__ring_starve(asock_socket *sock) {
  if (sock->io.ring.starved)
    return;
  sock->io.ring.starved = 1;
  asock__socket_ref(sock);
  starved_append(asock__ring_of(sock), sock);
}

/* Queues a cancel of the socket's request `tag`, whose own completion
 * comes tagged `reply`: 0 when the kernel takes no entry now. */
int asock__ring_cancel(asock_socket *sock, unsigned int tag,
                       unsigned int reply) {
  struct io_uring_sqe *sqe = asock__ring_sqe(asock__ring_of(sock));
  if (sqe == NULL)
    return 0;
  io_uring_prep_cancel64(sqe, asock__ring_tagged(sock, tag), 0);
  io_uring_sqe_set_data64(sqe, asock__ring_tagged(sock, reply));
  return 1;
}

/* ---- receiving ----------------------------------------------------------
 */

/* The most provided buffers' worth of bytes one multishot request of a
 * socket may take before it is submitted again: what one socket can hold of
 * the ring's buffers while the application does not read. */
#define MSHOT_BUFS 16u

/* The bytes a multishot request of the socket may take: what its quota
 * leaves, in buffers of the ring, at least one. */
static unsigned int mshot_bytes(const asock_socket *sock) {
  const asock__ring *r = asock__ring_of(sock);
  size_t quota = sock->loop->slice_quota;
  size_t held = asock__socket_slices(sock);
  size_t n = held < quota ? quota - held : 1;

  if (n > MSHOT_BUFS)
    n = MSHOT_BUFS;
  if (n > 0xffffffffu / r->buf_len)
    n = 0xffffffffu / r->buf_len;
  return (unsigned int)(n > 0 ? n : 1) * r->buf_len;
}

/* A receive's request. One that waits for bytes first (the socket had none
 * when it was last read: `wait` set) takes a buffer only once they came;
 * tried at once, a request takes one first, and the kernel refuses it
 * while none is free even when nothing came. */
void asock__ring_submit_recv(asock_socket *sock, int wait) {
  asock__ring *r = asock__ring_of(sock);
  struct io_uring_sqe *sqe;
  int mshot = r->mshot && (sock->flags & ASOCK__SF_MULTISHOT) != 0;

  if (asock__socket_is_udp(sock)) {
    asock__ring_udp_submit(sock);
    return;
  }
  sqe = asock__ring_sqe(r);
  if (sqe == NULL) {
    asock__ring_starve(sock);
    r->returned = 1; /* not a buffer it waits for: the next pass retries */
    return;
  }
  if (!asock__ring_inject(sqe, ASOCK__FAULT_RECV, &sock->io.ring.injected_in)) {
    if (mshot) {
      io_uring_prep_recv_multishot(sqe, asock__ring_fd(sock), NULL, 0, 0);
      /* The bound, in the field later headers call optlen. */
      sqe->file_index = mshot_bytes(sock);
    } else {
      io_uring_prep_recv(sqe, asock__ring_fd(sock), NULL, r->buf_len, 0);
    }
    if (wait)
      sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = ASOCK__RING_BGID;
  }
  io_uring_sqe_set_data64(sqe, asock__ring_tagged(sock, ASOCK__RING_TAG_RECV));
  sock->io.ring.out |=
      (unsigned char)(ASOCK__RING_RECV | (mshot ? ASOCK__RING_MSHOT : 0u));
}

int asock__ring_multishot(const asock_loop *loop) {
  return loop->ring != NULL && loop->ring->mshot;
}

unsigned long asock__ring_refusals(const asock_loop *loop) {
  return loop->ring != NULL ? loop->ring->refusals : 0;
}

int asock__ring_multishot_accepts(const asock_loop *loop) {
  return loop->ring != NULL && loop->ring->maccept;
}

/* Whether a receive is to be submitted: receives wait, none is out, and
 * nothing that came before waits to be read. */
static int recv_due(const asock_socket *sock) {
  const asock__ring_io *io = &sock->io.ring;
  return io->reading && !io->closing && !io->starved &&
         (io->out & ASOCK__RING_RECV) == 0 && io->stash == NULL &&
         io->stash_status == 0;
}

/* A provided buffer is done with: back to the kernel, erased first where
 * the pool erases what slices held. */
void asock__ring_recycle_used(asock__ring *r, unsigned short bid, void *slice,
                              size_t used) {
  if (r->loop->pool->flags & ASOCK_POOL_ZERO_ON_RELEASE)
    memset(slice, 0, used);
  asock__ring_recycle(r, bid, slice);
}

/* Bytes that came in provided buffer bid go last in the stash. */
void asock__ring_stash(asock_socket *sock, unsigned short bid, size_t len) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;

  r->stashed[bid].len = (uint32_t)len;
  /* (A kept stash, asock__ring_stash_keep(), has no request out that could add
   * to it.) */
  if (io->stash != NULL) {
    r->stashed[io->stash_last].next = bid;
    io->stash_last = bid;
    return;
  }
  io->stash = r->bufs[bid];
  io->stash_bid = bid;
  io->stash_last = bid;
  io->stash_off = 0;
  io->stash_end = (uint32_t)len;
}

/* The first stashed buffer is read (and is, or is about to be, the
 * kernel's again): the next one is first. */
static void stash_next(asock_socket *sock) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  unsigned short bid;

  if (io->stash_bid == io->stash_last) {
    io->stash = NULL;
    return;
  }
  bid = r->stashed[io->stash_bid].next;
  io->stash = r->bufs[bid];
  io->stash_bid = bid;
  io->stash_off = 0;
  io->stash_end = r->stashed[bid].len;
}

/* A kept id is free again, its slice given back (or taken by a receive). */
static void unkeep(asock__ring *r, unsigned short id) {
  r->stashed[id].next = r->keep_free;
  r->keep_free = id;
}

/* The first stashed buffer back to the kernel (or the pool), the next one
 * first. */
void asock__ring_stash_recycle(asock_socket *sock) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  unsigned short id = io->stash_bid;
  char *slice = io->stash;
  size_t end = io->stash_end;

  stash_next(sock);
  if (asock__ring_kept(r, id)) {
    unkeep(r, id);
    asock__socket_give_slice(sock, slice); /* the loop erases it, if asked */
  } else {
    asock__ring_recycle_used(r, id, slice, end);
  }
}

void *asock__ring_stash_trade(asock_socket *sock, void *mine) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  unsigned short id = io->stash_bid;
  void *slice = io->stash;

  stash_next(sock);
  if (asock__ring_kept(r, id)) {
    /* Both were charged: one charge covers the stash's slice now. */
    unkeep(r, id);
    asock__socket_give_slice(sock, mine);
  } else {
    asock__ring_recycle(r, id, mine);
  }
  return slice;
}

/* Bytes that wait for a receive that may be long in coming (no request is
 * out, so the socket has stopped reading) hold provided buffers, and
 * enough such sockets would hold them all: every other socket's receives
 * would wait for them. Once the kernel has fewer than half its buffers,
 * each stashed buffer's slice becomes a slice of the socket's own, charged
 * to it like any received slice (its quota allowing, less one slice that
 * the receive reading them may need), under a kept id in
 * the same chain, and the kernel gets a free slice of the pool in its
 * place. Nothing is copied. The kept ids are as many as the buffers: when
 * they run out, the rest stay lent. (asock__ring_stash_keeps() checks
 * when.) */
void asock__ring_stash_keep(asock_socket *sock) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;
  unsigned short *link = &io->stash_bid; /* where each id is named in turn */

  for (;;) {
    unsigned short id = *link;
    if (!asock__ring_kept(r, id)) {
      unsigned short kid = r->keep_free;
      void *fresh;
      /* The socket's quota keeps room for a receive's own slice: kept
       * slices never stop it reading them. */
      if (kid == ASOCK__RING_NO_ID ||
          asock__socket_slices(sock) + 1 >= sock->loop->slice_quota ||
          asock__socket_take_slice(sock, &fresh) != 0)
        return;
      r->keep_free = r->stashed[kid].next;
      r->bufs[kid] = r->bufs[id];
      r->stashed[kid] = r->stashed[id];
      *link = kid;
      if (io->stash_last == id)
        io->stash_last = kid;
      asock__ring_recycle(r, id, fresh);
      id = kid;
    }
    if (id == io->stash_last)
      return;
    link = &r->stashed[id].next;
  }
}

/* What the stash holds goes to the receives, for as long as they read. It
 * stays in the stash while a receive's callback runs, so that a receive
 * started there reads the next of it inside its call (asock__try_recv()),
 * never bytes the kernel has that came after. */
static void drain(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  while (io->stash != NULL && io->reading && !io->closing) {
    char *slice = io->stash;
    size_t off = io->stash_off;
    size_t end = io->stash_end;
    asock_op *op;
    uv_buf_t buf;
    size_t n;

    asock__recv_buffer(sock, &buf);
    if (buf.base == NULL) {
      /* No receive waits, or no slice is free for it. */
      asock__recv_unbuffered(sock);
      return;
    }
    op = sock->recv_head;
    if (off == 0 && (op->flags & ASOCK__OPF_ON_DEMAND) &&
        buf.base == (char *)op->mem && end <= buf.len) {
      /* The receive's own slice is empty: the two change places. */
      op->mem = asock__ring_stash_trade(sock, op->mem);
      buf.base = slice;
      asock__recv_result(sock, (long)end, &buf);
      continue;
    }
    n = end - off;
    if (n > buf.len)
      n = buf.len;
    memcpy(buf.base, slice + off, n);
    io->stash_off += (uint32_t)n;
    if (io->stash_off == io->stash_end)
      asock__ring_stash_recycle(sock);
    asock__recv_result(sock, (long)n, &buf);
  }
}

/* The end of the stream or an error, for the receives or, while none
 * waits, for the next. */
static void recv_end(asock_socket *sock, int status) {
  if (sock->io.ring.reading) {
    uv_buf_t none;
    none.base = NULL;
    none.len = 0;
    asock__recv_result(sock, status, &none);
    return;
  }
  sock->io.ring.stash_status = status;
}

static void recv_done(asock_socket *sock, int res, unsigned int flags) {
  asock__ring *r = asock__ring_of(sock);
  int mshot = (sock->io.ring.out & ASOCK__RING_MSHOT) != 0;
  int buffered = asock__ring_recv_head(sock, &res, flags);

  if (buffered < 0)
    return;
  if (res == -EINVAL && mshot) {
    /* A kernel without the bound: receives go one at a time. */
    r->mshot = 0;
  } else if (res == -ECANCELED && mshot) {
    /* Reading stopped (asock__ring_read_stop()): what the request brought
     * before waits for the next receive. */
    asock__ring_stash_keeps(sock);
  } else if (buffered) {
    asock__ring_stash(sock, (unsigned short)(flags >> IORING_CQE_BUFFER_SHIFT),
                      (size_t)res);
    drain(sock);
    asock__ring_stash_keeps(sock);
  } else if (res == 0) {
    recv_end(sock, ASOCK_EOF);
  } else if (res == -ENOBUFS) {
    /* Every provided buffer is taken: back-pressure until one is back.
     * What the request brought before may let go of its buffer. */
    r->refusals++;
    asock__ring_stash_keeps(sock);
    asock__ring_starve(sock);
    return;
  } else if (res != -EINTR && res != -EAGAIN) {
    recv_end(sock, asock__from_uv(res));
  }
  /* A buffer filled to the end leaves more waiting, likely. */
  if (recv_due(sock))
    asock__ring_submit_recv(sock,
                            !(res > 0 && (unsigned int)res >= r->buf_len));
}

int asock__ring_read_start(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  if (!io->reading) {
    io->reading = 1;
    asock__ring_hold(asock__ring_of(sock), 1);
  }
  if (io->stash != NULL || io->stash_status != 0)
    asock__ring_kick(
        sock); /* delivered from the prepare handle, never in this call */
  else if (recv_due(sock))
    asock__ring_submit_recv(sock, 1);
  return 0;
}

void asock__ring_read_stop(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  if (!io->reading)
    return;
  io->reading = 0;
  asock__ring_hold(asock__ring_of(sock), -1);
  /* A one-shot receive out stays out: what it brings is stashed. A
   * multishot one would go on taking buffers, and is cancelled (what it
   * brought before is stashed). */
  if ((io->out & ASOCK__RING_MSHOT) == 0 || io->closing)
    return;
  /* When the kernel takes no entry now, the request's bound holds it. */
  (void)asock__ring_cancel(sock, ASOCK__RING_TAG_RECV, ASOCK__RING_TAG_IGNORE);
}

long asock__ring_try_recv(asock_socket *sock, void *buf, size_t len) {
  asock__ring_io *io = &sock->io.ring;
  size_t n;

  if (io->stash == NULL)
    return io->stash_status != 0 ? io->stash_status : ASOCK_EAGAIN;
  n = io->stash_end - io->stash_off;
  if (n > len)
    n = len;
  memcpy(buf, io->stash + io->stash_off, n);
  io->stash_off += (uint32_t)n;
  if (io->stash_off == io->stash_end)
    asock__ring_stash_recycle(sock);
  return (long)n;
}

/* ---- sending -------------------------------------------------------------
 */

/* A write is a send of one buffer, or a gathered send of the list (the
 * unsent rest of every queued send, src/send.c), with MSG_WAITALL: the
 * kernel retries a socket that is full until every byte went, and reports
 * fewer only with the error that stopped it. The list is copied into the
 * ring's headers, which live until the submission. */
int asock__ring_write(asock_socket *sock, asock_op *op, const uv_buf_t *iov,
                      unsigned int n, size_t bytes) {
  asock__ring *r = asock__ring_of(sock);
  struct io_uring_sqe *sqe;
  struct msghdr *msg = NULL;

  if (bytes > 0 && n > 1 &&
      (r->msgs_used == ASOCK__RING_MSGS || ASOCK__RING_IOVS - r->iovs_used < n))
    asock__ring_submit(r); /* the headers queued so far go, and are free */
  sqe = asock__ring_sqe(r);
  if (sqe == NULL)
    return ASOCK_ENOMEM;
  if (bytes > 0 && n > 1) {
    msg = asock__ring_msg(r, n);
    if (msg == NULL)
      n = 1; /* the kernel left entries queued: the first buffer alone */
  }
  op->write_bytes = 0;
  if (asock__ring_inject(sqe,
                         msg != NULL ? ASOCK__FAULT_SENDMSG : ASOCK__FAULT_SEND,
                         &sock->io.ring.injected_out)) {
    io_uring_sqe_set_data64(sqe,
                            asock__ring_tagged(sock, ASOCK__RING_TAG_SEND));
  } else if (bytes == 0) {
    /* The file of a send of packets waits for room: sendfile() goes on
     * when the socket is writable. */
    io_uring_prep_poll_add(sqe, asock__ring_fd(sock), POLLOUT);
    io_uring_sqe_set_data64(sqe,
                            asock__ring_tagged(sock, ASOCK__RING_TAG_WRITABLE));
  } else if (msg == NULL) {
    io_uring_prep_send(sqe, asock__ring_fd(sock), iov[0].base, iov[0].len,
                       MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe,
                            asock__ring_tagged(sock, ASOCK__RING_TAG_SEND));
  } else {
    /* uv_buf_t is laid out as struct iovec on Unix. */
    memcpy(msg->msg_iov, iov, n * sizeof(*iov));
    io_uring_prep_sendmsg(sqe, asock__ring_fd(sock), msg,
                          MSG_NOSIGNAL | MSG_WAITALL);
    io_uring_sqe_set_data64(sqe,
                            asock__ring_tagged(sock, ASOCK__RING_TAG_SEND));
  }
  sock->io.ring.send_tag =
      (unsigned char)(sqe->user_data & ASOCK__RING_TAG_MASK);
  sock->io.ring.out |= ASOCK__RING_SEND;
  asock__ring_hold(r, 1);
  return 0;
}

static void send_done(asock_socket *sock, int res, unsigned int tag) {
  asock_op *op = sock->send_head;

  res = asock__ring_result(res, &sock->io.ring.injected_out);
  sock->io.ring.out &= (unsigned char)~ASOCK__RING_SEND;
  asock__ring_hold(asock__ring_of(sock), -1);
  /* A closing socket's write is cancelled once everything is back. */
  if (sock->io.ring.closing || op == NULL)
    return;
  if (res < 0) {
    asock__send_written(op, asock__from_uv(res));
    return;
  }
  op->write_bytes = tag == ASOCK__RING_TAG_SEND ? (size_t)res : 0;
  asock__send_written(op, 0);
}

/* ---- accepting and connecting ---------------------------------------------
 */

/* A listener's accept is one multishot request while its accepts want
 * connections: the kernel accepts each as it comes, and the connections no
 * accept took yet wait in the listener's queue, in order. A listener whose
 * accepts stop wanting cancels the request (from the prepare handle, so
 * that an accept started again in the callback keeps it). */
static void submit_accept(asock_socket *listener) {
  asock__ring *r = asock__ring_of(listener);
  struct io_uring_sqe *sqe = asock__ring_sqe(r);
  int mshot = r->maccept;

  if (sqe == NULL) {
    asock__ring_kick(listener); /* tried again before the next submission */
    return;
  }
  if (!asock__ring_inject(sqe, ASOCK__FAULT_ACCEPT,
                          &listener->io.ring.injected_in)) {
    if (mshot)
      io_uring_prep_multishot_accept(sqe, asock__ring_fd(listener), NULL, NULL,
                                     SOCK_CLOEXEC | SOCK_NONBLOCK);
    else
      io_uring_prep_accept(sqe, asock__ring_fd(listener), NULL, NULL,
                           SOCK_CLOEXEC | SOCK_NONBLOCK);
  }
  io_uring_sqe_set_data64(sqe,
                          asock__ring_tagged(listener, ASOCK__RING_TAG_ACCEPT));
  listener->io.ring.out |=
      (unsigned char)(ASOCK__RING_ACCEPT | (mshot ? ASOCK__RING_MACCEPT : 0u));
}

static int accept_due(const asock_socket *listener) {
  const asock__ring_io *io = &listener->io.ring;
  return io->wanted && !io->closing && io->conns_len == 0 &&
         (io->out & ASOCK__RING_ACCEPT) == 0;
}

/* The i-th connection of the listener's queue. */
static int *conns_at(asock__ring_io *io, uint32_t i) {
  if (io->conns_cap == 0)
    return &io->conn_one;
  return &io->conns[(io->conns_head + i) % io->conns_cap];
}

/* A connection the kernel accepted goes last in the listener's queue: in
 * conn_one while it is alone, in an array that grows as it must once more
 * wait. 0, or ASOCK_ENOMEM (the connection is not queued). */
static int conns_push(asock__ring_io *io, int fd) {
  uint32_t cap = io->conns_cap != 0 ? io->conns_cap : 1;
  if (io->conns_len == cap) {
    uint32_t more = cap < 8 ? 16 : cap * 2;
    int *conns = asock__calloc(more, sizeof(*conns));
    uint32_t i;
    if (conns == NULL)
      return ASOCK_ENOMEM;
    for (i = 0; i < io->conns_len; i++)
      conns[i] = *conns_at(io, i);
    asock__free(io->conns);
    io->conns = conns;
    io->conns_cap = more;
    io->conns_head = 0;
  }
  *conns_at(io, io->conns_len) = fd;
  io->conns_len++;
  return 0;
}

static int conns_pop(asock__ring_io *io) {
  int fd = *conns_at(io, 0);
  if (io->conns_cap != 0)
    io->conns_head = (io->conns_head + 1) % io->conns_cap;
  io->conns_len--;
  return fd;
}

int asock__ring_accept(asock_socket *listener, uintptr_t *conn) {
  asock__ring_io *io = &listener->io.ring;

  *conn = 0;
  if (io->conns_len == 0)
    return (io->out & ASOCK__RING_ACCEPT) ? ASOCK_EAGAIN : ASOCK__RING_PASS;
  *conn = (uintptr_t)conns_pop(io);
  if (accept_due(listener))
    submit_accept(listener);
  return 0;
}

void asock__ring_accept_wanted(asock_socket *listener, int wanted) {
  asock__ring_io *io = &listener->io.ring;

  if (wanted && !io->wanted) {
    io->wanted = 1;
    asock__ring_hold(asock__ring_of(listener), 1);
  } else if (!wanted && io->wanted) {
    io->wanted = 0;
    asock__ring_hold(asock__ring_of(listener), -1);
  }
  if (!wanted) {
    /* A one-shot accept out stays out: its connection waits in the queue.
     * A multishot one is cancelled unless an accept wants again by the
     * next submission. */
    if ((io->out & ASOCK__RING_MACCEPT) && !io->closing)
      asock__ring_kick(listener);
    return;
  }
  if (io->conns_len > 0)
    asock__ring_kick(listener);
  else if (accept_due(listener))
    submit_accept(listener);
}

static void accept_done(asock_socket *listener, int res, unsigned int flags) {
  asock__ring_io *io = &listener->io.ring;
  int mshot = (io->out & ASOCK__RING_MACCEPT) != 0;

  if ((flags & IORING_CQE_F_MORE) == 0)
    io->out &= (unsigned char)~(ASOCK__RING_ACCEPT | ASOCK__RING_MACCEPT);
  res = asock__ring_result(res, &io->injected_in);
  if (io->closing) {
    if (res >= 0)
      asock__sys_close(res);
    return;
  }
  if (res == -EINVAL && mshot) {
    /* A kernel without multishot accepts: one at a time. */
    asock__ring_of(listener)->maccept = 0;
  } else if (res == -ECANCELED && mshot) {
    /* The accepts stopped wanting (run_kicked()). */
  } else if (res >= 0) {
    int err = conns_push(io, res);
    if (err != 0)
      asock__sys_close(res); /* no room to keep it: the listener hears */
    if (io->wanted)
      asock__on_connection(listener, err);
  } else if (res != -ECONNABORTED && res != -EINTR && res != -EAGAIN &&
             io->wanted) {
    /* Out of descriptors, say: the listener hears, and pauses. */
    asock__on_connection(listener, asock__from_uv(res));
  }
  if (accept_due(listener))
    submit_accept(listener);
}

int asock__ring_connect(asock_socket *sock, const struct sockaddr *addr,
                        unsigned int len) {
  asock__ring *r = asock__ring_of(sock);
  struct io_uring_sqe *sqe = asock__ring_sqe(r);

  if (sqe == NULL)
    return ASOCK_ENOMEM;
  if (!asock__ring_inject(sqe, ASOCK__FAULT_CONNECT,
                          &sock->io.ring.injected_in))
    io_uring_prep_connect(sqe, asock__ring_fd(sock), addr, (socklen_t)len);
  io_uring_sqe_set_data64(sqe,
                          asock__ring_tagged(sock, ASOCK__RING_TAG_CONNECT));
  /* The address is the op's (op->remote), which lasts until it ends. */
  asock__ring_submit(r);
  sock->io.ring.connecting = 1;
  sock->io.ring.out |= ASOCK__RING_CONNECT;
  asock__ring_hold(r, 1);
  return 0;
}

static void connect_done(asock_socket *sock, int res) {
  res = asock__ring_result(res, &sock->io.ring.injected_in);
  sock->io.ring.out &= (unsigned char)~ASOCK__RING_CONNECT;
  asock__ring_hold(asock__ring_of(sock), -1);
  /* A closing socket's connect is cancelled once everything is back. */
  if (sock->io.ring.closing)
    return;
  sock->io.ring.connecting = 0;
  asock__io_connected(sock, res == 0 ? 0 : asock__from_uv(res));
}

/* A multishot accept nothing wants: cancelled (what it took meanwhile
 * waits in the queue). */
static void cancel_accept(asock_socket *listener) {
  /* When the kernel takes no entry now, its connections queue. */
  (void)asock__ring_cancel(listener, ASOCK__RING_TAG_ACCEPT,
                           ASOCK__RING_TAG_IGNORE);
}

/* ---- closing -------------------------------------------------------------
 */

/* Closes the OS socket, once no queued entry names it. */
static void close_fd(asock_socket *sock) {
  if (sock->io.ring.socket != ASOCK__NO_SOCKET) {
    asock__sys_close(asock__ring_fd(sock));
    sock->io.ring.socket = ASOCK__NO_SOCKET;
  }
}

/* Cancels each request the closing socket has out, by its user data (the
 * descriptor may be closed already). A cancel can miss: the request may be
 * between an attempt and its next wait, queued to run again. When every
 * cancel is back and something is still out, the socket is kicked, and
 * run_kicked() cancels again; the request waits by then. */
static void cancel_out(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;
  unsigned int tags[4];
  unsigned int n = 0, i;

  if (io->out & ASOCK__RING_RECV)
    tags[n++] = ASOCK__RING_TAG_RECV;
  if (io->out & ASOCK__RING_SEND)
    tags[n++] = io->send_tag;
  if (io->out & ASOCK__RING_ACCEPT)
    tags[n++] = ASOCK__RING_TAG_ACCEPT;
  if (io->out & ASOCK__RING_CONNECT)
    tags[n++] = ASOCK__RING_TAG_CONNECT;
  for (i = 0; i < n; i++) {
    if (!asock__ring_cancel(sock, tags[i], ASOCK__RING_TAG_CANCEL))
      break; /* the kernel takes nothing now */
    io->cancels++;
  }
  if (io->cancels == 0)
    asock__ring_starve(sock); /* tried again with the next pass's retries */
}

void asock__ring_close(asock_socket *sock, int abortive) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;

  (void)abortive; /* SO_LINGER is set already */
  asock__ring_read_stop(sock);
  asock__ring_accept_wanted(sock, 0);
  io->closing = 1;
  asock__ring_hold(r, 1);
  if (io->out == 0) {
    /* As on the readiness backend, the OS socket closes now. */
    close_fd(sock);
    asock__ring_kick(
        sock); /* ends from the prepare handle, never in this call */
    return;
  }
  /* What the socket has out is cancelled in a submission made now, with
   * every entry still queued: an entry names the socket by its descriptor,
   * which must not be closed (and its number given to another socket, by an
   * accept in the same submission) before the kernel took it. A request
   * the kernel holds keeps the file, and a listener's port bound, until it
   * ends: the cancel, and the completion work it leaves (a ring with
   * deferred work), end it inside this call. */
  cancel_out(sock);
  asock__ring_submit_now(r);
  if (io_uring_sq_ready(&r->uring) == 0)
    close_fd(sock);
  /* else the kernel left entries queued: closed with the socket's end */
}

/* Everything the socket had out is back: it closes, and what was handed
 * over hears it was cancelled, in the readiness backend's order. */
static void close_end(asock_socket *sock) {
  asock__ring *r = asock__ring_of(sock);
  asock__ring_io *io = &sock->io.ring;

  close_fd(sock);

  if (!asock__socket_is_listener(sock)) {
    while (io->stash != NULL)
      asock__ring_stash_recycle(sock);
  } else {
    while (io->conns_len > 0)
      asock__sys_close(conns_pop(io));
    asock__free(io->conns);
    io->conns = NULL;
    io->conns_cap = 0;
  }
  io->closing = 0;
  asock__ring_hold(r, -1);
  if (sock->io.ring.connecting) {
    sock->io.ring.connecting = 0;
    asock__io_connected(sock, ASOCK_ECANCELED);
  }
  asock__io_write_cancelled(sock);
  asock__socket_closed(sock);
}

/* ---- from the ring ----------------------------------------------------------
 */

void asock__ring_complete(asock__ring *r, uint64_t data, int res,
                          unsigned int flags) {
  unsigned int tag = (unsigned int)(data & ASOCK__RING_TAG_MASK);
  asock_socket *sock = (asock_socket *)(uintptr_t)(data & ~(uint64_t)7u);

  (void)r;
  switch (tag) {
  case ASOCK__RING_TAG_RECV:
    if (asock__socket_is_udp(sock))
      asock__ring_udp_complete(sock, tag, res, flags);
    else
      recv_done(sock, res, flags);
    break;
  case ASOCK__RING_TAG_SEND:
    send_done(sock, res, tag);
    break;
  case ASOCK__RING_TAG_WRITABLE:
    if (asock__socket_is_udp(sock))
      asock__ring_udp_complete(sock, tag, res, flags);
    else
      send_done(sock, res, tag);
    break;
  case ASOCK__RING_TAG_ACCEPT:
    accept_done(sock, res, flags);
    break;
  case ASOCK__RING_TAG_CONNECT:
    connect_done(sock, res);
    break;
  case ASOCK__RING_TAG_CANCEL:
    sock->io.ring.cancels--;
    break;
  default:
    return; /* nothing waits for it */
  }
  /* A closing socket ends, or cancels again what a cancel missed. */
  if (sock->io.ring.closing && sock->io.ring.cancels == 0)
    asock__ring_kick(sock);
}

void asock__ring_retry_starved(asock__ring *r) {
  asock_socket *list = r->starved;
  /* A receive that found no buffer tries again once one came back, not on
   * every pass: back-pressure waits without turning the loop. And only as
   * many as the kernel has buffers, oldest first: each finds its bytes
   * waiting and takes one, so that the rest would find none again. A pass
   * that sent them all again spent the loop's time on thousands of
   * refusals with thousands of busy connections (docs/backends.md). */
  int returned = r->returned;
  unsigned int claimed = r->retry_queued + r->retry_sent;
  unsigned int budget = returned && r->avail > claimed ? r->avail - claimed : 0;

  r->returned = 0;
  r->starved = NULL;
  r->starved_tail = NULL;
  while (list != NULL) {
    asock_socket *sock = list;
    list = sock->io.ring.starved_next;
    if (!sock->io.ring.closing) {
      if (budget == 0) {
        starved_append(r, sock); /* still starved, in its place */
        continue;
      }
      budget--;
    }
    sock->io.ring.starved_next = NULL;
    sock->io.ring.starved = 0;
    if (sock->io.ring.closing) {
      asock__ring_kick(sock); /* its cancels could not be queued */
    } else if (recv_due(sock)) {
      asock__ring_submit_recv(sock, 0);
      if (sock->io.ring.out & ASOCK__RING_RECV)
        r->retry_queued++;
    }
    asock__socket_unref(sock);
  }
  /* The next passes go on with the rest as the receives sent again
   * complete: one may wait for its bytes, taking no buffer. */
  if (r->starved != NULL && returned)
    r->returned = 1;
}

/* A kicked socket: a closing one with nothing out closes; a reading one
 * gets what was stashed; a listener's accepts get the connection taken. */
static void run_kicked(asock_socket *sock) {
  asock__ring_io *io = &sock->io.ring;

  if (io->closing) {
    if (io->cancels != 0)
      return; /* kicked again once they are back */
    if (io->out == 0)
      close_end(sock);
    else
      cancel_out(sock);
    return;
  }
  if (asock__socket_is_listener(sock)) {
    if (io->wanted && io->conns_len > 0)
      asock__on_connection(sock, 0);
    if (!io->wanted && (io->out & ASOCK__RING_MACCEPT))
      cancel_accept(sock);
    if (accept_due(sock))
      submit_accept(sock);
    return;
  }
  if (asock__socket_is_udp(sock)) {
    asock__ring_udp_kicked(sock);
    return;
  }
  drain(sock);
  if (io->reading && io->stash == NULL && io->stash_status != 0)
    recv_end(sock, io->stash_status);
  if (recv_due(sock))
    asock__ring_submit_recv(sock, 1);
}

void asock__ring_run_kicked(asock__ring *r) {
  /* What a kicked socket's callbacks kick runs in this pass too. */
  while (r->kicked != NULL) {
    asock_socket *sock = r->kicked;
    r->kicked = sock->io.ring.kick_next;
    sock->io.ring.kick_next = NULL;
    sock->io.ring.kicked = 0;
    run_kicked(sock);
    asock__socket_unref(sock);
  }
}
