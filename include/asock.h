/** \file
 * asock: the SocketAsyncEventArgs model of .NET for C, on top of libuv.
 *
 * One buffer pool allocated at start-up, reusable operation objects,
 * per-socket completion ordering, synchronous-first sends and receives,
 * per-operation timeouts and back-pressure, on Windows (IOCP), Linux (epoll)
 * and macOS/BSD (kqueue).
 *
 * Threads. This is the one statement of which thread may call what; every
 * function's comment ends with its tag:
 *
 * - "Any thread": safe to call concurrently from several threads on the same
 *   object.
 * - "Owner": the thread that currently holds the object (for an op: the
 *   thread that acquired it, or the thread its completion ran on), with no
 *   concurrent use of the same object.
 * - "The loop's thread": the thread that created the loop, or the one that
 *   last called asock_loop_run() on it; for a socket, its loop's. An
 *   application that runs an embedded uv_loop_t with uv_run() creates the
 *   asock loop on the thread that runs it. Creating, listening, closing,
 *   the socket options and the send limits are for the loop's thread:
 *   called from another they return ASOCK_ETHREAD and change nothing.
 *   Another thread reaches the loop through asock_loop_post().
 * - "Any thread (an operation start)": asock_accept(), asock_connect(),
 *   asock_send(), asock_receive() and every other call that starts an op.
 *   On the loop's thread it returns ASOCK_PENDING, 0 or an error. From
 *   another thread the op becomes pending there (so ASOCK_EINVAL,
 *   ASOCK_EFOREIGN and ASOCK_EBUSY are still returned at once), is handed to
 *   the loop through a lock-free list and the loop's uv_async_t, and the
 *   call returns ASOCK_PENDING; every other outcome, a refusal such as
 *   ASOCK_ECLOSED included, then arrives through the op's callback.
 *   asock_cancel() from another thread is handed over the same way and
 *   takes effect on the loop's thread.
 *
 * Callbacks run on the loop's thread, and never inside the call that
 * started their operation.
 */
#ifndef ASOCK_H
#define ASOCK_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "asock/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#if defined(BUILDING_ASOCK_SHARED)
#define ASOCK_EXTERN __declspec(dllexport)
#elif defined(USING_ASOCK_SHARED)
#define ASOCK_EXTERN __declspec(dllimport)
#else
#define ASOCK_EXTERN
#endif
#elif defined(BUILDING_ASOCK_SHARED) && (__GNUC__ >= 4 || defined(__clang__))
#define ASOCK_EXTERN __attribute__((visibility("default")))
#else
#define ASOCK_EXTERN
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */
/* ------------------------------------------------------------------------ */

/** Returned by a call that started an operation which will complete later,
 * through the op's callback, on the loop thread. Positive, so that it can
 * never be confused with an error. */
#define ASOCK_PENDING 1

/* asock's own codes live below this base, clear of every libuv code on every
 * platform (libuv uses -1..-4095 and -3000..-3014 for the resolver). */
#define ASOCK__ERR_BASE (-30000)

/* The one table of error codes. asock's own codes come first; the system
 * codes after them have the values of libuv's UV_E* constants, so that
 * uv_strerror() also understands them. A system ETIMEDOUT, ECANCELED, EOF or
 * ENOBUFS reported by libuv is translated to the asock code of the same name
 * before it leaves the library, so the application has one code to test. */
#define ASOCK_ERRNO_MAP(XX)                                                    \
  XX(EBUSY, ASOCK__ERR_BASE - 1, "operation already pending")                  \
  XX(ENOBUFS, ASOCK__ERR_BASE - 2, "no buffer available")                      \
  XX(ECANCELED, ASOCK__ERR_BASE - 3, "operation canceled")                     \
  XX(ETIMEDOUT, ASOCK__ERR_BASE - 4, "operation timed out")                    \
  XX(EOF, ASOCK__ERR_BASE - 5, "end of stream")                                \
  XX(ECLOSED, ASOCK__ERR_BASE - 6, "socket is closed")                         \
  XX(EKIND, ASOCK__ERR_BASE - 7, "op or socket of the wrong kind")             \
  XX(EFOREIGN, ASOCK__ERR_BASE - 8, "object belongs to another pool or loop")  \
  XX(EBOUNDS, ASOCK__ERR_BASE - 9, "buffer range outside its memory")          \
  XX(ENOTSLICE, ASOCK__ERR_BASE - 10, "pointer is not a slice of this pool")   \
  XX(EMIDSLICE, ASOCK__ERR_BASE - 11, "pointer is inside a slice")             \
  XX(ENOTHELD, ASOCK__ERR_BASE - 12, "object is not held (released twice)")    \
  XX(EDUPLICATE, ASOCK__ERR_BASE - 13, "sequence number already seen")         \
  XX(EWINDOW, ASOCK__ERR_BASE - 14, "sequence number beyond the window")       \
  XX(ENOTPENDING, ASOCK__ERR_BASE - 15, "operation is not pending")            \
  XX(EQUOTA, ASOCK__ERR_BASE - 16, "per-socket slice quota reached")           \
  XX(ETHREAD, ASOCK__ERR_BASE - 17, "not called on the loop's thread")         \
  XX(ENOSLICE, ASOCK__ERR_BASE - 18, "op holds no slice")                      \
  XX(EACCES, UV_EACCES, "permission denied")                                   \
  XX(EADDRINUSE, UV_EADDRINUSE, "address already in use")                      \
  XX(EADDRNOTAVAIL, UV_EADDRNOTAVAIL, "address not available")                 \
  XX(EAFNOSUPPORT, UV_EAFNOSUPPORT, "address family not supported")            \
  XX(EAGAIN, UV_EAGAIN, "resource temporarily unavailable")                    \
  XX(EAI_ADDRFAMILY, UV_EAI_ADDRFAMILY, "address family not supported")        \
  XX(EAI_AGAIN, UV_EAI_AGAIN, "temporary failure in name resolution")          \
  XX(EAI_FAIL, UV_EAI_FAIL, "permanent failure in name resolution")            \
  XX(EAI_FAMILY, UV_EAI_FAMILY, "ai_family not supported")                     \
  XX(EAI_MEMORY, UV_EAI_MEMORY, "out of memory in name resolution")            \
  XX(EAI_NODATA, UV_EAI_NODATA, "no address for host name")                    \
  XX(EAI_NONAME, UV_EAI_NONAME, "unknown node or service")                     \
  XX(EAI_SERVICE, UV_EAI_SERVICE, "service not available for socket type")     \
  XX(EALREADY, UV_EALREADY, "connection already in progress")                  \
  XX(EBADF, UV_EBADF, "bad file descriptor")                                   \
  XX(ECONNABORTED, UV_ECONNABORTED, "software caused connection abort")        \
  XX(ECONNREFUSED, UV_ECONNREFUSED, "connection refused")                      \
  XX(ECONNRESET, UV_ECONNRESET, "connection reset by peer")                    \
  XX(EDESTADDRREQ, UV_EDESTADDRREQ, "destination address required")            \
  XX(EFAULT, UV_EFAULT, "bad address")                                         \
  XX(EHOSTUNREACH, UV_EHOSTUNREACH, "host is unreachable")                     \
  XX(EINTR, UV_EINTR, "interrupted system call")                               \
  XX(EINVAL, UV_EINVAL, "invalid argument")                                    \
  XX(EIO, UV_EIO, "i/o error")                                                 \
  XX(EISCONN, UV_EISCONN, "socket is already connected")                       \
  XX(EMFILE, UV_EMFILE, "too many open files")                                 \
  XX(EMSGSIZE, UV_EMSGSIZE, "message too long")                                \
  XX(ENETDOWN, UV_ENETDOWN, "network is down")                                 \
  XX(ENETUNREACH, UV_ENETUNREACH, "network is unreachable")                    \
  XX(ENFILE, UV_ENFILE, "file table overflow")                                 \
  XX(ENODEV, UV_ENODEV, "no such device")                                      \
  XX(ENOMEM, UV_ENOMEM, "not enough memory")                                   \
  XX(ENOPROTOOPT, UV_ENOPROTOOPT, "protocol not available")                    \
  XX(ENOSYS, UV_ENOSYS, "function not implemented")                            \
  XX(ENOTCONN, UV_ENOTCONN, "socket is not connected")                         \
  XX(ENOTSOCK, UV_ENOTSOCK, "socket operation on non-socket")                  \
  XX(ENOTSUP, UV_ENOTSUP, "operation not supported on socket")                 \
  XX(EPERM, UV_EPERM, "operation not permitted")                               \
  XX(EPIPE, UV_EPIPE, "broken pipe")                                           \
  XX(EPROTO, UV_EPROTO, "protocol error")                                      \
  XX(EPROTONOSUPPORT, UV_EPROTONOSUPPORT, "protocol not supported")            \
  XX(ERANGE, UV_ERANGE, "result too large")                                    \
  XX(ESHUTDOWN, UV_ESHUTDOWN, "cannot send after transport endpoint shutdown")

/** Every error code asock returns. All are negative. */
typedef enum asock_errno {
#define ASOCK__ERRNO_ENUM(name, value, msg) ASOCK_##name = (value),
  ASOCK_ERRNO_MAP(ASOCK__ERRNO_ENUM)
#undef ASOCK__ERRNO_ENUM
      ASOCK__ERRNO_LAST = ASOCK__ERR_BASE - 999
} asock_errno;

/** The symbolic name of an error code, such as "ASOCK_EBUSY".
 * \param err a value returned by asock.
 * \return a static string; "OK" for 0, "ASOCK_UNKNOWN" for a code not in
 *   the table. Never allocates.
 *
 * Any thread. */
ASOCK_EXTERN const char *asock_err_name(int err);

/** A short English message for an error code.
 * \param err a value returned by asock.
 * \return a static string; "success" for 0, "unknown error" for a code not
 *   in the table. Never allocates.
 *
 * Any thread. */
ASOCK_EXTERN const char *asock_strerror(int err);

/* ------------------------------------------------------------------------ */
/* Version and allocator                                                     */
/* ------------------------------------------------------------------------ */

/** \return the library's version as ASOCK_VERSION_HEX; it may differ from
 *   the header's when a shared library of another minor version is loaded.
 *
 * Any thread. */
ASOCK_EXTERN unsigned int asock_version(void);

/** \return the library's version as "MAJOR.MINOR.PATCH", static.
 *
 * Any thread. */
ASOCK_EXTERN const char *asock_version_string(void);

/** Allocates like malloc(); must return NULL on failure, never abort. */
typedef void *(*asock_malloc_func)(size_t size);
/** Resizes like realloc(). */
typedef void *(*asock_realloc_func)(void *ptr, size_t size);
/** Allocates zeroed memory like calloc(). */
typedef void *(*asock_calloc_func)(size_t count, size_t size);
/** Frees like free(). */
typedef void (*asock_free_func)(void *ptr);

/** Replaces the functions every allocation inside asock goes through. Call it
 * before creating any asock object: memory allocated with one set must not be
 * freed with another. libuv's own allocations are not affected (see
 * uv_replace_allocator()).
 * \param malloc_func, realloc_func, calloc_func, free_func the replacements;
 *   none may be NULL.
 * \return 0, or ASOCK_EINVAL if any is NULL (nothing is replaced then).
 *
 * Any thread, but not while other threads use asock. */
ASOCK_EXTERN int asock_replace_allocator(asock_malloc_func malloc_func,
                                         asock_realloc_func realloc_func,
                                         asock_calloc_func calloc_func,
                                         asock_free_func free_func);

/* ------------------------------------------------------------------------ */
/* Types                                                                     */
/* ------------------------------------------------------------------------ */

/** The buffer pool: one region of slices and a fixed array of ops. */
typedef struct asock_pool asock_pool;
/** A reusable operation (SocketAsyncEventArgs). It is opaque because it is
 * never embedded by the application (every op comes from a pool's fixed
 * array) and so its layout can change without breaking the ABI. */
typedef struct asock_op asock_op;
/** A TCP or UDP socket bound to one loop. */
typedef struct asock_socket asock_socket;
/** An asock event loop (one libuv loop). */
typedef struct asock_loop asock_loop;
/** Per-stream completion ordering. */
typedef struct asock_seq asock_seq;

/** One piece of a gather list. Not uv_buf_t, whose field order differs
 * between Windows and Unix. */
typedef struct asock_buf {
  void *base; /**< the piece's first byte */
  size_t len; /**< its length in bytes */
} asock_buf;

/* ------------------------------------------------------------------------ */
/* Buffer pool                                                               */
/* ------------------------------------------------------------------------ */

/** Lock the region in memory (mlock / VirtualLock). */
#define ASOCK_POOL_LOCK 0x1u
/** Put the region on huge pages (MAP_HUGETLB, else madvise(MADV_HUGEPAGE);
 * large pages on Windows). */
#define ASOCK_POOL_HUGE_PAGES 0x2u
/** Zero each slice when it is released, so no data outlives its use. */
#define ASOCK_POOL_ZERO_ON_RELEASE 0x4u
/** A receive that finds the pool empty fails with ASOCK_ENOBUFS instead of
 * waiting for a slice (back-pressure is the default). */
#define ASOCK_POOL_FAIL_FAST 0x8u

/** How a pool is cut. Fill it with asock_pool_config_init() first, then set
 * what differs. The struct carries its own size, so that a later asock with
 * more fields still reads a program built against this header: fields are
 * only ever appended, each after the previous version's last byte, and the
 * fields a program's struct does not have take their defaults. */
typedef struct asock_pool_config {
  /** sizeof(asock_pool_config) as the program was compiled; set by
   * asock_pool_config_init(). */
  size_t struct_size;
  /** Bytes in one slice; at least 1. A multiple of 64 keeps slices on their
   * own cache lines; a multiple of the page size puts them on their own
   * pages. Default 16384. */
  size_t slice_size;
  /** Number of slices; at least 1. Default 1024. */
  size_t slice_count;
  /** Number of operation objects; at least 1. Default 1024. */
  size_t op_count;
  /** Most slices one socket may hold at once, counting those its receives
   * hold and those the application took from them (asock_op_detach_slice())
   * and has not released; 0 means no limit. A socket at its quota stops
   * reading until one comes back. Default 0. */
  size_t socket_quota;
  /** ASOCK_POOL_* flags. Default 0. */
  unsigned int flags;
} asock_pool_config;

/** What the huge-page request achieved. */
typedef enum asock_huge_pages {
  ASOCK_HUGE_PAGES_NONE = 0,        /**< normal pages */
  ASOCK_HUGE_PAGES_EXPLICIT = 1,    /**< MAP_HUGETLB or Windows large pages */
  ASOCK_HUGE_PAGES_TRANSPARENT = 2, /**< transparent huge pages advised */
} asock_huge_pages;

/** A snapshot of a pool's counters. Counters are read one by one while other
 * threads may change them, so they agree with each other only when the pool
 * is quiet. */
typedef struct asock_pool_stats {
  size_t slice_size;   /**< bytes in one slice */
  size_t slices_total; /**< slices in the region */
  /** Slices held by ops or the application. Each loop keeps up to 16 free
   * slices (at most a sixteenth of the pool) for its next receives, so that
   * a connection's receive cycle needs no atomic operation; those count as
   * free here, though other loops cannot take them until the loop closes.
   * So do the slices a loop on the io_uring backend lends the kernel (a
   * sixteenth of the pool, 4 to 256; docs/backends.md). */
  size_t slices_in_use;
  /** The most slices out of the pool's free list at once, loops' kept and
   * lent slices included. */
  size_t slices_high_water;
  uint64_t slices_failed; /**< acquisitions that found the pool empty */
  size_t ops_total;       /**< ops in the pool's fixed array */
  size_t ops_in_use;      /**< ops acquired and not released */
  size_t ops_high_water;  /**< the most ops acquired at once */
  uint64_t ops_failed;    /**< acquisitions that found every op held */
  size_t region_bytes;    /**< bytes mapped for slices, without guard pages */
  int locked;             /**< 1 if the region is locked in memory */
  asock_huge_pages huge_pages; /**< what the huge-page request achieved */
} asock_pool_stats;

/** Fills the first struct_size bytes of a config with the defaults, and
 * config->struct_size with struct_size; asock_pool_config_init() passes
 * the size the program knows. A struct_size too small to hold
 * struct_size itself, or larger than this asock's struct, writes nothing.
 * \param config where to write; NULL is ignored.
 * \param struct_size sizeof(asock_pool_config) as the program knows it.
 *
 * Any thread. */
ASOCK_EXTERN void asock_pool_config_init_size(asock_pool_config *config,
                                              size_t struct_size);

/** Fills a config with the defaults (and its struct_size).
 * \param config where to write; NULL is ignored.
 *
 * Any thread. */
static inline void asock_pool_config_init(asock_pool_config *config) {
  asock_pool_config_init_size(config, sizeof(*config));
}

/** Creates a pool: one page-aligned region for every slice (with an
 * inaccessible guard page on each side) and the fixed array of ops. The pool
 * never grows and never allocates after this call. A flag the OS refuses
 * (locking without the privilege, huge pages none of which are reserved) is
 * dropped silently; asock_pool_stats_get() says what took effect.
 * \param pool_out receives the pool; set to NULL on error.
 * \param config the shape; NULL means the defaults.
 * \return 0; ASOCK_EINVAL for a NULL pool_out, a zero size or count, unknown
 *   flags, a size whose product overflows, or a struct_size that cannot be
 *   a config's (smaller than struct_size itself, or larger than this
 *   asock's struct with non-zero bytes beyond it: fields this asock does
 *   not know); ASOCK_ENOMEM if memory could not be had.
 *
 * Any thread. */
ASOCK_EXTERN int asock_pool_create(asock_pool **pool_out,
                                   const asock_pool_config *config);

/** Destroys a pool and unmaps its region.
 * \param pool the pool; NULL is ASOCK_EINVAL.
 * \return 0; ASOCK_EBUSY if any slice or op is still held, or a loop over
 *   the pool is still open (the pool is left intact so that nothing still
 *   in use is unmapped).
 *
 * Any thread, once no other thread uses the pool. */
ASOCK_EXTERN int asock_pool_destroy(asock_pool *pool);

/** Takes a free slice. O(1), lock-free.
 * \param pool the pool.
 * \param slice_out receives the slice's first byte; set to NULL on error.
 * \return 0; ASOCK_ENOBUFS if every slice is held; ASOCK_EINVAL for NULL.
 *
 * Any thread. */
ASOCK_EXTERN int asock_pool_acquire(asock_pool *pool, void **slice_out);

/** Returns a slice to the pool. O(1), lock-free.
 * \param pool the pool the slice came from.
 * \param slice the pointer asock_pool_acquire() gave.
 * \return 0; ASOCK_ENOTSLICE for a pointer outside this pool's region,
 *   ASOCK_EMIDSLICE for one inside a slice but not at its start,
 *   ASOCK_ENOTHELD for a slice that is already free; ASOCK_EINVAL for NULL.
 *   On error the pool is unchanged.
 *
 * Any thread. */
ASOCK_EXTERN int asock_pool_release(asock_pool *pool, void *slice);

/** \param pool the pool.
 * \return the size of one slice in bytes, or 0 for NULL.
 *
 * Any thread. */
ASOCK_EXTERN size_t asock_pool_slice_size(const asock_pool *pool);

/** Reads the pool's counters into the first struct_size bytes of stats;
 * asock_pool_stats_get() passes the size the program knows, so that a
 * later asock with more counters writes only those the program's struct
 * has (counters are only ever appended).
 * \param pool the pool.
 * \param stats where to write.
 * \param struct_size sizeof(asock_pool_stats) as the program knows it.
 * \return 0, or ASOCK_EINVAL for NULL or a zero struct_size.
 *
 * Any thread. */
ASOCK_EXTERN int asock_pool_stats_get_size(const asock_pool *pool,
                                           asock_pool_stats *stats,
                                           size_t struct_size);

/** Reads the pool's counters.
 * \param pool the pool.
 * \param stats where to write.
 * \return 0, or ASOCK_EINVAL for NULL.
 *
 * Any thread. */
static inline int asock_pool_stats_get(const asock_pool *pool,
                                       asock_pool_stats *stats) {
  return asock_pool_stats_get_size(pool, stats, sizeof(*stats));
}

/* ------------------------------------------------------------------------ */
/* Operation objects                                                         */
/* ------------------------------------------------------------------------ */

/** What an op did last (SocketAsyncEventArgs.LastOperation). */
typedef enum asock_op_kind {
  ASOCK_OP_NONE = 0,
  ASOCK_OP_ACCEPT,
  ASOCK_OP_CONNECT,
  ASOCK_OP_SEND,
  ASOCK_OP_RECEIVE,
  ASOCK_OP_SENDTO,
  ASOCK_OP_RECEIVEFROM,
  ASOCK_OP_DISCONNECT,
  ASOCK_OP_RECEIVEMESSAGEFROM,
  ASOCK_OP_SHUTDOWN,
  ASOCK_OP_SENDPACKETS,
} asock_op_kind;

/** Where an op's buffer comes from. */
typedef enum asock_buffer_mode {
  /** No buffer. A receive takes a pool slice only when data arrives, and a
   * receive that waits holds none, so that an idle connection holds none. */
  ASOCK_BUFFER_NONE = 0,
  /** A pool slice the op holds; it goes back to the pool when the op's
   * buffer changes or the op is released. Two cases report it: a slice
   * that is the op's own (asock_op_take_slice(), asock_op_attach_slice(),
   * or asock_op_set_range() on a received slice), which the op keeps; and
   * the slice a receive without a buffer left in the op with its data,
   * which is lent: the op's next receive gives it back while it waits for
   * data, unless the application made it the op's own or took it
   * (asock_op_detach_slice()) first. */
  ASOCK_BUFFER_SLICE,
  /** The caller's memory, which must outlive any pending operation. */
  ASOCK_BUFFER_USER,
} asock_buffer_mode;

/** Runs once for every operation that returned ASOCK_PENDING, on the loop
 * thread, never inside the call that started the operation. The op is idle
 * again when it runs, so the callback may start the next operation on it or
 * release it.
 *
 * A multishot receive (asock_op_set_multishot()) also runs it for each
 * delivery before that final completion: then asock_op_more() is 1 and the
 * op is still pending, so it cannot be started, changed or released, but
 * its results (data, bytes, sequence number, sender) are the delivery's,
 * the slice holding the data may be taken (asock_op_detach_slice()), and
 * asock_cancel() or asock_socket_close() may be called: the final
 * completion then follows after the callback returns. */
typedef void (*asock_op_cb)(asock_op *op);

/** Takes an idle op from the pool, reset: no buffer, no callback, no user
 * data, kind ASOCK_OP_NONE, status 0.
 * \param pool the pool.
 * \param op_out receives the op; set to NULL on error.
 * \return 0; ASOCK_ENOBUFS when every op is held; ASOCK_EINVAL for NULL.
 *
 * Any thread. */
ASOCK_EXTERN int asock_op_acquire(asock_pool *pool, asock_op **op_out);

/** Returns an op to its pool, and with it any slice the op holds.
 * \param pool the pool the op came from.
 * \param op the op.
 * \return 0; ASOCK_EBUSY while the op is pending (nothing changes);
 *   ASOCK_EFOREIGN for an op of another pool or a pointer that is no op;
 *   ASOCK_ENOTHELD for an op already released; ASOCK_EINVAL for NULL.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_release(asock_pool *pool, asock_op *op);

/** Sets the completion callback (SocketAsyncEventArgs.Completed).
 * \param op the op.
 * \param cb runs each completion (see asock_op_cb).
 * \return 0; ASOCK_EBUSY while pending; ASOCK_EINVAL for a NULL op.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_callback(asock_op *op, asock_op_cb cb);

/** Sets the pointer the application keeps in the op (UserToken).
 * \param op the op.
 * \param user_data the pointer.
 * \return 0; ASOCK_EINVAL for a NULL op. The user data may be changed while
 *   the op is pending; asock never reads it.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_user_data(asock_op *op, void *user_data);

/** \param op the op.
 * \return the op's user data, or NULL for a NULL op.
 *
 * Owner. */
ASOCK_EXTERN void *asock_op_user_data(const asock_op *op);

/** Points the op at the caller's memory, like SetBuffer(byte[], offset,
 * count). A slice the op held goes back to the pool. Passing mem NULL and all
 * sizes 0 clears the buffer (ASOCK_BUFFER_NONE).
 * \param op the op.
 * \param mem the memory, mem_len bytes long.
 * \param mem_len the memory's length in bytes.
 * \param offset, count the window the next operation uses.
 * \return 0; ASOCK_EBOUNDS if offset + count exceeds mem_len;
 *   ASOCK_EINVAL for a NULL op, or NULL mem with a non-zero size;
 *   ASOCK_EBUSY while pending. On error the op is unchanged.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_buffer(asock_op *op, void *mem, size_t mem_len,
                                     size_t offset, size_t count);

/** Gives the op a pool slice as its buffer now, with the window covering the
 * whole slice. If it already holds a slice, that slice is kept.
 * \param op the op.
 * \return 0; ASOCK_ENOBUFS if the pool is empty (the op is unchanged);
 *   ASOCK_EBUSY while pending; ASOCK_EINVAL for NULL.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_take_slice(asock_op *op);

/** Moves the window inside the op's current buffer, like SetBuffer(offset,
 * count). The slice a buffer-less receive left in the op becomes the op's
 * own by this call, as if taken with asock_op_take_slice(): the next
 * receive reads into the window, and keeps the slice while it waits. That
 * is how a framed protocol keeps an incomplete message at the start of the
 * slice and receives the rest after it (docs/guide.md, "Framed
 * protocols").
 * \param op the op.
 * \param offset, count the window, inside the op's buffer.
 * \return 0; ASOCK_EBOUNDS if it does not fit the buffer (ASOCK_BUFFER_NONE
 *   has room for nothing); ASOCK_EBUSY while pending; ASOCK_EINVAL for NULL.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_range(asock_op *op, size_t offset, size_t count);

/** Drops the op's buffer and buffer list; a held slice goes back to the pool.
 * \param op the op.
 * \return 0; ASOCK_EBUSY while pending; ASOCK_EINVAL for NULL.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_clear_buffer(asock_op *op);

/** Sets a gather list for a send (BufferList). The array and the memory it
 * points at must stay valid until the send completes; asock keeps the
 * pointer, not a copy. While a list is set it is used instead of the buffer.
 * The entries are read when a send starts (and while it is pending): the
 * application may change them while the op is idle, as a writev() caller
 * rewrites its iovec, and each send checks them as this call does. An op
 * that sends one piece of memory after another, each message's bytes where
 * they are, can keep a list of one entry and point it at each in turn.
 * \param op the op.
 * \param bufs the list, or NULL with nbufs 0 to remove it.
 * \param nbufs the number of entries.
 * \return 0; ASOCK_EINVAL for a NULL op, NULL bufs with nbufs > 0, an entry
 *   with NULL base and non-zero length, or more than ASOCK_MAX_BUFS entries;
 *   ASOCK_EBOUNDS if the lengths add up to more than SIZE_MAX;
 *   ASOCK_EBUSY while pending.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_buffer_list(asock_op *op, const asock_buf *bufs,
                                          size_t nbufs);

/** The most entries a gather list may have. */
#define ASOCK_MAX_BUFS 1024

/** One piece of a send of packets (SendPacketsElement): `len` bytes in
 * memory at `base`, or, with `base` NULL, `len` bytes of the open file
 * `file` (a descriptor from open(), or uv_fs_open()) from byte `offset`.
 * The file's position is not used or moved. */
typedef struct asock_packet {
  const void *base; /**< the memory, or NULL for a piece of a file */
  size_t len;       /**< the bytes to send, from memory or from the file */
  uv_file file;     /**< the open file, when base is NULL */
  int64_t offset;   /**< where in the file the piece starts */
} asock_packet;

/** Sets the list of pieces asock_send_packets() sends, in order, as one
 * stream. The array, the memory its pieces point at and the files must
 * stay valid (and open) until the send completes; asock keeps the pointer,
 * not a copy. The list stays set for the op's next sends of packets.
 * \param op the op.
 * \param packets the list (non-NULL; count 0 sends nothing), or NULL with
 *   count 0 to remove it.
 * \param count the number of pieces.
 * \return 0; ASOCK_EINVAL for a NULL op, NULL packets with count > 0, a
 *   file piece with a negative descriptor or offset, or more than
 *   ASOCK_MAX_BUFS pieces; ASOCK_EBOUNDS if the lengths add up to more
 *   than SIZE_MAX; ASOCK_EBUSY while pending.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_packets(asock_op *op, const asock_packet *packets,
                                      size_t count);

/** Makes the op's receives multishot (enable non-zero) or one-shot (0, the
 * default). A multishot receive (asock_receive(), asock_receive_from(),
 * asock_receive_message_from()) is started once and stays pending: every
 * arrival (each chunk of a stream as it is read, or each datagram) is a
 * delivery through the callback with its own sequence number and
 * asock_op_more() 1, until one final completion with asock_op_more() 0:
 * end of stream (ASOCK_EOF), an error, ASOCK_ETIMEDOUT (no arrival for the
 * op's timeout: for a multishot receive it is an idle timeout), or
 * ASOCK_ECANCELED (asock_cancel(), or the socket's close). Its start
 * always returns ASOCK_PENDING or an error: no delivery and no final
 * completion runs inside the starting call, even when data is already
 * there. The whole contract is in docs/guide.md, section 5.
 *
 * Each delivery of an op without a buffer comes in a pool slice taken when
 * the data arrived, which goes back to the loop's cache when the callback
 * returns unless the callback took it (asock_op_detach_slice()); an op with
 * its own buffer is delivered into its window every time, each delivery
 * overwriting the last. While the pool or the socket's quota has no slice
 * the socket stops reading, and the receive waits; with
 * ASOCK_POOL_FAIL_FAST it ends with ASOCK_ENOBUFS instead. No other
 * receive may be started on the socket while a multishot receive is
 * pending there (ASOCK_EBUSY), and other operations refuse a multishot op
 * (ASOCK_EKIND).
 * \param op the op.
 * \param enable non-zero for multishot, 0 for one-shot.
 * \return 0; ASOCK_EBUSY while pending; ASOCK_EINVAL for NULL.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_multishot(asock_op *op, int enable);

/** \param op the op.
 * \return 1 if the op's receives are multishot, else 0.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_multishot(const asock_op *op);

/** \param op the op.
 * \return 1 inside a delivery callback of a multishot receive (another
 *   delivery or the final completion will follow), 0 in a final completion
 *   and everywhere else.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_more(const asock_op *op);

/** Takes the pool slice holding the op's data out of the op, so that the
 * data outlives the op's next receive (and can be sent, or handed to
 * another thread, without a copy). The slice is the application's from
 * then on: it gives it back with asock_pool_release(), from any thread.
 * A slice a receive took counts against its socket's quota until then
 * (even after the socket is closed), so that a socket whose slices are
 * not given back stops reading. The op has no buffer afterwards, and its
 * next receive takes a fresh slice when data arrives.
 * \param op the op.
 * \param slice_out receives the slice's first byte (what
 *   asock_pool_release() takes); NULL on error.
 * \param offset receives where the data starts in the slice (the window's
 *   offset); may be NULL.
 * \param len receives the bytes of the op's last operation (for a
 *   receive, the data's length); may be NULL.
 * \return 0; ASOCK_ENOSLICE if the op holds no slice (no buffer, or the
 *   caller's memory); ASOCK_EBUSY while pending, except inside a delivery
 *   callback of a multishot receive, where it may be called; ASOCK_EINVAL
 *   for NULL op or slice_out.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_detach_slice(asock_op *op, void **slice_out,
                                       size_t *offset, size_t *len);

/** Gives the op a slice the application holds (from asock_op_detach_slice()
 * or asock_pool_acquire()) as its buffer, as asock_op_take_slice() would:
 * the op holds it from then on and gives it back to the pool when its
 * buffer changes or it is released, so that a send of received bytes needs
 * no bookkeeping of its own. A slice taken from a receive keeps counting
 * against its socket until then. The application must not release the
 * slice itself afterwards, nor give one slice to two ops.
 * \param op the op.
 * \param slice the slice's first byte.
 * \param offset, count the window inside the slice.
 * \return 0; ASOCK_ENOTSLICE for a pointer outside the op's pool's slices,
 *   ASOCK_EMIDSLICE for one inside a slice, ASOCK_ENOTHELD for a free
 *   slice; ASOCK_EBOUNDS if the window does not fit the slice; ASOCK_EBUSY
 *   while pending; ASOCK_EINVAL for NULL. On error the op is unchanged.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_attach_slice(asock_op *op, void *slice, size_t offset,
                                       size_t count);

/** \param op the op.
 * \return how the op's buffer is held (ASOCK_BUFFER_NONE for NULL).
 *
 * Owner. */
ASOCK_EXTERN asock_buffer_mode asock_op_buffer_mode(const asock_op *op);

/** \param op the op.
 * \return the first byte of the op's window (memory + offset), or NULL when
 *   it has no buffer.
 *
 * Owner. */
ASOCK_EXTERN void *asock_op_data(const asock_op *op);

/** \param op the op.
 * \return the window's offset in the op's buffer.
 *
 * Owner. */
ASOCK_EXTERN size_t asock_op_offset(const asock_op *op);

/** \param op the op.
 * \return the first byte of the op's whole buffer (the slice, or the
 *   caller's memory; asock_op_data() minus asock_op_offset()), or NULL when
 *   it has none.
 *
 * Owner. */
ASOCK_EXTERN void *asock_op_buffer(const asock_op *op);

/** \param op the op.
 * \return the window's length (Count).
 *
 * Owner. */
ASOCK_EXTERN size_t asock_op_count(const asock_op *op);

/** \param op the op.
 * \return the length of the op's whole buffer memory.
 *
 * Owner. */
ASOCK_EXTERN size_t asock_op_capacity(const asock_op *op);

/** \param op the op.
 * \return bytes moved by the last operation (BytesTransferred).
 *
 * Owner. */
ASOCK_EXTERN size_t asock_op_bytes(const asock_op *op);

/** \param op the op.
 * \return the last operation's result: 0 or a negative error code (the
 *   SocketError). ASOCK_EINVAL for a NULL op.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_status(const asock_op *op);

/** \param op the op.
 * \return what the op did last (LastOperation).
 *
 * Owner. */
ASOCK_EXTERN asock_op_kind asock_op_last_kind(const asock_op *op);

/** \param op the op.
 * \return 1 if the op is pending (a multishot receive is, between and
 *   during its deliveries), 0 if it is idle.
 *
 * Any thread. */
ASOCK_EXTERN int asock_op_is_pending(const asock_op *op);

/** \param op the op.
 * \return 1 if the last operation completed inside the call that started
 *   it (the call returned 0), 0 otherwise.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_completed_synchronously(const asock_op *op);

/** \param op the op.
 * \return the op's per-socket sequence number, assigned when the last
 *   operation was posted: at the call on the loop's thread, or when the loop
 *   took it over from another thread. A socket counts each direction apart:
 *   receives, receive-froms and accepts draw from its receive counter;
 *   sends, sends of packets, send-tos, shutdowns, connects and
 *   disconnects from its send counter. Each
 *   counter starts at 1 and has no gaps among ops that started (returned 0
 *   or ASOCK_PENDING). A multishot receive takes no number when it starts:
 *   each delivery takes one, and its final completion one more, when they
 *   happen. 0 means never posted.
 *
 * Owner. */
ASOCK_EXTERN uint64_t asock_op_seq(const asock_op *op);

/** \param op the op.
 * \return the socket of the op's operation, once it started (returned 0
 *   or ASOCK_PENDING), or NULL before any. After a start that returned a
 *   negative code the value means nothing: the application knows the
 *   socket it passed.
 *
 * Owner. */
ASOCK_EXTERN asock_socket *asock_op_socket(const asock_op *op);

/** \param op the op.
 * \return the socket an accept produced (AcceptSocket), or NULL. The
 *   application owns it from the completion on.
 *
 * Owner. */
ASOCK_EXTERN asock_socket *asock_op_accepted(const asock_op *op);

/** Sets the peer address a connect or send-to uses.
 * \param op the op.
 * \param addr an AF_INET or AF_INET6 address.
 * \return 0; ASOCK_EAFNOSUPPORT for another family; ASOCK_EINVAL for NULL;
 *   ASOCK_EBUSY while pending.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_remote(asock_op *op, const struct sockaddr *addr);

/** \param op the op.
 * \return the op's peer address (what a receive-from or accept filled in,
 *   or what asock_op_set_remote() set), or NULL if it has none.
 *
 * Owner. */
ASOCK_EXTERN const struct sockaddr *asock_op_remote(const asock_op *op);

/** Sets a deadline for the op's next operations, counted from each start.
 * \param op the op.
 * \param timeout_ms milliseconds; 0 means none.
 * \return 0; ASOCK_EBUSY while pending; ASOCK_EINVAL for NULL.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_set_timeout(asock_op *op, uint64_t timeout_ms);

/** \param op the op.
 * \return the op's timeout in milliseconds, 0 for none.
 *
 * Owner. */
ASOCK_EXTERN uint64_t asock_op_timeout(const asock_op *op);

/** \param op the op.
 * \return the pool the op belongs to, or NULL.
 *
 * Any thread. */
ASOCK_EXTERN asock_pool *asock_op_pool(const asock_op *op);

/** A flag of asock_op_msg_flags(): the datagram was longer than the
 * receive's buffer. The op holds the bytes that fit; the rest is lost. */
#define ASOCK_MSG_TRUNCATED 0x1u

/** \param op the op.
 * \return the flags (ASOCK_MSG_*) of the datagram the op's last
 *   receive-from or receive-message-from completed with; 0 after any other
 *   operation.
 *
 * Owner. */
ASOCK_EXTERN unsigned int asock_op_msg_flags(const asock_op *op);

/** The packet information of the datagram a receive-message-from completed
 * with (IPPacketInformation): the address it was sent to, which tells a
 * socket bound to a wildcard address which of the host's addresses the peer
 * used, and the index of the interface it came in on.
 * \param op the op.
 * \param addr receives the destination address (its port is the socket's);
 *   may be NULL. On a dual-stack IPv6 socket an IPv4 datagram's destination
 *   is IPv4-mapped (\::ffff:a.b.c.d), as its sender is, on every platform.
 * \param ifindex receives the interface index; may be NULL.
 *
 * A datagram that arrived before the socket asked for packet information
 * (see ASOCK_UDP_PKTINFO) has none: the address has family AF_UNSPEC and
 * the index is 0.
 * \return 0; ASOCK_EKIND if the op's last operation was not a
 *   receive-message-from that succeeded; ASOCK_EINVAL for a NULL op.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_packet_info(const asock_op *op,
                                      struct sockaddr_storage *addr,
                                      unsigned int *ifindex);

/* ------------------------------------------------------------------------ */
/* Completion ordering                                                       */
/* ------------------------------------------------------------------------ */

/** Creates the ordering state of one stream (one socket's completions). Items
 * pushed with sequence numbers first .. are taken out in exactly that order,
 * each once, whatever order and threads they were pushed from.
 * \param seq_out receives the stream; NULL on error.
 * \param window how far ahead of the next expected number a push may be; a
 *   power of two from 2 to 2^20. Memory is fixed: window slots.
 * \param first the first sequence number expected.
 * \return 0; ASOCK_EINVAL for a NULL out or a bad window; ASOCK_ENOMEM.
 *
 * Any thread. */
ASOCK_EXTERN int asock_seq_create(asock_seq **seq_out, uint32_t window,
                                  uint64_t first);

/** Destroys a stream. Items still in it are dropped (they are the caller's).
 * \param seq the stream.
 * \return 0, or ASOCK_EINVAL for NULL.
 *
 * Any thread, once no other uses the stream. */
ASOCK_EXTERN int asock_seq_destroy(asock_seq *seq);

/** Hands an item to the stream. Lock-free.
 * \param seq the stream.
 * \param number the item's sequence number.
 * \param item the item; may be NULL.
 * \return 0; ASOCK_EDUPLICATE if that number was already pushed or already
 *   taken; ASOCK_EWINDOW if it is window or more ahead of the next expected
 *   number (push it again once the consumer has caught up); ASOCK_EINVAL for
 *   NULL or a number beyond 2^62. Nothing is stored on error.
 *
 * Any thread. */
ASOCK_EXTERN int asock_seq_push(asock_seq *seq, uint64_t number, void *item);

/** Takes the next item in order, if it has arrived.
 * \param seq the stream.
 * \param item_out receives the item.
 * \param number_out receives its number; may be NULL.
 * \return 0; ASOCK_EAGAIN if the next item has not arrived (a gap waits);
 *   ASOCK_EBUSY if another thread is taking from the stream at this moment;
 *   ASOCK_EINVAL for NULL.
 *
 * Any thread, one consumer at a time (a second gets ASOCK_EBUSY). */
ASOCK_EXTERN int asock_seq_pop(asock_seq *seq, void **item_out,
                               uint64_t *number_out);

/** \param seq the stream.
 * \return the next number asock_seq_pop() will hand out.
 *
 * Any thread. */
ASOCK_EXTERN uint64_t asock_seq_next(const asock_seq *seq);

/* ------------------------------------------------------------------------ */
/* Loops                                                                     */
/* ------------------------------------------------------------------------ */

/** Creates an asock loop over a libuv loop.
 * \param loop_out receives the loop; NULL on error.
 * \param pool the pool every socket of this loop takes its slices from, and
 *   whose ops are the only ones this loop's sockets accept. Several loops
 *   may share one pool.
 * \param uv_loop an existing libuv loop to embed asock into (the
 *   application keeps running it with uv_run()), or NULL for a loop asock
 *   creates and owns.
 * \return 0; ASOCK_EINVAL for NULL loop_out or pool; ASOCK_ENOMEM; or a
 *   libuv error initialising the loop's handles.
 *
 * The thread that calls this becomes the loop's thread, until asock_loop_run()
 * is called on another.
 *
 * On Unix it sets SIGPIPE to ignored unless the application already chose a
 * disposition for it, so that a write to a connection the peer reset is an
 * error code (ASOCK_EPIPE or ASOCK_ECONNRESET), not the end of the process. */
ASOCK_EXTERN int asock_loop_create(asock_loop **loop_out, asock_pool *pool,
                                   uv_loop_t *uv_loop);

/** How a loop moves bytes: its backend. docs/backends.md compares them. */
typedef enum asock_backend {
  /** Chosen at loop creation: the readiness backend on Unix, IOCP on
   * Windows. The environment variable ASOCK_BACKEND ("io_uring",
   * "readiness" or "auto") chooses for loops created with AUTO; a backend it
   * names that cannot run here falls back to the platform's own, silently. */
  ASOCK_BACKEND_AUTO = 0,
  /** Unix: epoll or kqueue through libuv's poll handle; asock makes the
   * system calls when the kernel says they will not block. */
  ASOCK_BACKEND_READINESS = 1,
  /** Windows: I/O completion ports, through libuv's TCP handle. */
  ASOCK_BACKEND_IOCP = 2,
  /** Linux: io_uring, on the libuv loop (no thread of its own). TCP sockets'
   * receives, sends, accepts and connects are submitted to the kernel's
   * ring, submissions are flushed once per loop iteration, and the kernel
   * picks a pool slice for a receive only when its data arrives. UDP
   * sockets are run the readiness way on such a loop. Built when liburing
   * is found (Debian: liburing-dev); a kernel or sandbox that refuses
   * io_uring cannot run it. */
  ASOCK_BACKEND_IO_URING = 3
} asock_backend;

/** How a loop is to be made (asock_loop_create_config()). Fields may be
 * added at the end in a minor release; struct_size tells asock which the
 * program knows. */
typedef struct asock_loop_config {
  /** sizeof(asock_loop_config) as the program was compiled; set by
   * asock_loop_config_init(). */
  size_t struct_size;
  /** The backend; ASOCK_BACKEND_AUTO (the default) lets asock choose. */
  asock_backend backend;
} asock_loop_config;

/** Fills the first struct_size bytes of a config with the defaults, as
 * asock_pool_config_init_size() does for a pool's.
 * \param config where to write; NULL is ignored.
 * \param struct_size sizeof(asock_loop_config) as the program knows it.
 *
 * Any thread. */
ASOCK_EXTERN void asock_loop_config_init_size(asock_loop_config *config,
                                              size_t struct_size);

/** Fills a config with the defaults (and its struct_size).
 * \param config where to write; NULL is ignored.
 *
 * Any thread. */
static inline void asock_loop_config_init(asock_loop_config *config) {
  asock_loop_config_init_size(config, sizeof(*config));
}

/** asock_loop_create() with a config.
 * \param loop_out receives the loop; NULL on error.
 * \param pool as for asock_loop_create().
 * \param uv_loop as for asock_loop_create().
 * \param config the loop's config; NULL means the defaults.
 * \return what asock_loop_create() returns; ASOCK_EINVAL also for a config
 *   whose struct_size no config has, or an unknown backend;
 *   ASOCK_ENOTSUP for a backend this build or this kernel cannot run
 *   (asked for by the config, not by the environment variable).
 *
 * Any thread, as asock_loop_create(). */
ASOCK_EXTERN int asock_loop_create_config(asock_loop **loop_out,
                                          asock_pool *pool, uv_loop_t *uv_loop,
                                          const asock_loop_config *config);

/** The backend a loop runs: never ASOCK_BACKEND_AUTO.
 * \param loop the loop.
 * \return the backend; ASOCK_BACKEND_AUTO for NULL.
 *
 * Any thread. */
ASOCK_EXTERN asock_backend asock_loop_backend(const asock_loop *loop);

/** A backend's name: "auto", "readiness", "iocp" or "io_uring".
 * \param backend the backend.
 * \return a static string; "unknown" for a value no backend has.
 *
 * Any thread. */
ASOCK_EXTERN const char *asock_backend_name(asock_backend backend);

/** Runs the loop (uv_run()) on the calling thread, which becomes the loop's
 * thread. As libuv does, it returns once nothing keeps the loop alive: a
 * socket waiting for I/O does, but asock's own handles do not, so a loop
 * whose only work is ops handed over from other threads (or tasks) is kept
 * alive with asock_loop_keep_alive() (a loop group's loops are).
 * \param loop the loop.
 * On the io_uring backend, where the kernel runs the ring's completion work
 * on the loop's thread alone (docs/backends.md), the ring belongs to the
 * first thread that submitted to it (the one that ran the loop, or started
 * its first connect): a later run from another thread is refused.
 * \param mode UV_RUN_DEFAULT, UV_RUN_ONCE or UV_RUN_NOWAIT.
 * \return what uv_run() returns (non-zero if handles are still active),
 *   ASOCK_EINVAL for NULL, or ASOCK_ETHREAD for a ring that is another
 *   thread's (nothing ran).
 *
 * The loop's thread; not while the loop is already running. */
ASOCK_EXTERN int asock_loop_run(asock_loop *loop, uv_run_mode mode);

/** A function to run on a loop's thread (asock_loop_post()). The caller
 * owns the struct; asock uses `next` while the task is posted. */
typedef struct asock_task asock_task;
/** Runs on the loop's thread, with the task that was posted. */
typedef void (*asock_task_fn)(asock_loop *loop, asock_task *task);
/** What a task holds: the application sets fn and data. */
struct asock_task {
  asock_task_fn fn; /**< runs the task; asock_loop_post() needs one */
  void *data;       /**< the application's, for fn; asock never reads it */
  asock_task *next; /**< asock's while the task is posted */
};

/** Runs task->fn on the loop's thread, soon, never inside this call: the
 * way for another thread to create sockets on a loop, set options or read
 * state it may not touch itself. Tasks run in posting order. Nothing is
 * allocated; the task must stay valid, and must not be posted again, until
 * its function has started. A task still posted when the loop closes runs
 * inside asock_loop_close(). "Soon" needs the loop running: one with
 * nothing active returns from asock_loop_run() (see there), so a loop that
 * serves other threads' tasks keeps running with asock_loop_keep_alive().
 * \param loop the loop.
 * \param task the task; its fn must be set.
 * \return 0; ASOCK_EINVAL for NULL or a task without a function.
 *
 * Any thread. */
ASOCK_EXTERN int asock_loop_post(asock_loop *loop, asock_task *task);

/** Makes a running asock_loop_run() return soon.
 * \param loop the loop.
 * \return 0, or ASOCK_EINVAL for NULL.
 *
 * Any thread. */
ASOCK_EXTERN int asock_loop_stop(asock_loop *loop);

/** Makes the loop stay alive by itself (enable non-zero), as an IOCP
 * thread does: asock_loop_run() with UV_RUN_DEFAULT then returns only after
 * asock_loop_stop(), even while nothing is pending, so that a server loop
 * whose work is handed over from other threads (asock_loop_post(), ops
 * started elsewhere) waits for it. Off by default, as libuv's handles are:
 * a loop then returns once nothing keeps it alive. An embedded uv_loop_t is
 * kept alive the same way.
 * \param loop the loop.
 * \param enable non-zero to keep it alive, 0 not to.
 * \return 0; ASOCK_EINVAL for NULL; ASOCK_ETHREAD off the loop's thread.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_loop_keep_alive(asock_loop *loop, int enable);

/** Closes every socket still open on the loop (each pending op completes with
 * ASOCK_ECANCELED, exactly once), waits until every handle asock opened is
 * closed, and frees the loop. An embedded libuv loop is run with
 * UV_RUN_NOWAIT for that (so application callbacks may run) and is left
 * open; an owned one is closed.
 * \param loop the loop.
 * \return 0; ASOCK_EINVAL for NULL; ASOCK_EBUSY if called from inside one of
 *   the loop's own callbacks.
 *
 * The loop's thread, while asock_loop_run() is not running. */
ASOCK_EXTERN int asock_loop_close(asock_loop *loop);

/** \param loop the loop.
 * \return the libuv loop under the asock loop, or NULL.
 *
 * Any thread. */
ASOCK_EXTERN uv_loop_t *asock_loop_uv(const asock_loop *loop);

/** \param loop the loop.
 * \return the loop's pool, or NULL.
 *
 * Any thread. */
ASOCK_EXTERN asock_pool *asock_loop_pool(const asock_loop *loop);

/* ------------------------------------------------------------------------ */
/* TCP sockets                                                               */
/* ------------------------------------------------------------------------ */

/** Listen flag: the socket accepts only IPv6 (IPV6_V6ONLY). */
#define ASOCK_LISTEN_IPV6ONLY 0x1u
/** Listen flag: set SO_REUSEADDR before binding. libuv already sets it on
 * Unix; on Windows asock leaves it off unless asked, because there it lets
 * another process steal the port. */
#define ASOCK_LISTEN_REUSEADDR 0x2u
/** Listen flag: the kernel holds a new connection until it has sent
 * something, so that an idle connection costs no socket and wakes nobody
 * (Linux TCP_DEFER_ACCEPT, for up to ASOCK_DEFER_ACCEPT_S seconds, after
 * which the connection is accepted anyway). For listeners served by
 * asock_accept_receive(), which keeps its contract with or without it; a
 * plain asock_accept() on such a listener gets only connections that have
 * sent something, or waited that long. No effect on other platforms. */
#define ASOCK_LISTEN_DEFER_ACCEPT 0x8u
/** How long ASOCK_LISTEN_DEFER_ACCEPT lets the kernel hold a connection
 * that sends nothing. */
#define ASOCK_DEFER_ACCEPT_S 30

/** Close flag: reset the connection (RST, through SO_LINGER 0) instead of
 * closing it gracefully. */
#define ASOCK_CLOSE_ABORT 0x1u

/** Told when the bytes queued for sending on a socket rise to the high
 * watermark (above = 1) or fall back to the low one (above = 0). Runs on the
 * loop thread, never inside an asock call. Whether a fall to the low mark is
 * told before or after the completions of the sends that drained the queue
 * depends on the platform: an application that waits for both must not
 * count on their order. */
typedef void (*asock_watermark_cb)(asock_socket *sock, int above);

/** Creates a TCP socket on a loop, to listen or to connect with. Sockets
 * that accept ops produce come ready-made.
 * \param sock_out receives the socket; NULL on error.
 * \param loop the loop; the socket belongs to it for its whole life.
 * \return 0; ASOCK_EINVAL for NULL; ASOCK_ENOMEM.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_tcp_create(asock_socket **sock_out, asock_loop *loop);

/** Bind flag: an IPv6 socket takes only IPv6 (IPV6_V6ONLY); without it an
 * IPv6 socket is dual-stack on every platform. */
#define ASOCK_BIND_IPV6ONLY 0x1u
/** Bind flag: SO_REUSEADDR. On Windows it lets the socket bind a port
 * another socket holds (or take it over), so asock sets it only when asked;
 * on Unix, where it lets a socket bind over connections left in TIME_WAIT
 * and never lets two sockets listen on one port, every TCP socket that
 * binds has it, as libuv's do, unless ASOCK_BIND_EXCLUSIVE says otherwise.
 */
#define ASOCK_BIND_REUSEADDR 0x2u
/** Bind flag: no other socket may bind the port (ExclusiveAddressUse):
 * SO_EXCLUSIVEADDRUSE on Windows; on Unix SO_REUSEADDR is left off (with
 * it, Linux lets two sockets bind one port while neither listens), at the
 * price of not binding over connections in TIME_WAIT. Not with
 * ASOCK_BIND_REUSEADDR. */
#define ASOCK_BIND_EXCLUSIVE 0x4u

/** Binds a TCP socket to a local address before it connects or listens
 * (Socket.Bind): it gets its OS socket now, with the options set on it
 * before, and the option, address and OS-handle functions work on it from
 * here on. A connect then leaves from this address; a listen
 * (asock_tcp_listen() with a NULL address) listens on it. A connect that
 * fails undoes the bind with the rest (asock_connect()).
 * \param sock a TCP socket from asock_tcp_create(), not yet used.
 * \param addr an IPv4 or IPv6 address; port 0 picks a free port.
 * \param flags ASOCK_BIND_* flags.
 * \return 0; ASOCK_EINVAL for NULL, unknown flags, or REUSEADDR with
 *   EXCLUSIVE; ASOCK_EKIND for a UDP socket, or one already bound,
 *   listening, connected or connecting; ASOCK_ECLOSED; ASOCK_EAFNOSUPPORT; a
 *   system error (ASOCK_EADDRINUSE, ASOCK_EACCES, ...), after which the
 *   socket is as it was.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_tcp_bind(asock_socket *sock, const struct sockaddr *addr,
                                unsigned int flags);

/** Binds a socket and starts listening.
 * \param sock a socket from asock_tcp_create() not yet used, or bound with
 *   asock_tcp_bind().
 * \param addr an IPv4 or IPv6 address; port 0 picks a free port. NULL for
 *   a socket already bound, which listens where it is bound.
 * \param backlog the kernel's accept backlog.
 * \param flags ASOCK_LISTEN_* flags.
 * \return 0; ASOCK_EINVAL for a NULL socket, unknown flags, or a NULL
 *   address for a socket not bound; ASOCK_EKIND if the socket is connected,
 *   already listening, or bound and given an address; ASOCK_ECLOSED once
 *   closed; a system error (ASOCK_EADDRINUSE, ASOCK_EACCES, ...). A listen
 *   that fails after the bind leaves the socket bound.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_tcp_listen(asock_socket *sock,
                                  const struct sockaddr *addr, int backlog,
                                  unsigned int flags);

/** Accepts a connection (AcceptAsync). Several accept ops may be posted at
 * once; they complete in posting order. On success asock_op_accepted()
 * gives the new socket, which the application must close, and
 * asock_op_remote() the peer's address.
 * When the host runs out of descriptors or memory (ASOCK_EMFILE,
 * ASOCK_ENFILE, ASOCK_ENOBUFS, ASOCK_ENOMEM), the first waiting accept
 * completes with that error and the listener stops taking connections for
 * ASOCK_ACCEPT_PAUSE_MS: they wait in the kernel's backlog, and an accept
 * posted meanwhile waits too (or completes at once if the connection can
 * be taken now), so that posting again from the callback does not spin.
 * \param listener a listening TCP socket.
 * \param op an idle op of the loop's pool.
 * \return 0 if a connection was already waiting (accepted now, no
 *   callback); ASOCK_PENDING; or, without starting: ASOCK_EINVAL for NULL,
 *   ASOCK_EKIND if the socket is not listening, ASOCK_EFOREIGN for an op of
 *   another pool, ASOCK_EBUSY if the op is pending, ASOCK_ECLOSED.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_accept(asock_socket *listener, asock_op *op);

/** Accepts a connection and receives its first bytes (AcceptAsync with a
 * buffer): the op completes only once a new connection has sent something,
 * with asock_op_accepted() the new socket (the application's, to close),
 * the bytes in the op's window as a receive would have them (an op
 * without a buffer takes a pool slice when they arrive), and
 * asock_op_bytes() their count. A connection that ends before it sends
 * anything is closed by asock and never reported: the op waits for the
 * next one, so that idle connections never reach the application. As
 * for asock_accept(), asock_op_socket() is the listener. The op's timeout
 * counts from the start: when it passes first, the op completes with
 * ASOCK_ETIMEDOUT, and asock_op_accepted() is the connection taken that has
 * sent nothing yet (the application's, to close) or NULL when none came.
 * asock_cancel() ends it the same way, with ASOCK_ECANCELED; when the listener
 * or the loop closes, the connection taken is closed with it and
 * asock_op_accepted() is NULL. Listening with ASOCK_LISTEN_DEFER_ACCEPT lets
 * the kernel hold the connections until they send, where it can.
 * \param listener a listening TCP socket.
 * \param op an idle op of the loop's pool, with a window for the first bytes or
 *   no buffer.
 * \return 0 if a connection with bytes was already there (both taken now, no
 *   callback); ASOCK_PENDING; or, without starting, what asock_accept()
 *   returns, and what asock_receive() returns for the op's buffer
 *   (ASOCK_EINVAL for an empty window, ASOCK_EKIND for a buffer list).
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_accept_receive(asock_socket *listener, asock_op *op);
/** How long a listener that ran out of descriptors or memory waits before
 * it takes connections again; see asock_accept(). */
#define ASOCK_ACCEPT_PAUSE_MS 100

/** Connects to the address set with asock_op_set_remote() (ConnectAsync).
 * A connect that fails (ASOCK_ECONNREFUSED, ASOCK_ENETUNREACH, ...) leaves
 * the socket as it was made, able to connect again, to the same address or
 * another; one that times out or is cancelled closes it (its next start
 * returns ASOCK_ECLOSED).
 * \param sock a TCP socket that neither listens nor is connected.
 * \param op an idle op of the loop's pool, with the peer's address set.
 * \return ASOCK_PENDING; or, without starting: ASOCK_EINVAL for NULL or an
 *   op with no remote address, ASOCK_EKIND if the socket listens or is
 *   connected or connecting, ASOCK_EFOREIGN, ASOCK_EBUSY, ASOCK_ECLOSED, or
 *   a system error libuv reports at once. The op's status on completion is
 *   0 or the error (ASOCK_ECONNREFUSED, ASOCK_ETIMEDOUT, ...).
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_connect(asock_socket *sock, asock_op *op);

/** Resolves a host name (uv_getaddrinfo) and connects to each address it
 * yields in turn until one accepts. The address connected to is left in the
 * op (asock_op_remote()).
 * \param sock a TCP socket that neither listens nor is connected.
 * \param op an idle op of the loop's pool.
 * \param host a host name or numeric address; copied, need not outlive the
 *   call.
 * \param port the TCP port.
 * \return as asock_connect(); a name that does not resolve completes with
 *   ASOCK_EAI_NONAME (or another ASOCK_EAI_* code).
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_connect_host(asock_socket *sock, asock_op *op,
                                    const char *host, unsigned short port);

/** \param op the op.
 * \return how many addresses the op's last asock_connect_host() tried
 *   (ConnectByNameError), 0 when its last operation was something else or
 *   the name did not resolve.
 *
 * Owner, once the op is idle. */
ASOCK_EXTERN size_t asock_op_connect_attempts(const asock_op *op);

/** One address the op's last asock_connect_host() tried, in the order
 * tried, and how that attempt ended: 0 for the one that connected, else
 * its error (ASOCK_ECONNREFUSED, ASOCK_ETIMEDOUT, ASOCK_ECANCELED...).
 * \param op the op.
 * \param index from 0 to asock_op_connect_attempts() - 1.
 * \param addr receives the address; may be NULL.
 * \param error receives the attempt's result; may be NULL.
 * \return 0; ASOCK_EINVAL for a NULL op or an index out of range;
 *   ASOCK_EBUSY while pending.
 *
 * Owner. */
ASOCK_EXTERN int asock_op_connect_attempt(const asock_op *op, size_t index,
                                          struct sockaddr_storage *addr,
                                          int *error);

/** Sends the op's window, or its buffer list when one is set (SendAsync).
 * When no earlier send is queued the bytes go straight to the kernel; only
 * what it does not take at once is queued. Sends reach the wire in posting
 * order; sends queued behind a blocked one leave together in one vectored
 * write when the socket drains.
 * \param sock a connected TCP socket.
 * \param op an idle op of the loop's pool, with the bytes in its window or
 *   buffer list.
 * \return 0 if it completed in the call: the status is in the op, 0 with
 *   asock_op_bytes() = every byte, or a connection error (ASOCK_EPIPE,
 *   ASOCK_ECONNRESET, ...) found by the attempt; ASOCK_PENDING; or, without
 *   starting: ASOCK_EINVAL for NULL or a buffer list entry with a length
 *   and no memory, ASOCK_EBOUNDS for a list whose lengths add up past
 *   SIZE_MAX, ASOCK_EKIND for a listening socket,
 *   ASOCK_EFOREIGN, ASOCK_EBUSY, ASOCK_ECLOSED, ASOCK_ENOTCONN before a
 *   connection, ASOCK_ENOBUFS if the bytes would take the socket's queue past
 *   its hard cap.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_send(asock_socket *sock, asock_op *op);

/** Sends the op's list of pieces (asock_op_set_packets()), memory and file
 * ranges, as one stream (SendPacketsAsync): a file (a header, a file, a
 * trailer) goes out without the application reading it. The send takes
 * its place among the socket's sends in posting order, and completes like
 * asock_send(): asock_op_bytes() is the list's bytes, or on an error how
 * many of them went. File ranges go from the file to the socket in the
 * kernel where the platform can (sendfile() on Linux); elsewhere, and for
 * files sendfile() does not take, each range is read a pool slice at a
 * time on libuv's thread pool and sent from the slice: such a send waits
 * while the pool has no free slice, or fails with ASOCK_ENOBUFS if the
 * pool fails fast. Memory pieces and the sends around it are never
 * copied.
 * \param sock a connected TCP socket.
 * \param op an idle op of the loop's pool, with its list of pieces set.
 * \return as asock_send(), and: ASOCK_EINVAL if no list is set;
 *   completion ASOCK_EOF if a file ends before its range does (the bytes
 *   before it went); the file's read error. A send of packets that fails
 *   after some of its bytes went ends the socket's sending (the peer has
 *   part of the list): later sends fail with ASOCK_ECANCELED. One that
 *   fails before any went (a bad descriptor, a file shorter than its
 *   offset) fails alone. A cancel or timeout ends it as for asock_send():
 *   while it waits behind other sends, or for its file read or a slice,
 *   the connection stays; once its bytes are going, it is reset.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_send_packets(asock_socket *sock, asock_op *op);

/** Receives into the op's window (ReceiveAsync). An op with no buffer (or
 * holding the slice a previous buffer-less receive gave it) takes a pool
 * slice only when data is there, and holds none while it waits; the
 * completed op then holds that slice, with the window covering exactly the
 * bytes received (asock_op_detach_slice() takes it out). A receive into a
 * window of the op's own (memory the application set, or a slice the op
 * holds) leaves the window as it was: the bytes are at its start, and
 * asock_op_bytes() says how many. Receives complete in posting order. End
 * of stream completes with ASOCK_EOF (and so does every later receive). On
 * a multishot op (asock_op_set_multishot()) the receive stays posted and
 * delivers every chunk as it is read.
 * \param sock a connected TCP socket.
 * \param op an idle op of the loop's pool, with a window to receive into or no
 *   buffer.
 * \return 0 if data (or the end of the stream, or an error) was already
 *   there: the status is in the op (never for a multishot receive);
 *   ASOCK_PENDING; or, without starting: ASOCK_EINVAL for NULL or an empty
 *   window, ASOCK_EKIND for a listening socket or an op with a buffer
 *   list, ASOCK_EFOREIGN, ASOCK_EBUSY (the op is pending, or a multishot
 *   receive is pending on the socket), ASOCK_ECLOSED, ASOCK_ENOTCONN, and
 *   with ASOCK_POOL_FAIL_FAST, ASOCK_ENOBUFS when no slice is free.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_receive(asock_socket *sock, asock_op *op);

/** Shuts the sending side down once every queued send has gone out, then
 * closes the socket (DisconnectAsync). The op completes when the socket is
 * closed; pending receives complete with ASOCK_ECANCELED. The application
 * still calls asock_socket_close() to release the socket. After
 * asock_shutdown() has completed it only closes. To read what the peer
 * still sends after the last bytes sent, use asock_shutdown() instead.
 * \param sock a connected TCP socket.
 * \param op an idle op of the loop's pool.
 * \return ASOCK_PENDING; or, without starting: ASOCK_EINVAL, ASOCK_EKIND
 *   for a listening socket, ASOCK_ENOTCONN, ASOCK_EFOREIGN, ASOCK_EBUSY,
 *   ASOCK_ECLOSED (also when a disconnect or a shutdown is already under
 *   way).
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_disconnect(asock_socket *sock, asock_op *op);

/** Shuts the sending side down (Shutdown(SocketShutdown.Send)): once every
 * send queued before it is on the wire, the peer is sent the end of the
 * stream (FIN). Receives go on until the peer's own end of the stream, so
 * that the pattern "send the last bytes, shut down, read until ASOCK_EOF,
 * close" works; sends started after it fail with ASOCK_ESHUTDOWN.
 * asock_disconnect() may follow it, and then only closes the socket.
 * Cancelling a shutdown that still waits for earlier sends, or its timeout,
 * takes it back (the socket may send again); once the FIN is on its way
 * it cannot be taken back, and the connection is reset.
 * \param sock a connected TCP socket.
 * \param op an idle op of the loop's pool, not multishot.
 * \return 0 if it completed in the call (nothing was queued: on Unix the
 *   FIN is handed to the kernel at once), with the status in the op;
 *   ASOCK_PENDING; or, without starting: ASOCK_EINVAL, ASOCK_EKIND for a
 *   listening or UDP socket or a multishot op, ASOCK_ENOTCONN,
 *   ASOCK_ESHUTDOWN if the sending side is already shut down (or a
 *   disconnect is under way), ASOCK_EFOREIGN, ASOCK_EBUSY, ASOCK_ECLOSED.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_shutdown(asock_socket *sock, asock_op *op);

/** Cancels one pending op: it completes with ASOCK_ECANCELED, through its
 * callback, soon after. A send whose bytes are partly on the wire cannot be
 * taken back: cancelling it resets the connection (the stream could not go
 * on), and every other op of the socket completes with ASOCK_ECANCELED.
 * \param op a pending op.
 * \return 0; ASOCK_ENOTPENDING if the op is idle; ASOCK_EINVAL for NULL.
 *
 * Any thread (handed to the loop from another, as an operation start). */
ASOCK_EXTERN int asock_cancel(asock_op *op);

/** Closes a socket. Every pending op completes with ASOCK_ECANCELED, exactly
 * once, through its callback, after this call returns. The socket's memory
 * goes back once libuv has closed the handle; the pointer must not be used
 * after this call.
 * \param sock a TCP or UDP socket.
 * \param flags 0 for a graceful close (FIN), ASOCK_CLOSE_ABORT for a reset.
 * \return 0; ASOCK_EINVAL for NULL or unknown flags; ASOCK_ECLOSED if the
 *   socket was already closed.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_close(asock_socket *sock, unsigned int flags);

/** Sets what a graceful asock_socket_close() does with sends still queued
 * (LingerState). Off (the default), they complete with ASOCK_ECANCELED
 * and what the kernel has goes out before the FIN. On with a time of 0,
 * the close resets the connection, as ASOCK_CLOSE_ABORT does. On with a
 * time, the close ends the socket's receives but lets its queued sends go
 * out, each completing as usual, for up to timeout_s seconds; then the
 * FIN follows, or, when the time is up first, the connection is reset and
 * the sends still queued complete with ASOCK_ECANCELED. asock lingers
 * itself, counting on its loop's timer: the OS's SO_LINGER would make the
 * close block the loop's thread. The socket's memory stays until then.
 * \param sock a TCP socket.
 * \param enable non-zero for on, 0 for off.
 * \param timeout_s when on, how long the queued sends may take, in seconds; 0
 *   resets the connection at the close.
 * \return 0; ASOCK_EINVAL for NULL; ASOCK_EKIND for a UDP socket;
 *   ASOCK_ECLOSED.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_linger(asock_socket *sock, int enable,
                                         unsigned int timeout_s);

/** Sets TCP_NODELAY (NoDelay). Like every TCP option below, it may be set
 * at any time from the socket's creation on: before the socket has its OS
 * socket (which asock makes at asock_tcp_bind(), asock_tcp_listen() or
 * asock_connect(), when the address family is known) the option is kept,
 * and set on the OS socket as it is made, before it binds or connects;
 * after, it is set at once. An option the OS refuses when the OS socket is
 * made fails that bind, listen or connect with the OS's error.
 * \param sock a TCP socket.
 * \param enable non-zero to set the option, 0 to clear it.
 * \return 0; ASOCK_EINVAL; ASOCK_EKIND for a UDP socket; ASOCK_ECLOSED;
 *   ASOCK_ENOMEM; or the OS's error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_nodelay(asock_socket *sock, int enable);

/** Sets SO_KEEPALIVE with the idle time before the first probe (0 leaves
 * the system's). Kept until the OS socket exists, as asock_socket_set_nodelay()
 * says.
 * \param sock a TCP socket.
 * \param enable non-zero to set SO_KEEPALIVE, 0 to clear it.
 * \param delay_s the idle seconds before the first probe; 0 leaves the
 *   system's.
 * \return as asock_socket_set_nodelay().
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_keepalive(asock_socket *sock, int enable,
                                            unsigned int delay_s);

/** Sets the keepalive probes: the seconds between probes (TCP_KEEPINTVL)
 * and how many go unanswered before the connection is dropped
 * (TCP_KEEPCNT); 0 leaves either as it is. Kept until the OS socket
 * exists, as asock_socket_set_nodelay() says.
 * \param sock a TCP socket.
 * \param interval_s the seconds between probes; 0 leaves it as it is.
 * \param count the probes that go unanswered before the connection is dropped;
 *   0 leaves it as it is.
 * \return as asock_socket_set_nodelay(); ASOCK_ENOTSUP where the platform
 *   has no such options (Windows before 10 1709).
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_keepalive_probes(asock_socket *sock,
                                                   unsigned int interval_s,
                                                   unsigned int count);

/** Reads or sets the kernel's send buffer size (SO_SNDBUF). On a TCP socket
 * without its OS socket yet the size set is kept, as
 * asock_socket_set_nodelay() says, and read back as set; a UDP socket needs
 * its OS socket (ASOCK_ENOTCONN before its bind).
 * \param sock a TCP or UDP socket.
 * \param value in: 0 to read, or the size to set; out: the size. Linux
 *   reports twice what was set, as it reserves room for bookkeeping.
 * \return 0 or an error (ASOCK_ENOTCONN when reading a size neither set
 *   nor yet the OS's).
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_send_buffer_size(asock_socket *sock, int *value);

/** As asock_socket_send_buffer_size(), for SO_RCVBUF.
 * \param sock a TCP or UDP socket.
 * \param value as for asock_socket_send_buffer_size().
 * \return as asock_socket_send_buffer_size().
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_recv_buffer_size(asock_socket *sock, int *value);

/** The socket's own address. It needs the OS socket: a TCP socket has one
 * once bound, listening or connected.
 * \param sock the socket.
 * \param addr receives it.
 * \param len in: the room; out: the length.
 * \return 0 or an error (ASOCK_ENOTCONN, ASOCK_EINVAL...).
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_local_address(asock_socket *sock,
                                            struct sockaddr *addr, int *len);

/** The peer's address; as asock_socket_local_address().
 * \param sock a connected socket.
 * \param addr receives it.
 * \param len in: the room; out: the length.
 * \return as asock_socket_local_address().
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_remote_address(asock_socket *sock,
                                             struct sockaddr *addr, int *len);

/** The socket's OS socket (Socket.Handle): a file descriptor on Unix, a
 * SOCKET on Windows. It stays asock's: the application may set options on
 * it, but must not close it, read or write it, or change its blocking
 * mode; what it does with it is its own responsibility.
 * \param sock the socket.
 * \param out receives the OS socket.
 * \return 0; ASOCK_ENOTCONN before the socket has one; ASOCK_ECLOSED;
 *   ASOCK_EINVAL for NULL.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_fileno(const asock_socket *sock,
                                     uv_os_sock_t *out);

/** setsockopt() on the OS socket, for the options asock does not name
 * (SetSocketOption). asock does not check what it passes on: the option's
 * meaning, and what it does to asock's use of the socket, are the
 * application's responsibility.
 * \param sock the socket.
 * \param level, name the option, as setsockopt() takes them.
 * \param value, len its value and the value's length in bytes.
 * \return 0; ASOCK_ENOTCONN before the socket has its OS socket;
 *   ASOCK_EINVAL for NULL or a zero length; ASOCK_ECLOSED; or the OS's
 *   error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_option(asock_socket *sock, int level,
                                         int name, const void *value,
                                         size_t len);

/** getsockopt() on the OS socket (GetSocketOption), as
 * asock_socket_set_option().
 * \param sock the socket.
 * \param level, name the option, as getsockopt() takes them.
 * \param value receives its value.
 * \param len in: the room at value; out: the option's length.
 * \return as asock_socket_set_option().
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_get_option(asock_socket *sock, int level,
                                         int name, void *value, size_t *len);

/** Sets the send back-pressure limits of a socket. Defaults: low 16 KiB,
 * high 64 KiB, cap 0.
 * \param sock the socket.
 * \param low, high the watermarks, in queued bytes: the watermark callback
 *   is told when the queue reaches high, and again when it falls to low.
 * \param cap the hard cap: a send that would take the queue beyond it fails
 *   with ASOCK_ENOBUFS (a send into an empty queue is always allowed). 0
 *   means no cap.
 * \return 0; ASOCK_EINVAL if low > high, cap is non-zero and below high,
 *   or high or cap is 4 GiB or more.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_send_limits(asock_socket *sock, size_t low,
                                              size_t high, size_t cap);

/** Sets the callback asock_socket_set_send_limits() describes.
 * \param sock the socket.
 * \param cb the callback; NULL for none.
 * \return 0 or ASOCK_EINVAL.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_watermark_cb(asock_socket *sock,
                                               asock_watermark_cb cb);

/** \param sock the socket.
 * \return the bytes accepted by asock_send() and not yet taken by the
 *   kernel.
 *
 * The loop's thread. */
ASOCK_EXTERN size_t asock_socket_send_queued(const asock_socket *sock);

/** Sets the pointer the application keeps in the socket.
 * \param sock the socket.
 * \param user_data the pointer.
 * \return 0 or ASOCK_EINVAL.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_socket_set_user_data(asock_socket *sock,
                                            void *user_data);

/** \param sock the socket.
 * \return the socket's user data, or NULL.
 *
 * The loop's thread. */
ASOCK_EXTERN void *asock_socket_user_data(const asock_socket *sock);

/** \param sock the socket.
 * \return the socket's loop, or NULL.
 *
 * Any thread. */
ASOCK_EXTERN asock_loop *asock_socket_loop(const asock_socket *sock);

/** \param sock the socket.
 * \return the number of slices counted against the socket now (what the
 *   pool's socket_quota limits): those its receives hold, and those the
 *   application took from them and has not released.
 *
 * Any thread. */
ASOCK_EXTERN size_t asock_socket_slices_held(const asock_socket *sock);

/* ------------------------------------------------------------------------ */
/* Loop groups                                                               */
/* ------------------------------------------------------------------------ */

/** N loops on N threads of their own, sharing one pool (each loop keeps a
 * few free slices of its own, so that the loops do not contend for them).
 * A group listener spreads the connections it accepts over the loops; a
 * connection stays on its loop for life. */
typedef struct asock_group asock_group;

/** Told of each connection a group listener accepted, on the thread of the
 * loop the connection belongs to (asock_socket_loop(conn)). The socket is
 * the application's, to close. */
typedef void (*asock_group_accept_cb)(asock_group *group, asock_socket *conn,
                                      void *arg);

/** Listen flag of asock_group_listen(): accept on the first loop and hand
 * each connection to the loops in turn, even where the kernel could balance
 * connections between one listener per loop (SO_REUSEPORT on Linux). This
 * is how groups always work on Windows and macOS. */
#define ASOCK_GROUP_HANDOFF 0x100u

/** Creates a group: `loops` asock loops, each created and run on a thread
 * of its own, all over `pool`. Returns when every loop runs.
 * \param group_out receives the group; NULL on error.
 * \param pool the pool the loops share.
 * \param loops 1 to 256.
 * \return 0; ASOCK_EINVAL for NULL or a count out of range; ASOCK_ENOMEM;
 *   a system error starting a thread or a loop.
 *
 * Any thread but a group's own. */
ASOCK_EXTERN int asock_group_create(asock_group **group_out, asock_pool *pool,
                                    unsigned int loops);

/** \param group the group.
 * \return the number of loops of the group, 0 for NULL.
 *
 * Any thread. */
ASOCK_EXTERN unsigned int asock_group_size(const asock_group *group);

/** \param group the group.
 * \param index from 0 to asock_group_size() - 1.
 * \return loop `index` of the group, or NULL. Its thread is the group's:
 * other threads reach it through asock_loop_post() or by starting ops.
 *
 * Any thread. */
ASOCK_EXTERN asock_loop *asock_group_loop(const asock_group *group,
                                          unsigned int index);

/** Listens on addr for the group. On Linux every loop gets a listener of
 * its own on the same port (SO_REUSEPORT) and the kernel balances; elsewhere,
 * or with ASOCK_GROUP_HANDOFF, the first loop accepts and hands each
 * connection to the loops in turn (itself included). Either way cb hears of
 * every connection on the connection's loop. One listener per group.
 * \param group the group.
 * \param addr an IPv4 or IPv6 address; port 0 picks a free port.
 * \param backlog the kernel's accept backlog, of each listener.
 * \param flags ASOCK_LISTEN_IPV6ONLY, ASOCK_LISTEN_REUSEADDR,
 *   ASOCK_GROUP_HANDOFF.
 * \param cb told of each connection.
 * \param arg passed to cb.
 * \return 0; ASOCK_EINVAL for NULL or unknown flags; ASOCK_EKIND if the
 *   group listens already; ASOCK_ECLOSED once stopping; ASOCK_ENOBUFS when
 *   the pool has too few ops for the listeners' accepts (four per
 *   listener); a system error (ASOCK_EADDRINUSE, ...).
 *
 * Any thread but a group's own (the call waits for the loops). */
ASOCK_EXTERN int asock_group_listen(asock_group *group,
                                    const struct sockaddr *addr, int backlog,
                                    unsigned int flags,
                                    asock_group_accept_cb cb, void *arg);

/** The address the group listens on (its port, when it asked for 0).
 * \param group the group.
 * \param addr receives the address.
 * \return 0; ASOCK_ENOTCONN when not listening; ASOCK_EINVAL.
 *
 * Any thread. */
ASOCK_EXTERN int asock_group_local_address(const asock_group *group,
                                           struct sockaddr_storage *addr);

/** \param group the group.
 * \param index from 0 to asock_group_size() - 1.
 * \return the connections loop `index` was given by the group listener so
 *   far.
 *
 * Any thread. */
ASOCK_EXTERN uint64_t asock_group_accepted(const asock_group *group,
                                           unsigned int index);

/** Stops the group: the listener stops accepting at once; then each loop
 * runs on for up to grace_ms (less once it has no socket left), so that
 * connections can finish; then every socket still open is closed (each
 * pending op completes with ASOCK_ECANCELED, exactly once, on its loop's
 * thread), the loops are closed and their threads joined.
 * \param group the group.
 * \param grace_ms how long the loops run on, in milliseconds.
 * \return 0; ASOCK_EINVAL for NULL; ASOCK_ECLOSED if already stopped;
 *   ASOCK_ETHREAD on a group thread.
 *
 * Any thread but a group's own. */
ASOCK_EXTERN int asock_group_stop(asock_group *group, uint64_t grace_ms);

/** Frees a group, stopping it first (grace 0) if it still runs.
 * \param group the group.
 * \return 0; ASOCK_EINVAL; ASOCK_ETHREAD on a group thread.
 *
 * Any thread but a group's own. */
ASOCK_EXTERN int asock_group_destroy(asock_group *group);

/* ------------------------------------------------------------------------ */
/* UDP sockets                                                               */
/* ------------------------------------------------------------------------ */

/* A UDP socket is an asock_socket too: asock_socket_close(), asock_cancel(),
 * the buffer size and address functions, user data and the slice count
 * apply to it as to TCP. Its operations are asock_send_to(),
 * asock_receive_from() and asock_receive_message_from(); asock_send() and
 * asock_receive() return ASOCK_EKIND on it. */

/** Bind flag: an IPv6 socket takes only IPv6 datagrams (IPV6_V6ONLY). */
#define ASOCK_UDP_IPV6ONLY 0x1u
/** Bind flag: SO_REUSEADDR, so that several sockets may bind one port (on
 * Unix as on Windows, for UDP this is what lets several receivers of one
 * multicast group share its port). */
#define ASOCK_UDP_REUSEADDR 0x2u
/** Bind flag: ask the kernel for every datagram's packet information from
 * the start (asock_receive_message_from()). Without it, the socket's first
 * receive-message-from asks, and a datagram that arrived before that has
 * none. */
#define ASOCK_UDP_PKTINFO 0x4u

/** Creates a UDP socket on a loop. It gets its OS socket from
 * asock_udp_bind(), or from asock_udp_connect() (bound to a port the kernel
 * picks).
 * \param sock_out receives the socket; NULL on error.
 * \param loop the loop; the socket belongs to it for its whole life.
 * \return 0; ASOCK_EINVAL for NULL; ASOCK_ENOMEM; ASOCK_ECLOSED while the
 *   loop closes.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_create(asock_socket **sock_out, asock_loop *loop);

/** Binds a UDP socket to a local address.
 * \param sock a UDP socket not yet bound.
 * \param addr an IPv4 or IPv6 address; port 0 picks a free port.
 * \param flags ASOCK_UDP_* flags.
 * \return 0; ASOCK_EINVAL for NULL or unknown flags; ASOCK_EKIND for a TCP
 *   socket or one already bound; ASOCK_EAFNOSUPPORT; ASOCK_ECLOSED; a system
 *   error (ASOCK_EADDRINUSE, ASOCK_EACCES, ...).
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_bind(asock_socket *sock, const struct sockaddr *addr,
                                unsigned int flags);

/** Sets the socket's default peer (UDP connect): send-to without an address
 * goes there, and only its datagrams are received. An unbound socket is
 * bound to the wildcard address of the peer's family first. NULL removes
 * the association.
 * \param sock a UDP socket.
 * \param addr the peer, an IPv4 or IPv6 address; NULL removes the association.
 * \return 0; ASOCK_EINVAL; ASOCK_EKIND for a TCP socket; ASOCK_ENOTCONN
 *   when removing an association there is not; ASOCK_EAFNOSUPPORT;
 *   ASOCK_ECLOSED; a system error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_connect(asock_socket *sock,
                                   const struct sockaddr *addr);

/** Sets SO_BROADCAST. Like every UDP option below, it needs the OS socket:
 * before asock_udp_bind() or asock_udp_connect() it returns ASOCK_ENOTCONN.
 * \param sock a UDP socket.
 * \param enable non-zero to set the option, 0 to clear it.
 * \return 0 or an error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_set_broadcast(asock_socket *sock, int enable);

/** Sets the unicast hop limit (IP_TTL, or IPV6_UNICAST_HOPS on an IPv6
 * socket).
 * \param sock a UDP socket.
 * \param ttl 1 to 255.
 * \return 0 or an error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_set_ttl(asock_socket *sock, int ttl);

/** Sets the multicast hop limit (IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS).
 * \param sock a UDP socket.
 * \param ttl 0 to 255.
 * \return 0 or an error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_set_multicast_ttl(asock_socket *sock, int ttl);

/** Sets whether the socket's own multicast datagrams loop back to the host
 * (IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP).
 * \param sock a UDP socket.
 * \param enable non-zero to loop them back, 0 not to.
 * \return 0 or an error.
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_set_multicast_loop(asock_socket *sock, int enable);

/** Chooses the interface multicast datagrams leave by.
 * \param sock a UDP socket.
 * \param iface for an IPv4 socket, an AF_INET address of the interface;
 *   for an IPv6 socket, an AF_INET6 address whose sin6_scope_id is the
 *   interface index. NULL goes back to the system's choice.
 * \return 0 or an error (ASOCK_EAFNOSUPPORT for the other family).
 *
 * The loop's thread. */
ASOCK_EXTERN int
asock_udp_set_multicast_interface(asock_socket *sock,
                                  const struct sockaddr *iface);

/** Joins (join = 1) or leaves (join = 0) a multicast group.
 * \param sock a UDP socket.
 * \param group the group's address, of the socket's family (an IPv6 socket
 *   also takes IPv4 groups unless it is IPv6-only).
 * \param iface the interface, as for asock_udp_set_multicast_interface();
 *   NULL lets the system choose.
 * \param join 1 to join, 0 to leave.
 * \return 0 or an error (ASOCK_EINVAL for an address that is not
 *   multicast, ASOCK_EADDRNOTAVAIL when leaving a group not joined, ...).
 *
 * The loop's thread. */
ASOCK_EXTERN int asock_udp_set_membership(asock_socket *sock,
                                          const struct sockaddr *group,
                                          const struct sockaddr *iface,
                                          int join);

/** Sends one datagram (SendToAsync): the op's window, or its buffer list
 * gathered into one datagram, to the address set with
 * asock_op_set_remote(). On a socket with a default peer the datagram goes
 * to that peer and the op's address is ignored, so that an op that received
 * a datagram can answer it on either kind of socket. When no earlier
 * send-to is queued the kernel is tried at once; a datagram the kernel
 * cannot take now waits, and datagrams leave in posting order. A socket not
 * yet bound is bound to the wildcard address first.
 * \param sock a UDP socket.
 * \param op an idle op of the loop's pool, with the datagram in its window or
 *   buffer list.
 * \return 0 if it completed in the call: the status is in the op (0 with
 *   asock_op_bytes() = the datagram's length, or the error the kernel
 *   reported, such as ASOCK_ECONNREFUSED after an ICMP port unreachable on
 *   a socket with a default peer); ASOCK_PENDING; or, without starting:
 *   ASOCK_EINVAL for NULL, ASOCK_EINVAL and ASOCK_EBOUNDS for a buffer
 *   list as with asock_send(), ASOCK_EKIND for a TCP socket,
 *   ASOCK_EDESTADDRREQ with neither address nor default peer,
 *   ASOCK_EMSGSIZE above 65507 bytes (IPv4) or 65527 (IPv6), ASOCK_EFOREIGN,
 *   ASOCK_EBUSY, ASOCK_ECLOSED, ASOCK_ENOBUFS if the datagram would take the
 *   socket's send queue past its hard cap.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_send_to(asock_socket *sock, asock_op *op);

/** Receives one datagram (ReceiveFromAsync) into the op's window; an op
 * without a buffer takes a pool slice only when a datagram is there (as
 * asock_receive() does), the window then covering the datagram. On success
 * asock_op_remote() is the sender and asock_op_bytes() the datagram's
 * length, or the bytes that fit with ASOCK_MSG_TRUNCATED in
 * asock_op_msg_flags(). Receives complete in posting order, one datagram
 * each. On Linux one recvmmsg() reads up to several datagrams into pool
 * slices; those no receive waits for yet are kept (counted in the socket's
 * slices) and complete the next receives at once. On a multishot op
 * (asock_op_set_multishot()) the receive stays posted and delivers every
 * datagram; an error the kernel reports for one (such as
 * ASOCK_ECONNREFUSED) is its final completion. On the io_uring backend a
 * multishot receive's datagrams arrive in the kernel's lent slices, which
 * keep room in front for the datagram's header, sender and packet
 * information: a datagram longer than the rest of a slice is cut there,
 * with ASOCK_MSG_TRUNCATED (docs/backends.md says how much room). A
 * receive without a buffer of its own is given such a slice as it is,
 * nothing copied: asock_op_data() is asock_op_offset() bytes into it.
 * \param sock a bound or connected UDP socket.
 * \param op an idle op of the loop's pool, with a window to receive into or no
 *   buffer.
 * \return 0 if a datagram (or an error) was already there: the status is
 *   in the op (never for a multishot receive); ASOCK_PENDING; or, without
 *   starting: ASOCK_EINVAL for NULL or an empty window, ASOCK_EKIND for a
 *   TCP socket or an op with a buffer list, ASOCK_ENOTCONN before the
 *   socket is bound or connected, ASOCK_EFOREIGN, ASOCK_EBUSY (the op is
 *   pending, or a multishot receive is pending on the socket),
 *   ASOCK_ECLOSED, and with ASOCK_POOL_FAIL_FAST, ASOCK_ENOBUFS when no
 *   slice is free.
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_receive_from(asock_socket *sock, asock_op *op);

/** As asock_receive_from(), and the op also gets the datagram's packet
 * information (ReceiveMessageFromAsync): see asock_op_packet_info().
 * \param sock, op as for asock_receive_from().
 * \return as asock_receive_from().
 *
 * Any thread (an operation start). */
ASOCK_EXTERN int asock_receive_message_from(asock_socket *sock, asock_op *op);

#ifdef __cplusplus
}
#endif

#endif /* ASOCK_H */
