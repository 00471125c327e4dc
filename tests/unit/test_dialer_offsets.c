/* test_dialer_offsets: commits only up to the highest contiguous handled offset, per partition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "offsets.h"

static void add(struct offsets *o, int32_t p, int64_t off)
{
	assert_int_equal(offsets_add(o, p, off), 0);
}

static void test_dialer_offsets_nothing_done(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	assert_int_equal(offsets_committable(o, 0), -1);
	add(o, 0, 10);
	add(o, 0, 11);
	assert_int_equal(offsets_committable(o, 0), -1);
	assert_int_equal(offsets_committable(o, 7), -1); /* never seen */
	offsets_destroy(o);
}

static void test_dialer_offsets_out_of_order(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	for (int64_t off = 100; off < 105; off++)
		add(o, 2, off);
	offsets_done(o, 2, 102);
	offsets_done(o, 2, 104);
	assert_int_equal(offsets_committable(o, 2), -1); /* 100 still running */
	offsets_done(o, 2, 100);
	assert_int_equal(offsets_committable(o, 2), 101); /* 101 still running */
	offsets_committed(o, 2, 101);
	assert_int_equal(offsets_pending(o, 2), 4);
	assert_int_equal(offsets_committable(o, 2), -1);
	offsets_done(o, 2, 101);
	assert_int_equal(offsets_committable(o, 2), 103); /* 100..102 done, 103 not */
	offsets_committed(o, 2, 103);
	offsets_done(o, 2, 103);
	assert_int_equal(offsets_committable(o, 2), 105);
	offsets_committed(o, 2, 105);
	assert_int_equal(offsets_pending(o, 2), 0);
	offsets_destroy(o);
}

static void test_dialer_offsets_partitions_independent(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	add(o, 0, 5);
	add(o, 3, 7);
	add(o, 0, 6);
	offsets_done(o, 3, 7);
	offsets_done(o, 0, 6);
	assert_int_equal(offsets_committable(o, 3), 8);
	assert_int_equal(offsets_committable(o, 0), -1);
	assert_int_equal(offsets_npartitions(o), 4);
	offsets_destroy(o);
}

static void test_dialer_offsets_gaps_in_offsets(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	/* compacted or transactional topics skip offsets: only consumed ones count */
	add(o, 1, 10);
	add(o, 1, 20);
	add(o, 1, 35);
	offsets_done(o, 1, 20);
	offsets_done(o, 1, 10);
	assert_int_equal(offsets_committable(o, 1), 21);
	offsets_done(o, 1, 36); /* unknown: ignored */
	assert_int_equal(offsets_committable(o, 1), 21);
	offsets_destroy(o);
}

static void test_dialer_offsets_refetch_and_drop(void **state)
{
	struct offsets *o = offsets_new();

	(void)state;
	add(o, 0, 50);
	add(o, 0, 51);
	offsets_done(o, 0, 50);
	/* fetched again from an earlier position (rebalance): old state is dropped */
	add(o, 0, 49);
	assert_int_equal(offsets_pending(o, 0), 1);
	assert_int_equal(offsets_committable(o, 0), -1);
	offsets_done(o, 0, 49);
	assert_int_equal(offsets_committable(o, 0), 50);
	offsets_drop(o, 0);
	assert_int_equal(offsets_committable(o, 0), -1);
	offsets_done(o, 0, 49); /* after a drop: ignored, no crash */
	offsets_destroy(o);
}

static void test_dialer_offsets_grows_and_wraps(void **state)
{
	struct offsets *o = offsets_new();
	int64_t next = 0;

	(void)state;
	/* many rounds of add/done/commit, with more in flight than the initial ring holds */
	for (int round = 0; round < 20; round++) {
		for (int i = 0; i < 100; i++)
			add(o, 0, next + i);
		for (int i = 99; i >= 0; i--)
			offsets_done(o, 0, next + i);
		next += 100;
		assert_int_equal(offsets_committable(o, 0), next);
		offsets_committed(o, 0, next - 30); /* a partial commit keeps the rest */
		assert_int_equal(offsets_pending(o, 0), 30);
		offsets_committed(o, 0, next);
		assert_int_equal(offsets_pending(o, 0), 0);
	}
	offsets_destroy(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_offsets_nothing_done),
	    cmocka_unit_test(test_dialer_offsets_out_of_order),
	    cmocka_unit_test(test_dialer_offsets_partitions_independent),
	    cmocka_unit_test(test_dialer_offsets_gaps_in_offsets),
	    cmocka_unit_test(test_dialer_offsets_refetch_and_drop),
	    cmocka_unit_test(test_dialer_offsets_grows_and_wraps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
