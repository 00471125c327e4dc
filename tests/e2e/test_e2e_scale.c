/* test_e2e_scale: two dialers and two transcribers in the same consumer groups share the work
 * (each one handled some of it, per its /metrics) and reach the same final state. */
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

/* What each worker counts for the work it did (the first metric it exposes wins). */
static const char *const dialer_work_metrics[] = {E2E_DIALER_WORK_METRICS, NULL};
static const char *const transcriber_work_metrics[] = {E2E_TRANSCRIBER_WORK_METRICS, NULL};

static double e2e_work_done(const struct e2e_worker *w, const char *const *names,
                            const char **which)
{
	char url[64];

	snprintf(url, sizeof url, "http://127.0.0.1:%u", w->port);
	for (; *names; names++) {
		double v = e2e_metric(url, *names, NULL);

		if (v >= 0) {
			*which = *names;
			return v;
		}
	}
	*which = "(no known metric)";
	return -1;
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
	double d[2], t[2];
	const char *dname = "", *tname = "";

	e2e_stack_start(s, &opts);
	/* Let both members of each group join before the work arrives. */
	ts_sleep_ms(3000);
	e2e_post_calls(s, &run, "S", E2E_CALLS, 20, 100);
	e2e_check_final(s, &run, &exp, &sum);
	assert_true(sum.completed >= E2E_CALLS * 3 / 4);

	for (int i = 0; i < 2; i++) {
		d[i] = e2e_work_done(&s->dialers[i], dialer_work_metrics, &dname);
		t[i] = e2e_work_done(&s->transcribers[i], transcriber_work_metrics, &tname);
	}
	print_message("e2e: dialers %s = %.0f / %.0f; transcribers %s = %.0f / %.0f\n", dname, d[0],
	              d[1], tname, t[0], t[1]);
	assert_true(d[0] > 0 && d[1] > 0);
	assert_true(t[0] > 0 && t[1] > 0);
	/* Both dialers together handled every request once (no double work). */
	assert_true(d[0] + d[1] >= E2E_CALLS);
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
