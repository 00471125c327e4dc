/* test_ingress_webhook: event ids (hash vector, UUID v4), transcription validation, post-call type
 * routing and keys, and signature verification against known vectors at the ingress settings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "codec.h"
#include "sig.h"
#include <openssl/evp.h>

#include "webhook.h"

#define AT        "2025-11-21T10:30:00.123Z"
#define EV        "e2fa7436f53f4a558289079569737a50a83cb5b978c9dafb0d10af0df135b23f"
#define EV_SIGNED "a26b28cbf50311f74b2b88ce4d829da70369a53ce920e134d6e31848a662e9c4"

static void test_webhook_event_id_signed(void **state)
{
	char id[WEBHOOK_EVENT_ID_SIZE], other[WEBHOOK_EVENT_ID_SIZE];

	(void)state;
	/* sha256("1.{}"): the signed payload "<t>.<body>", computed with sha256sum */
	assert_int_equal(webhook_event_id_signed(NULL, 1, "{}", 2, id, sizeof id), 0);
	assert_string_equal(id, EV_SIGNED);
	/* the same (t, body) again: the same id; any other byte or second: another id */
	assert_int_equal(webhook_event_id_signed(NULL, 1, "{}", 2, other, sizeof other), 0);
	assert_string_equal(id, other);
	assert_int_equal(webhook_event_id_signed(NULL, 2, "{}", 2, other, sizeof other), 0);
	assert_string_not_equal(id, other);
	assert_int_equal(webhook_event_id_signed(NULL, 1, "{ }", 3, other, sizeof other), 0);
	assert_string_not_equal(id, other);
	assert_int_equal(webhook_event_id_signed(NULL, 1, "{}", 2, other, 64), -1);
	assert_int_equal(webhook_event_id_signed(NULL, -1, "{}", 2, other, sizeof other), -1);
	assert_int_equal(webhook_event_id_signed(NULL, 1, NULL, 2, other, sizeof other), -1);
	{
		/* with a SHA-256 fetched once, as the server does: the same id */
		EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);

		assert_non_null(md);
		assert_int_equal(webhook_event_id_signed(md, 1, "{}", 2, other, sizeof other), 0);
		assert_string_equal(other, EV_SIGNED);
		EVP_MD_free(md);
	}
}

static void test_webhook_event_id_random(void **state)
{
	char a[WEBHOOK_EVENT_ID_SIZE], b[WEBHOOK_EVENT_ID_SIZE];

	(void)state;
	assert_int_equal(webhook_event_id_random(a, sizeof a), 0);
	assert_int_equal(webhook_event_id_random(b, sizeof b), 0);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	assert_int_equal(a[8], '-');
	assert_int_equal(a[13], '-');
	assert_int_equal(a[14], '4'); /* version */
	assert_int_equal(a[18], '-');
	assert_non_null(strchr("89ab", a[19])); /* variant */
	assert_int_equal(a[23], '-');
	assert_int_equal(webhook_event_id_random(a, 36), -1);
}

static void test_webhook_transcription_ok(void **state)
{
	static const char body[] =
	    "{\"call_sid\":\"EL_1_2\",\"speaker\":\"agent\",\"message\":\"Hi "
	    "Ada\",\"unknown\":{\"x\":1}}";
	struct webhook_msg msg;
	struct codec_transcription t;
	char err[256];

	(void)state;
	assert_int_equal(webhook_transcription(body, strlen(body), EV, AT, &msg, err, sizeof err),
	                 0);
	assert_int_equal(msg.action, WEBHOOK_PUBLISH);
	assert_string_equal(msg.key, "EL_1_2");
	assert_int_equal(msg.key_len, 6);
	assert_string_equal(msg.type, "");
	assert_int_equal(codec_transcription_decode(msg.value, msg.value_len, &t, err, sizeof err),
	                 0);
	assert_string_equal(t.event_id, EV);
	assert_string_equal(t.received_at, AT);
	assert_string_equal(t.call_sid, "EL_1_2");
	assert_string_equal(t.speaker, "agent");
	assert_string_equal(t.message, "Hi Ada");
	assert_null(json_object_get(t.root, "unknown"));
	codec_transcription_clear(&t);
	webhook_msg_clear(&msg);
	webhook_msg_clear(NULL);
}

static void test_webhook_transcription_errors(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
	    {"", "malformed JSON"},
	    {"{\"call_sid\":\"a\",\"speaker\":\"agent\",\"message\":\"m\"", "malformed JSON"},
	    {"\"text\"", "JSON object"},
	    {"{\"speaker\":\"agent\",\"message\":\"m\"}", "'call_sid' is missing"},
	    {"{\"call_sid\":5,\"speaker\":\"agent\",\"message\":\"m\"}",
	     "'call_sid' must be a string"},
	    {"{\"call_sid\":\"\",\"speaker\":\"agent\",\"message\":\"m\"}",
	     "'call_sid' must not be empty"},
	    {"{\"call_sid\":\"a\\nb\",\"speaker\":\"agent\",\"message\":\"m\"}",
	     "control characters"},
	    {"{\"call_sid\":\"a\",\"message\":\"m\"}", "'speaker' is missing"},
	    {"{\"call_sid\":\"a\",\"speaker\":\"bot\",\"message\":\"m\"}", "'speaker' must be"},
	    {"{\"call_sid\":\"a\",\"speaker\":\"Agent\",\"message\":\"m\"}", "'speaker' must be"},
	    {"{\"call_sid\":\"a\",\"speaker\":\"user\"}", "'message' is missing"},
	    {"{\"call_sid\":\"a\",\"speaker\":\"user\",\"message\":\"\"}",
	     "'message' must not be empty"},
	    {"{\"call_sid\":\"a\",\"speaker\":\"user\",\"message\":[]}",
	     "'message' must be a string"},
	};
	struct webhook_msg msg;
	char err[256], *big;
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		if (webhook_transcription(cases[i].body, strlen(cases[i].body), EV, AT, &msg, err,
		                          sizeof err) == 0)
			fail_msg("case %zu accepted", i);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
		assert_null(msg.value);
	}
	/* message longer than a consumer accepts */
	big = malloc(CODEC_MESSAGE_MAX + 100);
	assert_non_null(big);
	n = (size_t)sprintf(big, "{\"call_sid\":\"a\",\"speaker\":\"user\",\"message\":\"");
	memset(big + n, 'x', CODEC_MESSAGE_MAX + 1);
	strcpy(big + n + CODEC_MESSAGE_MAX + 1, "\"}");
	assert_int_equal(webhook_transcription(big, strlen(big), EV, AT, &msg, err, sizeof err),
	                 -1);
	assert_non_null(strstr(err, "too long"));
	free(big);
}

static void test_webhook_post_call_routing(void **state)
{
	static const char with_sid[] =
	    "{\"type\":\"post_call_transcription\",\"event_timestamp\":1732185000,\"data\":{"
	    "\"conversation_id\":\"conv_1\",\"status\":\"done\",\"transcript\":[{\"role\":"
	    "\"agent\","
	    "\"message\":\"hi\"}],\"conversation_initiation_client_data\":{\"dynamic_variables\":{"
	    "\"call_sid\":\"EL_1_2\"}},\"future_field\":1}}";
	static const char failure[] =
	    "{\"type\":\"call_initiation_failure\",\"data\":{\"conversation_id\":\"conv_9\","
	    "\"failure_reason\":\"busy\"}}";
	static const char audio[] =
	    "{\"type\":\"post_call_audio\",\"data\":{\"full_audio\":\"AAAA\"}}";
	static const char unknown[] = "{\"type\":\"something_new\",\"data\":{}}";
	struct webhook_msg msg;
	struct codec_post_call pc;
	json_t *want;
	char err[256];

	(void)state;
	assert_int_equal(
	    webhook_post_call(with_sid, strlen(with_sid), EV, AT, &msg, err, sizeof err), 0);
	assert_int_equal(msg.action, WEBHOOK_PUBLISH);
	assert_string_equal(msg.key, "EL_1_2");
	assert_string_equal(msg.type, "post_call_transcription");
	assert_int_equal(codec_post_call_decode(msg.value, msg.value_len, &pc, err, sizeof err), 0);
	assert_string_equal(pc.event_id, EV);
	assert_string_equal(pc.received_at, AT);
	assert_string_equal(pc.call_sid, "EL_1_2");
	want = json_loads(with_sid, 0, NULL);
	assert_true(json_equal(pc.body, want)); /* the webhook as received, unknown fields kept */
	json_decref(want);
	codec_post_call_clear(&pc);
	webhook_msg_clear(&msg);

	/* no call_sid: keyed by the conversation id, call_sid null */
	assert_int_equal(webhook_post_call(failure, strlen(failure), EV, AT, &msg, err, sizeof err),
	                 0);
	assert_int_equal(msg.action, WEBHOOK_PUBLISH);
	assert_string_equal(msg.key, "conv_9");
	assert_string_equal(msg.type, "call_initiation_failure");
	assert_int_equal(codec_post_call_decode(msg.value, msg.value_len, &pc, err, sizeof err), 0);
	assert_null(pc.call_sid);
	codec_post_call_clear(&pc);
	webhook_msg_clear(&msg);

	assert_int_equal(webhook_post_call(audio, strlen(audio), EV, AT, &msg, err, sizeof err), 0);
	assert_int_equal(msg.action, WEBHOOK_DROP_AUDIO);
	assert_null(msg.value);
	assert_string_equal(msg.type, "post_call_audio");
	webhook_msg_clear(&msg);

	assert_int_equal(webhook_post_call(unknown, strlen(unknown), EV, AT, &msg, err, sizeof err),
	                 0);
	assert_int_equal(msg.action, WEBHOOK_IGNORE);
	assert_null(msg.value);
	webhook_msg_clear(&msg);
}

static void test_webhook_post_call_errors(void **state)
{
	static const struct {
		const char *body, *want;
	} cases[] = {
	    {"{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":\"c\"}",
	     "malformed JSON"},
	    {"{\"data\":{\"conversation_id\":\"c\"}}", "'type' is missing"},
	    {"{\"type\":3,\"data\":{}}", "'type' must be a string"},
	    {"{\"type\":\"post_call_transcription\"}", "'data' is missing"},
	    {"{\"type\":\"post_call_transcription\",\"data\":[]}", "'data' must be an object"},
	    {"{\"type\":\"post_call_transcription\",\"data\":{}}", "neither"},
	    {"{\"type\":\"call_initiation_failure\",\"data\":{\"conversation_id\":5}}",
	     "data.field 'conversation_id'"},
	    {"{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":\"c\","
	     "\"conversation_initiation_client_data\":{\"dynamic_variables\":{\"call_sid\":7}}}}",
	     "'call_sid' must be a string"},
	    {"{\"type\":\"post_call_transcription\",\"data\":{\"conversation_id\":\"c\","
	     "\"conversation_initiation_client_data\":5}}",
	     "'conversation_initiation_client_data' must be an object"},
	};
	struct webhook_msg msg;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		err[0] = '\0';
		if (webhook_post_call(cases[i].body, strlen(cases[i].body), EV, AT, &msg, err,
		                      sizeof err) == 0)
			fail_msg("case %zu accepted", i);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("case %zu: '%s' lacks '%s'", i, err, cases[i].want);
	}
}

/* Known vector: HMAC-SHA256("whsec_test_secret", "1700000000.<body>"), from openssl dgst. */
#define SECRET  "whsec_test_secret"
#define BODY    "{\"call_sid\":\"EL_1_2\",\"speaker\":\"agent\",\"message\":\"hi\"}"
#define T0      1700000000
#define MAC     "13f6e42e01e5956a926b7b0eeeedab116d654a4a4033fbe9f5b5828327bdb2b9"
#define HEADER  "t=1700000000,v0=" MAC
#define MAX_AGE 1800
#define SKEW    300

static void test_webhook_signature_vectors(void **state)
{
	static const struct {
		const char *secret, *header, *body;
		int64_t now;
		enum sig_result want;
	} cases[] = {
	    {SECRET, HEADER, BODY, T0, SIG_OK},
	    {SECRET, HEADER, BODY, T0 + MAX_AGE, SIG_OK},
	    {SECRET, HEADER, BODY, T0 - SKEW, SIG_OK},
	    {"whsec_other", HEADER, BODY, T0, SIG_MISMATCH},
	    {SECRET, HEADER, BODY " ", T0, SIG_MISMATCH},
	    {SECRET, HEADER, "{\"call_sid\":\"EL_1_3\",\"speaker\":\"agent\",\"message\":\"hi\"}",
	     T0, SIG_MISMATCH},
	    {SECRET, "t=1700000001,v0=" MAC, BODY, T0, SIG_MISMATCH},
	    {SECRET, HEADER, BODY, T0 + MAX_AGE + 1, SIG_TOO_OLD},
	    {SECRET, HEADER, BODY, T0 - SKEW - 1, SIG_FUTURE},
	    {SECRET, NULL, BODY, T0, SIG_MISSING},
	    {SECRET, "", BODY, T0, SIG_MISSING}, /* empty counts as absent */
	    {SECRET, "garbage", BODY, T0, SIG_MALFORMED},
	    {SECRET, "v0=" MAC, BODY, T0, SIG_MALFORMED},
	    {SECRET, "t=1700000000", BODY, T0, SIG_MALFORMED},
	    {SECRET, "t=abc,v0=" MAC, BODY, T0, SIG_MALFORMED},
	    {SECRET, "t=1700000000,v0=zz", BODY, T0, SIG_MALFORMED},
	};
	char header[128];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum sig_result r = sig_verify(cases[i].secret, cases[i].header, cases[i].body,
		                               strlen(cases[i].body), cases[i].now, MAX_AGE, SKEW);

		if (r != cases[i].want)
			fail_msg("case %zu: got %s, want %s", i, sig_result_str(r),
			         sig_result_str(cases[i].want));
	}
	/* what sig_sign produces is exactly the known header */
	assert_int_equal(sig_sign(SECRET, T0, BODY, strlen(BODY), header, sizeof header), 0);
	assert_string_equal(header, HEADER);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_webhook_event_id_signed),
	    cmocka_unit_test(test_webhook_event_id_random),
	    cmocka_unit_test(test_webhook_transcription_ok),
	    cmocka_unit_test(test_webhook_transcription_errors),
	    cmocka_unit_test(test_webhook_post_call_routing),
	    cmocka_unit_test(test_webhook_post_call_errors),
	    cmocka_unit_test(test_webhook_signature_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
