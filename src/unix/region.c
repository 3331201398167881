/* The pool's region on Unix: an anonymous mapping with a PROT_NONE guard
 * page on each side, optionally on huge pages and locked in memory. */
#include <errno.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define ASOCK__HUGE_PAGE_SIZE ((size_t)2 * 1024 * 1024)

unsigned int asock__region_refuse;

size_t asock__page_size(void) {
  long page = sysconf(_SC_PAGESIZE);
  return page > 0 ? (size_t)page : 4096;
}

static size_t round_up(size_t n, size_t unit) {
  return (n + unit - 1) / unit * unit;
}

/* Reserves len bytes of inaccessible address space. */
static void *reserve(size_t len) {
  void *p =
      asock__sys_mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

/* Tries explicit huge pages at base, inside a reservation. Linux only; the
 * kernel refuses when no huge pages are reserved (vm.nr_hugepages). */
static int map_explicit_huge(unsigned char *base, size_t len) {
#ifdef MAP_HUGETLB
  void *p;
  if (asock__region_refuse & ASOCK_POOL_HUGE_PAGES)
    return -1;
  p = asock__sys_mmap(base, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_HUGETLB, -1,
                      0);
  return p == MAP_FAILED ? -1 : 0;
#else
  (void)base;
  (void)len;
  return -1;
#endif
}

static int advise_transparent_huge(unsigned char *base, size_t len) {
#ifdef MADV_HUGEPAGE
  if (asock__region_refuse & ASOCK_POOL_HUGE_PAGES)
    return -1;
  return madvise(base, len, MADV_HUGEPAGE);
#else
  (void)base;
  (void)len;
  return -1;
#endif
}

int asock__region_map(asock__region *r, size_t len, unsigned int flags) {
  size_t page = asock__page_size();
  size_t align = page;
  unsigned char *mapping;
  unsigned char *base;

  asock__region_clear(r);

  if (flags & ASOCK_POOL_HUGE_PAGES)
    align = ASOCK__HUGE_PAGE_SIZE;
  len = round_up(len, align);

  /* Reserve room for the region at the alignment asked for, plus a guard
   * page on each side; the unused rest of the reservation stays PROT_NONE. */
  r->mapping_len = len + 2 * align;
  mapping = reserve(r->mapping_len);
  if (mapping == NULL)
    return ASOCK_ENOMEM;
  base = (unsigned char *)round_up((uintptr_t)mapping + page, align);

  if ((flags & ASOCK_POOL_HUGE_PAGES) && map_explicit_huge(base, len) == 0) {
    r->huge_pages = ASOCK_HUGE_PAGES_EXPLICIT;
  } else {
    /* A failed MAP_FIXED may have removed part of the reservation: start
     * again from a fresh one rather than trust what is left. */
    if (flags & ASOCK_POOL_HUGE_PAGES) {
      munmap(mapping, r->mapping_len);
      mapping = reserve(r->mapping_len);
      if (mapping == NULL)
        return ASOCK_ENOMEM;
      base = (unsigned char *)round_up((uintptr_t)mapping + page, align);
    }
    if (asock__sys_mprotect(base, len, PROT_READ | PROT_WRITE) != 0) {
      munmap(mapping, r->mapping_len);
      return ASOCK_ENOMEM;
    }
    if ((flags & ASOCK_POOL_HUGE_PAGES) &&
        advise_transparent_huge(base, len) == 0)
      r->huge_pages = ASOCK_HUGE_PAGES_TRANSPARENT;
  }

  if ((flags & ASOCK_POOL_LOCK) && !(asock__region_refuse & ASOCK_POOL_LOCK))
    r->locked = mlock(base, len) == 0;

  r->mapping = mapping;
  r->base = base;
  r->len = len;
  return 0;
}

void asock__region_unmap(asock__region *r) {
  /* munmap also unlocks what mlock locked. */
  if (r->mapping != NULL)
    munmap(r->mapping, r->mapping_len);
  r->mapping = NULL;
  r->base = NULL;
  r->len = 0;
}
