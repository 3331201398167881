/* Small helpers shared by asock-bench and the echo-server baselines: command
 * line parsing and the open-file limit. Portable: no POSIX-only calls here. */
#ifndef ASOCK_BENCH_UTIL_H
#define ASOCK_BENCH_UTIL_H

#include <stdint.h>

/* The program name used in every message; main() sets it first. */
extern const char *bench_progname;

/* If argv[*i] is the option `name`, written `--name VALUE` or
 * `--name=VALUE`, stores VALUE, moves *i past it and returns 1. Returns 0 if
 * argv[*i] is another option. A missing VALUE is a usage error: the program
 * exits with status 2. */
int bench_opt_value(int argc, char **argv, int *i, const char *name,
                    const char **value);

/* Parses a whole decimal number in [min, max] for `option`; anything else is
 * a usage error (exit status 2). */
uint64_t bench_parse_u64(const char *option, const char *text, uint64_t min,
                         uint64_t max);

/* Parses a number of seconds in [min, max], fractions allowed. */
double bench_parse_seconds(const char *option, const char *text, double min,
                           double max);

/* Raises the soft limit on open files to the hard limit. Stores the limit now
 * in force in *limit (UINT64_MAX where there is none) and returns 0 if it is
 * at least `want`, -1 if it is not. */
int bench_raise_fd_limit(uint64_t want, uint64_t *limit);

#endif
