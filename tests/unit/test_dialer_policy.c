/* test_dialer_policy: what the dialer does with each outbound-call answer or transport failure,
 * Retry-After parsing, API error messages and the calls/s token bucket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "policy.h"

#include <curl/curl.h>
#include <string.h>

struct http_case {
	long status;
	const char *body;
	const char *retry_after;
	enum policy_action action;
	const char
	    *reason; /* expected reason (FAILED) or conversation_id (OK); NULL: not checked */
	const char *label;
	long retry_after_ms;
};

static void test_dialer_policy_http_table(void **state)
{
	static const struct http_case cases[] = {
	    {200,
	     "{\"success\":true,\"message\":\"Success\",\"conversation_id\":\"conv_1\",\"callSid\":"
	     "\"CA1\"}",
	     NULL, POLICY_OK, "conv_1", "ok", -1},
	    {201, "{\"success\":true,\"conversation_id\":\"conv_2\"}", NULL, POLICY_OK, "conv_2",
	     "ok", -1},
	    {200, "{\"success\":true,\"conversation_id\":null}", NULL, POLICY_OK, "", "ok", -1},
	    {200, "{\"conversation_id\":\"conv_3\"}", NULL, POLICY_OK, "conv_3", "ok", -1},
	    {200, "{\"success\":false,\"message\":\"number unreachable\",\"conversation_id\":null}",
	     NULL, POLICY_FAILED, "number unreachable", "rejected", -1},
	    {200, "{\"success\":false}", NULL, POLICY_FAILED,
	     "outbound call refused (success: false)", "rejected", -1},
	    /* a 2xx we cannot read may still have placed the call: never guess */
	    {200, "<html>ok</html>", NULL, POLICY_UNKNOWN, "dial_outcome_unknown", "bad_response",
	     -1},
	    {200, "{\"message\":\"hi\"}", NULL, POLICY_UNKNOWN, "dial_outcome_unknown",
	     "bad_response", -1},
	    {429, "{\"detail\":{\"status\":\"too_many\",\"message\":\"slow down\"}}", "3",
	     POLICY_RETRY, "HTTP 429: slow down", "429", 3000},
	    {429, "", NULL, POLICY_RETRY, "HTTP 429", "429", -1},
	    {503, "{\"detail\":\"maintenance\"}", "1", POLICY_RETRY, "HTTP 503: maintenance", "503",
	     1000},
	    {503, "", NULL, POLICY_RETRY, "HTTP 503", "503", -1},
	    /* a gateway's error after the request went through it: the call may exist, so never
	     * a second ring, whatever Retry-After says */
	    {502, "bad gateway", NULL, POLICY_UNKNOWN, "HTTP 502: bad gateway", "502", -1},
	    {502, "{\"detail\":{\"status\":\"bad_gateway\",\"message\":\"Bad gateway\"}}", "1",
	     POLICY_UNKNOWN, "HTTP 502: Bad gateway", "502", -1},
	    {504, "", "junk", POLICY_UNKNOWN, "HTTP 504", "504", -1},
	    {504, "<html>Gateway Time-out</html>", "5", POLICY_UNKNOWN,
	     "HTTP 504: <html>Gateway Time-out</html>", "504", -1},
	    {400, "{\"detail\":{\"status\":\"invalid\",\"message\":\"agent cannot call\"}}", NULL,
	     POLICY_FAILED, "HTTP 400: agent cannot call", "http_4xx", -1},
	    {401, "{\"detail\":{\"status\":\"invalid_api_key\",\"message\":\"Invalid API key\"}}",
	     NULL, POLICY_FAILED, "HTTP 401: Invalid API key", "http_4xx", -1},
	    {422,
	     "{\"detail\":[{\"loc\":[\"body\",\"to_number\"],\"msg\":\"field required\",\"type\":"
	     "\"value_error.missing\"},{\"loc\":[\"body\",\"drivers\",0],\"msg\":\"bad\"}]}",
	     NULL, POLICY_FAILED, "HTTP 422: body.to_number: field required; body.drivers.0: bad",
	     "http_4xx", -1},
	    {500, "{\"message\":\"boom\"}", NULL, POLICY_FAILED, "HTTP 500: boom", "http_5xx", -1},
	    {301, "", NULL, POLICY_FAILED, "HTTP 301", "http_other", -1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const struct http_case *c = &cases[i];
		struct policy_verdict v;

		policy_classify_http(c->status, c->body, strlen(c->body), c->retry_after, 0, &v);
		if (v.action != c->action)
			fail_msg("case %zu (HTTP %ld): action %d, expected %d", i, c->status,
			         v.action, c->action);
		assert_string_equal(v.label, c->label);
		assert_int_equal(v.retry_after_ms, c->retry_after_ms);
		if (c->action == POLICY_OK)
			assert_string_equal(v.conversation_id, c->reason);
		else
			assert_string_equal(v.reason, c->reason);
	}
}

static void test_dialer_policy_transport(void **state)
{
	static const struct {
		int code;
		const char *error;
		bool sent;
		enum policy_action action;
		const char *reason;
	} cases[] = {
	    /* nothing was sent: retry */
	    {CURLE_COULDNT_CONNECT, "Connection refused", false, POLICY_RETRY,
	     "connect failed: Connection refused"},
	    {CURLE_OPERATION_TIMEDOUT, "Connection timed out", false, POLICY_RETRY,
	     "connect failed: Connection timed out"},
	    {CURLE_SEND_ERROR, "Connection reset by peer", false, POLICY_RETRY,
	     "connect failed: Connection reset by peer"},
	    /* failures before a connection existed cannot have sent anything, whatever the flag
	     * says */
	    {CURLE_COULDNT_CONNECT, "", true, POLICY_RETRY, NULL},
	    {CURLE_COULDNT_RESOLVE_HOST, NULL, true, POLICY_RETRY, NULL},
	    {CURLE_COULDNT_RESOLVE_PROXY, "no proxy", true, POLICY_RETRY, NULL},
	    {CURLE_SSL_CONNECT_ERROR, "handshake", true, POLICY_RETRY, NULL},
	    /* after the request left: a timeout or a reset is ambiguous, never retried */
	    {CURLE_OPERATION_TIMEDOUT, "Operation timed out", true, POLICY_UNKNOWN,
	     "dial_outcome_unknown"},
	    {CURLE_RECV_ERROR, "Connection reset by peer", true, POLICY_UNKNOWN,
	     "dial_outcome_unknown"},
	    {CURLE_SEND_ERROR, "Broken pipe", true, POLICY_UNKNOWN, "dial_outcome_unknown"},
	    {CURLE_GOT_NOTHING, "", true, POLICY_UNKNOWN, "dial_outcome_unknown"},
	    {CURLE_PARTIAL_FILE, "", true, POLICY_UNKNOWN, "dial_outcome_unknown"},
	    {CURLE_WRITE_ERROR, "", true, POLICY_UNKNOWN, "dial_outcome_unknown"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct policy_verdict v;

		policy_classify_transport(cases[i].code, cases[i].error, cases[i].sent, &v);
		if (v.action != cases[i].action)
			fail_msg("case %zu (curl %d, sent %d): action %d, expected %d", i,
			         cases[i].code, cases[i].sent, v.action, cases[i].action);
		assert_string_equal(v.label, cases[i].action == POLICY_RETRY ? "connect"
		                                                             : "outcome_unknown");
		assert_int_equal(v.retry_after_ms, -1);
		if (cases[i].reason)
			assert_string_equal(v.reason, cases[i].reason);
	}
}

static void test_dialer_policy_retry_after(void **state)
{
	/* Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
	int64_t now = 784111777000LL - 5000;

	(void)state;
	assert_int_equal(policy_parse_retry_after("0", now), 0);
	assert_int_equal(policy_parse_retry_after(" 12\r\n", now), 12000);
	assert_int_equal(policy_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), 5000);
	assert_int_equal(policy_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 60000), 0);
	assert_int_equal(policy_parse_retry_after("-1", now), -1);
	assert_int_equal(policy_parse_retry_after("12abc", now), -1);
	assert_int_equal(policy_parse_retry_after("soon", now), -1);
	assert_int_equal(policy_parse_retry_after(NULL, now), -1);
}

static void msg(const char *body, char *out, size_t size)
{
	policy_api_message(body, strlen(body), out, size);
}

static void test_dialer_policy_api_message(void **state)
{
	char out[64];

	(void)state;
	msg("{\"message\":\"m\",\"detail\":\"d\"}", out, sizeof out);
	assert_string_equal(out, "m");
	msg("\"just a string\"", out, sizeof out);
	assert_string_equal(out, "just a string");
	msg("{\"detail\":{\"status\":\"only_status\"}}", out, sizeof out);
	assert_string_equal(out, "only_status");
	msg("line1\nline2", out, sizeof out);
	assert_string_equal(out, "line1 line2");
	msg("", out, sizeof out);
	assert_string_equal(out, "");
	/* cut at the buffer without splitting a UTF-8 sequence (é = 2 bytes) */
	msg("{\"message\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", out, 6);
	assert_string_equal(out, "\xc3\xa9\xc3\xa9");
}

static void test_dialer_policy_bucket(void **state)
{
	struct policy_bucket b;
	int taken = 0;

	(void)state;
	policy_bucket_init(&b, 10, 10, 0);
	while (policy_bucket_take(&b, 0))
		taken++;
	assert_int_equal(taken, 10); /* the burst */
	assert_false(policy_bucket_ready(&b, 0));
	assert_in_range(policy_bucket_wait_ms(&b, 0), 99, 101);
	assert_false(policy_bucket_take(&b, 50));
	assert_true(policy_bucket_take(&b, 100)); /* one token per 100 ms */
	assert_false(policy_bucket_take(&b, 100));
	/* over a long idle time the bucket holds at most the burst */
	taken = 0;
	while (policy_bucket_take(&b, 100000))
		taken++;
	assert_int_equal(taken, 10);
	/* rate 0: unlimited */
	policy_bucket_init(&b, 0, 0, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(policy_bucket_take(&b, 0));
	assert_int_equal(policy_bucket_wait_ms(&b, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_policy_http_table),
	    cmocka_unit_test(test_dialer_policy_transport),
	    cmocka_unit_test(test_dialer_policy_retry_after),
	    cmocka_unit_test(test_dialer_policy_api_message),
	    cmocka_unit_test(test_dialer_policy_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
