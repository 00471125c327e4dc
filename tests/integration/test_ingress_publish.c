/* test_ingress_publish: the real ingress against the test's broker (a private devbroker, or real
 * Kafka in the kafka tier): what an accepted call request or webhook puts on its topic (key,
 * value, headers; exactly one message each), and that every refused request (auth, signature,
 * type, size, validation) publishes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "codec.h"
#include "ingress_it.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "itp."
/* Topics by base name: the broker's prefix goes in front (read_all, topic_count, count_key). */
#define T_CALLS "calls.requested"
#define T_TRANS "webhooks.transcription"
#define T_POST  "webhooks.post_call"

static int setup(void **state)
{
	const char *extra[] = {"INGRESS_MAX_POST_CALL_BODY=8192", NULL};

	*state = it_stack_new(PREFIX, 3, extra);
	return 0;
}

static int teardown(void **state)
{
	it_stack_free(*state);
	return 0;
}

/* Every message now in the topic named base (ts_kafka_read_all). */
static size_t read_all(const struct it_stack *e, const char *base, struct ts_kmsg **out)
{
	char topic[256];

	ts_broker_topic(&e->broker, base, topic, sizeof topic);
	return ts_kafka_read_all(e->broker.bootstrap, topic, out);
}

static size_t topic_count(const struct it_stack *e, const char *base)
{
	struct ts_kmsg *msgs = NULL;
	size_t n = read_all(e, base, &msgs);

	ts_kmsgs_free(msgs, n);
	return n;
}

static size_t count_key(const struct it_stack *e, const char *base, const char *key)
{
	char topic[256];

	return it_count_key(&e->broker, ts_broker_topic(&e->broker, base, topic, sizeof topic),
	                    key);
}

static const char call_body[] =
    "{\"callType\":\"violation_followup\",\"timestamp\":\"2025-11-21T10:30:00Z\",\"trip_id\":"
    "\"TRIP-1\",\"drivers\":[{\"driverId\":\"1001\",\"driverName\":\"Ada\",\"phoneNumber\":"
    "\"(212) 555-0101\",\"violations\":{\"tripId\":\"TRIP-1\",\"violationDetails\":[{\"type\":"
    "\"speeding\",\"description\":\"72 in a 55\"}]}},{\"driverId\":\"1002\",\"driverName\":"
    "\"Grace\",\"phoneNumber\":\"1-212-555-0102\"}]}";

static void test_publish_call_request(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;
	struct ts_kmsg *msgs = NULL;
	char rid[64], sid[300];
	size_t n;
	json_t *root;

	it_post_auth(&e->in, "/driver_data/call-elevenlabs", call_body, &resp);
	assert_int_equal(resp.status, 202);
	assert_true(it_header(resp.headers, "X-Request-Id", rid, sizeof rid));
	root = json_loads(resp.body, 0, NULL);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "call_sid")),
	                    "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(json_string_value(json_object_get(root, "driver")), "1001");
	assert_int_equal(json_array_size(json_object_get(root, "calls")), 2);
	json_decref(root);
	ts_http_resp_free(&resp);

	/* exactly one message per driver, keyed by its call_sid, acknowledged before the 202 */
	n = read_all(e, T_CALLS, &msgs);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		struct codec_call_requested m;
		char err[256];

		assert_int_equal(codec_call_requested_decode(msgs[i].value, msgs[i].value_len, &m,
		                                             err, sizeof err),
		                 0);
		assert_string_equal(msgs[i].key, m.call_sid);
		snprintf(sid, sizeof sid, "EL_%s_2025-11-21T10:30:00Z", m.driver_id);
		assert_string_equal(m.call_sid, sid);
		assert_string_equal(ts_kmsg_header(&msgs[i], "request_id"), rid);
		assert_string_equal(ts_kmsg_header(&msgs[i], "requested_at"), m.requested_at);
		assert_string_equal(m.trip_id, "TRIP-1");
		assert_string_equal(m.call_type, "violation_followup");
		if (strcmp(m.driver_id, "1001") == 0) {
			assert_string_equal(m.phone_number, "+12125550101");
			assert_non_null(m.violations);
		} else {
			assert_string_equal(m.phone_number, "+12125550102");
			assert_null(m.violations);
		}
		codec_call_requested_clear(&m);
	}
	ts_kmsgs_free(msgs, n);

	/* a retry of the same request yields the same call_sids (the dialer dedupes on them) */
	it_post_auth(&e->in, "/driver_data/call-elevenlabs", call_body, &resp);
	assert_int_equal(resp.status, 202);
	ts_http_resp_free(&resp);
	assert_int_equal(count_key(e, T_CALLS, "EL_1001_2025-11-21T10:30:00Z"), 2);
	assert_int_equal(count_key(e, T_CALLS, "EL_1002_2025-11-21T10:30:00Z"), 2);
}

static void test_publish_call_request_refused(void **state)
{
	struct it_stack *e = *state;
	static const struct {
		const char *headers[3];
		const char *method, *path, *body;
		long status;
		const char *error; /* substring of the body */
	} cases[] = {
	    {{IT_JSON}, "POST", "/driver_data/call-elevenlabs", call_body, 401, "Unauthorized"},
	    {{"Authorization: Bearer wrong-token-0123456789", IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     call_body,
	     401,
	     "Unauthorized"},
	    {{"Authorization: Basic " IT_TOKEN, IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     call_body,
	     401,
	     "Unauthorized"},
	    {{"Authorization: Bearer " IT_TOKEN "x", IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     call_body,
	     401,
	     "Unauthorized"},
	    {{IT_AUTH, "Content-Type: text/plain"},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     call_body,
	     415,
	     "application/json"},
	    {{IT_AUTH}, "POST", "/driver_data/call-elevenlabs", call_body, 415, "application/json"},
	    {{IT_AUTH, IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     "{\"callType\":",
	     400,
	     "malformed JSON"},
	    {{IT_AUTH, IT_JSON}, "POST", "/driver_data/call-elevenlabs", "", 400, "malformed JSON"},
	    {{IT_AUTH, IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[]}",
	     400,
	     "No driver data provided"},
	    {{IT_AUTH, IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[{\"driverId\":\"5\","
	     "\"driverName\":\"x\",\"phoneNumber\":\"2125550100\"},{\"driverId\":\"6\","
	     "\"driverName\":\"y\",\"phoneNumber\":\"99\"}]}",
	     400,
	     "drivers[1].phoneNumber"},
	    {{IT_AUTH, IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[{\"driverId\":\"5\","
	     "\"driverName\":\"x\",\"phoneNumber\":\"2125550100\"},{\"driverId\":\"5\","
	     "\"driverName\":\"y\",\"phoneNumber\":\"2125550100\"}]}",
	     400,
	     "more than once"},
	    {{IT_AUTH, IT_JSON},
	     "POST",
	     "/driver_data/call-elevenlabs",
	     "{\"callType\":\"c\",\"timestamp\":\"1\",\"drivers\":[{\"driverId\":\"5\","
	     "\"driverName\":\"\",\"phoneNumber\":\"2125550100\"}]}",
	     400,
	     "driverName"},
	    {{IT_AUTH}, "GET", "/driver_data/call-elevenlabs", NULL, 405, "method"},
	    {{IT_AUTH, IT_JSON}, "PUT", "/driver_data/call-elevenlabs", call_body, 405, "method"},
	    {{IT_AUTH, IT_JSON}, "POST", "/driver_data/nope", call_body, 404, "not found"},
	    {{IT_AUTH, IT_JSON}, "POST", "/calls/EL_1", call_body, 405, "method"},
	};
	struct ts_http_resp resp;
	size_t before = topic_count(e, T_CALLS);

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ts_http(cases[i].method, it_url(&e->in, cases[i].path), cases[i].headers,
		        cases[i].body, cases[i].body ? strlen(cases[i].body) : 0, &resp);
		if (resp.status != cases[i].status || strstr(resp.body, cases[i].error) == NULL)
			fail_msg("case %zu: %ld %s (want %ld, '%s')", i, resp.status, resp.body,
			         cases[i].status, cases[i].error);
		ts_http_resp_free(&resp);
	}
	assert_int_equal(topic_count(e, T_CALLS), before);
}

/* 413 from Content-Length alone: the server answers before the body is sent. */
static void test_publish_too_large(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;
	char *big = malloc(70000);
	size_t before = topic_count(e, T_CALLS);

	memset(big, ' ', 69999);
	big[0] = '{';
	big[69998] = '}';
	big[69999] = '\0';
	it_post_auth(&e->in, "/driver_data/call-elevenlabs", big, &resp);
	assert_int_equal(resp.status, 413);
	assert_non_null(strstr(resp.body, "65536"));
	ts_http_resp_free(&resp);
	/* the post-call limit is its own setting (8 KiB here) */
	big[9000] = '\0';
	big[8999] = '}';
	it_post_signed(&e->in, "/webhooks/elevenlabs/post-call", big, IT_SECRET, time(NULL), &resp);
	assert_int_equal(resp.status, 413);
	ts_http_resp_free(&resp);
	free(big);
	assert_int_equal(topic_count(e, T_CALLS), before);
	assert_int_equal(topic_count(e, T_POST), 0);
}

/* INGRESS_CONNECTION_MEMORY (8 KiB by default) bounds the request headers: ~6 KiB of them
 * pass, more are refused with 431 and nothing is published. */
static void test_publish_header_limit(void **state)
{
	static const char body[] = "{\"call_sid\":\"EL_7_2025-11-21T10:30:00Z\",\"speaker\":"
	                           "\"user\",\"message\":\"header sizes\"}";
	struct it_stack *e = *state;
	const size_t sizes[] = {6000, 16000};
	const unsigned want[] = {200, 431};
	for (size_t i = 0; i < 2; i++) {
		struct ts_http_resp resp;
		char sig[160], sig_line[200], *big = malloc(sizes[i] + 16);
		const char *headers[] = {IT_JSON, sig_line, big, NULL};

		assert_non_null(big);
		it_sign(IT_SECRET, time(NULL), body, sig, sizeof sig);
		snprintf(sig_line, sizeof sig_line, "ElevenLabs-Signature: %s", sig);
		memcpy(big, "X-Padding: ", 11);
		memset(big + 11, 'p', sizes[i]);
		big[11 + sizes[i]] = '\0';
		ts_http("POST", it_url(&e->in, "/webhooks/elevenlabs/transcription"), headers, body,
		        strlen(body), &resp);
		assert_int_equal(resp.status, want[i]);
		ts_http_resp_free(&resp);
		free(big);
	}
	assert_int_equal(count_key(e, T_TRANS, "EL_7_2025-11-21T10:30:00Z"), 1);
}

/* Refusals an attacker can repeat (bad signatures) are logged once each, as a warning, at most
 * once a second; the metrics count every one. */
static void test_publish_refusals_logged_once_a_second(void **state)
{
	static const char body[] =
	    "{\"call_sid\":\"EL_8_x\",\"speaker\":\"user\",\"message\":\"x\"}";
	static const char warned[] =
	    "\"level\":\"warn\",\"service\":\"ingress\",\"msg\":\"request refused\"";
	struct it_stack *e = *state;
	size_t warn0 = it_log_count(&e->in, warned),
	       mismatch0 = it_log_count(&e->in, "\"reason\":\"signature_mismatch\""),
	       old0 = it_log_count(&e->in, "webhook refused"), warn, mismatch;
	double rejected0 =
	    it_metric(&e->in, "ingress_rejected_total{reason=\"signature_mismatch\"}");
	long long t0, secs;

	ts_sleep_ms(1100); /* past the interval of the refusals logged by earlier tests */
	t0 = (long long)time(NULL);
	for (int i = 0; i < 50; i++) {
		struct ts_http_resp resp;

		it_post_signed(&e->in, "/webhooks/elevenlabs/transcription", body, "whsec_wrong",
		               time(NULL), &resp);
		assert_int_equal(resp.status, 401);
		ts_http_resp_free(&resp);
	}
	secs = (long long)time(NULL) - t0 + 2;
	warn = it_log_count(&e->in, warned) - warn0;
	mismatch = it_log_count(&e->in, "\"reason\":\"signature_mismatch\"") - mismatch0;
	if (warn < 1 || warn > (size_t)secs || mismatch != warn)
		fail_msg("%zu warnings (%zu naming the reason) for 50 refusals in %lld s", warn,
		         mismatch, secs);
	assert_int_equal(it_log_count(&e->in, "webhook refused"), old0); /* no second line */
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_mismatch\"}") >=
	            (rejected0 > 0 ? rejected0 : 0) + 50);
}

#define TRANS                                                                                      \
	"{\"call_sid\":\"EL_1001_2025-11-21T10:30:00Z\",\"speaker\":\"user\",\"message\":\"Hello " \
	"there\",\"extra\":1}"

static void test_publish_transcription(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;
	struct ts_kmsg *msgs = NULL;
	struct codec_transcription t;
	char want_id[65], got_id[80], err[256];
	int64_t now = time(NULL);
	size_t n;

	it_event_id(now, TRANS, want_id);
	it_post_signed(&e->in, "/webhooks/elevenlabs/transcription", TRANS, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 200);
	assert_true(it_json_str(resp.body, "event_id", got_id, sizeof got_id));
	assert_string_equal(got_id, want_id);
	assert_true(it_json_str(resp.body, "status", got_id, sizeof got_id));
	assert_string_equal(got_id, "accepted");
	ts_http_resp_free(&resp);

	n = read_all(e, T_TRANS, &msgs);
	assert_int_equal(n, 1);
	assert_string_equal(msgs[0].key, "EL_1001_2025-11-21T10:30:00Z");
	assert_string_equal(ts_kmsg_header(&msgs[0], "event_id"), want_id);
	assert_int_equal(
	    codec_transcription_decode(msgs[0].value, msgs[0].value_len, &t, err, sizeof err), 0);
	assert_string_equal(t.event_id, want_id);
	assert_string_equal(t.speaker, "user");
	assert_string_equal(t.message, "Hello there");
	assert_string_equal(ts_kmsg_header(&msgs[0], "received_at"), t.received_at);
	codec_transcription_clear(&t);
	ts_kmsgs_free(msgs, n);

	/* ElevenLabs re-delivering the same signed request: same event_id (deduped downstream) */
	it_post_signed(&e->in, "/webhooks/elevenlabs/transcription", TRANS, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 200);
	assert_true(it_json_str(resp.body, "event_id", got_id, sizeof got_id));
	assert_string_equal(got_id, want_id);
	ts_http_resp_free(&resp);
	assert_int_equal(topic_count(e, T_TRANS), 2);
}

static void test_publish_webhook_refused(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;
	int64_t now = time(NULL);
	char sig[160], line[200];
	const char *headers[] = {IT_JSON, line, NULL};
	size_t before = topic_count(e, T_TRANS);
	static const char path[] = "/webhooks/elevenlabs/transcription";

	/* wrong secret, too old, too far in the future, no signature */
	it_post_signed(&e->in, path, TRANS, "whsec_wrong_secret", now, &resp);
	assert_int_equal(resp.status, 401);
	assert_string_equal(resp.body, "{\"error\":\"Invalid signature\"}");
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, TRANS, IT_SECRET, now - 1801, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, TRANS, IT_SECRET, now + 600, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, TRANS, NULL, now, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	/* tampered body: signature of another body */
	it_sign(IT_SECRET, now, TRANS, sig, sizeof sig);
	snprintf(line, sizeof line, "ElevenLabs-Signature: %s", sig);
	ts_http("POST", it_url(&e->in, path), headers, TRANS " ", strlen(TRANS) + 1, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	snprintf(line, sizeof line, "ElevenLabs-Signature: garbage");
	ts_http("POST", it_url(&e->in, path), headers, TRANS, strlen(TRANS), &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	/* validly signed but invalid: 400 naming the field */
	it_post_signed(&e->in, path, "{\"call_sid\":\"x\",\"speaker\":\"robot\",\"message\":\"m\"}",
	               IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(resp.body, "speaker"));
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, "{\"call_sid\":\"x\",\"speaker\":\"user\"", IT_SECRET, now,
	               &resp);
	assert_int_equal(resp.status, 400);
	ts_http_resp_free(&resp);
	assert_int_equal(topic_count(e, T_TRANS), before);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_mismatch\"}") >=
	            2);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_too_old\"}") >= 1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_future\"}") >= 1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_missing\"}") >= 1);
}

static void test_publish_post_call(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;
	struct ts_kmsg *msgs = NULL;
	int64_t now = time(NULL);
	static const char path[] = "/webhooks/elevenlabs/post-call";
	static const char done[] =
	    "{\"type\":\"post_call_transcription\",\"event_timestamp\":1732185000,\"data\":{"
	    "\"agent_id\":\"a\",\"conversation_id\":\"conv_1\",\"status\":\"done\",\"transcript\":["
	    "{"
	    "\"role\":\"agent\",\"message\":\"hi\",\"time_in_call_secs\":0}],\"metadata\":{},"
	    "\"analysis\":{},\"conversation_initiation_client_data\":{\"dynamic_variables\":{"
	    "\"call_sid\":\"EL_1001_2025-11-21T10:30:00Z\"}}}}";
	static const char failed[] = "{\"type\":\"call_initiation_failure\",\"data\":{"
	                             "\"conversation_id\":\"conv_2\",\"failure_reason\":\"busy\"}}";
	static const char audio[] = "{\"type\":\"post_call_audio\",\"data\":{\"conversation_id\":"
	                            "\"conv_1\",\"full_audio\":\"UklGRg==\"}}";
	static const char unknown[] = "{\"type\":\"brand_new_type\",\"data\":{}}";
	static const char neither[] = "{\"type\":\"post_call_transcription\",\"data\":{}}";
	char type[64];
	size_t n;

	it_post_signed(&e->in, path, done, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, failed, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, audio, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 200);
	assert_true(it_json_str(resp.body, "status", type, sizeof type));
	assert_string_equal(type, "dropped");
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, unknown, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, neither, IT_SECRET, now, &resp);
	assert_int_equal(resp.status, 400);
	assert_non_null(strstr(resp.body, "conversation_id"));
	ts_http_resp_free(&resp);
	it_post_signed(&e->in, path, done, "whsec_wrong_secret", now, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);

	/* only the two storable types reached the topic, keyed by call_sid else conversation id */
	n = read_all(e, T_POST, &msgs);
	assert_int_equal(n, 2);
	for (size_t i = 0; i < n; i++) {
		struct codec_post_call pc;
		char err[256];
		json_t *want;

		assert_int_equal(
		    codec_post_call_decode(msgs[i].value, msgs[i].value_len, &pc, err, sizeof err),
		    0);
		assert_string_equal(ts_kmsg_header(&msgs[i], "event_id"), pc.event_id);
		if (strcmp(ts_kmsg_header(&msgs[i], "type"), "post_call_transcription") == 0) {
			assert_string_equal(msgs[i].key, "EL_1001_2025-11-21T10:30:00Z");
			assert_string_equal(pc.call_sid, "EL_1001_2025-11-21T10:30:00Z");
			want = json_loads(done, 0, NULL);
		} else {
			assert_string_equal(ts_kmsg_header(&msgs[i], "type"),
			                    "call_initiation_failure");
			assert_string_equal(msgs[i].key, "conv_2");
			assert_null(pc.call_sid);
			want = json_loads(failed, 0, NULL);
		}
		assert_true(json_equal(pc.body, want));
		json_decref(want);
		codec_post_call_clear(&pc);
	}
	ts_kmsgs_free(msgs, n);
	assert_true(it_metric(&e->in, "ingress_post_call_audio_dropped_total") == 1);
	assert_true(it_metric(&e->in, "ingress_post_call_ignored_total") == 1);
}

/* A signed post-call webhook of about size bytes whose transcript is one line of random text
 * (lz4 cannot shrink it: the broker sees the real size), for call_sid; malloc'd. */
static char *big_post_call(const char *call_sid, size_t size)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ size;
	char *text = malloc(size + 1), *out;
	json_t *root;

	assert_non_null(text);
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		text[i] = alphabet[x & 63];
	}
	text[size] = '\0';
	root = json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:[{s:s, s:s, s:i}], s:{}, s:{}, "
	                 "s:{s:{s:s}}}}",
	                 "type", "post_call_transcription", "event_timestamp", 1732185000, "data",
	                 "agent_id", "a", "conversation_id", call_sid, "status", "done",
	                 "transcript", "role", "agent", "message", text, "time_in_call_secs", 0,
	                 "metadata", "analysis", "conversation_initiation_client_data",
	                 "dynamic_variables", "call_sid", call_sid);
	assert_non_null(root);
	out = json_dumps(root, JSON_COMPACT);
	assert_non_null(out);
	json_decref(root);
	free(text);
	return out;
}

/* Post-call webhooks are the largest messages: one of 2 MiB (above Kafka's default
 * max.message.bytes of ~1 MiB, below what callpipe's topics are created with) reaches the topic
 * whole. On Kafka, one beyond the topic's limit is refused by the broker: 413 (a retry cannot
 * succeed), nothing published, and the producer goes on with the next one. The devbroker has no
 * size limit, so that half runs on Kafka only. */
static void test_publish_post_call_sizes(void **state)
{
	static const char path[] = "/webhooks/elevenlabs/post-call";
	const char *extra[] = {"INGRESS_MAX_POST_CALL_BODY=8388608", NULL};
	struct it_stack *e = *state;
	struct it_ingress big;
	struct ts_http_resp resp;
	struct ts_kmsg *msgs = NULL;
	size_t n, found = 0, len;
	char *body;

	it_ingress_start(&big, &e->broker, PREFIX, extra, true);
	body = big_post_call("EL_big_2MiB", 2 << 20);
	len = strlen(body);
	it_post_signed(&big, path, body, IT_SECRET, time(NULL), &resp);
	free(body);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	n = read_all(e, T_POST, &msgs);
	for (size_t i = 0; i < n; i++) {
		if (msgs[i].key == NULL || strcmp(msgs[i].key, "EL_big_2MiB") != 0)
			continue;
		found++;
		assert_true(msgs[i].value_len > len);
	}
	ts_kmsgs_free(msgs, n);
	assert_int_equal(found, 1);

	if (ts_broker_kafka_mode()) {
		body = big_post_call("EL_big_6MiB", 6 << 20);
		it_post_signed(&big, path, body, IT_SECRET, time(NULL), &resp);
		free(body);
		if (resp.status != 413 || strstr(resp.body, "too large for the broker") == NULL)
			fail_msg("6 MiB post-call webhook: %ld %s (want 413); log %s", resp.status,
			         resp.body, big.proc.log_path);
		ts_http_resp_free(&resp);
		assert_int_equal(count_key(e, T_POST, "EL_big_6MiB"), 0);
		body = big_post_call("EL_big_after", 1000);
		it_post_signed(&big, path, body, IT_SECRET, time(NULL), &resp);
		free(body);
		assert_int_equal(resp.status, 200);
		ts_http_resp_free(&resp);
		assert_int_equal(count_key(e, T_POST, "EL_big_after"), 1);
	}
	assert_int_equal(it_ingress_stop(&big, 20000), 0);
}

static void test_publish_metrics(void **state)
{
	struct it_stack *e = *state;
	char topic[256], series[320];
	double in_flight;

	assert_true(
	    it_metric(&e->in, "ingress_requests_total{route=\"call_request\",status=\"202\"}") >=
	    2);
	assert_true(
	    it_metric(&e->in, "ingress_requests_total{route=\"call_request\",status=\"401\"}") >=
	    4);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"unauthorized\"}") >= 4);
	assert_true(
	    it_metric(&e->in, "ingress_rejected_total{reason=\"unsupported_media_type\"}") >= 2);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"body_too_large\"}") >= 2);
	snprintf(series, sizeof series, "ingress_publish_latency_seconds_count{topic=\"%s\"}",
	         ts_broker_topic(&e->broker, T_CALLS, topic, sizeof topic));
	assert_true(it_metric(&e->in, series) >= 2);
	/* only the /metrics request itself is in flight once every earlier request completed
	 * (MHD reports completion just after the last byte left, so allow it a moment). Each
	 * reading is a request of its own, whose predecessor may not have completed yet: judge
	 * the reading that ended the wait, not one more. */
	in_flight = it_metric(&e->in, "ingress_in_flight");
	for (int i = 0; i < 100 && in_flight != 1; i++) {
		ts_sleep_ms(20);
		in_flight = it_metric(&e->in, "ingress_in_flight");
	}
	assert_true(in_flight == 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_publish_call_request),
	    cmocka_unit_test(test_publish_call_request_refused),
	    cmocka_unit_test(test_publish_too_large),
	    cmocka_unit_test(test_publish_transcription),
	    cmocka_unit_test(test_publish_webhook_refused),
	    cmocka_unit_test(test_publish_post_call),
	    cmocka_unit_test(test_publish_post_call_sizes),
	    cmocka_unit_test(test_publish_header_limit),
	    cmocka_unit_test(test_publish_refusals_logged_once_a_second),
	    cmocka_unit_test(test_publish_metrics),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
