/* test_transcriber_faults: the transcriber under failure, on a private Postgres it may stop:
 * SIGKILL mid-batch then restart (every line exactly once, parked lines included), and Postgres
 * stopped for 10 s mid-stream (no loss, no dead-letter, readiness drops, it catches up), and
 * the parked-memory limit pausing consumption. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transcriber_it.h"

#include "store_calls.h"
#include "timeutil.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char pg_dir[PATH_MAX];

/* scripts/pg <verb> --dir pg_dir [more...] */
static void pg_script(const char *verb, const char *more, const char *value)
{
	char script[PATH_MAX], *out = NULL;
	const char *argv[] = {script, verb, "--dir", pg_dir, more, value, NULL};
	int rc;

	snprintf(script, sizeof script, "%s/scripts/pg", ts_source_dir());
	rc = ts_run(argv, NULL, &out, 60000);
	if (rc != 0)
		fail_msg("scripts/pg %s: exit %d: %s", verb, rc, out ? out : "");
	free(out);
}

/* A private Postgres, so that stopping it cannot disturb the other tests. */
static int setup(void **state)
{
	char env_file[PATH_MAX + 16], line[2048];
	FILE *fp;

	(void)state;
	snprintf(pg_dir, sizeof pg_dir, "%s/pg", ts_tmpdir());
	snprintf(env_file, sizeof env_file, "%s.env", pg_dir);
	pg_script("start", "--env-file", env_file);
	fp = fopen(env_file, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof line, fp))
		if (strncmp(line, "CALLPIPE_TEST_DATABASE_URL=", 27) == 0) {
			line[strcspn(line, "\r\n")] = '\0';
			setenv("CALLPIPE_TEST_DATABASE_URL", line + 27, 1);
		}
	fclose(fp);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	pg_script("stop", NULL, NULL);
	return 0;
}

static void round_of_lines(struct trit *t, const char *tag, int ncalls, int i)
{
	char sid[32], ev[48], msg[48];

	for (int c = 0; c < ncalls; c++) {
		snprintf(sid, sizeof sid, "EL_%s_%d", tag, c);
		snprintf(ev, sizeof ev, "%s-%d-%d", tag, c, i);
		snprintf(msg, sizeof msg, "%s%d %d", tag, c, i);
		trit_line(t, sid, ev, i % 2 ? "agent" : "user", msg);
	}
}

static void calls(struct trit *t, const char *tag, int ncalls)
{
	char sid[32], conv[32];

	for (int c = 0; c < ncalls; c++) {
		snprintf(sid, sizeof sid, "EL_%s_%d", tag, c);
		snprintf(conv, sizeof conv, "conv_%s_%d", tag, c);
		trit_call(t, sid, conv, NULL);
	}
}

static void assert_calls(struct trit *t, const char *tag, int ncalls, int nlines)
{
	char conv[32], prefix[32];

	for (int c = 0; c < ncalls; c++) {
		snprintf(conv, sizeof conv, "conv_%s_%d", tag, c);
		snprintf(prefix, sizeof prefix, "%s%d", tag, c);
		trit_assert_lines(t, conv, prefix, nlines);
	}
}

static size_t dead_letters(struct trit *t)
{
	struct ts_kmsg *msgs;
	size_t n = trit_dlq(t, "webhooks.transcription", &msgs);

	ts_kmsgs_free(msgs, n);
	return n;
}

static void test_transcriber_crash_mid_batch(void **state)
{
	const char *const env[] = {"TRANSCRIBER_BATCH_MAX=40", NULL};
	struct trit t;
	struct trit_proc p;
	char ev[32], msg[32];
	bool changed;
	long long at_kill;

	(void)state;
	trit_setup(&t, "tr_crash", 4);
	calls(&t, "k", 30);
	/* a call still dialing: its lines are parked (uncommitted) when the process dies */
	trit_call(&t, "EL_k_wait", NULL, NULL);
	for (int i = 1; i <= 10; i++) {
		snprintf(ev, sizeof ev, "kw-%d", i);
		snprintf(msg, sizeof msg, "kw %d", i);
		trit_line(&t, "EL_k_wait", ev, "agent", msg);
	}
	for (int i = 1; i <= 100; i++)
		round_of_lines(&t, "k", 30, i);
	trit_flush(&t);

	trit_start(&t, &p, "transcriber", env);
	at_kill = trit_wait_ll(&t,
	                       "SELECT CASE WHEN count(*) >= 600 THEN 1 ELSE 0 END FROM "
	                       "call_transcriptions",
	                       1, 30000);
	assert_int_equal(at_kill, 1);
	assert_int_equal(ts_proc_stop(&p.proc, SIGKILL, 5000), 128 + SIGKILL);
	at_kill = trit_ll(&t, "SELECT count(*) FROM call_transcriptions");
	fprintf(stderr, "killed with %lld of 3000 lines stored\n", at_kill);
	assert_true(at_kill < 3000);

	trit_start(&t, &p, "transcriber", env);
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 3000, 60000),
	                 3000);
	assert_calls(&t, "k", 30, 100);
	assert_int_equal(store_call_set_conversation(t.db, "EL_k_wait", "conv_kw", &changed), 0);
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 3010, 20000),
	                 3010);
	trit_assert_lines(&t, "conv_kw", "kw", 10);
	assert_int_equal(trit_ll(&t, "SELECT count(*) - count(DISTINCT event_id) FROM "
	                             "call_transcriptions"),
	                 0);
	assert_int_equal(dead_letters(&t), 0);
	trit_stop(&p);
	trit_teardown(&t);
}

static long readyz(const struct trit_proc *p)
{
	struct ts_http_resp resp;
	char url[128];
	long status;

	snprintf(url, sizeof url, "http://127.0.0.1:%u/readyz", p->port);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	status = resp.status;
	ts_http_resp_free(&resp);
	return status;
}

static void test_transcriber_postgres_down_mid_stream(void **state)
{
	/* short windows: if the outage counted against them, lines would be dead-lettered */
	const char *const env[] = {"TRANSCRIBER_UNKNOWN_RETRY_MAX_MS=2000",
	                           "TRANSCRIBER_DB_RETRY_MAX_MS=1000", NULL};
	struct trit t;
	struct trit_proc p;
	long during;
	int64_t down_at;

	(void)state;
	trit_setup(&t, "tr_pgdown", 4);
	calls(&t, "d", 20);
	trit_start(&t, &p, "transcriber", env);
	for (int i = 1; i <= 30; i++) {
		round_of_lines(&t, "d", 20, i);
		trit_flush(&t);
		ts_sleep_ms(50);
	}
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 600, 30000),
	                 600);
	assert_int_equal(readyz(&p), 200);

	pg_script("pause", "--mode", "fast");
	down_at = time_mono_ms();
	for (int i = 31; i <= 70; i++) {
		round_of_lines(&t, "d", 20, i);
		trit_flush(&t);
		ts_sleep_ms(200);
	}
	while (time_mono_ms() - down_at < 10000)
		ts_sleep_ms(100);
	during = readyz(&p);
	assert_true(ts_proc_alive(&p.proc));
	pg_script("resume", NULL, NULL);

	for (int i = 71; i <= 100; i++) {
		round_of_lines(&t, "d", 20, i);
		trit_flush(&t);
		ts_sleep_ms(20);
	}
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 2000, 60000),
	                 2000);
	assert_int_not_equal(during, 200); /* not ready while the database was away */
	assert_calls(&t, "d", 20, 100);
	assert_int_equal(dead_letters(&t), 0);
	assert_true(trit_metric(&p, "transcriber_retries_total{reason=\"database\"}") >= 1);
	assert_int_equal(readyz(&p), 200);
	trit_stop(&p);
	trit_teardown(&t);
}

static void test_transcriber_park_limit_pauses(void **state)
{
	const char *const env[] = {"TRANSCRIBER_PARK_MAX=30", "TRANSCRIBER_BATCH_MAX=10", NULL};
	struct trit t;
	struct trit_proc p;
	char ev[32], msg[32];
	bool changed;
	double paused = 0;

	(void)state;
	trit_setup(&t, "tr_parkmax", 1);
	trit_call(&t, "EL_pm", NULL, NULL);
	trit_start(&t, &p, "transcriber", env);
	for (int i = 1; i <= 200; i++) {
		snprintf(ev, sizeof ev, "pm-%d", i);
		snprintf(msg, sizeof msg, "pm %d", i);
		trit_line(&t, "EL_pm", ev, "agent", msg);
	}
	trit_flush(&t);
	for (int i = 0; i < 100 && paused == 0; i++) {
		ts_sleep_ms(100);
		paused = trit_metric(&p, "transcriber_paused");
	}
	/* fetching stopped near the limit instead of holding all 200 in memory */
	assert_true(paused == 1);
	assert_true(trit_metric(&p, "transcriber_parked") < 60);
	assert_int_equal(store_call_set_conversation(t.db, "EL_pm", "conv_pm", &changed), 0);
	assert_int_equal(trit_wait_ll(&t, "SELECT count(*) FROM call_transcriptions", 200, 30000),
	                 200);
	trit_assert_lines(&t, "conv_pm", "pm", 200);
	assert_true(trit_metric(&p, "transcriber_paused") == 0);
	trit_stop(&p);
	trit_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_crash_mid_batch),
	    cmocka_unit_test(test_transcriber_postgres_down_mid_stream),
	    cmocka_unit_test(test_transcriber_park_limit_pauses),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
