/* asock-soak: a bounded soak of an asock echo server and its clients, in one
 * process on one loop.
 *
 *   asock-soak [--seconds N] [--connections C] [--seed S]
 *
 * C client slots each run one connection after another for N seconds: a
 * header, then a random number of bytes in random-sized sends, the echo read
 * back through on-demand receives, and a random way to end (a graceful close
 * after the whole echo; a half-close, asock_disconnect() as soon as the last
 * byte is sent; a reset, by closing with SO_LINGER 0 or by cancelling a send
 * under way; going quiet until the server's receive times out; cancelled
 * receives; client receives with short deadlines, ending with one that must
 * time out because nothing more may come). Every byte is checked at both
 * ends against the stream's pattern: nothing lost, duplicated or corrupted.
 * At the end every op must have completed exactly once, the pool's slices
 * and ops in use must be back to zero, the open file descriptors back to
 * their count at start, and the resident set must have stayed flat after
 * the warm-up. Prints PASS or FAIL and exits 0 or 1.
 *
 * Linux only: the file descriptors are counted in /proc/self/fd and the
 * resident set read from /proc/self/statm. */
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "soak.h"

const char *const mode_names[M_N] = {"graceful", "half-close", "reset",
                                     "quiet",    "cancel",     "timeout"};

static unsigned char table[TABLE + MAX_CHUNK];
static uint64_t rng_state;
asock_pool *pool;
asock_loop *loop;
static asock_socket *listener;
struct sockaddr_storage srv_addr;
int stopping;
static int failures;
static int outstanding;

uint64_t counts[M_N];
uint64_t bytes_echoed;
uint64_t conns_done;
uint64_t client_timeouts;
uint64_t recv_cancels;
static uint64_t server_timeouts;
static uint64_t server_resets;

void fail(const char *fmt, ...) {
  va_list ap;
  failures++;
  if (failures > 20)
    return;
  va_start(ap, fmt);
  fputs("asock-soak: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

uint64_t next_rand(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

size_t rand_between(size_t lo, size_t hi) {
  return lo + (size_t)(next_rand() % (hi - lo + 1));
}

/* Byte `pos` (counted after the header) of a stream whose offset in the
 * table is `off`, and a window of them. */
const unsigned char *pattern(uint32_t off, uint64_t pos) {
  return table + (off + pos) % TABLE;
}

/* Compares `len` received bytes with the stream from `pos` on. */
int matches(const unsigned char *buf, size_t len, uint32_t off, uint64_t pos) {
  while (len > 0) {
    size_t n = len < MAX_CHUNK ? len : MAX_CHUNK;
    if (memcmp(buf, pattern(off, pos), n) != 0)
      return 0;
    buf += n;
    pos += n;
    len -= n;
  }
  return 1;
}

/* ---- ops, each completing exactly once ------------------------------------
 */

int hop_started(hop *h, int r, const char *what) {
  if (r == ASOCK_PENDING) {
    if (h->pending)
      fail("%s: an op pending twice", what);
    h->pending = 1;
    outstanding++;
  } else if (r < 0 && r != ASOCK_ENOBUFS) {
    fail("%s did not start: %s", what, asock_err_name(r));
  }
  return r;
}

hop *hop_completed(asock_op *op) {
  hop *h = (hop *)asock_op_user_data(op);
  if (!h->pending)
    fail("a completion for an op not pending (%s)",
         asock_err_name(asock_op_status(op)));
  h->pending = 0;
  outstanding--;
  return h;
}

int hop_init(hop *h, void *owner, asock_op_cb cb) {
  memset(h, 0, sizeof(*h));
  h->owner = owner;
  if (asock_op_acquire(pool, &h->op) != 0)
    return -1;
  asock_op_set_callback(h->op, cb);
  asock_op_set_user_data(h->op, h);
  return 0;
}

void hop_release(hop *h) {
  if (h->op == NULL)
    return;
  if (h->pending || asock_op_release(pool, h->op) != 0)
    fail("an op could not be released");
  h->op = NULL;
}

/* ---- the server: an echo that checks what it echoes --------------------- */

typedef struct sconn {
  asock_socket *sock;
  hop h;
  unsigned char hdr[HDR];
  size_t hdr_got;
  int mode;
  uint32_t off;
  uint32_t total;
  uint64_t received; /* bytes after the header */
  struct sconn *next_free;
} sconn;

static sconn *sconns;
static sconn *sconn_free;
static int sconns_live;
static hop accepts[ACCEPTS];

static void sconn_end(sconn *s, int status) {
  /* These clients send every byte and read the whole echo before they
   * close; a half-closing client closes with the echo under way, which
   * Linux answers with a reset when echo bytes are left unread. */
  int full =
      s->mode == M_GRACEFUL || s->mode == M_CANCEL || s->mode == M_TIMEOUT;
  int may_reset = !full && s->mode != M_QUIET;
  if (status == ASOCK_EOF) {
    /* Stopping, clients close wherever they are. */
    if (!stopping && (s->hdr_got < HDR || (full && s->received != s->total)))
      fail("server: EOF after %llu of %u bytes (%s)",
           (unsigned long long)s->received, s->total, mode_names[s->mode]);
  } else if (status == ASOCK_ETIMEDOUT) {
    server_timeouts++;
    if (s->mode != M_QUIET && !stopping)
      fail("server: a %s connection timed out", mode_names[s->mode]);
  } else if (status == ASOCK_ECONNRESET || status == ASOCK_EPIPE) {
    server_resets++;
    if (!may_reset && !stopping)
      fail("server: a %s connection was reset", mode_names[s->mode]);
  } else if (status != ASOCK_ECANCELED) {
    fail("server: %s", asock_err_name(status));
  }
  if (status != ASOCK_ECANCELED)
    asock_socket_close(s->sock, 0);
  hop_release(&s->h);
  s->sock = NULL;
  s->next_free = sconn_free;
  sconn_free = s;
  sconns_live--;
}

/* Checks the bytes a receive brought: the header first, then the pattern. */
static int sconn_check(sconn *s, const unsigned char *p, size_t n) {
  while (n > 0 && s->hdr_got < HDR) {
    s->hdr[s->hdr_got++] = *p++;
    n--;
    if (s->hdr_got == HDR) {
      if (s->hdr[0] != 'A' || s->hdr[1] != 'S' || s->hdr[2] >= M_N) {
        fail("server: a bad header");
        return 0;
      }
      s->mode = s->hdr[2];
      memcpy(&s->off, s->hdr + 4, 4);
      memcpy(&s->total, s->hdr + 8, 4);
    }
  }
  if (n == 0)
    return 1;
  if (s->received + n > s->total || !matches(p, n, s->off, s->received)) {
    fail("server: bytes %llu..%llu of a stream of %u are wrong",
         (unsigned long long)s->received, (unsigned long long)(s->received + n),
         s->total);
    return 0;
  }
  s->received += n;
  return 1;
}

static void sconn_run(sconn *s, int r) {
  asock_op *op = s->h.op;
  for (;;) {
    int status;
    if (r == ASOCK_PENDING)
      return;
    status = r < 0 ? r : asock_op_status(op);
    if (status != 0) {
      sconn_end(s, status);
      return;
    }
    if (asock_op_last_kind(op) == ASOCK_OP_RECEIVE) {
      if (!sconn_check(s, asock_op_data(op), asock_op_bytes(op))) {
        sconn_end(s, ASOCK_ECANCELED);
        asock_socket_close(s->sock, ASOCK_CLOSE_ABORT);
        return;
      }
      r = hop_started(&s->h, asock_send(s->sock, op), "server send");
    } else {
      r = hop_started(&s->h, asock_receive(s->sock, op), "server receive");
    }
  }
}

static void sconn_cb(asock_op *op) {
  hop *h = hop_completed(op);
  sconn_run((sconn *)h->owner, 0);
}

static void adopt(asock_socket *sock) {
  sconn *s = sconn_free;
  if (s == NULL || hop_init(&s->h, s, sconn_cb) != 0) {
    fail("server: no room for a connection");
    asock_socket_close(sock, ASOCK_CLOSE_ABORT);
    return;
  }
  sconn_free = s->next_free;
  s->sock = sock;
  s->hdr_got = 0;
  s->received = 0;
  s->total = 0;
  s->mode = M_GRACEFUL;
  sconns_live++;
  asock_op_set_timeout(s->h.op, SRV_TIMEOUT_MS);
  sconn_run(s, hop_started(&s->h, asock_receive(sock, s->h.op), "receive"));
}

static void accept_run(hop *h, int r) {
  while (r != ASOCK_PENDING && r >= 0) {
    int status = asock_op_status(h->op);
    if (status == 0)
      adopt(asock_op_accepted(h->op));
    else if (status == ASOCK_ECANCELED)
      return;
    else
      fail("accept: %s", asock_err_name(status));
    r = hop_started(h, asock_accept(listener, h->op), "accept");
  }
}

static void accept_cb(asock_op *op) { accept_run(hop_completed(op), 0); }

/* ---- measurements -----------------------------------------------------------
 */

static int count_fds(void) {
  DIR *dir = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;
  if (dir == NULL)
    return -1;
  while ((e = readdir(dir)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(dir);
  return n - 1; /* the directory's own descriptor */
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0;
  long resident = 0;
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2)
    resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

static int all_clients_done(void) {
  int i;
  for (i = 0; i < nclients; i++)
    if (clients[i].live)
      return 0;
  return sconns_live == 0;
}

static void run_until(int (*cond)(void), uint64_t ms) {
  uint64_t deadline = now_ms() + ms;
  while (!cond() && now_ms() < deadline)
    asock_loop_run(loop, UV_RUN_ONCE);
}

static void on_tick(uv_timer_t *t) { (void)t; }

static void usage(void) {
  fprintf(stderr, "usage: asock-soak [--seconds N] [--connections C] "
                  "[--seed S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  unsigned long seconds = 10;
  unsigned long conns = 1000;
  unsigned long long seed = 1;
  asock_pool_config config;
  asock_pool_stats st;
  struct rlimit rl;
  uv_timer_t tick;
  int fds_start;
  int fds_end;
  long rss_base = -1;
  long rss_max = 0;
  long rss_limit;
  uint64_t start;
  uint64_t warm_end;
  uint64_t next_sample;
  uint64_t next_report;
  int len = (int)sizeof(srv_addr);
  int i;

  /* Options come in pairs: a name and its value. */
  for (i = 1; i < argc; i += 2) {
    char *end = NULL;
    unsigned long long v;
    if (i + 1 >= argc)
      usage();
    v = strtoull(argv[i + 1], &end, 10);
    if (end == argv[i + 1] || *end != '\0')
      usage();
    if (strcmp(argv[i], "--seconds") == 0)
      seconds = (unsigned long)v;
    else if (strcmp(argv[i], "--connections") == 0)
      conns = (unsigned long)v;
    else if (strcmp(argv[i], "--seed") == 0)
      seed = v;
    else
      usage();
  }
  if (seconds == 0 || conns == 0 || conns > 100000)
    usage();
  /* Two descriptors per connection (both ends are in this process), and
   * room for the loop's own. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * conns + 64) {
    fprintf(stderr,
            "asock-soak: %lu connections need %lu descriptors; the "
            "limit is %lu\n",
            conns, 2 * conns + 64, (unsigned long)rl.rlim_cur);
    return 2;
  }
  printf("asock-soak: %lu s, %lu connections, seed %llu\n", seconds, conns,
         seed);
  fflush(stdout);
  rng_state = seed * 2654435761u + 88172645463325252ull;
  for (i = 0; i < (int)TABLE; i++)
    table[i] = (unsigned char)(next_rand() >> 24);
  memcpy(table + TABLE, table, MAX_CHUNK);

  /* libuv opens a descriptor or two for the whole process with its first
   * loop and keeps them: they are open before the count starts. */
  {
    uv_loop_t first;
    if (uv_loop_init(&first) == 0)
      uv_loop_close(&first);
  }
  fds_start = count_fds();
  asock_pool_config_init(&config);
  config.slice_size = SLICE;
  config.slice_count = 2 * conns + 256;
  /* A server connection may outlive its client's for a moment, while the
   * client's slot has started the next one: room for two per slot. */
  config.op_count = 4 * conns + ACCEPTS + 16;
  config.socket_quota = QUOTA;
  clients = calloc(conns, sizeof(*clients));
  sconns = calloc(2 * conns, sizeof(*sconns));
  if (clients == NULL || sconns == NULL ||
      asock_pool_create(&pool, &config) != 0 ||
      asock_loop_create(&loop, pool, NULL) != 0) {
    fprintf(stderr, "asock-soak: cannot set up\n");
    return 2;
  }
  for (i = 2 * (int)conns - 1; i >= 0; i--) {
    sconns[i].next_free = sconn_free;
    sconn_free = &sconns[i];
  }
  uv_ip4_addr("127.0.0.1", 0, (struct sockaddr_in *)&srv_addr);
  if (asock_tcp_create(&listener, loop) != 0 ||
      asock_tcp_listen(listener, (struct sockaddr *)&srv_addr,
                       (int)(conns < 4096 ? conns : 4096), 0) != 0 ||
      asock_socket_local_address(listener, (struct sockaddr *)&srv_addr,
                                 &len) != 0) {
    fprintf(stderr, "asock-soak: cannot listen\n");
    return 2;
  }
  for (i = 0; i < ACCEPTS; i++) {
    hop_init(&accepts[i], NULL, accept_cb);
    accept_run(&accepts[i],
               hop_started(&accepts[i], asock_accept(listener, accepts[i].op),
                           "accept"));
  }
  nclients = (int)conns;
  for (i = 0; i < nclients; i++) {
    if (hop_init(&clients[i].c, &clients[i], client_cb) != 0 ||
        hop_init(&clients[i].r, &clients[i], client_cb) != 0) {
      fprintf(stderr, "asock-soak: too few ops\n");
      return 2;
    }
  }
  for (i = 0; i < nclients; i++)
    client_next(&clients[i]);

  /* The timer makes each turn of the loop return to check the clock. */
  uv_timer_init(asock_loop_uv(loop), &tick);
  uv_timer_start(&tick, on_tick, 50, 50);
  start = now_ms();
  /* RSS is compared with its value once the pool, the sockets and the
   * allocator's arenas have reached their working size. */
  warm_end = start + 1000 * (seconds / 5 > 5 ? seconds / 5 : 5);
  if (warm_end > start + 1000 * seconds)
    warm_end = start + 1000 * seconds;
  next_sample = start + 1000;
  next_report = start + 10000;
  while (now_ms() < start + 1000 * seconds && failures == 0) {
    uint64_t t;
    asock_loop_run(loop, UV_RUN_ONCE);
    t = now_ms();
    if (t >= next_sample) {
      long rss = rss_kib();
      next_sample += 1000;
      if (t >= warm_end && rss_base < 0)
        rss_base = rss;
      if (rss > rss_max && rss_base >= 0)
        rss_max = rss;
    }
    if (t >= next_report) {
      next_report += 10000;
      printf("  %3llus: %llu connections, %llu MiB echoed, RSS %ld KiB\n",
             (unsigned long long)(t - start) / 1000,
             (unsigned long long)conns_done,
             (unsigned long long)(bytes_echoed >> 20), rss_kib());
      fflush(stdout);
    }
  }

  /* Stop: every client resets, the server's side ends, the listener
   * closes and its accepts end canceled. */
  stopping = 1;
  for (i = 0; i < nclients; i++) {
    client *cl = &clients[i];
    uint64_t waited = (uv_hrtime() - cl->waiting_since) / 1000000u;
    if (!cl->live)
      continue;
    /* A deadline that never fired: a quiet client the server did not cut
     * off, a last receive that did not time out. */
    if (cl->mode == M_QUIET && cl->sending_done &&
        waited > SRV_TIMEOUT_MS + 10000)
      fail("a quiet connection still open after %llu ms",
           (unsigned long long)waited);
    if (cl->final_probe && waited > 10000)
      fail("a receive with a 30 ms deadline still pending after %llu ms",
           (unsigned long long)waited);
    client_close(cl, ASOCK_CLOSE_ABORT);
  }
  /* Long enough a run must have seen every way to end, every deadline
   * and every cancel. */
  if (seconds >= 10) {
    for (i = 0; i < M_N; i++)
      if (counts[i] == 0)
        fail("no %s connection ended", mode_names[i]);
    if (server_timeouts == 0 || client_timeouts == 0 || recv_cancels == 0)
      fail("no server timeout, client timeout or cancel was seen");
  }
  for (i = 0; i < nclients; i++)
    client_maybe_done(&clients[i]);
  run_until(all_clients_done, 30000);
  if (!all_clients_done())
    fail("%d server connections never ended", sconns_live);
  asock_socket_close(listener, 0);
  uv_close((uv_handle_t *)&tick, NULL);
  {
    uint64_t deadline = now_ms() + 30000;
    while (outstanding > 0 && now_ms() < deadline)
      asock_loop_run(loop, UV_RUN_NOWAIT);
  }
  if (outstanding != 0)
    fail("%d ops never completed", outstanding);
  if (asock_loop_close(loop) != 0)
    fail("asock_loop_close failed");
  if (outstanding != 0)
    fail("%d ops completed only when the loop closed", outstanding);
  for (i = 0; i < ACCEPTS; i++)
    hop_release(&accepts[i]);
  for (i = 0; i < nclients; i++) {
    hop_release(&clients[i].c);
    hop_release(&clients[i].r);
  }
  asock_pool_stats_get(pool, &st);
  if (st.slices_in_use != 0 || st.ops_in_use != 0)
    fail("%zu slices and %zu ops still in use", st.slices_in_use,
         st.ops_in_use);
  if (asock_pool_destroy(pool) != 0)
    fail("asock_pool_destroy failed");
  fds_end = count_fds();
  if (fds_end != fds_start)
    fail("%d file descriptors open at the end, %d at the start", fds_end,
         fds_start);
  /* Flat: within 4 MiB or 5% of the size after the warm-up, whichever is
   * more. */
  rss_limit = rss_base / 20 > 4096 ? rss_base / 20 : 4096;
  if (rss_base >= 0 && rss_max - rss_base > rss_limit)
    fail("RSS grew from %ld KiB to %ld KiB after the warm-up", rss_base,
         rss_max);

  printf("asock-soak: %llu connections in %lu s, %llu MiB echoed\n",
         (unsigned long long)conns_done, seconds,
         (unsigned long long)(bytes_echoed >> 20));
  printf("  ");
  for (i = 0; i < M_N; i++)
    printf("%s %llu%s", mode_names[i], (unsigned long long)counts[i],
           i + 1 < M_N ? ", " : "\n");
  printf("  client receive timeouts %llu, receive cancels %llu, server "
         "timeouts %llu, server resets %llu\n",
         (unsigned long long)client_timeouts, (unsigned long long)recv_cancels,
         (unsigned long long)server_timeouts,
         (unsigned long long)server_resets);
  printf("  pool: slices high water %zu of %zu; descriptors %d -> %d; RSS "
         "after warm-up %ld KiB, at most %ld KiB\n",
         st.slices_high_water, st.slices_total, fds_start, fds_end, rss_base,
         rss_max);
  free(clients);
  free(sconns);
  if (failures > 0) {
    printf("asock-soak: FAIL (%d problems, seed %llu)\n", failures, seed);
    return 1;
  }
  printf("asock-soak: PASS\n");
  return 0;
}
