/* test_store_calls: store_calls.c and db.c against the throwaway Postgres (a migrated schema per
 * test): the Call model's life cycle, the dialer's claim-once guard and the sweeper's lease under
 * concurrent connections, and db's error classes and reconnect. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "log.h"
#include "store_calls.h"
#include "tsupport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NTHREADS 6

struct sstate {
	char schema[64];
	struct db *db;
};

static int setup(void **state)
{
	struct sstate *st = calloc(1, sizeof *st);

	ts_pg_schema_new("store", true, st->schema, sizeof st->schema);
	st->db = ts_pg_db_open(st->schema);
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	struct sstate *st = *state;

	db_close(st->db);
	ts_pg_schema_drop(st->schema);
	free(st);
	return 0;
}

static void insert_call(struct db *db, const char *sid, const char *driver)
{
	bool created = false;

	assert_int_equal(store_call_insert(db, sid, driver, "trip-1", &created), 0);
	assert_true(created);
}

static void get_call(struct db *db, const char *sid, struct store_call *c)
{
	bool found = false;

	assert_int_equal(store_call_get(db, sid, c, &found), 0);
	if (!found)
		fail_msg("call %s not found", sid);
}

static void assert_iso_utc(const char *ts)
{
	/* 2025-11-21T10:30:00.123Z */
	assert_int_equal(strlen(ts), 24);
	assert_int_equal(ts[10], 'T');
	assert_int_equal(ts[19], '.');
	assert_int_equal(ts[23], 'Z');
}

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

static void test_store_call_claim_dial_once(void **state)
{
	struct sstate *st = *state;
	struct store_call c;
	bool claimed = false;

	insert_call(st->db, "EL_d7_1", "d7");
	assert_int_equal(store_call_claim_dial(st->db, "EL_d7_1", &claimed), 0);
	assert_true(claimed);
	get_call(st->db, "EL_d7_1", &c);
	assert_int_equal(c.dial_attempts, 1);
	assert_iso_utc(c.dial_attempted_at);
	assert_int_equal(store_call_claim_dial(st->db, "EL_d7_1", &claimed), 0);
	assert_false(claimed);
	get_call(st->db, "EL_d7_1", &c);
	assert_int_equal(c.dial_attempts, 1);
	assert_int_equal(store_call_claim_dial(st->db, "EL_nobody", &claimed), 0);
	assert_false(claimed);
}

struct claimer {
	const char *schema;
	const char *sid;
	pthread_barrier_t *barrier;
	atomic_bool done;
	int rc;
	bool claimed;
};

static void *claimer_run(void *arg)
{
	struct claimer *c = arg;
	char err[256];
	struct db *db = db_open(ts_pg_url(), c->schema, err, sizeof err);

	c->rc = -1;
	if (db && db_ok(db)) {
		if (c->barrier)
			pthread_barrier_wait(c->barrier);
		c->rc = store_call_claim_dial(db, c->sid, &c->claimed);
	} else if (c->barrier) {
		pthread_barrier_wait(c->barrier);
	}
	db_close(db);
	atomic_store(&c->done, true);
	return NULL;
}

static void test_store_call_claim_dial_concurrent(void **state)
{
	struct sstate *st = *state;
	struct claimer one = {.schema = st->schema, .sid = "EL_d8_1"}, many[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t barrier;
	bool claimed = false;
	int winners = 0;

	/* A second dialer blocks on the first one's open transaction, then loses. */
	insert_call(st->db, "EL_d8_1", "d8");
	assert_int_equal(db_begin(st->db), 0);
	assert_int_equal(store_call_claim_dial(st->db, "EL_d8_1", &claimed), 0);
	assert_true(claimed);
	assert_int_equal(pthread_create(&th[0], NULL, claimer_run, &one), 0);
	ts_sleep_ms(300);
	assert_false(atomic_load(&one.done));
	assert_int_equal(db_commit(st->db), 0);
	pthread_join(th[0], NULL);
	assert_int_equal(one.rc, 0);
	assert_false(one.claimed);

	/* NTHREADS connections race on one call: exactly one wins. */
	insert_call(st->db, "EL_d8_2", "d8");
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		many[i] =
		    (struct claimer){.schema = st->schema, .sid = "EL_d8_2", .barrier = &barrier};
		assert_int_equal(pthread_create(&th[i], NULL, claimer_run, &many[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(many[i].rc, 0);
		winners += many[i].claimed;
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(winners, 1);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT dial_attempts FROM calls WHERE "
	                                            "call_sid = 'EL_d8_2'"),
	                 1);
}

/* 20 stuck calls (s00..s19, started an hour ago), plus ones the sweeper must not take. */
static void insert_stuck(struct sstate *st)
{
	char sid[32];
	bool changed;

	for (int i = 0; i < 20; i++) {
		snprintf(sid, sizeof sid, "EL_s%02d_1", i);
		insert_call(st->db, sid, "s");
	}
	ts_pg_exec(st->schema, "UPDATE calls SET call_start_time = now() - interval '1 hour'");
	insert_call(st->db, "EL_fresh_1", "f");
	insert_call(st->db, "EL_done_1", "f");
	assert_int_equal(store_call_set_failed(st->db, "EL_done_1", "x", &changed), 0);
	ts_pg_exec(st->schema, "UPDATE calls SET call_start_time = now() - interval '1 hour' "
	                       "WHERE call_sid = 'EL_done_1'");
}

static void test_store_call_lease_stuck_two_connections(void **state)
{
	struct sstate *st = *state;
	struct store_call a[50], b[50];
	struct db *db2 = ts_pg_db_open(st->schema);
	int na = 0, nb = 0;

	insert_stuck(st);
	/* A holds its 5 rows in an open transaction; B skips them instead of waiting. */
	assert_int_equal(db_begin(st->db), 0);
	assert_int_equal(store_call_lease_stuck(st->db, 60, 300, a, 5, &na), 0);
	assert_int_equal(na, 5);
	assert_int_equal(store_call_lease_stuck(db2, 60, 300, b, 50, &nb), 0);
	assert_int_equal(nb, 15);
	for (int i = 0; i < na; i++)
		for (int j = 0; j < nb; j++)
			assert_true(a[i].id != b[j].id);
	for (int j = 0; j < nb; j++) {
		assert_string_equal(b[j].status, STORE_CALL_IN_PROGRESS);
		assert_string_equal(b[j].driver_id, "s");
	}
	assert_int_equal(db_commit(st->db), 0);
	/* Everything is leased now; expired leases are free again. */
	assert_int_equal(store_call_lease_stuck(db2, 60, 300, b, 50, &nb), 0);
	assert_int_equal(nb, 0);
	ts_pg_exec(st->schema, "UPDATE calls SET sweep_lease_until = now() - interval '1 second'");
	assert_int_equal(store_call_lease_stuck(db2, 60, 300, b, 50, &nb), 0);
	assert_int_equal(nb, 20);
	db_close(db2);
}

struct sweeper {
	const char *schema;
	pthread_barrier_t *barrier;
	int64_t ids[64];
	int n, rc;
};

static void *sweeper_run(void *arg)
{
	struct sweeper *s = arg;
	char err[256];
	struct db *db = db_open(ts_pg_url(), s->schema, err, sizeof err);
	struct store_call batch[3];
	int n = 0;

	s->rc = db && db_ok(db) ? 0 : -1;
	pthread_barrier_wait(s->barrier);
	while (s->rc == 0) {
		s->rc = store_call_lease_stuck(db, 60, 300, batch, 3, &n);
		if (s->rc < 0 || n == 0)
			break;
		for (int i = 0; i < n && s->n < 64; i++)
			s->ids[s->n++] = batch[i].id;
	}
	db_close(db);
	return NULL;
}

static void test_store_call_lease_stuck_concurrent(void **state)
{
	struct sstate *st = *state;
	struct sweeper sw[NTHREADS];
	pthread_t th[NTHREADS];
	pthread_barrier_t barrier;
	int64_t seen[128];
	int nseen = 0;

	insert_stuck(st);
	pthread_barrier_init(&barrier, NULL, NTHREADS);
	for (int i = 0; i < NTHREADS; i++) {
		sw[i] = (struct sweeper){.schema = st->schema, .barrier = &barrier};
		assert_int_equal(pthread_create(&th[i], NULL, sweeper_run, &sw[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(sw[i].rc, 0);
		for (int j = 0; j < sw[i].n; j++) {
			for (int k = 0; k < nseen; k++)
				if (seen[k] == sw[i].ids[j])
					fail_msg("call id %lld leased twice", (long long)seen[k]);
			seen[nseen++] = sw[i].ids[j];
		}
	}
	pthread_barrier_destroy(&barrier);
	assert_int_equal(nseen, 20);
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
	    cmocka_unit_test_setup_teardown(test_store_call_claim_dial_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_claim_dial_concurrent, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_lease_stuck_two_connections, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_store_call_lease_stuck_concurrent, setup,
	                                    teardown),
	    cmocka_unit_test(test_db_classify),
	    cmocka_unit_test_setup_teardown(test_db_errors_and_reconnect, setup, teardown),
	};

	log_init("test_store_calls", LOG_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
