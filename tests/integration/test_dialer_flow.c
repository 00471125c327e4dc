/* test_dialer_flow: the real dialer against the test's broker (a private devbroker, or real Kafka
 * in the kafka tier), a test schema and elevensim: one dial per call_sid (also when the request
 * is delivered 3 times), the audit row of a refused call, the retry policy (429/503 retried,
 * 4xx/500 not, a hang or a 502/504 leaves the outcome unknown: the call stays in_progress for its
 * post-call webhook or the sweeper, never dialled again), bad messages to the DLQ, committed
 * offsets surviving a restart, and the SIGTERM drain; and the per-call tool token handed to the
 * agent as the dynamic variable call_token. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calltoken.h"
#include "dialer_it.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX       "dfl."
#define TOKEN_SECRET "call-token-secret-dflow-01"

struct env {
	struct dit_stack st;
	struct dit_dialer dialer;
};

static const char *const dialer_env[] = {
    "DIALER_MAX_ATTEMPTS=3",       "DIALER_REQUEST_TIMEOUT_MS=1500",
    "DIALER_RETRY_AFTER_MAX_S=5",  "CALL_TOKEN_SECRET=" TOKEN_SECRET,
    "DIALER_CALL_TOKEN_TTL_S=600", NULL,
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);

	dit_stack_start(&e->st, "dflow", PREFIX, 3, NULL);
	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url,
	                 dialer_env);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	int rc = dit_dialer_stop(&e->dialer, SIGTERM, 20000);

	dit_stack_stop(&e->st);
	free(e);
	assert_true(rc == 0 || rc == -1);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void script(struct env *e, const char *call_sid, const char *answers)
{
	char json[512];

	snprintf(json, sizeof json, "{\"calls\": {\"%s\": {\"answers\": %s}}}", call_sid, answers);
	dit_sim_config(&e->st.sim, json);
}

static void test_dialer_flow_dials_once(void **state)
{
	struct env *e = *state;
	struct store_call c;
	struct ts_http_resp resp;
	json_t *call, *conv, *vars;
	char url[600];
	const char *hdr[] = {"xi-api-key: " DIT_API_KEY, NULL};

	dit_publish(&e->st.broker, PREFIX, "EL_1_ok", "1");
	assert_true(dit_wait_call(e->st.schema, "EL_1_ok", STORE_CALL_IN_PROGRESS, 15000));
	assert_true(dit_call(e->st.schema, "EL_1_ok", &c));
	call = dit_sim_call(&e->st.sim, "EL_1_ok");
	assert_int_equal(json_integer_value(json_object_get(call, "outbound_requests")), 1);
	assert_string_equal(c.conversation_id,
	                    json_string_value(json_object_get(call, "conversation_id")));
	assert_string_equal(c.driver_id, "1");
	assert_string_equal(c.trip_id, "TRIP-IT");
	assert_int_equal(c.dial_attempts, 1);
	assert_true(c.dial_attempted_at[0] != '\0');
	assert_true(c.call_start_time[0] != '\0');
	/* what the dialer sent, as elevensim saw it */
	snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", e->st.sim.url,
	         c.conversation_id);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	conv = json_loads(resp.body, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(conv, "agent_id")), DIT_AGENT);
	vars = json_object_get(json_object_get(conv, "conversation_initiation_client_data"),
	                       "dynamic_variables");
	assert_string_equal(json_string_value(json_object_get(vars, "call_sid")), "EL_1_ok");
	assert_string_equal(json_string_value(json_object_get(vars, "driver_name")),
	                    "Ada Lovelace");
	assert_string_equal(json_string_value(json_object_get(vars, "dispatcher_name")), "Maria");
	assert_string_equal(json_string_value(json_object_get(vars, "first_message")),
	                    "Hi Ada Lovelace, this is Maria, calling about 1 violation on trip "
	                    "TRIP-IT. Do you have a minute?");
	/* the agent got this call's tool token: good for EL_1_ok only, for about 600 s */
	{
		const char *tok = json_string_value(json_object_get(vars, "call_token"));
		struct calltoken_key *k = calltoken_key_new(TOKEN_SECRET);
		int64_t now = time(NULL);

		assert_non_null(tok);
		assert_non_null(k);
		assert_int_equal(calltoken_verify(k, tok, "EL_1_ok", now), CALLTOKEN_OK);
		assert_int_equal(calltoken_verify(k, tok, "EL_1_ok", now + 550), CALLTOKEN_OK);
		assert_int_equal(calltoken_verify(k, tok, "EL_1_ok", now + 660), CALLTOKEN_EXPIRED);
		assert_int_equal(calltoken_verify(k, tok, "EL_2_ok", now), CALLTOKEN_MISMATCH);
		calltoken_key_free(k);
	}
	assert_true(dit_metric(&e->dialer, "dialer_dials_succeeded_total") >= 1);
	assert_true(dit_metric(&e->dialer, "dialer_api_latency_seconds_count") >= 1);
	json_decref(conv);
	json_decref(call);
	ts_http_resp_free(&resp);
}

static void test_dialer_flow_redelivery_dials_once(void **state)
{
	struct env *e = *state;
	double dup0 = dit_metric(&e->dialer, "dialer_messages_total{result=\"already_dialled\"}");

	for (int i = 0; i < 3; i++)
		dit_publish(&e->st.broker, PREFIX, "EL_2_dup", "2");
	assert_true(dit_wait_call(e->st.schema, "EL_2_dup", STORE_CALL_IN_PROGRESS, 15000));
	for (int i = 0; i < 200; i++) {
		if (dit_metric(&e->dialer, "dialer_messages_total{result=\"already_dialled\"}") >=
		    dup0 + 2)
			break;
		ts_sleep_ms(50);
	}
	assert_true(dit_metric(&e->dialer, "dialer_messages_total{result=\"already_dialled\"}") >=
	            dup0 + 2);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_2_dup"), 1);
}

static void test_dialer_flow_refusal_keeps_audit_row(void **state)
{
	struct env *e = *state;
	struct store_call c;

	script(e, "EL_3_refused", "[\"success_false\"]");
	dit_publish(&e->st.broker, PREFIX, "EL_3_refused", "3");
	assert_true(dit_wait_call(e->st.schema, "EL_3_refused", STORE_CALL_FAILED, 15000));
	assert_true(dit_call(e->st.schema, "EL_3_refused", &c));
	assert_string_equal(c.driver_id, "3");
	assert_false(c.has_conversation_id);
	assert_string_equal(c.failure_reason, "Failed to initiate the call: number unreachable");
	assert_true(c.call_end_time[0] != '\0');
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_3_refused"), 1);
}

static void test_dialer_flow_retried_then_succeeds(void **state)
{
	struct env *e = *state;
	long long t0;

	script(e, "EL_4_429", "[\"429\", \"429\"]");
	script(e, "EL_4_503", "[\"503\", \"503\"]");
	t0 = now_ms();
	dit_publish(&e->st.broker, PREFIX, "EL_4_429", "41");
	dit_publish(&e->st.broker, PREFIX, "EL_4_503", "42");
	assert_true(dit_wait_call(e->st.schema, "EL_4_429", STORE_CALL_IN_PROGRESS, 15000));
	/* elevensim's Retry-After: 1 was honoured twice */
	assert_true(now_ms() - t0 >= 1900);
	assert_true(dit_wait_call(e->st.schema, "EL_4_503", STORE_CALL_IN_PROGRESS, 15000));
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_4_429"), 3);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_4_503"), 3);
	assert_true(dit_metric(&e->dialer, "dialer_dial_retries_total{reason=\"429\"}") >= 2);
	assert_true(dit_metric(&e->dialer, "dialer_dial_retries_total{reason=\"503\"}") >= 2);
}

static void test_dialer_flow_not_retried(void **state)
{
	static const struct {
		const char *sid, *answers, *reason;
	} cases[] = {
	    {"EL_5_400", "[\"400\"]", "HTTP 400: The agent cannot place this call"},
	    {"EL_5_422", "[\"422\"]", "HTTP 422: body.to_number: scripted validation error"},
	    {"EL_5_500", "[\"500\"]", "HTTP 500: Internal server error"},
	};
	struct env *e = *state;
	struct store_call c;

	for (size_t i = 0; i < 3; i++) {
		script(e, cases[i].sid, cases[i].answers);
		dit_publish(&e->st.broker, PREFIX, cases[i].sid, "5");
	}
	for (size_t i = 0; i < 3; i++) {
		assert_true(dit_wait_call(e->st.schema, cases[i].sid, STORE_CALL_FAILED, 15000));
		assert_true(dit_call(e->st.schema, cases[i].sid, &c));
		assert_string_equal(c.failure_reason, cases[i].reason);
	}
	ts_sleep_ms(700); /* longer than any retry delay of this dialer */
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(dit_sim_requests(&e->st.sim, cases[i].sid), 1);
}

static void test_dialer_flow_hang_is_outcome_unknown(void **state)
{
	static const struct {
		const char *sid, *answers;
	} cases[] = {
	    {"EL_6_hang", "[\"hang\"]"}, /* the request timeout runs out after sending */
	    {"EL_6_502", "[\"502\", \"ok\"]"},
	    {"EL_6_504", "[\"504\", \"ok\"]"},
	};
	struct env *e = *state;
	double before =
	    dit_metric(&e->dialer, "dialer_dials_failed_total{reason=\"outcome_unknown\"}");
	struct store_call c;

	for (size_t i = 0; i < 3; i++) {
		script(e, cases[i].sid, cases[i].answers);
		dit_publish(&e->st.broker, PREFIX, cases[i].sid, "6");
	}
	for (int i = 0; i < 300; i++) {
		if (dit_metric(&e->dialer,
		               "dialer_dials_failed_total{reason=\"outcome_unknown\"}") >=
		    before + 3)
			break;
		ts_sleep_ms(50);
	}
	assert_true(
	    dit_metric(&e->dialer, "dialer_dials_failed_total{reason=\"outcome_unknown\"}") >=
	    before + 3);
	ts_sleep_ms(700); /* longer than any retry delay of this dialer */
	for (size_t i = 0; i < 3; i++) {
		/* the phone may be ringing: left as a crash after the claim would leave it, for its
		 * post-call webhook or the sweeper (off here); never dialled again */
		assert_true(dit_call(e->st.schema, cases[i].sid, &c));
		assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
		assert_false(c.has_conversation_id);
		assert_true(c.dial_attempted_at[0] != '\0');
		assert_string_equal(c.failure_reason, "");
		assert_int_equal(dit_sim_requests(&e->st.sim, cases[i].sid), 1);
	}
}

static void test_dialer_flow_retries_exhausted(void **state)
{
	struct env *e = *state;
	struct store_call c;

	script(e, "EL_7_down", "[\"503\", \"503\", \"503\", \"503\"]");
	dit_publish(&e->st.broker, PREFIX, "EL_7_down", "7");
	assert_true(dit_wait_call(e->st.schema, "EL_7_down", STORE_CALL_FAILED, 15000));
	assert_true(dit_call(e->st.schema, "EL_7_down", &c));
	assert_string_equal(c.failure_reason,
	                    "retries exhausted after 3 attempts: HTTP 503: Service temporarily "
	                    "unavailable");
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_7_down"), 3);
}

static void test_dialer_flow_bad_message_to_dlq(void **state)
{
	struct env *e = *state;
	struct ts_kmsg *msgs = NULL;
	char topic[256], dlq[256];
	size_t n = 0;

	ts_broker_topic(&e->st.broker, "calls.requested", topic, sizeof topic);
	ts_broker_topic(&e->st.broker, "calls.requested.dlq", dlq, sizeof dlq);
	ts_kafka_produce(
	    e->st.broker.bootstrap, topic, "EL_8_bad", "{not json",
	    (const char *const[]){"traceparent", "00-abc-01", "reason", "stale", NULL});
	dit_publish(&e->st.broker, PREFIX, "EL_8_after", "8");
	assert_true(dit_wait_call(e->st.schema, "EL_8_after", STORE_CALL_IN_PROGRESS, 15000));
	for (int i = 0; i < 100 && n == 0; i++) {
		ts_kmsgs_free(msgs, n);
		n = ts_kafka_read_all(e->st.broker.bootstrap, dlq, &msgs);
		if (n == 0)
			ts_sleep_ms(100);
	}
	assert_int_equal(n, 1);
	assert_string_equal(msgs[0].key, "EL_8_bad");
	assert_string_equal(msgs[0].value, "{not json");
	assert_string_equal(ts_kmsg_header(&msgs[0], "reason"), "decode_error");
	assert_string_equal(ts_kmsg_header(&msgs[0], "source_topic"), topic);
	assert_non_null(ts_kmsg_header(&msgs[0], "source_offset"));
	assert_non_null(ts_kmsg_header(&msgs[0], "error"));
	/* the header set every worker writes (docs/design.md §4): the dialer once wrote attempts
	 * "1" always, dropped the original headers and had no dead_lettered_at */
	assert_string_equal(ts_kmsg_header(&msgs[0], "first_error"),
	                    ts_kmsg_header(&msgs[0], "error"));
	assert_string_equal(ts_kmsg_header(&msgs[0], "attempts"), "1");
	assert_non_null(ts_kmsg_header(&msgs[0], "source_partition"));
	assert_non_null(ts_kmsg_header(&msgs[0], "dead_lettered_at"));
	assert_string_equal(ts_kmsg_header(&msgs[0], "traceparent"), "00-abc-01");
	ts_kmsgs_free(msgs, n);
	assert_false(dit_call(e->st.schema, "EL_8_bad", &(struct store_call){0}));
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_8_bad"), 0);
}

static void test_dialer_flow_restart_resumes_after_commits(void **state)
{
	struct env *e = *state;
	json_t *before, *after;

	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
	before = dit_sim_totals(&e->st.sim);
	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url,
	                 dialer_env);
	dit_publish(&e->st.broker, PREFIX, "EL_9_new", "9");
	assert_true(dit_wait_call(e->st.schema, "EL_9_new", STORE_CALL_IN_PROGRESS, 20000));
	ts_sleep_ms(500);
	/* everything before was committed: nothing was read again, only the new request */
	assert_int_equal(dit_metric(&e->dialer, "dialer_messages_total{result=\"dialled\"}"), 1);
	assert_int_equal(
	    dit_metric(&e->dialer, "dialer_messages_total{result=\"already_dialled\"}"), 0);
	assert_int_equal(dit_metric(&e->dialer, "dialer_messages_total{result=\"dlq\"}"), 0);
	after = dit_sim_totals(&e->st.sim);
	assert_int_equal(json_integer_value(json_object_get(after, "outbound_requests")),
	                 json_integer_value(json_object_get(before, "outbound_requests")) + 1);
	json_decref(before);
	json_decref(after);
}

static void test_dialer_flow_sigterm_drains_in_flight(void **state)
{
	struct env *e = *state;
	long long t0;

	dit_sim_config(&e->st.sim, "{\"latency_ms\": 1000}");
	dit_publish(&e->st.broker, PREFIX, "EL_10_drain", "10");
	assert_true(dit_wait_requests(&e->st.sim, "EL_10_drain", 1, 15000));
	t0 = now_ms();
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
	/* it waited for the answer (about 1 s) and stored it before exiting */
	assert_true(now_ms() - t0 >= 500);
	assert_true(dit_wait_call(e->st.schema, "EL_10_drain", STORE_CALL_IN_PROGRESS, 100));
	dit_sim_config(&e->st.sim, "{\"latency_ms\": 0}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_flow_dials_once),
	    cmocka_unit_test(test_dialer_flow_redelivery_dials_once),
	    cmocka_unit_test(test_dialer_flow_refusal_keeps_audit_row),
	    cmocka_unit_test(test_dialer_flow_retried_then_succeeds),
	    cmocka_unit_test(test_dialer_flow_not_retried),
	    cmocka_unit_test(test_dialer_flow_hang_is_outcome_unknown),
	    cmocka_unit_test(test_dialer_flow_retries_exhausted),
	    cmocka_unit_test(test_dialer_flow_bad_message_to_dlq),
	    cmocka_unit_test(test_dialer_flow_restart_resumes_after_commits),
	    cmocka_unit_test(test_dialer_flow_sigterm_drains_in_flight),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
