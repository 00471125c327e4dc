/* transcriber_it: shared setup and checks of the transcriber's integration tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "transcriber_it.h"

#include "codec.h"
#include "db.h"
#include "kbus.h"
#include "store_calls.h"
#include "timeutil.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void trit_setup(struct trit *t, const char *name, int partitions)
{
	struct kbus_config kc = {0};
	char errstr[512];

	memset(t, 0, sizeof *t);
	ts_pg_schema_new(name, true, t->schema, sizeof t->schema);
	ts_broker_start(&t->broker, "", partitions);
	kc.brokers = t->broker.bootstrap;
	kc.client_id = "trit";
	t->producer = kbus_producer_new(&kc, errstr, sizeof errstr);
	if (!t->producer)
		fail_msg("producer: %s", errstr);
	t->db = db_open(ts_pg_url(), t->schema, errstr, sizeof errstr);
	if (!t->db || !db_ok(t->db))
		fail_msg("db_open: %s", t->db ? db_errmsg(t->db) : errstr);
}

void trit_teardown(struct trit *t)
{
	kbus_producer_destroy(t->producer, 5000);
	db_close(t->db);
	ts_broker_stop(&t->broker);
	ts_pg_schema_drop(t->schema);
}

void trit_call(struct trit *t, const char *call_sid, const char *conversation_id,
               const char *failed_reason)
{
	bool created = false, changed = false;

	if (store_call_insert(t->db, call_sid, "driver-1", "trip-1", &created) < 0 || !created)
		fail_msg("insert call %s: %s", call_sid, db_errmsg(t->db));
	if (conversation_id &&
	    (store_call_set_conversation(t->db, call_sid, conversation_id, &changed) < 0 ||
	     !changed))
		fail_msg("set conversation of %s: %s", call_sid, db_errmsg(t->db));
	if (failed_reason &&
	    (store_call_set_failed(t->db, call_sid, failed_reason, &changed) < 0 || !changed))
		fail_msg("fail call %s: %s", call_sid, db_errmsg(t->db));
}

static void trit_produce(struct trit *t, const char *base, const char *key, const char *value)
{
	struct kbus_config kc = {.brokers = t->broker.bootstrap, .topic_prefix = t->broker.prefix};
	char topic[256];

	assert_int_equal(kbus_topic(&kc, base, false, topic, sizeof topic), 0);
	if (kbus_produce(t->producer, topic, key, key ? strlen(key) : 0, value, strlen(value), NULL,
	                 0, NULL, NULL) < 0)
		fail_msg("produce to %s failed", topic);
}

static void trit_produce_json(struct trit *t, const char *base, const char *key, json_t *root)
{
	char *text;

	assert_non_null(root);
	text = codec_dump(root, NULL);
	assert_non_null(text);
	trit_produce(t, base, key, text);
	free(text);
	json_decref(root);
}

void trit_line(struct trit *t, const char *call_sid, const char *event_id, const char *speaker,
               const char *message)
{
	char now[40];
	struct codec_transcription m = {
	    .event_id = event_id,
	    .received_at = now,
	    .call_sid = call_sid,
	    .speaker = speaker,
	    .message = message,
	};

	time_format_iso_ms(time_now_ms(), now, sizeof now);
	trit_produce_json(t, KBUS_TOPIC_TRANSCRIPTION, call_sid, codec_transcription_encode(&m));
}

void trit_lines(struct trit *t, const char *sid, const char *prefix, int first, int last)
{
	char ev[64], msg[64];

	for (int i = first; i <= last; i++) {
		snprintf(ev, sizeof ev, "%s-ev-%d", sid, i);
		snprintf(msg, sizeof msg, "%s %d", prefix, i);
		trit_line(t, sid, ev, i % 2 ? "agent" : "user", msg);
	}
	trit_flush(t);
}

void trit_post_call(struct trit *t, const char *call_sid, const char *event_id, json_t *body)
{
	char now[40];
	struct codec_post_call m = {
	    .event_id = event_id,
	    .received_at = now,
	    .call_sid = call_sid,
	    .body = body,
	};
	json_t *data = json_object_get(body, "data");
	const char *key =
	    call_sid ? call_sid : json_string_value(json_object_get(data, "conversation_id"));

	time_format_iso_ms(time_now_ms(), now, sizeof now);
	trit_produce_json(t, KBUS_TOPIC_POST_CALL, key, codec_post_call_encode(&m));
	json_decref(body);
}

json_t *trit_transcript_body(const char *call_sid, const char *conversation_id,
                             const char *const *texts, size_t n)
{
	json_t *turns = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(turns,
		                      json_pack("{s:s, s:s, s:i}", "role", i % 2 ? "user" : "agent",
		                                "message", texts[i], "time_in_call_secs", (int)i));
	return json_pack("{s:s, s:i, s:{s:s, s:s, s:s, s:o, s:{s:i, s:i}, s:{s:{s:s}}}}", "type",
	                 "post_call_transcription", "event_timestamp", 1763719200, "data",
	                 "agent_id", "agent_1", "conversation_id", conversation_id, "status",
	                 "done", "transcript", turns, "metadata", "start_time_unix_secs",
	                 1763719000, "call_duration_secs", 95,
	                 "conversation_initiation_client_data", "dynamic_variables", "call_sid",
	                 call_sid ? call_sid : "");
}

void trit_raw(struct trit *t, const char *base_topic, const char *key, const char *value)
{
	trit_produce(t, base_topic, key, value);
}

void trit_flush(struct trit *t)
{
	assert_int_equal(kbus_producer_flush(t->producer, 30000), 0);
}

void trit_start(struct trit *t, struct trit_proc *p, const char *group, const char *const *env)
{
	trit_start_bin(t, p, "transcriber", group, env);
}

void trit_start_bin(struct trit *t, struct trit_proc *p, const char *name, const char *group,
                    const char *const *env)
{
	char bin[PATH_MAX], e_brokers[300], e_db[2100], e_schema[96], e_listen[64], e_group[400],
	    e_prefix[200], gname[300], url[128];
	const char *argv[] = {ts_bin(name, bin, sizeof bin), NULL};
	const char *full[32];
	size_t n = 0;

	p->port = ts_free_port();
	snprintf(e_brokers, sizeof e_brokers, "KAFKA_BROKERS=%s", t->broker.bootstrap);
	snprintf(e_db, sizeof e_db, "DATABASE_URL=%s", ts_pg_url());
	snprintf(e_schema, sizeof e_schema, "DB_SCHEMA=%s", t->schema);
	snprintf(e_listen, sizeof e_listen, "HTTP_LISTEN=127.0.0.1:%u", p->port);
	snprintf(e_group, sizeof e_group, "TRANSCRIBER_GROUP=%s",
	         ts_broker_group(&t->broker, group, gname, sizeof gname));
	snprintf(e_prefix, sizeof e_prefix, "KAFKA_TOPIC_PREFIX=%s", t->broker.prefix);
	full[n++] = e_brokers;
	full[n++] = e_prefix;
	full[n++] = e_db;
	full[n++] = e_schema;
	full[n++] = e_listen;
	full[n++] = e_group;
	full[n++] = "KAFKA_SESSION_TIMEOUT_MS=3000";
	full[n++] = "LOG_LEVEL=info";
	for (size_t i = 0; env && env[i] && n < 31; i++)
		full[n++] = env[i];
	full[n] = NULL;
	ts_proc_start(&p->proc, argv, full);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/healthz", p->port);
	if (!ts_wait_http_ok(url, 15000))
		fail_msg("transcriber did not come up; log: %s", p->proc.log_path);
}

void trit_stop(struct trit_proc *p)
{
	int rc = ts_proc_stop(&p->proc, SIGTERM, 20000);

	if (rc != 0)
		fail_msg("transcriber exited with %d; log: %s", rc, p->proc.log_path);
}

char *trit_run(struct trit *t, const char *const *args, const char *const *env)
{
	char *out = NULL;
	int rc = trit_run_bin(t, "transcriber", args, env, &out);

	if (rc != 0)
		fail_msg("transcriber %s exited with %d", args[0], rc);
	return out;
}

int trit_run_bin(struct trit *t, const char *name, const char *const *args, const char *const *env,
                 char **out)
{
	char bin[PATH_MAX], e_brokers[300], e_db[2100], e_schema[96], e_prefix[200], e_group[400],
	    gname[300];
	const char *argv[16], *full[32];
	size_t n = 0, k = 0;
	int rc;

	*out = NULL;
	argv[n++] = ts_bin(name, bin, sizeof bin);
	for (size_t i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(e_brokers, sizeof e_brokers, "KAFKA_BROKERS=%s", t->broker.bootstrap);
	snprintf(e_db, sizeof e_db, "DATABASE_URL=%s", ts_pg_url());
	snprintf(e_schema, sizeof e_schema, "DB_SCHEMA=%s", t->schema);
	snprintf(e_prefix, sizeof e_prefix, "KAFKA_TOPIC_PREFIX=%s", t->broker.prefix);
	/* replay and redrive name their private groups after the service's group */
	snprintf(e_group, sizeof e_group, "TRANSCRIBER_GROUP=%s",
	         ts_broker_group(&t->broker, "transcriber", gname, sizeof gname));
	full[k++] = e_brokers;
	full[k++] = e_prefix;
	full[k++] = e_group;
	full[k++] = e_db;
	full[k++] = e_schema;
	full[k++] = "KAFKA_SESSION_TIMEOUT_MS=3000";
	full[k++] = "LOG_LEVEL=warn";
	for (size_t i = 0; env && env[i] && k < 31; i++)
		full[k++] = env[i];
	full[k] = NULL;
	rc = ts_run(argv, full, out, 120000);
	fprintf(stderr, "%s %s printed:\n%s", name, args[0], *out ? *out : "");
	return rc;
}

long long trit_ll(struct trit *t, const char *sql)
{
	return ts_pg_query_ll(t->schema, sql);
}

long long trit_wait_ll(struct trit *t, const char *sql, long long expect, int timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	long long v;

	while ((v = trit_ll(t, sql)) != expect && time_mono_ms() < deadline)
		ts_sleep_ms(50);
	return v;
}

bool trit_wait_call(struct trit *t, const char *call_sid, const char *where, int timeout_ms)
{
	char sql[512];

	snprintf(sql, sizeof sql, "SELECT count(*) FROM calls WHERE call_sid = '%s' AND (%s)",
	         call_sid, where);
	return trit_wait_ll(t, sql, 1, timeout_ms) == 1;
}

double trit_metric(const struct trit_proc *p, const char *series)
{
	struct ts_http_resp resp;
	char url[128];
	double v = 0;

	snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", p->port);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	(void)ts_metric_value(resp.body, series, &v);
	ts_http_resp_free(&resp);
	return v;
}

long trit_wait_ready(const struct trit_proc *p, int timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	struct ts_http_resp resp;
	char url[128];
	long status;

	snprintf(url, sizeof url, "http://127.0.0.1:%u/readyz", p->port);
	for (;;) {
		ts_http("GET", url, NULL, NULL, 0, &resp);
		status = resp.status;
		ts_http_resp_free(&resp);
		if (status == 200 || time_mono_ms() >= deadline)
			return status;
		ts_sleep_ms(100);
	}
}

size_t trit_dlq(struct trit *t, const char *base_topic, struct ts_kmsg **out)
{
	char topic[256];

	snprintf(topic, sizeof topic, "%s%s.dlq", t->broker.prefix, base_topic);
	return ts_kafka_read_all(t->broker.bootstrap, topic, out);
}

void trit_assert_lines(struct trit *t, const char *conversation_id, const char *prefix, int n)
{
	char sql[512], *got, expect[64];

	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM call_transcriptions WHERE conversation_id = '%s'",
	         conversation_id);
	if (trit_ll(t, sql) != n)
		fail_msg("%s: %lld lines, expected %d", conversation_id, trit_ll(t, sql), n);
	/* sequence numbers 1..n, each line "<prefix> <seq>" */
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM call_transcriptions WHERE conversation_id = '%s' AND "
	         "(sequence_number < 1 OR sequence_number > %d OR message <> '%s ' || "
	         "sequence_number)",
	         conversation_id, n, prefix);
	if (trit_ll(t, sql) != 0) {
		snprintf(sql, sizeof sql,
		         "SELECT string_agg(sequence_number || ':' || message, ', ' ORDER BY "
		         "sequence_number) FROM call_transcriptions WHERE conversation_id = '%s'",
		         conversation_id);
		got = ts_pg_query(t->schema, sql);
		snprintf(expect, sizeof expect, "'%s <seq>'", prefix);
		fail_msg("%s: lines out of order, expected %s: %s", conversation_id, expect,
		         got ? got : "");
	}
}
