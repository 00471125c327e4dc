/* test_e2e_load: 200 calls x 10 turns through the whole pipeline with elevensim racing a third of
 * them and failing some, then a replay of the webhook topics from the beginning. */
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

/* Runs `transcriber replay --from 1970-01-01T00:00:00Z` against the stack; returns its stdout. */
static char *e2e_replay_all(const struct e2e_stack *s, int *rc)
{
	struct e2e_env env = {0};
	char bin[512], *out = NULL;
	const char *argv[] = {ts_bin("transcriber", bin, sizeof bin), "replay", "--from",
	                      "1970-01-01T00:00:00Z", NULL};

	e2e_stack_service_env(s, &env);
	e2e_env_add(&env, "HTTP_LISTEN=127.0.0.1:%u", ts_free_port());
	e2e_env_addv(&env, s->opts.worker_env);
	*rc = ts_run(argv, (const char *const *)env.items, &out, 120000);
	e2e_env_free(&env);
	return out;
}

static void test_e2e_load_and_replay(void **state)
{
	const char *sim_args[] = {
	    E2E_SIM_TURNS(E2E_TURNS),  E2E_SIM_TURN_DELAY_MS("40"),
	    E2E_SIM_LATENCY_MS("50"),  E2E_SIM_RACE_SHARE("0.33"),
	    E2E_SIM_API_FAILURES_5PCT, E2E_SIM_INITIATION_FAILURE_SHARE("0.05"),
	    E2E_SIM_SEED("7"),         NULL};
	const struct e2e_opts opts = {
	    .name = "e2e_load",
	    .sim_args = sim_args,
	    .worker_env = e2e_worker_env_fast,
	};
	const struct e2e_expect exp = {.turns = E2E_TURNS, .timeout_ms = 120000};
	struct e2e_fixture *f = *state;
	struct e2e_stack *s = &f->stack;
	struct e2e_run run;
	struct e2e_summary sum, again;
	char *before, *after, *out;
	long long lines;
	int rc;

	e2e_stack_start(s, &opts);
	e2e_post_calls(s, &run, "L", E2E_CALLS, 20, 100);
	assert_int_equal(run.nsids, E2E_CALLS);
	e2e_check_final(s, &run, &exp, &sum);
	/* The knobs must have produced every kind of call, or the run proves less than it says. */
	assert_true(sum.completed >= E2E_CALLS * 3 / 4);
	assert_true(sum.failed_api >= 1);
	assert_true(sum.failed_init >= 1);
	assert_int_equal(sum.failed_unknown, 0);
	assert_int_equal(sum.outcome_unknown, 0);
	assert_true(sum.raced >= E2E_CALLS / 5);

	/* Replay everything from the beginning: the same rows, not one more. */
	before = e2e_db_snapshot(s);
	lines = e2e_count_rows(s, "call_transcriptions");
	out = e2e_replay_all(s, &rc);
	print_message("e2e: transcriber replay --from 1970-01-01T00:00:00Z (exit %d):\n%s", rc,
	              out ? out : "");
	assert_int_equal(rc, 0);
	assert_non_null(out);
	assert_true(e2e_replay_inserted(out) == 0);
	ts_sleep_ms(1000); /* anything the replay might have triggered in the workers */
	after = e2e_db_snapshot(s);
	assert_int_equal(e2e_count_rows(s, "call_transcriptions"), lines);
	if (strcmp(before, after) != 0)
		fail_msg("e2e: the replay changed the calls or lines");
	e2e_check_final(s, &run, &exp, &again);
	assert_int_equal(again.lines, sum.lines);
	free(before);
	free(after);
	free(out);

	e2e_run_free(&run);
	e2e_stack_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_e2e_load_and_replay, e2e_setup, e2e_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
