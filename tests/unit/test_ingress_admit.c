/* test_ingress_admit: a body's deadline from its length (table, rounding, saturation) and the
 * global body budget (fits, refuses, never overshoots under concurrent takers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admit.h"

#include <pthread.h>

static const struct {
	const char *name;
	uint64_t len;
	int64_t base_ms, rate;
	int64_t want;
} body_cases[] = {
    {"empty body: the base alone", 0, 5000, 32768, 5000},
    {"a small webhook", 200, 5000, 32768, 5007},
    {"one second of upload", 32768, 5000, 32768, 6000},
    {"a byte over a second: rounded up", 32769, 5000, 32768, 6001},
    {"64 KiB (INGRESS_MAX_BODY)", 65536, 5000, 32768, 7000},
    {"1 MiB (INGRESS_MAX_POST_CALL_BODY)", 1048576, 5000, 32768, 37000},
    {"1 byte per second", 10, 0, 1, 10000},
    {"a rate below 1 counts as 1", 10, 0, 0, 10000},
    {"a negative base counts as 0", 1000, -5, 1000, 1000},
    {"absurd length: saturated", UINT64_MAX, 5000, 1, INT64_MAX / 8},
    {"absurd base: saturated", 1, INT64_MAX, 1, INT64_MAX / 8},
    {"absurd rate: instant", UINT64_MAX, 100, INT64_MAX, 100 + 18446745},
};

static void test_admit_body_ms_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof body_cases / sizeof body_cases[0]; i++) {
		int64_t got =
		    admit_body_ms(body_cases[i].len, body_cases[i].base_ms, body_cases[i].rate);

		if (got != body_cases[i].want)
			fail_msg("%s: got %lld ms, want %lld", body_cases[i].name, (long long)got,
			         (long long)body_cases[i].want);
	}
}

static void test_admit_budget(void **state)
{
	_Atomic size_t used = 0;

	(void)state;
	assert_true(admit_budget_take(&used, 1000, 600));
	assert_true(admit_budget_take(&used, 1000, 400)); /* exactly full */
	assert_false(admit_budget_take(&used, 1000, 1));
	assert_int_equal(used, 1000);
	admit_budget_give(&used, 400);
	assert_false(admit_budget_take(&used, 1000, 401));
	assert_true(admit_budget_take(&used, 1000, 0));
	assert_true(admit_budget_take(&used, 1000, 400));
	admit_budget_give(&used, 1000);
	assert_int_equal(used, 0);
	/* more than the whole budget, and sizes that would wrap around */
	assert_false(admit_budget_take(&used, 1000, 1001));
	assert_false(admit_budget_take(&used, 1000, SIZE_MAX));
	assert_true(admit_budget_take(&used, 1000, 10));
	assert_false(admit_budget_take(&used, 1000, SIZE_MAX - 5));
	assert_int_equal(used, 10);
}

#define TAKERS 4
#define ROUNDS 100000

struct taker {
	_Atomic size_t *used;
	_Atomic size_t *peak;
	size_t taken;
};

static void *taker_run(void *opaque)
{
	struct taker *t = opaque;

	for (int i = 0; i < ROUNDS; i++) {
		size_t n = (size_t)(i % 7 + 1) * 100, seen;

		if (!admit_budget_take(t->used, 2000, n))
			continue;
		t->taken++;
		seen = atomic_load(t->used);
		for (size_t p = atomic_load(t->peak); seen > p;)
			if (atomic_compare_exchange_weak(t->peak, &p, seen))
				break;
		admit_budget_give(t->used, n);
	}
	return NULL;
}

/* Threads taking and giving back at once never push the total past the budget. */
static void test_admit_budget_concurrent(void **state)
{
	_Atomic size_t used = 0, peak = 0;
	struct taker t[TAKERS];
	pthread_t th[TAKERS];
	size_t taken = 0;

	(void)state;
	for (int i = 0; i < TAKERS; i++) {
		t[i] = (struct taker){.used = &used, .peak = &peak};
		assert_int_equal(pthread_create(&th[i], NULL, taker_run, &t[i]), 0);
	}
	for (int i = 0; i < TAKERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		taken += t[i].taken;
	}
	assert_int_equal(used, 0);
	assert_true(peak <= 2000);
	assert_true(taken > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admit_body_ms_table),
	    cmocka_unit_test(test_admit_budget),
	    cmocka_unit_test(test_admit_budget_concurrent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
