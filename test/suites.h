/* The one list of test suites. Each entry names a suite defined in
 * test/test-<name>.c as `Suite *asock_test_suite_<name>(void)` and its ctest
 * labels; test/CMakeLists.txt reads this file to register one ctest test per
 * suite, and test/runner.c reads it to find the suite by name. "threaded"
 * marks suites that run the ThreadSanitizer pass in .ci/run. The fault
 * injection sweep exists only in builds with ASOCK_FAULT_INJECTION, which
 * test/CMakeLists.txt also knows. */
#ifdef ASOCK_FAULT_INJECTION
#define ASOCK_TEST_FAULT_SUITE(XX) XX(faults, "faults")
#else
#define ASOCK_TEST_FAULT_SUITE(XX)
#endif
#define ASOCK_TEST_SUITES(XX)                                                  \
  XX(errors, "unit")                                                           \
  XX(alloc, "unit")                                                            \
  XX(pool, "unit;threaded")                                                    \
  XX(op, "unit")                                                               \
  XX(seq, "unit;threaded")                                                     \
  XX(seq_threads, "unit;threaded")                                             \
  XX(wheel, "unit")                                                            \
  XX(threads, "tcp;threaded")                                                  \
  XX(group, "tcp;threaded")                                                    \
  XX(tcp_basic, "tcp")                                                         \
  XX(tcp_accept, "tcp;threaded")                                               \
  XX(tcp_connect, "tcp")                                                       \
  XX(tcp_setup, "tcp")                                                         \
  XX(tcp_order, "tcp")                                                         \
  XX(tcp_close, "tcp")                                                         \
  XX(tcp_shutdown, "tcp")                                                      \
  XX(tcp_packets, "tcp;threaded")                                              \
  XX(tcp_pressure, "tcp")                                                      \
  XX(tcp_timeout, "tcp")                                                       \
  XX(multishot, "tcp;threaded")                                                \
  XX(slices, "tcp;threaded")                                                   \
  XX(tcp_stress, "tcp")                                                        \
  XX(udp_basic, "udp")                                                         \
  XX(udp_flow, "udp")                                                          \
  XX(udp_ring, "udp")                                                          \
  XX(security, "tcp")                                                          \
  XX(hostile, "tcp;novalgrind")                                                \
  XX(backend, "tcp")                                                           \
  ASOCK_TEST_FAULT_SUITE(XX)
