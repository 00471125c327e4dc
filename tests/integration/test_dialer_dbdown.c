/* test_dialer_dbdown: Postgres unreachable for the dialer (its own login role is switched off
 * and its connections killed, so the shared test server stays up for the other tests): nothing is
 * dialled without a committed claim, /readyz says 503, an answer that arrives meanwhile is stored
 * once the database is back, and the requests that waited are then dialled exactly once; an idle
 * dialer's /readyz follows the database too. A schema not yet migrated as far as this build needs
 * is waited for the same way. */
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

#define PREFIX "ddb."

struct env {
	struct dit_stack st;
	char role[80], db_env[600];
	struct dit_dialer dialer;
};

__attribute__((format(printf, 2, 3))) static void sql(const struct env *e, const char *fmt, ...)
{
	char q[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(q, sizeof q, fmt, ap);
	va_end(ap);
	ts_pg_exec(e->st.schema, q);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	const char *url = ts_pg_url(), *at = strstr(url, "postgres@");

	dit_stack_start(&e->st, "ddown", PREFIX, 2, NULL);
	snprintf(e->role, sizeof e->role, "r_%s", e->st.schema);
	sql(e, "CREATE ROLE %s LOGIN", e->role);
	sql(e, "GRANT USAGE ON SCHEMA %s TO %s", e->st.schema, e->role);
	sql(e, "GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA %s TO %s", e->st.schema,
	    e->role);
	sql(e, "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s", e->st.schema, e->role);
	if (!at)
		fail_msg("unexpected test database URL %s", url);
	/* the same server, as the dialer's own role */
	snprintf(e->db_env, sizeof e->db_env, "DATABASE_URL=%.*s%s@%s", (int)(at - url), url,
	         e->role, at + strlen("postgres@"));
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	dit_dialer_stop(&e->dialer, SIGTERM, 20000);
	sql(e, "DROP OWNED BY %s", e->role);
	sql(e, "DROP ROLE %s", e->role);
	dit_stack_stop(&e->st);
	free(e);
	return 0;
}

static void db_down(const struct env *e)
{
	char q[256];

	sql(e, "ALTER ROLE %s NOLOGIN", e->role);
	snprintf(
	    q, sizeof q,
	    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '%s'",
	    e->role);
	(void)ts_pg_query_ll(e->st.schema, q);
}

static long readyz(const struct env *e)
{
	struct ts_http_resp resp;
	char url[96];
	long status;

	snprintf(url, sizeof url, "http://127.0.0.1:%u/readyz", e->dialer.port);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	status = resp.status;
	ts_http_resp_free(&resp);
	return status;
}

static void test_dialer_dbdown_pauses_and_resumes(void **state)
{
	struct env *e = *state;
	const char *env[] = {e->db_env, NULL};
	struct store_call c;
	int i;

	dit_sim_config(&e->st.sim, "{\"latency_ms\": 1500}");
	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, env);
	for (i = 0; i < 200 && readyz(e) != 200; i++)
		ts_sleep_ms(50);
	assert_int_equal(readyz(e), 200);
	dit_publish(&e->st.broker, PREFIX, "EL_db_inflight", "1");
	assert_true(dit_wait_requests(&e->st.sim, "EL_db_inflight", 1, 15000));

	db_down(e);
	/* the in-flight answer comes back and cannot be stored: the dialer stops taking work */
	for (i = 0; i < 200 && dit_metric(&e->dialer, "dialer_db_up") != 0; i++)
		ts_sleep_ms(50);
	assert_true(dit_metric(&e->dialer, "dialer_db_up") == 0);
	assert_int_equal(readyz(e), 503);
	dit_sim_config(&e->st.sim, "{\"latency_ms\": 0}");
	dit_publish(&e->st.broker, PREFIX, "EL_db_waits_1", "2");
	dit_publish(&e->st.broker, PREFIX, "EL_db_waits_2", "3");
	ts_sleep_ms(2500);
	/* no claim, no dial */
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_waits_1"), 0);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_waits_2"), 0);
	assert_false(dit_call(e->st.schema, "EL_db_waits_1", &c));
	assert_true(dit_call(e->st.schema, "EL_db_inflight", &c));
	assert_false(c.has_conversation_id);
	assert_true(dit_metric(&e->dialer, "dialer_db_errors_total") >= 1);

	sql(e, "ALTER ROLE %s LOGIN", e->role);
	assert_true(dit_wait_call(e->st.schema, "EL_db_inflight", STORE_CALL_IN_PROGRESS, 20000));
	assert_true(dit_wait_call(e->st.schema, "EL_db_waits_1", STORE_CALL_IN_PROGRESS, 20000));
	assert_true(dit_wait_call(e->st.schema, "EL_db_waits_2", STORE_CALL_IN_PROGRESS, 20000));
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_inflight"), 1);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_waits_1"), 1);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_waits_2"), 1);
	assert_true(dit_metric(&e->dialer, "dialer_db_up") == 1);
	assert_int_equal(readyz(e), 200);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

/* With no message arriving, /readyz follows the database (it once stayed 200 until a statement
 * failed, which an idle dialer never runs). */
static void test_dialer_dbdown_idle_readyz(void **state)
{
	struct env *e = *state;
	const char *env[] = {e->db_env, NULL};
	int i;

	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, env);
	for (i = 0; i < 200 && readyz(e) != 200; i++)
		ts_sleep_ms(50);
	assert_int_equal(readyz(e), 200);
	db_down(e);
	for (i = 0; i < 200 && readyz(e) != 503; i++)
		ts_sleep_ms(50);
	assert_int_equal(readyz(e), 503);
	assert_true(dit_metric(&e->dialer, "dialer_db_up") == 0);
	sql(e, "ALTER ROLE %s LOGIN", e->role);
	for (i = 0; i < 400 && readyz(e) != 200; i++)
		ts_sleep_ms(50);
	assert_int_equal(readyz(e), 200);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

/* A schema behind this build (its ledger says migration 6): the dialer treats it as a database
 * that is down (not ready, nothing claimed, nothing dialled) and says why; migrated, it dials
 * what waited, once. */
static void test_dialer_waits_for_migrations(void **state)
{
	struct env *e = *state;
	struct store_call c;
	int i;

	sql(e, "CREATE TABLE ledger_kept AS SELECT * FROM schema_migrations WHERE version >= 7");
	sql(e, "DELETE FROM schema_migrations WHERE version >= 7");
	dit_dialer_start(&e->dialer, &e->st.broker, PREFIX, e->st.schema, e->st.sim.url, NULL);
	dit_publish(&e->st.broker, PREFIX, "EL_db_schema", "4");
	for (i = 0; i < 200 && !ts_file_contains(e->dialer.proc.log_path,
	                                         "is at migration 6; this build needs 8");
	     i++)
		ts_sleep_ms(50);
	assert_true(
	    ts_file_contains(e->dialer.proc.log_path,
	                     "is at migration 6; this build needs 8 or later: run migrate up"));
	ts_sleep_ms(1500);
	assert_int_equal(readyz(e), 503);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_schema"), 0);
	assert_false(dit_call(e->st.schema, "EL_db_schema", &c));

	sql(e, "INSERT INTO schema_migrations SELECT * FROM ledger_kept");
	sql(e, "DROP TABLE ledger_kept");
	assert_true(dit_wait_requests(&e->st.sim, "EL_db_schema", 1, 20000));
	assert_true(dit_wait_call(e->st.schema, "EL_db_schema", STORE_CALL_IN_PROGRESS, 20000));
	for (i = 0; i < 200 && readyz(e) != 200; i++)
		ts_sleep_ms(50);
	assert_int_equal(readyz(e), 200);
	ts_sleep_ms(500);
	assert_int_equal(dit_sim_requests(&e->st.sim, "EL_db_schema"), 1);
	assert_int_equal(dit_dialer_stop(&e->dialer, SIGTERM, 20000), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_dbdown_idle_readyz),
	    cmocka_unit_test(test_dialer_dbdown_pauses_and_resumes),
	    cmocka_unit_test(test_dialer_waits_for_migrations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
