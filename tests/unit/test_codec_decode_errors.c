/* test_codec_decode_errors: every decode error of the three topic messages, naming the field,
 * unknown fields ignored, and malformed JSON (the round trips: test_codec.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"

/* --- the three messages behind one interface, so error tables cover them all alike --- */

typedef int decode_fn(const char *buf, size_t len, char *errstr, size_t errstr_size);

static int decode_call_requested(const char *buf, size_t len, char *errstr, size_t errstr_size)
{
	struct codec_call_requested m;
	int rc = codec_call_requested_decode(buf, len, &m, errstr, errstr_size);

	if (rc < 0)
		assert_null(m.root); /* nothing kept on failure */
	codec_call_requested_clear(&m);
	return rc;
}

static int decode_transcription(const char *buf, size_t len, char *errstr, size_t errstr_size)
{
	struct codec_transcription m;
	int rc = codec_transcription_decode(buf, len, &m, errstr, errstr_size);

	if (rc < 0)
		assert_null(m.root);
	codec_transcription_clear(&m);
	return rc;
}

static int decode_post_call(const char *buf, size_t len, char *errstr, size_t errstr_size)
{
	struct codec_post_call m;
	int rc = codec_post_call_decode(buf, len, &m, errstr, errstr_size);

	if (rc < 0)
		assert_null(m.root);
	codec_post_call_clear(&m);
	return rc;
}

static json_t *valid_call_requested(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:s, s:[{s:s, s:s}]}, s:s}",
	                 "call_sid", "EL_42_2025-11-21T10:30:00Z", "driver_id", "42", "driver_name",
	                 "Ann Driver", "phone_number", "+15551234567", "trip_id", "T-1",
	                 "call_type", "hos_violation", "custom_rules", "be brief", "violations",
	                 "tripId", "T-1", "violationDetails", "type", "hos", "description",
	                 "11h driving limit", "requested_at", "2025-11-21T10:30:00.000Z");
}

static json_t *valid_transcription(void)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "event_id",
	                 "6f1c2a4e-8d0b-4a57-9d3e-2b7c1e5f9a10", "received_at",
	                 "2025-11-21T10:31:00.250Z", "call_sid", "EL_42_2025-11-21T10:30:00Z",
	                 "speaker", "agent", "message", "Hello, this is dispatch.");
}

static json_t *valid_post_call(void)
{
	return json_pack("{s:s, s:s, s:s, s:{s:s, s:i, s:{s:s, s:s}}}", "event_id", "evt-1",
	                 "received_at", "2025-11-21T10:40:00Z", "call_sid",
	                 "EL_42_2025-11-21T10:30:00Z", "body", "type", "post_call_transcription",
	                 "event_timestamp", 1763721600, "data", "conversation_id", "conv_1",
	                 "status", "done");
}

struct message_kind {
	const char *name;
	json_t *(*valid)(void);
	decode_fn *decode;
};

static const struct message_kind kinds[] = {
    {"calls.requested", valid_call_requested, decode_call_requested},
    {"webhooks.transcription", valid_transcription, decode_transcription},
    {"webhooks.post_call", valid_post_call, decode_post_call},
};

/* Dumps root and decodes it as kind; returns the decoder's result, errstr filled on error. */
static int decode_json(const struct message_kind *k, const json_t *root, char *err, size_t size)
{
	size_t len = 0;
	char *buf = codec_dump(root, &len);
	int rc;

	assert_non_null(buf);
	err[0] = '\0';
	rc = k->decode(buf, len, err, size);
	free(buf);
	return rc;
}

/* --- every decode error, per field --- */

struct field_rule {
	size_t kind;
	const char *name;
	bool required;
	size_t max_len; /* 0: not a string field */
	bool is_time;
};

static const struct field_rule rules[] = {
    {0, "call_sid", true, CODEC_CALL_SID_MAX, false},
    {0, "driver_id", true, CODEC_ID_MAX, false},
    {0, "driver_name", true, 255, false},
    {0, "phone_number", true, 32, false},
    {0, "trip_id", false, CODEC_ID_MAX, false},
    {0, "call_type", false, 255, false},
    {0, "custom_rules", false, CODEC_MESSAGE_MAX, false},
    {0, "requested_at", true, 64, true},
    {1, "event_id", true, CODEC_ID_MAX, false},
    {1, "received_at", true, 64, true},
    {1, "call_sid", true, CODEC_CALL_SID_MAX, false},
    {1, "speaker", true, 16, false},
    {1, "message", true, CODEC_MESSAGE_MAX, false},
    {2, "event_id", true, CODEC_ID_MAX, false},
    {2, "received_at", true, 64, true},
    {2, "call_sid", false, CODEC_CALL_SID_MAX, false},
};

static void expect_error(const struct message_kind *k, json_t *root, const char *field,
                         const char *what)
{
	char err[512], want[128];

	if (decode_json(k, root, err, sizeof err) == 0)
		fail_msg("%s: field '%s' %s: decoded without error", k->name, field, what);
	snprintf(want, sizeof want, "field '%s' %s", field, what);
	if (strstr(err, want) == NULL)
		fail_msg("%s: '%s' does not contain '%s'", k->name, err, want);
}

static void expect_ok(const struct message_kind *k, json_t *root, const char *what)
{
	char err[512];

	if (decode_json(k, root, err, sizeof err) != 0)
		fail_msg("%s: %s: %s", k->name, what, err);
}

static void test_codec_string_field_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
		const struct field_rule *r = &rules[i];
		const struct message_kind *k = &kinds[r->kind];
		char *longer = malloc(r->max_len + 2);
		json_t *root;

		memset(longer, 'a', r->max_len + 1);
		longer[r->max_len + 1] = '\0';

		root = k->valid();
		expect_ok(k, root, "the valid message");
		json_object_del(root, r->name);
		if (r->required)
			expect_error(k, root, r->name, "is missing");
		else
			expect_ok(k, root, "optional field missing");
		json_object_set_new(root, r->name, json_null());
		if (r->required)
			expect_error(k, root, r->name, "is missing");
		else
			expect_ok(k, root, "optional field null");
		json_object_set_new(root, r->name, json_integer(42));
		expect_error(k, root, r->name, "must be a string");
		json_object_set_new(root, r->name, json_true());
		expect_error(k, root, r->name, "must be a string");
		json_object_set_new(root, r->name, json_pack("{s:s}", "a", "b"));
		expect_error(k, root, r->name, "must be a string");
		json_object_set_new(root, r->name, json_pack("[s]", "a"));
		expect_error(k, root, r->name, "must be a string");
		json_object_set_new(root, r->name, json_string(""));
		expect_error(k, root, r->name, "must not be empty");
		json_object_set_new(root, r->name, json_string(longer));
		expect_error(k, root, r->name, "is too long");
		if (r->is_time) {
			json_object_set_new(root, r->name, json_string("yesterday"));
			expect_error(k, root, r->name, "must be an ISO-8601 timestamp");
			json_object_set_new(root, r->name, json_string("2025-13-01T00:00:00Z"));
			expect_error(k, root, r->name, "must be an ISO-8601 timestamp");
		} else if (strcmp(r->name, "speaker") != 0) {
			/* Exactly at the limit is fine. */
			longer[r->max_len] = '\0';
			json_object_set_new(root, r->name, json_string(longer));
			expect_ok(k, root, "a string of exactly max_len bytes");
		}
		json_decref(root);
		free(longer);
	}
}

static void test_codec_other_field_errors(void **state)
{
	static const char *const bad_speakers[] = {"system", "Agent", "USER", "agent "};
	json_t *root;

	(void)state;
	/* speaker: only "agent" or "user". */
	for (size_t i = 0; i < sizeof bad_speakers / sizeof bad_speakers[0]; i++) {
		root = valid_transcription();
		json_object_set_new(root, "speaker", json_string(bad_speakers[i]));
		expect_error(&kinds[1], root, "speaker", "must be \"agent\" or \"user\"");
		json_decref(root);
	}
	/* violations: optional object. */
	root = valid_call_requested();
	json_object_set_new(root, "violations", json_integer(1));
	expect_error(&kinds[0], root, "violations", "must be an object");
	json_object_set_new(root, "violations", json_pack("[]"));
	expect_error(&kinds[0], root, "violations", "must be an object");
	json_object_set_new(root, "violations", json_string("none"));
	expect_error(&kinds[0], root, "violations", "must be an object");
	json_object_set_new(root, "violations", json_null());
	expect_ok(&kinds[0], root, "violations null");
	json_object_del(root, "violations");
	expect_ok(&kinds[0], root, "violations missing");
	json_decref(root);
	/* body: required object. */
	root = valid_post_call();
	json_object_set_new(root, "body", json_string("{\"type\":\"x\"}"));
	expect_error(&kinds[2], root, "body", "must be an object");
	json_object_set_new(root, "body", json_pack("[]"));
	expect_error(&kinds[2], root, "body", "must be an object");
	json_object_set_new(root, "body", json_null());
	expect_error(&kinds[2], root, "body", "is missing");
	json_object_del(root, "body");
	expect_error(&kinds[2], root, "body", "is missing");
	json_decref(root);
}

static void test_codec_unknown_fields_ignored(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
		json_t *root = kinds[i].valid();

		json_object_set_new(root, "future_field", json_pack("{s:[i,i]}", "x", 1, 2));
		json_object_set_new(root, "schema_version", json_integer(2));
		expect_ok(&kinds[i], root, "unknown fields");
		json_decref(root);
	}
}

static void test_codec_malformed_json(void **state)
{
	static const struct {
		const char *buf;
		const char *want;
	} cases[] = {
	    {"", "malformed JSON: empty input"},
	    {"{\"call_sid\": }", "malformed JSON at line 1"},
	    {"{\n  \"a\": 1,\n  \"b\": ]\n}", "malformed JSON at line 3"},
	    {"{\"call_sid\":\"EL_1\",\"driver_id\":", "malformed JSON at line 1"},
	    {"{\"call_sid\":\"EL_1", "malformed JSON"},
	    {"{", "malformed JSON"},
	    {"{} trailing", "malformed JSON"},
	    {"{'single': 'quotes'}", "malformed JSON"},
	    {"{\"a\":\"\\u0000\"}", "malformed JSON"},
	    {"[]", "expected a JSON object, got an array"},
	    {"[{\"call_sid\":\"x\"}]", "expected a JSON object, got an array"},
	    {"\"text\"", "expected a JSON object, got a string"},
	    {"42", "expected a JSON object, got a number"},
	    {"true", "expected a JSON object, got a boolean"},
	    {"null", "expected a JSON object, got null"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char err[256];
		json_t *root =
		    codec_parse_object(cases[i].buf, strlen(cases[i].buf), err, sizeof err);

		assert_null(root);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("'%s': '%s' does not contain '%s'", cases[i].buf, err,
			         cases[i].want);
		/* Every decoder reports the same parse error. */
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			char err2[256];

			assert_int_equal(
			    kinds[k].decode(cases[i].buf, strlen(cases[i].buf), err2, sizeof err2),
			    -1);
			assert_string_equal(err2, err);
		}
	}
	/* A valid message cut anywhere is an error, never a partial decode. */
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		json_t *root = kinds[k].valid();
		size_t len;
		char *buf = codec_dump(root, &len), err[256];

		for (size_t cut = 0; cut < len; cut++) {
			assert_int_equal(kinds[k].decode(buf, cut, err, sizeof err), -1);
			assert_non_null(strstr(err, "malformed JSON"));
		}
		assert_int_equal(kinds[k].decode(buf, len, err, sizeof err), 0);
		free(buf);
		json_decref(root);
	}
	assert_null(codec_parse_object(NULL, 0, (char[64]){0}, 64));
	assert_null(codec_dump(NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_codec_string_field_errors),
	    cmocka_unit_test(test_codec_other_field_errors),
	    cmocka_unit_test(test_codec_unknown_fields_ignored),
	    cmocka_unit_test(test_codec_malformed_json),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
