/* test_ingress_identity: who may write a line, and which event it is, against the real ingress.
 * One signed request re-spelled (leading zeros, upper-case hex, blanks, unknown items) is one
 * event id on the topic; a tool line is accepted only for the call_sid its call token was made
 * for (the tool secret alone opens no call), and its idempotency key is its event id. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "calltoken.h"
#include "ingress_it.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX       "iti."
#define T_TRANS      "webhooks.transcription"
#define PATH         "/webhooks/elevenlabs/transcription"
#define TOKEN_SECRET "call-token-secret-it-0123"
#define TOOL_SECRET  "tool-secret-it-0123456789"

static int setup(void **state)
{
	const char *extra[] = {"CALL_TOKEN_SECRET=" TOKEN_SECRET,
	                       "INGRESS_TOOL_SECRET=" TOOL_SECRET, NULL};

	*state = it_stack_new(PREFIX, 2, extra);
	return 0;
}

static int teardown(void **state)
{
	it_stack_free(*state);
	return 0;
}

/* The distinct event_id headers of the messages keyed key, and how many messages there were. */
static size_t distinct_ids(const struct it_stack *e, const char *key, char ids[][80], size_t max,
                           size_t *total)
{
	char topic[256];
	struct ts_kmsg *msgs = NULL;
	size_t n, nd = 0;

	ts_broker_topic(&e->broker, T_TRANS, topic, sizeof topic);
	n = ts_kafka_read_all(e->broker.bootstrap, topic, &msgs);
	*total = 0;
	for (size_t i = 0; i < n; i++) {
		const char *id = ts_kmsg_header(&msgs[i], "event_id");
		size_t j = 0;

		if (msgs[i].key == NULL || strcmp(msgs[i].key, key) != 0)
			continue;
		(*total)++;
		assert_non_null(id);
		while (j < nd && strcmp(ids[j], id) != 0)
			j++;
		if (j == nd && nd < max)
			snprintf(ids[nd++], sizeof ids[0], "%s", id);
	}
	ts_kmsgs_free(msgs, n);
	return nd;
}

/* Messages on the transcription topic keyed key. */
static size_t count(const struct it_stack *e, const char *key)
{
	char topic[256];

	return it_count_key(&e->broker, ts_broker_topic(&e->broker, T_TRANS, topic, sizeof topic),
	                    key);
}

/* POSTs body with extra headers (NULL-terminated, after the JSON type); returns the status and
 * copies the answer's event_id (or "") into id. */
static long post(const struct it_stack *e, const char *body, const char *const *hdrs, char *id,
                 size_t id_size)
{
	const char *headers[8] = {IT_JSON};
	struct ts_http_resp resp;
	long status;
	size_t n = 1;

	for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL && n < 7; i++)
		headers[n++] = hdrs[i];
	headers[n] = NULL;
	ts_http("POST", it_url(&e->in, PATH), headers, body, strlen(body), &resp);
	status = resp.status;
	if (id != NULL && !it_json_str(resp.body, "event_id", id, id_size))
		id[0] = '\0';
	ts_http_resp_free(&resp);
	return status;
}

static void test_identity_respelled_signature(void **state)
{
	struct it_stack *e = *state;
	static const char body[] =
	    "{\"call_sid\":\"EL_resp_1\",\"speaker\":\"user\",\"message\":\"the same line\"}";
	int64_t t = time(NULL);
	char canon[160], mac[80], up[80], want[65], got[80], lines[6][256], ids[8][80];
	const char *hdr[2] = {NULL, NULL};
	size_t total;

	it_sign(IT_SECRET, t, body, canon, sizeof canon);
	snprintf(mac, sizeof mac, "%s", strstr(canon, "v0=") + 3);
	for (size_t i = 0; i < sizeof up; i++) {
		up[i] = (char)(mac[i] >= 'a' && mac[i] <= 'f' ? mac[i] - 'a' + 'A' : mac[i]);
		if (mac[i] == '\0')
			break;
	}
	/* the six deliveries of the issue: the original and five re-spellings of it */
	snprintf(lines[0], sizeof lines[0], "ElevenLabs-Signature: %s", canon);
	snprintf(lines[1], sizeof lines[1], "ElevenLabs-Signature: t=0%lld,v0=%s", (long long)t,
	         mac);
	snprintf(lines[2], sizeof lines[2], "ElevenLabs-Signature: t=%lld,v0=%s", (long long)t, up);
	snprintf(lines[3], sizeof lines[3], "ElevenLabs-Signature: t=%lld, v0=%s", (long long)t,
	         mac);
	snprintf(lines[4], sizeof lines[4], "ElevenLabs-Signature: t=%lld,v0=%s,x=1", (long long)t,
	         mac);
	snprintf(lines[5], sizeof lines[5], "ElevenLabs-Signature: x=2,t=00%lld , v0=%s",
	         (long long)t, up);
	it_event_id(t, body, want);
	for (size_t i = 0; i < 6; i++) {
		hdr[0] = lines[i];
		if (post(e, body, hdr, got, sizeof got) != 200)
			fail_msg("delivery %zu (%s) refused", i, lines[i]);
		if (strcmp(got, want) != 0)
			fail_msg("delivery %zu (%s): event_id %s, want %s", i, lines[i], got, want);
	}
	/* six messages, one event: the transcriber stores it once */
	assert_int_equal(distinct_ids(e, "EL_resp_1", ids, 8, &total), 1);
	assert_int_equal(total, 6);
	assert_string_equal(ids[0], want);

	/* the same body signed a second later is another delivery, another event */
	{
		struct ts_http_resp resp;

		it_post_signed(&e->in, PATH, body, IT_SECRET, t - 1, &resp);
		assert_int_equal(resp.status, 200);
		ts_http_resp_free(&resp);
	}
	assert_int_equal(distinct_ids(e, "EL_resp_1", ids, 8, &total), 2);
}

/* A token made here, independently of the dialer, for call_sid. */
static void token_for(const char *call_sid, int64_t expires, char *out, size_t size)
{
	if (calltoken_sign(TOKEN_SECRET, call_sid, expires, out, size) != 0)
		fail_msg("calltoken_sign failed");
}

static void test_identity_tool_token_binds_call(void **state)
{
	struct it_stack *e = *state;
	static const char body_a[] =
	    "{\"call_sid\":\"EL_tool_a\",\"speaker\":\"agent\",\"message\":\"from the tool\"}";
	static const char body_b[] =
	    "{\"call_sid\":\"EL_tool_b\",\"speaker\":\"agent\",\"message\":\"forged into b\"}";
	char tok_a[CALLTOKEN_SIZE], tok_old[CALLTOKEN_SIZE], h_tok[160], h_old[160], id1[80],
	    id2[80];
	const char *own[] = {h_tok, "X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};
	const char *no_tool_secret[] = {h_tok, NULL};
	const char *wrong_tool_secret[] = {h_tok, "X-Callpipe-Tool-Secret: wrong-tool-secret-0000",
	                                   NULL};
	const char *tool_secret_only[] = {"X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};
	const char *expired[] = {h_old, "X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};
	const char *garbage[] = {"X-Callpipe-Call-Token: v1.99.zz",
	                         "X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};
	const char *with_bad_sig[] = {h_tok, "X-Callpipe-Tool-Secret: " TOOL_SECRET,
	                              "ElevenLabs-Signature: t=1,v0=00", NULL};
	int64_t now = time(NULL);

	token_for("EL_tool_a", now + 3600, tok_a, sizeof tok_a);
	token_for("EL_tool_a", now - 5, tok_old, sizeof tok_old);
	snprintf(h_tok, sizeof h_tok, "X-Callpipe-Call-Token: %s", tok_a);
	snprintf(h_old, sizeof h_old, "X-Callpipe-Call-Token: %s", tok_old);

	/* its own call: accepted; without an idempotency key every line is a new event */
	assert_int_equal(post(e, body_a, own, id1, sizeof id1), 200);
	assert_int_equal(post(e, body_a, own, id2, sizeof id2), 200);
	assert_int_equal(strlen(id1), 36);
	assert_string_not_equal(id1, id2);
	assert_int_equal(count(e, "EL_tool_a"), 2);

	/* call a's token (and the right tool secret) writes nothing into call b */
	assert_int_equal(post(e, body_b, own, NULL, 0), 401);
	/* nor does the tool secret alone (the old scheme), a wrong or missing tool secret, an
	 * expired or garbled token, or a bad signature next to a good token */
	assert_int_equal(post(e, body_a, tool_secret_only, NULL, 0), 401);
	assert_int_equal(post(e, body_a, no_tool_secret, NULL, 0), 401);
	assert_int_equal(post(e, body_a, wrong_tool_secret, NULL, 0), 401);
	assert_int_equal(post(e, body_a, expired, NULL, 0), 401);
	assert_int_equal(post(e, body_a, garbage, NULL, 0), 401);
	assert_int_equal(post(e, body_a, with_bad_sig, NULL, 0), 401);
	/* a token is no key to the post-call route */
	{
		struct ts_http_resp resp;
		const char *h[] = {IT_JSON, h_tok, "X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};
		static const char pc[] =
		    "{\"type\":\"call_initiation_failure\",\"data\":{\"conversation_id\":\"c\","
		    "\"conversation_initiation_client_data\":{\"dynamic_variables\":{\"call_sid\":"
		    "\"EL_tool_a\"}}}}";

		ts_http("POST", it_url(&e->in, "/webhooks/elevenlabs/post-call"), h, pc, strlen(pc),
		        &resp);
		assert_int_equal(resp.status, 401);
		ts_http_resp_free(&resp);
	}
	assert_int_equal(count(e, "EL_tool_b"), 0);
	assert_int_equal(count(e, "EL_tool_a"), 2);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_mismatch\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_missing\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_expired\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_malformed\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"tool_secret_mismatch\"}") >=
	            2);

	/* and call b's own token opens call b */
	token_for("EL_tool_b", now + 3600, tok_a, sizeof tok_a);
	snprintf(h_tok, sizeof h_tok, "X-Callpipe-Call-Token: %s", tok_a);
	assert_int_equal(post(e, body_b, own, NULL, 0), 200);
}

static void test_identity_tool_idempotency_key(void **state)
{
	struct it_stack *e = *state;
	static const char turn1[] = "{\"call_sid\":\"EL_idem\",\"speaker\":\"user\",\"message\":"
	                            "\"yes\",\"idempotency_key\":\"turn-1\"}";
	static const char turn1_again[] =
	    "{\"idempotency_key\":\"turn-1\",\"call_sid\":\"EL_idem\","
	    "\"speaker\":\"user\",\"message\":\"yes\"}";
	static const char turn2[] = "{\"call_sid\":\"EL_idem\",\"speaker\":\"agent\",\"message\":"
	                            "\"ok\",\"idempotency_key\":2}";
	static const char bad_key[] = "{\"call_sid\":\"EL_idem\",\"speaker\":\"agent\",\"message\":"
	                              "\"ok\",\"idempotency_key\":{\"n\":2}}";
	char tok[CALLTOKEN_SIZE], h_tok[160], a[80], b[80], c[80], ids[4][80];
	const char *hdr[] = {h_tok, "X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};
	size_t total;

	token_for("EL_idem", time(NULL) + 600, tok, sizeof tok);
	snprintf(h_tok, sizeof h_tok, "X-Callpipe-Call-Token: %s", tok);
	assert_int_equal(post(e, turn1, hdr, a, sizeof a), 200);
	assert_int_equal(post(e, turn1_again, hdr, b, sizeof b), 200); /* a retried tool call */
	assert_int_equal(post(e, turn2, hdr, c, sizeof c), 200);
	assert_int_equal(strlen(a), 64);
	assert_string_equal(a, b);
	assert_string_not_equal(a, c);
	assert_int_equal(distinct_ids(e, "EL_idem", ids, 4, &total), 2);
	assert_int_equal(total, 3);
	/* the key is named in a 400 when it is unusable */
	{
		struct ts_http_resp resp;
		const char *h[] = {IT_JSON, h_tok, "X-Callpipe-Tool-Secret: " TOOL_SECRET, NULL};

		ts_http("POST", it_url(&e->in, PATH), h, bad_key, strlen(bad_key), &resp);
		assert_int_equal(resp.status, 400);
		assert_non_null(strstr(resp.body, "idempotency_key"));
		ts_http_resp_free(&resp);
	}
}

/* INGRESS_TOOL_SECRET alone, as configured before call tokens, no longer starts: it would open
 * every call to whoever holds the tool secret. */
static void test_identity_tool_secret_needs_token_secret(void **state)
{
	const char *env[] = {"KAFKA_BROKERS=127.0.0.1:1", "INGRESS_API_TOKEN=" IT_TOKEN,
	                     "ELEVENLABS_WEBHOOK_SECRET=" IT_SECRET,
	                     "INGRESS_TOOL_SECRET=" TOOL_SECRET, NULL};
	char bin[512], *out = NULL;
	const char *argv[] = {ts_bin("ingress", bin, sizeof bin), NULL};

	(void)state;
	assert_int_equal(ts_run_all(argv, env, &out, 10000), 2);
	assert_non_null(out);
	assert_non_null(strstr(out, "CALL_TOKEN_SECRET"));
	free(out);
}

/* Without CALL_TOKEN_SECRET there is no tool path: a token header is no credential. */
static void test_identity_no_tool_path_without_secret(void **state)
{
	struct it_stack *e = *state;
	struct it_ingress in;
	struct ts_http_resp resp;
	static const char body[] =
	    "{\"call_sid\":\"EL_notool\",\"speaker\":\"agent\",\"message\":\"m\"}";
	char tok[CALLTOKEN_SIZE], h_tok[160];
	const char *hdr[] = {IT_JSON, h_tok, NULL};

	token_for("EL_notool", time(NULL) + 600, tok, sizeof tok);
	snprintf(h_tok, sizeof h_tok, "X-Callpipe-Call-Token: %s", tok);
	it_ingress_start(&in, &e->broker, PREFIX, NULL, true);
	ts_http("POST", it_url(&in, PATH), hdr, body, strlen(body), &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	assert_true(it_metric(&in, "ingress_rejected_total{reason=\"signature_missing\"}") == 1);
	assert_int_equal(it_ingress_stop(&in, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_identity_respelled_signature),
	    cmocka_unit_test(test_identity_tool_token_binds_call),
	    cmocka_unit_test(test_identity_tool_idempotency_key),
	    cmocka_unit_test(test_identity_tool_secret_needs_token_secret),
	    cmocka_unit_test(test_identity_no_tool_path_without_secret),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
