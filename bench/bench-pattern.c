#include <stdlib.h>
#include <string.h>

#include "bench-pattern.h"

/* Number of different offsets into the block: enough that two messages
 * rarely share one, small enough that the block stays cheap. */
#define PATTERN_SPAN 4096

static uint64_t mix(uint64_t x) {
  /* splitmix64's finaliser: every input bit affects every output bit. */
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9u;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebu;
  x ^= x >> 31;
  return x;
}

static uint64_t message_hash(uint32_t conn, uint64_t msg) {
  return mix(msg * 0x9e3779b97f4a7c15u + conn);
}

static size_t body_offset(uint32_t conn, uint64_t msg) {
  return (size_t)(message_hash(conn, msg) % PATTERN_SPAN);
}

static void put_le(uint8_t *out, uint64_t v, unsigned int bytes) {
  unsigned int i;

  for (i = 0; i < bytes; i++)
    out[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *in, unsigned int bytes) {
  uint64_t v = 0;
  unsigned int i;

  for (i = 0; i < bytes; i++)
    v |= (uint64_t)in[i] << (8 * i);
  return v;
}

/* Header: connection (4 bytes), message (8), check word (4), little-endian. */
static void make_header(uint32_t conn, uint64_t msg,
                        uint8_t header[BENCH_HEADER_SIZE]) {
  put_le(header, conn, 4);
  put_le(header + 4, msg, 8);
  put_le(header + 12, message_hash(conn, msg) >> 32, 4);
}

static size_t header_size(const bench_pattern *p) {
  return p->size >= BENCH_HEADER_SIZE ? BENCH_HEADER_SIZE : 0;
}

int bench_pattern_init(bench_pattern *p, size_t size) {
  uint64_t state = 0x6173636b2d62656eu; /* "asock-ben" */
  size_t i, n = size + PATTERN_SPAN;

  p->size = size;
  p->block = malloc(n);
  if (p->block == NULL)
    return -1;
  for (i = 0; i < n; i++) {
    state += 0x9e3779b97f4a7c15u;
    p->block[i] = (uint8_t)(mix(state) >> 56);
  }
  return 0;
}

void bench_pattern_free(bench_pattern *p) {
  free(p->block);
  p->block = NULL;
}

unsigned int bench_pattern_bufs(const bench_pattern *p, uint32_t conn,
                                uint64_t msg, uint8_t header[BENCH_HEADER_SIZE],
                                uv_buf_t bufs[2]) {
  size_t hs = header_size(p);
  char *body = (char *)p->block + body_offset(conn, msg);
  unsigned int n = 0;

  if (hs > 0) {
    make_header(conn, msg, header);
    bufs[n++] = uv_buf_init((char *)header, (unsigned int)hs);
  }
  if (p->size > hs)
    bufs[n++] = uv_buf_init(body, (unsigned int)(p->size - hs));
  return n;
}

uint8_t bench_pattern_byte(const bench_pattern *p, uint32_t conn, uint64_t msg,
                           size_t offset) {
  uint8_t header[BENCH_HEADER_SIZE];
  size_t hs = header_size(p);

  if (offset < hs) {
    make_header(conn, msg, header);
    return header[offset];
  }
  return p->block[body_offset(conn, msg) + offset - hs];
}

int64_t bench_pattern_check(const bench_pattern *p, uint32_t conn, uint64_t msg,
                            size_t offset, const uint8_t *data, size_t len) {
  uint8_t header[BENCH_HEADER_SIZE];
  size_t hs = header_size(p), i, n;
  const uint8_t *body;

  i = 0;
  if (offset < hs) {
    make_header(conn, msg, header);
    n = hs - offset < len ? hs - offset : len;
    for (; i < n; i++)
      if (data[i] != header[offset + i])
        return (int64_t)(offset + i);
  }
  if (i == len)
    return -1;
  /* The body: memcmp runs at memory speed; only a difference needs the
   * slower search for where it is. */
  body = p->block + body_offset(conn, msg) + (offset + i - hs);
  if (memcmp(data + i, body, len - i) == 0)
    return -1;
  for (n = 0; data[i + n] == body[n]; n++)
    ;
  return (int64_t)(offset + i + n);
}

int bench_pattern_parse(const uint8_t header[BENCH_HEADER_SIZE], uint32_t *conn,
                        uint64_t *msg) {
  *conn = (uint32_t)get_le(header, 4);
  *msg = get_le(header + 4, 8);
  return get_le(header + 12, 4) == message_hash(*conn, *msg) >> 32 ? 0 : -1;
}
