/* test_ingress_read: GET /calls/{call_sid} against rows in a real Postgres schema: the call and
 * its transcript in sequence order, 404, 401; and with the database down, reads answer 503 while
 * webhooks are still accepted (the publish paths never touch Postgres). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "ird."

struct env {
	char schema[64];
	struct ts_broker broker;
	struct it_ingress in;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	char url[600], schema[100];
	const char *extra[] = {url, schema, NULL};

	ts_pg_schema_new("ingress_read", true, e->schema, sizeof e->schema);
	ts_pg_exec(e->schema,
	           "INSERT INTO calls (call_sid, conversation_id, driver_id, trip_id, status, "
	           "call_start_time) VALUES ('EL_1001_2025-11-21T10:30:00Z', 'conv_a', '1001', "
	           "'TRIP-1', 'completed', '2025-11-21T10:30:05Z'), "
	           "('EL_1002_2025-11-21T10:30:00Z', NULL, '1002', NULL, 'in_progress', NULL), "
	           "('EL_1003_x', 'conv_c', NULL, NULL, 'failed', NULL)");
	/* inserted out of order: the answer must be in sequence order */
	ts_pg_exec(e->schema, "INSERT INTO call_transcriptions (conversation_id, speaker, message, "
	                      "sequence_number) VALUES ('conv_a', 'user', 'second', 2), "
	                      "('conv_a', 'agent', 'first', 1), ('conv_a', 'agent', 'third', 3), "
	                      "('conv_c', 'agent', 'other call', 1)");
	ts_pg_exec(e->schema,
	           "UPDATE calls SET failure_reason = 'busy' WHERE call_sid = 'EL_1003_x'");
	snprintf(url, sizeof url, "DATABASE_URL=%s", ts_pg_url());
	snprintf(schema, sizeof schema, "DB_SCHEMA=%s", e->schema);
	ts_broker_start(&e->broker, PREFIX, 1);
	it_ingress_start(&e->in, &e->broker, PREFIX, extra, true);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	int rc = it_ingress_stop(&e->in, 20000);

	ts_broker_stop(&e->broker);
	ts_pg_schema_drop(e->schema);
	free(e);
	assert_int_equal(rc, 0);
	return 0;
}

static json_t *get_call(const struct env *e, const char *path, long want)
{
	const char *headers[] = {IT_AUTH, NULL};
	struct ts_http_resp resp;
	json_t *root;

	ts_http("GET", it_url(&e->in, path), headers, NULL, 0, &resp);
	if (resp.status != want)
		fail_msg("GET %s: %ld %s (want %ld)", path, resp.status, resp.body, want);
	root = json_loads(resp.body, 0, NULL);
	ts_http_resp_free(&resp);
	assert_non_null(root);
	return root;
}

static const char *str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

static void test_read_call_with_transcript(void **state)
{
	struct env *e = *state;
	json_t *root = get_call(e, "/calls/EL_1001_2025-11-21T10:30:00Z", 200);
	json_t *call = json_object_get(root, "call"), *tr = json_object_get(root, "transcript");
	static const char *const want[][2] = {
	    {"agent", "first"}, {"user", "second"}, {"agent", "third"}};

	assert_string_equal(str(call, "call_sid"), "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(str(call, "conversation_id"), "conv_a");
	assert_string_equal(str(call, "driver_id"), "1001");
	assert_string_equal(str(call, "trip_id"), "TRIP-1");
	assert_string_equal(str(call, "status"), "completed");
	assert_string_equal(str(call, "call_start_time"), "2025-11-21T10:30:05.000Z");
	assert_true(json_is_null(json_object_get(call, "call_end_time")));
	assert_non_null(str(call, "created_at"));
	assert_int_equal(json_array_size(tr), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *line = json_array_get(tr, i);

		assert_int_equal(json_integer_value(json_object_get(line, "sequence_number")),
		                 (json_int_t)i + 1);
		assert_string_equal(str(line, "speaker"), want[i][0]);
		assert_string_equal(str(line, "message"), want[i][1]);
		assert_non_null(str(line, "created_at"));
	}
	json_decref(root);
}

static void test_read_call_without_conversation(void **state)
{
	struct env *e = *state;
	json_t *root = get_call(e, "/calls/EL_1002_2025-11-21T10:30:00Z", 200);
	json_t *call = json_object_get(root, "call");

	assert_true(json_is_null(json_object_get(call, "conversation_id")));
	assert_true(json_is_null(json_object_get(call, "trip_id")));
	assert_string_equal(str(call, "status"), "in_progress");
	assert_int_equal(json_array_size(json_object_get(root, "transcript")), 0);
	json_decref(root);

	root = get_call(e, "/calls/EL_1003_x", 200);
	call = json_object_get(root, "call");
	assert_string_equal(str(call, "status"), "failed");
	assert_string_equal(str(call, "failure_reason"), "busy");
	assert_true(json_is_null(json_object_get(call, "driver_id")));
	assert_int_equal(json_array_size(json_object_get(root, "transcript")), 1);
	json_decref(root);
}

static void test_read_refusals(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	const char *bad_auth[] = {"Authorization: Bearer nope-nope-nope-nope", NULL};
	json_t *root;

	root = get_call(e, "/calls/EL_9999_nope", 404);
	assert_non_null(str(root, "error"));
	json_decref(root);
	json_decref(get_call(e, "/calls/", 404));
	json_decref(get_call(e, "/calls/a/b", 404));
	/* percent-encoded path segments are decoded before the lookup */
	json_decref(get_call(e, "/calls/EL_1003%5Fx", 200));
	ts_http("GET", it_url(&e->in, "/calls/EL_1003_x"), NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	ts_http("GET", it_url(&e->in, "/calls/EL_1003_x"), bad_auth, NULL, 0, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	ts_http("DELETE", it_url(&e->in, "/calls/EL_1003_x"), NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 405);
	ts_http_resp_free(&resp);
}

/* Postgres unreachable: reads 503 (with Retry-After), webhooks and readiness unaffected. */
static void test_read_database_down(void **state)
{
	struct env *e = *state;
	struct it_ingress down;
	struct ts_http_resp resp;
	char url[200], retry[16], topic[256];
	const char *extra[] = {url, NULL};
	const char *headers[] = {IT_AUTH, NULL};
	static const char trans[] = "{\"call_sid\":\"EL_1001_2025-11-21T10:30:00Z\",\"speaker\":"
	                            "\"user\",\"message\":\"ok\"}";

	snprintf(url, sizeof url, "DATABASE_URL=postgresql://postgres@127.0.0.1:%u/postgres",
	         ts_free_port());
	it_ingress_start(&down, &e->broker, PREFIX, extra, true);
	ts_http("GET", it_url(&down, "/calls/EL_1001_2025-11-21T10:30:00Z"), headers, NULL, 0,
	        &resp);
	assert_int_equal(resp.status, 503);
	assert_true(it_header(resp.headers, "Retry-After", retry, sizeof retry));
	assert_non_null(strstr(resp.body, "database"));
	ts_http_resp_free(&resp);
	it_post_signed(&down, "/webhooks/elevenlabs/transcription", trans, IT_SECRET, time(NULL),
	               &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	ts_http("GET", it_url(&down, "/readyz"), NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	assert_int_equal(
	    it_count_key(&e->broker,
	                 ts_broker_topic(&e->broker, "webhooks.transcription", topic, sizeof topic),
	                 "EL_1001_2025-11-21T10:30:00Z"),
	    1);
	assert_int_equal(it_ingress_stop(&down, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_call_with_transcript),
	    cmocka_unit_test(test_read_call_without_conversation),
	    cmocka_unit_test(test_read_refusals),
	    cmocka_unit_test(test_read_database_down),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
