/* A loop's io_uring ring on the libuv loop (see ring.h): made when the
 * loop is, probed for what the backend needs, with pool slices as the
 * kernel's provided buffers; submitted from a prepare handle, reaped from a
 * poll handle on its descriptor. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* The user data of the poll of libuv's own descriptor (no socket's). */
#define BACKEND_POLL_DATA 0u

static void on_ring(uv_poll_t *poll, int status, int events);
static void on_prepare(uv_prepare_t *prepare);
static void on_idle(uv_idle_t *idle);

static void on_handle_closed(uv_handle_t *handle) {
  asock__ring *r = handle->data;
  r->loop->handles--;
}

/* Whether the ring runs its completion work only when the loop's thread
 * asks (IORING_SETUP_DEFER_TASKRUN): such a ring has the eventfd. */
static int deferred(const asock__ring *r) { return r->evfd >= 0; }

/* The ring's own memory, and its eventfd. */
static void free_ring(asock__ring *r) {
  if (r->evfd >= 0)
    (void)close(r->evfd);
  asock__free(r->msgs);
  asock__free(r->iovs);
  asock__free(r);
}

/* After a submission: once the kernel took every entry, the gathered
 * sends' headers and lists are free again. */
static void submitted(asock__ring *r) {
  if (io_uring_sq_ready(&r->uring) == 0) {
    r->msgs_used = 0;
    r->iovs_used = 0;
    r->retry_sent += r->retry_queued;
    r->retry_queued = 0;
  }
}

/* A ring made disabled belongs to the first thread to submit to it, the
 * loop's thread at that moment: enabled then. (liburing 2.3 declares
 * io_uring_enable_rings() but does not export it.) */
static void enable(asock__ring *r) {
  if (r->enabled)
    return;
  (void)syscall(__NR_io_uring_register, r->uring.ring_fd,
                IORING_REGISTER_ENABLE_RINGS, NULL, 0);
  r->enabled = 1;
  r->owner = asock__thread_token();
}

static void on_failed_close(uv_handle_t *handle) { free_ring(handle->data); }

/* What the backend needs of the kernel: the features and the operations.
 * 0, or ASOCK_ENOTSUP. */
static int probe(asock__ring *r, unsigned int features) {
  static const int ops[] = {
      IORING_OP_NOP,      IORING_OP_RECV,         IORING_OP_SEND,
      IORING_OP_SENDMSG,  IORING_OP_ACCEPT,       IORING_OP_CONNECT,
      IORING_OP_POLL_ADD, IORING_OP_ASYNC_CANCEL, IORING_OP_RECVMSG};
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

/* The buffer ids' slices and stash links. */
static void free_bufs(asock__ring *r) {
  asock__free(r->bufs);
  asock__free(r->stashed);
  r->bufs = NULL;
  r->stashed = NULL;
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

  /* Each buffer id, then as many ids for slices that stashes keep. */
  r->bufs = asock__calloc(2 * (size_t)r->nbufs, sizeof(*r->bufs));
  r->stashed = asock__calloc(2 * (size_t)r->nbufs, sizeof(*r->stashed));
  if (r->bufs == NULL || r->stashed == NULL) {
    free_bufs(r);
    return ASOCK_ENOMEM;
  }
  for (i = r->nbufs; i < 2 * r->nbufs; i++)
    r->stashed[i].next =
        (unsigned short)(i + 1 < 2 * r->nbufs ? i + 1 : ASOCK__RING_NO_ID);
  r->keep_free = (unsigned short)r->nbufs;
  r->br_len = (len + 4095u) & ~(size_t)4095u;
  r->br = mmap(NULL, r->br_len, PROT_READ | PROT_WRITE,
               MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (r->br == MAP_FAILED) {
    r->br = NULL;
    free_bufs(r);
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
    free_bufs(r);
    return ASOCK_ENOTSUP;
  }
  for (i = 0; i < r->nbufs; i++) {
    void *slice;
    if (asock__pool_take(pool, &slice) != 0) {
      give_back(r, i);
      (void)io_uring_unregister_buf_ring(&r->uring, ASOCK__RING_BGID);
      munmap(r->br, r->br_len);
      r->br = NULL;
      free_bufs(r);
      return ASOCK_ENOBUFS;
    }
    asock__unpoison(slice, pool->slice_size);
    r->bufs[i] = slice;
    io_uring_buf_ring_add(r->br, slice, r->buf_len, (unsigned short)i,
                          io_uring_buf_ring_mask(r->nbufs), (int)i);
  }
  io_uring_buf_ring_advance(r->br, (int)r->nbufs);
  r->avail = r->nbufs;
  return 0;
}

/* Valgrind (3.19) runs one thread at a time and lets the others run only
 * while the running one blocks in a system call it knows may block, which
 * io_uring_enter() is not: a loop waiting in its ring would keep every other
 * thread (a wake-up, a stop) from running. Its preload library says it is
 * there. */
static int under_valgrind(void) {
  const char *preload = getenv("LD_PRELOAD");
  return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* ThreadSanitizer runs a signal's handler only when the thread next enters
 * a call it intercepts, which io_uring_enter() is not: a loop waiting in its
 * ring would never see a signal libuv watches. Such a build has the plain
 * ring. */
#if defined(__SANITIZE_THREAD__)
#define ASOCK__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASOCK__TSAN 1
#endif
#endif
#ifndef ASOCK__TSAN
#define ASOCK__TSAN 0
#endif

/* The ring. Where the kernel has it (6.1), its completion work runs only
 * when the loop's thread asks for it (IORING_SETUP_DEFER_TASKRUN): no
 * interrupt of the thread for each completion, and no lock fought for with
 * the network's softirq. Such a ring is made disabled, for one thread alone
 * may submit to it and a loop may be made on another thread than it runs
 * on: the first submission enables it. Its descriptor never becomes
 * readable for pending work and its eventfd is signalled for it late, so
 * the loop's thread waits in the ring (asock__ring_run()); the eventfd, which
 * the poll handle watches, serves runs that do not wait there. Only a loop
 * asock owns has it (not under valgrind or ThreadSanitizer): an application's
 * own libuv loop is run by uv_run(), never waiting in the ring. 0, or a
 * negative errno. */
static int make_ring(asock__ring *r, struct io_uring_params *params) {
  int err;

  if (r->loop->owns_uv && !ASOCK__TSAN && !under_valgrind()) {
    memset(params, 0, sizeof(*params));
    params->flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
                    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                    IORING_SETUP_R_DISABLED;
    params->cq_entries = 4 * RING_ENTRIES;
    err = io_uring_queue_init_params(RING_ENTRIES, &r->uring, params);
    if (err == 0) {
      r->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      err =
          r->evfd < 0 ? -errno : io_uring_register_eventfd(&r->uring, r->evfd);
      if (err != 0)
        io_uring_queue_exit(&r->uring);
      return err;
    }
    if (err != -EINVAL)
      return err;
  }
  /* An older kernel, or an application's loop: completion work as task
   * work, and the ring's descriptor readable when completions wait. */
  memset(params, 0, sizeof(*params));
  params->flags = IORING_SETUP_CQSIZE;
  params->cq_entries = 4 * RING_ENTRIES;
  r->enabled = 1;
  return io_uring_queue_init_params(RING_ENTRIES, &r->uring, params);
}

int asock__ring_create(asock_loop *loop) {
  struct io_uring_params params;
  asock__ring *r;
  size_t n;
  int err;

  r = asock__calloc(1, sizeof(*r));
  if (r == NULL)
    return ASOCK_ENOMEM;
  r->evfd = -1;
  r->mshot = 1;
  r->maccept = 1;
  asock__ring_udp_init(r);
  r->msgs = asock__calloc(ASOCK__RING_MSGS, sizeof(*r->msgs));
  r->iovs = asock__calloc(ASOCK__RING_IOVS, sizeof(*r->iovs));
  if (r->msgs == NULL || r->iovs == NULL) {
    free_ring(r);
    return ASOCK_ENOMEM;
  }
  r->loop = loop;
  err = asock__fault(ASOCK__FAULT_URING_INIT);
  if (err == 0)
    err = make_ring(r, &params);
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
  err = asock__uv_poll_init_socket(loop->uv, &r->poll,
                                   deferred(r) ? r->evfd : r->uring.ring_fd);
  if (err == 0) {
    err = asock__uv_poll_start(&r->poll, UV_READABLE, on_ring);
  }
  if (err != 0) {
    int opened = r->poll.loop != NULL;
    give_back(r, r->nbufs);
    (void)io_uring_unregister_buf_ring(&r->uring, ASOCK__RING_BGID);
    munmap(r->br, r->br_len);
    free_bufs(r);
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
  uv_idle_init(loop->uv, &r->idle);
  r->poll.data = r;
  r->prepare.data = r;
  r->idle.data = r;
  /* Only what waits on the ring keeps the loop alive (asock__ring_hold()). */
  uv_unref((uv_handle_t *)&r->poll);
  uv_unref((uv_handle_t *)&r->prepare);
  uv_unref((uv_handle_t *)&r->idle);
  loop->handles += 3;
  loop->ring = r;
  asock__store_u32_relaxed(&loop->slices_ringed, r->nbufs);
  return 0;
}

void asock__ring_close_handles(asock_loop *loop) {
  asock__ring *r = loop->ring;
  uv_close((uv_handle_t *)&r->poll, on_handle_closed);
  uv_close((uv_handle_t *)&r->prepare, on_handle_closed);
  uv_close((uv_handle_t *)&r->idle, on_handle_closed);
}

void asock__ring_destroy(asock_loop *loop) {
  asock__ring *r = loop->ring;

  loop->ring = NULL;
  (void)io_uring_unregister_buf_ring(&r->uring, ASOCK__RING_BGID);
  io_uring_queue_exit(&r->uring);
  asock__store_u32_relaxed(&loop->slices_ringed, 0);
  give_back(r, r->nbufs);
  munmap(r->br, r->br_len);
  free_bufs(r);
  free_ring(r);
}

void asock__ring_submit(asock__ring *r) {
  enable(r);
  (void)io_uring_submit(&r->uring);
  submitted(r);
}

void asock__ring_submit_now(asock__ring *r) {
  if (!deferred(r)) {
    asock__ring_submit(r);
    return;
  }
  enable(r);
  (void)io_uring_submit_and_get_events(&r->uring);
  submitted(r);
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
  r->avail++;
  io_uring_buf_ring_add(r->br, slice, r->buf_len, bid,
                        io_uring_buf_ring_mask(r->nbufs), 0);
  io_uring_buf_ring_advance(r->br, 1);
}

/* The eventfd of a ring with deferred work reads as unsignalled. */
static void clear_eventfd(asock__ring *r) {
  eventfd_t n;
  (void)eventfd_read(r->evfd, &n);
}

/* Each completion that waits, to what it is for. How many there were. */
static unsigned int reap(asock__ring *r) {
  struct io_uring_cqe *cqe;
  unsigned int n = 0;

  while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
    uint64_t data = cqe->user_data;
    int res = cqe->res;
    unsigned int flags = cqe->flags;
    io_uring_cqe_seen(&r->uring, cqe);
    n++;
    if (data == BACKEND_POLL_DATA) {
      r->backend_polled = 0;
      r->backend_ready = 1;
    } else {
      asock__ring_complete(r, data, res, flags);
    }
  }
  /* The receives sent again took their buffers, or wait for bytes. */
  r->retry_sent = 0;
  return n;
}

/* Asks the ring to tell when libuv's own descriptor has events: other
 * handles' I/O, a wake-up from another thread. */
static void poll_backend(asock__ring *r) {
  struct io_uring_sqe *sqe;

  if (r->backend_polled)
    return;
  sqe = asock__ring_sqe(r);
  if (sqe == NULL)
    return; /* the wait below is then bounded by nothing new: see run_waiting */
  io_uring_prep_poll_add(sqe, uv_backend_fd(r->loop->uv), POLLIN);
  io_uring_sqe_set_data64(sqe, BACKEND_POLL_DATA);
  r->backend_polled = 1;
}

/* The loop's thread waits in the ring instead of libuv's epoll_wait(): a
 * ring with deferred work (make_ring()) wakes a thread waiting in it at
 * once, while its eventfd's signal for new work may come a scheduler tick
 * later. Waits until libuv has something to do (its descriptor, polled from
 * the ring; its timers, idle, pending and closing handles, a stop: what
 * uv_backend_timeout() says), running completions between waits; once, for
 * UV_RUN_ONCE. libuv then polls without blocking (the idle handle): what
 * completes meanwhile is waited for at the next prepare. */
static void run_waiting(asock__ring *r) {
  uv_loop_t *uv = r->loop->uv;

  enable(r);
  for (;;) {
    struct __kernel_timespec ts;
    struct io_uring_cqe *cqe;
    int timeout;

    uv_update_time(uv);
    timeout = uv_backend_timeout(uv);
    /* libuv's UV_RUN_ONCE does not block once idle callbacks ran: asock's
     * may have delivered completions in this iteration, and stopped. */
    if (r->waits == ASOCK__RING_WAIT_ONCE && r->loop->idle_runs != r->idle_runs)
      timeout = 0;
    if (timeout != 0)
      poll_backend(r);
    if (timeout == 0 || !r->backend_polled) {
      /* libuv has work: what is queued goes, what is done runs. */
      (void)io_uring_submit_and_get_events(&r->uring);
      submitted(r);
      (void)reap(r);
      break;
    }
    if (timeout > 0) {
      ts.tv_sec = timeout / 1000;
      ts.tv_nsec = (long long)(timeout % 1000) * 1000000;
    }
    (void)io_uring_submit_and_wait_timeout(&r->uring, &cqe, 1,
                                           timeout > 0 ? &ts : NULL, NULL);
    submitted(r);
    (void)reap(r);
    if (r->backend_ready || r->waits == ASOCK__RING_WAIT_ONCE)
      break;
    asock__ring_retry_starved(r);
    asock__ring_run_kicked(r);
  }
  uv_idle_start(&r->idle, on_idle);
}

/* libuv polled without blocking after a wait in the ring: done. */
static void on_idle(uv_idle_t *idle) { uv_idle_stop(idle); }

/* Submits before libuv blocks: what the callbacks of this loop iteration
 * prepared, after the receives that could not get a buffer retry; inside
 * asock_loop_run() on a ring with deferred work, waits in the ring. */
static void on_prepare(uv_prepare_t *prepare) {
  asock__ring *r = prepare->data;
  /* libuv polled since the last submission: what the receives sent again
   * completed with was reaped, and those still out wait for bytes. */
  r->retry_sent = 0;
  asock__ring_retry_starved(r);
  asock__ring_run_kicked(r);
  r->backend_ready = 0;
  if (r->waits != ASOCK__RING_WAIT_NO) {
    run_waiting(r);
  } else if (io_uring_sq_ready(&r->uring) > 0) {
    asock__ring_submit(r);
  }
}

int asock__ring_deferred(const asock_loop *loop) {
  return loop->ring != NULL && deferred(loop->ring);
}

int asock__ring_elsewhere(const asock_loop *loop) {
  const asock__ring *r = loop->ring;
  return r->enabled && deferred(r) && r->owner != asock__thread_token();
}

int asock__ring_run(asock_loop *loop, uv_run_mode mode) {
  asock__ring *r = loop->ring;
  int rc;

  if (!deferred(r) || mode == UV_RUN_NOWAIT)
    return uv_run(loop->uv, mode);
  r->waits =
      mode == UV_RUN_ONCE ? ASOCK__RING_WAIT_ONCE : ASOCK__RING_WAIT_LOOP;
  r->idle_runs = loop->idle_runs;
  /* The prepare handle runs what completes; the eventfd would only wake
   * libuv for it again. */
  (void)io_uring_cq_eventfd_toggle(&r->uring, false);
  clear_eventfd(r);
  rc = uv_run(loop->uv, mode);
  r->waits = ASOCK__RING_WAIT_NO;
  (void)io_uring_cq_eventfd_toggle(&r->uring, true);
  /* Work deferred meanwhile runs now, so that what it completes signals
   * the eventfd; what completed unreaped wakes the poll handle. */
  if (r->enabled)
    (void)io_uring_get_events(&r->uring);
  if (io_uring_cq_ready(&r->uring) > 0)
    (void)eventfd_write(r->evfd, 1);
  return rc;
}

/* Completions wait: the ring's descriptor is readable, or (deferred work)
 * its eventfd. */
static void on_ring(uv_poll_t *poll, int status, int events) {
  asock__ring *r = poll->data;

  (void)status;
  (void)events;
  if (deferred(r)) {
    /* Deferred work: the eventfd is drained, then the work run. */
    clear_eventfd(r);
    if (r->enabled)
      (void)io_uring_get_events(&r->uring);
  }
  (void)reap(r);
  asock__ring_retry_starved(r);
}
