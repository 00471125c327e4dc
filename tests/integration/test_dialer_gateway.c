/* test_dialer_gateway: a 502 or 504 from the outbound-call API after the request was sent may
 * mean the call was placed, so it is never retried. elevensim places the call and then answers
 * like a gateway that lost the answer (placed_502 / placed_504); the whole webhook path runs
 * (elevensim -> ingress -> transcriber). Each call rings once (one request, one conversation in
 * elevensim). With its post-call webhook the call ends completed: the transcriber heals its
 * conversation_id and stores its lines. Without one, the sweeper settles it as
 * dial_outcome_unknown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"
#include "ingress_it.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "dgw."

struct env {
	struct dit_stack st;
	struct it_ingress in;
	struct ts_proc transcriber;
	struct dit_dialer dialer;
};

/* Starts the transcriber against the stack (its own group on the broker). */
static void transcriber_start(struct env *e)
{
	char bin[512], brokers[300], prefix[200], db[2100], schema[128], listen[64], group[300],
	    gname[240];
	const char *argv[] = {ts_bin("transcriber", bin, sizeof bin), NULL};
	const char *env[16];
	size_t n = 0;

	snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", e->st.broker.bootstrap);
	snprintf(prefix, sizeof prefix, "KAFKA_TOPIC_PREFIX=%s", e->st.broker.prefix);
	snprintf(db, sizeof db, "DATABASE_URL=%s", ts_pg_url());
	snprintf(schema, sizeof schema, "DB_SCHEMA=%s", e->st.schema);
	snprintf(listen, sizeof listen, "HTTP_LISTEN=127.0.0.1:%u", ts_free_port());
	snprintf(group, sizeof group, "TRANSCRIBER_GROUP=%s",
	         ts_broker_group(&e->st.broker, "transcriber", gname, sizeof gname));
	env[n++] = brokers;
	env[n++] = prefix;
	env[n++] = db;
	env[n++] = schema;
	env[n++] = listen;
	env[n++] = group;
	env[n++] = "KAFKA_SESSION_TIMEOUT_MS=3000";
	env[n++] = "LOG_LEVEL=info";
	env[n] = NULL;
	ts_proc_start(&e->transcriber, argv, env);
}

static int setup(void **state)
{
	static const char *const sim_args[] = {"--webhook-secret", IT_SECRET, NULL};
	/* The sweeper settles a claimed call without conversation_id once the claim is older
	 * than the longest possible dial (one attempt of 3 s) + 5 s. */
	static const char *const dialer_env[] = {
	    "DIALER_SWEEPER=true",
	    "DIALER_SWEEP_AGE_S=1",
	    "DIALER_SWEEP_INTERVAL_S=1",
	    "DIALER_MAX_ATTEMPTS=1",
	    "DIALER_REQUEST_TIMEOUT_MS=3000",
	    "DIALER_RETRY_AFTER_MAX_S=0",
	    NULL,
	};
	struct env *e = calloc(1, sizeof *e);
	char cfg[300];

	dit_stack_start(&e->st, "dgateway", PREFIX, 2, sim_args);
	it_ingress_start(&e->in, &e->st.broker, PREFIX, NULL, true);
	snprintf(cfg, sizeof cfg, "{\"webhooks\": true, \"webhook_url\": \"%s\"}", e->in.base);
	dit_sim_config(&e->st.sim, cfg);
	transcriber_start(e);
	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url,
	                 dialer_env);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dit_dialer_stop(&e->dialer, SIGTERM, 20000);
	ts_proc_stop(&e->transcriber, SIGTERM, 20000);
	it_ingress_stop(&e->in, 20000);
	dit_stack_stop(&e->st);
	free(e);
	return 0;
}

static void script(struct env *e, const char *call_sid, const char *json)
{
	char cfg[512];

	snprintf(cfg, sizeof cfg, "{\"calls\": {\"%s\": %s}}", call_sid, json);
	dit_sim_config(&e->st.sim, cfg);
}

/* elevensim's conversation_id for call_sid (placed, though the dialer never heard of it). */
static void sim_conversation(struct env *e, const char *call_sid, char *out, size_t size)
{
	json_t *call = dit_sim_call(&e->st.sim, call_sid);
	const char *conv = json_string_value(json_object_get(call, "conversation_id"));

	assert_non_null(conv);
	snprintf(out, size, "%s", conv);
	json_decref(call);
}

static long long lines(struct env *e, const char *conversation_id)
{
	char sql[256];

	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM call_transcriptions WHERE conversation_id = '%s'",
	         conversation_id);
	return ts_pg_query_ll(e->st.schema, sql);
}

static void test_dialer_gateway_error_resolved_by_post_call(void **state)
{
	static const char *const sids[] = {"EL_gw_502", "EL_gw_504"};
	struct env *e = *state;

	script(e, sids[0], "{\"answers\": [\"placed_502\", \"ok\"]}");
	script(e, sids[1], "{\"answers\": [\"placed_504\", \"ok\"]}");
	for (size_t i = 0; i < 2; i++)
		dit_publish(&e->st.broker, PREFIX, sids[i], "gw");
	for (size_t i = 0; i < 2; i++) {
		struct store_call c;
		char conv[64];

		assert_true(dit_wait_call(e->st.schema, sids[i], STORE_CALL_COMPLETED, 30000));
		sim_conversation(e, sids[i], conv, sizeof conv);
		assert_true(dit_call(e->st.schema, sids[i], &c));
		assert_string_equal(c.conversation_id, conv); /* healed by the post-call */
		assert_string_equal(c.failure_reason, "");
		assert_true(c.call_end_time[0] != '\0');
		assert_int_equal(c.dial_attempts, 1);
		for (int w = 0; w < 100 && lines(e, conv) < 2; w++)
			ts_sleep_ms(50);
		assert_int_equal(lines(e, conv), 2); /* its two turns, stored once */
		/* one ring: one request, never a second one */
		assert_int_equal(dit_sim_requests(&e->st.sim, sids[i]), 1);
	}
	assert_true(
	    dit_metric(&e->dialer, "dialer_dials_failed_total{reason=\"outcome_unknown\"}") >= 2);
	assert_int_equal(dit_metric(&e->dialer, "dialer_dial_retries_total{reason=\"502\"}"), 0);
	assert_int_equal(dit_metric(&e->dialer, "dialer_dial_retries_total{reason=\"504\"}"), 0);
}

static void test_dialer_gateway_error_without_webhook_swept(void **state)
{
	struct env *e = *state;
	struct store_call c;
	json_t *totals;

	script(e, "EL_gw_lost",
	       "{\"answers\": [\"placed_504\", \"ok\"], \"mode\": \"no_post_call\"}");
	dit_publish(&e->st.broker, PREFIX, "EL_gw_lost", "gw");
	assert_true(dit_wait_requests(&e->st.sim, "EL_gw_lost", 1, 15000));
	ts_sleep_ms(1000);
	/* left for the webhook or the sweeper: in_progress, claimed, no conversation_id */
	assert_true(dit_call(e->st.schema, "EL_gw_lost", &c));
	assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
	assert_false(c.has_conversation_id);
	/* no post-call comes: the sweeper settles it once no dial can still be running */
	assert_true(dit_wait_call(e->st.schema, "EL_gw_lost", STORE_CALL_FAILED, 30000));
	assert_true(dit_call(e->st.schema, "EL_gw_lost", &c));
	assert_string_equal(c.failure_reason, "dial_outcome_unknown");
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_gw_lost"), 1);
	totals = dit_sim_totals(&e->st.sim);
	assert_int_equal(json_integer_value(json_object_get(totals, "max_requests_per_call")), 1);
	json_decref(totals);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_gateway_error_resolved_by_post_call),
	    cmocka_unit_test(test_dialer_gateway_error_without_webhook_swept),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
