/* The bytes of asock-bench's messages. Message `msg` of connection `conn`
 * starts with a 16-byte header naming both (and a check word), followed by a
 * slice of a fixed pseudo-random block at an offset derived from them. Every
 * message thus differs from its neighbours, is checked byte for byte against
 * what was sent, and is sent without being copied: the header is the only
 * part built per message. Messages shorter than the header are a slice of
 * the block alone. */
#ifndef ASOCK_BENCH_PATTERN_H
#define ASOCK_BENCH_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define BENCH_HEADER_SIZE 16

typedef struct bench_pattern {
  size_t size;    /* bytes per message */
  uint8_t *block; /* size + 4096 pseudo-random bytes */
} bench_pattern;

/* Returns 0, or -1 if there is no memory for the block. */
int bench_pattern_init(bench_pattern *p, size_t size);
void bench_pattern_free(bench_pattern *p);

/* Describes message (conn, msg) in bufs[0..n), n being 1 or 2, and returns
 * n. The header is written to `header`, which must stay as it is until the
 * message is sent; the rest points into the block. */
unsigned int bench_pattern_bufs(const bench_pattern *p, uint32_t conn,
                                uint64_t msg, uint8_t header[BENCH_HEADER_SIZE],
                                uv_buf_t bufs[2]);

/* Checks `len` received bytes that should be bytes [offset, offset + len) of
 * message (conn, msg). Returns -1 if they are, else the offset within the
 * message of the first wrong byte. */
int64_t bench_pattern_check(const bench_pattern *p, uint32_t conn, uint64_t msg,
                            size_t offset, const uint8_t *data, size_t len);

/* The byte at `offset` of message (conn, msg), for error reports. */
uint8_t bench_pattern_byte(const bench_pattern *p, uint32_t conn, uint64_t msg,
                           size_t offset);

/* Reads the connection and message numbers from a header whose check word
 * agrees with them; returns 0, or -1 if it is no header of ours. */
int bench_pattern_parse(const uint8_t header[BENCH_HEADER_SIZE], uint32_t *conn,
                        uint64_t *msg);

#endif
