/* A loop's slices: the few free slices it keeps for its next receives,
 * taken and given without an atomic operation, the pool behind them, and
 * the sockets that wait for a slice to be free again. */
#include "internal.h"

/* Every waiting socket tries again (on each tick of the loop's timer): a
 * send of packets for its file read, a receive for its next read. */
void asock__loop_retry_waiters(asock_loop *loop) {
  asock_socket *list = loop->waiters;
  loop->waiters = NULL;
  while (list != NULL) {
    asock_socket *sock = list;
    list = sock->wait_link;
    uint32_t flags = sock->flags;
    sock->wait_link = NULL;
    sock->flags &= ~(ASOCK__SF_WAIT_SLICE | ASOCK__SF_SEND_WAITS);
    if (flags & ASOCK__SF_SEND_WAITS)
      asock__send_resume(sock);
    if (flags & ASOCK__SF_WAIT_SLICE)
      asock__recv_retry(sock);
    asock__socket_unref(sock);
  }
}

/* Returns the loop's kept slices to the pool. */
void asock__loop_flush_slices(asock_loop *loop) {
  uint32_t n = asock__load_u32_relaxed(&loop->slices_cached);
  while (n > 0) {
    void *slice = loop->slice_cache[--n];
    asock__store_u32_relaxed(&loop->slices_cached, n);
    asock__unpoison(slice, loop->pool->slice_size);
    (void)asock_pool_release(loop->pool, slice);
  }
}

int asock__loop_take_slice_slow(asock_loop *loop, void **slice) {
  return asock_pool_acquire(loop->pool, slice);
}

void asock__loop_give_slice_slow(asock_loop *loop, void *slice) {
  asock_pool *pool = loop->pool;
  uint32_t n = asock__load_u32_relaxed(&loop->slices_cached);
  if (n < loop->slice_cache_max) {
    /* ASOCK_POOL_ZERO_ON_RELEASE: what a kept slice held is erased. */
    memset(slice, 0, pool->slice_size);
    asock__poison(slice, pool->slice_size);
    loop->slice_cache[n] = slice;
    asock__store_u32_relaxed(&loop->slices_cached, n + 1);
    return;
  }
  (void)asock_pool_release(pool, slice);
}

/* Puts sock on the waiters list, once, with `flag` saying which side
 * waits. */
static void wait_slice(asock_loop *loop, asock_socket *sock, uint32_t flag) {
  uint32_t listed = sock->flags & (ASOCK__SF_WAIT_SLICE | ASOCK__SF_SEND_WAITS);
  sock->flags |= flag;
  if (listed != 0)
    return;
  asock__socket_ref(sock);
  sock->wait_link = loop->waiters;
  loop->waiters = sock;
  asock__loop_update_timer(loop);
}

void asock__loop_wait_slice(asock_loop *loop, asock_socket *sock) {
  wait_slice(loop, sock, ASOCK__SF_WAIT_SLICE);
}

void asock__loop_wait_slice_send(asock_loop *loop, asock_socket *sock) {
  wait_slice(loop, sock, ASOCK__SF_SEND_WAITS);
}
