/* The pool (src/pool.c): its lock-free index stacks (src/stack.c) and the
 * region its slices live in (src/unix/region.c, src/win/region.c). */
#ifndef ASOCK_POOL_H
#define ASOCK_POOL_H

#include "base.h"

/* ---- index stack (src/stack.c) ----------------------------------------- */

/* A lock-free LIFO of the indices 0..count-1, the free list behind both the
 * slices and the ops of a pool. The head packs a 32-bit ABA tag above the
 * top index plus one (0 is empty); `held` marks the indices out of the stack
 * so that a double release is detected instead of corrupting the list. */
typedef struct asock__stack {
  asock__atomic_u64 head;
  char pad_[ASOCK__CACHE_LINE - sizeof(asock__atomic_u64)];
  asock__atomic_u32 *next;
  asock__atomic_u32 *held;
  uint32_t count;
} asock__stack;

/* Allocates next[] and held[] and pushes every index, 0 on top. */
int asock__stack_init(asock__stack *s, uint32_t count);
void asock__stack_free(asock__stack *s);
/* Pops an index into *index: 0, or ASOCK_ENOBUFS when empty. */
int asock__stack_pop(asock__stack *s, uint32_t *index);
/* Pushes a held index back: 0, or ASOCK_ENOTHELD if it is not held. */
int asock__stack_push(asock__stack *s, uint32_t index);
/* 1 if the index is out of the stack. */
int asock__stack_is_held(const asock__stack *s, uint32_t index);

/* ---- memory region (src/unix/region.c, src/win/region.c) --------------- */

/* The pool's slices live in one region mapped straight from the OS, with an
 * inaccessible guard page on each side. */
typedef struct asock__region {
  unsigned char *base; /* first usable byte, page-aligned */
  size_t len;          /* usable bytes, a multiple of the page size */
  void *mapping;       /* the whole mapping, guards included */
  size_t mapping_len;
  int locked;
  asock_huge_pages huge_pages;
} asock__region;

/* A region that maps nothing (yet). */
static inline void asock__region_clear(asock__region *r) {
  r->base = NULL;
  r->len = 0;
  r->mapping = NULL;
  r->mapping_len = 0;
  r->locked = 0;
  r->huge_pages = ASOCK_HUGE_PAGES_NONE;
}

/* Maps at least len usable bytes. flags are the pool's ASOCK_POOL_LOCK and
 * ASOCK_POOL_HUGE_PAGES; what the OS refuses is left out and recorded in
 * the region. Returns 0 or ASOCK_ENOMEM. */
int asock__region_map(asock__region *r, size_t len, unsigned int flags);
void asock__region_unmap(asock__region *r);
size_t asock__page_size(void);

/* Test hook: ASOCK_POOL_LOCK and ASOCK_POOL_HUGE_PAGES bits set here make
 * the platform code behave as if the OS refused them, so that the fallback
 * can be tested on a machine where they succeed. */
extern unsigned int asock__region_refuse;

/* ---- completion ordering (src/seq.c) ----------------------------------- */

/* Test hook: called by asock_seq_pop() while it holds the stream, so that a
 * test can show deterministically what a second consumer meets. NULL
 * outside tests. */
extern void (*asock__seq_pop_hook)(asock_seq *seq);

/* ---- pool (src/pool.c) ------------------------------------------------- */

struct asock_pool {
  asock__stack slices; /* free slices; its head has a cache line of its own */
  asock__stack free_ops;
  asock__atomic_u64 slices_in_use;
  asock__atomic_u64 slices_high_water;
  asock__atomic_u64 slices_failed;
  asock__atomic_u64 ops_in_use;
  asock__atomic_u64 ops_high_water;
  asock__atomic_u64 ops_failed;
  asock__region region;
  size_t slice_size;
  size_t slice_count;
  size_t op_count;
  size_t socket_quota;
  unsigned int flags;
  asock_op *ops; /* the fixed array of op_count ops */
  /* Per slice, the socket whose quota an application-owned slice counts
   * against (asock_op_detach_slice()), until asock_pool_release(); NULL
   * for every other slice. */
  asock__atomic_ptr *owners;
  /* The loops over the pool, linked through pool_next and pool_prev. Each
   * keeps a few free slices of its own (asock_loop.slices_cached), which
   * the statistics count as free: they are summed over the loops when
   * asked for, so that a loop takes and gives them without an atomic
   * operation. */
  uv_mutex_t loops_lock;
  struct asock_loop *loops;
};

/* Finds the index of the slice that starts at p: 0, ASOCK_ENOTSLICE or
 * ASOCK_EMIDSLICE. */
int asock__pool_slice_index(const asock_pool *pool, const void *p,
                            uint32_t *index);

#endif /* ASOCK_POOL_H */
