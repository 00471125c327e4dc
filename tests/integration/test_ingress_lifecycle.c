/* test_ingress_lifecycle: the ingress process itself: refuses to start without a token or webhook
 * secret unless explicitly opted out (exit 2, naming the settings), --help lists every setting,
 * SIGTERM drains in-flight requests (acknowledged, answered, exit 0), and a stalled client is
 * cut off by the connection timeout without blocking anyone else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NDRAIN 20

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the ingress with env (on top of a clean slate) and returns its exit status; *out gets
 * stdout and the log file's stderr is ignored. */
static int run_ingress(const char *const *env, const char *arg, char **out)
{
	char bin[512];
	const char *argv[] = {ts_bin("ingress", bin, sizeof bin), arg, NULL};

	return ts_run(argv, env, out, 10000);
}

static void test_lifecycle_refuses_insecure_start(void **state)
{
	const char *no_token[] = {"KAFKA_BROKERS=127.0.0.1:1",
	                          "INGRESS_API_TOKEN=", "ELEVENLABS_WEBHOOK_SECRET=" IT_SECRET,
	                          NULL};
	const char *no_secret[] = {"KAFKA_BROKERS=127.0.0.1:1", "INGRESS_API_TOKEN=" IT_TOKEN,
	                           "ELEVENLABS_WEBHOOK_SECRET=", NULL};
	char *out = NULL;

	(void)state;
	/* the message goes to stderr */
	{
		char bin[512];
		const char *argv[] = {ts_bin("ingress", bin, sizeof bin), NULL};

		assert_int_equal(ts_run_all(argv, no_token, &out, 10000), 2);
		assert_non_null(out);
		assert_non_null(strstr(out, "INGRESS_API_TOKEN"));
		assert_non_null(strstr(out, "INGRESS_ALLOW_UNAUTHENTICATED"));
		free(out);
		assert_int_equal(ts_run_all(argv, no_secret, &out, 10000), 2);
		assert_non_null(strstr(out, "ELEVENLABS_WEBHOOK_SECRET"));
		assert_non_null(strstr(out, "INGRESS_ALLOW_UNSIGNED_WEBHOOKS"));
		free(out);
	}
	assert_int_equal(run_ingress(no_token, NULL, NULL), 2);
}

static void test_lifecycle_help_lists_settings(void **state)
{
	static const char *const names[] = {
	    "HTTP_LISTEN",
	    "KAFKA_BROKERS",
	    "KAFKA_TOPIC_PREFIX",
	    "DATABASE_URL",
	    "DB_SCHEMA",
	    "INGRESS_API_TOKEN",
	    "ELEVENLABS_WEBHOOK_SECRET",
	    "INGRESS_TOOL_SECRET",
	    "CALL_TOKEN_SECRET",
	    "INGRESS_ADMIN_LISTEN",
	    "INGRESS_ALLOW_UNAUTHENTICATED",
	    "INGRESS_ALLOW_UNSIGNED_WEBHOOKS",
	    "INGRESS_MAX_BODY",
	    "INGRESS_MAX_POST_CALL_BODY",
	    "INGRESS_DELIVERY_TIMEOUT_MS",
	    "INGRESS_RETRY_AFTER_S",
	    "INGRESS_CONNECTION_TIMEOUT_S",
	    "INGRESS_CONNECTION_LIMIT",
	    "INGRESS_CONNECTIONS_PER_ADDRESS",
	    "INGRESS_HEADER_TIMEOUT_MS",
	    "INGRESS_BODY_TIMEOUT_MS",
	    "INGRESS_BODY_MIN_RATE",
	    "INGRESS_BODY_BUDGET",
	    "INGRESS_THREADS",
	    "INGRESS_SIGNATURE_MAX_AGE_S",
	    "INGRESS_SIGNATURE_MAX_SKEW_S",
	    "INGRESS_DRAIN_TIMEOUT_MS",
	    "INGRESS_KAFKA_LINGER_US",
	    "INGRESS_DB_WAIT_MS",
	    "INGRESS_CONSOLE_ADVANCE_S",
	    "LOG_LEVEL",
	};
	char *out = NULL;
	const char *secret_env[] = {"INGRESS_API_TOKEN=" IT_TOKEN, "KAFKA_BROKERS=127.0.0.1:1",
	                            "ELEVENLABS_WEBHOOK_SECRET=" IT_SECRET, NULL};

	(void)state;
	assert_int_equal(run_ingress(NULL, "--help", &out), 0);
	assert_non_null(out);
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strstr(out, names[i]) == NULL)
			fail_msg("--help does not mention %s", names[i]);
	free(out);
	/* --dump-config never prints a secret */
	assert_int_equal(run_ingress(secret_env, "--dump-config", &out), 0);
	assert_non_null(out);
	assert_null(strstr(out, IT_TOKEN));
	assert_null(strstr(out, IT_SECRET));
	free(out);
}

static void test_lifecycle_unauthenticated_opt_in(void **state)
{
	struct ts_broker b;
	struct it_ingress in;
	struct ts_http_resp resp;
	const char *extra[] = {"INGRESS_API_TOKEN=", "INGRESS_ALLOW_UNAUTHENTICATED=true",
	                       "ELEVENLABS_WEBHOOK_SECRET=", "INGRESS_ALLOW_UNSIGNED_WEBHOOKS=1",
	                       NULL};
	const char *json[] = {IT_JSON, NULL};
	static const char trans[] =
	    "{\"call_sid\":\"EL_u_1\",\"speaker\":\"user\",\"message\":\"m\"}";
	char id1[80], id2[80];
	FILE *fp;
	char line[4096];
	bool warned_auth = false, warned_sig = false;

	(void)state;
	ts_broker_start(&b, "", 1);
	it_ingress_start(&in, &b, "", extra, true);
	ts_http("GET", it_url(&in, "/calls/EL_u_1"), NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 503); /* no database configured, but no 401 either */
	ts_http_resp_free(&resp);
	/* unsigned mode: accepted without a signature, with random (distinct) event ids */
	ts_http("POST", it_url(&in, "/webhooks/elevenlabs/transcription"), json, trans,
	        strlen(trans), &resp);
	assert_int_equal(resp.status, 200);
	assert_true(it_json_str(resp.body, "event_id", id1, sizeof id1));
	ts_http_resp_free(&resp);
	ts_http("POST", it_url(&in, "/webhooks/elevenlabs/transcription"), json, trans,
	        strlen(trans), &resp);
	assert_int_equal(resp.status, 200);
	assert_true(it_json_str(resp.body, "event_id", id2, sizeof id2));
	ts_http_resp_free(&resp);
	assert_int_equal(strlen(id1), 36);
	assert_string_not_equal(id1, id2);
	assert_int_equal(it_ingress_stop(&in, 20000), 0);
	ts_broker_stop(&b);
	/* both opt-ins were logged as warnings */
	fp = fopen(in.proc.log_path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof line, fp) != NULL) {
		if (strstr(line, "\"warn\"") && strstr(line, "INGRESS_ALLOW_UNAUTHENTICATED"))
			warned_auth = true;
		if (strstr(line, "\"warn\"") && strstr(line, "INGRESS_ALLOW_UNSIGNED_WEBHOOKS"))
			warned_sig = true;
	}
	fclose(fp);
	assert_true(warned_auth);
	assert_true(warned_sig);
}

static bool can_connect(unsigned port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	assert_true(fd >= 0);
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(fd);
	return ok;
}

struct drain {
	const struct it_ingress *in;
	const char *bodies[NDRAIN];
	char store[NDRAIN][256];
	long statuses[NDRAIN];
};

static void *drain_burst(void *arg)
{
	struct drain *d = arg;
	const char *headers[] = {IT_AUTH, IT_JSON, NULL};

	it_multi_post(it_url(d->in, "/driver_data/call-elevenlabs"), headers, d->bodies, NDRAIN,
	              d->statuses);
	return NULL;
}

/* SIGTERM while requests wait for a slow broker: they all finish with 202 (their messages
 * acknowledged), new connections are refused, and the process exits 0. */
static void test_lifecycle_sigterm_drains(void **state)
{
	struct ts_broker b;
	struct it_ingress in;
	struct drain *d = calloc(1, sizeof *d);
	const char *extra[] = {"INGRESS_DELIVERY_TIMEOUT_MS=8000", "INGRESS_DRAIN_TIMEOUT_MS=15000",
	                       NULL};
	pthread_t th;
	long long deadline;
	char sid[64];
	int rc;

	(void)state;
	ts_broker_start(&b, "", 2);
	it_ingress_start(&in, &b, "", extra, true);
	d->in = &in;
	for (int i = 0; i < NDRAIN; i++) {
		snprintf(
		    d->store[i], sizeof d->store[i],
		    "{\"callType\":\"c\",\"timestamp\":\"drain\",\"drivers\":[{\"driverId\":\"%d\","
		    "\"driverName\":\"n\",\"phoneNumber\":\"2125550100\"}]}",
		    i);
		d->bodies[i] = d->store[i];
	}
	assert_int_equal(ts_broker_control(&b, "/rtt?broker=1&ms=1500"), 200);
	assert_int_equal(pthread_create(&th, NULL, drain_burst, d), 0);
	deadline = now_ms() + 10000;
	while (it_metric(&in, "ingress_in_flight") < NDRAIN + 1) {
		if (now_ms() > deadline)
			fail_msg("requests never got in flight");
		ts_sleep_ms(10);
	}
	assert_int_equal(kill(in.proc.pid, SIGTERM), 0);
	ts_sleep_ms(200);
	assert_false(can_connect(in.port)); /* no new connections while draining */
	pthread_join(th, NULL);
	for (int i = 0; i < NDRAIN; i++)
		if (d->statuses[i] != 202)
			fail_msg("request %d ended with %ld during the drain", i, d->statuses[i]);
	rc = ts_proc_stop(&in.proc, 0, 20000);
	assert_int_equal(rc, 0);
	assert_int_equal(ts_broker_control(&b, "/rtt?broker=1&ms=0"), 200);
	for (int i = 0; i < NDRAIN; i++) {
		snprintf(sid, sizeof sid, "EL_%d_drain", i);
		assert_int_equal(it_count_key(&b, "calls.requested", sid), 1);
	}
	ts_broker_stop(&b);
	free(d);
}

/* A client that sends half a request and stalls is disconnected after the connection timeout;
 * meanwhile others are served. */
static void test_lifecycle_stalled_client_times_out(void **state)
{
	struct ts_broker b;
	struct it_ingress in;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 6};
	struct ts_http_resp resp;
	const char *extra[] = {"INGRESS_CONNECTION_TIMEOUT_S=1", NULL};
	/* authenticated (an unauthenticated one is refused on its headers, before any body) */
	static const char partial[] = "POST /driver_data/call-elevenlabs HTTP/1.1\r\n"
	                              "Host: x\r\n" IT_AUTH "\r\nContent-Type: application/json\r\n"
	                              "Content-Length: 100\r\n\r\n{\"callType\":";
	char buf[512];
	long long t0;
	ssize_t n;
	int fd;

	(void)state;
	ts_broker_start(&b, "", 1);
	it_ingress_start(&in, &b, "", extra, false);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	sa.sin_port = htons((uint16_t)in.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
	assert_int_equal(send(fd, partial, strlen(partial), 0), (ssize_t)strlen(partial));
	t0 = now_ms();
	ts_http("GET", it_url(&in, "/healthz"), NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	n = recv(fd, buf, sizeof buf, 0); /* the server closes: 0 (or a reset) */
	if (n > 0)
		fail_msg("the stalled request got an answer: %.*s", (int)n, buf);
	if (n < 0 && now_ms() - t0 >= 5500)
		fail_msg("the stalled connection was not closed");
	if (now_ms() - t0 > 3500)
		fail_msg("closed only after %lld ms (timeout 1 s)", now_ms() - t0);
	close(fd);
	assert_int_equal(it_ingress_stop(&in, 20000), 0);
	ts_broker_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lifecycle_refuses_insecure_start),
	    cmocka_unit_test(test_lifecycle_help_lists_settings),
	    cmocka_unit_test(test_lifecycle_unauthenticated_opt_in),
	    cmocka_unit_test(test_lifecycle_sigterm_drains),
	    cmocka_unit_test(test_lifecycle_stalled_client_times_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
