/* The replaceable allocator: every allocation goes through it, failures
 * return ASOCK_ENOMEM without leaking, and a pool allocates only while it is
 * created. */
#include <stdlib.h>

#include "internal.h"
#include "test.h"

static void teardown(void) { asock_test_restore_allocator(); }

START_TEST(replace_rejects_null) {
  asock_test_install_counting_allocator();
  ck_assert_asock(asock_replace_allocator(NULL, realloc, calloc, free),
                  ASOCK_EINVAL);
  ck_assert_asock(asock_replace_allocator(malloc, realloc, calloc, NULL),
                  ASOCK_EINVAL);
  /* The counting allocator is still the one in use. */
  free(asock__malloc(16)); /* not counted: freed by libc directly */
  ck_assert_uint_eq(asock_test_alloc_calls, 1);
  asock_test_alloc_live = 0;
}
END_TEST

START_TEST(pool_create_survives_every_allocation_failure) {
  asock_pool_config config;
  asock_pool *pool = (asock_pool *)&config; /* must be reset to NULL */
  unsigned long k;
  int err = ASOCK_ENOMEM;

  asock_pool_config_init(&config);
  config.slice_size = 512;
  config.slice_count = 64;
  config.op_count = 32;
  asock_test_install_counting_allocator();
  for (k = 1; k < 100 && err == ASOCK_ENOMEM; k++) {
    asock_test_alloc_calls = 0;
    asock_test_fail_at = k;
    err = asock_pool_create(&pool, &config);
    if (err == ASOCK_ENOMEM) {
      ck_assert_ptr_null(pool);
      ck_assert_uint_eq(asock_test_alloc_live, 0);
    }
  }
  ck_assert_asock(err, 0);
  /* Creation took k - 2 allocations before the first k that succeeded. */
  ck_assert_uint_gt(k, 2);
  ck_assert_ptr_nonnull(pool);
  ck_assert_uint_gt(asock_test_alloc_live, 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  ck_assert_uint_eq(asock_test_alloc_live, 0);
}
END_TEST

START_TEST(pool_never_allocates_after_creation) {
  asock_pool_config config;
  asock_pool *pool;
  asock_op *ops[8];
  void *slices[16];
  unsigned long calls;
  int round, i;

  asock_pool_config_init(&config);
  config.slice_size = 256;
  config.slice_count = 16;
  config.op_count = 8;
  asock_test_install_counting_allocator();
  ck_assert_asock(asock_pool_create(&pool, &config), 0);
  calls = asock_test_alloc_calls;
  for (round = 0; round < 100; round++) {
    for (i = 0; i < 16; i++)
      ck_assert_asock(asock_pool_acquire(pool, &slices[i]), 0);
    for (i = 0; i < 8; i++) {
      ck_assert_asock(asock_op_acquire(pool, &ops[i]), 0);
      ck_assert_asock(asock_op_set_buffer(ops[i], slices[i], 256, 0, 256), 0);
    }
    for (i = 0; i < 16; i++)
      ck_assert_asock(asock_pool_release(pool, slices[i]), 0);
    for (i = 0; i < 8; i++) {
      ck_assert_asock(asock_op_take_slice(ops[i]), 0);
      ck_assert_asock(asock_op_release(pool, ops[i]), 0);
    }
  }
  ck_assert_uint_eq(asock_test_alloc_calls, calls);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  ck_assert_uint_eq(asock_test_alloc_live, 0);
}
END_TEST

/* Loops and sockets allocate through the same allocator: failing each of
 * their allocations in turn gives ASOCK_ENOMEM and leaks nothing. */
START_TEST(loop_and_socket_creation_survive_allocation_failure) {
  asock_pool *pool;
  asock_loop *loop;
  asock_socket *sock;
  unsigned long k;
  int err = ASOCK_ENOMEM;

  asock_test_install_counting_allocator();
  ck_assert_asock(asock_pool_create(&pool, NULL), 0);
  for (k = 1; k < 100 && err == ASOCK_ENOMEM; k++) {
    unsigned long live = asock_test_alloc_live;
    asock_test_alloc_calls = 0;
    asock_test_fail_at = k;
    loop = (asock_loop *)&loop;
    err = asock_loop_create(&loop, pool, NULL);
    if (err == ASOCK_ENOMEM) {
      ck_assert_ptr_null(loop);
      ck_assert_uint_eq(asock_test_alloc_live, live);
    }
  }
  ck_assert_asock(err, 0);
  err = ASOCK_ENOMEM;
  for (k = 1; k < 100 && err == ASOCK_ENOMEM; k++) {
    unsigned long live = asock_test_alloc_live;
    asock_test_alloc_calls = 0;
    asock_test_fail_at = k;
    sock = (asock_socket *)&sock;
    err = asock_tcp_create(&sock, loop);
    if (err == ASOCK_ENOMEM) {
      ck_assert_ptr_null(sock);
      ck_assert_uint_eq(asock_test_alloc_live, live);
    }
  }
  ck_assert_asock(err, 0);
  asock_test_fail_at = 0;
  ck_assert_asock(asock_socket_close(sock, 0), 0);
  ck_assert_asock(asock_loop_close(loop), 0);
  ck_assert_asock(asock_pool_destroy(pool), 0);
  ck_assert_uint_eq(asock_test_alloc_live, 0);
}
END_TEST

Suite *asock_test_suite_alloc(void) {
  Suite *s = suite_create("alloc");
  TCase *tc = tcase_create("alloc");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, replace_rejects_null);
  tcase_add_test(tc, pool_create_survives_every_allocation_failure);
  tcase_add_test(tc, pool_never_allocates_after_creation);
  tcase_add_test(tc, loop_and_socket_creation_survive_allocation_failure);
  suite_add_tcase(s, tc);
  return s;
}
