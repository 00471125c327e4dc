/* dialer_it: helpers of the dialer/elevensim integration tests (processes, stats, rows). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dialer_it.h"

#include "codec.h"
#include "db.h"
#include "kbus.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool dit_read_line(const char *path, char *out, size_t size)
{
	FILE *fp = fopen(path, "r");
	bool ok = false;

	if (!fp)
		return false;
	if (fgets(out, (int)size, fp)) {
		out[strcspn(out, "\r\n")] = '\0';
		ok = out[0] != '\0';
	}
	fclose(fp);
	return ok;
}

void dit_sim_start(struct dit_sim *s, const char *const *args, const char *const *env)
{
	static unsigned seq;
	const char *argv[64];
	char bin[512], url_file[512], health[160];
	const char *envv[32];
	int argc = 0, envc = 0;

	memset(s, 0, sizeof *s);
	snprintf(url_file, sizeof url_file, "%s/elevensim-%u.url", ts_tmpdir(), ++seq);
	remove(url_file);
	argv[argc++] = ts_bin("elevensim", bin, sizeof bin);
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	argv[argc++] = "--url-file";
	argv[argc++] = url_file;
	argv[argc++] = "--turns";
	argv[argc++] = "2";
	argv[argc++] = "--turn-delay-ms";
	argv[argc++] = "50";
	for (; args && *args && argc < 62; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	envv[envc++] = "ELEVENLABS_API_KEY=" DIT_API_KEY;
	envv[envc++] = "LOG_LEVEL=info";
	for (; env && *env && envc < 30; env++)
		envv[envc++] = *env;
	envv[envc] = NULL;
	ts_proc_start(&s->proc, argv, envv);
	for (int i = 0; i < 500 && !dit_read_line(url_file, s->url, sizeof s->url); i++) {
		if (!ts_proc_alive(&s->proc))
			fail_msg("elevensim exited at start; log %s", s->proc.log_path);
		ts_sleep_ms(20);
	}
	snprintf(health, sizeof health, "%s/healthz", s->url);
	if (!s->url[0] || !ts_wait_http_ok(health, 10000))
		fail_msg("elevensim did not come up; log %s", s->proc.log_path);
}

void dit_sim_stop(struct dit_sim *s)
{
	int rc;

	if (s->proc.pid <= 0)
		return;
	rc = ts_proc_stop(&s->proc, SIGTERM, 10000);
	s->proc.pid = 0;
	if (rc != 0)
		fail_msg("elevensim exited with %d on SIGTERM; log %s", rc, s->proc.log_path);
}

void dit_sim_config(const struct dit_sim *s, const char *json)
{
	struct ts_http_resp resp;
	char url[200];

	snprintf(url, sizeof url, "%s/sim/config", s->url);
	ts_http("PUT", url, NULL, json, strlen(json), &resp);
	if (resp.status != 200)
		fail_msg("PUT /sim/config %s: %ld %s", json, resp.status,
		         resp.body ? resp.body : "");
	ts_http_resp_free(&resp);
}

static json_t *dit_sim_stats(const struct dit_sim *s, const char *call_sid)
{
	struct ts_http_resp resp;
	char url[600];
	json_t *root;

	/* the tests' call_sids need no URL escaping */
	if (call_sid)
		snprintf(url, sizeof url, "%s/sim/stats?call_sid=%s", s->url, call_sid);
	else
		snprintf(url, sizeof url, "%s/sim/stats", s->url);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	if (resp.status != 200)
		fail_msg("GET %s: %ld", url, resp.status);
	root = json_loads(resp.body, 0, NULL);
	ts_http_resp_free(&resp);
	if (!root)
		fail_msg("GET %s: not JSON", url);
	return root;
}

json_t *dit_sim_call(const struct dit_sim *s, const char *call_sid)
{
	json_t *root = dit_sim_stats(s, call_sid);
	json_t *call = json_incref(json_object_get(json_object_get(root, "calls"), call_sid));

	json_decref(root);
	return call;
}

json_t *dit_sim_totals(const struct dit_sim *s)
{
	json_t *root = dit_sim_stats(s, NULL);
	json_t *totals = json_incref(json_object_get(root, "totals"));

	json_decref(root);
	return totals;
}

int dit_sim_requests(const struct dit_sim *s, const char *call_sid)
{
	json_t *call = dit_sim_call(s, call_sid);
	int n = (int)json_integer_value(json_object_get(call, "outbound_requests"));

	json_decref(call);
	return n;
}

bool dit_wait_requests(const struct dit_sim *s, const char *call_sid, int n, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (dit_sim_requests(s, call_sid) >= n)
			return true;
		ts_sleep_ms(50);
	}
	return false;
}

/* The topic prefix of b, after checking that the caller's prefix is the one b was started with
 * (on Kafka, b->prefix has the test's own namespace in front of it). */
static const char *dit_prefix(const struct ts_broker *b, const char *prefix)
{
	size_t have = strlen(b->prefix), want = strlen(prefix);

	if (b->kafka ? have < want || strcmp(b->prefix + have - want, prefix) != 0
	             : strcmp(b->prefix, prefix) != 0)
		fail_msg("topic prefix %s is not the broker's (%s)", prefix, b->prefix);
	return b->prefix;
}

void dit_dialer_start(struct dit_dialer *d, const struct ts_broker *b, const char *prefix,
                      const char *schema, const char *sim_url, const char *const *extra)
{
	dit_dialer_start_bin(d, "dialer", b, prefix, schema, sim_url, extra);
}

void dit_dialer_start_bin(struct dit_dialer *d, const char *name, const struct ts_broker *b,
                          const char *prefix, const char *schema, const char *sim_url,
                          const char *const *extra)
{
	char bin[512], health[96], group[200];
	char e_brokers[300], e_prefix[200], e_group[240], e_db[512], e_schema[128], e_listen[64],
	    e_base[200];
	const char *argv[2];
	const char *env[64];
	int n = 0;

	memset(d, 0, sizeof *d);
	d->port = ts_free_port();
	snprintf(e_brokers, sizeof e_brokers, "KAFKA_BROKERS=%s", b->bootstrap);
	snprintf(e_prefix, sizeof e_prefix, "KAFKA_TOPIC_PREFIX=%s", dit_prefix(b, prefix));
	snprintf(e_group, sizeof e_group, "DIALER_GROUP=%s",
	         ts_broker_group(b, "dialer", group, sizeof group));
	snprintf(e_db, sizeof e_db, "DATABASE_URL=%s", ts_pg_url());
	snprintf(e_schema, sizeof e_schema, "DB_SCHEMA=%s", schema);
	snprintf(e_listen, sizeof e_listen, "HTTP_LISTEN=127.0.0.1:%u", d->port);
	snprintf(e_base, sizeof e_base, "ELEVENLABS_BASE_URL=%s", sim_url);
	env[n++] = e_brokers;
	env[n++] = e_prefix;
	env[n++] = e_group;
	env[n++] = e_db;
	env[n++] = e_schema;
	env[n++] = e_listen;
	env[n++] = e_base;
	env[n++] = "ELEVENLABS_API_KEY=" DIT_API_KEY;
	env[n++] = "ELEVENLABS_AGENT_ID=" DIT_AGENT;
	env[n++] = "ELEVENLABS_PHONE_NUMBER_ID=" DIT_PHONE_ID;
	env[n++] = "DIALER_DISPATCHER_NAME=Maria";
	env[n++] = "KAFKA_SESSION_TIMEOUT_MS=3000";
	env[n++] = "DIALER_COMMIT_INTERVAL_MS=50";
	env[n++] = "DIALER_RETRY_BASE_MS=50";
	env[n++] = "DIALER_RETRY_MAX_MS=200";
	env[n++] = "DIALER_REQUEST_TIMEOUT_MS=5000";
	env[n++] = "DIALER_CONNECT_TIMEOUT_MS=1000";
	env[n++] = "DIALER_DB_RETRY_MAX_MS=300";
	env[n++] = "DIALER_SWEEPER=false";
	env[n++] = "LOG_LEVEL=info";
	for (; extra && *extra && n < 63; extra++)
		env[n++] = *extra;
	env[n] = NULL;
	argv[0] = ts_bin(name, bin, sizeof bin);
	argv[1] = NULL;
	ts_proc_start(&d->proc, argv, env);
	d->running = true;
	snprintf(health, sizeof health, "http://127.0.0.1:%u/healthz", d->port);
	if (!ts_wait_http_ok(health, 15000))
		fail_msg("dialer did not come up; log %s", d->proc.log_path);
}

void dit_stack_start(struct dit_stack *st, const char *name, const char *prefix, int partitions,
                     const char *const *sim_args)
{
	ts_pg_schema_new(name, true, st->schema, sizeof st->schema);
	ts_broker_start(&st->broker, prefix, partitions);
	dit_sim_start(&st->sim, sim_args, NULL);
}

void dit_stack_stop(struct dit_stack *st)
{
	dit_sim_stop(&st->sim);
	ts_broker_stop(&st->broker);
	ts_pg_schema_drop(st->schema);
}

int dit_dialer_stop(struct dit_dialer *d, int sig, int timeout_ms)
{
	if (!d->running)
		return -1;
	d->running = false;
	return ts_proc_stop(&d->proc, sig, timeout_ms);
}

double dit_metric(const struct dit_dialer *d, const char *series)
{
	struct ts_http_resp resp;
	char url[96];
	double v = 0;

	snprintf(url, sizeof url, "http://127.0.0.1:%u/metrics", d->port);
	ts_http("GET", url, NULL, NULL, 0, &resp);
	if (resp.status != 200)
		fail_msg("GET %s: %ld", url, resp.status);
	(void)ts_metric_value(resp.body, series, &v);
	ts_http_resp_free(&resp);
	return v;
}

int dit_assigned(const struct dit_dialer *d)
{
	FILE *fp = fopen(d->proc.log_path, "r");
	char line[4096];
	int count = -1;

	if (!fp)
		return -1;
	while (fgets(line, sizeof line, fp)) {
		json_t *o;

		if (!strstr(line, "kafka partitions assigned"))
			continue;
		o = json_loads(line, 0, NULL);
		if (o)
			count = (int)json_integer_value(json_object_get(o, "count"));
		json_decref(o);
	}
	fclose(fp);
	return count;
}

/* The calls.requested value for call_sid (malloc'd). */
static char *dit_request_value(const char *call_sid, const char *driver_id)
{
	json_t *viol = json_pack("{s:s, s:[{s:s, s:s}]}", "tripId", "TRIP-IT", "violationDetails",
	                         "type", "speeding", "description", "72 mph in a 55 zone");
	struct codec_call_requested m = {
	    .call_sid = call_sid,
	    .driver_id = driver_id,
	    .driver_name = "Ada Lovelace",
	    .phone_number = "+15550100001",
	    .trip_id = "TRIP-IT",
	    .call_type = "violation_followup",
	    .custom_rules = "Keep it short.",
	    .violations = viol,
	    .requested_at = "2025-11-21T10:30:00Z",
	};
	json_t *root = codec_call_requested_encode(&m);
	char *value = root ? codec_dump(root, NULL) : NULL;

	if (!value)
		fail_msg("could not encode calls.requested for %s", call_sid);
	json_decref(root);
	json_decref(viol);
	return value;
}

void dit_publish(const struct ts_broker *b, const char *prefix, const char *call_sid,
                 const char *driver_id)
{
	char *value = dit_request_value(call_sid, driver_id);
	char topic[256];

	(void)dit_prefix(b, prefix);
	ts_broker_topic(b, KBUS_TOPIC_CALLS_REQUESTED, topic, sizeof topic);
	ts_kafka_produce(b->bootstrap, topic, call_sid, value, NULL);
	free(value);
}

static void dit_delivered(void *opaque, rd_kafka_resp_err_t err, int32_t partition, int64_t offset)
{
	int *failed = opaque;

	(void)partition;
	(void)offset;
	if (err)
		__atomic_add_fetch(failed, 1, __ATOMIC_SEQ_CST);
}

void dit_publish_many(const struct ts_broker *b, const char *prefix, const char *sid_prefix, int n)
{
	struct kbus_config conf = {.brokers = b->bootstrap,
	                           .topic_prefix = dit_prefix(b, prefix),
	                           .client_id = "dialer_it"};
	struct kbus_producer *p;
	char topic[256], err[256], sid[256];
	int failed = 0;

	if (kbus_topic(&conf, KBUS_TOPIC_CALLS_REQUESTED, false, topic, sizeof topic))
		fail_msg("topic name too long");
	p = kbus_producer_new(&conf, err, sizeof err);
	if (!p)
		fail_msg("kbus_producer_new: %s", err);
	for (int i = 0; i < n; i++) {
		char *value;

		snprintf(sid, sizeof sid, "%s%04d", sid_prefix, i);
		value = dit_request_value(sid, "many");
		if (kbus_produce(p, topic, sid, strlen(sid), value, strlen(value), NULL, 0,
		                 dit_delivered, &failed))
			fail_msg("kbus_produce %s failed", sid);
		free(value);
	}
	if (kbus_producer_flush(p, 30000))
		fail_msg("flush timed out");
	kbus_producer_destroy(p, 1000);
	if (failed)
		fail_msg("%d of %d requests were not delivered", failed, n);
}

bool dit_call(const char *schema, const char *call_sid, struct store_call *out)
{
	static struct db *db;
	static char db_schema[128];
	char err[256];
	bool found = false;

	if (db && strcmp(db_schema, schema) != 0) {
		db_close(db);
		db = NULL;
	}
	if (!db) {
		db = db_open(ts_pg_url(), schema, err, sizeof err);
		if (!db)
			fail_msg("db_open: %s", err);
		snprintf(db_schema, sizeof db_schema, "%s", schema);
	}
	if (db_ensure(db) || store_call_get(db, call_sid, out, &found))
		fail_msg("store_call_get %s: %s", call_sid, db_errmsg(db));
	return found;
}

bool dit_wait_call(const char *schema, const char *call_sid, const char *status, int timeout_ms)
{
	struct store_call c;

	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (dit_call(schema, call_sid, &c) && strcmp(c.status, status) == 0 &&
		    (strcmp(status, STORE_CALL_IN_PROGRESS) != 0 || c.has_conversation_id))
			return true;
		ts_sleep_ms(50);
	}
	return false;
}
