/* The fault table behind asock__fault(), built only with the CMake option
 * ASOCK_FAULT_INJECTION. Counts are atomic: a loop group calls from several
 * threads. */
#include "internal.h"

typedef struct fault_entry {
  asock__atomic_u64 calls;
  asock__atomic_u64 fail_at; /* 0: not armed */
  asock__atomic_u32 error;
  asock__atomic_u32 fired;
} fault_entry;

static fault_entry table[ASOCK__FAULT_COUNT];

static const char *const names[ASOCK__FAULT_COUNT] = {
#define ASOCK__FAULT_NAME(name, text) text,
    ASOCK__FAULT_POINTS(ASOCK__FAULT_NAME)
#undef ASOCK__FAULT_NAME
};

int asock__fault(asock__fault_point p) {
  fault_entry *e = &table[p];
  uint64_t n = asock__add_u64(&e->calls, 1) + 1;

  if (n != asock__load_u64(&e->fail_at))
    return 0;
  asock__store_u32(&e->fired, 1);
  return (int)asock__load_u32(&e->error);
}

void asock__fault_reset(void) {
  int p;
  for (p = 0; p < ASOCK__FAULT_COUNT; p++) {
    asock__store_u64(&table[p].fail_at, 0);
    asock__store_u64(&table[p].calls, 0);
    asock__store_u32(&table[p].error, 0);
    asock__store_u32(&table[p].fired, 0);
  }
}

void asock__fault_arm(asock__fault_point p, uint64_t k, int err) {
  asock__store_u32(&table[p].error, (uint32_t)err);
  asock__store_u32(&table[p].fired, 0);
  asock__store_u64(&table[p].fail_at, k);
}

uint64_t asock__fault_calls(asock__fault_point p) {
  return asock__load_u64(&table[p].calls);
}

int asock__fault_fired(asock__fault_point p) {
  return asock__load_u32(&table[p].fired) != 0;
}

const char *asock__fault_name(asock__fault_point p) {
  return (unsigned int)p < ASOCK__FAULT_COUNT ? names[p] : "?";
}
