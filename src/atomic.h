/* The few atomic operations asock needs, behind one header: C11 <stdatomic.h>
 * where the compiler has it, Interlocked intrinsics on MSVC (MSVC 2019 has
 * no <stdatomic.h>). Loads acquire, stores release, read-modify-writes are
 * sequentially consistent unless the name says relaxed.
 *
 * ASOCK_ATOMIC_INTERLOCKED (the CMake option of that name) selects the
 * Interlocked branch with any Windows compiler: mingw-w64's <windows.h> and
 * <intrin.h> provide the same functions, so the branch MSVC builds is
 * compiled and tested by the mingw-w64 build that runs under Wine. */
#ifndef ASOCK_ATOMIC_H
#define ASOCK_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#if defined(ASOCK_ATOMIC_INTERLOCKED) && !defined(_WIN32)
#error "ASOCK_ATOMIC_INTERLOCKED needs the Windows Interlocked functions"
#endif

#if defined(ASOCK_ATOMIC_INTERLOCKED) ||                                       \
    (defined(_MSC_VER) && !defined(__clang__))
#define ASOCK__ATOMIC_INTERLOCKED 1
#include <intrin.h>
#include <windows.h>
#else
#include <stdatomic.h>
#endif

#ifdef ASOCK__ATOMIC_INTERLOCKED

typedef volatile LONG asock__atomic_u32;
typedef volatile LONG64 asock__atomic_u64;
typedef void *volatile asock__atomic_ptr;

/* On x86 and x64 an aligned volatile access is atomic, a load has acquire and
 * a store release semantics once the compiler barrier stops reordering. On
 * ARM a full barrier is needed as well (MSVC's and GCC's names for it). */
static inline void asock__interlocked_fence(void) {
#if defined(_M_ARM64) || defined(_M_ARM) || defined(__aarch64__) ||            \
    defined(__arm__)
  MemoryBarrier();
#else
  _ReadWriteBarrier();
#endif
}

static inline uint32_t asock__load_u32(const asock__atomic_u32 *p) {
  uint32_t v = (uint32_t)*p;
  asock__interlocked_fence();
  return v;
}
static inline void asock__store_u32(asock__atomic_u32 *p, uint32_t v) {
  asock__interlocked_fence();
  *p = (LONG)v;
  asock__interlocked_fence();
}
/* For a counter one thread writes and others only read, ordering nothing:
 * plain loads and stores on every platform asock runs on. */
static inline uint32_t asock__load_u32_relaxed(const asock__atomic_u32 *p) {
  return (uint32_t)*p;
}
static inline void asock__store_u32_relaxed(asock__atomic_u32 *p, uint32_t v) {
  *p = (LONG)v;
}
static inline int asock__cas_u32(asock__atomic_u32 *p, uint32_t *expected,
                                 uint32_t desired) {
  LONG old = InterlockedCompareExchange(p, (LONG)desired, (LONG)*expected);
  if ((uint32_t)old == *expected)
    return 1;
  *expected = (uint32_t)old;
  return 0;
}
static inline uint32_t asock__xchg_u32(asock__atomic_u32 *p, uint32_t v) {
  return (uint32_t)InterlockedExchange(p, (LONG)v);
}
static inline uint32_t asock__add_u32(asock__atomic_u32 *p, uint32_t v) {
  return (uint32_t)InterlockedExchangeAdd(p, (LONG)v);
}

static inline uint64_t asock__load_u64(const asock__atomic_u64 *p) {
#if defined(_M_IX86) || defined(__i386__)
  return (uint64_t)InterlockedCompareExchange64((asock__atomic_u64 *)p, 0, 0);
#else
  uint64_t v = (uint64_t)*p;
  asock__interlocked_fence();
  return v;
#endif
}
static inline void asock__store_u64(asock__atomic_u64 *p, uint64_t v) {
  InterlockedExchange64(p, (LONG64)v);
}
static inline int asock__cas_u64(asock__atomic_u64 *p, uint64_t *expected,
                                 uint64_t desired) {
  LONG64 old =
      InterlockedCompareExchange64(p, (LONG64)desired, (LONG64)*expected);
  if ((uint64_t)old == *expected)
    return 1;
  *expected = (uint64_t)old;
  return 0;
}
static inline uint64_t asock__add_u64(asock__atomic_u64 *p, uint64_t v) {
  return (uint64_t)InterlockedExchangeAdd64(p, (LONG64)v);
}
static inline uint64_t asock__add_u64_relaxed(asock__atomic_u64 *p,
                                              uint64_t v) {
  return asock__add_u64(p, v);
}

static inline void *asock__load_ptr(asock__atomic_ptr const *p) {
  void *v = *p;
  asock__interlocked_fence();
  return v;
}
static inline void asock__store_ptr(asock__atomic_ptr *p, void *v) {
  InterlockedExchangePointer((void *volatile *)p, v);
}
static inline void *asock__xchg_ptr(asock__atomic_ptr *p, void *v) {
  return InterlockedExchangePointer((void *volatile *)p, v);
}
static inline int asock__cas_ptr(asock__atomic_ptr *p, void **expected,
                                 void *desired) {
  void *old = InterlockedCompareExchangePointer((void *volatile *)p, desired,
                                                *expected);
  if (old == *expected)
    return 1;
  *expected = old;
  return 0;
}

#else /* C11 */

typedef _Atomic uint32_t asock__atomic_u32;
typedef _Atomic uint64_t asock__atomic_u64;
typedef void *_Atomic asock__atomic_ptr;

static inline uint32_t asock__load_u32(const asock__atomic_u32 *p) {
  return atomic_load_explicit((asock__atomic_u32 *)p, memory_order_acquire);
}
static inline void asock__store_u32(asock__atomic_u32 *p, uint32_t v) {
  atomic_store_explicit(p, v, memory_order_release);
}
/* For a counter one thread writes and others only read, ordering nothing:
 * plain loads and stores on every platform asock runs on. */
static inline uint32_t asock__load_u32_relaxed(const asock__atomic_u32 *p) {
  return atomic_load_explicit((asock__atomic_u32 *)p, memory_order_relaxed);
}
static inline void asock__store_u32_relaxed(asock__atomic_u32 *p, uint32_t v) {
  atomic_store_explicit(p, v, memory_order_relaxed);
}
static inline int asock__cas_u32(asock__atomic_u32 *p, uint32_t *expected,
                                 uint32_t desired) {
  return atomic_compare_exchange_strong(p, expected, desired);
}
static inline uint32_t asock__xchg_u32(asock__atomic_u32 *p, uint32_t v) {
  return atomic_exchange(p, v);
}
static inline uint32_t asock__add_u32(asock__atomic_u32 *p, uint32_t v) {
  return atomic_fetch_add(p, v);
}

static inline uint64_t asock__load_u64(const asock__atomic_u64 *p) {
  return atomic_load_explicit((asock__atomic_u64 *)p, memory_order_acquire);
}
static inline void asock__store_u64(asock__atomic_u64 *p, uint64_t v) {
  atomic_store_explicit(p, v, memory_order_release);
}
static inline int asock__cas_u64(asock__atomic_u64 *p, uint64_t *expected,
                                 uint64_t desired) {
  return atomic_compare_exchange_strong(p, expected, desired);
}
static inline uint64_t asock__add_u64(asock__atomic_u64 *p, uint64_t v) {
  return atomic_fetch_add(p, v);
}
/* For statistics counters, which order nothing. */
static inline uint64_t asock__add_u64_relaxed(asock__atomic_u64 *p,
                                              uint64_t v) {
  return atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

static inline void *asock__load_ptr(asock__atomic_ptr const *p) {
  return atomic_load_explicit((asock__atomic_ptr *)p, memory_order_acquire);
}
static inline void asock__store_ptr(asock__atomic_ptr *p, void *v) {
  atomic_store_explicit(p, v, memory_order_release);
}
static inline void *asock__xchg_ptr(asock__atomic_ptr *p, void *v) {
  return atomic_exchange(p, v);
}
static inline int asock__cas_ptr(asock__atomic_ptr *p, void **expected,
                                 void *desired) {
  return atomic_compare_exchange_strong(p, expected, desired);
}

#endif

/* Raises *p to at least v: the high-water marks of the pool. */
static inline void asock__max_u64(asock__atomic_u64 *p, uint64_t v) {
  uint64_t cur = asock__load_u64(p);
  while (cur < v && !asock__cas_u64(p, &cur, v)) {
  }
}

#endif /* ASOCK_ATOMIC_H */
