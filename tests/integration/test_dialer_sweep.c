/* test_dialer_sweep: two dialers with their sweepers settle calls stuck in_progress (the
 * post-call webhook never came) from elevensim's conversations API: done -> completed with the
 * end time, failed -> failed, unknown conversation -> failed, claimed without conversation_id ->
 * failed dial_outcome_unknown, never claimed -> left to the dialers until the max age; each call
 * is settled once and each conversation fetched once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "dialer_it.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "dsw."
#define NCALLS 20

struct env {
	struct dit_stack st;
	struct dit_dialer a, b;
};

static const char *const dialer_env[] = {
    "DIALER_SWEEPER=true",
    "DIALER_SWEEP_AGE_S=2",
    "DIALER_SWEEP_INTERVAL_S=1",
    "DIALER_MAX_ATTEMPTS=1",
    /* longer than the 3-interval lease: the lease must still fit one conversations request
     * (with a lease of 3 x 1 s the sweeper used to settle nothing, ever) */
    "DIALER_REQUEST_TIMEOUT_MS=6000",
    "DIALER_RETRY_AFTER_MAX_S=0",
    "DIALER_RETRY_MAX_MS=100",
    NULL,
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	/* every call plays without ever sending its post-call webhook */
	const char *sim_args[] = {"--no-post-call-share", "1", NULL};

	dit_stack_start(&e->st, "dsweep", PREFIX, 2, sim_args);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dit_dialer_stop(&e->a, SIGTERM, 20000);
	dit_dialer_stop(&e->b, SIGTERM, 20000);
	dit_stack_stop(&e->st);
	free(e);
	return 0;
}

static double resolved(const struct env *e, const char *outcome)
{
	char series[128];

	snprintf(series, sizeof series, "dialer_sweeper_resolved_total{outcome=\"%s\"}", outcome);
	return dit_metric(&e->a, series) + dit_metric(&e->b, series);
}

/* Rows no dial produced: a conversation ElevenLabs never heard of and a claimed dial that never
 * got an answer an hour ago (the sweeper settles both); a row never claimed, an hour old (left
 * alone: its message, were it still to come, would be dialled), and one two days old, past
 * DIALER_SWEEP_MAX_AGE_S (given up as sweep_max_age). */
static void insert_orphans(const struct env *e)
{
	char err[256];
	struct db *db = db_open(ts_pg_url(), e->st.schema, err, sizeof err);
	bool created = false, changed = false, claimed = false;

	assert_non_null(db);
	assert_int_equal(db_ensure(db), 0);
	assert_int_equal(store_call_insert(db, "EL_sw_ghost", "g", NULL, &created), 0);
	assert_int_equal(store_call_set_conversation(db, "EL_sw_ghost", "conv_ghost", &changed), 0);
	assert_int_equal(store_call_insert(db, "EL_sw_lost", "l", NULL, &created), 0);
	assert_int_equal(store_call_claim_dial(db, "EL_sw_lost", &claimed), 0);
	assert_true(changed && claimed);
	assert_int_equal(store_call_insert(db, "EL_sw_unclaimed", "u", NULL, &created), 0);
	assert_int_equal(store_call_insert(db, "EL_sw_ancient", "a", NULL, &created), 0);
	db_close(db);
	ts_pg_exec(e->st.schema, "UPDATE calls SET call_start_time = now() - interval '1 hour', "
	                         "dial_attempted_at = now() - interval '1 hour' "
	                         "WHERE call_sid = 'EL_sw_lost'");
	ts_pg_exec(e->st.schema, "UPDATE calls SET call_start_time = now() - interval '1 hour' "
	                         "WHERE call_sid = 'EL_sw_unclaimed'");
	ts_pg_exec(e->st.schema, "UPDATE calls SET call_start_time = now() - interval '2 days' "
	                         "WHERE call_sid = 'EL_sw_ancient'");
}

static void test_dialer_sweeper_settles_stuck_calls(void **state)
{
	struct env *e = *state;
	char sid[64];
	struct store_call c;
	long long left = -1;
	json_t *totals;

	dit_sim_config(&e->st.sim, "{\"calls\": {\"EL_swf_0\": {\"mode\": \"initiation_failure\"}, "
	                           "\"EL_swf_1\": {\"mode\": \"initiation_failure\"}}}");
	dit_dialer_start(&e->a, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, dialer_env);
	dit_dialer_start(&e->b, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, dialer_env);
	insert_orphans(e);
	dit_publish_many(&e->st.broker, PREFIX, "EL_sw_", NCALLS);
	dit_publish(&e->st.broker, PREFIX, "EL_swf_0", "f0");
	dit_publish(&e->st.broker, PREFIX, "EL_swf_1", "f1");
	for (int i = 0; i < 600 && left != 0; i++) {
		left = ts_pg_query_ll(e->st.schema,
		                      "SELECT count(*) FROM calls WHERE status = 'in_progress' "
		                      "AND call_sid <> 'EL_sw_unclaimed'") +
		       NCALLS + 6 - ts_pg_query_ll(e->st.schema, "SELECT count(*) FROM calls");
		if (left != 0)
			ts_sleep_ms(50);
	}
	assert_int_equal(left, 0);
	assert_int_equal(ts_pg_query_ll(e->st.schema, "SELECT count(*) FROM calls"), NCALLS + 6);

	for (int i = 0; i < NCALLS; i++) {
		json_t *call;

		snprintf(sid, sizeof sid, "EL_sw_%04d", i);
		assert_true(dit_call(e->st.schema, sid, &c));
		assert_string_equal(c.status, STORE_CALL_COMPLETED);
		assert_true(c.call_end_time[0] != '\0');
		call = dit_sim_call(&e->st.sim, sid);
		assert_string_equal(c.conversation_id,
		                    json_string_value(json_object_get(call, "conversation_id")));
		/* settled by exactly one sweeper, with one look at the conversation */
		assert_int_equal(json_integer_value(json_object_get(call, "conversation_gets")), 1);
		assert_int_equal(json_integer_value(json_object_get(call, "outbound_requests")), 1);
		json_decref(call);
	}
	for (int i = 0; i < 2; i++) {
		snprintf(sid, sizeof sid, "EL_swf_%d", i);
		assert_true(dit_call(e->st.schema, sid, &c));
		assert_string_equal(c.status, STORE_CALL_FAILED);
		assert_string_equal(c.failure_reason,
		                    "conversation_failed: call_initiation_failure: busy");
	}
	assert_true(dit_call(e->st.schema, "EL_sw_ghost", &c));
	assert_string_equal(c.failure_reason, "conversation_not_found");
	assert_true(dit_call(e->st.schema, "EL_sw_lost", &c));
	assert_string_equal(c.failure_reason, "dial_outcome_unknown");
	/* never claimed: nothing was dialled; younger than the max age it is the dialers' */
	assert_true(dit_call(e->st.schema, "EL_sw_ancient", &c));
	assert_string_equal(c.status, STORE_CALL_FAILED);
	assert_string_equal(c.failure_reason, "sweep_max_age");
	ts_sleep_ms(1500); /* a sweep interval more, and the lease it took, for the young one */
	assert_true(dit_call(e->st.schema, "EL_sw_unclaimed", &c));
	assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_sw_unclaimed"), 0);

	assert_int_equal(resolved(e, "completed"), NCALLS);
	assert_int_equal(resolved(e, "failed"), 2);
	assert_int_equal(resolved(e, "not_found"), 1);
	assert_int_equal(resolved(e, "dial_outcome_unknown"), 1);
	assert_int_equal(resolved(e, "max_age"), 1);
	totals = dit_sim_totals(&e->st.sim);
	assert_int_equal(json_integer_value(json_object_get(totals, "conversation_gets")),
	                 NCALLS + 2);
	json_decref(totals);
	assert_int_equal(dit_dialer_stop(&e->a, SIGTERM, 20000), 0);
	assert_int_equal(dit_dialer_stop(&e->b, SIGTERM, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_sweeper_settles_stuck_calls),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
