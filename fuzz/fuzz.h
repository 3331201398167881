/* What the libFuzzer targets share: the entry point's prototype, a reader
 * that turns the fuzzer's bytes into choices (zeros once they run out, so
 * that every input is a complete program), and the check that turns a
 * broken expectation into a crash libFuzzer keeps the input of. */
#ifndef ASOCK_FUZZ_H
#define ASOCK_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "asock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz_input {
  const uint8_t *p;
  size_t n;
} fz_input;

static inline uint8_t fz_u8(fz_input *in) {
  uint8_t b;
  if (in->n == 0)
    return 0;
  b = *in->p++;
  in->n--;
  return b;
}

static inline uint16_t fz_u16(fz_input *in) {
  uint16_t lo = fz_u8(in);
  return (uint16_t)(lo | (uint16_t)(fz_u8(in) << 8));
}

static inline uint32_t fz_u32(fz_input *in) {
  uint32_t lo = fz_u16(in);
  return lo | ((uint32_t)fz_u16(in) << 16);
}

static inline uint64_t fz_u64(fz_input *in) {
  uint64_t lo = fz_u32(in);
  return lo | ((uint64_t)fz_u32(in) << 32);
}

static inline int fz_done(const fz_input *in) { return in->n == 0; }

#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 3, 4)))
#endif
static inline void
fz_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s:%d: contract broken: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

/* Checks an expectation; a broken one aborts, which libFuzzer reports as a
 * crash and saves the input of. The message says what was expected. */
#define FZ_CHECK(cond, ...)                                                    \
  do {                                                                         \
    if (!(cond))                                                               \
      fz_fail(__FILE__, __LINE__, __VA_ARGS__);                                \
  } while (0)

/* Checks that an asock call returned exactly the code the model expects. */
#define FZ_CHECK_CODE(got, want, what)                                         \
  do {                                                                         \
    int fz_got_ = (got);                                                       \
    int fz_want_ = (want);                                                     \
    FZ_CHECK(fz_got_ == fz_want_, "%s: got %s (%d), model says %s (%d)",       \
             (what), asock_err_name(fz_got_), fz_got_,                         \
             asock_err_name(fz_want_), fz_want_);                              \
  } while (0)

#endif /* ASOCK_FUZZ_H */
