/* test_migrations: migrations/ and the migrate tool against the throwaway Postgres, each test in
 * its own schema: up from empty, 003's constraints, indexes and index use, up/down round trips,
 * 004's guarded down, checksums of applied files, exit codes, and concurrent migrators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "log.h"
#include "test_migrations_util.h"
#include "tsupport.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mstate {
	char schema[64];
};

static int setup_schema(void **state)
{
	struct mstate *st = calloc(1, sizeof *st);

	ts_pg_schema_new("mig", false, st->schema, sizeof st->schema);
	*state = st;
	return 0;
}

static int teardown_schema(void **state)
{
	struct mstate *st = *state;

	ts_pg_schema_drop(st->schema);
	free(st);
	return 0;
}

/* Runs sql expecting an error; returns its SQLSTATE (static). */
static const char *expect_sql_error(const char *schema, const char *sql)
{
	static char state[6];
	struct db *db = ts_pg_db_open(schema);

	if (db_cmd(db, sql, 0, NULL) == 0)
		fail_msg("expected an error from: %s", sql);
	snprintf(state, sizeof state, "%s", db_sqlstate(db));
	db_close(db);
	return state;
}

/* Asserts that the first column of the first row of sql is expect. */
static void assert_query(const char *schema, const char *sql, const char *expect)
{
	char *got = ts_pg_query(schema, sql);

	if (!got || strcmp(got, expect) != 0)
		fail_msg("%s\n  expected: %s\n  got: %s", sql, expect, got ? got : "(null)");
	free(got);
}

static void assert_up_ok(const char *schema)
{
	char *out = NULL;
	int rc = mt_migrate(schema, NULL, &out, "up", NULL);

	if (rc != 0)
		fail_msg("migrate up exited %d: %s", rc, out ? out : "");
	free(out);
}

static void test_migrations_up_from_empty(void **state)
{
	struct mstate *st = *state;
	int n = mt_count_migrations(mt_migrations_dir());
	char *out = NULL;

	assert_true(n >= 6);
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "up", NULL), 0);
	assert_non_null(strstr(out, "applied 000_initial_schema ("));
	assert_non_null(strstr(out, "applied 005_pipeline_columns ("));
	free(out);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM schema_migrations"), n);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM schema_migrations "
	                                            "WHERE checksum ~ '^[0-9a-f]{64}$'"),
	                 n);

	/* The design.md §5 shape: call_sid required, conversation_id optional, 005's columns. */
	assert_query(st->schema,
	             "SELECT string_agg(column_name || ':' || is_nullable, ',' ORDER BY "
	             "column_name) FROM information_schema.columns WHERE table_schema = "
	             "current_schema() AND table_name = 'calls' AND column_name IN "
	             "('call_sid', 'conversation_id', 'dial_attempts', 'dial_attempted_at', "
	             "'failure_reason', 'sweep_lease_until', 'status')",
	             "call_sid:NO,conversation_id:YES,dial_attempted_at:YES,dial_attempts:NO,"
	             "failure_reason:YES,status:NO,sweep_lease_until:YES");
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT count(*) FROM information_schema.columns WHERE "
	                                "table_schema = current_schema() AND table_name = "
	                                "'call_transcriptions' AND column_name = 'event_id' AND "
	                                "is_nullable = 'YES'"),
	                 1);
	/* status CHECK (005) and the event_id uniqueness that makes replays harmless. */
	assert_string_equal(expect_sql_error(st->schema, "INSERT INTO calls (call_sid, status) "
	                                                 "VALUES ('EL_1_1', 'ringing')"),
	                    "23514");
	ts_pg_exec(st->schema, "INSERT INTO calls (call_sid, conversation_id) VALUES ('EL_1_2', "
	                       "'conv-1')");
	ts_pg_exec(st->schema, "INSERT INTO call_transcriptions (conversation_id, speaker, "
	                       "message, sequence_number, event_id) VALUES ('conv-1', 'agent', "
	                       "'hi', 1, 'ev-1'), ('conv-1', 'user', 'legacy', 2, NULL), "
	                       "('conv-1', 'user', 'legacy', 3, NULL)");
	assert_string_equal(expect_sql_error(st->schema,
	                                     "INSERT INTO call_transcriptions (conversation_id, "
	                                     "speaker, message, sequence_number, event_id) VALUES "
	                                     "('conv-1', 'agent', 'again', 4, 'ev-1')"),
	                    "23505");

	/* Again: nothing to do; status lists every version as applied. */
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "up", NULL), 0);
	assert_non_null(strstr(out, "nothing to do"));
	assert_null(strstr(out, "applied 0"));
	free(out);
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "status", NULL), 0);
	assert_non_null(strstr(out, "000_initial_schema"));
	assert_non_null(strstr(out, " 0 pending\n"));
	free(out);
}

/* The first line of EXPLAIN for a statement prepared with a generic ($1) plan. */
static char *explain_generic(struct db *db, const char *prepare, const char *execute)
{
	PGresult *res;
	char *line;

	assert_int_equal(db_cmd(db, "SET plan_cache_mode = force_generic_plan", 0, NULL), 0);
	assert_int_equal(db_cmd(db, prepare, 0, NULL), 0);
	res = db_exec(db, execute, 0, NULL);
	if (!res)
		fail_msg("%s: %s", execute, db_errmsg(db));
	line = strdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	return line;
}

static void test_migrations_003_constraints_and_indexes(void **state)
{
	struct mstate *st = *state;
	struct db *db;
	char *plan;

	assert_up_ok(st->schema);
	assert_query(st->schema,
	             "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
	             "WHERE conname = 'uq_calls_call_sid' AND conrelid = "
	             "'calls'::regclass AND contype = 'u'",
	             "UNIQUE (call_sid)");
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT count(*) FROM pg_indexes WHERE schemaname = "
	                                "current_schema() AND ((indexname = 'idx_calls_call_sid' "
	                                "AND indexdef LIKE '%USING btree (call_sid)') OR "
	                                "(indexname = 'idx_calls_call_sid_status' AND indexdef "
	                                "LIKE '%USING btree (call_sid, status)'))"),
	                 2);
	/* NOT NULL and UNIQUE are enforced. */
	assert_string_equal(expect_sql_error(st->schema, "INSERT INTO calls (driver_id) VALUES "
	                                                 "('1')"),
	                    "23502");
	ts_pg_exec(st->schema, "INSERT INTO calls (call_sid) VALUES ('EL_dup_1')");
	assert_string_equal(expect_sql_error(st->schema, "INSERT INTO calls (call_sid) VALUES "
	                                                 "('EL_dup_1')"),
	                    "23505");

	/* The webhook lookup by call_sid uses an index, with a realistic table and a generic plan
	 * for $1 as the services send it. */
	ts_pg_exec(st->schema, "INSERT INTO calls (call_sid, driver_id, status) SELECT 'EL_' || "
	                       "g || '_1700000000', g::text, CASE WHEN g % 3 = 0 THEN "
	                       "'completed' ELSE 'in_progress' END FROM generate_series(1, 5000) "
	                       "g");
	ts_pg_exec(st->schema, "ANALYZE calls");
	db = ts_pg_db_open(st->schema);
	plan = explain_generic(db,
	                       "PREPARE by_sid(varchar) AS SELECT * FROM calls WHERE call_sid "
	                       "= $1",
	                       "EXPLAIN EXECUTE by_sid('EL_42_1700000000')");
	if (!strstr(plan, "Index Scan using") || !strstr(plan, "call_sid"))
		fail_msg("lookup by call_sid does not use a call_sid index: %s", plan);
	free(plan);
	plan = explain_generic(db,
	                       "PREPARE by_sid_status(varchar, varchar) AS SELECT * FROM calls "
	                       "WHERE call_sid = $1 AND status = $2",
	                       "EXPLAIN EXECUTE by_sid_status('EL_42_1700000000', 'in_progress')");
	if (!strstr(plan, "Index Scan using") || !strstr(plan, "call_sid"))
		fail_msg("lookup by call_sid and status does not use an index: %s", plan);
	free(plan);
	db_close(db);
}

static void test_migrations_round_trip(void **state)
{
	struct mstate *st = *state;
	int n = mt_count_migrations(mt_migrations_dir());
	char *before, *after, *out = NULL;

	assert_up_ok(st->schema);
	before = mt_catalog(st->schema);
	assert_non_null(strstr(before, "constraint calls.uq_calls_call_sid UNIQUE (call_sid)"));
	assert_non_null(strstr(before, "index calls.idx_calls_sweep"));

	/* Everything down: no table is left, the ledger is empty. */
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "all", NULL), 0);
	free(out);
	after = mt_catalog(st->schema);
	assert_string_equal(after, "");
	free(after);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM schema_migrations"), 0);
	assert_up_ok(st->schema);
	after = mt_catalog(st->schema);
	assert_string_equal(after, before);
	free(after);

	/* Each depth: down k then up gives the same schema back. */
	for (int k = 1; k <= n; k++) {
		char steps[16];

		snprintf(steps, sizeof steps, "%d", k);
		assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", steps, NULL), 0);
		free(out);
		assert_int_equal(
		    ts_pg_query_ll(st->schema, "SELECT count(*) FROM schema_migrations"), n - k);
		assert_up_ok(st->schema);
		after = mt_catalog(st->schema);
		if (strcmp(after, before) != 0)
			fail_msg(
			    "schema differs after down %d + up:\n--- before\n%s\n--- after\n%s", k,
			    before, after);
		free(after);
	}
	free(before);

	/* 000 alone is the pre-refactor schema. */
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "all", NULL), 0);
	free(out);
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "up", "--to", "0", NULL), 0);
	free(out);
	assert_query(st->schema,
	             "SELECT is_nullable FROM information_schema.columns WHERE "
	             "table_schema = current_schema() AND table_name = 'calls' "
	             "AND column_name = 'conversation_id'",
	             "NO");
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT count(*) FROM information_schema.columns "
	                                "WHERE table_schema = current_schema() AND "
	                                "column_name = 'call_sid'"),
	                 0);
	assert_query(st->schema,
	             "SELECT pg_get_constraintdef(oid) FROM "
	             "pg_constraint WHERE conname = "
	             "'fk_call_transcriptions_conversation_id' AND conrelid = "
	             "'call_transcriptions'::regclass",
	             "FOREIGN KEY (conversation_id) REFERENCES calls(conversation_id)");
}

static void test_migrations_004_down_refused(void **state)
{
	struct mstate *st = *state;
	char *out = NULL, expect[256];
	long long top;

	assert_up_ok(st->schema);
	ts_pg_exec(st->schema, "INSERT INTO calls (call_sid) VALUES ('EL_a_1'), ('EL_b_1')");
	ts_pg_exec(st->schema, "INSERT INTO calls (call_sid, conversation_id) VALUES ('EL_c_1', "
	                       "'conv-c')");

	/* Down to 003: 004 refuses, and because the range is rehearsed in one rolled-back
	 * transaction first, nothing above it was reverted either. */
	top = ts_pg_query_ll(st->schema, "SELECT max(version) FROM schema_migrations");
	assert_true(top > 4);
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "--to", "3", NULL), 3);
	assert_non_null(strstr(out, "2 calls"));
	assert_non_null(strstr(out, "nothing was reverted"));
	snprintf(expect, sizeof expect, "DELETE FROM %s.calls WHERE conversation_id IS NULL",
	         st->schema);
	if (!strstr(out, expect))
		fail_msg("the refusal does not say how to clean up (%s):\n%s", expect, out);
	free(out);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT max(version) FROM schema_migrations"),
	                 top);
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT count(*) FROM information_schema.columns "
	                                "WHERE table_schema = current_schema() AND "
	                                "table_name = 'calls' AND column_name = "
	                                "'failure_reason'"),
	                 1);
	assert_query(st->schema,
	             "SELECT is_nullable FROM information_schema.columns WHERE "
	             "table_schema = current_schema() AND table_name = 'calls' "
	             "AND column_name = 'conversation_id'",
	             "YES");
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls"), 3);

	/* Cleaned up as the hint says (keeping audit rows), the down goes through. */
	ts_pg_exec(st->schema, "UPDATE calls SET conversation_id = 'none:' || call_sid WHERE "
	                       "conversation_id IS NULL");
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "--to", "3", NULL), 0);
	free(out);
	assert_query(st->schema,
	             "SELECT is_nullable FROM information_schema.columns WHERE "
	             "table_schema = current_schema() AND table_name = 'calls' "
	             "AND column_name = 'conversation_id'",
	             "NO");
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls"), 3);
	assert_up_ok(st->schema);
}

static void test_migrations_checksum_mismatch(void **state)
{
	struct mstate *st = *state;
	char *dir = mt_copy_migrations(), *out = NULL, *orig, path[PATH_MAX];
	long long applied;
	FILE *fp;

	assert_int_equal(mt_migrate(st->schema, dir, &out, "up", NULL), 0);
	free(out);
	applied = ts_pg_query_ll(st->schema, "SELECT count(*) FROM schema_migrations");

	/* Editing an applied file is refused by every command, naming the file. */
	snprintf(path, sizeof path, "%s/002_backfill_call_sid.up.sql", dir);
	orig = mt_read_file(path);
	fp = fopen(path, "a");
	assert_non_null(fp);
	fputs("-- an innocent-looking edit\n", fp);
	fclose(fp);
	assert_int_equal(mt_migrate(st->schema, dir, &out, "up", NULL), 3);
	assert_non_null(strstr(out, "002_backfill_call_sid.up.sql"));
	free(out);
	assert_int_equal(mt_migrate(st->schema, dir, &out, "down", NULL), 3);
	free(out);
	assert_int_equal(mt_migrate(st->schema, dir, &out, "status", NULL), 3);
	assert_non_null(strstr(out, "CHANGED"));
	free(out);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM schema_migrations"),
	                 applied);

	/* Restored, all is well again. */
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(orig, fp);
	fclose(fp);
	assert_int_equal(mt_migrate(st->schema, dir, &out, "up", NULL), 0);
	assert_non_null(strstr(out, "nothing to do"));
	free(out);
	free(orig);
	free(dir);
}

static void test_migrations_exit_codes(void **state)
{
	struct mstate *st = *state;
	char bin[PATH_MAX], *out = NULL;
	const char *bad_db[] = {"DATABASE_URL=postgresql://postgres@127.0.0.1:1/postgres",
	                        "LOG_LEVEL=error", NULL};
	const char *no_db[] = {"DATABASE_URL=", "LOG_LEVEL=error", NULL};

	assert_int_equal(mt_migrate(st->schema, NULL, &out, "sideways", NULL), 2);
	free(out);
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "-3", NULL), 2);
	free(out);
	assert_int_equal(mt_migrate("1bad;schema", NULL, &out, "up", NULL), 2);
	free(out);
	assert_int_equal(mt_migrate(st->schema, "/nonexistent/migrations", &out, "up", NULL), 2);
	free(out);
	{
		const char *argv[] = {ts_bin("migrate", bin, sizeof bin), "up", NULL};
		assert_int_equal(ts_run(argv, no_db, &out, 10000), 2);
		free(out);
		assert_int_equal(ts_run(argv, bad_db, &out, 10000), 1);
		assert_non_null(strstr(out, "cannot connect"));
		free(out);
	}
	/* Nothing was created by the failures. */
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM pg_tables WHERE "
	                                            "schemaname = current_schema()"),
	                 0);
}

/* Reads a process log and says whether it applied migrations or found nothing to do. */
static void read_migrator(const struct ts_proc *p, bool *waited, bool *applied, bool *nothing)
{
	char *log = mt_read_file(p->log_path);

	*waited = strstr(log, "waiting for the migration lock") != NULL;
	*applied = strstr(log, "applied 000_initial_schema (") != NULL;
	*nothing = strstr(log, "nothing to do") != NULL;
	free(log);
}

static bool both_waiting(void *opaque)
{
	struct ts_proc *p = opaque;

	return mt_file_contains(p[0].log_path, "waiting for the migration lock") &&
	       mt_file_contains(p[1].log_path, "waiting for the migration lock");
}

/* Starts two `migrate up` at once; with hold_lock the test holds the migration lock first, so
 * both must wait; checks one applied everything and the other found nothing to do. */
static void run_two_migrators(const char *schema, bool hold_lock)
{
	int n = mt_count_migrations(mt_migrations_dir());
	char bin[PATH_MAX], url_env[2100];
	const char *argv[] = {ts_bin("migrate", bin, sizeof bin),
	                      "--schema",
	                      schema,
	                      "--dir",
	                      mt_migrations_dir(),
	                      "up",
	                      NULL};
	const char *env[] = {url_env, "LOG_LEVEL=info", "DB_SCHEMA=", "MIGRATIONS_DIR=", NULL};
	const char *params[] = {schema};
	struct ts_proc p[2];
	struct db *db = NULL;
	bool waited[2], applied[2], nothing[2];

	snprintf(url_env, sizeof url_env, "DATABASE_URL=%s", ts_pg_url());
	if (hold_lock) {
		db = ts_pg_db_open(schema);
		assert_int_equal(db_cmd(db,
		                        "SELECT pg_advisory_lock(hashtextextended("
		                        "'callpipe.migrate:' || $1, 0))",
		                        1, params),
		                 0);
	}
	ts_proc_start(&p[0], argv, env);
	ts_proc_start(&p[1], argv, env);
	if (hold_lock) {
		if (!ts_wait_until(both_waiting, p, 20000))
			fail_msg("the migrators did not report waiting for the lock (%s, %s)",
			         p[0].log_path, p[1].log_path);
		/* Nothing happened while the lock was held elsewhere. */
		assert_int_equal(ts_pg_query_ll(schema, "SELECT count(*) FROM pg_tables WHERE "
		                                        "schemaname = current_schema()"),
		                 0);
		db_close(db); /* releases the lock */
	}
	assert_int_equal(ts_proc_stop(&p[0], 0, 60000), 0);
	assert_int_equal(ts_proc_stop(&p[1], 0, 60000), 0);
	read_migrator(&p[0], &waited[0], &applied[0], &nothing[0]);
	read_migrator(&p[1], &waited[1], &applied[1], &nothing[1]);
	assert_true(applied[0] != applied[1]);
	assert_true(nothing[0] != nothing[1]);
	assert_true(applied[0] == nothing[1]);
	if (hold_lock)
		assert_true(waited[0] && waited[1]);
	assert_int_equal(ts_pg_query_ll(schema, "SELECT count(*) FROM schema_migrations"), n);
	assert_int_equal(ts_pg_query_ll(schema, "SELECT count(DISTINCT version) FROM "
	                                        "schema_migrations"),
	                 n);
}

static void test_migrations_concurrent_up_waits(void **state)
{
	struct mstate *st = *state;

	run_two_migrators(st->schema, true);
}

static void test_migrations_concurrent_up_race(void **state)
{
	struct mstate *st = *state;

	run_two_migrators(st->schema, false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_migrations_up_from_empty, setup_schema,
	                                    teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_003_constraints_and_indexes,
	                                    setup_schema, teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_round_trip, setup_schema,
	                                    teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_004_down_refused, setup_schema,
	                                    teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_checksum_mismatch, setup_schema,
	                                    teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_exit_codes, setup_schema,
	                                    teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_concurrent_up_waits, setup_schema,
	                                    teardown_schema),
	    cmocka_unit_test_setup_teardown(test_migrations_concurrent_up_race, setup_schema,
	                                    teardown_schema),
	};

	log_init("test_migrations", LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
