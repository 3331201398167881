/* TCP over loopback, back-pressure: an exhausted pool makes receives wait,
 * the per-socket quota, ASOCK_POOL_FAIL_FAST, waiting receives that hold
 * no slice, the send watermarks and hard cap, and a listener out of
 * descriptors. Each test shapes its own pool. */
#include <stdlib.h>
#include <string.h>

#include "tcp-util.h"

#ifndef _WIN32
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

static asock_pool_stats stats(void) {
  asock_pool_stats st;
  ck_assert_asock(asock_pool_stats_get(tu_pool, &st), 0);
  return st;
}

#define EXHAUST_PAIRS 4

/* A receive completed, in its call or later, with len bytes of connection
 * `conn`'s pattern. */
static void assert_received(asock_op *op, uint32_t conn, size_t len) {
  ck_assert_asock(asock_op_status(op), 0);
  ck_assert_uint_eq(asock_op_bytes(op), len);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(op), len, conn, 0), len);
}

START_TEST(pool_exhaustion_makes_receives_wait) {
  tu_pair p[EXHAUST_PAIRS];
  asock_op *op[EXHAUST_PAIRS];
  unsigned char out[100];
  int early[EXHAUST_PAIRS];
  int i, done = 0;
  tu_setup_pool(1024, 2, 0, 0);
  tu_pair_open(&p[0], "127.0.0.1");
  for (i = 1; i < EXHAUST_PAIRS; i++)
    tu_pair_connect(&p[i], p[0].listener, &p[0].addr);
  for (i = 0; i < EXHAUST_PAIRS; i++) {
    op[i] = tu_op();
    ck_assert_asock(tu_receive(p[i].server, op[i]), ASOCK_PENDING);
  }
  for (i = 0; i < EXHAUST_PAIRS; i++) {
    tu_fill(out, sizeof(out), (uint32_t)i, 0);
    tu_send_all(p[i].client, out, sizeof(out));
  }
  ck_assert(tu_wait_count(&tu_completions, 2));
  tu_run_for(100);
  /* Two slices, two completions; the other two wait, not fail. */
  ck_assert_int_eq(tu_completions, 2);
  ck_assert_uint_eq(stats().slices_in_use, 2);
  for (i = 0; i < EXHAUST_PAIRS; i++) {
    early[i] = tu_rec(op[i])->calls == 1;
    if (!early[i]) {
      ck_assert_int_eq(asock_op_is_pending(op[i]), 1);
      continue;
    }
    assert_received(op[i], (uint32_t)i, sizeof(out));
    done++;
  }
  ck_assert_int_eq(done, 2);
  /* Releasing the slices lets the others complete. */
  for (i = 0; i < EXHAUST_PAIRS; i++)
    if (early[i])
      ck_assert_asock(asock_op_clear_buffer(op[i]), 0);
  ck_assert(tu_wait_count(&tu_completions, 4));
  for (i = 0; i < EXHAUST_PAIRS; i++) {
    ck_assert_int_eq(tu_rec(op[i])->calls, 1);
    if (early[i])
      continue;
    assert_received(op[i], (uint32_t)i, sizeof(out));
  }
  ck_assert_uint_eq(stats().slices_high_water, 2);
  for (i = 0; i < EXHAUST_PAIRS; i++)
    ck_assert_asock(asock_op_clear_buffer(op[i]), 0);
  ck_assert_uint_eq(stats().slices_in_use, 0);
}
END_TEST

START_TEST(socket_quota_is_enforced) {
  static unsigned char out[4096];
  tu_pair p;
  asock_op *r[4];
  int i;
  tu_setup_pool(1024, 16, 2, 0);
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 4; i++)
    r[i] = tu_op();
  tu_fill(out, sizeof(out), 1, 0);
  tu_send_all(p.client, out, sizeof(out));
  tu_run_for(30);
  /* The bytes are there: the first two complete at once, a slice each. */
  ck_assert_asock(tu_receive(p.server, r[0]), 0);
  ck_assert_uint_eq(asock_op_bytes(r[0]), 1024);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  ck_assert_asock(tu_receive(p.server, r[1]), 0);
  ck_assert_uint_eq(asock_op_bytes(r[1]), 1024);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  /* The third would be one too many for this socket, though the pool has
   * fourteen free: it waits. */
  ck_assert_asock(tu_receive(p.server, r[2]), ASOCK_PENDING);
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(r[2])->calls, 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  ck_assert_uint_eq(stats().slices_in_use, 2);
  ck_assert_asock(asock_op_clear_buffer(r[0]), 0);
  ck_assert(tu_wait_calls(r[2], 1));
  ck_assert_asock(tu_rec(r[2])->status, 0);
  ck_assert_uint_eq(tu_rec(r[2])->bytes, 1024);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  ck_assert_asock(tu_receive(p.server, r[3]), ASOCK_PENDING);
  tu_run_for(30);
  ck_assert_int_eq(tu_rec(r[3])->calls, 0);
  ck_assert_asock(asock_op_clear_buffer(r[1]), 0);
  ck_assert(tu_wait_calls(r[3], 1));
  ck_assert_uint_eq(tu_rec(r[3])->bytes, 1024);
  ck_assert_uint_le(asock_socket_slices_held(p.server), 2);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(r[2]), 1024, 1, 2048), 1024);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(r[3]), 1024, 1, 3072), 1024);
  ck_assert_asock(asock_op_clear_buffer(r[2]), 0);
  ck_assert_asock(asock_op_clear_buffer(r[3]), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
}
END_TEST

START_TEST(socket_quota_holds_for_pending_receives) {
  static unsigned char out[4096];
  tu_pair p;
  asock_op *r[3];
  int i;
  tu_setup_pool(1024, 16, 2, 0);
  tu_pair_open(&p, "127.0.0.1");
  for (i = 0; i < 3; i++) {
    r[i] = tu_op();
    ck_assert_asock(tu_receive(p.server, r[i]), ASOCK_PENDING);
  }
  tu_fill(out, sizeof(out), 2, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_calls(r[1], 1));
  tu_run_for(50);
  ck_assert_int_eq(tu_rec(r[0])->calls, 1);
  ck_assert_int_eq(tu_rec(r[2])->calls, 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 2);
  ck_assert_asock(asock_op_clear_buffer(r[1]), 0);
  ck_assert(tu_wait_calls(r[2], 1));
  for (i = 0; i < 3; i++) {
    ck_assert_asock(tu_rec(r[i])->status, 0);
    ck_assert_uint_eq(tu_rec(r[i])->bytes, 1024);
  }
  ck_assert_uint_eq(tu_mismatch(asock_op_data(r[0]), 1024, 2, 0), 1024);
  ck_assert_uint_eq(tu_mismatch(asock_op_data(r[2]), 1024, 2, 2048), 1024);
}
END_TEST

START_TEST(fail_fast_gives_enobufs) {
  tu_pair a, b;
  asock_op *ra, *rb, *own;
  static char mine[8];
  tu_setup_pool(1024, 1, 0, ASOCK_POOL_FAIL_FAST);
  ra = tu_op();
  rb = tu_op();
  own = tu_op();
  tu_pair_open(&a, "127.0.0.1");
  tu_pair_connect(&b, a.listener, &a.addr);
  tu_send_all(a.client, "aaaa", 4);
  tu_send_all(b.client, "bbbb", 4);
  tu_run_for(30);
  ck_assert_asock(tu_receive(a.server, ra), 0);
  ck_assert_uint_eq(asock_op_bytes(ra), 4);
  ck_assert_int_eq(memcmp(asock_op_data(ra), "aaaa", 4), 0);
  /* The only slice is held: no waiting with this flag. */
  ck_assert_asock(tu_receive(b.server, rb), ASOCK_ENOBUFS);
  ck_assert_int_eq(asock_op_is_pending(rb), 0);
  /* A receive into the op's own memory needs no slice. */
  tu_send_all(a.client, "cc", 2);
  tu_run_for(20);
  tu_set_buffer(own, mine, sizeof(mine));
  ck_assert_asock(tu_receive(a.server, own), 0);
  ck_assert_uint_eq(asock_op_bytes(own), 2);
  ck_assert_int_eq(memcmp(mine, "cc", 2), 0);
  tu_run_for(30);
  ck_assert_int_eq(tu_completions, 0);
  /* With the slice back, the refused receive works. */
  ck_assert_asock(asock_op_clear_buffer(ra), 0);
  ck_assert_asock(tu_receive(b.server, rb), 0);
  ck_assert_uint_eq(asock_op_bytes(rb), 4);
  ck_assert_int_eq(memcmp(asock_op_data(rb), "bbbb", 4), 0);
  ck_assert_asock(asock_op_clear_buffer(rb), 0);
}
END_TEST

/* ---- slices kept by waiting receives ------------------------------------ */

/* The slice receive_and_wait_again() received into last. */
static void *last_slice;

/* Receives `len` bytes of stream `conn` on pair p with op (no buffer of its
 * own), then posts the op again, so that it waits. */
static void receive_and_wait_again(tu_pair *p, asock_op *op, uint32_t conn,
                                   size_t len) {
  unsigned char out[64];
  int calls = tu_rec(op)->calls;
  int r;
  ck_assert_uint_le(len, sizeof(out));
  tu_fill(out, len, conn, 0);
  r = tu_receive(p->server, op);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  tu_send_all(p->client, out, len);
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(op, calls + 1));
  assert_received(op, conn, len);
  last_slice = asock_op_data(op);
  ck_assert_asock(tu_receive(p->server, op), ASOCK_PENDING);
}

/* A receive that waits gives its slice back at once, and the data that
 * comes next goes into the same slice again: the loop's cache hands the
 * slice given back last to the next taker. */
START_TEST(waiting_receive_holds_no_slice) {
  tu_pair p;
  asock_op *op;
  void *slice;
  unsigned char out[7];
  tu_setup_pool(1024, 32, 0, 0);
  op = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  receive_and_wait_again(&p, op, 1, 10);
  ck_assert_uint_eq(stats().slices_in_use, 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ck_assert_int_eq(asock_op_buffer_mode(op), ASOCK_BUFFER_NONE);
  ck_assert_ptr_null(asock_op_data(op));
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  slice = last_slice;
  tu_fill(out, sizeof(out), 2, 0);
  tu_send_all(p.client, out, sizeof(out));
  ck_assert(tu_wait_calls(op, 2));
  assert_received(op, 2, sizeof(out));
  ck_assert_ptr_eq(asock_op_data(op), slice);
  ck_assert_uint_eq(stats().slices_high_water, 1);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
}
END_TEST

/* A receive cancelled, or closed with its socket, while it waits completes
 * holding nothing, and nothing is charged to its socket. */
START_TEST(cancelled_receive_holds_no_slice) {
  tu_pair p, q;
  asock_op *a, *b;
  tu_setup_pool(1024, 32, 0, 0);
  a = tu_op();
  b = tu_op();
  tu_pair_open(&p, "127.0.0.1");
  tu_pair_connect(&q, p.listener, &p.addr);
  receive_and_wait_again(&p, a, 4, 8);
  receive_and_wait_again(&q, b, 5, 8);
  ck_assert_uint_eq(stats().slices_in_use, 0);
  ck_assert_asock(tu_cancel(a), 0);
  ck_assert(tu_wait_calls(a, 2));
  ck_assert_asock(tu_rec(a)->status, ASOCK_ECANCELED);
  ck_assert_int_eq(asock_op_buffer_mode(a), ASOCK_BUFFER_NONE);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  ck_assert_asock(tu_close(q.server, 0), 0);
  ck_assert(tu_wait_calls(b, 2));
  ck_assert_asock(tu_rec(b)->status, ASOCK_ECANCELED);
  ck_assert_int_eq(asock_op_buffer_mode(b), ASOCK_BUFFER_NONE);
  ck_assert_uint_eq(stats().slices_in_use, 0);
}
END_TEST

/* ---- send back-pressure -------------------------------------------------- */

static int events[16];
static asock_socket *event_sock[16];
static int nevents;
static int events_inside_call;

static void on_watermark(asock_socket *sock, int above) {
  if (tu_inside_call())
    events_inside_call++;
  if (nevents < 16) {
    event_sock[nevents] = sock;
    events[nevents] = above;
  }
  nevents++;
}

#define CHUNK (32u << 10)
#define CHUNKS 64

static unsigned char stream_out[CHUNKS * CHUNK];
static unsigned char stream_in[CHUNKS * CHUNK];

/* Sends CHUNK-sized pieces of stream_out from *sent on until the queue
 * reaches `until`; returns the number of sends started. */
static int fill_queue(asock_socket *sock, asock_op **ops, size_t *sent,
                      size_t until) {
  int n = 0;
  while (asock_socket_send_queued(sock) < until) {
    int r;
    ck_assert_uint_lt(*sent + CHUNK, sizeof(stream_out) + 1);
    ck_assert_asock(asock_op_set_buffer(ops[n], stream_out, sizeof(stream_out),
                                        *sent, CHUNK),
                    0);
    r = tu_send(sock, ops[n]);
    ck_assert_msg(r == 0 || r == ASOCK_PENDING, "send: %s", asock_err_name(r));
    *sent += CHUNK;
    n++;
  }
  return n;
}

static void wait_sends(asock_op **ops, int n) {
  int i;
  for (i = 0; i < n; i++) {
    ck_assert(tu_wait_idle(ops[i]));
    ck_assert_asock(asock_op_status(ops[i]), 0);
    ck_assert_uint_eq(asock_op_bytes(ops[i]), CHUNK);
  }
}

START_TEST(send_watermarks_fire_high_then_low) {
  tu_pair p;
  asock_op *ops[CHUNKS];
  size_t sent = 0, read = 0;
  int i, n;
  tu_setup_pool(4096, 16, 0, 0);
  for (i = 0; i < CHUNKS; i++)
    ops[i] = tu_op();
  nevents = 0;
  tu_fill(stream_out, sizeof(stream_out), 12, 0);
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  ck_assert_asock(
      asock_socket_set_send_limits(p.client, 32u << 10, 128u << 10, 0), 0);
  ck_assert_asock(asock_socket_set_watermark_cb(p.client, on_watermark), 0);

  for (i = 0; i < 2; i++) {
    n = fill_queue(p.client, ops, &sent, 128u << 10);
    ck_assert_uint_ge(asock_socket_send_queued(p.client), 128u << 10);
    /* Told from the loop, not from inside asock_send(). */
    ck_assert_int_eq(nevents, 2 * i);
    tu_run_for(30);
    ck_assert_int_eq(nevents, 2 * i + 1);
    ck_assert_int_eq(events[2 * i], 1);
    ck_assert_ptr_eq(event_sock[2 * i], p.client);
    /* The peer reads everything: the queue falls through low once. */
    tu_recv_exact(p.server, stream_in + read, sent - read);
    ck_assert_uint_eq(tu_mismatch(stream_in + read, sent - read, 12, read),
                      sent - read);
    read = sent;
    wait_sends(ops, n);
    ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
    tu_run_for(20);
    ck_assert_int_eq(nevents, 2 * i + 2);
    ck_assert_int_eq(events[2 * i + 1], 0);
    ck_assert_ptr_eq(event_sock[2 * i + 1], p.client);
  }
  ck_assert_int_eq(events_inside_call, 0);
}
END_TEST

START_TEST(send_cap_returns_enobufs) {
  static unsigned char junk[CHUNK];
  static unsigned char single[1 << 20], single_in[1 << 20];
  tu_pair p;
  asock_op *ops[CHUNKS], *refused, *d;
  size_t sent = 0, queued, got;
  size_t cap = 256u << 10;
  int n = 0, r;
  tu_setup_pool(4096, 16, 0, 0);
  for (r = 0; r < CHUNKS; r++)
    ops[r] = tu_op();
  refused = tu_op();
  d = tu_op();
  tu_fill(stream_out, sizeof(stream_out), 13, 0);
  memset(junk, 0xEE, sizeof(junk));
  tu_pair_open(&p, "127.0.0.1");
  tu_shrink_buffers(p.client, p.server);
  ck_assert_asock(
      asock_socket_set_send_limits(p.client, 16u << 10, 64u << 10, cap), 0);
  /* Fill up to the cap with whole chunks. */
  while (asock_socket_send_queued(p.client) + CHUNK <= cap) {
    ck_assert_int_lt(n, CHUNKS - 1);
    ck_assert_asock(asock_op_set_buffer(ops[n], stream_out, sizeof(stream_out),
                                        sent, CHUNK),
                    0);
    r = tu_send(p.client, ops[n]);
    ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
    sent += CHUNK;
    n++;
  }
  queued = asock_socket_send_queued(p.client);
  ck_assert_uint_gt(queued, 0);
  /* One more chunk would pass the cap. */
  tu_set_buffer(refused, junk, sizeof(junk));
  ck_assert_asock(tu_send(p.client, refused), ASOCK_ENOBUFS);
  ck_assert_int_eq(asock_op_is_pending(refused), 0);
  ck_assert_uint_eq(asock_socket_send_queued(p.client), queued);
  /* What still fits is taken, exactly up to the cap. */
  if (queued < cap) {
    ck_assert_asock(asock_op_set_buffer(ops[n], stream_out, sizeof(stream_out),
                                        sent, cap - queued),
                    0);
    ck_assert_asock(tu_send(p.client, ops[n]), ASOCK_PENDING);
    sent += cap - queued;
    n++;
  }
  ck_assert_uint_eq(asock_socket_send_queued(p.client), cap);
  ck_assert_asock(asock_op_set_buffer(refused, junk, sizeof(junk), 0, 1), 0);
  ck_assert_asock(tu_send(p.client, refused), ASOCK_ENOBUFS);
  /* Drain: the accepted bytes arrive, in order, and nothing of the refused
   * ones. */
  tu_recv_exact(p.server, stream_in, sent);
  ck_assert_uint_eq(tu_mismatch(stream_in, sent, 13, 0), sent);
  for (r = 0; r < n; r++) {
    ck_assert(tu_wait_idle(ops[r]));
    ck_assert_asock(asock_op_status(ops[r]), 0);
  }
  ck_assert_uint_eq(asock_socket_send_queued(p.client), 0);
  /* A send into an empty queue is allowed whatever its size. */
  tu_fill(single, sizeof(single), 13, sent);
  tu_set_buffer(refused, single, sizeof(single));
  r = tu_send(p.client, refused);
  ck_assert_msg(r == 0 || r == ASOCK_PENDING, "%s", asock_err_name(r));
  tu_recv_exact(p.server, single_in, sizeof(single_in));
  ck_assert_uint_eq(tu_mismatch(single_in, sizeof(single_in), 13, sent),
                    sizeof(single_in));
  if (r == ASOCK_PENDING)
    ck_assert(tu_wait_calls(refused, 1));
  ck_assert_asock(asock_op_status(refused), 0);
  ck_assert_uint_eq(asock_op_bytes(refused), sizeof(single));
  ck_assert_asock(tu_disconnect(p.client, d), ASOCK_PENDING);
  ck_assert_asock(tu_recv_to_end(p.server, 13, sent + sizeof(single), 0, &got),
                  ASOCK_EOF);
  ck_assert_uint_eq(got, 0);
  ck_assert(tu_wait_calls(d, 1));
  ck_assert_asock(tu_close(p.client, 0), 0);
}
END_TEST

#ifndef _WIN32
/* An application's accept loop: posts again after every failure. */
static int accept_errors;
static int accept_status;
static asock_socket *accepted;

static void accept_again(asock_op *op) {
  asock_socket *listener = asock_op_socket(op);
  tu_note(op);
  for (;;) {
    int r;
    if (asock_op_status(op) == 0) {
      accepted = asock_op_accepted(op);
      return;
    }
    accept_errors++;
    accept_status = asock_op_status(op);
    r = tu_accept(listener, op);
    if (r != 0)
      return;
  }
}

/* valgrind keeps a descriptor limit of its own: the kernel's accept()
 * takes the connection and valgrind closes the descriptor over its limit,
 * so the connection does not wait in the backlog as it does natively. */
static int under_valgrind(void) {
  const char *preload = getenv("LD_PRELOAD");
  return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

static int accepted_set(const void *arg) {
  (void)arg;
  return accepted != NULL;
}

#define MAX_FILLERS 4096

/* Out of descriptors: the first waiting accept hears ASOCK_EMFILE, and the
 * listener pauses rather than failing, on every loop iteration, the accept
 * its application posts again at once; the connection waits in the backlog
 * and is accepted, whole, once descriptors are free. */
START_TEST(accept_out_of_descriptors_pauses) {
  struct sockaddr_storage addr;
  asock_socket *listener;
  asock_op *op;
  struct rlimit old_limit;
  struct rlimit limit;
  int fillers[MAX_FILLERS];
  int nfill = 0;
  int client;
  int i;
  uint64_t start;
  uint64_t elapsed_ms;
  unsigned char out[64];
  unsigned char in[64];

  if (under_valgrind())
    return;
  tu_setup();
  listener = tu_listen("127.0.0.1", &addr);
  /* A connection the kernel completes into the listener's backlog. */
  client = socket(AF_INET, SOCK_STREAM, 0);
  ck_assert_int_ge(client, 0);
  ck_assert_int_eq(
      connect(client, (struct sockaddr *)&addr, sizeof(struct sockaddr_in)), 0);

  ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old_limit), 0);
  limit = old_limit;
  limit.rlim_cur = 256;
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &limit), 0);
  while (nfill < MAX_FILLERS) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0)
      break;
    fillers[nfill++] = fd;
  }
  if (nfill == MAX_FILLERS) {
    /* The limit did not hold: nothing to test. */
    for (i = 0; i < nfill; i++)
      close(fillers[i]);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
    close(client);
    ck_assert_asock(tu_close(listener, 0), 0);
    return;
  }

  op = tu_op();
  asock_op_set_callback(op, accept_again);
  /* The try inside the call cannot take the connection: it waits. */
  ck_assert_asock(tu_accept(listener, op), ASOCK_PENDING);
  ck_assert(tu_wait_count(&accept_errors, 1));
  ck_assert_asock(accept_status, ASOCK_EMFILE);
  /* Posted again from the callback, the accept waits: the listener
   * reports the error at most once per pause, not once per iteration. */
  start = uv_hrtime();
  tu_run_for(50);
  elapsed_ms = (uv_hrtime() - start) / 1000000;
  ck_assert_int_le(accept_errors,
                   2 + (int)(elapsed_ms / ASOCK_ACCEPT_PAUSE_MS));
  ck_assert_int_eq(asock_op_is_pending(op), 1);
  ck_assert_ptr_null(accepted);

  /* Descriptors come free: the connection is accepted when the pause
   * ends, and it is the one that waited. */
  for (i = 0; i < nfill; i++)
    close(fillers[i]);
  ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old_limit), 0);
  ck_assert(tu_run_until(accepted_set, NULL, 10000));
  tu_fill(out, sizeof(out), 21, 0);
  ck_assert_int_eq(write(client, out, sizeof(out)), (int)sizeof(out));
  tu_recv_exact(accepted, in, sizeof(in));
  ck_assert_int_eq(memcmp(in, out, sizeof(out)), 0);
  close(client);
  ck_assert_asock(tu_close(accepted, 0), 0);
  ck_assert_asock(tu_close(listener, 0), 0);
}
END_TEST
#endif

Suite *asock_test_suite_tcp_pressure(void) {
  Suite *s = suite_create("tcp_pressure");
  TCase *tc = tcase_create("tcp_pressure");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  /* Each test creates its own pool shape; the teardown is shared. */
  tcase_add_checked_fixture(tc, NULL, tu_teardown);
  tcase_add_test(tc, pool_exhaustion_makes_receives_wait);
  tcase_add_test(tc, socket_quota_is_enforced);
  tcase_add_test(tc, socket_quota_holds_for_pending_receives);
  tcase_add_test(tc, fail_fast_gives_enobufs);
  tcase_add_test(tc, waiting_receive_holds_no_slice);
  tcase_add_test(tc, cancelled_receive_holds_no_slice);
  tcase_add_test(tc, send_watermarks_fire_high_then_low);
  tcase_add_test(tc, send_cap_returns_enobufs);
#ifndef _WIN32
  tcase_add_test(tc, accept_out_of_descriptors_pauses);
#endif
  suite_add_tcase(s, tc);
  return s;
}
