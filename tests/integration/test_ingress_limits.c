/* test_ingress_limits: the edge's limits one by one, against the real ingress: connections per
 * address, the header and body deadlines (however the bytes trickle, kept-alive connections
 * too), webhooks refused on their headers before a body byte is sent, chunked bodies over the
 * limit answered 413, and the body budget answering 503 with Retry-After. */
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
#include <unistd.h>

#define CALL_PATH  "/driver_data/call-elevenlabs"
#define TRANS_PATH "/webhooks/elevenlabs/transcription"
#define POST_PATH  "/webhooks/elevenlabs/post-call"
#define TOOL       "tool-secret-0123456789abcdef"
#define CALLTOKEN  "call-token-secret-0123456789"
#define CALL_BODY                                                                      \
	"{\"callType\":\"c\",\"timestamp\":\"lim\",\"drivers\":[{\"driverId\":\"%d\"," \
	"\"driverName\":"                                                              \
	"\"n\",\"phoneNumber\":\"2125550100\"}]}"

static struct it_stack *stack_of(void **state)
{
	return *state;
}

/* From 127.0.0.2, at most INGRESS_CONNECTIONS_PER_ADDRESS connections at once (the others
 * are closed at once); 127.0.0.1 is not affected; a closed connection frees its slot. */
static void test_limits_per_address(void **state)
{
	struct it_stack *e = stack_of(state);
	int fds[20], open = 0;
	double refused0 =
	    it_metric(&e->in, "ingress_connections_refused_total{reason=\"address_limit\"}");
	struct ts_http_resp resp;

	for (int i = 0; i < 20; i++) {
		fds[i] = it_raw_connect(&e->in, "127.0.0.2");
		assert_true(it_raw_send(fds[i], "GET /healthz HTTP/1.1\r\n", 23));
	}
	ts_sleep_ms(300);
	for (int i = 0; i < 20; i++)
		open += it_raw_open(fds[i]);
	assert_int_equal(open, 8);
	ts_http("GET", it_url(&e->in, "/healthz"), NULL, NULL, 0, &resp);
	assert_int_equal(resp.status, 200);
	ts_http_resp_free(&resp);
	assert_true(
	    it_metric(&e->in, "ingress_connections_refused_total{reason=\"address_limit\"}") >=
	    refused0 + 12);
	/* one closed: one more may come */
	for (int i = 0; i < 20; i++) {
		if (it_raw_open(fds[i])) {
			close(fds[i]);
			fds[i] = -1;
			break;
		}
	}
	ts_sleep_ms(100);
	{
		int fd = it_raw_connect(&e->in, "127.0.0.2");

		ts_sleep_ms(200);
		assert_true(it_raw_open(fd));
		close(fd);
	}
	for (int i = 0; i < 20; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/* Headers that trickle in (a line every 300 ms: never idle) are cut at the header deadline
 * (1500 ms), on a new connection and on a kept-alive one; a body that trickles is cut at its
 * deadline (1000 ms + length at 1000 B/s); a slow but honest body within it is answered. */
static void test_limits_deadlines(void **state)
{
	struct it_stack *e = stack_of(state);
	static const char call_head[] = "POST " CALL_PATH " HTTP/1.1\r\nHost: x\r\n" IT_AUTH
	                                "\r\n" IT_JSON "\r\nContent-Length: %zu\r\n\r\n";
	char head[512], body[256], hdrs[2048];
	double headers0 =
	    it_metric(&e->in, "ingress_connections_closed_total{reason=\"header_timeout\"}");
	double body0 =
	    it_metric(&e->in, "ingress_connections_closed_total{reason=\"body_timeout\"}");
	long long t0;
	long took;
	int fd;

	/* a new connection trickling header lines */
	fd = it_raw_connect(&e->in, NULL);
	t0 = it_now_ms();
	assert_true(it_raw_send(fd, "GET /healthz HTTP/1.1\r\n", 23));
	while ((took = it_raw_wait_close(fd, 300)) < 0 && it_now_ms() - t0 < 5000)
		if (!it_raw_send(fd, "X-Slow: 1\r\n", 11))
			break;
	took = (long)(it_now_ms() - t0);
	close(fd);
	if (took < 1400 || took > 2600)
		fail_msg("trickled headers cut after %ld ms (deadline 1500)", took);

	/* a kept-alive connection: a quick request, then the next one's headers trickle */
	fd = it_raw_connect(&e->in, NULL);
	snprintf(body, sizeof body, CALL_BODY, 1);
	snprintf(head, sizeof head, call_head, strlen(body));
	assert_true(it_raw_send(fd, head, strlen(head)));
	assert_true(it_raw_send(fd, body, strlen(body)));
	assert_int_equal(it_raw_status(fd, 5000, hdrs, sizeof hdrs), 202);
	ts_sleep_ms(500);
	t0 = it_now_ms();
	assert_true(it_raw_send(fd, "GET /healthz HTTP/1.1\r\n", 23));
	while ((took = it_raw_wait_close(fd, 300)) < 0 && it_now_ms() - t0 < 5000)
		if (!it_raw_send(fd, "X-Slow: 1\r\n", 11))
			break;
	took = (long)(it_now_ms() - t0);
	close(fd);
	if (took < 1400 || took > 2600)
		fail_msg("kept-alive trickled headers cut after %ld ms (deadline 1500)", took);

	/* a body of 2000 bytes, one byte every 300 ms: due within 1000 + 2000 ms */
	fd = it_raw_connect(&e->in, NULL);
	snprintf(head, sizeof head, call_head, (size_t)2000);
	assert_true(it_raw_send(fd, head, strlen(head)));
	t0 = it_now_ms();
	while ((took = it_raw_wait_close(fd, 300)) < 0 && it_now_ms() - t0 < 8000)
		if (!it_raw_send(fd, " ", 1))
			break;
	took = (long)(it_now_ms() - t0);
	close(fd);
	if (took < 2900 || took > 4100)
		fail_msg("a trickled body cut after %ld ms (deadline 3000)", took);

	/* slow but within its deadline: answered */
	fd = it_raw_connect(&e->in, NULL);
	snprintf(body, sizeof body, CALL_BODY, 2);
	snprintf(head, sizeof head, call_head, strlen(body));
	assert_true(it_raw_send(fd, head, strlen(head)));
	assert_true(it_raw_send(fd, body, 10));
	ts_sleep_ms(700);
	assert_true(it_raw_send(fd, body + 10, strlen(body) - 10));
	assert_int_equal(it_raw_status(fd, 5000, hdrs, sizeof hdrs), 202);
	close(fd);

	ts_sleep_ms(200);
	assert_true(
	    it_metric(&e->in, "ingress_connections_closed_total{reason=\"header_timeout\"}") >=
	    headers0 + 2);
	assert_true(
	    it_metric(&e->in, "ingress_connections_closed_total{reason=\"body_timeout\"}") >=
	    body0 + 1);
}

/* Sends a webhook's headers announcing a body, without the body: returns the status answered
 * on the headers alone, or -1 when the ingress waits for the body (as it should for a request
 * it would accept). */
static int headers_only(const struct it_ingress *in, const char *path, const char *auth)
{
	char head[512];
	int fd = it_raw_connect(in, NULL), status;

	snprintf(head, sizeof head,
	         "POST %s HTTP/1.1\r\nHost: x\r\n" IT_JSON "\r\n%s%sContent-Length: 1000\r\n\r\n",
	         path, auth != NULL ? auth : "", auth != NULL ? "\r\n" : "");
	assert_true(it_raw_send(fd, head, strlen(head)));
	status = it_raw_status(fd, 700, NULL, 0);
	close(fd);
	return status;
}

/* A webhook without a well-formed, fresh signature (or, on the transcription route, a well-formed,
 * unexpired call token with the tool's secret) is refused on its headers: the 401 comes before a
 * byte of the body is sent. One that may be genuine waits for its body. */
static void test_limits_webhook_header_stage(void **state)
{
	struct it_stack *e = stack_of(state);
	char fresh[200], stale[200], future[200], token[200], expired[200], tool_token[400];
	long long now = (long long)time(NULL);

	snprintf(fresh, sizeof fresh, "ElevenLabs-Signature: t=%lld,v0=%064d", now, 0);
	snprintf(stale, sizeof stale, "ElevenLabs-Signature: t=%lld,v0=%064d", now - 1801, 0);
	snprintf(future, sizeof future, "ElevenLabs-Signature: t=%lld,v0=%064d", now + 600, 0);
	/* the token's call_sid is in the body: any well-formed, unexpired token may be genuine */
	snprintf(token, sizeof token, "X-Callpipe-Call-Token: v1.%lld.%064d", now + 3600, 0);
	snprintf(expired, sizeof expired, "X-Callpipe-Call-Token: v1.%lld.%064d", now - 1, 0);
	snprintf(tool_token, sizeof tool_token, "%s\r\nX-Callpipe-Tool-Secret: " TOOL, token);
	assert_int_equal(headers_only(&e->in, POST_PATH, NULL), 401);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, NULL), 401);
	assert_int_equal(headers_only(&e->in, POST_PATH, stale), 401);
	assert_int_equal(headers_only(&e->in, POST_PATH, future), 401);
	assert_int_equal(headers_only(&e->in, POST_PATH, "ElevenLabs-Signature: t=1,v0=zz"), 401);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, "X-Callpipe-Tool-Secret: wrong"), 401);
	/* the tool secret alone writes into no call; a token alone lacks the tool secret */
	assert_int_equal(headers_only(&e->in, TRANS_PATH, "X-Callpipe-Tool-Secret: " TOOL), 401);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, token), 401);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, expired), 401);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, "X-Callpipe-Call-Token: v1.x.y"), 401);
	/* the tool's secret is for the transcription route only */
	assert_int_equal(headers_only(&e->in, POST_PATH, "X-Callpipe-Tool-Secret: " TOOL), 401);
	/* may be genuine: the body is read (the MAC needs it) */
	assert_int_equal(headers_only(&e->in, POST_PATH, fresh), -1);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, fresh), -1);
	assert_int_equal(headers_only(&e->in, TRANS_PATH, tool_token), -1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_missing\"}") >= 3);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_too_old\"}") >= 1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_future\"}") >= 1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"signature_malformed\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"tool_secret_mismatch\"}") >=
	            2);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_missing\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_expired\"}") >=
	            1);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"call_token_malformed\"}") >=
	            1);
}

/* A chunked body is limited like one with a Content-Length: over the limit, 413 with the same
 * error (once the upload ends: the connection is not reset), under it, handled as usual. */
static void test_limits_chunked(void **state)
{
	struct it_stack *e = stack_of(state);
	const char *headers[] = {IT_AUTH, IT_JSON, "Transfer-Encoding: chunked", NULL};
	size_t big = 65537;
	char *body = malloc(big + 1), small[256];
	struct ts_http_resp resp;

	assert_non_null(body);
	memset(body, ' ', big);
	body[0] = '{';
	body[big - 1] = '}';
	body[big] = '\0';
	ts_http("POST", it_url(&e->in, CALL_PATH), headers, body, big, &resp);
	assert_int_equal(resp.status, 413);
	assert_string_equal(resp.body, "{\"error\":\"body larger than 65536 bytes\"}");
	ts_http_resp_free(&resp);
	/* exactly at the limit: read in full, and judged (not JSON of a call request: 400) */
	ts_http("POST", it_url(&e->in, CALL_PATH), headers, body, big - 1, &resp);
	assert_int_equal(resp.status, 400);
	ts_http_resp_free(&resp);
	snprintf(small, sizeof small, CALL_BODY, 3);
	ts_http("POST", it_url(&e->in, CALL_PATH), headers, small, strlen(small), &resp);
	assert_int_equal(resp.status, 202);
	ts_http_resp_free(&resp);
	free(body);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"body_too_large\"}") >= 1);
}

/* Two requests announcing 64 KiB each fill a 128 KiB budget; the next request is 503 with
 * Retry-After on its headers (chunked: at the end of its upload); once one gives its bytes
 * back, requests are accepted again. */
static void test_limits_budget(void **state)
{
	struct it_stack *e = stack_of(state);
	const char *json[] = {IT_AUTH, IT_JSON, NULL};
	const char *chunked[] = {IT_AUTH, IT_JSON, "Transfer-Encoding: chunked", NULL};
	char head[512], body[256], retry[16];
	struct ts_http_resp resp;
	int holders[2];

	snprintf(head, sizeof head,
	         "POST " CALL_PATH " HTTP/1.1\r\nHost: x\r\n" IT_AUTH "\r\n" IT_JSON
	         "\r\nContent-Length: 65536\r\n\r\n{");
	for (int i = 0; i < 2; i++) {
		holders[i] = it_raw_connect(&e->in, NULL);
		assert_true(it_raw_send(holders[i], head, strlen(head)));
	}
	ts_sleep_ms(300);
	assert_true(it_metric(&e->in, "ingress_body_bytes") == 131072);
	snprintf(body, sizeof body, CALL_BODY, 4);
	ts_http("POST", it_url(&e->in, CALL_PATH), json, body, strlen(body), &resp);
	assert_int_equal(resp.status, 503);
	assert_true(it_header(resp.headers, "Retry-After", retry, sizeof retry));
	assert_string_equal(retry, "7");
	assert_non_null(strstr(resp.body, "retry later"));
	ts_http_resp_free(&resp);
	ts_http("POST", it_url(&e->in, CALL_PATH), chunked, body, strlen(body), &resp);
	assert_int_equal(resp.status, 503);
	ts_http_resp_free(&resp);
	/* the other routes' bodies share the budget */
	it_post_signed(&e->in, TRANS_PATH, "{\"call_sid\":\"x\"}", IT_SECRET, time(NULL), &resp);
	assert_int_equal(resp.status, 503);
	ts_http_resp_free(&resp);

	close(holders[0]);
	ts_sleep_ms(200);
	ts_http("POST", it_url(&e->in, CALL_PATH), json, body, strlen(body), &resp);
	assert_int_equal(resp.status, 202);
	ts_http_resp_free(&resp);
	close(holders[1]);
	ts_sleep_ms(300);
	assert_true(it_metric(&e->in, "ingress_body_bytes") == 0);
	assert_true(it_metric(&e->in, "ingress_rejected_total{reason=\"body_budget\"}") >= 3);
}

static int setup(void **state)
{
	static const char *extra[] = {"INGRESS_CONNECTIONS_PER_ADDRESS=8",
	                              "INGRESS_HEADER_TIMEOUT_MS=1500",
	                              "INGRESS_BODY_TIMEOUT_MS=1000",
	                              "INGRESS_BODY_MIN_RATE=1000",
	                              "INGRESS_MAX_POST_CALL_BODY=65536",
	                              "INGRESS_BODY_BUDGET=131072",
	                              "INGRESS_RETRY_AFTER_S=7",
	                              "INGRESS_TOOL_SECRET=" TOOL,
	                              "CALL_TOKEN_SECRET=" CALLTOKEN,
	                              "LOG_LEVEL=info",
	                              NULL};

	*state = it_stack_new("lim.", 1, extra);
	return 0;
}

static int teardown(void **state)
{
	it_stack_free(*state);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_limits_per_address),
	    cmocka_unit_test(test_limits_deadlines),
	    cmocka_unit_test(test_limits_webhook_header_stage),
	    cmocka_unit_test(test_limits_chunked),
	    cmocka_unit_test(test_limits_budget),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
