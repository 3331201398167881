/* Poisoning of free slices when built with AddressSanitizer, so that a use of
 * a slice after its release is reported. Without ASan these do nothing. */
#ifndef ASOCK_ASAN_H
#define ASOCK_ASAN_H

#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASOCK__ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define ASOCK__ASAN 1
#endif

/* 1 when a sanitizer installs its own SIGSEGV handler, which turns a fault
 * into a report and an abort. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ASOCK__TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define ASOCK__TSAN 1
#endif
#if defined(ASOCK__ASAN) || defined(ASOCK__TSAN)
#define ASOCK__SANITIZER_SEGV 1
#else
#define ASOCK__SANITIZER_SEGV 0
#endif

#ifdef ASOCK__ASAN
#include <sanitizer/asan_interface.h>
static inline void asock__poison(const void *p, size_t n) {
  ASAN_POISON_MEMORY_REGION(p, n);
}
static inline void asock__unpoison(const void *p, size_t n) {
  ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
static inline void asock__poison(const void *p, size_t n) {
  (void)p;
  (void)n;
}
static inline void asock__unpoison(const void *p, size_t n) {
  (void)p;
  (void)n;
}
#endif

#endif /* ASOCK_ASAN_H */
