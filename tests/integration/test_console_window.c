/* test_console_window: migration 010's rolling per-driver rollup against the throwaway Postgres.
 * After inserts, status changes (through store_calls, as the workers write), a call whose status
 * changes after it left the window, an advance across thousands of calls, concurrent writers on
 * their own connections while the window advances, and a migration down and up (the backfill),
 * the rollup must equal the exact aggregation of calls since the cutoff; and
 * store_console_drivers_rolling must answer what the exact path answers over the same window.
 * The window is moved forward by shortening its span (console_driver_window_state.span), the
 * same as time passing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "store_calls.h"
#include "store_console.h"
#include "test_migrations_util.h"
#include "tsupport.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct wstate {
	char schema[64];
	struct db *db;
};

static int setup(void **state)
{
	struct wstate *st = calloc(1, sizeof *st);

	ts_pg_schema_new("cwin", true, st->schema, sizeof st->schema);
	st->db = ts_pg_db_open(st->schema);
	*state = st;
	return 0;
}

static int teardown(void **state)
{
	struct wstate *st = *state;

	db_close(st->db);
	ts_pg_schema_drop(st->schema);
	free(st);
	return 0;
}

/* The drivers whose rollup row differs from the exact aggregation of calls since the cutoff (a
 * driver missing on either side counts). */
static const char SQL_MISMATCH[] =
    "WITH s AS (SELECT cutoff FROM console_driver_window_state),"
    " e AS (SELECT driver_id, count(*) AS calls,"
    " count(*) FILTER (WHERE status = 'completed') AS completed,"
    " count(*) FILTER (WHERE status = 'failed') AS failed,"
    " count(*) FILTER (WHERE status = 'in_progress') AS in_progress,"
    " max(created_at) AS last FROM calls, s WHERE created_at >= s.cutoff"
    " AND driver_id IS NOT NULL GROUP BY driver_id)"
    " SELECT count(*) FROM e FULL JOIN console_driver_window w USING (driver_id)"
    " WHERE (e.calls, e.completed, e.failed, e.in_progress, e.last) IS DISTINCT FROM"
    " (w.calls, w.completed, w.failed, w.in_progress, w.last_call_at)";

static void assert_exact(const char *schema, long long min_drivers)
{
	assert_int_equal(ts_pg_query_ll(schema, SQL_MISMATCH), 0);
	assert_true(ts_pg_query_ll(schema, "SELECT count(*) FROM console_driver_window") >=
	            min_drivers);
}

static void insert(struct db *db, const char *sid, const char *driver)
{
	bool created = false;

	assert_int_equal(store_call_insert(db, sid, driver, "trip", &created), 0);
	assert_true(created);
}

static void test_inserts_and_status_changes(void **state)
{
	struct wstate *st = *state;
	bool changed;

	/* today's calls through the workers' statements, and older ones straight in SQL */
	insert(st->db, "EL_1", "d1");
	insert(st->db, "EL_2", "d1");
	insert(st->db, "EL_3", "d2");
	insert(st->db, "EL_4", "d3");
	ts_pg_exec(st->schema,
	           "INSERT INTO calls (call_sid, driver_id, trip_id, status, created_at)"
	           " VALUES ('EL_old', 'd1', 't', 'completed', now() - interval '31 days'),"
	           " ('EL_edge', 'd4', 't', 'failed', now() - interval '29 days'),"
	           " ('EL_none', NULL, 't', 'in_progress', now())");
	assert_exact(st->schema, 4);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT calls FROM console_driver_window"
	                                            " WHERE driver_id = 'd1'"),
	                 2);
	assert_int_equal(store_call_set_completed(st->db, "EL_1", NULL, "conv_1", &changed), 0);
	assert_true(changed);
	assert_int_equal(store_call_set_failed(st->db, "EL_3", "busy", &changed), 0);
	assert_true(changed);
	assert_int_equal(store_call_claim_dial(st->db, "EL_2", &changed), 0);
	assert_exact(st->schema, 4);
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT completed * 100 + in_progress"
	                                " FROM console_driver_window WHERE driver_id = 'd1'"),
	                 101);
	/* a call moved to another driver and one deleted */
	ts_pg_exec(st->schema, "UPDATE calls SET driver_id = 'd5' WHERE call_sid = 'EL_4'");
	ts_pg_exec(st->schema, "DELETE FROM calls WHERE call_sid = 'EL_edge'");
	assert_exact(st->schema, 3);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM console_driver_window"
	                                            " WHERE driver_id IN ('d3', 'd4')"),
	                 0);
	ts_pg_exec(st->schema, "TRUNCATE calls CASCADE");
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM console_driver_window"),
	                 0);
	insert(st->db, "EL_5", "d1");
	assert_exact(st->schema, 1);
}

static void test_status_change_after_leaving(void **state)
{
	struct wstate *st = *state;
	bool changed;

	ts_pg_exec(st->schema, "INSERT INTO calls (call_sid, driver_id, trip_id, created_at) VALUES"
	                       " ('EL_a', 'd1', 't', now() - interval '20 days'),"
	                       " ('EL_b', 'd1', 't', now() - interval '2 days'),"
	                       " ('EL_c', 'd2', 't', now() - interval '20 days')");
	assert_exact(st->schema, 2);
	/* ten days pass: EL_a and EL_c leave the window, d2 with them */
	ts_pg_exec(st->schema, "UPDATE console_driver_window_state SET span = interval '10 days'");
	ts_pg_exec(st->schema, "SELECT console_driver_window_advance()");
	assert_exact(st->schema, 1);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM console_driver_window"),
	                 1);
	/* the calls that left finish now: nothing changes in the window */
	assert_int_equal(store_call_set_completed(st->db, "EL_a", NULL, NULL, &changed), 0);
	assert_true(changed);
	assert_int_equal(store_call_set_failed(st->db, "EL_c", "busy", &changed), 0);
	assert_true(changed);
	assert_exact(st->schema, 1);
	assert_int_equal(ts_pg_query_ll(st->schema,
	                                "SELECT calls * 100 + in_progress FROM"
	                                " console_driver_window WHERE driver_id = 'd1'"),
	                 101);
}

/* 6,000 calls of 300 drivers over 30 days with every status, then the window shrinks to 7 days
 * in one advance, then in several. */
static void test_advance_many(void **state)
{
	struct wstate *st = *state;

	ts_pg_exec(st->schema,
	           "INSERT INTO calls (call_sid, driver_id, trip_id, status, created_at)"
	           " SELECT 'EL_m' || i, 'd' || (i % 300), 't', (ARRAY['in_progress', 'completed',"
	           " 'failed'])[1 + i % 3], now() - (i * interval '431 seconds')"
	           " FROM generate_series(1, 6000) AS i");
	assert_exact(st->schema, 300);
	ts_pg_exec(st->schema, "UPDATE console_driver_window_state SET span = interval '7 days'");
	ts_pg_exec(st->schema, "SELECT console_driver_window_advance()");
	assert_exact(st->schema, 300);
	assert_true(ts_pg_query_ll(st->schema, "SELECT sum(calls) FROM console_driver_window") <
	            1500);
	for (int h = 24 * 7 - 5; h > 0; h -= 37) {
		char q[160];

		snprintf(q, sizeof q,
		         "UPDATE console_driver_window_state SET span = interval '%d hours'", h);
		ts_pg_exec(st->schema, q);
		ts_pg_exec(st->schema, "SELECT console_driver_window_advance()");
		assert_exact(st->schema, 1);
	}
}

/* ---- writers on their own connections while the window advances ---- */

#define WRITERS 3
#define WRITES  400

struct writer {
	const char *schema;
	int n;
	atomic_int *running;
	int rc;
};

/* Inserts calls spread over the last 30 days (so the advancing cutoff passes through them) and
 * finishes earlier ones, through the workers' statements where they apply. */
static void *writer_run(void *arg)
{
	struct writer *w = arg;
	char err[256];
	struct db *db = db_open(ts_pg_url(), w->schema, err, sizeof err);

	w->rc = db != NULL && db_ok(db) ? 0 : -1;
	for (int i = 0; i < WRITES && w->rc == 0; i++) {
		char sid[32], prev[32], drv[16], age[16];
		const char *p[3] = {sid, drv, age};
		bool changed;

		snprintf(sid, sizeof sid, "EL_w%d_%d", w->n, i);
		snprintf(drv, sizeof drv, "d%d", (i * 7 + w->n) % 40);
		snprintf(age, sizeof age, "%d", (i * 7919 + w->n * 104729) % (30 * 86400));
		if (db_cmd(db,
		           "INSERT INTO calls (call_sid, driver_id, trip_id, created_at)"
		           " VALUES ($1, $2, 't', now() - make_interval(secs => $3::float8))",
		           3, p) != 0) {
			w->rc = -1;
			break;
		}
		if (i < 3)
			continue;
		snprintf(prev, sizeof prev, "EL_w%d_%d", w->n, i - 3);
		w->rc = i % 2 ? store_call_set_completed(db, prev, NULL, NULL, &changed)
		              : store_call_set_failed(db, prev, "no_answer", &changed);
	}
	db_close(db);
	atomic_fetch_sub(w->running, 1);
	return NULL;
}

static void test_concurrent_writers_and_advance(void **state)
{
	struct wstate *st = *state;
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	atomic_int running = WRITERS;
	int hours = 30 * 24, advances = 0;

	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.schema = st->schema, .n = i, .running = &running};
		assert_int_equal(pthread_create(&th[i], NULL, writer_run, &w[i]), 0);
	}
	while (atomic_load(&running) > 0 || advances < 5) {
		char q[160];

		hours = hours > 24 ? hours - 7 : hours;
		snprintf(q, sizeof q,
		         "UPDATE console_driver_window_state SET span = interval '%d hours'",
		         hours);
		ts_pg_exec(st->schema, q);
		assert_int_equal(store_console_window_advance(st->db, NULL), 0);
		advances++;
	}
	for (int i = 0; i < WRITERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].rc, 0);
	}
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM calls"),
	                 WRITERS * WRITES);
	assert_true(hours < 30 * 24 - 7 * 4); /* the cutoff moved while they wrote */
	assert_exact(st->schema, 1);
	assert_int_equal(store_console_window_advance(st->db, NULL), 0);
	assert_exact(st->schema, 1);
}

/* ---- the read: rolling path against the exact path over the same window ---- */

struct rows {
	char text[65536];
	size_t len;
};

static int collect(void *opaque, const struct store_console_driver *d)
{
	struct rows *r = opaque;
	int n = snprintf(
	    r->text + r->len, sizeof r->text - r->len,
	    "%s %lld %lld %lld %lld %d %.6f %d %.3f %s %s\n", d->driver_id, (long long)d->calls,
	    (long long)d->completed, (long long)d->failed, (long long)d->in_progress,
	    d->has_success_rate, d->has_success_rate ? d->success_rate : 0, d->has_median,
	    d->has_median ? d->median_duration_s : 0, d->last_call_at, d->failure_reasons);

	assert_true(n > 0 && (size_t)n < sizeof r->text - r->len);
	r->len += (size_t)n;
	return 0;
}

static void test_rolling_read_equals_exact(void **state)
{
	struct wstate *st = *state;
	static struct rows a, b;
	char since[STORE_CONSOLE_TS_LEN], until[STORE_CONSOLE_TS_LEN];
	int64_t ta = 0, tb = 0;

	ts_pg_exec(st->schema,
	           "INSERT INTO calls (call_sid, driver_id, trip_id, status, failure_reason,"
	           " call_start_time, call_end_time, created_at)"
	           " SELECT 'EL_r' || i, 'd' || (i % 23), 't', (ARRAY['in_progress', 'completed',"
	           " 'failed'])[1 + (i * i) % 3], CASE WHEN (i * i) % 3 = 2 THEN"
	           " (ARRAY['busy', 'no_answer'])[1 + i % 2] END, now() - (i * interval '1 hour'),"
	           " now() - (i * interval '1 hour') + (i % 17) * interval '10 seconds',"
	           " now() - (i * interval '1 hour') - interval '30 minutes'"
	           " FROM generate_series(1, 900) AS i");
	for (int sort = STORE_CONSOLE_SORT_CALLS; sort <= STORE_CONSOLE_SORT_DRIVER; sort++) {
		for (int asc = 0; asc < 2; asc++) {
			struct store_console_drivers_q q = {.sort = (enum store_console_sort)sort,
			                                    .ascending = asc,
			                                    .limit = 10,
			                                    .driver_id = ""};

			if (sort == STORE_CONSOLE_SORT_MEDIAN) {
				assert_int_not_equal(store_console_drivers_rolling(st->db, &q,
				                                                   collect, &a, &ta,
				                                                   since, until),
				                     0);
				continue;
			}
			a.len = b.len = 0;
			assert_int_equal(store_console_drivers_rolling(st->db, &q, collect, &a, &ta,
			                                               since, until),
			                 0);
			q.since = since;
			q.until = "2100-01-01T00:00:00Z"; /* since the cutoff, like the rollup */
			assert_int_equal(store_console_drivers(st->db, &q, collect, &b, &tb), 0);
			assert_int_equal(ta, 23);
			assert_int_equal(tb, 23);
			assert_true(a.len > 0);
			assert_string_equal(a.text, b.text);
		}
	}
	{
		struct store_console_drivers_q q = {.limit = 5, .driver_id = "d7"};

		a.len = 0;
		assert_int_equal(
		    store_console_drivers_rolling(st->db, &q, collect, &a, &ta, since, until), 0);
		assert_int_equal(ta, 1);
		assert_true(strncmp(a.text, "d7 ", 3) == 0);
	}
	/* an empty window still reports the window */
	ts_pg_exec(st->schema, "DELETE FROM calls");
	{
		struct store_console_drivers_q q = {.limit = 5, .driver_id = ""};

		a.len = 0;
		assert_int_equal(
		    store_console_drivers_rolling(st->db, &q, collect, &a, &ta, since, until), 0);
		assert_int_equal(ta, 0);
		assert_int_equal(a.len, 0);
		assert_int_equal(strlen(since), 24);
		assert_int_equal(strlen(until), 24);
	}
}

/* down then up: the up migration backfills the calls already there */
static void test_migrate_down_up_backfills(void **state)
{
	struct wstate *st = *state;
	char *out = NULL;

	ts_pg_exec(st->schema,
	           "INSERT INTO calls (call_sid, driver_id, trip_id, status, created_at)"
	           " SELECT 'EL_b' || i, 'd' || (i % 11), 't', 'completed',"
	           " now() - (i * interval '1 day') FROM generate_series(1, 60) AS i");
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "down", "--to", "8", NULL), 0);
	free(out);
	out = NULL;
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT count(*) FROM pg_tables WHERE tablename"
	                                            " = 'console_driver_window' AND schemaname ="
	                                            " current_schema()"),
	                 0);
	ts_pg_exec(st->schema,
	           "INSERT INTO calls (call_sid, driver_id, trip_id, status, created_at)"
	           " VALUES ('EL_x', 'd99', 't', 'failed', now())");
	assert_int_equal(mt_migrate(st->schema, NULL, &out, "up", NULL), 0);
	free(out);
	assert_exact(st->schema, 12);
	assert_int_equal(ts_pg_query_ll(st->schema, "SELECT sum(calls) FROM console_driver_window"),
	                 30);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_inserts_and_status_changes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_status_change_after_leaving, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_advance_many, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers_and_advance, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rolling_read_equals_exact, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate_down_up_backfills, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
