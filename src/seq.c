/* Completion ordering: items pushed with sequence numbers from any thread in
 * any order come out of asock_seq_pop() in number order, each once.
 *
 * The stream is a ring of `window` slots; number n always lands in slot
 * n & mask. Each slot carries a stamp that says which number it is waiting
 * for and what state it is in, so a push is one compare-and-swap on its own
 * slot, producers never touch a shared counter, and memory never grows.
 *
 * Stamps count relative numbers r = n - first, and hold 3 * r + state:
 *
 *   3r + EMPTY    the slot waits for r
 *   3r + WRITING  a producer has claimed r and is storing its item
 *   3r + FULL     the item of r is stored and waits for the consumer
 *
 * Taking r out turns the slot into 3(r + window) + EMPTY. The factor is 3, not
 * 4, because the stamps must not wrap: numbers go up to 2^62, a consumed slot
 * then waits for up to 2^62 + 2^20, and 4 * (2^62 + 2^20) does not fit in 64
 * bits while 3 * (2^62 + 2^20) + 2 does. Counting from `first` keeps a stream
 * that starts high just as far from the limit.
 *
 * A slot only ever waits for the lowest number of its residue not yet taken,
 * so a push of r that finds any other stamp tells which case it is in: a lower
 * stamp means the slot still holds (or waits for) r - window or earlier, so r
 * is beyond the window; a higher one, or r itself claimed or full, means r was
 * pushed or taken before. */
#include "internal.h"

/* The largest sequence number a push accepts. */
#define ASOCK__SEQ_MAX ((uint64_t)1 << 62)
#define ASOCK__SEQ_WINDOW_MAX ((uint32_t)1 << 20)

enum { ASOCK__SEQ_EMPTY = 0, ASOCK__SEQ_WRITING = 1, ASOCK__SEQ_FULL = 2 };

typedef struct asock__seq_slot {
  asock__atomic_u64 stamp;
  /* Written only by the producer that claimed the slot, read only by the
   * consumer that sees it full; the stamp's release and acquire order them. */
  void *item;
} asock__seq_slot;

struct asock_seq {
  /* Read by every push, written only by asock_seq_create(). */
  asock__seq_slot *slots;
  uint64_t first;
  uint64_t mask;
  /* The consumer's fields change on every pop; a cache line of padding on
   * each side keeps those writes from evicting the line producers read. */
  char pad0_[ASOCK__CACHE_LINE];
  asock__atomic_u64 next; /* absolute number the next pop hands out */
  asock__atomic_u32 busy; /* 1 while a thread is inside asock_seq_pop() */
  char pad1_[ASOCK__CACHE_LINE];
};

static uint64_t seq_stamp(uint64_t relative, unsigned int state) {
  return 3 * relative + state;
}

int asock_seq_create(asock_seq **seq_out, uint32_t window, uint64_t first) {
  asock_seq *seq = NULL;
  asock__seq_slot *slots = NULL;
  uint32_t i;
  int err;

  if (seq_out == NULL)
    return ASOCK_EINVAL;
  *seq_out = NULL;
  if (window < 2 || window > ASOCK__SEQ_WINDOW_MAX ||
      (window & (window - 1)) != 0)
    return ASOCK_EINVAL;

  err = ASOCK_ENOMEM;
  seq = (asock_seq *)asock__malloc(sizeof(*seq));
  slots = (asock__seq_slot *)asock__malloc(window * sizeof(*slots));
  if (seq == NULL || slots == NULL)
    goto done;

  /* Slot i waits for the one number of the first window that lands in it. */
  seq->first = first;
  seq->mask = window - 1;
  for (i = 0; i < window; i++) {
    uint64_t relative = ((uint64_t)i - first) & seq->mask;
    asock__store_u64(&slots[i].stamp, seq_stamp(relative, ASOCK__SEQ_EMPTY));
    slots[i].item = NULL;
  }
  seq->slots = slots;
  asock__store_u64(&seq->next, first);
  asock__store_u32(&seq->busy, 0);
  *seq_out = seq;
  seq = NULL;
  slots = NULL;
  err = 0;

done:
  asock__free(slots);
  asock__free(seq);
  return err;
}

int asock_seq_destroy(asock_seq *seq) {
  if (seq == NULL)
    return ASOCK_EINVAL;
  asock__free(seq->slots);
  asock__free(seq);
  return 0;
}

int asock_seq_push(asock_seq *seq, uint64_t number, void *item) {
  asock__seq_slot *slot;
  uint64_t relative;
  uint64_t stamp;

  if (seq == NULL || number > ASOCK__SEQ_MAX)
    return ASOCK_EINVAL;
  /* Below the first number nothing is expected any more; the subtraction
   * below would wrap. */
  if (number < seq->first)
    return ASOCK_EDUPLICATE;

  relative = number - seq->first;
  slot = &seq->slots[number & seq->mask];
  stamp = seq_stamp(relative, ASOCK__SEQ_EMPTY);
  if (!asock__cas_u64(&slot->stamp, &stamp,
                      seq_stamp(relative, ASOCK__SEQ_WRITING)))
    return stamp < seq_stamp(relative, ASOCK__SEQ_EMPTY) ? ASOCK_EWINDOW
                                                         : ASOCK_EDUPLICATE;
  slot->item = item;
  asock__store_u64(&slot->stamp, seq_stamp(relative, ASOCK__SEQ_FULL));
  return 0;
}

void (*asock__seq_pop_hook)(asock_seq *seq);

int asock_seq_pop(asock_seq *seq, void **item_out, uint64_t *number_out) {
  asock__seq_slot *slot;
  uint64_t next;
  uint64_t relative;
  int err;

  if (seq == NULL || item_out == NULL)
    return ASOCK_EINVAL;
  *item_out = NULL;
  if (asock__xchg_u32(&seq->busy, 1) != 0)
    return ASOCK_EBUSY;
  if (asock__seq_pop_hook != NULL)
    asock__seq_pop_hook(seq);

  next = asock__load_u64(&seq->next);
  relative = next - seq->first;
  slot = &seq->slots[next & seq->mask];
  if (asock__load_u64(&slot->stamp) == seq_stamp(relative, ASOCK__SEQ_FULL)) {
    *item_out = slot->item;
    if (number_out != NULL)
      *number_out = next;
    /* The slot is free for the number one window on from here. */
    asock__store_u64(&slot->stamp,
                     seq_stamp(relative + seq->mask + 1, ASOCK__SEQ_EMPTY));
    asock__store_u64(&seq->next, next + 1);
    err = 0;
  } else {
    err = ASOCK_EAGAIN;
  }

  asock__store_u32(&seq->busy, 0);
  return err;
}

uint64_t asock_seq_next(const asock_seq *seq) {
  if (seq == NULL)
    return 0;
  return asock__load_u64(&seq->next);
}
