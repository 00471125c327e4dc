/* test_httpd: the health server on an ephemeral loopback port, spoken to with libcurl. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "httpd.h"
#include "metrics.h"

struct reply {
	long status;
	char body[8192];
	size_t len;
	char ctype[128];
	char allow[64];
};

static size_t on_body(char *data, size_t size, size_t n, void *opaque)
{
	struct reply *r = opaque;
	size_t bytes = size * n;

	if (r->len + bytes >= sizeof r->body)
		return 0;
	memcpy(r->body + r->len, data, bytes);
	r->len += bytes;
	r->body[r->len] = '\0';
	return bytes;
}

static size_t on_header(char *data, size_t size, size_t n, void *opaque)
{
	struct reply *r = opaque;
	size_t bytes = size * n;

	if (bytes > 6 && strncasecmp(data, "Allow:", 6) == 0) {
		size_t b = 6, e = bytes;

		while (b < e && data[b] == ' ')
			b++;
		while (e > b && (data[e - 1] == '\r' || data[e - 1] == '\n'))
			e--;
		snprintf(r->allow, sizeof r->allow, "%.*s", (int)(e - b), data + b);
	}
	return bytes;
}

/* Requests method path on 127.0.0.1:port; fails the test on a transport error. */
static void request(unsigned port, const char *method, const char *path, struct reply *r)
{
	CURL *curl = curl_easy_init();
	char url[256], *ctype = NULL;
	CURLcode rc;

	memset(r, 0, sizeof *r);
	assert_non_null(curl);
	snprintf(url, sizeof url, "http://127.0.0.1:%u%s", port, path);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "POST") == 0)
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "{}");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK)
		fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype);
	if (ctype != NULL)
		snprintf(r->ctype, sizeof r->ctype, "%s", ctype);
	curl_easy_cleanup(curl);
}

static bool ready_flag(void *opaque)
{
	return *(bool *)opaque;
}

static void assert_json_body(const struct reply *r, const char *key, const char *value)
{
	json_t *root = json_loads(r->body, 0, NULL);

	assert_non_null(root);
	assert_string_equal(r->ctype, "application/json");
	assert_string_equal(json_string_value(json_object_get(root, key)), value);
	json_decref(root);
}

static void test_httpd_health_server(void **state)
{
	struct metrics *m = metrics_new();
	bool ready = true;
	char err[256];
	struct reply r;
	struct httpd *h;
	unsigned port;

	(void)state;
	metric_add(metrics_counter(m, "cp_test_total", "A test counter.", "kind", "a", NULL), 7);
	h = httpd_start_health("127.0.0.1:0", m, ready_flag, &ready, err, sizeof err);
	if (h == NULL)
		fail_msg("httpd_start_health: %s", err);
	port = httpd_port(h);
	assert_true(port > 0 && port < 65536);

	request(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_json_body(&r, "status", "ok");

	request(port, "GET", "/readyz", &r);
	assert_int_equal(r.status, 200);
	assert_json_body(&r, "status", "ready");
	ready = false;
	request(port, "GET", "/readyz", &r);
	assert_int_equal(r.status, 503);
	assert_json_body(&r, "status", "not_ready");
	/* Liveness does not depend on readiness. */
	request(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);

	request(port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
	assert_string_equal(r.body, "# HELP cp_test_total A test counter.\n"
	                            "# TYPE cp_test_total counter\n"
	                            "cp_test_total{kind=\"a\"} 7\n");

	request(port, "GET", "/nope", &r);
	assert_int_equal(r.status, 404);
	assert_json_body(&r, "error", "Not found");
	request(port, "GET", "/healthz/extra", &r);
	assert_int_equal(r.status, 404);

	request(port, "POST", "/healthz", &r);
	assert_int_equal(r.status, 405);
	assert_string_equal(r.allow, "GET, HEAD");
	assert_json_body(&r, "error", "Method not allowed");
	request(port, "DELETE", "/metrics", &r);
	assert_int_equal(r.status, 405);
	request(port, "POST", "/other", &r);
	assert_int_equal(r.status, 404);

	/* The same port again is taken: a clear error, no daemon. */
	{
		char listen[64];

		snprintf(listen, sizeof listen, "127.0.0.1:%u", port);
		assert_null(httpd_start_health(listen, m, NULL, NULL, err, sizeof err));
		assert_non_null(strstr(err, listen));
	}
	httpd_stop(h);
	metrics_destroy(m);
}

static void test_httpd_always_ready_without_callback(void **state)
{
	char err[256];
	struct reply r;
	struct httpd *h = httpd_start_health("127.0.0.1:0", NULL, NULL, NULL, err, sizeof err);

	(void)state;
	assert_non_null(h);
	request(httpd_port(h), "GET", "/readyz", &r);
	assert_int_equal(r.status, 200);
	/* No registry: an empty but valid exposition. */
	request(httpd_port(h), "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.len, 0);
	httpd_stop(h);
}

static void test_httpd_bad_listen(void **state)
{
	static const char *const bad[] = {"", "127.0.0.1", "127.0.0.1:99999", "nohost.invalid:80",
	                                  "127.0.0.1:x"};
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		assert_null(httpd_start_health(bad[i], NULL, NULL, NULL, err, sizeof err));
		assert_non_null(strstr(err, "HTTP_LISTEN"));
	}
	assert_null(httpd_start_health(NULL, NULL, NULL, NULL, err, sizeof err));
	httpd_stop(NULL);
	assert_int_equal(httpd_port(NULL), 0);
}

static void test_httpd_resolve_listen(void **state)
{
	struct sockaddr_storage ss;
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
	char err[256];

	(void)state;
	/* empty host: every IPv4 interface, as the health servers always did */
	assert_int_equal(httpd_resolve_listen("HTTP_LISTEN", ":8080", &ss, err, sizeof err), 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_ANY);
	assert_int_equal(ntohs(sin->sin_port), 8080);
	assert_int_equal(httpd_resolve_listen("HTTP_LISTEN", "127.0.0.1:0", &ss, err, sizeof err),
	                 0);
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), INADDR_LOOPBACK);
	assert_int_equal(ntohs(sin->sin_port), 0);
	assert_int_equal(httpd_resolve_listen("HTTP_LISTEN", "[::1]:9", &ss, err, sizeof err), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(sin6->sin6_port), 9);
	assert_int_equal(httpd_resolve_listen("HTTP_LISTEN", "localhost:81", &ss, err, sizeof err),
	                 0);
	assert_true(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	/* what is wrong is said, naming the setting */
	assert_int_equal(httpd_resolve_listen("HTTP_LISTEN", "127.0.0.1", &ss, err, sizeof err),
	                 -1);
	assert_string_equal(err, "HTTP_LISTEN: '127.0.0.1' is not host:port");
	assert_int_equal(httpd_resolve_listen("HTTP_LISTEN", NULL, &ss, err, sizeof err), -1);
	assert_string_equal(err, "HTTP_LISTEN: '' is not host:port");
	/* a name that does not resolve: test_httpd_bad_listen (it asks the resolver) */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_httpd_health_server),
	    cmocka_unit_test(test_httpd_always_ready_without_callback),
	    cmocka_unit_test(test_httpd_bad_listen),
	    cmocka_unit_test(test_httpd_resolve_listen),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
