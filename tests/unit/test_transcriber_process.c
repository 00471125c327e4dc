/* test_transcriber_process: the transcriber's pure rules: wait windows, retry delays, post-call
 * parsing and the reconciliation plan. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "process.h"

static const struct tr_windows windows = {1000, 5000, 300};

static void test_transcriber_wait_windows(void **state)
{
	(void)state;
	assert_false(tr_wait_expired(&windows, TR_WAIT_UNKNOWN_CALL, 100, 1099));
	assert_true(tr_wait_expired(&windows, TR_WAIT_UNKNOWN_CALL, 100, 1100));
	assert_false(tr_wait_expired(&windows, TR_WAIT_NO_CONVERSATION, 100, 5099));
	assert_true(tr_wait_expired(&windows, TR_WAIT_NO_CONVERSATION, 100, 5100));
	assert_false(tr_wait_expired(&windows, TR_WAIT_GATE, 0, 299));
	assert_true(tr_wait_expired(&windows, TR_WAIT_GATE, 0, 300));
	assert_string_equal(tr_wait_reason(TR_WAIT_UNKNOWN_CALL), "unknown_call_sid");
	assert_string_equal(tr_wait_reason(TR_WAIT_NO_CONVERSATION), "missing_conversation_id");
	assert_string_equal(tr_wait_reason(TR_WAIT_GATE), "post_call_gate");
}

static void test_transcriber_retry_delay_grows_and_caps(void **state)
{
	uint64_t rng = 42;

	(void)state;
	for (int round = 0; round < 200; round++) {
		long d1 = tr_retry_delay_ms(100, 2000, 1, &rng);
		long d3 = tr_retry_delay_ms(100, 2000, 3, &rng);
		long d9 = tr_retry_delay_ms(100, 2000, 9, &rng);

		assert_in_range(d1, 75, 125);    /* 100 +- 25% */
		assert_in_range(d3, 300, 500);   /* 400 +- 25% */
		assert_in_range(d9, 1500, 2500); /* capped at 2000 +- 25% */
	}
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *root = json_loads(text, 0, &err);

	assert_non_null(root);
	return root;
}

static void test_transcriber_post_call_transcription(void **state)
{
	json_t *body =
	    parse("{\"type\":\"post_call_transcription\",\"event_timestamp\":1739537297,"
	          "\"data\":{\"conversation_id\":\"conv_1\",\"status\":\"done\",\"extra\":[1,2],"
	          "\"metadata\":{\"start_time_unix_secs\":1739537000,\"call_duration_secs\":22},"
	          "\"conversation_initiation_client_data\":{\"dynamic_variables\":{\"call_sid\":"
	          "\"EL_7_t\"}},"
	          "\"transcript\":[{\"role\":\"agent\",\"message\":\"Hello\"},"
	          "{\"role\":\"user\",\"message\":\"  \"},"
	          "{\"role\":\"user\",\"message\":null,\"tool_calls\":[]},"
	          "{\"role\":\"tool\",\"message\":\"x\"},"
	          "{\"role\":\"user\",\"message\":\"Hi there\"}]}}");
	struct tr_post_call pc;
	char err[128];

	(void)state;
	assert_int_equal(tr_post_call_parse(body, &pc, err, sizeof err), 0);
	assert_int_equal(pc.type, TR_PC_TRANSCRIPTION);
	assert_string_equal(pc.call_sid, "EL_7_t");
	assert_string_equal(pc.conversation_id, "conv_1");
	/* start + duration, not event_timestamp */
	assert_string_equal(pc.end_time, "2025-02-14T12:43:42.000Z");
	assert_int_equal(pc.nturns, 2);
	assert_int_equal(pc.turns[0].index, 0);
	assert_string_equal(pc.turns[0].speaker, "agent");
	assert_int_equal(pc.turns[1].index, 4);
	assert_string_equal(pc.turns[1].message, "Hi there");
	tr_post_call_clear(&pc);
	json_decref(body);
}

static void test_transcriber_post_call_end_time_fallback(void **state)
{
	json_t *body = parse("{\"type\":\"post_call_transcription\",\"event_timestamp\":1739537297,"
	                     "\"data\":{\"conversation_id\":\"c\",\"metadata\":{}}}");
	json_t *none = parse("{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":"
	                     "\"c\",\"metadata\":{\"start_time_unix_secs\":\"soon\"}}}");
	struct tr_post_call pc;
	char err[128];

	(void)state;
	assert_int_equal(tr_post_call_parse(body, &pc, err, sizeof err), 0);
	assert_string_equal(pc.end_time, "2025-02-14T12:48:17.000Z");
	assert_int_equal(pc.nturns, 0);
	tr_post_call_clear(&pc);
	assert_int_equal(tr_post_call_parse(none, &pc, err, sizeof err), 0);
	assert_string_equal(pc.end_time, ""); /* the database uses now() */
	tr_post_call_clear(&pc);
	json_decref(body);
	json_decref(none);
}

/* Absurd numbers (older messages, or a redrive) give no end time, and no undefined conversion
 * on the way (run under UBSan: scripts/build --sanitize undefined). */
static void test_transcriber_post_call_absurd_times(void **state)
{
	static const char *const bodies[] = {
	    "{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":\"c\","
	    "\"metadata\":{\"start_time_unix_secs\":1e300,\"call_duration_secs\":5}}}",
	    "{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":\"c\","
	    "\"metadata\":{\"start_time_unix_secs\":1763721000,\"call_duration_secs\":1e308}}}",
	    "{\"type\":\"post_call_transcription\",\"event_timestamp\":1e300,\"data\":{"
	    "\"conversation_id\":\"c\",\"metadata\":{}}}",
	    "{\"type\":\"post_call_transcription\",\"event_timestamp\":-1e300,\"data\":{"
	    "\"conversation_id\":\"c\",\"metadata\":{}}}",
	};
	struct tr_post_call pc;
	char err[128];

	(void)state;
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		json_t *body = parse(bodies[i]);

		assert_int_equal(tr_post_call_parse(body, &pc, err, sizeof err), 0);
		assert_string_equal(pc.end_time, "");
		tr_post_call_clear(&pc);
		json_decref(body);
	}
	{
		/* a negative duration counts as none: the end is the start */
		json_t *body = parse(
		    "{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":\"c\","
		    "\"metadata\":{\"start_time_unix_secs\":1739537000,\"call_duration_secs\":-9}}"
		    "}");

		assert_int_equal(tr_post_call_parse(body, &pc, err, sizeof err), 0);
		assert_string_equal(pc.end_time, "2025-02-14T12:43:20.000Z");
		tr_post_call_clear(&pc);
		json_decref(body);
	}
}

/* Table: bodies and what parsing must say. */
static void test_transcriber_post_call_types_and_errors(void **state)
{
	static const struct {
		const char *body;
		int rc;
		enum tr_pc_type type;
		const char *expect; /* error substring, or failure reason */
	} cases[] = {
	    {"{\"type\":\"post_call_transcription\"}", -1, TR_PC_TRANSCRIPTION, "'data'"},
	    {"{\"type\":\"post_call_transcription\",\"data\":{}}", -1, TR_PC_TRANSCRIPTION,
	     "data.conversation_id"},
	    {"{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":7}}", -1,
	     TR_PC_TRANSCRIPTION, "data.conversation_id"},
	    {"{\"type\":\"call_initiation_failure\",\"data\":{\"failure_reason\":\"busy\"}}", 0,
	     TR_PC_INITIATION_FAILURE, "call_initiation_failure: busy"},
	    {"{\"type\":\"call_initiation_failure\",\"data\":{}}", 0, TR_PC_INITIATION_FAILURE,
	     "call_initiation_failure"},
	    {"{\"type\":\"call_initiation_failure\"}", -1, TR_PC_INITIATION_FAILURE, "'data'"},
	    {"{\"type\":\"post_call_audio\",\"data\":{\"full_audio\":\"AAAA\"}}", 0, TR_PC_AUDIO,
	     ""},
	    {"{\"type\":\"something_new\"}", 0, TR_PC_UNKNOWN, ""},
	    {"{\"data\":{}}", 0, TR_PC_UNKNOWN, ""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		json_t *body = parse(cases[i].body);
		struct tr_post_call pc;
		char err[128] = "";
		int rc = tr_post_call_parse(body, &pc, err, sizeof err);

		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(pc.type, cases[i].type);
		if (rc < 0)
			assert_non_null(strstr(err, cases[i].expect));
		else if (cases[i].type == TR_PC_INITIATION_FAILURE)
			assert_string_equal(pc.failure_reason, cases[i].expect);
		tr_post_call_clear(&pc);
		json_decref(body);
	}
}

/* ---- reconciliation ---- */

static const struct tr_turn turns[] = {
    {0, "agent", "Hello, this is dispatch."},
    {1, "user", "Hi."},
    {3, "agent", "Are you on schedule?"},
    {4, "user", "Yes."},
    {6, "agent", "Thanks, bye."},
};
#define NTURNS (sizeof turns / sizeof turns[0])

static size_t plan(const struct tr_stored *stored, size_t n, size_t *append, size_t *gaps)
{
	return tr_reconcile_plan(stored, n, turns, NTURNS, "conv", append, gaps);
}

static void test_transcriber_reconcile_nothing_stored(void **state)
{
	size_t append[NTURNS], gaps, n = plan(NULL, 0, append, &gaps);

	(void)state;
	assert_int_equal(n, NTURNS);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(append[i], i);
	assert_int_equal(gaps, 0);
}

static void test_transcriber_reconcile_all_stored(void **state)
{
	const struct tr_stored stored[] = {
	    {"agent", "Hello, this is dispatch.", "e1"}, {"user", " Hi. ", "e2"},
	    {"agent", "Are you on schedule?", "e3"},     {"user", "Yes.", "e4"},
	    {"agent", "Thanks, bye.\n", "e5"},
	};
	size_t append[NTURNS], gaps;

	(void)state;
	assert_int_equal(plan(stored, 5, append, &gaps), 0);
	assert_int_equal(gaps, 0);
}

static void test_transcriber_reconcile_tail_missing(void **state)
{
	const struct tr_stored stored[] = {
	    {"agent", "Hello, this is dispatch.", "e1"},
	    {"user", "Hi.", "e2"},
	    {"agent", "Are you on schedule?", "e3"},
	};
	size_t append[NTURNS], gaps;

	(void)state;
	assert_int_equal(plan(stored, 3, append, &gaps), 2);
	assert_int_equal(append[0], 3);
	assert_int_equal(append[1], 4);
	assert_int_equal(gaps, 0);
}

static void test_transcriber_reconcile_middle_missing_counts_gap(void **state)
{
	const struct tr_stored stored[] = {
	    {"agent", "Hello, this is dispatch.", "e1"},
	    {"agent", "Are you on schedule?", "e3"},
	    {"user", "Yes.", "e4"},
	};
	size_t append[NTURNS], gaps;

	(void)state;
	assert_int_equal(plan(stored, 3, append, &gaps), 1);
	assert_int_equal(append[0], 4);
	assert_int_equal(gaps, 1); /* "Hi." was missed but cannot be appended in order */
}

static void test_transcriber_reconcile_same_text_other_speaker(void **state)
{
	const struct tr_stored stored[] = {{"user", "Hello, this is dispatch.", "e1"}};
	size_t append[NTURNS], gaps;

	(void)state;
	/* no match: the texts differ from the final ones, so the first 1 is taken as stored */
	assert_int_equal(plan(stored, 1, append, &gaps), NTURNS - 1);
	assert_int_equal(append[0], 1);
}

static void test_transcriber_reconcile_paraphrased_lines(void **state)
{
	const struct tr_stored stored[] = {
	    {"agent", "hello this is dispatch", "e1"},
	    {"user", "hi", "e2"},
	};
	size_t append[NTURNS], gaps;

	(void)state;
	assert_int_equal(plan(stored, 2, append, &gaps), 3);
	assert_int_equal(append[0], 2);
	assert_int_equal(gaps, 0);
}

static void test_transcriber_reconcile_is_idempotent(void **state)
{
	char ids[2][64];
	struct tr_stored stored[4] = {
	    {"agent", "Hello, this is dispatch.", "e1"},
	    {"user", "Hi.", "e2"},
	};
	size_t append[NTURNS], gaps, n;

	(void)state;
	n = plan(stored, 2, append, &gaps);
	assert_int_equal(n, 3);
	/* store two of the three reconciled copies, as the first run would */
	for (size_t i = 0; i < 2; i++) {
		tr_reconciled_event_id("conv", turns[append[i]].index, ids[i], sizeof ids[i]);
		stored[2 + i] =
		    (struct tr_stored){turns[append[i]].speaker, turns[append[i]].message, ids[i]};
	}
	assert_string_equal(ids[0], "postcall:conv:3");
	n = plan(stored, 4, append, &gaps);
	assert_int_equal(n, 1);
	assert_int_equal(append[0], 4);
	/* copies are matched by their index even when their text was changed since */
	stored[3].message = "edited";
	assert_int_equal(plan(stored, 4, append, &gaps), 1);
	/* another conversation's copies do not count */
	tr_reconciled_event_id("other", 4, ids[1], sizeof ids[1]);
	stored[3].event_id = ids[1];
	stored[3].speaker = "agent";
	stored[3].message = "Thanks, bye.";
	n = plan(stored, 4, append, &gaps);
	assert_int_equal(n, 0);    /* ...but its text matches the last turn */
	assert_int_equal(gaps, 1); /* and "Yes." is missing before it */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_wait_windows),
	    cmocka_unit_test(test_transcriber_retry_delay_grows_and_caps),
	    cmocka_unit_test(test_transcriber_post_call_transcription),
	    cmocka_unit_test(test_transcriber_post_call_end_time_fallback),
	    cmocka_unit_test(test_transcriber_post_call_absurd_times),
	    cmocka_unit_test(test_transcriber_post_call_types_and_errors),
	    cmocka_unit_test(test_transcriber_reconcile_nothing_stored),
	    cmocka_unit_test(test_transcriber_reconcile_all_stored),
	    cmocka_unit_test(test_transcriber_reconcile_tail_missing),
	    cmocka_unit_test(test_transcriber_reconcile_middle_missing_counts_gap),
	    cmocka_unit_test(test_transcriber_reconcile_same_text_other_speaker),
	    cmocka_unit_test(test_transcriber_reconcile_paraphrased_lines),
	    cmocka_unit_test(test_transcriber_reconcile_is_idempotent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
