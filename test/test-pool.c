/* The buffer pool: shape, exhaustion, misuse, flags, guard pages, poisoning
 * and thread safety. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asan.h"
#include "internal.h"
#include "tcp-util.h"
#include "test.h"

#ifndef _WIN32
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

static asock_pool *make_pool(size_t slice_size, size_t slices, size_t ops,
                             unsigned int flags) {
  asock_pool_config config;
  asock_pool *pool = NULL;
  asock_pool_config_init(&config);
  config.slice_size = slice_size;
  config.slice_count = slices;
  config.op_count = ops;
  config.flags = flags;
  ck_assert_asock(asock_pool_create(&pool, &config), 0);
  ck_assert_ptr_nonnull(pool);
  return pool;
}

static void teardown(void) { asock__region_refuse = 0; }

#ifndef _WIN32
/* Whether check runs each test in a child process (CK_FORK=no turns it off,
 * as the valgrind pass in CI does). */
static int test_forks(void) {
  const char *env = getenv("CK_FORK");
  return env == NULL || strcmp(env, "no") != 0;
}
#endif

START_TEST(defaults) {
  asock_pool *pool = NULL;
  asock_pool_stats st;
  ck_assert_asock(asock_pool_create(&pool, NULL), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slice_size, 16384);
  ck_assert_uint_eq(st.slices_total, 1024);
  ck_assert_uint_eq(st.ops_total, 1024);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_uint_eq(st.region_bytes, 16384 * 1024);
  ck_assert_int_eq(st.locked, 0);
  ck_assert_int_eq(st.huge_pages, ASOCK_HUGE_PAGES_NONE);
  ck_assert_uint_eq(asock_pool_slice_size(pool), 16384);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

START_TEST(bad_configs_are_refused) {
  asock_pool_config c;
  asock_pool *pool = (asock_pool *)&c;

  ck_assert_asock(asock_pool_create(NULL, NULL), ASOCK_EINVAL);
  asock_pool_config_init(&c);
  c.slice_size = 0;
  ck_assert_asock(asock_pool_create(&pool, &c), ASOCK_EINVAL);
  ck_assert_ptr_null(pool);
  asock_pool_config_init(&c);
  c.slice_count = 0;
  ck_assert_asock(asock_pool_create(&pool, &c), ASOCK_EINVAL);
  asock_pool_config_init(&c);
  c.op_count = 0;
  ck_assert_asock(asock_pool_create(&pool, &c), ASOCK_EINVAL);
  asock_pool_config_init(&c);
  c.slice_size = SIZE_MAX / 2;
  c.slice_count = 3;
  ck_assert_asock(asock_pool_create(&pool, &c), ASOCK_EINVAL);
  asock_pool_config_init(&c);
  c.flags = 0x100;
  ck_assert_asock(asock_pool_create(&pool, &c), ASOCK_EINVAL);
  ck_assert_ptr_null(pool);
}
END_TEST

/* A program built against an older asock_pool_config, one that ended
 * before socket_quota: its struct is shorter, and whatever lies beyond it
 * is not the program's. The fields it lacks take their defaults. */
typedef struct older_config {
  size_t struct_size;
  size_t slice_size;
  size_t slice_count;
  size_t op_count;
} older_config;

START_TEST(an_older_config_gets_defaults_for_the_rest) {
  union {
    asock_pool_config now;
    older_config old;
    unsigned char bytes[sizeof(asock_pool_config) + 16];
  } u;
  asock_pool *pool = NULL;
  asock_pool_stats st;
  void *slice[3];
  int i;

  /* What lies past the older struct is garbage the library must not read:
   * read as flags, it would be refused. */
  memset(&u, 0xA5, sizeof(u));
  u.old.struct_size = sizeof(older_config);
  u.old.slice_size = 512;
  u.old.slice_count = 3;
  u.old.op_count = 2;
  ck_assert_asock(asock_pool_create(&pool, &u.now), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slice_size, 512);
  ck_assert_uint_eq(st.slices_total, 3);
  ck_assert_uint_eq(st.ops_total, 2);
  ck_assert_int_eq(st.locked, 0);
  for (i = 0; i < 3; i++)
    ck_assert_asock(asock_pool_acquire(pool, &slice[i]), 0);
  for (i = 0; i < 3; i++)
    ck_assert_asock(asock_pool_release(pool, slice[i]), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);

  /* init fills only the size it is given. */
  memset(&u, 0xA5, sizeof(u));
  asock_pool_config_init_size(&u.now, sizeof(older_config));
  ck_assert_uint_eq(u.old.struct_size, sizeof(older_config));
  ck_assert_uint_eq(u.old.slice_size, 16384);
  ck_assert_uint_eq(u.old.op_count, 1024);
  ck_assert_uint_eq(u.bytes[sizeof(older_config)], 0xA5);
  ck_assert_uint_eq(u.bytes[sizeof(u) - 1], 0xA5);
}
END_TEST

/* A newer program's struct is longer: what this asock does not know must be
 * unset; a size no config has is refused. Counters go only as far as the
 * program's struct. */
START_TEST(struct_sizes_are_checked) {
  union {
    asock_pool_config now;
    unsigned char bytes[sizeof(asock_pool_config) + 16];
  } u;
  unsigned char st[sizeof(asock_pool_stats) + 8];
  asock_pool *pool = NULL;

  memset(&u, 0, sizeof(u));
  asock_pool_config_init(&u.now);
  ck_assert_uint_eq(u.now.struct_size, sizeof(asock_pool_config));
  u.now.slice_size = 1024;
  u.now.slice_count = 4;
  u.now.op_count = 4;
  u.now.struct_size = sizeof(u);
  ck_assert_asock(asock_pool_create(&pool, &u.now), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  u.bytes[sizeof(asock_pool_config) + 3] = 1;
  ck_assert_asock(asock_pool_create(&pool, &u.now), ASOCK_EINVAL);
  ck_assert_ptr_null(pool);
  u.now.struct_size = sizeof(size_t) - 1;
  ck_assert_asock(asock_pool_create(&pool, &u.now), ASOCK_EINVAL);
  u.now.struct_size = 0;
  ck_assert_asock(asock_pool_create(&pool, &u.now), ASOCK_EINVAL);
  /* init refuses what it cannot fill. */
  memset(&u, 0xA5, sizeof(u));
  asock_pool_config_init_size(&u.now, sizeof(u));
  ck_assert_uint_eq(u.bytes[0], 0xA5);
  asock_pool_config_init_size(&u.now, 1);
  ck_assert_uint_eq(u.bytes[0], 0xA5);
  asock_pool_config_init_size(NULL, sizeof(u.now));

  ck_assert_asock(asock_pool_create(&pool, NULL), 0);
  memset(st, 0xA5, sizeof(st));
  ck_assert_asock(
      asock_pool_stats_get_size(pool, (asock_pool_stats *)(void *)st,
                                offsetof(asock_pool_stats, slices_in_use)),
      0);
  ck_assert_uint_eq(((asock_pool_stats *)(void *)st)->slices_total, 1024);
  ck_assert_uint_eq(st[offsetof(asock_pool_stats, slices_in_use)], 0xA5);
  ck_assert_asock(
      asock_pool_stats_get_size(pool, (asock_pool_stats *)(void *)st, 0),
      ASOCK_EINVAL);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

static int cmp_ptr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t) * (void *const *)a;
  uintptr_t y = (uintptr_t) * (void *const *)b;
  return x < y ? -1 : x > y;
}

START_TEST(slices_are_contiguous_and_page_aligned) {
  enum { N = 37, SIZE = 192 };
  asock_pool *pool = make_pool(SIZE, N, 4, 0);
  void *slices[N];
  void *extra = (void *)1;
  asock_pool_stats st;
  size_t i;

  for (i = 0; i < N; i++)
    ck_assert_asock(asock_pool_acquire(pool, &slices[i]), 0);
  ck_assert_asock(asock_pool_acquire(pool, &extra), ASOCK_ENOBUFS);
  ck_assert_ptr_null(extra);
  qsort(slices, N, sizeof(slices[0]), cmp_ptr);
  ck_assert_uint_eq((uintptr_t)slices[0] % asock__page_size(), 0);
  for (i = 1; i < N; i++)
    ck_assert_uint_eq((uintptr_t)slices[i] - (uintptr_t)slices[i - 1], SIZE);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, N);
  ck_assert_uint_eq(st.slices_high_water, N);
  ck_assert_uint_eq(st.slices_failed, 1);
  ck_assert_uint_eq(st.region_bytes % asock__page_size(), 0);
  ck_assert_uint_ge(st.region_bytes, (size_t)N * SIZE);
  /* Every byte of every slice is writable. */
  for (i = 0; i < N; i++)
    memset(slices[i], (int)i, SIZE);
  for (i = 0; i < N; i++)
    ck_assert_asock(asock_pool_release(pool, slices[i]), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_uint_eq(st.slices_high_water, N);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

START_TEST(release_misuse_is_an_error) {
  asock_pool *pool = make_pool(128, 4, 1, 0);
  asock_pool *other = make_pool(128, 4, 1, 0);
  asock_pool_stats before, after;
  unsigned char local[16];
  void *slice;
  void *again;

  ck_assert_asock(asock_pool_acquire(pool, &slice), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &before), 0);
  ck_assert_asock(asock_pool_release(pool, local), ASOCK_ENOTSLICE);
  ck_assert_asock(asock_pool_release(other, slice), ASOCK_ENOTSLICE);
  ck_assert_asock(asock_pool_release(pool, (char *)slice + 1), ASOCK_EMIDSLICE);
  ck_assert_asock(asock_pool_release(pool, (char *)slice + 127),
                  ASOCK_EMIDSLICE);
  ck_assert_asock(asock_pool_release(pool, (char *)slice + 128 * 4),
                  ASOCK_ENOTSLICE);
  ck_assert_asock(asock_pool_release(pool, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_pool_release(NULL, slice), ASOCK_EINVAL);
  ck_assert_asock(asock_pool_acquire(NULL, &again), ASOCK_EINVAL);
  ck_assert_ptr_null(again);
  ck_assert_asock(asock_pool_acquire(pool, NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_pool_stats_get(pool, &after), 0);
  ck_assert_uint_eq(after.slices_in_use, before.slices_in_use);

  ck_assert_asock(asock_pool_release(pool, slice), 0);
  ck_assert_asock(asock_pool_release(pool, slice), ASOCK_ENOTHELD);
  /* A never-acquired slice is not held either. */
  ck_assert_asock(asock_pool_release(pool, (char *)slice + 128 * 3),
                  ASOCK_ENOTHELD);
  ck_assert_asock(asock_pool_stats_get(pool, &after), 0);
  ck_assert_uint_eq(after.slices_in_use, 0);
  /* The double release did not link the slice in twice: four acquisitions
   * give four different slices and the fifth fails. */
  {
    void *s[4];
    int i, j;
    for (i = 0; i < 4; i++)
      ck_assert_asock(asock_pool_acquire(pool, &s[i]), 0);
    for (i = 0; i < 4; i++)
      for (j = i + 1; j < 4; j++)
        ck_assert_ptr_ne(s[i], s[j]);
    ck_assert_asock(asock_pool_acquire(pool, &again), ASOCK_ENOBUFS);
    for (i = 0; i < 4; i++)
      ck_assert_asock(asock_pool_release(pool, s[i]), 0);
  }
  ck_assert_asock(asock_pool_destroy(other), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

START_TEST(destroy_refuses_while_held) {
  asock_pool *pool = make_pool(64, 2, 2, 0);
  void *slice;
  asock_op *op;

  ck_assert_asock(asock_pool_destroy(NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_pool_acquire(pool, &slice), 0);
  ck_assert_asock(asock_pool_destroy(pool), ASOCK_EBUSY);
  ck_assert_asock(asock_pool_release(pool, slice), 0);
  ck_assert_asock(asock_op_acquire(pool, &op), 0);
  ck_assert_asock(asock_pool_destroy(pool), ASOCK_EBUSY);
  ck_assert_asock(asock_op_release(pool, op), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

/* Each loop keeps a few free slices for its next receives: the statistics
 * count them as free, summed over the pool's loops, and a pool is not
 * destroyed while a loop over it is open, even one that holds nothing. */
START_TEST(loops_keep_free_slices) {
  /* 64 slices: each loop keeps up to a sixteenth of them, 4. */
  asock_pool *pool = make_pool(64, 64, 2, 0);
  asock_pool_stats st;
  asock_loop *a;
  asock_loop *b;
  void *s[3];
  void *again;

  ck_assert_asock(asock_loop_create(&a, pool, NULL), 0);
  ck_assert_asock(asock_loop_create(&b, pool, NULL), 0);
  ck_assert_asock(asock__loop_take_slice(a, &s[0]), 0);
  ck_assert_asock(asock__loop_take_slice(a, &s[1]), 0);
  ck_assert_asock(asock__loop_take_slice(b, &s[2]), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 3);
  asock__loop_give_slice(a, s[0]);
  asock__loop_give_slice(b, s[2]);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 1);
  ck_assert_uint_eq(st.slices_high_water, 3 + tu_lent(a) + tu_lent(b));
  /* A loop's next taker gets the slice it kept last. */
  ck_assert_asock(asock__loop_take_slice(a, &again), 0);
  ck_assert_ptr_eq(again, s[0]);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 2);
  asock__loop_give_slice(a, again);
  /* Closed, a loop gives its kept slices back and is counted no more. */
  ck_assert_asock(asock_loop_close(a), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 1);
  ck_assert_asock(asock_pool_destroy(pool), ASOCK_EBUSY);
  ck_assert_asock(asock_pool_release(pool, s[1]), 0);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_asock(asock_pool_destroy(pool), ASOCK_EBUSY);
  ck_assert_asock(asock_loop_close(b), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

START_TEST(zero_on_release) {
  asock_pool *pool = make_pool(256, 1, 1, ASOCK_POOL_ZERO_ON_RELEASE);
  unsigned char *slice;
  unsigned char *again;
  size_t i;

  ck_assert_asock(asock_pool_acquire(pool, (void **)&slice), 0);
  memset(slice, 0xA5, 256);
  ck_assert_asock(asock_pool_release(pool, slice), 0);
  ck_assert_asock(asock_pool_acquire(pool, (void **)&again), 0);
  ck_assert_ptr_eq(again, slice);
  for (i = 0; i < 256; i++)
    ck_assert_uint_eq(again[i], 0);
  ck_assert_asock(asock_pool_release(pool, again), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

START_TEST(refused_flags_fall_back) {
  asock_pool *pool;
  asock_pool_stats st;
  void *slice;

  asock__region_refuse = ASOCK_POOL_LOCK | ASOCK_POOL_HUGE_PAGES;
  pool = make_pool(4096, 8, 1, ASOCK_POOL_LOCK | ASOCK_POOL_HUGE_PAGES);
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_int_eq(st.locked, 0);
  ck_assert_int_eq(st.huge_pages, ASOCK_HUGE_PAGES_NONE);
  /* The pool works all the same. */
  ck_assert_asock(asock_pool_acquire(pool, &slice), 0);
  memset(slice, 1, 4096);
  ck_assert_asock(asock_pool_release(pool, slice), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

#ifndef _WIN32
/* Whether this process may lock a page, asked of the OS directly. */
static int os_allows_mlock(void) {
  size_t page = asock__page_size();
  void *p = mmap(NULL, page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int ok;
  ck_assert_ptr_ne(p, MAP_FAILED);
  ok = mlock(p, page) == 0;
  munmap(p, page);
  return ok;
}

START_TEST(lock_reports_what_the_os_did) {
  asock_pool *pool = make_pool(4096, 4, 1, ASOCK_POOL_LOCK);
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_int_eq(st.locked, os_allows_mlock());
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

START_TEST(huge_pages_use_huge_alignment) {
  asock_pool *pool = make_pool(4096, 4, 1, ASOCK_POOL_HUGE_PAGES);
  asock_pool_stats st;
  void *slice;
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  /* The region is rounded to and aligned on a 2 MiB huge page, whether the
   * kernel gave explicit huge pages, transparent ones, or neither. */
  ck_assert_uint_eq(st.region_bytes, 2 * 1024 * 1024);
  ck_assert_asock(asock_pool_acquire(pool, &slice), 0);
  ck_assert_uint_eq((uintptr_t)slice % (2 * 1024 * 1024), 0);
  memset(slice, 7, 4096);
  ck_assert_asock(asock_pool_release(pool, slice), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

/* Guard pages: with page-sized slices the last slice ends exactly where the
 * inaccessible page begins, so one byte past it faults. */
static unsigned char *last_page_slice(asock_pool **pool_out) {
  size_t page = asock__page_size();
  asock_pool *pool = make_pool(page, 2, 1, 0);
  unsigned char *a, *b;
  ck_assert_asock(asock_pool_acquire(pool, (void **)&a), 0);
  ck_assert_asock(asock_pool_acquire(pool, (void **)&b), 0);
  *pool_out = pool;
  return a > b ? a : b;
}

START_TEST(guard_page_after_last_slice) {
  size_t page = asock__page_size();
  asock_pool *pool;
  volatile unsigned char *last = last_page_slice(&pool);
  last[page - 1] = 1; /* the slice's own last byte is fine */
  last[page] = 1;     /* the guard page: SIGSEGV */
  ck_abort_msg("wrote past the last slice without a fault");
}
END_TEST

START_TEST(guard_page_before_first_slice) {
  size_t page = asock__page_size();
  asock_pool *pool;
  volatile unsigned char *last = last_page_slice(&pool);
  volatile unsigned char *first = last - page;
  first[0] = 1;
  first[-1] = 1;
  ck_abort_msg("wrote before the first slice without a fault");
}
END_TEST
#endif

#if defined(ASOCK__ASAN) && !defined(_WIN32)
START_TEST(released_slices_are_poisoned) {
  asock_pool *pool = make_pool(128, 2, 1, 0);
  unsigned char *slice;
  ck_assert_asock(asock_pool_acquire(pool, (void **)&slice), 0);
  ck_assert_int_eq(__asan_address_is_poisoned(slice), 0);
  ck_assert_int_eq(__asan_address_is_poisoned(slice + 127), 0);
  ck_assert_asock(asock_pool_release(pool, slice), 0);
  ck_assert_int_ne(__asan_address_is_poisoned(slice), 0);
  ck_assert_int_ne(__asan_address_is_poisoned(slice + 127), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

/* A read of a released slice in a child process: ASan must report it as a
 * use-after-poison and the child must not exit cleanly. */
START_TEST(use_after_release_is_reported) {
  asock_pool *pool = make_pool(128, 2, 1, 0);
  volatile unsigned char *slice;
  int fds[2];
  pid_t pid;
  int status;
  char out[8192];
  size_t got = 0;
  ssize_t n;

  ck_assert_asock(asock_pool_acquire(pool, (void **)&slice), 0);
  ck_assert_asock(asock_pool_release(pool, (void *)slice), 0);
  ck_assert_int_eq(pipe(fds), 0);
  pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    _exit(slice[5] == 0x55 ? 3 : 0);
  }
  close(fds[1]);
  while (got < sizeof(out) - 1 &&
         (n = read(fds[0], out + got, sizeof(out) - 1 - got)) > 0)
    got += (size_t)n;
  out[got] = '\0';
  close(fds[0]);
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  ck_assert_ptr_nonnull(strstr(out, "use-after-poison"));
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST
#endif

/* Threads that hammer one pool. Each writes its own pattern over every slice
 * it holds and checks it is intact before the release: two threads holding
 * the same slice at once would overwrite each other's pattern. */
enum { HAMMER_THREADS = 4, HAMMER_ROUNDS = 20000, HAMMER_HOLD = 3 };

typedef struct hammer_ctx {
  asock_pool *pool;
  int id;
  unsigned long enobufs;
  unsigned long op_enobufs;
  unsigned long corrupt;
  unsigned long done;
} hammer_ctx;

static void hammer(void *arg) {
  hammer_ctx *ctx = arg;
  size_t size = asock_pool_slice_size(ctx->pool);
  unsigned char *held[HAMMER_HOLD];
  asock_op *op;
  int round, i;
  size_t j;

  for (round = 0; round < HAMMER_ROUNDS; round++) {
    int n = 0;
    for (i = 0; i < HAMMER_HOLD; i++) {
      if (asock_pool_acquire(ctx->pool, (void **)&held[n]) != 0) {
        ctx->enobufs++;
        continue;
      }
      memset(held[n], ctx->id, size);
      n++;
    }
    if (asock_op_acquire(ctx->pool, &op) == 0) {
      asock_op_set_user_data(op, ctx);
      if (asock_op_user_data(op) != ctx)
        ctx->corrupt++;
      if (asock_op_release(ctx->pool, op) != 0)
        ctx->corrupt++;
    } else {
      ctx->op_enobufs++;
    }
    for (i = 0; i < n; i++) {
      for (j = 0; j < size; j++)
        if (held[i][j] != (unsigned char)ctx->id)
          ctx->corrupt++;
      if (asock_pool_release(ctx->pool, held[i]) != 0)
        ctx->corrupt++;
    }
    ctx->done++;
  }
}

START_TEST(threads_hammer_one_pool) {
  /* Fewer slices and ops than the threads want at once, so that the pool
   * runs dry and the failure path races with the others. */
  asock_pool *pool = make_pool(64, 8, 2, 0);
  uv_thread_t threads[HAMMER_THREADS];
  hammer_ctx ctx[HAMMER_THREADS];
  asock_pool_stats st;
  unsigned long enobufs = 0, op_enobufs = 0;
  void *all[8];
  int i;

  for (i = 0; i < HAMMER_THREADS; i++) {
    memset(&ctx[i], 0, sizeof(ctx[i]));
    ctx[i].pool = pool;
    ctx[i].id = i + 1;
    ck_assert_int_eq(uv_thread_create(&threads[i], hammer, &ctx[i]), 0);
  }
  for (i = 0; i < HAMMER_THREADS; i++)
    ck_assert_int_eq(uv_thread_join(&threads[i]), 0);
  for (i = 0; i < HAMMER_THREADS; i++) {
    ck_assert_uint_eq(ctx[i].corrupt, 0);
    ck_assert_uint_eq(ctx[i].done, HAMMER_ROUNDS);
    enobufs += ctx[i].enobufs;
    op_enobufs += ctx[i].op_enobufs;
  }
  ck_assert_asock(asock_pool_stats_get(pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  ck_assert_uint_eq(st.ops_in_use, 0);
  ck_assert_uint_le(st.slices_high_water, 8);
  ck_assert_uint_le(st.ops_high_water, 2);
  ck_assert_uint_eq(st.slices_failed, enobufs);
  ck_assert_uint_eq(st.ops_failed, op_enobufs);
  /* Nothing was lost or duplicated: exactly eight distinct slices remain. */
  for (i = 0; i < 8; i++)
    ck_assert_asock(asock_pool_acquire(pool, &all[i]), 0);
  {
    void *none;
    ck_assert_asock(asock_pool_acquire(pool, &none), ASOCK_ENOBUFS);
  }
  qsort(all, 8, sizeof(all[0]), cmp_ptr);
  for (i = 1; i < 8; i++)
    ck_assert_ptr_ne(all[i], all[i - 1]);
  for (i = 0; i < 8; i++)
    ck_assert_asock(asock_pool_release(pool, all[i]), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
}
END_TEST

Suite *asock_test_suite_pool(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, defaults);
  tcase_add_test(tc, bad_configs_are_refused);
  tcase_add_test(tc, an_older_config_gets_defaults_for_the_rest);
  tcase_add_test(tc, struct_sizes_are_checked);
  tcase_add_test(tc, slices_are_contiguous_and_page_aligned);
  tcase_add_test(tc, release_misuse_is_an_error);
  tcase_add_test(tc, destroy_refuses_while_held);
  tcase_add_test(tc, loops_keep_free_slices);
  tcase_add_test(tc, zero_on_release);
  tcase_add_test(tc, refused_flags_fall_back);
  tcase_add_test(tc, threads_hammer_one_pool);
#ifndef _WIN32
  tcase_add_test(tc, lock_reports_what_the_os_did);
  tcase_add_test(tc, huge_pages_use_huge_alignment);
  /* Faults can be caught only where check forks each test, and only where
   * no sanitizer catches the SIGSEGV first. */
  if (test_forks() && !ASOCK__SANITIZER_SEGV) {
    tcase_add_test_raise_signal(tc, guard_page_after_last_slice, SIGSEGV);
    tcase_add_test_raise_signal(tc, guard_page_before_first_slice, SIGSEGV);
  }
#endif
#if defined(ASOCK__ASAN) && !defined(_WIN32)
  tcase_add_test(tc, released_slices_are_poisoned);
  tcase_add_test(tc, use_after_release_is_reported);
#endif
  suite_add_tcase(s, tc);
  return s;
}
