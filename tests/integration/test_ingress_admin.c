/* test_ingress_admin: the ingress's admin address and readiness. With INGRESS_ADMIN_LISTEN set,
 * /metrics is served there and not on the public address; /readyz answers from a state a
 * thread of its own refreshes, so while the broker is down every probe is answered at once
 * (no metadata request on an HTTP thread). The console's static files come from
 * INGRESS_CONSOLE_DIR (a directory of the test's own): types, security headers, and nothing
 * outside that directory (traversal, symbolic links, other names); the read APIs need the token
 * and are not on the public address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ingress_it.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "ita."

struct env {
	struct it_stack *st;
	unsigned admin_port;
	char admin[64]; /* "http://127.0.0.1:port" */
	char dir[512];  /* INGRESS_CONSOLE_DIR */
};

#define INDEX_HTML "<!doctype html><title>console</title><script src=console.js></script>\n"

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[700];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* The console directory: the page's files, plus what must never be served. */
static void make_console_dir(struct env *e)
{
	char path[700];

	snprintf(e->dir, sizeof e->dir, "%s/admin-console-%d", ts_tmpdir(), (int)getpid());
	mkdir(e->dir, 0755);
	write_file(e->dir, "index.html", INDEX_HTML);
	write_file(e->dir, "console.js", "document.title = 'x';\n");
	write_file(e->dir, "console.css", "body { margin: 0 }\n");
	write_file(e->dir, "chart.svg", "<svg xmlns='http://www.w3.org/2000/svg'/>\n");
	write_file(e->dir, "notes.txt", "not a page file\n");
	write_file(e->dir, ".hidden.js", "hidden\n");
	snprintf(path, sizeof path, "%s/sub", e->dir);
	mkdir(path, 0755);
	write_file(path, "inner.js", "inner\n");
	snprintf(path, sizeof path, "%s/dir.js", e->dir);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/link.js", e->dir);
	if (symlink("/etc/passwd", path) != 0)
		fail_msg("symlink");
	/* a file next to the directory, the target of the traversal attempts */
	write_file(e->dir, "../admin-secret.js", "secret\n");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	char listen[64], dir[600];
	const char *extra[] = {listen, dir, NULL};

	assert_non_null(e);
	make_console_dir(e);
	e->admin_port = ts_free_port();
	snprintf(listen, sizeof listen, "INGRESS_ADMIN_LISTEN=127.0.0.1:%u", e->admin_port);
	snprintf(dir, sizeof dir, "INGRESS_CONSOLE_DIR=%s", e->dir);
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
	assert_int_equal(get(e->admin, "/calls/EL_1", NULL), 401); /* read APIs: token first */
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

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

/* While the broker is down, /readyz is 503 and answered at once, every time: the broker is
 * asked by the readiness thread, never by the request. Then it turns 200 again. */
static void test_admin_readyz_off_the_http_threads(void **state)
{
	struct env *e = *state;
	long long took[30];
	bool down = false;

	assert_int_equal(ts_broker_control(&e->st->broker, "/brokers/1/down"), 200);
	for (int i = 0; i < 100 && !down; i++) {
		down = get(e->st->in.base, "/readyz", NULL) == 503;
		if (!down)
			ts_sleep_ms(100);
	}
	assert_true(down);
	/* 3 s of probes, across several of the thread's checks (each waits 500 ms on the
	 * broker): none waits for one. A pair that did would take >= 1 s; the median (not the
	 * slowest, which a loaded machine can stretch once) must be far below that. */
	for (int i = 0; i < 30; i++) {
		long long t0 = now_ms();

		assert_int_equal(get(e->st->in.base, "/readyz", NULL), 503);
		assert_int_equal(get(e->admin, "/readyz", NULL), 503);
		took[i] = now_ms() - t0;
		ts_sleep_ms(100);
	}
	qsort(took, 30, sizeof took[0], cmp_ll);
	print_message("/readyz pairs while the broker was down: median %lld ms, slowest %lld ms\n",
	              took[15], took[29]);
	if (took[15] > 250)
		fail_msg("the median /readyz pair took %lld ms: they wait for the broker",
		         took[15]);
	assert_int_equal(ts_broker_control(&e->st->broker, "/brokers/1/up"), 200);
	down = true;
	for (int i = 0; i < 150 && down; i++) {
		down = get(e->st->in.base, "/readyz", NULL) != 200;
		if (down)
			ts_sleep_ms(100);
	}
	assert_false(down);
}

/* GET with the token; the status. */
static long get_auth(const char *base, const char *path, struct ts_http_resp *resp)
{
	const char *h[] = {IT_AUTH, NULL};
	char url[200];

	snprintf(url, sizeof url, "%s%s", base, path);
	ts_http("GET", url, h, NULL, 0, resp);
	return resp->status;
}

static void assert_header(const char *headers, const char *name, const char *want)
{
	char got[512];

	if (!it_header(headers, name, got, sizeof got))
		fail_msg("no %s header in:\n%s", name, headers);
	assert_string_equal(got, want);
}

static void test_admin_console_files(void **state)
{
	struct env *e = *state;
	static const char *const files[][2] = {
	    {"/console", "text/html; charset=utf-8"},
	    {"/console/", "text/html; charset=utf-8"},
	    {"/console/index.html", "text/html; charset=utf-8"},
	    {"/console/console.js", "text/javascript; charset=utf-8"},
	    {"/console/console.css", "text/css; charset=utf-8"},
	    {"/console/chart.svg", "image/svg+xml"},
	};
	struct ts_http_resp resp;

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		if (get(e->admin, files[i][0], &resp) != 200)
			fail_msg("GET %s: %ld %s", files[i][0], resp.status, resp.body);
		assert_header(resp.headers, "Content-Type", files[i][1]);
		assert_header(resp.headers, "Content-Security-Policy",
		              "default-src 'self'; img-src 'self' data:; style-src 'self'; "
		              "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
		assert_header(resp.headers, "X-Content-Type-Options", "nosniff");
		assert_header(resp.headers, "Cache-Control", "no-cache");
		if (i < 3)
			assert_string_equal(resp.body, INDEX_HTML);
		ts_http_resp_free(&resp);
	}
	/* the page needs no token: it asks for it */
	assert_int_equal(get(e->admin, "/console/console.js", &resp), 200);
	assert_string_equal(resp.body, "document.title = 'x';\n");
	ts_http_resp_free(&resp);
	/* HEAD: headers only */
	{
		char url[200];

		snprintf(url, sizeof url, "%s/console/console.css", e->admin);
		ts_http("HEAD", url, NULL, NULL, 0, &resp);
		assert_int_equal(resp.status, 200);
		assert_string_equal(resp.body, "");
		ts_http_resp_free(&resp);
		ts_http("POST", url, NULL, "x", 1, &resp);
		assert_int_equal(resp.status, 405);
		assert_header(resp.headers, "Allow", "GET, HEAD");
		ts_http_resp_free(&resp);
	}
	/* not on the public address */
	assert_int_equal(get(e->st->in.base, "/console", NULL), 404);
	assert_int_equal(get(e->st->in.base, "/console/console.js", NULL), 404);
}

/* A request line sent as is (no client normalising the path); the status. */
static int raw_get(const struct env *e, const char *target)
{
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((uint16_t)e->admin_port)};
	char req[600], buf[256] = "";
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
	size_t got = 0;
	ssize_t n;

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
	snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
	         target);
	assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
	while (got < sizeof buf - 1 && (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		fail_msg("no status line for %s: %s", target, buf);
	return status;
}

static void test_admin_console_refusals(void **state)
{
	struct env *e = *state;
	static const char *const refused[] = {
	    "/console/../admin-secret.js",
	    "/console/%2e%2e/admin-secret.js",
	    "/console/..%2fadmin-secret.js",
	    "/console/sub/inner.js",
	    "/console/sub%2finner.js",
	    "/console/link.js",    /* a symbolic link */
	    "/console/dir.js",     /* a directory */
	    "/console/notes.txt",  /* not a page type */
	    "/console/.hidden.js", /* dot files */
	    "/console/missing.js",
	    "/console/console.js%00.txt",
	    "/console//etc/passwd",
	    "/consolex",
	};

	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		int status = raw_get(e, refused[i]);

		if (status != 404)
			fail_msg("GET %s: %d, want 404", refused[i], status);
	}
	assert_int_equal(raw_get(e, "/console/console.js"), 200); /* the same path, served */
}

static void test_admin_read_auth(void **state)
{
	struct env *e = *state;
	const char *bad[] = {"Authorization: Bearer it-token-0123456789abcdeX", NULL};
	struct ts_http_resp resp;
	char url[200];

	/* without a token, or a wrong one: 401 naming the scheme */
	snprintf(url, sizeof url, "%s/calls/EL_1", e->admin);
	ts_http("GET", url, bad, NULL, 0, &resp);
	assert_int_equal(resp.status, 401);
	assert_header(resp.headers, "WWW-Authenticate", "Bearer");
	assert_non_null(strstr(resp.body, "\"error\":\"unauthorized\""));
	ts_http_resp_free(&resp);
	/* with it: no database in this stack, so 503 with Retry-After */
	assert_int_equal(get_auth(e->admin, "/calls/EL_1", &resp), 503);
	assert_true(it_header(resp.headers, "Retry-After", url, sizeof url));
	ts_http_resp_free(&resp);
	assert_int_equal(get(e->admin, "/nowhere", NULL), 404);
	assert_int_equal(get(e->admin, "/events", NULL), 401);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admin_metrics_moved),
	    cmocka_unit_test(test_admin_console_files),
	    cmocka_unit_test(test_admin_console_refusals),
	    cmocka_unit_test(test_admin_read_auth),
	    cmocka_unit_test(test_admin_readyz_off_the_http_threads),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
