/* The threaded checks of asock-echo-check: `asock-echo --threads 2`, a loop
 * group, run with the other asock-echo checks; and the asock-workers
 * example, completions on a thread pool put back in order, run on their
 * own (`asock-echo-check --workers PATH`). */
#ifndef ASOCK_TEST_ECHO_THREADS_H
#define ASOCK_TEST_ECHO_THREADS_H

#include <stddef.h>

#include "echo-server.h"

/* The asock-workers executable under test. */
extern const char *ec_workers_path;

extern const ec_check ec_threads_checks[];
extern const size_t ec_threads_check_count;
extern const ec_check ec_workers_checks[];
extern const size_t ec_workers_check_count;

/* Stops what these checks left running and closes their handles. */
void ec_threads_close(void);

#endif /* ASOCK_TEST_ECHO_THREADS_H */
