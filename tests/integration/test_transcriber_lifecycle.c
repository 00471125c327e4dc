/* test_transcriber_lifecycle: whole calls through the real transcriber: the full lifecycle (call
 * row, conversation_id, lines, post-call), a failed API call whose webhooks are dead-lettered while
 * its audit row stays, a legacy call backfilled by migration 002 receiving webhooks, and sequence
 * numbers under two transcriber processes in one group (plus a third in another group writing the
 * same conversations at the same time): 20 calls x 100 interleaved lines, each 1..100 in order.
 * Also the post-call gate on a partition with no line, and on one handled before a restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transcriber_it.h"

#include "db.h"
#include "store_calls.h"
#include "timeutil.h"

#include <librdkafka/rdkafka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
	struct trit t;
	struct trit_proc p;
};

/* Runs migrate with args in the test's schema, from dir (NULL: the source tree's migrations). */
static void migrate(const struct trit *t, const char *dir, const char *const *args)
{
	char bin[PATH_MAX], e_db[2100], e_schema[96], e_dir[PATH_MAX + 32];
	const char *argv[8];
	const char *env[] = {e_db, e_schema, e_dir, "LOG_LEVEL=warn", NULL};
	size_t n = 0;
	char *out = NULL;
	int rc;

	argv[n++] = ts_bin("migrate", bin, sizeof bin);
	for (size_t i = 0; args[i] && n < 7; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(e_db, sizeof e_db, "DATABASE_URL=%s", ts_pg_url());
	snprintf(e_schema, sizeof e_schema, "DB_SCHEMA=%s", t->schema);
	if (dir)
		snprintf(e_dir, sizeof e_dir, "MIGRATIONS_DIR=%s", dir);
	else
		snprintf(e_dir, sizeof e_dir, "MIGRATIONS_DIR=%s/migrations", ts_source_dir());
	rc = ts_run(argv, env, &out, 60000);
	if (rc != 0)
		fail_msg("migrate %s: exit %d: %s", args[0], rc, out ? out : "");
	free(out);
}

/* Takes the test's schema back to the pre-refactor one (000 only), as the original service left
 * it, through the real migrations: down all, then up from a directory holding only 000. */
static void schema_at_000(const struct trit *t)
{
	const char *const down[] = {"down", "all", NULL};
	const char *const up[] = {"up", NULL};
	char dir[PATH_MAX], src[PATH_MAX], cmd[3 * PATH_MAX + 64];
	const char *argv[] = {"/bin/sh", "-c", cmd, NULL};

	snprintf(dir, sizeof dir, "%s/migrations-000", ts_tmpdir());
	snprintf(src, sizeof src, "%s/migrations", ts_source_dir());
	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/000_* '%s'/", dir, src, dir);
	assert_int_equal(ts_run(argv, NULL, NULL, 10000), 0);
	migrate(t, NULL, down);
	migrate(t, dir, up);
}

static int setup(void **state)
{
	static struct fixture f;

	trit_setup(&f.t, "tr_life", 4);
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

static long long count_conv(struct trit *t, const char *conv, long long expect)
{
	char sql[256];

	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM call_transcriptions WHERE conversation_id = '%s'", conv);
	return trit_wait_ll(t, sql, expect, 30000);
}

/* Dead-letters on base's DLQ with this key and reason. */
static size_t dlq_count(struct trit *t, const char *base, const char *key, const char *reason)
{
	struct ts_kmsg *msgs;
	size_t n = trit_dlq(t, base, &msgs), found = 0;

	for (size_t k = 0; k < n; k++)
		found += msgs[k].key && strcmp(msgs[k].key, key) == 0 &&
		         strcmp(ts_kmsg_header(&msgs[k], "reason"), reason) == 0;
	ts_kmsgs_free(msgs, n);
	return found;
}

/* A post-call transcription body as ElevenLabs sends it for a call without our dynamic
 * variables: no call_sid anywhere, only the conversation_id. */
static json_t *body_without_call_sid(const char *conversation_id, const char *const *texts,
                                     size_t n)
{
	json_t *body = trit_transcript_body("EL_unused", conversation_id, texts, n);

	assert_int_equal(
	    json_object_del(json_object_get(body, "data"), "conversation_initiation_client_data"),
	    0);
	return body;
}

static void test_transcriber_lifecycle_legacy_call(void **state)
{
	struct fixture *f = *state;
	const char *const up[] = {"up", NULL};
	char *sid;

	/* a call the original service stored (no call_sid), then the refactor's migrations */
	schema_at_000(&f->t);
	ts_pg_exec(f->t.schema,
	           "INSERT INTO calls (conversation_id, driver_id, status, created_at) "
	           "VALUES ('conv_legacy', '4711', 'in_progress', "
	           "'2025-06-01T12:00:00Z')");
	ts_pg_exec(f->t.schema,
	           "INSERT INTO call_transcriptions (conversation_id, speaker, message, "
	           "sequence_number) VALUES ('conv_legacy', 'agent', 'legacy 1', 1), "
	           "('conv_legacy', 'user', 'legacy 2', 2)");
	migrate(&f->t, NULL, up);
	sid = ts_pg_query(f->t.schema,
	                  "SELECT call_sid FROM calls WHERE conversation_id = 'conv_legacy'");
	assert_non_null(sid);
	assert_string_equal(sid, "EL_4711_1748779200"); /* 002's backfill format */

	trit_start(&f->t, &f->p, "transcriber", NULL);
	trit_lines(&f->t, sid, "legacy", 3, 5);
	assert_int_equal(count_conv(&f->t, "conv_legacy", 5), 5);
	trit_assert_lines(&f->t, "conv_legacy", "legacy", 5);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE event_id "
	                                "IS NULL AND sequence_number <= 2"),
	                 2); /* the legacy rows are untouched */
	free(sid);
}

/* The post-call gate opens at once for a call whose partition of webhooks.transcription has never
 * had a message (nothing to wait for): it used to wait the whole gate window (30 s here), because a
 * partition the consumer has read nothing from has no position. Runs right after the legacy test,
 * whose lines are the only ones so far: the call_sid is chosen to hash to another partition. */
static void test_transcriber_lifecycle_post_call_on_quiet_partition(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"hello", "bye"};
	int32_t busy = rd_kafka_msg_partitioner_consistent_random(
	    NULL, "EL_4711_1748779200", strlen("EL_4711_1748779200"), 4, NULL, NULL);
	char sid[32];
	bool created, changed;
	int64_t t0;

	for (int i = 0;; i++) {
		snprintf(sid, sizeof sid, "EL_quiet_%d", i);
		if (rd_kafka_msg_partitioner_consistent_random(NULL, sid, strlen(sid), 4, NULL,
		                                               NULL) != busy)
			break;
	}
	assert_int_equal(store_call_insert(f->t.db, sid, "d-11", NULL, &created), 0);
	assert_int_equal(store_call_set_conversation(f->t.db, sid, "conv_quiet", &changed), 0);
	t0 = time_mono_ms();
	trit_post_call(&f->t, sid, "pc-quiet", trit_transcript_body(sid, "conv_quiet", texts, 2));
	trit_flush(&f->t);
	assert_int_equal(
	    trit_wait_ll(&f->t,
	                 "SELECT count(*) FROM calls WHERE conversation_id = 'conv_quiet' "
	                 "AND status = 'completed'",
	                 1, 40000),
	    1);
	if (time_mono_ms() - t0 > 10000)
		fail_msg("the post-call waited %lld ms for a partition that never had a line",
		         (long long)(time_mono_ms() - t0));
	assert_int_equal(count_conv(&f->t, "conv_quiet", 2), 2);
}

static void test_transcriber_lifecycle_full_call(void **state)
{
	struct fixture *f = *state;
	const char *texts[10];
	char buf[10][32];
	bool created, changed;

	/* as the dialer does: the row first, then the conversation_id from the API */
	assert_int_equal(store_call_insert(f->t.db, "EL_life", "d-7", "trip-9", &created), 0);
	assert_true(created);
	assert_int_equal(store_call_set_conversation(f->t.db, "EL_life", "conv_life", &changed), 0);
	trit_lines(&f->t, "EL_life", "life", 1, 10);
	assert_int_equal(count_conv(&f->t, "conv_life", 10), 10);
	for (int i = 0; i < 10; i++) {
		snprintf(buf[i], sizeof buf[i], "life %d", i + 1);
		texts[i] = buf[i];
	}
	trit_post_call(&f->t, "EL_life", "pc-life",
	               trit_transcript_body("EL_life", "conv_life", texts, 10));
	trit_flush(&f->t);
	assert_true(trit_wait_call(&f->t, "EL_life",
	                           "status = 'completed' AND call_end_time IS NOT NULL", 20000));
	trit_assert_lines(&f->t, "conv_life", "life", 10);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE event_id "
	                                "LIKE 'postcall:conv_life:%'"),
	                 0); /* nothing was missed */
}

/* After a restart (or a rebalance) a partition whose lines were all handled and committed is
 * caught up before this consumer reads anything from it: the post-call gate opens at once. It
 * used to wait the whole gate window (30 s here): such a partition has no position yet. */
static void test_transcriber_lifecycle_post_call_after_restart(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"restart 1", "restart 2", "restart 3"};
	bool created, changed;
	int64_t t0;

	assert_int_equal(store_call_insert(f->t.db, "EL_restart", "d-12", NULL, &created), 0);
	assert_int_equal(
	    store_call_set_conversation(f->t.db, "EL_restart", "conv_restart", &changed), 0);
	trit_lines(&f->t, "EL_restart", "restart", 1, 3);
	assert_int_equal(count_conv(&f->t, "conv_restart", 3), 3);
	trit_stop(&f->p); /* drains and commits */
	trit_start(&f->t, &f->p, "transcriber", NULL);
	assert_int_equal(trit_wait_ready(&f->p, 30000), 200);
	t0 = time_mono_ms();
	trit_post_call(&f->t, "EL_restart", "pc-restart",
	               trit_transcript_body("EL_restart", "conv_restart", texts, 3));
	trit_flush(&f->t);
	assert_true(trit_wait_call(&f->t, "EL_restart", "status = 'completed'", 40000));
	if (time_mono_ms() - t0 > 10000)
		fail_msg("the post-call waited %lld ms for lines committed before the restart",
		         (long long)(time_mono_ms() - t0));
	trit_assert_lines(&f->t, "conv_restart", "restart", 3);
}

static void test_transcriber_lifecycle_failed_api_call(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"never stored"};
	size_t dead = 0;
	bool created, changed;

	assert_int_equal(store_call_insert(f->t.db, "EL_apifail", "d-8", NULL, &created), 0);
	assert_int_equal(
	    store_call_set_failed(f->t.db, "EL_apifail", "elevenlabs: HTTP 500", &changed), 0);
	trit_lines(&f->t, "EL_apifail", "fail", 1, 2);
	trit_post_call(&f->t, "EL_apifail", "pc-apifail",
	               trit_transcript_body("EL_apifail", "conv_apifail", texts, 1));
	trit_flush(&f->t);
	for (int i = 0; i < 150 && dead < 3; i++) {
		dead = dlq_count(&f->t, "webhooks.transcription", "EL_apifail", "call_failed") +
		       dlq_count(&f->t, "webhooks.post_call", "EL_apifail", "call_failed");
		if (dead < 3)
			ts_sleep_ms(100);
	}
	assert_int_equal(dead, 3);
	/* the audit row keeps its failure */
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM calls WHERE call_sid = 'EL_apifail' "
	                                "AND status = 'failed' AND failure_reason = 'elevenlabs: "
	                                "HTTP 500' AND driver_id = 'd-8'"),
	                 1);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE "
	                                "conversation_id = 'conv_apifail'"),
	                 0);
}

#define NCALLS 20
#define NLINES 100

/* A post-call webhook without a call_sid (no dynamic variables: the ingress keys it by its
 * conversation_id) finds its call through the conversation_id the dialer stored, also when the
 * dialer stores it after the webhook arrived; one whose conversation no call gets within the
 * unknown-call wait (5 s here) is dead-lettered as unknown_call_sid. */
static void test_transcriber_lifecycle_post_call_by_conversation(void **state)
{
	struct fixture *f = *state;
	const char *const texts[] = {"by conversation 1", "by conversation 2"};
	const char *const env[] = {"TRANSCRIBER_UNKNOWN_RETRY_MAX_MS=5000", NULL};
	size_t dead = 0;
	bool created, changed;

	trit_stop(&f->p);
	trit_start(&f->t, &f->p, "transcriber", env);

	assert_int_equal(store_call_insert(f->t.db, "EL_byconv", "d-10", NULL, &created), 0);
	assert_int_equal(store_call_set_conversation(f->t.db, "EL_byconv", "conv_byconv", &changed),
	                 0);
	trit_post_call(&f->t, NULL, "pc-byconv", body_without_call_sid("conv_byconv", texts, 2));
	trit_post_call(&f->t, NULL, "pc-nobody", body_without_call_sid("conv_nobody", texts, 2));
	trit_post_call(&f->t, NULL, "pc-late", body_without_call_sid("conv_late", texts, 2));
	trit_flush(&f->t);
	assert_true(trit_wait_call(&f->t, "EL_byconv",
	                           "status = 'completed' AND call_end_time IS NOT NULL", 20000));
	/* the final transcript's lines, which no per-turn webhook brought, are reconciled */
	assert_int_equal(count_conv(&f->t, "conv_byconv", 2), 2);
	/* the dialer records conv_late only now: the held post-call finds it */
	assert_int_equal(store_call_insert(f->t.db, "EL_late", "d-13", NULL, &created), 0);
	assert_int_equal(store_call_set_conversation(f->t.db, "EL_late", "conv_late", &changed), 0);
	assert_true(trit_wait_call(&f->t, "EL_late", "status = 'completed'", 20000));
	assert_int_equal(count_conv(&f->t, "conv_late", 2), 2);
	assert_int_equal(dlq_count(&f->t, "webhooks.post_call", "conv_late", "unknown_call_sid"),
	                 0);
	for (int i = 0; i < 150 && dead < 1; i++) {
		dead = dlq_count(&f->t, "webhooks.post_call", "conv_nobody", "unknown_call_sid");
		if (dead < 1)
			ts_sleep_ms(100);
	}
	assert_int_equal(dead, 1);
}

static void test_transcriber_lifecycle_concurrent_sequences(void **state)
{
	struct fixture *f = *state;
	struct trit_proc second, other_group;
	char sid[32], conv[32], ev[48], msg[48];

	for (int c = 0; c < NCALLS; c++) {
		snprintf(sid, sizeof sid, "EL_conc_%d", c);
		snprintf(conv, sizeof conv, "conv_conc_%d", c);
		trit_call(&f->t, sid, conv, NULL);
	}
	/* a second process joins the group, a third in its own group writes everything again */
	trit_start(&f->t, &second, "transcriber", NULL);
	trit_start(&f->t, &other_group, "transcriber-shadow", NULL);
	for (int i = 1; i <= NLINES; i++) {
		for (int c = 0; c < NCALLS; c++) {
			snprintf(sid, sizeof sid, "EL_conc_%d", c);
			snprintf(ev, sizeof ev, "conc-%d-%d", c, i);
			snprintf(msg, sizeof msg, "c%d %d", c, i);
			trit_line(&f->t, sid, ev, i % 2 ? "agent" : "user", msg);
		}
		if (i % 10 == 0) {
			trit_flush(&f->t);
			ts_sleep_ms(30); /* spread over the rebalance */
		}
	}
	trit_flush(&f->t);
	assert_int_equal(trit_wait_ll(&f->t,
	                              "SELECT count(*) FROM call_transcriptions WHERE "
	                              "conversation_id LIKE 'conv_conc_%'",
	                              NCALLS * NLINES, 60000),
	                 NCALLS * NLINES);
	/* the shadow group has read everything too: nothing more may arrive */
	for (int i = 0; i < 600; i++) {
		if (trit_metric(&other_group,
		                "transcriber_consumed_total{topic=\"webhooks.transcription\"}") >=
		        NCALLS * NLINES &&
		    trit_metric(&other_group, "kbus_consumer_lag") == 0)
			break;
		ts_sleep_ms(100);
	}
	ts_sleep_ms(500);
	for (int c = 0; c < NCALLS; c++) {
		char prefix[16];

		snprintf(conv, sizeof conv, "conv_conc_%d", c);
		snprintf(prefix, sizeof prefix, "c%d", c);
		trit_assert_lines(&f->t, conv, prefix, NLINES);
	}
	assert_true(trit_metric(&other_group, "transcriber_duplicates_total") +
	                trit_metric(&f->p, "transcriber_duplicates_total") +
	                trit_metric(&second, "transcriber_duplicates_total") >=
	            NCALLS * NLINES);
	trit_stop(&other_group);
	trit_stop(&second);
}

/* A schema behind this build (its ledger says migration 6): the transcriber is not ready, stores
 * nothing and says why; once migrated it stores what waited, in order. */
static void test_transcriber_lifecycle_waits_for_migrations(void **state)
{
	struct fixture *f = *state;
	int i;

	trit_stop(&f->p);
	trit_call(&f->t, "EL_gate", "conv_gate", NULL);
	ts_pg_exec(
	    f->t.schema,
	    "CREATE TABLE ledger_kept AS SELECT * FROM schema_migrations WHERE version >= 7");
	ts_pg_exec(f->t.schema, "DELETE FROM schema_migrations WHERE version >= 7");
	trit_start(&f->t, &f->p, "transcriber", NULL);
	trit_lines(&f->t, "EL_gate", "gate", 1, 3);
	trit_flush(&f->t);
	for (i = 0; i < 200 &&
	            !ts_file_contains(f->p.proc.log_path, "is at migration 6; this build needs 8");
	     i++)
		ts_sleep_ms(50);
	assert_true(ts_file_contains(
	    f->p.proc.log_path, "is at migration 6; this build needs 8 or later: run migrate up"));
	assert_int_equal(trit_wait_ready(&f->p, 1500), 503);
	assert_int_equal(trit_ll(&f->t, "SELECT count(*) FROM call_transcriptions WHERE "
	                                "conversation_id = 'conv_gate'"),
	                 0);

	ts_pg_exec(f->t.schema, "INSERT INTO schema_migrations SELECT * FROM ledger_kept");
	ts_pg_exec(f->t.schema, "DROP TABLE ledger_kept");
	assert_int_equal(count_conv(&f->t, "conv_gate", 3), 3);
	trit_assert_lines(&f->t, "conv_gate", "gate", 3);
	assert_int_equal(trit_wait_ready(&f->p, 10000), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transcriber_lifecycle_legacy_call),
	    cmocka_unit_test(test_transcriber_lifecycle_post_call_on_quiet_partition),
	    cmocka_unit_test(test_transcriber_lifecycle_full_call),
	    cmocka_unit_test(test_transcriber_lifecycle_post_call_after_restart),
	    cmocka_unit_test(test_transcriber_lifecycle_failed_api_call),
	    cmocka_unit_test(test_transcriber_lifecycle_post_call_by_conversation),
	    cmocka_unit_test(test_transcriber_lifecycle_concurrent_sequences),
	    cmocka_unit_test(test_transcriber_lifecycle_waits_for_migrations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
