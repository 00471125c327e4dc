/* test_kbus_faults: kbus against injected faults on a private devbroker: Produce request errors,
 * a broker that goes down and comes back (no acknowledged message lost, sync produce gives up
 * within its timeout), and an offset gap (retention deleted committed-to data) that is counted
 * and logged instead of being skipped silently, and a coordinator that stops answering commits
 * (one timeout per sweep, not one per partition). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "kbus.h"
#include "log.h"
#include "metrics.h"
#include "tsupport.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TOPIC "calls.requested"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void count_ok(void *opaque, rd_kafka_resp_err_t err, int32_t partition, int64_t offset)
{
	(void)partition;
	(void)offset;
	if (!err)
		atomic_fetch_add((atomic_int *)opaque, 1);
}

/* Queues keys "<tag>-0".."<tag>-<n-1>" (value = key); each acknowledgement counts in *ok. */
static void queue_keys(struct kbus_producer *p, const char *tag, int n, atomic_int *ok)
{
	for (int i = 0; i < n; i++) {
		char key[32];
		int len = snprintf(key, sizeof key, "%s-%d", tag, i);

		assert_int_equal(kbus_produce(p, TOPIC, key, (size_t)len, key, (size_t)len, NULL, 0,
		                              count_ok, ok),
		                 0);
	}
}

static struct kbus_producer *producer_new(const struct ts_broker *b, struct metrics *m)
{
	struct kbus_config kc = {.brokers = b->bootstrap, .client_id = "test", .metrics = m};
	char errstr[256];
	struct kbus_producer *p = kbus_producer_new(&kc, errstr, sizeof errstr);

	if (!p)
		fail_msg("kbus_producer_new: %s", errstr);
	return p;
}

static struct kbus_consumer *consumer_new(const struct ts_broker *b, const char *group,
                                          const char *topic, struct metrics *m)
{
	struct kbus_config kc = {
	    .brokers = b->bootstrap, .client_id = "test", .session_timeout_ms = 3000, .metrics = m};
	char errstr[256];
	struct kbus_consumer *c =
	    kbus_consumer_new(&kc, group, &topic, 1, NULL, NULL, errstr, sizeof errstr);

	if (!c)
		fail_msg("kbus_consumer_new: %s", errstr);
	return c;
}

/* "<tag>-<i>" with 0 <= i < n → i, else -1. */
static int key_index(const char *key, size_t len, const char *tag, int n)
{
	size_t tl = strlen(tag);
	char digits[16];
	char *end;
	long idx;

	if (!key || len <= tl + 1 || len - tl - 1 >= sizeof digits || memcmp(key, tag, tl) != 0 ||
	    key[tl] != '-')
		return -1;
	memcpy(digits, key + tl + 1, len - tl - 1);
	digits[len - tl - 1] = '\0';
	idx = strtol(digits, &end, 10);
	return *end || idx < 0 || idx >= n ? -1 : (int)idx;
}

/* Counts every key of the form "<tag>-<i>" (i < n) in topic; fails on a duplicate. */
static size_t topic_count_keys(const struct ts_broker *b, const char *tag, int n)
{
	struct ts_kmsg *msgs;
	size_t count = ts_kafka_read_all(b->bootstrap, TOPIC, &msgs), found = 0;
	char *seen = calloc((size_t)n, 1);

	for (size_t i = 0; i < count; i++) {
		int idx = key_index(msgs[i].key, msgs[i].key ? strlen(msgs[i].key) : 0, tag, n);

		if (idx < 0)
			continue;
		if (seen[idx])
			fail_msg("%s is in the topic twice", msgs[i].key);
		seen[idx] = 1;
		found++;
	}
	free(seen);
	ts_kmsgs_free(msgs, count);
	return found;
}

static void test_kbus_faults_produce_errors_are_retried_without_duplicates(void **state)
{
	struct ts_broker b;
	struct kbus_producer *p;
	atomic_int ok;

	(void)state;
	atomic_init(&ok, 0);
	ts_broker_start(&b, "", 3);
	p = producer_new(&b, NULL);
	/* the next Produce requests fail with retriable errors */
	assert_int_equal(
	    ts_broker_control(&b, "/errors?api=Produce&code=NOT_LEADER_FOR_PARTITION&count=3"),
	    200);
	assert_int_equal(
	    ts_broker_control(&b, "/errors?api=Produce&code=REQUEST_TIMED_OUT&count=2"), 200);
	queue_keys(p, "pe", 50, &ok);
	assert_int_equal(kbus_producer_flush(p, 20000), 0);
	assert_int_equal(atomic_load(&ok), 50);
	assert_int_equal(topic_count_keys(&b, "pe", 50), 50);
	kbus_producer_destroy(p, 1000);
	ts_broker_stop(&b);
}

/* Polls c until every key "<tag>-<i>" (i < n) was seen; commits as it goes. */
static bool consume_keys(struct kbus_consumer *c, const char *tag, int n, char *seen,
                         int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int have = 0;

	for (int i = 0; i < n; i++)
		have += seen[i] != 0;
	while (have < n && now_ms() < deadline) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(c, 200);
		int idx;

		if (!rkm)
			continue;
		idx = key_index(rkm->key, rkm->key_len, tag, n);
		if (idx >= 0 && !seen[idx]) {
			seen[idx] = 1;
			have++;
		}
		/* right after the broker is back a commit may fail: the next one covers it */
		if (kbus_consumer_commit(c, rd_kafka_topic_name(rkm->rkt), rkm->partition,
		                         rkm->offset + 1) != 0)
			fprintf(stderr, "commit failed (retried with the next message)\n");
		rd_kafka_message_destroy(rkm);
	}
	return have == n;
}

static void test_kbus_faults_broker_down_and_up(void **state)
{
	struct ts_broker b;
	struct kbus_producer *p;
	struct kbus_consumer *c;
	char errstr[256], seen_up[10] = {0}, seen_down[10] = {0};
	atomic_int ok;
	long long t0, took;

	(void)state;
	atomic_init(&ok, 0);
	ts_broker_start(&b, "", 3);
	p = producer_new(&b, NULL);
	c = consumer_new(&b, "downup", TOPIC, NULL);
	assert_true(kbus_producer_ready(p, 5000));
	for (int i = 0; i < 10; i++) {
		char key[32];
		int n = snprintf(key, sizeof key, "up-%d", i);
		if (kbus_produce_sync(p, TOPIC, key, (size_t)n, key, (size_t)n, NULL, 0, 5000,
		                      errstr, sizeof errstr))
			fail_msg("produce before the fault: %s", errstr);
	}
	assert_true(consume_keys(c, "up", 10, seen_up, 20000));

	assert_int_equal(ts_broker_control(&b, "/brokers/1/down"), 200);
	t0 = now_ms();
	assert_int_equal(
	    kbus_produce_sync(p, TOPIC, "x", 1, "x", 1, NULL, 0, 1500, errstr, sizeof errstr), -1);
	took = now_ms() - t0;
	assert_true(took >= 1400 && took < 3000);
	assert_false(kbus_producer_ready(p, 500));
	/* queued while the broker is down: delivered once it is back */
	queue_keys(p, "down", 10, &ok);
	ts_sleep_ms(1500);
	assert_int_equal(ts_broker_control(&b, "/brokers/1/up"), 200);
	assert_int_equal(kbus_producer_flush(p, 20000), 0);
	assert_int_equal(atomic_load(&ok), 10);
	assert_true(kbus_producer_ready(p, 5000));
	/* the consumer recovers too and sees every acknowledged message */
	assert_true(consume_keys(c, "down", 10, seen_down, 30000));
	assert_int_equal(topic_count_keys(&b, "down", 10), 10);
	kbus_consumer_close(c);
	kbus_producer_destroy(p, 1000);
	ts_broker_stop(&b);
}

/* Returns the first message c returns within timeout_ms (NULL if none). */
static rd_kafka_message_t *first_message(struct kbus_consumer *c, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (now_ms() < deadline) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(c, 200);
		if (rkm)
			return rkm;
	}
	return NULL;
}

static double gap_count(struct metrics *m, const char *topic)
{
	return metric_value(metrics_counter(m, "kbus_offset_gap_total", "", "topic", topic, NULL));
}

static void test_kbus_faults_offset_gap_is_counted_not_silent(void **state)
{
	struct metrics *m1 = metrics_new(), *m2 = metrics_new(), *m3 = metrics_new();
	const size_t big = 10 * 1024;
	char *value = malloc(big), errstr[256];
	struct kbus_producer *p;
	struct kbus_consumer *c;
	rd_kafka_message_t *rkm;
	struct ts_broker b;
	int64_t lo = -1, hi = -1;

	(void)state;
	ts_broker_start(&b, "", 3);
	assert_int_equal(ts_broker_control(&b, "/topics?name=gap&partitions=1"), 200);
	p = producer_new(&b, NULL);
	for (int i = 0; i < 3; i++)
		if (kbus_produce_sync(p, "gap", "k", 1, "small", 5, NULL, 0, 5000, errstr,
		                      sizeof errstr))
			fail_msg("produce: %s", errstr);
	/* the group commits offset 3 ... */
	c = consumer_new(&b, "gapgroup", "gap", m1);
	for (int i = 0; i < 3; i++) {
		rkm = first_message(c, 20000);
		assert_non_null(rkm);
		assert_int_equal(rkm->offset, i);
		assert_int_equal(kbus_consumer_commit(c, "gap", 0, rkm->offset + 1), 0);
		rd_kafka_message_destroy(rkm);
	}
	kbus_consumer_close(c);
	/* ... then ~7 MiB of incompressible data push offset 3 out of the mock's ~5 MiB */
	srand(42);
	for (int i = 0; i < 700; i++) {
		for (size_t k = 0; k < big; k++)
			value[k] = (char)rand();
		while (kbus_produce(p, "gap", "k", 1, value, big, NULL, 0, NULL, NULL) != 0)
			(void)kbus_producer_flush(p, 100);
	}
	assert_int_equal(kbus_producer_flush(p, 20000), 0);

	c = consumer_new(&b, "gapgroup", "gap", m2);
	assert_int_equal(kbus_consumer_watermarks(c, "gap", 0, &lo, &hi, 5000), 0);
	assert_true(lo > 3);
	assert_int_equal(hi, 703);
	rkm = first_message(c, 20000);
	assert_non_null(rkm);
	assert_int_equal(rkm->offset, lo); /* resumed at the earliest offset still there ... */
	rd_kafka_message_destroy(rkm);
	assert_true(gap_count(m2, "gap") == 1.0); /* ... and said so */
	kbus_consumer_close(c);

	/* a new group starts at the earliest offset without reporting a gap */
	c = consumer_new(&b, "newgroup", "gap", m3);
	rkm = first_message(c, 20000);
	assert_non_null(rkm);
	assert_int_equal(rkm->offset, lo);
	rd_kafka_message_destroy(rkm);
	assert_true(gap_count(m3, "gap") == 0.0);
	kbus_consumer_close(c);

	kbus_producer_destroy(p, 1000);
	ts_broker_stop(&b);
	free(value);
	metrics_destroy(m1);
	metrics_destroy(m2);
	metrics_destroy(m3);
}

/* A coordinator that stops answering costs a sweep of commits one timeout, not one per
 * partition: after an unanswered commit the next ones fail at once (callers keep their offsets
 * and retry), and commits succeed again once the coordinator answers. */
static void test_kbus_faults_unanswered_commit_stalls_a_sweep_once(void **state)
{
	struct ts_broker b;
	struct kbus_producer *p;
	struct kbus_consumer *c;
	char seen[8] = {0};
	long long t0, took, deadline;
	int failed = 0, rc = -1;
	atomic_int ok;

	(void)state;
	atomic_init(&ok, 0);
	ts_broker_start(&b, "", 4);
	p = producer_new(&b, NULL);
	queue_keys(p, "sw", 8, &ok);
	assert_int_equal(kbus_producer_flush(p, 20000), 0);
	c = consumer_new(&b, "sweep", TOPIC, NULL);
	assert_true(consume_keys(c, "sw", 8, seen, 30000));

	/* every answer now takes 15 s: longer than a commit waits */
	assert_int_equal(ts_broker_control(&b, "/rtt?broker=1&ms=15000"), 200);
	t0 = now_ms();
	for (int part = 0; part < 4; part++)
		failed += kbus_consumer_commit(c, TOPIC, part, 1) != 0;
	took = now_ms() - t0;
	assert_int_equal(failed, 4);
	if (took > 9000) /* one timeout is ~5 s; one per partition would be ~20 s */
		fail_msg("4 unanswered commits took %lld ms", took);

	/* the coordinator answers again: after the quiet period commits go through (the
	 * consumer may have to rejoin first: it keeps polling meanwhile) */
	assert_int_equal(ts_broker_control(&b, "/rtt?broker=1&ms=0"), 200);
	deadline = now_ms() + 60000;
	while (rc != 0 && now_ms() < deadline) {
		rd_kafka_message_t *rkm = kbus_consumer_poll(c, 200);

		if (rkm)
			rd_kafka_message_destroy(rkm);
		rc = kbus_consumer_commit(c, TOPIC, 0, 1);
	}
	assert_int_equal(rc, 0);
	kbus_consumer_close(c);
	kbus_producer_destroy(p, 1000);
	ts_broker_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kbus_faults_produce_errors_are_retried_without_duplicates),
	    cmocka_unit_test(test_kbus_faults_broker_down_and_up),
	    cmocka_unit_test(test_kbus_faults_offset_gap_is_counted_not_silent),
	    cmocka_unit_test(test_kbus_faults_unanswered_commit_stalls_a_sweep_once),
	};

	log_init("test_kbus_faults", LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
