/* test_timeutil: ISO-8601 formatting and parsing tables, clocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>

#include "timeutil.h"

#include <errno.h>
#include <pthread.h>

/* Expected values computed independently (Python datetime) when the test was written. */
static const struct {
	int64_t ms;
	const char *text;
} format_cases[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {1763721000000, "2025-11-21T10:30:00.000Z"},
    {1763721000123, "2025-11-21T10:30:00.123Z"},
    {1709251199999, "2024-02-29T23:59:59.999Z"},
    {946684800000, "2000-01-01T00:00:00.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {-86400000, "1969-12-31T00:00:00.000Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"},
    {253402300800000, "10000-01-01T00:00:00.000Z"},
    {-62167219200000, "0000-01-01T00:00:00.000Z"},
    {1234567890987, "2009-02-13T23:31:30.987Z"},
};

static void test_timeutil_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof format_cases / sizeof format_cases[0]; i++) {
		char buf[32];

		time_format_iso_ms(format_cases[i].ms, buf, sizeof buf);
		assert_string_equal(buf, format_cases[i].text);
	}
	{
		/* a buffer too small truncates, always terminated */
		char small[11];

		time_format_iso_ms(1763721000123, small, sizeof small);
		assert_string_equal(small, "2025-11-21");
	}
}

static const struct {
	const char *text;
	int rc;
	int64_t ms;
} parse_cases[] = {
    {"2025-11-21T10:30:00Z", 0, 1763721000000},
    {"2025-11-21t10:30:00z", 0, 1763721000000},
    {"2025-11-21 10:30:00Z", 0, 1763721000000},
    {"2025-11-21T10:30:00.123Z", 0, 1763721000123},
    {"2025-11-21T10:30:00.1Z", 0, 1763721000100},
    {"2025-11-21T10:30:00.123456789Z", 0, 1763721000123},
    {"2025-11-21T10:30:00,5Z", 0, 1763721000500},
    {"2025-11-21T12:30:00+02:00", 0, 1763721000000},
    {"2025-11-21T12:30:00+0200", 0, 1763721000000},
    {"2025-11-21T05:00:00-05:30", 0, 1763721000000},
    {"2025-11-21T10:30:00", 0, 1763721000000}, /* no zone: UTC */
    {"2025-11-21T10:30:00.000+00:00", 0, 1763721000000},
    {"2025-11-21", 0, 1763683200000},
    {"2024-02-29T23:59:59.999Z", 0, 1709251199999},
    {"2000-01-01T00:00:00Z", 0, 946684800000},
    {"1969-12-31T23:59:59.999Z", 0, -1},
    {"2016-12-31T23:59:60Z", 0, 1483228799000}, /* leap second folds into :59 */
    {"", -1, 0},
    {"2025", -1, 0},
    {"2025-11", -1, 0},
    {"2025-13-01", -1, 0},
    {"2025-00-10", -1, 0},
    {"2025-02-29", -1, 0},
    {"2025-04-31", -1, 0},
    {"2025-11-21T", -1, 0},
    {"2025-11-21T10:30", -1, 0},
    {"2025-11-21T24:00:00Z", -1, 0},
    {"2025-11-21T10:60:00Z", -1, 0},
    {"2025-11-21T10:30:61Z", -1, 0},
    {"2025-11-21T10:30:00.Z", -1, 0},
    {"2025-11-21T10:30:00ZZ", -1, 0},
    {"2025-11-21T10:30:00+2:00", -1, 0},
    {"2025-11-21T10:30:00+24:00", -1, 0},
    {"2025-11-21T10:30:00 junk", -1, 0},
    {"2025-11-21X10:30:00Z", -1, 0},
    {"25-11-21T10:30:00Z", -1, 0},
    {"1763721000", -1, 0},
    {"not a date", -1, 0},
};

static void test_timeutil_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof parse_cases / sizeof parse_cases[0]; i++) {
		int64_t ms = 42;
		int rc = time_parse_iso_ms(parse_cases[i].text, &ms);

		if (rc != parse_cases[i].rc)
			fail_msg("'%s': rc %d, want %d", parse_cases[i].text, rc,
			         parse_cases[i].rc);
		if (rc == 0 && ms != parse_cases[i].ms)
			fail_msg("'%s': %lld, want %lld", parse_cases[i].text, (long long)ms,
			         (long long)parse_cases[i].ms);
	}
	assert_int_equal(time_parse_iso_ms(NULL, &(int64_t){0}), -1);
}

static void test_timeutil_round_trip(void **state)
{
	(void)state;
	/* Every formatted value parses back to itself, across years and day boundaries. */
	for (int64_t ms = -5000000000000LL; ms < 5000000000000LL; ms += 86399999LL * 37 + 13) {
		char buf[32];
		int64_t back = 0;

		time_format_iso_ms(ms, buf, sizeof buf);
		assert_int_equal(time_parse_iso_ms(buf, &back), 0);
		assert_int_equal(back, ms);
	}
}

static void test_timeutil_clocks(void **state)
{
	int64_t a, b, now;

	(void)state;
	a = time_mono_ms();
	b = time_mono_ms();
	assert_true(b >= a);
	now = time_now_ms();
	/* After 2024-01-01 and before 2100: the clock is in milliseconds since the epoch. */
	assert_true(now > 1704067200000LL);
	assert_true(now < 4102444800000LL);
}

/* Seconds from a JSON number: in range becomes ms, anything else is refused, never converted
 * (a float-to-integer conversion out of range is undefined behaviour: UBSan would say so). */
static void test_timeutil_secs_to_ms(void **state)
{
	static const struct {
		double secs;
		int rc;
		int64_t ms;
	} cases[] = {
	    {0, 0, 0},
	    {1763721000, 0, 1763721000000LL},
	    {1763721000.5, 0, 1763721000500LL},
	    {253402300799.0, 0, 253402300799000LL},
	    {253402300800.0, -1, 0},
	    {-0.001, -1, 0},
	    {-1e300, -1, 0},
	    {1e300, -1, 0},
	    {1e19, -1, 0},
	    {HUGE_VAL, -1, 0},
	    {-HUGE_VAL, -1, 0},
	    {NAN, -1, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int64_t ms = -7;
		int rc = time_secs_to_ms(cases[i].secs, &ms);

		if (rc != cases[i].rc || (rc == 0 && ms != cases[i].ms))
			fail_msg("case %zu (%g): rc %d ms %lld", i, cases[i].secs, rc,
			         (long long)ms);
		if (rc != 0 && ms != -7)
			fail_msg("case %zu: refused but wrote %lld", i, (long long)ms);
	}
}

/* A time_cond_init condition variable measures its deadline on CLOCK_MONOTONIC: a deadline
 * taken from the monotonic clock (near the boot time, i.e. in 1970 on the wall clock) is really
 * waited for. On a CLOCK_REALTIME condition variable, as the sweeper once had, it returns at once;
 * and a wall-clock deadline would stall after a clock step backwards. */
static void test_timeutil_cond_monotonic(void **state)
{
	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv;
	struct timespec deadline;
	int64_t start;
	int rc;

	(void)state;
	assert_int_equal(time_cond_init(&cv), 0);
	pthread_mutex_lock(&mu);
	deadline = time_mono_deadline(150);
	start = time_mono_ms();
	do
		rc = pthread_cond_timedwait(&cv, &mu, &deadline);
	while (rc == 0);
	assert_int_equal(rc, ETIMEDOUT);
	assert_true(time_mono_ms() - start >= 140);
	start = time_mono_ms();
	do
		rc = time_cond_wait_ms(&cv, &mu, 100);
	while (rc == 0 && time_mono_ms() - start < 100);
	assert_int_equal(rc, ETIMEDOUT);
	assert_true(time_mono_ms() - start >= 90);
	assert_true(time_mono_ms() - start < 5000);
	pthread_mutex_unlock(&mu);
	pthread_cond_destroy(&cv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_timeutil_cond_monotonic),
	    cmocka_unit_test(test_timeutil_format),
	    cmocka_unit_test(test_timeutil_parse),
	    cmocka_unit_test(test_timeutil_round_trip),
	    cmocka_unit_test(test_timeutil_clocks),
	    cmocka_unit_test(test_timeutil_secs_to_ms),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
