/* test_e2e_broker: broker faults injected through the devbroker's control interface while calls
 * run: request errors on Produce, Fetch and OffsetCommit, then the broker down for 8 s and up
 * again. Every 2xx the ingress gave stands for a message that is in its topic; producers and
 * consumers recover; the final state is the one elevensim implies. */
#include "e2e.h"
#include "e2e_sim.h"

#include <pthread.h>
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
#define E2E_DOWN_MS   8000
#define E2E_MAX_PROBE 400

/* Signed webhooks for a call nobody knows, posted during the faults: the ones answered 200 must
 * all be in webhooks.transcription; the others must not have been answered 2xx at all. */
struct e2e_probes {
	int n, ok, refused;
	char ids[E2E_MAX_PROBE][80];
};

static void e2e_probe(const struct e2e_stack *s, struct e2e_probes *p)
{
	char body[256];
	long status;

	if (p->n >= E2E_MAX_PROBE)
		return;
	snprintf(body, sizeof body,
	         "{\"call_sid\":\"EL_probe_%d\",\"speaker\":\"user\",\"message\":\"probe %d\"}",
	         p->n, p->n);
	status = e2e_post_webhook(s, "transcription", body, p->ids[p->ok], sizeof p->ids[p->ok]);
	p->n++;
	if (status == 200) {
		p->ok++;
	} else if (status == 503) {
		p->refused++;
	} else {
		fail_msg("e2e: probe webhook answered %ld during broker faults", status);
	}
}

static void e2e_control(const struct e2e_stack *s, const char *path)
{
	long status = ts_broker_control(&s->broker, path);

	print_message("e2e: devbroker POST %s -> %ld\n", path, status);
	if (status != 200)
		fail_msg("e2e: devbroker control %s answered %ld", path, status);
}

/* Every probe answered 200 is in the topic (by its event_id). */
static void e2e_check_probes(const struct e2e_stack *s, const struct e2e_probes *p)
{
	struct ts_kmsg *msgs = NULL;
	char topic[256];
	size_t n = ts_kafka_read_all(
	    s->broker.bootstrap,
	    ts_broker_topic(&s->broker, "webhooks.transcription", topic, sizeof topic), &msgs);
	int missing = 0;

	for (int k = 0; k < p->ok; k++) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = msgs[i].value && strstr(msgs[i].value, p->ids[k]) != NULL;
		if (!found && missing++ < 5)
			print_error("e2e: probe %s was answered 200 but is not in the topic\n",
			            p->ids[k]);
	}
	ts_kmsgs_free(msgs, n);
	if (missing)
		fail_msg("e2e: %d webhooks answered 200 are not in webhooks.transcription",
		         missing);
}

/* Brings broker 1 back up E2E_DOWN_MS after it went down, while the test thread is blocked in a
 * request the ingress keeps refusing. */
static void *e2e_broker_up_later(void *opaque)
{
	const struct e2e_stack *s = opaque;

	ts_sleep_ms(E2E_DOWN_MS);
	ts_broker_control(&s->broker, "/brokers/1/up");
	return NULL;
}

static void test_e2e_broker_faults(void **state)
{
	const char *sim_args[] = {
	    E2E_SIM_TURNS(E2E_TURNS),  E2E_SIM_TURN_DELAY_MS("150"),
	    E2E_SIM_LATENCY_MS("50"),  E2E_SIM_RACE_SHARE("0.33"),
	    E2E_SIM_API_FAILURES_5PCT, E2E_SIM_INITIATION_FAILURE_SHARE("0.05"),
	    E2E_SIM_SEED("31"),        NULL};
	/* A delivery timeout shorter than the outage, so the ingress must refuse during it. */
	const char *ingress_env[] = {"INGRESS_DELIVERY_TIMEOUT_MS=2000", NULL};
	struct e2e_fixture *f = *state;
	struct e2e_stack *s = &f->stack;
	const struct e2e_opts opts = {
	    .name = "e2e_broker",
	    .sim_args = sim_args,
	    .worker_env = e2e_worker_env_fast,
	    .ingress_env = ingress_env,
	};
	const struct e2e_expect exp = {.turns = E2E_TURNS, .timeout_ms = 150000};
	struct e2e_probes *probes = calloc(1, sizeof *probes);
	struct e2e_run run;
	struct e2e_summary sum;
	struct timespec t0, now;
	int batch = 0, refused_down;
	pthread_t up;

	e2e_stack_start(s, &opts);
	e2e_run_init(&run, "B", E2E_CALLS);
	for (; batch < 3; batch++) {
		e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
		e2e_probe(s, probes);
		ts_sleep_ms(200);
	}

	/* Request errors: retriable ones on the producer's and the consumers' paths. */
	e2e_control(s, "/errors?api=Produce&code=NOT_LEADER_FOR_PARTITION&count=15");
	e2e_control(s, "/errors?api=Fetch&code=NOT_LEADER_FOR_PARTITION&count=15");
	e2e_control(s, "/errors?api=OffsetCommit&code=COORDINATOR_NOT_AVAILABLE&count=5");
	for (int i = 0; i < 3; i++, batch++) {
		e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
		for (int k = 0; k < 5; k++)
			e2e_probe(s, probes);
		ts_sleep_ms(200);
	}

	/* The broker down: nothing can be stored, so nothing may be acknowledged. A call request
	 * posted meanwhile is refused (503) until the broker is back, then accepted on retry. */
	print_message("e2e: broker 1 down for %d ms\n", E2E_DOWN_MS);
	e2e_control(s, "/brokers/1/down");
	if (pthread_create(&up, NULL, e2e_broker_up_later, s))
		fail_msg("e2e: pthread_create failed");
	refused_down = probes->refused;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		e2e_probe(s, probes);
		ts_sleep_ms(100);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 <
	         E2E_DOWN_MS / 2);
	refused_down = probes->refused - refused_down;
	e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
	batch++;
	pthread_join(up, NULL);
	print_message("e2e: broker 1 up again; the request posted during the outage was retried "
	              "%d times\n",
	              run.retries_503);
	assert_true(refused_down > 0); /* the outage was real and answered 503 */
	assert_true(run.retries_503 > 0);

	/* Recovery: requests are accepted again (e2e_post_batch retries 503s), consumers resume. */
	for (; batch * E2E_BATCH < E2E_CALLS; batch++) {
		e2e_post_batch(s, &run, batch * E2E_BATCH, E2E_BATCH);
		e2e_probe(s, probes);
		ts_sleep_ms(200);
	}
	print_message("e2e: %d probe webhooks: %d answered 200, %d answered 503 (%d while the "
	              "broker was down); %d call requests retried after 503\n",
	              probes->n, probes->ok, probes->refused, refused_down, run.retries_503);
	e2e_check_probes(s, probes);
	e2e_check_final(s, &run, &exp, &sum);
	assert_true(sum.completed >= E2E_CALLS * 3 / 4);
	free(probes);
	e2e_run_free(&run);
	e2e_stack_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_e2e_broker_faults, e2e_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
