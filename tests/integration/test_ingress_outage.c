/* test_ingress_outage: the ingress when the broker misbehaves: down → 503 with Retry-After within
 * the delivery timeout and nothing published (a retry after recovery is), not ready while down;
 * a slow broker with 2000 requests waiting at once while health checks stay fast (waiting holds
 * no thread); produce errors retried by the idempotent producer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define PREFIX  ""
#define T_CALLS "calls.requested"
#define T_TRANS "webhooks.transcription"
#define NWAIT   2000 /* requests waiting at once (fewer under a low open-files limit) */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
	/* the bursts come from one address, the test's */
	const char *extra[] = {"INGRESS_DELIVERY_TIMEOUT_MS=1500",
	                       "INGRESS_RETRY_AFTER_S=7",
	                       "INGRESS_DRAIN_TIMEOUT_MS=5000",
	                       "INGRESS_CONNECTIONS_PER_ADDRESS=0",
	                       "LOG_LEVEL=info",
	                       NULL};

	*state = it_stack_new(PREFIX, 4, extra);
	return 0;
}

static int teardown(void **state)
{
	it_stack_free(*state);
	return 0;
}

static bool ready_is(const struct it_ingress *in, long want, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	do {
		struct ts_http_resp resp;
		long got;

		ts_http("GET", it_url(in, "/readyz"), NULL, NULL, 0, &resp);
		got = resp.status;
		ts_http_resp_free(&resp);
		if (got == want)
			return true;
		ts_sleep_ms(100);
	} while (now_ms() < deadline);
	return false;
}

#define REQ(id)                                                                         \
	"{\"callType\":\"c\",\"timestamp\":\"down-1\",\"drivers\":[{\"driverId\":\"" id \
	"\",\"driverName\":\"n\",\"phoneNumber\":\"2125550100\"}]}"
#define TRANS "{\"call_sid\":\"EL_down_1\",\"speaker\":\"agent\",\"message\":\"are you there?\"}"

static void test_outage_broker_down(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;
	char retry[16];
	long long t0, took;

	it_post_auth(&e->in, "/driver_data/call-elevenlabs", REQ("warm"), &resp);
	assert_int_equal(resp.status, 202);
	ts_http_resp_free(&resp);

	assert_int_equal(ts_broker_control(&e->broker, "/brokers/1/down"), 200);
	t0 = now_ms();
	it_post_auth(&e->in, "/driver_data/call-elevenlabs", REQ("77"), &resp);
	took = now_ms() - t0;
	assert_int_equal(resp.status, 503);
	assert_true(it_header(resp.headers, "Retry-After", retry, sizeof retry));
	assert_string_equal(retry, "7");
	assert_non_null(strstr(resp.body, "broker unavailable"));
	ts_http_resp_free(&resp);
	/* within the delivery timeout (1.5 s), give or take the 20 ms timer tick */
	if (took < 1400 || took > 3500) /* the upper bound leaves room for a loaded CI machine */
		fail_msg("503 after %lld ms, want ~1500", took);

	it_post_signed(&e->in, "/webhooks/elevenlabs/transcription", TRANS, IT_SECRET, time(NULL),
	               &resp);
	assert_int_equal(resp.status, 503);
	assert_true(it_header(resp.headers, "Retry-After", retry, sizeof retry));
	ts_http_resp_free(&resp);
	assert_true(ready_is(&e->in, 503, 5000));
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"broker_unavailable\"}") >=
	            2);

	assert_int_equal(ts_broker_control(&e->broker, "/brokers/1/up"), 200);
	assert_true(ready_is(&e->in, 200, 15000));
	ts_sleep_ms(2000); /* a message the ingress gave up on must not sneak in late */
	assert_int_equal(it_count_key(&e->broker, T_CALLS, "EL_77_down-1"), 0);
	assert_int_equal(it_count_key(&e->broker, T_TRANS, "EL_down_1"), 0);

	/* the client's retry after recovery goes through, once */
	it_post_auth(&e->in, "/driver_data/call-elevenlabs", REQ("77"), &resp);
	assert_int_equal(resp.status, 202);
	ts_http_resp_free(&resp);
	assert_int_equal(it_count_key(&e->broker, T_CALLS, "EL_77_down-1"), 1);
}

struct burst {
	const struct it_ingress *in;
	size_t n;
	char **bodies;
	char sigline[200];
	long statuses[NWAIT];
};

static void *burst_run(void *arg)
{
	struct burst *b = arg;
	const char *headers[] = {IT_JSON, b->sigline, NULL};

	it_multi_post(it_url(b->in, "/webhooks/elevenlabs/transcription"), headers,
	              (const char *const *)b->bodies, b->n, b->statuses);
	return NULL;
}

/* How many connections this process can open: NWAIT, or less under a low open-files limit. */
static size_t burst_size(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 200;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		(void)getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur >= NWAIT + 200)
		return NWAIT;
	return rl.rlim_cur > 400 ? (size_t)rl.rlim_cur - 200 : 200;
}

/* An outage under load fails every request, but each per-request warning is written at most
 * once a second (with the number held back): the log stays readable, the metrics count all. */
static void test_outage_failures_logged_once_a_second(void **state)
{
	struct it_stack *e = *state;
	struct burst *b = calloc(1, sizeof *b);
	size_t failed0 = it_log_count(&e->in, "\"request failed\""),
	       delivery0 = it_log_count(&e->in, "\"kafka delivery failed\""), failed, delivery;
	double rejected0 =
	    it_metric(&e->in, "ingress_rejected_total{reason=\"broker_unavailable\"}");
	char sig[160];
	long long t0 = now_ms(), secs;

	assert_non_null(b);
	b->in = &e->in;
	b->n = 300;
	b->bodies = calloc(b->n, sizeof *b->bodies);
	assert_non_null(b->bodies);
	it_sign(IT_SECRET, time(NULL), TRANS, sig, sizeof sig);
	snprintf(b->sigline, sizeof b->sigline, "ElevenLabs-Signature: %s", sig);
	for (size_t i = 0; i < b->n; i++)
		b->bodies[i] = TRANS;
	assert_int_equal(ts_broker_control(&e->broker, "/brokers/1/down"), 200);
	burst_run(b);
	for (size_t i = 0; i < b->n; i++)
		if (b->statuses[i] != 503)
			fail_msg("request %zu: status %ld, want 503", i, b->statuses[i]);
	ts_sleep_ms(500); /* the last delivery reports */
	secs = (now_ms() - t0) / 1000 + 1;
	failed = it_log_count(&e->in, "\"request failed\"") - failed0;
	delivery = it_log_count(&e->in, "\"kafka delivery failed\"") - delivery0;
	if (failed < 1 || failed > (size_t)secs + 1 || delivery > (size_t)secs + 1)
		fail_msg("%zu 'request failed' and %zu 'kafka delivery failed' lines for %zu "
		         "failures in %lld s",
		         failed, delivery, b->n, secs);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"broker_unavailable\"}") >=
	            rejected0 + (double)b->n);
	assert_int_equal(ts_broker_control(&e->broker, "/brokers/1/up"), 200);
	assert_true(ready_is(&e->in, 200, 15000));
	free(b->bodies);
	free(b);
}

/* Thousands of webhooks wait on a slow broker at once, on 2 HTTP threads, while /healthz stays
 * fast; all are acknowledged and answered 200. Its own ingress, with a delivery timeout that
 * a slow broker with 2000 messages queued stays well within. */
static void test_outage_slow_broker_many_waiting(void **state)
{
	struct it_stack *e = *state;
	struct it_ingress in;
	const char *extra[] = {"INGRESS_DELIVERY_TIMEOUT_MS=20000",
	                       "INGRESS_DRAIN_TIMEOUT_MS=30000",
	                       "INGRESS_CONNECTIONS_PER_ADDRESS=0", "LOG_LEVEL=info", NULL};
	struct burst *b = calloc(1, sizeof *b);
	char sig[160];
	pthread_t th;
	long long deadline, worst = 0;
	int64_t t = time(NULL);
	size_t before;

	assert_non_null(b);
	it_ingress_start(&in, &e->broker, PREFIX, extra, true);
	b->in = &in;
	b->n = burst_size();
	b->bodies = calloc(b->n, sizeof *b->bodies);
	assert_non_null(b->bodies);
	/* one signed body for all (the signature covers the body): each request is still its own
	 * message */
	it_sign(IT_SECRET, t, TRANS, sig, sizeof sig);
	snprintf(b->sigline, sizeof b->sigline, "ElevenLabs-Signature: %s", sig);
	for (size_t i = 0; i < b->n; i++)
		b->bodies[i] = TRANS;
	before = it_count_key(&e->broker, T_TRANS, "EL_down_1");

	assert_int_equal(ts_broker_control(&e->broker, "/rtt?broker=1&ms=2000"), 200);
	assert_int_equal(pthread_create(&th, NULL, burst_run, b), 0);
	/* wait until most of them are in flight at the same time */
	deadline = now_ms() + 20000;
	while (it_metric(&in, "ingress_in_flight") < (double)b->n * 0.8) {
		if (now_ms() > deadline)
			fail_msg("only %.0f of %zu requests in flight",
			         it_metric(&in, "ingress_in_flight"), b->n);
		ts_sleep_ms(20);
	}
	for (int i = 0; i < 10; i++) {
		struct ts_http_resp resp;
		long long t0 = now_ms(), took;

		ts_http("GET", it_url(&in, "/healthz"), NULL, NULL, 0, &resp);
		took = now_ms() - t0;
		assert_int_equal(resp.status, 200);
		ts_http_resp_free(&resp);
		if (took > worst)
			worst = took;
	}
	/* a design that held a thread per waiting request would need >= 2 s (the broker's RTT) */
	if (worst > 1000)
		fail_msg("/healthz took %lld ms while requests waited", worst);
	pthread_join(th, NULL);
	assert_int_equal(ts_broker_control(&e->broker, "/rtt?broker=1&ms=0"), 200);
	for (size_t i = 0; i < b->n; i++)
		if (b->statuses[i] != 200)
			fail_msg("request %zu: status %ld", i, b->statuses[i]);
	assert_int_equal(it_count_key(&e->broker, T_TRANS, "EL_down_1"), before + b->n);
	assert_int_equal(it_ingress_stop(&in, 30000), 0);
	free(b->bodies);
	free(b);
}

/* Retriable produce errors are retried by the idempotent producer: 200, exactly one message. */
static void test_outage_produce_errors_retried(void **state)
{
	struct it_stack *e = *state;
	struct ts_http_resp resp;

	assert_int_equal(
	    ts_broker_control(&e->broker,
	                      "/errors?api=Produce&code=NOT_LEADER_FOR_PARTITION&count=2"),
	    200);
	it_post_auth(&e->in, "/driver_data/call-elevenlabs", REQ("retry"), &resp);
	assert_int_equal(resp.status, 202);
	ts_http_resp_free(&resp);
	assert_int_equal(it_count_key(&e->broker, T_CALLS, "EL_retry_down-1"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_outage_broker_down),
	    cmocka_unit_test(test_outage_failures_logged_once_a_second),
	    cmocka_unit_test(test_outage_slow_broker_many_waiting),
	    cmocka_unit_test(test_outage_produce_errors_retried),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
