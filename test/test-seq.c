/* Completion ordering: items pushed out of order, from several threads, come
 * out of a stream in number order, each exactly once; numbers already seen,
 * numbers beyond the window and bad arguments get their own error codes. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "test.h"

#define SEQ_LIMIT ((uint64_t)1 << 62)

/* Items that are not NULL and differ from each other, so that a pop handing
 * out the wrong one is caught. */
static void *item_of(uint64_t n) { return (void *)(uintptr_t)(n + 1); }

/* Pops one item and asserts it is number `want` carrying item_of(want). */
static void pop_expect(asock_seq *seq, uint64_t want) {
  void *item = NULL;
  uint64_t number = ~(uint64_t)0;
  ck_assert_asock(asock_seq_pop(seq, &item, &number), 0);
  ck_assert_uint_eq(number, want);
  ck_assert_ptr_eq(item, item_of(want));
}

/* Asserts that the next item has not arrived, and that the failed pop
 * changed nothing. */
static void pop_expect_nothing(asock_seq *seq) {
  void *item = &item;
  uint64_t number = 12345;
  uint64_t next = asock_seq_next(seq);
  ck_assert_asock(asock_seq_pop(seq, &item, &number), ASOCK_EAGAIN);
  ck_assert_ptr_null(item);
  ck_assert_uint_eq(number, 12345);
  ck_assert_uint_eq(asock_seq_next(seq), next);
}

START_TEST(in_order_push_and_pop_round_the_ring) {
  asock_seq *seq;
  uint64_t n;

  ck_assert_asock(asock_seq_create(&seq, 8, 0), 0);
  ck_assert_uint_eq(asock_seq_next(seq), 0);
  pop_expect_nothing(seq);
  /* A full window at once, then one in one out, five times round the ring. */
  for (n = 0; n < 8; n++)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  for (n = 0; n < 40; n++) {
    pop_expect(seq, n);
    ck_assert_uint_eq(asock_seq_next(seq), n + 1);
    ck_assert_asock(asock_seq_push(seq, n + 8, item_of(n + 8)), 0);
  }
  for (n = 40; n < 48; n++)
    pop_expect(seq, n);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 48);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(smallest_window_round_the_ring) {
  asock_seq *seq;
  uint64_t n;

  ck_assert_asock(asock_seq_create(&seq, 2, 0), 0);
  for (n = 0; n < 20; n += 2) {
    ck_assert_asock(asock_seq_push(seq, n + 1, item_of(n + 1)), 0);
    ck_assert_asock(asock_seq_push(seq, n + 2, item_of(n + 2)), ASOCK_EWINDOW);
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
    pop_expect(seq, n);
    pop_expect(seq, n + 1);
    pop_expect_nothing(seq);
  }
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(gap_waits_then_drains_in_order) {
  asock_seq *seq;

  ck_assert_asock(asock_seq_create(&seq, 16, 0), 0);
  ck_assert_asock(asock_seq_push(seq, 3, item_of(3)), 0);
  ck_assert_asock(asock_seq_push(seq, 1, item_of(1)), 0);
  ck_assert_asock(asock_seq_push(seq, 2, item_of(2)), 0);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), 0);
  pop_expect_nothing(seq);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 0);

  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  pop_expect(seq, 0);
  pop_expect(seq, 1);
  pop_expect(seq, 2);
  pop_expect(seq, 3);
  /* 4 is a gap of its own: 5 waits behind it. */
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 4);
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), 0);
  pop_expect(seq, 4);
  pop_expect(seq, 5);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(duplicates_are_refused_and_keep_the_first_item) {
  asock_seq *seq;
  uint64_t n;
  int other;

  ck_assert_asock(asock_seq_create(&seq, 8, 0), 0);
  /* Pending, not yet taken: the second push must not replace the item. */
  ck_assert_asock(asock_seq_push(seq, 3, item_of(3)), 0);
  ck_assert_asock(asock_seq_push(seq, 3, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  pop_expect(seq, 0);
  /* Taken: the slot now waits for 8, but 0 is still a duplicate. */
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  for (n = 1; n < 3; n++)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  pop_expect(seq, 1);
  pop_expect(seq, 2);
  pop_expect(seq, 3);
  ck_assert_asock(asock_seq_push(seq, 3, &other), ASOCK_EDUPLICATE);

  /* Numbers taken several windows ago. */
  for (n = 4; n < 40; n++) {
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
    pop_expect(seq, n);
  }
  for (n = 0; n < 40; n++)
    ck_assert_asock(asock_seq_push(seq, n, &other), ASOCK_EDUPLICATE);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 40);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(window_limits_how_far_ahead_a_push_may_be) {
  asock_seq *seq;
  uint64_t n;

  ck_assert_asock(asock_seq_create(&seq, 4, 0), 0);
  /* next is 0: 0..3 fit, 4 and beyond do not, whatever the slot holds. */
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 7, item_of(7)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 100, item_of(100)), ASOCK_EWINDOW);
  /* 2^62 lands in slot 0 too; it must not be taken for number 0. */
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, item_of(0)), ASOCK_EWINDOW);
  pop_expect_nothing(seq);

  /* 1 is pending, not taken: 5, which shares its slot, is still too far. */
  ck_assert_asock(asock_seq_push(seq, 1, item_of(1)), 0);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), ASOCK_EWINDOW);

  /* Once 0 is taken, 4 fits; 5 still waits for 1 to go. */
  pop_expect(seq, 0);
  ck_assert_asock(asock_seq_push(seq, 4, item_of(4)), 0);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_push(seq, 8, item_of(8)), ASOCK_EWINDOW);
  pop_expect(seq, 1);
  ck_assert_asock(asock_seq_push(seq, 5, item_of(5)), 0);
  for (n = 2; n < 4; n++)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  for (n = 2; n < 6; n++)
    pop_expect(seq, n);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(first_above_zero) {
  asock_seq *seq;
  uint64_t n;
  int other;

  /* 1000 is not a multiple of the window, so the ring starts mid-way. */
  ck_assert_asock(asock_seq_create(&seq, 16, 1000), 0);
  ck_assert_uint_eq(asock_seq_next(seq), 1000);
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 8, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 999, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 984, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 1016, &other), ASOCK_EWINDOW);
  pop_expect_nothing(seq);

  for (n = 1015; n >= 1000; n--)
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
  ck_assert_asock(asock_seq_push(seq, 1016, &other), ASOCK_EWINDOW);
  for (n = 1000; n < 1016; n++)
    pop_expect(seq, n);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), 1016);
  ck_assert_asock(asock_seq_push(seq, 1000, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, 1031, item_of(1031)), 0);
  ck_assert_asock(asock_seq_push(seq, 1032, &other), ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(numbers_up_to_the_limit) {
  asock_seq *seq;
  int other;

  /* The last window below the limit, ending on the largest valid number. */
  ck_assert_asock(asock_seq_create(&seq, 4, SEQ_LIMIT - 3), 0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT + 1, &other), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_push(seq, UINT64_MAX, &other), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, item_of(SEQ_LIMIT)), 0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT - 1, item_of(SEQ_LIMIT - 1)),
                  0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT - 3, item_of(SEQ_LIMIT - 3)),
                  0);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT - 2, item_of(SEQ_LIMIT - 2)),
                  0);
  pop_expect(seq, SEQ_LIMIT - 3);
  pop_expect(seq, SEQ_LIMIT - 2);
  pop_expect(seq, SEQ_LIMIT - 1);
  pop_expect(seq, SEQ_LIMIT);
  pop_expect_nothing(seq);
  ck_assert_uint_eq(asock_seq_next(seq), SEQ_LIMIT + 1);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT + 1, &other), ASOCK_EINVAL);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);

  /* A stream that starts beyond the limit can take nothing. */
  ck_assert_asock(asock_seq_create(&seq, 4, UINT64_MAX), 0);
  ck_assert_uint_eq(asock_seq_next(seq), UINT64_MAX);
  ck_assert_asock(asock_seq_push(seq, 0, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, SEQ_LIMIT, &other), ASOCK_EDUPLICATE);
  ck_assert_asock(asock_seq_push(seq, UINT64_MAX, &other), ASOCK_EINVAL);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(null_items_are_items) {
  asock_seq *seq;
  void *item = &item;
  uint64_t number = 99;

  ck_assert_asock(asock_seq_create(&seq, 4, 7), 0);
  ck_assert_asock(asock_seq_push(seq, 8, NULL), 0);
  ck_assert_asock(asock_seq_push(seq, 8, NULL), ASOCK_EDUPLICATE);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_push(seq, 7, NULL), 0);
  ck_assert_asock(asock_seq_pop(seq, &item, &number), 0);
  ck_assert_ptr_null(item);
  ck_assert_uint_eq(number, 7);
  item = &item;
  /* number_out is optional. */
  ck_assert_asock(asock_seq_pop(seq, &item, NULL), 0);
  ck_assert_ptr_null(item);
  ck_assert_uint_eq(asock_seq_next(seq), 9);
  pop_expect_nothing(seq);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(null_arguments_are_einval) {
  asock_seq *seq;
  void *item = &item;
  uint64_t number = 5;

  ck_assert_asock(asock_seq_create(NULL, 8, 0), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_destroy(NULL), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_push(NULL, 0, item_of(0)), ASOCK_EINVAL);
  ck_assert_asock(asock_seq_pop(NULL, &item, &number), ASOCK_EINVAL);
  ck_assert_ptr_eq(item, &item);
  ck_assert_uint_eq(number, 5);
  ck_assert_uint_eq(asock_seq_next(NULL), 0);

  ck_assert_asock(asock_seq_create(&seq, 8, 0), 0);
  ck_assert_asock(asock_seq_push(seq, 0, item_of(0)), 0);
  ck_assert_asock(asock_seq_pop(seq, NULL, &number), ASOCK_EINVAL);
  ck_assert_uint_eq(number, 5);
  /* The refused pop took nothing. */
  ck_assert_uint_eq(asock_seq_next(seq), 0);
  pop_expect(seq, 0);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(bad_windows_are_einval) {
  static const uint32_t bad[] = {0,
                                 1,
                                 3,
                                 6,
                                 1000,
                                 ((uint32_t)1 << 20) + 1,
                                 (uint32_t)1 << 21,
                                 (uint32_t)1 << 31,
                                 UINT32_MAX};
  asock_seq *seq;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    seq = (asock_seq *)&seq;
    ck_assert_asock(asock_seq_create(&seq, bad[i], 0), ASOCK_EINVAL);
    ck_assert_ptr_null(seq);
  }
  /* The bounds themselves are good. */
  ck_assert_asock(asock_seq_create(&seq, 2, 0), 0);
  ck_assert_asock(asock_seq_destroy(seq), 0);
  ck_assert_asock(asock_seq_create(&seq, (uint32_t)1 << 20, 0), 0);
  ck_assert_asock(asock_seq_push(seq, ((uint64_t)1 << 20) - 1, item_of(1)), 0);
  ck_assert_asock(asock_seq_push(seq, (uint64_t)1 << 20, item_of(2)),
                  ASOCK_EWINDOW);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(create_survives_every_allocation_failure) {
  asock_seq *seq = (asock_seq *)&seq; /* must be reset to NULL */
  unsigned long k;
  uint64_t n;
  int err = ASOCK_ENOMEM;

  asock_test_install_counting_allocator();
  for (k = 1; k < 100 && err == ASOCK_ENOMEM; k++) {
    asock_test_alloc_calls = 0;
    asock_test_fail_at = k;
    err = asock_seq_create(&seq, 64, 3);
    if (err == ASOCK_ENOMEM) {
      ck_assert_ptr_null(seq);
      ck_assert_uint_eq(asock_test_alloc_live, 0);
    }
  }
  ck_assert_asock(err, 0);
  /* At least one allocation failed before creation succeeded. */
  ck_assert_uint_gt(k, 2);
  ck_assert_ptr_nonnull(seq);
  ck_assert_uint_gt(asock_test_alloc_live, 0);

  /* Pushing and popping never allocate; items left behind are not freed
   * (they are the caller's), the stream's own memory is. */
  asock_test_fail_at = 0;
  k = asock_test_alloc_calls;
  for (n = 3; n < 300; n++) {
    ck_assert_asock(asock_seq_push(seq, n, item_of(n)), 0);
    pop_expect(seq, n);
  }
  ck_assert_asock(asock_seq_push(seq, 301, item_of(301)), 0);
  ck_assert_uint_eq(asock_test_alloc_calls, k);
  ck_assert_asock(asock_seq_destroy(seq), 0);
  ck_assert_uint_eq(asock_test_alloc_live, 0);
}
END_TEST

/* ---- threads ------------------------------------------------------------ */

/* xorshift64*: the threaded tests are random but repeatable. */
static uint64_t rng_next(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

/* Lets other threads run after a thread found nothing to do; under valgrind,
 * which runs one thread at a time, spinning would waste a whole time slice. */
static void relax(unsigned int *idle) {
  if (++*idle >= 16) {
    *idle = 0;
    uv_sleep(0);
  }
}

static void start_thread(uv_thread_t *thread, void (*entry)(void *),
                         void *arg) {
  ck_assert_int_eq(uv_thread_create(thread, entry, arg), 0);
}

static void join_thread(uv_thread_t *thread) {
  ck_assert_int_eq(uv_thread_join(thread), 0);
}

/* What the consumers record about one item. Pops from several threads are
 * ordered by the stream's busy flag, but the bookkeeping a consumer does
 * after a pop is not, so order is checked with tickets: each pop draws one
 * from a global counter before it starts and one after it returns. If number
 * a < b was correctly taken first, pop(a) started before pop(b) returned, so
 * before[a] < after[b]; a pop(b) that returned before pop(a) started is an
 * order violation that no interleaving excuses. */
typedef struct delivery {
  asock__atomic_u32 count;
  uint64_t before;
  uint64_t after;
} delivery;

/* Index of the first delivery in d[0..len) that completed before an earlier
 * number's pop started, or len if there is none. */
static size_t first_order_violation(const delivery *d, size_t len) {
  uint64_t max_before = 0;
  size_t i;
  for (i = 0; i < len; i++) {
    if (d[i].after < max_before)
      return i;
    if (d[i].before > max_before)
      max_before = d[i].before;
  }
  return len;
}

/* One stream, two consumers popping it at once; each refills the number one
 * window on from what it took, so the stream stays full. Whichever pop finds
 * the other inside the stream gets ASOCK_EBUSY; every item must still come
 * out once and in order.
 *
 * Two pops only meet by chance, so this test asserts what the consumers
 * achieve together whether or not they met: exactly-once delivery in order
 * over one span of BUSY_SPAN numbers. The refusal itself is shown
 * deterministically by pop_inside_pop_gets_ebusy. */
#define BUSY_WINDOW 256
#define BUSY_MIN 4096
#define BUSY_SPAN ((uint64_t)1 << 18)
#define BUSY_CONSUMERS 2

typedef struct busy_test {
  asock_seq *seq;
  uint64_t base;               /* first number of this span */
  uint64_t limit;              /* no number at or above is pushed */
  delivery *deliveries;        /* BUSY_SPAN of them, by number - base */
  asock__atomic_u64 ticket;    /* the ticket counter */
  asock__atomic_u64 ebusy;     /* pops that returned ASOCK_EBUSY */
  asock__atomic_u64 delivered; /* pops of this span that returned an item */
  asock__atomic_u32 ready;     /* consumers waiting at the start line */
  asock__atomic_u32 go;        /* the start signal */
  asock__atomic_u32 bad;       /* unexpected codes or items seen */
} busy_test;

/* Pops once and records what came out: 0 for an item, ASOCK_EAGAIN or
 * ASOCK_EBUSY, or -1 for anything that should not happen. */
static int busy_pop(busy_test *t, uint64_t *number) {
  uint64_t before, after;
  delivery *d;
  void *item;
  int err;

  before = asock__add_u64(&t->ticket, 1);
  err = asock_seq_pop(t->seq, &item, number);
  after = asock__add_u64(&t->ticket, 1);
  if (err == ASOCK_EAGAIN || err == ASOCK_EBUSY)
    return err;
  if (err != 0 || *number - t->base >= BUSY_SPAN || item != item_of(*number))
    return -1;
  d = &t->deliveries[*number - t->base];
  if (asock__add_u32(&d->count, 1) != 0)
    return -1;
  d->before = before;
  d->after = after;
  asock__add_u64(&t->delivered, 1);
  return 0;
}

static void busy_consumer(void *arg) {
  busy_test *t = (busy_test *)arg;
  uint64_t number;
  int err;

  asock__add_u32(&t->ready, 1);
  while (!asock__load_u32(&t->go)) {
  }
  /* Stopping between iterations leaves the numbers pushed contiguous: every
   * number taken has had its successor pushed. */
  while (asock__load_u64(&t->ebusy) == 0 ||
         asock__load_u64(&t->delivered) < BUSY_MIN) {
    err = busy_pop(t, &number);
    if (err == ASOCK_EBUSY) {
      asock__add_u64(&t->ebusy, 1);
    } else if (err == ASOCK_EAGAIN) {
      /* Either the end, or the other consumer has yet to refill. */
      if (asock_seq_next(t->seq) == t->limit)
        return;
    } else if (err != 0) {
      asock__add_u32(&t->bad, 1);
      return;
    } else if (number + BUSY_WINDOW < t->limit &&
               asock_seq_push(t->seq, number + BUSY_WINDOW,
                              item_of(number + BUSY_WINDOW)) != 0) {
      asock__add_u32(&t->bad, 1);
      return;
    }
  }
}

/* Runs the consumers over one span and checks it. */
static void busy_span(busy_test *t) {
  uv_thread_t consumers[BUSY_CONSUMERS];
  unsigned int idle = 0;
  uint64_t n, end;
  size_t violation;
  int i;

  memset(t->deliveries, 0, BUSY_SPAN * sizeof(*t->deliveries));
  asock__store_u64(&t->delivered, 0);
  asock__store_u32(&t->ready, 0);
  asock__store_u32(&t->go, 0);
  for (n = t->base + BUSY_WINDOW; n-- > t->base;)
    ck_assert_asock(asock_seq_push(t->seq, n, item_of(n)), 0);

  for (i = 0; i < BUSY_CONSUMERS; i++)
    start_thread(&consumers[i], busy_consumer, t);
  while (asock__load_u32(&t->ready) != BUSY_CONSUMERS)
    relax(&idle);
  asock__store_u32(&t->go, 1);
  for (i = 0; i < BUSY_CONSUMERS; i++)
    join_thread(&consumers[i]);
  ck_assert_uint_eq(asock__load_u32(&t->bad), 0);

  /* The consumers may have stopped early with a window left: take it. */
  end = asock_seq_next(t->seq) + BUSY_WINDOW;
  if (end > t->limit)
    end = t->limit;
  while (asock_seq_next(t->seq) < end)
    ck_assert_int_eq(busy_pop(t, &n), 0);
  pop_expect_nothing(t->seq);

  /* delivered counts first deliveries and busy_pop() fails second ones, so
   * each number came out exactly once; what is left is their order. */
  ck_assert_uint_eq(asock__load_u64(&t->delivered), end - t->base);
  violation = first_order_violation(t->deliveries, (size_t)(end - t->base));
  ck_assert_msg(violation == end - t->base, "number %llu taken out of order",
                (unsigned long long)(t->base + violation));
  t->base = end;
  t->limit = end + BUSY_SPAN;
}

static int inner_pop_result;
static void *inner_pop_item;

static void pop_again(asock_seq *seq) {
  inner_pop_item = (void *)&inner_pop_item;
  inner_pop_result = asock_seq_pop(seq, &inner_pop_item, NULL);
}

/* A second consumer arriving while the first is inside asock_seq_pop() is
 * refused with ASOCK_EBUSY and takes nothing; the first then takes the item
 * as if alone. The hook runs the second pop at exactly that moment. */
START_TEST(pop_inside_pop_gets_ebusy) {
  asock_seq *seq;
  void *item = NULL;
  uint64_t number = 99;
  static int thing;

  ck_assert_asock(asock_seq_create(&seq, 4, 0), 0);
  ck_assert_asock(asock_seq_push(seq, 0, &thing), 0);
  inner_pop_result = 12345;
  asock__seq_pop_hook = pop_again;
  ck_assert_asock(asock_seq_pop(seq, &item, &number), 0);
  asock__seq_pop_hook = NULL;
  ck_assert_asock(inner_pop_result, ASOCK_EBUSY);
  ck_assert_ptr_null(inner_pop_item);
  ck_assert_ptr_eq(item, &thing);
  ck_assert_uint_eq(number, 0);
  /* The refused pop left the stream usable. */
  ck_assert_asock(asock_seq_pop(seq, &item, &number), ASOCK_EAGAIN);
  ck_assert_asock(asock_seq_destroy(seq), 0);
}
END_TEST

START_TEST(two_consumers_deliver_once_in_order) {
  busy_test *t;

  t = (busy_test *)calloc(1, sizeof(*t));
  ck_assert_ptr_nonnull(t);
  t->deliveries = (delivery *)calloc(BUSY_SPAN, sizeof(*t->deliveries));
  ck_assert_ptr_nonnull(t->deliveries);
  ck_assert_asock(asock_seq_create(&t->seq, BUSY_WINDOW, 0), 0);
  t->base = 0;
  t->limit = BUSY_SPAN;

  busy_span(t);

  ck_assert_asock(asock_seq_destroy(t->seq), 0);
  free(t->deliveries);
  free(t);
}
END_TEST

/* Many streams, several producers each pushing its share of every stream out
 * of order, two consumers sweeping all streams. Each stream starts at its own
 * first number, so most rings start mid-way. */
#define MANY_STREAMS 64
#define MANY_PER_STREAM 2048
#define MANY_WINDOW 64
#define MANY_PRODUCERS 4
#define MANY_CONSUMERS 2
#define MANY_TOTAL (MANY_STREAMS * MANY_PER_STREAM)

/* One entry of a producer's work list: item `key` (stream * per stream +
 * offset), to be pushed in order of `order`. */
typedef struct work {
  uint32_t order;
  uint32_t tiebreak;
  uint32_t key;
} work;

typedef struct many_test {
  asock_seq *seqs[MANY_STREAMS];
  uint64_t first[MANY_STREAMS];
  work *lists[MANY_PRODUCERS];
  size_t list_len[MANY_PRODUCERS];
  delivery *deliveries; /* MANY_TOTAL of them, by key */
  asock__atomic_u64 ticket;
  asock__atomic_u64 delivered;
  asock__atomic_u64 pushed;
  asock__atomic_u32 bad;
} many_test;

typedef struct many_worker {
  many_test *t;
  int index;
} many_worker;

static int compare_work(const void *a, const void *b) {
  const work *x = (const work *)a;
  const work *y = (const work *)b;
  if (x->order != y->order)
    return x->order < y->order ? -1 : 1;
  if (x->tiebreak != y->tiebreak)
    return x->tiebreak < y->tiebreak ? -1 : 1;
  return 0;
}

/* Every item gets a random producer; each producer pushes its items sorted
 * by offset plus a random jitter below the window, streams interleaved at
 * random. The jitter shuffles every stream's numbers while keeping the work
 * free of deadlock: a producer that waits on ASOCK_EWINDOW for number x waits
 * for a number at least a window below x, which sorts before x in whichever
 * list holds it. */
static void many_plan(many_test *t, uint64_t *rng) {
  uint32_t key;
  int p;

  for (p = 0; p < MANY_PRODUCERS; p++) {
    t->lists[p] = (work *)calloc(MANY_TOTAL, sizeof(work));
    ck_assert_ptr_nonnull(t->lists[p]);
    t->list_len[p] = 0;
  }
  for (key = 0; key < MANY_TOTAL; key++) {
    work *w;
    p = (int)(rng_next(rng) % MANY_PRODUCERS);
    w = &t->lists[p][t->list_len[p]++];
    w->key = key;
    w->order = key % MANY_PER_STREAM + (uint32_t)(rng_next(rng) % MANY_WINDOW);
    w->tiebreak = (uint32_t)rng_next(rng);
  }
  for (p = 0; p < MANY_PRODUCERS; p++)
    qsort(t->lists[p], t->list_len[p], sizeof(work), compare_work);
}

static void many_producer(void *arg) {
  many_worker *w = (many_worker *)arg;
  many_test *t = w->t;
  const work *list = t->lists[w->index];
  size_t len = t->list_len[w->index];
  unsigned int idle = 0;
  uint64_t pushed = 0;
  size_t i = 0;
  int err;

  while (i < len) {
    uint32_t key = list[i].key;
    uint32_t stream = key / MANY_PER_STREAM;
    uint64_t number = t->first[stream] + key % MANY_PER_STREAM;
    err = asock_seq_push(t->seqs[stream], number, item_of(key));
    if (err == 0) {
      pushed++;
      i++;
      idle = 0;
    } else if (err == ASOCK_EWINDOW) {
      relax(&idle);
    } else {
      asock__add_u32(&t->bad, 1);
      break;
    }
    if (asock__load_u32(&t->bad))
      break;
  }
  asock__add_u64(&t->pushed, pushed);
}

static void many_consumer(void *arg) {
  many_worker *w = (many_worker *)arg;
  many_test *t = w->t;
  unsigned int idle = 0;
  uint32_t s = (uint32_t)w->index * (MANY_STREAMS / MANY_CONSUMERS);

  while (asock__load_u64(&t->delivered) < MANY_TOTAL &&
         !asock__load_u32(&t->bad)) {
    int progress = 0;
    uint32_t i;
    for (i = 0; i < MANY_STREAMS; i++, s = (s + 1) % MANY_STREAMS) {
      for (;;) {
        uint64_t before, after, number, offset;
        uint32_t key;
        void *item;
        int err;

        before = asock__add_u64(&t->ticket, 1);
        err = asock_seq_pop(t->seqs[s], &item, &number);
        after = asock__add_u64(&t->ticket, 1);
        /* A gap, or the other consumer inside this stream. */
        if (err == ASOCK_EAGAIN || err == ASOCK_EBUSY)
          break;
        if (err != 0) {
          asock__add_u32(&t->bad, 1);
          break;
        }
        offset = number - t->first[s];
        key = s * MANY_PER_STREAM + (uint32_t)offset;
        if (offset >= MANY_PER_STREAM || item != item_of(key)) {
          asock__add_u32(&t->bad, 1);
          break;
        }
        if (asock__add_u32(&t->deliveries[key].count, 1) != 0) {
          asock__add_u32(&t->bad, 1);
          break;
        }
        t->deliveries[key].before = before;
        t->deliveries[key].after = after;
        asock__add_u64(&t->delivered, 1);
        progress = 1;
      }
    }
    if (progress)
      idle = 0;
    else
      relax(&idle);
  }
}

START_TEST(many_streams_many_threads_deliver_in_order) {
  uv_thread_t producers[MANY_PRODUCERS], consumers[MANY_CONSUMERS];
  many_worker pw[MANY_PRODUCERS], cw[MANY_CONSUMERS];
  uint64_t rng = 0x9E3779B97F4A7C15ULL;
  many_test *t;
  uint32_t s;
  int i;

  t = (many_test *)calloc(1, sizeof(*t));
  ck_assert_ptr_nonnull(t);
  t->deliveries = (delivery *)calloc(MANY_TOTAL, sizeof(*t->deliveries));
  ck_assert_ptr_nonnull(t->deliveries);
  for (s = 0; s < MANY_STREAMS; s++) {
    /* Stream 0 starts at 0; the others at scattered points. */
    t->first[s] = s == 0 ? 0 : rng_next(&rng) % ((uint64_t)1 << 40);
    ck_assert_asock(asock_seq_create(&t->seqs[s], MANY_WINDOW, t->first[s]), 0);
  }
  many_plan(t, &rng);

  for (i = 0; i < MANY_CONSUMERS; i++) {
    cw[i].t = t;
    cw[i].index = i;
    start_thread(&consumers[i], many_consumer, &cw[i]);
  }
  for (i = 0; i < MANY_PRODUCERS; i++) {
    pw[i].t = t;
    pw[i].index = i;
    start_thread(&producers[i], many_producer, &pw[i]);
  }
  for (i = 0; i < MANY_PRODUCERS; i++)
    join_thread(&producers[i]);
  for (i = 0; i < MANY_CONSUMERS; i++)
    join_thread(&consumers[i]);

  ck_assert_uint_eq(asock__load_u32(&t->bad), 0);
  ck_assert_uint_eq(asock__load_u64(&t->pushed), MANY_TOTAL);
  /* Every first delivery is counted and a second one is bad: each item came
   * out exactly once. */
  ck_assert_uint_eq(asock__load_u64(&t->delivered), MANY_TOTAL);
  for (s = 0; s < MANY_STREAMS; s++) {
    size_t violation = first_order_violation(
        &t->deliveries[s * MANY_PER_STREAM], MANY_PER_STREAM);
    ck_assert_msg(violation == MANY_PER_STREAM,
                  "stream %u: number %u taken out of order", (unsigned)s,
                  (unsigned)violation);
    ck_assert_uint_eq(asock_seq_next(t->seqs[s]),
                      t->first[s] + MANY_PER_STREAM);
    pop_expect_nothing(t->seqs[s]);
    ck_assert_asock(asock_seq_push(t->seqs[s], t->first[s], NULL),
                    ASOCK_EDUPLICATE);
    ck_assert_asock(asock_seq_destroy(t->seqs[s]), 0);
  }

  for (i = 0; i < MANY_PRODUCERS; i++)
    free(t->lists[i]);
  free(t->deliveries);
  free(t);
}
END_TEST

Suite *asock_test_suite_seq(void) {
  Suite *s = suite_create("seq");
  TCase *tc = tcase_create("seq");
  TCase *alloc = tcase_create("alloc");
  TCase *threads = tcase_create("threads");

  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, in_order_push_and_pop_round_the_ring);
  tcase_add_test(tc, smallest_window_round_the_ring);
  tcase_add_test(tc, gap_waits_then_drains_in_order);
  tcase_add_test(tc, duplicates_are_refused_and_keep_the_first_item);
  tcase_add_test(tc, window_limits_how_far_ahead_a_push_may_be);
  tcase_add_test(tc, first_above_zero);
  tcase_add_test(tc, numbers_up_to_the_limit);
  tcase_add_test(tc, null_items_are_items);
  tcase_add_test(tc, null_arguments_are_einval);
  tcase_add_test(tc, bad_windows_are_einval);
  tcase_add_test(tc, pop_inside_pop_gets_ebusy);
  suite_add_tcase(s, tc);

  tcase_set_timeout(alloc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(alloc, NULL, asock_test_restore_allocator);
  tcase_add_test(alloc, create_survives_every_allocation_failure);
  suite_add_tcase(s, alloc);

  tcase_set_timeout(threads, ASOCK_TEST_TIMEOUT);
  tcase_add_test(threads, two_consumers_deliver_once_in_order);
  tcase_add_test(threads, many_streams_many_threads_deliver_in_order);
  suite_add_tcase(s, threads);
  return s;
}
