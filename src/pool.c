/* The buffer pool: one region cut into fixed slices, and a fixed array of
 * operation objects, each behind a lock-free free list. Everything is
 * allocated in asock_pool_create(); after that the pool never allocates. */
#include <string.h>

#include "asan.h"
#include "internal.h"

#define ASOCK__POOL_FLAGS                                                      \
  (ASOCK_POOL_LOCK | ASOCK_POOL_HUGE_PAGES | ASOCK_POOL_ZERO_ON_RELEASE |      \
   ASOCK_POOL_FAIL_FAST)

/* The defaults, in this asock's whole struct. */
static void config_defaults(asock_pool_config *config) {
  memset(config, 0, sizeof(*config));
  config->struct_size = sizeof(*config);
  config->slice_size = 16384;
  config->slice_count = 1024;
  config->op_count = 1024;
  config->socket_quota = 0;
  config->flags = 0;
}

void asock_pool_config_init_size(asock_pool_config *config,
                                 size_t struct_size) {
  asock_pool_config defaults;

  if (config == NULL || struct_size < sizeof(config->struct_size) ||
      struct_size > sizeof(defaults))
    return;
  config_defaults(&defaults);
  defaults.struct_size = struct_size;
  memcpy(config, &defaults, struct_size);
}

/* The program's config over the defaults: the fields its struct has are
 * its own, the rest keep their defaults. 0, or ASOCK_EINVAL for a size no
 * config has. */
static int config_read(const asock_pool_config *in, asock_pool_config *out) {
  size_t size = in->struct_size;

  config_defaults(out);
  if (size < sizeof(in->struct_size))
    return ASOCK_EINVAL;
  if (size > sizeof(*out)) {
    /* A newer program's struct: what this asock does not know must be
     * unset. */
    const unsigned char *extra = (const unsigned char *)in + sizeof(*out);
    size_t i;
    for (i = 0; i < size - sizeof(*out); i++)
      if (extra[i] != 0)
        return ASOCK_EINVAL;
    size = sizeof(*out);
  }
  memcpy(out, in, size);
  out->struct_size = sizeof(*out);
  return 0;
}

static int check_config(const asock_pool_config *c) {
  if (c->slice_size == 0 || c->slice_count == 0 || c->op_count == 0)
    return ASOCK_EINVAL;
  if (c->slice_count >= UINT32_MAX || c->op_count >= UINT32_MAX)
    return ASOCK_EINVAL;
  if (c->slice_size > (size_t)-1 / c->slice_count)
    return ASOCK_EINVAL;
  /* Leave room to round the region up to a huge page. */
  if (c->slice_size * c->slice_count > (size_t)-1 / 2)
    return ASOCK_EINVAL;
  if ((c->flags & ~ASOCK__POOL_FLAGS) != 0)
    return ASOCK_EINVAL;
  return 0;
}

int asock_pool_create(asock_pool **pool_out,
                      const asock_pool_config *program_config) {
  asock_pool_config shape;
  const asock_pool_config *config = &shape;
  asock_pool *pool;
  size_t i;
  int err;

  if (pool_out == NULL)
    return ASOCK_EINVAL;
  *pool_out = NULL;
  if (program_config == NULL)
    config_defaults(&shape);
  else if (config_read(program_config, &shape) != 0)
    return ASOCK_EINVAL;
  err = check_config(config);
  if (err != 0)
    return err;

  pool = asock__calloc(1, sizeof(*pool));
  if (pool == NULL)
    return ASOCK_ENOMEM;
  if (asock__uv_mutex_init(&pool->loops_lock) != 0) {
    asock__free(pool);
    return ASOCK_ENOMEM;
  }
  pool->slice_size = config->slice_size;
  pool->slice_count = config->slice_count;
  pool->op_count = config->op_count;
  pool->socket_quota = config->socket_quota;
  pool->flags = config->flags;

  err = asock__stack_init(&pool->slices, (uint32_t)config->slice_count);
  if (err != 0)
    goto fail;
  err = asock__stack_init(&pool->free_ops, (uint32_t)config->op_count);
  if (err != 0)
    goto fail;
  pool->ops = asock__calloc(config->op_count, sizeof(*pool->ops));
  pool->owners = asock__calloc(config->slice_count, sizeof(*pool->owners));
  if (pool->ops == NULL || pool->owners == NULL) {
    err = ASOCK_ENOMEM;
    goto fail;
  }
  for (i = 0; i < config->slice_count; i++)
    asock__store_ptr(&pool->owners[i], NULL);
  err = asock__region_map(
      &pool->region, config->slice_size * config->slice_count, config->flags);
  if (err != 0)
    goto fail;

  for (i = 0; i < config->op_count; i++) {
    pool->ops[i].pool = pool;
    pool->ops[i].index = (uint32_t)i;
    asock__store_u32(&pool->ops[i].state, ASOCK__OP_IDLE);
    asock__op_reset(&pool->ops[i]);
  }
  asock__poison(pool->region.base, pool->region.len);
  *pool_out = pool;
  return 0;

fail:
  asock__free((void *)pool->owners);
  asock__free(pool->ops);
  asock__stack_free(&pool->free_ops);
  asock__stack_free(&pool->slices);
  uv_mutex_destroy(&pool->loops_lock);
  asock__free(pool);
  return err;
}

int asock_pool_destroy(asock_pool *pool) {
  int loops;

  if (pool == NULL)
    return ASOCK_EINVAL;
  uv_mutex_lock(&pool->loops_lock);
  loops = pool->loops != NULL;
  uv_mutex_unlock(&pool->loops_lock);
  /* A loop still open over the pool uses it, even when it holds nothing. */
  if (loops || asock__load_u64(&pool->slices_in_use) != 0 ||
      asock__load_u64(&pool->ops_in_use) != 0)
    return ASOCK_EBUSY;
  asock__unpoison(pool->region.base, pool->region.len);
  asock__region_unmap(&pool->region);
  asock__free((void *)pool->owners);
  asock__free(pool->ops);
  asock__stack_free(&pool->free_ops);
  asock__stack_free(&pool->slices);
  uv_mutex_destroy(&pool->loops_lock);
  asock__free(pool);
  return 0;
}

int asock_pool_acquire(asock_pool *pool, void **slice_out) {
  if (slice_out == NULL)
    return ASOCK_EINVAL;
  *slice_out = NULL;
  if (pool == NULL)
    return ASOCK_EINVAL;
  if (asock__pool_take(pool, slice_out) != 0) {
    asock__add_u64_relaxed(&pool->slices_failed, 1);
    return ASOCK_ENOBUFS;
  }
  return 0;
}

int asock__pool_take(asock_pool *pool, void **slice_out) {
  uint32_t index;
  unsigned char *slice;

  if (asock__stack_pop(&pool->slices, &index) != 0)
    return ASOCK_ENOBUFS;
  asock__max_u64(&pool->slices_high_water,
                 asock__add_u64(&pool->slices_in_use, 1) + 1);
  slice = pool->region.base + (size_t)index * pool->slice_size;
  asock__unpoison(slice, pool->slice_size);
  *slice_out = slice;
  return 0;
}

int asock__pool_slice_index(const asock_pool *pool, const void *p,
                            uint32_t *index) {
  uintptr_t addr = (uintptr_t)p;
  uintptr_t base = (uintptr_t)pool->region.base;
  uintptr_t offset;

  if (addr < base || addr - base >= pool->slice_size * pool->slice_count)
    return ASOCK_ENOTSLICE;
  offset = addr - base;
  if (offset % pool->slice_size != 0)
    return ASOCK_EMIDSLICE;
  *index = (uint32_t)(offset / pool->slice_size);
  return 0;
}

int asock_pool_release(asock_pool *pool, void *slice) {
  uint32_t index;
  int err;

  if (pool == NULL || slice == NULL)
    return ASOCK_EINVAL;
  err = asock__pool_slice_index(pool, slice, &index);
  if (err != 0)
    return err;
  if (!asock__stack_is_held(&pool->slices, index))
    return ASOCK_ENOTHELD;
  /* A slice the application took from a receive counts against its socket
   * until now. Exchanged, so that two racing releases of one slice cannot
   * both uncharge it. */
  if (asock__load_ptr(&pool->owners[index]) != NULL) {
    asock_socket *owner = asock__xchg_ptr(&pool->owners[index], NULL);
    if (owner != NULL)
      asock__socket_release(owner, ASOCK__REF_SLICE);
  }
  /* Scrub and poison before the slice becomes visible to other threads. A
   * racing double release of the same slice could scrub it twice, which is
   * harmless; only one of the two pushes below succeeds. */
  if (pool->flags & ASOCK_POOL_ZERO_ON_RELEASE)
    memset(slice, 0, pool->slice_size);
  asock__poison(slice, pool->slice_size);
  /* Count the slice out before it is pushed, so that in_use never exceeds
   * the slices really held, even for a moment. */
  asock__add_u64(&pool->slices_in_use, (uint64_t)-1);
  err = asock__stack_push(&pool->slices, index);
  if (err != 0)
    asock__add_u64(&pool->slices_in_use, 1);
  return err;
}

size_t asock_pool_slice_size(const asock_pool *pool) {
  return pool == NULL ? 0 : pool->slice_size;
}

int asock_pool_stats_get_size(const asock_pool *pool, asock_pool_stats *out,
                              size_t struct_size) {
  asock_pool_stats whole;
  asock_pool_stats *stats = &whole;

  if (pool == NULL || out == NULL || struct_size == 0)
    return ASOCK_EINVAL;
  memset(stats, 0, sizeof(*stats));
  stats->slice_size = pool->slice_size;
  stats->slices_total = pool->slice_count;
  /* Slices loops keep free for their next receives are not in use. The
   * pool is not changed: its lock is taken through a cast. */
  {
    uv_mutex_t *lock = (uv_mutex_t *)&pool->loops_lock;
    const asock_loop *loop;
    uint64_t cached = 0;

    uv_mutex_lock(lock);
    for (loop = pool->loops; loop != NULL; loop = loop->pool_next)
      cached += asock__load_u32_relaxed(&loop->slices_cached) +
                asock__load_u32_relaxed(&loop->slices_ringed);
    uv_mutex_unlock(lock);
    stats->slices_in_use =
        (size_t)(asock__load_u64(&pool->slices_in_use) - cached);
  }
  stats->slices_high_water = (size_t)asock__load_u64(&pool->slices_high_water);
  stats->slices_failed = asock__load_u64(&pool->slices_failed);
  stats->ops_total = pool->op_count;
  stats->ops_in_use = (size_t)asock__load_u64(&pool->ops_in_use);
  stats->ops_high_water = (size_t)asock__load_u64(&pool->ops_high_water);
  stats->ops_failed = asock__load_u64(&pool->ops_failed);
  stats->region_bytes = pool->region.len;
  stats->locked = pool->region.locked;
  stats->huge_pages = pool->region.huge_pages;
  /* A program built with fewer counters gets those it knows. */
  memcpy(out, stats,
         struct_size < sizeof(*stats) ? struct_size : sizeof(*stats));
  return 0;
}
