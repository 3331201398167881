/* A lock-free stack of indices: the free lists of the pool.
 *
 * The head is one 64-bit word: the top index plus one in the low half (0 is
 * empty) and a tag in the high half that every successful change increments.
 * A pop that read the head, was delayed while the top was popped and pushed
 * back, and then tries its compare-and-swap sees a different tag and retries,
 * instead of installing a stale `next` (the ABA problem). The tag wraps after
 * 2^32 changes, which a delayed thread would have to sleep through exactly. */
#include "internal.h"

int asock__stack_init(asock__stack *s, uint32_t count) {
  uint32_t i;

  s->next = NULL;
  s->held = NULL;
  s->count = 0;
  if (count == 0 || count == UINT32_MAX)
    return ASOCK_EINVAL;
  s->next = asock__calloc(count, sizeof(*s->next));
  s->held = asock__calloc(count, sizeof(*s->held));
  if (s->next == NULL || s->held == NULL) {
    asock__stack_free(s);
    return ASOCK_ENOMEM;
  }
  for (i = 0; i < count; i++) {
    /* Index i lies on index i + 1, stored plus one; the last on nothing. */
    asock__store_u32(&s->next[i], i + 1 < count ? i + 2 : 0);
    asock__store_u32(&s->held[i], 0);
  }
  asock__store_u64(&s->head, 1);
  s->count = count;
  return 0;
}

void asock__stack_free(asock__stack *s) {
  asock__free((void *)s->next);
  asock__free((void *)s->held);
  s->next = NULL;
  s->held = NULL;
  s->count = 0;
}

int asock__stack_pop(asock__stack *s, uint32_t *index) {
  uint64_t head = asock__load_u64(&s->head);
  uint64_t new_head;
  uint32_t top;

  for (;;) {
    top = (uint32_t)head;
    if (top == 0)
      return ASOCK_ENOBUFS;
    new_head = (((head >> 32) + 1) << 32) | asock__load_u32(&s->next[top - 1]);
    if (asock__cas_u64(&s->head, &head, new_head))
      break;
  }
  asock__store_u32(&s->held[top - 1], 1);
  *index = top - 1;
  return 0;
}

int asock__stack_push(asock__stack *s, uint32_t index) {
  uint32_t held = 1;
  uint64_t head;
  uint64_t new_head;

  if (index >= s->count)
    return ASOCK_EINVAL;
  /* Only the one caller that flips held from 1 to 0 may push, so a double
   * release is refused before it can link the index in twice. */
  if (!asock__cas_u32(&s->held[index], &held, 0))
    return ASOCK_ENOTHELD;
  head = asock__load_u64(&s->head);
  do {
    asock__store_u32(&s->next[index], (uint32_t)head);
    new_head = (((head >> 32) + 1) << 32) | (uint64_t)(index + 1);
  } while (!asock__cas_u64(&s->head, &head, new_head));
  return 0;
}

int asock__stack_is_held(const asock__stack *s, uint32_t index) {
  return index < s->count && asock__load_u32(&s->held[index]) == 1;
}
