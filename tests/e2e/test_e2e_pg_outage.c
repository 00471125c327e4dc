/* test_e2e_pg_outage: Postgres is stopped for 10 s in the middle of a run (a private cluster, so
 * the other tests' shared one is untouched). The ingress keeps accepting requests and webhooks
 * (it publishes without the database) and answers reads with 503; once Postgres is back the
 * workers catch up to the same final state. */
#include "e2e.h"
#include "e2e_sim.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define E2E_CALLS     120
#define E2E_TURNS     10
#define E2E_BATCH     10
#define E2E_OUTAGE_MS 10000

static long e2e_get_call(const struct e2e_stack *s, const char *sid)
{
	struct ts_http_resp resp = {0};
	char url[512], auth[128];
	const char *headers[2] = {auth, NULL};
	long status;

	snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
	snprintf(url, sizeof url, "%s/calls/%s", s->ingress_url, sid);
	ts_http("GET", url, headers, NULL, 0, &resp);
	status = resp.status;
	ts_http_resp_free(&resp);
	return status;
}

/* Webhook answers other than 200 the ingress gave so far (elevensim's and ours). */
static double e2e_webhook_non200(const struct e2e_stack *s)
{
	const char *const tr[] = {"route=\"transcription\"", NULL};
	const char *const pc[] = {"route=\"post_call\"", NULL};
	const char *const tr200[] = {"route=\"transcription\"", "status=\"200\"", NULL};
	const char *const pc200[] = {"route=\"post_call\"", "status=\"200\"", NULL};
	double all = e2e_metric(s->ingress_url, "ingress_requests_total", tr) +
	             e2e_metric(s->ingress_url, "ingress_requests_total", pc);
	double ok = e2e_metric(s->ingress_url, "ingress_requests_total", tr200) +
	            e2e_metric(s->ingress_url, "ingress_requests_total", pc200);

	return all - ok;
}

static void test_e2e_postgres_outage(void **state)
{
	const char *sim_args[] = {
	    E2E_SIM_TURNS(E2E_TURNS),  E2E_SIM_TURN_DELAY_MS("300"),
	    E2E_SIM_LATENCY_MS("50"),  E2E_SIM_RACE_SHARE("0.33"),
	    E2E_SIM_API_FAILURES_5PCT, E2E_SIM_INITIATION_FAILURE_SHARE("0.05"),
	    E2E_SIM_SEED("23"),        NULL};
	struct e2e_fixture *f = *state;
	struct e2e_stack *s = &f->stack;
	char url[512];
	struct e2e_opts opts = {
	    .name = "e2e_pg",
	    .sim_args = sim_args,
	    .worker_env = e2e_worker_env_fast,
	};
	const struct e2e_expect exp = {.turns = E2E_TURNS, .timeout_ms = 150000};
	struct e2e_run run;
	struct e2e_summary sum;
	struct timespec t0, now;
	int probes = 0, reads_503 = 0, batch = 0;
	double non200_before, webhooks_before;
	const char *const tr200[] = {"route=\"transcription\"", "status=\"200\"", NULL};

	e2e_private_pg_start(f, url, sizeof url);
	opts.pg_url = url;

	e2e_stack_start(s, &opts);
	e2e_run_init(&run, "P", E2E_CALLS);
	for (; batch < 4; batch++) {
		e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
		ts_sleep_ms(300);
	}
	non200_before = e2e_webhook_non200(s);
	webhooks_before = e2e_metric(s->ingress_url, "ingress_requests_total", tr200);

	print_message("e2e: stopping Postgres for %d s\n", E2E_OUTAGE_MS / 1000);
	e2e_private_pg(f, "pause");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		char body[256], event_id[80];
		long ms;

		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= E2E_OUTAGE_MS)
			break;
		/* New calls are accepted (they wait in calls.requested)... */
		if (batch * E2E_BATCH < E2E_CALLS && ms > (batch - 3) * 2500) {
			e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
			batch++;
		}
		/* ...so are webhooks (ours here: for a call nobody knows)... */
		snprintf(
		    body, sizeof body,
		    "{\"call_sid\":\"EL_probe_%d\",\"speaker\":\"user\",\"message\":\"probe\"}",
		    probes);
		if (e2e_post_webhook(s, "transcription", body, event_id, sizeof event_id) != 200)
			fail_msg("e2e: a webhook was refused %ld ms into the Postgres outage", ms);
		probes++;
		/* ...and reads say the database is away. */
		if (e2e_get_call(s, run.sids[0]) == 503)
			reads_503++;
		ts_sleep_ms(250);
	}
	assert_true(reads_503 > 0);
	/* elevensim's webhooks for the calls in flight were accepted as well. */
	assert_true(e2e_metric(s->ingress_url, "ingress_requests_total", tr200) >
	            webhooks_before + probes);
	assert_true(e2e_webhook_non200(s) == non200_before);
	print_message("e2e: during the outage: %d probe webhooks and elevensim's all answered 200, "
	              "%d reads answered 503\n",
	              probes, reads_503);
	e2e_private_pg(f, "resume");

	for (; batch * E2E_BATCH < E2E_CALLS; batch++) {
		e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
		ts_sleep_ms(200);
	}
	e2e_check_final(s, &run, &exp, &sum);
	assert_true(sum.completed >= E2E_CALLS * 3 / 4);
	assert_int_equal(e2e_get_call(s, run.sids[0]), 200);
	e2e_run_free(&run);
	e2e_stack_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_e2e_postgres_outage, e2e_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
