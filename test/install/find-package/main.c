/* A program outside asock's tree, built against an installed asock only
 * (test/install/install-consumer.cmake builds it twice: through
 * find_package() and through pkg-config). It exits non-zero when the library
 * it loaded does not match the header it was compiled with, or when the
 * package did not pass on what a user of it needs. */
#include <stdio.h>
#include <string.h>

#include <asock.h>

/* A shared asock must reach its users with USING_ASOCK_SHARED defined (the
 * CMake target's INTERFACE define, the Cflags of asock.pc); without it a
 * Windows program would not import the symbols. */
#if defined(ASOCK_EXPECT_SHARED) && !defined(USING_ASOCK_SHARED)
#error "asock is shared but USING_ASOCK_SHARED is not defined"
#endif
#if !defined(ASOCK_EXPECT_SHARED) && defined(USING_ASOCK_SHARED)
#error "asock is static but USING_ASOCK_SHARED is defined"
#endif

static int failures;

static void expect(int ok, const char *what) {
  if (!ok) {
    fprintf(stderr, "asock-consumer: FAILED: %s\n", what);
    failures++;
  }
}

int main(void) {
  asock_pool *pool = NULL;
  int err;

  expect(asock_version() == ASOCK_VERSION_HEX,
         "asock_version() == ASOCK_VERSION_HEX");
  expect(asock_version_string() != NULL &&
             strcmp(asock_version_string(), ASOCK_VERSION_STRING) == 0,
         "asock_version_string() == ASOCK_VERSION_STRING");
#ifdef ASOCK_EXPECTED_VERSION
  /* The version the package says it is (find_package, pkg-config). */
  expect(strcmp(ASOCK_VERSION_STRING, ASOCK_EXPECTED_VERSION) == 0,
         "ASOCK_VERSION_STRING == the package's version");
#endif
  expect(strcmp(asock_strerror(ASOCK_EBUSY), "operation already pending") == 0,
         "asock_strerror(ASOCK_EBUSY) == \"operation already pending\"");
  expect(strcmp(asock_err_name(ASOCK_EBUSY), "ASOCK_EBUSY") == 0,
         "asock_err_name(ASOCK_EBUSY) == \"ASOCK_EBUSY\"");

  err = asock_pool_create(&pool, NULL);
  if (err != 0) {
    fprintf(stderr, "asock-consumer: asock_pool_create: %s\n",
            asock_err_name(err));
    expect(0, "asock_pool_create(&pool, NULL) == 0");
  } else {
    expect(pool != NULL, "asock_pool_create() gave a pool");
    err = asock_pool_destroy(pool);
    if (err != 0)
      fprintf(stderr, "asock-consumer: asock_pool_destroy: %s\n",
              asock_err_name(err));
    expect(err == 0, "asock_pool_destroy(pool) == 0");
  }

  if (failures != 0)
    return 1;
  printf("asock-consumer: asock %s works\n", asock_version_string());
  return 0;
}
