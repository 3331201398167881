/* guide-multishot: a multishot receive, and slices taken out of it and
 * handed to a worker thread; section 5 of docs/guide.md quotes it.
 *
 * The first connection's receive is started once, after its first bytes
 * are already there (nothing may be delivered inside the start), delivers
 * three pieces with the numbers 1, 2, 3 and ends with ASOCK_EOF, number 4.
 * The second connection's deliveries go to a worker thread in their own
 * slices. The worker holds them until main() lets it go on: the socket,
 * at its quota of four slices, stops reading meanwhile; then the worker
 * checks and releases them from its own thread, the socket reads on, and
 * every byte must arrive, in order, with no slice left held. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SLICE_SIZE 1024
#define QUOTA 4
#define BULK (8 * SLICE_SIZE)

typedef struct conn {
  unsigned char got[BULK];
  size_t len;
  uint64_t seqs[16];
  int deliveries;
  int ended;
  int status;
  uint64_t end_seq;
} conn;

/* A worker thread and the slices handed to it, under one lock. */
typedef struct job {
  void *slice;
  size_t off;
  size_t len;
} job;

static struct {
  uv_mutex_t lock;
  uv_cond_t wake;
  job jobs[16];
  int njobs;
  int go;   /* main() lets the worker handle its jobs */
  int stop; /* and end */
  unsigned char got[BULK];
  size_t len; /* bytes handled */
} work;

static asock_pool *pool;
static asock_socket *listener;
static asock_socket *accepted[2];
static int naccepted;
static conn first, second;

static void on_accept(asock_op *op) {
  do {
    if (asock_op_status(op) != 0)
      return;
    CHECK(naccepted < 2);
    accepted[naccepted++] = asock_op_accepted(op);
  } while (asock_accept(listener, op) == 0);
}

static void consume(const void *data, size_t len, uint64_t seq) {
  CHECK(first.len + len <= sizeof(first.got));
  CHECK(first.deliveries < 16);
  memcpy(first.got + first.len, data, len);
  first.len += len;
  first.seqs[first.deliveries++] = seq;
}

static void finish(asock_op *rx) {
  conn *c = asock_op_user_data(rx);
  c->ended = 1;
  c->status = asock_op_status(rx);
  c->end_seq = asock_op_seq(rx);
}

static void on_data(asock_op *rx) {
  if (asock_op_more(rx)) { /* a delivery: rx is still pending */
    consume(asock_op_data(rx), asock_op_bytes(rx), asock_op_seq(rx));
    return; /* the slice goes back to the loop's cache */
  }
  /* The final completion: rx is idle, and its status says why. */
  finish(rx);
}

/* The connection's one receive, started once. */
static int start_receive(asock_socket *sock, asock_op *rx) {
  asock_op_set_multishot(rx, 1);
  asock_op_set_callback(rx, on_data);
  return asock_receive(sock, rx); /* ASOCK_PENDING, or an error */
}

static void hand_to_worker(void *slice, size_t off, size_t len) {
  second.deliveries++; /* the loop's thread: no lock needed */
  uv_mutex_lock(&work.lock);
  CHECK(work.njobs < 16);
  work.jobs[work.njobs].slice = slice;
  work.jobs[work.njobs].off = off;
  work.jobs[work.njobs].len = len;
  work.njobs++;
  uv_cond_signal(&work.wake);
  uv_mutex_unlock(&work.lock);
}

/* A delivery whose bytes a worker thread handles: the slice is taken out of
 * the op and goes with them, so that nothing is copied. */
static void on_data_for_worker(asock_op *rx) {
  void *slice;
  size_t off, len;

  if (!asock_op_more(rx)) {
    finish(rx);
    return;
  }
  asock_op_detach_slice(rx, &slice, &off, &len); /* data: slice + off */
  hand_to_worker(slice, off, len);
}

static void worker(void *arg) {
  (void)arg;
  uv_mutex_lock(&work.lock);
  for (;;) {
    job j;
    while (!work.stop && (!work.go || work.njobs == 0))
      uv_cond_wait(&work.wake, &work.lock);
    if (work.njobs == 0)
      break; /* stopped */
    j = work.jobs[0];
    memmove(work.jobs, work.jobs + 1, --work.njobs * sizeof(job));
    CHECK(work.len + j.len <= sizeof(work.got));
    memcpy(work.got + work.len, (char *)j.slice + j.off, j.len);
    work.len += j.len;
    asock_pool_release(pool, j.slice); /* any thread */
  }
  uv_mutex_unlock(&work.lock);
}

static int accepted_count(void *n) { return naccepted >= *(int *)n; }
static int first_has(void *n) { return first.len >= *(size_t *)n; }
static int ended(void *c) { return ((conn *)c)->ended; }
static int held(void *n) {
  return asock_socket_slices_held(accepted[1]) >= *(size_t *)n;
}
static int worker_has(void *n) {
  size_t len;
  uv_mutex_lock(&work.lock);
  len = work.len;
  uv_mutex_unlock(&work.lock);
  return len >= *(size_t *)n;
}

static void stream(asock_loop *loop, int port) {
  static const char *pieces[3] = {"early", "second", "third"};
  unsigned char sent[64];
  hx_client client;
  asock_op *rx;
  size_t len = 0;
  int want = 1, i;

  hx_client_create(&client, loop);
  hx_client_connect(&client, port);
  hx_run_until(loop, accepted_count, &want, "the first accept");
  CHECK_INT(asock_op_acquire(pool, &rx), 0);
  asock_op_set_user_data(rx, &first);
  for (i = 0; i < 3; i++) {
    size_t n = strlen(pieces[i]);
    hx_client_send(&client, pieces[i], n);
    memcpy(sent + len, pieces[i], n);
    len += n;
    if (i == 0) {
      /* Its bytes are there: still nothing runs inside the start. */
      CHECK_INT(start_receive(accepted[0], rx), ASOCK_PENDING);
      CHECK_INT(first.deliveries, 0);
    }
    hx_run_until(loop, first_has, &len, "a delivery");
  }
  hx_client_shutdown(&client);
  hx_run_until(loop, ended, &first, "the final completion");
  CHECK_INT(first.status, ASOCK_EOF);
  CHECK_INT(first.len, len);
  CHECK_MEM(first.got, sent, len);
  for (i = 0; i < first.deliveries; i++)
    CHECK_INT(first.seqs[i], i + 1);
  CHECK_INT(first.end_seq, first.deliveries + 1);
  CHECK_INT(first.deliveries, 3);
  CHECK_INT(asock_op_release(pool, rx), 0);
  CHECK_INT(asock_socket_close(accepted[0], 0), 0);
  hx_client_close(&client);
}

static void to_worker(asock_loop *loop, int port) {
  static unsigned char bulk[BULK];
  hx_client client;
  uv_thread_t thread;
  asock_op *rx;
  size_t quota = QUOTA, all = BULK, i;
  int want = 2;

  for (i = 0; i < BULK; i++)
    bulk[i] = (unsigned char)(i * 13 + i / 1000);
  CHECK_INT(uv_mutex_init(&work.lock), 0);
  CHECK_INT(uv_cond_init(&work.wake), 0);
  CHECK_INT(uv_thread_create(&thread, worker, NULL), 0);

  hx_client_create(&client, loop);
  hx_client_connect(&client, port);
  hx_run_until(loop, accepted_count, &want, "the second accept");
  CHECK_INT(asock_op_acquire(pool, &rx), 0);
  asock_op_set_user_data(rx, &second);
  asock_op_set_multishot(rx, 1);
  asock_op_set_callback(rx, on_data_for_worker);
  CHECK_INT(asock_receive(accepted[1], rx), ASOCK_PENDING);
  hx_client_send(&client, bulk, BULK);

  /* The worker waits: the socket stops reading at its quota. */
  hx_run_until(loop, held, &quota, "the socket's quota");
  CHECK_INT(asock_socket_slices_held(accepted[1]), QUOTA);
  CHECK_INT(second.deliveries, QUOTA);

  uv_mutex_lock(&work.lock);
  work.go = 1;
  uv_cond_signal(&work.wake);
  uv_mutex_unlock(&work.lock);
  hx_run_until(loop, worker_has, &all, "the worker's bytes");
  hx_client_shutdown(&client);
  hx_run_until(loop, ended, &second, "the final completion");
  CHECK_INT(second.status, ASOCK_EOF);

  uv_mutex_lock(&work.lock);
  work.stop = 1;
  uv_cond_signal(&work.wake);
  uv_mutex_unlock(&work.lock);
  CHECK_INT(uv_thread_join(&thread), 0);
  CHECK_INT(work.len, BULK);
  CHECK_MEM(work.got, bulk, BULK);
  CHECK_INT(asock_socket_slices_held(accepted[1]), 0);
  printf("guide-multishot: %d deliveries to the worker, at most %d slices "
         "held\n",
         second.deliveries, QUOTA);
  CHECK_INT(asock_op_release(pool, rx), 0);
  CHECK_INT(asock_socket_close(accepted[1], 0), 0);
  hx_client_close(&client);
  uv_cond_destroy(&work.wake);
  uv_mutex_destroy(&work.lock);
}

int main(void) {
  asock_pool_config cfg;
  asock_loop *loop;
  asock_op *accept;
  struct sockaddr_in addr = hx_loopback(0);
  int port;

  asock_pool_config_init(&cfg);
  cfg.slice_size = SLICE_SIZE;
  cfg.slice_count = 64;
  cfg.op_count = 16;
  cfg.socket_quota = QUOTA;
  CHECK_INT(asock_pool_create(&pool, &cfg), 0);
  CHECK_INT(asock_loop_create(&loop, pool, NULL), 0);
  hx_deadline_start(loop, 60000);
  CHECK_INT(asock_tcp_create(&listener, loop), 0);
  CHECK_INT(asock_tcp_listen(listener, (struct sockaddr *)&addr, 16, 0), 0);
  port = hx_local_port(listener);
  CHECK_INT(asock_op_acquire(pool, &accept), 0);
  asock_op_set_callback(accept, on_accept);
  CHECK_INT(asock_accept(listener, accept), ASOCK_PENDING);

  stream(loop, port);
  to_worker(loop, port);

  CHECK_INT(asock_socket_close(listener, 0), 0);
  hx_run_until(loop, hx_op_idle, accept, "the accept's cancellation");
  CHECK_INT(asock_op_release(pool, accept), 0);
  hx_check_pool_quiet(pool, 0);
  hx_deadline_stop();
  CHECK_INT(asock_loop_close(loop), 0);
  CHECK_INT(asock_pool_destroy(pool), 0);
  return 0;
}
