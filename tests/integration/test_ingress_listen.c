/* test_ingress_listen: every HTTP thread listens on the one port with its own socket (how the
 * kernel then spreads connections over them is not visible from outside), also when HTTP_LISTEN
 * asks for any port (":0"), and an ingress started on a port something already listens on
 * refuses to start (exit 1, naming the address) instead of quietly taking a share of that port's
 * connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Listening TCP sockets on port in /proc/net/tcp (state 0A). */
static int listeners_on(unsigned port)
{
	FILE *fp = fopen("/proc/net/tcp", "r");
	char line[512];
	int n = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof line, fp) != NULL) {
		unsigned lport, st;

		/* "  12: 0100007F:1F90 00000000:0000 0A ..." */
		if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*s %x", &lport, &st) == 2 &&
		    lport == port && st == 0x0A)
			n++;
	}
	fclose(fp);
	return n;
}

/* Waits (up to 5 s) until port has want listening sockets: /healthz may answer from the first
 * thread before the others are bound. Returns the last count seen. */
static int listeners_wait(unsigned port, int want)
{
	int n = listeners_on(port);

	for (int i = 0; i < 100 && n != want; i++) {
		usleep(50 * 1000);
		n = listeners_on(port);
	}
	return n;
}

/* Runs the ingress with HTTP_LISTEN=listen against b to completion; returns its exit status,
 * *out gets its output (stdout and stderr). */
static int run_ingress(const struct ts_broker *b, const char *listen, char **out)
{
	char bin[512], brokers[300], http[96], prefix[200];
	const char *argv[] = {ts_bin("ingress", bin, sizeof bin), NULL};
	const char *env[] = {brokers,
	                     http,
	                     prefix,
	                     "INGRESS_API_TOKEN=" IT_TOKEN,
	                     "ELEVENLABS_WEBHOOK_SECRET=" IT_SECRET,
	                     NULL};

	snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", b->bootstrap);
	snprintf(prefix, sizeof prefix, "KAFKA_TOPIC_PREFIX=%s", b->prefix);
	snprintf(http, sizeof http, "HTTP_LISTEN=%s", listen);
	return ts_run_all(argv, env, out, 10000);
}

static void test_listen_socket_per_thread(void **state)
{
	const char *extra[] = {"INGRESS_THREADS=3", NULL};
	struct ts_broker b;
	struct it_ingress in;
	struct ts_http_resp resp;
	char listen[64];
	char *out = NULL;

	(void)state;
	ts_broker_start(&b, "lsn.", 1);
	it_ingress_start(&in, &b, "lsn.", extra, false);
	assert_int_equal(listeners_wait(in.port, 3), 3);

	/* the same port again: refused, and the running ingress keeps its three sockets */
	snprintf(listen, sizeof listen, "127.0.0.1:%u", in.port);
	assert_int_equal(run_ingress(&b, listen, &out), 1);
	assert_non_null(out);
	assert_non_null(strstr(out, "cannot listen on 127.0.0.1:"));
	assert_non_null(strstr(out, "Address already in use"));
	free(out);
	assert_int_equal(listeners_on(in.port), 3);
	for (int i = 0; i < 12; i++) { /* new connections each time, whichever socket gets them */
		ts_http("GET", it_url(&in, "/healthz"), NULL, NULL, 0, &resp);
		assert_int_equal(resp.status, 200);
		ts_http_resp_free(&resp);
	}
	assert_int_equal(it_ingress_stop(&in, 20000), 0);
	assert_int_equal(listeners_wait(in.port, 0), 0);
	ts_broker_stop(&b);
}

static void test_listen_any_port(void **state)
{
	char bin[512], brokers[300], prefix[200];
	const char *argv[] = {ts_bin("ingress", bin, sizeof bin), NULL};
	const char *env[] = {brokers,
	                     prefix,
	                     "HTTP_LISTEN=127.0.0.1:0",
	                     "INGRESS_THREADS=2",
	                     "INGRESS_API_TOKEN=" IT_TOKEN,
	                     "ELEVENLABS_WEBHOOK_SECRET=" IT_SECRET,
	                     NULL};
	struct ts_broker b;
	struct ts_proc p;
	unsigned port = 0;

	(void)state;
	ts_broker_start(&b, "lsa.", 1);
	snprintf(brokers, sizeof brokers, "KAFKA_BROKERS=%s", b.bootstrap);
	snprintf(prefix, sizeof prefix, "KAFKA_TOPIC_PREFIX=%s", b.prefix);
	ts_proc_start(&p, argv, env);
	/* the port it got is in the "ingress listening" line */
	for (int i = 0; i < 150 && port == 0; i++) {
		FILE *fp = fopen(p.log_path, "r");
		char line[4096];

		while (fp != NULL && fgets(line, sizeof line, fp) != NULL) {
			const char *at = strstr(line, "\"port\":");

			if (strstr(line, "ingress listening") != NULL && at != NULL)
				port = (unsigned)strtoul(at + strlen("\"port\":"), NULL, 10);
		}
		if (fp != NULL)
			fclose(fp);
		if (port == 0)
			usleep(100 * 1000);
	}
	assert_true(port > 0);
	assert_int_equal(listeners_on(port), 2);
	assert_int_equal(ts_proc_stop(&p, SIGTERM, 20000), 0);
	ts_broker_stop(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_listen_socket_per_thread),
	    cmocka_unit_test(test_listen_any_port),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
