/* test_e2e_events: GET /events on the ingress's admin address, against the whole pipeline: a
 * subscriber gets exactly the committed lifecycle of a call in order (a rolled-back transaction
 * emits nothing), Last-Event-ID resumes within the ring and is refused outside it, a subscriber
 * that stops reading is dropped with resync while a fast one gets everything in time, 401
 * without the token, other schemas ignored, lines in several id ranges, a bulk load and a lost
 * LISTEN connection ending every stream with resync. */
#include "db.h"
#include "e2e.h"
#include "e2e_sim.h"
#include "e2e_sse.h"
#include "store_calls.h"
#include "store_transcriptions.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TURNS      6
#define BULK_STMTS 60   /* the slow-subscriber phase: statements ... */
#define BULK_LINES 100  /* ... of this many lines ... */
#define BULK_MSG   2000 /* ... of this many bytes each: 12 MB of events */
#define MAX_EVENTS 8192

struct ctx {
	struct e2e_fixture f;
	unsigned admin_port;
	char admin_env[64];
	char last_id[64]; /* an id seen by a stream, for the listener-loss phase */
};

static struct ctx *ctx_of(void **state)
{
	return *state;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens a stream, retrying while the listener is not up yet (503). */
static void open_stream(struct ctx *c, struct e2e_sse *sse, const char *last_id, int rcvbuf)
{
	long long deadline = now_ms() + 20000;

	for (;;) {
		e2e_sse_open(sse, c->admin_port, c->f.stack.token, last_id, rcvbuf);
		if (sse->status != 503 || now_ms() > deadline)
			break;
		e2e_sse_close(sse);
		ts_sleep_ms(200);
	}
	assert_int_equal(sse->status, 200);
}

/* The string field key of ev's data ("" when absent). */
static void data_str(const struct e2e_sse_event *ev, const char *key, char *out, size_t size)
{
	json_t *d = json_loads(ev->data, 0, NULL), *v;

	if (d == NULL)
		fail_msg("event data is not JSON: %s", ev->data);
	v = json_object_get(d, key);
	snprintf(out, size, "%s", json_is_string(v) ? json_string_value(v) : "");
	json_decref(d);
}

static long long data_int(const struct e2e_sse_event *ev, const char *key)
{
	json_t *d = json_loads(ev->data, 0, NULL);
	long long v = d != NULL ? json_integer_value(json_object_get(d, key)) : -1;

	json_decref(d);
	return v;
}

/* Id "<epoch>-<n>": n. */
static unsigned long long id_n(const char *id)
{
	const char *dash = strchr(id, '-');

	if (dash == NULL)
		fail_msg("bad event id '%s'", id);
	return strtoull(dash + 1, NULL, 10);
}

static int group_setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);
	const char *sim_args[] = {E2E_SIM_TURNS(TURNS), E2E_SIM_TURN_DELAY_MS("30"),
	                          E2E_SIM_SEED("17"), NULL};
	const char *ingress_env[] = {c != NULL ? c->admin_env : NULL, "INGRESS_EVENTS_QUEUE=2048",
	                             "INGRESS_EVENTS_QUEUE_BYTES=4194304",
	                             "INGRESS_EVENTS_PING_MS=1000", NULL};
	const struct e2e_opts opts = {
	    .name = "e2e_events",
	    .sim_args = sim_args,
	    .worker_env = e2e_worker_env_fast,
	    .ingress_env = ingress_env,
	};

	if (c == NULL)
		return -1;
	c->admin_port = ts_free_port();
	snprintf(c->admin_env, sizeof c->admin_env, "INGRESS_ADMIN_LISTEN=127.0.0.1:%u",
	         c->admin_port);
	e2e_stack_start(&c->f.stack, &opts);
	*state = c;
	return 0;
}

static int group_teardown(void **state)
{
	struct ctx *c = *state;

	if (c == NULL)
		return 0;
	e2e_stack_abort(&c->f.stack); /* after a failure: keeps the logs and the schema */
	free(c);
	return 0;
}

static void test_events_auth(void **state)
{
	struct ctx *c = ctx_of(state);
	struct e2e_sse sse;

	e2e_sse_open(&sse, c->admin_port, NULL, NULL, 0);
	assert_int_equal(sse.status, 401);
	e2e_sse_close(&sse);
	e2e_sse_open(&sse, c->admin_port, "not-the-token-0123456789", NULL, 0);
	assert_int_equal(sse.status, 401);
	e2e_sse_close(&sse);
}

/* Writes a call, its conversation and a line in one transaction, then rolls it back. */
static void rolled_back_call(const struct ctx *c)
{
	struct db *db = ts_pg_db_open(c->f.stack.schema);
	bool created = false, changed = false, inserted = false;

	assert_int_equal(db_begin(db), 0);
	assert_int_equal(store_call_insert(db, "EL_rolled_back", "rb", "rb", &created), 0);
	assert_int_equal(store_call_set_conversation(db, "EL_rolled_back", "conv_rb", &changed), 0);
	assert_int_equal(
	    store_transcription_append(db, "conv_rb", "agent", "never", "rb-1", &inserted), 0);
	assert_true(created && changed && inserted);
	db_rollback(db);
	db_close(db);
}

/* Reads sse until an event of type for call_sid (or timeout), keeping every event in evs. */
static int read_until(struct e2e_sse *sse, struct e2e_sse_event *evs, int n, const char *type,
                      const char *call_sid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (n < MAX_EVENTS && now_ms() < deadline) {
		char sid[256];
		int r = e2e_sse_next(sse, &evs[n], 1000);

		if (r < 0)
			fail_msg("the stream ended after %d events", n);
		if (r == 0)
			continue;
		data_str(&evs[n], "call_sid", sid, sizeof sid);
		n++;
		if (strcmp(evs[n - 1].type, type) == 0 && strcmp(sid, call_sid) == 0)
			return n;
	}
	fail_msg("no %s for %s within %d ms (%d events read)", type, call_sid, timeout_ms, n);
	return n;
}

static void test_events_call_lifecycle(void **state)
{
	struct ctx *c = ctx_of(state);
	struct e2e_stack *s = &c->f.stack;
	const struct e2e_expect exp = {.turns = TURNS, .timeout_ms = 60000};
	struct e2e_sse_event *evs = calloc(MAX_EVENTS, sizeof *evs), ev;
	struct e2e_sse a, b;
	struct e2e_summary sum;
	struct e2e_run run;
	char sid[256], sql[512], *want, got[8192] = "";
	int n, k = 0;

	assert_non_null(evs);
	open_stream(c, &a, NULL, 0);
	rolled_back_call(c);
	e2e_post_calls(s, &run, "EV", 1, 1, 0);
	e2e_check_final(s, &run, &exp, &sum);
	assert_int_equal(sum.completed, 1);
	n = read_until(&a, evs, 0, "call.completed", run.sids[0], 30000);

	/* exactly the committed lifecycle, in order, each event once (ids consecutive), nothing
	 * of the rolled-back transaction */
	for (int i = 0; i < n; i++) {
		assert_null(strstr(evs[i].data, "rolled_back"));
		assert_null(strstr(evs[i].data, "conv_rb"));
		if (i > 0)
			assert_int_equal(id_n(evs[i].id), id_n(evs[i - 1].id) + 1);
		data_str(&evs[i], "call_sid", sid, sizeof sid);
		assert_string_equal(sid, run.sids[0]);
	}
	assert_int_equal(n, 3 + TURNS);
	assert_string_equal(evs[0].type, "call.created");
	data_str(&evs[0], "status", sid, sizeof sid);
	assert_string_equal(sid, "in_progress");
	assert_string_equal(evs[1].type, "call.dialled");
	data_str(&evs[1], "conversation_id", sid, sizeof sid);
	snprintf(sql, sizeof sql, "SELECT conversation_id FROM calls WHERE call_sid = '%s'",
	         run.sids[0]);
	want = ts_pg_query(s->schema, sql);
	assert_string_equal(sid, want);
	free(want);
	/* the lines as stored, in sequence */
	for (int i = 2; i < 2 + TURNS; i++) {
		char speaker[32], message[1024];

		assert_string_equal(evs[i].type, "line.stored");
		assert_int_equal(data_int(&evs[i], "sequence_number"), i - 1);
		data_str(&evs[i], "speaker", speaker, sizeof speaker);
		data_str(&evs[i], "message", message, sizeof message);
		k += snprintf(got + k, sizeof got - (size_t)k, "%s%s:%s", i > 2 ? "|" : "", speaker,
		              message);
	}
	snprintf(sql, sizeof sql,
	         "SELECT string_agg(t.speaker || ':' || t.message, '|' ORDER BY t.sequence_number) "
	         "FROM call_transcriptions t JOIN calls c ON c.conversation_id = t.conversation_id "
	         "WHERE c.call_sid = '%s'",
	         run.sids[0]);
	want = ts_pg_query(s->schema, sql);
	assert_string_equal(got, want);
	free(want);
	assert_string_equal(evs[n - 1].type, "call.completed");
	data_str(&evs[n - 1], "status", sid, sizeof sid);
	assert_string_equal(sid, "completed");

	/* resume after the 2nd event: the same events from the 3rd on, same ids */
	open_stream(c, &b, evs[1].id, 0);
	for (int i = 2; i < n; i++) {
		assert_int_equal(e2e_sse_next(&b, &ev, 5000), 1);
		assert_string_equal(ev.id, evs[i].id);
		assert_string_equal(ev.type, evs[i].type);
		assert_string_equal(ev.data, evs[i].data);
		e2e_sse_event_clear(&ev);
	}
	e2e_sse_close(&b);
	/* an id the ring does not hold (another process's): resync cannot_resume, end */
	open_stream(c, &b, "1-1", 0);
	assert_int_equal(e2e_sse_next(&b, &ev, 5000), 1);
	assert_string_equal(ev.type, "resync");
	assert_string_equal(ev.data, "{\"reason\":\"cannot_resume\"}");
	assert_string_equal(ev.id, "");
	e2e_sse_event_clear(&ev);
	assert_int_equal(e2e_sse_next(&b, &ev, 5000), -1);
	e2e_sse_close(&b);
	/* the same over HTTP/1.1 (libcurl): chunked, and the chunked stream is ended properly */
	{
		char url[96], auth[128];
		const char *headers[] = {auth, "Last-Event-ID: 1-1", NULL};
		struct ts_http_resp resp;

		snprintf(url, sizeof url, "http://127.0.0.1:%u/events", c->admin_port);
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
		ts_http("GET", url, headers, NULL, 0, &resp);
		assert_int_equal(resp.status, 200);
		assert_non_null(strstr(resp.headers, "Transfer-Encoding: chunked"));
		assert_non_null(strstr(resp.headers, "Content-Type: text/event-stream"));
		assert_string_equal(resp.body,
		                    "event: resync\ndata: {\"reason\":\"cannot_resume\"}\n\n");
		ts_http_resp_free(&resp);
	}

	snprintf(c->last_id, sizeof c->last_id, "%s", evs[n - 1].id);
	for (int i = 0; i < n; i++)
		e2e_sse_event_clear(&evs[i]);
	free(evs);
	e2e_sse_close(&a);
	e2e_run_free(&run);
}

struct bulk {
	const char *schema;
	long long done_ms; /* when the last statement committed */
};

/* BULK_STMTS statements of BULK_LINES lines each, one after the other. The streams' queues
 * (2048 events, 4 MiB) leave the fast reader slack on a loaded machine; the slow one, which
 * reads nothing, overflows them long before the 12 MB are through. */
static void *bulk_insert(void *arg)
{
	struct bulk *b = arg;
	char sql[512];

	for (int k = 0; k < BULK_STMTS; k++) {
		snprintf(sql, sizeof sql,
		         "INSERT INTO call_transcriptions (conversation_id, speaker, message, "
		         "sequence_number) SELECT 'conv_bulk', 'agent', repeat('x', %d), g "
		         "FROM generate_series(%d, %d) g",
		         BULK_MSG, k * BULK_LINES + 1, (k + 1) * BULK_LINES);
		ts_pg_exec(b->schema, sql);
		ts_sleep_ms(10); /* about the transcriber's pace: a statement every ~10 ms */
	}
	b->done_ms = now_ms();
	return NULL;
}

static void test_events_slow_subscriber(void **state)
{
	struct ctx *c = ctx_of(state);
	const int total = BULK_STMTS * BULK_LINES;
	struct bulk bulk = {.schema = c->f.stack.schema};
	struct e2e_sse fast, slow;
	struct e2e_sse_event ev;
	long long last_ms = 0;
	int lines = 0, slow_lines = 0, r;
	unsigned long long prev = 0;
	pthread_t th;
	bool resync = false;

	open_stream(c, &fast, NULL, 0);
	open_stream(c, &slow, NULL, 4096);
	ts_pg_exec(c->f.stack.schema,
	           "INSERT INTO calls (call_sid, driver_id, call_start_time, conversation_id) "
	           "VALUES ('EL_bulk', 'bulk', now(), 'conv_bulk')");
	assert_int_equal(pthread_create(&th, NULL, bulk_insert, &bulk), 0);
	/* fast reads everything as it comes; slow reads nothing */
	while (lines < total && (r = e2e_sse_next(&fast, &ev, 30000)) == 1) {
		if (strcmp(ev.type, "resync") == 0)
			fail_msg("the fast subscriber got resync %s after %d lines", ev.data,
			         lines);
		if (prev != 0)
			assert_int_equal(id_n(ev.id), prev + 1);
		prev = id_n(ev.id);
		snprintf(c->last_id, sizeof c->last_id, "%s", ev.id);
		if (strcmp(ev.type, "line.stored") == 0) {
			lines++;
			assert_int_equal(data_int(&ev, "sequence_number"), lines);
			last_ms = now_ms();
		}
		e2e_sse_event_clear(&ev);
	}
	pthread_join(th, NULL);
	assert_int_equal(lines, total);
	/* the slow one did not hold the fast one back */
	print_message("events: fast subscriber got %d lines, the last %lld ms after its commit\n",
	              lines, last_ms - bulk.done_ms);
	assert_true(last_ms - bulk.done_ms < 10000); /* a stall would last the 45 s idle timeout */

	/* the slow one now reads: what fitted in the buffers, then resync slow_consumer, end */
	while ((r = e2e_sse_next(&slow, &ev, 10000)) == 1) {
		assert_false(resync); /* nothing after the resync */
		if (strcmp(ev.type, "line.stored") == 0)
			slow_lines++;
		if (strcmp(ev.type, "resync") == 0) {
			assert_string_equal(ev.data, "{\"reason\":\"slow_consumer\"}");
			resync = true;
		}
		e2e_sse_event_clear(&ev);
	}
	assert_int_equal(r, -1);
	assert_true(resync);
	print_message("events: slow subscriber got %d of %d lines before its resync\n", slow_lines,
	              total);
	assert_true(slow_lines < total);
	/* and /metrics counted it (the figures are exported once a second) */
	{
		const char *slow_only[] = {"slow_consumer", NULL};
		char admin[64];
		double dropped = -1;

		snprintf(admin, sizeof admin, "http://127.0.0.1:%u", c->admin_port);
		for (int i = 0; i < 50 && dropped < 1; i++) {
			dropped = e2e_metric(admin, "ingress_events_dropped_total", slow_only);
			if (dropped < 1)
				ts_sleep_ms(100);
		}
		assert_true(dropped >= 1);
	}
	e2e_sse_close(&slow);
	e2e_sse_close(&fast);
}

/* Another schema's changes are not ours; lines whose ids are not one run (another writer's
 * nextval in between) come as several ranges and are all read; a bulk load ends every stream. */
static void test_events_schemas_gaps_bulk(void **state)
{
	struct ctx *c = ctx_of(state);
	const char *schema = c->f.stack.schema;
	struct e2e_sse sse;
	struct e2e_sse_event ev;
	char other[64];

	open_stream(c, &sse, NULL, 0);
	ts_pg_schema_new("e2e_events_other", true, other, sizeof other);
	ts_pg_exec(other, "INSERT INTO calls (call_sid, driver_id, call_start_time) "
	                  "VALUES ('EL_other_schema', 'other', now())");
	ts_pg_schema_drop(other);
	ts_pg_exec(schema,
	           "INSERT INTO calls (call_sid, driver_id, call_start_time, conversation_id) "
	           "VALUES ('EL_gaps', 'gaps', now(), 'conv_gaps')");
	assert_int_equal(e2e_sse_next(&sse, &ev, 10000), 1);
	assert_string_equal(ev.type, "call.created"); /* ours: the other schema's never came */
	assert_non_null(strstr(ev.data, "\"EL_gaps\""));
	e2e_sse_event_clear(&ev);
	assert_int_equal(e2e_sse_next(&sse, &ev, 10000), 1);
	assert_string_equal(ev.type, "call.dialled");
	e2e_sse_event_clear(&ev);
	/* ids 900001, 900002 and 900005: two ranges in one notification */
	ts_pg_exec(schema,
	           "INSERT INTO call_transcriptions (id, conversation_id, speaker, message, "
	           "sequence_number) VALUES (900001, 'conv_gaps', 'agent', 'one', 1), "
	           "(900002, 'conv_gaps', 'user', 'two', 2), "
	           "(900005, 'conv_gaps', 'agent', 'three', 3)");
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(e2e_sse_next(&sse, &ev, 10000), 1);
		assert_string_equal(ev.type, "line.stored");
		assert_int_equal(data_int(&ev, "sequence_number"), i);
		e2e_sse_event_clear(&ev);
	}
	/* more than 1000 calls in one statement: resync bulk_change, then the end */
	ts_pg_exec(schema, "INSERT INTO calls (call_sid, driver_id, call_start_time) "
	                   "SELECT 'EL_bulk_' || k, 'bulk', now() FROM generate_series(1, 1001) k");
	assert_int_equal(e2e_sse_next(&sse, &ev, 10000), 1);
	assert_string_equal(ev.type, "resync");
	assert_string_equal(ev.data, "{\"reason\":\"bulk_change\"}");
	e2e_sse_event_clear(&ev);
	assert_int_equal(e2e_sse_next(&sse, &ev, 5000), -1);
	e2e_sse_close(&sse);
}

static void test_events_listener_lost(void **state)
{
	struct ctx *c = ctx_of(state);
	struct e2e_sse sse, again;
	struct e2e_sse_event ev;
	char sql[256];

	open_stream(c, &sse, NULL, 0);
	snprintf(sql, sizeof sql,
	         "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
	         "WHERE application_name = 'ingress-events-%ld'",
	         (long)c->f.stack.ingress.pid);
	assert_int_equal(ts_pg_query_ll(NULL, sql), 1);
	assert_int_equal(e2e_sse_next(&sse, &ev, 10000), 1);
	assert_string_equal(ev.type, "resync");
	assert_string_equal(ev.data, "{\"reason\":\"listener_lost\"}");
	e2e_sse_event_clear(&ev);
	assert_int_equal(e2e_sse_next(&sse, &ev, 5000), -1);
	e2e_sse_close(&sse);

	/* it listens again; an id from before the loss cannot resume (events may be missing) */
	open_stream(c, &again, NULL, 0);
	open_stream(c, &sse, c->last_id, 0);
	assert_int_equal(e2e_sse_next(&sse, &ev, 5000), 1);
	assert_string_equal(ev.data, "{\"reason\":\"cannot_resume\"}");
	e2e_sse_event_clear(&ev);
	e2e_sse_close(&sse);
	ts_pg_exec(c->f.stack.schema, "INSERT INTO calls (call_sid, driver_id, call_start_time) "
	                              "VALUES ('EL_after_loss', 'after', now())");
	assert_int_equal(e2e_sse_next(&again, &ev, 10000), 1);
	assert_string_equal(ev.type, "call.created");
	assert_non_null(strstr(ev.data, "EL_after_loss"));
	e2e_sse_event_clear(&ev);
	e2e_sse_close(&again);
}

/* Last: everything stops cleanly with streams having come and gone. */
static void test_events_stop(void **state)
{
	e2e_stack_stop(&ctx_of(state)->f.stack);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_events_auth),
	    cmocka_unit_test(test_events_call_lifecycle),
	    cmocka_unit_test(test_events_slow_subscriber),
	    cmocka_unit_test(test_events_schemas_gaps_bulk),
	    cmocka_unit_test(test_events_listener_lost),
	    cmocka_unit_test(test_events_stop),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
