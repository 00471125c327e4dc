/* test_ingress_event_id: event identity. Every spelling of one signed request verifies to the
 * same (t, body) and so the same event id; another body or timestamp is another event. A tool
 * line's idempotency key names one line of one call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sig.h"
#include "webhook.h"

#define SECRET "whsec_event_id_test"
#define BODY   "{\"call_sid\":\"EL_7_2025-11-21T10:30:00Z\",\"speaker\":\"user\",\"message\":\"Yes\"}"
#define T      1763721000
#define NOW    (T + 60)

/* The event id the ingress gives header over body at NOW; "" when the signature fails. */
static void event_id_of(const struct sig_key *k, const char *header, const char *body,
                        char out[WEBHOOK_EVENT_ID_SIZE])
{
	int64_t t = -1;

	out[0] = '\0';
	if (sig_key_verify_t(k, header, body, strlen(body), NOW, 1800, 300, &t) != SIG_OK)
		return;
	assert_int_equal(
	    webhook_event_id_signed(NULL, t, body, strlen(body), out, WEBHOOK_EVENT_ID_SIZE), 0);
}

/* Uppercases the hex of "v0=<hex>" in header (in place). */
static void upper_hex(char *header)
{
	for (char *p = strstr(header, "v0=") + 3; *p && *p != ','; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
}

static void test_event_id_respellings(void **state)
{
	struct sig_key *k = sig_key_new(SECRET);
	char canon[160], mac[80], spelled[8][256], want[WEBHOOK_EVENT_ID_SIZE],
	    got[WEBHOOK_EVENT_ID_SIZE];

	(void)state;
	assert_non_null(k);
	assert_int_equal(sig_sign(SECRET, T, BODY, strlen(BODY), canon, sizeof canon), 0);
	snprintf(mac, sizeof mac, "%s", strstr(canon, "v0=") + 3);
	/* the re-spellings an attacker holding one captured request can make */
	snprintf(spelled[0], sizeof spelled[0], "t=%d,v0=%s", T, mac);
	snprintf(spelled[1], sizeof spelled[1], "t=0%d,v0=%s", T, mac);
	snprintf(spelled[2], sizeof spelled[2], "t=000%d,v0=%s", T, mac);
	snprintf(spelled[3], sizeof spelled[3], "t=%d,v0=%s", T, mac);
	upper_hex(spelled[3]);
	snprintf(spelled[4], sizeof spelled[4], "t=%d, v0=%s", T, mac);
	snprintf(spelled[5], sizeof spelled[5], "t=%d,x=1,v0=%s,x=2", T, mac);
	snprintf(spelled[6], sizeof spelled[6], "v0=%s , t = %d", mac, T);
	snprintf(spelled[7], sizeof spelled[7], "t=%d,v0=%064d,v0=%s", T, 0, mac);

	event_id_of(k, canon, BODY, want);
	assert_int_equal(strlen(want), 64);
	for (size_t i = 0; i < 8; i++) {
		event_id_of(k, spelled[i], BODY, got);
		if (strcmp(got, want) != 0)
			fail_msg("spelling %zu '%s': event id '%s', want '%s'", i, spelled[i], got,
			         want);
	}
	/* the id is the SHA-256 of the signed payload, whatever the header looked like */
	assert_int_equal(webhook_event_id_signed(NULL, T, BODY, strlen(BODY), got, sizeof got), 0);
	assert_string_equal(got, want);
	sig_key_free(k);
}

static void test_event_id_other_content(void **state)
{
	static const char other_body[] =
	    "{\"call_sid\":\"EL_7_2025-11-21T10:30:00Z\",\"speaker\":\"user\",\"message\":\"No\"}";
	struct sig_key *k = sig_key_new(SECRET);
	char header[160], a[WEBHOOK_EVENT_ID_SIZE], b[WEBHOOK_EVENT_ID_SIZE];

	(void)state;
	assert_int_equal(sig_sign(SECRET, T, BODY, strlen(BODY), header, sizeof header), 0);
	event_id_of(k, header, BODY, a);
	/* another body signed at the same second */
	assert_int_equal(sig_sign(SECRET, T, other_body, strlen(other_body), header, sizeof header),
	                 0);
	event_id_of(k, header, other_body, b);
	assert_int_equal(strlen(b), 64);
	assert_string_not_equal(a, b);
	/* the same body signed a second later: a new delivery, a new event */
	assert_int_equal(sig_sign(SECRET, T + 1, BODY, strlen(BODY), header, sizeof header), 0);
	event_id_of(k, header, BODY, b);
	assert_int_equal(strlen(b), 64);
	assert_string_not_equal(a, b);
	/* a header that does not verify yields no id at all */
	event_id_of(k,
	            "t=1763721000,v0="
	            "00000000000000000000000000000000"
	            "00000000000000000000000000000000",
	            BODY, b);
	assert_string_equal(b, "");
	sig_key_free(k);
}

/* sha256("tool\nEL_1\nturn-1"), computed with sha256sum. */
#define TOOL_ID "a0c4f613b61d7cc84877aa94056979defa4a671adbd2d1eedbaf2ae6481f1931"

static void test_event_id_tool(void **state)
{
	char id[WEBHOOK_EVENT_ID_SIZE], other[WEBHOOK_EVENT_ID_SIZE];

	(void)state;
	assert_int_equal(webhook_event_id_tool(NULL, "EL_1", "turn-1", id, sizeof id), 0);
	assert_string_equal(id, TOOL_ID);
	/* the same key in another call is another line; another key another line */
	assert_int_equal(webhook_event_id_tool(NULL, "EL_2", "turn-1", other, sizeof other), 0);
	assert_string_not_equal(id, other);
	assert_int_equal(webhook_event_id_tool(NULL, "EL_1", "turn-2", other, sizeof other), 0);
	assert_string_not_equal(id, other);
	/* the separator keeps (call_sid, key) pairs apart */
	assert_int_equal(webhook_event_id_tool(NULL, "EL_1\nturn", "-1", other, sizeof other), 0);
	assert_string_not_equal(id, other);
	assert_int_equal(webhook_event_id_tool(NULL, NULL, "k", other, sizeof other), -1);
	assert_int_equal(webhook_event_id_tool(NULL, "EL_1", NULL, other, sizeof other), -1);
	assert_int_equal(webhook_event_id_tool(NULL, "EL_1", "k", other, 64), -1);
}

static void test_event_id_line_key(void **state)
{
	static const struct {
		const char *body;
		const char *key; /* NULL: absent; "!": refused with this in the error */
		const char *err;
	} cases[] = {
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\"}", NULL, NULL},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "null}",
	     NULL, NULL},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "\"turn-1\"}",
	     "turn-1", NULL},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "7}",
	     "7", NULL},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "-3}",
	     "-3", NULL},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "\"\"}",
	     "!", "'idempotency_key' must not be empty"},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "1.5}",
	     "!", "'idempotency_key' must be a string"},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "[1]}",
	     "!", "'idempotency_key' must be a string"},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "\"a\\tb\"}",
	     "!", "control characters"},
	    {"{\"call_sid\":\"EL_1\",\"speaker\":\"agent\",\"message\":\"m\",\"idempotency_key\":"
	     "\"0123456789012345678901234567890123456789012345678901234567890123456789012345678901"
	     "23456789012345678901234567890123456789012345678\"}",
	     "!", "too long"},
	};
	struct webhook_line line;
	struct webhook_msg msg;
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *b = cases[i].body;
		int rc = webhook_line_parse(b, strlen(b), &line, err, sizeof err);

		if (cases[i].key != NULL && strcmp(cases[i].key, "!") == 0) {
			if (rc == 0 || strstr(err, cases[i].err) == NULL)
				fail_msg("case %zu: rc %d, error '%s', want '%s'", i, rc, err,
				         cases[i].err);
			continue;
		}
		if (rc != 0)
			fail_msg("case %zu: refused: %s", i, err);
		assert_string_equal(line.call_sid, "EL_1");
		if (cases[i].key == NULL)
			assert_null(line.key);
		else
			assert_string_equal(line.key, cases[i].key);
		/* the key is not part of the published message: the event id stands for it */
		assert_int_equal(webhook_line_encode(&line, TOOL_ID, "2025-11-21T10:30:00.000Z",
		                                     &msg, err, sizeof err),
		                 0);
		assert_null(strstr(msg.value, "idempotency_key"));
		assert_non_null(strstr(msg.value, TOOL_ID));
		assert_string_equal(msg.key, "EL_1");
		/* the line is still whole after encoding */
		assert_string_equal(line.call_sid, "EL_1");
		webhook_msg_clear(&msg);
		webhook_line_clear(&line);
	}
	webhook_line_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_event_id_respellings),
	    cmocka_unit_test(test_event_id_other_content),
	    cmocka_unit_test(test_event_id_tool),
	    cmocka_unit_test(test_event_id_line_key),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
