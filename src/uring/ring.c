/* A loop's io_uring ring on the libuv loop (see ring.h): made when the
 * loop is, probed for what the backend needs, with pool slices as the
 * kernel's provided buffers; submitted from a prepare handle, reaped from a
 * poll handle on its descriptor. */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "ring-int.h"

/* Submission queue entries; the completion queue has four times as many,
 * and the kernel keeps what overflows it (IORING_FEAT_NODROP). */
#define RING_ENTRIES 1024u
/* Provided buffers: a loop lends the kernel a sixteenth of the pool's
 * slices, as many as its slice cache may keep, up to 256; a pool of fewer
 * than 64 slices has too few to lend, and its loops stay on readiness. */
#define RING_BUFS_MIN 4u
#define RING_BUFS_MAX 256u

static void on_ring(uv_poll_t *poll, int status, int events);
static void on_prepare(uv_prepare_t *prepare);

static void on_handle_closed(uv_handle_t *handle) {
  asock__ring *r = handle->data;
  r->loop->handles--;
}

/* The ring's own memory. */
static void free_ring(asock__ring *r) {
  asock__free(r->msgs);
  asock__free(r->iovs);
  asock__free(r);
}

static void on_failed_close(uv_handle_t *handle) { free_ring(handle->data); }

/* What the backend needs of the kernel: the features and the operations.
 * 0, or ASOCK_ENOTSUP. */
static int probe(asock__ring *r, unsigned int features) {
  static const int ops[] = {IORING_OP_NOP,      IORING_OP_RECV,
                            IORING_OP_SEND,     IORING_OP_SENDMSG,
                            IORING_OP_ACCEPT,   IORING_OP_CONNECT,
                            IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL};
  const unsigned int need =
      IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE | IORING_FEAT_FAST_POLL;
  struct io_uring_probe *p;
  size_t i;
  int ok = 1;

  if ((features & need) != need)
    return ASOCK_ENOTSUP;
  if (asock__fault(ASOCK__FAULT_URING_PROBE) != 0)
    return ASOCK_ENOTSUP;
  p = io_uring_get_probe_ring(&r->uring);
  if (p == NULL)
    return ASOCK_ENOTSUP;
  for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
    if (!io_uring_opcode_supported(p, ops[i]))
      ok = 0;
  io_uring_free_probe(p);
  return ok ? 0 : ASOCK_ENOTSUP;
}

/* Gives the slices of the provided buffers back to the pool. */
static void give_back(asock__ring *r, unsigned int n) {
  unsigned int i;
  for (i = 0; i < n; i++)
    (void)asock_pool_release(r->loop->pool, r->bufs[i]);
}

/* The provided buffers: nbufs pool slices in a buffer ring registered as
 * group ASOCK__RING_BGID. 0, or the error, with nothing left taken. */
static int provide(asock__ring *r) {
  asock_pool *pool = r->loop->pool;
  struct io_uring_buf_reg reg;
  size_t len = (size_t)r->nbufs * sizeof(struct io_uring_buf);
  unsigned int i;
  int err;

  r->bufs = asock__calloc(r->nbufs, sizeof(*r->bufs));
  if (r->bufs == NULL)
    return ASOCK_ENOMEM;
  r->br_len = (len + 4095u) & ~(size_t)4095u;
  r->br = mmap(NULL, r->br_len, PROT_READ | PROT_WRITE,
               MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (r->br == MAP_FAILED) {
    r->br = NULL;
    asock__free(r->bufs);
    return ASOCK_ENOMEM;
  }
  io_uring_buf_ring_init(r->br);
  memset(&reg, 0, sizeof(reg));
  reg.ring_addr = (uint64_t)(uintptr_t)r->br;
  reg.ring_entries = r->nbufs;
  reg.bgid = ASOCK__RING_BGID;
  err = asock__fault(ASOCK__FAULT_URING_REGISTER);
  if (err == 0)
    err = io_uring_register_buf_ring(&r->uring, &reg, 0);
  if (err != 0) {
    munmap(r->br, r->br_len);
    r->br = NULL;
    asock__free(r->bufs);
    return ASOCK_ENOTSUP;
  }
  for (i = 0; i < r->nbufs; i++) {
    void *slice;
    if (asock__pool_take(pool, &slice) != 0) {
      give_back(r, i);
      (void)io_uring_unregister_buf_ring(&r->uring, ASOCK__RING_BGID);
      munmap(r->br, r->br_len);
      r->br = NULL;
      asock__free(r->bufs);
      return ASOCK_ENOBUFS;
    }
    asock__unpoison(slice, pool->slice_size);
    r->bufs[i] = slice;
    io_uring_buf_ring_add(r->br, slice, r->buf_len, (unsigned short)i,
                          io_uring_buf_ring_mask(r->nbufs), (int)i);
  }
  io_uring_buf_ring_advance(r->br, (int)r->nbufs);
  return 0;
}

int asock__ring_create(asock_loop *loop) {
  struct io_uring_params params;
  asock__ring *r;
  size_t n;
  int err;

  r = asock__calloc(1, sizeof(*r));
  if (r == NULL)
    return ASOCK_ENOMEM;
  r->msgs = asock__calloc(ASOCK__RING_MSGS, sizeof(*r->msgs));
  r->iovs = asock__calloc(ASOCK__RING_IOVS, sizeof(*r->iovs));
  if (r->msgs == NULL || r->iovs == NULL) {
    free_ring(r);
    return ASOCK_ENOMEM;
  }
  r->loop = loop;
  memset(&params, 0, sizeof(params));
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = 4 * RING_ENTRIES;
  err = asock__fault(ASOCK__FAULT_URING_INIT);
  if (err == 0)
    err = io_uring_queue_init_params(RING_ENTRIES, &r->uring, &params);
  if (err != 0) {
    /* ENOSYS, EPERM (a sandbox, or kernel.io_uring_disabled): not here. */
    free_ring(r);
    return err == -ENOMEM ? ASOCK_ENOMEM : ASOCK_ENOTSUP;
  }
  err = probe(r, params.features);
  n = loop->pool->slice_count / 16;
  if (err == 0 && n < RING_BUFS_MIN)
    err = ASOCK_ENOTSUP; /* too small a pool to lend the kernel slices */
  if (err == 0) {
    if (n > RING_BUFS_MAX)
      n = RING_BUFS_MAX;
    r->nbufs = 1;
    while ((size_t)r->nbufs * 2 <= n)
      r->nbufs *= 2;
    r->buf_len = loop->read_len > 0xffffffffu ? 0xffffffffu
                                              : (unsigned int)loop->read_len;
    err = provide(r);
  }
  if (err != 0) {
    io_uring_queue_exit(&r->uring);
    free_ring(r);
    return err;
  }
  /* The poll handle is the last step that can fail: started, it cannot
   * fail after, and a failure before leaves no handle to close. */
  r->poll.data = r;
  err = asock__uv_poll_init_socket(loop->uv, &r->poll, r->uring.ring_fd);
  if (err == 0) {
    err = asock__uv_poll_start(&r->poll, UV_READABLE, on_ring);
  }
  if (err != 0) {
    int opened = r->poll.loop != NULL;
    give_back(r, r->nbufs);
    (void)io_uring_unregister_buf_ring(&r->uring, ASOCK__RING_BGID);
    munmap(r->br, r->br_len);
    asock__free(r->bufs);
    io_uring_queue_exit(&r->uring);
    /* An opened handle frees the rest once libuv is done with it. */
    if (opened)
      uv_close((uv_handle_t *)&r->poll, on_failed_close);
    else
      free_ring(r);
    return asock__from_uv(err);
  }
  uv_prepare_init(loop->uv, &r->prepare);
  uv_prepare_start(&r->prepare, on_prepare);
  r->poll.data = r;
  r->prepare.data = r;
  /* Only what waits on the ring keeps the loop alive (asock__ring_hold()). */
  uv_unref((uv_handle_t *)&r->poll);
  uv_unref((uv_handle_t *)&r->prepare);
  loop->handles += 2;
  loop->ring = r;
  asock__store_u32_relaxed(&loop->slices_ringed, r->nbufs);
  return 0;
}

void asock__ring_close_handles(asock_loop *loop) {
  asock__ring *r = loop->ring;
  uv_close((uv_handle_t *)&r->poll, on_handle_closed);
  uv_close((uv_handle_t *)&r->prepare, on_handle_closed);
}

void asock__ring_destroy(asock_loop *loop) {
  asock__ring *r = loop->ring;

  loop->ring = NULL;
  (void)io_uring_unregister_buf_ring(&r->uring, ASOCK__RING_BGID);
  io_uring_queue_exit(&r->uring);
  asock__store_u32_relaxed(&loop->slices_ringed, 0);
  give_back(r, r->nbufs);
  munmap(r->br, r->br_len);
  asock__free(r->bufs);
  free_ring(r);
}

void asock__ring_submit(asock__ring *r) {
  (void)io_uring_submit(&r->uring);
  if (io_uring_sq_ready(&r->uring) == 0) {
    r->msgs_used = 0;
    r->iovs_used = 0;
  }
}

struct io_uring_sqe *asock__ring_sqe(asock__ring *r) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
  if (sqe == NULL) {
    /* The queue is full: what it holds goes now. */
    asock__ring_submit(r);
    sqe = io_uring_get_sqe(&r->uring);
  }
  return sqe;
}

struct msghdr *asock__ring_msg(asock__ring *r, unsigned int n) {
  struct msghdr *msg;

  if (r->msgs_used == ASOCK__RING_MSGS || ASOCK__RING_IOVS - r->iovs_used < n)
    return NULL;
  msg = &r->msgs[r->msgs_used++];
  memset(msg, 0, sizeof(*msg));
  msg->msg_iov = &r->iovs[r->iovs_used];
  msg->msg_iovlen = n;
  r->iovs_used += n;
  return msg;
}

void asock__ring_hold(asock__ring *r, int delta) {
  unsigned int before = r->active;
  r->active = (unsigned int)((int)r->active + delta);
  if (before == 0 && r->active > 0)
    uv_ref((uv_handle_t *)&r->poll);
  else if (before > 0 && r->active == 0)
    uv_unref((uv_handle_t *)&r->poll);
}

void asock__ring_recycle(asock__ring *r, unsigned short bid, void *slice) {
  r->bufs[bid] = slice;
  r->returned = 1;
  io_uring_buf_ring_add(r->br, slice, r->buf_len, bid,
                        io_uring_buf_ring_mask(r->nbufs), 0);
  io_uring_buf_ring_advance(r->br, 1);
}

/* Submits before libuv blocks: what the callbacks of this loop iteration
 * prepared, after the receives that could not get a buffer retry. */
static void on_prepare(uv_prepare_t *prepare) {
  asock__ring *r = prepare->data;
  asock__ring_retry_starved(r);
  asock__ring_run_kicked(r);
  if (io_uring_sq_ready(&r->uring) > 0)
    asock__ring_submit(r);
}

/* The ring's descriptor is readable: completions wait. */
static void on_ring(uv_poll_t *poll, int status, int events) {
  asock__ring *r = poll->data;
  struct io_uring_cqe *cqe;

  (void)status;
  (void)events;
  while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
    uint64_t data = cqe->user_data;
    int res = cqe->res;
    unsigned int flags = cqe->flags;
    io_uring_cqe_seen(&r->uring, cqe);
    asock__ring_complete(r, data, res, flags);
  }
  asock__ring_retry_starved(r);
}
