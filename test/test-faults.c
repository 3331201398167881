/* The fault injection sweep (builds with ASOCK_FAULT_INJECTION only). Real
 * scenarios (an echo over several TCP connections, a connect by host name,
 * a UDP exchange, loop groups, an echo served by multishot receives, a
 * multishot receive-from, a relay that passes taken slices on, sends of
 * packets with a file range) run once with every injection point
 * counting, then again for each point and each k with the k-th call of
 * that point failing. Every run happens in a child process of its own, so
 * that a crash or a hang is reported with the scenario, point and k that
 * caused it; and every run must leave asock as the contract says: each op
 * that returned ASOCK_PENDING completed exactly once, with 0 or a known
 * asock error code; the pool back to no slice and no op in use; the loop
 * closed by asock_loop_close(); nothing left allocated (the counting
 * allocator here; AddressSanitizer's leak check or valgrind on the child).
 *
 * A scenario never waits without a bound: the loop runs until the scenario
 * is done, or nothing completed for a while (a failed call may leave an
 * operation waiting for an event that will not come; closing its socket
 * must still complete it), or a hard limit passes.
 *
 * ASOCK_FAULT_SWEEP=quick (the valgrind stage sets it) tries fewer k per
 * point. ASOCK_FAULT_JOBS (2 unless set) cases run at once, each in its
 * own child; their reports come in the sweep's order. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault-run.h"

/* ---- the sweep, in the parent ------------------------------------------ */

typedef struct fx_scenario {
  const char *name;
  void (*run)(void);
  /* Points the scenario must reach when nothing fails, so that the sweep
   * is known to cover them. */
  asock__fault_point reaches[24];
  /* The pool's socket quota (0: none). */
  size_t quota;
} fx_scenario;

#define P(name) ASOCK__FAULT_##name
#define END ASOCK__FAULT_COUNT

static const fx_scenario scenarios[] = {
    {"echo",
     scenario_echo,
     {P(ALLOC),       P(REGION),
      P(SOCKET),      P(BIND),
      P(LISTEN),      P(ACCEPT),
      P(CONNECT),     P(RECV),
      P(SEND),        P(SHUTDOWN),
      P(CLOSE),       P(SETSOCKOPT),
      P(GETSOCKOPT),  P(GETSOCKNAME),
      P(GETPEERNAME), P(POLL_INIT),
      P(POLL_START),  P(TIMER_START),
      P(IDLE_START),  P(ASYNC_INIT),
      P(LOOP_INIT),   END},
     0},
    {"bulk",
     scenario_bulk,
     {P(SENDMSG), P(RECV), P(SEND), P(SETSOCKOPT), P(GETSOCKOPT), P(POLL_START),
      P(TIMER_START), END},
     0},
    {"connect_host",
     scenario_connect_host,
     {P(GETADDRINFO), P(CONNECT), P(RECV), P(SEND), P(SHUTDOWN), END},
     0},
    {"udp",
     scenario_udp,
     {P(SOCKET), P(BIND), P(CONNECT), P(RECVFROM), P(RECVMMSG), P(SENDTO),
      P(SENDMSG), P(SETSOCKOPT), P(GETSOCKNAME), P(POLL_START), END},
     0},
    {"group",
     scenario_group_balanced,
     {P(THREAD_CREATE), P(MUTEX_INIT), P(COND_INIT), P(ASYNC_INIT),
      P(ASYNC_SEND), P(LOOP_INIT), P(ACCEPT), END},
     0},
    {"group_handoff",
     scenario_group_handoff,
     {P(THREAD_CREATE), P(ASYNC_SEND), P(ACCEPT), END},
     0},
    /* Taken slices hold a socket that reaches its quota: the timer wakes
     * it when one is given back. */
    {"multishot",
     scenario_multishot,
     {P(ACCEPT), P(CONNECT), P(RECV), P(SEND), P(SHUTDOWN), P(SETSOCKOPT),
      P(POLL_START), P(TIMER_START), END},
     4},
    {"udp_multishot",
     scenario_udp_multishot,
     {P(SOCKET), P(BIND), P(SENDTO), P(GETSOCKNAME), END},
     0},
    {"relay",
     scenario_relay,
     {P(ACCEPT), P(CONNECT), P(RECV), P(SEND), P(SHUTDOWN), P(SETSOCKOPT),
      P(POLL_START), P(TIMER_START), END},
     4},
    /* The file range goes by sendfile(); failing it with EINVAL takes the
     * reading path, through uv_fs_read on the thread pool. */
    {"packets",
     scenario_packets,
     {P(ACCEPT), P(CONNECT), P(RECV), P(SEND), P(SENDFILE), P(POLL_START), END},
     0},
};

/* The errors injected: what each call could really fail with. The receive
 * and send calls also fail with EINTR (to be retried unseen) and EAGAIN
 * (a readiness report that was wrong). */
typedef struct fx_fault {
  asock__fault_point point;
  int err;
} fx_fault;

static const fx_fault faults[] = {
    {P(ALLOC), UV_ENOMEM},          {P(REGION), UV_ENOMEM},
    {P(SOCKET), UV_EMFILE},         {P(BIND), UV_EADDRINUSE},
    {P(LISTEN), UV_EADDRINUSE},     {P(ACCEPT), UV_EMFILE},
    {P(ACCEPT), UV_ECONNABORTED},   {P(CONNECT), UV_ECONNREFUSED},
    {P(RECV), UV_ECONNRESET},       {P(RECV), UV_EINTR},
    {P(RECV), UV_EAGAIN},           {P(RECVFROM), UV_ECONNREFUSED},
    {P(RECVFROM), UV_EINTR},        {P(RECVMSG), UV_ECONNREFUSED},
    {P(RECVMMSG), UV_ECONNREFUSED}, {P(RECVMMSG), UV_EAGAIN},
    {P(SEND), UV_ECONNRESET},       {P(SEND), UV_EINTR},
    {P(SEND), UV_EAGAIN},           {P(SENDTO), UV_ENETUNREACH},
    {P(SENDTO), UV_EAGAIN},         {P(SENDMSG), UV_EPIPE},
    {P(SHUTDOWN), UV_ENOTCONN},     {P(CLOSE), UV_EIO},
    {P(SETSOCKOPT), UV_EINVAL},     {P(GETSOCKOPT), UV_EINVAL},
    {P(GETSOCKNAME), UV_EINVAL},    {P(GETPEERNAME), UV_ENOTCONN},
    {P(POLL_INIT), UV_EBADF},       {P(POLL_START), UV_EBADF},
    {P(TIMER_START), UV_EINVAL},    {P(IDLE_START), UV_EINVAL},
    {P(ASYNC_INIT), UV_EMFILE},     {P(ASYNC_SEND), UV_EINVAL},
    {P(GETADDRINFO), UV_ENOMEM},    {P(LOOP_INIT), UV_EMFILE},
    {P(THREAD_CREATE), UV_EAGAIN},  {P(MUTEX_INIT), UV_ENOMEM},
    {P(COND_INIT), UV_ENOMEM},      {P(SENDFILE), UV_EINVAL},
    {P(SENDFILE), UV_EIO},          {P(SENDFILE), UV_EAGAIN},
    {P(SENDFILE), UV_EINTR},        {P(FS_READ), UV_EIO},
};

/* The descriptors the process has open. */
static int open_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* What a child reports. */
typedef struct fx_result {
  int written;
  int complete;
  int fired;
  int stalls;
  uint64_t calls[ASOCK__FAULT_COUNT];
  char failure[400];
} fx_result;

static void child_run(const fx_scenario *sc, const fx_fault *f, uint64_t k,
                      int out) {
  fx_result res;
  int fds = open_fds();
  int i;

  /* check's handler would take the whole process group with it. */
  signal(SIGALRM, SIG_DFL);
  alarm((unsigned int)(tu_ms(30000) / 1000));
  fx_reset();
  fx.quota = sc->quota;
  fx_scenarios_reset();
  asock__fault_reset();
  if (f != NULL)
    asock__fault_arm(f->point, k, f->err);
  fx.faulty = f != NULL;
  if (fx_begin() == 0)
    sc->run();
  fx_end();
  if (open_fds() != fds)
    fx_fail("%d descriptor(s) open before the run, %d after", fds, open_fds());

  memset(&res, 0, sizeof(res));
  res.written = 1;
  res.complete = fx.complete;
  res.stalls = fx.stalls;
  res.fired = f != NULL && asock__fault_fired(f->point);
  for (i = 0; i < ASOCK__FAULT_COUNT; i++)
    res.calls[i] = asock__fault_calls((asock__fault_point)i);
  memcpy(res.failure, fx.failure, sizeof(res.failure));
  if (write(out, &res, sizeof(res)) != (ssize_t)sizeof(res))
    _exit(3);
  close(out);
  /* exit(), not _exit(): AddressSanitizer checks for leaks at exit. */
  exit(0);
}

/* A case running in its child. */
typedef struct fx_child {
  const fx_fault *f;
  uint64_t k;
  pid_t pid;
  int fd; /* the read end of the child's report */
} fx_child;

/* Starts one case in a child. */
static void start_case(const fx_scenario *sc, const fx_fault *f, uint64_t k,
                       fx_child *c) {
  int fds[2];

  ck_assert_int_eq(pipe(fds), 0);
  fflush(stdout);
  fflush(stderr);
  c->f = f;
  c->k = k;
  c->pid = fork();
  ck_assert_int_ge(c->pid, 0);
  if (c->pid == 0) {
    close(fds[0]);
    child_run(sc, f, k, fds[1]);
  }
  close(fds[1]);
  c->fd = fds[0];
}

/* Waits for a case started by start_case(): 0 and *res, or -1 with why in
 * msg. */
static int finish_case(fx_child *c, fx_result *res, char *msg, size_t msg_len) {
  pid_t pid = c->pid;
  int status;
  size_t got = 0;

  memset(res, 0, sizeof(*res));
  while (got < sizeof(*res)) {
    ssize_t n = read(c->fd, (char *)res + got, sizeof(*res) - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  close(c->fd);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (WIFSIGNALED(status)) {
    snprintf(msg, msg_len, "%s (signal %d)",
             WTERMSIG(status) == SIGALRM ? "hung"
             : WTERMSIG(status) == SIGABRT
                 ? "aborted; a sanitizer's report may be above"
                 : "crashed",
             WTERMSIG(status));
    return -1;
  }
  if (got != sizeof(*res) || !res->written) {
    snprintf(msg, msg_len, "exited with status %d without a report",
             WEXITSTATUS(status));
    return -1;
  }
  if (WEXITSTATUS(status) != 0) {
    snprintf(msg, msg_len,
             "exited with status %d (a sanitizer's report is above)",
             WEXITSTATUS(status));
    return -1;
  }
  if (res->failure[0] != '\0') {
    snprintf(msg, msg_len, "%s", res->failure);
    return -1;
  }
  return 0;
}

static int quick_sweep(void) {
  const char *env = getenv("ASOCK_FAULT_SWEEP");
  return env != NULL && strcmp(env, "quick") == 0;
}

/* The k to try for a point called n times: every k up to a cap, then a
 * sample, always the last. Returns the next k after k, 0 when done. */
static uint64_t next_k(uint64_t k, uint64_t n) {
  uint64_t all = quick_sweep() ? 3 : 20;
  uint64_t step;

  if (k >= n)
    return 0;
  if (k < all)
    return k + 1;
  step = (n - all) / (quick_sweep() ? 2 : 6);
  if (step < 1)
    step = 1;
  return k + step < n ? k + step : n;
}

/* Runs one case in a child and waits for it. */
static int run_case(const fx_scenario *sc, const fx_fault *f, uint64_t k,
                    fx_result *res, char *msg, size_t msg_len) {
  fx_child c;
  start_case(sc, f, k, &c);
  return finish_case(&c, res, msg, msg_len);
}

/* The cases that run at once: ASOCK_FAULT_JOBS, else 2 (each case is a
 * process that mostly waits on its loop; the runs are independent). */
static unsigned int sweep_jobs(void) {
  const char *env = getenv("ASOCK_FAULT_JOBS");
  unsigned long n = env != NULL ? strtoul(env, NULL, 10) : 2;
  if (n < 1)
    n = 1;
  if (n > 16)
    n = 16;
  return (unsigned int)n;
}

/* ASOCK_FAULT_CASE=point:k (say "send:1") runs only that case. */
/* Points the readiness backend reaches in every scenario that lists them,
 * and the io_uring backend may not: its connect reports without
 * getsockopt(SO_ERROR), and its receives wait for a provided slice, not on
 * the loop's timer. On that backend (ASOCK_BACKEND=io_uring, the second
 * pass of scripts/test-all) they are not required. */
static int not_on_ring(asock__fault_point p) {
  const char *b = getenv("ASOCK_BACKEND");
  return b != NULL && strcmp(b, "io_uring") == 0 &&
         (p == ASOCK__FAULT_GETSOCKOPT || p == ASOCK__FAULT_TIMER_START);
}

static int case_selected(const fx_fault *f, uint64_t k) {
  const char *only = getenv("ASOCK_FAULT_CASE");
  const char *colon;
  size_t len;

  if (only == NULL)
    return 1;
  colon = strchr(only, ':');
  len = colon != NULL ? (size_t)(colon - only) : strlen(only);
  if (strlen(asock__fault_name(f->point)) != len ||
      strncmp(only, asock__fault_name(f->point), len) != 0)
    return 0;
  return colon == NULL || strtoull(colon + 1, NULL, 10) == k;
}

static void sweep(const fx_scenario *sc) {
  const char *only = getenv("ASOCK_FAULT_SCENARIO");
  uv_loop_t uv;
  fx_result base;
  fx_result res;
  char msg[512];
  char first[700] = "";
  int failures = 0;
  unsigned long cases = 0;
  unsigned long fired = 0;
  unsigned long completed = 0;
  unsigned long stalled = 0;
  uint64_t next[sizeof(faults) / sizeof(faults[0])];
  fx_child kids[16];
  unsigned int jobs = sweep_jobs();
  unsigned int head = 0, running = 0;
  size_t i;

  memset(next, 0, sizeof(next));
  if (only != NULL && strcmp(only, sc->name) != 0)
    return;
  /* libuv opens a pipe for its signal handling with the first loop of a
   * process and keeps it: made here, it is open before every run. */
  ck_assert_int_eq(uv_loop_init(&uv), 0);
  ck_assert_int_eq(uv_loop_close(&uv), 0);

  /* The counting run: nothing fails, and the scenario must work. */
  if (run_case(sc, NULL, 0, &base, msg, sizeof(msg)) != 0)
    ck_abort_msg("scenario %s, no fault: %s", sc->name, msg);
  ck_assert_msg(base.complete, "scenario %s did not complete without faults",
                sc->name);
  if (getenv("ASOCK_FAULT_VERBOSE") != NULL)
    for (i = 0; i < ASOCK__FAULT_COUNT; i++)
      printf("faults: %s: %s called %llu times\n", sc->name,
             asock__fault_name((asock__fault_point)i),
             (unsigned long long)base.calls[i]);
  for (i = 0; sc->reaches[i] != END; i++)
    ck_assert_msg(base.calls[sc->reaches[i]] > 0 || not_on_ring(sc->reaches[i]),
                  "scenario %s never reached point %s", sc->name,
                  asock__fault_name(sc->reaches[i]));

  /* Every case, up to `jobs` children at once, reported in order. */
  for (i = 0; i < sizeof(faults) / sizeof(faults[0]) || running > 0;) {
    fx_child *c;
    const fx_fault *f;
    uint64_t k;

    if (i < sizeof(faults) / sizeof(faults[0]) && running < jobs) {
      f = &faults[i];
      k = next_k(next[i], base.calls[f->point]);
      if (k == 0) {
        i++;
        continue;
      }
      next[i] = k;
      if (case_selected(f, k)) {
        start_case(sc, f, k, &kids[(head + running) % jobs]);
        running++;
        cases++;
      }
      continue;
    }
    c = &kids[head];
    head = (head + 1) % jobs;
    running--;
    f = c->f;
    k = c->k;
    if (finish_case(c, &res, msg, sizeof(msg)) == 0) {
      if (getenv("ASOCK_FAULT_VERBOSE") != NULL)
        printf("faults: %s %s %s k=%llu: %s%s%s\n", sc->name,
               asock__fault_name(f->point), asock_err_name(f->err),
               (unsigned long long)k, res.fired ? "fired" : "not reached",
               res.complete ? ", completed" : "",
               res.stalls ? ", stalled" : "");
      fired += res.fired != 0;
      completed += res.complete != 0;
      stalled += res.stalls != 0;
      continue;
    }
    failures++;
    fprintf(stderr,
            "faults: scenario %s, point %s failing with %s, k=%llu "
            "of %llu: %s\n",
            sc->name, asock__fault_name(f->point), asock_err_name(f->err),
            (unsigned long long)k, (unsigned long long)base.calls[f->point],
            msg);
    if (first[0] == '\0')
      snprintf(
          first, sizeof(first), "point %s failing with %s, k=%llu of %llu: %s",
          asock__fault_name(f->point), asock_err_name(f->err),
          (unsigned long long)k, (unsigned long long)base.calls[f->point], msg);
  }
  printf("faults: scenario %s: %lu cases (%lu fired, %lu still completed, "
         "%lu stalled), %d failed\n",
         sc->name, cases, fired, completed, stalled, failures);
  ck_assert_msg(failures == 0, "scenario %s: %d of %lu cases failed; first: %s",
                sc->name, failures, cases, first);
}

START_TEST(injection_reaches_the_calls) {
  asock_pool *pool = NULL;
  asock_pool_config cfg;
  asock_loop *loop = NULL;
  asock_socket *sock;
  struct sockaddr_storage addr;

  /* A failure armed for the first call comes back as the call's own. */
  asock_pool_config_init(&cfg);
  cfg.slice_count = 4;
  cfg.op_count = 4;
  asock__fault_reset();
  asock__fault_arm(ASOCK__FAULT_ALLOC, 1, UV_ENOMEM);
  ck_assert_asock(asock_pool_create(&pool, &cfg), ASOCK_ENOMEM);
  ck_assert(asock__fault_fired(ASOCK__FAULT_ALLOC));
  asock__fault_arm(ASOCK__FAULT_REGION, asock__fault_calls(P(REGION)) + 1,
                   UV_ENOMEM);
  ck_assert_asock(asock_pool_create(&pool, &cfg), ASOCK_ENOMEM);
  ck_assert_asock(asock_pool_create(&pool, &cfg), 0);
  ck_assert_asock(asock_loop_create(&loop, pool, NULL), 0);
  ck_assert_asock(asock_tcp_create(&sock, loop), 0);
  asock__fault_arm(ASOCK__FAULT_SOCKET, asock__fault_calls(P(SOCKET)) + 1,
                   UV_EMFILE);
  tu_addr("127.0.0.1", 0, &addr);
  ck_assert_asock(asock_tcp_listen(sock, (struct sockaddr *)&addr, 4, 0),
                  ASOCK_EMFILE);
  /* Disarmed once fired: the next call is the real one. */
  ck_assert_asock(asock_tcp_listen(sock, (struct sockaddr *)&addr, 4, 0), 0);
  ck_assert_uint_eq(asock__fault_calls(P(SOCKET)), 2);
  ck_assert_asock(asock_socket_close(sock, 0), 0);
  ck_assert_asock(asock_loop_close(loop), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  asock__fault_reset();
}
END_TEST

/* What the multishot receive of refused_timer_is_asked_again saw: each
 * delivery's slice is taken and seen. */
static struct {
  int deliveries;
  int finals;
  size_t bytes;
  void *slices[4];
  int nslices;
} seen;

static void take_each(asock_op *op) {
  void *slice;
  size_t off;
  size_t len;

  if (!asock_op_more(op)) {
    seen.finals++;
    return;
  }
  ck_assert_int_lt(seen.nslices, 4);
  ck_assert_asock(asock_op_detach_slice(op, &slice, &off, &len), 0);
  ck_assert_uint_eq(len, asock_op_bytes(op));
  ck_assert_uint_eq(
      tu_mismatch((unsigned char *)slice + off, len, 21, seen.bytes), len);
  seen.bytes += len;
  seen.slices[seen.nslices++] = slice;
  seen.deliveries++;
}

static int timer_refused(const void *arg) {
  (void)arg;
  return asock__fault_fired(ASOCK__FAULT_TIMER_START);
}

/* A socket at its quota of taken slices reads again at the loop's tick
 * after one is given back. When libuv refuses the timer for that tick, the
 * timer is asked for again at the loop's next change (here an op with a
 * deadline), and the socket then reads on, with nothing lost. */
START_TEST(refused_timer_is_asked_again) {
  tu_pair p;
  asock_op *op;
  asock_op *other;
  unsigned char out[300];
  int i;

  asock__fault_reset();
  memset(&seen, 0, sizeof(seen));
  tu_setup_pool(1024, 8, 1, 0);
  tu_pair_open(&p, "127.0.0.1");
  op = tu_op();
  ck_assert_asock(asock_op_set_callback(op, take_each), 0);
  ck_assert_asock(asock_op_set_multishot(op, 1), 0);
  ck_assert_asock(tu_receive(p.server, op), ASOCK_PENDING);
  tu_fill(out, sizeof(out), 21, 0);
  tu_send_all(p.client, out, 100);
  ck_assert(tu_wait_count(&seen.deliveries, 1));
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 1);
  /* The next bytes find the socket at its quota: it stops reading, and
   * the timer that would wake it is refused. */
  asock__fault_arm(ASOCK__FAULT_TIMER_START,
                   asock__fault_calls(P(TIMER_START)) + 1, UV_EINVAL);
  tu_send_all(p.client, out + 100, 200);
  ck_assert(tu_run_until(timer_refused, NULL, 10000));
  ck_assert_int_eq(seen.deliveries, 1);
  ck_assert_asock(asock_pool_release(tu_pool, seen.slices[0]), 0);
  ck_assert_uint_eq(asock_socket_slices_held(p.server), 0);
  other = tu_op();
  ck_assert_asock(asock_op_set_timeout(other, tu_ms(10000)), 0);
  ck_assert_asock(tu_receive(p.client, other), ASOCK_PENDING);
  ck_assert(tu_wait_count(&seen.deliveries, 2));
  ck_assert_uint_eq(seen.bytes, sizeof(out));
  ck_assert_int_eq(seen.finals, 0);
  ck_assert_asock(tu_close(p.server, 0), 0);
  ck_assert(tu_wait_count(&seen.finals, 1));
  ck_assert_asock(asock_op_status(op), ASOCK_ECANCELED);
  for (i = 1; i < seen.nslices; i++)
    ck_assert_asock(asock_pool_release(tu_pool, seen.slices[i]), 0);
  ck_assert_asock(tu_close(p.client, 0), 0);
  ck_assert(tu_wait_idle(other));
  tu_teardown();
  asock__fault_reset();
}
END_TEST

START_TEST(sweep_scenario) { sweep(&scenarios[_i]); }
END_TEST

Suite *asock_test_suite_faults(void) {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("sweep");
  TCase *kept = tcase_create("kept");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, injection_reaches_the_calls);
  tcase_add_loop_test(tc, sweep_scenario, 0,
                      (int)(sizeof(scenarios) / sizeof(scenarios[0])));
  suite_add_tcase(s, tc);
  tcase_set_timeout(kept, ASOCK_TEST_TIMEOUT);
  tcase_add_test(kept, refused_timer_is_asked_again);
  suite_add_tcase(s, kept);
  return s;
}
