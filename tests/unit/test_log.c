/* test_log: each line is one valid JSON object with ts/level/service/msg/fields; levels; redaction.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#include "log.h"
#include "timeutil.h"

/* Log output goes to a temp file; each test reads back the lines it produced. */
struct capture {
	FILE *fp;
};

static int capture_setup(void **state)
{
	static struct capture cap;

	cap.fp = tmpfile();
	if (cap.fp == NULL)
		return -1;
	/* O_APPEND: concurrent writers each land at the end, as on a pipe or a terminal. */
	if (fcntl(fileno(cap.fp), F_SETFL, O_APPEND) < 0)
		return -1;
	log_init("testsvc", LOG_DEBUG);
	log_set_fd(fileno(cap.fp));
	*state = &cap;
	return 0;
}

static int capture_teardown(void **state)
{
	struct capture *cap = *state;

	log_set_fd(-1);
	fclose(cap->fp);
	return 0;
}

/* Reads every line written so far as JSON; fails the test on a line that is not an object. */
static size_t capture_lines(struct capture *cap, json_t **out, size_t max)
{
	char line[65536];
	size_t n = 0;

	rewind(cap->fp);
	while (fgets(line, sizeof line, cap->fp) != NULL) {
		json_error_t err;
		json_t *root;

		assert_non_null(strchr(line, '\n'));
		root = json_loads(line, 0, &err);
		if (root == NULL || !json_is_object(root))
			fail_msg("not a JSON object: %s (%s)", line, err.text);
		if (n < max)
			out[n] = root;
		else
			json_decref(root);
		n++;
	}
	return n;
}

static void release(json_t **lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(lines[i]);
}

static void test_log_json_fields(void **state)
{
	struct capture *cap = *state;
	json_t *lines[4];
	int64_t ts;
	size_t n;

	log_info("dial started", LOGS("call_sid", "EL_42_x"), LOGI("attempt", 3),
	         LOGS("driver", NULL), LOGS(NULL, "skipped"), LOGS("msg", "cannot override"),
	         LOGS("quote", "a \"quoted\"\nline"));
	log_error("no fields");
	n = capture_lines(cap, lines, 4);
	assert_int_equal(n, 2);
	assert_string_equal(json_string_value(json_object_get(lines[0], "level")), "info");
	assert_string_equal(json_string_value(json_object_get(lines[0], "service")), "testsvc");
	assert_string_equal(json_string_value(json_object_get(lines[0], "msg")), "dial started");
	assert_string_equal(json_string_value(json_object_get(lines[0], "call_sid")), "EL_42_x");
	assert_int_equal(json_integer_value(json_object_get(lines[0], "attempt")), 3);
	assert_true(json_is_null(json_object_get(lines[0], "driver")));
	assert_string_equal(json_string_value(json_object_get(lines[0], "quote")),
	                    "a \"quoted\"\nline");
	/* ts, level, service, msg + call_sid, attempt, driver, quote: nothing else. */
	assert_int_equal(json_object_size(lines[0]), 8);
	assert_int_equal(time_parse_iso_ms(json_string_value(json_object_get(lines[0], "ts")), &ts),
	                 0);
	assert_true(ts > 1704067200000LL);
	assert_int_equal(strlen(json_string_value(json_object_get(lines[0], "ts"))),
	                 strlen("2025-11-21T10:30:00.123Z"));
	assert_string_equal(json_string_value(json_object_get(lines[1], "level")), "error");
	assert_int_equal(json_object_size(lines[1]), 4);
	release(lines, n);
}

static int evaluated;

static const char *side_effect(void)
{
	evaluated++;
	return "x";
}

static void test_log_level_filter(void **state)
{
	struct capture *cap = *state;
	json_t *lines[8];
	size_t n;

	log_init("testsvc", LOG_WARN);
	assert_true(log_enabled(LOG_ERROR));
	assert_true(log_enabled(LOG_WARN));
	assert_false(log_enabled(LOG_INFO));
	assert_false(log_enabled(LOG_DEBUG));
	evaluated = 0;
	log_debug("hidden", LOGS("k", side_effect()));
	log_info("hidden", LOGS("k", side_effect()));
	log_warn("shown", LOGS("k", side_effect()));
	log_error("shown too");
	/* Arguments of a disabled level are not even evaluated. */
	assert_int_equal(evaluated, 1);
	n = capture_lines(cap, lines, 8);
	assert_int_equal(n, 2);
	assert_string_equal(json_string_value(json_object_get(lines[0], "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(lines[1], "level")), "error");
	release(lines, n);
	log_init("testsvc", LOG_DEBUG);
}

static void test_log_level_parse(void **state)
{
	static const struct {
		const char *text;
		int rc;
		enum log_level level;
	} cases[] = {
	    {"error", 0, LOG_ERROR}, {"warn", 0, LOG_WARN},   {"info", 0, LOG_INFO},
	    {"debug", 0, LOG_DEBUG}, {"DEBUG", 0, LOG_DEBUG}, {"warning", 0, LOG_WARN},
	    {"", -1, LOG_INFO},      {"trace", -1, LOG_INFO}, {"info ", -1, LOG_INFO},
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		enum log_level level = LOG_INFO;

		assert_int_equal(log_level_parse(cases[i].text, &level), cases[i].rc);
		assert_int_equal(level, cases[i].level);
	}
	assert_int_equal(log_level_parse(NULL, &(enum log_level){LOG_INFO}), -1);
}

static void test_log_redaction(void **state)
{
	struct capture *cap = *state;
	json_t *lines[4];
	char *raw;
	long size;
	size_t n;

	log_add_secret("s3cr3t-token");
	log_add_secret("s3cr3t-token"); /* twice: still one entry, still redacted */
	log_add_secret("abc");          /* shorter than 4 bytes: ignored */
	log_add_secret(NULL);
	log_warn("auth failed for s3cr3t-token and s3cr3t-token!",
	         LOGS("header", "Bearer s3cr3t-token"), LOGS("other", "abc def"));
	n = capture_lines(cap, lines, 4);
	assert_int_equal(n, 1);
	assert_string_equal(json_string_value(json_object_get(lines[0], "msg")),
	                    "auth failed for *** and ***!");
	assert_string_equal(json_string_value(json_object_get(lines[0], "header")), "Bearer ***");
	assert_string_equal(json_string_value(json_object_get(lines[0], "other")), "abc def");
	release(lines, n);
	/* And nowhere in the raw bytes either. */
	fseek(cap->fp, 0, SEEK_END);
	size = ftell(cap->fp);
	raw = calloc(1, (size_t)size + 1);
	rewind(cap->fp);
	assert_int_equal(fread(raw, 1, (size_t)size, cap->fp), (size_t)size);
	assert_null(strstr(raw, "s3cr3t"));
	free(raw);
}

static void test_log_invalid_utf8(void **state)
{
	struct capture *cap = *state;
	json_t *lines[2];
	size_t n;

	/* Bytes from the wire must not break the line: invalid UTF-8 becomes '?'. */
	log_info("bad \xff\xfe bytes", LOGS("field", "x\xc3("), LOGS("ok", "caf\xc3\xa9"));
	n = capture_lines(cap, lines, 2);
	assert_int_equal(n, 1);
	assert_string_equal(json_string_value(json_object_get(lines[0], "msg")), "bad ?? bytes");
	assert_string_equal(json_string_value(json_object_get(lines[0], "field")), "x?(");
	assert_string_equal(json_string_value(json_object_get(lines[0], "ok")), "caf\xc3\xa9");
	release(lines, n);
}

#define THREADS    4
#define PER_THREAD 500

static void *log_thread(void *arg)
{
	char big[3000];

	memset(big, 'a' + (int)(intptr_t)arg, sizeof big - 1);
	big[sizeof big - 1] = '\0';
	for (int i = 0; i < PER_THREAD; i++)
		log_info("concurrent", LOGI("thread", (intptr_t)arg), LOGI("i", i),
		         LOGS("pad", big));
	return NULL;
}

static void test_log_threads(void **state)
{
	struct capture *cap = *state;
	pthread_t threads[THREADS];
	size_t n;

	/* Long lines from several threads never interleave: every line parses on its own. */
	for (intptr_t i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, log_thread, (void *)i), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	n = capture_lines(cap, NULL, 0);
	assert_int_equal(n, THREADS * PER_THREAD);
}

static void test_log_limit_interval(void **state)
{
	struct log_limit lim = {0};
	long long dropped = -1;

	(void)state;
	assert_true(log_limit_pass(&lim, 10000, 1000, &dropped));
	assert_int_equal(dropped, 0);
	for (long long t = 10000; t < 11000; t += 250)
		assert_false(log_limit_pass(&lim, t, 1000, &dropped));
	assert_true(log_limit_pass(&lim, 11000, 1000, &dropped));
	assert_int_equal(dropped, 4);
	assert_false(log_limit_pass(&lim, 11999, 1000, &dropped));
	assert_true(log_limit_pass(&lim, 50000, 1000, &dropped)); /* a quiet spell: at once */
	assert_int_equal(dropped, 1);
}

#define LIMIT_CALLS 20000

static struct log_limit limit_shared;
static atomic_llong limit_passed, limit_reported;

static void *limit_thread(void *arg)
{
	(void)arg;
	for (int i = 0; i < LIMIT_CALLS; i++) {
		long long dropped;

		if (log_limit_pass(&limit_shared, 5000, 1000, &dropped)) {
			atomic_fetch_add(&limit_passed, 1);
			atomic_fetch_add(&limit_reported, dropped);
		}
	}
	return NULL;
}

static void test_log_limit_threads(void **state)
{
	pthread_t threads[THREADS];
	long long dropped;

	/* however many threads race at one instant, one line passes and every other is counted */
	(void)state;
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&threads[i], NULL, limit_thread, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(threads[i], NULL);
	assert_int_equal(atomic_load(&limit_passed), 1);
	assert_true(log_limit_pass(&limit_shared, 6000, 1000, &dropped));
	assert_int_equal(dropped + atomic_load(&limit_reported), THREADS * LIMIT_CALLS - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_log_json_fields, capture_setup, capture_teardown),
	    cmocka_unit_test_setup_teardown(test_log_level_filter, capture_setup, capture_teardown),
	    cmocka_unit_test(test_log_level_parse),
	    cmocka_unit_test_setup_teardown(test_log_redaction, capture_setup, capture_teardown),
	    cmocka_unit_test_setup_teardown(test_log_invalid_utf8, capture_setup, capture_teardown),
	    cmocka_unit_test_setup_teardown(test_log_threads, capture_setup, capture_teardown),
	    cmocka_unit_test(test_log_limit_interval),
	    cmocka_unit_test(test_log_limit_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
