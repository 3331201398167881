/* What every private header of asock builds on: the public API, the
 * atomics, the sanitizer and fault injection hooks, the platform's types,
 * the compiler hints of the per-message path, the allocator and the error
 * mapping. Nothing here is part of the public API. */
#ifndef ASOCK_BASE_H
#define ASOCK_BASE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "asan.h"
#include "asock.h"
#include "atomic.h"
#include "fault.h"
#include "platform.h"

/* The struct of `type` whose `member` (a member designator, which may name
 * a member of a member) `ptr` points to: how a libuv callback finds the
 * socket, op or holder its handle or request lies in. */
#define ASOCK__CONTAINER_OF(ptr, type, member)                                 \
  ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* For the few functions of the per-message path that the compiler would
 * otherwise leave out of line because of their size: inlined into their one
 * or two callers they cost about a tenth fewer instructions per message. */
#if defined(_MSC_VER)
#define ASOCK__ALWAYS_INLINE __forceinline
#elif defined(__GNUC__)
#define ASOCK__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ASOCK__ALWAYS_INLINE inline
#endif
/* Keeps a rarely taken path out of its caller. */
#if defined(_MSC_VER)
#define ASOCK__NOINLINE __declspec(noinline)
#elif defined(__GNUC__)
#define ASOCK__NOINLINE __attribute__((noinline))
#else
#define ASOCK__NOINLINE
#endif

/* A test the usual path fails, or passes: the compiler lays the rare branch
 * out of the way. */
#if defined(__GNUC__)
#define ASOCK__UNLIKELY(x) __builtin_expect((x) != 0, 0)
#define ASOCK__LIKELY(x) __builtin_expect((x) != 0, 1)
#else
#define ASOCK__UNLIKELY(x) ((x) != 0)
#define ASOCK__LIKELY(x) ((x) != 0)
#endif

/* Keeps a frequently written field on a cache line of its own. */
#define ASOCK__CACHE_LINE 64

/* ---- allocator (src/alloc.c) ------------------------------------------- */

/* Every allocation inside asock goes through these four. */
void *asock__malloc(size_t size);
void *asock__calloc(size_t count, size_t size);
void *asock__realloc(void *ptr, size_t size);
void asock__free(void *ptr);

/* ---- errors (src/errors.c) --------------------------------------------- */

/* Turns a libuv error into the asock code the application sees: the few
 * system codes asock has its own code for (ETIMEDOUT, ECANCELED, EOF,
 * ENOBUFS) are mapped to them; every other value passes through. */
int asock__from_uv(int uv_err);

#endif /* ASOCK_BASE_H */
