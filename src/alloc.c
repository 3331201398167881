/* The allocator every allocation inside asock goes through. */
#include <stdlib.h>

#include "internal.h"

typedef struct asock__allocator {
  asock_malloc_func malloc_func;
  asock_realloc_func realloc_func;
  asock_calloc_func calloc_func;
  asock_free_func free_func;
} asock__allocator;

static asock__allocator allocator = {malloc, realloc, calloc, free};

int asock_replace_allocator(asock_malloc_func malloc_func,
                            asock_realloc_func realloc_func,
                            asock_calloc_func calloc_func,
                            asock_free_func free_func) {
  if (malloc_func == NULL || realloc_func == NULL || calloc_func == NULL ||
      free_func == NULL)
    return ASOCK_EINVAL;
  allocator.malloc_func = malloc_func;
  allocator.realloc_func = realloc_func;
  allocator.calloc_func = calloc_func;
  allocator.free_func = free_func;
  return 0;
}

void *asock__malloc(size_t size) {
  if (asock__fault(ASOCK__FAULT_ALLOC))
    return NULL;
  /* A zero-byte request gets one byte so that NULL always means failure. */
  return allocator.malloc_func(size == 0 ? 1 : size);
}

void *asock__calloc(size_t count, size_t size) {
  if (asock__fault(ASOCK__FAULT_ALLOC))
    return NULL;
  if (count == 0 || size == 0)
    count = size = 1;
  if (size != 0 && count > (size_t)-1 / size)
    return NULL;
  return allocator.calloc_func(count, size);
}

void *asock__realloc(void *ptr, size_t size) {
  if (asock__fault(ASOCK__FAULT_ALLOC))
    return NULL;
  return allocator.realloc_func(ptr, size == 0 ? 1 : size);
}

void asock__free(void *ptr) {
  if (ptr != NULL)
    allocator.free_func(ptr);
}
