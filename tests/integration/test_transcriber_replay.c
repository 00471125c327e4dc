/* test_transcriber_replay: operating the transcriber: `replay` of 10,000 processed events adds
 * nothing, replaying a deleted time window brings exactly those rows back (same numbers), and
 * `redrive` moves dead-lettered lines back once each, where they take their original place. On
 * real Kafka (the kafka tier) `replay --from` seeks by time: a window after a long history is
 * read without reading the history. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transcriber_it.h"

#include "store_calls.h"
#include "timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCALLS 50
#define NLINES 200 /* 10,000 events */

static const char SNAPSHOT[] =
    "SELECT md5(string_agg(conversation_id || ':' || sequence_number || ':' || message || ':' || "
    "event_id, ',' ORDER BY conversation_id, sequence_number)) FROM call_transcriptions";

static void produce_phase(struct trit *t, int first, int last)
{
	char sid[32], ev[48], msg[48];

	for (int i = first; i <= last; i++)
		for (int c = 0; c < NCALLS; c++) {
			snprintf(sid, sizeof sid, "EL_r_%d", c);
			snprintf(ev, sizeof ev, "r-%d-%d", c, i);
			snprintf(msg, sizeof msg, "r%d %d", c, i);
			trit_line(t, sid, ev, i % 2 ? "agent" : "user", msg);
		}
	trit_flush(t);
}

static void test_transcriber_replay_is_idempotent_and_fills_gaps(void **state)
{
	struct trit t;
	struct trit_proc p;
	char sid[32], conv[32], from[40], to[40], *before, *after, *out;
	const char *const replay_all[] = {"replay", "--from", "2000-01-01T00:00:00Z", NULL};
	const char *replay_window[] = {"replay", "--from", from, "--to", to, NULL};
	int64_t t0;

	(void)state;
	trit_setup(&t, "tr_replay", 4);
	for (int c = 0; c < NCALLS; c++) {
		snprintf(sid, sizeof sid, "EL_r_%d", c);
		snprintf(conv, sizeof conv, "conv_r_%d", c);
		trit_call(&t, sid, conv, NULL);
	}
	/* three phases a second apart: the middle one is the "outage window" */
	produce_phase(&t, 1, 80);
	ts_sleep_ms(1100);
	time_format_iso_ms(time_now_ms(), from, sizeof from);
	produce_phase(&t, 81, 140);
	time_format_iso_ms(time_now_ms(), to, sizeof to);
	ts_sleep_ms(1100);
	produce_phase(&t, 141, NLINES);

	t0 = time_mono_ms();
	trit_start(&t, &p, "transcriber", NULL);
	assert_int_equal(
	    trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", NCALLS * NLINES, 60000),
	    NCALLS * NLINES);
	fprintf(stderr, "10,000 events processed in %lld ms (with the group join)\n",
	        (long long)(time_mono_ms() - t0));
	trit_stop(&p);
	for (int c = 0; c < NCALLS; c++) {
		char prefix[16];

		snprintf(conv, sizeof conv, "conv_r_%d", c);
		snprintf(prefix, sizeof prefix, "r%d", c);
		trit_assert_lines(&t, conv, prefix, NLINES);
	}
	before = ts_pg_query(t.schema, SNAPSHOT);

	/* replaying everything adds nothing */
	t0 = time_mono_ms();
	out = trit_run(&t, replay_all, NULL);
	fprintf(stderr, "replay of 10,000 events took %lld ms\n", (long long)(time_mono_ms() - t0));
	/* the devbroker answers every offsets-for-times lookup with the end of the log */
	if (ts_broker_kafka_mode())
		assert_null(strstr(out, "scanning from the earliest offset"));
	else
		assert_non_null(strstr(out, "scanning from the earliest offset"));
	assert_non_null(strstr(out, "read 10000, inserted 0, already present 10000, "
	                            "dead-lettered 0"));
	free(out);
	assert_int_equal(trit_ll(&t, "SELECT count(*) FROM call_transcriptions"), NCALLS * NLINES);

	/* lose the window, replay it: exactly those rows come back, with their numbers */
	ts_pg_exec(t.schema,
	           "DELETE FROM call_transcriptions WHERE split_part(event_id, '-', 3)::int "
	           "BETWEEN 81 AND 140");
	assert_int_equal(trit_ll(&t, "SELECT count(*) FROM call_transcriptions"), NCALLS * 140);
	out = trit_run(&t, replay_window, NULL);
	assert_non_null(strstr(out, "read 3000, inserted 3000, already present 0, "
	                            "dead-lettered 0"));
	/* Kafka seeks to --from: only what follows the window is read and left out; the devbroker
	 * reads from the earliest offset, so the 4,000 before it too */
	assert_non_null(strstr(out, ts_broker_kafka_mode() ? "outside the window 3000)"
	                                                   : "outside the window 7000)"));
	free(out);
	after = ts_pg_query(t.schema, SNAPSHOT);
	assert_string_equal(after, before);
	free(before);
	free(after);
	trit_teardown(&t);
}

static size_t dlq_count(struct trit *t, const char *key, const char *reason)
{
	struct ts_kmsg *msgs;
	size_t n = trit_dlq(t, "webhooks.transcription", &msgs), found = 0;

	for (size_t i = 0; i < n; i++)
		found += strcmp(msgs[i].key, key) == 0 &&
		         strcmp(ts_kmsg_header(&msgs[i], "reason"), reason) == 0;
	ts_kmsgs_free(msgs, n);
	return found;
}

static void test_transcriber_redrive_once_each_in_place(void **state)
{
	struct trit t;
	struct trit_proc p;
	const char *const env[] = {"TRANSCRIBER_MISSING_CONVERSATION_WAIT_MS=800",
	                           "TRANSCRIBER_UNKNOWN_RETRY_MAX_MS=800", NULL};
	const char *const redrive[] = {"redrive", "--reason", "missing_conversation_id", NULL};
	const char *const replay_quiet[] = {"replay", "--from", "2000-01-01T00:00:00Z",
	                                    "--no-dead-letter", NULL};
	struct ts_kmsg *msgs;
	size_t n, redriven = 0;
	bool changed;
	char ev[32], msg[32], topic[256], *out;

	(void)state;
	trit_setup(&t, "tr_redrive", 2);
	trit_start(&t, &p, "transcriber", env);
	trit_call(&t, "EL_rd", NULL, NULL);
	for (int i = 1; i <= 3; i++) {
		snprintf(ev, sizeof ev, "rd-%d", i);
		snprintf(msg, sizeof msg, "rd %d", i);
		trit_line(&t, "EL_rd", ev, "agent", msg);
	}
	trit_line(&t, "EL_nobody", "nobody-1", "user", "lost");
	trit_flush(&t);
	for (int i = 0; i < 100 && (dlq_count(&t, "EL_rd", "missing_conversation_id") < 3 ||
	                            dlq_count(&t, "EL_nobody", "unknown_call_sid") < 1);
	     i++)
		ts_sleep_ms(100);
	assert_int_equal(dlq_count(&t, "EL_rd", "missing_conversation_id"), 3);

	/* a replay now stores nothing, waits for nothing, and (asked to) adds no dead-letters */
	out = trit_run(&t, replay_quiet, NULL);
	assert_non_null(strstr(out, "read 4, inserted 0, already present 0, not stored "
	                            "(--no-dead-letter) 4"));
	free(out);
	assert_int_equal(dlq_count(&t, "EL_rd", "missing_conversation_id"), 3);
	assert_int_equal(dlq_count(&t, "EL_nobody", "unknown_call_sid"), 1);

	/* the conversation_id is healed; the call goes on meanwhile */
	assert_int_equal(store_call_set_conversation(t.db, "EL_rd", "conv_rd", &changed), 0);
	for (int i = 4; i <= 5; i++) {
		snprintf(ev, sizeof ev, "rd-%d", i);
		snprintf(msg, sizeof msg, "rd %d", i);
		trit_line(&t, "EL_rd", ev, "agent", msg);
	}
	trit_flush(&t);
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 2, 20000), 2);

	out = trit_run(&t, redrive, NULL);
	assert_non_null(strstr(out, "read 4, redriven 3, skipped 1"));
	free(out);
	/* the three lines take their place before the two later ones */
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 5, 20000), 5);
	trit_assert_lines(&t, "conv_rd", "rd", 5);

	/* once each: a second redrive finds nothing new */
	out = trit_run(&t, redrive, NULL);
	assert_non_null(strstr(out, "read 0, redriven 0"));
	free(out);
	n = ts_kafka_read_all(
	    t.broker.bootstrap,
	    ts_broker_topic(&t.broker, "webhooks.transcription", topic, sizeof topic), &msgs);
	for (size_t i = 0; i < n; i++) {
		const char *count = ts_kmsg_header(&msgs[i], "redrive_count");

		if (!count)
			continue;
		redriven++;
		assert_string_equal(count, "1");
		assert_non_null(ts_kmsg_header(&msgs[i], "origin_offset"));
		assert_null(ts_kmsg_header(&msgs[i], "reason")); /* dead-letter headers stripped */
	}
	ts_kmsgs_free(msgs, n);
	assert_int_equal(redriven, 3);
	trit_stop(&p);
	trit_teardown(&t);
}

/* Real Kafka only: 40,000 lines of history, then a 600-line window, then 200 more. `replay
 * --from --to` seeks to the window by time (offsets for times), so it reads the window and what
 * follows, never the history; the same window again adds nothing. */
static void test_transcriber_replay_seeks_by_time(void **state)
{
	enum { HISTORY = 40000, WINDOW = 600, AFTER = 200 };
	struct trit t;
	char from[40], to[40], ev[48], msg[48], *out, expect[160];
	const char *const window[] = {"replay", "--from", from, "--to", to, NULL};
	int64_t t0, took_ms;

	(void)state;
	if (!ts_broker_kafka_mode())
		skip(); /* the devbroker cannot look offsets up by time */
	trit_setup(&t, "tr_seek", 4);
	trit_call(&t, "EL_seek", "conv_seek", NULL);
	/* history: lines of calls that do not exist (a scan would retry and dead-letter them) */
	for (int i = 1; i <= HISTORY; i++) {
		char sid[32];

		snprintf(sid, sizeof sid, "EL_old_%d", i % 97);
		snprintf(ev, sizeof ev, "old-%d", i);
		trit_line(&t, sid, ev, "agent", "history");
	}
	trit_flush(&t);
	ts_sleep_ms(1100);
	time_format_iso_ms(time_now_ms(), from, sizeof from);
	trit_lines(&t, "EL_seek", "seek", 1, WINDOW);
	time_format_iso_ms(time_now_ms(), to, sizeof to);
	ts_sleep_ms(1100);
	for (int i = 1; i <= AFTER; i++) {
		snprintf(ev, sizeof ev, "after-%d", i);
		snprintf(msg, sizeof msg, "after %d", i);
		trit_line(&t, "EL_seek", ev, "user", msg);
	}
	trit_flush(&t);

	t0 = time_mono_ms();
	out = trit_run(&t, window, NULL);
	took_ms = time_mono_ms() - t0;
	fprintf(stderr, "replay of a %d-line window after %d lines of history: %lld ms\n", WINDOW,
	        HISTORY, (long long)took_ms);
	assert_null(strstr(out, "scanning from the earliest offset"));
	snprintf(expect, sizeof expect,
	         "read %d, inserted %d, already present 0, dead-lettered 0 (post-calls 0, ignored "
	         "0, outside the window %d)",
	         WINDOW, WINDOW, AFTER);
	if (!strstr(out, expect))
		fail_msg("expected \"%s\" in the replay's summary", expect);
	free(out);
	trit_assert_lines(&t, "conv_seek", "seek", WINDOW);
	assert_int_equal(trit_ll(&t, "SELECT count(*) FROM call_transcriptions"), WINDOW);

	/* the stored window again: nothing added */
	out = trit_run(&t, window, NULL);
	snprintf(expect, sizeof expect, "read %d, inserted 0, already present %d, dead-lettered 0",
	         WINDOW, WINDOW);
	if (!strstr(out, expect))
		fail_msg("expected \"%s\" in the replay's summary", expect);
	free(out);
	assert_int_equal(trit_ll(&t, "SELECT count(*) FROM call_transcriptions"), WINDOW);
	trit_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_replay_is_idempotent_and_fills_gaps),
	    cmocka_unit_test(test_transcriber_redrive_once_each_in_place),
	    cmocka_unit_test(test_transcriber_replay_seeks_by_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
