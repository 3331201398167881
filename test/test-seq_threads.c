/* Completion ordering across threads: producers push out of order, from
 * several threads, and concurrent consumers take each item exactly once,
 * in number order. Random but repeatable (xorshift64*). */
#include <stdlib.h>
#include <string.h>

#include "seq-util.h"

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

Suite *asock_test_suite_seq_threads(void) {
  Suite *s = suite_create("seq_threads");
  TCase *threads = tcase_create("seq_threads");

  tcase_set_timeout(threads, ASOCK_TEST_TIMEOUT);
  tcase_add_test(threads, two_consumers_deliver_once_in_order);
  tcase_add_test(threads, many_streams_many_threads_deliver_in_order);
  suite_add_tcase(s, threads);
  return s;
}
