/* test_dialer_calls: the seed's Call-model tests, on the store functions the dialer uses and a
 * real migrated schema: create with call_sid (conversation_id NULL, in_progress), update
 * conversation_id by call_sid, update status and end time by call_sid, lookup by call_sid, the
 * unique call_sid, and the audit row a failed API call keeps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "dialer_it.h"

#include <stdlib.h>
#include <string.h>

struct env {
	char schema[64];
	struct db *db;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	char err[256];

	ts_pg_schema_new("dcalls", true, e->schema, sizeof e->schema);
	e->db = db_open(ts_pg_url(), e->schema, err, sizeof err);
	assert_non_null(e->db);
	assert_int_equal(db_ensure(e->db), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	db_close(e->db);
	ts_pg_schema_drop(e->schema);
	free(e);
	return 0;
}

static void get(struct env *e, const char *sid, struct store_call *c)
{
	bool found = false;

	assert_int_equal(store_call_get(e->db, sid, c, &found), 0);
	assert_true(found);
}

static void test_dialer_calls_create_with_call_sid(void **state)
{
	struct env *e = *state;
	struct store_call c;
	bool created = false;

	assert_int_equal(
	    store_call_insert(e->db, "EL_12345_2025-11-21T10:30:00Z", "12345", "T-1", &created), 0);
	assert_true(created);
	get(e, "EL_12345_2025-11-21T10:30:00Z", &c);
	assert_false(c.has_conversation_id);
	assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
	assert_string_equal(c.driver_id, "12345");
	assert_string_equal(c.trip_id, "T-1");
	assert_true(c.call_start_time[0] != '\0');
	assert_string_equal(c.call_end_time, "");
	assert_string_equal(c.dial_attempted_at, "");
	/* a second insert (redelivery, client retry) leaves the row alone */
	assert_int_equal(
	    store_call_insert(e->db, "EL_12345_2025-11-21T10:30:00Z", "other", NULL, &created), 0);
	assert_false(created);
	get(e, "EL_12345_2025-11-21T10:30:00Z", &c);
	assert_string_equal(c.driver_id, "12345");
}

static void test_dialer_calls_update_conversation_id(void **state)
{
	struct env *e = *state;
	struct store_call c;
	bool created, changed = false;

	assert_int_equal(store_call_insert(e->db, "EL_2_t", "2", NULL, &created), 0);
	assert_int_equal(store_call_set_conversation(e->db, "EL_2_t", "conv_abc", &changed), 0);
	assert_true(changed);
	get(e, "EL_2_t", &c);
	assert_true(c.has_conversation_id);
	assert_string_equal(c.conversation_id, "conv_abc");
	assert_string_equal(c.status, STORE_CALL_IN_PROGRESS);
	/* a different id later does not overwrite it */
	assert_int_equal(store_call_set_conversation(e->db, "EL_2_t", "conv_other", &changed), 0);
	assert_false(changed);
	get(e, "EL_2_t", &c);
	assert_string_equal(c.conversation_id, "conv_abc");
}

static void test_dialer_calls_update_status_and_end_time(void **state)
{
	struct env *e = *state;
	struct store_call c;
	bool created, changed = false;

	assert_int_equal(store_call_insert(e->db, "EL_3_t", "3", NULL, &created), 0);
	assert_int_equal(
	    store_call_set_completed(e->db, "EL_3_t", "2025-11-21T10:35:00Z", "conv_3", &changed),
	    0);
	assert_true(changed);
	get(e, "EL_3_t", &c);
	assert_string_equal(c.status, STORE_CALL_COMPLETED);
	assert_string_equal(c.call_end_time, "2025-11-21T10:35:00.000Z");
	assert_string_equal(c.conversation_id, "conv_3");
	/* a final state stays final */
	assert_int_equal(store_call_set_failed(e->db, "EL_3_t", "late", &changed), 0);
	assert_false(changed);
	get(e, "EL_3_t", &c);
	assert_string_equal(c.status, STORE_CALL_COMPLETED);
}

static void test_dialer_calls_lookup(void **state)
{
	struct env *e = *state;
	struct store_call c;
	bool created, found = true;

	assert_int_equal(store_call_insert(e->db, "EL_4_t", "4", NULL, &created), 0);
	get(e, "EL_4_t", &c);
	assert_string_equal(c.call_sid, "EL_4_t");
	assert_int_equal(store_call_get(e->db, "EL_4_missing", &c, &found), 0);
	assert_false(found);
}

static void test_dialer_calls_unique_call_sid(void **state)
{
	struct env *e = *state;
	const char *params[] = {"EL_5_t"};
	bool created;

	assert_int_equal(store_call_insert(e->db, "EL_5_t", "5", NULL, &created), 0);
	/* the constraint itself, not just the store's ON CONFLICT */
	assert_int_not_equal(
	    db_cmd(e->db, "INSERT INTO calls (call_sid, status) VALUES ($1, 'in_progress')", 1,
	           params),
	    0);
	assert_string_equal(db_sqlstate(e->db), "23505");
	assert_int_equal(db_errclass(e->db), DB_ERR_PERMANENT);
}

static void test_dialer_calls_failed_call_keeps_audit_row(void **state)
{
	struct env *e = *state;
	struct store_call c;
	bool created, claimed = false, changed = false;

	/* the dialer's order: row, claim, API refuses, failed with the API's message */
	assert_int_equal(store_call_insert(e->db, "EL_6_t", "6", NULL, &created), 0);
	assert_int_equal(store_call_claim_dial(e->db, "EL_6_t", &claimed), 0);
	assert_true(claimed);
	assert_int_equal(store_call_claim_dial(e->db, "EL_6_t", &claimed), 0);
	assert_false(claimed); /* never a second dial */
	assert_int_equal(store_call_set_failed(e->db, "EL_6_t", "number unreachable", &changed), 0);
	assert_true(changed);
	get(e, "EL_6_t", &c);
	assert_string_equal(c.call_sid, "EL_6_t");
	assert_string_equal(c.driver_id, "6");
	assert_string_equal(c.status, STORE_CALL_FAILED);
	assert_string_equal(c.failure_reason, "number unreachable");
	assert_false(c.has_conversation_id);
	assert_int_equal(c.dial_attempts, 1);
	assert_true(c.call_end_time[0] != '\0');
	/* a failed call can not be claimed again either */
	assert_int_equal(store_call_claim_dial(e->db, "EL_6_t", &claimed), 0);
	assert_false(claimed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_dialer_calls_create_with_call_sid),
	    cmocka_unit_test(test_dialer_calls_update_conversation_id),
	    cmocka_unit_test(test_dialer_calls_update_status_and_end_time),
	    cmocka_unit_test(test_dialer_calls_lookup),
	    cmocka_unit_test(test_dialer_calls_unique_call_sid),
	    cmocka_unit_test(test_dialer_calls_failed_call_keeps_audit_row),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
