/* The counting allocator shared by the allocation tests, and the Wine skip
 * list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
/* winsock2.h before windows.h, as uv.h (through test.h) wants it; the blank
 * line keeps clang-format from sorting them. */
#include <winsock2.h>

#include <windows.h>
#endif

#include "test.h"
#include "wine-skips.h"

#ifdef _WIN32
/* Wine's ntdll exports wine_get_version; Windows' does not. */
static int under_wine(void) {
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}
#else
static int under_wine(void) { return 0; }
#endif

int asock_test_skipped(const TTest *test) {
  static const struct {
    const char *name;
    const char *why;
  } skips[] = {
#define ASOCK__WINE_SKIP_ENTRY(name, why) {#name, why},
      ASOCK_WINE_SKIPS(ASOCK__WINE_SKIP_ENTRY)
#undef ASOCK__WINE_SKIP_ENTRY
  };
  size_t i;

  if (!under_wine())
    return 0;
  for (i = 0; i < sizeof(skips) / sizeof(skips[0]); i++) {
    if (strcmp(test->name, skips[i].name) == 0) {
      printf("skipped under Wine: %s: %s\n", test->name, skips[i].why);
      return 1;
    }
  }
  return 0;
}

unsigned long asock_test_alloc_calls;
unsigned long asock_test_alloc_live;
unsigned long asock_test_fail_at;

static int should_fail(void) {
  asock_test_alloc_calls++;
  return asock_test_fail_at != 0 &&
         asock_test_alloc_calls == asock_test_fail_at;
}

static void *counting_malloc(size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = malloc(size);
  if (p != NULL)
    asock_test_alloc_live++;
  return p;
}

static void *counting_realloc(void *ptr, size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = realloc(ptr, size);
  if (p != NULL && ptr == NULL)
    asock_test_alloc_live++;
  return p;
}

static void *counting_calloc(size_t count, size_t size) {
  void *p;
  if (should_fail())
    return NULL;
  p = calloc(count, size);
  if (p != NULL)
    asock_test_alloc_live++;
  return p;
}

static void counting_free(void *ptr) {
  if (ptr != NULL)
    asock_test_alloc_live--;
  free(ptr);
}

void asock_test_install_counting_allocator(void) {
  asock_test_alloc_calls = 0;
  asock_test_alloc_live = 0;
  asock_test_fail_at = 0;
  ck_assert_int_eq(asock_replace_allocator(counting_malloc, counting_realloc,
                                           counting_calloc, counting_free),
                   0);
}

void asock_test_restore_allocator(void) {
  ck_assert_int_eq(asock_replace_allocator(malloc, realloc, calloc, free), 0);
}
