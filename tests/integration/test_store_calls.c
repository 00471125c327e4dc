/* test_store_calls: store_calls.c and db.c against the throwaway Postgres (a migrated schema per
 * test): the Call model's life cycle, and db's error classes and reconnect (the claim-once guard
 * and the sweeper's lease under concurrent connections: test_store_calls_concurrency.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "log.h"
#include "store_calls.h"
#include "test_store_calls_helpers.h"
#include "tsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_store_call_insert_defaults(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	int64_t nulls = -1;

	insert_call(st->db, "EL_d1_2025-11-21T10:30:00Z", "d1");
	get_call(st->db, "EL_d1_2025-11-21T10:30:00Z", &c);
	assert_true(c.id > 0);
	assert_string_equal(c.call_sid, "EL_d1_2025-11-21T10:30:00Z");
	assert_false(c.has_conversation_id);
	assert_string_equal(c.conversation_id, "");
	assert_string_equal(c.driver_id, "d1");
	assert_string_equal(c.trip_id, "trip-1");
	assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
	assert_string_equal(c.failure_reason, "");
	assert_iso_utc(c.call_start_time);
	assert_iso_utc(c.created_at);
	assert_iso_utc(c.updated_at);
	assert_string_equal(c.call_end_time, "");
	assert_string_equal(c.dial_attempted_at, "");
	assert_int_equal(c.dial_attempts, 0);
	assert_int_equal(store_call_count_null_conversation(st->db, &nulls), 0);
	assert_int_equal(nulls, 1);
}

static void test_store_call_unique_call_sid(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	bool created = true, found = true;

	insert_call(st->db, "EL_d2_1", "d2");
	/* A replayed request: nothing changes, and the caller learns it. */
	assert_int_equal(store_call_insert(st->db, "EL_d2_1", "other", NULL, &created), 0);
	assert_false(created);
	get_call(st->db, "EL_d2_1", &c);
	assert_string_equal(c.driver_id, "d2");
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls"), 1);
	assert_int_equal(store_call_get(st->db, "EL_nobody_1", &c, &found), 0);
	assert_false(found);
}

static void test_store_call_set_conversation(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	bool changed = false, found = false;
	int64_t nulls = -1;

	insert_call(st->db, "EL_d3_1", "d3");
	insert_call(st->db, "EL_d3_2", "d3");
	assert_int_equal(store_call_set_conversation(st->db, "EL_d3_1", "conv-31", &changed), 0);
	assert_true(changed);
	get_call(st->db, "EL_d3_1", &c);
	assert_true(c.has_conversation_id);
	assert_string_equal(c.conversation_id, "conv-31");
	/* Idempotent: a second value does not replace the first. */
	assert_int_equal(store_call_set_conversation(st->db, "EL_d3_1", "conv-other", &changed), 0);
	assert_false(changed);
	get_call(st->db, "EL_d3_1", &c);
	assert_string_equal(c.conversation_id, "conv-31");
	assert_int_equal(store_call_set_conversation(st->db, "EL_nobody", "conv-x", &changed), 0);
	assert_false(changed);
	/* conversation_id stays unique: a permanent error. */
	assert_int_equal(store_call_set_conversation(st->db, "EL_d3_2", "conv-31", &changed), -1);
	assert_int_equal(db_errclass(st->db), DB_ERR_PERMANENT);
	assert_string_equal(db_sqlstate(st->db), "23505");
	assert_int_equal(store_call_count_null_conversation(st->db, &nulls), 0);
	assert_int_equal(nulls, 1);
	/* and back: the call by its conversation_id (post-calls without a call_sid) */
	assert_int_equal(store_call_get_by_conversation(st->db, "conv-31", &c, &found), 0);
	assert_true(found);
	assert_string_equal(c.call_sid, "EL_d3_1");
	assert_int_equal(store_call_get_by_conversation(st->db, "conv-other", &c, &found), 0);
	assert_false(found);
}

static void test_store_call_failed_keeps_audit_row(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	bool changed = false, claimed = true;

	insert_call(st->db, "EL_d4_1", "d4");
	assert_int_equal(store_call_set_failed(st->db, "EL_d4_1", "api: 500 upstream", &changed),
	                 0);
	assert_true(changed);
	get_call(st->db, "EL_d4_1", &c);
	assert_string_equal(c.call_sid, "EL_d4_1");
	assert_string_equal(c.driver_id, "d4");
	assert_string_equal(c.status, STORE_CALL_FAILED);
	assert_string_equal(c.failure_reason, "api: 500 upstream");
	assert_false(c.has_conversation_id);
	assert_iso_utc(c.call_end_time);
	/* Final: neither failed again, nor completed, nor dialled. */
	assert_int_equal(store_call_set_failed(st->db, "EL_d4_1", "again", &changed), 0);
	assert_false(changed);
	assert_int_equal(store_call_set_completed(st->db, "EL_d4_1", NULL, "conv-4", &changed), 0);
	assert_false(changed);
	assert_int_equal(store_call_claim_dial(st->db, "EL_d4_1", &claimed), 0);
	assert_false(claimed);
	get_call(st->db, "EL_d4_1", &c);
	assert_string_equal(c.status, STORE_CALL_FAILED);
	assert_string_equal(c.failure_reason, "api: 500 upstream");
}

static void test_store_call_set_completed(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	bool changed = false;

	/* Heals a missing conversation_id and takes the webhook's end time. */
	insert_call(st->db, "EL_d5_1", "d5");
	assert_int_equal(store_call_set_completed(st->db, "EL_d5_1", "2025-11-21T10:35:00Z",
	                                          "conv-51", &changed),
	                 0);
	assert_true(changed);
	get_call(st->db, "EL_d5_1", &c);
	assert_string_equal(c.status, STORE_CALL_COMPLETED);
	assert_string_equal(c.call_end_time, "2025-11-21T10:35:00.000Z");
	assert_string_equal(c.conversation_id, "conv-51");

	/* Keeps an existing conversation_id; NULL end time means now. */
	insert_call(st->db, "EL_d5_2", "d5");
	assert_int_equal(store_call_set_conversation(st->db, "EL_d5_2", "conv-52", &changed), 0);
	assert_int_equal(store_call_set_completed(st->db, "EL_d5_2", NULL, "conv-wrong", &changed),
	                 0);
	assert_true(changed);
	get_call(st->db, "EL_d5_2", &c);
	assert_string_equal(c.conversation_id, "conv-52");
	assert_iso_utc(c.call_end_time);
	assert_int_equal(store_call_set_completed(st->db, "EL_d5_2", NULL, NULL, &changed), 0);
	assert_false(changed);

	/* The sweeper's "outcome unknown" verdict is overturned by a post-call (the call did
	 * happen); the reason is cleared. */
	insert_call(st->db, "EL_d5_4", "d5");
	assert_int_equal(store_call_set_failed(st->db, "EL_d5_4", "dial_outcome_unknown", &changed),
	                 0);
	assert_true(changed);
	assert_int_equal(store_call_set_completed(st->db, "EL_d5_4", "2025-11-21T10:40:00Z",
	                                          "conv-54", &changed),
	                 0);
	assert_true(changed);
	get_call(st->db, "EL_d5_4", &c);
	assert_string_equal(c.status, STORE_CALL_COMPLETED);
	assert_string_equal(c.conversation_id, "conv-54");
	assert_string_equal(c.failure_reason, "");

	/* A bad time is the caller's bug: permanent. */
	insert_call(st->db, "EL_d5_3", "d5");
	assert_int_equal(
	    store_call_set_completed(st->db, "EL_d5_3", "yesterday-ish", NULL, &changed), -1);
	assert_int_equal(db_errclass(st->db), DB_ERR_PERMANENT);
}

static void test_store_call_updated_at_maintained(void **state)
{
	struct sstate *st = *state;
	bool changed = false, claimed = false;

	insert_call(st->db, "EL_d6_1", "d6");
	ts_pg_exec(st->schema, "UPDATE calls SET updated_at = '2000-01-01Z'");
	assert_int_equal(store_call_claim_dial(st->db, "EL_d6_1", &claimed), 0);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls WHERE updated_at > "
	                                            "now() - interval '1 minute'"),
	                 1);
	ts_pg_exec(st->schema, "UPDATE calls SET updated_at = '2000-01-01Z'");
	assert_int_equal(store_call_set_conversation(st->db, "EL_d6_1", "conv-6", &changed), 0);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls WHERE updated_at > "
	                                            "now() - interval '1 minute'"),
	                 1);
	ts_pg_exec(st->schema, "UPDATE calls SET updated_at = '2000-01-01Z'");
	assert_int_equal(store_call_set_failed(st->db, "EL_d6_1", "x", &changed), 0);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls WHERE updated_at > "
	                                            "now() - interval '1 minute'"),
	                 1);
}

static void test_db_classify(void **state)
{
	static const struct {
		const char *state;
		enum db_errclass cls;
	} cases[] = {
	    {"40001", DB_ERR_TRANSIENT}, {"40P01", DB_ERR_TRANSIENT}, {"08006", DB_ERR_TRANSIENT},
	    {"08001", DB_ERR_TRANSIENT}, {"57P01", DB_ERR_TRANSIENT}, {"57P02", DB_ERR_TRANSIENT},
	    {"57P03", DB_ERR_TRANSIENT}, {"53300", DB_ERR_TRANSIENT}, {"57014", DB_ERR_TRANSIENT},
	    {NULL, DB_ERR_TRANSIENT},    {"23505", DB_ERR_PERMANENT}, {"23502", DB_ERR_PERMANENT},
	    {"42P01", DB_ERR_PERMANENT}, {"42601", DB_ERR_PERMANENT}, {"22007", DB_ERR_PERMANENT},
	    {"P0001", DB_ERR_PERMANENT}, {"53100", DB_ERR_PERMANENT},
	};
	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		if (db_classify_sqlstate(cases[i].state) != cases[i].cls)
			fail_msg("SQLSTATE %s misclassified",
			         cases[i].state ? cases[i].state : "NULL");
}

static void test_db_errors_and_reconnect(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	char err[256], sql[128];
	struct db *down;
	PGresult *res;
	bool found;
	long long pid;

	/* Bad inputs: no handle. Unreachable server: a handle that is not ok, transient. */
	assert_null(db_open(ts_pg_url(), "dev; DROP", err, sizeof err));
	assert_non_null(strstr(err, "DB_SCHEMA"));
	assert_null(db_open("postgresql://[broken", "dev", err, sizeof err));
	down = db_open("postgresql://postgres@127.0.0.1:1/postgres", "dev", err, sizeof err);
	assert_non_null(down);
	assert_false(db_ok(down));
	assert_int_equal(db_ensure(down), -1);
	assert_int_equal(db_errclass(down), DB_ERR_TRANSIENT);
	assert_int_equal(store_call_get(down, "EL_x", &c, &found), -1);
	assert_int_equal(db_errclass(down), DB_ERR_TRANSIENT);
	assert_null(db_conn(down));
	db_close(down);

	/* Permanent: syntax, a missing table. Transient: a statement timeout. */
	assert_int_equal(db_cmd(st->db, "SELEC 1", 0, NULL), -1);
	assert_int_equal(db_errclass(st->db), DB_ERR_PERMANENT);
	assert_string_equal(db_sqlstate(st->db), "42601");
	assert_int_equal(db_cmd(st->db, "SELECT * FROM no_such_table", 0, NULL), -1);
	assert_string_equal(db_sqlstate(st->db), "42P01");
	assert_int_equal(db_cmd(st->db, "SET statement_timeout = 100", 0, NULL), 0);
	assert_int_equal(db_cmd(st->db, "SELECT pg_sleep(2)", 0, NULL), -1);
	assert_int_equal(db_errclass(st->db), DB_ERR_TRANSIENT);
	assert_string_equal(db_sqlstate(st->db), "57014");
	assert_true(db_ok(st->db));
	assert_int_equal(db_cmd(st->db, "RESET statement_timeout", 0, NULL), 0);

	/* A transaction that failed cannot be committed; the error class survives rollback. */
	assert_int_equal(db_begin(st->db), 0);
	assert_int_equal(db_cmd(st->db, "SELECT 1/0", 0, NULL), -1);
	assert_int_equal(db_commit(st->db), -1);
	db_rollback(st->db);
	assert_int_equal(db_begin(st->db), 0);
	assert_int_equal(db_cmd(st->db, "SELECT 1/0", 0, NULL), -1);
	db_rollback(st->db);
	assert_string_equal(db_sqlstate(st->db), "22012");

	/* The server kills our backend: transient, then db_ensure reconnects with search_path. */
	insert_call(st->db, "EL_r_1", "r");
	res = db_exec(st->db, "SELECT pg_backend_pid()", 0, NULL);
	assert_non_null(res);
	pid = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", pid);
	ts_pg_exec(NULL, sql);
	assert_int_equal(store_call_get(st->db, "EL_r_1", &c, &found), -1);
	assert_int_equal(db_errclass(st->db), DB_ERR_TRANSIENT);
	assert_false(db_ok(st->db));
	assert_int_equal(store_call_get(st->db, "EL_r_1", &c, &found),
	                 -1); /* no silent reconnect */
	assert_int_equal(db_ensure(st->db), 0);
	assert_int_equal(store_call_get(st->db, "EL_r_1", &c, &found), 0);
	assert_true(found);
	assert_string_equal(db_schema(st->db), st->schema);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_call_insert_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_unique_call_sid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_set_conversation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_failed_keeps_audit_row, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_set_completed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_updated_at_maintained, setup, teardown),
	    cmocka_unit_test(test_db_classify),
	    cmocka_unit_test_setup_teardown(test_db_errors_and_reconnect, setup, teardown),
	};

	log_init("test_store_calls", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
