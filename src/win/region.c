/* The pool's region on Windows: VirtualAlloc with an uncommitted guard page
 * on each side, or large pages when asked and the process may have them,
 * locked with VirtualLock when asked. */
/* winsock2.h must come before windows.h, and internal.h includes it
 * through uv.h; the blank line keeps clang-format from sorting them. */
#include <winsock2.h>

#include <windows.h>

#include "internal.h"

unsigned int asock__region_refuse;

size_t asock__page_size(void) {
  SYSTEM_INFO info;
  GetSystemInfo(&info);
  return info.dwPageSize;
}

static size_t round_up(size_t n, size_t unit) {
  return (n + unit - 1) / unit * unit;
}

/* Large pages need SeLockMemoryPrivilege, which an administrator grants to
 * the account and the process must then enable in its token. */
static int enable_lock_memory_privilege(void) {
  HANDLE token;
  TOKEN_PRIVILEGES tp;
  BOOL ok;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_ADJUST_PRIVILEGES, &token))
    return 0;
  tp.PrivilegeCount = 1;
  tp.Privileges[0].Attributes = SE_PRIVILEGE_ENABLED;
  ok = LookupPrivilegeValueA(NULL, "SeLockMemoryPrivilege",
                             &tp.Privileges[0].Luid) &&
       AdjustTokenPrivileges(token, FALSE, &tp, 0, NULL, NULL) &&
       GetLastError() == ERROR_SUCCESS;
  CloseHandle(token);
  return ok;
}

static int map_large(asock__region *r, size_t len) {
  SIZE_T large = GetLargePageMinimum();
  void *p;

  if ((asock__region_refuse & ASOCK_POOL_HUGE_PAGES) || large == 0)
    return -1;
  if (!enable_lock_memory_privilege())
    return -1;
  len = round_up(len, large);
  p = VirtualAlloc(NULL, len, MEM_RESERVE | MEM_COMMIT | MEM_LARGE_PAGES,
                   PAGE_READWRITE);
  if (p == NULL)
    return -1;
  /* Large pages cannot share an allocation with guard pages; they are
   * non-pageable already, which is what locking would give. */
  r->mapping = p;
  r->mapping_len = len;
  r->base = p;
  r->len = len;
  r->huge_pages = ASOCK_HUGE_PAGES_EXPLICIT;
  return 0;
}

/* VirtualLock fails once the working set's minimum is too small to hold
 * the locked pages; raise it by the region's size and try once more. */
static int lock_region(void *base, size_t len) {
  SIZE_T min_ws;
  SIZE_T max_ws;

  if (asock__region_refuse & ASOCK_POOL_LOCK)
    return 0;
  if (VirtualLock(base, len))
    return 1;
  if (!GetProcessWorkingSetSize(GetCurrentProcess(), &min_ws, &max_ws))
    return 0;
  if (!SetProcessWorkingSetSize(GetCurrentProcess(), min_ws + len,
                                max_ws + len))
    return 0;
  return VirtualLock(base, len) ? 1 : 0;
}

int asock__region_map(asock__region *r, size_t len, unsigned int flags) {
  size_t page = asock__page_size();
  unsigned char *mapping;

  asock__region_clear(r);

  if ((flags & ASOCK_POOL_HUGE_PAGES) && map_large(r, len) == 0) {
    r->locked = (flags & ASOCK_POOL_LOCK) != 0;
    return 0;
  }

  len = round_up(len, page);
  r->mapping_len = len + 2 * page;
  mapping = VirtualAlloc(NULL, r->mapping_len, MEM_RESERVE, PAGE_NOACCESS);
  if (mapping == NULL)
    return ASOCK_ENOMEM;
  if (VirtualAlloc(mapping + page, len, MEM_COMMIT, PAGE_READWRITE) == NULL) {
    VirtualFree(mapping, 0, MEM_RELEASE);
    return ASOCK_ENOMEM;
  }
  r->mapping = mapping;
  r->base = mapping + page;
  r->len = len;
  if (flags & ASOCK_POOL_LOCK)
    r->locked = lock_region(r->base, len);
  return 0;
}

void asock__region_unmap(asock__region *r) {
  if (r->mapping != NULL)
    VirtualFree(r->mapping, 0, MEM_RELEASE);
  r->mapping = NULL;
  r->base = NULL;
  r->len = 0;
}
