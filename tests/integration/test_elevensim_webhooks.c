/* test_elevensim_webhooks: the fake ElevenLabs' webhooks: signed per-turn and post-call
 * webhooks (retried on non-200), the race and initiation-failure modes, and a placed call
 * answered as a gateway error (502/504). Webhooks go to a receiver inside this test
 * (test_elevensim_util.c; the API itself: test_elevensim.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"
#include "sig.h"
#include "test_elevensim_util.h"

#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void check_signature(const struct est_hook *h)
{
	enum sig_result r = sig_verify(DIT_SECRET, h->signature, h->body, strlen(h->body),
	                               (int64_t)time(NULL), 1800, 300);

	if (r != SIG_OK)
		fail_msg("webhook %s: signature %s (%s)", h->path, sig_result_str(r), h->signature);
}

static void test_elevensim_webhooks(void **state)
{
	static const char *const speakers[] = {"agent", "user", "agent"};
	struct est_env *e = *state;
	json_t *post, *call;
	char conv[64];

	dit_sim_config(&e->sim, "{\"turns\": 3}");
	est_dial_accepted(e, "EL_w", conv, sizeof conv);
	assert_true(est_rx_wait(&e->rx, 4, 10000));
	for (int i = 0; i < 3; i++) {
		const struct est_hook *h = &e->rx.hooks[i];
		json_t *turn = json_loads(h->body, 0, NULL);

		assert_string_equal(h->path, "/webhooks/elevenlabs/transcription");
		check_signature(h);
		assert_string_equal(h->call_token, ""); /* no call_token: signed, as before */
		assert_null(json_object_get(turn, "idempotency_key"));
		assert_string_equal(est_str(turn, "call_sid"), "EL_w");
		assert_string_equal(est_str(turn, "speaker"), speakers[i]);
		assert_non_null(est_str(turn, "message"));
		if (i == 0)
			assert_string_equal(est_str(turn, "message"), "Hi Ada");
		json_decref(turn);
	}
	assert_string_equal(e->rx.hooks[3].path, "/webhooks/elevenlabs/post-call");
	check_signature(&e->rx.hooks[3]);
	post = json_loads(e->rx.hooks[3].body, 0, NULL);
	assert_string_equal(est_str(post, "type"), "post_call_transcription");
	assert_true(json_is_integer(json_object_get(post, "event_timestamp")));
	assert_string_equal(est_str(post, "data.conversation_id"), conv);
	assert_string_equal(est_str(post, "data.agent_id"), "agent_x");
	assert_string_equal(est_str(post, "data.status"), "done");
	assert_int_equal(
	    json_array_size(json_object_get(json_object_get(post, "data"), "transcript")), 3);
	assert_string_equal(
	    est_str(json_array_get(json_object_get(json_object_get(post, "data"), "transcript"), 1),
	            "role"),
	    "user");
	assert_true(json_is_integer(json_object_get(
	    json_object_get(json_object_get(post, "data"), "metadata"), "start_time_unix_secs")));
	assert_true(json_is_integer(json_object_get(
	    json_object_get(json_object_get(post, "data"), "metadata"), "call_duration_secs")));
	assert_non_null(est_str(post, "data.analysis.call_successful"));
	assert_string_equal(
	    est_str(post, "data.conversation_initiation_client_data.dynamic_variables.call_sid"),
	    "EL_w");
	json_decref(post);
	ts_sleep_ms(100);
	call = dit_sim_call(&e->sim, "EL_w");
	assert_int_equal(json_integer_value(json_object_get(call, "webhooks_sent")), 4);
	assert_true(json_is_true(json_object_get(call, "post_call_sent")));
	assert_string_equal(est_str(call, "outcome"), "ok");
	assert_int_equal(json_array_size(json_object_get(call, "lines")), 3);
	json_decref(call);
}

/* A call whose dynamic variables carry a call_token plays its turns as an agent's tool would
 * post them: unsigned, with the token and the tool secret in headers and an idempotency key per
 * turn; the post-call webhook (ElevenLabs' own) stays signed. */
static void test_elevensim_tool_lines(void **state)
{
	static const char token[] =
	    "v1.1763800000.331b46d693ad6dd57fff49ea6ac4dedcfc18e0b57c38615ede046f0ece128ade";
	struct est_env *e = *state;
	struct ts_http_resp resp;
	json_t *root;
	char body[700], conv[64], want_key[96];

	snprintf(
	    body, sizeof body,
	    "{\"agent_id\": \"agent_x\", \"agent_phone_number_id\": \"ph_x\", \"to_number\": "
	    "\"+12125550101\", \"conversation_initiation_client_data\": {\"dynamic_variables\": "
	    "{\"call_sid\": \"EL_tool\", \"first_message\": \"Hi\", \"call_token\": \"%s\"}}}",
	    token);
	est_dial(e, DIT_API_KEY, "EL_tool", body, &resp);
	assert_int_equal(resp.status, 200);
	root = est_body_json(&resp);
	snprintf(conv, sizeof conv, "%s", est_str(root, "conversation_id"));
	json_decref(root);
	ts_http_resp_free(&resp);
	assert_true(est_rx_wait(&e->rx, 3, 10000)); /* 2 turns + post-call */
	for (int i = 0; i < 2; i++) {
		const struct est_hook *h = &e->rx.hooks[i];
		json_t *turn = json_loads(h->body, 0, NULL);

		assert_string_equal(h->path, "/webhooks/elevenlabs/transcription");
		assert_string_equal(h->signature, "");
		assert_string_equal(h->call_token, token);
		assert_string_equal(h->tool_secret, EST_TOOL_SECRET);
		assert_string_equal(est_str(turn, "call_sid"), "EL_tool");
		snprintf(want_key, sizeof want_key, "%s:%d", conv, i);
		assert_string_equal(est_str(turn, "idempotency_key"), want_key);
		json_decref(turn);
	}
	assert_string_equal(e->rx.hooks[2].path, "/webhooks/elevenlabs/post-call");
	check_signature(&e->rx.hooks[2]);
	assert_string_equal(e->rx.hooks[2].call_token, "");
}

static void test_elevensim_webhook_retries(void **state)
{
	struct est_env *e = *state;
	struct ts_http_resp resp;
	json_t *call;

	est_rx_reset(&e->rx, 2); /* the first two deliveries are answered 503 */
	est_dial(e, DIT_API_KEY, "EL_r", NULL, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	assert_true(
	    est_rx_wait(&e->rx, 3, 10000)); /* 2 turns + post-call, all delivered in the end */
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
	struct est_env *e = *state;
	struct ts_http_resp resp;
	long long answered;

	dit_sim_config(&e->sim,
	               "{\"latency_ms\": 200, \"calls\": {\"EL_race\": {\"mode\": \"race\"}}}");
	est_dial(e, DIT_API_KEY, "EL_race", NULL, &resp);
	answered = est_now_ms();
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	assert_true(est_rx_wait(&e->rx, 1, 5000));
	/* the first webhook had arrived at least the latency before the API answered */
	assert_true(e->rx.hooks[0].at_ms <= answered - 150);
	assert_string_equal(e->rx.hooks[0].path, "/webhooks/elevenlabs/transcription");
}

/* Deliveries the receiver got, the ones it answered 503 included. */
static int rx_seen(struct est_receiver *rx)
{
	int seen;

	pthread_mutex_lock(&rx->mu);
	seen = rx->seen;
	pthread_mutex_unlock(&rx->mu);
	return seen;
}

/* POST /sim/reset stops playback, a webhook being retried included: it must not go on
 * occupying the webhook threads (and landing on a new call with the same call_sid). */
static void test_elevensim_reset_stops_retries(void **state)
{
	struct est_env *e = *state;
	struct ts_http_resp resp;
	char url[200];
	int seen;

	est_rx_reset(&e->rx, 1000); /* every delivery is answered 503 */
	est_dial(e, DIT_API_KEY, "EL_rr", NULL, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	for (int waited = 0; waited < 5000 && rx_seen(&e->rx) < 1; waited += 10)
		ts_sleep_ms(10);
	snprintf(url, sizeof url, "%s/sim/reset", e->sim.url);
	ts_http("POST", url, NULL, "", 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	seen = rx_seen(&e->rx);
	assert_true(seen >= 1);
	ts_sleep_ms(600); /* three retries, 50 + 100 + 200 ms apart, would have come by now */
	assert_int_equal(rx_seen(&e->rx), seen);
}

#define RACE_DIALS 16 /* four times elevensim's default webhook threads */

struct race_dial {
	const struct est_env *e;
	pthread_barrier_t *start;
	char call_sid[32];
	long status;
	long long ms;
};

static void *race_dial_run(void *arg)
{
	struct race_dial *d = arg;
	struct ts_http_resp resp;
	long long t0;

	pthread_barrier_wait(d->start);
	t0 = est_now_ms();
	est_dial(d->e, DIT_API_KEY, d->call_sid, NULL, &resp);
	d->ms = est_now_ms() - t0;
	d->status = resp.status;
	ts_http_resp_free(&resp);
	return NULL;
}

/* A port that accepts connections and never answers: every webhook to it times out. Returns
 * the listening socket (the caller closes it) and writes its port. */
static int blackhole_listen(unsigned *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 64), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A burst of race calls to a webhook target that never answers: each answer waits for its own
 * first webhook (at most one webhook timeout), not for the other calls' webhooks queued ahead
 * of it on the webhook threads. */
static void test_elevensim_race_burst_unreachable(void **state)
{
	struct est_env *e = *state;
	struct race_dial d[RACE_DIALS];
	pthread_t th[RACE_DIALS];
	pthread_barrier_t start;
	long long slowest = 0;
	unsigned port;
	char cfg[300];
	int fd = blackhole_listen(&port);

	snprintf(cfg, sizeof cfg,
	         "{\"race_share\": 1, \"webhook_url\": \"http://127.0.0.1:%u\", "
	         "\"webhook_timeout_ms\": 500, \"webhook_retries\": 0}",
	         port);
	dit_sim_config(&e->sim, cfg);
	assert_int_equal(pthread_barrier_init(&start, NULL, RACE_DIALS), 0);
	for (int i = 0; i < RACE_DIALS; i++) {
		d[i] = (struct race_dial){.e = e, .start = &start};
		snprintf(d[i].call_sid, sizeof d[i].call_sid, "EL_rb_%d", i);
		assert_int_equal(pthread_create(&th[i], NULL, race_dial_run, &d[i]), 0);
	}
	for (int i = 0; i < RACE_DIALS; i++) {
		pthread_join(th[i], NULL);
		slowest = d[i].ms > slowest ? d[i].ms : slowest;
	}
	pthread_barrier_destroy(&start);
	close(fd);
	for (int i = 0; i < RACE_DIALS; i++)
		assert_int_equal(d[i].status, 200);
	/* held behind the queue, the last answers came after four webhook timeouts (2 s) */
	if (slowest >= 1000)
		fail_msg("slowest race answer took %lld ms (webhook timeout 500 ms)", slowest);
}

/* SIGTERM while a webhook waits for an answer that never comes: elevensim ends it and exits at
 * once, not after the webhook timeout (here a minute). */
static void test_elevensim_stops_during_a_webhook(void **state)
{
	struct est_env *e = *state, own = {0};
	struct ts_http_resp resp;
	struct pollfd pfd;
	unsigned port;
	char url[64];
	const char *args[] = {"--webhook-url", url, "--webhook-timeout-ms", "60000", NULL};
	long long t0, took;
	int fd = blackhole_listen(&port), rc;

	snprintf(url, sizeof url, "http://127.0.0.1:%u", port);
	dit_sim_start(&e->spare, args, NULL);
	own.sim = e->spare;
	est_dial(&own, DIT_API_KEY, "EL_stop", NULL, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	pfd = (struct pollfd){.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&pfd, 1, 5000), 1); /* the first webhook is connected, unanswered */
	ts_sleep_ms(200);
	t0 = est_now_ms();
	rc = ts_proc_stop(&e->spare.proc, SIGTERM, 10000);
	took = est_now_ms() - t0;
	e->spare.proc.pid = 0;
	close(fd);
	assert_int_equal(rc, 0);
	/* libcurl asks its progress callback at least once a second */
	if (took > 4000)
		fail_msg("elevensim took %lld ms to exit on SIGTERM during a webhook", took);
}

static void test_elevensim_initiation_failure(void **state)
{
	struct est_env *e = *state;
	struct ts_http_resp resp;
	json_t *post, *root;
	char url[300], conv[64];
	const char *hdr[] = {"xi-api-key: " DIT_API_KEY, NULL};

	dit_sim_config(&e->sim, "{\"calls\": {\"EL_if\": {\"mode\": \"initiation_failure\"}}}");
	est_dial_accepted(e, "EL_if", conv, sizeof conv);
	assert_true(est_rx_wait(&e->rx, 1, 5000));
	ts_sleep_ms(300);
	assert_int_equal(est_rx_count(&e->rx), 1); /* no turns */
	assert_string_equal(e->rx.hooks[0].path, "/webhooks/elevenlabs/post-call");
	check_signature(&e->rx.hooks[0]);
	post = json_loads(e->rx.hooks[0].body, 0, NULL);
	assert_string_equal(est_str(post, "type"), "call_initiation_failure");
	assert_string_equal(est_str(post, "data.conversation_id"), conv);
	assert_non_null(est_str(post, "data.failure_reason"));
	json_decref(post);
	snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", e->sim.url, conv);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	root = est_body_json(&resp);
	assert_string_equal(est_str(root, "status"), "failed");
	json_decref(root);
	ts_http_resp_free(&resp);
}

/* placed_502 / placed_504 (scripted, or by share): the call is placed and plays with all its
 * webhooks, but the API answers as a gateway that lost the answer. */
static void test_elevensim_placed_gateway_error(void **state)
{
	static const struct {
		const char *sid;
		long status;
		const char *detail;
	} cases[] = {
	    {"EL_pg502", 502, "bad_gateway"},
	    {"EL_pg504", 504, "gateway_timeout"},
	};
	struct est_env *e = *state;
	const char *hdr[] = {"xi-api-key: " DIT_API_KEY, NULL};

	dit_sim_config(&e->sim, "{\"calls\": {\"EL_pg502\": {\"answers\": [\"placed_502\"]}}, "
	                        "\"placed_504_share\": 1}");
	for (size_t i = 0; i < 2; i++) {
		struct ts_http_resp resp;
		json_t *root, *call, *post;
		char url[300], conv[64];
		int hooks = est_rx_count(&e->rx);

		est_dial(e, DIT_API_KEY, cases[i].sid, NULL, &resp);
		assert_int_equal(resp.status, cases[i].status);
		root = est_body_json(&resp);
		assert_string_equal(est_str(root, "detail.status"), cases[i].detail);
		assert_null(json_object_get(root, "conversation_id")); /* the client cannot know */
		json_decref(root);
		ts_http_resp_free(&resp);
		/* but the call exists: it plays its 2 turns and its post-call */
		call = dit_sim_call(&e->sim, cases[i].sid);
		assert_int_equal(json_integer_value(json_object_get(call, "accepted")), 1);
		assert_int_equal(
		    json_integer_value(json_array_get(json_object_get(call, "answers"), 0)),
		    cases[i].status);
		assert_non_null(est_str(call, "conversation_id"));
		snprintf(conv, sizeof conv, "%s", est_str(call, "conversation_id"));
		json_decref(call);
		snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", e->sim.url, conv);
		ts_http("GET", url, hdr, NULL, 0, &resp);
		assert_int_equal(resp.status, 200);
		ts_http_resp_free(&resp);
		assert_true(est_rx_wait(&e->rx, hooks + 3, 10000));
		assert_string_equal(e->rx.hooks[hooks + 2].path, "/webhooks/elevenlabs/post-call");
		post = json_loads(e->rx.hooks[hooks + 2].body, 0, NULL);
		assert_string_equal(est_str(post, "data.conversation_id"), conv);
		assert_string_equal(
		    est_str(post,
		            "data.conversation_initiation_client_data.dynamic_variables.call_sid"),
		    cases[i].sid);
		json_decref(post);
		ts_sleep_ms(100);
		call = dit_sim_call(&e->sim, cases[i].sid);
		assert_string_equal(est_str(call, "outcome"), "ok");
		assert_true(json_is_true(json_object_get(call, "post_call_sent")));
		json_decref(call);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_elevensim_webhooks, est_reset),
	    cmocka_unit_test_setup(test_elevensim_tool_lines, est_reset),
	    cmocka_unit_test_setup(test_elevensim_webhook_retries, est_reset),
	    cmocka_unit_test_setup(test_elevensim_race, est_reset),
	    cmocka_unit_test_setup(test_elevensim_race_burst_unreachable, est_reset),
	    cmocka_unit_test_setup(test_elevensim_reset_stops_retries, est_reset),
	    cmocka_unit_test_setup(test_elevensim_initiation_failure, est_reset),
	    cmocka_unit_test_setup(test_elevensim_stops_during_a_webhook, est_reset),
	    cmocka_unit_test_setup(test_elevensim_placed_gateway_error, est_reset),
	};

	return cmocka_run_group_tests(tests, est_setup, est_teardown);
}
