/* test_metrics: exact Prometheus text for counters, gauges, labels and histograms; registry rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>

#include "metrics.h"

static void test_metrics_exposition_exact(void **state)
{
	static const double bounds[] = {0.1, 0.5, 1};
	static const char want[] = "# HELP cp_requests_total Requests handled.\n"
	                           "# TYPE cp_requests_total counter\n"
	                           "cp_requests_total 3\n"
	                           "# HELP cp_inflight In flight.\n"
	                           "# TYPE cp_inflight gauge\n"
	                           "cp_inflight -2.5\n"
	                           "# HELP cp_http_total HTTP answers.\n"
	                           "# TYPE cp_http_total counter\n"
	                           "cp_http_total{route=\"/x\",code=\"200\"} 2\n"
	                           "cp_http_total{route=\"/y\",code=\"404\"} 1\n"
	                           "# HELP cp_latency_seconds Latency.\n"
	                           "# TYPE cp_latency_seconds histogram\n"
	                           "cp_latency_seconds_bucket{le=\"0.1\"} 1\n"
	                           "cp_latency_seconds_bucket{le=\"0.5\"} 3\n"
	                           "cp_latency_seconds_bucket{le=\"1\"} 3\n"
	                           "cp_latency_seconds_bucket{le=\"+Inf\"} 4\n"
	                           "cp_latency_seconds_sum 3.5625\n"
	                           "cp_latency_seconds_count 4\n";
	struct metrics *m = metrics_new();
	struct metric *req, *inflight, *x, *y, *lat;
	char *text;

	(void)state;
	assert_non_null(m);
	req = metrics_counter(m, "cp_requests_total", "Requests handled.", NULL);
	inflight = metrics_gauge(m, "cp_inflight", "In flight.", NULL);
	x = metrics_counter(m, "cp_http_total", "HTTP answers.", "route", "/x", "code", "200",
	                    NULL);
	y = metrics_counter(m, "cp_http_total", "ignored: help is kept from the first call",
	                    "route", "/y", "code", "404", NULL);
	lat = metrics_histogram(m, "cp_latency_seconds", "Latency.", bounds, 3, NULL);
	assert_non_null(req);
	assert_non_null(inflight);
	assert_non_null(x);
	assert_non_null(y);
	assert_non_null(lat);
	metric_inc(req);
	metric_add(req, 2);
	metric_set(inflight, 4);
	metric_add(inflight, -6.5);
	metric_add(x, 2);
	metric_inc(y);
	metric_observe(lat, 0.0625);
	metric_observe(lat, 0.25);
	metric_observe(lat, 0.5); /* on a bound: counted in that bucket (le = less or equal) */
	metric_observe(lat, 2.75);
	text = metrics_render(m);
	assert_non_null(text);
	assert_string_equal(text, want);
	free(text);
	metrics_destroy(m);
}

static void test_metrics_labelled_histogram(void **state)
{
	static const double bounds[] = {0.005, 2.5};
	static const char want[] = "# HELP cp_lag Lag.\n"
	                           "# TYPE cp_lag histogram\n"
	                           "cp_lag_bucket{topic=\"a\",le=\"0.005\"} 0\n"
	                           "cp_lag_bucket{topic=\"a\",le=\"2.5\"} 1\n"
	                           "cp_lag_bucket{topic=\"a\",le=\"+Inf\"} 2\n"
	                           "cp_lag_sum{topic=\"a\"} 11\n"
	                           "cp_lag_count{topic=\"a\"} 2\n";
	struct metrics *m = metrics_new();
	struct metric *h = metrics_histogram(m, "cp_lag", "Lag.", bounds, 2, "topic", "a", NULL);
	char *text;

	(void)state;
	metric_observe(h, 1);
	metric_observe(h, 10);
	assert_true(metric_value(h) == 2);
	text = metrics_render(m);
	assert_string_equal(text, want);
	free(text);
	metrics_destroy(m);
}

static void test_metrics_escaping(void **state)
{
	static const char want[] = "# HELP cp_esc A \\\\ backslash\\nand a \"quote\".\n"
	                           "# TYPE cp_esc gauge\n"
	                           "cp_esc{v=\"a\\\"b\\\\c\\nd\"} 1\n";
	struct metrics *m = metrics_new();
	char *text;

	(void)state;
	metric_set(
	    metrics_gauge(m, "cp_esc", "A \\ backslash\nand a \"quote\".", "v", "a\"b\\c\nd", NULL),
	    1);
	text = metrics_render(m);
	assert_string_equal(text, want);
	free(text);
	metrics_destroy(m);
}

static void test_metrics_values(void **state)
{
	static const struct {
		double v;
		const char *text;
	} cases[] = {
	    {0, "cp_v 0\n"},        {1000000, "cp_v 1000000\n"}, {0.1, "cp_v 0.1\n"},
	    {1e21, "cp_v 1e+21\n"}, {-3, "cp_v -3\n"},           {INFINITY, "cp_v +Inf\n"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct metrics *m = metrics_new();
		char *text, *line;

		metric_set(metrics_gauge(m, "cp_v", "v", NULL), cases[i].v);
		text = metrics_render(m);
		line = strstr(text, "\ncp_v ");
		assert_non_null(line);
		assert_string_equal(line + 1, cases[i].text);
		free(text);
		metrics_destroy(m);
	}
}

static void test_metrics_registry_rules(void **state)
{
	static const double b1[] = {1, 2}, b2[] = {1, 3}, bad[] = {2, 1};
	struct metrics *m = metrics_new();
	struct metric *c;

	(void)state;
	c = metrics_counter(m, "cp_c", "c", "k", "v", NULL);
	/* Same arguments, same series; other label values, another series. */
	assert_ptr_equal(metrics_counter(m, "cp_c", "c", "k", "v", NULL), c);
	assert_ptr_not_equal(metrics_counter(m, "cp_c", "c", "k", "w", NULL), c);
	/* A name used as another kind, or a histogram with other buckets, is a clash. */
	assert_null(metrics_gauge(m, "cp_c", "c", "k", "v", NULL));
	assert_non_null(metrics_histogram(m, "cp_h", "h", b1, 2, NULL));
	assert_null(metrics_histogram(m, "cp_h", "h", b2, 2, NULL));
	assert_null(metrics_histogram(m, "cp_h2", "h", bad, 2, NULL));
	/* Invalid metric and label names. */
	assert_null(metrics_counter(m, "9starts_with_digit", "x", NULL));
	assert_null(metrics_counter(m, "has-dash", "x", NULL));
	assert_null(metrics_counter(m, "", "x", NULL));
	assert_null(metrics_counter(m, "cp_ok", "x", "bad-label", "v", NULL));
	assert_null(metrics_counter(m, "cp_ok", "x", "le", "v", NULL));
	/* Counters never go down; gauges do; updates accept NULL. */
	metric_add(c, -5);
	assert_true(metric_value(c) == 0);
	metric_set(c, 9);
	assert_true(metric_value(c) == 0);
	metric_inc(NULL);
	metric_add(NULL, 1);
	metric_set(NULL, 1);
	metric_observe(NULL, 1);
	assert_true(metric_value(NULL) == 0);
	metrics_destroy(m);
	metrics_destroy(NULL);
}

static void test_metrics_latency_buckets(void **state)
{
	(void)state;
	assert_true(metrics_latency_nbuckets >= 10 && metrics_latency_nbuckets <= 32);
	assert_true(metrics_latency_buckets[0] == 0.0005);
	assert_true(metrics_latency_buckets[metrics_latency_nbuckets - 1] == 10);
	for (size_t i = 1; i < metrics_latency_nbuckets; i++)
		assert_true(metrics_latency_buckets[i] > metrics_latency_buckets[i - 1]);
}

struct hammer {
	struct metrics *m;
	int n;
};

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;

	for (int i = 0; i < h->n; i++) {
		/* Lookups and updates race with each other and with rendering. */
		metric_inc(metrics_counter(h->m, "cp_race_total", "r", "t", "x", NULL));
		metric_observe(metrics_histogram(h->m, "cp_race_seconds", "r",
		                                 metrics_latency_buckets, metrics_latency_nbuckets,
		                                 NULL),
		               0.001);
		if (i % 1000 == 0)
			free(metrics_render(h->m));
	}
	return NULL;
}

static void test_metrics_threads(void **state)
{
	struct hammer h = {.m = metrics_new(), .n = 20000};
	pthread_t threads[4];

	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, hammer_run, &h), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(threads[i], NULL);
	assert_true(metric_value(metrics_counter(h.m, "cp_race_total", "r", "t", "x", NULL)) ==
	            80000);
	assert_true(
	    metric_value(metrics_histogram(h.m, "cp_race_seconds", "r", metrics_latency_buckets,
	                                   metrics_latency_nbuckets, NULL)) == 80000);
	metrics_destroy(h.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_metrics_exposition_exact),
	    cmocka_unit_test(test_metrics_labelled_histogram),
	    cmocka_unit_test(test_metrics_escaping),
	    cmocka_unit_test(test_metrics_values),
	    cmocka_unit_test(test_metrics_registry_rules),
	    cmocka_unit_test(test_metrics_latency_buckets),
	    cmocka_unit_test(test_metrics_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
