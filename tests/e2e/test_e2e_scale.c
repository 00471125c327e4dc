/* test_e2e_scale: two dialers and two transcribers in the same consumer groups share the work
 * (each one handled some of it, per its /metrics, and together each piece exactly once) and
 * reach the same final state. */
#include "e2e.h"
#include "e2e_sim.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define E2E_CALLS 200
#define E2E_TURNS 10

/* Metric name of worker w (summed over its labels); 0 when it exposes none yet. */
static double e2e_worker_metric(const struct e2e_worker *w, const char *name)
{
	char url[64];
	double v;

	snprintf(url, sizeof url, "http://127.0.0.1:%u", w->port);
	v = e2e_metric(url, name, NULL);
	return v < 0 ? 0 : v;
}

static void test_e2e_two_of_each(void **state)
{
	const char *sim_args[] = {
	    E2E_SIM_TURNS(E2E_TURNS),  E2E_SIM_TURN_DELAY_MS("40"),
	    E2E_SIM_LATENCY_MS("50"),  E2E_SIM_RACE_SHARE("0.33"),
	    E2E_SIM_API_FAILURES_5PCT, E2E_SIM_INITIATION_FAILURE_SHARE("0.05"),
	    E2E_SIM_SEED("43"),        NULL};
	struct e2e_fixture *f = *state;
	struct e2e_stack *s = &f->stack;
	const struct e2e_opts opts = {
	    .name = "e2e_scale",
	    .ndialers = 2,
	    .ntranscribers = 2,
	    .sim_args = sim_args,
	    .worker_env = e2e_worker_env_fast,
	};
	const struct e2e_expect exp = {.turns = E2E_TURNS, .timeout_ms = 120000};
	struct e2e_run run;
	struct e2e_summary sum;
	double handled[2], dials[2], stored[2];

	e2e_stack_start(s, &opts);
	/* Let both members of each group join before the work arrives. */
	ts_sleep_ms(3000);
	e2e_post_calls(s, &run, "S", E2E_CALLS, 20, 100);
	e2e_check_final(s, &run, &exp, &sum);
	assert_true(sum.completed >= E2E_CALLS * 3 / 4);

	for (int i = 0; i < 2; i++) {
		handled[i] = e2e_worker_metric(&s->dialers[i], "dialer_messages_total");
		dials[i] = e2e_worker_metric(&s->dialers[i], "dialer_dials_started_total");
		/* per-turn lines plus those reconciled from the post-call transcript */
		stored[i] = e2e_worker_metric(&s->transcribers[i], "transcriber_inserted_total");
	}
	print_message("e2e: dialers handled %.0f + %.0f requests, started %.0f + %.0f dials; "
	              "transcribers stored %.0f + %.0f lines\n",
	              handled[0], handled[1], dials[0], dials[1], stored[0], stored[1]);
	/* Both members of each group did part of the work... */
	assert_true(handled[0] > 0 && handled[1] > 0);
	assert_true(stored[0] > 0 && stored[1] > 0);
	/* ...and together each piece once: one dial per call, one insert per line. */
	assert_true(dials[0] + dials[1] == (double)E2E_CALLS);
	assert_true(stored[0] + stored[1] == (double)sum.lines);
	e2e_run_free(&run);
	e2e_stack_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_e2e_two_of_each, e2e_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
