/* test_codec: round trips of the three topic messages, codec_dump and the field getters (every
 * decode error, naming the field: test_codec_decode_errors.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

/* --- round trips --- */

static void test_codec_call_requested_round_trip(void **state)
{
	json_t *violations = json_pack("{s:s, s:[]}", "tripId", "T-9", "violationDetails");
	struct codec_call_requested in = {
	    .call_sid = "EL_7_2025-11-21T10:30:00Z",
	    .driver_id = "7",
	    .driver_name = "Zoë Ünïcode",
	    .phone_number = "+15550000007",
	    .trip_id = "T-9",
	    .call_type = "check_in",
	    .custom_rules = "line one\nline \"two\"",
	    .violations = violations,
	    .requested_at = "2025-11-21T10:30:00.123Z",
	};
	struct codec_call_requested out;
	char err[256], *buf;
	json_t *root;
	size_t len;

	(void)state;
	root = codec_call_requested_encode(&in);
	assert_non_null(root);
	buf = codec_dump(root, &len);
	assert_non_null(buf);
	assert_int_equal(len, strlen(buf));
	assert_null(strchr(buf, '\n')); /* compact: one line */
	assert_int_equal(codec_call_requested_decode(buf, len, &out, err, sizeof err), 0);
	assert_non_null(out.root);
	assert_string_equal(out.call_sid, in.call_sid);
	assert_string_equal(out.driver_id, in.driver_id);
	assert_string_equal(out.driver_name, in.driver_name);
	assert_string_equal(out.phone_number, in.phone_number);
	assert_string_equal(out.trip_id, in.trip_id);
	assert_string_equal(out.call_type, in.call_type);
	assert_string_equal(out.custom_rules, in.custom_rules);
	assert_string_equal(out.requested_at, in.requested_at);
	assert_true(json_equal(out.violations, violations));
	codec_call_requested_clear(&out);
	assert_null(out.root);
	codec_call_requested_clear(&out); /* twice is fine */
	free(buf);
	json_decref(root);

	/* Optional fields unset or empty go out as null and come back NULL. */
	in.trip_id = NULL;
	in.call_type = "";
	in.custom_rules = NULL;
	in.violations = NULL;
	root = codec_call_requested_encode(&in);
	assert_non_null(root);
	assert_true(json_is_null(json_object_get(root, "trip_id")));
	assert_true(json_is_null(json_object_get(root, "call_type")));
	assert_true(json_is_null(json_object_get(root, "violations")));
	buf = codec_dump(root, &len);
	assert_int_equal(codec_call_requested_decode(buf, len, &out, err, sizeof err), 0);
	assert_null(out.trip_id);
	assert_null(out.call_type);
	assert_null(out.custom_rules);
	assert_null(out.violations);
	codec_call_requested_clear(&out);
	free(buf);
	json_decref(root);

	/* A required field unset: nothing to encode. */
	in.driver_name = NULL;
	assert_null(codec_call_requested_encode(&in));
	json_decref(violations);
}

static void test_codec_transcription_round_trip(void **state)
{
	static const char *const speakers[] = {"agent", "user"};

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct codec_transcription in = {
		    .event_id = "evt-42",
		    .received_at = "2025-11-21T10:31:00Z",
		    .call_sid = "EL_42_2025-11-21T10:30:00Z",
		    .speaker = speakers[i],
		    .message = "Copy that \xe2\x9c\x93",
		};
		struct codec_transcription out;
		json_t *root = codec_transcription_encode(&in), *again;
		size_t len;
		char err[256], *buf = codec_dump(root, &len);

		assert_int_equal(codec_transcription_decode(buf, len, &out, err, sizeof err), 0);
		assert_string_equal(out.event_id, in.event_id);
		assert_string_equal(out.received_at, in.received_at);
		assert_string_equal(out.call_sid, in.call_sid);
		assert_string_equal(out.speaker, in.speaker);
		assert_string_equal(out.message, in.message);
		/* the same message stamped in place onto a webhook body with extra fields */
		again = json_pack("{s:s, s:s, s:s, s:s, s:i}", "extra", "dropped", "call_sid",
		                  in.call_sid, "speaker", in.speaker, "message", in.message,
		                  "event_id", 7);
		assert_non_null(again);
		assert_ptr_equal(codec_transcription_stamp(again, in.event_id, in.received_at),
		                 again);
		assert_true(json_equal(again, root));
		json_decref(again); /* the reference stamp returned */
		assert_null(codec_transcription_stamp(again, NULL, in.received_at));
		json_decref(again);
		codec_transcription_clear(&out);
		free(buf);
		json_decref(root);
		in.message = "not UTF-8 \xff";
		assert_null(codec_transcription_encode(&in));
		in.message = NULL;
		assert_null(codec_transcription_encode(&in));
	}
}

/* codec_dump writes what json_dumps would, for messages smaller and much larger than its first
 * buffer, and refuses what json_dumps refuses. */
static void test_codec_dump_matches_jansson(void **state)
{
	static char big[20000];

	(void)state;
	for (size_t n = 0; n < sizeof big - 1; n = n * 3 + 1) {
		json_t *root;
		char *want, *got;
		size_t len = 0;

		memset(big, 'x', n);
		big[n] = '\0';
		if (n > 2)
			big[n / 2] = '"'; /* an escape in the middle */
		root = json_pack("{s:s, s:i, s:[s, n]}", "text", big, "n", (int)n, "list",
		                 "a\xc3\xa9");
		assert_non_null(root);
		want = json_dumps(root, JSON_COMPACT);
		got = codec_dump(root, &len);
		assert_non_null(got);
		assert_string_equal(got, want);
		assert_int_equal(len, strlen(want));
		free(want);
		free(got);
		json_decref(root);
	}
	{
		json_t *str = json_string("not a container");

		assert_null(codec_dump(str, NULL));
		json_decref(str);
		assert_null(codec_dump(NULL, NULL));
	}
}

static void test_codec_post_call_round_trip(void **state)
{
	json_t *body =
	    json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "type", "post_call_transcription", "data",
	              "conversation_id", "conv_9", "transcript", "role", "agent", "message", "hi");
	struct codec_post_call in = {.event_id = "evt-9",
	                             .received_at = "2025-11-21T10:40:00Z",
	                             .call_sid = NULL,
	                             .body = body};
	struct codec_post_call out;
	char err[256], *buf;
	json_t *root;
	size_t len;

	(void)state;
	/* Without a call_sid (a webhook that carried none): null, decoded as NULL. */
	root = codec_post_call_encode(&in);
	assert_non_null(root);
	assert_true(json_is_null(json_object_get(root, "call_sid")));
	buf = codec_dump(root, &len);
	assert_int_equal(codec_post_call_decode(buf, len, &out, err, sizeof err), 0);
	assert_null(out.call_sid);
	assert_string_equal(out.event_id, "evt-9");
	assert_string_equal(out.received_at, "2025-11-21T10:40:00Z");
	assert_true(json_equal(out.body, body));
	codec_post_call_clear(&out);
	free(buf);
	json_decref(root);

	in.call_sid = "EL_9_x";
	root = codec_post_call_encode(&in);
	buf = codec_dump(root, &len);
	assert_int_equal(codec_post_call_decode(buf, len, &out, err, sizeof err), 0);
	assert_string_equal(out.call_sid, "EL_9_x");
	codec_post_call_clear(&out);
	free(buf);
	json_decref(root);

	in.body = NULL;
	assert_null(codec_post_call_encode(&in));
	json_decref(body);
}

static void test_codec_getters(void **state)
{
	json_t *obj = json_pack("{s:s, s:i, s:{}, s:[], s:n}", "s", "abc", "i", 1, "o", "a", "x");
	json_t *arr = json_pack("[]");
	const char *s = "untouched";
	json_t *v = (json_t *)1;
	char err[128];

	(void)state;
	assert_int_equal(codec_get_str(obj, "s", true, 0, &s, err, sizeof err), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(codec_get_str(obj, "s", true, 3, &s, err, sizeof err), 0);
	assert_int_equal(codec_get_str(obj, "s", true, 2, &s, err, sizeof err), -1);
	assert_string_equal(err, "field 's' is too long (3 bytes, max 2)");
	assert_int_equal(codec_get_str(obj, "nope", false, 0, &s, err, sizeof err), 0);
	assert_null(s);
	assert_int_equal(codec_get_str(obj, "x", false, 0, &s, err, sizeof err), 0);
	assert_null(s);
	assert_int_equal(codec_get_str(obj, "nope", true, 0, &s, err, sizeof err), -1);
	assert_string_equal(err, "field 'nope' is missing");
	assert_int_equal(codec_get_str(obj, "i", false, 0, &s, err, sizeof err), -1);
	assert_string_equal(err, "field 'i' must be a string");
	assert_int_equal(codec_get_str(arr, "s", true, 0, &s, err, sizeof err), -1);
	assert_string_equal(err, "field 's': not inside a JSON object");

	assert_int_equal(codec_get_obj(obj, "o", true, &v, err, sizeof err), 0);
	assert_true(json_is_object(v));
	assert_int_equal(codec_get_obj(obj, "a", true, &v, err, sizeof err), -1);
	assert_string_equal(err, "field 'a' must be an object");
	assert_int_equal(codec_get_obj(obj, "nope", false, &v, err, sizeof err), 0);
	assert_null(v);
	assert_int_equal(codec_get_obj(obj, "nope", true, &v, err, sizeof err), -1);
	assert_string_equal(err, "field 'nope' is missing");

	assert_int_equal(codec_get_arr(obj, "a", true, &v, err, sizeof err), 0);
	assert_true(json_is_array(v));
	assert_int_equal(codec_get_arr(obj, "o", true, &v, err, sizeof err), -1);
	assert_string_equal(err, "field 'o' must be an array");
	assert_int_equal(codec_get_arr(obj, "x", false, &v, err, sizeof err), 0);
	assert_null(v);
	assert_int_equal(codec_get_arr(obj, "x", true, &v, err, sizeof err), -1);
	assert_string_equal(err, "field 'x' is missing");
	json_decref(obj);
	json_decref(arr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codec_call_requested_round_trip),
	    cmocka_unit_test(test_codec_transcription_round_trip),
	    cmocka_unit_test(test_codec_dump_matches_jansson),
	    cmocka_unit_test(test_codec_post_call_round_trip),
	    cmocka_unit_test(test_codec_getters),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
