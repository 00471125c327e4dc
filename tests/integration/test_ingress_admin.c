/* test_ingress_admin: the ingress's admin address and readiness. With INGRESS_ADMIN_LISTEN set,
 * /metrics is served there and not on the public address; /readyz answers from a state a
 * thread of its own refreshes, so while the broker is down every probe is answered at once
 * (no metadata request on an HTTP thread). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFIX "ita."

struct env {
	struct it_stack *st;
	unsigned admin_port;
	char admin[64]; /* "http://127.0.0.1:port" */
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	char listen[64];
	const char *extra[] = {listen, NULL};

	assert_non_null(e);
	e->admin_port = ts_free_port();
	snprintf(listen, sizeof listen, "INGRESS_ADMIN_LISTEN=127.0.0.1:%u", e->admin_port);
	snprintf(e->admin, sizeof e->admin, "http://127.0.0.1:%u", e->admin_port);
	e->st = it_stack_new(PREFIX, 1, extra);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	it_stack_free(e->st);
	free(e);
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET base + path: the status; the body into resp when it is not NULL (caller frees). */
static long get(const char *base, const char *path, struct ts_http_resp *resp)
{
	struct ts_http_resp own;
	char url[200];
	long status;

	snprintf(url, sizeof url, "%s%s", base, path);
	ts_http("GET", url, NULL, NULL, 0, resp != NULL ? resp : &own);
	status = resp != NULL ? resp->status : own.status;
	if (resp == NULL)
		ts_http_resp_free(&own);
	return status;
}

static void test_admin_metrics_moved(void **state)
{
	struct env *e = *state;
	struct ts_http_resp resp;
	double v = -1;

	/* some traffic on the public address to count */
	assert_int_equal(get(e->st->in.base, "/healthz", NULL), 200);
	assert_int_equal(get(e->admin, "/metrics", &resp), 200);
	assert_true(ts_metric_value(
	    resp.body, "ingress_requests_total{route=\"healthz\",status=\"200\"}", &v));
	assert_true(v >= 1);
	ts_http_resp_free(&resp);
	/* the public address no longer serves them */
	assert_int_equal(get(e->st->in.base, "/metrics", &resp), 404);
	assert_null(strstr(resp.body, "ingress_requests_total"));
	ts_http_resp_free(&resp);
	/* health on both; nothing of the public API on the admin address */
	assert_int_equal(get(e->admin, "/healthz", NULL), 200);
	assert_int_equal(get(e->admin, "/readyz", NULL), 200);
	assert_int_equal(get(e->st->in.base, "/readyz", NULL), 200);
	assert_int_equal(get(e->admin, "/calls/EL_1", NULL), 404);
	{
		const char *h[] = {IT_JSON, NULL};
		char url[200];

		snprintf(url, sizeof url, "%s/webhooks/elevenlabs/post-call", e->admin);
		ts_http("POST", url, h, "{}", 2, &resp);
		assert_int_equal(resp.status, 404); /* the admin address has no webhook route */
		ts_http_resp_free(&resp);
		ts_http("POST", it_url(&e->st->in, "/webhooks/elevenlabs/post-call"), h, "{}", 2,
		        &resp);
		assert_int_equal(resp.status, 401); /* the public one has */
		ts_http_resp_free(&resp);
	}
}

/* While the broker is down, /readyz is 503 and answered at once, every time: the broker is
 * asked by the readiness thread, never by the request. Then it turns 200 again. */
static void test_admin_readyz_off_the_http_threads(void **state)
{
	struct env *e = *state;
	long long slowest = 0;
	bool down = false;

	assert_int_equal(ts_broker_control(&e->st->broker, "/brokers/1/down"), 200);
	for (int i = 0; i < 100 && !down; i++) {
		down = get(e->st->in.base, "/readyz", NULL) == 503;
		if (!down)
			ts_sleep_ms(100);
	}
	assert_true(down);
	/* 3 s of probes, across several of the thread's checks (each waits 500 ms on the
	 * broker): none waits for one */
	for (int i = 0; i < 30; i++) {
		long long t0 = now_ms(), took;

		assert_int_equal(get(e->st->in.base, "/readyz", NULL), 503);
		assert_int_equal(get(e->admin, "/readyz", NULL), 503);
		took = now_ms() - t0;
		if (took > slowest)
			slowest = took;
		ts_sleep_ms(100);
	}
	print_message("slowest pair of /readyz while the broker was down: %lld ms\n", slowest);
	if (slowest > 300)
		fail_msg("a /readyz pair took %lld ms: it waited for the broker", slowest);
	assert_int_equal(ts_broker_control(&e->st->broker, "/brokers/1/up"), 200);
	down = true;
	for (int i = 0; i < 150 && down; i++) {
		down = get(e->st->in.base, "/readyz", NULL) != 200;
		if (down)
			ts_sleep_ms(100);
	}
	assert_false(down);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admin_metrics_moved),
	    cmocka_unit_test(test_admin_readyz_off_the_http_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
