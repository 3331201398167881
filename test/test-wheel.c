/* The timing wheel on its own, with made-up times: ops come out when their
 * deadline has passed and never before, in deadline order, whether they are
 * due within the first turn of the wheel or many turns later. */
#include <string.h>

#include "internal.h"
#include "test.h"

enum { OPS = 600 };

static asock_op ops[OPS];
static asock__wheel wheel;

static void setup(void) {
  memset(ops, 0, sizeof(ops));
  asock__wheel_init(&wheel, 1000);
}

/* Expires at `now` and returns how many came out, checking each is due and
 * that they come out in deadline order. */
static int expire_at(uint64_t now, asock_op **out, int max) {
  asock_op *op = asock__wheel_expire(&wheel, now);
  uint64_t last = 0;
  int n = 0;
  while (op != NULL) {
    asock_op *next = op->wnext;
    ck_assert_uint_le(op->deadline, now);
    ck_assert_uint_ge(op->deadline, last);
    ck_assert_uint_eq(op->wslot, 0);
    last = op->deadline;
    ck_assert_int_lt(n, max);
    out[n++] = op;
    op = next;
  }
  return n;
}

START_TEST(nothing_expires_early) {
  asock_op *out[4];
  asock__wheel_add(&wheel, &ops[0], 1000, 10);
  ck_assert_uint_eq(wheel.count, 1);
  ck_assert_int_eq(expire_at(1009, out, 4), 0);
  /* Due from 1010, and out by the end of the tick it falls in. */
  ck_assert_int_eq(expire_at(1010 + ASOCK__WHEEL_TICK_MS, out, 4), 1);
  ck_assert_ptr_eq(out[0], &ops[0]);
  ck_assert_uint_eq(wheel.count, 0);
  ck_assert_int_eq(expire_at(2000, out, 4), 0);
}
END_TEST

START_TEST(deadlines_come_out_in_order) {
  asock_op *out[3];
  /* Added out of order, in three different ticks. */
  asock__wheel_add(&wheel, &ops[0], 1000, 300);
  asock__wheel_add(&wheel, &ops[1], 1000, 100);
  asock__wheel_add(&wheel, &ops[2], 1000, 200);
  ck_assert_int_eq(expire_at(1500, out, 3), 3);
  ck_assert_ptr_eq(out[0], &ops[1]);
  ck_assert_ptr_eq(out[1], &ops[2]);
  ck_assert_ptr_eq(out[2], &ops[0]);
}
END_TEST

START_TEST(removed_ops_never_come_out) {
  asock_op *out[3];
  asock__wheel_add(&wheel, &ops[0], 1000, 50);
  asock__wheel_add(&wheel, &ops[1], 1000, 50); /* same slot as ops[0] */
  asock__wheel_add(&wheel, &ops[2], 1000, 50);
  asock__wheel_remove(&wheel, &ops[1]); /* the middle of its slot */
  asock__wheel_remove(&wheel, &ops[2]); /* the head of its slot */
  asock__wheel_remove(&wheel, &ops[2]); /* not in the wheel: no effect */
  ck_assert_uint_eq(wheel.count, 1);
  ck_assert_int_eq(expire_at(2000, out, 3), 1);
  ck_assert_ptr_eq(out[0], &ops[0]);
  ck_assert_uint_eq(wheel.count, 0);
}
END_TEST

/* Deadlines several turns of the wheel ahead share slots with near ones;
 * each comes out only when its own time comes. */
START_TEST(far_deadlines_wait_their_turn) {
  uint64_t turn = (uint64_t)ASOCK__WHEEL_SLOTS * ASOCK__WHEEL_TICK_MS;
  asock_op *out[2];
  uint64_t now;

  asock__wheel_add(&wheel, &ops[0], 1000, 40);
  asock__wheel_add(&wheel, &ops[1], 1000, 40 + 3 * turn);
  ck_assert_uint_eq(ops[0].wslot, ops[1].wslot);
  ck_assert_int_eq(expire_at(1040, out, 2), 1);
  ck_assert_ptr_eq(out[0], &ops[0]);
  /* Sweep the wheel tick by tick, as the loop's timer does. */
  for (now = 1040 + ASOCK__WHEEL_TICK_MS; now < 1040 + 3 * turn;
       now += ASOCK__WHEEL_TICK_MS)
    ck_assert_int_eq(expire_at(now, out, 2), 0);
  ck_assert_int_eq(expire_at(1040 + 3 * turn, out, 2), 1);
  ck_assert_ptr_eq(out[0], &ops[1]);
}
END_TEST

/* A loop that stalled longer than a whole turn sweeps every slot once and
 * still finds everything that is due, and nothing that is not. */
START_TEST(a_long_stall_sweeps_everything_once) {
  uint64_t turn = (uint64_t)ASOCK__WHEEL_SLOTS * ASOCK__WHEEL_TICK_MS;
  static asock_op *out[OPS];
  int i, n;

  /* Deadlines from 1 ms to about four turns of the wheel ahead, added in
   * an order unrelated to them. */
  for (i = 0; i < OPS; i++) {
    int k = (i * 7) % OPS;
    asock__wheel_add(&wheel, &ops[k], 1000, (uint64_t)(k * 7 + 1));
  }
  ck_assert_uint_gt(7 * OPS, 3 * turn);
  n = expire_at(1000 + 7 * (OPS / 2), out, OPS);
  /* Due: k * 7 + 1 <= 7 * (OPS / 2), that is the first OPS / 2. */
  ck_assert_int_eq(n, OPS / 2);
  for (i = 0; i < n; i++)
    ck_assert_ptr_eq(out[i], &ops[i]);
  ck_assert_int_eq(expire_at(1000 + 7 * OPS + turn, out, OPS), OPS - n);
  ck_assert_uint_eq(wheel.count, 0);
}
END_TEST

Suite *asock_test_suite_wheel(void) {
  Suite *s = suite_create("wheel");
  TCase *tc = tcase_create("wheel");
  tcase_set_timeout(tc, ASOCK_TEST_TIMEOUT);
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, nothing_expires_early);
  tcase_add_test(tc, deadlines_come_out_in_order);
  tcase_add_test(tc, removed_ops_never_come_out);
  tcase_add_test(tc, far_deadlines_wait_their_turn);
  tcase_add_test(tc, a_long_stall_sweeps_everything_once);
  suite_add_tcase(s, tc);
  return s;
}
