/* test_transcriber_msg: decoding consumed messages (kinds, call_sid, order position from redrive
 * headers), the dead-letter header names, and the transcriber's configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "deadletter.h"
#include "msg.h"

#define LINES "p.webhooks.transcription"
#define POSTS "p.webhooks.post_call"

static struct tr_msg *decoded(const char *topic, const char *value, const char *const *headers,
                              size_t nheaders)
{
	struct tr_msg *m = tr_msg_new(topic, 3, 42, 1700000000000, "EL_1_x", value, strlen(value),
	                              headers, nheaders);

	assert_non_null(m);
	tr_msg_decode(m, LINES, POSTS);
	return m;
}

static void test_transcriber_msg_line(void **state)
{
	struct tr_msg *m =
	    decoded(LINES,
	            "{\"event_id\":\"e1\",\"received_at\":\"2025-11-21T10:00:00Z\","
	            "\"call_sid\":\"EL_1_x\",\"speaker\":\"user\",\"message\":\"Hi\","
	            "\"unknown\":true}",
	            NULL, 0);

	(void)state;
	assert_int_equal(m->kind, TR_MSG_LINE);
	assert_string_equal(m->call_sid, "EL_1_x");
	assert_string_equal(m->line.message, "Hi");
	assert_int_equal(m->order_partition, 3);
	assert_int_equal(m->order_offset, 42);
	tr_msg_free(m);
}

static void test_transcriber_msg_redriven_line_keeps_origin(void **state)
{
	const char *const headers[] = {"redrive_count", "1", "origin_partition", "3",
	                               "origin_offset", "7"};
	const char *const bad[] = {"origin_partition", "3", "origin_offset", "x7"};
	const char *value = "{\"event_id\":\"e1\",\"received_at\":\"2025-11-21T10:00:00Z\","
	                    "\"call_sid\":\"EL_1_x\",\"speaker\":\"agent\",\"message\":\"Hi\"}";
	struct tr_msg *m = decoded(LINES, value, headers, 3);

	(void)state;
	assert_int_equal(m->order_partition, 3);
	assert_int_equal(m->order_offset, 7);
	assert_string_equal(tr_msg_header(m, "redrive_count"), "1");
	assert_null(tr_msg_header(m, "absent"));
	tr_msg_free(m);
	m = decoded(LINES, value, bad, 2);
	assert_int_equal(m->order_offset, 42); /* unusable origin: its own position */
	tr_msg_free(m);
}

static void test_transcriber_msg_bad_values(void **state)
{
	static const struct {
		const char *topic, *value, *error;
	} cases[] = {
	    {LINES, "not json", "malformed JSON"},
	    {LINES, "[1]", "transcription message"},
	    {LINES,
	     "{\"event_id\":\"e\",\"received_at\":\"2025-11-21T10:00:00Z\",\"call_sid\":\"c\","
	     "\"speaker\":\"robot\",\"message\":\"m\"}",
	     "speaker"},
	    {LINES,
	     "{\"event_id\":\"e\",\"received_at\":\"2025-11-21T10:00:00Z\",\"speaker\":\"user\","
	     "\"message\":\"m\"}",
	     "call_sid"},
	    {POSTS, "{\"event_id\":\"e\",\"received_at\":\"2025-11-21T10:00:00Z\"}", "body"},
	    {POSTS,
	     "{\"event_id\":\"e\",\"received_at\":\"2025-11-21T10:00:00Z\",\"call_sid\":\"c\","
	     "\"body\":{\"type\":\"post_call_transcription\",\"data\":{}}}",
	     "data.conversation_id"},
	    {"other.topic", "{}", "unexpected topic"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct tr_msg *m = decoded(cases[i].topic, cases[i].value, NULL, 0);

		assert_int_equal(m->kind, TR_MSG_BAD);
		if (!strstr(m->error, cases[i].error))
			fail_msg("case %zu: error '%s' lacks '%s'", i, m->error, cases[i].error);
		assert_null(m->call_sid);
		tr_msg_free(m);
	}
}

static void test_transcriber_msg_post_call_sid_from_body(void **state)
{
	struct tr_msg *m = decoded(
	    POSTS,
	    "{\"event_id\":\"e\",\"received_at\":\"2025-11-21T10:00:00Z\",\"body\":{\"type\":"
	    "\"post_call_transcription\",\"data\":{\"conversation_id\":\"conv\","
	    "\"conversation_initiation_client_data\":{\"dynamic_variables\":{\"call_sid\":\"EL_9\"}"
	    "}}}}",
	    NULL, 0);

	(void)state;
	assert_int_equal(m->kind, TR_MSG_POST_CALL);
	assert_string_equal(m->call_sid, "EL_9");
	assert_int_equal(m->pc.type, TR_PC_TRANSCRIPTION);
	tr_msg_free(m);
}

static void test_transcriber_dlq_header_names(void **state)
{
	static const char *const ours[] = {"error",         "first_error",     "reason",
	                                   "attempts",      "source_topic",    "source_partition",
	                                   "source_offset", "dead_lettered_at"};

	(void)state;
	for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
		assert_true(deadletter_header(ours[i]));
	assert_false(deadletter_header("redrive_count"));
	assert_false(deadletter_header("origin_offset"));
	assert_false(deadletter_header("traceparent"));
}

static enum cfg_result load(struct tr_config *conf, char **argv, int argc, char *err, size_t size)
{
	int argi = 0;

	return tr_config_load(conf, argc, argv, &argi, err, size);
}

static void test_transcriber_config(void **state)
{
	struct tr_config conf;
	char err[256];
	char *ok[] = {"transcriber",
	              "--kafka-brokers",
	              "127.0.0.1:9",
	              "--database-url",
	              "postgresql://u@h/db",
	              "--batch-max",
	              "50",
	              "replay",
	              "--from",
	              "2025-11-21T10:00:00Z"};
	char *bad_from[] = {"transcriber", "--kafka-brokers", "b",        "--database-url",
	                    "d",           "--from",          "yesterday"};
	char *bad_listen[] = {"transcriber", "--kafka-brokers", "b",      "--database-url",
	                      "d",           "--http-listen",   "nowhere"};
	char *bad_batch[] = {"transcriber", "--kafka-brokers", "b", "--database-url",
	                     "d",           "--batch-max",     "0"};

	(void)state;
	unsetenv("TRANSCRIBER_GROUP");
	setenv("TRANSCRIBER_UNKNOWN_RETRY_MAX_MS", "1234", 1);
	assert_int_equal(load(&conf, ok, 10, err, sizeof err), CFG_OK);
	assert_int_equal(conf.batch_max, 50);
	assert_int_equal(conf.unknown_retry_max_ms, 1234);
	assert_string_equal(conf.group, "transcriber");
	assert_string_equal(conf.http_listen, "0.0.0.0:9102");
	assert_string_equal(conf.from, "2025-11-21T10:00:00Z");
	tr_config_free(&conf);
	unsetenv("TRANSCRIBER_UNKNOWN_RETRY_MAX_MS");

	assert_int_equal(load(&conf, bad_from, 7, err, sizeof err), CFG_ERROR);
	assert_non_null(strstr(err, "--from"));
	tr_config_free(&conf);
	assert_int_equal(load(&conf, bad_listen, 7, err, sizeof err), CFG_ERROR);
	assert_non_null(strstr(err, "HTTP_LISTEN"));
	tr_config_free(&conf);
	assert_int_equal(load(&conf, bad_batch, 7, err, sizeof err), CFG_ERROR);
	assert_non_null(strstr(err, "batch-max"));
	tr_config_free(&conf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_msg_line),
	    cmocka_unit_test(test_transcriber_msg_redriven_line_keeps_origin),
	    cmocka_unit_test(test_transcriber_msg_bad_values),
	    cmocka_unit_test(test_transcriber_msg_post_call_sid_from_body),
	    cmocka_unit_test(test_transcriber_dlq_header_names),
	    cmocka_unit_test(test_transcriber_config),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
