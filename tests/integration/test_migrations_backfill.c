/* test_migrations_backfill: migration 002 on legacy rows: migrate to 001, insert rows as the old
 * service wrote them, migrate up, and check every call_sid (UNKNOWN for NULL drivers, epoch
 * seconds, existing values untouched, same-second duplicates made unique, re-runs no-ops), plus
 * 003's refusal when call_sids are still missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_migrations_util.h"
#include "tsupport.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2025-11-21T10:30:00Z */
#define T0 "1763721000"

struct bstate {
	char schema[64];
};

/* Legacy rows. Ids are assigned in this order (1..9). */
static const char LEGACY_ROWS[] =
    "INSERT INTO calls (conversation_id, driver_id, created_at, call_sid) VALUES "
    /* 1, 2: plain format; 2 has no driver */
    "('conv-1', '12345', '2025-11-21 10:30:00+00', NULL), "
    "('conv-2', NULL, '2025-11-21 10:30:00.750+00', NULL), "
    /* 3, 4, 5: same driver, same second (fractions differ) */
    "('conv-3', '777', '2025-11-21 10:30:01.000+00', NULL), "
    "('conv-4', '777', '2025-11-21 10:30:01.400+00', NULL), "
    "('conv-5', '777', '2025-11-21 10:30:01.999+00', NULL), "
    /* 6: already has a call_sid (written by the new code): untouched */
    "('conv-6', '12345', '2025-11-21 10:30:00+00', 'EL_12345_2025-11-21T10:30:00Z'), "
    /* 7: already holds exactly the value 8 would get */
    "('conv-7', '888', '2025-11-21 10:30:03+00', 'EL_999_"
    "1763721003'), "
    /* 8: its plain value is taken by 7 */
    "('conv-8', '999', '2025-11-21 10:30:03+00', NULL), "
    /* 9: timestamp in another zone: epoch seconds are zone-independent */
    "('conv-9', '42', '2025-11-21 12:30:05.5+02', NULL)";

static int setup_legacy(void **state)
{
	struct bstate *st = calloc(1, sizeof *st);
	char *out = NULL;

	ts_pg_schema_new("backfill", false, st->schema, sizeof st->schema);
	if (mt_migrate(st->schema, NULL, &out, "up", "--to", "1", NULL) != 0)
		fail_msg("migrate up --to 1: %s", out ? out : "");
	free(out);
	ts_pg_exec(st->schema, LEGACY_ROWS);
	*state = st;
	return 0;
}

static int teardown_legacy(void **state)
{
	struct bstate *st = *state;

	ts_pg_schema_drop(st->schema);
	free(st);
	return 0;
}

static void up_ok(const char *schema)
{
	char *out = NULL;
	int rc = mt_migrate(schema, NULL, &out, "up", NULL);

	if (rc != 0)
		fail_msg("migrate up exited %d: %s", rc, out ? out : "");
	free(out);
}

/* Asserts the call_sid of the row with conversation_id conv. */
static void assert_sid(const char *schema, const char *conv, const char *expect)
{
	char sql[256], *got;

	snprintf(sql, sizeof sql, "SELECT call_sid FROM calls WHERE conversation_id = '%s'", conv);
	got = ts_pg_query(schema, sql);
	if (!got || strcmp(got, expect) != 0)
		fail_msg("%s: call_sid %s, expected %s", conv, got ? got : "NULL", expect);
	free(got);
}

/* Every call_sid in id order, one string. malloc'd. */
static char *all_sids(const char *schema)
{
	return ts_pg_query(schema, "SELECT string_agg(id || '=' || coalesce(call_sid, 'NULL'), "
	                           "',' ORDER BY id) FROM calls");
}

static void test_backfill_null_driver_is_unknown(void **state)
{
	struct bstate *st = *state;

	up_ok(st->schema);
	assert_sid(st->schema, "conv-2", "EL_UNKNOWN_" T0);
}

static void test_backfill_epoch_seconds_format(void **state)
{
	struct bstate *st = *state;

	up_ok(st->schema);
	assert_sid(st->schema, "conv-1", "EL_12345_" T0);
	assert_sid(st->schema, "conv-9", "EL_42_1763721005");
	/* Every backfilled value is EL_<driver>_<floor(epoch)>[_n]. */
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT count(*) FROM calls WHERE conversation_id <> "
	                                "'conv-6' AND conversation_id <> 'conv-7' AND call_sid !~ "
	                                "('^EL_' || coalesce(driver_id, 'UNKNOWN') || '_' || "
	                                "floor(extract(epoch FROM created_at))::bigint || "
	                                "'(_[0-9]+)?$')"),
	                 0);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls WHERE call_sid "
	                                            "IS NULL"),
	                 0);
}

static void test_backfill_existing_call_sid_untouched(void **state)
{
	struct bstate *st = *state;

	up_ok(st->schema);
	assert_sid(st->schema, "conv-6", "EL_12345_2025-11-21T10:30:00Z");
	assert_sid(st->schema, "conv-7", "EL_999_1763721003");
}

static void test_backfill_same_second_duplicates(void **state)
{
	struct bstate *st = *state;

	up_ok(st->schema);
	/* The lowest id keeps the plain format; the others follow in id order. */
	assert_sid(st->schema, "conv-3", "EL_777_1763721001");
	assert_sid(st->schema, "conv-4", "EL_777_1763721001_2");
	assert_sid(st->schema, "conv-5", "EL_777_1763721001_3");
	/* A value another row already holds is never reused. */
	assert_sid(st->schema, "conv-8", "EL_999_1763721003_2");
	/* 003 went through: unique and not null. */
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(DISTINCT call_sid) FROM calls"),
	                 9);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM pg_constraint WHERE "
	                                            "conname = 'uq_calls_call_sid' AND "
	                                            "conrelid = 'calls'::regclass"),
	                 1);
}

static void test_backfill_rerun_is_noop(void **state)
{
	struct bstate *st = *state;
	char path[PATH_MAX], *sql, *before, *after, *updated_before, *updated_after, *out = NULL;

	up_ok(st->schema);
	before = all_sids(st->schema);
	updated_before = ts_pg_query(st->schema, "SELECT string_agg(updated_at::text, ',' ORDER "
	                                         "BY id) FROM calls");

	/* The file itself, run again on the migrated table. */
	snprintf(path, sizeof path, "%s/002_backfill_call_sid.up.sql", mt_migrations_dir());
	sql = mt_read_file(path);
	ts_pg_exec(st->schema, sql);
	free(sql);
	after = all_sids(st->schema);
	assert_string_equal(after, before);
	free(after);

	/* And through migrate: back to 001 (values are kept), then up again. */
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "--to", "1", NULL), 0);
	free(out);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT max(version) FROM schema_migrations"),
	                 1);
	up_ok(st->schema);
	after = all_sids(st->schema);
	assert_string_equal(after, before);
	updated_after = ts_pg_query(st->schema, "SELECT string_agg(updated_at::text, ',' ORDER BY "
	                                        "id) FROM calls");
	assert_string_equal(updated_after, updated_before);
	free(after);
	free(before);
	free(updated_after);
	free(updated_before);
}

static void test_backfill_003_refuses_missing_call_sid(void **state)
{
	struct bstate *st = *state;
	char *out = NULL;

	/* 002 ran, then a legacy writer added a row without call_sid before 003. */
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "up", "--to", "2", NULL), 0);
	free(out);
	ts_pg_exec(st->schema, "INSERT INTO calls (conversation_id, driver_id) VALUES "
	                       "('conv-late', '5')");
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "up", NULL), 3);
	assert_non_null(strstr(out, "1 calls"));
	assert_non_null(strstr(out, "003_call_sid_constraints"));
	free(out);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT max(version) FROM schema_migrations"),
	                 2);

	/* Re-running 002 (down 1, up) fills it and lets 003 through. */
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "1", NULL), 0);
	free(out);
	up_ok(st->schema);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls WHERE call_sid "
	                                            "LIKE 'EL_5_%'"),
	                 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_backfill_null_driver_is_unknown, setup_legacy,
	                                    teardown_legacy),
	    cmocka_unit_test_setup_teardown(test_backfill_epoch_seconds_format, setup_legacy,
	                                    teardown_legacy),
	    cmocka_unit_test_setup_teardown(test_backfill_existing_call_sid_untouched, setup_legacy,
	                                    teardown_legacy),
	    cmocka_unit_test_setup_teardown(test_backfill_same_second_duplicates, setup_legacy,
	                                    teardown_legacy),
	    cmocka_unit_test_setup_teardown(test_backfill_rerun_is_noop, setup_legacy,
	                                    teardown_legacy),
	    cmocka_unit_test_setup_teardown(test_backfill_003_refuses_missing_call_sid,
	                                    setup_legacy, teardown_legacy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
