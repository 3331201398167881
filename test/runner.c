/* Runs one suite from test/suites.h: `asock-tests NAME`, or every suite with
 * no argument. ctest runs one process per suite. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

typedef struct suite_entry {
  const char *name;
  Suite *(*make)(void);
} suite_entry;

static const suite_entry suites[] = {
#define ASOCK__SUITE_ENTRY(name, labels) {#name, asock_test_suite_##name},
    ASOCK_TEST_SUITES(ASOCK__SUITE_ENTRY)
#undef ASOCK__SUITE_ENTRY
};

int main(int argc, char **argv) {
  SRunner *runner = NULL;
  size_t i;
  int failed;

  for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
    if (argc > 1 && strcmp(argv[1], suites[i].name) != 0)
      continue;
    if (runner == NULL)
      runner = srunner_create(suites[i].make());
    else
      srunner_add_suite(runner, suites[i].make());
  }
  if (runner == NULL) {
    fprintf(stderr, "asock-tests: no suite named '%s'\n", argv[1]);
    return 2;
  }
  srunner_run_all(runner, CK_NORMAL);
  failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
