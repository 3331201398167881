/* asock-bench: a closed-loop load generator for echo servers. It keeps a
 * fixed number of messages in flight on each connection, checks every byte
 * that comes back, and reports messages per second and latency percentiles
 * in the manner of wrk. Runs on libuv alone, so it can be pointed at any
 * echo server, asock's or not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "bench-run.h"
#include "bench-util.h"

/* UDP payloads above this do not fit an IPv4 datagram. */
#define MAX_UDP_SIZE 65507
#define MAX_SIZE (16u << 20)
#define MAX_DEPTH 256
#define MAX_CONNECTIONS 1000000

static void usage(FILE *out) {
  fprintf(out,
          "usage: asock-bench --host ADDR --port N [options]\n"
          "Loads an echo server and reports messages/s and latency.\n"
          "  --host ADDR         server address (127.0.0.1)\n"
          "  --port N            server port (required)\n"
          "  --connections C     concurrent connections (1)\n"
          "  --size BYTES        bytes per message (64)\n"
          "  --depth D           messages in flight per connection (1)\n"
          "  --seconds S         length of the measurement (10)\n"
          "  --warmup S          load before measuring, not counted (0)\n"
          "  --udp               send datagrams instead (SIZE 16..%d)\n"
          "  --timeout S         UDP: a message not echoed by then is lost "
          "(1)\n"
          "  --churn             connect, echo one message, close, repeat\n"
          "  --reset             churn: close with RST instead of FIN\n"
          "  --json              print one JSON object instead of text\n"
          "  --histogram FILE    write the latency distribution to FILE\n"
          "                      (HdrHistogram's .hgrm format; - for "
          "stdout)\n"
          "  --progress          a progress line each second (default: "
          "when\n"
          "                      stderr is a terminal)\n"
          "Exit status: 0 if every message came back intact, 1 on any "
          "error or\n"
          "if nothing came back, 2 on bad usage.\n",
          MAX_UDP_SIZE);
}

static void parse(int argc, char **argv, bench_config *cfg) {
  const char *v;
  int i, have_port = 0;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (bench_opt_value(argc, argv, &i, "--host", &v)) {
      cfg->host = v;
    } else if (bench_opt_value(argc, argv, &i, "--port", &v)) {
      cfg->port = (unsigned int)bench_parse_u64("--port", v, 1, 65535);
      have_port = 1;
    } else if (bench_opt_value(argc, argv, &i, "--connections", &v)) {
      cfg->connections =
          (unsigned int)bench_parse_u64("--connections", v, 1, MAX_CONNECTIONS);
    } else if (bench_opt_value(argc, argv, &i, "--size", &v)) {
      cfg->size = (size_t)bench_parse_u64("--size", v, 1, MAX_SIZE);
    } else if (bench_opt_value(argc, argv, &i, "--depth", &v)) {
      cfg->depth = (unsigned int)bench_parse_u64("--depth", v, 1, MAX_DEPTH);
    } else if (bench_opt_value(argc, argv, &i, "--seconds", &v)) {
      cfg->seconds = bench_parse_seconds("--seconds", v, 0.001, 86400);
    } else if (bench_opt_value(argc, argv, &i, "--warmup", &v)) {
      cfg->warmup = bench_parse_seconds("--warmup", v, 0, 3600);
    } else if (bench_opt_value(argc, argv, &i, "--timeout", &v)) {
      cfg->timeout = bench_parse_seconds("--timeout", v, 0.001, 60);
    } else if (strcmp(argv[i], "--udp") == 0) {
      cfg->mode = BENCH_UDP;
    } else if (strcmp(argv[i], "--churn") == 0) {
      cfg->mode = BENCH_CHURN;
    } else if (strcmp(argv[i], "--reset") == 0) {
      cfg->reset = 1;
    } else if (bench_opt_value(argc, argv, &i, "--histogram", &v)) {
      cfg->histogram = v;
    } else if (strcmp(argv[i], "--json") == 0) {
      cfg->json = 1;
    } else if (strcmp(argv[i], "--progress") == 0) {
      cfg->progress = 1;
    } else {
      fprintf(stderr, "asock-bench: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      exit(2);
    }
  }
  if (!have_port) {
    fprintf(stderr, "asock-bench: --port is required\n");
    usage(stderr);
    exit(2);
  }
  /* --udp and --churn each set the mode; both together make no sense. */
  for (i = 1; i < argc; i++)
    if (strcmp(argv[i], "--udp") == 0 && cfg->mode == BENCH_CHURN) {
      fprintf(stderr, "asock-bench: --udp and --churn exclude each other\n");
      exit(2);
    }
  if (cfg->mode == BENCH_UDP &&
      (cfg->size < BENCH_HEADER_SIZE || cfg->size > MAX_UDP_SIZE)) {
    fprintf(stderr, "asock-bench: --udp needs --size from %d to %d\n",
            BENCH_HEADER_SIZE, MAX_UDP_SIZE);
    exit(2);
  }
  if (cfg->reset && cfg->mode != BENCH_CHURN) {
    fprintf(stderr, "asock-bench: --reset applies to --churn only\n");
    exit(2);
  }
}

static const char *mode_name(bench_mode mode) {
  return mode == BENCH_TCP ? "tcp" : mode == BENCH_CHURN ? "churn" : "udp";
}

static void print_latency(char *out, size_t n, double ns) {
  if (ns < 1e6)
    snprintf(out, n, "%.2fus", ns / 1e3);
  else if (ns < 1e9)
    snprintf(out, n, "%.2fms", ns / 1e6);
  else
    snprintf(out, n, "%.2fs", ns / 1e9);
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s != '\0'; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", (unsigned int)(unsigned char)*s);
    else
      putchar(*s);
  }
  putchar('"');
}

static void report(const bench_run *r, const bench_config *cfg) {
  static const double pcts[] = {50, 90, 99, 99.9, 100};
  static const char *const names[] = {"p50", "p90", "p99", "p999", "max"};
  double secs = (double)(r->measure_end - r->measure_start) / 1e9;
  double rate = secs > 0 ? (double)r->messages / secs : 0;
  double mbs = rate * (double)cfg->size / 1e6;
  char cell[32];
  unsigned int i;

  if (cfg->json) {
    printf("{\"mode\":\"%s\",\"host\":", mode_name(cfg->mode));
    print_json_string(cfg->host);
    printf(",\"port\":%u,\"connections\":%u,\"connected\":%llu,"
           "\"connect_s\":%.3f,\"size\":%lu,\"depth\":%u,"
           "\"duration_s\":%.3f,"
           "\"messages\":%llu,\"messages_per_s\":%.1f,"
           "\"throughput_mb_s\":%.3f",
           cfg->port, cfg->connections, (unsigned long long)r->connected,
           (double)r->connect_time / 1e9, (unsigned long)cfg->size, cfg->depth,
           secs, (unsigned long long)r->messages, rate, mbs);
    if (cfg->mode == BENCH_CHURN)
      printf(",\"connections_per_s\":%.1f", rate);
    else
      printf(",\"connections_per_s\":null");
    for (i = 0; i < 5; i++)
      printf(",\"latency_%s_us\":%.3f", names[i],
             (double)bench_hist_percentile(&r->hist, pcts[i]) / 1e3);
    printf(",\"latency_mean_us\":%.3f", bench_hist_mean(&r->hist) / 1e3);
    printf(",\"errors\":%llu,\"connect_errors\":%llu,\"verify_errors\":%llu,"
           "\"socket_errors\":%llu,\"unanswered\":%llu,\"lost\":%llu,"
           "\"late\":%llu,\"interrupted\":%s}\n",
           (unsigned long long)bench_run_errors(r),
           (unsigned long long)r->connect_errors,
           (unsigned long long)r->verify_errors,
           (unsigned long long)r->socket_errors,
           (unsigned long long)r->unanswered, (unsigned long long)r->lost,
           (unsigned long long)r->late, r->interrupted ? "true" : "false");
    return;
  }

  printf("%s test @ %s port %u for %.2fs%s\n", mode_name(cfg->mode), cfg->host,
         cfg->port, secs, r->interrupted ? " (interrupted)" : "");
  if (cfg->mode == BENCH_CHURN)
    printf("  %u concurrent connections, %lu-byte messages, one per "
           "connection%s\n",
           cfg->connections, (unsigned long)cfg->size,
           cfg->reset ? ", closed with RST" : "");
  else
    printf("  %llu of %u connections open (in %.2fs), %lu-byte messages, "
           "depth %u\n",
           (unsigned long long)r->connected, cfg->connections,
           (double)r->connect_time / 1e9, (unsigned long)cfg->size, cfg->depth);
  printf("  Latency %10s %10s %10s %10s %10s %10s\n", "p50", "p90", "p99",
         "p99.9", "max", "mean");
  printf("          ");
  for (i = 0; i < 5; i++) {
    print_latency(cell, sizeof(cell),
                  (double)bench_hist_percentile(&r->hist, pcts[i]));
    printf(" %10s", cell);
  }
  print_latency(cell, sizeof(cell), bench_hist_mean(&r->hist));
  printf(" %10s\n", cell);
  printf("  %llu messages in %.2fs, %.2f MB echoed\n",
         (unsigned long long)r->messages, secs,
         (double)r->messages * (double)cfg->size / 1e6);
  if (cfg->mode == BENCH_CHURN)
    printf("Connections/sec: %12.1f\n", rate);
  printf("Messages/sec:    %12.1f\n", rate);
  printf("Throughput:      %12.2f MB/s\n", mbs);
  if (cfg->mode == BENCH_UDP)
    printf("Lost:            %12llu (late echoes %llu)\n",
           (unsigned long long)r->lost, (unsigned long long)r->late);
  printf("Errors:          %12llu", (unsigned long long)bench_run_errors(r));
  if (bench_run_errors(r) > 0)
    printf(" (connect %llu, verify %llu, socket %llu, unanswered %llu)",
           (unsigned long long)r->connect_errors,
           (unsigned long long)r->verify_errors,
           (unsigned long long)r->socket_errors,
           (unsigned long long)r->unanswered);
  printf("\n");
}

/* The latency distribution, to a file or (for "-") after the report. */
static int write_histogram(const bench_run *r, const char *path) {
  FILE *out = strcmp(path, "-") == 0 ? stdout : fopen(path, "w");
  int err;

  if (out == NULL) {
    fprintf(stderr, "asock-bench: cannot write %s\n", path);
    return -1;
  }
  err = bench_hist_write(&r->hist, out);
  if (out == stdout)
    err |= fflush(out);
  else
    err |= fclose(out);
  if (err != 0)
    fprintf(stderr, "asock-bench: writing %s failed\n", path);
  return err != 0 ? -1 : 0;
}

int main(int argc, char **argv) {
  bench_config cfg = {"127.0.0.1", 0,         1, 64, 1, 10.0, 0.0,
                      1.0,         BENCH_TCP, 0, 0,  0, NULL};
  static bench_run run; /* holds the histogram: too big for some stacks */
  uint64_t limit;

  bench_progname = "asock-bench";
  cfg.progress = uv_guess_handle(2) == UV_TTY;
  parse(argc, argv, &cfg);
  /* Every connection is a descriptor, plus a few for the loop itself. */
  if (bench_raise_fd_limit((uint64_t)cfg.connections + 32, &limit) != 0) {
    fprintf(stderr,
            "asock-bench: %u connections need about %u open files; the "
            "limit is %llu (ulimit -n)\n",
            cfg.connections, cfg.connections + 32, (unsigned long long)limit);
    return 2;
  }
  if (bench_run_execute(&run, &cfg) != 0)
    return 1;
  report(&run, &cfg);
  fflush(stdout);
  if (cfg.histogram != NULL && write_histogram(&run, cfg.histogram) != 0)
    return 1;
  return bench_run_errors(&run) == 0 && run.messages > 0 ? 0 : 1;
}
