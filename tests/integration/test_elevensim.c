/* test_elevensim: the fake ElevenLabs itself: API key and body validation like the real API,
 * the answer's shape, signed per-turn and post-call webhooks (retried on non-200), the race and
 * initiation-failure modes, the conversations API, reproducible per-call choices, and the /sim
 * control endpoints. Webhooks go to a receiver inside this test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"
#include "sig.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_HOOKS 64

struct hook {
	char path[64];
	char signature[160];
	char *body;
	long long at_ms;
};

/* The webhook receiver: records every request; answers 503 to the first fail_first ones. */
struct receiver {
	struct MHD_Daemon *daemon;
	unsigned port;
	pthread_mutex_t mu;
	struct hook hooks[MAX_HOOKS];
	int n, fail_first, seen;
};

struct env {
	struct receiver rx;
	struct dit_sim sim;
};

struct rx_req {
	char *body;
	size_t len;
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result rx_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct receiver *rx = cls;
	struct rx_req *r = *con_cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *sig;
	unsigned status = 200;

	(void)method;
	(void)version;
	if (!r) {
		*con_cls = calloc(1, sizeof *r);
		return MHD_YES;
	}
	if (*upload_size) {
		r->body = realloc(r->body, r->len + *upload_size + 1);
		memcpy(r->body + r->len, upload, *upload_size);
		r->len += *upload_size;
		r->body[r->len] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	sig = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ElevenLabs-Signature");
	pthread_mutex_lock(&rx->mu);
	if (rx->seen++ < rx->fail_first) {
		status = 503;
	} else if (rx->n < MAX_HOOKS) {
		struct hook *h = &rx->hooks[rx->n++];

		snprintf(h->path, sizeof h->path, "%s", url);
		snprintf(h->signature, sizeof h->signature, "%s", sig ? sig : "");
		h->body = r->body ? r->body : strdup("");
		r->body = NULL;
		h->at_ms = now_ms();
	}
	pthread_mutex_unlock(&rx->mu);
	free(r->body);
	free(r);
	*con_cls = NULL;
	resp = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void rx_reset(struct receiver *rx, int fail_first)
{
	pthread_mutex_lock(&rx->mu);
	for (int i = 0; i < rx->n; i++)
		free(rx->hooks[i].body);
	rx->n = 0;
	rx->seen = 0;
	rx->fail_first = fail_first;
	pthread_mutex_unlock(&rx->mu);
}

static int rx_count(struct receiver *rx)
{
	int n;

	pthread_mutex_lock(&rx->mu);
	n = rx->n;
	pthread_mutex_unlock(&rx->mu);
	return n;
}

static bool rx_wait(struct receiver *rx, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (rx_count(rx) >= n)
			return true;
		ts_sleep_ms(20);
	}
	return false;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	char url[64], wh[80];
	const char *args[] = {"--webhook-url", url, "--webhook-backoff-ms", "50", NULL};
	const char *env[] = {wh, NULL};

	pthread_mutex_init(&e->rx.mu, NULL);
	e->rx.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, rx_handler,
	                                &e->rx, MHD_OPTION_END);
	assert_non_null(e->rx.daemon);
	e->rx.port = MHD_get_daemon_info(e->rx.daemon, MHD_DAEMON_INFO_BIND_PORT)->port;
	snprintf(url, sizeof url, "http://127.0.0.1:%u", e->rx.port);
	snprintf(wh, sizeof wh, "ELEVENLABS_WEBHOOK_SECRET=%s", DIT_SECRET);
	dit_sim_start(&e->sim, args, env);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dit_sim_stop(&e->sim);
	MHD_stop_daemon(e->rx.daemon);
	rx_reset(&e->rx, 0);
	free(e);
	return 0;
}

static int reset(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	char url[200];

	snprintf(url, sizeof url, "%s/sim/reset", e->sim.url);
	ts_http("POST", url, NULL, "", 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	rx_reset(&e->rx, 0);
	dit_sim_config(&e->sim, "{\"turns\": 2, \"turn_delay_ms\": 50, \"latency_ms\": 0, "
	                        "\"seed\": 1, \"429_share\": 0}");
	return 0;
}

/* POST outbound-call for call_sid with key; body_override replaces the whole body. */
static void dial(const struct env *e, const char *key, const char *call_sid,
                 const char *body_override, struct ts_http_resp *resp)
{
	char url[200], hdr[100], body[512];
	const char *headers[] = {hdr, "Content-Type: application/json", NULL};

	snprintf(url, sizeof url, "%s/v1/convai/twilio/outbound-call", e->sim.url);
	snprintf(hdr, sizeof hdr, "xi-api-key: %s", key);
	snprintf(body, sizeof body,
	         "{\"agent_id\": \"agent_x\", \"agent_phone_number_id\": \"ph_x\", \"to_number\": "
	         "\"+15550100001\", \"conversation_initiation_client_data\": "
	         "{\"dynamic_variables\": {\"call_sid\": \"%s\", \"driver_name\": \"Ada\", "
	         "\"first_message\": \"Hi Ada\"}}}",
	         call_sid);
	if (body_override)
		snprintf(body, sizeof body, "%s", body_override);
	ts_http("POST", url, headers, body, strlen(body), resp);
}

static json_t *body_json(const struct ts_http_resp *resp)
{
	json_t *root = json_loads(resp->body ? resp->body : "", 0, NULL);

	if (!root)
		fail_msg("not JSON: %s", resp->body ? resp->body : "(none)");
	return root;
}

static const char *str(const json_t *o, const char *path)
{
	/* "a.b.c": nested objects */
	char key[64];
	const char *dot;

	while ((dot = strchr(path, '.'))) {
		snprintf(key, sizeof key, "%.*s", (int)(dot - path), path);
		o = json_object_get(o, key);
		path = dot + 1;
	}
	return json_string_value(json_object_get(o, path));
}

/* Places an accepted call (asserts 200) and copies its conversation_id into conv. */
static void dial_accepted(const struct env *e, const char *call_sid, char *conv, size_t size)
{
	struct ts_http_resp resp;
	json_t *root;

	dial(e, DIT_API_KEY, call_sid, NULL, &resp);
	assert_int_equal(resp.status, 200);
	root = body_json(&resp);
	snprintf(conv, size, "%s", str(root, "conversation_id"));
	json_decref(root);
	ts_http_resp_free(&resp);
}

static void test_elevensim_validation(void **state)
{
	static const char *const missing[][2] = {
	    {"{\"agent_phone_number_id\":\"p\",\"to_number\":\"+15550100001\"}", "agent_id"},
	    {"{\"agent_id\":\"a\",\"to_number\":\"+15550100001\"}", "agent_phone_number_id"},
	    {"{\"agent_id\":\"a\",\"agent_phone_number_id\":\"p\"}", "to_number"},
	};
	struct env *e = *state;
	struct ts_http_resp resp;
	json_t *root;

	dial(e, "wrong-key", "EL_v", NULL, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	for (size_t i = 0; i < 3; i++) {
		dial(e, DIT_API_KEY, "EL_v", missing[i][0], &resp);
		assert_int_equal(resp.status, 422);
		root = body_json(&resp);
		assert_string_equal(
		    json_string_value(json_array_get(
		        json_object_get(json_array_get(json_object_get(root, "detail"), 0), "loc"),
		        1)),
		    missing[i][1]);
		json_decref(root);
		ts_http_resp_free(&resp);
	}
	dial(e, DIT_API_KEY, "EL_v",
	     "{\"agent_id\":\"a\",\"agent_phone_number_id\":\"p\",\"to_number\":\"555-0100\"}",
	     &resp);
	assert_int_equal(resp.status, 422);
	ts_http_resp_free(&resp);
	dial(e, DIT_API_KEY, "EL_v", "not json", &resp);
	assert_int_equal(resp.status, 422);
	ts_http_resp_free(&resp);
	/* refused requests place nothing */
	assert_int_equal(dit_sim_requests(&e->sim, "EL_v"), 0);

	dial(e, DIT_API_KEY, "EL_v", NULL, &resp);
	assert_int_equal(resp.status, 200);
	root = body_json(&resp);
	assert_true(json_is_true(json_object_get(root, "success")));
	assert_non_null(str(root, "message"));
	assert_true(strncmp(str(root, "conversation_id"), "conv_", 5) == 0);
	assert_true(strncmp(str(root, "callSid"), "CA", 2) == 0);
	json_decref(root);
	ts_http_resp_free(&resp);
}

static void check_signature(const struct hook *h)
{
	enum sig_result r = sig_verify(DIT_SECRET, h->signature, h->body, strlen(h->body),
	                               (int64_t)time(NULL), 1800, 300);

	if (r != SIG_OK)
		fail_msg("webhook %s: signature %s (%s)", h->path, sig_result_str(r), h->signature);
}

static void test_elevensim_webhooks(void **state)
{
	static const char *const speakers[] = {"agent", "user", "agent"};
	struct env *e = *state;
	json_t *post, *call;
	char conv[64];

	dit_sim_config(&e->sim, "{\"turns\": 3}");
	dial_accepted(e, "EL_w", conv, sizeof conv);
	assert_true(rx_wait(&e->rx, 4, 10000));
	for (int i = 0; i < 3; i++) {
		const struct hook *h = &e->rx.hooks[i];
		json_t *turn = json_loads(h->body, 0, NULL);

		assert_string_equal(h->path, "/webhooks/elevenlabs/transcription");
		check_signature(h);
		assert_string_equal(str(turn, "call_sid"), "EL_w");
		assert_string_equal(str(turn, "speaker"), speakers[i]);
		assert_non_null(str(turn, "message"));
		if (i == 0)
			assert_string_equal(str(turn, "message"), "Hi Ada");
		json_decref(turn);
	}
	assert_string_equal(e->rx.hooks[3].path, "/webhooks/elevenlabs/post-call");
	check_signature(&e->rx.hooks[3]);
	post = json_loads(e->rx.hooks[3].body, 0, NULL);
	assert_string_equal(str(post, "type"), "post_call_transcription");
	assert_true(json_is_integer(json_object_get(post, "event_timestamp")));
	assert_string_equal(str(post, "data.conversation_id"), conv);
	assert_string_equal(str(post, "data.agent_id"), "agent_x");
	assert_string_equal(str(post, "data.status"), "done");
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(post, "data"), "transcript")), 3);
	assert_string_equal(
	    str(json_array_get(json_object_get(json_object_get(post, "data"), "transcript"), 1),
	        "role"),
	    "user");
	assert_true(json_is_integer(json_object_get(
	    json_object_get(json_object_get(post, "data"), "metadata"), "start_time_unix_secs")));
	assert_true(json_is_integer(json_object_get(
	    json_object_get(json_object_get(post, "data"), "metadata"), "call_duration_secs")));
	assert_non_null(str(post, "data.analysis.call_successful"));
	assert_string_equal(
	    str(post, "data.conversation_initiation_client_data.dynamic_variables.call_sid"),
	    "EL_w");
	json_decref(post);
	ts_sleep_ms(100);
	call = dit_sim_call(&e->sim, "EL_w");
	assert_int_equal(json_integer_value(json_object_get(call, "webhooks_sent")), 4);
	assert_true(json_is_true(json_object_get(call, "post_call_sent")));
	assert_string_equal(str(call, "outcome"), "ok");
	assert_int_equal(json_array_size(json_object_get(call, "lines")), 3);
	json_decref(call);
}

static void test_elevensim_webhook_retries(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	json_t *call;

	rx_reset(&e->rx, 2); /* the first two deliveries are answered 503 */
	dial(e, DIT_API_KEY, "EL_r", NULL, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	assert_true(rx_wait(&e->rx, 3, 10000)); /* 2 turns + post-call, all delivered in the end */
	assert_string_equal(e->rx.hooks[0].path, "/webhooks/elevenlabs/transcription");
	assert_string_equal(e->rx.hooks[2].path, "/webhooks/elevenlabs/post-call");
	ts_sleep_ms(100);
	call = dit_sim_call(&e->sim, "EL_r");
	assert_int_equal(json_integer_value(json_object_get(call, "webhook_attempts")), 5);
	assert_int_equal(json_integer_value(json_object_get(call, "webhooks_sent")), 3);
	assert_int_equal(json_integer_value(json_object_get(call, "webhooks_failed")), 0);
	json_decref(call);
}

static void test_elevensim_race(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	long long answered;

	dit_sim_config(&e->sim,
	               "{\"latency_ms\": 200, \"calls\": {\"EL_race\": {\"mode\": \"race\"}}}");
	dial(e, DIT_API_KEY, "EL_race", NULL, &resp);
	answered = now_ms();
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	assert_true(rx_wait(&e->rx, 1, 5000));
	/* the first webhook had arrived at least the latency before the API answered */
	assert_true(e->rx.hooks[0].at_ms <= answered - 150);
	assert_string_equal(e->rx.hooks[0].path, "/webhooks/elevenlabs/transcription");
}

static void test_elevensim_initiation_failure(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	json_t *post, *root;
	char url[300], conv[64];
	const char *hdr[] = {"xi-api-key: " DIT_API_KEY, NULL};

	dit_sim_config(&e->sim, "{\"calls\": {\"EL_if\": {\"mode\": \"initiation_failure\"}}}");
	dial_accepted(e, "EL_if", conv, sizeof conv);
	assert_true(rx_wait(&e->rx, 1, 5000));
	ts_sleep_ms(300);
	assert_int_equal(rx_count(&e->rx), 1); /* no turns */
	assert_string_equal(e->rx.hooks[0].path, "/webhooks/elevenlabs/post-call");
	check_signature(&e->rx.hooks[0]);
	post = json_loads(e->rx.hooks[0].body, 0, NULL);
	assert_string_equal(str(post, "type"), "call_initiation_failure");
	assert_string_equal(str(post, "data.conversation_id"), conv);
	assert_non_null(str(post, "data.failure_reason"));
	json_decref(post);
	snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", e->sim.url, conv);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	root = body_json(&resp);
	assert_string_equal(str(root, "status"), "failed");
	json_decref(root);
	ts_http_resp_free(&resp);
}

static void test_elevensim_conversations_api(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	json_t *root;
	char url[300], conv[64];
	const char *hdr[] = {"xi-api-key: " DIT_API_KEY, NULL};
	const char *bad[] = {"xi-api-key: nope", NULL};

	dit_sim_config(&e->sim, "{\"turn_delay_ms\": 400, \"no_post_call_share\": 1}");
	dial_accepted(e, "EL_conv", conv, sizeof conv);
	snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", e->sim.url, conv);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	root = body_json(&resp);
	assert_string_equal(str(root, "status"), "initiated");
	assert_string_equal(str(root, "conversation_id"), conv);
	assert_string_equal(
	    str(root, "conversation_initiation_client_data.dynamic_variables.call_sid"), "EL_conv");
	json_decref(root);
	ts_http_resp_free(&resp);
	ts_sleep_ms(1600); /* 2 turns 400 ms apart, then the end */
	ts_http("GET", url, hdr, NULL, 0, &resp);
	root = body_json(&resp);
	assert_string_equal(str(root, "status"), "done");
	assert_int_equal(json_array_size(json_object_get(root, "transcript")), 2);
	assert_true(json_is_integer(
	    json_object_get(json_object_get(root, "metadata"), "start_time_unix_secs")));
	json_decref(root);
	ts_http_resp_free(&resp);
	/* no post-call for this call: only the turns reached the receiver */
	assert_int_equal(rx_count(&e->rx), 2);
	ts_http("GET", url, bad, NULL, 0, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	snprintf(url, sizeof url, "%s/v1/convai/conversations/conv_nope", e->sim.url);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 404);
	ts_http_resp_free(&resp);
}

/* The statuses elevensim answers for 30 call_sids with a 50% 429 share and seed. */
static void answers_for_seed(struct env *e, int seed, long *out)
{
	struct ts_http_resp resp;
	char json[128], sid[32];

	reset((void **)&e);
	snprintf(json, sizeof json, "{\"seed\": %d, \"429_share\": 0.5, \"webhooks\": false}",
	         seed);
	dit_sim_config(&e->sim, json);
	for (int i = 0; i < 30; i++) {
		snprintf(sid, sizeof sid, "EL_seed_%d", i);
		dial(e, DIT_API_KEY, sid, NULL, &resp);
		out[i] = resp.status;
		ts_http_resp_free(&resp);
	}
}

static void test_elevensim_reproducible(void **state)
{
	struct env *e = *state;
	long a[30], b[30], c[30];
	int n429 = 0, differ = 0;

	answers_for_seed(e, 7, a);
	answers_for_seed(e, 7, b);
	answers_for_seed(e, 8, c);
	for (int i = 0; i < 30; i++) {
		assert_int_equal(a[i], b[i]);
		assert_true(a[i] == 200 || a[i] == 429);
		n429 += a[i] == 429;
		differ += a[i] != c[i];
	}
	assert_in_range(n429, 5, 25);
	assert_true(differ > 0);
	dit_sim_config(&e->sim, "{\"webhooks\": true}");
}

static void test_elevensim_control(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	char url[200];
	json_t *totals;

	dit_sim_config(&e->sim, "{\"webhooks\": false}");
	dial(e, DIT_API_KEY, "EL_ctl", NULL, &resp);
	ts_http_resp_free(&resp);
	totals = dit_sim_totals(&e->sim);
	assert_int_equal(json_integer_value(json_object_get(totals, "outbound_requests")), 1);
	json_decref(totals);
	snprintf(url, sizeof url, "%s/sim/config", e->sim.url);
	ts_http("PUT", url, NULL, "{\"no_such_knob\": 1}", 19, &resp);
	assert_int_equal(resp.status, 400);
	ts_http_resp_free(&resp);
	ts_http("PUT", url, NULL, "{\"429_share\": 2}", 16, &resp);
	assert_int_equal(resp.status, 400);
	ts_http_resp_free(&resp);
	ts_http("PUT", url, NULL, "{\"calls\": {\"x\": {\"answers\": [\"maybe\"]}}}", 40, &resp);
	assert_int_equal(resp.status, 400);
	ts_http_resp_free(&resp);
	snprintf(url, sizeof url, "%s/sim/reset", e->sim.url);
	ts_http("POST", url, NULL, "", 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	totals = dit_sim_totals(&e->sim);
	assert_int_equal(json_integer_value(json_object_get(totals, "calls")), 0);
	json_decref(totals);
	dit_sim_config(&e->sim, "{\"webhooks\": true}");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_elevensim_validation, reset),
	    cmocka_unit_test_setup(test_elevensim_webhooks, reset),
	    cmocka_unit_test_setup(test_elevensim_webhook_retries, reset),
	    cmocka_unit_test_setup(test_elevensim_race, reset),
	    cmocka_unit_test_setup(test_elevensim_initiation_failure, reset),
	    cmocka_unit_test_setup(test_elevensim_conversations_api, reset),
	    cmocka_unit_test_setup(test_elevensim_reproducible, reset),
	    cmocka_unit_test_setup(test_elevensim_control, reset),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
