/* Shared by every test file: check, the public and internal headers, and a
 * few helpers. */
#ifndef ASOCK_TEST_H
#define ASOCK_TEST_H

#include <check.h>

/* Every test is added through this: a test listed in test/wine-skips.h is
 * left out when the executable runs under Wine. */
int asock_test_skipped(const TTest *test);
#undef tcase_add_test
#define tcase_add_test(tc, tf)                                                 \
  do {                                                                         \
    if (!asock_test_skipped(tf))                                               \
      tcase_add_test_raise_signal(tc, tf, 0);                                  \
  } while (0)

#include "asock.h"
#include "suites.h"

#define ASOCK__DECLARE_SUITE(name, labels) Suite *asock_test_suite_##name(void);
ASOCK_TEST_SUITES(ASOCK__DECLARE_SUITE)
#undef ASOCK__DECLARE_SUITE

/* check.h declares its message functions format(printf), which GCC reads as
 * msvcrt's printf on MinGW: messages use %llu and a cast, not %zu, or a
 * MinGW build with -Werror fails against check as MSYS2 ships it. */

/* Asserts that an asock call returned the expected code, printing both names
 * when it did not. */
#define ck_assert_asock(expr, expected)                                        \
  do {                                                                         \
    int asock__got_ = (expr);                                                  \
    int asock__want_ = (expected);                                             \
    ck_assert_msg(asock__got_ == asock__want_,                                 \
                  "%s: got %s (%d), want %s (%d)", #expr,                      \
                  asock_err_name(asock__got_), asock__got_,                    \
                  asock_err_name(asock__want_), asock__want_);                 \
  } while (0)

/* Timeout in seconds for one test case; generous because the machine is
 * shared and valgrind is slow. */
#define ASOCK_TEST_TIMEOUT 120

/* The allocator tests install: counts every call and fails the k-th
 * allocation (1-based) when asock_test_fail_at is k. */
extern unsigned long asock_test_alloc_calls;
extern unsigned long asock_test_alloc_live;
extern unsigned long asock_test_fail_at;
void asock_test_install_counting_allocator(void);
void asock_test_restore_allocator(void);

#endif /* ASOCK_TEST_H */
