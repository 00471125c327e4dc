/* test_store_calls_helpers: the fixture and call helpers both store_calls tests share
 * (test_store_calls.c, test_store_calls_concurrency.c): a migrated schema and an open db per
 * test. */
#ifndef CALLPIPE_TEST_STORE_CALLS_HELPERS_H
#define CALLPIPE_TEST_STORE_CALLS_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "store_calls.h"
#include "tsupport.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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

#endif
