/* The one list of test suites. Each entry names a suite defined in
 * test/test-<name>.c as `Suite *asock_test_suite_<name>(void)` and its ctest
 * labels; test/CMakeLists.txt reads this file to register one ctest test per
 * suite, and test/runner.c reads it to find the suite by name. "threaded"
 * marks suites that run the ThreadSanitizer pass in .ci/run. */
#define ASOCK_TEST_SUITES(XX)                                                  \
  XX(errors, "unit")                                                           \
  XX(alloc, "unit")                                                            \
  XX(pool, "unit;threaded")                                                    \
  XX(op, "unit")                                                               \
  XX(seq, "unit;threaded")                                                     \
  XX(wheel, "unit")                                                            \
  XX(threads, "tcp;threaded")                                                  \
  XX(group, "tcp;threaded")                                                    \
  XX(tcp_basic, "tcp")                                                         \
  XX(tcp_order, "tcp")                                                         \
  XX(tcp_close, "tcp")                                                         \
  XX(tcp_pressure, "tcp")                                                      \
  XX(tcp_timeout, "tcp")                                                       \
  XX(tcp_stress, "tcp")                                                        \
  XX(udp_basic, "udp")                                                         \
  XX(udp_flow, "udp")                                                          \
  XX(security, "tcp")                                                          \
  XX(hostile, "tcp;novalgrind")
