/* test_ingress_console: the console's read APIs on the admin address against a real Postgres
 * schema (docs/console.md): GET /calls filters, line counts and keyset pages that neither repeat
 * nor skip a call while calls are inserted between pages; /stats/drivers and /stats/overview
 * figures against rows whose answers are known; empty windows; every bad parameter refused with
 * 400 naming it; the token; and none of it on the public address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "db.h"
#include "ingress_it.h"
#include "store_calls.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct env {
	char schema[64];
	struct ts_broker broker;
	struct it_ingress in;
	char admin[64];
};

/* Known rows, created at fixed times on 2026-01-10 (UTC):
 *   d1: EL_a 10:05 completed 60 s (4 lines), EL_b 10:20 completed 120 s, EL_c 11:10 completed
 *       300 s, EL_d 11:30 failed busy, EL_e 12:40 in_progress
 *   d2: EL_f 10:50 failed no_answer, EL_g 12:10 failed busy
 *   d3: EL_h 12:50 completed 30 s (trip T-h)
 * dial latencies (dialled_at - created_at): EL_a 1 s, EL_b 2 s, EL_c 3 s. */
static void seed(const char *schema)
{
	ts_pg_exec(schema,
	           "INSERT INTO calls (call_sid, conversation_id, driver_id, trip_id, status,"
	           " failure_reason, call_start_time, call_end_time, created_at, dialled_at) VALUES"
	           " ('EL_a', 'conv_a', 'd1', 'T-a', 'completed', NULL, '2026-01-10T10:05:00Z',"
	           "  '2026-01-10T10:06:00Z', '2026-01-10T10:05:00Z', '2026-01-10T10:05:01Z'),"
	           " ('EL_b', 'conv_b', 'd1', 'T-b', 'completed', NULL, '2026-01-10T10:20:00Z',"
	           "  '2026-01-10T10:22:00Z', '2026-01-10T10:20:00Z', '2026-01-10T10:20:02Z'),"
	           " ('EL_c', 'conv_c', 'd1', 'T-c', 'completed', NULL, '2026-01-10T11:10:00Z',"
	           "  '2026-01-10T11:15:00Z', '2026-01-10T11:10:00Z', '2026-01-10T11:10:03Z'),"
	           " ('EL_d', NULL, 'd1', 'T-d', 'failed', 'busy', NULL, '2026-01-10T11:30:01Z',"
	           "  '2026-01-10T11:30:00Z', NULL),"
	           " ('EL_e', NULL, 'd1', 'T-e', 'in_progress', NULL, NULL, NULL,"
	           "  '2026-01-10T12:40:00Z', NULL),"
	           " ('EL_f', NULL, 'd2', 'T-f', 'failed', 'no_answer', NULL, NULL,"
	           "  '2026-01-10T10:50:00Z', NULL),"
	           " ('EL_g', NULL, 'd2', 'T-g', 'failed', 'busy', NULL, NULL,"
	           "  '2026-01-10T12:10:00Z', NULL),"
	           " ('EL_h', 'conv_h', 'd3', 'T-h', 'completed', NULL, '2026-01-10T12:50:00Z',"
	           "  '2026-01-10T12:50:30Z', '2026-01-10T12:50:00Z', NULL)");
	ts_pg_exec(schema, "INSERT INTO call_transcriptions (conversation_id, speaker, message,"
	                   " sequence_number, created_at) VALUES"
	                   " ('conv_a', 'agent', 'one', 1, '2026-01-10T10:05:10Z'),"
	                   " ('conv_a', 'user', 'two', 2, '2026-01-10T10:05:20Z'),"
	                   " ('conv_a', 'agent', 'four', 4, '2026-01-10T10:05:30Z'),"
	                   " ('conv_a', 'user', 'three', 3, '2026-01-10T10:05:40.125Z')");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	char url[600], schema[100], admin[64];
	/* the rolling window's periodic advance every second (test_console_periodic_advance) */
	const char *extra[] = {url, schema, admin, "INGRESS_CONSOLE_ADVANCE_S=1", NULL};
	unsigned port = ts_free_port();

	ts_pg_schema_new("ingress_console", true, e->schema, sizeof e->schema);
	seed(e->schema);
	snprintf(url, sizeof url, "DATABASE_URL=%s", ts_pg_url());
	snprintf(schema, sizeof schema, "DB_SCHEMA=%s", e->schema);
	snprintf(admin, sizeof admin, "INGRESS_ADMIN_LISTEN=127.0.0.1:%u", port);
	snprintf(e->admin, sizeof e->admin, "http://127.0.0.1:%u", port);
	ts_broker_start(&e->broker, "", 1);
	it_ingress_start(&e->in, &e->broker, "", extra, true);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	int rc = it_ingress_stop(&e->in, 20000);

	ts_broker_stop(&e->broker);
	ts_pg_schema_drop(e->schema);
	free(e);
	assert_int_equal(rc, 0);
	return 0;
}

/* GET the admin address's path with the token; the parsed body when the status is want. */
static json_t *get(const struct env *e, const char *path, long want)
{
	const char *headers[] = {IT_AUTH, NULL};
	struct ts_http_resp resp;
	char url[1200];
	json_t *root;

	snprintf(url, sizeof url, "%s%s", e->admin, path);
	ts_http("GET", url, headers, NULL, 0, &resp);
	if (resp.status != want)
		fail_msg("GET %s: %ld %s (want %ld)", path, resp.status, resp.body, want);
	root = json_loads(resp.body, 0, NULL);
	ts_http_resp_free(&resp);
	if (root == NULL)
		fail_msg("GET %s: not JSON", path);
	return root;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static long long num(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* The call_sids of a /calls answer, comma-separated, into out. */
static void sids(const json_t *root, char *out, size_t size)
{
	json_t *calls = json_object_get(root, "calls"), *c;
	size_t i;

	out[0] = '\0';
	json_array_foreach(calls, i, c)
	{
		size_t n = strlen(out);

		snprintf(out + n, size - n, "%s%s", i ? "," : "", str(c, "call_sid"));
	}
}

static void expect_sids(const struct env *e, const char *path, const char *want)
{
	json_t *root = get(e, path, 200);
	char got[2048];

	sids(root, got, sizeof got);
	if (strcmp(got, want) != 0)
		fail_msg("GET %s: %s, want %s", path, got, want);
	json_decref(root);
}

static void test_console_calls_filters(void **state)
{
	struct env *e = *state;
	json_t *root, *a;

	/* newest first; each filter on its own and together */
	expect_sids(e, "/calls", "EL_h,EL_e,EL_g,EL_d,EL_c,EL_f,EL_b,EL_a");
	expect_sids(e, "/calls?status=failed", "EL_g,EL_d,EL_f");
	expect_sids(e, "/calls?status=in_progress", "EL_e");
	expect_sids(e, "/calls?driver_id=d1", "EL_e,EL_d,EL_c,EL_b,EL_a");
	expect_sids(e, "/calls?driver_id=d1&status=completed", "EL_c,EL_b,EL_a");
	expect_sids(e, "/calls?trip_id=T-h", "EL_h");
	expect_sids(e, "/calls?driver_id=nobody", "");
	/* since inclusive, until exclusive; an offset is accepted */
	expect_sids(e, "/calls?since=2026-01-10T10:50:00Z&until=2026-01-10T12:10:00Z",
	            "EL_d,EL_c,EL_f");
	expect_sids(e, "/calls?since=2026-01-10T11:50:00%2B01:00&until=2026-01-10T12:10:00.001Z",
	            "EL_g,EL_d,EL_c,EL_f");
	/* the item: the call row, its line count and last line time */
	root = get(e, "/calls?trip_id=T-a", 200);
	a = json_array_get(json_object_get(root, "calls"), 0);
	assert_string_equal(str(a, "call_sid"), "EL_a");
	assert_string_equal(str(a, "conversation_id"), "conv_a");
	assert_string_equal(str(a, "driver_id"), "d1");
	assert_string_equal(str(a, "status"), "completed");
	assert_string_equal(str(a, "created_at"), "2026-01-10T10:05:00.000Z");
	assert_string_equal(str(a, "call_end_time"), "2026-01-10T10:06:00.000Z");
	assert_int_equal(num(a, "line_count"), 4);
	assert_string_equal(str(a, "last_line_at"), "2026-01-10T10:05:40.125Z");
	assert_true(json_is_null(json_object_get(root, "next_cursor")));
	json_decref(root);
	root = get(e, "/calls?trip_id=T-d", 200);
	a = json_array_get(json_object_get(root, "calls"), 0);
	assert_int_equal(num(a, "line_count"), 0);
	assert_true(json_is_null(json_object_get(a, "last_line_at")));
	assert_string_equal(str(a, "failure_reason"), "busy");
	json_decref(root);
	/* GET /calls/{call_sid} is served here too */
	root = get(e, "/calls/EL_a", 200);
	assert_int_equal(json_array_size(json_object_get(root, "transcript")), 4);
	json_decref(root);
	json_decref(get(e, "/calls/EL_nope", 404));
}

/* Keyset pages of 3 over calls while newer and older calls are inserted between the pages:
 * every call present at the start is seen exactly once, and no call twice. */
static void test_console_pages_while_inserting(void **state)
{
	struct env *e = *state;
	char path[600], cursor[128] = "", seen[8192] = ",";
	int pages = 0, count = 0;

	ts_pg_exec(e->schema, "INSERT INTO calls (call_sid, driver_id, status, created_at)"
	                      " SELECT 'EL_p' || g, 'dp', 'in_progress',"
	                      " '2026-01-09T00:00:00Z'::timestamptz + g * interval '1 minute'"
	                      " FROM generate_series(1, 20) g");
	/* two more with the same created_at: the id orders them */
	ts_pg_exec(e->schema, "INSERT INTO calls (call_sid, driver_id, status, created_at) VALUES"
	                      " ('EL_p_tie1', 'dp', 'in_progress', '2026-01-09T00:10:00Z'),"
	                      " ('EL_p_tie2', 'dp', 'in_progress', '2026-01-09T00:10:00Z')");
	for (;;) {
		json_t *root, *c, *next;
		size_t i;

		snprintf(path, sizeof path, "/calls?driver_id=dp&limit=3%s%s",
		         cursor[0] ? "&cursor=" : "", cursor);
		root = get(e, path, 200);
		json_array_foreach(json_object_get(root, "calls"), i, c)
		{
			char key[80];

			snprintf(key, sizeof key, ",%s,", str(c, "call_sid"));
			if (strstr(seen, key) != NULL)
				fail_msg("%s seen twice (page %d)", str(c, "call_sid"), pages);
			strcat(seen, key + 1);
			count++;
		}
		next = json_object_get(root, "next_cursor");
		pages++;
		/* new calls arrive: newer than every page (now), and one older than them all */
		ts_pg_exec(e->schema,
		           "INSERT INTO calls (call_sid, driver_id, status)"
		           " SELECT 'EL_new' || nextval('calls_id_seq'), 'dp', 'in_progress'");
		if (pages == 3)
			ts_pg_exec(e->schema,
			           "INSERT INTO calls (call_sid, driver_id, status, created_at)"
			           " VALUES ('EL_p_old', 'dp', 'in_progress',"
			           " '2026-01-08T00:00:00Z')");
		if (json_is_null(next)) {
			json_decref(root);
			break;
		}
		snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
		json_decref(root);
		assert_true(pages < 50);
	}
	for (int g = 1; g <= 20; g++) {
		char key[32];

		snprintf(key, sizeof key, ",EL_p%d,", g);
		if (strstr(seen, key) == NULL)
			fail_msg("EL_p%d skipped", g);
	}
	assert_non_null(strstr(seen, ",EL_p_tie1,"));
	assert_non_null(strstr(seen, ",EL_p_tie2,"));
	/* inserted behind the cursor before the walk got there: it is on a later page */
	assert_non_null(strstr(seen, ",EL_p_old,"));
	assert_null(strstr(seen, ",EL_new"));
	assert_int_equal(count, 23);
	ts_pg_exec(e->schema, "DELETE FROM calls WHERE driver_id = 'dp'");
}

static const json_t *driver(const json_t *root, const char *id)
{
	json_t *list = json_object_get(root, "drivers");

	for (size_t i = 0; i < json_array_size(list); i++)
		if (strcmp(str(json_array_get(list, i), "driver_id"), id) == 0)
			return json_array_get(list, i);
	fail_msg("driver %s missing", id);
	return NULL;
}

#define WINDOW "since=2026-01-10T00:00:00Z&until=2026-01-11T00:00:00Z"

static void test_console_drivers(void **state)
{
	struct env *e = *state;
	json_t *root = get(e, "/stats/drivers?" WINDOW, 200);
	const json_t *d1, *d2, *d3;
	char got[200];

	assert_string_equal(str(root, "since"), "2026-01-10T00:00:00.000Z");
	assert_string_equal(str(root, "until"), "2026-01-11T00:00:00.000Z");
	assert_int_equal(num(root, "total_drivers"), 3);
	d1 = driver(root, "d1");
	assert_int_equal(num(d1, "calls"), 5);
	assert_int_equal(num(d1, "completed"), 3);
	assert_int_equal(num(d1, "failed"), 1);
	assert_int_equal(num(d1, "in_progress"), 1);
	assert_true(json_real_value(json_object_get(d1, "success_rate")) == 0.75);
	assert_true(json_real_value(json_object_get(d1, "median_duration_s")) == 120.0);
	assert_string_equal(str(d1, "last_call_at"), "2026-01-10T12:40:00.000Z");
	assert_int_equal(num(json_object_get(d1, "failure_reasons"), "busy"), 1);
	d2 = driver(root, "d2");
	assert_true(json_real_value(json_object_get(d2, "success_rate")) == 0.0);
	assert_true(json_is_null(json_object_get(d2, "median_duration_s")));
	assert_int_equal(num(json_object_get(d2, "failure_reasons"), "busy"), 1);
	assert_int_equal(num(json_object_get(d2, "failure_reasons"), "no_answer"), 1);
	d3 = driver(root, "d3");
	assert_true(json_real_value(json_object_get(d3, "success_rate")) == 1.0);
	assert_int_equal(json_object_size(json_object_get(d3, "failure_reasons")), 0);
	/* default sort: calls, most first */
	assert_string_equal(str(json_array_get(json_object_get(root, "drivers"), 0), "driver_id"),
	                    "d1");
	json_decref(root);
	/* the sorts, the order, the limit and the filter */
	static const char *const sorts[][2] = {
	    {"sort=success_rate&order=asc", "d2,d1,d3"},
	    {"sort=success_rate", "d3,d1,d2"},
	    {"sort=failed", "d2,d1,d3"},
	    {"sort=median_duration_s", "d1,d3,d2"},
	    {"sort=median_duration_s&order=asc", "d2,d3,d1"},
	    {"sort=last_call_at", "d3,d1,d2"},
	    {"sort=driver_id&order=desc", "d3,d2,d1"},
	    {"sort=in_progress&limit=1", "d1"},
	    {"driver_id=d2", "d2"},
	};
	for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
		char path[300];
		json_t *d;
		size_t k;

		snprintf(path, sizeof path, "/stats/drivers?" WINDOW "&%s", sorts[i][0]);
		root = get(e, path, 200);
		got[0] = '\0';
		json_array_foreach(json_object_get(root, "drivers"), k, d)
		{
			size_t n = strlen(got);

			snprintf(got + n, sizeof got - n, "%s%s", k ? "," : "",
			         str(d, "driver_id"));
		}
		if (strcmp(got, sorts[i][1]) != 0)
			fail_msg("%s: %s, want %s", sorts[i][0], got, sorts[i][1]);
		json_decref(root);
	}
	/* the median sort computes the medians its own way: the same values */
	root = get(e, "/stats/drivers?" WINDOW "&sort=median_duration_s", 200);
	assert_true(json_real_value(json_object_get(driver(root, "d1"), "median_duration_s")) ==
	            120.0);
	assert_true(json_real_value(json_object_get(driver(root, "d3"), "median_duration_s")) ==
	            30.0);
	assert_true(json_is_null(json_object_get(driver(root, "d2"), "median_duration_s")));
	assert_int_equal(num(driver(root, "d1"), "calls"), 5);
	assert_int_equal(num(root, "total_drivers"), 3);
	json_decref(root);
	root = get(e,
	           "/stats/drivers?since=2026-01-10T10:00:00Z&until=2026-01-10T10:30:00Z"
	           "&sort=median_duration_s",
	           200);
	assert_true(json_real_value(json_object_get(driver(root, "d1"), "median_duration_s")) ==
	            90.0);
	json_decref(root);
	/* a window that cuts d1's day: only its two morning calls */
	root = get(e, "/stats/drivers?since=2026-01-10T10:00:00Z&until=2026-01-10T10:30:00Z", 200);
	assert_int_equal(num(root, "total_drivers"), 1);
	assert_int_equal(num(driver(root, "d1"), "calls"), 2);
	assert_true(json_real_value(json_object_get(driver(root, "d1"), "median_duration_s")) ==
	            90.0);
	json_decref(root);
}

static void test_console_overview(void **state)
{
	struct env *e = *state;
	json_t *root =
	    get(e, "/stats/overview?since=2026-01-10T09:30:00Z&until=2026-01-10T13:00:00Z", 200);
	json_t *b = json_object_get(root, "buckets"), *r = json_object_get(root, "failure_reasons");
	json_t *lat = json_object_get(root, "dial_latency_ms");
	static const int want[][3] = {{0, 0, 0}, {0, 2, 1}, {0, 1, 1}, {1, 1, 1}};

	assert_string_equal(str(root, "bucket"), "hour");
	assert_int_equal(json_array_size(b), 4); /* 09:00 (zeros included) to 12:00 */
	assert_string_equal(str(json_array_get(b, 0), "start"), "2026-01-10T09:00:00.000Z");
	assert_string_equal(str(json_array_get(b, 3), "start"), "2026-01-10T12:00:00.000Z");
	for (size_t i = 0; i < 4; i++) {
		json_t *x = json_array_get(b, i);

		assert_int_equal(num(x, "in_progress"), want[i][0]);
		assert_int_equal(num(x, "completed"), want[i][1]);
		assert_int_equal(num(x, "failed"), want[i][2]);
	}
	assert_int_equal(json_array_size(r), 2);
	assert_string_equal(str(json_array_get(r, 0), "reason"), "busy");
	assert_int_equal(num(json_array_get(r, 0), "count"), 2);
	assert_string_equal(str(json_array_get(r, 1), "reason"), "no_answer");
	assert_int_equal(num(lat, "count"), 3);
	assert_true(json_real_value(json_object_get(lat, "p50")) == 2000.0);
	json_decref(root);
	root = get(
	    e, "/stats/overview?bucket=day&since=2026-01-09T00:00:00Z&until=2026-01-11T00:00:00Z",
	    200);
	assert_int_equal(json_array_size(json_object_get(root, "buckets")), 2);
	assert_int_equal(num(json_array_get(json_object_get(root, "buckets"), 1), "completed"), 4);
	json_decref(root);
}

/* The rolling 30-day window (no since/until, or the page's since/until computed from now) is
 * answered from migration 010's rollup and says so; any other window and the median sort are
 * exact. Only calls of the last 30 days are in the rollup (the seed is older). */
static void test_console_drivers_rolling_source(void **state)
{
	struct env *e = *state;
	char q[200], since[32], until[32];
	time_t now = time(NULL), from = now - 30 * 86400;
	json_t *root;

	ts_pg_exec(e->schema, "INSERT INTO calls (call_sid, driver_id, trip_id, status, created_at)"
	                      " VALUES ('EL_now1', 'dnow', 'T-n1', 'completed', now()),"
	                      " ('EL_now2', 'dnow', 'T-n2', 'failed', now() - interval '1 day')");
	strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", gmtime(&from));
	snprintf(q, sizeof q, "/stats/drivers?since=%s&until=%s&sort=failed", since, until);
	for (int i = 0; i < 2; i++) {
		root = get(e, i == 0 ? "/stats/drivers" : q, 200);
		assert_string_equal(str(root, "source"), "rollup");
		assert_int_equal(num(root, "total_drivers"), 1);
		assert_string_equal(
		    str(json_array_get(json_object_get(root, "drivers"), 0), "driver_id"), "dnow");
		assert_int_equal(num(json_array_get(json_object_get(root, "drivers"), 0), "failed"),
		                 1);
		json_decref(root);
	}
	root = get(e, "/stats/drivers?limit=200", 200); /* the largest page */
	assert_string_equal(str(root, "source"), "rollup");
	assert_int_equal(num(root, "total_drivers"), 1);
	json_decref(root);
	root = get(e, "/stats/drivers?sort=median_duration_s", 200);
	assert_string_equal(str(root, "source"), "exact");
	assert_int_equal(num(root, "total_drivers"), 1);
	json_decref(root);
	root = get(e, "/stats/drivers?since=2026-01-10T00:00:00Z&until=2026-01-11T00:00:00Z", 200);
	assert_string_equal(str(root, "source"), "exact");
	assert_int_equal(num(root, "total_drivers"), 3);
	json_decref(root);
	ts_pg_exec(e->schema, "DELETE FROM calls WHERE driver_id = 'dnow'");
}

static void test_console_empty_windows(void **state)
{
	struct env *e = *state;
	json_t *root;

	root = get(e, "/calls?since=2026-01-10T10:05:00Z&until=2026-01-10T10:05:00Z", 200);
	assert_int_equal(json_array_size(json_object_get(root, "calls")), 0);
	assert_true(json_is_null(json_object_get(root, "next_cursor")));
	json_decref(root);
	root = get(e, "/stats/drivers?since=2030-01-01T00:00:00Z&until=2030-02-01T00:00:00Z", 200);
	assert_int_equal(json_array_size(json_object_get(root, "drivers")), 0);
	assert_int_equal(num(root, "total_drivers"), 0);
	json_decref(root);
	root = get(e, "/stats/overview?since=2030-01-01T00:00:00Z&until=2030-01-01T03:00:00Z", 200);
	assert_int_equal(json_array_size(json_object_get(root, "buckets")), 3);
	assert_int_equal(num(json_array_get(json_object_get(root, "buckets"), 2), "completed"), 0);
	assert_int_equal(json_array_size(json_object_get(root, "failure_reasons")), 0);
	assert_int_equal(num(json_object_get(root, "dial_latency_ms"), "count"), 0);
	assert_true(json_is_null(json_object_get(json_object_get(root, "dial_latency_ms"), "p99")));
	json_decref(root);
	root = get(e, "/stats/overview?since=2030-01-01T00:00:00Z&until=2030-01-01T00:00:00Z", 200);
	assert_int_equal(json_array_size(json_object_get(root, "buckets")), 0);
	json_decref(root);
}

static void test_console_bad_parameters(void **state)
{
	struct env *e = *state;
	static const char *const bad[][2] = {
	    {"/calls?status=done", "status"},
	    {"/calls?limit=0", "limit"},
	    {"/calls?limit=201", "limit"},
	    {"/calls?limit=12abc", "limit"},
	    {"/calls?limit=-1", "limit"},
	    {"/calls?since=yesterday", "since"},
	    {"/calls?since=2026-01-10T10:05:00", "since"},
	    {"/calls?until=2026-02-30T00:00:00Z", "until"},
	    {"/calls?until=2026-01-10T24:00:00Z", "until"},
	    {"/calls?since=2026-01-11T00:00:00Z&until=2026-01-10T00:00:00Z", "since"},
	    {"/calls?cursor=bm9wZQ", "cursor"},
	    {"/calls?cursor=%25%25%25", "cursor"},
	    {"/calls?driver=d1", "driver"},
	    {"/calls?status=failed&status=completed", "status"},
	    {"/stats/drivers?sort=speed", "sort"},
	    {"/stats/drivers?order=up", "order"},
	    {"/stats/drivers?limit=201", "limit"},
	    {"/stats/drivers?until=2026-13-01T00:00:00Z", "until"},
	    {"/stats/drivers?since=2026-01-11T00:00:00Z&until=2026-01-10T00:00:00Z", "since"},
	    {"/stats/overview?bucket=week", "bucket"},
	    {"/stats/overview?since=2025-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "bucket"},
	    {"/stats/overview?since=x", "since"},
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		json_t *root = get(e, bad[i][0], 400);

		if (strcmp(str(root, "field"), bad[i][1]) != 0 ||
		    strstr(str(root, "error"), bad[i][1]) == NULL)
			fail_msg("GET %s: field %s, error '%s' (want %s)", bad[i][0],
			         str(root, "field"), str(root, "error"), bad[i][1]);
		json_decref(root);
	}
}

static void test_console_auth_and_public_address(void **state)
{
	struct env *e = *state;
	static const char *const paths[] = {"/calls", "/stats/drivers", "/stats/overview",
	                                    "/calls/EL_a"};
	const char *wrong[] = {"Authorization: Bearer it-token-0123456789abcdeX", NULL};
	const char *right[] = {IT_AUTH, NULL};

	for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
		struct ts_http_resp resp;
		char url[200], www[32];
		json_t *body;

		snprintf(url, sizeof url, "%s%s", e->admin, paths[i]);
		ts_http("GET", url, NULL, NULL, 0, &resp);
		assert_int_equal(resp.status, 401);
		assert_true(it_header(resp.headers, "WWW-Authenticate", www, sizeof www));
		assert_string_equal(www, "Bearer");
		body = json_loads(resp.body, 0, NULL);
		assert_non_null(body);
		assert_string_equal(str(body, "error"), "unauthorized");
		json_decref(body);
		ts_http_resp_free(&resp);
		ts_http("GET", url, wrong, NULL, 0, &resp);
		assert_int_equal(resp.status, 401);
		ts_http_resp_free(&resp);
		/* the public address: the list and statistics are not there */
		if (i < 3) {
			ts_http("GET", it_url(&e->in, paths[i]), right, NULL, 0, &resp);
			assert_int_equal(resp.status, 404);
			ts_http_resp_free(&resp);
		}
	}
}

/* The writers' statements stamp calls.dialled_at when they store the conversation_id (the dial's
 * answer, or a post-call filling it), which is what the overview's dial latency measures. */
static void test_console_dial_latency_written(void **state)
{
	struct env *e = *state;
	struct db *db = ts_pg_db_open(e->schema);
	bool changed = false;
	json_t *root;

	ts_pg_exec(e->schema, "INSERT INTO calls (call_sid, driver_id, status, created_at) VALUES"
	                      " ('EL_lat1', 'dl', 'in_progress', now() - interval '3 s'),"
	                      " ('EL_lat2', 'dl', 'in_progress', now() - interval '1 s')");
	assert_int_equal(store_call_set_conversation(db, "EL_lat1", "conv_lat1", &changed), 0);
	assert_true(changed);
	assert_int_equal(store_call_set_completed(db, "EL_lat2", NULL, "conv_lat2", &changed), 0);
	assert_true(changed);
	/* a second store of the conversation changes nothing, dialled_at included */
	assert_int_equal(store_call_set_completed(db, "EL_lat1", NULL, "conv_other", &changed), 0);
	assert_int_equal(ts_pg_query_ll(e->schema, "SELECT count(*) FROM calls WHERE driver_id ="
	                                           " 'dl' AND dialled_at IS NOT NULL"),
	                 2);
	assert_int_equal(ts_pg_query_ll(e->schema, "SELECT (extract(epoch FROM dialled_at -"
	                                           " created_at) * 1000)::bigint / 1000 FROM calls"
	                                           " WHERE call_sid = 'EL_lat1'"),
	                 3);
	root = get(e, "/stats/overview", 200);
	assert_int_equal(num(json_object_get(root, "dial_latency_ms"), "count"), 2);
	assert_true(json_real_value(json_object_get(json_object_get(root, "dial_latency_ms"),
	                                            "p99")) >= 2900.0);
	json_decref(root);
	db_close(db);
	ts_pg_exec(e->schema, "DELETE FROM calls WHERE driver_id = 'dl'");
}

/* INGRESS_CONSOLE_ADVANCE_S=1: the ingress advances the rolling window by itself, with no
 * /stats read. The window is made 30 s long through 010's state row: a call created a minute ago
 * is counted by the insert's trigger, then leaves the rollup within about a second. */
static void test_console_periodic_advance(void **state)
{
	struct env *e = *state;
	long long left = -1;

	ts_pg_exec(e->schema, "INSERT INTO calls (call_sid, driver_id, trip_id, status, created_at)"
	                      " VALUES ('EL_adv', 'dadv', 'T-adv', 'in_progress',"
	                      " now() - interval '60 seconds')");
	assert_int_equal(ts_pg_query_ll(e->schema, "SELECT calls FROM console_driver_window"
	                                           " WHERE driver_id = 'dadv'"),
	                 1);
	ts_pg_exec(e->schema,
	           "UPDATE console_driver_window_state SET span = interval '30 seconds'");
	for (int i = 0; i < 50; i++) { /* 5 s at most */
		left = ts_pg_query_ll(e->schema, "SELECT count(*) FROM console_driver_window"
		                                 " WHERE driver_id = 'dadv'");
		if (left == 0)
			break;
		ts_sleep_ms(100);
	}
	assert_int_equal(left, 0);
	assert_int_equal(ts_pg_query_ll(e->schema,
	                                "SELECT count(*) FROM console_driver_window_state WHERE"
	                                " cutoff > now() - interval '40 seconds'"),
	                 1);
	/* back to the 30-day window, rebuilt as migration 010 does (its lock keeps the advance out)
	 */
	ts_pg_exec(e->schema,
	           "BEGIN; SELECT pg_advisory_xact_lock(1667528449);"
	           " UPDATE console_driver_window_state SET span = interval '30 days',"
	           " cutoff = now() - interval '30 days';"
	           " DELETE FROM console_driver_window;"
	           " INSERT INTO console_driver_window (driver_id, calls, completed, failed,"
	           " in_progress, last_call_at) SELECT driver_id, count(*),"
	           " count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status ="
	           " 'failed'), count(*) FILTER (WHERE status = 'in_progress'), max(created_at)"
	           " FROM calls WHERE created_at >= now() - interval '30 days' AND driver_id IS NOT"
	           " NULL GROUP BY driver_id; COMMIT");
	ts_pg_exec(e->schema, "DELETE FROM calls WHERE call_sid = 'EL_adv'");
	assert_int_equal(ts_pg_query_ll(e->schema, "SELECT count(*) FROM console_driver_window"
	                                           " WHERE driver_id = 'dadv'"),
	                 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_console_calls_filters),
	    cmocka_unit_test(test_console_pages_while_inserting),
	    cmocka_unit_test(test_console_drivers),
	    cmocka_unit_test(test_console_overview),
	    cmocka_unit_test(test_console_empty_windows),
	    cmocka_unit_test(test_console_drivers_rolling_source),
	    cmocka_unit_test(test_console_bad_parameters),
	    cmocka_unit_test(test_console_auth_and_public_address),
	    cmocka_unit_test(test_console_dial_latency_written),
	    cmocka_unit_test(test_console_periodic_advance),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
