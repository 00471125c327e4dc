/* test_backoff: delays stay within [ceil/2, ceil] of the doubling schedule, capped, jittered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

#include <limits.h>

static const struct {
	long base, max;
	long lo[8], hi[8]; /* bounds of the first eight delays */
} cases[] = {
    {100,
     1000,
     {50, 100, 200, 400, 500, 500, 500, 500},
     {100, 200, 400, 800, 1000, 1000, 1000, 1000}},
    {1, 10, {1, 1, 2, 4, 5, 5, 5, 5}, {1, 2, 4, 8, 10, 10, 10, 10}},
    {500, 500, {250, 250, 250, 250, 250, 250, 250, 250}, {500, 500, 500, 500, 500, 500, 500, 500}},
    /* max below base: the cap wins from the first delay */
    {1000, 300, {150, 150, 150, 150, 150, 150, 150, 150}, {300, 300, 300, 300, 300, 300, 300, 300}},
    {0, 1000, {0, 0, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 0, 0, 0, 0, 0}},
};

static void test_backoff_bounds(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		/* Many instances: each is seeded differently, so many jitter values are covered. */
		for (int rep = 0; rep < 200; rep++) {
			struct backoff b;

			backoff_init(&b, cases[c].base, cases[c].max);
			for (int i = 0; i < 8; i++) {
				long d = backoff_next(&b);

				if (d < cases[c].lo[i] || d > cases[c].hi[i])
					fail_msg("case %zu attempt %d: %ld not in [%ld, %ld]", c, i,
					         d, cases[c].lo[i], cases[c].hi[i]);
			}
		}
	}
}

static void test_backoff_reset(void **state)
{
	struct backoff b;

	(void)state;
	backoff_init(&b, 100, 100000);
	for (int i = 0; i < 10; i++)
		(void)backoff_next(&b);
	assert_true(backoff_next(&b) >= 50000);
	backoff_reset(&b);
	assert_int_equal(b.attempt, 0);
	assert_in_range(backoff_next(&b), 50, 100);
}

static void test_backoff_no_overflow(void **state)
{
	struct backoff b;

	(void)state;
	/* Hundreds of attempts with a huge cap: the doubling must saturate, never wrap. */
	backoff_init(&b, 1000, 0x7fffffffL);
	for (int i = 0; i < 500; i++) {
		long d = backoff_next(&b);

		assert_true(d >= 0);
		assert_true(d <= 0x7fffffffL);
	}
	assert_true(backoff_next(&b) >= 0x7fffffffL / 2);
}

static void test_backoff_jitter(void **state)
{
	struct backoff b;
	long first, distinct = 0;

	(void)state;
	backoff_init(&b, 1000, 1000);
	first = backoff_next(&b);
	for (int i = 0; i < 100; i++)
		if (backoff_next(&b) != first)
			distinct++;
	/* 501 possible values: a constant delay would mean no jitter at all. */
	assert_true(distinct > 50);
}

/* The ceiling the dialer's backoff and the transcriber's retry delays share. */
static void test_backoff_ceil(void **state)
{
	static const struct {
		long base, max;
		unsigned attempt;
		long want;
	} ceil_cases[] = {
	    {100, 2000, 0, 100},   {100, 2000, 1, 200},
	    {100, 2000, 4, 1600},  {100, 2000, 5, 2000},
	    {100, 2000, 63, 2000}, {300, 200, 0, 200},
	    {0, 500, 9, 0},        {LONG_MAX / 2 + 1, LONG_MAX, 3, LONG_MAX},
	};
	uint64_t state_a = 0, state_b = 0;

	(void)state;
	for (size_t i = 0; i < sizeof ceil_cases / sizeof ceil_cases[0]; i++)
		if (backoff_ceil_ms(ceil_cases[i].base, ceil_cases[i].max, ceil_cases[i].attempt) !=
		    ceil_cases[i].want)
			fail_msg("case %zu: %ld", i,
			         backoff_ceil_ms(ceil_cases[i].base, ceil_cases[i].max,
			                         ceil_cases[i].attempt));
	/* a zero state still draws, deterministically */
	assert_true(backoff_rand(&state_a) == backoff_rand(&state_b));
	assert_true(state_a != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_ceil),   cmocka_unit_test(test_backoff_bounds),
	    cmocka_unit_test(test_backoff_reset),  cmocka_unit_test(test_backoff_no_overflow),
	    cmocka_unit_test(test_backoff_jitter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
