/* test_ingress_validation: inputs the real ingress refuses before they cost anything: a
 * /calls/{call_sid} that no call_sid can be (not UTF-8, longer than 255 bytes) is a 404 without
 * a database round trip; phone numbers outside the North American numbering plan (N11 codes,
 * exchanges starting with 0 or 1, premium-rate 900/976) are a 400 naming the driver; a post-call
 * with absurd numbers is a 400 and publishes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "itv."
#define T_POST "webhooks.post_call"

/* The database is configured but unreachable: any lookup that reaches it answers 503. */
static int setup(void **state)
{
	const char *extra[] = {"DATABASE_URL=postgresql://callpipe@127.0.0.1:1/none",
	                       "INGRESS_DELIVERY_TIMEOUT_MS=2000", NULL};

	*state = it_stack_new(PREFIX, 1, extra);
	return 0;
}

static int teardown(void **state)
{
	it_stack_free(*state);
	return 0;
}

static long get_call(const struct it_stack *e, const char *path)
{
	const char *headers[] = {IT_AUTH, NULL};
	struct ts_http_resp resp;
	long status;

	ts_http("GET", it_url(&e->in, path), headers, NULL, 0, &resp);
	status = resp.status;
	ts_http_resp_free(&resp);
	return status;
}

static void test_validation_calls_path(void **state)
{
	struct it_stack *e = *state;
	char path[400];
	size_t warned = it_log_count(&e->in, "\"level\":\"warn\"");

	/* not UTF-8: a lone byte, an overlong '/', a surrogate, past U+10FFFF */
	assert_int_equal(get_call(e, "/calls/EL%FF"), 404);
	assert_int_equal(get_call(e, "/calls/EL_1_%C0%AF"), 404);
	assert_int_equal(get_call(e, "/calls/EL_1_%ED%A0%80"), 404);
	assert_int_equal(get_call(e, "/calls/EL_1_%F4%90%80%80"), 404);
	assert_int_equal(get_call(e, "/calls/EL_1_%E2%82"), 404); /* cut short */
	/* 256 bytes: longer than any call_sid */
	snprintf(path, sizeof path, "/calls/EL_%0253d", 7);
	assert_int_equal(strlen(path) - strlen("/calls/"), 256);
	assert_int_equal(get_call(e, path), 404);
	/* none of them reached the (unreachable) database, or logged a warning */
	assert_int_equal(it_log_count(&e->in, "\"level\":\"warn\""), warned);

	/* the test can fail: well-formed ids do go to the database, which is down */
	snprintf(path, sizeof path, "/calls/EL_%0252d", 7); /* 255 bytes */
	assert_int_equal(get_call(e, path), 503);
	assert_int_equal(get_call(e, "/calls/EL_1_%C3%A9t%C3%A9"), 503); /* "été": UTF-8 */
}

static void test_validation_phone_numbers(void **state)
{
	static const struct {
		const char *phone;
		long status;
		const char *why; /* in the 400's error */
	} cases[] = {
	    {"(212) 555-0100", 202, NULL},
	    {"+1 901 555 0100", 202, NULL},
	    {"(911) 555-0100", 400, "area code 911 is an N11 service code"},
	    {"(411) 555-0100", 400, "area code 411 is an N11 service code"},
	    {"(212) 611-0100", 400, "exchange 611 is an N11 service code"},
	    {"(212) 055-0100", 400, "exchange 055 starts with 0"},
	    {"1-212-155-0100", 400, "exchange 155 starts with 1"},
	    {"(123) 555-0100", 400, "area code 123 starts with 1"},
	    {"1-900-555-0100", 400, "area code 900 is premium-rate"},
	    {"(212) 976-0100", 400, "exchange 976 is premium-rate"},
	    {"+44 20 7946 0958", 400, "not 10 digits"},
	};
	struct it_stack *e = *state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ts_http_resp resp;
		char body[512], want[160];

		snprintf(body, sizeof body,
		         "{\"callType\":\"check_in\",\"timestamp\":\"2025-11-21T10:30:%02zuZ\","
		         "\"drivers\":[{\"driverId\":\"D%zu\",\"driverName\":\"N\","
		         "\"phoneNumber\":\"%s\"}]}",
		         i, i, cases[i].phone);
		it_post_auth(&e->in, "/driver_data/call-elevenlabs", body, &resp);
		if (resp.status != cases[i].status)
			fail_msg("'%s': %ld %s, want %ld", cases[i].phone, resp.status, resp.body,
			         cases[i].status);
		if (cases[i].why != NULL) {
			snprintf(want, sizeof want, "of driver 'D%zu'", i);
			if (strstr(resp.body, cases[i].why) == NULL ||
			    strstr(resp.body, want) == NULL ||
			    strstr(resp.body, "drivers[0].phoneNumber") == NULL)
				fail_msg("'%s': answer %s does not name the driver and '%s'",
				         cases[i].phone, resp.body, cases[i].why);
		}
		ts_http_resp_free(&resp);
	}
}

static void test_validation_post_call_numbers(void **state)
{
	static const struct {
		const char *metadata; /* data.metadata, or the top-level extra */
		const char *event_timestamp;
		long status;
		const char *field;
	} cases[] = {
	    {"{\"start_time_unix_secs\":1763721000,\"call_duration_secs\":95}", "1763721100", 200,
	     NULL},
	    {"{\"start_time_unix_secs\":1e300,\"call_duration_secs\":95}", "1763721100", 400,
	     "start_time_unix_secs"},
	    {"{\"start_time_unix_secs\":1763721000,\"call_duration_secs\":-5}", "1763721100", 400,
	     "call_duration_secs"},
	    {"{\"start_time_unix_secs\":-1,\"call_duration_secs\":5}", "1763721100", 400,
	     "start_time_unix_secs"},
	    {"{\"start_time_unix_secs\":1763721000,\"call_duration_secs\":1e18}", "1763721100", 400,
	     "call_duration_secs"},
	    {"{\"start_time_unix_secs\":253402300799,\"call_duration_secs\":60}", "1763721100", 400,
	     "start_time_unix_secs"},
	    {"{\"start_time_unix_secs\":1763721000}", "-1e300", 400, "event_timestamp"},
	    {"{\"start_time_unix_secs\":1763721000}", "1e19", 400, "event_timestamp"},
	    /* not numbers at all: left to the transcriber's tolerance, as before */
	    {"{\"start_time_unix_secs\":\"soon\"}", "\"later\"", 200, NULL},
	};
	struct it_stack *e = *state;
	char topic[256];
	int64_t now = time(NULL);
	size_t accepted = 0;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct ts_http_resp resp;
		char body[700], conv[32];

		snprintf(conv, sizeof conv, "conv_abs_%zu", i);
		snprintf(body, sizeof body,
		         "{\"type\":\"post_call_transcription\",\"event_timestamp\":%s,\"data\":{"
		         "\"conversation_id\":\"%s\",\"status\":\"done\",\"transcript\":[],"
		         "\"metadata\":%s}}",
		         cases[i].event_timestamp, conv, cases[i].metadata);
		it_post_signed(&e->in, "/webhooks/elevenlabs/post-call", body, IT_SECRET, now,
		               &resp);
		if (resp.status != cases[i].status ||
		    (cases[i].field != NULL && strstr(resp.body, cases[i].field) == NULL))
			fail_msg("case %zu: %ld %s, want %ld naming %s", i, resp.status, resp.body,
			         cases[i].status, cases[i].field ? cases[i].field : "-");
		accepted += resp.status == 200;
		ts_http_resp_free(&resp);
		assert_int_equal(
		    it_count_key(&e->broker,
		                 ts_broker_topic(&e->broker, T_POST, topic, sizeof topic), conv),
		    cases[i].status == 200 ? 1 : 0);
	}
	assert_int_equal(accepted, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validation_calls_path),
	    cmocka_unit_test(test_validation_phone_numbers),
	    cmocka_unit_test(test_validation_post_call_numbers),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
