/* Error codes, their names and messages, and the version. */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "test.h"

typedef struct err_entry {
  int code;
  const char *name;
  const char *msg;
} err_entry;

static const err_entry table[] = {
#define ENTRY(name, value, msg) {ASOCK_##name, "ASOCK_" #name, msg},
    ASOCK_ERRNO_MAP(ENTRY)
#undef ENTRY
};
#define TABLE_LEN (sizeof(table) / sizeof(table[0]))

START_TEST(every_code_has_its_name_and_message) {
  size_t i;
  for (i = 0; i < TABLE_LEN; i++) {
    ck_assert_int_lt(table[i].code, 0);
    ck_assert_str_eq(asock_err_name(table[i].code), table[i].name);
    ck_assert_str_eq(asock_strerror(table[i].code), table[i].msg);
    ck_assert_uint_gt(strlen(table[i].msg), 0);
  }
}
END_TEST

START_TEST(codes_are_unique) {
  size_t i, j;
  for (i = 0; i < TABLE_LEN; i++)
    for (j = i + 1; j < TABLE_LEN; j++)
      ck_assert_msg(table[i].code != table[j].code, "%s and %s share %d",
                    table[i].name, table[j].name, table[i].code);
}
END_TEST

START_TEST(system_codes_equal_libuv_codes) {
  ck_assert_int_eq(ASOCK_EINVAL, UV_EINVAL);
  ck_assert_int_eq(ASOCK_ENOMEM, UV_ENOMEM);
  ck_assert_int_eq(ASOCK_ECONNRESET, UV_ECONNRESET);
  ck_assert_int_eq(ASOCK_ECONNREFUSED, UV_ECONNREFUSED);
  ck_assert_int_eq(ASOCK_EAI_NONAME, UV_EAI_NONAME);
  ck_assert_int_eq(ASOCK_EADDRINUSE, UV_EADDRINUSE);
  /* libuv's message is the same text for the same code. */
  ck_assert_str_eq(uv_strerror(ASOCK_ECONNRESET), "connection reset by peer");
}
END_TEST

START_TEST(own_codes_are_clear_of_libuv) {
  static const int own[] = {
      ASOCK_EBUSY,      ASOCK_ENOBUFS,   ASOCK_ECANCELED,   ASOCK_ETIMEDOUT,
      ASOCK_EOF,        ASOCK_ECLOSED,   ASOCK_EKIND,       ASOCK_EFOREIGN,
      ASOCK_EBOUNDS,    ASOCK_ENOTSLICE, ASOCK_EMIDSLICE,   ASOCK_ENOTHELD,
      ASOCK_EDUPLICATE, ASOCK_EWINDOW,   ASOCK_ENOTPENDING, ASOCK_EQUOTA,
      ASOCK_ETHREAD,    ASOCK_ENOSLICE};
  size_t i;
  for (i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
    ck_assert_int_lt(own[i], ASOCK__ERR_BASE);
    ck_assert_int_gt(own[i], ASOCK__ERR_BASE - 1000);
    ck_assert_int_lt(own[i], UV_ERRNO_MAX);
  }
  ck_assert_int_gt(ASOCK_PENDING, 0);
}
END_TEST

START_TEST(unknown_codes_get_fixed_strings) {
  const char *name = asock_err_name(-123456);
  const char *msg = asock_strerror(-123456);
  ck_assert_str_eq(name, "ASOCK_UNKNOWN");
  ck_assert_str_eq(msg, "unknown error");
  /* The same static string every time: nothing is allocated per call. */
  ck_assert_ptr_eq(asock_err_name(7), name);
  ck_assert_ptr_eq(asock_strerror(1), msg);
  /* 0 is a status too: the one of every operation that succeeded. */
  ck_assert_str_eq(asock_err_name(0), "OK");
  ck_assert_str_eq(asock_strerror(0), "success");
  ck_assert_ptr_eq(asock_strerror(ASOCK_EBUSY), asock_strerror(ASOCK_EBUSY));
}
END_TEST

START_TEST(libuv_codes_are_translated) {
  ck_assert_int_eq(asock__from_uv(UV_ETIMEDOUT), ASOCK_ETIMEDOUT);
  ck_assert_int_eq(asock__from_uv(UV_ECANCELED), ASOCK_ECANCELED);
  ck_assert_int_eq(asock__from_uv(UV_EAI_CANCELED), ASOCK_ECANCELED);
  ck_assert_int_eq(asock__from_uv(UV_EOF), ASOCK_EOF);
  ck_assert_int_eq(asock__from_uv(UV_ENOBUFS), ASOCK_ENOBUFS);
  ck_assert_int_eq(asock__from_uv(UV_ECONNRESET), ASOCK_ECONNRESET);
  ck_assert_int_eq(asock__from_uv(0), 0);
}
END_TEST

START_TEST(version_matches_header) {
  char expected[32];
  ck_assert_uint_eq(asock_version(), ASOCK_VERSION_HEX);
  ck_assert_str_eq(asock_version_string(), ASOCK_VERSION_STRING);
  snprintf(expected, sizeof(expected), "%d.%d.%d", ASOCK_VERSION_MAJOR,
           ASOCK_VERSION_MINOR, ASOCK_VERSION_PATCH);
  ck_assert_str_eq(asock_version_string(), expected);
  ck_assert_uint_eq(ASOCK_VERSION_HEX, (unsigned)((ASOCK_VERSION_MAJOR << 16) |
                                                  (ASOCK_VERSION_MINOR << 8) |
                                                  ASOCK_VERSION_PATCH));
}
END_TEST

Suite *asock_test_suite_errors(void) {
  Suite *s = suite_create("errors");
  TCase *tc = tcase_create("errors");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_test(tc, every_code_has_its_name_and_message);
  tcase_add_test(tc, codes_are_unique);
  tcase_add_test(tc, system_codes_equal_libuv_codes);
  tcase_add_test(tc, own_codes_are_clear_of_libuv);
  tcase_add_test(tc, unknown_codes_get_fixed_strings);
  tcase_add_test(tc, libuv_codes_are_translated);
  tcase_add_test(tc, version_matches_header);
  suite_add_tcase(s, tc);
  return s;
}
