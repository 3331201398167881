/* TCP over loopback, sends of packets (asock_send_packets()): memory pieces
 * and file ranges go out as one stream in posting order with the socket's
 * other sends, byte for byte; a file shorter than its range, a file that
 * cannot be read, a cancel, a timeout, a close and the loop's close each
 * end the send once, with what went reported, and leave the stream whole
 * where nothing of the send went. File ranges go by sendfile() on Linux
 * and are read into pool slices elsewhere; builds with fault injection
 * also take the reading path on Linux, by failing sendfile() as a file
 * system that lacks it does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "tcp-util.h"
#include "udp-util.h"

/* ---- files --------------------------------------------------------------- */

typedef struct tp_file {
  uv_file fd;
  char path[1024];
} tp_file;

/* A temporary file of len bytes of the test pattern `stream`. */
static void file_make(tp_file *f, uint32_t stream, size_t len) {
  static unsigned char block[64 << 10];
  char tmpl[1024];
  size_t n = sizeof(tmpl) - 32;
  uint64_t at = 0;
  uv_fs_t req;

  ck_assert_int_eq(uv_os_tmpdir(tmpl, &n), 0);
  (void)snprintf(tmpl + n, sizeof(tmpl) - n, "/asock-packets-XXXXXX");
  ck_assert_int_ge(uv_fs_mkstemp(NULL, &req, tmpl, NULL), 0);
  f->fd = (uv_file)req.result;
  (void)snprintf(f->path, sizeof(f->path), "%s", req.path);
  uv_fs_req_cleanup(&req);
  while (at < len) {
    size_t chunk =
        len - at < sizeof(block) ? (size_t)(len - at) : sizeof(block);
    uv_buf_t b;
    tu_fill(block, chunk, stream, at);
    b = uv_buf_init((char *)block, (unsigned int)chunk);
    ck_assert_int_eq(uv_fs_write(NULL, &req, f->fd, &b, 1, (int64_t)at, NULL),
                     (int)chunk);
    uv_fs_req_cleanup(&req);
    at += chunk;
  }
}

static void file_drop(tp_file *f) {
  uv_fs_t req;
  ck_assert_int_eq(uv_fs_close(NULL, &req, f->fd, NULL), 0);
  uv_fs_req_cleanup(&req);
  ck_assert_int_eq(uv_fs_unlink(NULL, &req, f->path, NULL), 0);
  uv_fs_req_cleanup(&req);
}

static asock_packet mem_piece(const void *base, size_t len) {
  asock_packet p;
  p.base = base;
  p.len = len;
  p.file = -1;
  p.offset = 0;
  return p;
}

static asock_packet file_piece(const tp_file *f, int64_t offset, size_t len) {
  asock_packet p;
  p.base = NULL;
  p.len = len;
  p.file = f->fd;
  p.offset = offset;
  return p;
}

/* File ranges take the reading path from here on, where sendfile() would
 * be used: fault injection fails the next sendfile() as a file system
 * without it does. Returns 1 when the reading path is taken. */
static int read_files(void) {
#ifdef ASOCK_FAULT_INJECTION
  asock__fault_reset();
  asock__fault_arm(ASOCK__FAULT_SENDFILE, 1, UV_EINVAL);
  return 1;
#elif defined(_WIN32)
  return 1;
#else
  return 0;
#endif
}

/* Checks, where fault injection counts them, that file reads were made. */
static void assert_read(int reading) {
#ifdef ASOCK_FAULT_INJECTION
  if (reading)
    ck_assert_uint_gt(asock__fault_calls(ASOCK__FAULT_FS_READ), 0);
#else
  (void)reading;
#endif
}

static asock_pool_stats stats(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  return st;
}

/* Waits for a start that may complete inside its call (0) or later. */
static void wait_started(asock_op *op, int r) {
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  ck_assert(tu_wait_idle(op));
}

/* ---- the stream ---------------------------------------------------------- */

/* The watermark reports of the stream test's sender: 1 above, 0 below. */
static int marks[8];
static int nmarks;

static void on_mark(asock_socket *sock, int above) {
  (void)sock;
  if (nmarks < 8)
    marks[nmarks] = above;
  nmarks++;
}

#define HEAD_LEN 100
#define RANGE_AT 1000
#define RANGE_LEN ((size_t)(2 << 20) + 17)
#define TAIL_LEN 50
#define BEFORE_LEN ((size_t)300 << 10)
#define AFTER_LEN 1000

/* A header, a file range, an empty piece, a trailer and the file's first
 * ten bytes, between two plain sends: the peer gets every byte in posting
 * order; each op completes once, in order, with consecutive numbers. */
static void stream_in_order(int reading) {
  static unsigned char before[BEFORE_LEN], head[HEAD_LEN], tail[TAIL_LEN];
  static unsigned char after[AFTER_LEN];
  static unsigned char
      in[BEFORE_LEN + HEAD_LEN + RANGE_LEN + TAIL_LEN + 10 + AFTER_LEN];
  asock_packet list[5];
  tp_file f;
  tu_pair p;
  asock_op *s1 = tu_op(), *pk = tu_op(), *s2 = tu_op();
  size_t total = HEAD_LEN + RANGE_LEN + TAIL_LEN + 10;
  size_t at = 0;

  file_make(&f, 50, 3 << 20);
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  /* The file's bytes count in the queue the watermarks watch. */
  nmarks = 0;
  ck_assert_asock(asock_socket_set_watermark_cb(p.client, on_mark), 0);
  ck_assert_asock(asock_socket_set_send_limits(p.client, 1000, 1 << 20, 0), 0);
  tu_fill(before, sizeof(before), 51, 0);
  tu_fill(head, sizeof(head), 52, 0);
  tu_fill(tail, sizeof(tail), 53, 0);
  tu_fill(after, sizeof(after), 54, 0);
  list[0] = mem_piece(head, sizeof(head));
  list[1] = file_piece(&f, RANGE_AT, RANGE_LEN);
  list[2] = mem_piece(tail, 0);
  list[3] = mem_piece(tail, sizeof(tail));
  list[4] = file_piece(&f, 0, 10);
  ck_assert_asock(asock_op_set_packets(pk, list, 5), 0);
  tu_set_buffer(s1, before, sizeof(before));
  tu_set_buffer(s2, after, sizeof(after));
  ck_assert_asock(tu_send(p.client, s1), ASOCK_PENDING);
  if (reading)
    (void)read_files();
  ck_assert_asock(tu_send_packets(p.client, pk), ASOCK_PENDING);
  ck_assert_int_eq(asock_op_last_kind(pk), ASOCK_OP_SENDPACKETS);
  ck_assert_asock(asock_op_set_packets(pk, list, 5), ASOCK_EBUSY);
  ck_assert_asock(tu_send(p.client, s2), ASOCK_PENDING);
  ck_assert_uint_ge(asock_socket_send_queued(p.client), total + sizeof(after));

  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, BEFORE_LEN, 51, 0), BEFORE_LEN);
  at += BEFORE_LEN;
  ck_assert_uint_eq(tu_mismatch(in + at, HEAD_LEN, 52, 0), HEAD_LEN);
  at += HEAD_LEN;
  ck_assert_uint_eq(tu_mismatch(in + at, RANGE_LEN, 50, RANGE_AT), RANGE_LEN);
  at += RANGE_LEN;
  ck_assert_uint_eq(tu_mismatch(in + at, TAIL_LEN, 53, 0), TAIL_LEN);
  at += TAIL_LEN;
  ck_assert_uint_eq(tu_mismatch(in + at, 10, 50, 0), 10);
  at += 10;
  ck_assert_uint_eq(tu_mismatch(in + at, AFTER_LEN, 54, 0), AFTER_LEN);

  ck_assert(tu_wait_calls(s2, 1));
  ck_assert_int_eq(tu_rec(pk)->calls, 1);
  ck_assert_asock(tu_rec(s1)->status, 0);
  ck_assert_asock(tu_rec(pk)->status, 0);
  ck_assert_asock(tu_rec(s2)->status, 0);
  ck_assert_uint_eq(tu_rec(pk)->bytes, total);
  ck_assert_int_eq(tu_rec(pk)->kind, ASOCK_OP_SENDPACKETS);
  ck_assert_int_lt(tu_rec(s1)->order, tu_rec(pk)->order);
  ck_assert_int_lt(tu_rec(pk)->order, tu_rec(s2)->order);
  ck_assert_uint_eq(tu_rec(pk)->seq, tu_rec(s1)->seq + 1);
  ck_assert_uint_eq(tu_rec(s2)->seq, tu_rec(pk)->seq + 1);
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
  /* "Below" is reported from the loop's notify list, on a later turn. */
  ck_assert(tu_wait_count(&nmarks, 2));
  tu_run_for(10);
  ck_assert_int_eq(nmarks, 2);
  ck_assert_int_eq(marks[0], 1);
  ck_assert_int_eq(marks[1], 0);
  assert_read(reading);
  /* Every slice a read took went back. */
  ck_assert_uint_eq(stats().slices_in_use, 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}

START_TEST(pieces_follow_the_sends_around_them) { stream_in_order(0); }
END_TEST

/* The same through the reading path (the only one on Windows). */
START_TEST(pieces_read_into_slices_follow_in_order) {
  stream_in_order(read_files());
}
END_TEST

/* With nothing queued and room in the kernel a small send of packets
 * completes inside its call where sendfile() sends the file; where the
 * file is read it completes later. The list stays set for the next. */
START_TEST(small_send_completes_inline) {
  static unsigned char head[10], in[2 * (10 + 1000)];
  asock_packet list[2];
  tp_file f;
  tu_pair p;
  asock_op *pk = tu_op();
  int r;

  file_make(&f, 55, 4000);
  tu_pair_open(&p, "127.0.0.1");
  tu_fill(head, sizeof(head), 56, 0);
  list[0] = mem_piece(head, sizeof(head));
  list[1] = file_piece(&f, 3000, 1000);
  ck_assert_asock(asock_op_set_packets(pk, list, 2), 0);
  r = tu_send_packets(p.client, pk);
#ifdef _WIN32
  ck_assert_asock(r, ASOCK_PENDING);
#else
  if (tu_sends_inline()) {
    ck_assert_asock(r, 0);
    ck_assert_uint_eq(asock_op_bytes(pk), 1010);
    ck_assert_int_eq(tu_rec(pk)->calls, 0);
  } else {
    ck_assert_asock(r, ASOCK_PENDING); /* the ring sends the head first */
  }
#endif
  ck_assert(tu_wait_idle(pk));
  ck_assert_asock(asock_op_status(pk), 0);
  ck_assert_uint_eq(asock_op_bytes(pk), 1010);
  wait_started(pk, tu_send_packets(p.client, pk));
  ck_assert_asock(asock_op_status(pk), 0);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, 10, 56, 0), 10);
  ck_assert_uint_eq(tu_mismatch(in + 10, 1000, 55, 3000), 1000);
  ck_assert_uint_eq(tu_mismatch(in + 1010, 10, 56, 0), 10);
  ck_assert_uint_eq(tu_mismatch(in + 1020, 1000, 55, 3000), 1000);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

/* ---- files that end early or cannot be read -------------------------------
 */

/* A range past the file's end, with nothing sent: the send fails alone
 * with ASOCK_EOF and the stream goes on. A range that ends past it after
 * some bytes went: those bytes are reported, and the socket's sending is
 * over. */
static void short_files(int reading) {
  static unsigned char head[10], more[40], in[10 + 500 + 40];
  asock_packet beyond, cut[2];
  tp_file f;
  tu_pair p;
  asock_op *pk = tu_op(), *s = tu_op(), *late = tu_op();
  size_t got;

  file_make(&f, 57, 1000);
  tu_pair_open(&p, "127.0.0.1");
  tu_fill(head, sizeof(head), 58, 0);
  tu_fill(more, sizeof(more), 58, 10);
  beyond = file_piece(&f, 5000, 100);
  ck_assert_asock(asock_op_set_packets(pk, &beyond, 1), 0);
  if (reading)
    (void)read_files();
  wait_started(pk, tu_send_packets(p.client, pk));
  ck_assert_asock(asock_op_status(pk), ASOCK_EOF);
  ck_assert_uint_eq(asock_op_bytes(pk), 0);
  /* Nothing of it went: the stream is whole, and sends go on. */
  tu_set_buffer(s, more, sizeof(more));
  wait_started(s, tu_send(p.client, s));
  ck_assert_asock(asock_op_status(s), 0);
  tu_recv_exact(p.server, in, sizeof(more));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(more), 58, 10), sizeof(more));

  cut[0] = mem_piece(head, sizeof(head));
  cut[1] = file_piece(&f, 500, 1000);
  ck_assert_asock(asock_op_set_packets(pk, cut, 2), 0);
  if (reading)
    (void)read_files();
  wait_started(pk, tu_send_packets(p.client, pk));
  ck_assert_asock(asock_op_status(pk), ASOCK_EOF);
  ck_assert_uint_eq(asock_op_bytes(pk), 510);
  tu_recv_exact(p.server, in, 510);
  ck_assert_uint_eq(tu_mismatch(in, 10, 58, 0), 10);
  ck_assert_uint_eq(tu_mismatch(in + 10, 500, 57, 500), 500);
  /* The peer has part of the list: nothing more may follow it. */
  tu_set_buffer(late, more, sizeof(more));
  ck_assert_asock(tu_send(p.client, late), 0);
  ck_assert_asock(asock_op_status(late), ASOCK_ECANCELED);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_recv_to_end(p.server, 58, 0, 0, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_uint_eq(stats().slices_in_use, 0);
  file_drop(&f);
}

START_TEST(file_shorter_than_its_range) { short_files(0); }
END_TEST

START_TEST(file_shorter_than_its_range_read) { short_files(read_files()); }
END_TEST

/* A file open only for writing cannot be sent: the send fails alone with
 * the OS's error, and the stream goes on. */
START_TEST(unreadable_file_fails_the_send_alone) {
  static unsigned char more[40], in[40];
  asock_packet piece;
  tp_file f;
  uv_fs_t req;
  uv_file wr;
  tu_pair p;
  asock_op *pk = tu_op(), *s = tu_op();

  file_make(&f, 59, 100);
  wr = uv_fs_open(NULL, &req, f.path, UV_FS_O_WRONLY, 0, NULL);
  ck_assert_int_ge(wr, 0);
  uv_fs_req_cleanup(&req);
  tu_pair_open(&p, "127.0.0.1");
  piece.base = NULL;
  piece.len = 100;
  piece.file = wr;
  piece.offset = 0;
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  wait_started(pk, tu_send_packets(p.client, pk));
  ck_assert_asock(asock_op_status(pk), ASOCK_EBADF);
  ck_assert_uint_eq(asock_op_bytes(pk), 0);
  tu_fill(more, sizeof(more), 60, 0);
  tu_set_buffer(s, more, sizeof(more));
  wait_started(s, tu_send(p.client, s));
  ck_assert_asock(asock_op_status(s), 0);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 60, 0), sizeof(in));
  ck_assert_int_eq(uv_fs_close(NULL, &req, wr, NULL), 0);
  uv_fs_req_cleanup(&req);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

/* ---- ending early -------------------------------------------------------- */

/* Cancelled, or timed out, while it waits behind a send, a send of packets
 * ends with nothing sent, and the sends around it join up on the wire. */
START_TEST(cancel_or_timeout_before_any_byte) {
  static unsigned char a[512 << 10], b[100], in[sizeof(a) + sizeof(b)];
  asock_packet piece;
  tp_file f;
  tu_pair p;
  asock_op *s1 = tu_op(), *pk = tu_op(), *pk2 = tu_op(), *s2 = tu_op();

  file_make(&f, 61, 100 << 10);
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  tu_fill(a, sizeof(a), 62, 0);
  tu_fill(b, sizeof(b), 62, sizeof(a));
  tu_set_buffer(s1, a, sizeof(a));
  tu_set_buffer(s2, b, sizeof(b));
  piece = file_piece(&f, 0, 100 << 10);
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  ck_assert_asock(asock_op_set_packets(pk2, &piece, 1), 0);
  ck_assert_asock(asock_op_set_timeout(pk2, 50), 0);
  ck_assert_asock(tu_send(p.client, s1), ASOCK_PENDING);
  ck_assert_asock(tu_send_packets(p.client, pk), ASOCK_PENDING);
  ck_assert_asock(tu_send_packets(p.client, pk2), ASOCK_PENDING);
  ck_assert_asock(tu_send(p.client, s2), ASOCK_PENDING);
  ck_assert_asock(tu_cancel(pk), 0);
  ck_assert(tu_wait_calls(pk, 1));
  ck_assert_asock(tu_rec(pk)->status, ASOCK_ECANCELED);
  ck_assert_uint_eq(tu_rec(pk)->bytes, 0);
  ck_assert(tu_wait_calls(pk2, 1));
  ck_assert_asock(tu_rec(pk2)->status, ASOCK_ETIMEDOUT);
  ck_assert_uint_eq(tu_rec(pk2)->bytes, 0);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 62, 0), sizeof(in));
  ck_assert(tu_wait_calls(s2, 1));
  ck_assert_asock(tu_rec(s1)->status, 0);
  ck_assert_asock(tu_rec(s2)->status, 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

/* A close while the file is going: the send ends with ASOCK_ECANCELED and
 * the bytes that went, fewer than the list's. */
static void close_while_sending(int reading) {
  asock_packet piece;
  tp_file f;
  tu_pair p;
  asock_op *pk = tu_op();

  file_make(&f, 63, 4 << 20);
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  piece = file_piece(&f, 0, 4 << 20);
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  if (reading)
    (void)read_files();
  ck_assert_asock(tu_send_packets(p.client, pk), ASOCK_PENDING);
  tu_run_for(20);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_calls(pk, 1));
  ck_assert_asock(tu_rec(pk)->status, ASOCK_ECANCELED);
  ck_assert_uint_lt(tu_rec(pk)->bytes, 4 << 20);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_int_eq(tu_rec(pk)->calls, 1);
  file_drop(&f);
}

START_TEST(close_while_the_file_goes) { close_while_sending(0); }
END_TEST

START_TEST(close_while_the_file_is_read) { close_while_sending(read_files()); }
END_TEST

/* The loop closes with a send of packets pending, its first read just
 * started where files are read: it completes once, cancelled, and the
 * read it gave up ends before the loop is gone. */
START_TEST(loop_close_ends_a_pending_send) {
  asock_packet piece;
  tp_file f;
  tu_pair p;
  asock_op *pk = tu_op();

  file_make(&f, 64, 4 << 20);
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  piece = file_piece(&f, 0, 4 << 20);
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  (void)read_files();
  ck_assert_asock(tu_send_packets(p.client, pk), ASOCK_PENDING);
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_int_eq(tu_rec(pk)->calls, 1);
  ck_assert_asock(tu_rec(pk)->status, ASOCK_ECANCELED);
  file_drop(&f);
}
END_TEST

/* ---- refusals ------------------------------------------------------------ */

START_TEST(refusals) {
  static unsigned char a[512 << 10];
  asock_packet list[2], big[2];
  asock_packet *many;
  tp_file f;
  tu_pair p;
  uu_pair u;
  asock_socket *fresh;
  asock_op *op = tu_op(), *ms = tu_op(), *s = tu_op(), *empty = tu_op();
  asock_op *sd = tu_op();

  file_make(&f, 65, 100);
  list[0] = mem_piece(a, 10);
  list[1] = file_piece(&f, 0, 100);
  /* The list. */
  ck_assert_asock(asock_op_set_packets(NULL, list, 2), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_packets(op, NULL, 2), ASOCK_EINVAL);
  list[1].file = -1;
  ck_assert_asock(asock_op_set_packets(op, list, 2), ASOCK_EINVAL);
  list[1].file = f.fd;
  list[1].offset = -1;
  ck_assert_asock(asock_op_set_packets(op, list, 2), ASOCK_EINVAL);
  list[1].offset = 0;
  many = calloc(ASOCK_MAX_BUFS + 1, sizeof(*many));
  ck_assert_ptr_nonnull(many);
  ck_assert_asock(asock_op_set_packets(op, many, ASOCK_MAX_BUFS + 1),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_packets(op, many, ASOCK_MAX_BUFS), 0);
  free(many);
  big[0] = mem_piece(a, SIZE_MAX / 2 + 1);
  big[1] = mem_piece(a, SIZE_MAX / 2 + 1);
  ck_assert_asock(asock_op_set_packets(op, big, 2), ASOCK_EBOUNDS);
  ck_assert_asock(asock_op_set_packets(op, NULL, 0), 0);

  /* The start. */
  tu_pair_open(&p, "127.0.0.1");
  uu_pair_open(&u, "127.0.0.1");
  ck_assert_asock(asock_tcp_create(&fresh, tu_loop), 0);
  ck_assert_asock(tu_send_packets(p.client, op), ASOCK_EINVAL);
  ck_assert_asock(asock_op_set_packets(op, list, 2), 0);
  ck_assert_asock(asock_op_set_packets(ms, list, 2), 0);
  ck_assert_asock(tu_send_packets(NULL, op), ASOCK_EINVAL);
  ck_assert_asock(tu_send_packets(p.client, NULL), ASOCK_EINVAL);
  ck_assert_asock(tu_send_packets(p.listener, op), ASOCK_EKIND);
  ck_assert_asock(tu_send_packets(u.a, op), ASOCK_EKIND);
  ck_assert_asock(tu_send_packets(fresh, op), ASOCK_ENOTCONN);
  ck_assert_asock(asock_op_set_multishot(ms, 1), 0);
  ck_assert_asock(tu_send_packets(p.client, ms), ASOCK_EKIND);
  /* The hard cap counts the list's bytes. */
  tu_shrink_buffers(p.client, p.server);
  tu_set_buffer(s, a, sizeof(a));
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(asock_socket_set_send_limits(
                      p.client, 0, 0, asock_socket_send_queued(p.client) + 50),
                  0);
  ck_assert_asock(tu_send_packets(p.client, op), ASOCK_ENOBUFS);
  ck_assert_int_eq(asock_op_is_pending(op), 0);
  /* An empty list sends nothing, in its place among the sends. */
  ck_assert_asock(asock_socket_set_send_limits(p.client, 0, 0, 0), 0);
  ck_assert_asock(asock_op_set_packets(empty, list, 0), 0);
  ck_assert_asock(tu_send_packets(p.client, empty), ASOCK_PENDING);
  tu_recv_exact(p.server, a, sizeof(a));
  ck_assert(tu_wait_idle(empty));
  ck_assert_asock(asock_op_status(empty), 0);
  ck_assert_uint_eq(asock_op_bytes(empty), 0);
  ck_assert_int_lt(tu_rec(s)->order, tu_rec(empty)->order);
  /* After a shutdown nothing more may be sent. */
  wait_started(sd, tu_shutdown(p.client, sd));
  ck_assert_asock(tu_send_packets(p.client, op), ASOCK_ESHUTDOWN);
  ck_assert_int_eq(tu_rec(op)->calls, 0);
  ck_assert_int_eq(tu_rec(ms)->calls, 0);
  ck_assert_asock(tu_close(fresh, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  uu_pair_close(&u);
  file_drop(&f);
}
END_TEST

/* ---- from another thread ------------------------------------------------- */

typedef struct starter {
  asock_socket *sock;
  asock_op *op;
  int result;
} starter;

static void start_elsewhere(void *arg) {
  starter *st = arg;
  st->result = asock_send_packets(st->sock, st->op);
}

START_TEST(started_from_another_thread) {
  static unsigned char head[20], in[20 + 3000];
  static starter st;
  asock_packet list[2];
  tp_file f;
  tu_pair p;
  uv_thread_t thread;

  file_make(&f, 66, 3000);
  tu_pair_open(&p, "127.0.0.1");
  tu_fill(head, sizeof(head), 67, 0);
  list[0] = mem_piece(head, sizeof(head));
  list[1] = file_piece(&f, 0, 3000);
  st.sock = p.client;
  st.op = tu_op();
  ck_assert_asock(asock_op_set_packets(st.op, list, 2), 0);
  ck_assert_int_eq(uv_thread_create(&thread, start_elsewhere, &st), 0);
  ck_assert_int_eq(uv_thread_join(&thread), 0);
  ck_assert_asock(st.result, ASOCK_PENDING);
  ck_assert(tu_wait_calls(st.op, 1));
  ck_assert_asock(tu_rec(st.op)->status, 0);
  ck_assert_uint_eq(tu_rec(st.op)->bytes, sizeof(in));
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, 20, 67, 0), 20);
  ck_assert_uint_eq(tu_mismatch(in + 20, 3000, 66, 0), 3000);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

/* ---- slices (the reading path) ------------------------------------------- */

#ifdef ASOCK_FAULT_INJECTION

/* A file read that fails: the first, before any byte of the send went,
 * fails the send alone; a later one ends it with the bytes that went, and
 * the socket's sending with it. (Fault injection fails the read's start;
 * a read that fails on the thread pool takes the same way.) */
START_TEST(failed_file_read) {
  static unsigned char more[40], in[4096 + 40];
  asock_packet piece;
  tp_file f;
  tu_pair p;
  asock_op *pk = tu_op(), *s = tu_op(), *late = tu_op();

  file_make(&f, 71, 10000);
  tu_pair_open(&p, "127.0.0.1");
  piece = file_piece(&f, 0, 10000);
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  (void)read_files();
  asock__fault_arm(ASOCK__FAULT_FS_READ, 1, UV_EIO);
  ck_assert_asock(tu_send_packets(p.client, pk), 0);
  ck_assert_asock(asock_op_status(pk), ASOCK_EIO);
  ck_assert_uint_eq(asock_op_bytes(pk), 0);
  tu_fill(more, sizeof(more), 72, 0);
  tu_set_buffer(s, more, sizeof(more));
  wait_started(s, tu_send(p.client, s));
  ck_assert_asock(asock_op_status(s), 0);
  tu_recv_exact(p.server, in, sizeof(more));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(more), 72, 0), sizeof(more));

  /* The second read of the range (4096-byte slices) fails. */
  (void)read_files();
  asock__fault_arm(ASOCK__FAULT_FS_READ, 2, UV_EIO);
  ck_assert_asock(tu_send_packets(p.client, pk), ASOCK_PENDING);
  ck_assert(tu_wait_calls(pk, 1));
  ck_assert_asock(tu_rec(pk)->status, ASOCK_EIO);
  ck_assert_uint_eq(tu_rec(pk)->bytes, 4096);
  tu_recv_exact(p.server, in, 4096);
  ck_assert_uint_eq(tu_mismatch(in, 4096, 71, 0), 4096);
  tu_set_buffer(late, more, sizeof(more));
  ck_assert_asock(tu_send(p.client, late), 0);
  ck_assert_asock(asock_op_status(late), ASOCK_ECANCELED);
  ck_assert_uint_eq(stats().slices_in_use, 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

#endif

#if defined(ASOCK_FAULT_INJECTION) || defined(_WIN32)

/* With every slice held elsewhere a read waits: a cancel then ends the
 * send with nothing sent, before the send behind it, which goes on; and a
 * send that waits for a slice goes on once one is free. */
START_TEST(waits_for_a_slice) {
  static unsigned char b[100], in[100 + 5000];
  asock_packet piece;
  tp_file f;
  tu_pair p;
  void *held[2];
  asock_op *pk = tu_op(), *pk2 = tu_op(), *s = tu_op();

  file_make(&f, 68, 5000);
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_pool_acquire(tu_pool, &held[0]), 0);
  ck_assert_asock(asock_pool_acquire(tu_pool, &held[1]), 0);
  piece = file_piece(&f, 0, 5000);
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  ck_assert_asock(asock_op_set_packets(pk2, &piece, 1), 0);
  (void)read_files();
  ck_assert_asock(tu_send_packets(p.client, pk), ASOCK_PENDING);
  tu_fill(b, sizeof(b), 69, 0);
  tu_set_buffer(s, b, sizeof(b));
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(pk)->calls, 0);
  ck_assert_asock(tu_cancel(pk), 0);
  ck_assert(tu_wait_calls(s, 1));
  ck_assert_int_eq(tu_rec(pk)->calls, 1);
  ck_assert_asock(tu_rec(pk)->status, ASOCK_ECANCELED);
  ck_assert_uint_eq(tu_rec(pk)->bytes, 0);
  ck_assert_asock(tu_rec(s)->status, 0);
  ck_assert_int_lt(tu_rec(pk)->order, tu_rec(s)->order);
  /* A send waiting for a slice goes on when one is free. */
  (void)read_files();
  ck_assert_asock(tu_send_packets(p.client, pk2), ASOCK_PENDING);
  tu_run_for(20);
  ck_assert_int_eq(tu_rec(pk2)->calls, 0);
  ck_assert_asock(asock_pool_release(tu_pool, held[0]), 0);
  ck_assert(tu_wait_calls(pk2, 1));
  ck_assert_asock(tu_rec(pk2)->status, 0);
  ck_assert_uint_eq(tu_rec(pk2)->bytes, 5000);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, 100, 69, 0), 100);
  ck_assert_uint_eq(tu_mismatch(in + 100, 5000, 68, 0), 5000);
  ck_assert_asock(asock_pool_release(tu_pool, held[1]), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

/* A pool that fails fast fails the send instead, with nothing sent. */
START_TEST(fail_fast_pool_fails_the_read) {
  asock_packet piece;
  tp_file f;
  tu_pair p;
  void *held;
  asock_op *pk = tu_op();

  file_make(&f, 70, 100);
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(asock_pool_acquire(tu_pool, &held), 0);
  piece = file_piece(&f, 0, 100);
  ck_assert_asock(asock_op_set_packets(pk, &piece, 1), 0);
  (void)read_files();
  ck_assert_asock(tu_send_packets(p.client, pk), 0);
  ck_assert_asock(asock_op_status(pk), ASOCK_ENOBUFS);
  ck_assert_uint_eq(asock_op_bytes(pk), 0);
  ck_assert_asock(asock_pool_release(tu_pool, held), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  file_drop(&f);
}
END_TEST

static void setup_two_slices(void) { tu_setup_pool(1024, 2, 0, 0); }
static void setup_fail_fast(void) {
  tu_setup_pool(1024, 1, 0, ASOCK_POOL_FAIL_FAST);
}

static TCase *shaped(const char *name, void (*setup)(void), const TTest *t) {
  TCase *tc = tcase_create(name);
  tcase_add_checked_fixture(tc, setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, t);
  return tc;
}

#endif

Suite *asock_test_suite_tcp_packets(void) {
  Suite *s = suite_create("tcp_packets");
  TCase *tc = tcase_create("tcp_packets");
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, pieces_follow_the_sends_around_them);
  tcase_add_test(tc, pieces_read_into_slices_follow_in_order);
  tcase_add_test(tc, small_send_completes_inline);
  tcase_add_test(tc, file_shorter_than_its_range);
  tcase_add_test(tc, file_shorter_than_its_range_read);
  tcase_add_test(tc, unreadable_file_fails_the_send_alone);
  tcase_add_test(tc, cancel_or_timeout_before_any_byte);
  tcase_add_test(tc, close_while_the_file_goes);
  tcase_add_test(tc, close_while_the_file_is_read);
  tcase_add_test(tc, loop_close_ends_a_pending_send);
  tcase_add_test(tc, refusals);
  tcase_add_test(tc, started_from_another_thread);
#ifdef ASOCK_FAULT_INJECTION
  tcase_add_test(tc, failed_file_read);
#endif
  suite_add_tcase(s, tc);
#if defined(ASOCK_FAULT_INJECTION) || defined(_WIN32)
  suite_add_tcase(s, shaped("slices", setup_two_slices, waits_for_a_slice));
  suite_add_tcase(
      s, shaped("fail_fast", setup_fail_fast, fail_fast_pool_fails_the_read));
#endif
  return s;
}
