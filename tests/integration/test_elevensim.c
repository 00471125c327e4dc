/* test_elevensim: the fake ElevenLabs' API: API key and body validation like the real API, the
 * answer's shape, the conversations API, reproducible per-call choices, and the /sim control
 * endpoints (its webhooks and failure modes: test_elevensim_webhooks.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"
#include "test_elevensim_util.h"

#include <stdio.h>
#include <string.h>

static void test_elevensim_validation(void **state)
{
	static const char *const missing[][2] = {
	    {"{\"agent_phone_number_id\":\"p\",\"to_number\":\"+15550100001\"}", "agent_id"},
	    {"{\"agent_id\":\"a\",\"to_number\":\"+15550100001\"}", "agent_phone_number_id"},
	    {"{\"agent_id\":\"a\",\"agent_phone_number_id\":\"p\"}", "to_number"},
	};
	struct est_env *e = *state;
	struct ts_http_resp resp;
	json_t *root;

	est_dial(e, "wrong-key", "EL_v", NULL, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	for (size_t i = 0; i < 3; i++) {
		est_dial(e, DIT_API_KEY, "EL_v", missing[i][0], &resp);
		assert_int_equal(resp.status, 422);
		root = est_body_json(&resp);
		assert_string_equal(
		    json_string_value(json_array_get(
		        json_object_get(json_array_get(json_object_get(root, "detail"), 0), "loc"),
		        1)),
		    missing[i][1]);
		json_decref(root);
		ts_http_resp_free(&resp);
	}
	est_dial(e, DIT_API_KEY, "EL_v",
	         "{\"agent_id\":\"a\",\"agent_phone_number_id\":\"p\",\"to_number\":\"555-0100\"}",
	         &resp);
	assert_int_equal(resp.status, 422);
	ts_http_resp_free(&resp);
	est_dial(e, DIT_API_KEY, "EL_v", "not json", &resp);
	assert_int_equal(resp.status, 422);
	ts_http_resp_free(&resp);
	/* refused requests place nothing */
	assert_int_equal(dit_sim_requests(&e->sim, "EL_v"), 0);

	est_dial(e, DIT_API_KEY, "EL_v", NULL, &resp);
	assert_int_equal(resp.status, 200);
	root = est_body_json(&resp);
	assert_true(json_is_true(json_object_get(root, "success")));
	assert_non_null(est_str(root, "message"));
	assert_true(strncmp(est_str(root, "conversation_id"), "conv_", 5) == 0);
	assert_true(strncmp(est_str(root, "callSid"), "CA", 2) == 0);
	json_decref(root);
	ts_http_resp_free(&resp);
}

static void test_elevensim_conversations_api(void **state)
{
	struct est_env *e = *state;
	struct ts_http_resp resp;
	json_t *root;
	char url[300], conv[64];
	const char *hdr[] = {"xi-api-key: " DIT_API_KEY, NULL};
	const char *bad[] = {"xi-api-key: nope", NULL};

	dit_sim_config(&e->sim, "{\"turn_delay_ms\": 400, \"no_post_call_share\": 1}");
	est_dial_accepted(e, "EL_conv", conv, sizeof conv);
	snprintf(url, sizeof url, "%s/v1/convai/conversations/%s", e->sim.url, conv);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	root = est_body_json(&resp);
	assert_string_equal(est_str(root, "status"), "initiated");
	assert_string_equal(est_str(root, "conversation_id"), conv);
	assert_string_equal(
	    est_str(root, "conversation_initiation_client_data.dynamic_variables.call_sid"),
	    "EL_conv");
	json_decref(root);
	ts_http_resp_free(&resp);
	ts_sleep_ms(1600); /* 2 turns 400 ms apart, then the end */
	ts_http("GET", url, hdr, NULL, 0, &resp);
	root = est_body_json(&resp);
	assert_string_equal(est_str(root, "status"), "done");
	assert_int_equal(json_array_size(json_object_get(root, "transcript")), 2);
	assert_true(json_is_integer(
	    json_object_get(json_object_get(root, "metadata"), "start_time_unix_secs")));
	json_decref(root);
	ts_http_resp_free(&resp);
	/* no post-call for this call: only the turns reached the receiver */
	assert_int_equal(est_rx_count(&e->rx), 2);
	ts_http("GET", url, bad, NULL, 0, &resp);
	assert_int_equal(resp.status, 401);
	ts_http_resp_free(&resp);
	snprintf(url, sizeof url, "%s/v1/convai/conversations/conv_nope", e->sim.url);
	ts_http("GET", url, hdr, NULL, 0, &resp);
	assert_int_equal(resp.status, 404);
	ts_http_resp_free(&resp);
}

/* The statuses elevensim answers for 30 call_sids with a 50% 429 share and seed. */
static void answers_for_seed(struct est_env *e, int seed, long *out)
{
	struct ts_http_resp resp;
	char json[128], sid[32];

	est_reset((void **)&e);
	snprintf(json, sizeof json, "{\"seed\": %d, \"429_share\": 0.5, \"webhooks\": false}",
	         seed);
	dit_sim_config(&e->sim, json);
	for (int i = 0; i < 30; i++) {
		snprintf(sid, sizeof sid, "EL_seed_%d", i);
		est_dial(e, DIT_API_KEY, sid, NULL, &resp);
		out[i] = resp.status;
		ts_http_resp_free(&resp);
	}
}

static void test_elevensim_reproducible(void **state)
{
	struct est_env *e = *state;
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
	struct est_env *e = *state;
	struct ts_http_resp resp;
	char url[200];
	json_t *totals;

	dit_sim_config(&e->sim, "{\"webhooks\": false}");
	est_dial(e, DIT_API_KEY, "EL_ctl", NULL, &resp);
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
	    cmocka_unit_test_setup(test_elevensim_validation, est_reset),
	    cmocka_unit_test_setup(test_elevensim_conversations_api, est_reset),
	    cmocka_unit_test_setup(test_elevensim_reproducible, est_reset),
	    cmocka_unit_test_setup(test_elevensim_control, est_reset),
	};

	return cmocka_run_group_tests(tests, est_setup, est_teardown);
}
