/* test_dialer_crash: the dialer SIGKILLed at the two moments that matter. Between "dial
 * attempted" (the claim is committed, elevensim has the request) and the API's answer: the
 * restarted dialer never dials again and the sweeper settles the call as dial_outcome_unknown.
 * Before the attempt: the call is dialled exactly once after the restart. How "before the
 * attempt" is made deterministic: the test holds an uncommitted INSERT of the same call_sid, so
 * the dialer's own INSERT ... ON CONFLICT blocks on that row lock; the test sees it waiting (in
 * pg_locks), kills the dialer there, rolls back, and restarts it. Those two cases run without the
 * sweeper, whose business is calls nobody will dial any more. */
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

#define PREFIX "dcr."

struct env {
	struct dit_stack st;
	struct dit_dialer dialer;
};

/* The sweeper settles a claimed call without conversation_id once the claim is older than the
 * longest possible dial (here 2 s) + 5 s. */
static const char *const dialer_env[] = {
    "DIALER_SWEEPER=true",
    "DIALER_SWEEP_AGE_S=1",
    "DIALER_SWEEP_INTERVAL_S=1",
    "DIALER_MAX_ATTEMPTS=1",
    "DIALER_REQUEST_TIMEOUT_MS=2000",
    "DIALER_RETRY_AFTER_MAX_S=0",
    "DIALER_RETRY_MAX_MS=200",
    NULL,
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);

	dit_stack_start(&e->st, "dcrash", PREFIX, 2, NULL);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dit_dialer_stop(&e->dialer, SIGTERM, 20000);
	dit_stack_stop(&e->st);
	free(e);
	return 0;
}

/* Starts the dialer (after killing one a failed test left running); sweep: with the sweeper. */
static void start_dialer_with(struct env *e, bool sweep)
{
	const char *env[16];
	size_t n = 0;

	dit_dialer_stop(&e->dialer, SIGKILL, 5000);
	for (const char *const *p = dialer_env; *p; p++)
		env[n++] = *p;
	if (!sweep)
		env[n++] = "DIALER_SWEEPER=false";
	env[n] = NULL;
	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, env);
}

static void start_dialer(struct env *e)
{
	start_dialer_with(e, true);
}

static void kill_dialer(struct env *e)
{
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGKILL, 5000), 128 + SIGKILL);
}

static void test_dialer_crash_after_claim_never_redials(void **state)
{
	struct env *e = *state;
	struct store_call c;

	dit_sim_config(&e->st.sim, "{\"latency_ms\": 3000}");
	start_dialer(e);
	dit_publish(&e->st.broker, PREFIX, "EL_c1_claimed", "c1");
	/* elevensim holds the request for 3 s: the dialer is between claim and answer */
	assert_true(dit_wait_requests(&e->st.sim, "EL_c1_claimed", 1, 15000));
	kill_dialer(e);
	assert_true(dit_call(e->st.schema, "EL_c1_claimed", &c));
	assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
	assert_true(c.dial_attempted_at[0] != '\0');
	assert_false(c.has_conversation_id);

	dit_sim_config(&e->st.sim, "{\"latency_ms\": 0}");
	start_dialer(e);
	/* the uncommitted message comes back and is refused by the claim */
	for (int i = 0; i < 300; i++) {
		if (dit_metric(&e->dialer, "dialer_messages_total{result=\"already_dialled\"}") >=
		    1)
			break;
		ts_sleep_ms(50);
	}
	assert_true(dit_metric(&e->dialer, "dialer_messages_total{result=\"already_dialled\"}") >=
	            1);
	/* nobody knows whether the phone rang: the sweeper settles it, never a second dial */
	assert_true(dit_wait_call(e->st.schema, "EL_c1_claimed", STORE_CALL_FAILED, 20000));
	assert_true(dit_call(e->st.schema, "EL_c1_claimed", &c));
	assert_string_equal(c.failure_reason, "dial_outcome_unknown");
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_c1_claimed"), 1);
	assert_true(dit_metric(&e->dialer,
	                       "dialer_sweeper_resolved_total{outcome=\"dial_outcome_unknown\"}") >=
	            1);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

/* Backends waiting for a lock held by the backend pid (the test's transaction). */
static long long waiting_on(const char *schema, int pid)
{
	char sql[512];

	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM pg_locks w JOIN pg_locks h ON h.locktype = 'transactionid' "
	         "AND w.locktype = 'transactionid' AND h.transactionid = w.transactionid "
	         "WHERE h.granted AND NOT w.granted AND h.pid = %d",
	         pid);
	return ts_pg_query_ll(schema, sql);
}

static void test_dialer_crash_before_claim_dials_once(void **state)
{
	struct env *e = *state;
	char err[256];
	struct db *db = db_open(ts_pg_url(), e->st.schema, err, sizeof err);
	bool created = false;
	long long waiting = 0;
	int pid;

	assert_non_null(db);
	assert_int_equal(db_ensure(db), 0);
	pid = PQbackendPID(db_conn(db));
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(store_call_insert(db, "EL_c2_locked", "c2", NULL, &created), 0);
	assert_true(created);

	start_dialer_with(e, false);
	dit_publish(&e->st.broker, PREFIX, "EL_c2_locked", "c2");
	for (int i = 0; i < 300 && waiting == 0; i++) {
		waiting = waiting_on(e->st.schema, pid);
		if (!waiting)
			ts_sleep_ms(50);
	}
	assert_int_equal(waiting, 1); /* the dialer is stuck in its INSERT: before any claim */
	kill_dialer(e);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_c2_locked"), 0);
	db_rollback(db);
	db_close(db);

	start_dialer_with(e, false);
	assert_true(dit_wait_call(e->st.schema, "EL_c2_locked", STORE_CALL_IN_PROGRESS, 20000));
	ts_sleep_ms(500);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_c2_locked"), 1);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

static void test_dialer_crash_row_without_claim_dials_once(void **state)
{
	struct env *e = *state;
	char err[256];
	struct db *db = db_open(ts_pg_url(), e->st.schema, err, sizeof err);
	struct store_call c;
	bool created = false;

	/* the state a crash between INSERT and claim leaves behind */
	assert_non_null(db);
	assert_int_equal(db_ensure(db), 0);
	assert_int_equal(store_call_insert(db, "EL_c3_unclaimed", "c3", "T-3", &created), 0);
	db_close(db);
	start_dialer_with(e, false);
	dit_publish(&e->st.broker, PREFIX, "EL_c3_unclaimed", "c3");
	assert_true(dit_wait_call(e->st.schema, "EL_c3_unclaimed", STORE_CALL_IN_PROGRESS, 20000));
	assert_true(dit_call(e->st.schema, "EL_c3_unclaimed", &c));
	assert_int_equal(c.dial_attempts, 1);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_c3_unclaimed"), 1);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

static void test_dialer_crash_many_in_flight(void **state)
{
	struct env *e = *state;
	json_t *totals;
	char sid[64];
	int n = 40, settled = 0;

	dit_sim_config(&e->st.sim, "{\"latency_ms\": 1500}");
	start_dialer(e);
	for (int i = 0; i < n; i++) {
		snprintf(sid, sizeof sid, "EL_c4_%02d", i);
		dit_publish(&e->st.broker, PREFIX, sid, "c4");
	}
	for (int i = 0; i < 300; i++) {
		totals = dit_sim_totals(&e->st.sim);
		json_int_t got = json_integer_value(json_object_get(totals, "outbound_requests"));
		json_decref(totals);
		if (got >= 3 + n / 2) /* 3 from the earlier tests */
			break;
		ts_sleep_ms(20);
	}
	kill_dialer(e);
	dit_sim_config(&e->st.sim, "{\"latency_ms\": 0}");
	start_dialer(e);
	/* every call ends up dialled once (answered) or settled as unknown, none twice */
	for (int round = 0; round < 600 && settled < n; round++) {
		settled = 0;
		for (int i = 0; i < n; i++) {
			struct store_call c;

			snprintf(sid, sizeof sid, "EL_c4_%02d", i);
			if (dit_call(e->st.schema, sid, &c) &&
			    (c.has_conversation_id || strcmp(c.status, STORE_CALL_FAILED) == 0))
				settled++;
		}
		if (settled < n)
			ts_sleep_ms(50);
	}
	assert_int_equal(settled, n);
	totals = dit_sim_totals(&e->st.sim);
	assert_int_equal(json_integer_value(json_object_get(totals, "max_requests_per_call")), 1);
	assert_int_equal(
	    json_integer_value(json_object_get(totals, "calls_with_duplicate_requests")), 0);
	json_decref(totals);
	for (int i = 0; i < n; i++) {
		struct store_call c;

		snprintf(sid, sizeof sid, "EL_c4_%02d", i);
		assert_true(dit_call(e->st.schema, sid, &c));
		/* at most once; none only when the kill came between a claim and its request
		 * leaving, and then the call is the sweeper's dial_outcome_unknown */
		if (c.has_conversation_id) {
			assert_int_equal(dit_sim_requests(&e->st.sim, sid), 1);
		} else {
			assert_in_range(dit_sim_requests(&e->st.sim, sid), 0, 1);
			assert_string_equal(c.failure_reason, "dial_outcome_unknown");
		}
	}
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_crash_after_claim_never_redials),
	    cmocka_unit_test(test_dialer_crash_before_claim_dials_once),
	    cmocka_unit_test(test_dialer_crash_row_without_claim_dials_once),
	    cmocka_unit_test(test_dialer_crash_many_in_flight),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
