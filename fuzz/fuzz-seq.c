/* Fuzzes the completion-ordering module: pushes of numbers in any order,
 * duplicates, numbers already taken, numbers beyond the window and beyond
 * the largest accepted, pops in between, against a model that knows the
 * next expected number and what is stored. Every return code must be the
 * model's, and items must come out in number order, each exactly once, with
 * the item that was pushed under that number. */
#include <string.h>

#include "fuzz.h"
#include "internal.h"

/* The largest window the target creates (the module allows 2^20; the model
 * is an array of this many entries). */
#define MAX_WINDOW 1024
#define SEQ_MAX ((uint64_t)1 << 62)

typedef struct model {
  asock_seq *seq;
  uint32_t window;
  uint64_t first;
  uint64_t next;
  /* Number n, if stored, is at n % window (the window holds one number of
   * each residue). */
  unsigned char stored[MAX_WINDOW];
  uint64_t number[MAX_WINDOW];
  uintptr_t item[MAX_WINDOW];
  uint64_t pushes;
  uint64_t taken;
} model;

/* An item no other push made: its push count, tagged with its number. */
static void *make_item(const model *m, uint64_t n) {
  if (m->pushes % 7 == 3)
    return NULL; /* a NULL item is an item too */
  return (void *)(uintptr_t)((m->pushes << 16) ^ (n * 0x9e3779b97f4a7c15u));
}

static void create(model *m, fz_input *in) {
  uint8_t shape = fz_u8(in);
  uint64_t first;
  uint32_t bad;

  /* A window that is not a power of two from 2 to 2^20 is refused. */
  bad = fz_u32(in);
  if (bad < 2 || bad > ((uint32_t)1 << 20) || (bad & (bad - 1)) != 0) {
    asock_seq *s = (asock_seq *)m;
    FZ_CHECK_CODE(asock_seq_create(&s, bad, 0), ASOCK_EINVAL, "bad window");
    FZ_CHECK(s == NULL, "a refused seq_create left its out-param set");
  }
  m->window = (uint32_t)2 << (shape % 10); /* 2 .. 1024 */
  switch ((shape >> 4) % 4) {
  case 0:
    first = 0;
    break;
  case 1:
    first = 1 + fz_u8(in);
    break;
  case 2:
    /* Near the largest number, so that the window reaches past it. */
    first = SEQ_MAX - fz_u16(in) % (2 * m->window);
    break;
  default:
    first = fz_u64(in) % (SEQ_MAX + 1);
    break;
  }
  FZ_CHECK_CODE(asock_seq_create(&m->seq, m->window, first), 0, "seq_create");
  m->first = first;
  m->next = first;
  memset(m->stored, 0, sizeof(m->stored));
  FZ_CHECK(asock_seq_next(m->seq) == first, "seq_next of a new stream");
}

/* A number to push, around the next expected one or at an edge. */
static uint64_t pick_number(const model *m, fz_input *in) {
  uint8_t how = fz_u8(in);
  uint16_t r = fz_u16(in);
  uint64_t span = 2 * (uint64_t)m->window + 4;
  uint64_t back;

  switch (how % 8) {
  case 0:
  case 1:
  case 2:
  case 3:
    /* Inside the window. */
    return m->next + r % m->window;
  case 4:
    /* Around it: taken already, or beyond it. */
    back = r % span;
    if (back <= m->window + 2 && back <= m->next)
      return m->next - back;
    return m->next + back;
  case 5:
    return m->first - (m->first > 0 ? 1 + r % m->first : 0);
  case 6:
    return SEQ_MAX - 2 + r % 5;
  default:
    return (uint64_t)-1 - r % 3;
  }
}

static void push(model *m, fz_input *in) {
  uint64_t n = pick_number(m, in);
  void *item = make_item(m, n);
  unsigned int slot = (unsigned int)(n % m->window);
  int want;

  if (n > SEQ_MAX)
    want = ASOCK_EINVAL;
  else if (n < m->next)
    want = ASOCK_EDUPLICATE; /* taken already, or before the first */
  else if (n - m->next >= m->window)
    want = ASOCK_EWINDOW;
  else if (m->stored[slot])
    want = ASOCK_EDUPLICATE;
  else
    want = 0;
  FZ_CHECK(want != 0 || !m->stored[slot] || m->number[slot] == n,
           "model: two numbers in one slot");
  FZ_CHECK_CODE(asock_seq_push(m->seq, n, item), want, "push");
  m->pushes++;
  if (want == 0) {
    m->stored[slot] = 1;
    m->number[slot] = n;
    m->item[slot] = (uintptr_t)item;
  }
}

static void pop(model *m) {
  unsigned int slot = (unsigned int)(m->next % m->window);
  void *item = (void *)m;
  uint64_t number = 0;
  int r = asock_seq_pop(m->seq, &item, &number);

  if (!m->stored[slot]) {
    FZ_CHECK_CODE(r, ASOCK_EAGAIN, "pop with a gap at the next number");
    FZ_CHECK(item == NULL, "a failed pop left an item");
    return;
  }
  FZ_CHECK(m->number[slot] == m->next, "model: wrong number in the slot");
  FZ_CHECK_CODE(r, 0, "pop");
  FZ_CHECK(number == m->next, "pop gave number %llu, want %llu",
           (unsigned long long)number, (unsigned long long)m->next);
  FZ_CHECK((uintptr_t)item == m->item[slot],
           "pop gave another item than was pushed under %llu",
           (unsigned long long)number);
  m->stored[slot] = 0;
  m->next++;
  m->taken++;
}

/* A second consumer while one is inside asock_seq_pop() is turned away. */
static model *nested_model;
static int nested_ran;

static void nested_pop(asock_seq *seq) {
  void *item = (void *)seq;
  uint64_t number = 7;
  FZ_CHECK_CODE(asock_seq_pop(seq, &item, &number), ASOCK_EBUSY,
                "pop inside a pop");
  FZ_CHECK(item == NULL && number == 7, "a refused pop wrote its outputs");
  /* Producers are not turned away: a push of a number already taken or
   * beyond the window gets its usual answer. */
  if (nested_model->next > nested_model->first)
    FZ_CHECK_CODE(asock_seq_push(seq, nested_model->next - 1, NULL),
                  ASOCK_EDUPLICATE, "push of a taken number inside a pop");
  nested_ran = 1;
}

static void pop_nested(model *m) {
  nested_model = m;
  nested_ran = 0;
  asock__seq_pop_hook = nested_pop;
  pop(m);
  asock__seq_pop_hook = NULL;
  FZ_CHECK(nested_ran, "the pop hook did not run");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fz_input in;
  model m;
  unsigned int steps = 0;
  void *item;

  in.p = data;
  in.n = size;
  memset(&m, 0, sizeof(m));
  create(&m, &in);
  FZ_CHECK_CODE(asock_seq_push(NULL, m.first, NULL), ASOCK_EINVAL,
                "push to NULL");
  FZ_CHECK_CODE(asock_seq_pop(m.seq, NULL, NULL), ASOCK_EINVAL,
                "pop into NULL");
  FZ_CHECK_CODE(asock_seq_pop(NULL, &item, NULL), ASOCK_EINVAL,
                "pop from NULL");
  while (!fz_done(&in) && steps++ < 8192) {
    uint8_t what = fz_u8(&in);
    switch (what % 8) {
    case 0:
    case 1:
    case 2:
    case 3:
      push(&m, &in);
      break;
    case 4:
    case 5:
      pop(&m);
      break;
    case 6:
      /* Take everything that is in order. */
      while (m.stored[m.next % m.window])
        pop(&m);
      pop(&m);
      break;
    default:
      if (what & 0x80) {
        FZ_CHECK_CODE(asock_seq_destroy(m.seq), 0, "seq_destroy");
        create(&m, &in);
      } else {
        pop_nested(&m);
      }
      break;
    }
    FZ_CHECK(asock_seq_next(m.seq) == m.next, "seq_next %llu, model %llu",
             (unsigned long long)asock_seq_next(m.seq),
             (unsigned long long)m.next);
  }
  FZ_CHECK_CODE(asock_seq_destroy(m.seq), 0, "seq_destroy");
  FZ_CHECK_CODE(asock_seq_destroy(NULL), ASOCK_EINVAL, "seq_destroy(NULL)");
  return 0;
}
