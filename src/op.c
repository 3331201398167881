/* Operation objects: the SocketAsyncEventArgs analogue. An op is taken from
 * its pool's fixed array, configured by its owner, and moves idle -> pending
 * -> idle for every operation started on it. */
#include <stddef.h>
#include <string.h>

#include "internal.h"

void asock__op_reset(asock_op *op) {
  /* Everything after the op's identity (pool, state, index) starts at
   * zero: NULL pointers, ASOCK_OP_NONE, ASOCK_BUFFER_NONE, ASOCK__Q_NONE,
   * no flags, no timeout, not in any list. */
  memset((char *)op + offsetof(asock_op, kind), 0,
         sizeof(*op) - offsetof(asock_op, kind));
  asock__store_u32(&op->cancel_req, 0);
}

/* Finds the op p points at in the pool's array: 0 or ASOCK_EFOREIGN. The
 * check uses only the pool's bounds, so it never reads through a pointer
 * that is not an op of this pool. */
static int op_index(const asock_pool *pool, const asock_op *op,
                    uint32_t *index) {
  uintptr_t addr = (uintptr_t)op;
  uintptr_t base = (uintptr_t)pool->ops;
  uintptr_t offset;

  if (addr < base || addr - base >= sizeof(*op) * pool->op_count)
    return ASOCK_EFOREIGN;
  offset = addr - base;
  if (offset % sizeof(*op) != 0)
    return ASOCK_EFOREIGN;
  *index = (uint32_t)(offset / sizeof(*op));
  return 0;
}

int asock_op_acquire(asock_pool *pool, asock_op **op_out) {
  uint32_t index;
  asock_op *op;

  if (op_out == NULL)
    return ASOCK_EINVAL;
  *op_out = NULL;
  if (pool == NULL)
    return ASOCK_EINVAL;
  if (asock__stack_pop(&pool->free_ops, &index) != 0) {
    asock__add_u64_relaxed(&pool->ops_failed, 1);
    return ASOCK_ENOBUFS;
  }
  asock__max_u64(&pool->ops_high_water,
                 asock__add_u64(&pool->ops_in_use, 1) + 1);
  op = &pool->ops[index];
  asock__op_reset(op);
  *op_out = op;
  return 0;
}

int asock_op_release(asock_pool *pool, asock_op *op) {
  uint32_t index;
  int err;

  if (pool == NULL || op == NULL)
    return ASOCK_EINVAL;
  err = op_index(pool, op, &index);
  if (err != 0)
    return err;
  if (!asock__stack_is_held(&pool->free_ops, index))
    return ASOCK_ENOTHELD;
  if (asock__load_u32(&op->state) != ASOCK__OP_IDLE)
    return ASOCK_EBUSY;
  asock__op_drop_slice(op);
  asock__free(op->host);
  op->host = NULL;
  asock__free(op->attempts);
  op->attempts = NULL;
  asock__free(op->fs);
  op->fs = NULL;
  /* Nothing more: asock_op_acquire() resets the op it hands out. */
  asock__add_u64(&pool->ops_in_use, (uint64_t)-1);
  err = asock__stack_push(&pool->free_ops, index);
  if (err != 0)
    asock__add_u64(&pool->ops_in_use, 1);
  return err;
}

/* The guard every setter shares: a NULL op is invalid, a pending one busy. */
static int check_idle(const asock_op *op) {
  if (op == NULL)
    return ASOCK_EINVAL;
  if (asock__load_u32(&op->state) != ASOCK__OP_IDLE)
    return ASOCK_EBUSY;
  return 0;
}

int asock_op_set_callback(asock_op *op, asock_op_cb cb) {
  int err = check_idle(op);
  if (err == 0)
    op->cb = cb;
  return err;
}

int asock_op_set_user_data(asock_op *op, void *user_data) {
  if (op == NULL)
    return ASOCK_EINVAL;
  op->user_data = user_data;
  return 0;
}

void *asock_op_user_data(const asock_op *op) {
  return op == NULL ? NULL : op->user_data;
}

void asock__op_drop_slice(asock_op *op) {
  void *slice = asock__op_detach_slice(op);
  /* The slice came from this pool and the op held it: this cannot fail. */
  if (slice != NULL)
    (void)asock_pool_release(op->pool, slice);
}

/* offset + count <= len, without overflow. */
static int range_fits(size_t len, size_t offset, size_t count) {
  return offset <= len && count <= len - offset;
}

int asock_op_set_buffer(asock_op *op, void *mem, size_t mem_len, size_t offset,
                        size_t count) {
  int err = check_idle(op);
  if (err != 0)
    return err;
  if (mem == NULL) {
    if (mem_len != 0 || offset != 0 || count != 0)
      return ASOCK_EINVAL;
    asock__op_drop_slice(op);
    return 0;
  }
  if (!range_fits(mem_len, offset, count))
    return ASOCK_EBOUNDS;
  /* A sender that points its op at each message's bytes calls this once a
   * message: only a slice needs the work of giving it back. */
  if (op->mode == ASOCK_BUFFER_SLICE)
    asock__op_drop_slice(op);
  op->mode = ASOCK_BUFFER_USER;
  op->mem = mem;
  op->mem_len = mem_len;
  op->offset = offset;
  op->count = count;
  return 0;
}

int asock_op_take_slice(asock_op *op) {
  void *slice;
  int err = check_idle(op);
  if (err != 0)
    return err;
  if (op->mode == ASOCK_BUFFER_SLICE) {
    op->flags &= ~ASOCK__OPF_ON_DEMAND;
    op->offset = 0;
    op->count = op->mem_len;
    return 0;
  }
  err = asock_pool_acquire(op->pool, &slice);
  if (err != 0)
    return err;
  asock__op_drop_slice(op);
  asock__op_attach_slice(op, slice, 0);
  return 0;
}

int asock_op_set_range(asock_op *op, size_t offset, size_t count) {
  int err = check_idle(op);
  if (err != 0)
    return err;
  if (!range_fits(op->mem_len, offset, count))
    return ASOCK_EBOUNDS;
  /* A window chosen in a receive's slice is to be read into as it is: the
   * slice stays with the op, and the next receive does not start over. */
  op->flags &= ~ASOCK__OPF_ON_DEMAND;
  op->offset = offset;
  op->count = count;
  return 0;
}

int asock_op_clear_buffer(asock_op *op) {
  int err = check_idle(op);
  if (err != 0)
    return err;
  asock__op_drop_slice(op);
  op->bufs = NULL;
  op->nbufs = 0;
  return 0;
}

int asock__bufs_check(const asock_buf *bufs, size_t nbufs) {
  size_t total = 0;
  size_t i;
  for (i = 0; i < nbufs; i++) {
    if (bufs[i].base == NULL && bufs[i].len != 0)
      return ASOCK_EINVAL;
    /* The sends add the lengths up: the sum must not wrap. */
    if (bufs[i].len > SIZE_MAX - total)
      return ASOCK_EBOUNDS;
    total += bufs[i].len;
  }
  return 0;
}

int asock_op_set_buffer_list(asock_op *op, const asock_buf *bufs,
                             size_t nbufs) {
  int err = check_idle(op);
  if (err != 0)
    return err;
  if ((bufs == NULL && nbufs != 0) || nbufs > ASOCK_MAX_BUFS)
    return ASOCK_EINVAL;
  err = asock__bufs_check(bufs, nbufs);
  if (err != 0)
    return err;
  op->bufs = nbufs == 0 ? NULL : bufs;
  op->nbufs = nbufs;
  return 0;
}

int asock_op_detach_slice(asock_op *op, void **slice_out, size_t *offset,
                          size_t *len) {
  uint32_t index;
  asock_socket *owner;

  if (slice_out != NULL)
    *slice_out = NULL;
  if (offset != NULL)
    *offset = 0;
  if (len != NULL)
    *len = 0;
  if (op == NULL || slice_out == NULL)
    return ASOCK_EINVAL;
  /* Pending, an op is the loop's, except inside a delivery callback. */
  if (asock__load_u32(&op->state) != ASOCK__OP_IDLE &&
      (op->flags & ASOCK__OPF_DELIVERING) == 0)
    return ASOCK_EBUSY;
  if (op->mode != ASOCK_BUFFER_SLICE)
    return ASOCK_ENOSLICE;
  /* The op holds the slice, so it is one of the pool's. */
  (void)asock__pool_slice_index(op->pool, op->mem, &index);
  /* The socket it counts against keeps counting it until the application
   * gives it back: the charge moves from the op to the pool's record. A TCP
   * delivery's slice is charged only now (asock__op_deliver()). */
  owner = op->charged;
  op->charged = NULL;
  if (owner == NULL && (op->flags & ASOCK__OPF_ON_DEMAND)) {
    owner = op->socket;
    asock__add_u64(&owner->refs, ASOCK__REF_SLICE);
  }
  if (owner != NULL)
    asock__store_ptr(&op->pool->owners[index], owner);
  *slice_out = op->mem;
  if (offset != NULL)
    *offset = op->offset;
  if (len != NULL)
    *len = op->bytes;
  (void)asock__op_detach_slice(op);
  return 0;
}

int asock_op_attach_slice(asock_op *op, void *slice, size_t offset,
                          size_t count) {
  uint32_t index;
  int err = check_idle(op);
  if (err != 0)
    return err;
  if (slice == NULL)
    return ASOCK_EINVAL;
  err = asock__pool_slice_index(op->pool, slice, &index);
  if (err != 0)
    return err;
  if (!asock__stack_is_held(&op->pool->slices, index))
    return ASOCK_ENOTHELD;
  if (!range_fits(op->pool->slice_size, offset, count))
    return ASOCK_EBOUNDS;
  if (op->mode != ASOCK_BUFFER_SLICE || op->mem != slice)
    asock__op_drop_slice(op);
  /* Not charged to the op: a slice a receive took keeps counting against
   * its socket through the pool's record until asock_pool_release(), which
   * the op calls when it lets the slice go. */
  asock__op_attach_slice(op, slice, 0);
  op->offset = offset;
  op->count = count;
  return 0;
}

int asock_op_set_multishot(asock_op *op, int enable) {
  int err = check_idle(op);
  if (err != 0)
    return err;
  if (enable)
    op->flags |= ASOCK__OPF_MULTISHOT;
  else
    op->flags &= ~ASOCK__OPF_MULTISHOT;
  return 0;
}

int asock_op_multishot(const asock_op *op) {
  return op != NULL && (op->flags & ASOCK__OPF_MULTISHOT) != 0;
}

int asock_op_more(const asock_op *op) {
  return op != NULL && (op->flags & ASOCK__OPF_DELIVERING) != 0;
}

asock_buffer_mode asock_op_buffer_mode(const asock_op *op) {
  return op == NULL ? ASOCK_BUFFER_NONE : op->mode;
}

void *asock_op_data(const asock_op *op) {
  if (op == NULL || op->mem == NULL)
    return NULL;
  return op->mem + op->offset;
}

size_t asock_op_offset(const asock_op *op) {
  return op == NULL ? 0 : op->offset;
}

void *asock_op_buffer(const asock_op *op) {
  return op == NULL ? NULL : op->mem;
}

size_t asock_op_count(const asock_op *op) { return op == NULL ? 0 : op->count; }

size_t asock_op_capacity(const asock_op *op) {
  return op == NULL ? 0 : op->mem_len;
}

size_t asock_op_bytes(const asock_op *op) { return op == NULL ? 0 : op->bytes; }

int asock_op_status(const asock_op *op) {
  return op == NULL ? ASOCK_EINVAL : op->status;
}

asock_op_kind asock_op_last_kind(const asock_op *op) {
  return op == NULL ? ASOCK_OP_NONE : op->kind;
}

int asock_op_is_pending(const asock_op *op) {
  return op != NULL && asock__load_u32(&op->state) == ASOCK__OP_PENDING;
}

int asock_op_completed_synchronously(const asock_op *op) {
  return op != NULL && op->sync != 0;
}

uint64_t asock_op_seq(const asock_op *op) { return op == NULL ? 0 : op->seq; }

asock_socket *asock_op_socket(const asock_op *op) {
  return op == NULL ? NULL : op->socket;
}

asock_socket *asock_op_accepted(const asock_op *op) {
  return op == NULL ? NULL : op->accepted;
}

int asock_op_set_remote(asock_op *op, const struct sockaddr *addr) {
  int err = check_idle(op);
  if (err != 0)
    return err;
  if (addr == NULL)
    return ASOCK_EINVAL;
  if (addr->sa_family == AF_INET)
    memcpy(&op->remote, addr, sizeof(struct sockaddr_in));
  else if (addr->sa_family == AF_INET6)
    memcpy(&op->remote, addr, sizeof(struct sockaddr_in6));
  else
    return ASOCK_EAFNOSUPPORT;
  op->flags |= ASOCK__OPF_HAS_REMOTE;
  return 0;
}

const struct sockaddr *asock_op_remote(const asock_op *op) {
  if (op == NULL || (op->flags & ASOCK__OPF_HAS_REMOTE) == 0)
    return NULL;
  return (const struct sockaddr *)&op->remote;
}

unsigned int asock_op_msg_flags(const asock_op *op) {
  /* Only datagram receives set msg_flags, so that no other operation pays
   * for clearing it. */
  if (op == NULL || (op->kind != ASOCK_OP_RECEIVEFROM &&
                     op->kind != ASOCK_OP_RECEIVEMESSAGEFROM))
    return 0;
  return op->msg_flags;
}

int asock_op_packet_info(const asock_op *op, struct sockaddr_storage *addr,
                         unsigned int *ifindex) {
  if (op == NULL)
    return ASOCK_EINVAL;
  if (op->kind != ASOCK_OP_RECEIVEMESSAGEFROM || op->status != 0 ||
      (asock_op_is_pending(op) && (op->flags & ASOCK__OPF_DELIVERING) == 0))
    return ASOCK_EKIND;
  if (addr != NULL) {
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, &op->local, sizeof(op->local));
  }
  if (ifindex != NULL)
    *ifindex = op->ifindex;
  return 0;
}

int asock_op_set_timeout(asock_op *op, uint64_t timeout_ms) {
  int err = check_idle(op);
  if (err == 0)
    op->timeout_ms = timeout_ms;
  return err;
}

uint64_t asock_op_timeout(const asock_op *op) {
  return op == NULL ? 0 : op->timeout_ms;
}

asock_pool *asock_op_pool(const asock_op *op) {
  return op == NULL ? NULL : op->pool;
}
