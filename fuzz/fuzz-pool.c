/* Fuzzes the buffer pool: the input is a program of acquisitions and
 * releases of slices and ops, right and wrong (double releases, pointers
 * into the middle of a slice, outside the region, from another pool, ops
 * that are not ops), run against a model of which indices are held. Every
 * return code must be the one the model predicts, every slice and op handed
 * out must be the one the free lists' LIFO order predicts, and the counters
 * must agree with the model after every step. */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

#define MAX_SLICES 16
#define MAX_OPS 16

enum { FREE = 0, BY_APP = 1, BY_OP = 2 };

typedef struct model {
  asock_pool *pool;
  size_t slice_size;
  size_t slice_count;
  size_t op_count;
  unsigned int flags;
  /* The free lists, top last. */
  uint32_t free_slices[MAX_SLICES];
  size_t nfree_slices;
  uint32_t free_ops[MAX_OPS];
  size_t nfree_ops;
  unsigned char slice_state[MAX_SLICES];
  unsigned char op_held[MAX_OPS];
  int op_slice[MAX_OPS]; /* the slice an op holds, -1 for none */
  size_t slices_high_water;
  size_t ops_high_water;
  uint64_t slices_failed;
  uint64_t ops_failed;
} model;

/* A second pool, for pointers that belong to another pool. */
static asock_pool *other;
static void *other_slice;
static asock_op *other_op;

static unsigned char *slice_ptr(const model *m, uint32_t index) {
  return m->pool->region.base + (size_t)index * m->slice_size;
}

static size_t held_count(const model *m, const unsigned char *state, size_t n) {
  size_t i, count = 0;
  (void)m;
  for (i = 0; i < n; i++)
    count += state[i] != FREE;
  return count;
}

static void create_pool(model *m, fz_input *in) {
  asock_pool_config cfg;
  uint32_t i;
  uint8_t shape = fz_u8(in);

  asock_pool_config_init(&cfg);
  /* A bad shape is refused and leaves nothing behind. */
  if (shape & 0x80) {
    asock_pool *bad = (asock_pool *)&cfg;
    cfg.slice_size = (shape & 1) ? 0 : 64;
    cfg.flags = (shape & 1) ? 0 : 0x80000000u;
    FZ_CHECK_CODE(asock_pool_create(&bad, &cfg), ASOCK_EINVAL, "bad config");
    FZ_CHECK(bad == NULL, "a refused pool_create left its out-param set");
    asock_pool_config_init(&cfg);
  }
  cfg.slice_size = 1 + fz_u16(in) % 700;
  cfg.slice_count = 1 + fz_u8(in) % MAX_SLICES;
  cfg.op_count = 1 + fz_u8(in) % MAX_OPS;
  cfg.flags = (shape & 1) ? ASOCK_POOL_ZERO_ON_RELEASE : 0;
  FZ_CHECK_CODE(asock_pool_create(&m->pool, &cfg), 0, "pool_create");
  m->slice_size = cfg.slice_size;
  m->slice_count = cfg.slice_count;
  m->op_count = cfg.op_count;
  m->flags = cfg.flags;
  /* Index 0 is on top of both free lists, then 1, 2, ... */
  m->nfree_slices = 0;
  for (i = (uint32_t)m->slice_count; i > 0; i--)
    m->free_slices[m->nfree_slices++] = i - 1;
  m->nfree_ops = 0;
  for (i = (uint32_t)m->op_count; i > 0; i--)
    m->free_ops[m->nfree_ops++] = i - 1;
  memset(m->slice_state, FREE, sizeof(m->slice_state));
  memset(m->op_held, 0, sizeof(m->op_held));
  for (i = 0; i < MAX_OPS; i++)
    m->op_slice[i] = -1;
  m->slices_high_water = 0;
  m->ops_high_water = 0;
  m->slices_failed = 0;
  m->ops_failed = 0;
}

static void check_stats(const model *m) {
  asock_pool_stats st;
  size_t slices = held_count(m, m->slice_state, m->slice_count);
  size_t ops = held_count(m, m->op_held, m->op_count);

  FZ_CHECK_CODE(asock_pool_stats_get(m->pool, &st), 0, "stats_get");
  FZ_CHECK(st.slice_size == m->slice_size, "slice_size %zu, want %zu",
           st.slice_size, m->slice_size);
  FZ_CHECK(st.slices_total == m->slice_count, "slices_total");
  FZ_CHECK(st.ops_total == m->op_count, "ops_total");
  FZ_CHECK(st.slices_in_use == slices, "slices_in_use %zu, model %zu",
           st.slices_in_use, slices);
  FZ_CHECK(st.ops_in_use == ops, "ops_in_use %zu, model %zu", st.ops_in_use,
           ops);
  FZ_CHECK(st.slices_high_water == m->slices_high_water,
           "slices_high_water %zu, model %zu", st.slices_high_water,
           m->slices_high_water);
  FZ_CHECK(st.ops_high_water == m->ops_high_water,
           "ops_high_water %zu, model %zu", st.ops_high_water,
           m->ops_high_water);
  FZ_CHECK(st.slices_failed == m->slices_failed, "slices_failed");
  FZ_CHECK(st.ops_failed == m->ops_failed, "ops_failed");
  FZ_CHECK(st.region_bytes >= m->slice_size * m->slice_count &&
               st.region_bytes % asock__page_size() == 0,
           "region_bytes %zu", st.region_bytes);
  FZ_CHECK(asock_pool_slice_size(m->pool) == m->slice_size, "slice_size()");
}

/* The model's side of taking the top free slice: its index, or -1. */
static int model_take_slice(model *m) {
  size_t in_use;
  if (m->nfree_slices == 0) {
    m->slices_failed++;
    return -1;
  }
  in_use = held_count(m, m->slice_state, m->slice_count) + 1;
  if (in_use > m->slices_high_water)
    m->slices_high_water = in_use;
  return (int)m->free_slices[--m->nfree_slices];
}

static void model_give_slice(model *m, uint32_t index) {
  m->slice_state[index] = FREE;
  m->free_slices[m->nfree_slices++] = index;
}

/* A slice the pool hands out is writable to its last byte and, with
 * ASOCK_POOL_ZERO_ON_RELEASE, all zeros. */
static void check_fresh_slice(const model *m, unsigned char *p) {
  size_t i;
  if (m->flags & ASOCK_POOL_ZERO_ON_RELEASE)
    for (i = 0; i < m->slice_size; i++)
      FZ_CHECK(p[i] == 0, "byte %zu of a fresh slice is %u", i, p[i]);
  memset(p, 0xa5, m->slice_size);
}

static void acquire_slice(model *m) {
  void *slice = (void *)m;
  int want = model_take_slice(m);
  int r = asock_pool_acquire(m->pool, &slice);

  if (want < 0) {
    FZ_CHECK_CODE(r, ASOCK_ENOBUFS, "acquire from an empty pool");
    FZ_CHECK(slice == NULL, "a failed acquire left its out-param set");
    return;
  }
  FZ_CHECK_CODE(r, 0, "acquire");
  FZ_CHECK(slice == slice_ptr(m, (uint32_t)want),
           "acquire gave %p, the free list's top is slice %d at %p", slice,
           want, (void *)slice_ptr(m, (uint32_t)want));
  m->slice_state[want] = BY_APP;
  check_fresh_slice(m, slice);
}

/* Picks an index in [0, n) whose state is `state`, starting from `start`;
 * -1 if there is none. */
static int pick(const unsigned char *states, size_t n, unsigned char state,
                unsigned int start) {
  size_t i;
  for (i = 0; i < n; i++) {
    size_t k = (start + i) % n;
    if (states[k] == state)
      return (int)k;
  }
  return -1;
}

static void release_slice(model *m, fz_input *in) {
  uint8_t how = fz_u8(in);
  uint8_t which = fz_u8(in);
  uint16_t delta = fz_u16(in);
  uintptr_t base = (uintptr_t)m->pool->region.base;
  uintptr_t end = base + m->slice_size * m->slice_count;
  int index;
  char local;

  switch (how % 8) {
  case 0:
  case 1:
  case 2:
    index = pick(m->slice_state, m->slice_count, BY_APP, which);
    if (index < 0)
      break;
    FZ_CHECK_CODE(asock_pool_release(m->pool, slice_ptr(m, (uint32_t)index)), 0,
                  "release of a held slice");
    model_give_slice(m, (uint32_t)index);
    return;
  case 3:
    index = pick(m->slice_state, m->slice_count, FREE, which);
    if (index < 0)
      break;
    FZ_CHECK_CODE(asock_pool_release(m->pool, slice_ptr(m, (uint32_t)index)),
                  ASOCK_ENOTHELD, "release of a free slice");
    return;
  case 4:
    if (m->slice_size < 2)
      break;
    index = (int)(which % m->slice_count);
    FZ_CHECK_CODE(asock_pool_release(m->pool, slice_ptr(m, (uint32_t)index) +
                                                  1 +
                                                  delta % (m->slice_size - 1)),
                  ASOCK_EMIDSLICE, "release of a pointer inside a slice");
    return;
  case 5:
    /* Before the region, or anywhere from its last slice's end on: the
     * pointer is only compared, never followed. */
    FZ_CHECK_CODE(
        asock_pool_release(
            m->pool, (void *)((which & 1) ? base - 1 - delta : end + delta)),
        ASOCK_ENOTSLICE, "release of a pointer outside the region");
    return;
  case 6:
    FZ_CHECK_CODE(
        asock_pool_release(m->pool, (which & 1) ? other_slice : (void *)&local),
        ASOCK_ENOTSLICE, "release of another pool's slice");
    return;
  default:
    FZ_CHECK_CODE(asock_pool_release(m->pool, NULL), ASOCK_EINVAL,
                  "release of NULL");
    FZ_CHECK_CODE(asock_pool_release(NULL, slice_ptr(m, 0)), ASOCK_EINVAL,
                  "release into no pool");
    return;
  }
  /* Nothing of the kind asked for: a release of the first slice then, held
   * by the application or free (a slice an op holds is the op's). */
  if (m->slice_state[0] == BY_OP)
    return;
  FZ_CHECK_CODE(asock_pool_release(m->pool, slice_ptr(m, 0)),
                m->slice_state[0] == BY_APP ? 0 : ASOCK_ENOTHELD,
                "release of slice 0");
  if (m->slice_state[0] == BY_APP)
    model_give_slice(m, 0);
}

static void acquire_op(model *m) {
  asock_op *op = (asock_op *)m;
  int r = asock_op_acquire(m->pool, &op);
  uint32_t index;
  size_t in_use;

  if (m->nfree_ops == 0) {
    m->ops_failed++;
    FZ_CHECK_CODE(r, ASOCK_ENOBUFS, "op_acquire from an empty pool");
    FZ_CHECK(op == NULL, "a failed op_acquire left its out-param set");
    return;
  }
  index = m->free_ops[--m->nfree_ops];
  FZ_CHECK_CODE(r, 0, "op_acquire");
  FZ_CHECK(op == &m->pool->ops[index], "op_acquire gave op %ld, want %u",
           (long)(op - m->pool->ops), index);
  m->op_held[index] = 1;
  in_use = held_count(m, m->op_held, m->op_count);
  if (in_use > m->ops_high_water)
    m->ops_high_water = in_use;
  /* An op comes reset. */
  FZ_CHECK(asock_op_buffer_mode(op) == ASOCK_BUFFER_NONE &&
               asock_op_data(op) == NULL && asock_op_count(op) == 0 &&
               asock_op_user_data(op) == NULL &&
               asock_op_last_kind(op) == ASOCK_OP_NONE &&
               asock_op_status(op) == 0 && !asock_op_is_pending(op) &&
               asock_op_timeout(op) == 0 && asock_op_remote(op) == NULL &&
               asock_op_pool(op) == m->pool,
           "op %u was not reset", index);
}

/* The model's side of an op giving its slice back. */
static void model_op_drop_slice(model *m, uint32_t index) {
  if (m->op_slice[index] >= 0)
    model_give_slice(m, (uint32_t)m->op_slice[index]);
  m->op_slice[index] = -1;
}

static void release_op(model *m, fz_input *in) {
  uint8_t how = fz_u8(in);
  uint8_t which = fz_u8(in);
  int index;

  switch (how % 6) {
  case 0:
  case 1:
  case 2:
    index = pick(m->op_held, m->op_count, 1, which);
    if (index < 0)
      index = (int)(which % m->op_count);
    if (m->op_held[index]) {
      FZ_CHECK_CODE(asock_op_release(m->pool, &m->pool->ops[index]), 0,
                    "op_release");
      model_op_drop_slice(m, (uint32_t)index);
      m->op_held[index] = 0;
      m->free_ops[m->nfree_ops++] = (uint32_t)index;
    } else {
      FZ_CHECK_CODE(asock_op_release(m->pool, &m->pool->ops[index]),
                    ASOCK_ENOTHELD, "op_release of a free op");
    }
    return;
  case 3:
    index = (int)(which % m->op_count);
    FZ_CHECK_CODE(
        asock_op_release(m->pool, (asock_op *)((uintptr_t)&m->pool->ops[index] +
                                               1 + which % 64)),
        ASOCK_EFOREIGN, "op_release of a pointer inside an op");
    return;
  case 4:
    FZ_CHECK_CODE(
        asock_op_release(m->pool,
                         (which & 1)
                             ? other_op
                             : (asock_op *)((uintptr_t)m->pool->ops +
                                            sizeof(asock_op) * m->op_count)),
        ASOCK_EFOREIGN, "op_release of another pool's op");
    return;
  default:
    FZ_CHECK_CODE(asock_op_release(m->pool, NULL), ASOCK_EINVAL,
                  "op_release of NULL");
    FZ_CHECK_CODE(asock_op_release(NULL, &m->pool->ops[0]), ASOCK_EINVAL,
                  "op_release into no pool");
    return;
  }
}

/* Gives a held op a slice, or changes its buffer to the caller's memory or
 * none, each of which gives its slice back. */
static void op_buffer(model *m, fz_input *in) {
  static unsigned char user[64];
  uint8_t how = fz_u8(in);
  int index = pick(m->op_held, m->op_count, 1, fz_u8(in));
  asock_op *op;
  int want;

  if (index < 0)
    return;
  op = &m->pool->ops[index];
  switch (how % 4) {
  case 0:
  case 1:
    if (m->op_slice[index] >= 0) {
      FZ_CHECK_CODE(asock_op_take_slice(op), 0, "take_slice, holding one");
      FZ_CHECK(asock_op_data(op) == slice_ptr(m, (uint32_t)m->op_slice[index]),
               "take_slice changed the slice an op held");
      return;
    }
    want = model_take_slice(m);
    FZ_CHECK_CODE(asock_op_take_slice(op), want < 0 ? ASOCK_ENOBUFS : 0,
                  "take_slice");
    if (want < 0) {
      FZ_CHECK(asock_op_buffer_mode(op) != ASOCK_BUFFER_SLICE,
               "a failed take_slice left a slice");
      return;
    }
    FZ_CHECK(asock_op_data(op) == slice_ptr(m, (uint32_t)want) &&
                 asock_op_buffer_mode(op) == ASOCK_BUFFER_SLICE &&
                 asock_op_count(op) == m->slice_size,
             "take_slice gave the wrong slice");
    m->slice_state[want] = BY_OP;
    m->op_slice[index] = want;
    check_fresh_slice(m, asock_op_data(op));
    return;
  case 2:
    FZ_CHECK_CODE(asock_op_set_buffer(op, user, sizeof(user), how % 16, 8), 0,
                  "set_buffer");
    model_op_drop_slice(m, (uint32_t)index);
    return;
  default:
    FZ_CHECK_CODE(asock_op_clear_buffer(op), 0, "clear_buffer");
    model_op_drop_slice(m, (uint32_t)index);
    return;
  }
}

/* Writes every held slice whole: a slice the pool still thinks free is
 * poisoned under AddressSanitizer, and a slice past the region hits the
 * guard page. */
static void touch(const model *m) {
  size_t i;
  for (i = 0; i < m->slice_count; i++)
    if (m->slice_state[i] != FREE)
      memset(slice_ptr(m, (uint32_t)i), (int)i, m->slice_size);
}

/* Releases everything the model says is held and destroys the pool. */
static void drain_and_destroy(model *m) {
  size_t i;
  for (i = 0; i < m->op_count; i++)
    if (m->op_held[i]) {
      FZ_CHECK_CODE(asock_op_release(m->pool, &m->pool->ops[i]), 0,
                    "op_release at the end");
      model_op_drop_slice(m, (uint32_t)i);
      m->op_held[i] = 0;
      m->free_ops[m->nfree_ops++] = (uint32_t)i;
    }
  for (i = 0; i < m->slice_count; i++)
    if (m->slice_state[i] == BY_APP) {
      FZ_CHECK_CODE(asock_pool_release(m->pool, slice_ptr(m, (uint32_t)i)), 0,
                    "release at the end");
      model_give_slice(m, (uint32_t)i);
    }
  check_stats(m);
  FZ_CHECK_CODE(asock_pool_destroy(m->pool), 0, "destroy of an idle pool");
  m->pool = NULL;
}

static void try_destroy(model *m, fz_input *in) {
  int busy = held_count(m, m->slice_state, m->slice_count) > 0 ||
             held_count(m, m->op_held, m->op_count) > 0;
  if (busy) {
    FZ_CHECK_CODE(asock_pool_destroy(m->pool), ASOCK_EBUSY,
                  "destroy while slices or ops are held");
    return;
  }
  FZ_CHECK_CODE(asock_pool_destroy(m->pool), 0, "destroy");
  m->pool = NULL;
  create_pool(m, in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_input in;
  model m;
  asock_pool_config cfg;
  unsigned int steps = 0;

  in.p = data;
  in.n = size;
  asock_pool_config_init(&cfg);
  cfg.slice_size = 64;
  cfg.slice_count = 1;
  cfg.op_count = 1;
  FZ_CHECK_CODE(asock_pool_create(&other, &cfg), 0, "other pool");
  FZ_CHECK_CODE(asock_pool_acquire(other, &other_slice), 0, "other slice");
  FZ_CHECK_CODE(asock_op_acquire(other, &other_op), 0, "other op");

  memset(&m, 0, sizeof(m));
  create_pool(&m, &in);
  while (!fz_done(&in) && steps++ < 4096) {
    switch (fz_u8(&in) % 9) {
    case 0:
      acquire_slice(&m);
      break;
    case 1:
      release_slice(&m, &in);
      break;
    case 2:
      acquire_op(&m);
      break;
    case 3:
      release_op(&m, &in);
      break;
    case 4:
      op_buffer(&m, &in);
      break;
    case 5:
      touch(&m);
      break;
    case 6:
      try_destroy(&m, &in);
      break;
    default:
      break;
    }
    check_stats(&m);
  }
  drain_and_destroy(&m);

  FZ_CHECK_CODE(asock_pool_destroy(other), ASOCK_EBUSY, "destroy, busy");
  FZ_CHECK_CODE(asock_op_release(other, other_op), 0, "other op release");
  FZ_CHECK_CODE(asock_pool_release(other, other_slice), 0, "other release");
  FZ_CHECK_CODE(asock_pool_destroy(other), 0, "other destroy");
  return 0;
}
