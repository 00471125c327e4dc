/* test_topics: topics come from one definition and are never a surprise. Every service refuses to
 * start, naming the topic, when a topic it needs does not exist (Kafka runs with auto-creation
 * off); on real Kafka, `topics create` makes them as an operator would (admin API), idempotently,
 * `topics check` verifies them, and they take the messages the services may produce (4 MiB). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tsupport.h"

#include "kbus.h"
#include "kbus_topics.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs bin with env (NULL-ended) and asserts its exit status and that its output names what. */
static void expect_refusal(const char *bin, const char *const *env, int status, const char *what)
{
	char path[PATH_MAX], *out = NULL;
	const char *argv[] = {ts_bin(bin, path, sizeof path), NULL};
	int rc = ts_run_all(argv, env, &out, 30000);

	if (rc != status || !out || !strstr(out, what))
		fail_msg("%s: exit %d (expected %d), output lacks \"%s\":\n%s", bin, rc, status,
		         what, out ? out : "");
	free(out);
}

static void test_topics_missing_topic_stops_each_service(void **state)
{
	struct ts_broker b;
	char brokers[300], prefix[300], db[2100], want[400];

	(void)state;
	ts_broker_start(&b, "", 1);
	snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", b.bootstrap);
	/* a prefix whose topics nobody created (a typo in KAFKA_TOPIC_PREFIX) */
	snprintf(prefix, sizeof prefix, "KAFKA_TOPIC_PREFIX=%sabsent.", b.prefix);
	snprintf(db, sizeof db, "DATABASE_URL=%s", ts_pg_url());
	{
		const char *env[] = {brokers,
		                     prefix,
		                     "HTTP_LISTEN=127.0.0.1:0",
		                     "INGRESS_API_TOKEN=topics-test-token-0123456789",
		                     "ELEVENLABS_WEBHOOK_SECRET=whsec_topics",
		                     NULL};
		snprintf(want, sizeof want, "topic %sabsent.calls.requested does not exist",
		         b.prefix);
		expect_refusal("ingress", env, 2, want);
	}
	{
		const char *env[] = {brokers, prefix, db, "HTTP_LISTEN=127.0.0.1:0", NULL};
		snprintf(want, sizeof want, "topic %sabsent.webhooks.transcription does not exist",
		         b.prefix);
		expect_refusal("transcriber", env, 2, want);
	}
	{
		const char *env[] = {brokers,
		                     prefix,
		                     db,
		                     "HTTP_LISTEN=127.0.0.1:0",
		                     "DIALER_SWEEPER=false",
		                     "ELEVENLABS_BASE_URL=http://127.0.0.1:9",
		                     "ELEVENLABS_API_KEY=k",
		                     "ELEVENLABS_AGENT_ID=a",
		                     "ELEVENLABS_PHONE_NUMBER_ID=p",
		                     NULL};
		snprintf(want, sizeof want, "topic %sabsent.calls.requested does not exist",
		         b.prefix);
		expect_refusal("dialer", env, 1, want);
	}
	ts_broker_stop(&b);
}

/* Runs `topics CMD` against b with prefix; returns its output (malloc'd) and exit status. */
static int topics_run(const struct ts_broker *b, const char *cmd, const char *prefix, char **out)
{
	char path[PATH_MAX], brokers[300], pfx[300];
	const char *argv[] = {ts_bin("topics", path, sizeof path), cmd, NULL};
	const char *env[] = {brokers, pfx, NULL};

	snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", b->bootstrap);
	snprintf(pfx, sizeof pfx, "KAFKA_TOPIC_PREFIX=%s", prefix);
	return ts_run_all(argv, env, out, 60000);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void delivered(void *opaque, rd_kafka_resp_err_t err, int32_t partition, int64_t offset)
{
	(void)partition;
	(void)offset;
	*(rd_kafka_resp_err_t *)opaque = err;
}

static void test_topics_create_check_on_kafka(void **state)
{
	struct ts_broker b;
	char prefix[256], topic[300], errstr[256], *out = NULL, *big;
	struct kbus_config kc = {.client_id = "test_topics"};
	struct kbus_producer *p;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	const size_t big_len = 3 * 1024 * 1024; /* over Kafka's default ~1 MiB */

	(void)state;
	if (!ts_broker_kafka_mode())
		skip(); /* the devbroker creates its topics itself and has no CreateTopics */
	ts_broker_start(&b, "", 1);
	snprintf(prefix, sizeof prefix, "%stool.", b.prefix);

	assert_int_equal(topics_run(&b, "check", prefix, &out), 1);
	assert_non_null(strstr(out, "calls.requested does not exist"));
	free(out);
	assert_int_equal(topics_run(&b, "create", prefix, &out), 0);
	assert_int_equal(count(out, "created "), KBUS_TOPICS_COUNT);
	free(out);
	assert_int_equal(topics_run(&b, "create", prefix, &out), 0); /* idempotent */
	assert_int_equal(count(out, "exists "), KBUS_TOPICS_COUNT);
	free(out);
	assert_int_equal(topics_run(&b, "check", prefix, &out), 0);
	snprintf(topic, sizeof topic, "%swebhooks.post_call 6", prefix);
	assert_non_null(strstr(out, topic));
	free(out);

	/* a post-call the ingress may accept, wrapped, is larger than Kafka's default limit */
	kc.brokers = b.bootstrap;
	p = kbus_producer_new(&kc, errstr, sizeof errstr);
	assert_non_null(p);
	big = malloc(big_len);
	assert_non_null(big);
	memset(big, 'x', big_len);
	snprintf(topic, sizeof topic, "%swebhooks.post_call", prefix);
	assert_int_equal(kbus_produce(p, topic, "k", 1, big, big_len, NULL, 0, delivered, &err), 0);
	assert_int_equal(kbus_producer_flush(p, 30000), 0);
	if (err)
		fail_msg("a 3 MiB message to %s: %s", topic, rd_kafka_err2str(err));
	free(big);
	kbus_producer_destroy(p, 5000);
	ts_broker_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_topics_missing_topic_stops_each_service),
	    cmocka_unit_test(test_topics_create_check_on_kafka),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
