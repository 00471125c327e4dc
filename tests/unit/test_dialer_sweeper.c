/* test_dialer_sweeper: how the sweeper reads GET /v1/convai/conversations/{id} answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "sweeper.h"

#include <string.h>

static void classify(long status, const char *body, struct sweep_verdict *v)
{
	sweeper_classify(status, body, strlen(body), v);
}

static void test_dialer_sweeper_done(void **state)
{
	struct sweep_verdict v;

	(void)state;
	/* 2025-11-21T10:30:00Z = 1763721000; + 95 s */
	classify(200,
	         "{\"conversation_id\":\"c\",\"status\":\"done\",\"metadata\":{\"start_time_unix_"
	         "secs\":1763721000,\"call_duration_secs\":95},\"transcript\":[]}",
	         &v);
	assert_int_equal(v.action, SWEEP_COMPLETED);
	assert_string_equal(v.label, "completed");
	assert_string_equal(v.end_time, "2025-11-21T10:31:35.000Z");
	/* no metadata: completed, end time unknown (now() is stored) */
	classify(200, "{\"status\":\"done\"}", &v);
	assert_int_equal(v.action, SWEEP_COMPLETED);
	assert_string_equal(v.end_time, "");
	/* absurd numbers: completed, no end time, and no undefined conversion (UBSan) */
	classify(200,
	         "{\"status\":\"done\",\"metadata\":{\"start_time_unix_secs\":1e300,"
	         "\"call_duration_secs\":95}}",
	         &v);
	assert_int_equal(v.action, SWEEP_COMPLETED);
	assert_string_equal(v.end_time, "");
	classify(200,
	         "{\"status\":\"done\",\"metadata\":{\"start_time_unix_secs\":1763721000,"
	         "\"call_duration_secs\":-95}}",
	         &v);
	assert_string_equal(v.end_time, "");
}

static void test_dialer_sweeper_failed_and_running(void **state)
{
	struct sweep_verdict v;

	(void)state;
	classify(200, "{\"status\":\"failed\",\"metadata\":{\"termination_reason\":\"busy\"}}", &v);
	assert_int_equal(v.action, SWEEP_FAILED);
	assert_string_equal(v.reason, "conversation_failed: busy");
	classify(200, "{\"status\":\"failed\"}", &v);
	assert_string_equal(v.reason, "conversation_failed");
	for (int i = 0; i < 3; i++) {
		static const char *const running[] = {
		    "{\"status\":\"initiated\"}",
		    "{\"status\":\"in-progress\"}",
		    "{\"status\":\"processing\"}",
		};
		classify(200, running[i], &v);
		assert_int_equal(v.action, SWEEP_RUNNING);
	}
}

static void test_dialer_sweeper_errors(void **state)
{
	struct sweep_verdict v;

	(void)state;
	classify(404, "{\"detail\":{\"status\":\"conversation_not_found\"}}", &v);
	assert_int_equal(v.action, SWEEP_FAILED);
	assert_string_equal(v.reason, "conversation_not_found");
	/* a 404 page that is not the API's (wrong base URL, proxy) settles nothing */
	classify(404, "<html>Not Found</html>", &v);
	assert_int_equal(v.action, SWEEP_ERROR);
	classify(500, "{}", &v);
	assert_int_equal(v.action, SWEEP_ERROR);
	classify(200, "not json", &v);
	assert_int_equal(v.action, SWEEP_ERROR);
	classify(200, "{\"status\":\"weird\"}", &v);
	assert_int_equal(v.action, SWEEP_ERROR);
	assert_string_equal(v.reason, "unknown status 'weird'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_sweeper_done),
	    cmocka_unit_test(test_dialer_sweeper_failed_and_running),
	    cmocka_unit_test(test_dialer_sweeper_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
