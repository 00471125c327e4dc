/* test_transcriber_flow: the webhook rules (design.md §6) through the real transcriber binary on a
 * one-partition devbroker, so a waiting call shares its partition with the others: valid lines,
 * unknown call_sid, conversation_id set late, failed call, malformed values, a row the database
 * rejects, post-call completion with reconciliation, a post-call that heals the conversation_id
 * of parked lines, a post-call completing a call failed as dial_outcome_unknown, initiation
 * failures and ignored types. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transcriber_it.h"

#include "db.h"
#include "store_calls.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	struct trit t;
	struct trit_proc p;
};

static int setup(void **state)
{
	static struct fixture f;
	const char *const env[] = {"TRANSCRIBER_UNKNOWN_RETRY_MAX_MS=1500",
	                           "TRANSCRIBER_MISSING_CONVERSATION_WAIT_MS=8000",
	                           "TRANSCRIBER_POST_CALL_GATE_MS=3000",
	                           "TRANSCRIBER_RETRY_BASE_MS=50",
	                           "TRANSCRIBER_RETRY_MAX_MS=300",
	                           NULL};

	trit_setup(&f.t, "tr_flow", 1);
	trit_start(&f.t, &f.p, "transcriber", env);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	trit_stop(&f->p);
	trit_teardown(&f->t);
	return 0;
}

/* Dead-letters of base_topic whose key is key; asserts their reason. Returns the count. */
static size_t dlq_for(struct trit *t, const char *base, const char *key, const char *reason,
                      struct ts_kmsg **first)
{
	struct ts_kmsg *msgs;
	size_t n = trit_dlq(t, base, &msgs), found = 0;

	for (size_t i = 0; i < n; i++) {
		if (!msgs[i].key || strcmp(msgs[i].key, key) != 0)
			continue;
		if (reason && strcmp(ts_kmsg_header(&msgs[i], "reason"), reason) != 0)
			fail_msg("dead-letter of %s has reason %s, expected %s", key,
			         ts_kmsg_header(&msgs[i], "reason"), reason);
		if (found++ == 0 && first) {
			*first = malloc(sizeof **first);
			**first = msgs[i];
			memset(&msgs[i], 0, sizeof msgs[i]);
		}
	}
	ts_kmsgs_free(msgs, n);
	return found;
}

static size_t wait_dlq(struct trit *t, const char *base, const char *key, const char *reason,
                       size_t expect, int timeout_ms, struct ts_kmsg **first)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	size_t n;

	while ((n = dlq_for(t, base, key, reason, NULL)) < expect && time_mono_ms() < deadline)
		ts_sleep_ms(100);
	if (first && n > 0)
		dlq_for(t, base, key, reason, first);
	return n;
}

static void test_transcriber_flow_valid_lines(void **state)
{
	struct fixture *f = *state;

	/* ready before any message arrived (compose's healthcheck waits on it) */
	assert_int_equal(trit_wait_ready(&f->p, 10000), 200);
	trit_call(&f->t, "EL_valid", "conv_valid", NULL);
	trit_lines(&f->t, "EL_valid", "valid", 1, 3);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_valid'",
	                              3, 20000),
	                 3);
	trit_assert_lines(&f->t, "conv_valid", "valid", 3);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE "
	                                "event_id = 'EL_valid-ev-2' AND sequence_number = 2"),
	                 1);
}

/* ElevenLabs retries a webhook the ingress had published (same event ids, newer offsets): the
 * round that assumed new events meets the stored ones, is written again checking each event,
 * and the lines are stored once; the new line after them is appended. */
static void test_transcriber_flow_events_published_twice(void **state)
{
	struct fixture *f = *state;
	double dups = trit_metric(&f->p, "transcriber_duplicates_total");

	trit_call(&f->t, "EL_twice", "conv_twice", NULL);
	trit_lines(&f->t, "EL_twice", "twice", 1, 3);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_twice'",
	                              3, 20000),
	                 3);
	trit_lines(&f->t, "EL_twice", "twice", 1, 4);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "event_id = 'EL_twice-ev-4'",
	                              1, 20000),
	                 1);
	trit_assert_lines(&f->t, "conv_twice", "twice", 4);
	assert_true(trit_metric(&f->p, "transcriber_duplicates_total") >= dups + 3);
}

static void test_transcriber_flow_unknown_call_sid(void **state)
{
	struct fixture *f = *state;
	struct ts_kmsg *d;
	char topic[256];
	int64_t t0 = time_mono_ms();

	trit_lines(&f->t, "EL_unknown", "nobody", 1, 2);
	assert_int_equal(wait_dlq(&f->t, "webhooks.transcription", "EL_unknown", "unknown_call_sid",
	                          2, 15000, &d),
	                 2);
	/* bounded retries first: not before the 1.5 s window, and more than one attempt */
	assert_true(time_mono_ms() - t0 >= 1400);
	assert_true(atoi(ts_kmsg_header(d, "attempts")) >= 2);
	assert_string_equal(
	    ts_kmsg_header(d, "source_topic"),
	    ts_broker_topic(&f->t.broker, "webhooks.transcription", topic, sizeof topic));
	assert_string_equal(ts_kmsg_header(d, "source_partition"), "0");
	assert_non_null(ts_kmsg_header(d, "source_offset"));
	assert_non_null(strstr(ts_kmsg_header(d, "error"), "EL_unknown"));
	assert_non_null(strstr(d->value, "\"EL_unknown-ev-1\"")); /* the original value */
	assert_true(trit_metric(&f->p, "transcriber_retries_total{reason=\"unknown_call_sid\"}") >=
	            1);
	ts_kmsgs_free(d, 1);
}

static void test_transcriber_flow_conversation_set_late(void **state)
{
	struct fixture *f = *state;
	bool changed;

	trit_call(&f->t, "EL_late", NULL, NULL);
	trit_call(&f->t, "EL_other", "conv_other", NULL);
	/* the waiting call's lines come first in the (only) partition */
	trit_lines(&f->t, "EL_late", "late", 1, 5);
	trit_lines(&f->t, "EL_other", "other", 1, 3);
	/* the other call is not stalled behind the waiting one */
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_other'",
	                              3, 20000),
	                 3);
	ts_sleep_ms(300);
	assert_int_equal(store_call_set_conversation(f->t.db, "EL_late", "conv_late", &changed), 0);
	assert_true(changed);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_late'",
	                              5, 20000),
	                 5);
	trit_assert_lines(&f->t, "conv_late", "late", 5);
	assert_int_equal(dlq_for(&f->t, "webhooks.transcription", "EL_late", NULL, NULL), 0);
	assert_true(
	    trit_metric(&f->p, "transcriber_retries_total{reason=\"missing_conversation_id\"}") >=
	    1);
}

static void test_transcriber_flow_failed_call(void **state)
{
	struct fixture *f = *state;
	struct ts_kmsg *d;
	int64_t t0 = time_mono_ms();

	trit_call(&f->t, "EL_failed", NULL, "elevenlabs: 422 invalid number");
	trit_lines(&f->t, "EL_failed", "failed", 1, 1);
	assert_int_equal(
	    wait_dlq(&f->t, "webhooks.transcription", "EL_failed", "call_failed", 1, 15000, &d), 1);
	assert_true(time_mono_ms() - t0 < 1400); /* at once: no waiting window */
	assert_string_equal(ts_kmsg_header(d, "attempts"), "1");
	/* the audit row stays */
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM calls WHERE call_sid = 'EL_failed' "
	                                "AND status = 'failed'"),
	                 1);
	ts_kmsgs_free(d, 1);
}

static void test_transcriber_flow_malformed_values(void **state)
{
	struct fixture *f = *state;
	struct ts_kmsg *d;

	trit_call(&f->t, "EL_after_bad", "conv_after_bad", NULL);
	trit_raw(&f->t, "webhooks.transcription", "EL_bad", "{\"event_id\": \"x\", oops");
	trit_raw(&f->t, "webhooks.post_call", "EL_bad", "{\"event_id\":\"p\"}");
	trit_lines(&f->t, "EL_after_bad", "after", 1, 2);
	assert_int_equal(
	    wait_dlq(&f->t, "webhooks.transcription", "EL_bad", "bad_message", 1, 15000, &d), 1);
	assert_string_equal(d->value, "{\"event_id\": \"x\", oops");
	assert_non_null(strstr(ts_kmsg_header(d, "error"), "malformed JSON"));
	ts_kmsgs_free(d, 1);
	assert_int_equal(
	    wait_dlq(&f->t, "webhooks.post_call", "EL_bad", "bad_message", 1, 15000, NULL), 1);
	/* the consumer went on */
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_after_bad'",
	                              2, 20000),
	                 2);
	trit_assert_lines(&f->t, "conv_after_bad", "after", 2);
}

static void test_transcriber_flow_database_rejects_one_row(void **state)
{
	struct fixture *f = *state;
	char ev[64];

	ts_pg_exec(f->t.schema, "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql "
	                        "AS $$ BEGIN IF NEW.message = 'POISON' THEN RAISE EXCEPTION "
	                        "'poison line' USING ERRCODE = 'check_violation'; END IF; "
	                        "RETURN NEW; END $$");
	ts_pg_exec(f->t.schema, "CREATE TRIGGER reject_poison BEFORE INSERT ON call_transcriptions "
	                        "FOR EACH ROW EXECUTE FUNCTION reject_poison()");
	trit_call(&f->t, "EL_poison", "conv_poison", NULL);
	trit_lines(&f->t, "EL_poison", "poison", 1, 1);
	snprintf(ev, sizeof ev, "EL_poison-ev-x");
	trit_line(&f->t, "EL_poison", ev, "user", "POISON");
	trit_lines(&f->t, "EL_poison", "poison", 2, 2);
	assert_int_equal(
	    wait_dlq(&f->t, "webhooks.transcription", "EL_poison", "db_rejected", 1, 15000, NULL),
	    1);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_poison'",
	                              2, 20000),
	                 2);
	trit_assert_lines(&f->t, "conv_poison", "poison", 2);
	ts_pg_exec(f->t.schema, "DROP TRIGGER reject_poison ON call_transcriptions");
}

static void test_transcriber_flow_post_call_completes_and_reconciles(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"done 1", "done 2", "done 3", "done 4"};
	char *end;

	trit_call(&f->t, "EL_done", "conv_done", NULL);
	trit_lines(&f->t, "EL_done", "done", 1, 2);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = 'conv_done'",
	                              2, 20000),
	                 2);
	trit_post_call(&f->t, "EL_done", "pc-done",
	               trit_transcript_body("EL_done", "conv_done", texts, 4));
	trit_flush(&f->t);
	assert_true(trit_wait_call(&f->t, "EL_done", "status = 'completed'", 20000));
	end = ts_pg_query(f->t.schema, "SELECT to_char(call_end_time AT TIME ZONE 'UTC', "
	                               "'YYYY-MM-DD HH24:MI:SS') FROM calls WHERE call_sid = "
	                               "'EL_done'");
	assert_string_equal(end, "2025-11-21 09:58:15"); /* start 1763719000 + 95 s */
	free(end);
	trit_assert_lines(&f->t, "conv_done", "done", 4);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE event_id "
	                                "IN ('postcall:conv_done:2', 'postcall:conv_done:3')"),
	                 2);
	/* the same webhook again (ElevenLabs retries): nothing changes */
	trit_post_call(&f->t, "EL_done", "pc-done-again",
	               trit_transcript_body("EL_done", "conv_done", texts, 4));
	trit_flush(&f->t);
	for (int i = 0; i < 100; i++) {
		if (trit_metric(&f->p,
		                "transcriber_post_call_total{type=\"post_call_transcription\","
		                "outcome=\"unchanged\"}") >= 1)
			break;
		ts_sleep_ms(100);
	}
	assert_true(trit_metric(&f->p,
	                        "transcriber_post_call_total{type=\"post_call_transcription\","
	                        "outcome=\"unchanged\"}") == 1);
	trit_assert_lines(&f->t, "conv_done", "done", 4);
}

static void test_transcriber_flow_post_call_heals_parked_lines(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"heal 1", "heal 2", "heal 3", "heal 4"};

	/* the dialer died after the API accepted the call: conversation_id never recorded */
	trit_call(&f->t, "EL_heal", NULL, NULL);
	trit_lines(&f->t, "EL_heal", "heal", 1, 3);
	ts_sleep_ms(200);
	trit_post_call(&f->t, "EL_heal", "pc-heal",
	               trit_transcript_body("EL_heal", "conv_heal", texts, 4));
	trit_flush(&f->t);
	assert_true(trit_wait_call(
	    &f->t, "EL_heal", "status = 'completed' AND conversation_id = 'conv_heal'", 20000));
	trit_assert_lines(&f->t, "conv_heal", "heal", 4);
	/* the per-turn lines went in as themselves, before the post-call: only turn 4 was copied */
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE "
	                                "conversation_id = 'conv_heal' AND event_id LIKE "
	                                "'EL_heal-ev-%' AND sequence_number <= 3"),
	                 3);
	assert_int_equal(trit_ll(&f->t, "SELECT sequence_number FROM call_transcriptions WHERE "
	                                "event_id = 'postcall:conv_heal:3'"),
	                 4);
	assert_int_equal(dlq_for(&f->t, "webhooks.transcription", "EL_heal", NULL, NULL), 0);
}

/* The sweeper gave up on a call whose dial outcome was unknown (failed, dial_outcome_unknown);
 * its post-call arrives later: the proof the call happened, it completes the call with its
 * conversation_id and transcript. A call failed for another reason stays failed. */
static void test_transcriber_flow_post_call_after_outcome_unknown(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"unk 1", "unk 2", "unk 3"};
	struct ts_kmsg *d;

	trit_call(&f->t, "EL_unk", NULL, "dial_outcome_unknown");
	trit_post_call(&f->t, "EL_unk", "pc-unk",
	               trit_transcript_body("EL_unk", "conv_unk", texts, 3));
	trit_call(&f->t, "EL_refused", NULL, "HTTP 422: body.to_number: invalid");
	trit_post_call(&f->t, "EL_refused", "pc-refused",
	               trit_transcript_body("EL_refused", "conv_refused", texts, 3));
	trit_flush(&f->t);
	assert_true(trit_wait_call(&f->t, "EL_unk",
	                           "status = 'completed' AND conversation_id = 'conv_unk' AND "
	                           "failure_reason IS NULL AND call_end_time IS NOT NULL",
	                           20000));
	trit_assert_lines(&f->t, "conv_unk", "unk", 3); /* from the final transcript */
	assert_int_equal(
	    wait_dlq(&f->t, "webhooks.post_call", "EL_refused", "call_failed", 1, 15000, &d), 1);
	ts_kmsgs_free(d, 1);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM calls WHERE call_sid = 'EL_refused' "
	                                "AND status = 'failed' AND conversation_id IS NULL"),
	                 1);
}

static void test_transcriber_flow_other_post_call_types(void **state)
{
	struct fixture *f = *state;
	char *reason;

	trit_call(&f->t, "EL_busy", NULL, NULL);
	trit_post_call(&f->t, "EL_busy", "pc-busy",
	               json_pack("{s:s, s:{s:s, s:s, s:{s:{s:s}}}}", "type",
	                         "call_initiation_failure", "data", "agent_id", "a",
	                         "failure_reason", "busy", "conversation_initiation_client_data",
	                         "dynamic_variables", "call_sid", "EL_busy"));
	trit_post_call(
	    &f->t, "EL_busy", "pc-audio",
	    json_pack("{s:s, s:{s:s}}", "type", "post_call_audio", "data", "full_audio", "AAAA"));
	trit_post_call(&f->t, "EL_busy", "pc-new",
	               json_pack("{s:s, s:{}}", "type", "post_call_something_new", "data"));
	trit_flush(&f->t);
	assert_true(trit_wait_call(&f->t, "EL_busy", "status = 'failed'", 20000));
	reason = ts_pg_query(f->t.schema, "SELECT failure_reason FROM calls WHERE call_sid = "
	                                  "'EL_busy'");
	assert_string_equal(reason, "call_initiation_failure: busy");
	free(reason);
	for (int i = 0; i < 100; i++) {
		if (trit_metric(&f->p, "transcriber_post_call_total{type=\"other\",outcome="
		                       "\"ignored\"}") >= 1)
			break;
		ts_sleep_ms(100);
	}
	assert_true(trit_metric(&f->p, "transcriber_post_call_total{type=\"post_call_audio\","
	                               "outcome=\"ignored\"}") == 1);
	assert_true(trit_metric(&f->p, "transcriber_post_call_total{type=\"other\",outcome="
	                               "\"ignored\"}") == 1);
	assert_int_equal(dlq_for(&f->t, "webhooks.post_call", "EL_busy", NULL, NULL), 0);
	/* everything was committed: nothing left behind */
	for (int i = 0; i < 50 && trit_metric(&f->p, "kbus_consumer_lag") != 0; i++)
		ts_sleep_ms(100);
	assert_true(trit_metric(&f->p, "kbus_consumer_lag") == 0);
	assert_true(trit_metric(&f->p, "transcriber_parked") == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_flow_valid_lines),
	    cmocka_unit_test(test_transcriber_flow_events_published_twice),
	    cmocka_unit_test(test_transcriber_flow_unknown_call_sid),
	    cmocka_unit_test(test_transcriber_flow_conversation_set_late),
	    cmocka_unit_test(test_transcriber_flow_failed_call),
	    cmocka_unit_test(test_transcriber_flow_malformed_values),
	    cmocka_unit_test(test_transcriber_flow_database_rejects_one_row),
	    cmocka_unit_test(test_transcriber_flow_post_call_completes_and_reconciles),
	    cmocka_unit_test(test_transcriber_flow_post_call_heals_parked_lines),
	    cmocka_unit_test(test_transcriber_flow_post_call_after_outcome_unknown),
	    cmocka_unit_test(test_transcriber_flow_other_post_call_types),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
