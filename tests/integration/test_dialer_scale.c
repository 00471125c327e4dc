/* test_dialer_scale: dialers in one consumer group share calls.requested: a second dialer
 * joining takes half the partitions, and 500 requests become exactly 500 rows and 500 dials,
 * placed by both. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX "dsc."
#define NCALLS 500

struct env {
	struct dit_stack st;
	struct dit_dialer a, b;
};

static const char *const dialer_env[] = {"DIALER_CONCURRENCY=20", NULL};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	const char *sim_args[] = {"--latency-ms", "20", NULL};

	dit_stack_start(&e->st, "dscale", PREFIX, 4, sim_args);
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

static bool wait_assigned(const struct dit_dialer *a, int na, const struct dit_dialer *b, int nb)
{
	for (int i = 0; i < 600; i++) {
		if (dit_assigned(a) == na && (!b || dit_assigned(b) == nb))
			return true;
		ts_sleep_ms(50);
	}
	return false;
}

static void test_dialer_scale_two_dialers_share_the_work(void **state)
{
	struct env *e = *state;
	json_t *totals;
	double da, db;
	long long rows = 0;

	dit_dialer_start(&e->a, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, dialer_env);
	assert_true(wait_assigned(&e->a, 4, NULL, 0));
	/* adding a dialer spreads the partitions */
	dit_dialer_start(&e->b, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, dialer_env);
	assert_true(wait_assigned(&e->a, 2, &e->b, 2));

	dit_publish_many(&e->st.broker, PREFIX, "EL_scale_", NCALLS);
	for (int i = 0; i < 1200 && rows < NCALLS; i++) {
		rows = ts_pg_query_ll(e->st.schema,
		                      "SELECT count(*) FROM calls WHERE conversation_id IS "
		                      "NOT NULL AND status = 'in_progress'");
		if (rows < NCALLS)
			ts_sleep_ms(50);
	}
	assert_int_equal(rows, NCALLS);
	assert_int_equal(ts_pg_query_ll(e->st.schema, "SELECT count(*) FROM calls"), NCALLS);
	assert_int_equal(ts_pg_query_ll(e->st.schema,
	                                "SELECT count(*) FROM calls WHERE dial_attempts "
	                                "<> 1"),
	                 0);
	totals = dit_sim_totals(&e->st.sim);
	assert_int_equal(json_integer_value(json_object_get(totals, "calls")), NCALLS);
	assert_int_equal(json_integer_value(json_object_get(totals, "outbound_requests")), NCALLS);
	assert_int_equal(json_integer_value(json_object_get(totals, "max_requests_per_call")), 1);
	json_decref(totals);
	da = dit_metric(&e->a, "dialer_messages_total{result=\"dialled\"}");
	db = dit_metric(&e->b, "dialer_messages_total{result=\"dialled\"}");
	print_message("dialer a dialled %.0f, dialer b %.0f\n", da, db);
	assert_int_equal((int)(da + db), NCALLS);
	assert_true(da > 0 && db > 0);
	assert_int_equal(dit_dialer_stop(&e->a, SIGTERM, 20000), 0);
	assert_int_equal(dit_dialer_stop(&e->b, SIGTERM, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_scale_two_dialers_share_the_work),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
