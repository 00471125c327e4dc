/* e2e_check: the final state of a run, derived from what elevensim did (GET /sim/stats), checked
 * in Postgres, via GET /calls/{call_sid}, and on the dead-letter topics. */
#include "e2e.h"
#include "e2e_sim.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#define E2E_MAX_REPORT 12

/* Collected mismatch descriptions (the first E2E_MAX_REPORT are kept). */
struct e2e_report {
	int n;
	char text[E2E_MAX_REPORT * 300];
};

static void e2e_report(struct e2e_report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void e2e_report(struct e2e_report *r, const char *fmt, ...)
{
	size_t len = strlen(r->text);
	va_list ap;

	if (r->n++ >= E2E_MAX_REPORT || len + 2 >= sizeof r->text)
		return;
	r->text[len++] = '\n';
	r->text[len] = '\0';
	va_start(ap, fmt);
	vsnprintf(r->text + len, sizeof r->text - len, fmt, ap);
	va_end(ap);
}

/* Every call of the schema with its lines in sequence order, as one JSON object keyed by
 * call_sid (new reference). */
static json_t *e2e_db_calls(const struct e2e_stack *s)
{
	static const char sql[] =
	    "select coalesce(json_object_agg(c.call_sid, json_build_object("
	    " 'status', c.status, 'conversation_id', c.conversation_id,"
	    " 'failure_reason', c.failure_reason, 'call_end_time', c.call_end_time,"
	    " 'driver_id', c.driver_id, 'trip_id', c.trip_id,"
	    " 'lines', (select coalesce(json_agg(json_build_object('seq', t.sequence_number,"
	    "   'speaker', t.speaker, 'message', t.message) order by t.sequence_number), '[]')"
	    "   from call_transcriptions t where t.conversation_id = c.conversation_id))),"
	    " '{}')::text from calls c";
	char *text = ts_pg_query(s->schema, sql);
	json_error_t err;
	json_t *root = text ? json_loads(text, 0, &err) : NULL;

	if (!root)
		fail_msg("e2e: could not read the calls: %s", text ? err.text : "no result");
	free(text);
	return root;
}

static const char *e2e_str(json_t *obj, const char *key)
{
	const char *v = json_string_value(json_object_get(obj, key));
	return v ? v : "";
}

/* Compares one stored call (row, may be NULL) with what the sim did; reports differences. */
static void e2e_compare_call(const char *sid, json_t *row, const struct e2e_sim_call *sim,
                             const struct e2e_expect *exp, struct e2e_report *r)
{
	const char *status = e2e_str(row, "status");
	json_t *lines = json_object_get(row, "lines");
	char want[128];

	if (!row) {
		e2e_report(r, "%s: no row in calls", sid);
		return;
	}
	if (!sim || sim->requests == 0) {
		if (!exp->allow_lost_answers) {
			e2e_report(r, "%s: elevensim never received a dial for it", sid);
			return;
		}
		if (strcmp(status, "failed") != 0 ||
		    strcmp(e2e_str(row, "failure_reason"), "dial_outcome_unknown") != 0)
			e2e_report(
			    r, "%s: never dialled, expected failed/dial_outcome_unknown, is %s/%s",
			    sid, status, e2e_str(row, "failure_reason"));
		return;
	}
	if (sim->finals > 1 || sim->request_after_final)
		e2e_report(r, "%s: dialled again after a final answer (%d requests, %d final)", sid,
		           sim->requests, sim->finals);
	if (sim->outcome == E2E_SIM_OK) {
		size_t nlines = json_array_size(lines);

		if (strcmp(status, "completed") != 0)
			e2e_report(r, "%s: expected completed, is %s (%s), %zu lines", sid, status,
			           e2e_str(row, "failure_reason"), nlines);
		if (strcmp(e2e_str(row, "conversation_id"), sim->conversation_id) != 0)
			e2e_report(r, "%s: conversation_id %s, elevensim gave %s", sid,
			           e2e_str(row, "conversation_id"), sim->conversation_id);
		if (strcmp(status, "completed") == 0 && !*e2e_str(row, "call_end_time"))
			e2e_report(r, "%s: completed without call_end_time", sid);
		if ((int)nlines != exp->turns || (sim->nlines >= 0 && sim->nlines != exp->turns))
			e2e_report(r, "%s: %zu lines stored, elevensim played %d, expected %d", sid,
			           nlines, sim->nlines, exp->turns);
		for (size_t i = 0; i < nlines; i++) {
			json_t *l = json_array_get(lines, i);
			const char *want_speaker = i % 2 ? "user" : "agent";
			const char *want_message = NULL;

			if (sim->nlines >= 0) {
				want_speaker = (int)i < sim->nlines ? sim->speakers[i] : "(none)";
				want_message = (int)i < sim->nlines ? sim->messages[i] : "(none)";
			}
			if (json_integer_value(json_object_get(l, "seq")) != (json_int_t)i + 1 ||
			    strcmp(e2e_str(l, "speaker"), want_speaker) != 0 ||
			    (want_message && strcmp(e2e_str(l, "message"), want_message) != 0)) {
				e2e_report(r,
				           "%s: line %zu is #%lld %s \"%.80s\", expected #%zu %s "
				           "\"%.80s\"",
				           sid, i,
				           (long long)json_integer_value(json_object_get(l, "seq")),
				           e2e_str(l, "speaker"), e2e_str(l, "message"), i + 1,
				           want_speaker, want_message ? want_message : "*");
				break;
			}
		}
		return;
	}
	/* A refusal (or a 503 never retried) whose answer died with a killed dialer, or a 502/504
	 * that placed nothing (the dialer cannot know: outcome unknown): the sweeper settles it
	 * without dialling again. */
	if ((exp->allow_lost_answers || sim->last_answer == 502 || sim->last_answer == 504) &&
	    sim->outcome == E2E_SIM_API_ERROR && strcmp(status, "failed") == 0 &&
	    strcmp(e2e_str(row, "failure_reason"), "dial_outcome_unknown") == 0 &&
	    json_array_size(lines) == 0)
		return;
	/* API refusal or initiation failure: failed with the reason the API gave, no line. */
	if (sim->outcome == E2E_SIM_INITIATION_FAILURE)
		snprintf(want, sizeof want, "call_initiation_failure");
	else if (sim->last_answer == 200)
		snprintf(want, sizeof want, "%s", E2E_SIM_REFUSAL_MESSAGE);
	else
		snprintf(want, sizeof want, "HTTP %d", sim->last_answer);
	if (strcmp(status, "failed") != 0 || !strstr(e2e_str(row, "failure_reason"), want))
		e2e_report(
		    r, "%s: elevensim %s (last answer %d), expected failed with \"%s\", is %s (%s)",
		    sid, e2e_sim_outcome_str(sim->outcome), sim->last_answer, want, status,
		    e2e_str(row, "failure_reason"));
	if (json_array_size(lines) != 0)
		e2e_report(r, "%s: failed call has %zu lines", sid, json_array_size(lines));
}

/* Compares the whole run; returns the number of differences (details in r). */
static int e2e_compare(const struct e2e_stack *s, const struct e2e_run *run,
                       const struct e2e_expect *exp, struct e2e_sim *sim, struct e2e_report *r)
{
	json_t *db = e2e_db_calls(s);

	memset(r, 0, sizeof *r);
	if ((int)json_object_size(db) != run->nsids)
		e2e_report(r, "calls holds %zu rows for %d accepted call_sids",
		           json_object_size(db), run->nsids);
	for (int i = 0; i < run->nsids; i++)
		e2e_compare_call(run->sids[i], json_object_get(db, run->sids[i]),
		                 e2e_sim_find(sim, run->sids[i]), exp, r);
	json_decref(db);
	return r->n;
}

/* GET /calls/{call_sid} must show what the database holds. */
static void e2e_check_read_api(const struct e2e_stack *s, const struct e2e_run *run)
{
	json_t *db = e2e_db_calls(s);
	char auth[128];
	const char *headers[2] = {auth, NULL};
	struct e2e_report r = {0};

	snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
	for (int i = 0; i < run->nsids; i++) {
		const char *sid = run->sids[i];
		json_t *row = json_object_get(db, sid), *root, *call, *tr, *lines;
		struct ts_http_resp resp = {0};
		char url[512];

		snprintf(url, sizeof url, "%s/calls/%s", s->ingress_url, sid);
		ts_http("GET", url, headers, NULL, 0, &resp);
		root = resp.status == 200 && resp.body ? json_loads(resp.body, 0, NULL) : NULL;
		call = json_object_get(root, "call");
		tr = json_object_get(root, "transcript");
		lines = json_object_get(row, "lines");
		if (!root || !call || !json_is_array(tr)) {
			e2e_report(&r, "GET %s: %ld %.200s", url, resp.status,
			           resp.body ? resp.body : "");
		} else if (strcmp(e2e_str(call, "call_sid"), sid) != 0 ||
		           strcmp(e2e_str(call, "status"), e2e_str(row, "status")) != 0 ||
		           strcmp(e2e_str(call, "conversation_id"),
		                  e2e_str(row, "conversation_id")) != 0 ||
		           strcmp(e2e_str(call, "failure_reason"),
		                  e2e_str(row, "failure_reason")) != 0) {
			e2e_report(&r, "GET %s: call %.300s differs from the row", url, resp.body);
		} else if (json_array_size(tr) != json_array_size(lines)) {
			e2e_report(&r, "GET %s: %zu lines, the database has %zu", url,
			           json_array_size(tr), json_array_size(lines));
		} else {
			for (size_t k = 0; k < json_array_size(tr); k++) {
				json_t *a = json_array_get(tr, k), *b = json_array_get(lines, k);

				if (json_integer_value(json_object_get(a, "sequence_number")) !=
				        json_integer_value(json_object_get(b, "seq")) ||
				    strcmp(e2e_str(a, "speaker"), e2e_str(b, "speaker")) != 0 ||
				    strcmp(e2e_str(a, "message"), e2e_str(b, "message")) != 0) {
					e2e_report(&r, "GET %s: line %zu differs", url, k);
					break;
				}
			}
		}
		json_decref(root);
		ts_http_resp_free(&resp);
	}
	json_decref(db);
	if (r.n)
		fail_msg("e2e: GET /calls/{call_sid} disagrees with Postgres (%d):%s", r.n, r.text);
}

/* Reads a DLQ topic; returns how many messages it holds, and reports any for a call that is not
 * failed in the database. */
static int e2e_check_dlq(const struct e2e_stack *s, const char *base, json_t *db,
                         struct e2e_report *r)
{
	struct ts_kmsg *msgs = NULL;
	char topic[256];
	size_t n = ts_kafka_read_all(s->broker.bootstrap,
	                             ts_broker_topic(&s->broker, base, topic, sizeof topic), &msgs);

	for (size_t i = 0; i < n; i++) {
		const char *key = msgs[i].key ? msgs[i].key : "";
		json_t *row = json_object_get(db, key);

		if (row && strcmp(e2e_str(row, "status"), "failed") != 0)
			e2e_report(r, "%s holds a message (reason %s) for %s, which is %s", topic,
			           ts_kmsg_header(&msgs[i], "reason")
			               ? ts_kmsg_header(&msgs[i], "reason")
			               : "?",
			           key, e2e_str(row, "status"));
	}
	ts_kmsgs_free(msgs, n);
	return (int)n;
}

/* A late per-turn webhook for every failed call: each must be dead-lettered (reason call_failed)
 * and store nothing. */
static void e2e_check_failed_webhooks(const struct e2e_stack *s, json_t *db)
{
	const char *sid;
	json_t *row;
	char(*ids)[80] = calloc(json_object_size(db) + 1, sizeof *ids);
	int nids = 0, found = 0;
	long long before = e2e_count_rows(s, "call_transcriptions");
	struct e2e_report r = {0};
	char dlq[256];

	json_object_foreach(db, sid, row)
	{
		json_t *body;
		char *text;
		long status;

		if (strcmp(e2e_str(row, "status"), "failed") != 0)
			continue;
		body = json_pack("{s:s, s:s, s:s}", "call_sid", sid, "speaker", "user", "message",
		                 "hello? (after the call failed)");
		text = json_dumps(body, JSON_COMPACT);
		status = e2e_post_webhook(s, "transcription", text, ids[nids], sizeof ids[nids]);
		if (status != 200 || !ids[nids][0])
			fail_msg("e2e: late webhook for failed %s answered %ld", sid, status);
		nids++;
		free(text);
		json_decref(body);
	}
	ts_broker_topic(&s->broker, "webhooks.transcription.dlq", dlq, sizeof dlq);
	for (int tries = 0; tries < 200 && found < nids; tries++) {
		struct ts_kmsg *msgs = NULL;
		size_t n = ts_kafka_read_all(s->broker.bootstrap, dlq, &msgs);

		found = 0;
		memset(&r, 0, sizeof r);
		for (int k = 0; k < nids; k++) {
			bool hit = false;

			for (size_t i = 0; i < n && !hit; i++) {
				const char *reason = ts_kmsg_header(&msgs[i], "reason");

				if (!msgs[i].value || !strstr(msgs[i].value, ids[k]))
					continue;
				hit = true;
				if (!reason || strcmp(reason, "call_failed") != 0)
					e2e_report(&r,
					           "late webhook %s dead-lettered with reason %s",
					           ids[k], reason ? reason : "(none)");
			}
			found += hit;
		}
		ts_kmsgs_free(msgs, n);
		if (found < nids)
			ts_sleep_ms(100);
	}
	free(ids);
	if (found < nids)
		fail_msg("e2e: %d of %d webhooks for failed calls reached the DLQ", found, nids);
	if (r.n)
		fail_msg("e2e: webhooks of failed calls:%s", r.text);
	if (e2e_count_rows(s, "call_transcriptions") != before)
		fail_msg("e2e: webhooks of failed calls stored lines");
	print_message("e2e: %d late webhooks of failed calls dead-lettered (call_failed)\n", nids);
}

/* A dead-lettered call request never reaches its final state: fail at once, saying why. */
static void e2e_fail_on_dead_requests(const struct e2e_stack *s)
{
	struct ts_kmsg *msgs = NULL;
	char topic[256], first[512] = "";
	size_t n = ts_kafka_read_all(
	    s->broker.bootstrap,
	    ts_broker_topic(&s->broker, "calls.requested.dlq", topic, sizeof topic), &msgs);

	if (n) {
		snprintf(
		    first, sizeof first, "%s: reason %s, error %s", msgs[0].key ? msgs[0].key : "-",
		    ts_kmsg_header(&msgs[0], "reason") ? ts_kmsg_header(&msgs[0], "reason") : "?",
		    ts_kmsg_header(&msgs[0], "error") ? ts_kmsg_header(&msgs[0], "error") : "?");
	}
	ts_kmsgs_free(msgs, n);
	if (n) {
		e2e_stack_dump_logs(s, 5);
		fail_msg("e2e: %zu call requests were dead-lettered, e.g. %s", n, first);
	}
}

void e2e_check_final(const struct e2e_stack *s, const struct e2e_run *run,
                     const struct e2e_expect *exp, struct e2e_summary *sum)
{
	struct e2e_report r = {0};
	struct e2e_sim *sim = NULL;
	struct timespec t0, t1;
	json_t *db;
	int diffs = -1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int waited = 0; waited <= exp->timeout_ms; waited += 500) {
		e2e_sim_free(sim);
		sim = e2e_sim_stats(s, false);
		diffs = e2e_compare(s, run, exp, sim, &r);
		if (diffs == 0)
			break;
		if (waited % 5000 == 0)
			e2e_fail_on_dead_requests(s);
		ts_sleep_ms(500);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (diffs == 0) {
		/* Settled: now line by line against the transcripts elevensim played. */
		e2e_sim_free(sim);
		sim = e2e_sim_stats(s, true);
		diffs = e2e_compare(s, run, exp, sim, &r);
	}
	if (diffs) {
		e2e_stack_dump_logs(s, 12);
		e2e_sim_free(sim);
		fail_msg("e2e: final state not reached after %d ms, %d difference(s):%s",
		         exp->timeout_ms, diffs, r.text);
	}
	print_message("e2e: %d calls settled %.1f s after the check began\n", run->nsids,
	              (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);

	memset(sum, 0, sizeof *sum);
	for (int i = 0; i < run->nsids; i++) {
		const struct e2e_sim_call *c = e2e_sim_find(sim, run->sids[i]);

		if (c && c->conversation_id[0])
			sum->conversations++;
		if (c && strcmp(c->mode, "race") == 0)
			sum->raced++;
		if (c)
			sum->webhooks_given_up += c->webhooks_failed;
		if (!c || c->requests == 0)
			sum->failed_unknown++;
		else if (c->outcome == E2E_SIM_OK)
			sum->completed++;
		else if (c->outcome == E2E_SIM_INITIATION_FAILURE)
			sum->failed_init++;
		else
			sum->failed_api++;
	}
	/* Exactly one conversation per call that has one: nothing was placed twice. */
	if (e2e_sim_conversations(sim) != sum->conversations)
		fail_msg("e2e: elevensim placed %lld conversations for %d calls",
		         e2e_sim_conversations(sim), sum->conversations);
	e2e_sim_free(sim);
	sum->outcome_unknown = ts_pg_query_ll(
	    s->schema, "select count(*) from calls where failure_reason = 'dial_outcome_unknown'");
	sum->lines = e2e_count_rows(s, "call_transcriptions");
	if (sum->lines != (long long)sum->completed * exp->turns)
		fail_msg("e2e: %lld lines in the table, expected %d x %d", sum->lines,
		         sum->completed, exp->turns);

	e2e_check_read_api(s, run);

	db = e2e_db_calls(s);
	memset(&r, 0, sizeof r);
	sum->dlq_transcription = e2e_check_dlq(s, "webhooks.transcription.dlq", db, &r);
	sum->dlq_post_call = e2e_check_dlq(s, "webhooks.post_call.dlq", db, &r);
	sum->dlq_requested = e2e_check_dlq(s, "calls.requested.dlq", db, &r);
	if (r.n)
		fail_msg("e2e: dead letters for calls that did not fail (%d):%s", r.n, r.text);
	if (sum->dlq_requested)
		fail_msg("e2e: %d requests dead-lettered", sum->dlq_requested);
	e2e_check_failed_webhooks(s, db);
	json_decref(db);
	print_message(
	    "e2e: %d completed (%lld lines; %d raced the API answer), %d refused by the "
	    "API, %d initiation failures, %d never dialled, %lld settled as "
	    "dial_outcome_unknown; %d conversations; DLQ: %d transcription, %d post-call; "
	    "%d webhooks elevensim gave up on\n",
	    sum->completed, sum->lines, sum->raced, sum->failed_api, sum->failed_init,
	    sum->failed_unknown, sum->outcome_unknown, sum->conversations, sum->dlq_transcription,
	    sum->dlq_post_call, sum->webhooks_given_up);
}

long long e2e_count_rows(const struct e2e_stack *s, const char *table)
{
	char sql[128];

	snprintf(sql, sizeof sql, "select count(*) from %s", table);
	return ts_pg_query_ll(s->schema, sql);
}

char *e2e_db_snapshot(const struct e2e_stack *s)
{
	static const char sql[] =
	    "select coalesce(json_agg(json_build_array(c.call_sid, c.status, c.conversation_id,"
	    " c.failure_reason, c.call_end_time, (select coalesce(json_agg(json_build_array(t.id,"
	    " t.sequence_number, t.speaker, t.message, t.event_id) order by t.id), '[]')"
	    " from call_transcriptions t where t.conversation_id = c.conversation_id))"
	    " order by c.call_sid), '[]')::text from calls c";
	char *text = ts_pg_query(s->schema, sql);

	if (!text)
		fail_msg("e2e: snapshot query returned nothing");
	return text;
}

long long e2e_replay_inserted(const char *summary)
{
	const char *p = summary ? strstr(summary, "inserted") : NULL;

	if (!p)
		return -1;
	p += strlen("inserted");
	while (*p && strchr("\"':= \t", *p))
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	return strtoll(p, NULL, 10);
}
