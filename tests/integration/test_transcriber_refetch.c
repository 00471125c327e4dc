/* test_transcriber_refetch: a webhook message the transcriber cannot take (its offsets tracker
 * refuses it, as when memory runs out: the transcriber-faults build, CALLPIPE_FAULT_TRACK) is
 * never passed over. The service: while it is refused the lines before it are stored and
 * committed, the ones after it are not, the group's committed offset stays at it; then it is read
 * again and the call has every line once, in order, and the commit passes them all. A replay
 * (which ends by itself) stops incomplete instead of finishing without it; run again, it
 * completes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transcriber_it.h"

#include "kbus.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALL     "EL_trf_1"
#define CONV     "conv_trf_1"
#define LINES    8
#define REFUSED  3 /* the offset of the refused line (line REFUSED + 1) */
#define REFUSALS 8 /* pauses of 100, 200, 400, 800, 1000 ... ms: about 4.5 s */

static int log_count(const struct trit_proc *p, const char *needle)
{
	FILE *fp = fopen(p->proc.log_path, "r");
	char line[4096];
	int n = 0;

	if (!fp)
		return 0;
	while (fgets(line, sizeof line, fp))
		n += strstr(line, needle) != NULL;
	fclose(fp);
	return n;
}

static int refusals(const struct trit_proc *p)
{
	return log_count(p, "fault: offsets tracker refused a message");
}

static long long stored(struct trit *t)
{
	return trit_ll(t, "SELECT count(*) FROM call_transcriptions WHERE conversation_id = '" CONV
	                  "'");
}

static void test_transcriber_refetch_service(void **state)
{
	static const char *const env[] = {
	    /* partition 0 of the lines topic, offset REFUSED, REFUSALS times */
	    "CALLPIPE_FAULT_TRACK=webhooks.transcription@0:3:8",
	    "TRANSCRIBER_DB_RETRY_MAX_MS=1000",
	    "TRANSCRIBER_COMMIT_INTERVAL_MS=50",
	    NULL,
	};
	struct trit t;
	struct trit_proc p;
	char topic[256], group[300];
	bool before_done = false;
	int checks = 0;

	(void)state;
	trit_setup(&t, "trefetch", 1);
	ts_broker_topic(&t.broker, KBUS_TOPIC_TRANSCRIPTION, topic, sizeof topic);
	ts_broker_group(&t.broker, "transcriber", group, sizeof group);
	trit_call(&t, CALL, CONV, NULL);
	trit_start_bin(&t, &p, "transcriber-faults", "transcriber", env);
	trit_lines(&t, CALL, "line", 1, LINES);

	/* While the tracker refuses it (a check counts only when the refusals went on through it):
	 * nothing at or after it is stored, and the commit never passes it. */
	for (int waited = 0; refusals(&p) < REFUSALS; waited += 50) {
		int before = refusals(&p);
		int64_t at = ts_kafka_committed(t.broker.bootstrap, group, topic, 0);
		long long n = stored(&t);

		if (before > 0 && refusals(&p) < REFUSALS) {
			if (at > REFUSED)
				fail_msg("committed offset %lld passed the refused message %d",
				         (long long)at, REFUSED);
			assert_true(n <= REFUSED);
			checks++;
			before_done = before_done || (at == REFUSED && n == REFUSED);
		}
		if (waited > 30000)
			fail_msg("only %d refusals after 30 s; log %s", refusals(&p),
			         p.proc.log_path);
		ts_sleep_ms(50);
	}
	assert_true(checks >= 2);
	assert_true(before_done); /* what came before it went on, committed up to it */

	/* read again: every line once, in order; the commit past them all */
	assert_int_equal(trit_wait_ll(&t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id = '" CONV "'",
	                              LINES, 20000),
	                 LINES);
	trit_assert_lines(&t, CONV, "line", LINES);
	for (int i = 0; i < 200 && ts_kafka_committed(t.broker.bootstrap, group, topic, 0) < LINES;
	     i++)
		ts_sleep_ms(50);
	assert_int_equal(ts_kafka_committed(t.broker.bootstrap, group, topic, 0), LINES);
	assert_int_equal(refusals(&p), REFUSALS);
	assert_int_equal(log_count(&p, "reading it again after a pause"), REFUSALS);
	assert_int_equal(trit_metric(&p, "transcriber_dead_lettered_total{reason=\"bad_message\"}"),
	                 0);
	trit_stop(&p);
	trit_teardown(&t);
}

static void test_transcriber_refetch_replay_stops(void **state)
{
	static const char *const args[] = {"replay", "--from", "2000-01-01T00:00:00Z", NULL};
	static const char *const refuse[] = {"CALLPIPE_FAULT_TRACK=webhooks.transcription@0:3:1",
	                                     NULL};
	struct trit t;
	char *out = NULL;

	(void)state;
	trit_setup(&t, "trefetch_replay", 1);
	trit_call(&t, CALL, CONV, NULL);
	trit_lines(&t, CALL, "line", 1, LINES);
	/* the window's fourth line cannot be taken: not done, exit 1 */
	assert_int_equal(trit_run_bin(&t, "transcriber-faults", args, refuse, &out), 1);
	assert_non_null(strstr(out, "replay incomplete"));
	free(out);
	assert_true(stored(&t) <= REFUSED);
	/* run again (nothing refused): every line, once, in order */
	assert_int_equal(trit_run_bin(&t, "transcriber-faults", args, NULL, &out), 0);
	assert_non_null(strstr(out, "replay done: read 8"));
	free(out);
	trit_assert_lines(&t, CONV, "line", LINES);
	trit_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_refetch_service),
	    cmocka_unit_test(test_transcriber_refetch_replay_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
