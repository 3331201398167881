#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#include <sys/resource.h>
#endif

#include "bench-util.h"

const char *bench_progname = "bench";

int bench_opt_value(int argc, char **argv, int *i, const char *name,
                    const char **value) {
  const char *arg = argv[*i];
  size_t len = strlen(name);

  if (strncmp(arg, name, len) != 0)
    return 0;
  if (arg[len] == '=') {
    *value = arg + len + 1;
    return 1;
  }
  if (arg[len] != '\0')
    return 0;
  if (*i + 1 >= argc) {
    fprintf(stderr, "%s: option %s needs a value\n", bench_progname, name);
    exit(2);
  }
  *i += 1;
  *value = argv[*i];
  return 1;
}

uint64_t bench_parse_u64(const char *option, const char *text, uint64_t min,
                         uint64_t max) {
  unsigned long long v;
  char *end;

  /* strtoull accepts a sign and wraps "-1" around; only digits are valid. */
  errno = 0;
  v = text[0] >= '0' && text[0] <= '9' ? strtoull(text, &end, 10) : 0;
  if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0 || v < min ||
      v > max) {
    fprintf(stderr, "%s: %s wants a whole number from %llu to %llu, not '%s'\n",
            bench_progname, option, (unsigned long long)min,
            (unsigned long long)max, text);
    exit(2);
  }
  return (uint64_t)v;
}

double bench_parse_seconds(const char *option, const char *text, double min,
                           double max) {
  double v;
  char *end;

  errno = 0;
  v = strtod(text, &end);
  /* The comparisons are written so that NaN fails them too. */
  if (end == text || *end != '\0' || errno != 0 || !(v >= min) || !(v <= max)) {
    fprintf(stderr, "%s: %s wants seconds from %g to %g, not '%s'\n",
            bench_progname, option, min, max, text);
    exit(2);
  }
  return v;
}

#ifdef _WIN32

int bench_raise_fd_limit(uint64_t want, uint64_t *limit) {
  /* Windows has no per-process cap on sockets to raise. */
  (void)want;
  *limit = UINT64_MAX;
  return 0;
}

#else

int bench_raise_fd_limit(uint64_t want, uint64_t *limit) {
  struct rlimit rl;

  *limit = 0;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  if (rl.rlim_cur != rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    /* A failure leaves the old soft limit, which is checked below. */
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
      getrlimit(RLIMIT_NOFILE, &rl);
  }
  *limit = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
  return *limit >= want ? 0 : -1;
}

#endif
