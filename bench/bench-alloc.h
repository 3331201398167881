/* A counting allocator for the echo-server baselines. Each server routes its
 * own allocations through these functions (and the libuv ones route libuv's
 * through uv_replace_allocator), so that `allocations: N` on exit counts
 * every heap allocation made while the server was serving. */
#ifndef ASOCK_BENCH_ALLOC_H
#define ASOCK_BENCH_ALLOC_H

#include <stddef.h>

void *bench_malloc(size_t size);
void *bench_calloc(size_t count, size_t size);
void *bench_realloc(void *ptr, size_t size);
void bench_free(void *ptr);

/* Starts counting: allocations made before, while setting up, are not the
 * ones being measured. */
void bench_alloc_start(void);

/* Allocations (malloc, calloc and realloc calls) since bench_alloc_start(). */
unsigned long long bench_alloc_count(void);

#endif
