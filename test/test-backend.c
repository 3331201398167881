/* Backends: the loop's config, how a backend is chosen (the config, then
 * ASOCK_BACKEND), the fall-back when io_uring cannot run (the kernel's
 * refusal simulated through the fault points of its setup), and a ring
 * loop's own work: a loop with the application's handles on it, streams
 * both ways, a receive cancelled with its read out. The whole suite also
 * runs on the io_uring backend (scripts/test-all, ASOCK_BACKEND=io_uring). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "multishot-util.h"
#include "tcp-util.h"
#include "test.h"

#ifdef ASOCK_HAVE_URING
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

#ifdef _WIN32
#define NATIVE ASOCK_BACKEND_IOCP
#define FOREIGN ASOCK_BACKEND_READINESS
#else
#define NATIVE ASOCK_BACKEND_READINESS
#define FOREIGN ASOCK_BACKEND_IOCP
#endif

/* The environment variable, set (value) or unset (NULL). */
static void set_env(const char *value) {
#ifdef _WIN32
  ck_assert_int_eq(_putenv_s("ASOCK_BACKEND", value != NULL ? value : ""), 0);
#else
  if (value != NULL)
    ck_assert_int_eq(setenv("ASOCK_BACKEND", value, 1), 0);
  else
    ck_assert_int_eq(unsetenv("ASOCK_BACKEND"), 0);
#endif
}

/* A loop over tu_pool with `backend` in its config: what the create
 * returned; *out is the loop's backend, or -1 when there is none. */
static int create_with(asock_backend backend, int *out) {
  asock_loop_config c;
  asock_loop *loop;
  int r;

  asock_loop_config_init(&c);
  c.backend = backend;
  r = asock_loop_create_config(&loop, tu_pool, NULL, &c);
  *out = -1;
  if (r == 0) {
    *out = (int)asock_loop_backend(loop);
    ck_assert_asock(asock_loop_close(loop), 0);
  } else {
    ck_assert_ptr_null(loop);
  }
  return r;
}

/* Whether this build and this kernel run io_uring: a loop that asks for it
 * either gets it or ASOCK_ENOTSUP, never anything else. */
static int ring_runs(void) {
  int got;
  int r = create_with(ASOCK_BACKEND_IO_URING, &got);
  ck_assert_msg(r == 0 || r == ASOCK_ENOTSUP, "%s", asock_err_name(r));
  if (r == 0)
    ck_assert_int_eq(got, ASOCK_BACKEND_IO_URING);
  return r == 0;
}

START_TEST(config_init_fills_the_defaults) {
  asock_loop_config c, untouched;
  memset(&c, 0xab, sizeof(c));
  memcpy(&untouched, &c, sizeof(c));
  asock_loop_config_init(&c);
  ck_assert_uint_eq(c.struct_size, sizeof(c));
  ck_assert_int_eq(c.backend, ASOCK_BACKEND_AUTO);
  /* A size too small for struct_size, or larger than asock knows: nothing
   * is written. */
  memset(&c, 0xab, sizeof(c));
  asock_loop_config_init_size(&c, 1);
  asock_loop_config_init_size(&c, sizeof(c) + 1);
  ck_assert_int_eq(memcmp(&c, &untouched, sizeof(c)), 0);
  /* An older program's struct: only its fields. */
  asock_loop_config_init_size(&c, sizeof(c.struct_size));
  ck_assert_uint_eq(c.struct_size, sizeof(c.struct_size));
  ck_assert_int_eq((int)c.backend, (int)0xabababab);
  asock_loop_config_init_size(NULL, sizeof(c)); /* ignored */
}
END_TEST

START_TEST(create_refuses_bad_input) {
  struct {
    asock_loop_config c;
    unsigned char extra[16];
  } big;
  asock_loop_config c;
  asock_loop *loop = (asock_loop *)&c;

  ck_assert_asock(asock_loop_create_config(NULL, tu_pool, NULL, NULL),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_loop_create_config(&loop, NULL, NULL, NULL),
                  ASOCK_EINVAL);
  ck_assert_ptr_null(loop);
  asock_loop_config_init(&c);
  c.struct_size = 0;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, NULL, &c),
                  ASOCK_EINVAL);
  asock_loop_config_init(&c);
  c.backend = (asock_backend)99;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, NULL, &c),
                  ASOCK_EINVAL);
  c.backend = (asock_backend)-1;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, NULL, &c),
                  ASOCK_EINVAL);
  /* A newer program's struct: fields this asock does not know must be
   * zero. */
  memset(&big, 0, sizeof(big));
  asock_loop_config_init(&big.c);
  big.c.struct_size = sizeof(big);
  big.extra[3] = 1;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, NULL, &big.c),
                  ASOCK_EINVAL);
  ck_assert_ptr_null(loop);
  big.extra[3] = 0;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, NULL, &big.c), 0);
  ck_assert_asock(asock_loop_close(loop), 0);
}
END_TEST

START_TEST(names_and_the_running_backend) {
  int got;
  ck_assert_str_eq(asock_backend_name(ASOCK_BACKEND_AUTO), "auto");
  ck_assert_str_eq(asock_backend_name(ASOCK_BACKEND_READINESS), "readiness");
  ck_assert_str_eq(asock_backend_name(ASOCK_BACKEND_IOCP), "iocp");
  ck_assert_str_eq(asock_backend_name(ASOCK_BACKEND_IO_URING), "io_uring");
  ck_assert_str_eq(asock_backend_name((asock_backend)42), "unknown");
  ck_assert_int_eq(asock_loop_backend(NULL), ASOCK_BACKEND_AUTO);
  /* The platform's own, asked for or chosen, runs everywhere; the other
   * platform's never does. */
  set_env(NULL);
  ck_assert_asock(create_with(ASOCK_BACKEND_AUTO, &got), 0);
  ck_assert_int_eq(got, NATIVE);
  ck_assert_asock(create_with(NATIVE, &got), 0);
  ck_assert_int_eq(got, NATIVE);
  ck_assert_asock(create_with(FOREIGN, &got), ASOCK_ENOTSUP);
  ck_assert_int_eq(got, -1);
#if !defined(ASOCK_HAVE_URING)
  ck_assert_asock(create_with(ASOCK_BACKEND_IO_URING, &got), ASOCK_ENOTSUP);
#endif
}
END_TEST

/* The environment chooses for AUTO loops only, and falls back silently. */
START_TEST(environment_chooses_for_auto_loops) {
  int ring = ring_runs();
  int got;

  set_env("io_uring");
  ck_assert_asock(create_with(ASOCK_BACKEND_AUTO, &got), 0);
  ck_assert_int_eq(got, ring ? ASOCK_BACKEND_IO_URING : NATIVE);
  /* A config that names a backend is not overridden. */
  ck_assert_asock(create_with(NATIVE, &got), 0);
  ck_assert_int_eq(got, NATIVE);
  set_env("readiness");
  ck_assert_asock(create_with(ASOCK_BACKEND_AUTO, &got), 0);
  ck_assert_int_eq(got, NATIVE);
  set_env("no-such-backend");
  ck_assert_asock(create_with(ASOCK_BACKEND_AUTO, &got), 0);
  ck_assert_int_eq(got, NATIVE);
  set_env(NULL);
}
END_TEST

/* scripts/test-all runs the suite with ASOCK_BACKEND=io_uring and
 * ASOCK_TEST_EXPECT_BACKEND=io_uring: there, every loop the tests make
 * must really run it, or the second run would test readiness twice. */
START_TEST(expected_backend_runs) {
  const char *want = getenv("ASOCK_TEST_EXPECT_BACKEND");
  if (want == NULL || *want == '\0')
    return;
  ck_assert_str_eq(asock_backend_name(asock_loop_backend(tu_loop)), want);
}
END_TEST

#ifdef ASOCK_HAVE_URING

/* A pool too small to lend the kernel four slices stays on readiness. */
START_TEST(small_pool_cannot_lend) {
  asock_pool_config pc;
  asock_pool *small;
  asock_loop_config c;
  asock_loop *loop;
  asock_pool_config_init(&pc);
  pc.slice_count = 63;
  pc.slice_size = 512;
  ck_assert_asock(asock_pool_create(&small, &pc), 0);
  asock_loop_config_init(&c);
  c.backend = ASOCK_BACKEND_IO_URING;
  ck_assert_asock(asock_loop_create_config(&loop, small, NULL, &c),
                  ASOCK_ENOTSUP);
  ck_assert_ptr_null(loop);
  set_env("io_uring");
  ck_assert_asock(asock_loop_create(&loop, small, NULL), 0);
  ck_assert_int_eq(asock_loop_backend(loop), ASOCK_BACKEND_READINESS);
  ck_assert_asock(asock_loop_close(loop), 0);
  set_env(NULL);
  ck_assert_asock(asock_pool_destroy(small), 0);
}
END_TEST

/* Makes tu_loop a ring loop; 0 when the kernel has no io_uring (the test
 * then has nothing to check). */
static int ring_loop(void) {
  asock_loop_config c;
  if (!ring_runs())
    return 0;
  asock_loop_config_init(&c);
  c.backend = ASOCK_BACKEND_IO_URING;
  ck_assert_asock(tu_reopen_loop(&c), 0);
  ck_assert_int_eq(asock_loop_backend(tu_loop), ASOCK_BACKEND_IO_URING);
  return 1;
}

/* A ring loop lends the kernel a sixteenth of the pool, which the
 * statistics count as free; closing the loop gives them back. */
START_TEST(ring_lends_slices_and_gives_them_back) {
  asock_pool_stats st;
  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 4); /* 64 slices */
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  /* Out of the pool's free list, though: the high-water mark counts them
   * (and those of the loops this test made before). */
  ck_assert_uint_ge(st.slices_high_water, 4);
  ck_assert_asock(tu_close_loop(), 0);
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
}
END_TEST

/* Whether the block at p was allocated for `size` bytes: the allocator
 * rounds up by less than 16, and hands out a free block whole when the
 * rest would be smaller than its smallest block (32 bytes on 64-bit
 * glibc), which depends on what the tests before freed. */
static int allocated_for(const void *p, size_t size) {
  size_t usable = malloc_usable_size((void *)p);
  return usable >= size && usable < size + 48;
}

/* A ring loop's TCP socket is allocated without the readiness backend's
 * poll handle (asock__io_socket_size()): made, accepted or connected, and
 * it still streams, its OS socket born non-blocking; a UDP socket of the same
 * loop has all of its own struct. */
START_TEST(ring_sockets_leave_out_the_poll_handle) {
  static unsigned char out[64 * 1024], in[64 * 1024];
  size_t ring_size;
  asock_socket *tcp, *dgram;
  tu_pair p;
  if (!ring_loop())
    return;
  ring_size = asock__io_socket_size(tu_loop);
  ck_assert_uint_eq(ring_size, offsetof(asock_socket, io) +
                                   offsetof(asock__io, ring) +
                                   sizeof(asock__ring_io));
  /* The poll handle's room is gone but for what the ring keeps, more than
   * allocated_for()'s slack. */
  ck_assert_uint_le(ring_size, sizeof(asock_socket) - sizeof(uv_poll_t) +
                                   sizeof(asock__ring_io));
  ck_assert_uint_lt(ring_size + 48, sizeof(asock_socket));
  ck_assert_asock(asock_tcp_create(&tcp, tu_loop), 0);
  ck_assert_asock(asock_udp_create(&dgram, tu_loop), 0);
  ck_assert(allocated_for(tcp, ring_size));
  ck_assert(allocated_for(dgram, sizeof(asock__udp_socket)));
  ck_assert_asock(tu_close(tcp, 0), 0);
  ck_assert_asock(tu_close(dgram, 0), 0);
  tu_pair_open(&p, "127.0.0.1");
  ck_assert(allocated_for(p.server, ring_size));
  ck_assert(allocated_for(p.client, ring_size));
  ck_assert_int_eq(p.server->io.ring.socket, p.server->io.watch.socket);
  ck_assert_int_ge(p.server->io.ring.socket, 0);
  /* Born non-blocking: the ring sets nothing after. */
  ck_assert_int_ne(fcntl(p.server->io.ring.socket, F_GETFL) & O_NONBLOCK, 0);
  ck_assert_int_ne(fcntl(p.client->io.ring.socket, F_GETFL) & O_NONBLOCK, 0);
  tu_fill(out, sizeof(out), 3, 0);
  tu_send_all(p.client, out, sizeof(out));
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 3, 0), sizeof(in));
}
END_TEST

#define BIG (1024u * 1024u)

/* Streams both ways on a ring loop: every byte, in order; a receive into
 * the op's own buffer (copied), and on-demand ones (slices exchanged). */
START_TEST(ring_streams_both_ways) {
  static unsigned char out[BIG], in[BIG];
  tu_pair p;
  size_t got = 0;
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  tu_fill(out, sizeof(out), 7, 0);
  tu_send_all(p.client, out, sizeof(out));
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_uint_eq(tu_mismatch(in, sizeof(in), 7, 0), sizeof(in));
  tu_fill(out, sizeof(out), 8, 0);
  tu_send_all(p.server, out, sizeof(out));
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_recv_to_end(p.client, 8, 0, BIG, &got), ASOCK_EOF);
  ck_assert_uint_eq(got, BIG);
}
END_TEST

/* A receive cancelled while the ring's read is out: the bytes that read
 * brings wait for the next receive, which gets them first and in its call,
 * then what came after. */
START_TEST(ring_keeps_what_came_for_a_cancelled_receive) {
  tu_pair p;
  asock_op *r1 = tu_op();
  asock_op *r2 = tu_op();
  static char a[4], b[8];
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  tu_set_buffer(r1, a, sizeof(a));
  ck_assert_asock(tu_receive(p.server, r1), ASOCK_PENDING);
  tu_run_for(10); /* the ring's read is submitted */
  ck_assert_asock(tu_cancel(r1), 0);
  ck_assert(tu_wait_calls(r1, 1));
  ck_assert_asock(tu_rec(r1)->status, ASOCK_ECANCELED);
  tu_send_all(p.client, "abcdef", 6);
  tu_run_for(30); /* the read completes with no receive waiting */
  tu_set_buffer(r2, b, 3);
  ck_assert_asock(tu_receive(p.server, r2), 0);
  ck_assert_uint_eq(asock_op_bytes(r2), 3);
  ck_assert_int_eq(memcmp(b, "abc", 3), 0);
  tu_send_all(p.client, "gh", 2);
  tu_set_buffer(r2, b, sizeof(b));
  ck_assert_asock(tu_receive(p.server, r2), 0);
  ck_assert_uint_eq(asock_op_bytes(r2), 3);
  ck_assert_int_eq(memcmp(b, "def", 3), 0);
  tu_recv_exact(p.server, b, 2);
  ck_assert_int_eq(memcmp(b, "gh", 2), 0);
}
END_TEST

/* Whether the socket has no receive, or no accept, in the ring. */
static int no_recv_out(const void *sock) {
  return (((const asock_socket *)sock)->io.ring.out & ASOCK__RING_RECV) == 0;
}
static int no_accept_out(const void *sock) {
  return (((const asock_socket *)sock)->io.ring.out & ASOCK__RING_ACCEPT) == 0;
}

static void setup_ring_quota(void) { tu_setup_pool(1024, 128, 4, 0); }

/* A multishot receive is one multishot request on the ring, bounded by
 * what the socket's quota leaves (a pool of 1 KiB slices, quota 4): while
 * the application keeps every slice, the socket reads four and no more,
 * and the ring holds one buffer for it at most; released, the rest comes,
 * in order. */
START_TEST(ring_multishot_stops_at_the_quota) {
  static ms_rec r;
  static unsigned char out[8192];
  size_t held = 0;
  const asock__ring_io *io;
  tu_pair p;
  asock_op *op;
  int i;
  if (!ring_loop())
    return;
  ck_assert_int_eq(asock__ring_multishot(tu_loop), 1);
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  r.detach = 1;
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  tu_fill(out, sizeof(out), 9, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_count(&r.deliveries, 4));
  /* The request ends (its bound, or reading stopped), and nothing more
   * comes meanwhile. */
  ck_assert(tu_run_until(no_recv_out, p.server, 10000));
  tu_run_for(50);
  ck_assert_int_eq(r.deliveries, 4);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 4);
  for (i = 0; i < 4; i++) {
    ck_assert_uint_le(r.sizes[i], 1024);
    held += r.sizes[i];
  }
  ms_assert_stream(&r, held, 9);
  ck_assert_uint_eq(p.server->io.ring.out & ASOCK__RING_RECV, 0);
  /* The ring holds one buffer more at most, as a one-shot receive would:
   * the bytes that come next. */
  io = &p.server->io.ring;
  if (io->stash != NULL) {
    ck_assert_uint_eq(io->stash_bid, io->stash_last);
    ck_assert_uint_le(io->stash_end - io->stash_off, 1024);
    ck_assert_int_eq(memcmp(io->stash + io->stash_off, out + held,
                            io->stash_end - io->stash_off),
                     0);
  }
  /* Given back, the slices let the socket read the rest. */
  r.detach = 0;
  for (i = 0; i < r.nslices; i++)
    ck_assert_asock(asock_pool_release(tu_pool, r.slices[i]), 0);
  while (r.len < sizeof(out))
    ck_assert_msg(tu_wait_count(&r.deliveries, r.deliveries + 1),
                  "%zu of %zu bytes came", r.len, sizeof(out));
  ms_assert_stream(&r, sizeof(out), 9);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ms_close_pair(&p, &r);
}
END_TEST

static int recv_out(const void *arg) {
  const asock_socket *sock = arg;
  return (sock->io.ring.out & ASOCK__RING_RECV) != 0;
}

/* More connections than the ring has buffers get bytes at once (8 lent,
 * 24 connections): the receives that found no buffer wait their turn,
 * oldest first, and each is refused once; a pass that sent every starved
 * receive again would be refused once per buffer short. */
START_TEST(ring_starved_receives_wait_their_turn) {
  enum { N = 24, LEN = 100 };
  static tu_pair p[N];
  static asock_op *ops[N];
  unsigned char out[LEN];
  unsigned long before;
  int i;
  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 8);
  for (i = 0; i < N; i++) {
    tu_pair_open(&p[i], "127.0.0.1");
    ops[i] = tu_op();
    ck_assert_asock(tu_receive(p[i].server, ops[i]), ASOCK_PENDING);
    ck_assert(tu_run_until(recv_out, p[i].server, 10000));
  }
  before = asock__ring_refusals(tu_loop);
  for (i = 0; i < N; i++) {
    tu_fill(out, LEN, (uint32_t)i, 0);
    tu_os_send(p[i].client, out, LEN);
  }
  ck_assert(tu_wait_count(&tu_completions, N));
  for (i = 0; i < N; i++) {
    ck_assert_int_eq(tu_rec(ops[i])->calls, 1);
    ck_assert_asock(tu_rec(ops[i])->status, 0);
    ck_assert_uint_eq(tu_rec(ops[i])->bytes, LEN);
    ck_assert_uint_eq(tu_mismatch(asock_op_data(ops[i]), LEN, (uint32_t)i, 0),
                      LEN);
  }
  ck_assert_uint_eq(asock__ring_refusals(tu_loop) - before, N - 8);
  for (i = 0; i < N; i++) {
    ck_assert_asock(tu_close(p[i].server, 0), 0);
    ck_assert_asock(tu_close(p[i].client, 0), 0);
  }
}
END_TEST

static int stashed(const void *arg) {
  const asock_socket *sock = arg;
  return sock->io.ring.stash != NULL;
}

/* Sockets whose bytes wait for a receive that does not come keep them in
 * slices of their own once the kernel has fewer than half its buffers (8
 * lent, 12 such sockets): the first four hold provided buffers, the other
 * eight a slice each, charged to them; another socket's receive still gets
 * its bytes, and each waiting socket's bytes come whole to its next
 * receive. */
START_TEST(ring_waiting_bytes_let_go_of_the_kernels_buffers) {
  enum { N = 12, LEN = 100 };
  static tu_pair p[N + 1];
  static asock_op *ops[N + 1];
  unsigned char out[LEN], in[LEN];
  int i;
  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 8);
  for (i = 0; i <= N; i++) {
    tu_pair_open(&p[i], "127.0.0.1");
    ops[i] = tu_op();
  }
  for (i = 0; i < N; i++) {
    /* One receive, answered: the socket reads on, with a request out, and
     * the next bytes wait in a buffer. */
    ck_assert_asock(tu_receive(p[i].server, ops[i]), ASOCK_PENDING);
    tu_fill(out, 1, (uint32_t)i, 0);
    tu_os_send(p[i].client, out, 1);
    ck_assert(tu_wait_calls(ops[i], 1));
    ck_assert_uint_eq(tu_rec(ops[i])->bytes, 1);
    tu_fill(out, LEN, (uint32_t)i, 1);
    tu_os_send(p[i].client, out, LEN);
    ck_assert(tu_run_until(stashed, p[i].server, 10000));
  }
  ck_assert_uint_eq(asock_socket_slices_held(p[0].server), 1);
  ck_assert_uint_eq(asock_socket_slices_held(p[N - 1].server), 2);
  ck_assert_asock(tu_receive(p[N].server, ops[N]), ASOCK_PENDING);
  tu_fill(out, LEN, N, 0);
  tu_os_send(p[N].client, out, LEN);
  ck_assert(tu_wait_calls(ops[N], 1));
  ck_assert_asock(tu_rec(ops[N])->status, 0);
  ck_assert_uint_eq(tu_rec(ops[N])->bytes, LEN);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(ops[N]), LEN, N, 0), LEN);
  for (i = 0; i < N; i++) {
    tu_recv_exact(p[i].server, in, LEN);
    ck_assert_uint_eq(tu_mismatch(in, LEN, (uint32_t)i, 1), LEN);
    ck_assert_asock(asock_op_clear_buffer(ops[i]), 0);
    ck_assert_uint_eq(asock_socket_slices_held(p[i].server), 0);
  }
  for (i = 0; i <= N; i++) {
    ck_assert_asock(tu_close(p[i].server, 0), 0);
    ck_assert_asock(tu_close(p[i].client, 0), 0);
  }
}
END_TEST

/* A multishot receive cancelled while its request is out: the request is
 * cancelled with it, and what comes after waits for the next receive,
 * whole and in order. */
START_TEST(ring_multishot_cancelled_leaves_the_rest) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  char b[8];
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 3, 11, 0, 1);
  ck_assert_uint_eq(p.server->io.ring.out & ASOCK__RING_MSHOT,
                    ASOCK__RING_MSHOT);
  ck_assert_asock(tu_cancel(op), 0);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
  ms_assert_stream(&r, 3, 11);
  /* Reading stops when the next bytes find no receive: the request is
   * cancelled then, and the bytes wait for the next receive. */
  tu_send_all(p.client, "defgh", 5);
  ck_assert(tu_run_until(no_recv_out, p.server, 10000));
  tu_recv_exact(p.server, b, 5);
  ck_assert_int_eq(memcmp(b, "defgh", 5), 0);
  ck_assert_int_eq(r.deliveries, 1);
}
END_TEST

/* A multishot receive cancelled inside its first delivery while the
 * kernel brought four buffers' worth (4 lent): the first buffer is
 * delivered, and the three the rest hold, with the kernel below half its
 * buffers once the request ends, all move to slices charged to the socket,
 * in order; the bytes come whole to the next receives, and the slices go
 * back. */
START_TEST(ring_cancelled_multishot_lets_go_of_every_buffer) {
  enum { LEN = 4 * 4096 };
  static ms_rec r;
  static unsigned char out[LEN], in[LEN];
  tu_pair p;
  asock_op *op;
  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 4);
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  r.cancel_at = 1;
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  tu_fill(out, LEN, 5, 0);
  tu_os_send(p.client, out, LEN);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
  ck_assert_int_eq(r.deliveries, 1);
  ck_assert_uint_eq(r.len, 4096);
  ck_assert_uint_eq(tu_mismatch(r.data, 4096, 5, 0), 4096);
  ck_assert(tu_run_until(no_recv_out, p.server, 10000));
  ck_assert_uint_ge(p.server->io.ring.stash_bid, 4);
  ck_assert_uint_ge(p.server->io.ring.stash_last, 4);
  ck_assert_uint_ne(p.server->io.ring.stash_bid, p.server->io.ring.stash_last);
  /* The op's delivered slice back, the three kept ones remain. */
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 3);
  tu_recv_exact(p.server, in, LEN - 4096);
  ck_assert_uint_eq(tu_mismatch(in, LEN - 4096, 5, 4096), LEN - 4096);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

/* A receive of op on sock, completed inside its call or waited for. */
static void recv_one(asock_socket *sock, asock_op *op) {
  int calls = tu_rec(op)->calls;
  int r = tu_receive(sock, op);
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(op, calls + 1));
  else
    ck_assert_asock(r, 0);
  ck_assert_asock(asock_op_status(op), 0);
}

/* Kept slices count against the socket's quota, and leave room for the
 * receive that reads them (1 KiB slices, quota 4, 8 lent): three sockets
 * hold a lent buffer each; a multishot receive whose application keeps
 * its first delivery's slice cancels itself there with three more buffers
 * out, and when its request ends two of them become the socket's (with
 * the application's, three of four) and the third stays lent. A receive
 * without a buffer then reads all three kilobytes, in order. */
START_TEST(ring_kept_slices_leave_a_receive_its_slice) {
  enum { N = 3, LEN = 100, MS = 4 * 1024 };
  static tu_pair p[N + 1];
  static ms_rec r;
  static unsigned char out[MS], in[MS];
  asock_socket *m;
  asock_op *op;
  int i;
  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 8);
  for (i = 0; i < N; i++) {
    op = tu_op();
    tu_pair_open(&p[i], "127.0.0.1");
    ck_assert_asock(tu_receive(p[i].server, op), ASOCK_PENDING);
    tu_fill(out, 1, (uint32_t)i, 0);
    tu_os_send(p[i].client, out, 1);
    ck_assert(tu_wait_calls(op, 1));
    tu_fill(out, LEN, (uint32_t)i, 1);
    tu_os_send(p[i].client, out, LEN);
    ck_assert(tu_run_until(stashed, p[i].server, 10000));
  }
  tu_pair_open(&p[N], "127.0.0.1");
  m = p[N].server;
  op = ms_op(&r);
  r.detach = 1;
  r.cancel_at = 1;
  ck_assert_asock(tu_receive(m, op), ASOCK_PENDING);
  tu_fill(out, MS, 7, 0);
  tu_os_send(p[N].client, out, MS);
  ck_assert(tu_wait_count(&r.finals, 1));
  ck_assert_asock(r.final_status, ASOCK_ECANCELED);
  ck_assert_int_eq(r.deliveries, 1);
  ck_assert_uint_eq(r.len, 1024);
  ck_assert_uint_eq(tu_mismatch(r.data, 1024, 7, 0), 1024);
  ck_assert(tu_run_until(no_recv_out, m, 10000));
  ck_assert_uint_eq(asock_socket_slices_held(m), 3);
  ck_assert_uint_ge(m->io.ring.stash_bid, 8);
  ck_assert_uint_lt(m->io.ring.stash_last, 8);
  /* Read with the application's slice still held. */
  op = tu_op();
  for (i = 0; i < 3; i++) {
    recv_one(m, op);
    ck_assert_uint_eq(asock_op_bytes(op), 1024);
    memcpy(in + 1024 * i, asock_op_data(op), 1024);
  }
  ck_assert_uint_eq(tu_mismatch(in, 3 * 1024, 7, 1024), 3 * 1024);
  ck_assert_asock(asock_op_clear_buffer(op), 0);
  ck_assert_int_eq(r.nslices, 1);
  ck_assert_asock(asock_pool_release(tu_pool, r.slices[0]), 0);
  ck_assert_uint_eq(asock_socket_slices_held(m), 0);
  for (i = 0; i <= N; i++) {
    ck_assert_asock(tu_close(p[i].server, 0), 0);
    ck_assert_asock(tu_close(p[i].client, 0), 0);
  }
}
END_TEST

static void setup_ring_zero(void) {
  tu_setup_pool(4096, 64, 0, ASOCK_POOL_ZERO_ON_RELEASE);
}

/* Where the pool zeroes slices on release, no slice the ring lends the
 * kernel shows one connection's bytes to another (SECURITY.md; 4 KiB
 * slices, 4 lent): A's receive reads a secret twice, each
 * time from a buffer the kernel filled while it waited, and
 * B's receives then go round every buffer the kernel has, each showing its
 * three bytes and zeros after them. */
START_TEST(ring_zero_on_release_hides_old_bytes) {
  enum { SLICE = 4096, SECRET = 2000, ROUNDS = 8 };
  static unsigned char secret[SECRET];
  tu_pair a, b;
  asock_op *ra;
  int i;
  size_t k;
  if (!ring_loop())
    return;
  ck_assert_uint_eq(tu_lent(tu_loop), 4);
  tu_pair_open(&a, "127.0.0.1");
  tu_pair_connect(&b, a.listener, &a.addr);
  ra = tu_op();
  memset(secret, 0x5a, sizeof(secret));
  /* Twice: the receive waits, and the bytes come in a buffer the kernel
   * picks. The second time the receive holds the first secret's slice,
   * and reads into the kernel's buffer: the two slices could change
   * places, the secret's going to the kernel. */
  for (i = 0; i < 2; i++) {
    ck_assert_asock(tu_receive(a.server, ra), ASOCK_PENDING);
    tu_os_send(a.client, secret, sizeof(secret));
    ck_assert(tu_wait_calls(ra, i + 1));
    ck_assert_asock(asock_op_status(ra), 0);
    ck_assert_uint_eq(asock_op_bytes(ra), SECRET);
  }
  for (i = 0; i < ROUNDS; i++) {
    asock_op *rb = tu_op();
    const unsigned char *d;
    /* Waiting when they come, the bytes arrive in a buffer the kernel
     * picks. */
    ck_assert_asock(tu_receive(b.server, rb), ASOCK_PENDING);
    tu_os_send(b.client, "abc", 3);
    ck_assert(tu_wait_calls(rb, 1));
    ck_assert_asock(asock_op_status(rb), 0);
    ck_assert_uint_eq(asock_op_bytes(rb), 3);
    ck_assert_uint_eq(asock_op_offset(rb), 0);
    d = asock_op_data(rb);
    ck_assert_int_eq(memcmp(d, "abc", 3), 0);
    for (k = 3; k < SLICE; k++)
      if (d[k] != 0)
        ck_abort_msg("round %d: byte %zu of B's slice is %#x", i, k, d[k]);
    ck_assert_asock(asock_op_clear_buffer(rb), 0);
  }
  ck_assert_asock(tu_close(a.server, 0), 0);
  ck_assert_asock(tu_close(a.client, 0), 0);
  ck_assert_asock(tu_close(b.server, 0), 0);
  ck_assert_asock(tu_close(b.client, 0), 0);
}
END_TEST

/* A client whose connect to addr is started, not waited for. */
static asock_socket *start_dial(const struct sockaddr_storage *addr,
                                asock_op **cop) {
  asock_socket *client;
  *cop = tu_op();
  ck_assert_asock(asock_tcp_create(&client, tu_loop), 0);
  ck_assert_asock(asock_op_set_remote(*cop, (const struct sockaddr *)addr), 0);
  ck_assert_asock(tu_connect(client, *cop), ASOCK_PENDING);
  return client;
}

#define DIALS 4

/* A listener's accepts are one multishot request: the connections that
 * come while no accept waits queue in the listener (or in the kernel,
 * once the request is cancelled), and the next accepts take them inside
 * their calls, each once, none lost. */
START_TEST(ring_accepts_queue_while_none_waits) {
  struct sockaddr_storage addr, local[DIALS];
  asock_socket *listener, *clients[DIALS], *got[DIALS];
  asock_op *acc = tu_op(), *cop[DIALS];
  int i, j;
  if (!ring_loop())
    return;
  ck_assert_int_eq(asock__ring_multishot_accepts(tu_loop), 1);
  listener = tu_listen("127.0.0.1", &addr);
  ck_assert_asock(tu_accept(listener, acc), ASOCK_PENDING);
  ck_assert_uint_eq(listener->io.ring.out & ASOCK__RING_MACCEPT,
                    ASOCK__RING_MACCEPT);
  for (i = 0; i < DIALS; i++)
    clients[i] = start_dial(&addr, &cop[i]);
  for (i = 0; i < DIALS; i++) {
    int len = (int)sizeof(local[i]);
    ck_assert(tu_wait_calls(cop[i], 1));
    ck_assert_asock(tu_rec(cop[i])->status, 0);
    ck_assert_asock(asock_socket_local_address(
                        clients[i], (struct sockaddr *)&local[i], &len),
                    0);
  }
  ck_assert(tu_wait_calls(acc, 1));
  ck_assert_asock(tu_rec(acc)->status, 0);
  got[0] = asock_op_accepted(acc);
  /* No accept wants: the request is cancelled. */
  ck_assert(tu_run_until(no_accept_out, listener, 10000));
  ck_assert_uint_le(listener->io.ring.conns_len, DIALS - 1);
  for (i = 1; i < DIALS; i++) {
    ck_assert_asock(tu_accept(listener, acc), 0);
    got[i] = asock_op_accepted(acc);
  }
  ck_assert_uint_eq(listener->io.ring.conns_len, 0);
  /* Each client was accepted once. */
  for (i = 0; i < DIALS; i++) {
    struct sockaddr_storage remote;
    int len = (int)sizeof(remote);
    int matches = 0;
    ck_assert_ptr_nonnull(got[i]);
    ck_assert_asock(
        asock_socket_remote_address(got[i], (struct sockaddr *)&remote, &len),
        0);
    for (j = 0; j < DIALS; j++)
      matches += tu_same_addr((struct sockaddr *)&remote,
                              (struct sockaddr *)&local[j]);
    ck_assert_int_eq(matches, 1);
    for (j = 0; j < i; j++)
      ck_assert_ptr_ne(got[i], got[j]);
  }
  for (i = 0; i < DIALS; i++) {
    ck_assert_asock(tu_close(got[i], 0), 0);
    ck_assert_asock(tu_close(clients[i], 0), 0);
  }
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

/* A listener closed with connections in its queue closes them: their
 * clients hear the end. */
START_TEST(ring_listener_close_ends_queued_connections) {
  struct sockaddr_storage addr;
  asock_socket *listener, *clients[DIALS];
  asock_op *acc = tu_op(), *cop[DIALS];
  size_t got = 0;
  int i;
  if (!ring_loop())
    return;
  ck_assert_int_eq(asock__ring_multishot_accepts(tu_loop), 1);
  listener = tu_listen("127.0.0.1", &addr);
  ck_assert_asock(tu_accept(listener, acc), ASOCK_PENDING);
  for (i = 0; i < DIALS; i++)
    clients[i] = start_dial(&addr, &cop[i]);
  for (i = 0; i < DIALS; i++)
    ck_assert(tu_wait_calls(cop[i], 1));
  ck_assert(tu_wait_calls(acc, 1));
  ck_assert_asock(tu_close(asock_op_accepted(acc), 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
  for (i = 0; i < DIALS; i++) {
    int r = tu_recv_to_end(clients[i], 0, 0, 0, &got);
    ck_assert_msg(r == ASOCK_EOF || r == ASOCK_ECONNRESET, "%s",
                  asock_err_name(r));
    ck_assert_uint_eq(got, 0);
    ck_assert_asock(tu_close(clients[i], 0), 0);
  }
}
END_TEST

/* A ring socket's sends all pend: the loop's next submission is their
 * attempt. Sends posted together reach the peer whole and in order, each
 * completing once with its own count, in posting order. */
START_TEST(ring_sends_complete_through_the_ring) {
  static const char *const parts[3] = {"abc", "defg", "hi"};
  asock_op *s[3];
  tu_pair p;
  char in[9];
  int i;
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 3; i++) {
    s[i] = tu_op();
    tu_set_buffer(s[i], (void *)parts[i], strlen(parts[i]));
    ck_assert_asock(tu_send(p.client, s[i]), ASOCK_PENDING);
    if (i > 0)
      ck_assert_uint_eq(asock_op_seq(s[i]), asock_op_seq(s[i - 1]) + 1);
  }
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 9);
  tu_recv_exact(p.server, in, sizeof(in));
  ck_assert_int_eq(memcmp(in, "abcdefghi", 9), 0);
  for (i = 0; i < 3; i++) {
    ck_assert(tu_wait_calls(s[i], 1));
    ck_assert_asock(tu_rec(s[i])->status, 0);
    ck_assert_uint_eq(tu_rec(s[i])->bytes, strlen(parts[i]));
    if (i > 0)
      ck_assert_int_lt(tu_rec(s[i - 1])->order, tu_rec(s[i])->order);
  }
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
  tu_run_for(20);
  for (i = 0; i < 3; i++)
    ck_assert_int_eq(tu_rec(s[i])->calls, 1);
}
END_TEST

/* A close right after sends were posted, before the loop submitted them:
 * each completes once, ASOCK_ECANCELED. A listener closed with its accept
 * in the ring frees its port inside the close: the port can be listened on
 * again at once. */
START_TEST(ring_close_ends_what_was_just_posted) {
  static unsigned char big[2u << 20];
  struct sockaddr_storage addr;
  asock_socket *again;
  asock_op *s[2], *a = tu_op();
  tu_pair p;
  int i;
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  for (i = 0; i < 2; i++) {
    s[i] = tu_op();
    tu_set_buffer(s[i], big, sizeof(big));
    ck_assert_asock(tu_send(p.client, s[i]), ASOCK_PENDING);
  }
  ck_assert_asock(tu_close(p.client, 0), 0);
  for (i = 0; i < 2; i++) {
    ck_assert(tu_wait_calls(s[i], 1));
    ck_assert_asock(tu_rec(s[i])->status, ASOCK_ECANCELED);
  }
  ck_assert_int_lt(tu_rec(s[0])->order, tu_rec(s[1])->order);

  ck_assert_asock(tu_accept(p.listener, a), ASOCK_PENDING);
  tu_run_for(10); /* the accept is in the ring */
  memcpy(&addr, &p.addr, sizeof(addr));
  ck_assert_asock(tu_close(p.listener, 0), 0);
  p.listener = NULL;
  ck_assert_asock(asock_tcp_create(&again, tu_loop), 0);
  ck_assert_asock(asock_tcp_listen(again, (struct sockaddr *)&addr, 4, 0), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_asock(tu_close(again, 0), 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  for (i = 0; i < 2; i++)
    ck_assert_int_eq(tu_rec(s[i])->calls, 1);
}
END_TEST

/* A send still queued when its socket closes abortively, in the same
 * loop iteration as an accept that was queued before it: the accept takes
 * the lowest free descriptor, which is the closed socket's if it was
 * closed before the kernel took the queued entries. Not one of the send's
 * bytes may reach the accepted connection's peer. */
START_TEST(ring_close_keeps_a_queued_send_off_a_new_connection) {
  static const char secret[] = "not for the new connection";
  asock_op *a = tu_op(), *s = tu_op();
  struct sockaddr_in to;
  socklen_t len = sizeof(to);
  tu_pair p;
  char buf[64];
  int raw;
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  ck_assert_asock(tu_accept(p.listener, a), ASOCK_PENDING);
  /* Connected in the kernel's backlog; accepted only by the ring. */
  raw = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(raw, 0);
  memcpy(&to, &p.addr, sizeof(to));
  ck_assert_int_eq(connect(raw, (struct sockaddr *)&to, len), 0);
  tu_set_buffer(s, (void *)secret, sizeof(secret));
  ck_assert_asock(tu_send(p.client, s), ASOCK_PENDING);
  ck_assert_asock(tu_close(p.client, ASOCK_CLOSE_ABORT), 0);
  ck_assert(tu_wait_calls(a, 1));
  ck_assert_asock(tu_rec(a)->status, 0);
  ck_assert(tu_wait_calls(s, 1));
  tu_run_for(20);
  ck_assert_int_eq((int)recv(raw, buf, sizeof(buf), MSG_DONTWAIT), -1);
  ck_assert_int_eq(errno, EAGAIN);
  ck_assert_int_eq(close(raw), 0);
  ck_assert_asock(tu_close(asock_op_accepted(a), 0), 0);
}
END_TEST

static void run_from_another_thread(void *arg) {
  int *result = arg;
  *result = asock_loop_run(tu_loop, UV_RUN_NOWAIT);
}

/* A ring with deferred completion work takes submissions from one thread,
 * the first to submit: a run from another thread is refused and changes
 * nothing; the loop goes on serving on its own thread. */
START_TEST(ring_loop_stays_with_its_first_thread) {
  tu_pair p;
  uv_thread_t other;
  int result = 1;
  char c = 0;
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  if (!asock__ring_deferred(tu_loop))
    return; /* a kernel without it: any thread may run the loop */
  ck_assert_int_eq(uv_thread_create(&other, run_from_another_thread, &result),
                   0);
  ck_assert_int_eq(uv_thread_join(&other), 0);
  ck_assert_asock(result, ASOCK_ETHREAD);
  tu_send_all(p.client, "x", 1);
  tu_recv_exact(p.server, &c, 1);
  ck_assert_int_eq(c, 'x');
}
END_TEST

static int app_timer_fired;
static void on_app_timer(uv_timer_t *t) {
  (void)t;
  app_timer_fired++;
}
static void on_app_closed(uv_handle_t *h) { (void)h; }

/* A ring loop embedded in the application's libuv loop: the application's
 * own handles run beside it, and once the asock loop is closed the libuv
 * loop holds none of asock's handles. */
START_TEST(ring_loop_shares_the_applications_loop) {
  uv_loop_t uvl;
  uv_timer_t timer;
  asock_loop_config c;
  asock_loop *loop;
  if (!ring_runs())
    return;
  ck_assert_int_eq(uv_loop_init(&uvl), 0);
  asock_loop_config_init(&c);
  c.backend = ASOCK_BACKEND_IO_URING;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, &uvl, &c), 0);
  ck_assert_int_eq(asock_loop_backend(loop), ASOCK_BACKEND_IO_URING);
  ck_assert_int_eq(uv_timer_init(&uvl, &timer), 0);
  ck_assert_int_eq(uv_timer_start(&timer, on_app_timer, 1, 0), 0);
  /* Nothing of asock's keeps the loop alive: it returns once the timer
   * ran. */
  ck_assert_int_eq(uv_run(&uvl, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(app_timer_fired, 1);
  ck_assert_asock(asock_loop_close(loop), 0);
  uv_close((uv_handle_t *)&timer, on_app_closed);
  ck_assert_int_eq(uv_run(&uvl, UV_RUN_DEFAULT), 0);
  ck_assert_int_eq(uv_loop_close(&uvl), 0);
}
END_TEST

#ifdef ASOCK_FAULT_INJECTION

/* A kernel or sandbox that refuses io_uring at each step of the ring's
 * setup: a loop that asks for it gets ASOCK_ENOTSUP (or the error), one
 * the environment chose for gets readiness and serves; nothing is left
 * taken from the pool. */
static void refused_at(asock__fault_point point, int err, int expect) {
  asock_pool_stats st;
  asock_loop_config c;
  asock_loop *loop;
  tu_pair p;
  char buf[5];

  asock__fault_reset();
  asock__fault_arm(point, 1, err);
  asock_loop_config_init(&c);
  c.backend = ASOCK_BACKEND_IO_URING;
  ck_assert_asock(asock_loop_create_config(&loop, tu_pool, NULL, &c), expect);
  ck_assert_ptr_null(loop);
  ck_assert(asock__fault_fired(point));
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  ck_assert_uint_eq(st.slices_in_use, 0);
  /* The environment's choice falls back, and the loop works. */
  asock__fault_reset();
  asock__fault_arm(point, 1, err);
  set_env("io_uring");
  ck_assert_asock(tu_reopen_loop(NULL), 0);
  set_env(NULL);
  ck_assert(asock__fault_fired(point));
  asock__fault_reset();
  ck_assert_int_eq(asock_loop_backend(tu_loop), ASOCK_BACKEND_READINESS);
  ck_assert_uint_eq(tu_lent(tu_loop), 0);
  tu_pair_open(&p, "127.0.0.1");
  tu_send_all(p.client, "hello", 5);
  tu_recv_exact(p.server, buf, 5);
  ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
}

/* A kernel that refuses multishot accepts answers EINVAL: the listener's
 * accepts go one at a time from then on, and the connection is taken. */
START_TEST(refused_multishot_accept_goes_one_at_a_time) {
  struct sockaddr_storage addr;
  asock_socket *listener, *client;
  asock_op *acc = tu_op(), *cop;
  uint64_t k;
  if (!ring_loop())
    return;
  ck_assert_int_eq(asock__ring_multishot_accepts(tu_loop), 1);
  /* Which call of the accept point the ring's request is: a first
   * listener shows it. */
  listener = tu_listen("127.0.0.1", &addr);
  asock__fault_reset();
  ck_assert_asock(tu_accept(listener, acc), ASOCK_PENDING);
  k = asock__fault_calls(ASOCK__FAULT_ACCEPT);
  ck_assert_uint_ge(k, 1);
  ck_assert_asock(tu_close(listener, 0), 0);
  ck_assert(tu_wait_calls(acc, 1));
  ck_assert_asock(tu_rec(acc)->status, ASOCK_ECANCELED);
  listener = tu_listen("127.0.0.1", &addr);
  asock__fault_reset();
  asock__fault_arm(ASOCK__FAULT_ACCEPT, k, UV_EINVAL);
  ck_assert_asock(tu_accept(listener, acc), ASOCK_PENDING);
  client = start_dial(&addr, &cop);
  ck_assert(tu_wait_calls(acc, 2));
  ck_assert(asock__fault_fired(ASOCK__FAULT_ACCEPT));
  asock__fault_reset();
  ck_assert_asock(tu_rec(acc)->status, 0);
  ck_assert_int_eq(asock__ring_multishot_accepts(tu_loop), 0);
  ck_assert_uint_eq(listener->io.ring.out & ASOCK__RING_MACCEPT, 0);
  ck_assert(tu_wait_calls(cop, 1));
  ck_assert_asock(tu_rec(cop)->status, 0);
  ck_assert_asock(tu_close(asock_op_accepted(acc), 0), 0);
  ck_assert_asock(tu_close(client, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST

/* A kernel that refuses the multishot request's bound (before 6.17)
 * answers EINVAL: the ring's receives go one at a time from then on, and
 * the multishot receive loses nothing. */
START_TEST(refused_multishot_bound_goes_one_at_a_time) {
  static ms_rec r;
  tu_pair p;
  asock_op *op;
  if (!ring_loop())
    return;
  tu_pair_open(&p, "127.0.0.1");
  op = ms_op(&r);
  asock__fault_reset();
  asock__fault_arm(ASOCK__FAULT_RECV, 1, UV_EINVAL);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  ms_send_and_wait(p.client, &r, 100, 12, 0, 1);
  ck_assert(asock__fault_fired(ASOCK__FAULT_RECV));
  asock__fault_reset();
  ck_assert_int_eq(asock__ring_multishot(tu_loop), 0);
  ck_assert_uint_eq(p.server->io.ring.out & ASOCK__RING_MSHOT, 0);
  ms_send_and_wait(p.client, &r, 100, 12, 100, 2);
  ms_assert_stream(&r, 200, 12);
  ck_assert_int_eq(r.finals, 0);
  ms_close_pair(&p, &r);
}
END_TEST

START_TEST(refused_ring_setup_falls_back) {
  if (!ring_runs())
    return;
  refused_at(ASOCK__FAULT_URING_INIT, UV_ENOSYS, ASOCK_ENOTSUP);
}
END_TEST

START_TEST(refused_probe_falls_back) {
  if (!ring_runs())
    return;
  refused_at(ASOCK__FAULT_URING_PROBE, UV_EPERM, ASOCK_ENOTSUP);
}
END_TEST

START_TEST(refused_buffer_ring_falls_back) {
  if (!ring_runs())
    return;
  refused_at(ASOCK__FAULT_URING_REGISTER, UV_EINVAL, ASOCK_ENOTSUP);
}
END_TEST

START_TEST(refused_poll_handle_falls_back) {
  if (!ring_runs())
    return;
  /* The ring's poll handle is the first the loop opens. */
  refused_at(ASOCK__FAULT_POLL_INIT, UV_ENOMEM, ASOCK_ENOMEM);
}
END_TEST

#endif /* ASOCK_FAULT_INJECTION */
#endif /* ASOCK_HAVE_URING */

Suite *asock_test_suite_backend(void) {
  Suite *s = suite_create("backend");
  TCase *tc = tcase_create("backend");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, tu_setup, tu_teardown);
  tcase_add_test(tc, config_init_fills_the_defaults);
  tcase_add_test(tc, create_refuses_bad_input);
  tcase_add_test(tc, names_and_the_running_backend);
  tcase_add_test(tc, environment_chooses_for_auto_loops);
  tcase_add_test(tc, expected_backend_runs);
#ifdef ASOCK_HAVE_URING
  tcase_add_test(tc, small_pool_cannot_lend);
  tcase_add_test(tc, ring_lends_slices_and_gives_them_back);
  tcase_add_test(tc, ring_sockets_leave_out_the_poll_handle);
  tcase_add_test(tc, ring_streams_both_ways);
  tcase_add_test(tc, ring_keeps_what_came_for_a_cancelled_receive);
  tcase_add_test(tc, ring_multishot_cancelled_leaves_the_rest);
  tcase_add_test(tc, ring_cancelled_multishot_lets_go_of_every_buffer);
  tcase_add_test(tc, ring_accepts_queue_while_none_waits);
  tcase_add_test(tc, ring_listener_close_ends_queued_connections);
  tcase_add_test(tc, ring_sends_complete_through_the_ring);
  tcase_add_test(tc, ring_close_ends_what_was_just_posted);
  tcase_add_test(tc, ring_close_keeps_a_queued_send_off_a_new_connection);
  tcase_add_test(tc, ring_loop_shares_the_applications_loop);
  tcase_add_test(tc, ring_loop_stays_with_its_first_thread);
#ifdef ASOCK_FAULT_INJECTION
  tcase_add_test(tc, refused_ring_setup_falls_back);
  tcase_add_test(tc, refused_multishot_bound_goes_one_at_a_time);
  tcase_add_test(tc, refused_multishot_accept_goes_one_at_a_time);
  tcase_add_test(tc, refused_probe_falls_back);
  tcase_add_test(tc, refused_buffer_ring_falls_back);
  tcase_add_test(tc, refused_poll_handle_falls_back);
#endif
#endif
  suite_add_tcase(s, tc);
#ifdef ASOCK_HAVE_URING
  /* 1 KiB slices, 128 of them (8 lent to a ring), a quota of 4. */
  tc = tcase_create("ring-quota");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, setup_ring_quota, tu_teardown);
  tcase_add_test(tc, ring_multishot_stops_at_the_quota);
  tcase_add_test(tc, ring_kept_slices_leave_a_receive_its_slice);
  tcase_add_test(tc, ring_starved_receives_wait_their_turn);
  tcase_add_test(tc, ring_waiting_bytes_let_go_of_the_kernels_buffers);
  suite_add_tcase(s, tc);

  /* 4 KiB slices, 64 of them (4 lent), zeroed on release. */
  tc = tcase_create("ring-zero");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, setup_ring_zero, tu_teardown);
  tcase_add_test(tc, ring_zero_on_release_hides_old_bytes);
  suite_add_tcase(s, tc);
#endif
  return s;
}
