/* test_ingress_console_params: the console APIs' parameters: ISO-8601 times (offsets, fractions,
 * impossible dates), the cursor (round trip, anything else refused), and the requests' checks
 * with the parameter each refusal names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "console_files.h"
#include "console_params.h"

#include <stdio.h>
#include <string.h>

static void test_time_parse(void **state)
{
	char out[CONSOLE_TIME_LEN];
	int64_t us;

	(void)state;
	assert_int_equal(console_time_parse("1970-01-01T00:00:00Z", &us), 0);
	assert_int_equal(us, 0);
	assert_int_equal(console_time_parse("2026-12-07T01:02:03.456Z", &us), 0);
	console_time_format_ms(us, out);
	assert_string_equal(out, "2026-12-07T01:02:03.456Z");
	console_time_format_us(us, out);
	assert_string_equal(out, "2026-12-07T01:02:03.456000Z");
	/* offsets: all the same instant */
	assert_int_equal(console_time_parse("2026-12-07T02:02:03.456+01:00", &us), 0);
	console_time_format_ms(us, out);
	assert_string_equal(out, "2026-12-07T01:02:03.456Z");
	assert_int_equal(console_time_parse("2026-12-06T23:32:03.456-0130", &us), 0);
	console_time_format_ms(us, out);
	assert_string_equal(out, "2026-12-07T01:02:03.456Z");
	assert_int_equal(console_time_parse("2026-12-07T01:02:03+00:00", &us), 0);
	console_time_format_us(us, out);
	assert_string_equal(out, "2026-12-07T01:02:03.000000Z");
	/* fractions beyond microseconds are cut, not rounded */
	assert_int_equal(console_time_parse("2024-02-29T23:59:59.123456789Z", &us), 0);
	console_time_format_us(us, out);
	assert_string_equal(out, "2024-02-29T23:59:59.123456Z");
	static const char *const bad[] = {
	    "",
	    "2026-12-07",
	    "2026-12-07T01:02:03",   /* no offset */
	    "2026-12-07 01:02:03Z",  /* space */
	    "2026-12-07T01:02:03.Z", /* empty fraction */
	    "2026-12-07T01:02:03.1234567890Z",
	    "2026-02-29T00:00:00Z", /* not a leap year */
	    "2026-04-31T00:00:00Z",
	    "2026-13-01T00:00:00Z",
	    "2026-00-01T00:00:00Z",
	    "2026-12-07T24:00:00Z",
	    "2026-12-07T23:60:00Z",
	    "2026-12-07T23:59:60Z",
	    "1969-12-31T23:59:59Z",
	    "2026-12-07T01:02:03Zjunk",
	    "2026-12-07T01:02:03+25:00",
	    "+2026-12-07T01:02:03Z",
	    "2026-1-07T01:02:03Z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (console_time_parse(bad[i], &us) == 0)
			fail_msg("'%s' accepted", bad[i]);
}

static void test_cursor(void **state)
{
	char c[CONSOLE_CURSOR_LEN];
	int64_t at, id;

	(void)state;
	console_cursor_encode(INT64_C(1796605210364399), 999999, c);
	assert_null(strpbrk(c, "+/="));
	assert_int_equal(console_cursor_decode(c, &at, &id), 0);
	assert_true(at == INT64_C(1796605210364399));
	assert_int_equal(id, 999999);
	for (int64_t n = 1; n < 100000; n = n * 7 + 3) {
		console_cursor_encode(n * 1000 + 1, n, c);
		assert_int_equal(console_cursor_decode(c, &at, &id), 0);
		assert_true(at == n * 1000 + 1 && id == n);
	}
	static const char *const bad[] = {"",
	                                  "x",
	                                  "bm9wZQ",
	                                  "%%%",
	                                  "YzEuMTIzLjQ1Ng==",
	                                  "YzEuLTEyMy40NTY", /* c1.-123.456 */
	                                  "YzEuMTIzLjA",     /* c1.123.0 */
	                                  "YzEuMTIzLjQ1Nng", /* c1.123.456x */
	                                  "YzIuMTIzLjQ1Ng"}; /* c2. */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (console_cursor_decode(bad[i], &at, &id) == 0)
			fail_msg("cursor '%s' accepted", bad[i]);
}

/* Parses "a=1&b=2" (modified in place) into args. */
static void args_of(char *qs, struct console_args *a)
{
	memset(a, 0, sizeof *a);
	for (char *tok = strtok(qs, "&"); tok != NULL; tok = strtok(NULL, "&")) {
		char *eq = strchr(tok, '=');

		if (a->n == CONSOLE_ARGS_MAX) {
			a->too_many = true;
			break;
		}
		if (eq != NULL)
			*eq = '\0';
		a->name[a->n] = tok;
		a->value[a->n++] = eq != NULL ? eq + 1 : NULL;
	}
}

#define NOW INT64_C(1796605200000000) /* 2026-12-07T01:00:00Z */

static void test_requests(void **state)
{
	struct console_args a;
	struct console_calls_req c;
	struct console_drivers_req d;
	struct console_overview_req o;
	struct console_err err;
	char qs[300];

	(void)state;
	strcpy(qs, "status=failed&driver_id=d1&limit=7&since=2026-12-01T00:00:00Z");
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), 0);
	assert_string_equal(c.status, "failed");
	assert_string_equal(c.driver_id, "d1");
	assert_int_equal(c.limit, 7);
	assert_string_equal(c.since, "2026-12-01T00:00:00.000000Z");
	assert_string_equal(c.until, "");
	assert_false(c.has_cursor);
	qs[0] = '\0';
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), 0);
	assert_int_equal(c.limit, 50);
	/* defaults of the statistics: 30 days and a day, ending now */
	assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), 0);
	assert_string_equal(d.w.until, "2026-12-07T01:00:00.000000Z");
	assert_string_equal(d.w.since, "2026-11-07T01:00:00.000000Z");
	assert_string_equal(console_driver_sorts[d.sort], "calls");
	assert_false(d.ascending);
	assert_int_equal(d.limit, 100);
	assert_int_equal(console_parse_overview(&a, NOW, &o, &err), 0);
	assert_string_equal(o.w.since, "2026-12-06T01:00:00.000000Z");
	assert_string_equal(o.bucket, "hour");
	strcpy(qs, "until=2026-12-01T00:00:00Z&sort=median_duration_s&order=asc");
	args_of(qs, &a);
	assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), 0);
	assert_string_equal(d.w.since, "2026-11-01T00:00:00.000000Z");
	assert_string_equal(console_driver_sorts[d.sort], "median_duration_s");
	assert_true(d.ascending);
	assert_false(d.rolling); /* another window, and the median sort: exact */
	/* refusals name the parameter */
	strcpy(qs, "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9&j=10&k=11&l=12&m=13&n=14&o=15&p=16&q=17");
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), -1);
	assert_string_equal(err.field, "query");
	strcpy(qs, "limit");
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), 0); /* "limit" alone: the default */
	strcpy(qs, "limit=0200");
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), 0);
	assert_int_equal(c.limit, 200);
	strcpy(qs, "limit=99999999999");
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), -1);
	assert_string_equal(err.field, "limit");
	strcpy(qs, "limit=200"); /* /stats/drivers: at most 200 a page, like /calls */
	args_of(qs, &a);
	assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), 0);
	assert_int_equal(d.limit, 200);
	strcpy(qs, "limit=201");
	args_of(qs, &a);
	assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), -1);
	assert_string_equal(err.field, "limit");
	strcpy(qs, "");
	args_of(qs, &a);
	assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), 0);
	assert_int_equal(d.limit, 100);
	strcpy(qs, "since=2026-12-08T00:00:00Z");
	args_of(qs, &a);
	assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), -1); /* after now */
	assert_string_equal(err.field, "since");
	strcpy(qs, "bucket=hour&since=2026-10-01T00:00:00Z");
	args_of(qs, &a);
	assert_int_equal(console_parse_overview(&a, NOW, &o, &err), -1);
	assert_string_equal(err.field, "bucket");
	strcpy(qs, "bucket=day&since=2026-10-01T00:00:00Z");
	args_of(qs, &a);
	assert_int_equal(console_parse_overview(&a, NOW, &o, &err), 0);
	memset(qs, 'x', 300);
	memcpy(qs, "driver_id=", 10);
	qs[299] = '\0';
	args_of(qs, &a);
	assert_int_equal(console_parse_calls(&a, &c, &err), -1);
	assert_string_equal(err.field, "driver_id");
}

/* Which /stats/drivers requests the rolling rollup answers: the default window, or since/until
 * within 60 s of (now - 30 days, now); never the median sort. */
static void test_drivers_rolling(void **state)
{
	static const struct {
		const char *qs;
		bool rolling;
	} cases[] = {
	    {"", true},
	    {"sort=failed&order=asc&limit=200", true},
	    {"driver_id=d1", true},
	    {"since=2026-11-07T01:00:00Z&until=2026-12-07T01:00:00Z", true},
	    {"since=2026-11-07T00:59:30Z&until=2026-12-07T00:59:02Z", true},
	    {"until=2026-12-07T00:59:00Z", true},
	    {"until=2026-12-07T00:58:59Z", false},
	    {"since=2026-11-07T01:01:01Z", false},
	    {"since=2026-11-08T01:00:00Z&until=2026-12-07T01:00:00Z", false},
	    {"since=2026-11-01T00:00:00Z&until=2026-12-01T00:00:00Z", false},
	    {"sort=median_duration_s", false},
	};
	struct console_args a;
	struct console_drivers_req d;
	struct console_err err;
	char qs[200];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(qs, sizeof qs, "%s", cases[i].qs);
		args_of(qs, &a);
		assert_int_equal(console_parse_drivers(&a, NOW, &d, &err), 0);
		if (d.rolling != cases[i].rolling)
			fail_msg("%s: rolling %d", cases[i].qs, d.rolling);
	}
}

static void test_file_types(void **state)
{
	(void)state;
	assert_string_equal(console_files_type("index.html"), "text/html; charset=utf-8");
	assert_string_equal(console_files_type("console.js"), "text/javascript; charset=utf-8");
	assert_string_equal(console_files_type("console.css"), "text/css; charset=utf-8");
	assert_string_equal(console_files_type("logo-2_b.svg"), "image/svg+xml");
	static const char *const refused[] = {
	    "",     ".js",   "..",    "../x.js", "a/b.js",  "a.b.js",      "x.txt",  "x",
	    "x.JS", "-x.js", "x.js ", "x%2f.js", "x\\y.js", ".hidden.css", "x.html~"};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		if (console_files_type(refused[i]) != NULL)
			fail_msg("'%s' would be served", refused[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_parse), cmocka_unit_test(test_cursor),
	    cmocka_unit_test(test_requests),   cmocka_unit_test(test_drivers_rolling),
	    cmocka_unit_test(test_file_types),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
